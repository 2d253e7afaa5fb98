"""keras.ops.linalg (axone/ops/linalg.py) against Keras 3 on its PyTorch backend: values, and
gradients of Σ out·W through torch autograd; float64 finite differences for every
differentiable op; bad input."""
import numpy as np
import pytest
import torch

import keras
from keras import ops as K

from axone import Tensor, ops
from axone.ops import linalg as L
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"


def _r(seed=0):
    return np.random.default_rng(seed)


def _x(*shape, seed=0):
    return _r(seed).standard_normal(shape)


def _spd(n, seed=0, batch=()):
    a = _x(*batch, n, n, seed=seed)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _sym(o, a):
    """(a + aᵀ)/2: a function of all of a's entries whose value is symmetric."""
    return (a + o.swapaxes(a, -1, -2)) / 2


def _well(n, seed=0, batch=()):
    return _x(*batch, n, n, seed=seed) + 3 * np.eye(n)


# name, f(ops module, *inputs), inputs.  Functions of U / V are sign-invariant (squares).
CASES = [
    ("inv", lambda o, a: o.inv(a), [_well(3)]),
    ("inv_batch", lambda o, a: o.inv(a), [_well(3, batch=(2,))]),
    ("det", lambda o, a: o.det(a), [_x(3, 3)]),
    ("det_batch", lambda o, a: o.det(a), [_x(2, 4, 4, seed=1)]),
    ("logdet", lambda o, a: o.logdet(a), [_spd(3)]),
    ("solve", lambda o, a, b: o.solve(a, b), [_well(3), _x(3, 2, seed=1)]),
    ("solve_vec", lambda o, a, b: o.solve(a, b), [_well(3), _x(3, seed=1)]),
    ("solve_batch", lambda o, a, b: o.solve(a, b), [_well(3, batch=(2,)), _x(2, 3, 4, seed=1)]),
    ("solve_triangular", lambda o, a, b: o.solve_triangular(a, b), [_well(3), _x(3, 2, seed=1)]),
    ("solve_triangular_lower", lambda o, a, b: o.solve_triangular(a, b, lower=True),
     [_well(4), _x(4, 2, seed=1)]),
    ("solve_triangular_vec", lambda o, a, b: o.solve_triangular(a, b, lower=True),
     [_well(3), _x(3, seed=1)]),
    ("cholesky", lambda o, a: o.cholesky(_sym(o, a)), [_spd(3)]),
    ("cholesky_upper", lambda o, a: o.cholesky(_sym(o, a), upper=True), [_spd(4, seed=2)]),
    ("cholesky_batch", lambda o, a: o.cholesky(_sym(o, a)), [_spd(3, batch=(2,))]),
    ("cholesky_inverse", lambda o, a: o.cholesky_inverse(o.cholesky(_sym(o, a))), [_spd(3)]),
    ("cholesky_inverse_upper",
     lambda o, a: o.cholesky_inverse(o.cholesky(_sym(o, a), upper=True), upper=True), [_spd(3)]),
    ("eigh_values", lambda o, a: o.eigh(_sym(o, a))[0], [_x(4, 4)]),
    ("eigh_vectors", lambda o, a: o.square(o.eigh(_sym(o, a))[1]), [_x(4, 4, seed=3)]),
    ("eigh_both", lambda o, a: o.matmul(o.eigh(_sym(o, a))[1] * o.eigh(_sym(o, a))[0][..., None, :],
                                        o.swapaxes(o.eigh(_sym(o, a))[1], -1, -2)),
     [_x(2, 3, 3, seed=4)]),
    ("svd_s", lambda o, a: o.svd(a)[1], [_x(4, 3)]),
    ("svd_values_only", lambda o, a: o.svd(a, compute_uv=False), [_x(3, 5)]),
    ("svd_u", lambda o, a: o.square(o.svd(a, full_matrices=False)[0]), [_x(5, 3)]),
    ("svd_v", lambda o, a: o.square(o.svd(a, full_matrices=False)[2]), [_x(3, 5)]),
    ("svd_reconstruct", lambda o, a: o.matmul(o.svd(a, full_matrices=False)[0]
                                              * o.svd(a, full_matrices=False)[1][..., None, :],
                                              o.svd(a, full_matrices=False)[2]),
     [_x(2, 4, 3, seed=5)]),
    ("qr_tall", lambda o, a: o.qr(a)[0] + 0.5, [_x(4, 3)]),
    ("qr_tall_r", lambda o, a: o.qr(a)[1], [_x(4, 3, seed=1)]),
    ("qr_wide", lambda o, a: o.matmul(o.qr(a)[0], o.qr(a)[1][..., :3]) + o.sum(o.qr(a)[1]),
     [_x(3, 5, seed=2)]),
    ("qr_complete_square", lambda o, a: o.qr(a, mode="complete")[0], [_x(3, 3, seed=3)]),
    ("pinv_tall", lambda o, a: o.pinv(a), [_x(5, 3)]),
    ("pinv_wide", lambda o, a: o.pinv(a), [_x(2, 4, seed=1)]),
    ("lstsq", lambda o, a, b: o.lstsq(a, b), [_x(5, 3), _x(5, 2, seed=1)]),
    ("lstsq_vec", lambda o, a, b: o.lstsq(a, b), [_x(4, 4), _x(4, seed=1)]),
    ("lu_factor", lambda o, a: o.lu_factor(a)[0], [_x(4, 4)]),
    ("lu_factor_batch", lambda o, a: o.lu_factor(a)[0], [_x(2, 3, 3, seed=6)]),
    ("norm_2", lambda o, a: o.norm(a, ord=2), [_x(3, 4)]),
    ("norm_m2", lambda o, a: o.norm(a, ord=-2, axis=(0, 1)), [_x(3, 3)]),
    ("norm_nuc", lambda o, a: o.norm(a, ord="nuc", axis=(1, 2), keepdims=True), [_x(2, 3, 4)]),
    ("norm_nuc_axes", lambda o, a: o.norm(a, ord="nuc", axis=(2, 0)), [_x(3, 2, 4)]),
    ("norm_fro", lambda o, a: o.norm(a, ord="fro", axis=(0, 1)), [_x(3, 4)]),
    ("norm_vec", lambda o, a: o.norm(a, ord=3, axis=1), [_x(3, 4)]),
]


def _keras(name):
    def run(o, *a):
        if o is K:
            return getattr(o, name)(*a)
        return getattr(o, name)(*a)
    return run


def _to_np(out):
    if isinstance(out, Tensor):
        return out.data
    return out.detach().cpu().numpy()


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_keras(name, fn, inputs):
    ax = [Tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    tx = [torch.tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    got, want = fn(ops, *ax), fn(K, *tx)
    g_np, w_np = _to_np(got), _to_np(want)
    assert g_np.shape == w_np.shape, f"{name}: shape {g_np.shape} vs Keras {w_np.shape}"
    assert g_np.dtype == w_np.dtype, f"{name}: dtype {g_np.dtype} vs Keras {w_np.dtype}"
    np.testing.assert_allclose(g_np, w_np, rtol=1e-4, atol=1e-4, err_msg=name)
    weight = _r(7).standard_normal(w_np.shape).astype(np.float32)
    ops.sum(got * weight).backward()
    (want * torch.tensor(weight)).sum().backward()
    for i, (a, t) in enumerate(zip(ax, tx)):
        np.testing.assert_allclose(np.asarray(a.grad), t.grad.numpy(), rtol=1e-3, atol=1e-4,
                                   err_msg=f"{name}: grad x{i}")


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_finite_differences(name, fn, inputs):
    r = check_gradients(lambda *xs: fn(ops, *xs), *inputs)
    assert r.max_error < 1e-6, f"{name}: relative error {r.max_error} at {r.worst_input}"


def test_factorizations_reconstruct_and_match_keras():
    a = _x(4, 3)
    u, s, vh = L.svd(a)
    assert u.shape == (4, 4) and s.shape == (3,) and vh.shape == (3, 3)
    np.testing.assert_allclose((u.data[:, :3] * s.data) @ vh.data, a, atol=1e-12)
    ku, ks, kvh = K.svd(torch.tensor(a))
    np.testing.assert_allclose(s.data, ks.numpy(), atol=1e-12)
    q, r = L.qr(a, mode="complete")
    assert q.shape == (4, 4) and r.shape == (4, 3)
    np.testing.assert_allclose(q.data @ r.data, a, atol=1e-12)
    lu, piv = L.lu_factor(a[:3])
    klu, kpiv = K.lu_factor(torch.tensor(a[:3]))
    np.testing.assert_allclose(lu.data, klu.numpy(), atol=1e-12)
    assert piv.dtype == np.int32 and np.array_equal(piv.data, kpiv.numpy())
    lu, piv = L.lu_factor(a)                      # rectangular
    klu, kpiv = K.lu_factor(torch.tensor(a))
    np.testing.assert_allclose(lu.data, klu.numpy(), atol=1e-12)
    assert np.array_equal(piv.data, kpiv.numpy())


def test_eig_matches_keras():
    a = _x(2, 4, 4, seed=3)
    w, v = L.eig(a.astype(np.float32))
    kw, kv = K.eig(torch.tensor(a.astype(np.float32)))
    assert w.dtype == np.complex64 == kw.numpy().dtype and v.shape == (2, 4, 4)
    key = lambda z: np.lexsort((z.imag.round(4), z.real.round(4)))  # noqa: E731
    for b in range(2):
        np.testing.assert_allclose(np.sort_complex(w.data[b]), np.sort_complex(kw.numpy()[b]),
                                   atol=1e-4)
        np.testing.assert_allclose(a[b] @ v.data[b], v.data[b] * w.data[b], atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(v.data[b], axis=0), 1.0, atol=1e-5)
    del key


def test_matrix_rank_matches_keras():
    a = _x(3, 4, 5)
    a[1] = np.outer(_x(4), _x(5, seed=1))
    a[2, 3] = a[2, 0] * 2
    got = L.matrix_rank(a.astype(np.float32))
    want = K.matrix_rank(torch.tensor(a.astype(np.float32))).numpy()
    assert got.dtype == np.int32 and np.array_equal(got.data, want) and list(want) == [4, 1, 3]
    assert np.array_equal(L.matrix_rank(a, tol=0.5).data,
                          K.matrix_rank(torch.tensor(a), tol=0.5).numpy())


def test_pinv_and_lstsq_rcond_match_keras():
    a = _x(5, 3)
    a[:, 2] = a[:, 0] + 1e-4 * a[:, 1]
    for rc in (None, 1e-2):
        np.testing.assert_allclose(L.pinv(a, rcond=rc).data, K.pinv(torch.tensor(a), rcond=rc).numpy(),
                                   rtol=1e-6, atol=1e-6)
    b = _x(5, 2, seed=1)
    np.testing.assert_allclose(L.lstsq(a, b, rcond=1e-2).data,
                               K.lstsq(torch.tensor(a), torch.tensor(b), rcond=1e-2).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_det_gradient_of_a_singular_matrix_is_the_cofactor_matrix():
    # rank 2: det is a polynomial, its gradient the cofactor matrix, not zero
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    t = Tensor(a, requires_grad=True)
    L.det(t).backward()
    cof = np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a, i, 0), j, 1))
                     for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(t.grad, cof, atol=1e-10)
    assert np.abs(cof).max() > 1
    assert check_gradients(L.det, a).max_error < 1e-8


def test_jvp_matches_torch_func_jvp():
    def f(x, y):
        return ops.tanh(ops.matmul(x, y)) * 2, ops.sum(x * x)

    def kf(x, y):
        return K.tanh(K.matmul(x, y)) * 2, K.sum(x * x)

    x, y, tx, ty = (v.astype(np.float32) for v in (_x(3, 4), _x(4, 2, seed=1), _x(3, 4, seed=2),
                                                   _x(4, 2, seed=3)))
    out, tan = L.jvp(f, (x, y), (tx, ty))
    kout, ktan = K.jvp(kf, (torch.tensor(x), torch.tensor(y)),
                       (torch.tensor(tx), torch.tensor(ty)))
    for a, b in zip(out, kout):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(tan, ktan):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-5, atol=1e-5)
    x = x.astype(np.float64)
    tx = tx.astype(np.float64)
    out, tan, aux = L.jvp(lambda x: (ops.exp(x), "aux"), (x,), (tx,), has_aux=True)
    np.testing.assert_allclose(tan.data, np.exp(x) * tx, atol=1e-12)
    assert aux == "aux" and not out.requires_grad


@pytest.mark.parametrize("call,exc,words", [
    (lambda: L.inv(np.ones(3)), ValueError, "rank >= 2"),
    (lambda: L.inv(np.ones((2, 3))), ValueError, "square"),
    (lambda: L.inv(np.zeros((2, 2))), ValueError, "inv: Singular"),
    (lambda: L.cholesky(-np.eye(2)), ValueError, "positive definite"),
    (lambda: L.solve(np.eye(3), np.ones((2, 2))), ValueError, "incompatible"),
    (lambda: L.qr(np.ones((2, 2)), mode="full"), ValueError, "mode"),
    (lambda: L.lstsq(np.ones((3, 2)), np.ones(4)), ValueError, "b.shape"),
    (lambda: L.lstsq(np.ones((2, 3, 2)), np.ones(3)), ValueError, "rank 2"),
    (lambda: L.norm(np.ones((2, 2)), ord="max"), ValueError, "ord"),
    (lambda: L.eig(np.ones((2, 3))), ValueError, "square"),
    (lambda: L.jvp(lambda x: x, [np.ones(2)], [np.ones(3)]), ValueError, "shape"),
    (lambda: L.jvp(lambda x: x, np.ones(2), np.ones(2)), TypeError, "tuples"),
])
def test_bad_input(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_qr_complete_tall_has_no_gradient():
    t = Tensor(_x(4, 3), requires_grad=True)
    q, r = L.qr(t, mode="complete")
    with pytest.raises(NotImplementedError, match="mode='complete'"):
        ops.sum(q).backward()


def test_names_resolve_in_keras_places():
    import subprocess
    import sys
    names = [n for n in dir(keras.ops.linalg) if not n.startswith("_")]
    code = ("import axone.compat; axone.compat.install_keras_alias()\n"
            "import keras, keras.ops.linalg, axone.ops.linalg as L\n"
            f"for n in {names!r}:\n"
            "    f = getattr(keras.ops.linalg, n)\n"
            "    assert f is getattr(keras.ops, n) and f.__wrapped__ is getattr(L, n), n\n"
            "assert keras.ops.logdet.__wrapped__ is L.logdet\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
