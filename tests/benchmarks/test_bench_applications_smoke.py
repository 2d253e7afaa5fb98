"""benchmarks/bench_applications.py runs end to end on its smallest settings and prints its
tables: axone's rows always, and PyTorch's from torchvision when it imports, else from the
torch.nn definitions of torchvision's architectures, whose parameter counts are torchvision's.
Nothing about timings is checked."""
import importlib.util
import os
import re
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "benchmarks")
TINY = ["--size", "32", "--train-size", "32", "--train-batch", "2", "--train-images", "3",
        "--batches", "1", "--calls", "1", "--rounds", "1", "--no-memory"]
TORCHVISION_PARAMETERS = {"resnet50": 25_557_032, "mobilenet_v2": 3_504_872,
                          "vgg16_features": 14_714_688}


def _load():
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location("_smoke_bench_applications",
                                                  os.path.join(BENCH, "bench_applications.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_axone_rows_and_where_pytorch_models_come_from(capsys):
    mod = _load()
    mod.main(["--workloads", "mobilenet_v2,vgg16_head"] + TINY)
    out = capsys.readouterr().out
    for head in ("median s", "fastest s", "[mobilenet_v2 b1 32x32x3 inference]",
                 "[vgg16_head b2 32x32x3 epoch of 3]", "library defaults (--threads 0)"):
        assert head in out
    assert re.search(r"^axone\s+\d", out, re.M)
    source, why = mod.torch_source()
    if source is None:
        assert f"PyTorch rows skipped: {why}" in out
        return
    assert re.search(rf"^{re.escape(source)}\s+\d", out, re.M)
    if source == "torchvision":
        assert "PyTorch models: torchvision " in out
    else:
        assert f"PyTorch models: torch.nn, torchvision's architecture ({why})" in out
    assert ("PyTorch parameters (equal to torchvision's): mobilenet_v2 3,504,872, "
            "vgg16_features 14,714,688") in out


def test_torch_nn_architectures_have_torchvisions_parameter_counts():
    pytest.importorskip("torch")
    mod = _load()
    assert mod.PARAMETERS == TORCHVISION_PARAMETERS
    builders = {"resnet50": mod._torch_resnet50, "mobilenet_v2": mod._torch_mobilenet_v2,
                "vgg16_features": mod._torch_vgg16_features}
    for name, build in builders.items():
        assert mod.count_parameters(build()) == TORCHVISION_PARAMETERS[name], name


def test_torch_nn_fallback_runs_every_workload(monkeypatch):
    pytest.importorskip("torch")
    import torch
    mod = _load()
    why = "torchvision is not installed (test)"
    monkeypatch.setattr(mod, "torchvision_models", lambda: (None, why))
    assert mod.torch_source() == ("torch.nn", why)
    for name in ("resnet50", "mobilenet_v2"):
        net = mod.torch_inference(name)
        assert mod.count_parameters(net) == TORCHVISION_PARAMETERS[name]
        with torch.inference_mode():
            assert tuple(net(torch.zeros(1, 3, 32, 32)).shape) == (1, 1000)
    assert tuple(mod._torch_vgg16_features()(torch.zeros(1, 3, 32, 32)).shape) == (1, 512, 1, 1)
    epoch, warm_up = mod.make_call("torch.nn", "vgg16_head", 2, 32, 32, train_images=3)
    warm_up()
    epoch()
    monkeypatch.setattr(mod, "PARAMETERS", dict(TORCHVISION_PARAMETERS, resnet50=1))
    with pytest.raises(RuntimeError, match="parameters"):
        mod.torch_model("resnet50")


def test_torchvision_rows():
    mod = _load()
    tvm, why = mod.torchvision_models()
    if tvm is None:
        pytest.skip(why)
    for name in TORCHVISION_PARAMETERS:
        assert mod.count_parameters(mod.torch_model(name)) == TORCHVISION_PARAMETERS[name]
    for workload in ("resnet50", "mobilenet_v2", "vgg16_head"):
        f, warm_up = mod.make_call("torchvision", workload, 1, 32, 32, train_images=2)
        warm_up()
        f()


def test_bad_arguments_are_refused():
    mod = _load()
    for argv in (["--workloads", "alexnet"], ["--size", "16"], ["--batches", "one"],
                 ["--batches", "0"], ["--calls", "0"], ["--epochs", "0"],
                 ["--train-images", "0"]):
        with pytest.raises(SystemExit):
            mod.main(argv + ["--no-memory"])
