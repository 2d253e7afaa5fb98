"""keras.ops.image: values and gradients against Keras 3 (torch backend), float64 finite
differences, both data formats, single images, integer images, the alias and bad input."""
import numpy as np
import pytest

from axone import Tensor
from axone.ops import image as I
from axone.utils import check_gradients

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

rng = np.random.default_rng(7)
X = rng.random((2, 9, 11, 3)).astype(np.float32)
XC = np.ascontiguousarray(np.transpose(X, (0, 3, 1, 2)))
M8 = np.array([[0.913, -0.407, 1.329, 0.407, 0.913, -2.087, 0, 0],
               [1.311, 0.0, -2.537, 0.0, 0.723, 1.813, 0, 0]], dtype=np.float32)
START = np.array([[[0, 0], [10, 0], [0, 8], [10, 8]]], np.float32)
END = np.array([[[1, 0.5], [9, 1], [0.3, 7], [10, 8.5]]], np.float32)
FILL_MODES = ["constant", "nearest", "wrap", "mirror", "reflect"]


def _k(y):
    return np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)


def _close(ours, theirs, atol=1e-5):
    theirs = _k(theirs)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.data, theirs, rtol=1e-5, atol=atol)


def _keras_grad(fn, x, seed=0):
    """d Σ(fn(x)·r) / dx through Keras's torch backend, and the same r."""
    t = torch.tensor(x, requires_grad=True)
    out = fn(t)
    r = np.random.default_rng(seed).standard_normal(tuple(out.shape)).astype(x.dtype)
    (out * torch.tensor(r)).sum().backward()
    return t.grad.numpy(), r


def _our_grad(fn, x, r):
    t = Tensor(x, requires_grad=True)
    (fn(t) * r).sum().backward()
    return t.grad


def _grad_parity(ours, theirs, x, atol=1e-4):
    g_k, r = _keras_grad(theirs, x)
    g_a = _our_grad(ours, x, r)
    assert np.abs(g_k).max() > 0
    np.testing.assert_allclose(g_a, g_k, rtol=1e-4, atol=atol)


# ------------------------------------------------------------------ names
def test_names_are_keras_ops_image():
    import axone.compat as compat
    want = sorted(n for n in dir(keras.ops.image) if not n.startswith("_"))
    assert sorted(I.__all__) == want
    compat.install_keras_alias()
    try:
        import importlib
        kimg = importlib.import_module("keras.ops.image")
        for name in want:
            assert callable(getattr(kimg, name)), name
        assert kimg.rgb_to_hsv.__wrapped__ is I.rgb_to_hsv
    finally:
        compat.uninstall_keras_alias()


def test_symbolic_through_alias():
    import axone.compat as compat
    compat.install_keras_alias()
    try:
        import importlib
        k = importlib.import_module("keras")
        inp = k.Input((9, 11, 3))
        out = k.ops.image.resize(inp, (4, 6))
        model = k.Model(inp, out)
        np.testing.assert_allclose(model.predict(X, verbose=0), I.resize(X, (4, 6)).data,
                                   rtol=1e-6)
    finally:
        compat.uninstall_keras_alias()


# ----------------------------------------------------------------- resize
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("size", [(4, 5), (15, 20), (9, 7)])
def test_resize_matches_keras(interpolation, antialias, size):
    kw = dict(interpolation=interpolation, antialias=antialias)
    _close(I.resize(X, size, **kw), keras.ops.image.resize(X, size, **kw))


@pytest.mark.parametrize("kw", [dict(crop_to_aspect_ratio=True), dict(pad_to_aspect_ratio=True,
                                                                      fill_value=2.0)])
def test_resize_aspect_ratio_matches_keras(kw):
    for size in [(4, 8), (8, 3)]:
        _close(I.resize(X, size, **kw), keras.ops.image.resize(X, size, **kw))


def test_resize_channels_first_single_and_uint8():
    kw = dict(data_format="channels_first")
    _close(I.resize(XC, (4, 5), **kw), keras.ops.image.resize(XC, (4, 5), **kw))
    _close(I.resize(X[0], (5, 4)), keras.ops.image.resize(X[0], (5, 4)))
    xu = (X * 255).astype(np.uint8)
    ours = I.resize(xu, (4, 5), interpolation="bicubic")
    assert ours.dtype == np.uint8
    _close(ours, keras.ops.image.resize(xu, (4, 5), interpolation="bicubic"), atol=1)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("antialias", [False, True])
def test_resize_gradients(interpolation, antialias):
    x = rng.random((1, 5, 6, 2))
    kw = dict(interpolation=interpolation, antialias=antialias)
    assert check_gradients(lambda t: I.resize(t, (3, 8), **kw), x).max_error < 1e-8
    x32 = x.astype(np.float32)
    _grad_parity(lambda t: I.resize(t, (3, 8), **kw),
                 lambda t: keras.ops.image.resize(t, (3, 8), **kw), x32)


def test_resize_bad_input():
    with pytest.raises(ValueError, match="size"):
        I.resize(X, (4,))
    with pytest.raises(ValueError, match="size"):
        I.resize(X, (0, 4))
    with pytest.raises(ValueError, match="interpolation"):
        I.resize(X, (4, 4), interpolation="cubic")
    with pytest.raises(NotImplementedError, match="lanczos3"):
        I.resize(X, (4, 4), interpolation="lanczos3")
    with pytest.raises(ValueError, match="only one"):
        I.resize(X, (4, 4), crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="fill_mode"):
        I.resize(X, (4, 4), fill_mode="reflect")
    with pytest.raises(ValueError, match="rank"):
        I.resize(X[0, 0], (4, 4))
    with pytest.raises(ValueError, match="data_format"):
        I.resize(X, (4, 4), data_format="NHWC")


# ------------------------------------------------------------- warping
@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_transform_matches_keras(fill_mode, interpolation):
    _close(I.affine_transform(X, M8, interpolation, fill_mode, 0.25),
           keras.ops.image.affine_transform(X, M8, interpolation, fill_mode, 0.25))


def test_affine_transform_formats_and_single():
    kw = dict(data_format="channels_first")
    _close(I.affine_transform(XC, M8, **kw), keras.ops.image.affine_transform(XC, M8, **kw))
    _close(I.affine_transform(X[0], M8[0]), keras.ops.image.affine_transform(X[0], M8[0]))


def test_affine_transform_projective_terms():
    # c0, c1 divide: output (x, y) shows the input at ((a0 x + a1 y + a2)/k, (b0 x + b1 y + b2)/k)
    t = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.01, 0.02])
    img = rng.random((1, 6, 7, 1))
    y = I.affine_transform(img, t, "bilinear").data
    k = 0.01 * 3 + 0.02 * 2 + 1.0
    want = I.map_coordinates(img[0, :, :, 0], np.array([[2.0 / k], [3.0 / k]]), 1).data
    np.testing.assert_allclose(y[0, 2, 3, 0], want[0], rtol=1e-12)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_affine_transform_gradients(fill_mode):
    x = rng.random((2, 4, 5, 2))
    m = M8.astype(np.float64) * np.array([1, 1, 0.3, 1, 1, 0.3, 0, 0])
    for interp in ("bilinear", "nearest"):
        r = check_gradients(lambda t: I.affine_transform(t, m, interp, fill_mode, 0.5), x)
        assert r.max_error < 1e-8, (interp, r)
    _grad_parity(lambda t: I.affine_transform(t, m, "bilinear", fill_mode, 0.5),
                 lambda t: keras.ops.image.affine_transform(t, m.astype(np.float32), "bilinear",
                                                            fill_mode, 0.5),
                 x.astype(np.float32))


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("order", [0, 1])
def test_map_coordinates_matches_keras(fill_mode, order):
    inp = rng.random((5, 6, 4)).astype(np.float32)
    co = rng.uniform(-2, 7, (3, 4, 5)).astype(np.float32)
    _close(I.map_coordinates(inp, co, order, fill_mode, 0.5),
           keras.ops.image.map_coordinates(inp, co, order, fill_mode, 0.5))


def test_map_coordinates_gradients_and_list_coordinates():
    inp = rng.random((4, 5))
    co = [rng.uniform(-1, 5, (3, 2)), rng.uniform(-1, 6, (3, 2))]
    for mode in FILL_MODES:
        r = check_gradients(lambda t: I.map_coordinates(t, co, 1, mode, 0.3), inp)
        assert r.max_error < 1e-8, mode
    _grad_parity(lambda t: I.map_coordinates(t, np.stack(co), 1, "reflect"),
                 lambda t: keras.ops.image.map_coordinates(t, np.stack(co).astype(np.float32), 1,
                                                           "reflect"),
                 inp.astype(np.float32))


def test_map_coordinates_bad_input():
    inp = rng.random((4, 5))
    with pytest.raises(ValueError, match="rank of `inputs`"):
        I.map_coordinates(inp, rng.random((3, 2)), 1)
    with pytest.raises(ValueError, match="at least rank 2"):
        I.map_coordinates(inp, np.array([1.0, 2.0]), 1)
    with pytest.raises(NotImplementedError, match="order"):
        I.map_coordinates(inp, rng.random((2, 3)), 3)
    with pytest.raises(ValueError, match="fill_mode"):
        I.map_coordinates(inp, rng.random((2, 3)), 1, fill_mode="edge")


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_perspective_transform_matches_keras(interpolation):
    _close(I.perspective_transform(X, START, END, interpolation, 0.3),
           keras.ops.image.perspective_transform(X, START, END, interpolation, 0.3), atol=1e-4)
    kw = dict(data_format="channels_first")
    _close(I.perspective_transform(XC[0], START[0], END[0], interpolation, **kw),
           keras.ops.image.perspective_transform(XC[0], START[0], END[0], interpolation, **kw),
           atol=1e-4)


def test_perspective_transform_gradients_and_identity():
    x = rng.random((1, 5, 6, 2))
    s = np.array([[0, 0], [5, 0], [0, 4], [5, 4]], np.float64)
    e = s + np.array([[0.3, 0.2], [-0.4, 0.1], [0.2, -0.3], [-0.1, 0.4]])
    assert check_gradients(lambda t: I.perspective_transform(t, s, e), x).max_error < 1e-8
    np.testing.assert_allclose(I.perspective_transform(x, s, s).data, x, atol=1e-12)
    _grad_parity(lambda t: I.perspective_transform(t, s, e),
                 lambda t: keras.ops.image.perspective_transform(t, s.astype(np.float32),
                                                                 e.astype(np.float32)),
                 x.astype(np.float32))


def test_warp_bad_input():
    with pytest.raises(ValueError, match="interpolation"):
        I.affine_transform(X, M8, interpolation="bicubic")
    with pytest.raises(ValueError, match="fill_mode"):
        I.affine_transform(X, M8, fill_mode="edge")
    with pytest.raises(ValueError, match="8 values"):
        I.affine_transform(X, M8[:, :6])
    with pytest.raises(ValueError, match="transform rank"):
        I.affine_transform(X, M8[None])
    with pytest.raises(ValueError, match="3 transforms"):
        I.affine_transform(X, np.concatenate([M8, M8[:1]]))
    with pytest.raises(ValueError, match="start_points shape"):
        I.perspective_transform(X, START[:, :3], END[:, :3])
    with pytest.raises(ValueError, match="same shape"):
        I.perspective_transform(X, START, END[0])


def test_elastic_transform_seeded_and_identity():
    x = rng.random((2, 8, 9, 3)).astype(np.float32)
    a = I.elastic_transform(x, alpha=5.0, sigma=1.0, seed=3)
    b = I.elastic_transform(x, alpha=5.0, sigma=1.0, seed=3)
    c = I.elastic_transform(x, alpha=5.0, sigma=1.0, seed=4)
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a.data, b.data)
    assert np.abs(a.data - c.data).max() > 1e-3
    np.testing.assert_allclose(I.elastic_transform(x, alpha=0.0, sigma=1.0, seed=1).data, x,
                               atol=1e-6)
    # Keras's torch backend ignores the seed, but alpha = 0 must be the identity there too
    _close(I.elastic_transform(x, alpha=0.0, sigma=2.0),
           keras.ops.image.elastic_transform(x, alpha=0.0, sigma=2.0))
    xc = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
    yc = I.elastic_transform(xc, alpha=5.0, sigma=1.0, seed=3, data_format="channels_first")
    np.testing.assert_allclose(np.transpose(yc.data, (0, 2, 3, 1)), a.data, atol=1e-6)


def test_elastic_transform_is_the_documented_field():
    # the displacement is α · blur(σ·ε) with the gaussian_blur of size int(6σ) | 1
    x = rng.random((1, 7, 8, 1))
    g = np.random.default_rng([5, 0])
    ex, ey = g.standard_normal((2, 1, 7, 8))
    blur = lambda e: I.gaussian_blur(e[..., None] * 1.5, (9, 9), (1.5, 1.5)).data[..., 0]  # noqa
    dx, dy = blur(ex), blur(ey)
    ys, xs = np.meshgrid(np.arange(7.0), np.arange(8.0), indexing="ij")
    want = I.map_coordinates(x[0, :, :, 0], np.stack([ys + 2.0 * dy[0], xs + 2.0 * dx[0]]), 1,
                             "reflect").data
    got = I.elastic_transform(x, alpha=2.0, sigma=1.5, seed=5).data[0, :, :, 0]
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_elastic_transform_gradients():
    x = rng.random((1, 5, 6, 2))
    for mode in ("reflect", "constant", "mirror"):
        r = check_gradients(lambda t: I.elastic_transform(t, 3.0, 1.0, fill_mode=mode, seed=2), x)
        assert r.max_error < 1e-8, mode


# --------------------------------------------------------------- filters
@pytest.mark.parametrize("ks,sigma", [((3, 3), (1.0, 1.0)), ((5, 5), (1.5, 0.7)),
                                      ((3, 3), (0.5, 2.0))])
def test_gaussian_blur_matches_keras(ks, sigma):
    kw = dict(data_format="channels_last")
    _close(I.gaussian_blur(X, ks, sigma, **kw), keras.ops.image.gaussian_blur(X, ks, sigma, **kw))
    kw = dict(data_format="channels_first")
    _close(I.gaussian_blur(XC, ks, sigma, **kw), keras.ops.image.gaussian_blur(XC, ks, sigma, **kw))


def test_gaussian_blur_non_square_kernel_layout():
    # kernel_size[0] / sigma[0] act along the width, as every Keras backend builds the kernel
    img = np.zeros((1, 7, 7, 1))
    img[0, 3, 3, 0] = 1.0
    y = I.gaussian_blur(img, (5, 3), (1.0, 0.6)).data[0, :, :, 0]
    g = lambda n, s: np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / s) ** 2)  # noqa
    k = np.outer(g(3, 0.6) / g(3, 0.6).sum(), g(5, 1.0) / g(5, 1.0).sum())
    np.testing.assert_allclose(y[2:5, 1:6], k, atol=1e-12)
    assert np.abs(y).sum() == pytest.approx(1.0)


def test_gaussian_blur_gradients():
    x = rng.random((1, 5, 6, 2))
    assert check_gradients(lambda t: I.gaussian_blur(t, (3, 5), (0.8, 1.3)), x).max_error < 1e-8
    kw = dict(data_format="channels_last")
    _grad_parity(lambda t: I.gaussian_blur(t, (5, 5), (0.8, 1.3), **kw),
                 lambda t: keras.ops.image.gaussian_blur(t, (5, 5), (0.8, 1.3), **kw),
                 x.astype(np.float32))


def test_sobel_edges_matches_keras_and_gradients():
    _close(I.sobel_edges(X), keras.ops.image.sobel_edges(X))
    kw = dict(data_format="channels_first")
    _close(I.sobel_edges(XC, **kw), keras.ops.image.sobel_edges(XC, **kw))
    x = rng.random((1, 4, 5, 2))
    assert check_gradients(I.sobel_edges, x).max_error < 1e-8
    _grad_parity(I.sobel_edges, keras.ops.image.sobel_edges, x.astype(np.float32))
    with pytest.raises(ValueError, match="rank 4"):
        I.sobel_edges(X[0])


def test_ssim_matches_keras_and_gradients():
    a = rng.random((2, 16, 17, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    _close(I.ssim(a, b), keras.ops.image.ssim(a, b))
    kw = dict(max_val=2.0, filter_size=7, filter_sigma=1.0, k1=0.02, k2=0.05)
    _close(I.ssim(a[0], b[0], **kw), keras.ops.image.ssim(a[0], b[0], **kw))
    kc = dict(kw, data_format="channels_first")
    ac, bc = (np.ascontiguousarray(np.transpose(v, (0, 3, 1, 2))) for v in (a, b))
    _close(I.ssim(ac, bc, **kc), keras.ops.image.ssim(ac, bc, **kc))
    assert float(I.ssim(a, a).data.min()) == pytest.approx(1.0)
    x, y = rng.random((1, 6, 7, 2)), rng.random((1, 6, 7, 2))
    r = check_gradients(lambda s, t: I.ssim(s, t, filter_size=3), x, y)
    assert r.max_error < 1e-7
    b32 = b[:1, :9, :9]
    _grad_parity(lambda t: I.ssim(t, b32, filter_size=5),
                 lambda t: keras.ops.image.ssim(t, torch.tensor(b32), filter_size=5), a[:1, :9, :9])
    with pytest.raises(ValueError, match="same shape"):
        I.ssim(a, b[:, :15])


# --------------------------------------------------------------- patches
@pytest.mark.parametrize("kw", [dict(size=3), dict(size=(2, 3), strides=(1, 2)),
                                dict(size=2, padding="same", strides=1),
                                dict(size=(2, 2), dilation_rate=2, strides=1)])
def test_extract_patches_matches_keras(kw):
    _close(I.extract_patches(X, **kw), keras.ops.image.extract_patches(X, **kw))
    _close(I.extract_patches(X[0], **kw), keras.ops.image.extract_patches(X[0], **kw))


def test_extract_patches_channels_first_and_3d():
    kw = dict(data_format="channels_first")
    _close(I.extract_patches(XC, 3, **kw), keras.ops.image.extract_patches(XC, 3, **kw))
    v = rng.random((2, 6, 7, 8, 2)).astype(np.float32)
    _close(I.extract_patches_3d(v, (2, 3, 2)), keras.ops.image.extract_patches_3d(v, (2, 3, 2)))
    _close(I.extract_patches_3d(v, 2, strides=1, padding="same"),
           keras.ops.image.extract_patches_3d(v, 2, strides=1, padding="same"))
    _close(I.extract_patches(v[0], (2, 2, 2)), keras.ops.image.extract_patches(v[0], (2, 2, 2)))


def test_extract_patches_gradients():
    x = rng.random((1, 4, 5, 2))
    assert check_gradients(lambda t: I.extract_patches(t, 2, strides=1), x).max_error < 1e-8
    v = rng.random((1, 3, 4, 4, 1))
    assert check_gradients(lambda t: I.extract_patches_3d(t, 2), v).max_error < 1e-8
    _grad_parity(lambda t: I.extract_patches(t, (2, 3), strides=1),
                 lambda t: keras.ops.image.extract_patches(t, (2, 3), strides=1),
                 x.astype(np.float32))


def test_extract_patches_bad_input():
    with pytest.raises(TypeError, match="size"):
        I.extract_patches(X, "2")
    with pytest.raises(ValueError, match="length 2 or 3"):
        I.extract_patches(X, (2, 2, 2, 2))
    with pytest.raises(ValueError, match="padding"):
        I.extract_patches(X, 2, padding="full")
    with pytest.raises(ValueError, match="rank 4 or 5"):
        I.extract_patches_3d(X[0], 2)


# ------------------------------------------------------------ pad and crop
def test_pad_and_crop_match_keras():
    kw = dict(top_padding=1, left_padding=2, target_height=13, right_padding=1)
    _close(I.pad_images(X, **kw), keras.ops.image.pad_images(X, **kw))
    kw = dict(bottom_padding=1, top_padding=2, target_width=14, left_padding=1,
              data_format="channels_first")
    _close(I.pad_images(XC[0], **kw), keras.ops.image.pad_images(XC[0], **kw))
    kw = dict(top_cropping=1, left_cropping=2, target_height=5, right_cropping=1)
    _close(I.crop_images(X, **kw), keras.ops.image.crop_images(X, **kw))
    kw = dict(bottom_cropping=2, target_height=4, target_width=6, right_cropping=3,
              data_format="channels_first")
    _close(I.crop_images(XC, **kw), keras.ops.image.crop_images(XC, **kw))


def test_pad_and_crop_gradients():
    x = rng.random((1, 4, 5, 2))
    assert check_gradients(lambda t: I.pad_images(t, 1, 2, 0, 1), x).max_error < 1e-9
    assert check_gradients(lambda t: I.crop_images(t, 1, 2, target_height=2, target_width=2),
                           x).max_error < 1e-9


def test_pad_and_crop_bad_input():
    with pytest.raises(ValueError, match="exactly two"):
        I.pad_images(X, 1, 1, 1, 1, target_height=5)
    with pytest.raises(ValueError, match="exactly two"):
        I.crop_images(X, 1, None, 1, None)
    with pytest.raises(ValueError, match="top_padding"):
        I.pad_images(X, bottom_padding=1, target_height=5, left_padding=0, right_padding=0)
    with pytest.raises(ValueError, match="top_cropping"):
        I.crop_images(X, -1, 0, 0, 0)
    with pytest.raises(ValueError, match="does not fit|>= 0"):
        I.crop_images(X, 1, 0, target_height=20, right_cropping=0)


# ---------------------------------------------------- scale and translate
@pytest.mark.parametrize("method", ["linear", "bilinear", "cubic", "lanczos3", "lanczos5"])
@pytest.mark.parametrize("antialias", [True, False])
def test_scale_and_translate_matches_keras(method, antialias):
    s, t = np.array([0.6, 1.8], np.float32), np.array([0.5, -1.2], np.float32)
    _close(I.scale_and_translate(X, (2, 5, 20, 3), s, t, (1, 2), method, antialias),
           keras.ops.image.scale_and_translate(X, (2, 5, 20, 3), s, t, (1, 2), method, antialias))


def test_scale_and_translate_gradients_and_bad_input():
    x = rng.random((1, 4, 5, 2))
    r = check_gradients(lambda v: I.scale_and_translate(v, (1, 6, 3, 2), [1.5, 0.6], [0.2, 0.0],
                                                        (1, 2), "cubic"), x)
    assert r.max_error < 1e-8
    with pytest.raises(ValueError, match="method"):
        I.scale_and_translate(X, (2, 5, 5, 3), [1, 1], [0, 0], (1, 2), "area")
    with pytest.raises(ValueError, match="one value per spatial dim"):
        I.scale_and_translate(X, (2, 5, 5, 3), [1], [0, 0], (1, 2), "linear")


def test_bad_images():
    with pytest.raises(TypeError, match="images"):
        I.gaussian_blur("image")
    with pytest.raises(ValueError, match="rank"):
        I.gaussian_blur(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="kernel_size"):
        I.gaussian_blur(X, (0, 3))
    with pytest.raises(ValueError, match="sigma"):
        I.gaussian_blur(X, (3, 3), (-1.0, 1.0))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_resizing_layer_antialias_matches_keras(interpolation):
    from axone import layers
    kw = dict(interpolation=interpolation, antialias=True)
    ours = layers.Resizing(4, 5, **kw)
    np.testing.assert_allclose(ours(X).data, _k(keras.layers.Resizing(4, 5, **kw)(X)),
                               rtol=1e-5, atol=1e-5)
    assert ours.get_config()["antialias"] is True
