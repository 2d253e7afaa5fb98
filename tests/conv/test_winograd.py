"""The Winograd F(2×2, 3×3) and F(4×4, 3×3) lowerings of 3×3, stride-1 convolutions
(axone/ops/winograd.py).

- The compiled transforms of both forms give their NumPy forms' bits (float32 and float64, odd and even sizes,
  pads 0–2, channel counts off the kernel's block of 16, one to three threads).
- Conv through the lowering agrees with the im2col lowering: in float64 to 1e-12 (output and the
  input, kernel and bias gradients, with and without the fused ReLU, in batch blocks too), in
  float32 within a stated bound of float32 rounding, and with PyTorch's conv2d; its gradients
  pass the float64 finite-difference check; every Conv-level test runs with each form.
- It is taken exactly where ``eligible`` says (3×3, strides and dilation 1, no groups, ≥ 16
  channels and filters), and Conv2D layers train through it as through im2col.
"""
import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from axone import Tensor, _native, ops
from axone.utils import check_gradients

C = importlib.import_module("axone.ops.conv")
W = importlib.import_module("axone.ops.winograd")
needs_kernels = pytest.mark.skipif(C._compiled.kernels("winograd_input") is None,
                                   reason="the compiled module is not built")


@pytest.fixture(autouse=True)
def _small_sizes_too(monkeypatch):
    """The cases here are small: the lowering is taken from one tile on (MIN_TILES has its own
    test)."""
    monkeypatch.setattr(W, "MIN_TILES", 1)
    monkeypatch.setattr(W, "MIN_TILES_SMALL", 1)
    C._FORWARD_PLANS.clear()
    yield
    C._FORWARD_PLANS.clear()


@pytest.fixture(params=[2, 4], ids=["F2x2", "F4x4"])
def tile(request, monkeypatch):
    """The Winograd form the Conv-level tests take: F(2×2, 3×3), or F(4×4, 3×3) from any output
    size on (its size rule has its own test)."""
    monkeypatch.setattr(W, "F4", request.param == 4)
    monkeypatch.setattr(W, "F4_MIN_OUT", 1)
    monkeypatch.setattr(W, "F4_MIN_TILES", 1)
    C._FORWARD_PLANS.clear()
    return request.param


# float32 error bound of each form, in units of float32 rounding of Σ|x|·|g| per output (worst
# seen: 1.1 for F(2×2), 10.6 for F(4×4), over these cases and 16×16×128 / 24×24×256 layers)
BOUND = {2: 8, 4: 24}


def _run(x, k, b, padding, relu=False, winograd=True, seed=5):
    """(y, dx, dk, db, tiles or None) of ops.conv with the Winograd lowering on or off."""
    before = W.ENABLED
    W.ENABLED = winograd
    C._FORWARD_PLANS.clear()
    try:
        xt, kt, bt = (Tensor(a, requires_grad=True) for a in (x, k, b))
        y = ops.conv(xt, kt, bt, 1, padding, relu=relu)
        used = y._ctx.wino
        gy = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
        y.backward(gy)
        return y.data, xt.grad, kt.grad, bt.grad, used
    finally:
        W.ENABLED = before
        C._FORWARD_PLANS.clear()


def _data(shape, c, f, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape + (c,)).astype(dtype)
    k = (rng.standard_normal((3, 3, c, f)) / np.sqrt(9 * c)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    return x, k, b


# ------------------------------------------------------------ compiled == NumPy forms
TRANSFORM_CASES = [((2, 5, 6), 3, 4, 1, 1), ((1, 4, 4), 16, 16, 0, 0), ((3, 7, 9), 17, 33, 1, 1),
                   ((2, 6, 5), 20, 5, 2, 2), ((1, 2, 3), 1, 1, 0, 1), ((4, 8, 8), 32, 48, 1, 0)]


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spatial,c,f,pt,pl", TRANSFORM_CASES)
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_compiled_transforms_are_the_numpy_forms_bitwise(monkeypatch, dtype, spatial, c, f, pt, pl,
                                                         parts):
    rng = np.random.default_rng(1)
    n, h, w = spatial
    pb, pr = pt, pl
    ho, wo = h + pt + pb - 2, w + pl + pr - 2
    th, tw = W.tiles((ho, wo))
    tiles = n * th * tw
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    m = rng.standard_normal((16, tiles, f)).astype(dtype)
    bias = rng.standard_normal(f).astype(dtype)
    gy = rng.standard_normal((n, ho, wo, f)).astype(dtype)
    dv = rng.standard_normal((16, tiles, c)).astype(dtype)
    gx0 = rng.standard_normal((n, h, w, c)).astype(dtype)
    monkeypatch.setattr(W, "_parts", lambda: parts)
    k = C._compiled.kernels("winograd_input")

    v = np.full((16, tiles, c), np.nan, dtype)
    k.winograd_input(x, v, pt, pl, th, tw, parts)
    assert np.array_equal(v, W._input_transform_np(x, pt, pl, th, tw, np.empty_like(v)))
    for b_, relu in ((None, False), (bias, False), (bias, True), (None, True)):
        y = np.full((n, ho, wo, f), np.nan, dtype)
        k.winograd_output(m, y, b_, relu, parts)
        ref = W._output_transform_np(m, np.empty_like(y), b_, relu)
        assert np.array_equal(y, ref)
    dm = np.full((16, tiles, f), np.nan, dtype)
    k.winograd_output_grad(gy, dm, parts)
    assert np.array_equal(dm, W._output_transform_grad_np(gy, np.empty_like(dm)))
    gx = gx0.copy()
    k.winograd_input_grad(dv, gx, pt, pl, th, tw, parts)
    assert np.array_equal(gx, W._input_transform_grad_np(dv, gx0.copy(), pt, pl, th, tw))


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spatial,c,f,pt,pl", TRANSFORM_CASES + [((2, 11, 13), 16, 24, 1, 1)])
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_compiled_f4_transforms_are_the_numpy_forms_bitwise(monkeypatch, dtype, spatial, c, f, pt,
                                                            pl, parts):
    rng = np.random.default_rng(1)
    n, h, w = spatial
    ho, wo = h + 2 * pt - 2, w + 2 * pl - 2
    th, tw = W.tiles((ho, wo), 4)
    tiles = n * th * tw
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    m = rng.standard_normal((36, tiles, f)).astype(dtype)
    bias = rng.standard_normal(f).astype(dtype)
    gy = rng.standard_normal((n, ho, wo, f)).astype(dtype)
    dv = rng.standard_normal((36, tiles, c)).astype(dtype)
    gx0 = rng.standard_normal((n, h, w, c)).astype(dtype)
    g = rng.standard_normal((3, 3, c, f)).astype(dtype)
    monkeypatch.setattr(W, "_parts", lambda: parts)
    k = C._compiled.kernels("winograd_input")

    v = np.full((36, tiles, c), np.nan, dtype)
    k.winograd_input(x, v, pt, pl, th, tw, parts, 4)
    assert np.array_equal(v, W._input_transform4_np(x, pt, pl, th, tw, np.empty_like(v)))
    for b_, relu in ((None, False), (bias, False), (bias, True), (None, True)):
        y = np.full((n, ho, wo, f), np.nan, dtype)
        k.winograd_output(m, y, b_, relu, parts, 4)
        assert np.array_equal(y, W._output_transform4_np(m, np.empty_like(y), b_, relu))
    dm = np.full((36, tiles, f), np.nan, dtype)
    k.winograd_output_grad(gy, dm, parts, 4)
    assert np.array_equal(dm, W._output_transform_grad4_np(gy, np.empty_like(dm)))
    gx = gx0.copy()
    k.winograd_input_grad(dv, gx, pt, pl, th, tw, parts, 4)
    assert np.array_equal(gx, W._input_transform_grad4_np(dv, gx0.copy(), pt, pl, th, tw))
    u = np.full((36, c, f), np.nan, dtype)
    k.winograd_kernel(g, u, parts, 4)
    assert np.array_equal(u, W._kernel_transform4_np(g))


@needs_kernels
def test_the_compiled_transforms_refuse_another_tile_size():
    k = C._compiled.kernels("winograd_input")
    x = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(ValueError, match="m 2 or 4"):
        k.winograd_input(x, np.zeros((25, 1, 2), np.float32), 0, 0, 1, 1, 1, 3)
    with pytest.raises(ValueError, match="m 2 or 4"):
        k.winograd_kernel(np.zeros((3, 3, 2, 2), np.float32), np.zeros((36, 2, 2), np.float32), 1, 5)
    with pytest.raises(ValueError):             # V shaped for F(2×2) handed to F(4×4)
        k.winograd_input(x, np.zeros((16, 1, 2), np.float32), 0, 0, 1, 1, 1, 4)


def test_the_f4_numpy_forms_are_a_convolution():
    """F(4×4, 3×3) through the NumPy forms: Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A is the 4×4 correlation of
    a 6×6 tile with the 3×3 kernel (float64, 1e-13), and the forms are the matrices' products."""
    rng = np.random.default_rng(20)
    d = rng.standard_normal((1, 6, 6, 1))
    g = rng.standard_normal((3, 3, 1, 1))
    v = W._input_transform4_np(d, 0, 0, 1, 1, np.empty((36, 1, 1)))
    np.testing.assert_allclose(v.reshape(6, 6), W._BT4 @ d[0, :, :, 0] @ W._BT4.T, atol=1e-13)
    u = W._kernel_transform4_np(g)
    np.testing.assert_allclose(u.reshape(6, 6), W._G4 @ g[:, :, 0, 0] @ W._G4.T, atol=1e-13)
    y = W._output_transform4_np(v * u, np.empty((1, 4, 4, 1)), None, False)
    ref = np.array([[np.sum(d[0, i:i + 3, j:j + 3, 0] * g[:, :, 0, 0]) for j in range(4)]
                    for i in range(4)])
    np.testing.assert_allclose(y[0, :, :, 0], ref, rtol=1e-13, atol=1e-13)
    gy = rng.standard_normal((1, 4, 4, 1))
    dm = W._output_transform_grad4_np(gy, np.empty((36, 1, 1)))
    np.testing.assert_allclose(dm.reshape(6, 6), W._AT4.T @ gy[0, :, :, 0] @ W._AT4, atol=1e-13)
    dv = rng.standard_normal((36, 1, 1))
    gx = W._input_transform_grad4_np(dv, np.zeros((1, 6, 6, 1)), 0, 0, 1, 1)
    np.testing.assert_allclose(gx[0, :, :, 0], W._BT4.T @ dv.reshape(6, 6) @ W._BT4, atol=1e-13)
    du = rng.standard_normal((36, 2, 3))
    kg = rng.standard_normal((3, 3, 2, 3))
    assert np.isclose(np.sum(W.kernel_transform(kg, m=4) * du),
                      np.sum(kg * W.kernel_transform_grad(du, m=4)))


def test_the_numpy_forms_are_the_transform_matrices():
    """Bᵀ d B, Aᵀ m A and their adjoints, entry by entry, against the matrices themselves."""
    bt = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float)
    at = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 4, 1))
    v = W._input_transform_np(x, 0, 0, 1, 1, np.empty((16, 1, 1)))
    np.testing.assert_allclose(v.reshape(4, 4), bt @ x[0, :, :, 0] @ bt.T, atol=1e-15)
    m = rng.standard_normal((16, 1, 1))
    y = W._output_transform_np(m, np.empty((1, 2, 2, 1)), None, False)
    np.testing.assert_allclose(y[0, :, :, 0], at @ m.reshape(4, 4) @ at.T, atol=1e-15)
    g = rng.standard_normal((1, 2, 2, 1))
    dm = W._output_transform_grad_np(g, np.empty((16, 1, 1)))
    np.testing.assert_allclose(dm.reshape(4, 4), at.T @ g[0, :, :, 0] @ at, atol=1e-15)
    dv = rng.standard_normal((16, 1, 1))
    gx = W._input_transform_grad_np(dv, np.zeros((1, 4, 4, 1)), 0, 0, 1, 1)
    np.testing.assert_allclose(gx[0, :, :, 0], bt.T @ dv.reshape(4, 4) @ bt, atol=1e-15)
    # the kernel transform and its adjoint: <G g Gᵀ, dU> = <g, Gᵀ dU G>
    kg = rng.standard_normal((3, 3, 2, 3))
    du = rng.standard_normal((16, 2, 3))
    assert np.isclose(np.sum(W.kernel_transform(kg) * du), np.sum(kg * W.kernel_transform_grad(du)))


@needs_kernels
def test_the_one_tile_output_is_the_direct_convolution(tile):
    """A (tile+2)² input, 3×3 kernel: the tile×tile output by hand."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, tile + 2, tile + 2, 16))
    k = rng.standard_normal((3, 3, 16, 16))
    y, *_ , used = _run(x, k, np.zeros(16), "valid")
    assert used == (1, 1, tile)
    ref = np.array([[[np.einsum("abc,abcf->f", x[0, i:i + 3, j:j + 3], k) for j in range(tile)]
                     for i in range(tile)]])
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ against im2col and PyTorch
CONV_CASES = [((2, 7, 9), 16, 16, "same"), ((3, 8, 8), 32, 24, "valid"), ((1, 5, 6), 17, 19, "same"),
              ((2, 2, 3), 16, 16, "same"), ((4, 12, 10), 20, 40, "same"), ((2, 9, 4), 16, 17, "valid")]


@needs_kernels
@pytest.mark.parametrize("spatial,c,f,padding", CONV_CASES)
@pytest.mark.parametrize("relu", [False, True])
def test_winograd_matches_im2col_in_float64(tile, spatial, c, f, padding, relu):
    x, k, b = _data(spatial, c, f, np.float64)
    got = _run(x, k, b, padding, relu, winograd=True)
    ref = _run(x, k, b, padding, relu, winograd=False)
    assert got[4] is not None and got[4][2] == tile and ref[4] is None
    for a, r in zip(got[:4], ref[:4]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12 * np.max(np.abs(r)))


@needs_kernels
@pytest.mark.parametrize("spatial,c,f,padding", CONV_CASES)
def test_winograd_float32_error_is_a_few_roundings(tile, spatial, c, f, padding):
    """Against the float64 direct result: within BOUND[tile] units of float32 rounding of
    Σ|x|·|g| per output (8 for F(2×2), which the im2col product stays within too; 24 for
    F(4×4))."""
    x, k, b = _data(spatial, c, f, np.float32)
    y32, *_, used = _run(x, k, b, padding)
    assert used[2] == tile
    y64 = _run(x.astype(np.float64), k.astype(np.float64), b.astype(np.float64), padding,
               winograd=False)[0]
    scale = _run(np.abs(x).astype(np.float64), np.abs(k).astype(np.float64),
                 np.abs(b).astype(np.float64), padding, winograd=False)[0]
    assert np.all(np.abs(y32 - y64) <= BOUND[tile] * np.finfo(np.float32).eps * scale)


@needs_kernels
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_winograd_matches_pytorch(tile, padding):
    x, k, b = _data((3, 11, 10), 24, 32, np.float32, seed=4)
    y, dx, dk, db, used = _run(x, k, b, padding, relu=True)
    assert used is not None and used[2] == tile
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    kt = torch.tensor(k.transpose(3, 2, 0, 1), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    yt = torch.relu(F.conv2d(xt, kt, bt, padding=1 if padding == "same" else 0))
    gy = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(gy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dk, kt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-4, atol=1e-4)


@needs_kernels
def test_winograd_gradients_pass_the_finite_difference_check(tile):
    x, k, b = _data((2, 5, 4), 16, 16, np.float64, seed=6)
    before = W.ENABLED
    W.ENABLED = True
    C._FORWARD_PLANS.clear()
    try:
        xt, kt, bt = (Tensor(a, requires_grad=True) for a in (x, k, b))
        assert ops.conv(xt, kt, bt, 1, "same")._ctx.wino[2] == tile
        r = check_gradients(lambda a, kk, bb: ops.conv(a, kk, bb, 1, "same"), x, k, b,
                            names=["x", "kernel", "bias"])
        assert r.max_error < 1e-6, r
    finally:
        W.ENABLED = before
        C._FORWARD_PLANS.clear()


@needs_kernels
def test_batch_blocks_give_the_whole_nodes_results(monkeypatch, tile):
    """Split over batch blocks (each block a Winograd node of its own): the per-sample output
    and input gradient are the whole node's bits up to the BLAS kernel for the block's row count,
    the kernel gradient the block sums; in float64 all within 1e-12."""
    from axone.ops import _parallel
    x, k, b = _data((8, 12, 12), 32, 32, np.float64, seed=7)
    monkeypatch.setattr(_parallel, "batch_blocks", lambda n, work: None)
    whole = _run(x, k, b, "same", relu=True)
    monkeypatch.setattr(_parallel, "batch_blocks", lambda n, work: [(0, 3), (3, 5), (5, 8)])
    split = _run(x, k, b, "same", relu=True)
    assert whole[4][2] == tile and split[4] is None       # the split node's parts took it
    for a, r in zip(split[:4], whole[:4]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12 * np.max(np.abs(r)))


# ------------------------------------------------------------ where it is taken
@needs_kernels
@pytest.mark.parametrize("kshape,strides,dilation,groups,c,f,taken", [
    ((3, 3), 1, 1, 1, 16, 16, True), ((3, 3), 2, 1, 1, 32, 32, False),
    ((3, 3), 1, 2, 1, 32, 32, False), ((3, 3), 1, 1, 2, 32, 32, False),
    ((5, 5), 1, 1, 1, 32, 32, False), ((3, 3), 1, 1, 1, 8, 32, False),
    ((3, 3), 1, 1, 1, 32, 8, False), ((1, 3), 1, 1, 1, 32, 32, False)])
def test_the_lowering_is_taken_where_eligible(kshape, strides, dilation, groups, c, f, taken):
    rng = np.random.default_rng(8)
    x = Tensor(rng.standard_normal((2, 10, 10, c)).astype(np.float32))
    k = Tensor(rng.standard_normal(kshape + (c // groups, f)).astype(np.float32), requires_grad=True)
    y = ops.conv(x, k, None, strides, "same" if strides == 1 else "valid", dilation, groups)
    assert (y._ctx.wino is not None) == taken
    assert not W.eligible((2, 10, 10, 16), (3, 3, 16, 16), (1, 1), (1, 1), ((3, 3), (1, 1)), 1,
                          np.float32)                     # pads beyond 2
    assert not W.eligible((2, 2, 2, 16), (3, 3, 16, 16), (1, 1), (1, 1), ((0, 0), (0, 0)), 1,
                          np.float32)                     # no whole output tile
    assert not W.eligible((2, 8, 8, 16), (3, 3, 16, 16), (1, 1), (1, 1), ((1, 1), (1, 1)), 1,
                          np.float16)


@needs_kernels
def test_a_conv2d_model_trains_the_same_through_either_lowering(tile):
    """Conv2D(32, 3, same, relu) twice in a float64 model: fit's losses and weights through the
    Winograd lowering are im2col's to 1e-9."""
    import axone
    from axone import layers
    rng = np.random.default_rng(9)
    x = rng.standard_normal((16, 10, 10, 16))
    y = np.eye(3)[rng.integers(0, 3, 16)]
    results = []
    for on in (True, False):
        W.ENABLED = on
        C._FORWARD_PLANS.clear()
        try:
            axone.utils.set_random_seed(0)
            model = axone.Sequential([layers.InputLayer(input_shape=(10, 10, 16)),
                                      layers.Conv2D(32, 3, padding="same", activation="relu",
                                                    dtype="float64"),
                                      layers.Conv2D(16, 3, padding="same", activation="relu",
                                                    dtype="float64"),
                                      layers.GlobalAveragePooling2D(dtype="float64"),
                                      layers.Dense(3, activation="softmax", dtype="float64")])
            model.compile(loss="categorical_crossentropy", optimizer="adam")
            h = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
            results.append((h.history["loss"], model.get_weights()))
        finally:
            W.ENABLED = True
            C._FORWARD_PLANS.clear()
    (la, wa), (lb, wb) = results
    np.testing.assert_allclose(la, lb, rtol=1e-9)
    for a, b in zip(wa, wb):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@needs_kernels
def test_without_a_kernel_gradient_the_forward_runs_in_sample_runs(monkeypatch, tile):
    """A frozen kernel (or inference): V is not kept, the forward runs over runs of samples
    (_WINO_CHUNK forced to one sample's worth here) and gives the whole batch's output; the
    input gradient still follows (from U and dM alone)."""
    x, k, b = _data((5, 9, 8), 16, 24, np.float64, seed=10)
    ref = _run(x, k, b, "same", relu=True)
    monkeypatch.setattr(C, "_WINO_CHUNK", 1)
    C._FORWARD_PLANS.clear()
    xt = Tensor(x, requires_grad=True)
    y = ops.conv(xt, Tensor(k), Tensor(b), 1, "same", relu=True)
    assert y._ctx.wino[2] == tile and y._ctx.wv is None          # V not kept
    y.backward(np.random.default_rng(5).standard_normal(y.shape))
    np.testing.assert_allclose(y.data, ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xt.grad, ref[1], rtol=1e-12, atol=1e-12)
    with_grad = ops.conv(Tensor(x), Tensor(k, requires_grad=True), Tensor(b), 1, "same")
    assert with_grad._ctx.wv is not None                          # kept for dL/dK


@needs_kernels
def test_few_tiles_keep_the_im2col_lowering(monkeypatch):
    """Below MIN_TILES 2×2 output tiles over the batch the node keeps im2col (the kernel
    transform and 16 short products would cost more than they save)."""
    monkeypatch.setattr(W, "MIN_TILES", 512)
    C._FORWARD_PLANS.clear()
    rng = np.random.default_rng(11)
    k = Tensor(rng.standard_normal((3, 3, 64, 512)).astype(np.float32), requires_grad=True)
    few = ops.conv(Tensor(rng.standard_normal((1, 14, 14, 64)).astype(np.float32)), k, None, 1,
                   "same")                                          # 49 tiles
    many = ops.conv(Tensor(rng.standard_normal((11, 14, 14, 64)).astype(np.float32)), k, None, 1,
                    "same")                                         # 539 tiles
    assert few._ctx.wino is None and many._ctx.wino is not None


@needs_kernels
def test_a_small_kernel_takes_the_lowering_from_fewer_tiles(monkeypatch):
    """A kernel of at most SMALL_KERNEL C·F entries takes the lowering from MIN_TILES_SMALL
    tiles (its transform stays in cache); a larger one from MIN_TILES."""
    monkeypatch.setattr(W, "MIN_TILES", 32)
    monkeypatch.setattr(W, "MIN_TILES_SMALL", 4)
    C._FORWARD_PLANS.clear()
    rng = np.random.default_rng(12)
    x = Tensor(rng.standard_normal((1, 8, 8, 64)).astype(np.float32))          # 16 tiles
    small = ops.conv(x, Tensor(rng.standard_normal((3, 3, 64, 64)).astype(np.float32),
                               requires_grad=True), None, 1, "same")
    large = ops.conv(x, Tensor(rng.standard_normal((3, 3, 64, 512)).astype(np.float32),
                               requires_grad=True), None, 1, "same")
    assert small._ctx.wino is not None and large._ctx.wino is None
    tiny = ops.conv(Tensor(rng.standard_normal((1, 4, 4, 64)).astype(np.float32)),
                    Tensor(rng.standard_normal((3, 3, 64, 64)).astype(np.float32),
                           requires_grad=True), None, 1, "valid")               # 1 tile
    assert tiny._ctx.wino is None


@needs_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c,f", [(16, 16), (17, 35), (64, 130), (3, 70)])
def test_compiled_kernel_transform_gives_the_numpy_bits(dtype, c, f, monkeypatch):
    """U = G g Gᵀ in one compiled pass (winograd_kernel, runs of input channels on 1–3 threads)
    gives the NumPy form's bits, into a given array too."""
    g = np.random.default_rng(c * f).standard_normal((3, 3, c, f)).astype(dtype)
    want = W._kernel_transform_np(g)
    for threads in (1, 2, 3):
        prev = _native.set_num_threads(threads)
        try:
            np.testing.assert_array_equal(W.kernel_transform(g), want)
            out = np.full((16, c, f), np.nan, dtype)
            assert W.kernel_transform(g, out) is out
            np.testing.assert_array_equal(out, want)
        finally:
            _native.set_num_threads(prev)


@needs_kernels
def test_the_larger_tiles_are_taken_from_their_size_rule():
    """F(4×4, 3×3) from an output of F4_MIN_OUT on a side and F4_MIN_TILES 4×4 tiles over the
    batch (and F4 on); F(2×2, 3×3) below."""
    assert (W.F4_MIN_OUT, W.F4_MIN_TILES) == (8, 64)
    same = ((1, 1), (1, 1))
    assert W.tile_size((16, 48, 48, 128), (3, 3, 128, 128), same) == 4
    assert W.tile_size((16, 7, 7, 512), (3, 3, 512, 512), same) == 2        # 7×7 output
    assert W.tile_size((1, 14, 14, 256), (3, 3, 256, 256), same) == 2       # 16 tiles
    assert W.tile_size((4, 16, 16, 64), (3, 3, 64, 64), same) == 4          # 64 tiles
    assert W.tile_size((3, 16, 16, 64), (3, 3, 64, 64), ((0, 0), (0, 0))) == 2   # 48 tiles
    C._FORWARD_PLANS.clear()
    rng = np.random.default_rng(21)
    k = Tensor(rng.standard_normal((3, 3, 32, 32)).astype(np.float32), requires_grad=True)
    y = ops.conv(Tensor(rng.standard_normal((8, 16, 16, 32)).astype(np.float32)), k, None, 1,
                 "same")
    assert y._ctx.wino[2] == 4
    before = W.F4
    W.F4 = False
    C._FORWARD_PLANS.clear()
    try:
        y = ops.conv(Tensor(rng.standard_normal((8, 16, 16, 32)).astype(np.float32)), k, None, 1,
                     "same")
        assert y._ctx.wino[2] == 2
    finally:
        W.F4 = before
        C._FORWARD_PLANS.clear()


def test_the_forms_can_be_chosen_and_a_bad_choice_is_refused(monkeypatch):
    """set_forms / AXONE_WINOGRAD: "0" im2col everywhere, "2" F(2×2) alone, "4" both; anything
    else a ValueError naming the choices (at import: a warning, the default kept)."""
    import subprocess
    import sys
    monkeypatch.setattr(W, "ENABLED", W.ENABLED)
    monkeypatch.setattr(W, "F4", W.F4)
    rng = np.random.default_rng(22)
    x = rng.standard_normal((8, 16, 16, 32)).astype(np.float32)
    k = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    taken = {}
    for forms in ("0", "2", "4"):
        W.set_forms(forms)
        ctx = ops.conv(Tensor(x), Tensor(k, requires_grad=True), None, 1, "same")._ctx
        taken[forms] = None if ctx.wino is None else ctx.wino[2]
    assert taken == {"0": None, "2": 2, "4": 4}
    with pytest.raises(ValueError, match="'0', '2' or '4'.*'3'"):
        W.set_forms("3")
    code = ("import warnings; warnings.simplefilter('error');"
            "import axone.ops.winograd")
    import os
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, AXONE_WINOGRAD="fast"), timeout=120)
    assert bad.returncode != 0 and "AXONE_WINOGRAD is ignored" in bad.stderr
    two = subprocess.run([sys.executable, "-c", "import axone.ops.winograd as w; "
                          "print(w.ENABLED, w.F4)"], capture_output=True, text=True,
                         env=dict(os.environ, AXONE_WINOGRAD="2"), timeout=120)
    assert two.stdout.split() == ["True", "False"], two.stderr
