"""Batch normalization as one node with the hand-written backward pass.

Training (statistics of the batch, over every axis but the feature axis):
    μ = mean(x),  σ² = mean((x − μ)²),  x̂ = (x − μ)/√(σ² + ε),  y = γ·x̂ + β
    dL/dγ = Σ dL/dy·x̂,   dL/dβ = Σ dL/dy,
    dL/dx = (γ / (N√(σ² + ε))) · (N·dL/dy − Σ dL/dy − x̂·Σ dL/dy·x̂)
Inference uses given (moving) statistics: y = γ·(x − m)/√(v + ε) + β, an affine map.
"""
import numpy as np

from ..autograd.function import Function
from . import math as M

__all__ = ["batch_normalization", "moments"]


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
