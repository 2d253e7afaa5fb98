"""Finite-difference gradient checking (course 001: "approximation numérique").

The analytic gradient from ``backward()`` is compared with central
differences  ∂f/∂xᵢ ≈ (f(x + εeᵢ) − f(x − εeᵢ)) / 2ε  computed in float64, on the
device of the inputs (host arrays, or the device module's arrays: ``array_module``).
"""
from dataclasses import dataclass, field

import numpy as np

from ..device import array_module
from .tensor import Tensor


@dataclass
class GradientCheck:
    """Result of :func:`check_gradients`.

    ``max_error`` is the largest relative error over all inputs,
    ‖g_analytic − g_numeric‖ / max(‖g_analytic‖ + ‖g_numeric‖, 1): relative for
    gradients of norm above 1, absolute below (so a true zero gradient is not
    judged by the finite differences' round-off alone);
    ``worst_input`` names the input where it occurred; ``errors`` lists one per input.
    """
    max_error: float
    worst_input: str
    errors: list = field(default_factory=list)
    analytic: list = field(default_factory=list, repr=False)
    numeric: list = field(default_factory=list, repr=False)

    def __float__(self):
        return float(self.max_error)

    def ok(self, tol=1e-6):
        return self.max_error <= tol


def _scalarize(out, weights):
    if not isinstance(out, Tensor):
        raise TypeError(f"check_gradients: fn must return a Tensor, received {type(out).__name__}")
    if out.data.size == 1:
        return out.sum()
    return (out * weights).sum()


def numerical_gradient(fn, inputs, index, eps=1e-6, weights=None):
    """Central-difference gradient of sum(fn(*inputs) · weights) w.r.t. ``inputs[index]``."""
    x = inputs[index].data
    grad = array_module(x).zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        fp = float(_scalarize(fn(*inputs), weights).data)
        flat[i] = orig - eps
        fm = float(_scalarize(fn(*inputs), weights).data)
        flat[i] = orig
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def check_gradients(fn, *inputs, eps=1e-6, names=None, seed=0):
    """Compare ``backward()`` gradients of ``fn`` with central finite differences in float64.

    Args:
        fn: function of Tensors returning a Tensor; a non-scalar output is reduced
            as Σ out·r with a fixed random r so every output element is checked.
        *inputs: arrays or Tensors; each floating input is checked (converted to float64).
        eps: finite-difference step.
        names: optional names for the inputs in the report (default ``x0``, ``x1``, …).

    Returns:
        GradientCheck with ``max_error`` (largest relative error) and ``worst_input``.

    >>> from axone import ops
    >>> r = check_gradients(lambda x: ops.tanh(x) * x, np.array([0.5, -1.0]))
    >>> r.max_error < 1e-7
    True
    """
    if not inputs:
        raise ValueError("check_gradients: expected at least one input")
    names = list(names) if names is not None else [f"x{i}" for i in range(len(inputs))]
    if len(names) != len(inputs):
        raise ValueError(f"check_gradients: {len(inputs)} inputs but {len(names)} names")
    ts = []
    xp = np
    for x in inputs:
        v = x.data if isinstance(x, Tensor) else x
        m = array_module(v)
        if m is not np:
            xp = m
        d = m.array(v, copy=True, order="C")
        if d.dtype.kind == "f":
            ts.append(Tensor(m.array(d, dtype=np.float64, order="C"), requires_grad=True))
        else:
            ts.append(Tensor(d))
    out = fn(*ts)
    if not isinstance(out, Tensor):
        raise TypeError(f"check_gradients: fn must return a Tensor, received {type(out).__name__}")
    weights = np.random.default_rng(seed).standard_normal(out.shape) if out.data.size > 1 else None
    if weights is not None and xp is not np:
        weights = xp.asarray(weights)       # the same draw, on the inputs' device
    _scalarize(out, weights).backward()
    errors, analytic, numeric = [], [], []
    for i, t in enumerate(ts):
        if not t.requires_grad:
            errors.append(0.0)
            analytic.append(None)
            numeric.append(None)
            continue
        m = array_module(t.data)
        a = m.zeros_like(t.data) if t.grad is None else t.grad
        with _no_grad():
            n = numerical_gradient(fn, ts, i, eps=eps, weights=weights)
        denom = float(m.linalg.norm(a)) + float(m.linalg.norm(n))
        err = float(m.linalg.norm(a - n)) / max(denom, 1.0)
        errors.append(err)
        analytic.append(a)
        numeric.append(n)
    worst = int(np.argmax(errors))
    return GradientCheck(max_error=errors[worst], worst_input=names[worst], errors=errors,
                         analytic=analytic, numeric=numeric)


def _no_grad():
    from .function import no_grad
    return no_grad()
