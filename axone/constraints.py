"""Weight constraints (Keras ``keras.constraints``): projections applied to a weight after each
optimizer update, ``w ← constraint(w)``.

A layer attaches its ``kernel_constraint``, ``bias_constraint``, … to the weight
(``Variable.constraint``, like Keras's ``add_weight(constraint=…)``); the optimizer applies it
after every update (``Optimizer.apply_constraints``), on a model's flat buffer in ``fit`` and in
``apply_gradients`` for custom loops.  A constraint is a :class:`Constraint` or any callable
``f(w) -> w'`` of the same shape.

With n = ‖w‖₂ taken along ``axis`` (kept for broadcasting) and ε = ``backend.epsilon()``:

* ``MaxNorm(c)``:            w · clip(n, 0, c) / (ε + n)
* ``MinMaxNorm(a, b, r)``:   w · (r·clip(n, a, b) + (1 − r)·n) / (ε + n)
* ``UnitNorm()``:            w / (ε + n)
* ``NonNeg()``:              max(w, 0)
"""
import math
import threading

import numpy as np

from . import backend
from .autograd.tensor import Tensor

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "max_norm",
           "min_max_norm", "non_neg", "unit_norm", "get", "serialize", "deserialize"]

# Constraint subclasses by class name, so a layer config naming a user's subclass restores it
_REGISTRY = {}
_SCOPE = threading.local()


def _values(w):
    """The ndarray of a weight given as a Variable, a Tensor or an array-like."""
    if isinstance(w, Tensor):
        return w.data
    a = np.asarray(w)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"a constraint expects a numeric weight, received dtype {a.dtype}")
    # an ndarray keeps its float dtype; Python numbers and ints become floatx, as Keras converts
    return a if a.dtype.kind == "f" and isinstance(w, np.ndarray) else a.astype(backend.floatx())


def _check_number(who, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ValueError(f"{who}: {name} must be a finite number, received {value!r}")
    return value


def _check_axis(who, axis):
    """``axis`` as Keras takes it: an int or a list/tuple of ints (kept as given for the config)."""
    items = axis if isinstance(axis, (list, tuple)) else [axis]
    if not items or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in items):
        raise TypeError(f"{who}: axis must be an int or a list of ints, received {axis!r}")
    return list(axis) if isinstance(axis, tuple) else axis


def _norms(who, w, axis):
    """‖w‖₂ along ``axis`` with the reduced axes kept (shape broadcastable to w)."""
    ax = tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else int(axis)
    for a in (ax if isinstance(ax, tuple) else (ax,)):
        if not -w.ndim <= a < max(w.ndim, 1):
            raise ValueError(f"{who}: axis {axis!r} is out of range for a weight of shape "
                             f"{w.shape} (rank {w.ndim})")
    if w.ndim == 0:
        ax = None
    return np.sqrt(np.sum(np.square(w), axis=ax, keepdims=True))


class Constraint:
    """Base class of weight constraints: ``__call__(w)`` returns the projected weight.

    The base class returns ``w`` unchanged.  A subclass overrides ``__call__`` (and
    ``get_config`` if it has arguments); it is found again by its class name when a layer
    config that names it is restored.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Norm of each slice along ``axis`` at most ``max_value``:  w · clip(n, 0, c) / (ε + n).

    For a Dense kernel (input_dim, units), ``axis=0`` bounds each unit's incoming weights; for a
    Conv2D kernel (kh, kw, in, out) use ``axis=[0, 1, 2]`` to bound each filter.
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value = _check_number("MaxNorm", "max_value", max_value)
        if max_value < 0:
            raise ValueError(f"MaxNorm: max_value must be non-negative, received {max_value!r}")
        self.axis = _check_axis("MaxNorm", axis)

    def __call__(self, w):
        w = _values(w)
        n = _norms("MaxNorm", w, self.axis)
        desired = np.clip(n, 0, self.max_value)
        return Tensor(w * (desired / (backend.epsilon() + n)))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Norm of each slice along ``axis`` moved into [min_value, max_value] at ``rate``:

        w · (rate·clip(n, min_value, max_value) + (1 − rate)·n) / (ε + n)

    ``rate=1`` enforces the bounds strictly; ``rate < 1`` moves towards them step by step.
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _check_number("MinMaxNorm", "min_value", min_value)
        self.max_value = _check_number("MinMaxNorm", "max_value", max_value)
        self.rate = _check_number("MinMaxNorm", "rate", rate)
        if min_value > max_value:
            raise ValueError(f"MinMaxNorm: min_value ({min_value!r}) must not exceed max_value "
                             f"({max_value!r})")
        self.axis = _check_axis("MinMaxNorm", axis)

    def __call__(self, w):
        w = _values(w)
        n = _norms("MinMaxNorm", w, self.axis)
        desired = self.rate * np.clip(n, self.min_value, self.max_value) + (1 - self.rate) * n
        return Tensor(w * (desired / (backend.epsilon() + n)))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


class NonNeg(Constraint):
    """Non-negative weights: max(w, 0)."""

    def __call__(self, w):
        return Tensor(np.maximum(_values(w), 0))


class UnitNorm(Constraint):
    """Unit norm of each slice along ``axis``:  w / (ε + n)."""

    def __init__(self, axis=0):
        self.axis = _check_axis("UnitNorm", axis)

    def __call__(self, w):
        w = _values(w)
        return Tensor(w / (backend.epsilon() + _norms("UnitNorm", w, self.axis)))

    def get_config(self):
        return {"axis": self.axis}


# Keras's lower-case aliases are the classes themselves
max_norm, min_max_norm, non_neg, unit_norm = MaxNorm, MinMaxNorm, NonNeg, UnitNorm

_BUILTIN = {"Constraint": Constraint, "MaxNorm": MaxNorm, "MinMaxNorm": MinMaxNorm,
            "NonNeg": NonNeg, "UnitNorm": UnitNorm}
_NAMES = dict(_BUILTIN)
_NAMES.update({"constraint": Constraint, "max_norm": MaxNorm, "min_max_norm": MinMaxNorm,
               "non_neg": NonNeg, "unit_norm": UnitNorm})


def serialize(constraint):
    """Keras's serialized form: ``{"module", "class_name", "config", "registered_name"}``
    (``None`` stays ``None``; a plain function is named, as Keras names it)."""
    if constraint is None:
        return None
    if isinstance(constraint, Constraint):
        cls = type(constraint)
        builtin = _BUILTIN.get(cls.__name__) is cls
        return {"module": "keras.constraints" if builtin else cls.__module__,
                "class_name": cls.__name__, "config": constraint.get_config(),
                "registered_name": None if builtin else cls.__name__}
    if callable(constraint):
        name = getattr(constraint, "__name__", None)
        if not name or name == "<lambda>":
            raise ValueError(f"constraints.serialize: cannot serialize {constraint!r}; a lambda has "
                             f"no name to restore it by: use a named function or a Constraint "
                             f"subclass")
        return {"module": getattr(constraint, "__module__", None), "class_name": "function",
                "config": name, "registered_name": name}
    raise TypeError(f"constraints.serialize: expected a Constraint or a callable, received "
                    f"{constraint!r}")


class _CustomObjects:
    """``with custom_objects_scope({"name": obj}):`` names that ``deserialize`` also resolves."""

    def __init__(self, objects):
        self.objects = dict(objects or {})

    def __enter__(self):
        stack = getattr(_SCOPE, "stack", None)
        if stack is None:
            stack = _SCOPE.stack = []
        stack.append(self.objects)
        return self

    def __exit__(self, *exc):
        _SCOPE.stack.pop()
        return False


def custom_objects_scope(objects):
    return _CustomObjects(objects)


def _lookup(name, custom_objects):
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    for scope in reversed(getattr(_SCOPE, "stack", None) or []):
        if name in scope:
            return scope[name]
    return _NAMES.get(name) or _REGISTRY.get(name)


def deserialize(config, custom_objects=None):
    """A constraint from ``serialize``'s dict (or a name); user objects by ``custom_objects``."""
    if isinstance(config, str):
        return get(config) if custom_objects is None else _from_name(config, custom_objects)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"constraints.deserialize: expected a dict with 'class_name' and "
                         f"'config', received {config!r}")
    name, cfg = config["class_name"], config.get("config") or {}
    if name == "function":
        fname = config.get("registered_name") or cfg
        fn = _lookup(fname, custom_objects) if isinstance(fname, str) else None
        if fn is None or not callable(fn):
            raise ValueError(f"Unknown constraint function {fname!r}: pass it in "
                             f"custom_objects={{{fname!r}: ...}}")
        return fn
    cls = _lookup(name, custom_objects) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"Unknown constraint {name!r}; known: {sorted(_BUILTIN)} and Constraint "
                         f"subclasses defined in this program (or pass custom_objects)")
    if not isinstance(cfg, dict):
        raise ValueError(f"constraints.deserialize: the config of {name!r} must be a dict, "
                         f"received {cfg!r}")
    if isinstance(cls, type):
        try:
            return cls.from_config(cfg)
        except TypeError as e:
            raise ValueError(f"constraints.deserialize: cannot build {name!r} from config {cfg!r}: "
                             f"{e}") from None
    return cls


def _from_name(name, custom_objects=None):
    obj = _lookup(name, custom_objects)
    if obj is None:
        raise ValueError(f"Could not interpret constraint identifier: {name!r}; valid names: "
                         f"{sorted(_NAMES)}")
    return obj() if isinstance(obj, type) else obj


def get(identifier):
    """A constraint from ``None``, a name (``"non_neg"``, ``"MaxNorm"``), a config dict, a class,
    an instance or a plain callable ``f(w) -> w'``."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return _from_name(identifier)
    if isinstance(identifier, type):
        obj = identifier()
        if callable(obj):
            return obj
    elif callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret constraint identifier: {identifier!r}")
