"""Convolution and pooling parity: axone against PyTorch (float32 reference written here with
explicit padding) and against Keras 3 (PyTorch backend, same weights), forward output and the
gradients for the input, the kernel(s) and the bias, under a random upstream gradient G
(the scalar reduced is Σ G · y, so every output element's gradient is compared).

PyTorch reference conventions (channels-last ↔ channels-first):
  x (N, H, W, C) → x.movedim(-1, 1);  kernel (kh, kw, cin/groups, cout) → permute → (cout, cin/g, kh, kw);
  Keras "same" padding = total max((⌈n/s⌉ − 1)s + (k − 1)d + 1 − n, 0), the extra unit at the
  bottom/right; "causal" = (k − 1)d on the left only.

Then float64 finite-difference checks (``axone.utils.check_gradients``) of the ops themselves.
"""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import Tensor, ops
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"

RTOL, ATOL = 1e-4, 1e-5


def _rng(seed):
    return np.random.default_rng(seed)


def _normal(shape, seed, scale=1.0):
    return (_rng(seed).normal(size=shape) * scale).astype(np.float32)


def _close(actual, expected, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert actual.dtype == np.float32, f"{what}: dtype {actual.dtype}, expected float32"
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def _np(t):
    return t.detach().cpu().numpy()


# ------------------------------------------------------------------ reference helpers
def _same_pads(n, k, s, d):
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def torch_conv(x, k, b, strides, padding, dilation, groups):
    """Channels-last convolution with a Keras-layout kernel, computed by torch (autograd-able)."""
    nd = k.dim() - 2
    strides = (strides,) * nd if isinstance(strides, int) else tuple(strides)
    dilation = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    ksz = k.shape[:nd]
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        pads = [_same_pads(n, kk, s, d) for n, kk, s, d in zip(x.shape[1:1 + nd], ksz, strides, dilation)]
    elif padding == "causal":
        pads = [((ksz[0] - 1) * dilation[0], 0)]
    else:
        raise AssertionError(padding)
    xc = x.movedim(-1, 1)
    flat = []
    for lo, hi in reversed(pads):      # F.pad: last dimension first
        flat += [lo, hi]
    xc = F.pad(xc, flat)
    w = k.permute(nd + 1, nd, *range(nd))
    conv = F.conv1d if nd == 1 else F.conv2d
    y = conv(xc, w, b, stride=strides, padding=0, dilation=dilation, groups=groups)
    return y.movedim(1, -1)


def torch_forward_backward(fn, arrays, g):
    ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    (y * torch.tensor(g)).sum().backward()
    return _np(y), [None if t is None else _np(t.grad) for t in ts]


def keras_forward_backward(layer, x, g):
    tx = torch.tensor(x, requires_grad=True)
    y = layer(tx)
    (y * torch.tensor(g)).sum().backward()
    return _np(y), _np(tx.grad), [_np(w.value.grad) for w in layer.trainable_weights]


def axone_forward_backward(layer, x, g):
    ax = Tensor(x, requires_grad=True)
    y = layer(ax)
    assert isinstance(y, Tensor)
    (y * Tensor(g)).sum().backward()
    for w in layer.trainable_weights:
        assert w.grad is not None, f"{layer.name}: no gradient for {w.name}"
    return y.data, ax.grad, [w.grad for w in layer.trainable_weights]


def layer_pair(cls_name, input_shape, weights, **kw):
    """The same layer built in Keras and in axone, with the same weights."""
    kl = getattr(keras.layers, cls_name)(**kw)
    al = getattr(axone.layers, cls_name)(**kw)
    kl.build((None,) + tuple(input_shape[1:]))
    al.build((None,) + tuple(input_shape[1:]))
    if weights is not None:
        kshapes = [tuple(w.shape) for w in kl.get_weights()]
        ashapes = [tuple(w.shape) for w in al.get_weights()]
        assert ashapes == kshapes, f"{cls_name}: axone weight shapes {ashapes}, Keras {kshapes}"
        kl.set_weights(weights)
        al.set_weights(weights)
    return kl, al


def compare_with_keras(cls_name, x, weights, what, **kw):
    """Forward and all gradients of axone's layer against Keras's; returns axone's output and
    gradients so a caller can compare them with a torch reference as well."""
    kl, al = layer_pair(cls_name, x.shape, weights, **kw)
    ky_shape = tuple(kl.compute_output_shape(x.shape))
    ay_shape = tuple(al.compute_output_shape(x.shape))
    assert ay_shape == ky_shape, f"{what}: compute_output_shape {ay_shape}, Keras {ky_shape}"
    g = _normal(ky_shape, seed=999)
    ky, kgx, kgw = keras_forward_backward(kl, x, g)
    ay, agx, agw = axone_forward_backward(al, x, g)
    _close(ay, ky, f"{what}: output vs Keras")
    _close(agx, kgx, f"{what}: d/dx vs Keras")
    assert len(agw) == len(kgw)
    for w, a, k in zip(al.trainable_weights, agw, kgw):
        _close(a, k, f"{what}: d/d{w.name} vs Keras")
    return ay, agx, agw, g


# --------------------------------------------------------------------------- Conv2D
def _conv2d_cases():
    for s, p, d, gr in itertools.product((1, 2, 3), ("valid", "same"), (1, 2), (1, 2)):
        if s > 1 and d > 1:       # Keras forbids strides > 1 with dilation_rate > 1
            continue
        yield s, p, d, gr


@pytest.mark.parametrize("strides,padding,dilation,groups", list(_conv2d_cases()),
                         ids=lambda v: str(v))
def test_conv2d_matches_torch_and_keras(strides, padding, dilation, groups):
    # non-square input and an even kernel side: "same" is asymmetric (extra at bottom/right)
    x = _normal((2, 10, 9, 4), seed=1)
    kernel = _normal((4, 3, 4 // groups, 6), seed=2, scale=0.5)
    bias = _normal((6,), seed=3)
    what = f"Conv2D(s={strides}, {padding}, d={dilation}, groups={groups})"
    ay, agx, (agk, agb), g = compare_with_keras(
        "Conv2D", x, [kernel, bias], what, filters=6, kernel_size=(4, 3), strides=strides,
        padding=padding, dilation_rate=dilation, groups=groups)
    ty, (tgx, tgk, tgb) = torch_forward_backward(
        lambda a, k, b: torch_conv(a, k, b, strides, padding, dilation, groups), [x, kernel, bias], g)
    _close(ay, ty, f"{what}: output vs torch")
    _close(agx, tgx, f"{what}: d/dx vs torch")
    _close(agk, tgk, f"{what}: d/dkernel vs torch")
    _close(agb, tgb, f"{what}: d/dbias vs torch")
    # the expected output size of 004: valid ⌈(H − (k−1)d)/s⌉, same ⌈H/s⌉
    for n, k, got in zip((10, 9), (4, 3), ay.shape[1:3]):
        want = math.ceil(n / strides) if padding == "same" else math.ceil((n - (k - 1) * dilation) / strides)
        assert got == want, f"{what}: output size {got}, expected {want}"


def test_conv2d_same_puts_the_extra_padding_at_bottom_right():
    """An even kernel with stride 1 pads (0, 1): the corner output sees the first rows unpadded."""
    x = _normal((1, 4, 4, 1), seed=4)
    k = np.ones((2, 2, 1, 1), np.float32)
    y = ops.conv2d(x, k, padding="same").data[0, :, :, 0]
    xs = x[0, :, :, 0]
    assert y[0, 0] == pytest.approx(xs[:2, :2].sum(), rel=1e-6)
    assert y[-1, -1] == pytest.approx(xs[-1, -1], rel=1e-6)


def test_conv2d_no_bias_and_activation_match_keras():
    x = _normal((2, 7, 7, 3), seed=5)
    kernel = _normal((3, 3, 3, 5), seed=6, scale=0.5)
    compare_with_keras("Conv2D", x, [kernel], "Conv2D(use_bias=False, relu)", filters=5,
                       kernel_size=3, padding="same", use_bias=False, activation="relu")


# --------------------------------------------------------------------------- Conv1D
def _conv1d_cases():
    for p, s, d, gr in itertools.product(("valid", "same", "causal"), (1, 2), (1, 2), (1, 2)):
        if s > 1 and d > 1:
            continue
        yield p, s, d, gr


@pytest.mark.parametrize("padding,strides,dilation,groups", list(_conv1d_cases()), ids=lambda v: str(v))
def test_conv1d_matches_torch_and_keras(padding, strides, dilation, groups):
    x = _normal((3, 11, 4), seed=7)
    kernel = _normal((3, 4 // groups, 6), seed=8, scale=0.5)
    bias = _normal((6,), seed=9)
    what = f"Conv1D({padding}, s={strides}, d={dilation}, groups={groups})"
    ay, agx, (agk, agb), g = compare_with_keras(
        "Conv1D", x, [kernel, bias], what, filters=6, kernel_size=3, strides=strides,
        padding=padding, dilation_rate=dilation, groups=groups)
    ty, (tgx, tgk, tgb) = torch_forward_backward(
        lambda a, k, b: torch_conv(a, k, b, strides, padding, dilation, groups), [x, kernel, bias], g)
    _close(ay, ty, f"{what}: output vs torch")
    _close(agx, tgx, f"{what}: d/dx vs torch")
    _close(agk, tgk, f"{what}: d/dkernel vs torch")
    _close(agb, tgb, f"{what}: d/dbias vs torch")


def test_conv1d_causal_output_never_sees_the_future():
    x = _normal((1, 9, 2), seed=10)
    k = _normal((3, 2, 1), seed=11)
    y0 = ops.conv1d(x, k, padding="causal", dilation_rate=2).data
    x2 = x.copy()
    x2[0, 5:] += 10.0
    y1 = ops.conv1d(x2, k, padding="causal", dilation_rate=2).data
    np.testing.assert_array_equal(y0[0, :5], y1[0, :5])
    assert not np.allclose(y0[0, 5:], y1[0, 5:])


# ---------------------------------------------------------------- depthwise / separable
@pytest.mark.parametrize("mult", [1, 2])
@pytest.mark.parametrize("strides,padding,dilation", [(1, "valid", 1), (1, "same", 1), (2, "same", 1),
                                                      (2, "valid", 1), (1, "same", 2)])
def test_depthwise_conv2d_matches_torch_and_keras(mult, strides, padding, dilation):
    c = 3
    x = _normal((2, 9, 8, c), seed=12)
    kernel = _normal((3, 3, c, mult), seed=13, scale=0.5)
    bias = _normal((c * mult,), seed=14)
    what = f"DepthwiseConv2D(mult={mult}, s={strides}, {padding}, d={dilation})"
    ay, agx, (agk, agb), g = compare_with_keras(
        "DepthwiseConv2D", x, [kernel, bias], what, kernel_size=3, strides=strides, padding=padding,
        depth_multiplier=mult, dilation_rate=dilation)

    # torch: groups = C, output channel c·mult + j uses K[..., c, j]
    def ref(a, k, b):
        return torch_conv(a, k.reshape(3, 3, 1, c * mult), b, strides, padding, dilation, c)
    ty, (tgx, tgk, tgb) = torch_forward_backward(ref, [x, kernel, bias], g)
    _close(ay, ty, f"{what}: output vs torch")
    _close(agx, tgx, f"{what}: d/dx vs torch")
    _close(agk, tgk, f"{what}: d/dkernel vs torch")
    _close(agb, tgb, f"{what}: d/dbias vs torch")


@pytest.mark.parametrize("mult,strides,padding,dilation", [(1, 1, "valid", 1), (2, 1, "same", 1),
                                                           (1, 2, "same", 1), (2, 1, "valid", 2)])
def test_separable_conv2d_matches_keras(mult, strides, padding, dilation):
    c, f = 3, 5
    x = _normal((2, 9, 8, c), seed=15)
    weights = [_normal((3, 3, c, mult), seed=16, scale=0.5), _normal((1, 1, c * mult, f), seed=17, scale=0.5),
               _normal((f,), seed=18)]
    compare_with_keras("SeparableConv2D", x, weights,
                       f"SeparableConv2D(mult={mult}, s={strides}, {padding}, d={dilation})",
                       filters=f, kernel_size=3, strides=strides, padding=padding,
                       depth_multiplier=mult, dilation_rate=dilation)


# ------------------------------------------------------------------- Conv2DTranspose
def _deconv_cases():
    for s, p in itertools.product((1, 2, 3), ("valid", "same")):
        yield s, p, None, (3, 3)
        yield s, p, s - 1, (3, 3)           # output_padding must be < stride
        yield s, p, None, (2, 4)            # even / non-square kernel
    yield 2, "same", (1, 0), (3, 2)
    yield 2, "same", 1, (5, 1)              # the crop ignores nothing of output_padding (k//2 is wrong)
    yield 3, "same", (2, 1), (4, 5)
    yield 3, "valid", (2, 1), (4, 3)


@pytest.mark.parametrize("strides,padding,output_padding,ksize", list(_deconv_cases()), ids=lambda v: str(v))
def test_conv2d_transpose_matches_keras(strides, padding, output_padding, ksize):
    c, f = 3, 4
    x = _normal((2, 5, 4, c), seed=19)
    weights = [_normal(ksize + (f, c), seed=20, scale=0.5), _normal((f,), seed=21)]
    compare_with_keras("Conv2DTranspose", x, weights,
                       f"Conv2DTranspose(s={strides}, {padding}, op={output_padding}, k={ksize})",
                       filters=f, kernel_size=ksize, strides=strides, padding=padding,
                       output_padding=output_padding)


def test_conv2d_transpose_dilated_matches_keras():
    c, f = 2, 3
    x = _normal((2, 5, 6, c), seed=22)
    weights = [_normal((3, 3, f, c), seed=23, scale=0.5), _normal((f,), seed=24)]
    for padding in ("valid", "same"):
        compare_with_keras("Conv2DTranspose", x, weights, f"Conv2DTranspose(d=2, {padding})",
                           filters=f, kernel_size=3, padding=padding, dilation_rate=2)


def test_conv2d_transpose_is_the_adjoint_of_conv2d():
    """<conv(x), y> = <x, conv_transpose(y)> for the same kernel (valid, stride 2)."""
    x = _normal((1, 9, 9, 3), seed=25)
    k = _normal((3, 3, 3, 4), seed=26)     # conv: (kh, kw, in, out); transpose: (kh, kw, filters=in, in=out)
    y = ops.conv2d(x, k, strides=2).data
    r = _normal(y.shape, seed=27)
    xt = ops.conv_transpose(r, k, strides=2, padding="valid", output_padding=0).data
    assert xt.shape == x.shape
    assert float((y * r).sum()) == pytest.approx(float((x * xt).sum()), rel=1e-4)


# --------------------------------------------------------------------------- pooling
def _untied(shape, seed):
    """Random values with no two equal (no max-pooling ties)."""
    n = int(np.prod(shape))
    v = _rng(seed).permutation(n).astype(np.float32) / n * 4 - 2
    return v.reshape(shape)


def torch_pool_loops(x, kind, pool, strides, padding):
    """Pooling by explicit loops over the output positions (torch autograd for the gradient).
    "same" pads as Keras (extra at the end); padded entries never count (TF/JAX semantics:
    max over the real entries, mean over the real entries only)."""
    nd = x.dim() - 2
    sp = x.shape[1:1 + nd]
    pads = [_same_pads(n, p, s, 1) if padding == "same" else (0, 0) for n, p, s in zip(sp, pool, strides)]
    outs = [(n + lo + hi - p) // s + 1 for n, (lo, hi), p, s in zip(sp, pads, pool, strides)]
    vals = []
    for pos in itertools.product(*[range(o) for o in outs]):
        sl = [slice(None)]
        for i, p, s, (lo, _) in zip(pos, pool, strides, pads):
            a = i * s - lo
            sl.append(slice(max(a, 0), a + p))
        win = x[tuple(sl)]
        axes = tuple(range(1, 1 + nd))
        vals.append(win.amax(dim=axes) if kind == "max" else win.mean(dim=axes))
    return torch.stack(vals, dim=1).reshape((x.shape[0],) + tuple(outs) + (x.shape[-1],))


def _asymmetric_same(shape, pool, strides, padding):
    if padding != "same":
        return False
    return any(lo != hi for lo, hi in (_same_pads(n, p, s, 1) for n, p, s in zip(shape[1:-1], pool, strides)))


def _check_pooling(kind, x, pool, strides, padding):
    nd = x.ndim - 2
    pool_t = (pool,) * nd if isinstance(pool, int) else tuple(pool)
    strides_t = pool_t if strides is None else ((strides,) * nd if isinstance(strides, int) else tuple(strides))
    cls = ("MaxPooling" if kind == "max" else "AveragePooling") + f"{nd}D"
    what = f"{cls}({pool}, {strides}, {padding})"
    if kind == "avg" and _asymmetric_same(x.shape, pool_t, strides_t, padding):
        # Keras's torch backend pads an asymmetric "same" with *replicated* edge values and then
        # counts them in the mean (keras/src/backend/torch/nn.py, _apply_same_padding
        # mode="replicate"), unlike its TF and JAX backends, which average the real entries only.
        # axone follows TF/JAX; the torch loop reference below checks it.
        al = getattr(axone.layers, cls)(pool_size=pool, strides=strides, padding=padding)
        g = _normal(al.compute_output_shape(x.shape), seed=999)
        ay, agx, _ = axone_forward_backward(al, x, g)
    else:
        ay, agx, _, g = compare_with_keras(cls, x, None, what, pool_size=pool, strides=strides,
                                           padding=padding)
    ty, (tgx,) = torch_forward_backward(lambda t: torch_pool_loops(t, kind, pool_t, strides_t, padding), [x], g)
    _close(ay, ty, f"{what}: output vs torch loops")
    _close(agx, tgx, f"{what}: d/dx vs torch loops")


POOL2D = [((2, 2), None, "valid"), ((2, 2), None, "same"), ((3, 3), (2, 2), "valid"),
          ((3, 3), (2, 2), "same"), ((2, 2), (3, 3), "valid"), ((2, 2), (3, 3), "same"),
          ((3, 2), (1, 2), "same"), ((3, 2), (2, 1), "valid"), ((4, 3), (1, 1), "same")]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool,strides,padding", POOL2D, ids=lambda v: str(v))
def test_pooling2d_matches_keras_and_torch(kind, pool, strides, padding):
    _check_pooling(kind, _untied((2, 9, 8, 3), seed=28), pool, strides, padding)


POOL1D = [(2, None, "valid"), (2, None, "same"), (3, 2, "valid"), (3, 2, "same"), (2, 3, "same"),
          (4, 3, "valid"), (3, 3, "same"), (4, 1, "same")]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool,strides,padding", POOL1D, ids=lambda v: str(v))
def test_pooling1d_matches_keras_and_torch(kind, pool, strides, padding):
    _check_pooling(kind, _untied((3, 11, 4), seed=29), pool, strides, padding)


@pytest.mark.parametrize("kind", ["GlobalMaxPooling1D", "GlobalAveragePooling1D",
                                  "GlobalMaxPooling2D", "GlobalAveragePooling2D"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_matches_keras(kind, keepdims):
    shape = (3, 7, 4) if kind.endswith("1D") else (2, 5, 6, 4)
    x = _untied(shape, seed=30)
    ay, *_ = compare_with_keras(kind, x, None, f"{kind}(keepdims={keepdims})", keepdims=keepdims)
    want = (shape[0],) + ((1,) * (len(shape) - 2) if keepdims else ()) + (shape[-1],)
    assert ay.shape == want


def test_max_pool_gradient_goes_to_the_maximum_only():
    x = np.array([[1., 5.], [3., 2.]], np.float32).reshape(1, 2, 2, 1)
    t = Tensor(x, requires_grad=True)
    ops.max_pool(t, 2).sum().backward()
    np.testing.assert_array_equal(t.grad.reshape(2, 2), [[0, 1], [0, 0]])


@pytest.mark.parametrize("strides", [2, 1], ids=["disjoint", "overlapping"])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(strides):
    """Ties (as after a ReLU): the first maximum in row-major window order gets it all, as torch."""
    x = np.zeros((1, 4, 4, 2), np.float32)
    x[0, 1, 1, 1] = 3.0
    x[0, 0, 1, 1] = 3.0           # same window as (1, 1), earlier in row-major order
    t = Tensor(x, requires_grad=True)
    y = ops.max_pool(t, 2, strides)
    g = _normal(y.shape, seed=46)
    (y * Tensor(g)).sum().backward()
    tt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    ty = F.max_pool2d(tt, 2, strides)
    (ty * torch.tensor(g.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_array_equal(y.data, _np(ty).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(t.grad, _np(tt.grad).transpose(0, 2, 3, 1))
    if strides == 2:
        # channel 0 is all zeros: each window's gradient lands on its top-left entry only
        np.testing.assert_array_equal(t.grad[0, ::2, ::2, 0], g[0, :, :, 0])
        assert np.count_nonzero(t.grad[..., 0]) == 4


def test_max_pool_nan_propagates_and_takes_the_gradient():
    x = _untied((1, 4, 4, 1), seed=47)
    x[0, 2, 3, 0] = np.nan
    t = Tensor(x, requires_grad=True)
    y = ops.max_pool(t, 2)
    assert np.isnan(y.data[0, 1, 1, 0]) and not np.isnan(np.delete(y.data.ravel(), 3)).any()
    y.sum().backward()
    assert t.grad[0, 2, 3, 0] == 1 and t.grad[0, 2:, 2:, 0].sum() == 1


def test_average_pool_same_excludes_padding_from_the_count():
    x = np.ones((1, 3, 3, 1), np.float32)
    y = ops.average_pool(x, 2, strides=2, padding="same").data
    np.testing.assert_allclose(y, np.ones((1, 2, 2, 1)), rtol=0, atol=1e-7)


# ------------------------------------------------- float64 finite-difference checks
FD_TOL = 1e-6


def _fd(fn, *inputs, names=None):
    out = fn(*[Tensor(np.asarray(a, np.float64)) for a in inputs])
    assert out.dtype == np.float64, f"float64 inputs gave a {out.dtype} output"
    r = check_gradients(fn, *inputs, names=names)
    assert r.max_error < FD_TOL, f"max relative error {r.max_error:.3g} on {r.worst_input} ({r.errors})"
    for n, a in zip(names or [], r.analytic):
        assert a is not None and np.any(a != 0), f"no gradient reached {n}"
    return r


def _r(shape, seed):
    return _rng(seed).uniform(-1, 1, size=shape)


@pytest.mark.parametrize("strides,padding,dilation,groups", [
    (1, "valid", 1, 1), (2, "same", 1, 1), (1, "same", 2, 1), (3, "valid", 1, 2), (2, "same", 1, 2)])
def test_fd_conv2d(strides, padding, dilation, groups):
    _fd(lambda x, k, b: ops.conv(x, k, b, strides, padding, dilation, groups),
        _r((2, 6, 5, 4), 31), _r((3, 2, 4 // groups, 4), 32), _r((4,), 33), names=["x", "kernel", "bias"])


@pytest.mark.parametrize("padding,strides,dilation", [("valid", 2, 1), ("same", 1, 2), ("causal", 1, 3),
                                                      ("causal", 2, 1)])
def test_fd_conv1d(padding, strides, dilation):
    _fd(lambda x, k, b: ops.conv1d(x, k, b, strides, padding, dilation),
        _r((2, 9, 3), 34), _r((3, 3, 2), 35), _r((2,), 36), names=["x", "kernel", "bias"])


@pytest.mark.parametrize("pool,strides,padding", [(2, None, "valid"), (3, 2, "same"), (2, 3, "same"),
                                                  ((3, 2), (1, 2), "valid")])
def test_fd_max_pool(pool, strides, padding):
    # distinct values 0.01 apart: the ±1e-6 steps never change a window's maximum
    x = _rng(37).permutation(np.linspace(-1, 1, 2 * 7 * 6 * 2)).reshape(2, 7, 6, 2)
    _fd(lambda t: ops.max_pool(t, pool, strides, padding), x, names=["x"])


@pytest.mark.parametrize("pool,strides,padding", [(2, None, "valid"), (3, 2, "same"), (2, 3, "same"),
                                                  ((3, 2), (1, 2), "valid")])
def test_fd_average_pool(pool, strides, padding):
    _fd(lambda t: ops.average_pool(t, pool, strides, padding), _r((2, 7, 6, 2), 38), names=["x"])


def test_fd_pool_1d():
    x = _rng(39).permutation(np.linspace(-1, 1, 2 * 9 * 2)).reshape(2, 9, 2)
    _fd(lambda t: ops.max_pool(t, 3, 2, "same"), x, names=["x"])
    _fd(lambda t: ops.average_pool(t, 3, 2, "same"), x, names=["x"])


@pytest.mark.parametrize("strides,padding,output_padding,dilation", [
    (1, "valid", None, 1), (2, "same", None, 1), (3, "valid", 1, 1), (2, "same", 1, 1), (1, "same", None, 2)])
def test_fd_conv_transpose(strides, padding, output_padding, dilation):
    _fd(lambda x, k, b: ops.conv_transpose(x, k, b, strides, padding, output_padding, dilation),
        _r((2, 3, 4, 3), 40), _r((3, 2, 2, 3), 41), _r((2,), 42), names=["x", "kernel", "bias"])


@pytest.mark.parametrize("strides,padding,dilation", [(1, "valid", 1), (2, "same", 1), (1, "same", 2)])
def test_fd_depthwise_conv(strides, padding, dilation):
    _fd(lambda x, k, b: ops.depthwise_conv(x, k, b, strides, padding, dilation),
        _r((2, 6, 5, 3), 43), _r((3, 3, 3, 2), 44), _r((6,), 45), names=["x", "kernel", "bias"])
