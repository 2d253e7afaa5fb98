"""The benchmark scripts run end to end on their smallest settings and print their tables.
Nothing about timings is checked."""
import importlib.util
import os
import sys

import pytest

pytest.importorskip("torch")

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "benchmarks")


def _load(name):
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location(f"_smoke_{name}", os.path.join(BENCH, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scaling_quick_prints_one_row_per_family(capsys):
    mod = _load("bench_scaling")
    mod.main(["--quick", "--steps", "1", "--family", "mlp,lstm", "--no-peak"])
    out = capsys.readouterr().out
    assert "library defaults (--threads 0)" in out
    for head in ("GFLOP/step", "axone ms", "torch ms", "axone/torch", "axone GFLOP/s"):
        assert head in out
    assert "784-64x2-10 b32" in out and "T50 d8 u64 b64" in out
    assert "784-256x2-10" not in out and "T100" not in out  # --quick: first row only


def test_scaling_flop_count_follows_the_products():
    mod = _load("bench_scaling")
    # 784 -> 64 -> 64 -> 10 at batch 32: 3 x 2 x 32 x (784*64 + 64*64 + 64*10)
    assert mod.flops("mlp", dict(width=64, batch=32)) == 3 * 2 * 32 * (784 * 64 + 64 * 64 + 64 * 10)
    # one conv of 28x28x1 with 8 filters as its im2col product, then 14x14 and 7x7 ones
    cnn = mod.flops("cnn", dict(hw=28, c=1, f=8, batch=2))
    assert cnn == 3 * 2 * (2 * 784 * 9 * 8 + 2 * 196 * 72 * 8 + 2 * 49 * 72 * 8 + 2 * 8 * 10)
    lstm = mod.flops("lstm", dict(T=3, d=2, u=4, batch=5))
    assert lstm == 3 * 2 * (3 * (5 * 2 * 16 + 5 * 4 * 16) + 5 * 4)


def test_scaling_rejects_an_unknown_family():
    mod = _load("bench_scaling")
    with pytest.raises(SystemExit):
        mod.main(["--quick", "--family", "resnet"])


def test_inference_prints_its_table(capsys):
    mod = _load("bench_inference")
    mod.main(["--calls", "2", "--rounds", "1", "--models", "iris,lstm"])
    out = capsys.readouterr().out
    for head in ("median us/call", "fastest us/call", "axone predict", "axone model(x)", "torch eager"):
        assert head in out
    assert "iris" in out and "lstm" in out


def test_thread_settings_parse_and_reject():
    common = _load("_common")
    assert common.thread_settings("0") == [0]
    assert common.thread_settings("0,1") == [0, 1]
    with pytest.raises(ValueError, match="--threads"):
        common.thread_settings("two")


def test_peak_rss_of_a_child(tmp_path):
    common = _load("_common")
    script = tmp_path / "job.py"
    script.write_text("import numpy as np\n"
                      "def child(n):\n"
                      "    a = np.ones(n, dtype=np.uint8)\n"
                      "    return int(a.sum())\n")
    small, res = common.peak_rss(str(script), "child", n=1)
    big, res2 = common.peak_rss(str(script), "child", n=200 * 2 ** 20)
    assert res == 1 and res2 == 200 * 2 ** 20
    assert big - small > 150                                # MiB: the child's own allocation


def test_attention_block_prints_its_ratios(capsys):
    mod = _load("bench_attention")
    mod.main(["--steps", "1", "--rounds", "1", "--d", "16", "--heads", "2", "--seq", "8",
              "--batch", "4"])
    out = capsys.readouterr().out
    assert "axone" in out and "torch" in out


def test_distribution_runs_one_and_two_processes(capsys):
    pytest.importorskip("mpi4py")
    mod = _load("bench_distribution")
    import shutil
    if not (shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))):
        pytest.skip("mpiexec is not installed")
    r1 = mod.run("mnist", "strong", 1, 1, shutil.which("mpiexec") or
                 shutil.which("mpiexec", path=os.path.dirname(sys.executable)), samples=512)
    assert r1["epoch_s"] > 0 and r1["steps"] == 4
