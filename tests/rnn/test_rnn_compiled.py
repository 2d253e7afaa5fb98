"""The compiled recurrent sequence loops against the NumPy reference loop, and the BLAS-thread
policy of the compiled LSTM."""
import numpy as np
import pytest

from axone import Tensor, backend, ops
from axone.ops import recurrent as R


def _rng(seed):
    return np.random.default_rng(seed)


def _inputs(seed, cell, n, t, d, u, dtype=np.float64, scale=0.5):
    rng = _rng(seed)
    g = {"lstm": 4, "gru": 3, "simple": 1}[cell]
    arrs = [rng.normal(size=(n, t, d)), rng.normal(size=(d, g * u)) * scale,
            rng.normal(size=(u, g * u)) * scale,
            rng.normal(size=(2, g * u) if cell == "gru" else (g * u,)) * scale,
            rng.normal(size=(n, u)) * scale]
    if cell == "lstm":
        arrs.append(rng.normal(size=(n, u)) * scale)
    return [a.astype(dtype) for a in arrs]


def _run(cell, arrs, seed=5, **kw):
    ts = [Tensor(a.copy(), requires_grad=True) for a in arrs]
    c0 = ts[5] if cell == "lstm" else None
    hs, h, c = R.rnn_sequence(cell, *ts[:5], c0, **kw)
    w = _rng(seed).normal(size=hs.shape).astype(arrs[0].dtype)
    loss = ops.sum(hs * Tensor(w)) + ops.sum(h)
    if c is not None:
        loss = loss + ops.sum(c)
    loss.backward()
    return [hs.data, h.data] + [x.grad for x in ts]


def _close(a, b, tol):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


def test_lstm_pins_blas_to_one_thread_for_large_batches(monkeypatch):
    """With OpenBLAS on several threads, a large batch runs its step loops with OpenBLAS on one
    thread and its rows in shards; the setting comes back afterwards, and the result is that of
    the same shards run under a one-thread setting."""
    if R._seq_kernels() is None or backend.get_blas_threads() is None:
        pytest.skip("needs the compiled loops and a controllable OpenBLAS")
    monkeypatch.setattr(R, "_shard_threads", lambda: 2)
    monkeypatch.setattr(R, "_SHARD_MIN_WORK", 0)
    seen = []
    real = R._shard_bounds
    monkeypatch.setattr(R, "_shard_bounds",
                        lambda *a: seen.append(backend.get_blas_threads()) or real(*a))
    arrs = _inputs(1, "lstm", 40, 6, 3, 4, dtype=np.float32)
    prev = backend.set_blas_threads(2)
    try:
        got = _run("lstm", arrs)
        assert seen == [1] and backend.get_blas_threads() == 2
        monkeypatch.setattr(R, "_PIN_BLAS", False)
        seen.clear()
        unpinned = _run("lstm", arrs)
        assert seen == [2]
        backend.set_blas_threads(1)
        ref = _run("lstm", arrs)
    finally:
        backend.set_blas_threads(prev)
    _close(got, ref, 0)                                  # same shards, same bits
    _close(unpinned, ref, 1e-5)


def test_lstm_pin_policy():
    if R._seq_kernels() is None or backend.get_blas_threads() is None:
        pytest.skip("needs the compiled loops and a controllable OpenBLAS")
    prev = backend.set_blas_threads(2)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(R, "_shard_threads", lambda: 2)
            assert R._pin_blas(128, 100, 321, 1024)
            assert not R._pin_blas(16, 100, 321, 1024)    # too few rows for two shards
            assert not R._pin_blas(128, 2, 5, 8)          # too little work
            mp.setattr(R, "_shard_threads", lambda: 1)
            assert not R._pin_blas(128, 100, 321, 1024)
        backend.set_blas_threads(1)
        assert not R._pin_blas(128, 100, 321, 1024)
    finally:
        backend.set_blas_threads(prev)


def _need_seq():
    if R._seq_kernels() is None or R._compiled.kernels("gru_forward_seq") is None:
        pytest.skip("needs the compiled GRU / SimpleRNN loops and NumPy's gemm handed over")


def _variant(name, n, t, d, u, seed=3):
    rng = _rng(seed)
    kw = {}
    if "mask" in name:
        m = rng.random((n, t)) > 0.35
        m[0] = False                                     # a row masked everywhere
        kw["mask"] = m
    if "backwards" in name:
        kw["go_backwards"] = True
    if "dropout" in name:
        kw["input_dropout_mask"] = (rng.random((n, d)) > 0.25) / 0.75
        kw["recurrent_dropout_mask"] = (rng.random((n, u)) > 0.25) / 0.75
    return kw


VARIANTS = ["plain", "mask", "backwards", "dropout", "mask_backwards_dropout"]


@pytest.mark.parametrize("cell", ["gru", "simple"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shards", [1, 3])
def test_compiled_loop_matches_the_numpy_loop_float64(cell, variant, shards, monkeypatch):
    """Outputs and every gradient (x, W, U, b, h0) of the C loops equal the NumPy loop's."""
    _need_seq()
    monkeypatch.setattr(R, "_SHARD_MIN_ROWS", 1)
    monkeypatch.setattr(R, "_SHARD_MIN_WORK", 0)
    monkeypatch.setattr(R, "_shard_threads", lambda: shards)
    monkeypatch.setattr(R, "_blas_single", lambda: True)
    n, t, d, u = 7, 9, 4, 5
    arrs = _inputs(11, cell, n, t, d, u)
    kw = _variant(variant, n, t, d, u)
    assert len(R._shard_bounds(n, t, u + d, 3 * u)) == shards
    got = _run(cell, arrs, **kw)
    monkeypatch.setattr(R, "_SEQ_GRU_SIMPLE", False)
    ref = _run(cell, arrs, **kw)
    assert len(got) == len(ref) == 7
    _close(got, ref, 1e-12)


@pytest.mark.parametrize("cell", ["gru", "simple"])
@pytest.mark.parametrize("variant", ["plain", "mask_backwards_dropout"])
def test_compiled_loop_float32(cell, variant, monkeypatch):
    _need_seq()
    n, t, d, u = 6, 12, 3, 8
    arrs = _inputs(12, cell, n, t, d, u, dtype=np.float32)
    kw = _variant(variant, n, t, d, u)
    kw = {k: (v.astype(np.float32) if k.endswith("dropout_mask") else v) for k, v in kw.items()}
    got = _run(cell, arrs, **kw)
    monkeypatch.setattr(R, "_SEQ_GRU_SIMPLE", False)
    ref = _run(cell, arrs, **kw)
    for a, b in zip(got, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_compiled_loop_takes_the_c_path_only_where_it_applies(monkeypatch):
    _need_seq()
    calls = []
    real = R.RNNSequence._seq_forward
    monkeypatch.setattr(R.RNNSequence, "_seq_forward",
                        lambda self, *a: calls.append(self.cell) or real(self, *a))
    arrs = _inputs(13, "gru", 3, 4, 2, 3)
    _run("gru", arrs)
    one_row = arrs[:3] + [arrs[3][0]] + arrs[4:]         # reset_after=False: one bias row
    _run("gru", one_row, reset_after=False)
    _run("gru", arrs, activation="relu")
    _run("simple", _inputs(13, "simple", 3, 4, 2, 3))
    _run("simple", _inputs(13, "simple", 3, 4, 2, 3), activation="sigmoid")
    assert calls == ["gru", "gru", "simple"]      # GRU reset_after=False has its own loop too


@pytest.mark.parametrize("cell", ["gru", "simple"])
def test_compiled_loop_is_deterministic_with_shards(cell, monkeypatch):
    _need_seq()
    monkeypatch.setattr(R, "_SHARD_MIN_WORK", 0)
    monkeypatch.setattr(R, "_shard_threads", lambda: 2)
    monkeypatch.setattr(R, "_blas_single", lambda: True)
    arrs = _inputs(14, cell, 40, 7, 3, 6, dtype=np.float32)
    a, b = _run(cell, arrs), _run(cell, arrs)
    _close(a, b, 0)


def test_compiled_entry_points_check_their_arrays():
    _need_seq()
    k = R._seq_kernels()
    H = np.zeros((4, 2, 3))
    with pytest.raises(ValueError, match="XP has size"):
        k.gru_forward_seq(np.zeros((3, 2, 8)), np.zeros((3, 2, 9)), H, None, None, None,
                          np.zeros((3, 9)), np.zeros(9))
    with pytest.raises(TypeError, match="U must be a float64"):
        k.simple_forward_seq(np.zeros((3, 2, 3)), None, H, None, None, None,
                             np.zeros((3, 3), np.float32), None)
    with pytest.raises(ValueError, match="rm and HR"):
        k.simple_forward_seq(np.zeros((3, 2, 3)), None, H, None, np.ones((2, 3)), None,
                             np.zeros((3, 3)), None)
    with pytest.raises(ValueError, match="share memory"):
        k.simple_backward_seq(None, None, H, np.zeros((3, 2, 3)), None, H[0], np.zeros((2, 3)),
                              None, np.zeros(3, np.uint8), None, None, np.zeros((3, 3)))


@pytest.mark.parametrize("cls", ["GRU", "SimpleRNN"])
def test_stateful_layer_matches_the_numpy_loop(cls, monkeypatch):
    """A stateful layer carries its state from call to call on either path; the weight
    gradients of the second call agree."""
    _need_seq()
    from axone import layers

    def two_calls():
        from axone.utils import set_random_seed
        set_random_seed(7)
        layer = getattr(layers, cls)(5, stateful=True, return_sequences=True)
        x = _rng(8).normal(size=(3, 6, 4)).astype(np.float32)
        first = layer(Tensor(x)).data
        out = layer(Tensor(x[:, ::-1].copy()))
        ops.sum(out * out).backward()
        return [first, out.data] + [w.grad if hasattr(w, "grad") else None
                                    for w in layer.trainable_weights]

    got = two_calls()
    monkeypatch.setattr(R, "_SEQ_GRU_SIMPLE", False)
    ref = two_calls()
    for a, b in zip(got, ref):
        if a is None or b is None:
            assert a is None and b is None
            continue
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
