"""Fashion-MNIST (Zalando), as ``keras.datasets.fashion_mnist``: the four gzipped IDX files."""
import gzip
import os

import numpy as np

from .remote import DEFAULT_TIMEOUT, fetch_dataset_file

__all__ = ["load_data", "read_idx", "FILES", "CLASS_NAMES"]

FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
               "Bag", "Ankle boot")

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path):
    """Read an IDX file (gzipped when its name ends in ``.gz``) into a NumPy array.

    IDX: 2 zero bytes, a type code (0x08 = uint8), the number of dimensions,
    then each dimension as a big-endian uint32, then the values row-major.
    """
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"read_idx: cannot read {path} ({e}); delete it to download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"read_idx: {path} is truncated (header)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if len(raw) - head != n * dtype.itemsize:
        raise ValueError(f"read_idx: {path} holds {len(raw) - head} bytes of data, expected "
                         f"{n * dtype.itemsize} for shape {shape}")
    arr = np.frombuffer(raw, dtype=dtype, count=n, offset=head).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


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
    y_train, x_train, y_test, x_test = (read_idx(p) for p in paths)
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"fashion_mnist.load_data: the {split} files do not match: images of "
                             f"shape {x.shape}, labels of shape {y.shape}")
    return (x_train, y_train), (x_test, y_test)
