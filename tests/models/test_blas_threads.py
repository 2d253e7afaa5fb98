"""Training runs small models' matrix products on one BLAS thread and restores the setting."""
import numpy as np
import pytest

import axone
from axone import backend


def _model():
    m = axone.Sequential([axone.layers.Input((4,)), axone.layers.Dense(8, activation="relu"),
                          axone.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def test_blas_threads_context_sets_and_restores():
    before = backend.get_blas_threads()
    if before is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS: its threads are left alone")
    with backend.blas_threads(1):
        assert backend.get_blas_threads() == 1
    assert backend.get_blas_threads() == before
    with backend.blas_threads(None):
        assert backend.get_blas_threads() == before


def test_small_model_fit_uses_one_thread_and_restores(monkeypatch):
    before = backend.get_blas_threads()
    if before is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS: its threads are left alone")
    seen = []
    model = _model()
    x = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    y = np.arange(20) % 3
    cb = axone.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(backend.get_blas_threads()))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert seen == [1, 1]
    assert backend.get_blas_threads() == before
    # an exception inside fit restores the setting too
    bad = axone.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[bad])
    assert backend.get_blas_threads() == before


def test_threshold_policy():
    # the decision follows a step's multiply-adds (work=), or parameters x rows without it
    assert backend.blas_threads_for(133_635, 30) == 1
    assert backend.blas_threads_for(10_000_000, 128) == 1
    assert backend.blas_threads_for(1, 1, work=backend.SMALL_STEP_WORK - 1) == 1
    assert backend.blas_threads_for(1, 1, work=backend.SMALL_STEP_WORK) is None
