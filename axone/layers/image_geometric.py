"""Geometric and local image augmentation layers (Keras 3): RandomShear, RandomPerspective,
RandomElasticTransform, RandomGaussianBlur and RandomErasing.

Each is a thin layer over :mod:`axone.ops.image`: it draws the transformation of each image
of the batch, then calls the op.  As for the other ``Random*`` layers, they apply only while
training (``training=False`` is the identity, a direct call augments, as Keras's do), inputs
are one image (rank 3) or a batch (rank 4) in ``data_format`` ("channels_last" or
"channels_first"), and every draw comes from :func:`axone.backend.rng` or from the layer's
own generator when it is given ``seed=``.  Integer images are augmented in floatx.

Random draws per batch of N images, in this order (Keras's):

- RandomShear: a sign s ∈ {−1, 1}, then y then x shear factors, each (N, 1); the map sends
  output pixel (x, y) to the input point (x + s·shear_x·y, y + s·shear_y·x).
- RandomPerspective, RandomElasticTransform, RandomGaussianBlur, RandomErasing: "apply to
  this image" is threshold u < p, u ~ U(0, 1), p ~ U(factor) (N each).
"""
import numbers

import numpy as np

from .. import backend, config
from ..autograd.tensor import Tensor
from ..ops import image as image_ops
from ..ops import math as M
from .preprocessing import _RandomImageLayer

__all__ = ["RandomShear", "RandomPerspective", "RandomElasticTransform", "RandomGaussianBlur",
           "RandomErasing"]

_INTERPOLATIONS = ("nearest", "bilinear")


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class _Augmentation(_RandomImageLayer):
    """Base: a data_format of either kind, ints computed in floatx, the factor rules of Keras."""

    _FACTOR_BOUNDS = (0.0, 1.0)

    def __init__(self, seed=None, data_format=None, bounding_box_format=None, **kwargs):
        # the base's own format rule is channels-last only; this family takes either (below)
        super().__init__(seed=seed, data_format="channels_last", **kwargs)
        if bounding_box_format is not None:
            raise NotImplementedError(f"{self._who}: bounding_box_format={bounding_box_format!r} "
                                      f"is not supported (images only, no bounding boxes)")
        self.data_format = config.standardize_data_format(data_format, self._who)
        last = self.data_format == "channels_last"
        self._h_axis, self._w_axis, self._c_axis = (1, 2, 3) if last else (2, 3, 1)

    def _bounded(self, factor, name):
        """Keras's rule for a (0, 1)-bounded factor: f → (0, f); a pair → sorted."""
        lo, hi = self._FACTOR_BOUNDS
        msg = (f"{self._who}: the `{name}` argument should be a number (or a list of two "
               f"numbers) in the range [{lo:g}, {hi:g}], received {name}={factor!r}")
        if isinstance(factor, (tuple, list)):
            if len(factor) != 2 or not all(_is_number(v) for v in factor):
                raise ValueError(msg)
            if factor[0] > hi or factor[1] < lo:
                raise ValueError(msg)
            a, b = sorted(factor)
            return (a, b)
        if not _is_number(factor) or factor < lo or factor > hi:
            raise ValueError(msg)
        f = abs(factor)
        return (max(-f, lo), f)

    def _value_range(self, value_range):
        if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
                or not all(_is_number(v) for v in value_range) or value_range[0] > value_range[1]):
            raise ValueError(f"{self._who}: value_range must be a pair of numbers (low, high), "
                             f"received {value_range!r}")
        return tuple(value_range)

    def _floating(self, x):
        return x if x.dtype.kind == "f" else M.cast(x, backend.floatx())

    def _applied(self, rng, n):
        p = rng.uniform(self.factor[0], self.factor[1], size=n)
        u = rng.uniform(0.0, 1.0, size=n)
        return u < p

    def _select(self, apply, new, old):
        if apply.all():
            return new
        if not apply.any():
            return old
        return M.where(apply[:, None, None, None], new, old)

    def _clip(self, y):
        return M.clip(y, float(self.value_range[0]), float(self.value_range[1]))


def _check_choice(who, name, value, choices):
    if value not in choices:
        raise NotImplementedError(f"{who}: unknown `{name}` {value!r}; expected one of "
                                  f"{tuple(choices)}")


class RandomShear(_Augmentation):
    """Shear each image along x and/or y by a random factor while training.

    ``x_factor`` / ``y_factor``: f → shear ∈ [−f, f], f in [0, 1]; (lo, hi) → [lo, hi],
    values in [−1, 1] (so that the (−f, f) of a saved config loads again).
    The sign of both shears flips with probability 1/2 per image.  The map fixes the origin
    (the top-left corner): output (x, y) shows the input at (x + sx·y, y + sy·x).
    """

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.x_factor = self._shear_factor(x_factor, "x_factor")
        self.y_factor = self._shear_factor(y_factor, "y_factor")
        _check_choice(self._who, "fill_mode", fill_mode, ("reflect", "wrap", "constant", "nearest"))
        _check_choice(self._who, "interpolation", interpolation, _INTERPOLATIONS)
        if not _is_number(fill_value):
            raise ValueError(f"{self._who}: fill_value must be a number, received {fill_value!r}")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, fill_value

    def _shear_factor(self, factor, name):
        msg = (f"{self._who}: the `{name}` argument should be a number (or a list of two "
               f"numbers) in the range [0, 1.0], received {name}={factor!r}")
        if isinstance(factor, (tuple, list)):
            # a pair may hold the negative lower end that a number's config has ((-f, f))
            if len(factor) != 2 or not all(_is_number(v) and -1.0 <= v <= 1.0 for v in factor):
                raise ValueError(msg)
            a, b = sorted(factor)
            return (a, b)
        if not _is_number(factor) or not 0.0 <= factor <= 1.0:
            raise ValueError(msg)
        f = abs(factor)
        return (-f, f)

    def _matrices(self, rng, n):
        sign = np.where(rng.uniform(0.0, 1.0, size=(n, 1)) > 0.5, -1.0, 1.0)
        sy = rng.uniform(self.y_factor[0], self.y_factor[1], size=(n, 1))
        sx = rng.uniform(self.x_factor[0], self.x_factor[1], size=(n, 1))
        s = np.concatenate([sx, sy], axis=1) * sign
        o, z = np.ones(n), np.zeros(n)
        return np.stack([o, s[:, 0], z, s[:, 1], o, z, z, z], axis=1)

    def _augment(self, x):
        x = self._floating(x)
        m = self._matrices(self._rng(), x.shape[0])
        return image_ops.affine_transform(x, m, self.interpolation, self.fill_mode,
                                          self.fill_value, self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"x_factor": self.x_factor, "y_factor": self.y_factor,
                    "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                    "fill_value": self.fill_value})
        return cfg


class RandomPerspective(_Augmentation):
    """Apply a random perspective warp to each image while training.

    ``factor``: the probability range of warping an image (f → (0, f)), in [0, 1].
    ``scale``: in [0, 1]; each corner (x, y) of the image moves to (x, y)·(1 + d),
    d ~ U(−scale/2, scale/2) per coordinate; the output at the moved corners shows the
    original corners (``ops.image.perspective_transform``), outside points ``fill_value``.
    """

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_value=0.0,
                 seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = self._bounded(factor, "factor")
        if not _is_number(scale) or scale < 0.0 or scale > 1.0:
            raise ValueError(f"{self._who}: the `scale` argument should be a number in the range "
                             f"[0, 1], received scale={scale!r}")
        _check_choice(self._who, "interpolation", interpolation, _INTERPOLATIONS)
        if not _is_number(fill_value):
            raise ValueError(f"{self._who}: fill_value must be a number, received {fill_value!r}")
        self.scale, self.interpolation, self.fill_value = scale, interpolation, fill_value

    def _points(self, rng, n, h, w):
        apply = self._applied(rng, n)
        d = rng.uniform(-0.5 * self.scale, 0.5 * self.scale, size=(n, 4, 2))
        start = np.array([[0.0, 0.0], [w - 1, 0.0], [0.0, h - 1], [w - 1, h - 1]])
        start = np.repeat(start[None], n, axis=0)
        return apply, start, start + start * d

    def _augment(self, x):
        x = self._floating(x)
        n, h, w = x.shape[0], x.shape[self._h_axis], x.shape[self._w_axis]
        apply, start, end = self._points(self._rng(), n, h, w)
        y = image_ops.perspective_transform(x, start, end, self.interpolation, self.fill_value,
                                            self.data_format)
        return self._select(apply, y, x)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": self.factor, "scale": self.scale,
                    "interpolation": self.interpolation, "fill_value": self.fill_value})
        return cfg


class RandomElasticTransform(_Augmentation):
    """Deform each image by a random smooth displacement field while training, then clip to
    ``value_range``.

    ``factor``: the probability range of transforming an image (f → (0, f)), in [0, 1].
    ``scale``: the range of the distortion d (one draw per batch), in [0, 1]: the field has
    α = 0.1·d·max(H, W) and σ = 0.05·d·min(H, W) (``ops.image.elastic_transform``).
    A factor or scale whose upper end is 0 leaves the images as they are (not clipped).
    """

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = self._bounded(factor, "factor")
        self.scale = self._bounded(scale, "scale")
        _check_choice(self._who, "interpolation", interpolation, _INTERPOLATIONS)
        _check_choice(self._who, "fill_mode", fill_mode,
                      ("constant", "nearest", "wrap", "mirror", "reflect"))
        if not _is_number(fill_value):
            raise ValueError(f"{self._who}: fill_value must be a number, received {fill_value!r}")
        self.interpolation, self.fill_mode, self.fill_value = interpolation, fill_mode, fill_value
        self.value_range = self._value_range(value_range)

    def _augment(self, x):
        if self.scale[1] == 0 or self.factor[1] == 0:
            return x
        x = self._floating(x)
        rng = self._rng()
        n, h, w = x.shape[0], x.shape[self._h_axis], x.shape[self._w_axis]
        apply = self._applied(rng, n)
        d = float(rng.uniform(self.scale[0], self.scale[1]))
        alpha, sigma = max(h, w) * 0.1 * d, min(h, w) * 0.05 * d
        if sigma <= 0:
            return self._clip(x)
        y = image_ops.elastic_transform(x, alpha, sigma, self.interpolation, self.fill_mode,
                                        self.fill_value, seed=rng, data_format=self.data_format)
        return self._clip(self._select(apply, y, x))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": self.factor, "scale": self.scale,
                    "interpolation": self.interpolation, "fill_mode": self.fill_mode,
                    "fill_value": self.fill_value, "value_range": self.value_range})
        return cfg


class RandomGaussianBlur(_Augmentation):
    """Blur images with a random Gaussian while training, then clip to ``value_range``.

    ``factor``: the probability range of blurring an image (f → (0, f)), in [0, 1].
    ``kernel_size``: an odd integer or a pair of odd integers.
    ``sigma``: the range of the standard deviations (f → (0, f)), in [0, 1]; two are drawn
    per batch (+1e−6), for the width and the height (``ops.image.gaussian_blur``).
    """

    def __init__(self, factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255),
                 data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = self._bounded(factor, "factor")
        self.kernel_size = self._kernel_size(kernel_size)
        self.sigma = self._bounded(sigma, "sigma")
        self.value_range = self._value_range(value_range)

    def _kernel_size(self, k):
        def odd(v):
            return (isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)
                    and v > 0 and v % 2 == 1)
        if isinstance(k, (tuple, list)):
            if len(k) != 2 or not all(odd(v) for v in k):
                raise ValueError(f"{self._who}: kernel_size must be an odd integer or a pair of "
                                 f"odd integers, received kernel_size={k!r}")
            return (int(k[0]), int(k[1]))
        if not odd(k):
            raise ValueError(f"{self._who}: kernel_size must be an odd number, received "
                             f"kernel_size={k!r}")
        return (int(k), int(k))

    def _augment(self, x):
        x = self._floating(x)
        rng = self._rng()
        apply = self._applied(rng, x.shape[0])
        sigma = rng.uniform(self.sigma[0], self.sigma[1], size=2) + 1e-6
        y = image_ops.gaussian_blur(x, self.kernel_size, tuple(sigma.tolist()), self.data_format)
        return self._clip(self._select(apply, y, x))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": self.factor, "kernel_size": self.kernel_size, "sigma": self.sigma,
                    "value_range": self.value_range})
        return cfg


class RandomErasing(_Augmentation):
    """Erase a random rectangle of each image while training.

    ``factor``: the probability range of erasing in an image (f → (0, f)), in [0, 1].
    ``scale``: the range of the erased fraction r of each side (its square root is drawn
    per side: r ~ U(scale), side = √r · size), in [0, 1].
    ``fill_value``: None (Gaussian noise · value_range[1]), a number, or one value per
    channel (3); clipped to ``value_range``.  Pixels outside the rectangle keep their values.
    """

    def __init__(self, factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255),
                 seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = self._bounded(factor, "factor")
        self.scale = self._bounded(scale, "scale")
        if fill_value is not None and not _is_number(fill_value) and not (
                isinstance(fill_value, (tuple, list)) and len(fill_value) == 3
                and all(_is_number(v) for v in fill_value)):
            raise ValueError(f"{self._who}: the `fill_value` argument should be a number (or a "
                             f"list of three numbers), received fill_value={fill_value!r}")
        self.fill_value = fill_value
        self.value_range = self._value_range(value_range)

    def _bounds(self, rng, n, length, ratio):
        crop = ratio * length
        start = rng.uniform(0.0, 1.0, size=n) * (length - crop)
        return start, start + crop

    def _augment(self, x):
        x = self._floating(x)
        rng = self._rng()
        n, h, w = x.shape[0], x.shape[self._h_axis], x.shape[self._w_axis]
        ratio = np.sqrt(rng.uniform(self.scale[0], self.scale[1], size=(n, 2)))
        x0, x1 = self._bounds(rng, n, w, ratio[:, 0])
        y0, y1 = self._bounds(rng, n, h, ratio[:, 1])
        apply = self._applied(rng, n)
        gy, gx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")

        def b(v):
            return v[:, None, None]
        mask = ((gx >= b(x0)) & (gx < b(x1)) & (gy >= b(y0)) & (gy < b(y1)) & b(apply))
        mask = mask[..., None] if self.data_format == "channels_last" else mask[:, None]
        lo, hi = self.value_range
        if self.fill_value is None:
            fill = rng.standard_normal(x.shape) * hi
        elif isinstance(self.fill_value, (tuple, list)):
            if x.shape[self._c_axis] != 3:
                raise ValueError(f"{self._who}: a fill_value of three numbers needs images with "
                                 f"3 channels, received shape {x.shape}")
            shape = [1, 1, 1, 1]
            shape[self._c_axis] = 3
            fill = np.broadcast_to(np.asarray(self.fill_value, dtype=np.float64).reshape(shape),
                                   x.shape)
        else:
            fill = np.full(x.shape, float(self.fill_value))
        fill = np.clip(fill, lo, hi).astype(x.dtype)
        return M.where(np.broadcast_to(mask, x.shape), Tensor(fill), x)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": self.factor, "scale": self.scale, "fill_value": self.fill_value,
                    "value_range": self.value_range})
        return cfg
