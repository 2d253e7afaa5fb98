"""Image preprocessing and augmentation layers (course 004 ch. 3), channels-last.

Deterministic layers — Rescaling, Resizing, CenterCrop — always apply and are
differentiable (built on axone ops).  The ``Random*`` augmentation layers apply
only while training; ``training=False`` (``predict``, ``evaluate``, validation)
makes them the identity.  As in Keras 3, a direct call that does not say
(``layer(images)``) augments: Keras's augmentation layers default to
``training=True``.  ``RandomCrop`` is the exception at inference: it returns the
largest centred window of the target aspect ratio resized to (height, width),
so its output shape never changes.

Inputs are one image (H, W, C) or a batch (N, H, W, C).  Every random draw comes
from :func:`axone.backend.rng` (so ``axone.utils.set_random_seed`` repeats a run
exactly), or from the layer's own generator when it is given ``seed=``.

Geometry is :mod:`axone.ops.image`'s (Keras's torch backend): resizing samples at
half-pixel centres (``align_corners=False``, antialiasing on request), bilinear / nearest
("nearest-exact") / bicubic (a = −0.75); rotation, zoom and translation map each output
pixel (x, y) back to the input point (a0·x + a1·y + a2, b0·x + b1·y + b2) and sample it
with ``ops.image.affine_transform`` (bilinear or nearest, outside points as ``fill_mode``
says: "reflect", "wrap", "nearest" or "constant").
"""
import numbers

import numpy as np

from .. import backend, config, ops
from ..ops import image as image_ops
from ..autograd.tensor import Tensor
from .base import Layer

__all__ = ["Rescaling", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom",
           "RandomTranslation", "RandomBrightness", "RandomContrast", "RandomCrop"]

_RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
_AFFINE_INTERPOLATIONS = ("bilinear", "nearest")
_FILL_MODES = ("reflect", "wrap", "constant", "nearest")


# ------------------------------------------------------------------ helpers
def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _positive_int(v, name, who):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{who}: {name} must be a positive integer, received {v!r}")
    return int(v)


def _check_rank(shape, who):
    if len(shape) not in (3, 4):
        raise ValueError(f"{who}: expected an image of rank 3 (height, width, channels) or a batch "
                         f"of rank 4 (batch, height, width, channels), received shape "
                         f"{tuple(shape)}")


def _batched(x):
    """x as a rank-4 batch, and whether it was a single image."""
    if x.ndim == 3:
        return ops.reshape(x, (1,) + tuple(x.shape)), True
    return x, False


def _unbatched(y, single):
    return ops.reshape(y, tuple(y.shape[1:])) if single else y


def _active(training):
    # Keras's augmentation layers default to training=True: only an explicit falsy
    # training (predict / evaluate / validation) turns them off.
    return training is None or bool(training)


# ------------------------------------------------- resizing and warping (ops.image)
def resize(images, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_value=0.0):
    """Resize a channels-last batch (N, H, W, C) Tensor to (N, height, width, C):
    :func:`axone.ops.image.resize`, differentiable."""
    return image_ops.resize(images, (height, width), interpolation=interpolation,
                            crop_to_aspect_ratio=crop_to_aspect_ratio,
                            pad_to_aspect_ratio=pad_to_aspect_ratio, fill_value=fill_value)


def affine_transform(images, transforms, interpolation="bilinear", fill_mode="reflect",
                     fill_value=0.0):
    """Warp a NumPy batch (N, H, W, C) by per-image transforms (N, 8) and return a NumPy
    array: :func:`axone.ops.image.affine_transform` on plain arrays."""
    images = np.asarray(images)
    if images.dtype.kind != "f":
        images = images.astype(backend.floatx())
    return image_ops.affine_transform(Tensor(images), transforms, interpolation, fill_mode,
                                      fill_value).data


def _rotation_matrices(angles_deg, height, width):
    """Keras's rotation about the image centre, as (N, 8) inverse-mapping transforms."""
    th = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    c, s = np.cos(th), np.sin(th)
    z = np.zeros_like(th)
    return np.stack([c, -s, cx - cx * c + cy * s, s, c, cy - cx * s - cy * c, z, z], axis=1)


def _zoom_matrices(zx, zy, height, width):
    z = np.zeros_like(zx)
    return np.stack([zx, z, (width - 1) / 2.0 * (1.0 - zx), z, zy, (height - 1) / 2.0 * (1.0 - zy),
                     z, z], axis=1)


def _translation_matrices(dx, dy):
    o, z = np.ones_like(dx), np.zeros_like(dx)
    return np.stack([o, z, -dx, z, o, -dy, z, z], axis=1)


# ------------------------------------------------------------------- bases
class _ImageLayer(Layer):
    """Base of the image layers: channels-last, rank 3 (one image) or 4 (a batch)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        fmt = config.standardize_data_format(data_format, self._who)
        if fmt != "channels_last":
            raise NotImplementedError(
                f"{self._who}: data_format={fmt!r}"
                f"{' (keras.config.image_data_format())' if data_format is None else ''} is "
                f"not implemented for this layer in axone; only 'channels_last' is")
        self.data_format = "channels_last"

    @property
    def _who(self):
        return f"{type(self).__name__} {self.name!r}"

    def build(self, input_shape):
        _check_rank(input_shape, self._who)
        self.built = True

    def compute_output_shape(self, input_shape):
        _check_rank(input_shape, self._who)
        return tuple(input_shape)

    def get_config(self):
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        return cfg


class _RandomImageLayer(_ImageLayer):
    """Base of the augmentation layers: identity unless training; draws from ``backend.rng()``."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"{self._who}: seed must be None or a non-negative integer, "
                             f"received {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._generator = None if seed is None else np.random.default_rng(self.seed)

    def _rng(self):
        return self._generator if self._generator is not None else backend.rng()

    def call(self, inputs, training=True):
        _check_rank(inputs.shape, self._who)
        if not _active(training):
            return inputs
        x, single = _batched(inputs)
        return _unbatched(self._augment(x), single)

    def _augment(self, x):
        raise NotImplementedError

    def get_config(self):
        cfg = super().get_config()
        cfg["seed"] = self.seed
        return cfg


def _factor_pair(factor, name, who, low, high, low_open=False):
    """A number f → (−|f|, |f|); a pair → sorted; every value within [low, high]."""
    def ok(v):
        return _is_number(v) and (low < v if low_open else low <= v) and v <= high

    rng = f"{'(' if low_open else '['}{low}, {high}]"
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(ok(v) for v in factor):
            raise ValueError(f"{who}: {name} must be a number or a pair of numbers in {rng}, "
                             f"received {name}={factor!r}")
        lo, hi = sorted(float(v) for v in factor)
        return lo, hi
    if not ok(factor):
        raise ValueError(f"{who}: {name} must be a number or a pair of numbers in {rng}, "
                         f"received {name}={factor!r}")
    f = abs(float(factor))
    return -f, f


def _check_modes(who, fill_mode, interpolation):
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"{who}: unknown fill_mode {fill_mode!r}; expected one of {_FILL_MODES}")
    if interpolation not in _AFFINE_INTERPOLATIONS:
        raise ValueError(f"{who}: unknown interpolation {interpolation!r}; expected one of "
                         f"{_AFFINE_INTERPOLATIONS}")
    return fill_mode, interpolation


def _value_range(value_range, who):
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
            or not all(_is_number(v) for v in value_range)):
        raise ValueError(f"{who}: value_range must be a pair of numbers (low, high), "
                         f"received {value_range!r}")
    lo, hi = sorted(float(v) for v in value_range)
    return lo, hi


# ----------------------------------------------------------- deterministic
class Rescaling(Layer):
    """y = x · scale + offset (``scale=1/255`` maps pixels to [0, 1]; ``1/127.5, offset=-1`` to [−1, 1]).

    ``scale`` / ``offset`` may be numbers or arrays broadcast against the last axes
    (e.g. one value per channel).  Any input rank; differentiable.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        for name, v in (("scale", scale), ("offset", offset)):
            arr = np.asarray(v.data if isinstance(v, Tensor) else v)
            if arr.dtype.kind not in "biuf" or not np.all(np.isfinite(arr)):
                raise ValueError(f"{who}: {name} must be a finite number or array of numbers, "
                                 f"received {v!r}")
        self.scale = _plain(scale)
        self.offset = _plain(offset)

    def call(self, inputs):
        dt = inputs.dtype
        scale = np.asarray(self.scale, dtype=dt)
        offset = np.asarray(self.offset, dtype=dt)
        return ops.add(ops.multiply(inputs, scale), offset)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"scale": self.scale, "offset": self.offset})
        return cfg


def _plain(v):
    """A number or (nested) list of numbers: JSON-friendly config values."""
    arr = np.asarray(v.data if isinstance(v, Tensor) else v)
    return float(arr) if arr.ndim == 0 else arr.astype(np.float64).tolist()


class Resizing(_ImageLayer):
    """Resize images to (height, width) (Keras ``Resizing``; torch backend's sampling).

    Args:
        height, width: output size.
        interpolation: "bilinear" (default), "nearest" or "bicubic".
        crop_to_aspect_ratio: first take the largest centred window of the target aspect
            ratio, so the image is not distorted.
        pad_to_aspect_ratio: first pad (with ``fill_value``) to the target aspect ratio.
        fill_mode: "constant" only (the padding of ``pad_to_aspect_ratio``).
        antialias: when downsampling with "bilinear" or "bicubic", widen the filter by the
            scale factor (torch's antialiasing); no effect for "nearest".
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False,
                 data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        who = self._who
        self.height = _positive_int(height, "height", who)
        self.width = _positive_int(width, "width", who)
        if interpolation not in _RESIZE_INTERPOLATIONS:
            raise ValueError(f"{who}: interpolation must be one of {_RESIZE_INTERPOLATIONS}, "
                             f"received {interpolation!r}")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError(f"{who}: only one of crop_to_aspect_ratio and pad_to_aspect_ratio "
                             f"can be True")
        if fill_mode != "constant":
            raise ValueError(f"{who}: fill_mode must be 'constant', received {fill_mode!r}")
        if not _is_number(fill_value):
            raise ValueError(f"{who}: fill_value must be a number, received {fill_value!r}")
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value = fill_mode, float(fill_value)
        self.antialias = bool(antialias)

    def call(self, inputs):
        _check_rank(inputs.shape, self._who)
        x, single = _batched(inputs)
        y = image_ops.resize(x, (self.height, self.width), interpolation=self.interpolation,
                             antialias=self.antialias,
                             crop_to_aspect_ratio=self.crop_to_aspect_ratio,
                             pad_to_aspect_ratio=self.pad_to_aspect_ratio,
                             fill_value=self.fill_value)
        return _unbatched(y, single)

    def compute_output_shape(self, input_shape):
        _check_rank(input_shape, self._who)
        s = list(input_shape)
        s[-3], s[-2] = self.height, self.width
        return tuple(s)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height": self.height, "width": self.width, "interpolation": self.interpolation,
                    "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                    "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                    "fill_value": self.fill_value, "antialias": self.antialias})
        return cfg


class CenterCrop(_ImageLayer):
    """Crop the central (height, width) window; an image smaller than that is first
    cropped to the target aspect ratio and resized (Keras's ``smart_resize``)."""

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.height = _positive_int(height, "height", self._who)
        self.width = _positive_int(width, "width", self._who)

    def call(self, inputs):
        _check_rank(inputs.shape, self._who)
        x, single = _batched(inputs)
        n_h, n_w = x.shape[1], x.shape[2]
        if n_h >= self.height and n_w >= self.width:
            h0, w0 = (n_h - self.height) // 2, (n_w - self.width) // 2
            y = ops.get_item(x, (slice(None), slice(h0, h0 + self.height),
                                 slice(w0, w0 + self.width)))
        else:
            y = resize(x, self.height, self.width, "bilinear", crop_to_aspect_ratio=True)
        return _unbatched(y, single)

    def compute_output_shape(self, input_shape):
        _check_rank(input_shape, self._who)
        s = list(input_shape)
        s[-3], s[-2] = self.height, self.width
        return tuple(s)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height": self.height, "width": self.width})
        return cfg


# ------------------------------------------------------------ augmentation
class RandomFlip(_RandomImageLayer):
    """Flip each image with probability 1/2 while training.

    ``mode``: "horizontal" (left ↔ right, ``x[:, :, ::-1]``), "vertical" (top ↔ bottom)
    or "horizontal_and_vertical" (both axes at once, one draw per image, as Keras 3).
    """

    _MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if mode not in self._MODES:
            raise ValueError(f"{self._who}: mode must be one of {self._MODES}, received {mode!r}")
        self.mode = mode

    def _augment(self, x):
        flips = self._rng().uniform(size=x.shape[0]) <= 0.5
        cond = flips[:, None, None, None]
        y = x
        rev = slice(None, None, -1)
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            y = ops.where(cond, ops.get_item(y, (slice(None), slice(None), rev)), y)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            y = ops.where(cond, ops.get_item(y, (slice(None), rev)), y)
        return y

    def get_config(self):
        cfg = super().get_config()
        cfg["mode"] = self.mode
        return cfg


class _AffineAugmentation(_RandomImageLayer):
    """Shared by RandomRotation / RandomZoom / RandomTranslation: a NumPy warp per image."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.fill_mode, self.interpolation = _check_modes(self._who, fill_mode, interpolation)
        if not _is_number(fill_value):
            raise ValueError(f"{self._who}: fill_value must be a number, received {fill_value!r}")
        self.fill_value = float(fill_value)

    def _augment(self, x):
        n, h, w, _ = x.shape
        m = self._matrices(n, h, w)
        return image_ops.affine_transform(x, m, self.interpolation, self.fill_mode,
                                          self.fill_value)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"fill_mode": self.fill_mode, "interpolation": self.interpolation,
                    "fill_value": self.fill_value})
        return cfg


class RandomRotation(_AffineAugmentation):
    """Rotate each image by a random angle, a fraction of 2π, while training.

    ``factor``: f → angle ∈ [−f·360°, f·360°]; (lo, hi) → [lo·360°, hi·360°]
    (e.g. (−0.2, 0.3) of course 004).  Values in [−1, 1].
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, data_format=data_format, **kwargs)
        self.factor = _factor_pair(factor, "factor", self._who, -1.0, 1.0)

    def _matrices(self, n, h, w):
        angles = self._rng().uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, size=n)
        return _rotation_matrices(angles, h, w)

    def get_config(self):
        cfg = super().get_config()
        cfg["factor"] = list(self.factor)
        return cfg


class RandomZoom(_AffineAugmentation):
    """Zoom each image by a random factor while training (Keras: positive values zoom out).

    ``height_factor``: f → the sampled height scale lies in [1 − f, 1 + f] ((lo, hi) →
    [1 + lo, 1 + hi]); values in (−1, 1].  ``width_factor`` likewise; None keeps the
    aspect ratio (the width uses the height's draw).
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, data_format=data_format, **kwargs)
        self.height_factor = _factor_pair(height_factor, "height_factor", self._who, -1.0, 1.0,
                                          low_open=True)
        self.width_factor = None if width_factor is None else _factor_pair(
            width_factor, "width_factor", self._who, -1.0, 1.0, low_open=True)

    def _matrices(self, n, h, w):
        rng = self._rng()
        zy = rng.uniform(1.0 + self.height_factor[0], 1.0 + self.height_factor[1], size=n)
        zx = zy if self.width_factor is None else rng.uniform(
            1.0 + self.width_factor[0], 1.0 + self.width_factor[1], size=n)
        return _zoom_matrices(zx, zy, h, w)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height_factor": list(self.height_factor),
                    "width_factor": None if self.width_factor is None else list(self.width_factor)})
        return cfg


class RandomTranslation(_AffineAugmentation):
    """Shift each image by a random fraction of its height and width while training.

    ``height_factor`` / ``width_factor``: f → shift ∈ [−f, f] × size ((lo, hi) → [lo, hi]);
    values in [−1, 1].
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear",
                 seed=None, fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed,
                         fill_value=fill_value, data_format=data_format, **kwargs)
        self.height_factor = _factor_pair(height_factor, "height_factor", self._who, -1.0, 1.0)
        self.width_factor = _factor_pair(width_factor, "width_factor", self._who, -1.0, 1.0)

    def _matrices(self, n, h, w):
        rng = self._rng()
        dy = rng.uniform(*self.height_factor, size=n) * h
        dx = rng.uniform(*self.width_factor, size=n) * w
        return _translation_matrices(dx, dy)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height_factor": list(self.height_factor),
                    "width_factor": list(self.width_factor)})
        return cfg


class RandomBrightness(_RandomImageLayer):
    """Add a random delta to each image while training, then clip to ``value_range``.

    ``factor``: f → delta ∈ [−f, f] · (high − low); (lo, hi) → [lo, hi] · (high − low);
    values in [−1, 1].  One delta per image, shared by its pixels and channels.
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(factor, "factor", self._who, -1.0, 1.0)
        self.value_range = _value_range(value_range, self._who)

    def _augment(self, x):
        lo, hi = self.value_range
        delta = self._rng().uniform(*self.factor, size=(x.shape[0], 1, 1, 1)) * (hi - lo)
        return ops.clip(ops.add(x, delta.astype(x.dtype)), lo, hi)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": list(self.value_range)})
        return cfg


class RandomContrast(_RandomImageLayer):
    """Scale each channel's deviation from its mean by a random factor while training:
    y = (x − mean) · c + mean, clipped to ``value_range``.

    ``factor``: f → c ∈ [1 − f, 1 + f]; (lo, hi) → [1 − lo, 1 + hi]; values in [0, 1]
    (course 004: "factor ∈ [1−val, 1+val]").  One c per image.
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        who = self._who
        if isinstance(factor, (tuple, list)):
            if len(factor) != 2 or not all(_is_number(v) and 0 <= v <= 1 for v in factor):
                raise ValueError(f"{who}: factor must be a number or a pair of numbers in [0, 1], "
                                 f"received factor={factor!r}")
            self.factor = (float(factor[0]), float(factor[1]))
        else:
            if not (_is_number(factor) and 0 <= factor <= 1):
                raise ValueError(f"{who}: factor must be a number or a pair of numbers in [0, 1], "
                                 f"received factor={factor!r}")
            self.factor = (float(factor), float(factor))
        self.value_range = _value_range(value_range, who)

    def _augment(self, x):
        c = self._rng().uniform(1.0 - self.factor[0], 1.0 + self.factor[1],
                                size=(x.shape[0], 1, 1, 1)).astype(x.dtype)
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        y = ops.add(ops.multiply(ops.subtract(x, mean), c), mean)
        return ops.clip(y, *self.value_range)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": list(self.value_range)})
        return cfg


class RandomCrop(_RandomImageLayer):
    """Crop a random (height, width) window while training (one window per batch, as Keras).

    At inference, and in training for an image smaller than the target, returns the
    largest centred window of the target aspect ratio resized (bilinear) to
    (height, width), so the output shape is always (…, height, width, channels).
    """

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.height = _positive_int(height, "height", self._who)
        self.width = _positive_int(width, "width", self._who)

    def call(self, inputs, training=True):
        _check_rank(inputs.shape, self._who)
        x, single = _batched(inputs)
        n_h, n_w = x.shape[1], x.shape[2]
        if _active(training) and n_h >= self.height and n_w >= self.width:
            rng = self._rng()
            h0 = int(rng.uniform(0, n_h - self.height + 1))
            w0 = int(rng.uniform(0, n_w - self.width + 1))
            y = ops.get_item(x, (slice(None), slice(h0, h0 + self.height),
                                 slice(w0, w0 + self.width)))
        else:
            y = resize(x, self.height, self.width, "bilinear", crop_to_aspect_ratio=True)
        return _unbatched(y, single)

    def compute_output_shape(self, input_shape):
        _check_rank(input_shape, self._who)
        s = list(input_shape)
        s[-3], s[-2] = self.height, self.width
        return tuple(s)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"height": self.height, "width": self.width})
        return cfg
