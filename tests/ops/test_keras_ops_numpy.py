"""The numpy-style ``keras.ops`` (axone/ops/numpy.py) against Keras 3 on its PyTorch backend.

Each case runs the same call on axone and on Keras with the same random inputs and compares the
values (and dtype kind); a differentiable case also compares the gradients of Σ out·G (G a fixed
random weighting) with torch autograd through Keras, and passes a float64 finite-difference check
(``axone.utils.check_gradients``).
"""
import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)
from keras import ops as K

import axone
from axone import Tensor, ops
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(*shape, seed=0, lo=-2.0, hi=2.0):
    return _rng(seed).uniform(lo, hi, shape)


def _distinct(*shape, seed=0):
    """Values far apart (no ties: sort / top_k / max are differentiable there)."""
    n = int(np.prod(shape))
    return (_rng(seed).permutation(n) * 0.37 - n * 0.1).reshape(shape)


def _pos(*shape, seed=0):
    return _x(*shape, seed=seed, lo=0.5, hi=2.0)


def _unit(*shape, seed=0):
    return _x(*shape, seed=seed, lo=-0.9, hi=0.9)


# name, function of the ops module (axone.ops or keras.ops) and the inputs, inputs
DIFFERENTIABLE = [
    ("cumsum", lambda o, x: o.cumsum(x, axis=1), [_x(3, 4)]),
    ("cumsum_flat", lambda o, x: o.cumsum(x), [_x(3, 4)]),
    ("cumprod", lambda o, x: o.cumprod(x, axis=-1), [_x(2, 5)]),
    ("cumprod_zero", lambda o, x: o.cumprod(o.multiply(x, np.array([1, 0, 1, 1.0])), axis=0),
     [_x(4, 4)]),
    ("flip", lambda o, x: o.flip(x, axis=(0, 2)), [_x(2, 3, 4)]),
    ("flip_all", lambda o, x: o.flip(x), [_x(2, 3)]),
    ("roll", lambda o, x: o.roll(x, 2, axis=1), [_x(3, 5)]),
    ("roll_flat", lambda o, x: o.roll(x, -3), [_x(3, 5)]),
    ("tile", lambda o, x: o.tile(x, (2, 1, 3)), [_x(3, 2)]),
    ("repeat", lambda o, x: o.repeat(x, 3, axis=1), [_x(2, 3)]),
    ("repeat_list", lambda o, x: o.repeat(x, np.array([1, 0, 2]), axis=0), [_x(3, 2)]),
    ("repeat_flat", lambda o, x: o.repeat(x, 2), [_x(2, 3)]),
    ("sort", lambda o, x: o.sort(x, axis=0), [_distinct(4, 3)]),
    ("top_k", lambda o, x: o.top_k(x, 3)[0], [_distinct(2, 6)]),
    ("take_along_axis", lambda o, x: o.take_along_axis(
        x, np.array([[0, 2, 2], [1, 0, 1]]), axis=1), [_x(2, 4)]),
    ("take_along_axis_bcast", lambda o, x: o.take_along_axis(
        x, np.array([[0], [2], [1]]), axis=0), [_x(3, 4)]),
    ("triu", lambda o, x: o.triu(x, 1), [_x(2, 4, 4)]),
    ("tril", lambda o, x: o.tril(x, -1), [_x(3, 5)]),
    ("diag_vec", lambda o, x: o.diag(x, 1), [_x(3)]),
    ("diag_mat", lambda o, x: o.diag(x, -1), [_x(4, 3)]),
    ("diagonal", lambda o, x: o.diagonal(x, 1, 0, 2), [_x(3, 2, 4)]),
    ("trace", lambda o, x: o.trace(x), [_x(4, 4)]),
    ("outer", lambda o, a, b: o.outer(a, b), [_x(3), _x(2, 2, seed=1)]),
    ("inner", lambda o, a, b: o.inner(a, b), [_x(2, 3), _x(4, 3, seed=1)]),
    ("einsum_matmul", lambda o, a, b: o.einsum("ij,jk->ik", a, b), [_x(2, 3), _x(3, 4, seed=1)]),
    ("einsum_batch", lambda o, a, b: o.einsum("bij,bjk->bik", a, b),
     [_x(2, 2, 3), _x(2, 3, 4, seed=1)]),
    ("einsum_sum_out", lambda o, a, b: o.einsum("ij,k->j", a, b), [_x(2, 3), _x(4, seed=1)]),
    ("einsum_implicit", lambda o, a, b: o.einsum("ij,jk", a, b), [_x(2, 3), _x(3, 2, seed=1)]),
    ("einsum_ellipsis", lambda o, a, b: o.einsum("...ij,jk->...ik", a, b),
     [_x(2, 2, 3), _x(3, 2, seed=1)]),
    ("einsum_trace", lambda o, x: o.einsum("ii->", x), [_x(3, 3)]),
    ("einsum_diag", lambda o, x: o.einsum("ii->i", x), [_x(3, 3)]),
    ("einsum_three", lambda o, a, b, c: o.einsum("ij,jk,kl->il", a, b, c),
     [_x(2, 3), _x(3, 4, seed=1), _x(4, 2, seed=2)]),
    ("einsum_transpose", lambda o, x: o.einsum("ijk->kij", x), [_x(2, 3, 4)]),
    ("norm", lambda o, x: o.norm(x), [_x(3, 4)]),
    ("norm_axis", lambda o, x: o.norm(x, axis=1, keepdims=True), [_x(3, 4)]),
    ("norm_l1", lambda o, x: o.norm(x, ord=1, axis=0), [_x(3, 4)]),
    ("norm_p3", lambda o, x: o.norm(x, ord=3, axis=-1), [_x(3, 4)]),
    ("norm_inf", lambda o, x: o.norm(x, ord=np.inf, axis=-1), [_distinct(3, 4)]),
    ("norm_fro", lambda o, x: o.norm(x, ord="fro", axis=(0, 1)), [_x(3, 4)]),
    ("norm_mat1", lambda o, x: o.norm(x, ord=1, axis=(0, 1)), [_distinct(3, 4)]),
    ("norm_matinf", lambda o, x: o.norm(x, ord=np.inf, axis=(0, 1)), [_distinct(3, 4)]),
    ("prod", lambda o, x: o.prod(x, axis=1), [_x(3, 4)]),
    ("prod_zero", lambda o, x: o.prod(o.multiply(x, np.array([1, 0, 1.0])), axis=(0, 1)), [_x(2, 3)]),
    ("prod_keep", lambda o, x: o.prod(x, axis=0, keepdims=True), [_x(3, 2)]),
    ("moveaxis", lambda o, x: o.moveaxis(x, [0, 1], [2, 0]), [_x(2, 3, 4)]),
    ("swapaxes", lambda o, x: o.swapaxes(x, 0, 2), [_x(2, 3, 4)]),
    ("ravel", lambda o, x: o.ravel(x), [_x(2, 3)]),
    ("broadcast_to", lambda o, x: o.broadcast_to(x, (2, 3, 4)), [_x(3, 1)]),
    ("tan", lambda o, x: o.tan(x), [_unit(3, 2)]),
    ("sinh", lambda o, x: o.sinh(x), [_x(3, 2)]),
    ("cosh", lambda o, x: o.cosh(x), [_x(3, 2)]),
    ("arcsin", lambda o, x: o.arcsin(x), [_unit(3, 2)]),
    ("arccos", lambda o, x: o.arccos(x), [_unit(3, 2)]),
    ("arctan", lambda o, x: o.arctan(x), [_x(3, 2)]),
    ("arcsinh", lambda o, x: o.arcsinh(x), [_x(3, 2)]),
    ("arccosh", lambda o, x: o.arccosh(x + 3), [_x(3, 2)]),
    ("arctanh", lambda o, x: o.arctanh(x), [_unit(3, 2)]),
    ("log1p", lambda o, x: o.log1p(x), [_pos(3, 2)]),
    ("expm1", lambda o, x: o.expm1(x), [_x(3, 2)]),
    ("log2", lambda o, x: o.log2(x), [_pos(3, 2)]),
    ("log10", lambda o, x: o.log10(x), [_pos(3, 2)]),
    ("reciprocal", lambda o, x: o.reciprocal(x), [_pos(3, 2)]),
    ("arctan2", lambda o, a, b: o.arctan2(a, b), [_x(3, 2), _x(2, seed=1)]),
    ("hypot", lambda o, a, b: o.hypot(a, b), [_x(3, 2), _x(3, 2, seed=1)]),
    ("logaddexp", lambda o, a, b: o.logaddexp(a, b), [_x(3, 2), _x(3, 2, seed=1)]),
    ("divide_no_nan", lambda o, a, b: o.divide_no_nan(a, o.multiply(b, np.array([1, 0.0]))),
     [_x(3, 2), _pos(3, 2, seed=1)]),
    ("average", lambda o, x: o.average(x, axis=1, weights=np.array([1.0, 2, 3])), [_x(2, 3)]),
    ("amax", lambda o, x: o.amax(x, axis=0), [_distinct(3, 4)]),
    ("ptp", lambda o, x: o.ptp(x, axis=1), [_distinct(3, 4)]),
    ("stop_gradient_sum", lambda o, x: o.stop_gradient(x) * x, [_x(3)]),
    ("logsumexp", lambda o, x: o.logsumexp(x, axis=1), [_x(3, 4)]),
    ("clip", lambda o, x: o.clip(x, -1.0, 1.0), [_x(3, 4)]),
    ("where", lambda o, a, b: o.where(np.array([True, False, True]), a, b),
     [_x(2, 3), _x(3, seed=1)]),
    ("take", lambda o, x: o.take(x, np.array([2, 0, 2]), axis=1), [_x(2, 3)]),
    ("quantile", lambda o, x: o.quantile(x, np.array([0.1, 0.5, 0.9]), axis=1), [_distinct(3, 5)]),
    ("quantile_flat_keep", lambda o, x: o.quantile(x, 0.3, keepdims=True), [_distinct(3, 4)]),
    ("quantile_lower", lambda o, x: o.quantile(x, 0.3, axis=0, method="lower"), [_distinct(5, 2)]),
    ("quantile_midpoint", lambda o, x: o.quantile(x, 0.3, axis=0, method="midpoint"),
     [_distinct(5, 2)]),
    ("percentile", lambda o, x: o.percentile(x, 40, axis=-1), [_distinct(2, 6)]),
    ("median", lambda o, x: o.median(x, axis=0), [_distinct(4, 3)]),
    ("nansum", lambda o, x: o.nansum(x, axis=1), [_x(3, 4)]),
    ("nanmean", lambda o, x: o.nanmean(x, axis=0), [_x(3, 4)]),
    ("nanvar", lambda o, x: o.nanvar(x, axis=1), [_x(3, 4)]),
    ("nanmax", lambda o, x: o.nanmax(x, axis=1), [_distinct(3, 4)]),
    ("nanprod", lambda o, x: o.nanprod(x), [_x(2, 3)]),
    ("sinc", lambda o, x: o.sinc(x), [_x(3, 4)]),
    ("logaddexp2", lambda o, a, b: o.logaddexp2(a, b), [_x(3, 2), _x(3, 2, seed=1)]),
    ("fmax", lambda o, a, b: o.fmax(a, b), [_x(3, 2), _x(3, 2, seed=1)]),
    ("fmin", lambda o, a, b: o.fmin(a, b), [_x(3, 2), _x(3, 2, seed=1)]),
    ("fmod", lambda o, a, b: o.fmod(a, b), [_x(3, 2), _pos(3, 2, seed=1) / 3]),
    ("append", lambda o, a, b: o.append(a, b, axis=0), [_x(2, 3), _x(1, 3, seed=1)]),
    ("append_flat", lambda o, a, b: o.append(a, b), [_x(2, 3), _x(2, seed=1)]),
    ("array_split", lambda o, x: o.array_split(x, 3, axis=1)[1], [_x(2, 7)]),
    ("hsplit", lambda o, x: o.hsplit(x, 2)[1], [_x(2, 4)]),
    ("vsplit", lambda o, x: o.vsplit(x, 2)[0], [_x(4, 3)]),
    ("dstack", lambda o, a, b: o.dstack([a, b]), [_x(2, 3), _x(2, 3, seed=1)]),
    ("meshgrid", lambda o, a, b: o.meshgrid(a, b)[0] * o.meshgrid(a, b)[1], [_x(3), _x(4, seed=1)]),
    ("meshgrid_ij", lambda o, a, b: o.meshgrid(a, b, indexing="ij")[1], [_x(3), _x(4, seed=1)]),
    ("rot90", lambda o, x: o.rot90(x), [_x(2, 3)]),
    ("rot90_k3", lambda o, x: o.rot90(x, k=3, axes=(1, 2)), [_x(2, 3, 4)]),
    ("rot90_k2", lambda o, x: o.rot90(x, k=2), [_x(2, 3)]),
    ("diagflat", lambda o, x: o.diagflat(x, 1), [_x(2, 2)]),
    ("diff", lambda o, x: o.diff(x, n=2, axis=1), [_x(3, 5)]),
    ("trapezoid", lambda o, y: o.trapezoid(y, dx=0.5), [_x(3, 5)]),
    ("trapezoid_x", lambda o, y, x: o.trapezoid(y, x=x), [_x(3, 5), _x(5, seed=1)]),
    ("vdot", lambda o, a, b: o.vdot(a, b), [_x(6), _x(6, seed=1)]),
    ("kron", lambda o, a, b: o.kron(a, b), [_x(2, 3), _x(3, 2, seed=1)]),
    ("vander", lambda o, x: o.vander(x, 4), [_x(3)]),
    ("vander_inc", lambda o, x: o.vander(x, increasing=True), [_x(3)]),
    ("cross", lambda o, a, b: o.cross(a, b), [_x(4, 3), _x(4, 3, seed=1)]),
    ("cross_axis", lambda o, a, b: o.cross(a, b, axis=0), [_x(3, 2), _x(3, 2, seed=1)]),
    ("corrcoef", lambda o, x: o.corrcoef(x), [_x(3, 6)]),
    ("correlate_valid", lambda o, a, b: o.correlate(a, b), [_x(6), _x(3, seed=1)]),
    ("correlate_same", lambda o, a, b: o.correlate(a, b, mode="same"), [_x(6), _x(3, seed=1)]),
    ("correlate_full", lambda o, a, b: o.correlate(a, b, mode="full"), [_x(4), _x(5, seed=1)]),
    ("select", lambda o, a, b: o.select([np.array([True, False, False]), np.array([True, True,
                                         False])], [a, b], 0.5), [_x(3), _x(3, seed=1)]),
    ("bincount_weights", lambda o, w: o.bincount(np.array([0, 2, 2, 3]), weights=w), [_x(4)]),
    ("i0", lambda o, x: o.i0(x), [_x(3, 4, lo=-6, hi=6)]),
    ("slogdet", lambda o, x: o.slogdet(x)[1], [_x(2, 3, 3)]),
]

# Values only (no gradient, or not a float result).
VALUES = [
    ("arange", lambda o: o.arange(5)),
    ("arange_float", lambda o: o.arange(0.5, 3, 0.5)),
    ("arange_neg", lambda o: o.arange(5, 0, -2)),
    ("zeros", lambda o: o.zeros((2, 3))),
    ("ones", lambda o: o.ones(3, dtype="int32")),
    ("full", lambda o: o.full((2, 2), 7)),
    ("full_like", lambda o: o.full_like(np.ones((2, 3), "float32"), 2.5)),
    ("zeros_like", lambda o: o.zeros_like(np.ones((2, 3), "float32"))),
    ("ones_like", lambda o: o.ones_like(np.ones((2, 3), "float32"))),
    ("eye", lambda o: o.eye(3, 4, k=1)),
    ("identity", lambda o: o.identity(3)),
    ("tri", lambda o: o.tri(3, 4, k=-1)),
    ("linspace", lambda o: o.linspace(0.0, 1.0, 7)),
    ("linspace_noend", lambda o: o.linspace(-1.0, 1.0, 4, endpoint=False)),
    ("logspace", lambda o: o.logspace(0.0, 2.0, 5)),
    ("floor", lambda o: o.floor(_x(3, 4).astype("float32"))),
    ("ceil", lambda o: o.ceil(_x(3, 4).astype("float32"))),
    ("trunc", lambda o: o.trunc(_x(3, 4).astype("float32"))),
    ("round", lambda o: o.round(np.array([0.5, 1.5, 2.5, -0.5, 1.26], "float32"))),
    ("round_decimals", lambda o: o.round(np.array([0.123, 1.567], "float32"), decimals=1)),
    ("isnan", lambda o: o.isnan(np.array([1.0, np.nan, np.inf], "float32"))),
    ("isinf", lambda o: o.isinf(np.array([1.0, np.nan, -np.inf], "float32"))),
    ("isfinite", lambda o: o.isfinite(np.array([1.0, np.nan, np.inf], "float32"))),
    ("logical_and", lambda o: o.logical_and(np.array([True, False, True]), np.array([True, True, False]))),
    ("logical_or", lambda o: o.logical_or(np.array([True, False, False]), np.array([False, False, True]))),
    ("logical_xor", lambda o: o.logical_xor(np.array([True, False, True]), np.array([True, True, False]))),
    ("logical_not", lambda o: o.logical_not(np.array([True, False]))),
    ("argsort", lambda o: o.argsort(_distinct(3, 4), axis=0)),
    ("top_k_indices", lambda o: o.top_k(_distinct(2, 6), 3)[1]),
    ("all", lambda o: o.all(np.array([[True, False], [True, True]]), axis=1)),
    ("any", lambda o: o.any(np.array([[True, False], [False, False]]), axis=1)),
    ("count_nonzero", lambda o: o.count_nonzero(np.array([[1.0, 0, 2], [0, 0, 3]]), axis=1)),
    ("isclose", lambda o: o.isclose(np.array([1.0, 2.0]), np.array([1.0 + 1e-9, 2.1]))),
    ("mod", lambda o: o.mod(np.array([5.0, -5.0, 7.5]), np.array([3.0, 3.0, -2.0]))),
    ("floor_divide", lambda o: o.floor_divide(np.array([5.0, -5.0, 7.5]), np.array([3.0, 3.0, -2.0]))),
    ("nan_to_num", lambda o: o.nan_to_num(np.array([np.nan, 1.0, np.inf, -np.inf]), posinf=9.0,
                                          neginf=-9.0)),
    ("cumsum_int", lambda o: o.cumsum(np.arange(6).reshape(2, 3), axis=1)),
    ("prod_int", lambda o: o.prod(np.arange(1, 5))),
    ("size", lambda o: o.size(np.ones((2, 3)))),
    ("nanmean_nan", lambda o: o.nanmean(np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, 6.0]]), axis=1)),
    ("nanmax_nan", lambda o: o.nanmax(np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, 6.0]]), axis=1)),
    ("nanmedian_nan", lambda o: o.nanmedian(np.array([[1.0, np.nan, 3.0, 4.0], [np.nan, 2.0, 6.0, 0.0]]),
                                            axis=1)),
    ("nanquantile_nan", lambda o: o.nanquantile(np.array([1.0, np.nan, 3.0, 4.0, 9.0]), 0.3)),
    ("nanargmax", lambda o: o.nanargmax(np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, 0.0]]), axis=1)),
    ("nancumsum", lambda o: o.nancumsum(np.array([1.0, np.nan, 3.0]))),
    ("quantile_nearest", lambda o: o.quantile(_distinct(7).astype("float32"), 0.4, method="nearest")),
    ("quantile_higher", lambda o: o.quantile(_distinct(7).astype("float32"), 0.4, method="higher")),
    ("bitwise_and", lambda o: o.bitwise_and(np.array([5, 6], "int32"), np.array([3, 3], "int32"))),
    ("bitwise_or", lambda o: o.bitwise_or(np.array([5, 6], "int32"), np.array([3, 3], "int32"))),
    ("bitwise_xor", lambda o: o.bitwise_xor(np.array([5, 6], "int32"), np.array([3, 3], "int32"))),
    ("bitwise_invert", lambda o: o.bitwise_invert(np.array([5, -6], "int32"))),
    ("left_shift", lambda o: o.left_shift(np.array([5, 6], "int32"), np.array([1, 2], "int32"))),
    ("right_shift", lambda o: o.right_shift(np.array([5, 6], "int32"), np.array([1, 2], "int32"))),
    ("gcd", lambda o: o.gcd(np.array([12, 18], "int32"), np.array([8, 27], "int32"))),
    ("lcm", lambda o: o.lcm(np.array([4, 6], "int32"), np.array([6, 4], "int32"))),
    ("signbit", lambda o: o.signbit(np.array([-1.0, 0.0, 2.0], "float32"))),
    ("isin", lambda o: o.isin(np.array([1, 2, 3, 4], "int32"), np.array([2, 4], "int32"))),
    ("digitize", lambda o: o.digitize(np.array([0.2, 1.5, 3.0], "float32"),
                                      np.array([0.0, 1.0, 2.0], "float32"))),
    ("searchsorted", lambda o: o.searchsorted(np.array([1.0, 2.0, 3.0], "float32"),
                                              np.array([2.0, 0.5], "float32"), side="right")),
    ("bincount", lambda o: o.bincount(np.array([0, 2, 2, 3], "int32"), minlength=6)),
    ("unravel_index", lambda o: o.unravel_index(np.array([5, 7], "int32"), (3, 4))[1]),
    ("nonzero", lambda o: o.nonzero(np.array([[0, 1], [2, 0]], "int32"))[1]),
    ("unique", lambda o: o.unique(np.array([3, 1, 3, 2], "int32"))),
    ("histogram", lambda o: o.cast(o.histogram(np.array([0.1, 0.2, 0.65, 1.0], "float32"),
                                               bins=3)[0], "float32")),
    ("histogram_edges", lambda o: o.histogram(np.array([0.1, 0.2, 0.65, 1.0], "float32"), bins=3)[1]),
    ("geomspace", lambda o: o.geomspace(1.0, 100.0, 5)),
    ("hamming", lambda o: o.hamming(6)),
    ("hanning", lambda o: o.hanning(6)),
    ("bartlett", lambda o: o.bartlett(6)),
    ("blackman", lambda o: o.blackman(6)),
    ("kaiser", lambda o: o.kaiser(6, 2.5)),
    ("ldexp", lambda o: o.ldexp(np.array([1.5, 2.0], "float32"), np.array([2, -1], "int32"))),
    ("angle", lambda o: o.angle(np.array([-1.0, 2.0], "float32"))),
    ("real", lambda o: o.real(np.array([-1.0, 2.0], "float32"))),
    ("copy", lambda o: o.copy(np.array([-1.0, 2.0], "float32"))),
    ("view", lambda o: o.view(np.array([1.0, 2.0], "float32"), "int32")),
    ("slogdet_sign", lambda o: o.slogdet(_x(2, 3, 3).astype("float32"))[0]),
]


# torch cannot differentiate these through Keras: their gradients are checked by finite
# differences only.
NO_TORCH_GRADIENT = {"vander", "vander_inc", "bincount_weights"}


def _keras_fn(fn):
    return lambda *a: fn(K, *a)


def _to_np(out):
    if isinstance(out, Tensor):
        return out.data
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(out))


@pytest.mark.parametrize("name,fn", VALUES, ids=[c[0] for c in VALUES])
def test_values_match_keras(name, fn):
    got, want = _to_np(fn(ops)), _to_np(fn(K))
    assert got.shape == want.shape, f"{name}: shape {got.shape} vs Keras {want.shape}"
    assert got.dtype.kind == want.dtype.kind, f"{name}: dtype {got.dtype} vs Keras {want.dtype}"
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-6,
                               atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name,fn,inputs", DIFFERENTIABLE, ids=[c[0] for c in DIFFERENTIABLE])
def test_values_and_gradients_match_keras(name, fn, inputs):
    ax = [Tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    tx = [torch.tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    got, want = fn(ops, *ax), fn(K, *tx)
    g_np, w_np = _to_np(got), _to_np(want)
    assert g_np.shape == w_np.shape, f"{name}: shape {g_np.shape} vs Keras {w_np.shape}"
    np.testing.assert_allclose(g_np, w_np, rtol=1e-5, atol=1e-5, err_msg=name)
    if name in NO_TORCH_GRADIENT:
        return
    weight = _rng(7).standard_normal(w_np.shape).astype(np.float32)
    ops.sum(got * weight).backward()
    (want * torch.tensor(weight)).sum().backward()
    for i, (a, t) in enumerate(zip(ax, tx)):
        tg = np.zeros(a.shape, np.float32) if t.grad is None else t.grad.numpy()
        ag = np.zeros(a.shape, np.float32) if a.grad is None else np.asarray(a.grad)
        np.testing.assert_allclose(ag, tg, rtol=1e-4, atol=1e-4, err_msg=f"{name}: grad x{i}")


# Finite differences also move a stopped operand, so stop_gradient is checked against Keras only.
FINITE_DIFFERENCES = [c for c in DIFFERENTIABLE if not c[0].startswith("stop_gradient")]


@pytest.mark.parametrize("name,fn,inputs", FINITE_DIFFERENCES,
                         ids=[c[0] for c in FINITE_DIFFERENCES])
def test_finite_differences(name, fn, inputs):
    r = check_gradients(lambda *xs: fn(ops, *xs), *inputs)
    assert r.max_error < 1e-6, f"{name}: relative error {r.max_error} at {r.worst_input}"


def test_cross_of_2_vectors_and_imag_of_reals_match_numpy():
    a, b = _x(4, 2), _x(4, 2, seed=1)
    np.testing.assert_allclose(ops.cross(a, b).data, a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
    assert check_gradients(lambda u, v: ops.cross(u, v), a, b).max_error < 1e-6
    mixed = ops.cross(a, _x(4, 3, seed=1))   # a 2-vector is a 3-vector with z = 0
    np.testing.assert_allclose(mixed.data, np.cross(np.pad(a, [(0, 0), (0, 1)]), _x(4, 3, seed=1)))
    np.testing.assert_array_equal(ops.imag(np.array([-1.0, 2.0])).data, [0.0, 0.0])


def test_dtype_rules():
    assert ops.arange(3).dtype == np.int32
    assert ops.arange(3.0).dtype == np.float32
    assert ops.zeros(2).dtype == np.float32
    assert ops.argsort(np.array([3.0, 1.0])).dtype == np.int32
    assert ops.isnan(np.zeros(2)).dtype == np.bool_
    assert ops.floor(np.arange(3)).dtype == np.float32   # integers become floatx, as Keras
    assert ops.round(np.arange(3)).dtype.kind == "i"
    assert ops.cumsum(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert ops.shape(np.ones((2, 3))) == (2, 3)
    assert ops.ndim(np.ones((2, 3))) == 2


def test_piecewise_constant_ops_pass_no_gradient():
    x = Tensor(np.array([0.3, 1.7]), requires_grad=True)
    for f in (ops.floor, ops.ceil, ops.round, ops.trunc):
        assert not f(x).requires_grad
    y = ops.stop_gradient(x)
    assert not y.requires_grad and np.array_equal(y.data, x.data)


def test_stop_gradient_of_a_variable():
    v = axone.Variable(np.ones(3, "float32"))
    assert not ops.stop_gradient(v).requires_grad


def test_keras_ops_numpy_resolves_through_the_alias():
    import subprocess
    import sys
    code = ("import axone.compat; axone.compat.install_keras_alias()\n"
            "from keras.ops import numpy as knp\n"
            "import keras\n"
            "print(knp.cumsum(knp.arange(1, 4)).data.tolist(), keras.ops.einsum('i,i->', [1.0, 2.0], [3.0, 4.0]).data)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[1,", "3,", "6]", "11.0"]


@pytest.mark.parametrize("call,exc,words", [
    (lambda: ops.arange(0, 5, 0), ValueError, ["arange", "step"]),
    (lambda: ops.zeros((2, -1)), ValueError, ["zeros", "negative"]),
    (lambda: ops.zeros("ab"), TypeError, ["zeros", "shape"]),
    (lambda: ops.linspace(0, 1, -2), ValueError, ["linspace", "num"]),
    (lambda: ops.cumsum(np.ones((2, 2)), axis=2), ValueError, ["cumsum", "axis 2"]),
    (lambda: ops.flip(np.ones(3), axis=1.5), TypeError, ["flip", "axis"]),
    (lambda: ops.round(np.ones(2), decimals=0.5), TypeError, ["round", "decimals"]),
    (lambda: ops.top_k(np.ones((2, 3)), 4), ValueError, ["top_k", "k"]),
    (lambda: ops.top_k(np.ones(()), 1), ValueError, ["top_k", "scalar"]),
    (lambda: ops.take_along_axis(np.ones((2, 3)), np.array([[0.5]]), axis=1), TypeError,
     ["take_along_axis", "integers"]),
    (lambda: ops.take_along_axis(np.ones((2, 3)), np.array([[3]]), axis=1), IndexError,
     ["take_along_axis", "[-3, 3)"]),
    (lambda: ops.take_along_axis(np.ones((2, 3)), np.array([1]), axis=1), ValueError,
     ["take_along_axis", "rank"]),
    (lambda: ops.tile(np.ones(2), (-1,)), ValueError, ["tile", "repeats"]),
    (lambda: ops.repeat(np.ones(3), [1, 2]), ValueError, ["repeat", "repeats"]),
    (lambda: ops.repeat(np.ones(3), 1.5), ValueError, ["repeat", "repeats"]),
    (lambda: ops.broadcast_to(np.ones((2, 3)), (3, 3)), ValueError, ["broadcast_to", "(2, 3)"]),
    (lambda: ops.triu(np.ones(3)), ValueError, ["triu", "2 dimensions"]),
    (lambda: ops.diag(np.ones((2, 2, 2))), ValueError, ["diag", "1-D or 2-D"]),
    (lambda: ops.diagonal(np.ones((2, 2)), 0, 1, 1), ValueError, ["diagonal", "differ"]),
    (lambda: ops.einsum("ij,jk->ik", np.ones((2, 3))), ValueError, ["einsum", "2 operands"]),
    (lambda: ops.einsum("ij->i", np.ones(3)), ValueError, ["einsum", "shape"]),
    (lambda: ops.einsum("ij,jk->ik", np.ones((2, 3)), np.ones((2, 2))), ValueError, ["einsum"]),
    (lambda: ops.einsum(3, np.ones(2)), TypeError, ["einsum", "string"]),
    (lambda: ops.numpy.norm(np.ones((2, 2)), ord="nuc", axis=(0, 1)), NotImplementedError,
     ["norm", "nuc"]),
    (lambda: ops.norm(np.ones(3), ord="fro"), ValueError, ["norm", "matrix"]),
    (lambda: ops.moveaxis(np.ones((2, 3)), [0, 1], [1]), ValueError, ["moveaxis"]),
    (lambda: ops.roll(np.ones((2, 3)), (1, 2), axis=0), ValueError, ["roll", "shift"]),
    (lambda: ops.average(np.ones((2, 3)), axis=1, weights=np.ones(2)), ValueError,
     ["average", "weights"]),
    (lambda: ops.unstack(np.ones((2, 3)), num=3), ValueError, ["unstack", "num"]),
    (lambda: ops.quantile(np.ones(3), 0.5, method="cubic"), ValueError, ["quantile", "method"]),
    (lambda: ops.quantile(np.ones(3), 1.5), ValueError, ["quantile", "q"]),
    (lambda: ops.median(np.ones((2, 0)), axis=1), ValueError, ["median", "empty"]),
    (lambda: ops.bincount(np.array([1, -1])), ValueError, ["bincount", "non-negative"]),
    (lambda: ops.bincount(np.array([1.0])), TypeError, ["bincount", "integers"]),
    (lambda: ops.bincount(np.array([1]), sparse=True), NotImplementedError, ["bincount", "sparse"]),
    (lambda: ops.bitwise_and(np.ones(2), np.array([1, 2])), TypeError, ["bitwise_and", "x1"]),
    (lambda: ops.searchsorted(np.ones(3), np.ones(2), side="middle"), ValueError,
     ["searchsorted", "side"]),
    (lambda: ops.correlate(np.ones(3), np.ones(2), mode="wide"), ValueError, ["correlate", "mode"]),
    (lambda: ops.correlate(np.ones((3, 1)), np.ones(2)), ValueError, ["correlate", "1-D"]),
    (lambda: ops.rot90(np.ones((2, 2)), axes=(1, 1)), ValueError, ["rot90", "axes"]),
    (lambda: ops.diff(np.ones(3), n=-1), ValueError, ["diff", "n"]),
    (lambda: ops.meshgrid(np.ones(2), indexing="xz"), ValueError, ["meshgrid", "indexing"]),
    (lambda: ops.histogram(np.ones(3), bins=0), ValueError, ["histogram", "bins"]),
    (lambda: ops.hamming(-1), ValueError, ["hamming", "length"]),
    (lambda: ops.unravel_index(np.array([12]), (3, 4)), ValueError, ["unravel_index", "[0, 12)"]),
    (lambda: ops.argpartition(np.ones(3), 3), ValueError, ["argpartition", "kth"]),
    (lambda: ops.ldexp(np.ones(2), np.ones(2)), TypeError, ["ldexp", "x2"]),
    (lambda: ops.select([np.array([True])], []), ValueError, ["select", "same length"]),
    (lambda: ops.array_split(np.ones(3), 0), ValueError, ["array_split", "positive"]),
    (lambda: ops.vdot(np.ones(3), np.ones(2)), ValueError, ["vdot", "size"]),
    (lambda: ops.cross(np.ones(4), np.ones(3)), ValueError, ["cross", "components"]),
    (lambda: ops.slogdet(np.ones((2, 3))), ValueError, ["slogdet", "square"]),
])
def test_bad_input_is_named(call, exc, words):
    with pytest.raises(exc) as e:
        call()
    for w in words:
        assert w in str(e.value), f"{w!r} not in {e.value}"
