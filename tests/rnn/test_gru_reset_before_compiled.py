"""The compiled step loops of the GRU with reset_after=False (gru_rb_forward_seq /
gru_rb_backward_seq) against the NumPy reference loop of ops/recurrent.py and Keras 3's
GRU(reset_after=False): outputs and every gradient, with masks, go_backwards, dropout masks,
batch shards and stateful layers; float64 finite differences through the compiled loop."""
import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

from axone import Tensor, layers, ops
from axone.ops import recurrent as R
from axone.utils import check_gradients


def _rng(seed):
    return np.random.default_rng(seed)


def _need():
    if R._seq_kernels() is None or R._compiled.kernels("gru_rb_forward_seq") is None:
        pytest.skip("needs the compiled GRU loops and NumPy's gemm handed over")


def _inputs(seed, n, t, d, u, dtype=np.float64, scale=0.5):
    rng = _rng(seed)
    arrs = [rng.normal(size=(n, t, d)), rng.normal(size=(d, 3 * u)) * scale,
            rng.normal(size=(u, 3 * u)) * scale, rng.normal(size=(3 * u,)) * scale,
            rng.normal(size=(n, u)) * scale]
    return [a.astype(dtype) for a in arrs]


def _variant(name, n, t, d, u, seed=3, dtype=np.float64):
    rng = _rng(seed)
    kw = {}
    if "mask" in name:
        m = rng.random((n, t)) > 0.35
        m[0] = False                                     # a row masked everywhere
        kw["mask"] = m
    if "backwards" in name:
        kw["go_backwards"] = True
    if "dropout" in name:
        kw["input_dropout_mask"] = ((rng.random((n, d)) > 0.25) / 0.75).astype(dtype)
        kw["recurrent_dropout_mask"] = ((rng.random((n, u)) > 0.25) / 0.75).astype(dtype)
    return kw


def _run(arrs, seed=5, **kw):
    ts = [Tensor(a.copy(), requires_grad=True) for a in arrs]
    hs, h, _ = R.rnn_sequence("gru", *ts, None, reset_after=False, **kw)
    w = _rng(seed).normal(size=hs.shape).astype(arrs[0].dtype)
    loss = ops.sum(hs * Tensor(w)) + ops.sum(h)
    loss.backward()
    return [hs.data, h.data] + [x.grad for x in ts]


@pytest.fixture
def calls(monkeypatch):
    """The cells whose forward ran the compiled reset_after=False loop."""
    seen = []
    real = R.RNNSequence._seq_forward
    monkeypatch.setattr(R.RNNSequence, "_seq_forward",
                        lambda self, *a: seen.append(not self.reset_after) or real(self, *a))
    return seen


VARIANTS = ["plain", "mask", "backwards", "dropout", "mask_backwards_dropout"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shards", [1, 3])
def test_compiled_loop_matches_the_numpy_loop_float64(variant, shards, monkeypatch, calls):
    """Outputs and every gradient (x, W, U, b, h0) of the C loop equal the NumPy loop's."""
    _need()
    monkeypatch.setattr(R, "_SHARD_MIN_ROWS", 1)
    monkeypatch.setattr(R, "_SHARD_MIN_WORK", 0)
    monkeypatch.setattr(R, "_shard_threads", lambda: shards)
    monkeypatch.setattr(R, "_blas_single", lambda: True)
    n, t, d, u = 7, 9, 4, 5
    arrs = _inputs(11, n, t, d, u)
    kw = _variant(variant, n, t, d, u)
    assert len(R._shard_bounds(n, t, u + d, 3 * u)) == shards
    got = _run(arrs, **kw)
    assert calls == [True]
    monkeypatch.setattr(R, "_SEQ_GRU_RESET_BEFORE", False)
    ref = _run(arrs, **kw)
    assert calls == [True]                               # the NumPy loop the second time
    assert len(got) == len(ref) == 7
    for a, b in zip(got, ref):
        assert a.shape == b.shape and a.dtype == b.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", ["plain", "mask_backwards_dropout"])
def test_compiled_loop_float32(variant, monkeypatch, calls):
    _need()
    n, t, d, u = 6, 12, 3, 8
    arrs = _inputs(12, n, t, d, u, dtype=np.float32)
    kw = _variant(variant, n, t, d, u, dtype=np.float32)
    got = _run(arrs, **kw)
    monkeypatch.setattr(R, "_SEQ_GRU_RESET_BEFORE", False)
    ref = _run(arrs, **kw)
    assert calls == [True]
    for a, b in zip(got, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_the_compiled_loop_runs_only_where_it_applies(monkeypatch, calls):
    _need()
    arrs = _inputs(13, 3, 4, 2, 3)
    _run(arrs)
    _run(arrs, recurrent_activation="hard_sigmoid")     # not sigmoid: the NumPy loop
    _run(arrs, activation="relu")
    monkeypatch.setattr(R, "_SEQ_GRU_RESET_BEFORE", False)
    _run(arrs)
    assert calls == [True]


def test_finite_differences_through_the_compiled_loop(calls):
    """float64 central differences of every input, with a mask, go_backwards and both dropout
    masks, through the C loop."""
    _need()
    n, t, d, u = 2, 4, 3, 3
    rng = _rng(14)
    xm = (rng.random((n, d)) < 0.6) / 0.6
    rm = (rng.random((n, u)) < 0.6) / 0.6
    mask = np.array([[True, False, True, True], [True, True, True, False]])
    args = _inputs(15, n, t, d, u)

    def fn(*a):
        hs, _, _ = R.rnn_sequence("gru", *a, None, mask=mask, go_backwards=True,
                                  reset_after=False, input_dropout_mask=xm,
                                  recurrent_dropout_mask=rm)
        return hs

    r = check_gradients(fn, *args)
    assert calls and all(calls)
    assert r.max_error < 1e-7, f"error {r.max_error} at {r.worst_input}"


def test_shards_are_deterministic(monkeypatch):
    _need()
    monkeypatch.setattr(R, "_SHARD_MIN_WORK", 0)
    monkeypatch.setattr(R, "_shard_threads", lambda: 2)
    monkeypatch.setattr(R, "_blas_single", lambda: True)
    arrs = _inputs(16, 40, 7, 3, 6, dtype=np.float32)
    a, b = _run(arrs), _run(arrs)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------ against Keras 3
def _twin(x, seed, **kw):
    kl = keras.layers.GRU(6, reset_after=False, **kw)
    kl(torch.tensor(x))
    rng = _rng(seed)
    ws = [rng.normal(scale=0.4, size=w.shape).astype(np.float32) for w in kl.get_weights()]
    kl.set_weights(ws)
    al = layers.GRU(6, reset_after=False, **kw)
    al(Tensor(x))
    al.set_weights(ws)
    return kl, al


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_layer_matches_keras(go_backwards, masked, calls):
    """GRU(reset_after=False) on the compiled loop against Keras 3 (same weights, inputs and
    upstream gradient): the sequence output, the final state, and the gradients of x and of
    kernel, recurrent_kernel and bias."""
    _need()
    n, t, d = 5, 8, 4
    x = _rng(17).normal(size=(n, t, d)).astype(np.float32)
    mask = None
    if masked:
        mask = _rng(18).random((n, t)) > 0.3
        mask[:, 0] = True                               # Keras starts each row from step 0
    kw = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    kl, al = _twin(x, 19, **kw)
    g = [_rng(20).normal(size=(n, t, 6)).astype(np.float32),
         _rng(21).normal(size=(n, 6)).astype(np.float32)]

    tx = torch.tensor(x, requires_grad=True)
    kout = kl(tx, mask=None if mask is None else torch.tensor(mask))
    sum((o * torch.tensor(gi)).sum() for o, gi in zip(kout, g)).backward()
    kgrads = [tx.grad.numpy()] + [w.value.grad.numpy() for w in kl.trainable_weights]

    ax = Tensor(x, requires_grad=True)
    calls.clear()
    aout = al(ax, mask=None if mask is None else Tensor(mask))
    assert calls == [True]
    (ops.sum(aout[0] * Tensor(g[0])) + ops.sum(aout[1] * Tensor(g[1]))).backward()
    agrads = [ax.grad] + [w.grad for w in al.trainable_weights]
    for a, k in zip(aout, kout):
        np.testing.assert_allclose(a.data, k.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert len(agrads) == len(kgrads) == 4
    for a, k in zip(agrads, kgrads):
        scale = max(1.0, float(np.abs(k).max()))
        np.testing.assert_allclose(a, k, rtol=1e-4, atol=1e-5 * scale)


def test_stateful_layer_matches_the_numpy_loop(monkeypatch, calls):
    """A stateful layer carries its state from call to call on either path; the weight
    gradients of the second call agree."""
    _need()
    from axone.utils import set_random_seed

    def two_calls():
        set_random_seed(7)
        layer = layers.GRU(5, stateful=True, return_sequences=True, reset_after=False)
        x = _rng(8).normal(size=(3, 6, 4)).astype(np.float32)
        first = layer(Tensor(x)).data
        out = layer(Tensor(x[:, ::-1].copy()))
        ops.sum(out * out).backward()
        return [first, out.data] + [w.grad for w in layer.trainable_weights]

    got = two_calls()
    assert calls == [True, True]
    monkeypatch.setattr(R, "_SEQ_GRU_RESET_BEFORE", False)
    ref = two_calls()
    assert calls == [True, True]
    assert len(got) == 5
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_entry_points_check_their_arrays():
    _need()
    k = R._seq_kernels()
    T, N, u = 3, 2, 2
    H = np.zeros((T + 1, N, u))
    XP, S, RH, U = np.zeros((T, N, 3 * u)), np.zeros((N, 3 * u)), np.zeros((T, N, u)), np.zeros((u, 3 * u))
    with pytest.raises(ValueError, match="gru_rb_forward_seq: S has size"):
        k.gru_rb_forward_seq(XP, np.zeros((N, 2 * u)), RH, H, None, None, None, U)
    with pytest.raises(ValueError, match="rm and HR"):
        k.gru_rb_forward_seq(XP, S, RH, H, None, np.ones((N, u)), None, U)
    with pytest.raises(TypeError, match="U must be a float64"):
        k.gru_rb_forward_seq(XP, S, RH, H, None, None, None, U.astype(np.float32))
    with pytest.raises(ValueError, match="share memory"):
        k.gru_rb_backward_seq(XP, H, None, np.zeros((T, N, 3 * u)), H[0], np.zeros((2, N, u)),
                              None, np.zeros(T, np.uint8), None, None, U)
