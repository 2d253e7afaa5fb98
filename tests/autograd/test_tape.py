"""GradientTape, grad and value_and_grad against backward() and PyTorch autograd."""
import numpy as np
import pytest

import axone
from axone import ops
from axone.autograd.tensor import Tensor


def _rng(seed=0):
    return np.random.default_rng(seed)


def _f(x, w, b):
    return ops.sum(ops.tanh(ops.matmul(x, w) + b) ** 2) + ops.mean(ops.exp(w))


def test_tape_matches_backward_and_torch():
    torch = pytest.importorskip("torch")
    r = _rng()
    xd, wd, bd = r.normal(size=(4, 3)), r.normal(size=(3, 2)), r.normal(size=(2,))
    x = Tensor(xd.astype(np.float32))
    w = axone.Variable(wd.astype(np.float32))
    b = axone.Variable(bd.astype(np.float32))
    with axone.GradientTape() as tape:
        y = _f(x, w, b)
    gw, gb = tape.gradient(y, [w, b])
    w2 = axone.Variable(wd.astype(np.float32))
    b2 = axone.Variable(bd.astype(np.float32))
    _f(x, w2, b2).backward()
    np.testing.assert_allclose(gw.numpy(), w2.grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gb.numpy(), b2.grad, rtol=1e-6, atol=1e-6)
    tw = torch.tensor(wd, dtype=torch.float32, requires_grad=True)
    tb = torch.tensor(bd, dtype=torch.float32, requires_grad=True)
    ty = (torch.tanh(torch.tensor(xd, dtype=torch.float32) @ tw + tb) ** 2).sum() + tw.exp().mean()
    ty.backward()
    np.testing.assert_allclose(gw.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb.numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_leaf_gradients_are_the_variables_grad_arrays_and_not_accumulated():
    r = _rng(1)
    w = axone.Variable(r.normal(size=(3, 2)).astype(np.float32))
    buf = np.full((3, 2), 7.0, np.float32)        # a preallocated (stale) gradient buffer
    w.grad = buf
    x = Tensor(r.normal(size=(5, 3)).astype(np.float32))
    expected = None
    for _ in range(2):
        with axone.GradientTape() as tape:
            loss = ops.sum(ops.matmul(x, w) ** 2)
        (g,) = tape.gradient(loss, [w])
        assert g.data is w.grad and w.grad is buf
        if expected is None:
            expected = 2 * x.data.T @ (x.data @ w.data)
        np.testing.assert_allclose(g.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_model_weights_land_in_flat_gradient_buffer():
    model = axone.Sequential([axone.layers.Input((3,)), axone.layers.Dense(4, activation="relu"),
                              axone.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    y = np.zeros((8, 1), np.float32)
    model.fit(x, y, epochs=1, verbose=0)          # builds the flat buffers
    vars_ = model.trainable_variables
    grads_before = [v.grad for v in vars_]
    with axone.GradientTape() as tape:
        loss = ops.mean((model(x) - y) ** 2)
    grads = tape.gradient(loss, vars_)
    for v, g, gb in zip(vars_, grads, grads_before):
        assert g.data is v.grad
        if gb is not None:
            assert v.grad is gb
    # same as backward()
    ref = [np.array(g.numpy(), copy=True) for g in grads]
    for v in vars_:
        v.grad = None
    ops.mean((model(x) - y) ** 2).backward()
    for v, r in zip(vars_, ref):
        np.testing.assert_allclose(v.grad, r, rtol=1e-5, atol=1e-6)


def test_persistent_tape_gives_independent_results():
    x = Tensor(np.float32(3.0))
    with axone.GradientTape(persistent=True) as t:
        t.watch(x)
        y = x * x
        z = y * y
    dz = t.gradient(z, x)
    dy = t.gradient(y, x)
    dz2 = t.gradient(z, x)
    assert float(dz) == pytest.approx(108.0) and float(dy) == pytest.approx(6.0)
    assert float(dz2) == pytest.approx(108.0)
    assert not x.requires_grad      # the watch ends with the tape


def test_non_persistent_tape_once():
    x = Tensor(np.float32(2.0))
    with axone.GradientTape() as t:
        t.watch(x)
        y = ops.exp(x)
    assert float(t.gradient(y, x)) == pytest.approx(np.exp(2.0), rel=1e-6)
    with pytest.raises(RuntimeError, match="only be called once"):
        t.gradient(y, x)


def test_unwatched_constant_and_unconnected():
    x = Tensor(np.float32(2.0))
    v = axone.Variable(np.float32(1.0))
    u = axone.Variable(np.ones(3, np.float32))
    with axone.GradientTape(persistent=True) as t:
        y = x * v
    assert t.gradient(y, x) is None
    assert t.gradient(y, u) is None
    z = t.gradient(y, u, unconnected_gradients="zero")
    np.testing.assert_array_equal(z.numpy(), np.zeros(3))
    assert float(t.gradient(y, v)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unconnected_gradients"):
        t.gradient(y, v, unconnected_gradients="nan")


def test_sources_nested_structure_and_bad_source():
    a = axone.Variable(np.float32(1.0))
    b = axone.Variable(np.float32(2.0))
    c = axone.Variable(np.float32(3.0))
    with axone.GradientTape(persistent=True) as t:
        y = a * b * c
    g = t.gradient(y, {"a": a, "rest": (b, [c])})
    assert set(g) == {"a", "rest"} and isinstance(g["rest"], tuple) and isinstance(g["rest"][1], list)
    assert [float(g["a"]), float(g["rest"][0]), float(g["rest"][1][0])] == pytest.approx([6, 3, 2])
    with pytest.raises(TypeError, match="source"):
        t.gradient(y, np.ones(3))
    with pytest.raises(TypeError, match="watch"):
        t.watch([1.0])


def test_watch_accessed_variables_false():
    v = axone.Variable(np.float32(2.0))
    w = axone.Variable(np.float32(3.0))
    with axone.GradientTape(watch_accessed_variables=False, persistent=True) as t:
        t.watch(v)
        y = v * w
    assert float(t.gradient(y, v)) == pytest.approx(3.0)
    assert t.gradient(y, w) is None


def test_intermediate_source_output_gradients_and_stop_recording():
    torch = pytest.importorskip("torch")
    xd = _rng(3).normal(size=(4,))
    x = axone.Variable(xd.astype(np.float32))
    og = _rng(4).normal(size=(4,)).astype(np.float32)
    with axone.GradientTape(persistent=True) as t:
        h = ops.sin(x) * 2.0
        y = ops.square(h)
        with t.stop_recording():
            s = h * 3.0
    gh, gx = t.gradient(y, [h, x], output_gradients=og)
    tx = torch.tensor(xd, dtype=torch.float32, requires_grad=True)
    th = torch.sin(tx) * 2.0
    th.retain_grad()
    (torch.square(th) * torch.tensor(og)).sum().backward()
    np.testing.assert_allclose(gh.numpy(), th.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert not s.requires_grad
    assert t.gradient(s, x) is None


def test_jacobian_matches_torch():
    torch = pytest.importorskip("torch")
    xd = _rng(5).normal(size=(3,))
    x = Tensor(xd.astype(np.float32))
    with axone.GradientTape() as t:
        t.watch(x)
        y = ops.tanh(x) * ops.sum(x)
    j = t.jacobian(y, x)
    tj = torch.autograd.functional.jacobian(lambda v: torch.tanh(v) * v.sum(),
                                            torch.tensor(xd, dtype=torch.float32))
    np.testing.assert_allclose(j.numpy(), tj.numpy(), rtol=1e-5, atol=1e-5)


def test_reset_forgets_watches():
    x = Tensor(np.float32(2.0))
    with axone.GradientTape() as t:
        t.watch(x)
        t.reset()
        assert not x.requires_grad
        y = x * x
    assert t.gradient(y, x) is None


def test_sigmoid_derivative_course_style():
    x = ops.linspace(-5.0, 5.0, 100) if hasattr(ops, "linspace") else Tensor(np.linspace(-5, 5, 100, dtype=np.float32))
    with axone.GradientTape() as t:
        t.watch(x)
        y = ops.sigmoid(x)
    dy = t.gradient(y, x)
    s = 1 / (1 + np.exp(-x.numpy().astype(np.float64)))
    np.testing.assert_allclose(dy.numpy(), s * (1 - s), rtol=1e-5, atol=1e-6)


def test_grad_and_value_and_grad_jax_semantics():
    def f(w, x):
        return ops.sum(ops.tanh(ops.matmul(x, w[0])) * w[1])

    r = _rng(6)
    w = [r.normal(size=(3, 2)), r.normal(size=(2,))]
    x = r.normal(size=(4, 3))
    g = axone.grad(f)(w, x)
    assert isinstance(g, list) and len(g) == 2
    tw = [Tensor(a, requires_grad=True) for a in w]
    f(tw, Tensor(x)).backward()
    np.testing.assert_allclose(g[0].numpy(), tw[0].grad, rtol=1e-10)
    np.testing.assert_allclose(g[1].numpy(), tw[1].grad, rtol=1e-10)
    value, (gw, gx) = axone.value_and_grad(f, argnums=(0, 1))(w, x)
    assert float(value) == pytest.approx(float(f([Tensor(a) for a in w], Tensor(x))))
    assert gx.shape == x.shape
    (v2, aux), g2 = axone.value_and_grad(lambda a: (ops.sum(a * a), "aux"), has_aux=True)(3.0)
    assert aux == "aux" and float(g2) == pytest.approx(6.0) and float(v2) == pytest.approx(9.0)
    with pytest.raises(TypeError, match="scalar"):
        axone.grad(lambda a: a * 2)(np.ones(3))
    with pytest.raises(TypeError, match="floating"):
        axone.grad(lambda a: ops.sum(a))(np.ones(3, dtype=np.int64))


def test_tape_gradcheck_float64():
    x = Tensor(_rng(7).normal(size=(5,)))
    with axone.GradientTape() as t:
        t.watch(x)
        y = ops.sum(ops.exp(ops.sin(x)) / (1.0 + ops.square(x)))
    g = t.gradient(y, x).numpy()
    eps = 1e-6
    num = np.zeros(5)
    for i in range(5):
        d = np.zeros(5); d[i] = eps
        f = lambda v: np.sum(np.exp(np.sin(v)) / (1 + v * v))
        num[i] = (f(x.data + d) - f(x.data - d)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-7, atol=1e-8)


def test_format_of_tensors():
    assert f"{Tensor(np.float32(0.123456)):.3f}" == "0.123"
    assert f"{ops.mean(Tensor([1.0, 2.0])):.1f}" == "1.5"
    assert f"{Tensor([1.0, 2.0])}" == str(Tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="format"):
        f"{Tensor([1.0, 2.0]):.2f}"


def test_nested_tapes_give_second_derivatives():
    import axone
    x = axone.Tensor(np.array([0.3, -0.2]))
    with axone.GradientTape() as outer:
        outer.watch(x)
        with axone.GradientTape() as inner:
            inner.watch(x)
            y = axone.ops.sum(axone.ops.tanh(x))
        dy = inner.gradient(y, x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(dy.data, 1 - t ** 2)
    np.testing.assert_allclose(outer.gradient(dy, x).data, -2 * t * (1 - t ** 2))
    with axone.GradientTape() as t:        # after the enclosing tape: first order is fine
        t.watch(x)
        y = axone.ops.sum(axone.ops.tanh(x))
    np.testing.assert_allclose(t.gradient(y, x).data, 1 - np.tanh(x.data) ** 2)
