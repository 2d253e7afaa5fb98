"""keras.activations: the names added with the nn activations, mish, deserialize and the
registry, against Keras 3 (torch backend)."""
import numpy as np
import pytest
import torch

import keras
from keras.src.activations import ALL_OBJECTS_DICT

import axone
from axone import Tensor, activations
from axone.utils import check_gradients

NAMES = ["celu", "glu", "hard_shrink", "hard_silu", "hard_swish", "hard_tanh", "log_sigmoid",
         "mish", "relu6", "soft_shrink", "sparse_plus", "sparse_sigmoid", "squareplus",
         "tanh_shrink", "elu", "relu", "gelu", "silu", "swish", "softmax", "log_softmax"]


def _x(seed=0):
    x = np.random.default_rng(seed).uniform(-4, 4, (3, 6))
    for k in (0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0):
        x = np.where(np.abs(x - k) < 1e-2, k + 2e-2, x)
    return x


@pytest.mark.parametrize("name", NAMES)
def test_values_and_gradients_match_keras(name):
    x = _x().astype(np.float32)
    a = Tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    got = activations.get(name)(a)
    want = keras.activations.get(name)(t)
    np.testing.assert_allclose(got.data, want.detach().numpy(), rtol=1e-5, atol=1e-5)
    w = np.random.default_rng(1).standard_normal(got.shape).astype(np.float32)
    (got * w).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert check_gradients(activations.get(name), _x(2)).max_error < 1e-6


def test_threshold_and_sparsemax_activations():
    x = _x().astype(np.float32)
    np.testing.assert_allclose(activations.threshold(x, 0.2, -1.0).data,
                               keras.activations.threshold(torch.tensor(x), 0.2, -1.0).numpy())
    y = activations.sparsemax(x).data
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-6)


def test_registry_matches_keras():
    for name in ALL_OBJECTS_DICT:
        f = activations.get(name)
        assert callable(f), name
        want = keras.activations.serialize(ALL_OBJECTS_DICT[name])
        assert activations.serialize(f) == want, name
        assert activations.deserialize(name) is f
        assert activations.deserialize({"class_name": "function", "config": name,
                                        "module": "keras.activations"}) is f
    assert set(ALL_OBJECTS_DICT) <= set(dir(activations))


def test_deserialize_custom_objects_and_errors():
    def mine(x):
        return x * 2
    assert activations.deserialize("mine", custom_objects={"mine": mine}) is mine
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        activations.deserialize("nope")
    with pytest.raises(ValueError, match="could not interpret"):
        activations.deserialize(3)


def test_dense_with_new_activation_names():
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    for name in ("relu6", "hard_swish", "mish", "celu", "squareplus"):
        layer = axone.layers.Dense(5, activation=name)
        y = layer(x)
        ref = activations.get(name)(x @ layer.kernel.data + layer.bias.data)
        np.testing.assert_allclose(y.data, ref.data, rtol=1e-6)
        assert layer.get_config()["activation"] == keras.activations.serialize(
            keras.activations.get(name))
