"""axone/ops/image_color.py (rgb_to_grayscale, rgb_to_hsv, hsv_to_rgb) against Keras 3 on its
PyTorch backend: values for both data formats, single images and batches, gradients against
torch autograd through Keras's ops, float64 finite differences, and bad input."""
import numpy as np
import pytest
import torch

import keras

from axone import Tensor
from axone.ops import image_color as IC
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"

NAMES = ("rgb_to_grayscale", "rgb_to_hsv", "hsv_to_rgb")


def _images(shape, fmt, seed=0, dtype="float32"):
    x = np.random.default_rng(seed).random(shape).astype(dtype)
    if fmt == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, -3))
    return x


def _special(x):
    """Ties, greys, zeros, tiny values and the hue wrap-around."""
    flat = x.reshape(-1, 3) if x.shape[-1] == 3 else None
    if flat is not None:
        flat[0] = (0.0, 0.0, 0.0)
        flat[1] = (0.5, 0.5, 0.5)
        flat[2] = (1.0, 0.2, 0.6)      # red maximum, hue < 0 before the wrap
        flat[3] = (0.3, 0.3, 0.9)      # tie of the two smaller channels
        flat[4] = (0.7, 0.7, 0.1)      # tie of the maximum (R and G)
        flat[5] = (1e-9, 0.4, 0.2)     # below eps: read as 0
    return x


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape", [(2, 5, 6, 3), (5, 6, 3)])
@pytest.mark.parametrize("name", NAMES)
def test_values_match_keras(name, shape, fmt):
    x = _images(shape, "channels_last")
    _special(x)
    if fmt == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, -3))
    ref = keras.ops.convert_to_numpy(getattr(keras.ops.image, name)(x, data_format=fmt))
    out = getattr(IC, name)(x, data_format=fmt)
    assert isinstance(out, Tensor)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    np.testing.assert_allclose(out.data, ref, rtol=1e-6, atol=1e-6)


def test_hsv_round_trip_and_hue_range():
    x = _images((3, 7, 7, 3), "channels_last", seed=1)
    hsv = IC.rgb_to_hsv(x).data
    assert hsv.min() >= 0 and hsv.max() <= 1
    np.testing.assert_allclose(IC.hsv_to_rgb(hsv).data, x, atol=1e-5)
    # pure red, green, blue: hue 0, 1/3, 2/3
    prim = np.eye(3, dtype="float32").reshape(1, 3, 3)
    np.testing.assert_allclose(IC.rgb_to_hsv(prim).data[0, :, 0], [0, 1 / 3, 2 / 3], atol=1e-6)


def test_grayscale_dtypes_and_one_channel():
    xu = (np.random.default_rng(2).random((4, 4, 3)) * 255).astype("uint8")
    ref = keras.ops.convert_to_numpy(keras.ops.image.rgb_to_grayscale(xu))
    out = IC.rgb_to_grayscale(xu)
    assert out.dtype == np.uint8 and ref.dtype == np.uint8
    np.testing.assert_array_equal(out.data, ref)
    one = _images((2, 4, 4, 1), "channels_last")
    np.testing.assert_array_equal(IC.rgb_to_grayscale(one).data, one)
    x64 = _images((4, 4, 3), "channels_last", dtype="float64")
    assert IC.rgb_to_hsv(x64).dtype == np.float64
    assert IC.hsv_to_rgb(x64).dtype == np.float64


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_torch_through_keras(name, fmt):
    x = _images((2, 4, 5, 3), fmt, seed=3)
    w = np.random.default_rng(4).standard_normal(getattr(IC, name)(x, data_format=fmt).shape)
    xt = torch.tensor(x, requires_grad=True)
    y = getattr(keras.ops.image, name)(xt, data_format=fmt)
    (y * torch.tensor(w, dtype=torch.float32)).sum().backward()
    t = Tensor(x, requires_grad=True)
    (getattr(IC, name)(t, data_format=fmt) * Tensor(w.astype("float32"))).sum().backward()
    np.testing.assert_allclose(t.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
@pytest.mark.parametrize("name", NAMES)
def test_finite_differences_float64(name, fmt):
    # values away from ties and from the clip corners of hsv_to_rgb, where the ops are smooth
    x = 0.05 + 0.9 * _images((2, 3, 4, 3), fmt, seed=5, dtype="float64")
    r = check_gradients(lambda t: getattr(IC, name)(t, data_format=fmt), x)
    assert r.max_error < 1e-6, r


def test_gradient_check_can_fail():
    """The finite-difference check catches a wrong backward (guards the tests above)."""
    class Wrong(IC.RGBToGrayscale):
        def backward(self, g):
            return (2 * super().backward(g)[0],)

    x = _images((3, 3, 3), "channels_last", dtype="float64")
    r = check_gradients(lambda t: Wrong.apply(t, axis=2, channels=3), x)
    assert r.max_error > 1e-2


@pytest.mark.parametrize("name", NAMES)
def test_bad_input(name):
    fn = getattr(IC, name)
    with pytest.raises(ValueError, match="rank"):
        fn(np.zeros((4, 3), "float32"))
    with pytest.raises(ValueError, match="data_format"):
        fn(np.zeros((4, 4, 3), "float32"), data_format="channels_middle")
    with pytest.raises(ValueError, match="channel"):
        fn(np.zeros((4, 4, 2), "float32"))
    with pytest.raises(TypeError):
        fn(np.array([["a"]]))


@pytest.mark.parametrize("name", ["rgb_to_hsv", "hsv_to_rgb"])
def test_hsv_needs_float(name):
    with pytest.raises(ValueError, match="float"):
        getattr(IC, name)(np.zeros((4, 4, 3), "uint8"))
