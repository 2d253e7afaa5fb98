"""Decision regions, the 1-D gradient descent L(w) curve and the confusion matrix plots: the
figures hold the model's predictions, the course's trajectory and the counted matrix."""
import numpy as np
import pytest

import axone
from axone import layers
from axone.models import Perceptron
from axone.utils import (gradient_descent_1d, plot_confusion_matrix, plot_decision_regions,
                         plot_gradient_descent_1d)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _grid_of(image, n):
    """The centres of the image's cells, rebuilt from its extent and shape."""
    x0, x1, y0, y1 = image.get_extent()
    dx, dy = (x1 - x0) / n, (y1 - y0) / n
    xs = x0 + dx / 2 + dx * np.arange(n)
    ys = y0 + dy / 2 + dy * np.arange(n)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()]).astype("float32")


def test_decision_regions_of_a_perceptron_are_its_predictions():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    p = Perceptron(1.0)
    p.fit(x, [0, 1, 1, 1], initial_weights=[1, -1], initial_bias=0.0)
    fig = plot_decision_regions(p, x, [0, 1, 1, 1], resolution=41)
    image = fig.axes[0].images[0]
    regions = np.asarray(image.get_array())
    assert regions.shape == (41, 41)
    expected = p.predict(_grid_of(image, 41))[:, 0].reshape(41, 41)
    np.testing.assert_array_equal(regions, expected)
    assert 0 < regions.mean() < 1                         # both classes appear
    # the boundary is x1 + x2 = 1: the corner (0, 0) side is class 0
    assert regions[0, 0] == 0 and regions[-1, -1] == 1
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_array_equal(np.asarray(offsets), x)


def test_decision_regions_of_a_keras_model_argmax_and_threshold():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2)).astype("float32")
    axone.utils.set_random_seed(1)
    m = axone.Sequential([layers.Input((2,)), layers.Dense(5, activation="tanh"),
                          layers.Dense(3, activation="softmax")])
    fig = plot_decision_regions(m, x, rng.integers(0, 3, 30), resolution=25)
    image = fig.axes[0].images[0]
    expected = np.argmax(m.predict(_grid_of(image, 25), verbose=0), axis=1).reshape(25, 25)
    np.testing.assert_array_equal(np.asarray(image.get_array()), expected)
    # one sigmoid output: class 1 where the probability exceeds the threshold
    b = axone.Sequential([layers.Input((2,)), layers.Dense(1, activation="sigmoid")])
    fig = plot_decision_regions(b, x, resolution=20, threshold=0.3)
    image = fig.axes[0].images[0]
    proba = b.predict(_grid_of(image, 20), verbose=0)[:, 0].reshape(20, 20)
    np.testing.assert_array_equal(np.asarray(image.get_array()), (proba > 0.3).astype(int))
    # a plain callable
    fig = plot_decision_regions(lambda pts: (pts[:, 0] > 0).astype(int), x, resolution=10)
    image = fig.axes[0].images[0]
    np.testing.assert_array_equal(np.asarray(image.get_array()).ravel(),
                                  (_grid_of(image, 10)[:, 0] > 0).astype(int))


def test_decision_regions_bad_input():
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
        plot_decision_regions(lambda a: a[:, 0], np.zeros((4, 3)))
    with pytest.raises(ValueError, match="resolution"):
        plot_decision_regions(lambda a: a[:, 0], np.zeros((4, 2)), resolution=1)
    with pytest.raises(ValueError, match="one label per sample"):
        plot_decision_regions(lambda a: a[:, 0], np.zeros((4, 2)), y=[0, 1])
    with pytest.raises(TypeError, match="predict method or be callable"):
        plot_decision_regions(object(), np.zeros((4, 2)))


@pytest.mark.parametrize("rho, w10", [(1e-5, 3.633), (1e-6, 1.236), (5e-5, -0.953)])
def test_boston_descent_trajectory_and_curve(rho, w10):
    ws = gradient_descent_1d(learning_rate=rho)
    assert ws.shape == (11,) and ws[0] == 0.0
    assert ws[-1] == pytest.approx(w10, abs=5e-4)
    fig = plot_gradient_descent_1d(learning_rate=rho)
    curve, steps = fig.axes[0].lines
    from axone.datasets import load_boston
    feats, price = load_boston()
    x, y = feats[:, 0].astype(np.float64), price.astype(np.float64)
    w = np.asarray(curve.get_xdata())
    np.testing.assert_allclose(w, np.linspace(-2, 10, 100))
    np.testing.assert_allclose(curve.get_ydata(), [np.sum((v * x - y) ** 2) for v in w], rtol=1e-12)
    np.testing.assert_allclose(steps.get_xdata(), ws)
    np.testing.assert_allclose(steps.get_ydata(), [np.sum((v * x - y) ** 2) for v in ws],
                               rtol=1e-12)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["$w_{0}$", "$w_{10}$"]


def test_descent_converges_to_the_optimum_and_checks_input():
    x = np.array([1.0, 2.0, 3.0])
    y = 2.5 * x
    ws = gradient_descent_1d(x, y, learning_rate=0.02, steps=200)
    assert ws[-1] == pytest.approx(np.sum(x * y) / np.sum(x * x), rel=1e-9)    # w* = Σxy/Σx²
    with pytest.raises(ValueError, match="same number of samples"):
        gradient_descent_1d(x, y[:2])
    with pytest.raises(ValueError, match="both x and y"):
        gradient_descent_1d(x)
    with pytest.raises(ValueError, match="steps"):
        gradient_descent_1d(x, y, steps=-1)
    with pytest.raises(ValueError, match="one feature"):
        plot_gradient_descent_1d(np.ones((3, 2)), y)


def _counts(t, p, k):
    m = np.zeros((k, k), dtype=int)
    for a, b in zip(t, p):
        m[a, b] += 1
    return m


def test_confusion_matrix_counts_rows_true_columns_predicted():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, 60)
    p = np.where(rng.random(60) < 0.7, t, rng.integers(0, 3, 60))
    fig = plot_confusion_matrix(t, p, class_names=["a", "b", "c"])
    ax = fig.axes[0]
    m = np.asarray(ax.images[0].get_array())
    expected = _counts(t, p, 3)
    np.testing.assert_array_equal(m, expected)
    assert m.sum() == 60
    texts = [int(tx.get_text()) for tx in ax.texts]
    np.testing.assert_array_equal(np.array(texts).reshape(3, 3), expected)
    assert [tl.get_text() for tl in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_ylabel() == "True label" and ax.get_xlabel() == "Predicted label"
    # one-hot / probabilities give the argmax; normalize="true" makes rows sum to 1
    onehot = np.eye(3)[t]
    proba = np.eye(3)[p] * 0.8 + 0.1
    fig = plot_confusion_matrix(onehot, proba, normalize="true")
    m = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(m, expected / expected.sum(axis=1, keepdims=True))
    fig = plot_confusion_matrix(t, p, normalize="all", colorbar=False)
    np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array()), expected / 60)
    assert len(fig.axes) == 1


def test_confusion_matrix_labels_and_errors():
    t = ["cat", "dog", "dog", "bird"]
    p = ["cat", "cat", "dog", "bird"]
    fig = plot_confusion_matrix(t, p, labels=["dog", "cat"])
    np.testing.assert_array_equal(np.asarray(fig.axes[0].images[0].get_array()),
                                  [[1, 1], [0, 1]])
    with pytest.raises(ValueError, match="one label per sample"):
        plot_confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="normalize"):
        plot_confusion_matrix([0, 1], [0, 1], normalize="rows")
    with pytest.raises(ValueError, match="class_names"):
        plot_confusion_matrix([0, 1], [0, 1], class_names=["x"])
    with pytest.raises(ValueError, match="distinct"):
        plot_confusion_matrix([0, 1], [0, 1], labels=[0, 0])
