"""Losses by Keras name: per-sample functions and Loss objects with reduction.

A loss function maps (y_true, y_pred) to one value per sample; a :class:`Loss`
object reduces those with ``"sum_over_batch_size"`` (the mean, Keras's
default), ``"sum"`` or ``"none"``.  When ``y_pred`` comes straight out of a
softmax (or sigmoid) node, the cross-entropies read the logits under it and
use the fused stable gradient ŷ − y.
"""
import numpy as np

from . import ops
from .autograd.function import Function
from .autograd.tensor import Tensor
from .ops import math as _M
from .ops import nn as _nn

__all__ = ["Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError",
           "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "mean_squared_error", "mean_absolute_error", "binary_crossentropy",
           "categorical_crossentropy", "sparse_categorical_crossentropy", "mse", "mae",
           "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "hinge",
           "squared_hinge", "categorical_hinge", "log_cosh", "kl_divergence", "poisson",
           "cosine_similarity", "mape", "msle", "kld", "logcosh", "MeanAbsolutePercentageError",
           "MeanSquaredLogarithmicError", "Hinge", "SquaredHinge", "CategoricalHinge", "LogCosh",
           "KLDivergence", "Poisson", "CosineSimilarity", "get", "serialize"]


def _logits_of(y_pred, fn_type):
    """The logits under ``y_pred`` when it is the direct output of a softmax/sigmoid node."""
    ctx = y_pred._ctx
    if type(ctx) is fn_type:
        if fn_type is _M.Softmax and tuple(ctx.axis) != (y_pred.ndim - 1,):
            return None
        return ctx.inputs[0]
    return None


def _check_shapes(name, y_true, y_pred):
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{name}: y_true and y_pred must have the same shape, received y_true {y_true.shape} "
            f"and y_pred {y_pred.shape}")


def mean_squared_error(y_true, y_pred):
    """mean((y_true − y_pred)², axis=−1)."""
    y_true, y_pred = _prep(y_true, y_pred, "mean_squared_error")
    return ops.mean(ops.square(y_pred - y_true), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """mean(|y_true − y_pred|, axis=−1)."""
    y_true, y_pred = _prep(y_true, y_pred, "mean_absolute_error")
    return ops.mean(ops.abs(y_pred - y_true), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """mean over ``axis`` of −[y log p + (1 − y) log(1 − p)]; multi-label outputs allowed."""
    y_true, y_pred = _prep(y_true, y_pred, "binary_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if not from_logits:
        logits = _logits_of(y_pred, _M.Sigmoid)
        if logits is not None:
            y_pred, from_logits = logits, True
    return ops.mean(_nn.binary_crossentropy(y_true, y_pred, from_logits=from_logits), axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """−Σ y_true · log(y_pred) per sample, y_true one-hot (or soft) of y_pred's shape."""
    y_true, y_pred = _prep(y_true, y_pred, "categorical_crossentropy")
    if label_smoothing:
        k = y_pred.shape[-1]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / k
    if not from_logits:
        ctx = y_pred._ctx
        if type(ctx) is _M.Softmax and isinstance(axis, (int, np.integer)) and y_pred.ndim and \
                -y_pred.ndim <= axis < y_pred.ndim and \
                tuple(ctx.axis) == (y_pred.ndim - 1,) == (int(axis) % y_pred.ndim,):
            # straight out of a softmax over this axis: the fused node on the logits beneath,
            # reusing that softmax's work (_prep has matched the shapes and dtypes)
            return _nn.SoftmaxCrossEntropy.apply(y_true, ctx.inputs[0], axis=y_pred.ndim - 1,
                                                 softmax=ctx)
        logits = _logits_of(y_pred, _M.Softmax)
        if logits is not None:
            y_pred, from_logits = logits, True
    return _nn.categorical_crossentropy(y_true, y_pred, from_logits=from_logits, axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Cross-entropy of integer labels y_true ∈ [0, K) against K class scores y_pred."""
    y_pred = _M._t(y_pred, "sparse_categorical_crossentropy")
    if not from_logits:
        logits = _logits_of(y_pred, _M.Softmax)
        if logits is not None:
            y_pred, from_logits = logits, True
    return _nn.sparse_categorical_crossentropy(y_true, y_pred, from_logits=from_logits, axis=axis)


def mean_absolute_percentage_error(y_true, y_pred):
    """100 · mean(|y_true − y_pred| / max(|y_true|, ε), axis=−1)."""
    y_true, y_pred = _prep(y_true, y_pred, "mean_absolute_percentage_error")
    diff = ops.abs((y_true - y_pred) / ops.maximum(ops.abs(y_true), _eps()))
    return 100.0 * ops.mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    """mean((log(max(y_pred, ε) + 1) − log(max(y_true, ε) + 1))², axis=−1)."""
    y_true, y_pred = _prep(y_true, y_pred, "mean_squared_logarithmic_error")
    a = ops.log(ops.maximum(y_pred, _eps()) + 1.0)
    b = ops.log(ops.maximum(y_true, _eps()) + 1.0)
    return ops.mean(ops.square(a - b), axis=-1)


def _hinge_labels(y_true):
    d = y_true.data
    if d.size and np.all((d == 0) | (d == 1)):
        return y_true * 2.0 - 1.0
    return y_true


def hinge(y_true, y_pred):
    """mean(max(1 − y_true·y_pred, 0), axis=−1); labels in {0, 1} are mapped to {−1, 1}."""
    y_true, y_pred = _prep(y_true, y_pred, "hinge")
    return ops.mean(ops.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    """mean(max(1 − y_true·y_pred, 0)², axis=−1); labels in {0, 1} are mapped to {−1, 1}."""
    y_true, y_pred = _prep(y_true, y_pred, "squared_hinge")
    return ops.mean(ops.square(ops.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0)), axis=-1)


def categorical_hinge(y_true, y_pred):
    """max(max((1 − y_true)·y_pred) − Σ y_true·y_pred + 1, 0) per sample."""
    y_true, y_pred = _prep(y_true, y_pred, "categorical_hinge")
    pos = ops.sum(y_true * y_pred, axis=-1)
    neg = ops.max((1.0 - y_true) * y_pred, axis=-1)
    return ops.maximum(neg - pos + 1.0, 0.0)


def log_cosh(y_true, y_pred):
    """mean(log(cosh(y_pred − y_true)), axis=−1), computed as x + softplus(−2x) − log 2."""
    y_true, y_pred = _prep(y_true, y_pred, "log_cosh")
    x = y_pred - y_true
    return ops.mean(x + ops.softplus(-2.0 * x) - float(np.log(2.0)), axis=-1)


def kl_divergence(y_true, y_pred):
    """Σ y_true · log(y_true / y_pred) per sample, both clipped to [ε, 1]."""
    y_true, y_pred = _prep(y_true, y_pred, "kl_divergence")
    t = ops.clip(y_true, _eps(), 1.0)
    p = ops.clip(y_pred, _eps(), 1.0)
    return ops.sum(t * ops.log(t / p), axis=-1)


def poisson(y_true, y_pred):
    """mean(y_pred − y_true · log(y_pred + ε), axis=−1)."""
    y_true, y_pred = _prep(y_true, y_pred, "poisson")
    return ops.mean(y_pred - y_true * ops.log(y_pred + _eps()), axis=-1)


def _l2_normalize(x, axis):
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), 1e-12))


def cosine_similarity(y_true, y_pred, axis=-1):
    """−Σ normalize(y_true) · normalize(y_pred) along ``axis`` (−1 for identical directions)."""
    y_true, y_pred = _prep(y_true, y_pred, "cosine_similarity")
    return -ops.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), axis=axis)


def _eps():
    from . import backend
    return backend.epsilon()


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh


def _prep(y_true, y_pred, name):
    y_pred = _M._t(y_pred, name)
    if not isinstance(y_true, Tensor):
        y_true = Tensor(np.asarray(y_true))
    if y_true.dtype != y_pred.dtype:
        y_true = ops.cast(y_true, y_pred.dtype)
    if y_true.shape != y_pred.shape:
        # Keras accepts (batch,) targets for (batch, 1) outputs and the reverse
        if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1 and y_true.shape == y_pred.shape[:-1]:
            y_true = ops.expand_dims(y_true, -1)
        elif y_pred.ndim == y_true.ndim - 1 and y_true.shape[-1] == 1 and y_pred.shape == y_true.shape[:-1]:
            y_pred = ops.expand_dims(y_pred, -1)
        else:
            _check_shapes(name, y_true, y_pred)
    return y_true, y_pred


# -------------------------------------------------------------- Loss objects
class _SumOverBatchSize(Function):
    """Keras's default reduction as one node:  L = (Σᵢ lᵢ) / n,   dL/dlᵢ = dL/dL / n
    (the same operations as ``ops.sum(values) / n``, without the two nodes' overhead)."""

    def forward(self, values):
        self.shape = values.shape
        return np.add.reduce(values, axis=None) / values.dtype.type(self.n)

    def backward(self, g):
        out = np.empty(self.shape, dtype=g.dtype)
        out.fill(g / g.dtype.type(self.n))
        return (out,)



_REDUCTIONS = ("sum_over_batch_size", "sum", "none", None, "mean", "mean_with_sample_weight")


class Loss:
    """Base of loss objects: ``loss(y_true, y_pred, sample_weight=None)`` → reduced loss."""

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of "
                             f"{[r for r in _REDUCTIONS if r]}, received {reduction!r}")
        self.name = name
        self.reduction = reduction
        self.dtype = dtype

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        values = self.call(y_true, y_pred)
        if sample_weight is not None:
            sw = np.asarray(sample_weight.data if isinstance(sample_weight, Tensor) else sample_weight,
                            dtype=values.dtype)
            while sw.ndim > values.ndim and sw.shape[-1] == 1:
                sw = sw[..., 0]
            values = values * sw
        if self.reduction in ("none", None) or values.ndim == 0:
            return values
        if self.reduction in ("sum_over_batch_size", "mean") or (
                self.reduction == "mean_with_sample_weight" and sample_weight is None):
            if values.dtype.kind == "f":
                return _SumOverBatchSize.apply(values, n=max(values.size, 1))
        total = ops.sum(values)
        if self.reduction == "sum":
            return total
        if self.reduction == "mean_with_sample_weight" and sample_weight is not None:
            d = float(np.sum(sw))
            return total / d if d else total * 0.0
        return total / max(values.size, 1)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class LossFunctionWrapper(Loss):
    def __init__(self, fn, name=None, reduction="sum_over_batch_size", **fn_kwargs):
        super().__init__(name=name or fn.__name__, reduction=reduction)
        self.fn = fn
        self.fn_kwargs = fn_kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.fn_kwargs)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(self.fn_kwargs)
        return cfg


class MeanSquaredError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(mean_squared_error, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class MeanAbsoluteError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(mean_absolute_error, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class BinaryCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy"):
        super().__init__(binary_crossentropy, name=name, reduction=reduction,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits


class CategoricalCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy"):
        super().__init__(categorical_crossentropy, name=name, reduction=reduction,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy"):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction,
                         from_logits=from_logits)
        self.from_logits = from_logits


class MeanAbsolutePercentageError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error"):
        super().__init__(mean_absolute_percentage_error, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error"):
        super().__init__(mean_squared_logarithmic_error, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class Hinge(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="hinge"):
        super().__init__(hinge, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class SquaredHinge(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge"):
        super().__init__(squared_hinge, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class CategoricalHinge(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge"):
        super().__init__(categorical_hinge, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class LogCosh(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="log_cosh"):
        super().__init__(log_cosh, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class KLDivergence(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence"):
        super().__init__(kl_divergence, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class Poisson(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="poisson"):
        super().__init__(poisson, name=name, reduction=reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


class CosineSimilarity(LossFunctionWrapper):
    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity"):
        super().__init__(cosine_similarity, name=name, reduction=reduction, axis=axis)


_FUNCTIONS = {
    "mean_squared_error": mean_squared_error, "mse": mean_squared_error,
    "mean_absolute_error": mean_absolute_error, "mae": mean_absolute_error,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "mean_absolute_percentage_error": mean_absolute_percentage_error,
    "mape": mean_absolute_percentage_error,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error,
    "msle": mean_squared_logarithmic_error,
    "hinge": hinge, "squared_hinge": squared_hinge, "categorical_hinge": categorical_hinge,
    "log_cosh": log_cosh, "logcosh": log_cosh,
    "kl_divergence": kl_divergence, "kld": kl_divergence,
    "kullback_leibler_divergence": kl_divergence,
    "poisson": poisson, "cosine_similarity": cosine_similarity,
}
_CLASSES = {
    "MeanSquaredError": MeanSquaredError, "MeanAbsoluteError": MeanAbsoluteError,
    "BinaryCrossentropy": BinaryCrossentropy, "CategoricalCrossentropy": CategoricalCrossentropy,
    "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy,
    "MeanAbsolutePercentageError": MeanAbsolutePercentageError,
    "MeanSquaredLogarithmicError": MeanSquaredLogarithmicError, "Hinge": Hinge,
    "SquaredHinge": SquaredHinge, "CategoricalHinge": CategoricalHinge, "LogCosh": LogCosh,
    "KLDivergence": KLDivergence, "Poisson": Poisson, "CosineSimilarity": CosineSimilarity,
}
_CLASS_OF = {mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
             binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
             sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
             mean_absolute_percentage_error: MeanAbsolutePercentageError,
             mean_squared_logarithmic_error: MeanSquaredLogarithmicError, hinge: Hinge,
             squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge, log_cosh: LogCosh,
             kl_divergence: KLDivergence, poisson: Poisson, cosine_similarity: CosineSimilarity}


def serialize(loss):
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    return getattr(loss, "__name__", str(loss))


def get(identifier):
    """A loss from a name (``"mse"``), a config dict, a Loss instance or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        cls = _CLASSES.get(identifier)
        if cls is not None:
            return cls()
        f = _FUNCTIONS.get(identifier) or _FUNCTIONS.get(identifier.lower())
        if f is not None:
            return f
        raise ValueError(
            f"Unknown loss {identifier!r}; valid names: {sorted(set(_FUNCTIONS) | set(_CLASSES))}")
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown loss {identifier.get('class_name')!r}; valid names: {sorted(_CLASSES)}")
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, Loss) or callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret loss identifier: {identifier!r}")


def as_loss_object(identifier):
    """``get`` then wrap a bare function in a Loss with Keras's default mean reduction."""
    f = get(identifier)
    if isinstance(f, Loss):
        return f
    cls = _CLASS_OF.get(f)
    if cls is not None:
        return cls()
    return LossFunctionWrapper(f, name=getattr(f, "__name__", "loss"))
