"""Array module, default float type and the one random generator of axone.

Every op reaches NumPy through :data:`xp`, so an API-compatible array library
(CuPy) can later be slotted in here without touching the ops.  Every random
draw in axone (initializers, dropout masks, shuffling, augmentation) comes
from :func:`rng`, so :func:`set_seed` makes a run repeatable bit for bit.
"""
import numpy as np

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
    """The seeded ``numpy.random.Generator`` that every random draw uses."""
    return _rng


def set_seed(seed):
    """Reseed the backend generator (``None`` draws fresh entropy)."""
    global _rng
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"set_seed: expected a non-negative integer seed, received {seed!r}")
    _rng = np.random.default_rng(seed)
    return _rng
