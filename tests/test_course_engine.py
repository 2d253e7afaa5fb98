"""SPEC.md §1 reference values, computed with axone's engine."""
import numpy as np
import pytest

from axone import Tensor, ops
from axone.datasets import load_boston
from axone.utils import check_gradients


def test_sum_times_z_graph():
    # f(x, y, z) = (x + y)·z at (−2, 5, −4): f = −12, gradients (−4, −4, 3)
    x, y, z = (Tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    f = (x + y) * z
    f.backward()
    assert float(f) == -12.0
    assert (float(x.grad), float(y.grad), float(z.grad)) == (-4.0, -4.0, 3.0)


def test_sigmoid_and_its_derivative_at_one():
    x = Tensor(np.array(1.0), requires_grad=True)
    s = ops.sigmoid(x)
    s.backward()
    assert float(s) == pytest.approx(0.731059, abs=1e-6)
    assert float(x.grad) == pytest.approx(0.196612, abs=1e-6)


def test_minus_log_point_eight():
    assert float(-ops.log(Tensor(np.array(0.8)))) == pytest.approx(0.223144, abs=1e-6)


def _poly(x):
    return 64 * x * (1 - x) * (1 - 2 * x) ** 2 * (1 - 8 * x + 8 * x ** 2) ** 2


def _poly_prime(x):
    return 64 * (1 - 42 * x + 504 * x ** 2 - 2640 * x ** 3 + 7040 * x ** 4
                 - 9984 * x ** 5 + 7168 * x ** 6 - 2048 * x ** 7)


@pytest.mark.parametrize("x0", [0.0, 0.1, 0.25, 0.37, 0.5, 0.8, 1.0, 1.3])
def test_polynomial_derivative_matches_closed_form(x0):
    x = Tensor(np.array(x0), requires_grad=True)
    f = _poly(x)
    f.backward()
    assert float(f) == pytest.approx(_poly(x0), rel=1e-12, abs=1e-12)
    assert float(x.grad) == pytest.approx(_poly_prime(x0), rel=1e-10, abs=1e-9)
    assert check_gradients(_poly, np.array([x0])).max_error < 1e-7


@pytest.mark.parametrize("c", [1e4, -1e4, 0.0, 88.0])
@pytest.mark.parametrize("k", [3, 10])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_constant_vector_is_uniform(c, k, dtype):
    x = Tensor(np.full((2, k), c, dtype=dtype), requires_grad=True)
    p = ops.softmax(x)
    assert not np.isnan(p.data).any()
    assert np.array_equal(p.data, np.full((2, k), dtype(1.0) / dtype(k), dtype=dtype))
    lp = ops.log_softmax(x)
    np.testing.assert_allclose(lp.data, np.log(1.0 / k), rtol=1e-6)


def test_004_exercise_three_four_one_sigmoid_network():
    # 3 → 4 sigmoid → 1 sigmoid, biases 0, BCE, observation x = (7, 8, 10), y = 1
    x = Tensor(np.array([[7.0, 8.0, 10.0]]))
    w = Tensor(np.array([[0.179, -0.186, -0.008, -0.448],
                         [0.044, -0.028, -0.063, -0.131],
                         [0.01, -0.035, -0.004, 0.088]]), requires_grad=True)
    b = Tensor(np.zeros(4), requires_grad=True)
    psi = Tensor(np.array([[0.09], [-0.171], [0.005], [-0.04]]), requires_grad=True)
    b5 = Tensor(np.zeros(1), requires_grad=True)
    y = Tensor(np.array([[1.0]]))

    hidden_pre = ops.dense(x, w, b)
    np.testing.assert_allclose(hidden_pre.data[0], [1.705, -1.876, -0.600, -3.304], atol=1e-12)
    out = ops.sigmoid(ops.dense(ops.sigmoid(hidden_pre), psi, b5))
    assert float(out) == pytest.approx(0.513445, abs=1e-6)
    E = ops.binary_crossentropy(y, out).sum()
    assert float(E) == pytest.approx(0.666612, abs=1e-6)
    E.backward()
    assert float(psi.grad[0, 0]) == pytest.approx(-0.411716, abs=1e-6)
    assert float(b5.grad[0]) == pytest.approx(-0.486555, abs=1e-6)
    assert float(w.grad[2, 3]) == pytest.approx(0.006652, abs=1e-6)
    assert float(b.grad[3]) == pytest.approx(0.000665, abs=1e-6)

    # the same from logits through the fused node
    logits = ops.dense(ops.sigmoid(ops.dense(x, w, b)), psi, b5)
    assert float(ops.binary_crossentropy(y, logits, from_logits=True).sum()) == pytest.approx(0.666612, abs=1e-6)


@pytest.mark.parametrize("rho, w10", [(1e-5, 3.633), (1e-6, 1.236), (5e-5, -0.953)])
def test_boston_one_dimensional_gradient_descent(rho, w10):
    x_all, price = load_boston()
    x = Tensor(x_all[:, 0].astype(np.float64))   # RM
    y = Tensor(price.astype(np.float64))
    w = Tensor(np.array(0.0), requires_grad=True)
    trajectory = []
    for _ in range(10):
        loss = ((w * x - y) ** 2).sum()          # L(w) = Σ (w·x − y)²
        loss.backward()
        w.data = w.data - rho * w.grad
        w.zero_grad()
        trajectory.append(float(w))
    assert trajectory[-1] == pytest.approx(w10, abs=5e-4)
    if rho == 5e-5:   # oscillating divergence: the sign alternates around the optimum
        d = np.sign(np.array(trajectory) - 3.6534)
        assert np.all(d[1:] != d[:-1])
    else:
        assert np.all(np.diff(trajectory) > 0)
    w_star = float((x * y).sum() / (x * x).sum())
    assert w_star == pytest.approx(3.6534, abs=1e-4)
