"""Variable: a named, trainable Tensor that holds a layer weight (Keras ``Variable``).

A variable lives on the device current when it is created (``with axone.device("gpu:0")``,
``set_device``): its initial value is computed on the host, as on the CPU, and copied there once,
so a model built on a device starts from the same numbers as on the CPU.
"""
import numpy as np

from . import backend
from .autograd.tensor import Tensor
from .device import array_module, current_module, to_numpy

_ndarray = np.ndarray


def _host(value):
    """``value`` (a Tensor, a device or host array, a number) as a host array."""
    v = value.data if isinstance(value, Tensor) else value
    if type(v) is not _ndarray and array_module(v) is not np:
        return to_numpy(v)
    return np.asarray(v)


def _value_for(data, value):
    """``value`` as an array to write into ``data``: a host array for host data; for device
    data, an array of that device (a value already there as it is, others copied across)."""
    if type(data) is _ndarray:
        return _host(value)
    v = value.data if isinstance(value, Tensor) else value
    xp = array_module(data)
    if xp is np:
        return _host(v)
    return v if array_module(v) is xp else xp.asarray(_host(v))


#: ``initializers.get``, registered by ``axone/initializers.py`` (a higher module), so that a
#: Variable accepts an initializer by name without this module importing it
_resolve_initializer = None

#: changes whenever a variable's ``trainable`` flag is set: layers cache their lists of trainable
#: weights while it (and their tracking version) stays the same
_TRAINABLE_VERSION = [0]


class Variable(Tensor):
    """A weight: a Tensor with a name, a ``trainable`` flag and in-place ``assign``.

    A model may move a variable's values into its contiguous parameter buffer;
    ``assign`` and ``set_weights`` write in place, so views stay valid.  Created while a device
    is current, its values live there (``numpy()`` copies them back to the host); ``assign``
    takes host or device values and writes them on the variable's device.
    """

    #: ``_flat``: (buffer, slice, view) when a model placed the values in a device buffer
    __slots__ = ("_trainable", "regularizer", "path", "constraint", "autocast", "aggregation",
                 "synchronization", "_flat")

    def __init__(self, initializer=None, shape=None, dtype=None, trainable=True, autocast=True,
                 aggregation="none", synchronization="auto", name=None, regularizer=None,
                 constraint=None):
        if name is not None and not isinstance(name, str):
            raise ValueError(f"Variable: argument `name` must be a string, received {name!r}")
        if isinstance(name, str) and "/" in name:
            raise ValueError(f"Variable: argument `name` must not contain '/', received {name!r}")
        if aggregation not in (None, "none", "mean", "sum", "only_first_replica"):
            raise ValueError(f"Variable {name!r}: invalid aggregation {aggregation!r}; expected "
                             f"one of None, 'none', 'mean', 'sum', 'only_first_replica'")
        if synchronization not in (None, "none", "on_read", "on_write", "auto"):
            raise ValueError(f"Variable {name!r}: invalid synchronization {synchronization!r}; "
                             f"expected one of None, 'none', 'on_read', 'on_write', 'auto'")
        if isinstance(initializer, (str, dict)):
            if _resolve_initializer is None:
                raise ValueError(f"Variable {name!r}: initializer {initializer!r} given by name, "
                                 f"but axone.initializers is not imported")
            initializer = _resolve_initializer(initializer)
        if dtype is None and shape is None and initializer is not None and not callable(initializer):
            given = initializer.data if isinstance(initializer, Tensor) else initializer
            if isinstance(given, (bool, np.bool_)):
                dtype = np.bool_
            elif isinstance(given, int):
                dtype = np.int32                       # a Python int, as Keras
            else:
                if type(given) is _ndarray or array_module(given) is np:
                    given = np.asarray(given)
                # integer and half values keep their dtype; other floats take floatx
                dtype = given.dtype if given.dtype.kind in "iub" or given.dtype == np.float16 \
                    else None
        dtype = np.dtype(dtype or backend.floatx())
        if callable(initializer) and not isinstance(initializer, (np.ndarray, Tensor)):
            if shape is None:
                raise ValueError(f"Variable {name!r}: an initializer needs a shape")
            value = np.asarray(initializer(tuple(shape), dtype=dtype), dtype=dtype)
        else:
            given = initializer.data if isinstance(initializer, Tensor) else initializer
            if type(given) is not _ndarray and array_module(given) is not np:
                value = array_module(given).array(given, dtype=dtype, copy=True)
            else:
                value = np.array(given, dtype=dtype, copy=True)
            if shape is not None and value.shape != tuple(shape):
                raise ValueError(f"Variable {name!r}: initial value has shape {value.shape}, "
                                 f"expected {tuple(shape)}")
        xp = current_module()
        if xp is not np and type(value) is _ndarray:
            value = xp.asarray(value)           # the current device: one host-to-device copy
        super().__init__(value, requires_grad=bool(trainable) and dtype.kind == "f")
        self.trainable = bool(trainable)
        self.autocast, self.aggregation, self.synchronization = bool(autocast), aggregation, \
            synchronization
        self.name = name or "variable"
        self.path = self.name
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        # as Keras's torch Variable: a frozen variable's gradient is not computed
        self._trainable = bool(value)
        self.requires_grad = self._trainable and self.data.dtype.kind == "f"
        _TRAINABLE_VERSION[0] += 1

    @property
    def value(self):
        """The variable's tensor, as Keras 3's ``Variable.value`` is the backend tensor: this
        Variable itself, so ``v.value.grad`` is ``v.grad`` and ops on ``v.value`` are
        differentiated with respect to ``v``.  It converts like an array
        (``np.asarray(v.value)``, ``v.value.numpy()``, ``.shape``, ``float(...)`` for one
        element); ``v.value = x`` assigns in place."""
        return self

    @value.setter
    def value(self, value):
        self.assign(value)

    def assign(self, value):
        """Write ``value`` into this variable in place (its shape must match)."""
        d = self.data
        v = _value_for(d, value)
        if v.shape != d.shape:
            raise ValueError(f"Variable {self.path!r}: cannot assign a value of shape {v.shape} "
                             f"to a variable of shape {self.data.shape}")
        d[...] = v
        return self

    def assign_add(self, value):
        """``v ← v + value`` in place."""
        d = self.data
        d[...] += _value_for(d, value)
        return self

    def assign_sub(self, value):
        """``v ← v − value`` in place."""
        d = self.data
        d[...] -= _value_for(d, value)
        return self

    def __repr__(self):
        d = self.data if type(self.data) is _ndarray else to_numpy(self.data)
        return (f"<Variable path={self.path}, shape={self.data.shape}, dtype={self.data.dtype}, "
                f"value={np.array2string(d, threshold=6, edgeitems=2)}>")
