"""Row-split matrix products (ops._parallel): the same product as NumPy's, to rounding, for any
number of row blocks, and splitting only where it pays (large products, BLAS on one thread)."""
import numpy as np
import pytest

from axone import Tensor, ops
from axone.ops import _parallel as P


@pytest.fixture
def forced(monkeypatch):
    def force(threads):
        monkeypatch.setattr(P, "_threads", lambda: threads)
        monkeypatch.setattr(P, "_MIN_WORK", 0)
        monkeypatch.setattr(P, "_MIN_ROWS", 1)
        monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    return force


@pytest.mark.parametrize("threads", [2, 3, 8])
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shape", [(2, 5, 3), (17, 9, 4), (128, 784, 40), (300, 7, 1)])
def test_split_product_equals_numpy(threads, dtype, rtol, shape, forced):
    forced(threads)
    M, K, N = shape
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(M, K)).astype(dtype), rng.normal(size=(K, N)).astype(dtype)
    assert P.splits(M, K, N) == min(threads, M, 8)
    for left in (a, np.asfortranarray(a)):               # a and a transposed view's layout
        got = P.matmul(left, b)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, a @ b, rtol=rtol, atol=rtol * np.sqrt(K))
        out = np.full((M, N), np.nan, dtype=dtype)
        assert P.matmul(left, b, out=out) is out
        np.testing.assert_allclose(out, a @ b, rtol=rtol, atol=rtol * np.sqrt(K))


def test_splits_only_large_products_with_blas_on_one_thread(monkeypatch):
    monkeypatch.setattr(P, "_threads", lambda: 2)
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    assert P.splits(30, 256, 256) == 1                    # too small to pay for a hand-over
    assert P.splits(128, 784, 256) == 2
    assert P.splits(20, 10_000, 10_000) == 1              # too few rows
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 4)
    assert P.splits(128, 784, 256) == 1                   # BLAS threads its own products
    monkeypatch.setattr(P, "_ENABLED", False)
    monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
    assert P.splits(128, 784, 256) == 1


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
    a, b = np.ones((64, 8)), np.ones((8, 4))
    P.matmul(a, b)                                       # starts the pool in this process
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, b"1" if np.all(P.matmul(a, b) == 8) else b"0")
        finally:
            os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], 30)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert ready, "the forked child hung"
    assert os.read(r, 1) == b"1"


def test_num_threads_setting_caps_row_blocks_and_lstm_shards(monkeypatch):
    from axone import backend
    from axone.ops import recurrent as R
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads"):
            backend.set_num_threads(bad)
    if R._kernels() is None:
        assert backend.get_num_threads() == 1
        return
    prev = backend.set_num_threads(3)
    try:
        assert backend.get_num_threads() == 3 == P._threads() == R._shard_threads()
        monkeypatch.setattr(P.backend, "get_blas_threads", lambda: 1)
        assert P.splits(512, 512, 512) == 3
        assert backend.set_num_threads(1) == 3
        assert P.splits(512, 512, 512) == 1
        assert len(R._shard_bounds(64, 50, 73, 256)) == 1
    finally:
        backend.set_num_threads(prev)
    assert backend.get_num_threads() == prev
