"""The depthwise node (ops.conv with one input channel a group, ops.depthwise_conv): float64
finite differences, the compiled 2-D kernel against the NumPy offset form, the same bits for any
thread count (forward, input gradient; the kernel gradient's run sums to rounding), PyTorch's
grouped convolution, and bad calls of the kernel refused."""
import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from axone import Tensor, _native, ops
from axone.autograd.gradcheck import check_gradients

C = importlib.import_module("axone.ops.conv")
compiled = pytest.mark.skipif(C._compiled.kernels("depthwise2d") is None, reason="not built")
rng = np.random.default_rng(21)

CASES = [((2, 7, 7, 3), (3, 3, 3, 1), dict(padding="same")),
         ((2, 9, 9, 4), (3, 3, 4, 2), dict(strides=2)),                       # multiplier 2
         ((2, 8, 8, 3), (3, 3, 3, 1), dict(dilation_rate=2, padding="same")),
         ((2, 9, 9, 4), (5, 5, 4, 1), dict(strides=(2, 1), padding="same")),
         ((1, 6, 6, 2), (6, 6, 2, 1), dict())]                               # one output


@pytest.mark.parametrize("xs, ks, kw", CASES)
@pytest.mark.parametrize("relu", [False, True])
def test_depthwise_float64_gradients(xs, ks, kw, relu):
    x = Tensor(rng.normal(size=xs), requires_grad=True)
    k = Tensor(rng.normal(size=ks), requires_grad=True)
    b = Tensor(rng.normal(size=ks[-2] * ks[-1]), requires_grad=True)

    def f(x, k, b):
        c, m = k.shape[-2], k.shape[-1]
        return ops.conv(x, ops.reshape(k, k.shape[:-2] + (1, c * m)), b, groups=c, relu=relu, **kw)
    assert type(f(x, k, b)._ctx).__name__ == "Depthwise"
    res = check_gradients(f, x, k, b)
    assert res.max_error < 1e-6, res


@pytest.mark.parametrize("xs, ks, kw", CASES)
def test_depthwise_equals_torch_grouped_convolution(xs, ks, kw):
    x = rng.normal(size=xs).astype(np.float32)
    k = rng.normal(size=ks).astype(np.float32)
    gy_shape = ops.depthwise_conv(Tensor(x), Tensor(k), None, **kw).shape
    gy = rng.normal(size=gy_shape).astype(np.float32)
    xt, kt = Tensor(x, requires_grad=True), Tensor(k, requires_grad=True)
    y = ops.depthwise_conv(xt, kt, None, **kw)
    y.backward(gy)
    c, m = ks[-2], ks[-1]
    tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    tk = torch.tensor(k.transpose(2, 3, 0, 1).reshape(c * m, 1, ks[0], ks[1]), requires_grad=True)
    strides = kw.get("strides", 1)
    dil = kw.get("dilation_rate", 1)
    pad = 0
    if kw.get("padding") == "same":                 # pad as axone does, then a valid conv
        xp = C._pad(x, C._pad_amounts(xs[1:3], ks[:2], C._tuple(strides, 2, "s", "t"),
                                      C._tuple(dil, 2, "d", "t"), "same"))
        tx = torch.tensor(xp.transpose(0, 3, 1, 2), requires_grad=True)
    ty = F.conv2d(tx, tk, None, strides, pad, dil, groups=c)
    ty.backward(torch.tensor(gy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y.data, ty.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
    gk = tk.grad.numpy().reshape(c, m, ks[0], ks[1]).transpose(2, 3, 0, 1)
    np.testing.assert_allclose(kt.grad, gk, rtol=1e-4, atol=1e-4)
    if kw.get("padding") != "same":
        np.testing.assert_allclose(xt.grad, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-5,
                                   atol=1e-5)


def _run(x, k, gy, **kw):
    xt, kt = Tensor(x, requires_grad=True), Tensor(k, requires_grad=True)
    y = ops.depthwise_conv(xt, kt, None, **kw)
    y.backward(gy)
    return y.data.copy(), xt.grad.copy(), kt.grad.copy()


@compiled
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_compiled_kernel_equals_the_numpy_form_and_threads_give_the_same_bits(threads, monkeypatch):
    x = rng.normal(size=(9, 14, 14, 24)).astype(np.float32)
    k = rng.normal(size=(3, 3, 24, 1)).astype(np.float32)
    gy = rng.normal(size=(9, 7, 7, 24)).astype(np.float32)
    prev = _native.set_num_threads(1)
    try:
        one = _run(x, k, gy, strides=2, padding="same")
        _native.set_num_threads(threads)
        for _ in range(2):
            got = _run(x, k, gy, strides=2, padding="same")
            np.testing.assert_array_equal(got[0], one[0])
            np.testing.assert_array_equal(got[1], one[1])
            np.testing.assert_allclose(got[2], one[2], rtol=2e-5, atol=1e-4)   # run sums
        again = _run(x, k, gy, strides=2, padding="same")
        np.testing.assert_array_equal(again[2], got[2])                       # fixed threads
    finally:
        _native.set_num_threads(prev)
    real = C._compiled.kernels
    monkeypatch.setattr(C._compiled, "kernels", lambda n: None if n == "depthwise2d" else real(n))
    plain = _run(x, k, gy, strides=2, padding="same")
    for a, b in zip(one, plain):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-4)


def _with(kernels, x, k, kw, monkeypatch):
    """The compiled forward of x, k (kernels restored for the call)."""
    with monkeypatch.context() as m:
        m.setattr(C._compiled, "kernels", kernels)
        return ops.depthwise_conv(x, k, None, **kw).data


@compiled
@pytest.mark.parametrize("n,size,strides,dilation", [(1, 41, 1, 1), (1, 40, 2, 1), (2, 23, 1, 2),
                                                      (3, 17, 2, 1)])
def test_forward_rows_shared_out_give_the_same_bits(n, size, strides, dilation, monkeypatch):
    """The forward shares runs of output rows out to the threads (one sample too), 16 channels
    at a time in registers: every thread count gives the bits of one thread and of the NumPy
    form (the taps added in the same order from 0), for channel counts that are not a multiple
    of 16 too."""
    x = rng.normal(size=(n, size, size, 40)).astype(np.float32)
    k = rng.normal(size=(3, 3, 40, 1)).astype(np.float32)
    kw = dict(strides=strides, padding="same" if strides == 1 else "valid",
              dilation_rate=dilation)
    prev = _native.set_num_threads(1)
    try:
        one = ops.depthwise_conv(x, k, None, **kw).data
        for threads in (2, 3, 5):
            _native.set_num_threads(threads)
            np.testing.assert_array_equal(ops.depthwise_conv(x, k, None, **kw).data, one)
    finally:
        _native.set_num_threads(prev)
    real = C._compiled.kernels
    monkeypatch.setattr(C._compiled, "kernels", lambda name: None if name == "depthwise2d"
                        else real(name))
    for c in (40, 37, 7):
        np.testing.assert_array_equal(ops.depthwise_conv(x[..., :c], k[:, :, :c], None, **kw).data,
                                      one[..., :c] if c == 40 else
                                      _with(real, x[..., :c], k[:, :, :c], kw, monkeypatch))
    monkeypatch.setattr(C._compiled, "kernels", real)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float64)),
                                     torch.from_numpy(k.transpose(2, 3, 0, 1).astype(np.float64)),
                                     stride=strides, padding=dilation if strides == 1 else 0,
                                     dilation=dilation, groups=40)
    np.testing.assert_allclose(one, ref.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)


@compiled
def test_depthwise_kernel_refuses_bad_calls():
    kern = C._compiled.kernels("depthwise2d")
    x = np.zeros((2, 5, 5, 3), np.float32)
    k = np.zeros((3, 3, 3), np.float32)
    y = np.zeros((2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="mode 0, 1 or 2"):
        kern.depthwise2d(3, x, k, None, y, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="mode 0, 1 or 2"):
        kern.depthwise2d(0, x, k, None, y, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="has size 4 on axis 1"):
        kern.depthwise2d(0, x, k, None, np.zeros((2, 4, 3, 3), np.float32), 1, 1, 1, 1)
    with pytest.raises(ValueError, match="does not fit"):
        kern.depthwise2d(0, x, np.zeros((7, 3, 3), np.float32), None, y, 1, 1, 1, 1)
    with pytest.raises(TypeError):
        kern.depthwise2d(0, x.astype(np.float64), k, None, y, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        kern.depthwise2d(0, np.zeros((2, 5, 10, 3), np.float32)[:, :, ::2], k, None, y, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="size 4 on axis 2"):
        kern.depthwise2d(0, x, np.zeros((3, 3, 4), np.float32), None, y, 1, 1, 1, 1)
    ro = np.zeros((2, 3, 3, 3), np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        kern.depthwise2d(0, x, k, None, ro, 1, 1, 1, 1)
