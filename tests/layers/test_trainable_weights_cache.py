"""``trainable_weights`` is kept between calls; every change that decides it shows at once."""
import numpy as np

import axone
from axone import layers


def _names(ws):
    return [w.path for w in ws]


def _model():
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((3,)), layers.Dense(4, name="d1"), layers.Dense(2, name="d2")])
    return m


def test_repeated_calls_give_equal_fresh_lists():
    m = _model()
    a, b = m.trainable_weights, m.trainable_weights
    assert _names(a) == _names(b) == ["d1/kernel", "d1/bias", "d2/kernel", "d2/bias"]
    assert a is not b
    a.append("x")                       # the caller's list is its own
    assert len(m.trainable_weights) == 4


def test_layer_and_variable_trainable_flags():
    m = _model()
    assert len(m.trainable_weights) == 4
    m.layers[0].trainable = False
    assert _names(m.trainable_weights) == ["d2/kernel", "d2/bias"]
    m.layers[0].trainable = True
    m.layers[1].bias.trainable = False
    assert _names(m.trainable_weights) == ["d1/kernel", "d1/bias", "d2/kernel"]
    assert _names(m.non_trainable_weights) == ["d2/bias"]
    m.trainable = False
    assert m.trainable_weights == []
    m.trainable = True                  # Keras 3: unfreezing sets the layers' variables trainable
    assert len(m.trainable_weights) == 4


def test_weights_added_and_layers_removed():
    class Growing(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(int(input_shape[-1]), 1), name="w")

        def call(self, x):
            return x @ self.w

    g = Growing()
    assert g.trainable_weights == []
    g(np.ones((1, 3), np.float32))
    assert _names(g.trainable_weights) == [g.name + "/w"]
    g.add_weight(shape=(1,), name="extra")
    assert len(g.trainable_weights) == 2

    m = _model()
    assert len(m.trainable_weights) == 4
    m.pop()
    assert _names(m.trainable_weights) == ["d1/kernel", "d1/bias"]
    m.add(layers.Dense(3, name="d3"))
    assert _names(m.trainable_weights)[-2:] == ["d3/kernel", "d3/bias"]


def test_subclassed_model_tracks_new_attribute_layers():
    class M(axone.Model):
        def __init__(self):
            super().__init__()
            self.a = layers.Dense(2)

        def call(self, x):
            return self.a(x)

    m = M()
    m(np.ones((1, 3), np.float32))
    assert len(m.trainable_weights) == 2
    m.b = layers.Dense(2)
    m.b(np.ones((1, 3), np.float32))
    assert len(m.trainable_weights) == 4
