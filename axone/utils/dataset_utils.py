"""Splitting arrays into two datasets, as ``keras.utils.split_dataset``."""
import random

import numpy as np

__all__ = ["split_dataset"]


def _split_sizes(left_size, right_size, total):
    """Keras's size rules: an int is a count in ``(0, total)``, a float a fraction in ``(0, 1)``
    (rounded, ``round(f · total)``); a missing side is the complement of the other."""
    for name, v in (("left_size", left_size), ("right_size", right_size)):
        if v is not None and type(v) not in (int, float):
            raise TypeError(f"split_dataset: `{name}` must be an int, a float or None, "
                            f"received {type(v).__name__} {v!r}")
    if left_size is None and right_size is None:
        raise ValueError("split_dataset: at least one of `left_size` or `right_size` must be "
                         "specified, received left_size=None and right_size=None")
    if left_size == 0 and right_size == 0:
        raise ValueError("split_dataset: both `left_size` and `right_size` are zero; at least one "
                         "of the split sizes must be non-zero")
    for name, v in (("left_size", left_size), ("right_size", right_size)):
        if type(v) is int and not 0 < v < total or type(v) is float and not 0 < v < 1:
            raise ValueError(f"split_dataset: `{name}` must be a positive integer smaller than "
                             f"{total}, or a float within the range (0, 1), received {name}={v}")
    if type(left_size) is float and type(right_size) is float and left_size + right_size > 1:
        raise ValueError(f"split_dataset: the sum of `left_size` and `right_size` is greater than "
                         f"1 (received {left_size} + {right_size})")
    left = round(left_size * total) if type(left_size) is float else left_size
    right = round(right_size * total) if type(right_size) is float else right_size
    if left is None:
        left = total - right
    elif right is None:
        right = total - left
    if left + right > total:
        raise ValueError(f"split_dataset: left_size + right_size = {left + right} is larger than "
                         f"the dataset's length {total}")
    for n, side in ((left, "left"), (right, "right")):
        if n == 0:
            raise ValueError(f"split_dataset: with a dataset of length {total}, left_size={left} "
                             f"and right_size={right}, the {side} split would be empty")
    return int(left), int(right)


def _columns(dataset):
    """The arrays of ``dataset`` and a function that rebuilds its structure from new ones."""
    if hasattr(dataset, "to_numpy") and not isinstance(dataset, np.ndarray):
        dataset = dataset.to_numpy()
    if isinstance(dataset, np.ndarray):
        return [dataset], lambda cols: cols[0]
    if isinstance(dataset, dict):
        keys = list(dataset)
        cols = [np.asarray(dataset[k]) for k in keys]
        return cols, lambda c: dict(zip(keys, c))
    if isinstance(dataset, (list, tuple)):
        if not dataset:
            raise ValueError("split_dataset: received an empty list dataset")
        cols = [np.asarray(a.to_numpy() if hasattr(a, "to_numpy") else a) for a in dataset]
        kind = type(dataset)
        return cols, lambda c: kind(c)
    raise TypeError(f"split_dataset: `dataset` must be a NumPy array, or a list, tuple or dict "
                    f"of arrays of the same length, received {type(dataset).__name__}")


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None):
    """Split arrays into a left and a right part along their first axis: ``(left, right)``.

    ``dataset`` is an array or a list / tuple / dict of arrays of one length ``n`` (a tuple
    ``(x, y)`` gives ``((x_left, y_left), (x_right, y_right))``). The left part is the first
    ``left_size`` rows, the right part the last ``right_size`` rows (see the size rules of
    :func:`_split_sizes`); with ``shuffle`` the rows are first permuted by
    ``random.Random(seed).shuffle`` — the permutation Keras applies with ``random.seed(seed)``,
    without touching Python's global generator.
    """
    cols, rebuild = _columns(dataset)
    for c in cols:
        if c.ndim == 0:
            raise ValueError("split_dataset: every array of `dataset` must have a first axis, "
                             "received a scalar")
    total = len(cols[0])
    if any(len(c) != total for c in cols):
        raise ValueError(f"split_dataset: the arrays of `dataset` must have the same length, "
                         f"received lengths {[len(c) for c in cols]}")
    if total == 0:
        raise ValueError("split_dataset: received an empty dataset")
    left, right = _split_sizes(left_size, right_size, total)
    order = list(range(total))
    if shuffle:
        if seed is None:
            seed = random.randint(0, int(1e6))
        random.Random(seed).shuffle(order)
    order = np.asarray(order, dtype=np.int64)
    li, ri = order[:left], order[total - right:]
    return rebuild([c[li] for c in cols]), rebuild([c[ri] for c in cols])
