"""Progbar against Keras 3's on the same clock: the same bytes on stdout for verbose 1 and 2,
with averaged and stateful metrics, unknown targets and add()."""
import itertools
import re

import numpy as np
import pytest

import axone.utils.progbar as ours
from axone.utils import Progbar

from ._keras import keras_utils


class _Clock:
    def __init__(self, step):
        self.t, self.step = 1000.0, step

    def __call__(self):
        self.t += self.step
        return self.t


def _run(cls, module, monkeypatch, capsys, script, step=0.37, **kw):
    monkeypatch.setattr(module.time, "time", _Clock(step))
    bar = cls(**kw)
    for method, args in script:
        getattr(bar, method)(*args)
    monkeypatch.undo()
    return capsys.readouterr().out


SCRIPTS = {
    "losses": [("update", (1, [("loss", 0.9), ("acc", 0.5)])), ("update", (2, [("loss", 0.7), ("acc", 0.6)])),
               ("update", (5, [("loss", 0.5), ("acc", 0.75)])), ("update", (10, [("loss", 0.1), ("acc", 0.9)]))],
    "small values": [("update", (3, [("lr", 1e-5), ("neg", -0.5)])), ("update", (7, [("lr", 2e-4), ("neg", -2e-4)])),
                     ("update", (7, [("lr", 3e-4), ("neg", -1e-5)]))],
    "add": [("add", (2, [("loss", 1.0)])), ("add", (3, [("loss", 2.0)])), ("add", (5, [("loss", 4.0)]))],
    "no values": [("update", (1,)), ("update", (50,)), ("update", (120,))],
}


@pytest.mark.parametrize("verbose", [1, 2])
@pytest.mark.parametrize("name", list(SCRIPTS))
@pytest.mark.parametrize("step", [0.37, 0.004, 95.0])
def test_same_output_as_keras(monkeypatch, capsys, verbose, name, step):
    k = keras_utils()
    import keras.src.utils.progbar as theirs
    target = 120 if name == "no values" else (7 if name == "small values" else 10)
    kw = dict(target=target, verbose=verbose, stateful_metrics=["acc"])
    want = _run(k["Progbar"], theirs, monkeypatch, capsys, SCRIPTS[name], step, **kw)
    got = _run(Progbar, ours, monkeypatch, capsys, SCRIPTS[name], step, **kw)
    assert got == want
    assert got                                  # something was drawn


def test_unknown_target_and_width_match_keras(monkeypatch, capsys):
    k = keras_utils()
    import keras.src.utils.progbar as theirs
    script = [("update", (1, [("loss", 0.3)])), ("update", (4, [("loss", 0.2)])),
              ("update", (9, [("loss", 0.1)], True))]
    for kw in (dict(target=None), dict(target=9, width=7), dict(target=9, unit_name="sample"),
               dict(target=9, stateless_metrics=["loss"])):
        want = _run(k["Progbar"], theirs, monkeypatch, capsys, script, **kw)
        got = _run(Progbar, ours, monkeypatch, capsys, script, **kw)
        assert got == want, kw


def test_interval_skips_early_redraws(monkeypatch, capsys):
    out = _run(Progbar, ours, monkeypatch, capsys, [("update", (i,)) for i in range(1, 11)],
               step=0.01, target=10, interval=1.0)
    assert out.count("\r") == 2                 # the first draw and the final one


def test_verbose_zero_prints_nothing(capsys):
    bar = Progbar(5, verbose=0)
    for i in range(1, 6):
        bar.update(i, [("loss", 1.0)])
    assert capsys.readouterr().out == ""


def test_running_mean_of_stateless_values(capsys):
    bar = Progbar(4, verbose=2)
    bar.update(1, [("loss", 4.0)])
    bar.update(3, [("loss", 1.0)])              # weight 2: (4 + 2) / 3 = 2
    assert bar._values["loss"] == [6.0, 3]


def test_bar_string_pieces():
    assert ours.bar_string(3, 10, 10) == (" 3/10 ━━━       ", 16)
    assert ours.format_step_time(0.0123) == "12ms/step"
    assert ours.format_step_time(0) == "0s/step"
    assert ours.format_eta(3725) == "1:02:05"
    assert ours.format_value(-2e-4) == "-2.0000e-04" and ours.format_value(0.5) == "0.5000"


@pytest.mark.parametrize("kw,match", [(dict(target=-1), "target"), (dict(target=3, width=0), "width"),
                                      (dict(target=3, verbose=3), "verbose"),
                                      (dict(target=3, stateful_metrics=["a"], stateless_metrics=["b"]),
                                       "only one")])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        Progbar(**kw)


def test_progbar_logger_draws_with_the_same_pieces(monkeypatch):
    from axone import callbacks
    cb = callbacks.ProgbarLogger(verbose=1)
    cb.steps = 10
    clock = iter([0.0, 20.0])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    cb._begin()
    line = cb._line(2, {"loss": 0.5}, final=False)
    assert line.startswith(ours.bar_string(2, 10)[0] + " ")
    assert " 1:20 10s/step - loss: 0.5000" in line          # 8 steps of 10 s left, as m:ss
