"""BatchNormalization (Keras arguments; moving statistics used at inference)."""
import numpy as np

from .. import constraints, initializers, ops, regularizers
from ..autograd.function import no_grad
from .base import Layer

__all__ = ["BatchNormalization"]


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
                    "gamma_constraint": _ser(self.gamma_constraint, constraints)})
        return cfg
