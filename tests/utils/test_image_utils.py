"""load_img / img_to_array / array_to_img / save_img on small PNGs made here (Pillow needed),
and the install hint without Pillow."""
import builtins
import io
import warnings

import numpy as np
import pytest

from axone.compat import install_keras_alias, uninstall_keras_alias
from axone.fileio import FileFormatError
from axone.utils import array_to_img, img_to_array, load_img, save_img

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 8, 3)).astype("uint8")


@pytest.fixture
def png(tmp_path, rgb):
    path = tmp_path / "img.png"
    Image.fromarray(rgb, "RGB").save(path)
    return path


def test_load_and_convert_round_trip(png, rgb):
    img = load_img(png)
    assert img.mode == "RGB" and img.size == (8, 6)
    x = img_to_array(img)
    assert x.dtype == np.float32 and x.shape == (6, 8, 3)
    np.testing.assert_array_equal(x, rgb)
    assert img_to_array(img, data_format="channels_first").shape == (3, 6, 8)
    assert img_to_array(img, dtype="uint8").dtype == np.uint8
    np.testing.assert_array_equal(load_img(str(png)), rgb)
    np.testing.assert_array_equal(load_img(io.BytesIO(png.read_bytes())), rgb)


def test_color_modes(png, rgb):
    assert img_to_array(load_img(png, color_mode="grayscale")).shape == (6, 8, 1)
    g = img_to_array(load_img(png, color_mode="grayscale"), data_format="channels_first")
    assert g.shape == (1, 6, 8)
    rgba = img_to_array(load_img(png, color_mode="rgba"))
    assert rgba.shape == (6, 8, 4) and np.all(rgba[..., 3] == 255)


def test_target_size_and_interpolation(png, rgb):
    img = load_img(png, target_size=(3, 4))
    assert img.size == (4, 3)
    want = Image.fromarray(rgb).resize((4, 3), Image.Resampling.NEAREST)
    np.testing.assert_array_equal(img, want)
    bil = load_img(png, target_size=(3, 4), interpolation="bilinear")
    np.testing.assert_array_equal(bil, Image.fromarray(rgb).resize((4, 3), Image.Resampling.BILINEAR))


def test_keep_aspect_ratio_crops_the_centre(png, rgb):
    img = load_img(png, target_size=(6, 6), keep_aspect_ratio=True)
    np.testing.assert_array_equal(img, rgb[:, 1:7])          # the centred 6×6 box, unscaled


def test_array_to_img_scales_and_picks_the_mode():
    x = np.linspace(-1, 1, 4 * 5 * 3).reshape(4, 5, 3)
    img = array_to_img(x)
    assert img.mode == "RGB" and img.size == (5, 4)
    a = np.asarray(img)
    assert a.min() == 0 and a.max() == 255
    np.testing.assert_array_equal(a, ((x + 1) / 2 * 255).astype("float32").astype("uint8"))
    assert array_to_img(np.zeros((2, 2, 4))).mode == "RGBA"
    assert array_to_img(np.zeros((2, 2, 1))).mode == "L"
    assert array_to_img(np.full((2, 2, 1), 1000.0), scale=False).mode == "I"
    assert array_to_img(np.zeros((3, 2, 2)), data_format="channels_first").size == (2, 2)


def test_save_img_round_trip(tmp_path, rgb):
    path = tmp_path / "out.png"
    save_img(path, rgb.astype("float32"), scale=False)
    np.testing.assert_array_equal(load_img(path), rgb)
    jpg = tmp_path / "out.jpg"
    with pytest.warns(UserWarning, match="RGBA"):
        save_img(jpg, np.zeros((4, 4, 4)))
    assert load_img(jpg).size == (4, 4)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: array_to_img(np.zeros((4, 4))), ValueError, "rank 3"),
    (lambda: array_to_img(np.zeros((4, 4, 2))), ValueError, "channels"),
    (lambda: array_to_img(np.zeros((4, 4, 3)), data_format="nhwc"), ValueError, "data_format"),
    (lambda: img_to_array(np.zeros((2, 2, 2, 2))), ValueError, "rank 2 or 3"),
    (lambda: load_img(3), TypeError, "path"),
    (lambda: load_img("x.png", color_mode="cmyk"), ValueError, "color_mode"),
    (lambda: load_img("x.png", target_size=(3,)), ValueError, "target_size"),
    (lambda: load_img("x.png", target_size=(3, 3), interpolation="cubic"), ValueError, "interpolation"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_missing_or_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_img(tmp_path / "none.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(FileFormatError, match="not an image"):
        load_img(bad)
    with pytest.raises(FileFormatError):
        load_img(tmp_path)                                   # a folder


def test_without_pillow_the_error_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(ImportError, match="pip install pillow"):
        array_to_img(np.zeros((2, 2, 3)))
    with pytest.raises(ImportError, match="pip install pillow"):
        load_img(io.BytesIO(b""))


def test_reached_through_keras_preprocessing_image(png):
    install_keras_alias()
    try:
        from keras.preprocessing import image
        from keras.preprocessing.image import load_img as kl
        import keras
        assert kl is load_img is keras.utils.load_img
        assert image.img_to_array is img_to_array and image.save_img is save_img
        assert keras.preprocessing.sequence.pad_sequences is keras.utils.pad_sequences
        assert keras.utils.timeseries_dataset_from_array is keras.preprocessing.timeseries_dataset_from_array
    finally:
        uninstall_keras_alias()


@pytest.mark.parametrize("kw", [dict(), dict(color_mode="grayscale"), dict(color_mode="rgba"),
                                dict(target_size=(5, 3), interpolation="bicubic"),
                                dict(target_size=(4, 4), keep_aspect_ratio=True, interpolation="box"),
                                dict(target_size=(2, 7), keep_aspect_ratio=True)])
def test_same_pixels_as_keras(png, kw):
    from ._keras import keras_utils
    keras_utils()
    from keras.src.utils import image_utils as k
    np.testing.assert_array_equal(img_to_array(load_img(png, **kw)), k.img_to_array(k.load_img(png, **kw)))
    x = np.random.default_rng(2).normal(size=(3, 4, 3))
    np.testing.assert_array_equal(np.asarray(array_to_img(x)), np.asarray(k.array_to_img(x)))
