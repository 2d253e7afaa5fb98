"""Model: a functional graph of layers (``Model(inputs, outputs)``), or a subclass with ``call``.

The functional graph is the list of layer calls (nodes) recorded when layers
were called on symbolic inputs, in an order where every node comes after the
nodes that feed it; running the model runs those calls on real data.
Training (compile / fit / evaluate / predict) lives in :mod:`.training`.
"""
import inspect
import threading
import weakref

import numpy as np

from ..autograd.function import is_grad_enabled
from ..autograd.tensor import Tensor
from ..device import current_module
from ..layers import base as layer_base
from ..layers.base import KerasTensor, Layer, _flatten, _map, unique_name
from ..layers.core import InputLayer
from . import _work, saving
from .training import Trainer

__all__ = ["Model"]


def _graph_nodes(inputs, outputs):
    """Nodes between ``inputs`` and ``outputs`` in execution order (inputs' nodes excluded)."""
    input_ids = {id(t) for t in inputs}
    order, seen = [], set()
    for out in outputs:
        if not isinstance(out, KerasTensor) or out._history is None:
            raise ValueError(f"Model: outputs must be symbolic tensors made by calling layers on "
                             f"Input(...), received {out!r}")
        stack = [(out._history[1], False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in seen and not expanded:
                continue
            if expanded:
                order.append(node)
                continue
            seen.add(id(node))
            stack.append((node, True))
            for t in reversed(node.flat_inputs):
                if id(t) in input_ids:
                    continue
                if t._history is None:
                    raise ValueError(f"Model: tensor {t!r} has no history")
                stack.append((t._history[1], False))
    for node in order:
        if isinstance(node.layer, InputLayer) and id(node.flat_outputs[0]) not in input_ids:
            raise ValueError(
                f"Graph disconnected: cannot obtain the value of tensor {node.flat_outputs[0]!r} "
                f"(from layer {node.layer.name!r}); it is not among the model's inputs")
    return [n for n in order if not isinstance(n.layer, InputLayer)]


def keras_layer_order(inputs, outputs):
    """The layers between ``inputs`` and ``outputs`` in the order Keras 3's functional model
    lists them (``model.layers``, and so ``weights`` and the layer order of weight files): by
    decreasing depth (the longest path from a layer's node to an output), layers of equal depth
    in the order a depth-first walk from the outputs first reaches them; an input that no output
    reaches comes first among the layers of depth 0."""
    input_ids = {id(t) for t in inputs}
    finished, nodes, index = set(), [], {}        # nodes: post-order, decreasing depth
    for out in outputs:
        stack = [(out, False)]
        while stack:
            t, done = stack.pop()
            layer, node = t._history[0], t._history[1]
            if done:
                if id(node) not in finished:
                    finished.add(id(node))
                    nodes.append(node)
                continue
            if id(node) in finished:
                continue
            index.setdefault(id(layer), (len(index), layer))
            stack.append((t, True))
            if not isinstance(layer, InputLayer) and id(t) not in input_ids:
                for x in reversed(node.flat_inputs):
                    stack.append((x, False))
    node_depth, layer_depth = {}, {}
    for node in reversed(nodes):
        d = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = d
        node_depth[id(node)] = d
        for x in node.flat_inputs:
            parent = x._history[1]
            node_depth[id(parent)] = max(d + 1, node_depth.get(id(parent), 0))
    for t in inputs:
        layer = t._history[0]
        if id(layer) not in layer_depth:
            layer_depth[id(layer)] = 0
            index[id(layer)] = (-1, layer)
    layers = [index[k][1] for k in layer_depth]
    return sorted(layers, key=lambda l: (-layer_depth[id(l)], index[id(l)][0]))


_PLANS = weakref.WeakKeyDictionary()     # model -> (its graph's nodes, Model._plan)

_BLIND = {}


def _training_blind(model):
    """True when no layer of ``model`` (nested ones too) computes anything different with
    training=True: none whose ``call`` takes ``training``, except a frozen BatchNormalization
    (Keras 3 runs it at inference whatever the flag) and the nested models themselves."""
    from ..layers.normalization import BatchNormalization
    stack = list(model._sublayers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, Model):
            if not layer._is_graph or type(layer).call is not Model.call:
                return False
            stack.extend(layer._sublayers)
            continue
        if type(layer) is BatchNormalization and not layer.trainable:
            continue
        cls = type(layer)
        blind = _BLIND.get(cls)
        if blind is None:
            try:
                params = inspect.signature(cls.call).parameters
            except (TypeError, ValueError):
                params = {"training": None}
            blind = _BLIND[cls] = "training" not in params and not any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if not blind or layer._sublayers:
            return False
    return True


class Model(Trainer, Layer):
    """A model: layers joined in a graph, with training and inference.

    Functional use::

        inputs = Input(shape=(4,))
        x = Dense(16, activation="relu")(inputs)
        outputs = Dense(3, activation="softmax")(x)
        model = Model(inputs, outputs)

    Several inputs and outputs are given as lists; a model is itself a layer
    and can be called inside another model.  Subclasses may instead define
    their layers in ``__init__`` and the computation in ``call``.
    """

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        default = "functional" if inputs is not None else None
        if name is None:
            from ..layers.base import to_snake_case
            name = unique_name(default or to_snake_case(type(self).__name__))
        Layer.__init__(self, name=name, trainable=trainable, **kwargs)
        Trainer.__init__(self)
        self._is_graph = False
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model: give both inputs and outputs, e.g. Model(inputs, outputs)")
            self._init_graph(inputs, outputs)

    # ---------------------------------------------------------------- graph
    def _init_graph(self, inputs, outputs):
        flat_in = _flatten(inputs)
        if any(isinstance(t, KerasTensor) and t._history is not None
               and not isinstance(t._history[0], InputLayer) for t in flat_in):
            inputs, outputs = _cut_at(inputs, outputs)
        self._input_struct = inputs
        self._output_struct = outputs
        self._inputs = _flatten(inputs)
        self._outputs = _flatten(outputs)
        for t in self._inputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model: inputs must come from Input(...), received {type(t).__name__}")
            if not isinstance(t._history[0], InputLayer):
                raise ValueError(f"Model: every input must be the output of an Input/InputLayer, "
                                 f"received {t!r}")
        self._nodes = _graph_nodes(self._inputs, self._outputs)
        layers = [t._history[0] for t in self._inputs]
        for node in self._nodes:
            if node.layer not in layers:
                layers.append(node.layer)
        ordered = keras_layer_order(self._inputs, self._outputs)
        if sorted(map(id, ordered)) == sorted(map(id, layers)):
            layers = ordered
        self._graph_layers = layers
        tl = self.__dict__["_tracked_layers"]
        for layer in layers:
            if layer not in tl:
                tl.append(layer)
        layer_base.bump_tracking()
        self._is_graph = True
        self.built = True

    @property
    def inputs(self):
        return list(self._inputs) if self._is_graph else None

    @property
    def outputs(self):
        return list(self._outputs) if self._is_graph else None

    @property
    def input(self):
        if not self._is_graph:
            raise AttributeError(f"Model {self.name!r} has no defined input yet")
        return self._input_struct

    @property
    def output(self):
        if not self._is_graph:
            raise AttributeError(f"Model {self.name!r} has no defined output yet")
        return self._output_struct

    @property
    def input_shape(self):
        return _map(lambda t: t.shape, self.input)

    @property
    def output_shape(self):
        return _map(lambda t: t.shape, self.output)

    @property
    def layers(self):
        if self._is_graph:
            return list(self._graph_layers)
        return list(self._sublayers)

    def get_layer(self, name=None, index=None):
        if index is not None:
            layers = self.layers
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: index {index} is out of range for a model with "
                                 f"{len(layers)} layers")
            return layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name!r}. Existing layers are: {[l.name for l in self.layers]}")

    def _input_dtypes(self):
        if not self._is_graph:
            return None
        return [t.dtype for t in self._inputs]

    def _plan(self):
        """The recorded layer calls as flat tuples (made once per graph): layer, the key of its
        single input (or None), node, call kwargs (without ``training``), the key of its single
        output (or None), the keys of the values no later call reads (dropped after this one,
        so that a forward pass without a graph holds only the live activations, not all of
        them), and the training flag given in the functional call (used when the model is
        called with training=None)."""
        # kept beside the model, not in it: the keys are ids of this model's own graph, and a
        # deep or pickled copy makes its own
        cached = _PLANS.get(self)
        if cached is not None and cached[0] is self._nodes:
            return cached[1]
        last = {}
        for i, node in enumerate(self._nodes):
            reads = list(node.flat_inputs) + [t for v in node.call_kwargs.values()
                                              for t in _flatten(v) if isinstance(t, KerasTensor)]
            for t in reads:
                last[id(t)] = i
        keep = {id(o) for o in self._outputs}
        drops = [[] for _ in self._nodes]
        for key, i in last.items():
            if key not in keep:
                drops[i].append(key)
        plan = []
        for node, drop in zip(self._nodes, drops):
            single_in = len(node.flat_inputs) == 1 and not isinstance(node.inputs, (list, tuple))
            kwargs = {k: v for k, v in node.call_kwargs.items() if k != "training"}
            plan.append((node.layer, id(node.flat_inputs[0]) if single_in else None, node,
                         kwargs if not node.kw_symbolic else None,
                         id(node.flat_outputs[0]) if len(node.flat_outputs) == 1 else None,
                         tuple(drop), node.call_kwargs.get("training")))
        _PLANS[self] = (self._nodes, plan)
        return plan

    def _run_graph(self, xs, training=None):
        """Run the recorded layer calls on real tensors ``xs`` (one per input)."""
        values = {}
        for kt, x in zip(self._inputs, xs):
            values[id(kt)] = x
        for layer, in_key, node, kwargs, out_key, drop, fixed in self._plan():
            if in_key is not None:
                args = values[in_key]
            else:
                args = _map(lambda t: values[id(t)], node.inputs)
            if kwargs is None:
                kwargs = {k: _map(lambda t: values[id(t)] if isinstance(t, KerasTensor) else t, v)
                          for k, v in node.call_kwargs.items() if k != "training"}
            # Keras 3: a training flag given in the functional call is the call's mode when the
            # model is called without one (model(x)); fit's True and predict's False win over it
            t = fixed if training is None else training
            out = layer(args, training=t, **kwargs) if kwargs else layer(args, training=t)
            if out_key is not None:
                values[out_key] = out
            else:
                for kt, o in zip(node.flat_outputs, _flatten(out)):
                    values[id(kt)] = o
            for key in drop:
                values.pop(key, None)
        return [values[id(o)] for o in self._outputs]

    def call(self, inputs, training=None):
        if not self._is_graph:
            raise NotImplementedError(f"Model {self.name!r}: subclasses without a functional graph "
                                      f"must implement call(inputs, training=None)")
        xs = _flatten(inputs)
        if len(xs) != len(self._inputs):
            raise ValueError(f"Model {self.name!r} expects {len(self._inputs)} input(s), "
                             f"received {len(xs)}")
        outs = self._run_graph(xs, training=training)
        return self._restructure(outs)

    def _restructure(self, outs):
        if isinstance(self._output_struct, dict):
            return dict(zip(self._output_struct, outs))
        if not isinstance(self._output_struct, (list, tuple)):
            return outs[0]
        return list(outs)

    def __call__(self, inputs, *args, training=None, **kwargs):
        flat = _flatten(inputs)
        symbolic = any(isinstance(t, KerasTensor) for t in flat)
        if not self._is_graph and not self.built and not symbolic:
            self._ensure_built_from_data(inputs)
        if symbolic:
            return Layer.__call__(self, inputs, *args, training=training, **kwargs)
        # the outermost model call starts a new set of add_loss / activity terms (Keras 3)
        depth = _CALLS.__dict__.get("depth", 0)
        if depth == 0 and (self._has_activity_reg or self._added_losses
                           or layer_base.added_loss_count() != self.__dict__.get("_loss_mark")):
            self._clear_activity_losses()
            self.__dict__["_loss_mark"] = layer_base.added_loss_count()
        _CALLS.depth = depth + 1
        try:
            # small eager calls run OpenBLAS on one thread, as fit and predict do
            with _work.call_scope(self, flat):
                if not args and not kwargs:
                    outs = self._frozen_call(flat, training)
                    if outs is not None:
                        return outs
                return Layer.__call__(self, inputs, *args, training=training, **kwargs)
        finally:
            _CALLS.depth = depth

    def _frozen_call(self, flat, training=None):
        """The call at inference on the model's array plan (models/_inference.py, what a
        one-batch ``predict`` runs), or None where the graph must run: the plan's results as
        Tensors that need no gradient, for a call with nothing to differentiate — host inputs of
        the model's input dtypes that need no gradient and carry no mask, and no weight that
        needs one or no graph recorded at all (a frozen base called eagerly, a nested model in
        ``predict`` or ``evaluate``), called with training None or False — or with
        training=True where no layer's call depends on it (a frozen VGG16 base in ``fit``:
        Keras 3's fit calls it with training=True, and frozen BatchNormalization runs at
        inference all the same)."""
        if (not self._is_graph or type(self).call is not Model.call or self._added_losses
                or len(flat) != len(self._inputs)):
            return None
        if (training or (training is None and any(row[6] for row in self._plan()))) \
                and not _training_blind(self):
            return None                    # a call that runs some layer in training mode
        arrays = []
        for t, kt in zip(flat, self._inputs):
            if type(t) is Tensor:
                if t.requires_grad or getattr(t, "_keras_mask", None) is not None:
                    return None
                a = t.data
            elif type(t) is np.ndarray:
                a = t
            else:
                return None
            if type(a) is not np.ndarray or a.dtype != np.dtype(kt.dtype) \
                    or a.ndim != len(kt.shape):
                return None
            arrays.append(a)
        if is_grad_enabled() and any(w.requires_grad for w in self.weights):
            return None
        from . import _inference
        plan = _inference.plan_of(self)
        if plan is None:
            return None
        mark = layer_base.added_loss_count()
        try:
            outs = _inference.run_plan(self, plan, arrays)
        except _inference.NeedsGraph:
            _inference.drop_plan(self)
            return None
        if layer_base.added_loss_count() != mark:
            self._added_losses = True
        return self._restructure([Tensor(o) for o in outs])

    # ---------------------------------------------------------- stateless
    def stateless_call(self, trainable_variables, non_trainable_variables, *args,
                       return_losses=False, **kwargs):
        """Call the model with the given weight values instead of its own, as Keras 3's
        JAX-style API: ``outputs, non_trainable_variables = model.stateless_call(trainable,
        non_trainable, x, training=True)``.  The values are lists in ``trainable_variables`` /
        ``non_trainable_variables`` order; the model's own weights are left as they were.
        Gradients flow to the given trainable values (``axone.value_and_grad`` over a function
        calling this); the returned non-trainable values hold the updates of the call (batch
        statistics' moving averages).  ``return_losses=True`` also returns the ``add_loss``
        terms of the call."""
        tv, ntv = self.trainable_variables, self.non_trainable_variables
        trainable_variables = list(trainable_variables)
        non_trainable_variables = list(non_trainable_variables)
        for given, own, what in ((trainable_variables, tv, "trainable_variables"),
                                 (non_trainable_variables, ntv, "non_trainable_variables")):
            if len(given) != len(own):
                raise ValueError(f"stateless_call: model {self.name!r} has {len(own)} {what}, "
                                 f"received {len(given)} values")
            for v, g in zip(own, given):
                if tuple(np.shape(g.data if isinstance(g, Tensor) else g)) != tuple(v.shape):
                    raise ValueError(f"stateless_call: the value given for {v.path!r} has shape "
                                     f"{np.shape(g.data if isinstance(g, Tensor) else g)}, "
                                     f"expected {tuple(v.shape)}")
        swaps = _swap_variables(self, tv, trainable_variables)
        saved = [np.array(v.data, copy=True) for v in ntv]
        try:
            for v, g in zip(ntv, non_trainable_variables):
                v.data[...] = g.data if isinstance(g, Tensor) else g
            outputs = self(*args, **kwargs)
            new_ntv = [Tensor(np.array(v.data, copy=True)) for v in ntv]
            losses = list(self.losses) if return_losses else None
        finally:
            for obj, attr, value in reversed(swaps):
                _restore_attr(obj, attr, value)
            for v, val in zip(ntv, saved):
                v.data[...] = val
        if return_losses:
            return outputs, new_ntv, losses
        return outputs, new_ntv

    def _ensure_built_from_data(self, inputs):
        """Hook for Sequential: build from the first data seen."""

    def compute_output_shape(self, input_shape):
        if self._is_graph:
            return _map(lambda t: t.shape, self._output_struct)
        return Layer.compute_output_shape(self, input_shape)

    def build(self, input_shape=None):
        self.built = True
        if not self._is_graph and input_shape is not None:
            with_no_grad_dummy_call(self, input_shape)

    def _convert_input(self, x):
        # a model converts inputs per input layer (dtype), not with its own dtype
        if isinstance(x, Tensor):
            return x
        if hasattr(x, "to_numpy"):
            x = x.to_numpy()
        return Tensor(np.asarray(x))

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print the layer table: name (type), output shape, parameter count, and the totals."""
        from .summary import print_summary
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      expand_nested=expand_nested, show_trainable=show_trainable,
                      layer_range=layer_range)

    # ---------------------------------------------------------------- saving
    def save(self, filepath, overwrite=True, include_optimizer=True, zipped=None, **kwargs):
        """Save architecture, weights and compile/optimizer state to one file (atomic write).

        The extension picks the format, as in Keras 3 (:mod:`axone.formats`): ``.keras`` the
        Keras 3 archive, ``.h5`` / ``.hdf5`` Keras 2's HDF5 (legacy, with Keras's warning), any
        other name axone's own zip archive (``save_format="axone"`` asks for it, and refuses a
        Keras extension).  ``zipped=False`` raises; any other keyword is refused, as Keras
        refuses it.
        """
        import os
        save_format = kwargs.pop("save_format", None)
        if kwargs:
            raise ValueError(f"save: the following argument(s) are not supported: {sorted(kwargs)}")
        if zipped is not None and not zipped:
            raise NotImplementedError("save: zipped=False (an unzipped folder) is not implemented "
                                      "in axone; files are zip archives")
        if save_format not in (None, "axone", "keras", "h5"):
            raise NotImplementedError(f"save: save_format={save_format!r} is not implemented in "
                                      f"axone (it writes 'keras', 'h5' and its own 'axone')")
        if not overwrite and os.path.exists(filepath):
            raise ValueError(f"save: {filepath!r} exists and overwrite=False")
        saving.save_model(self, filepath, include_optimizer=include_optimizer,
                          save_format=save_format)

    def save_weights(self, filepath, overwrite=True):
        """Save every weight (``model.weights`` order) to one file (atomic write)."""
        import os
        if not overwrite and os.path.exists(filepath):
            raise ValueError(f"save_weights: {filepath!r} exists and overwrite=False")
        saving.save_weights(self, filepath)

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """Load weights saved by ``save_weights`` or ``save``; shapes must match layer by layer.

        ``skip_mismatch=True`` leaves layers whose weights do not match as they are, with a
        warning (Keras); ``by_name=True`` matches layers by name instead of by position.
        """
        by_name = kwargs.pop("by_name", None)
        if kwargs.pop("objects_to_skip", None) is not None:
            raise NotImplementedError("load_weights: objects_to_skip is not implemented in axone")
        if kwargs:
            raise ValueError(f"load_weights: invalid keyword arguments: {kwargs}")
        saving.load_weights(self, filepath, skip_mismatch=bool(skip_mismatch), by_name=bool(by_name))

    def _save_backup(self, filepath, training_state):
        """BackupAndRestore's write: weights, optimizer state and ``training_state`` in one
        archive, written atomically."""
        saving.save_backup(self, filepath, training_state)

    def _restore_backup(self, filepath):
        """BackupAndRestore's read: restore weights and optimizer state; returns the training
        state the backup holds (None for an older backup)."""
        return saving.load_backup(self, filepath)

    def get_config(self):
        if self._is_graph and type(self).get_config is Model.get_config:
            return saving.serialize_model(self)["config"]    # the functional graph
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A model from its config: a functional graph (``layers``, ``input_layers``,
        ``output_layers``) is rebuilt layer by layer; otherwise ``cls(**config)``."""
        if isinstance(config, dict) and {"layers", "input_layers", "output_layers"} <= set(config):
            return saving.model_from_config({"class_name": "Functional", "config": config},
                                            custom_objects)
        return cls(**config)

    def to_json(self, **kwargs):
        """The architecture as a JSON string (``keras.models.model_from_json`` reads it);
        ``kwargs`` go to ``json.dumps``."""
        import json
        return json.dumps(saving.model_entry(self), **kwargs)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


saving.register_model_class("Model", Model)
saving.register_model_class("Functional", Model)


_CALLS = threading.local()


def _cut_at(inputs, outputs):
    """A graph from intermediate tensors ``inputs`` (Grad-CAM, a head on a model's features):
    each becomes a new ``Input`` of its shape, and the layer calls between it and ``outputs``
    are made again on it (the same layers, so the same weights), as Keras allows."""
    new = {}

    def entry(t):
        if not isinstance(t, KerasTensor):
            raise TypeError(f"Model: inputs must be symbolic tensors, received {type(t).__name__}")
        if t._history is not None and isinstance(t._history[0], InputLayer):
            new[id(t)] = t
            return t
        il = InputLayer(shape=t.shape[1:], batch_size=t.shape[0], dtype=t.dtype)
        new[id(t)] = il.output_tensor
        return il.output_tensor

    new_inputs = _map(entry, inputs)
    nodes = _graph_nodes(_flatten(inputs), _flatten(outputs))

    def sub(x):
        return new.get(id(x), x) if isinstance(x, KerasTensor) else x
    for node in nodes:
        args = _map(sub, node.inputs)
        kwargs = {k: _map(sub, v) for k, v in node.call_kwargs.items()}
        out = node.layer(args, **kwargs)
        for old_t, new_t in zip(node.flat_outputs, _flatten(out)):
            new[id(old_t)] = new_t
    return new_inputs, _map(sub, outputs)


def _swap_variables(model, variables, values):
    """Point every attribute (and weight-list entry) of ``model``'s layers that holds one of
    ``variables`` at the matching value Tensor; returns what to put back."""
    by_id = {}
    for v, g in zip(variables, values):
        if not isinstance(g, Tensor):
            g = Tensor(np.asarray(g, dtype=v.dtype))
        by_id[id(v)] = g
    swaps = []
    seen = set()
    stack = [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        for attr, value in list(layer.__dict__.items()):
            if id(value) in by_id:
                swaps.append((layer, attr, value))
                object.__setattr__(layer, attr, by_id[id(value)])
            elif isinstance(value, list) and any(id(v) in by_id for v in value):
                swaps.append((layer, attr, list(value)))
                value[:] = [by_id.get(id(v), v) for v in value]
        stack.extend(layer._sublayers)
    return swaps


def _restore_attr(obj, attr, value):
    current = obj.__dict__.get(attr)
    if isinstance(value, list) and isinstance(current, list):
        current[:] = value
    else:
        object.__setattr__(obj, attr, value)


def with_no_grad_dummy_call(model, input_shape):
    from ..autograd.function import no_grad
    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    xp = current_module()       # zeros on the current device, where the weights are made
    xs = [Tensor(xp.zeros(tuple(1 if d is None else d for d in s), dtype=model.dtype)) for s in shapes]
    with no_grad():
        Layer.__call__(model, xs if isinstance(input_shape, list) else xs[0], training=False)
    model._clear_activity_losses()      # the build call's add_loss terms are not the user's
