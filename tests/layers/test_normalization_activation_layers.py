"""BatchNormalization, activation layers and noise layers against Keras 3 and by finite differences."""
import numpy as np
import pytest

import axone
from axone import Tensor, layers
from axone.utils import check_gradients

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)


def _keras_grad(layer, x, up, training=None):
    tx = torch.tensor(x, requires_grad=True)
    y = layer(tx, training=training) if training is not None else layer(tx)
    (y * torch.tensor(up)).sum().backward()
    return y.detach().numpy(), tx.grad.numpy()


def _axone_grad(layer, x, up, training=None):
    tx = Tensor(x, requires_grad=True)
    y = layer(tx, training=training) if training is not None else layer(tx)
    (y * up).sum().backward()
    return y.data, tx.grad


@pytest.mark.parametrize("shape, axis", [((8, 5), -1), ((4, 3, 3, 2), -1), ((6, 3, 4), 1)])
def test_batch_normalization_training_step_matches_keras(shape, axis):
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    up = rng.standard_normal(shape).astype(np.float32)
    kb = keras.layers.BatchNormalization(axis=axis, momentum=0.9)
    ab = layers.BatchNormalization(axis=axis, momentum=0.9)
    kb.build((None,) + shape[1:])
    ab.build((None,) + shape[1:])
    n = shape[axis]
    w = [rng.random(n).astype(np.float32) + 0.5, rng.standard_normal(n).astype(np.float32),
         rng.standard_normal(n).astype(np.float32), rng.random(n).astype(np.float32) + 0.5]
    kb.set_weights(w)
    ab.set_weights(w)
    ky, kg = _keras_grad(kb, x, up, training=True)
    ay, ag = _axone_grad(ab, x, up, training=True)
    np.testing.assert_allclose(ay, ky, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ag, kg, rtol=1e-4, atol=1e-5)
    for a, k in zip(ab.get_weights(), kb.get_weights()):      # moving statistics updated alike
        np.testing.assert_allclose(a, np.asarray(k), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ab(x).data, np.asarray(kb(x, training=False).detach()), rtol=1e-5, atol=1e-5)


def test_batch_normalization_gradients_by_finite_differences():
    x = rng.standard_normal((6, 3))
    g = rng.random(3) + 0.5
    b = rng.standard_normal(3)
    r = check_gradients(lambda x, g, b: axone.ops.batch_normalization(x, g, b)[0], x, g, b)
    assert r.max_error < 1e-7, r


def test_batch_normalization_weights_summary_and_freezing():
    axone.utils.clear_session()
    model = axone.Sequential([layers.Dense(4, input_shape=(3,)), layers.BatchNormalization(),
                              layers.Dense(1)])
    assert [w.name for w in model.layers[1].weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    lines = []
    model.summary(print_fn=lines.append)
    assert "Total params: 37 (148.00 B)" in lines
    assert "Non-trainable params: 8 (32.00 B)" in lines
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = rng.standard_normal((32, 1)).astype(np.float32)
    before = model.layers[1].get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    after = model.layers[1].get_weights()
    assert not np.allclose(before[2], after[2])            # moving mean moved in training
    model.layers[1].trainable = False                      # frozen BN runs in inference mode
    frozen = model.layers[1].get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(frozen, model.layers[1].get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [
    lambda lib: lib.layers.LeakyReLU(),
    lambda lib: lib.layers.LeakyReLU(negative_slope=0.1),
    lambda lib: lib.layers.ReLU(),
    lambda lib: lib.layers.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2),
    lambda lib: lib.layers.ELU(alpha=0.7),
    lambda lib: lib.layers.Softmax(),
    lambda lib: lib.layers.PReLU(alpha_initializer=lib.initializers.Constant(0.25)),
])
def test_activation_layers_match_keras(make):
    x = (rng.standard_normal((6, 5)) * 2).astype(np.float32)
    up = rng.standard_normal((6, 5)).astype(np.float32)
    ky, kg = _keras_grad(make(keras), x, up)
    ay, ag = _axone_grad(make(axone), x, up)
    np.testing.assert_allclose(ay, ky, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ag, kg, rtol=1e-5, atol=1e-6)


def test_prelu_learns_its_slope_and_shares_axes():
    layer = layers.PReLU(shared_axes=[1, 2])
    y = layer(np.ones((2, 4, 4, 3), np.float32))
    assert layer.alpha.shape == (1, 1, 3) and y.shape == (2, 4, 4, 3)
    x = Tensor(-np.ones((2, 3), np.float32))
    p = layers.PReLU()
    out = p(x).sum()
    out.backward()
    np.testing.assert_allclose(p.alpha.grad, [-2, -2, -2])


def test_noise_layers_only_act_in_training():
    x = np.ones((200, 50), np.float32)
    for layer in (layers.GaussianNoise(0.5), layers.GaussianDropout(0.3)):
        np.testing.assert_array_equal(layer(x).data, x)
        noisy = layer(x, training=True).data
        assert not np.allclose(noisy, x)
        assert abs(noisy.mean() - 1.0) < 0.02
    assert abs(layers.GaussianNoise(0.5)(x, training=True).data.std() - 0.5) < 0.02
    assert abs(layers.GaussianDropout(0.3)(x, training=True).data.std() - np.sqrt(0.3 / 0.7)) < 0.02


@pytest.mark.parametrize("bad", [
    lambda: layers.BatchNormalization(momentum=1.5),
    lambda: layers.BatchNormalization(epsilon=0),
    lambda: layers.GaussianNoise(-1),
    lambda: layers.GaussianDropout(1.0),
    lambda: layers.LeakyReLU(negative_slope=-0.1),
    lambda: layers.ReLU(max_value=-1),
])
def test_bad_layer_arguments(bad):
    with pytest.raises(ValueError):
        bad()
