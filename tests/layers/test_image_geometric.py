"""RandomShear, RandomPerspective, RandomElasticTransform, RandomGaussianBlur and RandomErasing:
inference identity, shapes and dtypes, seeded draws, deterministic settings against Keras 3,
the draws against ops.image, gradients, configs and bad arguments."""
import json

import numpy as np
import pytest

from axone import Tensor, layers
from axone.ops import image as I
from axone.utils import check_gradients, set_random_seed

keras = pytest.importorskip("keras")

rng = np.random.default_rng(11)
X = (rng.random((3, 10, 12, 3)) * 255).astype(np.float32)
XC = np.ascontiguousarray(np.transpose(X, (0, 3, 1, 2)))

NAMES = ["RandomShear", "RandomPerspective", "RandomElasticTransform", "RandomGaussianBlur",
         "RandomErasing"]
ARGS = {"RandomShear": {"x_factor": 0.3, "y_factor": (0.1, 0.4)}, "RandomPerspective": {},
        "RandomElasticTransform": {}, "RandomGaussianBlur": {}, "RandomErasing": {}}
SURE = {"RandomShear": {"x_factor": 0.3, "y_factor": (0.1, 0.4)},
        "RandomPerspective": {"factor": (1.0, 1.0)},
        "RandomElasticTransform": {"factor": (1.0, 1.0)},
        "RandomGaussianBlur": {"factor": (1.0, 1.0), "sigma": (0.9, 1.0)},
        "RandomErasing": {"factor": (1.0, 1.0)}}


def _k(y):
    return np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)


def _make(name, **kw):
    return getattr(layers, name)(**{**SURE[name], **kw})


# ------------------------------------------------------------- behaviour
@pytest.mark.parametrize("name", NAMES)
def test_inference_is_identity(name):
    layer = _make(name, seed=1)
    np.testing.assert_array_equal(layer(X, training=False).data, X)
    np.testing.assert_array_equal(layer(X[0], training=False).data, X[0])


@pytest.mark.parametrize("name", NAMES)
def test_training_changes_images_shapes_and_dtypes(name):
    layer = _make(name, seed=2)
    y = layer(X)
    assert y.shape == X.shape and y.dtype == np.float32
    assert np.abs(y.data - X).max() > 1.0
    assert layer(X[0]).shape == X[0].shape
    yu = _make(name, seed=2)(X.astype(np.uint8))
    assert yu.dtype == np.float32 and yu.shape == X.shape
    assert layer.compute_output_shape((None, 10, 12, 3)) == (None, 10, 12, 3)
    y64 = _make(name, seed=2, dtype="float64")(X.astype(np.float64))
    assert y64.dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_channels_first_is_the_transposed_channels_last(name):
    kw = {"fill_value": 9.0} if name == "RandomErasing" else {}    # noise is drawn per layout
    a = _make(name, seed=3, **kw)(X).data
    b = _make(name, seed=3, data_format="channels_first", **kw)(XC).data
    np.testing.assert_allclose(np.transpose(b, (0, 2, 3, 1)), a, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_reproducibility(name):
    a, b = _make(name, seed=5), _make(name, seed=5)
    y1, y2 = a(X).data, b(X).data
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(a(X).data, y1)          # the generator advances
    set_random_seed(9)
    z1 = _make(name)(X).data
    set_random_seed(9)
    z2 = _make(name)(X).data
    np.testing.assert_array_equal(z1, z2)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_the_images(name):
    x = rng.random((2, 5, 6, 2)) * 0.8 + 0.1
    kw = {"value_range": (0, 1)} if name != "RandomShear" and name != "RandomPerspective" else {}
    if name == "RandomErasing":
        kw["fill_value"] = 0.5
    kw["dtype"] = "float64"
    r = check_gradients(lambda t: _make(name, seed=4, **kw)(t), x)
    assert r.max_error < 1e-7
    t = Tensor(x, requires_grad=True)
    _make(name, seed=4, **kw)(t).sum().backward()
    assert t.grad is not None and np.abs(t.grad).sum() > 0


# ------------------------------------------------------ against Keras / ops
def test_shear_matches_keras_up_to_the_sign():
    ox, oy = 0.3, 0.2

    def both(a, b):
        return [np.tile(np.array([1, s * a, 0, s * b, 1, 0, 0, 0], np.float32), (len(X), 1))
                for s in (1, -1)]
    kw = dict(x_factor=(ox, ox), y_factor=(oy, oy), fill_mode="constant", fill_value=3.0)
    ours = layers.RandomShear(**kw, seed=0)(X).data
    theirs = _k(keras.layers.RandomShear(**kw, seed=0)(X))
    cands = [_k(keras.ops.image.affine_transform(X, m, fill_mode="constant", fill_value=3.0))
             for m in both(ox, oy)]
    for i in range(len(X)):
        for y in (ours, theirs):
            assert any(np.allclose(y[i], c[i], atol=1e-3) for c in cands)
    more = layers.RandomShear(**kw, seed=1)(np.repeat(X[:1], 16, axis=0)).data
    for c in cands:
        assert any(np.allclose(m, c[0], atol=1e-3) for m in more)   # both signs occur


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_gaussian_blur_fixed_sigma_matches_keras(data_format):
    x = X if data_format == "channels_last" else XC
    kw = dict(factor=(1.0, 1.0), kernel_size=5, sigma=(0.7, 0.7), value_range=(0, 200),
              data_format=data_format)
    np.testing.assert_allclose(layers.RandomGaussianBlur(**kw)(x).data,
                               _k(keras.layers.RandomGaussianBlur(**kw)(x)), rtol=1e-5, atol=1e-3)


def test_erasing_everything_matches_keras():
    kw = dict(factor=(1.0, 1.0), scale=(1.0, 1.0), fill_value=300.0, value_range=(0, 255))
    ours = layers.RandomErasing(**kw)(X).data
    np.testing.assert_array_equal(ours, _k(keras.layers.RandomErasing(**kw)(X)))
    assert (ours == 255).all()
    kw["fill_value"] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(layers.RandomErasing(**kw)(X).data,
                                  _k(keras.layers.RandomErasing(**kw)(X)))


def test_erasing_noise_fill():
    y = layers.RandomErasing(factor=(1.0, 1.0), scale=(0.3, 0.5), seed=2)(X).data
    changed = y != X
    assert changed.any() and (y[changed] >= 0).all() and (y[changed] <= 255).all()
    assert len(np.unique(y[changed])) > 10


def test_erasing_draws():
    layer = layers.RandomErasing(factor=(1.0, 1.0), scale=(0.1, 0.3), fill_value=7.0, seed=8)
    y = layer(X).data
    g = np.random.default_rng(8)
    n, h, w = X.shape[:3]
    ratio = np.sqrt(g.uniform(0.1, 0.3, (n, 2)))
    x0 = g.uniform(0, 1, n) * (w - ratio[:, 0] * w)
    y0 = g.uniform(0, 1, n) * (h - ratio[:, 1] * h)
    for i in range(n):
        cols = (np.arange(w) >= x0[i]) & (np.arange(w) < x0[i] + ratio[i, 0] * w)
        rows = (np.arange(h) >= y0[i]) & (np.arange(h) < y0[i] + ratio[i, 1] * h)
        box = rows[:, None] & cols[None, :]
        assert box.any()
        assert (y[i][box] == 7.0).all()
        np.testing.assert_array_equal(y[i][~box], X[i][~box])


def test_perspective_draws_are_ops_perspective_transform():
    layer = layers.RandomPerspective(factor=0.7, scale=0.6, fill_value=2.0, seed=12)
    y = layer(X).data
    g = np.random.default_rng(12)
    n, h, w = X.shape[:3]
    p = g.uniform(0, 0.7, n)
    apply = g.uniform(0, 1, n) < p
    d = g.uniform(-0.3, 0.3, (n, 4, 2))
    start = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)[None]
    want = I.perspective_transform(X, np.repeat(start, n, 0), start + start * d, fill_value=2.0)
    for i in range(n):
        np.testing.assert_allclose(y[i], want.data[i] if apply[i] else X[i], rtol=1e-6, atol=1e-4)
    assert apply.any()


def test_perspective_scale_zero_matches_keras():
    kw = dict(factor=(1.0, 1.0), scale=0.0)
    np.testing.assert_allclose(layers.RandomPerspective(**kw)(X).data,
                               _k(keras.layers.RandomPerspective(**kw)(X)), atol=1e-3)


def test_elastic_draws_are_ops_elastic_transform():
    layer = layers.RandomElasticTransform(factor=(1.0, 1.0), scale=(0.5, 0.9), seed=6,
                                          value_range=(0, 200))
    y = layer(X).data
    g = np.random.default_rng(6)
    n, h, w = X.shape[:3]
    g.uniform(1, 1, n), g.uniform(0, 1, n)
    d = g.uniform(0.5, 0.9)
    want = I.elastic_transform(X, max(h, w) * 0.1 * d, min(h, w) * 0.05 * d, seed=g).data
    np.testing.assert_allclose(y, np.clip(want, 0, 200), rtol=1e-6, atol=1e-4)


def test_elastic_without_effect_matches_keras():
    x = X * 2     # values beyond value_range stay: nothing is applied, nothing clipped
    for kw in (dict(factor=0.0), dict(scale=0.0)):
        np.testing.assert_array_equal(layers.RandomElasticTransform(**kw)(x).data,
                                      _k(keras.layers.RandomElasticTransform(**kw)(x)))


# ----------------------------------------------------------------- configs
@pytest.mark.parametrize("name", NAMES)
def test_config_matches_keras_and_round_trips(name):
    kw = ARGS[name]
    ours = getattr(layers, name)(**kw, seed=3).get_config()
    theirs = getattr(keras.layers, name)(**kw, seed=3).get_config()
    assert set(theirs) - {"dtype"} <= set(ours)
    for key in set(theirs) - {"name", "dtype", "trainable"}:
        assert np.allclose(np.asarray(ours[key], float), np.asarray(theirs[key], float)) \
            if theirs[key] is not None and not isinstance(theirs[key], str) \
            else ours[key] == theirs[key], key
    again = getattr(layers, name).from_config(json.loads(json.dumps(ours)))
    cfg = json.loads(json.dumps(again.get_config()))
    assert {k: v for k, v in cfg.items() if k != "name"} == {
        k: v for k, v in json.loads(json.dumps(ours)).items() if k != "name"}
    np.testing.assert_array_equal(again(X).data, getattr(layers, name)(**kw, seed=3)(X).data)


def test_in_a_model_inference_is_identity():
    import axone
    model = axone.Sequential([axone.Input((10, 12, 3)), layers.RandomShear(0.2),
                              layers.RandomGaussianBlur(), layers.RandomErasing(),
                              layers.RandomPerspective(), layers.RandomElasticTransform()])
    np.testing.assert_allclose(model.predict(X, verbose=0), X)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("make,err,match", [
    (lambda: layers.RandomShear(x_factor=1.5), ValueError, "x_factor"),
    (lambda: layers.RandomShear(y_factor=(0.1, 1.5)), ValueError, "y_factor"),
    (lambda: layers.RandomShear(x_factor=-0.2), ValueError, "x_factor"),
    (lambda: layers.RandomShear(fill_mode="mirror"), NotImplementedError, "fill_mode"),
    (lambda: layers.RandomShear(interpolation="bicubic"), NotImplementedError, "interpolation"),
    (lambda: layers.RandomPerspective(scale=1.5), ValueError, "scale"),
    (lambda: layers.RandomPerspective(factor=(2.0, 3.0)), ValueError, "factor"),
    (lambda: layers.RandomPerspective(interpolation="bicubic"), NotImplementedError,
     "interpolation"),
    (lambda: layers.RandomElasticTransform(fill_mode="edge"), NotImplementedError, "fill_mode"),
    (lambda: layers.RandomElasticTransform(scale="big"), ValueError, "scale"),
    (lambda: layers.RandomGaussianBlur(kernel_size=4), ValueError, "kernel_size"),
    (lambda: layers.RandomGaussianBlur(kernel_size=(3, 3, 3)), ValueError, "kernel_size"),
    (lambda: layers.RandomGaussianBlur(sigma=2.0), ValueError, "sigma"),
    (lambda: layers.RandomGaussianBlur(value_range=(1,)), ValueError, "value_range"),
    (lambda: layers.RandomErasing(fill_value=(1, 2)), ValueError, "fill_value"),
    (lambda: layers.RandomErasing(scale=-0.5), ValueError, "scale"),
    (lambda: layers.RandomErasing(data_format="NHWC"), ValueError, "data_format"),
    (lambda: layers.RandomShear(seed=-1), ValueError, "seed"),
    (lambda: layers.RandomErasing(bounding_box_format="xyxy"), NotImplementedError,
     "bounding_box_format"),
])
def test_bad_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


@pytest.mark.parametrize("name", NAMES)
def test_bad_rank(name):
    with pytest.raises(ValueError, match="rank"):
        _make(name)(X[0, 0])


def test_erasing_three_fill_values_need_three_channels():
    with pytest.raises(ValueError, match="3 channels"):
        layers.RandomErasing(fill_value=[1, 2, 3])(X[..., :2])
