"""Large matrix products split by rows across threads, and batch shards of convolution and
pooling nodes, for training steps run with OpenBLAS on one thread (see
``backend.blas_threads_for``).

OpenBLAS's own threads wait on each other badly on a busy machine; rows of a product are
independent, so a product large enough to pay for a thread hand-over (about _MIN_WORK
multiply-adds) is cut into row blocks, one per thread the compiled module may use, each
computed by NumPy's single-threaded BLAS on its own Python thread (matmul releases the GIL).
The result agrees with the unsplit product to rounding (BLAS may block a shorter product
differently), and for a given thread count it is the same from run to run.  Outside every BLAS
scope (a user's own training loop, whose backward no step scope covers) a product too small for
a split but large enough to wake OpenBLAS's threads runs with OpenBLAS on one thread: in a
GradientTape loop on the iris MLP (batch 32, 2 busy cores) the backward took 0.9 ms so against
161 ms on BLAS's threads (medians of interleaved rounds).

Batch shards (``batch_blocks`` / ``run_blocks``): a node whose samples are independent
(convolution, pooling) runs its whole lowering — padding, window copies, products, scatter-adds
— on consecutive blocks of the batch, one block per thread; each block's arrays are its own, so
every per-sample value is the one the unsplit node computes, and only sums over the batch (a
kernel or bias gradient) are taken block by block and then added in block order.  The split is
decided per node from its own work (``batch_blocks``): a block must carry at least
``_MIN_SHARD_WORK`` units (a multiply-add or an element moved), about 0.4 ms of one core here,
well above the ~30 µs a hand-over to a worker thread costs.
"""
import os
import threading

import numpy as np

from .. import _native, backend

#: multiply-adds from which a product is split (below it the hand-over costs more than it saves)
_MIN_WORK = 1 << 23
_MIN_ROWS = 16
#: multiply-adds from which a product run outside any BLAS scope is pinned to one BLAS thread
_PIN_MIN_WORK = 1 << 18
_PIN = True
#: work units (multiply-adds + elements moved) per batch block below which a node is not split
_MIN_SHARD_WORK = 1 << 21
_ENABLED = True
_POOL = []
_POOL_LOCK = threading.Lock()


def _threads():
    return _native.get_num_threads()


def _pool():
    """The worker threads, started on first use (once, whichever thread gets here first)."""
    if not _POOL:
        with _POOL_LOCK:
            if not _POOL:
                from concurrent.futures import ThreadPoolExecutor
                _POOL.append(ThreadPoolExecutor(7, thread_name_prefix="axone-matmul"))
    return _POOL[0]


def _after_fork():                       # a forked child has no worker threads: start its own
    global _POOL_LOCK
    _POOL.clear()
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def splits(M, K, N):
    """Row blocks for an (M×K)·(K×N) product: 1 (do not split) or more."""
    if not _ENABLED or M * K * N < _MIN_WORK or M < 2 * _MIN_ROWS:
        return 1
    k = min(_threads(), M // _MIN_ROWS, 8)
    if k > 1 and backend.get_blas_threads() != 1:
        return 1                      # BLAS runs its own threads: leave the product to it
    return max(k, 1)


def matmul(a, b, out=None):
    """a (M×K) · b (K×N) for 2-D arrays, split by rows across threads when large enough.

    Outside any BLAS scope (a user's own loop: a GradientTape's backward, an eager call too
    small to take the scope) a product of ``_PIN_MIN_WORK`` to ``_MIN_WORK`` multiply-adds runs
    with OpenBLAS on one thread (``pinned``): too small for BLAS's threads to pay, large enough
    for them to wake."""
    M, K = a.shape
    N = b.shape[1]
    k = splits(M, K, N)
    if k <= 1:
        if _PIN and not backend._blas_scopes and _PIN_MIN_WORK <= M * K * N < _MIN_WORK \
                and backend.get_blas_threads() not in (None, 1):
            with backend.blas_threads(1):
                return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((M, N), dtype=np.result_type(a, b))
    size = -(-M // k)
    size = -(-size // 8) * 8                       # row blocks of whole 8-row panels
    bounds = [(lo, min(M, lo + size)) for lo in range(0, M, size)]
    pool = _pool()
    futures = [pool.submit(np.matmul, a[lo:hi], b, out=out[lo:hi]) for lo, hi in bounds[1:]]
    try:
        lo, hi = bounds[0]
        np.matmul(a[lo:hi], b, out=out[lo:hi])
    finally:
        for f in futures:
            f.exception()
    for f in futures:
        f.result()
    return out


def batch_blocks(n, work):
    """Consecutive blocks [(lo, hi), …] of a batch of ``n`` samples for a node of ``work`` units
    (multiply-adds and elements moved over the whole batch), one per thread, each carrying at
    least ``_MIN_SHARD_WORK``; None to run the node whole (too little work, one thread, a
    single sample, or BLAS running threads of its own)."""
    if not _ENABLED or n < 2:
        return None
    k = min(_threads(), n, 8, int(work // _MIN_SHARD_WORK))
    if k < 2 or backend.get_blas_threads() != 1:
        return None
    size = -(-n // k)
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def run_blocks(fn, bounds):
    """[fn(i, lo, hi) for each block i], blocks 1… on the worker threads and block 0 on the
    calling one; waits for all, then re-raises the first block's error if any failed."""
    pool = _pool()
    futures = [pool.submit(fn, i, lo, hi) for i, (lo, hi) in enumerate(bounds) if i]
    try:
        first = fn(0, *bounds[0])
    finally:
        for f in futures:
            f.exception()
    return [first] + [f.result() for f in futures]
