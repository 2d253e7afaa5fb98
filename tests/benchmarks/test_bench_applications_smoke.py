"""benchmarks/bench_applications.py runs end to end on its smallest settings and prints its
tables: axone's rows always, torchvision's when torchvision imports. Nothing about timings is
checked."""
import importlib.util
import os
import re
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "benchmarks")
TINY = ["--size", "32", "--train-size", "32", "--train-batch", "2", "--batches", "1",
        "--calls", "1", "--rounds", "1", "--no-memory"]


def _load():
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location("_smoke_bench_applications",
                                                  os.path.join(BENCH, "bench_applications.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_axone_rows_and_what_happened_to_torchvision(capsys):
    mod = _load()
    mod.main(["--workloads", "mobilenet_v2,vgg16_head"] + TINY)
    out = capsys.readouterr().out
    for head in ("median s", "fastest s", "[mobilenet_v2 b1 32x32x3 inference]",
                 "[vgg16_head b2 32x32x3 train step]", "library defaults (--threads 0)"):
        assert head in out
    assert re.search(r"^axone\s+\d", out, re.M)
    tvm, why = mod.torchvision_models()
    row = re.search(r"^torchvision\s+\d", out, re.M)
    if tvm is None:
        assert f"torchvision rows skipped: {why}" in out and not row
    else:
        assert row


def test_torchvision_rows():
    mod = _load()
    tvm, why = mod.torchvision_models()
    if tvm is None:
        pytest.skip(why)
    for workload in ("resnet50", "mobilenet_v2", "vgg16_head"):
        f = mod.make_call("torchvision", workload, 1, 32, 32)
        f()


def test_bad_arguments_are_refused():
    mod = _load()
    for argv in (["--workloads", "alexnet"], ["--size", "16"], ["--batches", "one"],
                 ["--batches", "0"], ["--calls", "0"]):
        with pytest.raises(SystemExit):
            mod.main(argv + ["--no-memory"])
