"""``keras.backend``: Keras 3's names (the settings of :mod:`axone.config`, dtype helpers,
``get_uid``, ``clear_session``) beside axone.backend's own (``rng``, ``set_seed``,
``blas_threads``, …), which are read from axone.backend when asked for.

``result_type`` follows Keras 3's promotion rules (its JAX-derived lattice, Python ``int`` and
``float`` as weak types, 64-bit results narrowed to 32 bits as on every Keras backend but
TensorFlow): it answers what Keras would, while axone's ops themselves keep NumPy's promotion.
"""
import functools
import types

from .. import backend as _backend
from ..config import (backend, epsilon, floatx, image_data_format, set_epsilon, set_floatx,
                      set_image_data_format)
from ..layers import base as _layer_base
from ..utils import is_keras_tensor, standardize_dtype

__all__ = ["backend", "clear_session", "epsilon", "floatx", "get_uid", "image_data_format",
           "is_float_dtype", "is_int_dtype", "is_keras_tensor", "result_type", "set_epsilon",
           "set_floatx", "set_image_data_format", "standardize_dtype"]


def clear_session(free_memory=True):
    """Reset Keras's global state: layer / model / metric auto-names and :func:`get_uid`
    counters start again, the session switches of keras.config (flash attention, traceback
    filtering, unsafe deserialization) return to their defaults; with ``free_memory`` Python's
    garbage collector runs."""
    _backend.clear_session(free_memory)


def get_uid(prefix=""):
    """The next number of ``prefix``'s counter: 1, 2, 3, … per prefix.  The counters are the
    ones layer names come from (``get_uid("dense")`` after one ``Dense`` is 2, and the next
    Dense is then ``dense_2``), and :func:`clear_session` resets them."""
    with _layer_base._NAME_LOCK:
        n = _layer_base._NAME_COUNTS.get(prefix, 0) + 1
        _layer_base._NAME_COUNTS[prefix] = n
    return n


def is_float_dtype(dtype):
    """True for the float types (``float16``/``32``/``64``, ``bfloat16``, the float8 types)
    after :func:`standardize_dtype`."""
    dtype = standardize_dtype(dtype)
    return dtype.startswith("float") or dtype.startswith("bfloat")


def is_int_dtype(dtype):
    """True for the signed and unsigned integer types after :func:`standardize_dtype`."""
    dtype = standardize_dtype(dtype)
    return dtype.startswith("int") or dtype.startswith("uint")


# ------------------------------------------------------------------ result_type
# Keras 3's promotion lattice: each type and the types directly above it.  "int" and "float"
# are the weak types of Python scalars.
_ABOVE = {
    "bool": ("int",),
    "int": ("uint8", "int8", "complex64"),
    "uint8": ("int16", "uint16"), "uint16": ("int32", "uint32"), "uint32": ("int64", "uint64"),
    "uint64": ("float",),
    "int8": ("int16",), "int16": ("int32",), "int32": ("int64",), "int64": ("float",),
    "float": ("bfloat16", "float16"),
    "bfloat16": ("float32",), "float16": ("float32",),
    "float32": ("float64", "complex64"), "float64": ("complex128",),
    "complex64": ("complex128",), "complex128": (),
}


def _upper_bounds():
    out = {}
    for t in _ABOVE:
        seen, todo = {t}, [t]
        while todo:
            for u in _ABOVE[todo.pop()]:
                if u not in seen:
                    seen.add(u)
                    todo.append(u)
        out[t] = frozenset(seen)
    return out


_UPPER = _upper_bounds()
_FLOAT8 = ("float8_e4m3fn", "float8_e5m2")
_NARROW = {"int64": "int32", "uint64": "uint32", "float64": "float32", "complex128": "complex64"}


@functools.lru_cache(maxsize=512)
def _join(types):
    """The least upper bound of ``types`` (a frozenset of lattice nodes)."""
    for t in types:
        if t not in _UPPER:
            raise ValueError(f"dtype={t!r} is not a valid dtype for Keras type promotion.")
    common = frozenset.intersection(*(_UPPER[t] for t in types))
    least = [c for c in common if common <= _UPPER[c]]
    if not least:
        raise ValueError(f"Input dtypes {tuple(sorted(types))} have no available implicit dtype "
                         f"promotion path. Try explicitly casting inputs to the desired output "
                         f"type.")
    return least[0]


def _weak(dtype):
    if dtype == "bool":
        return dtype
    for kind in ("float", "int", "complex"):
        if kind in dtype:
            return kind
    raise ValueError(f"Invalid value for argument `dtype`. Received: dtype={dtype}")


def result_type(*dtypes):
    """The dtype Keras 3's type promotion gives ``dtypes`` (each standardized; ``None`` is
    ``floatx()``; no argument gives ``floatx()``): the least upper bound on the promotion
    lattice, Python ``int`` / ``float`` counting as weak types that take the precision of
    ``floatx()``, and a 64-bit result narrowed to 32 bits (``result_type("float64")`` is
    ``"float32"``, as on Keras's JAX, torch and NumPy backends).  float8 types do not promote:
    ValueError."""
    if not dtypes:
        return floatx()
    for d in dtypes:
        if isinstance(d, str) and d in _FLOAT8:
            raise ValueError(f"There is no implicit conversions from float8 dtypes to others. "
                             f"You must cast it internally. Received: {dtypes}")
    args = [floatx() if d is None else d for d in dtypes]
    weak = [a is int or a is float for a in args]
    names = [standardize_dtype(a) for a in args]
    if len(names) == 1:
        out, out_weak = names[0], weak[0]
    elif len(set(names)) == 1 and not all(weak):
        out, out_weak = names[0], False
    elif all(weak):
        out, out_weak = _join(frozenset(names)), True
    else:
        out = _join(frozenset(_weak(n) if w else n for n, w in zip(names, weak)))
        out_weak = out in ("int", "float")
    if out_weak and out != "bool":
        bits = floatx()[-2:]
        kind = "f" if out == "bfloat16" else out[:1]
        out = f"int{bits}" if kind == "i" else f"uint{bits}" if kind == "u" else f"float{bits}"
    return _NARROW.get(out, out)


def _backend_name(name):
    """Whether ``name`` is one of axone.backend's own public names (``xp``, not its imports)."""
    if name.startswith("_") or not hasattr(_backend, name):
        return False
    return name == "xp" or not isinstance(getattr(_backend, name), types.ModuleType)


def __getattr__(name):
    # axone.backend's own names, read when asked for (so a rebound one is never stale)
    if _backend_name(name):
        return getattr(_backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    own = {n for n, v in globals().items()
           if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    return sorted(own | {n for n in dir(_backend) if _backend_name(n)})
