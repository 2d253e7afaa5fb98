"""The optional compiled module ``axone._kernels``, loaded and checked once, here, for the whole
package (the backend, the ops and the optimizers all reach it through this module, which imports
nothing else from axone).

- ``KERNELS`` is the module, or None when it is not built or ``AXONE_KERNELS=0`` (also ``false``,
  ``no``, ``off``) turns it off; then every caller runs its NumPy form of the same work.
- Its threads (large optimizer updates; the ops read the count for their own row blocks and batch
  shards) are ``AXONE_NUM_THREADS`` when that is a positive integer, else the CPUs this process
  may run on, at most 8.
- The whole LSTM step loops need NumPy's own BLAS: :func:`seq_kernels` finds the ``cblas_?gemm``
  of the OpenBLAS that NumPy loaded, hands it over (``set_gemm`` checks that the address is that
  symbol), and checks one small product through it against NumPy's before any loop uses it.

Everything here is set up once: the module at import, the gemm hand-over under a lock, so that
threads calling in at the same time see one result.
"""
import os
import threading

_OFF = ("0", "false", "no", "off")
_MAX_THREADS = 8


def _env_threads():
    """AXONE_NUM_THREADS when it is a positive integer, else the CPUs available; at most 8."""
    threads = os.environ.get("AXONE_NUM_THREADS", "").strip()
    if threads.isdigit() and int(threads) > 0:
        n = int(threads)
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            n = os.cpu_count() or 1
    return max(1, min(n, _MAX_THREADS))


def _load():
    if os.environ.get("AXONE_KERNELS", "1").strip().lower() in _OFF:
        return None
    try:
        from . import _kernels
    except ImportError:
        return None
    _kernels.set_num_threads(_env_threads())
    return _kernels


#: the compiled module, or None (not built, or turned off by AXONE_KERNELS=0)
KERNELS = _load()


def available():
    """True when the compiled module is in use."""
    return KERNELS is not None


def kernels(name):
    """The compiled module when it is in use and has the function ``name``, else None."""
    k = KERNELS
    return k if k is not None and hasattr(k, name) else None


_threads = [1 if KERNELS is None else int(KERNELS.get_num_threads()[0])]   # kept in step below


def get_num_threads():
    """Threads the compiled module may use (1 without it)."""
    return _threads[0]


def set_num_threads(n):
    """Set the compiled module's threads to ``n`` ≥ 1 (nothing without it); returns the previous count."""
    prev = get_num_threads()
    if KERNELS is not None:
        KERNELS.set_num_threads(int(n), KERNELS.get_num_threads()[1])
        _threads[0] = int(KERNELS.get_num_threads()[0])
    return prev


# ------------------------------------------------------------------ NumPy's BLAS for the C loops
_lock = threading.Lock()
_gemm = []          # [(sgemm address, dgemm address, ilp64) or None], once looked up
_seq = []           # [the module with the gemm handed over and checked, or None], once set up


def cblas_gemm():
    """(address of cblas_sgemm, of cblas_dgemm, 64-bit integers?) in the OpenBLAS that NumPy
    loaded, or None.  Only the names whose integer width is certain are used: NumPy's
    scipy-openblas builds (``scipy_cblas_?gemm64_`` ILP64, ``scipy_cblas_?gemm`` LP64) and the
    ``cblas_?gemm64_`` ILP64 suffix."""
    with _lock:
        if not _gemm:
            _gemm.append(_find_gemm())
    return _gemm[0]


def _find_gemm():
    try:
        import ctypes
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            for s_name, d_name, ilp64 in (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", True),
                                          ("scipy_cblas_sgemm", "scipy_cblas_dgemm", False),
                                          ("cblas_sgemm64_", "cblas_dgemm64_", True)):
                sf, df = getattr(lib, s_name, None), getattr(lib, d_name, None)
                if sf is not None and df is not None:
                    return (ctypes.cast(sf, ctypes.c_void_p).value,
                            ctypes.cast(df, ctypes.c_void_p).value, ilp64)
    except (OSError, AttributeError, ValueError):
        pass
    return None


def seq_kernels():
    """The compiled module with NumPy's cblas gemm handed over and checked (so that the whole
    LSTM loops ``lstm_forward_seq`` / ``lstm_backward_seq`` may run), else None."""
    if _seq:
        return _seq[0]
    gemm = cblas_gemm()
    with _lock:
        if not _seq:
            k, ok = kernels("lstm_forward_seq"), False
            if k is not None and hasattr(k, "set_gemm") and gemm is not None:
                try:
                    k.set_gemm(*gemm)
                    ok = check_seq(k)
                except (ValueError, TypeError, RuntimeError, NotImplementedError):
                    ok = False
            _seq.append(k if ok else None)
    return _seq[0]


def check_seq(k):
    """One small LSTM step loop through the handed-over gemm, each dtype: its first gate against
    NumPy's product of the same numbers."""
    import numpy as np
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        T, N, u, K = 2, 3, 2, 5
        A = np.empty((T, N, 4 * u), dt)
        C = np.zeros((T + 1, N, u), dt)
        AC = np.empty((T, N, u), dt)
        Hc = rng.normal(size=(T + 1, N, K)).astype(dt)
        Wc = rng.normal(size=(K, 4 * u)).astype(dt)
        z0 = Hc[0] @ Wc
        k.lstm_forward_seq(A, C, AC, Hc, None, None, None, Wc)
        i0 = 1 / (1 + np.exp(-z0[:, :u]))
        if not np.allclose(A[0, :, :u], i0, rtol=1e-5, atol=1e-6):
            return False
    return True


if hasattr(os, "register_at_fork"):      # a lock held by another thread at fork stays held
    os.register_at_fork(after_in_child=lambda: globals().update(_lock=threading.Lock()))
