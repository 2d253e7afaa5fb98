"""End-to-end accuracy on the bundled 8×8 digits: the course's networks must actually learn.

A fixed permutation (seed 0) splits the 1797 images into 80 % training and a held-out
last 20 %; pixels are scaled from 0..16 to [0, 1].  Every random draw of axone
(initial weights, shuffling) is fixed with ``axone.utils.set_random_seed``.

(a) softmax regression 64 → 10, the course's MNIST logistic-regression listing
    (784 → 10, SGD, categorical cross-entropy on one-hot labels) scaled to 8×8;
(b) a multilayer perceptron 64 → 128 relu → 10 trained with Adam on integer labels.

Both must reach ≥ 95 % accuracy on the held-out images.
"""
import numpy as np
import pytest

import axone
from axone import layers

MIN_TEST_ACCURACY = 0.95


@pytest.fixture(scope="module")
def digits():
    x, y = axone.datasets.load_digits()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))
    assert x.min() == 0 and x.max() == 16
    perm = np.random.default_rng(0).permutation(len(x))
    x = (x[perm] / np.float32(16.0)).astype(np.float32)
    y = y[perm]
    n_test = len(x) // 5
    return x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:]


def _check_accuracy(model, x_test, y_test, y_test_for_eval):
    loss, acc = model.evaluate(x_test, y_test_for_eval, batch_size=64, verbose=0)
    pred = model.predict(x_test, batch_size=64, verbose=0)
    assert pred.shape == (len(x_test), 10)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, rtol=1e-5)
    pred_acc = float(np.mean(pred.argmax(axis=1) == y_test))
    # evaluate()'s accuracy metric and the argmax of predict() must agree
    assert acc == pytest.approx(pred_acc, abs=1e-9)
    assert np.isfinite(loss) and loss < 0.3
    return pred_acc


def test_softmax_regression_digits(digits):
    x_train, y_train, x_test, y_test = digits
    axone.utils.set_random_seed(0)
    model = axone.Sequential([
        layers.InputLayer(shape=(8, 8)),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=axone.optimizers.SGD(learning_rate=0.5),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    y_train_1h = axone.utils.to_categorical(y_train, 10)
    hist = model.fit(x_train, y_train_1h, batch_size=32, epochs=40, verbose=0)
    losses = hist.history["loss"]
    assert len(losses) == 40 and losses[-1] < losses[0] / 3
    acc = _check_accuracy(model, x_test, y_test, axone.utils.to_categorical(y_test, 10))
    print(f"softmax regression 64→10 test accuracy: {acc:.4f}")
    assert acc >= MIN_TEST_ACCURACY, f"softmax regression reached only {acc:.4f} on held-out digits"


def test_mlp_digits(digits):
    x_train, y_train, x_test, y_test = digits
    axone.utils.set_random_seed(0)
    model = axone.Sequential([
        layers.InputLayer(shape=(8, 8)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=axone.optimizers.Adam(learning_rate=0.003),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x_train, y_train, batch_size=32, epochs=20, verbose=0)
    losses = hist.history["loss"]
    assert len(losses) == 20 and losses[-1] < losses[0] / 5
    acc = _check_accuracy(model, x_test, y_test, y_test)
    print(f"MLP 64→128→10 test accuracy: {acc:.4f}")
    assert acc >= MIN_TEST_ACCURACY, f"MLP reached only {acc:.4f} on held-out digits"
