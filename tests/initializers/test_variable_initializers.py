"""keras.Variable through axone: initializer by name, object, callable or value, as Keras 3."""
import numpy as np
import pytest

import axone
import axone.initializers as I


@pytest.mark.parametrize("init", ["uniform", "zeros", "glorot_uniform", "ones", I.Ones(),
                                  I.RandomNormal(stddev=0.1, seed=2),
                                  lambda shape, dtype=None: np.full(shape, 2.0, dtype)])
def test_initializer_forms(init):
    v = axone.Variable(shape=(3, 2), initializer=init, name="w")
    assert v.shape == (3, 2) and v.dtype == np.float32 and v.name == "w" and v.path == "w"
    assert v.trainable and isinstance(v.numpy(), np.ndarray) and v.value.shape == (3, 2)
    if init == "uniform":
        assert np.abs(v.numpy()).max() <= 0.05
    if init == "zeros":
        np.testing.assert_array_equal(v.numpy(), 0)


def test_values_assign_and_arithmetic():
    v = axone.Variable(np.array([1.0, 2.0]), trainable=False, name="b")
    assert v.dtype == np.float32 and not v.trainable
    v.assign([3.0, 4.0])
    v.assign_add(np.ones(2))
    v.assign_sub(axone.Tensor(np.full(2, 0.5, np.float32)))
    np.testing.assert_array_equal(v.numpy(), [3.5, 4.5])
    np.testing.assert_array_equal((v * 2 + 1).data, [8.0, 10.0])
    assert axone.Variable(3, trainable=False).dtype == np.int32
    assert axone.Variable(np.array([1, 2]), trainable=False).dtype == np.int64


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        axone.Variable("uniform")
    with pytest.raises(ValueError, match="Unknown initializer"):
        axone.Variable("nope", shape=(2,))
    with pytest.raises(ValueError, match="shape"):
        axone.Variable(np.ones(3), shape=(2,))
    with pytest.raises(ValueError, match="name"):
        axone.Variable(np.ones(2), name="a/b")
    with pytest.raises(ValueError, match="aggregation"):
        axone.Variable(np.ones(2), aggregation="max")
    with pytest.raises(ValueError, match="shape"):
        axone.Variable(np.ones(2)).assign(np.ones(3))
