"""The autograd core on device arrays (the strict stand-in): Tensor.backward, leaf gradient
accumulation, GradientTape, grad / value_and_grad, the Jacobian, second derivatives, gradient
checking and a device tensor's repr and host copy.

Each graph runs twice on the same values: on host NumPy arrays and on ``StrictArray``s, which
refuse any NumPy call and any mixing with host arrays.  The losses agree, and every leaf's
``.grad`` (or tape gradient) is a StrictArray equal to the host run's, so a stray ``np.`` in
the walk, the seed or the accumulation fails here with the StrictArray TypeError naming it.
"""
import importlib

import numpy as np
import pytest

from axone import Tensor
from axone.autograd import GradientTape, check_gradients, grad, value_and_grad
from axone.autograd import function as Fn
from axone.autograd import tensor as T
from axone.ops import nn
from axone.variables import Variable

import strict_xp
from strict_xp import StrictArray, from_strict, to_strict

M = importlib.import_module("axone.ops.math")
Cv = importlib.import_module("axone.ops.conv")
R = importlib.import_module("axone.ops.recurrent")


@pytest.fixture(autouse=True, scope="module")
def _registered():
    strict_xp.register()
    yield
    strict_xp.unregister()


_r = np.random.default_rng(5)


def _n(*shape):
    return _r.normal(size=shape)


# ------------------------------------------------------------------ the graphs
LABELS = np.array([1, 0, 2, 1])


def _mlp(x, w1, b1, w2, b2):
    """Dense → relu → Dense → softmax cross-entropy, the mean over the batch."""
    h = nn.dense(x, w1, b1, relu=True)
    logits = nn.dense(h, w2, b2)
    return M.mean(nn.sparse_categorical_crossentropy(LABELS, logits, from_logits=True))


def _cnn(x, k, b, w, c):
    """conv (same, relu) → max pool → flatten → Dense → softmax cross-entropy."""
    y = Cv.conv(x, k, b, padding="same", relu=True)
    y = Cv.max_pool(y, 2)
    y = M.reshape(y, (y.shape[0], -1))
    logits = nn.dense(y, w, c)
    return M.mean(nn.sparse_categorical_crossentropy(LABELS, logits, from_logits=True))


def _lstm(x, kern, rec, bias, h0, c0, w, c):
    """LSTM over the sequence → last state → Dense → softmax cross-entropy (+ a state term, so
    the sequence output and the final cell state carry gradients too)."""
    hs, h, cs = R.rnn_sequence("lstm", x, kern, rec, bias, h0, c0)
    logits = nn.dense(h, w, c)
    ce = M.mean(nn.sparse_categorical_crossentropy(LABELS, logits, from_logits=True))
    return ce + M.mean(hs * hs) * 0.1 + M.sum(cs) * 0.01


GRAPHS = {
    "dense_relu_softmax_ce": (_mlp, [_n(4, 5), _n(5, 6) * 0.5, _n(6), _n(6, 3) * 0.5, _n(3)]),
    "conv_pool_dense_ce": (_cnn, [_n(4, 6, 6, 2), _n(3, 3, 2, 4) * 0.5, _n(4),
                                  _n(36, 3) * 0.3, _n(3)]),
    "lstm_dense_ce": (_lstm, [_n(4, 5, 3), _n(3, 16) * 0.5, _n(4, 16) * 0.5, _n(16),
                              _n(4, 4), _n(4, 4), _n(4, 3) * 0.5, _n(3)]),
}


def _leaves(inputs, device):
    move = to_strict if device else np.array
    return [Tensor(move(a), requires_grad=True) for a in inputs]


def _copy(a):
    return to_strict(from_strict(a).copy()) if type(a) is StrictArray else a.copy()


def _same(dev, host, what, rtol=1e-10, atol=1e-12):
    assert type(dev) is StrictArray, f"{what}: {type(dev).__name__}, not a device array"
    assert dev.shape == host.shape and dev.dtype == host.dtype, what
    np.testing.assert_allclose(from_strict(dev), host, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_backward_of_a_composed_graph(name):
    fn, inputs = GRAPHS[name]
    host, dev = _leaves(inputs, False), _leaves(inputs, True)
    lh, ld = fn(*host), fn(*dev)
    assert type(ld.data) is StrictArray
    _same(ld.data, lh.data, f"{name}: loss")
    lh.backward()
    ld.backward()
    for i, (h, d) in enumerate(zip(host, dev)):
        assert h.grad is not None, f"{name}: input {i} got no gradient"
        _same(d.grad, h.grad, f"{name}: dL/d input {i}")


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_backward_accumulates_over_two_calls(name):
    fn, inputs = GRAPHS[name]
    host, dev = _leaves(inputs, False), _leaves(inputs, True)
    for leaves in (host, dev):
        fn(*leaves).backward()
        fn(*leaves).backward()
    for i, (h, d) in enumerate(zip(host, dev)):
        _same(d.grad, h.grad, f"{name}: accumulated dL/d input {i}")
    once = _leaves(inputs, True)
    fn(*once).backward()
    for d, o in zip(dev, once):
        np.testing.assert_allclose(from_strict(d.grad), 2 * from_strict(o.grad), rtol=1e-12)


def test_retain_graph_and_intermediate_grads():
    fn, inputs = GRAPHS["dense_relu_softmax_ce"]
    runs = []
    for device in (False, True):
        x, w1, b1, w2, b2 = _leaves(inputs, device)
        h = nn.dense(x, w1, b1, relu=True)
        h.retain_grad()
        logits = nn.dense(h, w2, b2)
        loss = M.mean(nn.sparse_categorical_crossentropy(LABELS, logits, from_logits=True))
        loss.backward(retain_graph=True)
        loss.backward()
        runs.append((h.grad, w1.grad))
    (hh, wh), (hd, wd) = runs
    _same(hd, hh, "retained dL/dh")
    _same(wd, wh, "dL/dW1 over two walks of one graph")


def test_backward_with_a_given_gradient():
    a = _n(3, 4)
    seed = _n(3, 4)
    outs = []
    for device, given in ((False, seed), (True, to_strict(seed)), (True, seed),
                          (True, Tensor(to_strict(seed)))):
        x = Tensor(to_strict(a) if device else a.copy(), requires_grad=True)
        y = M.tanh(x) * x
        y.backward(given)                   # a host seed for a device output is moved there
        outs.append(x.grad)
    for g in outs[1:]:
        _same(g, outs[0], "dL/dx from a given seed")
    x = Tensor(to_strict(a), requires_grad=True)
    with pytest.raises(ValueError, match="grad must have the output's shape"):
        (x * 2).backward(to_strict(seed[:2]))


def test_a_leaf_root_and_a_float32_graph():
    x = Tensor(to_strict(np.float32(1.5) * np.ones((), np.float32)), requires_grad=True)
    x.backward()
    assert type(x.grad) is StrictArray and x.grad.dtype == np.float32 and float(x.grad) == 1.0
    inputs = [a.astype(np.float32) for a in GRAPHS["dense_relu_softmax_ce"][1]]
    host, dev = _leaves(inputs, False), _leaves(inputs, True)
    _mlp(*host).backward()
    _mlp(*dev).backward()
    for i, (h, d) in enumerate(zip(host, dev)):
        _same(d.grad, h.grad, f"float32 dL/d input {i}", rtol=2e-5, atol=2e-6)


def test_broadcast_leaf_gradients_are_summed_on_the_device():
    a, b = _n(3, 4), _n(4)
    res = []
    for device in (False, True):
        move = to_strict if device else np.array
        x, y = Tensor(move(a), requires_grad=True), Tensor(move(b), requires_grad=True)
        (x * y + y).sum().backward()
        res.append((x.grad, y.grad))
    _same(res[1][0], res[0][0], "dL/dx")
    _same(res[1][1], res[0][1], "dL/dy (summed over the broadcast axis)")
    g = to_strict(_n(2, 3, 4))
    u = Fn.unbroadcast(g, (1, 4))
    assert type(u) is StrictArray and u.shape == (1, 4)
    np.testing.assert_allclose(from_strict(u), from_strict(g).sum(axis=(0, 1))[None], rtol=1e-12)
    z = Fn.zeros_grad_like(g)
    assert type(z) is StrictArray and z.shape == g.shape and not from_strict(z).any()


# ------------------------------------------------------------------ fresh gradient buffers
def test_fresh_buffers_on_the_device_are_written_in_place():
    fn, inputs = GRAPHS["dense_relu_softmax_ce"]
    host, dev = _leaves(inputs, False), _leaves(inputs, True)
    fn(*host).backward()
    bufs = []
    for t in dev:
        t.grad = to_strict(np.full(t.shape, 7.0))      # stale values that count as zero
        bufs.append(t.grad)
    T.mark_fresh_grads(dev)
    fn(*dev).backward()
    T.finish_fresh_grads(dev)
    for i, (h, d, buf) in enumerate(zip(host, dev, bufs)):
        assert d.grad is buf, f"input {i}: the device buffer was replaced"
        _same(d.grad, h.grad, f"fresh dL/d input {i}")


def test_a_host_buffer_is_never_handed_to_a_device_node():
    w = Tensor(to_strict(_n(5, 3)), requires_grad=True)
    host_buf = np.full((5, 3), 7.0)
    w.grad = host_buf
    T.mark_fresh_grads([w])
    assert T.fresh_grad_out(w, (5, 3), np.dtype(np.float64)) is None
    x = Tensor(to_strict(_n(4, 5)))
    nn.dense(x, w).sum().backward()
    T.finish_fresh_grads([w])
    assert type(w.grad) is StrictArray and w.grad is not host_buf
    assert (host_buf == 7.0).all()          # the host buffer was not written
    np.testing.assert_allclose(from_strict(w.grad), from_strict(x.data).T @ np.ones((4, 3)),
                               rtol=1e-12)
    # a device buffer is handed out for a device leaf; a host leaf keeps its host buffer
    w.grad = to_strict(np.zeros((5, 3)))
    T.mark_fresh_grads([w])
    assert T.fresh_grad_out(w, (5, 3), np.dtype(np.float64)) is w.grad
    v = Tensor(_n(5, 3), requires_grad=True)
    v.grad = np.zeros((5, 3))
    T.mark_fresh_grads([v])
    assert T.fresh_grad_out(v, (5, 3), np.dtype(np.float64)) is v.grad
    v.grad = to_strict(np.zeros((5, 3)))
    T.mark_fresh_grads([v])
    assert T.fresh_grad_out(v, (5, 3), np.dtype(np.float64)) is None
    T.finish_fresh_grads([w, v])


def test_a_host_gradient_held_by_a_device_leaf_is_moved_and_added():
    w = Tensor(to_strict(np.ones(3)), requires_grad=True)
    w.grad = np.full(3, 2.0)                # accumulated earlier on the host
    (w * 3.0).sum().backward()
    assert type(w.grad) is StrictArray
    np.testing.assert_array_equal(from_strict(w.grad), np.full(3, 5.0))
    w.zero_grad()
    np.testing.assert_array_equal(from_strict(w.grad), np.zeros(3))


# ------------------------------------------------------------------ GradientTape
def _variables(inputs, device):
    vs = [Variable(a, dtype="float64") for a in inputs]
    if device:
        for v in vs:
            v.data = to_strict(v.data)
    return vs


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_gradient_tape_of_a_composed_graph(name):
    fn, inputs = GRAPHS[name]
    res = []
    for device in (False, True):
        vs = _variables(inputs, device)
        with GradientTape() as tape:
            loss = fn(*vs)
        gs = tape.gradient(loss, vs)
        for v, g in zip(vs, gs):
            assert g.data is v.grad         # leaf gradients land in their own .grad
        res.append(gs)
    for i, (h, d) in enumerate(zip(*res)):
        _same(d.data, h.data, f"{name}: tape dL/d input {i}")


def test_gradient_tape_writes_over_device_grads_and_collects_the_rest():
    fn, inputs = GRAPHS["dense_relu_softmax_ce"]
    res = []
    for device in (False, True):
        move = to_strict if device else np.array
        vs = _variables(inputs, device)
        with GradientTape() as tape:
            loss = fn(*vs)
        first = tape.gradient(loss, vs)
        bufs = [v.grad for v in vs]
        with GradientTape(persistent=True) as tape:
            x = Tensor(move(inputs[0]))
            tape.watch(x)
            h = nn.dense(x, vs[1], vs[2], relu=True)          # an intermediate source
            loss = fn(x, *vs[1:])
            unused = Tensor(move(np.ones(2)), requires_grad=True)
        again = tape.gradient(loss, vs[1:])             # vs[0] is replaced by x here
        assert all(v.grad is b for v, b in zip(vs, bufs)), "the .grad buffers were replaced"
        assert all(g.data is v.grad for g, v in zip(again, vs[1:]))
        gx, gh, gu, gz = tape.gradient([loss, M.sum(h) * 0.0], [x, h, unused, unused],
                                       unconnected_gradients="zero")[:4]
        weighted = tape.gradient(h, vs[1], output_gradients=move(np.full(h.shape, 0.5)))
        res.append([first[1].data, again[0].data, gx.data, gh.data, gu.data, weighted.data])
        assert tape.gradient(loss, [unused])[0] is None
    names = ["first dL/dW1", "second dL/dW1", "dL/dx (watched)", "dL/dh (intermediate)",
             "unconnected zeros", "weighted dh/dW1"]
    for name, h, d in zip(names, *res):
        _same(d, h, name)


def test_jacobian_and_second_derivatives_on_the_device():
    a = _n(3)
    res = []
    for device in (False, True):
        move = to_strict if device else np.array
        x = Tensor(move(a))
        with GradientTape(persistent=True) as outer:
            outer.watch(x)
            with GradientTape() as inner:
                inner.watch(x)
                y = M.sum(x * x * x)
            g = inner.gradient(y, x)                 # 3x², a Tensor with a graph
            z = M.sum(g * g)
        # a copy: a later gradient of the same watched leaf writes over its .grad
        hvp = Tensor(_copy(outer.gradient(z, x).data))       # Σ 2·3x²·6x = 36x³
        with GradientTape() as tape:
            tape.watch(x)
            y = M.tanh(x) * 2.0
        jac = tape.jacobian(y, x)
        with GradientTape(persistent=True) as outer:
            outer.watch(x)
            with GradientTape() as inner:
                inner.watch(x)
                y = M.sin(x)
            jg = inner.jacobian(y, x)                # diag(cos x), with a graph
            s = M.sum(jg)
        d2 = outer.gradient(s, x)                    # −sin x
        res.append([t.data for t in (g, hvp, jac, jg, d2)])
    for name, h, d in zip(["dy/dx", "Hessian-vector", "jacobian", "jacobian (graph)",
                           "d/dx Σ jacobian"], *res):
        _same(d, h, name)
    np.testing.assert_allclose(from_strict(res[1][1]), 36 * a ** 3, rtol=1e-12)


def test_grad_and_value_and_grad_on_device_arrays():
    a, b = _n(4), _n(4)

    def f(x, y):
        return M.sum(M.exp(x) * y) + M.sum(x * x)

    res = []
    for device in (False, True):
        move = to_strict if device else np.array
        g = grad(f, argnums=(0, 1))(move(a), Tensor(move(b)))
        v, (gx, gy) = value_and_grad(f, argnums=(0, 1))(Tensor(move(a)), move(b))
        h = grad(lambda x: M.sum(grad(lambda u: M.sum(u * u * u))(x)))(move(a))   # 6x
        res.append([g[0].data, g[1].data, v.data, gx.data, gy.data, h.data])
    for name, h, d in zip(["grad x", "grad y", "value", "vg x", "vg y", "grad of grad"], *res):
        _same(d, h, name)


def test_check_gradients_on_device_inputs():
    a, b = _n(3, 2), _n(2, 4)
    host = check_gradients(lambda x, w: M.tanh(M.matmul(x, w)), a, b)
    dev = check_gradients(lambda x, w: M.tanh(M.matmul(x, w)), to_strict(a), to_strict(b))
    assert dev.max_error < 1e-7 and host.max_error < 1e-7
    np.testing.assert_allclose(dev.errors, host.errors, rtol=1e-6, atol=1e-12)
    assert all(type(g) is StrictArray for g in dev.analytic + dev.numeric)


# ------------------------------------------------------------------ printing and host copies
def test_repr_numpy_and_host_conversion_of_a_device_tensor():
    a = np.array([[1.0, 2.5], [-3.0, 4.0]])
    host = Tensor(a.copy(), requires_grad=True)
    dev = Tensor(to_strict(a), requires_grad=True)
    assert repr(dev) == repr(host) and str(dev) == str(host)
    assert repr(dev * 2) == repr(host * 2)                 # grad_fn=…
    f32 = Tensor(to_strict(a.astype(np.float32)))
    assert repr(f32) == repr(Tensor(a.astype(np.float32)))
    out = dev.numpy()
    assert type(out) is np.ndarray and np.array_equal(out, a)
    out[0, 0] = 99.0                                       # a copy: the device array is intact
    assert from_strict(dev.data)[0, 0] == 1.0
    assert np.array_equal(np.asarray(dev), a)
    assert np.asarray(dev, dtype=np.float32).dtype == np.float32
    assert float(Tensor(to_strict(np.array(2.5)))) == 2.5
    assert f"{Tensor(to_strict(np.array(0.125))):.2f}" == "0.12"
    assert host.numpy() is host.data                        # a host tensor shares its array
