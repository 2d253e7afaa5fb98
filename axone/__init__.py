"""axone: a Keras-compatible deep-learning library with its own NumPy backpropagation engine."""
from . import backend
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from . import ops
from . import utils

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "backend",
           "ops", "utils", "__version__"]
