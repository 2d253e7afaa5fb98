"""keras.ops core ops (axone/ops/core.py): control flow, slicing / scattering, segment
reductions, custom_gradient, dtype helpers, rearrange, extract_sequences, in_top_k, cdist and
the complex views, against Keras 3 on its torch backend and float64 finite differences."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import keras
from keras import ops as K

from axone import Tensor, ops
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _distinct(*shape, seed=0):
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.37 - n * 0.1).reshape(shape)


IDX = np.array([[0, 1], [2, 0], [0, 1], [1, 2]])
SEG = np.array([0, 0, 2, 2, 1, 0, 3])

CASES = [
    ("slice", lambda o, x: o.slice(x, (1, 0, 2), (2, 3, 2)), [_x(3, 4, 5)]),
    ("slice_update", lambda o, x, u: o.slice_update(x, (1, 2), u), [_x(4, 5), _x(2, 3, seed=1)]),
    ("scatter", lambda o, v: o.scatter(IDX, v, (3, 3)), [_x(4)]),
    ("scatter_rows", lambda o, v: o.scatter(np.array([[2], [0], [2]]), v, (4, 3)), [_x(3, 3)]),
    ("scatter_update", lambda o, x, u: o.scatter_update(x, IDX[:3][[0, 1]], u),
     [_x(3, 3), _x(2, seed=1)]),
    ("scatter_update_add", lambda o, x, u: o.scatter_update(x, IDX, u, reduction="add"),
     [_x(3, 3), _x(4, seed=1)]),
    ("scatter_update_mul", lambda o, x, u: o.scatter_update(x, IDX, u, reduction="mul"),
     [_x(3, 3), _x(4, seed=1)]),
    ("scatter_update_max", lambda o, x, u: o.scatter_update(x, IDX, u, reduction="max"),
     [_distinct(3, 3), _distinct(4, seed=1) + 0.05]),
    ("scatter_update_min", lambda o, x, u: o.scatter_update(x, IDX, u, reduction="min"),
     [_distinct(3, 3), _distinct(4, seed=1) + 0.05]),
    ("segment_sum", lambda o, d: o.segment_sum(d, SEG), [_x(7, 3)]),
    ("segment_sum_n", lambda o, d: o.segment_sum(d, SEG, num_segments=3), [_x(7)]),
    ("segment_max", lambda o, d: o.segment_max(d, SEG), [_distinct(7, 2)]),
    ("segment_min", lambda o, d: o.segment_min(d, SEG, num_segments=4), [_distinct(7, 2)]),
    ("segment_prod", lambda o, d: o.segment_prod(d, SEG), [_x(7, 2)]),
    ("extract_sequences", lambda o, x: o.extract_sequences(x, 4, 3), [_x(2, 11)]),
    ("cdist", lambda o, x, y: o.cdist(x, y), [_x(2, 4, 3), _x(2, 5, 3, seed=1)]),
    ("rearrange_split", lambda o, x: o.rearrange(x, "b (h w) c -> b h w c", h=2), [_x(2, 6, 3)]),
    ("rearrange_merge", lambda o, x: o.rearrange(x, "b h w c -> (b w) (c h)"), [_x(2, 3, 4, 2)]),
    ("rearrange_transpose", lambda o, x: o.rearrange(x, "a b c -> c a b"), [_x(2, 3, 4)]),
    ("cond", lambda o, x: o.cond(o.sum(x) > 0, lambda: x * 2, lambda: o.exp(x)), [_x(3)]),
    ("cond_false", lambda o, x: o.cond(False, lambda: x * 2, lambda: o.exp(x)), [_x(3)]),
    ("switch", lambda o, x: o.switch(5, [lambda a: a * 2, lambda a: o.sin(a)], x), [_x(3)]),
    ("fori_loop", lambda o, x: o.fori_loop(0, 3, lambda i, v: v * o.tanh(v) + i, x), [_x(4)]),
    ("while_loop", lambda o, x: o.while_loop(lambda v, i: i < 3,
                                             lambda v, i: (o.sin(v) * 2, i + 1), (x, 0))[0],
     [_x(4)]),
    ("scan", lambda o, c, xs: (lambda r: o.concatenate([o.expand_dims(r[0], 0), r[1]]))(
        o.scan(lambda c, x: (c * o.tanh(x) + x, c * x), c, xs)), [_x(3), _x(4, 3, seed=1)]),
    ("scan_reverse", lambda o, c, xs: o.scan(lambda c, x: (c + x * c, o.sin(c)), c, xs,
                                             reverse=True)[1], [_x(3), _x(4, 3, seed=1)]),
    ("map", lambda o, xs: o.map(lambda x: o.sum(x * x), xs), [_x(4, 3)]),
    ("vectorized_map", lambda o, xs: o.vectorized_map(lambda x: o.exp(x) * x, xs), [_x(4, 3)]),
    ("associative_scan", lambda o, x: o.associative_scan(lambda a, b: a + b, x), [_x(5, 3)]),
    ("associative_scan_mul_rev", lambda o, x: o.associative_scan(lambda a, b: a * b, x,
                                                                 reverse=True, axis=1),
     [_x(2, 6)]),
    ("associative_scan_pair",
     lambda o, a, b: o.associative_scan(lambda p, q: (p[0] * q[0], p[1] * q[0] + q[1]),
                                        (a, b))[1], [_x(7, 2), _x(7, 2, seed=1)]),
]


# Keras's torch backend writes these in place in a loop, which torch cannot differentiate:
# their gradients are checked against finite differences only.
NO_TORCH_GRADIENT = {"scatter_update_mul", "scatter_update_max", "scatter_update_min"}


def _to_np(out):
    if isinstance(out, Tensor):
        return out.data
    return out.detach().cpu().numpy()


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_keras(name, fn, inputs):
    ax = [Tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    tx = [torch.tensor(x.astype(np.float32), requires_grad=name not in NO_TORCH_GRADIENT)
          for x in inputs]
    got, want = fn(ops, *ax), fn(K, *tx)
    g_np, w_np = _to_np(got), _to_np(want)
    assert g_np.shape == w_np.shape, f"{name}: shape {g_np.shape} vs Keras {w_np.shape}"
    np.testing.assert_allclose(g_np, w_np, rtol=1e-5, atol=1e-5, err_msg=name)
    if name in NO_TORCH_GRADIENT:
        return
    weight = np.random.default_rng(7).standard_normal(w_np.shape).astype(np.float32)
    ops.sum(got * weight).backward()
    (want * torch.tensor(weight)).sum().backward()
    for i, (a, t) in enumerate(zip(ax, tx)):
        tg = np.zeros(a.shape, np.float32) if t.grad is None else t.grad.numpy()
        ag = np.zeros(a.shape, np.float32) if a.grad is None else np.asarray(a.grad)
        np.testing.assert_allclose(ag, tg, rtol=1e-4, atol=1e-4, err_msg=f"{name}: grad x{i}")


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_finite_differences(name, fn, inputs):
    r = check_gradients(lambda *xs: fn(ops, *xs), *inputs)
    assert r.max_error < 1e-6, f"{name}: relative error {r.max_error} at {r.worst_input}"


def test_scan_structures_and_length():
    def f(carry, x):
        a, b = carry
        return (a + x["u"], b * 2), {"s": a * x["u"], "t": b}
    xs = {"u": np.arange(4.0).reshape(4, 1) * np.ones((4, 2))}
    init = (np.zeros(2), np.ones(2))
    c, ys = ops.scan(f, init, xs)
    kc, kys = K.scan(f, tuple(torch.tensor(v) for v in init),
                     {"u": torch.tensor(xs["u"])})
    np.testing.assert_allclose(c[0].data, kc[0].numpy())
    np.testing.assert_allclose(ys["s"].data, kys["s"].numpy())
    np.testing.assert_allclose(ys["t"].data, kys["t"].numpy())
    c, ys = ops.scan(lambda c, x: (c + 1, None), np.zeros(2), length=3)
    kc, kys = K.scan(lambda c, x: (c + 1, None), torch.zeros(2, dtype=torch.float64), length=3)
    np.testing.assert_allclose(c.data, kc.numpy())
    assert ys[0].shape == tuple(kys[0].shape) == (3, 2)


def test_while_loop_maximum_iterations_and_single_var():
    out = ops.while_loop(lambda v: ops.sum(v) < 100, lambda v: v * 2, np.ones(2),
                         maximum_iterations=3)
    np.testing.assert_allclose(out.data, 8.0)
    kout = K.while_loop(lambda v: K.sum(v) < 100, lambda v: v * 2, torch.ones(2),
                        maximum_iterations=3)
    np.testing.assert_allclose(out.data, kout.numpy())


def test_custom_gradient_matches_keras():
    def make(o):
        @o.custom_gradient
        def log1pexp(x):
            e = o.exp(x)

            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return o.multiply(upstream, 1.0 - 1.0 / o.add(1, e))
            return o.log(1 + e), grad
        return log1pexp
    x = np.array([0.5, 100.0, -3.0], np.float32)
    a = Tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    ya, yt = make(ops)(a), make(K)(t)
    np.testing.assert_allclose(ya.data, yt.detach().numpy(), rtol=1e-6)
    ops.sum(ya * 2).backward()
    (yt * 2).sum().backward()
    np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-6)
    assert np.isfinite(a.grad).all()

    @ops.custom_gradient
    def two(x, y, scale):
        return x * y * scale, lambda x_, y_, upstream: (upstream * 0.0 + 1.0, upstream * 2.0)
    xa, yb = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    ops.sum(two(xa, yb, 3.0)).backward()
    np.testing.assert_allclose(xa.grad, 1.0)
    np.testing.assert_allclose(yb.grad, 2.0)


def test_dtype_helpers_match_keras():
    for v in (np.ones(2, "float32"), np.ones(2, "int32"), np.ones(2, bool), np.ones(2, "float64")):
        assert ops.dtype(v) == K.dtype(torch.tensor(v))
    assert ops.dtype(Tensor(np.ones(2, "float16"))) == "float16"
    assert ops.is_tensor(Tensor(1.0)) and not ops.is_tensor(np.ones(2))
    x = np.array([-1e10, -200.5, -3.7, 0.0, 3.7, 254.9, 300.0, 1e10, np.inf, -np.inf], "float32")
    for dt in ("uint8", "int8", "int32", "float16"):
        got = ops.saturate_cast(x, dt)
        want = K.saturate_cast(torch.tensor(x), dt).numpy()
        assert got.dtype == want.dtype, dt
        np.testing.assert_array_equal(got.data, want, err_msg=dt)
    np.testing.assert_array_equal(ops.saturate_cast(np.array([300, -4], "int32"), "uint8").data,
                                  [255, 0])
    t = Tensor(np.array([0.5, 1e6]), requires_grad=True)
    ops.sum(ops.saturate_cast(t, "float16")).backward()
    np.testing.assert_array_equal(t.grad, [1.0, 0.0])


def test_in_top_k_matches_keras():
    p = _x(6, 5).astype(np.float32)
    p[2] = 1.0                                    # ties count as in the top k
    t = np.array([0, 4, 3, 1, 2, 2])
    assert ops.in_top_k(t, p, 7).data.all()        # k beyond the classes: every target
    for k in (1, 2, 5):
        np.testing.assert_array_equal(ops.in_top_k(t, p, k).data,
                                      K.in_top_k(torch.tensor(t), torch.tensor(p), k).numpy())


def test_segment_ops_match_keras_with_dropped_ids_and_empty_segments():
    d = _x(6, 2).astype(np.float32)
    ids = np.array([0, -1, 2, 2, 5, 0])
    for name in ("segment_sum", "segment_max", "segment_min", "segment_prod"):
        got = getattr(ops, name)(d, ids, num_segments=4)
        want = getattr(K, name)(torch.tensor(d), torch.tensor(ids), num_segments=4).numpy()
        np.testing.assert_allclose(got.data, want, rtol=1e-6, err_msg=name)
    got = ops.segment_sum(np.array([1, 2, 3], "int32"), np.array([0, 0, 1]))
    assert got.dtype == np.int32 and got.data.tolist() == [3, 3]


def test_view_as_complex_and_real():
    x = _x(3, 2).astype(np.float32)
    z = ops.view_as_complex(x)
    kz = K.view_as_complex(torch.tensor(x))
    assert z.dtype == np.complex64 and z.shape == (3,)
    np.testing.assert_allclose(z.data, kz.numpy())
    np.testing.assert_allclose(ops.view_as_real(z).data, K.view_as_real(kz).numpy())
    assert check_gradients(lambda t: ops.view_as_real(ops.view_as_complex(t)) * t, _x(4, 2)) \
        .max_error < 1e-8
    r, th = _x(4), _x(4, seed=1)
    f = lambda a, b: ops.view_as_real(ops.polar(a, b))  # noqa: E731
    assert check_gradients(f, r, th).max_error < 1e-8


def test_rearrange_matches_keras_more_patterns():
    x = _x(2, 3, 4, 6)
    for pattern, kw in [("b c h w -> b h w c", {}), ("b c h (w p) -> (b p) c h w", {"p": 2}),
                        ("b c (h p) w -> b (c p) h w", {"h": 2})]:
        np.testing.assert_allclose(ops.rearrange(x, pattern, **kw).data,
                                   K.rearrange(torch.tensor(x), pattern, **kw).numpy())


@pytest.mark.parametrize("call,exc,words", [
    (lambda: ops.cond(np.ones(2), lambda: 1, lambda: 2), ValueError, "scalar"),
    (lambda: ops.scan(lambda c, x: (c, x), 0.0), ValueError, "length"),
    (lambda: ops.scan(3, 0.0, length=2), TypeError, "callable"),
    (lambda: ops.scan(lambda c, x: (c, x), 0.0, length=2, unroll=0), ValueError, "unroll"),
    (lambda: ops.slice(np.ones((2, 3)), (1, 2), (2, 2)), ValueError, "fit"),
    (lambda: ops.slice(np.ones((2, 3)), (0,), (1,)), ValueError, "one entry per axis"),
    (lambda: ops.slice_update(np.ones((2, 3)), (1, 1), np.ones((2, 2))), ValueError, "fit"),
    (lambda: ops.scatter(np.array([[3]]), np.ones(1), (3,)), ValueError, r"\[0, 3\)"),
    (lambda: ops.scatter(np.array([[0.5]]), np.ones(1), (3,)), TypeError, "integers"),
    (lambda: ops.scatter_update(np.ones(3), np.array([[0]]), np.ones(1), reduction="avg"),
     ValueError, "reduction"),
    (lambda: ops.segment_sum(np.ones(3), np.array([0, 1])), ValueError, "one id per row"),
    (lambda: ops.segment_sum(np.ones(3), np.array([1, 0, 0]), sorted=True), ValueError, "sorted"),
    (lambda: ops.rearrange(np.ones((2, 3)), "a b c -> a b c"), ValueError, "names 3 axes"),
    (lambda: ops.rearrange(np.ones((2, 6)), "a (b c) -> a b c"), ValueError, "infer"),
    (lambda: ops.rearrange(np.ones((2, 3)), "a b -> a"), ValueError, "same axes"),
    (lambda: ops.extract_sequences(np.ones(3), 4, 1), ValueError, "exceeds"),
    (lambda: ops.in_top_k(np.array([0]), np.ones(3), 1), ValueError, "shape"),
    (lambda: ops.cdist(np.ones((2, 3)), np.ones((2, 4))), ValueError, "last dimensions"),
    (lambda: ops.view_as_complex(np.ones((2, 3))), ValueError, "last dimension must be 2"),
    (lambda: ops.view_as_real(np.ones(2)), ValueError, "complex"),
    (lambda: ops.custom_gradient(lambda x: x)(Tensor(1.0)), TypeError, "pair"),
])
def test_bad_input(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_names_resolve_through_the_alias():
    code = ("import axone.compat; axone.compat.install_keras_alias()\n"
            "import keras, axone\n"
            f"for n in {list(ops.core.__all__)!r}:\n"
            "    assert getattr(keras.ops, n).__wrapped__ is getattr(axone.ops.core, n), n\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
