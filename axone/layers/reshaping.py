"""Spatial reshaping layers (channels-last): ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D.

All are built on differentiable axone ops (pad, slicing, broadcasting, matmul),
so gradients flow through them:

    padding:      y = x surrounded by zeros;       dL/dx = the inner block of dL/dy
    cropping:     y = x[top:H−bottom, left:W−right];  dL/dx = dL/dy placed back, zeros around
    up-sampling:  nearest repeats each row/column s times, dL/dx sums each s×s block of dL/dy;
                  bilinear / bicubic is y = R_h · x · R_wᵀ with fixed interpolation matrices.
"""
import numpy as np

from .. import ops
from .base import Layer
from .preprocessing import resize

__all__ = ["ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D",
           "UpSampling2D"]


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
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{self._who}: only data_format='channels_last' is supported, "
                             f"received {data_format!r}")
        self.data_format = "channels_last"

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
        return ops.pad(inputs, ((0, 0), self.padding, (0, 0)))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        n = input_shape[1]
        return (input_shape[0], None if n is None else n + sum(self.padding), input_shape[2])

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
        return ops.pad(inputs, ((0, 0),) + self.padding + ((0, 0),))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        sp = [None if n is None else n + sum(p) for n, p in zip(input_shape[1:3], self.padding)]
        return (input_shape[0],) + tuple(sp) + (input_shape[3],)

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

    def _out(self, n, shape):
        if n is None:
            return None
        if sum(self.cropping) >= n:
            raise ValueError(f"{self._who}: cropping {self.cropping} must be smaller than the input "
                             f"length; received input shape {tuple(shape)}")
        return n - sum(self.cropping)

    def call(self, inputs):
        self._check(inputs.shape)
        n = self._out(inputs.shape[1], inputs.shape)
        a = self.cropping[0]
        return ops.get_item(inputs, (slice(None), slice(a, a + n)))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return (input_shape[0], self._out(input_shape[1], input_shape), input_shape[2])

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

    def _out(self, shape):
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
        h, w = self._out(inputs.shape)
        (t, _), (l, _) = self.cropping
        return ops.get_item(inputs, (slice(None), slice(t, t + h), slice(l, l + w)))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return (input_shape[0],) + tuple(self._out(input_shape)) + (input_shape[3],)

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
        if self.interpolation == "nearest":
            return _repeat(inputs, self.size)
        h, w = inputs.shape[1], inputs.shape[2]
        return resize(inputs, h * self.size[0], w * self.size[1], self.interpolation)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        sp = [None if n is None else n * s for n, s in zip(input_shape[1:3], self.size)]
        return (input_shape[0],) + tuple(sp) + (input_shape[3],)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"size": list(self.size), "interpolation": self.interpolation})
        return cfg
