"""TextVectorization vs Keras's documented behaviour.

Keras 3's TextVectorization needs TensorFlow, which this environment lacks, so
the expectations are computed by hand from Keras's algorithm (index 0 = "",
1 = "[UNK]", tokens by descending count, ties by descending UTF-8 bytes) and
taken from the expected values of Keras's own text_vectorization_test.py.
"""
import numpy as np
import pytest

import axone
from axone.layers import TextVectorization


def out(layer, x):
    y = layer(x)
    assert isinstance(y, axone.Tensor)
    return y.numpy()


# ------------------------------------------------------------------ adapt / vocabulary
def test_keras_docstring_example_adapt_flow():
    layer = TextVectorization(max_tokens=5000, output_mode="int", output_sequence_length=4)
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    # bar, baz: 2 each → "baz" > "bar"; foo, boom, bada: 1 each → descending bytes
    assert layer.get_vocabulary() == ["", "[UNK]", "baz", "bar", "foo", "boom", "bada"]
    y = out(layer, [["foo qux bar"], ["qux baz"]])
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [[4, 1, 3, 0], [1, 2, 0, 0]])
    assert layer.vocabulary_size() == 7
    assert layer.get_vocabulary(include_special_tokens=False) == ["baz", "bar", "foo", "boom", "bada"]


def test_tie_break_exact():
    layer = TextVectorization()
    layer.adapt(["b a c a", "é y c a", "Z"])
    # counts: a 3, c 2; z (from "Z"), b, y, é 1 each → é > z > y > b by bytes
    assert layer.get_vocabulary() == ["", "[UNK]", "a", "c", "é", "z", "y", "b"]


def test_max_tokens_keeps_most_frequent():
    layer = TextVectorization(max_tokens=5)
    layer.adapt(["a b c d e f g h i j"])
    vocab = layer.get_vocabulary()
    assert len(vocab) == 5
    # all counts 1 → descending bytes: j, i, h
    assert vocab == ["", "[UNK]", "j", "i", "h"]
    m = TextVectorization(max_tokens=4, output_mode="multi_hot")
    m.adapt(["a a a b b c d"])
    assert m.get_vocabulary() == ["[UNK]", "a", "b", "d"]     # c, d tie → "d" first


def test_special_tokens_not_counted_and_adapt_resets():
    layer = TextVectorization(standardize=None)
    layer.adapt(["[UNK] x x y"])
    assert layer.get_vocabulary() == ["", "[UNK]", "x", "y"]
    layer.adapt(["q"])
    assert layer.get_vocabulary() == ["", "[UNK]", "q"]


def test_adapt_generator_and_steps():
    def gen():
        yield ["hello world", "foo bar"]
        yield ["baz qux", "hello foo"]
    layer = TextVectorization()
    layer.adapt(gen())
    assert layer.get_vocabulary()[:4] == ["", "[UNK]", "hello", "foo"]

    def infinite():
        i = 0
        while True:
            yield ["common", f"w{i}"]
            i += 1
    layer = TextVectorization()
    layer.adapt(infinite(), steps=3)
    assert layer.get_vocabulary() == ["", "[UNK]", "common", "w2", "w1", "w0"]


def test_adapt_numpy_array_and_batch_size():
    data = np.array(["x y", "y z", "y"])
    a, b = TextVectorization(), TextVectorization()
    a.adapt(data)
    b.adapt(data, batch_size=1)
    assert a.get_vocabulary() == b.get_vocabulary() == ["", "[UNK]", "y", "z", "x"]


def test_fixed_and_set_vocabulary():
    a = TextVectorization(max_tokens=5000, output_sequence_length=4, vocabulary=["baz", "bar", "foo"])
    np.testing.assert_array_equal(out(a, [["foo qux bar"], ["qux baz"]]), [[4, 1, 3, 0], [1, 2, 0, 0]])
    b = TextVectorization(max_tokens=5000, output_sequence_length=4)
    b.set_vocabulary(["baz", "bar", "foo"])
    np.testing.assert_array_equal(out(b, [["foo qux bar"], ["qux baz"]]), [[4, 1, 3, 0], [1, 2, 0, 0]])
    # a vocabulary that already starts with the special tokens is taken as is
    c = TextVectorization(vocabulary=["", "[UNK]", "baz", "bar"])
    assert c.get_vocabulary() == ["", "[UNK]", "baz", "bar"]
    assert c.vocabulary_size() == 4


def test_vocabulary_errors():
    with pytest.raises(ValueError, match="repeated"):
        TextVectorization(vocabulary=["a", "b", "a"])
    with pytest.raises(ValueError, match="mask token"):
        TextVectorization(vocabulary=["a", ""])
    with pytest.raises(ValueError, match="larger than the maximum"):
        TextVectorization(max_tokens=3, vocabulary=["a", "b"])
    with pytest.raises(ValueError, match="empty vocabulary"):
        TextVectorization(vocabulary=[])
    with pytest.raises(ValueError, match="Cannot adapt"):
        TextVectorization(vocabulary=["a"]).adapt(["a b"])


def test_vocabulary_from_file(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("foo\nbar\nbaz\n")
    layer = TextVectorization(vocabulary=str(p))
    np.testing.assert_array_equal(out(layer, ["foo bar baz unknown"]), [[2, 3, 4, 1]])
    with pytest.raises(ValueError, match="does not exist"):
        TextVectorization(vocabulary=str(tmp_path / "missing.txt"))


def test_no_vocabulary_everything_oov():
    layer = TextVectorization()
    assert layer.get_vocabulary() == ["", "[UNK]"]
    np.testing.assert_array_equal(out(layer, ["a b"]), [[1, 1]])


# ------------------------------------------------------------------ call: padding / truncation
def test_padding_to_longest_and_to_output_sequence_length():
    vocab = ["a", "b", "c"]
    layer = TextVectorization(vocabulary=vocab)
    np.testing.assert_array_equal(out(layer, ["a b c a", "c", "", "zz a"]),
                                  [[2, 3, 4, 2], [4, 0, 0, 0], [0, 0, 0, 0], [1, 2, 0, 0]])
    layer = TextVectorization(vocabulary=vocab, output_sequence_length=3)
    np.testing.assert_array_equal(out(layer, ["a b c a", "c", ""]),
                                  [[2, 3, 4], [4, 0, 0], [0, 0, 0]])
    # the whole batch empty
    assert out(TextVectorization(vocabulary=vocab), ["", "  "]).shape == (2, 0)
    assert out(TextVectorization(vocabulary=vocab, output_sequence_length=2), ["", "  "]).shape == (2, 2)


def test_input_forms():
    layer = TextVectorization(vocabulary=["a", "b"])
    expected = [[2, 3], [3, 0]]
    np.testing.assert_array_equal(out(layer, ["a b", "b"]), expected)
    np.testing.assert_array_equal(out(layer, [["a b"], ["b"]]), expected)
    np.testing.assert_array_equal(out(layer, np.array(["a b", "b"])), expected)
    np.testing.assert_array_equal(out(layer, np.array([b"a b", b"b"], dtype=object)), expected)
    np.testing.assert_array_equal(out(layer, ("a b", "b")), expected)
    np.testing.assert_array_equal(out(layer, "a b a"), [2, 3, 2])       # a single string
    with pytest.raises(ValueError, match="last shape dimension must be 1"):
        layer([["a", "b"]])
    with pytest.raises(TypeError, match="expected strings"):
        layer(np.array([1.0, 2.0]))


def test_whitespace_split_is_ascii_whitespace_runs():
    layer = TextVectorization(standardize=None, vocabulary=["a", "b", "c\u00a0d"])
    # tabs / newlines / repeated spaces separate; a non-breaking space does not (tf.strings.split)
    np.testing.assert_array_equal(out(layer, ["  a\t\tb\n a  ", "c\u00a0d"]), [[2, 3, 2], [4, 0, 0]])


# ------------------------------------------------------------------ standardize / split
SENTENCE = "Hello, World!. This is just a nice test!"


def test_lower_and_strip_punctuation():
    layer = TextVectorization(vocabulary=["hello", "world", "this", "is", "nice", "test"])
    np.testing.assert_array_equal(out(layer, [SENTENCE]), [[2, 3, 4, 5, 1, 1, 6, 7]])


def test_lower_only():
    layer = TextVectorization(standardize="lower",
                              vocabulary=["hello,", "hello", "world", "this", "is", "nice", "test"])
    np.testing.assert_array_equal(out(layer, [SENTENCE]), [[2, 1, 5, 6, 1, 1, 7, 1]])


def test_strip_punctuation_only_and_none():
    layer = TextVectorization(standardize="strip_punctuation", vocabulary=["Hello", "World", "Test"])
    np.testing.assert_array_equal(out(layer, ["Hello, World! Test."]), [[2, 3, 4]])
    layer = TextVectorization(standardize=None, vocabulary=["Hello", "world"])
    np.testing.assert_array_equal(out(layer, ["Hello hello"]), [[2, 1]])


def test_punctuation_set_and_ascii_only_lowercase():
    layer = TextVectorization()
    layer.adapt(["ÉCOLE it's a-b {x}|y ~z~ «q»"])
    vocab = layer.get_vocabulary(include_special_tokens=False)
    # tf.strings.lower (no encoding) lowercases ASCII only; the 32 ASCII punctuation marks go,
    # other symbols («») stay
    assert set(vocab) == {"École", "its", "ab", "xy", "z", "«q»"}


def test_custom_standardize_callable_gets_numpy_unicode_array():
    seen = []

    def np_standardize(text):
        seen.append((type(text), text.dtype.kind, text.shape))
        return np.char.replace(np.char.lower(text), ",", "")

    layer = TextVectorization(standardize=np_standardize)
    layer.adapt(["Hello, world."])
    assert seen[0] == (np.ndarray, "U", (1, 1))        # adapt hands rank-2 (n, 1), as Keras
    assert "hello" in layer.get_vocabulary() and "world." in layer.get_vocabulary()
    y = out(layer, ["Hello, world.", "x"])
    assert seen[-1][2] == (2,)
    np.testing.assert_array_equal(y, [[layer.get_vocabulary().index("hello"),
                                       layer.get_vocabulary().index("world.")], [1, 0]])

    dash = TextVectorization(standardize=lambda t: np.char.replace(t, "-", " "),
                             vocabulary=["foo", "bar"])
    np.testing.assert_array_equal(out(dash, ["foo-bar"]), [[2, 3]])


def test_split_none_character_and_callable():
    layer = TextVectorization(split=None, vocabulary=["foo", "bar", "baz"])
    np.testing.assert_array_equal(out(layer, [["foo"], ["bar"], ["unknown"]]), [[2], [3], [1]])
    np.testing.assert_array_equal(out(layer, ["foo", "Baz!"]), [[2], [4]])
    layer = TextVectorization(split="character", vocabulary=list("abcde"))
    np.testing.assert_array_equal(out(layer, ["abcf"]), [[2, 3, 4, 1]])
    # punctuation is stripped before a custom split, as in Keras
    layer = TextVectorization(split=lambda s: [x.split("|") for x in s],
                              vocabulary=["foo", "bar", "foobar"])
    np.testing.assert_array_equal(out(layer, ["foo|bar"]), [[4]])
    layer = TextVectorization(standardize=None, split=lambda s: [x.split("|") for x in s],
                              vocabulary=["foo", "bar"])
    np.testing.assert_array_equal(out(layer, ["foo|bar|x", "bar"]), [[2, 3, 1], [3, 0, 0]])


def test_ngrams():
    layer = TextVectorization(ngrams=2)
    layer.adapt(["foo bar baz"])
    assert set(layer.get_vocabulary()[2:]) == {"foo", "bar", "baz", "foo bar", "bar baz"}
    layer = TextVectorization(ngrams=(1, 3), vocabulary=["foo", "bar", "baz", "foo bar baz"])
    # per row: all 1-grams, then all 3-grams
    np.testing.assert_array_equal(out(layer, ["foo bar baz", "bar baz"]), [[2, 3, 4, 5], [3, 4, 0, 0]])
    with pytest.raises(ValueError):
        TextVectorization(ngrams="invalid")


# ------------------------------------------------------------------ other output modes
def test_multi_hot_count_tf_idf_with_given_vocabulary():
    mh = TextVectorization(output_mode="multi_hot", vocabulary=["foo", "bar", "baz"])
    y = out(mh, [["foo bar"], ["baz foo foo"]])
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[0, 1, 1, 0], [0, 1, 0, 1]])
    assert mh.get_vocabulary() == ["[UNK]", "foo", "bar", "baz"]
    cnt = TextVectorization(output_mode="count", vocabulary=["foo", "bar", "baz"])
    np.testing.assert_array_equal(out(cnt, ["foo bar", "baz foo foo qux"]), [[0, 1, 1, 0], [1, 2, 0, 1]])
    tfidf = TextVectorization(output_mode="tf_idf", vocabulary=["foo", "bar", "baz"],
                              idf_weights=[0.3, 0.5, 0.2])
    np.testing.assert_allclose(out(tfidf, ["foo bar", "baz foo foo"]),
                               [[0.0, 0.3, 0.5, 0.0], [0.0, 0.6, 0.0, 0.2]], rtol=1e-6)
    padded = TextVectorization(output_mode="multi_hot", vocabulary=["foo", "bar"], max_tokens=8,
                               pad_to_max_tokens=True)
    assert out(padded, ["foo bar"]).shape == (1, 8)
    with pytest.raises(ValueError, match="idf_weights"):
        TextVectorization(output_mode="tf_idf", vocabulary=["a"])
    with pytest.raises(ValueError, match="output_sequence_length"):
        TextVectorization(output_mode="multi_hot", output_sequence_length=5)


def test_tf_idf_adapt():
    layer = TextVectorization(output_mode="tf_idf")
    layer.adapt(["a b b", "b c"])
    assert layer.get_vocabulary() == ["[UNK]", "b", "c", "a"]
    idf_b, idf_1 = np.log(1 + 2 / 3), np.log(1 + 2 / 2)     # log(1 + n_docs / (1 + doc_count))
    oov = np.mean([idf_b, idf_1, idf_1])
    np.testing.assert_allclose(out(layer, ["a b b c d"]), [[oov, 2 * idf_b, idf_1, idf_1]], rtol=1e-6)


def test_unsupported_options_raise_like_keras_on_non_tf_backends():
    with pytest.raises(ValueError):
        TextVectorization(ragged=True)
    with pytest.raises(ValueError):
        TextVectorization(output_mode="multi_hot", sparse=True)
    with pytest.raises(ValueError):
        TextVectorization(output_mode="one_hot")


# ------------------------------------------------------------------ config / graph
def test_config_round_trip_keeps_adapted_vocabulary():
    layer = TextVectorization(max_tokens=10, output_sequence_length=3, ngrams=(1, 2))
    layer.adapt(["x y", "y z y"])
    cfg = layer.get_config()
    assert cfg["vocabulary_size"] == layer.vocabulary_size()
    clone = TextVectorization.from_config(cfg)
    assert clone.get_vocabulary() == layer.get_vocabulary()
    np.testing.assert_array_equal(out(clone, ["y x"]), out(layer, ["y x"]))
    t = TextVectorization(output_mode="tf_idf")
    t.adapt(["a b b", "b c"])
    t2 = TextVectorization.from_config(t.get_config())
    np.testing.assert_allclose(out(t2, ["a b d"]), out(t, ["a b d"]), rtol=1e-6)


def test_output_feeds_an_embedding_and_symbolic_input_is_refused():
    layer = TextVectorization(vocabulary=["a", "b"], output_sequence_length=3)
    emb = axone.layers.Embedding(layer.vocabulary_size(), 2, mask_zero=True)
    y = emb(layer(["a b", "b"]))
    assert y.shape == (2, 3, 2)
    np.testing.assert_array_equal(y._keras_mask, [[True, True, False], [True, False, False]])
    assert layer.compute_output_shape((None,)) == (None, 3)
    with pytest.raises(TypeError, match="preprocessing step"):
        layer(axone.Input(shape=(1,)))
