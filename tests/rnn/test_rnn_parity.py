"""Recurrent layers against Keras 3 (PyTorch backend) and PyTorch's nn.RNN / nn.LSTM / nn.GRU.

Every comparison uses the same weights (Keras's, copied with ``set_weights``; mapped to
PyTorch's layout for nn modules), the same inputs and the same random upstream gradient for
every output, and compares the outputs, the final states and the gradients with respect to the
inputs (and initial states) and to every trainable weight.  Keras's gradients come from torch
autograd (its layers called eagerly on torch tensors).

PyTorch layout (``batch_first=True``):
  * LSTM: gates i, f, g, o = Keras i, f, c, o; weight_ih = kernelᵀ, weight_hh = recurrent_kernelᵀ,
    bias_ih = Keras bias, bias_hh = 0.
  * GRU: gates r, z, n against Keras z, r, h; PyTorch's GRU is Keras's ``reset_after=True``
    (b_hn inside r·(…)), so bias_ih = bias[0], bias_hh = bias[1] (gate-reordered);
    ``reset_after=False`` has no PyTorch counterpart and is compared with Keras only.
  * RNN (tanh): weight_ih = kernelᵀ, weight_hh = recurrent_kernelᵀ, bias_ih = bias, bias_hh = 0.
  * ``go_backwards``: PyTorch runs on the time-reversed input; its outputs are then in
    processing order, as Keras returns them.

The last part checks backpropagation through time in float64 against central finite
differences (``axone.utils.check_gradients``) through the layers themselves.
"""
import itertools

import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import Tensor
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "the Keras parity tests need KERAS_BACKEND=torch"

RTOL, ATOL = 1e-4, 1e-5
N, T, D, U = 4, 7, 5, 6

KINDS = ["simple", "lstm", "gru", "gru_v1"]   # gru_v1: reset_after=False
_KERAS = {"simple": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU,
          "gru_v1": keras.layers.GRU}
_AXONE = {"simple": axone.layers.SimpleRNN, "lstm": axone.layers.LSTM, "gru": axone.layers.GRU,
          "gru_v1": axone.layers.GRU}
_NSTATES = {"simple": 1, "lstm": 2, "gru": 1, "gru_v1": 1}


def _extra(kind):
    return {"reset_after": False} if kind == "gru_v1" else {}


def _rng(seed):
    return np.random.default_rng(seed)


def _np(t):
    return t.detach().cpu().numpy()


def _close(actual, expected, what):
    assert actual is not None, f"{what}: axone gave no value/gradient"
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    # float32 sums over batch and time: the absolute tolerance scales with the magnitude compared
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def _flat(o):
    return list(o) if isinstance(o, (list, tuple)) else [o]


def _upstream(outs, seed):
    rng = _rng(seed)
    return [rng.normal(size=tuple(o.shape)).astype(np.float32) for o in outs]


# ------------------------------------------------------------ generic forward + backward
def run_keras(call, arrays, weights_of, seed=123):
    """``call(*tensors)`` on torch tensors (float arrays require a gradient); returns outputs,
    input gradients and the gradients of ``weights_of``'s trainable weights."""
    ts = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    outs = _flat(call(*ts))
    gs = _upstream(outs, seed)
    sum((o * torch.tensor(g)).sum() for o, g in zip(outs, gs)).backward()
    wg = [_np(w.value.grad) for w in weights_of.trainable_weights]
    return [_np(o) for o in outs], [_np(t.grad) if t.requires_grad else None for t in ts], wg


def run_axone(call, arrays, weights_of, seed=123):
    ts = [Tensor(a, requires_grad=True) if a.dtype.kind == "f" else a for a in arrays]
    for w in weights_of.trainable_weights:
        w.grad = None
    outs = _flat(call(*ts))
    gs = _upstream(outs, seed)
    total = None
    for o, g in zip(outs, gs):
        assert isinstance(o, Tensor), f"axone returned {type(o).__name__}, not a Tensor"
        assert o.dtype == np.float32, f"axone output dtype {o.dtype}"
        term = (o * Tensor(g)).sum()
        total = term if total is None else total + term
    total.backward()
    wg = [w.grad for w in weights_of.trainable_weights]
    return ([o.data for o in outs], [t.grad if isinstance(t, Tensor) else None for t in ts], wg)


def compare(a, k, what):
    (ao, agx, agw), (ko, kgx, kgw) = a, k
    assert len(ao) == len(ko), f"{what}: {len(ao)} outputs vs {len(ko)}"
    for i, (x, y) in enumerate(zip(ao, ko)):
        _close(x, y, f"{what}: output {i}")
    for i, (x, y) in enumerate(zip(agx, kgx)):
        if y is not None:
            _close(x, y, f"{what}: d/d input {i}")
    assert len(agw) == len(kgw), f"{what}: {len(agw)} weight gradients vs {len(kgw)}"
    for i, (x, y) in enumerate(zip(agw, kgw)):
        _close(x, y, f"{what}: d/d weight {i}")


def random_weights(layer, seed, scale=0.4):
    rng = _rng(seed)
    return [rng.normal(scale=scale, size=w.shape).astype(np.float32) for w in layer.get_weights()]


def twin(kind, x, seed=0, **kw):
    """A Keras layer and an axone layer with the same (random, non-trivial) weights."""
    kl = _KERAS[kind](U, **_extra(kind), **kw)
    kl(torch.tensor(x))
    ws = random_weights(kl, seed)
    kl.set_weights(ws)
    al = _AXONE[kind](U, **_extra(kind), **kw)
    al(Tensor(x))
    assert [w.shape for w in al.get_weights()] == [w.shape for w in ws], \
        f"{kind}: axone weight shapes {[w.shape for w in al.get_weights()]} vs Keras"
    al.set_weights(ws)
    return kl, al, ws


# ------------------------------------------------------------ PyTorch reference
def _gru_rows(a):
    """Keras (z, r, h) blocks → PyTorch (r, z, n) blocks along axis 0 (and back: same swap)."""
    u = a.shape[0] // 3
    return np.concatenate([a[u:2 * u], a[:u], a[2 * u:]], axis=0)


class TorchRef:
    """nn.RNN / nn.LSTM / nn.GRU holding a Keras layer's weights."""

    def __init__(self, kind, ws, input_dim):
        self.kind = kind
        cls = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        self.m = cls(input_dim, U, batch_first=True)
        k, rk, b = ws
        if kind == "gru":
            wih, whh = _gru_rows(k.T), _gru_rows(rk.T)
            bih, bhh = _gru_rows(b[0]), _gru_rows(b[1])
        else:
            wih, whh, bih, bhh = k.T, rk.T, b, np.zeros_like(b)
        with torch.no_grad():
            for name, v in (("weight_ih_l0", wih), ("weight_hh_l0", whh), ("bias_ih_l0", bih),
                            ("bias_hh_l0", bhh)):
                getattr(self.m, name).copy_(torch.tensor(np.ascontiguousarray(v)))

    def weight_grads(self):
        g = {n: _np(p.grad) for n, p in self.m.named_parameters()}
        if self.kind == "gru":
            return [_gru_rows(g["weight_ih_l0"]).T, _gru_rows(g["weight_hh_l0"]).T,
                    np.stack([_gru_rows(g["bias_ih_l0"]), _gru_rows(g["bias_hh_l0"])])]
        return [g["weight_ih_l0"].T, g["weight_hh_l0"].T, g["bias_ih_l0"]]

    def run(self, arrays, return_sequences, return_state, go_backwards, seed=123):
        """arrays: x, then optional initial states; same output structure as Keras."""
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        x = ts[0].flip(1) if go_backwards else ts[0]
        init = None
        if len(ts) > 1:
            init = tuple(s[None] for s in ts[1:])
            init = init if self.kind == "lstm" else init[0]
        seq, st = self.m(x, init)
        states = [st[0][0], st[1][0]] if self.kind == "lstm" else [st[0]]
        out = seq if return_sequences else states[0]
        outs = [out] + states if return_state else [out]
        gs = _upstream(outs, seed)
        sum((o * torch.tensor(g)).sum() for o, g in zip(outs, gs)).backward()
        return [_np(o) for o in outs], [_np(t.grad) for t in ts], self.weight_grads()


# ------------------------------------------------------------ 1. the layers, every flag
FLAGS = list(itertools.product([False, True], repeat=3))  # return_sequences, return_state, go_backwards


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rs,rst,gb", FLAGS, ids=[f"seq{int(a)}-state{int(b)}-back{int(c)}"
                                                   for a, b, c in FLAGS])
def test_layer_matches_keras_and_torch(kind, rs, rst, gb):
    x = _rng(1).normal(size=(N, T, D)).astype(np.float32)
    kw = dict(return_sequences=rs, return_state=rst, go_backwards=gb)
    kl, al, ws = twin(kind, x, seed=2, **kw)
    what = f"{kind} {kw}"
    a = run_axone(lambda t: al(t), [x], al)
    k = run_keras(lambda t: kl(t), [x], kl)
    n_out = 1 + (_NSTATES[kind] if rst else 0)
    assert len(a[0]) == n_out, f"{what}: {len(a[0])} outputs, expected {n_out}"
    compare(a, k, what + " vs Keras")
    if kind != "gru_v1":
        ref = TorchRef(kind, ws, D).run([x], rs, rst, gb)
        compare(a, ref, what + " vs PyTorch")


def test_gru_reset_after_false_differs_from_true():
    """The two GRU conventions really are different functions (so comparing each is meaningful)."""
    x = _rng(3).normal(size=(N, T, D)).astype(np.float32)
    a = axone.layers.GRU(U, reset_after=True)
    b = axone.layers.GRU(U, reset_after=False)
    a(Tensor(x)), b(Tensor(x))
    ws = random_weights(a, 4)
    a.set_weights(ws)
    b.set_weights([ws[0], ws[1], ws[2][0] + ws[2][1]])
    assert np.abs(a(Tensor(x)).data - b(Tensor(x)).data).max() > 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_activations_and_no_bias_match_keras(kind):
    """Non-default activations (relu / hard_sigmoid) and use_bias=False."""
    x = _rng(5).normal(size=(N, T, D)).astype(np.float32)
    kw = dict(activation="relu", use_bias=False, return_sequences=True)
    if kind != "simple":
        kw["recurrent_activation"] = "hard_sigmoid"
    kl, al, _ = twin(kind, x, seed=6, **kw)
    compare(run_axone(lambda t: al(t), [x], al), run_keras(lambda t: kl(t), [x], kl), f"{kind} {kw}")


# ------------------------------------------------------------ 2. initial_state at call time
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rs", [False, True])
def test_initial_state_matches_keras_and_torch(kind, rs):
    rng = _rng(7)
    x = rng.normal(size=(N, T, D)).astype(np.float32)
    states = [rng.normal(size=(N, U)).astype(np.float32) for _ in range(_NSTATES[kind])]
    kl, al, ws = twin(kind, x, seed=8, return_sequences=rs, return_state=True)
    a = run_axone(lambda t, *s: al(t, initial_state=list(s)), [x] + states, al)
    k = run_keras(lambda t, *s: kl(t, initial_state=list(s)), [x] + states, kl)
    compare(a, k, f"{kind} initial_state vs Keras")
    for i, g in enumerate(a[1]):
        assert g is not None and np.abs(g).max() > 0, f"{kind}: no gradient for input/state {i}"
    if kind != "gru_v1":
        compare(a, TorchRef(kind, ws, D).run([x] + states, rs, True, False),
                f"{kind} initial_state vs PyTorch")


# ------------------------------------------------------------ 3. masking
def _ids(seed, pattern):
    rng = _rng(seed)
    ids = rng.integers(1, 12, size=(N, T))
    if pattern == "post":           # right padding, different lengths
        for i, n in enumerate([T, 5, 3, 1]):
            ids[i, n:] = 0
    elif pattern == "pre":          # left padding
        for i, n in enumerate([T, 4, 2, 6]):
            ids[i, :T - n] = 0
    else:                           # holes anywhere, and one row fully masked
        ids[rng.random((N, T)) < 0.35] = 0
        ids[3] = 0
    return ids


MASK_CASES = [("post", False, False), ("pre", True, False), ("holes", True, False),
              ("post", True, True), ("holes", False, True)]   # pattern, return_sequences, go_backwards


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pattern,rs,gb", MASK_CASES,
                         ids=[f"{p}-seq{int(r)}-back{int(g)}" for p, r, g in MASK_CASES])
def test_embedding_mask_zero_matches_keras(kind, pattern, rs, gb):
    ids = _ids(9, pattern)
    kemb = keras.layers.Embedding(12, D, mask_zero=True)
    aemb = axone.layers.Embedding(12, D, mask_zero=True)
    e = kemb(torch.tensor(ids))
    kl = _KERAS[kind](U, return_sequences=rs, return_state=True, go_backwards=gb, **_extra(kind))
    al = _AXONE[kind](U, return_sequences=rs, return_state=True, go_backwards=gb, **_extra(kind))
    kl(e)
    al(aemb(ids))
    ew = random_weights(kemb, 10, scale=1.0)
    ws = random_weights(kl, 11)
    kemb.set_weights(ew), aemb.set_weights(ew), kl.set_weights(ws), al.set_weights(ws)
    kmodel, amodel = keras.Sequential([kemb, kl]), _Pair(aemb, al)
    what = f"{kind} mask={pattern} return_sequences={rs} go_backwards={gb}"
    a = run_axone(lambda i: al(aemb(i)), [ids], amodel)
    k = run_keras(lambda i: kl(kemb(i)), [ids], kmodel)
    compare(a, k, what)
    # the mask really acts: a fully masked row keeps the zero initial state
    if pattern == "holes":
        np.testing.assert_array_equal(a[0][1][3], 0.0, err_msg=f"{what}: masked row's state")


class _Pair:
    """Two axone layers seen as one for their trainable weights (Keras Sequential order)."""

    def __init__(self, *layers):
        self.layers = layers

    @property
    def trainable_weights(self):
        return [w for l in self.layers for w in l.trainable_weights]


@pytest.mark.parametrize("kind", KINDS)
def test_masking_layer_matches_keras(kind):
    rng = _rng(12)
    x = rng.normal(size=(N, T, D)).astype(np.float32)
    x[0, 5:] = 0.0
    x[1, :2] = 0.0
    x[2, 3] = 0.0
    x[3, 1, 0] = 0.0   # one zero feature only: not masked
    km, am = keras.layers.Masking(0.0), axone.layers.Masking(0.0)
    kl, al, _ = twin(kind, x, seed=13, return_sequences=True, return_state=True)
    a = run_axone(lambda t: al(am(t)), [x], al)
    k = run_keras(lambda t: kl(km(t)), [x], kl)
    compare(a, k, f"{kind} Masking")
    # masked step 3 of row 2 (return_sequences): the output repeats step 2's
    np.testing.assert_array_equal(a[0][0][2, 3], a[0][0][2, 2])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_zero_output_for_mask_matches_keras(kind):
    ids = _ids(14, "holes")
    kemb = keras.layers.Embedding(12, D, mask_zero=True)
    aemb = axone.layers.Embedding(12, D, mask_zero=True)
    kl = _KERAS[kind](U, return_sequences=True, zero_output_for_mask=True)
    al = _AXONE[kind](U, return_sequences=True, zero_output_for_mask=True)
    kl(kemb(torch.tensor(ids))), al(aemb(ids))
    ew, ws = random_weights(kemb, 15, 1.0), random_weights(kl, 16)
    kemb.set_weights(ew), aemb.set_weights(ew), kl.set_weights(ws), al.set_weights(ws)
    a = run_axone(lambda i: al(aemb(i)), [ids], _Pair(aemb, al))
    k = run_keras(lambda i: kl(kemb(i)), [ids], keras.Sequential([kemb, kl]))
    compare(a, k, f"{kind} zero_output_for_mask")
    assert np.all(a[0][0][ids == 0] == 0)


def test_mask_propagates_and_masked_loss_matches_keras():
    """Embedding(mask_zero) → LSTM(return_sequences) → TimeDistributed(Dense): the mask reaches
    the loss (padded steps do not count), and evaluate / one SGD train_on_batch equal Keras's."""
    ids = _ids(17, "post")
    y = _rng(18).normal(size=(N, T, 1)).astype(np.float32)

    def build(lib):
        m = lib.Sequential([lib.layers.Input((T,), dtype="int32"),
                            lib.layers.Embedding(12, D, mask_zero=True),
                            lib.layers.LSTM(U, return_sequences=True),
                            lib.layers.TimeDistributed(lib.layers.Dense(1))])
        m.compile(loss="mse", optimizer=lib.optimizers.SGD(learning_rate=0.1))
        return m

    km, am = build(keras), build(axone)
    ws = random_weights(km, 19)
    km.set_weights(ws), am.set_weights(ws)
    kl = km.evaluate(ids, y, verbose=0)
    al = am.evaluate(ids, y, verbose=0)
    np.testing.assert_allclose(al, kl, rtol=RTOL, err_msg="masked evaluate loss")
    # by hand: the mean over the unmasked steps only
    p = am.predict(ids, verbose=0)
    m = ids != 0
    np.testing.assert_allclose(al, ((p - y)[m] ** 2).mean(), rtol=RTOL)
    assert abs(al - ((p - y) ** 2).mean()) > 1e-3, "padded steps seem to count in the loss"
    km.train_on_batch(ids, y), am.train_on_batch(ids, y)
    for i, (a, k) in enumerate(zip(am.get_weights(), km.get_weights())):
        _close(a, k, f"weight {i} after one masked SGD step")


# ------------------------------------------------------------ 4. Bidirectional
MERGES = ["concat", "sum", "mul", "ave", None]


@pytest.mark.parametrize("merge", MERGES)
@pytest.mark.parametrize("rs", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_matches_keras(kind, merge, rs):
    x = _rng(20).normal(size=(N, T, D)).astype(np.float32)
    kb = keras.layers.Bidirectional(_KERAS[kind](U, return_sequences=rs), merge_mode=merge)
    ab = axone.layers.Bidirectional(_AXONE[kind](U, return_sequences=rs), merge_mode=merge)
    kb(torch.tensor(x)), ab(Tensor(x))
    ws = random_weights(kb, 21)
    kb.set_weights(ws), ab.set_weights(ws)
    a = run_axone(lambda t: ab(t), [x], ab)
    k = run_keras(lambda t: kb(t), [x], kb)
    compare(a, k, f"Bidirectional({kind}) merge_mode={merge} return_sequences={rs}")
    assert len(a[2]) == 6


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru_v1"])
def test_bidirectional_return_state_and_mask_match_keras(kind):
    ids = _ids(22, "post")
    kemb = keras.layers.Embedding(12, D, mask_zero=True)
    aemb = axone.layers.Embedding(12, D, mask_zero=True)
    kb = keras.layers.Bidirectional(_KERAS[kind](U, return_sequences=True, return_state=True,
                                                 **_extra(kind)))
    ab = axone.layers.Bidirectional(_AXONE[kind](U, return_sequences=True, return_state=True,
                                                 **_extra(kind)))
    kb(kemb(torch.tensor(ids))), ab(aemb(ids))
    ew, ws = random_weights(kemb, 23, 1.0), random_weights(kb, 24)
    kemb.set_weights(ew), aemb.set_weights(ew), kb.set_weights(ws), ab.set_weights(ws)
    a = run_axone(lambda i: ab(aemb(i)), [ids], _Pair(aemb, ab))
    k = run_keras(lambda i: kb(kemb(i)), [ids], keras.Sequential([kemb, kb]))
    assert len(a[0]) == 1 + 2 * _NSTATES[kind]
    compare(a, k, f"Bidirectional({kind}) return_state + mask")


# ------------------------------------------------------------ 5. TimeDistributed
@pytest.mark.parametrize("act", ["linear", "tanh", "softmax"])
def test_time_distributed_dense_matches_keras(act):
    x = _rng(25).normal(size=(N, T, D)).astype(np.float32)
    kt = keras.layers.TimeDistributed(keras.layers.Dense(3, activation=act))
    at = axone.layers.TimeDistributed(axone.layers.Dense(3, activation=act))
    kt(torch.tensor(x)), at(Tensor(x))
    ws = random_weights(kt, 26)
    kt.set_weights(ws), at.set_weights(ws)
    a = run_axone(lambda t: at(t), [x], at)
    assert a[0][0].shape == (N, T, 3)
    compare(a, run_keras(lambda t: kt(t), [x], kt), f"TimeDistributed(Dense(3, {act}))")


def test_lstm_then_time_distributed_matches_keras():
    x = _rng(27).normal(size=(N, T, D)).astype(np.float32)

    def build(lib):
        return lib.Sequential([lib.layers.Input((T, D)),
                               lib.layers.GRU(U, return_sequences=True),
                               lib.layers.LSTM(U, return_sequences=True, go_backwards=True),
                               lib.layers.TimeDistributed(lib.layers.Dense(2))])

    km, am = build(keras), build(axone)
    ws = random_weights(km, 28)
    km.set_weights(ws), am.set_weights(ws)
    compare(run_axone(lambda t: am(t), [x], am), run_keras(lambda t: km(t), [x], km),
            "GRU → LSTM(go_backwards) → TimeDistributed(Dense)")


# ------------------------------------------------------------ 6. stateful
@pytest.mark.parametrize("kind", KINDS)
def test_stateful_carry_over_matches_keras(kind):
    rng = _rng(29)
    x1, x2 = (rng.normal(size=(N, T, D)).astype(np.float32) for _ in range(2))
    kl, al, ws = twin(kind, x1, seed=30, stateful=True, return_sequences=True)
    kl.reset_states(), al.reset_states()
    with torch.no_grad():
        _close(al(Tensor(x1)).data, _np(kl(torch.tensor(x1))), f"{kind} stateful: first call")
    carried = [_np(s.value).copy() for s in kl.states]   # Keras updates them in place
    assert al.states is not None and len(al.states) == len(carried)
    for i, (a, k) in enumerate(zip(al.states, carried)):
        _close(a, k, f"{kind} stateful: state {i} kept after the first call")
    # the second call starts from the first call's final states
    a = run_axone(lambda t: al(t), [x2], al)
    with torch.no_grad():
        _close(a[0][0], _np(kl(torch.tensor(x2))), f"{kind} stateful: second call")
    # gradients: Keras's stateful layer updates its state variables in place, which breaks torch
    # autograd, so they come from a non-stateful Keras twin started from the carried states
    k2 = _KERAS[kind](U, return_sequences=True, **_extra(kind))
    k2(torch.tensor(x2)), k2.set_weights(ws)
    k = run_keras(lambda t: k2(t, initial_state=[torch.tensor(c) for c in carried]), [x2], k2)
    compare(a, k, f"{kind} stateful: second call with gradients")
    fresh = _AXONE[kind](U, return_sequences=True, **_extra(kind))
    fresh(Tensor(x2)), fresh.set_weights(ws)
    assert np.abs(fresh(Tensor(x2)).data - a[0][0]).max() > 1e-3, "the state was not carried"
    # reset_states: back to zero states, as Keras
    kl.reset_states(), al.reset_states()
    with torch.no_grad():
        after = al(Tensor(x2)).data
        _close(after, _np(kl(torch.tensor(x2))), f"{kind} stateful: after reset_states")
        _close(after, fresh(Tensor(x2)).data, f"{kind} stateful: after reset_states vs fresh")
        # and the carry goes on: a further call (x1 after x2) still agrees
        _close(al(Tensor(x1)).data, _np(kl(torch.tensor(x1))), f"{kind} stateful: third call")


# ------------------------------------------------------------ 7. float64 BPTT vs finite differences
def _fd_layer(kind, **kw):
    layer = _AXONE[kind](3, dtype="float64", **_extra(kind), **kw)
    layer(Tensor(np.zeros((2, 4, 3))))
    return layer


def _with_weights(layer, ws):
    cell = layer.cell
    cell.kernel, cell.recurrent_kernel, cell.bias = ws


def _cat(outs):
    outs = _flat(outs)
    flat = [axone.ops.reshape(o, (o.shape[0], -1)) for o in outs]
    return axone.ops.concatenate(flat, axis=1) if len(flat) > 1 else flat[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["plain", "backwards", "mask", "initial_state"])
def test_bptt_finite_differences_float64(kind, case):
    rng = _rng(31)
    x = rng.normal(size=(2, 4, 3))
    kw = dict(return_sequences=True, return_state=True, go_backwards=case == "backwards")
    layer = _fd_layer(kind, **kw)
    ws = [rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()]
    states = [rng.normal(size=(2, 3)) for _ in range(_NSTATES[kind])]
    mask = np.array([[True, True, False, True], [True, False, False, True]])
    original = (layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias)

    def fn(x, k, rk, b, *s):
        _with_weights(layer, (k, rk, b))
        call_kw = {}
        if case == "mask":
            call_kw["mask"] = mask
        if case == "initial_state":
            call_kw["initial_state"] = list(s)
        out = _flat(layer(x, **call_kw))
        assert all(o.dtype == np.float64 for o in out)
        return _cat(out)

    try:
        extra = states if case == "initial_state" else []
        r = check_gradients(fn, x, *ws, *extra,
                            names=["x", "kernel", "recurrent_kernel", "bias"] +
                                  [f"state{i}" for i in range(len(extra))])
    finally:
        _with_weights(layer, original)
    assert r.max_error < 1e-7, f"{kind} {case}: BPTT error {r.max_error} at {r.worst_input}"
    assert all(g is not None and np.abs(g).max() > 0 for g in r.analytic), "a zero gradient"


@pytest.mark.parametrize("merge", ["concat", "mul"])
def test_bidirectional_finite_differences_float64(merge):
    rng = _rng(32)
    x = rng.normal(size=(2, 4, 3))
    layer = axone.layers.Bidirectional(axone.layers.GRU(3, return_sequences=True, dtype="float64"),
                                       merge_mode=merge, dtype="float64")
    layer(Tensor(x))
    ws = [rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()]
    layer.set_weights(ws)
    mask = np.array([[True, True, True, False], [True, False, True, True]])
    r = check_gradients(lambda t: layer(t, mask=mask), x)
    assert r.max_error < 1e-7, f"Bidirectional {merge}: error {r.max_error}"


def test_finite_difference_check_detects_a_wrong_gradient(monkeypatch):
    """The float64 check can fail: a BPTT that drops the recurrent path's gradient is caught."""
    from axone.ops import recurrent as R
    orig = R.RNNSequence.backward

    def broken(self, gout):
        res = list(orig(self, gout))
        res[2] = res[2] * 0.5          # halve dL/dU
        return tuple(res)

    monkeypatch.setattr(R.RNNSequence, "backward", broken)
    layer = _fd_layer("lstm", return_sequences=True)
    x = _rng(33).normal(size=(2, 4, 3))
    rk = layer.cell.recurrent_kernel
    r = check_gradients(lambda t, u: (_with_weights(layer, (layer.cell.kernel, u, layer.cell.bias)),
                                      layer(t))[1], x, rk.data.copy())
    _with_weights(layer, (layer.cell.kernel, rk, layer.cell.bias))
    assert r.max_error > 1e-3 and r.worst_input == "x1"


# ------------------------------------------------------------ 8. default initialization
@pytest.mark.parametrize("kind", KINDS)
def test_default_weights_are_initialized_like_keras(kind):
    """Same weight names and shapes, the same bias (LSTM forget gate at 1: unit_forget_bias),
    Glorot-uniform kernel and an orthogonal recurrent kernel (rows orthonormal)."""
    x = np.zeros((2, 3, D), np.float32)
    kl, al = _KERAS[kind](U, **_extra(kind)), _AXONE[kind](U, **_extra(kind))
    kl(torch.tensor(x)), al(Tensor(x))
    assert [w.path.split("/")[-1] for w in al.weights] == [w.path.split("/")[-1] for w in kl.weights]
    (ak, ar, ab), (kk, kr, kb) = al.get_weights(), kl.get_weights()
    assert ak.shape == kk.shape and ar.shape == kr.shape
    np.testing.assert_array_equal(ab, kb, err_msg=f"{kind}: default bias")
    if kind == "lstm":
        assert np.all(ab[U:2 * U] == 1) and np.all(ab[:U] == 0)
    limit = np.sqrt(6 / sum(ak.shape))
    assert np.abs(ak).max() <= limit and np.abs(ak).max() > 0.5 * limit, "kernel: not Glorot-uniform"
    np.testing.assert_allclose(ar @ ar.T, np.eye(U), atol=1e-5, err_msg="recurrent kernel: not orthogonal")
