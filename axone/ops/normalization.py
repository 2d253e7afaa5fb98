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
"""
import warnings

import numpy as np

from .. import backend
from ..autograd.function import Function, unbroadcast
from . import math as M

__all__ = ["batch_normalization", "moments", "layer_normalization", "rms_normalization"]


class BatchNormTrain(Function):
    def forward(self, x, gamma, beta):
        axes = self.axes
        mean = x.mean(axis=axes, keepdims=True)
        d = x - mean
        var = (d * d).mean(axis=axes, keepdims=True)
        inv = 1.0 / np.sqrt(var + self.epsilon)
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
    g4 = M.reshape(gamma, shape)
    b4 = M.reshape(beta, shape)
    if mean is None:
        axes = tuple(i for i in range(x.ndim) if i != ax)
        fn_out = BatchNormTrain.apply(x, g4, b4, axes=axes, epsilon=float(epsilon), feature_axis=ax)
        ctx = fn_out._ctx
        if ctx is not None:
            bm, bv = ctx.mean, ctx.var
        else:  # no graph recorded: recompute the statistics
            bm = x.data.mean(axis=axes, keepdims=True)
            bv = ((x.data - bm) ** 2).mean(axis=axes, keepdims=True)
        return fn_out, bm.reshape(-1), bv.reshape(-1)
    m = np.asarray(mean.data if hasattr(mean, "data") else mean).reshape(shape)
    v = np.asarray(variance.data if hasattr(variance, "data") else variance).reshape(shape)
    inv = (1.0 / np.sqrt(v + epsilon)).astype(x.dtype)
    return (x - m.astype(x.dtype)) * (g4 * inv) + b4, None, None


class LayerNorm(Function):
    """y = γ·(x − μ)/√(σ² + ε) + β over ``axes`` (γ, β broadcast against x or absent).

    Backward, with x̂ = (x − μ)·r, r = 1/√(σ² + ε), u = g·γ and means over ``axes``:
        dx = r·(u − mean(u) − x̂·mean(u·x̂)),   dγ = Σ g·x̂,   dβ = Σ g
    (dγ, dβ summed over the axes γ and β were broadcast along).  Inputs: x, then γ when
    ``has_gamma``, then β when ``has_beta``."""

    def forward(self, x, *params):
        gamma = params[0] if self.has_gamma else None
        beta = params[-1] if self.has_beta else None
        axes = self.axes
        mean = x.mean(axis=axes, keepdims=True)
        d = x - mean
        var = (d * d).mean(axis=axes, keepdims=True)
        self.inv = inv = 1.0 / np.sqrt(var + x.dtype.type(self.epsilon))
        self.xhat = xhat = d * inv
        self.gamma = gamma
        y = xhat if gamma is None else xhat * gamma
        if beta is not None:
            y = y + beta
        elif gamma is None:
            y = y.copy() if y is xhat else y
        return y

    def backward(self, g):
        axes, xhat, gamma, needs = self.axes, self.xhat, self.gamma, self.needs
        out = [None] * len(needs)
        if needs[0]:
            u = g if gamma is None else g * gamma
            out[0] = self.inv * (u - u.mean(axis=axes, keepdims=True)
                                 - xhat * (u * xhat).mean(axis=axes, keepdims=True))
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
        r = 1.0 / np.sqrt((x * x).mean(axis=self.axes, keepdims=True) + x.dtype.type(self.epsilon))
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
