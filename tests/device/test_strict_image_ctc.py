"""Every public op of axone.ops.ctc, axone.ops.image and axone.ops.image_color on device arrays
(the strict stand-in).

Each op runs twice on the same values: on host NumPy arrays and on ``StrictArray``s, which
refuse any NumPy call and any mixing with host arrays.  Forward results (their dtypes and
shapes included) and the gradients of each node's own ``backward`` must agree; an op that
reached for ``np.`` instead of the array module of its inputs fails with the StrictArray
TypeError naming the NumPy call.  Non-differentiable arguments (coordinates, labels and
lengths) are given as host arrays, or as device arrays in the rows marked so.
"""
import importlib

import numpy as np
import pytest

from axone import Tensor

import strict_xp
from strict_xp import StrictArray, from_strict, to_strict

I = importlib.import_module("axone.ops.image")
IC = importlib.import_module("axone.ops.image_color")
C = importlib.import_module("axone.ops.ctc")


@pytest.fixture(autouse=True, scope="module")
def _registered():
    strict_xp.register()
    yield
    strict_xp.unregister()


_r = np.random.default_rng(13)


def _u(*shape, dtype=np.float64):
    return _r.uniform(0.0, 1.0, size=shape).astype(dtype)


def _n(*shape, dtype=np.float64):
    return _r.normal(size=shape).astype(dtype)


X = _u(2, 6, 7, 3)                                   # a channels-last batch
XC = np.ascontiguousarray(np.transpose(X, (0, 3, 1, 2)))
U8 = (_u(2, 6, 7, 3) * 255).astype(np.uint8)
M8 = np.array([[1.1, 0.2, -0.7, -0.1, 0.9, 0.6, 0.01, -0.02],
               [0.9, -0.1, 0.4, 0.15, 1.05, -0.5, 0.0, 0.0]])
START = np.array([[[0, 0], [6, 0], [0, 5], [6, 5]],
                  [[0, 0], [6, 0], [0, 5], [6, 5]]], dtype=np.float64)
END = START + np.array([[[0.4, 0.3], [-0.5, 0.2], [0.3, -0.4], [-0.2, 0.5]],
                        [[-0.3, 0.1], [0.2, 0.4], [0.5, -0.2], [-0.4, -0.3]]])
COORDS = _r.uniform(-2.0, 8.0, (3, 4, 5))            # beyond the edges: every fill mode acts
VOL = _u(2, 4, 6, 5, 2)
FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")

# ------------------------------------------------------------------ image.py
IMAGE = {}
for _mode in FILL_MODES:
    for _order in (0, 1):
        IMAGE[f"map_coordinates_{_mode}_order{_order}"] = (
            lambda x, c, m=_mode, o=_order: I.map_coordinates(x, c, o, m, 0.5),
            [_u(6, 7, 2)], [COORDS])
    for _interp in ("bilinear", "nearest"):
        IMAGE[f"affine_transform_{_mode}_{_interp}"] = (
            lambda x, m=_mode, i=_interp: I.affine_transform(x, M8, i, m, 0.25), [X], [])
IMAGE.update({
    "map_coordinates_coordinate_list": (
        lambda x, a, b: I.map_coordinates(x, [a, b], 1, "reflect"), [_u(5, 6)],
        [_r.uniform(-1, 6, (3, 2)), _r.uniform(-1, 7, (3, 2))]),
    "map_coordinates_host_coordinates": (
        lambda x: I.map_coordinates(x, COORDS[:2, 0], 1, "constant", 0.3), [_u(6, 7)], []),
    "map_coordinates_uint8": (lambda x, c: I.map_coordinates(x, c, 1, "nearest"),
                              [U8[0, :, :, 0]], [COORDS[:2]]),
    "affine_transform_single_channels_first": (
        lambda x: I.affine_transform(x, M8[0], data_format="channels_first"), [XC[0]], []),
    "affine_transform_uint8": (lambda x: I.affine_transform(x, M8, fill_mode="reflect"), [U8], []),
    "affine_transform_device_transform": (
        lambda x, t: I.affine_transform(x, t, "bilinear", "wrap"), [X], [M8]),
    "perspective_transform": (lambda x: I.perspective_transform(x, START, END, fill_value=0.3),
                              [X], []),
    "perspective_transform_nearest_channels_first": (
        lambda x, s, e: I.perspective_transform(x, s, e, "nearest", data_format="channels_first"),
        [XC], [START, END]),
    "elastic_transform": (lambda x: I.elastic_transform(x, 5.0, 1.0, seed=3), [X], []),
    "elastic_transform_constant_nearest": (
        lambda x: I.elastic_transform(x, 4.0, 1.5, "nearest", "constant", 0.2, seed=7), [X], []),
    "elastic_transform_channels_first_uint8": (
        lambda x: I.elastic_transform(x, 3.0, 1.0, seed=2, data_format="channels_first"),
        [np.ascontiguousarray(np.transpose(U8, (0, 3, 1, 2)))], []),
    "gaussian_blur": (lambda x: I.gaussian_blur(x, (3, 5), (1.0, 0.7)), [X], []),
    "gaussian_blur_single_channels_first": (
        lambda x: I.gaussian_blur(x, 3, 1.2, data_format="channels_first"), [XC[0]], []),
    "gaussian_blur_uint8": (lambda x: I.gaussian_blur(x), [U8], []),
    "sobel_edges": (I.sobel_edges, [X], []),
    "sobel_edges_channels_first": (lambda x: I.sobel_edges(x, data_format="channels_first"),
                                   [XC], []),
    "ssim": (lambda a, b: I.ssim(a, b, filter_size=3), [X, np.clip(X + _n(*X.shape) * 0.1, 0, 1)],
             []),
    "ssim_single_channels_first": (
        lambda a, b: I.ssim(a, b, filter_size=5, filter_sigma=1.0, data_format="channels_first"),
        [XC[0], XC[1]], []),
    "extract_patches": (lambda x: I.extract_patches(x, 2), [X], []),
    "extract_patches_same_strided_dilated": (
        lambda x: I.extract_patches(x, (2, 3), strides=(1, 2), dilation_rate=1, padding="same"),
        [X], []),
    "extract_patches_dilated": (lambda x: I.extract_patches(x, 2, strides=1, dilation_rate=2),
                                [X], []),
    "extract_patches_single_channels_first": (
        lambda x: I.extract_patches(x, 3, data_format="channels_first"), [XC[0]], []),
    "extract_patches_uint8": (lambda x: I.extract_patches(x, 2), [U8], []),
    "extract_patches_3d": (lambda x: I.extract_patches_3d(x, (2, 2, 2)), [VOL], []),
    "extract_patches_3d_from_extract_patches": (
        lambda x: I.extract_patches(x, (2, 3, 2), strides=1, padding="same"), [VOL[0]], []),
    "pad_images": (lambda x: I.pad_images(x, 1, 2, target_height=9, target_width=10), [X], []),
    "pad_images_channels_first": (
        lambda x: I.pad_images(x, 0, 1, 2, 3, data_format="channels_first"), [XC], []),
    "crop_images": (lambda x: I.crop_images(x, 1, 2, target_height=4, target_width=3), [X], []),
    "crop_images_single_channels_first": (
        lambda x: I.crop_images(x, 1, 1, 1, 2, data_format="channels_first"), [XC[0]], []),
    "scale_and_translate_uint8": (
        lambda x: I.scale_and_translate(x, (2, 9, 4, 3), [1.5, 0.6], [0.2, 0.0], (1, 2),
                                        "linear"), [U8], []),
})
for _interp in ("bilinear", "nearest", "bicubic"):
    IMAGE[f"resize_{_interp}"] = (lambda x, i=_interp: I.resize(x, (9, 4), i), [X], [])
    IMAGE[f"resize_{_interp}_antialias_down"] = (
        lambda x, i=_interp: I.resize(x, (3, 4), i, antialias=True), [X], [])
IMAGE.update({
    "resize_crop_to_aspect_ratio": (lambda x: I.resize(x, (4, 8), crop_to_aspect_ratio=True),
                                    [X], []),
    "resize_pad_to_aspect_ratio": (
        lambda x: I.resize(x, (4, 8), pad_to_aspect_ratio=True, fill_value=0.5), [X], []),
    "resize_single_channels_first": (
        lambda x: I.resize(x, (5, 9), data_format="channels_first"), [XC[0]], []),
    "resize_uint8": (lambda x: I.resize(x, (8, 5), "bicubic"), [U8], []),
})
for _method in ("linear", "cubic", "lanczos3", "lanczos5"):
    for _aa in (True, False):
        IMAGE[f"scale_and_translate_{_method}_antialias_{_aa}"] = (
            lambda x, m=_method, a=_aa: I.scale_and_translate(
                x, (2, 5, 11, 3), [0.6, 1.8], [0.5, -1.2], (1, 2), m, a), [X], [])

# ------------------------------------------------------------------ image_color.py
_HSV_EDGES = X.copy()
_HSV_EDGES[0, 0, 0] = (0.5, 0.5, 0.5)        # grey: Δ = 0
_HSV_EDGES[0, 0, 1] = (0.0, 0.0, 0.0)        # black: V = 0
_HSV_EDGES[0, 0, 2] = (0.7, 0.7, 0.2)        # ties of the maximum
_HSV_EDGES[0, 0, 3] = (0.2, 0.6, 0.6)
COLOR = {
    "rgb_to_grayscale": (IC.rgb_to_grayscale, [X], []),
    "rgb_to_grayscale_channels_first": (
        lambda x: IC.rgb_to_grayscale(x, data_format="channels_first"), [XC[0]], []),
    "rgb_to_grayscale_one_channel": (IC.rgb_to_grayscale, [X[..., :1]], []),
    "rgb_to_grayscale_uint8": (IC.rgb_to_grayscale, [U8], []),
    "rgb_to_hsv": (IC.rgb_to_hsv, [_HSV_EDGES], []),
    "rgb_to_hsv_channels_first_float32": (
        lambda x: IC.rgb_to_hsv(x, data_format="channels_first"), [XC[0].astype(np.float32)], []),
    "hsv_to_rgb": (IC.hsv_to_rgb, [X], []),
    "hsv_to_rgb_channels_first": (lambda x: IC.hsv_to_rgb(x, data_format="channels_first"),
                                  [XC], []),
    "image_rgb_to_hsv_reexported": (I.rgb_to_hsv, [X], []),
    "image_hsv_to_rgb_reexported": (I.hsv_to_rgb, [X], []),
    "image_rgb_to_grayscale_reexported": (I.rgb_to_grayscale, [X], []),
}

# ------------------------------------------------------------------ ctc.py
B, T_, K = 5, 9, 5
LOGITS = _n(B, T_, K) * 1.5
TARGET = np.array([[1, 2, 2, 3], [4, 1, 0, 0], [2, 0, 0, 0], [3, 3, 1, 0], [1, 2, 3, 4]])
TARGET_LEN = np.array([4, 2, 0, 3, 4])
OUT_LEN = np.array([9, 6, 3, 8, 2])          # the last one too short: +inf, zero gradient
CTC = {
    "ctc_loss": (lambda x: C.ctc_loss(TARGET, x, TARGET_LEN, OUT_LEN), [LOGITS], []),
    "ctc_loss_device_labels": (lambda x, t, tl, ol: C.ctc_loss(t, x, tl, ol, mask_index=0),
                               [LOGITS], [TARGET, TARGET_LEN, OUT_LEN]),
    "ctc_loss_blank_last_float32": (
        lambda x: C.ctc_loss(np.where(TARGET == 4, 0, TARGET), x, TARGET_LEN, OUT_LEN,
                             mask_index=K - 1), [LOGITS.astype(np.float32)], []),
    "ctc_decode_greedy": (lambda x: C.ctc_decode(x, OUT_LEN), [LOGITS], []),
    "ctc_decode_greedy_no_merge_device_lengths": (
        lambda x, n: C.ctc_decode(x, n, merge_repeated=False, mask_index=2), [LOGITS], [OUT_LEN]),
    "ctc_decode_beam_search": (
        lambda x: C.ctc_decode(x, OUT_LEN, "beam_search", beam_width=4, top_paths=2), [LOGITS],
        []),
    "ctc_decode_beam_search_float32_blank_last": (
        lambda x: C.ctc_decode(x, OUT_LEN, "beam_search", beam_width=3, top_paths=3,
                               mask_index=None), [LOGITS.astype(np.float32)], []),
}

TABLE = {**IMAGE, **COLOR, **CTC}


# ------------------------------------------------------------------ the two runs
def _walk(roots):
    """dL/d(leaf) for the (output, seed) pairs, by each node's own backward (no NumPy here)."""
    order, seen = [], set()

    def visit(fn):
        if fn in seen:
            return
        seen.add(fn)
        for t in fn.inputs:
            if t._ctx is not None:
                visit(t._ctx)
        order.append(fn)

    grads, leaves = {}, {}
    for t, seed in roots:
        if t._ctx is not None:
            visit(t._ctx)
            grads[t._ctx] = seed if t._ctx not in grads else grads[t._ctx] + seed
    for fn in reversed(order):
        g = grads.pop(fn, None)
        if g is None:
            continue
        for t, gi, need in zip(fn.inputs, fn.backward(g), fn.needs):
            if gi is None or not need:
                continue
            store = leaves if t._ctx is None else grads
            key = id(t) if t._ctx is None else t._ctx
            store[key] = gi if key not in store else store[key] + gi
    return leaves


def _run(fn, inputs, consts, device):
    move = to_strict if device else np.array
    leaves = [Tensor(move(a), requires_grad=a.dtype.kind == "f") for a in inputs]
    out = fn(*leaves, *[move(c) for c in consts])
    outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if o is not None]
    seed_rng = np.random.default_rng(3)
    roots = []
    for o in outs:
        if o.requires_grad and o.dtype.kind in "fc":
            roots.append((o, move(seed_rng.normal(size=o.shape).astype(o.dtype))))
    got = _walk(roots)
    return [o.data for o in outs], [got.get(id(t)) for t in leaves]


def _check(name, fn, inputs, consts):
    host_out, host_grads = _run(fn, inputs, consts, device=False)
    dev_out, dev_grads = _run(fn, inputs, consts, device=True)
    single = any(a.dtype == np.float32 for a in inputs)
    rtol, atol = (2e-5, 2e-6) if single else (1e-10, 1e-12)
    assert len(dev_out) == len(host_out)
    for i, (h, d) in enumerate(zip(host_out, dev_out)):
        assert type(d) is StrictArray, f"{name}: output {i} left the device ({type(d).__name__})"
        assert d.dtype == h.dtype and d.shape == h.shape, f"{name}: output {i}"
        if h.dtype.kind in "iub":
            np.testing.assert_array_equal(from_strict(d), h, err_msg=f"{name}: output {i}")
        else:
            np.testing.assert_allclose(from_strict(d), h, rtol=rtol, atol=atol,
                                       err_msg=f"{name}: output {i}")
    for i, (h, d) in enumerate(zip(host_grads, dev_grads)):
        assert (h is None) == (d is None), f"{name}: gradient {i} present on one side only"
        if h is not None:
            assert type(d) is StrictArray, f"{name}: gradient {i} left the device"
            assert d.dtype == h.dtype and d.shape == h.shape, f"{name}: gradient {i}"
            np.testing.assert_allclose(from_strict(d), h, rtol=rtol, atol=atol,
                                       err_msg=f"{name}: gradient {i}")
    return host_out, host_grads


@pytest.mark.parametrize("name", sorted(TABLE))
def test_op_on_device_arrays(name):
    fn, inputs, consts = TABLE[name]
    outs, grads = _check(name, fn, inputs, consts)
    if not name.startswith("ctc_decode"):
        # every float image of these ops gets a gradient
        assert all(g is not None for g, a in zip(grads, inputs) if a.dtype.kind == "f"), name


def test_every_public_op_is_covered():
    names = " ".join(sorted(TABLE))
    for module in (I, IC, C):
        for op in module.__all__:
            assert op in names, f"{module.__name__}.{op}"


def test_impossible_alignment_and_padding_on_the_device():
    loss = C.ctc_loss(TARGET, Tensor(to_strict(LOGITS), requires_grad=True), TARGET_LEN, OUT_LEN)
    assert np.isinf(from_strict(loss.data)[-1])
    d, s = C.ctc_decode(to_strict(LOGITS), OUT_LEN)
    assert type(d.data) is StrictArray and d.data.dtype == np.int32
    assert (from_strict(d.data)[0, 4, 2:] == -1).all()          # past its length: padding


def test_an_image_pipeline_backward_leaves_device_gradients():
    # resize → affine warp → grayscale → ssim against a blurred copy, one .backward()
    res = []
    for device in (False, True):
        move = to_strict if device else np.array
        x = Tensor(move(X), requires_grad=True)
        y = I.resize(x, (8, 8), "bicubic")
        y = I.affine_transform(y, M8, "bilinear", "reflect")
        g = IC.rgb_to_grayscale(y)
        loss = 1.0 - I.ssim(g, I.gaussian_blur(g, 3, 1.0), filter_size=3).sum()
        loss.backward()
        res.append((loss.data, x.grad))
    (lh, gh), (ld, gd) = res
    assert type(ld) is StrictArray and type(gd) is StrictArray
    np.testing.assert_allclose(from_strict(ld), lh, rtol=1e-10)
    np.testing.assert_allclose(from_strict(gd), gh, rtol=1e-9, atol=1e-12)


def test_bad_device_arguments_are_refused_as_on_the_host():
    with pytest.raises(ValueError, match="must be finite"):
        I.map_coordinates(to_strict(_u(4, 5)), to_strict(np.array([[np.nan], [1.0]])), 1)
    with pytest.raises(ValueError, match="first dim of `coordinates`"):
        I.map_coordinates(to_strict(_u(4, 5)), to_strict(COORDS), 1)
    with pytest.raises(ValueError, match="target_length"):
        C.ctc_loss(to_strict(TARGET), to_strict(LOGITS), to_strict(TARGET_LEN[:3]), OUT_LEN)
    with pytest.raises(TypeError, match="integers"):
        C.ctc_loss(to_strict(TARGET + 0.5), to_strict(LOGITS), TARGET_LEN, OUT_LEN)
    with pytest.raises(ValueError, match="8 values"):
        I.affine_transform(to_strict(X), to_strict(M8[:, :6]))
