"""Fashion-MNIST (Zalando), as ``keras.datasets.fashion_mnist``: the four gzipped IDX files."""
import gzip
import os
import zlib

import numpy as np

from ..fileio import FileFormatError, check_regular_file
from .remote import DEFAULT_TIMEOUT, check_labels, fetch_dataset_file

__all__ = ["load_data", "read_idx", "read_labels", "read_images", "FILES", "CLASS_NAMES"]

FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
               "Bag", "Ankle boot")

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


#: a deflate stream expands at most about 1032 times; a gzip whose IDX header implies more data
#: than that from its compressed size cannot hold it and is rejected before decompressing
_MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20


def read_idx(path):
    """Read an IDX file (gzipped when its name ends in ``.gz``) into a NumPy array.

    IDX: 2 zero bytes, a type code (0x08 = uint8), the number of dimensions,
    then each dimension as a big-endian uint32, then the values row-major.
    The header is read first: the size it implies must match the file (exactly, for a plain
    file; reachable from the compressed size, for a gzip), and only that many bytes are
    decompressed, so a corrupted header or a gzip bomb costs nothing.  Every problem is an
    :class:`axone.fileio.FileFormatError` naming the file.
    """
    path = check_regular_file(path, "IDX file")
    gz = path.endswith(".gz")
    size = os.path.getsize(path)
    try:
        with (gzip.open if gz else open)(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
                raise FileFormatError(path, f"is not an IDX file (bad magic number {magic.hex()})")
            ndim = magic[3]
            dims = f.read(4 * ndim)
            if len(dims) != 4 * ndim:
                raise FileFormatError(path, "is truncated (IDX header)")
            shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
            dtype = np.dtype(_IDX_DTYPES[magic[2]])
            n = 1
            for d in shape:
                n *= d               # Python integers: no overflow
            nbytes = n * dtype.itemsize
            head = 4 + 4 * ndim
            limit = _MAX_DEFLATE_RATIO * size + _CHUNK if gz else size - head
            if nbytes > limit:
                raise FileFormatError(path, f"IDX header declares shape {shape} ({nbytes} bytes of "
                                            f"data), more than a file of {size} bytes can hold")
            parts, left = [], nbytes
            while left:
                chunk = f.read(min(left, _CHUNK))
                if not chunk:
                    break
                parts.append(chunk)
                left -= len(chunk)
            extra = f.read(1)
    except FileFormatError:
        raise
    except (OSError, EOFError, zlib.error) as e:
        raise FileFormatError(path, f"cannot be read as an IDX file ({type(e).__name__}: {e}); "
                                    f"delete it to download it again") from None
    if left or extra:
        held = f"{nbytes - left} bytes of data" if left else f"more than {nbytes} bytes of data"
        raise FileFormatError(path, f"holds {held}, expected {nbytes} for the shape {shape} "
                                    f"of its IDX header")
    arr = np.frombuffer(b"".join(parts), dtype=dtype, count=n).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def read_labels(path):
    """An IDX labels file: uint8 (n,), classes 0..9."""
    y = read_idx(path)
    if y.ndim != 1 or y.dtype != np.uint8:
        raise FileFormatError(path, f"holds {y.dtype} of shape {y.shape}; labels are uint8 (n,)")
    check_labels(path, y, len(CLASS_NAMES), "the labels")
    return y


def read_images(path):
    """An IDX images file: uint8 (n, rows, cols)."""
    x = read_idx(path)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise FileFormatError(path, f"holds {x.dtype} of shape {x.shape}; images are uint8 "
                                    f"(n, rows, cols)")
    return x


def load_data(*, base_url=None, checksums=None, cache_dir=None, timeout=DEFAULT_TIMEOUT):
    """Load Fashion-MNIST: ``(x_train, y_train), (x_test, y_test)``.

    x: uint8 (60000, 28, 28) and (10000, 28, 28); y: uint8 (60000,) and
    (10000,), classes 0..9 (:data:`CLASS_NAMES`).  The four IDX files are
    downloaded once from Keras's storage into
    ``~/.axone/datasets/fashion-mnist/``.  Keras publishes no checksum for them,
    so, as in Keras, they are not verified by default (pass ``checksums``
    ``{file name: digest}`` to verify); the IDX headers are always checked.

    Args:
        base_url: fetch from ``<base_url>/<file>`` (default ``$AXONE_DATASETS_URL``
            or Keras's storage).
        checksums: ``{file name: hex digest or None}``.
        cache_dir: cache root instead of ``$AXONE_HOME`` / ``~/.axone``.
    """
    paths = [fetch_dataset_file(f, base_url=base_url, checksums=checksums, cache_dir=cache_dir,
                                cache_subdir=os.path.join("datasets", "fashion-mnist"),
                                timeout=timeout) for f in FILES]
    y_train, y_test = read_labels(paths[0]), read_labels(paths[2])
    x_train, x_test = read_images(paths[1]), read_images(paths[3])
    for x, y, split, p in ((x_train, y_train, "train", paths[1]), (x_test, y_test, "test", paths[3])):
        if len(x) != len(y):
            raise FileFormatError(p, f"fashion_mnist.load_data: the {split} files do not match: "
                                     f"images of shape {x.shape}, labels of shape {y.shape}")
    return (x_train, y_train), (x_test, y_test)
