"""split_dataset: Keras's size rules (fractions or counts), left = first rows, right = last rows,
the seeded shuffle, structures of arrays, bad input."""
import random

import numpy as np
import pytest

from axone.utils import split_dataset

from ._keras import keras_utils

SIZES = [(0.8, None), (None, 0.25), (3, None), (None, 4), (0.3, 0.5), (2, 5), (0.5, 3), (7, 0.2),
         (0.33, None), (0.5, 0.5)]


@pytest.mark.parametrize("left,right", SIZES)
def test_sizes_match_keras(left, right):
    k = keras_utils()
    x = np.arange(10 * 3).reshape(10, 3).astype("float32")
    want = k["rescale"](left, right, 10)
    a, b = split_dataset(x, left_size=left, right_size=right)
    assert (len(a), len(b)) == want
    if sum(want) == len(x):             # Keras's torch split refuses partial splits
        kl, kr = k["split_dataset"](x, left_size=left, right_size=right)
        assert (len(kl), len(kr)) == want


def test_left_is_the_first_rows_right_the_last():
    x, y = np.arange(10), np.arange(10) * 10
    (xl, yl), (xr, yr) = split_dataset((x, y), left_size=3, right_size=4)
    np.testing.assert_array_equal(xl, [0, 1, 2])
    np.testing.assert_array_equal(xr, [6, 7, 8, 9])
    np.testing.assert_array_equal(yl, xl * 10)
    np.testing.assert_array_equal(yr, xr * 10)


def test_structures_are_kept():
    x = np.zeros((6, 2))
    left, right = split_dataset([x, x[:, 0]], left_size=0.5)
    assert isinstance(left, list) and left[0].shape == (3, 2) and right[1].shape == (3,)
    left, right = split_dataset({"a": x, "b": np.arange(6)}, right_size=2)
    assert set(left) == {"a", "b"} and left["a"].shape == (4, 2) and right["b"].tolist() == [4, 5]
    a, b = split_dataset(x, left_size=1)
    assert isinstance(a, np.ndarray) and a.shape == (1, 2) and b.shape == (5, 2)


def test_shuffle_is_seeded_and_is_keras_permutation():
    x, y = np.arange(20), np.arange(20) + 100
    (xl, yl), (xr, yr) = split_dataset((x, y), left_size=0.6, shuffle=True, seed=7)
    (xl2, _), _ = split_dataset((x, y), left_size=0.6, shuffle=True, seed=7)
    np.testing.assert_array_equal(xl, xl2)
    np.testing.assert_array_equal(yl - 100, xl)
    order = list(range(20))
    random.seed(7)                      # what Keras does with the list of samples
    random.shuffle(order)
    np.testing.assert_array_equal(xl, order[:12])
    np.testing.assert_array_equal(xr, order[12:])
    assert sorted(np.concatenate([xl, xr]).tolist()) == list(range(20))


def test_shuffle_leaves_the_global_generator_alone():
    random.seed(1)
    want = random.random()
    random.seed(1)
    split_dataset(np.arange(10), left_size=5, shuffle=True, seed=3)
    assert random.random() == want


@pytest.mark.parametrize("left,right,exc,match", [
    (None, None, ValueError, "at least one"),
    (0, 0, ValueError, "both"),
    (10, None, ValueError, "left_size"),
    (None, -1, ValueError, "right_size"),
    (1.5, None, ValueError, "left_size"),
    (0.7, 0.6, ValueError, "greater than 1"),
    (6, 6, ValueError, "larger than"),
    ("5", None, TypeError, "left_size"),
    (None, np.int64(3), TypeError, "right_size"),
    (0.01, None, ValueError, "left split would be empty"),
])
def test_bad_sizes(left, right, exc, match):
    with pytest.raises(exc, match=match):
        split_dataset(np.arange(10), left_size=left, right_size=right)


def test_bad_datasets():
    with pytest.raises(ValueError, match="same length"):
        split_dataset((np.arange(4), np.arange(5)), left_size=2)
    with pytest.raises(ValueError, match="empty"):
        split_dataset([], left_size=1)
    with pytest.raises(TypeError, match="dataset"):
        split_dataset(42, left_size=1)
    with pytest.raises(ValueError, match="scalar"):
        split_dataset(np.array(3.0), left_size=1)
