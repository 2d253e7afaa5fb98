"""The worker pools and the gemm hand-over that start on first use are made once, also when
several threads arrive at the same time (each would otherwise start its own pool and leak it).
The pool constructor is slowed down so that the threads do overlap."""
import threading
import time

import concurrent.futures as cf
import pytest

from axone import _native
from axone.ops import _parallel
from axone.ops import recurrent as R


class _SlowPool(cf.ThreadPoolExecutor):
    made = []

    def __init__(self, *args, **kwargs):
        time.sleep(0.05)
        super().__init__(*args, **kwargs)
        _SlowPool.made.append(self)


def _race(fn, n=8):
    barrier = threading.Barrier(n)
    got = []

    def run():
        barrier.wait()
        got.append(fn())
    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


@pytest.mark.parametrize("module, pool, fn", [(_parallel, "_POOL", "_pool"),
                                             (R, "_BG", "_background")])
def test_one_pool_whichever_threads_ask_first(module, pool, fn, monkeypatch):
    monkeypatch.setattr(cf, "ThreadPoolExecutor", _SlowPool)
    monkeypatch.setattr(module, pool, [])
    _SlowPool.made = []
    try:
        got = _race(getattr(module, fn))
        assert len(_SlowPool.made) == 1
        assert all(g is got[0] for g in got)
    finally:
        for p in _SlowPool.made:
            p.shutdown(wait=False)


def test_gemm_handed_over_once_whichever_threads_ask_first(monkeypatch):
    if _native.kernels("set_gemm") is None:
        pytest.skip("axone._kernels is not built or AXONE_KERNELS=0")
    calls = []
    real = _native.check_seq

    def slow_check(k):
        calls.append(1)
        time.sleep(0.05)
        return real(k)
    monkeypatch.setattr(_native, "check_seq", slow_check)
    monkeypatch.setattr(_native, "_seq", [])
    got = _race(_native.seq_kernels)
    assert len(calls) <= 1
    assert all(g is got[0] for g in got)
