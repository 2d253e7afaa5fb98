"""Noise layers active only while training: GaussianNoise, GaussianDropout."""
import math

import numpy as np

from .. import backend, ops
from .base import Layer

__all__ = ["GaussianNoise", "GaussianDropout"]


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


del np
