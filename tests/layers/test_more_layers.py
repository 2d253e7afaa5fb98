"""The 3-D, transposed, depthwise, separable, adaptive-pooling, reshaping, regularization, Dot
and ConvLSTM layers: bad arguments and inputs raise errors naming the layer, configs round-trip,
the noise layers behave as Keras defines them, and the layers work inside models (symbolic
shapes, fit)."""
import numpy as np
import pytest

import axone
from axone import Tensor, layers as L


# ------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("make,match", [
    (lambda: L.Conv3D(0, 2), "filters"),
    (lambda: L.Conv3D(2, (2, 2)), "kernel_size"),
    (lambda: L.Conv3D(2, 2, padding="causal"), "padding"),
    (lambda: L.Conv3D(2, 2, data_format="nchw"), "data_format"),
    (lambda: L.Conv1DTranspose(2, 3, strides=2, output_padding=2), "output_padding"),
    (lambda: L.Conv3DTranspose(2, -1), "kernel_size"),
    (lambda: L.Conv1DTranspose(2, 3, strides=2, dilation_rate=2), "dilation_rate"),
    (lambda: L.DepthwiseConv1D(3, depth_multiplier=0), "depth_multiplier"),
    (lambda: L.SeparableConv1D(-2, 3), "filters"),
    (lambda: L.MaxPooling3D(pool_size=(2, 2)), "pool_size"),
    (lambda: L.AveragePooling3D(padding="full"), "padding"),
    (lambda: L.AdaptiveAveragePooling2D((2, 0)), "output_size"),
    (lambda: L.AdaptiveMaxPooling3D((2, 2)), "output_size"),
    (lambda: L.ZeroPadding3D(-1), "padding"),
    (lambda: L.Cropping3D(((1, 1), (1,))), "cropping"),
    (lambda: L.UpSampling3D(0), "size"),
    (lambda: L.Permute((1, 3)), "dims"),
    (lambda: L.Permute((0, 1)), "dims"),
    (lambda: L.RepeatVector(2.5), "n"),
    (lambda: L.AlphaDropout(1.5), "rate"),
    (lambda: L.SpatialDropout2D(-0.1), "rate"),
    (lambda: L.SpatialDropout3D(0.1, data_format="x"), "data_format"),
    (lambda: L.Dot(axes="1"), "axes"),
    (lambda: L.ConvLSTM2D(2, 3, dropout=0.1), "dropout"),
    (lambda: L.ConvLSTM2D(2, 3, stateful=True), "stateful"),
    (lambda: L.ConvLSTM2D(2, 3, padding="causal"), "padding"),
])
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError, NotImplementedError), match=match):
        make()


@pytest.mark.parametrize("layer,x,match", [
    (lambda: L.Conv3D(2, 2), np.zeros((1, 4, 4, 2), np.float32), "ndim=5"),
    (lambda: L.Conv3D(2, 3), np.zeros((1, 2, 4, 4, 2), np.float32), "too small"),
    (lambda: L.Conv1DTranspose(2, 2), np.zeros((1, 4, 4, 2), np.float32), "ndim=3"),
    (lambda: L.DepthwiseConv1D(3), np.zeros((1, 4, 4, 2), np.float32), "ndim=3"),
    (lambda: L.SeparableConv1D(2, 5), np.zeros((1, 4, 2), np.float32), "too small"),
    (lambda: L.MaxPooling3D(), np.zeros((1, 4, 4, 2), np.float32), "ndim=5"),
    (lambda: L.MaxPooling3D(3), np.zeros((1, 2, 4, 4, 2), np.float32), "smaller than"),
    (lambda: L.GlobalAveragePooling3D(), np.zeros((1, 4, 4, 2), np.float32), "ndim=5"),
    (lambda: L.AdaptiveMaxPooling1D(2), np.zeros((1, 4, 4, 2), np.float32), "ndim=3"),
    (lambda: L.Cropping3D(2), np.zeros((1, 4, 6, 6, 2), np.float32), "cropping"),
    (lambda: L.UpSampling3D(), np.zeros((1, 4, 2), np.float32), "ndim=5"),
    (lambda: L.Permute((2, 1)), np.zeros((1, 4, 2, 3), np.float32), "rank 3"),
    (lambda: L.RepeatVector(2), np.zeros((1, 4, 2), np.float32), "ndim=2"),
    (lambda: L.SpatialDropout1D(0.5), np.zeros((1, 4), np.float32), "ndim=3"),
    (lambda: L.ConvLSTM2D(2, 3), np.zeros((1, 3, 5, 5), np.float32), "ndim=5"),
    (lambda: L.ConvLSTM1D(2, 5), np.zeros((1, 3, 4, 2), np.float32), "too small"),
])
def test_bad_input_names_the_layer(layer, x, match):
    lay = layer()
    with pytest.raises(ValueError, match=match) as e:
        lay(Tensor(x))
    assert lay.name in str(e.value)


@pytest.mark.parametrize("axes,shapes,match", [
    (1, [(2, 3), (2, 4)], "incompatible"),
    (0, [(2, 3), (2, 3)], "batch"),
    (3, [(2, 3, 4), (2, 3, 4)], "out of range"),
])
def test_dot_bad_input(axes, shapes, match):
    d = L.Dot(axes=axes)
    with pytest.raises(ValueError, match=match):
        d([Tensor(np.zeros(s, np.float32)) for s in shapes])
    with pytest.raises(ValueError, match="2 inputs"):
        L.Dot(1)([Tensor(np.zeros((2, 3), np.float32))] * 3)


def test_conv_lstm_bad_initial_state():
    lay = L.ConvLSTM2D(2, 3, padding="same")
    x = Tensor(np.zeros((1, 2, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="initial state"):
        lay(x, initial_state=[np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 3))])


# ------------------------------------------------------------------ configs
CONFIG_LAYERS = [
    lambda: L.Conv3D(2, 3, strides=2, data_format="channels_first"),
    lambda: L.Conv1DTranspose(2, 3, strides=2, output_padding=1),
    lambda: L.Conv3DTranspose(2, 2),
    lambda: L.DepthwiseConv1D(3, depth_multiplier=2),
    lambda: L.SeparableConv1D(3, 2, padding="same"),
    lambda: L.MaxPooling3D(3, strides=2),
    lambda: L.GlobalAveragePooling3D(keepdims=True),
    lambda: L.AdaptiveMaxPooling2D((2, 3), data_format="channels_first"),
    lambda: L.ZeroPadding3D((1, 2, 3)),
    lambda: L.Cropping3D(((0, 1), (1, 0), (2, 2))),
    lambda: L.UpSampling3D((1, 2, 3)),
    lambda: L.Permute((2, 3, 1)),
    lambda: L.RepeatVector(4),
    lambda: L.Identity(),
    lambda: L.ActivityRegularization(0.1, 0.2),
    lambda: L.AlphaDropout(0.2, seed=3),
    lambda: L.SpatialDropout1D(0.3),
    lambda: L.SpatialDropout3D(0.3, data_format="channels_first"),
    lambda: L.Dot((1, 2), normalize=True),
    lambda: L.ConvLSTM2D(3, 2, return_sequences=True, go_backwards=True),
]


@pytest.mark.parametrize("make", CONFIG_LAYERS)
def test_config_round_trip(make):
    a = make()
    cfg = a.get_config()
    b = type(a).from_config(cfg)
    cfg_b = b.get_config()
    cfg.pop("name")
    cfg_b.pop("name")
    assert cfg_b == cfg


# ------------------------------------------------------------------ noise layers
def test_alpha_dropout_keeps_selu_statistics():
    axone.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(400, 500)).astype(np.float32)
    y = L.AlphaDropout(0.2)(Tensor(x), training=True).data
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((0.8) * (1 + 0.2 * alpha_p ** 2)) ** -0.5
    dropped = np.isclose(y, a * alpha_p + (-a * alpha_p * 0.2))
    assert 0.18 < dropped.mean() < 0.22
    np.testing.assert_array_equal(L.AlphaDropout(0.2)(Tensor(x)).data, x)


def test_alpha_dropout_gradient_is_the_kept_scale():
    axone.utils.set_random_seed(1)
    t = Tensor(np.ones((50, 40), np.float32), requires_grad=True)
    y = L.AlphaDropout(0.3)(t, training=True)
    y.sum().backward()
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((0.7) * (1 + 0.3 * alpha_p ** 2)) ** -0.5
    g = t.grad
    assert np.all(np.isclose(g, 0) | np.isclose(g, a, rtol=1e-6))
    assert 0.2 < np.isclose(g, 0).mean() < 0.4


@pytest.mark.parametrize("cls,shape,fmt,spatial", [
    (L.SpatialDropout1D, (8, 20, 30), None, (1,)),
    (L.SpatialDropout2D, (8, 6, 7, 30), "channels_last", (1, 2)),
    (L.SpatialDropout2D, (8, 30, 6, 7), "channels_first", (2, 3)),
    (L.SpatialDropout3D, (8, 3, 4, 5, 30), "channels_last", (1, 2, 3)),
])
def test_spatial_dropout_drops_whole_channels(cls, shape, fmt, spatial):
    axone.utils.set_random_seed(2)
    kw = {} if fmt is None else {"data_format": fmt}
    y = cls(0.5, **kw)(Tensor(np.ones(shape, np.float32)), training=True).data
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert np.all(y.min(axis=spatial) == y.max(axis=spatial))   # constant over space
    assert 0.3 < (y == 0).mean() < 0.7
    np.testing.assert_array_equal(cls(0.5, **kw)(Tensor(np.ones(shape, np.float32))).data, 1.0)


# ------------------------------------------------------------------ in models
def test_symbolic_shapes_in_a_functional_model():
    inp = axone.Input((4, 6, 6, 2))
    y, h, c = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True, return_state=True)(inp)
    assert tuple(y.shape) == (None, 4, 6, 6, 3) and tuple(h.shape) == (None, 6, 6, 3)
    z = L.Conv3D(2, 2, data_format="channels_first")(L.Permute((4, 1, 2, 3))(y))
    assert tuple(z.shape) == (None, 2, 3, 5, 5)
    z = L.AdaptiveAveragePooling3D(2, data_format="channels_first")(z)
    out = L.Dense(1)(L.Flatten()(z))
    model = axone.Model(inp, out)
    x = np.random.default_rng(0).normal(size=(4, 4, 6, 6, 2)).astype(np.float32)
    assert model.predict(x, verbose=0).shape == (4, 1)


def test_a_3d_cnn_trains():
    axone.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4, 6, 6, 1)).astype(np.float32)
    t = (x.mean(axis=(1, 2, 3, 4)) > 0).astype(np.float32)[:, None]
    model = axone.Sequential([
        axone.Input((4, 6, 6, 1)), L.Conv3D(4, 3, padding="same", activation="relu"),
        L.SpatialDropout3D(0.1), L.MaxPooling3D(2), L.Conv3DTranspose(2, 2, strides=2),
        L.GlobalAveragePooling3D(), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer=axone.optimizers.Adam(0.01), loss="binary_crossentropy")
    h = model.fit(x, t, epochs=15, batch_size=8, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
    assert h.history["loss"][-1] < h.history["loss"][0]
