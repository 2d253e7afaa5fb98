"""Wrapper and TorchModuleWrapper (axone/layers/wrappers.py): the wrapper base against Keras 3
(build, tracked weights, get_config with "layer", round trip); a torch module as a layer —
its parameters as weights (Keras's order and flags), outputs and gradients against PyTorch,
fit against the same module trained by PyTorch and by Keras's TorchModuleWrapper, the
training flag, set_weights, float64 finite differences, serialization refused, bad input."""
import copy
import sys

import numpy as np
import pytest
import torch

import keras

import axone
from axone import Tensor, ops
from axone import layers as L
from axone.layers.wrappers import TorchModuleWrapper, Wrapper
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ Wrapper
def _doubling(lib):
    class Doubling(lib.layers.Wrapper):
        def call(self, inputs):
            return self.layer(inputs) * 2.0
    return Doubling


def test_wrapper_builds_and_tracks_the_inner_layer_like_keras():
    a = _doubling(axone)(L.Dense(3, name="inner"), name="twice")
    k = _doubling(keras)(keras.layers.Dense(3, name="inner"), name="twice")
    x = _x(4, 5)
    a.build((None, 5))
    k.build((None, 5))
    assert a.layer.built and a.built
    assert [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in k.weights]
    assert [tuple(w.shape) for w in a.trainable_weights] == [(5, 3), (3,)]
    a.set_weights([np.asarray(w) for w in k.get_weights()])
    np.testing.assert_allclose(a(x).data, k(x).detach().numpy(), rtol=1e-6)
    a.trainable = False
    assert a.trainable_weights == [] and len(a.non_trainable_weights) == 2


def test_wrapper_get_config_round_trip_and_keras_layout():
    Doubling = _doubling(axone)
    a = Doubling(L.Dense(3, activation="relu", name="inner"), name="twice")
    cfg = a.get_config()
    kcfg = _doubling(keras)(keras.layers.Dense(3, activation="relu", name="inner"),
                            name="twice").get_config()
    assert set(kcfg) - {"dtype"} <= set(cfg)
    assert cfg["layer"]["class_name"] == kcfg["layer"]["class_name"] == "Dense"
    assert cfg["layer"]["module"] == kcfg["layer"]["module"] == "keras.layers"
    assert cfg["layer"]["config"]["units"] == 3 and cfg["layer"]["config"]["activation"] == "relu"
    b = Doubling.from_config(cfg)
    assert isinstance(b.layer, L.Dense) and b.layer.units == 3 and b.name == "twice"
    assert b.get_config() == cfg


def test_wrapper_in_a_model_trains_the_inner_layer():
    m = axone.Sequential([axone.Input((5,)), _doubling(axone)(L.Dense(1))])
    m.compile("sgd", "mse")
    before = m.get_weights()
    m.fit(_x(8, 5), _x(8, 1, seed=1), epochs=1, verbose=0)
    assert any(np.abs(p - q).max() > 0 for p, q in zip(before, m.get_weights()))


def test_wrapper_bad_input():
    with pytest.raises(ValueError, match="isn't a supported layer type"):
        Wrapper("dense")
    w = Wrapper(L.Dense(2))
    with pytest.raises(NotImplementedError, match="abstract"):
        w(np.ones((1, 3), dtype=np.float32))


# ------------------------------------------------------------------ TorchModuleWrapper
def _mlp(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(),
                               torch.nn.Linear(6, 2)).to(dtype)


def test_parameters_become_weights_in_keras_order():
    mod = _mlp()
    mod[2].bias.requires_grad_(False)
    a = TorchModuleWrapper(copy.deepcopy(mod))
    k = keras.layers.TorchModuleWrapper(copy.deepcopy(mod))
    assert a.built
    assert [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in k.weights]
    assert [w.trainable for w in a.weights] == [w.trainable for w in k.weights]
    assert [tuple(w.shape) for w in a.trainable_weights] == [(6, 4), (6,), (2, 6)]
    assert [tuple(w.shape) for w in a.non_trainable_weights] == [(2,)]
    for w, p in zip(a.get_weights(), mod.parameters()):
        np.testing.assert_array_equal(w, p.detach().numpy())
    assert list(a.parameters()) == list(a.module.parameters())
    assert a.count_params() == sum(p.numel() for p in mod.parameters())


def test_outputs_and_gradients_match_torch():
    mod = _mlp(1)
    ref = copy.deepcopy(mod)
    a = TorchModuleWrapper(mod)
    x = _x(5, 4)
    xa = Tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ya, yt = a(xa), ref(xt)
    np.testing.assert_allclose(ya.data, yt.detach().numpy(), rtol=1e-6, atol=1e-7)
    w = _x(5, 2, seed=2)
    ops.sum(ops.square(ya) * w).backward()
    ((yt ** 2) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    for v, p in zip(a.weights, ref.parameters()):
        np.testing.assert_allclose(v.grad, p.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_fit_matches_torch_sgd_and_keras():
    mod = _mlp(2)
    by_torch, by_keras = copy.deepcopy(mod), copy.deepcopy(mod)
    x, y = _x(8, 4, seed=3), _x(8, 2, seed=4)
    m = axone.Sequential([axone.Input((4,)), TorchModuleWrapper(mod)])
    m.compile(axone.optimizers.SGD(0.1), "mse")
    hist = m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    opt = torch.optim.SGD(by_torch.parameters(), lr=0.1)
    losses = []
    for i in (0, 4):                      # two SGD steps of 4 rows
        opt.zero_grad()
        loss = ((by_torch(torch.tensor(x[i:i + 4])) - torch.tensor(y[i:i + 4])) ** 2).mean()
        losses.append(loss.item())
        loss.backward()
        opt.step()
    np.testing.assert_allclose(hist, [np.mean(losses)], rtol=1e-5)
    for w, p, q in zip(m.get_weights(), by_torch.parameters(), mod.parameters()):
        np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(q.detach().numpy(), w, rtol=0, atol=0)   # module in sync
    km = keras.Sequential([keras.Input((4,)), keras.layers.TorchModuleWrapper(by_keras)])
    km.compile(keras.optimizers.SGD(0.1), "mse")
    khist = km.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(hist, khist, rtol=1e-5)
    np.testing.assert_allclose(m.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_set_weights_reaches_the_module():
    a = TorchModuleWrapper(_mlp(3))
    new = [np.full(w.shape, 0.01 * (i + 1), dtype=np.float32) for i, w in enumerate(a.weights)]
    a.set_weights(new)
    for p, w in zip(a.module.parameters(), new):
        np.testing.assert_array_equal(p.detach().numpy(), w)
    x = _x(3, 4)
    np.testing.assert_allclose(a(x).data, a.module(torch.tensor(x)).detach().numpy(), rtol=1e-6)


def test_training_flag_switches_train_and_eval_like_keras():
    torch.manual_seed(0)
    mod = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.5),
                              torch.nn.BatchNorm1d(16))
    a = TorchModuleWrapper(mod)
    x = _x(6, 4)
    y_eval = a(x, training=False).data
    assert not mod.training
    ref = copy.deepcopy(mod).eval()
    np.testing.assert_allclose(y_eval, ref(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    a(x, training=True)
    assert mod.training
    assert not np.allclose(mod[2].running_mean.numpy(), 0)     # the buffers update in training
    m = axone.Sequential([axone.Input((4,)), a])
    np.testing.assert_allclose(m.predict(x, verbose=0),
                               copy.deepcopy(mod).eval()(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_finite_differences_float64():
    a = TorchModuleWrapper(_mlp(4, torch.float64), dtype="float64")
    x = np.random.default_rng(5).standard_normal((3, 4))
    r = check_gradients(lambda v: a(v), x)
    assert r.max_error < 1e-7, r


def test_symbolic_use_and_output_shape():
    inp = axone.Input((4,))
    out = TorchModuleWrapper(_mlp(5))(inp)
    assert out.shape == (None, 2)
    given = TorchModuleWrapper(_mlp(5), output_shape=(None, 2))
    assert given.compute_output_shape((None, 4)) == (None, 2)
    model = axone.Model(inp, out)
    assert model.predict(_x(2, 4), verbose=0).shape == (2, 2)


def test_serialization_is_refused_clearly():
    with pytest.raises(NotImplementedError, match="pickl"):
        TorchModuleWrapper(_mlp()).get_config()


def test_bad_input(monkeypatch):
    with pytest.raises(TypeError, match="torch.nn.Module"):
        TorchModuleWrapper(L.Dense(2))
    with pytest.raises(ValueError, match="LazyModules"):
        TorchModuleWrapper(torch.nn.LazyLinear(3))

    class TwoOutputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x), x

    with pytest.raises(NotImplementedError, match="one tensor"):
        TorchModuleWrapper(TwoOutputs())(_x(2, 3))
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch"):
        TorchModuleWrapper(object())


def test_names_resolve_in_axone_layers():
    assert L.Wrapper is Wrapper and L.TorchModuleWrapper is TorchModuleWrapper


def test_model_with_a_torch_module_refuses_to_save(tmp_path):
    m = axone.Sequential([axone.Input((4,)), TorchModuleWrapper(_mlp())])
    with pytest.raises(NotImplementedError, match="cannot be serialized"):
        m.save(tmp_path / "m.keras")
