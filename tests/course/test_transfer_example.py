"""examples/transfer_learning.py run end to end with tiny settings (1 epoch a phase, few images),
in a subprocess as a user runs it: the frozen base, the head, block5 unfrozen, the plot."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO_ROOT, "examples", "transfer_learning.py")
TINY = ["--epochs", "1", "--samples", "32", "--batch-size", "16"]

HEAD = 512 * 256 + 256 + 256 * 3 + 3                    # 132,099
BLOCK5 = 3 * (3 * 3 * 512 * 512 + 512)                  # 7,079,424
VGG16_NOTOP = 14_714_688


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env.pop("EXAMPLE_BACKEND", None)
    env.pop("KERAS_BACKEND", None)     # the example must not need a real Keras backend
    return env


def _python(code, cwd):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=240)


def _check_common(out):
    assert "running on axone" in out
    assert re.search(r"24 training and 8 test images of 32x32x3", out), out
    assert f"frozen base: {HEAD:,} trainable of {VGG16_NOTOP + HEAD:,} parameters" in out, out
    assert f"block5 unfrozen: {HEAD + BLOCK5:,} trainable parameters" in out, out
    m = re.search(r"test loss ([\d.]+)  test accuracy ([\d.]+)", out)
    assert m, out
    assert np.isfinite(float(m.group(1))) and 0.0 <= float(m.group(2)) <= 1.0
    # one epoch a phase (Keras prints no "Epoch 1/1" header for a single epoch)
    assert "Epoch " not in out
    assert len(re.findall(r"^2/2 - .* - val_loss: ", out, re.M)) == 2, out


def test_example_script_tiny_run(tmp_path):
    out_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, EXAMPLE, *TINY, "--out", str(out_dir)], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    _check_common(proc.stdout)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "pip install matplotlib" in proc.stdout
    else:
        png = out_dir / "history.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_example_without_matplotlib_skips_the_plot(tmp_path):
    code = textwrap.dedent(f"""
        import sys, runpy
        sys.modules["matplotlib"] = None          # import matplotlib raises ImportError
        sys.argv = [{EXAMPLE!r}] + {TINY!r} + ["--out", "out"]
        runpy.run_path({EXAMPLE!r}, run_name="__main__")
        """)
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_common(proc.stdout)
    assert "matplotlib is not installed (pip install matplotlib): no plot" in proc.stdout
    assert not (tmp_path / "out" / "history.png").exists()


def test_example_weights_from_a_file(tmp_path):
    """--weights PATH: VGG16 loads that weight file; block1 stays frozen through both phases,
    so its kernel is still the file's after training, while block5 was fine-tuned."""
    pytest.importorskip("h5py")
    code = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {os.path.dirname(EXAMPLE)!r})
        import transfer_learning as ex             # installs the keras alias
        import keras
        src = keras.applications.vgg16.VGG16(include_top=False, weights=None,
                                             input_shape=(32, 32, 3))
        src.save_weights("vgg16_notop.weights.h5")
        res = ex.main({TINY!r} + ["--weights", "vgg16_notop.weights.h5", "--out", "out"])
        base = res["base"]
        for name in ("block1_conv1", "block3_conv2", "block4_conv3"):
            for a, b in zip(base.get_layer(name).get_weights(), src.get_layer(name).get_weights()):
                assert np.array_equal(a, b), name
        k_new, k_src = base.get_layer("block5_conv3").kernel, src.get_layer("block5_conv3").kernel
        assert not np.array_equal(np.asarray(k_new), np.asarray(k_src)), "block5 not fine-tuned"
        assert len(res["history_head"].history["loss"]) == 1
        assert set(res["history_fine"].history) == {{"loss", "accuracy", "val_loss", "val_accuracy"}}
        print("WEIGHTS_OK")
        """)
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "WEIGHTS_OK" in proc.stdout
    assert "VGG16 weights: vgg16_notop.weights.h5" in proc.stdout
    _check_common(proc.stdout)


def test_example_bad_size_is_rejected(tmp_path):
    proc = subprocess.run([sys.executable, EXAMPLE, "--size", "20"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--size" in proc.stderr
