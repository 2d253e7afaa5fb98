"""axone: a Keras-compatible deep-learning library with its own NumPy backpropagation engine."""
from . import backend
from . import distribution
from . import device
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from .autograd import GradientTape, grad, value_and_grad
from .variables import Variable
from . import ops
from . import random
from . import (activations, callbacks, constraints, initializers, losses, metrics, optimizers,
               regularizers, utils)
from . import layers
from .layers import Input, KerasTensor, Layer
from . import models
from .models import Model, Sequential
from . import datasets
from . import saving

__version__ = "0.1.0"

__all__ = ["Tensor", "Variable", "Function", "no_grad", "enable_grad", "is_grad_enabled",
           "backend", "ops", "random", "activations", "callbacks", "constraints", "initializers",
           "losses", "metrics", "optimizers", "regularizers", "utils", "layers", "models", "datasets",
           "saving", "Input", "KerasTensor", "Layer", "Model", "Sequential", "__version__",
           "GradientTape", "grad", "value_and_grad"]
