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
from .device import array_module, to_numpy
from .ops import math as _M
from .ops import ctc as _ctc
from .ops import nn as _nn

__all__ = ["Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError",
           "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "mean_squared_error", "mean_absolute_error", "binary_crossentropy",
           "categorical_crossentropy", "sparse_categorical_crossentropy", "mse", "mae",
           "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "hinge",
           "squared_hinge", "categorical_hinge", "log_cosh", "kl_divergence", "poisson",
           "cosine_similarity", "mape", "msle", "kld", "logcosh", "MeanAbsolutePercentageError",
           "MeanSquaredLogarithmicError", "Hinge", "SquaredHinge", "CategoricalHinge", "LogCosh",
           "KLDivergence", "Poisson", "CosineSimilarity", "Huber", "BinaryFocalCrossentropy",
           "CategoricalFocalCrossentropy", "CategoricalGeneralizedCrossEntropy", "Circle", "CTC",
           "Dice", "Tversky", "huber", "binary_focal_crossentropy",
           "categorical_focal_crossentropy", "categorical_generalized_cross_entropy", "circle",
           "ctc", "dice", "tversky", "get", "serialize", "deserialize"]


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
    if d.size and _xp(d).all((d == 0) | (d == 1)):
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


def huber(y_true, y_pred, delta=1.0):
    """mean over the last axis of ½e² where |e| ≤ δ, else δ|e| − ½δ² (e = y_pred − y_true)."""
    y_true, y_pred = _prep(y_true, y_pred, "huber")
    delta = _float_arg("huber", "delta", delta)
    err = y_pred - y_true
    sq = ops.square(err)
    quadratic = _xp(err).abs(err.data) <= delta
    return ops.mean(ops.where(quadratic, 0.5 * sq, delta * ops.abs(err) - 0.5 * delta * delta),
                    axis=-1)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1):
    """mean over ``axis`` of (1 − p_t)^γ · BCE(y, p), p_t = y·p + (1 − y)(1 − p) (Lin et al.);
    with ``apply_class_balancing`` each term is weighted by α for y = 1 and 1 − α for y = 0.
    BCE clips p to [ε, 1 − ε]; the focal factor uses p unclipped, as Keras."""
    y_true, y_pred = _prep(y_true, y_pred, "binary_focal_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    bce = _nn.binary_crossentropy(y_true, y_pred, from_logits=False)
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    focal = ops.power(1.0 - p_t, float(gamma)) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return ops.mean(focal, axis=axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                   label_smoothing=0.0, axis=-1):
    """Σ over ``axis`` of −α (1 − p)^γ · y log p, p = y_pred renormalised along ``axis`` and
    clipped to [ε, 1 − ε] (softmax first with ``from_logits``); ``alpha`` a scalar or one
    weight per class."""
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type "
                         f"{type(axis)}")
    y_true, y_pred = _prep(y_true, y_pred, "categorical_focal_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    if from_logits:
        y_pred = ops.softmax(y_pred, axis=axis)
    out = y_pred / ops.sum(y_pred, axis=axis, keepdims=True)
    out = ops.clip(out, _eps(), 1.0 - _eps())
    cce = -y_true * ops.log(out)
    weight = ops.power(1.0 - out, float(gamma))
    if isinstance(alpha, (list, tuple, np.ndarray)):
        weight = weight * np.asarray(alpha, dtype=weight.dtype)
    else:
        weight = weight * float(alpha)
    return ops.sum(weight * cce, axis=axis)


def categorical_generalized_cross_entropy(y_true, y_pred, q):
    """(1 − p^q) / q per sample, p the predicted probability of the integer label y_true
    (Zhang & Sabuncu's generalized cross-entropy, q ∈ (0, 1))."""
    y_pred = _M._t(y_pred, "categorical_generalized_cross_entropy")
    labels = _host_labels(y_true)
    if labels.ndim == y_pred.ndim and labels.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(f"categorical_generalized_cross_entropy: y_true must hold one integer "
                         f"label per row of y_pred, received y_true {labels.shape} and y_pred "
                         f"{y_pred.shape}")
    onehot = np.eye(y_pred.shape[-1], dtype=y_pred.dtype)[labels.astype(np.int64)]
    p = ops.sum(y_pred * onehot, axis=-1)
    return (1.0 - ops.power(p, float(q))) / float(q)


def dice(y_true, y_pred, axis=None):
    """1 − 2 Σ y·p / (Σ y + Σ p + ε), the sums over ``axis`` (all axes by default)."""
    y_true, y_pred = _cast_pair(y_true, y_pred, "dice")
    inter = ops.sum(y_true * y_pred, axis=axis)
    return 1.0 - (2.0 * inter) / (ops.sum(y_true, axis=axis) + ops.sum(y_pred, axis=axis) + _eps())


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """1 − TP / (TP + α·FP + β·FN + ε), with TP = Σ y·p, FP = Σ (1 − p)·y, FN = Σ p·(1 − y)
    over ``axis`` (Keras's naming of the two error terms); α = β = ½ is the Dice loss."""
    y_true, y_pred = _cast_pair(y_true, y_pred, "tversky")
    inter = ops.sum(y_true * y_pred, axis=axis)
    fp = ops.sum((1.0 - y_pred) * y_true, axis=axis)
    fn = ops.sum(y_pred * (1.0 - y_true), axis=axis)
    return 1.0 - inter / (inter + fp * alpha + fn * beta + _eps())


_MASKED = -1e30     # stands for −∞ in a log-sum-exp: e^(−1e30 − m) is exactly 0


def circle(y_true, y_pred, ref_labels=None, ref_embeddings=None, remove_diagonal=True, gamma=80,
           margin=0.4):
    """Circle loss (Sun et al., 2020) of L2-normalised embeddings y_pred with integer labels.

    With cosine distances d = max(1 − y_pred·refᵀ, 0), positives (same label) and negatives:
    loss = softplus(logsumexp_pos(−γ·[m + d]₊·(m − d)) + logsumexp_neg(γ·[1 + m − d]₊·(1 − m − d))).
    Rows whose loss is 0 (no positive or no negative) are masked out of the mean, as Keras."""
    y_pred = _M._t(y_pred, "circle")
    labels = _host_labels(y_true).astype(np.int64)
    ref = y_pred if ref_embeddings is None else _M._t(ref_embeddings, "circle")
    ref_lab = labels if ref_labels is None else _host_labels(ref_labels).astype(np.int64)
    if y_pred.ndim != 2 or ref.ndim != 2:
        raise ValueError(f"circle: y_pred and ref_embeddings must be 2D (batch, dim) embeddings, "
                         f"received shapes {y_pred.shape} and {ref.shape}")
    q, k = labels.reshape(-1, 1), ref_lab.reshape(-1, 1)
    if q.shape[0] != y_pred.shape[0] or k.shape[0] != ref.shape[0]:
        raise ValueError(f"circle: one label per embedding expected, received {q.shape[0]} labels "
                         f"for {y_pred.shape[0]} embeddings and {k.shape[0]} reference labels for "
                         f"{ref.shape[0]} reference embeddings")
    pos = q == k.T
    neg = ~pos
    if remove_diagonal:
        pos = pos & ~np.eye(q.shape[0], k.shape[0], dtype=bool)
    dt = y_pred.dtype
    dist = ops.maximum(1.0 - ops.matmul(y_pred, ops.transpose(ref)), 0.0)
    pos_w = ops.maximum((margin + dist) * pos.astype(dt), 0.0)
    neg_w = ops.maximum(((1.0 + margin) - dist) * neg.astype(dt), 0.0)
    pos_terms = -1.0 * gamma * pos_w * (margin - dist)
    neg_terms = gamma * neg_w * ((1.0 - margin) - dist)
    p_loss = ops.logsumexp(ops.where(pos, pos_terms, _MASKED), axis=1)
    n_loss = ops.logsumexp(ops.where(neg, neg_terms, _MASKED), axis=1)
    out = ops.softplus(p_loss + n_loss)
    out._keras_mask = out.data > 0
    return out


def ctc(y_true, y_pred):
    """CTC loss per sample: y_true (batch, max_label_length) integer labels with 0 the blank
    (and padding), y_pred (batch, time, classes) logits; every sequence uses all time steps."""
    y_pred = _M._t(y_pred, "ctc")
    labels = _host_labels(y_true)
    if labels.ndim != 2:
        raise ValueError(f"Targets `y_true` are expected to be a tensor of shape `(batch_size, "
                         f"max_length)` in integer format. Received: y_true.shape={labels.shape}")
    if y_pred.ndim != 3:
        raise ValueError(f"Logits `y_pred` are expected to be a tensor of shape `(batch_size, "
                         f"max_length, num_classes)`. Received: y_pred.shape={y_pred.shape}")
    b, t = y_pred.shape[0], y_pred.shape[1]
    label_length = np.sum(labels != 0, axis=-1).astype(np.int32)
    return _ctc.ctc_loss(labels, y_pred, label_length, np.full((b,), t, dtype=np.int32),
                         mask_index=0)


def _host_labels(y):
    """Integer labels (a Tensor or an array) as a host array: labels are checked and turned
    into masks and one-hot rows on the host, and the ops copy what they use to the data's
    device."""
    d = y.data if isinstance(y, Tensor) else y
    if type(d) is not np.ndarray and array_module(d) is not np:
        return to_numpy(d)
    return np.asarray(d)


def _float_arg(fn, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: `{name}` must be a number, received {value!r}")
    return float(value)


def _cast_pair(y_true, y_pred, name):
    """y_pred as a Tensor and y_true cast to its dtype, the ranks matched as Keras's
    LossFunctionWrapper does; no shape check (the reduction may span any axes)."""
    y_pred = _M._t(y_pred, name)
    if not isinstance(y_true, Tensor):
        y_true = _target(y_true, y_pred)
    if y_true.dtype != y_pred.dtype:
        y_true = ops.cast(y_true, y_pred.dtype)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1) if y_pred.ndim != 1 else y_true
        if y_pred.ndim == 1:
            y_pred = ops.expand_dims(y_pred, -1)
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        if y_true.ndim == 1:
            y_true = ops.expand_dims(y_true, -1)
        else:
            y_pred = ops.squeeze(y_pred, -1)
    return y_true, y_pred


def _target(y_true, y_pred):
    """The array ``y_true`` as a constant Tensor where ``y_pred`` lives: on the host as
    ``np.asarray`` makes it, on a device with that device's ``asarray`` (a host target is
    copied there, a device one kept)."""
    d = y_pred.data
    if type(d) is not np.ndarray:
        xp = array_module(d)
        if xp is not np:
            return Tensor(xp.asarray(y_true.data if isinstance(y_true, Tensor) else y_true))
    return Tensor(np.asarray(y_true))


def _xp(values):
    """The array module of a loss value (a Tensor or an array): numpy for host data."""
    d = getattr(values, "data", values)
    return np if type(d) is np.ndarray else array_module(d)


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
        y_true = _target(y_true, y_pred)
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
        if type(values) is np.ndarray:
            return np.add.reduce(values, axis=None) / values.dtype.type(self.n)
        return array_module(values).sum(values) / values.dtype.type(self.n)

    def backward(self, g):
        if type(g) is np.ndarray:
            out = np.empty(self.shape, dtype=g.dtype)
            out.fill(g / g.dtype.type(self.n))
            return (out,)
        out = array_module(g).empty(self.shape, dtype=g.dtype)     # on g's device
        out[...] = g / g.dtype.type(self.n)
        return (out,)

    def backward_graph(self, g):
        return (_M.BroadcastTo.apply(g / g.data.dtype.type(self.n), shape=self.shape),)



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
        mask = getattr(values, "_keras_mask", None)
        if mask is None and sample_weight is None:
            xp = np
        else:
            xp = _xp(values)        # the weights and the mask go where the values are
        if mask is not None:
            # a loss that marks some of its values as not counting (Circle): as Keras's
            # apply_mask, the mask becomes part of the sample weights, scaled for the mean
            # reductions so that the mean runs over the counted values only
            mask = xp.asarray(mask, dtype=bool)
            fmask = mask.astype(values.dtype)
            if self.reduction in ("sum_over_batch_size", "mean"):
                valid = fmask.sum()
                fmask = fmask * (xp.true_divide(values.dtype.type(mask.size), valid) if valid
                                 else 0)
            if sample_weight is None:
                sample_weight = fmask
            else:
                sw = xp.asarray(sample_weight.data if isinstance(sample_weight, Tensor)
                                else sample_weight, dtype=values.dtype)
                while sw.ndim > fmask.ndim and sw.shape[-1] == 1:
                    sw = sw[..., 0]
                sample_weight = sw * fmask
        if sample_weight is not None:
            sw = xp.asarray(sample_weight.data if isinstance(sample_weight, Tensor) else sample_weight,
                            dtype=values.dtype)
            while sw.ndim > values.ndim and sw.shape[-1] == 1:
                sw = sw[..., 0]
            if values.ndim == sw.ndim + 1 and values.shape[-1] == 1:
                # Keras's squeeze_or_expand_to_same_rank: (batch, 1) values, (batch,) weights
                if sw.ndim == 1:
                    sw = sw[:, None]
                else:
                    values = ops.squeeze(values, -1)
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
            d = float(xp.sum(sw))
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


class Huber(LossFunctionWrapper):
    """The Huber loss: quadratic for errors up to ``delta``, linear beyond."""

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(huber, name=name, reduction=reduction, delta=delta)
        self.dtype = dtype

    def get_config(self):
        # as Keras 3.15: the config holds the name and reduction only (delta is not kept)
        return Loss.get_config(self)


class BinaryFocalCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy with the focal factor (1 − p_t)^γ and optional α class balancing."""

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_focal_crossentropy", dtype=None):
        super().__init__(binary_focal_crossentropy, name=name, reduction=reduction,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.dtype = dtype
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        self.apply_class_balancing = apply_class_balancing
        self.alpha = alpha
        self.gamma = gamma

    def get_config(self):
        return {**Loss.get_config(self), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis,
                "apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha,
                "gamma": self.gamma}


class CategoricalFocalCrossentropy(LossFunctionWrapper):
    """Categorical cross-entropy with the focal weight α (1 − p)^γ."""

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_focal_crossentropy",
                 dtype=None):
        super().__init__(categorical_focal_crossentropy, name=name, reduction=reduction,
                         alpha=alpha, gamma=gamma, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)
        self.dtype = dtype
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        self.alpha = alpha
        self.gamma = gamma

    def get_config(self):
        return {**Loss.get_config(self), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis, "alpha": self.alpha,
                "gamma": self.gamma}


class CategoricalGeneralizedCrossEntropy(LossFunctionWrapper):
    """Generalized cross-entropy (1 − p^q)/q of integer labels, robust to label noise."""

    def __init__(self, q=0.5, reduction="sum_over_batch_size",
                 name="categorical_generalized_cross_entropy", dtype=None):
        if isinstance(q, bool) or not isinstance(q, (int, float, np.integer, np.floating)) \
                or not 0 < q < 1:
            raise ValueError(f"CategoricalGeneralizedCrossEntropy: q must be in the interval "
                             f"(0, 1), received q={q!r}")
        super().__init__(categorical_generalized_cross_entropy, name=name, reduction=reduction,
                         q=q)
        self.dtype = dtype
        self.q = q

    def get_config(self):
        return {**Loss.get_config(self), "q": self.q}


class Dice(LossFunctionWrapper):
    """1 − Dice coefficient over ``axis`` (all axes by default)."""

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None, dtype=None):
        super().__init__(dice, name=name, reduction=reduction, axis=axis)
        self.dtype = dtype
        self.axis = axis

    def get_config(self):
        return {**Loss.get_config(self), "axis": self.axis}


class Tversky(LossFunctionWrapper):
    """1 − Tversky index with weights ``alpha`` and ``beta`` on the two error terms."""

    def __init__(self, alpha=0.5, beta=0.5, reduction="sum_over_batch_size", name="tversky",
                 axis=None, dtype=None):
        super().__init__(tversky, name=name, reduction=reduction, alpha=alpha, beta=beta,
                         axis=axis)
        self.dtype = dtype
        self.alpha = alpha
        self.beta = beta
        self.axis = axis

    def get_config(self):
        return {**Loss.get_config(self), "alpha": self.alpha, "beta": self.beta,
                "axis": self.axis}


class Circle(LossFunctionWrapper):
    """Circle loss between integer labels and L2-normalised embeddings."""

    def __init__(self, gamma=80.0, margin=0.4, remove_diagonal=True,
                 reduction="sum_over_batch_size", name="circle", dtype=None):
        super().__init__(circle, name=name, reduction=reduction, gamma=gamma, margin=margin,
                         remove_diagonal=remove_diagonal)
        self.dtype = dtype
        self.gamma = gamma
        self.margin = margin
        self.remove_diagonal = remove_diagonal

    def get_config(self):
        return {**Loss.get_config(self), "gamma": self.gamma, "margin": self.margin,
                "remove_diagonal": self.remove_diagonal}


class CTC(LossFunctionWrapper):
    """Connectionist temporal classification loss of integer labels (0 the blank) and logits."""

    def __init__(self, reduction="sum_over_batch_size", name="ctc", dtype=None):
        super().__init__(ctc, name=name, reduction=reduction)
        self.dtype = dtype

    def get_config(self):
        return Loss.get_config(self)


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
    "huber": huber, "binary_focal_crossentropy": binary_focal_crossentropy,
    "categorical_focal_crossentropy": categorical_focal_crossentropy,
    "categorical_generalized_cross_entropy": categorical_generalized_cross_entropy,
    "dice": dice, "tversky": tversky, "circle": circle, "ctc": ctc,
    "bce": binary_crossentropy, "BCE": binary_crossentropy, "KLD": kl_divergence,
    "MAE": mean_absolute_error, "MSE": mean_squared_error,
    "MAPE": mean_absolute_percentage_error, "MSLE": mean_squared_logarithmic_error,
}
_CLASSES = {
    "MeanSquaredError": MeanSquaredError, "MeanAbsoluteError": MeanAbsoluteError,
    "BinaryCrossentropy": BinaryCrossentropy, "CategoricalCrossentropy": CategoricalCrossentropy,
    "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy,
    "MeanAbsolutePercentageError": MeanAbsolutePercentageError,
    "MeanSquaredLogarithmicError": MeanSquaredLogarithmicError, "Hinge": Hinge,
    "SquaredHinge": SquaredHinge, "CategoricalHinge": CategoricalHinge, "LogCosh": LogCosh,
    "KLDivergence": KLDivergence, "Poisson": Poisson, "CosineSimilarity": CosineSimilarity,
    "Huber": Huber, "BinaryFocalCrossentropy": BinaryFocalCrossentropy,
    "CategoricalFocalCrossentropy": CategoricalFocalCrossentropy,
    "CategoricalGeneralizedCrossEntropy": CategoricalGeneralizedCrossEntropy, "Dice": Dice,
    "Tversky": Tversky, "Circle": Circle, "CTC": CTC,
}
_CLASS_OF = {mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
             binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
             sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
             mean_absolute_percentage_error: MeanAbsolutePercentageError,
             mean_squared_logarithmic_error: MeanSquaredLogarithmicError, hinge: Hinge,
             squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge, log_cosh: LogCosh,
             kl_divergence: KLDivergence, poisson: Poisson, cosine_similarity: CosineSimilarity,
             huber: Huber, binary_focal_crossentropy: BinaryFocalCrossentropy,
             categorical_focal_crossentropy: CategoricalFocalCrossentropy, dice: Dice,
             tversky: Tversky, circle: Circle, ctc: CTC}


def serialize(loss):
    """A Loss object as Keras's ``losses.serialize`` writes it (``module``, ``class_name``,
    ``config``, ``registered_name``); a loss function as its name (the form the model file's
    compile entry keeps; :func:`deserialize` also reads Keras's function entries)."""
    if isinstance(loss, Loss):
        cls = type(loss)
        builtin = _CLASSES.get(cls.__name__) is cls
        return {"module": "keras.losses" if builtin else cls.__module__,
                "class_name": cls.__name__, "config": loss.get_config(),
                "registered_name": None if builtin else cls.__name__}
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
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, Loss) or callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret loss identifier: {identifier!r}")


def deserialize(name, custom_objects=None):
    """A loss from its serialized form, as Keras's ``losses.deserialize``: a class or function
    name (a class is instantiated), or a config dict ``{"class_name": ..., "config": ...}``
    (``class_name`` ``"function"`` names a loss function).  ``custom_objects`` maps further
    names to classes or functions and is looked up first."""
    custom = dict(custom_objects or {})
    if isinstance(name, str):
        obj = custom.get(name) or _CLASSES.get(name) or _FUNCTIONS.get(name)
        if obj is None:
            raise ValueError(f"Unknown loss {name!r}; valid names: "
                             f"{sorted(set(_FUNCTIONS) | set(_CLASSES))}")
        return obj() if isinstance(obj, type) else obj
    if isinstance(name, dict):
        cls_name = name.get("class_name")
        config = name.get("config", {})
        if cls_name == "function":
            if not isinstance(config, str):
                raise ValueError(f"losses.deserialize: a function entry needs its name as config, "
                                 f"received {config!r}")
            fn = custom.get(config) or _FUNCTIONS.get(config)
            if fn is None:
                raise ValueError(f"Unknown loss function {config!r}; valid names: "
                                 f"{sorted(_FUNCTIONS)}")
            return fn
        cls = custom.get(cls_name) or _CLASSES.get(cls_name)
        if cls is None:
            raise ValueError(f"Unknown loss {cls_name!r}; valid names: {sorted(_CLASSES)}")
        if not isinstance(config, dict):
            raise ValueError(f"losses.deserialize: the config of {cls_name!r} must be a dict, "
                             f"received {config!r}")
        if hasattr(cls, "from_config"):
            return cls.from_config(dict(config))
        return cls(**config)
    raise TypeError(f"losses.deserialize: expected a name or a config dict, received "
                    f"{type(name).__name__} {name!r}")


def as_loss_object(identifier):
    """``get`` then wrap a bare function in a Loss with Keras's default mean reduction."""
    f = get(identifier)
    if isinstance(f, Loss):
        return f
    cls = _CLASS_OF.get(f)
    if cls is not None:
        return cls()
    return LossFunctionWrapper(f, name=getattr(f, "__name__", "loss"))
