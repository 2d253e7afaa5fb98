"""no_grad and enable_grad: contexts that nest and restore the mode, and decorators."""
import threading

import numpy as np
import pytest

import axone
from axone import Tensor, enable_grad, is_grad_enabled, no_grad


def test_no_grad_records_nothing_and_restores():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
    assert is_grad_enabled()
    assert not y.requires_grad and y._ctx is None


def test_nesting_restores_each_level():
    with no_grad():
        with enable_grad():
            assert is_grad_enabled()
            with no_grad():
                assert not is_grad_enabled()
            assert is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_mode_restored_after_an_exception():
    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("x")
    assert is_grad_enabled()


def test_as_decorators_each_call_fresh():
    @no_grad()
    def off():
        return is_grad_enabled()

    @enable_grad()
    def on():
        return is_grad_enabled()

    assert off() is False and off() is False
    assert is_grad_enabled()
    with no_grad():
        assert on() is True
        assert not is_grad_enabled()


def test_per_thread():
    seen = []
    with no_grad():
        t = threading.Thread(target=lambda: seen.append(is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_exported_names():
    assert axone.no_grad is no_grad and axone.enable_grad is enable_grad
