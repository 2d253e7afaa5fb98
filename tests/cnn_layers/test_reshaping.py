"""ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D against Keras 3, by finite differences,
in shapes, summaries and configs, and with bad arguments."""
import json

import numpy as np
import pytest

import axone
from axone import layers
from axone.utils import check_gradients

keras = pytest.importorskip("keras")

rng = np.random.default_rng(1)
X2 = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
X1 = rng.standard_normal((2, 7, 3)).astype(np.float32)


def _k(y):
    return np.asarray(y.detach() if hasattr(y, "detach") else y)


CASES_2D = [
    ("ZeroPadding2D", {}),
    ("ZeroPadding2D", {"padding": 2}),
    ("ZeroPadding2D", {"padding": (1, 3)}),
    ("ZeroPadding2D", {"padding": ((0, 2), (3, 1))}),
    ("Cropping2D", {}),
    ("Cropping2D", {"cropping": 1}),
    ("Cropping2D", {"cropping": (2, 1)}),
    ("Cropping2D", {"cropping": ((1, 0), (0, 2))}),
    ("Cropping2D", {"cropping": ((0, 3), (2, 0))}),
    ("UpSampling2D", {}),
    ("UpSampling2D", {"size": (3, 2)}),
    ("UpSampling2D", {"size": 2, "interpolation": "bilinear"}),
    ("UpSampling2D", {"size": (3, 2), "interpolation": "bilinear"}),
    ("UpSampling2D", {"size": (2, 3), "interpolation": "bicubic"}),
]
CASES_1D = [
    ("ZeroPadding1D", {}),
    ("ZeroPadding1D", {"padding": (2, 0)}),
    ("Cropping1D", {}),
    ("Cropping1D", {"cropping": (0, 3)}),
    ("Cropping1D", {"cropping": 2}),
    ("UpSampling1D", {}),
    ("UpSampling1D", {"size": 3}),
]


@pytest.mark.parametrize("cls, kw", CASES_2D + CASES_1D)
def test_matches_keras(cls, kw):
    x = X2 if cls.endswith("2D") else X1
    ky = _k(getattr(keras.layers, cls)(**kw)(x))
    layer = getattr(layers, cls)(**kw)
    ay = layer(x)
    assert ay.shape == ky.shape
    np.testing.assert_allclose(ay.data, ky, rtol=1e-5, atol=1e-5)
    assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + ky.shape[1:]


def test_zero_padding_values_and_upsampling_nearest_repeats():
    x = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)
    y = layers.ZeroPadding2D(1)(x).data[0, ..., 0]
    np.testing.assert_array_equal(y, [[0, 0, 0, 0], [0, 0, 1, 0], [0, 2, 3, 0], [0, 0, 0, 0]])
    u = layers.UpSampling2D((2, 3))(x).data[0, ..., 0]
    np.testing.assert_array_equal(u, np.repeat(np.repeat([[0, 1], [2, 3]], 2, axis=0), 3, axis=1))


@pytest.mark.parametrize("cls, kw", CASES_2D + CASES_1D)
def test_gradients_by_finite_differences(cls, kw, float64):
    x = rng.standard_normal((2, 5, 4, 2) if cls.endswith("2D") else (2, 6, 2))
    layer = getattr(layers, cls)(**kw)
    assert layer.dtype == "float64"
    r = check_gradients(lambda t: layer(t), x)
    assert r.max_error < 1e-7, r


def test_upsampling_bilinear_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    up = rng.standard_normal((2, 8, 15, 3)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    (keras.layers.UpSampling2D((2, 3), interpolation="bilinear")(tx) * torch.tensor(up)).sum().backward()
    ax = axone.Tensor(x, requires_grad=True)
    (layers.UpSampling2D((2, 3), interpolation="bilinear")(ax) * up).sum().backward()
    np.testing.assert_allclose(ax.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_none_dimensions_and_symbolic_use():
    zp = layers.ZeroPadding2D(((1, 2), (3, 4)))
    assert zp.compute_output_shape((None, None, 5, 2)) == (None, None, 12, 2)
    assert layers.Cropping2D(((1, 2), (0, 1))).compute_output_shape((None, 8, None, 2)) == (None, 5, None, 2)
    assert layers.UpSampling2D((2, 3)).compute_output_shape((None, None, 4, 1)) == (None, None, 12, 1)
    assert layers.UpSampling1D(4).compute_output_shape((None, 3, 2)) == (None, 12, 2)
    assert layers.Cropping1D((1, 2)).compute_output_shape((None, None, 2)) == (None, None, 2)
    inp = layers.Input((28, 28, 1))
    out = layers.Cropping2D(2)(layers.UpSampling2D()(layers.ZeroPadding2D(2)(inp)))
    assert out.shape == (None, 60, 60, 1)


def test_in_a_sequential_model_summary_and_fit():
    axone.utils.clear_session()
    model = axone.Sequential([
        layers.Input((28, 28, 1)),
        layers.ZeroPadding2D(2),                          # 32×32
        layers.Conv2D(4, (3, 3), activation="relu"),      # 30×30×4: (9·1 + 1)·4 = 40
        layers.Cropping2D(((1, 1), (1, 1))),              # 28×28
        layers.MaxPooling2D(),                            # 14×14
        layers.UpSampling2D(),                            # 28×28
        layers.Conv2D(1, (3, 3), padding="same"),         # (9·4 + 1)·1 = 37
    ])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for shape in ["(None, 32, 32, 1)", "(None, 30, 30, 4)", "(None, 28, 28, 4)",
                  "(None, 14, 14, 4)", "(None, 28, 28, 1)"]:
        assert shape in text, text
    assert "Total params: 77" in text
    x = rng.random((8, 28, 28, 1)).astype(np.float32)
    model.compile(optimizer="adam", loss="mse")
    h = model.fit(x, x, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(h.history["loss"]))
    assert model.predict(x, verbose=0).shape == (8, 28, 28, 1)


@pytest.mark.parametrize("cls, kw", CASES_2D + CASES_1D)
def test_config_roundtrip(cls, kw):
    layer = getattr(layers, cls)(**kw)
    cfg = layer.get_config()
    json.dumps(cfg)
    again = getattr(layers, cls).from_config(dict(cfg, name=cfg["name"] + "_copy"))
    x = X2 if cls.endswith("2D") else X1
    np.testing.assert_array_equal(again(x).data, layer(x).data)
    kcfg = getattr(keras.layers, cls)(**kw).get_config()
    for key in ("padding", "cropping", "size", "interpolation"):
        if key in kcfg:
            assert np.array_equal(np.asarray(cfg[key]), np.asarray(kcfg[key])), key


@pytest.mark.parametrize("make, match", [
    (lambda: layers.ZeroPadding2D((1, 2, 3), name="zp"), "zp"),
    (lambda: layers.ZeroPadding2D(-1, name="zp_neg"), "zp_neg"),
    (lambda: layers.ZeroPadding1D("a", name="zp1"), "zp1"),
    (lambda: layers.Cropping2D(((1, 2), (3,)), name="crop"), "crop"),
    (lambda: layers.Cropping1D(-2, name="crop1"), "crop1"),
    (lambda: layers.UpSampling2D(0, name="up"), "up"),
    (lambda: layers.UpSampling2D(2, interpolation="cubic", name="up_i"), "up_i"),
    (lambda: layers.UpSampling2D(data_format="channels_middle", name="up_df"), "up_df"),
])
def test_bad_arguments_raise_value_error_naming_the_layer(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs_raise_value_error_naming_the_layer():
    with pytest.raises(ValueError, match="crop_big"):
        layers.Cropping2D(((3, 3), (0, 0)), name="crop_big")(X2)        # 6 rows ≥ 5
    with pytest.raises(ValueError, match="crop1_big"):
        layers.Cropping1D((4, 3), name="crop1_big")(X1)
    with pytest.raises(ValueError, match="zp_rank"):
        layers.ZeroPadding2D(name="zp_rank")(X1)
    with pytest.raises(ValueError, match="up_rank"):
        layers.UpSampling1D(name="up_rank")(X2)
