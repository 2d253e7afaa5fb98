"""Differentiable math: elementwise ops, broadcasting, reductions, matmul, shape ops.

Each op is a :class:`~axone.autograd.Function` whose ``forward`` and
``backward`` sit side by side under the derivative they implement, followed
by the public function (named as in ``keras.ops``).  Broadcasting is NumPy's;
``unbroadcast`` sums a gradient back to each input's shape.

Every op computes with the array module of its inputs (``xp = array_module(...)``): NumPy on
host arrays, where the compiled softmax rows may run, and the device module's routines (CuPy)
on device arrays, forward and backward.  A number, list or host array beside a device tensor
becomes a constant on that device (a 0-d array for a number: CuPy takes no host ndarray into
its ufuncs).
"""
import builtins as _b
import math as _pymath
import numbers

import numpy as np

from .. import backend
from ..autograd.function import Function, unbroadcast
from ..autograd.tensor import Tensor
from ..device import array_module, to_numpy
from . import _compiled

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "power", "negative",
    "exp", "log", "sqrt", "square", "abs", "absolute", "sign", "sin", "cos", "tanh",
    "sigmoid", "relu", "leaky_relu", "elu", "selu", "softplus", "softsign", "hard_sigmoid",
    "gelu", "silu", "swish", "heaviside", "maximum", "minimum", "clip", "where",
    "matmul", "dot", "tensordot", "concatenate", "stack", "split", "expand_dims",
    "squeeze", "pad", "reshape", "transpose", "sum", "mean", "max", "min", "var", "std",
    "argmax", "argmin", "one_hot", "cast", "convert_to_tensor", "convert_to_numpy",
    "softmax", "log_softmax", "logsumexp", "take", "zeros_like", "ones_like",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "get_item",
    "erf", "erfc", "erfinv", "rsqrt",
]


# ----------------------------------------------------------------- conversion
def _wrap(arr):
    """A constant Tensor around ``arr``, a numeric ndarray (what ``Tensor(arr)`` builds)."""
    t = _new(Tensor)
    t.data = arr
    t.grad = None
    t.requires_grad = False
    t._ctx = None
    return t


_new = object.__new__
_ndarray = np.ndarray


def _const(x, like, op):
    """Wrap a non-Tensor operand ``x`` as a constant tensor (no gradient), on the device of
    ``like`` (a Tensor, or None) when that one's array is a device array."""
    tx = type(x)
    if like is not None:
        ld = like.data
        if type(ld) is not _ndarray:
            xp = array_module(ld)
            if xp is not np:
                return _device_const(xp, x, ld.dtype, op)
        if tx is float or tx is int:
            # Fast path for the common `tensor * 0.5`: a scalar against a float tensor.
            dt = ld.dtype
            if dt.kind == "f":
                return _wrap(np.asarray(x, dtype=dt))
    if isinstance(x, np.ndarray):
        return Tensor(x)
    if isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, complex):
        dt = like.data.dtype if like is not None and like.data.dtype.kind == "f" else None
        if dt is None:
            dt = backend.floatx() if isinstance(x, float) else None
        return Tensor(np.asarray(x, dtype=dt))
    if isinstance(x, (list, tuple)):
        return Tensor(x)
    if hasattr(x, "__array__"):
        if array_module(x) is not np:
            return Tensor(x)                 # a device array stays where it is
        return Tensor(np.asarray(x))
    raise TypeError(
        f"{op}: unsupported operand type {type(x).__name__}; expected a Tensor, "
        f"a NumPy array or a number")


def _device_const(xp, x, like_dtype, op):
    """``_const`` against a tensor on a device of module ``xp``: the same dtype rule (a real
    number takes a float tensor's dtype, else floatx for a float), the value copied there as a
    0-d array (CuPy takes no host ndarray, not even a 0-d one, into its ufuncs)."""
    if array_module(x) is xp:
        return Tensor(x)
    if isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, complex):
        dt = like_dtype if like_dtype.kind == "f" else None
        if dt is None:
            dt = backend.floatx() if isinstance(x, float) else None
        return Tensor(xp.asarray(x, dtype=dt))
    return Tensor(xp.asarray(_const(x, None, op).data))    # lists, host arrays: as on the host


def _t(x, op="op"):
    return x if isinstance(x, Tensor) else _const(x, None, op)


def _pair(a, b, op):
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            return a, b
        return a, _const(b, a, op)
    if isinstance(b, Tensor):
        return _const(a, b, op), b
    if type(b) is not _ndarray and array_module(b) is not np:
        b = _const(b, None, op)              # a raw device array places a raw number beside it
        return _const(a, b, op), b
    a = _const(a, None, op)
    return a, _const(b, a, op)


def _binary(cls, a, b, op):
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        a, b = _pair(a, b, op)
    try:
        return cls.apply(a, b)
    except ValueError:
        try:
            np.broadcast_shapes(a.data.shape, b.data.shape)
        except ValueError:
            raise ValueError(
                f"{op}: operands could not be broadcast together: shapes "
                f"{a.data.shape} and {b.data.shape}") from None
        raise


def _axis(axis, ndim, op):
    """Normalize an axis argument to a tuple of non-negative ints (None: all axes)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, received {axis!r}")
        if not -ndim <= a < _b.max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of rank {ndim}")
        out.append(int(a) % _b.max(ndim, 1))
    return tuple(out)


def _expanded(shape, axes):
    """``shape`` with a 1 re-inserted at each of the (non-negative) reduced ``axes``."""
    out = list(shape)
    for a in sorted(axes):
        out.insert(a, 1)
    return tuple(out)


def _expand(g, axes, keepdims):
    """Re-insert reduced axes into a gradient so it broadcasts against the input."""
    if keepdims or not axes:
        return g
    return g.reshape(_expanded(g.shape, axes))


def _sum(xp, x, axis, keepdims):
    """Σ over ``axis``: NumPy's ``add.reduce`` on the host (``np.sum`` without its wrapper),
    the module's ``sum`` on a device."""
    if xp is np:
        return np.add.reduce(x, axis=axis, keepdims=keepdims)
    return xp.sum(x, axis=axis, keepdims=keepdims)


# The same gradient plumbing in differentiable ops, for the ``backward_graph`` methods (a
# gradient that carries a graph: second derivatives).
def _unbroadcast_t(g, shape):
    """``unbroadcast`` on a Tensor: a sum over the broadcast axes, then a reshape."""
    if g.data.shape == shape:
        return g
    nd = g.data.ndim - len(shape)
    if nd > 0:
        g = sum(g, axis=tuple(range(nd)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.data.shape[i] != 1)
    if axes:
        g = sum(g, axis=axes, keepdims=True)
    return reshape(g, shape)


class BroadcastTo(Function):
    """y = x broadcast to ``shape``;  dL/dx = dL/dy summed over the broadcast axes."""

    def forward(self, x):
        self.src = x.shape
        return array_module(x).broadcast_to(x, self.shape)

    def backward(self, g):
        return (unbroadcast(g, self.src),)

    def backward_graph(self, g):
        return (_unbroadcast_t(g, self.src),)


def _broadcast_t(g, shape):
    return g if g.data.shape == shape else BroadcastTo.apply(g, shape=tuple(shape))


def _expand_t(g, axes, keepdims):
    """``_expand`` on a Tensor."""
    if keepdims or not axes:
        return g
    return reshape(g, _expanded(g.data.shape, axes))


def _swap_last(t):
    """The last two axes of a Tensor swapped (a batch of transposed matrices)."""
    perm = list(range(t.data.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return transpose(t, tuple(perm))


# ------------------------------------------------------------ arithmetic ops
class Add(Function):
    """z = a + b;  dL/da = dL/dz,  dL/db = dL/dz (summed over broadcast axes)."""

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return a + b

    def backward(self, g):
        return unbroadcast(g, self.sa), unbroadcast(g, self.sb)

    def backward_graph(self, g):
        return (_unbroadcast_t(g, self.sa) if self.needs[0] else None,
                _unbroadcast_t(g, self.sb) if self.needs[1] else None)


class Sub(Function):
    """z = a − b;  dL/da = dL/dz,  dL/db = −dL/dz."""

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return a - b

    def backward(self, g):
        return (unbroadcast(g, self.sa),
                unbroadcast(-g, self.sb) if self.needs[1] else None)

    def backward_graph(self, g):
        return (_unbroadcast_t(g, self.sa) if self.needs[0] else None,
                _unbroadcast_t(-g, self.sb) if self.needs[1] else None)


class Mul(Function):
    """z = a·b;  dL/da = dL/dz·b,  dL/db = dL/dz·a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        a, b = self.a, self.b
        return (unbroadcast(g * b, a.shape) if self.needs[0] else None,
                unbroadcast(g * a, b.shape) if self.needs[1] else None)

    def backward_graph(self, g):
        a, b = self.inputs
        return (_unbroadcast_t(g * b, self.a.shape) if self.needs[0] else None,
                _unbroadcast_t(g * a, self.b.shape) if self.needs[1] else None)


class Div(Function):
    """z = a / b;  dL/da = dL/dz / b,  dL/db = −dL/dz·a / b²."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        a, b = self.a, self.b
        ga = unbroadcast(g / b, a.shape) if self.needs[0] else None
        gb = unbroadcast(-g * a / (b * b), b.shape) if self.needs[1] else None
        return ga, gb

    def backward_graph(self, g):
        a, b = self.inputs
        ga = _unbroadcast_t(g / b, self.a.shape) if self.needs[0] else None
        gb = _unbroadcast_t(-g * a / (b * b), self.b.shape) if self.needs[1] else None
        return ga, gb


class Pow(Function):
    """z = aᵇ;  dL/da = dL/dz·b·aᵇ⁻¹,  dL/db = dL/dz·aᵇ·ln a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.z = z = a ** b
        return z

    def backward(self, g):
        a, b = self.a, self.b
        ga = gb = None
        if self.needs[0]:
            ga = unbroadcast(g * b * a ** (b - 1), a.shape)
        if self.needs[1]:
            xp = array_module(g)
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = xp.where(a == 0, 0, g * self.z * xp.log(xp.where(a == 0, 1, a)))
            gb = unbroadcast(gb.astype(g.dtype, copy=False), b.shape)
        return ga, gb

    def backward_graph(self, g):
        a, b = self.inputs
        ga = gb = None
        if self.needs[0]:
            ga = _unbroadcast_t(g * b * a ** (b - 1), self.a.shape)
        if self.needs[1]:
            zero = self.a == 0
            gb = where(zero, 0, g * self.output(self.z) * log(where(zero, 1, a)))
            gb = _unbroadcast_t(gb, self.b.shape)
        return ga, gb


class Neg(Function):
    """z = −x;  dL/dx = −dL/dz."""

    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)

    def backward_graph(self, g):
        return (-g,)


def add(x1, x2):
    """Elementwise x1 + x2 with broadcasting."""
    return _binary(Add, x1, x2, "add")


def subtract(x1, x2):
    """Elementwise x1 − x2 with broadcasting."""
    return _binary(Sub, x1, x2, "subtract")


def multiply(x1, x2):
    """Elementwise x1 · x2 with broadcasting."""
    return _binary(Mul, x1, x2, "multiply")


def divide(x1, x2):
    """Elementwise x1 / x2 with broadcasting."""
    return _binary(Div, x1, x2, "divide")


true_divide = divide


def power(x1, x2):
    """Elementwise x1 ** x2 with broadcasting."""
    return _binary(Pow, x1, x2, "power")


def negative(x):
    return Neg.apply(_t(x, "negative"))


# ------------------------------------------------------------- unary math
class Exp(Function):
    """y = eˣ;  dy/dx = y."""

    def forward(self, x):
        self.y = y = array_module(x).exp(x)
        return y

    def backward(self, g):
        return (g * self.y,)

    def backward_graph(self, g):
        return (g * self.output(self.y),)


class Log(Function):
    """y = ln x;  dy/dx = 1/x."""

    def forward(self, x):
        self.x = x
        return array_module(x).log(x)

    def backward(self, g):
        return (g / self.x,)

    def backward_graph(self, g):
        return (g / self.inputs[0],)


class Sqrt(Function):
    """y = √x;  dy/dx = 1 / (2√x)."""

    def forward(self, x):
        self.y = y = array_module(x).sqrt(x)
        return y

    def backward(self, g):
        return (g / (2 * self.y),)

    def backward_graph(self, g):
        return (g / (2 * self.output(self.y)),)


class Square(Function):
    """y = x²;  dy/dx = 2x."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return (2 * g * self.x,)

    def backward_graph(self, g):
        return (2 * g * self.inputs[0],)


class Abs(Function):
    """y = |x|;  dy/dx = sign(x) (0 at 0)."""

    def forward(self, x):
        self.x = x
        return array_module(x).abs(x)

    def backward(self, g):
        return (g * array_module(g).sign(self.x),)

    def backward_graph(self, g):
        return (g * Sign.apply(self.inputs[0]),)


class Sign(Function):
    """y = sign(x);  dy/dx = 0 (piecewise constant)."""

    def forward(self, x):
        return array_module(x).sign(x)

    def backward(self, g):
        return (array_module(g).zeros_like(g),)

    def backward_graph(self, g):
        return (g * 0,)


class Sin(Function):
    """y = sin x;  dy/dx = cos x."""

    def forward(self, x):
        self.x = x
        return array_module(x).sin(x)

    def backward(self, g):
        return (g * array_module(g).cos(self.x),)

    def backward_graph(self, g):
        return (g * cos(self.inputs[0]),)


class Cos(Function):
    """y = cos x;  dy/dx = −sin x."""

    def forward(self, x):
        self.x = x
        return array_module(x).cos(x)

    def backward(self, g):
        return (-g * array_module(g).sin(self.x),)

    def backward_graph(self, g):
        return (-g * sin(self.inputs[0]),)


def exp(x):
    """eˣ, elementwise."""
    return Exp.apply(_t(x, "exp"))


def log(x):
    """Natural logarithm, elementwise."""
    return Log.apply(_t(x, "log"))


def sqrt(x):
    return Sqrt.apply(_t(x, "sqrt"))


def square(x):
    return Square.apply(_t(x, "square"))


def abs(x):  # noqa: A001 - keras.ops name
    return Abs.apply(_t(x, "abs"))


absolute = abs


def sign(x):
    return Sign.apply(_t(x, "sign"))


def sin(x):
    return Sin.apply(_t(x, "sin"))


def cos(x):
    return Cos.apply(_t(x, "cos"))


# -------------------------------------------------------------- activations
def _exp_floor(x):
    """Most negative argument whose exp() does not overflow in x's dtype."""
    return -88.0 if x.dtype.itemsize <= 4 else -708.0


def _sigmoid(x, xp=None):
    """σ(x) = 1 / (1 + e^−max(x, floor)) with the routines of ``xp`` (default: x's array
    module)."""
    if xp is None:
        xp = array_module(x)
    return 1.0 / (1.0 + xp.exp(-xp.maximum(x, _exp_floor(x))))


class Tanh(Function):
    """y = (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ);  dy/dx = 1 − y²."""

    def forward(self, x):
        self.y = y = array_module(x).tanh(x)
        return y

    def backward(self, g):
        y = self.y
        return (g * (1 - y * y),)

    def backward_graph(self, g):
        y = self.output(self.y)
        return (g * (1 - y * y),)


class Sigmoid(Function):
    """σ(x) = 1 / (1 + e⁻ˣ);  σ'(x) = σ(x)(1 − σ(x))."""

    def forward(self, x):
        self.y = y = _sigmoid(x)
        return y

    def backward(self, g):
        y = self.y
        return (g * y * (1 - y),)

    def backward_graph(self, g):
        y = self.output(self.y)
        return (g * y * (1 - y),)


class Relu(Function):
    """y = max(0, x);  dy/dx = 1 if x > 0 else 0."""

    def forward(self, x):
        self.y = y = array_module(x).maximum(x, 0)
        return y

    def backward(self, g):
        return (g * (self.y > 0),)

    def backward_graph(self, g):
        # the mask as a zero-gradient node of x (x > 0 is y > 0): d²y/dx² = 0 comes back as
        # zeros, connected to x, as TensorFlow gives it, not as "unconnected"
        x = self.inputs[0]
        return (g * Heaviside.apply(x, _wrap(array_module(x.data).zeros((), x.data.dtype))),)


class LeakyRelu(Function):
    """y = x if x > 0 else α·x;  dy/dx = 1 or α."""

    def forward(self, x):
        self.pos = pos = x > 0
        return array_module(x).where(pos, x, self.slope * x)

    def backward(self, g):
        return (array_module(g).where(self.pos, g, self.slope * g),)

    def backward_graph(self, g):
        return (where(self.pos, g, self.slope * g),)


class Elu(Function):
    """y = x if x > 0 else α(eˣ − 1);  dy/dx = 1 or α·eˣ."""

    def forward(self, x):
        xp = array_module(x)
        self.pos = pos = x > 0
        self.neg = neg = self.alpha * xp.expm1(xp.minimum(x, 0))
        return self.scale * xp.where(pos, x, neg)

    def backward(self, g):
        return (self.scale * g * array_module(g).where(self.pos, 1, self.neg + self.alpha),)

    def backward_graph(self, g):
        x = self.inputs[0]
        d = where(self.pos, 1, self.alpha * exp(minimum(x, 0)))
        return (self.scale * g * d,)


class Softplus(Function):
    """y = ln(1 + eˣ) = max(x, 0) + ln(1 + e^−|x|);  dy/dx = σ(x)."""

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, g):
        return (g * _sigmoid(self.x),)

    def backward_graph(self, g):
        return (g * sigmoid(self.inputs[0]),)


class Softsign(Function):
    """y = x / (1 + |x|);  dy/dx = 1 / (1 + |x|)²."""

    def forward(self, x):
        self.d = d = 1 + array_module(x).abs(x)
        return x / d

    def backward(self, g):
        d = self.d
        return (g / (d * d),)

    def backward_graph(self, g):
        d = 1 + abs(self.inputs[0])
        return (g / (d * d),)


class HardSigmoid(Function):
    """y = clip(x/6 + ½, 0, 1) (Keras 3);  dy/dx = 1/6 on −3 < x < 3, else 0."""

    def forward(self, x):
        self.x = x
        return array_module(x).clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.x
        return (g * ((x > -3) & (x < 3)) / 6,)

    def backward_graph(self, g):
        x = self.x
        return (g * _wrap((((x > -3) & (x < 3)) / 6).astype(g.dtype)),)


_SQRT_2_OVER_PI = _pymath.sqrt(2 / _pymath.pi)


def _special(name, x, host, xp=None):
    """SciPy's special function ``name`` of x where it can run: SciPy (else ``host``) on a
    host array, ``cupyx.scipy.special`` on a CuPy array, and through the host for another
    device module (copied back to x's device).  ``xp``: x's array module, when known."""
    if xp is None:
        xp = array_module(x)
    if xp is np:
        try:
            import scipy.special
        except ImportError:
            return host(x)
        return getattr(scipy.special, name)(x)
    if getattr(xp, "__name__", "") == "cupy":
        import cupyx.scipy.special
        return getattr(cupyx.scipy.special, name)(x)
    return xp.asarray(_special(name, xp.asnumpy(x), host, np))


def _erf(x, xp=None):
    return _special("erf", x, _erf_host, xp)


def _erf_host(x):    # exact, but one Python call per element
    return np.vectorize(_pymath.erf, otypes=[x.dtype])(x)


class Gelu(Function):
    """Exact: y = x·Φ(x), dy/dx = Φ(x) + x·φ(x).
    Tanh form: y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))), derivative by the chain rule."""

    def forward(self, x):
        self.x = x
        if self.approximate:
            self.t = t = array_module(x).tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
            return 0.5 * x * (1 + t)
        self.cdf = cdf = (0.5 * (1 + _erf(x / _pymath.sqrt(2)))).astype(x.dtype, copy=False)
        return x * cdf

    def backward(self, g):
        x = self.x
        if self.approximate:
            t = self.t
            dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner),)
        pdf = array_module(g).exp(-0.5 * x * x) / _pymath.sqrt(2 * _pymath.pi)
        return (g * (self.cdf + x * pdf),)

    def backward_graph(self, g):
        x = self.inputs[0]
        if self.approximate:
            t = tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
            dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner),)
        cdf = 0.5 * (1 + erf(x / _pymath.sqrt(2)))
        pdf = exp(-0.5 * x * x) / _pymath.sqrt(2 * _pymath.pi)
        return (g * (cdf + x * pdf),)


class Silu(Function):
    """y = x·σ(x);  dy/dx = σ(x)(1 + x(1 − σ(x)))."""

    def forward(self, x):
        self.x = x
        self.s = s = _sigmoid(x)
        return x * s

    def backward(self, g):
        s = self.s
        return (g * s * (1 + self.x * (1 - s)),)

    def backward_graph(self, g):
        x = self.inputs[0]
        s = sigmoid(x)
        return (g * s * (1 + x * (1 - s)),)


class Heaviside(Function):
    """y = 1 if x > 0, x2 if x = 0, else 0 (the perceptron step);  dy/dx = 0."""

    def forward(self, x, x2):
        return array_module(x, x2).heaviside(x, x2).astype(np.result_type(x.dtype, x2.dtype),
                                                            copy=False)

    def backward(self, g):
        return array_module(g).zeros_like(g), None

    def backward_graph(self, g):
        return g * 0, None


def tanh(x):
    return Tanh.apply(_t(x, "tanh"))


def sigmoid(x):
    """σ(x) = 1 / (1 + e⁻ˣ), computed without overflow."""
    return Sigmoid.apply(_t(x, "sigmoid"))


def relu(x):
    return Relu.apply(_t(x, "relu"))


def leaky_relu(x, negative_slope=0.2):
    return LeakyRelu.apply(_t(x, "leaky_relu"), slope=float(negative_slope))


def elu(x, alpha=1.0):
    return Elu.apply(_t(x, "elu"), alpha=float(alpha), scale=1.0)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    """λ·elu(x, α) with Klambauer et al.'s λ ≈ 1.0507, α ≈ 1.6733."""
    return Elu.apply(_t(x, "selu"), alpha=_SELU_ALPHA, scale=_SELU_SCALE)


def softplus(x):
    return Softplus.apply(_t(x, "softplus"))


def softsign(x):
    return Softsign.apply(_t(x, "softsign"))


def hard_sigmoid(x):
    return HardSigmoid.apply(_t(x, "hard_sigmoid"))


def gelu(x, approximate=True):
    """Gaussian error linear unit; ``approximate=True`` (keras.ops default) uses the tanh form."""
    return Gelu.apply(_t(x, "gelu"), approximate=bool(approximate))


def silu(x):
    return Silu.apply(_t(x, "silu"))


swish = silu


def heaviside(x1, x2=1.0):
    """Heaviside step: 1 where x1 > 0, ``x2`` where x1 == 0, 0 elsewhere (zero gradient)."""
    x1 = _t(x1, "heaviside")
    return Heaviside.apply(x1, _const(x2, x1, "heaviside") if not isinstance(x2, Tensor) else x2)


# --------------------------------------------------- elementwise binary, misc
class Maximum(Function):
    """z = max(a, b);  the gradient goes to the larger input, split evenly on ties."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a, b).maximum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        w = (a > b) + 0.5 * (a == b)
        w = w.astype(g.dtype, copy=False)
        return (unbroadcast(g * w, a.shape) if self.needs[0] else None,
                unbroadcast(g * (1 - w), b.shape) if self.needs[1] else None)

    def backward_graph(self, g):
        a, b = self.a, self.b
        w = ((a > b) + 0.5 * (a == b)).astype(g.dtype, copy=False)
        return (_unbroadcast_t(g * _wrap(w), a.shape) if self.needs[0] else None,
                _unbroadcast_t(g * _wrap(1 - w), b.shape) if self.needs[1] else None)


class Minimum(Function):
    """z = min(a, b);  the gradient goes to the smaller input, split evenly on ties."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a, b).minimum(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        w = (a < b) + 0.5 * (a == b)
        w = w.astype(g.dtype, copy=False)
        return (unbroadcast(g * w, a.shape) if self.needs[0] else None,
                unbroadcast(g * (1 - w), b.shape) if self.needs[1] else None)

    def backward_graph(self, g):
        a, b = self.a, self.b
        w = ((a < b) + 0.5 * (a == b)).astype(g.dtype, copy=False)
        return (_unbroadcast_t(g * _wrap(w), a.shape) if self.needs[0] else None,
                _unbroadcast_t(g * _wrap(1 - w), b.shape) if self.needs[1] else None)


class Clip(Function):
    """y = min(max(x, lo), hi);  dy/dx = 1 where lo ≤ x ≤ hi, else 0."""

    def forward(self, x):
        self.x = x
        return array_module(x).clip(x, self.lo, self.hi).astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.x
        return (g * ((x >= self.lo) & (x <= self.hi)),)

    def backward_graph(self, g):
        x = self.x
        return (g * _wrap(((x >= self.lo) & (x <= self.hi)).astype(g.dtype)),)


class Where(Function):
    """z = a where c else b;  dL/da = dL/dz where c, dL/db = dL/dz elsewhere."""

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return array_module(self.c, a, b).where(self.c, a, b)

    def backward(self, g):
        c = self.c
        xp = array_module(g)
        zero = xp.zeros((), g.dtype)
        return (unbroadcast(xp.where(c, g, zero), self.sa) if self.needs[0] else None,
                unbroadcast(xp.where(c, zero, g), self.sb) if self.needs[1] else None)

    def backward_graph(self, g):
        c = self.c
        return (_unbroadcast_t(where(c, g, 0), self.sa) if self.needs[0] else None,
                _unbroadcast_t(where(c, 0, g), self.sb) if self.needs[1] else None)


def maximum(x1, x2):
    return _binary(Maximum, x1, x2, "maximum")


def minimum(x1, x2):
    return _binary(Minimum, x1, x2, "minimum")


def clip(x, x_min, x_max):
    """Clip values to [x_min, x_max]; the gradient passes where x lies inside."""
    x = _t(x, "clip")
    if x_min is not None and x_max is not None and x_min > x_max:
        raise ValueError(f"clip: x_min must not exceed x_max, received x_min={x_min}, x_max={x_max}")
    return Clip.apply(x, lo=-np.inf if x_min is None else x_min,
                      hi=np.inf if x_max is None else x_max)


def where(condition, x1=None, x2=None):
    """Elements of x1 where condition holds, else of x2 (``where(c)`` alone: indices)."""
    c = condition.data if isinstance(condition, Tensor) else condition
    if type(c) is not _ndarray and array_module(c) is np:
        c = np.asarray(c)
    if x1 is None and x2 is None:
        return tuple(Tensor(i) for i in array_module(c).nonzero(c))
    if x1 is None or x2 is None:
        raise ValueError("where: give both x1 and x2, or neither")
    a, b = _pair(x1, x2, "where")
    xp = array_module(c, a.data, b.data)
    if xp is not np:      # constants and a host condition join the device of the others
        if array_module(c) is not xp:
            c = xp.asarray(c)
        a, b = _to_module(xp, a), _to_module(xp, b)
    try:
        shape = np.broadcast_shapes(c.shape, a.data.shape, b.data.shape)
    except ValueError:
        raise ValueError(
            f"where: condition, x1 and x2 could not be broadcast together: shapes "
            f"{c.shape}, {a.data.shape} and {b.data.shape}") from None
    del shape
    return Where.apply(a, b, c=c.astype(bool, copy=False))


def _to_module(xp, t):
    """A constant Tensor ``t`` on the host as a Tensor of ``xp``'s array (the same values);
    ``t`` itself when it is already there or carries a gradient."""
    if t.requires_grad or t._ctx is not None or array_module(t.data) is xp:
        return t
    return Tensor(xp.asarray(t.data))


# ----------------------------------------------------------- linear algebra
class MatMul(Function):
    """Z = A·B (batched, broadcast like NumPy);  dL/dA = dL/dZ·Bᵀ,  dL/dB = Aᵀ·dL/dZ."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        a, b = self.a, self.b
        if a.ndim == 2 and b.ndim == 2:
            return (g @ b.T if self.needs[0] else None, a.T @ g if self.needs[1] else None)
        if a.ndim == 1 and b.ndim == 1:     # inner product: a scalar result
            return (g * b if self.needs[0] else None, g * a if self.needs[1] else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = g2[..., None, :]
        if b.ndim == 1:
            g2 = g2[..., None]
        ga = gb = None
        if self.needs[0]:
            ga = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if self.needs[1]:
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb

    def backward_graph(self, g):
        a, b = self.inputs
        na, nb = a.data.ndim, b.data.ndim
        if na == 2 and nb == 2:
            return (matmul(g, transpose(b)) if self.needs[0] else None,
                    matmul(transpose(a), g) if self.needs[1] else None)
        if na == 1 and nb == 1:
            return (g * b if self.needs[0] else None, g * a if self.needs[1] else None)
        a2 = reshape(a, (1,) + a.data.shape) if na == 1 else a
        b2 = reshape(b, b.data.shape + (1,)) if nb == 1 else b
        g2 = g
        if na == 1:
            g2 = expand_dims(g2, -2)
        if nb == 1:
            g2 = expand_dims(g2, -1)
        ga = gb = None
        if self.needs[0]:
            ga = reshape(_unbroadcast_t(matmul(g2, _swap_last(b2)), a2.data.shape), a.data.shape)
        if self.needs[1]:
            gb = reshape(_unbroadcast_t(matmul(_swap_last(a2), g2), b2.data.shape), b.data.shape)
        return ga, gb


def matmul(x1, x2):
    """Matrix product with NumPy's ``@`` semantics (batched, broadcast)."""
    a, b = _pair(x1, x2, "matmul")
    sa, sb = a.data.shape, b.data.shape
    if not sa or not sb:
        raise ValueError(f"matmul: operands must have at least 1 dimension, received shapes {sa} and {sb}")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        raise ValueError(
            f"matmul: inner dimensions differ: shapes {sa} and {sb} "
            f"({ka} vs {kb}); expected x1.shape[-1] == x2.shape[-2]")
    try:
        return MatMul.apply(a, b)
    except ValueError:
        raise ValueError(f"matmul: batch dimensions could not be broadcast: shapes {sa} and {sb}") from None


class TensorDot(Function):
    """Z = Σ over paired axes of A·B;  each gradient contracts dL/dZ with the other operand."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a, b).tensordot(a, b, axes=(self.ax_a, self.ax_b))

    def backward(self, g):
        a, b, ax_a, ax_b = self.a, self.b, self.ax_a, self.ax_b
        free_a = [i for i in range(a.ndim) if i not in ax_a]
        free_b = [i for i in range(b.ndim) if i not in ax_b]
        nfa = len(free_a)
        xp = array_module(g)
        ga = gb = None
        if self.needs[0]:
            r = xp.tensordot(g, b, axes=(list(range(nfa, g.ndim)), free_b))
            order = np.argsort(ax_b)
            src = free_a + [ax_a[j] for j in order]
            ga = r.transpose(tuple(np.argsort(src).tolist()))
        if self.needs[1]:
            r = xp.tensordot(a, g, axes=(free_a, list(range(nfa))))
            order = np.argsort(ax_a)
            src = [ax_b[j] for j in order] + free_b
            gb = r.transpose(tuple(np.argsort(src).tolist()))
        return ga, gb

    def backward_graph(self, g):
        a, b = self.inputs
        ax_a, ax_b = self.ax_a, self.ax_b
        free_a = [i for i in range(a.ndim) if i not in ax_a]
        free_b = [i for i in range(b.ndim) if i not in ax_b]
        nfa = len(free_a)
        ga = gb = None
        if self.needs[0]:
            r = tensordot(g, b, axes=(list(range(nfa, g.ndim)), free_b))
            src = free_a + [ax_a[j] for j in np.argsort(ax_b)]
            ga = transpose(r, tuple(np.argsort(src).tolist()))
        if self.needs[1]:
            r = tensordot(a, g, axes=(free_a, list(range(nfa))))
            src = [ax_b[j] for j in np.argsort(ax_a)] + free_b
            gb = transpose(r, tuple(np.argsort(src).tolist()))
        return ga, gb


def tensordot(x1, x2, axes=2):
    """Sum of products over ``axes`` (an int: last n of x1 with first n of x2; or two lists)."""
    a, b = _pair(x1, x2, "tensordot")
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(a.ndim - axes, a.ndim))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    ax_a = [int(i) % a.ndim for i in ax_a]
    ax_b = [int(i) % b.ndim for i in ax_b]
    if len(ax_a) != len(ax_b) or any(a.shape[i] != b.shape[j] for i, j in zip(ax_a, ax_b)):
        raise ValueError(
            f"tensordot: contracted axes do not match: shapes {a.shape} and {b.shape}, "
            f"axes {ax_a} and {ax_b}")
    return TensorDot.apply(a, b, ax_a=ax_a, ax_b=ax_b)


def dot(x1, x2):
    """NumPy ``dot``: products of scalars, inner product of vectors, matmul of matrices,
    and for N-D a sum over the last axis of x1 and the second-to-last of x2."""
    a, b = _pair(x1, x2, "dot")
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 2]))


# ---------------------------------------------------------------- reductions
class Sum(Function):
    """y = Σᵢ xᵢ over ``axes``;  dL/dx = dL/dy broadcast back over those axes."""

    def forward(self, x):
        self.shape = x.shape
        return _sum(array_module(x), x, self.axes, self.keepdims)

    def backward(self, g):
        return (array_module(g).broadcast_to(_expand(g, self.axes, self.keepdims), self.shape),)

    def backward_graph(self, g):
        return (_broadcast_t(_expand_t(g, self.axes, self.keepdims), self.shape),)


class Mean(Function):
    """y = (1/N) Σᵢ xᵢ over ``axes``;  dL/dx = dL/dy / N."""

    def forward(self, x):
        self.shape = x.shape
        return array_module(x).mean(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        n = 1
        for a in self.axes:
            n *= self.shape[a]
        xp = array_module(g)
        g = _expand(g, self.axes, self.keepdims) / _b.max(n, 1)
        return (xp.broadcast_to(g, self.shape),)

    def backward_graph(self, g):
        n = 1
        for a in self.axes:
            n *= self.shape[a]
        return (_broadcast_t(_expand_t(g, self.axes, self.keepdims) / _b.max(n, 1),
                             self.shape),)


class Extremum(Function):
    """y = max (or min) over ``axes``;  dL/dx goes to the extreme elements, split evenly on ties."""

    def forward(self, x):
        xp = array_module(x)
        f = xp.max if self.largest else xp.min
        y = f(x, axis=self.axes, keepdims=True)
        self.x, self.yk = x, y
        return y if self.keepdims else xp.squeeze(y, axis=self.axes)

    def backward(self, g):
        mask = self.x == self.yk
        count = mask.sum(axis=self.axes, keepdims=True)
        g = _expand(g, self.axes, self.keepdims)
        return (mask * (g / count).astype(g.dtype, copy=False),)

    def backward_graph(self, g):
        mask = self.x == self.yk
        count = mask.sum(axis=self.axes, keepdims=True)
        w = (mask / count).astype(g.dtype, copy=False)
        return (_expand_t(g, self.axes, self.keepdims) * _wrap(w),)


class Var(Function):
    """v = (1/N) Σ (x − x̄)²;  dv/dx = 2(x − x̄)/N.  (σ = √v: dσ/dx = (x − x̄)/(Nσ).)"""

    def forward(self, x):
        xp = array_module(x)
        self.shape = x.shape
        self.d = d = x - xp.mean(x, axis=self.axes, keepdims=True)
        v = xp.mean(d * d, axis=self.axes, keepdims=self.keepdims)
        if self.root:
            self.s = v = xp.sqrt(v)
        return v

    def backward(self, g):
        n = 1
        for a in self.axes:
            n *= self.shape[a]
        g = _expand(g, self.axes, self.keepdims)
        if self.root:
            s = _expand(self.s, self.axes, self.keepdims)
            return (g * self.d / (n * s),)
        return (g * 2 * self.d / n,)

    def backward_graph(self, g):
        x = self.inputs[0]
        n = 1
        for a in self.axes:
            n *= self.shape[a]
        d = x - mean(x, axis=self.axes, keepdims=True)
        g = _expand_t(g, self.axes, self.keepdims)
        if self.root:
            s = _expand_t(self.output(self.s), self.axes, self.keepdims)
            return (g * d / (n * s),)
        return (g * 2 * d / n,)


def _reduce(cls, x, axis, keepdims, op, **kw):
    x = _t(x, op)
    axes = _axis(axis, x.ndim, op)
    return cls.apply(x, axes=axes, keepdims=bool(keepdims), **kw)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - keras.ops name
    return _reduce(Sum, x, axis, keepdims, "sum")


def mean(x, axis=None, keepdims=False):
    return _reduce(Mean, x, axis, keepdims, "mean")


def max(x, axis=None, keepdims=False):  # noqa: A001 - keras.ops name
    x = _t(x, "max")
    if x.size == 0:
        raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
    return _reduce(Extremum, x, axis, keepdims, "max", largest=True)


def min(x, axis=None, keepdims=False):  # noqa: A001 - keras.ops name
    x = _t(x, "min")
    if x.size == 0:
        raise ValueError(f"min: cannot reduce an empty tensor of shape {x.shape}")
    return _reduce(Extremum, x, axis, keepdims, "min", largest=False)


def var(x, axis=None, keepdims=False):
    """Population variance (divides by N, like keras.ops.var)."""
    return _reduce(Var, x, axis, keepdims, "var", root=False)


def std(x, axis=None, keepdims=False):
    """Population standard deviation (divides by N, like keras.ops.std)."""
    return _reduce(Var, x, axis, keepdims, "std", root=True)


def logsumexp(x, axis=None, keepdims=False):
    """log Σ eˣ computed as m + log Σ e^(x−m), m = max x (no overflow)."""
    x = _t(x, "logsumexp")
    m = max(x, axis=axis, keepdims=True).detach()
    out = log(sum(exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = squeeze(out, axis=_axis(axis, x.ndim, "logsumexp"))
    return out


def argmax(x, axis=None, keepdims=False):
    """Index of the largest value (no gradient)."""
    d = _t(x, "argmax").data
    return Tensor(array_module(d).argmax(d, axis=axis, keepdims=keepdims))


def argmin(x, axis=None, keepdims=False):
    d = _t(x, "argmin").data
    return Tensor(array_module(d).argmin(d, axis=axis, keepdims=keepdims))


# ------------------------------------------------------------------ softmax
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Softmax(Function):
    """yᵢ = e^(xᵢ − max x) / Σⱼ e^(xⱼ − max x);  dL/dx = y ⊙ (dL/dy − Σ dL/dy ⊙ y)."""

    s = se = logp = None    # kept for a cross-entropy that reads the logits under this node

    def forward(self, x):
        xp = array_module(x)
        if xp is np:
            if self.axis == (x.ndim - 1,) and x.dtype in _FLOATS and x.size \
                    and x.flags.c_contiguous:
                k = _compiled.kernels("softmax_rows")
                if k is not None:                    # row by row, log-softmax alongside
                    n = x.shape[-1]
                    self.y, self.logp = y, logp = np.empty_like(x), np.empty_like(x)
                    k.softmax_rows(x.reshape(-1, n), y.reshape(-1, n), logp.reshape(-1, n))
                    return y
            m = np.maximum.reduce(x, axis=self.axis, keepdims=True)
        else:
            m = xp.max(x, axis=self.axis, keepdims=True)
        self.s = s = x - m
        e = xp.exp(s)
        self.se = se = _sum(xp, e, self.axis, True)
        self.y = y = e / se
        return y

    def backward(self, g):
        y = self.y
        return (y * (g - _sum(array_module(g), g * y, self.axis, True)),)

    def backward_graph(self, g):
        y = self.output(self.y)
        return (y * (g - sum(g * y, axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    """yᵢ = xᵢ − m − log Σⱼ e^(xⱼ − m) (log-sum-exp);  dL/dx = dL/dy − softmax(x)·Σ dL/dy."""

    def forward(self, x):
        xp = array_module(x)
        s = x - xp.max(x, axis=self.axis, keepdims=True)
        self.y = y = s - xp.log(xp.sum(xp.exp(s), axis=self.axis, keepdims=True))
        return y

    def backward(self, g):
        xp = array_module(g)
        return (g - xp.exp(self.y) * xp.sum(g, axis=self.axis, keepdims=True),)

    def backward_graph(self, g):
        return (g - exp(self.output(self.y)) * sum(g, axis=self.axis, keepdims=True),)


def softmax(x, axis=-1):
    """Softmax along ``axis``, computed on x − max(x): a constant row gives exactly 1/K."""
    x = _t(x, "softmax")
    return Softmax.apply(x, axis=_axis(axis, x.ndim, "softmax"))


def log_softmax(x, axis=-1):
    """log(softmax(x)) by log-sum-exp, finite even where softmax underflows to 0."""
    x = _t(x, "log_softmax")
    return LogSoftmax.apply(x, axis=_axis(axis, x.ndim, "log_softmax"))


# --------------------------------------------------------------- shape ops
class Reshape(Function):
    """y = x viewed with another shape;  dL/dx = dL/dy reshaped back."""

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(self.newshape)

    def backward(self, g):
        return (g.reshape(self.shape),)

    def backward_graph(self, g):
        return (reshape(g, self.shape),)


class Transpose(Function):
    """y = x with axes permuted;  dL/dx = dL/dy with the inverse permutation."""

    def forward(self, x):
        return x.transpose() if self.axes is None else x.transpose(self.axes)

    def backward(self, g):
        if self.axes is None:
            return (g.transpose(),)
        return (g.transpose(tuple(np.argsort(self.axes).tolist())),)

    def backward_graph(self, g):
        return (transpose(g, None if self.axes is None
                          else tuple(np.argsort(self.axes).tolist())),)


class GetItem(Function):
    """y = x[index];  dL/dx scatters dL/dy back (summing where an index repeats)."""

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, g):
        xp = array_module(g)
        out = xp.zeros(self.shape, dtype=g.dtype)
        if self.advanced:
            xp.add.at(out, self.index, g)
        else:
            out[self.index] = g
        return (out,)

    def backward_graph(self, g):
        return (ScatterItem.apply(g, shape=self.shape, index=self.index,
                                  advanced=self.advanced),)


class ScatterItem(Function):
    """y = zeros(shape) with y[index] = x (summing where an index repeats): GetItem's
    gradient as a node;  dL/dx = dL/dy[index]."""

    def forward(self, x):
        xp = array_module(x)
        out = xp.zeros(self.shape, dtype=x.dtype)
        if self.advanced:
            xp.add.at(out, self.index, x)
        else:
            out[self.index] = x
        return out

    def backward(self, g):
        return (g[self.index],)

    def backward_graph(self, g):
        return (GetItem.apply(g, index=self.index, advanced=self.advanced),)


class Concatenate(Function):
    """y = [x₁, x₂, …] along ``axis``;  each dL/dxᵢ is its slice of dL/dy."""

    def forward(self, *xs):
        self.bounds = np.cumsum([x.shape[self.axis] for x in xs])[:-1].tolist()
        return array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, g):
        return tuple(array_module(g).split(g, self.bounds, axis=self.axis))

    def backward_graph(self, g):
        pre = (slice(None),) * self.axis
        edges = [0] + [int(e) for e in self.bounds] + [g.shape[self.axis]]
        return tuple(GetItem.apply(g, index=pre + (slice(lo, hi),), advanced=False)
                     for lo, hi in zip(edges[:-1], edges[1:]))


class Stack(Function):
    """y = xs stacked on a new ``axis``;  dL/dxᵢ = dL/dy[…, i, …]."""

    def forward(self, *xs):
        return array_module(*xs).stack(xs, axis=self.axis)

    def backward(self, g):
        return tuple(array_module(g).moveaxis(g, self.axis, 0))

    def backward_graph(self, g):
        pre = (slice(None),) * self.axis
        return tuple(GetItem.apply(g, index=pre + (i,), advanced=False)
                     for i in range(g.shape[self.axis]))


class Pad(Function):
    """y = x surrounded by constants;  dL/dx = the inner block of dL/dy."""

    def forward(self, x):
        self.inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pad_width, x.shape))
        return array_module(x).pad(x, self.pad_width, mode="constant",
                                   constant_values=self.value)

    def backward(self, g):
        return (g[self.inner],)

    def backward_graph(self, g):
        return (GetItem.apply(g, index=self.inner, advanced=False),)


class Cast(Function):
    """y = x converted to another dtype;  dL/dx = dL/dy converted back."""

    def forward(self, x):
        self.src = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        return (g.astype(self.src),)

    def backward_graph(self, g):
        return (Cast.apply(g, dtype=self.src),)


def reshape(x, newshape):
    x = _t(x, "reshape")
    if isinstance(newshape, (int, np.integer)):
        newshape = (int(newshape),)
    newshape = tuple(int(s) for s in newshape)
    try:
        return Reshape.apply(x, newshape=newshape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
            f"into shape {newshape}") from None


def transpose(x, axes=None):
    x = _t(x, "transpose")
    if axes is not None:
        axes = tuple(int(a) % x.ndim for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of a rank-{x.ndim} tensor's axes")
    return Transpose.apply(x, axes=axes)


_BASIC_INDEX = frozenset((int, bool, slice, type(None), type(Ellipsis)))


def _index(key):
    """Convert Tensors inside an index to arrays; tell whether indexing is advanced."""
    items = key if isinstance(key, tuple) else (key,)
    out, advanced = [], False
    for k in items:
        if isinstance(k, Tensor):
            k = k.data
        if isinstance(k, list):
            k = np.asarray(k)
        if isinstance(k, np.ndarray) or (type(k) not in _BASIC_INDEX and array_module(k) is not np):
            # a host or device index array (CuPy indexes by either)
            if k.ndim > 0 or k.dtype == bool:
                advanced = True
            if k.dtype.kind not in "biu":
                raise TypeError(f"get_item: index arrays must be integers or booleans, received dtype {k.dtype}")
        out.append(k)
    return (tuple(out) if isinstance(key, tuple) else out[0]), advanced


def get_item(x, key):
    x = _t(x, "get_item")
    key, advanced = _index(key)
    try:
        return GetItem.apply(x, index=key, advanced=advanced)
    except IndexError as e:
        raise IndexError(f"get_item: {e} (tensor shape {x.shape})") from None


def take(x, indices, axis=None):
    x = _t(x, "take")
    idx = indices.data if isinstance(indices, Tensor) else indices
    if array_module(idx) is np:
        idx = np.asarray(idx)
    if axis is None:
        return get_item(reshape(x, (-1,)), idx)
    axis = _axis(axis, x.ndim, "take")[0]
    return get_item(x, (slice(None),) * axis + (idx,))


def concatenate(xs, axis=0):
    xs = [_t(x, "concatenate") for x in xs]
    if not xs:
        raise ValueError("concatenate: expected at least one tensor, received none")
    xp = array_module(*[t.data for t in xs])
    if xp is not np:
        xs = [_to_module(xp, t) for t in xs]
    nd = xs[0].ndim
    ax = _axis(axis, nd, "concatenate")[0]
    for x in xs[1:]:
        if x.ndim != nd or any(x.shape[i] != xs[0].shape[i] for i in range(nd) if i != ax):
            raise ValueError(
                f"concatenate: all shapes must match except on axis {axis}, received "
                f"{[t.shape for t in xs]}")
    return Concatenate.apply(*xs, axis=ax)


def stack(x, axis=0):
    xs = [_t(t, "stack") for t in x]
    if not xs:
        raise ValueError("stack: expected at least one tensor, received none")
    xp = array_module(*[t.data for t in xs])
    if xp is not np:
        xs = [_to_module(xp, t) for t in xs]
    if any(t.shape != xs[0].shape for t in xs):
        raise ValueError(f"stack: all tensors must have the same shape, received {[t.shape for t in xs]}")
    ax = _axis(axis, xs[0].ndim + 1, "stack")[0]
    return Stack.apply(*xs, axis=ax)


def split(x, indices_or_sections, axis=0):
    """Split into a list of tensors (equal sections, or at the given indices)."""
    x = _t(x, "split")
    ax = _axis(axis, x.ndim, "split")[0]
    n = x.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ValueError(f"split: cannot split axis {ax} of length {n} into {k} equal sections")
        bounds = list(range(0, n + 1, n // k))
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    pre = (slice(None),) * ax
    return [get_item(x, pre + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:])]


def expand_dims(x, axis):
    x = _t(x, "expand_dims")
    return reshape(x, np.expand_dims(np.empty(x.shape, dtype=bool), axis).shape)


def squeeze(x, axis=None):
    x = _t(x, "squeeze")
    if axis is not None:
        for a in _axis(axis, x.ndim, "squeeze"):
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} has length {x.shape[a]}, expected 1 (shape {x.shape})")
    return reshape(x, np.squeeze(np.empty(x.shape, dtype=bool), axis=axis).shape)


def pad(x, pad_width, mode="constant", constant_values=None):
    x = _t(x, "pad")
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is differentiable here, received mode={mode!r}")
    pw = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    if (pw < 0).any():
        raise ValueError(f"pad: pad widths must be non-negative, received {pad_width!r}")
    return Pad.apply(x, pad_width=tuple(map(tuple, pw.tolist())),
                     value=0 if constant_values is None else constant_values)


def cast(x, dtype):
    x = _t(x, "cast")
    dtype = np.dtype(dtype)
    if dtype == x.dtype:
        return x
    if dtype.kind != "f":
        return Tensor(x.data.astype(dtype))
    return Cast.apply(x, dtype=dtype)


# --------------------------------------------------------- non-differentiable
def _routine(name):
    """``name`` of the array module of the arguments (NumPy's own on host arrays)."""
    host = getattr(np, name)

    def f(*args):
        xp = array_module(*args)
        return (host if xp is np else getattr(xp, name))(*args)
    f.__name__ = name
    return f


def _compare(f, name):
    def op(x1, x2):
        a, b = _pair(x1, x2, name)
        try:
            return Tensor(f(a.data, b.data))
        except ValueError:
            raise ValueError(
                f"{name}: operands could not be broadcast together: shapes "
                f"{a.data.shape} and {b.data.shape}") from None
    op.__name__ = name
    op.__doc__ = f"Elementwise ``{name}`` comparison (boolean result, no gradient)."
    return op


equal = _compare(_routine("equal"), "equal")
not_equal = _compare(_routine("not_equal"), "not_equal")
less = _compare(_routine("less"), "less")
less_equal = _compare(_routine("less_equal"), "less_equal")
greater = _compare(_routine("greater"), "greater")
greater_equal = _compare(_routine("greater_equal"), "greater_equal")


def one_hot(x, num_classes, axis=-1, dtype=None):
    """One-hot encode integer labels (no gradient); labels must lie in [0, num_classes)."""
    d = x.data if isinstance(x, Tensor) else x
    xp = array_module(d)
    if xp is np:
        d = np.asarray(d)
    if d.dtype.kind == "f":
        if not xp.all(xp.mod(d, 1) == 0):
            raise ValueError("one_hot: expected integer labels, received non-integer floats")
        d = d.astype(np.int64)
    if d.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer labels, received dtype {d.dtype}")
    if d.size and (d.min() < 0 or d.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must lie in [0, {num_classes}), received values from "
            f"{d.min().item()} to {d.max().item()}")
    dtype = dtype or backend.floatx()
    if xp is np:
        out = np.zeros(d.shape + (num_classes,), dtype=dtype)
        np.put_along_axis(out, d[..., None], 1, axis=-1)
    else:                       # out[..., k] = (d == k)
        out = (d[..., None] == xp.arange(num_classes)).astype(dtype)
    if axis not in (-1, d.ndim):
        out = xp.moveaxis(out, -1, axis)
    return Tensor(out)


def convert_to_tensor(x, dtype=None):
    if isinstance(x, Tensor) and (dtype is None or np.dtype(dtype) == x.dtype):
        return x
    return Tensor(x.data if isinstance(x, Tensor) else x, dtype=dtype)


def convert_to_numpy(x):
    """x as a host ``numpy.ndarray`` (a device array copied back)."""
    return to_numpy(x.data if isinstance(x, Tensor) else x)


def zeros_like(x, dtype=None):
    d = _t(x, "zeros_like").data
    return Tensor(array_module(d).zeros_like(d, dtype=dtype))


def ones_like(x, dtype=None):
    d = _t(x, "ones_like").data
    return Tensor(array_module(d).ones_like(d, dtype=dtype))


# ------------------------------------------------- error function, rsqrt
def _float_in(x, op):
    """x as a Tensor, integers and booleans converted to floatx (Keras's rule for float math)."""
    x = _t(x, op)
    if x.data.dtype.kind != "f":
        if x.data.dtype.kind == "c":
            raise TypeError(f"{op}: expected a real tensor, received dtype {x.data.dtype}")
        return _wrap(x.data.astype(backend.floatx()))
    return x


def _erfc(x, xp=None):
    return _special("erfc", x, _erfc_host, xp)


def _erfc_host(x):   # exact, but one Python call per element
    return np.vectorize(_pymath.erfc, otypes=[x.dtype])(x)


def _erfinv(y, xp=None):
    return _special("erfinv", y, _erfinv_host, xp)


def _erfinv_host(y):
    """erf⁻¹(y): Giles's single-precision polynomial start, then Newton steps on erf in float64
    (each step x ← x − (erf x − y)·(√π/2)·e^{x²}), ±inf at ±1 and NaN outside [−1, 1]."""
    y64 = np.asarray(y, dtype=np.float64)
    inside = np.abs(y64) < 1
    yc = np.where(inside, y64, 0.0)
    w = -np.log((1.0 - yc) * (1.0 + yc))
    small = w < 5.0
    ws = w - 2.5
    ps = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
              -0.00417768164, 0.246640727, 1.50140941):
        ps = c + ps * ws
    wl = np.sqrt(np.maximum(w, 5.0)) - 3.0
    pl = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
              0.00943887047, 1.00167406, 2.83297682):
        pl = c + pl * wl
    x = np.where(small, ps, pl) * yc
    for _ in range(3):
        x = x - (_erf(x, np) - yc) * (_pymath.sqrt(_pymath.pi) / 2) * np.exp(x * x)
    x = np.where(inside, x, np.where(np.abs(y64) == 1, np.sign(y64) * np.inf, np.nan))
    return x.astype(np.asarray(y).dtype, copy=False)


_TWO_OVER_SQRT_PI = 2.0 / _pymath.sqrt(_pymath.pi)


class Erf(Function):
    """y = erf x = (2/√π)∫₀ˣ e^{−t²} dt;  dy/dx = (2/√π) e^{−x²}."""

    def forward(self, x):
        self.x = x
        xp = array_module(x)
        return xp.asarray(_erf(x, xp), dtype=x.dtype)

    def backward(self, g):
        return (g * _TWO_OVER_SQRT_PI * array_module(g).exp(-self.x * self.x),)

    def backward_graph(self, g):
        x = self.inputs[0]
        return (g * _TWO_OVER_SQRT_PI * exp(-x * x),)


class Erfc(Function):
    """y = erfc x = 1 − erf x;  dy/dx = −(2/√π) e^{−x²}."""

    def forward(self, x):
        self.x = x
        xp = array_module(x)
        return xp.asarray(_erfc(x, xp), dtype=x.dtype)

    def backward(self, g):
        return (-g * _TWO_OVER_SQRT_PI * array_module(g).exp(-self.x * self.x),)

    def backward_graph(self, g):
        x = self.inputs[0]
        return (-g * _TWO_OVER_SQRT_PI * exp(-x * x),)


class Erfinv(Function):
    """y = erf⁻¹ x;  dy/dx = 1 / erf′(y) = (√π/2) e^{y²}."""

    def forward(self, x):
        xp = array_module(x)
        self.y = y = xp.asarray(_erfinv(x, xp), dtype=x.dtype)
        return y

    def backward(self, g):
        return (g * (_pymath.sqrt(_pymath.pi) / 2) * array_module(g).exp(self.y * self.y),)

    def backward_graph(self, g):
        y = self.output(self.y)
        return (g * (_pymath.sqrt(_pymath.pi) / 2) * exp(y * y),)


class Rsqrt(Function):
    """y = 1/√x;  dy/dx = −½ x^{−3/2} = −½ y³."""

    def forward(self, x):
        with np.errstate(divide="ignore"):
            self.y = y = 1.0 / array_module(x).sqrt(x)
        return y.astype(x.dtype, copy=False)

    def backward(self, g):
        y = self.y
        return (-0.5 * g * y * y * y,)

    def backward_graph(self, g):
        y = self.output(self.y)
        return (-0.5 * g * y * y * y,)


def erf(x):
    """The error function, elementwise (Keras ``ops.erf``)."""
    return Erf.apply(_float_in(x, "erf"))


def erfc(x):
    """The complementary error function 1 − erf x, elementwise, accurate for large x."""
    return Erfc.apply(_float_in(x, "erfc"))


def erfinv(x):
    """The inverse error function on [−1, 1] (±inf at ±1, NaN outside), elementwise."""
    return Erfinv.apply(_float_in(x, "erfinv"))


def rsqrt(x):
    """1/√x, elementwise (Keras ``ops.rsqrt``)."""
    return Rsqrt.apply(_float_in(x, "rsqrt"))


# --------------------------------------------------- Tensor operator methods
def _install_operators():
    T = Tensor
    T.__add__ = add
    T.__radd__ = lambda self, o: add(o, self)
    T.__sub__ = subtract
    T.__rsub__ = lambda self, o: subtract(o, self)
    T.__mul__ = multiply
    T.__rmul__ = lambda self, o: multiply(o, self)
    T.__truediv__ = divide
    T.__rtruediv__ = lambda self, o: divide(o, self)
    T.__pow__ = power
    T.__rpow__ = lambda self, o: power(o, self)
    T.__matmul__ = matmul
    T.__rmatmul__ = lambda self, o: matmul(o, self)
    T.__neg__ = negative
    T.__pos__ = lambda self: self
    T.__abs__ = abs
    T.__eq__ = equal
    T.__ne__ = not_equal
    T.__lt__ = less
    T.__le__ = less_equal
    T.__gt__ = greater
    T.__ge__ = greater_equal
    T.__getitem__ = get_item
    T.sum = lambda self, axis=None, keepdims=False, **kw: sum(self, axis, keepdims)
    T.mean = lambda self, axis=None, keepdims=False, **kw: mean(self, axis, keepdims)
    T.max = lambda self, axis=None, keepdims=False, **kw: max(self, axis, keepdims)
    T.min = lambda self, axis=None, keepdims=False, **kw: min(self, axis, keepdims)
    T.var = lambda self, axis=None, keepdims=False, **kw: var(self, axis, keepdims)
    T.std = lambda self, axis=None, keepdims=False, **kw: std(self, axis, keepdims)
    T.argmax = lambda self, axis=None, keepdims=False: argmax(self, axis, keepdims)
    T.exp = exp
    T.log = log
    T.sqrt = sqrt
    T.tanh = tanh
    T.sigmoid = sigmoid
    T.relu = relu
    T.abs = abs

    def _reshape(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        return reshape(self, shape)

    def _transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        return transpose(self, axes or None)

    T.reshape = _reshape
    T.transpose = _transpose
    T.T = property(lambda self: transpose(self))
    T.astype = cast
    T.matmul = matmul
    T.dot = dot

    ufuncs = {
        np.add: add, np.subtract: subtract, np.multiply: multiply, np.divide: divide,
        np.power: power, np.negative: negative, np.exp: exp, np.log: log, np.sqrt: sqrt,
        np.square: square, np.absolute: abs, np.sign: sign, np.sin: sin, np.cos: cos,
        np.tanh: tanh, np.maximum: maximum, np.minimum: minimum, np.matmul: matmul,
        np.equal: equal, np.not_equal: not_equal, np.less: less, np.less_equal: less_equal,
        np.greater: greater, np.greater_equal: greater_equal,
    }

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # NumPy calls this for `array + tensor`, `np.exp(tensor)`, …: stay differentiable.
        if method == "__call__" and not kwargs and ufunc in ufuncs:
            return ufuncs[ufunc](*inputs)
        arrays = [i.data if isinstance(i, Tensor) else i for i in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(o.data if isinstance(o, Tensor) else o for o in kwargs["out"])
        return getattr(ufunc, method)(*arrays, **kwargs)

    T.__array_ufunc__ = __array_ufunc__


_install_operators()
