"""pad_sequences against Keras 3's on ragged input, every padding / truncating pair."""
import itertools

import numpy as np
import pytest

from axone.compat import install_keras_alias, uninstall_keras_alias
from axone.utils import pad_sequences

from ._keras import keras_utils

RAGGED = [[1], [2, 3], [4, 5, 6], [], [7, 8, 9, 10, 11]]


@pytest.mark.parametrize("padding,truncating", list(itertools.product(["pre", "post"], repeat=2)))
@pytest.mark.parametrize("maxlen", [None, 1, 3, 7])
def test_matches_keras_on_ragged_lists(padding, truncating, maxlen):
    k = keras_utils()["pad_sequences"]
    want = k(RAGGED, maxlen=maxlen, padding=padding, truncating=truncating, value=-1)
    got = pad_sequences(RAGGED, maxlen=maxlen, padding=padding, truncating=truncating, value=-1)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("padding,truncating", list(itertools.product(["pre", "post"], repeat=2)))
def test_matches_keras_on_feature_sequences_and_float_dtype(padding, truncating):
    k = keras_utils()["pad_sequences"]
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 2)) for n in (3, 1, 5)]
    for kw in (dict(maxlen=4, dtype="float32", value=0.5), dict(dtype="float64")):
        want = k(seqs, padding=padding, truncating=truncating, **kw)
        got = pad_sequences(seqs, padding=padding, truncating=truncating, **kw)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_docstring_examples():
    s = [[1], [2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(pad_sequences(s), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(s, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(s, maxlen=2), [[0, 1], [2, 3], [5, 6]])
    assert pad_sequences(s).dtype == np.int32


def test_strings_with_object_or_string_dtype_match_keras():
    k = keras_utils()["pad_sequences"]
    s = [["a", "b"], ["c"]]
    for dtype in (object, "<U3"):
        want = k(s, dtype=dtype, value="-")
        got = pad_sequences(s, dtype=dtype, value="-")
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_string_value_with_numeric_dtype_is_a_value_error():
    with pytest.raises(ValueError, match="dtype=object"):
        pad_sequences([[1, 2]], value="x")


@pytest.mark.parametrize("kw,match", [
    (dict(padding="middle"), "padding"),
    (dict(truncating="both"), "truncating"),
    (dict(maxlen=-1), "maxlen"),
    (dict(maxlen=2.5), "maxlen"),
])
def test_bad_arguments_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences([[1, 2, 3]], **kw)


def test_bad_sequences():
    with pytest.raises(ValueError, match="position 1"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match="list of sequences"):
        pad_sequences(5)
    with pytest.raises(ValueError, match="empty"):
        pad_sequences([])
    assert pad_sequences([], maxlen=3).shape == (0, 3)
    with pytest.raises(ValueError, match="position 1.*expected shape"):
        pad_sequences([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="position 0.*dtype int32"):
        pad_sequences([["a", "b"]])


def test_maxlen_zero_gives_empty_rows():
    assert pad_sequences([[1, 2], [3]], maxlen=0).shape == (2, 0)


def test_reached_through_keras_preprocessing_sequence():
    install_keras_alias()
    try:
        from keras.preprocessing.sequence import pad_sequences as p1
        from keras.utils import pad_sequences as p2
        import keras
        assert p1 is p2 is pad_sequences is keras.preprocessing.sequence.pad_sequences
    finally:
        uninstall_keras_alias()
