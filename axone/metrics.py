"""Metrics: stateful objects (``update_state`` / ``result`` / ``reset_state``) and functions.

Metrics are computed on plain arrays, outside the graph.  ``"accuracy"`` in
``compile`` is resolved from the loss as Keras does: binary for
binary_crossentropy or a single output unit, sparse categorical for
sparse_categorical_crossentropy, categorical otherwise.
"""
import numpy as np

from .autograd.tensor import Tensor

__all__ = ["Metric", "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "MeanSquaredError",
           "MeanAbsoluteError", "binary_accuracy", "categorical_accuracy",
           "sparse_categorical_accuracy", "accuracy", "get", "resolve"]


def _np(x):
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "to_numpy"):
        return x.to_numpy()
    return np.asarray(x)


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


class Metric:
    """Base of stateful metrics."""

    def __init__(self, name=None, dtype=None):
        self.name = name or type(self).__name__.lower()
        self.dtype = dtype
        self.reset_state()

    def reset_state(self):
        raise NotImplementedError

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Mean(Metric):
    """Weighted running mean of the values it is given."""

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        """Add per-sample values (trailing axes averaged first, as Keras), optionally weighted."""
        v = np.asarray(_np(values), dtype=np.float64)
        if sample_weight is None:
            if v.ndim > 1:
                v = v.mean(axis=tuple(range(1, v.ndim)))
            self.total += float(v.sum())
            self.count += v.shape[0] if v.ndim else 1
            return
        w = np.asarray(_np(sample_weight), dtype=np.float64)
        if w.ndim == v.ndim + 1 and w.shape[-1] == 1:
            w = w[..., 0]
        elif v.ndim == w.ndim + 1 and v.shape[-1] == 1:
            v = v[..., 0]
        if v.ndim > w.ndim:
            v = v.mean(axis=tuple(range(w.ndim, v.ndim)))
        w = np.broadcast_to(w, v.shape)
        v = v * w
        if w.ndim > 1:
            w = w.mean(axis=tuple(range(1, w.ndim)))
        if v.ndim > 1:
            v = v.mean(axis=tuple(range(1, v.ndim)))
        self.total += float(v.sum())
        self.count += float(w.sum())

    def result(self):
        return self.total / self.count if self.count else 0.0


class Sum(Metric):
    def reset_state(self):
        self.total = 0.0

    def update_state(self, values, sample_weight=None):
        v = np.asarray(_np(values), dtype=np.float64)
        if sample_weight is not None:
            v = v * np.asarray(_np(sample_weight))
        self.total += float(v.sum())

    def result(self):
        return self.total


class MeanMetricWrapper(Mean):
    """Running mean of a per-sample metric function."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self.fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name=name or fn.__name__, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self.fn(y_true, y_pred, **self._fn_kwargs), sample_weight)


class Accuracy(MeanMetricWrapper):
    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, dtype=dtype)


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}
_CLASSES = {c.__name__: c for c in (Mean, Sum, Accuracy, BinaryAccuracy, CategoricalAccuracy,
                                     SparseCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError)}
_VALID = sorted(set(_BY_NAME) | {"accuracy", "acc"} | set(_CLASSES))


def get(identifier):
    """A metric object from a name, a config dict, an instance or a per-sample function."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
        if identifier in ("accuracy", "acc"):
            return Accuracy()
        if cls is None:
            raise ValueError(f"Unknown metric {identifier!r}; valid names: {_VALID}")
        return cls(name=identifier) if identifier in _BY_NAME else cls()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown metric {identifier.get('class_name')!r}; valid names: {_VALID}")
        return cls(**identifier.get("config", {}))
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(f"Could not interpret metric identifier: {identifier!r}")


def resolve(identifier, loss, output_shape, target_shape=None):
    """``get``, with ``"accuracy"``/``"acc"`` resolved as Keras 3 does: binary for a single
    output unit, sparse categorical when the targets have fewer dimensions than the output
    (or one column for several units), categorical otherwise.  Before the targets are seen,
    the loss decides between sparse and categorical."""
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
    return get(identifier)
