"""Custom layers, models, losses, metrics, activations, regularizers and constraints through
register_keras_serializable / custom_objects / custom_object_scope and model.save + load_model."""
import numpy as np
import pytest

import axone as keras
from axone import saving
from axone.fileio import FileFormatError


@saving.register_keras_serializable(package="T")
class Scale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w * self.factor

    def get_config(self):
        cfg = super().get_config()
        cfg["factor"] = self.factor
        return cfg


@saving.register_keras_serializable(package="T")
def twice(x):
    return x * 2.0


def my_loss(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


class Unregistered(Scale):
    pass


@saving.register_keras_serializable(package="T")
class MyModel(keras.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.d = keras.layers.Dense(units)

    def call(self, x):
        return self.d(x)

    def get_config(self):
        return {"units": self.units, "name": self.name}


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 3)).astype("float32")


def test_registry_names():
    assert saving.get_registered_name(Scale) == "T>Scale"
    assert saving.get_registered_object("T>Scale") is Scale
    assert saving.get_registered_name(my_loss) == "my_loss"
    assert saving.get_custom_objects()["T>twice"] is twice
    with saving.custom_object_scope({"my_loss": my_loss}):
        assert saving.get_registered_object("my_loss") is my_loss
    assert saving.get_registered_object("my_loss") is None
    with pytest.raises(ValueError, match="get_config"):
        saving.register_keras_serializable()(type("NoConfig", (), {}))


def test_registered_layer_activation_and_loss_survive_save(tmp_path):
    x, y = _data()
    model = keras.Sequential([keras.Input((4,)), Scale(3.0), keras.layers.Dense(3, activation=twice)])
    model.compile(optimizer="adam", loss=my_loss)
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects={"my_loss": my_loss})
    assert isinstance(loaded.layers[0], Scale) and loaded.layers[0].factor == 3.0
    assert loaded.layers[1].activation is twice
    assert loaded.loss is my_loss or getattr(loaded, "_loss_spec", None) is my_loss
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_unknown_class_is_file_format_error(tmp_path):
    model = keras.Sequential([keras.Input((4,)), Unregistered(1.0)])
    path = tmp_path / "u.keras"
    model.save(path)
    with pytest.raises(FileFormatError, match="Unregistered.*register_keras_serializable|custom_objects"):
        keras.models.load_model(path)
    loaded = keras.models.load_model(path, custom_objects={"Unregistered": Unregistered})
    assert type(loaded.layers[0]) is Unregistered
    with saving.CustomObjectScope({"Unregistered": Unregistered}):
        assert type(keras.models.load_model(path).layers[0]) is Unregistered


def test_custom_regularizer_and_constraint_in_custom_objects(tmp_path):
    class MyReg(keras.regularizers.Regularizer):
        def __init__(self, k=0.1):
            self.k = k

        def __call__(self, w):
            return self.k * keras.ops.sum(keras.ops.abs(w))

        def get_config(self):
            return {"k": self.k}

    def clip(w):
        return keras.ops.clip(w, -0.5, 0.5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        2, kernel_regularizer=MyReg(0.3), kernel_constraint=clip)])
    path = tmp_path / "r.keras"
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects={"MyReg": MyReg, "clip": clip})
    assert isinstance(loaded.layers[0].kernel_regularizer, MyReg)
    assert loaded.layers[0].kernel_regularizer.k == 0.3


def test_subclassed_model_round_trip(tmp_path):
    x, _ = _data()
    model = MyModel(3)
    model(x)
    path = tmp_path / "s.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, MyModel) and loaded.units == 3
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_serialize_deserialize_keras_object():
    layer = Scale(4.0)
    d = saving.serialize_keras_object(layer)
    assert d["class_name"] == "Scale" and d["registered_name"] == "T>Scale"
    assert saving.deserialize_keras_object(d).factor == 4.0
    dense = keras.layers.Dense(2)
    dense(keras.Input((3,)))
    d = saving.serialize_keras_object(dense)
    assert d["module"] == "keras.layers" and d["registered_name"] is None
    assert d["build_config"] == {"input_shape": (None, 3)}
    back = saving.deserialize_keras_object(d)
    assert back.built and back.units == 2
    f = saving.serialize_keras_object(twice)
    assert f == {"module": "builtins", "class_name": "function", "config": "T>twice",
                 "registered_name": "function"}
    assert saving.deserialize_keras_object(f) is twice
    with pytest.raises(TypeError, match="Could not locate class 'Foo'"):
        saving.deserialize_keras_object({"module": "x", "class_name": "Foo", "config": {},
                                         "registered_name": "Foo"})
    l2 = saving.deserialize_keras_object(saving.serialize_keras_object(keras.regularizers.L2(0.1)))
    assert isinstance(l2, keras.regularizers.L2)


def test_utils_and_layers_names():
    for n in ("custom_object_scope", "CustomObjectScope", "get_custom_objects",
              "register_keras_serializable", "serialize_keras_object", "deserialize_keras_object",
              "get_registered_name", "get_registered_object"):
        assert getattr(keras.utils, n) is getattr(saving, n)
    d = keras.layers.serialize(keras.layers.Dense(5))
    assert keras.layers.deserialize(d).units == 5
    with pytest.raises(ValueError, match="unknown layer class"):
        keras.layers.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError):
        saving.custom_object_scope(["not a dict"])


def test_custom_initializer_and_unknown_names_explained(tmp_path):
    class HalfInit(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return np.full(shape, 0.5, dtype=dtype or "float32")

        def get_config(self):
            return {}

    def act(x):
        return x * 3.0
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
        2, kernel_initializer=HalfInit(), activation=act)])
    path = tmp_path / "i.keras"
    model.save(path)
    with pytest.raises(FileFormatError, match="HalfInit.*register_keras_serializable"):
        keras.models.load_model(path, custom_objects={"act": act})
    with pytest.raises(FileFormatError, match="unknown activation 'act'.*custom_objects"):
        keras.models.load_model(path, custom_objects={"HalfInit": HalfInit})
    loaded = keras.models.load_model(path, custom_objects={"HalfInit": HalfInit, "act": act})
    assert isinstance(loaded.layers[0].kernel_initializer, HalfInit)
    assert loaded.layers[0].activation is act


def test_registered_loss_class_and_metric_function_without_custom_objects(tmp_path):
    @saving.register_keras_serializable(package="T")
    class AbsLoss(keras.losses.Loss):
        def call(self, y, p):
            return keras.ops.mean(keras.ops.abs(y - p), axis=-1)

    @saving.register_keras_serializable(package="T")
    def sq_metric(y, p):
        return keras.ops.mean(keras.ops.square(y - p), axis=-1)
    x, y = _data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=AbsLoss(), metrics=[sq_metric])
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "l.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0),
                               rtol=1e-6)
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    lam.compile(optimizer="sgd", loss=lambda a, b: keras.ops.mean(a - b))
    with pytest.raises(ValueError, match="not serializable"):
        lam.save(tmp_path / "lam.keras")
