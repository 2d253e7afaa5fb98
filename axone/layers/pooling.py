"""Pooling layers: Max/Average pooling 1D/2D/3D, their global forms and adaptive pooling
1D/2D/3D.  The ops are channels-last; ``data_format="channels_first"`` transposes around them."""
import numpy as np

from .. import ops
from ..autograd.function import _new
from ..ops.conv import Pool as _PoolNode, _pool_args
from ..config import standardize_data_format
from ..ops.conv import (adaptive_average_pool, adaptive_max_pool, pool_output_length,
                        to_channels_first, to_channels_last)
from .base import Layer

__all__ = ["MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
           "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
           "GlobalAveragePooling2D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalAvgPool1D",
           "GlobalAvgPool2D", "MaxPooling3D", "AveragePooling3D", "MaxPool3D", "AvgPool3D",
           "GlobalMaxPooling3D", "GlobalAveragePooling3D", "GlobalMaxPool3D", "GlobalAvgPool3D",
           "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
           "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D"]


def _last(shape, fmt):
    shape = tuple(shape)
    return (shape[0],) + shape[2:] + (shape[1],) if fmt == "channels_first" else shape


def _back(shape, fmt):
    shape = tuple(shape)
    return (shape[0], shape[-1]) + shape[1:-1] if fmt == "channels_first" else shape


def _ntuple(v, n, name, who):
    if isinstance(v, (int, np.integer)):
        v = (int(v),) * n
    v = tuple(int(i) for i in v)
    if len(v) != n or any(i <= 0 for i in v):
        raise ValueError(f"{who}: {name} must be a positive int or a tuple of {n} positive ints, "
                         f"received {v}")
    return v


class _Pool(Layer):
    rank = 2
    kind = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        self.pool_size = _ntuple(pool_size, self.rank, "pool_size", who)
        self.strides = self.pool_size if strides is None else _ntuple(strides, self.rank, "strides", who)
        padding = str(padding).lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same', received {padding!r}")
        self.padding, self.data_format = padding, standardize_data_format(data_format, who)

    def _check(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(f"Input 0 of layer {self.name!r} is incompatible with the layer: expected "
                             f"ndim={self.rank + 2}, found ndim={len(shape)}. Full shape received: "
                             f"{tuple(shape)}")

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(tuple(inputs.shape))   # rank and size errors name the layer
        f = ops.max_pool if self.kind == "max" else ops.average_pool
        cf = self.data_format == "channels_first"
        y = f(to_channels_last(inputs) if cf else inputs, self.pool_size, self.strides, self.padding)
        return to_channels_first(y) if cf else y

    def _inference_step(self):
        """What a prediction's array plan runs for this layer: for the channels-last layer, its
        Pool node's forward on the arrays, with the arguments ``ops.max_pool`` /
        ``ops.average_pool`` normalise for an input shape the layer's own call has checked once
        (the first call of a shape runs ``call``); ``_infer`` otherwise."""
        if type(self).call is not _Pool.call or self.data_format != "channels_last":
            return self._infer
        infer, kind, seen = self._infer, self.kind, {}
        who = "max_pool" if kind == "max" else "average_pool"

        def step(x):
            if type(x) is not np.ndarray:
                return infer(x)
            norm = seen.get(x.shape)
            if norm is None:
                y = infer(x)                   # the layer's own checks, for this shape once
                if len(seen) >= 64:
                    seen.clear()
                seen[x.shape] = _pool_args(kind, x.shape, self.pool_size,
                                           self.strides, self.padding, who)
                return y
            fn = _new(_PoolNode)
            fn.kind = kind
            fn.pool, fn.strides, fn.pads, fn.blocks = norm
            fn.needs = (False,)
            return fn.forward(x)
        return step

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        input_shape = _last(input_shape, self.data_format)
        sp = [pool_output_length(n, p, self.padding, s) for n, p, s in
              zip(input_shape[1:-1], self.pool_size, self.strides)]
        if any(o is not None and o <= 0 for o in sp):
            raise ValueError(f"{type(self).__name__} {self.name!r}: input of shape {tuple(input_shape)} "
                             f"is smaller than pool_size {self.pool_size}")
        return _back((input_shape[0],) + tuple(sp) + (input_shape[-1],), self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding,
                    "data_format": self.data_format})
        return cfg


class MaxPooling1D(_Pool):
    """Max over windows of ``pool_size`` steps: (batch, steps, channels)."""
    rank, kind = 1, "max"


class MaxPooling2D(_Pool):
    """Max over pool_size windows: valid ⌊(H − p)/s⌋ + 1, same ⌊(H − 1)/s⌋ + 1 (004)."""
    rank, kind = 2, "max"


class AveragePooling1D(_Pool):
    rank, kind = 1, "avg"


class AveragePooling2D(_Pool):
    """Mean over pool_size windows ("same" averages only the unpadded entries, as Keras)."""
    rank, kind = 2, "avg"


class MaxPooling3D(_Pool):
    """Max over pool_size windows of (batch, depth, height, width, channels)."""
    rank, kind = 3, "max"


class AveragePooling3D(_Pool):
    """Mean over pool_size windows of (batch, depth, height, width, channels)."""
    rank, kind = 3, "avg"


MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D
MaxPool3D, AvgPool3D = MaxPooling3D, AveragePooling3D


class _GlobalPool(Layer):
    rank = 2
    kind = "max"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format,
                                                   f"{type(self).__name__} {self.name!r}")
        self.keepdims = bool(keepdims)

    def _check(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(f"Input 0 of layer {self.name!r} is incompatible with the layer: expected "
                             f"ndim={self.rank + 2}, found ndim={len(shape)}. Full shape received: "
                             f"{tuple(shape)}")

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def call(self, inputs):
        self._check(inputs.shape)
        start = 2 if self.data_format == "channels_first" else 1
        axes = tuple(range(start, start + self.rank))
        f = ops.max if self.kind == "max" else ops.mean
        return f(inputs, axis=axes, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        input_shape = _last(input_shape, self.data_format)
        if self.keepdims:
            return _back((input_shape[0],) + (1,) * self.rank + (input_shape[-1],), self.data_format)
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return cfg


class GlobalMaxPooling1D(_GlobalPool):
    rank, kind = 1, "max"


class GlobalMaxPooling2D(_GlobalPool):
    rank, kind = 2, "max"


class GlobalAveragePooling1D(_GlobalPool):
    rank, kind = 1, "avg"


class GlobalAveragePooling2D(_GlobalPool):
    rank, kind = 2, "avg"


class GlobalMaxPooling3D(_GlobalPool):
    rank, kind = 3, "max"


class GlobalAveragePooling3D(_GlobalPool):
    rank, kind = 3, "avg"


GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool3D, GlobalAvgPool3D = GlobalMaxPooling3D, GlobalAveragePooling3D


class _AdaptivePool(Layer):
    """Pooling to a fixed output size: PyTorch's bins [⌊iL/o⌋, ⌈(i + 1)L/o⌉) along each spatial
    axis (ops.adaptive_average_pool / adaptive_max_pool)."""

    rank = 2
    kind = "avg"

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        n = self.rank
        if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
            size = (int(output_size),) * n
        elif isinstance(output_size, (tuple, list)) and len(output_size) == n and all(
                isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in output_size):
            size = tuple(int(i) for i in output_size)
        else:
            raise TypeError(f"{who}: output_size must be an int or a tuple of {n} ints, received "
                            f"{output_size!r}")
        if any(i <= 0 for i in size):
            raise ValueError(f"{who}: output_size must be positive, received {output_size!r}")
        self.output_size = size
        self.data_format = standardize_data_format(data_format, who)

    def _check(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(f"Input 0 of layer {self.name!r} is incompatible with the layer: expected "
                             f"ndim={self.rank + 2}, found ndim={len(shape)}. Full shape received: "
                             f"{tuple(shape)}")

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def call(self, inputs):
        self._check(inputs.shape)
        f = adaptive_average_pool if self.kind == "avg" else adaptive_max_pool
        return f(inputs, self.output_size, self.data_format)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        input_shape = _last(input_shape, self.data_format)
        return _back((input_shape[0],) + self.output_size + (input_shape[-1],), self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"output_size": self.output_size, "data_format": self.data_format})
        return cfg


class AdaptiveAveragePooling1D(_AdaptivePool):
    rank, kind = 1, "avg"


class AdaptiveAveragePooling2D(_AdaptivePool):
    rank, kind = 2, "avg"


class AdaptiveAveragePooling3D(_AdaptivePool):
    rank, kind = 3, "avg"


class AdaptiveMaxPooling1D(_AdaptivePool):
    rank, kind = 1, "max"


class AdaptiveMaxPooling2D(_AdaptivePool):
    rank, kind = 2, "max"


class AdaptiveMaxPooling3D(_AdaptivePool):
    rank, kind = 3, "max"
