"""OrthogonalRegularizer: value and gradient against Keras 3 (torch), a finite-difference check,
config and bad input."""
import numpy as np
import pytest

import axone.regularizers as R
from axone.autograd.tensor import Tensor

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")


@pytest.mark.parametrize("mode,shape", [("rows", (4, 5)), ("columns", (4, 5)), ("rows", (6, 2))])
def test_value_and_gradient_match_keras(mode, shape):
    w = np.random.default_rng(0).normal(size=shape).astype("float32")
    tv = torch.tensor(w, requires_grad=True)
    kv = keras.regularizers.OrthogonalRegularizer(0.3, mode)(tv)
    kv.backward()
    t = Tensor(w, requires_grad=True)
    av = R.orthogonal_regularizer(factor=0.3, mode=mode)(t)
    av.backward()
    assert float(av.data) == pytest.approx(float(kv.detach()), rel=1e-5)
    np.testing.assert_allclose(t.grad, tv.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_finite_differences():
    from axone.autograd.gradcheck import check_gradients
    w = np.random.default_rng(1).normal(size=(3, 4))
    for mode in ("rows", "columns"):
        reg = R.OrthogonalRegularizer(0.5, mode)
        assert check_gradients(lambda x: reg(x), w).max_error < 1e-6


def test_config_and_errors():
    reg = R.get({"class_name": "OrthogonalRegularizer", "config": {"factor": 0.2, "mode": "columns"}})
    assert reg.get_config() == {"factor": 0.2, "mode": "columns"}
    assert isinstance(R.get("orthogonal_regularizer"), R.OrthogonalRegularizer)
    with pytest.raises(ValueError, match="mode"):
        R.OrthogonalRegularizer(mode="diag")
    with pytest.raises(ValueError, match="factor"):
        R.OrthogonalRegularizer(factor=-1.0)
    with pytest.raises(ValueError, match="rank 2"):
        R.OrthogonalRegularizer()(Tensor(np.ones(3)))
