"""Boston Housing and California Housing, as ``keras.datasets.boston_housing`` and
``keras.datasets.california_housing`` (Keras's ``.npz`` files: plain float arrays ``x``, ``y``)."""
import numpy as np

from ..fileio import FileFormatError
from .remote import DEFAULT_TIMEOUT, fetch_dataset_file, load_npz_arrays

__all__ = ["load_boston_housing", "load_california_housing", "split"]

_FLOATS = tuple(np.dtype(c) for c in ("f4", "f8"))


def split(x, y, test_split, seed):
    """Keras's split: rows shuffled with ``np.random.RandomState(seed)``, the first
    ``int(n · (1 − test_split))`` for training."""
    rng = np.random.RandomState(seed)
    idx = np.arange(len(x))
    rng.shuffle(idx)
    x, y = x[idx], y[idx]
    cut = int(len(x) * (1 - test_split))
    return (np.array(x[:cut]), np.array(y[:cut])), (np.array(x[cut:]), np.array(y[cut:]))


def _check_split(test_split):
    if isinstance(test_split, bool) or not isinstance(test_split, (int, float, np.number)) \
            or not 0 <= test_split < 1:
        raise ValueError(f"Invalid `test_split` argument: {test_split}. It must be between 0 and "
                         f"1 (exclusive of 1).")


def read_npz(path, who, n_features):
    x, y = load_npz_arrays(path, ("x", "y"), who, dtypes=_FLOATS)
    if x.ndim != 2 or x.shape[1] != n_features or y.ndim != 1 or len(x) != len(y):
        raise FileFormatError(path, f"{who}: x has shape {x.shape} and y {y.shape}; expected "
                                    f"(n, {n_features}) and (n,)")
    return x, y


def load_boston_housing(path="boston_housing.npz", test_split=0.2, seed=113, *, base_url=None,
                        checksums=None, cache_dir=None, timeout=DEFAULT_TIMEOUT):
    """``(x_train, y_train), (x_test, y_test)``: 506 Boston suburbs, 13 attributes (float64),
    the median house value in k$; Keras's ``boston_housing.npz``, downloaded once and checked
    against Keras's SHA-256, split as Keras splits it."""
    _check_split(test_split)
    path = fetch_dataset_file("boston_housing.npz", path, base_url=base_url, checksums=checksums,
                              cache_dir=cache_dir, timeout=timeout)
    return split(*read_npz(path, "boston_housing.load_data", 13), test_split, seed)


def load_california_housing(version="large", path="california_housing.npz", test_split=0.2,
                            seed=113, *, base_url=None, checksums=None, cache_dir=None,
                            timeout=DEFAULT_TIMEOUT):
    """``(x_train, y_train), (x_test, y_test)``: California block groups, 8 attributes, the
    median house value in $; ``version="small"`` keeps the first 600 rows, as Keras."""
    _check_split(test_split)
    if version not in ("small", "large"):
        raise ValueError(f"Argument `version` must be one of 'small', 'large'. Received: "
                         f"version={version}")
    path = fetch_dataset_file("california_housing.npz", path, base_url=base_url,
                              checksums=checksums, cache_dir=cache_dir, timeout=timeout)
    x, y = read_npz(path, "california_housing.load_data", 8)
    if version == "small":
        x, y = x[:600], y[:600]
    return split(x, y, test_split, seed)
