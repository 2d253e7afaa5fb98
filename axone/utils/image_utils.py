"""Images to arrays and back, as ``keras.utils.load_img`` / ``img_to_array`` /
``array_to_img`` / ``save_img``. Pillow is an optional extra (``pip install pillow``),
imported only when one of these is called."""
import io
import pathlib
import warnings

import numpy as np

from .. import backend, config

__all__ = ["load_img", "img_to_array", "array_to_img", "save_img"]

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def _pil_image(who):
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"{who} needs Pillow, which is not installed: pip install pillow "
                          f"(or pip install 'axone[image]')") from None
    return Image


def _data_format(data_format, who):
    if data_format is None:
        return config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{who}: `data_format` must be 'channels_last' or 'channels_first', "
                         f"received {data_format!r}")
    return data_format


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A PIL image from a 3-D array ``(H, W, C)`` (``(C, H, W)`` channels first).

    With ``scale`` the values are mapped to ``[0, 255]``: ``(x − min) / max(x − min) · 255``
    (no division when the range is 0). 4 channels give RGBA, 3 RGB, 1 grayscale (``L``, or
    32-bit ``I`` when a value exceeds 255); the values are cut to integers.
    """
    data_format = _data_format(data_format, "array_to_img")
    Image = _pil_image("array_to_img")
    try:
        x = np.asarray(x, dtype=dtype or backend.floatx())
    except (TypeError, ValueError) as e:
        raise TypeError(f"array_to_img: expected a numeric image array, received {type(x).__name__}: "
                        f"{e}") from None
    if x.ndim != 3:
        raise ValueError(f"array_to_img: expected an image array of rank 3 (a single image), "
                         f"received shape {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        top = np.max(x)
        if top != 0:
            x /= top
        x *= 255
    channels = x.shape[2]
    if channels == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"array_to_img: expected 1, 3 or 4 channels, received {channels} "
                     f"(image shape {x.shape})")


def img_to_array(img, data_format=None, dtype=None):
    """A PIL image (or anything ``np.asarray`` takes) as a float array ``(H, W, C)``: a 2-D
    grayscale image gains a channel axis of 1; ``channels_first`` gives ``(C, H, W)``."""
    data_format = _data_format(data_format, "img_to_array")
    try:
        x = np.asarray(img, dtype=dtype or backend.floatx())
    except (TypeError, ValueError) as e:
        raise TypeError(f"img_to_array: expected an image, received {type(img).__name__}: {e}") from None
    if x.ndim == 3:
        if data_format == "channels_first":
            x = x.transpose(2, 0, 1)
    elif x.ndim == 2:
        x = x.reshape((1,) + x.shape if data_format == "channels_first" else x.shape + (1,))
    else:
        raise ValueError(f"img_to_array: expected an image of rank 2 or 3, received shape {x.shape}")
    return x


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Write the array ``x`` as an image file (format from ``file_format`` or the path's
    suffix; ``jpg`` means JPEG, whose RGBA images are converted to RGB with a warning)."""
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.", stacklevel=2)
        img = img.convert("RGB")
    try:
        img.save(path, format=file_format or None, **kwargs)
    except KeyError:
        raise ValueError(f"save_img: unknown image file format {file_format!r} for {path!r}") from None


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest",
             keep_aspect_ratio=False):
    """Read an image file (a path or an ``io.BytesIO``) as a PIL image in ``color_mode``
    (``"grayscale"`` keeps 16/32-bit grayscale, ``"rgb"``, ``"rgba"``), resized to
    ``target_size = (height, width)`` with ``interpolation``; with ``keep_aspect_ratio`` the
    largest centred box of the target's aspect ratio is cut out first."""
    if color_mode not in ("grayscale", "rgb", "rgba"):
        raise ValueError(f"load_img: `color_mode` must be 'grayscale', 'rgb' or 'rgba', "
                         f"received {color_mode!r}")
    if target_size is not None:
        if (not isinstance(target_size, (tuple, list)) or len(target_size) != 2
                or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
                           for s in target_size)):
            raise ValueError(f"load_img: `target_size` must be None or (height, width) of positive "
                             f"integers, received {target_size!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"load_img: invalid interpolation method {interpolation!r}; supported "
                             f"methods are {', '.join(_INTERPOLATIONS)}")
    Image = _pil_image("load_img")
    if isinstance(path, io.BytesIO):
        source = path
    elif isinstance(path, (pathlib.Path, bytes, str)):
        from ..fileio import check_regular_file
        path = str(path.resolve()) if isinstance(path, pathlib.Path) else path
        shown = path.decode(errors="replace") if isinstance(path, bytes) else path
        check_regular_file(path, "image file")
        with open(path, "rb") as f:
            source = io.BytesIO(f.read())
        path = shown
    else:
        raise TypeError(f"load_img: `path` must be a path or an io.BytesIO, received {type(path).__name__}")
    try:
        img = Image.open(source)
        img.load()
    except Exception as e:      # Pillow's errors for data that is not an image it reads
        from ..fileio import FileFormatError
        where = None if isinstance(path, io.BytesIO) else path
        raise FileFormatError(where, f"load_img: not an image Pillow can read "
                                     f"({type(e).__name__}: {e})") from e
    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode == "rgba":
        if img.mode != "RGBA":
            img = img.convert("RGBA")
    elif img.mode != "RGB":
        img = img.convert("RGB")
    if target_size is not None:
        size = (int(target_size[1]), int(target_size[0]))
        if img.size != size:
            resample = getattr(Image.Resampling, interpolation.upper())
            if keep_aspect_ratio:
                width, height = img.size
                crop_height = min(height, (width * size[1]) // size[0])
                crop_width = min(width, (height * size[0]) // size[1])
                top, left = (height - crop_height) // 2, (width - crop_width) // 2
                img = img.resize(size, resample, box=[left, top, left + crop_width, top + crop_height])
            else:
                img = img.resize(size, resample)
    return img
