"""``keras.ops.image``: resampling, warping, filtering and patch ops on image Tensors.

Images are one image of rank 3 or a batch of rank 4, ``data_format`` "channels_last"
(N, H, W, C) or "channels_first" (N, C, H, W), as Keras 3 has them; ``None`` is
``keras.config.image_data_format()`` ("channels_last" unless set).

One mechanism samples images at given points: :class:`Resample`, the gather
y[o] = Σₖ wₖ[o] · x[iₖ[o]] over the neighbours iₖ of each output point (one for
"nearest", 2ᵈ for linear interpolation in d dimensions) with weights wₖ fixed by the
coordinates; its backward scatters dL/dx[i] = Σ_{k,o: iₖ[o] = i} wₖ[o] · G[o].
``map_coordinates``, ``affine_transform``, ``perspective_transform`` and
``elastic_transform`` build the points and call it (gradients flow to the image, the
coordinates are constants).  A neighbour outside the image is fetched as ``fill_mode``
says: "reflect" (d c b a | a b c d | d c b a), "mirror" (d c b | a b c d | c b a),
"wrap" (a b c d | a b c d), "nearest" (a a a | a b c d | d d d) or "constant"
(k k k | a b c d | k k k, k = ``fill_value``).

Resizing is two products with fixed interpolation matrices, y = R_h · x · R_wᵀ per image
and channel (so dL/dx = R_hᵀ · G · R_w), sampling at half-pixel centres like Keras's torch
backend (``align_corners=False``; "nearest" is torch's "nearest-exact"; bicubic a = −0.75;
``antialias=True`` widens the bilinear / bicubic filter by the downscaling factor, as
torch does).  The filters (``gaussian_blur``, ``sobel_edges``, ``ssim``) and
``extract_patches`` are convolutions with fixed kernels, differentiable through the conv node.

Every op computes with the array module of its images (``xp = array_module(...)``): the
sampling points, the resampler's neighbours and weights and the elastic displacement fields
are computed on the images' device (a transform, a point set or a random field drawn on the
host by the seed's generator is moved there first); the fixed interpolation matrices and
filter kernels are built on the host and moved there as constants.
"""
import itertools
import numbers

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..config import standardize_data_format
from ..device import array_module, to_numpy
from . import math as M
from .conv import conv as _conv
from .image_color import hsv_to_rgb, rgb_to_grayscale, rgb_to_hsv

__all__ = ["affine_transform", "crop_images", "elastic_transform", "extract_patches",
           "extract_patches_3d", "gaussian_blur", "hsv_to_rgb", "map_coordinates", "pad_images",
           "perspective_transform", "resize", "rgb_to_grayscale", "rgb_to_hsv",
           "scale_and_translate", "sobel_edges", "ssim"]

_RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
_RESIZE_UNSUPPORTED = ("lanczos3", "lanczos5", "area")
_WARP_INTERPOLATIONS = {"nearest": 0, "bilinear": 1}
_FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


# ------------------------------------------------------------------ helpers
def _tensor(x, op, name="images"):
    if isinstance(x, Tensor):
        return x
    if array_module(x) is not np:
        return Tensor(x)                       # a device array stays on its device
    try:
        return M._t(np.asarray(x), op)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a Tensor or an array, received "
                        f"{type(x).__name__}") from None


def _images(images, op, ranks=(3, 4), name="images"):
    x = _tensor(images, op, name)
    if x.ndim not in ranks:
        what = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{op}: invalid {name} rank: expected rank {what} (a single image or a "
                         f"batch of images), received input with shape {name}.shape={x.shape}")
    return x


def _to_nhwc(x, data_format):
    """x as a channels-last batch, and whether it was a single image."""
    single = x.ndim == 3
    if single:
        x = M.reshape(x, (1,) + x.shape)
    if data_format == "channels_first":
        x = M.transpose(x, (0, 2, 3, 1))
    return x, single


def _from_nhwc(y, data_format, single):
    if data_format == "channels_first":
        y = M.transpose(y, (0, 3, 1, 2))
    if single:
        y = M.reshape(y, y.shape[1:])
    return y


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _as_int(v, op, name, low=0):
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < low:
        raise ValueError(f"{op}: {name} must be an integer >= {low}, received {name}={v!r}")
    return int(v)


def _compute_dtype(x):
    """The float dtype images are computed in (integers: floatx)."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(backend.floatx())


def _restore_dtype(y, dtype):
    """Cast a float result back to the images' dtype; integers are rounded and saturated."""
    dtype = np.dtype(dtype)
    if y.dtype == dtype:
        return y
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        xp = array_module(y.data)
        return Tensor(xp.clip(xp.round(y.data), info.min, info.max).astype(dtype))
    if dtype.kind == "b":
        return Tensor(y.data != 0)
    return M.cast(y, dtype)


def _host(v):
    """A value given as a Tensor, an array (host or device) or a list, as a host ndarray."""
    v = v.data if isinstance(v, Tensor) else v
    return np.asarray(v) if type(v) is np.ndarray or array_module(v) is np else to_numpy(v)


def _floats(v, op, name, device=False):
    """``v`` as a finite float64 array: on the host, or with ``device`` a device array kept on
    its device (checked there)."""
    d = v.data if isinstance(v, Tensor) else v
    xp = array_module(d)
    if xp is np or not device:
        arr = np.asarray(d if xp is np else to_numpy(d), dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{op}: {name} must be finite, received {v!r}")
        return arr
    arr = d.astype(np.float64, copy=False)
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(f"{op}: {name} must be finite, received non-finite values")
    return arr


# ----------------------------------------------------------- the resampler
class Resample(Function):
    """y[o, b] = Σₖ wₖ[o] · x[iₖ[o], b] + f[o]  for x seen as (S, B): S sampled places, B values
    each (the channels, or 1);  dL/dx[i, b] = Σ_{k,o: iₖ[o] = i} wₖ[o] · G[o, b].

    ``taps`` is a list of (index, weight) arrays of the output's point shape, ``fill`` the
    constant part (weights of neighbours outside the image times ``fill_value``)."""

    def forward(self, x):
        x2 = x.reshape(self.places, -1)
        out = None
        for idx, w in self.taps:
            v = x2[idx] if w is None else w[..., None] * x2[idx]
            out = v if out is None else out + v
        if self.fill is not None:
            out = out + self.fill[..., None]
        return out.reshape(self.out_shape).astype(self.dtype, copy=False)

    def backward(self, g):
        xp = array_module(g)
        b = int(np.prod(self.block, dtype=np.int64))
        g2 = g.reshape(-1, b).astype(np.float64, copy=False)
        cols = xp.arange(b)
        gx = xp.zeros(self.places * b)
        for idx, w in self.taps:
            flat = (idx.reshape(-1, 1) * b + cols).ravel()
            vals = g2 if w is None else w.reshape(-1, 1) * g2
            gx += xp.bincount(flat, weights=vals.ravel(), minlength=self.places * b)
        return (gx.reshape(self.in_shape).astype(g.dtype, copy=False),)


def _fix_index(i, n, fill_mode):
    """Index i along an axis of length n, brought inside as ``fill_mode`` says."""
    xp = array_module(i)
    if fill_mode == "wrap":
        return xp.mod(i, n)
    if fill_mode == "reflect":        # half-sample symmetric: d c b a | a b c d | d c b a
        i = xp.mod(i, 2 * n)
        return xp.where(i >= n, 2 * n - 1 - i, i)
    if fill_mode == "mirror":         # whole-sample symmetric: d c b | a b c d | c b a
        if n == 1:
            return xp.zeros_like(i)
        s = n - 1
        return xp.abs(xp.mod(i + s, 2 * s) - s)
    return xp.clip(i, 0, n - 1)      # "nearest", and "constant" (masked afterwards)


def _axis_taps(coord, n, order, fill_mode):
    """[(fixed index, weight or None, inside or None)] of one axis (on ``coord``'s device)."""
    xp = array_module(coord)
    if order == 0:
        i = xp.round(coord).astype(np.int64)
        inside = ((i >= 0) & (i < n)) if fill_mode == "constant" else None
        return [(_fix_index(i, n, fill_mode), None, inside)]
    lo = xp.floor(coord)
    w_hi = coord - lo
    lo = lo.astype(np.int64)
    out = []
    for i, w in ((lo, 1.0 - w_hi), (lo + 1, w_hi)):
        inside = ((i >= 0) & (i < n)) if fill_mode == "constant" else None
        out.append((_fix_index(i, n, fill_mode), w, inside))
    return out


def _resample(x, coords, sizes, order, fill_mode, fill_value, lead=None):
    """Sample x at ``coords`` (one array per sampled axis, all of the points' shape).

    The sampled axes are ``x``'s first ``len(coords)`` axes after ``lead`` (an array of
    fixed integer indices into x's axis 0, of the points' shape: the image of each point),
    and the axes after them are carried along (channels).  The neighbours and weights are
    computed on x's device (host coordinates moved there)."""
    xp = array_module(x.data)
    strides = np.cumprod((1,) + tuple(sizes[::-1]))[::-1]    # row-major strides of (lead?, sizes)
    if xp is not np:
        coords = [_to_module(xp, c) for c in coords]
        lead = None if lead is None else _to_module(xp, lead)
    per_axis = [_axis_taps(_as_float64(xp, c), n, order, fill_mode)
                for c, n in zip(coords, sizes)]
    taps, fill = [], None
    for combo in itertools.product(*per_axis):
        idx = 0 if lead is None else lead * strides[0]
        w, inside = None, None
        for (i, wk, ok), st in zip(combo, strides[1:]):
            idx = idx + i * st
            if wk is not None:
                w = wk if w is None else w * wk
            if ok is not None:
                inside = ok if inside is None else inside & ok
        shape = np.broadcast_shapes(*[c.shape for c in coords])
        idx = xp.broadcast_to(idx, shape)
        if inside is not None:
            wf = xp.ones(shape) if w is None else xp.broadcast_to(w, shape)
            if fill_value != 0:
                part = xp.where(inside, 0.0, wf) * float(fill_value)
                fill = part if fill is None else fill + part
            w = xp.where(inside, wf, 0.0)
        taps.append((idx, None if w is None else xp.broadcast_to(w, shape)))
    pts = np.broadcast_shapes(*[c.shape for c in coords])
    places = int(strides[0]) * (1 if lead is None else x.shape[0])
    block = tuple(x.shape[(0 if lead is None else 1) + len(sizes):])
    dt = _compute_dtype(x)
    xin = x if x.dtype == dt else M.cast(x, dt)
    return Resample.apply(xin, taps=taps, fill=fill, places=places, block=block,
                          out_shape=tuple(pts) + block, in_shape=x.shape, dtype=dt)


def _to_module(xp, a):
    """Array ``a`` (host or device) as an array of module ``xp``."""
    m = array_module(a)
    if m is xp:
        return a
    return xp.asarray(a if m is np else to_numpy(a))


def _as_float64(xp, c):
    """A coordinate array as float64 (host: ``np.asarray``, as given before)."""
    if xp is np:
        return np.asarray(c, dtype=np.float64)
    return c.astype(np.float64, copy=False)


def _check_warp(op, interpolation, fill_mode):
    if interpolation not in _WARP_INTERPOLATIONS:
        raise ValueError(f"{op}: invalid value for argument `interpolation`: expected one of "
                         f"{sorted(_WARP_INTERPOLATIONS)}, received "
                         f"interpolation={interpolation!r}")
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"{op}: invalid value for argument `fill_mode`: expected one of "
                         f"{list(_FILL_MODES)}, received fill_mode={fill_mode!r}")


def _fill_number(fill_value, op):
    if not isinstance(fill_value, (numbers.Number, np.ndarray)) \
            and array_module(fill_value) is not np:
        fill_value = to_numpy(fill_value)      # a 0-d device array: its value
    if not _is_number(fill_value) and not (isinstance(fill_value, np.ndarray)
                                           and fill_value.ndim == 0):
        raise TypeError(f"{op}: fill_value must be a number, received {fill_value!r}")
    return float(fill_value)


def map_coordinates(inputs, coordinates, order, fill_mode="constant", fill_value=0):
    """Sample ``inputs`` (any rank d) at the points ``coordinates`` (shape (d, …), one
    coordinate per axis of inputs), by nearest neighbour (``order=0``) or multilinear
    interpolation (``order=1``): y[p] = Σ over the 2ᵈ corners of the cell around p of
    Π (1 − |pⱼ − iⱼ|) · x[i].  Output shape ``coordinates.shape[1:]``; differentiable in
    ``inputs`` (see :class:`Resample`)."""
    op = "map_coordinates"
    x = _tensor(inputs, op, "inputs")
    on_device = array_module(x.data) is not np     # device coordinates stay there
    if isinstance(coordinates, (list, tuple)):
        coords = [_floats(c, op, "coordinates", on_device) for c in coordinates]
    else:
        c = _floats(coordinates, op, "coordinates", on_device)
        coords = [c[k] for k in range(c.shape[0])] if c.ndim else []
    if len(coords) != x.ndim:
        raise ValueError(f"{op}: the first dim of `coordinates` must be the rank of `inputs` "
                         f"({x.ndim}); received inputs with shape {x.shape} and coordinates of "
                         f"leading dim {len(coords)}")
    if not coords or coords[0].ndim < 1:
        shape = (len(coords),) + (coords[0].shape if coords else ())
        raise ValueError(f"{op}: invalid coordinates rank: expected at least rank 2, received "
                         f"coordinates of shape {shape}")
    if isinstance(order, bool) or order not in (0, 1):
        if isinstance(order, numbers.Integral) and order > 1:
            raise NotImplementedError(f"{op}: order={order} is not supported; order must be 0 "
                                      f"or 1")
        raise ValueError(f"{op}: order must be 0 (nearest) or 1 (linear), received {order!r}")
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"{op}: invalid value for argument `fill_mode`: expected one of "
                         f"{list(_FILL_MODES)}, received fill_mode={fill_mode!r}")
    try:
        np.broadcast_shapes(*[c.shape for c in coords])
    except ValueError:
        raise ValueError(f"{op}: the coordinates of the axes must have one shape, received "
                         f"{[c.shape for c in coords]}") from None
    y = _resample(x, coords, x.shape, int(order), fill_mode, _fill_number(fill_value, op))
    return _restore_dtype(y, x.dtype)


def _warp(x, coord_fn, order, fill_mode, fill_value):
    """Warp a channels-last batch: output pixel (row, col) of image n samples the input at
    ``coord_fn(n) -> (y_in, x_in)`` (arrays (H, W) of x's array module)."""
    xp = array_module(x.data)
    n, h, w, _ = x.shape
    ys, xs = [], []
    for i in range(n):
        yi, xi = coord_fn(i)
        ys.append(yi)
        xs.append(xi)
    lead = xp.broadcast_to(xp.arange(n)[:, None, None], (n, h, w))
    return _resample(x, [xp.stack(ys), xp.stack(xs)], (h, w), order, fill_mode, fill_value,
                     lead=lead)


def _grid(xp, h, w):
    """The output grid's row and column coordinates (H, W), float64, on module ``xp``."""
    return xp.meshgrid(xp.arange(h, dtype=np.float64), xp.arange(w, dtype=np.float64),
                       indexing="ij")


def _projective_coords(t, h, w, xp=np):
    """Input points of the projective map t = [a0 a1 a2 b0 b1 b2 c0 c1] (host numbers) for the
    output grid, on module ``xp``."""
    ys, xs = _grid(xp, h, w)
    a0, a1, a2, b0, b1, b2, c0, c1 = (float(v) for v in t)
    k = c0 * xs + c1 * ys + 1.0
    return (b0 * xs + b1 * ys + b2) / k, (a0 * xs + a1 * ys + a2) / k


def _transforms(transform, n, op, name="transform"):
    t = _floats(transform, op, name)
    if t.ndim not in (1, 2):
        raise ValueError(f"{op}: invalid {name} rank: expected rank 1 (a single transform) or "
                         f"rank 2 (a batch of transforms), received {name}.shape={t.shape}")
    given = t.shape
    t = t.reshape(-1, t.shape[-1]) if t.ndim == 2 else t[None]
    if t.shape[-1] != 8:
        raise ValueError(f"{op}: each {name} needs 8 values [a0, a1, a2, b0, b1, b2, c0, c1], "
                         f"received {name}.shape={given}")
    if t.shape[0] == 1 and n > 1:
        t = np.repeat(t, n, axis=0)
    if t.shape[0] != n:
        raise ValueError(f"{op}: {t.shape[0]} transforms for a batch of {n} images")
    return t


def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                     fill_value=0, data_format=None):
    """Warp images by projective maps ``transform`` (8,) or (N, 8) = [a0 a1 a2 b0 b1 b2 c0 c1]:
    output pixel (x, y) (column, row) samples the input at
    ((a0·x + a1·y + a2) / k, (b0·x + b1·y + b2) / k),  k = c0·x + c1·y + 1.

    ``interpolation`` "bilinear" or "nearest"; outside points as ``fill_mode`` says.
    Differentiable in ``images``."""
    op = "affine_transform"
    fmt = standardize_data_format(data_format, op)
    _check_warp(op, interpolation, fill_mode)
    x = _images(images, op)
    fv = _fill_number(fill_value, op)
    x4, single = _to_nhwc(x, fmt)
    n, h, w, _ = x4.shape
    t = _transforms(transform, n, op)
    xp = array_module(x4.data)
    y = _warp(x4, lambda i: _projective_coords(t[i], h, w, xp),
              _WARP_INTERPOLATIONS[interpolation], fill_mode, fv)
    return _restore_dtype(_from_nhwc(y, fmt, single), x.dtype)


def _points(p, op, name):
    a = _floats(p, op, name)
    if a.ndim not in (2, 3) or a.shape[-2:] != (4, 2):
        raise ValueError(f"{op}: invalid {name} shape: expected (4, 2) for a single image or "
                         f"(N, 4, 2) for a batch, received shape {a.shape}")
    return a.reshape(-1, 4, 2)


def _homography(start, end):
    """(N, 8) maps taking each end point to its start point (x_s = (a0 x_e + a1 y_e + a2) / k …),
    from the 8 × 8 linear system of the four correspondences."""
    rows = []
    for i in range(4):
        xe, ye = end[:, i, 0], end[:, i, 1]
        xs, ys = start[:, i, 0], start[:, i, 1]
        o, z = np.ones_like(xe), np.zeros_like(xe)
        rows.append(np.stack([xe, ye, o, z, z, z, -xs * xe, -xs * ye], axis=-1))
        rows.append(np.stack([z, z, z, xe, ye, o, -ys * xe, -ys * ye], axis=-1))
    a = np.stack(rows, axis=1)
    b = start.reshape(-1, 8)
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        raise ValueError("perspective_transform: the start and end points do not define a "
                         "perspective map (three of the four points are collinear)") from None


def perspective_transform(images, start_points, end_points, interpolation="bilinear",
                          fill_value=0, data_format=None):
    """Warp images by the perspective map that takes the four ``end_points`` (x, y) to the
    ``start_points`` ((4, 2) or (N, 4, 2)): the output at an end point shows the input at the
    matching start point.  Outside points are ``fill_value``.  Differentiable in ``images``."""
    op = "perspective_transform"
    fmt = standardize_data_format(data_format, op)
    _check_warp(op, interpolation, "constant")
    x = _images(images, op)
    s = _points(start_points, op, "start_points")
    e = _points(end_points, op, "end_points")
    s_shape = _floats(start_points, op, "start_points").shape
    e_shape = _floats(end_points, op, "end_points").shape
    if s_shape != e_shape:
        raise ValueError(f"{op}: start_points and end_points must have the same shape, received "
                         f"{s_shape} and {e_shape}")
    fv = _fill_number(fill_value, op)
    x4, single = _to_nhwc(x, fmt)
    n, h, w, _ = x4.shape
    t = _transforms(_homography(s, e), n, op, "start_points/end_points")
    xp = array_module(x4.data)
    y = _warp(x4, lambda i: _projective_coords(t[i], h, w, xp),
              _WARP_INTERPOLATIONS[interpolation], "constant", fv)
    return _restore_dtype(_from_nhwc(y, fmt, single), x.dtype)


# ------------------------------------------------------------------ filters
def _gaussian_1d(size, sigma):
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _pair(v, op, name, kind):
    if isinstance(v, Tensor):
        v = v.data
    if not isinstance(v, np.ndarray) and array_module(v) is not np:
        v = to_numpy(v)
    if isinstance(v, np.ndarray):
        v = v.tolist() if v.ndim else v.item()
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be a number or a pair, received {name}={v!r}")
        a, b = v
    else:
        a = b = v
    for u in (a, b):
        ok = (isinstance(u, (numbers.Integral, np.integer)) and not isinstance(u, bool) and u > 0
              if kind == "int" else _is_number(u) and u > 0)
        if not ok:
            what = "positive integers" if kind == "int" else "positive numbers"
            raise ValueError(f"{op}: {name} must be {what}, received {name}={v!r}")
    return (int(a), int(b)) if kind == "int" else (float(a), float(b))


def _blur_kernel(kernel_size, sigma):
    """(kh, kw) Gaussian: kernel_size[0] / sigma[0] along the width, [1] along the height (the
    layout every Keras backend builds: outer(g(size[1], σ[1]), g(size[0], σ[0])))."""
    return np.outer(_gaussian_1d(kernel_size[1], sigma[1]), _gaussian_1d(kernel_size[0], sigma[0]))


def _fixed(arr, like):
    """A constant Tensor of host array ``arr`` (a fixed kernel) on the device of Tensor
    ``like``."""
    xp = array_module(like.data)
    return Tensor(arr if xp is np else xp.asarray(arr))


def _depthwise_fixed(x4, kernel2d, padding):
    """Each channel of a channels-last batch convolved with the fixed 2-D ``kernel2d`` stack
    (kh, kw, m): (N, H', W', C·m), the m outputs of channel c at c·m … c·m + m − 1."""
    c = x4.shape[-1]
    k = np.asarray(kernel2d)
    if k.ndim == 2:
        k = k[..., None]
    kh, kw, m = k.shape
    full = np.broadcast_to(k[:, :, None, :], (kh, kw, c, m)).reshape(kh, kw, 1, c * m)
    return _conv(x4, _fixed(np.ascontiguousarray(full, dtype=x4.dtype), x4), padding=padding,
                 groups=c)


def gaussian_blur(images, kernel_size=(3, 3), sigma=(1.0, 1.0), data_format=None):
    """Blur each channel with a normalized Gaussian, zero padding, output of the input's size:
    y = x ⋆ g,  g[i, j] ∝ exp(−(i − (kh−1)/2)² / 2σ_h² − (j − (kw−1)/2)² / 2σ_w²).

    As in every Keras backend, ``kernel_size[0]`` and ``sigma[0]`` act along the width,
    ``[1]`` along the height.  Differentiable in ``images``."""
    op = "gaussian_blur"
    fmt = standardize_data_format(data_format, op)
    x = _images(images, op)
    ks = _pair(kernel_size, op, "kernel_size", "int")
    sg = _pair(sigma, op, "sigma", "float")
    x4, single = _to_nhwc(x, fmt)
    dt = _compute_dtype(x4)
    if x4.dtype != dt:
        x4 = M.cast(x4, dt)
    y = _depthwise_fixed(x4, _blur_kernel(ks, sg), "same")
    return _restore_dtype(_from_nhwc(y, fmt, single), x.dtype)


_SOBEL_Y = np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]])


def sobel_edges(images, data_format=None):
    """Sobel gradients of a batch (rank 4), zero padding: (N, H, W, C, 2) channels-last or
    (N, C, H, W, 2) channels-first, [..., 0] = the vertical (dy) and [..., 1] the horizontal
    (dx) response, each a 3 × 3 correlation (e.g. dx kernel [[−1 0 1], [−2 0 2], [−1 0 1]])."""
    op = "sobel_edges"
    fmt = standardize_data_format(data_format, op)
    x = _images(images, op, ranks=(4,))
    x4, _ = _to_nhwc(x, fmt)
    dt = _compute_dtype(x4)
    if x4.dtype != dt:
        x4 = M.cast(x4, dt)
    n, h, w, c = x4.shape
    y = _depthwise_fixed(x4, np.stack([_SOBEL_Y, _SOBEL_Y.T], axis=-1), "same")
    y = M.reshape(y, (n, h, w, c, 2))
    if fmt == "channels_first":
        y = M.transpose(y, (0, 3, 1, 2, 4))
    return y


def _ssim_map_mean(a, b, kernel, c1, c2):
    mu1 = _conv(a, kernel)
    mu2 = _conv(b, kernel)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = _conv(a * a, kernel) - mu1_sq
    s2 = _conv(b * b, kernel) - mu2_sq
    s12 = _conv(a * b, kernel) - mu12
    num = (mu12 * 2.0 + c1) * (s12 * 2.0 + c2)
    den = (mu1_sq + mu2_sq + c1) * (s1 + s2 + c2)
    return M.mean(num / den, axis=(1, 2, 3))


def ssim(image1, image2, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03,
         data_format=None):
    """Structural similarity of two images (or batches), one value per image:
    SSIM = mean over the valid windows and channels of
    (2 μ₁μ₂ + C₁)(2 σ₁₂ + C₂) / ((μ₁² + μ₂² + C₁)(σ₁² + σ₂² + C₂)),
    μ, σ² and σ₁₂ local Gaussian-weighted moments (``filter_size``, ``filter_sigma``),
    C₁ = (k1·max_val)², C₂ = (k2·max_val)².  Differentiable in both images."""
    op = "ssim"
    fmt = standardize_data_format(data_format, op)
    a = _images(image1, op, name="image1")
    b = _images(image2, op, name="image2")
    if a.shape != b.shape:
        raise ValueError(f"{op}: image1 and image2 must have the same shape, received "
                         f"{a.shape} and {b.shape}")
    fs = _as_int(filter_size, op, "filter_size", 1)
    for name, v in (("max_val", max_val), ("filter_sigma", filter_sigma), ("k1", k1), ("k2", k2)):
        if not _is_number(v):
            raise TypeError(f"{op}: {name} must be a number, received {v!r}")
    orig = a.dtype
    a4, single = _to_nhwc(a, fmt)
    b4, _ = _to_nhwc(b, fmt)
    dt = _compute_dtype(a4)
    a4, b4 = (t if t.dtype == dt else M.cast(t, dt) for t in (a4, b4))
    n, h, w, c = a4.shape
    if h < fs or w < fs:
        raise ValueError(f"{op}: the images ({h} × {w}) are smaller than filter_size={fs}")
    g = _gaussian_1d(fs, float(filter_sigma))
    kernel = _fixed(np.outer(g, g).reshape(fs, fs, 1, 1).astype(dt), a4)
    a_ch = M.reshape(M.transpose(a4, (0, 3, 1, 2)), (n * c, h, w, 1))
    b_ch = M.reshape(M.transpose(b4, (0, 3, 1, 2)), (n * c, h, w, 1))
    c1 = float((k1 * max_val) ** 2)
    c2 = float((k2 * max_val) ** 2)
    per = M.reshape(_ssim_map_mean(a_ch, b_ch, kernel, c1, c2), (n, c))
    out = M.mean(per, axis=-1)
    if single:
        out = M.reshape(out, ())
    return _restore_dtype(out, orig)


# ------------------------------------------------------------------ patches
def _patches(x, size, strides, dilation_rate, padding, fmt, nd, op):
    """Patches of a channels-``fmt`` batch by a convolution with the identity kernel: output
    feature ((i·pw + j)·C + c) of a patch is its pixel (i, j), channel c."""
    if padding not in ("valid", "same"):
        raise ValueError(f"{op}: padding must be 'valid' or 'same', received {padding!r}")
    if fmt == "channels_first":
        x = M.transpose(x, (0,) + tuple(range(2, nd + 2)) + (1,))
    c = x.shape[-1]
    dim = int(np.prod(size)) * c
    dt = _compute_dtype(x)
    if x.dtype != dt:
        x = M.cast(x, dt)
    kernel = _fixed(np.eye(dim, dtype=dt).reshape(tuple(size) + (c, dim)), x)
    y = _conv(x, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate)
    if fmt == "channels_first":
        y = M.transpose(y, (0, nd + 1) + tuple(range(1, nd + 1)))
    return y


def _int_tuple(v, n, op, name):
    if isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool):
        v = (int(v),) * n
    if not isinstance(v, (list, tuple)) or len(v) != n or not all(
            isinstance(u, (numbers.Integral, np.integer)) and not isinstance(u, bool) and u > 0
            for u in v):
        raise ValueError(f"{op}: {name} must be a positive integer or a tuple of {n} positive "
                         f"integers, received {name}={v!r}")
    return tuple(int(u) for u in v)


def extract_patches(images, size, strides=None, dilation_rate=1, padding="valid",
                    data_format=None):
    """Patches of ``size`` (int or (ph, pw); a 3-tuple gives :func:`extract_patches_3d`) as the
    last axis: (N, H', W', ph·pw·C) channels-last, ``strides`` defaulting to ``size``.
    Differentiable in ``images``."""
    op = "extract_patches"
    if not isinstance(size, (numbers.Integral, np.integer)) or isinstance(size, bool):
        if not isinstance(size, (tuple, list)):
            raise TypeError(f"{op}: invalid `size` argument: expected an int or a tuple, received "
                            f"size={size!r} of type {type(size).__name__}")
        if len(size) not in (2, 3):
            raise ValueError(f"{op}: invalid `size` argument: expected a tuple of length 2 or 3, "
                             f"received size={size!r} with length {len(size)}")
        if len(size) == 3:
            return extract_patches_3d(images, size, strides, dilation_rate, padding, data_format)
    fmt = standardize_data_format(data_format, op)
    size = _int_tuple(size, 2, op, "size")
    strides = size if not strides else _int_tuple(strides, 2, op, "strides")
    dil = _int_tuple(dilation_rate, 2, op, "dilation_rate")
    x = _images(images, op)
    single = x.ndim == 3
    x4 = M.reshape(x, (1,) + x.shape) if single else x
    y = _patches(x4, size, strides, dil, padding, fmt, 2, op)
    y = M.reshape(y, y.shape[1:]) if single else y
    return _restore_dtype(y, x.dtype)


def extract_patches_3d(volumes, size, strides=None, dilation_rate=1, padding="valid",
                       data_format=None):
    """Patches of ``size`` (int or (pd, ph, pw)) of volumes (N, D, H, W, C) (or one volume of
    rank 4) as the last axis: (N, D', H', W', pd·ph·pw·C).  Differentiable in ``volumes``."""
    op = "extract_patches_3d"
    fmt = standardize_data_format(data_format, op)
    size = _int_tuple(size, 3, op, "size")
    strides = size if strides is None else _int_tuple(strides, 3, op, "strides")
    dil = _int_tuple(dilation_rate, 3, op, "dilation_rate")
    x = _images(volumes, op, ranks=(4, 5), name="volumes")
    single = x.ndim == 4
    x5 = M.reshape(x, (1,) + x.shape) if single else x
    y = _patches(x5, size, strides, dil, padding, fmt, 3, op)
    y = M.reshape(y, y.shape[1:]) if single else y
    return _restore_dtype(y, x.dtype)


# ------------------------------------------------------------ pad and crop
def _three(first, second, target, names, op):
    if [first, second, target].count(None) != 1:
        raise ValueError(f"{op}: must specify exactly two of {names[0]}, {names[1]}, {names[2]}; "
                         f"received {names[0]}={first}, {names[1]}={second}, {names[2]}={target}")
    for v, name in zip((first, second, target), names):
        if v is not None:
            _as_int(v, op, name)


def _hw_axes(x, fmt):
    return (x.ndim - 3, x.ndim - 2) if fmt == "channels_last" else (x.ndim - 2, x.ndim - 1)


def pad_images(images, top_padding=None, left_padding=None, bottom_padding=None,
               right_padding=None, target_height=None, target_width=None, data_format=None):
    """Zero-pad images to a size: give two of (top, bottom, target_height) and two of
    (left, right, target_width).  Differentiable (the gradient is G's central block)."""
    op = "pad_images"
    fmt = standardize_data_format(data_format, op)
    x = _images(images, op)
    _three(top_padding, bottom_padding, target_height,
           ("top_padding", "bottom_padding", "target_height"), op)
    _three(left_padding, right_padding, target_width,
           ("left_padding", "right_padding", "target_width"), op)
    ha, wa = _hw_axes(x, fmt)
    h, w = x.shape[ha], x.shape[wa]
    top = target_height - bottom_padding - h if top_padding is None else top_padding
    bottom = target_height - top - h if bottom_padding is None else bottom_padding
    left = target_width - right_padding - w if left_padding is None else left_padding
    right = target_width - left - w if right_padding is None else right_padding
    for name, v in (("top_padding", top), ("left_padding", left), ("right_padding", right),
                    ("bottom_padding", bottom)):
        if v < 0:
            raise ValueError(f"{op}: {name} must be >= 0 (the target is smaller than the "
                             f"image {h} × {w}), received {name}={v}")
    widths = [(0, 0)] * x.ndim
    widths[ha], widths[wa] = (int(top), int(bottom)), (int(left), int(right))
    return M.pad(x, widths)


def crop_images(images, top_cropping=None, left_cropping=None, bottom_cropping=None,
                right_cropping=None, target_height=None, target_width=None, data_format=None):
    """Crop images: give two of (top, bottom, target_height) and two of
    (left, right, target_width).  Differentiable (the gradient is G padded back with zeros)."""
    op = "crop_images"
    fmt = standardize_data_format(data_format, op)
    x = _images(images, op)
    _three(top_cropping, bottom_cropping, target_height,
           ("top_cropping", "bottom_cropping", "target_height"), op)
    _three(left_cropping, right_cropping, target_width,
           ("left_cropping", "right_cropping", "target_width"), op)
    ha, wa = _hw_axes(x, fmt)
    h, w = x.shape[ha], x.shape[wa]
    top = h - target_height - bottom_cropping if top_cropping is None else top_cropping
    th = h - bottom_cropping - top if target_height is None else target_height
    left = w - target_width - right_cropping if left_cropping is None else left_cropping
    tw = w - right_cropping - left if target_width is None else target_width
    for name, v in (("top_cropping", top), ("target_height", th), ("left_cropping", left),
                    ("target_width", tw)):
        if v < 0:
            raise ValueError(f"{op}: {name} must be >= 0 (the crop does not fit in the image "
                             f"{h} × {w}), received {name}={v}")
    if top + th > h or left + tw > w:
        raise ValueError(f"{op}: a crop of {th} × {tw} at ({top}, {left}) does not fit in the "
                         f"image {h} × {w}")
    key = [slice(None)] * x.ndim
    key[ha], key[wa] = slice(int(top), int(top + th)), slice(int(left), int(left + tw))
    return M.get_item(x, tuple(key))


# ------------------------------------------------------------------ resizing
def _resize_matrix(n_in, n_out, method):
    """(n_out, n_in) matrix of the 1-D resampling of torch's ``interpolate`` (half-pixel
    centres)."""
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if method == "nearest":       # torch "nearest-exact", computed in float32 as torch does
        scale = float(np.float32(n_in) / np.float32(n_out))
        src = np.floor(((rows + 0.5) * scale).astype(np.float32)).astype(np.int64)
        m[rows, np.minimum(src, n_in - 1)] = 1.0
        return m
    scale = n_in / n_out
    real = (rows + 0.5) * scale - 0.5
    if method == "bilinear":
        real = np.maximum(real, 0.0)
        i0 = np.minimum(np.floor(real).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        w1 = real - i0
        np.add.at(m, (rows, i0), 1.0 - w1)
        np.add.at(m, (rows, i1), w1)
        return m
    # bicubic, Keys kernel with a = -0.75 (torch), border indices clamped
    a = -0.75
    i0 = np.floor(real).astype(np.int64)
    t = real - i0

    def near(x):   # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):    # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    for k, w in enumerate(weights):
        np.add.at(m, (rows, np.clip(i0 - 1 + k, 0, n_in - 1)), w)
    return m


def _antialias_matrix(n_in, n_out, method):
    """torch's antialiased interpolation: the triangle (bilinear) or Keys a = −0.5 (bicubic)
    filter stretched by the downscaling factor s = n_in / n_out, normalized per output."""
    scale = n_in / n_out
    half = 1.0 if method == "bilinear" else 2.0
    support = half * scale if scale >= 1.0 else half
    inv = 1.0 / scale if scale >= 1.0 else 1.0

    def filt(x):
        x = np.abs(x)
        if method == "bilinear":
            return np.maximum(1.0 - x, 0.0)
        a = -0.5
        return np.where(x < 1.0, ((a + 2) * x - (a + 3)) * x * x + 1,
                        np.where(x < 2.0, (((x - 5) * x + 8) * x - 4) * a, 0.0))

    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        j = np.arange(lo, hi)
        w = filt((j - center + 0.5) * inv)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m


def _aspect_window(height, width, target_h, target_w):
    """Largest centred window of the target aspect ratio (Keras's ``smart_resize`` crop)."""
    ch = max(min(height, int(float(width * target_h) / target_w)), 1)
    cw = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - ch) / 2), int(float(width - cw) / 2), ch, cw


def _resize_nhwc(x, height, width, interpolation, antialias, crop, pad, fill_value):
    n_h, n_w = x.shape[1], x.shape[2]
    if crop:
        h0, w0, ch, cw = _aspect_window(n_h, n_w, height, width)
        if (ch, cw) != (n_h, n_w):
            x = M.get_item(x, (slice(None), slice(h0, h0 + ch), slice(w0, w0 + cw)))
    elif pad:
        ph = max(n_h, int(float(n_w * height) / width))
        pw = max(n_w, int(float(n_h * width) / height))
        top, left = int(float(ph - n_h) / 2), int(float(pw - n_w) / 2)
        if top or left:    # Keras pads the same amount on both sides
            x = M.pad(x, ((0, 0), (top, top), (left, left), (0, 0)), constant_values=fill_value)
    n_h, n_w = x.shape[1], x.shape[2]
    if (n_h, n_w) == (height, width):
        return x
    dt = x.dtype

    def mat(n_in, n_out):
        if antialias and interpolation in ("bilinear", "bicubic"):
            return _antialias_matrix(n_in, n_out, interpolation).astype(dt)
        return _resize_matrix(n_in, n_out, interpolation).astype(dt)

    y = M.transpose(x, (0, 3, 1, 2))                      # (N, C, H, W)
    if n_h != height:
        y = M.matmul(mat(n_h, height), y)
    if n_w != width:
        y = M.matmul(y, mat(n_w, width).T)
    return M.transpose(y, (0, 2, 3, 1))


def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None):
    """Resize images to ``size`` = (height, width), differentiably (see the module docstring).

    ``crop_to_aspect_ratio`` first takes the largest centred window of the target aspect ratio;
    ``pad_to_aspect_ratio`` first pads both sides with ``fill_value`` to it.  Integer images
    are resized in floatx and rounded back (saturated) to their dtype."""
    op = "resize"
    fmt = standardize_data_format(data_format, op)
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise ValueError(f"{op}: expected `size` to be a tuple of 2 integers, received "
                         f"size={size!r}")
    if not all(isinstance(s, (numbers.Integral, np.integer)) and not isinstance(s, bool)
               for s in size) or size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"{op}: `size` must have positive integer height and width, received "
                         f"size={size!r}")
    if interpolation in _RESIZE_UNSUPPORTED:
        raise NotImplementedError(f"{op}: interpolation={interpolation!r} is not supported; "
                                  f"use one of {_RESIZE_INTERPOLATIONS}")
    if interpolation not in _RESIZE_INTERPOLATIONS:
        raise ValueError(f"{op}: invalid value for argument `interpolation`: expected one of "
                         f"{_RESIZE_INTERPOLATIONS}, received interpolation={interpolation!r}")
    if fill_mode != "constant":
        raise ValueError(f"{op}: invalid value for argument `fill_mode`: only 'constant' is "
                         f"supported, received fill_mode={fill_mode!r}")
    if pad_to_aspect_ratio and crop_to_aspect_ratio:
        raise ValueError(f"{op}: only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` can "
                         f"be True")
    fv = _fill_number(fill_value, op)
    x = _images(images, op)
    x4, single = _to_nhwc(x, fmt)
    dt = _compute_dtype(x4)
    if x4.dtype != dt:
        x4 = M.cast(x4, dt)
    y = _resize_nhwc(x4, int(size[0]), int(size[1]), interpolation, bool(antialias),
                     bool(crop_to_aspect_ratio), bool(pad_to_aspect_ratio), fv)
    return _restore_dtype(_from_nhwc(y, fmt, single), x.dtype)


# ------------------------------------------------------- scale and translate
def _triangle(x):
    return np.maximum(0.0, 1.0 - np.abs(x))


def _keys_cubic(x):
    x = np.abs(x)
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = np.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return np.where(x >= 2.0, 0.0, out)


def _lanczos(radius):
    def k(x):
        x = np.abs(x)
        y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(x > 1e-3, y / np.where(x != 0, np.pi ** 2 * x ** 2, 1.0), 1.0)
        return np.where(x > radius, 0.0, out)
    return k


_SCALE_KERNELS = {"linear": _triangle, "cubic": _keys_cubic, "lanczos3": _lanczos(3.0),
                  "lanczos5": _lanczos(5.0)}
_SCALE_METHODS = {"linear": "linear", "bilinear": "linear", "trilinear": "linear",
                  "triangle": "linear", "cubic": "cubic", "bicubic": "cubic",
                  "tricubic": "cubic", "lanczos3": "lanczos3", "lanczos5": "lanczos5"}


def _scale_weights(n_in, n_out, scale, translation, kernel, antialias):
    """(n_in, n_out) weights of JAX's ``scale_and_translate`` along one axis: output i samples
    the input around (i + 0.5 − t) / s − 0.5 with the kernel (widened by 1/s if antialias)."""
    inv = 1.0 / scale
    kscale = max(inv, 1.0) if antialias else 1.0
    sample = (np.arange(n_out) + 0.5) * inv - translation * inv - 0.5
    w = kernel(np.abs(sample[None, :] - np.arange(n_in)[:, None]) / kscale)
    total = w.sum(axis=0, keepdims=True)
    w = np.where(np.abs(total) > 1000.0 * float(np.finfo(np.float32).eps),
                 w / np.where(total != 0, total, 1.0), 0.0)
    return np.where(((sample >= -0.5) & (sample <= n_in - 0.5))[None, :], w, 0.0)


def scale_and_translate(images, output_shape, scale, translation, spatial_dims, method,
                        antialias=True):
    """Resample ``images`` along ``spatial_dims`` to ``output_shape``, output index i of an axis
    showing the input at (i + 0.5 − translation) / scale − 0.5 (JAX's
    ``jax.image.scale_and_translate``), one fixed weight matrix per axis:
    y = x ×_d W_d, so dL/dx = G ×_d W_dᵀ.  ``method``: linear / bilinear / trilinear,
    cubic / bicubic / tricubic (Keys a = −0.5), lanczos3, lanczos5."""
    op = "scale_and_translate"
    if method not in _SCALE_METHODS:
        raise ValueError(f"{op}: invalid value for argument `method`: expected one of "
                         f"{sorted(_SCALE_METHODS)}, received method={method!r}")
    kernel = _SCALE_KERNELS[_SCALE_METHODS[method]]
    x = _tensor(images, op)
    dims = [int(d) for d in _host(spatial_dims).reshape(-1)]
    s = _floats(scale, op, "scale").reshape(-1)
    t = _floats(translation, op, "translation").reshape(-1)
    out_shape = tuple(int(v) for v in _host(output_shape).reshape(-1))
    if len(out_shape) != x.ndim:
        raise ValueError(f"{op}: output_shape must have one entry per axis of images "
                         f"({x.ndim}), received {out_shape}")
    if s.size != len(dims) or t.size != len(dims):
        raise ValueError(f"{op}: scale and translation need one value per spatial dim "
                         f"({len(dims)}), received {s.size} and {t.size}")
    if np.any(s == 0):
        raise ValueError(f"{op}: scale must be non-zero, received {s.tolist()}")
    orig = x.dtype
    y = x if x.dtype.kind == "f" else M.cast(x, backend.floatx())
    for i, d in enumerate(dims):
        d = d % x.ndim
        w = _scale_weights(x.shape[d], out_shape[d], s[i], t[i], kernel, bool(antialias))
        perm = [a for a in range(y.ndim) if a != d] + [d]
        y = M.matmul(M.transpose(y, perm), w.astype(y.dtype))
        back = list(np.argsort(perm))
        y = M.transpose(y, back)
    if orig.kind in "iu":
        lo, hi = x.data.min(), x.data.max()
        xp = array_module(y.data)
        return Tensor(xp.clip(xp.round(y.data), lo, hi).astype(orig))
    return y


# ------------------------------------------------------------------ elastic
def _seed_rng(seed, op):
    """The NumPy Generator of one draw: ``seed`` None (the backend generator), an integer,
    a ``keras.random.SeedGenerator`` (advanced by one) or a NumPy Generator."""
    if seed is None:
        return backend.rng()
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng([int(seed) & 0xFFFFFFFF, 0])
    nxt = getattr(seed, "next", None)
    if callable(nxt):
        state = nxt()
        arr = _host(state).ravel()
        return np.random.default_rng([int(arr[0]) & 0xFFFFFFFF, int(arr[1]) & 0xFFFFFFFF])
    raise ValueError(f"{op}: seed must be None, an integer or a SeedGenerator, received "
                     f"{seed!r}")


def _blur_fields(a, size, sigma):
    """Zero-padded "same" Gaussian blur of float64 arrays (..., H, W) with a size × size kernel,
    on ``a``'s device."""
    xp = array_module(a)
    k = _gaussian_1d(size, sigma)
    before = (size - 1) // 2
    after = size - 1 - before
    for axis in (-2, -1):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (before, after)
        p = xp.pad(a, pad)
        n = a.shape[axis]
        a = sum(xp.take(p, xp.arange(j, j + n), axis=axis) * k[j] for j in range(size))
    return a


def elastic_transform(images, alpha=20.0, sigma=5.0, interpolation="bilinear",
                      fill_mode="reflect", fill_value=0.0, seed=None, data_format=None):
    """Elastic deformation: each pixel p samples the input at p + α · (g_σ ⋆ σ·ε)(p), ε a
    standard normal field per image and axis (x then y drawn), g_σ the Gaussian of size
    int(6σ) | 1 (zero padding).  Differentiable in ``images``."""
    op = "elastic_transform"
    fmt = standardize_data_format(data_format, op)
    _check_warp(op, interpolation, fill_mode)
    x = _images(images, op)
    try:
        a, s = float(_floats(alpha, op, "alpha")), float(_floats(sigma, op, "sigma"))
    except (TypeError, ValueError):
        raise TypeError(f"{op}: alpha and sigma must be numbers, received alpha={alpha!r}, "
                        f"sigma={sigma!r}") from None
    if s <= 0:
        raise ValueError(f"{op}: sigma must be positive, received sigma={s}")
    fv = _fill_number(fill_value, op)
    rng = _seed_rng(seed, op)
    x4, single = _to_nhwc(x, fmt)
    n, h, w, _ = x4.shape
    dt = _compute_dtype(x4)
    size = int(6 * s) | 1
    # the fields are drawn on the host (the same draw for host and device images), then
    # blurred where the images are
    xp = array_module(x4.data)
    dx = rng.standard_normal((n, h, w)).astype(dt).astype(np.float64) * s
    dy = rng.standard_normal((n, h, w)).astype(dt).astype(np.float64) * s
    if xp is not np:
        dx, dy = xp.asarray(dx), xp.asarray(dy)
    dx, dy = _blur_fields(dx, size, s), _blur_fields(dy, size, s)
    ys, xs = _grid(xp, h, w)
    y = _warp(x4, lambda i: (ys + a * dy[i], xs + a * dx[i]), _WARP_INTERPOLATIONS[interpolation],
              fill_mode, fv)
    return _restore_dtype(_from_nhwc(y, fmt, single), x.dtype)
