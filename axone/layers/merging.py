"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate."""
import functools

from .. import ops
from .base import Layer

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate"]


def _broadcast_shape(a, b, who):
    a, b = tuple(a), tuple(b)
    if len(a) < len(b):
        a, b = b, a
    b = (1,) * (len(a) - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x is None or y is None:
            out.append(None if (x in (None, 1) and y in (None, 1)) else (x if y in (None, 1) else y))
        elif x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError(f"{who}: inputs must have compatible shapes, received {a} and {b}")
    return tuple(out)


class _Merge(Layer):
    _min_inputs = 2

    def _check(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not shapes or not isinstance(shapes[0], (list, tuple)):
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected a list of at least "
                             f"{self._min_inputs} inputs, received {shapes!r}")
        if len(shapes) < self._min_inputs:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected at least "
                             f"{self._min_inputs} inputs, received {len(shapes)}")

    def build(self, input_shape):
        self._check(input_shape)
        self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return functools.reduce(lambda a, b: _broadcast_shape(a, b, f"{type(self).__name__} {self.name!r}"),
                                [tuple(s) for s in input_shape])

    def call(self, inputs):
        return functools.reduce(self._merge, inputs)


class Add(_Merge):
    """Elementwise sum of a list of inputs."""

    def _merge(self, a, b):
        return ops.add(a, b)


class Subtract(_Merge):
    """x1 − x2 of exactly two inputs."""

    def _check(self, shapes):
        super()._check(shapes)
        if len(shapes) != 2:
            raise ValueError(f"Subtract {self.name!r}: expected exactly 2 inputs, received {len(shapes)}")

    def _merge(self, a, b):
        return ops.subtract(a, b)


class Multiply(_Merge):
    def _merge(self, a, b):
        return ops.multiply(a, b)


class Maximum(_Merge):
    def _merge(self, a, b):
        return ops.maximum(a, b)


class Minimum(_Merge):
    def _merge(self, a, b):
        return ops.minimum(a, b)


class Average(_Merge):
    def call(self, inputs):
        return functools.reduce(ops.add, inputs) / len(inputs)


class Concatenate(_Merge):
    """Concatenates a list of inputs along ``axis`` (default −1)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        shapes = [tuple(s) for s in input_shape]
        rank = len(shapes[0])
        ax = self.axis % rank
        out = list(shapes[0])
        for s in shapes[1:]:
            if len(s) != rank or any(a is not None and b is not None and a != b
                                     for i, (a, b) in enumerate(zip(s, shapes[0])) if i != ax):
                raise ValueError(
                    f"Concatenate {self.name!r}: inputs must match in every axis except the "
                    f"concatenation axis {self.axis}, received shapes {shapes}")
            out[ax] = None if out[ax] is None or s[ax] is None else out[ax] + s[ax]
        return tuple(out)

    def call(self, inputs):
        return ops.concatenate(list(inputs), axis=self.axis)

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)
