"""Every op of axone.ops.math, numpy, core, linalg and fft on device arrays (the strict stand-in).

Each op runs twice on the same values: on host NumPy arrays, and on ``StrictArray``s, which
refuse any NumPy call and any mixing with host arrays.  The forward results and the backward
gradients (from each node's own ``backward``, walked here so the walk itself adds no NumPy
call) must agree; the ops of ``axone.ops.math`` also give the same gradients through their
``backward_graph`` (the differentiable form used for second derivatives).  An op that reached
for ``np.`` instead of the array module of its inputs fails with the StrictArray TypeError
naming the NumPy call.  The Tensor operators (arithmetic, ``@``, comparisons, indexing, the
reduction and shape methods) are rows of the table too.
"""
import importlib

import numpy as np
import pytest

from axone import Tensor
from axone.autograd import Function
from axone.ops import core as C
from axone.ops import linalg as L
from axone.ops import numpy as N

import strict_xp
from strict_xp import StrictArray, from_strict, to_strict

F = importlib.import_module("axone.ops.fft")     # the attribute axone.ops.fft is the function
M = importlib.import_module("axone.ops.math")


@pytest.fixture(autouse=True, scope="module")
def _registered():
    strict_xp.register()
    yield
    strict_xp.unregister()


_r = np.random.default_rng(7)


def _u(*shape, lo=0.2, hi=0.8):
    return _r.uniform(lo, hi, size=shape)


def _n(*shape):
    return _r.normal(size=shape)


def _spd(n):
    a = _n(n, n)
    return a @ a.T + n * np.eye(n)


A = _u(3, 4)            # values in (0.2, 0.8): every elementwise op is defined there
B = _u(3, 4)
V = _u(5)
SQ = _n(3, 3) + 3 * np.eye(3)
BSQ = _n(2, 3, 3) + 3 * np.eye(3)
INT = np.array([[3, 1, 4], [1, 5, 9]], dtype=np.int32)
IDS = np.array([0, 2, 0, 1, 2], dtype=np.int64)
SIG = _n(2, 16)
Z = _n(3, 4) * 2                # both signs: the piecewise activations take every branch
TIES = np.where(A > 0.5, A, B)  # equal to A where A > 0.5: maximum / minimum split the gradient
ROWS = np.array([[0.3, 0.7, 0.7, 0.1], [0.5, 0.5, 0.2, 0.5], [0.9, 0.1, 0.4, 0.2]])  # tied maxima
STEP = np.array([[-1.0, 0.0, 2.0], [0.0, 3.0, -0.5]])
F32 = A.astype(np.float32)

# axone.ops.math and the Tensor operators it installs; name: (function, inputs), each float
# input a leaf that requires a gradient
MATH = {
    # ---- arithmetic and Tensor operators
    **{name: (getattr(M, name), [A, B]) for name in (
        "add", "subtract", "multiply", "divide", "true_divide", "power", "maximum", "minimum")},
    "maximum_ties": (M.maximum, [A, TIES]),
    "minimum_ties": (M.minimum, [A, TIES]),
    "add_broadcast": (M.add, [A, V[:4]]),
    "multiply_broadcast": (M.multiply, [_u(3, 1), V[:4]]),
    "divide_broadcast": (M.divide, [A, _u(3, 1)]),
    "power_broadcast": (M.power, [A, _u(4)]),
    "op_add": (lambda a, b: a + b, [A, B]),
    "op_sub": (lambda a, b: a - b, [A, B]),
    "op_mul": (lambda a, b: a * b, [A, B]),
    "op_truediv": (lambda a, b: a / b, [A, B]),
    "op_pow": (lambda a, b: a ** b, [A, B]),
    "op_matmul": (lambda a, b: a @ b, [A, _u(4, 2)]),
    "op_neg": (lambda a: -a, [A]),
    "op_pos": (lambda a: +a * 1, [A]),
    "op_abs": (lambda a: abs(a), [Z]),
    "op_scalar_right": (lambda a: ((a + 1) - 2.5) * 3 / 0.5 ** 1, [A]),
    "op_scalar_left": (lambda a: 1.5 - 2 * (3.0 + a), [A]),
    "op_rtruediv": (lambda a: 1 / a, [A]),
    "op_pow_scalar": (lambda a: a ** 2 + a ** 0.5, [A]),
    "op_rpow": (lambda a: 2.0 ** a, [A]),
    "op_float32_scalar": (lambda a: a * 0.5 + 2, [F32]),
    "op_int_tensor_scalar": (lambda i: (i + 2) * 3, [INT]),
    "op_host_array_operand": (lambda a: a * B + V[:4], [A]),
    "op_host_array_left": (lambda a: B - a, [A]),
    "op_list_operand": (lambda a: a + [1.0, 2.0, 3.0, 4.0], [A]),
    "op_raw_array_operand": (lambda a, b: a * b.data, [A, B]),
    "op_raw_array_left": (lambda a, b: b.data + a, [A, B]),
    "op_raw_rmatmul": (lambda a, b: b.data.T @ a, [A, B]),
    "add_raw_arrays": (lambda a, b: M.add(a.data, b.data), [A, B]),
    "add_scalar_and_raw_array": (lambda a: M.multiply(2.0, a.data), [A]),
    "negative": (M.negative, [A]),
    **{f"op_{name}": (lambda a, b, name=name: getattr(a, f"__{name}__")(b), [A, TIES])
       for name in ("eq", "ne", "lt", "le", "gt", "ge")},
    "op_compare_scalar": (lambda a: (a > 0.5, a <= 0.4, a == a), [A]),
    **{name: (getattr(M, name), [A, TIES]) for name in (
        "equal", "not_equal", "less", "less_equal", "greater", "greater_equal")},
    # ---- unary and activations
    **{name: (getattr(M, name), [A]) for name in (
        "exp", "log", "sqrt", "square", "sin", "cos", "tanh", "sigmoid", "erf", "erfc",
        "erfinv", "rsqrt")},
    **{name: (getattr(M, name), [Z]) for name in (
        "abs", "absolute", "sign", "relu", "leaky_relu", "elu", "selu", "softplus", "softsign",
        "silu", "swish")},
    "sigmoid_both_signs": (M.sigmoid, [Z * 30]),
    "tanh_both_signs": (M.tanh, [Z]),
    "hard_sigmoid": (M.hard_sigmoid, [Z * 3]),
    "leaky_relu_slope": (lambda x: M.leaky_relu(x, 0.1), [Z]),
    "elu_alpha": (lambda x: M.elu(x, 0.5), [Z]),
    "gelu": (M.gelu, [Z]),
    "gelu_exact": (lambda x: M.gelu(x, approximate=False), [Z]),
    "heaviside": (M.heaviside, [STEP]),
    "heaviside_half": (lambda x: M.heaviside(x, 0.5), [STEP]),
    "heaviside_tensor": (M.heaviside, [STEP, _u(2, 3)]),
    "erf_int": (M.erf, [INT]),
    "clip": (lambda x: M.clip(x, 0.3, 0.6), [A]),
    "clip_open": (lambda x: M.clip(x, None, 0.5), [A]),
    "clip_int": (lambda i: M.clip(i, 2, 4), [INT]),
    "where": (M.where, [A > 0.5, A, B]),
    "where_scalar": (lambda c, x: M.where(c, x, 0.0), [A > 0.5, A]),
    "where_host_condition": (lambda x, y: M.where(A > 0.5, x, y), [A, B]),
    "where_broadcast": (M.where, [A > 0.5, _u(4), _u(3, 1)]),
    "where_indices": (M.where, [A > 0.5]),
    "op_methods_unary": (lambda x: (x.exp(), x.log(), x.sqrt(), x.tanh(), x.sigmoid(),
                                    x.relu(), x.abs()), [A]),
    # ---- products
    "matmul": (M.matmul, [A, _u(4, 2)]),
    "matmul_vec_vec": (M.matmul, [V, V[::-1]]),
    "matmul_vec_mat": (M.matmul, [A[:, 0], A]),
    "matmul_mat_vec": (M.matmul, [A, V[:4]]),
    "matmul_batched": (M.matmul, [_u(2, 3, 4), _u(4, 5)]),
    "matmul_batched_vec": (M.matmul, [_u(2, 3, 4), _u(4)]),
    "matmul_vec_batched": (M.matmul, [_u(3), _u(2, 3, 4)]),
    "matmul_broadcast_batch": (M.matmul, [_u(2, 1, 3, 4), _u(3, 4, 2)]),
    "dot": (M.dot, [A, _u(4, 2)]),
    "dot_scalar": (M.dot, [_u(), A]),
    "dot_nd": (M.dot, [_u(2, 3, 4), _u(5, 4, 2)]),
    "tensordot": (M.tensordot, [_u(2, 3, 4), _u(3, 4, 5)]),
    "tensordot_axes": (lambda a, b: M.tensordot(a, b, axes=([0, 2], [2, 0])),
                       [_u(2, 3, 4), _u(4, 5, 2)]),
    "op_methods_products": (lambda a, b: (a.matmul(b), a.dot(b)), [A, _u(4, 2)]),
    # ---- reductions
    "sum": (M.sum, [A]),
    "sum_axis": (lambda x: M.sum(x, axis=1), [A]),
    "sum_axes_keepdims": (lambda x: M.sum(x, axis=(0, 2), keepdims=True), [_u(2, 3, 4)]),
    "mean": (M.mean, [A]),
    "mean_axis": (lambda x: M.mean(x, axis=-1, keepdims=True), [A]),
    "max": (M.max, [A]),
    "max_axis_ties": (lambda x: M.max(x, axis=1), [ROWS]),
    "min_axis_keepdims": (lambda x: M.min(x, axis=0, keepdims=True), [ROWS]),
    "var": (lambda x: M.var(x, axis=1), [A]),
    "std": (M.std, [A]),
    "std_axis": (lambda x: M.std(x, axis=0, keepdims=True), [A]),
    "argmax": (lambda x: M.argmax(x, axis=1), [A]),
    "argmax_flat": (M.argmax, [A]),
    "argmin": (lambda x: M.argmin(x, axis=0, keepdims=True), [A]),
    "logsumexp": (lambda x: M.logsumexp(x, axis=1), [Z]),
    "logsumexp_all": (M.logsumexp, [Z]),
    "softmax": (M.softmax, [Z]),
    "softmax_axis0": (lambda x: M.softmax(x, axis=0), [Z]),
    "softmax_float32": (M.softmax, [Z.astype(np.float32)]),
    "log_softmax": (M.log_softmax, [Z]),
    "log_softmax_axis0": (lambda x: M.log_softmax(x, axis=0), [Z]),
    "op_methods_reductions": (lambda x: (x.sum(), x.sum(axis=0), x.mean(axis=1), x.max(),
                                         x.min(axis=1, keepdims=True), x.var(), x.std(axis=0),
                                         x.argmax(axis=1)), [ROWS]),
    # ---- shapes and indexing
    "reshape": (lambda x: M.reshape(x, (4, 3)), [A]),
    "reshape_flat": (lambda x: M.reshape(x, -1), [A]),
    "transpose": (M.transpose, [_u(2, 3, 4)]),
    "transpose_axes": (lambda x: M.transpose(x, (1, 2, 0)), [_u(2, 3, 4)]),
    "op_methods_shapes": (lambda x: (x.reshape(4, 3), x.reshape((2, 6)), x.transpose(), x.T,
                                     x.transpose(1, 0), x.astype("float32")), [A]),
    "expand_dims": (lambda x: M.expand_dims(x, (0, 2)), [A]),
    "squeeze": (M.squeeze, [_u(3, 1, 4)]),
    "squeeze_axis": (lambda x: M.squeeze(x, 1), [_u(3, 1, 4)]),
    "concatenate": (lambda a, b: M.concatenate([a, b], axis=1), [A, B]),
    "concatenate_host_operand": (lambda a: M.concatenate([a, B, V[:4][None]]), [A]),
    "stack": (lambda a, b: M.stack([a, b], axis=1), [A, B]),
    "stack_host_operand": (lambda a: M.stack([B, a]), [A]),
    "split": (lambda x: M.split(x, 2, axis=1), [A]),
    "split_indices": (lambda x: M.split(x, [1, 3], axis=1), [A]),
    "pad": (lambda x: M.pad(x, ((1, 0), (2, 1))), [A]),
    "pad_value": (lambda x: M.pad(x, 1, constant_values=0.5), [A]),
    "cast": (lambda x: M.cast(x, "float32"), [A]),
    "cast_int": (lambda x: M.cast(x, "int32"), [A * 10]),
    "get_item_int": (lambda x: x[1], [A]),
    "get_item_slices": (lambda x: x[:, 1:3], [A]),
    "get_item_mixed": (lambda x: x[None, ::2, ..., -1], [A]),
    "get_item_list": (lambda x: x[[0, 2, 0]], [A]),
    "get_item_pairs": (lambda x: x[[0, 2, 0], [1, 1, 3]], [A]),
    "get_item_host_mask": (lambda x: x[A > 0.5], [A]),
    "get_item_device_indices": (lambda x, i: x[i], [_u(3, 2), IDS]),
    "get_item_device_mask": (lambda x, m: M.get_item(x, m), [A, A > 0.5]),
    "get_item_device_index_tuple": (lambda x, i: x[i, 1:], [_u(3, 4), IDS]),
    "take": (lambda x: M.take(x, [0, 2, 2], axis=1), [A]),
    "take_flat": (lambda x: M.take(x, np.array([0, 5, 11])), [A]),
    "take_device_indices": (lambda x, i: M.take(x, i, axis=0), [_u(3, 2), IDS]),
    "iterate": (lambda x: tuple(x), [A]),
    # ---- no gradient
    "one_hot": (lambda i: M.one_hot(i, 3), [IDS]),
    "one_hot_axis0": (lambda i: M.one_hot(i, 4, axis=0, dtype="float64"), [IDS]),
    "one_hot_float_labels": (lambda i: M.one_hot(i, 3), [IDS.astype(np.float64)]),
    "zeros_like": (M.zeros_like, [A]),
    "ones_like": (lambda x: M.ones_like(x, dtype="int32"), [A]),
    "convert_to_tensor": (lambda x: M.convert_to_tensor(x, dtype="float32"), [A]),
}

# name: (function, inputs); each float input is a leaf that requires a gradient
TABLE = {
    **MATH,
    # ---- numpy: elementwise
    **{name: (getattr(N, name), [A]) for name in (
        "tan", "sinh", "cosh", "arcsin", "arccos", "arctan", "arcsinh", "arctanh", "log1p",
        "expm1", "log2", "log10", "exp2", "reciprocal", "cbrt", "fabs", "floor", "ceil",
        "trunc", "isnan", "isinf", "isfinite", "isneginf", "isposinf", "logical_not",
        "signbit", "sinc", "real", "conj", "conjugate", "angle")},
    "arccosh": (N.arccosh, [A + 1.5]),
    "deg2rad": (N.deg2rad, [A]),
    "round": (lambda x: N.round(x, 1), [A]),
    "arctan2": (N.arctan2, [A, B]),
    "isclose": (N.isclose, [A, B]),
    "nextafter": (N.nextafter, [A, B]),
    "logical_and": (N.logical_and, [A > 0.5, B > 0.5]),
    "logical_or": (N.logical_or, [A > 0.5, B > 0.5]),
    "logical_xor": (N.logical_xor, [A > 0.5, B > 0.5]),
    "mod": (N.mod, [A, B]),
    "floor_divide": (N.floor_divide, [A, B]),
    "fmod_int": (N.fmod, [INT, INT[::-1] + 1]),
    **{name: (getattr(N, name), [INT, INT[::-1]]) for name in (
        "bitwise_and", "bitwise_or", "bitwise_xor", "gcd", "lcm")},
    "left_shift": (N.left_shift, [INT, np.ones_like(INT)]),
    "right_shift": (N.right_shift, [INT, np.ones_like(INT)]),
    "bitwise_left_shift": (N.bitwise_left_shift, [INT, np.ones_like(INT)]),
    "bitwise_right_shift": (N.bitwise_right_shift, [INT, np.ones_like(INT)]),
    "bitwise_invert": (N.bitwise_invert, [INT]),
    "bitwise_not": (N.bitwise_not, [INT]),
    "isin": (N.isin, [INT, np.array([1, 9], np.int32)]),
    # ---- numpy: reductions, cumulative, sorting
    "all": (lambda x: N.all(x, axis=0), [A > 0.3]),
    "any": (lambda x: N.any(x, axis=1), [A > 0.7]),
    "count_nonzero": (lambda x: N.count_nonzero(x, axis=1), [A > 0.5]),
    "cumsum": (lambda x: N.cumsum(x, axis=1), [A]),
    "cumprod": (lambda x: N.cumprod(x, axis=1), [A]),
    "sort": (lambda x: N.sort(x, axis=1), [A]),
    "argsort": (N.argsort, [A]),
    "top_k": (lambda x: N.top_k(x, 2), [A]),
    "top_k_unsorted": (lambda x: N.top_k(x, 3, sorted=False), [A]),
    "take_along_axis": (lambda x, i: N.take_along_axis(x, i, axis=1),
                        [A, np.array([[0, 3], [1, 1], [2, 0]], np.int64)]),
    "argpartition": (lambda x: N.argpartition(x, 1, axis=1), [A]),
    "nonzero": (N.nonzero, [INT > 2]),
    "unique": (lambda x: N.unique(x, return_index=True, return_inverse=True,
                                  return_counts=True), [INT]),
    "unique_size": (lambda x: N.unique(x, size=8), [INT]),
    "histogram": (lambda x: N.histogram(x, bins=4), [V]),
    "digitize": (lambda x: N.digitize(x, [0.3, 0.5, 0.7]), [A]),
    "searchsorted": (N.searchsorted, [np.sort(V), A]),
    "bincount": (N.bincount, [INT]),
    "unravel_index": (lambda i: N.unravel_index(i, (3, 4)), [np.array([0, 5, 11], np.int64)]),
    # ---- numpy: rearrangement
    "flip": (lambda x: N.flip(x, 1), [A]),
    "fliplr": (N.fliplr, [A]),
    "flipud": (N.flipud, [A]),
    "roll": (lambda x: N.roll(x, (1, -2), axis=(0, 1)), [A]),
    "tile": (lambda x: N.tile(x, (2, 1)), [A]),
    "repeat": (lambda x: N.repeat(x, 2, axis=1), [A]),
    "repeat_counts": (lambda x: N.repeat(x, [1, 0, 3], axis=0), [A]),
    "broadcast_to": (lambda x: N.broadcast_to(x, (2, 3, 4)), [A]),
    "size": (N.size, [A]),
    "triu": (lambda x: N.triu(x, 1), [A]),
    "tril": (lambda x: N.tril(x, -1), [A]),
    "diagonal": (lambda x: N.diagonal(x, 1), [A]),
    "diagonal_axes": (lambda x: N.diagonal(x, -1, 2, 0), [_n(3, 2, 4)]),
    "diag": (N.diag, [V]),
    "diag_of_matrix": (N.diag, [A]),
    "einsum_matmul": (lambda a, b: N.einsum("ij,kj->ik", a, b), [A, B]),
    "einsum_three": (lambda a, b, c: N.einsum("ij,jk,k->i", a, b, c), [A, _u(4, 2), _u(2)]),
    "einsum_diagonal": (lambda x: N.einsum("iij->ij", x), [_n(3, 3, 2)]),
    "einsum_trace": (lambda x: N.einsum("ii", x), [SQ]),
    "slogdet": (N.slogdet, [SQ]),
    "vander_int": (N.vander, [np.array([1, 2, 3], np.int32)]),
    # ---- composed from axone.ops.math (get_item, reshape, reductions, constants)
    "logaddexp": (N.logaddexp, [A, B]),
    "nan_to_num": (N.nan_to_num, [A]), "norm": (N.norm, [A]),
    "quantile": (lambda x: N.quantile(x, 0.3, axis=1), [A]),
    "nanmean": (lambda x: N.nanmean(x, axis=1), [A]),
    "moveaxis": (lambda x: N.moveaxis(x, 0, 1), [A]),
    "trace": (N.trace, [SQ]), "outer": (N.outer, [V, V]),
    "cholesky_inverse": (L.cholesky_inverse, [np.linalg.cholesky(_spd(3))]),
    "lstsq": (L.lstsq, [_n(4, 3), _n(4)]),
    "cdist": (C.cdist, [A, B]), "slice": (lambda x: C.slice(x, (0, 1), (2, 2)), [A]),
    "extract_sequences": (lambda x: C.extract_sequences(x, 3, 2), [SIG]),
    "stft": (lambda x: F.stft(x, 8, 4, 8), [SIG]),
    "fft": (lambda re, im: F.fft((re, im)), [_n(2, 8), _n(2, 8)]),
    "fft2": (lambda re, im: F.fft2((re, im)), [_n(4, 4), _n(4, 4)]),
    "ifft2": (lambda re, im: F.ifft2((re, im)), [_n(4, 4), _n(4, 4)]),
    "rfft": (lambda x: F.rfft(x, 10), [SIG]),
    "eigh": (L.eigh, [_spd(3)]),
    "scatter": (lambda v: C.scatter(np.array([[0, 1], [2, 3], [0, 1]]), v, (3, 4)), [V[:3]]),
    "i0": (N.i0, [A]), "imag": (N.imag, [A]),
    "prod": (lambda x: N.prod(x, axis=1), [A]),
    "svd": (L.svd, [_n(4, 3)]), "qr": (L.qr, [_n(4, 3)]), "qr_wide": (L.qr, [_n(3, 5)]),
    # ---- core
    "slice_update": (lambda x, u: C.slice_update(x, (1, 1), u), [A, _u(2, 2)]),
    **{f"scatter_update_{red}": (
        lambda x, u, red=red: C.scatter_update(x, np.array([[0, 1], [2, 3], [0, 1]]), u,
                                               reduction=red), [A, _u(3)])
       for red in (None, "add", "mul", "max", "min")},
    **{f"segment_{red}": (lambda d, red=red: getattr(C, f"segment_{red}")(d, IDS, 3),
                          [_u(5, 2)]) for red in ("sum", "prod", "max", "min")},
    "segment_sum_device_ids": (lambda d, i: C.segment_sum(d, i, 3), [_u(5, 2), IDS]),
    "view_as_complex": (C.view_as_complex, [_n(3, 2)]),
    "view_as_real_of_complex": (lambda x: C.view_as_real(C.view_as_complex(x)), [_n(3, 2)]),
    "in_top_k": (lambda t, p: C.in_top_k(t, p, 2), [np.array([0, 3, 1]), A]),
    "cond": (lambda p, x: C.cond(p, lambda: N.flip(x, 0), lambda: x), [np.array(True), A]),
    "switch": (lambda i, x: C.switch(i, [lambda v: v, lambda v: N.flip(v, 1)], x),
               [np.array(1), A]),
    "saturate_cast": (lambda x: C.saturate_cast(x, "int8"), [INT * 60]),
    # ---- linalg
    "inv": (L.inv, [SQ]),
    "inv_batched": (L.inv, [BSQ]),
    "det": (L.det, [SQ]),
    "logdet": (L.logdet, [_spd(3)]),
    "solve": (L.solve, [SQ, _n(3, 2)]),
    "solve_triangular": (lambda a, b: L.solve_triangular(a, b, lower=True), [SQ, _n(3, 2)]),
    "cholesky": (L.cholesky, [_spd(3)]),
    "eig": (L.eig, [_spd(3)]),
    "svd_values": (lambda x: L.svd(x, compute_uv=False), [_n(4, 3)]),
    "pinv": (L.pinv, [_n(4, 3)]),
    "matrix_rank": (L.matrix_rank, [_n(4, 3)]),
    "lu_factor": (L.lu_factor, [SQ]),
    # ---- fft
    "irfft": (lambda re, im: F.irfft((re, im), 14), [_n(2, 8), _n(2, 8)]),
}

# ------------------------------------------------------------------ the two runs
def _walk(roots):
    """dL/d(leaf) for the (output, seed) pairs, by each node's own backward (no NumPy here)."""
    order, seen = [], set()

    def visit(fn):
        if fn in seen:
            return
        seen.add(fn)
        for t in fn.inputs:
            if t._ctx is not None:
                visit(t._ctx)
        order.append(fn)

    grads, leaves = {}, {}
    for t, seed in roots:
        if t._ctx is not None:
            visit(t._ctx)
            grads[t._ctx] = seed if t._ctx not in grads else grads[t._ctx] + seed
    for fn in reversed(order):
        g = grads.pop(fn, None)
        if g is None:
            continue
        for t, gi, need in zip(fn.inputs, fn.backward(g), fn.needs):
            if gi is None or not need:
                continue
            store = leaves if t._ctx is None else grads
            key = id(t) if t._ctx is None else t._ctx
            store[key] = gi if key not in store else store[key] + gi
    return leaves


def _walk_graph(roots):
    """The same walk through each node's ``backward_graph`` (Tensors in, Tensors out); None when
    a node has none."""
    order, seen = [], set()

    def visit(fn):
        if fn in seen:
            return
        seen.add(fn)
        for t in fn.inputs:
            if t._ctx is not None:
                visit(t._ctx)
        order.append(fn)

    grads, leaves = {}, {}
    for t, seed in roots:
        if t._ctx is not None:
            visit(t._ctx)
            seed = Tensor(seed)
            grads[t._ctx] = seed if t._ctx not in grads else grads[t._ctx] + seed
    if any(fn.backward_graph is None for fn in order):
        return None
    for fn in reversed(order):
        g = grads.pop(fn, None)
        if g is None:
            continue
        for t, gi, need in zip(fn.inputs, fn.backward_graph(g), fn.needs):
            if gi is None or not need:
                continue
            store = leaves if t._ctx is None else grads
            key = id(t) if t._ctx is None else t._ctx
            store[key] = gi if key not in store else store[key] + gi
    return {k: v.data for k, v in leaves.items()}


def _run(fn, inputs, device, walk=_walk):
    move = to_strict if device else np.array
    leaves = [Tensor(move(a), requires_grad=a.dtype.kind == "f") for a in inputs]
    out = fn(*leaves)
    outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if o is not None]
    seed_rng = np.random.default_rng(3)
    roots = []
    for o in outs:
        if o.requires_grad and o.dtype.kind in "fc":
            seed = seed_rng.normal(size=o.shape).astype(o.dtype)
            roots.append((o, move(seed)))
    got = walk(roots)
    if got is None:
        return None
    return [o.data for o in outs], [got.get(id(t)) for t in leaves]


def _check(name, fn, inputs, walk=_walk):
    host = _run(fn, inputs, device=False, walk=walk)
    if host is None:
        pytest.skip(f"{name}: a node has no backward_graph")
    host_out, host_grads = host
    dev_out, dev_grads = _run(fn, inputs, device=True, walk=walk)
    assert len(dev_out) == len(host_out)
    for i, (h, d) in enumerate(zip(host_out, dev_out)):
        assert type(d) is StrictArray, f"{name}: output {i} left the device ({type(d).__name__})"
        assert d.dtype == np.asarray(h).dtype, f"{name}: output {i} dtype {d.dtype} vs {h.dtype}"
        np.testing.assert_allclose(from_strict(d), h, *_tol(d, 1e-12),
                                   err_msg=f"{name}: output {i}")
    for i, (h, d) in enumerate(zip(host_grads, dev_grads)):
        assert (h is None) == (d is None), f"{name}: gradient {i} present on one side only"
        if h is not None:
            assert type(d) is StrictArray, f"{name}: gradient {i} left the device"
            assert d.dtype == np.asarray(h).dtype, f"{name}: gradient {i} dtype"
            np.testing.assert_allclose(from_strict(d), h, *_tol(d, 1e-10),
                                       err_msg=f"{name}: gradient {i}")


def _tol(d, rtol):
    """(rtol, atol): a float32 host run may take a compiled kernel (another summation order)
    where the device run takes the array formula."""
    return (1e-5, 1e-6) if d.dtype in (np.float32, np.complex64) else (rtol, 1e-12)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_op_on_device_arrays(name):
    fn, inputs = TABLE[name]
    _check(name, fn, inputs)


@pytest.mark.parametrize("name", sorted(MATH))
def test_backward_graph_on_device_arrays(name):
    fn, inputs = MATH[name]
    _check(name, fn, inputs, walk=_walk_graph)


def test_convert_to_numpy_copies_a_device_array_to_the_host():
    x = to_strict(A)
    for v in (x, Tensor(x)):
        h = M.convert_to_numpy(v)
        assert type(h) is np.ndarray
        np.testing.assert_array_equal(h, A)
    assert M.convert_to_numpy(Tensor(A)).base is A or M.convert_to_numpy(Tensor(A)) is A


def test_scalar_constants_join_the_device_of_the_tensor():
    # CuPy takes no host ndarray into its ufuncs, not even a 0-d one: a number beside a device
    # tensor becomes a device 0-d array of the tensor's dtype (a float tensor's, else floatx)
    x = Tensor(to_strict(F32))
    for c in (M._const(0.5, x, "t"), M._const(2, x, "t"), M._const(np.float64(0.5), x, "t")):
        assert type(c.data) is StrictArray and c.data.shape == () and c.data.dtype == np.float32
    i = Tensor(to_strict(INT))
    assert M._const(3, i, "t").data.dtype == np.int64
    assert M._const(0.5, i, "t").data.dtype == np.float32
    assert type(M._const(B, x, "t").data) is StrictArray
    assert type(M._const([1, 2], x, "t").data) is StrictArray
    assert type((x * 0.5).data) is StrictArray and (x * 0.5).dtype == np.float32


def test_gradients_flow_in_the_table():
    # the table exercises backward: most float ops give every float input a gradient
    with_grad = 0
    for name in ("tan", "cumprod", "einsum_three", "svd_values", "irfft", "segment_prod", "lu_factor"):
        fn, inputs = TABLE[name]
        _, grads = _run(fn, inputs, device=True)
        with_grad += all(g is not None for g in grads)
    assert with_grad == 7


# ------------------------------------------------------------------ creation on a device
@strict_xp.stand_in_only
def test_creation_ops_allocate_on_the_current_device(monkeypatch):
    from axone import device as dev
    monkeypatch.setattr(dev, "_gpu", (strict_xp.strict_xp, 1, None))
    monkeypatch.setattr(dev, "_default", dev._CPU)
    strict_xp.strict_xp.cuda = _NoCuda
    try:
        with dev.device("gpu:0"):
            made = [N.zeros((2, 3)), N.ones(4), N.full((2,), 1.5), N.eye(3), N.tri(3),
                    N.arange(5), N.linspace(0, 1, 5), N.logspace(0, 1, 3), N.geomspace(1, 8, 4),
                    N.hanning(5), N.kaiser(5, 2.0)]
            assert dev.get_device() == "gpu:0"
        assert all(type(t.data) is StrictArray for t in made)
        np.testing.assert_allclose(from_strict(made[6].data), np.linspace(0, 1, 5))
        assert type(N.zeros(2).data) is np.ndarray          # outside the scope: the CPU
    finally:
        del strict_xp.strict_xp.cuda


class _NoCuda:
    """``xp.cuda.Device(i)`` as a do-nothing context (what the device scope enters)."""

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False


# ------------------------------------------------------------------ the stand-in is strict
@strict_xp.stand_in_only
def test_a_stray_numpy_call_on_a_device_array_fails():
    x = to_strict(A)
    with pytest.raises(TypeError, match=r"numpy\.exp"):
        np.exp(x)
    with pytest.raises(TypeError, match=r"numpy\.sum"):
        np.sum(x)
    with pytest.raises(TypeError, match="implicit conversion"):
        np.asarray(x)
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        x + np.ones((3, 4))
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        x * np.asarray(0.5)                  # CuPy refuses a 0-d host array too
    assert type(x * np.float64(0.5) + 1) is StrictArray
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        strict_xp.strict_xp.maximum(x, np.ones(4))
    with pytest.raises(AttributeError, match="CuPy"):
        strict_xp.strict_xp.add.reduceat


@strict_xp.stand_in_only
def test_an_op_with_a_stray_numpy_call_fails_on_device_arrays():
    from axone.autograd import Function

    class Stray(Function):
        def forward(self, x):
            return np.tanh(x)            # the bug the stand-in is for

        def backward(self, g):
            return (g,)

    t = Tensor(to_strict(A))
    with pytest.raises(TypeError, match=r"numpy\.tanh"):
        Stray.apply(t)
    assert isinstance(Stray.apply(Tensor(A)).data, np.ndarray)   # fine on the host
