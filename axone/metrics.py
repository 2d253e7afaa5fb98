"""Metrics: stateful objects (``update_state`` / ``result`` / ``reset_state``) and functions.

Metrics are computed on plain NumPy arrays, outside the graph, and follow Keras 3:
the same class names, arguments, defaults, string names (``get("auc")``,
``compile(metrics=["top_k_categorical_accuracy"])``), configs and values.  Inputs are
taken in float32 like Keras's metric variables, so thresholds, clipping
(epsilon ``1e-7``) and top-k comparisons fall on the same side as Keras's.  The
state of every metric lives in non-trainable :class:`axone.Variable` objects of the
metric's dtype (float32 by default, int32 for the IoU metrics), as Keras's metric
variables: ``metric.variables``, the default ``reset_state`` and the stateless API
(``stateless_update_state`` / ``stateless_result`` / ``stateless_reset_state``) work on
them, for the built-in metrics and for user subclasses of :class:`Metric` alike.

``"accuracy"`` in ``compile`` is resolved from the loss as Keras does: binary for
binary_crossentropy or a single output unit, sparse categorical for
sparse_categorical_crossentropy, categorical otherwise.

Besides the Keras metrics, :func:`confusion_matrix`, :func:`classification_report`
(laid out as scikit-learn's), :func:`specificity` and :func:`bias_variance` work on
whole arrays of labels or predictions.
"""
import re
import threading
import warnings
from collections import namedtuple

import numpy as np

from . import losses as _losses
from .autograd.tensor import Tensor
from .variables import Variable

__all__ = ["Metric", "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError",
           "RootMeanSquaredError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
           "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives", "Precision",
           "Recall", "AUC", "FBetaScore", "F1Score",
           "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
           "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
           "mean_squared_logarithmic_error", "binary_crossentropy", "categorical_crossentropy",
           "sparse_categorical_crossentropy", "confusion_matrix", "classification_report",
           "specificity", "bias_variance", "get", "resolve", "serialize", "deserialize",
           "Hinge", "SquaredHinge", "CategoricalHinge", "KLDivergence", "Poisson",
           "LogCoshError", "CosineSimilarity", "PearsonCorrelation", "ConcordanceCorrelation",
           "R2Score", "SensitivityAtSpecificity", "SpecificityAtSensitivity",
           "PrecisionAtRecall", "RecallAtPrecision", "IoU", "BinaryIoU", "MeanIoU", "OneHotIoU",
           "OneHotMeanIoU", "hinge", "squared_hinge", "categorical_hinge", "kl_divergence",
           "log_cosh", "poisson", "huber", "binary_focal_crossentropy",
           "categorical_focal_crossentropy", "pearson_correlation", "concordance_correlation"]

EPSILON = 1e-7          # Keras's backend.epsilon()
NEG_INF = -1e10         # Keras's metrics_utils.NEG_INF (top_k filtering)


def _np(x):
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "to_numpy"):
        return x.to_numpy()
    if hasattr(x, "detach") and hasattr(x, "cpu"):          # a torch tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _f32(x):
    return np.asarray(_np(x), dtype=np.float32)


def _to_snake(name):
    """Keras's ``to_snake_case``: ``"TruePositives"`` → ``"true_positives"``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _same_rank(x1, x2, expand_rank_1=True):
    """Keras's ``squeeze_or_expand_to_same_rank``: fix a trailing unit axis on one side."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _div_no_nan(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))
    return out


def _scalar_or_array(x):
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


def _check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Invalid `{name}` argument: expected an integer > 0. "
                         f"Received: {name}={value!r}")


# ----------------------------------------------------------- per-sample functions
def accuracy(y_true, y_pred):
    y_true, y_pred = _np(y_true), _np(y_pred)
    return (y_true == y_pred).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1 where (y_pred > threshold) equals the label, elementwise (Keras 3: no mean)."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    if y_true.shape != y_pred.shape and y_true.shape == y_pred.shape[:-1]:
        y_true = y_true[..., None]
    return ((y_pred > threshold) == (y_true > 0.5)).astype(np.float32)


def categorical_accuracy(y_true, y_pred):
    y_true, y_pred = _np(y_true), _np(y_pred)
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    y_true, y_pred = _np(y_true), _np(y_pred)
    if y_true.ndim == y_pred.ndim:
        y_true = y_true[..., 0]
    return (y_true.astype(np.int64) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def _in_top_k(targets, predictions, k):
    """Keras's ``in_top_k``: the target's score is >= the k-th largest score (ties count)."""
    k = min(int(k), predictions.shape[-1])
    kth = -np.partition(-predictions, k - 1, axis=-1)[:, k - 1]
    target_values = np.take_along_axis(predictions, targets[:, None], axis=-1)[:, 0]
    return target_values >= kth


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the one-hot target's class is among the ``k`` highest scores of ``y_pred``."""
    _check_positive_int("k", k)
    y_pred = _f32(y_pred)
    y_true = np.argmax(_f32(y_true), axis=-1)
    shape = y_true.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    matches = _in_top_k(y_true.reshape(-1), y_pred, k).astype(np.float32)
    return matches.reshape(shape) if len(shape) > 1 else matches


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """1 where the integer target is among the ``k`` highest scores of ``y_pred`` (or, with
    ``from_sorted_ids=True``, among the first ``k`` ids of ``y_pred``)."""
    _check_positive_int("k", k)
    y_pred = _f32(y_pred)
    y_true = np.asarray(_np(y_true))
    y_true = y_true.astype(np.float32) if from_sorted_ids else y_true.astype(np.int64)
    shape = y_true.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    flat = y_true.reshape(-1)
    if from_sorted_ids:
        matches = np.any(flat[:, None] == y_pred[:, :k], axis=1)
    else:
        matches = _in_top_k(flat, y_pred, k)
    matches = matches.astype(np.float32)
    return matches.reshape(shape) if len(shape) > 1 else matches


def mean_squared_error(y_true, y_pred):
    y_true, y_pred = _np(y_true), _np(y_pred)
    if y_true.shape != y_pred.shape and y_true.shape == y_pred.shape[:-1]:
        y_true = y_true[..., None]
    return np.mean((y_pred - y_true) ** 2, axis=-1)


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = _np(y_true), _np(y_pred)
    if y_true.shape != y_pred.shape and y_true.shape == y_pred.shape[:-1]:
        y_true = y_true[..., None]
    return np.mean(np.abs(y_pred - y_true), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """100 · mean(|y_true − y_pred| / max(|y_true|, ε), axis=−1)."""
    y_true, y_pred = _same_rank(_f32(y_true).astype(np.float64), _f32(y_pred).astype(np.float64))
    diff = np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), EPSILON))
    return 100.0 * np.mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    """mean((log(max(y_pred, ε) + 1) − log(max(y_true, ε) + 1))², axis=−1)."""
    y_true, y_pred = _same_rank(_f32(y_true).astype(np.float64), _f32(y_pred).astype(np.float64))
    first = np.log(np.maximum(y_pred, EPSILON) + 1.0)
    second = np.log(np.maximum(y_true, EPSILON) + 1.0)
    return np.mean((first - second) ** 2, axis=-1)


def _clip_probs(p):
    """Clip to [ε, 1 − ε] in float32, as Keras, then widen for the logarithms."""
    return np.clip(p.astype(np.float32), np.float32(EPSILON),
                   np.float32(1.0 - EPSILON)).astype(np.float64)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """mean over ``axis`` of −[y log p + (1 − y) log(1 − p)], p clipped to [ε, 1 − ε]."""
    y_pred = _f32(y_pred)
    y_true = _f32(y_true)
    y_true, y_pred = _same_rank(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"binary_crossentropy: y_true and y_pred must have the same shape, "
                         f"received {y_true.shape} and {y_pred.shape}")
    t = y_true.astype(np.float64)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        x = y_pred.astype(np.float64)
        bce = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    else:
        p = _clip_probs(y_pred)
        bce = -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))
    return np.mean(bce, axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """−Σ y log p over ``axis``; probabilities are renormalised and clipped to [ε, 1 − ε]."""
    y_pred = _f32(y_pred)
    t = _f32(y_true).astype(np.float64)
    if t.shape != y_pred.shape:
        raise ValueError(f"categorical_crossentropy: y_true and y_pred must have the same "
                         f"shape, received {t.shape} and {y_pred.shape}")
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + label_smoothing / t.shape[-1]
    if from_logits:
        x = y_pred.astype(np.float64)
        m = np.max(x, axis=axis, keepdims=True)
        log_prob = x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    else:
        p = y_pred / np.sum(y_pred, axis=axis, keepdims=True)
        log_prob = np.log(_clip_probs(p))
    return -np.sum(t * log_prob, axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """−log p[y] for integer labels; ``ignore_class`` entries give 0 (and are masked out of
    the :class:`SparseCategoricalCrossentropy` mean)."""
    return _sparse_cce(y_true, y_pred, from_logits, ignore_class, axis)[0]


def _sparse_cce(y_true, y_pred, from_logits, ignore_class, axis):
    y_pred = _f32(y_pred)
    y_true = np.asarray(_np(y_true))
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = np.squeeze(y_true, axis=axis)
    valid = None
    if ignore_class is not None:
        valid = y_true != ignore_class
        y_true = np.where(valid, y_true, 0)
        y_pred = np.where(np.expand_dims(valid, axis), y_pred, 0).astype(np.float32)
    y_true = y_true.astype(np.int64)
    x = np.moveaxis(y_pred, axis, -1)
    if x.shape[:-1] != y_true.shape:
        raise ValueError(f"sparse_categorical_crossentropy: y_true {y_true.shape} and y_pred "
                         f"{y_pred.shape} must have the same shape up to the class axis")
    if from_logits:
        x = x.astype(np.float64)
        m = np.max(x, axis=-1, keepdims=True)
        log_prob = x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            p = x / np.sum(x, axis=-1, keepdims=True)
        log_prob = np.log(_clip_probs(p))
    res = -np.take_along_axis(log_prob, y_true[..., None], axis=-1)[..., 0]
    if valid is not None:
        res = np.where(valid, res, 0.0)
    return res, valid


# ----------------------------------------------------------------------- base classes
class Metric:
    """Base of stateful metrics: ``update_state`` accumulates, ``result`` reads,
    ``reset_state`` clears, as Keras 3's ``keras.metrics.Metric``.

    The state lives in non-trainable :class:`axone.Variable` objects made by
    :meth:`add_variable` / :meth:`add_weight` (listed by :attr:`variables`, those of metrics
    held as attributes included); the default ``reset_state`` zeroes them.  Giving a new
    value to an attribute that holds one of these variables (``self.total = self.total + x``)
    writes it into the variable.  The stateless forms (``stateless_update_state``,
    ``stateless_result``, ``stateless_reset_state``) run the same code on given variable
    values and leave the metric's own state as it was.  Without a ``name`` the metric is
    named by its snake-cased class name, made unique (``auc``, ``auc_1``, …) as Keras."""

    def __init__(self, dtype=None, name=None):
        object.__setattr__(self, "_variables", [])
        object.__setattr__(self, "_metrics", [])
        if name is None:
            from .layers.base import unique_name
            name = unique_name(_to_snake(type(self).__name__))
        self.name = name
        self._dtype = _standardize_dtype(dtype)

    @property
    def dtype(self):
        return self._dtype

    # ------------------------------------------------------------------ state
    def add_variable(self, shape, initializer, dtype=None, aggregation="sum", name=None):
        """A non-trainable state variable of this metric (Keras ``add_variable``)."""
        if "_variables" not in self.__dict__:
            raise RuntimeError("You forgot to call `super().__init__()` in the `__init__()` "
                               "method. Go add it!")
        if aggregation not in ("none", "mean", "sum", "only_first_replica"):
            raise ValueError(f"{type(self).__name__}.add_variable: aggregation must be one of "
                             f"'none', 'mean', 'sum', 'only_first_replica', received "
                             f"{aggregation!r}")
        shape = _shape_arg(shape, type(self).__name__)
        dt = np.dtype(_standardize_dtype(dtype or self._dtype))
        value = _initial_value(initializer, shape, dt, type(self).__name__)
        v = Variable(value, dtype=dt, trainable=False, name=name or "variable",
                     aggregation=aggregation)
        v.path = f"{self.name}/{v.name}"
        self._variables.append(v)
        return v

    def add_weight(self, shape=(), initializer=None, dtype=None, name=None):
        """``add_variable`` with Keras's ``add_weight`` defaults (a scalar of zeros)."""
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, name=name)

    @property
    def variables(self):
        out = list(self._variables)
        for m in self._metrics:
            out.extend(m.variables)
        return out

    def __setattr__(self, name, value):
        current = self.__dict__.get(name)
        if isinstance(current, Variable) and value is not current and \
                not isinstance(value, Variable) and \
                any(current is v for v in self.__dict__.get("_variables", ())):
            # a new value for a state variable: written into it, so the variable stays the
            # metric's state (and the stateless forms see the update)
            _assign(current, value, f"{type(self).__name__}.{name}")
            return
        if isinstance(value, Metric) and value is not self:
            tracked = self.__dict__.get("_metrics")
            if tracked is not None and not any(value is m for m in tracked):
                tracked.append(value)
        elif isinstance(value, Variable) and not value.trainable:
            tracked = self.__dict__.get("_variables")
            if tracked is not None and not any(value is v for v in tracked):
                tracked.append(value)
        object.__setattr__(self, name, value)

    def reset_state(self):
        """Zero every state variable."""
        for v in self.variables:
            v.data[...] = 0

    def update_state(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement update_state")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement result")

    def __call__(self, *args, **kwargs):
        if "_variables" not in self.__dict__:
            raise RuntimeError("You forgot to call `super().__init__()` in the `__init__()` "
                               "method. Go add it!")
        self.update_state(*args, **kwargs)
        return self.result()

    # -------------------------------------------------------------- stateless
    def _check_metric_variables(self, metric_variables):
        variables = self.variables
        if not isinstance(metric_variables, (list, tuple)) or \
                len(metric_variables) != len(variables):
            n = len(metric_variables) if isinstance(metric_variables, (list, tuple)) else None
            raise ValueError(f"Argument `metric_variables` must be a list of tensors "
                             f"corresponding 1:1 to {type(self).__name__}().variables. "
                             f"Received list with length {n}, but expected "
                             f"{len(variables)} variables.")
        return variables

    def _swap_in(self, variables, values):
        saved = [v.data.copy() for v in variables]
        for v, x in zip(variables, values):
            _assign(v, x, f"{type(self).__name__} metric_variables")
        return saved

    @staticmethod
    def _restore(variables, saved):
        for v, x in zip(variables, saved):
            v.data[...] = x

    def stateless_update_state(self, metric_variables, *args, **kwargs):
        """``update_state`` applied to the variable values ``metric_variables``: returns the
        new values (one Tensor per variable, in ``variables`` order); the metric's own state
        is left unchanged."""
        variables = self._check_metric_variables(metric_variables)
        with _STATELESS_LOCK:
            saved = self._swap_in(variables, metric_variables)
            try:
                self.update_state(*args, **kwargs)
                return [Tensor(v.data.copy()) for v in variables]
            finally:
                self._restore(variables, saved)

    def stateless_result(self, metric_variables):
        """``result`` computed from the variable values ``metric_variables``."""
        variables = self._check_metric_variables(metric_variables)
        with _STATELESS_LOCK:
            saved = self._swap_in(variables, metric_variables)
            try:
                return self.result()
            finally:
                self._restore(variables, saved)

    def stateless_reset_state(self):
        """The variable values ``reset_state`` would give, the metric left unchanged."""
        variables = self.variables
        with _STATELESS_LOCK:
            saved = [v.data.copy() for v in variables]
            try:
                self.reset_state()
                return [Tensor(v.data.copy()) for v in variables]
            finally:
                self._restore(variables, saved)

    # ----------------------------------------------------------------- config
    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"

    __str__ = __repr__

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


_STATELESS_LOCK = threading.RLock()


def _standardize_dtype(dtype):
    if dtype is None:
        from . import backend
        return backend.floatx()
    if dtype == "int":
        return "int32"
    if dtype == "float":
        return "float32"
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"Invalid metric dtype {dtype!r}: expected a NumPy dtype name such as "
                        f"'float32'") from None


def _shape_arg(shape, owner):
    if shape is None:
        return ()
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.add_variable: shape must be a tuple of non-negative "
                         f"integers, received {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"{owner}.add_variable: shape must be a tuple of non-negative "
                         f"integers, received {shape!r}")
    return shape


def _initial_value(initializer, shape, dtype, owner):
    if initializer is None:
        return np.zeros(shape, dtype=dtype)
    if isinstance(initializer, (np.ndarray, Tensor, int, float, np.generic, list, tuple)) \
            and not isinstance(initializer, bool):
        value = np.array(_np(initializer), dtype=dtype)
        if value.shape != shape:
            value = np.broadcast_to(value, shape).copy()
        return value
    from . import initializers
    init = initializers.get(initializer) if isinstance(initializer, (str, dict)) else initializer
    if not callable(init):
        raise TypeError(f"{owner}.add_variable: could not interpret initializer "
                        f"{initializer!r}")
    return np.asarray(_np(init(shape, dtype=dtype)), dtype=dtype).reshape(shape)


def _assign(var, value, what):
    v = np.asarray(_np(value))
    if v.shape != var.data.shape:
        try:
            v = np.broadcast_to(v, var.data.shape)
        except ValueError:
            raise ValueError(f"{what}: cannot assign a value of shape {v.shape} to a state "
                             f"variable of shape {var.data.shape}") from None
    var.data[...] = v


_FLOAT_SCALARS = (float, np.float16, np.float32, np.float64)


def _reduce_samplewise(values, sample_weight, mean):
    """Keras's reduce_to_samplewise_values: per-sample values (trailing axes reduced with
    the mean or the sum) and the matching per-sample weights (or None)."""
    reduce = np.mean if mean else np.sum
    v = np.asarray(_np(values), dtype=np.float64)
    w = None
    if sample_weight is not None:
        w = np.asarray(_np(sample_weight), dtype=np.float64)
        v, w = _same_rank(v, w)
        if v.ndim > w.ndim:
            v = reduce(v, axis=tuple(range(w.ndim, v.ndim)))
        try:
            w = np.broadcast_to(w, v.shape)
        except ValueError:
            raise ValueError(f"sample_weight of shape {w.shape} cannot be broadcast to the "
                             f"values' shape {v.shape}") from None
        v = v * w
        if w.ndim > 1:
            w = reduce(w, axis=tuple(range(1, w.ndim)))
    if v.ndim > 1:
        v = reduce(v, axis=tuple(range(1, v.ndim)))
    return v, w


def _add_scalar(state, x):
    """state += x for a metric's 0-d state array and a Python number (once per batch: a
    NumPy in-place add on a 0-d array costs ten times more)."""
    if state.ndim == 0:
        state.fill(state[()] + x)          # a NumPy scalar: the same arithmetic as ``+=``
    else:
        state[...] += x


class Mean(Metric):
    """Weighted running mean of the values it is given (state: ``total`` and ``count``)."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), "zeros", name="total")
        self.count = self.add_variable((), "zeros", name="count")

    def reset_state(self):
        self.total.data[...] = 0
        self.count.data[...] = 0

    def update_state(self, values, sample_weight=None):
        """Add per-sample values (trailing axes averaged first, as Keras), optionally weighted."""
        if type(values) is float and type(sample_weight) is int:     # a batch's scalar loss
            _add_scalar(self.total.data, values * sample_weight)
            _add_scalar(self.count.data, sample_weight)
            return
        # a scalar loss Tensor with a number (or no) weight: the general path's float64
        # arithmetic, without its array round trips
        d = values.data if isinstance(values, Tensor) else values
        if (type(d) in _FLOAT_SCALARS or (type(d) is np.ndarray and d.ndim == 0
                                          and d.dtype.kind == "f")) and (
                sample_weight is None or (isinstance(sample_weight, (int, float, np.integer,
                                                                     np.floating))
                                          and not isinstance(sample_weight, (bool, np.bool_)))):
            if sample_weight is None:
                _add_scalar(self.total.data, float(d))
                _add_scalar(self.count.data, 1)
            else:
                w = float(sample_weight)
                _add_scalar(self.total.data, float(d) * w)
                _add_scalar(self.count.data, w)
            return
        v, w = _reduce_samplewise(values, sample_weight, mean=True)
        self.total.data[...] += float(np.sum(v))
        if w is not None:
            self.count.data[...] += float(np.sum(w))
        else:
            self.count.data[...] += v.shape[0] if v.ndim else 1

    def result(self):
        count = float(self.count.data)
        return float(self.total.data) / count if count else 0.0


class Sum(Metric):
    """Weighted running sum of the values it is given (state: ``total``)."""

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), "zeros", name="total")

    def reset_state(self):
        self.total.data[...] = 0

    def update_state(self, values, sample_weight=None):
        v, _ = _reduce_samplewise(values, sample_weight, mean=False)
        self.total.data[...] += float(np.sum(v))

    def result(self):
        return float(self.total.data)


class MeanMetricWrapper(Mean):
    """Running mean of a per-sample metric function ``fn(y_true, y_pred, **kwargs)``."""

    _config_keys = None     # subclasses: the constructor arguments get_config reports

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self.fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name=name or getattr(fn, "__name__", None), dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self.fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self):
        config = {"name": self.name, "dtype": self.dtype}
        if self._config_keys is None:
            fn = self.fn
            config["fn"] = fn.__name__ if _FUNCTIONS.get(getattr(fn, "__name__", None)) is fn \
                else fn
            config.update(self._fn_kwargs)
        else:
            config.update({k: getattr(self, k) for k in self._config_keys})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if cls is MeanMetricWrapper and isinstance(config.get("fn"), str):
            config["fn"] = _FUNCTIONS[config["fn"]]
        return cls(**config)


class Accuracy(MeanMetricWrapper):
    _config_keys = ()

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    _config_keys = ("threshold",)

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        self.threshold = threshold
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    _config_keys = ()

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    _config_keys = ()

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target is among the ``k`` highest predictions."""
    _config_keys = ("k",)

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        _check_positive_int("k", k)
        self.k = k
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer target is among the ``k`` highest predictions."""
    _config_keys = ("k",)

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None,
                 from_sorted_ids=False):
        _check_positive_int("k", k)
        self.k = k
        self.from_sorted_ids = from_sorted_ids
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)

    def get_config(self):
        config = super().get_config()
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config


class MeanSquaredError(MeanMetricWrapper):
    _config_keys = ()

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    _config_keys = ()

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, dtype=dtype)


class MeanAbsolutePercentageError(MeanMetricWrapper):
    _config_keys = ()

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, name=name, dtype=dtype)


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    _config_keys = ()

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, name=name, dtype=dtype)


class RootMeanSquaredError(Mean):
    """sqrt of the (weighted) running mean of the squared errors."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _same_rank(_f32(y_true).astype(np.float64),
                                    _f32(y_pred).astype(np.float64))
        super().update_state((y_pred - y_true) ** 2, sample_weight=sample_weight)

    def result(self):
        return float(np.sqrt(super().result()))


class BinaryCrossentropy(MeanMetricWrapper):
    _config_keys = ("from_logits", "label_smoothing")

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0):
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        super().__init__(binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)


class CategoricalCrossentropy(MeanMetricWrapper):
    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0, axis=-1):
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        super().__init__(categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    _config_keys = ("from_logits", "ignore_class", "axis")

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False,
                 ignore_class=None, axis=-1):
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis
        super().__init__(sparse_categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class, axis=axis)

    def update_state(self, y_true, y_pred, sample_weight=None):
        values, valid = _sparse_cce(y_true, y_pred, self.from_logits, self.ignore_class,
                                    self.axis)
        if valid is not None and sample_weight is not None:
            # as Keras 3: the ignored entries are masked out of the weights when weights are
            # given; unweighted, they count as zeros in the mean
            mask, sw = _same_rank(valid.astype(np.float64),
                                  np.asarray(_np(sample_weight), dtype=np.float64))
            sample_weight = sw * mask
        Mean.update_state(self, values, sample_weight)


# ----------------------------------------------------------------- confusion metrics
def _parse_thresholds(thresholds, default):
    """A list of thresholds; user values must lie in [0, 1] (Keras's parse_init_thresholds)."""
    if thresholds is None:
        return [default]
    values = list(np.ravel(np.asarray(thresholds, dtype=object))) \
        if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    bad = [t for t in values if t is None or not 0 <= t <= 1]
    if bad:
        raise ValueError(f"Invalid `thresholds` argument: values must be in [0, 1]. "
                         f"Received: thresholds={thresholds!r}")
    return [float(t) for t in values]


def _evenly_distributed(thresholds):
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _filter_top_k(x, k):
    """Keep the ``k`` largest entries on the last axis; the others become NEG_INF."""
    idx = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(x.shape, dtype=np.float32)
    np.put_along_axis(mask, idx, 1.0, axis=-1)
    return (x * mask + np.float32(NEG_INF) * (1 - mask)).astype(np.float32)


def _confusion_counts(y_true, y_pred, thresholds, evenly=False, top_k=None, class_id=None,
                      sample_weight=None, multi_label=False, label_weights=None):
    """(tp, fp, tn, fn) per threshold (and per label when ``multi_label``), weighted, as
    Keras's ``update_confusion_matrix_variables``: an entry is predicted positive when its
    score is strictly above the threshold; labels are positive when non-zero."""
    y_true = _f32(y_true)
    y_pred = _f32(y_pred)
    y_pred, y_true = _same_rank(y_pred, y_true)
    sw = None
    if sample_weight is not None:
        sw = _f32(sample_weight)[..., None]
        _, sw = _same_rank(y_true, sw, expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(f"When class_id is provided, y_pred must be a 2D array with shape "
                             f"(num_samples, num_classes), found shape: {y_pred.shape}")
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if multi_label and y_pred.ndim != 2:
        raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found rank "
                         f"{y_pred.ndim}. Full shape received for `y_pred`: {y_pred.shape}")
    y_true = np.broadcast_to(y_true, y_pred.shape)
    weights = np.ones(y_pred.shape, dtype=np.float64) if sw is None else \
        np.broadcast_to(sw, y_pred.shape).astype(np.float64)
    if label_weights is not None and not multi_label:
        weights = weights * np.broadcast_to(np.asarray(label_weights, dtype=np.float32)[None],
                                            y_pred.shape)
    n_thr = len(thresholds)
    if not multi_label:
        y_true, y_pred, weights = y_true.reshape(-1), y_pred.reshape(-1), weights.reshape(-1)
    pos_label = y_true != 0
    true_w = np.where(pos_label, weights, 0.0)
    false_w = np.where(pos_label, 0.0, weights)
    # k = how many thresholds (in ascending order) each score is counted positive for
    if evenly:
        # Keras's bucketed path: score p falls in bucket ceil(p·(T−1)) − 1 (in float32) and
        # counts as positive for the thresholds up to its bucket
        with_eps = thresholds[0] < 0.0 or thresholds[-1] > 1.0
        p = np.clip(y_pred, np.float32(0.0), np.float32(1.0))
        bucket = np.ceil(p * np.float32(n_thr - 1)) - np.float32(1)
        if with_eps:
            bucket = np.maximum(bucket, 0)
        k = np.nan_to_num(bucket, nan=-1.0).astype(np.int64) + 1
        order = None
    else:
        thr = np.asarray(thresholds, dtype=np.float32)
        order = np.argsort(thr, kind="stable")
        k = np.searchsorted(thr[order], y_pred, side="left")   # thresholds strictly below p
        k = np.where(np.isnan(y_pred), 0, k)
    k = np.clip(k, 0, n_thr)

    def by_threshold(w):
        if multi_label:
            n_lab = y_pred.shape[1]
            idx = np.arange(n_lab)[None, :] * (n_thr + 1) + k
            hist = np.bincount(idx.reshape(-1), weights=w.reshape(-1),
                               minlength=n_lab * (n_thr + 1)).reshape(n_lab, n_thr + 1)
        else:
            hist = np.bincount(k, weights=w, minlength=n_thr + 1)[None]
        counts = np.flip(np.cumsum(np.flip(hist, -1), -1), -1)[:, 1:]   # (labels, T)
        if order is not None:
            out = np.empty_like(counts)
            out[:, order] = counts
            counts = out
        return counts.T if multi_label else counts[0]

    tp, fp = by_threshold(true_w), by_threshold(false_w)
    total_true, total_false = true_w.sum(axis=0), false_w.sum(axis=0)
    tn = total_false - fp
    fn = total_true - tp
    return tp, fp, tn, fn


class _ConfusionMatrixConditionCount(Metric):
    _cond = None

    def __init__(self, thresholds=None, name=None, dtype=None):
        self.init_thresholds = thresholds
        self.thresholds = _parse_thresholds(thresholds, 0.5)
        self._thresholds_distributed_evenly = _evenly_distributed(self.thresholds)
        super().__init__(name=name, dtype=dtype)
        self.accumulator = self.add_variable((len(self.thresholds),), "zeros",
                                             name="accumulator")

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts = dict(zip(("tp", "fp", "tn", "fn"), _confusion_counts(
            y_true, y_pred, self.thresholds, evenly=self._thresholds_distributed_evenly,
            sample_weight=sample_weight)))
        self.accumulator.data[...] += counts[self._cond]

    def result(self):
        acc = self.accumulator.data
        return float(acc[0]) if len(self.thresholds) == 1 else acc.copy()

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """Weighted count of positive labels predicted positive (score > threshold)."""
    _cond = "tp"


class FalsePositives(_ConfusionMatrixConditionCount):
    """Weighted count of negative labels predicted positive (score > threshold)."""
    _cond = "fp"


class TrueNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of negative labels predicted negative (score <= threshold)."""
    _cond = "tn"


class FalseNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of positive labels predicted negative (score <= threshold)."""
    _cond = "fn"


class _PrecisionRecall(Metric):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        _check_positive_int("top_k", top_k, allow_none=True)
        if class_id is not None and (isinstance(class_id, bool) or
                                     not isinstance(class_id, (int, np.integer)) or class_id < 0):
            raise ValueError(f"Invalid `class_id` argument: expected an integer >= 0. "
                             f"Received: class_id={class_id!r}")
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self.thresholds = _parse_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self._thresholds_distributed_evenly = _evenly_distributed(self.thresholds)
        super().__init__(name=name, dtype=dtype)
        n = len(self.thresholds)
        self.true_positives = self.add_variable((n,), "zeros",
                                                name="true_positives")
        self.false_positives = self.add_variable((n,), "zeros",
                                                 name="false_positives")
        self.false_negatives = self.add_variable((n,), "zeros",
                                                 name="false_negatives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, fp, _, fn = _confusion_counts(
            y_true, y_pred, self.thresholds, evenly=self._thresholds_distributed_evenly,
            top_k=self.top_k, class_id=self.class_id, sample_weight=sample_weight)
        self.true_positives.data[...] += tp
        self.false_positives.data[...] += fp
        self.false_negatives.data[...] += fn

    def _value(self):
        raise NotImplementedError

    def result(self):
        r = self._value()
        return float(r[0]) if len(self.thresholds) == 1 else r

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """TP / (TP + FP) at each threshold (a scalar for a single threshold; 0 when undefined).

    ``top_k`` counts only the k highest scores of each sample as candidates; ``class_id``
    restricts to one column of a multi-class output."""

    def _value(self):
        tp = self.true_positives.data
        return _div_no_nan(tp, tp + self.false_positives.data)


class Recall(_PrecisionRecall):
    """TP / (TP + FN) at each threshold (a scalar for a single threshold; 0 when undefined)."""

    def _value(self):
        tp = self.true_positives.data
        return _div_no_nan(tp, tp + self.false_negatives.data)


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(Metric):
    """Area under the ROC or PR curve, from confusion counts at ``num_thresholds`` thresholds
    ([−ε, 1/(n−1), …, (n−2)/(n−1), 1 + ε]) — Keras's approximation, not the exact AUC.

    ``summation_method="interpolation"`` uses the trapezoidal rule for ROC and, for PR,
    Davis & Goadrich's interpolation of precision between thresholds;
    ``"minoring"``/``"majoring"`` take the lower/upper Riemann sum."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        curve_key = str(curve).lower() if isinstance(curve, str) else None
        if curve_key not in _CURVES:
            raise ValueError(f'Invalid `curve` argument value "{curve}". Expected one of: '
                             f'["ROC", "PR", "PRGAIN"]. Received: curve={curve!r}')
        summ_key = str(summation_method).lower() if isinstance(summation_method, str) else None
        if summ_key not in _SUMMATIONS:
            raise ValueError(f'Invalid `summation_method` argument value "{summation_method}". '
                             f'Expected one of: {list(_SUMMATIONS)}. '
                             f'Received: summation_method={summation_method!r}')
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            thresholds = sorted(_parse_thresholds(thresholds, 0.5))
            self.num_thresholds = len(thresholds) + 2
            self._thresholds_distributed_evenly = _evenly_distributed(
                np.array([0.0] + thresholds + [1.0]))
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)) \
                    or num_thresholds <= 1:
                raise ValueError(f"Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds!r}")
            self.num_thresholds = int(num_thresholds)
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        self._thresholds = np.array([0.0 - EPSILON] + thresholds + [1.0 + EPSILON])
        self.curve = _CURVES[curve_key]
        self.summation_method = summ_key
        if num_labels and not multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else \
            np.asarray(label_weights, dtype=np.float32)
        self._from_logits = from_logits
        self._num_labels = num_labels if multi_label else None
        super().__init__(name=name, dtype=dtype)      # auto-named auc, auc_1, … as Keras
        self.true_positives = self.false_positives = None
        self.true_negatives = self.false_negatives = None
        if not self.multi_label or self._num_labels is not None:
            self._build()

    def _build(self):
        shape = (self.num_thresholds, self._num_labels) if self.multi_label \
            else (self.num_thresholds,)
        for n in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            setattr(self, n, self.add_variable(shape, "zeros", name=n))

    @property
    def thresholds(self):
        return list(self._thresholds)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _f32(y_pred)
        if self.multi_label and self.true_positives is None:
            if y_pred.ndim != 2:
                raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found "
                                 f"rank {y_pred.ndim}. Full shape received for `y_pred`: "
                                 f"{y_pred.shape}")
            self._num_labels = y_pred.shape[1]
            self._build()
        if self._from_logits:
            y_pred = (1.0 / (1.0 + np.exp(-y_pred.astype(np.float64)))).astype(np.float32)
        tp, fp, tn, fn = _confusion_counts(
            y_true, y_pred, self._thresholds, evenly=self._thresholds_distributed_evenly,
            sample_weight=sample_weight, multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights)
        self.true_positives.data[...] += tp
        self.false_positives.data[...] += fp
        self.true_negatives.data[...] += tn
        self.false_negatives.data[...] += fn

    def _aggregate(self, terms):
        if not self.multi_label:
            return float(np.sum(terms))
        by_label = np.sum(terms, axis=0)
        if self.label_weights is None:
            return float(np.mean(by_label))
        lw = self.label_weights.astype(np.float64)
        return float(_div_no_nan(np.sum(by_label * lw), np.sum(lw)))

    def interpolate_pr_auc(self):
        """Davis & Goadrich (2006): precision interpolated between thresholds along recall."""
        tp, fp, fn = self.true_positives.data, self.false_positives.data, \
            self.false_negatives.data
        n = self.num_thresholds
        dtp = tp[:n - 1] - tp[1:]
        p = tp + fp
        dp = p[:n - 1] - p[1:]
        prec_slope = _div_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - prec_slope * p[1:]
        both = (p[:n - 1] > 0) & (p[1:] > 0)
        safe_p_ratio = np.where(both, _div_no_nan(p[:n - 1], np.maximum(p[1:], 0)), 1.0)
        increment = _div_no_nan(prec_slope * (dtp + intercept * np.log(safe_p_ratio)),
                                np.maximum(tp[1:] + fn[1:], 0))
        return self._aggregate(increment)

    def result(self):
        if self.true_positives is None:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self.interpolate_pr_auc()
        tp, fp, tn, fn = (self.true_positives.data, self.false_positives.data,
                          self.true_negatives.data, self.false_negatives.data)
        recall = _div_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _div_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _div_no_nan(tp, tp + fp)
        else:                                                   # PRGAIN
            scale = _div_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scale * _div_no_nan(fn, tp)
            precision_gain = 1.0 - scale * _div_no_nan(fp, tp)
            recall_gain = np.maximum(np.where(tp == 0, 0.0, recall_gain), 0.0)
            precision_gain = np.where(tp == 0, 1.0, precision_gain)
            x, y = recall_gain, precision_gain
        n = self.num_thresholds
        if self.summation_method == "interpolation":
            heights = (y[:n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:n - 1], y[1:])
        else:
            heights = np.maximum(y[:n - 1], y[1:])
        return self._aggregate((x[:n - 1] - x[1:]) * heights)

    def get_config(self):
        config = {**super().get_config(), "num_thresholds": self.num_thresholds,
                  "curve": self.curve, "summation_method": self.summation_method,
                  "multi_label": self.multi_label, "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None
                  else self.label_weights.tolist(),
                  "from_logits": self._from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


class FBetaScore(Metric):
    """F-beta from per-class TP/FP/FN: (1 + β²)·P·R / (β²·P + R).

    Predictions are binarised with ``threshold`` (``y_pred > threshold``), or, with
    ``threshold=None``, the highest score of each row counts as 1.  ``average=None`` returns
    one score per class; ``"micro"`` pools the counts; ``"macro"`` averages the class scores;
    ``"weighted"`` weights them by each class's (weighted) number of true labels."""

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"Invalid `average` argument value. Expected one of: {{None, "
                             f"'micro', 'macro', 'weighted'}}. Received: average={average!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating, np.integer)):
            raise ValueError(f"Invalid `beta` argument value. It should be a Python float. "
                             f"Received: beta={beta!r} of type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. "
                             f"Received: beta={beta!r}")
        if threshold is not None:
            if isinstance(threshold, bool) or \
                    not isinstance(threshold, (int, float, np.floating, np.integer)):
                raise ValueError(f"Invalid `threshold` argument value. It should be a Python "
                                 f"float. Received: threshold={threshold!r} of type "
                                 f"'{type(threshold)}'")
            if threshold > 1.0 or threshold <= 0.0:
                raise ValueError(f"Invalid `threshold` argument value. It should verify "
                                 f"0 < threshold <= 1. Received: threshold={threshold!r}")
            threshold = float(threshold)
        self.average = average
        self.beta = float(beta)
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self._num_classes = None
        super().__init__(name=name, dtype=dtype)
        self.true_positives = self.false_positives = None
        self.false_negatives = self.intermediate_weights = None

    def _build(self):
        shape = () if self.average == "micro" else (self._num_classes,)
        for n in ("true_positives", "false_positives", "false_negatives", "intermediate_weights"):
            setattr(self, n, self.add_variable(shape, "zeros", name=n))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _f32(y_true), _f32(y_pred)
        if y_pred.ndim != 2 or y_true.ndim != 2:
            raise ValueError(f"{type(self).__name__} expects 2D inputs with shape (batch_size, "
                             f"output_dim). Received input shapes: y_pred.shape={y_pred.shape} "
                             f"and y_true.shape={y_true.shape}.")
        if self._num_classes is None:
            self._num_classes = y_pred.shape[-1]
            self._build()
        elif y_pred.shape[-1] != self._num_classes:
            raise ValueError(f"{type(self).__name__}: y_pred has {y_pred.shape[-1]} classes, "
                             f"but the metric was built for {self._num_classes}")
        if self.threshold is None:
            top = np.max(y_pred, axis=-1, keepdims=True)
            pred = (y_pred >= top) & (np.abs(y_pred) > 1e-9)
        else:
            pred = y_pred > np.float32(self.threshold)
        pred = pred.astype(np.float64)
        t = y_true.astype(np.float64)
        w = None if sample_weight is None else \
            np.asarray(_np(sample_weight), dtype=np.float64).reshape(-1)[:, None]

        def wsum(v):
            if w is not None:
                v = v * w
            return np.sum(v, axis=self.axis)
        self.true_positives.data[...] += wsum(pred * t)
        self.false_positives.data[...] += wsum(pred * (1 - t))
        self.false_negatives.data[...] += wsum((1 - pred) * t)
        self.intermediate_weights.data[...] += wsum(t)

    def result(self):
        if self.true_positives is None:
            return 0.0
        tp = self.true_positives.data
        precision = tp / (tp + self.false_positives.data + EPSILON)
        recall = tp / (tp + self.false_negatives.data + EPSILON)
        b2 = self.beta ** 2
        score = precision * recall / (b2 * precision + recall + EPSILON) * (1 + b2)
        if self.average == "weighted":
            iw = self.intermediate_weights.data
            weights = iw / (np.sum(iw) + EPSILON)
            score = np.sum(score * weights)
        elif self.average is not None:
            score = np.mean(score)
        return _scalar_or_array(score)

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """:class:`FBetaScore` with β = 1: the harmonic mean of precision and recall."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


# ------------------------------------------------- loss-valued and correlation metrics
# As in Keras 3, these metric functions are the loss functions themselves.
hinge = _losses.hinge
squared_hinge = _losses.squared_hinge
categorical_hinge = _losses.categorical_hinge
kl_divergence = _losses.kl_divergence
log_cosh = _losses.log_cosh
poisson = _losses.poisson
huber = _losses.huber
binary_focal_crossentropy = _losses.binary_focal_crossentropy
categorical_focal_crossentropy = _losses.categorical_focal_crossentropy


def _float_pair(y_true, y_pred):
    y_pred = _np(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(np.float32)
    y_true = np.asarray(_np(y_true), dtype=y_pred.dtype)
    y_true, y_pred = _same_rank(y_true, y_pred)
    return y_true, y_pred


def pearson_correlation(y_true, y_pred, axis=-1):
    """Pearson's correlation of y_true and y_pred along ``axis``: the mean of the product of
    the two centred, standardised (population std) signals."""
    y_true, y_pred = _float_pair(y_true, y_pred)
    t = y_true - np.mean(y_true, axis=axis, keepdims=True)
    p = y_pred - np.mean(y_pred, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = t / np.std(t, axis=axis, keepdims=True)
        p = p / np.std(p, axis=axis, keepdims=True)
    return np.mean(t * p, axis=axis)


def concordance_correlation(y_true, y_pred, axis=-1):
    """Lin's concordance correlation along ``axis``, as Keras 3.15 computes it:
    mean(2·(y_true − ȳ_pred)(y_pred − ȳ_pred) / (var y_true + var y_pred + (ȳ_true − ȳ_pred)² + ε))."""
    y_true, y_pred = _float_pair(y_true, y_pred)
    mt = np.mean(y_true, axis=axis, keepdims=True)
    mp = np.mean(y_pred, axis=axis, keepdims=True)
    vt = np.var(y_true - mt, axis=axis, keepdims=True)
    vp = np.var(y_pred - mp, axis=axis, keepdims=True)
    covar = (y_true - mp) * (y_pred - mp)
    norm = vt + vp + np.square(mt - mp)
    return np.mean(2 * covar / (norm + y_pred.dtype.type(EPSILON)), axis=axis)


def _cosine_similarity(y_true, y_pred, axis=-1):
    """Σ over ``axis`` of the L2-normalised y_true · y_pred (+1 for the same direction)."""
    y_true, y_pred = _float_pair(y_true, y_pred)

    def unit(x):
        with np.errstate(divide="ignore"):
            inv = 1.0 / np.sqrt(np.sum(np.square(x), axis=axis, keepdims=True))
        return x * np.minimum(inv, x.dtype.type(1.0 / EPSILON))
    return np.sum(unit(y_true) * unit(y_pred), axis=axis)


_cosine_similarity.__name__ = "cosine_similarity"


class Hinge(MeanMetricWrapper):
    """Running mean of the hinge loss (labels in {0, 1} mapped to {−1, 1})."""
    _config_keys = ()

    def __init__(self, name="hinge", dtype=None):
        super().__init__(hinge, name=name, dtype=dtype)


class SquaredHinge(MeanMetricWrapper):
    """Running mean of the squared hinge loss."""
    _config_keys = ()

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, name=name, dtype=dtype)


class CategoricalHinge(MeanMetricWrapper):
    """Running mean of the categorical hinge loss."""
    _config_keys = ()

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, name=name, dtype=dtype)


class KLDivergence(MeanMetricWrapper):
    """Running mean of Σ y_true·log(y_true / y_pred), both clipped to [ε, 1]."""
    _config_keys = ()

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, name=name, dtype=dtype)


class Poisson(MeanMetricWrapper):
    """Running mean of mean(y_pred − y_true·log(y_pred + ε))."""
    _config_keys = ()

    def __init__(self, name="poisson", dtype=None):
        super().__init__(poisson, name=name, dtype=dtype)


class LogCoshError(MeanMetricWrapper):
    """Running mean of mean(log cosh(y_pred − y_true))."""
    _config_keys = ()

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(log_cosh, name=name, dtype=dtype)


class CosineSimilarity(MeanMetricWrapper):
    """Running mean of the cosine similarity along ``axis`` (+1 for identical directions).

    As Keras 3.15, ``get_config`` holds the name and dtype only (``axis`` is not kept)."""
    _config_keys = ()

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(_cosine_similarity, name=name, dtype=dtype, axis=axis)


class PearsonCorrelation(MeanMetricWrapper):
    """Running mean of the per-sample Pearson correlation along ``axis``."""
    _config_keys = ("axis",)

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        self.axis = axis
        super().__init__(pearson_correlation, name=name, dtype=dtype, axis=axis)


class ConcordanceCorrelation(MeanMetricWrapper):
    """Running mean of the per-sample concordance correlation along ``axis``."""
    _config_keys = ("axis",)

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        self.axis = axis
        super().__init__(concordance_correlation, name=name, dtype=dtype, axis=axis)


class R2Score(Metric):
    """Coefficient of determination 1 − SS_res / SS_tot per output column, from running
    weighted sums, aggregated by ``class_aggregation`` (``"uniform_average"``,
    ``"variance_weighted_average"`` or None for one score per column); ``num_regressors`` > 0
    gives the adjusted R²."""

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        valid = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in valid:
            raise ValueError(f"Invalid value for argument `class_aggregation`. Expected one of "
                             f"{valid}. Received: class_aggregation={class_aggregation}")
        if isinstance(num_regressors, bool) or \
                not isinstance(num_regressors, (int, np.integer)) or num_regressors < 0:
            raise ValueError(f"Invalid value for argument `num_regressors`. Expected a value "
                             f">= 0. Received: num_regressors={num_regressors}")
        self.class_aggregation = class_aggregation
        self.num_regressors = int(num_regressors)
        self.num_samples = self.add_variable((), "zeros", name="num_samples")
        self.squared_sum = self.sum = self.total_mse = self.count = None
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError(f"R2Score expects 2D inputs with shape (batch_size, output_dim). "
                             f"Received input shapes: y_pred.shape={y_pred_shape} and "
                             f"y_true.shape={y_true_shape}.")
        n = y_pred_shape[-1]
        self.squared_sum = self.add_variable((n,), "zeros", name="squared_sum")
        self.sum = self.add_variable((n,), "zeros", name="sum")
        self.total_mse = self.add_variable((n,), "zeros", name="residual")
        self.count = self.add_variable((n,), "zeros", name="count")
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _same_rank(_f32(y_true).astype(np.float64),
                                    _f32(y_pred).astype(np.float64))
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        elif y_pred.ndim != 2 or y_pred.shape[-1] != self.sum.shape[0]:
            raise ValueError(f"R2Score: expected y_pred of shape (batch_size, "
                             f"{self.sum.shape[0]}), received {y_pred.shape}")
        if y_true.shape != y_pred.shape:
            raise ValueError(f"R2Score: y_true and y_pred must have the same shape, received "
                             f"{y_true.shape} and {y_pred.shape}")
        w = np.float64(1.0) if sample_weight is None else \
            np.asarray(_f32(sample_weight), dtype=np.float64)
        if w.ndim == 1:
            w = w[:, None]
        try:
            w = np.broadcast_to(w, y_true.shape)
        except ValueError:
            raise ValueError(f"R2Score: sample_weight of shape {np.shape(w)} cannot be "
                             f"broadcast to y_true's shape {y_true.shape}") from None
        wy = y_true * w
        self.sum.data[...] += np.sum(wy, axis=0)
        self.squared_sum.data[...] += np.sum(y_true * wy, axis=0)
        self.total_mse.data[...] += np.sum((y_true - y_pred) ** 2 * w, axis=0)
        self.count.data[...] += np.sum(w, axis=0)
        self.num_samples.data[...] += y_true.size

    def result(self):
        if not self._built:
            return 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = self.sum.data / self.count.data
            total = self.squared_sum.data - self.sum.data * mean
            raw = 1 - self.total_mse.data / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = np.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            with np.errstate(divide="ignore", invalid="ignore"):
                score = np.sum(total * raw) / np.sum(total)
        else:
            score = raw
        if self.num_regressors:
            n, p = float(self.num_samples.data), float(self.num_regressors)
            if p > n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 "
                              "score. Falling back to standard R2 score.", stacklevel=2)
            elif p == n - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to standard "
                              "R2 score.", stacklevel=2)
            else:
                score = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
        return _scalar_or_array(score)

    def get_config(self):
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


# ------------------------------------------------------- metrics at a fixed operating point
class _SensitivitySpecificityBase(Metric):
    """Confusion counts at ``num_thresholds`` thresholds evenly spread over [0, 1] (0.5 alone
    for one threshold); subclasses read the best value of one rate where another meets
    ``value``."""

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if isinstance(num_thresholds, bool) or \
                not isinstance(num_thresholds, (int, np.integer)) or num_thresholds <= 0:
            raise ValueError(f"Argument `num_thresholds` must be an integer > 0. "
                             f"Received: num_thresholds={num_thresholds}")
        if class_id is not None and (isinstance(class_id, bool) or
                                     not isinstance(class_id, (int, np.integer)) or class_id < 0):
            raise ValueError(f"Invalid `class_id` argument: expected an integer >= 0. "
                             f"Received: class_id={class_id!r}")
        super().__init__(name=name, dtype=dtype)
        self.value = value
        self.class_id = class_id
        if num_thresholds == 1:
            self.thresholds = [0.5]
            self._thresholds_distributed_evenly = False
        else:
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self.thresholds = [0.0] + inner + [1.0]
            self._thresholds_distributed_evenly = True
        n = len(self.thresholds)
        for v in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            setattr(self, v, self.add_variable((n,), "zeros", name=v))

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, fp, tn, fn = _confusion_counts(
            y_true, y_pred, self.thresholds, evenly=self._thresholds_distributed_evenly,
            class_id=self.class_id, sample_weight=sample_weight)
        self.true_positives.data[...] += tp
        self.false_positives.data[...] += fp
        self.true_negatives.data[...] += tn
        self.false_negatives.data[...] += fn

    def _rates(self):
        tp, fp = self.true_positives.data, self.false_positives.data
        tn, fn = self.true_negatives.data, self.false_negatives.data
        return {"sensitivity": _div_no_nan(tp, tp + fn), "recall": _div_no_nan(tp, tp + fn),
                "specificity": _div_no_nan(tn, tn + fp), "precision": _div_no_nan(tp, tp + fp)}

    def _best(self, constrained, dependent):
        """max of ``dependent`` over the thresholds where ``constrained`` ≥ value (0 if none)."""
        r = self._rates()
        feasible = r[constrained] >= self.value
        return float(np.max(np.where(feasible, r[dependent], 0.0), initial=0.0))

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"Argument `{name}` must be a number in the range [0, 1]. "
                         f"Received: {name}={value!r}")
    if value < 0 or value > 1:
        raise ValueError(f"Argument `{name}` must be in the range [0, 1]. "
                         f"Received: {name}={value}")


class SensitivityAtSpecificity(_SensitivitySpecificityBase):
    """The best sensitivity (recall) over the thresholds whose specificity is ≥ ``specificity``."""

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        _check_rate("specificity", specificity)
        self.specificity = specificity
        self.num_thresholds = num_thresholds
        super().__init__(specificity, num_thresholds=num_thresholds, class_id=class_id,
                         name=name, dtype=dtype)

    def result(self):
        return self._best("specificity", "sensitivity")

    def get_config(self):
        return {**super().get_config(), "num_thresholds": self.num_thresholds,
                "specificity": self.specificity}


class SpecificityAtSensitivity(_SensitivitySpecificityBase):
    """The best specificity over the thresholds whose sensitivity is ≥ ``sensitivity``."""

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        _check_rate("sensitivity", sensitivity)
        self.sensitivity = sensitivity
        self.num_thresholds = num_thresholds
        super().__init__(sensitivity, num_thresholds=num_thresholds, class_id=class_id,
                         name=name, dtype=dtype)

    def result(self):
        return self._best("sensitivity", "specificity")

    def get_config(self):
        return {**super().get_config(), "num_thresholds": self.num_thresholds,
                "sensitivity": self.sensitivity}


class PrecisionAtRecall(_SensitivitySpecificityBase):
    """The best precision over the thresholds whose recall is ≥ ``recall``."""

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        _check_rate("recall", recall)
        self.recall = recall
        self.num_thresholds = num_thresholds
        super().__init__(recall, num_thresholds=num_thresholds, class_id=class_id, name=name,
                         dtype=dtype)

    def result(self):
        return self._best("recall", "precision")

    def get_config(self):
        return {**super().get_config(), "num_thresholds": self.num_thresholds,
                "recall": self.recall}


class RecallAtPrecision(_SensitivitySpecificityBase):
    """The best recall over the thresholds whose precision is ≥ ``precision``."""

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        _check_rate("precision", precision)
        self.precision = precision
        self.num_thresholds = num_thresholds
        super().__init__(precision, num_thresholds=num_thresholds, class_id=class_id,
                         name=name, dtype=dtype)

    def result(self):
        return self._best("precision", "recall")

    def get_config(self):
        return {**super().get_config(), "num_thresholds": self.num_thresholds,
                "precision": self.precision}


# --------------------------------------------------------------------------- IoU
def _to_int(x, dtype):
    """Cast to the metric's integer dtype as Keras does (floats truncated toward zero)."""
    a = np.asarray(_np(x))
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            a = np.trunc(a)
    return a.astype(dtype)


class _IoUBase(Metric):
    """A running (num_classes, num_classes) confusion matrix: rows true classes, columns
    predicted; labels outside [0, num_classes) (and ``ignore_class``) are left out."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes < 1:
            raise ValueError(f"Invalid `num_classes` argument: expected an integer >= 1. "
                             f"Received: num_classes={num_classes!r}")
        super().__init__(name=name, dtype=dtype or "int")
        self.num_classes = int(num_classes)
        self.ignore_class = ignore_class
        self.sparse_y_true = sparse_y_true
        self.sparse_y_pred = sparse_y_pred
        self.axis = axis
        self.total_cm = self.add_variable((self.num_classes, self.num_classes), "zeros",
                                          name="total_confusion_matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        dt = np.dtype(self.dtype)
        if not self.sparse_y_true:
            y_true = np.argmax(_np(y_true), axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = np.argmax(_np(y_pred), axis=self.axis)
        t = _to_int(y_true, dt).reshape(-1)
        p = _to_int(y_pred, dt).reshape(-1)
        if t.shape != p.shape:
            raise ValueError(f"{type(self).__name__}: y_true and y_pred hold {t.size} and "
                             f"{p.size} labels")
        if sample_weight is None:
            w = np.ones(t.shape, dtype=dt)
        else:
            sw = np.asarray(_np(sample_weight))
            if sw.dtype.kind == "f" and dt.kind in "iu":
                warnings.warn("You are passing weight as `float`, but dtype is `int`. This may "
                              "result in an incorrect weight due to type casting Consider "
                              "using integer weights.", stacklevel=2)
            w = _to_int(sw, dt) if dt.kind in "iu" else sw.astype(dt)
            w = np.broadcast_to(w.reshape(-1) if w.ndim > 1 else w, t.shape)
        n = self.num_classes
        keep = (t >= 0) & (t < n) & (p >= 0) & (p < n)
        if self.ignore_class is not None:
            keep &= t != self.ignore_class
        t, p, w = t[keep].astype(np.int64), p[keep].astype(np.int64), w[keep]
        cm = np.bincount(t * n + p, weights=w.astype(np.float64), minlength=n * n)
        self.total_cm.data[...] += cm.reshape(n, n).astype(dt)


class IoU(_IoUBase):
    """Intersection over union TP / (TP + FP + FN), averaged over ``target_class_ids`` (the
    classes that occur in y_true or y_pred)."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(name=name, num_classes=num_classes, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis,
                         dtype=dtype)
        ids = list(target_class_ids)
        if not ids:
            raise ValueError("IoU: `target_class_ids` must name at least one class")
        if max(ids) >= num_classes:
            raise ValueError(f"Target class id {max(ids)} is out of range, which is "
                             f"[0, {num_classes}).")
        self.target_class_ids = ids

    def result(self):
        cm = self.total_cm.data.astype(np.float64)
        tp = np.diag(cm)
        denom = cm.sum(axis=0) + cm.sum(axis=1) - tp
        ids = np.asarray(self.target_class_ids, dtype=np.int64)
        tp = tp[ids].astype(np.float32)
        denom = denom[ids].astype(np.float32)
        valid = denom > 1e-9
        iou = np.where(valid, tp / (denom + np.float32(EPSILON)), np.float32(0.0))
        return float(np.sum(iou) / (np.sum(valid, dtype=np.float32) + np.float32(EPSILON)))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of binary labels, predictions counting as 1 when ≥ ``threshold``."""

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name,
                         dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        p = (_f32(y_pred) >= np.float32(self.threshold)).astype(np.int64)
        return super().update_state(y_true, p, sample_weight)

    def get_config(self):
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold,
                "name": self.name, "dtype": self.dtype}


class MeanIoU(IoU):
    """IoU averaged over all ``num_classes`` classes."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(name=name, num_classes=num_classes,
                         target_class_ids=list(range(num_classes)) if isinstance(
                             num_classes, (int, np.integer)) else [0],
                         axis=axis, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class OneHotIoU(IoU):
    """IoU with one-hot y_true (and scores or one-hot y_pred, argmaxed along ``axis``)."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes=num_classes, target_class_ids=target_class_ids, name=name,
                         dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        return {"num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                "name": self.name, "dtype": self.dtype, "ignore_class": self.ignore_class,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class OneHotMeanIoU(MeanIoU):
    """MeanIoU with one-hot y_true (and scores or one-hot y_pred, argmaxed along ``axis``)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False,
                 axis=-1):
        super().__init__(num_classes=num_classes, axis=axis, name=name, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


# ------------------------------------------------------------- whole-array utilities
def _as_labels(y):
    """Integer class labels from labels, one-hot rows or probability rows (argmaxed); a
    single column of probabilities (non-integer values) is thresholded at 0.5."""
    y = np.asarray(_np(y))
    if y.ndim >= 2 and y.shape[-1] > 1:
        return np.argmax(y, axis=-1).reshape(-1)
    if y.ndim >= 2:
        y = y[..., 0]
    y = y.reshape(-1)
    if np.issubdtype(y.dtype, np.floating) and np.any(y != np.round(y)):
        return (y > 0.5).astype(np.int64)
    if np.issubdtype(y.dtype, np.bool_):
        return y.astype(np.int64)
    return y.astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes=None, sample_weight=None):
    """The (num_classes, num_classes) confusion matrix: rows are true classes, columns
    predicted classes, entry [i, j] counts (or sums ``sample_weight`` over) the samples of
    class i predicted as j.

    Labels may be integers or one-hot / probability rows (argmaxed).  ``num_classes``
    defaults to the largest label + 1, so every class id has its row even when a class never
    occurs (scikit-learn lists only the labels present)."""
    t, p = _as_labels(y_true), _as_labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"confusion_matrix: y_true and y_pred hold {t.size} and {p.size} "
                         f"labels")
    if t.size and (t.min() < 0 or p.min() < 0):
        raise ValueError("confusion_matrix: labels must be non-negative integers")
    n = int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    if num_classes is None:
        num_classes = n
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < n:
        raise ValueError(f"Invalid `num_classes` argument: expected an integer >= the largest "
                         f"label + 1 ({n}). Received: num_classes={num_classes!r}")
    if sample_weight is None:
        w, dtype = None, np.int64
    else:
        w, dtype = np.broadcast_to(np.asarray(_np(sample_weight), dtype=np.float64).reshape(-1),
                                   t.shape), np.float64
    flat = np.bincount(t * num_classes + p, weights=w, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(dtype)


_HEADERS = ("precision", "recall", "f1-score", "support")


def classification_report(y_true, y_pred, target_names=None, digits=2, output_dict=False):
    """Per-class precision, recall, F1 and support, with accuracy, macro and weighted
    averages — the layout (text, or a dict with ``output_dict=True``) of scikit-learn's
    ``classification_report``.  Classes are the labels present in y_true or y_pred (or all
    ``len(target_names)`` classes when that many names are given); undefined ratios are 0."""
    t, p = _as_labels(y_true), _as_labels(y_pred)
    labels = np.union1d(t, p)
    if target_names is not None:
        target_names = [str(n) for n in target_names]
        if len(target_names) != len(labels):
            if len(target_names) > labels.max(initial=-1):
                labels = np.arange(len(target_names))
            else:
                raise ValueError(f"Number of classes, {len(labels)}, does not match size of "
                                 f"target_names, {len(target_names)}")
    else:
        target_names = [str(l) for l in labels]
    cm = confusion_matrix(t, p, num_classes=int(max(labels.max(initial=-1) + 1, 1)))
    cm = cm[np.ix_(labels, labels)].astype(np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _div_no_nan(tp, predicted)
    recall = _div_no_nan(tp, support)
    f1 = _div_no_nan(2 * precision * recall, precision + recall)
    total = support.sum()
    acc = float(tp.sum() / total) if total else 0.0
    macro = [float(precision.mean()), float(recall.mean()), float(f1.mean()), float(total)]
    wts = _div_no_nan(support, total)
    weighted = [float((precision * wts).sum()), float((recall * wts).sum()),
                float((f1 * wts).sum()), float(total)]
    rows = list(zip(target_names, precision, recall, f1, support))
    if output_dict:
        out = {name: dict(zip(_HEADERS, [float(v) for v in vals])) for name, *vals in rows}
        out["accuracy"] = acc
        out["macro avg"] = dict(zip(_HEADERS, macro))
        out["weighted avg"] = dict(zip(_HEADERS, weighted))
        return out
    width = max(max(len(n) for n in target_names), len("weighted avg"), digits)
    report = ("{:>{width}s} " + " {:>9}" * 4).format("", *_HEADERS, width=width) + "\n\n"
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    for name, pr, rc, f, s in rows:
        report += row_fmt.format(name, pr, rc, f, int(s), width=width, digits=digits)
    report += "\n"
    report += ("{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n").format(
        "accuracy", "", "", acc, int(total), width=width, digits=digits)
    for heading, avg in (("macro avg", macro), ("weighted avg", weighted)):
        report += row_fmt.format(heading, *avg[:3], int(avg[3]), width=width, digits=digits)
    return report


def specificity(y_true, y_pred, threshold=0.5):
    """True-negative rate TN / (TN + FP) for binary labels (0 when there are no negatives).

    ``y_pred`` may hold 0/1 labels or scores; scores are positive when > ``threshold``."""
    t = np.asarray(_np(y_true)).reshape(-1) != 0
    yp = np.asarray(_np(y_pred)).reshape(-1)
    if t.shape != yp.shape:
        raise ValueError(f"specificity: y_true and y_pred hold {t.size} and {yp.size} values")
    p = yp > threshold
    tn = np.sum(~t & ~p)
    fp = np.sum(~t & p)
    return float(tn / (tn + fp)) if tn + fp else 0.0


BiasVariance = namedtuple("BiasVariance", ["bias2", "variance", "mse"])


def bias_variance(predictions, y_true):
    """Bias–variance decomposition of the squared error of an ensemble of models.

    ``predictions`` has shape (n_models, n_samples, ...) — one row of predictions per model
    (trained e.g. on different bootstrap samples) — and ``y_true`` the shape of one row.
    With ȳ(x) = mean over models of the predictions for sample x:

    * bias² = mean over samples of (ȳ(x) − y(x))²
    * variance = mean over samples of the variance across models, mean_m (ŷ_m(x) − ȳ(x))²
      (population variance, ddof = 0)
    * mse = mean over models and samples of (ŷ_m(x) − y(x))²  =  bias² + variance

    Returns a named tuple ``(bias2, variance, mse)`` of floats."""
    preds = np.asarray(_np(predictions), dtype=np.float64)
    y = np.asarray(_np(y_true), dtype=np.float64)
    if preds.ndim < 2:
        raise ValueError(f"bias_variance: predictions must have shape (n_models, n_samples, "
                         f"...), received {preds.shape}")
    if y.shape != preds.shape[1:]:
        if y.size == int(np.prod(preds.shape[1:])):
            y = y.reshape(preds.shape[1:])
        else:
            raise ValueError(f"bias_variance: y_true {y.shape} does not match one model's "
                             f"predictions {preds.shape[1:]}")
    mean_pred = preds.mean(axis=0)
    bias2 = float(np.mean((mean_pred - y) ** 2))
    variance = float(np.mean(preds.var(axis=0)))
    mse = float(np.mean((preds - y) ** 2))
    return BiasVariance(bias2, variance, mse)


# ------------------------------------------------------------------------ lookup
_METRIC_CLASSES = (Mean, Sum, Accuracy, BinaryAccuracy, CategoricalAccuracy,
                   SparseCategoricalAccuracy, TopKCategoricalAccuracy,
                   SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError,
                   RootMeanSquaredError, MeanAbsolutePercentageError,
                   MeanSquaredLogarithmicError, BinaryCrossentropy, CategoricalCrossentropy,
                   SparseCategoricalCrossentropy, TruePositives, FalsePositives, TrueNegatives,
                   FalseNegatives, Precision, Recall, AUC, FBetaScore, F1Score, Hinge,
                   SquaredHinge, CategoricalHinge, KLDivergence, Poisson, LogCoshError,
                   CosineSimilarity, PearsonCorrelation, ConcordanceCorrelation, R2Score,
                   SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall,
                   RecallAtPrecision, IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU)
_CLASSES = {c.__name__: c for c in _METRIC_CLASSES}
_CLASSES["MeanMetricWrapper"] = MeanMetricWrapper
# Keras 3's metrics.get: class names, their snake_case, and the short aliases
_BY_NAME = {_to_snake(n): c for n, c in _CLASSES.items()}
_BY_NAME.update({"bce": BinaryCrossentropy, "BCE": BinaryCrossentropy,
                 "mse": MeanSquaredError, "MSE": MeanSquaredError,
                 "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
                 "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
                 "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
                 "acc": Accuracy, "logcosh": LogCoshError, "log_cosh": LogCoshError})
_FUNCTIONS = {f.__name__: f for f in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
    top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, mean_squared_error,
    mean_absolute_error, mean_absolute_percentage_error, mean_squared_logarithmic_error,
    binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy, hinge,
    squared_hinge, categorical_hinge, kl_divergence, log_cosh, poisson, huber,
    binary_focal_crossentropy, categorical_focal_crossentropy, pearson_correlation,
    concordance_correlation)}
_VALID = sorted(set(_BY_NAME) | set(_CLASSES))


def get(identifier):
    """A metric object from a name (``"auc"``, ``"AUC"``, ``"mse"``…), a config dict
    (``{"class_name": "AUC", "config": {...}}``), a Metric class or instance, or a per-sample
    function (wrapped in :class:`MeanMetricWrapper`)."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        cls = _CLASSES.get(identifier) or _BY_NAME.get(identifier)
        if cls is None:
            fn = _FUNCTIONS.get(identifier)
            if fn is not None:
                return MeanMetricWrapper(fn, name=identifier)
            raise ValueError(f"Unknown metric {identifier!r}; valid names: {_VALID}")
        return cls()
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
        return obj if isinstance(obj, Metric) else MeanMetricWrapper(obj)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(f"Could not interpret metric identifier: {identifier!r}")


def serialize(metric):
    """The serialized form of a metric, as Keras's ``metrics.serialize``: for a Metric
    ``{"module": "keras.metrics", "class_name", "config", "registered_name"}``, for a metric
    function ``{"module": "builtins", "class_name": "function", "config": name, ...}``."""
    if isinstance(metric, Metric):
        cls = type(metric)
        builtin = _CLASSES.get(cls.__name__) is cls
        config = metric.get_config()
        if "fn" in config and callable(config["fn"]):
            config = {**config, "fn": serialize(config["fn"])}
        return {"module": "keras.metrics" if builtin else cls.__module__,
                "class_name": cls.__name__, "config": config,
                "registered_name": None if builtin else cls.__name__}
    if callable(metric) and hasattr(metric, "__name__"):
        return {"module": "builtins", "class_name": "function", "config": metric.__name__,
                "registered_name": "function"}
    raise TypeError(f"metrics.serialize: expected a Metric or a metric function, received "
                    f"{type(metric).__name__} {metric!r}")


def deserialize(config, custom_objects=None):
    """A metric from its serialized form, as Keras's ``metrics.deserialize``: a class name
    (or its snake_case, or an alias such as ``"mse"``; the class is instantiated), or a
    config dict from :func:`serialize` (``class_name`` ``"function"`` names a metric
    function).  ``custom_objects`` maps further names to classes or functions and is looked
    up first."""
    custom = dict(custom_objects or {})
    if isinstance(config, str):
        obj = custom.get(config) or _CLASSES.get(config) or _BY_NAME.get(config) or \
            _FUNCTIONS.get(config)
        if obj is None:
            raise ValueError(f"Unknown metric {config!r}; valid names: {_VALID}")
        return obj() if isinstance(obj, type) else obj
    if isinstance(config, dict):
        cls_name = config.get("class_name")
        cfg = config.get("config", {})
        if cls_name == "function":
            fn = custom.get(cfg) or _FUNCTIONS.get(cfg) if isinstance(cfg, str) else None
            if fn is None:
                raise ValueError(f"Unknown metric function {cfg!r}; valid names: "
                                 f"{sorted(_FUNCTIONS)}")
            return fn
        cls = custom.get(cls_name) or _CLASSES.get(cls_name)
        if cls is None:
            raise ValueError(f"Unknown metric {cls_name!r}; valid names: {sorted(_CLASSES)}")
        if not isinstance(cfg, dict):
            raise ValueError(f"metrics.deserialize: the config of {cls_name!r} must be a dict, "
                             f"received {cfg!r}")
        cfg = dict(cfg)
        if isinstance(cfg.get("fn"), dict):
            cfg["fn"] = deserialize(cfg["fn"], custom_objects)
        return cls.from_config(cfg)
    raise TypeError(f"metrics.deserialize: expected a name or a config dict, received "
                    f"{type(config).__name__} {config!r}")


def resolve(identifier, loss, output_shape, target_shape=None):
    """``get`` as ``compile`` uses it: a metric named by a string is named by that string
    (``"mse"`` logs as ``"mse"``, as in Keras 3), and ``"accuracy"``/``"acc"`` is resolved as
    Keras 3 does: binary for a single output unit, sparse categorical when the targets have
    fewer dimensions than the output (or one column for several units), categorical
    otherwise.  Before the targets are seen, the loss decides between sparse and
    categorical."""
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        name = identifier
        if output_shape and output_shape[-1] == 1:
            return BinaryAccuracy(name=name)
        if target_shape is not None:
            sparse = len(target_shape) < len(output_shape) or (
                target_shape[-1] == 1 and (output_shape[-1] or 2) > 1)
        else:
            lname = (getattr(loss, "name", None) or getattr(loss, "__name__", "") or "").lower()
            sparse = "sparse" in lname
        return SparseCategoricalAccuracy(name=name) if sparse else CategoricalAccuracy(name=name)
    obj = get(identifier)
    if isinstance(identifier, str):
        obj.name = identifier
    return obj
