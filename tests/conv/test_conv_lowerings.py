"""The lowerings of ``axone.ops.conv.Conv`` compute the same sums: the banded one (few filters,
blocks of bj outputs against a banded kernel matrix, its input gradient in blocks of bj_dx),
the one-input-channel one (transposed im2col rows) and the 1×1 one agree with the plain
im2col lowering in float64 — output and the input, kernel and bias gradients — over 1-D, 2-D and
3-D convolutions with strides, dilation and every padding; the LeNet layers match PyTorch; and
the workspace that holds the large work arrays never hands out an array still in use.
"""
import importlib
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from axone import Tensor, ops
from axone.utils import check_gradients

C = importlib.import_module("axone.ops.conv")   # the module (axone.ops.conv is also a function)


def _run(x, k, b, strides, padding, dilation, bj=None, bj_dx=None, monkeypatch=None):
    """(y, dx, dk, db, bj used) with the row block forced to bj (1: plain) and bj_dx."""
    if bj is not None:
        monkeypatch.setattr(C, "_band_block",
                            lambda out, f, width=32, most=8: bj if width == 32 else bj_dx)
    xt, kt, bt = (Tensor(a, requires_grad=True) for a in (x, k, b))
    y = ops.conv(xt, kt, bt, strides, padding, dilation)
    used = y._ctx.bj
    y.backward(np.random.default_rng(5).standard_normal(y.shape).astype(y.dtype))
    if bj is not None:
        monkeypatch.undo()
    return y.data, xt.grad, kt.grad, bt.grad, used


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _cases(nd, count, seed):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        sp = tuple(int(v) for v in rng.integers(5, 12, nd))
        ks = tuple(int(v) for v in rng.integers(1, 5, nd))
        padding = str(rng.choice(["valid", "same"] + (["causal"] if nd == 1 else [])))
        if rng.random() < 0.5:
            strides, dil = tuple(int(v) for v in rng.integers(1, 4, nd)), (1,) * nd
        else:
            strides, dil = (1,) * nd, tuple(int(v) for v in rng.integers(1, 3, nd))
        if padding == "valid" and any(n < (k - 1) * d + 1 for n, k, d in zip(sp, ks, dil)):
            continue
        out.append((sp, ks, int(rng.integers(1, 5)), int(rng.integers(1, 7)), strides, dil, padding))
    return out


CASES = _cases(1, 8, 0) + _cases(2, 12, 1) + _cases(3, 4, 2)


@pytest.mark.parametrize("sp,ks,cin,f,strides,dil,padding", CASES)
def test_banded_lowering_matches_the_plain_one(monkeypatch, sp, ks, cin, f, strides, dil, padding):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2,) + sp + (cin,))
    k = rng.standard_normal(ks + (cin, f))
    b = rng.standard_normal(f)
    ref = _run(x, k, b, strides, padding, dil, 1, 1, monkeypatch)
    assert ref[4] == 1
    divs = _divisors(ref[0].shape[-2])
    for bj, bj_dx in itertools.product(divs[1:], divs):
        got = _run(x, k, b, strides, padding, dil, bj, bj_dx, monkeypatch)
        assert got[4] == bj
        for r, g, what in zip(ref, got, ["y", "dL/dx", "dL/dK", "dL/db"]):
            np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-11,
                                       err_msg=f"{what}, bj={bj}, bj_dx={bj_dx}")


def test_band_block_choice():
    assert C._band_block(28, 6) == 4          # LeNet conv1: 4 outputs × 6 filters per row
    assert C._band_block(10, 16) == 2         # LeNet conv2
    assert C._band_block(10, 16, width=96, most=16) == 5
    assert C._band_block(32, 32) == 1 and C._band_block(16, 64) == 1     # wide filters: plain
    assert C._band_block(13, 6) == 1          # no divisor in range: plain
    band = C._band_matrix(np.arange(2 * 3 * 1 * 2.).reshape(2, 3, 1, 2), (1, 1), (1, 1), 2)
    # rows (a, w, c), columns (j, f): B[(a, j + b, c), (j, f)] = K[a, b, c, f]
    np.testing.assert_array_equal(band.reshape(2, 4, 1, 2, 2)[1, :, 0, 1, :],
                                  [[0, 0], [6, 7], [8, 9], [10, 11]])


def _reference_conv2d(x, k, b):
    """Direct valid, stride-1 2-D correlation, float64."""
    kh, kw = k.shape[:2]
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    y = np.zeros((x.shape[0], oh, ow, k.shape[-1]))
    for a in range(kh):
        for c in range(kw):
            y += np.einsum("nijc,cf->nijf", x[:, a:a + oh, c:c + ow], k[a, c])
    return y + b


@pytest.mark.parametrize("cin,f,ksize,strides", [(1, 32, 3, 1), (1, 7, 5, 1), (3, 1, 1, 1),
                                                  (4, 40, 1, 1), (4, 40, 1, 2), (1, 1, 3, 2)])
def test_one_channel_one_by_one_and_plain_paths_match_a_direct_sum(cin, f, ksize, strides):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 9, 8, cin))
    k = rng.standard_normal((ksize, ksize, cin, f))
    b = rng.standard_normal(f)
    xt, kt, bt = (Tensor(a, requires_grad=True) for a in (x, k, b))
    y = ops.conv(xt, kt, bt, strides)
    want = _reference_conv2d(x, k, b)[:, ::strides, ::strides]
    np.testing.assert_allclose(y.data, want, rtol=1e-12, atol=1e-12)
    r = check_gradients(lambda a, c, d: ops.conv(a, c, d, strides), x, k, b,
                        names=["x", "kernel", "bias"])
    assert r.max_error < 1e-6, r.errors


@pytest.mark.parametrize("f,strides,padding,dilation", [(4, 1, "valid", 1), (3, 2, "same", 1),
                                                        (2, 1, "same", 2), (5, (1, 2), "valid", 1)])
def test_banded_finite_differences(f, strides, padding, dilation):
    rng = np.random.default_rng(12)
    x, k, b = rng.uniform(-1, 1, (2, 7, 8, 3)), rng.uniform(-1, 1, (3, 2, 3, f)), rng.uniform(-1, 1, f)
    fn = lambda a, c, d: ops.conv(a, c, d, strides, padding, dilation)     # noqa: E731
    assert fn(*(Tensor(v, requires_grad=True) for v in (x, k, b)))._ctx.bj > 1
    r = check_gradients(fn, x, k, b, names=["x", "kernel", "bias"])
    assert r.max_error < 1e-6, r.errors


def _torch_conv(x, k, b, padding="valid"):
    t = [torch.tensor(v, requires_grad=True) for v in (x.transpose(0, 3, 1, 2), k.transpose(3, 2, 0, 1), b)]
    return t, F.conv2d(*t, padding=padding)


@pytest.mark.parametrize("shape,kshape,bj", [((8, 32, 32, 1), (5, 5, 1, 6), 4),
                                             ((8, 14, 14, 6), (5, 5, 6, 16), 2)])
def test_lenet_layers_take_the_banded_lowering_and_match_torch(shape, kshape, bj):
    rng = np.random.default_rng(13)
    x = rng.standard_normal(shape).astype(np.float32)
    k = (rng.standard_normal(kshape) * 0.2).astype(np.float32)
    b = rng.standard_normal(kshape[-1]).astype(np.float32)
    xt, kt, bt = (Tensor(a, requires_grad=True) for a in (x, k, b))
    y = ops.conv(xt, kt, bt)
    assert y._ctx.bj == bj and y.dtype == np.float32
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    (tx, tk, tb), ty = _torch_conv(x, k, b)
    ty.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    close = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y.data, ty.detach().numpy().transpose(0, 2, 3, 1), **close)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy().transpose(0, 2, 3, 1), **close)
    np.testing.assert_allclose(kt.grad, tk.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(bt.grad, tb.grad.numpy(), rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------- workspace
def test_workspace_reuses_only_arrays_nothing_references():
    ws = C._Workspace(limit=64 << 20, smallest=1 << 10)
    if not ws.enabled:
        pytest.skip("reference counts are not available on this interpreter")
    a = ws.empty((512, 512), np.float32)
    b = ws.empty((512, 512), np.float32)
    assert a is not b
    view = a[3:, ::2]
    del a
    c = ws.empty((512, 512), np.float32)          # a is still viewed: not handed out again
    assert not np.shares_memory(c, view)
    kept = id(b)
    del b
    assert id(ws.empty((512, 512), np.float32)) == kept
    assert ws.empty((10,), np.float32).base is None and ws.empty((10,), np.float32).size == 10
    assert ws.empty((512, 512), np.float64).dtype == np.float64
    np.testing.assert_array_equal(ws.zeros((600, 600), np.float32), 0)


def test_workspace_keeps_at_most_its_limit():
    ws = C._Workspace(limit=3 << 20, smallest=1 << 10)
    held = [ws.empty((1 << 18,), np.float32) for _ in range(5)]          # 1 MiB each
    assert ws.bytes == 3 << 20 and len(held) == 5
    assert len({id(a) for a in held}) == 5


def test_saved_buffers_survive_other_convolutions_and_a_second_backward():
    """A kernel applied twice in one graph, backward twice (retain_graph) with other convolutions
    of the same shapes in between: the saved rows and the input gradients handed on are never
    overwritten.  y1 = conv(x), y2 = conv(2x), L = Σ g·(y1 + y2): dL/dx = 3·conv_xᵀ(g),
    dL/dK = 3·(x ⋆ g)."""
    rng = np.random.default_rng(14)
    for kshape, padding in [((3, 3, 4, 8), "same"), ((5, 5, 4, 64), "valid"), ((5, 5, 1, 6), "valid")]:
        x = rng.standard_normal((6, 24, 24, kshape[2])).astype(np.float32)
        k = (rng.standard_normal(kshape) * 0.1).astype(np.float32)
        xt, kt = Tensor(x, requires_grad=True), Tensor(k, requires_grad=True)
        y1 = ops.conv(xt, kt, padding=padding)
        y2 = ops.conv(xt * 2.0, kt, padding=padding)
        g = rng.standard_normal(y1.shape).astype(np.float32)
        loss = (y1 * Tensor(g)).sum() + (y2 * Tensor(g)).sum()
        loss.backward(retain_graph=True)
        gx1, gk1 = xt.grad.copy(), kt.grad.copy()
        for _ in range(3):
            ops.conv(Tensor(rng.standard_normal(x.shape).astype(np.float32), requires_grad=True),
                     kt, padding=padding).backward(g)
        xt.grad = kt.grad = None
        loss.backward()
        np.testing.assert_array_equal(xt.grad, gx1)
        np.testing.assert_array_equal(kt.grad, gk1)
        (tx, tk, _), ty = _torch_conv(x, k, np.zeros(kshape[-1], np.float32), padding)
        ty.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
        np.testing.assert_allclose(gx1, 3 * tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gk1, 3 * tk.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-2)


PATHS = [  # (x shape, kernel shape, strides): the lowering each one takes
    ((3, 12, 11, 2), (3, 3, 2, 4), 1),     # banded
    ((3, 12, 11, 1), (3, 2, 1, 40), 1),    # one input channel, transposed rows
    ((3, 12, 11, 3), (3, 3, 3, 40), 2),    # plain
    ((3, 12, 11, 3), (1, 1, 3, 40), 1),    # 1×1: the rows are x itself
]


@pytest.mark.parametrize("xs,ks,strides", PATHS)
@pytest.mark.parametrize("bias", ["none", "trained", "frozen", "frozen kernel"])
def test_every_lowering_with_and_without_a_bias_matches_torch(xs, ks, strides, bias):
    """The bias rides in the product (a column of ones) where the rows are a copy; its gradient
    is then the last row of the matrix gradient, or a matrix-vector product when the kernel is
    frozen; without a bias or on the 1×1 view it is added afterwards."""
    rng = np.random.default_rng(15)
    x, k, b = rng.standard_normal(xs), rng.standard_normal(ks), rng.standard_normal(ks[-1])
    xt = Tensor(x, requires_grad=True)
    kt = Tensor(k, requires_grad=bias != "frozen kernel")
    bt = None if bias == "none" else Tensor(b, requires_grad=bias != "frozen")
    y = ops.conv(xt, kt, bt, strides)
    fn = y._ctx
    nk = ks[0] * ks[1]
    if xs[-1] == 1:
        assert fn.bj == 1 and fn.cols.shape[0] == nk + fn.one       # one row per kernel tap
    elif nk == 1:
        assert np.shares_memory(fn.cols, xt.data) and not fn.one
    else:
        assert (fn.bj > 1) is (ks[-1] == 4)
    assert fn.one == (bias != "none" and nk > 1)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    tx, tk, tb = (torch.tensor(v, requires_grad=True)
                  for v in (x.transpose(0, 3, 1, 2), k.transpose(3, 2, 0, 1), b))
    ty = F.conv2d(tx, tk, None if bias == "none" else tb, stride=strides)
    ty.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    close = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y.data, ty.detach().numpy().transpose(0, 2, 3, 1), **close)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy().transpose(0, 2, 3, 1), **close)
    if bias == "frozen kernel":
        assert kt.grad is None
    else:
        np.testing.assert_allclose(kt.grad, tk.grad.numpy().transpose(2, 3, 1, 0), **close)
    if bias in ("trained", "frozen kernel"):
        np.testing.assert_allclose(bt.grad, tb.grad.numpy(), **close)
    elif bt is not None:
        assert bt.grad is None


def test_float32_input_and_float64_bias_keep_the_float32_result():
    rng = np.random.default_rng(16)
    for ks in [(3, 3, 2, 4), (3, 3, 2, 40), (3, 3, 1, 40)]:
        x = rng.standard_normal((2, 8, 8, ks[2])).astype(np.float32)
        k = rng.standard_normal(ks).astype(np.float32)
        y = ops.conv(Tensor(x), Tensor(k), Tensor(rng.standard_normal(ks[-1])))
        assert y.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sp,ks,cin,f,strides,dil,padding", CASES)
def test_compiled_band_adds_match_the_numpy_form(monkeypatch, dtype, sp, ks, cin, f, strides, dil,
                                                 padding):
    """The banded input gradient's adds in one compiled pass (band_add) give the NumPy form's
    sums bit for bit: the same terms in the same order, for every block size; the batch large
    enough that the samples are split over the pool's threads."""
    if C._compiled.kernels("band_add") is None:
        pytest.skip("axone._kernels is not built or AXONE_KERNELS=0")
    rng = np.random.default_rng(12)
    x = rng.standard_normal((40,) + sp + (cin,)).astype(dtype)
    k = rng.standard_normal(ks + (cin, f)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    out_last = _run(x, k, b, strides, padding, dil, 1, 1, monkeypatch)[0].shape[-2]
    divs = _divisors(out_last)
    for bj, bj_dx in itertools.product(divs[1:], divs):
        got = _run(x, k, b, strides, padding, dil, bj, bj_dx, monkeypatch)
        monkeypatch.setattr(C, "_COMPILED_BAND_ADD", False)
        ref = _run(x, k, b, strides, padding, dil, bj, bj_dx, monkeypatch)
        monkeypatch.setattr(C, "_COMPILED_BAND_ADD", True)
        np.testing.assert_array_equal(got[1], ref[1], err_msg=f"bj={bj}, bj_dx={bj_dx}")


def test_band_add_refuses_bad_arguments():
    kern = C._compiled.kernels("band_add")
    if kern is None:
        pytest.skip("axone._kernels is not built or AXONE_KERNELS=0")
    d, s = np.zeros((2, 10), np.float32), np.ones((2, 6), np.float32)
    off = np.array([0, 3], np.int64)
    kern.band_add(d, s, off, np.array([0, 7], np.int64), 3)
    np.testing.assert_array_equal(d[:, 7:], 1)
    with pytest.raises(ValueError, match="out of the sample"):
        kern.band_add(d, s, off, np.array([0, 8], np.int64), 3)
    with pytest.raises(TypeError, match="float32 or both float64"):
        kern.band_add(d, s.astype(np.float64), off, off, 3)
    with pytest.raises(ValueError, match="leading axis"):
        kern.band_add(d, s[:1], off, off, 3)
    with pytest.raises(TypeError, match="C-contiguous"):
        kern.band_add(d, s[:, ::2], off, off, 3)
    with pytest.raises(ValueError, match="int64"):
        kern.band_add(d, s, off.astype(np.float64), off, 3)
    with pytest.raises(ValueError, match="overlap"):
        kern.band_add(d, d, off, off, 3)
    with pytest.raises(TypeError, match="writable"):
        ro = np.zeros((2, 10), np.float32)
        ro.flags.writeable = False
        kern.band_add(ro, s, off, off, 3)
