"""Recurrent layers: SimpleRNN, LSTM, GRU (and their cells, the generic RNN wrapper),
Bidirectional and TimeDistributed.

Weights follow Keras (``kernel`` (input_dim, G·units), ``recurrent_kernel`` (units, G·units),
``bias`` (G·units,) or (2, 3·units) for GRU with ``reset_after``), gates in Keras order (LSTM
i, f, c, o; GRU z, r, h), so weights interchange with Keras.  A built-in cell inside ``RNN``
runs the whole sequence as one node (``ops.recurrent.rnn_sequence``: one input projection,
backpropagation through time written out); any other cell runs step by step on the autograd
engine.
"""
import copy

import numpy as np

from .. import activations, backend, constraints, initializers, ops, regularizers
from ..autograd.tensor import Tensor
from ..device import array_module
from ..autograd.function import _new
from ..ops.recurrent import ACTIVATIONS, RNNSequence, rnn_sequence
from .base import Layer, _flatten

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells", "RNN", "SimpleRNN", "LSTM",
           "GRU", "Bidirectional", "TimeDistributed"]


def _ser(x, mod):
    return None if x is None else mod.serialize(x)


def _act_name(fn, who):
    name = activations.serialize(fn)
    if name not in ACTIVATIONS:
        raise ValueError(f"{who}: activation {name!r} is not supported by the fused recurrent "
                         f"layers; use one of {sorted(ACTIVATIONS)}")
    return name


class _Cell(Layer):
    """Common arguments and weights of the built-in cells."""

    gates = 1
    kind = "simple"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{who}: units must be a positive integer, received {units!r}")
        for n, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0 <= v < 1:
                raise ValueError(f"{who}: {n} must lie in [0, 1), received {v}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self._act = _act_name(self.activation, who)
        self._ract = _act_name(self.recurrent_activation, who)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"{who}: seed must be an int or None, received {seed!r}")
        self.seed = seed
        # a seeded cell draws its dropout masks from its own generator (Keras's SeedGenerator)
        self._rng = None if seed is None else np.random.default_rng(int(seed))

    def _dropout_masks(self, n, d, training):
        """Inverted-dropout masks (keep/(1 − rate)) for the inputs (n, d) and the recurrent
        state (n, units) of one sequence; None where the rate is 0 or not training."""
        xm = rm = None
        rng = self._rng if self._rng is not None else backend.rng()
        dt = np.dtype(self.dtype)
        if training and self.dropout:
            keep = 1 - self.dropout
            xm = ((rng.random((n, d)) < keep) / keep).astype(dt)
        if training and self.recurrent_dropout:
            keep = 1 - self.recurrent_dropout
            rm = ((rng.random((n, self.units)) < keep) / keep).astype(dt)
        return xm, rm

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def _xp(self):
        """The array module of the cell's weights (numpy before it is built)."""
        k = getattr(self, "kernel", None)
        d = getattr(k, "data", None)
        return np if d is None or type(d) is np.ndarray else array_module(d)

    def get_initial_state(self, batch_size=None):
        """Zero states, one (batch_size, size) tensor per state, in a list (Keras 3), where the
        cell's weights live."""
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        xp = self._xp()
        return [Tensor(xp.zeros((batch_size, s), dtype=self.dtype)) for s in sizes]

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_init(self, shape, dtype=None):
        return self.bias_initializer(shape, dtype=dtype)

    def build(self, input_shape):
        d = input_shape[-1]
        if d is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the feature dimension must be "
                             f"known, received {input_shape}")
        g = self.gates * self.units
        self.kernel = self.add_weight((d, g), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.recurrent_kernel = self.add_weight((self.units, g), self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint,
                                                name="recurrent_kernel")
        if self.use_bias:
            self.bias = self.add_weight(self._bias_shape(), self._bias_init,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")
        else:
            self.bias = None
        self.input_dim = int(d)
        self.built = True

    def _bias_value(self):
        if self.bias is not None:
            return self.bias
        return Tensor(self._xp().zeros(self._bias_shape(), dtype=self.dtype))

    def call(self, inputs, states, training=None):
        """One step (for custom loops and the generic ``RNN`` wrapper)."""
        x = inputs if inputs.ndim == 3 else ops.expand_dims(inputs, 1)
        states = states if isinstance(states, (list, tuple)) else [states]
        c0 = states[1] if self.kind == "lstm" else None
        xm, rm = self._dropout_masks(x.shape[0], x.shape[-1], training)
        hs, h, c = rnn_sequence(self.kind, x, self.kernel, self.recurrent_kernel, self._bias_value(),
                                states[0], c0, activation=self._act,
                                recurrent_activation=self._ract,
                                reset_after=getattr(self, "reset_after", True),
                                input_dropout_mask=xm, recurrent_dropout_mask=rm)
        new = [h, c] if self.kind == "lstm" else [h]
        return h, new

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"units": self.units, "activation": activations.serialize(self.activation),
                    "use_bias": self.use_bias,
                    "kernel_initializer": initializers.serialize(self.kernel_initializer),
                    "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "kernel_regularizer": _ser(self.kernel_regularizer, regularizers),
                    "recurrent_regularizer": _ser(self.recurrent_regularizer, regularizers),
                    "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                    "kernel_constraint": _ser(self.kernel_constraint, constraints),
                    "recurrent_constraint": _ser(self.recurrent_constraint, constraints),
                    "bias_constraint": _ser(self.bias_constraint, constraints),
                    "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                    "seed": self.seed})
        if self.kind != "simple":
            cfg["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return cfg


class SimpleRNNCell(_Cell):
    """hₜ = activation(xₜ·W + hₜ₋₁·U + b)."""

    gates, kind = 1, "simple"

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, recurrent_activation="sigmoid", **kwargs)


class LSTMCell(_Cell):
    """LSTM step, gates i, f, c, o (Keras order); ``unit_forget_bias`` starts the forget bias at 1."""

    gates, kind = 4, "lstm"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, implementation=2, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        # Keras's two implementations (one product or four per step) compute the same values
        self.implementation = _check_implementation(self, implementation)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_init(self, shape, dtype=None):
        b = np.asarray(self.bias_initializer(shape, dtype=dtype))
        if self.unit_forget_bias:
            b = b.copy()
            b[self.units:2 * self.units] = 1.0
        return b

    def get_config(self):
        cfg = super().get_config()
        cfg["unit_forget_bias"] = self.unit_forget_bias
        return cfg


class GRUCell(_Cell):
    """GRU step, gates z, r, h (Keras order); ``reset_after=True`` (Keras default) applies the
    reset gate after the recurrent product and keeps separate input/recurrent biases (2, 3·units)."""

    gates, kind = 3, "gru"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True,
                 implementation=2, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)
        self.reset_after = bool(reset_after)
        self.implementation = _check_implementation(self, implementation)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def get_config(self):
        cfg = super().get_config()
        cfg["reset_after"] = self.reset_after
        return cfg


_CELLS = (SimpleRNNCell, LSTMCell, GRUCell)


class StackedRNNCells(Layer):
    """Cells run one after the other as one cell: at each step cell i takes cell i − 1's output
    and its own states; the output is the last cell's.  ``state_size`` is the list of the
    cells' state sizes, and the states are nested the same way (Keras 3)."""

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells)
        for cell in cells:
            if "call" not in dir(cell):
                raise ValueError(f"StackedRNNCells: all cells must have a `call` method. Received "
                                 f"cell without a `call` method: {cell}")
            if "state_size" not in dir(cell):
                raise ValueError(f"StackedRNNCells: all cells must have a `state_size` attribute. "
                                 f"Received cell without a `state_size`: {cell}")
        self.cells = cells

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @property
    def output_size(self):
        return _output_size(self.cells[-1])

    def get_initial_state(self, batch_size=None):
        out = []
        for cell in self.cells:
            fn = getattr(cell, "get_initial_state", None)
            if fn is not None:
                out.append(fn(batch_size=batch_size))
            elif isinstance(cell.state_size, (list, tuple)):
                out.append([Tensor(np.zeros((batch_size, d), dtype=self.dtype))
                            for d in cell.state_size])
            else:
                out.append(Tensor(np.zeros((batch_size, cell.state_size), dtype=self.dtype)))
        return out

    def build(self, input_shape):
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell._maybe_build(tuple(input_shape))
            input_shape = (input_shape[0], _output_size(cell))
        self.built = True

    def call(self, inputs, states, training=None):
        new_states = []
        for cell, st in zip(self.cells, states):
            is_list = isinstance(st, (list, tuple))
            st = list(st) if is_list else [st]
            if isinstance(cell, Layer):
                inputs, st = cell(inputs, st, training=training)
            else:
                inputs, st = cell.call(inputs, st)
            st = list(st) if isinstance(st, (list, tuple)) else [st]
            new_states.append(st[0] if len(st) == 1 and not is_list else st)
        if len(new_states) == 1:
            new_states = new_states[0]
        return inputs, new_states

    def get_config(self):
        from .serialization import serialize
        cfg = super().get_config()
        # without the cells' build_config: the RNN builds them (a copy made from this config,
        # as Bidirectional makes, holds no weights until built)
        cfg["cells"] = [{k: v for k, v in serialize(c).items() if k != "build_config"}
                        for c in self.cells]
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from .serialization import deserialize
        config = dict(config)
        cells = [deserialize(c, custom_objects=custom_objects) for c in config.pop("cells")]
        return cls(cells, **config)


def _on(xp, s, dtype):
    """A state (Tensor or array) as a Tensor on array module ``xp``: kept when it is there,
    a host one copied (a Tensor's graph is kept when its data is already there)."""
    d = s.data if isinstance(s, Tensor) else s
    if type(d) is not np.ndarray and array_module(d) is xp:
        return s if isinstance(s, Tensor) else Tensor(d)
    if isinstance(s, Tensor):
        return Tensor(xp.asarray(d))
    return Tensor(xp.asarray(d, dtype=dtype))


def _output_size(cell):
    """What a cell outputs per step: its ``output_size``, else its (first) state size."""
    size = getattr(cell, "output_size", None)
    if size is not None:
        return int(size)
    s = cell.state_size
    return int(s[0]) if isinstance(s, (list, tuple)) else int(s)


def _nest_states(cell, flat, runtime=True):
    """The flat list of states rebuilt in the nesting of ``cell.state_size`` (an int is one
    tensor).  At run time, inside stacked cells, a built-in cell's states are a list even for
    one state, as its ``get_initial_state`` gives them (Keras 3; its symbolic shapes follow
    ``state_size``)."""
    it = iter(flat)

    def build(sz):
        if isinstance(sz, (list, tuple)):
            return [build(v) for v in sz]
        return next(it)

    def per_cell(c):
        if isinstance(c, StackedRNNCells):
            return [per_cell(v) for v in c.cells]
        sz = c.state_size
        if runtime and isinstance(c, _CELLS) and not isinstance(sz, (list, tuple)):
            return [next(it)]
        return build(sz)
    if isinstance(cell, StackedRNNCells):
        return [per_cell(c) for c in cell.cells]
    size = cell.state_size
    return [build(v) for v in (size if isinstance(size, (list, tuple)) else [size])]


def _check_implementation(cell, implementation):
    if implementation not in (1, 2) or isinstance(implementation, bool):
        raise ValueError(f"{type(cell).__name__} {cell.name!r}: implementation must be 1 or 2, "
                         f"received {implementation!r}")
    return int(implementation)


class RNN(Layer):
    """Runs a cell over a sequence (batch, timesteps, features).

    Args:
        cell: a cell instance (built-in cells run fused; others step by step).
        return_sequences: return every step's output (batch, timesteps, units), not only the last.
        return_state: also return the final state(s).
        go_backwards: process the sequence in reverse (the returned sequence is in that order).
        stateful: carry the final states of a batch into the next one.
        unroll: accepted for compatibility (the fused loop is already unrolled in NumPy).
        zero_output_for_mask: output zeros (instead of the carried state) at masked steps.
    Call: ``layer(x, initial_state=None, mask=None, training=None)``.
    """

    supports_masking = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not isinstance(cell, Layer) or not hasattr(cell, "state_size"):
            raise TypeError(f"RNN {self.name!r}: cell must be a layer with state_size and "
                            f"call(inputs, states), received {type(cell).__name__}")
        self.cell = cell
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful, self.unroll = bool(go_backwards), bool(stateful), bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states = None

    # convenient access as in Keras (layer.units, layer.kernel …)
    def __getattr__(self, name):
        if name in ("units", "kernel", "recurrent_kernel", "bias", "activation",
                    "recurrent_activation", "dropout", "recurrent_dropout", "use_bias",
                    "reset_after", "unit_forget_bias", "kernel_initializer",
                    "recurrent_initializer", "bias_initializer", "kernel_regularizer",
                    "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
                    "recurrent_constraint", "bias_constraint", "seed", "implementation"):
            cell = self.__dict__.get("cell")
            if cell is not None:
                return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    @property
    def _state_sizes(self):
        """The cell's state sizes as a flat list (a Keras cell may give one int; stacked cells
        nest theirs)."""
        s = self.cell.state_size
        return [int(v) for v in _flatten(s)] if isinstance(s, (list, tuple)) else [int(s)]

    def _nested(self, flat, runtime=True):
        """Flat states in the cell's nesting (the same list for a cell with flat states)."""
        return _nest_states(self.cell, flat, runtime)

    def _check(self, shape):
        if len(shape) != 3:
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: expected ndim=3 "
                f"(batch, timesteps, features), found ndim={len(shape)}. Full shape received: "
                f"{tuple(shape)}")

    def build(self, input_shape, initial_state_shape=None):
        if isinstance(input_shape, list):
            input_shape = input_shape[0]
        self._check(input_shape)
        if not self.cell.built:
            self.cell._maybe_build((input_shape[0],) + tuple(input_shape[2:]))
        self._input_ndim = 3
        self._input_axes = {-1: input_shape[-1]}
        self.built = True

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        if isinstance(input_shape, list):
            input_shape = input_shape[0]
        self._check(input_shape)
        u = _output_size(self.cell)
        out = (input_shape[0], input_shape[1], u) if self.return_sequences else (input_shape[0], u)
        if self.return_state:
            n = input_shape[0]
            return [out] + self._nested([(n, s) for s in self._state_sizes], runtime=False)
        return out

    def compute_mask(self, inputs, mask=None):
        m = mask[0] if isinstance(mask, list) else mask
        out = m if self.return_sequences else None
        if self.return_state:
            return [out] + [None] * len(self._nested(self._state_sizes, runtime=False))
        return out

    def get_initial_state(self, batch_size):
        return [Tensor(np.zeros((batch_size, s), dtype=self.dtype)) for s in self._state_sizes]

    def _initial_state(self, n, xp):
        """The zero states of a batch of ``n`` on array module ``xp`` (the inputs'): made
        there by the built-in ``get_initial_state``, an overriding one's host states copied."""
        if xp is np:
            return self.get_initial_state(n)
        if type(self).get_initial_state is RNN.get_initial_state:
            return [Tensor(xp.zeros((n, s), dtype=self.dtype)) for s in self._state_sizes]
        return [_on(xp, s, self.dtype) for s in _flatten(self.get_initial_state(n))]

    def reset_states(self, states=None):
        self.states = None if states is None else [np.asarray(s) for s in states]

    reset_state = reset_states

    def call(self, inputs, initial_state=None, mask=None, training=None):
        if isinstance(inputs, (list, tuple)):
            inputs, initial_state = inputs[0], list(inputs[1:]) or initial_state
        self._check(inputs.shape)
        n = inputs.shape[0]
        d = getattr(inputs, "data", inputs)
        xp = np if type(d) is np.ndarray else array_module(d)
        if isinstance(mask, list):
            mask = mask[0]
        if mask is not None:
            mask = (np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
                    if xp is np else
                    xp.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool))
            if mask.shape != inputs.shape[:2]:
                raise ValueError(f"Layer {self.name!r}: the mask must have shape {inputs.shape[:2]} "
                                 f"(batch, timesteps), received {mask.shape}")
        if initial_state is None:
            if self.stateful and self.states is not None:
                if self.states[0].shape[0] != n:
                    raise ValueError(f"Layer {self.name!r} is stateful: the batch size must stay "
                                     f"{self.states[0].shape[0]}, received {n}")
                initial_state = ([Tensor(s) for s in self.states] if xp is np else
                                 [_on(xp, s, self.dtype) for s in self.states])
            else:
                initial_state = self._initial_state(n, xp)
        else:
            if xp is np:
                initial_state = [s if isinstance(s, Tensor)
                                 else Tensor(np.asarray(s, dtype=self.dtype))
                                 for s in _flatten(initial_state)]
            else:
                initial_state = [_on(xp, s, self.dtype) for s in _flatten(initial_state)]
            for s, size in zip(initial_state, self._state_sizes):
                if s.shape != (n, size):
                    raise ValueError(f"Layer {self.name!r}: each initial state must have shape "
                                     f"({n}, {size}), received {s.shape}")
            if len(initial_state) != len(self._state_sizes):
                raise ValueError(f"Layer {self.name!r} expects {len(self._state_sizes)} initial "
                                 f"state(s), received {len(initial_state)}")
        cell = self.cell
        if isinstance(cell, _CELLS):
            xm, rm = cell._dropout_masks(n, inputs.shape[-1], training)
            hs, h, c = rnn_sequence(cell.kind, inputs, cell.kernel, cell.recurrent_kernel,
                                    cell._bias_value(), initial_state[0],
                                    initial_state[1] if cell.kind == "lstm" else None,
                                    activation=cell._act, recurrent_activation=cell._ract,
                                    mask=mask, go_backwards=self.go_backwards,
                                    reset_after=getattr(cell, "reset_after", True),
                                    input_dropout_mask=xm, recurrent_dropout_mask=rm)
            final = [h, c] if cell.kind == "lstm" else [h]
        elif isinstance(cell, StackedRNNCells) and cell.cells and all(
                isinstance(c, _CELLS) for c in cell.cells):
            hs, h, final = self._stacked_sequences(inputs, initial_state, mask, training)
        else:
            hs, final = self._generic_loop(inputs, initial_state, mask, training)
            h = hs[:, -1] if isinstance(cell, StackedRNNCells) else final[0]
        if self.stateful:
            self.states = [(np.array if xp is np else xp.array)(s.data, copy=True) for s in final]
        if self.return_sequences:
            out = hs
            if mask is not None and self.zero_output_for_mask:
                m = mask[:, ::-1] if self.go_backwards else mask
                out = out * m[..., None].astype(out.dtype)
        else:
            out = h
        if self.return_state:
            return [out] + self._nested(list(final))
        return out

    def _infer(self, x):
        """The layer at inference on an array (a prediction's array plan): its sequence node's
        forward (``ops.recurrent.RNNSequence.forward``) on the arrays themselves, from zero
        states, as ``call`` runs it without a mask, dropout or states kept; the general call
        otherwise (a subclass's own call or initial state, a stateful layer, returned states,
        stacked or custom cells, another dtype)."""
        cell = self.cell
        if (type(x) is not np.ndarray or x.ndim != 3 or not x.shape[1]
                or type(self).call is not RNN.call or self.stateful or self.return_state
                or not isinstance(cell, _CELLS) or getattr(cell, "_bias_value", None) is None
                or type(self).get_initial_state is not RNN.get_initial_state):
            return Layer._infer(self, x)
        W, U, b = cell.kernel.data, cell.recurrent_kernel.data, cell._bias_value().data
        dt = x.dtype
        if (dt != np.dtype(self.dtype) or W.dtype != dt or U.dtype != dt or b.dtype != dt
                or x.shape[2] != W.shape[0]):
            return Layer._infer(self, x)
        n, T = x.shape[0], x.shape[1]
        fn = _new(RNNSequence)
        fn.cell, fn.activation, fn.recurrent_activation = cell.kind, cell._act, cell._ract
        fn.mask = fn.xmask = fn.rmask = None
        fn.go_backwards = bool(self.go_backwards)
        fn.reset_after = bool(getattr(cell, "reset_after", True))
        u = U.shape[0]
        h0 = np.zeros((n, u), dtype=dt)
        if cell.kind == "lstm":
            if fn.activation == "tanh" and fn.recurrent_activation == "sigmoid":
                small = RNNSequence.lstm_infer_small(x, W, U, b, fn.go_backwards)
                if small is not None:
                    hs = small[0]
                    return hs.transpose(1, 0, 2).copy() if self.return_sequences else hs[T - 1].copy()
            fn.needs = (False,) * 6
            out = fn.forward(x, W, U, b, h0, np.zeros((n, u), dtype=dt))
            return out[:, :T].copy() if self.return_sequences else out[:, T - 1].copy()
        fn.needs = (False,) * 5
        out = fn.forward(x, W, U, b, h0)
        return out if self.return_sequences else out[:, T - 1].copy()

    def _stacked_sequences(self, inputs, states, mask, training):
        """Built-in cells stacked: one fused sequence node per cell, each over the previous
        cell's outputs (in processing order, so only the first one reverses the sequence)."""
        seq, m, final, i = inputs, mask, [], 0
        n = inputs.shape[0]
        for k, cell in enumerate(self.cell.cells):
            h0 = states[i]
            c0 = states[i + 1] if cell.kind == "lstm" else None
            i += 2 if cell.kind == "lstm" else 1
            xm, rm = cell._dropout_masks(n, seq.shape[-1], training)
            backwards = self.go_backwards and k == 0
            seq, h, c = rnn_sequence(cell.kind, seq, cell.kernel, cell.recurrent_kernel,
                                     cell._bias_value(), h0, c0, activation=cell._act,
                                     recurrent_activation=cell._ract, mask=m,
                                     go_backwards=backwards,
                                     reset_after=getattr(cell, "reset_after", True),
                                     input_dropout_mask=xm, recurrent_dropout_mask=rm)
            if backwards and m is not None:
                m = m[:, ::-1]
            final += [h, c] if cell.kind == "lstm" else [h]
        return seq, h, final

    def _generic_loop(self, inputs, states, mask, training):
        T = inputs.shape[1]
        order = range(T - 1, -1, -1) if self.go_backwards else range(T)
        outs = []
        nested = isinstance(self.cell, StackedRNNCells)
        for t in order:
            out, new = self.cell(inputs[:, t], self._nested(states) if nested else states,
                                 training=training)
            new = _flatten(new) if nested else (list(new) if isinstance(new, (list, tuple))
                                                else [new])
            if mask is not None:
                m = mask[:, t][:, None]
                out = ops.where(m, out, outs[-1] if outs else ops.zeros_like(out))
                new = [ops.where(m, a, b) for a, b in zip(new, states)]
            outs.append(out)
            states = new
        return ops.stack(outs, axis=1), states

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"return_sequences": self.return_sequences, "return_state": self.return_state,
                    "go_backwards": self.go_backwards, "stateful": self.stateful,
                    "unroll": self.unroll, "zero_output_for_mask": self.zero_output_for_mask})
        if type(self) is RNN:
            cfg["cell"] = {"class_name": type(self.cell).__name__, "config": self.cell.get_config()}
        else:
            ccfg = self.cell.get_config()
            for k in ("name", "trainable", "dtype"):
                ccfg.pop(k, None)
            cfg.update(ccfg)
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if cls is RNN:
            c = config.pop("cell")
            known = {k.__name__: k for k in _CELLS + (StackedRNNCells,)}
            if c.get("class_name") in known:
                return cls(known[c["class_name"]].from_config(c["config"]), **config)
            from .serialization import deserialize
            return cls(deserialize(c), **config)
        return cls(**config)


_RNN_KEYS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
             "zero_output_for_mask", "name", "trainable", "dtype", "input_shape", "input_dim",
             "batch_input_shape", "batch_size", "activity_regularizer")


def _split_kwargs(kwargs):
    layer_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in _RNN_KEYS}
    return layer_kw, kwargs


def _check_use_cudnn(layer, use_cudnn):
    # cuDNN is one implementation of the same recurrence: on axone's CPU kernels it changes nothing
    if use_cudnn not in ("auto", True, False):
        raise ValueError(f"{layer}: use_cudnn must be 'auto', True or False, received {use_cudnn!r}")


def _check_units(layer, units):
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
        raise ValueError(f"{layer}: units must be a positive integer, received {units!r}")


class SimpleRNN(RNN):
    """Fully connected recurrent layer: hₜ = tanh(xₜW + hₜ₋₁U + b)."""

    def __init__(self, units, activation="tanh", **kwargs):
        _check_units("SimpleRNN", units)
        layer_kw, cell_kw = _split_kwargs(kwargs)
        cell = SimpleRNNCell(units, activation=activation, name="simple_rnn_cell", **cell_kw)
        super().__init__(cell, **layer_kw)


class LSTM(RNN):
    """Long short-term memory (Hochreiter & Schmidhuber), Keras's gates and weights."""

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_cudnn="auto",
                 **kwargs):
        _check_units("LSTM", units)
        _check_use_cudnn("LSTM", use_cudnn)
        layer_kw, cell_kw = _split_kwargs(kwargs)
        cell = LSTMCell(units, activation=activation, recurrent_activation=recurrent_activation,
                        name="lstm_cell", **cell_kw)
        super().__init__(cell, **layer_kw)


class GRU(RNN):
    """Gated recurrent unit (Cho et al.), Keras's gates, weights and ``reset_after`` convention:
    hₜ = z·hₜ₋₁ + (1 − z)·h̃ (SPEC §8)."""

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True,
                 use_cudnn="auto", **kwargs):
        _check_units("GRU", units)
        _check_use_cudnn("GRU", use_cudnn)
        layer_kw, cell_kw = _split_kwargs(kwargs)
        cell = GRUCell(units, activation=activation, recurrent_activation=recurrent_activation,
                       reset_after=reset_after, name="gru_cell", **cell_kw)
        super().__init__(cell, **layer_kw)


# ---------------------------------------------------------------- wrappers
class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards and merges them.

    Args:
        layer: an RNN layer (its copy runs with ``go_backwards`` flipped).
        merge_mode: "concat" (default), "sum", "mul", "ave", or None (a list of both).
        backward_layer: optional explicit backward layer.
        weights: optional initial weights, the forward layer's then the backward layer's.
    The backward sequence is reversed back before merging, so step t of both refers to input t.
    """

    supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, RNN):
            raise ValueError(f"Bidirectional {self.name!r}: expected a recurrent layer, received "
                             f"{type(layer).__name__}")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError(f"Bidirectional {self.name!r}: merge_mode must be 'concat', 'sum', "
                             f"'mul', 'ave' or None, received {merge_mode!r}")
        self.merge_mode = merge_mode
        cfg = layer.get_config()
        self.forward_layer = type(layer).from_config({**cfg, "name": "forward_" + layer.name})
        if backward_layer is None:
            self.backward_layer = type(layer).from_config(
                {**cfg, "name": "backward_" + layer.name, "go_backwards": not layer.go_backwards})
        else:
            self.backward_layer = backward_layer
        for l in (self.forward_layer, self.backward_layer):
            if l.return_sequences:
                l.zero_output_for_mask = True
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self._initial_weights = None if weights is None else list(weights)

    def build(self, input_shape):
        self.forward_layer._maybe_build(input_shape)
        self.backward_layer._maybe_build(input_shape)
        if self._initial_weights:
            w, nf = self._initial_weights, len(self.forward_layer.weights)
            if len(w) != nf + len(self.backward_layer.weights):
                raise ValueError(f"Bidirectional {self.name!r}: weights must hold "
                                 f"{nf + len(self.backward_layer.weights)} arrays (forward then "
                                 f"backward), received {len(w)}")
            self.forward_layer.set_weights(w[:nf])
            self.backward_layer.set_weights(w[nf:])
            self._initial_weights = None
        self.built = True

    def _merge(self, a, b):
        if self.merge_mode == "concat":
            return ops.concatenate([a, b], axis=-1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "mul":
            return a * b
        if self.merge_mode == "ave":
            return (a + b) * 0.5
        return [a, b]

    def call(self, inputs, mask=None, training=None, initial_state=None):
        fs = bs = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fs, bs = initial_state[:half], initial_state[half:]
        f = self.forward_layer(inputs, training=training, mask=mask, initial_state=fs)
        b = self.backward_layer(inputs, training=training, mask=mask, initial_state=bs)
        if self.return_state:
            f, fstates = f[0], f[1:]
            b, bstates = b[0], b[1:]
        if self.return_sequences:
            b = ops.get_item(b, (slice(None), slice(None, None, -1)))
        out = self._merge(f, b)
        if self.return_state:
            out = out if isinstance(out, list) else [out]
            return out + list(fstates) + list(bstates)
        return out

    def compute_output_shape(self, input_shape):
        s = self.forward_layer.compute_output_shape(input_shape)
        out = s[0] if self.return_state else s
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (out[-1] * 2,)
        if self.merge_mode is None:
            out = [out, out]
        if self.return_state:
            states = s[1:]
            return (out if isinstance(out, list) else [out]) + list(states) + list(states)
        return out

    def compute_mask(self, inputs, mask=None):
        m = mask if self.return_sequences else None
        out = [m, m] if self.merge_mode is None else [m]     # merge_mode None: two outputs
        if self.return_state:
            n = len(self.forward_layer._state_sizes) * 2
            return out + [None] * n
        return out if self.merge_mode is None else m

    def get_config(self):
        cfg = super().get_config()
        inner = self.forward_layer.get_config()
        inner["name"] = inner["name"][len("forward_"):]
        cfg.update({"merge_mode": self.merge_mode,
                    "layer": {"class_name": type(self.forward_layer).__name__, "config": inner}})
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        spec = config.pop("layer")
        from . import recurrent as R
        layer = getattr(R, spec["class_name"]).from_config(spec["config"])
        return cls(layer, **config)


class TimeDistributed(Layer):
    """Applies a layer to every time step: (batch, T, …) → layer on (batch·T, …) → (batch, T, …)."""

    supports_masking = True

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed {self.name!r}: expected a Layer, received "
                             f"{type(layer).__name__}")
        self.layer = layer

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed {self.name!r}: expected an input of rank ≥ 3 "
                             f"(batch, timesteps, …), received {input_shape}")
        self.layer._maybe_build((None,) + tuple(input_shape[2:]))
        self.built = True

    def call(self, inputs, training=None):
        n, t = inputs.shape[:2]
        flat = ops.reshape(inputs, (n * t,) + tuple(inputs.shape[2:]))
        y = self.layer(flat, training=training)
        return ops.reshape(y, (n, t) + tuple(y.shape[1:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def get_config(self):
        cfg = super().get_config()
        cfg["layer"] = {"class_name": type(self.layer).__name__, "config": self.layer.get_config()}
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        spec = config.pop("layer")
        from .. import layers as L
        return cls(getattr(L, spec["class_name"]).from_config(spec["config"]), **config)


del copy
