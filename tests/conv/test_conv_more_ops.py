"""The ops behind the 3-D / separable / adaptive layers: float64 finite-difference checks of
every differentiable op (conv 3-D, separable_conv, depth_to_space, space_to_depth, unfold, fold,
adaptive pooling, transposed 1-D/3-D convolution), forward and gradient parity with Keras 3
(torch backend), and the errors on bad input."""
import importlib

import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

from axone import Tensor, ops
from axone.utils import check_gradients

C = importlib.import_module("axone.ops.conv")
FD_TOL = 1e-6


def _r(shape, seed):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape)


def _fd(fn, *inputs, names):
    out = fn(*[Tensor(np.asarray(a, np.float64)) for a in inputs])
    assert out.dtype == np.float64
    r = check_gradients(fn, *inputs, names=names)
    assert r.max_error < FD_TOL, f"max relative error {r.max_error:.3g} on {r.worst_input}"
    for n, a in zip(names, r.analytic):
        assert a is not None and np.any(a != 0), f"no gradient reached {n}"


@pytest.mark.parametrize("strides,padding,dilation,groups", [
    (1, "valid", 1, 1), (2, "same", 1, 1), (1, "same", 2, 1), (1, "valid", 1, 2)])
def test_fd_conv3d(strides, padding, dilation, groups):
    _fd(lambda x, k, b: ops.conv(x, k, b, strides, padding, dilation, groups),
        _r((2, 4, 5, 4, 2), 1), _r((2, 2, 3, 2 // groups, 2), 2), _r((2,), 3),
        names=["x", "kernel", "bias"])


@pytest.mark.parametrize("nd,strides,padding,op", [
    (1, 1, "valid", None), (1, 2, "same", None), (1, 3, "valid", 1), (3, 2, "same", None),
    (3, 1, "valid", None)])
def test_fd_conv_transpose_1d_3d(nd, strides, padding, op):
    xs = (2,) + (3,) * nd + (2,)
    ks = (2,) * nd + (3, 2)
    _fd(lambda x, k, b: ops.conv_transpose(x, k, b, strides, padding, op),
        _r(xs, 4), _r(ks, 5), _r((3,), 6), names=["x", "kernel", "bias"])


@pytest.mark.parametrize("nd,fmt", [(1, "channels_last"), (2, "channels_last"),
                                     (2, "channels_first")])
def test_fd_separable_conv(nd, fmt):
    xs = (2,) + (5,) * nd + (3,) if fmt == "channels_last" else (2, 3) + (5,) * nd
    _fd(lambda x, d, p: ops.separable_conv(x, d, p, 1, "same", fmt),
        _r(xs, 7), _r((3,) * nd + (3, 2), 8), _r((1,) * nd + (6, 4), 9),
        names=["x", "depthwise", "pointwise"])


@pytest.mark.parametrize("fn", ["depth_to_space", "space_to_depth"])
@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_fd_depth_space(fn, fmt):
    f = getattr(ops, fn)
    shape = (2, 4, 4, 8) if fmt == "channels_last" else (2, 8, 4, 4)
    _fd(lambda x: f(x, 2, fmt), _r(shape, 10), names=["x"])


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=(3, 2), dilation=(1, 2),
                                                          padding=1, stride=(2, 1))])
def test_fd_unfold_fold(kw):
    _fd(lambda x: ops.unfold(x, **kw), _r((2, 2, 5, 6), 11), names=["x"])
    blocks = ops.unfold(_r((2, 2, 5, 6), 12), **kw).shape
    _fd(lambda x: ops.fold(x, (5, 6), **kw), _r(blocks, 13), names=["x"])


@pytest.mark.parametrize("fn", ["adaptive_average_pool", "adaptive_max_pool"])
@pytest.mark.parametrize("shape,size,fmt", [((2, 7, 3), 3, "channels_last"),
                                            ((2, 5, 7, 2), (2, 3), "channels_last"),
                                            ((1, 2, 5, 4, 3), 2, "channels_first")])
def test_fd_adaptive_pool(fn, shape, size, fmt):
    f = getattr(ops, fn)
    _fd(lambda x: f(x, size, fmt), _r(shape, 14), names=["x"])


# ------------------------------------------------ parity with keras.ops (values, gradients)
def _both(afn, kfn, *arrays, seed=0):
    g = None
    tx = [torch.tensor(a, requires_grad=True) for a in arrays]
    ky = kfn(*tx)
    g = np.random.default_rng(seed).normal(size=tuple(ky.shape)).astype(np.float32)
    (ky * torch.tensor(g)).sum().backward()
    ax = [Tensor(a, requires_grad=True) for a in arrays]
    ay = afn(*ax)
    (ay * Tensor(g)).sum().backward()
    np.testing.assert_allclose(ay.data, ky.detach().numpy(), rtol=1e-5, atol=1e-5)
    for a, t in zip(ax, tx):
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-5, atol=1e-5)


def _f32(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, padding=1, stride=2),
                                dict(kernel_size=(2, 3), dilation=2)])
def test_unfold_fold_match_keras(kw):
    x = _f32((2, 3, 7, 8), 1)
    _both(lambda t: ops.unfold(t, **kw), lambda t: keras.ops.unfold(t, **kw), x)
    cols = ops.unfold(x, **kw).data
    _both(lambda t: ops.fold(t, (7, 8), **kw), lambda t: keras.ops.fold(t, (7, 8), **kw), cols)


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_depth_space_match_keras(fmt):
    x = _f32((2, 8, 6, 8), 2)
    for fn in ("depth_to_space", "space_to_depth"):
        _both(lambda t: getattr(ops, fn)(t, 2, fmt), lambda t: getattr(keras.ops, fn)(t, 2, fmt), x)


@pytest.mark.parametrize("fn", ["adaptive_average_pool", "adaptive_max_pool"])
@pytest.mark.parametrize("shape,size,fmt", [((2, 9, 3), 4, "channels_last"),
                                            ((2, 7, 5, 3), (3, 2), "channels_last"),
                                            ((2, 3, 7, 5), 3, "channels_first"),
                                            ((1, 5, 6, 4, 2), (2, 4, 3), "channels_last")])
def test_adaptive_pool_matches_keras(fn, shape, size, fmt):
    x = _f32(shape, 3)
    _both(lambda t: getattr(ops, fn)(t, size, fmt),
          lambda t: getattr(keras.ops, fn)(t, size, data_format=fmt), x)


@pytest.mark.parametrize("strides,padding,fmt", [(1, "valid", "channels_last"),
                                                 (2, "same", "channels_last"),
                                                 (1, "same", "channels_first")])
def test_separable_conv_matches_keras(strides, padding, fmt):
    x = _f32((2, 7, 6, 3) if fmt == "channels_last" else (2, 3, 7, 6), 4)
    d, p = _f32((3, 3, 3, 2), 5), _f32((1, 1, 6, 4), 6)
    _both(lambda *t: ops.separable_conv(*t, strides, padding, fmt),
          lambda *t: keras.ops.separable_conv(*t, strides, padding, fmt), x, d, p)


def test_conv3d_matches_keras():
    x, k = _f32((2, 5, 6, 4, 3), 7), _f32((2, 3, 2, 3, 4), 8)
    for s, pad, d in [(1, "valid", 1), (2, "same", 1), (1, "same", 2)]:
        _both(lambda a, b: ops.conv(a, b, None, s, pad, d),
              lambda a, b: keras.ops.conv(a, b, s, pad, dilation_rate=d), x, k)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,match", [
    (lambda: ops.unfold(np.zeros((2, 3, 4)), 2), "unfold: expected a 4-D"),
    (lambda: ops.unfold(np.zeros((1, 1, 3, 3)), 4), "unfold: the spatial size"),
    (lambda: ops.unfold(np.zeros((1, 1, 3, 3)), 2, padding=-1), "unfold: padding"),
    (lambda: ops.fold(np.zeros((1, 5, 4)), 3, 2), "fold: the second axis"),
    (lambda: ops.fold(np.zeros((1, 4, 5)), 3, 2), "fold: output_size"),
    (lambda: ops.fold(np.zeros((1, 4)), 3, 2), "fold: expected a 3-D"),
    (lambda: ops.depth_to_space(np.zeros((1, 2, 2, 6)), 2), "depth_to_space: the channels"),
    (lambda: ops.depth_to_space(np.zeros((1, 2, 2, 4)), 0), "depth_to_space: block_size"),
    (lambda: ops.space_to_depth(np.zeros((1, 3, 2, 4)), 2), "space_to_depth: height"),
    (lambda: ops.space_to_depth(np.zeros((1, 4, 4)), 2), "space_to_depth: expected a 4-D"),
    (lambda: ops.depth_to_space(np.zeros((1, 2, 2, 4)), 2, "nchw"), "depth_to_space: The `data_format` argument"),
    (lambda: ops.adaptive_average_pool(np.zeros((2, 3)), 2), "adaptive_average_pool: expected"),
    (lambda: ops.adaptive_max_pool(np.zeros((2, 3, 3)), 0), "adaptive_max_pool: output_size"),
    (lambda: ops.adaptive_max_pool(np.zeros((2, 3, 3, 1)), (2, 2, 2)), "adaptive_max_pool: output_size"),
    (lambda: ops.separable_conv(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 2)),
                                np.zeros((1, 1, 5, 4))), "separable_conv: pointwise_kernel"),
    (lambda: ops.separable_conv(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 2)),
                                np.zeros((3, 1, 6, 4))), "separable_conv: pointwise_kernel"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_adaptive_pool_output_size_type():
    with pytest.raises(TypeError, match="output_size"):
        ops.adaptive_average_pool(np.zeros((1, 4, 4, 1)), "2")
