"""Normalization layers (Keras arguments): BatchNormalization (moving statistics used at
inference), LayerNormalization, RMSNormalization, UnitNormalization, GroupNormalization, and the
SpectralNormalization wrapper."""
import warnings

import numpy as np

from .. import backend, constraints, distribution, initializers, ops, regularizers
from ..autograd.function import no_grad
from .base import Layer, _np_dtype
from .wrappers import Wrapper

__all__ = ["BatchNormalization", "LayerNormalization", "RMSNormalization", "UnitNormalization",
           "GroupNormalization", "SpectralNormalization"]


def _ser(x, mod):
    return None if x is None else mod.serialize(x)


class BatchNormalization(Layer):
    """Normalize each feature with the batch's mean and variance while training, and with
    moving averages of them at inference:  y = γ·(x − μ)/√(σ² + ε) + β.

    Args:
        axis: the feature axis (default −1, channels-last).
        momentum: moving average factor: m ← m·momentum + μ_batch·(1 − momentum).
        epsilon: added to the variance.
        center / scale: learn β / γ.
    Weights (Keras order): gamma, beta (trainable), moving_mean, moving_variance
    (non-trainable).  A layer with ``trainable=False`` runs in inference mode, as in Keras.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNormalization {self.name!r}: momentum must lie in [0, 1], received {momentum}")
        if epsilon <= 0:
            raise ValueError(f"BatchNormalization {self.name!r}: epsilon must be positive, received {epsilon}")
        self.axis = int(axis)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        # one process: the batch is the global batch, so there is nothing to synchronize
        self.synchronized = bool(synchronized)

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise ValueError(f"BatchNormalization {self.name!r}: axis {self.axis} is out of range for "
                             f"input shape {input_shape}")
        ax = self.axis % rank
        n = input_shape[ax]
        if n is None:
            raise ValueError(f"BatchNormalization {self.name!r}: axis {self.axis} of the input must "
                             f"have a known size, received shape {input_shape}")
        self.gamma = self.add_weight((n,), self.gamma_initializer, regularizer=self.gamma_regularizer,
                                     constraint=self.gamma_constraint,
                                     name="gamma") if self.scale else None
        self.beta = self.add_weight((n,), self.beta_initializer, regularizer=self.beta_regularizer,
                                    constraint=self.beta_constraint,
                                    name="beta") if self.center else None
        self.moving_mean = self.add_weight((n,), self.moving_mean_initializer, trainable=False,
                                           name="moving_mean")
        self.moving_variance = self.add_weight((n,), self.moving_variance_initializer,
                                               trainable=False, name="moving_variance")
        self._input_ndim = rank
        self._input_axes = {ax: n}
        self._n = n
        self.built = True

    def call(self, inputs, training=None):
        gamma = self.gamma if self.gamma is not None else np.ones(self._n, inputs.dtype)
        beta = self.beta if self.beta is not None else np.zeros(self._n, inputs.dtype)
        if training and self.trainable:
            if self.synchronized and distribution.active() is not None:
                raise NotImplementedError(
                    f"BatchNormalization {self.name!r}: synchronized=True across the processes of "
                    f"a DataParallel run is not implemented in axone; with synchronized=False "
                    f"each rank normalizes its part of the batch and the moving statistics are "
                    f"averaged over the ranks at each epoch end")
            y, mean, var = ops.batch_normalization(inputs, gamma, beta, axis=self.axis,
                                                   epsilon=self.epsilon)
            m = self.momentum
            with no_grad():
                self.moving_mean.assign(self.moving_mean.data * m + mean * (1 - m))
                self.moving_variance.assign(self.moving_variance.data * m + var * (1 - m))
            return y
        y, _, _ = ops.batch_normalization(inputs, gamma, beta, axis=self.axis, epsilon=self.epsilon,
                                          mean=self.moving_mean.data, variance=self.moving_variance.data)
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def _inference_affine(self, x):
        """(s, shift) with which this layer at inference maps the host array ``x`` to
        x·s + shift (what its call computes, ops.normalization.inference_affine), for a
        prediction's fused steps (models/_inference.py); None where the call does more or other
        (features not on the last axis, an input the layer casts, statistics on a device)."""
        if (not self.built or x.ndim < 1 or self.axis % x.ndim != x.ndim - 1
                or x.shape[-1] != self._n
                or (self._autocast and x.dtype != _np_dtype(self.dtype))):
            return None
        mean, var = self.moving_mean.data, self.moving_variance.data
        gamma = self.gamma.data if self.gamma is not None else np.ones(self._n, x.dtype)
        beta = self.beta.data if self.beta is not None else np.zeros(self._n, x.dtype)
        if not all(type(a) is np.ndarray for a in (mean, var, gamma, beta)):
            return None
        _, scale, shift = ops.normalization.inference_affine(gamma, beta, mean, var,
                                                             float(self.epsilon), x.dtype)
        return scale, shift

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                    "center": self.center, "scale": self.scale,
                    "beta_initializer": initializers.serialize(self.beta_initializer),
                    "gamma_initializer": initializers.serialize(self.gamma_initializer),
                    "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                    "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
                    "beta_regularizer": _ser(self.beta_regularizer, regularizers),
                    "gamma_regularizer": _ser(self.gamma_regularizer, regularizers),
                    "beta_constraint": _ser(self.beta_constraint, constraints),
                    "gamma_constraint": _ser(self.gamma_constraint, constraints),
                    "synchronized": self.synchronized})
        return cfg


def _axis_arg(layer, axis):
    """Keras's axis argument: an int, or a list/tuple of ints (kept as a list)."""
    if isinstance(axis, (list, tuple)):
        if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            raise TypeError(f"{type(layer).__name__} {layer.name!r}: axis must be an int or a "
                            f"list/tuple of ints, received {axis!r}")
        return [int(a) for a in axis]
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return int(axis)
    raise TypeError(f"{type(layer).__name__} {layer.name!r}: axis must be an int or a list/tuple "
                    f"of ints, received {axis!r}")


def _check_axes(layer, input_shape):
    axes = layer.axis if isinstance(layer.axis, list) else [layer.axis]
    rank = len(input_shape)
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"{type(layer).__name__} {layer.name!r}: axis {a} is out of bounds "
                             f"for input shape {tuple(input_shape)} (axis={layer.axis})")
    return axes


def _axes_shape(layer, input_shape):
    """Sorted axes and the weight shape (the input's sizes on them), as Keras's build."""
    axes = sorted(_check_axes(layer, input_shape))
    shape = tuple(input_shape[a] for a in axes)
    if any(d is None for d in shape):
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: the normalized axes {axes} of "
                         f"the input must have known sizes, received shape {tuple(input_shape)}")
    return axes, shape


class LayerNormalization(Layer):
    """Normalize each sample over ``axis``: y = γ·(x − μ)/√(σ² + ε) + β (Ba et al., 2016).

    Args (Keras's): axis (int or list of ints, default −1), epsilon (1e-3), center (learn β),
    scale (learn γ), beta/gamma initializers, regularizers and constraints; the deprecated
    ``rms_scaling=True`` scales x by 1/√(σ² + ε) with γ only, as Keras does.
    Weights: gamma, beta, each shaped like the normalized axes.  Masks pass through.
    """

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, **kwargs):
        rms_scaling = kwargs.pop("rms_scaling", False)
        super().__init__(**kwargs)
        if rms_scaling:
            warnings.warn("LayerNormalization: rms_scaling=True is deprecated (it scales the input "
                          "by the variance, not the root mean square); use RMSNormalization")
        self.axis = _axis_arg(self, axis)
        self.epsilon = float(epsilon)
        self.center, self.scale, self.rms_scaling = bool(center), bool(scale), bool(rms_scaling)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)

    def build(self, input_shape):
        axes, shape = _axes_shape(self, input_shape)
        self.axis = axes
        self.gamma = self.add_weight(shape, self.gamma_initializer, regularizer=self.gamma_regularizer,
                                     constraint=self.gamma_constraint, name="gamma") \
            if self.scale or self.rms_scaling else None
        self.beta = self.add_weight(shape, self.beta_initializer, regularizer=self.beta_regularizer,
                                    constraint=self.beta_constraint, name="beta") \
            if self.center and not self.rms_scaling else None
        self.built = True

    def call(self, inputs):
        if self.rms_scaling:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ops.layer_normalization(inputs, self.gamma, None, self.axis, self.epsilon,
                                               rms_scaling=True)
        return ops.layer_normalization(inputs, self.gamma, self.beta, self.axis, self.epsilon)

    def compute_output_shape(self, input_shape):
        _check_axes(self, input_shape)
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                    "scale": self.scale, "rms_scaling": self.rms_scaling,
                    "beta_initializer": initializers.serialize(self.beta_initializer),
                    "gamma_initializer": initializers.serialize(self.gamma_initializer),
                    "beta_regularizer": _ser(self.beta_regularizer, regularizers),
                    "gamma_regularizer": _ser(self.gamma_regularizer, regularizers),
                    "beta_constraint": _ser(self.beta_constraint, constraints),
                    "gamma_constraint": _ser(self.gamma_constraint, constraints)})
        return cfg


class RMSNormalization(Layer):
    """y = x·scale/√(mean(x²) + ε) over ``axis`` (Zhang & Sennrich, 2019).

    Args: axis (int or list of ints, default −1), epsilon (1e-6).  Weight: scale (ones),
    shaped like the normalized axes.
    """

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis_arg(self, axis)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        axes, shape = _axes_shape(self, input_shape)
        self.axis = axes
        self.scale = self.add_weight(shape, "ones", name="scale")
        self.built = True

    def call(self, x):
        return ops.rms_normalization(x, scale=self.scale, axis=self.axis, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        _check_axes(self, input_shape)
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"axis": self.axis, "epsilon": self.epsilon})
        return cfg


class UnitNormalization(Layer):
    """Scale each sample to unit L2 norm over ``axis``: y = x·min(1/‖x‖, 10¹²)."""

    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis_arg(self, axis)
        self.built = True

    def call(self, inputs):
        _check_axes(self, inputs.shape if inputs.ndim else (1,))
        x = inputs if inputs.ndim else ops.reshape(inputs, (1,))
        axes = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        sq = ops.sum(ops.square(x), axis=axes, keepdims=True)
        return x * ops.minimum(1.0 / ops.sqrt(sq), 1e12)

    def compute_output_shape(self, input_shape):
        _check_axes(self, input_shape)
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


class GroupNormalization(Layer):
    """Normalize each sample over groups of channels: the ``axis`` channels split in ``groups``
    groups, each normalized with its own mean and variance (over the group's channels and every
    other non-batch axis), then y = γ·x̂ + β per channel.  ``groups=-1``: one channel a group
    (instance normalization).  Weights: gamma, beta (channels,).  Masks pass through.
    """

    supports_masking = True

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        if isinstance(groups, bool) or not isinstance(groups, int) or (groups <= 0 and groups != -1):
            raise ValueError(f"GroupNormalization: groups must be a positive integer (or -1 for "
                             f"instance normalization), received groups={groups!r}")
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"GroupNormalization {self.name!r}: axis must be an int, received {axis!r}")
        self.groups, self.axis, self.epsilon = groups, int(axis), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)

    def build(self, input_shape):
        _check_axes(self, input_shape)
        if self.axis % len(input_shape) == 0:
            raise ValueError(f"GroupNormalization {self.name!r}: axis must not be the batch axis, "
                             f"received axis={self.axis}")
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(f"GroupNormalization {self.name!r}: axis {self.axis} of the input must "
                             f"have a known size, received shape {tuple(input_shape)}")
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(f"GroupNormalization {self.name!r}: the number of groups ({self.groups}) "
                             f"cannot be more than the number of channels ({dim})")
        if dim % self.groups:
            raise ValueError(f"GroupNormalization {self.name!r}: the number of channels ({dim}) must "
                             f"be a multiple of the number of groups ({self.groups})")
        self._input_ndim = len(input_shape)
        self._input_axes = {self.axis % len(input_shape): dim}
        self.gamma = self.add_weight((dim,), self.gamma_initializer, regularizer=self.gamma_regularizer,
                                     constraint=self.gamma_constraint, name="gamma") if self.scale else None
        self.beta = self.add_weight((dim,), self.beta_initializer, regularizer=self.beta_regularizer,
                                    constraint=self.beta_constraint, name="beta") if self.center else None
        self.built = True

    def call(self, inputs):
        shape = tuple(inputs.shape)
        ax = self.axis % len(shape)
        dim = shape[ax]
        gshape = shape[:ax] + (self.groups, dim // self.groups) + shape[ax + 1:]
        x = ops.reshape(inputs, gshape)
        # normalize over every axis but the batch and the group axis
        red = tuple(i for i in range(1, len(gshape)) if i != ax)
        bshape = [1] * len(gshape)
        bshape[ax], bshape[ax + 1] = self.groups, dim // self.groups
        g = None if self.gamma is None else ops.reshape(self.gamma, tuple(bshape))
        b = None if self.beta is None else ops.reshape(self.beta, tuple(bshape))
        y = ops.layer_normalization(x, g, b, axis=red, epsilon=self.epsilon)
        return ops.reshape(y, shape)

    def compute_output_shape(self, input_shape):
        _check_axes(self, input_shape)
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"groups": self.groups, "axis": self.axis, "epsilon": self.epsilon,
                    "center": self.center, "scale": self.scale,
                    "beta_initializer": initializers.serialize(self.beta_initializer),
                    "gamma_initializer": initializers.serialize(self.gamma_initializer),
                    "beta_regularizer": _ser(self.beta_regularizer, regularizers),
                    "gamma_regularizer": _ser(self.gamma_regularizer, regularizers),
                    "beta_constraint": _ser(self.beta_constraint, constraints),
                    "gamma_constraint": _ser(self.gamma_constraint, constraints)})
        return cfg


def _l2_normalize(x):
    """x·min(1/‖x‖, 1/ε) over all of x (Keras's normalize with axis=None, ε = backend.epsilon())."""
    n = np.sqrt(np.sum(x * x))
    inv = np.inf if n == 0 else 1.0 / n
    return x * min(inv, 1.0 / backend.epsilon())


class SpectralNormalization(Wrapper):
    """Wraps a layer with a ``kernel`` (or ``embeddings``) and, in training calls, divides it by
    its largest singular value σ, estimated by ``power_iterations`` steps of power iteration
    (Miyato et al., 2018), as Keras:  W₂ = W reshaped (−1, out);  v = normalize(u·W₂ᵀ),
    u = normalize(v·W₂);  σ = v·W₂·uᵀ;  the kernel is assigned W/σ and u kept (non-trainable
    weight vector_u, (1, out), drawn from TruncatedNormal(stddev=0.02)), then the layer runs.
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, (int, np.integer)) \
                or power_iterations <= 0:
            raise ValueError(f"SpectralNormalization {self.name!r}: power_iterations must be a "
                             f"positive integer, received {power_iterations!r}")
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        self.layer._maybe_build(input_shape)
        if getattr(self.layer, "kernel", None) is not None:
            self.kernel = self.layer.kernel
        elif getattr(self.layer, "embeddings", None) is not None:
            self.kernel = self.layer.embeddings
        else:
            raise ValueError(f"SpectralNormalization {self.name!r}: {type(self.layer).__name__} "
                             f"object has no attribute 'kernel' nor 'embeddings'")
        self.kernel_shape = tuple(self.kernel.shape)
        self.vector_u = self.add_weight((1, self.kernel_shape[-1]),
                                        initializers.TruncatedNormal(stddev=0.02), trainable=False,
                                        dtype=str(self.kernel.data.dtype), name="vector_u")
        self._input_ndim = 1
        self._input_axes = {-1: input_shape[-1]} if input_shape[-1] is not None else {}
        self.built = True

    @property
    def weights(self):      # Keras's order: the kernel (tracked by the wrapper), vector_u, the rest
        if not self.built:
            return self.layer.weights
        return [self.kernel, self.vector_u] + [w for w in self.layer.weights if w is not self.kernel]

    def normalized_weights(self):
        """(u, W/σ) as arrays, from the current kernel and vector_u."""
        w = self.kernel.data.reshape(-1, self.kernel_shape[-1])
        u = self.vector_u.data
        for _ in range(self.power_iterations):
            v = _l2_normalize(u @ w.T)
            u = _l2_normalize(v @ w)
        sigma = (v @ w) @ u.T
        return u.astype(self.vector_u.data.dtype), \
            (self.kernel.data / sigma).reshape(self.kernel_shape).astype(self.kernel.data.dtype)

    def call(self, inputs, training=False):
        if training and np.any(self.kernel.data != 0):
            with no_grad():
                u, k = self.normalized_weights()
                self.vector_u.assign(u)
                self.kernel.assign(k)
        y = self.layer(inputs)
        # Keras casts to the input's dtype; integer indices (a wrapped Embedding) keep float outputs
        if inputs.dtype.kind == "f" and y.dtype != inputs.dtype:
            y = ops.cast(y, inputs.dtype)
        return y

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        cfg = super().get_config()          # Wrapper's: the inner layer under "layer"
        cfg["power_iterations"] = self.power_iterations
        return cfg
