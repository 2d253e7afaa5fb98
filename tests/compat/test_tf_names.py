"""The tensorflow alias's names, keras.__version__, hasattr on unsupported names."""
import numpy as np
import pytest

from axone.compat import install_keras_alias, uninstall_keras_alias


@pytest.fixture
def tf():
    install_keras_alias()
    try:
        import tensorflow
        yield tensorflow
    finally:
        uninstall_keras_alias()


def test_keras_version_and_hasattr(tf):
    import keras
    import axone
    assert keras.__version__.startswith("3.") and keras.version() == keras.__version__
    assert tuple(int(p) for p in keras.__version__.split(".")[:2]) >= (3, 0)
    assert axone.__version__ != keras.__version__ or axone.__version__.startswith("3.")
    assert not hasattr(keras, "nosuch") and not hasattr(keras.layers, "NoSuchLayer")
    with pytest.raises(ImportError, match="NoSuchLayer"):
        from keras.layers import NoSuchLayer  # noqa: F401
    assert not hasattr(tf, "NoSuchTFName")
    with pytest.raises(AttributeError, match="tensorflow.NoSuchTFName is not supported by axone"):
        tf.NoSuchTFName


def test_course_sigmoid_derivative(tf):
    x = tf.linspace(-5., 5., 100)
    with tf.GradientTape() as t:
        t.watch(x)
        y = tf.nn.sigmoid(x)
    dy = t.gradient(y, x)
    s = 1 / (1 + np.exp(-np.linspace(-5, 5, 100)))
    np.testing.assert_allclose(dy.numpy(), s * (1 - s), rtol=1e-5, atol=1e-6)
    with tf.GradientTape() as t:
        t.watch(x)
        y = tf.exp(x)
    np.testing.assert_allclose(t.gradient(y, x).numpy(), np.exp(x.numpy()), rtol=1e-6)


def test_math_names_match_numpy(tf):
    a = np.random.default_rng(0).uniform(0.5, 2.0, size=(3, 4)).astype(np.float32)
    t = tf.constant(a)
    assert t.dtype == tf.float32 and tf.constant(1).dtype == tf.int32
    for name, ref in [("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("square", np.square),
                      ("sin", np.sin), ("cos", np.cos), ("tanh", np.tanh)]:
        np.testing.assert_allclose(getattr(tf.math, name)(t).numpy(), ref(a), rtol=1e-6)
    np.testing.assert_allclose(tf.reduce_sum(t, axis=1).numpy(), a.sum(1), rtol=1e-6)
    np.testing.assert_allclose(tf.reduce_mean(t).numpy(), a.mean(), rtol=1e-6)
    np.testing.assert_allclose(tf.math.reduce_max(t, axis=0).numpy(), a.max(0))
    np.testing.assert_allclose(tf.matmul(t, t, transpose_b=True).numpy(), a @ a.T, rtol=1e-5)
    np.testing.assert_array_equal(tf.shape(t).numpy(), [3, 4])
    assert tf.reshape(t, [4, 3]).shape == (4, 3)
    assert tf.concat([t, t], axis=0).shape == (6, 4) and tf.stack([t, t]).shape == (2, 3, 4)
    assert tf.cast(t, tf.float64).dtype == np.float64
    np.testing.assert_array_equal(tf.range(5).numpy(), np.arange(5))
    np.testing.assert_allclose(tf.nn.relu(tf.constant([-1.0, 2.0])).numpy(), [0, 2])
    np.testing.assert_allclose(tf.nn.softmax(t).numpy().sum(-1), np.ones(3), rtol=1e-6)
    assert tf.zeros((2, 3)).shape == (2, 3) and tf.ones([2]).dtype == tf.float32
    tf.random.set_seed(3)
    r1 = tf.random.normal((4,)).numpy()
    tf.random.set_seed(3)
    np.testing.assert_array_equal(r1, tf.random.normal((4,)).numpy())
    u = tf.random.uniform((100,), minval=2, maxval=3).numpy()
    assert u.min() >= 2 and u.max() <= 3
    assert isinstance(tf.__version__, str) and tf.__version__.startswith("2.")


def test_variable_and_tape(tf):
    v = tf.Variable(3.0)
    with tf.GradientTape() as t:
        y = v * v
    assert float(t.gradient(y, v)) == pytest.approx(6.0)
    assert f"{tf.reduce_mean(tf.constant([1.0, 2.0])):.2f}" == "1.50"


def test_variable_dtype_as_tensorflow(tf):
    # TensorFlow: the dtype argument is kept; without it a NumPy value keeps its own dtype,
    # a Python float is float32 and a Python int int32
    assert tf.Variable(np.ones(2), dtype="float64").dtype == np.float64
    assert tf.Variable(np.ones(2, np.float32), dtype=tf.float64).dtype == np.float64
    assert tf.Variable(np.ones(2)).dtype == np.float64
    assert tf.Variable(1.0).dtype == np.float32
    assert tf.Variable(3).dtype == np.int32


def test_function_decorator(tf):
    @tf.function
    def f(a):
        return a + 1

    @tf.function(jit_compile=True)
    def g(a):
        return a * 2
    assert f(1) == 2 and g(3) == 6


def test_dataset_batches_equal_slicing(tf):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 3)).astype(np.float32)
    y = np.arange(10)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).prefetch(tf.data.AUTOTUNE)
    assert len(ds) == 3 and int(ds.cardinality()) == 3
    for i, (bx, by) in enumerate(ds):
        np.testing.assert_array_equal(bx, x[4 * i:4 * i + 4])
        np.testing.assert_array_equal(by, y[4 * i:4 * i + 4])
    dsd = tf.data.Dataset.from_tensor_slices((x, y)).batch(4, drop_remainder=True)
    assert len(dsd) == 2 and len(list(dsd)) == 2
    sh = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(10, seed=0).batch(3)
    got = list(sh)
    ys = np.concatenate([b[1] for b in got])
    assert sorted(ys) == list(range(10))
    for bx, by in got:
        np.testing.assert_array_equal(bx, x[by])
    d = tf.data.Dataset.from_tensor_slices({"a": x, "b": y}).batch(5)
    first = next(iter(d))
    assert set(first) == {"a", "b"} and first["a"].shape == (5, 3)
    m = tf.data.Dataset.from_tensor_slices(x).batch(5).map(lambda a: a * 2).repeat(2).take(3)
    out = list(m)
    assert len(m) == 3 and len(out) == 3
    np.testing.assert_allclose(out[2], x[:5] * 2)
    assert [list(b) for b in tf.data.Dataset.range(5).batch(2)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="same first dimension"):
        tf.data.Dataset.from_tensor_slices((x, y[:3]))
    with pytest.raises(ValueError, match="batch_size"):
        ds.batch(0)
