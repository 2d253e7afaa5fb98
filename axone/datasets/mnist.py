"""MNIST handwritten digits, as ``keras.datasets.mnist`` (Keras's ``mnist.npz``)."""
import numpy as np

from ..fileio import FileFormatError
from .remote import DEFAULT_TIMEOUT, check_labels, fetch_dataset_file, load_npz_arrays

__all__ = ["load_data"]

_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_data(path="mnist.npz", *, base_url=None, checksums=None, cache_dir=None,
              timeout=DEFAULT_TIMEOUT):
    """Load MNIST: ``(x_train, y_train), (x_test, y_test)``.

    x: uint8 (60000, 28, 28) and (10000, 28, 28), pixels 0..255; y: uint8
    (60000,) and (10000,), digits 0..9.  The file is Keras's ``mnist.npz``
    (plain numeric arrays, no pickle), downloaded once from
    ``https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz``
    into ``~/.axone/datasets/`` (``$AXONE_HOME``) and checked against Keras's
    SHA-256.

    Args:
        path: file name in the cache (or an absolute path).
        base_url: fetch from ``<base_url>/mnist.npz`` (default ``$AXONE_DATASETS_URL``
            or Keras's storage).
        checksums: ``{"mnist.npz": hex digest or None}`` to override the known SHA-256.
        cache_dir: cache root instead of ``$AXONE_HOME`` / ``~/.axone``.
    """
    path = fetch_dataset_file("mnist.npz", path, base_url=base_url, checksums=checksums,
                              cache_dir=cache_dir, timeout=timeout)
    return read_npz(path)


def read_npz(path):
    """The four arrays of an ``mnist.npz``, checked: images uint8 (n, 28, 28), labels
    integers 0..9, as many labels as images; anything else is a FileFormatError."""
    x_train, y_train, x_test, y_test = load_npz_arrays(
        path, _KEYS, "mnist.load_data", dtypes=(np.dtype(np.uint8),))
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(x) != len(y):
            raise FileFormatError(path, f"mnist.load_data: x_{split} has shape {x.shape} and "
                                        f"y_{split} {y.shape}; expected (n, 28, 28) and (n,)")
        check_labels(path, y, 10, f"y_{split}")
    return (x_train, y_train), (x_test, y_test)

