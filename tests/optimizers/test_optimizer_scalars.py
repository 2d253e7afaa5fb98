"""optimizer.iterations and optimizer.learning_rate read like Keras 3's variables."""
import json

import numpy as np
import pytest

import axone
from axone import layers, optimizers

keras = pytest.importorskip("keras")


def _fit(lib, opt_cls, lr_change):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    m = lib.Sequential([lib.layers.Input((3,)), lib.layers.Dense(1, kernel_initializer="ones")])
    opt = opt_cls(learning_rate=0.1)
    m.compile(optimizer=opt, loss="mse")
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    opt.learning_rate.assign(lr_change)
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return m, opt


def test_keras_idioms_match_keras():
    ours, o = _fit(axone, optimizers.SGD, 0.01)
    theirs, k = _fit(keras, keras.optimizers.SGD, 0.01)
    assert int(o.iterations) == int(k.iterations) == 4
    assert o.iterations.numpy() == k.iterations.numpy()
    assert float(o.learning_rate) == pytest.approx(float(k.learning_rate))
    np.testing.assert_allclose(o.learning_rate.numpy(), k.learning_rate.numpy())
    assert str(o.iterations.numpy().dtype) == str(keras.ops.convert_to_numpy(k.iterations).dtype)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_numbers_stay_numbers():
    o = optimizers.Adam(0.01)
    assert o.learning_rate * 2 == pytest.approx(0.02) and o.iterations + 1 == 1
    assert json.loads(json.dumps({"i": o.iterations, "lr": o.learning_rate})) == {"i": 0, "lr": 0.01}
    assert f"{o.learning_rate:.3f}" == "0.010" and o.learning_rate.value == 0.01
    o.iterations.assign(7)
    assert o.iterations == 7
    o.learning_rate = o.learning_rate * 0.5
    assert o.learning_rate == pytest.approx(0.005)


def test_schedule_learning_rate_not_assignable():
    sched = optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    o = optimizers.SGD(sched)
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        o.learning_rate.assign(0.5)
