"""Second derivatives through a Loss object's default reduction (sum over batch size), as a
nested tape asks for them: Hessian-vector products against finite differences of the gradient."""
import numpy as np
import pytest

import axone
from axone import losses


def _grad(loss_obj, y, x, w):
    with axone.GradientTape() as t:
        t.watch(w)
        loss = loss_obj(y, axone.ops.tanh(x @ w))
    return t.gradient(loss, w)


@pytest.mark.parametrize("loss_obj", [losses.MeanSquaredError(), losses.Huber(),
                                      losses.MeanAbsoluteError()])
def test_hessian_vector_product_matches_finite_differences(loss_obj):
    rng = np.random.default_rng(0)
    x = axone.Tensor(rng.normal(size=(5, 3)))
    y = rng.normal(size=(5, 2))
    w = axone.Tensor(rng.normal(size=(3, 2)))
    v = rng.normal(size=(3, 2))
    with axone.GradientTape() as outer:
        outer.watch(w)
        g = _grad(loss_obj, y, x, w)
        gv = axone.ops.sum(g * v)
    hv = np.asarray(outer.gradient(gv, w).data)
    eps = 1e-6
    gp = np.asarray(_grad(loss_obj, y, x, axone.Tensor(w.data + eps * v)).data)
    gm = np.asarray(_grad(loss_obj, y, x, axone.Tensor(w.data - eps * v)).data)
    np.testing.assert_allclose(hv, (gp - gm) / (2 * eps), rtol=1e-5, atol=1e-7)
