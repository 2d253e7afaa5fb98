"""The hinge, probabilistic, regression, correlation, IoU and operating-point metrics against
Keras 3 (torch backend) over several weighted batches; configs, serialize / deserialize,
compile by name and object; bad input."""
import warnings

import numpy as np
import pytest

import axone

keras = pytest.importorskip("keras")

B = 16
rng = np.random.default_rng(11)


def _regression(seed):
    r = np.random.default_rng(seed)
    return r.normal(size=(B, 3)).astype(np.float32), r.normal(size=(B, 3)).astype(np.float32)


def _binary(seed):
    r = np.random.default_rng(seed)
    return r.integers(0, 2, (B, 1)).astype(np.float32), r.uniform(0, 1, (B, 1)).astype(np.float32)


def _probs(seed):
    r = np.random.default_rng(seed)
    return (r.dirichlet(np.ones(4), B).astype(np.float32),
            r.dirichlet(np.ones(4), B).astype(np.float32))


def _positive(seed):
    r = np.random.default_rng(seed)
    return (r.uniform(0, 3, (B, 3)).astype(np.float32),
            r.uniform(0.1, 3, (B, 3)).astype(np.float32))


def _hinge(seed):
    r = np.random.default_rng(seed)
    return r.integers(0, 2, (B, 3)).astype(np.float32), r.normal(size=(B, 3)).astype(np.float32)


def _sparse_labels(seed, n=4):
    r = np.random.default_rng(seed)
    return r.integers(0, n, (B,)), r.integers(0, n, (B,))


def _onehot(seed, n=4):
    r = np.random.default_rng(seed)
    return (np.eye(n, dtype=np.float32)[r.integers(0, n, B)],
            r.dirichlet(np.ones(n), B).astype(np.float32))


def _multiclass_scores(seed):
    r = np.random.default_rng(seed)
    return np.eye(3, dtype=np.float32)[r.integers(0, 3, B)], r.uniform(0, 1, (B, 3)).astype(np.float32)


CASES = [
    ("Hinge", {}, _hinge),
    ("SquaredHinge", {}, _hinge),
    ("CategoricalHinge", {}, _hinge),
    ("KLDivergence", {}, _probs),
    ("Poisson", {}, _positive),
    ("LogCoshError", {}, _regression),
    ("CosineSimilarity", {}, _regression),
    ("CosineSimilarity", {"axis": 0}, _regression),
    ("PearsonCorrelation", {}, _regression),
    ("PearsonCorrelation", {"axis": 0}, _regression),
    ("ConcordanceCorrelation", {}, _regression),
    ("R2Score", {}, _regression),
    ("R2Score", {"class_aggregation": "variance_weighted_average"}, _regression),
    ("R2Score", {"class_aggregation": None, "num_regressors": 2}, _regression),
    ("SensitivityAtSpecificity", {"specificity": 0.6}, _binary),
    ("SensitivityAtSpecificity", {"specificity": 0.3, "num_thresholds": 1}, _binary),
    ("SpecificityAtSensitivity", {"sensitivity": 0.7, "num_thresholds": 50}, _binary),
    ("PrecisionAtRecall", {"recall": 0.5}, _binary),
    ("PrecisionAtRecall", {"recall": 0.4, "class_id": 1}, _multiclass_scores),
    ("RecallAtPrecision", {"precision": 0.6, "num_thresholds": 20}, _binary),
    ("IoU", {"num_classes": 4, "target_class_ids": [0, 2]}, _sparse_labels),
    ("IoU", {"num_classes": 4, "target_class_ids": [1, 3], "ignore_class": 2}, _sparse_labels),
    ("MeanIoU", {"num_classes": 4}, _sparse_labels),
    ("BinaryIoU", {}, _binary),
    ("BinaryIoU", {"target_class_ids": [1], "threshold": 0.3}, _binary),
    ("OneHotIoU", {"num_classes": 4, "target_class_ids": [0, 1, 3]}, _onehot),
    ("OneHotMeanIoU", {"num_classes": 4}, _onehot),
]
IDS = [f"{c}-{i}" for i, (c, *_rest) in enumerate(CASES)]


def _weights(cls, seed):
    r = np.random.default_rng(seed + 100)
    if "IoU" in cls:
        return r.integers(0, 3, B)            # the IoU metrics count in integers, as Keras
    return r.uniform(0.1, 1.0, B).astype(np.float32)


@pytest.mark.parametrize("cls, kw, data", CASES, ids=IDS)
def test_stateful_metrics_match_keras_over_weighted_batches(cls, kw, data):
    k = getattr(keras.metrics, cls)(**kw)
    a = getattr(axone.metrics, cls)(**kw)
    for step in range(3):
        yt, yp = data(step)
        # per-sample weights do not apply to a metric reduced over the batch axis
        sw = None if step == 0 or kw.get("axis") == 0 else _weights(cls, step)
        k.update_state(yt, yp, sample_weight=sw)
        a.update_state(yt, yp, sample_weight=sw)
        np.testing.assert_allclose(np.asarray(a.result(), dtype=np.float64),
                                   np.asarray(k.result(), dtype=np.float64),
                                   rtol=1e-5, atol=1e-6, err_msg=f"{cls} after batch {step}")
    assert [tuple(v.shape) for v in a.variables] == [tuple(v.shape) for v in k.variables]
    assert [v.name for v in a.variables] == [v.name for v in k.variables]
    a.reset_state()
    k.reset_state()
    for v in a.variables:
        assert not np.any(v.numpy())


@pytest.mark.parametrize("cls, kw, data", CASES, ids=IDS)
def test_configs_match_keras_and_round_trip(cls, kw, data):
    kw = {**kw, "name": "m"}
    k = getattr(keras.metrics, cls)(**kw)
    a = getattr(axone.metrics, cls)(**kw)
    assert a.get_config() == k.get_config()
    assert a.dtype == k.dtype
    entry = axone.metrics.serialize(a)
    assert entry == keras.metrics.serialize(k)
    again = axone.metrics.deserialize(entry)
    assert type(again) is type(a) and again.get_config() == a.get_config()


FUNCTIONS = [("hinge", {}, _hinge), ("squared_hinge", {}, _hinge),
             ("categorical_hinge", {}, _hinge), ("kl_divergence", {}, _probs),
             ("log_cosh", {}, _regression), ("poisson", {}, _positive),
             ("huber", {"delta": 0.5}, _regression),
             ("binary_focal_crossentropy", {"gamma": 3.0}, _binary),
             ("categorical_focal_crossentropy", {}, _onehot),
             ("pearson_correlation", {}, _regression), ("pearson_correlation", {"axis": 0}, _regression),
             ("concordance_correlation", {}, _regression),
             ("concordance_correlation", {"axis": 0}, _regression)]


@pytest.mark.parametrize("name, kw, data", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_metric_functions_match_keras(name, kw, data):
    yt, yp = data(5)
    want = np.asarray(getattr(keras.metrics, name)(yt, yp, **kw))
    got = getattr(axone.metrics, name)(yt, yp, **kw)
    got = got.data if isinstance(got, axone.Tensor) else got
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_metric_functions_are_the_loss_functions_as_keras():
    for name in ("hinge", "squared_hinge", "categorical_hinge", "kl_divergence", "log_cosh",
                 "poisson", "huber", "binary_focal_crossentropy",
                 "categorical_focal_crossentropy"):
        assert getattr(axone.metrics, name) is getattr(axone.losses, name)


def test_auto_names_are_unique_as_keras():
    a, b = axone.metrics.PrecisionAtRecall(0.5), axone.metrics.PrecisionAtRecall(0.5)
    assert a.name.startswith("precision_at_recall") and a.name != b.name
    assert axone.metrics.IoU(3, [0]).name.startswith("io_u")
    assert axone.metrics.Hinge().name == "hinge" and axone.metrics.LogCoshError().name == "logcosh"


def test_serialize_functions_and_deserialize_names():
    entry = axone.metrics.serialize(axone.metrics.hinge)
    assert entry == keras.metrics.serialize(keras.metrics.hinge)
    assert axone.metrics.deserialize(entry) is axone.metrics.hinge
    assert isinstance(axone.metrics.deserialize("mse"), axone.metrics.MeanSquaredError)
    assert isinstance(axone.metrics.deserialize("r2_score"), axone.metrics.R2Score)
    assert isinstance(axone.metrics.deserialize("KLDivergence"), axone.metrics.KLDivergence)
    wrapped = axone.metrics.MeanMetricWrapper(axone.metrics.poisson, name="p")
    again = axone.metrics.deserialize(axone.metrics.serialize(wrapped))
    assert isinstance(again, axone.metrics.MeanMetricWrapper) and again.fn is axone.metrics.poisson

    class Custom(axone.metrics.Mean):
        pass
    got = axone.metrics.deserialize({"class_name": "Custom", "config": {"name": "c"}},
                                    custom_objects={"Custom": Custom})
    assert isinstance(got, Custom) and got.name == "c"
    with pytest.raises(ValueError, match="Unknown metric"):
        axone.metrics.deserialize("no_such_metric")
    with pytest.raises(ValueError, match="Unknown metric"):
        axone.metrics.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError, match="deserialize"):
        axone.metrics.deserialize(1.5)
    with pytest.raises(TypeError, match="serialize"):
        axone.metrics.serialize(3)


@pytest.mark.parametrize("spec", ["hinge", "squared_hinge", "kl_divergence", "poisson",
                                  "logcosh", "cosine_similarity", "r2_score",
                                  "pearson_correlation", "huber",
                                  axone.metrics.R2Score(name="r2"),
                                  axone.metrics.PrecisionAtRecall(0.5, name="par")])
def test_compile_fit_evaluate_with_new_metrics(spec):
    axone.utils.set_random_seed(3)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model = axone.Sequential([axone.layers.Input((3,)),
                              axone.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=[spec])
    h = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25)
    name = spec if isinstance(spec, str) else spec.name
    assert len(h.history[name]) == 2 and len(h.history["val_" + name]) == 2
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    ref = axone.metrics.get(spec) if isinstance(spec, str) else type(spec)(
        **{k: v for k, v in spec.get_config().items() if k != "name"})
    ref.update_state(y, model.predict(x, verbose=0, batch_size=40))
    np.testing.assert_allclose(logs[name], float(np.asarray(ref.result())), rtol=1e-4, atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="class_aggregation"):
        axone.metrics.R2Score(class_aggregation="median")
    with pytest.raises(ValueError, match="num_regressors"):
        axone.metrics.R2Score(num_regressors=-1)
    with pytest.raises(ValueError, match="2D inputs"):
        axone.metrics.R2Score().update_state(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="range \\[0, 1\\]"):
        axone.metrics.PrecisionAtRecall(1.5)
    with pytest.raises(ValueError, match="range \\[0, 1\\]"):
        axone.metrics.SensitivityAtSpecificity(-0.1)
    with pytest.raises(ValueError, match="num_thresholds"):
        axone.metrics.RecallAtPrecision(0.5, num_thresholds=0)
    with pytest.raises(ValueError, match="out of range"):
        axone.metrics.IoU(3, [0, 3])
    with pytest.raises(ValueError, match="num_classes"):
        axone.metrics.MeanIoU(0)
    with pytest.raises(ValueError, match="labels"):
        axone.metrics.MeanIoU(3).update_state(np.zeros(4), np.zeros(5))
    m = axone.metrics.MeanIoU(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.update_state(np.zeros(4), np.zeros(4), sample_weight=np.full(4, 0.5))
    assert any("integer weights" in str(w.message) for w in caught)
