"""``keras.ops.image`` through the alias: see :mod:`axone.compat.keras_ops`."""
from ..ops import image as _target
from .keras_ops import view

__getattr__, __dir__ = view(_target)
