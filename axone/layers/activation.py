"""Activation layers: ReLU, LeakyReLU, PReLU (learnable slope), ELU, Softmax."""
import numpy as np

from .. import activations, constraints, initializers, ops, regularizers
from .base import Layer

__all__ = ["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"]


class _Elementwise(Layer):
    supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape


class ReLU(_Elementwise):
    """f(x) = max_value if x ≥ max_value; x if threshold ≤ x < max_value; slope·(x − threshold) else."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"ReLU {self.name!r}: max_value must be non-negative, received {max_value}")
        if negative_slope < 0:
            raise ValueError(f"ReLU {self.name!r}: negative_slope must be non-negative, received {negative_slope}")
        self.max_value, self.negative_slope, self.threshold = max_value, float(negative_slope), float(threshold)

    def call(self, inputs):
        return activations.relu(inputs, negative_slope=self.negative_slope,
                                max_value=self.max_value, threshold=self.threshold)

    def _inference_clip(self):
        """(lo, hi) where this layer is min(max(x, lo), hi) (no slope, no threshold), for a
        prediction's fused steps (models/_inference.py); None otherwise."""
        return activations.clip_bounds(activations.relu, negative_slope=self.negative_slope,
                                       max_value=self.max_value, threshold=self.threshold)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"max_value": self.max_value, "negative_slope": self.negative_slope,
                    "threshold": self.threshold})
        return cfg


class LeakyReLU(_Elementwise):
    """f(x) = x if x > 0 else negative_slope·x (Keras 3 default slope 0.3)."""

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        super().__init__(**kwargs)
        if alpha is not None:
            negative_slope = alpha
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"LeakyReLU {self.name!r}: negative_slope must be non-negative, "
                             f"received {negative_slope}")
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return ops.leaky_relu(inputs, self.negative_slope)

    def get_config(self):
        cfg = super().get_config()
        cfg["negative_slope"] = self.negative_slope
        return cfg


class PReLU(_Elementwise):
    """f(x) = max(0, x) + α·min(0, x) with a learned α per input element (``shared_axes`` share it)."""

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is not None and not isinstance(shared_axes, (list, tuple)):
            shared_axes = [shared_axes]
        self.shared_axes = None if shared_axes is None else [int(a) for a in shared_axes]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or []:
            shape[a - 1 if a > 0 else a] = 1
        if any(d is None for d in shape):
            raise ValueError(f"PReLU {self.name!r}: every non-shared input axis needs a known size, "
                             f"received {input_shape}")
        self.alpha = self.add_weight(tuple(shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint, name="alpha")
        self.built = True

    def call(self, inputs):
        return ops.relu(inputs) - self.alpha * ops.relu(-inputs)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"alpha_initializer": initializers.serialize(self.alpha_initializer),
                    "alpha_regularizer": None if self.alpha_regularizer is None else
                    regularizers.serialize(self.alpha_regularizer),
                    "alpha_constraint": constraints.serialize(self.alpha_constraint),
                    "shared_axes": self.shared_axes})
        return cfg


class ELU(_Elementwise):
    """f(x) = x if x > 0 else α(eˣ − 1)."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return ops.elu(inputs, self.alpha)

    def get_config(self):
        cfg = super().get_config()
        cfg["alpha"] = self.alpha
        return cfg


class Softmax(_Elementwise):
    """Softmax along ``axis`` (default −1)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, mask=None):
        return ops.softmax(inputs, axis=self.axis)

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


del np
