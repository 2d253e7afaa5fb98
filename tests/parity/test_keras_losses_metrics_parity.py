"""Losses and metrics parity with Keras 3 (PyTorch backend) on the same random inputs.

Loss functions return one value per sample; both the values and their gradient with
respect to ``y_pred`` (through torch autograd for Keras) are compared.  The Loss classes
are compared for every reduction, with and without ``sample_weight``; the accuracy
metrics as functions and as stateful objects fed several weighted batches.
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
B, K = 12, 5


def _rng(seed):
    return np.random.default_rng(seed)


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _probs(shape, seed):
    z = _rng(seed).normal(scale=1.5, size=shape)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _inputs(kind, seed=0):
    """(y_true, y_pred) for a loss kind."""
    r = _rng(seed)
    if kind == "regression":
        return (r.normal(size=(B, 3)).astype(np.float32),
                r.normal(size=(B, 3)).astype(np.float32))
    if kind == "regression3d":
        return (r.normal(size=(B, 2, 4)).astype(np.float32),
                r.normal(size=(B, 2, 4)).astype(np.float32))
    if kind == "binary_probs":
        return (r.integers(0, 2, size=(B, 4)).astype(np.float32),
                r.uniform(0.02, 0.98, size=(B, 4)).astype(np.float32))
    if kind == "binary_extreme":
        # exact 0 and 1 predictions, right and wrong: both libraries clip to [ε, 1 − ε]
        yp = r.uniform(0.02, 0.98, size=(B, 4)).astype(np.float32)
        yp[:, 0], yp[:, 1] = 0.0, 1.0
        return r.integers(0, 2, size=(B, 4)).astype(np.float32), yp
    if kind == "binary_logits":
        return (r.integers(0, 2, size=(B, 4)).astype(np.float32),
                r.normal(scale=3.0, size=(B, 4)).astype(np.float32))
    if kind == "binary_soft":
        return (r.uniform(0, 1, size=(B, 4)).astype(np.float32),
                r.uniform(0.02, 0.98, size=(B, 4)).astype(np.float32))
    if kind == "categorical_probs":
        return np.eye(K, dtype=np.float32)[r.integers(0, K, size=B)], _probs((B, K), seed + 1)
    if kind == "categorical_unnormalized":
        # probabilities that do not sum to one: both libraries renormalize first
        return (np.eye(K, dtype=np.float32)[r.integers(0, K, size=B)],
                r.uniform(0.05, 1.0, size=(B, K)).astype(np.float32))
    if kind == "categorical_extreme":
        # zero probabilities, at the true class for half of the rows
        labels = r.integers(0, K, size=B)
        yp = _probs((B, K), seed + 1)
        yp[np.arange(0, B, 2), labels[::2]] = 0.0
        yp[1::2, (labels[1::2] + 1) % K] = 0.0
        return np.eye(K, dtype=np.float32)[labels], yp
    if kind == "categorical_logits":
        return (np.eye(K, dtype=np.float32)[r.integers(0, K, size=B)],
                r.normal(scale=2.0, size=(B, K)).astype(np.float32))
    if kind == "categorical_soft":
        return _probs((B, K), seed + 2), _probs((B, K), seed + 3)
    if kind == "sparse_probs":
        return r.integers(0, K, size=B).astype(np.int64), _probs((B, K), seed + 1)
    if kind == "sparse_extreme":
        yt, yp = _inputs("categorical_extreme", seed)
        return yt.argmax(axis=-1).astype(np.int64), yp
    if kind == "sparse_logits":
        return (r.integers(0, K, size=B).astype(np.int64),
                r.normal(scale=2.0, size=(B, K)).astype(np.float32))
    raise ValueError(kind)


# (name, kind, kwargs)
LOSS_CASES = [
    ("mean_squared_error", "regression", {}),
    ("mean_squared_error", "regression3d", {}),
    ("mean_absolute_error", "regression", {}),
    ("binary_crossentropy", "binary_probs", {}),
    ("binary_crossentropy", "binary_soft", {}),
    ("binary_crossentropy", "binary_extreme", {}),
    ("binary_crossentropy", "binary_logits", {"from_logits": True}),
    ("binary_crossentropy", "binary_probs", {"label_smoothing": 0.1}),
    ("binary_crossentropy", "binary_logits", {"from_logits": True, "label_smoothing": 0.2}),
    ("categorical_crossentropy", "categorical_probs", {}),
    ("categorical_crossentropy", "categorical_unnormalized", {}),
    ("categorical_crossentropy", "categorical_soft", {}),
    ("categorical_crossentropy", "categorical_extreme", {}),
    ("categorical_crossentropy", "categorical_logits", {"from_logits": True}),
    ("categorical_crossentropy", "categorical_probs", {"label_smoothing": 0.1}),
    ("categorical_crossentropy", "categorical_logits", {"from_logits": True,
                                                         "label_smoothing": 0.2}),
    ("sparse_categorical_crossentropy", "sparse_probs", {}),
    ("sparse_categorical_crossentropy", "sparse_extreme", {}),
    ("sparse_categorical_crossentropy", "sparse_logits", {"from_logits": True}),
]


def _case_id(case):
    name, kind, kw = case
    return "-".join([name, kind] + [f"{k}={v}" for k, v in kw.items()])


def _keras_loss_fn(name, yt, yp, **kw):
    typ = torch.tensor(yp, requires_grad=True)
    out = getattr(keras.losses, name)(torch.tensor(yt), typ, **kw)
    return out, typ


def _axone_loss_fn(name, yt, yp, **kw):
    ayp = Tensor(yp, requires_grad=True)
    out = getattr(axone.losses, name)(yt, ayp, **kw)
    return out, ayp


@pytest.mark.parametrize("case", LOSS_CASES, ids=_case_id)
def test_loss_function_matches_keras(case):
    name, kind, kw = case
    yt, yp = _inputs(kind)
    ko, kp = _keras_loss_fn(name, yt, yp, **kw)
    ao, ap = _axone_loss_fn(name, yt, yp, **kw)
    assert isinstance(ao, Tensor)
    assert ao.shape == tuple(ko.shape) == yp.shape[:-1]      # one value per sample (per row)
    np.testing.assert_allclose(ao.data, _np(ko), rtol=RTOL, atol=ATOL, err_msg="loss values")
    g = _rng(99).uniform(0.5, 1.5, size=ao.shape).astype(np.float32)
    (ko * torch.tensor(g)).sum().backward()
    (ao * Tensor(g)).sum().backward()
    np.testing.assert_allclose(ap.grad, _np(kp.grad), rtol=RTOL, atol=ATOL,
                               err_msg="d loss / d y_pred")


@pytest.mark.parametrize("shape", ["flat", "column"])
def test_sparse_labels_shapes_match_keras(shape):
    yt, yp = _inputs("sparse_logits", seed=3)
    if shape == "column":
        yt = yt[:, None]
    ko = keras.losses.sparse_categorical_crossentropy(torch.tensor(yt), torch.tensor(yp),
                                                      from_logits=True)
    ao = axone.losses.sparse_categorical_crossentropy(yt, Tensor(yp), from_logits=True)
    np.testing.assert_allclose(ao.data, _np(ko), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind, loss", [
    ("categorical", "categorical_crossentropy"),
    ("sparse", "sparse_categorical_crossentropy"),
    ("binary", "binary_crossentropy"),
])
def test_loss_of_activation_output_matches_keras(kind, loss):
    """y_pred straight out of softmax/sigmoid: axone switches to the fused logits path, whose
    value and gradient with respect to the logits must equal Keras's probability path."""
    r = _rng(4)
    z = r.normal(scale=2.0, size=(B, K if kind != "binary" else 3)).astype(np.float32)
    if kind == "categorical":
        yt = np.eye(K, dtype=np.float32)[r.integers(0, K, size=B)]
    elif kind == "sparse":
        yt = r.integers(0, K, size=B).astype(np.int64)
    else:
        yt = r.integers(0, 2, size=z.shape).astype(np.float32)
    act = "sigmoid" if kind == "binary" else "softmax"
    tz = torch.tensor(z, requires_grad=True)
    ko = getattr(keras.losses, loss)(torch.tensor(yt), getattr(keras.activations, act)(tz))
    az = Tensor(z, requires_grad=True)
    ao = getattr(axone.losses, loss)(yt, getattr(axone.activations, act)(az))
    np.testing.assert_allclose(ao.data, _np(ko), rtol=RTOL, atol=ATOL)
    ko.sum().backward()
    ao.sum().backward()
    np.testing.assert_allclose(az.grad, _np(tz.grad), rtol=RTOL, atol=ATOL)


# -------------------------------------------------------------- Loss classes
LOSS_CLASSES = [
    ("MeanSquaredError", "regression", {}),
    ("MeanSquaredError", "regression3d", {}),
    ("MeanAbsoluteError", "regression", {}),
    ("BinaryCrossentropy", "binary_probs", {}),
    ("BinaryCrossentropy", "binary_logits", {"from_logits": True}),
    ("CategoricalCrossentropy", "categorical_probs", {}),
    ("CategoricalCrossentropy", "categorical_logits", {"from_logits": True,
                                                       "label_smoothing": 0.1}),
    ("SparseCategoricalCrossentropy", "sparse_probs", {}),
    ("SparseCategoricalCrossentropy", "sparse_logits", {"from_logits": True}),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none", "mean"])
@pytest.mark.parametrize("case", LOSS_CLASSES, ids=_case_id)
def test_loss_class_matches_keras(case, reduction, weighted):
    cls, kind, kw = case
    yt, yp = _inputs(kind, seed=5)
    sw = None
    if weighted:
        # one weight per sample, or per (sample, step) for the rank-3 case: Keras does not
        # broadcast (B,) weights against (B, T) loss values either
        sw = _rng(6).uniform(0, 2, size=yp.shape[:-1]).astype(np.float32)
    kl = getattr(keras.losses, cls)(reduction=reduction, **kw)
    al = getattr(axone.losses, cls)(reduction=reduction, **kw)
    kp = torch.tensor(yp, requires_grad=True)
    ko = kl(torch.tensor(yt), kp, sample_weight=None if sw is None else torch.tensor(sw))
    ap = Tensor(yp, requires_grad=True)
    ao = al(yt, ap, sample_weight=sw)
    assert ao.shape == tuple(ko.shape)
    np.testing.assert_allclose(ao.data, _np(ko), rtol=RTOL, atol=ATOL, err_msg="loss value")
    g = _rng(7).uniform(0.5, 1.5, size=ao.shape).astype(np.float32)
    (ko * torch.tensor(g)).sum().backward()
    (ao * Tensor(g)).sum().backward()
    np.testing.assert_allclose(ap.grad, _np(kp.grad), rtol=RTOL, atol=ATOL, err_msg="gradient")


def test_loss_names_resolve_like_keras():
    for name in ("mse", "mae", "binary_crossentropy", "categorical_crossentropy",
                 "sparse_categorical_crossentropy"):
        yt, yp = _inputs({"mse": "regression", "mae": "regression",
                          "binary_crossentropy": "binary_probs",
                          "categorical_crossentropy": "categorical_probs",
                          "sparse_categorical_crossentropy": "sparse_probs"}[name], seed=8)
        ko = keras.losses.get(name)(torch.tensor(yt), torch.tensor(yp))
        ao = axone.losses.get(name)(yt, Tensor(yp))
        np.testing.assert_allclose(ao.data, _np(ko), rtol=RTOL, atol=ATOL, err_msg=name)


# -------------------------------------------------------------------- metrics
def _metric_inputs(kind, seed):
    r = _rng(seed)
    if kind == "binary":
        return (r.integers(0, 2, size=(B, 1)).astype(np.float32),
                r.uniform(0, 1, size=(B, 1)).astype(np.float32))
    if kind == "binary_multi":
        return (r.integers(0, 2, size=(B, 3)).astype(np.float32),
                r.uniform(0, 1, size=(B, 3)).astype(np.float32))
    if kind == "categorical":
        return np.eye(K, dtype=np.float32)[r.integers(0, K, size=B)], _probs((B, K), seed + 1)
    if kind == "sparse":
        return r.integers(0, K, size=B).astype(np.int64), _probs((B, K), seed + 1)
    if kind == "sparse_column":
        return r.integers(0, K, size=(B, 1)).astype(np.int64), _probs((B, K), seed + 1)
    if kind == "exact":
        yt = r.integers(0, 3, size=(B, 2)).astype(np.float32)
        yp = np.where(r.random(size=(B, 2)) < 0.6, yt, yt + 1).astype(np.float32)
        return yt, yp
    if kind == "regression":
        return (r.normal(size=(B, 3)).astype(np.float32),
                r.normal(size=(B, 3)).astype(np.float32))
    raise ValueError(kind)


METRIC_FUNCTIONS = [
    ("binary_accuracy", "binary", {}),
    ("binary_accuracy", "binary_multi", {}),
    ("binary_accuracy", "binary_multi", {"threshold": 0.3}),
    ("categorical_accuracy", "categorical", {}),
    ("sparse_categorical_accuracy", "sparse", {}),
    ("sparse_categorical_accuracy", "sparse_column", {}),
]


@pytest.mark.parametrize("case", METRIC_FUNCTIONS, ids=_case_id)
def test_metric_function_matches_keras(case):
    name, kind, kw = case
    results = set()
    for seed in range(3):
        yt, yp = _metric_inputs(kind, seed)
        k = _np(getattr(keras.metrics, name)(torch.tensor(yt), torch.tensor(yp), **kw))
        a = np.asarray(getattr(axone.metrics, name)(yt, yp, **kw))
        assert a.shape == k.shape, f"{name}: shape {a.shape} vs Keras {k.shape}"
        np.testing.assert_allclose(a, k, rtol=1e-6, atol=1e-7)
        results.add(float(k.mean()))
    assert len(results) > 1 and not results <= {0.0, 1.0}, "degenerate inputs"


def test_binary_accuracy_function_is_elementwise_like_keras3():
    """Keras 3's binary_accuracy returns one value per element (Keras 2 averaged the last axis)."""
    yt, yp = _metric_inputs("binary_multi", 0)
    k = _np(keras.metrics.binary_accuracy(torch.tensor(yt), torch.tensor(yp)))
    a = np.asarray(axone.metrics.binary_accuracy(yt, yp))
    assert a.shape == k.shape == (B, 3)
    np.testing.assert_array_equal(a, k)


METRIC_CLASSES = [
    ("BinaryAccuracy", "binary", {}),
    ("BinaryAccuracy", "binary_multi", {"threshold": 0.7}),
    ("CategoricalAccuracy", "categorical", {}),
    ("SparseCategoricalAccuracy", "sparse", {}),
    ("SparseCategoricalAccuracy", "sparse_column", {}),
    ("Accuracy", "exact", {}),
    ("MeanSquaredError", "regression", {}),
    ("MeanAbsoluteError", "regression", {}),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("case", METRIC_CLASSES, ids=_case_id)
def test_metric_class_matches_keras(case, weighted):
    """Running state over three batches of different sizes, then reset_state."""
    cls, kind, kw = case
    km = getattr(keras.metrics, cls)(**kw)
    am = getattr(axone.metrics, cls)(**kw)
    for seed, n in ((0, B), (1, 5), (2, 9)):
        yt, yp = _metric_inputs(kind, seed)
        yt, yp = yt[:n], yp[:n]
        sw = _rng(seed + 50).uniform(0, 2, size=n).astype(np.float32) if weighted else None
        km.update_state(torch.tensor(yt), torch.tensor(yp),
                        sample_weight=None if sw is None else torch.tensor(sw))
        am.update_state(yt, yp, sample_weight=sw)
        assert float(am.result()) == pytest.approx(float(_np(km.result())), rel=1e-5, abs=1e-7)
    assert 0 < float(am.result())
    km.reset_state()
    am.reset_state()
    assert float(am.result()) == float(_np(km.result())) == 0.0


# k == batch == 3 is the case where weighting the wrong axis would go unnoticed by shapes
@pytest.mark.parametrize("k", [1, 2, 3])
def test_elementwise_metric_with_sample_weight_like_keras(k):
    """A (batch,) sample_weight on (batch, k) per-element values: Keras averages the trailing
    axes first, then weights each sample."""
    r = _rng(12)
    yt = r.integers(0, 2, size=(3, k)).astype(np.float32)
    yp = np.where(r.random(size=(3, k)) < 0.5, yt, 1 - yt).astype(np.float32)
    yt[2], yp[2] = 0, 1                        # the zero-weight sample is all wrong
    yt[0], yp[0] = 1, 1                        # the first sample is all right
    sw = np.array([1.0, 0.5, 0.0], dtype=np.float32)
    km, am = keras.metrics.Accuracy(), axone.metrics.Accuracy()
    km.update_state(torch.tensor(yt), torch.tensor(yp), sample_weight=torch.tensor(sw))
    am.update_state(yt, yp, sample_weight=sw)
    assert float(am.result()) == pytest.approx(float(_np(km.result())), rel=1e-6)


@pytest.mark.parametrize("loss, kind, expected", [
    ("binary_crossentropy", "binary", "BinaryAccuracy"),
    ("mse", "binary", "BinaryAccuracy"),
    ("categorical_crossentropy", "categorical", "CategoricalAccuracy"),
    ("sparse_categorical_crossentropy", "sparse", "SparseCategoricalAccuracy"),
])
def test_compile_accuracy_resolves_like_keras(loss, kind, expected):
    """compile(metrics=["accuracy"]) picks the accuracy that matches the loss, as Keras does."""
    yt, yp = _metric_inputs(kind, 11)
    n_out = yp.shape[-1]
    values = {}
    for lib in (keras, axone):
        m = lib.Sequential([lib.layers.InputLayer(shape=(n_out,)),
                            lib.layers.Activation("linear")])
        m.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
        values[lib.__name__] = m.evaluate(yp, yt, batch_size=5, verbose=0, return_dict=True)
    assert sorted(values["axone"]) == sorted(values["keras"]) == ["accuracy", "loss"]
    for key in ("accuracy", "loss"):
        assert values["axone"][key] == pytest.approx(values["keras"][key], rel=1e-5), key
    ref = getattr(keras.metrics, expected)()
    ref.update_state(torch.tensor(yt), torch.tensor(yp))
    assert values["axone"]["accuracy"] == pytest.approx(float(_np(ref.result())), rel=1e-6)


def test_compile_accuracy_for_multilabel_binary_like_keras3():
    """Keras 3 resolves "accuracy" from the shapes alone: a multi-label output (k > 1 sigmoid
    units) trained with binary_crossentropy gets CategoricalAccuracy."""
    yt, yp = _metric_inputs("binary_multi", 11)
    values = {}
    for lib in (keras, axone):
        m = lib.Sequential([lib.layers.InputLayer(shape=(3,)), lib.layers.Activation("linear")])
        m.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
        values[lib.__name__] = m.evaluate(yp, yt, batch_size=5, verbose=0, return_dict=True)
    assert values["axone"]["accuracy"] == pytest.approx(values["keras"]["accuracy"], rel=1e-5)
    assert values["axone"]["loss"] == pytest.approx(values["keras"]["loss"], rel=1e-5)
    ref = keras.metrics.CategoricalAccuracy()
    ref.update_state(torch.tensor(yt), torch.tensor(yp))
    assert values["axone"]["accuracy"] == pytest.approx(float(_np(ref.result())), rel=1e-6)
