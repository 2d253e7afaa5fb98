"""``keras.ops.nn`` through the alias: see :mod:`axone.compat.keras_ops`."""
from ..ops import nn as _target
from .keras_ops import view

__getattr__, __dir__ = view(_target)
