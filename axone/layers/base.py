"""Layer: Keras's contract (build / call / compute_output_shape / get_config) over axone ops.

Calling a layer on a :class:`KerasTensor` (a symbolic placeholder made by
``Input``) builds it from the shape and records a :class:`Node` of the graph
that ``Model(inputs, outputs)`` later runs; calling it on an array or Tensor
runs it at once and returns a Tensor.
"""
import inspect
import re
import sys
import threading

import numpy as np

from .. import backend, constraints, fileio, initializers, regularizers
from ..autograd.function import no_grad
from ..autograd.tensor import Tensor
from ..ops import math as _M
from ..variables import _TRAINABLE_VERSION, Variable
from .input_spec import assert_input_compatibility

__all__ = ["Layer", "KerasTensor", "Node", "unique_name", "clear_session"]

_NAME_COUNTS = {}
_NAME_LOCK = threading.Lock()   # models built on several threads at once still get unique names


def unique_name(base):
    """``dense``, ``dense_1``, ``dense_2``, … per base name, as Keras names layers."""
    with _NAME_LOCK:
        n = _NAME_COUNTS.get(base, 0)
        _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


@backend.register_session_reset
def _reset_names():
    with _NAME_LOCK:
        _NAME_COUNTS.clear()


def clear_session(free_memory=True):
    """Reset the auto-naming counters and other global state (Keras ``clear_session``)."""
    backend.clear_session(free_memory)


def to_snake_case(name):
    """Keras's auto-name rule: ``Conv2D`` → ``conv2d``, ``MaxPooling2D`` → ``max_pooling2d``."""
    s = re.sub(r"\W+", "", name)
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", s)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def _shape_str(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


class KerasTensor:
    """Symbolic tensor of a functional graph: a shape with ``None`` for the batch, and its history."""

    def __init__(self, shape, dtype=None, name=None, history=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype or backend.floatx())
        self.name = name
        self._history = history  # (layer, node, index)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={_shape_str(self.shape)}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "A symbolic KerasTensor (from Input) holds no values; build a Model(inputs, outputs) "
            "and call model.predict(x), or call the layer on an array")

    # Arithmetic on symbolic tensors adds op nodes to the functional graph, as in Keras 3.
    def __add__(self, o): return symbolic_op(_M.add, (self, o), {})
    def __radd__(self, o): return symbolic_op(_M.add, (o, self), {})
    def __sub__(self, o): return symbolic_op(_M.subtract, (self, o), {})
    def __rsub__(self, o): return symbolic_op(_M.subtract, (o, self), {})
    def __mul__(self, o): return symbolic_op(_M.multiply, (self, o), {})
    def __rmul__(self, o): return symbolic_op(_M.multiply, (o, self), {})
    def __truediv__(self, o): return symbolic_op(_M.divide, (self, o), {})
    def __rtruediv__(self, o): return symbolic_op(_M.divide, (o, self), {})
    def __pow__(self, o): return symbolic_op(_M.power, (self, o), {})
    def __rpow__(self, o): return symbolic_op(_M.power, (o, self), {})
    def __matmul__(self, o): return symbolic_op(_M.matmul, (self, o), {})
    def __rmatmul__(self, o): return symbolic_op(_M.matmul, (o, self), {})
    def __neg__(self): return symbolic_op(_M.negative, (self,), {})
    def __abs__(self): return symbolic_op(_M.abs, (self,), {})
    def __lt__(self, o): return symbolic_op(_M.less, (self, o), {})
    def __le__(self, o): return symbolic_op(_M.less_equal, (self, o), {})
    def __gt__(self, o): return symbolic_op(_M.greater, (self, o), {})
    def __ge__(self, o): return symbolic_op(_M.greater_equal, (self, o), {})
    def __getitem__(self, key): return symbolic_op(_M.get_item, (self, key), {})

    __hash__ = object.__hash__

    def __iter__(self):
        raise TypeError(f"A symbolic KerasTensor of shape {_shape_str(self.shape)} cannot be "
                        f"iterated; use ops (e.g. ops.split or ops.unstack) in the graph")

    def __bool__(self):
        raise TypeError("A symbolic KerasTensor has no truth value; use ops.cond / ops.where, or "
                        "run the model on data")


class Node:
    """One call of a layer in a functional graph."""

    def __init__(self, layer, inputs, outputs, call_kwargs):
        self.layer = layer
        self.inputs = inputs           # structure of KerasTensors (single, list)
        self.flat_inputs = _flatten(inputs)
        # symbolic tensors passed as keyword arguments (e.g. initial_state) are inputs too
        self.kw_symbolic = [v for v in _flatten(list(call_kwargs.values())) if isinstance(v, KerasTensor)]
        self.flat_inputs = self.flat_inputs + self.kw_symbolic
        self.outputs = outputs
        self.flat_outputs = _flatten(outputs)
        self.call_kwargs = call_kwargs


def _flatten(x):
    if isinstance(x, (list, tuple)):
        out = []
        for i in x:
            out.extend(_flatten(i))
        return out
    if isinstance(x, dict):
        out = []
        for k in x:
            out.extend(_flatten(x[k]))
        return out
    return [x]


def _map(f, x):
    if isinstance(x, list):
        return [_map(f, i) for i in x]
    if isinstance(x, tuple):
        return tuple(_map(f, i) for i in x)
    if isinstance(x, dict):
        return {k: _map(f, v) for k, v in x.items()}
    return f(x)


_NP_DTYPES = {}


class NeedsGraph(Exception):
    """Raised by a layer's ``_infer`` whose output carries what an array cannot (a mask): the
    prediction runs the graph instead (models/_inference.py), and the model's plan is dropped."""


def _np_dtype(name):
    """np.dtype(name), cached (a layer's dtype is a string such as "float32")."""
    dt = _NP_DTYPES.get(name)
    if dt is None:
        dt = _NP_DTYPES[name] = np.dtype(name)
    return dt


def _is_kt(x):
    return isinstance(x, KerasTensor)


def has_symbolic(args, kwargs):
    """True when a KerasTensor is among ``args``/``kwargs`` (also one level inside lists)."""
    for a in args:
        if isinstance(a, KerasTensor) or (isinstance(a, (list, tuple)) and any(
                isinstance(v, KerasTensor) for v in a)):
            return True
    for a in kwargs.values():
        if isinstance(a, KerasTensor) or (isinstance(a, (list, tuple)) and any(
                isinstance(v, KerasTensor) for v in a)):
            return True
    return False


# how many add_loss calls were made in this process: a training step compares it before and
# after its forward pass to know whether any layer added a loss, without walking the layers
_ADDED_LOSSES = [0]


def added_loss_count():
    return _ADDED_LOSSES[0]


# changes whenever a layer or metric is tracked by another layer: caches of what a model holds
# (its metric objects) are valid while it stays the same
_TRACKING = [0]


def tracking_version():
    return _TRACKING[0]


def bump_tracking():
    _TRACKING[0] += 1


def _is_metric(v):
    return (not isinstance(v, Layer) and not isinstance(v, type) and hasattr(v, "update_state")
            and hasattr(v, "result") and hasattr(v, "reset_state"))


def _is_symbolic(x):
    return any(isinstance(t, KerasTensor) for t in _flatten(x))


class Layer:
    """Base class of every layer.

    Subclasses validate and keep their configuration in ``__init__``, create
    weights with ``add_weight`` in ``build(input_shape)``, compute in
    ``call(inputs, training=None)`` with axone ops, and report
    ``compute_output_shape`` and ``get_config``.

    Args:
        trainable: whether the layer's weights are updated by training.
        name: layer name (default: the snake-case class name made unique).
        dtype: the dtype of weights and computations (default ``floatx``).
        activity_regularizer: a penalty on the layer's outputs, as Keras: for each output y,
            regularizer(y) / batch size joins the losses of the call.
        input_shape / input_dim / batch_input_shape: legacy Keras arguments
            giving the input shape (without the batch) to the first layer of a
            ``Sequential`` model.
    """

    _autocast = True
    input_spec = None           # an InputSpec (or a list of them) checked on every call
    supports_masking = False
    _produces_mask = False      # layers that create a mask from their inputs (Embedding, Masking)

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None, input_dim=None,
                 batch_input_shape=None, batch_size=None, activity_regularizer=None, **kwargs):
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        object.__setattr__(self, "_tracked_layers", [])
        self.name = name if name is not None else unique_name(to_snake_case(type(self).__name__))
        if not isinstance(self.name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string, received {self.name!r}")
        self._trainable = bool(trainable)
        self.dtype = str(np.dtype(dtype)) if dtype is not None else backend.floatx()
        self.built = False
        self._weights = []
        self._inbound_nodes = []
        self._activity_losses = []
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self._build_input_shape = None
        self._input_ndim = None          # (min_ndim, {axis: size}) checked on each call
        self._input_axes = {}
        if input_dim is not None and input_shape is None:
            input_shape = (int(input_dim),)
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
            batch_size = tuple(batch_input_shape)[0]
        if input_shape is not None:
            if isinstance(input_shape, (int, np.integer)):
                input_shape = (int(input_shape),)
            input_shape = tuple(input_shape)
        self._input_shape_arg = input_shape
        self._batch_size_arg = batch_size

    # ----------------------------------------------------------- tracking
    def __setattr__(self, name, value):
        # Keras tracks the layers (and metrics) set as attributes, also inside lists, tuples
        # and dicts: their weights become this layer's, their metrics this model's
        if isinstance(value, Layer):
            if name != "_outer":
                self._track_layer(value)
        elif isinstance(value, (list, tuple, dict)) and value:
            for v in (value.values() if isinstance(value, dict) else value):
                if isinstance(v, Layer):
                    self._track_layer(v)
                elif _is_metric(v) and not name.startswith("_"):
                    self._track_metric(v)
        elif _is_metric(value) and not name.startswith("_"):
            self._track_metric(value)
        object.__setattr__(self, name, value)

    def _track_layer(self, layer):
        tl = self.__dict__.get("_tracked_layers")
        if tl is not None and layer is not self and layer not in tl:
            tl.append(layer)
            _TRACKING[0] += 1

    def _track_metric(self, metric):
        ml = self.__dict__.setdefault("_tracked_metrics_list", [])
        if all(m is not metric for m in ml):
            ml.append(metric)
            _TRACKING[0] += 1

    @property
    def _sublayers(self):
        return self.__dict__.get("_tracked_layers", [])

    # ------------------------------------------------------------ weights
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True,
                   regularizer=None, constraint=None, name=None):
        """Create a weight of this layer (Keras ``add_weight``); its initial value is drawn now."""
        shape = () if shape is None else tuple(int(s) for s in shape)
        fileio.charge_weight(self.name, shape)      # a file being loaded holds this many values
        if initializer is None:
            initializer = "glorot_uniform" if np.dtype(dtype or self.dtype).kind == "f" and len(shape) > 1 else "zeros"
        init = initializers.get(initializer)
        v = Variable(init, shape=shape, dtype=dtype or self.dtype, trainable=trainable,
                     name=name or f"variable_{len(self._weights)}",
                     regularizer=regularizers.get(regularizer),
                     constraint=constraints.get(constraint))
        v.path = f"{self.name}/{v.name}"
        self._weights.append(v)
        _TRACKING[0] += 1
        if trainable:      # Keras lists weights by their trainable flag at creation
            self.__dict__.setdefault("_created_trainable", set()).add(id(v))
        return v

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        # Keras 3: the flag also goes to the variables the layer created trainable (so a frozen
        # layer's kernel reads trainable=False, and unfreezing restores it), then to sublayers
        value = bool(value)
        self._trainable = value
        _TRACKING[0] += 1
        made = self.__dict__.get("_created_trainable", ())
        for w in self._weights:
            if id(w) in made:
                w.trainable = value
        for layer in self._sublayers:
            layer.trainable = value

    def _own_weights(self):
        return self._weights

    @property
    def weights(self):
        """All weights, layer by layer; within a layer those created trainable first (Keras
        order: a weight frozen later, such as a LoRA-adapted kernel, keeps its place)."""
        made = self.__dict__.get("_created_trainable", ())
        out = [w for w in self._weights if id(w) in made] + \
            [w for w in self._weights if id(w) not in made]
        seen = set(id(w) for w in out)
        for layer in self._sublayers:
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def variables(self):
        return self.weights

    @property
    def trainable_weights(self):
        # a training step asks for this list every step: it is kept while nothing that decides it
        # changed (weights added, layers tracked, a layer's or a variable's trainable flag set)
        key = (_TRACKING[0], _TRAINABLE_VERSION[0])
        cached = self.__dict__.get("_trainable_weights_cache")
        if cached is not None and cached[0] == key:
            return list(cached[1])
        out = self._collect_trainable_weights()
        self.__dict__["_trainable_weights_cache"] = (key, out)
        return list(out)

    def _collect_trainable_weights(self):
        if not self._trainable:
            return []
        out = [w for w in self._weights if w.trainable]
        seen = set(id(w) for w in out)
        for layer in self._sublayers:
            for w in layer.trainable_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self):
        if not self._trainable:
            return self.weights          # Keras 3: all of them, in ``weights`` order
        out = [w for w in self._weights if not w.trainable]
        seen = set(id(w) for w in out)
        for layer in self._sublayers:
            for w in layer.non_trainable_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    non_trainable_variables = non_trainable_weights

    def _all_weights(self):
        out = list(self._weights)
        for layer in self._sublayers:
            out.extend(layer._all_weights())
        return out

    def get_weights(self):
        """Copies of the weights' values as host arrays, in ``weights`` order (weights on a
        device copied back)."""
        from ..device import to_numpy
        return [np.array(w.data, copy=True) if type(w.data) is np.ndarray else to_numpy(w.data)
                for w in self.weights]

    def set_weights(self, weights):
        """Set the weights from a list of arrays shaped like ``get_weights()`` (host or device
        arrays; each is copied to where its weight lives)."""
        params = self.weights
        weights = list(weights)
        if len(weights) != len(params):
            raise ValueError(
                f"Layer {self.name!r}: set_weights expected a list of {len(params)} arrays "
                f"(shapes {[tuple(p.shape) for p in params]}), received {len(weights)}")
        from ..device import array_module
        values = []
        for p, w in zip(params, weights):
            w = w.data if isinstance(w, Tensor) else w
            if type(w) is not np.ndarray and array_module(w) is np:
                w = np.asarray(w)
            if w.shape != p.shape:
                raise ValueError(
                    f"Layer {self.name!r}: weight {p.path!r} has shape {p.shape}, "
                    f"received an array of shape {w.shape}")
            values.append(w)
        for p, w in zip(params, values):
            p.assign(w)         # host values onto a device weight, device values to the host

    def count_params(self):
        if not self.built:
            raise ValueError(f"Layer {self.name!r}: count_params needs a built layer; call it on data "
                             f"or build(input_shape) first")
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    @property
    def losses(self):
        """Regularization penalties of this layer's weights (and activity penalties of the last call)."""
        out = []
        for w in self.trainable_weights:      # Keras 3: frozen weights are not penalized
            if w.regularizer is not None:
                out.append(w.regularizer(w))
        out.extend(self._collect_activity_losses())
        return out

    def add_loss(self, loss):
        """Add a loss term (a scalar Tensor, or a Tensor summed) to this layer's ``losses``, as
        Keras 3: called from ``call`` (the VAE's KL divergence, an activity penalty), it joins
        the training loss of the step; the terms of the previous call are dropped when the
        outermost model is called again."""
        if isinstance(loss, (list, tuple)):
            for l in loss:
                self.add_loss(l)
            return
        if not isinstance(loss, Tensor):
            try:
                arr = np.asarray(loss, dtype=backend.floatx())
            except (TypeError, ValueError):
                raise TypeError(f"Layer {self.name!r}: add_loss expects a Tensor or a number, "
                                f"received {type(loss).__name__}") from None
            loss = Tensor(arr)
        elif loss.dtype.kind not in "f":
            from ..ops import cast
            loss = cast(loss, backend.floatx())
        self._activity_losses.append(loss)
        _ADDED_LOSSES[0] += 1

    def _add_activity_penalty(self, outputs):
        """Keras: activity_regularizer(y) / batch size for each output tensor y of the call."""
        for y in _flatten(outputs):
            if isinstance(y, Tensor):
                p = self.activity_regularizer(y)
                self._activity_losses.append(p / y.shape[0] if y.ndim > 0 else p)

    def _collect_activity_losses(self):
        out = list(self._activity_losses)
        for layer in self._sublayers:
            out.extend(layer._collect_activity_losses())
        return out

    def _clear_activity_losses(self):
        self._activity_losses = []
        for layer in self._sublayers:
            layer._clear_activity_losses()

    # ------------------------------------------------------------ building
    def build(self, input_shape):
        self.built = True

    def _maybe_build(self, input_shape):
        if not self.built:
            self._build_input_shape = input_shape
            self.build(input_shape)
            self.built = True

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape`` (None for the batch); default: run on a dummy batch."""
        def dummy(s):
            return Tensor(np.zeros(tuple(1 if d is None else d for d in s), dtype=self.dtype))
        if isinstance(input_shape, list):
            x = [dummy(s) for s in input_shape]
        else:
            x = dummy(input_shape)
        with no_grad():
            y = self._call_impl(x, training=False)
        return _map(lambda t: (None,) + tuple(t.shape[1:]), y)

    def _check_input(self, x):
        spec = self._input_ndim
        if spec is None:
            return
        shape = x.shape
        if len(shape) < spec:
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: expected "
                f"min_ndim={spec}, found ndim={len(shape)}. Full shape received: {_shape_str(shape)}")
        for axis, size in self._input_axes.items():
            got = shape[axis]
            if got is not None and got != size:
                raise ValueError(
                    f"Input 0 of layer {self.name!r} is incompatible with the layer: expected "
                    f"axis {axis} of input shape to have value {size}, but received input with "
                    f"shape {_shape_str(shape)}")

    # ------------------------------------------------------------- calling
    def call(self, inputs, *args, **kwargs):
        return inputs

    def _call_accepts_training(self):
        cls = type(self)
        cached = cls.__dict__.get("_accepts_training_cache")
        if cached is None:
            params = inspect.signature(self.call).parameters
            cached = "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
            setattr(cls, "_accepts_training_cache", cached)
        return cached

    def _call_accepts_mask(self):
        cls = type(self)
        cached = cls.__dict__.get("_accepts_mask_cache")
        if cached is None:
            cached = "mask" in inspect.signature(self.call).parameters
            setattr(cls, "_accepts_mask_cache", cached)
        return cached

    def compute_mask(self, inputs, mask=None):
        """The mask of the output: passed through when ``supports_masking``, else dropped."""
        return mask if self.supports_masking else None

    def _call_impl(self, inputs, training=None, **kwargs):
        if self._call_accepts_training():
            return self.call(inputs, training=training, **kwargs)
        return self.call(inputs, **kwargs)

    def _convert_input(self, x):
        if isinstance(x, Tensor):
            t = x
        else:
            if hasattr(x, "to_numpy"):
                x = x.to_numpy()
            arr = np.asarray(x)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"Layer {self.name!r}: expected numeric input, received dtype {arr.dtype}")
            t = Tensor(arr)
        if self._autocast and t.dtype != np.dtype(self.dtype) and (
                t.dtype.kind == "f" or t.dtype.kind in "biu"):
            from ..ops import cast
            t = cast(t, self.dtype)
        return t

    def __call__(self, inputs, *args, training=None, **kwargs):
        # The common eager call (one tensor of the layer's dtype, no mask, a built layer) goes
        # straight to ``call``; it is what the general path below does for it, minus its checks.
        if (type(inputs) is Tensor and self.built and not args and not kwargs
                and not self._produces_mask and getattr(inputs, "_keras_mask", None) is None
                and (not self._autocast or inputs.data.dtype == _np_dtype(self.dtype))):
            if self._input_ndim is not None:
                self._check_input(inputs)
            if self.input_spec is not None:
                assert_input_compatibility(self.input_spec, inputs, self.name)
            y = self.call(inputs, training=training) if self._call_accepts_training() else \
                self.call(inputs)
            if self.activity_regularizer is not None:
                self._add_activity_penalty(y)
            return y
        if _is_symbolic(inputs):
            return self._symbolic_call(inputs, *args, training=training, **kwargs)
        x = _map(self._convert_input, inputs)
        if not self.built:
            self._maybe_build(_map(lambda t: tuple(t.shape), x))
        if self._input_ndim is not None and not isinstance(x, (list, tuple, dict)):
            self._check_input(x)
        if self.input_spec is not None:
            assert_input_compatibility(self.input_spec, x, self.name)
        mask = kwargs.pop("mask", None)
        if mask is None:
            if isinstance(x, Tensor):
                mask = getattr(x, "_keras_mask", None)
            elif isinstance(x, (list, tuple)):
                masks = [getattr(t, "_keras_mask", None) for t in x]
                mask = masks if any(m is not None for m in masks) else None
        if mask is not None and self._call_accepts_mask():
            kwargs["mask"] = mask
        if not args:
            y = self._call_impl(x, training=training, **kwargs)
        elif self._call_accepts_training():        # e.g. a cell's call(inputs, states, training)
            y = self.call(x, *args, training=training, **kwargs)
        else:
            y = self.call(x, *args, **kwargs)
        if self.activity_regularizer is not None:
            self._add_activity_penalty(y)
        if mask is not None or self._produces_mask:
            out_mask = self.compute_mask(x, mask)
            if isinstance(y, Tensor):
                if y is x and out_mask is None:
                    return y
                if out_mask is not None or getattr(y, "_keras_mask", None) is not None:
                    if y is x:
                        y = y.detach() if not y.requires_grad else _alias(y)
                    y._keras_mask = out_mask
            elif isinstance(y, (list, tuple)) and isinstance(out_mask, (list, tuple)):
                for t, m in zip(y, out_mask):
                    if isinstance(t, Tensor):
                        t._keras_mask = m
        return y

    def _infer(self, x):
        """This layer's output array on the input array ``x`` at inference, for a prediction's
        array plan (models/_inference.py): its ordinary call (on a list of arrays, a merge's
        inputs, as a list of Tensors)."""
        y = self([Tensor(a) for a in x] if type(x) is list else Tensor(x), training=False)
        if type(y) is not Tensor:
            y = _flatten(y)[0]
        if getattr(y, "_keras_mask", None) is not None:
            raise NeedsGraph(self.name)
        return y.data

    def _inference_step(self):
        """What a prediction's array plan runs for this layer: ``_infer`` (a layer may return a
        callable specialised to its configuration, checked at each call)."""
        return self._infer

    def _symbolic_call(self, inputs, *args, training=None, **kwargs):
        if self.input_spec is not None:
            assert_input_compatibility(self.input_spec, inputs, self.name)
        shapes = _map(lambda t: t.shape, inputs)
        if not self.built:
            self._maybe_build(shapes)
        if self._input_ndim is not None and isinstance(inputs, KerasTensor):
            self._check_input(inputs)
        out_shapes = self.compute_output_shape(shapes)
        if training is not None:
            # Keras 3 keeps a training flag given in the functional call with the node: the
            # call's mode when the model is later called without one (models/model.py)
            kwargs = dict(kwargs, training=bool(training))
        node = Node(self, inputs, None, kwargs)
        counter = [0]

        def make(shape):
            i = counter[0]
            counter[0] += 1
            return KerasTensor(shape, dtype=self._output_dtype(), name=self.name,
                               history=(self, node, i))

        if isinstance(out_shapes, tuple) and (not out_shapes or not isinstance(out_shapes[0], tuple)):
            outputs = make(out_shapes)
        else:
            outputs = _map_shapes(make, out_shapes)
        node.outputs = outputs
        node.flat_outputs = _flatten(outputs)
        self._inbound_nodes.append(node)
        return outputs

    def _output_dtype(self):
        return self.dtype

    # ----------------------------------------------------------- shapes
    @property
    def input(self):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called on a symbolic input "
                                 f"and thus has no defined input")
        return self._inbound_nodes[0].inputs

    @property
    def output(self):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called on a symbolic input "
                                 f"and thus has no defined output")
        return self._inbound_nodes[0].outputs

    @property
    def input_shape(self):
        return _map(lambda t: t.shape, self.input)

    @property
    def output_shape(self):
        return _map(lambda t: t.shape, self.output)

    # ------------------------------------------------------------- config
    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        if self._input_shape_arg is not None:
            cfg["batch_input_shape"] = (self._batch_size_arg,) + tuple(self._input_shape_arg)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_build_config(self):
        """``{"input_shape": ...}``: the shape the layer was built for (Keras 3), or None when
        it was not built from a shape."""
        if self._build_input_shape is not None:
            return {"input_shape": _map_shapes(lambda s: tuple(s), self._build_input_shape)}
        return None

    def build_from_config(self, config):
        """Build the layer from :meth:`get_build_config`'s dict (``input_shape``, or Keras's
        ``shapes_dict`` of one shape per ``build`` argument)."""
        if not config:
            return
        if not isinstance(config, dict):
            raise TypeError(f"{type(self).__name__} {self.name!r}: build_from_config expects a "
                            f"dict such as {{'input_shape': (None, 4)}}, received {config!r}")
        if "input_shape" in config:
            shape = _tuples(config["input_shape"])
            if not self.built:
                self._build_input_shape = shape
            self.build(shape)
            self.built = True
        elif "shapes_dict" in config:
            shapes = {k.removesuffix("_shape"): _tuples(v) for k, v in config["shapes_dict"].items()}
            self.build(**{k + "_shape": v for k, v in shapes.items()})
            self.built = True

    def compute_output_spec(self, *args, **kwargs):
        """The outputs of a call on ``args`` as KerasTensors (shape and dtype, no values), as
        Keras 3: KerasTensors (or arrays) in, KerasTensors out."""
        def spec(x):
            if isinstance(x, KerasTensor):
                return x
            if hasattr(x, "shape") and hasattr(x, "dtype"):
                return KerasTensor(tuple(x.shape), dtype=x.dtype)
            return x
        args = [_map(spec, a) for a in args]
        if not args:
            raise TypeError(f"{type(self).__name__}.compute_output_spec: give the inputs")
        shapes = _map(lambda t: t.shape if isinstance(t, KerasTensor) else t, args[0])
        if not self.built:
            self._maybe_build(shapes)
        out_shapes = self.compute_output_shape(shapes)
        dtype = self._output_dtype()
        if isinstance(out_shapes, tuple) and (not out_shapes or not isinstance(out_shapes[0], tuple)):
            return KerasTensor(out_shapes, dtype=dtype)
        return _map_shapes(lambda s: KerasTensor(s, dtype=dtype), out_shapes)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _tuples(shape):
    """A shape read back from JSON (lists) as tuples; a list of shapes stays a list."""
    if isinstance(shape, (list, tuple)) and shape and all(isinstance(s, (list, tuple)) for s in shape):
        return [_tuples(s) for s in shape]
    if isinstance(shape, dict):
        return {k: _tuples(v) for k, v in shape.items()}
    if isinstance(shape, (list, tuple)):
        return tuple(None if d is None else int(d) for d in shape)
    return shape


def _alias(t):
    """A new graph node equal to ``t`` (so a mask can be attached without touching ``t``)."""
    from ..ops import math as _M
    return _M.Reshape.apply(t, newshape=t.shape)


def _map_shapes(f, shapes):
    """Map over a (possibly nested) structure whose leaves are shape tuples."""
    if isinstance(shapes, tuple) and (not shapes or not isinstance(shapes[0], (tuple, list))):
        return f(shapes)
    if isinstance(shapes, list):
        return [_map_shapes(f, s) for s in shapes]
    if isinstance(shapes, tuple):
        return tuple(_map_shapes(f, s) for s in shapes)
    if isinstance(shapes, dict):
        return {k: _map_shapes(f, v) for k, v in shapes.items()}
    return f(shapes)


def _substitute(template, values):
    """The arguments with each symbolic tensor replaced by the next of ``values``."""
    it = iter(values)

    def sub(x):
        if isinstance(x, KerasTensor):
            return next(it)
        if isinstance(x, list):
            return [sub(v) for v in x]
        if isinstance(x, tuple):
            return tuple(sub(v) for v in x)
        return x
    args, kwargs = template
    return [sub(a) for a in args], {k: sub(v) for k, v in kwargs.items()}


# ------------------------------------------------------------ ops on symbolic tensors
#: the most values a constant array argument of a saved call may hold (its values are written in
#: the JSON configuration, which the loader reads whole; larger arrays belong in a layer's weights)
MAX_CONSTANT_ELEMENTS = 4096
_CONSTANT_DTYPES = frozenset(("bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
                              "uint32", "uint64", "float16", "float32", "float64"))


class NotEncodable(TypeError):
    """A call argument that a saved configuration cannot hold (``error`` is the class the
    caller should raise: TypeError for an object, ValueError for a too large array)."""

    def __init__(self, message, error=TypeError):
        super().__init__(message)
        self.error = error


def encode_call_value(v, tensor_ref):
    """A call argument as JSON.  ``tensor_ref(v)`` is the index of ``v`` among the node's input
    references (or None): a symbolic tensor becomes ``{"__tensor__": j}``.  Numbers, bools,
    None, strings and lists are themselves; a tuple is ``{"__tuple__": [...]}``, a dict
    ``{"__dict__": {...}}`` (string keys), a slice ``{"__slice__": [start, stop, step]}``,
    ``...`` ``{"__ellipsis__": true}``, a dtype ``{"__dtype__": name}`` and a small array (or a
    NumPy scalar, or a constant Tensor) ``{"dtype", "shape", "values"}``.  Anything else raises
    :class:`NotEncodable`."""
    def enc(x):
        j = tensor_ref(x)
        if j is not None:
            return {"__tensor__": j}
        if isinstance(x, KerasTensor):
            raise NotEncodable("a symbolic tensor that is not an input of the node")
        if x is None or type(x) in (bool, int, float, str):
            return x
        if x is Ellipsis:
            return {"__ellipsis__": True}
        if isinstance(x, slice):
            return {"__slice__": [enc(x.start), enc(x.stop), enc(x.step)]}
        if isinstance(x, tuple):
            return {"__tuple__": [enc(u) for u in x]}
        if isinstance(x, list):
            return [enc(u) for u in x]
        if isinstance(x, dict):
            if not all(isinstance(k, str) for k in x):
                raise NotEncodable("a dict with keys that are not strings")
            return {"__dict__": {k: enc(u) for k, u in x.items()}}
        if isinstance(x, np.dtype) or (isinstance(x, type) and issubclass(x, np.generic)):
            name = np.dtype(x).name
            if name not in _CONSTANT_DTYPES:
                raise NotEncodable(f"the dtype {name}")
            return {"__dtype__": name}
        if type(x) is Tensor:
            x = x.data
        if isinstance(x, (np.ndarray, np.generic)):
            a = np.asarray(x)
            if a.dtype.name not in _CONSTANT_DTYPES:
                raise NotEncodable(f"an array of dtype {a.dtype}")
            if a.size > MAX_CONSTANT_ELEMENTS:
                raise NotEncodable(f"an array of {a.size} values (shape {a.shape}), more than "
                                   f"the {MAX_CONSTANT_ELEMENTS} a saved constant may hold",
                                   ValueError)
            return {"dtype": a.dtype.name, "shape": list(a.shape), "values": a.ravel().tolist()}
        kind = "a function" if callable(x) else f"a {type(x).__name__} object"
        raise NotEncodable(f"{kind} ({x!r:.60})")
    return enc(v)


def decode_call_value(v, tensor_at, what):
    """The inverse of :func:`encode_call_value`; ``tensor_at(j)`` is the tensor a
    ``{"__tensor__": j}`` stands for.  A malformed value raises ValueError naming ``what``."""
    def bad(msg):
        return ValueError(f"{what}: {msg}")

    def dec(x):
        if x is None or type(x) in (bool, int, float, str):
            return x
        if isinstance(x, list):
            return [dec(u) for u in x]
        if not isinstance(x, dict):
            raise bad(f"cannot read the argument value {x!r:.80}")
        keys = set(x)
        if keys == {"__tensor__"}:
            return tensor_at(x["__tensor__"])
        if keys == {"__tuple__"} and isinstance(x["__tuple__"], list):
            return tuple(dec(u) for u in x["__tuple__"])
        if keys == {"__dict__"} and isinstance(x["__dict__"], dict):
            return {k: dec(u) for k, u in x["__dict__"].items()}
        if keys == {"__slice__"} and isinstance(x["__slice__"], list) and len(x["__slice__"]) == 3:
            parts = [dec(u) for u in x["__slice__"]]
            if not all(p is None or type(p) is int for p in parts):
                raise bad(f"a slice takes integers or null, received {x['__slice__']!r}")
            return slice(*parts)
        if keys == {"__ellipsis__"}:
            return Ellipsis
        if keys == {"__dtype__"}:
            if x["__dtype__"] not in _CONSTANT_DTYPES:
                raise bad(f"unknown dtype {x['__dtype__']!r}; expected one of "
                          f"{sorted(_CONSTANT_DTYPES)}")
            return np.dtype(x["__dtype__"])
        if keys == {"dtype", "shape", "values"}:
            dtype, shape, values = x["dtype"], x["shape"], x["values"]
            if dtype not in _CONSTANT_DTYPES:
                raise bad(f"a constant array of unknown dtype {dtype!r}")
            if not (isinstance(shape, list) and all(type(d) is int and 0 <= d <= MAX_CONSTANT_ELEMENTS
                                                    for d in shape)):
                raise bad(f"a constant array's shape must be a list of sizes, received {shape!r}")
            n = 1
            for d in shape:
                n *= d
            if n > MAX_CONSTANT_ELEMENTS:
                raise bad(f"a constant array of shape {tuple(shape)} holds {n} values, more than "
                          f"the {MAX_CONSTANT_ELEMENTS} a saved constant may hold")
            if not (isinstance(values, list) and len(values) == n and all(
                    type(u) in (bool, int, float) for u in values)):
                raise bad(f"a constant array of shape {tuple(shape)} needs a list of {n} numbers")
            try:
                a = np.array(values, dtype=dtype).reshape(shape)
            except OverflowError:
                raise bad(f"a constant array's values do not fit its dtype {dtype}") from None
            return a if shape else a[()]
        raise bad(f"cannot read the argument value {x!r:.80}")
    return dec(v)


def count_tensor_refs(v):
    """How many ``{"__tensor__": j}`` an encoded value holds."""
    if isinstance(v, dict):
        if set(v) == {"__tensor__"}:
            return 1
        return sum(count_tensor_refs(u) for u in v.values())
    if isinstance(v, list):
        return sum(count_tensor_refs(u) for u in v)
    return 0


#: the KerasTensor operators: name -> (op name under keras.ops, operands reversed)
_OPERATORS = {"__add__": ("add", False), "__radd__": ("add", True),
              "__sub__": ("subtract", False), "__rsub__": ("subtract", True),
              "__mul__": ("multiply", False), "__rmul__": ("multiply", True),
              "__truediv__": ("divide", False), "__rtruediv__": ("divide", True),
              "__pow__": ("power", False), "__rpow__": ("power", True),
              "__matmul__": ("matmul", False), "__rmatmul__": ("matmul", True),
              "__neg__": ("negative", False), "__abs__": ("abs", False),
              "__lt__": ("less", False), "__le__": ("less_equal", False),
              "__gt__": ("greater", False), "__ge__": ("greater_equal", False),
              "__getitem__": ("get_item", False)}
#: the keras.ops namespaces a saved op is looked up in, in this order
_OP_NAMESPACES = ("", "numpy", "nn", "linalg", "image", "core")


def _op_namespace(ns):
    import importlib
    return importlib.import_module("axone.ops" + ("." + ns if ns else ""))


def _public_op_names(ns):
    module = _op_namespace(ns)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    return names


def public_op_name(fn):
    """``fn``'s name under keras.ops (``"relu"``, ``"image.resize"``…), or None."""
    import types
    name = getattr(fn, "__name__", None)
    for ns in _OP_NAMESPACES:
        names = _public_op_names(ns)
        module = _op_namespace(ns)
        if name in names and getattr(module, name, None) is fn:
            return f"{ns}.{name}" if ns else name
    for ns in _OP_NAMESPACES:
        module = _op_namespace(ns)
        for n in _public_op_names(ns):
            f = getattr(module, n, None)
            if f is fn and isinstance(f, types.FunctionType):
                return f"{ns}.{n}" if ns else n
    return None


def resolve_op(op):
    """The function a saved op name stands for: a KerasTensor operator (``"__add__"``) or a
    public keras.ops function (``"mean"``, ``"numpy.mean"``, ``"nn.relu"``, ``"image.resize"``);
    nothing else is looked up.  Returns ``(function, operands reversed)``."""
    import types
    if not isinstance(op, str):
        raise ValueError(f"OpLayer: the op must be a name such as 'add' or 'image.resize', "
                         f"received {op!r}")
    if op in _OPERATORS:
        name, rev = _OPERATORS[op]
        return getattr(_op_namespace(""), name), rev
    ns, _, name = op.rpartition(".")
    if ns in _OP_NAMESPACES and name.isidentifier() and not name.startswith("_") \
            and name in _public_op_names(ns):
        fn = getattr(_op_namespace(ns), name, None)
        if isinstance(fn, types.FunctionType) and fn.__module__.startswith("axone.ops."):
            return fn, False
    raise ValueError(f"OpLayer: unknown op {op!r}: expected a public keras.ops function (under "
                     f"keras.ops, or keras.ops.{', keras.ops.'.join(_OP_NAMESPACES[1:])}) or a "
                     f"tensor operator ({', '.join(sorted(_OPERATORS))})")


#: the most values one array of an op node's shape inference may hold while a file loads
MAX_LOAD_ELEMENTS = 1 << 27


def _ints(v):
    """The integers in a (nested) call argument, bools and tensors left out."""
    if isinstance(v, (bool, np.bool_)):
        return []
    if isinstance(v, (int, np.integer)):
        return [int(v)]
    if isinstance(v, (float, np.floating)) and np.isfinite(v):
        return [int(abs(v))]
    if isinstance(v, (list, tuple)):
        return [i for x in v for i in _ints(x)]
    return []


def _op_output_bound(op, template, dims, sizes):
    """An upper bound on the output size of the ops whose output size comes from their
    arguments rather than from their inputs' sizes alone; None for the others."""
    args, kwargs = template
    every = list(args) + list(kwargs.values())
    biggest = float(max(sizes, default=1))

    def prod(v):
        out = 1.0
        for i in _ints(v):
            out *= max(abs(i), 1)
        return out

    def arg(i, name):
        return kwargs[name] if name in kwargs else (args[i] if len(args) > i else None)
    if op in ("outer", "kron", "meshgrid"):
        out = 1.0
        for n in sizes:
            out *= max(n, 1)
    elif op in ("broadcast_to", "zeros", "ones", "full", "empty"):
        out = prod(arg(1 if op == "broadcast_to" else 0, "shape"))
    elif op == "resize" or op == "scale_and_translate":
        size = arg(1, "size" if op == "resize" else "output_shape")
        d = dims[0] if dims else ()
        first = kwargs.get("data_format") == "channels_first"
        hw = (d[-2] * d[-1] if first else d[-3] * d[-2]) if len(d) >= 3 else 1
        out = biggest / max(hw, 1) * prod(size)
    elif op in ("pad", "pad_images"):
        widths = _ints(every)
        grow = 2 * max([abs(w) for w in widths] + [0])
        out = 1.0
        for n in (dims[0] if dims else ()):
            out *= n + grow
    elif op in ("tile", "repeat", "one_hot", "multi_hot", "extract_patches", "eye",
                "identity", "tri", "arange", "linspace", "logspace", "geomspace"):
        out = biggest * prod(every)
    else:
        return None
    return int(min(out, 1e18))


class OpLayer(Layer):
    """A ``keras.ops`` function (or an operator such as ``+``) applied to symbolic tensors in a
    functional model: the op becomes a node of the graph and runs on the real tensors.

    Its config names the op (``"op"``: its keras.ops name, or the operator ``"__rmul__"`` …)
    and holds the call's arguments (``"args"``, ``"kwargs"``, see :func:`encode_call_value`),
    each symbolic one as ``{"__tensor__": j}``, the j-th input of the node."""

    def __init__(self, fn, args, kwargs, name=None, operator=None):
        op = getattr(fn, "__name__", "op")
        super().__init__(name=name or unique_name(op))
        self.fn = fn
        self.operator = operator
        self._template = (list(args), dict(kwargs))
        self.built = True

    def call(self, inputs):
        args, kwargs = _substitute(self._template, inputs if isinstance(inputs, list) else [inputs])
        return self.fn(*args, **kwargs)

    def _symbolic_call(self, inputs, *args, **kwargs):
        self._symbolic_inputs = _flatten(inputs)       # their dtypes, for compute_output_shape
        return super()._symbolic_call(inputs, *args, **kwargs)

    def compute_output_shape(self, input_shape):
        # run on two dummy batch sizes: a dimension that follows the batch size is None
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        outs = []
        loading = getattr(fileio._budget, "active", None)
        for b in (2, 3):
            dims = [tuple(b if d is None else d for d in s) for s in shapes]
            if loading is not None:        # a file's graph: the dummies stay of bounded size
                self._check_load_size(loading, dims)
            xs = [Tensor(np.zeros(d, dtype=t.dtype)) for d, t in zip(dims, self._symbolic_inputs)]
            with no_grad():
                outs.append(self.call(xs))

        def merge(a, c):
            if isinstance(a, (list, tuple)):
                return type(a)(merge(u, v) for u, v in zip(a, c))
            return tuple(None if (u, v) == (2, 3) else u for u, v in zip(a.shape, c.shape))
        self._out_dtypes = outs[0]
        return merge(outs[0], outs[1])

    def _check_load_size(self, budget, dims):
        """While a file loads, the shape inference of this op may not allocate more than
        ``MAX_LOAD_ELEMENTS`` values for an input or for its output, the latter bounded before
        the op runs from the arguments of the ops whose output size comes from them (a
        hand-edited ``tile`` or ``broadcast_to`` must not make a small file take gigabytes)."""
        sizes = [int(np.prod(d, dtype=np.float64)) for d in dims]
        op = (self._op_name() or "").rsplit(".", 1)[-1]
        bound = _op_output_bound(op, self._template, dims, sizes)
        worst = max(sizes + ([bound] if bound is not None else []), default=0)
        if worst > MAX_LOAD_ELEMENTS:
            raise fileio.FileFormatError(
                budget.path, f"op layer {self.name!r} ({op}) would compute an array of about "
                             f"{worst} values from shapes {dims} while the file loads, more than "
                             f"the {MAX_LOAD_ELEMENTS} allowed; the file is not loaded")

    def _output_dtype(self):
        o = getattr(self, "_out_dtypes", None)
        return o.dtype if isinstance(o, Tensor) else self.dtype

    def _op_name(self):
        if self.operator in _OPERATORS:
            return self.operator
        return public_op_name(self.fn)

    def get_config(self):
        op = self._op_name()
        shown = getattr(self.fn, "__name__", "op")
        if op is None:
            raise NotImplementedError(
                f"OpLayer {self.name!r}: {shown} is not a public keras.ops function, so the "
                f"model cannot be saved; wrap the computation in a Lambda layer or a custom "
                f"layer")
        args, kwargs = self._template
        if _OPERATORS.get(op, (None, False))[1]:
            args = args[::-1]               # an operator's operands in its own order
        counter = [0]

        def ref(x):
            if isinstance(x, KerasTensor):
                counter[0] += 1
                return counter[0] - 1
            return None
        try:
            names = list(inspect.signature(self.fn).parameters)
        except (TypeError, ValueError):
            names = []
        # symbolic tensors are numbered in the order call() substitutes them
        order = [("args", i, a) for i, a in enumerate(self._template[0])] + \
            [("kwargs", k, a) for k, a in kwargs.items()]
        encoded = {"args": [None] * len(args), "kwargs": {}}
        for where, key, value in order:
            try:
                e = encode_call_value(value, ref)
            except NotEncodable as err:
                arg = key if where == "kwargs" else (
                    names[key] if key < len(names) and not _OPERATORS.get(op) else f"#{key}")
                raise err.error(
                    f"OpLayer {self.name!r} (ops.{op}): its argument {arg!r} is {err}, which is "
                    f"not serializable in a saved model; wrap the computation in a Lambda layer "
                    f"or a custom layer with get_config") from None
            if where == "args":
                pos = len(args) - 1 - key if _OPERATORS.get(op, (None, False))[1] else key
                encoded["args"][pos] = e
            else:
                encoded["kwargs"][key] = e
        return {"name": self.name, "trainable": self.trainable, "op": op,
                "args": encoded["args"], "kwargs": encoded["kwargs"]}

    @classmethod
    def from_config(cls, config):
        if not isinstance(config, dict):
            raise TypeError(f"OpLayer.from_config: expected a dict, received {config!r}")
        unknown = set(config) - {"name", "trainable", "dtype", "op", "args", "kwargs"}
        if unknown:
            raise ValueError(f"OpLayer.from_config: unexpected keys {sorted(unknown)}")
        op = config.get("op")
        fn, reverse = resolve_op(op)
        what = f"OpLayer {config.get('name')!r} (ops.{op})"
        args, kwargs = config.get("args", []), config.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ValueError(f"{what}: 'args' must be a list and 'kwargs' an object")
        n = count_tensor_refs(args) + count_tensor_refs(kwargs)
        # each reference becomes a placeholder that call() replaces by the matching input
        slots = [KerasTensor(()) for _ in range(n)]

        def at(j):
            if type(j) is not int or not 0 <= j < n:
                raise ValueError(f"{what}: a tensor argument must be {{'__tensor__': j}} with j in "
                                 f"0..{n - 1}, received {j!r}")
            return slots[j]
        args = [decode_call_value(a, at, what) for a in args]
        kwargs = {k: decode_call_value(v, at, what) for k, v in kwargs.items()}
        if reverse:
            args = args[::-1]
        layer = cls(fn, args, kwargs, name=config.get("name"),
                    operator=op if op in _OPERATORS else None)
        seen = []

        def order(x):
            if isinstance(x, KerasTensor):
                seen.append(x)
            elif isinstance(x, (list, tuple)):
                for u in x:
                    order(u)
        for a in list(args) + list(kwargs.values()):
            order(a)
        if [id(t) for t in seen] != [id(t) for t in slots]:
            # call() takes the node's inputs in argument order, as get_config numbers them
            raise ValueError(f"{what}: the tensor arguments must be numbered 0..{n - 1} in the "
                             f"order they appear in args then kwargs (and not inside a dict)")
        if "trainable" in config:
            layer.trainable = bool(config["trainable"])
        return layer


def symbolic_op(fn, args, kwargs):
    """``fn(*args, **kwargs)`` with KerasTensors among the arguments: a new node of the
    functional graph (an :class:`OpLayer`) whose outputs are KerasTensors."""
    flat = []

    def collect(x):
        if isinstance(x, KerasTensor):
            flat.append(x)
        elif isinstance(x, (list, tuple)):
            for v in x:
                collect(v)
    for a in args:
        collect(a)
    for a in kwargs.values():
        collect(a)
    # called from a KerasTensor operator (``x + 1``): the config names the operator
    caller = sys._getframe(1).f_code.co_name
    operator = caller if caller in _OPERATORS and isinstance(
        sys._getframe(1).f_locals.get("self"), KerasTensor) else None
    layer = OpLayer(fn, args, kwargs, operator=operator)
    layer._symbolic_inputs = flat
    out = layer(flat if len(flat) != 1 else flat[0])
    return out
