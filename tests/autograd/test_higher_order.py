"""Second derivatives: gradients taken while an enclosing tape records carry a graph.

Every case compares a Hessian-vector product (the enclosing tape's gradient of ⟨∇f, v⟩) with
float64 central differences of the first derivative along v, and checks that the first
derivative computed with a graph equals the plain first-order one (to rounding).
"""
import numpy as np
import pytest

import axone
from axone import ops
from axone.autograd import GradientTape, Tensor

RNG = np.random.default_rng(7)


def _t(a):
    return Tensor(np.asarray(a, dtype=np.float64))


def _first(f, xs):
    """∇f at xs, first order only (no enclosing tape)."""
    xs = [_t(x.data) for x in xs]
    with GradientTape() as t:
        for x in xs:
            t.watch(x)
        y = f(*xs)
    return [np.zeros_like(x.data) if g is None else np.array(g.data) for x, g in
            zip(xs, t.gradient(y, xs))]


def _hvp(f, xs, vs):
    """(∇f, H·v) at xs by nested tapes."""
    with GradientTape() as outer:
        for x in xs:
            outer.watch(x)
        with GradientTape() as inner:
            for x in xs:
                inner.watch(x)
            y = f(*xs)
        gs = inner.gradient(y, xs)
        dot = ops.sum(ops.stack([ops.sum(g * _t(v)) for g, v in zip(gs, vs) if g is not None]))
    return gs, outer.gradient(dot, xs, unconnected_gradients="zero")


def _check(f, shapes, positive=False, rtol=1e-6, atol=1e-7):
    xs = []
    for s in shapes:
        a = RNG.normal(size=s)
        if positive:
            a = np.abs(a) + 0.5
        xs.append(_t(a))
    vs = [RNG.normal(size=s) for s in shapes]
    gs, hv = _hvp(f, xs, vs)
    plain = _first(f, xs)
    for g, p in zip(gs, plain):
        if g is not None:
            np.testing.assert_allclose(g.data, p, rtol=1e-13, atol=1e-15)
    eps = 1e-6
    up = _first(f, [_t(x.data + eps * v) for x, v in zip(xs, vs)])
    down = _first(f, [_t(x.data - eps * v) for x, v in zip(xs, vs)])
    for h, u, d in zip(hv, up, down):
        np.testing.assert_allclose(h.data, (u - d) / (2 * eps), rtol=rtol, atol=atol)


UNARY = {
    "tanh": ops.tanh, "sigmoid": ops.sigmoid, "exp": ops.exp, "softplus": ops.softplus,
    "sin": ops.sin, "cos": ops.cos, "square": ops.square, "negative": ops.negative,
    "power3": lambda x: x ** 3, "elu": ops.elu, "selu": ops.selu,
    "leaky_relu": lambda x: ops.leaky_relu(x, 0.1) * x, "relu": lambda x: ops.relu(x) * x,
    "gelu": lambda x: ops.gelu(x), "gelu_exact": lambda x: ops.gelu(x, approximate=False),
    "silu": ops.silu, "softsign": ops.softsign, "erf": ops.erf,
    "abs": lambda x: ops.abs(x) * x, "clip": lambda x: ops.clip(x, -0.5, 0.5) * x,
    "hard_sigmoid": lambda x: ops.hard_sigmoid(x) * x,
    "activation_tanh": axone.activations.tanh,
}
POSITIVE = {"log": ops.log, "sqrt": ops.sqrt, "rsqrt": ops.rsqrt,
            "pow_both": lambda x: x ** (x * 0.5)}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_second_derivative(name):
    f = UNARY[name]
    _check(lambda x: ops.sum(f(x) * f(x * 0.7)), [(3, 4)])


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_unary_second_derivative_positive_domain(name):
    f = POSITIVE[name]
    _check(lambda x: ops.sum(f(x) * ops.tanh(x)), [(5,)], positive=True)


BINARY = {
    "add": lambda a, b: ops.tanh(a + b) * a,
    "subtract": lambda a, b: ops.sin(a - b) * b,
    "multiply": lambda a, b: a * b * a,
    "divide": lambda a, b: a / (b * b + 1),
    "power": lambda a, b: (a * a + 1) ** ops.tanh(b),
    "maximum": lambda a, b: ops.maximum(a, b) * a * b,
    "minimum": lambda a, b: ops.minimum(a, b) * a * b,
    "where": lambda a, b: ops.where(a.data > 0, a * a * b, ops.sin(b)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(3, 4), (4,)], [(1, 4), (3, 1)]])
def test_binary_second_derivative_with_broadcasting(name, shapes):
    f = BINARY[name]
    _check(lambda a, b: ops.sum(f(a, b)), shapes)


COMPOSITE = {
    "matmul": (lambda a, b: ops.sum(ops.tanh(a @ b) ** 2), [(3, 4), (4, 2)]),
    "matmul_batched": (lambda a, b: ops.sum(ops.sin(ops.matmul(a, b))), [(2, 3, 4), (4, 2)]),
    "matmul_vec": (lambda a, b: ops.sum(ops.exp(ops.matmul(a, b) * 0.3)), [(3, 4), (4,)]),
    "dot_vec": (lambda a, b: ops.tanh(ops.matmul(a, b)), [(4,), (4,)]),
    "tensordot": (lambda a, b: ops.sum(ops.tanh(ops.tensordot(a, b, axes=([0, 2], [1, 0])))),
                  [(2, 3, 4), (4, 2, 5)]),
    "dense_relu": (lambda x, w, b: ops.sum(ops.nn.dense(x, w, b, relu=True) ** 2),
                   [(5, 3), (3, 4), (4,)]),
    "dense_tanh": (lambda x, w, b: ops.sum(ops.tanh(ops.nn.dense(x, w, b))),
                   [(2, 5, 3), (3, 4), (4,)]),
    "sum_mean": (lambda x: ops.sum(ops.mean(x * x, axis=1) * ops.sum(ops.sin(x), axis=1)),
                 [(3, 4)]),
    "mean_keepdims": (lambda x: ops.sum(ops.tanh(x - ops.mean(x, axis=0, keepdims=True))),
                      [(3, 4)]),
    "reshape_transpose": (lambda x: ops.sum(ops.tanh(ops.transpose(ops.reshape(x, (2, 6)))
                                                     @ ops.reshape(x, (2, 6)))), [(3, 4)]),
    "transpose_axes": (lambda x: ops.sum(ops.sin(ops.transpose(x, (2, 0, 1))) *
                                         ops.transpose(x, (2, 0, 1)) ** 2), [(2, 3, 4)]),
    "getitem_basic": (lambda x: ops.sum(ops.tanh(x[1:, ::2]) * x[:2, 1::2]), [(3, 4)]),
    "getitem_advanced": (lambda x: ops.sum(ops.sin(x[np.array([0, 2, 0])]) ** 2), [(3, 4)]),
    "take": (lambda x: ops.sum(ops.take(x, np.array([1, 1, 3]), axis=1) ** 3), [(3, 4)]),
    "concatenate": (lambda a, b: ops.sum(ops.tanh(ops.concatenate([a, b * a], axis=1)) ** 2),
                    [(3, 2), (3, 2)]),
    "stack": (lambda a, b: ops.sum(ops.sin(ops.stack([a, a * b], axis=1)) * a[:, None]),
              [(3,), (3,)]),
    "pad": (lambda x: ops.sum(ops.tanh(ops.pad(x, [[1, 0], [0, 2]])) ** 2), [(2, 3)]),
    "softmax": (lambda x: ops.sum(ops.softmax(x, axis=-1) * np.arange(4.0) ** 2), [(3, 4)]),
    "softmax_axis0": (lambda x: ops.sum(ops.softmax(x, axis=0) ** 2), [(3, 4)]),
    "log_softmax": (lambda x: ops.sum(ops.log_softmax(x) * np.arange(4.0)), [(3, 4)]),
    "logsumexp": (lambda x: ops.sum(ops.logsumexp(x, axis=1) ** 2), [(3, 4)]),
    "var_std": (lambda x: ops.sum(ops.var(x, axis=1) * ops.std(x, axis=1)), [(3, 4)]),
    "max": (lambda x: ops.sum(ops.max(x, axis=1) ** 3), [(3, 4)]),
    "dropout": (lambda x: (axone.utils.set_random_seed(3),
                           ops.sum(ops.tanh(ops.nn.dropout(x * x, 0.4)) ** 2))[1], [(4, 5)]),
    "expand_squeeze": (lambda x: ops.sum(ops.squeeze(ops.expand_dims(x, 1)) ** 3), [(3, 4)]),
    "categorical_ce_logits": (lambda z: ops.sum(ops.nn.categorical_crossentropy(
        np.eye(4)[[0, 3, 1]], z, from_logits=True)), [(3, 4)]),
    "categorical_ce_probs": (lambda z: ops.sum(ops.nn.categorical_crossentropy(
        np.eye(4)[[0, 3, 1]], ops.softmax(z))), [(3, 4)]),
    "sparse_ce_logits": (lambda z: ops.sum(ops.nn.sparse_categorical_crossentropy(
        np.array([2, 0, 1]), z, from_logits=True)), [(3, 4)]),
    "binary_ce_logits": (lambda z: ops.sum(ops.nn.binary_crossentropy(
        np.array([[0.0, 1.0], [1.0, 0.3]]), z, from_logits=True)), [(2, 2)]),
}


@pytest.mark.parametrize("name", sorted(COMPOSITE))
def test_composite_second_derivative(name):
    f, shapes = COMPOSITE[name]
    _check(f, shapes)


def test_activation_second_derivatives_closed_form():
    x = _t(np.linspace(-3, 3, 13))
    closed = {
        ops.tanh: lambda v: -2 * np.tanh(v) * (1 - np.tanh(v) ** 2),
        ops.sigmoid: lambda v: (s := 1 / (1 + np.exp(-v))) * (1 - s) * (1 - 2 * s),
        ops.exp: np.exp,
        ops.softplus: lambda v: (s := 1 / (1 + np.exp(-v))) * (1 - s),
    }
    for f, d2 in closed.items():
        with GradientTape() as t2:
            t2.watch(x)
            with GradientTape() as t1:
                t1.watch(x)
                y = f(x)
            dy = t1.gradient(y, x)
        np.testing.assert_allclose(t2.gradient(dy, x).data, d2(x.data), rtol=1e-12, atol=1e-14)


def test_persistent_tape_hessian_by_jacobian():
    a = RNG.normal(size=(3, 3))
    x = _t(RNG.normal(size=3))
    with GradientTape(persistent=True) as t:
        t.watch(x)
        y = ops.sum(ops.tanh(ops.matmul(_t(a), x)) ** 2)
        g = t.gradient(y, x)               # inside the block: recorded on the same tape
    h = t.jacobian(g, x).data
    eps = 1e-6
    num = np.stack([(_first(lambda v: ops.sum(ops.tanh(ops.matmul(_t(a), v)) ** 2),
                            [_t(x.data + eps * e)])[0] -
                     _first(lambda v: ops.sum(ops.tanh(ops.matmul(_t(a), v)) ** 2),
                            [_t(x.data - eps * e)])[0]) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(h, num, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h, h.T, rtol=1e-10, atol=1e-12)
    # the same tape can still give several gradients of the gradient
    np.testing.assert_allclose(t.gradient(g[0], x).data, h[0], rtol=1e-12)


def test_jacobian_inside_an_enclosing_tape():
    x = _t([0.2, -0.4])
    with GradientTape() as outer:
        outer.watch(x)
        with GradientTape() as inner:
            inner.watch(x)
            y = ops.sin(x) * x[0]
        j = inner.jacobian(y, x)
        s = ops.sum(j * j)
    g = outer.gradient(s, x).data
    eps = 1e-6

    def jac(v):
        return np.array([[np.cos(v[0]) * v[0] + np.sin(v[0]), 0], [np.sin(v[1]), np.cos(v[1]) * v[0]]])
    num = [(np.sum(jac(x.data + eps * e) ** 2) - np.sum(jac(x.data - eps * e) ** 2)) / (2 * eps)
           for e in np.eye(2)]
    np.testing.assert_allclose(jac(x.data), j.data, rtol=1e-12)
    np.testing.assert_allclose(g, num, rtol=1e-6)


def test_grad_of_grad_and_third_derivative():
    f = lambda x: ops.sum(ops.tanh(x))                       # noqa: E731
    x = np.array([0.3, -1.2], dtype=np.float64)
    t = np.tanh(x)
    d1 = axone.grad(f)(x)
    d2 = axone.grad(lambda v: ops.sum(axone.grad(f)(v)))(x)
    d3 = axone.grad(lambda v: ops.sum(axone.grad(lambda u: ops.sum(axone.grad(f)(u)))(v)))(x)
    np.testing.assert_allclose(d1.data, 1 - t ** 2, rtol=1e-12)
    np.testing.assert_allclose(d2.data, -2 * t * (1 - t ** 2), rtol=1e-12)
    np.testing.assert_allclose(d3.data, (1 - t ** 2) * (6 * t ** 2 - 2), rtol=1e-12)
    (val, g) = axone.value_and_grad(lambda v: axone.value_and_grad(f)(v)[0] * 2)(x)
    np.testing.assert_allclose(val.data, 2 * t.sum())
    np.testing.assert_allclose(g.data, 2 * (1 - t ** 2))


def test_three_nested_tapes():
    x = _t([0.5, -0.3])
    with GradientTape() as t3:
        t3.watch(x)
        with GradientTape() as t2:
            t2.watch(x)
            with GradientTape() as t1:
                t1.watch(x)
                y = ops.sum(ops.sin(x) * x)
            d1 = t1.gradient(y, x)
        d2 = t2.gradient(d1, x)
    d3 = t3.gradient(d2, x).data
    v = x.data
    np.testing.assert_allclose(d3, -3 * np.sin(v) - v * np.cos(v), rtol=1e-12)


def test_tf_alias_gradient_tape():
    import importlib
    tf = importlib.import_module("axone.compat.tf")
    x = tf.Variable(np.array([0.4, 1.5], dtype=np.float32))
    with tf.GradientTape() as t2:
        with tf.GradientTape() as t1:
            y = ops.sum(ops.sigmoid(x))
        dy = t1.gradient(y, x)
    s = 1 / (1 + np.exp(-x.data.astype(np.float64)))
    np.testing.assert_allclose(dy.data, s * (1 - s), rtol=1e-6)
    d2 = t2.gradient(dy, x)
    np.testing.assert_allclose(d2.data, s * (1 - s) * (1 - 2 * s), rtol=1e-5, atol=1e-7)
    # each tape's first gradient is written into the variable's .grad, the enclosing one last
    np.testing.assert_array_equal(x.grad, d2.data)


def test_first_order_unchanged_outside_and_under_stop_recording():
    v = axone.Variable(np.array([0.3, 0.7]), dtype="float64")
    with GradientTape() as t:
        y = ops.sum(ops.tanh(v))
    g = t.gradient(y, [v])[0]
    assert g.grad_fn is None and g.data is v.grad
    with GradientTape() as outer:
        with GradientTape() as inner:
            y = ops.sum(ops.tanh(v))
        with outer.stop_recording():
            g = inner.gradient(y, v)
    assert g.grad_fn is None and not g.requires_grad
    assert outer.gradient(ops.sum(v), v) is not None
    # a non-persistent tape asked inside its own block gives a plain first derivative
    with GradientTape() as t:
        y = ops.sum(ops.tanh(v))
        g = t.gradient(y, v)
    assert g.grad_fn is None


def test_op_without_second_derivative_is_refused_by_name():
    x = _t([0.2, 0.9])
    with GradientTape() as outer:
        outer.watch(x)
        with GradientTape() as inner:
            inner.watch(x)
            y = ops.sum(ops.nn.relu6(x * 4.0) * x)
        dy = inner.gradient(y, x)          # the first derivative is still right
        np.testing.assert_allclose(dy.data, _first(lambda v: ops.sum(ops.nn.relu6(v * 4.0) * v),
                                                   [x])[0])
        s = ops.sum(dy)
    with pytest.raises(NotImplementedError, match="second derivatives through relu6 are not"):
        outer.gradient(s, x)


def test_op_without_second_derivative_off_the_path_is_fine():
    x, c = _t([0.2, 0.9]), _t([1.0, 2.0])
    with GradientTape() as outer:
        outer.watch(x)
        with GradientTape() as inner:
            inner.watch([x, c])
            y = ops.sum(ops.tanh(x) * ops.nn.relu6(c))
        dx, dc = inner.gradient(y, [x, c])
    # dx = relu6(c)·(1 − tanh²x): relu6's node is not differentiated again
    np.testing.assert_allclose(outer.gradient(ops.sum(dx), x).data,
                               np.minimum(c.data, 6) * -2 * np.tanh(x.data) *
                               (1 - np.tanh(x.data) ** 2), rtol=1e-12)


def test_output_gradients_tensor_is_differentiated():
    x, w = _t([0.3, -0.6]), _t([2.0, 3.0])
    with GradientTape() as outer:
        outer.watch([x, w])
        with GradientTape() as inner:
            inner.watch(x)
            y = ops.sin(x)
        g = inner.gradient(y, x, output_gradients=w)
    gx, gw = outer.gradient(ops.sum(g), [x, w])
    np.testing.assert_allclose(gw.data, np.cos(x.data), rtol=1e-12)
    np.testing.assert_allclose(gx.data, -w.data * np.sin(x.data), rtol=1e-12)


def _mlp_torch_hvp(loss_kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 3))
    sizes = [(3, 5), (5, 4), (4, 3)]
    ws = [rng.normal(size=s) * 0.7 for s in sizes]
    bs = [rng.normal(size=s[1]) * 0.1 for s in sizes]
    vs = [rng.normal(size=p.shape) for p in ws + bs]
    target = np.eye(3)[[0, 2, 1, 1, 0, 2]]

    def fwd(lib, params, x):
        w1, w2, w3, b1, b2, b3 = params
        if lib == "axone":
            h = ops.tanh(ops.nn.dense(x, w1, b1))
            h = ops.nn.dense(h, w2, b2, relu=True)
            z = ops.nn.dense(h, w3, b3)
            if loss_kind == "mse":
                return ops.mean(ops.square(ops.softplus(z) - _t(target)))
            return ops.mean(ops.nn.categorical_crossentropy(_t(target), z, from_logits=True))
        h = torch.tanh(x @ w1 + b1)
        h = torch.relu(h @ w2 + b2)
        z = h @ w3 + b3
        if loss_kind == "mse":
            return torch.mean((torch.nn.functional.softplus(z) - torch.tensor(target)) ** 2)
        return torch.nn.functional.cross_entropy(z, torch.tensor(target))

    tp = [torch.tensor(p, requires_grad=True) for p in ws + bs]
    loss = fwd("torch", tp, torch.tensor(x))
    tg = torch.autograd.grad(loss, tp, create_graph=True)
    thv = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(tg, vs)), tp)

    ap = [axone.Variable(p, dtype="float64") for p in ws + bs]
    with GradientTape() as outer:
        with GradientTape() as inner:
            loss_a = fwd("axone", ap, _t(x))
        ag = inner.gradient(loss_a, ap)
        dot = ops.sum(ops.stack([ops.sum(g * _t(v)) for g, v in zip(ag, vs)]))
    ahv = outer.gradient(dot, ap)
    np.testing.assert_allclose(loss_a.data, loss.detach().numpy(), rtol=1e-12)
    for a, t in zip(ag, tg):
        np.testing.assert_allclose(a.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, t in zip(ahv, thv):
        np.testing.assert_allclose(a.data, t.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("loss_kind", ["mse", "crossentropy"])
def test_mlp_hessian_vector_product_against_torch(loss_kind):
    _mlp_torch_hvp(loss_kind)


def test_mlp_hessian_vector_product_float32_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    w = (rng.normal(size=(3, 2)) * 0.5).astype(np.float32)
    v = rng.normal(size=(3, 2)).astype(np.float32)
    tw = torch.tensor(w, requires_grad=True)
    tl = torch.sigmoid(torch.tensor(x) @ tw).pow(2).sum()
    (tg,) = torch.autograd.grad(tl, tw, create_graph=True)
    (th,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), tw)
    aw = axone.Variable(w)
    with GradientTape() as outer:
        with GradientTape() as inner:
            al = ops.sum(ops.sigmoid(ops.matmul(Tensor(x), aw)) ** 2)
        ag = inner.gradient(al, aw)
        d = ops.sum(ag * Tensor(v))
    ah = outer.gradient(d, aw)
    assert ag.data.dtype == np.float32 and ah.data.dtype == np.float32
    np.testing.assert_allclose(ah.data, th.numpy(), rtol=1e-4, atol=1e-5)


def test_jacobian_with_a_graph_several_sources_and_unconnected():
    a, b, c = _t([0.3, -0.5]), _t([1.2]), _t([2.0])
    with GradientTape() as outer:
        outer.watch([a, b])
        with GradientTape(persistent=True) as inner:
            inner.watch([a, b, c])
            y = ops.tanh(a * b)
        ja, jb, jc = inner.jacobian(y, [a, b, c])
        jz = inner.jacobian(y, [c], unconnected_gradients="zero")[0]
        s = ops.sum(ja) + ops.sum(jb * jb)
    assert jc is None and jz.shape == (2, 1) and not jz.data.any()
    ga, gb = outer.gradient(s, [a, b])
    eps = 1e-6

    def s_of(av, bv):
        d = 1 - np.tanh(av * bv) ** 2
        return np.sum(d * bv) + np.sum((d * av) ** 2)
    num_a = [(s_of(a.data + eps * e, b.data) - s_of(a.data - eps * e, b.data)) / (2 * eps)
             for e in np.eye(2)]
    num_b = (s_of(a.data, b.data + eps) - s_of(a.data, b.data - eps)) / (2 * eps)
    np.testing.assert_allclose(ga.data, num_a, rtol=1e-6)
    np.testing.assert_allclose(gb.data, [num_b], rtol=1e-6)


def test_course_activation_derivatives_through_the_tf_alias():
    import importlib
    tf = importlib.import_module("axone.compat.tf")

    def tanh(x):                       # the course's own formula, through tf.exp
        return 2. / (1. + tf.exp(-2 * x)) - 1.

    x = tf.constant(np.linspace(-4, 4, 17))
    with tf.GradientTape(persistent=True) as outer:
        outer.watch(x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ys = {"tanh": tanh(x), "sigmoid": tf.math.sigmoid(x), "relu": tf.nn.relu(x),
                  "softplus": tf.nn.softplus(x)}
        d1 = {k: tape.gradient(y, x) for k, y in ys.items()}
    d2 = {k: outer.gradient(d, x) for k, d in d1.items()}
    v = x.numpy().astype(np.float64)
    t, s = np.tanh(v), 1 / (1 + np.exp(-v))
    np.testing.assert_allclose(d1["tanh"].numpy(), 1 - t ** 2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d1["sigmoid"].numpy(), s * (1 - s), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(d1["relu"].numpy(), (v > 0).astype(np.float32))
    np.testing.assert_allclose(d1["softplus"].numpy(), s, rtol=1e-5)
    np.testing.assert_allclose(d2["tanh"].numpy(), -2 * t * (1 - t ** 2), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(d2["sigmoid"].numpy(), s * (1 - s) * (1 - 2 * s), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_array_equal(d2["relu"].numpy(), np.zeros(17))
    np.testing.assert_allclose(d2["softplus"].numpy(), s * (1 - s), rtol=1e-5, atol=1e-7)


def test_hessian_vector_product_of_a_sequential_model():
    from axone import backend, layers
    prev = backend.floatx()
    backend.set_floatx("float64")
    try:
        axone.utils.set_random_seed(1)
        model = axone.Sequential([layers.Input((3,)), layers.Dense(4, activation="relu"),
                                  layers.Dense(5, activation="tanh"),
                                  layers.Dense(3, activation="softmax")])
    finally:
        backend.set_floatx(prev)
    x = RNG.normal(size=(6, 3))
    y = np.eye(3)[[0, 1, 2, 1, 0, 2]]
    tv = model.trainable_variables
    assert all(v.dtype == np.float64 for v in tv)
    vs = [RNG.normal(size=v.shape) for v in tv]

    def grads():
        with GradientTape() as t:
            loss = ops.mean(axone.losses.categorical_crossentropy(y, model(x)))
        return [np.array(g.data) for g in t.gradient(loss, tv)]
    with GradientTape() as outer:
        with GradientTape() as inner:
            loss = ops.mean(axone.losses.categorical_crossentropy(y, model(x)))
        gs = inner.gradient(loss, tv)
        for g, v in zip(gs, tv):       # the inner tape wrote each first gradient into .grad
            np.testing.assert_array_equal(v.value.grad, g.data)
        dot = ops.sum(ops.stack([ops.sum(g * _t(v)) for g, v in zip(gs, vs)]))
    hv = [np.array(h.data) for h in outer.gradient(dot, tv)]   # .grad is written again below
    eps = 1e-6
    base = [v.numpy().copy() for v in tv]
    for v, b, d in zip(tv, base, vs):
        v.assign(b + eps * d)
    up = grads()
    for v, b, d in zip(tv, base, vs):
        v.assign(b - eps * d)
    down = grads()
    for v, b in zip(tv, base):
        v.assign(b)
    for h, u, d in zip(hv, up, down):
        np.testing.assert_allclose(h, (u - d) / (2 * eps), rtol=1e-5, atol=1e-8)


def test_intermediate_source_with_a_graph():
    x = _t([0.4, -0.7])
    with GradientTape() as outer:
        outer.watch(x)
        with GradientTape() as inner:
            inner.watch(x)
            h = ops.tanh(x)
            y = ops.sum(h * h * h)
        dh = inner.gradient(y, h)                    # 3h², a function of x through h
    np.testing.assert_allclose(dh.data, 3 * np.tanh(x.data) ** 2, rtol=1e-12)
    t = np.tanh(x.data)
    np.testing.assert_allclose(outer.gradient(dh, x).data, 6 * t * (1 - t ** 2), rtol=1e-12)


def test_bad_output_gradients_with_a_graph():
    x = _t([0.4, -0.7])
    with GradientTape() as outer:
        outer.watch(x)
        with GradientTape() as inner:
            inner.watch(x)
            y = ops.sin(x)
        with pytest.raises(ValueError, match=r"output_gradients must have the target's shape"):
            inner.gradient(y, x, output_gradients=np.ones(3))


def test_tf_guide_hessian_of_a_layer_kernel_against_torch():
    torch = pytest.importorskip("torch")
    import importlib
    tf = importlib.import_module("axone.compat.tf")
    from axone import layers
    xi = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    axone.utils.set_random_seed(2)
    layer1 = layers.Dense(8, activation=tf.nn.relu)
    layer2 = layers.Dense(6, activation=tf.nn.relu)
    with tf.GradientTape() as t2:
        with tf.GradientTape() as t1:
            h = layer2(layer1(tf.constant(xi)))
            loss = tf.reduce_mean(h ** 2)
        g = t1.gradient(loss, layer1.kernel)
    hess = t2.jacobian(g, layer1.kernel)
    assert hess.shape == (5, 8, 5, 8)
    b1, w2, b2 = (torch.tensor(v.numpy()) for v in (layer1.bias, layer2.kernel, layer2.bias))

    def f(w1):
        return torch.mean(torch.relu(torch.relu(torch.tensor(xi) @ w1 + b1) @ w2 + b2) ** 2)
    th = torch.autograd.functional.hessian(f, torch.tensor(layer1.kernel.numpy()))
    np.testing.assert_allclose(hess.numpy(), th.numpy(), rtol=1e-4, atol=1e-6)
