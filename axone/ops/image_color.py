"""Colour-space conversions of images, as ``keras.ops.image`` has them.

Images are 3-D (one image) or 4-D (a batch); the channel axis is the last one for
``data_format="channels_last"`` and the third from the end for ``"channels_first"``;
``None`` is ``keras.config.image_data_format()`` ("channels_last" unless set).

Grayscale (ITU-R 601 luma, the weights Keras and torchvision use):
    Y = 0.2989·R + 0.587·G + 0.114·B,     ∂Y/∂(R, G, B) = (0.2989, 0.587, 0.114)

RGB → HSV (dm_pix's formulas; channels with |x| < eps are read as 0):
    V = max(R, G, B),  m = min(R, G, B),  Δ = V − m
    S = Δ / V  (0 where V = 0)
    H = (G − B)/(6Δ)        where V = R   (+1 where negative)
      = (B − R)/(6Δ) + 1/3  where V = G ≠ R
      = (R − G)/(6Δ) + 2/3  otherwise     (H = 0 where Δ = 0)
    With (p, q) the two channels of H's numerator and c its constant:
    dH = (dp − dq)/(6Δ) − (p − q)/(6Δ²)·dΔ,   dΔ = dV − dm,
    dS = dΔ/V − Δ/V²·dV,   dV = d(channel of the maximum)

HSV → RGB:
    d = 6·(H mod 1),  fR = clip(|d − 3| − 1, 0, 1),  fG = clip(2 − |d − 2|, 0, 1),
    fB = clip(2 − |d − 4|, 0, 1),   C = V·(1 − S + S·f_C)  for C in R, G, B
    ∂C/∂V = 1 − S + S·f_C,  ∂C/∂S = V·(f_C − 1),  ∂C/∂H = V·S·∂f_C/∂H,
    ∂fR/∂H = 6·sign(d − 3), ∂fG/∂H = −6·sign(d − 2), ∂fB/∂H = −6·sign(d − 4)
    inside each clip's open range, 0 outside.

Each conversion computes with the array module of its images (``xp = array_module(x)``),
forward and backward: on a device the same formulas run as the device module's routines.
"""
import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..config import standardize_data_format
from ..device import array_module

__all__ = ["rgb_to_grayscale", "rgb_to_hsv", "hsv_to_rgb"]

_GRAY = (0.2989, 0.587, 0.114)


def _images(op, images, data_format, need_float):
    if not isinstance(images, Tensor) and array_module(images) is not np:
        images = Tensor(images)                 # a device array stays on its device
    if not isinstance(images, Tensor):
        try:
            arr = np.asarray(images)
        except Exception as e:  # pragma: no cover - exotic objects
            raise TypeError(f"{op}: expected an array of images, received {type(images).__name__}") from e
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"{op}: expected a numeric array of images, received dtype {arr.dtype}")
        images = Tensor(arr)
    fmt = standardize_data_format(data_format, op)
    if images.ndim not in (3, 4):
        raise ValueError(f"{op}: invalid images rank: expected rank 3 (single image) or rank 4 "
                         f"(batch of images). Received input with shape: images.shape={images.shape}")
    if need_float and images.dtype.kind != "f":
        raise ValueError(f"{op}: invalid images dtype: expected float dtype. "
                         f"Received: images.dtype={images.dtype}")
    axis = images.ndim - 3 if fmt == "channels_first" else images.ndim - 1
    return images, axis


# ------------------------------------------------------------------ grayscale
class RGBToGrayscale(Function):
    """Y = Σ_c w_c·X_c over the channel axis (3 channels), or a copy (1 channel)."""

    def forward(self, x):
        axis = self.axis
        if x.shape[axis] == 1:
            return x.copy()
        xp = array_module(x)
        r, g, b = xp.moveaxis(x, axis, 0)
        y = _GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b
        return xp.expand_dims(y.astype(x.dtype, copy=False), axis)

    def backward(self, g):
        axis = self.axis
        if self.channels == 1:  # a copy: identity
            return (g,)
        w = array_module(g).asarray(_GRAY, dtype=g.dtype).reshape(
            [3 if i == axis else 1 for i in range(g.ndim)])
        return (g * w,)


def rgb_to_grayscale(images, data_format=None):
    """Convert RGB images (3 channels) to grayscale (1 channel), keeping the dtype.

    ``Y = 0.2989·R + 0.587·G + 0.114·B``; a 1-channel input is returned as a copy.

    Args:
        images: one image (3-D) or a batch (4-D).
        data_format: ``"channels_last"``, ``"channels_first"`` or None (image_data_format()).
    """
    images, axis = _images("rgb_to_grayscale", images, data_format, need_float=False)
    if images.shape[axis] not in (1, 3):
        raise ValueError("rgb_to_grayscale: invalid channel size: expected 3 (RGB) or 1 (Grayscale). "
                         f"Received input with shape: images.shape={images.shape}")
    return RGBToGrayscale.apply(images, axis=axis, channels=images.shape[axis])


# ------------------------------------------------------------------------ HSV
def _check_three(op, images, axis):
    if images.shape[axis] != 3:
        raise ValueError(f"{op}: invalid channel size: expected 3 channels. "
                         f"Received input with shape: images.shape={images.shape}")


class RGBToHSV(Function):
    """(R, G, B) → (H, S, V) along the channel axis; see the module docstring."""

    def forward(self, x):
        axis = self.axis
        xp = array_module(x)
        dt = x.dtype
        eps = np.finfo(dt).eps
        x = xp.where(xp.abs(x) < eps, dt.type(0), x)
        r, g, b = xp.moveaxis(x, axis, 0)
        value = xp.maximum(xp.maximum(r, g), b)
        minimum = xp.minimum(xp.minimum(r, g), b)
        rng = value - minimum
        one = dt.type(1)
        safe_value = xp.where(value > 0, value, one)
        safe_range = xp.where(rng > 0, rng, one)
        sat = xp.where(value > 0, rng / safe_value, dt.type(0))
        norm = xp.divide(one, safe_range * dt.type(6))
        # which channel holds the maximum, in Keras's order of precedence: R, then G, then B
        is_r = value == r
        is_g = (value == g) & ~is_r
        hue = xp.where(value == g, norm * (b - r) + dt.type(2.0 / 6.0), norm * (r - g) + dt.type(4.0 / 6.0))
        hue = xp.where(is_r, norm * (g - b), hue)
        hue = xp.where(rng > 0, hue, dt.type(0)) + (hue < 0).astype(dt)
        if self.needs[0]:
            self.saved = (x, r, g, b, value, minimum, rng, is_r, is_g, norm)
        return xp.stack([hue, sat, value], axis=axis)

    def backward(self, grad):
        axis = self.axis
        xp = array_module(grad)
        x, r, g, b, value, minimum, rng, is_r, is_g, norm = self.saved
        gh, gs, gv = xp.moveaxis(grad, axis, 0)
        is_b = ~(is_r | is_g)
        pos_r = rng > 0
        pos_v = value > 0
        # the channel of the minimum (R, then G, then B where channels tie)
        min_r = minimum == r
        min_g = (minimum == g) & ~min_r
        min_b = ~(min_r | min_g)
        # H = (p − q)·norm + c with norm = 1/(6Δ)
        num = xp.where(is_r, g - b, xp.where(is_g, b - r, r - g))
        dh_ddelta = xp.where(pos_r, -num * norm * norm * 6, 0)  # −(p − q)/(6Δ²)
        dh_dp = xp.where(pos_r, norm, 0)
        safe_v = xp.where(pos_v, value, 1)
        ds_ddelta = xp.where(pos_v, 1 / safe_v, 0)
        ds_dv = xp.where(pos_v, -rng / (safe_v * safe_v), 0)
        g_delta = gh * dh_ddelta + gs * ds_ddelta  # dL/dΔ
        g_max = gv + gs * ds_dv + g_delta          # dL/dV (Δ = V − m)
        g_min = -g_delta
        gp = gh * dh_dp                            # dL/dp = −dL/dq
        out_r = g_max * is_r + g_min * min_r + xp.where(is_g, -gp, xp.where(is_b, gp, 0))
        out_g = g_max * is_g + g_min * min_g + xp.where(is_r, gp, xp.where(is_b, -gp, 0))
        out_b = g_max * is_b + g_min * min_b + xp.where(is_r, -gp, xp.where(is_g, gp, 0))
        gx = xp.stack([out_r, out_g, out_b], axis=axis).astype(grad.dtype, copy=False)
        gx = xp.where(x == 0, 0, gx).astype(grad.dtype, copy=False)  # the |x| < eps clamp
        return (gx,)


def rgb_to_hsv(images, data_format=None):
    """Convert RGB images to HSV (float images; well defined for values in [0, 1]).

    All HSV values are in [0, 1]: hue 0 is pure red, 1/3 pure green, 2/3 pure blue.

    Args:
        images: one image (3-D) or a batch (4-D), float dtype, 3 channels.
        data_format: ``"channels_last"``, ``"channels_first"`` or None (image_data_format()).
    """
    images, axis = _images("rgb_to_hsv", images, data_format, need_float=True)
    _check_three("rgb_to_hsv", images, axis)
    return RGBToHSV.apply(images, axis=axis)


class HSVToRGB(Function):
    """(H, S, V) → (R, G, B) along the channel axis; see the module docstring."""

    def forward(self, x):
        axis = self.axis
        xp = array_module(x)
        dt = x.dtype
        h, s, v = xp.moveaxis(x, axis, 0)
        d = xp.mod(h, dt.type(1)) * dt.type(6)
        fr = xp.clip(xp.abs(d - 3) - 1, 0, 1).astype(dt, copy=False)
        fg = xp.clip(2 - xp.abs(d - 2), 0, 1).astype(dt, copy=False)
        fb = xp.clip(2 - xp.abs(d - 4), 0, 1).astype(dt, copy=False)
        one_minus_s = 1 - s
        out = [v * (one_minus_s + s * f) for f in (fr, fg, fb)]
        if self.needs[0]:
            self.saved = (d, s, v, (fr, fg, fb))
        return xp.stack(out, axis=axis).astype(dt, copy=False)

    def backward(self, grad):
        axis = self.axis
        xp = array_module(grad)
        d, s, v, fs = self.saved
        gc = xp.moveaxis(grad, axis, 0)
        # ∂f/∂d inside each clip's range
        pre = (xp.abs(d - 3) - 1, 2 - xp.abs(d - 2), 2 - xp.abs(d - 4))
        slope = (xp.sign(d - 3), -xp.sign(d - 2), -xp.sign(d - 4))
        gh = xp.zeros_like(v)
        gs = xp.zeros_like(v)
        gv = xp.zeros_like(v)
        for c in range(3):
            inside = (pre[c] > 0) & (pre[c] < 1)
            gh = gh + gc[c] * v * s * xp.where(inside, 6 * slope[c], 0)
            gs = gs + gc[c] * v * (fs[c] - 1)
            gv = gv + gc[c] * (1 - s + s * fs[c])
        return (xp.stack([gh, gs, gv], axis=axis).astype(grad.dtype, copy=False),)


def hsv_to_rgb(images, data_format=None):
    """Convert HSV images to RGB (float images; well defined for values in [0, 1]).

    Args:
        images: one image (3-D) or a batch (4-D), float dtype, 3 channels.
        data_format: ``"channels_last"``, ``"channels_first"`` or None (image_data_format()).
    """
    images, axis = _images("hsv_to_rgb", images, data_format, need_float=True)
    _check_three("hsv_to_rgb", images, axis)
    return HSVToRGB.apply(images, axis=axis)
