"""The rest of the recurrent API against Keras 3 (PyTorch backend): cells called one step at a
time, the generic ``RNN`` wrapper (built-in and user-written cells, run step by step),
encoder-decoder models wiring ``return_state`` into ``initial_state``, parameter counts and
output shapes, configs, and dropout / recurrent_dropout."""
import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import Tensor
from axone.ops.recurrent import rnn_sequence
from axone.utils import check_gradients

from .test_rnn_parity import _close, compare, random_weights, run_axone, run_keras

N, T, D = 3, 6, 4


def _x(seed=0, shape=(N, T, D)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ------------------------------------------------------------ cells, one step
@pytest.mark.parametrize("name", ["SimpleRNNCell", "LSTMCell", "GRUCell"])
def test_cell_single_step_matches_keras(name):
    x = _x(1)[:, 0]
    kc, ac = getattr(keras.layers, name)(5), getattr(axone.layers, name)(5)
    n = 2 if name == "LSTMCell" else 1
    states = [_x(2 + i, (N, 5)) for i in range(n)]
    kc(torch.tensor(x), [torch.tensor(s) for s in states])
    ac(Tensor(x), [Tensor(s) for s in states])
    ws = random_weights(kc, 3)
    kc.set_weights(ws), ac.set_weights(ws)

    def flat(r):
        out, new = r
        return [out] + list(new)

    a = run_axone(lambda t, *s: flat(ac(t, list(s))), [x] + states, ac)
    k = run_keras(lambda t, *s: flat(kc(t, list(s))), [x] + states, kc)
    compare(a, k, f"{name} one step")


# ------------------------------------------------------------ the generic RNN wrapper
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
                                                    initializer="orthogonal", name="recurrent_kernel")

        def call(self, inputs, states):
            prev = states[0] if isinstance(states, (list, tuple)) else states
            out = lib.ops.tanh(lib.ops.matmul(inputs, self.kernel)
                               + lib.ops.matmul(prev, self.recurrent_kernel))
            return out, [out]
    return MinimalRNNCell


CASES = [(True, False, False), (False, True, False), (True, False, True), (True, True, True),
         (False, False, True)]   # return_sequences, go_backwards, mask


@pytest.mark.parametrize("rs,gb,masked", CASES,
                         ids=[f"seq{int(a)}-back{int(b)}-mask{int(c)}" for a, b, c in CASES])
def test_rnn_with_a_user_cell_matches_keras(rs, gb, masked):
    x = _x(4)
    mask = np.ones((N, T), bool)
    mask[0, 4:] = False
    mask[1, 1] = False
    kw = dict(return_sequences=rs, go_backwards=gb, return_state=True)
    kr = keras.layers.RNN(_minimal_cell(keras)(5), **kw)
    ar = axone.layers.RNN(_minimal_cell(axone)(5), **kw)
    kr(torch.tensor(x)), ar(Tensor(x))
    ws = random_weights(kr, 5)
    kr.set_weights(ws), ar.set_weights(ws)
    if masked:
        a = run_axone(lambda t: ar(t, mask=mask), [x], ar)
        k = run_keras(lambda t: kr(t, mask=torch.tensor(mask)), [x], kr)
    else:
        a = run_axone(lambda t: ar(t), [x], ar)
        k = run_keras(lambda t: kr(t), [x], kr)
    assert len(a[0]) == 2
    compare(a, k, f"RNN(MinimalRNNCell) {kw} mask={masked}")


@pytest.mark.parametrize("name", ["SimpleRNNCell", "LSTMCell", "GRUCell"])
def test_rnn_with_a_builtin_cell_matches_keras_and_the_layer(name):
    x = _x(6)
    kr = keras.layers.RNN(getattr(keras.layers, name)(5), return_sequences=True)
    ar = axone.layers.RNN(getattr(axone.layers, name)(5), return_sequences=True)
    kr(torch.tensor(x)), ar(Tensor(x))
    ws = random_weights(kr, 7)
    kr.set_weights(ws), ar.set_weights(ws)
    a = run_axone(lambda t: ar(t), [x], ar)
    compare(a, run_keras(lambda t: kr(t), [x], kr), f"RNN({name})")
    layer = {"SimpleRNNCell": axone.layers.SimpleRNN, "LSTMCell": axone.layers.LSTM,
             "GRUCell": axone.layers.GRU}[name](5, return_sequences=True)
    layer(Tensor(x)), layer.set_weights(ws)
    _close(a[0][0], layer(Tensor(x)).data, f"RNN({name}) vs its layer")


# ------------------------------------------------------------ encoder-decoder
def _seq2seq(lib, kind):
    rnn = {"lstm": lib.layers.LSTM, "gru": lib.layers.GRU}[kind]
    enc_in = lib.layers.Input((T, D))
    enc = rnn(5, return_state=True)(enc_in)
    states = enc[1:]
    dec_in = lib.layers.Input((T - 1, D))
    dec = rnn(5, return_sequences=True)(dec_in, initial_state=states)
    out = lib.layers.TimeDistributed(lib.layers.Dense(2))(dec)
    model = lib.Model([enc_in, dec_in], out)
    model.compile(loss="mse", optimizer=lib.optimizers.SGD(learning_rate=0.1))
    return model


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_encoder_decoder_with_initial_state_matches_keras(kind):
    xe, xd, y = _x(8), _x(9, (N, T - 1, D)), _x(10, (N, T - 1, 2))
    km, am = _seq2seq(keras, kind), _seq2seq(axone, kind)
    assert am.count_params() == km.count_params()
    ws = random_weights(km, 11)
    km.set_weights(ws), am.set_weights(ws)
    _close(am.predict([xe, xd], verbose=0), km.predict([xe, xd], verbose=0), f"{kind} seq2seq predict")
    km.train_on_batch([xe, xd], y), am.train_on_batch([xe, xd], y)
    for i, (a, k) in enumerate(zip(am.get_weights(), km.get_weights())):
        _close(a, k, f"{kind} seq2seq weight {i} after one SGD step (the encoder learns through "
                     f"the decoder's initial state)")
    assert not np.allclose(am.get_weights()[0], ws[0]), "the encoder's kernel did not move"


# ------------------------------------------------------------ counts, shapes, configs
def _stack(lib, which):
    L = lib.layers
    if which == "embedding":
        return lib.Sequential([L.Input((20,), dtype="int32"), L.Embedding(100, 8, mask_zero=True),
                               L.LSTM(16, return_sequences=True), L.GRU(4)])
    inner = {"lstm": L.LSTM(64), "gru": L.GRU(64), "gru_v1": L.GRU(64, reset_after=False),
             "simple": L.SimpleRNN(64),
             "bidi": L.Bidirectional(L.SimpleRNN(7, return_sequences=True)),
             "bidi_none": L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode=None)}[which]
    layers = [L.Input((50, 8)), inner]
    if which.startswith("bidi"):
        if which == "bidi":
            layers.append(L.TimeDistributed(L.Dense(1)))
    else:
        layers.append(L.Dense(1))
    return lib.Sequential(layers)


@pytest.mark.parametrize("which", ["lstm", "gru", "gru_v1", "simple", "bidi", "embedding"])
def test_parameter_counts_and_output_shapes_match_keras(which):
    km, am = _stack(keras, which), _stack(axone, which)
    assert am.count_params() == km.count_params(), f"{which}: {am.count_params()} vs {km.count_params()}"
    assert tuple(am.output_shape) == tuple(km.output_shape)
    for al, kl in zip(am.layers, km.layers):
        assert al.count_params() == kl.count_params(), f"{which}: layer {kl.name}"


@pytest.mark.parametrize("layer", [
    lambda L: L.LSTM(5, return_sequences=True, go_backwards=True, dropout=0.1, unit_forget_bias=False),
    lambda L: L.GRU(4, reset_after=False, recurrent_activation="hard_sigmoid"),
    lambda L: L.SimpleRNN(3, activation="relu", return_state=True),
    lambda L: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
    lambda L: L.TimeDistributed(L.Dense(3, activation="tanh")),
], ids=["lstm", "gru_v1", "simple", "bidirectional", "time_distributed"])
def test_config_round_trip(layer):
    x = _x(12)
    a = layer(axone.layers)
    out = a(Tensor(x))
    cfg = a.get_config()
    b = type(a).from_config(cfg)
    b(Tensor(x)), b.set_weights(a.get_weights())
    for o1, o2 in zip(out if isinstance(out, list) else [out], b(Tensor(x)) if isinstance(out, list)
                      else [b(Tensor(x))]):
        np.testing.assert_array_equal(o1.data, o2.data)
    assert b.get_config() == cfg
    # and Keras reads the same constructor arguments
    k = layer(keras.layers)
    for key in ("units", "return_sequences", "go_backwards", "reset_after", "merge_mode",
                "activation", "recurrent_activation", "dropout", "unit_forget_bias"):
        if key in cfg and key in k.get_config():
            assert cfg[key] == k.get_config()[key], f"config {key}: {cfg[key]} vs Keras {k.get_config()[key]}"


# ------------------------------------------------------------ dropout
@pytest.mark.parametrize("cls", [axone.layers.SimpleRNN, axone.layers.LSTM, axone.layers.GRU])
def test_dropout_only_in_training(cls):
    x = _x(13, (64, T, D))
    axone.utils.set_random_seed(0)
    layer = cls(5, dropout=0.4, recurrent_dropout=0.3)
    plain = cls(5)
    layer(Tensor(x)), plain(Tensor(x)), plain.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(Tensor(x)).data, plain(Tensor(x)).data)   # inference
    t1, t2 = layer(Tensor(x), training=True).data, layer(Tensor(x), training=True).data
    assert np.abs(t1 - plain(Tensor(x)).data).max() > 1e-2 and np.abs(t1 - t2).max() > 1e-2
    # input dropout is one mask per sample and feature, the same at every time step, scaled by
    # 1/(1 − rate) (Keras's semantics): the training output equals inference on x·mask/keep
    only_x = cls(5, dropout=0.5)
    only_x(Tensor(x)), only_x.set_weights(layer.get_weights())
    rng = axone.backend.rng()
    state = rng.bit_generator.state
    keep = rng.random((64, D)) < 0.5                     # the draw the layer makes (white box)
    rng.bit_generator.state = state
    y = only_x(Tensor(x), training=True).data
    np.testing.assert_allclose(y, only_x(Tensor(x * keep[:, None, :] / 0.5)).data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell,ra", [("simple", True), ("lstm", True), ("gru", True), ("gru", False)])
@pytest.mark.parametrize("backwards", [False, True])
def test_dropout_masks_bptt_finite_differences_float64(cell, ra, backwards):
    rng = np.random.default_rng(14)
    n, t, d, u = 2, 4, 3, 3
    G = {"simple": 1, "lstm": 4, "gru": 3}[cell] * u
    xm = (rng.random((n, d)) < 0.6) / 0.6
    rm = (rng.random((n, u)) < 0.6) / 0.6
    mask = np.array([[True, False, True, True], [True, True, True, False]])
    args = [rng.normal(size=(n, t, d)), rng.normal(scale=0.5, size=(d, G)),
            rng.normal(scale=0.5, size=(u, G)),
            rng.normal(size=(2, G) if cell == "gru" and ra else (G,)), rng.normal(size=(n, u))]
    if cell == "lstm":
        args.append(rng.normal(size=(n, u)))

    def fn(*a):
        hs, h, c = rnn_sequence(cell, a[0], a[1], a[2], a[3], a[4], a[5] if cell == "lstm" else None,
                                mask=mask, go_backwards=backwards, reset_after=ra,
                                input_dropout_mask=xm, recurrent_dropout_mask=rm)
        return hs if c is None else axone.ops.concatenate([hs, axone.ops.expand_dims(c, 1)], axis=1)

    r = check_gradients(fn, *args)
    assert r.max_error < 1e-7, f"{cell} reset_after={ra}: error {r.max_error} at {r.worst_input}"


# ------------------------------------------------------------ mask propagation out of wrappers
@pytest.mark.parametrize("merge", ["concat", None])
@pytest.mark.parametrize("return_state", [False, True])
def test_bidirectional_output_masks_match_keras(merge, return_state):
    """Each sequence output carries the input mask (merge_mode=None: both of them), states none."""
    ids = np.random.default_rng(15).integers(1, 9, size=(N, T))
    ids[0, 3:] = 0
    ids[1, :2] = 0
    kb = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True,
                                                      return_state=return_state), merge_mode=merge)
    ab = axone.layers.Bidirectional(axone.layers.LSTM(4, return_sequences=True,
                                                      return_state=return_state), merge_mode=merge)
    ko = kb(keras.layers.Embedding(10, 3, mask_zero=True)(torch.tensor(ids)))
    ao = ab(axone.layers.Embedding(10, 3, mask_zero=True)(ids))
    ko, ao = (list(o) if isinstance(o, (list, tuple)) else [o] for o in (ko, ao))
    assert len(ao) == len(ko)
    for i, (a, k) in enumerate(zip(ao, ko)):
        km = getattr(k, "_keras_mask", None)
        am = getattr(a, "_keras_mask", None)
        if km is None or i >= (2 if merge is None else 1):      # Keras: states carry no mask
            assert am is None, f"output {i}: axone attached a mask, Keras none"
        else:
            assert am is not None, f"output {i}: Keras's carries the mask, axone's none"
            np.testing.assert_array_equal(np.asarray(am), km.numpy(), err_msg=f"output {i} mask")


@pytest.mark.parametrize("cls", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("units", [0, -3, 2.5, True])
def test_bad_units_name_the_layer(cls, units):
    import axone
    with pytest.raises(ValueError, match=rf"^{cls}: units must be a positive integer, received"):
        getattr(axone.layers, cls)(units)
