"""clone_model: the same architecture with fresh weights, as Keras 3's ``models.clone_model``."""
from ..layers.base import KerasTensor, OpLayer, _flatten, _map
from ..layers.core import Input, InputLayer
from . import saving
from .model import Model
from .sequential import Sequential

__all__ = ["clone_model"]


def _default_clone(layer):
    if isinstance(layer, OpLayer):          # an op on symbolic tensors: no weights, no config
        return layer
    return layer.__class__.from_config(layer.get_config())


def clone_model(model, input_tensors=None, clone_function=None, call_function=None,
                recursive=False, **kwargs):
    """A new model with ``model``'s architecture and new weights; compiled with the same
    losses, metrics (new objects) and optimizer config (fresh state) when ``model`` was
    compiled, as Keras 3 does.

    Args: see :func:`_clone`."""
    clone = _clone(model, input_tensors, clone_function, call_function, recursive, **kwargs)
    if getattr(model, "compiled", False):
        saving.compile_from_entry(clone, saving.compile_entry(model))
    return clone


def _clone(model, input_tensors=None, clone_function=None, call_function=None,
           recursive=False, **kwargs):
    """A new model with ``model``'s architecture and new weights.

    Args:
        model: a Sequential, functional or subclassed model (a subclass through
            ``from_config(get_config())``, as Keras).
        input_tensors: symbolic tensors (from ``Input``) the clone is called on instead of new
            Inputs.
        clone_function: ``layer -> new layer`` (default: ``from_config(get_config())``).
        call_function: ``(layer, *args, **kwargs) -> outputs``, how each cloned layer is called
            (functional models).
        recursive: clone nested models layer by layer with ``clone_function`` too.
    """
    if kwargs:
        raise ValueError(f"clone_model: unexpected keyword argument(s) {sorted(kwargs)}")
    if not isinstance(model, Model):
        raise TypeError(f"clone_model: expected a Model, received {type(model).__name__} {model!r}")
    if clone_function is not None and not callable(clone_function):
        raise TypeError(f"clone_model: clone_function must be callable, received {clone_function!r}")
    if call_function is not None and not callable(call_function):
        raise TypeError(f"clone_model: call_function must be callable, received {call_function!r}")
    fn = clone_function or _default_clone
    if recursive:
        inner = fn

        def fn(layer):
            if isinstance(layer, Model) and (isinstance(layer, Sequential) or layer._is_graph):
                return clone_model(layer, clone_function=clone_function,
                                   call_function=call_function, recursive=True)
            return inner(layer)
    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError("clone_model: call_function is only supported for functional "
                             "models; received a Sequential model")
        layers = [fn(l) for l in model.layers]
        if input_tensors is not None:
            t = _flatten(input_tensors)
            if len(t) != 1 or not isinstance(t[0], KerasTensor):
                raise ValueError(f"clone_model: a Sequential model takes one input tensor, "
                                 f"received {input_tensors!r}")
            first = [t[0]]
        elif model._input_layer is not None:
            first = [InputLayer.from_config(model._input_layer.get_config())]
        else:
            first = []
        return Sequential(first + layers, name=model.name, trainable=model.trainable)
    if not model._is_graph:
        if clone_function is not None or input_tensors is not None or call_function is not None:
            raise ValueError("clone_model: clone_function, call_function and input_tensors are "
                             "only supported for Sequential and functional models; a subclassed "
                             "model is cloned through from_config(get_config())")
        if type(model).get_config is Model.get_config:
            raise ValueError(f"clone_model: the subclassed model {model.name!r} has no "
                             f"get_config(); define it (with from_config if needed) to clone it")
        return saving.model_from_config(saving.model_entry(model),
                                        {type(model).__name__: type(model)})
    if input_tensors is not None:
        new_inputs = _flatten(input_tensors)
        if len(new_inputs) != len(model._inputs) or not all(
                isinstance(t, KerasTensor) for t in new_inputs):
            raise ValueError(f"clone_model: model {model.name!r} has {len(model._inputs)} "
                             f"input(s); input_tensors must be as many symbolic tensors, received "
                             f"{input_tensors!r}")
    else:
        new_inputs = [Input(batch_shape=t.shape, dtype=t.dtype, name=t._history[0].name)
                      for t in model._inputs]
    values = {id(old): new for old, new in zip(model._inputs, new_inputs)}
    clones = {}

    def sub(x):
        return values[id(x)] if isinstance(x, KerasTensor) else x
    for node in model._nodes:
        layer = node.layer
        if id(layer) not in clones:
            clones[id(layer)] = fn(layer)
        new_layer = clones[id(layer)]
        args = _map(sub, node.inputs)
        kw = {k: _map(sub, v) for k, v in node.call_kwargs.items()}
        out = call_function(new_layer, args, **kw) if call_function else new_layer(args, **kw)
        for old_t, new_t in zip(node.flat_outputs, _flatten(out)):
            values[id(old_t)] = new_t
    ins = _map(lambda t: values[id(t)], model._input_struct)
    outs = _map(lambda t: values[id(t)], model._output_struct)
    return Model(ins, outs, name=model.name, trainable=model.trainable)
