"""Random draws as Keras 3's ``keras.random``: seeded, shaped, differentiable where Keras is.

Every function takes a ``seed``:

- ``None`` (the default): the draw comes from the backend generator :func:`axone.backend.rng`,
  so ``axone.utils.set_random_seed`` makes a run repeatable, and repeated calls differ;
- an integer: a fresh generator seeded from it, so the same integer gives the same values on
  every call (as in Keras, seeded draws are stateless);
- a :class:`SeedGenerator`: its state is the seed of this draw, then advances, so repeated calls
  differ but the whole sequence repeats from the same initial seed.

Outputs are :class:`axone.Tensor`.  Location and scale arguments may be Tensors that require a
gradient: ``normal``, ``uniform`` and ``truncated_normal`` are written as
y = loc + scale·ε with ε drawn independently of them (the reparameterization trick), so
dL/dloc = Σ dL/dy and dL/dscale = Σ dL/dy·ε.  ``dropout`` (y = x·m/(1 − rate)) and ``shuffle``
(a gather, y = x[π]) are differentiable in their input.  ``categorical``, ``randint``,
``gamma``, ``beta`` and ``binomial`` are not differentiable, as in Keras.
"""
import numbers
import threading

import numpy as np

from . import backend
from .autograd.tensor import Tensor
from .ops import math as M
from .ops.nn import Dropout
from .variables import Variable

__all__ = ["SeedGenerator", "normal", "uniform", "randint", "truncated_normal", "dropout",
           "shuffle", "categorical", "gamma", "beta", "binomial"]

_NAME_COUNTS = {}
_NAME_LOCK = threading.Lock()
_SEED_DTYPE = "int32"


@backend.register_session_reset
def _reset_names():
    with _NAME_LOCK:
        _NAME_COUNTS.clear()


def _auto_name(base):
    with _NAME_LOCK:
        n = _NAME_COUNTS.get(base, 0)
        _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _is_int(x):
    return isinstance(x, (int, np.integer))


def _to_int32(seed):
    """The 32 bits of ``seed`` read as a signed int32 (how Keras stores seeds)."""
    return ((int(seed) & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000


class SeedGenerator:
    """A random state that advances on every draw (Keras ``keras.random.SeedGenerator``).

    ``state`` is a non-trainable int32 Variable ``[seed, counter]``; ``next()`` returns it and
    adds one to the counter.  ``SeedGenerator()`` without a seed takes its seed from the backend
    generator, so ``set_random_seed`` fixes it too.

    >>> gen = SeedGenerator(42)
    >>> a = normal((2, 3), seed=gen); b = normal((2, 3), seed=gen)   # a ≠ b, repeatable
    """

    def __init__(self, seed=None, name=None, **kwargs):
        custom_backend = kwargs.pop("backend", None)
        if kwargs:
            raise ValueError(f"SeedGenerator: unrecognized keyword arguments: {kwargs}")
        if custom_backend is not None:
            raise NotImplementedError("SeedGenerator: the `backend` argument is not supported by "
                                      "axone (every draw uses axone's own backend)")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"SeedGenerator: `name` must be a string, received {name!r}")
        self.name = name if name is not None else _auto_name("seed_generator")
        self._initial_seed = seed
        if seed is None:
            seed = int(backend.rng().integers(1, 10 ** 9))
        if not _is_int(seed):
            raise ValueError(f"SeedGenerator: argument `seed` must be an integer, received "
                             f"seed={seed!r} (of type {type(seed).__name__})")
        self._lock = threading.Lock()
        self.state = Variable(np.array([_to_int32(seed), 0], dtype=_SEED_DTYPE),
                              dtype=_SEED_DTYPE, trainable=False,
                              name="seed_generator_state")
        self.state.path = f"{self.name}/seed_generator_state"

    def next(self, ordered=True):
        """The current state ``[seed, counter]`` (a copy); the state then advances: the counter
        by one (``ordered=True``), or the whole state to (state + 1)·5387 mod 933199."""
        with self._lock:
            value = self.state.data.copy()
            if ordered:
                self.state.data[1] = _to_int32(int(value[1]) + 1)
            else:
                self.state.data[...] = (value.astype(np.int64) + 1) * 5387 % 933199
        return Tensor(value)

    def get_config(self):
        return {"seed": self._initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<SeedGenerator name={self.name!r} state={self.state.data.tolist()}>"


# ------------------------------------------------------------------ arguments
def _generator(seed, fn):
    """The NumPy Generator for one draw of ``fn`` (see the module docstring for the rule)."""
    if seed is None:
        return backend.rng()
    if isinstance(seed, SeedGenerator):
        first, second = (int(v) for v in seed.next().data)
    elif _is_int(seed):
        first, second = int(seed), 0
    else:
        raise ValueError(f"{fn}: argument `seed` must be either an integer or an instance of "
                         f"`SeedGenerator`, received seed={seed!r} (of type "
                         f"{type(seed).__name__})")
    return np.random.default_rng([first & 0xFFFFFFFF, second & 0xFFFFFFFF])


def _shape(shape, fn):
    """``shape`` as a tuple of non-negative ints (an int, a sequence, or a 1-D integer array)."""
    if isinstance(shape, Tensor):
        shape = shape.data
    if isinstance(shape, np.ndarray):
        if shape.ndim > 1 or (shape.size and shape.dtype.kind not in "iu"):
            raise TypeError(f"{fn}: `shape` must be a tuple of integers, received an array of "
                            f"shape {shape.shape} and dtype {shape.dtype}")
        shape = shape.tolist() if shape.ndim else [int(shape)]
    if _is_int(shape) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            _is_int(d) and not isinstance(d, bool) for d in shape):
        raise TypeError(f"{fn}: `shape` must be a tuple of integers, received shape={shape!r}")
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"{fn}: `shape` must not have negative dimensions, received "
                         f"shape={shape}")
    return shape


def _dtype(dtype, fn, kinds, default=None, what="a floating point"):
    if dtype is None:
        dtype = default or backend.floatx()
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{fn}: `dtype` must be {what} dtype, received dtype={dtype!r}") from None
    if dt.kind not in kinds:
        raise ValueError(f"{fn}: `dtype` must be {what} dtype, received dtype={dtype!r}")
    return dt


def _param(x, fn, name):
    """A distribution parameter as a float64 array (a number, a list, an array or a Tensor)."""
    data = x.data if isinstance(x, Tensor) else x
    if isinstance(data, bool) or not (isinstance(data, (numbers.Real, np.ndarray, np.generic,
                                                        list, tuple))):
        raise TypeError(f"{fn}: `{name}` must be a number or an array of numbers, received "
                        f"{type(x).__name__}")
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: `{name}` must be a number or an array of numbers, received "
                        f"{x!r}") from None
    return arr


def _broadcasts(shape, fn, **params):
    """Check that every parameter broadcasts to the output ``shape`` (and does not enlarge it)."""
    for name, p in params.items():
        pshape = np.shape(p.data if isinstance(p, Tensor) else p)
        try:
            ok = np.broadcast_shapes(shape, pshape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{fn}: `{name}` of shape {pshape} does not broadcast to the "
                             f"output shape {shape}")


def _floats(gen, method, shape, dt):
    """Standard draws (``method`` of the Generator) of ``shape`` in dtype ``dt``."""
    native = np.float64 if dt == np.float64 else np.float32
    return getattr(gen, method)(shape, dtype=native).astype(dt, copy=False)


def _affine(eps, shift, scale, dt, fn, names):
    """y = shift + scale·ε as a Tensor of dtype ``dt``; a graph node when shift or scale is a
    Tensor (dL/dshift = Σ dL/dy, dL/dscale = Σ dL/dy·ε), plain NumPy otherwise."""
    shape = eps.shape
    _broadcasts(shape, fn, **{names[0]: shift, names[1]: scale})
    if isinstance(shift, Tensor) or isinstance(scale, Tensor):
        def as_tensor(v, name):
            if isinstance(v, Tensor):
                if v.dtype.kind != "f":
                    v = Tensor(v.data.astype(dt))
                return M.cast(v, dt)
            return Tensor(_param(v, fn, name).astype(dt))
        return M.add(M.multiply(as_tensor(scale, names[1]), Tensor(eps)),
                     as_tensor(shift, names[0]))
    shift, scale = _param(shift, fn, names[0]), _param(scale, fn, names[1])
    return Tensor(np.broadcast_to(shift + scale * eps, shape).astype(dt))


def _check_scale(stddev, fn, name):
    if not isinstance(stddev, Tensor) and np.any(_param(stddev, fn, name) < 0):
        raise ValueError(f"{fn}: `{name}` must be non-negative, received {name}={stddev!r}")


# ------------------------------------------------------------------ continuous draws
def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of N(mean, stddev²): y = mean + stddev·ε, ε ~ N(0, 1).

    ``mean`` and ``stddev`` may be numbers, arrays or Tensors broadcasting to ``shape``;
    gradients flow to Tensors: dy/dmean = 1, dy/dstddev = ε.
    """
    shape = _shape(shape, "normal")
    dt = _dtype(dtype, "normal", "f")
    _check_scale(stddev, "normal", "stddev")
    eps = _floats(_generator(seed, "normal"), "standard_normal", shape, dt)
    return _affine(eps, mean, stddev, dt, "normal", ("mean", "stddev"))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples of U[minval, maxval): y = minval + (maxval − minval)·u, u ~ U[0, 1).

    Differentiable in Tensor ``minval``/``maxval``: dy/dminval = 1 − u, dy/dmaxval = u.
    """
    shape = _shape(shape, "uniform")
    dt = _dtype(dtype, "uniform", "f")
    u = _floats(_generator(seed, "uniform"), "random", shape, dt)
    if isinstance(minval, Tensor) or isinstance(maxval, Tensor):
        _broadcasts(shape, "uniform", minval=minval, maxval=maxval)
        width = M.subtract(maxval if isinstance(maxval, Tensor) else _param(maxval, "uniform", "maxval"),
                           minval if isinstance(minval, Tensor) else _param(minval, "uniform", "minval"))
    else:
        width = _param(maxval, "uniform", "maxval") - _param(minval, "uniform", "minval")
    return _affine(u, minval, width, dt, "uniform", ("minval", "maxval"))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of N(mean, stddev²) restricted to [mean − 2·stddev, mean + 2·stddev]:
    y = mean + stddev·z with z ~ N(0, 1) redrawn until |z| ≤ 2 (differentiable like ``normal``)."""
    shape = _shape(shape, "truncated_normal")
    dt = _dtype(dtype, "truncated_normal", "f")
    _check_scale(stddev, "truncated_normal", "stddev")
    gen = _generator(seed, "truncated_normal")
    z = gen.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = gen.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return _affine(z.astype(dt), mean, stddev, dt, "truncated_normal", ("mean", "stddev"))


def _positive(x, fn, name):
    arr = _param(x, fn, name)
    if not np.all(arr > 0):
        raise ValueError(f"{fn}: `{name}` must be positive, received {name}={x!r}")
    return arr


def gamma(shape, alpha, dtype=None, seed=None):
    """Samples of Gamma(alpha, 1): density x^(alpha−1)·e^(−x)/Γ(alpha), mean and variance alpha."""
    shape = _shape(shape, "gamma")
    dt = _dtype(dtype, "gamma", "f")
    alpha = _positive(alpha, "gamma", "alpha")
    _broadcasts(shape, "gamma", alpha=alpha)
    return Tensor(_generator(seed, "gamma").standard_gamma(alpha, size=shape).astype(dt))


def beta(shape, alpha, beta, dtype=None, seed=None):  # noqa: F811 - Keras argument name
    """Samples of Beta(alpha, beta): density ∝ x^(alpha−1)(1 − x)^(beta−1) on (0, 1),
    mean alpha/(alpha + beta)."""
    shape = _shape(shape, "beta")
    dt = _dtype(dtype, "beta", "f")
    a, b = _positive(alpha, "beta", "alpha"), _positive(beta, "beta", "beta")
    _broadcasts(shape, "beta", alpha=a, beta=b)
    return Tensor(_generator(seed, "beta").beta(a, b, size=shape).astype(dt))


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Samples of Binomial(counts, probabilities): successes in ``counts`` trials, mean n·p and
    variance n·p·(1 − p); returned as floats (dtype, default floatx) as in Keras."""
    shape = _shape(shape, "binomial")
    dt = _dtype(dtype, "binomial", "f")
    n = _param(counts, "binomial", "counts")
    if not np.all((n >= 0) & (n == np.floor(n))):
        raise ValueError(f"binomial: `counts` must be non-negative integers, received "
                         f"counts={counts!r}")
    p = _param(probabilities, "binomial", "probabilities")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"binomial: `probabilities` must lie in [0, 1], received "
                         f"probabilities={probabilities!r}")
    _broadcasts(shape, "binomial", counts=n, probabilities=p)
    return Tensor(_generator(seed, "binomial").binomial(n.astype(np.int64), p, size=shape)
                  .astype(dt))


# ------------------------------------------------------------------ discrete draws
def _integer(x, fn, name):
    data = x.data if isinstance(x, Tensor) else x
    if isinstance(data, np.ndarray) and data.ndim == 0:
        data = data.item()
    if isinstance(data, bool) or not isinstance(data, numbers.Real) or data != int(data):
        raise TypeError(f"{fn}: `{name}` must be an integer, received {name}={x!r}")
    return int(data)


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers drawn uniformly from [minval, maxval) (``dtype`` an integer type, int32 default)."""
    shape = _shape(shape, "randint")
    dt = _dtype(dtype, "randint", "iu", default="int32", what="an integer")
    lo, hi = _integer(minval, "randint", "minval"), _integer(maxval, "randint", "maxval")
    if lo >= hi:
        raise ValueError(f"randint: `minval` must be less than `maxval`, received minval={lo}, "
                         f"maxval={hi}")
    info = np.iinfo(dt)
    if lo < info.min or hi - 1 > info.max:
        raise ValueError(f"randint: the range [{lo}, {hi}) does not fit dtype {dt.name} "
                         f"([{info.min}, {info.max}])")
    return Tensor(_generator(seed, "randint").integers(lo, hi, size=shape, dtype=dt))


def categorical(logits, num_samples, dtype="int32", seed=None):
    """Class indices drawn from softmax(logits) per row: ``logits`` (batch, classes) →
    samples (batch, num_samples), each column an independent draw."""
    data = np.asarray(logits.data if isinstance(logits, Tensor) else logits)
    if data.ndim != 2:
        raise ValueError(f"categorical: `logits` should be a 2-D tensor with shape "
                         f"[batch_size, num_classes], received shape {data.shape}")
    if data.dtype.kind not in "biuf":
        raise TypeError(f"categorical: `logits` must be numeric, received dtype {data.dtype}")
    if data.shape[1] == 0:
        raise ValueError("categorical: `logits` must have at least one class, received shape "
                         f"{data.shape}")
    num_samples = _integer(num_samples, "categorical", "num_samples")
    if num_samples < 0:
        raise ValueError(f"categorical: `num_samples` must be non-negative, received "
                         f"{num_samples}")
    dt = _dtype(dtype, "categorical", "biuf", default="int32", what="a numeric")
    z = data.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        z = np.exp(z - z.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
    if not np.all(np.isfinite(probs)):
        raise ValueError("categorical: every row of `logits` must have a finite maximum (no NaN, "
                         "no +inf, not all -inf)")
    cdf = np.cumsum(probs, axis=1)
    u = _generator(seed, "categorical").random((data.shape[0], num_samples)) * cdf[:, -1:]
    out = np.empty(u.shape, dtype=np.int64)
    for i in range(data.shape[0]):
        out[i] = np.searchsorted(cdf[i], u[i], side="right")
    np.minimum(out, data.shape[1] - 1, out=out)
    return Tensor(out.astype(dt))


# ------------------------------------------------------------------ ops on a tensor
def dropout(inputs, rate, noise_shape=None, seed=None):
    """Inverted dropout: y = x·m/(1 − rate) with m ~ Bernoulli(1 − rate) of ``noise_shape``
    (broadcast over x; ``None`` entries take x's size);  dL/dx = dL/dy·m/(1 − rate).
    ``rate=1`` gives zeros, ``rate=0`` returns the input, as in Keras."""
    x = M._t(inputs, "dropout")
    if isinstance(rate, bool) or not isinstance(rate, (numbers.Real, np.ndarray, Tensor)):
        raise TypeError(f"dropout: `rate` must be a number, received {rate!r}")
    rate = float(rate.data if isinstance(rate, Tensor) else rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout: `rate` must lie in [0, 1], received rate={rate}")
    if noise_shape is None:
        shape = x.shape
    else:
        if not isinstance(noise_shape, (tuple, list)) or len(noise_shape) != x.ndim:
            raise ValueError(f"dropout: `noise_shape` must be a tuple of length {x.ndim} (the "
                             f"input's rank), received noise_shape={noise_shape!r}")
        shape = tuple(x.shape[i] if s is None else s for i, s in enumerate(noise_shape))
        if not all(_is_int(s) and (s == 1 or s == d) for s, d in zip(shape, x.shape)):
            raise ValueError(f"dropout: `noise_shape` {tuple(noise_shape)} does not broadcast "
                             f"to the input shape {x.shape} (each entry must be None, 1 or the "
                             f"input's size)")
        shape = tuple(int(s) for s in shape)
    if rate == 0.0:
        return x
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(backend.floatx())
    if rate == 1.0:
        mask = np.zeros(shape, dtype=dt)
    else:
        keep_prob = 1.0 - rate
        keep = _floats(_generator(seed, "dropout"), "random", shape, dt) < keep_prob
        mask = keep.astype(dt) * dt.type(1.0 / keep_prob)
    if x.dtype != dt:
        x = Tensor(x.data.astype(dt))
    return Dropout.apply(x, mask=mask)


def shuffle(x, axis=0, seed=None):
    """Permute ``x`` along ``axis`` uniformly at random: y = x[π] (a gather, so
    dL/dx = dL/dy[π⁻¹]).  As in Keras, each index of the axes before ``axis`` gets its own
    permutation; the axes after it move together."""
    x = M._t(x, "shuffle")
    if x.ndim == 0:
        raise ValueError("shuffle: `x` must have at least one dimension, received a scalar")
    if not _is_int(axis) or isinstance(axis, bool):
        raise TypeError(f"shuffle: `axis` must be an integer, received axis={axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"shuffle: `axis` {axis} is out of range for a tensor of rank {x.ndim}")
    axis = int(axis) % x.ndim
    lead = x.shape[:axis + 1]
    perm = np.argsort(_generator(seed, "shuffle").random(lead), axis=axis, kind="stable")
    index = tuple(np.arange(d).reshape((-1,) + (1,) * (axis - i)) for i, d in
                  enumerate(lead[:-1])) + (perm,)
    return M.get_item(x, index)
