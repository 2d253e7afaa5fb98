"""axone.metrics against Keras 3 (PyTorch backend) on the same random inputs, and the
whole-array utilities against scikit-learn.

Stateful metrics are fed several batches of different sizes, some with a sample_weight,
and their running result is compared after every batch; then both are reset and fed one
more batch (a state that survives reset_state would show there).
"""
import json

import re

import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)
from sklearn import metrics as skm

import axone
from axone import layers
from axone import metrics as M

assert keras.backend.backend() == "torch", "the Keras parity tests need KERAS_BACKEND=torch"

K = 6


def _rng(seed):
    return np.random.default_rng(seed)


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _probs(r, n, k=K):
    z = r.normal(scale=1.5, size=(n, k))
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _inputs(kind, n, seed):
    r = _rng(seed)
    if kind == "categorical":
        return np.eye(K, dtype=np.float32)[r.integers(0, K, n)], _probs(r, n)
    if kind == "categorical_logits":
        return np.eye(K, dtype=np.float32)[r.integers(0, K, n)], \
            r.normal(0, 3, (n, K)).astype(np.float32)
    if kind == "sparse":
        return r.integers(0, K, n), _probs(r, n)
    if kind == "sparse_logits":
        return r.integers(0, K, n), r.normal(0, 3, (n, K)).astype(np.float32)
    if kind == "sparse_column":
        return r.integers(0, K, (n, 1)), _probs(r, n)
    if kind == "binary":
        return r.integers(0, 2, (n, 1)).astype(np.float32), \
            r.uniform(0, 1, (n, 1)).astype(np.float32)
    if kind == "binary_flat":
        return r.integers(0, 2, n).astype(np.float32), r.uniform(0, 1, n).astype(np.float32)
    if kind == "multilabel":
        return r.integers(0, 2, (n, 3)).astype(np.float32), \
            r.uniform(0, 1, (n, 3)).astype(np.float32)
    if kind == "multilabel_logits":
        return r.integers(0, 2, (n, 3)).astype(np.float32), \
            r.normal(0, 3, (n, 3)).astype(np.float32)
    if kind == "regression":
        return r.uniform(0, 3, (n, 3)).astype(np.float32), \
            r.uniform(-0.5, 3, (n, 3)).astype(np.float32)
    raise ValueError(kind)


CASES = [
    ("TopKCategoricalAccuracy", {}, "categorical"),
    ("TopKCategoricalAccuracy", {"k": 1}, "categorical"),
    ("TopKCategoricalAccuracy", {"k": 3}, "categorical"),
    ("SparseTopKCategoricalAccuracy", {}, "sparse"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse_column"),
    ("BinaryCrossentropy", {}, "multilabel"),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, "binary"),
    ("BinaryCrossentropy", {"from_logits": True}, "multilabel_logits"),
    ("CategoricalCrossentropy", {}, "categorical"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}, "categorical"),
    ("CategoricalCrossentropy", {"from_logits": True}, "categorical_logits"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {}, "sparse_column"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse_logits"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 2}, "sparse"),
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("RootMeanSquaredError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "regression"),
    ("TruePositives", {}, "multilabel"),
    ("FalsePositives", {"thresholds": [0.2, 0.5, 0.9]}, "multilabel"),
    ("TrueNegatives", {"thresholds": [0.0, 0.5, 1.0]}, "binary"),
    ("FalseNegatives", {"thresholds": 0.3}, "binary_flat"),
    ("Precision", {}, "multilabel"),
    ("Precision", {}, "binary_flat"),
    ("Precision", {"thresholds": [0.3, 0.6]}, "binary"),
    ("Precision", {"top_k": 2}, "categorical"),
    ("Precision", {"class_id": 1}, "multilabel"),
    ("Precision", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, "multilabel"),
    ("Recall", {}, "multilabel"),
    ("Recall", {"top_k": 2}, "categorical"),
    ("Recall", {"class_id": 2}, "categorical"),
    ("Recall", {"thresholds": [0.6, 0.1]}, "binary"),
    ("AUC", {}, "multilabel"),
    ("AUC", {}, "binary_flat"),
    ("AUC", {"curve": "PR"}, "multilabel"),
    ("AUC", {"curve": "PR"}, "categorical"),
    ("AUC", {"num_thresholds": 7}, "binary"),
    ("AUC", {"num_thresholds": 7, "curve": "PR"}, "binary"),
    ("AUC", {"summation_method": "minoring"}, "multilabel"),
    ("AUC", {"summation_method": "majoring", "curve": "PR"}, "multilabel"),
    ("AUC", {"thresholds": [0.1, 0.4, 0.45, 0.8]}, "multilabel"),
    ("AUC", {"multi_label": True}, "multilabel"),
    ("AUC", {"multi_label": True, "curve": "PR", "label_weights": [1.0, 2.0, 0.5]}, "multilabel"),
    ("AUC", {"from_logits": True}, "multilabel_logits"),
    ("AUC", {"label_weights": [1.0, 3.0, 0.2]}, "multilabel"),
    ("F1Score", {}, "multilabel"),
    ("F1Score", {}, "categorical"),
    ("F1Score", {"average": "micro"}, "multilabel"),
    ("F1Score", {"average": "macro", "threshold": 0.4}, "multilabel"),
    ("F1Score", {"average": "weighted"}, "categorical"),
    ("FBetaScore", {"beta": 2.0}, "multilabel"),
    ("FBetaScore", {"beta": 0.5, "average": "macro", "threshold": 0.3}, "categorical"),
]


def _case_id(case):
    cls, kw, kind = case
    return f"{cls}-{kind}" + "".join(f"-{k}={v}" for k, v in kw.items()).replace(" ", "")


def _feed(km, am, kind, batches):
    for seed, n, weighted in batches:
        yt, yp = _inputs(kind, n, seed)
        sw = _rng(seed + 100).uniform(0, 2, n).astype(np.float32) if weighted else None
        km.update_state(torch.tensor(yt), torch.tensor(yp),
                        sample_weight=None if sw is None else torch.tensor(sw))
        am.update_state(yt, yp, sample_weight=sw)
        k, a = _np(km.result()), np.asarray(am.result())
        assert a.shape == k.shape, f"result shape {a.shape} vs Keras {k.shape}"
        np.testing.assert_allclose(a, k, rtol=2e-5, atol=2e-6)
    return a


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_metric_matches_keras(case):
    cls, kw, kind = case
    km, am = getattr(keras.metrics, cls)(**kw), getattr(M, cls)(**kw)
    # auto-named metrics (AUC) carry a session counter suffix in both libraries
    assert re.sub(r"_\d+$", "", am.name) == re.sub(r"_\d+$", "", keras.metrics.get(cls).name)
    seen = _feed(km, am, kind, [(0, 16, False), (1, 7, True), (2, 11, False), (3, 9, True)])
    assert np.any(np.asarray(seen) != 0), "degenerate inputs"
    km.reset_state()
    am.reset_state()
    np.testing.assert_allclose(np.asarray(am.result()), _np(km.result()), atol=1e-7)
    _feed(km, am, kind, [(4, 10, True)])


def test_ignore_class_is_masked_out_of_weighted_mean():
    """Keras 3 masks ignore_class entries out of the weights (when weights are given)."""
    yt = np.array([0, 2, 1, 2])
    yp = _probs(_rng(0), 4)
    sw = np.array([1.0, 3.0, 0.5, 2.0], dtype=np.float32)
    m = M.SparseCategoricalCrossentropy(ignore_class=2)
    m.update_state(yt, yp, sample_weight=sw)
    expected = -(1.0 * np.log(yp[0, 0]) + 0.5 * np.log(yp[2, 1])) / 1.5
    assert m.result() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("fn, kind, kw", [
    ("top_k_categorical_accuracy", "categorical", {"k": 2}),
    ("sparse_top_k_categorical_accuracy", "sparse", {"k": 3}),
    ("sparse_top_k_categorical_accuracy", "sparse_column", {}),
    ("binary_crossentropy", "multilabel", {}),
    ("binary_crossentropy", "multilabel_logits", {"from_logits": True, "label_smoothing": 0.2}),
    ("categorical_crossentropy", "categorical", {"label_smoothing": 0.1}),
    ("categorical_crossentropy", "categorical_logits", {"from_logits": True}),
    ("sparse_categorical_crossentropy", "sparse", {}),
    ("sparse_categorical_crossentropy", "sparse_logits", {"from_logits": True}),
    ("mean_absolute_percentage_error", "regression", {}),
    ("mean_squared_logarithmic_error", "regression", {}),
])
def test_metric_function_matches_keras(fn, kind, kw):
    yt, yp = _inputs(kind, 13, 5)
    k = _np(getattr(keras.metrics, fn)(torch.tensor(yt), torch.tensor(yp), **kw))
    a = np.asarray(getattr(M, fn)(yt, yp, **kw))
    assert a.shape == k.shape
    np.testing.assert_allclose(a, k, rtol=2e-5, atol=1e-6)
    assert len(np.unique(np.round(a, 6))) > 1


def test_top_k_counts_ties_as_keras():
    """A target tied with the k-th largest score is "in the top k" (Keras's in_top_k)."""
    yp = np.array([[0.3, 0.3, 0.3, 0.1], [0.5, 0.2, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]],
                  dtype=np.float32)
    yt = np.array([2, 2, 0])
    k = _np(keras.metrics.sparse_top_k_categorical_accuracy(torch.tensor(yt),
                                                            torch.tensor(yp), k=2))
    a = M.sparse_top_k_categorical_accuracy(yt, yp, k=2)
    np.testing.assert_array_equal(a, k)
    np.testing.assert_array_equal(a, [1.0, 1.0, 0.0])
    # k larger than the number of classes: every target is in the top k
    np.testing.assert_array_equal(M.sparse_top_k_categorical_accuracy(yt, yp, k=10), 1.0)


def test_auc_at_threshold_boundaries_like_keras():
    """Scores exactly on thresholds (0, 0.5, 1, k/(n−1)) fall on the same side as in Keras."""
    yp = np.array([0.0, 0.25, 0.5, 0.5, 0.75, 1.0, 1.0, 0.0, 1 / 3, 2 / 3], dtype=np.float32)
    yt = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 0], dtype=np.float32)
    for kw in ({"num_thresholds": 5}, {"num_thresholds": 4}, {"num_thresholds": 3, "curve": "PR"}):
        km, am = keras.metrics.AUC(**kw), M.AUC(**kw)
        km.update_state(torch.tensor(yt), torch.tensor(yp))
        am.update_state(yt, yp)
        for attr in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            np.testing.assert_allclose(getattr(am, attr), _np(getattr(km, attr)), err_msg=attr)
        assert am.result() == pytest.approx(float(_np(km.result())), rel=1e-6)
    kp, ap = keras.metrics.Precision(thresholds=[0.0, 0.5, 1.0]), \
        M.Precision(thresholds=[0.0, 0.5, 1.0])
    kp.update_state(torch.tensor(yt), torch.tensor(yp))
    ap.update_state(yt, yp)
    np.testing.assert_allclose(ap.result(), _np(kp.result()), rtol=1e-6)


def test_f1_score_rows_of_zeros_predict_nothing_like_keras():
    """With threshold=None the row's maximum is the prediction, unless the row is all zero."""
    yt = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float32)
    yp = np.array([[0.0, 0.0, 0.0], [0.2, 0.7, 0.1], [0.0, 0.0, 0.0], [0.5, 0.5, 0.0]],
                  dtype=np.float32)
    km, am = keras.metrics.F1Score(), M.F1Score()
    km.update_state(torch.tensor(yt), torch.tensor(yp))
    am.update_state(yt, yp)
    np.testing.assert_allclose(am.result(), _np(km.result()), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(am.result(), [2 / 3, 2 / 3, 0.0], rtol=1e-5)


def test_auc_perfect_and_inverted_ranking():
    yt = np.array([0, 0, 1, 1, 0, 1], dtype=np.float32)
    yp = np.array([0.1, 0.3, 0.7, 0.9, 0.2, 0.8], dtype=np.float32)
    assert M.AUC()(yt, yp) == pytest.approx(1.0, abs=1e-6)
    assert M.AUC()(yt, 1 - yp) == pytest.approx(0.0, abs=1e-6)
    assert M.AUC(curve="PR")(yt, yp) == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------ names and configs
KERAS_NAMES = ["top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
               "binary_crossentropy", "bce", "BCE", "categorical_crossentropy",
               "sparse_categorical_crossentropy", "mse", "MSE", "mae", "mape", "MAPE", "msle",
               "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
               "mean_squared_logarithmic_error", "root_mean_squared_error", "precision",
               "recall", "auc", "f1_score", "f_beta_score", "true_positives",
               "false_positives", "true_negatives", "false_negatives", "accuracy",
               "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
               "TopKCategoricalAccuracy", "AUC", "F1Score", "FBetaScore", "Precision",
               "RootMeanSquaredError", "MeanSquaredLogarithmicError", "TrueNegatives"]


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_get_resolves_names_like_keras(name):
    k, a = keras.metrics.get(name), M.get(name)
    assert type(a).__name__ == type(k).__name__
    # auto-named metrics (AUC) carry a session counter suffix in both libraries: auc_3
    assert re.sub(r"_\d+$", "", a.name) == re.sub(r"_\d+$", "", k.name)
    # compile names a string-given metric by that string, as Keras's compile does
    assert M.resolve(name, None, (None, 3)).name == name


def test_get_accepts_classes_instances_and_functions():
    p = M.Precision(thresholds=0.3)
    assert M.get(p) is p
    assert isinstance(M.get(M.AUC), M.AUC)
    w = M.get(M.top_k_categorical_accuracy)
    assert isinstance(w, M.MeanMetricWrapper) and w.name == "top_k_categorical_accuracy"
    yt, yp = _inputs("categorical", 20, 3)
    w.update_state(yt, yp)
    assert w.result() == pytest.approx(float(np.mean(M.top_k_categorical_accuracy(yt, yp))))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names") as e:
        M.get("top_k_acuracy")
    assert "top_k_categorical_accuracy" in str(e.value) and "auc" in str(e.value)
    with pytest.raises(ValueError, match="Unknown metric"):
        M.get({"class_name": "NoSuchMetric", "config": {}})
    with pytest.raises(ValueError, match="valid names"):
        axone.Sequential([layers.Dense(2)]).compile(loss="mse", metrics=["f2_score"])


CONFIG_CASES = [
    ("TopKCategoricalAccuracy", {"k": 3}), ("SparseTopKCategoricalAccuracy", {"k": 2}),
    ("SparseTopKCategoricalAccuracy", {"from_sorted_ids": True}),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}),
    ("SparseCategoricalCrossentropy", {"ignore_class": 1, "from_logits": True}),
    ("RootMeanSquaredError", {}), ("MeanAbsolutePercentageError", {}),
    ("MeanSquaredLogarithmicError", {}), ("MeanSquaredError", {}),
    ("Precision", {"thresholds": [0.2, 0.4], "class_id": 1}), ("Recall", {"top_k": 3}),
    ("TruePositives", {"thresholds": 0.3}), ("FalseNegatives", {}),
    ("FalsePositives", {}), ("TrueNegatives", {"thresholds": [0.1, 0.9]}),
    ("AUC", {"curve": "pr", "num_thresholds": 50, "summation_method": "minoring"}),
    ("AUC", {"thresholds": [0.3, 0.1]}), ("AUC", {"multi_label": True, "num_labels": 3}),
    ("F1Score", {"average": "macro", "threshold": 0.4}), ("FBetaScore", {"beta": 2.0}),
    ("BinaryAccuracy", {"threshold": 0.7}),
]


@pytest.mark.parametrize("cls, kw", CONFIG_CASES,
                         ids=[f"{c}-{'-'.join(kw)}" for c, kw in CONFIG_CASES])
def test_get_config_matches_keras_and_round_trips(cls, kw):
    kc = getattr(keras.metrics, cls)(name="m", **kw).get_config()
    am = getattr(M, cls)(name="m", **kw)
    ac = am.get_config()
    assert ac == kc
    json.dumps(ac)                                          # saveable as JSON
    again = getattr(M, cls).from_config(ac)
    assert type(again) is type(am) and again.get_config() == ac
    via_get = M.get({"class_name": cls, "config": ac})
    assert type(via_get) is type(am) and via_get.get_config() == ac


def test_from_config_keeps_behaviour():
    yt, yp = _inputs("multilabel", 30, 8)
    for m in (M.AUC(curve="PR", num_thresholds=30), M.Precision(thresholds=[0.3, 0.7]),
              M.F1Score(average="weighted", threshold=0.6), M.BinaryAccuracy(threshold=0.8)):
        m2 = type(m).from_config(m.get_config())
        m.update_state(yt, yp)
        m2.update_state(yt, yp)
        np.testing.assert_array_equal(np.asarray(m.result()), np.asarray(m2.result()))
    # a changed argument must change the result (so the round trip above is meaningful)
    assert M.BinaryAccuracy(threshold=0.8)(yt, yp) != M.BinaryAccuracy()(yt, yp)


# --------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("make, match", [
    (lambda: M.TopKCategoricalAccuracy(k=0), r"`k`.*k=0"),
    (lambda: M.SparseTopKCategoricalAccuracy(k=-2), r"`k`.*k=-2"),
    (lambda: M.top_k_categorical_accuracy(np.eye(3), np.eye(3), k=0), r"`k`.*k=0"),
    (lambda: M.Precision(thresholds=[0.5, 1.5]), r"`thresholds`.*1\.5"),
    (lambda: M.Recall(thresholds=-0.1), r"`thresholds`.*-0\.1"),
    (lambda: M.TruePositives(thresholds=[2.0]), r"`thresholds`.*2\.0"),
    (lambda: M.AUC(thresholds=[0.2, 1.2]), r"`thresholds`.*1\.2"),
    (lambda: M.Precision(top_k=0), r"`top_k`.*top_k=0"),
    (lambda: M.Recall(class_id=-1), r"`class_id`.*class_id=-1"),
    (lambda: M.AUC(curve="ROCK"), r"`curve`.*ROCK"),
    (lambda: M.AUC(summation_method="trapezoid"), r"`summation_method`.*trapezoid"),
    (lambda: M.AUC(num_thresholds=1), r"`num_thresholds`.*num_thresholds=1"),
    (lambda: M.AUC(num_labels=3), r"`num_labels`"),
    (lambda: M.F1Score(average="samples"), r"`average`.*average='samples'"),
    (lambda: M.FBetaScore(beta=0.0), r"`beta`.*beta=0\.0"),
    (lambda: M.FBetaScore(beta="2"), r"`beta`"),
    (lambda: M.F1Score(threshold=1.5), r"`threshold`.*threshold=1\.5"),
    (lambda: M.F1Score(threshold=0.0), r"`threshold`.*threshold=0\.0"),
    (lambda: M.confusion_matrix([0, 3], [1, 2], num_classes=2), r"`num_classes`.*num_classes=2"),
])
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="2D"):
        M.F1Score().update_state(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="rank 2"):
        M.AUC(multi_label=True).update_state(np.ones((2, 3, 4)), np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="class_id"):
        M.Precision(class_id=1).update_state(np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="predictions must have shape"):
        M.bias_variance(np.ones(5), np.ones(5))


# ------------------------------------------------------------------ compile and fit
def _classifier(seed=0):
    axone.utils.set_random_seed(seed)
    return axone.Sequential([layers.InputLayer(shape=(8,)), layers.Dense(16, activation="relu"),
                             layers.Dense(K, activation="softmax")])


def test_compile_fit_history_keys_like_keras():
    from axone.layers.base import clear_session
    clear_session()                  # AUC is auto-named: "auc" first in a session
    r = _rng(0)
    x = r.normal(size=(120, 8)).astype(np.float32)
    y = np.eye(K, dtype=np.float32)[(x[:, :K].argmax(axis=1))]
    model = _classifier()
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=["top_k_categorical_accuracy", M.Precision(), M.AUC()])
    hist = model.fit(x, y, batch_size=32, epochs=3, verbose=0, validation_split=0.25)
    expected = ["auc", "loss", "precision", "top_k_categorical_accuracy"]
    assert sorted(hist.history) == sorted(expected + ["val_" + k for k in expected])
    assert all(len(v) == 3 for v in hist.history.values())
    assert model.metrics_names == ["loss", "top_k_categorical_accuracy", "precision", "auc"]
    # evaluate's metrics equal Keras's metrics on the model's own predictions
    logs = model.evaluate(x, y, batch_size=50, verbose=0, return_dict=True)
    pred = model.predict(x, batch_size=50, verbose=0)
    for name, km in (("top_k_categorical_accuracy", keras.metrics.TopKCategoricalAccuracy()),
                     ("precision", keras.metrics.Precision()), ("auc", keras.metrics.AUC())):
        for lo in range(0, len(x), 50):
            km.update_state(torch.tensor(y[lo:lo + 50]), torch.tensor(pred[lo:lo + 50]))
        assert logs[name] == pytest.approx(float(_np(km.result())), rel=1e-5), name
    assert 0 < logs["auc"] < 1 and 0 < logs["precision"] < 1


def test_compile_with_string_names_and_weighted_metrics():
    r = _rng(1)
    x = r.normal(size=(60, 8)).astype(np.float32)
    y = x[:, :K].argmax(axis=1)
    sw = r.uniform(0.1, 2, 60).astype(np.float32)
    model = _classifier(1)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_top_k_categorical_accuracy",
                           "sparse_categorical_crossentropy"],
                  weighted_metrics=[M.SparseTopKCategoricalAccuracy(k=2, name="top2")])
    logs = model.evaluate(x, y, sample_weight=sw, batch_size=60, verbose=0, return_dict=True)
    assert sorted(logs) == ["loss", "sparse_categorical_crossentropy",
                            "sparse_top_k_categorical_accuracy", "top2"]
    pred = model.predict(x, verbose=0)
    hits = M.sparse_top_k_categorical_accuracy(y, pred, k=2)
    assert logs["top2"] == pytest.approx(float(np.sum(hits * sw) / np.sum(sw)), rel=1e-6)
    assert logs["top2"] != pytest.approx(float(np.mean(hits)), rel=1e-6)   # weights did count
    assert logs["sparse_categorical_crossentropy"] == pytest.approx(
        float(np.mean(-np.log(np.clip(pred[np.arange(60), y], 1e-7, 1)))), rel=1e-5)


# ------------------------------------------------------------ confusion matrix, report
def _labels(seed, n=80, k=4):
    r = _rng(seed)
    t = r.integers(0, k, n)
    p = np.where(r.random(n) < 0.6, t, r.integers(0, k, n))
    return t, p


def test_confusion_matrix_matches_sklearn():
    t, p = _labels(0)
    cm = M.confusion_matrix(t, p)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(t, p))
    assert cm.shape == (4, 4) and cm.sum() == 80 and cm[0].sum() == np.sum(t == 0)
    assert cm.dtype.kind == "i"                                  # counts, as sklearn
    # one-hot targets and probability predictions are argmaxed
    probs = np.eye(4)[p] * 0.7 + _rng(1).uniform(0, 0.2, (80, 4))
    np.testing.assert_array_equal(M.confusion_matrix(np.eye(4)[t], probs), cm)
    # binary probabilities in one column are thresholded at 0.5
    bt, bp = (t > 1).astype(int), np.where(p > 1, 0.8, 0.3)[:, None]
    np.testing.assert_array_equal(M.confusion_matrix(bt, bp), skm.confusion_matrix(bt, bp > 0.5))
    # num_classes pads absent classes; sample weights are summed
    big = M.confusion_matrix(t, p, num_classes=6)
    assert big.shape == (6, 6) and big[4:].sum() == 0 and np.array_equal(big[:4, :4], cm)
    w = _rng(2).uniform(0, 1, 80)
    np.testing.assert_allclose(M.confusion_matrix(t, p, sample_weight=w),
                               skm.confusion_matrix(t, p, sample_weight=w))


@pytest.mark.parametrize("digits", [2, 4])
def test_classification_report_matches_sklearn(digits):
    t, p = _labels(3, n=120, k=5)
    p[p == 4] = 3                         # class 4 is never predicted: precision 0/0 → 0
    names = ["cat", "dog", "bird", "fish", "a-longer-class-name"]
    ours = M.classification_report(t, p, target_names=names, digits=digits)
    ref = skm.classification_report(t, p, target_names=names, digits=digits, zero_division=0)
    assert ours == ref
    assert M.classification_report(t, p) == skm.classification_report(t, p, zero_division=0)
    d = M.classification_report(np.eye(5)[t], p, output_dict=True)
    rd = skm.classification_report(t, p, output_dict=True, zero_division=0)
    assert list(d) == list(rd)
    for key, v in rd.items():
        if isinstance(v, dict):
            assert d[key] == pytest.approx(v, rel=1e-12), key
        else:
            assert d[key] == pytest.approx(v, rel=1e-12), key


def test_specificity():
    t = np.array([0, 0, 0, 0, 1, 1, 1, 0])
    p = np.array([0, 1, 0, 0, 1, 0, 1, 1])
    assert M.specificity(t, p) == pytest.approx(3 / 5)
    assert M.specificity(t, p) == pytest.approx(skm.recall_score(t, p, pos_label=0))
    scores = np.array([0.1, 0.9, 0.4, 0.2, 0.8, 0.3, 0.7, 0.6])
    assert M.specificity(t, scores) == pytest.approx(3 / 5)
    assert M.specificity(t, scores, threshold=0.65) == pytest.approx(4 / 5)
    assert M.specificity(np.ones(3), np.ones(3)) == 0.0          # no negatives


def test_bias_variance():
    r = _rng(4)
    y = r.normal(size=50)
    preds = y + 0.3 + r.normal(scale=0.5, size=(7, 50))           # biased, noisy models
    bv = M.bias_variance(preds, y)
    mean = preds.mean(axis=0)
    bias2 = np.mean([(mean[i] - y[i]) ** 2 for i in range(50)])
    var = np.mean([np.mean([(preds[m, i] - mean[i]) ** 2 for m in range(7)]) for i in range(50)])
    assert bv.bias2 == pytest.approx(bias2, rel=1e-12)
    assert bv.variance == pytest.approx(var, rel=1e-12)
    assert bv.mse == pytest.approx(bv.bias2 + bv.variance, rel=1e-12)
    assert bv.mse == pytest.approx(np.mean((preds - y) ** 2), rel=1e-12)
    assert 0.05 < bv.bias2 < 0.2 and 0.15 < bv.variance < 0.35
    # identical models have no variance; (n_models, n_samples, 1) predictions are accepted
    same = M.bias_variance(np.repeat(y[None] + 1.0, 3, axis=0)[..., None], y)
    assert same.variance == pytest.approx(0.0, abs=1e-20) and same.bias2 == pytest.approx(1.0)


def test_two_auc_metrics_get_distinct_names_like_keras():
    import axone
    axone.backend  # noqa: B018
    from axone.layers.base import clear_session
    clear_session()
    m = axone.Sequential([axone.Input((4,)), axone.layers.Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy",
              metrics=[axone.metrics.AUC(), axone.metrics.AUC(curve="PR")])
    rng = np.random.default_rng(0)
    h = m.fit(rng.random((20, 4)), np.arange(20) % 2, epochs=1, verbose=0)
    assert sorted(h.history) == ["auc", "auc_1", "loss"]
    assert axone.metrics.AUC(name="roc").name == "roc"
