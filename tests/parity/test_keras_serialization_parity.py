"""Serialization against Keras 3 (torch backend): the keras.saving registry, the dicts of
serialize_keras_object, Lambda outputs and shape inference, InputSpec errors, clone_model and
build configs agree with real Keras on the same inputs."""
import numpy as np
import pytest

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import saving as asaving
from axone.layers import InputSpec, Lambda

assert keras.backend.backend() == "torch", (
    "the Keras parity tests need KERAS_BACKEND=torch (set by tests/conftest.py)")


def _fn(x):
    return x * 3.0 - 1.0


@pytest.fixture(scope="module")
def registered():
    def twin_fn(x):
        return x + 1.0
    kf = keras.saving.register_keras_serializable("ParityPkg", "twin")(twin_fn)
    af = asaving.register_keras_serializable("ParityPkg", "twin")(twin_fn)
    yield af
    keras.saving.get_custom_objects().pop("ParityPkg>twin", None)
    asaving.get_custom_objects().pop("ParityPkg>twin", None)
    assert kf is af


def test_registry_matches_keras(registered):
    for lib in (keras.saving, asaving):
        assert lib.get_registered_name(registered) == "ParityPkg>twin"
        assert lib.get_registered_object("ParityPkg>twin") is registered
        assert lib.get_registered_name(_fn) == "_fn"
        with lib.custom_object_scope({"zz": _fn}):
            assert lib.get_registered_object("zz") is _fn
        assert lib.get_registered_object("zz") is None
    assert keras.saving.serialize_keras_object(registered) == \
        asaving.serialize_keras_object(registered)
    assert keras.saving.serialize_keras_object(_fn) == asaving.serialize_keras_object(_fn)
    for obj in ([1, (2, 3), {"a": "b"}], None, 2.5, "relu"):
        assert keras.saving.serialize_keras_object(obj) == asaving.serialize_keras_object(obj)


@pytest.mark.parametrize("make", [
    lambda m: m.regularizers.L2(0.25), lambda m: m.regularizers.L1L2(0.1, 0.2),
    lambda m: m.losses.MeanSquaredError(), lambda m: m.constraints.MaxNorm(2.0),
    lambda m: m.initializers.Zeros()])
def test_serialize_keras_object_dicts(make):
    k, a = keras.saving.serialize_keras_object(make(keras)), \
        asaving.serialize_keras_object(make(axone))
    for key in ("module", "class_name", "registered_name"):
        assert k[key] == a[key], key
    assert set(k["config"]) <= set(a["config"]) | {"seed"}
    back = asaving.deserialize_keras_object(k)       # Keras's dict read by axone
    assert type(back).__name__ == k["class_name"]


def test_lambda_forward_and_inferred_shape():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 3, 5)).astype("float32")
    kl = keras.layers.Lambda(lambda t: keras.ops.mean(t, axis=1) * 2.0)
    al = Lambda(lambda t: axone.ops.mean(t, axis=1) * 2.0)
    np.testing.assert_allclose(np.asarray(al(x).data),
                               keras.ops.convert_to_numpy(kl(x)), rtol=1e-5, atol=1e-6)
    assert kl.compute_output_shape((None, 3, 5)) == al.compute_output_shape((None, 3, 5))
    ki, ai = keras.Input((3, 5)), axone.Input((3, 5))
    assert tuple(kl(ki).shape) == tuple(al(ai).shape)
    ka = keras.layers.Lambda(_fn, output_shape=(5,), arguments={})
    aa = Lambda(_fn, output_shape=(5,), arguments={})
    assert ka.compute_output_shape((None, 3)) == aa.compute_output_shape((None, 3))


def test_lambda_gradient_matches_torch():
    import torch
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4))
    t = torch.tensor(x, requires_grad=True)
    (torch.tanh(t) * t).sum().backward()
    xa = axone.Tensor(x.copy(), requires_grad=True)
    layer = Lambda(lambda v: axone.ops.tanh(v) * v, dtype="float64")
    axone.ops.sum(layer(xa)).backward()
    np.testing.assert_allclose(xa.grad, t.grad.numpy(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("spec,shape,fragment", [
    (dict(ndim=3), (2, 4), "expected ndim=3, found ndim=2"),
    (dict(min_ndim=3), (2, 4), "expected min_ndim=3, found ndim=2"),
    (dict(max_ndim=2), (2, 4, 1), "expected max_ndim=2, found ndim=3"),
    (dict(axes={-1: 5}), (2, 4), "expected axis -1 of input shape to have value 5"),
])
def test_inputspec_errors_as_keras(spec, shape, fragment):
    from keras.src.layers.input_spec import assert_input_compatibility as kcheck

    from axone.layers.input_spec import assert_input_compatibility as acheck
    x = np.zeros(shape, "float32")
    with pytest.raises(ValueError) as ke:
        kcheck(keras.InputSpec(**spec), x, "lay")
    with pytest.raises(ValueError) as ae:
        acheck(InputSpec(**spec), x, "lay")
    assert fragment in str(ke.value) and fragment in str(ae.value)
    assert str(ke.value).split("Full shape")[0].replace("(2, 4)", "") == \
        str(ae.value).split("Full shape")[0].replace("(2, 4)", "")
    assert InputSpec(**spec).get_config() == keras.InputSpec(**spec).get_config()


def test_clone_model_and_build_config_as_keras():
    def build(m):
        i = m.Input((6,))
        o = m.layers.Dense(3, activation="relu")(m.layers.Dense(4)(i))
        return m.Model(i, o)
    km, am = build(keras), build(axone)
    kc, ac = keras.models.clone_model(km), axone.models.clone_model(am)
    assert [type(l).__name__ for l in kc.layers] == [type(l).__name__ for l in ac.layers]
    assert [tuple(w.shape) for w in kc.weights] == [tuple(w.shape) for w in ac.weights]
    kd, ad = km.layers[1], am.layers[1]
    assert kd.get_build_config() == ad.get_build_config()
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    ac.set_weights([keras.ops.convert_to_numpy(w) for w in km.weights])
    np.testing.assert_allclose(ac.predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
