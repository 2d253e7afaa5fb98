"""The ``tensorflow`` names tf.keras code uses, mapped onto axone (the ``tensorflow`` alias).

Tensors are axone Tensors, ``tf.Variable`` is axone's Variable, ``tf.GradientTape`` is axone's
tape, ``tf.function`` runs the function eagerly, and ``tf.data.Dataset`` is a plain Python
pipeline whose iteration yields NumPy arrays (tuples of them for ``(x, y)`` datasets).
"""
import builtins
import functools
import types

import numpy as np

from .. import backend
from .. import ops as _ops
from .. import random as _random
from ..autograd import GradientTape  # noqa: F401
from ..autograd.tensor import Tensor
from ..variables import Variable as _Variable

builtins_range = builtins.range

__version__ = "2.16.1"

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int8, int16, int32, int64 = (np.dtype(n) for n in ("int8", "int16", "int32", "int64"))
uint8, bool_ = np.dtype("uint8"), np.dtype("bool")
_DTYPES = {"bool": bool_}


def _dt(dtype):
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"tensorflow: unknown dtype {dtype!r}") from None


def constant(value, dtype=None, shape=None, name=None):
    """A constant Tensor (Python floats become float32, ints int32, as TensorFlow)."""
    if isinstance(value, Tensor):
        value = value.data
    arr = np.asarray(value, dtype=_dt(dtype))
    if dtype is None:
        if arr.dtype == np.float64 and not isinstance(value, np.ndarray):
            arr = arr.astype(np.float32)
        elif arr.dtype == np.int64 and not isinstance(value, np.ndarray):
            arr = arr.astype(np.int32)
    if shape is not None:
        shape = tuple(shape)
        arr = np.broadcast_to(arr, shape).copy() if arr.size == 1 else arr.reshape(shape)
    return Tensor(arr)


def convert_to_tensor(value, dtype=None, name=None):
    if isinstance(value, Tensor) and (dtype is None or value.dtype == _dt(dtype)):
        return value
    return constant(value, dtype=dtype)


def Variable(initial_value, trainable=True, name=None, dtype=None, shape=None):  # noqa: N802
    """``tf.Variable``: axone's Variable holding ``initial_value``."""
    value = initial_value() if callable(initial_value) else initial_value
    value = constant(value, dtype=dtype).data
    return _Variable(value, trainable=trainable, name=name, dtype=value.dtype)


def identity(x):
    return Tensor(np.array(convert_to_tensor(x).data, copy=True))


def cast(x, dtype):
    return _ops.cast(convert_to_tensor(x), _dt(dtype))


def shape(x):
    return Tensor(np.asarray(convert_to_tensor(x).shape, dtype=np.int32))


def rank(x):
    return Tensor(np.int32(convert_to_tensor(x).ndim))


def size(x):
    return Tensor(np.int32(convert_to_tensor(x).size))


def reshape(x, shape):
    return _ops.reshape(x, tuple(int(s) for s in np.asarray(
        shape.data if isinstance(shape, Tensor) else shape).reshape(-1)))


def concat(values, axis):
    return _ops.concatenate(list(values), axis=axis)


def stack(values, axis=0):
    return _ops.stack(list(values), axis=axis)


def linspace(start, stop, num, axis=0):
    return _ops.linspace(start, stop, int(num), axis=axis)


def range(start, limit=None, delta=1, dtype=None):  # noqa: A001
    if limit is None:
        start, limit = 0, start
    if dtype is None:
        dtype = np.float32 if any(isinstance(v, float) for v in (start, limit, delta)) else np.int32
    return Tensor(np.arange(start, limit, delta, dtype=_dt(dtype)))


def zeros(shape, dtype=float32):
    return Tensor(np.zeros(tuple(shape) if not np.isscalar(shape) else (shape,), _dt(dtype)))


def ones(shape, dtype=float32):
    return Tensor(np.ones(tuple(shape) if not np.isscalar(shape) else (shape,), _dt(dtype)))


def fill(dims, value):
    return Tensor(np.full(tuple(dims), value, dtype=constant(value).dtype))


zeros_like, ones_like = _ops.zeros_like, _ops.ones_like


def _reduction(fn):
    def red(input_tensor, axis=None, keepdims=False, name=None):
        return fn(input_tensor, axis=axis, keepdims=keepdims)
    red.__name__ = fn.__name__
    return red


reduce_sum, reduce_mean = _reduction(_ops.sum), _reduction(_ops.mean)
reduce_max, reduce_min = _reduction(_ops.max), _reduction(_ops.min)
reduce_prod = _reduction(_ops.prod)
reduce_std, reduce_variance = _reduction(_ops.std), _reduction(_ops.var)


def matmul(a, b, transpose_a=False, transpose_b=False):
    if transpose_a:
        a = _ops.swapaxes(a, -1, -2) if hasattr(_ops, "swapaxes") else _ops.transpose(a)
    if transpose_b:
        b = _ops.swapaxes(b, -1, -2) if hasattr(_ops, "swapaxes") else _ops.transpose(b)
    return _ops.matmul(a, b)


exp, log, sqrt, square, abs, sin, cos, tanh, sigmoid = (  # noqa: A001
    _ops.exp, _ops.log, _ops.sqrt, _ops.square, _ops.abs, _ops.sin, _ops.cos, _ops.tanh,
    _ops.sigmoid)
maximum, minimum, pow, add, subtract, multiply, divide = (  # noqa: A001
    _ops.maximum, _ops.minimum, _ops.power, _ops.add, _ops.subtract, _ops.multiply, _ops.divide)
argmax, argmin, where, clip_by_value = _ops.argmax, _ops.argmin, _ops.where, _ops.clip
transpose, expand_dims, squeeze, one_hot = _ops.transpose, _ops.expand_dims, _ops.squeeze, \
    _ops.one_hot


def _namespace(name, **names):
    m = types.ModuleType(f"tensorflow.{name}")
    m.__dict__.update(names)
    return m


math = _namespace(
    "math", exp=exp, log=log, sqrt=sqrt, square=square, abs=abs, sin=sin, cos=cos, tanh=tanh,
    sigmoid=sigmoid, maximum=maximum, minimum=minimum, pow=pow, add=add, subtract=subtract,
    multiply=multiply, divide=divide, reduce_sum=reduce_sum, reduce_mean=reduce_mean,
    reduce_max=reduce_max, reduce_min=reduce_min, reduce_prod=reduce_prod,
    reduce_std=reduce_std, reduce_variance=reduce_variance, argmax=argmax, argmin=argmin,
    log1p=_ops.log1p, expm1=_ops.expm1, floor=_ops.floor, round=_ops.round,
    reciprocal=_ops.reciprocal, rsqrt=_ops.rsqrt, softplus=_ops.softplus)
nn = _namespace(
    "nn", relu=_ops.relu, sigmoid=sigmoid, tanh=tanh, softmax=_ops.softmax, elu=_ops.elu,
    selu=_ops.selu, softplus=_ops.softplus, gelu=_ops.gelu, silu=_ops.silu, swish=_ops.silu,
    leaky_relu=_ops.leaky_relu, log_softmax=_ops.log_softmax)


def _set_global_seed(seed):
    from ..utils import set_random_seed
    set_random_seed(seed)


random = _namespace(
    "random",
    normal=lambda shape, mean=0.0, stddev=1.0, dtype=float32, seed=None: _random.normal(
        tuple(shape), mean=mean, stddev=stddev, dtype=_dt(dtype), seed=seed),
    uniform=lambda shape, minval=0, maxval=None, dtype=float32, seed=None: _random.uniform(
        tuple(shape), minval=minval, maxval=1.0 if maxval is None else maxval, dtype=_dt(dtype),
        seed=seed),
    set_seed=_set_global_seed)


def function(func=None, **kwargs):
    """``tf.function``: the function itself, run eagerly (with or without arguments)."""
    if func is None:
        return lambda f: function(f, **kwargs)
    if not callable(func):
        raise TypeError(f"tf.function: expected a callable, received {type(func).__name__}")

    @functools.wraps(func)
    def run(*args, **kw):
        return func(*args, **kw)
    return run


# ------------------------------------------------------------------ tf.data
AUTOTUNE = -1
_INFINITE, _UNKNOWN = -1, -2


def _arr(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


class Dataset:
    """``tf.data.Dataset`` as a Python pipeline: iteration yields NumPy arrays in the
    structure of the elements ((x, y) tuples, dicts, single arrays).  Batches are sliced from
    the source arrays (a shuffled batch gathers only its own rows)."""

    def __init__(self, make, cardinality):
        self._make = make
        self._card = cardinality

    @staticmethod
    def from_tensor_slices(tensors):
        struct = tensors
        leaves = []

        def flat(s):
            if isinstance(s, dict):
                return {k: flat(v) for k, v in s.items()}
            if isinstance(s, tuple):
                return tuple(flat(v) for v in s)
            a = _arr(s)
            if a.ndim == 0:
                raise ValueError("Dataset.from_tensor_slices: every component needs a first "
                                 "dimension to slice, received a scalar")
            leaves.append(a)
            return len(leaves) - 1
        idx = flat(struct)
        n = leaves[0].shape[0]
        for a in leaves:
            if a.shape[0] != n:
                raise ValueError(f"Dataset.from_tensor_slices: all components must have the "
                                 f"same first dimension, received {[x.shape[0] for x in leaves]}")

        def pick(rows):
            def build(s):
                if isinstance(s, dict):
                    return {k: build(v) for k, v in s.items()}
                if isinstance(s, tuple):
                    return tuple(build(v) for v in s)
                return leaves[s][rows]
            return build(idx)
        ds = Dataset(lambda: (pick(i) for i in builtins_range(n)), n)
        ds._pick, ds._n = pick, n
        return ds

    @staticmethod
    def range(*args):
        r = builtins_range(*args)
        return Dataset(lambda: (np.int64(i) for i in r), len(r))

    def __iter__(self):
        return iter(self._make())

    def as_numpy_iterator(self):
        return iter(self)

    def cardinality(self):
        return Tensor(np.int64(self._card))

    def __len__(self):
        if self._card == _INFINITE:
            raise TypeError("The dataset is infinite.")
        if self._card < 0:
            raise TypeError("The dataset length is unknown.")
        return self._card

    def _rows(self):
        """(pick, order) when this dataset is a plain slice source (batches gather rows)."""
        return getattr(self, "_pick", None)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True):
        if int(buffer_size) < 1:
            raise ValueError(f"Dataset.shuffle: buffer_size must be positive, received "
                             f"{buffer_size}")
        rng = np.random.default_rng(seed) if seed is not None else backend.rng() \
            if callable(getattr(backend, "rng", None)) else np.random.default_rng()
        state = {"first": None}
        src, bs = self, int(buffer_size)
        if self._rows() is not None:
            pick, n = self._pick, self._n

            def order():
                if state["first"] is not None and not reshuffle_each_iteration:
                    return state["first"]
                o = _buffer_order(n, bs, rng)
                state["first"] = o
                return o
            ds = Dataset(lambda: (pick(i) for i in order()), self._card)
            ds._order, ds._pick_src = order, pick
            return ds

        def gen():
            buf = []
            for e in src:
                buf.append(e)
                if len(buf) >= bs:
                    yield buf.pop(int(rng.integers(len(buf))))
            while buf:
                yield buf.pop(int(rng.integers(len(buf))))
        return Dataset(gen, self._card)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None,
              deterministic=None):
        b = int(batch_size)
        if b < 1:
            raise ValueError(f"Dataset.batch: batch_size must be positive, received {batch_size}")
        card = self._card
        if card >= 0:
            card = card // b if drop_remainder else -(-card // b)
        pick = self._rows() or getattr(self, "_pick_src", None)
        if pick is not None:
            order = getattr(self, "_order", None) or (lambda: np.arange(self._n))
            n_rows = self._card

            def gen_rows():
                o = np.asarray(order())
                stop = n_rows - n_rows % b if drop_remainder else n_rows
                for i in builtins_range(0, stop, b):
                    sl = o[i:i + b]
                    rows = slice(int(sl[0]), int(sl[0]) + len(sl)) if len(sl) and \
                        np.all(np.diff(sl) == 1) else sl
                    yield pick(rows)
            return Dataset(gen_rows, card)
        src = self

        def gen():
            buf = []
            for e in src:
                buf.append(e)
                if len(buf) == b:
                    yield _stack(buf)
                    buf = []
            if buf and not drop_remainder:
                yield _stack(buf)
        return Dataset(gen, card)

    def map(self, map_func, num_parallel_calls=None, deterministic=None):
        src = self

        def gen():
            for e in src:
                out = map_func(*e) if isinstance(e, tuple) else map_func(e)
                yield _to_numpy(out)
        return Dataset(gen, self._card)

    def prefetch(self, buffer_size):
        return self

    def cache(self, filename=""):
        return self

    def repeat(self, count=None):
        src = self
        if count is None or int(count) < 0:
            def gen():
                while True:
                    yield from src
            return Dataset(gen, _INFINITE if self._card != 0 else 0)
        c = int(count)

        def gen_n():
            for _ in builtins_range(c):
                yield from src
        return Dataset(gen_n, self._card * c if self._card >= 0 else self._card)

    def take(self, count):
        src, c = self, int(count)

        def gen():
            if c < 0:
                yield from src
                return
            for i, e in enumerate(src):
                if i >= c:
                    return
                yield e
        card = self._card if c < 0 else (c if self._card == _INFINITE else min(c, self._card)
                                         if self._card >= 0 else _UNKNOWN)
        return Dataset(gen, card)


def _buffer_order(n, buffer_size, rng):
    """TF's shuffle-buffer order of 0..n-1 (uniform permutation when the buffer holds all)."""
    if buffer_size >= n:
        return rng.permutation(n)
    out, buf, nxt = [], list(builtins_range(min(buffer_size, n))), min(buffer_size, n)
    while buf:
        j = int(rng.integers(len(buf)))
        out.append(buf[j])
        if nxt < n:
            buf[j] = nxt
            nxt += 1
        else:
            buf.pop(j)
    return np.asarray(out)


def _stack(elems):
    e0 = elems[0]
    if isinstance(e0, dict):
        return {k: _stack([e[k] for e in elems]) for k in e0}
    if isinstance(e0, tuple):
        return tuple(_stack([e[i] for e in elems]) for i in builtins_range(len(e0)))
    return np.stack([_arr(e) for e in elems])


def _to_numpy(x):
    if isinstance(x, dict):
        return {k: _to_numpy(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return tuple(_to_numpy(v) for v in x)
    return _arr(x)


data = _namespace("data", Dataset=Dataset, AUTOTUNE=AUTOTUNE)
globals()["bool"] = bool_
