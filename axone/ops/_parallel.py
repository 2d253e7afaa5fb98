"""Matrix products split across threads, and batch shards of convolution and pooling nodes,
for training steps run with OpenBLAS on one thread (see ``backend.blas_threads_for``).

Products (``matmul``, ``matmuls``).  OpenBLAS's own threads wait on each other badly on a busy
machine, and below a few million multiply-adds they hardly pay; axone keeps BLAS on one thread in
a step and splits a product itself: into row blocks (whole 8-row panels) or column blocks
(16-column panels), along the longer of its two output sides, each block computed by NumPy's
single-threaded BLAS on one thread.  With the compiled module the blocks go to its product pool
(``gemm_many`` in _kernels.c: workers that spin between the products of a step, blocks claimed
from a shared counter, a hand-over of about 1-2 µs), so a product of ``_MIN_WORK`` (2^18)
multiply-adds — a 30×256·256×256 layer of the iris network — is already worth two threads;
without it the blocks go to Python threads (a hand-over of about 25 µs), from
``_MIN_WORK_THREADS`` multiply-adds.  ``matmuls`` runs independent products at once (a Dense
node's dL/dx and dL/dW), each whole when there are as many products as threads.  A split product
agrees with the unsplit one to rounding (BLAS blocks a shorter product differently), and for a
given thread count it is the same from run to run, whichever thread computed which block.
Outside every BLAS scope (a user's own training loop, whose backward no step scope covers) a
product too small for a split but large enough to wake OpenBLAS's threads runs with OpenBLAS on
one thread: in a GradientTape loop on the iris MLP (batch 32, 2 busy cores) the backward took
0.9 ms so against 161 ms on BLAS's threads (medians of interleaved rounds).

Batch shards (``batch_blocks`` / ``run_blocks``): a node whose samples are independent
(convolution, pooling) runs its whole lowering — padding, window copies, products, scatter-adds
— on consecutive blocks of the batch, one block per thread; each block's arrays are its own, so
every per-sample value is the one the unsplit node computes, and only sums over the batch (a
kernel or bias gradient) are taken block by block and then added in block order.  The split is
decided per node from its own work (``batch_blocks``): a block must carry at least
``_MIN_SHARD_WORK`` (2^23) units (a multiply-add or an element moved), about 1.5 ms of one core
here.  Below that the node runs whole and only its products are split (on the product pool):
blocks on Python threads hand over in ~30 µs and their NumPy calls contend for the GIL, and at
LeNet's sizes (convolutions of 9-16 M units at batch 64) whole nodes with split products gave
epochs of 0.54 s against 0.69 s with 2^21-unit blocks (medians of 4 interleaved rounds); from
32×32×3 inputs with 32 filters up, blocks and products were as fast or faster.
"""
import math
import os
import threading

import numpy as np

from .. import _native, backend

#: multiply-adds from which a product is split, on the compiled pool / on Python threads
_MIN_WORK = 1 << 18
_MIN_WORK_THREADS = 1 << 23
_MIN_ROWS = 8                    # a row block is whole 8-row panels
_MIN_COLS = 16                   # a column block is whole 16-column panels
_MIN_COPY = 1 << 17              # items from which a copy is cut into runs for the threads
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_GEMM = []                       # [the compiled gemm_many or None], found on first use
_LOCAL = threading.local()       # .inside: this thread runs a batch block (its products stay whole)
#: multiply-adds from which a product run outside any BLAS scope is pinned to one BLAS thread
_PIN_MIN_WORK = 1 << 18
_PIN = True
#: work units (multiply-adds + elements moved) per batch block below which a node is not split
_MIN_SHARD_WORK = 1 << 23
_ENABLED = True
_POOL = []
_POOL_LOCK = threading.Lock()


def _threads():
    return _native._threads[0]


def _blas_one():
    """Whether NumPy's BLAS runs on one thread now: the newest open ``blas_threads`` scope's
    count while one is open (the count it set, process-wide), else asked of OpenBLAS."""
    scopes = backend._blas_scopes
    if scopes and scopes[-1]._n is not None:
        return scopes[-1]._n == 1
    return backend.get_blas_threads() == 1


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


def _gemm_many():
    """The compiled product pool (``gemm_many``) once NumPy's BLAS is handed over, else None."""
    if not _GEMM:
        k = _native.seq_kernels()
        _GEMM.append(getattr(k, "gemm_many", None) if k is not None else None)
    return _GEMM[0]


def plan(M, K, N):
    """(pieces, axis) for an (M×K)·(K×N) product: 1 piece (do not split), or k ≥ 2 blocks
    along axis 0 (rows) or 1 (columns) of the output."""
    if not _ENABLED or getattr(_LOCAL, "inside", False):
        return 1, 0
    t = _threads()
    if t < 2:
        return 1, 0
    work = M * K * N
    k = min(t, 8, work // (_MIN_WORK if _gemm_many() is not None else _MIN_WORK_THREADS))
    if k < 2:
        return 1, 0
    axis = 0 if M >= N else 1
    k = min(k, (M // _MIN_ROWS) if axis == 0 else (N // _MIN_COLS))
    if k < 2 or not _blas_one():
        return 1, 0                   # too narrow, or BLAS runs its own threads: leave it whole
    return k, axis


def splits(M, K, N):
    """Blocks for an (M×K)·(K×N) product: 1 (do not split) or more."""
    return plan(M, K, N)[0]


def _bounds(n, k, unit):
    size = -(-n // k)
    size = -(-size // unit) * unit
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def _blocks(a, b, out, k, axis):
    """The (a, b, out) blocks of a product split into k blocks along the output's axis."""
    if axis == 0:
        return [(a[lo:hi], b, out[lo:hi]) for lo, hi in _bounds(a.shape[0], k, _MIN_ROWS)]
    return [(a, b[:, lo:hi], out[:, lo:hi]) for lo, hi in _bounds(b.shape[1], k, _MIN_COLS)]


def _poolable(a, b, out):
    """Whether gemm_many takes (a, b, out): one float dtype, each operand (2-D, or a 3-D stack)
    with a unit stride along one of its last two axes, out along its last."""
    dt = a.dtype
    if dt not in _FLOATS or b.dtype != dt or out.dtype != dt:
        return False
    it = dt.itemsize
    return ((a.strides[-1] == it or a.strides[-2] == it) and (b.strides[-1] == it or b.strides[-2] == it)
            and out.strides[-1] == it)


def _run_python(tasks):
    """The products on Python threads: tasks 1… on the worker threads, task 0 here."""
    pool = _pool()
    futures = [pool.submit(np.matmul, a, b, out=o) for a, b, o in tasks[1:]]
    try:
        a, b, o = tasks[0]
        np.matmul(a, b, out=o)
    finally:
        for f in futures:
            f.exception()
    for f in futures:
        f.result()


def _plain(a, b, out, pin=True):
    M, K = a.shape
    work = M * K * b.shape[1]
    if pin and _PIN and not backend._blas_scopes and _PIN_MIN_WORK <= work < _MIN_WORK_THREADS \
            and backend.get_blas_threads() not in (None, 1):
        with backend.blas_threads(1):
            return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)


def matmul(a, b, out=None, pin=True):
    """a (M×K) · b (K×N) for 2-D arrays, split into row or column blocks across threads when
    large enough (``plan``).

    Outside any BLAS scope (a user's own loop: a GradientTape's backward, an eager call too
    small to take the scope) a product of ``_PIN_MIN_WORK`` to ``_MIN_WORK_THREADS``
    multiply-adds that is not split runs with OpenBLAS on one thread (too small for BLAS's
    threads to pay, large enough for them to wake); ``pin=False`` leaves BLAS's threads as they
    are (the convolutions' products: their nodes take no BLAS scope of their own, and a scope
    opened by one of two threads convolving at once would change the other's BLAS threads
    mid-product)."""
    M, K = a.shape
    N = b.shape[1]
    if M * K * N < _PIN_MIN_WORK and _PIN_MIN_WORK <= _MIN_WORK:
        # below both thresholds: never split, never pinned (a one-sample layer's product)
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    k, axis = plan(M, K, N)
    if k <= 1:
        return _plain(a, b, out, pin)
    if out is None:
        out = np.empty((M, N), dtype=np.result_type(a, b))
    tasks = _blocks(a, b, out, k, axis)
    gemm = _gemm_many()
    if gemm is not None and _poolable(a, b, out):
        gemm(tasks)
    else:
        _run_python(tasks)
    return out


def bmm(a, b, out=None):
    """a (S…×M×K) · b (S…×K×N) for a stack of products with one or two leading axes S… (3-D or
    4-D arrays of the same leading shape, no broadcasting; ``out`` may be a strided view), the
    stack cut along its first axis into consecutive runs across threads (one gemm_many task
    each: a run of products on one thread) when the whole is at least ``_MIN_WORK``
    multiply-adds per run; else np.matmul.  Each product is BLAS's own whichever thread
    computes it, so the result is NumPy's."""
    lead = a.shape[:-2]
    M, K = a.shape[-2:]
    N = b.shape[-1]
    if out is None:
        out = np.empty(lead + (M, N), dtype=np.result_type(a, b))
    S = lead[0] if lead else 0
    gemm = _gemm_many()
    k = 1
    if _ENABLED and gemm is not None and 1 <= len(lead) <= 2 and not getattr(_LOCAL, "inside", False) and b.shape[:-2] == lead \
            and out.shape[:-2] == lead:
        k = min(_threads(), 8, S, (math.prod(lead) * M * K * N) // _MIN_WORK)
    if k < 2 or not _poolable(a, b, out) or not _blas_one():
        return np.matmul(a, b, out=out)
    gemm([(a[lo:hi], b[lo:hi], out[lo:hi]) for lo, hi in _bounds(S, k, 1)])
    return out


def pool_allowed(work):
    """Whether products of ``work`` multiply-adds in all may go to the compiled pool now: it is
    built, axone has threads, BLAS runs on one, and this thread is not a batch block's."""
    return (_ENABLED and work >= 2 * _MIN_WORK and _gemm_many() is not None and _threads() >= 2
            and not getattr(_LOCAL, "inside", False) and _blas_one())


def products(tasks, work):
    """out = a·b for each (a, b, out) of ``tasks`` (2-D, or stacks with the same leading axes;
    ``out`` given), ``work`` multiply-adds in all: on the compiled pool when ``pool_allowed``
    and every task is poolable, else one after the other with np.matmul."""
    if len(tasks) > 1 and pool_allowed(work) and all(_poolable(a, b, o) for a, b, o in tasks):
        _gemm_many()(tasks)
    else:
        for a, b, o in tasks:
            np.matmul(a, b, out=o)


def copy(dst, src):
    """dst[...] = src (one shape and dtype; src may be any strided view, e.g. convolution
    windows): through the compiled module's ``copy_into``, whose runs of the leading axis go to
    the product pool's threads, when the copy is large enough and this thread is not a batch
    block's; else np.copyto.  The same bytes either way."""
    k = _native.kernels("copy_into")
    if (k is not None and _ENABLED and dst.size >= _MIN_COPY
            and dst.dtype == src.dtype and dst.shape == src.shape and _threads() >= 2
            and not getattr(_LOCAL, "inside", False)):
        try:
            k.copy_into(dst, src)
            return
        except (ValueError, TypeError):      # overlapping, or a layout it does not take
            pass
    np.copyto(dst, src)


def matmuls(products):
    """[a·b for (a, b, out) in products] for independent 2-D products (out may be None),
    computed at once on the compiled pool: each product whole when the products share the
    threads evenly, a product with more than its share of the work split into blocks.  Without
    the pool (or with one thread) they are ``matmul`` one after the other."""
    gemm = _gemm_many() if not getattr(_LOCAL, "inside", False) else None
    t = _threads()
    outs = [o if o is not None else np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
            for a, b, o in products]
    if gemm is None or t < 2 or not _ENABLED or len(products) < 2 \
            or not all(_poolable(a, b, o) for (a, b, _), o in zip(products, outs)):
        return [matmul(a, b, out=o) for (a, b, _), o in zip(products, outs)]
    works = [a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in products]
    total = sum(works)
    if total < 2 * _MIN_WORK or not _blas_one():
        return [_plain(a, b, o) for (a, b, _), o in zip(products, outs)]
    tasks = []
    for (a, b, _), o, w in zip(products, outs, works):
        k, axis = plan(a.shape[0], a.shape[1], b.shape[1])
        share = max(1, round(t * w / total))
        if share >= 2 and k >= 2:
            tasks.extend(_blocks(a, b, o, min(k, share), axis))
        else:
            tasks.append((a, b, o))
    gemm(tasks)
    return outs


def batch_blocks(n, work):
    """Consecutive blocks [(lo, hi), …] of a batch of ``n`` samples for a node of ``work`` units
    (multiply-adds and elements moved over the whole batch), one per thread, each carrying at
    least ``_MIN_SHARD_WORK``; None to run the node whole (too little work, one thread, a
    single sample, or BLAS running threads of its own)."""
    if not _ENABLED or n < 2:
        return None
    k = min(_threads(), n, 8, int(work // _MIN_SHARD_WORK))
    if k < 2 or not _blas_one():
        return None
    size = -(-n // k)
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def inside_block():
    """Whether this thread is running a batch block's work now (run_blocks)."""
    return getattr(_LOCAL, "inside", False)


def _inside(fn, i, lo, hi):
    """fn(i, lo, hi) marked as a batch block's work on this thread (its products stay whole:
    the blocks already use the threads)."""
    before = getattr(_LOCAL, "inside", False)
    _LOCAL.inside = True
    try:
        return fn(i, lo, hi)
    finally:
        _LOCAL.inside = before


def run_blocks(fn, bounds):
    """[fn(i, lo, hi) for each block i], blocks 1… on the worker threads and block 0 on the
    calling one; waits for all, then re-raises the first block's error if any failed."""
    pool = _pool()
    futures = [pool.submit(_inside, fn, i, lo, hi) for i, (lo, hi) in enumerate(bounds) if i]
    try:
        first = _inside(fn, 0, *bounds[0])
    finally:
        for f in futures:
            f.exception()
    return [first] + [f.result() for f in futures]
