"""Convolution layers (channels-last, Keras kernel layouts so weights interchange):
Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose."""
import numpy as np

from .. import activations, constraints, initializers, ops, regularizers
from ..ops.conv import _deconv_length, conv_output_length
from .base import Layer

__all__ = ["Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
           "Convolution1D", "Convolution2D"]


def _ntuple(v, n, name, who, allow_zero=False):
    if isinstance(v, (int, np.integer)):
        v = (int(v),) * n
    try:
        v = tuple(int(i) for i in v)
    except TypeError:
        raise TypeError(f"{who}: {name} must be an int or a tuple of {n} ints, received {v!r}") from None
    low = 0 if allow_zero else 1
    if len(v) != n or any(i < low for i in v):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{who}: {name} must be a {kind} int or a tuple of {n} {kind} ints, "
                         f"received {v}")
    return v


def _ser(x, mod):
    return None if x is None else mod.serialize(x)


def _check_data_format(who, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{who}: only data_format='channels_last' is supported, received "
                         f"{data_format!r}")


def _spatial_out(layer, input_shape, rank, kernel_size, padding, strides, dilation_rate):
    """Output spatial sizes of a convolution layer; a ValueError naming the layer and the shapes
    when the input has the wrong rank or is smaller than the (dilated) kernel."""
    if len(input_shape) != rank + 2:
        raise ValueError(
            f"Input 0 of layer {layer.name!r} is incompatible with the layer: expected ndim="
            f"{rank + 2} (batch, {'spatial, ' * rank}channels), found ndim={len(input_shape)}. "
            f"Full shape received: {tuple(input_shape)}")
    sp = [conv_output_length(n, k, padding, s, d) for n, k, s, d in
          zip(input_shape[1:-1], kernel_size, strides, dilation_rate)]
    if any(o is not None and o <= 0 for o in sp):
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: input of shape {tuple(input_shape)} "
                         f"is too small for kernel_size {kernel_size} with dilation_rate "
                         f"{dilation_rate} and padding {padding!r} (output size {tuple(sp)})")
    return sp


class _Conv(Layer):
    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(f"{who}: filters must be a positive integer, received {filters!r}")
        n = self.rank
        self.filters = int(filters)
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size", who)
        self.strides = _ntuple(strides, n, "strides", who)
        self.dilation_rate = _ntuple(dilation_rate, n, "dilation_rate", who)
        padding = str(padding).lower()
        allowed = ("valid", "same", "causal") if n == 1 else ("valid", "same")
        if padding not in allowed:
            raise ValueError(f"{who}: padding must be one of {allowed}, received {padding!r}")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{who}: only data_format='channels_last' is supported, received {data_format!r}")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{who}: strides > 1 cannot be combined with dilation_rate > 1")
        if groups <= 0 or self.filters % groups:
            raise ValueError(f"{who}: groups={groups} must be positive and divide filters={filters}")
        self.padding, self.data_format, self.groups = padding, "channels_last", int(groups)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _check_rank(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: expected ndim="
                f"{self.rank + 2} (batch, {'spatial, ' * self.rank}channels), found ndim="
                f"{len(input_shape)}. Full shape received: {tuple(input_shape)}")

    def build(self, input_shape):
        self._check_rank(input_shape)
        cin = input_shape[-1]
        if cin is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the channel dimension of the input "
                             f"must be known, received {input_shape}")
        if cin % self.groups:
            raise ValueError(f"{type(self).__name__} {self.name!r}: groups={self.groups} must divide "
                             f"the input channels ({cin})")
        self.kernel = self.add_weight(self.kernel_size + (cin // self.groups, self.filters),
                                      self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.bias = self.add_weight((self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self._input_ndim = self.rank + 2
        self._input_axes = {-1: int(cin)}
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(tuple(inputs.shape))   # rank and size errors name the layer
        relu = self.activation is activations.relu     # one node: max(conv + b, 0)
        y = ops.conv(inputs, self.kernel, self.bias, self.strides, self.padding, self.dilation_rate,
                     self.groups, relu=relu)
        if not relu:
            y = self.activation(y)
        return y

    def compute_output_shape(self, input_shape):
        sp = _spatial_out(self, input_shape, self.rank, self.kernel_size, self.padding, self.strides,
                          self.dilation_rate)
        return (input_shape[0],) + tuple(sp) + (self.filters,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                    "padding": self.padding, "data_format": self.data_format,
                    "dilation_rate": self.dilation_rate, "groups": self.groups,
                    "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                    "kernel_initializer": initializers.serialize(self.kernel_initializer),
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "kernel_regularizer": _ser(self.kernel_regularizer, regularizers),
                    "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                    "kernel_constraint": _ser(self.kernel_constraint, constraints),
                    "bias_constraint": _ser(self.bias_constraint, constraints)})
        return cfg


class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels); kernel (kernel_size, in_channels/groups, filters).
    ``padding="causal"`` pads on the left only, so output t sees inputs ≤ t."""

    rank = 1


class Conv2D(_Conv):
    """2-D convolution over (batch, height, width, channels); kernel (kh, kw, in/groups, filters).

    Output size (004): valid ⌈(H − (k − 1)·d)/s⌉, same ⌈H/s⌉;  parameters (kh·kw·C + 1)·F.
    """

    rank = 2


Convolution1D = Conv1D
Convolution2D = Conv2D


class DepthwiseConv2D(Layer):
    """Per-channel 2-D convolution: kernel (kh, kw, channels, depth_multiplier)."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"DepthwiseConv2D {self.name!r}"
        _check_data_format(who, data_format)
        self.kernel_size = _ntuple(kernel_size, 2, "kernel_size", who)
        self.strides = _ntuple(strides, 2, "strides", who)
        self.dilation_rate = _ntuple(dilation_rate, 2, "dilation_rate", who)
        if padding not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same', received {padding!r}")
        if depth_multiplier <= 0:
            raise ValueError(f"{who}: depth_multiplier must be positive, received {depth_multiplier}")
        self.padding, self.depth_multiplier = padding, int(depth_multiplier)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"DepthwiseConv2D {self.name!r}: expected a 4-D input, received {input_shape}")
        c = input_shape[-1]
        self.kernel = self.add_weight(self.kernel_size + (c, self.depth_multiplier),
                                      self.depthwise_initializer,
                                      regularizer=self.depthwise_regularizer,
                                      constraint=self.depthwise_constraint, name="kernel")
        self.bias = self.add_weight((c * self.depth_multiplier,), self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self._input_ndim = 4
        self._input_axes = {-1: int(c)}
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(tuple(inputs.shape))   # rank and size errors name the layer
        y = ops.depthwise_conv(inputs, self.kernel, self.bias, self.strides, self.padding,
                               self.dilation_rate)
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        sp = _spatial_out(self, input_shape, 2, self.kernel_size, self.padding, self.strides,
                          self.dilation_rate)
        return (input_shape[0],) + tuple(sp) + (input_shape[-1] * self.depth_multiplier,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
                    "depth_multiplier": self.depth_multiplier, "dilation_rate": self.dilation_rate,
                    "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                    "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "depthwise_regularizer": _ser(self.depthwise_regularizer, regularizers),
                    "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                    "depthwise_constraint": _ser(self.depthwise_constraint, constraints),
                    "bias_constraint": _ser(self.bias_constraint, constraints)})
        return cfg


class SeparableConv2D(Layer):
    """Depthwise (kh, kw, C, depth_multiplier) then pointwise (1, 1, C·multiplier, filters) convolution."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"SeparableConv2D {self.name!r}"
        _check_data_format(who, data_format)
        if filters <= 0:
            raise ValueError(f"{who}: filters must be positive, received {filters}")
        self.filters = int(filters)
        self.kernel_size = _ntuple(kernel_size, 2, "kernel_size", who)
        self.strides = _ntuple(strides, 2, "strides", who)
        self.dilation_rate = _ntuple(dilation_rate, 2, "dilation_rate", who)
        if padding not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same', received {padding!r}")
        if depth_multiplier <= 0:
            raise ValueError(f"{who}: depth_multiplier must be positive, received {depth_multiplier}")
        self.padding, self.depth_multiplier = padding, int(depth_multiplier)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        c = input_shape[-1]
        self.depthwise_kernel = self.add_weight(self.kernel_size + (c, self.depth_multiplier),
                                                self.depthwise_initializer,
                                                regularizer=self.depthwise_regularizer,
                                                constraint=self.depthwise_constraint,
                                                name="depthwise_kernel")
        self.pointwise_kernel = self.add_weight((1, 1, c * self.depth_multiplier, self.filters),
                                                self.pointwise_initializer,
                                                regularizer=self.pointwise_regularizer,
                                                constraint=self.pointwise_constraint,
                                                name="pointwise_kernel")
        self.bias = self.add_weight((self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self._input_ndim = 4
        self._input_axes = {-1: int(c)}
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(tuple(inputs.shape))   # rank and size errors name the layer
        y = ops.depthwise_conv(inputs, self.depthwise_kernel, None, self.strides, self.padding,
                               self.dilation_rate)
        y = ops.conv(y, self.pointwise_kernel, self.bias)
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        sp = _spatial_out(self, input_shape, 2, self.kernel_size, self.padding, self.strides,
                          self.dilation_rate)
        return (input_shape[0],) + tuple(sp) + (self.filters,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                    "padding": self.padding, "depth_multiplier": self.depth_multiplier,
                    "dilation_rate": self.dilation_rate,
                    "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                    "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                    "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "depthwise_regularizer": _ser(self.depthwise_regularizer, regularizers),
                    "pointwise_regularizer": _ser(self.pointwise_regularizer, regularizers),
                    "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                    "depthwise_constraint": _ser(self.depthwise_constraint, constraints),
                    "pointwise_constraint": _ser(self.pointwise_constraint, constraints),
                    "bias_constraint": _ser(self.bias_constraint, constraints)})
        return cfg


class Conv2DTranspose(Layer):
    """Transposed 2-D convolution (upsampling); kernel (kh, kw, filters, in_channels) as Keras."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"Conv2DTranspose {self.name!r}"
        _check_data_format(who, data_format)
        if filters <= 0:
            raise ValueError(f"{who}: filters must be positive, received {filters}")
        self.filters = int(filters)
        self.kernel_size = _ntuple(kernel_size, 2, "kernel_size", who)
        self.strides = _ntuple(strides, 2, "strides", who)
        self.dilation_rate = _ntuple(dilation_rate, 2, "dilation_rate", who)
        if padding not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same', received {padding!r}")
        self.padding = padding
        if output_padding is not None:
            output_padding = _ntuple(output_padding, 2, "output_padding", who, allow_zero=True)
            if any(o >= s for o, s in zip(output_padding, self.strides)):
                raise ValueError(f"{who}: output_padding must be strictly less than strides, "
                                 f"received output_padding={output_padding}, strides={self.strides}")
        self.output_padding = output_padding
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        c = input_shape[-1]
        self.kernel = self.add_weight(self.kernel_size + (self.filters, c), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.bias = self.add_weight((self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self._input_ndim = 4
        self._input_axes = {-1: int(c)}
        self.built = True

    def call(self, inputs):
        y = ops.conv_transpose(inputs, self.kernel, self.bias, self.strides, self.padding,
                               self.output_padding, self.dilation_rate)
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        op = self.output_padding or (None, None)
        sp = [None if n is None else _deconv_length(n, k, self.padding, o, s, d) for n, k, o, s, d in
              zip(input_shape[1:3], self.kernel_size, op, self.strides, self.dilation_rate)]
        return (input_shape[0],) + tuple(sp) + (self.filters,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                    "padding": self.padding, "output_padding": self.output_padding,
                    "dilation_rate": self.dilation_rate,
                    "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                    "kernel_initializer": initializers.serialize(self.kernel_initializer),
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "kernel_regularizer": _ser(self.kernel_regularizer, regularizers),
                    "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                    "kernel_constraint": _ser(self.kernel_constraint, constraints),
                    "bias_constraint": _ser(self.bias_constraint, constraints)})
        return cfg
