"""Feature preprocessing layers (axone/layers/features.py): Keras's documented examples and
test values, the hash functions against reference values, adapt on every kind of data,
configs, saving, gradients and bad input.

Keras 3 runs Hashing, HashedCrossing, IntegerLookup and StringLookup only with TensorFlow, so
they are checked here against the outputs Keras's own docstrings and tests state; the layers
Keras runs on its torch backend are compared with it in tests/parity/test_keras_features_parity.py.
"""

import numpy as np
import pytest

import axone
from axone import Tensor
from axone import layers as L
from axone.layers.features import fingerprint64, fingerprint_cat64, siphash24
from axone.utils import check_gradients


# ------------------------------------------------------------------ hash functions
# FarmHash Fingerprint64 reference values (the FarmHash C++ library) of the bytes
# (i * 37 + 11) % 256 for i < n, one length per branch of the algorithm.
_FP64 = [(0, 0x9ae16a3b2f90404f), (1, 0x4271b80e2915c76a), (3, 0x373a2b2a12e0c581),
         (4, 0xcc1e778137ae6d69), (7, 0x960838fbc6d9c975), (8, 0x7d507025ed4eecfd),
         (15, 0x834f200cfa7ed95f), (16, 0xd836480326a974d6), (17, 0x5cded6cb65c9dac6),
         (31, 0x52a467e87c92d522), (32, 0xa03300e1b2be6da7), (33, 0x839154ca67815696),
         (63, 0x7cf64a4bd1b2b67e), (64, 0xf03eac52d3535), (65, 0xfb360c5023f60db6),
         (127, 0xd70e348fcbf64d04), (128, 0x33ef435f17af1739), (129, 0xc30a81b637d2e4dd),
         (300, 0x70118fe7a7f708b5)]


@pytest.mark.parametrize("n,expected", _FP64)
def test_fingerprint64_reference_values(n, expected):
    s = bytes((i * 37 + 11) % 256 for i in range(n))
    assert fingerprint64(s) == expected


def test_siphash24_reference_vector():
    # the SipHash paper's test vector: key 00..0f, message 00..0e
    key = bytes(range(16))
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    assert siphash24(k0, k1, bytes(range(15))) == 0xa129ca6149be45e5
    assert siphash24(k0, k1, b"") == 0x726fdb47dd0e0e31


def test_fingerprint_cat64_is_order_dependent_and_64_bit():
    a, b = fingerprint64(b"a"), fingerprint64(b"b")
    assert fingerprint_cat64(a, b) != fingerprint_cat64(b, a)
    assert 0 <= fingerprint_cat64(a, b) < 2 ** 64


# ------------------------------------------------------------------ Hashing (Keras's test values)
_ABCDE = [["A"], ["B"], ["C"], ["D"], ["E"]]
_NAMES = [["omar"], ["stringer"], ["marlo"], ["wire"], ["skywalker"]]


@pytest.mark.parametrize("kwargs,inputs,expected", [
    (dict(num_bins=3), _ABCDE, [[1], [0], [1], [1], [2]]),
    (dict(num_bins=3, mask_value=""), [["A"], ["B"], [""], ["C"], ["D"]], [[1], [1], [0], [2], [2]]),
    (dict(num_bins=3, salt=[133, 137]), _ABCDE, [[1], [2], [1], [0], [2]]),
    (dict(num_bins=3, salt=133), _ABCDE, [[0], [0], [2], [1], [0]]),
    (dict(num_bins=1), _ABCDE, [[0]] * 5),
    (dict(num_bins=2), _NAMES, [[0], [0], [1], [0], [0]]),
    (dict(num_bins=3, mask_value=""), _NAMES, [[1], [1], [2], [1], [1]]),
    (dict(num_bins=3, mask_value="omar"), _NAMES, [[0], [1], [2], [1], [1]]),
    (dict(num_bins=2, salt=[133, 137]), _NAMES, [[0], [1], [0], [1], [0]]),
    (dict(num_bins=2, salt=[211, 137]), _NAMES, [[1], [0], [1], [0], [1]]),
    (dict(num_bins=3), np.array([[0], [1], [2], [3], [4]]), [[1], [0], [1], [0], [2]]),
    (dict(num_bins=3, salt=[133, 137]), np.array([[0], [1], [2], [3], [4]]),
     [[1], [1], [2], [0], [1]]),
])
def test_hashing_keras_values(kwargs, inputs, expected):
    out = L.Hashing(**kwargs)(inputs)
    assert isinstance(out, Tensor) and out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), expected)


def test_hashing_input_kinds_agree():
    ref = L.Hashing(num_bins=7)(np.array([["a"], ["bc"]])).numpy()
    for x in (np.array([[b"a"], [b"bc"]]), np.array([["a"], ["bc"]], dtype=object), [["a"], ["bc"]]):
        np.testing.assert_array_equal(L.Hashing(num_bins=7)(x).numpy(), ref)
    # floats are truncated to int64 and hashed as their decimal string
    ints = L.Hashing(num_bins=11)(np.array([1, -2, 30])).numpy()
    np.testing.assert_array_equal(L.Hashing(num_bins=11)(np.array([1.7, -2.2, 30.0])).numpy(), ints)
    np.testing.assert_array_equal(L.Hashing(num_bins=11)(Tensor(np.array([1, -2, 30]))).numpy(), ints)
    expected = [fingerprint64(str(v).encode()) % 11 for v in (1, -2, 30)]
    np.testing.assert_array_equal(ints, expected)


def test_hashing_output_modes():
    x = np.array([0, 1, 2, 3, 4])
    bins = L.Hashing(num_bins=3)(x).numpy()
    oh = L.Hashing(num_bins=3, output_mode="one_hot")(x).numpy()
    np.testing.assert_array_equal(oh, np.eye(3)[bins])
    mh = L.Hashing(num_bins=3, output_mode="multi_hot")(np.array([[0, 1, 2, 3, 4]])).numpy()
    np.testing.assert_array_equal(mh, [[1.0, 1.0, 1.0]])
    cnt = L.Hashing(num_bins=3, output_mode="count")(np.array([[0, 1, 2, 3, 4]])).numpy()
    np.testing.assert_array_equal(cnt, [[2.0, 2.0, 1.0]])
    assert cnt.dtype == np.float32
    assert L.Hashing(num_bins=3, dtype="int32")(x).dtype == np.int32


def test_hashing_in_a_model_and_config():
    inp = axone.Input((2,), dtype="int64")
    out = L.Hashing(num_bins=4, output_mode="multi_hot", name="h")(inp)
    assert out.shape == (None, 4)
    m = axone.Model(inp, out)
    x = np.array([[1, 2], [3, 3]])
    np.testing.assert_array_equal(m.predict(x, verbose=0), L.Hashing(4, output_mode="multi_hot")(x).numpy())
    layer = L.Hashing(num_bins=5, salt=7, mask_value=0)
    cfg = layer.get_config()
    assert cfg["salt"] == [7, 7] and cfg["mask_value"] == 0 and cfg["num_bins"] == 5
    again = L.Hashing.from_config(cfg)
    np.testing.assert_array_equal(again(x).numpy(), layer(x).numpy())


def test_hashing_bad_arguments():
    with pytest.raises(ValueError, match="num_bins"):
        L.Hashing(num_bins=None)
    with pytest.raises(ValueError, match="num_bins"):
        L.Hashing(num_bins=-1)
    with pytest.raises(ValueError, match="salt"):
        L.Hashing(num_bins=2, salt="string")
    with pytest.raises(ValueError, match="salt"):
        L.Hashing(num_bins=2, salt=[1])
    with pytest.raises(ValueError, match="output_mode"):
        L.Hashing(num_bins=2, output_mode="tf_idf")
    with pytest.raises(ValueError, match="dtype"):
        L.Hashing(num_bins=2, dtype="float32")
    with pytest.raises(ValueError, match="sparse"):
        L.Hashing(num_bins=2, output_mode="multi_hot", sparse=True)
    with pytest.raises(TypeError, match="Hashing"):
        L.Hashing(num_bins=2)(np.array([[1 + 2j]]))


# ------------------------------------------------------------------ HashedCrossing
def test_hashed_crossing_keras_values():
    f1 = np.array(["A", "B", "A", "B", "A"])
    f2 = np.array([101, 101, 101, 102, 102])
    out = L.HashedCrossing(num_bins=5)((f1, f2))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), [1, 4, 1, 1, 3])
    oh = L.HashedCrossing(num_bins=5, output_mode="one_hot")((f1, f2)).numpy()
    np.testing.assert_array_equal(oh, np.eye(5, dtype="float32")[[1, 4, 1, 1, 3]])
    assert int(L.HashedCrossing(num_bins=10)((np.array("A"), np.array(101))).numpy()) == 1
    col = L.HashedCrossing(num_bins=5)([f1[:, None], f2[:, None]]).numpy()
    np.testing.assert_array_equal(col, [[1], [4], [1], [1], [3]])
    assert L.HashedCrossing(num_bins=2, dtype="int32")((f2, f2)).dtype == np.int32


def test_hashed_crossing_bad_inputs():
    layer = L.HashedCrossing(num_bins=10)
    with pytest.raises(ValueError, match="list or tuple"):
        layer(np.array(1))
    with pytest.raises(ValueError, match="at least two"):
        layer([np.array(1)])
    with pytest.raises(ValueError, match="shape"):
        layer((np.array([[[1]]]), np.array([[[1]]])))
    with pytest.raises(ValueError, match="equal shape"):
        layer((np.array([1, 2]), np.array([1])))
    with pytest.raises(ValueError, match="integer or string"):
        layer((np.array([1.0]), np.array([1.0])))
    with pytest.raises(ValueError, match="output_mode"):
        L.HashedCrossing(num_bins=3, output_mode="multi_hot")


# ------------------------------------------------------------------ IntegerLookup / StringLookup
def test_lookup_docstring_examples():
    vocab = [12, 36, 1138, 42]
    x = np.array([[12, 1138, 42], [42, 1000, 36]])
    np.testing.assert_array_equal(L.IntegerLookup(vocabulary=vocab)(x).numpy(),
                                  [[1, 3, 4], [4, 0, 2]])
    s = np.array([["a", "c", "d"], ["d", "z", "b"]])
    np.testing.assert_array_equal(L.StringLookup(vocabulary=["a", "b", "c", "d"])(s).numpy(),
                                  [[1, 3, 4], [4, 0, 2]])
    # adapt: by descending count, ties by descending token (Keras's docstring examples)
    data = np.array([[12, 1138, 42], [42, 1000, 36]])
    layer = L.IntegerLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    np.testing.assert_array_equal(layer(data).numpy(), [[5, 2, 1], [1, 3, 4]])
    slayer = L.StringLookup()
    slayer.adapt(s)
    assert slayer.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    np.testing.assert_array_equal(slayer(s).numpy(), [[5, 3, 1], [1, 2, 4]])
    fwd = L.IntegerLookup(vocabulary=vocab)
    back = L.IntegerLookup(vocabulary=fwd.get_vocabulary(), invert=True)
    np.testing.assert_array_equal(back(fwd(data)).numpy(), [[12, 1138, 42], [42, -1, 36]])
    layer = L.IntegerLookup()
    layer.adapt(np.array([[12, 1138, 42], [42, 1000, 36], [36, 1000, 42]]))
    assert layer.get_vocabulary() == [-1, 42, 1000, 36, 1138, 12]
    # multiple OOV indices (floormod for integers)
    layer = L.IntegerLookup(vocabulary=vocab, num_oov_indices=2)
    np.testing.assert_array_equal(layer(np.array([[12, 1138, 42], [37, 1000, 36]])).numpy(),
                                  [[2, 4, 5], [1, 0, 3]])
    # multi-hot
    layer = L.IntegerLookup(vocabulary=vocab, output_mode="multi_hot")
    np.testing.assert_array_equal(layer(np.array([[12, 1138, 42, 42], [42, 7, 36, 7]])).numpy(),
                                  [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
    # tf-idf
    layer = L.IntegerLookup(output_mode="tf_idf", vocabulary=vocab, idf_weights=[0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(layer(np.array([[12, 1138, 42, 42], [42, 7, 36, 7]])).numpy(),
                               [[0.0, 0.25, 0.0, 0.6, 0.8], [1.0, 0.0, 0.75, 0.0, 0.4]], rtol=1e-6)
    layer = L.IntegerLookup(output_mode="tf_idf", vocabulary=[-1] + vocab,
                            idf_weights=[0.9, 0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(layer(np.array([[12, 1138, 42, 42], [42, 7, 36, 7]])).numpy(),
                               [[0.0, 0.25, 0.0, 0.6, 0.8], [1.8, 0.0, 0.75, 0.0, 0.4]], rtol=1e-6)
    # inverse lookup
    inv = L.IntegerLookup(vocabulary=vocab, invert=True)
    np.testing.assert_array_equal(inv(np.array([[1, 3, 4], [4, 0, 2]])).numpy(),
                                  [[12, 1138, 42], [42, -1, 36]])
    sinv = L.StringLookup(vocabulary=["a", "b", "c", "d"], invert=True)(np.array([[1, 3, 4], [4, 0, 2]]))
    assert sinv.tolist() == [["a", "c", "d"], ["d", "[UNK]", "b"]]


def test_lookup_mask_and_one_hot():
    vocab = [12, 36, 1138, 42]
    layer = L.IntegerLookup(vocabulary=vocab, mask_token=0)
    np.testing.assert_array_equal(layer(np.array([[12, 1138, 42], [42, 0, 36]])).numpy(),
                                  [[2, 4, 5], [5, 0, 3]])
    assert layer.get_vocabulary() == [0, -1, 12, 36, 1138, 42]
    assert layer.vocabulary_size() == 6
    oh = L.IntegerLookup(vocabulary=vocab, output_mode="one_hot")(np.array([12, 36, 1138, 42, 7]))
    np.testing.assert_array_equal(oh.numpy(), np.eye(5)[[1, 2, 3, 4, 0]])
    # in non-int modes a masked value encodes to nothing
    mh = L.StringLookup(vocabulary=["a", "b"], mask_token="", output_mode="multi_hot")
    np.testing.assert_array_equal(mh(np.array([["a", ""], ["", ""]])).numpy(), [[0, 1, 0], [0, 0, 0]])
    assert mh.get_vocabulary() == ["[UNK]", "a", "b"]
    inv = L.StringLookup(vocabulary=["a", "b"], mask_token="", invert=True)
    assert inv(np.array([0, 1, 2, 3, 9])).tolist() == ["", "[UNK]", "a", "b", "[UNK]"]


def test_string_lookup_adapt_ordering_and_max_tokens():
    data = np.array([["b", "a", "c"], ["c", "d", "a"], ["c", "e", "e"]])
    layer = L.StringLookup()
    layer.adapt(data)
    # counts c:3, a:2, e:2, b:1, d:1 — ties by descending token
    assert layer.get_vocabulary() == ["[UNK]", "c", "e", "a", "d", "b"]
    assert layer.get_vocabulary(include_special_tokens=False) == ["c", "e", "a", "d", "b"]
    small = L.StringLookup(max_tokens=3)
    small.adapt(data)
    assert small.get_vocabulary() == ["[UNK]", "c", "e"]
    # batches from a generator, bytes, and steps
    gen = L.StringLookup()
    gen.adapt((np.char.encode(b, "utf-8") for b in data), steps=2)
    assert gen.get_vocabulary() == ["[UNK]", "c", "a", "d", "b"]
    batched = L.StringLookup()
    batched.adapt(data, batch_size=1)
    assert batched.get_vocabulary() == layer.get_vocabulary()
    # the mask and OOV tokens are never learned
    masked = L.StringLookup(mask_token="")
    masked.adapt([["", "[UNK]", "x"]])
    assert masked.get_vocabulary() == ["", "[UNK]", "x"]


def test_string_lookup_tf_idf_adapt():
    data = np.array([["a", "a", "b"], ["b", "c", "c"]])
    layer = L.StringLookup(output_mode="tf_idf")
    layer.adapt(data)
    vocab = layer.get_vocabulary()
    assert vocab == ["[UNK]", "c", "b", "a"]
    df = np.array([1, 2, 1], dtype=np.float64)       # documents holding c, b, a
    idf = np.log(1 + 2 / (1 + df))
    idf = np.concatenate([[idf.mean()], idf])
    out = layer(np.array([["a", "a", "z"]])).numpy()
    np.testing.assert_allclose(out, [[idf[0], 0, 0, 2 * idf[3]]], rtol=1e-6)
    again = L.StringLookup.from_config(layer.get_config())
    np.testing.assert_allclose(again(np.array([["a", "a", "z"]])).numpy(), out, rtol=1e-6)


def test_string_lookup_oov_buckets_are_farmhash():
    layer = L.StringLookup(vocabulary=["a"], num_oov_indices=3)
    out = layer(np.array(["a", "xyz", "hello"])).numpy()
    assert out[0] == 3
    assert out[1] == fingerprint64(b"xyz") % 3 and out[2] == fingerprint64(b"hello") % 3
    salted = L.StringLookup(vocabulary=["a"], num_oov_indices=3, salt=[1, 2])
    assert salted(np.array(["xyz"])).numpy()[0] == siphash24(1, 2, b"xyz") % 3
    ints = L.IntegerLookup(vocabulary=[5], num_oov_indices=3, oov_method="farmhash")
    assert ints(np.array([-7])).numpy()[0] == fingerprint64(b"-7") % 3


def test_lookup_pad_to_max_tokens_and_count():
    layer = L.IntegerLookup(vocabulary=[3, 4], output_mode="count", pad_to_max_tokens=True,
                            max_tokens=6)
    np.testing.assert_array_equal(layer(np.array([[3, 3, 9, 4]])).numpy(), [[1, 2, 1, 0, 0, 0]])
    assert layer.compute_output_shape((None, 4)) == (None, 6)


def test_lookup_vocabulary_file(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("x\ny\nz\n", encoding="utf-8")
    layer = L.StringLookup(vocabulary=str(p))
    np.testing.assert_array_equal(layer(np.array(["z", "x", "q"])).numpy(), [3, 1, 0])
    ip = tmp_path / "ints.txt"
    ip.write_text("7\n8\n", encoding="utf-8")
    assert L.IntegerLookup(vocabulary=str(ip)).get_vocabulary() == [-1, 7, 8]
    with pytest.raises(ValueError, match="does not exist"):
        L.StringLookup(vocabulary=str(tmp_path / "missing.txt"))


def test_lookup_config_round_trip_after_adapt():
    layer = L.IntegerLookup(num_oov_indices=2, mask_token=0)
    layer.adapt(np.array([[5, 6, 6], [7, 0, 6]]))
    cfg = layer.get_config()
    assert cfg["vocabulary"] == [6, 7, 5] and cfg["mask_token"] == 0
    again = L.IntegerLookup.from_config(cfg)
    x = np.array([[5, 0, 9, 6, 7, 10]])
    np.testing.assert_array_equal(again(x).numpy(), layer(x).numpy())
    again.adapt(np.array([[1, 2, 2]]))          # an adapted vocabulary may be adapted again
    assert again.get_vocabulary() == [0, -1, -1, 2, 1]


def test_lookup_in_a_model_saves_and_loads(tmp_path):
    inp = axone.Input((3,), dtype="int64")
    y = L.IntegerLookup(vocabulary=[10, 20, 30], output_mode="multi_hot")(inp)
    out = L.Dense(2)(y)
    model = axone.Model(inp, out)
    x = np.array([[10, 30, 99], [20, 20, 20]])
    path = str(tmp_path / "m.axone")
    model.save(path)
    loaded = axone.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_lookup_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="max_tokens"):
        L.IntegerLookup(max_tokens=1)
    with pytest.raises(ValueError, match="num_oov_indices"):
        L.StringLookup(num_oov_indices=-1)
    with pytest.raises(ValueError, match="invert"):
        L.StringLookup(invert=True, output_mode="multi_hot")
    with pytest.raises(ValueError, match="idf_weights"):
        L.StringLookup(vocabulary=["a"], output_mode="tf_idf")
    with pytest.raises(ValueError, match="idf_weights"):
        L.StringLookup(idf_weights=[1.0])
    with pytest.raises(ValueError, match="repeated"):
        L.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="mask token"):
        L.StringLookup(vocabulary=["a", ""], mask_token="")
    with pytest.raises(ValueError, match="larger than the maximum"):
        L.StringLookup(vocabulary=["a", "b", "c"], max_tokens=3)
    with pytest.raises(ValueError, match="vocabulary_dtype"):
        L.IntegerLookup(vocabulary_dtype="int32")
    with pytest.raises(ValueError, match="salt"):
        L.IntegerLookup(salt=3)
    with pytest.raises(ValueError, match="sparse"):
        L.StringLookup(output_mode="multi_hot", sparse=True)
    with pytest.raises(ValueError, match="static vocabulary"):
        L.StringLookup(vocabulary=["a"]).adapt(["a"])
    with pytest.raises(RuntimeError, match="vocabulary before"):
        L.StringLookup(output_mode="multi_hot")(np.array(["a"]))
    with pytest.raises(ValueError, match="num_oov_indices=0"):
        L.StringLookup(vocabulary=["a"], num_oov_indices=0)(np.array(["b"]))
    with pytest.raises(TypeError, match="StringLookup"):
        L.StringLookup(vocabulary=["a"])(np.array([1, 2]))
    with pytest.raises(TypeError, match="IntegerLookup"):
        L.IntegerLookup(vocabulary=[1])(np.array(["a"]))
    with pytest.raises(TypeError, match="symbolic"):
        L.StringLookup(vocabulary=["a"])(axone.Input((1,)))


# ------------------------------------------------------------------ CategoryEncoding
def test_category_encoding_examples():
    oh = L.CategoryEncoding(num_tokens=4, output_mode="one_hot")(np.array([3, 2, 0, 1]))
    np.testing.assert_array_equal(oh.numpy(), np.eye(4)[[3, 2, 0, 1]])
    mh = L.CategoryEncoding(num_tokens=4, output_mode="multi_hot")(np.array([[0, 1], [0, 0], [1, 2], [3, 1]]))
    np.testing.assert_array_equal(mh.numpy(), [[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]])
    cnt = L.CategoryEncoding(num_tokens=4, output_mode="count")
    out = cnt(np.array([[0, 1], [0, 0], [1, 2], [3, 1]]),
              count_weights=np.array([[.1, .2], [.1, .1], [.2, .3], [.4, .2]]))
    np.testing.assert_allclose(out.numpy(), [[.1, .2, 0, 0], [.2, 0, 0, 0], [0, .2, .3, 0],
                                             [0, .2, 0, .4]], rtol=1e-6)
    assert out.dtype == np.float32


def test_category_encoding_bad_input():
    with pytest.raises(ValueError, match="num_tokens"):
        L.CategoryEncoding()
    with pytest.raises(ValueError, match="num_tokens"):
        L.CategoryEncoding(num_tokens=0)
    with pytest.raises(ValueError, match="output_mode"):
        L.CategoryEncoding(num_tokens=3, output_mode="int")
    layer = L.CategoryEncoding(num_tokens=3, name="ce")
    with pytest.raises(ValueError, match="'ce'.*range"):
        layer(np.array([[0, 3]]))
    with pytest.raises(ValueError, match="range"):
        layer(np.array([[-1, 1]]))
    with pytest.raises(ValueError, match="count_weights"):
        layer(np.array([[0, 1]]), count_weights=np.array([[1.0, 1.0]]))
    with pytest.raises(TypeError, match="numeric"):
        layer(np.array([["a"]]))


# ------------------------------------------------------------------ Discretization
def test_discretization_examples_and_adapt():
    x = np.array([[-1.5, 1.0, 3.4, .5], [0.0, 3.0, 1.3, 0.0]])
    out = L.Discretization(bin_boundaries=[0., 1., 2.])(x)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.numpy(), [[0, 2, 3, 1], [1, 3, 2, 1]])
    layer = L.Discretization(num_bins=4, epsilon=0.01)
    layer.adapt(x)
    np.testing.assert_allclose(layer.bin_boundaries, [0.0, 0.5, 1.3], rtol=1e-6)
    # adapting batch by batch, from a list of arrays and from a generator
    data = np.random.default_rng(0).normal(size=(500, 2)).astype("float32")
    whole = L.Discretization(num_bins=5)
    whole.adapt(data)
    gen = L.Discretization(num_bins=5)
    gen.adapt(data[i:i + 100] for i in range(0, 500, 100))
    lst = L.Discretization(num_bins=5)
    lst.adapt([data[i:i + 100] for i in range(0, 500, 100)])
    assert lst.bin_boundaries == gen.bin_boundaries
    np.testing.assert_allclose(gen.bin_boundaries, whole.bin_boundaries, atol=0.1)
    np.testing.assert_allclose(whole.bin_boundaries, np.quantile(data, [.2, .4, .6, .8]), atol=0.05)
    cfg = whole.get_config()
    again = L.Discretization.from_config(cfg)
    np.testing.assert_array_equal(again(data).numpy(), whole(data).numpy())


def test_discretization_bad_arguments():
    with pytest.raises(ValueError, match="either"):
        L.Discretization()
    with pytest.raises(ValueError, match="should not be set"):
        L.Discretization(num_bins=2, bin_boundaries=[1.0])
    with pytest.raises(ValueError, match="num_bins"):
        L.Discretization(num_bins=-1)
    with pytest.raises(ValueError, match="sorted"):
        L.Discretization(bin_boundaries=[2.0, 1.0])
    with pytest.raises(ValueError, match="output_mode"):
        L.Discretization(bin_boundaries=[1.0], output_mode="tf_idf")
    with pytest.raises(ValueError, match="sparse"):
        L.Discretization(bin_boundaries=[1.0], output_mode="count", sparse=True)
    with pytest.raises(ValueError, match="adapt"):
        L.Discretization(num_bins=3)(np.ones(3))
    with pytest.raises(ValueError, match="bin_boundaries"):
        L.Discretization(bin_boundaries=[1.0]).adapt(np.ones(3))
    with pytest.raises(TypeError, match="numeric"):
        L.Discretization(bin_boundaries=[1.0])(np.array(["a"]))
    with pytest.raises(ValueError, match="num_bins=0"):
        L.Discretization(num_bins=0).adapt(np.ones(3))


def test_scalar_pandas_and_tensor_inputs():
    pd = pytest.importorskip("pandas")
    assert L.Hashing(num_bins=3)("A").numpy().shape == ()
    assert int(L.Hashing(num_bins=3)("A").numpy()) == int(L.Hashing(num_bins=3)([["A"]]).numpy()[0, 0])
    lookup = L.StringLookup(vocabulary=["x", "y"])
    np.testing.assert_array_equal(lookup(pd.Series(["y", "q", "x"])).numpy(), [2, 0, 1])
    assert int(lookup("y").numpy()) == 2
    ilookup = L.IntegerLookup(vocabulary=[4, 5])
    np.testing.assert_array_equal(ilookup(Tensor(np.array([[5, 4, 3]]))).numpy(), [[2, 1, 0]])
    np.testing.assert_array_equal(ilookup(np.array([[5.0, 4.0]])).numpy(), [[2, 1]])
    with pytest.raises(TypeError, match="integer"):
        ilookup(np.array([4.5]))
    norm = L.Normalization(axis=None)
    norm.adapt(pd.DataFrame({"a": [1.0, 3.0], "b": [5.0, 7.0]}))
    np.testing.assert_allclose(norm.get_weights()[:2], [4.0, 5.0])
    enc = L.CategoryEncoding(num_tokens=3)
    np.testing.assert_array_equal(enc([[0, 2]]).numpy(), [[1, 0, 1]])


# ------------------------------------------------------------------ Normalization
def test_normalization_docstring_examples():
    layer = L.Normalization(axis=None)
    layer.adapt(np.array([1., 2., 3., 4., 5.], dtype="float32"))
    np.testing.assert_allclose(layer(np.array([1., 2., 3.], dtype="float32")).numpy(),
                               [-1.4142135, -0.70710677, 0.], rtol=1e-6)
    data = np.array([[0., 7., 4.], [2., 9., 6.], [0., 7., 4.], [2., 9., 6.]], dtype="float32")
    layer = L.Normalization(axis=-1)
    layer.adapt(data)
    np.testing.assert_allclose(layer(data[:1]).numpy(), [[-1., -1., -1.]], rtol=1e-6)
    layer = L.Normalization(mean=3., variance=2.)
    np.testing.assert_allclose(layer(np.array([[1.], [2.], [3.]], dtype="float32")).numpy(),
                               [[-1.4142135], [-0.70710677], [0.]], rtol=1e-6)
    layer = L.Normalization(axis=-1, invert=True)
    layer.adapt(data)
    np.testing.assert_allclose(layer(np.array([[1., 2., 3.]], dtype="float32")).numpy(),
                               [[2., 10., 8.]], rtol=1e-6)


def test_normalization_adapt_on_batches_matches_whole_array():
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(300, 4)) * [1, 10, 0.1, 5] + [0, 3, -2, 100]).astype("float32")
    whole = L.Normalization()
    whole.adapt(data)
    np.testing.assert_allclose(whole.mean.reshape(-1), data.astype(np.float64).mean(0), rtol=1e-5)
    np.testing.assert_allclose(whole.variance.reshape(-1), data.astype(np.float64).var(0), rtol=1e-4)
    for kind, arg in [("generator", (data[i:i + 64] for i in range(0, 300, 64))),
                      ("list", [data[i:i + 64] for i in range(0, 300, 64)]),
                      ("xy tuples", [(data[i:i + 64], None) for i in range(0, 300, 64)])]:
        layer = L.Normalization()
        layer.adapt(arg)
        np.testing.assert_allclose(layer.get_weights()[0], whole.get_weights()[0], rtol=1e-5,
                                   atol=1e-5, err_msg=kind)
        np.testing.assert_allclose(layer.get_weights()[1], whole.get_weights()[1], rtol=1e-4,
                                   err_msg=kind)
    batched = L.Normalization()
    batched.adapt(data, batch_size=50)
    np.testing.assert_allclose(batched.get_weights()[1], whole.get_weights()[1], rtol=1e-4)
    steps = L.Normalization()
    steps.adapt(data, batch_size=100, steps=1)
    np.testing.assert_allclose(steps.get_weights()[0], data[:100].mean(0), rtol=1e-5, atol=1e-5)
    plain = L.Normalization(axis=None)
    plain.adapt([1.0, 2.0, 3.0])                 # a plain list of numbers is one array
    np.testing.assert_allclose(plain.get_weights()[:2], [2.0, 2.0 / 3.0], rtol=1e-6)


def test_normalization_axes_and_weights():
    data = np.random.default_rng(2).normal(size=(5, 2, 3)).astype("float32")
    layer = L.Normalization(axis=(1, 2))
    layer.adapt(data)
    assert [w.name for w in layer.weights] == ["mean", "variance", "count"]
    assert [w.shape for w in layer.weights] == [(2, 3), (2, 3), ()]
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 3
    np.testing.assert_allclose(layer(data).numpy(),
                               (data - data.mean(0)) / np.sqrt(data.var(0)), rtol=1e-4, atol=1e-5)
    lay0 = L.Normalization(axis=0)
    lay0.adapt(data)
    assert lay0.weights[0].shape == (5,)
    # constant mean / variance broadcast to the kept axes
    c = L.Normalization(axis=-1, mean=[1., 2., 3.], variance=[1., 4., 9.])
    np.testing.assert_allclose(c(np.array([[2., 4., 6.]])).numpy(), [[1., 1., 1.]])
    assert c.weights == []


def test_normalization_gradients():
    layer = L.Normalization(axis=-1, mean=[1., 2., 3.], variance=[1., 4., 9.], dtype="float64")
    x = np.random.default_rng(3).normal(size=(4, 3))
    assert check_gradients(lambda t: layer(t), x).max_error < 1e-8
    adapted = L.Normalization(axis=(1,), invert=True, dtype="float64")
    adapted.adapt(np.random.default_rng(4).normal(size=(10, 3)) * 3)
    assert check_gradients(lambda t: adapted(t), x).max_error < 1e-8


def test_normalization_in_a_trained_model_saves_and_loads(tmp_path):
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(64, 3)) * 4 + 2).astype("float32")
    y = (x @ np.array([[1.], [-2.], [.5]])).astype("float32")
    norm = L.Normalization()
    norm.adapt(x)
    inp = axone.Input((3,))
    model = axone.Model(inp, L.Dense(1)(norm(inp)))
    model.compile(loss="mse", optimizer="sgd")
    model.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "norm.axone")
    model.save(path)
    loaded = axone.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(loaded.get_layer(norm.name).get_weights()[0], norm.get_weights()[0])
    seq = axone.Sequential([axone.Input((3,)), norm, L.Dense(2)])
    p2 = str(tmp_path / "seq.axone")
    seq.save(p2)
    np.testing.assert_allclose(axone.models.load_model(p2).predict(x, verbose=0),
                               seq.predict(x, verbose=0), rtol=1e-6)
    scalar = L.Normalization(axis=None)
    scalar.adapt(x)
    s = axone.Sequential([axone.Input((3,)), scalar])
    p3 = str(tmp_path / "scalar.axone")
    s.save(p3)
    np.testing.assert_allclose(axone.models.load_model(p3).predict(x, verbose=0),
                               s.predict(x, verbose=0), rtol=1e-6)


def test_normalization_config():
    layer = L.Normalization(axis=(1,), mean=[1., 2.], variance=[1., 4.], invert=True)
    cfg = layer.get_config()
    assert cfg["axis"] == [1] and cfg["mean"] == [1., 2.] and cfg["invert"] is True
    again = L.Normalization.from_config(cfg)
    x = np.array([[0., 1.]], dtype="float32")
    np.testing.assert_allclose(again(x).numpy(), layer(x).numpy())
    assert L.Normalization().get_config()["mean"] is None


def test_normalization_bad_arguments():
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        L.Normalization(mean=1.)
    with pytest.raises(ValueError, match="same shape"):
        L.Normalization(mean=[1., 2.], variance=1.)
    with pytest.raises(ValueError, match="rank of `mean`"):
        L.Normalization(mean=[[1.]], variance=[[1.]])
    with pytest.raises(TypeError, match="axis"):
        L.Normalization(axis="last")
    with pytest.raises(ValueError, match="range"):
        L.Normalization(axis=2)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="broadcast"):
        L.Normalization(mean=[1., 2.], variance=[1., 1.])(np.ones((2, 3)))
    layer = L.Normalization(name="nz")
    layer.adapt(np.ones((4, 3)))
    with pytest.raises(ValueError, match="incompatible shape"):
        layer.adapt(np.ones((4, 2)))
    with pytest.raises(ValueError, match="'nz'"):
        layer(np.ones((4, 2)))
    with pytest.raises(ValueError, match="cannot adapt"):
        L.Normalization(mean=1., variance=1.).adapt(np.ones((2, 1)))
    with pytest.raises(ValueError, match="empty iterable"):
        L.Normalization().adapt(iter([]))
    with pytest.raises(TypeError, match="numeric"):
        L.Normalization().adapt(np.array([["a"]]))
    with pytest.raises(ValueError, match="batch_size"):
        L.Normalization().adapt(np.ones((2, 1)), batch_size=0)
