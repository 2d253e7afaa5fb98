"""Turning user data (arrays, nested lists, pandas objects) into checked NumPy arrays."""
import numpy as np

from .. import backend
from ..autograd.tensor import Tensor


def to_array(x, what):
    """One array from an ndarray, a Tensor, a nested list or a pandas DataFrame/Series."""
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "to_numpy") and hasattr(x, "shape"):   # pandas DataFrame / Series
        try:
            x = x.to_numpy()
        except (TypeError, ValueError) as e:
            raise TypeError(f"{what}: could not convert the DataFrame to numbers: {e}") from None
    try:
        arr = np.asarray(x)
    except ValueError as e:
        raise ValueError(f"{what}: expected a rectangular array, received ragged nested lists ({e})") from None
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{what}: expected numeric data, received values of type object "
                            f"(e.g. strings); encode them as numbers first") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected numeric data, received dtype {arr.dtype}")
    return arr


def to_arrays(x, what, n_expected=None):
    """A list of arrays: one per model input/output (a single array, a list, or a dict)."""
    if x is None:
        return None
    if isinstance(x, dict):
        return {k: to_array(v, f"{what}[{k!r}]") for k, v in x.items()}
    if isinstance(x, (list, tuple)) and n_expected and n_expected > 1 and len(x) == n_expected and all(
            hasattr(i, "shape") or isinstance(i, (list, tuple)) for i in x):
        return [to_array(v, f"{what}[{i}]") for i, v in enumerate(x)]
    return [to_array(x, what)]


def check_finite(arrays, what):
    for i, a in enumerate(arrays):
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))[0]
            kind = "NaN" if np.isnan(a[tuple(bad)]) else "inf"
            name = what if len(arrays) == 1 else f"{what}[{i}]"
            raise ValueError(f"{name} contains {kind} (first at index {tuple(int(b) for b in bad)}); "
                             f"clean or impute the data before training")


def cast_inputs(arrays, dtypes=None):
    """Inputs become floatx unless their input layer asks for another dtype (integers for embeddings)."""
    out = []
    fx = np.dtype(backend.floatx())
    for i, a in enumerate(arrays):
        want = np.dtype(dtypes[i]) if dtypes is not None and dtypes[i] is not None else fx
        if a.dtype != want and not (want.kind in "iu" and a.dtype.kind in "iu"):
            a = a.astype(want)
        out.append(a)
    return out


def n_rows(arrays, what):
    ns = {a.shape[0] if a.ndim else 1 for a in arrays}
    if len(ns) != 1:
        raise ValueError(f"{what}: all arrays must have the same number of rows, received "
                         f"{[a.shape[0] for a in arrays]}")
    return ns.pop()
