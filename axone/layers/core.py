"""Core layers: InputLayer / Input, Dense, Activation, Dropout, Flatten, Reshape, Lambda;
InputSpec."""
import inspect

import numpy as np

from .. import activations, backend, constraints, initializers, ops, regularizers
from .. import object_registration as _registry
from ..autograd.function import _new, no_grad
from ..autograd.tensor import Tensor
from ..config import standardize_data_format
from ..ops import _compiled, _parallel, math as _M, nn as _nn
from .base import KerasTensor, Layer, _map, _map_shapes, _np_dtype, unique_name
from .input_spec import InputSpec

_NO_NEEDS = (False, False, False)

__all__ = ["InputLayer", "Input", "Dense", "Activation", "Dropout", "Flatten", "Reshape",
           "Lambda", "InputSpec"]


def _as_shape(shape, who):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: shape must be a tuple of ints (without the batch dimension), "
                        f"received {shape!r}") from None
    if any(d is not None and d <= 0 for d in shape):
        raise ValueError(f"{who}: dimensions must be positive, received shape {shape}")
    return shape


class InputLayer(Layer):
    """Entry point of a model: holds the input shape (without the batch dimension).

    Args:
        shape: tuple of ints, e.g. ``(4,)``; ``input_shape=`` is accepted as the legacy name.
        batch_size: optional fixed batch size.
        dtype: input dtype (default ``floatx``).
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None,
                 input_tensor=None, name=None, input_shape=None, **kwargs):
        if shape is None and input_shape is not None:
            shape = input_shape
        if batch_shape is not None:
            batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
        if shape is None:
            raise ValueError("InputLayer: give the input shape, e.g. InputLayer(shape=(4,))")
        shape = _as_shape(shape, "InputLayer")
        super().__init__(name=name or unique_name("input_layer"), dtype=dtype, **kwargs)
        self._input_shape_arg = shape
        self._batch_size_arg = batch_size
        self.built = True
        self.output_tensor = KerasTensor((batch_size,) + shape, dtype=self.dtype, name=self.name,
                                         history=(self, None, 0))
        from .base import Node
        node = Node(self, [], self.output_tensor, {})
        self.output_tensor._history = (self, node, 0)
        self._inbound_nodes.append(node)

    @property
    def batch_shape(self):
        return (self._batch_size_arg,) + tuple(self._input_shape_arg)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {"batch_shape": self.batch_shape, "dtype": self.dtype, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, **kwargs):
    """A symbolic input of a functional model: ``x = Input(shape=(4,))``."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                       batch_shape=batch_shape, **kwargs)
    return layer.output_tensor


class Dense(Layer):
    """Densely connected layer: ``output = activation(inputs · kernel + bias)``.

    Args:
        units: positive int, the output dimension.
        activation: name or callable (default: linear).
        use_bias: whether to add a bias vector.
        kernel_initializer: default ``"glorot_uniform"``.
        bias_initializer: default ``"zeros"``.
        kernel_regularizer, bias_regularizer, activity_regularizer: penalties added to the loss.
        kernel_constraint, bias_constraint: projections applied after each optimizer update.
        lora_rank, lora_alpha: low-rank adaptation (Hu et al.), as Keras 3: the kernel K is
            frozen and two trainable factors A (input_dim, r), B (r, units) are added, so the
            layer computes with  K + (lora_alpha / r)·A·B  (A starts He-uniform, B at zero, so
            the layer starts unchanged; ``lora_alpha`` defaults to r).  ``enable_lora(r)`` does
            the same on a built layer.

    Input shape: (batch, …, input_dim).   Output shape: (batch, …, units).
    Weights: kernel (input_dim, units), bias (units,).
    """

    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 lora_rank=None, lora_alpha=None, quantization_config=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if quantization_config is not None:
            raise NotImplementedError(f"Dense {self.name!r}: quantization_config is not supported "
                                      f"by axone (received {quantization_config!r})")
        for n, v in (("lora_rank", lora_rank), ("lora_alpha", lora_alpha)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.integer,
                                                                             np.floating)) or v <= 0):
                raise ValueError(f"Dense {self.name!r}: {n} must be a positive number, received {v!r}")
        if lora_rank is not None and (not float(lora_rank).is_integer()):
            raise ValueError(f"Dense {self.name!r}: lora_rank must be a positive integer, "
                             f"received {lora_rank!r}")
        self.lora_rank = None if lora_rank is None else int(lora_rank)
        self.lora_alpha = lora_alpha if lora_alpha is not None else self.lora_rank
        self.lora_enabled = False
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Dense {self.name!r}: units must be a positive integer, received {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"Dense {self.name!r}: expected an input of rank ≥ 2 (batch, features), "
                             f"received shape {input_shape}")
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"Dense {self.name!r}: the last dimension of the input must be known, "
                             f"received shape {input_shape}")
        self._kernel = self.add_weight(shape=(in_dim, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint, name="bias") if self.use_bias else None
        self._input_ndim = 2
        self._input_axes = {-1: int(in_dim)}
        self.built = True
        if self.lora_rank:
            self.enable_lora(self.lora_rank, self.lora_alpha)

    @property
    def kernel(self):
        """The kernel the layer computes with: the weight, plus (α/r)·A·B when LoRA is enabled."""
        if not self.lora_enabled:
            return self._kernel
        return self._kernel + ops.matmul(self.lora_kernel_a, self.lora_kernel_b) * (
            self.lora_alpha / self.lora_rank)

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform", b_initializer="zeros"):
        """Freeze the kernel and train a rank-``rank`` update (α/r)·A·B instead (Keras 3)."""
        if self.kernel_constraint is not None:
            raise ValueError(f"Dense {self.name!r}: LoRA is incompatible with kernel constraints; "
                             f"remove the kernel_constraint argument to enable it")
        if not self.built:
            raise ValueError(f"Dense {self.name!r}: cannot enable LoRA on a layer that is not yet "
                             f"built")
        if self.lora_enabled:
            raise ValueError(f"Dense {self.name!r}: LoRA is already enabled; this can only be done "
                             f"once per layer")
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank <= 0:
            raise ValueError(f"Dense {self.name!r}: the LoRA rank must be a positive integer, "
                             f"received {rank!r}")
        # as Keras: float32 factors, regularized like the kernel
        self.lora_kernel_a = self.add_weight((self._kernel.shape[0], int(rank)), a_initializer,
                                             dtype="float32", regularizer=self.kernel_regularizer,
                                             name="lora_kernel_a")
        self.lora_kernel_b = self.add_weight((int(rank), self._kernel.shape[1]), b_initializer,
                                             dtype="float32", regularizer=self.kernel_regularizer,
                                             name="lora_kernel_b")
        self._kernel.trainable = False
        self._kernel.requires_grad = False
        self.lora_enabled = True
        self.lora_rank = int(rank)
        self.lora_alpha = lora_alpha if lora_alpha is not None else self.lora_rank

    def call(self, inputs):
        relu = self.activation is activations.relu  # one node: max(x·W + b, 0)
        kernel = self.kernel
        if type(inputs) is Tensor and inputs.ndim >= 1 and inputs.shape[-1] == kernel.shape[0]:
            # shapes already hold (the layer built its weights for them): the node directly
            if self.bias is None:
                y = _nn.Dense.apply(inputs, kernel, relu=relu)
            else:
                y = _nn.Dense.apply(inputs, kernel, self.bias, relu=relu)
        else:
            y = ops.dense(inputs, kernel, self.bias, relu=relu)
        if not relu:
            y = self.activation(y)
        return y

    def _infer(self, x):
        """The layer at inference on an array (a prediction's array plan): its node's forward,
        ``ops.nn.Dense.forward``, on the arrays themselves, then the activation; the general
        call when the layer is not the plain one (a subclass's own call, LoRA, another dtype)."""
        k = self._kernel.data
        if (type(x) is not np.ndarray or self.lora_enabled or type(self).call is not Dense.call
                or x.dtype != _np_dtype(self.dtype) or x.dtype != k.dtype or x.ndim < 1
                or x.shape[-1] != k.shape[0]):
            return Layer._infer(self, x)
        act = self.activation
        fn = _new(_nn.Dense)
        fn.relu = relu = act is activations.relu
        fn.needs = _NO_NEEDS
        b = self.bias
        y = fn.forward(x, k, None if b is None else b.data)
        if relu or act is activations.linear:
            return y
        if act is activations.softmax:        # ops.softmax's node on the last axis
            sm = _new(_M.Softmax)
            sm.axis = (y.ndim - 1,)
            return sm.forward(y)
        return act(Tensor(y)).data

    def _inference_step(self):
        """What a prediction's array plan runs for this layer (models/_inference.py).  For the
        plain layer with a bias and a ReLU, linear or softmax activation: its node's forward
        written out for a product too small to split or pin (the compiled small product for
        one or two rows, else np.matmul, the compiled bias and ReLU pass, then the softmax node: what ``ops.nn.Dense.forward`` does for it, so the
        same bits), with what may change after the plan was made (weights, activation, LoRA,
        input dtype and shape) checked at each call, and ``_infer`` otherwise."""
        kern = _nn._epilogue_kernels()
        act, kernel, bias = self.activation, self._kernel, self.bias
        dt = _np_dtype(self.dtype)
        relu, soft = act is activations.relu, act is activations.softmax
        if (kern is None or bias is None or type(self).call is not Dense.call or self.lora_enabled
                or dt not in _nn._FLOATS or not (relu or soft or act is activations.linear)):
            return self._infer
        infer, matmul, forward, par, softmax = self._infer, np.matmul, kern.dense_forward, \
            _parallel, _M.Softmax
        small = _nn._small_product
        small_k = getattr(_compiled.kernels("small_matmul"), "small_matmul", None)
        empty, is_f32 = np.empty, dt == _nn._F32
        softmax_k = getattr(_compiled.kernels("softmax_rows"), "softmax_rows", None)

        def step(x):
            w, b = kernel.data, bias.data
            if (type(x) is not np.ndarray or x.ndim != 2 or x.dtype != dt or w.dtype != dt
                    or b.dtype != dt or x.shape[1] != w.shape[0] or self.activation is not act
                    or self.lora_enabled or not b.flags.c_contiguous
                    or x.shape[0] * w.shape[0] * w.shape[1] >= par._PIN_MIN_WORK
                    or par._PIN_MIN_WORK > par._MIN_WORK):
                return infer(x)
            if (x.shape[0] <= _nn.SMALL_PRODUCT_ROWS and small_k is not None and is_f32
                    and x.flags.c_contiguous and w.flags.c_contiguous):
                y = empty((x.shape[0], w.shape[1]), dt)      # _nn._small_product, written out
                small_k(x, w, y)
            else:
                y = small(x, w)
                if y is None:
                    y = matmul(x, w)
            forward(y, b, relu)
            if soft:
                if softmax_k is not None and y.size:
                    # the softmax node's compiled rows (ops.math.Softmax.forward), written out
                    p = empty(y.shape, dt)
                    softmax_k(y, p, empty(y.shape, dt))
                    return p
                sm = _new(softmax)
                sm.axis = (1,)
                return sm.forward(y)
            return y
        return step

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({
            "units": self.units, "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _ser_reg(self.kernel_regularizer),
            "bias_regularizer": _ser_reg(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "quantization_config": None,
        })
        if self.lora_rank:
            cfg.update({"lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha})
        return cfg


def _ser_reg(r):
    return None if r is None else regularizers.serialize(r)


class Activation(Layer):
    """Applies an activation function: ``Activation("relu")``."""

    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def _inference_clip(self):
        """(lo, hi) where the activation is min(max(x, lo), hi) (relu, relu6), for a
        prediction's fused steps (models/_inference.py); None otherwise."""
        return activations.clip_bounds(self.activation)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = activations.serialize(self.activation)
        return cfg


class Dropout(Layer):
    """Inverted dropout: while training, zero a fraction ``rate`` of the inputs and scale the
    rest by 1/(1 − rate); at inference, pass inputs through unchanged.

    Args:
        rate: float in [0, 1), the fraction of inputs to drop.
        noise_shape: optional shape of the mask (``None`` entries follow the input).
        seed: optional int seed for this layer's masks.
    """

    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout {self.name!r}: rate must be a float in [0, 1), received {rate!r}")
        self.rate = float(rate)
        self.noise_shape = noise_shape
        self.seed = seed

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        return ops.dropout(inputs, self.rate, noise_shape=self.noise_shape, training=True)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed})
        return cfg


class Flatten(Layer):
    """Flattens every axis but the batch: (batch, d1, d2, …) → (batch, d1·d2·…).

    With ``data_format="channels_first"`` the channel axis (axis 1) is moved last before
    flattening, as Keras does, so the order of the features matches a channels-last model.
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, f"Flatten {self.name!r}")

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = ops.transpose(inputs, (0,) + tuple(range(2, inputs.ndim)) + (1,))
        return ops.reshape(inputs, (inputs.shape[0], -1))

    def _inference_step(self):
        """A prediction's array plan: the channels-last layer reshapes the array as its Reshape
        node does; ``_infer`` otherwise."""
        if type(self).call is not Flatten.call or self.data_format == "channels_first":
            return self._infer
        infer = self._infer

        def step(x):
            if type(x) is not np.ndarray or not x.ndim:
                return infer(x)
            return x.reshape(x.shape[0], -1)
        return step

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        n = None if any(d is None for d in rest) else int(np.prod(rest)) if rest else 1
        return (input_shape[0], n)

    def get_config(self):
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        return cfg


class Reshape(Layer):
    """Reshapes every sample to ``target_shape`` (one entry may be −1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(f"Reshape {self.name!r}: at most one dimension may be -1, received {target_shape}")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(d is None for d in rest):
            return (input_shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)
        n = int(np.prod(rest)) if rest else 1
        known = int(np.prod([d for d in self.target_shape if d != -1])) if self.target_shape else 1
        if -1 in self.target_shape:
            if known == 0 or n % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape input of shape {input_shape} "
                                 f"to {self.target_shape}")
            shape = tuple(n // known if d == -1 else d for d in self.target_shape)
        else:
            if known != n:
                raise ValueError(f"Reshape {self.name!r}: total size of the new shape "
                                 f"{self.target_shape} ({known}) must equal the input's ({n}), "
                                 f"input shape {input_shape}")
            shape = self.target_shape
        return (input_shape[0],) + shape

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def call(self, inputs):
        return ops.reshape(inputs, (inputs.shape[0],) + self.target_shape)

    def get_config(self):
        cfg = super().get_config()
        cfg["target_shape"] = self.target_shape
        return cfg


class Lambda(Layer):
    """Wraps a function of tensors as a layer: ``Lambda(lambda x: x ** 2)``.

    Args:
        function: ``f(inputs, **arguments)``; it may take ``mask`` and ``training`` too.
        output_shape: the output shape without the batch (a tuple), or a function of the input
            shape; when not given it is inferred by running ``function`` on zeros of the input
            shape (with two batch sizes, so a dimension following the batch stays ``None``).
        mask: a mask for the output, or ``f(inputs, mask)`` computing it.
        arguments: a dict of keyword arguments passed to ``function``.

    Saving: the function is stored by name — its registered name
    (``keras.saving.register_keras_serializable``) or the name of a plain named function, given
    in ``custom_objects`` when loading.  Python lambdas and closures cannot be saved: Keras stores
    their bytecode, and axone never executes code from a file (``get_config`` raises).
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda {self.name!r}: function must be callable, received "
                            f"{type(function).__name__} {function!r}")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"Lambda {self.name!r}: arguments must be a dict of keyword "
                            f"arguments, received {type(arguments).__name__} {arguments!r}")
        if output_shape is not None and not callable(output_shape):
            try:
                output_shape = tuple(None if d is None else int(d) for d in output_shape)
            except (TypeError, ValueError):
                raise TypeError(f"Lambda {self.name!r}: output_shape must be a tuple of ints, "
                                f"a function of the input shape or None, received "
                                f"{output_shape!r}") from None
        self.arguments = dict(arguments or {})
        self.function = function
        self.supports_masking = mask is not None
        self.mask = mask
        self._output_shape = output_shape
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):
            params = {}
        self._fn_expects_training_arg = "training" in params
        self._fn_expects_mask_arg = "mask" in params
        self.built = True

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._fn_expects_mask_arg:
            kwargs["mask"] = mask
        if self._fn_expects_training_arg:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return self._infer_output_shape(input_shape)
        if callable(self._output_shape):
            out = self._output_shape(input_shape)
            return _map_shapes(lambda s: tuple(s), out)
        first = input_shape
        while isinstance(first, list):
            first = first[0]
        batch = first[0] if isinstance(first, tuple) and first else None
        return (batch,) + tuple(self._output_shape)

    def _infer_output_shape(self, input_shape):
        """Run the function on zeros of the input shape, for batch sizes 2 and 3."""
        outs = []
        try:
            for b in (2, 3):
                x = _map_shapes(lambda s: Tensor(np.zeros(tuple(b if d is None else d for d in s),
                                                          dtype=self.dtype)), input_shape)
                with no_grad():
                    outs.append(self.call(x, training=False))
        except Exception as e:
            raise NotImplementedError(
                f"Lambda {self.name!r}: we could not automatically infer the shape of the "
                f"Lambda's output ({type(e).__name__}: {e}). Please specify the `output_shape` "
                f"argument for this Lambda layer.") from e

        def merge(a, c):
            if isinstance(a, (list, tuple)):
                return type(a)(merge(u, v) for u, v in zip(a, c))
            if isinstance(a, dict):
                return {k: merge(a[k], c[k]) for k in a}
            sa, sc = np.shape(a.data if isinstance(a, Tensor) else a), \
                np.shape(c.data if isinstance(c, Tensor) else c)
            return tuple(None if (u, v) == (2, 3) else u for u, v in zip(sa, sc))
        self._inferred_dtype = _map(lambda t: t.dtype if isinstance(t, Tensor) else None, outs[0])
        return merge(outs[0], outs[1])

    def _output_dtype(self):
        d = getattr(self, "_inferred_dtype", None)
        return str(d) if d is not None and not isinstance(d, (list, tuple, dict)) else self.dtype

    def get_config(self):
        who = f"Lambda {self.name!r}:"
        cfg = super().get_config()
        cfg["function"] = _function_entry(self.function, who)
        if self._output_shape is not None:
            cfg["output_shape"] = (_function_entry(self._output_shape, f"{who} output_shape")
                                   if callable(self._output_shape) else list(self._output_shape))
        if self.mask is not None:
            cfg["mask"] = (_function_entry(self.mask, f"{who} mask") if callable(self.mask)
                           else self.mask)
        cfg["arguments"] = dict(self.arguments)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None, safe_mode=None):
        """Rebuild from :meth:`get_config`; functions are found by name (``custom_objects``,
        an open ``custom_object_scope``, the registry), never loaded from code.  ``safe_mode``
        is accepted for Keras compatibility: a Keras ``__lambda__`` entry (bytecode) is refused
        whatever its value."""
        config = dict(config)
        for key in ("function", "output_shape", "mask"):
            if key in config and (isinstance(config[key], dict) or
                                  key == "function" and isinstance(config[key], str)):
                config[key] = _function_from_entry(config[key], custom_objects,
                                                   f"Lambda {config.get('name')!r} {key}")
        if isinstance(config.get("output_shape"), list):
            config["output_shape"] = tuple(config["output_shape"])
        return cls(**config)


def _function_entry(fn, who):
    """Keras's entry for a function in a config, by its registered (or plain) name."""
    return {"module": "builtins", "class_name": "function",
            "config": _registry.function_name_for_saving(fn, who), "registered_name": "function"}


def _function_from_entry(entry, custom_objects, who):
    if callable(entry):
        return entry
    if isinstance(entry, dict) and entry.get("class_name") == "__lambda__":
        raise ValueError(
            f"{who}: the saved function is Python bytecode (a Keras lambda entry). axone never "
            f"executes code from a file, also with safe_mode=False: define the function in your "
            f"program, register it with keras.saving.register_keras_serializable() and save the "
            f"model again (or rebuild the layer in code)")
    name = entry.get("config") if isinstance(entry, dict) else entry
    if isinstance(entry, dict) and entry.get("class_name") != "function":
        name = entry.get("registered_name") or entry.get("class_name")
    if not isinstance(name, str):
        raise ValueError(f"{who}: expected a function entry naming the function, received "
                         f"{entry!r}")
    fn = _registry.lookup([name], custom_objects)
    if fn is None:
        raise ValueError(f"{who}: unknown function {name!r}: register it with "
                         f"@keras.saving.register_keras_serializable() before loading, or pass "
                         f"it in custom_objects={{{name!r}: {name.rpartition('>')[2]}}}")
    return fn


del backend
