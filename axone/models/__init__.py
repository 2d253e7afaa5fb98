"""Models: functional ``Model``, ``Sequential``, and training."""
from .model import Model
from .saving import keras_save_model as save_model
from .saving import load_model, model_from_json
from .sequential import Sequential
from .cloning import clone_model
from .perceptron import Perceptron

__all__ = ["Model", "Sequential", "load_model", "save_model", "model_from_json", "clone_model",
           "Perceptron"]
