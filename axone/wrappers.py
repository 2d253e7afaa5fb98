"""keras.wrappers: scikit-learn estimators around a compiled model.

``SKLearnClassifier``, ``SKLearnRegressor`` and ``SKLearnTransformer`` make a model usable
wherever scikit-learn expects an estimator (``GridSearchCV``, ``cross_val_score``,
``Pipeline``), as Keras 3's ``keras.wrappers`` does.

``model`` is either a compiled ``Model`` (cloned with fresh weights, and compiled the same way,
at every ``fit`` unless ``warm_start=True``) or a callable called as
``model(X=X, y=y, **model_kwargs)`` that returns a compiled ``Model``; the ``y`` it receives is
the encoded target (one-hot float columns for the classifier, a ``(n, 1)`` column for a 1-D
regression target).  ``fit_kwargs`` go to ``Model.fit``; keyword arguments given to the
wrapper's ``fit`` take precedence over them.

Target handling:

* classifier: the labels (numbers or strings; binary or multiclass) are sorted into
  ``classes_`` and one-hot encoded for training; ``predict`` returns the label of the largest
  model output of each row, ``predict_proba`` / ``decision_function`` the model outputs;
  ``score`` is the accuracy.
* regressor: a 1-D target is trained as a column and ``predict`` gives a 1-D result back;
  ``score`` is R².
* transformer: ``transform(X)`` is the model's output.

scikit-learn is an optional dependency: this module imports without it, and creating a wrapper
then raises ImportError with the install hint (as Keras does).
"""
import copy

import numpy as np

from .models import Model, clone_model

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
except ImportError:  # the classes still exist; creating one says what to install
    sklearn = None

    class BaseEstimator:
        pass

    class ClassifierMixin:
        pass

    class RegressorMixin:
        pass

    class TransformerMixin:
        pass

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]


def _require_sklearn(name):
    if sklearn is None:
        raise ImportError(f"{name} requires `scikit-learn` to be installed. "
                          f"Run `pip install scikit-learn` to install it.")


def _validate_data(estimator, *args, **kwargs):
    """scikit-learn's input validation (n_features_in_, feature_names_in_, array conversion)."""
    try:
        from sklearn.utils.validation import validate_data      # scikit-learn >= 1.6
    except ImportError:
        return estimator._validate_data(*args, **kwargs)
    return validate_data(estimator, *args, **kwargs)


def _target_type(y):
    from sklearn.utils.multiclass import type_of_target
    kind = type_of_target(y)
    if kind == "unknown":
        raise ValueError(f"Unknown label type for data: {y!r}")
    return kind


def _routing_enabled():
    if sklearn is None:
        return False
    return bool(sklearn.get_config().get("enable_metadata_routing", False))


def _fresh(obj):
    """A new object with ``obj``'s configuration (optimizers, losses, metrics given as objects);
    names and plain functions are returned as they are."""
    if hasattr(obj, "get_config") and hasattr(type(obj), "from_config"):
        return type(obj).from_config(obj.get_config())
    return obj


def _fresh_nested(spec):
    if isinstance(spec, dict):
        return {k: _fresh_nested(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return type(spec)(_fresh_nested(v) for v in spec)
    return _fresh(spec)


def _compile_like(new, old):
    """Compile ``new`` with ``old``'s compile arguments (a fresh optimizer of the same config),
    as Keras 3's clone_model does for a compiled model."""
    new.compile(optimizer=_fresh(old.optimizer), loss=_fresh_nested(old._loss_spec),
                loss_weights=copy.deepcopy(old._loss_weights_spec),
                metrics=_fresh_nested(old._metrics_spec),
                weighted_metrics=_fresh_nested(old._weighted_spec))
    return new


def _check_model(model, owner, from_callable):
    """The model the wrapper trains must be a compiled Model with a loss and an optimizer."""
    if not isinstance(model, Model):
        source = ("the callable given as `model` returned" if from_callable
                  else "`model` is")
        raise TypeError(f"{owner}: `model` must be a compiled keras Model, or a callable "
                        f"returning one; {source} {type(model).__name__} {model!r:.80}")
    if not getattr(model, "compiled", False) or not model.loss or not model.optimizer:
        raise RuntimeError(f"{owner}: Given model needs to be compiled, and have a loss and an "
                           f"optimizer (model {model.name!r}: call model.compile(optimizer=..., "
                           f"loss=...) before handing it to the wrapper, or inside the callable "
                           f"given as `model`).")


class SKLBase(BaseEstimator):
    """Base of the scikit-learn wrappers.

    Args:
        model: a compiled ``Model`` (cloned with new weights and compiled the same way before
            each fit, unless ``warm_start=True``), or a callable returning one, called as
            ``model(X=X, y=y, **model_kwargs)``.
        warm_start: reuse the model of the previous fit (its weights go on training); with a
            ``Model`` given, that model itself is trained, not a clone.
        model_kwargs: keyword arguments of the callable ``model``.
        fit_kwargs: keyword arguments of ``Model.fit``; those given to ``fit`` take precedence.

    Attributes:
        model_: the fitted model.
        history_: the ``History`` returned by ``Model.fit``.
        n_features_in_: the number of input features seen by ``fit``.
    """

    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None):
        _require_sklearn(type(self).__name__)
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs

    def _more_tags(self):
        # scikit-learn < 1.6
        return {"non_deterministic": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True
        return tags

    def __sklearn_clone__(self):
        """An unfitted copy with the same parameters (``sklearn.base.clone``).  A ``Model``
        given as ``model`` is shared, not copied: fit clones it anyway."""
        model = self.model if callable(self.model) else copy.deepcopy(self.model)
        new = type(self)(model=model, warm_start=self.warm_start,
                         model_kwargs=copy.deepcopy(self.model_kwargs),
                         fit_kwargs=copy.deepcopy(self.fit_kwargs))
        if hasattr(self, "_metadata_request"):
            new._metadata_request = copy.deepcopy(self._metadata_request)
        return new

    @property
    def epoch_(self):
        """The number of epochs the last fit ran (0 before any fit)."""
        history = getattr(self, "history_", None)
        return len(getattr(history, "epoch", ())) if history is not None else 0

    def set_fit_request(self, **kwargs):
        """Request metadata (e.g. ``sample_weight=True``) to be routed to ``fit`` by
        meta-estimators; only with ``sklearn.set_config(enable_metadata_routing=True)``."""
        if not _routing_enabled():
            raise RuntimeError("This method is only available when metadata routing is enabled. "
                               "You can enable it using "
                               "sklearn.set_config(enable_metadata_routing=True).")
        from sklearn.utils.metadata_routing import MetadataRequest
        self._metadata_request = MetadataRequest(owner=type(self).__name__)
        for param, alias in kwargs.items():
            self._metadata_request.fit.add_request(param=param, alias=alias)
        return self

    def _check_params(self):
        owner = type(self).__name__
        for name in ("model_kwargs", "fit_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{owner}: `{name}` must be a dict or None, received "
                                f"{type(value).__name__} {value!r:.80}")
        if not isinstance(self.model, Model) and not callable(self.model):
            raise TypeError(f"{owner}: `model` must be a compiled keras Model, or a callable "
                            f"returning one; received {type(self.model).__name__} "
                            f"{self.model!r:.80}")
        if self.model_kwargs and isinstance(self.model, Model):
            raise ValueError(f"{owner}: `model_kwargs` are passed to a callable `model`, but "
                             f"`model` is a Model instance; received model_kwargs="
                             f"{self.model_kwargs!r:.80}")

    def _get_model(self, X, y):
        owner = type(self).__name__
        if self.warm_start and getattr(self, "model_", None) is not None:
            return self.model_
        if isinstance(self.model, Model):
            _check_model(self.model, owner, from_callable=False)
            if self.warm_start:
                return self.model
            return _compile_like(clone_model(self.model), self.model)
        model = self.model(X=X, y=y, **(self.model_kwargs or {}))
        _check_model(model, owner, from_callable=True)
        return model

    def fit(self, X, y, **kwargs):
        """Fit the model on (X, y); ``kwargs`` go to ``Model.fit`` (over ``fit_kwargs``).

        Args:
            X: array-like, shape ``(n_samples, n_features)``.
            y: array-like, shape ``(n_samples,)``.
        """
        self._check_params()
        X, y = _validate_data(self, X, y)
        y = self._process_target(y, reset=True)
        model = self._get_model(X, y)
        fit_kwargs = dict(self.fit_kwargs or {})
        fit_kwargs.update(kwargs)
        self.history_ = model.fit(X, y, **fit_kwargs)
        self.model_ = model
        return self

    def _raw_predict(self, X):
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False)
        return self.model_.predict(X)

    def predict(self, X):
        """The model's predictions, in the target's original form."""
        return self._reverse_process_target(self._raw_predict(X))

    # regressor and transformer: 1-D targets become one column and back
    def _process_target(self, y, reset=False):
        _target_type(y)
        y = np.asarray(y)
        if reset:
            self._target_ndim = y.ndim
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _reverse_process_target(self, y):
        y = np.asarray(y)
        if self._target_ndim == 1 and y.ndim == 2:
            if y.shape[1] != 1:
                raise ValueError(f"{type(self).__name__}: the model was fitted on a 1-D target "
                                 f"but predicts {y.shape[1]} columns (output shape {y.shape}); "
                                 f"give the model one output unit")
            return y[:, 0]
        return y


class SKLearnClassifier(ClassifierMixin, SKLBase):
    """scikit-learn classifier around a Keras model (``keras.wrappers.SKLearnClassifier``).

    The labels of ``y`` (binary or multiclass, numbers or strings) are one-hot encoded for
    training, in the sorted order of ``classes_``; the model should end with one unit per class
    (softmax).  ``predict`` maps each row's largest output back to its label.

    Args: see :class:`SKLBase` (``model``, ``warm_start``, ``model_kwargs``, ``fit_kwargs``).

    Attributes:
        model_, history_, n_features_in_: as :class:`SKLBase`.
        classes_: the sorted class labels.

    Example::

        def make_model(X, y, units=10):
            model = keras.Sequential([keras.Input((X.shape[1],)),
                                      keras.layers.Dense(units, activation="relu"),
                                      keras.layers.Dense(y.shape[1], activation="softmax")])
            model.compile(loss="categorical_crossentropy", optimizer="adam")
            return model

        clf = SKLearnClassifier(make_model, model_kwargs={"units": 20},
                                fit_kwargs={"epochs": 50, "verbose": 0})
        GridSearchCV(clf, {"model_kwargs": [{"units": 8}, {"units": 32}]}, cv=3).fit(X, y)
    """

    def decision_function(self, X):
        """The model's raw outputs, shape ``(n_samples, n_classes)``."""
        return self._raw_predict(X)

    def predict_proba(self, X):
        """The model's outputs as class probabilities, shape ``(n_samples, n_classes)``, columns
        in the order of ``classes_`` (the model should end with a softmax)."""
        out = np.asarray(self._raw_predict(X))
        self._check_output(out)
        return out

    def _check_output(self, out):
        k = len(self.classes_)
        if out.ndim != 2 or out.shape[1] != k:
            raise ValueError(f"{type(self).__name__}: the model was fitted on {k} classes "
                             f"{list(self.classes_)!r:.80} (one-hot targets of {k} columns) but "
                             f"its output has shape {out.shape}; give the model {k} output units")

    def _process_target(self, y, reset=False):
        kind = _target_type(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Only binary and multiclass target types are supported. "
                             f"Target type: {kind}")
        y = np.asarray(y)
        flat = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if reset:
            self._target_ndim = y.ndim
            self.classes_ = np.unique(flat)
            if len(self.classes_) == 1:
                raise ValueError("Classifier can't train when only one class is present.")
        idx = np.searchsorted(self.classes_, flat)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        unknown = self.classes_[idx] != flat
        if np.any(unknown):
            raise ValueError(f"{type(self).__name__}: y contains labels not seen in fit: "
                             f"{sorted(set(flat[unknown].tolist()))!r:.80}")
        onehot = np.zeros((len(flat), len(self.classes_)), dtype=np.float64)
        onehot[np.arange(len(flat)), idx] = 1.0
        return onehot

    def _reverse_process_target(self, y):
        out = np.asarray(y)
        self._check_output(out)
        labels = self.classes_[np.argmax(out, axis=1)]
        return labels.reshape(-1, 1) if self._target_ndim == 2 else labels

    def _more_tags(self):
        # scikit-learn < 1.6
        return {"poor_score": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        return tags


class SKLearnRegressor(RegressorMixin, SKLBase):
    """scikit-learn regressor around a Keras model (``keras.wrappers.SKLearnRegressor``).

    A 1-D target is handed to the model as a ``(n, 1)`` column and its ``(n, 1)`` predictions
    come back 1-D; ``score`` is the coefficient of determination R².

    Args: see :class:`SKLBase`.
    """

    def _more_tags(self):
        # scikit-learn < 1.6
        return {"poor_score": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        return tags


class SKLearnTransformer(TransformerMixin, SKLBase):
    """scikit-learn transformer around a Keras model (``keras.wrappers.SKLearnTransformer``):
    ``fit`` trains it on (X, y), ``transform(X)`` returns the model's outputs (an embedding,
    an encoder's code, ...).

    Args: see :class:`SKLBase`.
    """

    def transform(self, X):
        """The model's outputs for X, shape ``(n_samples, n_outputs)``."""
        return self._raw_predict(X)

    def _more_tags(self):
        # scikit-learn < 1.6
        return {"preserves_dtype": []}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags
