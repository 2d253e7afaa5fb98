"""The compiled LSTM step kernels (``axone._kernels.lstm_forward`` / ``lstm_backward``) on their
own: the gate activations against float64 references over the whole float range (their exp is
evaluated inline), NaN and ±inf, and the checks that keep a wrong call from touching memory.
Then what only the compiled path does, against the general step loop: batch shards on threads,
the step loops in C, the weight products beside the recurrence, and a forked child."""
import numpy as np
import pytest

from axone.ops import recurrent as R

from .test_lstm_fast_path import NAMES, _both, _close, _op_inputs, _rng, _run_op

K = R._kernels()
pytestmark = pytest.mark.skipif(K is None, reason="axone._kernels is not built")


@pytest.fixture(autouse=True)
def compiled_steps(monkeypatch):
    monkeypatch.setattr(R, "_COMPILED_LSTM", True)


def _forward(z, c0, dtype):
    """One step, N = 1: z (4u,) pre-activations → (i, f, g, o), c, tanh(c), h."""
    u = z.size // 4
    A = np.asarray(z, dtype=dtype).reshape(1, 1, 4 * u).copy()
    C = np.zeros((2, 1, u), dtype)
    C[0, 0] = c0
    AC = np.zeros((1, 1, u), dtype)
    Hc = np.zeros((2, 1, u + 2), dtype)
    K.lstm_forward(0, A, C, AC, Hc, None, None, None)
    return A.reshape(4, u), C[1, 0], AC[0, 0], Hc[1, 0, :u]


@pytest.mark.parametrize("dtype, tol", [(np.float32, 3e-7), (np.float64, 1e-15)])
def test_gates_state_and_output_match_float64_references(dtype, tol):
    rng = np.random.default_rng(0)
    u = 4096
    z = np.concatenate([np.linspace(-120, 120, 4 * u - 1000), rng.normal(scale=4, size=1000)])
    z = z.astype(dtype)
    c0 = rng.normal(scale=5, size=u).astype(dtype)
    gates, c, tc, h = _forward(z, c0, dtype)
    zz = z.astype(np.float64).reshape(4, u)
    with np.errstate(over="ignore"):
        sig = 1 / (1 + np.exp(-zz))
    i, f, g, o = sig[0], sig[1], np.tanh(zz[2]), sig[3]
    for name, got, ref in [("i", gates[0], i), ("f", gates[1], f), ("g", gates[2], g),
                           ("o", gates[3], o)]:
        assert got.dtype == dtype
        assert np.abs(got - ref).max() < tol, name
        assert ((got >= -1) & (got <= 1)).all(), name
    # σ's relative accuracy where it is not tiny (exp's range reduction and polynomial)
    big = sig[0] > 1e-30
    assert (np.abs(gates[0] - sig[0]) / sig[0])[big].max() < 50 * np.finfo(dtype).eps
    cref = gates[1].astype(np.float64) * c0 + gates[0].astype(np.float64) * gates[2]
    np.testing.assert_allclose(c, cref, rtol=10 * np.finfo(dtype).eps, atol=tol)
    assert np.abs(tc - np.tanh(c.astype(np.float64))).max() < tol
    np.testing.assert_allclose(h, gates[3] * tc, rtol=2 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_infinities(dtype):
    z = np.array([np.nan, np.inf, -np.inf, 0.0] * 4, dtype=dtype)      # u = 4, each gate gets all
    gates, c, tc, h = _forward(z, np.zeros(4, dtype), dtype)
    for k in range(4):
        assert np.isnan(gates[k][0])
    np.testing.assert_array_equal(gates[[0, 1, 3], 1], 1)              # σ(+inf)
    s = gates[[0, 1, 3], 2]                                            # σ(−inf): 0 to the last
    assert ((s >= 0) & (s <= np.finfo(dtype).tiny)).all()             # normal number
    np.testing.assert_array_equal(gates[2, 1:], [1, -1, 0])            # tanh(±inf), tanh(0)
    assert np.isnan(c[0]) and np.isnan(h[0])
    assert np.isfinite(h[1:]).all()


def _arrays(T=3, N=2, u=3, K=6, dtype=np.float64):
    return dict(A=np.zeros((T, N, 4 * u), dtype), C=np.zeros((T + 1, N, u), dtype),
                AC=np.zeros((T, N, u), dtype), Hc=np.zeros((T + 1, N, K), dtype),
                dZ=np.zeros((T, N, 4 * u), dtype), gh=np.zeros((N, u), dtype),
                gc=np.zeros((N, u), dtype))


def test_forward_rejects_wrong_shapes_dtypes_and_steps():
    a = _arrays()
    K.lstm_forward(2, a["A"], a["C"], a["AC"], a["Hc"], None, None, None)
    with pytest.raises(ValueError, match="C has size"):
        K.lstm_forward(0, a["A"], a["AC"], a["AC"], a["Hc"], None, None, None)
    with pytest.raises(ValueError, match="0 <= j < T"):
        K.lstm_forward(3, a["A"], a["C"], a["AC"], a["Hc"], None, None, None)
    with pytest.raises(TypeError, match="AC must be"):
        K.lstm_forward(0, a["A"], a["C"], a["AC"].astype(np.float32), a["Hc"], None, None, None)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.lstm_forward(0, a["A"].astype(np.int64), a["C"], a["AC"], a["Hc"], None, None, None)
    with pytest.raises(ValueError, match="fr has size"):
        K.lstm_forward(0, a["A"], a["C"], a["AC"], a["Hc"], None, None, np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="rm needs H"):
        K.lstm_forward(0, a["A"], a["C"], a["AC"], a["Hc"], None, np.ones((2, 3)), None)
    with pytest.raises(ValueError, match="at least u"):
        K.lstm_forward(0, a["A"], a["C"], a["AC"], a["Hc"][:, :, :2].copy(), None, None, None)
    with pytest.raises((ValueError, BufferError)):                      # not C-contiguous
        K.lstm_forward(0, a["A"], a["C"], a["AC"], a["Hc"][:, ::-1], None, None, None)
    ro = a["C"].copy()
    ro.flags.writeable = False
    with pytest.raises((ValueError, BufferError)):                      # written, must be writable
        K.lstm_forward(0, a["A"], ro, a["AC"], a["Hc"], None, None, None)


def test_backward_rejects_wrong_shapes_and_steps():
    a = _arrays()
    args = [a[k] for k in ("A", "C", "AC", "dZ", "gh", "gc")]
    K.lstm_backward(2, *args, None, None, None, None)
    K.lstm_backward(-1, *args, a["gh"].copy(), None, None, None)
    with pytest.raises(ValueError, match="-1 <= j < T"):
        K.lstm_backward(3, *args, None, None, None, None)
    with pytest.raises(ValueError, match="P finishes step j"):
        K.lstm_backward(2, *args, a["gh"].copy(), None, None, None)
    with pytest.raises(ValueError, match="G has size"):
        K.lstm_backward(1, *args, None, np.zeros((2, 3, 3)), None, None)
    with pytest.raises(ValueError, match="gc has size"):
        K.lstm_backward(1, *args[:5], np.zeros((3, 3)), None, None, None, None)
    g = np.zeros((2, 4, 3))
    g.flags.writeable = False                                          # upstream is only read
    K.lstm_backward(1, *args, None, g, None, None)


# ------------------------------------------------------------ what only the compiled path does
@pytest.mark.parametrize("t", [10, 11, 23, 64])
@pytest.mark.parametrize("variant", ["plain", "masked_dropout_backwards", "last_only"])
def test_weight_gradients_formed_on_a_second_thread_match(t, variant, monkeypatch):
    """Long sequences: [∂U; ∂W; ∂b] and ∂x are formed block by block beside the recurrence."""
    monkeypatch.setattr(R, "_OVERLAP_MIN_WORK", 0)
    assert R._overlap_block(t, 4, 10, 24) > 0
    arrs = _op_inputs(21, n=4, t=t, d=5, u=6, scale=0.4)
    rng = _rng(22)
    kw = {}
    if variant == "masked_dropout_backwards":
        kw = dict(mask=rng.random((4, t)) > 0.3, go_backwards=True,
                  xm=(rng.random((4, 5)) > 0.2) / 0.8, rm=(rng.random((4, 6)) > 0.2) / 0.8)
    elif variant == "last_only":
        kw = dict(last_only=True)
    fast, general = _both(lambda: _run_op(arrs, **kw), monkeypatch)
    for name, a, b in zip(NAMES, fast, general):
        _close(a, b, name)
    monkeypatch.setattr(R, "_OVERLAP", False)
    serial = _run_op(arrs, **kw)
    for name, a, b in zip(NAMES, fast, serial):
        _close(a, b, f"{name} (overlapped vs serial)")


@pytest.mark.parametrize("shards", [1, 2, 3])
@pytest.mark.parametrize("c_loops", [True, False])
@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("variant", ["plain", "masked_dropout_backwards", "last_only"])
def test_batch_shards_and_c_loops_match_the_general_loop(shards, c_loops, overlap, variant,
                                                         monkeypatch):
    """Rows cut into shards run on their own threads, with the step loops in C (NumPy's gemm
    handed over) or in Python, with or without the overlapped weight products."""
    if c_loops and R._seq_kernels() is None:
        pytest.skip("NumPy's BLAS could not be handed to the compiled module")
    monkeypatch.setattr(R, "_SHARD_MIN_ROWS", 1)
    monkeypatch.setattr(R, "_SHARD_MIN_WORK", 0)
    monkeypatch.setattr(R, "_shard_threads", lambda: shards)
    monkeypatch.setattr(R, "_blas_single", lambda: True)
    monkeypatch.setattr(R, "_SEQ_LOOPS", c_loops)
    monkeypatch.setattr(R, "_OVERLAP", overlap)
    monkeypatch.setattr(R, "_OVERLAP_MIN_WORK", 0)
    n, t = 7, 13
    arrs = _op_inputs(41, n=n, t=t, d=5, u=6, scale=0.4)
    rng = _rng(42)
    kw = {}
    if variant == "masked_dropout_backwards":
        kw = dict(mask=rng.random((n, t)) > 0.3, go_backwards=True,
                  xm=(rng.random((n, 5)) > 0.2) / 0.8, rm=(rng.random((n, 6)) > 0.2) / 0.8)
    elif variant == "last_only":
        kw = dict(last_only=True)
    assert len(R._shard_bounds(n, t, 12, 24)) == shards
    fast, general = _both(lambda: _run_op(arrs, **kw), monkeypatch)
    for name, a, b in zip(NAMES, fast, general):
        _close(a, b, name)


@pytest.mark.parametrize("shards", [1, 2])
@pytest.mark.parametrize("variant", ["plain", "masked_dropout_backwards"])
def test_input_part_formed_before_the_c_loop_matches_the_general_loop(shards, variant,
                                                                      monkeypatch):
    """Shards of at least _PRE_MIN_ROWS rows form [x, 1]·[W; b] for all steps in one product
    and the compiled loop adds h·U a step: the same values and gradients, to rounding."""
    if R._seq_kernels() is None:
        pytest.skip("NumPy's BLAS could not be handed to the compiled module")
    monkeypatch.setattr(R, "_SHARD_MIN_ROWS", 1)
    monkeypatch.setattr(R, "_SHARD_MIN_WORK", 0)
    monkeypatch.setattr(R, "_shard_threads", lambda: shards)
    monkeypatch.setattr(R, "_blas_single", lambda: True)
    monkeypatch.setattr(R, "_PRE_MIN_ROWS", 3)
    n, t = 9, 11
    arrs = _op_inputs(43, n=n, t=t, d=5, u=6, scale=0.4)
    rng = _rng(44)
    kw = {}
    if variant == "masked_dropout_backwards":
        kw = dict(mask=rng.random((n, t)) > 0.3, go_backwards=True,
                  xm=(rng.random((n, 5)) > 0.2) / 0.8, rm=(rng.random((n, 6)) > 0.2) / 0.8)
    fast, general = _both(lambda: _run_op(arrs, **kw), monkeypatch)
    for name, a, b in zip(NAMES, fast, general):
        _close(a, b, name)
    monkeypatch.setattr(R, "_PRE_INPUT", False)
    plain, _ = _both(lambda: _run_op(arrs, **kw), monkeypatch)
    for name, a, b in zip(NAMES, fast, plain):
        _close(a, b, name + " (input part first vs one product a step)")


def test_handed_over_gemm_is_checked():
    if R._kernels() is None:
        pytest.skip("axone._kernels is not built")
    k = R._seq_kernels()
    if k is None:
        pytest.skip("NumPy's BLAS could not be handed to the compiled module")
    assert R._check_seq(k)
    with pytest.raises(ValueError, match="Wc must be"):
        A = np.zeros((2, 3, 8))
        k.lstm_forward_seq(A, np.zeros((3, 3, 2)), np.zeros((2, 3, 2)), np.zeros((3, 3, 5)), None,
                           None, None, np.zeros((4, 8)))



@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_overlapped_backward_works_in_a_forked_child(monkeypatch):
    """The second thread does not survive fork; a child starts its own instead of waiting."""
    import os
    monkeypatch.setattr(R, "_OVERLAP_MIN_WORK", 0)
    arrs = _op_inputs(31, n=3, t=12, d=4, u=5)
    ref = _run_op(arrs)                              # starts the worker in this process
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                     # child
        try:
            got = _run_op(arrs)
            ok = all(np.allclose(a, b, rtol=1e-12, atol=1e-12) for a, b in zip(got, ref))
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    import select
    import signal
    ready, _, _ = select.select([r], [], [], 30)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert ready, "the forked child hung"
    assert os.read(r, 1) == b"1"


def test_shards_only_while_blas_runs_on_one_thread(monkeypatch):
    from axone import backend
    monkeypatch.setattr(R, "_shard_threads", lambda: 2)
    for blas, shards in ((1, 2), (2, 1), (None, 1)):    # None: BLAS threads not controllable
        monkeypatch.setattr(backend, "get_blas_threads", lambda: blas)
        assert len(R._shard_bounds(64, 50, 73, 256)) == shards


@pytest.mark.parametrize("compiled", [True, False])
def test_an_empty_batch_goes_through_both_paths(compiled, monkeypatch):
    from axone import Tensor, ops
    from axone.ops.recurrent import rnn_sequence
    monkeypatch.setattr(R, "_COMPILED_LSTM", compiled)
    z = lambda *s: Tensor(np.zeros(s, np.float32), requires_grad=True)
    x, W, U, b = z(0, 5, 3), z(3, 8), z(2, 8), z(8)
    hs, h, c = rnn_sequence("lstm", x, W, U, b, z(0, 2), z(0, 2))
    assert hs.shape == (0, 5, 2) and h.shape == (0, 2) and c.shape == (0, 2)
    ops.sum(hs).backward()
    assert x.grad.shape == (0, 5, 3)
    assert np.all(W.grad == 0) and np.all(U.grad == 0) and np.all(b.grad == 0)
