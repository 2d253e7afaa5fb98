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
