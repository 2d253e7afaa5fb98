"""The initialization study of course 001 §10: what the course states about 10 × 500 networks."""
import numpy as np
import pytest

from axone import initializers
from axone.utils import init_study

N = 50         # samples: 25,000 activations per layer, enough for stable statistics


@pytest.fixture(scope="module")
def tanh_study():
    return init_study({"small": initializers.RandomNormal(stddev=0.01),
                       "large": initializers.RandomNormal(stddev=1.0),
                       "glorot_normal": "glorot_normal", "zeros": "zeros"},
                      activation="tanh", n_samples=N)


@pytest.fixture(scope="module")
def relu_study():
    return init_study(["glorot_normal", "he_normal"], activation="relu", n_samples=N)


def test_tanh_small_normal_activations_collapse_layer_by_layer(tanh_study):
    std = tanh_study.stat("small", "act_std")
    assert std.shape == (10,)
    assert np.all(np.diff(std) < 0)                      # shrinks at every layer
    assert std[-1] < 1e-4 * std[0]                       # "all close to 0"
    assert np.all(tanh_study.stat("small", "saturated") == 0)


def test_tanh_large_normal_saturates_and_the_derivative_vanishes(tanh_study):
    sat = tanh_study.stat("large", "saturated")
    assert np.all(sat > 0.8)                              # "all saturated (±1)"
    assert np.all(tanh_study.stat("large", "act_std") > 0.95)
    assert np.all(tanh_study.stat("large", "mean_derivative") < 0.1)   # f'(z) = 1 − a² ≈ 0
    glorot = tanh_study.stat("glorot_normal", "mean_derivative")
    assert np.all(glorot > 0.5)


def test_tanh_glorot_keeps_the_spread_controlled(tanh_study):
    std = tanh_study.stat("glorot_normal", "act_std")
    assert np.all((std > 0.15) & (std < 0.9))
    assert std[-1] / std[0] > 0.25                        # vs 1e-4 for the small init
    g = tanh_study.stat("glorot_normal", "grad_std")
    assert g.max() / g.min() < 4                          # gradients neither vanish nor explode
    assert np.all(tanh_study.stat("glorot_normal", "saturated") < 0.05)


def test_zero_init_gives_every_unit_the_same_output_and_gradient(tanh_study):
    assert np.all(tanh_study.stat("zeros", "act_std") == 0)
    assert np.all(tanh_study.stat("zeros", "weight_grad_std") == 0)
    assert np.all(tanh_study.stat("zeros", "dead") == 1)


def test_relu_he_is_stable_where_glorot_decays(relu_study):
    he = relu_study.stat("he_normal", "act_std")
    assert np.all(np.abs(he / he[0] - 1) < 0.25)
    gl = relu_study.stat("glorot_normal", "act_std")
    assert gl[-1] / gl[0] < 0.15                          # about 1/√2 per layer
    assert np.all(np.isnan(relu_study.stat("he_normal", "saturated")))   # unbounded: no saturation
    d = relu_study.stat("he_normal", "mean_derivative")
    assert np.all(np.abs(d - 0.5) < 0.05)                 # half the ReLU units active
    assert np.all(relu_study.stat("he_normal", "dead") < 0.5)


def test_statistics_come_from_the_engine_backward():
    # a 3-layer linear net: ∂L/∂a⁽ˡ⁾ = g W⁽ᴸ⁾ᵀ…, so the top gradient is g itself (std ≈ 1),
    # and the linear activation has f' = 1 exactly
    s = init_study("glorot_normal", activation="linear", depth=3, units=50, n_samples=400,
                   dtype="float64")
    assert np.all(s.stat(s.labels[0], "mean_derivative") == 1)
    assert abs(s.stat(s.labels[0], "grad_std")[-1] - 1) < 0.05
    again = init_study("glorot_normal", activation="linear", depth=3, units=50, n_samples=400,
                       dtype="float64")
    assert again.results == s.results                      # seeded
    other = init_study("glorot_normal", activation="linear", depth=3, units=50, n_samples=400,
                       dtype="float64", seed=1)
    assert other.results != s.results


def test_table_and_plot(tanh_study):
    text = str(tanh_study)
    assert "10 layers × 500 units, activation tanh" in text
    for label in ("small", "large", "glorot_normal", "zeros"):
        assert f"\n{label}:" in text
    assert text.count("\n") > 40
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    s = init_study({"glorot_normal": "glorot_normal"}, depth=4, units=20, n_samples=10, plot=True)
    fig = s.figure
    line = fig.axes[0].lines[0]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 5))
    np.testing.assert_allclose(line.get_ydata(), s.stat("glorot_normal", "act_std"))
    plt.close(fig)


@pytest.mark.parametrize("kwargs, match", [
    ({"depth": 0}, "depth"), ({"units": 2.5}, "units"), ({"n_samples": -1}, "n_samples"),
    ({"saturation": 1.5}, "saturation"), ({"seed": -3}, "seed"), ({"dtype": "int8"}, "dtype"),
    ({"activation": "nope"}, "unknown activation"), ({"initializers": "nope"}, "unknown initializer"),
    ({"initializers": []}, "no initializer"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        init_study(**dict({"depth": 2, "units": 4, "n_samples": 3}, **kwargs))
