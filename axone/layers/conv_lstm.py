"""Convolutional LSTM layers (ConvLSTM1D / 2D / 3D), Keras's weight layout.

Per step t, with the kernels K (k…, C, 4F) and R (k…, F, 4F) split along their last axis into
the gates i, f, c, o (in that order) and * the convolution:

    z = x_t * K + b  (the layer's strides, padding, dilation)  +  h_{t−1} * R  ("same", stride 1)
    i = σ(z_i),  f = σ(z_f),  o = σ(z_o),  g = tanh(z_c)      (recurrent_activation, activation)
    c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)

The input convolution of every step is one convolution node over the (batch·steps) frames; the
recurrent one is a node per step.  Gradients come from those nodes (backpropagation through
time by the graph).
"""
import numpy as np

from .. import activations, constraints, initializers, ops, regularizers
from ..autograd.tensor import Tensor
from ..config import standardize_data_format
from ..ops.conv import conv_output_length
from .base import Layer

__all__ = ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]


def _ntuple(v, n, name, who):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (int(v),) * n
    try:
        v = tuple(int(i) for i in v)
    except TypeError:
        raise TypeError(f"{who}: {name} must be an int or a tuple of {n} ints, received {v!r}") from None
    if len(v) != n or any(i <= 0 for i in v):
        raise ValueError(f"{who}: {name} must be a positive int or a tuple of {n} positive ints, "
                         f"received {v}")
    return v


def _ser(x, mod):
    return None if x is None else mod.serialize(x)


class _ConvLSTM(Layer):
    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 zero_output_for_mask=False, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.unroll = bool(unroll)      # the steps always run as a Python loop: either is exact
        self.zero_output_for_mask = bool(zero_output_for_mask)   # masks raise NotImplementedError
        who = f"{type(self).__name__} {self.name!r}"
        n = self.rank
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(f"{who}: filters must be a positive integer, received {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size", who)
        self.strides = _ntuple(strides, n, "strides", who)
        self.dilation_rate = _ntuple(dilation_rate, n, "dilation_rate", who)
        padding = str(padding).lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same', received {padding!r}")
        self.padding = padding
        self.data_format = standardize_data_format(data_format, who)
        if dropout or recurrent_dropout:
            raise NotImplementedError(f"{who}: dropout and recurrent_dropout are not supported "
                                      f"(received dropout={dropout}, "
                                      f"recurrent_dropout={recurrent_dropout})")
        if stateful:
            raise NotImplementedError(f"{who}: stateful=True is not supported")
        self.dropout, self.recurrent_dropout, self.seed = float(dropout), float(recurrent_dropout), seed
        self.stateful = False
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards = bool(go_backwards)

    @property
    def _who(self):
        return f"{type(self).__name__} {self.name!r}"

    def _frame_shape(self, input_shape):
        """(batch, steps, spatial…, channels) of a sequence shape in the layer's data_format."""
        if len(input_shape) != self.rank + 3:
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: expected ndim="
                f"{self.rank + 3} (batch, time, {'spatial, ' * self.rank}channels), found ndim="
                f"{len(input_shape)}. Full shape received: {tuple(input_shape)}")
        s = tuple(input_shape)
        if self.data_format == "channels_first":
            return (s[0], s[1]) + s[3:] + (s[2],)
        return s

    def _state_spatial(self, frame):
        sp = [conv_output_length(n, k, self.padding, st, d) for n, k, st, d in
              zip(frame[2:-1], self.kernel_size, self.strides, self.dilation_rate)]
        if any(o is not None and o <= 0 for o in sp):
            raise ValueError(f"{self._who}: input of shape {frame} is too small for kernel_size "
                             f"{self.kernel_size} with padding {self.padding!r}")
        return tuple(sp)

    def build(self, input_shape):
        frame = self._frame_shape(input_shape)
        if any(n is None for n in frame[2:-1]):
            raise ValueError(f"{self._who}: ConvLSTM layers need static spatial dimensions, "
                             f"received input shape {tuple(input_shape)}")
        c = frame[-1]
        if c is None:
            raise ValueError(f"{self._who}: the channel dimension of the inputs must be known, "
                             f"received {tuple(input_shape)}")
        self._state_spatial(frame)
        f = self.filters
        self.kernel = self.add_weight(self.kernel_size + (int(c), 4 * f), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.recurrent_kernel = self.add_weight(self.kernel_size + (f, 4 * f),
                                                self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint,
                                                name="recurrent_kernel")
        if self.use_bias:
            init = self.bias_initializer
            if self.unit_forget_bias:
                def init(shape, dtype=None, _b=self.bias_initializer):
                    return np.concatenate([np.asarray(_b((f,), dtype=dtype)), np.ones(f, dtype),
                                           np.asarray(_b((2 * f,), dtype=dtype))])
            self.bias = self.add_weight((4 * f,), init, regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")
        else:
            self.bias = None
        self._input_ndim = self.rank + 3
        self._input_axes = {(2 if self.data_format == "channels_first" else -1): int(c)}
        self.built = True

    def _to_format(self, y):
        """A channels-last (batch, [time,] spatial…, F) tensor in the layer's data_format."""
        if self.data_format != "channels_first":
            return y
        lead = y.ndim - self.rank - 1
        return ops.transpose(y, tuple(range(lead)) + (y.ndim - 1,)
                             + tuple(range(lead, y.ndim - 1)))

    def _from_format(self, s):
        """A state (batch, F, spatial…) given in channels_first, as channels-last."""
        if self.data_format != "channels_first":
            return s
        return ops.transpose(s, (0,) + tuple(range(2, s.ndim)) + (1,))

    def call(self, inputs, initial_state=None, mask=None, training=None):
        if mask is not None:
            raise NotImplementedError(f"{self._who}: masking is not supported")
        x = inputs if isinstance(inputs, Tensor) else Tensor(np.asarray(inputs, self.dtype))
        frame = self._frame_shape(x.shape)
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 1) + tuple(range(3, x.ndim)) + (2,))
        b, steps = frame[0], frame[1]
        if steps == 0:
            raise ValueError(f"{self._who}: the input sequence is empty, received shape "
                             f"{tuple(inputs.shape)}")
        sp = self._state_spatial(frame)
        f = self.filters
        # the input convolution of every step at once: frames (batch·time, spatial…, C)
        xz = ops.conv(ops.reshape(x, (b * steps,) + frame[2:]), self.kernel, self.bias,
                      self.strides, self.padding, self.dilation_rate)
        xz = ops.reshape(xz, (b, steps) + sp + (4 * f,))
        if initial_state is None:
            h = Tensor(np.zeros((b,) + sp + (f,), x.dtype))
            c = h
        else:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
                raise ValueError(f"{self._who}: initial_state must be a list [h, c], received "
                                 f"{type(initial_state).__name__}")
            h, c = (self._from_format(s if isinstance(s, Tensor) else Tensor(np.asarray(s, x.dtype)))
                    for s in initial_state)
            for s in (h, c):
                if tuple(s.shape) != (b,) + sp + (f,):
                    raise ValueError(f"{self._who}: each initial state must have the shape "
                                     f"{self._to_shape((b,) + sp + (f,))}, received {s.shape}")
        lead = (slice(None),) * (self.rank + 1)
        gate = [lead + (slice(j * f, (j + 1) * f),) for j in range(4)]
        outs = []
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        for t in order:
            z = xz[:, t] + ops.conv(h, self.recurrent_kernel, None, 1, "same")
            i = self.recurrent_activation(z[gate[0]])
            fg = self.recurrent_activation(z[gate[1]])
            g = self.activation(z[gate[2]])
            o = self.recurrent_activation(z[gate[3]])
            c = fg * c + i * g
            h = o * self.activation(c)
            if self.return_sequences:
                outs.append(h)
        y = ops.stack(outs, axis=1) if self.return_sequences else h
        y = self._to_format(y)
        if self.return_state:
            return [y, self._to_format(h), self._to_format(c)]
        return y

    def _to_shape(self, shape):
        if self.data_format == "channels_first":
            return (shape[0], shape[-1]) + tuple(shape[1:-1])
        return tuple(shape)

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        if isinstance(input_shape, list):
            input_shape = input_shape[0]
        frame = self._frame_shape(input_shape)
        state = self._to_shape((frame[0],) + self._state_spatial(frame) + (self.filters,))
        if self.return_sequences:
            out = (state[0], frame[1]) + state[1:]
        else:
            out = state
        if self.return_state:
            return [out, state, state]
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg.update({
            "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": _ser(self.kernel_regularizer, regularizers),
            "recurrent_regularizer": _ser(self.recurrent_regularizer, regularizers),
            "bias_regularizer": _ser(self.bias_regularizer, regularizers),
            "kernel_constraint": _ser(self.kernel_constraint, constraints),
            "recurrent_constraint": _ser(self.recurrent_constraint, constraints),
            "bias_constraint": _ser(self.bias_constraint, constraints),
            "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed,
            "return_sequences": self.return_sequences, "return_state": self.return_state,
            "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask})
        return cfg


class ConvLSTM1D(_ConvLSTM):
    """Convolutional LSTM over (batch, time, steps, channels) sequences."""

    rank = 1


class ConvLSTM2D(_ConvLSTM):
    """Convolutional LSTM over (batch, time, rows, cols, channels) sequences."""

    rank = 2


class ConvLSTM3D(_ConvLSTM):
    """Convolutional LSTM over (batch, time, d1, d2, d3, channels) sequences."""

    rank = 3
