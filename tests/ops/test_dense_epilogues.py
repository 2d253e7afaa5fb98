"""The Dense node's element-wise ends in the compiled module (bias + ReLU forward; ReLU mask and
Σ_batch for dL/db backward) give exactly the NumPy form's results, and the cross-entropy that
reads the logits under a softmax reuses that softmax's work with exactly the same results."""
import numpy as np
import pytest

from axone import Tensor, losses, ops
from axone.autograd import tensor as T
from axone.ops import nn as NN

K = NN._epilogue_kernels()


def _run(x, w, b, relu, g):
    xt = Tensor(x, requires_grad=True)
    wt = Tensor(w, requires_grad=True)
    bt = None if b is None else Tensor(b, requires_grad=True)
    y = ops.dense(xt, wt, bt, relu=relu)
    y.backward(g)
    return [y.data, xt.grad, wt.grad] + ([] if bt is None else [bt.grad])


@pytest.mark.skipif(K is None, reason="axone._kernels is not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", [(30, 4, 256), (7, 5, 3), (1, 6, 2), (9, 3, 1), (0, 4, 5),
                                   ((2, 6), 4, 8)])
def test_compiled_epilogues_equal_the_numpy_form_bitwise(dtype, relu, bias, shape, monkeypatch):
    rows, n_in, n_out = shape
    rows = rows if isinstance(rows, tuple) else (rows,)
    rng = np.random.default_rng(0)
    x = rng.normal(size=rows + (n_in,)).astype(dtype)
    w = rng.normal(size=(n_in, n_out)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype) if bias else None
    g = rng.normal(size=rows + (n_out,)).astype(dtype)
    if x.size and n_out > 1:
        x[0] = np.nan                                  # NaN rows through ReLU and its mask
    compiled = _run(x, w, b, relu, g)
    monkeypatch.setattr(NN, "_epilogue_kernels", lambda: None)
    reference = _run(x, w, b, relu, g)
    for i, (a, r) in enumerate(zip(compiled, reference)):
        assert a.dtype == r.dtype and a.shape == r.shape, i
        assert np.array_equal(a, r, equal_nan=True), i


@pytest.mark.skipif(K is None, reason="axone._kernels is not built")
def test_bias_gradient_goes_into_a_fresh_buffer():
    rng = np.random.default_rng(1)
    x = Tensor(rng.normal(size=(6, 3)).astype("float32"))
    w = Tensor(rng.normal(size=(3, 4)).astype("float32"), requires_grad=True)
    b = Tensor(np.zeros(4, "float32"), requires_grad=True)
    g = rng.normal(size=(6, 4)).astype("float32")
    ops.dense(x, w, b, relu=True).backward(g)
    ref = b.grad.copy()
    buf = np.full(4, 99.0, "float32")
    b.grad = buf
    T.mark_fresh_grads([b])
    ops.dense(x, w, b, relu=True).backward(g)
    T.finish_fresh_grads([b])
    assert b.grad is buf and np.array_equal(buf, ref)


def test_kernel_argument_checks():
    if K is None:
        pytest.skip("axone._kernels is not built")
    y = np.zeros((3, 4), "float32")
    with pytest.raises(ValueError, match="b has size"):
        K.dense_forward(y, np.zeros(5, "float32"), True)
    with pytest.raises(TypeError, match="b must be"):
        K.dense_forward(y, np.zeros(4, "float64"), True)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.dense_forward(np.zeros((3, 4), "int32"), None, True)
    with pytest.raises(ValueError, match="needs an output gm"):
        K.dense_backward(y, y, None, None)
    with pytest.raises(ValueError, match="gm has size"):
        K.dense_backward(y, y, np.zeros((3, 5), "float32"), None)
    ro = np.zeros((3, 4), "float32")
    ro.flags.writeable = False
    with pytest.raises((ValueError, BufferError)):
        K.dense_forward(ro, None, True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_crossentropy_after_softmax_reuses_it_with_identical_results(dtype, smoothing):
    rng = np.random.default_rng(2)
    z = rng.normal(scale=3, size=(17, 5)).astype(dtype)
    y = np.eye(5, dtype=dtype)[rng.integers(0, 5, 17)]
    za, zb = Tensor(z, requires_grad=True), Tensor(z, requires_grad=True)
    p = ops.softmax(za)
    via_softmax = losses.categorical_crossentropy(y, p, label_smoothing=smoothing)
    assert via_softmax._ctx.p is p._ctx.y               # the softmax's own result, reused
    assert via_softmax._ctx.softmax is None             # and the node let go of
    from_logits = losses.categorical_crossentropy(y, zb, from_logits=True,
                                                  label_smoothing=smoothing)
    assert np.array_equal(via_softmax.data, from_logits.data)
    ops.sum(via_softmax).backward()
    ops.sum(from_logits).backward()
    assert np.array_equal(za.grad, zb.grad)


# ------------------------------------------------------------ softmax and cross-entropy rows
def _softmax_ce(z, y, compiled, monkeypatch, from_softmax):
    from axone.ops import _compiled
    if not compiled:
        monkeypatch.setattr(_compiled, "kernels", lambda name: None)
    zt = Tensor(z, requires_grad=True)
    yt = Tensor(y, requires_grad=True)
    if from_softmax:
        p = ops.softmax(zt)
        loss = losses.categorical_crossentropy(yt, p)
        out = [p.data.copy()]
    else:
        loss = ops.categorical_crossentropy(yt, zt, from_logits=True)
        out = []
    rows = loss._ctx.rows
    g = np.linspace(0.5, 1.5, loss.data.size).reshape(loss.shape).astype(z.dtype)
    loss.backward(g)
    monkeypatch.undo()
    return out + [loss.data, zt.grad, yt.grad], rows


@pytest.mark.skipif(NN._compiled.kernels("softmax_rows") is None, reason="not built")
@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("shape", [(30, 3), (4, 1), (2, 5, 7), (64, 1000)])
@pytest.mark.parametrize("from_softmax", [False, True])
def test_compiled_softmax_and_crossentropy_rows_match_numpy(dtype, tol, shape, from_softmax,
                                                           monkeypatch):
    rng = np.random.default_rng(4)
    z = (rng.normal(size=shape) * 4).astype(dtype)
    z.reshape(-1, shape[-1])[0, 0] = 200.0                # saturated row: e^(z − max) tiny
    y = rng.random(shape).astype(dtype)
    got, rows = _softmax_ce(z, y, True, monkeypatch, from_softmax)
    ref, ref_rows = _softmax_ce(z, y, False, monkeypatch, from_softmax)
    assert rows and not ref_rows
    for a, r in zip(got, ref):
        assert a.dtype == r.dtype == dtype
        np.testing.assert_allclose(a, r, rtol=tol * 10, atol=tol)


@pytest.mark.skipif(NN._compiled.kernels("softmax_rows") is None, reason="not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_softmax_rows_with_nan_and_infinities(dtype):
    z = np.array([[1.0, np.nan, 2.0], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 0.0],
                  [-1e30, 1e30, 0.0], [3.0, 3.0, 3.0]], dtype=dtype)
    p = ops.softmax(Tensor(z)).data
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        ref = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(np.isnan(p), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(p[ok], ref[ok], atol=1e-7)
    np.testing.assert_array_equal(p[4], np.full(3, 1 / 3, dtype))


def test_softmax_rows_argument_checks():
    k = NN._compiled.kernels("softmax_rows")
    if k is None:
        pytest.skip("not built")
    z = np.zeros((3, 4), "float32")
    with pytest.raises(ValueError, match="p has size"):
        k.softmax_rows(z, np.zeros((3, 5), "float32"), None)
    with pytest.raises(ValueError, match="loss has size"):
        k.xent_rows(z, z, np.zeros(4, "float32"))
    with pytest.raises(TypeError, match="gz must be"):
        k.xent_grad_rows(np.zeros(3, "float32"), z, z, np.zeros((3, 4)))


def _strided(a):
    """The same values in a non-contiguous view."""
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def _numpy_dense(x, w, b, relu, g):
    """The NumPy form y = x·W + b (max(·, 0)), and its gradients for dL/dy = g."""
    y = x @ w + (0 if b is None else b)
    if relu:
        y = np.maximum(y, 0)
        g = g * (y > 0)
    m = int(np.prod(x.shape[:-1]))
    g2 = g.reshape(m, g.shape[-1])
    grads = [g @ w.T, x.reshape(m, x.shape[-1]).T @ g2]
    if b is not None:
        grads.append(g2.sum(axis=0))
    return y, grads


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("strided", ["bias", "x", "kernel", "all"])
@pytest.mark.parametrize("rows", [(6,), (2, 3)])
def test_dense_with_strided_operands_gives_the_numpy_result(strided, relu, rows):
    """ops.dense with non-contiguous bias, input or kernel: the NumPy form's result, forward and
    backward (once "ndarray is not C-contiguous" from the compiled epilogue)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=rows + (4,)).astype(np.float32)
    w = rng.normal(size=(4, 5)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    g = rng.normal(size=rows + (5,)).astype(np.float32)
    xs = _strided(x) if strided in ("x", "all") else x
    ws = _strided(w) if strided in ("kernel", "all") else w
    bs = _strided(b) if strided in ("bias", "all") else b
    assert not (xs.flags.c_contiguous and ws.flags.c_contiguous and bs.flags.c_contiguous)
    y, gx, gw, gb = _run(xs, ws, bs, relu, g)
    ry, rgrads = _numpy_dense(x, w, b, relu, g)
    np.testing.assert_allclose(y, ry, rtol=1e-6, atol=1e-6)
    for a, r in zip((gx, gw, gb), rgrads):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(xs, x)           # the inputs are left as they were
    np.testing.assert_array_equal(bs, b)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtypes", [("float32", "float32", "float64"), ("float64", "float32", "float32"),
                                    ("float32", "float64", "float32"), ("float64", "float64", "float32")])
def test_dense_with_mixed_dtypes_follows_numpy_promotion(dtypes, relu):
    """x·W + b in the dtype NumPy gives it (a float64 bias widens a float32 product, as the NumPy
    form does), and each gradient in its operand's dtype."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 4)).astype(dtypes[0])
    w = rng.normal(size=(4, 5)).astype(dtypes[1])
    b = rng.normal(size=5).astype(dtypes[2])
    g = rng.normal(size=(6, 5))
    ry, rgrads = _numpy_dense(x, w, b, relu, g)
    y, gx, gw, gb = _run(x, w, b, relu, g.astype(ry.dtype))
    assert y.dtype == ry.dtype
    assert (gx.dtype, gw.dtype, gb.dtype) == (x.dtype, w.dtype, b.dtype)
    np.testing.assert_allclose(y, ry, rtol=1e-6, atol=1e-6)
    for a, r in zip((gx, gw, gb), rgrads):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shapes", [((2, 3, 0), (0, 4)), ((2, 3, 4), (4, 0)), ((0, 3, 4), (4, 2))])
def test_dense_with_an_empty_axis(shapes):
    """Rows, inputs or units of size 0 in a 3-D input: the NumPy form's (empty or zero) result."""
    xs, ws = shapes
    x = np.ones(xs, np.float32)
    w = np.ones(ws, np.float32)
    b = np.ones(ws[1], np.float32)
    g = np.ones(xs[:-1] + (ws[1],), np.float32)
    y, gx, gw, gb = _run(x, w, b, True, g)
    ry, rgrads = _numpy_dense(x, w, b, True, g)
    np.testing.assert_array_equal(y, ry)
    for a, r in zip((gx, gw, gb), rgrads):
        np.testing.assert_array_equal(a, r)


@pytest.mark.skipif(NN._compiled.kernels("softmax_rows") is None, reason="not built")
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("with_log", [False, True])
def test_softmax_rows_on_runs_of_rows_across_threads_give_the_same_bits(threads, with_log):
    """Large row sets are cut into runs of rows on the product pool's threads; each row is its
    own, so the values are the one-thread bits."""
    from axone import _native
    k = NN._compiled.kernels("softmax_rows")
    rng = np.random.default_rng(12)
    z = (rng.normal(size=(3001, 37)) * 5).astype(np.float32)         # 111k values: several runs
    z[17, 3] = np.inf

    def run():
        p = np.empty_like(z)
        lp = np.empty_like(z) if with_log else None
        k.softmax_rows(z, p, lp)
        return p, lp
    prev = _native.set_num_threads(1)
    try:
        ref = run()
        _native.set_num_threads(threads)
        for _ in range(3):
            got = run()
            np.testing.assert_array_equal(got[0], ref[0])
            if with_log:
                np.testing.assert_array_equal(got[1], ref[1])
    finally:
        _native.set_num_threads(prev)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("shape", [(2048, 512), (1, 70000), (300, 200)])
def test_dense_epilogues_across_threads_give_the_same_bits(threads, shape):
    """Large epilogues run on the product pool's threads: the forward in runs of rows, the
    backward in blocks of columns (each column's bias-gradient sum still over the rows in
    order), so the values are the one-thread bits."""
    from axone import _native
    k = NN._epilogue_kernels()
    if k is None:
        pytest.skip("not built")
    rng = np.random.default_rng(13)
    y0 = rng.normal(size=shape).astype(np.float32)
    b = rng.normal(size=shape[1]).astype(np.float32)
    g = rng.normal(size=shape).astype(np.float32)

    def run():
        y = y0.copy()
        k.dense_forward(y, b, True)
        gm = np.empty_like(g)
        db = np.empty(shape[1], np.float32)
        k.dense_backward(g, y, gm, db)
        return y, gm, db
    prev = _native.set_num_threads(1)
    try:
        ref = run()
        _native.set_num_threads(threads)
        for _ in range(2):
            for a, r in zip(run(), ref):
                np.testing.assert_array_equal(a, r)
    finally:
        _native.set_num_threads(prev)


@pytest.mark.skipif(NN._compiled.kernels("affine_clip") is None, reason="not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_affine_clip_is_numpys_scale_shift_and_clip_bitwise(dtype, threads):
    """y = min(max(x·s + b, lo), hi) in one pass (runs of rows on the pool): NumPy's x * s + b,
    maximum, minimum, NaN and infinities included; ReLU6 and BatchNormalization at inference
    through it give the NumPy forms' bits."""
    from axone import _native
    from axone.ops import normalization as NO
    k = NN._compiled.kernels("affine_clip")
    r = np.random.default_rng(14)
    x = (r.normal(size=(3000, 24)) * 8).astype(dtype)
    x[5, 3], x[7, 1], x[9, 2] = np.nan, np.inf, -np.inf
    s, b = r.normal(size=24).astype(dtype), r.normal(size=24).astype(dtype)
    prev = _native.set_num_threads(threads)
    try:
        y = np.empty_like(x)
        k.affine_clip(x, s, b, 0.0, 6.0, y)
        np.testing.assert_array_equal(y, np.minimum(np.maximum(x * s + b, 0), 6))
        k.affine_clip(x, None, None, -np.inf, np.inf, y)
        np.testing.assert_array_equal(y, x)
        z = x.copy()
        k.affine_clip(z, s, None, -1.0, np.inf, z)                      # in place
        np.testing.assert_array_equal(z, np.maximum(x * s, -1.0))
        t = Tensor(x, requires_grad=True)
        r6 = ops.relu6(t)
        np.testing.assert_array_equal(r6.data, np.minimum(np.maximum(x, 0), 6))
        mean, var = r.normal(size=24).astype(dtype), r.random(24).astype(dtype) + 0.5
        gam, bet = Tensor(s, requires_grad=True), Tensor(b, requires_grad=True)
        yb, _, _ = NO.batch_normalization(t, gam, bet, epsilon=1e-3, mean=mean, variance=var)
        inv = (1.0 / np.sqrt(var + 1e-3)).astype(dtype)
        sc = s * inv
        np.testing.assert_array_equal(yb.data, x * sc + (b - mean * sc))
        g = r.normal(size=x.shape).astype(dtype)
        yb.backward(g)
        ok = np.isfinite(x).all(axis=1)
        np.testing.assert_allclose(t.grad[ok], (g * sc)[ok], rtol=1e-6)
        np.testing.assert_allclose(bet.grad, g.sum(axis=0), rtol=1e-5)
    finally:
        _native.set_num_threads(prev)
    with pytest.raises(ValueError, match="lo <= hi"):
        k.affine_clip(x, None, None, 1.0, 0.0, y)
    with pytest.raises(ValueError, match="share memory"):
        k.affine_clip(x, x[0], None, 0.0, 1.0, x)
    with pytest.raises(ValueError, match="size 5 on axis 0"):
        k.affine_clip(x, s[:5], None, 0.0, 1.0, y)


@pytest.mark.skipif(NN._compiled.kernels("small_matmul") is None, reason="axone._kernels is not built")
@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("n_in,n_out", [(4, 256), (256, 256), (256, 3), (64, 1), (73, 200),
                                        (5, 70)])
def test_small_product_sums_in_order_and_matches_the_blas(rows, n_in, n_out, monkeypatch):
    """Dense on one or two float32 rows multiplies in the compiled module (small_matmul): each
    entry is Σₖ xₖ·Wₖⱼ added in the order k = 0, 1, … (the product and each sum rounded), which
    agrees with the BLAS product within float32 rounding; the gradients are the BLAS ones."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, n_in)).astype(np.float32)
    w = rng.normal(size=(n_in, n_out)).astype(np.float32)
    b = rng.normal(size=n_out).astype(np.float32)
    ref = np.zeros((rows, n_out), np.float32)
    for k in range(n_in):
        ref = ref + x[:, k:k + 1] * w[k:k + 1]
    y = NN._small_product(x, w)
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(NN._small_product(np.asfortranarray(x.T).T, w), ref)
    got = _run(x, w, b, True, np.ones((rows, n_out), np.float32))
    monkeypatch.setattr(NN, "SMALL_PRODUCT_ROWS", 0)
    assert NN._small_product(x, w) is None
    blas = _run(x, w, b, True, np.ones((rows, n_out), np.float32))
    np.testing.assert_allclose(got[0], blas[0], rtol=1e-5, atol=1e-5 * np.sqrt(n_in))
    for g, r in zip(got[1:], blas[1:]):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
    assert NN._small_product(x.astype(np.float64), w.astype(np.float64)) is None
    assert NN._small_product(np.ones((3, n_in), np.float32), w) is None
