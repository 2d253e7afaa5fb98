"""Utilities: gradient checking, seeding."""
import random as _random

import numpy as np

from .. import backend
from ..autograd.gradcheck import GradientCheck, check_gradients, numerical_gradient

__all__ = ["check_gradients", "numerical_gradient", "GradientCheck", "set_random_seed"]


def set_random_seed(seed):
    """Seed every random draw of axone (init, dropout, shuffling), and Python's and NumPy's
    global generators, so the same seed gives the same run bit for bit."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_random_seed: expected a non-negative integer, received {seed!r}")
    backend.set_seed(int(seed))
    _random.seed(int(seed))
    np.random.seed(int(seed) % (2 ** 32))
