"""Bundled datasets of the courses: iris, boston (7 columns) and digits (8×8 images).

Each loader returns NumPy arrays ``(x, y)`` by default, or with
``as_frame=True`` the pandas DataFrame in the course's column layout
(pandas is optional and imported only then).
"""
import csv
import gzip
import os

import numpy as np

__all__ = ["load_iris", "load_boston", "load_digits", "data_path", "DATASETS"]

_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
DATASETS = {"iris": "iris.csv", "boston": "boston.csv", "digits": "digits.csv.gz"}


def data_path(name):
    """Absolute path of a bundled file: ``"iris"``, ``"boston"`` or ``"digits"`` (or its file name)."""
    fname = DATASETS.get(name, name)
    if fname not in DATASETS.values():
        raise ValueError(f"data_path: unknown dataset {name!r}; bundled: {sorted(DATASETS)}")
    return os.path.join(_DIR, fname)


def _read(fname):
    path = data_path(fname)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=np.float64)


def _pandas(loader):
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(f"{loader}(as_frame=True) needs pandas: pip install pandas") from None
    return pd


def load_iris(as_frame=False):
    """150 iris flowers: 4 measurements (cm) and the class 0, 1, 2 (rows sorted by class).

    Returns ``(x, y)`` with x float32 (150, 4) and y int64 (150,), or with
    ``as_frame=True`` the DataFrame of ``pd.read_csv("iris.csv", index_col=0)``.
    """
    if as_frame:
        return _pandas("load_iris").read_csv(data_path("iris"), index_col=0)
    header, a = _read("iris")
    return a[:, 1:5].astype(np.float32), a[:, 5].astype(np.int64)


def load_boston(as_frame=False):
    """506 Boston districts: RM CRIM INDUS NOX AGE TAX and the target PRICE (k$).

    Returns ``(x, y)`` with x float32 (506, 6) and y float32 (506,), or with
    ``as_frame=True`` the 7-column DataFrame.
    """
    if as_frame:
        return _pandas("load_boston").read_csv(data_path("boston"))
    header, a = _read("boston")
    return a[:, :6].astype(np.float32), a[:, 6].astype(np.float32)


def load_digits(as_frame=False):
    """1797 handwritten digits as 8×8 images with pixel values 0..16, and their labels.

    Returns ``(x, y)`` with x float32 (1797, 8, 8) and y int64 (1797,), or with
    ``as_frame=True`` the DataFrame of 64 pixel columns plus ``target``.
    """
    if as_frame:
        return _pandas("load_digits").read_csv(data_path("digits"))
    header, a = _read("digits")
    return a[:, :64].reshape(-1, 8, 8).astype(np.float32), a[:, 64].astype(np.int64)


# Keras's downloadable datasets (fetched once into ~/.axone/datasets, checksummed, pickle-free)
from . import remote, mnist, fashion_mnist, cifar10, imdb  # noqa: E402
from . import boston_housing, california_housing, cifar100, reuters  # noqa: E402
from .remote import get_file  # noqa: E402
from . import text_corpus  # noqa: E402  (bundled text: rhymes, generated sentiment and sums)

__all__ += ["remote", "mnist", "fashion_mnist", "cifar10", "imdb", "get_file", "boston_housing",
            "california_housing", "cifar100", "reuters"]
