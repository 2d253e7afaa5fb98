"""Convolution layers (Keras kernel layouts so weights interchange): Conv1D/2D/3D,
Conv1D/2D/3DTranspose, DepthwiseConv1D/2D, SeparableConv1D/2D.

The ops are channels-last; ``data_format="channels_first"`` transposes the input to
channels-last before the op and the output back after it (two transpose nodes)."""
import numpy as np

from .. import activations, constraints, initializers, ops, regularizers
from ..autograd.function import _new
from ..config import standardize_data_format
from ..ops.conv import Conv as _ConvNode, _conv_args
from ..ops.conv import _deconv_length, conv_output_length, to_channels_first, to_channels_last
from .base import Layer

__all__ = ["Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
           "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
           "Convolution1D", "Convolution2D", "Convolution3D", "Convolution1DTranspose",
           "Convolution2DTranspose", "Convolution3DTranspose", "SeparableConvolution1D",
           "SeparableConvolution2D"]


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


def _last_shape(shape, fmt):
    """A shape in the layer's data_format as its channels-last form."""
    shape = tuple(shape)
    if fmt == "channels_first" and len(shape) >= 3:
        return (shape[0],) + shape[2:] + (shape[1],)
    return shape


def _fmt_shape(shape, fmt):
    """A channels-last shape in the layer's data_format."""
    shape = tuple(shape)
    if fmt == "channels_first":
        return (shape[0], shape[-1]) + shape[1:-1]
    return shape


class _Formatted(Layer):
    """Channel axis bookkeeping shared by the convolution layers."""

    data_format = "channels_last"

    def _in(self, x):
        return to_channels_last(x) if self.data_format == "channels_first" else x

    def _out(self, y):
        return to_channels_first(y) if self.data_format == "channels_first" else y

    def _channels(self, input_shape, ndim):
        """The input's channel count (the layer's rank checked first)."""
        if len(input_shape) != ndim:
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: expected ndim="
                f"{ndim}, found ndim={len(input_shape)}. Full shape received: {tuple(input_shape)}")
        axis = 1 if self.data_format == "channels_first" else -1
        c = input_shape[axis]
        if c is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the channel dimension of the "
                             f"input must be known, received {tuple(input_shape)}")
        self._input_ndim = ndim
        self._input_axes = {axis: int(c)}
        return int(c)


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


class _Conv(_Formatted):
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
        fmt = standardize_data_format(data_format, who)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{who}: strides > 1 cannot be combined with dilation_rate > 1")
        if groups <= 0 or self.filters % groups:
            raise ValueError(f"{who}: groups={groups} must be positive and divide filters={filters}")
        self.padding, self.data_format, self.groups = padding, fmt, int(groups)
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
        cin = self._channels(input_shape, self.rank + 2)
        if cin % self.groups:
            raise ValueError(f"{type(self).__name__} {self.name!r}: groups={self.groups} must divide "
                             f"the input channels ({cin})")
        self.kernel = self.add_weight(self.kernel_size + (cin // self.groups, self.filters),
                                      self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.bias = self.add_weight((self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(tuple(inputs.shape))   # rank and size errors name the layer
        relu = self.activation is activations.relu     # one node: max(conv + b, 0)
        y = ops.conv(self._in(inputs), self.kernel, self.bias, self.strides, self.padding, self.dilation_rate,
                     self.groups, relu=relu)
        if not relu:
            y = self.activation(y)
        return self._out(y)

    def _inference_step(self):
        """What a prediction's array plan runs for this layer (models/_inference.py).  For the
        plain channels-last layer with a ReLU or linear activation and no groups: its Conv
        node's forward on the arrays, with the arguments ``ops.conv`` normalises for an input
        shape the layer's own call has checked once (the first call of a shape runs ``call``);
        what may change after the plan was made (activation, weights' dtype and shape) is
        checked at each call; ``_infer`` otherwise."""
        act = self.activation
        relu = act is activations.relu
        if (type(self).call is not _Conv.call or self.data_format != "channels_last"
                or self.groups != 1 or not (relu or act is activations.linear)):
            return self._infer
        infer, kernel, bias = self._infer, self.kernel, self.bias
        dt = np.dtype(self.dtype)
        seen = {}

        def step(x):
            k = kernel.data
            if (type(x) is not np.ndarray or x.dtype != dt or k.dtype != dt
                    or self.activation is not act):
                return infer(x)
            key = (x.shape, k.shape)
            norm = seen.get(key)
            if norm is None:
                y = infer(x)                   # the layer's own checks, for this shape once
                if len(seen) >= 64:
                    seen.clear()
                seen[key] = _conv_args(x.shape, k.shape, self.strides, self.padding,
                                       self.dilation_rate, 1)
                return y
            fn = _new(_ConvNode)
            fn.strides, fn.dilation, fn.pads, fn.groups = norm
            fn.relu = relu
            if bias is None:
                fn.needs = (False, False)
                return fn.forward(x, k)
            fn.needs = (False, False, False)
            return fn.forward(x, k, bias.data)
        return step

    def compute_output_shape(self, input_shape):
        input_shape = _last_shape(input_shape, self.data_format)
        sp = _spatial_out(self, input_shape, self.rank, self.kernel_size, self.padding, self.strides,
                          self.dilation_rate)
        return _fmt_shape((input_shape[0],) + tuple(sp) + (self.filters,), self.data_format)

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


class Conv3D(_Conv):
    """3-D convolution over (batch, depth, height, width, channels); kernel
    (kd, kh, kw, in/groups, filters)."""

    rank = 3


Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D


class _DepthwiseConv(_Formatted):
    """Per-channel convolution: kernel (k…, channels, depth_multiplier), output channel
    c·multiplier + m from input channel c."""

    rank = 2

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        n = self.rank
        self.data_format = standardize_data_format(data_format, who)
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size", who)
        self.strides = _ntuple(strides, n, "strides", who)
        self.dilation_rate = _ntuple(dilation_rate, n, "dilation_rate", who)
        padding = str(padding).lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same', received {padding!r}")
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, (int, np.integer)) \
                or depth_multiplier <= 0:
            raise ValueError(f"{who}: depth_multiplier must be a positive integer, received "
                             f"{depth_multiplier!r}")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{who}: strides > 1 cannot be combined with dilation_rate > 1")
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
        c = self._channels(input_shape, self.rank + 2)
        self.kernel = self.add_weight(self.kernel_size + (c, self.depth_multiplier),
                                      self.depthwise_initializer,
                                      regularizer=self.depthwise_regularizer,
                                      constraint=self.depthwise_constraint, name="kernel")
        self.bias = self.add_weight((c * self.depth_multiplier,), self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(tuple(inputs.shape))   # rank and size errors name the layer
        y = ops.depthwise_conv(self._in(inputs), self.kernel, self.bias, self.strides, self.padding,
                               self.dilation_rate)
        return self._out(self.activation(y))

    def compute_output_shape(self, input_shape):
        input_shape = _last_shape(input_shape, self.data_format)
        sp = _spatial_out(self, input_shape, self.rank, self.kernel_size, self.padding,
                          self.strides, self.dilation_rate)
        c = input_shape[-1]
        return _fmt_shape((input_shape[0],) + tuple(sp)
                          + (None if c is None else c * self.depth_multiplier,), self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
                    "depth_multiplier": self.depth_multiplier, "data_format": self.data_format,
                    "dilation_rate": self.dilation_rate,
                    "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                    "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "depthwise_regularizer": _ser(self.depthwise_regularizer, regularizers),
                    "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                    "depthwise_constraint": _ser(self.depthwise_constraint, constraints),
                    "bias_constraint": _ser(self.bias_constraint, constraints)})
        return cfg


class DepthwiseConv1D(_DepthwiseConv):
    """Per-channel 1-D convolution: kernel (k, channels, depth_multiplier)."""

    rank = 1


class DepthwiseConv2D(_DepthwiseConv):
    """Per-channel 2-D convolution: kernel (kh, kw, channels, depth_multiplier)."""

    rank = 2


class _SeparableConv(_Formatted):
    """Depthwise (k…, C, depth_multiplier) then pointwise (1…, C·multiplier, filters) convolution
    (ops.separable_conv), then the bias."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        n = self.rank
        self.data_format = standardize_data_format(data_format, who)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(f"{who}: filters must be a positive integer, received {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size", who)
        self.strides = _ntuple(strides, n, "strides", who)
        self.dilation_rate = _ntuple(dilation_rate, n, "dilation_rate", who)
        padding = str(padding).lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same', received {padding!r}")
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, (int, np.integer)) \
                or depth_multiplier <= 0:
            raise ValueError(f"{who}: depth_multiplier must be a positive integer, received "
                             f"{depth_multiplier!r}")
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
        c = self._channels(input_shape, self.rank + 2)
        self.depthwise_kernel = self.add_weight(self.kernel_size + (c, self.depth_multiplier),
                                                self.depthwise_initializer,
                                                regularizer=self.depthwise_regularizer,
                                                constraint=self.depthwise_constraint,
                                                name="depthwise_kernel")
        self.pointwise_kernel = self.add_weight((1,) * self.rank + (c * self.depth_multiplier,
                                                                    self.filters),
                                                self.pointwise_initializer,
                                                regularizer=self.pointwise_regularizer,
                                                constraint=self.pointwise_constraint,
                                                name="pointwise_kernel")
        self.bias = self.add_weight((self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(tuple(inputs.shape))   # rank and size errors name the layer
        y = ops.depthwise_conv(self._in(inputs), self.depthwise_kernel, None, self.strides,
                               self.padding, self.dilation_rate)
        y = ops.conv(y, self.pointwise_kernel, self.bias)
        return self._out(self.activation(y))

    def compute_output_shape(self, input_shape):
        input_shape = _last_shape(input_shape, self.data_format)
        sp = _spatial_out(self, input_shape, self.rank, self.kernel_size, self.padding,
                          self.strides, self.dilation_rate)
        return _fmt_shape((input_shape[0],) + tuple(sp) + (self.filters,), self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                    "padding": self.padding, "data_format": self.data_format,
                    "depth_multiplier": self.depth_multiplier,
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


class SeparableConv1D(_SeparableConv):
    """Depthwise (k, C, multiplier) then pointwise (1, C·multiplier, filters) 1-D convolution."""

    rank = 1


class SeparableConv2D(_SeparableConv):
    """Depthwise (kh, kw, C, multiplier) then pointwise (1, 1, C·multiplier, filters) convolution."""

    rank = 2


SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D


class _ConvTranspose(_Formatted):
    """Transposed convolution (upsampling); kernel (k…, filters, in_channels) as Keras."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        who = f"{type(self).__name__} {self.name!r}"
        n = self.rank
        self.data_format = standardize_data_format(data_format, who)
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
        if output_padding is not None:
            output_padding = _ntuple(output_padding, n, "output_padding", who, allow_zero=True)
            if any(o >= s for o, s in zip(output_padding, self.strides)):
                raise ValueError(f"{who}: output_padding must be strictly less than strides, "
                                 f"received output_padding={output_padding}, strides={self.strides}")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{who}: strides > 1 cannot be combined with dilation_rate > 1")
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
        c = self._channels(input_shape, self.rank + 2)
        self.kernel = self.add_weight(self.kernel_size + (self.filters, c), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.bias = self.add_weight((self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(tuple(inputs.shape))   # rank and size errors name the layer
        y = ops.conv_transpose(self._in(inputs), self.kernel, self.bias, self.strides, self.padding,
                               self.output_padding, self.dilation_rate)
        return self._out(self.activation(y))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: expected ndim="
                f"{self.rank + 2}, found ndim={len(input_shape)}. Full shape received: "
                f"{tuple(input_shape)}")
        input_shape = _last_shape(input_shape, self.data_format)
        op = self.output_padding or (None,) * self.rank
        sp = [None if n is None else _deconv_length(n, k, self.padding, o, s, d) for n, k, o, s, d in
              zip(input_shape[1:-1], self.kernel_size, op, self.strides, self.dilation_rate)]
        if any(o is not None and o <= 0 for o in sp):
            raise ValueError(f"{type(self).__name__} {self.name!r}: input of shape "
                             f"{tuple(input_shape)} gives an empty output {tuple(sp)}")
        return _fmt_shape((input_shape[0],) + tuple(sp) + (self.filters,), self.data_format)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                    "padding": self.padding, "output_padding": self.output_padding,
                    "data_format": self.data_format, "dilation_rate": self.dilation_rate,
                    "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                    "kernel_initializer": initializers.serialize(self.kernel_initializer),
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "kernel_regularizer": _ser(self.kernel_regularizer, regularizers),
                    "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                    "kernel_constraint": _ser(self.kernel_constraint, constraints),
                    "bias_constraint": _ser(self.bias_constraint, constraints)})
        return cfg


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution; kernel (k, filters, in_channels)."""

    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution (upsampling); kernel (kh, kw, filters, in_channels) as Keras."""

    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-D convolution; kernel (kd, kh, kw, filters, in_channels)."""

    rank = 3


Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
