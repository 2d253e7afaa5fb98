"""Array module, default float type and the one random generator of axone.

Every op reaches NumPy through :data:`xp`, so an API-compatible array library
(CuPy) can later be slotted in here without touching the ops.  Every random
draw in axone (initializers, dropout masks, shuffling, augmentation) comes
from :func:`rng`, so :func:`set_seed` makes a run repeatable bit for bit.
"""
import threading

import numpy as np

from . import _native

xp = np  # the array module used by the ops

_FLOATX = "float32"
_EPSILON = 1e-7
_VALID_FLOATX = ("float16", "float32", "float64")
_rng = np.random.default_rng()


def floatx():
    """Default float type as a string, ``"float32"`` unless changed (Keras ``floatx``)."""
    return _FLOATX


def set_floatx(value):
    """Set the default float type: one of ``"float16"``, ``"float32"``, ``"float64"``."""
    global _FLOATX
    value = str(np.dtype(value)) if not isinstance(value, str) else value
    if value not in _VALID_FLOATX:
        raise ValueError(
            f"set_floatx: expected one of {_VALID_FLOATX}, received {value!r}")
    _FLOATX = value


def epsilon():
    """Fuzz factor used to clip probabilities away from 0 and 1 (Keras: 1e-7)."""
    return _EPSILON


def set_epsilon(value):
    global _EPSILON
    _EPSILON = float(value)


def rng():
    """The seeded ``numpy.random.Generator`` that every random draw uses.

    One generator for the whole process, shared by all threads as Keras shares its global seed
    generator.  NumPy holds the generator's lock for each draw, so concurrent draws never
    corrupt it and each draw is whole; but which thread gets which numbers follows the
    scheduling, so a seeded run repeats bit for bit only while one thread draws at a time
    (two ``fit(shuffle=True)`` calls on two threads interleave their permutations).
    """
    return _rng


def swap_rng(generator):
    """Make ``generator`` the backend generator and return the one it replaces (a data-parallel
    fit draws its per-row randomness from a generator of each rank's own)."""
    global _rng
    old, _rng = _rng, generator
    return old


def set_seed(seed):
    """Reseed the backend generator (``None`` draws fresh entropy)."""
    global _rng
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"set_seed: expected a non-negative integer seed, received {seed!r}")
    _rng = np.random.default_rng(seed)
    return _rng


# ------------------------------------------------------------------ BLAS threads
# Course-size matrix products (a batch of 30 through 256 units, an LSTM step) run fastest on one
# thread: waking a second BLAS thread costs more than it saves, and on a busy machine a spinning
# second thread can slow a product tenfold.  Training therefore runs NumPy's OpenBLAS on one
# thread for models whose per-step work is small (see ``blas_threads_for``), and puts the
# library's setting back afterwards.  Only OpenBLAS (NumPy's wheels) is controlled, through its
# own ``openblas_set_num_threads``; with any other BLAS these calls do nothing.
_blas = None


def _openblas():
    """(set, get) of the OpenBLAS loaded by NumPy, or None (found in this process's mapped libraries)."""
    global _blas
    if _blas is not None:
        return _blas or None
    found = False       # assigned once at the end: another thread never sees a half-done search
    try:
        import ctypes
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            for pre, suf in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
                setter = getattr(lib, f"{pre}openblas_set_num_threads{suf}", None)
                getter = getattr(lib, f"{pre}openblas_get_num_threads{suf}", None)
                if setter is not None and getter is not None and not found:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    found = (setter, getter)
    except (OSError, AttributeError, ValueError):
        pass
    _blas = found
    return found or None


def get_num_threads():
    """Threads axone's own compiled work may use (batch shards of recurrent layers, row blocks of
    large products, large optimizer updates): ``AXONE_NUM_THREADS`` or the CPUs available, at
    most 8; 1 without the compiled module."""
    return _native.get_num_threads()


def set_num_threads(n):
    """Set the threads of ``get_num_threads``; returns the previous count."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, received {n!r}")
    return _native.set_num_threads(int(n))


def get_blas_threads():
    """Threads NumPy's OpenBLAS uses, or None when it cannot be controlled."""
    lib = _openblas()
    return None if lib is None else int(lib[1]())


def set_blas_threads(n):
    """Set NumPy's OpenBLAS threads; returns the previous count (None when not controllable)."""
    lib = _openblas()
    if lib is None:
        return None
    prev = int(lib[1]())
    lib[0](max(1, int(n)))
    return prev


# The OpenBLAS setting is one per process, while scopes may overlap on several threads (two
# models fitting at once) and finish in either order: the open scopes are kept in one list,
# the newest one's count is in force, and the last to close restores the setting from before
# the first opened.
_blas_lock = threading.Lock()
_get_ident = threading.get_ident
_blas_scopes = []          # open ``blas_threads`` scopes, oldest first
_blas_before = [None]      # the setting before the first open scope


class blas_threads:
    """Context manager: ``with blas_threads(1): …`` runs NumPy's products on that many threads
    (``None``: leave them).  Safe to overlap across threads: the setting from before the first
    open scope comes back when the last one closes, whatever the order.  A scope opened inside
    one of the same count (``model(x)`` inside ``fit``) changes nothing and costs a lock."""

    __slots__ = ("n", "prev", "_open", "_n", "_tid")

    def __init__(self, n):
        self.n, self.prev, self._open = n, None, False
        self._n = None if n is None else max(1, int(n))
        self._tid = None

    def __enter__(self):
        n = self._n
        if n is not None:
            self._tid = _get_ident()
            with _blas_lock:
                if _blas_scopes:
                    # the newest open scope's count is in force: only a different one is set
                    prev = _blas_scopes[-1]._n
                    _blas_scopes.append(self)
                    self.prev, self._open = prev, True
                    if prev != n:
                        set_blas_threads(n)
                    return self
                prev = get_blas_threads()
                if prev is not None:
                    _blas_before[0] = prev
                    _blas_scopes.append(self)
                    self.prev, self._open = prev, True
                    if prev != n:
                        set_blas_threads(n)
        return self

    def __exit__(self, *exc):
        if self._open:
            with _blas_lock:
                self._open = False
                if _blas_scopes[-1] is self:
                    del _blas_scopes[-1]
                    if _blas_scopes and _blas_scopes[-1]._n == self._n:
                        return False          # the count in force stays the same
                else:
                    for i in range(len(_blas_scopes) - 1, -1, -1):
                        if _blas_scopes[i] is self:
                            del _blas_scopes[i]
                            break
                n = _blas_scopes[-1]._n if _blas_scopes else _blas_before[0]
                if get_blas_threads() != max(1, int(n)):
                    set_blas_threads(n)
        return False


class _NoScope:
    """The scope that changes nothing (shared: it holds no state)."""
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NO_SCOPE = _NoScope()


#: multiply-adds of a step's matrix products (``models/_work.py``: a training step counts its
#: forward pass three times) below which the step runs OpenBLAS on one thread, axone's own
#: threads splitting the large nodes (``ops/_parallel.py``); 0 leaves the BLAS library's
#: threading alone.  Measured with interleaved fit runs over the MLP and CNN rows of
#: benchmarks/bench_scaling.py on a 2-core machine: one thread was the faster at every row.
SMALL_STEP_WORK = 1 << 35


def blas_threads_for_work(work):
    """1 for a step of ``work`` multiply-adds below ``SMALL_STEP_WORK``, else None (leave the
    BLAS threads as they are; also None when the work is unknown)."""
    if SMALL_STEP_WORK and work is not None and work < SMALL_STEP_WORK:
        return 1
    return None


def blas_threads_for(n_params, batch_size, work=None):
    """The BLAS threads of a step: ``blas_threads_for_work(work)``; without ``work`` (no layer
    estimate) it is taken as ``n_params × batch_size`` multiply-adds, a dense model's forward."""
    if work is None:
        work = n_params * batch_size
    return blas_threads_for_work(work)


#: multiply-adds of a whole eager call (``model(x)``, a ``predict`` call) below which it does
#: not open a scope: setting OpenBLAS's threads and back costs more than such a call's products
#: lose on BLAS's threads.  Measured with interleaved calls on the course models (2 busy
#: cores): one sample of the iris MLP, LeNet and LSTM(64) (1.3e5 to 9.2e5 multiply-adds) ran
#: 4-16 % faster at the median without the scope, their slow tail no better with it; the iris
#: MLP on 32 rows (4.3e6) ran 23 % slower at the median with it but its 90th percentile was 10×
#: shorter (BLAS threads stalling on a busy machine), LeNet on 32 rows (1.3e7) 9× faster.
EAGER_MIN_WORK = 1 << 20


def step_scope(work, call_work=None):
    """The scope a step of ``work`` multiply-adds runs in: ``blas_threads(1)`` for a small step,
    else one that changes nothing; also nothing when the whole call's ``call_work`` (an eager
    call's) is below ``EAGER_MIN_WORK``.  When the newest open scope is this thread's own and of
    the same count (a ``model(x)`` inside ``fit``, a nested model) it is the shared do-nothing
    scope: no lock, no object — the enclosing scope stays open for as long as this step runs."""
    n = blas_threads_for_work(work)
    if n is None or (call_work is not None and call_work < EAGER_MIN_WORK):
        return _NO_SCOPE
    if _blas_scopes:
        top = _blas_scopes[-1]
        if top._n == n and top._tid == _get_ident():
            return _NO_SCOPE
    return blas_threads(n)


# Name counters and other per-session state register a reset here (they live in higher modules:
# layers.base's auto-naming, keras.random's SeedGenerator names); clear_session runs them all.
_SESSION_RESETS = []


def register_session_reset(fn):
    """Have ``clear_session`` call ``fn()``."""
    if fn not in _SESSION_RESETS:
        _SESSION_RESETS.append(fn)
    return fn


def clear_session(free_memory=True):
    """Reset the global state, as Keras's ``clear_session``: the auto-naming of layers, models,
    metrics and SeedGenerators starts again (``dense``, ``dense_1``, …); with ``free_memory``
    Python's garbage collector runs."""
    for fn in list(_SESSION_RESETS):
        fn()
    if free_memory:
        import gc
        gc.collect()
