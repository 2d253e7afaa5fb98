"""Disjoint max pooling (strides == pool_size, no padding) takes the block path of
``axone.ops.conv.Pool``: maximum over the block view ``x[n, i·p + a, j·p + b, c]`` and a backward
that routes each window's gradient to its first maximum in row-major window order.

Every case is compared, output and input gradient exactly (float64 and float32), with the general
offset-slice path (``Pool.apply(..., blocks=False)``), which the PyTorch / Keras parity tests in
test_conv_parity.py cover; then ties (ReLU zeros), NaN, ±inf, odd sizes ('valid' floor), the
dispatch, PyTorch on the LeNet shapes, and float64 finite differences.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from axone import Tensor, ops
from axone.ops.conv import Pool
from axone.utils import check_gradients


def _pool(x, pool, g, blocks):
    """(y, dL/dx) of max pooling with strides = pool and no padding, dL/dy = g."""
    nd = len(pool)
    t = Tensor(x, requires_grad=True)
    y = Pool.apply(t, kind="max", pool=tuple(pool), strides=tuple(pool), pads=[(0, 0)] * nd,
                   blocks=blocks)
    assert y._ctx.blocks is blocks
    y.backward(g)
    return y.data, t.grad


def _out(shape, pool):
    return (shape[0],) + tuple(n // p for n, p in zip(shape[1:-1], pool)) + (shape[-1],)


def _same_as_general(x, pool, seed=0):
    g = np.random.default_rng(seed).standard_normal(_out(x.shape, pool)).astype(x.dtype)
    y1, g1 = _pool(x, pool, g, True)
    y0, g0 = _pool(x, pool, g, False)
    assert y1.dtype == y0.dtype == x.dtype and g1.dtype == g0.dtype == x.dtype
    assert y1.shape == y0.shape and g1.shape == x.shape
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(g1, g0)
    return y1, g1, g


CASES = [((3, 8, 8, 4), (2, 2)), ((2, 9, 7, 3), (2, 2)), ((2, 9, 7, 3), (3, 2)),
         ((2, 10, 11, 5), (2, 3)), ((2, 12, 4), (3,)), ((2, 13, 4), (2,)), ((2, 6, 7, 6, 2), (2, 3, 2)),
         ((2, 5, 7, 3), (1, 2)), ((2, 5, 7, 3), (2, 1)), ((2, 4, 4, 3), (1, 1)), ((1, 17, 17, 2), (4, 4)),
         ((1, 32, 32, 1), (16, 16)), ((2, 28, 28, 6), (2, 2)), ((2, 10, 10, 16), (2, 2))]


def _ids(case):
    return f"{case[0]}-{case[1]}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,pool", CASES, ids=[_ids(c) for c in CASES])
def test_random_inputs_match_the_general_path(shape, pool, dtype):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    _same_as_general(x, pool)


@pytest.mark.parametrize("shape,pool", CASES, ids=[_ids(c) for c in CASES])
def test_ties_after_relu_match_the_general_path(shape, pool):
    rng = np.random.default_rng(2)
    relu = np.maximum(rng.standard_normal(shape), 0.0)                 # many all-zero windows
    _same_as_general(relu, pool)
    small_ints = rng.integers(0, 3, shape).astype(np.float64)         # ties between positives
    _same_as_general(small_ints, pool)
    _same_as_general(np.zeros(shape), pool)                             # every window tied
    _same_as_general(np.ones(shape, np.float32), pool)


def test_each_window_sends_its_gradient_to_one_entry_the_first_maximum():
    x = np.zeros((1, 4, 6, 2))
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0        # window (0, 0): maxima at (0, 1) and (1, 0)
    x[0, 1, 3, 0] = x[0, 1, 2, 0] = 2.0        # window (0, 1): maxima at (1, 1) and (1, 0)
    g = np.arange(1.0, 13.0).reshape(1, 2, 3, 2)
    _same_as_general(x, (2, 2))
    _, gx = _pool(x, (2, 2), g, True)
    want = np.zeros_like(x)
    want[0, 0, 1, 0] = g[0, 0, 0, 0]           # (0, 1) comes before (1, 0) in row-major order
    want[0, 1, 2, 0] = g[0, 0, 1, 0]
    want[0, 0, 4, 0] = g[0, 0, 2, 0]           # all-zero windows: their top-left entry
    want[0, 2, 0, 0], want[0, 2, 2, 0], want[0, 2, 4, 0] = g[0, 1, :, 0]
    want[0, ::2, ::2, 1] = g[0, :, :, 1]
    np.testing.assert_array_equal(gx, want)
    assert np.count_nonzero(gx) == g.size


def test_nan_propagates_and_its_first_nan_takes_the_gradient():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (2, 6, 6, 3)).astype(np.float64)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[0, :2, :2, 0] = [[7.0, 1.0], [2.0, np.nan]]    # the window's only NaN, after its maximum
    x[1, 2:4, 2:4, 1] = np.nan                 # a window of NaNs: the first one gets it all
    y, gx, g = _same_as_general(x, (2, 2))
    assert np.isnan(y[0, 0, 0, 0]) and np.isnan(y[1, 1, 1, 1])
    assert gx[0, 1, 1, 0] == g[0, 0, 0, 0] and gx[0, 0, 0, 0] == 0
    np.testing.assert_array_equal(gx[1, 2:4, 2:4, 1], [[g[1, 1, 1, 1], 0], [0, 0]])
    _same_as_general(np.where(rng.random((2, 7, 5, 2)) < 0.5, np.nan, 1.0), (3, 2))


def test_infinities_match_the_general_path():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, (2, 8, 8, 3)).astype(np.float64)
    x[rng.random(x.shape) < 0.3] = -np.inf
    x[rng.random(x.shape) < 0.05] = np.inf
    x[0, :2, :2, 0] = -np.inf                  # a window of −∞ only
    y, gx, g = _same_as_general(x, (2, 2))
    assert y[0, 0, 0, 0] == -np.inf and gx[0, 0, 0, 0] == g[0, 0, 0, 0]


def test_entries_past_the_last_whole_window_get_no_gradient():
    x = np.random.default_rng(5).standard_normal((2, 9, 11, 3))
    y, gx, _ = _same_as_general(x, (2, 3))
    assert y.shape == (2, 4, 3, 3)
    assert not gx[:, 8:].any() and not gx[:, :, 9:].any()
    np.testing.assert_array_equal(y, x[:, :8, :9].reshape(2, 4, 2, 3, 3, 3).max(axis=(2, 4)))


def test_pool_size_one_returns_a_new_array():
    x = np.random.default_rng(6).standard_normal((2, 3, 3, 2))
    y = ops.max_pool(Tensor(x), 1).data
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(y, x)


@pytest.mark.parametrize("shape,pool,strides,padding,blocks", [
    ((1, 6, 7, 2), 2, None, "valid", True), ((1, 6, 7, 2), (2, 3), None, "valid", True),
    ((1, 6, 8, 2), 2, 2, "same", True),         # "same" that needs no padding
    ((1, 6, 7, 2), 2, None, "same", False),     # "same" that pads the 7
    ((1, 6, 7, 2), 3, 2, "valid", False), ((1, 6, 7, 2), 2, 3, "valid", False),
    ((1, 6, 7, 2), 2, 1, "same", False), ((2, 9, 3), 3, None, "valid", True)])
def test_only_disjoint_unpadded_max_pooling_takes_the_block_path(shape, pool, strides, padding,
                                                                  blocks):
    x = Tensor(np.random.default_rng(7).standard_normal(shape), requires_grad=True)
    assert ops.max_pool(x, pool, strides, padding)._ctx.blocks is blocks
    assert ops.average_pool(x, pool, strides, padding)._ctx.blocks is False


@pytest.mark.parametrize("shape", [(4, 28, 28, 6), (4, 10, 10, 16)])
def test_lenet_pools_after_relu_match_torch(shape):
    rng = np.random.default_rng(8)
    x = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
    x[0, :4, :4] = 0                                   # whole windows of zeros
    t = Tensor(x, requires_grad=True)
    y = ops.max_pool(t, 2)
    assert y._ctx.blocks
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    tt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    ty = F.max_pool2d(tt, 2)
    (ty * torch.tensor(g.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_array_equal(y.data, ty.detach().numpy().transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(t.grad, tt.grad.numpy().transpose(0, 2, 3, 1))


@pytest.mark.parametrize("shape,pool", [((2, 7, 6, 2), (2, 2)), ((2, 9, 8, 3), (3, 2)),
                                        ((2, 9, 2), (2,)), ((1, 4, 6, 4, 2), (2, 3, 2))])
def test_finite_differences(shape, pool):
    # distinct values 0.01 apart or more: the ±1e-6 steps never change a window's maximum
    x = np.random.default_rng(9).permutation(np.linspace(-1, 1, int(np.prod(shape)))).reshape(shape)
    fn = lambda t: ops.max_pool(t, pool)                                    # noqa: E731
    assert fn(Tensor(x, requires_grad=True))._ctx.blocks
    r = check_gradients(fn, x, names=["x"])
    assert r.max_error < 1e-6, r.errors
