"""NumPy-style ops under their ``keras.ops.numpy`` names: creation, elementwise math, cumulative
and sorting ops, rearrangements, triangles and diagonals, einsum, norms.

Each differentiable op is a :class:`~axone.autograd.Function` with ``forward`` and ``backward``
side by side under the derivative it implements, or an exact composition of differentiable ops;
ops whose result is piecewise constant (``floor``, ``round``, comparisons) or integer (``argsort``,
``isnan``) carry no gradient, as in Keras.  Dtypes follow Keras 3: integer results are int32,
creation ops default to ``floatx``, float math on integers gives ``floatx``.

This module is also what ``keras.ops.numpy`` resolves to, so it re-exports the ``keras.ops.numpy``
names that live in :mod:`axone.ops.math`.
"""
import builtins as _b

import numpy as np

from .. import backend
from ..autograd.function import Function, unbroadcast
from ..autograd.tensor import Tensor
from ..device import array_module, current_module, to_numpy
from . import math as _m
from .math import *  # noqa: F401,F403 - keras.ops.numpy holds these names too
from .math import __all__ as _math_all
from .math import _t
from .math import _axis as _math_axis

__all__ = [
    # creation
    "arange", "zeros", "ones", "full", "full_like", "empty", "empty_like", "eye", "identity",
    "tri", "linspace", "logspace",
    # elementwise math
    "floor", "ceil", "round", "trunc", "isnan", "isinf", "isfinite", "isneginf", "isposinf",
    "logical_and", "logical_or", "logical_xor", "logical_not", "tan", "sinh", "cosh", "arcsin",
    "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "log1p", "expm1", "log2", "log10",
    "exp2", "reciprocal", "cbrt", "fabs", "arctan2", "hypot", "logaddexp", "mod",
    "floor_divide", "isclose", "allclose", "nan_to_num", "divide_no_nan", "deg2rad", "rad2deg",
    # reductions
    "prod", "amax", "amin", "all", "any", "count_nonzero", "norm", "average", "ptp",
    # cumulative, sorting, selection
    "cumsum", "cumprod", "sort", "argsort", "top_k", "take_along_axis", "stop_gradient",
    # rearrangement
    "flip", "fliplr", "flipud", "roll", "tile", "repeat", "moveaxis", "swapaxes", "ravel",
    "broadcast_to", "ndim", "shape", "size", "unstack", "hstack", "vstack",
    # triangles, diagonals, products
    "triu", "tril", "diag", "diagonal", "trace", "outer", "inner", "einsum",
]


def _axis(axis, ndim, op):
    """Axis argument as a tuple of non-negative ints; a clear TypeError for anything else."""
    if axis is not None and not isinstance(axis, (int, np.integer, tuple, list)):
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, received {axis!r}")
    return _math_axis(axis, ndim, op)


def _xp(*xs):
    """The array module of ``xs`` (arrays, Tensors, or anything else, which counts for nothing)."""
    return array_module(*[x.data if isinstance(x, Tensor) else x for x in xs])


class _Dispatch:
    """``_dx.name(*arrays)`` calls ``name`` of the array module of its arguments: the routines
    the op factories below are built from, resolved at each call."""

    def __getattr__(self, name):
        host = getattr(np, name)      # an AttributeError here for a name NumPy lacks

        def routine(*args, **kwargs):
            xp = array_module(*args)
            return (host if xp is np else getattr(xp, name))(*args, **kwargs)
        routine.__name__ = name
        setattr(self, name, routine)
        return routine


_dx = _Dispatch()


def _floatx(dtype=None):
    return np.dtype(dtype or backend.floatx())


def _float_data(x, op):
    """x's array, integers and booleans converted to floatx (Keras's rule for float math)."""
    x = _t(x, op)
    if x.data.dtype.kind not in "fc":
        return Tensor(x.data.astype(backend.floatx()))
    return x


def _shape(shape, op):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        if isinstance(shape, str):
            raise TypeError
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: shape must be an int or a tuple of ints, received {shape!r}") from None
    if _b.any(s < 0 for s in shape):
        raise ValueError(f"{op}: shape must not hold negative sizes, received {shape}")
    return shape


# ------------------------------------------------------------------ creation
def arange(start, stop=None, step=None, dtype=None):
    """[start, start + step, …) below stop; int32 for integer arguments, else floatx."""
    xp = current_module()
    step = 1 if step is None else step
    if step == 0:
        raise ValueError("arange: step must not be 0")
    if dtype is None:
        ints = _b.all(isinstance(v, (int, np.integer)) for v in (start, stop, step) if v is not None)
        dtype = "int32" if ints else backend.floatx()
    if stop is None:
        start, stop = 0, start
    return Tensor(xp.arange(start, stop, step).astype(dtype))


def zeros(shape, dtype=None):
    return Tensor(current_module().zeros(_shape(shape, "zeros"), dtype=_floatx(dtype)))


def ones(shape, dtype=None):
    return Tensor(current_module().ones(_shape(shape, "ones"), dtype=_floatx(dtype)))


def empty(shape, dtype=None):
    """An uninitialized tensor in Keras; here zeros (the same shape and dtype)."""
    return zeros(shape, dtype)


def full(shape, fill_value, dtype=None):
    xp = current_module()
    fill = fill_value.data if isinstance(fill_value, Tensor) else fill_value
    fill = fill if array_module(fill) is xp else xp.asarray(to_numpy(fill))
    return Tensor(xp.full(_shape(shape, "full"), fill, dtype=_floatx(dtype)))


def full_like(x, fill_value, dtype=None):
    d = _t(x, "full_like").data
    xp = array_module(d)
    fill = fill_value.data if isinstance(fill_value, Tensor) else fill_value
    if array_module(fill) is not xp:
        fill = xp.asarray(to_numpy(fill))
    return Tensor(xp.full(d.shape, fill, dtype=dtype or d.dtype))


def empty_like(x, dtype=None):
    return zeros_like(x, dtype=dtype)  # noqa: F405


def eye(N, M=None, k=0, dtype=None):
    """Ones on the k-th diagonal of an N×M matrix."""
    N, M = _shape((N, N if M is None else M), "eye")
    return Tensor(current_module().eye(N, M, k=int(k), dtype=_floatx(dtype)))


def identity(n, dtype=None):
    return eye(n, dtype=dtype)


def tri(N, M=None, k=0, dtype=None):
    """Ones at and below the k-th diagonal of an N×M matrix."""
    N, M = _shape((N, N if M is None else M), "tri")
    return Tensor(current_module().tri(N, M, k=int(k), dtype=_floatx(dtype)))


def _host_to(xp, v):
    """``v`` (a number, list, array or Tensor) as an array of ``xp``."""
    v = v.data if isinstance(v, Tensor) else v
    if xp is not np and array_module(v) is xp:
        return v
    return xp.asarray(to_numpy(v))


def _check_num(num, op):
    if not isinstance(num, (int, np.integer)) or num < 0:
        raise ValueError(f"{op}: num must be a non-negative int, received {num!r}")


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """num evenly spaced values from start to stop (stop included when ``endpoint``)."""
    xp = current_module()
    _check_num(num, "linspace")
    out = xp.linspace(_host_to(xp, start), _host_to(xp, stop), num, endpoint=endpoint,
                      retstep=retstep, axis=axis)
    if retstep:
        return Tensor(out[0].astype(_floatx(dtype))), Tensor(xp.asarray(out[1], _floatx(dtype)))
    return Tensor(out.astype(_floatx(dtype)))


def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0):
    """base ** linspace(start, stop, num)."""
    xp = current_module()
    _check_num(num, "logspace")
    out = xp.logspace(_host_to(xp, start), _host_to(xp, stop), num, endpoint=endpoint, base=base,
                      axis=axis)
    return Tensor(out.astype(_floatx(dtype)))


# ----------------------------------------------------------- elementwise math
class Elementwise(Function):
    """y = f(x);  dL/dx = dL/dy · f′(x), with f′ written from x and y (``df(x, y)``)."""

    def forward(self, x):
        self.x = x
        f = self.f                          # NumPy's ufunc; a device array takes its module's
        self.y = y = (f if array_module(x) is np else getattr(array_module(x), f.__name__))(x)
        return y

    def backward(self, g):
        return (g * self.df(self.x, self.y),)


def _unary(name, f, df, doc):
    def op(x):
        return Elementwise.apply(_float_data(x, name), f=f, df=df)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


tan = _unary("tan", np.tan, lambda x, y: 1 + y * y, "y = tan x;  dy/dx = 1 + tan² x.")
sinh = _unary("sinh", np.sinh, lambda x, y: _dx.cosh(x), "y = sinh x;  dy/dx = cosh x.")
cosh = _unary("cosh", np.cosh, lambda x, y: _dx.sinh(x), "y = cosh x;  dy/dx = sinh x.")
arcsin = _unary("arcsin", np.arcsin, lambda x, y: 1 / _dx.sqrt(1 - x * x),
                "y = arcsin x;  dy/dx = 1/√(1 − x²).")
arccos = _unary("arccos", np.arccos, lambda x, y: -1 / _dx.sqrt(1 - x * x),
                "y = arccos x;  dy/dx = −1/√(1 − x²).")
arctan = _unary("arctan", np.arctan, lambda x, y: 1 / (1 + x * x),
                "y = arctan x;  dy/dx = 1/(1 + x²).")
arcsinh = _unary("arcsinh", np.arcsinh, lambda x, y: 1 / _dx.sqrt(x * x + 1),
                 "y = arsinh x;  dy/dx = 1/√(x² + 1).")
arccosh = _unary("arccosh", np.arccosh, lambda x, y: 1 / _dx.sqrt(x * x - 1),
                 "y = arcosh x;  dy/dx = 1/√(x² − 1).")
arctanh = _unary("arctanh", np.arctanh, lambda x, y: 1 / (1 - x * x),
                 "y = artanh x;  dy/dx = 1/(1 − x²).")
log1p = _unary("log1p", np.log1p, lambda x, y: 1 / (1 + x), "y = ln(1 + x);  dy/dx = 1/(1 + x).")
expm1 = _unary("expm1", np.expm1, lambda x, y: y + 1, "y = eˣ − 1;  dy/dx = eˣ = y + 1.")
log2 = _unary("log2", np.log2, lambda x, y: 1 / (x * _dx.log(2)), "y = log₂ x;  dy/dx = 1/(x ln 2).")
log10 = _unary("log10", np.log10, lambda x, y: 1 / (x * _dx.log(10)),
               "y = log₁₀ x;  dy/dx = 1/(x ln 10).")
exp2 = _unary("exp2", np.exp2, lambda x, y: y * _dx.log(2), "y = 2ˣ;  dy/dx = 2ˣ ln 2.")
reciprocal = _unary("reciprocal", np.reciprocal, lambda x, y: -y * y, "y = 1/x;  dy/dx = −1/x².")
cbrt = _unary("cbrt", np.cbrt, lambda x, y: 1 / (3 * y * y), "y = ∛x;  dy/dx = 1/(3 y²).")
fabs = _unary("fabs", np.abs, lambda x, y: _dx.sign(x), "y = |x| (float);  dy/dx = sign x.")


def deg2rad(x):
    """x · π/180."""
    return _m.multiply(_float_data(x, "deg2rad"), np.pi / 180)


def rad2deg(x):
    """x · 180/π."""
    return _m.multiply(_float_data(x, "rad2deg"), 180 / np.pi)


def _constant(name, f, keep_int, doc):
    """A piecewise-constant op: its values, no gradient (dy/dx = 0 almost everywhere)."""
    def op(x, *args):
        d = _t(x, name).data
        xp = array_module(d)
        if d.dtype.kind in "iub" and not keep_int:
            d = d.astype(backend.floatx())
        return Tensor(xp.asarray(f(d, *args)))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


floor = _constant("floor", _dx.floor, False, "Largest integer ≤ x (no gradient).")
ceil = _constant("ceil", _dx.ceil, False, "Smallest integer ≥ x (no gradient).")
trunc = _constant("trunc", _dx.trunc, True, "x rounded toward 0 (no gradient).")


def round(x, decimals=0):  # noqa: A001 - keras.ops name
    """x rounded half to even to ``decimals`` places (no gradient)."""
    if not isinstance(decimals, (int, np.integer)):
        raise TypeError(f"round: decimals must be an int, received {decimals!r}")
    d = _t(x, "round").data
    return Tensor(array_module(d).round(d, int(decimals)))


def _predicate(name, f, doc):
    def op(x):
        d = _t(x, name).data
        return Tensor(array_module(d).asarray(f(d)))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


isnan = _predicate("isnan", _dx.isnan, "True where x is NaN.")
isinf = _predicate("isinf", _dx.isinf, "True where x is ±inf.")
isfinite = _predicate("isfinite", _dx.isfinite, "True where x is neither NaN nor ±inf.")
isneginf = _predicate("isneginf", _dx.isneginf, "True where x is −inf.")
isposinf = _predicate("isposinf", _dx.isposinf, "True where x is +inf.")
logical_not = _predicate("logical_not", _dx.logical_not, "Elementwise not (boolean).")
logical_and = _m._compare(_dx.logical_and, "logical_and")
logical_or = _m._compare(_dx.logical_or, "logical_or")
logical_xor = _m._compare(_dx.logical_xor, "logical_xor")
mod = _m._compare(_dx.mod, "mod")
mod.__doc__ = "Remainder of x1 / x2 with the sign of x2 (no gradient here)."
floor_divide = _m._compare(_dx.floor_divide, "floor_divide")
floor_divide.__doc__ = "⌊x1 / x2⌋ (no gradient)."


def isclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    a, b = _m._pair(x1, x2, "isclose")
    return Tensor(array_module(a.data, b.data).isclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    a, b = _m._pair(x1, x2, "allclose")
    xp = array_module(a.data, b.data)
    return Tensor(xp.asarray(xp.allclose(a.data, b.data, rtol=rtol, atol=atol,
                                         equal_nan=equal_nan)))


def arctan2(x1, x2):
    """atan2(x1, x2) = atan(x1 / x2) in the right quadrant, written from differentiable ops:
    ∂/∂x1 = x2/(x1² + x2²), ∂/∂x2 = −x1/(x1² + x2²)."""
    a, b = _m._pair(x1, x2, "arctan2")
    return _Arctan2.apply(_float_data(a, "arctan2"), _float_data(b, "arctan2"))


class _Arctan2(Function):
    """z = atan2(a, b);  dz/da = b/(a² + b²),  dz/db = −a/(a² + b²)."""

    def forward(self, a, b):
        xp = array_module(a, b)
        self.a, self.b = a, b
        return xp.arctan2(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        r = a * a + b * b
        return (unbroadcast(g * b / r, a.shape) if self.needs[0] else None,
                unbroadcast(-g * a / r, b.shape) if self.needs[1] else None)


def hypot(x1, x2):
    """√(x1² + x2²)."""
    a, b = _m._pair(x1, x2, "hypot")
    return _m.sqrt(_m.square(_float_data(a, "hypot")) + _m.square(_float_data(b, "hypot")))


def logaddexp(x1, x2):
    """ln(e^x1 + e^x2) = m + ln(e^(x1−m) + e^(x2−m)), m = max(x1, x2) (no overflow)."""
    a, b = _m._pair(x1, x2, "logaddexp")
    a, b = _float_data(a, "logaddexp"), _float_data(b, "logaddexp")
    xp = array_module(a.data, b.data)
    m = Tensor(xp.maximum(a.data, b.data))
    m = Tensor(xp.where(xp.isfinite(m.data), m.data, 0).astype(m.data.dtype))
    return _m.log(_m.exp(a - m) + _m.exp(b - m)) + m


def divide_no_nan(x1, x2):
    """x1 / x2, and 0 where x2 == 0 (also its gradient)."""
    a, b = _m._pair(x1, x2, "divide_no_nan")
    a, b = _float_data(a, "divide_no_nan"), _float_data(b, "divide_no_nan")
    zero = b.data == 0
    safe = _m.where(zero, _m.ones_like(b), b)
    return _m.where(zero, _m.zeros_like(safe), a / safe)


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN → ``nan``, ±inf → ``posinf``/``neginf`` (the largest finite values by default);
    the gradient passes where x was finite."""
    x = _t(x, "nan_to_num")
    d = x.data
    xp = array_module(d)
    return _m.where(xp.isfinite(d), x, Tensor(xp.nan_to_num(d, nan=nan, posinf=posinf,
                                                            neginf=neginf)))


# ------------------------------------------------------------------ reductions
class Prod(Function):
    """y = Πᵢ xᵢ over ``axes``;  ∂y/∂xₖ = Πᵢ≠ₖ xᵢ (computed without dividing, so zeros are exact)."""

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        return xp.prod(x, axis=self.axes, keepdims=self.keepdims, dtype=x.dtype)

    def backward(self, g):
        xp = array_module(g)
        x, axes = self.x, self.axes
        # Move the reduced axes to the end, flatten them: products of all but one element
        # are exclusive prefix products times exclusive suffix products.
        rest = [a for a in range(x.ndim) if a not in axes]
        xt = xp.transpose(x, rest + list(axes))
        flat = xt.reshape(xt.shape[:len(rest)] + (-1,))
        ones = xp.ones(flat.shape[:-1] + (1,), dtype=x.dtype)
        pre = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
        suf = xp.flip(xp.cumprod(xp.flip(xp.concatenate([flat[..., 1:], ones], axis=-1), -1),
                                 axis=-1), -1)
        others = (pre * suf).reshape(xt.shape)
        others = xp.transpose(others, tuple(np.argsort(rest + list(axes)).tolist()))
        return (others * _m._expand(g, axes, self.keepdims),)


def prod(x, axis=None, keepdims=False, dtype=None):
    x = _t(x, "prod")
    if dtype is not None:
        x = _m.cast(x, dtype)
    elif x.data.dtype.kind in "bu" or (x.data.dtype.kind == "i" and x.data.dtype.itemsize < 4):
        x = _m.cast(x, "int32")
    return Prod.apply(x, axes=_axis(axis, x.ndim, "prod"), keepdims=bool(keepdims))


amax = _m.max
amin = _m.min


def all(x, axis=None, keepdims=False):  # noqa: A001 - keras.ops name
    d = _t(x, "all").data
    xp = array_module(d)
    return Tensor(xp.asarray(xp.all(d, axis=_axis(axis, d.ndim, "all"), keepdims=keepdims)))


def any(x, axis=None, keepdims=False):  # noqa: A001 - keras.ops name
    d = _t(x, "any").data
    xp = array_module(d)
    return Tensor(xp.asarray(xp.any(d, axis=_axis(axis, d.ndim, "any"), keepdims=keepdims)))


def count_nonzero(x, axis=None):
    d = _t(x, "count_nonzero").data
    xp = array_module(d)
    return Tensor(xp.asarray(xp.count_nonzero(d, axis=_axis(axis, d.ndim, "count_nonzero")),
                             dtype=np.int32))


def ptp(x, axis=None, keepdims=False):
    """max − min over ``axis``."""
    return _m.max(x, axis, keepdims) - _m.min(x, axis, keepdims)


def average(x, axis=None, weights=None):
    """Σ wᵢxᵢ / Σ wᵢ over ``axis`` (the mean without weights)."""
    x = _float_data(x, "average")
    if weights is None:
        return _m.mean(x, axis=axis)
    w = _float_data(weights, "average")
    if w.shape != x.shape:
        if axis is None or w.ndim != 1:
            raise ValueError(f"average: weights of shape {w.shape} must have the shape of x "
                             f"{x.shape}, or be 1-D along the given axis")
        ax = _axis(axis, x.ndim, "average")[0]
        if w.shape[0] != x.shape[ax]:
            raise ValueError(f"average: weights of length {w.shape[0]} do not match axis {ax} "
                             f"of x, of length {x.shape[ax]}")
        w = _m.reshape(w, tuple(-1 if i == ax else 1 for i in range(x.ndim)))
    return _m.sum(x * w, axis=axis) / _m.sum(_m.multiply(_m.ones_like(x), w), axis=axis)


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector or matrix norm, as ``numpy.linalg.norm`` (Keras's definition), written from
    differentiable ops: ‖x‖₂ = √Σx², ‖x‖₁ = Σ|x|, ‖x‖∞ = max|x|, ‖x‖ₚ = (Σ|x|ᵖ)^(1/p);
    matrices: Frobenius √Σx², 1 / ∞ (largest column / row sum of |x|)."""
    x = _float_data(x, "norm")
    xp = array_module(x.data)
    if axis is None:
        axes = tuple(range(x.ndim))
        if ord is not None and x.ndim > 2:
            raise ValueError(f"norm: ord={ord!r} needs axis for a tensor of rank {x.ndim}")
    else:
        axes = _axis(axis, x.ndim, "norm")
    if len(axes) == 1 or (axis is None and x.ndim == 1):
        ax = axes
        if ord is None or ord == 2:
            return _m.sqrt(_m.sum(_m.square(x), axis=ax, keepdims=keepdims))
        if ord == 1:
            return _m.sum(_m.abs(x), axis=ax, keepdims=keepdims)
        if ord in (np.inf, float("inf")):
            return _m.max(_m.abs(x), axis=ax, keepdims=keepdims)
        if ord in (-np.inf, float("-inf")):
            return _m.min(_m.abs(x), axis=ax, keepdims=keepdims)
        if ord == 0:
            return Tensor(xp.sum(x.data != 0, axis=ax, keepdims=keepdims).astype(x.data.dtype))
        if isinstance(ord, str):
            raise ValueError(f"norm: ord={ord!r} is a matrix norm; give two axes")
        return _m.power(_m.sum(_m.power(_m.abs(x), ord), axis=ax, keepdims=keepdims), 1.0 / ord)
    if len(axes) != 2:
        if ord is None:
            return _m.sqrt(_m.sum(_m.square(x), axis=axes, keepdims=keepdims))
        raise ValueError(f"norm: ord={ord!r} needs one or two axes, received axis={axis!r}")
    r, c = axes
    if ord is None or ord == "fro":
        return _m.sqrt(_m.sum(_m.square(x), axis=axes, keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        inner_ax, outer_ax = (r, c) if ord in (1, -1) else (c, r)
        s = _m.sum(_m.abs(x), axis=inner_ax, keepdims=True)
        red = _m.max if ord in (1, np.inf) else _m.min
        out = red(s, axis=outer_ax, keepdims=True)
        return out if keepdims else _m.squeeze(out, axis=axes)
    raise NotImplementedError(f"norm: ord={ord!r} for matrices is not supported by axone "
                              f"(supported: None, 'fro', 1, -1, inf, -inf)")


# ------------------------------------------------------ cumulative, sorting
class Cumsum(Function):
    """yₖ = Σ_{i≤k} xᵢ;  dL/dxₖ = Σ_{j≥k} dL/dyⱼ (a reversed cumulative sum)."""

    def forward(self, x):
        xp = array_module(x)
        return xp.cumsum(x, axis=self.axis, dtype=x.dtype)

    def backward(self, g):
        xp = array_module(g)
        ax = self.axis
        return (xp.flip(xp.cumsum(xp.flip(g, ax), axis=ax), ax),)


class Cumprod(Function):
    """yₖ = Π_{i≤k} xᵢ;  dL/dxₖ = Σ_{j≥k} dL/dyⱼ · Π_{i≤j, i≠k} xᵢ.

    Written without dividing by xₖ, so zeros are exact: Π_{i≤j, i≠k} xᵢ = yₖ₋₁ · Π_{k<i≤j} xᵢ.
    """

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        return xp.cumprod(x, axis=self.axis, dtype=x.dtype)

    def backward(self, g):
        xp = array_module(g)
        x = xp.moveaxis(self.x, self.axis, -1)
        g = xp.moveaxis(g, self.axis, -1)
        n = x.shape[-1]
        out = xp.empty_like(x)
        prefix = xp.ones(x.shape[:-1], dtype=x.dtype)     # y_{k−1}
        for k in range(n):
            # Π_{k<i≤j} xᵢ for j = k … n−1, then Σ_j g_j · prefix · that.
            tail = xp.cumprod(xp.concatenate([xp.ones(x.shape[:-1] + (1,), x.dtype),
                                              x[..., k + 1:]], axis=-1), axis=-1)
            out[..., k] = prefix * xp.sum(g[..., k:] * tail, axis=-1)
            prefix = prefix * x[..., k]
        return (xp.moveaxis(out, -1, self.axis),)


def _cumulative(cls, x, axis, dtype, op):
    x = _t(x, op)
    if dtype is not None:
        x = _m.cast(x, dtype)
    elif x.data.dtype.kind in "bu" or (x.data.dtype.kind == "i" and x.data.dtype.itemsize < 4):
        x = _m.cast(x, "int32")
    if axis is None:
        x = _m.reshape(x, (-1,))
        axis = 0
    return cls.apply(x, axis=_axis(axis, x.ndim, op)[0])


def cumsum(x, axis=None, dtype=None):
    """Cumulative sum along ``axis`` (of the flattened tensor when None)."""
    return _cumulative(Cumsum, x, axis, dtype, "cumsum")


def cumprod(x, axis=None, dtype=None):
    """Cumulative product along ``axis`` (of the flattened tensor when None)."""
    return _cumulative(Cumprod, x, axis, dtype, "cumprod")


class TakeAlongAxis(Function):
    """y = x[…, idx, …] along ``axis``;  dL/dx scatters dL/dy back, summing repeated indices."""

    def forward(self, x):
        xp = array_module(x)
        self.shape = x.shape
        return xp.take_along_axis(x, self.idx, axis=self.axis)

    def backward(self, g):
        xp = array_module(g)
        out = xp.zeros(self.shape, dtype=g.dtype)
        idx, ax = self.idx, self.axis
        full = xp.broadcast_to(idx, g.shape)
        grids = list(xp.indices(g.shape, sparse=True))
        grids[ax] = full
        xp.add.at(out, tuple(grids), g)
        return (out,)


def _indices(indices, op):
    xp = _xp(indices)
    idx = xp.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, received dtype {idx.dtype}")
    return idx


def take_along_axis(x, indices, axis=None):
    """Values of x at ``indices`` along ``axis`` (of the flattened x when None)."""
    x = _t(x, "take_along_axis")
    xp = array_module(x.data)
    idx = _indices(indices, "take_along_axis")
    if array_module(idx) is not xp:
        idx = xp.asarray(to_numpy(idx))
    if axis is None:
        x = _m.reshape(x, (-1,))
        idx = idx.reshape(-1)
        axis = 0
    ax = _axis(axis, x.ndim, "take_along_axis")[0]
    if idx.ndim != x.ndim:
        raise ValueError(f"take_along_axis: indices must have the rank of x ({x.ndim}), "
                         f"received shape {idx.shape}")
    n = x.shape[ax]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"take_along_axis: indices must lie in [{-n}, {n}) for axis {ax} of "
                         f"size {n}, received values from {idx.min()} to {idx.max()}")
    idx = xp.where(idx < 0, idx + n, idx)
    try:
        bshape = np.broadcast_shapes(tuple(s for i, s in enumerate(x.shape) if i != ax),
                                     tuple(s for i, s in enumerate(idx.shape) if i != ax))
    except ValueError:
        raise ValueError(f"take_along_axis: indices of shape {idx.shape} do not broadcast "
                         f"against x of shape {x.shape} outside axis {ax}") from None
    bshape = bshape[:ax] + (idx.shape[ax],) + bshape[ax:]
    xshape = bshape[:ax] + (n,) + bshape[ax + 1:]
    if x.shape != xshape:
        x = broadcast_to(x, xshape)
    return TakeAlongAxis.apply(x, idx=xp.broadcast_to(idx, bshape), axis=ax)


def sort(x, axis=-1):
    """Values sorted ascending along ``axis``; the gradient goes back to where each came from."""
    x = _t(x, "sort")
    xp = array_module(x.data)
    if x.ndim == 0:
        return x
    ax = _axis(axis, x.ndim, "sort")[0]
    idx = xp.argsort(x.data, axis=ax, kind="stable")
    return TakeAlongAxis.apply(x, idx=idx, axis=ax)


def argsort(x, axis=-1):
    """Indices (int32) that sort x ascending along ``axis``."""
    d = _t(x, "argsort").data
    xp = array_module(d)
    if d.ndim == 0:
        return Tensor(xp.zeros((), np.int32))
    ax = _axis(axis, d.ndim, "argsort")[0]
    return Tensor(xp.argsort(d, axis=ax, kind="stable").astype(np.int32))


def top_k(x, k, sorted=True):  # noqa: A002 - keras.ops argument name
    """The k largest values along the last axis and their indices (int32); the gradient of the
    values goes back to where each came from."""
    x = _t(x, "top_k")
    xp = array_module(x.data)
    if x.ndim == 0:
        raise ValueError("top_k: x must have at least one dimension, received a scalar")
    if not isinstance(k, (int, np.integer)) or not 0 <= k <= x.shape[-1]:
        raise ValueError(f"top_k: k must be an int in [0, {x.shape[-1]}] (the last axis), "
                         f"received {k!r}")
    idx = xp.argsort(-x.data, axis=-1, kind="stable")[..., :k]
    if not sorted:
        idx = xp.sort(idx, axis=-1)
    return TakeAlongAxis.apply(x, idx=idx, axis=x.ndim - 1), Tensor(idx.astype(np.int32))


def stop_gradient(variable):
    """The same values, cut from the graph (no gradient flows back)."""
    from ..variables import Variable
    if isinstance(variable, Variable):
        variable = variable.value
    return _t(variable, "stop_gradient").detach()


# ---------------------------------------------------------------- rearranging
class Flip(Function):
    """y = x reversed along ``axes``;  dL/dx = dL/dy reversed along the same axes."""

    def forward(self, x):
        xp = array_module(x)
        return xp.flip(x, self.axes)

    def backward(self, g):
        xp = array_module(g)
        return (xp.flip(g, self.axes),)


class Roll(Function):
    """y = x shifted cyclically by ``shift`` along ``axes``;  dL/dx = dL/dy shifted back."""

    def forward(self, x):
        xp = array_module(x)
        return xp.roll(x, self.shift, axis=self.axes)

    def backward(self, g):
        xp = array_module(g)
        return (xp.roll(g, tuple(-s for s in self.shift), axis=self.axes),)


class BroadcastTo(Function):
    """y = x broadcast to ``shape``;  dL/dx = dL/dy summed over the broadcast axes."""

    def forward(self, x):
        xp = array_module(x)
        self.sx = x.shape
        return xp.broadcast_to(x, self.shape)

    def backward(self, g):
        return (unbroadcast(g, self.sx),)


class Tile(Function):
    """y = x repeated rᵢ times along each axis;  dL/dx = Σ of dL/dy over the copies."""

    def forward(self, x):
        xp = array_module(x)
        self.sx = x.shape
        return xp.tile(x, self.reps)

    def backward(self, g):
        sx = (1,) * (g.ndim - len(self.sx)) + self.sx
        reps = self.reps_full
        # Split each axis of g into (copies, original size) and sum the copies.
        g = g.reshape(tuple(v for r, s in zip(reps, sx) for v in (r, s)))
        g = g.sum(axis=tuple(range(0, 2 * len(sx), 2)))
        return (g.reshape(self.sx),)


class Repeat(Function):
    """y = each element of x repeated along ``axis``;  dL/dx = Σ of dL/dy over its repeats."""

    def forward(self, x):
        xp = array_module(x)
        self.sx = x.shape
        r = self.repeats                      # host ints
        return xp.repeat(x, r if xp is np else (int(r) if r.ndim == 0 else r.tolist()),
                         axis=self.axis)

    def backward(self, g):
        xp = array_module(g)
        ax = self.axis
        r = self.repeats
        if r.ndim == 0 or r.size == 1:
            r = int(r.reshape(-1)[0]) if r.size else 0
            if r == 0:
                return (xp.zeros(self.sx, g.dtype),)
            s = g.shape[:ax] + (self.sx[ax], r) + g.shape[ax + 1:]
            return (g.reshape(s).sum(axis=ax + 1),)
        # Per-element counts: segment sums, empty segments stay 0.
        ends = np.cumsum(r)
        out = xp.zeros(self.sx, g.dtype)
        nz = r > 0
        if nz.any():
            idx = [slice(None)] * len(self.sx)
            idx[ax] = np.flatnonzero(nz)
            if xp is np:
                sums = np.add.reduceat(g, (ends - r)[nz], axis=ax)
            else:                            # no reduceat: differences of a running sum
                cs = xp.cumsum(g, axis=ax)
                zero = xp.zeros(g.shape[:ax] + (1,) + g.shape[ax + 1:], g.dtype)
                cs = xp.concatenate([zero, cs], axis=ax)
                at = [slice(None)] * g.ndim
                at[ax] = xp.asarray(ends[nz])
                hi = cs[tuple(at)]
                at[ax] = xp.asarray((ends - r)[nz])
                sums = hi - cs[tuple(at)]
                idx[ax] = xp.asarray(idx[ax])
            out[tuple(idx)] = sums
        return (out,)


def flip(x, axis=None):
    x = _t(x, "flip")
    return Flip.apply(x, axes=_axis(axis, x.ndim, "flip"))


def fliplr(x):
    x = _t(x, "fliplr")
    if x.ndim < 2:
        raise ValueError(f"fliplr: x must have at least 2 dimensions, received shape {x.shape}")
    return flip(x, 1)


def flipud(x):
    x = _t(x, "flipud")
    if x.ndim < 1:
        raise ValueError("flipud: x must have at least 1 dimension, received a scalar")
    return flip(x, 0)


def roll(x, shift, axis=None):
    x = _t(x, "roll")
    if axis is None:
        return _m.reshape(roll(_m.reshape(x, (-1,)), shift, 0), x.shape)
    axes = _axis(axis, x.ndim, "roll")
    shifts = (shift,) * len(axes) if isinstance(shift, (int, np.integer)) else tuple(shift)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift {shift!r} and axis {axis!r} must have the same length")
    return Roll.apply(x, shift=tuple(int(s) for s in shifts), axes=axes)


def broadcast_to(x, shape):
    x = _t(x, "broadcast_to")
    shape = _shape(shape, "broadcast_to")
    try:
        np.broadcast_shapes(x.shape, shape)
        if len(shape) < x.ndim or np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast a tensor of shape {x.shape} to "
                         f"{shape}") from None
    return BroadcastTo.apply(x, shape=shape)


def tile(x, repeats):
    x = _t(x, "tile")
    reps = (repeats,) if isinstance(repeats, (int, np.integer)) else tuple(
        to_numpy(repeats.data if isinstance(repeats, Tensor) else repeats).reshape(-1).tolist())
    if _b.any(not isinstance(r, int) or r < 0 for r in reps):
        raise ValueError(f"tile: repeats must be non-negative ints, received {repeats!r}")
    n = _b.max(len(reps), x.ndim)
    full = (1,) * (n - len(reps)) + reps
    return Tile.apply(x, reps=reps, reps_full=full)


def repeat(x, repeats, axis=None):
    x = _t(x, "repeat")
    r = to_numpy(repeats.data if isinstance(repeats, Tensor) else repeats)
    if r.dtype.kind not in "iu" or (r.size and r.min() < 0) or r.ndim > 1:
        raise ValueError(f"repeat: repeats must be a non-negative int or a 1-D list of them, "
                         f"received {repeats!r}")
    if axis is None:
        x = _m.reshape(x, (-1,))
        axis = 0
    ax = _axis(axis, x.ndim, "repeat")[0]
    if r.ndim == 1 and r.size not in (1, x.shape[ax]):
        raise ValueError(f"repeat: {r.size} repeats for axis {ax} of size {x.shape[ax]}")
    return Repeat.apply(x, repeats=r, axis=ax)


def moveaxis(x, source, destination):
    x = _t(x, "moveaxis")
    src = _axis(source, x.ndim, "moveaxis")
    dst = _axis(destination, x.ndim, "moveaxis")
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source!r} and destination {destination!r} must "
                         f"have the same number of axes")
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _m.transpose(x, tuple(order))


def swapaxes(x, axis1, axis2):
    x = _t(x, "swapaxes")
    a = _axis(axis1, x.ndim, "swapaxes")[0]
    b = _axis(axis2, x.ndim, "swapaxes")[0]
    order = list(range(x.ndim))
    order[a], order[b] = order[b], order[a]
    return _m.transpose(x, tuple(order))


def ravel(x):
    return _m.reshape(_t(x, "ravel"), (-1,))


def ndim(x):
    return _t(x, "ndim").ndim


def shape(x):
    """The static shape, a tuple of ints."""
    return tuple(_t(x, "shape").shape)


def size(x):
    d = _t(x, "size").data
    return Tensor(array_module(d).asarray(d.size, dtype=np.int32))


def unstack(x, num=None, axis=0):
    """The slices of x along ``axis``, as a list."""
    x = _t(x, "unstack")
    ax = _axis(axis, x.ndim, "unstack")[0]
    if num is not None and num != x.shape[ax]:
        raise ValueError(f"unstack: num={num} does not match axis {ax} of size {x.shape[ax]}")
    return [_m.get_item(x, (slice(None),) * ax + (i,)) for i in range(x.shape[ax])]


def hstack(xs):
    xs = [_t(x, "hstack") for x in xs]
    return _m.concatenate(xs, axis=0 if xs and xs[0].ndim == 1 else 1)


def vstack(xs):
    xs = [_t(x, "vstack") for x in xs]
    return _m.concatenate([_m.reshape(x, (1, -1)) if x.ndim < 2 else x for x in xs], axis=0)


# ------------------------------------------------- triangles, diagonals, products
class Mask(Function):
    """y = x · M for a fixed 0/1 mask M;  dL/dx = dL/dy · M."""

    def forward(self, x):
        xp = array_module(x)
        return xp.where(self.mask, x, xp.zeros((), x.dtype))

    def backward(self, g):
        xp = array_module(g)
        return (xp.where(self.mask, g, xp.zeros((), g.dtype)),)


def _triangle(x, k, lower, op):
    x = _t(x, op)
    xp = array_module(x.data)
    if x.ndim < 2:
        raise ValueError(f"{op}: x must have at least 2 dimensions, received shape {x.shape}")
    n, m = x.shape[-2:]
    mask = xp.tri(n, m, k=int(k), dtype=bool)
    if not lower:
        mask = ~xp.tri(n, m, k=int(k) - 1, dtype=bool)
    return Mask.apply(x, mask=mask)


def triu(x, k=0):
    """x with the elements below the k-th diagonal set to 0 (on the last two axes)."""
    return _triangle(x, k, False, "triu")


def tril(x, k=0):
    """x with the elements above the k-th diagonal set to 0 (on the last two axes)."""
    return _triangle(x, k, True, "tril")


class Diagonal(Function):
    """y = the ``offset``-th diagonal of x over (axis1, axis2), as the last axis;
    dL/dx = dL/dy placed back on that diagonal, 0 elsewhere."""

    def forward(self, x):
        xp = array_module(x)
        self.sx = x.shape
        return xp.diagonal(x, self.offset, self.axis1, self.axis2).copy()

    def backward(self, g):
        xp = array_module(g)
        out = xp.zeros(self.sx, g.dtype)
        # the two axes last (a view into ``out``), then the diagonal's places by index
        moved = xp.moveaxis(out, (self.axis1, self.axis2), (-2, -1))
        k, n = self.offset, g.shape[-1]
        i = xp.arange(n)
        moved[..., i + _b.max(-k, 0), i + _b.max(k, 0)] = g
        return (out,)


class Diag(Function):
    """1-D x: y = the matrix with x on its k-th diagonal;  dL/dx = that diagonal of dL/dy."""

    def forward(self, x):
        xp = array_module(x)
        return xp.diag(x, self.k)

    def backward(self, g):
        xp = array_module(g)
        return (xp.diagonal(g, self.k).copy(),)


def diagonal(x, offset=0, axis1=0, axis2=1):
    x = _t(x, "diagonal")
    if x.ndim < 2:
        raise ValueError(f"diagonal: x must have at least 2 dimensions, received shape {x.shape}")
    a1 = _axis(axis1, x.ndim, "diagonal")[0]
    a2 = _axis(axis2, x.ndim, "diagonal")[0]
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 must differ, both are {a1}")
    return Diagonal.apply(x, offset=int(offset), axis1=a1, axis2=a2)


def diag(x, k=0):
    """1-D x: a matrix with x on its k-th diagonal; 2-D x: its k-th diagonal."""
    x = _t(x, "diag")
    if x.ndim == 1:
        return Diag.apply(x, k=int(k))
    if x.ndim == 2:
        return diagonal(x, k, 0, 1)
    raise ValueError(f"diag: x must be 1-D or 2-D, received shape {x.shape}")


def trace(x, offset=0, axis1=0, axis2=1):
    """Σ of the ``offset``-th diagonal over (axis1, axis2)."""
    return _m.sum(diagonal(x, offset, axis1, axis2), axis=-1)


def outer(x1, x2):
    """zᵢⱼ = x1ᵢ · x2ⱼ of the flattened inputs."""
    a, b = _m._pair(x1, x2, "outer")
    return _m.multiply(_m.reshape(a, (-1, 1)), _m.reshape(b, (1, -1)))


def inner(x1, x2):
    """Σ over the last axes of x1 and x2 (a product with a scalar for 0-d inputs)."""
    a, b = _m._pair(x1, x2, "inner")
    if a.ndim == 0 or b.ndim == 0:
        return _m.multiply(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"inner: last axes differ: shapes {a.shape} and {b.shape}")
    return _m.tensordot(a, b, axes=([-1], [-1]))


class Einsum(Function):
    """z = einsum(spec, x₁, …, xₙ);  dL/dxᵢ = einsum(spec′, dL/dz, the other operands), where spec′
    reads dL/dz with the output's letters and writes xᵢ's letters (letters of xᵢ missing from
    the others and from the output are summed over, so they come back by broadcasting; a
    letter repeated in xᵢ, a diagonal, is written back onto that diagonal)."""

    def forward(self, *xs):
        xp = array_module(*xs)
        self.xs = xs
        return xp.asarray(xp.einsum(self.spec, *xs, optimize=len(xs) > 2))

    def backward(self, g):
        xp = array_module(g)
        ins, out = self.ins, self.out
        grads = []
        for i, x in enumerate(self.xs):
            if not self.needs[i]:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(ins) if j != i]
            ops = [g] + [y for j, y in enumerate(self.xs) if j != i]
            have = set(out).union(*others)
            letters = ins[i]
            # Letters of xᵢ seen nowhere else: the gradient is constant along them.
            target = "".join(dict.fromkeys(c for c in letters if c in have))
            gi = xp.einsum(",".join([out] + others) + "->" + target, *ops,
                           optimize=len(ops) > 2)
            full = {c: x.shape[letters.index(c)] for c in letters}
            shape_t = tuple(full[c] for c in target)
            gi = xp.broadcast_to(gi, shape_t)
            # Expand to xᵢ's own letters (missing ones broadcast, repeated ones on the diagonal).
            uniq = "".join(dict.fromkeys(letters))   # target is uniq less some letters, in order
            gu = gi
            for c in uniq:
                if c not in target:
                    gu = xp.expand_dims(gu, uniq.index(c))
            gu = xp.broadcast_to(gu, tuple(full[c] for c in uniq))
            if len(uniq) == len(letters):
                gx = xp.einsum(uniq + "->" + letters, gu) if uniq != letters else gu
            else:
                gx = _on_diagonals(xp, gu, uniq, letters, full, g.dtype)
            grads.append(xp.ascontiguousarray(gx, dtype=g.dtype))
        return tuple(grads)


def _on_diagonals(xp, gu, uniq, letters, full, dtype):
    """The array over ``letters`` (some repeated) that is ``gu`` (over the distinct ``uniq``)
    on the diagonals of the repeated letters and 0 elsewhere: each repeat of a letter c gets a
    fresh letter c′ and a factor δ(c, c′), g_x = einsum(gu, δ…)."""
    spare = iter(c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 if c not in letters)
    seen, out, deltas = set(), [], []
    for c in letters:
        if c in seen:
            f = next(spare)
            out.append(f)
            deltas.append(c + f)
        else:
            seen.add(c)
            out.append(c)
    eyes = [xp.eye(full[d[0]], dtype=dtype) for d in deltas]
    return xp.einsum(",".join([uniq] + deltas) + "->" + "".join(out), gu, *eyes)


def _parse_einsum(subscripts, shapes):
    """Explicit input and output letter strings for ``subscripts`` (ellipses expanded)."""
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, out = spec.split("->")
    else:
        lhs, out = spec, None
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(ins)} operands, "
                         f"received {len(shapes)}")
    used = set(c for c in spec if c.isalpha())
    free = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used)
    nell = _b.max([len(s) - (len(t) - 3) for t, s in zip(ins, shapes) if "..." in t] or [0])
    ell = "".join(next(free) for _ in range(nell))
    exp = []
    for t, s in zip(ins, shapes):
        if "..." in t:
            k = len(s) - (len(t) - 3)
            t = t.replace("...", ell[nell - k:])
        if len(t) != len(s) or not t.isalpha():
            raise ValueError(f"einsum: subscripts {t!r} do not match an operand of shape {s}")
        exp.append(t)
    if out is None:
        counts = {}
        for c in "".join(exp):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return exp, out


def einsum(subscripts, *operands, **kwargs):
    """Einstein summation, as ``numpy.einsum``; differentiable in every operand."""
    if kwargs:
        raise NotImplementedError(f"einsum: arguments {sorted(kwargs)} are not supported by axone")
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a string, received {type(subscripts).__name__}")
    xs = [_t(x, "einsum") for x in operands]
    try:
        ins, out = _parse_einsum(subscripts, [x.shape for x in xs])
        spec = ",".join(ins) + "->" + out
    except ValueError as e:
        raise ValueError(f"einsum: {e}") from None
    if len(set(d.data.dtype for d in xs)) > 1:
        dt = np.result_type(*[x.data.dtype for x in xs])
        xs = [_m.cast(x, dt) for x in xs]
    try:
        return Einsum.apply(*xs, spec=spec, ins=ins, out=out)
    except ValueError as e:
        raise ValueError(f"einsum: {e} (subscripts {subscripts!r}, operand shapes "
                         f"{[x.shape for x in xs]})") from None


# ------------------------------------------------ quantiles (sort, then interpolate)
_QUANTILE_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(x, q, axis, method, keepdims, op, ignore_nan=False):
    """Quantiles of x along ``axis`` at fractions q ∈ [0, 1]: sort (the gradient goes back to each
    value's place), then at position p = q·(n − 1) take x₍⌊p⌋₎ + (p − ⌊p⌋)(x₍⌈p⌉₎ − x₍⌊p⌋₎)
    (``linear``; ``lower``/``higher``/``nearest``/``midpoint`` as NumPy).  ``ignore_nan``: n is
    the count of non-NaN values of each row (NaNs sort last)."""
    if method not in _QUANTILE_METHODS:
        raise ValueError(f"{op}: method must be one of {_QUANTILE_METHODS}, received {method!r}")
    x = _float_data(x, op)
    xp = array_module(x.data)
    qd = to_numpy(q.data if isinstance(q, Tensor) else q).astype(np.float64)   # host, checked
    if qd.ndim > 1 or not np.all((qd >= 0) & (qd <= 1)):
        raise ValueError(f"{op}: q must be a scalar or 1-D, within the range allowed, "
                         f"received {q!r}")
    axes = _axis(axis, x.ndim, op)
    rest = [a for a in range(x.ndim) if a not in axes]
    xt = _m.transpose(x, tuple(rest + list(axes))) if x.ndim else x
    xt = _m.reshape(xt, tuple(x.shape[a] for a in rest) + (-1,))
    n_all = xt.shape[-1]
    if n_all == 0:
        raise ValueError(f"{op}: cannot take a quantile over an empty axis (shape {x.shape})")
    xs = sort(xt, axis=-1)
    if ignore_nan:
        n = xp.sum(~xp.isnan(xt.data), axis=-1, keepdims=True)
    else:
        n = xp.full(xt.shape[:-1] + (1,), n_all)
    qs = qd.reshape(-1) if xp is np else xp.asarray(qd.reshape(-1))
    pos = qs * (xp.maximum(n, 1) - 1)                 # (…, len q)
    lo, hi = xp.floor(pos), xp.ceil(pos)
    if method == "lower":
        hi = lo
    elif method == "higher":
        lo = hi
    elif method == "nearest":
        lo = hi = xp.round(pos)
    frac = 0.5 * (hi != lo) if method == "midpoint" else pos - lo
    lo_i, hi_i = lo.astype(np.intp), hi.astype(np.intp)
    a, b = take_along_axis(xs, lo_i, axis=-1), take_along_axis(xs, hi_i, axis=-1)
    out = a + _m.multiply(b - a, frac.astype(x.data.dtype))
    if ignore_nan:
        out = _m.where(n == 0, Tensor(xp.full((), np.nan, x.data.dtype)), out)
    if keepdims:
        shape = [1 if a in axes else x.shape[a] for a in range(x.ndim)]
        out = _m.reshape(moveaxis(out, -1, 0), (len(qs),) + tuple(shape))
        return out if qd.ndim else _m.reshape(out, tuple(shape))
    out = moveaxis(out, -1, 0)
    return out if qd.ndim else _m.reshape(out, out.shape[1:])


def quantile(x, q, axis=None, method="linear", keepdims=False):
    """The q-th quantiles (q ∈ [0, 1]) along ``axis``."""
    return _quantile(x, q, axis, method, keepdims, "quantile")


def percentile(x, q, axis=None, method="linear", keepdims=False):
    """The q-th percentiles (q ∈ [0, 100]) along ``axis``."""
    return _quantile(x, to_numpy(q.data if isinstance(q, Tensor) else q) / 100, axis, method,
                     keepdims, "percentile")


def median(x, axis=None, keepdims=False):
    return _quantile(x, 0.5, axis, "linear", keepdims, "median")


def nanquantile(x, q, axis=None, method="linear", keepdims=False):
    return _quantile(x, q, axis, method, keepdims, "nanquantile", ignore_nan=True)


def nanpercentile(x, q, axis=None, method="linear", keepdims=False):
    return _quantile(x, to_numpy(q.data if isinstance(q, Tensor) else q) / 100, axis, method,
                     keepdims, "nanpercentile", ignore_nan=True)


def nanmedian(x, axis=None, keepdims=False):
    return _quantile(x, 0.5, axis, "linear", keepdims, "nanmedian", ignore_nan=True)


# ------------------------------------------- NaN-ignoring reductions (NaN → neutral)
def _nan_fill(x, value, op):
    x = _t(x, op)
    xp = array_module(x.data)
    nan = xp.isnan(x.data) if x.data.dtype.kind == "f" else xp.zeros(x.shape, bool)
    return _m.where(nan, Tensor(xp.asarray(value, dtype=x.data.dtype)), x), nan


def nansum(x, axis=None, keepdims=False):
    return _m.sum(_nan_fill(x, 0, "nansum")[0], axis=axis, keepdims=keepdims)


def nanprod(x, axis=None, keepdims=False):
    return prod(_nan_fill(x, 1, "nanprod")[0], axis=axis, keepdims=keepdims)


def nancumsum(x, axis=None, dtype=None):
    return cumsum(_nan_fill(x, 0, "nancumsum")[0], axis=axis, dtype=dtype)


def nancumprod(x, axis=None, dtype=None):
    return cumprod(_nan_fill(x, 1, "nancumprod")[0], axis=axis, dtype=dtype)


def nanmean(x, axis=None, keepdims=False):
    """Σ of the non-NaN values / their count (NaN where there are none)."""
    x = _float_data(x, "nanmean")
    xp = array_module(x.data)
    filled, nan = _nan_fill(x, 0, "nanmean")
    count = xp.sum(~nan, axis=_axis(axis, x.ndim, "nanmean"), keepdims=keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _m.sum(filled, axis=axis, keepdims=keepdims) / count.astype(x.data.dtype)


def nanvar(x, axis=None, keepdims=False):
    """Mean of (x − nanmean x)² over the non-NaN values."""
    x = _float_data(x, "nanvar")
    m = nanmean(x, axis=axis, keepdims=True)
    return nanmean(_m.square(x - m), axis=axis, keepdims=keepdims)


def nanstd(x, axis=None, keepdims=False):
    return _m.sqrt(nanvar(x, axis=axis, keepdims=keepdims))


def _nan_extremum(x, axis, keepdims, largest, op):
    x = _t(x, op)
    xp = array_module(x.data)
    filled, nan = _nan_fill(x, -np.inf if largest else np.inf, op)
    out = (_m.max if largest else _m.min)(filled, axis=axis, keepdims=keepdims)
    none = xp.all(nan, axis=_axis(axis, x.ndim, op), keepdims=keepdims)
    if none.any():
        out = _m.where(none, Tensor(xp.full((), np.nan, x.data.dtype)), out)
    return out


def nanmax(x, axis=None, keepdims=False):
    return _nan_extremum(x, axis, keepdims, True, "nanmax")


def nanmin(x, axis=None, keepdims=False):
    return _nan_extremum(x, axis, keepdims, False, "nanmin")


def nanargmax(x, axis=None, keepdims=False):
    filled, _ = _nan_fill(x, -np.inf, "nanargmax")
    return _m.argmax(filled, axis=axis, keepdims=keepdims)


def nanargmin(x, axis=None, keepdims=False):
    filled, _ = _nan_fill(x, np.inf, "nanargmin")
    return _m.argmin(filled, axis=axis, keepdims=keepdims)


# ------------------------------------------------ more elementwise and binary ops
class Sinc(Function):
    """y = sin(πx)/(πx), y(0) = 1;  dy/dx = (cos(πx) − y)/x, 0 at x = 0."""

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        self.y = y = xp.sinc(x)
        return y

    def backward(self, g):
        xp = array_module(g)
        x = self.x
        safe = xp.where(x == 0, 1, x)
        d = xp.where(x == 0, 0, (xp.cos(np.pi * x) - self.y) / safe)
        return (g * d.astype(g.dtype, copy=False),)


def sinc(x):
    return Sinc.apply(_float_data(x, "sinc"))


def logaddexp2(x1, x2):
    """log₂(2^x1 + 2^x2) = logaddexp(x1 ln 2, x2 ln 2) / ln 2."""
    a, b = _m._pair(x1, x2, "logaddexp2")
    ln2 = np.log(2)
    return logaddexp(_float_data(a, "logaddexp2") * ln2, _float_data(b, "logaddexp2") * ln2) / ln2


def fmax(x1, x2):
    """Elementwise maximum that ignores NaN (NaN only where both are NaN)."""
    xp = _xp(x1, x2)
    a, b = _m._pair(x1, x2, "fmax")
    return _m.where(xp.isnan(b.data) | (a.data >= b.data), a, b) if a.data.dtype.kind == "f" or \
        b.data.dtype.kind == "f" else _m.maximum(a, b)


def fmin(x1, x2):
    """Elementwise minimum that ignores NaN (NaN only where both are NaN)."""
    xp = _xp(x1, x2)
    a, b = _m._pair(x1, x2, "fmin")
    return _m.where(xp.isnan(b.data) | (a.data <= b.data), a, b) if a.data.dtype.kind == "f" or \
        b.data.dtype.kind == "f" else _m.minimum(a, b)


def fmod(x1, x2):
    """x1 − trunc(x1/x2)·x2, the remainder with the sign of x1;  ∂/∂x1 = 1, ∂/∂x2 = −trunc(x1/x2)."""
    xp = _xp(x1, x2)
    a, b = _m._pair(x1, x2, "fmod")
    if a.data.dtype.kind in "iub" and b.data.dtype.kind in "iub":
        return Tensor(xp.fmod(a.data, b.data))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = xp.trunc(a.data / b.data)
    return a - _m.multiply(b, t.astype(np.result_type(a.data.dtype, b.data.dtype)))


def ldexp(x1, x2):
    """x1 · 2^x2 (x2 integers)."""
    xp = _xp(x1, x2)
    a, b = _m._pair(x1, x2, "ldexp")
    if b.data.dtype.kind not in "iu":
        raise TypeError(f"ldexp: x2 must be integers, received dtype {b.data.dtype}")
    a = _float_data(a, "ldexp")
    return _m.multiply(a, xp.ldexp(xp.ones((), a.data.dtype), b.data))


def _integer_binary(name, f, doc):
    def op(x1, x2):
        xp = _xp(x1, x2)
        a, b = _m._pair(x1, x2, name)
        for v, arg in ((a, "x1"), (b, "x2")):
            if v.data.dtype.kind not in "iub":
                raise TypeError(f"{name}: {arg} must be integers or booleans, received dtype "
                                f"{v.data.dtype}")
        return Tensor(xp.asarray(f(a.data, b.data)))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


bitwise_and = _integer_binary("bitwise_and", _dx.bitwise_and, "Bitwise x & y.")
bitwise_or = _integer_binary("bitwise_or", _dx.bitwise_or, "Bitwise x | y.")
bitwise_xor = _integer_binary("bitwise_xor", _dx.bitwise_xor, "Bitwise x ^ y.")
bitwise_left_shift = _integer_binary("bitwise_left_shift", _dx.left_shift, "x << y.")
bitwise_right_shift = _integer_binary("bitwise_right_shift", _dx.right_shift, "x >> y.")
left_shift = _integer_binary("left_shift", _dx.left_shift, "x << y.")
right_shift = _integer_binary("right_shift", _dx.right_shift, "x >> y.")
gcd = _integer_binary("gcd", _dx.gcd, "Greatest common divisor.")
lcm = _integer_binary("lcm", _dx.lcm, "Least common multiple.")


def bitwise_invert(x):
    xp = _xp(x)
    d = _t(x, "bitwise_invert").data
    if d.dtype.kind not in "iub":
        raise TypeError(f"bitwise_invert: x must be integers or booleans, received dtype {d.dtype}")
    return Tensor(xp.invert(d))


bitwise_not = bitwise_invert

signbit = _predicate("signbit", _dx.signbit, "True where the sign bit is set (also −0.0).")
isreal = _predicate("isreal", _dx.isreal, "True where x has no imaginary part.")


def nextafter(x1, x2):
    xp = _xp(x1, x2)
    a, b = _m._pair(x1, x2, "nextafter")
    return Tensor(xp.nextafter(_float_data(a, "nextafter").data, _float_data(b, "nextafter").data))


def real(x):
    """The real part: x itself for real tensors."""
    return _t(x, "real")


def conjugate(x):
    """The complex conjugate: x itself for real tensors."""
    return _t(x, "conjugate")


conj = conjugate


def imag(x):
    """The imaginary part: zeros for real tensors."""
    return _m.zeros_like(x)


def angle(x):
    """The argument of x: 0 for x ≥ 0, π for x < 0 on real tensors (no gradient)."""
    xp = _xp(x)
    return Tensor(xp.angle(_float_data(x, "angle").data).astype(_float_data(x, "angle").data.dtype))


def isin(x1, x2, assume_unique=False, invert=False):
    xp = _xp(x1, x2, assume_unique, invert)
    a, b = _t(x1, "isin").data, _t(x2, "isin").data
    return Tensor(xp.isin(a, b, assume_unique=assume_unique, invert=invert))


def copy(x):
    """A new tensor with the same values (the gradient passes through)."""
    return _m.multiply(_t(x, "copy"), 1) if _t(x, "copy").requires_grad else Tensor(
        _t(x, "copy").data.copy())


def array(x, dtype=None):
    return _m.convert_to_tensor(x, dtype=dtype)


def view(x, dtype=None):
    """The same bytes read as ``dtype`` (no gradient)."""
    d = _t(x, "view").data
    if dtype is None:
        return Tensor(d)
    try:
        return Tensor(d.view(np.dtype(dtype)))
    except (ValueError, TypeError) as e:
        raise ValueError(f"view: cannot view a tensor of dtype {d.dtype} and shape {d.shape} as "
                         f"{dtype}: {e}") from None


# ------------------------------------------------- splitting, stacking, grids
def array_split(x, indices_or_sections, axis=0):
    """Split into sections of sizes differing by at most one (or at the given indices)."""
    x = _t(x, "array_split")
    ax = _axis(axis, x.ndim, "array_split")[0]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise ValueError(f"array_split: the number of sections must be positive, received {k}")
        n = x.shape[ax]
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        idx = list(np.cumsum(sizes)[:-1])
    else:
        idx = list(indices_or_sections)
    bounds = [0] + [int(i) for i in idx] + [x.shape[ax]]
    return [_m.get_item(x, (slice(None),) * ax + (slice(lo, hi),))
            for lo, hi in zip(bounds[:-1], bounds[1:])]


def _split_on(x, indices_or_sections, axis, op, min_ndim):
    x = _t(x, op)
    if x.ndim < min_ndim:
        raise ValueError(f"{op}: x must have at least {min_ndim} dimensions, received shape "
                         f"{x.shape}")
    return _m.split(x, indices_or_sections, axis=axis)


def hsplit(x, indices_or_sections):
    x = _t(x, "hsplit")
    return _split_on(x, indices_or_sections, 0 if x.ndim == 1 else 1, "hsplit", 1)


def vsplit(x, indices_or_sections):
    return _split_on(x, indices_or_sections, 0, "vsplit", 2)


def dsplit(x, indices_or_sections):
    return _split_on(x, indices_or_sections, 2, "dsplit", 3)


def dstack(xs):
    """Stack along a third axis (1-D (n,) becomes (1, n, 1), 2-D (m, n) becomes (m, n, 1))."""
    out = []
    for x in xs:
        x = _t(x, "dstack")
        if x.ndim == 0:
            x = _m.reshape(x, (1, 1, 1))
        elif x.ndim == 1:
            x = _m.reshape(x, (1, -1, 1))
        elif x.ndim == 2:
            x = _m.expand_dims(x, -1)
        out.append(x)
    return _m.concatenate(out, axis=2)


def append(x1, x2, axis=None):
    a, b = _m._pair(x1, x2, "append")
    if axis is None:
        return _m.concatenate([ravel(a), ravel(b)], axis=0)
    return _m.concatenate([a, b], axis=axis)


def meshgrid(*x, indexing="xy"):
    """Coordinate grids: with n 1-D inputs, n tensors of their broadcast shape (``xy``: the
    first two axes swapped, as NumPy)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', received {indexing!r}")
    xs = [ravel(_t(v, "meshgrid")) for v in x]
    shape = [v.shape[0] for v in xs]
    if indexing == "xy" and len(xs) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, v in enumerate(xs):
        pos = i
        if indexing == "xy" and len(xs) >= 2 and i < 2:
            pos = 1 - i
        s = [1] * len(xs)
        s[pos] = -1
        out.append(broadcast_to(_m.reshape(v, tuple(s)), tuple(shape)))
    return out


def rot90(array, k=1, axes=(0, 1)):  # noqa: A002 - keras.ops argument name
    """Rotate by 90° k times in the plane of ``axes`` (from the first axis toward the second)."""
    x = _t(array, "rot90")
    if x.ndim < 2:
        raise ValueError(f"rot90: array must have at least 2 dimensions, received shape {x.shape}")
    a, b = _axis(tuple(axes), x.ndim, "rot90")
    if a == b:
        raise ValueError(f"rot90: axes must differ, received {axes!r}")
    k = int(k) % 4
    if k == 0:
        return x
    if k == 2:
        return flip(flip(x, a), b)
    order = list(range(x.ndim))
    order[a], order[b] = order[b], order[a]
    if k == 1:
        return _m.transpose(flip(x, b), tuple(order))
    return flip(_m.transpose(x, tuple(order)), b)


def diagflat(x, k=0):
    return diag(ravel(_t(x, "diagflat")), k)


def diff(a, n=1, axis=-1):
    """n-th forward difference along ``axis``: out[i] = a[i+1] − a[i], n times."""
    x = _t(a, "diff")
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"diff: n must be a non-negative int, received {n!r}")
    ax = _axis(axis, x.ndim, "diff")[0]
    for _ in range(int(n)):
        hi = _m.get_item(x, (slice(None),) * ax + (slice(1, None),))
        lo = _m.get_item(x, (slice(None),) * ax + (slice(None, -1),))
        x = hi - lo
    return x


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """∫ y by the trapezoid rule along ``axis``: Σ (yᵢ + yᵢ₊₁)/2 · Δxᵢ."""
    y = _float_data(y, "trapezoid")
    ax = _axis(axis, y.ndim, "trapezoid")[0]
    hi = _m.get_item(y, (slice(None),) * ax + (slice(1, None),))
    lo = _m.get_item(y, (slice(None),) * ax + (slice(None, -1),))
    if x is None:
        d = dx
    else:
        xt = _float_data(x, "trapezoid")
        d = diff(xt, axis=-1 if xt.ndim == 1 else ax)
        if xt.ndim == 1:
            d = _m.reshape(d, tuple(-1 if i == ax else 1 for i in range(y.ndim)))
    return _m.sum((hi + lo) * d, axis=ax) / 2


def vdot(x1, x2):
    """Σ of the products of the flattened inputs."""
    a, b = _m._pair(x1, x2, "vdot")
    if a.size != b.size:
        raise ValueError(f"vdot: inputs must have the same size, received shapes {a.shape} and "
                         f"{b.shape}")
    return _m.sum(ravel(a) * ravel(b))


def kron(x1, x2):
    """Kronecker product: blocks a_{i…} · b."""
    a, b = _m._pair(x1, x2, "kron")
    nd = _b.max(a.ndim, b.ndim)
    a = _m.reshape(a, (1,) * (nd - a.ndim) + a.shape)
    b = _m.reshape(b, (1,) * (nd - b.ndim) + b.shape)
    ea = _m.reshape(a, tuple(v for s in a.shape for v in (s, 1)))
    eb = _m.reshape(b, tuple(v for s in b.shape for v in (1, s)))
    return _m.reshape(ea * eb, tuple(p * q for p, q in zip(a.shape, b.shape)))


def vander(x, N=None, increasing=False):
    """Columns x^(N−1), …, x⁰ (reversed when ``increasing``)."""
    xp = _xp(x, N, increasing)
    x = _t(x, "vander")
    if x.ndim != 1:
        raise ValueError(f"vander: x must be 1-D, received shape {x.shape}")
    N = x.shape[0] if N is None else int(N)
    p = xp.arange(N) if increasing else xp.arange(N - 1, -1, -1)
    if x.data.dtype.kind in "iu":
        return Tensor(xp.power.outer(x.data, p))
    return _m.power(_m.reshape(x, (-1, 1)), p.astype(x.data.dtype))


def cross(x1, x2, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors (2-vectors taken with z = 0), written from differentiable ops:
    c = (a₂b₃ − a₃b₂, a₃b₁ − a₁b₃, a₁b₂ − a₂b₁)."""
    a, b = _m._pair(x1, x2, "cross")
    if axis is not None:
        axisa = axisb = axisc = axis
    a = moveaxis(a, axisa, -1)
    b = moveaxis(b, axisb, -1)
    for v, nm in ((a, "x1"), (b, "x2")):
        if v.shape[-1] not in (2, 3):
            raise ValueError(f"cross: {nm} must have 2 or 3 components on its axis, received "
                             f"shape {v.shape}")
    two = a.shape[-1] == 2 and b.shape[-1] == 2

    def comp(v, i):
        if i >= v.shape[-1]:
            return _m.zeros_like(_m.get_item(v, (Ellipsis, 0)))
        return _m.get_item(v, (Ellipsis, i))
    a1, a2, a3 = (comp(a, i) for i in range(3))
    b1, b2, b3 = (comp(b, i) for i in range(3))
    if two:
        return a1 * b2 - a2 * b1
    c = _m.stack([a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1], axis=-1)
    return moveaxis(c, -1, axisc)


def corrcoef(x):
    """Pearson correlation of the rows of x: C / √(diag C diag Cᵀ), C the covariance."""
    x = _float_data(x, "corrcoef")
    if x.ndim > 2:
        raise ValueError(f"corrcoef: x must be 1-D or 2-D, received shape {x.shape}")
    if x.ndim == 1:
        x = _m.reshape(x, (1, -1))
    d = x - _m.mean(x, axis=1, keepdims=True)
    c = _m.matmul(d, _m.transpose(d))
    s = _m.sqrt(diagonal(c))
    out = c / outer(s, s)
    return _m.clip(out, -1.0, 1.0) if out.shape != (1, 1) else _m.reshape(out, ())


def correlate(x1, x2, mode="valid"):
    """Cross-correlation of two 1-D tensors, z_k = Σ_n a_{n+k} b_n (NumPy's ``correlate``),
    written as a product of the zero-padded windows of a with b, so both are differentiable."""
    xp = _xp(x1, x2)
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"correlate: mode must be 'valid', 'same' or 'full', received {mode!r}")
    a, b = _m._pair(x1, x2, "correlate")
    if a.ndim != 1 or b.ndim != 1 or not a.shape[0] or not b.shape[0]:
        raise ValueError(f"correlate: x1 and x2 must be non-empty 1-D tensors, received shapes "
                         f"{a.shape} and {b.shape}")
    a, b = _float_data(a, "correlate"), _float_data(b, "correlate")
    n, m = a.shape[0], b.shape[0]
    pad = _m.pad(a, [(m - 1, m - 1)])
    windows = _m.get_item(pad, xp.arange(n + m - 1)[:, None] + xp.arange(m)[None, :])
    full = _m.matmul(windows, b)          # k = −(m − 1) … n − 1
    length = {"full": n + m - 1, "same": _b.max(n, m), "valid": _b.max(n, m) - _b.min(n, m) + 1}[mode]
    if mode == "full":
        start = 0
    elif mode == "valid":
        start = _b.min(n, m) - 1
    else:   # centred as NumPy centres it (which swaps the operands when x2 is the longer)
        start = (m - 1) // 2 if n >= m else (n - 1) - (n - 1) // 2
    return _m.get_item(full, slice(start, start + length))


def digitize(x, bins):
    """Index of the bin each value falls in (int32): bins[i−1] ≤ x < bins[i] for increasing bins."""
    xp = _xp(x, bins)
    d = _t(x, "digitize").data
    b = xp.asarray(bins.data if isinstance(bins, Tensor) else bins)
    if b.ndim != 1:
        raise ValueError(f"digitize: bins must be 1-D, received shape {b.shape}")
    return Tensor(xp.digitize(d, b).astype(np.int32))


def searchsorted(sorted_sequence, values, side="left"):
    """Indices (int32) where ``values`` would be inserted to keep ``sorted_sequence`` sorted."""
    xp = _xp(sorted_sequence, values, side)
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', received {side!r}")
    s = _t(sorted_sequence, "searchsorted").data
    v = _t(values, "searchsorted").data
    if s.ndim != 1:
        raise ValueError(f"searchsorted: sorted_sequence must be 1-D, received shape {s.shape}")
    return Tensor(xp.searchsorted(s, v, side=side).astype(np.int32))


def bincount(x, weights=None, minlength=0, sparse=False):
    """Count of each non-negative int in x (weighted sums with ``weights``); a 2-D x counts row
    by row, as Keras."""
    xp = _xp(x, weights, minlength, sparse)
    if sparse:
        raise NotImplementedError("bincount: sparse=True is not supported by axone")
    d = _t(x, "bincount").data
    if d.dtype.kind not in "iu":
        raise TypeError(f"bincount: x must be integers, received dtype {d.dtype}")
    if d.size and d.min() < 0:
        raise ValueError(f"bincount: x must be non-negative, received a minimum of {d.min()}")
    if d.ndim not in (1, 2):
        raise ValueError(f"bincount: x must be 1-D or 2-D, received shape {d.shape}")
    w = None if weights is None else _t(weights, "bincount")
    if w is not None and w.shape != d.shape:
        raise ValueError(f"bincount: weights of shape {w.shape} must match x of shape {d.shape}")
    length = _b.max(int(minlength), int(d.max()) + 1 if d.size else 0)
    rows = d.reshape(-1, d.shape[-1]) if d.ndim == 2 else d.reshape(1, -1)
    onehot = rows[..., None] == xp.arange(length)
    if w is None:
        out = Tensor(onehot.sum(axis=-2).astype(np.int32))
    else:
        wr = _m.reshape(w, rows.shape + (1,))
        out = _m.sum(_m.multiply(wr, onehot.astype(w.data.dtype if w.data.dtype.kind == "f"
                                                    else np.int32)), axis=-2)
    return out if d.ndim == 2 else _m.reshape(out, (length,))


def argpartition(x, kth, axis=-1):
    """Indices (int32) that put the kth element in its sorted place, smaller ones before it."""
    xp = _xp(x, kth)
    d = _t(x, "argpartition").data
    ax = _axis(axis, d.ndim, "argpartition")[0]
    if not isinstance(kth, (int, np.integer)) or not -d.shape[ax] <= kth < d.shape[ax]:
        raise ValueError(f"argpartition: kth must be an int index into axis {ax} of size "
                         f"{d.shape[ax]}, received {kth!r}")
    return Tensor(xp.argpartition(d, kth, axis=ax).astype(np.int32))


def nonzero(x):
    """A tuple of index tensors (int32), one per axis, of the non-zero elements."""
    xp = _xp(x)
    d = _t(x, "nonzero").data
    return tuple(Tensor(i.astype(np.int32)) for i in xp.nonzero(d))


def unravel_index(indices, shape):
    """The coordinates (a tuple of int32 tensors) of flat ``indices`` in an array of ``shape``."""
    xp = _xp(indices)
    i = _indices(indices, "unravel_index")
    shape = _shape(shape, "unravel_index")
    n = int(np.prod(shape))
    if i.size and (i.min() < 0 or i.max() >= n):
        raise ValueError(f"unravel_index: indices must lie in [0, {n}) for shape {shape}, "
                         f"received values from {i.min()} to {i.max()}")
    return tuple(Tensor(c.astype(np.int32)) for c in xp.unravel_index(i, shape))


def unique(x, sorted=True, return_index=False, return_inverse=False, return_counts=False,  # noqa: A002
           axis=None, size=None, fill_value=None):
    """The distinct values (sorted), with their first indices, inverse and counts on request;
    ``size`` pads (with ``fill_value``, default the smallest value) or truncates to that length."""
    if not sorted:
        raise NotImplementedError("unique: sorted=False is not supported by axone")
    d = _t(x, "unique").data
    xp = array_module(d)
    res = xp.unique(d, return_index=True, return_inverse=True, return_counts=True, axis=axis)
    vals, first, inv, counts = res
    if size is not None:
        size = int(size)
        fill = vals.min() if fill_value is None and vals.size else (fill_value or 0)
        pad = _b.max(size - len(vals), 0)
        vals = xp.concatenate([vals[:size], xp.full((pad,) + vals.shape[1:], fill, vals.dtype)])
        first = xp.concatenate([first[:size], xp.zeros(pad, first.dtype)])
        counts = xp.concatenate([counts[:size], xp.zeros(pad, counts.dtype)])
    out = [Tensor(vals)]
    if return_index:
        out.append(Tensor(first.astype(np.int32)))
    if return_inverse:
        out.append(Tensor(inv.reshape(d.shape if axis is None else -1).astype(np.int32)))
    if return_counts:
        out.append(Tensor(counts.astype(np.int32)))
    return out[0] if len(out) == 1 else tuple(out)


def histogram(x, bins=10, range=None):  # noqa: A002 - keras.ops argument name
    """Counts of x in ``bins`` equal bins over ``range`` (default: x's min and max), and the
    bin edges."""
    d = _t(x, "histogram").data
    xp = array_module(d)
    if d.ndim != 1:
        raise ValueError(f"histogram: x must be 1-D, received shape {d.shape}")
    if not isinstance(bins, (int, np.integer)) or bins <= 0:
        raise ValueError(f"histogram: bins must be a positive int, received {bins!r}")
    counts, edges = xp.histogram(d, bins=int(bins), range=range)
    return Tensor(counts.astype(np.int32)), Tensor(edges.astype(_float_data(x, "histogram").data.dtype))


def select(condlist, choicelist, default=0):
    """The first choice whose condition holds, elementwise, else ``default``; differentiable in
    the choices."""
    xp = _xp(condlist, choicelist, default)
    if len(condlist) != len(choicelist) or not condlist:
        raise ValueError(f"select: condlist and choicelist must be non-empty and of the same "
                         f"length, received {len(condlist)} and {len(choicelist)}")
    out = _t(default, "select")
    for c, v in zip(reversed(list(condlist)), reversed(list(choicelist))):
        c = xp.asarray(c.data if isinstance(c, Tensor) else c, dtype=bool)
        out = _m.where(c, v, out)
    return out


def vectorize(pyfunc, *, excluded=None, signature=None):
    """``pyfunc`` applied to each element (or core slice, with ``signature``), as numpy.vectorize,
    on the tensors' values (no gradient)."""
    vf = np.vectorize(lambda *a: np.asarray(
        _m.convert_to_numpy(pyfunc(*[Tensor(np.asarray(v)) if isinstance(v, np.ndarray) or
                                     np.isscalar(v) else v for v in a]))),
        excluded=excluded, signature=signature)

    def wrapped(*args, **kwargs):
        xp = _xp(*args)                  # numpy.vectorize runs on the host
        vals = [to_numpy(a.data) if isinstance(a, Tensor) else a for a in args]
        out = np.asarray(vf(*vals, **kwargs))
        return Tensor(out if xp is np else xp.asarray(out))
    return wrapped


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """num values spaced evenly on a log scale from start to stop."""
    _check_num(num, "geomspace")
    if np.any(to_numpy(start) == 0) or np.any(to_numpy(stop) == 0):
        raise ValueError("geomspace: start and stop must be non-zero")
    out = np.geomspace(to_numpy(start), to_numpy(stop), num, endpoint=endpoint, axis=axis)
    xp = current_module()                 # made on the host (CuPy has no geomspace), then moved
    return Tensor(_host_to(xp, out.astype(_floatx(dtype))))


def _window(name, f, doc):
    def op(x):
        if not isinstance(x, (int, np.integer)) or x < 0:
            raise ValueError(f"{name}: x (the window length) must be a non-negative int, "
                             f"received {x!r}")
        return Tensor(getattr(current_module(), f)(int(x)).astype(backend.floatx()))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


bartlett = _window("bartlett", "bartlett", "The Bartlett (triangular) window of length x.")
blackman = _window("blackman", "blackman", "The Blackman window of length x.")
hamming = _window("hamming", "hamming", "The Hamming window of length x.")
hanning = _window("hanning", "hanning", "The Hann window of length x.")


def kaiser(x, beta):
    """The Kaiser window of length x with shape parameter beta."""
    xp = current_module()
    if not isinstance(x, (int, np.integer)) or x < 0:
        raise ValueError(f"kaiser: x (the window length) must be a non-negative int, "
                         f"received {x!r}")
    return Tensor(xp.kaiser(int(x), float(beta)).astype(backend.floatx()))


__all__ += [
    "quantile", "percentile", "median", "nanquantile", "nanpercentile", "nanmedian", "nansum",
    "nanprod", "nancumsum", "nancumprod", "nanmean", "nanvar", "nanstd", "nanmax", "nanmin",
    "nanargmax", "nanargmin", "sinc", "logaddexp2", "fmax", "fmin", "fmod", "ldexp",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift",
    "left_shift", "right_shift", "gcd", "lcm", "bitwise_invert", "bitwise_not", "signbit",
    "isreal", "nextafter", "real", "conjugate", "conj", "imag", "angle", "isin", "copy", "array",
    "view", "array_split", "hsplit", "vsplit", "dsplit", "dstack", "append", "meshgrid", "rot90",
    "diagflat", "diff", "trapezoid", "vdot", "kron", "vander", "cross", "corrcoef", "correlate", "digitize",
    "searchsorted", "bincount", "argpartition", "nonzero", "unravel_index", "unique",
    "histogram", "select", "vectorize", "geomspace", "bartlett", "blackman", "hamming",
    "hanning", "kaiser",
]


# --------------------------------------------------- Bessel I₀, log-determinant
def _i1(x):
    """Modified Bessel function I₁ as the mean over a full period of e^(x cos θ) cos θ (the
    trapezoid rule, exact to rounding for a periodic integrand once the points outnumber |x|)."""
    xp = _xp(x)
    n = int(_b.min(32 + 2 * (float(abs(x).max()) if x.size else 0.0), 4096))
    theta = (xp.arange(n) + 0.5) * (2 * np.pi / n)
    c = xp.cos(theta)
    with np.errstate(over="ignore"):
        i1 = xp.mean(xp.exp(xp.multiply.outer(x, c)) * c, axis=-1)
    return xp.where(x == 0, 0, i1).astype(x.dtype, copy=False)   # I₁ is odd: exactly 0 at 0


class I0(Function):
    """y = I₀(x), the modified Bessel function of order 0;  dy/dx = I₁(x)."""

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        return xp.i0(x).astype(x.dtype, copy=False)

    def backward(self, g):
        return (g * _i1(self.x),)


def i0(x):
    return I0.apply(_float_data(x, "i0"))


class LogAbsDet(Function):
    """y = ln |det A| over the last two axes;  dy/dA = A⁻ᵀ."""

    def forward(self, a):
        xp = array_module(a)
        self.a = a
        return xp.linalg.slogdet(a)[1]

    def backward(self, g):
        xp = array_module(g)
        inv = xp.linalg.inv(self.a)
        return (g[..., None, None] * xp.swapaxes(inv, -1, -2),)


def slogdet(x):
    """(sign det x, ln |det x|) over the last two axes; the log is differentiable."""
    xp = _xp(x)
    x = _float_data(x, "slogdet")
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"slogdet: x must be a (batch of) square matrices, received shape "
                         f"{x.shape}")
    sign = xp.linalg.slogdet(x.data)[0].astype(x.data.dtype)
    return Tensor(sign), LogAbsDet.apply(x)


__all__ += ["i0", "slogdet"]


__all__ = list(dict.fromkeys(list(_math_all) + __all__))
