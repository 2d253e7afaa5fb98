"""keras.wrappers (SKLearnClassifier / SKLearnRegressor / SKLearnTransformer) on axone.

scikit-learn's model selection on the wrappers (grid search over two hyper-parameters, k-fold
cross-validation and random search, 004 §2.3), Pipelines with StandardScaler, clone/get_params,
and parity with Keras 3's wrappers (torch backend) on the same factory and initial weights.
"""
import functools
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)
from keras.wrappers import SKLearnClassifier as KerasClassifier  # noqa: E402
from keras.wrappers import SKLearnRegressor as KerasRegressor  # noqa: E402
from sklearn.base import clone, is_classifier, is_regressor  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.model_selection import (GridSearchCV, KFold, RandomizedSearchCV,  # noqa: E402
                                     cross_val_score)
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import axone  # noqa: E402
from axone.compat import install_keras_alias, uninstall_keras_alias  # noqa: E402
from axone.datasets import load_boston, load_iris  # noqa: E402
from axone.wrappers import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer  # noqa: E402


pytestmark = pytest.mark.filterwarnings("ignore")


def _quiet(fn):
    @functools.wraps(fn)
    def run(*a, **k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*a, **k)
    return run


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris()
    order = np.random.default_rng(0).permutation(len(x))
    return x[order].astype(np.float64), y[order]


def mlp(X, y, units=16, learning_rate=0.01):
    """The course's MLP, sized from the data: n_features -> units (relu) -> n_classes (softmax)."""
    model = axone.Sequential([
        axone.layers.Input((X.shape[1],)),
        axone.layers.Dense(units, activation="relu"),
        axone.layers.Dense(y.shape[1], activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy",
                  optimizer=axone.optimizers.Adam(learning_rate=learning_rate))
    return model


def regressor_net(X, y, units=16):
    model = axone.Sequential([
        axone.layers.Input((X.shape[1],)),
        axone.layers.Dense(units, activation="relu"),
        axone.layers.Dense(y.shape[1]),
    ])
    model.compile(loss="mse", optimizer=axone.optimizers.Adam(learning_rate=0.02))
    return model


QUIET = {"verbose": 0}


# ------------------------------------------------------------------ the keras alias
def test_keras_wrappers_resolve_through_the_alias():
    install_keras_alias()
    try:
        import keras as k
        from keras.wrappers import SKLearnClassifier as C, SKLearnRegressor as R
        from keras.wrappers import SKLearnTransformer as T
        assert (C, R, T) == (SKLearnClassifier, SKLearnRegressor, SKLearnTransformer)
        assert k.wrappers.SKLearnClassifier is SKLearnClassifier
        import tensorflow as tf
        assert tf.keras.wrappers.SKLearnRegressor is SKLearnRegressor
    finally:
        uninstall_keras_alias()


# ------------------------------------------------------------------ model selection (004 §2.3)
def test_grid_search_over_two_hyperparameters(iris):
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", SKLearnClassifier(mlp, fit_kwargs={"epochs": 20, **QUIET}))])
    grid = {"clf__model_kwargs": [{"units": 2, "learning_rate": 0.001},
                                  {"units": 32, "learning_rate": 0.03}],
            "clf__fit_kwargs": [{"epochs": 2, "batch_size": 16, **QUIET},
                                {"epochs": 40, "batch_size": 16, **QUIET}]}
    axone.utils.set_random_seed(0)
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4
    # the large, long-trained network wins and is far above chance (1/3)
    assert search.best_params_["clf__model_kwargs"]["units"] == 32
    assert search.best_params_["clf__fit_kwargs"]["epochs"] == 40
    assert search.best_score_ > 0.85 and search.best_score_ == scores.max()
    best = search.best_estimator_.named_steps["clf"]
    assert best.epoch_ == 40 and best.model_.layers[0].units == 32
    assert search.score(X, y) > 0.85
    assert set(search.predict(X[:10])) <= {0, 1, 2}


def test_cross_val_score_with_kfold(iris):
    X, y = iris
    est = make_pipeline(StandardScaler(), SKLearnClassifier(
        mlp, model_kwargs={"units": 32, "learning_rate": 0.03},
        fit_kwargs={"epochs": 30, "batch_size": 16, **QUIET}))
    axone.utils.set_random_seed(1)
    scores = cross_val_score(est, X, y, cv=KFold(n_splits=5, shuffle=True, random_state=0))
    assert scores.shape == (5,) and np.all((scores >= 0) & (scores <= 1))
    assert scores.mean() > 0.85


def test_random_search(iris):
    X, y = iris
    est = make_pipeline(StandardScaler(), SKLearnClassifier(
        mlp, fit_kwargs={"epochs": 25, "batch_size": 16, **QUIET}))
    space = {"sklearnclassifier__model_kwargs": [{"units": u, "learning_rate": lr}
                                                 for u in (8, 32) for lr in (0.01, 0.03)]}
    axone.utils.set_random_seed(2)
    search = RandomizedSearchCV(est, space, n_iter=2, cv=3, random_state=0).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert search.best_score_ > 0.6


# ------------------------------------------------------------------ estimator protocol
def test_get_params_set_params_and_clone_round_trip():
    est = SKLearnClassifier(mlp, model_kwargs={"units": 8}, fit_kwargs={"epochs": 3})
    params = est.get_params()
    assert params == {"model": mlp, "warm_start": False, "model_kwargs": {"units": 8},
                      "fit_kwargs": {"epochs": 3}}
    twin = clone(est)
    assert type(twin) is SKLearnClassifier and twin.get_params() == params
    assert twin.model_kwargs is not est.model_kwargs and twin.fit_kwargs is not est.fit_kwargs
    twin.set_params(model_kwargs={"units": 4}, warm_start=True)
    assert est.model_kwargs == {"units": 8} and twin.get_params()["warm_start"] is True
    with pytest.raises(ValueError, match="Invalid parameter 'nosuch'"):
        est.set_params(nosuch=1)
    # a Model instance is shared by the clone (fit clones it), as Keras
    net = mlp(np.zeros((1, 4)), np.zeros((1, 3)))
    assert clone(SKLearnRegressor(net)).model is net
    assert is_classifier(est) and is_regressor(SKLearnRegressor(net))
    assert "SKLearnClassifier" in repr(est)


def test_clone_of_a_fitted_estimator_is_unfitted(iris):
    X, y = iris
    est = SKLearnClassifier(mlp, fit_kwargs={"epochs": 1, **QUIET}).fit(X, y)
    assert hasattr(est, "model_") and est.n_features_in_ == 4
    twin = clone(est)
    assert not hasattr(twin, "model_") and twin.epoch_ == 0
    with pytest.raises(NotFittedError):
        twin.predict(X)


def test_sklearn_tags():
    net = mlp(np.zeros((1, 4)), np.zeros((1, 3)))
    tags = SKLearnClassifier(mlp).__sklearn_tags__()
    assert tags.non_deterministic and tags.classifier_tags.poor_score
    assert SKLearnRegressor(net).__sklearn_tags__().regressor_tags.poor_score
    assert SKLearnTransformer(net).__sklearn_tags__().transformer_tags.preserves_dtype == []
    assert SKLearnClassifier(mlp)._more_tags() == {"poor_score": True}
    assert SKLearnTransformer(net)._more_tags() == {"preserves_dtype": []}


def test_fit_kwargs_precedence_and_not_mutated(iris):
    X, y = iris
    kwargs = {"epochs": 5, **QUIET}
    est = SKLearnClassifier(mlp, fit_kwargs=kwargs)
    est.fit(X, y, epochs=2, batch_size=50)
    assert est.epoch_ == 2 and len(est.history_.history["loss"]) == 2
    assert est.fit_kwargs == {"epochs": 5, "verbose": 0}
    est.fit(X, y)
    assert est.epoch_ == 5


def test_model_instance_is_cloned_and_compiled_alike(iris):
    X, y = iris
    net = mlp(X, np.zeros((1, 3)), units=8)
    before = [w.copy() for w in net.get_weights()]
    est = SKLearnClassifier(net, fit_kwargs={"epochs": 3, **QUIET}).fit(X, y)
    assert est.model_ is not net and est.model_.compiled
    assert type(est.model_.optimizer) is type(net.optimizer)
    assert est.model_.optimizer is not net.optimizer
    np.testing.assert_allclose(est.model_.optimizer.learning_rate, 0.01)
    for a, b in zip(before, net.get_weights()):        # the given model is left alone
        np.testing.assert_array_equal(a, b)
    assert [w.shape for w in est.model_.get_weights()] == [w.shape for w in before]


def test_warm_start_goes_on_training_the_same_model(iris):
    X, y = iris
    X = StandardScaler().fit_transform(X)
    warm = SKLearnClassifier(mlp, warm_start=True, fit_kwargs={"epochs": 5, **QUIET}).fit(X, y)
    first = warm.model_
    end_loss = warm.history_.history["loss"][-1]
    warm.fit(X, y)
    assert warm.model_ is first
    assert warm.history_.history["loss"][0] < end_loss + 0.05   # starts where it stopped
    cold = SKLearnClassifier(mlp, fit_kwargs={"epochs": 1, **QUIET}).fit(X, y)
    m = cold.model_
    cold.fit(X, y)
    assert cold.model_ is not m
    # warm_start with a Model instance trains that instance
    net = mlp(X, np.zeros((1, 3)))
    assert SKLearnClassifier(net, warm_start=True, fit_kwargs={"epochs": 1, **QUIET}).fit(
        X, y).model_ is net


# ------------------------------------------------------------------ targets
def test_classifier_target_encoding_string_labels_and_predict_proba(iris):
    X, y = iris
    X = StandardScaler().fit_transform(X)
    names = np.array(["virginica", "setosa", "versicolor"])[y]
    seen = {}

    def factory(X, y):
        seen["y"] = y
        return mlp(X, y, units=32, learning_rate=0.03)
    est = SKLearnClassifier(factory, fit_kwargs={"epochs": 40, "batch_size": 16, **QUIET})
    est.fit(X, names)
    np.testing.assert_array_equal(est.classes_, ["setosa", "versicolor", "virginica"])
    onehot = seen["y"]
    assert onehot.shape == (150, 3) and onehot.dtype == np.float64
    np.testing.assert_array_equal(est.classes_[onehot.argmax(1)], names)
    proba = est.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(est.decision_function(X), proba)
    pred = est.predict(X)
    np.testing.assert_array_equal(pred, est.classes_[proba.argmax(axis=1)])
    assert est.score(X, names) == np.mean(pred == names) > 0.9


def test_binary_target_and_column_target(iris):
    X, y = iris
    X = StandardScaler().fit_transform(X)
    binary = (y == 2).astype(int) * 5           # labels {0, 5}
    seen = {}

    def factory(X, y):
        seen["shape"] = y.shape
        return mlp(X, y, units=16, learning_rate=0.03)
    est = SKLearnClassifier(factory, fit_kwargs={"epochs": 30, "batch_size": 16, **QUIET})
    est.fit(X, binary)
    assert seen["shape"] == (150, 2) and list(est.classes_) == [0, 5]
    assert set(np.unique(est.predict(X))) <= {0, 5} and est.score(X, binary) > 0.85
    est.fit(X, y.reshape(-1, 1))                 # a column is taken as 1-D, as Keras
    assert est.predict(X[:4]).shape == (4,)


def test_regressor_pipeline_on_boston():
    x, price = load_boston()
    order = np.random.default_rng(1).permutation(len(x))
    x, price = x[order], price[order]
    x, price = x.astype(np.float64), price.astype(np.float64)
    seen = {}

    def factory(X, y):
        seen["shape"] = y.shape
        return regressor_net(X, y, units=32)
    axone.utils.set_random_seed(0)
    pipe = make_pipeline(StandardScaler(), SKLearnRegressor(
        factory, fit_kwargs={"epochs": 60, "batch_size": 32, **QUIET}))
    pipe.fit(x[:400], price[:400])
    assert seen["shape"] == (400, 1)
    pred = pipe.predict(x[400:])
    assert pred.shape == (106,)
    r2 = pipe.score(x[400:], price[400:])
    ss_res = np.sum((price[400:] - pred) ** 2)
    ss_tot = np.sum((price[400:] - price[400:].mean()) ** 2)
    np.testing.assert_allclose(r2, 1 - ss_res / ss_tot, rtol=1e-6)
    assert r2 > 0.5
    with pytest.raises(ValueError, match="1d array"):   # one target column only, as Keras
        SKLearnRegressor(factory).fit(x, np.stack([price, price], axis=1))


def test_transformer_in_a_pipeline():
    x, price = load_boston()
    x, price = x.astype(np.float64), price.astype(np.float64)

    def factory(X, y):
        return regressor_net(X, y, units=16)
    trs = SKLearnTransformer(factory, fit_kwargs={"epochs": 40, "batch_size": 32, **QUIET})
    scaled = StandardScaler().fit_transform(x)
    out = trs.fit_transform(scaled, price)
    assert out.shape == (506, 1)
    np.testing.assert_array_equal(trs.transform(scaled), trs.model_.predict(scaled, verbose=0))
    pipe = make_pipeline(StandardScaler(), SKLearnTransformer(
        factory, fit_kwargs={"epochs": 40, "batch_size": 32, **QUIET}), LinearRegression())
    pipe.fit(x, price)
    assert pipe.score(x, price) > 0.5


# ------------------------------------------------------------------ bad input
def test_bad_models_and_arguments(iris):
    X, y = iris
    with pytest.raises(TypeError, match="model.*returned int"):
        SKLearnClassifier(lambda X, y: 3).fit(X, y)

    def uncompiled(X, y):
        return axone.Sequential([axone.layers.Input((4,)), axone.layers.Dense(3)])
    with pytest.raises(RuntimeError, match="needs to be compiled, and have a loss"):
        SKLearnClassifier(uncompiled).fit(X, y)
    with pytest.raises(RuntimeError, match="needs to be compiled"):
        SKLearnRegressor(uncompiled(X, y)).fit(X, y)
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        SKLearnClassifier(mlp, foo=1)
    with pytest.raises(TypeError, match="foo"):
        SKLearnClassifier(mlp, fit_kwargs=QUIET).fit(X, y, foo=3)
    with pytest.raises(TypeError, match="`model` must be a compiled keras Model"):
        SKLearnClassifier(3).fit(X, y)
    with pytest.raises(TypeError, match="`fit_kwargs` must be a dict"):
        SKLearnClassifier(mlp, fit_kwargs=[("epochs", 1)]).fit(X, y)
    with pytest.raises(TypeError, match="`model_kwargs` must be a dict"):
        SKLearnClassifier(mlp, model_kwargs=16).fit(X, y)
    with pytest.raises(ValueError, match="model_kwargs"):
        SKLearnClassifier(mlp(X, np.zeros((1, 3))), model_kwargs={"units": 3}).fit(X, y)
    with pytest.raises(ValueError, match="Only binary and multiclass"):
        SKLearnClassifier(mlp).fit(X, y + 0.5)
    with pytest.raises(ValueError, match="only one class"):
        SKLearnClassifier(mlp).fit(X, np.zeros(150))
    with pytest.raises(NotFittedError):
        SKLearnClassifier(mlp).predict(X)
    est = _quiet(SKLearnClassifier(mlp, fit_kwargs={"epochs": 1, **QUIET}).fit)(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        est.predict(X[:, :3])

    def two_outputs(X, y):                  # fitted on 3 classes but predicting 2 columns
        model = axone.Sequential([axone.layers.Input((4,)),
                                  axone.layers.Dense(2, activation="softmax")])
        model.compile(loss="mse", optimizer="sgd")
        return model
    bad = SKLearnClassifier(two_outputs, fit_kwargs={"epochs": 1, **QUIET})
    with pytest.raises(ValueError):         # the loss sees (n, 2) outputs against (n, 3) targets
        _quiet(bad.fit)(X, y)


def test_without_sklearn_the_module_imports_and_creating_says_what_to_install():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import axone.wrappers as w\n"
            "try:\n    w.SKLearnClassifier(model=None)\n"
            "except ImportError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ERR SKLearnClassifier requires `scikit-learn`" in out.stdout
    assert "pip install scikit-learn" in out.stdout


# ------------------------------------------------------------------ parity with Keras 3
def _fixed_weights(units):
    rng = np.random.default_rng(7)
    return [rng.normal(0, 0.5, (4, units)).astype(np.float32),
            rng.normal(0, 0.1, (units,)).astype(np.float32),
            rng.normal(0, 0.5, (units, 3)).astype(np.float32),
            rng.normal(0, 0.1, (3,)).astype(np.float32)]


def _factory(lib, seen):
    def build(X, y, units=6):
        seen.append(np.array(y))
        if lib == "keras":
            model = keras.Sequential([keras.Input((X.shape[1],)),
                                      keras.layers.Dense(units, activation="relu"),
                                      keras.layers.Dense(y.shape[1], activation="softmax")])
            model.compile(loss="categorical_crossentropy",
                          optimizer=keras.optimizers.SGD(learning_rate=0.1))
        else:
            model = axone.Sequential([axone.layers.Input((X.shape[1],)),
                                      axone.layers.Dense(units, activation="relu"),
                                      axone.layers.Dense(y.shape[1], activation="softmax")])
            model.compile(loss="categorical_crossentropy",
                          optimizer=axone.optimizers.SGD(learning_rate=0.1))
        model.set_weights(_fixed_weights(units))
        return model
    return build


def test_classifier_parity_with_keras(iris):
    X, y = iris
    X = StandardScaler().fit_transform(X).astype(np.float32)
    labels = np.array(["b", "c", "a"])[y]
    fit = {"epochs": 4, "batch_size": 150, "shuffle": False, "verbose": 0}
    ks, ax = [], []
    k = KerasClassifier(_factory("keras", ks), model_kwargs={"units": 6}).fit(X, labels, **fit)
    a = SKLearnClassifier(_factory("axone", ax), model_kwargs={"units": 6}).fit(X, labels, **fit)
    np.testing.assert_array_equal(ks[0], ax[0])                # the encoded target
    np.testing.assert_array_equal(k.classes_, a.classes_)
    kp, ap = k.decision_function(X), a.predict_proba(X)
    assert kp.shape == ap.shape == (150, 3)
    np.testing.assert_allclose(ap, kp, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(a.predict(X), k.predict(X))
    assert a.score(X, labels) == k.score(X, labels)
    assert a.n_features_in_ == k.n_features_in_ == 4
    np.testing.assert_allclose(a.history_.history["loss"], k.history_.history["loss"],
                               rtol=1e-4)
    assert a.get_params().keys() == k.get_params().keys()


def test_regressor_parity_with_keras():
    x, price = load_boston()
    x = StandardScaler().fit_transform(x).astype(np.float32)
    rng = np.random.default_rng(3)
    w = [rng.normal(0, 0.3, (6, 1)).astype(np.float32), np.zeros(1, np.float32)]

    def build(lib):
        def f(X, y):
            m = lib.Sequential([lib.Input((6,)), lib.layers.Dense(1)])
            m.compile(loss="mse", optimizer=lib.optimizers.SGD(learning_rate=0.01))
            m.set_weights(w)
            assert y.shape == (506, 1)
            return m
        return f
    fit = {"epochs": 3, "batch_size": 506, "shuffle": False, "verbose": 0}
    k = KerasRegressor(build(keras)).fit(x, price, **fit)
    a = SKLearnRegressor(build(axone)).fit(x, price, **fit)
    kp, ap = k.predict(x), a.predict(x)
    assert kp.shape == ap.shape == (506,)
    np.testing.assert_allclose(ap, kp, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(a.score(x, price), k.score(x, price), rtol=1e-4)


def test_error_types_match_keras(iris):
    X, y = iris
    cases = [lambda C: C(mlp).fit(X, y + 0.5),          # continuous target
             lambda C: C(mlp).fit(X, np.zeros(150)),    # one class
             lambda C: C(mlp).predict(X),               # not fitted
             lambda C: C(mlp, foo=1)]                   # unknown keyword
    for case in cases:
        with pytest.raises(Exception) as ke:
            case(KerasClassifier)
        with pytest.raises(Exception) as ae:
            case(SKLearnClassifier)
        assert type(ae.value) is type(ke.value), (ae.value, ke.value)


def test_set_fit_request_needs_metadata_routing_as_keras():
    import sklearn
    est, kest = SKLearnClassifier(mlp), KerasClassifier(mlp)
    for e in (est, kest):
        with pytest.raises(RuntimeError, match="metadata routing is enabled"):
            e.set_fit_request(sample_weight=True)
    with sklearn.config_context(enable_metadata_routing=True):
        assert est.set_fit_request(sample_weight=True) is est
        routing = est.get_metadata_routing()
        assert routing.fit.requests == {"sample_weight": True}
        assert clone(est).get_metadata_routing().fit.requests == {"sample_weight": True}
        # the request routes sample_weight into Model.fit through a meta-estimator
        X, y = load_iris()
        seen = []

        class Recording(axone.Sequential):
            def fit(self, *args, **kwargs):
                seen.append(kwargs.get("sample_weight"))
                return super().fit(*args, **kwargs)

        def factory(X, y):
            model = Recording([axone.layers.Input((4,)),
                               axone.layers.Dense(y.shape[1], activation="softmax")])
            model.compile(loss="categorical_crossentropy", optimizer="adam")
            return model
        w = np.linspace(0.5, 1.5, 150)
        est = SKLearnClassifier(factory, fit_kwargs=QUIET).set_fit_request(sample_weight=True)
        cross_val_score(est, X, y, cv=KFold(2, shuffle=True, random_state=0), params={"sample_weight": w})
        assert len(seen) == 2 and all(s is not None and len(s) == 75 for s in seen)
