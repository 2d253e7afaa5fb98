"""Recurrent layers over a sequence of 0 timesteps: a ValueError naming the layer (Keras 3 has no
result for it either: its loop indexes step 0), never the compiled kernel's internal message;
the same through the compiled LSTM path, the NumPy LSTM path and the general loop."""
import numpy as np
import pytest

import axone
from axone import layers
from axone.ops import recurrent as R


@pytest.mark.parametrize("path", ["compiled", "numpy", "general"])
@pytest.mark.parametrize("layer", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("kw", [{}, {"return_sequences": True}, {"return_state": True}])
def test_zero_timesteps_raise_a_clear_error(layer, kw, path, monkeypatch):
    monkeypatch.setattr(R, "_COMPILED_LSTM", path == "compiled")
    monkeypatch.setattr(R, "_FAST_LSTM", path != "general")
    x = np.zeros((2, 0, 3), np.float32)
    with pytest.raises(ValueError, match=rf"{layer}: expected a sequence of at least one "
                                         rf"timestep, received inputs of shape \(2, 0, 3\)"):
        getattr(layers, layer)(4, **kw)(x)


@pytest.mark.parametrize("layer", ["LSTM", "GRU", "SimpleRNN"])
def test_zero_timesteps_in_training_raise_a_clear_error(layer):
    model = axone.Sequential([layers.Input((None, 3)), getattr(layers, layer)(4), layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(np.zeros((4, 2, 3), np.float32), np.zeros((4, 1), np.float32), verbose=0)
    with pytest.raises(ValueError, match=f"{layer}: expected a sequence of at least one timestep"):
        model.fit(np.zeros((4, 0, 3), np.float32), np.zeros((4, 1), np.float32), verbose=0)


def test_rnn_sequence_rejects_an_unknown_cell():
    with pytest.raises(ValueError, match="cell must be one of"):
        R.rnn_sequence("lstmm", np.zeros((1, 2, 3)), np.zeros((3, 4)), np.zeros((1, 4)),
                       np.zeros(4), np.zeros((1, 1)))
