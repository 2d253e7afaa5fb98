"""Sequential: a plain stack of layers, each feeding the next."""
import numpy as np

from ..layers.base import KerasTensor, Layer, bump_tracking, unique_name
from ..layers.core import InputLayer
from . import saving
from .model import Model

__all__ = ["Sequential"]


class Sequential(Model):
    """A linear stack of layers: ``Sequential([Dense(20, input_shape=(10,)), Dense(3)])``.

    The input shape comes from an ``InputLayer``/``Input`` given first, from the
    legacy ``input_shape=``/``input_dim=`` of the first layer, or from the first
    data the model sees.
    """

    _builds_graph_from_data = True

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(name=name or unique_name("sequential"), trainable=trainable)
        self._seq_layers = []
        self._input_layer = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer, rebuild=True):
        """Append a layer (building it now if the input shape is known)."""
        if isinstance(layer, KerasTensor):
            if layer._history is not None and isinstance(layer._history[0], InputLayer):
                layer = layer._history[0]
            else:
                raise TypeError("Sequential.add: only an Input(...) tensor or a Layer can be added")
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer instance, received {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self._seq_layers or self._input_layer is not None:
                raise ValueError("Sequential.add: an InputLayer can only be the first layer")
            self._input_layer = layer
            return
        if any(l is layer for l in self._seq_layers):
            raise ValueError(f"Sequential.add: layer {layer.name!r} is already in the model")
        if not self._seq_layers and self._input_layer is None and layer._input_shape_arg is not None:
            self._input_layer = InputLayer(shape=layer._input_shape_arg,
                                           batch_size=layer._batch_size_arg)
        self._seq_layers.append(layer)
        self.__dict__["_tracked_layers"].append(layer)
        bump_tracking()
        if self._input_layer is not None:
            try:
                if self._is_graph:
                    out = layer(self._outputs[0])
                    self._init_graph(self._input_layer.output_tensor, out)
                else:
                    self._build_graph()
            except Exception:
                self._seq_layers.pop()
                self.__dict__["_tracked_layers"].remove(layer)
                bump_tracking()
                raise

    def pop(self):
        if not self._seq_layers:
            raise ValueError("Sequential.pop: the model has no layers")
        layer = self._seq_layers.pop()
        self.__dict__["_tracked_layers"].remove(layer)
        bump_tracking()
        self._is_graph = False
        if self._input_layer is not None and self._seq_layers:
            self._build_graph()
        return layer

    def _build_graph(self):
        x = self._input_layer.output_tensor
        for layer in self._seq_layers:
            x = layer(x)
        self._init_graph(self._input_layer.output_tensor, x)

    def build(self, input_shape=None):
        if self._is_graph:
            return
        if input_shape is None:
            raise ValueError(f"Sequential {self.name!r}: build needs an input shape, e.g. build((None, 4))")
        shape = tuple(input_shape)
        self._input_layer = InputLayer(shape=shape[1:], batch_size=shape[0])
        if self._seq_layers:
            self._build_graph()
        self.built = True

    def _ensure_built_from_data(self, inputs):
        if self._is_graph:
            return
        x = inputs[0] if isinstance(inputs, (list, tuple)) and inputs and hasattr(inputs[0], "shape") else inputs
        shape = tuple(np.shape(x.data if hasattr(x, "data") and not hasattr(x, "to_numpy") else x))
        if not self._seq_layers:
            raise ValueError(f"Sequential {self.name!r} has no layers")
        self.build((None,) + shape[1:])

    @property
    def layers(self):
        return list(self._seq_layers)

    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable, "layers": []}
        if self._input_layer is not None:
            cfg["layers"].append({"class_name": "InputLayer", "config": self._input_layer.get_config()})
        cfg["layers"] += [{"class_name": type(l).__name__, "config": l.get_config()} for l in self._seq_layers]
        return cfg


    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A Sequential model from :meth:`get_config` (a fresh copy, new weights)."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"Sequential.from_config: expected a config with a 'layers' list, "
                             f"received {config!r}")
        return saving.model_from_config({"class_name": "Sequential", "config": config},
                                        custom_objects)


saving.register_model_class("Sequential", Sequential)
