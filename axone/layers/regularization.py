"""Regularization layers: the noise layers active only while training (GaussianNoise,
GaussianDropout, AlphaDropout, SpatialDropout1D/2D/3D) and ActivityRegularization."""
import math

import numpy as np

from .. import backend, config, ops, regularizers
from .base import Layer

__all__ = ["GaussianNoise", "GaussianDropout", "AlphaDropout", "SpatialDropout1D",
           "SpatialDropout2D", "SpatialDropout3D", "ActivityRegularization"]


class GaussianNoise(Layer):
    """Adds N(0, stddev²) noise while training; identity at inference."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        if stddev < 0:
            raise ValueError(f"GaussianNoise {self.name!r}: stddev must be non-negative, received {stddev}")
        self.stddev, self.seed = float(stddev), seed

    def call(self, inputs, training=None):
        if not training or self.stddev == 0:
            return inputs
        noise = backend.rng().normal(0.0, self.stddev, inputs.shape).astype(inputs.dtype)
        return inputs + noise

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"stddev": self.stddev, "seed": self.seed})
        return cfg


class GaussianDropout(Layer):
    """Multiplies by N(1, rate/(1 − rate)) noise while training; identity at inference."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"GaussianDropout {self.name!r}: rate must lie in [0, 1), received {rate}")
        self.rate, self.seed = float(rate), seed

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        std = math.sqrt(self.rate / (1.0 - self.rate))
        noise = backend.rng().normal(1.0, std, inputs.shape).astype(inputs.dtype)
        return inputs * noise

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"rate": self.rate, "seed": self.seed})
        return cfg


def _rate(who, rate):
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: rate must be a number, received {rate!r}") from None
    if not 0 <= rate <= 1:
        raise ValueError(f"{who}: rate must be a float in the range [0, 1], received {rate}")
    return rate


class AlphaDropout(Layer):
    """Dropout that keeps SELU's self-normalization (Klambauer et al.), while training:

        kept ~ Bernoulli(1 − rate),  α' = −λα (SELU's saturation value),
        a = ((1 − rate)(1 + rate·α'²))^(−1/2),  b = −a·α'·rate,
        y = a·(x·kept + α'·(1 − kept)) + b,      dL/dx = a·kept·dL/dy.
    """

    _ALPHA = 1.6732632423543772848170429916717
    _SCALE = 1.0507009873554804934193349852946

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _rate(f"AlphaDropout {self.name!r}", rate)
        self.noise_shape, self.seed = noise_shape, seed

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        shape = tuple(inputs.shape) if self.noise_shape is None else tuple(
            n if n is not None else d for n, d in zip(self.noise_shape, inputs.shape))
        kept = (backend.rng().uniform(size=shape) >= self.rate).astype(inputs.dtype)
        alpha_p = -self._ALPHA * self._SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        scale = (a * kept).astype(inputs.dtype)
        shift = (a * alpha_p * (1 - kept) + b).astype(inputs.dtype)
        return inputs * scale + shift

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape})
        return cfg


class _SpatialDropout(Layer):
    """Dropout of whole feature maps: one mask entry per (sample, channel), broadcast over the
    spatial axes (ops.dropout with that noise shape)."""

    rank = 1

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        self.rate = _rate(who, rate)
        fmt = config.standardize_data_format(data_format, who)
        self.data_format, self.seed = fmt, seed

    def _check(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                             f"expected ndim={self.rank + 2}, found ndim={len(shape)}. Full shape "
                             f"received: {tuple(shape)}")

    def build(self, input_shape):
        self._check(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        self._check(inputs.shape)
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            return inputs * np.zeros((), inputs.dtype)
        s = inputs.shape
        if self.data_format == "channels_first":
            noise = (s[0], s[1]) + (1,) * self.rank
        else:
            noise = (s[0],) + (1,) * self.rank + (s[-1],)
        return ops.dropout(inputs, self.rate, noise_shape=noise, training=True)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": self.dtype}
        if self.rank > 1:
            cfg["data_format"] = self.data_format
        return cfg


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of (batch, steps, channels)."""

    rank = 1

    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of (batch, rows, cols, channels)."""

    rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature volumes of (batch, d1, d2, d3, channels)."""

    rank = 3


class ActivityRegularization(Layer):
    """Identity whose output adds l1·Σ|y| + l2·Σy² (divided by the batch size, as every
    activity penalty) to the losses."""

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = float(l1), float(l2)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("activity_regularizer", None)
        cfg.update({"l1": self.l1, "l2": self.l2})
        return cfg


del np
