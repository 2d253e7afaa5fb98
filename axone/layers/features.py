"""Feature preprocessing layers: Normalization, Discretization, CategoryEncoding, Hashing,
HashedCrossing, IntegerLookup and StringLookup, as Keras 3 has them.

Numerical features: :class:`Normalization` (mean / variance given or learned by ``adapt``,
held in non-trainable weights named as Keras names them; differentiable, so it sits inside
trained models) and :class:`Discretization` (bin boundaries given or learned as quantiles).
Categorical features: :class:`CategoryEncoding` (integer ids → one-hot / multi-hot / count),
:class:`Hashing` and :class:`HashedCrossing` (hash buckets), :class:`IntegerLookup` and
:class:`StringLookup` (vocabulary ↔ index, learned by ``adapt`` or given).

Keras 3 runs Hashing, HashedCrossing and the lookups only with TensorFlow installed (its
``tf.strings`` / ``tf.lookup`` ops), and ``Discretization.adapt`` and ``Normalization.adapt`` on
iterables need it too.  Here everything is NumPy and plain Python, and the hash functions those
TensorFlow ops use are written out below, bit for bit: FarmHash ``Fingerprint64``
(``to_hash_bucket_fast``), SipHash-2-4 (``to_hash_bucket_strong``, Hashing's ``salt``) and
``FingerprintCat64`` (``tf.sparse.cross_hashed``), so the bins are the ones Keras gives.

Inputs are NumPy arrays (int, float, str / bytes / object), lists, pandas objects or axone
Tensors; outputs are axone Tensors (``StringLookup(invert=True)``: a NumPy array of ``str``).
Numeric features also work inside a model (symbolic ``Input``); string features are looked up
or hashed eagerly, as a preprocessing step (axone models take numeric inputs).  ``sparse=True``
raises, as in Keras on a non-TensorFlow backend.  The adapted vocabularies and bin boundaries
travel in ``get_config`` (Keras writes vocabularies to asset files; axone model files have none).
"""
import collections
import itertools
import math
import os

import numpy as np

from .. import backend, ops
from ..autograd.tensor import Tensor
from .base import Layer, _is_symbolic

__all__ = ["Normalization", "Discretization", "CategoryEncoding", "Hashing", "HashedCrossing",
           "IntegerLookup", "StringLookup", "encode_categorical", "fingerprint64", "siphash24",
           "fingerprint_cat64"]


# ================================================================== hash functions
# FarmHash Fingerprint64, SipHash-2-4 and TensorFlow's FingerprintCat64 on unsigned 64-bit words
# (Python ints masked to 64 bits).

_M = (1 << 64) - 1
_K0 = 0xc3a5c85c97cb3127
_K1 = 0xb492b66fbe98f273
_K2 = 0x9ae16a3b2f90404f
_KMUL = 0xc6a4a7935bd1e995

#: the hash key ``tf.sparse.cross_hashed`` starts each cross from (its ``_DEFAULT_HASH_KEY``)
CROSS_HASH_KEY = 0xDECAFCAFFE


def _fetch64(s, i):
    return int.from_bytes(s[i:i + 8], "little")


def _fetch32(s, i):
    return int.from_bytes(s[i:i + 4], "little")


def _rot(v, r):
    return ((v >> r) | (v << (64 - r))) & _M if r else v


def _shift_mix(v):
    return v ^ (v >> 47)


def _hash_len16(u, v, mul):
    a = ((u ^ v) * mul) & _M
    a ^= a >> 47
    b = ((v ^ a) * mul) & _M
    b ^= b >> 47
    return (b * mul) & _M


def _len0to16(s, n):
    if n >= 8:
        mul = (_K2 + n * 2) & _M
        a = (_fetch64(s, 0) + _K2) & _M
        b = _fetch64(s, n - 8)
        c = (_rot(b, 37) * mul + a) & _M
        d = ((_rot(a, 25) + b) * mul) & _M
        return _hash_len16(c, d, mul)
    if n >= 4:
        mul = (_K2 + n * 2) & _M
        a = _fetch32(s, 0)
        return _hash_len16((n + (a << 3)) & _M, _fetch32(s, n - 4), mul)
    if n > 0:
        y = s[0] + (s[n >> 1] << 8)
        z = n + (s[n - 1] << 2)
        return (_shift_mix(((y * _K2) & _M) ^ ((z * _K0) & _M)) * _K2) & _M
    return _K2


def _len17to32(s, n):
    mul = (_K2 + n * 2) & _M
    a = (_fetch64(s, 0) * _K1) & _M
    b = _fetch64(s, 8)
    c = (_fetch64(s, n - 8) * mul) & _M
    d = (_fetch64(s, n - 16) * _K2) & _M
    return _hash_len16((_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M,
                       (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)


def _len33to64(s, n):
    mul = (_K2 + n * 2) & _M
    a = (_fetch64(s, 0) * _K2) & _M
    b = _fetch64(s, 8)
    c = (_fetch64(s, n - 8) * mul) & _M
    d = (_fetch64(s, n - 16) * _K2) & _M
    y = (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M
    z = _hash_len16(y, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)
    e = (_fetch64(s, 16) * mul) & _M
    f = _fetch64(s, 24)
    g = ((y + _fetch64(s, n - 32)) * mul) & _M
    h = ((z + _fetch64(s, n - 24)) * mul) & _M
    return _hash_len16((_rot((e + f) & _M, 43) + _rot(g, 30) + h) & _M,
                       (e + _rot((f + a) & _M, 18) + g) & _M, mul)


def _weak32(s, i, a, b):
    w, x, y, z = _fetch64(s, i), _fetch64(s, i + 8), _fetch64(s, i + 16), _fetch64(s, i + 24)
    a = (a + w) & _M
    b = _rot((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rot(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def fingerprint64(s):
    """FarmHash Fingerprint64 of the bytes ``s`` (an unsigned 64-bit int)."""
    n = len(s)
    if n <= 16:
        return _len0to16(s, n)
    if n <= 32:
        return _len17to32(s, n)
    if n <= 64:
        return _len33to64(s, n)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _M
    z = (_shift_mix((y * _K2 + 113) & _M) * _K2) & _M
    v0 = v1 = w0 = w1 = 0
    x = (x * _K2 + _fetch64(s, 0)) & _M
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    i = 0
    while True:
        x = (_rot((x + y + v0 + _fetch64(s, i + 8)) & _M, 37) * _K1) & _M
        y = (_rot((y + v1 + _fetch64(s, i + 48)) & _M, 42) * _K1) & _M
        x ^= w1
        y = (y + v0 + _fetch64(s, i + 40)) & _M
        z = (_rot((z + w0) & _M, 33) * _K1) & _M
        v0, v1 = _weak32(s, i, (v1 * _K1) & _M, (x + w0) & _M)
        w0, w1 = _weak32(s, i + 32, (z + w1) & _M, (y + _fetch64(s, i + 16)) & _M)
        z, x = x, z
        i += 64
        if i == end:
            break
    mul = (_K1 + ((z & 0xff) << 1)) & _M
    i = last64
    w0 = (w0 + ((n - 1) & 63)) & _M
    v0 = (v0 + w0) & _M
    w0 = (w0 + v0) & _M
    x = (_rot((x + y + v0 + _fetch64(s, i + 8)) & _M, 37) * mul) & _M
    y = (_rot((y + v1 + _fetch64(s, i + 48)) & _M, 42) * mul) & _M
    x ^= (w1 * 9) & _M
    y = (y + v0 * 9 + _fetch64(s, i + 40)) & _M
    z = (_rot((z + w0) & _M, 33) * mul) & _M
    v0, v1 = _weak32(s, i, (v1 * mul) & _M, (x + w0) & _M)
    w0, w1 = _weak32(s, i + 32, (z + w1) & _M, (y + _fetch64(s, i + 16)) & _M)
    z, x = x, z
    return _hash_len16((_hash_len16(v0, w0, mul) + _shift_mix(y) * _K0 + z) & _M,
                       (_hash_len16(v1, w1, mul) + x) & _M, mul)


def _rotl(v, r):
    return ((v << r) | (v >> (64 - r))) & _M


def siphash24(k0, k1, s):
    """SipHash-2-4 of the bytes ``s`` under the key words ``k0``, ``k1`` (unsigned 64-bit)."""
    k0 &= _M
    k1 &= _M
    v0 = k0 ^ 0x736f6d6570736575
    v1 = k1 ^ 0x646f72616e646f6d
    v2 = k0 ^ 0x6c7967656e657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(v0, v1, v2, v3, k):
        for _ in range(k):
            v0 = (v0 + v1) & _M
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _M
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _M
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _M
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)
        return v0, v1, v2, v3

    n = len(s)
    full = n - n % 8
    for i in range(0, full, 8):
        m = _fetch64(s, i)
        v3 ^= m
        v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
        v0 ^= m
    last = ((n & 0xff) << 56) | int.from_bytes(s[full:], "little")
    v3 ^= last
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 2)
    v0 ^= last
    v2 ^= 0xff
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 4)
    return v0 ^ v1 ^ v2 ^ v3


def fingerprint_cat64(fp1, fp2):
    """TensorFlow's ``FingerprintCat64``: combine two 64-bit fingerprints, order-dependent."""
    result = (fp1 ^ _KMUL) & _M
    result ^= (_shift_mix((fp2 * _KMUL) & _M) * _KMUL) & _M
    result = (result * _KMUL) & _M
    result = (_shift_mix(result) * _KMUL) & _M
    return _shift_mix(result)


# ================================================================== shared helpers
_STRING_KINDS = "USO"


def _to_numpy(x, who, arg="inputs"):
    """Any input (Tensor, array, list, pandas object, scalar) as a NumPy array, strings kept."""
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "to_numpy") and not isinstance(x, np.ndarray):
        x = x.to_numpy()
    if isinstance(x, np.ndarray):
        return x
    try:
        arr = np.asarray(x)
    except ValueError as e:
        raise ValueError(f"{who}: {arg} must be a rectangular array, list or Tensor; received "
                         f"{type(x).__name__} that NumPy cannot make an array of ({e})") from None
    return arr


def _is_strings(arr):
    if arr.dtype.kind in "US":
        return True
    if arr.dtype.kind == "O":
        return all(isinstance(v, (str, bytes, np.str_, np.bytes_)) for v in arr.reshape(-1)[:64]) \
            and arr.size > 0 or arr.size == 0
    return False


def _text(v, encoding="utf-8"):
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode(encoding)
    return str(v)


def _string_list(arr, who, encoding="utf-8"):
    """The flat elements of a string array as Python ``str`` (bytes decoded)."""
    out = []
    for v in arr.reshape(-1):
        if not isinstance(v, (str, bytes, np.str_, np.bytes_)):
            raise TypeError(f"{who}: expected strings, found the element {v!r} of type "
                            f"{type(v).__name__} among them")
        out.append(_text(v, encoding))
    return out


def _numeric(arr, who, arg="inputs"):
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{who}: expected numeric {arg}, received an array of dtype {arr.dtype}")
    return arr


def _check_output_mode(mode, allowed, who):
    if mode not in allowed:
        raise ValueError(f"{who}: invalid value for argument `output_mode`. Expected one of "
                         f"{allowed}. Received: output_mode={mode!r}")


def _no_sparse(sparse, who):
    if sparse:
        raise ValueError(f"{who}: `sparse=True` is not supported (Keras supports sparse outputs "
                         "only with the TensorFlow backend)")


def encode_categorical(indices, output_mode, depth, dtype, count_weights=None, strict=None):
    """Integer category indices → Keras's ``"int"`` / ``"one_hot"`` / ``"multi_hot"`` / ``"count"``.

    As Keras's ``encode_categorical_inputs``: a scalar is one sample; ``"one_hot"`` drops a last
    axis of size 1 and appends a ``depth`` axis; ``"multi_hot"`` (presence) and ``"count"``
    (occurrences, each weighted by ``count_weights`` if given) reduce axis 1 of a rank ≥ 2 input
    (axis 0 of a vector) into a ``depth`` axis.  Indices outside ``[0, depth)`` raise a
    ValueError naming ``strict`` (a layer name), or are dropped when ``strict`` is None (the
    lookups' masked positions).
    """
    idx = np.asarray(indices)
    if output_mode == "int":
        return idx.astype(dtype)
    if idx.ndim == 0:
        idx = idx.reshape(1)
    if idx.dtype.kind == "f":
        idx = np.trunc(idx)
    idx = idx.astype(np.int64)
    valid = (idx >= 0) & (idx < depth)
    if strict is not None and not valid.all():
        bad = idx[~valid]
        raise ValueError(f"{strict}: input values must be in the range 0 <= values < {depth} "
                         f"(num_tokens); received {bad[:5].tolist()}")
    if output_mode == "one_hot":
        if idx.ndim > 1 and idx.shape[-1] == 1:
            idx, valid = idx[..., 0], valid[..., 0]
        out = np.zeros(idx.shape + (depth,), dtype=dtype)
        flat = out.reshape(-1, depth)
        rows = np.nonzero(valid.reshape(-1))[0]
        flat[rows, idx.reshape(-1)[rows]] = 1
        return out
    axis = 1 if idx.ndim > 1 else 0
    moved = np.moveaxis(idx, axis, -1)
    vmoved = np.moveaxis(valid, axis, -1)
    lead = moved.shape[:-1]
    n = int(np.prod(lead, dtype=np.int64))
    rows = np.broadcast_to(np.arange(n).reshape(lead + (1,)), moved.shape)
    if count_weights is not None and output_mode == "count":
        w = np.asarray(count_weights)
        if w.shape != idx.shape:
            raise ValueError(f"{strict or 'encode_categorical'}: count_weights must have the shape "
                             f"of the inputs {idx.shape}, received {w.shape}")
        dtype = w.dtype
        w = np.moveaxis(w, axis, -1)
    out = np.zeros((n, depth), dtype=dtype)
    r, c = rows[vmoved], moved[vmoved]
    if output_mode == "multi_hot":
        out[r, c] = 1
    elif count_weights is not None:
        np.add.at(out, (r, c), w[vmoved].astype(dtype))
    else:
        np.add.at(out, (r, c), 1)
    return out.reshape(lead + (depth,))


def _encoded_shape(input_shape, output_mode, depth):
    """Keras's output shape of an encoding of ``input_shape`` into ``depth`` categories."""
    input_shape = tuple(input_shape)
    if output_mode == "int":
        return input_shape
    if len(input_shape) == 0:
        return (depth,)
    if output_mode == "one_hot":
        if len(input_shape) > 1 and input_shape[-1] == 1:
            return input_shape[:-1] + (depth,)
        return input_shape + (depth,)
    if len(input_shape) == 1:
        return (depth,)
    return (input_shape[0],) + input_shape[2:] + (depth,)


def _batches(data, who, batch_size=None, steps=None):
    """``adapt``'s data as a list-like of batches: an array (cut into ``batch_size`` rows when
    given) or an iterable of batches (at most ``steps``); a tuple batch ``(x, y, ...)`` gives x."""
    if batch_size is not None and (isinstance(batch_size, bool) or
                                   not isinstance(batch_size, (int, np.integer)) or batch_size <= 0):
        raise ValueError(f"{who}.adapt: batch_size must be None or a positive integer, received "
                         f"{batch_size!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                              or steps <= 0):
        raise ValueError(f"{who}.adapt: steps must be None or a positive integer, received {steps!r}")
    if hasattr(data, "to_numpy") and not isinstance(data, np.ndarray):
        data = data.to_numpy()
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (list, tuple)) and data and not any(
            isinstance(b, (np.ndarray, Tensor, tuple)) or hasattr(b, "to_numpy") for b in data):
        data = np.asarray(data)           # a plain (nested) list of values is one array
    if isinstance(data, np.ndarray) or np.isscalar(data):
        arr = np.asarray(data)
        if batch_size is None or arr.ndim == 0:
            yield arr
            return
        for i in range(0, len(arr), int(batch_size)):
            if steps is not None and i // int(batch_size) >= steps:
                return
            yield arr[i:i + int(batch_size)]
        return
    if not hasattr(data, "__iter__"):
        raise TypeError(f"{who}.adapt: expected an array, a list, a Tensor or an iterable of "
                        f"batches, received {type(data).__name__}")
    seen = False
    for i, batch in enumerate(data):
        if steps is not None and i >= steps:
            break
        if isinstance(batch, tuple):
            batch = batch[0]
        seen = True
        yield _to_numpy(batch, f"{who}.adapt", "each batch")
    if not seen:
        raise ValueError(f"{who}.adapt: received an empty iterable (no batches); expected at least "
                         "one batch")


class _FeatureLayer(Layer):
    """Common ground: inputs are not cast to the layer's dtype, strings pass through as arrays."""

    _autocast = False

    def _convert_input(self, x):
        if isinstance(x, Tensor):
            return x
        arr = _to_numpy(x, self._who())
        if arr.dtype.kind in "biuf":
            return Tensor(arr)
        return arr

    def _who(self):
        return f"{type(self).__name__} {self.name!r}" if "name" in self.__dict__ else \
            type(self).__name__

    def __call__(self, inputs, *args, training=None, **kwargs):
        if isinstance(inputs, (str, bytes)):
            inputs = np.array(inputs, dtype=object)
        return super().__call__(inputs, *args, training=training, **kwargs)


# ================================================================== Normalization
class Normalization(Layer):
    """Shift and scale inputs to mean 0 and variance 1: ``(x − mean) / max(√var, ε)``.

    As ``keras.layers.Normalization``.  ``axis`` (int, tuple or None) names the axes that keep a
    separate mean and variance per index (default −1, the features); the others are reduced.
    ``mean`` and ``variance`` are given together, or learned by :meth:`adapt`, which computes
    them like Keras (``np.mean`` / ``np.var`` of a whole array; for an iterable of batches, the
    batch means and variances combined with the lack-of-fit sum of squares).  ``invert=True``
    applies the inverse, ``mean + x · max(√var, ε)``.  The learned state is held in the
    non-trainable weights ``mean``, ``variance`` and ``count`` (Keras's names, shapes and
    order), so it is saved with the model's weights and transfers with ``set_weights``.
    Gradients flow to the input.
    """

    supports_masking = True

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axis = (int(axis),)
        elif isinstance(axis, (list, tuple)) and all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            axis = tuple(int(a) for a in axis)
        else:
            raise TypeError(f"Normalization: axis must be an integer, a tuple of integers or None, "
                            f"received {axis!r}")
        self.axis = axis
        if (mean is not None) != (variance is not None):
            raise ValueError("Normalization: when setting values directly, both `mean` and "
                             f"`variance` must be set. Received: mean={mean} and variance={variance}")
        if mean is not None:
            mean = mean.data if isinstance(mean, Tensor) else mean
            variance = variance.data if isinstance(variance, Tensor) else variance
            if np.shape(mean) != np.shape(variance):
                raise ValueError("Normalization: when setting values directly, `mean` and "
                                 "`variance` must have the same shape. Received: mean shape "
                                 f"{np.shape(mean)} and variance shape {np.shape(variance)}")
            if len(np.shape(mean)) > len(self.axis):
                raise ValueError("Normalization: the rank of `mean` must be less than or equal to "
                                 f"the number of axes ({len(self.axis)}). Received: mean shape "
                                 f"{np.shape(mean)} for axis {self.axis}")
            for v, nm in ((mean, "mean"), (variance, "variance")):
                a = np.asarray(v)
                if a.dtype.kind not in "biuf":
                    raise TypeError(f"Normalization: `{nm}` must be numeric, received {v!r}")
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self.adapt_mean = self.adapt_variance = self.count = None
        self._const = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"Normalization {self.name!r}: all `axis` values must be in the range "
                             f"[-ndim, ndim). Received inputs with ndim={ndim}, while axis={self.axis}")
        keep = tuple(sorted(a if a >= 0 else a + ndim for a in self.axis))
        for d in keep:
            if input_shape[d] is None:
                raise ValueError(f"Normalization {self.name!r}: all `axis` values to be kept must "
                                 f"have a known shape. Received axis={self.axis}, inputs.shape="
                                 f"{input_shape}, with unknown axis at index {d}")
        self._build_input_shape = input_shape
        self._keep_axis = keep
        self._reduce_axis = tuple(d for d in range(ndim) if d not in keep)
        self._broadcast_shape = tuple(input_shape[d] if d in keep else 1 for d in range(ndim))
        self._mean_and_var_shape = tuple(input_shape[d] for d in keep)
        self._input_ndim = ndim
        self._input_axes = {d: input_shape[d] for d in keep}
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(shape=self._mean_and_var_shape, initializer="zeros",
                                              trainable=False, name="mean")
            self.adapt_variance = self.add_weight(shape=self._mean_and_var_shape,
                                                  initializer="ones", trainable=False,
                                                  name="variance")
            # Keras keeps this (always 0) for older saved models; axone's weights are floats
            self.count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                         name="count")
        else:
            mean = np.asarray(self.input_mean, dtype=np.float64)
            var = np.asarray(self.input_variance, dtype=np.float64)
            try:
                if mean.ndim > 0:
                    expanded = [1] * ndim
                    for i in range(1, mean.ndim + 1):
                        expanded[keep[-i]] = mean.shape[-i]
                    mean, var = mean.reshape(expanded), var.reshape(expanded)
                mean = np.broadcast_to(mean, self._broadcast_shape)
                var = np.broadcast_to(var, self._broadcast_shape)
            except ValueError:
                raise ValueError(f"Normalization {self.name!r}: `mean` and `variance` of shape "
                                 f"{np.shape(self.input_mean)} cannot be broadcast to the kept "
                                 f"axes {self._mean_and_var_shape} of inputs of shape "
                                 f"{input_shape}") from None
            self._const = (mean.astype(self.dtype), var.astype(self.dtype))
        self.built = True

    def _stats(self):
        if self._const is not None:
            return self._const
        return (self.adapt_mean.data.reshape(self._broadcast_shape),
                self.adapt_variance.data.reshape(self._broadcast_shape))

    @property
    def mean(self):
        return None if not self.built else self._stats()[0]

    @property
    def variance(self):
        return None if not self.built else self._stats()[1]

    def adapt(self, data, batch_size=None, steps=None):
        """Compute the mean and variance of ``data`` (an array, a Tensor, or an iterable of
        batches) over the reduced axes and store them in the layer's weights."""
        if self.input_mean is not None:
            raise ValueError(f"Normalization {self.name!r}: cannot adapt a layer whose `mean` and "
                             "`variance` were given at construction")
        whole = isinstance(data, (np.ndarray, Tensor)) and batch_size is None
        it = iter(_batches(data, "Normalization", batch_size, steps))
        first = next(it)
        _numeric(first, f"Normalization {self.name!r}.adapt", "data")
        shape = first.shape
        if not self.built:
            self._maybe_build(shape)
        else:
            bs = self._build_input_shape
            if len(shape) != len(bs) or any(shape[d] != bs[d] for d in self._keep_axis):
                raise ValueError(f"Normalization {self.name!r}: the layer was built with "
                                 f"input_shape={bs}, but adapt() is being called with data with "
                                 f"an incompatible shape, data.shape={shape}")
        if whole:
            total_mean = np.mean(first, axis=self._reduce_axis)
            total_var = np.var(first, axis=self._reduce_axis)
        else:
            ft = np.dtype(self.dtype)
            total_mean = np.zeros(self._mean_and_var_shape, ft)
            total_var = np.zeros(self._mean_and_var_shape, ft)
            total_count = 0
            for batch in itertools.chain([first], it):
                batch = _numeric(batch, f"Normalization {self.name!r}.adapt", "data").astype(ft)
                if batch.ndim != len(shape) or any(batch.shape[d] != self._build_input_shape[d]
                                                   for d in self._keep_axis):
                    raise ValueError(f"Normalization {self.name!r}: adapt() yielded a batch with "
                                     f"incompatible shape. Expected {self._build_input_shape}, got "
                                     f"{batch.shape}.")
                b_mean = np.mean(batch, axis=self._reduce_axis)
                b_var = np.var(batch, axis=self._reduce_axis)
                b_count = math.prod(batch.shape[d] for d in self._reduce_axis) \
                    if self._reduce_axis else 1
                total_count += b_count
                w_new = float(b_count) / total_count
                w_old = 1.0 - w_new
                new_mean = total_mean * w_old + b_mean * w_new
                total_var = (total_var + (total_mean - new_mean) ** 2) * w_old + \
                    (b_var + (b_mean - new_mean) ** 2) * w_new
                total_mean = new_mean
        self.adapt_mean.assign(np.asarray(total_mean).astype(self.adapt_mean.dtype))
        self.adapt_variance.assign(np.asarray(total_var).astype(self.adapt_variance.dtype))

    def finalize_state(self):
        """Nothing to do: the call reads the weights directly (kept for Keras's API)."""

    def call(self, inputs):
        if not self.built:
            raise ValueError(f"Normalization {self.name!r}: call `.build(input_shape)` on the layer "
                             "before using it")
        mean, var = self._stats()
        dt = inputs.data.dtype
        mean = mean.astype(dt, copy=False)
        denom = np.maximum(np.sqrt(var.astype(dt, copy=False)), np.asarray(backend.epsilon(), dt))
        if self.invert:
            return ops.add(mean, ops.multiply(inputs, denom))
        return ops.divide(ops.subtract(inputs, mean), denom)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"axis": list(self.axis), "invert": self.invert,
                    "mean": np.array(self.input_mean).tolist(),
                    "variance": np.array(self.input_variance).tolist()})
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("axis"), list):
            config["axis"] = tuple(config["axis"])
        return cls(**config)


# ================================================================== Discretization
def _summarize(values, epsilon):
    """Keras's quantile summary of one batch: every ``step``-th sorted value, weight ``step``."""
    values = np.sort(np.reshape(values, [-1]))
    step = max(values.size / (1.0 / epsilon), 1)
    boundaries = values[int(step - 1)::int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def _compress_summary(summary, epsilon):
    """Re-bin a summary to about 1/epsilon points by interpolating its cumulative weights."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_pct = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_pct, summary[0])
    cum_weights = np.interp(percents, cum_pct, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")


def _merge_summaries(prev, nxt, epsilon):
    merged = np.concatenate((prev, nxt), axis=1)
    merged = np.take(merged, np.argsort(merged[0]), axis=1)
    return _compress_summary(merged, epsilon)


class Discretization(_FeatureLayer):
    """Bucket continuous values by ``bin_boundaries`` (or ``num_bins`` quantiles learned by adapt).

    As ``keras.layers.Discretization``: value x goes to bin i when
    ``bin_boundaries[i-1] <= x < bin_boundaries[i]`` (``len(bin_boundaries) + 1`` bins), output
    as ``"int"`` (int32 bin indices) or encoded ``"one_hot"`` / ``"multi_hot"`` / ``"count"``
    (floats).  ``adapt`` builds Keras's approximate quantile summary (``epsilon`` its tolerance)
    batch by batch, then takes ``num_bins`` equal-weight bins from it.  Float inputs are compared
    in float32, as Keras casts them to floatx.
    """

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
                 sparse=False, dtype=None, name=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        _no_sparse(sparse, "Discretization")
        _check_output_mode(output_mode, ("int", "one_hot", "multi_hot", "count"), "Discretization")
        if num_bins is not None and (isinstance(num_bins, bool) or
                                     not isinstance(num_bins, (int, np.integer)) or num_bins < 0):
            raise ValueError("Discretization: `num_bins` must be greater than or equal to 0. "
                             f"Received: `num_bins={num_bins}`")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError("Discretization: both `num_bins` and `bin_boundaries` should not be "
                             f"set. Received: `num_bins={num_bins}` and "
                             f"`bin_boundaries={bin_boundaries}`")
        if num_bins is None and bin_boundaries is None:
            raise ValueError("Discretization: you need to set either `num_bins` or `bin_boundaries`.")
        if not isinstance(epsilon, (int, float, np.floating)) or isinstance(epsilon, bool) \
                or not 0 < epsilon <= 1:
            raise ValueError(f"Discretization: epsilon must be a number in (0, 1], received "
                             f"{epsilon!r}")
        self.bin_boundaries = self._check_boundaries(bin_boundaries)
        self.num_bins = None if num_bins is None else int(num_bins)
        self.epsilon = epsilon
        self.output_mode = output_mode
        self.sparse = False
        self.summary = None if self.bin_boundaries else np.array([[], []], dtype="float32")
        self.built = True

    @staticmethod
    def _check_boundaries(b):
        if b is None:
            return None
        arr = np.asarray(b.data if isinstance(b, Tensor) else b)
        if arr.ndim != 1 or arr.dtype.kind not in "biuf":
            raise ValueError(f"Discretization: bin_boundaries must be a 1-D list of numbers, "
                             f"received {b!r}")
        if np.any(np.diff(arr) < 0):
            raise ValueError(f"Discretization: bin_boundaries must be sorted in increasing order, "
                             f"received {arr.tolist()}")
        return arr.astype(np.float64).tolist()

    def _output_dtype(self):
        return "int32" if self.output_mode == "int" else self.dtype

    def reset_state(self):
        if self.num_bins is not None:
            self.summary = np.array([[], []], dtype="float32")

    def update_state(self, data):
        data = _numeric(np.asarray(_to_numpy(data, self._who())), f"{self._who()}.adapt", "data")
        self.summary = _merge_summaries(_summarize(data.astype("float32"), self.epsilon),
                                        self.summary, self.epsilon)

    def finalize_state(self):
        if self.num_bins is None:
            return
        self.bin_boundaries = _compress_summary(self.summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def adapt(self, data, batch_size=None, steps=None):
        """Learn ``num_bins`` quantile boundaries from ``data`` (array, list or batches)."""
        if self.num_bins is None:
            raise ValueError("Cannot adapt a Discretization layer that has been initialized with "
                             "`bin_boundaries`, use `num_bins` instead.")
        if self.num_bins == 0:
            raise ValueError(f"{self._who()}: cannot adapt with num_bins=0; at least one bin is "
                             "needed")
        self.reset_state()
        for batch in _batches(data, "Discretization", batch_size, steps):
            self.update_state(batch)
        self.finalize_state()

    def _depth(self):
        return len(self.bin_boundaries) + 1 if self.bin_boundaries is not None else self.num_bins

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError(f"{self._who()}: you need to either pass the `bin_boundaries` argument "
                             "at construction time or call `adapt(dataset)` before you can start "
                             "using the `Discretization` layer.")
        x = _numeric(_to_numpy(inputs, self._who()), self._who())
        if x.dtype.kind == "f":
            x = x.astype(backend.floatx())
            bounds = np.asarray(self.bin_boundaries, dtype=backend.floatx())
        else:
            bounds = np.asarray(self.bin_boundaries, dtype=backend.floatx()).astype(np.float64)
        idx = np.digitize(x, bounds).astype(np.int32) if bounds.size else \
            np.zeros(x.shape, np.int32)
        return Tensor(encode_categorical(idx, self.output_mode, self._depth(), self._output_dtype()))

    def compute_output_shape(self, input_shape):
        return _encoded_shape(input_shape, self.output_mode, self._depth())

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("trainable", None)
        cfg.update({"bin_boundaries": self.bin_boundaries, "num_bins": self.num_bins,
                    "epsilon": self.epsilon, "output_mode": self.output_mode, "sparse": False})
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            bounds = config.pop("bin_boundaries")
            layer = cls(**config)
            layer.bin_boundaries = cls._check_boundaries(bounds)
            return layer
        return cls(**config)


# ================================================================== CategoryEncoding
class CategoryEncoding(_FeatureLayer):
    """Encode integer categories in ``[0, num_tokens)`` as one-hot, multi-hot or count vectors.

    As ``keras.layers.CategoryEncoding``: ``output_mode`` ``"multi_hot"`` (default; alias
    ``"binary"``), ``"one_hot"`` or ``"count"``; ``call(inputs, count_weights=None)`` weights
    each occurrence in ``"count"`` mode.  Values outside ``[0, num_tokens)`` raise a ValueError
    (Keras's torch backend raises for values ≥ num_tokens and drops negative ones).
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode not in ("count", "one_hot", "multi_hot"):
            raise ValueError(f"CategoryEncoding: unknown arg for output_mode: {output_mode!r} "
                             "(expected 'multi_hot', 'one_hot' or 'count')")
        if num_tokens is None:
            raise ValueError("CategoryEncoding: num_tokens must be set to use this layer. If the "
                             "number of tokens is not known beforehand, use the IntegerLookup "
                             "layer instead.")
        if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)):
            raise TypeError(f"CategoryEncoding: num_tokens must be an integer, received "
                            f"{num_tokens!r}")
        if num_tokens < 1:
            raise ValueError(f"CategoryEncoding: `num_tokens` must be >= 1. Received: "
                             f"num_tokens={num_tokens}.")
        _no_sparse(sparse, "CategoryEncoding")
        self.num_tokens = int(num_tokens)
        self.output_mode = output_mode
        self.sparse = False
        self.built = True

    def call(self, inputs, count_weights=None):
        x = _numeric(_to_numpy(inputs, self._who()), self._who())
        if count_weights is not None:
            if self.output_mode != "count":
                raise ValueError(f"{self._who()}: `count_weights` is not used when `output_mode` is "
                                 f"not 'count'. Received `count_weights={count_weights}`.")
            count_weights = _numeric(_to_numpy(count_weights, self._who(), "count_weights"),
                                     self._who(), "count_weights").astype(self.dtype)
            if count_weights.shape != x.shape:
                raise ValueError(f"{self._who()}: count_weights must have the shape of the inputs "
                                 f"{x.shape}, received {count_weights.shape}")
        return Tensor(encode_categorical(x, self.output_mode, self.num_tokens, self.dtype,
                                         count_weights=count_weights, strict=self._who()))

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) == 0:
            return (self.num_tokens,)
        if self.output_mode == "one_hot":
            if input_shape[-1] != 1 or len(input_shape) == 1:
                return input_shape + (self.num_tokens,)
            return input_shape[:-1] + (self.num_tokens,)
        return input_shape[:-1] + (self.num_tokens,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"num_tokens": self.num_tokens, "output_mode": self.output_mode})
        return cfg


# ================================================================== Hashing
def _hash_keys(arr, who, encoding="utf-8"):
    """The bytes each element is hashed as: strings as UTF-8, numbers as their decimal string
    (floats truncated to int64 first, booleans "true"/"false"), as Keras's ``tf.as_string``."""
    if _is_strings(arr):
        return [s.encode(encoding) for s in _string_list(arr, who, encoding)]
    if arr.dtype.kind == "b":
        return [b"true" if v else b"false" for v in arr.reshape(-1)]
    if arr.dtype.kind == "f":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{who}: expected integer, float or string inputs, received dtype "
                        f"{arr.dtype}")
    return [str(int(v)).encode() for v in arr.reshape(-1)]


def _hash_buckets(keys, num_buckets, salt=None):
    """``to_hash_bucket_fast`` (FarmHash Fingerprint64) or, with a salt, ``…_strong`` (SipHash)."""
    cache = {}
    out = np.empty(len(keys), dtype=np.int64)
    for i, k in enumerate(keys):
        h = cache.get(k)
        if h is None:
            h = cache[k] = (fingerprint64(k) if salt is None else siphash24(salt[0], salt[1], k)) \
                % num_buckets
        out[i] = h
    return out


def _check_salt(salt, who):
    if salt is None:
        return None
    if isinstance(salt, (tuple, list)) and len(salt) == 2 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in salt):
        return [int(s) for s in salt]
    if isinstance(salt, (int, np.integer)) and not isinstance(salt, bool):
        return [int(salt), int(salt)]
    raise ValueError(f"The `salt` argument for `{who}` can only be a tuple of size 2 integers, or a "
                     f"single integer. Received: salt={salt}.")


class Hashing(_FeatureLayer):
    """Hash integer, float or string features into ``num_bins`` bins.

    As ``keras.layers.Hashing`` (which needs TensorFlow; this one gives the same bins without
    it): each value is hashed as a string (numbers by their decimal form, floats truncated to
    int64 first) with FarmHash Fingerprint64, or with SipHash-2-4 keyed by ``salt`` (an int or
    two ints) when a salt is given, modulo the bins.  With ``mask_value``, bin 0 is reserved for
    it and the others hash into bins 1 … num_bins − 1.  ``output_mode``: ``"int"`` (int64, or
    the layer's integer dtype), ``"one_hot"``, ``"multi_hot"``, ``"count"`` (floats).
    """

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False,
                 **kwargs):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64" if output_mode == "int" else backend.floatx()
        super().__init__(**kwargs)
        if num_bins is None or isinstance(num_bins, bool) or \
                not isinstance(num_bins, (int, np.integer)) or num_bins <= 0:
            raise ValueError("The `num_bins` for `Hashing` cannot be `None` or non-positive "
                             f"values. Received: num_bins={num_bins}.")
        _check_output_mode(output_mode, ("int", "one_hot", "multi_hot", "count"), "Hashing")
        if output_mode == "int" and self.dtype not in ("int32", "int64"):
            raise ValueError("Hashing: when `output_mode=\"int\"`, `dtype` should be an integer "
                             f"type, 'int32' or 'int64'. Received: dtype={self.dtype}")
        if sparse and output_mode == "int":
            raise ValueError("Hashing: `sparse` may only be true if `output_mode` is \"one_hot\", "
                             "\"multi_hot\", or \"count\". Received: sparse=True and "
                             "output_mode=int")
        _no_sparse(sparse, "Hashing")
        self.num_bins = int(num_bins)
        self.mask_value = mask_value
        self.salt = _check_salt(salt, "Hashing")
        self.strong_hash = self.salt is not None
        self.output_mode = output_mode
        self.sparse = False
        self.built = True

    def _bins(self, arr):
        bins = self.num_bins
        mask = None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            if _is_strings(arr):
                mv = _text(self.mask_value) if isinstance(self.mask_value, (str, bytes)) else None
                flat = _string_list(arr, self._who())
                mask = np.array([s == mv for s in flat], dtype=bool).reshape(arr.shape)
            elif isinstance(self.mask_value, (str, bytes)):
                mask = np.zeros(arr.shape, dtype=bool)
            else:
                mask = arr == self.mask_value
        out = _hash_buckets(_hash_keys(arr, self._who()), bins, self.salt).reshape(arr.shape)
        if mask is not None:
            out = np.where(mask, 0, out + 1)
        return out

    def call(self, inputs):
        arr = _to_numpy(inputs, self._who())
        if self.output_mode == "one_hot" and arr.ndim > 0 and arr.shape[-1] == 1:
            arr = arr.reshape(arr.shape[:-1])
        return Tensor(encode_categorical(self._bins(arr), self.output_mode, self.num_bins,
                                         self.dtype))

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        if len(input_shape) == 0:
            return (self.num_bins,)
        return tuple(input_shape[:-1]) + (self.num_bins,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"num_bins": self.num_bins, "salt": self.salt, "mask_value": self.mask_value,
                    "output_mode": self.output_mode, "sparse": False})
        return cfg


class HashedCrossing(_FeatureLayer):
    """Cross categorical features by hashing: one bin in ``[0, num_bins)`` per combination.

    As ``keras.layers.HashedCrossing`` (``tf.sparse.cross_hashed``, reproduced without
    TensorFlow): for each row, the fingerprint starts from TensorFlow's key 0xDECAFCAFFE and
    folds in each feature with ``FingerprintCat64`` — a string feature as its FarmHash
    Fingerprint64, an integer as its own 64-bit value — and is taken modulo ``num_bins``.
    Inputs are a list or tuple of at least two integer or string arrays of equal shape ``()``,
    ``(batch,)`` or ``(batch, 1)``.  ``output_mode`` ``"int"`` (int64) or ``"one_hot"``.
    """

    def __init__(self, num_bins, output_mode="int", sparse=False, name=None, dtype=None, **kwargs):
        if output_mode == "int" and dtype is None:
            dtype = "int64"
        super().__init__(name=name, dtype=dtype, **kwargs)
        _no_sparse(sparse, "HashedCrossing")
        _check_output_mode(output_mode, ("int", "one_hot"), "HashedCrossing")
        if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins <= 0:
            raise ValueError(f"HashedCrossing: num_bins must be a positive integer, received "
                             f"{num_bins!r}")
        self.num_bins = int(num_bins)
        self.output_mode = output_mode
        self.sparse = False
        self.built = True

    def _columns(self, inputs):
        who = self._who()
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{who}: `HashedCrossing` should be called on a list or tuple of "
                             f"inputs. Received: inputs={inputs}")
        if len(inputs) < 2:
            raise ValueError(f"{who}: `HashedCrossing` should be called on at least two inputs. "
                             f"Received: inputs={inputs}")
        arrs = [_to_numpy(x, who) for x in inputs]
        shape = arrs[0].shape
        if len(shape) > 2 or (len(shape) == 2 and shape[-1] != 1):
            raise ValueError(f"{who}: all `HashedCrossing` inputs should have shape `()`, "
                             f"`(batch_size)` or `(batch_size, 1)`. Received shapes "
                             f"{[a.shape for a in arrs]}")
        if not all(a.shape == shape for a in arrs[1:]):
            raise ValueError(f"{who}: all `HashedCrossing` inputs should have equal shape. "
                             f"Received shapes {[a.shape for a in arrs]}")
        cols = []
        for a in arrs:
            if _is_strings(a):
                cols.append([fingerprint64(s.encode("utf-8")) for s in _string_list(a, who)])
            elif a.dtype.kind in "iu":
                cols.append([int(v) & _M for v in a.reshape(-1)])
            else:
                raise ValueError(f"{who}: all `HashedCrossing` inputs should have an integer or "
                                 f"string dtype. Received dtypes {[str(a.dtype) for a in arrs]}")
        return cols, shape

    def call(self, inputs):
        cols, shape = self._columns(inputs)
        out = np.empty(len(cols[0]), dtype=np.int64)
        for i in range(len(out)):
            h = CROSS_HASH_KEY
            for c in cols:
                h = fingerprint_cat64(h, c[i])
            out[i] = h % self.num_bins
        out = out.reshape(shape)
        return Tensor(encode_categorical(out, self.output_mode, self.num_bins, self.dtype))

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2 or \
                not all(isinstance(s, tuple) for s in input_shape):
            raise ValueError(f"{self._who()}: expected as input a list/tuple of at least 2 tensors. "
                             f"Received input_shape={input_shape}")
        first = tuple(input_shape[0])
        if any(tuple(s)[-1:] != first[-1:] for s in input_shape[1:]):
            raise ValueError(f"{self._who()}: expected the input tensors to have identical shapes. "
                             f"Received input_shape={input_shape}")
        if self.output_mode == "int":
            return first
        if not first or first[-1] != 1:
            return first + (self.num_bins,)
        return first[:-1] + (self.num_bins,)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("trainable", None)
        cfg.update({"num_bins": self.num_bins, "output_mode": self.output_mode, "sparse": False})
        return cfg


# ================================================================== IntegerLookup / StringLookup
_INT64_MAX = np.iinfo(np.int64).max


class _IndexLookup(_FeatureLayer):
    """Keras's IndexLookup: a vocabulary ↔ index table, learned by ``adapt`` or given.

    Indices, in ``"int"`` mode: 0 is the mask token when ``mask_token`` is set, then
    ``num_oov_indices`` OOV indices, then the vocabulary.  In the other modes there is no mask
    index (masked values encode to nothing).  ``adapt`` counts the tokens, drops the mask and
    OOV tokens, orders by descending count with ties by descending token (Keras's
    ``np.lexsort((tokens, counts))[::-1]``) and keeps at most ``max_tokens`` minus the special
    indices.  With several OOV indices an unknown value goes to ``value mod n`` (integers,
    ``oov_method="floormod"``) or to its FarmHash bucket (strings, or ``oov_method="farmhash"``;
    SipHash with ``salt``).  ``invert=True`` maps indices back to tokens.
    """

    _strings = False

    def __init__(self, max_tokens, num_oov_indices, mask_token, oov_token, vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", sparse=False,
                 pad_to_max_tokens=False, oov_method="floormod", salt=None, name=None,
                 encoding="utf-8", **kwargs):
        who = type(self).__name__
        frozen = kwargs.pop("vocabulary_size", None)
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("trainable", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        if max_tokens is not None and (isinstance(max_tokens, bool) or
                                       not isinstance(max_tokens, (int, np.integer)) or max_tokens <= 1):
            raise ValueError(f"If `max_tokens` is set for `{who}`, it must be greater than 1. "
                             f"Received: max_tokens={max_tokens}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"{who}: if pad_to_max_tokens is True, must set `max_tokens`. "
                             f"Received: max_tokens={max_tokens}")
        if isinstance(num_oov_indices, bool) or not isinstance(num_oov_indices, (int, np.integer)) \
                or num_oov_indices < 0:
            raise ValueError(f"The value of `num_oov_indices` argument for `{who}` must >= 0. "
                             f"Received: num_oov_indices={num_oov_indices}")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(f"{who}: invalid value for argument `oov_method`. Expected one of "
                             f"('floormod', 'farmhash'). Received: oov_method={oov_method!r}")
        if salt is not None and not self._strings and oov_method != "farmhash":
            raise ValueError(f"{who}: `salt` can only be used when `oov_method='farmhash'`. "
                             f"Received: oov_method={oov_method}")
        salt = _check_salt(salt, who)
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode == "tf-idf":
            output_mode = "tf_idf"
        _check_output_mode(output_mode, ("int", "one_hot", "multi_hot", "count", "tf_idf"), who)
        if invert and output_mode != "int":
            raise ValueError(f"{who}: `output_mode` must be `'int'` when `invert` is true. "
                             f"Received: output_mode={output_mode}")
        if sparse and output_mode == "int":
            raise ValueError(f"{who}: `sparse` may only be true if `output_mode` is `'one_hot'`, "
                             "`'multi_hot'`, `'count'` or `'tf_idf'`. Received: sparse=True and "
                             f"output_mode={output_mode}")
        _no_sparse(sparse, who)
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(f"{who}: `idf_weights` should only be set if `output_mode` is "
                             f"`'tf_idf'`. Received: output_mode={output_mode}")
        self.encoding = encoding
        self.invert = bool(invert)
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.num_oov_indices = int(num_oov_indices)
        self.mask_token = None if mask_token is None else self._token(mask_token, "mask_token")
        self.oov_token = None if oov_token is None else self._token(oov_token, "oov_token")
        self.output_mode = output_mode
        self.sparse = False
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.oov_method = oov_method
        self.salt = salt
        self._frozen_vocab_size = frozen
        self._has_input_vocabulary = bool(has_input_vocabulary)
        self.input_vocabulary = vocabulary if not isinstance(vocabulary, (str, os.PathLike)) else None
        self.input_idf_weights = idf_weights
        self._tokens = []
        self._index = {}
        self._idf = None
        if self.num_oov_indices == 1:
            self._default_value = self._oov_start_index()
        else:
            self._default_value = -1
        self.reset_state()
        if output_mode == "tf_idf" and self._has_input_vocabulary and idf_weights is None:
            raise ValueError(f"{who}: when specifying the `vocabulary` argument, in TF-IDF output "
                             "mode, the `idf_weights` argument must also be provided.")
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        self.built = True

    # ------------------------------------------------------------ tokens
    def _token(self, v, what="token"):
        who = self._who()
        if self._strings:
            if not isinstance(v, (str, bytes, np.str_, np.bytes_)):
                raise TypeError(f"{who}: {what} must be a string, received {v!r}")
            return _text(v, self.encoding)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            if isinstance(v, (float, np.floating)) and float(v).is_integer():
                return int(v)
            raise TypeError(f"{who}: {what} must be an integer, received {v!r}")
        return int(v)

    def _keys(self, arr):
        """The flat tokens of an input array (str or int) — TypeError on the wrong kind."""
        who = self._who()
        if self._strings:
            if not _is_strings(arr):
                raise TypeError(f"{who}: expected string inputs, received an array of dtype "
                                f"{arr.dtype}")
            return _string_list(arr, who, self.encoding)
        if arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.trunc(arr)):
                arr = arr.astype(np.int64)
            else:
                raise TypeError(f"{who}: expected integer inputs, received an array of dtype "
                                f"{arr.dtype}")
        return arr.reshape(-1).astype(np.int64).tolist()

    def _oov_start_index(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start_index(self):
        return self._oov_start_index() + self.num_oov_indices

    # -------------------------------------------------------- vocabulary
    def vocabulary_size(self):
        """The vocabulary's size, mask and OOV indices included."""
        return len(self._tokens) + self._token_start_index()

    def get_vocabulary(self, include_special_tokens=True):
        """The tokens by index (index i of the list is what the layer maps token i to)."""
        vocab = [self.oov_token] * self._token_start_index() + list(self._tokens)
        if self.mask_token is not None and self.output_mode == "int":
            vocab[0] = self.mask_token
        if not include_special_tokens:
            vocab = vocab[self._token_start_index():]
        return vocab

    def _set_tokens(self, tokens):
        self._tokens = list(tokens)
        start = self._token_start_index()
        self._index = {t: i + start for i, t in enumerate(self._tokens)}

    def _record_vocabulary_size(self):
        if not (self.output_mode == "int" or self.pad_to_max_tokens):
            new = self.vocabulary_size()
            if self._frozen_vocab_size is not None and new != self._frozen_vocab_size:
                raise RuntimeError(
                    f"{self._who()}: when using `output_mode={self.output_mode}` and "
                    "`pad_to_max_tokens=False`, the vocabulary size cannot be changed after the "
                    f"layer is called. Old vocab size is {self._frozen_vocab_size}, new vocab "
                    f"size is {new}")
        self._frozen_vocab_size = self.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (a list / tuple / 1-D array, or a text file with one token a line)
        and, in ``"tf_idf"`` mode, its inverse document frequencies."""
        who = self._who()
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError(f"{who}: `idf_weights` must be set if output_mode is 'tf_idf'.")
        elif idf_weights is not None:
            raise ValueError(f"{who}: `idf_weights` should only be set if output_mode is "
                             f"`'tf_idf'`. Received: output_mode={self.output_mode} and "
                             f"idf_weights={idf_weights}")
        if isinstance(vocabulary, (str, os.PathLike)):
            path = os.fspath(vocabulary)
            if not os.path.isfile(path):
                raise ValueError(f"{who}: vocabulary file {path} does not exist.")
            if self.output_mode == "tf_idf":
                raise ValueError(f"{who}: output_mode `'tf_idf'` does not support loading a "
                                 "vocabulary from file.")
            with open(path, encoding=self.encoding) as f:
                lines = f.read().splitlines()
            while lines and lines[-1] == "":
                lines.pop()
            try:
                vocabulary = lines if self._strings else [int(t) for t in lines]
            except ValueError:
                raise ValueError(f"{who}: the vocabulary file {path} must hold one integer a "
                                 "line") from None
        if isinstance(vocabulary, Tensor):
            vocabulary = vocabulary.data
        arr = np.asarray(vocabulary, dtype=object) if isinstance(vocabulary, (list, tuple)) \
            else np.asarray(vocabulary)
        if arr.ndim != 1:
            raise ValueError(f"{who}: the vocabulary must be 1-D, received shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{who}: cannot set an empty vocabulary. Received: "
                             f"vocabulary={vocabulary!r}")
        vocab = [self._token(t) for t in arr.tolist()]
        token_start = self._token_start_index()
        special = [self.mask_token] * self._oov_start_index() + [self.oov_token] * \
            self.num_oov_indices
        found_special = vocab[:token_start] == special
        tokens = vocab[token_start:] if found_special else vocab
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError(f"{who}: the passed vocabulary has at least one repeated term. Please "
                             f"uniquify your dataset. The repeated terms are: {repeated}")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(
                f"{who}: found reserved mask token at unexpected location in `vocabulary`. Note "
                "that passed `vocabulary` does not need to include the OOV and mask tokens. Either "
                "remove all mask and OOV tokens, or include them only at the start of the "
                f"vocabulary in precisely this order: {special}. Received: "
                f"mask_token={self.mask_token!r} at vocabulary index "
                f"{len(vocab) - 1 - vocab[::-1].index(self.mask_token)}")
        if self.oov_token is not None and self.invert and self.oov_token in tokens:
            raise ValueError(
                f"{who}: found reserved OOV token at unexpected location in `vocabulary`. Note "
                "that passed `vocabulary` does not need to include the OOV and mask tokens. Either "
                "remove all mask and OOV tokens, or include them only at the start of the "
                f"vocabulary in precisely this order: {special}. Received: "
                f"oov_token={self.oov_token!r} at vocabulary index "
                f"{len(vocab) - 1 - vocab[::-1].index(self.oov_token)}")
        if self.max_tokens is not None and token_start + len(tokens) > self.max_tokens:
            raise ValueError(f"{who}: attempted to set a vocabulary larger than the maximum vocab "
                             f"size. Received vocabulary size is {token_start + len(tokens)}; "
                             f"`max_tokens` is {self.max_tokens}.")
        idf = None
        if self.output_mode == "tf_idf":
            w = np.asarray(idf_weights.data if isinstance(idf_weights, Tensor) else idf_weights)
            if w.ndim != 1 or w.dtype.kind not in "biuf":
                raise ValueError(f"{who}: TF-IDF data must be a 1-index array of numbers. "
                                 f"Received: idf_weights of shape {w.shape}")
            if len(w) != len(vocab):
                raise ValueError(f"{who}: `idf_weights` must be the same length as vocabulary. "
                                 f"len(idf_weights) is {len(w)}; len(vocabulary) is {len(vocab)}")
            front = 0 if found_special else token_start
            front_value = 0 if found_special else np.average(w)
            back = self.max_tokens - front - len(w) if self.pad_to_max_tokens else 0
            idf = np.pad(w.astype(np.float64), (front, back), "constant",
                         constant_values=(front_value, 0)).astype(backend.floatx())
        self._set_tokens(tokens)
        self._record_vocabulary_size()
        if idf is not None:
            self._idf = idf

    # ------------------------------------------------------------- adapt
    def reset_state(self):
        """Forget the counts gathered by ``update_state``."""
        self._counts = collections.Counter()
        self._doc_counts = collections.Counter()
        self._num_documents = 0

    def update_state(self, data):
        """Count the tokens of one batch (rows are documents for TF-IDF)."""
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer '{self.name}' after setting a static vocabulary "
                             "via `vocabulary` argument or `set_vocabulary()` method.")
        arr = _to_numpy(data, self._who())
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim == 1:
            arr = arr[None]
        keys = self._keys(arr)
        self._counts.update(keys)
        if self.output_mode == "tf_idf":
            width = int(np.prod(arr.shape[1:], dtype=np.int64))
            for r in range(arr.shape[0]):
                self._doc_counts.update(set(keys[r * width:(r + 1) * width]))
            self._num_documents += arr.shape[0]

    def finalize_state(self):
        """Build the vocabulary (and IDF weights) from the counts."""
        if self._has_input_vocabulary or not self._counts:
            self._record_vocabulary_size()
            return
        counts = dict(self._counts)
        if self.mask_token is not None:
            counts.pop(self.mask_token, None)
        if self.oov_token is not None:
            counts.pop(self.oov_token, None)
        tokens = list(counts)
        if self._strings:
            sort_keys = np.array([t.encode(self.encoding) for t in tokens], dtype=object)
            order = sorted(range(len(tokens)), key=lambda i: (counts[tokens[i]], sort_keys[i]),
                           reverse=True)
        else:
            order = sorted(range(len(tokens)), key=lambda i: (counts[tokens[i]], tokens[i]),
                           reverse=True)
        if self.max_tokens:
            order = order[:max(self.max_tokens - self._token_start_index(), 0)]
        tokens = [tokens[i] for i in order]
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            df = np.array([self._doc_counts[t] for t in tokens], dtype=np.float64)
            idf = np.log(1 + self._num_documents / (1 + df)).astype(backend.floatx())
            front = np.mean(idf) if len(idf) else np.float32(np.nan)
            idf = np.concatenate([np.full(self._token_start_index(), front, dtype=idf.dtype), idf])
            if self.pad_to_max_tokens and self.max_tokens is not None:
                idf = np.concatenate([idf, np.zeros(self.max_tokens - len(idf), dtype=idf.dtype)])
            self._idf = idf
        self.reset_state()
        self._record_vocabulary_size()

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary from ``data``: an array or list of tokens (each element of a
        1-D one a document), or an iterable of batches, of which at most ``steps`` are read."""
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer '{self.name}' after setting a static vocabulary "
                             "via `vocabulary` argument or `set_vocabulary()` method.")
        self.reset_state()
        if isinstance(data, (list, tuple, np.ndarray, Tensor)) or hasattr(data, "to_numpy"):
            arr = _to_numpy(data, self._who(), "data")
            if arr.ndim == 1:
                arr = arr[:, None]
            if batch_size is None:
                self.update_state(arr)
            else:
                for b in _batches(arr, type(self).__name__, batch_size, steps):
                    self.update_state(b)
        elif hasattr(data, "__iter__"):
            for b in _batches(data, type(self).__name__, None, steps):
                self.update_state(b)
        else:
            raise TypeError(f"{self._who()}.adapt: expected an array, a list or an iterable of "
                            f"batches, received {type(data).__name__}")
        self.finalize_state()

    # -------------------------------------------------------------- call
    def _oov_buckets(self, keys):
        n = self.num_oov_indices
        if not self._strings and self.oov_method != "farmhash":
            return np.mod(np.asarray(keys, dtype=np.int64), n)
        data = [(k if self._strings else str(k)).encode("utf-8") for k in keys]
        return _hash_buckets(data, n, self.salt)

    def _lookup(self, arr):
        keys = self._keys(arr)
        index, default = self._index, self._default_value
        out = np.fromiter((index.get(k, default) for k in keys), dtype=np.int64, count=len(keys))
        if self.mask_token is not None:
            m = np.fromiter((k == self.mask_token for k in keys), dtype=bool, count=len(keys))
            out[m] = 0 if self.output_mode == "int" else _INT64_MAX
        if self.num_oov_indices == 0:
            bad = out == -1
            if bad.any():
                vals = [keys[i] for i in np.nonzero(bad)[0][:10]]
                raise ValueError(f"{self._who()}: when `num_oov_indices=0` all inputs should be in "
                                 f"vocabulary, found OOV values {vals}, consider setting "
                                 "`num_oov_indices=1`.")
        elif self.num_oov_indices > 1:
            oov = np.nonzero(out == default)[0]
            if oov.size:
                out[oov] = self._oov_buckets([keys[i] for i in oov]) + self._oov_start_index()
        return out.reshape(arr.shape)

    def _invert(self, arr):
        who = self._who()
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{who}: with invert=True the inputs are integer indices, received an "
                            f"array of dtype {arr.dtype}")
        vocab = self.get_vocabulary()
        start = self._token_start_index()
        flat = arr.reshape(-1).astype(np.int64)
        out = []
        for i in flat.tolist():
            if self.mask_token is not None and i == 0:
                out.append(self.mask_token)
            elif start <= i < len(vocab):
                out.append(vocab[i])
            else:
                out.append(self.oov_token)
        if self._strings:
            res = np.empty(len(out), dtype=object)
            res[:] = out
            return res.reshape(arr.shape)
        if any(v is None for v in out):
            raise ValueError(f"{who}: some indices are out of the vocabulary and `oov_token` is "
                             "None, so they have no token to map to")
        return Tensor(np.asarray(out, dtype=np.int64).reshape(arr.shape))

    def call(self, inputs):
        arr = _to_numpy(inputs, self._who())
        if self.invert:
            return self._invert(arr)
        if self.output_mode != "int" and not self.pad_to_max_tokens and \
                self._frozen_vocab_size is None:
            raise RuntimeError(f"{self._who()}: when using `output_mode={self.output_mode}` and "
                               "`pad_to_max_tokens=False`, you must set the layer's vocabulary "
                               "before calling it. Either pass a `vocabulary` argument to the "
                               "layer, or call `adapt` with some sample data.")
        idx = self._lookup(arr)
        if self.output_mode == "int":
            return Tensor(idx)
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_vocab_size
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        out = encode_categorical(idx, mode, depth, backend.floatx())
        if self.output_mode == "tf_idf":
            if self._idf is None:
                raise ValueError(f"{self._who()}: when `output_mode` is `'tf_idf'`, `idf_weights` "
                                 "must be provided (call adapt or set_vocabulary).")
            out = out * self._idf[:depth]
        return Tensor(out)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_vocab_size
        input_shape = tuple(input_shape)
        if self.output_mode == "one_hot":
            if len(input_shape) > 1 and input_shape[-1] == 1:
                return input_shape[:-1] + (depth,)
            return input_shape + (depth,)
        return input_shape[:-1] + (depth,)

    def _output_dtype(self):
        return "int64" if self.output_mode == "int" else backend.floatx()

    def get_config(self):
        cfg = super().get_config()
        vocab = self.input_vocabulary
        if isinstance(vocab, Tensor):
            vocab = vocab.data
        if isinstance(vocab, np.ndarray):
            vocab = vocab.tolist()
        elif vocab is not None:
            vocab = list(vocab)
        if vocab is not None:
            vocab = [self._token(t) for t in vocab]
        idf = self.input_idf_weights
        if isinstance(idf, Tensor):
            idf = idf.data
        if isinstance(idf, np.ndarray):
            idf = idf.tolist()
        if vocab is None and self._tokens:
            # axone has no asset files: the learned vocabulary travels in the config
            if self.output_mode == "tf_idf" and self._idf is not None:
                vocab = self.get_vocabulary(include_special_tokens=True)
                idf = self._idf[:len(vocab)].astype(np.float64).tolist()
            else:
                vocab = list(self._tokens)
        cfg.update({"invert": self.invert, "max_tokens": self.max_tokens,
                    "num_oov_indices": self.num_oov_indices, "oov_token": self.oov_token,
                    "mask_token": self.mask_token, "output_mode": self.output_mode,
                    "sparse": False, "pad_to_max_tokens": self.pad_to_max_tokens,
                    "idf_weights": idf, "vocabulary": vocab,
                    "vocabulary_size": self._frozen_vocab_size, "oov_method": self.oov_method,
                    "salt": self.salt, "has_input_vocabulary": self._has_input_vocabulary})
        return cfg


class IntegerLookup(_IndexLookup):
    """Map integer features to contiguous indices (or multi-hot / count / TF-IDF vectors).

    As ``keras.layers.IntegerLookup`` (which needs TensorFlow; this one matches it without):
    ``oov_token=-1``, ``mask_token=None``, ``num_oov_indices=1`` by default; see
    :class:`_IndexLookup` for the index layout and ``adapt``'s ordering.

    Example:
        >>> layer = IntegerLookup(vocabulary=[12, 36, 1138, 42])
        >>> layer(np.array([[12, 1138, 42], [42, 1000, 36]])).numpy()
        array([[1, 3, 4],
               [4, 0, 2]])
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                 vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False,
                 output_mode="int", sparse=False, pad_to_max_tokens=False, oov_method="floormod",
                 salt=None, name=None, **kwargs):
        if vocabulary_dtype != "int64":
            raise ValueError("IntegerLookup: only `vocabulary_dtype='int64'` is supported at this "
                             f"time. Received: vocabulary_dtype={vocabulary_dtype}")
        self.vocabulary_dtype = "int64"
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                         mask_token=mask_token, oov_token=oov_token, vocabulary=vocabulary,
                         idf_weights=idf_weights, invert=invert, output_mode=output_mode,
                         sparse=sparse, pad_to_max_tokens=pad_to_max_tokens,
                         oov_method=oov_method, salt=salt, name=name, **kwargs)

    def get_config(self):
        cfg = super().get_config()
        cfg["vocabulary_dtype"] = "int64"
        return cfg


class StringLookup(_IndexLookup):
    """Map string features to contiguous indices (or multi-hot / count / TF-IDF vectors).

    As ``keras.layers.StringLookup`` (which needs TensorFlow; this one matches it without):
    ``oov_token="[UNK]"``, ``mask_token=None``, ``num_oov_indices=1`` by default; bytes are
    decoded with ``encoding``.  Strings are looked up eagerly (a model's symbolic inputs are
    numeric); ``invert=True`` returns a NumPy array of ``str`` (Keras's torch backend returns a
    list).

    Example:
        >>> layer = StringLookup(vocabulary=["a", "b", "c", "d"])
        >>> layer(np.array([["a", "c", "d"], ["d", "z", "b"]])).numpy()
        array([[1, 3, 4],
               [4, 0, 2]])
    """

    _strings = True

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]",
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 pad_to_max_tokens=False, sparse=False, encoding="utf-8", name=None, salt=None,
                 **kwargs):
        kwargs.pop("vocabulary_dtype", None)
        oov_method = kwargs.pop("oov_method", "floormod")   # strings are always hashed
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                         mask_token=mask_token, oov_token=oov_token, vocabulary=vocabulary,
                         idf_weights=idf_weights, invert=invert, output_mode=output_mode,
                         sparse=sparse, pad_to_max_tokens=pad_to_max_tokens,
                         oov_method=oov_method, salt=salt, name=name, encoding=encoding,
                         **kwargs)

    def __call__(self, inputs, *args, training=None, **kwargs):
        if _is_symbolic(inputs):
            raise TypeError(
                f"StringLookup {self.name!r} works on Python / NumPy strings, not on a symbolic "
                "Input: look the strings up as a preprocessing step (or in a data pipeline) and "
                "feed the integer indices to the model")
        return super().__call__(inputs, *args, training=training, **kwargs)

    def get_config(self):
        cfg = super().get_config()
        cfg["encoding"] = self.encoding
        return cfg
