"""FeatureSpace against Keras 3: the same feature spaces adapted on the same dict data set give
the outputs Keras 3.15 (TensorFlow backend, which Keras's FeatureSpace needs) gave, stored in
feature_space_keras.json. Regenerate that file with Keras and TensorFlow installed:

    KERAS_BACKEND=tensorflow python tests/utils/test_feature_space.py tests/utils/feature_space_keras.json
"""
import json
import os
import sys

import numpy as np
import pytest

REFERENCE = os.path.join(os.path.dirname(__file__), "feature_space_keras.json")


def data():
    rng = np.random.RandomState(0)
    n = 45
    return {
        "age": rng.normal(30, 10, n).round(1).astype("float32"),
        "fare": rng.uniform(0, 100, n).round(2).astype("float32"),
        "raw": rng.normal(0, 1, n).astype("float32"),
        "height": rng.uniform(1.4, 2.0, n).astype("float32"),
        "pclass": rng.choice([1, 2, 3, 7], n).astype("int64"),
        "city": rng.choice(["paris", "rome", "oslo", "lima", "kyiv", "bern"], n,
                           p=[.3, .2, .2, .1, .1, .1]),
        "cabin": rng.choice(["A1", "B2", "C3", "D4", "E5"], n),
        "ticket": rng.randint(0, 1000, n).astype("int64"),
        "sex": rng.choice(["m", "f"], n),
    }


def concat_space(FS):
    return FS({"age": "float_normalized", "fare": FS.float_rescaled(scale=0.1, offset=-1.0),
               "raw": "float", "height": FS.float_discretized(num_bins=4),
               "pclass": "integer_categorical", "city": FS.string_categorical(max_tokens=4),
               "cabin": FS.string_hashed(num_bins=8), "ticket": FS.integer_hashed(num_bins=6)},
              crosses=[("pclass", "city"), FS.cross(("cabin", "height"), crossing_dim=5)],
              crossing_dim=16, output_mode="concat")


def dict_space(FS):
    return FS({"age": "float_normalized",
               "pclass": FS.integer_categorical(output_mode="int", num_oov_indices=2),
               "city": "string_categorical", "sex": FS.string_categorical(output_mode="int"),
               "height": "float_discretized", "ticket": "integer_hashed"},
              crosses=[FS.cross(("sex", "city"), crossing_dim=7, output_mode="int"),
                       ("pclass", "height")],
              crossing_dim=9, hashing_dim=11, num_discretization_bins=3, output_mode="dict")


SPACES = {"concat": concat_space, "dict": dict_space}


def _subset(fs, d):
    return {k: d[k] for k in fs.features}


def _record(x):
    x = np.asarray(x)
    return {"dtype": str(x.dtype), "shape": list(x.shape), "values": x.tolist()}


def make_reference(FS):
    d = data()
    out = {}
    for kind, make in SPACES.items():
        fs = make(FS)
        sub = _subset(fs, d)
        fs.adapt(sub)
        res = fs(sub)
        one = fs({k: v[3] for k, v in sub.items()})
        enc = fs.get_encoded_features()
        if isinstance(res, dict):
            out[kind] = {k: _record(v) for k, v in res.items()}
            out[kind + "_one"] = {k: _record(v) for k, v in one.items()}
            out[kind + "_symbolic"] = {k: list(v.shape[1:]) for k, v in enc.items()}
        else:
            out[kind] = _record(res)
            out[kind + "_one"] = _record(one)
            out[kind + "_symbolic"] = list(enc.shape[1:])
        out[kind + "_vocab"] = {n: [str(t) for t in p.get_vocabulary()]
                                for n, p in fs.preprocessors.items() if hasattr(p, "get_vocabulary")}
        out[kind + "_bins"] = {n: [float(b) for b in p.bin_boundaries]
                               for n, p in fs.preprocessors.items()
                               if getattr(p, "bin_boundaries", None) is not None}
    return out


# --------------------------------------------------------------------------- the tests
import axone  # noqa: E402
from axone.utils import FeatureSpace  # noqa: E402


@pytest.fixture(scope="module")
def reference():
    with open(REFERENCE) as f:
        return json.load(f)


def _np(x):
    return x.data if hasattr(x, "data") and not isinstance(x, np.ndarray) else np.asarray(x)


def _check(got, want, atol=1e-6):
    got = _np(got)
    assert list(got.shape) == want["shape"]
    assert np.dtype(got.dtype).kind == np.dtype(want["dtype"]).kind
    np.testing.assert_allclose(got, np.asarray(want["values"]), rtol=1e-5, atol=atol)


@pytest.mark.parametrize("kind", ["concat", "dict"])
def test_outputs_match_keras(kind, reference):
    axone.utils.clear_session()
    fs = SPACES[kind](FeatureSpace)
    d = data()
    sub = _subset(fs, d)
    fs.adapt(sub)
    vocab = {n: [str(t) for t in p.get_vocabulary()]
             for n, p in fs.preprocessors.items() if hasattr(p, "get_vocabulary")}
    assert vocab == reference[kind + "_vocab"]
    bins = {n: [float(b) for b in p.bin_boundaries] for n, p in fs.preprocessors.items()
            if getattr(p, "bin_boundaries", None) is not None}
    assert bins.keys() == reference[kind + "_bins"].keys()
    for n in bins:
        np.testing.assert_allclose(bins[n], reference[kind + "_bins"][n], rtol=1e-6)
    res = fs(sub)
    one = fs({k: v[3] for k, v in sub.items()})
    enc = fs.get_encoded_features()
    if kind == "dict":
        assert list(res) == list(reference[kind])              # the same keys, same order
        for k in res:
            _check(res[k], reference[kind][k])
            _check(one[k], reference[kind + "_one"][k])
            assert list(enc[k].shape[1:]) == reference[kind + "_symbolic"][k]
            assert enc[k].dtype.kind == np.dtype(reference[kind][k]["dtype"]).kind
    else:
        _check(res, reference[kind])
        _check(one, reference[kind + "_one"])
        assert list(enc.shape[1:]) == reference[kind + "_symbolic"]
        assert enc.dtype == np.float32


def test_single_types_by_hand():
    d = {"x": np.array([0.0, 1.0, 2.0, 4.0]), "c": np.array([3, 3, 5, 9])}
    fs = FeatureSpace({"x": "float_normalized", "c": FeatureSpace.integer_categorical()},
                      output_mode="dict")
    fs.adapt(d)
    out = fs(d)
    np.testing.assert_allclose(_np(out["x"])[:, 0], (d["x"] - d["x"].mean()) / d["x"].std(),
                               rtol=1e-6)
    # vocabulary by frequency, then value: [-1 (OOV), 3, 9, 5]
    np.testing.assert_array_equal(_np(out["c"]), np.eye(4, dtype="float32")[[1, 1, 3, 2]])
    assert fs.preprocessors["c"].get_vocabulary() == [-1, 3, 9, 5]


def test_no_adapt_needed_and_fixed_preprocessors():
    fs = FeatureSpace({"a": "float", "b": FeatureSpace.float_rescaled(scale=2.0),
                       "h": FeatureSpace.integer_hashed(num_bins=3)})
    out = _np(fs({"a": [1.0, 2.0], "b": [3.0, 4.0], "h": [5, 6]}))
    assert out.shape == (2, 5)
    np.testing.assert_allclose(out[:, :2], [[1, 6], [2, 8]])
    assert (out[:, 2:].sum(1) == 1).all()


def test_needs_adapt():
    fs = FeatureSpace({"c": "string_categorical"})
    with pytest.raises(ValueError, match="adapt"):
        fs({"c": ["a"]})
    with pytest.raises(ValueError, match="adapt"):
        fs.get_encoded_features()


def test_adapt_from_batches():
    d = data()
    fs1 = SPACES["concat"](FeatureSpace)
    sub = _subset(fs1, d)
    fs1.adapt(sub)
    fs2 = SPACES["concat"](FeatureSpace)
    batches = [({k: v[i:i + 32] for k, v in sub.items()}, None) for i in range(0, 45, 32)]
    fs2.adapt(batches)
    np.testing.assert_allclose(_np(fs2(sub)), _np(fs1(sub)), rtol=1e-6)


def test_symbolic_use_in_models():
    d = {"x": np.array([0.0, 1.0, 2.0, 4.0], "float32"), "c": np.array([3, 3, 5, 9])}
    fs = FeatureSpace({"x": "float_normalized", "c": "integer_categorical"})
    fs.adapt(d)
    encoded = fs.get_encoded_features()
    assert axone.utils.is_keras_tensor(encoded) and encoded.shape == (None, 5)
    out = axone.layers.Dense(1)(encoded)
    training_model = axone.Model(encoded, out)
    training_model.compile("sgd", "mse")
    x = _np(fs(d))
    training_model.fit(x, np.ones((4, 1)), epochs=1, verbose=0)
    inputs = fs.get_inputs()
    assert sorted(inputs) == ["c", "x"] and inputs["x"].shape == (None, 1)
    inference = axone.Model(inputs, training_model(fs(inputs)))
    got = inference.predict({k: v[:, None] for k, v in d.items()}, verbose=0)
    np.testing.assert_allclose(got, training_model.predict(x, verbose=0), rtol=1e-6)


def test_config_round_trip():
    d = data()
    fs = SPACES["dict"](FeatureSpace)
    config = fs.get_config()
    assert set(config) == {"features", "output_mode", "crosses", "crossing_dim", "hashing_dim",
                           "num_discretization_bins"}
    assert config["features"]["age"]["class_name"] == "Feature"
    assert config["crosses"][0] == {"module": "keras.src.layers.preprocessing.feature_space",
                                    "class_name": "Cross", "registered_name": "Cross",
                                    "config": {"feature_names": ("sex", "city"),
                                               "crossing_dim": 7, "output_mode": "int"}}
    json.dumps(config)
    again = FeatureSpace.from_config(json.loads(json.dumps(config)))
    assert again.get_config()["features"].keys() == config["features"].keys()
    assert [c.name for c in again.crosses] == ["sex_X_city", "pclass_X_height"]
    sub = _subset(fs, d)
    fs.adapt(sub)
    again.adapt(sub)
    a, b = fs(sub), again(sub)
    for k in a:
        np.testing.assert_allclose(_np(a[k]), _np(b[k]))


def test_save_is_not_available():
    with pytest.raises(NotImplementedError, match="FeatureSpace.save"):
        FeatureSpace({"a": "float"}).save("fs.keras")


def test_bad_input():
    with pytest.raises(ValueError, match="cannot be None or empty"):
        FeatureSpace({})
    with pytest.raises(ValueError, match="Invalid feature type"):
        FeatureSpace({"a": "floaty"})
    with pytest.raises(ValueError, match="output_mode"):
        FeatureSpace({"a": "float"}, output_mode="list")
    with pytest.raises(ValueError, match="unknown features"):
        FeatureSpace({"a": "float"}, crosses=[("a", "b")])
    with pytest.raises(ValueError, match="output_mode"):
        FeatureSpace.cross(("a", "b"), 4, output_mode="float")
    with pytest.raises(ValueError, match="output_mode"):
        FeatureSpace.feature("float32", axone.layers.Identity(), "multi_hot")
    fs = FeatureSpace({"a": "float"})
    with pytest.raises(ValueError, match="only be called with a dict"):
        fs([1.0])
    with pytest.raises(ValueError, match="no feature"):
        fs({"b": [1.0]})
    with pytest.raises(ValueError, match="not in the FeatureSpace"):
        fs({"a": [1.0], "b": [1.0]})
    with pytest.raises(ValueError, match="adapt"):
        FeatureSpace({"c": "string_categorical"}).adapt(np.array(["a"]))
    with pytest.raises(ValueError, match="has not been encoded"):
        FeatureSpace({"c": FeatureSpace.integer_categorical(output_mode="int")}).adapt(
            {"c": [1, 2]})
    with pytest.raises(ValueError, match="should return an integer dtype"):
        FeatureSpace({"x": FeatureSpace.feature("float32", axone.layers.Identity(),
                                                "one_hot")})({"x": [1.0]})


if __name__ == "__main__":
    import keras
    json.dump(make_reference(keras.utils.FeatureSpace), open(sys.argv[1], "w"))
