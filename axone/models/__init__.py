"""Models: functional ``Model``, ``Sequential``, and training."""
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential"]
