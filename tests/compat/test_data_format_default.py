"""keras.config.set_image_data_format changes the default of the layers and helpers that take
data_format=None, as in Keras 3."""
import numpy as np
import pytest

import axone
from axone import config, layers


@pytest.fixture
def channels_first():
    config.set_image_data_format("channels_first")
    try:
        yield
    finally:
        config.set_image_data_format("channels_last")


@pytest.mark.parametrize("make, shape, out", [
    (lambda: layers.ZeroPadding2D(1), (2, 3, 4, 5), (2, 3, 6, 7)),
    (lambda: layers.Cropping2D(1), (2, 3, 4, 5), (2, 3, 2, 3)),
    (lambda: layers.UpSampling2D(2), (2, 3, 4, 5), (2, 3, 8, 10)),
    (lambda: layers.ZeroPadding3D(1), (2, 3, 4, 5, 6), (2, 3, 6, 7, 8)),
])
def test_reshaping_layers_follow_the_global_format(channels_first, make, shape, out):
    layer = make()
    assert layer.get_config()["data_format"] == "channels_first"
    assert layer(np.zeros(shape, "float32")).shape == out


def test_spatial_dropout_and_geometric_layers_follow_it(channels_first):
    assert layers.SpatialDropout2D(0.5).data_format == "channels_first"
    assert layers.RandomShear(0.1).data_format == "channels_first"


def test_a_channels_last_only_layer_refuses_a_channels_first_default(channels_first):
    with pytest.raises(NotImplementedError, match="image_data_format"):
        layers.RandomBrightness(0.1)
    assert layers.RandomBrightness(0.1, data_format="channels_last").data_format == "channels_last"


def test_image_helpers_follow_it(channels_first):
    img = axone.utils.array_to_img(np.zeros((3, 4, 5), "float32"))
    assert img.size == (5, 4)                       # (width, height) of a CHW array
    from axone.applications import imagenet_utils
    x = imagenet_utils.preprocess_input(np.zeros((1, 3, 2, 2), "float32"),
                                                           mode="caffe")
    assert x.shape == (1, 3, 2, 2)


def test_default_back_to_channels_last():
    assert config.image_data_format() == "channels_last"
    assert layers.ZeroPadding2D(1)(np.zeros((2, 4, 5, 3), "float32")).shape == (2, 6, 7, 3)
