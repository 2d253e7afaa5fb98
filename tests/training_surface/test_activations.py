"""Activations of SPEC §4: strings in Dense / Activation, functions in axone.activations,
forward and gradient equal to keras.activations (Keras on torch autograd, axone on its own)."""
import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import Tensor, activations as A, ops

RTOL, ATOL = 1e-5, 1e-6

# name → keras callable with Keras's default arguments
NAMES = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus", "softsign",
         "hard_sigmoid", "exponential", "softmax", "log_softmax", "gelu", "silu", "swish"]


def _x(shape=(6, 7), seed=0, span=4.0):
    """Values in (−span, span) kept away from the kinks 0 and ±3 (hard_sigmoid), plus the
    float32 type of Keras's default."""
    r = np.random.default_rng(seed)
    x = r.uniform(-span, span, size=shape)
    for k in (0.0, 3.0, -3.0):
        near = np.abs(x - k) < 0.05
        x[near] += 0.1
    return x.astype(np.float32)


def _keras_fwd_grad(fn, x, r):
    xt = torch.tensor(x, requires_grad=True)
    y = fn(xt)
    (y * torch.tensor(r)).sum().backward()
    return y.detach().cpu().numpy(), xt.grad.cpu().numpy()


def _axone_fwd_grad(fn, x, r):
    xt = Tensor(x, requires_grad=True)
    y = fn(xt)
    ops.sum(y * Tensor(r)).backward()
    return np.asarray(y.data), np.asarray(xt.grad)


def _check(ours_fn, keras_fn, x, grad=True, rtol=RTOL, atol=ATOL):
    r = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    ky, kg = _keras_fwd_grad(keras_fn, x, r)
    ay, ag = _axone_fwd_grad(ours_fn, x, r)
    assert ay.shape == ky.shape
    assert ay.dtype == np.float32
    np.testing.assert_allclose(ay, ky, rtol=rtol, atol=atol)
    if grad:
        np.testing.assert_allclose(ag, kg, rtol=rtol, atol=atol)


# ----------------------------------------------------------- functions vs Keras
@pytest.mark.parametrize("name", NAMES)
def test_function_forward_and_gradient_match_keras(name):
    x = _x(span=3.0 if name == "exponential" else 4.0)
    _check(getattr(A, name), getattr(keras.activations, name), x)


@pytest.mark.parametrize("name", NAMES)
def test_get_by_string_is_the_same_function(name):
    f = A.get(name)
    x = _x(seed=3)
    kx = keras.ops.convert_to_numpy(keras.activations.get(name)(torch.tensor(x)))
    np.testing.assert_allclose(np.asarray(f(Tensor(x)).data), kx, rtol=RTOL, atol=ATOL)


def test_swish_is_silu():
    x = _x(seed=5)
    np.testing.assert_array_equal(np.asarray(A.swish(Tensor(x)).data),
                                  np.asarray(A.silu(Tensor(x)).data))
    assert A.get("swish") is A.get("silu")


@pytest.mark.parametrize("kwargs", [dict(max_value=6.0), dict(max_value=1.5),
                                    dict(negative_slope=0.1), dict(threshold=0.5),
                                    dict(threshold=-1.0), dict(negative_slope=0.3, threshold=1.0),
                                    dict(negative_slope=0.2, max_value=2.0),
                                    dict(negative_slope=0.1, max_value=2.5, threshold=0.7)])
def test_relu_options_match_keras(kwargs):
    x = _x(seed=7)
    for k in (kwargs.get("threshold", 0.0), kwargs.get("max_value", 99.0)):
        x[np.abs(x - k) < 0.05] += 0.1          # away from the kinks of this variant
    _check(lambda t: A.relu(t, **kwargs), lambda t: keras.activations.relu(t, **kwargs), x)


@pytest.mark.parametrize("slope", [0.01, 0.2, 0.5])
def test_leaky_relu_slopes(slope):
    _check(lambda t: A.leaky_relu(t, negative_slope=slope),
           lambda t: keras.activations.leaky_relu(t, negative_slope=slope), _x(seed=8))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_elu_alpha(alpha):
    _check(lambda t: A.elu(t, alpha=alpha), lambda t: keras.activations.elu(t, alpha=alpha),
           _x(seed=9))


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_both_forms(approximate):
    _check(lambda t: A.gelu(t, approximate=approximate),
           lambda t: keras.activations.gelu(t, approximate=approximate), _x(seed=10))


def test_gelu_default_is_exact():
    """keras.activations.gelu defaults to approximate=False (the erf form)."""
    x = np.linspace(-3, 3, 61).astype(np.float32)
    from math import erf, sqrt
    exact = np.array([v * 0.5 * (1 + erf(v / sqrt(2))) for v in x.astype(np.float64)])
    for f in (A.gelu, A.get("gelu")):
        np.testing.assert_allclose(np.asarray(f(Tensor(x)).data), exact, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_axes(name, axis):
    x = _x((3, 4, 5), seed=11)
    _check(lambda t: getattr(A, name)(t, axis=axis),
           lambda t: getattr(keras.activations, name)(t, axis=axis), x)


def test_softmax_uses_positive_exponent_and_is_stable():
    """SPEC §8: softmax is e^{+z}/Σe^{+z}; large logits do not overflow."""
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0]], np.float32)
    p = np.asarray(A.softmax(Tensor(z)).data)
    e = np.exp(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(p[0], e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(p[1], e / e.sum(), rtol=1e-5)
    assert np.argmax(p[0]) == 2


def test_tanh_formula():
    """SPEC §8: tanh(z) = (e^z − e^−z)/(e^z + e^−z)."""
    z = np.linspace(-3, 3, 13)
    want = (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))
    np.testing.assert_allclose(np.asarray(A.tanh(Tensor(z.astype(np.float32))).data), want,
                               rtol=1e-6, atol=1e-7)


def test_values_at_kinks_match_keras():
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0, 6.0, 7.0], np.float32)
    for name in ("relu", "leaky_relu", "elu", "selu", "hard_sigmoid", "softsign"):
        want = keras.ops.convert_to_numpy(getattr(keras.activations, name)(torch.tensor(x)))
        np.testing.assert_allclose(np.asarray(getattr(A, name)(Tensor(x)).data), want,
                                   rtol=RTOL, atol=ATOL, err_msg=name)
    want = keras.ops.convert_to_numpy(keras.activations.relu(torch.tensor(x), max_value=6.0))
    np.testing.assert_allclose(np.asarray(A.relu(Tensor(x), max_value=6.0).data), want)


def test_extreme_inputs_stay_finite_like_keras():
    x = np.array([-100.0, -20.0, 20.0, 80.0], np.float32)
    for name in ("sigmoid", "tanh", "softplus", "softsign", "elu", "selu", "silu", "gelu",
                 "hard_sigmoid", "softmax", "log_softmax"):
        _check(getattr(A, name), getattr(keras.activations, name), x, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------- heaviside
def test_heaviside_forward_and_zero_gradient():
    x = np.array([[-2.0, -1e-6, 0.0, 1e-6, 3.0]], np.float32)
    for f in (A.heaviside, A.get("heaviside")):
        xt = Tensor(x, requires_grad=True)
        y = f(xt)
        np.testing.assert_array_equal(np.asarray(y.data), [[0, 0, 1, 1, 1]])
        ops.sum(y * Tensor(np.arange(1, 6, dtype=np.float32)[None])).backward()
        g = xt.grad
        assert g is None or np.all(np.asarray(g) == 0)


def test_heaviside_in_layers():
    x = np.array([[1.0, -2.0], [-1.0, 1.0], [0.0, 0.0]], np.float32)
    dense = axone.layers.Dense(1, activation="heaviside", kernel_initializer="ones",
                               bias_initializer="zeros")
    np.testing.assert_array_equal(np.asarray(dense(x).data), [[0.0], [1.0], [1.0]])
    np.testing.assert_array_equal(np.asarray(axone.layers.Activation("heaviside")(x).data),
                                  [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


# ----------------------------------------------------------- in layers
@pytest.mark.parametrize("name", NAMES)
def test_activation_layer_by_string(name):
    x = _x((4, 5), seed=12, span=3.0)
    want = keras.ops.convert_to_numpy(keras.layers.Activation(name)(x))
    got = axone.layers.Activation(name)(x)
    np.testing.assert_allclose(np.asarray(got.data), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", NAMES)
def test_dense_activation_by_string_matches_keras_dense(name):
    r = np.random.default_rng(13)
    x = r.normal(size=(5, 4)).astype(np.float32)
    w = [r.normal(size=(4, 3)).astype(np.float32), r.normal(size=(3,)).astype(np.float32)]
    kd = keras.layers.Dense(3, activation=name)
    kd.build((None, 4))
    kd.set_weights(w)
    ad = axone.layers.Dense(3, activation=name)
    ad.build((None, 4))
    ad.set_weights(w)
    want = keras.ops.convert_to_numpy(kd(x))
    np.testing.assert_allclose(np.asarray(ad(x).data), want, rtol=RTOL, atol=1e-5)
    # the gradient through the layer w.r.t. its kernel agrees with Keras
    up = r.normal(size=(5, 3)).astype(np.float32)
    ky = kd(torch.tensor(x))
    (ky * torch.tensor(up)).sum().backward()
    kgrad = kd.kernel.value.grad.cpu().numpy()
    ops.sum(ad(x) * Tensor(up)).backward()
    np.testing.assert_allclose(np.asarray(ad.kernel.grad), kgrad, rtol=1e-4, atol=1e-5)


def test_dense_activation_callable_and_none():
    x = np.random.default_rng(14).normal(size=(3, 4)).astype(np.float32)
    d1 = axone.layers.Dense(2, activation=A.tanh, kernel_initializer="ones")
    d2 = axone.layers.Dense(2, activation=None, kernel_initializer="ones")
    np.testing.assert_allclose(np.asarray(d1(x).data), np.tanh(np.asarray(d2(x).data)), rtol=1e-6)
    assert A.get(None) is A.linear


@pytest.mark.parametrize("name", NAMES + ["heaviside"])
def test_serialize_round_trip_in_config(name):
    layer = axone.layers.Dense(2, activation=name)
    cfg = layer.get_config()
    back = axone.layers.Dense.from_config(cfg)
    x = _x((3, 4), seed=15, span=2.0)
    back.build((None, 4))
    layer.build((None, 4))
    back.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(back(x).data), np.asarray(layer(x).data), rtol=1e-6)
    a = axone.layers.Activation(name)
    b = axone.layers.Activation.from_config(a.get_config())
    np.testing.assert_allclose(np.asarray(b(x).data), np.asarray(a(x).data), rtol=1e-6)


# ----------------------------------------------------------- errors
@pytest.mark.parametrize("bad", ["rellu", "softmaxx", "", "heavyside"])
def test_unknown_name_raises_value_error_listing_names(bad):
    for make in (lambda: A.get(bad), lambda: axone.layers.Dense(2, activation=bad),
                 lambda: axone.layers.Activation(bad)):
        with pytest.raises(ValueError) as info:
            make()
        msg = str(info.value)
        assert repr(bad) in msg or bad in msg
        for valid in ("relu", "sigmoid", "softmax", "heaviside", "gelu", "tanh"):
            assert valid in msg


def test_non_callable_identifier_raises_type_error():
    with pytest.raises(TypeError):
        A.get(3.5)
