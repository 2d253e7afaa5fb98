"""Many-to-one sequence classification: toy "sentiment" of variable-length token sequences.

Each sequence is a short "review" of 6 to 30 tokens, padded with 0 to a common length.  Tokens
1-4 are positive words, 5-8 negative words, 9 is "not" (it flips the sentiment of the next
word), the rest (10-49) are neutral.  The label is 1 when the review's (negation-aware)
sentiment is positive.  An Embedding with ``mask_zero=True`` feeds an LSTM, so the padding is
skipped; a bag-of-words model cannot see negations, the LSTM can.

This is plain Keras code:
    python -m axone run examples/sequence_classification.py     # keras -> axone
    python examples/sequence_classification.py                  # the same (installs the alias)
    EXAMPLE_BACKEND=keras KERAS_BACKEND=torch python examples/sequence_classification.py
Options: --epochs N  --samples N  --quick (a short run, for tests)
"""
import argparse
import os
import sys

if os.environ.get("EXAMPLE_BACKEND") != "keras":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from axone.compat import install_keras_alias
    install_keras_alias()

import numpy as np

import keras
from keras import layers

VOCAB, MAXLEN = 50, 30
POSITIVE, NEGATIVE, NOT = (1, 2, 3, 4), (5, 6, 7, 8), 9


def review_score(tokens):
    score, flip = 0, 1
    for w in tokens:
        if w == NOT:
            flip = -1
            continue
        if w in POSITIVE:
            score += flip
        elif w in NEGATIVE:
            score -= flip
        flip = 1
    return score


def make_reviews(n, seed=0):
    """Padded token ids (n, MAXLEN), labels (n,), lengths; ties (score 0) are redrawn."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, MAXLEN), dtype="int32")
    y = np.zeros(n, dtype="float32")
    lengths = np.zeros(n, dtype=int)
    i = 0
    while i < n:
        length = rng.integers(6, MAXLEN + 1)
        tokens = rng.integers(10, VOCAB, size=length)
        k = rng.integers(1, 4)                       # 1 to 3 sentiment words
        for pos in rng.choice(np.arange(1, length), size=k, replace=False):
            tokens[pos] = rng.choice(POSITIVE + NEGATIVE)
            if rng.random() < 0.4:
                tokens[pos - 1] = NOT
        s = review_score(tokens)
        if s == 0:
            continue
        x[i, :length] = tokens                       # post-padding with 0
        y[i] = float(s > 0)
        lengths[i] = length
        i += 1
    return x, y, lengths


def build_model(units=32):
    model = keras.Sequential([
        keras.Input((MAXLEN,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.LSTM(units),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  metrics=["accuracy"])
    return model


def bag_of_words_accuracy(x_train, y_train, x_test, y_test):
    """The best a linear model on word counts can do here (least squares on counts)."""
    def counts(x):
        c = np.zeros((len(x), VOCAB + 1))
        for j in range(VOCAB):
            c[:, j] = (x == j).sum(axis=1)
        c[:, VOCAB] = 1.0
        return c
    w, *_ = np.linalg.lstsq(counts(x_train), 2 * y_train - 1, rcond=None)
    return float(np.mean((counts(x_test) @ w > 0) == (y_test > 0.5)))


def main(argv=None):
    p = argparse.ArgumentParser(description="toy sentiment classification with Embedding + LSTM")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--samples", type=int, default=4000)
    p.add_argument("--quick", action="store_true", help="a short run (2,000 reviews, 8 epochs)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.samples = 8, 2000
    keras.utils.set_random_seed(0)
    print("running on", "axone" if getattr(keras, "__axone_alias__", False)
          else f"Keras {keras.__version__} ({keras.backend.backend()} backend)")
    x, y, lengths = make_reviews(args.samples + 1000)
    x_train, y_train, x_test, y_test = x[:args.samples], y[:args.samples], x[args.samples:], y[args.samples:]
    print(f"{len(x_train)} training reviews, {len(x_test)} test reviews, lengths "
          f"{lengths.min()}-{lengths.max()} (padded to {MAXLEN}), {100 * y.mean():.0f}% positive")
    model = build_model()
    model.summary()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=2, validation_split=0.1)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    bow = bag_of_words_accuracy(x_train, y_train, x_test, y_test)
    print(f"test accuracy: LSTM {acc:.3f}  bag-of-words baseline {bow:.3f}  (loss {loss:.4f})")
    # the padding is skipped: moving it to the front (pre-padding) leaves the predictions as they are
    post = x_test[:64]
    pre = np.zeros_like(post)
    for i, row in enumerate(post):
        tokens = row[row != 0]
        pre[i, MAXLEN - len(tokens):] = tokens
    change = np.abs(model.predict(post, verbose=0) - model.predict(pre, verbose=0)).max()
    print(f"masking check: max |change| of predictions, post- vs pre-padding: {change:.2e}")
    return acc, bow


if __name__ == "__main__":
    main()
