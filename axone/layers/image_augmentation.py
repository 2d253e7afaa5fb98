"""Colour and mixing image augmentation layers, as Keras 3 has them.

Every layer here follows Keras's image preprocessing layers: it takes one image (3-D), a batch
(4-D) or a dict with ``"images"`` (and optionally ``"labels"``, ``"segmentation_masks"``,
``"bounding_boxes"``), in ``data_format`` "channels_last" or "channels_first" (None:
``keras.config.image_data_format()``).  A call
first draws its random parameters (``get_random_transformation``, one set per image, or one per
batch where Keras draws one), then applies them (``transform_images``, ``transform_labels``, …);
both steps are public, as in Keras, so a known transformation can be applied directly.  Colour
layers take ``value_range`` (the range of the input values, (0, 255) by default) and work
internally on [0, 255] or [0, 1] as Keras does.

Random layers draw from their own generator when given ``seed`` (the same seed gives the same
draws), otherwise from :func:`axone.backend.rng` (so ``axone.utils.set_random_seed`` repeats a
run).  Except AutoContrast, ContrastLimitedAdaptiveHistogramEqualization and
MaxNumBoundingBoxes, which Keras applies whatever ``training`` says, a layer called with
``training=False`` returns its input (cast to float32 where Keras casts).  A direct call that does
not say augments, as in Keras.

The computations run on NumPy arrays and record no gradient (they are data preprocessing).

Equations (x in [0, 255] unless said):
  AutoContrast      y = (x − min)·255/(max − min), per image and channel
  Equalization      y = round(255·(cdf(x) − cdf_min)/(N − cdf_min)), per channel over the batch
  Solarization      y = x + a clipped to [0, 255];  y ← 255 − y where y ≥ threshold
  ColorDegeneration y = x + f·(gray(x) − x)
  Saturation        S ← S·f/(1 − f + ε) (HSV);  Hue  H ← H ± f/2 (mod 1)
  Sharpness         y = x + (1 − 2f)·(blur₃ₓ₃(x) − x), blur weights 1/13 around, 5/13 centre
  Posterization     y = (x >> (8 − b)) << (8 − b) on uint8
  Invert            y = high − x
  MixUp             x ← λ·x + (1 − λ)·x[π], λ ~ Beta(α, α), labels alike
  CutMix            a box of area (1 − λ) taken from x[π]; labels mixed by the kept area
"""
import numbers

import numpy as np

from .. import backend
from ..autograd.function import is_grad_enabled
from ..autograd.tensor import Tensor
from ..config import standardize_data_format
from ..ops import image_color
from .base import Layer

__all__ = ["AutoContrast", "Equalization", "Solarization", "RandomColorDegeneration",
           "RandomColorJitter", "RandomGrayscale", "RandomHue", "RandomInvert",
           "RandomPosterization", "RandomSaturation", "RandomSharpness", "MixUp", "CutMix",
           "RandAugment", "AugMix", "MaxNumBoundingBoxes",
           "ContrastLimitedAdaptiveHistogramEqualization", "Pipeline"]

_F32 = np.float32
_EPSILON = 1e-7          # keras.config.epsilon()


# ------------------------------------------------------------------ helpers
def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _array(x):
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "detach") and hasattr(x, "cpu"):      # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _value_range(value_range, who):
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
            or not all(_is_number(v) for v in value_range)):
        raise ValueError(f"{who}: the `value_range` argument should be a list of two numbers. "
                         f"Received: value_range={value_range!r}")
    return value_range


def _factor(factor, bounds, who, name="factor", symmetric=True):
    """Keras's ``_set_factor``: a number f → (max(−|f|, low), |f|) (or (low, f)), a pair → sorted."""
    low, high = bounds
    msg = (f"{who}: the `{name}` argument should be a number (or a list of two numbers) in the "
           f"range [{low}, {high}]. Received: {name}={factor!r}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(_is_number(v) for v in factor):
            raise ValueError(msg)
        if factor[0] > high or factor[1] < low:
            raise ValueError(msg)
        lo, hi = sorted(factor)
        return lo, hi
    if not _is_number(factor):
        raise ValueError(msg)
    if factor < low or factor > high:
        raise ValueError(msg)
    if symmetric:
        f = abs(factor)
        return max(-f, low), f
    return low, factor


def _to_range(images, source, target):
    """Keras's ``_transform_value_range``: map [source] linearly onto [target], in float32."""
    if source[0] == target[0] and source[1] == target[1]:
        return images
    x = np.asarray(images, dtype=_F32)
    smin, smax = _F32(source[0]), _F32(source[1])
    tmin, tmax = _F32(target[0]), _F32(target[1])
    return (x - smin) / (smax - smin) * (tmax - tmin) + tmin


def _channels_last(x, fmt):
    return np.moveaxis(x, -3, -1) if fmt == "channels_first" else x


def _channels_back(x, fmt):
    return np.moveaxis(x, -1, -3) if fmt == "channels_first" else x


def _batch_size(data, who):
    images = data["images"] if isinstance(data, dict) else data
    shape = np.shape(_array(images)) if not hasattr(images, "shape") else tuple(images.shape)
    if len(shape) == 3:
        return 1
    if len(shape) == 4:
        return int(shape[0])
    raise ValueError(f"{who}: expected the input image to be rank 3 or 4. Received: "
                     f"inputs.shape={tuple(shape)}")


def _active(training):
    return training is None or bool(training)


# ------------------------------------------------------------------- base
class _ImageAugmentation(Layer):
    """Base: Keras's call structure (draw a transformation, then transform each part of the data)."""

    _autocast = False          # the layers choose their output dtype as Keras does
    _always = False            # applied whatever ``training`` says
    _cast_inactive = False     # Keras casts the images to float32 even when not training
    _random = True

    def __init__(self, data_format=None, bounding_box_format=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, self._who)
        self.bounding_box_format = bounding_box_format
        if self._random:
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                     or seed < 0):
                raise ValueError(f"{self._who}: seed must be None or a non-negative integer, "
                                 f"received {seed!r}")
            self.seed = None if seed is None else int(seed)
            self._generator = None if seed is None else np.random.default_rng(self.seed)

    @property
    def _who(self):
        return f"{type(self).__name__} {self.name!r}"

    # -------------------------------------------------------------- random
    def _rng(self, seed=None):
        if isinstance(seed, np.random.Generator):
            return seed
        if seed is not None:
            return np.random.default_rng(seed)
        gen = getattr(self, "_generator", None)
        return gen if gen is not None else backend.rng()

    def get_random_transformation(self, data, training=True, seed=None):
        return None

    # ---------------------------------------------------------- transforms
    def transform_images(self, images, transformation=None, training=True):
        raise NotImplementedError

    def transform_labels(self, labels, transformation=None, training=True):
        return labels

    def transform_segmentation_masks(self, segmentation_masks, transformation=None, training=True):
        return segmentation_masks

    def transform_bounding_boxes(self, bounding_boxes, transformation=None, training=True):
        return bounding_boxes

    # ---------------------------------------------------------------- call
    def build(self, input_shape):
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def _check_images(self, images):
        if images.ndim not in (3, 4):
            raise ValueError(f"{self._who}: expected image tensor to have rank 3 (single image) or "
                             f"4 (batch of images). Received: data.shape={images.shape}")
        if images.dtype.kind not in "biuf":
            raise TypeError(f"{self._who}: expected numeric images, received dtype {images.dtype}")

    def _inactive(self, x):
        if self._cast_inactive:
            return Tensor(np.asarray(_array(x), dtype=_F32))
        return x if isinstance(x, Tensor) else Tensor(_array(x))

    def call(self, inputs, training=True):
        training = self._always or _active(training)
        if isinstance(inputs, dict):
            if "images" not in inputs:
                raise ValueError(f"{self._who}: a dict input needs an 'images' key, received keys "
                                 f"{sorted(inputs)}")
            data = dict(inputs)
            images = _array(data["images"])
        else:
            data = None
            images = _array(inputs)
        self._check_images(images)
        if data is not None and "bounding_boxes" in data and not self.bounding_box_format:
            raise ValueError(f"{self._who}: you passed an input with a 'bounding_boxes' key, but "
                             f"you didn't specify a bounding box format. Pass a "
                             f"`bounding_box_format` argument to your {type(self).__name__} layer, "
                             f"e.g. `bounding_box_format='xyxy'`.")
        source = inputs["images"] if data is not None else inputs
        if (training or self._cast_inactive) and isinstance(source, Tensor) and \
                source.requires_grad and is_grad_enabled():
            # these layers run on NumPy without a backward: after trainable layers they would
            # cut the gradient silently
            raise NotImplementedError(
                f"{self._who}: its images carry a gradient (the layer comes after trainable "
                f"layers), but this layer is not differentiable in axone; place it before the "
                f"trainable layers, as image augmentation usually is")
        if not training:
            if data is None:
                return self._inactive(inputs)
            data["images"] = self._inactive(data["images"])
            return data
        single = images.ndim == 3
        transformation = self.get_random_transformation(
            {"images": images} if data is None else {**data, "images": images}, training=True)
        out = self.transform_images(images[None] if single else images, transformation)
        out = Tensor(np.asarray(out)[0] if single else np.asarray(out))
        if data is None:
            return out
        data["images"] = out
        if "labels" in data:
            labels = _array(data["labels"])
            y = self.transform_labels(labels[None] if single else labels, transformation)
            data["labels"] = Tensor(np.asarray(y)[0] if single else np.asarray(y))
        if "segmentation_masks" in data:
            masks = _array(data["segmentation_masks"])
            y = self.transform_segmentation_masks(masks[None] if single else masks, transformation)
            data["segmentation_masks"] = Tensor(np.asarray(y)[0] if single else np.asarray(y))
        if "bounding_boxes" in data:
            boxes = data["bounding_boxes"]
            if not isinstance(boxes, dict) or "boxes" not in boxes or "labels" not in boxes:
                raise ValueError(f"{self._who}: 'bounding_boxes' must be a dict with 'boxes' and "
                                 f"'labels', received {type(boxes).__name__}")
            b = {k: _array(v) for k, v in boxes.items()}
            if single:
                b = {k: (v[None] if k in ("boxes", "labels") else v) for k, v in b.items()}
            b = self.transform_bounding_boxes(b, transformation)
            if single:
                b = {k: (np.asarray(v)[0] if k in ("boxes", "labels") else v) for k, v in b.items()}
            data["bounding_boxes"] = {k: Tensor(np.asarray(v)) for k, v in b.items()}
        return data

    def get_config(self):
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        if self.bounding_box_format is not None:
            cfg["bounding_box_format"] = self.bounding_box_format
        return cfg


class _ColorLayer(_ImageAugmentation):
    """Colour layers: labels, masks and boxes pass through unchanged."""


# ----------------------------------------------------- deterministic layers
class AutoContrast(_ColorLayer):
    """Stretch each image's channels to the full ``value_range``:
    y = (x − min)·255/(max − min) on [0, 255] (Keras applies it whatever ``training`` says).
    A constant channel (max = min) is returned as it was."""

    _always = True
    _random = False

    def __init__(self, value_range=(0, 255), **kwargs):
        super().__init__(**kwargs)
        self.value_range = sorted(_value_range(value_range, self._who))

    def transform_images(self, images, transformation=None, training=True):
        original = _array(images)
        x = np.asarray(_to_range(original, self.value_range, (0, 255)), dtype=_F32)
        axes = (2, 3) if self.data_format == "channels_first" else (1, 2)
        low = x.min(axis=axes, keepdims=True)
        high = x.max(axis=axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = _F32(255.0) / (high - low)
            offset = -low * scale
            y = np.clip(x * scale + offset, _F32(0), _F32(255))
        y = _to_range(y, (0, 255), self.value_range)
        return np.where(np.isnan(y), original, y).astype(_F32, copy=False)

    def get_config(self):
        cfg = super().get_config()
        cfg["value_range"] = list(self.value_range)
        return cfg


class Equalization(_ColorLayer):
    """Histogram equalization of each channel (its histogram over the whole batch, ``bins``
    bins on [0, 255]): y = round(255·(cdf(x) − cdf_min)/(cdf_max − cdf_min)).  A channel whose
    values fall in one bin is left as it is."""

    _random = False

    def __init__(self, value_range=(0, 255), bins=256, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"{self._who}: bins must be a positive integer, received {bins!r}")
        self.bins = int(bins)
        self.value_range = sorted(_value_range(value_range, self._who))

    @staticmethod
    def _scale(values, source, target):
        scale = (target[1] - target[0]) / (source[1] - source[0])
        offset = target[0] - source[0] * scale
        return values * scale + offset

    def _equalize_channel(self, channel):
        nb = self.bins
        channel = self._scale(channel, self.value_range, (0, 255))
        scaled = (channel - _F32(0)) * _F32(nb - 1) / _F32(255)
        idx = np.clip(scaled.astype(np.int32), 0, nb - 1)
        hist = np.bincount(idx.reshape(-1), minlength=nb)
        if np.count_nonzero(hist) <= 1:
            out = channel
        else:
            cdf = np.cumsum(hist)
            cdf_min = cdf[np.nonzero(cdf)[0][0]]
            den = cdf[-1] - cdf_min
            den = 1 if den == 0 else den
            lut = ((cdf - cdf_min) * 255).astype(_F32) / _F32(den)
            lut = np.clip(np.round(lut), 0, 255)
            pos = np.clip((channel / _F32(255.0)) * _F32(nb - 1), 0, nb - 1).astype(np.int32)
            out = lut[pos]
        return self._scale(out, (0, 255), self.value_range)

    def transform_images(self, images, transformation=None, training=True):
        x = np.asarray(_array(images), dtype=_F32)
        if not training:
            return x
        x = _channels_last(x, self.data_format)
        out = np.stack([self._equalize_channel(x[..., c]) for c in range(x.shape[-1])], axis=-1)
        return _channels_back(out.astype(_F32, copy=False), self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"bins": self.bins, "value_range": list(self.value_range)})
        return cfg


class ContrastLimitedAdaptiveHistogramEqualization(_ColorLayer):
    """CLAHE: histogram equalization per tile of a ``tile_grid_size`` grid, each tile's
    histogram clipped at ``clip_limit``·(tile pixels)/256 with the excess spread over all bins,
    the tiles' mappings blended bilinearly between tile centres.  Applied whatever ``training``
    says, as Keras; the output keeps the input's dtype."""

    _always = True
    _random = False

    def __init__(self, value_range=(0, 255), clip_limit=4.0, tile_grid_size=(8, 8), data_format=None,
                 **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.value_range = _value_range(value_range, self._who)
        if not _is_number(clip_limit):
            raise ValueError(f"{self._who}: clip_limit must be a number, received {clip_limit!r}")
        if (not isinstance(tile_grid_size, (tuple, list)) or len(tile_grid_size) != 2
                or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                           for v in tile_grid_size)):
            raise ValueError(f"{self._who}: tile_grid_size must be a pair of positive integers, "
                             f"received {tile_grid_size!r}")
        self.clip_limit = clip_limit
        self.tile_grid_size = tile_grid_size

    def _clahe(self, images):
        n, height, width, channels = images.shape
        gh, gw = (int(v) for v in self.tile_grid_size)
        th, tw = -(-height // gh), -(-width // gw)
        ph, pw = th * gh - height, tw * gw - width
        padded = images
        if ph or pw:
            padded = np.pad(images, [(0, 0), (0, ph), (0, pw), (0, 0)], mode="symmetric")
        tiles = padded.reshape(n, gh, th, gw, tw, channels).transpose(0, 1, 3, 5, 2, 4)
        tiles = np.clip(tiles.reshape(n, gh, gw, channels, th * tw).astype(np.int32), 0, 255)
        hist = np.zeros((n, gh, gw, channels, 256), dtype=_F32)
        flat = tiles.reshape(-1, th * tw)
        hflat = hist.reshape(-1, 256)
        for i in range(flat.shape[0]):
            hflat[i] = np.bincount(flat[i], minlength=256)
        if self.clip_limit > 0:
            limit = _F32(self.clip_limit * (th * tw) / 256.0)
            clipped = np.clip(hist, 0, limit)
            excess = (hist - clipped).sum(axis=-1, keepdims=True)
            hist = clipped + excess / _F32(256.0)
        cdf = np.cumsum(hist, axis=-1, dtype=_F32)
        cdf_min = cdf.min(axis=-1, keepdims=True)
        den = _F32(th * tw) - cdf_min
        den = np.where(den == 0, _F32(1), den)
        cdf = np.clip((cdf - cdf_min) * _F32(255.0) / den, 0, 255).astype(_F32, copy=False)
        cdf = np.concatenate([cdf[:, :1], cdf, cdf[:, -1:]], axis=1)
        cdf = np.concatenate([cdf[:, :, :1], cdf, cdf[:, :, -1:]], axis=2)
        yg = (np.arange(th * gh, dtype=_F32) - _F32(th / 2.0)) / _F32(th) + _F32(1)
        xg = (np.arange(tw * gw, dtype=_F32) - _F32(tw / 2.0)) / _F32(tw) + _F32(1)
        y0, x0 = np.floor(yg), np.floor(xg)
        wy, wx = (yg - y0)[None, :, None, None], (xg - x0)[None, None, :, None]
        y1 = np.clip(y0 + 1, 0, gh + 1).astype(np.int64)
        x1 = np.clip(x0 + 1, 0, gw + 1).astype(np.int64)
        y0 = np.clip(y0, 0, gh + 1).astype(np.int64)
        x0 = np.clip(x0, 0, gw + 1).astype(np.int64)
        pix = np.clip(padded, 0, 255).astype(np.int32)
        b = np.arange(n)[:, None, None, None]
        c = np.arange(channels)[None, None, None, :]

        def at(yi, xi):
            return cdf[b, yi[None, :, None, None], xi[None, None, :, None], c, pix]

        top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
        bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
        out = top * (1 - wy) + bottom * wy
        return out[:, :height, :width, :]

    def transform_images(self, images, transformation=None, training=True):
        x = _array(images)
        dtype = x.dtype
        x = _channels_last(x, self.data_format)
        y = np.asarray(_to_range(x, self.value_range, (0, 255)), dtype=_F32)
        y = self._clahe(y)
        y = np.asarray(_to_range(y, (0, 255), self.value_range), dtype=_F32)
        return _channels_back(y.astype(dtype), self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"value_range": self.value_range, "clip_limit": self.clip_limit,
                    "tile_grid_size": self.tile_grid_size})
        return cfg


class MaxNumBoundingBoxes(_ImageAugmentation):
    """Keep at most ``max_number`` bounding boxes per image and pad to exactly that many with
    ``fill_value`` (boxes and their labels); images and labels pass through."""

    _always = True
    _random = False

    def __init__(self, max_number, fill_value=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_number, bool) or not _is_number(max_number) or int(max_number) < 1:
            raise ValueError(f"{self._who}: max_number must be a positive integer, "
                             f"received {max_number!r}")
        self.max_number = int(max_number)
        self.fill_value = int(fill_value)

    def transform_images(self, images, transformation=None, training=True):
        return _array(images)

    def transform_bounding_boxes(self, bounding_boxes, transformation=None, training=True):
        boxes = _array(bounding_boxes["boxes"])
        labels = _array(bounding_boxes["labels"])
        if boxes.ndim != 3 or boxes.shape[-1] != 4 or labels.shape != boxes.shape[:2]:
            raise ValueError(f"{self._who}: expected boxes of shape (batch, num_boxes, 4) and "
                             f"labels of shape (batch, num_boxes), received {boxes.shape} and "
                             f"{labels.shape}")
        m = self.max_number
        pad = max(m - boxes.shape[1], 0)
        boxes = np.pad(boxes[:, :m], [(0, 0), (0, pad), (0, 0)], constant_values=self.fill_value)
        labels = np.pad(labels[:, :m], [(0, 0), (0, pad)], constant_values=self.fill_value)
        out = dict(bounding_boxes)
        out["boxes"], out["labels"] = boxes, labels
        return out

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict) and "bounding_boxes" in input_shape:
            shapes = dict(input_shape)
            bb = dict(shapes["bounding_boxes"])
            extra = set(bb) - {"boxes", "labels"}
            if extra:
                raise KeyError(f"There are unsupported keys in `bounding_boxes`: {sorted(extra)}. "
                               f"Only `boxes` and `labels` are supported.")
            for k in ("boxes", "labels"):
                s = list(bb[k])
                s[1] = self.max_number
                bb[k] = tuple(s)
            shapes["bounding_boxes"] = bb
            return shapes
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"max_number": self.max_number, "fill_value": self.fill_value})
        return cfg


# ------------------------------------------------------------ colour layers
def _uniform(rng, low, high, size):
    return rng.uniform(low, high, size=size).astype(_F32)


class Solarization(_ColorLayer):
    """y = x + a (clipped to [0, 255]), then 255 − y where y ≥ t, on [0, 255].

    ``addition_factor`` / ``threshold_factor``: f → (0, f), or a pair, in [0, 1]; per image
    a ~ U(low, high·255) and t ~ U(low, high·255) (Keras's draws)."""

    _cast_inactive = True

    def __init__(self, addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255), seed=None,
                 **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.addition_factor = _factor(addition_factor, (0, 1), self._who, "addition_factor",
                                       symmetric=False)
        self.threshold_factor = _factor(threshold_factor, (0, 1), self._who, "threshold_factor",
                                        symmetric=False)
        for name, f in (("addition_factor", self.addition_factor),
                        ("threshold_factor", self.threshold_factor)):
            if f[0] < 0 or f[1] > 1:
                raise ValueError(f"{self._who}: the `{name}` argument should be a number (or a "
                                 f"list of two numbers) in the range [0, 1]. Received: {name}={f}")
        self.value_range = sorted(_value_range(value_range, self._who))

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = _batch_size(data, self._who)
        rng = self._rng(seed)
        a, t = self.addition_factor, self.threshold_factor
        return {"additions": _uniform(rng, a[0], a[1] * 255, (n, 1, 1, 1)),
                "thresholds": _uniform(rng, t[0], t[1] * 255, (n, 1, 1, 1))}

    def transform_images(self, images, transformation=None, training=True):
        x = np.asarray(_array(images), dtype=_F32)
        if not training or transformation is None:
            return x
        x = np.asarray(_to_range(x, self.value_range, (0, 255)), dtype=_F32)
        y = np.clip(x + np.asarray(transformation["additions"], dtype=_F32), 0, 255)
        y = np.where(y < np.asarray(transformation["thresholds"], dtype=_F32), y, _F32(255) - y)
        return np.asarray(_to_range(y, (0, 255), self.value_range), dtype=_F32)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"value_range": list(self.value_range),
                    "addition_factor": list(self.addition_factor),
                    "threshold_factor": list(self.threshold_factor), "seed": self.seed})
        return cfg


class RandomColorDegeneration(_ColorLayer):
    """Blend each image with its grayscale version: y = x + f·(gray(x) − x), clipped to
    ``value_range``; f ~ U(factor) per image (f → (−f, f), a pair sorted, in [−1, 1] as Keras)."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = _factor(factor, (-1, 1), self._who)
        self.value_range = sorted(_value_range(value_range, self._who))

    def get_random_transformation(self, data, training=True, seed=None):
        n = _batch_size(data, self._who)
        return {"factor": _uniform(self._rng(seed), self.factor[0], self.factor[1], (n, 1, 1, 1))}

    def transform_images(self, images, transformation=None, training=True):
        x = np.asarray(_array(images), dtype=_F32)
        if not training:
            return x
        f = np.asarray(transformation["factor"], dtype=_F32)
        gray = image_color.rgb_to_grayscale(x, data_format=self.data_format).data
        y = x + f * (gray - x)
        return np.clip(y, self.value_range[0], self.value_range[1]).astype(_F32, copy=False)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": list(self.value_range),
                    "seed": self.seed})
        return cfg


class RandomGrayscale(_ColorLayer):
    """Turn each image to grayscale with probability ``factor`` (kept with 3 equal channels);
    the dtype is kept."""

    def __init__(self, factor=0.5, data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        if not _is_number(factor) or factor < 0 or factor > 1:
            raise ValueError(f"{self._who}: `factor` should be between 0 and 1. "
                             f"Received: factor={factor!r}")
        self.factor = factor

    def get_random_transformation(self, data, training=True, seed=None):
        n = _batch_size(data, self._who)
        values = self._rng(seed).uniform(0, 1, size=n).astype(_F32)
        return (values < self.factor).reshape(n, 1, 1, 1)

    def transform_images(self, images, transformation=None, training=True):
        x = _array(images)
        if not training:
            return x
        if transformation is None:
            transformation = self.get_random_transformation(x)
        gray = image_color.rgb_to_grayscale(x, data_format=self.data_format).data
        return np.where(np.asarray(transformation), gray, x)

    def get_config(self):
        cfg = super().get_config()
        cfg["factor"] = self.factor
        return cfg


class RandomHue(_ColorLayer):
    """Shift each image's hue by ±f/2 (HSV, modulo 1), f ~ U(factor) and the sign ±1 with
    probability 1/2 each; ``factor`` f → (0, f) or a pair, in [0, 1]."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = _factor(factor, (0, 1), self._who)
        self.value_range = _value_range(value_range, self._who)

    def get_random_transformation(self, data, training=True, seed=None):
        n = _batch_size(data, self._who)
        rng = self._rng(seed)
        invert = np.where(rng.uniform(0, 1, size=n) > 0.5, -1.0, 1.0).astype(_F32)
        factor = _uniform(rng, self.factor[0], self.factor[1], n)
        return {"factor": invert * factor * _F32(0.5)}

    def transform_images(self, images, transformation=None, training=True):
        x = _array(images)
        if not training:
            return x
        x = np.asarray(_to_range(np.asarray(x, dtype=_F32), self.value_range, (0, 1)), dtype=_F32)
        adjust = np.asarray(transformation["factor"], dtype=_F32).reshape(-1, 1, 1)
        hsv = image_color.rgb_to_hsv(x, data_format=self.data_format).data
        ch = -3 if self.data_format == "channels_first" else -1
        h, s, v = (np.take(hsv, i, axis=ch) for i in range(3))
        h = h + adjust
        h = np.where(h > 1.0, h - _F32(1), h)
        h = np.where(h < 0.0, h + _F32(1), h)
        hsv = np.stack([h, s, v], axis=ch)
        rgb = np.clip(image_color.hsv_to_rgb(hsv, data_format=self.data_format).data, 0, 1)
        return np.asarray(_to_range(rgb, (0, 1), self.value_range), dtype=_F32)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": self.value_range,
                    "seed": self.seed})
        return cfg


class RandomInvert(_ColorLayer):
    """Invert each image (y = value_range[1] − x) with a probability p ~ U(factor): f → (0, f),
    a pair sorted, in [0, 1].  ``factor=1.0`` inverts half the images on average, as Keras;
    ``factor=(1.0, 1.0)`` inverts all of them."""

    def __init__(self, factor=1.0, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = _factor(factor, (0, 1), self._who)
        self.value_range = _value_range(value_range, self._who)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = _batch_size(data, self._who)
        rng = self._rng(seed)
        probability = _uniform(rng, self.factor[0], self.factor[1], n)
        threshold = _uniform(rng, 0, 1, n)
        return {"apply_inversion": threshold < probability}

    def transform_images(self, images, transformation=None, training=True):
        x = _array(images)
        if not training:
            return x
        x = np.asarray(x, dtype=_F32)
        apply = np.asarray(transformation["apply_inversion"]).reshape(-1, 1, 1, 1)
        return np.where(apply, _F32(self.value_range[1]) - x, x)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": self.value_range,
                    "seed": self.seed})
        return cfg


class RandomPosterization(_ColorLayer):
    """Keep the b most significant bits of each 8-bit value (b per image, drawn from
    [low, high) of ``factor``: f → (1, f), a pair, in [1, 8]; b = low when low = high)."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = _factor(factor, (1, 8), self._who)
        self.value_range = sorted(_value_range(value_range, self._who))

    def get_random_transformation(self, data, training=True, seed=None):
        n = _batch_size(data, self._who)
        lo, hi = self.factor
        if lo != hi:
            bits = self._rng(seed).integers(int(lo), int(hi), size=n).astype(np.uint8)
        else:
            bits = np.full(n, int(lo), dtype=np.uint8)
        return {"shift_factor": (np.uint8(8) - bits).astype(np.uint8)}

    def transform_images(self, images, transformation=None, training=True):
        x = _array(images)
        if not training:
            return x
        shift = np.asarray(transformation["shift_factor"], dtype=np.uint8).reshape(-1, 1, 1, 1)
        x = _to_range(x, self.value_range, (0, 255))
        x = np.clip(np.asarray(x), 0, 255).astype(np.uint8)
        x = np.left_shift(np.right_shift(x, shift), shift).astype(_F32)
        return np.asarray(_to_range(x, (0, 255), self.value_range), dtype=_F32)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": list(self.value_range),
                    "seed": self.seed})
        return cfg


class RandomSaturation(_ColorLayer):
    """Scale each image's HSV saturation by f/(1 − f + ε), f ~ U(factor) (f → (−f, f), a pair,
    in [−1, 1] as Keras), the saturation clipped to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = _factor(factor, (-1, 1), self._who)
        self.value_range = sorted(_value_range(value_range, self._who))

    def get_random_transformation(self, data, training=True, seed=None):
        n = _batch_size(data, self._who)
        f = _uniform(self._rng(seed), self.factor[0], self.factor[1], n)
        return {"factor": f / (_F32(1) - f + _F32(_EPSILON))}

    def transform_images(self, images, transformation=None, training=True):
        x = _array(images)
        if not training:
            return x
        x = np.asarray(x, dtype=_F32)
        adjust = np.asarray(transformation["factor"], dtype=_F32).reshape(-1, 1, 1)
        hsv = image_color.rgb_to_hsv(x, data_format=self.data_format).data
        ch = -3 if self.data_format == "channels_first" else -1
        h, s, v = (np.take(hsv, i, axis=ch) for i in range(3))
        s = np.clip(s * adjust, self.value_range[0], self.value_range[1]).astype(_F32, copy=False)
        return image_color.hsv_to_rgb(np.stack([h, s, v], axis=ch),
                                      data_format=self.data_format).data

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": list(self.value_range),
                    "seed": self.seed})
        return cfg


class RandomSharpness(_ColorLayer):
    """y = x + (1 − 2f)·(blur(x) − x), clipped to ``value_range``; blur is the 3×3 kernel
    [[1, 1, 1], [1, 5, 1], [1, 1, 1]]/13 with zero padding; f ~ U(factor) per image,
    f → (0, f) or a pair in [0, 1] (f = 0.5 leaves the image as it is)."""

    _cast_inactive = True

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = _factor(factor, (0, 1), self._who)
        self.value_range = sorted(_value_range(value_range, self._who))

    def get_random_transformation(self, data, training=True, seed=None):
        n = _batch_size(data, self._who)
        return {"factor": _uniform(self._rng(seed), self.factor[0], self.factor[1], n)}

    def transform_images(self, images, transformation=None, training=True):
        x = np.asarray(_array(images), dtype=_F32)
        if not training:
            return x
        x = _channels_last(x, self.data_format)
        s = (np.asarray(transformation["factor"], dtype=_F32) * _F32(2)).reshape(-1, 1, 1, 1)
        h, w = x.shape[1], x.shape[2]
        p = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
        a, b = _F32(1.0 / 13.0), _F32(5.0 / 13.0)
        smooth = np.zeros_like(x)
        for dy in range(3):
            for dx in range(3):
                smooth += p[:, dy:dy + h, dx:dx + w, :] * (b if dy == dx == 1 else a)
        y = x + (_F32(1) - s) * (smooth - x)
        y = np.clip(y, self.value_range[0], self.value_range[1]).astype(_F32, copy=False)
        return _channels_back(y, self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "value_range": list(self.value_range),
                    "seed": self.seed})
        return cfg


class RandomColorJitter(_ColorLayer):
    """RandomBrightness, RandomContrast, RandomSaturation and RandomHue in that order, each one
    present when its factor is given (each with that layer's meaning of the factor)."""

    def __init__(self, value_range=(0, 255), brightness_factor=None, contrast_factor=None,
                 saturation_factor=None, hue_factor=None, seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.value_range = _value_range(value_range, self._who)
        self.brightness_factor = brightness_factor
        self.contrast_factor = contrast_factor
        self.saturation_factor = saturation_factor
        self.hue_factor = hue_factor
        from .preprocessing import RandomBrightness, RandomContrast
        vr = tuple(self.value_range)
        # brightness and contrast draw from generators of their own (seeds apart from this
        # layer's, which saturation and hue draw from), so the four draws are independent
        self.random_brightness = None if brightness_factor is None else RandomBrightness(
            factor=brightness_factor, value_range=vr,
            seed=None if self.seed is None else self.seed + 1)
        self.random_contrast = None if contrast_factor is None else RandomContrast(
            factor=contrast_factor, value_range=vr,
            seed=None if self.seed is None else self.seed + 2)
        self.random_saturation = None if saturation_factor is None else RandomSaturation(
            factor=saturation_factor, value_range=vr, seed=self.seed)
        self.random_hue = None if hue_factor is None else RandomHue(
            factor=hue_factor, value_range=vr, seed=self.seed)

    def transform_images(self, images, transformation=None, training=True):
        x = np.asarray(_array(images), dtype=_F32)
        if not training:
            return x
        x = np.ascontiguousarray(_channels_last(x, self.data_format))
        for layer in (self.random_brightness, self.random_contrast):
            if layer is not None:
                x = np.asarray(layer(Tensor(x), training=True).data, dtype=_F32)
        for layer in (self.random_saturation, self.random_hue):
            if layer is not None:
                x = layer.transform_images(x, layer.get_random_transformation(x, seed=self._rng()))
        return _channels_back(np.asarray(x, dtype=_F32), self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"value_range": self.value_range, "brightness_factor": self.brightness_factor,
                    "contrast_factor": self.contrast_factor,
                    "saturation_factor": self.saturation_factor, "hue_factor": self.hue_factor,
                    "seed": self.seed})
        return cfg


# ------------------------------------------------------------------- mixing
class MixUp(_ImageAugmentation):
    """x ← λ·x + (1 − λ)·x[π] and labels alike, λ ~ Beta(alpha, alpha) per image, π a random
    permutation of the batch (Zhang et al., mixup).  Bounding boxes of both images are kept."""

    def __init__(self, alpha=0.2, data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        if not _is_number(alpha) or alpha <= 0:
            raise ValueError(f"{self._who}: alpha must be a positive number, received {alpha!r}")
        self.alpha = alpha

    def get_random_transformation(self, data, training=True, seed=None):
        n = _batch_size(data, self._who)
        rng = self._rng(seed)
        order = rng.permutation(n).astype(np.int64)
        weight = rng.beta(self.alpha, self.alpha, size=n).astype(_F32)
        return {"mix_weight": weight, "permutation_order": order}

    def transform_images(self, images, transformation=None, training=True):
        x = np.asarray(_array(images), dtype=_F32)
        if not training:
            return x
        w = np.asarray(transformation["mix_weight"], dtype=_F32).reshape(-1, 1, 1, 1)
        return w * x + (_F32(1) - w) * x[np.asarray(transformation["permutation_order"])]

    def transform_labels(self, labels, transformation=None, training=True):
        y = _array(labels)
        if not training:
            return y
        y = y.astype(_F32) if y.dtype.kind != "f" else y
        w = np.asarray(transformation["mix_weight"], dtype=_F32).reshape(-1, *([1] * (y.ndim - 1)))
        return w * y + (_F32(1) - w) * y[np.asarray(transformation["permutation_order"])]

    def transform_segmentation_masks(self, segmentation_masks, transformation=None, training=True):
        m = _array(segmentation_masks)
        if not training:
            return m
        w = np.asarray(transformation["mix_weight"], dtype=_F32).reshape(-1, 1, 1, 1)
        return w * m + (_F32(1) - w) * m[np.asarray(transformation["permutation_order"])]

    def transform_bounding_boxes(self, bounding_boxes, transformation=None, training=True):
        if not training:
            return bounding_boxes
        order = np.asarray(transformation["permutation_order"])
        boxes, labels = _array(bounding_boxes["boxes"]), _array(bounding_boxes["labels"])
        return {"boxes": np.concatenate([boxes, boxes[order]], axis=1),
                "labels": np.concatenate([labels, labels[order]], axis=1)}

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"alpha": self.alpha, "seed": self.seed})
        return cfg


class CutMix(_ImageAugmentation):
    """Paste into each image a box cut from another image of the batch (Yun et al., CutMix):
    λ ~ Beta(α, α) with α ~ U(factor) (+1e-6), the box √(1 − λ) of each side at a uniform
    position, labels mixed by the area kept.  A single image is returned as it is."""

    _cast_inactive = True

    def __init__(self, factor=1.0, seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = _factor(factor, (0, 1), self._who)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        images = data["images"] if isinstance(data, dict) else data
        shape = tuple(np.shape(_array(images)))
        if len(shape) == 3:
            return None
        n = shape[0]
        if self.data_format == "channels_first":
            height, width, channels = shape[2], shape[3], shape[1]
        else:
            height, width, channels = shape[1], shape[2], shape[3]
        rng = self._rng(seed)
        alpha = float(_uniform(rng, self.factor[0], self.factor[1], ())) + 1e-6
        weight = rng.beta(alpha, alpha, size=n).astype(_F32)
        ratio = np.sqrt(_F32(1) - weight)

        def bounds(length):
            crop = (ratio * _F32(length)).astype(_F32)
            start = _uniform(rng, 0, 1, n) * (_F32(length) - crop)
            return start, start + crop

        x0, x1 = bounds(width)
        y0, y1 = bounds(height)
        gx = np.arange(width, dtype=_F32)[None, None, :]
        gy = np.arange(height, dtype=_F32)[None, :, None]
        mask = ((gx >= x0[:, None, None]) & (gx < x1[:, None, None])
                & (gy >= y0[:, None, None]) & (gy < y1[:, None, None]))
        ch = 1 if self.data_format == "channels_first" else 3
        mask = np.repeat(np.expand_dims(mask, ch), channels, axis=ch)
        mix = (_F32(1) - (x1 - x0) * (y1 - y0) / _F32(width * height)).astype(_F32)
        order = rng.permutation(n).astype(np.int32)
        return {"permutation_order": order, "batch_masks": mask, "mix_weight": mix}

    def transform_images(self, images, transformation=None, training=True):
        x = np.asarray(_array(images), dtype=_F32)
        if not training or transformation is None:
            return x
        order = np.asarray(transformation["permutation_order"])
        return np.where(np.asarray(transformation["batch_masks"]), x[order], x)

    def transform_labels(self, labels, transformation=None, training=True):
        y = _array(labels)
        if not training or transformation is None:
            return y
        y = y.astype(_F32) if y.dtype.kind != "f" else y
        w = np.asarray(transformation["mix_weight"], dtype=_F32).reshape(-1, *([1] * (y.ndim - 1)))
        return w * y + (_F32(1) - w) * y[np.asarray(transformation["permutation_order"])]

    def transform_segmentation_masks(self, segmentation_masks, transformation=None, training=True):
        m = np.asarray(_array(segmentation_masks), dtype=_F32)
        if not training or transformation is None:
            return m
        box = np.asarray(transformation["batch_masks"])
        box = box[:, :1] if self.data_format == "channels_first" else box[..., :1]
        return np.where(box, m[np.asarray(transformation["permutation_order"])], m)

    def transform_bounding_boxes(self, bounding_boxes, transformation=None, training=True):
        raise NotImplementedError(f"{self._who}: CutMix does not transform bounding boxes "
                                  f"(neither does Keras)")

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"factor": list(self.factor), "seed": self.seed})
        return cfg


# ------------------------------------------------------ composed policies
def _geometric(name):
    """The geometric augmentation layer class ``name`` (imported when first needed)."""
    try:
        from . import image_geometric
        cls = getattr(image_geometric, name, None)
    except ImportError:
        cls = None
    if cls is None:
        from . import preprocessing
        cls = getattr(preprocessing, name, None)
    if cls is None:
        raise NotImplementedError(f"{name} is not available in axone.layers, which this policy "
                                  f"needs")
    return cls


class _Policy(_ImageAugmentation):
    """RandAugment and AugMix: layers applied to the batch, channels-last inside."""

    _cast_inactive = True
    _NAMES = ()

    def _init_policy(self, value_range, factor, interpolation):
        self.value_range = _value_range(value_range, self._who)
        self.factor = _factor(factor, (0, 1), self._who)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"{self._who}: interpolation must be 'bilinear' or 'nearest', "
                             f"received {interpolation!r}")
        self.interpolation = interpolation
        self._layers = None

    def _augmenters(self):
        if self._layers is not None:
            return self._layers
        f, vr, seed, interp = self.factor, tuple(self.value_range), self.seed, self.interpolation
        make = {
            "random_shear": lambda: _geometric("RandomShear")(
                x_factor=f, y_factor=f, interpolation=interp, seed=seed),
            "random_translation": lambda: _geometric("RandomTranslation")(
                height_factor=f, width_factor=f, interpolation=interp, seed=seed),
            "random_rotation": lambda: _geometric("RandomRotation")(
                factor=f, interpolation=interp, seed=seed),
            "random_brightness": lambda: _geometric("RandomBrightness")(
                factor=f, value_range=vr, seed=seed),
            "random_contrast": lambda: _geometric("RandomContrast")(
                factor=f, value_range=vr, seed=seed),
            "random_color_degeneration": lambda: RandomColorDegeneration(
                factor=f, value_range=vr, seed=seed),
            "random_sharpness": lambda: RandomSharpness(factor=f, value_range=vr, seed=seed),
            "random_posterization": lambda: RandomPosterization(
                factor=max(1, int(8 * f[1])), value_range=vr, seed=seed),
            "solarization": lambda: Solarization(addition_factor=f, threshold_factor=f,
                                                 value_range=vr, seed=seed),
            "auto_contrast": lambda: AutoContrast(value_range=vr),
            "equalization": lambda: Equalization(value_range=vr),
        }
        self._layers = [(name, make[name]()) for name in self._NAMES]
        return self._layers

    @staticmethod
    def _apply(layer, x):
        return np.asarray(layer(Tensor(np.ascontiguousarray(x, dtype=_F32)), training=True).data,
                          dtype=_F32)

    def transform_bounding_boxes(self, bounding_boxes, transformation=None, training=True):
        raise NotImplementedError(f"{self._who}: bounding boxes through {type(self).__name__} are "
                                  f"not supported")

    def transform_segmentation_masks(self, segmentation_masks, transformation=None, training=True):
        raise NotImplementedError(f"{self._who}: segmentation masks through "
                                  f"{type(self).__name__} are not supported")


class RandAugment(_Policy):
    """Apply ``num_ops`` augmentations, each drawn uniformly (for the whole batch) from shear,
    translation, rotation, brightness, colour degeneration, contrast, sharpness,
    posterization, solarization, auto-contrast and equalization, all at strength ``factor``
    (Cubuk et al., RandAugment)."""

    _NAMES = ("random_shear", "random_translation", "random_rotation", "random_brightness",
              "random_color_degeneration", "random_contrast", "random_sharpness",
              "random_posterization", "solarization", "auto_contrast", "equalization")

    def __init__(self, value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear",
                 seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        if isinstance(num_ops, bool) or not isinstance(num_ops, (int, np.integer)) or num_ops < 0:
            raise ValueError(f"{self._who}: num_ops must be a non-negative integer, "
                             f"received {num_ops!r}")
        self.num_ops = int(num_ops)
        self._init_policy(value_range, factor, interpolation)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        idx = self._rng(seed).integers(0, len(self._NAMES), size=self.num_ops)
        return {"layer_idxes": idx.astype(np.int32)}

    def transform_images(self, images, transformation=None, training=True):
        x = np.asarray(_array(images), dtype=_F32)
        if not training or transformation is None:
            return x
        layers = self._augmenters()
        x = _channels_last(x, self.data_format)
        for i in np.asarray(transformation["layer_idxes"]).reshape(-1):
            x = self._apply(layers[int(i)][1], x)
        return _channels_back(x, self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"value_range": self.value_range, "num_ops": self.num_ops,
                    "factor": list(self.factor), "interpolation": self.interpolation,
                    "seed": self.seed})
        return cfg


class AugMix(_Policy):
    """AugMix (Hendrycks et al.): ``num_chains`` chains of up to ``chain_depth`` random
    augmentations each, mixed with Dirichlet(alpha) weights, then blended with the original
    image by m ~ Beta(alpha, alpha): y = m·x + (1 − m)·Σ wᵢ·chainᵢ(x), clipped to
    ``value_range``.  ``all_ops=False`` leaves out brightness, colour degeneration, contrast and
    sharpness."""

    _ALL = ("random_shear", "random_translation", "random_rotation", "random_posterization",
            "solarization", "auto_contrast", "equalization", "random_brightness",
            "random_color_degeneration", "random_contrast", "random_sharpness")

    def __init__(self, value_range=(0, 255), num_chains=3, chain_depth=3, factor=0.3, alpha=1.0,
                 all_ops=True, interpolation="bilinear", seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        for name, v in (("num_chains", num_chains), ("chain_depth", chain_depth)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{self._who}: {name} must be a positive integer, received {v!r}")
        if not _is_number(alpha) or alpha <= 0:
            raise ValueError(f"{self._who}: alpha must be a positive number, received {alpha!r}")
        self.num_chains, self.chain_depth = int(num_chains), int(chain_depth)
        self.alpha = alpha
        self.all_ops = bool(all_ops)
        self._NAMES = self._ALL if self.all_ops else self._ALL[:7]
        self._init_policy(value_range, factor, interpolation)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        rng = self._rng(seed)
        g = rng.gamma(self.alpha, size=self.num_chains)
        weights = (g / g.sum()).astype(_F32)
        sample = _F32(rng.beta(self.alpha, self.alpha))
        n = len(self._NAMES)
        chains = [[int(c) for c in rng.integers(0, n + 1, size=self.chain_depth) if c < n]
                  for _ in range(self.num_chains)]
        return {"chain_mixing_weights": weights, "weight_sample": sample,
                "chain_transforms": chains}

    def transform_images(self, images, transformation=None, training=True):
        x = np.asarray(_array(images), dtype=_F32)
        if not training or transformation is None:
            return x
        layers = self._augmenters()
        x = _channels_last(x, self.data_format)
        weights = np.asarray(transformation["chain_mixing_weights"], dtype=_F32)
        m = _F32(transformation["weight_sample"])
        mixed = np.zeros_like(x)
        for w, chain in zip(weights, transformation["chain_transforms"]):
            y = x.copy()
            for i in chain:
                y = self._apply(layers[int(i)][1], y)
            mixed += y * w
        y = np.clip(m * x + (_F32(1) - m) * mixed, self.value_range[0], self.value_range[1])
        return _channels_back(y.astype(_F32, copy=False), self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"value_range": self.value_range, "num_chains": self.num_chains,
                    "chain_depth": self.chain_depth, "factor": list(self.factor),
                    "alpha": self.alpha, "all_ops": self.all_ops,
                    "interpolation": self.interpolation, "seed": self.seed})
        return cfg


# ------------------------------------------------------------------ pipeline
class Pipeline(Layer):
    """Apply ``layers`` one after the other (``keras.layers.Pipeline``); ``training`` is passed
    to each layer whose call takes it, when the call says."""

    _autocast = False

    def __init__(self, layers, name=None):
        super().__init__(name=name)
        if not isinstance(layers, (list, tuple)) or not all(isinstance(l, Layer) for l in layers):
            raise TypeError(f"Pipeline: layers must be a list of layers, received {layers!r}")
        self._pipeline_layers = list(layers)

    @property
    def layers(self):
        return self._pipeline_layers

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=True):
        x = inputs
        for layer in self._pipeline_layers:
            x = layer(x, training=training) if training is not None else layer(x)
        return x

    def compute_output_shape(self, input_shape):
        for layer in self._pipeline_layers:
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    def get_config(self):
        from .serialization import serialize
        return {"layers": [serialize(l) for l in self._pipeline_layers], "name": self.name}

    @classmethod
    def from_config(cls, config):
        from .serialization import deserialize
        layers = config.get("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError("`Pipeline` config must contain a `layers` key mapping to a list of "
                             f"serialized layers. Received config with layers={layers!r}.")
        config = dict(config)
        config["layers"] = [deserialize(l) for l in layers]
        return cls(**config)
