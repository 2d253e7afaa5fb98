"""Split matrix products (ops._parallel): the same product as NumPy's, to rounding, for any
number of row or column blocks and any operand layout, the same bits from run to run, splitting
only where it pays (BLAS on one thread, enough work), and the compiled product pool
(``gemm_many``) refusing what it cannot compute."""
import numpy as np
import pytest

from axone import Tensor, backend, ops
from axone.ops import _parallel as P

pool = pytest.mark.skipif(P._gemm_many() is None,
                          reason="the compiled module (or NumPy's BLAS hand-over) is missing")


@pytest.fixture
def forced(monkeypatch):
    """Split every product into up to ``threads`` blocks, BLAS on one thread."""
    scope = backend.blas_threads(1)
    scope.__enter__()

    def force(threads):
        monkeypatch.setattr(P, "_threads", lambda: threads)
        monkeypatch.setattr(P, "_MIN_WORK", 1)
        monkeypatch.setattr(P, "_MIN_WORK_THREADS", 1)
        monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    yield force
    scope.__exit__(None, None, None)


def _layouts(a):
    """a itself, a Fortran-ordered copy, and a transposed view of a contiguous transpose."""
    return [a, np.asfortranarray(a), np.ascontiguousarray(a.T).T]


@pytest.mark.parametrize("threads", [2, 3, 8])
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shape", [(2, 5, 3), (17, 9, 40), (128, 784, 40), (300, 7, 1),
                                   (30, 256, 256), (1, 64, 96)])
def test_split_product_equals_numpy(threads, dtype, rtol, shape, forced):
    forced(threads)
    M, K, N = shape
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(M, K)).astype(dtype), rng.normal(size=(K, N)).astype(dtype)
    k, axis = P.plan(M, K, N)
    long_side, unit = (M, P._MIN_ROWS) if M >= N else (N, P._MIN_COLS)
    want = min(threads, 8, long_side // unit)
    assert (k, axis) == ((want, 0 if M >= N else 1) if want >= 2 else (1, 0))
    ref = a @ b
    for left in _layouts(a):
        for right in _layouts(b):
            got = P.matmul(left, right)
            assert got.dtype == dtype and got.shape == (M, N)
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.sqrt(K))
            out = np.full((M, N), np.nan, dtype=dtype)
            assert P.matmul(left, right, out=out) is out
            np.testing.assert_array_equal(out, got)          # the same bits, every call


@pool
def test_blocks_go_to_the_pool_and_give_the_same_bits_each_run(forced):
    forced(2)
    rng = np.random.default_rng(3)
    a = rng.normal(size=(30, 256)).astype(np.float32)
    b = rng.normal(size=(256, 256)).astype(np.float32)
    first = P.matmul(a, b)
    for _ in range(20):
        np.testing.assert_array_equal(P.matmul(a, b), first)


def test_plan_splits_only_where_it_pays(monkeypatch):
    monkeypatch.setattr(P, "_threads", lambda: 2)
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    assert P.plan(30, 4, 256) == (1, 0)                   # too little work for a hand-over
    if P._gemm_many() is not None:
        assert P.plan(30, 256, 256) == (2, 1)             # the iris layer: column blocks
        assert P.plan(256, 30, 256) == (2, 0)             # its kernel gradient: row blocks
    else:
        assert P.plan(30, 256, 256) == (1, 0)             # Python threads: not worth it
    assert P.plan(784, 128, 256) == (2, 0)
    assert P.plan(128, 784, 256) == (2, 1)
    assert P.plan(12, 10_000, 10) == (1, 0)               # too narrow either way
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 4)
    assert P.plan(128, 784, 256) == (1, 0)                # BLAS threads its own products
    monkeypatch.setattr(P, "_ENABLED", False)
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    assert P.plan(128, 784, 256) == (1, 0)
    monkeypatch.setattr(P, "_ENABLED", True)
    monkeypatch.setattr(P, "_threads", lambda: 1)
    assert P.plan(128, 784, 256) == (1, 0)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_independent_products_at_once_equal_numpy(threads, forced):
    forced(threads)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 256)).astype(np.float32)
    w = rng.normal(size=(256, 128)).astype(np.float32)
    g = rng.normal(size=(30, 128)).astype(np.float32)
    gw = np.full((256, 128), np.nan, np.float32)
    gx, out = P.matmuls([(g, w.T, None), (x.T, g, gw)])
    assert out is gw
    np.testing.assert_allclose(gx, g @ w.T, rtol=2e-5, atol=1e-4)
    np.testing.assert_allclose(gw, x.T @ g, rtol=2e-5, atol=1e-4)
    # mixed dtypes are not the pool's: computed one by one, still right
    gx64, gw64 = P.matmuls([(g.astype(np.float64), w.T, None), (x.T, g, None)])
    assert gx64.dtype == np.float64
    np.testing.assert_allclose(gx64, g.astype(np.float64) @ w.T, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(gw64, x.T @ g, rtol=2e-5, atol=1e-4)


def test_dense_node_with_split_products_matches(forced):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 30)).astype("float32")
    w = rng.normal(size=(30, 20)).astype("float32")
    b = rng.normal(size=20).astype("float32")
    g = rng.normal(size=(40, 20)).astype("float32")

    def run():
        ts = [Tensor(v, requires_grad=True) for v in (x, w, b)]
        y = ops.dense(*ts, relu=True)
        y.backward(g)
        return [y.data] + [t.grad for t in ts]

    ref = run()
    forced(3)
    for a, r in zip(run(), ref):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_split_products_work_in_a_forked_child(forced):
    """Worker threads do not survive fork; a child starts its own instead of waiting."""
    import os
    import select
    import signal
    forced(2)
    a, b = np.ones((64, 8)), np.ones((8, 64))
    assert np.all(P.matmul(a, b) == 8)                  # starts the pool in this process
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ok = np.all(P.matmul(a, b) == 8) and np.all(P.matmuls([(a, b, None), (b, a, None)])[1] == 64)
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], 30)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert ready, "the forked child hung"
    assert os.read(r, 1) == b"1"


# ------------------------------------------------------------------ gemm_many itself
@pool
def test_gemm_many_computes_each_task_with_beta():
    gemm = P._gemm_many()
    rng = np.random.default_rng(4)
    a = rng.normal(size=(5, 7))
    b = rng.normal(size=(7, 3))
    c0 = rng.normal(size=(5, 3))
    c1 = c0.copy()
    c2 = np.empty((3, 5))
    gemm([(a, b, c1, 1.0), (b.T, a.T, c2)])
    np.testing.assert_allclose(c1, a @ b + c0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c2, b.T @ a.T, rtol=1e-12, atol=1e-12)
    gemm([])                                              # nothing to do
    e = np.empty((0, 3))
    gemm([(np.empty((0, 7)), b, e), (a, b, np.empty((5, 3)))])


@pool
@pytest.mark.parametrize("task, error, match", [
    ("not a tuple", TypeError, "task 0 must be a tuple"),
    (("A", "B"), TypeError, "task 0 must be a tuple"),
    (([[1.0]], np.ones((1, 1)), np.ones((1, 1))), TypeError, "A must be a 2-D float32 or float64"),
    ((np.ones(3), np.ones((3, 1)), np.ones((1, 1))), TypeError, "A must be a 2-D array"),
    ((np.ones((2, 3)), np.ones((3, 2), np.float32), np.ones((2, 2))), TypeError, "B must be"),
    ((np.ones((2, 3), np.int32), np.ones((3, 2)), np.ones((2, 2))), TypeError, "A must be"),
    ((np.ones((2, 3)), np.ones((4, 2)), np.ones((2, 2))), ValueError, "do not match"),
    ((np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 3))), ValueError, "do not match"),
    ((np.ones((4, 6))[::2, ::2], np.ones((3, 2)), np.ones((2, 2))), ValueError, "A must have a unit"),
    ((np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 4))[:, ::2]), ValueError, "C must have a unit"),
    ((np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 2)).T), ValueError, "C must have a unit"),
    ((np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 2)), "x"), TypeError, "must be real number"),
])
def test_gemm_many_refuses_bad_tasks(task, error, match):
    with pytest.raises(error, match=match):
        P._gemm_many()([task])


@pool
def test_gemm_many_refuses_a_read_only_output_and_too_many_tasks():
    gemm = P._gemm_many()
    c = np.ones((2, 2))
    c.setflags(write=False)
    with pytest.raises(TypeError, match="C must be a writable"):
        gemm([(np.ones((2, 3)), np.ones((3, 2)), c)])
    with pytest.raises(ValueError, match="at most 256 tasks"):
        gemm([(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)))] * 257)
    with pytest.raises(TypeError, match="sequence"):
        gemm(3)
    with pytest.raises(ValueError, match="set_pool_spin"):
        P._native.KERNELS.set_pool_spin(-1.0)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stacked_products_equal_numpy_bitwise(threads, dtype, forced):
    """bmm: runs of a stack of products on the threads; each product is BLAS's own."""
    forced(threads)
    rng = np.random.default_rng(5)
    a = rng.normal(size=(7, 16, 8)).astype(dtype)
    b = rng.normal(size=(7, 8, 12)).astype(dtype)
    with backend.blas_threads(1):
        ref = np.matmul(a, b)
        for left in (a, np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1)):
            for right in (b, np.ascontiguousarray(b.transpose(0, 2, 1)).transpose(0, 2, 1)):
                got = P.bmm(left, right)
                np.testing.assert_array_equal(got, ref)
                out = np.full_like(ref, np.nan)
                assert P.bmm(left, right, out=out) is out
                np.testing.assert_array_equal(out, ref)


@pool
def test_gemm_many_stacks_must_agree():
    gemm = P._gemm_many()
    with pytest.raises(ValueError, match="stacks of 2, 3 and 2 products"):
        gemm([(np.ones((2, 2, 3)), np.ones((3, 3, 2)), np.ones((2, 2, 2)))])
    with pytest.raises(TypeError, match="B must be a 3-D array"):
        gemm([(np.ones((2, 2, 3)), np.ones((3, 2)), np.ones((2, 2, 2)))])
    c = np.empty((2, 2, 2))
    gemm([(np.ones((2, 2, 3)), np.ones((2, 3, 2)), c, 0.0)])
    np.testing.assert_array_equal(c, 3.0)


@pytest.mark.parametrize("threads", [2, 3])
def test_stacks_with_two_leading_axes_and_strided_outputs(threads, forced):
    """The attention layout: (B, heads) stacks, a key view with a unit row stride, the output a
    transposed view of a (B, T, heads, H) array."""
    forced(threads)
    rng = np.random.default_rng(6)
    B, T, S, N, H = 5, 6, 7, 3, 4
    q = rng.normal(size=(B, N, T, H)).astype(np.float32)
    k = rng.normal(size=(B, S, N, H)).astype(np.float32)
    kt = k.transpose(0, 2, 3, 1)                            # (B, N, H, S), a view
    with backend.blas_threads(1):
        ref = np.matmul(q, kt)
        np.testing.assert_array_equal(P.bmm(q, kt), ref)
        out = np.full((B, T, N, S), np.nan, np.float32)
        P.bmm(q, kt, out=out.transpose(0, 2, 1, 3))
        np.testing.assert_array_equal(out.transpose(0, 2, 1, 3), ref)


# ------------------------------------------------------------------ strided copies
copies = pytest.mark.skipif(P._native.kernels("copy_into") is None, reason="not built")


@copies
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_copy_into_equals_numpy_for_windows_and_any_layout(threads):
    from axone import _native
    rng = np.random.default_rng(7)
    x = rng.normal(size=(9, 20, 20, 3)).astype(np.float32)
    st = x.strides
    # 3x3 windows of x, as the convolution's lowering reads them (entries repeated)
    win = np.lib.stride_tricks.as_strided(x, shape=(9, 18, 18, 3, 3, 3),
                                          strides=(st[0], st[1], st[2], st[1], st[2], st[3]))
    cases = [(np.empty(win.shape, np.float32), win),
             (np.empty((20, 9), np.float64), rng.normal(size=(9, 20)).T),
             (np.empty((5, 7, 3), np.int16), rng.integers(0, 100, (5, 7, 3)).astype(np.int16)[:, ::-1]),
             (np.empty((0, 4), np.float32), np.ones((0, 4), np.float32)),
             (np.empty((), np.float64), np.array(3.5))]
    prev = _native.set_num_threads(threads)
    try:
        for dst, src in cases:
            _native.KERNELS.copy_into(dst, src)
            np.testing.assert_array_equal(dst, src)
            out = np.empty_like(dst)
            P.copy(out, src)
            np.testing.assert_array_equal(out, src)
    finally:
        _native.set_num_threads(prev)


@copies
def test_copy_into_refuses_what_it_cannot_copy():
    k = P._native.KERNELS
    a = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        k.copy_into(a[1:], a[:-1])
    with pytest.raises(ValueError, match="shapes differ on axis 1"):
        k.copy_into(np.zeros((4, 3), np.float32), a)
    with pytest.raises(ValueError, match="one format"):
        k.copy_into(np.zeros((4, 4)), a)
    with pytest.raises(ValueError, match="one format"):
        k.copy_into(np.zeros((1,) * 9, np.float32), np.zeros((1,) * 9, np.float32))
    ro = np.zeros((4, 4), np.float32)
    ro.setflags(write=False)
    with pytest.raises(TypeError, match="dst must be a writable array"):
        k.copy_into(ro, a)
    with pytest.raises(TypeError, match="src must be an array"):
        k.copy_into(a, 3)
    b = np.arange(16, dtype=np.float32).reshape(4, 4)
    P.copy(b[1:], b[:-1].copy())                      # the helper copies through NumPy then
    np.testing.assert_array_equal(b[1:], np.arange(12, dtype=np.float32).reshape(3, 4))
