"""``keras.datasets.california_housing``."""
from .housing import load_california_housing as load_data

__all__ = ["load_data"]
