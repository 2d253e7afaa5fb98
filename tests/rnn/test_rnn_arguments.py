"""Recurrent layers' Keras arguments: activity_regularizer, regularizers and constraints kept by
configs and files, seeded and per-cell dropout, implementation / use_cudnn, Bidirectional weights."""
import numpy as np
import pytest

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import layers as L

RNG = np.random.default_rng(3)
N, T, D, U = 6, 5, 3, 4

REGS = dict(kernel_regularizer=keras.regularizers.L2(0.03),
            recurrent_regularizer=keras.regularizers.L1(0.02),
            bias_regularizer=keras.regularizers.L1L2(0.01, 0.05),
            activity_regularizer=keras.regularizers.L2(0.2))


def _axone_regs():
    from axone import regularizers as R
    return dict(kernel_regularizer=R.L2(0.03), recurrent_regularizer=R.L1(0.02),
                bias_regularizer=R.L1L2(0.01, 0.05), activity_regularizer=R.L2(0.2))


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_loss_with_penalties_matches_keras(kind, return_sequences):
    x = RNG.normal(size=(N, T, D)).astype("float32")
    shape = (N, T, U) if return_sequences else (N, U)
    y = RNG.normal(size=shape).astype("float32")
    km = keras.Sequential([keras.Input((T, D)), getattr(keras.layers, kind)(
        U, return_sequences=return_sequences, **REGS)])
    km.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    weights = [w + RNG.normal(size=w.shape).astype("float32") * 0.1 for w in km.get_weights()]
    km.set_weights(weights)
    axone.utils.clear_session()
    am = axone.Sequential([L.Input((T, D)), getattr(L, kind)(
        U, return_sequences=return_sequences, **_axone_regs())])
    am.compile(optimizer=axone.optimizers.SGD(0.05), loss="mse")
    am.set_weights(weights)
    k_loss = km.evaluate(x, y, batch_size=N, verbose=0)
    a_loss = am.evaluate(x, y, batch_size=N, verbose=0)
    out = np.asarray(am.predict(x, verbose=0))
    plain = float(np.mean((out - y) ** 2))
    assert a_loss - plain > 0.01          # the penalties are a visible part of the loss
    if kind == "SimpleRNN":
        # Keras 3's SimpleRNN documents activity_regularizer but never hands it to its base
        # layer, so it drops the penalty; axone applies it as documented (and as LSTM/GRU do)
        assert not km.layers[0].losses or len(km.layers[0].losses) == 3
        k_loss += 0.2 * float(np.sum(out.astype(np.float64) ** 2)) / N
    assert a_loss == pytest.approx(k_loss, rel=1e-5, abs=1e-6)
    if kind == "SimpleRNN":
        return
    # and training on that loss gives Keras's weights
    km.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0)
    am.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0)
    for a, k in zip(am.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, k, rtol=1e-4, atol=2e-5)


def test_activity_regularizer_on_every_output_with_return_state():
    x = RNG.normal(size=(N, T, D)).astype("float32")
    layer = L.LSTM(U, return_state=True, activity_regularizer="l1")
    out, h, c = layer(x)
    assert len(layer.losses) == 3          # output, h and c, each l1(y)/batch as Keras
    for p, t in zip(layer.losses, (out, h, c)):
        assert float(p.data) == pytest.approx(0.01 * np.abs(t.data).sum() / N, rel=1e-6)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_save_load_keeps_regularizers_and_constraints(kind, tmp_path):
    axone.utils.clear_session()
    x = RNG.normal(size=(N, T, D)).astype("float32")
    y = RNG.normal(size=(N, 1)).astype("float32")
    model = axone.Sequential([L.Input((T, D)), getattr(L, kind)(
        U, kernel_regularizer="l2", recurrent_regularizer="l1", bias_regularizer="l2",
        activity_regularizer="l1", kernel_constraint="max_norm", recurrent_constraint="unit_norm",
        bias_constraint="non_neg"), L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.save(tmp_path / "m.keras")
    m2 = axone.models.load_model(tmp_path / "m.keras")
    assert m2.evaluate(x, y, verbose=0) == pytest.approx(before, rel=1e-6)
    assert len(m2.layers[0].losses) == 4   # three weight penalties and the activity one
    cell = m2.layers[0].cell
    assert type(cell.kernel.constraint).__name__ == "MaxNorm"
    assert type(cell.recurrent_kernel.constraint).__name__ == "UnitNorm"
    assert type(cell.bias.constraint).__name__ == "NonNeg"
    assert m2.layers[0].get_config() == model.layers[0].get_config()


def test_config_matches_keras_keys():
    k = keras.layers.LSTM(U, kernel_regularizer="l2", recurrent_constraint="unit_norm",
                          activity_regularizer="l1").get_config()
    a = L.LSTM(U, kernel_regularizer="l2", recurrent_constraint="unit_norm",
               activity_regularizer="l1").get_config()
    for key in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                "kernel_constraint", "recurrent_constraint", "bias_constraint",
                "activity_regularizer"):
        assert key in a
        assert (a[key] is None) == (k[key] is None)
        if a[key] is not None:
            assert a[key]["class_name"] == k[key]["class_name"]
    assert a["recurrent_constraint"] == k["recurrent_constraint"]


def test_bidirectional_keeps_inner_penalties():
    x = RNG.normal(size=(N, T, D)).astype("float32")
    b = L.Bidirectional(L.GRU(U, kernel_regularizer="l2", activity_regularizer="l2"))
    b(x)
    # two directions: kernel penalty and activity penalty each
    assert len(b.losses) == 4
    b2 = L.Bidirectional.from_config(b.get_config())
    b2(x)
    assert len(b2.losses) == 4


def test_bidirectional_weights_argument():
    x = RNG.normal(size=(N, T, D)).astype("float32")
    src = L.Bidirectional(L.LSTM(U))
    src(x)
    b = L.Bidirectional(L.LSTM(U), weights=src.get_weights())
    np.testing.assert_allclose(b(x).data, src(x).data, rtol=1e-6)
    with pytest.raises(ValueError, match="weights"):
        L.Bidirectional(L.LSTM(U), weights=src.get_weights()[:2])(x)


def test_seeded_dropout_is_reproducible():
    x = RNG.normal(size=(N, T, D)).astype("float32")
    outs = []
    for _ in range(2):
        layer = L.LSTM(U, dropout=0.4, recurrent_dropout=0.3, seed=7,
                       kernel_initializer="ones", recurrent_initializer="ones")
        outs.append(layer(x, training=True).data)
    np.testing.assert_array_equal(outs[0], outs[1])
    other = L.LSTM(U, dropout=0.4, recurrent_dropout=0.3, seed=8,
                   kernel_initializer="ones", recurrent_initializer="ones")(x, training=True).data
    assert not np.allclose(outs[0], other)
    with pytest.raises(TypeError, match="seed"):
        L.LSTM(U, seed="x")


@pytest.mark.parametrize("cell_cls", ["SimpleRNNCell", "LSTMCell", "GRUCell"])
def test_cell_call_applies_dropout_while_training(cell_cls):
    cell = getattr(L, cell_cls)(U, dropout=0.5, seed=1)
    x = np.ones((N, D), "float32")
    states = [np.zeros((N, U), "float32")] * (2 if cell_cls == "LSTMCell" else 1)
    cell.build((N, D))
    y_inf, _ = cell(x, states)
    y_inf2, _ = cell(x, states, training=False)
    np.testing.assert_array_equal(y_inf.data, y_inf2.data)
    y_tr, _ = cell(x, states, training=True)
    assert not np.allclose(y_tr.data, y_inf.data)


def test_implementation_and_use_cudnn():
    x = RNG.normal(size=(N, T, D)).astype("float32")
    a = L.LSTM(U, implementation=1, use_cudnn=False, kernel_initializer="ones")
    b = L.LSTM(U, implementation=2, use_cudnn="auto", kernel_initializer="ones")
    a(x), b(x)
    b.set_weights(a.get_weights())
    np.testing.assert_allclose(a(x).data, b(x).data, rtol=1e-6)
    L.GRU(U, implementation=1, use_cudnn=True)
    with pytest.raises(ValueError, match="implementation"):
        L.LSTM(U, implementation=3)
    with pytest.raises(ValueError, match="use_cudnn"):
        L.GRU(U, use_cudnn="yes")
    with pytest.raises(TypeError):
        L.SimpleRNN(U, use_cudnn=True)        # Keras's SimpleRNN has no use_cudnn either
    with pytest.raises(TypeError, match="time_major"):
        L.LSTM(U, time_major=True)            # not a Keras 3 argument
