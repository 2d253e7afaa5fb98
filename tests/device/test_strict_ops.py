"""Every op of axone.ops.numpy, core, linalg and fft on device arrays (the strict stand-in).

Each op runs twice on the same values: on host NumPy arrays, and on ``StrictArray``s, which
refuse any NumPy call and any mixing with host arrays.  The forward results and the backward
gradients (from each node's own ``backward``, walked here so the walk itself adds no NumPy
call) must agree.  An op that reached for ``np.`` instead of the array module of its inputs fails
with the StrictArray TypeError naming the NumPy call.

Ops built on ``axone.ops.math`` (not converted to the array module of their inputs yet) are in
``NEEDS_MATH``: marked xfail(strict=True), so converting math turns them into failures that ask
to be moved into the table.
"""
import importlib

import numpy as np
import pytest

from axone import Tensor
from axone.ops import core as C
from axone.ops import linalg as L
from axone.ops import numpy as N

import strict_xp
from strict_xp import StrictArray, from_strict, to_strict

F = importlib.import_module("axone.ops.fft")     # the attribute axone.ops.fft is the function


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

# name: (function, inputs); each float input is a leaf that requires a gradient
TABLE = {
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

# ops that reach axone.ops.math's own np. calls (get_item's backward, zeros_like, reshape,
# _const's np.asarray of a raw operand)
NEEDS_MATH = {
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


def _run(fn, inputs, device):
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
    got = _walk(roots)
    return [o.data for o in outs], [got.get(id(t)) for t in leaves]


def _check(name, fn, inputs):
    host_out, host_grads = _run(fn, inputs, device=False)
    dev_out, dev_grads = _run(fn, inputs, device=True)
    assert len(dev_out) == len(host_out)
    for i, (h, d) in enumerate(zip(host_out, dev_out)):
        assert type(d) is StrictArray, f"{name}: output {i} left the device ({type(d).__name__})"
        np.testing.assert_allclose(from_strict(d), h, rtol=1e-12, atol=1e-12,
                                   err_msg=f"{name}: output {i}")
    for i, (h, d) in enumerate(zip(host_grads, dev_grads)):
        assert (h is None) == (d is None), f"{name}: gradient {i} present on one side only"
        if h is not None:
            assert type(d) is StrictArray, f"{name}: gradient {i} left the device"
            np.testing.assert_allclose(from_strict(d), h, rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name}: gradient {i}")


@pytest.mark.parametrize("name", sorted(TABLE))
def test_op_on_device_arrays(name):
    fn, inputs = TABLE[name]
    _check(name, fn, inputs)


@pytest.mark.parametrize("name", sorted(NEEDS_MATH))
@pytest.mark.xfail(strict=True, raises=TypeError,
                   reason="composes axone.ops.math, which still calls NumPy directly")
def test_op_needing_math_on_device_arrays(name):
    fn, inputs = NEEDS_MATH[name]
    _check(name, fn, inputs)


def test_gradients_flow_in_the_table():
    # the table exercises backward: most float ops give every float input a gradient
    with_grad = 0
    for name in ("tan", "cumprod", "einsum_three", "svd_values", "irfft", "segment_prod", "lu_factor"):
        fn, inputs = TABLE[name]
        _, grads = _run(fn, inputs, device=True)
        with_grad += all(g is not None for g in grads)
    assert with_grad == 7


# ------------------------------------------------------------------ creation on a device
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
        strict_xp.strict_xp.maximum(x, np.ones(4))
    with pytest.raises(AttributeError, match="CuPy"):
        strict_xp.strict_xp.add.reduceat


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
