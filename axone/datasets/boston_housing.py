"""``keras.datasets.boston_housing``."""
from .housing import load_boston_housing as load_data

__all__ = ["load_data"]
