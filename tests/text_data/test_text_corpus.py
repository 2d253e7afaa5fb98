"""The bundled text loaders: deterministic output, shapes, labels that follow the grammar."""
import numpy as np
import pytest

from axone.datasets import text_corpus as tc

POS = set(tc._POSITIVE) | set(tc._LIKE)
NEG = set(tc._NEGATIVE) | set(tc._DISLIKE)


def clause_label(words):
    """The sentiment of one clause, recomputed from its words (not from the generator)."""
    s = 0
    for w in words:
        if w in POS:
            s = 1
        elif w in NEG:
            s = -1
    assert s != 0, words
    if "not" in words or "never" in words:
        s = -s
    return s


def sentence_label(text):
    words = text.split()
    if "but" in words:
        words = words[words.index("but") + 1:]
    elif "and" in words:
        i = words.index("and")
        a, b = clause_label(words[:i]), clause_label(words[i + 1:])
        assert a == b, text
        return int(a > 0)
    return int(clause_label(words) > 0)


def test_rhymes_text():
    text = tc.load_rhymes()
    assert isinstance(text, str) and 2000 < len(text) < 20000
    assert text.startswith("Twinkle, twinkle, little star,")
    assert text == tc.load_rhymes()
    assert all(ord(c) < 128 for c in text)
    assert "\n\n" in text and "Humpty Dumpty" in text


def test_sentiment_is_deterministic_and_split():
    (xa, ya), (xta, yta) = tc.load_sentiment(500, seed=3, test_split=0.2)
    (xb, yb), (xtb, ytb) = tc.load_sentiment(500, seed=3, test_split=0.2)
    assert list(xa) == list(xb) and list(xta) == list(xtb)
    np.testing.assert_array_equal(ya, yb)
    assert len(xa) == len(ya) == 400 and len(xta) == len(yta) == 100
    assert xa.dtype == object and ya.dtype == np.int64
    (xc, _), _ = tc.load_sentiment(500, seed=4)
    assert list(xc) != list(xa)
    # the whole set with no test part: the same sentences in the same order
    (xall, yall), (xnone, ynone) = tc.load_sentiment(500, seed=3, test_split=0.0)
    assert len(xnone) == 0 and list(xall) == list(xa) + list(xta)


def test_sentiment_labels_follow_the_grammar():
    (x, y), (xt, yt) = tc.load_sentiment(1500, seed=0)
    labels = np.concatenate([y, yt])
    assert set(np.unique(labels)) == {0, 1}
    assert 0.35 < labels.mean() < 0.65
    for text, label in zip(list(x) + list(xt), labels):
        assert sentence_label(text) == label, text
    words = {w for t in x for w in t.split()}
    assert words <= set(tc.sentiment_vocabulary())
    assert any("but" in t.split() for t in x) and any("not" in t.split() for t in x)


def test_texts_to_sequences():
    vocab = tc.sentiment_vocabulary()
    seq = tc.texts_to_sequences(["the plot was good", "good zzz"], maxlen=6)
    assert seq.shape == (2, 6) and seq.dtype == np.int32
    assert seq[0, 0] == vocab.index("the") + 2 and seq[0, 3] == vocab.index("good") + 2
    assert list(seq[0, 4:]) == [0, 0] and seq[1, 1] == 1 and list(seq[1, 2:]) == [0] * 4
    assert tc.texts_to_sequences(["a b c d"], maxlen=2).shape == (1, 2)
    assert tc.texts_to_sequences(["a b c", "a"]).shape == (2, 3)
    with pytest.raises(TypeError, match="one string"):
        tc.texts_to_sequences("the plot")
    with pytest.raises(TypeError, match="must be a string"):
        tc.texts_to_sequences([3])


def test_addition_pairs():
    q, a = tc.load_addition(300, digits=2, seed=1)
    assert (q, a) == tc.load_addition(300, digits=2, seed=1)
    assert len(q) == len(a) == 300
    keys = set()
    for question, answer in zip(q, a):
        x, y = question.split("+")
        assert len(x) <= 2 and len(y) <= 2 and int(answer) == int(x) + int(y)
        keys.add((min(int(x), int(y)), max(int(x), int(y))))
    assert len(keys) == 300
    assert len(tc.load_addition(5050, digits=2)[0]) == 5050     # every distinct pair
    with pytest.raises(ValueError, match="num_samples=5051"):
        tc.load_addition(5051, digits=2)


@pytest.mark.parametrize("call, match", [
    (lambda: tc.load_sentiment(0), "num_samples"),
    (lambda: tc.load_sentiment(10, seed=-1), "seed"),
    (lambda: tc.load_sentiment(10, test_split=1.0), "test_split"),
    (lambda: tc.load_addition(10, digits=0), "digits"),
    (lambda: tc.load_addition(2.5), "num_samples"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_package_import():
    import axone.datasets
    assert axone.datasets.text_corpus.load_rhymes is tc.load_rhymes
