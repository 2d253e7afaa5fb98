"""to_json / model_from_json, clone_model, Sequential / Model.from_config."""
import json

import numpy as np
import pytest

import axone as keras
from axone import saving


def _functional():
    i = keras.Input((4,), name="x")
    h = keras.layers.Dense(5, activation="relu")(i)
    o = keras.layers.Dense(2)(h)
    return keras.Model(i, o, name="fm")


def _x():
    return np.random.default_rng(3).normal(size=(6, 4)).astype("float32")


def test_to_json_round_trip_sequential_and_functional():
    for model in (keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), _functional()):
        js = model.to_json()
        spec = json.loads(js)
        assert spec["class_name"] in ("Sequential", "Functional") and "config" in spec
        back = keras.models.model_from_json(js)
        assert type(back) is type(model)
        assert [type(l) for l in back.layers] == [type(l) for l in model.layers]
        assert back.output_shape == model.output_shape
        assert model.to_json(indent=2).count("\n") > 3
    with pytest.raises(ValueError, match="not valid JSON"):
        keras.models.model_from_json("{nope")
    with pytest.raises(TypeError):
        keras.models.model_from_json(3)


def test_from_config():
    f = _functional()
    g = keras.Model.from_config(f.get_config())
    assert [l.name for l in g.layers] == [l.name for l in f.layers]
    s = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    t = keras.Sequential.from_config(s.get_config())
    assert t.layers[0].name == "d" and t.output_shape == (None, 3)
    with pytest.raises(ValueError, match="layers"):
        keras.Sequential.from_config({"name": "x"})


def test_clone_model_fresh_weights_same_architecture():
    x = _x()
    for model in (keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), _functional()):
        c = keras.models.clone_model(model)
        assert c is not model and c.output_shape == model.output_shape
        assert all(a.shape == b.shape for a, b in zip(c.get_weights(), model.get_weights()))
        assert not all(np.array_equal(a, b) for a, b in zip(c.get_weights(), model.get_weights()))
        c.set_weights(model.get_weights())
        np.testing.assert_allclose(c.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_clone_function_call_function_input_tensors():
    f = _functional()
    seen = []

    def clone_fn(layer):
        seen.append(layer.name)
        cfg = layer.get_config()
        if isinstance(layer, keras.layers.Dense):
            cfg["units"] = cfg["units"]
        return layer.__class__.from_config(cfg)

    calls = []

    def call_fn(layer, *args, **kwargs):
        calls.append(layer.name)
        return layer(*args, **kwargs)
    new_in = keras.Input((4,))
    c = keras.models.clone_model(f, input_tensors=new_in, clone_function=clone_fn,
                                 call_function=call_fn)
    assert c.inputs[0] is new_in
    assert len(seen) == 2 and len(calls) == 2
    with pytest.raises(ValueError, match="input"):
        keras.models.clone_model(f, input_tensors=[keras.Input((4,)), keras.Input((4,))])
    with pytest.raises(TypeError):
        keras.models.clone_model("model")


def test_clone_subclassed_via_from_config():
    @saving.register_keras_serializable(package="J")
    class Sub(keras.Model):
        def __init__(self, units=2, **kw):
            super().__init__(**kw)
            self.units = units
            self.d = keras.layers.Dense(units)

        def call(self, x):
            return self.d(x)

        def get_config(self):
            return {"units": self.units}
    m = Sub(3)
    m(_x())
    c = keras.models.clone_model(m)
    assert isinstance(c, Sub) and c.units == 3
    with pytest.raises(ValueError, match="only supported for Sequential"):
        keras.models.clone_model(m, clone_function=lambda l: l)


def test_save_model_load_model_functions(tmp_path):
    m = _functional()
    p = tmp_path / "a.keras"
    keras.models.save_model(m, p)
    saving.save_model(m, p)
    back = saving.load_model(p)
    np.testing.assert_allclose(back.predict(_x(), verbose=0), m.predict(_x(), verbose=0))
    w = tmp_path / "w.weights.h5"
    saving.save_weights(m, w)
    c = keras.models.clone_model(m)
    saving.load_weights(c, w)
    np.testing.assert_allclose(c.predict(_x(), verbose=0), m.predict(_x(), verbose=0))
    with pytest.raises(ValueError, match="overwrite=False"):
        saving.save_model(m, p, overwrite=False)


def test_clone_of_a_compiled_model_is_compiled_alike_with_fresh_state():
    """Keras 3: clone_model compiles the clone when the original was compiled (same losses and
    metrics, new metric objects, the optimizer's config with fresh state)."""
    import numpy as np
    import axone
    from axone import layers
    m = axone.Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")])
    auc = axone.metrics.AUC(name="auc")
    m.compile(optimizer=axone.optimizers.Adam(0.01, beta_1=0.8), loss="categorical_crossentropy",
              metrics=["accuracy", auc])
    x = np.random.default_rng(0).random((20, 4)).astype("float32")
    y = np.eye(3)[np.random.default_rng(1).integers(0, 3, 20)]
    m.fit(x, y, epochs=2, verbose=0)
    c = axone.models.clone_model(m)
    assert c.compiled and type(c.optimizer) is axone.optimizers.Adam
    assert c.optimizer is not m.optimizer and int(c.optimizer.iterations) == 0
    assert float(c.optimizer.learning_rate) == 0.01 and c.optimizer.beta_1 == 0.8
    assert c._metrics_spec[1] is not auc
    h = c.fit(x, y, epochs=1, verbose=0)
    assert sorted(h.history) == ["accuracy", "auc", "loss"]
    assert float(auc.result()) == float(m.get_metrics_result()["auc"])   # untouched
    # an uncompiled model clones uncompiled
    u = axone.Sequential([layers.Input((4,)), layers.Dense(3)])
    assert not getattr(axone.models.clone_model(u), "compiled", False)
