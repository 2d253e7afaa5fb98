"""benchmarks/gpu_check.py: without a GPU it says so and checks nothing; with the CPU standing in
for the device (``--device cpu``) its training, saving and speed parts run end to end, so the
script itself is checked on every machine.  Nothing about timings is checked."""
import importlib.util
import os
import sys

import pytest

from axone import device as dev

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "benchmarks")


def _load():
    spec = importlib.util.spec_from_file_location("_smoke_gpu_check", os.path.join(BENCH, "gpu_check.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(dev.gpu_available(), reason="this machine has a GPU: run the script itself")
def test_without_a_gpu_it_checks_nothing_and_says_why(capsys):
    assert _load().main([]) == 0
    out = capsys.readouterr().out
    assert "no usable GPU here" in out and "nothing was checked" in out


def test_with_the_cpu_standing_in_the_parts_run_and_agree(capsys):
    mod = _load()
    assert mod.main(["--device", "cpu", "--only", "tests,train,save,speed", "--quick",
                     "--rounds", "1", "--workloads", "mlp"]) == 0
    out = capsys.readouterr().out
    assert "the device suites need a GPU; skipped" in out
    assert out.count("-> same") == 4                    # LeNet, LSTM, .keras, .weights.h5
    assert "MLP epoch" in out and "LeNet epoch" not in out
    assert "gpu_check: train ok, save ok, speed ok" in out


def test_bad_options_are_refused():
    mod = _load()
    with pytest.raises(SystemExit):
        mod.main(["--only", "tests,nonsense"])
    with pytest.raises(SystemExit):
        mod.main(["--rounds", "0"])
