"""``keras.ops.core`` through the alias: see :mod:`axone.compat.keras_ops`."""
from ..ops import core as _target
from .keras_ops import view

__getattr__, __dir__ = view(_target)
