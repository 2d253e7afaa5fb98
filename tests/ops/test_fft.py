"""keras.ops fft, fft2, ifft2, rfft, irfft, stft, istft (axone/ops/fft.py) against Keras 3 on its
PyTorch backend: values, and gradients of Σ out·W through torch autograd; float64 finite
differences for every transform; symbolic use through the keras alias; bad input."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import keras
from keras import ops as K

from axone import Tensor, ops
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"

NAMES = ["fft", "fft2", "ifft2", "rfft", "irfft", "stft", "istft"]


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _outs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _np(t):
    return t.data if isinstance(t, Tensor) else t.detach().cpu().numpy()


# name, f(ops module, *inputs), inputs (real arrays; complex inputs are two of them)
CASES = [
    ("fft", lambda o, a, b: o.fft((a, b)), [_x(2, 3, 8), _x(2, 3, 8, seed=1)]),
    ("fft_odd", lambda o, a, b: o.fft((a, b)), [_x(7), _x(7, seed=1)]),
    ("fft2", lambda o, a, b: o.fft2((a, b)), [_x(2, 4, 6), _x(2, 4, 6, seed=1)]),
    ("ifft2", lambda o, a, b: o.ifft2((a, b)), [_x(3, 5), _x(3, 5, seed=1)]),
    ("rfft", lambda o, a: o.rfft(a), [_x(2, 8)]),
    ("rfft_odd", lambda o, a: o.rfft(a), [_x(3, 7)]),
    ("rfft_crop", lambda o, a: o.rfft(a, 5), [_x(2, 8)]),
    ("rfft_pad", lambda o, a: o.rfft(a, 12), [_x(2, 7)]),
    ("irfft", lambda o, a, b: o.irfft((a, b)), [_x(2, 5), _x(2, 5, seed=1)]),
    ("irfft_odd", lambda o, a, b: o.irfft((a, b), 7), [_x(3, 4), _x(3, 4, seed=1)]),
    ("irfft_crop", lambda o, a, b: o.irfft((a, b), 6), [_x(2, 6), _x(2, 6, seed=1)]),
    ("irfft_pad", lambda o, a, b: o.irfft((a, b), 11), [_x(2, 3), _x(2, 3, seed=1)]),
    ("stft_hann", lambda o, x: o.stft(x, 16, 4, 16), [_x(2, 40)]),
    ("stft_hamming_short_window", lambda o, x: o.stft(x, 10, 3, 16, window="hamming"),
     [_x(2, 40)]),
    ("stft_none_not_centered", lambda o, x: o.stft(x, 8, 5, 8, window=None, center=False),
     [_x(3, 30)]),
    ("stft_array_window", lambda o, x: o.stft(x, 6, 3, 8, window=np.linspace(0.2, 1, 6)),
     [_x(1, 2, 25)]),
    ("istft_torch_path", lambda o, a, b: o.istft((a, b), 16, 4, 16), [_x(2, 7, 9), _x(2, 7, 9, seed=1)]),
    ("istft_length", lambda o, a, b: o.istft((a, b), 16, 4, 16, length=20),
     [_x(2, 7, 9), _x(2, 7, 9, seed=1)]),
    ("istft_short_window", lambda o, a, b: o.istft((a, b), 10, 3, 16, window="hamming"),
     [_x(2, 6, 9), _x(2, 6, 9, seed=1)]),
    ("istft_no_window", lambda o, a, b: o.istft((a, b), 8, 4, 8, window=None, center=False),
     [_x(5, 5), _x(5, 5, seed=1)]),
]


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_keras(name, fn, inputs):
    ax = [Tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    tx = [torch.tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    got, want = _outs(fn(ops, *ax)), _outs(fn(K, *tx))
    assert len(got) == len(want)
    loss_a, loss_t = 0, 0
    for i, (g, w) in enumerate(zip(got, want)):
        g_np, w_np = _np(g), _np(w)
        assert g_np.shape == w_np.shape, f"{name}[{i}]: shape {g_np.shape} vs Keras {w_np.shape}"
        assert g_np.dtype == w_np.dtype == np.float32, f"{name}[{i}]: dtype {g_np.dtype}"
        np.testing.assert_allclose(g_np, w_np, rtol=1e-4, atol=2e-5, err_msg=name)
        weight = np.random.default_rng(7 + i).standard_normal(w_np.shape).astype(np.float32)
        loss_a = loss_a + ops.sum(g * weight)
        loss_t = loss_t + (w * torch.tensor(weight)).sum()
    loss_a.backward()
    loss_t.backward()
    for i, (a, t) in enumerate(zip(ax, tx)):
        np.testing.assert_allclose(np.asarray(a.grad), t.grad.numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=f"{name}: grad x{i}")


def _both(out):
    """One Tensor from a transform's output: real + 2·imag (so both parts are checked)."""
    outs = _outs(out)
    return outs[0] if len(outs) == 1 else outs[0] + 2.0 * outs[1]


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_finite_differences(name, fn, inputs):
    r = check_gradients(lambda *xs: _both(fn(ops, *xs)), *inputs)
    assert r.max_error < 1e-7, f"{name}: relative error {r.max_error} at {r.worst_input}"


def test_window_tensor_gets_a_gradient_like_torch():
    x, w = _x(2, 30), np.linspace(0.1, 1.0, 12)
    ax, aw = Tensor(x), Tensor(w, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    re, im = ops.stft(ax, 12, 4, 16, window=aw)
    kre, kim = K.stft(torch.tensor(x), 12, 4, 16, window=tw)
    ops.sum(re * re + im).backward()
    (kre * kre + kim).sum().backward()
    np.testing.assert_allclose(aw.grad, tw.grad.numpy(), rtol=1e-10, atol=1e-10)
    assert check_gradients(lambda v: _both(ops.stft(Tensor(x), 12, 4, 16, window=v)), w).max_error \
        < 1e-7


def test_istft_inverts_stft():
    x = _x(3, 64)
    for args in [(16, 4, 16, "hann", True), (32, 8, 32, "hamming", True)]:
        s = ops.stft(x, *args)
        y = ops.istft(s, *args[:3], window=args[3], center=args[4], length=64)
        np.testing.assert_allclose(y.data, x, atol=1e-10)


def test_docstring_examples():
    re, im = ops.fft((np.array([1., 2.]), np.array([0., 1.])))
    np.testing.assert_allclose(re.data, [3., -1.])
    np.testing.assert_allclose(im.data, [1., -1.])
    re, im = ops.rfft(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), 3)
    np.testing.assert_allclose(re.data, [3.0, -1.5])
    np.testing.assert_allclose(im.data, [0.0, 0.8660254], atol=1e-7)
    re, im = ops.stft(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), 3, 2, 3)
    np.testing.assert_allclose(re.data, [[0.75, -0.375], [3.75, -1.875], [5.25, -2.625]])
    np.testing.assert_allclose(im.data, [[0.0, 0.64951905], [0.0, 0.64951905],
                                         [0.0, -0.64951905]], atol=1e-7)
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(ops.istft(ops.stft(x, 1, 1, 1), 1, 1, 1).data, x, atol=1e-12)
    np.testing.assert_allclose(ops.irfft(ops.rfft(x, 5), 5).data, x, atol=1e-12)


def test_float64_stays_float64():
    re, im = ops.fft((_x(4), _x(4)))
    assert re.dtype == im.dtype == np.float64
    assert ops.irfft((_x(3), _x(3))).dtype == np.float64
    assert ops.stft(_x(20), 8, 2, 8)[0].dtype == np.float64


@pytest.mark.parametrize("call,exc,words", [
    (lambda: ops.fft(np.ones(4)), ValueError, "tuple of two tensors"),
    (lambda: ops.fft((np.ones(4), np.ones(3))), ValueError, "same shape"),
    (lambda: ops.fft((np.ones(4, dtype=int), np.ones(4, dtype=int))), ValueError, "floating"),
    (lambda: ops.fft2((np.ones(4), np.ones(4))), ValueError, "rank >= 2"),
    (lambda: ops.ifft2((np.ones(4), np.ones(4))), ValueError, "rank >= 2"),
    (lambda: ops.rfft(np.ones(4), 0), ValueError, "fft_length"),
    (lambda: ops.irfft((np.ones(1), np.ones(1))), ValueError, "fft_length"),
    (lambda: ops.stft(np.ones(20, dtype=np.float32), 8, 0, 8), ValueError, "sequence_stride"),
    (lambda: ops.stft(np.ones(20, dtype=np.int32), 8, 2, 8), TypeError, "float32"),
    (lambda: ops.stft(np.ones(20), 8, 2, 4), ValueError, "fft_length"),
    (lambda: ops.stft(np.ones(20), 8, 2, 8, window="blackman"), ValueError, "hann"),
    (lambda: ops.stft(np.ones(20), 8, 2, 8, window=np.ones(5)), ValueError, "sequence_length"),
    (lambda: ops.stft(np.ones(3), 8, 2, 8), ValueError, "reflect"),
    (lambda: ops.stft(np.ones(5), 8, 2, 8, center=False), ValueError, "fewer than fft_length"),
    (lambda: ops.istft((np.ones((3, 5)), np.ones((3, 5))), 8, 2.5, 8), ValueError,
     "sequence_stride"),
    (lambda: ops.istft((np.ones(5), np.ones(5)), 8, 2, 8), ValueError, "rank >= 2"),
    (lambda: ops.istft((np.ones((3, 5)), np.ones((3, 5))), 8, 8, 8, window=np.hanning(8)),
     ValueError, "overlap-add"),
])
def test_bad_input(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_names_resolve_through_the_alias_and_build_graph_nodes():
    code = ("import axone.compat; axone.compat.install_keras_alias()\n"
            "import numpy as np, keras, axone\n"
            "import axone.ops.fft\n"
            "import sys\n"
            "mod = sys.modules['axone.ops.fft']\n"
            f"for n in {NAMES!r}:\n"
            "    assert getattr(keras.ops, n).__wrapped__ is getattr(mod, n), n\n"
            "x = keras.Input((40,))\n"
            "re, im = keras.ops.stft(x, 16, 4, 16)\n"
            "assert re.shape == (None, 11, 9), re.shape\n"
            "y = keras.ops.istft((re, im), 16, 4, 16, length=40)\n"
            "m = keras.Model(x, [re, y])\n"
            "v = np.random.default_rng(0).standard_normal((2, 40)).astype('float32')\n"
            "a, b = m.predict(v, verbose=0)\n"
            "np.testing.assert_allclose(a, axone.ops.stft(v, 16, 4, 16)[0].data, atol=1e-6)\n"
            "np.testing.assert_allclose(b, v, atol=1e-5)\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


@pytest.mark.parametrize("args", [(16, 4, 16), (12, 4, 16)], ids=["torch_path", "custom_path"])
def test_istft_window_tensor_gets_a_gradient_like_torch(args):
    re, im = _x(2, 7, 9), _x(2, 7, 9, seed=1)
    w = np.linspace(0.3, 1.0, args[0])
    aw, tw = Tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = ops.istft((re, im), *args, window=aw)
    ky = K.istft((torch.tensor(re), torch.tensor(im)), *args, window=tw)
    np.testing.assert_allclose(y.data, ky.detach().numpy(), rtol=1e-10, atol=1e-10)
    weight = _x(*y.shape, seed=3)
    ops.sum(y * weight).backward()
    (ky * torch.tensor(weight)).sum().backward()
    np.testing.assert_allclose(aw.grad, tw.grad.numpy(), rtol=1e-8, atol=1e-10)
    r = check_gradients(lambda v: ops.istft((Tensor(re), Tensor(im)), *args, window=v), w)
    assert r.max_error < 1e-7
