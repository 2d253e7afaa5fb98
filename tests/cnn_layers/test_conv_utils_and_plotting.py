"""Course 004 convolution arithmetic (axone.utils.conv_utils) and the plotting helpers."""
import numpy as np
import pytest

import axone
from axone import layers
from axone.utils import conv_output_length, conv_params, pool_output_length
from axone.utils.conv_utils import conv_output_shape, pool_output_shape


def test_course_004_conv_and_pool_example():
    # Conv2D(20, (3, 3), padding="same") on 64×64×3: 560 parameters, output (64, 64, 20)
    assert conv_params((3, 3), 3, 20) == 560 == conv_params(3, 3, 20)
    assert conv_output_length(64, 3, "same", 1) == 64
    assert conv_output_shape((64, 64, 3), 20, (3, 3), padding="same") == (64, 64, 20)
    # MaxPool2D((4, 4)) → (16, 16, 20)
    assert pool_output_length(64, 4, "valid", 4) == 16
    assert pool_output_shape((64, 64, 20), (4, 4)) == (16, 16, 20)
    # the same numbers from the layers themselves
    axone.utils.clear_session()
    model = axone.Sequential([layers.Input((64, 64, 3)), layers.Conv2D(20, (3, 3), padding="same"),
                              layers.MaxPool2D((4, 4))])
    assert model.layers[0].count_params() == 560
    assert model.layers[0].output.shape == (None, 64, 64, 20)
    assert model.output_shape == (None, 16, 16, 20)


@pytest.mark.parametrize("n, k, pad, s, d, expected", [
    (5, 3, "valid", 1, 1, 3),          # the 004 worked example: 5×5 ∗ 3×3 → 3×3
    (32, 5, "valid", 1, 1, 28),
    (28, 3, "valid", 2, 1, 13),        # ⌈(28 − 3 + 1)/2⌉
    (28, 3, "same", 2, 1, 14),
    (7, 3, "valid", 1, 2, 3),          # dilation 2: effective kernel 5
    (10, 4, "causal", 3, 1, 4),
    (10, 3, "full", 1, 1, 12),
    (None, 3, "same", 1, 1, None),
])
def test_conv_output_length(n, k, pad, s, d, expected):
    assert conv_output_length(n, k, pad, s, d) == expected
    if n is not None and pad in ("valid", "same"):
        x = np.zeros((1, n, n, 1), np.float32)
        if s > 1 and d > 1:
            return
        assert layers.Conv2D(1, k, strides=s, padding=pad, dilation_rate=d)(x).shape[1] == expected


@pytest.mark.parametrize("n, p, pad, s, expected", [
    (64, 4, "valid", 4, 16), (28, 2, "valid", 2, 14), (7, 2, "valid", 2, 3), (7, 2, "same", 2, 4),
    (10, 3, "valid", 1, 8), (10, 3, "same", 1, 10), (None, 2, "valid", 2, None)])
def test_pool_output_length(n, p, pad, s, expected):
    assert pool_output_length(n, p, pad, s) == expected
    if n is not None:
        y = layers.MaxPooling2D(p, strides=s, padding=pad)(np.zeros((1, n, n, 1), np.float32))
        assert y.shape[1] == expected


def test_conv_params_against_layers():
    for ks, cin, f, bias in [((3, 3), 1, 32, True), ((5, 5), 32, 64, True), ((3, 3), 64, 10, False),
                             ((1, 1), 3, 8, True), ((3, 5), 2, 4, True)]:
        layer = layers.Conv2D(f, ks, use_bias=bias)
        layer.build((None, 10, 10, cin))
        assert layer.count_params() == conv_params(ks, cin, f, use_bias=bias)
    assert conv_params((3,), 4, 8) == (3 * 4 + 1) * 8        # Conv1D


@pytest.mark.parametrize("call", [
    lambda: conv_output_length(10, 3, "sam", 1),
    lambda: conv_output_length(10, 0, "same", 1),
    lambda: pool_output_length(10, 2, "causal", 2),
    lambda: conv_params(3, 0, 4),
    lambda: conv_params((3, -3), 1, 4),
])
def test_conv_utils_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


# ------------------------------------------------------------------ plotting
@pytest.fixture
def plt():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt
    yield plt
    plt.close("all")


def _cnn():
    axone.utils.clear_session()
    axone.utils.set_random_seed(0)
    return axone.Sequential([layers.Input((12, 12, 3)), layers.Conv2D(6, (3, 3), activation="relu"),
                             layers.MaxPooling2D(), layers.Conv2D(4, (3, 3), padding="same"),
                             layers.Flatten(), layers.Dense(2, activation="softmax")])


def test_plot_history_from_fit(plt):
    model = _cnn()
    rng = np.random.default_rng(0)
    x = rng.random((20, 12, 12, 3)).astype(np.float32)
    y = axone.utils.to_categorical(rng.integers(0, 2, 20), 2)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=10, validation_split=0.2, verbose=0)
    fig = axone.utils.plot_history(history)
    assert isinstance(fig, plt.Figure)
    assert len(fig.axes) == 2                                   # loss and accuracy panels
    assert [l.get_label() for l in fig.axes[0].get_lines()] == ["loss", "val_loss"]
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 3
    fig2 = axone.utils.plot_history(history.history, metrics=["val_accuracy"])
    assert len(fig2.axes) == 1
    _, ax = plt.subplots()
    assert axone.utils.plot_history({"loss": [3, 2, 1]}, ax=ax) is ax.figure
    with pytest.raises(ValueError, match="mae"):
        axone.utils.plot_history(history, metrics=["mae"])


def test_plot_filters_and_feature_maps(plt):
    model = _cnn()
    conv = model.layers[0]
    fig = axone.utils.plot_filters(conv)
    assert isinstance(fig, plt.Figure)
    assert sum(1 for a in fig.axes if a.images) == 6            # one image per filter (RGB kernel)
    fig = axone.utils.plot_filters(model.layers[2].kernel.numpy(), ncols=2, max_filters=3)
    assert sum(1 for a in fig.axes if a.images) == 3
    fig = axone.utils.plot_filters(conv, channel=1)
    assert fig.axes[0].images[0].get_array().shape == (3, 3)
    x = np.random.default_rng(1).random((12, 12, 3)).astype(np.float32)
    fig = axone.utils.plot_feature_maps(model, x)
    assert isinstance(fig, plt.Figure)
    assert sum(1 for a in fig.axes if a.images) == 6 + 6 + 4   # conv, pool, conv maps
    shapes = [a.images[0].get_array().shape for a in fig.axes if a.images]
    assert shapes[0] == (10, 10) and shapes[6] == (5, 5) and shapes[-1] == (5, 5)
    fig = axone.utils.plot_feature_maps(model, x[None], layer_names=[conv.name], max_maps=4)
    assert sum(1 for a in fig.axes if a.images) == 4
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(),
                               conv(x[None]).data[0, ..., 0], rtol=1e-5, atol=1e-6)
    # a model without a known input shape: its layers are run in turn
    axone.utils.clear_session()
    plain = axone.Sequential([layers.Conv2D(2, 3), layers.Conv2D(3, 3)])
    fig = axone.utils.plot_feature_maps(plain, x)
    assert sum(1 for a in fig.axes if a.images) == 5
    with pytest.raises(ValueError, match="nope"):
        axone.utils.plot_feature_maps(model, x, layer_names=["nope"])
    with pytest.raises(ValueError):
        axone.utils.plot_filters(np.zeros((3, 3)))


def test_plotting_without_matplotlib_hints_install(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        axone.utils.plot_history({"loss": [1.0, 0.5]})
