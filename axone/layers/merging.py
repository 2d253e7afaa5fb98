"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot."""
import functools

import numpy as np

from .. import ops
from .base import Layer

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "Dot",
           "dot"]


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


def _batch_dot(x, y, axes):
    """Per-sample contraction of axis axes[0] of x with axis axes[1] of y (axis 0 the batch):
    x → (b, P, k) with the axis moved last, y → (b, k, Q) with it moved first, one batched
    product, then (b, x's other axes…, y's other axes…), at least (b, 1)."""
    a0, a1 = axes
    xr = [i for i in range(1, x.ndim) if i != a0]
    yr = [i for i in range(1, y.ndim) if i != a1]
    b, k = x.shape[0], x.shape[a0]
    xs = tuple(x.shape[i] for i in xr)
    ys = tuple(y.shape[i] for i in yr)
    xm = ops.reshape(ops.transpose(x, [0] + xr + [a0]), (b, int(np.prod(xs, dtype=int)), k))
    ym = ops.reshape(ops.transpose(y, [0, a1] + yr), (b, k, int(np.prod(ys, dtype=int))))
    out = xs + ys
    return ops.reshape(ops.matmul(xm, ym), (b,) + (out if out else (1,)))


class Dot(_Merge):
    """Dot product of two inputs along ``axes`` (an int for both, or one per input; the batch
    axis 0 is not contracted); ``normalize=True`` L2-normalizes both along those axes first, so
    the result is the cosine similarity."""

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        who = f"Dot {self.name!r}"
        if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
            axes = int(axes)
        elif isinstance(axes, (list, tuple)) and len(axes) == 2 and all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
            axes = tuple(int(a) for a in axes)
        else:
            raise TypeError(f"{who}: axes must be an int or a tuple of 2 ints, received {axes!r}")
        self.axes, self.normalize = axes, bool(normalize)

    def _axes(self, shapes):
        ax = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        out = []
        for a, s in zip(ax, shapes):
            r = a % len(s) if a < 0 else a
            if not 1 <= r < len(s):
                raise ValueError(f"Dot {self.name!r}: axes {self.axes} out of range for inputs of "
                                 f"shapes {[tuple(t) for t in shapes]} (axis 0, the batch, cannot "
                                 f"be contracted)")
            out.append(r)
        return out

    def _check(self, shapes):
        if not isinstance(shapes, (list, tuple)) or len(shapes) != 2 or \
                not all(isinstance(s, (list, tuple)) for s in shapes):
            raise ValueError(f"Dot {self.name!r}: a Dot layer should be called on a list of 2 "
                             f"inputs, received {shapes!r}")
        for s in shapes:
            if len(s) < 2:
                raise ValueError(f"Dot {self.name!r}: inputs must have rank ≥ 2, received shapes "
                                 f"{[tuple(t) for t in shapes]}")
        a0, a1 = self._axes(shapes)
        d0, d1 = shapes[0][a0], shapes[1][a1]
        if d0 is not None and d1 is not None and d0 != d1:
            raise ValueError(f"Dot {self.name!r}: incompatible input shapes: axis {a0} of "
                             f"{tuple(shapes[0])} has {d0} entries, axis {a1} of "
                             f"{tuple(shapes[1])} has {d1}")
        b0, b1 = shapes[0][0], shapes[1][0]
        if b0 is not None and b1 is not None and b0 != b1:
            raise ValueError(f"Dot {self.name!r}: the batch sizes differ: {tuple(shapes[0])} and "
                             f"{tuple(shapes[1])}")

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        a0, a1 = self._axes(input_shape)
        s0 = [d for i, d in enumerate(input_shape[0]) if i != a0]
        s1 = [d for i, d in enumerate(input_shape[1]) if i not in (0, a1)]
        out = s0 + s1
        return tuple(out + [1] if len(out) == 1 else out)

    def call(self, inputs):
        self._check([tuple(t.shape) for t in inputs])
        x, y = inputs
        a0, a1 = self._axes([x.shape, y.shape])
        if self.normalize:
            x = ops.normalize(x, axis=a0)
            y = ops.normalize(y, axis=a1)
        return _batch_dot(x, y, (a0, a1))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"axes": self.axes, "normalize": self.normalize})
        return cfg


def dot(inputs, axes=-1, **kwargs):
    return Dot(axes=axes, **kwargs)(inputs)
