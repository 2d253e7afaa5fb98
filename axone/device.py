"""Where arrays live and which array module an op computes with (``keras.device``).

The ops take their array module from their inputs, as Chainer does::

    xp = array_module(a, b)      # numpy, or cupy when an input is a CuPy array
    y = xp.exp(a) * b

so one engine runs on NumPy or on CuPy (the optional extra ``axone[gpu]``, package
``cupy-cuda12x``) without a branch per device.  :func:`array_module` recognizes the array types
registered with :func:`register_array_module`; CuPy's ``ndarray`` registers itself the first time
one is seen (CuPy is imported only when it is asked for or one of its arrays already exists).

Device placement follows Keras 3::

    with axone.device("gpu:0"):      # or "cpu", "cpu:0", "gpu", "gpu:1", "cuda:0"
        x = axone.ops.ones((2, 2))   # created on that device
    axone.device.set_device("cpu")
    axone.device.get_device()        # "cpu:0"

The creation ops (``zeros``, ``ones``, ``arange``, …) allocate on the current device; every other
op computes where its inputs are.  The default device is ``AXONE_DEVICE`` when set, else the
CPU.  (Choosing the first GPU by itself when CuPy is installed and CUDA reports a device waits
for the whole engine — weights, flat buffers, fit's batches — to run on CuPy: until then
:data:`AUTO_GPU` is False, so installing CuPy changes nothing unless a GPU is asked for.)  A GPU asked for
without CuPy, or without a visible device, runs on the CPU and says so once (a RuntimeWarning
naming what is missing and how to install it).  :func:`to_device` and :func:`to_numpy` move
arrays between the host and a device.

This module imports only :mod:`axone.backend`.  The module itself is callable:
``axone.device("gpu:0")`` is :func:`device`.
"""
import importlib.util
import os
import sys
import threading
import types
import warnings

import numpy as np

from . import backend  # noqa: F401 - the layer above this one (floatx, the host array module)

__all__ = ["device", "set_device", "get_device", "array_module", "register_array_module",
           "to_device", "to_numpy", "current_module", "is_device_array", "gpu_available"]

_ndarray = np.ndarray

#: array type -> its array module (numpy is never in here: it is the fallback)
_MODULES = {}


def register_array_module(array_type, module):
    """Have :func:`array_module` return ``module`` for arrays of exactly ``array_type``.

    ``module`` must offer the NumPy-compatible subset the ops use (CuPy's namespace does), and
    ``module.asnumpy(arr)`` to copy an array back to the host.  Returns ``array_type``.
    """
    if not isinstance(array_type, type):
        raise TypeError(f"register_array_module: array_type must be a type, received "
                        f"{type(array_type).__name__}")
    if array_type is _ndarray or issubclass(array_type, _ndarray):
        raise ValueError("register_array_module: numpy.ndarray and its subclasses are the host "
                         "arrays; they are not registered")
    if not hasattr(module, "asnumpy"):
        raise TypeError(f"register_array_module: module {getattr(module, '__name__', module)!r} "
                        f"has no asnumpy(); it cannot copy its arrays back to the host")
    _MODULES[array_type] = module
    return array_type


def unregister_array_module(array_type):
    """Undo :func:`register_array_module` (nothing happens for a type never registered)."""
    _MODULES.pop(array_type, None)


def _unseen_type(t):
    """The module of a type not registered yet: CuPy's arrays register on first sight."""
    mod = getattr(t, "__module__", None) or ""
    if mod.split(".", 1)[0] == "cupy":
        cupy = sys.modules.get("cupy")
        if cupy is not None and isinstance(getattr(cupy, "ndarray", None), type) \
                and issubclass(t, cupy.ndarray):
            register_array_module(t, cupy)
            return cupy
    return None


def array_module(*arrays):
    """The array module of the arrays: ``numpy`` unless one of them is a registered device
    array (a CuPy array, or a type given to :func:`register_array_module`), then that one's
    module.  Scalars, ``None`` and host arrays count for nothing.  CuPy is never imported here:
    a CuPy array can only exist once CuPy is."""
    for a in arrays:
        t = type(a)
        if t is _ndarray:
            continue
        m = _MODULES.get(t)
        if m is not None:
            return m
        if t.__module__[:4] == "cupy":
            m = _unseen_type(t)
            if m is not None:
                return m
    return np


def is_device_array(arr):
    """Whether ``arr`` is a registered device array (not a host NumPy array)."""
    return array_module(arr) is not np


# ------------------------------------------------------------------ devices
_INSTALL_HINT = "pip install 'axone[gpu]' (installs cupy-cuda12x)"
_warned = set()
_gpu = None            # (cupy module or None, device count, reason it is unusable or None)
_gpu_lock = threading.Lock()


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        level, f = 1, sys._getframe(0)
        while f is not None and f.f_code.co_filename == __file__:
            level, f = level + 1, f.f_back
        warnings.warn(message, RuntimeWarning, stacklevel=level)


def _probe_gpu():
    """(cupy, device count, None) when CuPy can run, else (None, 0, what is missing); once."""
    global _gpu
    if _gpu is not None:
        return _gpu
    with _gpu_lock:
        if _gpu is not None:
            return _gpu
        found = (None, 0, "CuPy is not installed")
        try:
            spec = importlib.util.find_spec("cupy")
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            try:
                import cupy
            except Exception as e:  # a broken CUDA install: never a CuPy traceback
                found = (None, 0, f"CuPy could not be imported ({type(e).__name__}: {e})")
            else:
                try:
                    n = int(cupy.cuda.runtime.getDeviceCount())
                except Exception as e:
                    n, why = 0, f"CUDA reports no device ({type(e).__name__}: {e})"
                else:
                    why = "CUDA reports no device"
                if n > 0:
                    register_array_module(cupy.ndarray, cupy)
                    found = (cupy, n, None)
                else:
                    found = (None, 0, why)
        _gpu = found
        return found


def gpu_available():
    """Whether CuPy is installed and CUDA reports at least one device."""
    return _probe_gpu()[0] is not None


class _Device:
    """A resolved device: its canonical name, the array module that allocates there, and the
    GPU index (None for the CPU)."""
    __slots__ = ("name", "module", "index")

    def __init__(self, name, module, index):
        self.name, self.module, self.index = name, module, index

    def __repr__(self):
        return f"<device {self.name}>"


_CPU = _Device("cpu:0", np, None)


def _parse(name, what):
    """("cpu" | "gpu", index) of a Keras device name; ValueError naming ``what`` otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"{what}: expected a device name string like 'cpu', 'cpu:0' or "
                         f"'gpu:0', received {name!r} of type {type(name).__name__}")
    text = name.strip().lower()
    kind, sep, idx = text.partition(":")
    if kind == "cuda":
        kind = "gpu"
    if kind not in ("cpu", "gpu"):
        raise ValueError(f"{what}: expected a device type 'cpu' or 'gpu' (or 'cuda'), "
                         f"optionally with ':<index>', received {name!r}")
    if sep:
        if not idx.isdigit():
            raise ValueError(f"{what}: the device index must be a non-negative integer, "
                             f"received {name!r}")
        index = int(idx)
    else:
        index = 0
    if kind == "cpu" and index != 0:
        raise ValueError(f"{what}: there is one CPU device, 'cpu:0'; received {name!r}")
    return kind, index


def _resolve(name, what):
    kind, index = _parse(name, what)
    if kind == "cpu":
        return _CPU
    cupy, count, why = _probe_gpu()
    if cupy is None:
        _warn_once(why, f"{what}: {name!r} was asked for but {why}; running on the CPU. "
                        f"For the GPU: {_INSTALL_HINT}")
        return _CPU
    if index >= count:
        _warn_once(("index", index), f"{what}: {name!r} was asked for but CUDA reports "
                                     f"{count} device(s) (gpu:0 … gpu:{count - 1}); running on "
                                     f"the CPU")
        return _CPU
    return _Device(f"gpu:{index}", cupy, index)


#: pick the first visible GPU by default (see the module doc: off until the engine runs on CuPy)
AUTO_GPU = False
_default = None        # the process-wide device (set_device, AXONE_DEVICE or the automatic one)


class _Scopes(threading.local):
    stack = ()         # this thread's open ``device`` scopes (a list once one opens)


_local = _Scopes()


def _default_device():
    global _default
    if _default is None:
        env = os.environ.get("AXONE_DEVICE", "").strip()
        if env:
            _default = _resolve(env, "AXONE_DEVICE")
        elif AUTO_GPU:
            cupy, count, _ = _probe_gpu()
            _default = _Device("gpu:0", cupy, 0) if cupy is not None else _CPU
        else:
            _default = _CPU
    return _default


def _current():
    stack = _local.stack
    if stack:
        return stack[-1]
    return _default if _default is not None else _default_device()


def get_device():
    """The current device's name: ``"cpu:0"`` or ``"gpu:<index>"`` (inside a ``device`` scope,
    that scope's; else the one of ``set_device``, ``AXONE_DEVICE`` or the automatic default)."""
    return _current().name


def set_device(name):
    """Make ``name`` (``"cpu"``, ``"cpu:0"``, ``"gpu"``, ``"gpu:<i>"``) the process-wide device;
    returns the name of the device now in force (the CPU when the GPU cannot run)."""
    global _default
    _default = _resolve(name, "set_device")
    return _default.name


def current_module():
    """The array module of the current device: ``numpy`` on the CPU, ``cupy`` on a GPU."""
    stack = _local.stack
    if stack:
        return stack[-1].module
    return (_default if _default is not None else _default_device()).module


class device:
    """Context manager placing the arrays created inside it on ``device_name`` (Keras 3's
    ``keras.device``): ``with axone.device("gpu:0"): …``.  Scopes nest and are per thread.

    Raises ValueError for a malformed name; a GPU that cannot run gives the CPU and one warning.
    """
    __slots__ = ("_dev", "_cuda")

    def __init__(self, device_name):
        self._dev = _resolve(device_name, "device")
        self._cuda = None

    @property
    def name(self):
        return self._dev.name

    def __enter__(self):
        stack = _local.stack
        if stack.__class__ is not list:
            stack = _local.stack = []
        dev = self._dev
        if dev.index is not None:
            self._cuda = dev.module.cuda.Device(dev.index)
            self._cuda.__enter__()
        stack.append(dev)
        return self

    def __exit__(self, *exc):
        _local.stack.pop()
        if self._cuda is not None:
            cuda, self._cuda = self._cuda, None
            cuda.__exit__(*exc)
        return False

    def __repr__(self):
        return f"device({self._dev.name!r})"


# ------------------------------------------------------------------ moving arrays
def to_numpy(arr):
    """``arr`` as a host ``numpy.ndarray`` (device arrays copied back; host arrays as they are)."""
    m = array_module(arr)
    if m is not np:
        return m.asnumpy(arr)
    return np.asarray(arr)


def to_device(arr, device=None):
    """``arr`` on ``device`` (a name, default the current device): a host ndarray there, or
    the device module's array.  An array already there is returned as it is."""
    dev = _current() if device is None else _resolve(device, "to_device")
    src = array_module(arr)
    if dev.module is np:
        return src.asnumpy(arr) if src is not np else np.asarray(arr)
    if src is not np and src is not dev.module:
        arr = src.asnumpy(arr)
    if dev.index is not None:
        with dev.module.cuda.Device(dev.index):
            return dev.module.asarray(arr)
    return dev.module.asarray(arr)


# ``axone.device("gpu:0")`` and ``axone.device.set_device(...)`` both work: the module is callable.
class _CallableModule(types.ModuleType):
    def __call__(self, device_name):
        return device(device_name)


sys.modules[__name__].__class__ = _CallableModule
