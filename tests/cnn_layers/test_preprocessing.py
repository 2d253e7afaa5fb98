"""Rescaling, Resizing, CenterCrop and the Random* augmentation layers against Keras 3,
in training and at inference, with seeds, in models, and with bad arguments."""
import json

import numpy as np
import pytest

import axone
from axone import layers
from axone.layers.preprocessing import affine_transform
from axone.utils import check_gradients, set_random_seed

keras = pytest.importorskip("keras")

rng = np.random.default_rng(2)


def _k(y):
    return np.asarray(y.detach() if hasattr(y, "detach") else y)


# ---------------------------------------------------------------- deterministic
@pytest.mark.parametrize("kw", [{"scale": 1 / 255}, {"scale": 1 / 127.5, "offset": -1},
                                {"scale": [0.5, 2.0, -1.0], "offset": [1.0, 0.0, 3.0]}])
def test_rescaling_matches_keras(images, kw):
    np.testing.assert_allclose(layers.Rescaling(**kw)(images).data, _k(keras.layers.Rescaling(**kw)(images)),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [(4, 5), (9, 12), (18, 7), (1, 1), (13, 25)])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic"])
def test_resizing_matches_keras(images, size, interpolation):
    ky = _k(keras.layers.Resizing(*size, interpolation=interpolation)(images))
    ay = layers.Resizing(*size, interpolation=interpolation)(images)
    assert ay.shape == ky.shape
    np.testing.assert_allclose(ay.data, ky, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("size", [(5, 5), (4, 9), (12, 3), (9, 12)])
@pytest.mark.parametrize("mode", ["crop_to_aspect_ratio", "pad_to_aspect_ratio"])
def test_resizing_aspect_ratio_matches_keras(images, size, mode):
    kw = {mode: True, "fill_value": 0.5} if mode.startswith("pad") else {mode: True}
    ky = _k(keras.layers.Resizing(*size, **kw)(images))
    np.testing.assert_allclose(layers.Resizing(*size, **kw)(images).data, ky, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("size", [(5, 7), (9, 12), (1, 12), (20, 7), (4, 30)])
def test_center_crop_matches_keras(images, size):
    ky = _k(keras.layers.CenterCrop(*size)(images))
    np.testing.assert_allclose(layers.CenterCrop(*size)(images).data, ky, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(layers.CenterCrop(*size)(images[0]).data, ky[0], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("make", [
    lambda: layers.Rescaling(0.5, offset=[1.0, -1.0], dtype="float64"),
    lambda: layers.Resizing(3, 7, dtype="float64"),
    lambda: layers.Resizing(6, 2, interpolation="bicubic", dtype="float64"),
    lambda: layers.Resizing(3, 3, crop_to_aspect_ratio=True, dtype="float64"),
    lambda: layers.CenterCrop(2, 3, dtype="float64"),
    lambda: layers.CenterCrop(6, 3, dtype="float64"),
])
def test_deterministic_layers_are_differentiable(make):
    layer = make()
    x = rng.standard_normal((2, 4, 5, 2))
    r = check_gradients(lambda t: layer(t), x)
    assert r.max_error < 1e-7, r


def test_differentiable_augmentations_gradients(float64):
    x = rng.random((3, 4, 5, 2))
    for layer in [layers.RandomFlip(seed=0), layers.RandomBrightness(0.2, value_range=(-5, 5), seed=0),
                  layers.RandomContrast(0.4, value_range=(-5, 5), seed=0), layers.RandomCrop(3, 3, seed=0)]:
        state = layer._generator.bit_generator.state
        def fn(t):
            layer._generator.bit_generator.state = state          # the same draw every evaluation
            return layer(t, training=True)
        r = check_gradients(fn, x)
        assert r.max_error < 1e-7, (layer.name, r)


# ------------------------------------------------------------------ warping
@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_transform_matches_keras(fill_mode, interpolation):
    x = rng.random((3, 7, 10, 2)).astype(np.float32)
    # generic coefficients: no sampling point falls on a rounding tie of "nearest"
    m = np.array([[0.913, -0.407, 1.329, 0.407, 0.913, -2.087, 0, 0],
                  [1.311, 0.0, -2.537, 0.0, 0.723, 1.813, 0, 0],
                  [1.0, 0.0, -4.631, 0.0, 1.0, 3.289, 0, 0]], dtype=np.float32)
    ky = _k(keras.ops.image.affine_transform(x, m, interpolation=interpolation, fill_mode=fill_mode,
                                             fill_value=0.25))
    np.testing.assert_allclose(affine_transform(x, m, interpolation, fill_mode, 0.25), ky, atol=1e-5)


# fixed-factor ranges make Keras deterministic, so the geometry can be compared exactly
FIXED = [
    ("RandomRotation", {"factor": (0.1, 0.1)}),
    ("RandomRotation", {"factor": (-0.3, -0.3), "fill_mode": "constant", "fill_value": 7.0,
                        "interpolation": "nearest"}),
    ("RandomRotation", {"factor": (0.25, 0.25), "fill_mode": "wrap"}),
    ("RandomZoom", {"height_factor": (0.3, 0.3), "width_factor": (-0.2, -0.2), "fill_mode": "wrap"}),
    ("RandomZoom", {"height_factor": (-0.4, -0.4)}),
    ("RandomZoom", {"height_factor": (0.5, 0.5), "fill_mode": "constant", "interpolation": "nearest"}),
    ("RandomTranslation", {"height_factor": (0.2, 0.2), "width_factor": (-0.15, -0.15),
                           "fill_mode": "nearest"}),
    ("RandomTranslation", {"height_factor": (-0.3, -0.3), "width_factor": (0.4, 0.4)}),
    ("RandomBrightness", {"factor": (0.1, 0.1)}),
    ("RandomBrightness", {"factor": (-0.5, -0.5), "value_range": (0, 1)}),
]


@pytest.mark.parametrize("cls, kw", FIXED)
def test_fixed_augmentation_matches_keras(images, cls, kw):
    k, a = getattr(keras.layers, cls)(**kw), getattr(layers, cls)(**kw)
    for x in (images, images[0]):
        ky = _k(k(x, training=True))
        ay = a(x, training=True)
        assert ay.shape == ky.shape
        np.testing.assert_allclose(ay.data, ky, atol=1e-3)


# ------------------------------------------------------ random layers: contract
RANDOM = [
    ("RandomFlip", {}),
    ("RandomFlip", {"mode": "horizontal"}),
    ("RandomFlip", {"mode": "vertical"}),
    ("RandomRotation", {"factor": 0.2}),
    ("RandomRotation", {"factor": (-0.2, 0.3), "fill_mode": "constant"}),
    ("RandomZoom", {"height_factor": (0.2, 0.3)}),
    ("RandomZoom", {"height_factor": (-0.3, 0.2), "width_factor": 0.2, "fill_mode": "nearest"}),
    ("RandomTranslation", {"height_factor": 0.2, "width_factor": 0.3}),
    ("RandomBrightness", {"factor": 0.3}),
    ("RandomContrast", {"factor": 0.5}),
    ("RandomCrop", {"height": 6, "width": 8}),
]


@pytest.mark.parametrize("cls, kw", RANDOM)
def test_random_layer_contract(images, cls, kw):
    layer = getattr(layers, cls)(**kw)
    # identity at inference (RandomCrop: the centred resize, whose shape is the target)
    y0 = layer(images, training=False)
    if cls == "RandomCrop":
        ref = _k(keras.layers.Resizing(6, 8, crop_to_aspect_ratio=True)(images))
        np.testing.assert_allclose(y0.data, ref, rtol=1e-5, atol=1e-3)
    else:
        np.testing.assert_array_equal(y0.data, images)
    # changes the input while training
    set_random_seed(0)
    y1 = layer(images, training=True)
    assert y1.shape == layer.compute_output_shape(images.shape)
    assert y1.data.dtype == np.float32
    if cls != "RandomCrop":
        assert not np.array_equal(y1.data, images)
    # the same global seed gives the same augmented batch; another draw differs
    set_random_seed(0)
    np.testing.assert_array_equal(layer(images, training=True).data, y1.data)
    differs = [not np.array_equal(layer(images, training=True).data, y1.data) for _ in range(4)]
    assert any(differs)
    # a layer seed gives a repeatable sequence, whatever the global generator does
    a, b = getattr(layers, cls)(seed=7, **kw), getattr(layers, cls)(seed=7, **kw)
    ya = a(images, training=True)
    set_random_seed(123)
    np.testing.assert_array_equal(b(images, training=True).data, ya.data)
    # one image in, one image out
    single = layer(images[0], training=True)
    assert single.shape == layer.compute_output_shape(images[0].shape)
    # a direct call without `training` augments, as Keras's augmentation layers do
    set_random_seed(0)
    np.testing.assert_array_equal(layer(images).data, y1.data)


@pytest.mark.parametrize("mode, flip", [("horizontal", lambda x: x[:, ::-1]),
                                        ("vertical", lambda x: x[::-1]),
                                        ("horizontal_and_vertical", lambda x: x[::-1, ::-1])])
def test_random_flip_flips_or_not(mode, flip):
    x = rng.random((64, 5, 6, 2)).astype(np.float32)
    set_random_seed(3)
    y = layers.RandomFlip(mode)(x, training=True).data
    flipped = [np.array_equal(yi, flip(xi)) for xi, yi in zip(x, y)]
    kept = [np.array_equal(yi, xi) for xi, yi in zip(x, y)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 16 < sum(flipped) < 48                      # about half of the images are flipped
    hx = layers.RandomFlip("horizontal")(x, training=True).data
    assert all(np.array_equal(h, xi) or np.array_equal(h, xi[:, ::-1]) for h, xi in zip(hx, x))
    np.testing.assert_array_equal(layers.RandomFlip(mode)(x, training=False).data, x)


def test_random_rotation_statistics_and_angle_range():
    x = np.zeros((1, 21, 21, 1), np.float32)
    x[0, 10, 15, 0] = 1.0                              # a dot right of the centre
    layer = layers.RandomRotation((0.25, 0.25), interpolation="nearest", fill_mode="constant")
    y = layer(x, training=True).data[0, ..., 0]
    assert y.sum() == 1.0
    assert np.argwhere(y).tolist() in ([[5, 10]], [[15, 10]])   # moved by a quarter turn
    k = _k(keras.layers.RandomRotation((0.25, 0.25), interpolation="nearest", fill_mode="constant")(
        x, training=True))[0, ..., 0]
    np.testing.assert_array_equal(y, k)


def test_random_zoom_and_translation_preserve_constant_images():
    x = np.full((3, 8, 8, 2), 5.0, np.float32)
    for layer in [layers.RandomZoom(0.5), layers.RandomTranslation(0.4, 0.4), layers.RandomRotation(0.5)]:
        np.testing.assert_allclose(layer(x, training=True).data, x, atol=1e-5)


def test_random_brightness_shifts_within_range_and_clips():
    x = rng.random((200, 4, 4, 3)).astype(np.float32) * 100 + 50    # within [50, 150]
    set_random_seed(1)
    y = layers.RandomBrightness(0.1)(x, training=True).data          # deltas in [-25.5, 25.5]
    d = (y - x).reshape(200, -1)
    np.testing.assert_allclose(d, d[:, :1] * np.ones_like(d), atol=1e-4)   # one delta per image
    assert d.min() >= -25.5 - 1e-3 and d.max() <= 25.5 + 1e-3
    assert d[:, 0].min() < -15 and d[:, 0].max() > 15
    z = layers.RandomBrightness((0.9, 0.9))(x, training=True).data
    np.testing.assert_array_equal(z, np.full_like(x, 255.0))          # clipped at the top


def test_random_contrast_statistics():
    x = rng.random((300, 6, 6, 3)).astype(np.float32)
    set_random_seed(5)
    y = layers.RandomContrast(0.4, value_range=(-100, 100))(x, training=True).data
    np.testing.assert_allclose(y.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=1e-5)  # means kept
    ratio = y.std(axis=(1, 2)) / x.std(axis=(1, 2))
    assert np.allclose(ratio, ratio[:, :1], atol=1e-4)                # one factor per image
    assert 0.6 - 1e-4 <= ratio.min() < 0.8 and 1.2 < ratio.max() <= 1.4 + 1e-4   # in [1 - f, 1 + f]
    clipped = layers.RandomContrast(0.9)(x * 255, training=True).data
    assert clipped.min() >= 0 and clipped.max() <= 255


def test_random_crop_windows():
    x = rng.random((5, 9, 12, 3)).astype(np.float32)
    set_random_seed(2)
    layer = layers.RandomCrop(4, 5)
    starts = set()
    for _ in range(15):
        y = layer(x, training=True).data
        assert y.shape == (5, 4, 5, 3)
        hits = [(i, j) for i in range(6) for j in range(8) if np.array_equal(y, x[:, i:i + 4, j:j + 5])]
        assert len(hits) == 1                          # one window, shared by the whole batch
        starts.add(hits[0])
    assert len(starts) > 3
    small = layers.RandomCrop(12, 12)(x, training=True)              # smaller than the target
    ref = _k(keras.layers.Resizing(12, 12, crop_to_aspect_ratio=True)(x))
    np.testing.assert_allclose(small.data, ref, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- in models
def test_augmentation_model_course_004():
    axone.utils.clear_session()
    set_random_seed(0)
    augment = axone.Sequential([
        layers.Input((16, 16, 3)),
        layers.Resizing(12, 12),
        layers.Rescaling(1.0 / 255),
        layers.RandomFlip("horizontal_and_vertical"),
        layers.RandomRotation((-0.2, 0.3)),
        layers.RandomZoom((0.2, 0.3)),
        layers.RandomBrightness(0.2, value_range=(0, 1)),
        layers.RandomContrast(0.2, value_range=(0, 1)),
        layers.RandomCrop(10, 10),
    ])
    model = axone.Sequential([augment, layers.Conv2D(4, (3, 3), activation="relu"),
                              layers.GlobalAveragePooling2D(), layers.Dense(2, activation="softmax")])
    lines = []
    augment.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(None, 12, 12, 3)" in text and "(None, 10, 10, 3)" in text and "Total params: 0" in text
    x = (rng.random((16, 16, 16, 3)) * 255).astype(np.float32)
    y = axone.utils.to_categorical(rng.integers(0, 2, 16), 2)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25)
    assert np.all(np.isfinite(h.history["loss"])) and "val_loss" in h.history
    p1, p2 = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, p2)                # inference is deterministic
    set_random_seed(9)
    a1 = augment(x).data
    set_random_seed(9)
    np.testing.assert_array_equal(augment(x).data, a1)   # same seed, same augmented batch
    assert a1.shape == (16, 10, 10, 3) and 0 <= a1.min() and a1.max() <= 1


def test_save_and_load_model_with_preprocessing_layers(tmp_path):
    axone.utils.clear_session()
    model = axone.Sequential([layers.Input((8, 8, 3)), layers.Rescaling([0.5, 1.0, 2.0], offset=-1.0),
                              layers.RandomFlip("horizontal", seed=3), layers.RandomRotation(0.1),
                              layers.ZeroPadding2D(((1, 0), (0, 2))), layers.CenterCrop(6, 6),
                              layers.Resizing(4, 4, interpolation="bicubic"),
                              layers.UpSampling2D(interpolation="bilinear"), layers.Cropping2D(1),
                              layers.Flatten(), layers.Dense(2)])
    x = rng.random((3, 8, 8, 3)).astype(np.float32)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = axone.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


ALL = [("Rescaling", {"scale": 0.5}), ("Resizing", {"height": 4, "width": 6}),
       ("CenterCrop", {"height": 4, "width": 6})] + RANDOM


@pytest.mark.parametrize("cls, kw", ALL)
def test_config_roundtrip_and_symbolic_shape(cls, kw):
    layer = getattr(layers, cls)(**kw)
    cfg = layer.get_config()
    json.dumps(cfg)
    again = getattr(layers, cls).from_config(dict(cfg, name=cfg["name"] + "_copy"))
    assert {k: v for k, v in again.get_config().items() if k != "name"} == \
        {k: v for k, v in cfg.items() if k != "name"}
    out = layer(layers.Input((9, 12, 3)))
    kout = getattr(keras.layers, cls)(**kw).compute_output_shape((None, 9, 12, 3))
    assert out.shape == tuple(kout)


@pytest.mark.parametrize("make, match", [
    (lambda: layers.RandomFlip("diagonal", name="flip"), "flip"),
    (lambda: layers.RandomRotation(1.5, name="rot"), "rot"),
    (lambda: layers.RandomRotation((0.1, 0.2, 0.3), name="rot3"), "rot3"),
    (lambda: layers.RandomRotation("a", name="rot_s"), "rot_s"),
    (lambda: layers.RandomRotation(0.1, fill_mode="mirror_x", name="rot_f"), "rot_f"),
    (lambda: layers.RandomRotation(0.1, interpolation="cubic", name="rot_i"), "rot_i"),
    (lambda: layers.RandomZoom(-1.0, name="zoom"), "zoom"),
    (lambda: layers.RandomZoom(0.2, (0.1, 2.0), name="zoom_w"), "zoom_w"),
    (lambda: layers.RandomTranslation(0.2, 1.5, name="tr"), "tr"),
    (lambda: layers.RandomBrightness(0.2, value_range=(0,), name="br"), "br"),
    (lambda: layers.RandomBrightness(-2, name="br2"), "br2"),
    (lambda: layers.RandomContrast(1.5, name="ct"), "ct"),
    (lambda: layers.RandomContrast(-0.1, name="ct2"), "ct2"),
    (lambda: layers.RandomCrop(0, 4, name="rc"), "rc"),
    (lambda: layers.RandomCrop(4, 4, seed=-1, name="rc_seed"), "rc_seed"),
    (lambda: layers.Resizing(4, 4.5, name="rs"), "rs"),
    (lambda: layers.Resizing(4, 4, interpolation="lanczos9", name="rs_i"), "rs_i"),
    (lambda: layers.Resizing(4, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True, name="rs_b"), "rs_b"),
    (lambda: layers.CenterCrop(-3, 4, name="cc"), "cc"),
    (lambda: layers.Rescaling("x", name="sc"), "sc"),
])
def test_bad_arguments_raise_value_error_naming_the_layer(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_input_rank_names_the_layer():
    for layer in [layers.RandomFlip(name="flip_rank"), layers.Resizing(3, 3, name="rs_rank"),
                  layers.RandomCrop(2, 2, name="rc_rank")]:
        with pytest.raises(ValueError, match=layer.name):
            layer(np.zeros((2, 5, 5, 3, 1), np.float32))
