"""Batch normalization as one node with the hand-written backward pass.

Training (statistics of the batch, over every axis but the feature axis):
    μ = mean(x),  σ² = mean((x − μ)²),  x̂ = (x − μ)/√(σ² + ε),  y = γ·x̂ + β
    dL/dγ = Σ dL/dy·x̂,   dL/dβ = Σ dL/dy,
    dL/dx = (γ / (N√(σ² + ε))) · (N·dL/dy − Σ dL/dy − x̂·Σ dL/dy·x̂)
Inference uses given (moving) statistics: y = γ·(x − m)/√(v + ε) + β, an affine map.

Layer normalization (statistics of each sample over ``axis``, n values):
    x̂ = (x − μ)/√(σ² + ε),  y = γ·x̂ + β,   with u = γ·dL/dy:
    dL/dx = (u − mean(u) − x̂·mean(u·x̂)) / √(σ² + ε)
RMS normalization:  r = 1/√(mean(x²) + ε),  y = x·r·γ,   with u = γ·dL/dy:
    dL/dx = r·u − r³·x·mean(u·x),   dL/dγ = Σ dL/dy·x·r

Each node computes with the array module of its inputs (NumPy or a device module such as
CuPy); the layer norm's row path and the in-place buffers serve host arrays only.
"""
import warnings

import numpy as np

from .. import backend
from ..autograd.function import Function, unbroadcast
from ..autograd.tensor import Tensor
from ..device import array_module, to_numpy
from . import _compiled
from . import math as M

__all__ = ["batch_normalization", "moments", "layer_normalization", "rms_normalization"]


class BatchNormTrain(Function):
    def forward(self, x, gamma, beta):
        axes = self.axes
        mean = x.mean(axis=axes, keepdims=True)
        d = x - mean
        var = (d * d).mean(axis=axes, keepdims=True)
        inv = 1.0 / array_module(x).sqrt(var + self.epsilon)
        self.xhat = xhat = d * inv
        self.inv, self.gamma = inv, gamma
        self.mean, self.var = mean, var
        return xhat * gamma + beta

    def backward(self, g):
        axes, xhat = self.axes, self.xhat
        n = int(np.prod([g.shape[a] for a in axes]))
        sum_g = g.sum(axis=axes, keepdims=True)
        sum_gx = (g * xhat).sum(axis=axes, keepdims=True)
        gx = None
        if self.needs[0]:
            gx = (self.gamma * self.inv / n) * (n * g - sum_g - xhat * sum_gx)
        ggamma = sum_gx.reshape(self.gamma.shape) if self.needs[1] else None
        gbeta = sum_g.reshape(self.gamma.shape) if self.needs[2] else None
        return gx, ggamma, gbeta


def moments(x, axes, keepdims=False):
    """Mean and (biased) variance over ``axes`` (Keras ``ops.moments``)."""
    x = M._t(x, "moments")
    return M.mean(x, axis=axes, keepdims=keepdims), M.var(x, axis=axes, keepdims=keepdims)


def batch_normalization(x, gamma, beta, axis=-1, epsilon=1e-3, mean=None, variance=None):
    """Normalize ``x`` per feature (``axis``) with batch statistics, or with the given
    ``mean``/``variance`` (inference).  Returns (y, batch_mean, batch_variance); the batch
    statistics are arrays (None at inference), for updating moving averages."""
    x = M._t(x, "batch_normalization")
    gamma = M._t(gamma, "batch_normalization")
    beta = M._t(beta, "batch_normalization")
    ax = M._axis(axis, x.ndim, "batch_normalization")[0]
    shape = [1] * x.ndim
    shape[ax] = x.shape[ax]
    if gamma.size != x.shape[ax] or beta.size != x.shape[ax]:
        raise ValueError(f"batch_normalization: gamma and beta need {x.shape[ax]} values (axis {axis} "
                         f"of input shape {x.shape}), received {gamma.shape} and {beta.shape}")
    if mean is None:
        g4 = M.reshape(gamma, shape)
        b4 = M.reshape(beta, shape)
        axes = tuple(i for i in range(x.ndim) if i != ax)
        fn_out = BatchNormTrain.apply(x, g4, b4, axes=axes, epsilon=float(epsilon), feature_axis=ax)
        ctx = fn_out._ctx
        if ctx is not None:
            bm, bv = ctx.mean, ctx.var
        else:  # no graph recorded: recompute the statistics
            bm = x.data.mean(axis=axes, keepdims=True)
            bv = ((x.data - bm) ** 2).mean(axis=axes, keepdims=True)
        return fn_out, bm.reshape(-1), bv.reshape(-1)
    xp = array_module(x.data)
    m = _stat(mean, xp).reshape(-1)
    v = _stat(variance, xp).reshape(-1)
    if m.size != x.shape[ax] or v.size != x.shape[ax]:
        raise ValueError(f"batch_normalization: mean and variance need {x.shape[ax]} values (axis "
                         f"{axis} of input shape {x.shape}), received {m.shape} and {v.shape}")
    return BatchNormInference.apply(x, gamma, beta, mean=m, var=v, epsilon=float(epsilon),
                                    shape=tuple(shape), feature_axis=ax), None, None


def inference_affine(gamma, beta, mean, var, epsilon, dtype, xp=np):
    """(r, s, shift) of batch normalization with given statistics, on the per-feature vectors:
    r = 1/√(v + ε) in the input's ``dtype``, s = γ·r, shift = β − m·s (y = x·s + shift).  The
    inference node and a prediction's fused steps (models/_inference.py) both form them here."""
    inv = (1.0 / xp.sqrt(var + epsilon)).astype(dtype)
    scale = gamma.reshape(-1) * inv
    shift = beta.reshape(-1) - mean.astype(dtype) * scale
    return inv, scale, shift


class BatchNormInference(Function):
    """Batch normalization with given (moving) statistics m, v, as one affine node:

        r = 1/√(v + ε),  s = γ·r,  y = x·s + (β − m·s)
        dL/dx = dL/dy·s,  dL/dγ = (Σ dL/dy·x − m·Σ dL/dy)·r,  dL/dβ = Σ dL/dy

    (sums over every axis but the feature axis).  s and the shift are formed on the per-feature
    vectors, so x is read once; over the last axis of a contiguous float32/64 host array the
    product and the sum run in one pass of the compiled module (``affine_clip``), else as
    NumPy's x * s + shift, the same bits.  Inputs x, γ, β; m and v are constants."""

    def forward(self, x, gamma, beta):
        xp = array_module(x, gamma, beta)
        inv, scale, shift = inference_affine(gamma, beta, self.mean, self.var, self.epsilon,
                                             x.dtype, xp)
        self.x, self.inv, self.scale = x, inv, scale
        n = scale.size
        if (xp is np and self.feature_axis == x.ndim - 1 and x.dtype in _ROW_FLOATS and x.size
                and scale.dtype == x.dtype and shift.dtype == x.dtype and x.flags.c_contiguous):
            kern = _compiled.kernels("affine_clip")
            if kern is not None:
                y = np.empty_like(x)
                kern.affine_clip(x.reshape(-1, n), scale, shift, -np.inf, np.inf, y.reshape(-1, n))
                return y
        return x * scale.reshape(self.shape) + shift.reshape(self.shape)

    def _axes(self, ndim):
        return tuple(i for i in range(ndim) if i != self.feature_axis)

    def backward(self, g):
        needs, x, scale = self.needs, self.x, self.scale
        gx = gg = gb = None
        if needs[0]:
            gx = g * scale.reshape(self.shape)
        if needs[1] or needs[2]:
            axes = self._axes(g.ndim)
            sum_g = g.sum(axis=axes)
            if needs[1]:
                sum_gx = (g * x).sum(axis=axes)
                gg = (sum_gx - self.mean.astype(sum_gx.dtype) * sum_g) * self.inv
                gg = gg.reshape(self.inputs[1].shape)
            if needs[2]:
                gb = sum_g.reshape(self.inputs[2].shape)
        return gx, gg, gb

    def backward_graph(self, g):
        x, gamma, _ = self.inputs
        inv = M._wrap(self.inv.reshape(self.shape))
        m = M._wrap(self.mean.astype(self.inv.dtype).reshape(self.shape))
        axes = self._axes(g.ndim)
        gx = g * (M.reshape(gamma, self.shape) * inv) if self.needs[0] else None
        gg = (M.reshape(M.sum(g * (x - m) * inv, axis=axes), gamma.shape)
              if self.needs[1] else None)
        gb = M.reshape(M.sum(g, axis=axes), self.inputs[2].shape) if self.needs[2] else None
        return gx, gg, gb


def _stat(s, xp):
    """A given mean or variance as an array of ``xp`` (moved there when it lives elsewhere)."""
    s = s.data if isinstance(s, Tensor) else s
    if array_module(s) is xp:
        return xp.asarray(s)
    return xp.asarray(to_numpy(s))


_ROW_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# LayerNorm over the last axis through the compiled rows (layer_norm_rows) when it is built
COMPILED_ROWS = True


def _flat(p, n):
    """γ or β as the contiguous (n,) vector the compiled rows take (None stays None)."""
    return None if p is None else np.ascontiguousarray(p).reshape(n)


def _row_parts():
    from . import _parallel
    return 1 if _parallel.inside_block() else max(1, _parallel._threads())


class LayerNorm(Function):
    """y = γ·(x − μ)/√(σ² + ε) + β over ``axes`` (γ, β broadcast against x or absent).

    Backward, with x̂ = (x − μ)·r, r = 1/√(σ² + ε), u = g·γ and means over ``axes``:
        dx = r·(u − mean(u) − x̂·mean(u·x̂)),   dγ = Σ g·x̂,   dβ = Σ g
    (dγ, dβ summed over the axes γ and β were broadcast along).  Inputs: x, then γ when
    ``has_gamma``, then β when ``has_beta``.

    Over the last axis alone (n ≤ ``ROW_MAX`` features, float32/64, γ and β holding one value a
    feature) the node works on the (rows, n) matrix: with the compiled module, x̂, r and y in one
    pass over each row and dx in one more (``layer_norm_rows``, the row sums in double, runs of
    rows on the pool's threads); without it the means and Σ x̂·u are matrix–vector products with a
    ones vector and row dot products (``np.einsum``).  dγ and dβ are column sums either way.  The
    same equations, rounded in another order."""

    ROW_MAX = 8192

    def _rows_ok(self, x, params):
        n = x.shape[-1] if x.ndim else 0
        return (self.axes == (x.ndim - 1,) and 1 <= n <= self.ROW_MAX and x.size > 0
                and x.dtype in _ROW_FLOATS and all(p.dtype == x.dtype and p.size == n and
                                                   p.shape[-1:] == (n,) for p in params))

    def _forward_rows(self, x, gamma, beta):
        n = x.shape[-1]
        dt = x.dtype
        x2 = np.ascontiguousarray(x).reshape(-1, n)
        ones = np.ones(n, dtype=dt)
        kern = _compiled.kernels("layer_norm_rows") if COMPILED_ROWS else None
        if kern is not None:
            R = x2.shape[0]
            y, xhat, inv = np.empty((R, n), dt), np.empty((R, n), dt), np.empty(R, dt)
            kern.layer_norm_rows(x2, _flat(gamma, n), _flat(beta, n), float(self.epsilon), y,
                                 xhat, inv, _row_parts())
            self.rows, self.ones, self.inv, self.xhat, self.gamma = True, ones, inv, xhat, gamma
            return y.reshape(x.shape)
        mean = x2 @ ones
        mean /= dt.type(n)
        d = x2 - mean[:, None]
        var = np.einsum("ij,ij->i", d, d)
        var /= dt.type(n)
        var += dt.type(self.epsilon)
        inv = np.sqrt(var, out=var)
        np.divide(dt.type(1), inv, out=inv)
        xhat = np.multiply(d, inv[:, None], out=d)
        self.rows, self.ones, self.inv = True, ones, inv
        self.xhat = xhat
        self.gamma = gamma
        if gamma is None:
            y = xhat.copy() if beta is None else xhat + beta.reshape(n)
        else:
            y = xhat * gamma.reshape(n)
            if beta is not None:
                y += beta.reshape(n)
        return y.reshape(x.shape)

    def _backward_rows(self, g):
        xhat, gamma, needs, inv, ones = self.xhat, self.gamma, self.needs, self.inv, self.ones
        R, n = xhat.shape
        dt = xhat.dtype
        g2 = np.ascontiguousarray(g, dtype=dt).reshape(R, n)
        out = [None] * len(needs)
        kern = _compiled.kernels("layer_norm_rows_backward") if COMPILED_ROWS else None
        if needs[0] and kern is not None:
            dx = np.empty((R, n), dt)
            kern.layer_norm_rows_backward(g2, xhat, inv, _flat(gamma, n), dx, _row_parts())
            out[0] = dx.reshape(g.shape)
        elif needs[0]:
            u = g2 if gamma is None else g2 * gamma.reshape(n)
            m1 = u @ ones
            m1 /= dt.type(n)
            m2 = np.einsum("ij,ij->i", u, xhat)
            m2 /= dt.type(n)
            xm = xhat * m2[:, None]
            dx = np.subtract(u, m1[:, None], out=None if u is g2 else u)
            dx -= xm
            dx *= inv[:, None]
            out[0] = dx.reshape(g.shape)
        i = 1
        if self.has_gamma:
            if needs[1]:
                out[1] = np.einsum("ij,ij->j", g2, xhat).reshape(gamma.shape)
            i = 2
        if self.has_beta and needs[i]:
            out[i] = (np.ones(R, dtype=dt) @ g2).reshape(self.inputs[i].data.shape)
        return tuple(out)

    rows = False

    def forward(self, x, *params):
        gamma = params[0] if self.has_gamma else None
        beta = params[-1] if self.has_beta else None
        xp = array_module(x, *params)
        self.host = host = xp is np
        if host and self._rows_ok(x, params):
            return self._forward_rows(x, gamma, beta)
        axes = self.axes
        mean = x.mean(axis=axes, keepdims=True)
        d = x - mean
        sq = d * d
        var = sq.mean(axis=axes, keepdims=True)
        self.inv = inv = 1.0 / xp.sqrt(var + x.dtype.type(self.epsilon))
        # on the host: x̂ = d·r in d's buffer, y = x̂·γ + β in the squares' buffer, when the
        # dtypes and shapes let them stay (the same operations as without the buffers)
        if host and inv.dtype == d.dtype:
            xhat = np.multiply(d, inv, out=d)
        else:
            xhat = d * inv
        self.xhat = xhat
        self.gamma = gamma
        if gamma is None and beta is None:
            return xhat.copy()
        ps = [a for a in (gamma, beta) if a is not None]
        if host and np.result_type(xhat, *ps) == sq.dtype and \
                np.broadcast_shapes(xhat.shape, *(a.shape for a in ps)) == sq.shape:
            if gamma is None:
                return np.add(xhat, beta, out=sq)
            y = np.multiply(xhat, gamma, out=sq)
            if beta is not None:
                y += beta
            return y
        y = xhat if gamma is None else xhat * gamma
        if beta is not None:
            y = y + beta
        return y

    def backward(self, g):
        if self.rows:
            return self._backward_rows(g)
        axes, xhat, gamma, needs = self.axes, self.xhat, self.gamma, self.needs
        out = [None] * len(needs)
        if needs[0]:
            u = g if gamma is None else g * gamma
            m1 = u.mean(axis=axes, keepdims=True)
            t = u * xhat
            m2 = t.mean(axis=axes, keepdims=True)
            # dx = r·(u − mean(u) − x̂·mean(u·x̂)), with the buffers of u (when new) and t on
            # the host
            host = self.host
            if host and t.shape == np.broadcast_shapes(xhat.shape, m2.shape) and \
                    np.result_type(xhat, m2) == t.dtype:
                xm = np.multiply(xhat, m2, out=t)
            else:
                xm = xhat * m2
            if host and u is not g and \
                    u.shape == np.broadcast_shapes(u.shape, m1.shape, xm.shape) and \
                    np.result_type(u, m1, xm, self.inv) == u.dtype:
                dx = np.subtract(u, m1, out=u)
                dx -= xm
                dx *= self.inv
            else:
                dx = self.inv * (u - m1 - xm)
            out[0] = dx
        i = 1
        if self.has_gamma:
            if needs[1]:
                out[1] = unbroadcast(g * xhat, gamma.shape)
            i = 2
        if self.has_beta and needs[i]:
            out[i] = unbroadcast(g, self.inputs[i].data.shape)
        return tuple(out)


class RMSNorm(Function):
    """y = x·γ/√(mean(x²) + ε) over ``axes`` (γ broadcast against x, or absent).

    Backward, with r = 1/√(mean(x²) + ε) and u = g·γ:
        dx = r·u − r³·x·mean(u·x),   dγ = Σ g·x·r."""

    def forward(self, x, scale=None):
        xp = array_module(x, scale)
        r = 1.0 / xp.sqrt((x * x).mean(axis=self.axes, keepdims=True) + x.dtype.type(self.epsilon))
        self.x, self.r, self.scale = x, r, scale
        y = x * r
        return y if scale is None else y * scale

    def backward(self, g):
        x, r, scale, needs = self.x, self.r, self.scale, self.needs
        gx = gs = None
        if needs[0]:
            u = g if scale is None else g * scale
            gx = r * u - (r * r * r) * x * (u * x).mean(axis=self.axes, keepdims=True)
        if len(needs) > 1 and needs[1]:
            gs = unbroadcast(g * x * r, scale.shape)
        return (gx,) if len(needs) == 1 else (gx, gs)


def _norm_axes(axis, ndim, op):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer, list, tuple)):
        raise TypeError(f"{op}: axis must be an int or a list/tuple of ints, received {axis!r}")
    return tuple(sorted(M._axis(axis, ndim, op)))


def _param(v, x, axes, op, name):
    """γ/β as a tensor broadcasting against x: reshaped onto ``axes`` unless it has x's rank or
    the axis is the last one alone (Keras's rule)."""
    v = M._t(v, op)
    if v.dtype != x.dtype:
        v = M.cast(v, x.dtype)
    bshape = [1] * x.ndim
    for a in axes:
        bshape[a] = x.shape[a]
    if v.ndim != x.ndim and axes != (x.ndim - 1,):
        if v.size != int(np.prod([x.shape[a] for a in axes])):
            raise ValueError(f"{op}: {name} must have {tuple(x.shape[a] for a in axes)} values "
                             f"(the normalized axes {axes} of input shape {x.shape}), received "
                             f"shape {v.shape}")
        v = M.reshape(v, tuple(bshape))
    try:
        np.broadcast_shapes(v.shape, tuple(bshape))
        if np.broadcast_shapes(v.shape, x.shape) != x.shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"{op}: {name} of shape {v.shape} does not broadcast against the "
                         f"normalized axes {axes} of input shape {x.shape}") from None
    return v


def _float_input(x, op):
    x = M._t(x, op)
    if x.dtype.kind != "f":
        x = M.cast(x, backend.floatx())       # Keras: result_type(int, float32) is float32
    return x


def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, **kwargs):
    """Normalize each sample over ``axis``: γ·(x − μ)/√(σ² + ε) + β, one node (Keras
    ``ops.layer_normalization``; ``epsilon`` defaults to ``backend.epsilon()``).  The deprecated
    ``rms_scaling=True`` computes γ·x/√(σ² + ε), as Keras does."""
    op = "layer_normalization"
    rms_scaling = kwargs.pop("rms_scaling", False)
    if kwargs:
        raise TypeError(f"{op}: unexpected keyword argument(s) {sorted(kwargs)}")
    x = _float_input(x, op)
    if x.ndim == 0:
        raise ValueError(f"{op}: expected an input with at least one axis, received a scalar")
    axes = _norm_axes(axis, x.ndim, op)
    eps = backend.epsilon() if epsilon is None else float(epsilon)
    g = None if gamma is None else _param(gamma, x, axes, op, "gamma")
    b = None if beta is None else _param(beta, x, axes, op, "beta")
    if rms_scaling:
        warnings.warn("layer_normalization: rms_scaling=True is deprecated (it scales by the "
                      "variance, not the root mean square); use rms_normalization instead")
        y = x / M.sqrt(M.var(x, axis=axes, keepdims=True) + eps)
        return y if g is None else y * g
    ins = [x] + ([g] if g is not None else []) + ([b] if b is not None else [])
    return LayerNorm.apply(*ins, axes=axes, epsilon=eps, has_gamma=g is not None,
                           has_beta=b is not None)


def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    """x·scale/√(mean(x²) + ε) over ``axis``, one node (Keras ``ops.rms_normalization``;
    ``epsilon`` defaults to ``backend.epsilon()``)."""
    op = "rms_normalization"
    x = _float_input(x, op)
    if x.ndim == 0:
        x = M.reshape(x, (1,))
    axes = _norm_axes(axis, x.ndim, op)
    eps = backend.epsilon() if epsilon is None else float(epsilon)
    if scale is None:
        return RMSNorm.apply(x, axes=axes, epsilon=eps)
    s = _param(scale, x, axes, op, "scale")
    return RMSNorm.apply(x, s, axes=axes, epsilon=eps)
