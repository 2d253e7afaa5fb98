"""dot_product_attention, layer_normalization and rms_normalization: finite differences in
float64, parity with PyTorch (scaled_dot_product_attention, layer_norm, rms_norm) and Keras 3
(torch backend) for values and gradients, and argument checks."""
import numpy as np
import pytest

import axone
from axone import Tensor, ops
from axone.ops.attention import attention_core
from axone.utils import check_gradients

torch = pytest.importorskip("torch")
F = torch.nn.functional

rng = np.random.default_rng(1)


def _qkv(B=2, T=3, S=4, N=4, K=2, H=5, Hv=3, dtype=np.float64):
    return (rng.standard_normal((B, T, N, H)).astype(dtype),
            rng.standard_normal((B, S, K, H)).astype(dtype),
            rng.standard_normal((B, S, K, Hv)).astype(dtype))


def _torch_attention(q, k, v, g, mask=None, bias=None, is_causal=False, scale=None):
    """torch SDPA in Keras's (B, T, N, H) layout, key/value heads repeated for grouped queries;
    output and the gradients of Σ g·out for q, k, v (and bias)."""
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    rep = q.shape[2] // k.shape[2]
    kk, vv = (torch.repeat_interleave(t, rep, dim=2) for t in (tk, tv))
    attn = None
    tb = None
    if bias is not None:
        tb = torch.tensor(bias, requires_grad=True)
        attn = tb
    if mask is not None:
        attn = torch.tensor(mask)
    o = F.scaled_dot_product_attention(tq.transpose(1, 2), kk.transpose(1, 2), vv.transpose(1, 2),
                                       attn_mask=attn, is_causal=is_causal, scale=scale).transpose(1, 2)
    (o * torch.tensor(g)).sum().backward()
    grads = [t.grad.numpy() for t in (tq, tk, tv)] + ([tb.grad.numpy()] if tb is not None else [])
    return o.detach().numpy(), grads


def _axone_attention(q, k, v, g, **kw):
    ts = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    b = kw.pop("bias", None)
    tb = None if b is None else Tensor(b, requires_grad=True)
    o = ops.dot_product_attention(*ts, bias=tb, **kw)
    (o * g).sum().backward()
    return o.data, [t.grad for t in ts] + ([tb.grad] if tb is not None else [])


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("K", [4, 2, 1])
def test_attention_gradients_by_finite_differences(K):
    q, k, v = _qkv(K=K)
    r = check_gradients(lambda q, k, v: ops.dot_product_attention(q, k, v), q, k, v)
    assert r.max_error < 1e-7, r


def test_attention_gradients_with_bias_mask_causal_and_scale():
    q, k, v = _qkv()
    b = rng.standard_normal((1, 4, 3, 4))
    r = check_gradients(lambda q, k, v, b: ops.dot_product_attention(q, k, v, bias=b, scale=0.3),
                        q, k, v, b)
    assert r.max_error < 1e-7, r
    m = rng.random((2, 1, 3, 4)) > 0.4
    m[..., 0] = True                # every query keeps a key (a fully masked row is constant)
    r = check_gradients(lambda q, k, v: ops.dot_product_attention(q, k, v, mask=m, is_causal=True),
                        q, k, v)
    assert r.max_error < 1e-7, r


def test_attention_gradients_with_dropout_mask_on_the_probabilities():
    q, k, v = _qkv()
    dm = (rng.random((2, 4, 3, 4)) > 0.3) / 0.7
    r = check_gradients(lambda q, k, v: attention_core(q, k, v, dropout_mask=dm), q, k, v)
    assert r.max_error < 1e-7, r
    # the same as attending with the dropped probabilities by hand
    p = np.einsum("btnh,bsnh->bnts", q, np.repeat(k, 2, axis=2)) / np.sqrt(5)
    p = np.exp(p - p.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = np.einsum("bnts,bsnh->btnh", p * dm, np.repeat(v, 2, axis=2))
    np.testing.assert_allclose(attention_core(Tensor(q), Tensor(k), Tensor(v),
                                              dropout_mask=dm).data, want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------- torch parity
@pytest.mark.parametrize("K", [4, 2, 1])
@pytest.mark.parametrize("case", ["plain", "causal", "mask", "bias", "scale"])
def test_attention_matches_torch_sdpa(case, K):
    q, k, v = _qkv(T=5, S=5, K=K, Hv=5, dtype=np.float32)
    g = rng.standard_normal(q.shape[:3] + (v.shape[3],)).astype(np.float32)
    kw = {}
    if case == "causal":
        kw["is_causal"] = True
    elif case == "mask":
        m = rng.random((2, 1, 5, 5)) > 0.3
        m[..., 0] = True
        kw["mask"] = m
    elif case == "bias":
        kw["bias"] = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    elif case == "scale":
        kw["scale"] = 0.25
    want, wg = _torch_attention(q, k, v, g, **kw)
    got, gg = _axone_attention(q, k, v, g, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(gg, wg):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_attention_matches_keras_ops_with_mask_and_causal():
    keras = pytest.importorskip("keras")
    q, k, v = _qkv(T=4, S=6, K=2, Hv=5, dtype=np.float32)
    m = rng.random((2, 4, 4, 6)) > 0.3
    m[..., 0] = True
    want = keras.ops.dot_product_attention(q, k, v, mask=m, is_causal=True)
    got = ops.dot_product_attention(q, k, v, mask=m, is_causal=True)
    np.testing.assert_allclose(got.data, keras.ops.convert_to_numpy(want), rtol=1e-5, atol=1e-6)
    assert got.dtype == np.float32


def test_attention_names_resolve_through_the_keras_alias():
    assert axone.ops.nn.dot_product_attention is ops.dot_product_attention
    assert axone.ops.nn.layer_normalization is ops.layer_normalization
    assert axone.ops.nn.rms_normalization is ops.rms_normalization


# ----------------------------------------------------------------- bad input
def test_attention_argument_checks():
    q, k, v = _qkv(dtype=np.float32)
    with pytest.raises(ValueError, match="4-D"):
        ops.dot_product_attention(q[0], k[0], v[0])
    with pytest.raises(ValueError, match="only one of bias and mask"):
        ops.dot_product_attention(q, k, v, bias=np.zeros((1, 1, 3, 4)), mask=np.ones((1, 1, 3, 4), bool))
    with pytest.raises(ValueError, match="multiple"):
        ops.dot_product_attention(q[:, :, :3], k, v)
    with pytest.raises(ValueError, match="key and value"):
        ops.dot_product_attention(q, k, v[:, :2])
    with pytest.raises(ValueError, match="head dim"):
        ops.dot_product_attention(q[..., :2], k, v)
    with pytest.raises(ValueError, match="mask must broadcast"):
        ops.dot_product_attention(q, k, v, mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="bias must broadcast"):
        ops.dot_product_attention(q, k, v, bias=np.zeros((2, 4, 3, 5)))
    with pytest.raises(ValueError, match="attn_logits_soft_cap"):
        ops.dot_product_attention(q, k, v, attn_logits_soft_cap=20.0)
    with pytest.raises(NotImplementedError, match="flash_attention"):
        ops.dot_product_attention(q, k, v, flash_attention=True)
    with pytest.raises(TypeError, match="floating"):
        ops.dot_product_attention(q.astype(np.int32), k, v)
    # False / None are accepted
    ops.dot_product_attention(q, k, v, flash_attention=False)


def test_attention_fully_masked_row_attends_uniformly_like_torch():
    q, k, v = _qkv(T=2, S=3, N=2, K=2, dtype=np.float32)
    m = np.ones((1, 1, 2, 3), bool)
    m[..., 1, :] = False
    o = ops.dot_product_attention(q, k, v, mask=m).data
    np.testing.assert_allclose(o[:, 1], v.mean(axis=1), rtol=1e-5, atol=1e-6)
    # its output does not depend on its query: the gradient is 0 there, as finite differences say
    r = check_gradients(lambda q, k, v: ops.dot_product_attention(q, k, v, mask=m),
                        *(a.astype(np.float64) for a in (q, k, v)))
    assert r.max_error < 1e-7, r
    tq = Tensor(q, requires_grad=True)
    ops.dot_product_attention(tq, k, v, mask=m).sum().backward()
    np.testing.assert_array_equal(tq.grad[:, 1], 0)


# ------------------------------------------------------------ normalization
@pytest.mark.parametrize("axis, pshape", [(-1, (5,)), ((1, 2), (4, 5)), (1, (4,)), ((0, 2), (3, 5))])
def test_layer_normalization_gradients(axis, pshape):
    x = rng.standard_normal((3, 4, 5))
    gm, bt = rng.random(pshape) + 0.5, rng.standard_normal(pshape)
    r = check_gradients(lambda x, g, b: ops.layer_normalization(x, g, b, axis=axis, epsilon=1e-3),
                        x, gm, bt)
    assert r.max_error < 1e-7, r
    r = check_gradients(lambda x: ops.layer_normalization(x, axis=axis), x)
    assert r.max_error < 1e-7, r
    r = check_gradients(lambda x, g: ops.rms_normalization(x, g, axis=axis, epsilon=1e-3), x, gm)
    assert r.max_error < 1e-7, r


def test_layer_normalization_matches_torch():
    x = rng.standard_normal((4, 6, 8)).astype(np.float32)
    gm = (rng.random((6, 8)) + 0.5).astype(np.float32)
    bt = rng.standard_normal((6, 8)).astype(np.float32)
    up = rng.standard_normal(x.shape).astype(np.float32)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gm, bt))
    y = F.layer_norm(tx, (6, 8), tg, tb, 1e-5)
    (y * torch.tensor(up)).sum().backward()
    ax, ag, ab = (Tensor(a, requires_grad=True) for a in (x, gm, bt))
    z = ops.layer_normalization(ax, ag, ab, axis=(1, 2), epsilon=1e-5)
    (z * up).sum().backward()
    np.testing.assert_allclose(z.data, y.detach().numpy(), rtol=1e-5, atol=1e-5)
    for a, t in ((ax, tx), (ag, tg), (ab, tb)):
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_rms_normalization_matches_torch_and_keras():
    keras = pytest.importorskip("keras")
    x = rng.standard_normal((4, 7)).astype(np.float32)
    s = (rng.random(7) + 0.5).astype(np.float32)
    up = rng.standard_normal(x.shape).astype(np.float32)
    tx, ts = (torch.tensor(a, requires_grad=True) for a in (x, s))
    y = F.rms_norm(tx, (7,), ts, 1e-6)
    (y * torch.tensor(up)).sum().backward()
    ax, as_ = Tensor(x, requires_grad=True), Tensor(s, requires_grad=True)
    z = ops.rms_normalization(ax, as_, epsilon=1e-6)
    (z * up).sum().backward()
    np.testing.assert_allclose(z.data, y.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ax.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(as_.grad, ts.grad.numpy(), rtol=1e-4, atol=1e-5)
    # Keras's defaults (epsilon = backend.epsilon())
    np.testing.assert_allclose(ops.rms_normalization(x).data,
                               keras.ops.convert_to_numpy(keras.ops.rms_normalization(x)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ops.layer_normalization(x, s, s).data,
                               keras.ops.convert_to_numpy(keras.ops.layer_normalization(x, s, s)),
                               rtol=1e-5, atol=1e-5)


def test_layer_normalization_rms_scaling_matches_keras():
    keras = pytest.importorskip("keras")
    x = rng.standard_normal((3, 6)).astype(np.float32) + 1.0
    g = (rng.random(6) + 0.5).astype(np.float32)
    with pytest.warns(UserWarning):
        want = keras.ops.convert_to_numpy(keras.ops.layer_normalization(x, g, rms_scaling=True))
    with pytest.warns(UserWarning, match="deprecated"):
        got = ops.layer_normalization(x, g, rms_scaling=True).data
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_normalization_argument_checks():
    x = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="out of range"):
        ops.layer_normalization(x, axis=2)
    with pytest.raises(TypeError, match="axis"):
        ops.rms_normalization(x, axis="last")
    with pytest.raises(ValueError, match="gamma"):
        ops.layer_normalization(x, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="scale"):
        ops.rms_normalization(x, np.ones(5, np.float32))
    with pytest.raises(TypeError, match="unexpected"):
        ops.layer_normalization(x, bogus=1)
    assert ops.layer_normalization(np.arange(4)).dtype == np.float32
