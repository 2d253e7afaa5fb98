"""Scaled dot-product attention as one node with the hand-written backward pass.

Shapes (Keras ``ops.dot_product_attention``): query (B, T, N, H), key (B, S, K, H),
value (B, S, K, Hv); N query heads share K key/value heads in groups of G = N / K
(query head n reads key/value head n // G: multi-head when K = N, grouped-query when K < N).

Forward, per batch b and head n (q_t, k_s, v_s the rows of the head):
    s_ts = c·q_t·k_s + a_ts            c the scale (default 1/√H), a the bias and the masks
    p_ts = exp(s_ts) / Σ_s' exp(s_ts')
    o_t  = Σ_s (p_ts·m_ts)·v_s          m an optional dropout mask on the probabilities
Backward, with g = dL/do and p̃ = p·m:
    dL/dv_s = Σ_t p̃_ts·g_t,   dL/dp̃_ts = g_t·v_s,   dL/dp = m·dL/dp̃,
    dL/ds_ts = p_ts·(dL/dp_ts − Σ_s' p_ts'·dL/dp_ts'),
    dL/dq_t = c·Σ_s dL/ds_ts·k_s,   dL/dk_s = c·Σ_t dL/ds_ts·q_t,   dL/da = dL/ds
(key/value gradients summed over the G query heads of their group).
A masked entry adds a large negative number to s (as Keras's torch backend), so its
probability is 0; a row masked everywhere attends uniformly, and since its output does not
depend on its logits then, no gradient flows back through them (dL/ds = 0 on that row).

The node computes with the array module of its inputs (NumPy or a device module such as CuPy);
the compiled softmax rows and the products written into preallocated layouts serve host arrays,
a device array takes the same products as plain ``xp`` calls.  Masks and dropout masks are moved
to the inputs' module.
"""
import numpy as np

from ..autograd.function import Function, unbroadcast
from ..autograd.tensor import Tensor
from ..device import array_module, to_numpy
from . import _compiled, _parallel
from . import math as M

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

__all__ = ["dot_product_attention"]


def large_negative(dtype):
    """The additive value of a masked logit (−0.7 × the largest float32, −0.7·65500 for float16)."""
    dtype = np.dtype(dtype)
    return dtype.type((65500.0 if dtype == np.float16 else 3.38953e38) * -0.7)


# the softmax's backward through the compiled softmax_grad_rows when it is built
COMPILED_SOFTMAX_GRAD = True


class DotProductAttention(Function):
    """softmax(c·Q·Kᵀ + A)·V over (B, T, N, H) queries; see the module docstring for the equations.

    Params: ``scale`` (c), ``additive`` (an array broadcastable to (B, N, T, S) added to the
    logits, from masks; or None), ``drop`` (a dropout mask on the probabilities, or None)."""

    additive = None
    drop = None
    dead = None

    def forward(self, q, k, v, bias=None):
        B, T, N, H = q.shape
        S, K, Hv = k.shape[1], k.shape[2], v.shape[3]
        G = N // K
        dt = q.dtype
        c = dt.type(self.scale)
        self.xp = xp = array_module(q, k, v, bias)
        host = xp is np
        # c·q in the heads-first layout (one pass on the host: the copy and the scale together)
        q5 = q.reshape(B, T, K, G, H).transpose(0, 2, 3, 1, 4)
        if host:
            qt = np.empty((B, K, G, T, H), dtype=dt)
            np.multiply(q5, c, out=qt)
        else:
            qt = q5 * c
        kt = k.transpose(0, 2, 1, 3)[:, :, None]                  # (B, K, 1, S, H), a view
        vt = v.transpose(0, 2, 1, 3)[:, :, None]                  # (B, K, 1, S, Hv), a view
        if host and G == 1:            # (B, N) stacks of products, runs of them per thread
            s = _parallel.bmm(qt[:, :, 0], kt[:, :, 0].swapaxes(-1, -2)).reshape(B, N, T, S)
        else:
            s = xp.matmul(qt, kt.swapaxes(-1, -2)).reshape(B, N, T, S)
        if bias is not None:
            s += bias
        if self.additive is not None:
            s += self.additive
            # a row masked everywhere is uniform whatever its logits: no gradient flows back
            masked = self.additive <= dt.type(0.5) * large_negative(dt)
            if host:
                dead = np.logical_and.reduce(masked, axis=-1, keepdims=True)
            else:
                dead = xp.all(masked, axis=-1, keepdims=True)
            self.dead = dead if dead.any() else None
        k = _compiled.kernels("softmax_rows") if host and dt in _FLOATS and S > 0 else None
        if k is not None:
            # the same row max, exp, sum and division, one pass of the compiled module a row
            p = np.empty_like(s)
            k.softmax_rows(s.reshape(-1, S), p.reshape(-1, S), None)
        else:
            s -= s.max(axis=-1, keepdims=True)
            xp.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            p = s
        pd = p if self.drop is None else p * self.drop
        self.qt, self.kt, self.vt, self.p, self.pd = qt, kt, vt, p, pd
        self.bias_shape = None if bias is None else bias.shape
        if not host:
            o = xp.matmul(pd.reshape(B, K, G, T, S), vt)              # (B, K, G, T, Hv)
            return o.transpose(0, 3, 1, 2, 4).reshape(B, T, N, Hv)
        # the output straight into the (B, T, N, Hv) layout: no transposing copy afterwards
        out = np.empty((B, T, K, G, Hv), dtype=dt)
        if G == 1:
            _parallel.bmm(pd.reshape(B, K, T, S), vt[:, :, 0], out=out.transpose(0, 2, 3, 1, 4)[:, :, 0])
        else:
            np.matmul(pd.reshape(B, K, G, T, S), vt, out=out.transpose(0, 2, 3, 1, 4))
        return out.reshape(B, T, N, Hv)

    def backward(self, g):
        qt, kt, vt, p, pd = self.qt, self.kt, self.vt, self.p, self.pd
        B, K, G, T, H = qt.shape
        S, Hv = kt.shape[3], vt.shape[4]
        N = K * G
        dt = p.dtype
        needs = self.needs
        gt = g.reshape(B, T, K, G, Hv).transpose(0, 2, 3, 1, 4)     # (B, K, G, T, Hv), a view
        if self.xp is not np:
            return self._backward_xp(gt)
        gv = None
        if needs[2]:
            pdt = pd.reshape(B, K, G, T, S).swapaxes(-1, -2)
            gv = np.empty((B, S, K, Hv), dtype=dt)
            if G == 1:
                _parallel.bmm(pdt[:, :, 0], gt[:, :, 0], out=gv.transpose(0, 2, 1, 3))
            else:
                gv.transpose(0, 2, 1, 3)[...] = np.matmul(pdt, gt).sum(axis=2)
        gq = gk = gb = None
        if needs[0] or needs[1] or (len(needs) > 3 and needs[3]):
            if G == 1:
                dp = _parallel.bmm(gt[:, :, 0], vt[:, :, 0].swapaxes(-1, -2)).reshape(B, N, T, S)
            else:
                dp = np.matmul(gt, vt.swapaxes(-1, -2)).reshape(B, N, T, S)
            if self.drop is not None:
                dp *= self.drop
            # dL/ds = p·(dL/dp − Σ_s p·dL/dp), in place in dp (one compiled pass a row)
            kern = _compiled.kernels("softmax_grad_rows") if COMPILED_SOFTMAX_GRAD else None
            if (kern is not None and dt in _FLOATS and S > 0 and dp.flags.c_contiguous
                    and p.flags.c_contiguous and dp.dtype == p.dtype):
                kern.softmax_grad_rows(dp.reshape(-1, S), p.reshape(-1, S),
                                       1 if _parallel.inside_block() else max(1, _parallel._threads()))
            else:
                dot = (dp * p).sum(axis=-1, keepdims=True)
                dp -= dot
                dp *= p
            ds = dp
            if self.dead is not None:
                ds = np.where(self.dead, ds.dtype.type(0), ds)
            if len(needs) > 3 and needs[3]:
                gb = unbroadcast(ds, self.bias_shape)
            ds5 = ds.reshape(B, K, G, T, S)
            if needs[0]:
                # dL/dq = c·ds·k, written in the (B, T, N, H) layout and scaled there
                gq = np.empty((B, T, K, G, H), dtype=dt)
                if G == 1:
                    _parallel.bmm(ds5[:, :, 0], kt[:, :, 0], out=gq.transpose(0, 2, 3, 1, 4)[:, :, 0])
                else:
                    np.matmul(ds5, kt, out=gq.transpose(0, 2, 3, 1, 4))
                gq *= dt.type(self.scale)
                gq = gq.reshape(B, T, N, H)
            if needs[1]:
                # dL/dk = c·dsᵀ·q = dsᵀ·(c·q): qt holds c·q already
                gk = np.empty((B, S, K, H), dtype=dt)
                if G == 1:
                    _parallel.bmm(ds5[:, :, 0].swapaxes(-1, -2), qt[:, :, 0], out=gk.transpose(0, 2, 1, 3))
                else:
                    gk.transpose(0, 2, 1, 3)[...] = np.matmul(ds5.swapaxes(-1, -2), qt).sum(axis=2)
        if len(needs) > 3:
            return gq, gk, gv, gb
        return gq, gk, gv

    def _backward_xp(self, gt):
        """The backward on device arrays: the same products as plain ``xp`` calls, each result
        transposed into its input's layout afterwards."""
        xp, qt, kt, vt, p, pd = self.xp, self.qt, self.kt, self.vt, self.p, self.pd
        B, K, G, T, H = qt.shape
        S, Hv = kt.shape[3], vt.shape[4]
        N = K * G
        needs = self.needs
        gv = gq = gk = gb = None
        if needs[2]:
            gv5 = xp.matmul(pd.reshape(B, K, G, T, S).swapaxes(-1, -2), gt)   # (B, K, G, S, Hv)
            gv = gv5.sum(axis=2).transpose(0, 2, 1, 3)
        if needs[0] or needs[1] or (len(needs) > 3 and needs[3]):
            dp = xp.matmul(gt, vt.swapaxes(-1, -2)).reshape(B, N, T, S)
            if self.drop is not None:
                dp = dp * self.drop
            ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
            if self.dead is not None:
                ds = xp.where(self.dead, ds.dtype.type(0), ds)
            if len(needs) > 3 and needs[3]:
                gb = unbroadcast(ds, self.bias_shape)
            ds5 = ds.reshape(B, K, G, T, S)
            if needs[0]:
                gq5 = xp.matmul(ds5, kt) * p.dtype.type(self.scale)            # (B, K, G, T, H)
                gq = gq5.transpose(0, 3, 1, 2, 4).reshape(B, T, N, H)
            if needs[1]:
                gk5 = xp.matmul(ds5.swapaxes(-1, -2), qt)                      # (B, K, G, S, H)
                gk = gk5.sum(axis=2).transpose(0, 2, 1, 3)
        if len(needs) > 3:
            return gq, gk, gv, gb
        return gq, gk, gv


def _array(x, xp=np):
    """``x`` (a Tensor, an array or a nested list) as an array of ``xp``, moved there when it
    lives elsewhere."""
    d = x.data if isinstance(x, Tensor) else x
    if xp is np:
        return to_numpy(d)
    return xp.asarray(d) if array_module(d) is xp else xp.asarray(to_numpy(d))


def causal_mask(t, s, xp=np):
    """(T, S) boolean lower triangle: query t sees keys s ≤ t (top-left aligned, as torch)."""
    return xp.tril(xp.ones((t, s), dtype=bool))


def attention_core(query, key, value, bias=None, mask=None, scale=None, is_causal=False,
                   dropout_mask=None, op="dot_product_attention"):
    """The checked fused node on Tensors (B, T, N, H) / (B, S, K, H) / (B, S, K, Hv); ``mask`` a
    boolean array broadcastable to (B, N, T, S), ``dropout_mask`` an array of shape (B, N, T, S)."""
    B, T, N, H = query.shape
    S, K = key.shape[1], key.shape[2]
    shape = (B, N, T, S)
    xp = array_module(query.data, key.data, value.data)
    additive = None
    if mask is not None or is_causal:
        keep = None
        if mask is not None:
            m = _array(mask, xp)
            keep = m if m.dtype == bool else m != 0
            try:
                np.broadcast_shapes(keep.shape, shape)
            except ValueError:
                raise ValueError(f"{op}: mask must broadcast to (batch, num_heads, query length, "
                                 f"key length) = {shape}, received shape {keep.shape}") from None
        if is_causal:
            c = causal_mask(T, S, xp)
            keep = c if keep is None else xp.logical_and(keep, c)
        additive = xp.where(keep, query.dtype.type(0), large_negative(query.dtype))
    if scale is None:
        scale = 1.0 / np.sqrt(H)
    if dropout_mask is not None and xp is not np:
        # a dropout mask drawn on the host moves to the inputs' module
        dropout_mask = _array(dropout_mask, xp)
    inputs = (query, key, value) if bias is None else (query, key, value, bias)
    return DotProductAttention.apply(*inputs, scale=float(scale), additive=additive,
                                     drop=dropout_mask)


def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False,
                          flash_attention=None, attn_logits_soft_cap=None):
    """softmax(scale·Q·Kᵀ + bias)·V, one fused node (Keras ``ops.dot_product_attention``).

    Args:
        query: (B, T, N, H).  key: (B, S, K, H) with N a multiple of K (grouped-query
            attention when K < N).  value: (B, S, K, Hv).
        bias: added to the logits, broadcastable to (B, N, T, S); differentiable.
        mask: boolean, broadcastable to (B, N, T, S); True where a key is attended to.
        scale: the logits' factor (default 1/√H).
        is_causal: query t attends to keys s ≤ t only (combined with ``mask``).
        flash_attention: None or False (axone has no flash kernel).
        attn_logits_soft_cap: must be None (as Keras outside JAX on TPU).
    Returns the attention output (B, T, N, Hv).
    """
    op = "dot_product_attention"
    if attn_logits_soft_cap is not None:
        raise ValueError(f"{op}: attn_logits_soft_cap is only supported by Keras for JAX on TPU; "
                         f"set attn_logits_soft_cap=None (received {attn_logits_soft_cap!r})")
    if flash_attention:
        raise NotImplementedError(f"{op}: flash_attention=True is not supported by axone; pass "
                                  f"flash_attention=None or False")
    q, k, v = M._t(query, op), M._t(key, op), M._t(value, op)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"{op}: only 4-D inputs (batch, length, heads, head dim) are supported, "
                         f"received query.shape={q.shape}, key.shape={k.shape}, "
                         f"value.shape={v.shape}")
    if bias is not None and mask is not None:
        raise ValueError(f"{op}: only one of bias and mask can be provided, received both")
    for name, t in (("query", q), ("key", k), ("value", v)):
        if t.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a floating tensor, received dtype {t.dtype}")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(f"{op}: key and value must agree in batch, length and heads, received "
                         f"key.shape={k.shape} and value.shape={v.shape}")
    if q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise ValueError(f"{op}: query and key must agree in batch size and head dim, received "
                         f"query.shape={q.shape} and key.shape={k.shape}")
    if k.shape[2] == 0 or q.shape[2] % k.shape[2]:
        raise ValueError(f"{op}: the number of query heads ({q.shape[2]}) must be a multiple of the "
                         f"number of key/value heads ({k.shape[2]})")
    dt = np.result_type(q.dtype, k.dtype, v.dtype)
    q, k, v = (t if t.dtype == dt else M.cast(t, dt) for t in (q, k, v))
    if bias is not None:
        bias = M._t(bias, op)
        if bias.dtype != dt:
            bias = M.cast(bias, dt)
        shape = (q.shape[0], q.shape[2], q.shape[1], k.shape[1])
        try:
            if np.broadcast_shapes(bias.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"{op}: bias must broadcast to (batch, num_heads, query length, key "
                             f"length) = {shape}, received shape {bias.shape}") from None
    if scale is not None:
        scale = float(_array(scale))        # a device scalar comes to the host
    return attention_core(q, k, v, bias=bias, mask=mask, scale=scale, is_causal=bool(is_causal),
                          op=op)
