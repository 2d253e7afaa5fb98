"""Pooling layers (channels-last): Max/Average pooling 1D/2D and their global forms."""
import numpy as np

from .. import ops
from ..ops.conv import pool_output_length
from .base import Layer

__all__ = ["MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
           "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
           "GlobalAveragePooling2D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalAvgPool1D",
           "GlobalAvgPool2D"]


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
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{who}: only data_format='channels_last' is supported")
        self.padding, self.data_format = padding, "channels_last"

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
        return f(inputs, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        sp = [pool_output_length(n, p, self.padding, s) for n, p, s in
              zip(input_shape[1:-1], self.pool_size, self.strides)]
        if any(o is not None and o <= 0 for o in sp):
            raise ValueError(f"{type(self).__name__} {self.name!r}: input of shape {tuple(input_shape)} "
                             f"is smaller than pool_size {self.pool_size}")
        return (input_shape[0],) + tuple(sp) + (input_shape[-1],)

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


MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D


class _GlobalPool(Layer):
    rank = 2
    kind = "max"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{type(self).__name__} {self.name!r}: only data_format='channels_last' "
                             f"is supported")
        self.data_format, self.keepdims = "channels_last", bool(keepdims)

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
        axes = tuple(range(1, 1 + self.rank))
        f = ops.max if self.kind == "max" else ops.mean
        return f(inputs, axis=axes, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        if self.keepdims:
            return (input_shape[0],) + (1,) * self.rank + (input_shape[-1],)
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


GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
