"""The LSTM's dedicated path (activation tanh, recurrent_activation sigmoid) against the general
step loop of ``ops.recurrent`` (``_FAST_LSTM = False``), and against finite differences.

The two paths compute the same function in a different order (gate-major work arrays, the gates
through one exp, the weight gradients in one product after the loop), so in float64 they agree
to rounding: outputs and every gradient are compared at 1e-10.  Every test runs twice: with the
point-wise step work in the compiled module (``axone._kernels.lstm_forward/lstm_backward``, its
own vectorized exp) and in NumPy (``_COMPILED_LSTM = False``).
"""
import numpy as np
import pytest

import axone
from axone import Tensor, ops
from axone.ops import recurrent as R
from axone.ops.recurrent import rnn_sequence
from axone.utils import check_gradients

TOL = 1e-10


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def step_kernels(request, monkeypatch):
    """Run each test with the compiled step kernels and with the NumPy steps."""
    if request.param == "compiled" and R._kernels() is None:
        pytest.skip("axone._kernels is not built")
    monkeypatch.setattr(R, "_COMPILED_LSTM", request.param == "compiled")
    return request.param


def _rng(seed):
    return np.random.default_rng(seed)


def _close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    err = np.abs(a - b).max() / max(1.0, np.abs(b).max()) if a.size else 0.0
    assert err < TOL, f"{what}: fast and general paths differ by {err:.3g}"


def _both(run, monkeypatch):
    """``run()`` → list of arrays, once through each path."""
    monkeypatch.setattr(R, "_FAST_LSTM", True)
    fast = run()
    monkeypatch.setattr(R, "_FAST_LSTM", False)
    general = run()
    monkeypatch.setattr(R, "_FAST_LSTM", True)
    return fast, general


def _op_inputs(seed, n=3, t=5, d=4, u=3, scale=0.6):
    rng = _rng(seed)
    return dict(x=rng.normal(size=(n, t, d)), W=rng.normal(scale=scale, size=(d, 4 * u)),
                U=rng.normal(scale=scale, size=(u, 4 * u)), b=rng.normal(scale=scale, size=4 * u),
                h0=rng.normal(size=(n, u)), c0=rng.normal(size=(n, u)))


def _run_op(arrs, mask=None, go_backwards=False, last_only=False, xm=None, rm=None,
            dtype=np.float64):
    """Forward and backward through ``rnn_sequence``; returns outputs and all input gradients."""
    ts = {k: Tensor(np.asarray(v, dtype=dtype), requires_grad=True) for k, v in arrs.items()}
    hs, h, c = rnn_sequence("lstm", ts["x"], ts["W"], ts["U"], ts["b"], ts["h0"], ts["c0"],
                            mask=mask, go_backwards=go_backwards, input_dropout_mask=xm,
                            recurrent_dropout_mask=rm)
    rng = _rng(99)
    out = h if last_only else hs
    loss = ops.sum(out * Tensor(rng.normal(size=out.shape).astype(dtype)))
    loss = loss + ops.sum(c * Tensor(rng.normal(size=c.shape).astype(dtype)))
    loss.backward()
    return [hs.data, h.data, c.data] + [ts[k].grad for k in ("x", "W", "U", "b", "h0", "c0")]


NAMES = ["hs", "h", "c", "dx", "dW", "dU", "db", "dh0", "dc0"]


# ------------------------------------------------------------ the op: fast == general
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("last_only", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
def test_fast_path_matches_the_general_loop(go_backwards, last_only, masked, dropout, monkeypatch):
    arrs = _op_inputs(1)
    rng = _rng(2)
    mask = rng.random((3, 5)) > 0.35 if masked else None
    xm = (rng.random((3, 4)) < 0.7) / 0.7 if dropout else None
    rm = (rng.random((3, 3)) < 0.7) / 0.7 if dropout else None
    fast, general = _both(lambda: _run_op(arrs, mask, go_backwards, last_only, xm, rm), monkeypatch)
    for name, a, b in zip(NAMES, fast, general):
        _close(a, b, name)


def test_longer_sequences_and_batches_match(monkeypatch):
    arrs = _op_inputs(8, n=33, t=27, d=5, u=10, scale=0.3)
    rng = _rng(9)
    mask = rng.random((33, 27)) > 0.2
    for kw in ({}, {"go_backwards": True, "mask": mask}):
        fast, general = _both(lambda: _run_op(arrs, **kw), monkeypatch)
        for name, a, b in zip(NAMES, fast, general):
            _close(a, b, f"{name} {sorted(kw)}")


def test_fast_path_is_taken_only_for_tanh_and_sigmoid():
    arrs = {k: Tensor(v, requires_grad=True) for k, v in _op_inputs(3).items()}

    def node(**kw):
        hs, _, _ = rnn_sequence("lstm", arrs["x"], arrs["W"], arrs["U"], arrs["b"], arrs["h0"],
                                arrs["c0"], **kw)
        return hs._ctx.inputs[0]._ctx          # hs = get_item(RNNSequence output)

    assert node().fast
    assert (node().kernels is not None) == (R._COMPILED_LSTM and R._kernels() is not None)
    assert not node(activation="relu").fast
    assert not node(recurrent_activation="hard_sigmoid").fast


def test_saturated_gates_match_without_warnings(monkeypatch):
    """Pre-activations far beyond exp's range: σ → 0 or 1 and tanh → ±1, no overflow warning."""
    arrs = _op_inputs(4, scale=60.0)
    with np.errstate(all="raise"):
        fast, general = _both(lambda: _run_op(arrs), monkeypatch)
    for name, a, b in zip(NAMES, fast, general):
        _close(a, b, name)
    f32, _ = _both(lambda: _run_op(arrs, dtype=np.float32), monkeypatch)
    assert all(np.isfinite(a).all() for a in f32)


def test_float32_stays_float32_and_close(monkeypatch):
    arrs = _op_inputs(5, n=16, t=12, d=6, u=8)
    fast, general = _both(lambda: _run_op(arrs, go_backwards=True, dtype=np.float32), monkeypatch)
    for name, a, b in zip(NAMES, fast, general):
        assert a.dtype == np.float32, f"{name}: {a.dtype}"
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)


# ------------------------------------------------------------ finite differences (fast path)
@pytest.mark.parametrize("case", ["plain", "backwards", "mask", "dropout"])
def test_fast_path_finite_differences_float64(case):
    arrs = _op_inputs(6, n=2, t=4, d=3, u=3)
    rng = _rng(7)
    mask = np.array([[True, False, True, True], [True, True, False, True]])
    mask = mask if case == "mask" else None
    xm = (rng.random((2, 3)) < 0.6) / 0.6 if case == "dropout" else None
    rm = (rng.random((2, 3)) < 0.6) / 0.6 if case == "dropout" else None

    def fn(x, W, U, b, h0, c0):
        hs, _, c = rnn_sequence("lstm", x, W, U, b, h0, c0, mask=mask,
                                go_backwards=case == "backwards", input_dropout_mask=xm,
                                recurrent_dropout_mask=rm)
        if hs._ctx is not None:                 # (the finite differences run without a graph)
            assert hs._ctx.inputs[0]._ctx.fast
        return ops.concatenate([hs, ops.expand_dims(c, 1)], axis=1)

    r = check_gradients(fn, *arrs.values(), names=list(arrs))
    assert r.max_error < 1e-7, f"{case}: error {r.max_error} at {r.worst_input}"
    assert all(g is not None and np.abs(g).max() > 0 for g in r.analytic), "a zero gradient"


# ------------------------------------------------------------ the layer: fast == general
def _layer_run(layer, x, ws, **call_kw):
    # float64 weights put on the cell (as tests/rnn/test_rnn_parity.py's finite differences do)
    cell = layer.cell
    original = (cell.kernel, cell.recurrent_kernel, cell.bias)
    wt = [Tensor(np.array(w, dtype=np.float64), requires_grad=True) for w in ws]
    cell.kernel, cell.recurrent_kernel, cell.bias = wt
    try:
        xt = Tensor(x, requires_grad=True)
        outs = layer(xt, **call_kw)
        outs = outs if isinstance(outs, list) else [outs]
        assert all(o.dtype == np.float64 for o in outs)
        rng = _rng(11)
        loss = None
        for o in outs:
            term = ops.sum(o * Tensor(rng.normal(size=o.shape)))
            loss = term if loss is None else loss + term
        loss.backward()
    finally:
        cell.kernel, cell.recurrent_kernel, cell.bias = original
    return [o.data for o in outs] + [xt.grad] + [w.grad for w in wt]


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("initial_state", [False, True])
def test_layer_matches_the_general_loop(return_sequences, go_backwards, initial_state, monkeypatch):
    rng = _rng(12)
    x = rng.normal(size=(4, 6, 5))
    layer = axone.layers.LSTM(7, return_sequences=return_sequences, return_state=True,
                              go_backwards=go_backwards, dtype="float64")
    layer(Tensor(x))
    ws = [rng.normal(scale=0.4, size=w.shape) for w in layer.get_weights()]
    kw = {}
    if initial_state:
        kw["initial_state"] = [Tensor(rng.normal(size=(4, 7))), Tensor(rng.normal(size=(4, 7)))]
    fast, general = _both(lambda: _layer_run(layer, x, ws, **kw), monkeypatch)
    assert len(fast) == len(general)
    for i, (a, b) in enumerate(zip(fast, general)):
        _close(a, b, f"output/gradient {i}")


def test_stateful_layer_matches_the_general_loop(monkeypatch):
    rng = _rng(13)
    x1, x2 = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 4))
    layer = axone.layers.LSTM(6, stateful=True, return_sequences=True, dtype="float64")
    layer(Tensor(x1))
    ws = [rng.normal(scale=0.4, size=w.shape) for w in layer.get_weights()]

    def run():
        layer.reset_states()
        first = _layer_run(layer, x1, ws)
        states = [np.array(s) for s in layer.states]
        second = _layer_run(layer, x2, ws)             # starts from the carried states
        return first + states + second + [np.array(s) for s in layer.states]

    fast, general = _both(run, monkeypatch)
    for i, (a, b) in enumerate(zip(fast, general)):
        _close(a, b, f"stateful output/state/gradient {i}")


# ------------------------------------------------------------ reused work arrays
def test_graphs_alive_together_and_retained_graphs_keep_their_arrays():
    """Work arrays are reused only once a node lets go of them: two graphs built before either
    backward, and a graph backpropagated twice (retain_graph), give the same gradients as one
    graph at a time."""
    a1, a2 = _op_inputs(14), _op_inputs(15)

    def grads(arrs, out_fn=None):
        ts = {k: Tensor(v, requires_grad=True) for k, v in arrs.items()}
        hs, h, c = rnn_sequence("lstm", *ts.values())
        return ts, ops.sum(hs * hs) + ops.sum(c)

    ref = []
    for arrs in (a1, a2):
        ts, loss = grads(arrs)
        loss.backward()
        ref.append([t.grad.copy() for t in ts.values()])

    (t1, l1), (t2, l2) = grads(a1), grads(a2)      # both forwards first
    l2.backward()
    l1.backward(retain_graph=True)
    first = [t.grad.copy() for t in t1.values()]
    for t in t1.values():
        t.grad = None
    grads(a2)[1].backward()                         # another node takes arrays from the pool
    l1.backward()                                   # the retained graph still has its own
    for i, (g1, g2, again, r1, r2) in enumerate(zip(first, [t.grad for t in t2.values()],
                                                    [t.grad for t in t1.values()], *ref)):
        _close(g1, r1, f"graph 1, input {i}")
        _close(again, r1, f"graph 1 again, input {i}")
        _close(g2, r2, f"graph 2, input {i}")


def test_pool_stays_within_its_size(monkeypatch):
    monkeypatch.setattr(R, "_POOL", {})
    monkeypatch.setattr(R, "_pool_size", [0])
    monkeypatch.setattr(R, "_POOL_BYTES", 10_000)
    R._give(np.empty(500), np.empty(500), np.empty((10, 10)))     # 4000 + 4000 + 800 bytes
    R._give(np.empty(300))                                         # the oldest shape goes
    R._give(np.empty(2000))                                        # too big to keep
    held = sum(a.nbytes for v in R._POOL.values() for a in v)
    assert held == R._pool_size[0] <= 10_000
    assert R._take((300,), np.dtype(float)).shape == (300,)
    assert R._pool_size[0] == held - 2400
