"""Reverse-mode automatic differentiation: Tensor, Function, grad mode, gradient checking."""
from .function import Function, enable_grad, is_grad_enabled, no_grad, unbroadcast
from .gradcheck import GradientCheck, check_gradients, numerical_gradient
from .tape import GradientTape, grad, value_and_grad
from .tensor import Tensor

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast",
           "check_gradients", "numerical_gradient", "GradientCheck",
           "GradientTape", "grad", "value_and_grad"]
