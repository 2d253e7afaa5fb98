"""Every loss of SPEC.md §4: values and gradients against Keras 3 (torch backend), reductions,
sample weights, names, and finite-difference gradient checks."""
import numpy as np
import pytest

import axone
from axone import Tensor
from axone.utils import check_gradients

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
PROB_T = rng.dirichlet(np.ones(4), 6).astype(np.float32)
PROB_P = rng.dirichlet(np.ones(4), 6).astype(np.float32)
POS_T = rng.random((6, 4)).astype(np.float32) + 0.1
POS_P = rng.random((6, 4)).astype(np.float32) + 0.1
BIN_T = (rng.random((6, 4)) > 0.5).astype(np.float32)
REAL_P = rng.standard_normal((6, 4)).astype(np.float32)
LOGITS = rng.standard_normal((6, 4)).astype(np.float32) * 2
LABELS = rng.integers(0, 4, 6)
SW = rng.random(6).astype(np.float32)

CASES = {
    "mean_squared_error": (POS_T, REAL_P, {}),
    "mean_absolute_error": (POS_T, REAL_P, {}),
    "mean_absolute_percentage_error": (POS_T, POS_P, {}),
    "mean_squared_logarithmic_error": (POS_T, POS_P, {}),
    "hinge": (BIN_T, REAL_P, {}),
    "squared_hinge": (BIN_T, REAL_P, {}),
    "categorical_hinge": (BIN_T, REAL_P, {}),
    "log_cosh": (POS_T, REAL_P, {}),
    "categorical_crossentropy": (PROB_T, PROB_P, {}),
    "categorical_crossentropy_logits": (PROB_T, LOGITS, {"from_logits": True}),
    "sparse_categorical_crossentropy": (LABELS, PROB_P, {}),
    "sparse_categorical_crossentropy_logits": (LABELS, LOGITS, {"from_logits": True}),
    "binary_crossentropy": (BIN_T, PROB_P, {}),
    "binary_crossentropy_logits": (BIN_T, LOGITS, {"from_logits": True}),
    "kl_divergence": (PROB_T, PROB_P, {}),
    "poisson": (POS_T, POS_P, {}),
    "cosine_similarity": (POS_T, REAL_P, {}),
}


def _fn_name(case):
    return case.replace("_logits", "")


@pytest.mark.parametrize("case", list(CASES))
def test_loss_values_and_gradients_match_keras(case):
    yt, yp, kw = CASES[case]
    name = _fn_name(case)
    kfn = getattr(keras.losses, name)
    tp = torch.tensor(yp, requires_grad=True)
    kval = kfn(torch.tensor(yt), tp, **kw)
    g = torch.tensor(rng.standard_normal(tuple(kval.shape)).astype(np.float32))
    (kval * g).sum().backward()

    x = Tensor(yp, requires_grad=True)
    val = getattr(axone.losses, name)(yt, x, **kw)
    np.testing.assert_allclose(val.data, kval.detach().numpy(), rtol=1e-5, atol=1e-6)
    val.backward(g.numpy())
    np.testing.assert_allclose(x.grad, tp.grad.numpy(), rtol=1e-4, atol=1e-6)


CLASSES = ["MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
           "MeanSquaredLogarithmicError", "Hinge", "SquaredHinge", "CategoricalHinge", "LogCosh",
           "KLDivergence", "Poisson", "CosineSimilarity", "CategoricalCrossentropy",
           "BinaryCrossentropy"]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none", "mean_with_sample_weight"])
def test_loss_objects_reduction_and_sample_weight_match_keras(cls, reduction):
    yt, yp = (PROB_T, PROB_P) if "Crossentropy" in cls or cls == "KLDivergence" else (POS_T, POS_P)
    if cls == "BinaryCrossentropy":
        yt = BIN_T
    k = getattr(keras.losses, cls)(reduction=reduction)
    a = getattr(axone.losses, cls)(reduction=reduction)
    for sw in (None, SW):
        kv = np.asarray(k(yt, yp, sample_weight=sw))
        av = a(yt, yp, sample_weight=sw).data
        np.testing.assert_allclose(av, kv, rtol=1e-5, atol=1e-6)


def test_sparse_loss_object_and_label_smoothing_match_keras():
    k = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    a = axone.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(a(LABELS, LOGITS).data, np.asarray(k(LABELS, LOGITS)), rtol=1e-5)
    k = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
    a = axone.losses.CategoricalCrossentropy(label_smoothing=0.1)
    np.testing.assert_allclose(a(PROB_T, PROB_P).data, np.asarray(k(PROB_T, PROB_P)), rtol=1e-5)


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("sparse")])
def test_loss_gradients_by_finite_differences(case):
    yt, yp, kw = CASES[case]
    name = _fn_name(case)
    fn = getattr(axone.losses, name)
    r = check_gradients(lambda p: fn(yt.astype(np.float64), p, **kw), yp.astype(np.float64))
    assert r.max_error < 1e-6, r


@pytest.mark.parametrize("alias, target", [
    ("mse", "mean_squared_error"), ("mae", "mean_absolute_error"),
    ("mape", "mean_absolute_percentage_error"), ("msle", "mean_squared_logarithmic_error"),
    ("kld", "kl_divergence"), ("logcosh", "log_cosh"), ("kullback_leibler_divergence", "kl_divergence"),
])
def test_loss_aliases(alias, target):
    assert axone.losses.get(alias) is getattr(axone.losses, target)


def test_loss_get_by_class_name_and_config_roundtrip():
    obj = axone.losses.get("Hinge")
    assert isinstance(obj, axone.losses.Hinge)
    cfg = axone.losses.serialize(axone.losses.CategoricalCrossentropy(from_logits=True))
    again = axone.losses.get(cfg)
    assert isinstance(again, axone.losses.CategoricalCrossentropy) and again.from_logits


def test_unknown_loss_and_reduction_errors():
    with pytest.raises(ValueError, match="valid names"):
        axone.losses.get("mean_squared_errr")
    with pytest.raises(ValueError, match="reduction"):
        axone.losses.MeanSquaredError(reduction="average")
    with pytest.raises(ValueError, match="same shape"):
        axone.losses.mean_squared_error(np.zeros((3, 2)), np.zeros((3, 4)))


def test_binary_crossentropy_multi_label_output_trains():
    axone.utils.set_random_seed(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0, x[:, 3] < 0], axis=1).astype(np.float32)
    model = axone.Sequential([axone.layers.Dense(3, activation="sigmoid", input_shape=(5,))])
    model.compile(optimizer=axone.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["binary_accuracy"])
    h = model.fit(x, y, epochs=40, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    assert h.history["binary_accuracy"][-1] > 0.9
