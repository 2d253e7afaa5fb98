"""StackedRNNCells (axone/layers/recurrent.py) against Keras 3 (torch backend): RNN(StackedRNNCells
([...])) and RNN([cell, cell]) with the same weights — outputs, states and their nesting,
gradients, masks, go_backwards, a user cell in the stack (the step-by-step path), fit History —
state sizes, get_config round trips, bad input."""
import numpy as np
import pytest
import torch

import keras

import axone
from axone import Tensor, ops
from axone import layers as L
from axone.layers.base import _flatten
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"

N, T, D = 3, 6, 4


def _x(seed=0, shape=(N, T, D)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _minimal_cell(lib):
    """The user-written cell of Keras's RNN documentation (an int state_size)."""
    class MinimalRNNCell(lib.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                          initializer="glorot_uniform", name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                    initializer="orthogonal",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            prev = states[0] if isinstance(states, (list, tuple)) else states
            out = lib.ops.tanh(lib.ops.matmul(inputs, self.kernel)
                               + lib.ops.matmul(prev, self.recurrent_kernel))
            return out, [out]
    return MinimalRNNCell


def _cells(lib, specs):
    out = []
    for name, units in specs:
        if name == "Minimal":
            out.append(_minimal_cell(lib)(units))
        else:
            out.append(getattr(lib.layers, name)(units))
    return out


def _pair(specs, wrap=True, **kw):
    """The same stacked RNN in Keras and axone, axone holding Keras's weights."""
    kc, ac = _cells(keras, specs), _cells(axone, specs)
    k = keras.layers.RNN(keras.layers.StackedRNNCells(kc) if wrap else kc, **kw)
    a = L.RNN(L.StackedRNNCells(ac) if wrap else ac, **kw)
    k.build((None, T, D))
    a.build((None, T, D))
    assert [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in k.weights]
    a.set_weights([np.asarray(w) for w in k.get_weights()])
    return k, a


def _structure(y):
    if isinstance(y, (list, tuple)):
        return [_structure(v) for v in y]
    return tuple(y.shape)


SPECS = [
    [("LSTMCell", 5), ("GRUCell", 3)],
    [("GRUCell", 4), ("SimpleRNNCell", 3), ("LSTMCell", 2)],
    [("SimpleRNNCell", 3), ("Minimal", 4)],          # a user cell: the step-by-step path
]
OPTIONS = [dict(), dict(return_sequences=True, return_state=True),
           dict(go_backwards=True, return_sequences=True), dict(return_state=True, go_backwards=True)]


@pytest.mark.parametrize("specs", SPECS, ids=["lstm-gru", "gru-simple-lstm", "simple-user"])
@pytest.mark.parametrize("kw", OPTIONS, ids=["last", "seq-state", "back-seq", "back-state"])
def test_outputs_states_and_gradients_match_keras(specs, kw):
    k, a = _pair(specs, **kw)
    x = _x()
    xt = torch.tensor(x, requires_grad=True)
    xa = Tensor(x, requires_grad=True)
    yk, ya = k(xt), a(xa)
    assert _structure(ya) == _structure(yk)
    fk, fa = keras.tree.flatten(yk), _flatten(ya)
    loss_k, loss_a = 0, 0
    for i, (p, q) in enumerate(zip(fk, fa)):
        np.testing.assert_allclose(q.data, p.detach().numpy(), rtol=1e-5, atol=1e-5)
        w = _x(10 + i, tuple(p.shape))
        loss_k = loss_k + (p * torch.tensor(w)).sum()
        loss_a = loss_a + ops.sum(q * w)
    loss_k.backward()
    loss_a.backward()
    np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for wa, wk in zip(a.weights, k.weights):
        np.testing.assert_allclose(wa.grad, wk.value.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("specs", SPECS[:1] + SPECS[2:], ids=["lstm-gru", "simple-user"])
@pytest.mark.parametrize("zero,back", [(False, False), (True, False), (False, True)],
                         ids=["held", "zeros", "backwards"])
def test_masks_match_keras(specs, zero, back):
    k, a = _pair(specs, wrap=False, return_sequences=True, return_state=True,
                 zero_output_for_mask=zero, go_backwards=back)
    x = _x(1)
    mask = np.ones((N, T), bool)
    mask[0, 4:] = False
    mask[1, 2] = False
    yk = k(torch.tensor(x), mask=torch.tensor(mask))
    ya = a(Tensor(x), mask=mask)
    for p, q in zip(keras.tree.flatten(yk), _flatten(ya)):
        np.testing.assert_allclose(q.data, p.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_initial_state_nested_or_flat_matches_keras():
    k, a = _pair([("LSTMCell", 3), ("GRUCell", 2)], return_state=True)
    x = _x(2)
    s = [_x(20 + i, (N, n)) for i, n in enumerate((3, 3, 2))]
    yk = k(torch.tensor(x), initial_state=[[torch.tensor(s[0]), torch.tensor(s[1])],
                                           [torch.tensor(s[2])]])
    for init in ([[s[0], s[1]], [s[2]]], [s[0], s[1], s[2]]):
        ya = a(Tensor(x), initial_state=init)
        for p, q in zip(keras.tree.flatten(yk), _flatten(ya)):
            np.testing.assert_allclose(q.data, p.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_state_sizes_output_size_and_shapes_match_keras():
    kc = keras.layers.StackedRNNCells([keras.layers.LSTMCell(5), keras.layers.GRUCell(3)])
    ac = L.StackedRNNCells([L.LSTMCell(5), L.GRUCell(3)])
    assert ac.state_size == kc.state_size == [[5, 5], 3]
    assert ac.output_size == kc.output_size == 3
    assert L.GRUCell(4).state_size == keras.layers.GRUCell(4).state_size == 4
    assert L.SimpleRNNCell(4).state_size == keras.layers.SimpleRNNCell(4).state_size == 4
    assert L.LSTMCell(4).state_size == keras.layers.LSTMCell(4).state_size == [4, 4]
    k = keras.layers.RNN(kc, return_state=True, return_sequences=True)
    a = L.RNN(ac, return_state=True, return_sequences=True)
    want = k.compute_output_shape((None, T, D))
    got = a.compute_output_shape((None, T, D))
    assert got == [want[0], list(want[1]), want[2]]
    # symbolic: the shapes follow state_size, as in Keras
    outs = L.RNN([L.LSTMCell(5), L.GRUCell(3)], return_state=True)(axone.Input((T, D)))
    assert [_structure(o) for o in outs] == [(None, 3), [(None, 5), (None, 5)], (None, 3)]


def test_functional_model_and_fit_history_match_keras():
    x, y = _x(3, (8, T, D)), _x(4, (8, 1))
    km = keras.Sequential([keras.Input((T, D)),
                           keras.layers.RNN([keras.layers.LSTMCell(4), keras.layers.GRUCell(3)]),
                           keras.layers.Dense(1)])
    am = axone.Sequential([axone.Input((T, D)), L.RNN([L.LSTMCell(4), L.GRUCell(3)]),
                           L.Dense(1)])
    am.set_weights([np.asarray(w) for w in km.get_weights()])
    km.compile(keras.optimizers.SGD(0.1), "mse")
    am.compile(axone.optimizers.SGD(0.1), "mse")
    hk = km.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"]
    ha = am.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ha, hk, rtol=1e-4)
    for p, q in zip(am.get_weights(), km.get_weights()):
        np.testing.assert_allclose(p, np.asarray(q), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(am.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-4,
                               atol=1e-5)


def test_stacked_gradients_finite_differences_float64():
    layer = L.RNN([L.LSTMCell(3, dtype="float64"), L.GRUCell(2, dtype="float64")],
                  return_sequences=True, go_backwards=True, dtype="float64")
    x = np.random.default_rng(5).standard_normal((2, 4, 3))
    layer.build(x.shape)
    assert check_gradients(lambda v: layer(v), x).max_error < 1e-6


def test_get_config_round_trip():
    a = L.RNN(L.StackedRNNCells([L.LSTMCell(4, dropout=0.1), L.GRUCell(3, reset_after=False)]),
              return_sequences=True)
    cfg = a.get_config()
    cells = cfg["cell"]["config"]["cells"]
    assert [c["class_name"] for c in cells] == ["LSTMCell", "GRUCell"]
    assert cells[0]["module"] == "keras.layers" and cells[1]["config"]["reset_after"] is False
    b = L.RNN.from_config(cfg)
    assert isinstance(b.cell, L.StackedRNNCells)
    assert b.get_config() == cfg
    x = _x(6)
    a.build(x.shape)
    b.build(x.shape)
    b.set_weights(a.get_weights())
    np.testing.assert_allclose(b(x).data, a(x).data)
    # the cells' dict is Keras's: Keras rebuilds the stack from it
    kc = keras.layers.StackedRNNCells.from_config(
        {k: v for k, v in cfg["cell"]["config"].items() if k in ("name", "trainable", "cells")})
    assert [type(c).__name__ for c in kc.cells] == ["LSTMCell", "GRUCell"]
    assert kc.cells[1].reset_after is False


def test_bad_cells():
    with pytest.raises(ValueError, match="state_size"):
        L.StackedRNNCells([L.LSTMCell(3), L.Dense(2)])
    with pytest.raises(ValueError, match="call"):
        L.StackedRNNCells([object()])


def test_model_with_stacked_cells_saves_and_loads(tmp_path):
    x = _x(7)
    m = axone.Sequential([axone.Input((T, D)),
                          L.RNN([L.LSTMCell(4), L.GRUCell(2)], return_sequences=True),
                          L.Bidirectional(L.RNN([L.SimpleRNNCell(3), L.GRUCell(2)]))])
    y = m.predict(x, verbose=0)
    m.save(tmp_path / "stacked.keras")
    back = axone.models.load_model(tmp_path / "stacked.keras")
    np.testing.assert_array_equal(back.predict(x, verbose=0), y)
