"""Bad input to the model API fails early with a ValueError/TypeError whose message names the
argument, what was expected and what was received (SPEC.md §2 and §8: no NumPy traceback)."""
import re

import numpy as np
import pytest

from axone.compat import install_keras_alias, uninstall_keras_alias
from axone.layers import Dense, Input, InputLayer
from axone.models import Model, Sequential
from axone.utils import to_categorical

N = 12


def _mentions(excinfo, *parts):
    msg = str(excinfo.value)
    for p in parts:
        if isinstance(p, re.Pattern):
            assert p.search(msg), f"{p.pattern!r} not matched in error message {msg!r}"
        else:
            assert p.lower() in msg.lower(), f"{p!r} not in error message {msg!r}"
    return msg


def _model(loss="categorical_crossentropy", out=3, metrics=None, compile=True, name=None):
    model = Sequential([InputLayer(input_shape=(4,)), Dense(8, activation="relu"),
                        Dense(out, activation="softmax" if out > 1 else None)], name=name)
    if compile:
        model.compile(loss=loss, optimizer="adam", metrics=metrics)
    return model


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 4)).astype("float32")
    labels = np.arange(N) % 3
    return x, labels, to_categorical(labels, 3)


# ------------------------------------------------------------------- not compiled
@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_training_api_before_compile(data, method):
    x, _, y = data
    model = _model(compile=False, name="uncompiled_net")
    kwargs = {"verbose": 0} if method in ("fit", "evaluate") else {}
    with pytest.raises(ValueError) as e:
        getattr(model, method)(x, y, **kwargs)
    _mentions(e, "compile", method)


def test_predict_does_not_need_compile(data):
    x, _, _ = data
    assert _model(compile=False).predict(x, verbose=0).shape == (N, 3)


# ------------------------------------------------------------------- rows and shapes
@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_x_and_y_row_counts_differ(data, method):
    x, _, y = data
    model = _model()
    kwargs = {"verbose": 0} if method in ("fit", "evaluate") else {}
    with pytest.raises(ValueError) as e:
        getattr(model, method)(x, y[:-2], **kwargs)
    _mentions(e, "x", "y", str(N), str(N - 2))


def test_validation_data_row_counts_differ(data):
    x, _, y = data
    with pytest.raises(ValueError) as e:
        _model().fit(x, y, validation_data=(x[:5], y[:4]), verbose=0)
    _mentions(e, "5", "4")


@pytest.mark.parametrize("labels_shape", ["flat", "column"])
def test_integer_labels_with_categorical_crossentropy(data, labels_shape):
    """001's MNIST listing: integer labels with a categorical loss → say what to do instead."""
    x, labels, _ = data
    y = labels if labels_shape == "flat" else labels[:, None]
    with pytest.raises(ValueError) as e:
        _model().fit(x, y, verbose=0)
    _mentions(e, "categorical_crossentropy", "sparse_categorical_crossentropy", "to_categorical",
              str(y.shape), "3")


@pytest.mark.parametrize("bad", [3, -1, 7])
def test_sparse_labels_outside_class_range(data, bad):
    x, labels, _ = data
    y = labels.copy()
    y[4] = bad
    with pytest.raises(ValueError) as e:
        _model("sparse_categorical_crossentropy").fit(x, y, verbose=0)
    _mentions(e, "[0, 3)", str(bad))


def test_sparse_labels_valid_range_trains(data):
    x, labels, _ = data
    hist = _model("sparse_categorical_crossentropy").fit(x, labels, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])


@pytest.mark.parametrize("value,kind", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
@pytest.mark.parametrize("where", ["x", "y"])
@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_non_finite_values(data, value, kind, where, method):
    x, _, y = data
    x, y = x.copy(), y.copy()
    (x if where == "x" else y)[5, 1] = value
    with pytest.raises(ValueError) as e:
        getattr(_model(), method)(x, y, verbose=0)
    msg = _mentions(e, kind)
    assert re.match(rf"^{where}\b", msg) or f" {where} " in msg or f"{where}:" in msg, msg
    assert "(5, 1)" in msg   # where the first bad value is


def test_non_finite_x_in_predict(data):
    x, _, _ = data
    x = x.copy()
    x[0, 0] = np.nan
    with pytest.raises(ValueError) as e:
        _model().predict(x, verbose=0)
    _mentions(e, "NaN")


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_empty_x(data, method):
    x, _, y = data
    kwargs = {"verbose": 0} if method in ("fit", "evaluate") else {}
    with pytest.raises(ValueError) as e:
        getattr(_model(), method)(x[:0], y[:0], **kwargs)
    _mentions(e, "empty", "0 rows")


@pytest.mark.parametrize("batch_size", [0, -1])
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_non_positive_batch_size(data, method, batch_size):
    x, _, y = data
    args = (x,) if method == "predict" else (x, y)
    with pytest.raises(ValueError) as e:
        getattr(_model(), method)(*args, batch_size=batch_size, verbose=0)
    _mentions(e, "batch_size", "positive", str(batch_size))


@pytest.mark.parametrize("batch_size", [2.5, "8"])
def test_non_integer_batch_size(data, batch_size):
    x, _, y = data
    with pytest.raises((TypeError, ValueError)) as e:
        _model().fit(x, y, batch_size=batch_size, verbose=0)
    _mentions(e, "batch_size", repr(batch_size))


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict", "train_on_batch"])
def test_feature_size_differs_from_built_model(data, method):
    x, _, y = data
    x5 = np.concatenate([x, x[:, :1]], axis=1)
    model = _model()
    args = (x5,) if method == "predict" else (x5, y)
    kwargs = {"verbose": 0} if method in ("fit", "evaluate", "predict") else {}
    with pytest.raises(ValueError) as e:
        getattr(model, method)(*args, **kwargs)
    _mentions(e, "(None, 4)", f"({N}, 5)")


def test_feature_size_differs_from_lazily_built_model(data):
    """A Sequential built from its first data then given another width."""
    x, _, y = data
    model = Sequential([Dense(8, activation="relu"), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError) as e:
        model.predict(x[:, :3], verbose=0)
    _mentions(e, "(None, 4)", f"({N}, 3)")


def test_feature_size_differs_functional_model(data):
    x, _, y = data
    inp = Input(shape=(4,))
    model = Model(inp, Dense(3, activation="softmax")(inp))
    with pytest.raises(ValueError) as e:
        model.predict(np.zeros((2, 6), dtype="float32"), verbose=0)
    _mentions(e, "(None, 4)", "(2, 6)")


def test_wrong_number_of_inputs_for_two_input_model(data):
    x, _, _ = data
    a, b = Input(shape=(4,)), Input(shape=(2,))
    model = Model([a, b], Dense(1)(Dense(3)(a)))
    with pytest.raises(ValueError) as e:
        model.predict(x, verbose=0)
    _mentions(e, "expects 2 input", "received 1")


def test_non_numeric_x(data):
    _, _, y = data
    with pytest.raises(TypeError) as e:
        _model().fit(np.array([["a", "b", "c", "d"]] * N), y, verbose=0)
    _mentions(e, "x", "numeric")


# ------------------------------------------------------------------- names
def test_unknown_loss_name_lists_valid_names():
    with pytest.raises(ValueError) as e:
        _model(loss="categorical_crossentropyy")
    _mentions(e, "categorical_crossentropyy", "categorical_crossentropy", "mse",
              "sparse_categorical_crossentropy", "binary_crossentropy")


def test_unknown_optimizer_name_lists_valid_names():
    model = _model(compile=False)
    with pytest.raises(ValueError) as e:
        model.compile(loss="mse", optimizer="adamm")
    _mentions(e, "adamm", "adam", "sgd")


def test_unknown_metric_name_lists_valid_names():
    with pytest.raises(ValueError) as e:
        _model(metrics=["acuracy"])
    _mentions(e, "acuracy", "accuracy", "mae")


def test_wrong_type_for_optimizer():
    with pytest.raises(TypeError) as e:
        _model(compile=False).compile(loss="mse", optimizer=3.5)
    _mentions(e, "optimizer", "3.5")


def test_unknown_names_fail_at_compile_not_at_fit(data):
    """A typo fails in compile, before any data is touched."""
    model = _model(compile=False)
    with pytest.raises(ValueError):
        model.compile(loss="mse", optimizer="adam", metrics=["nope"])


# ------------------------------------------------------------------- layers and weights
@pytest.mark.parametrize("units", [0, -3])
def test_dense_non_positive_units(units):
    with pytest.raises(ValueError) as e:
        Dense(units=units)
    _mentions(e, "units", "positive", str(units))


@pytest.mark.parametrize("units", [2.5, "3", None])
def test_dense_non_integer_units(units):
    with pytest.raises((TypeError, ValueError)) as e:
        Dense(units=units)
    _mentions(e, "units", repr(units))


def test_dense_unknown_keyword():
    with pytest.raises(TypeError) as e:
        Dense(3, activaton="relu")
    _mentions(e, "activaton")


def test_set_weights_wrong_shape_on_layer():
    model = _model()
    layer = model.layers[0]
    with pytest.raises(ValueError) as e:
        layer.set_weights([np.zeros((4, 9)), np.zeros(8)])
    _mentions(e, layer.name, "(4, 8)", "(4, 9)")
    # nothing was changed by the failed call
    assert layer.get_weights()[0].shape == (4, 8)


def test_set_weights_wrong_shape_on_model_names_the_layer():
    model = _model()
    w = model.get_weights()
    before = [a.copy() for a in w]
    w[2] = np.zeros((8, 4))        # second Dense kernel, should be (8, 3)
    w[0] = w[0] + 1.0              # a valid change before the bad one must not be applied
    with pytest.raises(ValueError) as e:
        model.set_weights(w)
    _mentions(e, model.layers[1].name, "(8, 3)", "(8, 4)")
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_weights_wrong_count():
    model = _model()
    with pytest.raises(ValueError) as e:
        model.set_weights([np.zeros((4, 8))])
    _mentions(e, "4", "1")


# ------------------------------------------------------------------- keras alias
@pytest.fixture
def keras_alias():
    install_keras_alias()
    try:
        yield
    finally:
        uninstall_keras_alias()


def test_unsupported_keras_name_through_alias(keras_alias):
    with pytest.raises(ImportError) as e:
        from keras.layers import NoSuchLayerInKeras  # noqa: F401
    _mentions(e, "NoSuchLayerInKeras", "axone")


def test_unsupported_keras_submodule_through_alias(keras_alias):
    with pytest.raises(ImportError) as e:
        import keras.no_such_module  # noqa: F401
    _mentions(e, "keras.no_such_module")


def test_supported_keras_names_resolve_to_axone(keras_alias):
    import axone
    from keras.layers import Dense as KDense
    from keras.models import Sequential as KSequential
    import keras_core
    from tensorflow.keras.layers import InputLayer as TFInputLayer
    assert KDense is axone.layers.Dense and KSequential is axone.Sequential
    assert keras_core.layers.Dense is axone.layers.Dense
    assert TFInputLayer is axone.layers.InputLayer
