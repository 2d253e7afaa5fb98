"""Keras layers, by family."""
from .base import KerasTensor, Layer, Node
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Reshape
from .activation import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .normalization import BatchNormalization
from .regularization import GaussianDropout, GaussianNoise
from .merging import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add,
                      average, concatenate, maximum, minimum, multiply, subtract)

__all__ = ["Layer", "KerasTensor", "Node", "InputLayer", "Input", "Dense", "Activation",
           "Dropout", "Flatten", "Reshape", "Add", "Subtract", "Multiply", "Average", "Maximum",
           "Minimum", "Concatenate", "add", "subtract", "multiply", "average", "maximum",
           "minimum", "concatenate", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
           "BatchNormalization", "GaussianNoise", "GaussianDropout"]
