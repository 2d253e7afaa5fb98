"""Lambda (shape inference, arguments, saving by registered name) and InputSpec checks."""
import numpy as np
import pytest

import axone as keras
from axone import saving
from axone.fileio import FileFormatError
from axone.layers import InputSpec, Lambda


@saving.register_keras_serializable(package="L")
def square_plus(x, c=0.0):
    return x * x + c


def named_half(x):
    return x * 0.5


def test_lambda_sequential_and_functional_shapes():
    x = np.random.default_rng(1).normal(size=(5, 3, 4)).astype("float32")
    m = keras.Sequential([keras.Input((3, 4)), Lambda(lambda t: keras.ops.sum(t, axis=1))])
    assert m.output_shape == (None, 4)
    np.testing.assert_allclose(m.predict(x, verbose=0), x.sum(axis=1), rtol=1e-6)
    i = keras.Input((3, 4))
    o = Lambda(square_plus, arguments={"c": 1.0})(i)
    assert o.shape == (None, 3, 4)
    f = keras.Model(i, o)
    np.testing.assert_allclose(f.predict(x, verbose=0), x * x + 1.0, rtol=1e-6)
    assert Lambda(named_half, output_shape=(7,)).compute_output_shape((None, 2)) == (None, 7)


def test_lambda_gradient_flows():
    lam = Lambda(square_plus)
    x = keras.Tensor(np.array([[1.0, -2.0]]), requires_grad=True)
    keras.ops.sum(lam(x)).backward()
    np.testing.assert_allclose(x.grad, [[2.0, -4.0]])


def test_lambda_save_by_registered_name(tmp_path):
    x = np.ones((2, 3), "float32")
    m = keras.Sequential([keras.Input((3,)), Lambda(square_plus, arguments={"c": 2.0}),
                          Lambda(named_half)])
    path = tmp_path / "lam.keras"
    m.save(path)
    with pytest.raises(FileFormatError, match="named_half"):
        keras.models.load_model(path)
    loaded = keras.models.load_model(path, custom_objects={"named_half": named_half})
    np.testing.assert_allclose(loaded.predict(x, verbose=0), (x * x + 2.0) * 0.5)


def test_lambda_unregistered_lambda_refused_at_save(tmp_path):
    m = keras.Sequential([keras.Input((3,)), Lambda(lambda t: t + 1)])
    with pytest.raises(ValueError, match="function is not serializable: .*register_keras_serializable"):
        m.save(tmp_path / "x.keras")
    k = 3.0
    with pytest.raises(ValueError, match="closure"):
        Lambda(lambda_closure(k)).get_config()
    with pytest.raises(ValueError, match="never executes code"):
        Lambda.from_config({"name": "l", "function": {"class_name": "__lambda__", "config": {}}},
                           safe_mode=False)
    with pytest.raises(TypeError, match="callable"):
        Lambda(3)


def lambda_closure(k):
    def f(x):
        return x * k
    return f


def test_inputspec_checks_and_messages():
    class L(keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.input_spec = InputSpec(ndim=3, axes={-1: 4})

        def call(self, x):
            return x
    layer = L(name="specced")
    with pytest.raises(ValueError, match=r"Input 0 .*'specced'.*expected ndim=3, found ndim=2"):
        layer(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 4"):
        layer(np.zeros((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match="expected ndim=3"):
        layer(keras.Input((4,)))
    layer(np.zeros((2, 3, 4), "float32"))
    s = InputSpec(shape=(None, 2), dtype="float32")
    assert s.ndim == 2 and "shape=(None, 2)" in repr(s)
    assert InputSpec.from_config(s.get_config()).shape == (None, 2)
    with pytest.raises(TypeError, match="axes"):
        InputSpec(axes={"a": 1})
    with pytest.raises(ValueError, match="greater than the maximum"):
        InputSpec(ndim=2, axes={3: 1})
    from axone.layers.input_spec import assert_input_compatibility
    with pytest.raises(ValueError, match="expected dtype=float32, found dtype=int64"):
        assert_input_compatibility(s, np.zeros((1, 2), "int64"), "x")
    with pytest.raises(ValueError, match=r"expects 2 input\(s\)"):
        assert_input_compatibility([s, s], [np.zeros((1, 2))], "x")


def test_build_config_and_compute_output_spec():
    d = keras.layers.Dense(3)
    d(keras.Input((5,)))
    cfg = d.get_build_config()
    assert cfg == {"input_shape": (None, 5)}
    d2 = keras.layers.Dense.from_config(d.get_config())
    d2.build_from_config({"input_shape": [None, 5]})
    assert d2.built and d2.kernel.shape == (5, 3)
    out = keras.layers.Dense(4).compute_output_spec(keras.KerasTensor((None, 2)))
    assert isinstance(out, keras.KerasTensor) and out.shape == (None, 4)
