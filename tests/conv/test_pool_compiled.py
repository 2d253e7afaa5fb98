"""2-D (and 1-D) pooling in the compiled module (max_pool2d / avg_pool2d and their backwards)
against the NumPy forms of ``axone.ops.conv.Pool`` (``_COMPILED_POOL = False``), PyTorch and
Keras 3; and Conv's ReLU mask and bias gradient in one compiled pass against its NumPy form.

Max pooling (values and index of the first maximum) and every input gradient equal the NumPy
forms exactly; the average's forward sums in another order, so it agrees to rounding.
"""
import importlib
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

from axone import Tensor, ops
from axone.ops import _compiled, _parallel
from axone.utils import check_gradients

C = importlib.import_module("axone.ops.conv")


def _need():
    if _compiled.kernels("max_pool2d") is None:
        pytest.skip("axone._kernels is not built or AXONE_KERNELS=0")


def _pool(kind, x, pool, strides, padding, g=None, seed=1):
    """(y, dL/dx, node) of ops.max_pool / average_pool with the upstream gradient g (random)."""
    t = Tensor(x.copy(), requires_grad=True)
    f = ops.max_pool if kind == "max" else ops.average_pool
    y = f(t, pool, strides, padding)
    node = y._ctx
    compiled = node.compiled is not None
    if g is None:
        g = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    y.backward(g)
    return y.data, t.grad, compiled, g


def _both(kind, x, pool, strides, padding, monkeypatch):
    """The compiled and the NumPy form on the same input and upstream gradient."""
    monkeypatch.setattr(C, "_COMPILED_POOL", True)
    y1, g1, on, g = _pool(kind, x, pool, strides, padding)
    assert on
    monkeypatch.setattr(C, "_COMPILED_POOL", False)
    y0, g0, off, _ = _pool(kind, x, pool, strides, padding, g)
    assert not off
    monkeypatch.setattr(C, "_COMPILED_POOL", True)
    assert y1.dtype == y0.dtype == x.dtype and g1.dtype == g0.dtype == x.dtype
    assert y1.shape == y0.shape and g1.shape == g0.shape == x.shape
    return (y1, g1), (y0, g0), g


def _same(kind, x, pool, strides, padding, monkeypatch):
    (y1, g1), (y0, g0), g = _both(kind, x, pool, strides, padding, monkeypatch)
    np.testing.assert_array_equal(g1, g0)
    if kind == "max":
        np.testing.assert_array_equal(y1, y0)
    else:
        tol = 1e-6 if x.dtype == np.float32 else 1e-14
        np.testing.assert_allclose(y1, y0, rtol=tol, atol=tol)
    return y1, g1, g


SHAPES = [(3, 8, 8, 4), (2, 9, 7, 3), (2, 5, 6, 1), (2, 12, 3)]
GEOMETRY = [(2, None, "valid"), (2, None, "same"), (3, 2, "valid"), (3, 2, "same"),
            (3, 1, "same"), ((2, 3), (1, 2), "same"), ((3, 2), (2, 3), "valid"), (2, 3, "same"),
            (4, 1, "valid")]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("pool,strides,padding", GEOMETRY, ids=str)
def test_compiled_matches_the_numpy_forms(kind, dtype, shape, pool, strides, padding,
                                          monkeypatch):
    _need()
    if len(shape) == 3 and (isinstance(pool, tuple) or isinstance(strides, tuple)):
        pool = pool[0] if isinstance(pool, tuple) else pool
        strides = strides[0] if isinstance(strides, tuple) else strides
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    _same(kind, x, pool, strides, padding, monkeypatch)


@pytest.mark.parametrize("pool,strides,padding", GEOMETRY, ids=str)
def test_ties_nan_and_infinities_follow_the_numpy_forms(pool, strides, padding, monkeypatch):
    """The first maximum of each window takes the gradient (ReLU zeros, small integers), a NaN
    wins (its first one), windows of −∞ (also next to the −∞ padding) as the NumPy form."""
    _need()
    rng = np.random.default_rng(3)
    shape = (2, 9, 8, 3)
    cases = [np.maximum(rng.standard_normal(shape), 0.0), rng.integers(0, 3, shape).astype(float),
             np.zeros(shape), np.ones(shape, np.float32)]
    special = rng.integers(0, 3, shape).astype(np.float64)
    special[rng.random(shape) < 0.3] = -np.inf
    special[rng.random(shape) < 0.05] = np.inf
    special[rng.random(shape) < 0.05] = np.nan
    special[0, :3, :3] = -np.inf                  # the corner windows of −∞ only
    special[1, -3:, -3:] = np.nan
    cases.append(special)
    for x in cases:
        _same("max", x, pool, strides, padding, monkeypatch)
    finite = np.where(np.isfinite(special), special, 0.5)
    _same("avg", finite, pool, strides, padding, monkeypatch)


def test_each_window_sends_its_gradient_to_its_first_maximum():
    _need()
    x = np.zeros((1, 4, 6, 2))
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0        # window (0, 0): maxima at (0, 1) and (1, 0)
    x[0, 1, 3, 0] = x[0, 1, 2, 0] = 2.0        # window (0, 1): maxima at (1, 1) and (1, 0)
    g = np.arange(1.0, 13.0).reshape(1, 2, 3, 2)
    _, gx, on, _ = _pool("max", x, 2, None, "valid", g)
    assert on
    want = np.zeros_like(x)
    want[0, 0, 1, 0] = g[0, 0, 0, 0]
    want[0, 1, 2, 0] = g[0, 0, 1, 0]
    want[0, 0, 4, 0] = g[0, 0, 2, 0]           # all-zero windows: their top-left entry
    want[0, 2, 0, 0], want[0, 2, 2, 0], want[0, 2, 4, 0] = g[0, 1, :, 0]
    want[0, ::2, ::2, 1] = g[0, :, :, 1]
    np.testing.assert_array_equal(gx, want)


def test_overlapping_windows_add_their_gradients():
    """A maximum shared by several windows (pool 3, stride 1) gets the sum of their gradients;
    the average spreads dL/dy / count, the count excluding the "same" padding."""
    _need()
    x = np.zeros((1, 5, 5, 1))
    x[0, 2, 2, 0] = 1.0
    g = np.ones((1, 3, 3, 1))
    _, gx, on, _ = _pool("max", x, 3, 1, "valid", g)
    assert on and gx[0, 2, 2, 0] == 9 and np.count_nonzero(gx) == 1
    y, gx, on, _ = _pool("avg", np.ones((1, 3, 3, 1)), 2, 2, "same", np.ones((1, 2, 2, 1)))
    assert on
    np.testing.assert_array_equal(y[0, :, :, 0], np.ones((2, 2)))           # 4, 2, 2, 1 entries
    np.testing.assert_array_equal(gx[0, :, :, 0], [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5],
                                                   [0.5, 0.5, 1.0]])


def test_only_1d_and_2d_float_pooling_takes_the_compiled_kernels(monkeypatch):
    _need()
    rng = np.random.default_rng(4)
    for kind in ("max", "avg"):
        for x, want in [(rng.standard_normal((2, 6, 6, 2)), True),
                        (rng.standard_normal((2, 6, 2)).astype(np.float32), True),
                        (rng.standard_normal((2, 4, 4, 4, 2)), False),
                        (rng.standard_normal((2, 6, 6, 2)).astype(np.float16), False)]:
            assert _pool(kind, x, 2, None, "valid")[2] is want
    monkeypatch.setattr(C, "_COMPILED_POOL", False)
    assert not _pool("max", rng.standard_normal((2, 6, 6, 2)), 2, None, "valid")[2]


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_batch_shards_give_the_unsplit_results(kind, monkeypatch):
    """Split into batch blocks on worker threads, each block runs the compiled kernels on its
    rows: the same bits as the whole batch at once."""
    _need()
    x = np.random.default_rng(5).standard_normal((7, 10, 9, 3)).astype(np.float32)
    whole = _pool(kind, x, 3, 2, "same")
    seen = []
    real = _parallel.batch_blocks

    def split(n, work):
        seen.append(n)
        return [(0, 3), (3, 5), (5, 7)] if n == 7 else real(n, work)
    monkeypatch.setattr(_parallel, "batch_blocks", split)
    t = Tensor(x.copy(), requires_grad=True)
    y = (ops.max_pool if kind == "max" else ops.average_pool)(t, 3, 2, "same")
    assert y._ctx.parts is not None and all(p.compiled is not None for p in y._ctx.parts)
    y.backward(whole[3])
    assert seen == [7]
    np.testing.assert_array_equal(y.data, whole[0])
    np.testing.assert_array_equal(t.grad, whole[1])


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool,strides", [(2, None), (3, 2), ((3, 2), (1, 2))], ids=str)
def test_matches_torch(kind, pool, strides):
    """Unpadded pooling against F.max_pool2d / F.avg_pool2d (and 1-D), same inputs and upstream
    gradient (channels first there)."""
    _need()
    rng = np.random.default_rng(6)
    x = np.maximum(rng.standard_normal((3, 11, 10, 4)), 0).astype(np.float32)   # ties of zeros
    y, gx, on, g = _pool(kind, x, pool, strides, "valid")
    assert on
    tt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    s = pool if strides is None else strides
    ty = (F.max_pool2d if kind == "max" else F.avg_pool2d)(tt, pool, s)
    (ty * torch.tensor(g.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx, tt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)
    x1 = x[:, 0]
    p1, s1 = (pool[0] if isinstance(pool, tuple) else pool), (s[0] if isinstance(s, tuple) else s)
    y, gx, on, g = _pool(kind, x1, p1, s1, "valid")
    assert on
    tt = torch.tensor(x1.transpose(0, 2, 1), requires_grad=True)
    ty = (F.max_pool1d if kind == "max" else F.avg_pool1d)(tt, p1, s1)
    (ty * torch.tensor(g.transpose(0, 2, 1))).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(0, 2, 1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx, tt.grad.numpy().transpose(0, 2, 1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape,pool,strides", [((2, 9, 9, 3), 3, 1), ((2, 7, 7, 3), 3, 2),
                                                ((2, 9, 9, 3), 3, 2)], ids=str)
def test_same_padding_matches_keras(kind, shape, pool, strides):
    """"same" pooling against Keras 3's layers (symmetric padding here: Keras's torch backend
    replicates edge values for an asymmetric "same" average, see test_conv_parity.py)."""
    _need()
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    y, gx, on, g = _pool(kind, x, pool, strides, "same")
    assert on
    layer = (keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D)(
        pool, strides, padding="same")
    tx = torch.tensor(x, requires_grad=True)
    ky = layer(tx)
    (ky * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y, ky.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind,pool,strides,padding", [("max", 3, 2, "same"), ("max", 2, 1, "valid"),
                                                       ("avg", 3, 2, "same"), ("avg", (2, 3), 1, "same"),
                                                       ("avg", 2, None, "valid")], ids=str)
def test_finite_differences_float64(kind, pool, strides, padding):
    _need()
    shape = (2, 7, 6, 2)
    # distinct values 0.01 apart or more: the ±1e-6 steps never change a window's maximum
    x = np.random.default_rng(8).permutation(np.linspace(-1, 1, int(np.prod(shape)))).reshape(shape)
    f = ops.max_pool if kind == "max" else ops.average_pool
    fn = lambda t: f(t, pool, strides, padding)                                   # noqa: E731
    assert fn(Tensor(x, requires_grad=True))._ctx.compiled is not None
    r = check_gradients(fn, x, names=["x"])
    assert r.max_error < 1e-6, r.errors


def test_the_backward_refuses_indices_outside_the_sample():
    _need()
    k = _compiled.kernels("max_pool2d")
    x = np.zeros((1, 4, 4, 2), np.float32)
    y, idx = np.empty((1, 2, 2, 2), np.float32), np.empty((1, 2, 2, 2), np.int32)
    k.max_pool2d(x, y, idx, 2, 2, 2, 2, 0, 0, 0, 0)
    assert sorted(idx.ravel()) == [0, 1, 4, 5, 16, 17, 20, 21]
    gx = np.empty_like(x)
    for bad in (32, -2, 2 ** 31 - 1):
        idx2 = idx.copy()
        idx2[0, 1, 1, 1] = bad
        with pytest.raises(ValueError, match="max_pool2d_backward: idx holds indices outside"):
            k.max_pool2d_backward(np.ones_like(y), idx2, gx, 2, 2, 2, 2, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="avg_pool2d: top pad must lie in"):
        k.avg_pool2d(x, y, 2, 2, 2, 2, 2, 0, 0, 0)
    with pytest.raises(ValueError, match="max_pool2d: y has size 2 on axis 1, expected 3"):
        k.max_pool2d(x, y, idx, 2, 2, 1, 2, 0, 0, 0, 0)


# ------------------------------------------------------------ Conv: ReLU mask and bias gradient
def _conv(x, k, b, strides, padding, g):
    ts = [Tensor(a.copy(), requires_grad=True) for a in (x, k, b)]
    y = C.conv(*ts, strides=strides, padding=padding, relu=True)
    y.backward(g)
    return [y.data] + [t.grad for t in ts]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kshape,strides,padding", [((3, 3, 3, 6), 1, "same"),     # banded
                                                   ((5, 5, 1, 6), 1, "valid"),     # one channel
                                                   ((3, 3, 3, 24), 2, "same"),     # plain
                                                   ((1, 1, 3, 24), 1, "valid")],   # 1×1
                         ids=str)
def test_conv_relu_mask_in_one_compiled_pass(kshape, strides, padding, dtype, monkeypatch):
    """Conv(relu=True): the compiled mask gives the NumPy form's input and kernel gradients
    exactly; the bias gradient (rows summed in another order) to rounding."""
    if _compiled.kernels("dense_backward") is None:
        pytest.skip("axone._kernels is not built or AXONE_KERNELS=0")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 9, 10, kshape[2])).astype(dtype)
    k = (rng.standard_normal(kshape) * 0.3).astype(dtype)
    b = (rng.standard_normal(kshape[-1]) * 0.3).astype(dtype)
    out = C.conv(Tensor(x), Tensor(k), Tensor(b), strides=strides, padding=padding).shape
    g = rng.standard_normal(out).astype(dtype)
    calls = []
    real = _compiled.kernels

    class Spy:
        def __init__(self, k):
            self.k = k

        def dense_backward(self, g2, y, gm, db):
            calls.append(db is not None)
            return self.k.dense_backward(g2, y, gm, db)
    monkeypatch.setattr(_compiled, "kernels",
                        lambda name: Spy(real(name)) if name == "dense_backward" else real(name))
    got = _conv(x, k, b, strides, padding, g)
    # the bias rides in the product except for the 1×1 kernel, whose rows are x itself
    assert calls == [kshape[:2] == (1, 1)]
    monkeypatch.setattr(C, "_COMPILED_CONV_MASK", False)
    ref = _conv(x, k, b, strides, padding, g)
    assert (ref[0] == 0).mean() > 0.2                   # the mask matters
    for a, r in zip(got[:3], ref[:3]):
        np.testing.assert_array_equal(a, r)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got[3], ref[3], rtol=tol, atol=tol)


def test_conv_relu_finite_differences_float64():
    if _compiled.kernels("dense_backward") is None:
        pytest.skip("axone._kernels is not built or AXONE_KERNELS=0")
    rng = np.random.default_rng(10)
    x, k, b = rng.standard_normal((2, 5, 6, 2)), rng.standard_normal((3, 3, 2, 3)) * 0.5, \
        rng.standard_normal(3) * 0.5
    fn = lambda a, w, c: C.conv(a, w, c, padding="same", relu=True)             # noqa: E731
    r = check_gradients(fn, x, k, b, names=["x", "kernel", "bias"])
    assert r.max_error < 1e-6, r.errors


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_keras_layer_on_the_compiled_path_in_a_model(kind):
    """A Conv2D(relu) → pooling model's outputs and gradients, against the same layers in Keras 3."""
    _need()
    from axone import layers as L
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 12, 12, 2)).astype(np.float32)
    kc = keras.layers.Conv2D(5, 3, activation="relu")
    kp = (keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D)(2)
    ac = L.Conv2D(5, 3, activation="relu")
    ap = (L.MaxPooling2D if kind == "max" else L.AveragePooling2D)(2)
    kc(torch.tensor(x))
    ac(Tensor(x))
    ws = [(rng.standard_normal(w.shape) * 0.4).astype(np.float32) for w in kc.get_weights()]
    kc.set_weights(ws)
    ac.set_weights(ws)
    tx = torch.tensor(x, requires_grad=True)
    ky = kp(kc(tx))
    g = rng.standard_normal(tuple(ky.shape)).astype(np.float32)
    (ky * torch.tensor(g)).sum().backward()
    ax = Tensor(x, requires_grad=True)
    ay = ap(ac(ax))
    assert ay._ctx.compiled is not None
    ay.backward(g)
    np.testing.assert_allclose(ay.data, ky.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ax.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for a, k in zip([w.grad for w in ac.trainable_weights],
                    [w.value.grad.numpy() for w in kc.trainable_weights]):
        np.testing.assert_allclose(a, k, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_on_sample_runs_across_threads_gives_the_same_bits(threads, kind):
    """Large batches are pooled in runs of samples on the product pool's threads: each
    sample's work is its own, so values, indices and gradients are the one-thread bits."""
    from axone import Tensor, ops
    from axone import _native
    rng = np.random.default_rng(11)
    x = rng.normal(size=(24, 40, 40, 8)).astype(np.float32)        # 307k values: several runs
    x[3, 4, 4, :] = np.nan

    def run():
        xt = Tensor(x, requires_grad=True)
        pool = ops.max_pool if kind == "max" else ops.average_pool
        y = pool(xt, 3, 2, padding="same")
        y.backward(np.linspace(-1, 1, y.data.size, dtype=np.float32).reshape(y.shape))
        return y.data.copy(), xt.grad.copy()
    prev = _native.set_num_threads(1)
    try:
        ref = run()
        _native.set_num_threads(threads)
        for _ in range(3):
            got = run()
            np.testing.assert_array_equal(got[0], ref[0])
            np.testing.assert_array_equal(got[1], ref[1])
    finally:
        _native.set_num_threads(prev)
