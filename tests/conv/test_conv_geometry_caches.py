"""The per-geometry caches of ``axone.ops.conv`` (normalised arguments, Conv's forward plans,
the banded matrix's layouts, the compiled pooling's plans) hold pure functions of shapes,
strides, dtypes and padding, never of the values:

- a kernel, bias or input changed in place between calls gives the new result (the banded
  matrix is built from the kernel on every call);
- one-sample and small convolutions match a NumPy reference (float64: output and the input,
  kernel and bias gradients) over strides, dilation, padding, no bias and non-contiguous
  inputs and kernels; the banded matrix equals its definition entry for entry;
- bad arguments raise the same errors every time (nothing is cached for them), arguments given
  as lists (unhashable) still work, and the caches stay bounded.
"""
import importlib
import itertools

import numpy as np
import pytest

import axone
from axone import Tensor, layers, ops
from axone.autograd.function import no_grad
from axone.ops.conv import Pool

C = importlib.import_module("axone.ops.conv")   # the module (axone.ops.conv is also a function)


def _reference(x, k, b, strides, dilation, pads):
    """y[n, i, j, f] = Σ_{a, b, c} xpad[n, i·s + a·d, j·s + b·d, c] · K[a, b, c, f] + bias[f]."""
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)])
    kh, kw = k.shape[:2]
    oh = (xp.shape[1] - (kh - 1) * dilation[0] - 1) // strides[0] + 1
    ow = (xp.shape[2] - (kw - 1) * dilation[1] - 1) // strides[1] + 1
    y = np.zeros((x.shape[0], oh, ow, k.shape[-1]))
    for a, bb in itertools.product(range(kh), range(kw)):
        r0, c0 = a * dilation[0], bb * dilation[1]
        win = xp[:, r0:r0 + strides[0] * (oh - 1) + 1:strides[0],
                 c0:c0 + strides[1] * (ow - 1) + 1:strides[1]]
        y += win @ k[a, bb]
    return y if b is None else y + b


def _pads(x, k, strides, dilation, padding):
    if padding == "valid":
        return [(0, 0), (0, 0)]
    return [C.same_padding(n, kk, s, d) for n, kk, s, d in
            zip(x.shape[1:3], k.shape[:2], strides, dilation)]


CASES = [((1, 32, 32, 1), (5, 5, 1, 6), (1, 1), (1, 1), "valid"),        # LeNet's first layer
         ((1, 14, 14, 6), (5, 5, 6, 16), (1, 1), (1, 1), "valid"),       # and its second
         ((1, 9, 12, 2), (3, 3, 2, 4), (1, 1), (1, 1), "same"),
         ((2, 11, 13, 3), (3, 2, 3, 5), (2, 1), (1, 1), "same"),
         ((1, 12, 12, 2), (3, 3, 2, 3), (1, 1), (2, 2), "valid"),
         ((3, 10, 16, 1), (2, 4, 1, 8), (1, 2), (1, 1), "valid")]


@pytest.mark.parametrize("xs,ks,strides,dil,padding", CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_small_convolutions_match_the_numpy_reference(xs, ks, strides, dil, padding, bias, relu):
    rng = np.random.default_rng(sum(xs) + sum(ks))
    x, k = rng.standard_normal(xs), rng.standard_normal(ks)
    b = rng.standard_normal(ks[-1]) if bias else None
    xt, kt = Tensor(x, requires_grad=True), Tensor(k, requires_grad=True)
    bt = Tensor(b, requires_grad=True) if bias else None
    y = ops.conv(xt, kt, bt, strides, padding, dil, relu=relu)
    ref = _reference(x, k, b, strides, dil, _pads(x, k, strides, dil, padding))
    if relu:
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(y.data, ref, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    # the gradients of Σ g·y through the reference, by finite differences would be slow: the
    # reference is linear in x, K and bias, so its gradients are the adjoint sums
    gm = g * (ref > 0) if relu else g
    pads = _pads(x, k, strides, dil, padding)
    xp = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    gxp = np.zeros_like(xp)
    gk = np.zeros_like(k)
    oh, ow = ref.shape[1:3]
    for a, bb in itertools.product(range(k.shape[0]), range(k.shape[1])):
        r0, c0 = a * dil[0], bb * dil[1]
        sl = (slice(None), slice(r0, r0 + strides[0] * (oh - 1) + 1, strides[0]),
              slice(c0, c0 + strides[1] * (ow - 1) + 1, strides[1]))
        gk[a, bb] = np.einsum("nijc,nijf->cf", xp[sl], gm)
        gxp[sl] += gm @ k[a, bb].T
    gx = gxp[:, pads[0][0]:pads[0][0] + x.shape[1], pads[1][0]:pads[1][0] + x.shape[2]]
    np.testing.assert_allclose(xt.grad, gx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kt.grad, gk, rtol=1e-10, atol=1e-10)
    if bias:
        np.testing.assert_allclose(bt.grad, gm.sum(axis=(0, 1, 2)), rtol=1e-10, atol=1e-10)


def test_in_place_changes_of_kernel_bias_and_input_give_the_new_result():
    rng = np.random.default_rng(0)
    for xs, ks in [((1, 32, 32, 1), (5, 5, 1, 6)), ((1, 14, 14, 6), (5, 5, 6, 16))]:
        x = rng.standard_normal(xs).astype(np.float32)
        k = rng.standard_normal(ks).astype(np.float32)
        b = rng.standard_normal(ks[-1]).astype(np.float32)
        with no_grad():
            for _ in range(3):
                y = ops.conv(x, k, b, relu=True).data
                ref = np.maximum(_reference(x.astype(np.float64), k.astype(np.float64),
                                            b.astype(np.float64), (1, 1), (1, 1),
                                            [(0, 0), (0, 0)]), 0)
                np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
                k *= -1.5                  # in place: the same arrays, new values
                b += 1
                x[0, 0, 0, 0] += 3


def test_model_predict_follows_set_weights():
    axone.utils.set_random_seed(0)
    model = axone.Sequential([layers.InputLayer(input_shape=(32, 32, 1)),
                              layers.Conv2D(6, 5, activation="relu"), layers.MaxPooling2D(2),
                              layers.Conv2D(16, 5, activation="relu"), layers.MaxPooling2D(2),
                              layers.Flatten(), layers.Dense(10)])
    x = np.random.default_rng(1).standard_normal((1, 32, 32, 1)).astype(np.float32)
    first = model.predict(x, verbose=0)
    weights = model.get_weights()
    model.set_weights([w * 2 for w in weights])
    second = model.predict(x, verbose=0)
    assert not np.allclose(first, second)
    model.set_weights(weights)
    np.testing.assert_array_equal(model.predict(x, verbose=0), first)
    # the same values through a fresh kernel array (no cache keyed on array identity)
    conv = model.layers[0]
    conv.kernel.assign(np.array(weights[0]) * 2)
    assert not np.array_equal(model.predict(x, verbose=0), first)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ks,s,d,bj", [((5, 5, 1, 6), 1, 1, 4), ((5, 5, 6, 16), 1, 1, 2),
                                       ((3, 2, 3, 4), 2, 1, 3), ((3, 3, 2, 5), 1, 2, 6),
                                       ((4, 2, 3), 1, 1, 5), ((2, 2, 3, 2, 4), 2, 1, 2)])
def test_band_matrix_is_its_definition(dtype, ks, s, d, bj):
    rng = np.random.default_rng(3)
    k = rng.standard_normal(ks).astype(dtype)
    b = rng.standard_normal(ks[-1]).astype(dtype)
    nd = len(ks) - 2
    kw, c, f = ks[nd - 1], ks[-2], ks[-1]
    bw = (bj - 1) * s + (kw - 1) * d + 1
    want = np.zeros(ks[:nd - 1] + (bw, c, bj, f), dtype)
    for j, bb in itertools.product(range(bj), range(kw)):
        want[..., j * s + bb * d, :, j, :] = k[..., bb, :, :]
    want = want.reshape(-1, bj * f)
    strides, dil = (1,) * (nd - 1) + (s,), (1,) * (nd - 1) + (d,)
    got = C._band_matrix(k, strides, dil, bj)
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    with_bias = C._band_matrix(k, strides, dil, bj, b)
    np.testing.assert_array_equal(with_bias[:-1], want)
    np.testing.assert_array_equal(with_bias[-1], np.tile(b, bj))
    # a non-contiguous kernel (a strided view) gives the same matrix
    kt = np.ascontiguousarray(np.moveaxis(k, -1, 0))
    np.testing.assert_array_equal(C._band_matrix(np.moveaxis(kt, 0, -1), strides, dil, bj), want)


def test_non_contiguous_inputs_and_kernels():
    rng = np.random.default_rng(4)
    x = np.ascontiguousarray(rng.standard_normal((1, 3, 16, 16)).transpose(0, 2, 3, 1))
    xv = rng.standard_normal((1, 16, 16, 6))[..., ::2]            # strided channels
    k = np.moveaxis(rng.standard_normal((4, 3, 3, 3)), 0, -1)   # a transposed view
    b = rng.standard_normal(4)
    for xi in (x, xv, x.transpose(0, 2, 1, 3)):
        y = ops.conv(xi, k, b).data
        np.testing.assert_allclose(y, _reference(xi, k, b, (1, 1), (1, 1), [(0, 0), (0, 0)]),
                                   rtol=1e-12, atol=1e-12)


def test_bad_arguments_raise_every_time():
    x = np.zeros((1, 8, 8, 2), np.float32)
    k = np.zeros((3, 3, 2, 4), np.float32)
    ops.conv(x, k, None, 1, "valid")                 # a good call of the same shapes first
    for _ in range(2):
        with pytest.raises(ValueError, match="padding"):
            ops.conv(x, k, None, 1, "bogus")
        with pytest.raises(ValueError, match="strides"):
            ops.conv(x, k, None, 0, "valid")
        with pytest.raises(TypeError, match="strides"):
            ops.conv(x, k, None, 1.5, "valid")
        with pytest.raises(TypeError, match="dilation_rate"):
            ops.conv(x, k, None, 1, "valid", "ab")
        with pytest.raises(ValueError, match="groups"):
            ops.conv(x, k, None, 1, "valid", 1, 3)
        with pytest.raises(ValueError, match="smaller"):
            ops.conv(x[:, :2], k, None, 1, "valid")
        with pytest.raises(ValueError, match="pool_size"):
            ops.max_pool(x, 0)
        with pytest.raises(TypeError, match="pool_size"):
            ops.max_pool(x, 2.5)
        with pytest.raises(ValueError, match="padding"):
            ops.max_pool(x, 2, None, "full")
        with pytest.raises(ValueError, match="smaller"):
            ops.max_pool(x, 9)


def test_list_arguments_and_list_parameters():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 9, 9, 2))
    k = rng.standard_normal((3, 3, 2, 3))
    ref = ops.conv(x, k, None, (2, 1), "same", (1, 1)).data
    np.testing.assert_array_equal(ops.conv(x, k, None, [2, 1], "same", [1, 1]).data, ref)
    np.testing.assert_array_equal(ops.max_pool(x, [2, 2], [2, 2]).data, ops.max_pool(x, 2).data)
    # Pool applied directly with its padding as a list (not hashable) still runs
    y = Pool.apply(Tensor(x), kind="max", pool=(2, 2), strides=(2, 2), pads=[(0, 0), (0, 0)],
                   blocks=True)
    np.testing.assert_array_equal(y.data, ops.max_pool(x, 2).data)


def test_caches_stay_bounded():
    rng = np.random.default_rng(7)
    k = rng.standard_normal((2, 2, 1, 2)).astype(np.float32)
    for n in range(3, 3 + C._GEOMETRY_MAX + 20):
        x = rng.standard_normal((1, n, 4, 1)).astype(np.float32)
        ops.conv(x, k)
        ops.max_pool(x, 2)
    for cache in (C._CONV_ARGS, C._FORWARD_PLANS, C._BAND_LAYOUTS, C._POOL_ARGS, C._POOL_PLANS):
        assert len(cache) <= C._GEOMETRY_MAX
