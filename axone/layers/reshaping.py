"""Reshaping layers: ZeroPadding1D/2D/3D, Cropping1D/2D/3D, UpSampling1D/2D/3D (channels-last;
the 3-D ones also channels_first, transposed around the same code), Permute, RepeatVector.

All are built on differentiable axone ops (pad, slicing, broadcasting, matmul),
so gradients flow through them:

    padding:      y = x surrounded by zeros;       dL/dx = the inner block of dL/dy
    cropping:     y = x[top:H−bottom, left:W−right];  dL/dx = dL/dy placed back, zeros around
    up-sampling:  nearest repeats each row/column s times, dL/dx sums each s×s block of dL/dy;
                  bilinear / bicubic is y = R_h · x · R_wᵀ with fixed interpolation matrices.
"""
import numpy as np

from .. import config, ops
from .base import Layer, _np_dtype
from .preprocessing import resize

__all__ = ["ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D",
           "UpSampling2D", "ZeroPadding3D", "Cropping3D", "UpSampling3D", "Permute", "RepeatVector"]


def _int_tuple(v, n, name, who, allow_zero=True):
    """Keras's ``standardize_tuple``: an int → n copies; else exactly n ints (≥ 0, or > 0)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (int(v),) * n
    elif isinstance(v, (tuple, list)) and len(v) == n and all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in v):
        v = tuple(int(i) for i in v)
    else:
        raise ValueError(f"{who}: {name} must be an int or a tuple of {n} ints, received {v!r}")
    if any(i < 0 or (i == 0 and not allow_zero) for i in v):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{who}: {name} values must be {kind}, received {v}")
    return v


def _pairs_2d(v, name, who):
    """int p → ((p, p), (p, p)); (a, b) → ((a, a), (b, b)); ((t, b), (l, r)) as given."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        p = _int_tuple(v, 2, name, who)
        return (p, p)
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return (_int_tuple(v[0], 2, f"1st entry of {name}", who),
                _int_tuple(v[1], 2, f"2nd entry of {name}", who))
    raise ValueError(f"{who}: {name} must be an int, a tuple of 2 ints (symmetric height, width) "
                     f"or a tuple of 2 tuples of 2 ints ((top, bottom), (left, right)), "
                     f"received {v!r}")


class _Spatial(Layer):
    rank = 2

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        fmt = config.standardize_data_format(data_format, self._who)
        self.data_format = fmt

    def _in(self, x):
        """The input as channels-last (channels_first moved last)."""
        if self.data_format == "channels_first":
            return ops.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))
        return x

    def _out(self, y):
        if self.data_format == "channels_first":
            return ops.transpose(y, (0, y.ndim - 1) + tuple(range(1, y.ndim - 1)))
        return y

    def _last(self, shape):
        shape = tuple(shape)
        return (shape[0],) + shape[2:] + (shape[1],) if self.data_format == "channels_first" else shape

    def _back(self, shape):
        return (shape[0], shape[-1]) + tuple(shape[1:-1]) if self.data_format == "channels_first" \
            else tuple(shape)

    @property
    def _who(self):
        return f"{type(self).__name__} {self.name!r}"

    def _check(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(f"Input 0 of layer {self.name!r} is incompatible with the layer: expected "
                             f"ndim={self.rank + 2}, found ndim={len(shape)}. Full shape received: "
                             f"{tuple(shape)}")

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def get_config(self):
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        return cfg


def _list(t):
    return [list(p) if isinstance(p, tuple) else p for p in t]


class ZeroPadding1D(_Spatial):
    """Add zeros at the start and end of the steps axis: (batch, steps, channels).

    ``padding``: int p (p each side) or (before, after).
    """
    rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.padding = _int_tuple(padding, 2, "padding", self._who)

    def call(self, inputs):
        self._check(inputs.shape)
        return self._out(ops.pad(self._in(inputs), ((0, 0), self.padding, (0, 0))))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        input_shape = self._last(input_shape)
        n = input_shape[1]
        return self._back((input_shape[0], None if n is None else n + sum(self.padding),
                           input_shape[2]))

    def get_config(self):
        cfg = super().get_config()
        cfg["padding"] = list(self.padding)
        return cfg


class ZeroPadding2D(_Spatial):
    """Add rows and columns of zeros around images: (batch, rows, cols, channels).

    ``padding``: int p, (symmetric_height, symmetric_width) or ((top, bottom), (left, right)).
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.padding = _pairs_2d(padding, "padding", self._who)

    def call(self, inputs):
        self._check(inputs.shape)
        return self._out(ops.pad(self._in(inputs), ((0, 0),) + self.padding + ((0, 0),)))

    def _inference_step(self):
        """What a prediction's array plan runs (models/_inference.py): on a channels-last host
        array of the layer's dtype, the padded copy into a reused workspace array
        (ops/conv.py's ``_pad``, the zeros and the copy ``ops.pad`` makes, without mapping fresh
        pages at each call); ``_infer`` otherwise."""
        if type(self).call is not ZeroPadding2D.call:
            return self._infer
        from ..ops.conv import _pad
        infer, dt = self._infer, _np_dtype(self.dtype)

        def step(x):
            if (type(x) is not np.ndarray or x.ndim != 4 or self.data_format != "channels_last"
                    or (self._autocast and x.dtype != dt)):
                return infer(x)
            return _pad(x, self.padding)
        return step

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        input_shape = self._last(input_shape)
        sp = [None if n is None else n + sum(p) for n, p in zip(input_shape[1:3], self.padding)]
        return self._back((input_shape[0],) + tuple(sp) + (input_shape[3],))

    def get_config(self):
        cfg = super().get_config()
        cfg["padding"] = _list(self.padding)
        return cfg


class Cropping1D(_Spatial):
    """Remove steps at the start and end: ``cropping`` int c or (start, end); default (1, 1)."""
    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _int_tuple(cropping, 2, "cropping", self._who)

    def _length(self, n, shape):
        if n is None:
            return None
        if sum(self.cropping) >= n:
            raise ValueError(f"{self._who}: cropping {self.cropping} must be smaller than the input "
                             f"length; received input shape {tuple(shape)}")
        return n - sum(self.cropping)

    def call(self, inputs):
        self._check(inputs.shape)
        n = self._length(inputs.shape[1], inputs.shape)
        a = self.cropping[0]
        return ops.get_item(inputs, (slice(None), slice(a, a + n)))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return (input_shape[0], self._length(input_shape[1], input_shape), input_shape[2])

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("data_format")
        cfg["cropping"] = list(self.cropping)
        return cfg


class Cropping2D(_Spatial):
    """Remove rows and columns at the borders of images.

    ``cropping``: int c, (symmetric_height, symmetric_width) or ((top, bottom), (left, right)).
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.cropping = _pairs_2d(cropping, "cropping", self._who)

    def _sizes(self, shape):
        out = []
        for n, c in zip(shape[1:3], self.cropping):
            if n is not None and sum(c) >= n:
                raise ValueError(f"{self._who}: cropping {self.cropping} must be smaller than the "
                                 f"spatial dimensions of the input; received input shape "
                                 f"{tuple(shape)}")
            out.append(None if n is None else n - sum(c))
        return out

    def call(self, inputs):
        self._check(inputs.shape)
        x = self._in(inputs)
        h, w = self._sizes(x.shape)
        (t, _), (l, _) = self.cropping
        return self._out(ops.get_item(x, (slice(None), slice(t, t + h), slice(l, l + w))))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        input_shape = self._last(input_shape)
        return self._back((input_shape[0],) + tuple(self._sizes(input_shape)) + (input_shape[3],))

    def get_config(self):
        cfg = super().get_config()
        cfg["cropping"] = _list(self.cropping)
        return cfg


def _repeat(x, sizes):
    """Nearest up-sampling: repeat axis 1 (and 2) ``sizes`` times, by broadcasting then reshaping."""
    shape = x.shape
    expanded, ones, target = [shape[0]], [1], [shape[0]]
    for i, s in enumerate(sizes):
        expanded += [shape[1 + i], 1]
        ones += [1, s]
        target.append(shape[1 + i] * s)
    expanded.append(shape[-1])
    ones.append(1)
    target.append(shape[-1])
    y = ops.multiply(ops.reshape(x, tuple(expanded)), np.ones(tuple(ones), dtype=x.dtype))
    return ops.reshape(y, tuple(target))


class UpSampling1D(_Spatial):
    """Repeat each step ``size`` times: (batch, steps, channels) → (batch, steps·size, channels)."""
    rank = 1

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = _int_tuple(size, 1, "size", self._who, allow_zero=False)[0]

    def call(self, inputs):
        self._check(inputs.shape)
        return _repeat(inputs, (self.size,))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        n = input_shape[1]
        return (input_shape[0], None if n is None else n * self.size, input_shape[2])

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("data_format")
        cfg["size"] = self.size
        return cfg


class UpSampling2D(_Spatial):
    """Enlarge images by ``size`` = (rows, cols) factors.

    ``interpolation``: "nearest" (repeat rows and columns, default), "bilinear" or
    "bicubic" (Keras's image resize, half-pixel centres).
    """

    _INTERPOLATIONS = ("nearest", "bilinear", "bicubic")

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.size = _int_tuple(size, 2, "size", self._who, allow_zero=False)
        interp = interpolation.lower() if isinstance(interpolation, str) else interpolation
        if interp not in self._INTERPOLATIONS:
            raise ValueError(f"{self._who}: interpolation must be one of {self._INTERPOLATIONS}, "
                             f"received {interpolation!r}")
        self.interpolation = interp

    def call(self, inputs):
        self._check(inputs.shape)
        x = self._in(inputs)
        if self.interpolation == "nearest":
            return self._out(_repeat(x, self.size))
        h, w = x.shape[1], x.shape[2]
        return self._out(resize(x, h * self.size[0], w * self.size[1], self.interpolation))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        input_shape = self._last(input_shape)
        sp = [None if n is None else n * s for n, s in zip(input_shape[1:3], self.size)]
        return self._back((input_shape[0],) + tuple(sp) + (input_shape[3],))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"size": list(self.size), "interpolation": self.interpolation})
        return cfg


# ------------------------------------------------------------------ 3-D forms
def _pairs_3d(v, name, who):
    """int p → 3 × (p, p); (a, b, c) → ((a, a), (b, b), (c, c)); three (before, after) pairs."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        p = _int_tuple(v, 2, name, who)
        return (p, p, p)
    if isinstance(v, (tuple, list)) and len(v) == 3:
        if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in v):
            return tuple(_int_tuple(i, 2, name, who) for i in v)
        return tuple(_int_tuple(i, 2, f"entry {j} of {name}", who) for j, i in enumerate(v))
    raise ValueError(f"{who}: {name} must be an int, a tuple of 3 ints or a tuple of 3 tuples of "
                     f"2 ints ((front, back), (top, bottom), (left, right)), received {v!r}")


class _Spatial3D(Layer):
    """3-D spatial layers: channels_last, or channels_first moved to channels-last around the
    same ops."""

    rank = 3

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        fmt = config.standardize_data_format(data_format, self._who)
        self.data_format = fmt

    _who = _Spatial._who
    _check = _Spatial._check

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def _last(self, shape):
        shape = tuple(shape)
        return (shape[0],) + shape[2:] + (shape[1],) if self.data_format == "channels_first" else shape

    def _back(self, shape):
        return (shape[0], shape[-1]) + tuple(shape[1:-1]) if self.data_format == "channels_first" \
            else tuple(shape)

    def call(self, inputs):
        self._check(inputs.shape)
        cf = self.data_format == "channels_first"
        x = ops.transpose(inputs, (0, 2, 3, 4, 1)) if cf else inputs
        y = self._apply(x)
        return ops.transpose(y, (0, 4, 1, 2, 3)) if cf else y

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        shape = self._last(input_shape)
        return self._back((shape[0],) + tuple(self._sizes(shape)) + (shape[-1],))

    def get_config(self):
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        return cfg


class ZeroPadding3D(_Spatial3D):
    """Zeros around volumes: ``padding`` int, (d, h, w) symmetric amounts, or three
    (before, after) pairs."""

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.padding = _pairs_3d(padding, "padding", self._who)

    def _apply(self, x):
        return ops.pad(x, ((0, 0),) + self.padding + ((0, 0),))

    def _sizes(self, shape):
        return [None if n is None else n + sum(p) for n, p in zip(shape[1:4], self.padding)]

    def get_config(self):
        cfg = super().get_config()
        cfg["padding"] = _list(self.padding)
        return cfg


class Cropping3D(_Spatial3D):
    """Remove (before, after) entries along each of the three spatial axes."""

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.cropping = _pairs_3d(cropping, "cropping", self._who)

    def _sizes(self, shape):
        out = []
        for n, c in zip(shape[1:4], self.cropping):
            if n is not None and sum(c) >= n:
                raise ValueError(f"{self._who}: cropping {self.cropping} must be smaller than the "
                                 f"spatial dimensions of the input; received input shape "
                                 f"{tuple(self._back(shape))}")
            out.append(None if n is None else n - sum(c))
        return out

    def _apply(self, x):
        sizes = self._sizes(tuple(x.shape))
        return ops.get_item(x, (slice(None),) + tuple(slice(c[0], c[0] + n) for c, n in
                                                       zip(self.cropping, sizes)))

    def get_config(self):
        cfg = super().get_config()
        cfg["cropping"] = _list(self.cropping)
        return cfg


class UpSampling3D(_Spatial3D):
    """Repeat each entry ``size`` = (d, h, w) times along the spatial axes (nearest)."""

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.size = _int_tuple(size, 3, "size", self._who, allow_zero=False)

    def _apply(self, x):
        return _repeat(x, self.size)

    def _sizes(self, shape):
        return [None if n is None else n * s for n, s in zip(shape[1:4], self.size)]

    def get_config(self):
        cfg = super().get_config()
        cfg["size"] = list(self.size)
        return cfg


# ------------------------------------------------------------ Permute, RepeatVector
class Permute(Layer):
    """Permute the non-batch axes: ``dims`` a permutation of 1 … rank − 1 (1-indexed, as Keras);
    y = transpose(x, (0,) + dims), whose gradient is the inverse transpose."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            dims = tuple(int(d) for d in dims)
        except TypeError:
            raise TypeError(f"Permute {self.name!r}: dims must be a tuple of ints, received "
                            f"{dims!r}") from None
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute {self.name!r}: invalid permutation argument dims={dims}; "
                             f"it must be a permutation of 1 … {len(dims)} (the batch axis 0 is "
                             f"not permuted)")
        self.dims = dims

    def _check(self, shape):
        if len(shape) != len(self.dims) + 1:
            raise ValueError(f"Permute {self.name!r}: dims {self.dims} need inputs of rank "
                             f"{len(self.dims) + 1}, received shape {tuple(shape)}")

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def call(self, inputs):
        self._check(inputs.shape)
        return ops.transpose(inputs, (0,) + self.dims)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def get_config(self):
        cfg = super().get_config()
        cfg["dims"] = self.dims
        return cfg


class RepeatVector(Layer):
    """(batch, features) → (batch, n, features), the input repeated n times; dL/dx sums over n."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"RepeatVector {self.name!r}: expected an integer value for n, "
                            f"received {n!r}")
        if n < 0:
            raise ValueError(f"RepeatVector {self.name!r}: n must be non-negative, received {n}")
        self.n = int(n)

    def _check(self, shape):
        if len(shape) != 2:
            raise ValueError(f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                             f"expected ndim=2, found ndim={len(shape)}. Full shape received: "
                             f"{tuple(shape)}")

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def call(self, inputs):
        self._check(inputs.shape)
        ones = np.ones((1, self.n, 1), dtype=inputs.dtype)
        return ops.multiply(ops.expand_dims(inputs, 1), ones)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        cfg = super().get_config()
        cfg["n"] = self.n
        return cfg
