"""Identity: the layer that returns its input unchanged (keras.layers.Identity)."""
from .base import Layer

__all__ = ["Identity"]


class Identity(Layer):
    """y = x (any structure of tensors); the gradient passes through unchanged."""

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape
