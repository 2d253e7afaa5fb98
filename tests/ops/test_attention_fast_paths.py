"""The fast paths of the Transformer block's nodes against their NumPy forms: the attention node's
compiled softmax rows (and its outputs written in place), LayerNorm's row path (matrix-vector
means, row dot products, column sums) and EinsumDense's single dense node for a projection with
a bias over all of its output letters.  Values and gradients, float64 finite differences."""
import numpy as np
import pytest

from axone import Tensor, ops
from axone.layers import EinsumDense
from axone.ops import _compiled
from axone.ops import attention as A
from axone.ops import normalization as N
from axone.utils import check_gradients

rng = np.random.default_rng(7)


def _grads(fn, arrays, g):
    ts = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    (out * g).sum().backward()
    return out.data, [t.grad for t in ts]


# ------------------------------------------------------------------ attention
def _numpy_attention(q, k, v, g, keep=None, scale=None):
    """Output and gradients of Σ g·out by the textbook formulas, heads repeated for groups."""
    B, T, Nh, H = q.shape
    rep = Nh // k.shape[2]
    kk, vv = np.repeat(k, rep, axis=2), np.repeat(v, rep, axis=2)
    c = 1 / np.sqrt(H) if scale is None else scale
    s = c * np.einsum("btnh,bsnh->bnts", q, kk)
    if keep is not None:
        s = np.where(keep, s, A.large_negative(s.dtype))
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = np.einsum("bnts,bsnh->btnh", p, vv)
    dp = np.einsum("btnh,bsnh->bnts", g, vv)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    if keep is not None:
        ds = np.where(keep.any(-1, keepdims=True), ds, 0)
    gq = c * np.einsum("bnts,bsnh->btnh", ds, kk)
    gk = c * np.einsum("bnts,btnh->bsnh", ds, q)
    gv = np.einsum("bnts,btnh->bsnh", p, g)
    fold = lambda a: a.reshape(a.shape[0], a.shape[1], -1, rep, a.shape[3]).sum(3)  # noqa: E731
    return o, [gq, fold(gk), fold(gv)]


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("K", [4, 2, 1])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_node_against_numpy(monkeypatch, compiled, K, causal):
    if not compiled:
        monkeypatch.setattr(A._compiled, "kernels", lambda name: None)
    elif _compiled.kernels("softmax_rows") is None:
        pytest.skip("the compiled module is not built")
    B, T, S, Nh, H = 2, 5, 5, 4, 3
    q = rng.standard_normal((B, T, Nh, H)).astype(np.float32)
    k = rng.standard_normal((B, S, K, H)).astype(np.float32)
    v = rng.standard_normal((B, S, K, H)).astype(np.float32)
    g = rng.standard_normal((B, T, Nh, H)).astype(np.float32)
    keep = None
    mask = None
    if causal:
        mask = rng.random((B, 1, T, S)) > 0.3
        mask[0, 0, 2] = False                       # one query row masked everywhere
        keep = np.logical_and(mask, np.tril(np.ones((T, S), bool)))
    out, grads = _grads(lambda q, k, v: ops.dot_product_attention(q, k, v, mask=mask,
                                                                  is_causal=causal),
                        (q, k, v), g)
    ro, rg = _numpy_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                              g.astype(np.float64), keep)
    np.testing.assert_allclose(out, ro, rtol=1e-5, atol=1e-5)
    assert out.flags.c_contiguous and out.shape == (B, T, Nh, H)
    for a, b in zip(grads, rg):
        assert a.flags.c_contiguous
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("compiled", [True, False])
def test_attention_node_finite_differences_both_paths(monkeypatch, compiled):
    if not compiled:
        monkeypatch.setattr(A._compiled, "kernels", lambda name: None)
    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 4, 5), (2, 4, 2, 5), (2, 4, 2, 3)))
    b = rng.standard_normal((1, 4, 3, 4))
    r = check_gradients(lambda q, k, v, b: ops.dot_product_attention(q, k, v, bias=b, scale=0.4),
                        q, k, v, b)
    assert r.max_error < 1e-7, r


def test_attention_compiled_and_numpy_softmax_agree(monkeypatch):
    if _compiled.kernels("softmax_rows") is None:
        pytest.skip("the compiled module is not built")
    q, k, v, g = (rng.standard_normal((3, 16, 4, 8)).astype(np.float32) for _ in range(4))
    fast = _grads(lambda q, k, v: ops.dot_product_attention(q, k, v, is_causal=True), (q, k, v), g)
    monkeypatch.setattr(A._compiled, "kernels", lambda name: None)
    slow = _grads(lambda q, k, v: ops.dot_product_attention(q, k, v, is_causal=True), (q, k, v), g)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-5, atol=1e-6)
    for a, b in zip(fast[1], slow[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ layer norm
def _numpy_layer_norm(x, gamma, beta, g, eps):
    mu = x.mean(-1, keepdims=True)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    xh = (x - mu) * r
    y = xh * (1 if gamma is None else gamma) + (0 if beta is None else beta)
    u = g * (1 if gamma is None else gamma)
    dx = r * (u - u.mean(-1, keepdims=True) - xh * (u * xh).mean(-1, keepdims=True))
    axes = tuple(range(x.ndim - 1))
    return y, dx, (g * xh).sum(axes), g.sum(axes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", ["both", "gamma", "beta", "none", "rank3"])
def test_layer_norm_rows_path_against_numpy(dtype, params):
    n = 24
    x = (rng.standard_normal((3, 5, n)) * 2 + 1).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    shape = (1, 1, n) if params == "rank3" else (n,)
    gamma = rng.standard_normal(shape).astype(dtype) if params in ("both", "gamma", "rank3") else None
    beta = rng.standard_normal(shape).astype(dtype) if params in ("both", "beta", "rank3") else None
    ins = [x] + [a for a in (gamma, beta) if a is not None]

    def fn(x, *ps):
        it = iter(ps)
        return ops.layer_normalization(x, gamma=next(it) if gamma is not None else None,
                                       beta=next(it) if beta is not None else None, epsilon=1e-3)
    y, grads = _grads(fn, ins, g)
    ry, rdx, rdg, rdb = _numpy_layer_norm(*(a if a is None else a.astype(np.float64)
                                            for a in (x, gamma, beta, g)), 1e-3)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, ry, **tol)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(grads[0], rdx, **tol)
    i = 1
    if gamma is not None:
        assert grads[i].shape == gamma.shape
        np.testing.assert_allclose(grads[i].reshape(-1), rdg, **tol)
        i += 1
    if beta is not None:
        assert grads[i].shape == beta.shape
        np.testing.assert_allclose(grads[i].reshape(-1), rdb, **tol)


def test_layer_norm_rows_path_is_taken_and_matches_the_general_path(monkeypatch):
    x = rng.standard_normal((4, 6, 16)).astype(np.float32)
    gamma, beta = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    fn = lambda x, a, b: ops.layer_normalization(x, a, b, epsilon=1e-5)  # noqa: E731
    ts = [Tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    out = fn(*ts)
    assert isinstance(out._ctx, N.LayerNorm) and out._ctx.rows      # the row path ran
    (out * g).sum().backward()
    fast = [out.data] + [t.grad for t in ts]
    monkeypatch.setattr(N.LayerNorm, "ROW_MAX", 0)         # every call takes the general path
    ts2 = [Tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    out2 = fn(*ts2)
    assert not out2._ctx.rows
    (out2 * g).sum().backward()
    slow = (out2.data, [t.grad for t in ts2])
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-6, atol=1e-6)
    for a, b in zip(fast[1:], slow[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # a transposed (non-contiguous) input gives the same as its contiguous copy
    xt = np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)
    monkeypatch.setattr(N.LayerNorm, "ROW_MAX", 8192)
    np.testing.assert_allclose(fn(xt, gamma, beta).data, fast[0], rtol=1e-6, atol=1e-6)


def test_layer_norm_rows_path_finite_differences():
    x = rng.standard_normal((3, 4, 7))
    gamma, beta = rng.standard_normal(7), rng.standard_normal(7)
    r = check_gradients(lambda x, a, b: ops.layer_normalization(x, a, b, epsilon=1e-3),
                        x, gamma, beta)
    assert r.max_error < 1e-7, r
    r = check_gradients(lambda x: ops.layer_normalization(x, epsilon=1e-3), x)
    assert r.max_error < 1e-7, r


# ------------------------------------------------------------------ EinsumDense
@pytest.mark.parametrize("eq, out_shape, bias_axes, in_shape", [
    ("abc,cde->abde", (None, 3, 4), "de", (2, 5, 6)),     # the attention projections
    ("abcd,cde->abe", (None, 6), "e", (2, 5, 3, 4)),      # the attention output
    ("abc,cde->abde", (None, 3, 4), "e", (2, 5, 6)),      # a bias on part of Y: matmul + add
    ("ab,bc->ac", 7, "c", (5, 6)),
    ("abc,cd->abd", (None, 7), None, (2, 5, 6)),
])
def test_einsum_dense_product_paths_against_einsum(eq, out_shape, bias_axes, in_shape):
    layer = EinsumDense(eq, out_shape, bias_axes=bias_axes, bias_initializer="random_normal")
    layer.build(in_shape)
    x = rng.standard_normal(in_shape).astype(np.float32)
    kernel = np.asarray(layer.kernel.numpy() if hasattr(layer.kernel, "numpy") else layer.kernel.value)
    bias = None if layer.bias is None else np.asarray(
        layer.bias.numpy() if hasattr(layer.bias, "numpy") else layer.bias.value)
    xt = Tensor(x, requires_grad=True)
    out = layer(xt)
    g = rng.standard_normal(out.shape).astype(np.float32)
    (out * g).sum().backward()
    ref = np.einsum(eq, x.astype(np.float64), kernel.astype(np.float64))
    if bias is not None:
        ref = ref + bias
    np.testing.assert_allclose(out.data, ref, rtol=1e-5, atol=1e-5)
    ins, rest = eq.split(",")
    ws, outs = rest.split("->")
    np.testing.assert_allclose(xt.grad, np.einsum(f"{outs},{ws}->{ins}", g, kernel),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.kernel.grad, np.einsum(f"{ins},{outs}->{ws}", x, g),
                               rtol=1e-4, atol=1e-4)
    if bias is not None:
        axes = tuple(i for i, c in enumerate(outs) if i < outs.find(bias_axes[0]))
        gb = g.sum(axis=axes)
        gb = gb.reshape(bias.shape) if gb.size == bias.size else gb.sum(
            axis=tuple(i for i, c in enumerate(outs[outs.find(bias_axes[0]):]) if c not in bias_axes),
            keepdims=True).reshape(bias.shape)
        np.testing.assert_allclose(layer.bias.grad, gb, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(_compiled.kernels("softmax_grad_rows") is None, reason="not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("masked", [False, True])
def test_compiled_softmax_gradient_matches_the_numpy_form(monkeypatch, dtype, masked):
    """The attention backward's dL/ds = p·(dL/dp − Σ p·dL/dp) through softmax_grad_rows (the
    row sum in double) against the NumPy form: 1e-12 in float64, float32 rounding in float32;
    rows of 13 keys (off the kernel's blocks of eight), a fully masked row among them."""
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 5, 4, 8)).astype(dtype)
    k = rng.standard_normal((2, 13, 4, 8)).astype(dtype)
    v = rng.standard_normal((2, 13, 4, 8)).astype(dtype)
    g = rng.standard_normal((2, 5, 4, 8)).astype(dtype)
    mask = None
    if masked:
        mask = rng.random((2, 4, 5, 13)) < 0.7
        mask[0, 1, 2] = False                   # a row masked everywhere: no gradient
    res = []
    for on in (True, False):
        monkeypatch.setattr(A, "COMPILED_SOFTMAX_GRAD", on)
        ts = [Tensor(a, requires_grad=True) for a in (q, k, v)]
        y = ops.dot_product_attention(*ts, mask=mask)
        y.backward(g)
        res.append([y.data] + [t.grad for t in ts])
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
