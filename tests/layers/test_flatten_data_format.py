import numpy as np
import pytest

from axone.layers import Flatten


@pytest.mark.parametrize("data_format", [None, "channels_last", "channels_first"])
def test_flatten_matches_keras(data_format):
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype("float32")
    ours = np.asarray(Flatten(data_format=data_format)(x))
    ref = keras.ops.convert_to_numpy(keras.layers.Flatten(data_format=data_format)(x))
    np.testing.assert_array_equal(ours, ref)
    assert Flatten(data_format=data_format).get_config()["data_format"] == \
        keras.layers.Flatten(data_format=data_format).get_config()["data_format"]


def test_flatten_channels_first_moves_channels_last():
    x = np.arange(24, dtype="float32").reshape(1, 2, 3, 4)
    out = np.asarray(Flatten(data_format="channels_first")(x))
    np.testing.assert_array_equal(out, x.transpose(0, 2, 3, 1).reshape(1, -1))


def test_flatten_bad_data_format():
    with pytest.raises(ValueError, match="data_format"):
        Flatten(data_format="nchw")
