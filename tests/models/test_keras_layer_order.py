"""A functional model lists its layers in Keras 3's order (decreasing depth, ties by first
reach from the outputs), also after from_config, so weights and weight files line up by position."""
import numpy as np
import pytest

import axone
from axone import layers

keras = pytest.importorskip("keras")


def _build(L, Model):
    i = L.Input((8,), name="inp")
    a = L.Dense(4, name="a")(i)
    s = L.Dense(4, name="short")(i)              # a shortcut branch
    b = L.Dense(4, name="b")(a)
    c = L.Dense(4, name="c")(b)
    x = L.Add(name="add")([c, s])
    j = L.Input((3,), name="side")
    y = L.Concatenate(name="cat")([x, L.Dense(2, name="side_d")(j)])
    return Model([i, j], L.Dense(1, name="out")(y))


def test_layers_in_keras_order_and_after_from_config():
    ours = _build(layers, axone.Model)
    theirs = _build(keras.layers, keras.Model)
    want = [l.name for l in theirs.layers]
    assert [l.name for l in ours.layers] == want
    again = axone.Model.from_config(ours.get_config())
    assert [l.name for l in again.layers] == want
    again.set_weights(ours.get_weights())
    x = [np.ones((2, 8), np.float32), np.ones((2, 3), np.float32)]
    np.testing.assert_allclose(again.predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-6)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
