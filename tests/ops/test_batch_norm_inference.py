"""Batch normalization with given statistics (inference, frozen layers) as one node:
y = x·s + (β − m·s), s = γ/√(v + ε).  Its gradients against float64 finite differences and
PyTorch's batch_norm(training=False), first and second order, along the last axis (the compiled
pass) and along another axis (NumPy), and the error for statistics of the wrong size."""
import numpy as np
import pytest
import torch

from axone import ops
from axone.autograd import GradientTape, Tensor
from axone.autograd.gradcheck import check_gradients
from axone.ops import _compiled
from axone.ops import normalization as NO

RNG = np.random.default_rng(21)


def _stats(n, dtype=np.float64):
    return RNG.normal(size=n).astype(dtype), (RNG.random(n) + 0.2).astype(dtype)


@pytest.mark.parametrize("shape,axis", [((4, 5, 3, 6), -1), ((4, 6, 3, 2), 1), ((7, 6), -1),
                                        ((3, 6, 5), 1)])
def test_gradients_match_finite_differences(shape, axis):
    n = shape[axis]
    mean, var = _stats(n)

    def f(x, g, b):
        return NO.batch_normalization(x, g, b, axis=axis, epsilon=1e-3, mean=mean,
                                      variance=var)[0]

    r = check_gradients(f, RNG.normal(size=shape), RNG.normal(size=n), RNG.normal(size=n),
                        names=["x", "gamma", "beta"])
    assert r.max_error < 1e-7, r


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((4, 5, 3, 6), -1), ((4, 6, 3, 2), 1)])
def test_matches_torch_batch_norm_in_eval_mode(dtype, shape, axis):
    n = shape[axis]
    x = RNG.normal(size=shape).astype(dtype)
    gam, bet = RNG.normal(size=n).astype(dtype), RNG.normal(size=n).astype(dtype)
    mean, var = _stats(n, dtype)
    gy = RNG.normal(size=shape).astype(dtype)
    xt, gt, bt = (Tensor(a, requires_grad=True) for a in (x, gam, bet))
    y = NO.batch_normalization(xt, gt, bt, axis=axis, epsilon=1e-3, mean=mean, variance=var)[0]
    y.backward(gy)
    perm = list(range(len(shape)))
    ax = axis % len(shape)
    perm.remove(ax)
    perm.insert(1, ax)                 # torch wants the features on axis 1
    tx = torch.tensor(x.transpose(perm), requires_grad=True)
    tg, tb = torch.tensor(gam, requires_grad=True), torch.tensor(bet, requires_grad=True)
    ty = torch.nn.functional.batch_norm(tx, torch.tensor(mean), torch.tensor(var), tg, tb,
                                        training=False, eps=1e-3)
    ty.backward(torch.tensor(gy.transpose(perm)))
    inv = np.argsort(perm)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.data, ty.detach().numpy().transpose(inv), **tol)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy().transpose(inv), **tol)
    np.testing.assert_allclose(gt.grad, tg.grad.numpy(), **tol)
    np.testing.assert_allclose(bt.grad, tb.grad.numpy(), **tol)
    assert y.data.dtype == dtype and xt.grad.dtype == dtype


@pytest.mark.skipif(_compiled.kernels("affine_clip") is None, reason="axone._kernels is not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_pass_gives_numpys_bits(dtype, monkeypatch):
    """Along the last axis the affine map runs in the compiled module; with it absent the node
    computes x * s + shift in NumPy: the same bits."""
    x = (RNG.normal(size=(6, 9, 33)) * 4).astype(dtype)
    gam, bet = RNG.normal(size=33).astype(dtype), RNG.normal(size=33).astype(dtype)
    mean, var = _stats(33, np.float32)
    run = lambda: NO.batch_normalization(x, gam, bet, epsilon=1e-3, mean=mean,  # noqa: E731
                                         variance=var)[0].data
    compiled = run()
    real = _compiled.kernels
    monkeypatch.setattr(_compiled, "kernels", lambda name: None if name == "affine_clip"
                        else real(name))
    np.testing.assert_array_equal(run(), compiled)


def test_second_derivative_through_the_frozen_layer():
    """A gradient penalty through batch normalization at inference: the Hessian-vector product
    of f = Σ tanh(BN(x))² equals central differences of the first derivative."""
    n = 4
    mean, var = _stats(n)
    x0, g0, b0 = RNG.normal(size=(5, n)), RNG.normal(size=n), RNG.normal(size=n)
    vs = [RNG.normal(size=a.shape) for a in (x0, g0, b0)]

    def f(x, g, b):
        y = NO.batch_normalization(x, g, b, epsilon=1e-3, mean=mean, variance=var)[0]
        return ops.sum(ops.tanh(y) ** 2)

    def first(arrays):
        xs = [Tensor(a) for a in arrays]
        with GradientTape() as t:
            for v in xs:
                t.watch(v)
            y = f(*xs)
        return [np.array(g.data) for g in t.gradient(y, xs)]

    xs = [Tensor(a) for a in (x0, g0, b0)]
    with GradientTape() as outer:
        for v in xs:
            outer.watch(v)
        with GradientTape() as inner:
            for v in xs:
                inner.watch(v)
            y = f(*xs)
        gs = inner.gradient(y, xs)
        dot = ops.sum(ops.stack([ops.sum(g * Tensor(v)) for g, v in zip(gs, vs)]))
    hv = outer.gradient(dot, xs)
    eps = 1e-6
    up = first([a + eps * v for a, v in zip((x0, g0, b0), vs)])
    down = first([a - eps * v for a, v in zip((x0, g0, b0), vs)])
    for h, u, d in zip(hv, up, down):
        np.testing.assert_allclose(h.data, (u - d) / (2 * eps), rtol=1e-6, atol=1e-7)


def test_statistics_of_the_wrong_size_are_refused():
    x = np.zeros((2, 5), np.float32)
    with pytest.raises(ValueError, match="mean and variance need 5 values"):
        NO.batch_normalization(x, np.ones(5), np.zeros(5), mean=np.zeros(4), variance=np.ones(5))
