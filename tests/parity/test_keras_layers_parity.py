"""Layer parity with Keras 3 (PyTorch backend): same weights, same inputs → same outputs and
the same gradients for the inputs and the weights.

Keras's gradients come from torch autograd (a Keras layer called eagerly on a torch
tensor that requires a gradient; its weights are torch Parameters), axone's from its
own engine (the layer called on ``axone.Tensor(x, requires_grad=True)``).  Both sides
reduce the output with the same fixed random weighting G, so every output element's
gradient is compared, not only their sum.
"""
import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import Tensor

assert keras.backend.backend() == "torch", (
    "the Keras parity tests need KERAS_BACKEND=torch (set by tests/conftest.py)")

RTOL, ATOL = 1e-5, 1e-6


def _rng(seed):
    return np.random.default_rng(seed)


def _close(actual, expected, what, rtol=RTOL, atol=ATOL):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs Keras {expected.shape}"
    # float32 sums: scale the absolute tolerance with the magnitude of the values compared
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def _np(t):
    return t.detach().cpu().numpy()


def _keras_forward_backward(layer, xs, g, training=None):
    """Keras output and gradients (inputs, then the layer's trainable weights) for the
    scalar ``sum(G · layer(xs))``."""
    txs = [torch.tensor(x, requires_grad=True) for x in xs]
    arg = txs if len(txs) > 1 else txs[0]
    out = layer(arg, training=training) if training is not None else layer(arg)
    (out * torch.tensor(g)).sum().backward()
    wgrads = [_np(w.value.grad) for w in layer.trainable_weights]
    return _np(out), [_np(t.grad) for t in txs], wgrads


def _axone_forward_backward(layer, xs, g, training=None):
    axs = [Tensor(x, requires_grad=True) for x in xs]
    arg = axs if len(axs) > 1 else axs[0]
    out = layer(arg, training=training) if training is not None else layer(arg)
    assert isinstance(out, Tensor) and out.dtype == np.float32
    (out * Tensor(g)).sum().backward()
    wgrads = [w.grad for w in layer.trainable_weights]
    return out.data, [t.grad for t in axs], wgrads


def _compare(klayer, alayer, xs, out_shape, seed=0, training=None, what=""):
    g = _rng(seed + 1000).normal(size=out_shape).astype(np.float32)
    ko, kgx, kgw = _keras_forward_backward(klayer, xs, g, training)
    ao, agx, agw = _axone_forward_backward(alayer, xs, g, training)
    _close(ao, ko, f"{what} output")
    assert len(agx) == len(kgx)
    for i, (a, k) in enumerate(zip(agx, kgx)):
        assert a is not None, f"{what}: no gradient for input {i}"
        _close(a, k, f"{what} d/dx[{i}]")
    assert len(agw) == len(kgw)
    for i, (a, k) in enumerate(zip(agw, kgw)):
        assert a is not None, f"{what}: no gradient for weight {i}"
        _close(a, k, f"{what} d/dw[{i}]")
    return ao


# --------------------------------------------------------------------- Dense
ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "elu", "selu",
               "softplus", "softsign", "gelu", "silu", "swish", "hard_sigmoid", "leaky_relu",
               "exponential", None]


def _dense_pair(units, in_dim, seed, **kw):
    r = _rng(seed)
    kernel = r.normal(size=(in_dim, units)).astype(np.float32)
    bias = r.normal(scale=0.5, size=(units,)).astype(np.float32)
    kl = keras.layers.Dense(units, **kw)
    al = axone.layers.Dense(units, **kw)
    kl.build((None, in_dim))
    al.build((None, in_dim))
    weights = [kernel, bias] if kw.get("use_bias", True) else [kernel]
    kl.set_weights(weights)
    al.set_weights(weights)
    return kl, al


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: str(a))
def test_dense_activation_matches_keras(activation):
    r = _rng(1)
    # pre-activations spread over roughly [-7, 7]: both sides of every kink and plateau
    x = r.uniform(-2, 2, size=(8, 4)).astype(np.float32)
    kl, al = _dense_pair(5, 4, seed=2, activation=activation)
    out = _compare(kl, al, [x], (8, 5), what=f"Dense({activation})")
    if activation not in ("linear", None):
        pre = x @ kl.get_weights()[0] + kl.get_weights()[1]
        assert not np.allclose(out, pre), "the activation was not applied"


@pytest.mark.parametrize("activation", ACTIVATIONS[:-1])
def test_activation_functions_match_keras(activation):
    """axone.activations.get(name) against keras.activations.get(name) on a 3-D batch."""
    x = _rng(3).uniform(-4, 4, size=(3, 4, 6)).astype(np.float32)
    g = _rng(4).normal(size=x.shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ky = keras.activations.get(activation)(tx)
    (ky * torch.tensor(g)).sum().backward()
    ax = Tensor(x, requires_grad=True)
    ay = axone.activations.get(activation)(ax)
    (ay * Tensor(g)).sum().backward()
    _close(ay.data, _np(ky), f"{activation} value")
    _close(ax.grad, _np(tx.grad), f"{activation} gradient")


def test_activation_layer_matches_keras():
    x = _rng(5).normal(size=(4, 7)).astype(np.float32)
    _compare(keras.layers.Activation("gelu"), axone.layers.Activation("gelu"), [x], (4, 7),
             what="Activation(gelu)")


def test_dense_without_bias_matches_keras():
    x = _rng(6).normal(size=(6, 3)).astype(np.float32)
    kl, al = _dense_pair(4, 3, seed=7, use_bias=False, activation="tanh")
    assert len(al.trainable_weights) == len(kl.trainable_weights) == 1
    _compare(kl, al, [x], (6, 4), what="Dense(use_bias=False)")


def test_dense_on_3d_input_matches_keras():
    """Dense maps the last axis of a (batch, time, features) input, as Keras does."""
    x = _rng(8).normal(size=(3, 5, 4)).astype(np.float32)
    kl, al = _dense_pair(2, 4, seed=9, activation="sigmoid")
    _compare(kl, al, [x], (3, 5, 2), what="Dense on rank-3 input")


def test_dense_weight_order_and_shapes_match_keras():
    kl = keras.layers.Dense(7)
    al = axone.layers.Dense(7)
    kl.build((None, 3))
    al.build((None, 3))
    assert [w.shape for w in al.get_weights()] == [tuple(w.shape) for w in kl.get_weights()] \
        == [(3, 7), (7,)]
    assert al.count_params() == kl.count_params() == 28
    assert np.all(al.get_weights()[1] == 0)      # bias_initializer="zeros"
    limit = np.sqrt(6 / (3 + 7))                  # glorot_uniform
    assert np.abs(al.get_weights()[0]).max() <= limit


# ------------------------------------------------------------- Dropout, shape
@pytest.mark.parametrize("training", [None, False])
def test_dropout_at_inference_matches_keras(training):
    x = _rng(10).normal(size=(5, 6)).astype(np.float32)
    out = _compare(keras.layers.Dropout(0.4), axone.layers.Dropout(0.4), [x], (5, 6),
                   training=training, what=f"Dropout(training={training})")
    np.testing.assert_array_equal(out, x)


def test_dropout_in_training_has_keras_semantics():
    """Training mode: each element is dropped (0) or scaled by 1/(1 − rate), as in Keras."""
    rate = 0.25
    x = _rng(11).uniform(0.5, 1.5, size=(200, 50)).astype(np.float32)
    axone.utils.set_random_seed(0)
    ao = axone.layers.Dropout(rate)(Tensor(x), training=True).data
    ko = _np(keras.layers.Dropout(rate)(torch.tensor(x), training=True))
    for out, lib in ((ao, "axone"), (ko, "keras")):
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / (1 - rate), rtol=1e-6, err_msg=lib)
        assert abs(1 - kept.mean() - rate) < 0.02, lib


def test_flatten_matches_keras():
    x = _rng(12).normal(size=(4, 3, 2, 5)).astype(np.float32)
    _compare(keras.layers.Flatten(), axone.layers.Flatten(), [x], (4, 30), what="Flatten")


@pytest.mark.parametrize("target, out", [((6, 4), (3, 6, 4)), ((-1, 3), (3, 8, 3)),
                                         ((2, 3, 4), (3, 2, 3, 4))])
def test_reshape_matches_keras(target, out):
    x = _rng(13).normal(size=(3, 4, 6)).astype(np.float32)
    _compare(keras.layers.Reshape(target), axone.layers.Reshape(target), [x], out,
             what=f"Reshape{target}")
    assert axone.layers.Reshape(target).compute_output_shape((None, 4, 6)) == \
        tuple(keras.layers.Reshape(target).compute_output_shape((None, 4, 6)))


# ------------------------------------------------------------------- merging
MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]


@pytest.mark.parametrize("name, n_inputs",
                         [(m, n) for m in MERGES for n in (2, 3) if m != "Subtract" or n == 2])
def test_merge_layer_matches_keras(name, n_inputs):
    r = _rng(14 + n_inputs)
    xs = [r.normal(size=(4, 5)).astype(np.float32) for _ in range(n_inputs)]
    kl = getattr(keras.layers, name)()
    al = getattr(axone.layers, name)()
    out = _compare(kl, al, xs, (4, 5), what=f"{name}×{n_inputs}")
    ref = {"Add": lambda: sum(xs), "Subtract": lambda: xs[0] - xs[1],
           "Multiply": lambda: np.prod(xs, axis=0), "Average": lambda: np.mean(xs, axis=0),
           "Maximum": lambda: np.max(xs, axis=0), "Minimum": lambda: np.min(xs, axis=0)}[name]()
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("axis, shapes, out", [
    (-1, [(3, 2, 4), (3, 2, 1), (3, 2, 3)], (3, 2, 8)),
    (1, [(3, 2, 4), (3, 5, 4)], (3, 7, 4)),
])
def test_concatenate_matches_keras(axis, shapes, out):
    r = _rng(20)
    xs = [r.normal(size=s).astype(np.float32) for s in shapes]
    kl = keras.layers.Concatenate(axis=axis)
    al = axone.layers.Concatenate(axis=axis)
    _compare(kl, al, xs, out, what=f"Concatenate(axis={axis})")
    assert al.compute_output_shape([(None,) + s[1:] for s in shapes]) == (None,) + out[1:]


def test_functional_merge_model_matches_keras():
    """A small functional graph (two branches joined by Add and Concatenate) end to end."""
    r = _rng(30)
    x = r.normal(size=(6, 4)).astype(np.float32)

    def build(lib):
        inp = lib.Input(shape=(4,))
        a = lib.layers.Dense(3, activation="tanh")(inp)
        b = lib.layers.Dense(3, activation="relu")(inp)
        s = lib.layers.Add()([a, b])
        c = lib.layers.Concatenate()([s, a])
        out = lib.layers.Dense(2)(c)
        return lib.Model(inp, out)

    km, am = build(keras), build(axone)
    weights = [r.normal(size=w.shape).astype(np.float32) for w in km.get_weights()]
    km.set_weights(weights)
    am.set_weights(weights)
    for m in (km, am):
        m.compile(optimizer="sgd", loss="mse")
    y = r.normal(size=(6, 2)).astype(np.float32)
    assert am.evaluate(x, y, verbose=0) == pytest.approx(km.evaluate(x, y, verbose=0), rel=1e-5)
    _close(am.predict(x, batch_size=4, verbose=0), km.predict(x, batch_size=4, verbose=0),
           "functional model predict")
