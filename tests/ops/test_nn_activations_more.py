"""The remaining keras.ops.nn activations, normalize, psnr, multi_hot, polar and erf/erfc/erfinv/
rsqrt against Keras 3 on its PyTorch backend (values and torch-autograd gradients) and float64
finite differences."""
import numpy as np
import pytest
import torch

import keras
from keras import ops as K

from axone import Tensor, ops
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"


def _x(*shape, seed=0, lo=-4.0, hi=4.0):
    """Random values kept 1e-2 away from the activations' kinks (0, ±0.5, ±1, ±3, 6, 0.3)."""
    x = np.random.default_rng(seed).uniform(lo, hi, shape)
    for k in (0.0, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 6.0, 0.3, 0.7, -0.7):
        near = np.abs(x - k) < 1e-2
        x = np.where(near, k + 2e-2, x)
    return x


DIFFERENTIABLE = [
    ("relu6", lambda o, x: o.relu6(x), [_x(3, 4, hi=8.0)]),
    ("celu", lambda o, x: o.celu(x), [_x(3, 4)]),
    ("celu_alpha", lambda o, x: o.celu(x, alpha=0.5), [_x(3, 4)]),
    ("glu", lambda o, x: o.glu(x), [_x(3, 4)]),
    ("glu_axis0", lambda o, x: o.glu(x, axis=0), [_x(4, 3)]),
    ("hard_shrink", lambda o, x: o.hard_shrink(x), [_x(3, 4, lo=-2, hi=2)]),
    ("hard_shrink_t", lambda o, x: o.hard_shrink(x, threshold=1.0), [_x(3, 4, lo=-2, hi=2)]),
    ("hard_silu", lambda o, x: o.hard_silu(x), [_x(4, 5, lo=-5, hi=5)]),
    ("hard_swish", lambda o, x: o.hard_swish(x), [_x(4, 5, lo=-5, hi=5)]),
    ("hard_tanh", lambda o, x: o.hard_tanh(x), [_x(3, 4, lo=-2, hi=2)]),
    ("log_sigmoid", lambda o, x: o.log_sigmoid(x), [_x(3, 4, lo=-30, hi=30)]),
    ("soft_shrink", lambda o, x: o.soft_shrink(x), [_x(3, 4, lo=-2, hi=2)]),
    ("soft_shrink_t", lambda o, x: o.soft_shrink(x, 0.7), [_x(3, 4, lo=-2, hi=2)]),
    ("sparse_plus", lambda o, x: o.sparse_plus(x), [_x(3, 4, lo=-2, hi=2)]),
    ("sparse_sigmoid", lambda o, x: o.sparse_sigmoid(x), [_x(3, 4, lo=-2, hi=2)]),
    ("squareplus", lambda o, x: o.squareplus(x), [_x(3, 4)]),
    ("squareplus_b", lambda o, x: o.squareplus(x, b=1.5), [_x(3, 4)]),
    ("tanh_shrink", lambda o, x: o.tanh_shrink(x), [_x(3, 4)]),
    ("threshold", lambda o, x: o.threshold(x, 0.3, -2.0), [_x(3, 4, lo=-2, hi=2)]),
    ("normalize", lambda o, x: o.normalize(x), [_x(3, 4)]),
    ("normalize_axis0", lambda o, x: o.normalize(x, axis=0), [_x(3, 4)]),
    ("normalize_l1", lambda o, x: o.normalize(x, order=1), [_x(3, 4)]),
    ("normalize_l3", lambda o, x: o.normalize(x, axis=0, order=3), [_x(3, 4)]),
    ("psnr", lambda o, a, b: o.psnr(a, b, 1.0), [_x(2, 3, 3), _x(2, 3, 3, seed=1)]),
    ("erf", lambda o, x: o.erf(x), [_x(3, 4, lo=-3, hi=3)]),
    ("erfinv", lambda o, x: o.erfinv(x), [_x(3, 4, lo=-0.95, hi=0.95)]),
    ("rsqrt", lambda o, x: o.rsqrt(x), [_x(3, 4, lo=0.2, hi=3)]),
]


def _to_np(out):
    if isinstance(out, Tensor):
        return out.data
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(out))


@pytest.mark.parametrize("name,fn,inputs", DIFFERENTIABLE, ids=[c[0] for c in DIFFERENTIABLE])
def test_values_and_gradients_match_keras(name, fn, inputs):
    ax = [Tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    tx = [torch.tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    got, want = fn(ops, *ax), fn(K, *tx)
    g_np, w_np = _to_np(got), _to_np(want)
    assert g_np.shape == w_np.shape, f"{name}: shape {g_np.shape} vs Keras {w_np.shape}"
    assert g_np.dtype == np.float32, f"{name}: dtype {g_np.dtype}"
    np.testing.assert_allclose(g_np, w_np, rtol=1e-5, atol=1e-5, err_msg=name)
    weight = np.random.default_rng(7).standard_normal(w_np.shape).astype(np.float32)
    ops.sum(got * weight).backward()
    (want * torch.tensor(weight)).sum().backward()
    for i, (a, t) in enumerate(zip(ax, tx)):
        np.testing.assert_allclose(np.asarray(a.grad), t.grad.numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=f"{name}: grad x{i}")


@pytest.mark.parametrize("name,fn,inputs", DIFFERENTIABLE, ids=[c[0] for c in DIFFERENTIABLE])
def test_finite_differences(name, fn, inputs):
    r = check_gradients(lambda *xs: fn(ops, *xs), *inputs)
    assert r.max_error < 1e-6, f"{name}: relative error {r.max_error} at {r.worst_input}"


def test_erfc_and_erf_tails_match_torch():
    x = np.linspace(-6, 6, 61)
    np.testing.assert_allclose(ops.erfc(x).data, torch.special.erfc(torch.tensor(x)).numpy(),
                               rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ops.erf(x).data, torch.erf(torch.tensor(x)).numpy(), atol=1e-15)
    assert check_gradients(ops.erfc, x[20:40]).max_error < 1e-6
    y = ops.erfinv(np.array([-1.0, 1.0, 1.5, 0.0]))
    assert y.data[0] == -np.inf and y.data[1] == np.inf and np.isnan(y.data[2]) and y.data[3] == 0


def test_erfinv_without_scipy_is_exact(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    from axone.ops import math as M
    y = np.random.default_rng(0).uniform(-0.999999, 0.999999, 500)
    np.testing.assert_allclose(M._erf(M._erfinv(y)), y, rtol=0, atol=1e-14)
    np.testing.assert_allclose(M._erfinv(y), torch.erfinv(torch.tensor(y)).numpy(), atol=1e-9)
    np.testing.assert_allclose(M._erfc(np.array([3.0, -1.0])),
                               torch.special.erfc(torch.tensor([3.0, -1.0], dtype=torch.float64)).numpy(),
                               rtol=1e-13)


def _simplex_projection(z):
    """Sparsemax by bisection on τ (Σ max(z − τ, 0) = 1), independent of the sorting formula."""
    lo, hi = z.min() - 1.0, z.max()
    for _ in range(200):
        tau = (lo + hi) / 2
        if np.maximum(z - tau, 0).sum() > 1:
            lo = tau
        else:
            hi = tau
    return np.maximum(z - (lo + hi) / 2, 0)


def test_sparsemax_is_the_simplex_projection():
    x = _x(5, 6, seed=3, lo=-1.5, hi=1.5)
    y = ops.sparsemax(x).data
    want = np.stack([_simplex_projection(r) for r in x])
    np.testing.assert_allclose(y, want, atol=1e-10)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-12)
    assert (y == 0).any()
    y0 = ops.sparsemax(x, axis=0).data
    np.testing.assert_allclose(y0, np.stack([_simplex_projection(c) for c in x.T]).T, atol=1e-10)
    assert check_gradients(lambda t: ops.sparsemax(t), x).max_error < 1e-6
    assert check_gradients(lambda t: ops.sparsemax(t, axis=0), x).max_error < 1e-6
    # where one value dominates (a support of one), Keras's result is the same
    x1 = np.array([[-1.0, 0.0, 1.0], [3.0, 0.1, -2.0]], np.float32)
    np.testing.assert_allclose(ops.sparsemax(x1).data, _to_np(K.sparsemax(x1)), atol=1e-6)


def test_multi_hot_matches_keras():
    for data, kw in [([0, 4], {}), ([[0, 2], [1, 1], [3, 0]], {}),
                     ([[0, 2], [1, 1]], {"dtype": "int32"}), ([[1, 2, 2]], {"axis": -1})]:
        got = ops.multi_hot(np.array(data), num_classes=5, **kw)
        want = _to_np(K.multi_hot(np.array(data), num_classes=5, **kw))
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got.data, want)
    np.testing.assert_array_equal(ops.multi_hot(np.array([1]), num_tokens=3).data, [0, 1, 0])


def test_polar_values_and_gradients():
    r, t = _x(3, 4, lo=0.1, hi=2), _x(3, 4, seed=1)
    got = ops.polar(r.astype(np.float32), t.astype(np.float32))
    want = _to_np(K.polar(r.astype(np.float32), t.astype(np.float32)))
    assert got.dtype == np.complex64 == want.dtype
    np.testing.assert_allclose(got.data, want, rtol=1e-5, atol=1e-6)
    # dL/dr, dL/dθ of L = Σ(a·Re z + b·Im z), written out: a cos θ + b sin θ, r(b cos θ − a sin θ)
    a, b = _x(3, 4, seed=2), _x(3, 4, seed=3)
    tr, tt = Tensor(r, requires_grad=True), Tensor(t, requires_grad=True)
    z = ops.polar(tr, tt)
    z.backward(a + 1j * b)
    np.testing.assert_allclose(tr.grad, a * np.cos(t) + b * np.sin(t), atol=1e-12)
    np.testing.assert_allclose(tt.grad, r * (b * np.cos(t) - a * np.sin(t)), atol=1e-12)


@pytest.mark.parametrize("call,exc,words", [
    (lambda: ops.glu(np.ones((2, 3))), ValueError, "even"),
    (lambda: ops.normalize(np.ones(3), order=0), ValueError, "order"),
    (lambda: ops.normalize(np.ones(3), order=2.5), ValueError, "order"),
    (lambda: ops.psnr(np.ones(3), np.ones(4), 1.0), ValueError, "shape"),
    (lambda: ops.multi_hot(np.array([1, 2])), ValueError, "num_classes"),
    (lambda: ops.multi_hot(np.array([1]), 3, sparse=True), NotImplementedError, "sparse"),
    (lambda: ops.squareplus(np.ones(2), b=-1), ValueError, "non-negative"),
    (lambda: ops.celu(np.ones(2), alpha=0), ValueError, "alpha"),
    (lambda: ops.threshold(np.ones(2), "a", 0), TypeError, "threshold"),
    (lambda: ops.sparsemax(np.float32(1.0)), ValueError, "rank"),
    (lambda: ops.polar(np.ones(2), np.ones(3)), ValueError, "broadcast"),
    (lambda: ops.erf(np.ones(2) + 1j), TypeError, "real"),
])
def test_bad_input(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_names_resolve_in_keras_places():
    import subprocess
    import sys
    code = ("import axone.compat; axone.compat.install_keras_alias()\n"
            "import keras, keras.ops.nn, axone\n"
            "names = ['celu', 'glu', 'hard_shrink', 'hard_silu', 'hard_swish', 'hard_tanh',\n"
            "         'log_sigmoid', 'relu6', 'soft_shrink', 'sparse_plus', 'sparse_sigmoid',\n"
            "         'sparsemax', 'squareplus', 'tanh_shrink', 'threshold', 'normalize', 'psnr',\n"
            "         'multi_hot', 'polar']\n"
            "for n in names:\n"
            "    f = getattr(keras.ops, n)\n"
            "    assert f is getattr(keras.ops.nn, n) and f.__wrapped__ is getattr(axone.ops.nn, n), n\n"
            "for n in ['erf', 'erfc', 'erfinv', 'rsqrt']:\n"
            "    assert getattr(keras.ops, n).__wrapped__ is getattr(axone.ops.math, n), n\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
