"""Targets are checked against the output's declared shape, whose unknown sizes (None) match any."""
import numpy as np
import pytest

import axone
from axone import layers


def _seq_model(loss):
    m = axone.Sequential([layers.Input((None, 5)), layers.LSTM(8, return_sequences=True),
                          layers.Dense(13, activation="softmax" if loss != "mse" else None)])
    m.compile(optimizer="adam", loss=loss)
    return m


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "mse"])
def test_targets_fit_an_output_with_unknown_time_steps(loss):
    rng = np.random.default_rng(0)
    x = rng.random((6, 4, 5)).astype("float32")
    y = np.eye(13, dtype="float32")[rng.integers(0, 13, (6, 4))]
    h = _seq_model(loss).fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])


def test_a_wrong_known_size_is_still_refused():
    rng = np.random.default_rng(0)
    x = rng.random((6, 4, 5)).astype("float32")
    y = np.eye(12, dtype="float32")[rng.integers(0, 12, (6, 4))]
    with pytest.raises(ValueError, match=r"expects targets of shape \(None, None, 13\), received \(6, 4, 12\)"):
        _seq_model("categorical_crossentropy").fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="expects targets of shape"):
        _seq_model("categorical_crossentropy").fit(x, y[:, :, None], epochs=1, verbose=0)
