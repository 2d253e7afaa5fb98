"""SwapEMAWeights: validation and evaluation see the optimizer's moving averages (Keras 3)."""
import numpy as np
import pytest

import axone
from axone import layers as L


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")
    return x, y


def _weights():
    rng = np.random.default_rng(1)
    return [rng.normal(size=(4, 3)).astype("float32") * 0.5, np.zeros(3, "float32"),
            rng.normal(size=(3, 2)).astype("float32") * 0.5, np.zeros(2, "float32")]


def _model(ns, **opt):
    m = ns.Sequential([ns.Input((4,)), ns.layers.Dense(3, activation="tanh"), ns.layers.Dense(2)])
    m.set_weights(_weights())
    m.compile(optimizer=ns.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9, **opt), loss="mse")
    return m


@pytest.mark.parametrize("swap_on_epoch", [False, True])
def test_validation_losses_and_weights_match_keras(swap_on_epoch):
    keras = pytest.importorskip("keras")
    x, y = _data()
    runs = {}
    for ns in (axone, keras):
        m = _model(ns)
        h = m.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, validation_data=(x, y),
                  callbacks=[ns.callbacks.SwapEMAWeights(swap_on_epoch=swap_on_epoch)])
        runs[ns.__name__] = (h.history, [np.asarray(w) for w in m.get_weights()])
    (ha, wa), (hk, wk) = runs["axone"], runs["keras"]
    np.testing.assert_allclose(ha["val_loss"], hk["val_loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ha["loss"], hk["loss"], rtol=1e-5, atol=1e-6)
    for a, b in zip(wa, wk):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_validation_differs_from_the_raw_weights_and_weights_come_back():
    x, y = _data()
    m = _model(axone)
    for i in range(0, 32, 8):          # train_on_batch leaves the averages apart from the weights
        m.train_on_batch(x[i:i + 8], y[i:i + 8])
    raw = [w.copy() for w in m.get_weights()]
    swap = axone.callbacks.SwapEMAWeights()
    ema_loss = m.evaluate(x, y, verbose=0, callbacks=[swap])
    assert [np.array_equal(a, b) for a, b in zip(raw, m.get_weights())] == [True] * 4
    assert not np.isclose(ema_loss, m.evaluate(x, y, verbose=0))
    m.predict(x, verbose=0, callbacks=[swap])
    assert all(np.array_equal(a, b) for a, b in zip(raw, m.get_weights()))


def test_without_ema_it_raises():
    x, y = _data()
    m = axone.Sequential([axone.Input((4,)), L.Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="use_ema"):
        m.fit(x, y, epochs=1, verbose=0, validation_data=(x, y),
              callbacks=[axone.callbacks.SwapEMAWeights()])
