"""Colour, mixing and policy augmentation layers (axone/layers/image_augmentation.py) against
Keras 3 on its PyTorch backend: values of the deterministic settings and of given
transformations, shapes, dtypes, value ranges, seeds, inference, dict inputs, configs, bad
input."""
import numpy as np
import pytest

import keras

import axone
from axone import Tensor
from axone import layers as A

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"

K2N = keras.ops.convert_to_numpy


def _images(shape=(3, 9, 10, 3), seed=0, scale=255.0, fmt="channels_last"):
    x = (np.random.default_rng(seed).random(shape) * scale).astype("float32")
    if fmt == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, -3))
    return x


def _close(a, b, atol=1e-4):
    a = a.data if isinstance(a, Tensor) else np.asarray(a)
    b = K2N(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    np.testing.assert_allclose(a.astype("float64"), b.astype("float64"), rtol=1e-5, atol=atol)


# ------------------------------------------------------- deterministic values
DETERMINISTIC = [
    ("AutoContrast", {}, {}),
    ("AutoContrast", {"value_range": (0, 1)}, {"scale": 1.0}),
    ("Equalization", {}, {}),
    ("Equalization", {"value_range": (0, 1), "bins": 64}, {"scale": 1.0}),
    ("Equalization", {"data_format": "channels_first"}, {"fmt": "channels_first"}),
    ("Solarization", {"threshold_factor": (0, 0)}, {}),
    ("Solarization", {"threshold_factor": (0, 0), "value_range": (0, 1)}, {"scale": 1.0}),
    ("RandomInvert", {"factor": (1.0, 1.0)}, {}),
    ("RandomInvert", {"factor": (1.0, 1.0), "value_range": (0, 1)}, {"scale": 1.0}),
    ("RandomGrayscale", {"factor": 1.0}, {}),
    ("RandomGrayscale", {"factor": 1.0, "data_format": "channels_first"}, {"fmt": "channels_first"}),
    ("RandomColorDegeneration", {"factor": (0.3, 0.3)}, {}),
    ("RandomColorDegeneration", {"factor": (0.7, 0.7), "data_format": "channels_first"},
     {"fmt": "channels_first"}),
    ("RandomSaturation", {"factor": (0.3, 0.3)}, {}),
    ("RandomSaturation", {"factor": (0.8, 0.8), "data_format": "channels_first"},
     {"fmt": "channels_first"}),
    ("RandomHue", {"factor": (0.0, 0.0)}, {}),
    ("RandomHue", {"factor": (0.0, 0.0), "value_range": (0, 1), "data_format": "channels_first"},
     {"scale": 1.0, "fmt": "channels_first"}),
    ("RandomSharpness", {"factor": (0.5, 0.5)}, {}),
    ("RandomPosterization", {"factor": (3, 3)}, {}),
    ("RandomPosterization", {"factor": (5, 5), "value_range": (0, 1)}, {"scale": 1.0}),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"tile_grid_size": (2, 3)},
     {"shape": (2, 32, 48, 3)}),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"tile_grid_size": (3, 2), "clip_limit": 0},
     {}),
    ("ContrastLimitedAdaptiveHistogramEqualization",
     {"tile_grid_size": (2, 2), "data_format": "channels_first", "value_range": (0, 1)},
     {"shape": (2, 16, 32, 3), "fmt": "channels_first", "scale": 1.0}),
]


@pytest.mark.parametrize("name,kwargs,data", DETERMINISTIC,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(DETERMINISTIC)])
@pytest.mark.parametrize("single", [False, True])
def test_deterministic_settings_match_keras(name, kwargs, data, single):
    x = _images(data.get("shape", (3, 9, 10, 3)), scale=data.get("scale", 255.0),
                fmt=data.get("fmt", "channels_last"))
    if single:
        x = x[0]
    ref = getattr(keras.layers, name)(**kwargs)(x, training=True)
    out = getattr(A, name)(**kwargs)(x, training=True)
    _close(out, ref)


def test_clahe_and_grayscale_keep_integer_dtype():
    x = _images((2, 32, 48, 3)).astype("uint8")
    kw = {"tile_grid_size": (2, 3)}
    _close(A.ContrastLimitedAdaptiveHistogramEqualization(**kw)(x),
           keras.layers.ContrastLimitedAdaptiveHistogramEqualization(**kw)(x))
    _close(A.RandomGrayscale(factor=1.0)(x), keras.layers.RandomGrayscale(factor=1.0)(x))
    # the other colour layers work in float32, as Keras's
    assert A.AutoContrast()(x).dtype == np.float32
    assert A.Equalization()(x).dtype == np.float32


def test_constant_channel_kept_by_auto_contrast_and_equalization():
    x = np.full((2, 5, 5, 3), 77.0, dtype="float32")
    np.testing.assert_array_equal(A.AutoContrast()(x).data, x)
    np.testing.assert_array_equal(A.Equalization()(x).data, x)
    _close(A.AutoContrast()(x), keras.layers.AutoContrast()(x))


# --------------------------------------------- given transformations vs Keras
def _t(d):
    return {k: keras.ops.convert_to_tensor(v) for k, v in d.items()}


GIVEN = [
    ("Solarization", {}, {"additions": np.array([10, 0, 50], "float32").reshape(3, 1, 1, 1),
                          "thresholds": np.array([128, 60, 200], "float32").reshape(3, 1, 1, 1)}),
    ("RandomHue", {"factor": 0.5}, {"factor": np.array([0.1, -0.2, 0.45], "float32")}),
    ("RandomHue", {"factor": 0.5, "data_format": "channels_first"},
     {"factor": np.array([0.3, -0.4, 0.05], "float32")}),
    ("RandomSharpness", {"factor": 0.5}, {"factor": np.array([0.1, 0.9, 0.45], "float32")}),
    ("RandomSharpness", {"factor": 0.5, "data_format": "channels_first"},
     {"factor": np.array([0.0, 1.0, 0.3], "float32")}),
    ("RandomPosterization", {"factor": 4}, {"shift_factor": np.array([7, 4, 2], "uint8")}),
    ("RandomSaturation", {"factor": 0.5}, {"factor": np.array([0.2, 1.5, 0.0], "float32")}),
    ("RandomColorDegeneration", {"factor": 0.5},
     {"factor": np.array([0.2, -0.5, 1.0], "float32").reshape(3, 1, 1, 1)}),
    ("RandomInvert", {}, {"apply_inversion": np.array([True, False, True])}),
    ("MixUp", {}, {"mix_weight": np.array([0.1, 0.5, 0.9], "float32"),
                   "permutation_order": np.array([2, 0, 1])}),
]


@pytest.mark.parametrize("name,kwargs,transformation", GIVEN,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(GIVEN)])
def test_given_transformation_matches_keras(name, kwargs, transformation):
    fmt = kwargs.get("data_format", "channels_last")
    x = _images(fmt=fmt)
    ref = getattr(keras.layers, name)(**kwargs).transform_images(
        keras.ops.convert_to_tensor(x), _t(transformation))
    out = getattr(A, name)(**kwargs).transform_images(x, transformation)
    _close(out, ref)


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_cutmix_with_keras_transformation(fmt):
    x = _images((4, 12, 10, 3), fmt=fmt)
    labels = np.eye(4, dtype="float32")
    k = keras.layers.CutMix(seed=3, data_format=fmt)
    t = k.get_random_transformation({"images": x, "labels": labels})
    tn = {key: K2N(v) for key, v in t.items()}
    layer = A.CutMix(data_format=fmt)
    _close(layer.transform_images(x, tn), k.transform_images(keras.ops.convert_to_tensor(x), t))
    _close(layer.transform_labels(labels, tn),
           k.transform_labels(keras.ops.convert_to_tensor(labels), t))
    # our own draws: a box of the mask per image, and the label weight is the area kept
    mine = layer.get_random_transformation({"images": x})
    m = mine["batch_masks"][:, 0] if fmt == "channels_first" else mine["batch_masks"][..., 0]
    kept = 1 - m.reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(kept, mine["mix_weight"], atol=0.25)


def test_mixup_labels_match_keras():
    labels = np.eye(3, dtype="float32")
    t = {"mix_weight": np.array([0.1, 0.5, 0.9], "float32"), "permutation_order": np.array([2, 0, 1])}
    ref = keras.layers.MixUp().transform_labels(keras.ops.convert_to_tensor(labels), _t(t))
    _close(A.MixUp().transform_labels(labels, t), ref)


def test_color_jitter_zero_width_matches_keras():
    x = _images()
    kw = {"saturation_factor": (0.6, 0.6), "hue_factor": (0.0, 0.0)}
    _close(A.RandomColorJitter(**kw)(x), keras.layers.RandomColorJitter(**kw)(x), atol=1e-3)


# ----------------------------------------------------------- random layers
RANDOM = [
    ("Solarization", {"addition_factor": 0.3, "threshold_factor": 0.6}),
    ("RandomColorDegeneration", {"factor": 0.8}),
    ("RandomGrayscale", {"factor": 0.5}),
    ("RandomHue", {"factor": 0.8}),
    ("RandomInvert", {"factor": 1.0}),
    ("RandomPosterization", {"factor": (2, 7)}),
    ("RandomSaturation", {"factor": 0.9}),
    ("RandomSharpness", {"factor": 0.9}),
    ("RandomColorJitter", {"brightness_factor": 0.3, "contrast_factor": 0.4,
                           "saturation_factor": 0.5, "hue_factor": 0.4}),
    ("MixUp", {}),
    ("CutMix", {}),
    ("RandAugment", {"num_ops": 3}),
    ("AugMix", {}),
    ("AugMix", {"all_ops": False, "num_chains": 2, "chain_depth": 2}),
]


def _needs_geometric(name):
    if name in ("RandAugment", "AugMix"):
        pytest.importorskip("axone.layers.image_geometric")


@pytest.mark.parametrize("name,kwargs", RANDOM, ids=[f"{n}-{i}" for i, (n, _) in enumerate(RANDOM)])
def test_random_layers_shape_range_seed_and_inference(name, kwargs):
    _needs_geometric(name)
    x = _images((6, 12, 12, 3), seed=7)
    layer = getattr(A, name)(seed=11, **kwargs)
    y = layer(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert y.data.min() >= -1e-3 and y.data.max() <= 255 + 1e-3 or name == "RandomSaturation"
    # same seed, same draws; the next call draws again
    np.testing.assert_array_equal(getattr(A, name)(seed=11, **kwargs)(x).data, y.data)
    ys = [layer(x).data for _ in range(3)]
    assert any(not np.array_equal(y.data, z) for z in ys)
    # inference: the input as it is
    np.testing.assert_array_equal(layer(x, training=False).data, x)
    # one image in, one image out
    assert layer(x[0]).shape == x[0].shape
    # axone.utils.set_random_seed repeats an unseeded layer
    unseeded = getattr(A, name)(**kwargs)
    axone.utils.set_random_seed(5)
    a = unseeded(x).data
    axone.utils.set_random_seed(5)
    np.testing.assert_array_equal(unseeded(x).data, a)


def test_value_range_zero_one_is_kept():
    x = _images((4, 8, 8, 3), scale=1.0)
    for layer in (A.RandomHue(0.5, value_range=(0, 1), seed=1),
                  A.RandomColorDegeneration(0.9, value_range=(0, 1), seed=1),
                  A.RandomSharpness(0.9, value_range=(0, 1), seed=1),
                  A.Solarization(0.5, 0.5, value_range=(0, 1), seed=1),
                  A.RandomInvert(value_range=(0, 1), seed=1),
                  A.RandomPosterization(4, value_range=(0, 1), seed=1),
                  A.AutoContrast(value_range=(0, 1)), A.Equalization(value_range=(0, 1))):
        y = layer(x).data
        assert y.min() >= 0 and y.max() <= 1 + 1e-6, type(layer).__name__


def test_random_grayscale_and_invert_probabilities():
    x = _images((400, 2, 2, 3), seed=2)
    g = A.RandomGrayscale(factor=0.3, seed=0)(x).data
    gray = np.all(g[..., :1] == g, axis=(1, 2, 3))
    assert 0.2 < gray.mean() < 0.4
    inv = A.RandomInvert(factor=(0.8, 0.8), seed=0)(x).data
    assert 0.7 < np.mean(~np.all(inv == x, axis=(1, 2, 3))) < 0.9
    assert np.array_equal(A.RandomGrayscale(factor=0.0)(x).data, x)


def test_auto_contrast_clahe_and_max_boxes_apply_at_inference_like_keras():
    x = _images()
    np.testing.assert_array_equal(A.AutoContrast()(x, training=False).data, A.AutoContrast()(x).data)
    _close(A.AutoContrast()(x, training=False), keras.layers.AutoContrast()(x, training=False))
    np.testing.assert_array_equal(A.Equalization()(x, training=False).data, x)


def test_policies_at_inference_and_channels_first():
    pytest.importorskip("axone.layers.image_geometric")
    x = _images((3, 10, 10, 3))
    for layer in (A.RandAugment(seed=1), A.AugMix(seed=1)):
        np.testing.assert_array_equal(layer(x, training=False).data, x)
        cf = type(layer)(seed=1, data_format="channels_first")
        y = cf(np.ascontiguousarray(np.moveaxis(x, -1, 1))).data
        assert y.shape == (3, 3, 10, 10)
        # the same seed in both formats draws the same operations
        np.testing.assert_allclose(np.moveaxis(y, 1, -1), type(layer)(seed=1)(x).data, atol=1e-3)


# ------------------------------------------------------------- dict inputs
def test_mixup_and_cutmix_dict_inputs_like_keras():
    x = _images((4, 8, 8, 3))
    labels = np.eye(4, dtype="float32")
    for name in ("MixUp", "CutMix"):
        out = getattr(A, name)(seed=0)({"images": x, "labels": labels})
        ref = getattr(keras.layers, name)(seed=0)({"images": x, "labels": labels})
        assert set(out) == set(ref) == {"images", "labels"}
        for k in out:
            assert out[k].shape == tuple(ref[k].shape) and out[k].dtype == np.float32
        np.testing.assert_allclose(out["labels"].data.sum(axis=1), 1.0, atol=1e-5)
        # every output image is a mix of the image and its partner with the label weights
        if name == "MixUp":
            w = out["labels"].data.max(axis=1)
            assert np.all(w >= 0.5 - 1e-6)
        ident = getattr(A, name)(seed=0)({"images": x, "labels": labels}, training=False)
        np.testing.assert_array_equal(ident["images"].data, x)
        np.testing.assert_array_equal(ident["labels"].data, labels)


def test_cutmix_single_image_and_masks():
    x = _images((9, 9, 3))
    np.testing.assert_array_equal(A.CutMix(seed=1)(x).data, x)
    batch = _images((4, 8, 8, 3))
    masks = np.random.default_rng(0).integers(0, 3, (4, 8, 8, 1)).astype("float32")
    out = A.CutMix(seed=2)({"images": batch, "segmentation_masks": masks})
    assert out["segmentation_masks"].shape == masks.shape
    assert set(np.unique(out["segmentation_masks"].data)) <= {0.0, 1.0, 2.0}


def test_color_layers_pass_labels_masks_and_boxes():
    x = _images((2, 8, 8, 3))
    labels = np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
    boxes = {"boxes": np.array([[[0, 0, 4, 4]], [[1, 1, 5, 5]]], "float32"),
             "labels": np.array([[1], [0]], "int32")}
    out = A.RandomHue(0.5, seed=0, bounding_box_format="xyxy")(
        {"images": x, "labels": labels, "bounding_boxes": boxes})
    np.testing.assert_array_equal(out["labels"].data, labels)
    np.testing.assert_array_equal(out["bounding_boxes"]["boxes"].data, boxes["boxes"])
    with pytest.raises(ValueError, match="bounding_box_format"):
        A.RandomHue(0.5)({"images": x, "bounding_boxes": boxes})


def test_max_num_bounding_boxes():
    x = _images((2, 8, 8, 3))
    boxes = {"boxes": np.arange(2 * 3 * 4, dtype="float32").reshape(2, 3, 4),
             "labels": np.array([[1, 2, 3], [4, 5, 6]], "int32")}
    out = A.MaxNumBoundingBoxes(5, bounding_box_format="xyxy")({"images": x, "bounding_boxes": boxes})
    ref = keras.layers.MaxNumBoundingBoxes(5, bounding_box_format="xyxy")(
        {"images": x, "bounding_boxes": dict(boxes)})
    for k in ("boxes", "labels"):
        np.testing.assert_array_equal(out["bounding_boxes"][k].data, K2N(ref["bounding_boxes"][k]))
    cut = A.MaxNumBoundingBoxes(2, fill_value=0, bounding_box_format="xyxy")(
        {"images": x, "bounding_boxes": boxes}, training=False)
    assert cut["bounding_boxes"]["boxes"].shape == (2, 2, 4)
    np.testing.assert_array_equal(cut["images"].data, x)
    one = A.MaxNumBoundingBoxes(4, bounding_box_format="xyxy")(
        {"images": x[0], "bounding_boxes": {"boxes": boxes["boxes"][0], "labels": boxes["labels"][0]}})
    assert one["bounding_boxes"]["boxes"].shape == (4, 4)
    shape = A.MaxNumBoundingBoxes(4).compute_output_shape(
        {"images": (2, 8, 8, 3), "bounding_boxes": {"boxes": (2, 3, 4), "labels": (2, 3)}})
    assert shape["bounding_boxes"] == {"boxes": (2, 4, 4), "labels": (2, 4)}


# ----------------------------------------------------------------- pipeline
def test_pipeline_applies_in_order_and_round_trips():
    x = _images((2, 8, 8, 3))
    p = A.Pipeline([A.RandomInvert(factor=(1.0, 1.0)), A.Solarization(threshold_factor=(0, 0))])
    np.testing.assert_allclose(p(x).data, x, atol=1e-4)      # 255 − (255 − x)
    np.testing.assert_array_equal(p(x, training=False).data, x)
    assert len(p.layers) == 2
    cfg = p.get_config()
    assert set(cfg) == {"layers", "name"}
    q = A.Pipeline.from_config(cfg)
    assert [type(l).__name__ for l in q.layers] == ["RandomInvert", "Solarization"]
    assert q.layers[0].get_config()["factor"] == [1.0, 1.0]
    k = keras.layers.Pipeline([keras.layers.RandomInvert(factor=(1.0, 1.0)),
                               keras.layers.AutoContrast()])
    _close(A.Pipeline([A.RandomInvert(factor=(1.0, 1.0)), A.AutoContrast()])(x), k(x))
    with pytest.raises(TypeError, match="Pipeline"):
        A.Pipeline([lambda t: t])
    with pytest.raises(ValueError, match="layers"):
        A.Pipeline.from_config({"name": "p"})


def test_layers_in_a_model():
    inputs = axone.Input((8, 8, 3))
    y = A.AutoContrast()(inputs)
    y = A.RandomSharpness(0.5, seed=0)(y)
    model = axone.Model(inputs, y)
    x = _images((2, 8, 8, 3))
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, A.AutoContrast()(x).data, atol=1e-4)   # sharpness off


# ------------------------------------------------------------------ configs
CONFIGS = [
    ("AutoContrast", {"value_range": (0, 1)}),
    ("Equalization", {"bins": 128}),
    ("Solarization", {"addition_factor": 0.2, "threshold_factor": (0.1, 0.5), "seed": 3}),
    ("RandomColorDegeneration", {"factor": 0.4, "seed": 1}),
    ("RandomColorJitter", {"brightness_factor": 0.2, "hue_factor": 0.3, "seed": 2}),
    ("RandomGrayscale", {"factor": 0.2}),
    ("RandomHue", {"factor": 0.3, "value_range": (0, 1)}),
    ("RandomInvert", {"factor": 0.4}),
    ("RandomPosterization", {"factor": 6}),
    ("RandomSaturation", {"factor": (0.2, 0.7)}),
    ("RandomSharpness", {"factor": 0.3, "data_format": "channels_first"}),
    ("MixUp", {"alpha": 0.4}),
    ("CutMix", {"factor": 0.5}),
    ("RandAugment", {"num_ops": 3, "factor": 0.3}),
    ("AugMix", {"num_chains": 2, "all_ops": False}),
    ("MaxNumBoundingBoxes", {"max_number": 7}),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"clip_limit": 2.0, "tile_grid_size": (4, 4)}),
]


def _norm(v):
    return [_norm(i) for i in v] if isinstance(v, (list, tuple)) else v


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[n for n, _ in CONFIGS])
def test_config_round_trip_and_keys_like_keras(name, kwargs):
    layer = getattr(A, name)(**kwargs)
    cfg = layer.get_config()
    again = getattr(A, name).from_config(cfg).get_config()
    assert _norm(again) == _norm(cfg)
    ref = getattr(keras.layers, name)(**kwargs).get_config()
    skip = {"name", "trainable", "dtype"}
    extra = {"fill_value"} if name == "MaxNumBoundingBoxes" else set()
    assert set(cfg) - skip - extra == set(ref) - skip
    for k in set(ref) - skip:
        assert _norm(cfg[k]) == _norm(ref[k]), (k, cfg[k], ref[k])
    restored = axone.layers.deserialize(axone.layers.serialize(layer))
    assert type(restored) is type(layer)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("make,match", [
    (lambda: A.RandomHue(factor=1.5), "factor"),
    (lambda: A.RandomHue(factor="big"), "factor"),
    (lambda: A.RandomSharpness(factor=(0.1, 0.2, 0.3)), "factor"),
    (lambda: A.RandomPosterization(factor=0), "factor"),
    (lambda: A.RandomPosterization(factor=9), "factor"),
    (lambda: A.RandomGrayscale(factor=2), "factor"),
    (lambda: A.Solarization(addition_factor=-0.5), "addition_factor"),
    (lambda: A.Solarization(threshold_factor=(0.2, 1.5)), "threshold_factor"),
    (lambda: A.RandomInvert(value_range=5), "value_range"),
    (lambda: A.AutoContrast(value_range=(0, 1, 2)), "value_range"),
    (lambda: A.Equalization(bins=0), "bins"),
    (lambda: A.MixUp(alpha=0), "alpha"),
    (lambda: A.RandAugment(num_ops=-1), "num_ops"),
    (lambda: A.RandAugment(interpolation="cubic"), "interpolation"),
    (lambda: A.AugMix(chain_depth=0), "chain_depth"),
    (lambda: A.MaxNumBoundingBoxes(0), "max_number"),
    (lambda: A.ContrastLimitedAdaptiveHistogramEqualization(tile_grid_size=(0, 2)), "tile_grid_size"),
    (lambda: A.RandomSaturation(0.5, seed=-1), "seed"),
    (lambda: A.RandomSaturation(0.5, data_format="nhwc"), "data_format"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs():
    with pytest.raises(ValueError, match="rank"):
        A.RandomHue(0.5)(np.zeros((4, 4), "float32"))
    with pytest.raises(ValueError, match="images"):
        A.MixUp()({"labels": np.zeros((2, 2), "float32")})
    with pytest.raises(ValueError, match="channel"):
        A.RandomColorDegeneration(0.5)(np.zeros((2, 4, 4, 2), "float32"))
    with pytest.raises(NotImplementedError):
        A.CutMix(bounding_box_format="xyxy")(
            {"images": _images((2, 4, 4, 3)),
             "bounding_boxes": {"boxes": np.zeros((2, 1, 4)), "labels": np.zeros((2, 1))}})
    with pytest.raises(TypeError):
        A.RandomHue(0.5, unknown_argument=1)


def test_fit_and_save_with_augmentation_layers(tmp_path):
    x = _images((16, 8, 8, 3), seed=3)
    y = np.random.default_rng(1).integers(0, 2, 16)
    model = axone.Sequential([
        axone.Input((8, 8, 3)),
        A.Pipeline([A.RandomHue(0.3, seed=1), A.RandomSharpness(0.4, seed=2)]),
        A.AutoContrast(), axone.layers.Rescaling(1 / 255.0), axone.layers.Flatten(),
        axone.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    path = str(tmp_path / "aug.keras")
    model.save(path)
    again = axone.models.load_model(path)
    assert [type(l).__name__ for l in again.layers[0].layers] == ["RandomHue", "RandomSharpness"]
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


def test_gradient_carrying_images_are_refused_not_cut():
    import axone
    from axone import layers as L
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype("float32")
    w = axone.Variable(np.ones((1, 1, 1, 3), np.float32))
    for layer in (L.RandomInvert(factor=(1.0, 1.0), value_range=(0, 1)), L.AutoContrast(value_range=(0, 1))):
        with pytest.raises(NotImplementedError, match="not differentiable"):
            layer(axone.Tensor(x) * w, training=True)
    # at the input, with no gradient to carry, it runs; at inference it passes the tensor through
    assert L.RandomInvert(factor=(1.0, 1.0), value_range=(0, 1))(x, training=True).shape == x.shape
    y = axone.Tensor(x) * w
    assert L.RandomInvert(value_range=(0, 1))(y, training=False) is y
