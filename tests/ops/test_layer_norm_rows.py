"""LayerNorm over the last axis through the compiled rows (layer_norm_rows and its backward in
axone/_kernels.c) against the NumPy form of ops/normalization.py: the same equations with the
sums in another order, so equal to 1e-12 in float64 and within float32 rounding (2e-6 of the
largest entry) in float32; with and without γ and β, row lengths off the kernel's blocks of
eight, one to three threads."""
import importlib

import numpy as np
import pytest

from axone import Tensor, ops

N = importlib.import_module("axone.ops.normalization")
needs_kernels = pytest.mark.skipif(N._compiled.kernels("layer_norm_rows") is None,
                                   reason="the compiled module is not built")


def _run(x, gamma, beta, g, compiled):
    before = N.COMPILED_ROWS
    N.COMPILED_ROWS = compiled
    try:
        xt = Tensor(x, requires_grad=True)
        gt = None if gamma is None else Tensor(gamma, requires_grad=True)
        bt = None if beta is None else Tensor(beta, requires_grad=True)
        y = ops.layer_normalization(xt, gt, bt, axis=-1, epsilon=1e-3)
        assert y._ctx.rows
        y.backward(g)
        ps = [p for p in (gt, bt) if p is not None]
        return [y.data, xt.grad] + [p.grad for p in ps]
    finally:
        N.COMPILED_ROWS = before


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 6, 256), (7, 13), (1, 1), (300, 9)])
@pytest.mark.parametrize("params", ["both", "gamma", "beta", "none"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_compiled_rows_match_the_numpy_form(monkeypatch, dtype, shape, params, threads):
    from axone.ops import _parallel
    monkeypatch.setattr(_parallel, "_threads", lambda: threads)
    rng = np.random.default_rng(0)
    n = shape[-1]
    x = (3 + 2 * rng.standard_normal(shape)).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    gamma = rng.standard_normal(n).astype(dtype) if params in ("both", "gamma") else None
    beta = rng.standard_normal(n).astype(dtype) if params in ("both", "beta") else None
    got = _run(x, gamma, beta, g, True)
    ref = _run(x, gamma, beta, g, False)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for a, r in zip(got, ref):
        assert a.dtype == r.dtype and a.shape == r.shape
        np.testing.assert_allclose(a, r, rtol=0, atol=tol * max(1.0, float(np.max(np.abs(r)))))
