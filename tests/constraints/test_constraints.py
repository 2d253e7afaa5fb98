"""keras.constraints: the projections against Keras 3, their identifiers and configs, and their
effect on training: attached to the weights by every layer argument that names one, applied
after each optimizer update (fit's flat buffer and apply_gradients), kept by configs and files."""
import numpy as np
import pytest

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import constraints as C
from axone import layers as L

RNG = np.random.default_rng(0)

CASES = [
    ("MaxNorm", dict()), ("MaxNorm", dict(max_value=0.7, axis=1)),
    ("MaxNorm", dict(max_value=1.5, axis=[0, 1])), ("MaxNorm", dict(max_value=3, axis=-1)),
    ("MinMaxNorm", dict()), ("MinMaxNorm", dict(min_value=0.5, max_value=0.9, rate=0.3, axis=1)),
    ("MinMaxNorm", dict(min_value=1.0, max_value=2.0, rate=1.0, axis=[0, 2])),
    ("NonNeg", dict()), ("UnitNorm", dict()), ("UnitNorm", dict(axis=1)),
    ("UnitNorm", dict(axis=(0, 1))),
]


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{k}" for n, k in CASES])
@pytest.mark.parametrize("shape", [(5, 4, 3), (6, 3, 2)])
def test_projection_matches_keras(name, kw, shape):
    w = RNG.normal(size=shape).astype("float32")
    ref = keras.ops.convert_to_numpy(getattr(keras.constraints, name)(**kw)(w))
    got = getattr(C, name)(**kw)(w)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-6, atol=1e-6)
    assert np.asarray(got).dtype == np.float32
    # a Variable (what the optimizer hands it) gives the same
    v = axone.Variable(w)
    np.testing.assert_allclose(np.asarray(getattr(C, name)(**kw)(v)), ref, rtol=1e-6, atol=1e-6)


def test_norms_hold_after_projection():
    w = RNG.normal(size=(8, 5)).astype("float32") * 3
    assert np.all(np.linalg.norm(np.asarray(C.MaxNorm(1.0)(w)), axis=0) <= 1.0 + 1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(C.UnitNorm(axis=1)(w)), axis=1), 1,
                               rtol=1e-5)
    n = np.linalg.norm(np.asarray(C.MinMaxNorm(2.0, 2.5)(w * 0.01)), axis=0)
    assert np.all((n >= 2.0 - 1e-5) & (n <= 2.5 + 1e-5))


@pytest.mark.parametrize("ident,cls", [
    ("max_norm", C.MaxNorm), ("MaxNorm", C.MaxNorm), ("min_max_norm", C.MinMaxNorm),
    ("MinMaxNorm", C.MinMaxNorm), ("non_neg", C.NonNeg), ("NonNeg", C.NonNeg),
    ("unit_norm", C.UnitNorm), ("UnitNorm", C.UnitNorm), (C.NonNeg, C.NonNeg),
    ({"class_name": "MaxNorm", "config": {"max_value": 3, "axis": 1}}, C.MaxNorm),
])
def test_get_resolves_like_keras(ident, cls):
    got = C.get(ident)
    assert type(got) is cls
    ref = keras.constraints.get(ident if not isinstance(ident, type) else getattr(
        keras.constraints, ident.__name__))
    assert type(ref).__name__ == cls.__name__
    assert got.get_config() == ref.get_config()


def test_aliases_are_the_classes():
    assert C.max_norm is C.MaxNorm and C.non_neg is C.NonNeg
    assert C.unit_norm is C.UnitNorm and C.min_max_norm is C.MinMaxNorm
    assert C.get(None) is None


def test_serialize_is_keras_form():
    for c, k in [(C.MaxNorm(2, axis=[0]), keras.constraints.MaxNorm(2, axis=[0])),
                 (C.NonNeg(), keras.constraints.NonNeg()),
                 (C.MinMaxNorm(0.1, 0.2, 0.5, 1), keras.constraints.MinMaxNorm(0.1, 0.2, 0.5, 1)),
                 (C.UnitNorm(), keras.constraints.UnitNorm())]:
        assert C.serialize(c) == keras.constraints.serialize(k)
        back = C.deserialize(C.serialize(c))
        assert type(back) is type(c) and back.get_config() == c.get_config()


@pytest.mark.parametrize("bad,err", [
    ("maxnorm", ValueError), (42, ValueError), ({"class_name": "Nope", "config": {}}, ValueError),
    ({"class_name": "MaxNorm", "config": {"bogus": 1}}, ValueError), ({"config": {}}, ValueError),
])
def test_bad_identifiers_raise_clearly(bad, err):
    with pytest.raises(err):
        C.get(bad)


@pytest.mark.parametrize("make,err", [
    (lambda: C.MaxNorm(max_value="2"), ValueError), (lambda: C.MaxNorm(max_value=-1), ValueError),
    (lambda: C.MaxNorm(axis=1.5), TypeError), (lambda: C.UnitNorm(axis=[]), TypeError),
    (lambda: C.MinMaxNorm(min_value=2, max_value=1), ValueError),
    (lambda: C.MinMaxNorm(rate=float("nan")), ValueError),
])
def test_bad_arguments_raise_clearly(make, err):
    with pytest.raises(err):
        make()


def test_axis_out_of_range_names_the_shape():
    with pytest.raises(ValueError, match=r"axis 3 .*\(4, 2\)"):
        C.MaxNorm(axis=3)(np.ones((4, 2), "float32"))


# ------------------------------------------------------------------ training
def _pushes_negative(layer_factory, in_shape, y_shape, x=None, epochs=3, target=-50.0):
    """A model whose loss drives weights below zero (targets far from the outputs)."""
    axone.utils.clear_session()
    x = RNG.normal(size=(16,) + in_shape).astype("float32") if x is None else x
    model = axone.Sequential([L.Input(shape=in_shape), layer_factory()])
    model.compile(optimizer=axone.optimizers.SGD(0.5), loss="mse")
    # drive the outputs far below their current values: every weight is pushed somewhere
    model.fit(x, np.full((x.shape[0],) + y_shape, target, "float32"), epochs=epochs, verbose=0)
    return model


def test_nonneg_kernel_stays_nonnegative_through_fit():
    axone.utils.clear_session()
    x = np.abs(RNG.normal(size=(32, 4))).astype("float32")
    model = axone.Sequential([L.Input(shape=(4,)), L.Dense(3, kernel_constraint="non_neg")])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.full((32, 3), -10.0, "float32"), epochs=5, verbose=0)
    k = model.layers[0].kernel.data
    assert k.min() >= 0.0
    assert (k == 0).any()                 # the update did push some weights below zero
    # the unconstrained kernel of the same run goes negative (the constraint did the work)
    axone.utils.clear_session()
    free = axone.Sequential([L.Input(shape=(4,)), L.Dense(3)])
    free.compile(optimizer="sgd", loss="mse")
    free.fit(x, np.full((32, 3), -10.0, "float32"), epochs=5, verbose=0)
    assert free.layers[0].kernel.data.min() < 0


LAYER_ARGS = [
    ("dense", lambda c: L.Dense(3, kernel_constraint=c(), bias_constraint=c()), (4,), (3,)),
    ("conv2d", lambda c: L.Conv2D(2, 3, kernel_constraint=c(), bias_constraint=c()),
     (5, 5, 2), (3, 3, 2)),
    ("conv1d", lambda c: L.Conv1D(2, 3, kernel_constraint=c(), bias_constraint=c()), (6, 2),
     (4, 2)),
    ("depthwise", lambda c: L.DepthwiseConv2D(3, depthwise_constraint=c(), bias_constraint=c()),
     (5, 5, 2), (3, 3, 2)),
    ("separable", lambda c: L.SeparableConv2D(2, 3, depthwise_constraint=c(),
                                              pointwise_constraint=c(), bias_constraint=c()),
     (5, 5, 2), (3, 3, 2)),
    ("transpose", lambda c: L.Conv2DTranspose(2, 3, kernel_constraint=c(), bias_constraint=c()),
     (3, 3, 2), (5, 5, 2)),
    ("batchnorm", lambda c: L.BatchNormalization(beta_constraint=c(), gamma_constraint=c()),
     (4,), (4,)),
    ("prelu", lambda c: L.PReLU(alpha_constraint=c(), alpha_initializer="ones"), (4,), (4,)),
    ("simple_rnn", lambda c: L.SimpleRNN(3, kernel_constraint=c(), recurrent_constraint=c(),
                                         bias_constraint=c()), (5, 2), (3,)),
    ("lstm", lambda c: L.LSTM(3, kernel_constraint=c(), recurrent_constraint=c(),
                              bias_constraint=c()), (5, 2), (3,)),
    ("gru", lambda c: L.GRU(3, kernel_constraint=c(), recurrent_constraint=c(),
                            bias_constraint=c()), (5, 2), (3,)),
]


@pytest.mark.parametrize("name,make,ins,outs", LAYER_ARGS, ids=[a[0] for a in LAYER_ARGS])
def test_every_constraint_argument_takes_effect(name, make, ins, outs):
    target = 50.0 if name == "prelu" else -50.0   # PReLU: α·x for x < 0, so a high target
    model = _pushes_negative(lambda: make(C.NonNeg), ins, outs, target=target)
    ws = model.layers[0].trainable_weights
    assert ws and all(w.constraint is not None for w in ws)
    for w in ws:
        assert w.data.min() >= 0, (name, w.path, w.data.min())
    # and the same layer without constraints does go negative under this loss
    free = _pushes_negative(lambda: make(lambda: None), ins, outs, target=target)
    assert min(w.data.min() for w in free.layers[0].trainable_weights) < 0


def test_embedding_constraint_takes_effect():
    axone.utils.clear_session()
    x = RNG.integers(0, 10, size=(16, 3))
    model = axone.Sequential([L.Input(shape=(3,), dtype="int32"),
                              L.Embedding(10, 4, embeddings_constraint=C.MaxNorm(0.05, axis=1)),
                              L.Flatten(), L.Dense(1)])
    model.compile(optimizer=axone.optimizers.SGD(1.0), loss="mse")
    model.fit(x, np.full((16, 1), 30.0, "float32"), epochs=3, verbose=0)
    assert np.linalg.norm(model.layers[0].embeddings.data, axis=1).max() <= 0.05 + 1e-6


def test_fit_with_maxnorm_matches_keras():
    x = RNG.normal(size=(24, 5)).astype("float32")
    y = RNG.normal(size=(24, 2)).astype("float32") * 4
    k0 = RNG.normal(size=(5, 3)).astype("float32")
    k1 = RNG.normal(size=(3, 2)).astype("float32")
    weights = [k0, np.zeros(3, "float32"), k1, np.full(2, 0.3, "float32")]

    km = keras.Sequential([keras.Input((5,)),
                           keras.layers.Dense(3, activation="tanh",
                                              kernel_constraint=keras.constraints.MaxNorm(0.8)),
                           keras.layers.Dense(2, kernel_constraint=keras.constraints.UnitNorm(1),
                                              bias_constraint=keras.constraints.NonNeg())])
    km.set_weights(weights)
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    axone.utils.clear_session()
    am = axone.Sequential([L.Input((5,)), L.Dense(3, activation="tanh",
                                                  kernel_constraint=C.MaxNorm(0.8)),
                           L.Dense(2, kernel_constraint=C.UnitNorm(1),
                                   bias_constraint=C.NonNeg())])
    am.set_weights(weights)
    am.compile(optimizer=axone.optimizers.SGD(0.1), loss="mse")
    am.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, k in zip(am.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, k, atol=1e-5)
    assert np.linalg.norm(am.get_weights()[0], axis=0).max() <= 0.8 + 1e-6


def test_apply_gradients_applies_constraints():
    v = axone.Variable(np.array([[0.5, -0.2], [0.1, 0.3]], "float32"), constraint=C.NonNeg())
    w = axone.Variable(np.array([0.5, -0.2], "float32"))
    opt = axone.optimizers.SGD(1.0)
    opt.apply_gradients([(np.ones((2, 2), "float32"), v), (np.ones(2, "float32"), w)])
    np.testing.assert_array_equal(v.data, [[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(w.data, [-0.5, -1.2])


def test_custom_subclass_and_plain_callable():
    class Clip(C.Constraint):
        def __init__(self, limit=0.1):
            self.limit = limit

        def __call__(self, w):
            return axone.ops.clip(w, -self.limit, self.limit)

        def get_config(self):
            return {"limit": self.limit}

    def halve(w):
        return w * 0.5

    axone.utils.clear_session()
    x = RNG.normal(size=(16, 4)).astype("float32")
    model = axone.Sequential([L.Input((4,)), L.Dense(3, kernel_constraint=Clip(0.05),
                                                     bias_constraint=halve)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.full((16, 3), 5.0, "float32"), epochs=2, verbose=0)
    d = model.layers[0]
    assert np.abs(d.kernel.data).max() <= 0.05 + 1e-7
    assert d.kernel.constraint.limit == 0.05 and d.bias.constraint is halve
    # the subclass is found again by its class name; the function by the name Keras gives it
    cfg = d.get_config()
    assert cfg["kernel_constraint"]["class_name"] == "Clip"
    assert cfg["bias_constraint"]["class_name"] == "function"
    back = L.Dense.from_config({**cfg, "bias_constraint": None})
    assert isinstance(back.kernel_constraint, Clip) and back.kernel_constraint.limit == 0.05
    assert C.deserialize(cfg["bias_constraint"], custom_objects={"halve": halve}) is halve
    with pytest.raises(ValueError, match="halve"):
        C.deserialize(cfg["bias_constraint"])


def test_config_round_trip_matches_keras_form():
    d = L.Dense(3, kernel_constraint=C.MaxNorm(2, axis=[0]), bias_constraint="non_neg")
    k = keras.layers.Dense(3, kernel_constraint=keras.constraints.MaxNorm(2, axis=[0]),
                           bias_constraint="non_neg")
    cfg = d.get_config()
    for key in ("kernel_constraint", "bias_constraint"):
        assert cfg[key] == k.get_config()[key]
    back = L.Dense.from_config(cfg)
    assert isinstance(back.kernel_constraint, C.MaxNorm)
    assert back.kernel_constraint.get_config() == {"max_value": 2, "axis": [0]}
    assert isinstance(back.bias_constraint, C.NonNeg)
    for layer in (L.Conv2D(2, 3, kernel_constraint="unit_norm"),
                  L.DepthwiseConv2D(3, depthwise_constraint="non_neg"),
                  L.SeparableConv2D(2, 3, pointwise_constraint="non_neg"),
                  L.Conv2DTranspose(2, 3, bias_constraint="non_neg"),
                  L.Embedding(5, 2, embeddings_constraint="unit_norm"),
                  L.BatchNormalization(gamma_constraint="non_neg"),
                  L.LSTM(2, recurrent_constraint="unit_norm")):
        cfg = layer.get_config()
        back = type(layer).from_config(cfg)
        assert back.get_config() == cfg


def test_save_load_keeps_constraints(tmp_path):
    axone.utils.clear_session()
    model = axone.Sequential([L.Input((4,)), L.Dense(3, kernel_constraint=C.MaxNorm(0.3)),
                              L.Dense(1, bias_constraint="non_neg")])
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "m.keras")
    m2 = axone.models.load_model(tmp_path / "m.keras")
    assert isinstance(m2.layers[0].kernel.constraint, C.MaxNorm)
    assert m2.layers[0].kernel.constraint.max_value == 0.3
    assert isinstance(m2.layers[1].bias.constraint, C.NonNeg)
    x = RNG.normal(size=(16, 4)).astype("float32")
    m2.fit(x, np.full((16, 1), 40.0, "float32"), epochs=3, verbose=0)
    assert np.linalg.norm(m2.layers[0].kernel.data, axis=0).max() <= 0.3 + 1e-6


def test_no_constraint_no_per_step_work(monkeypatch):
    """Without constraints the training step does not visit the weights after the update."""
    def boom(variables):
        raise AssertionError("apply_constraints called without constraints")
    monkeypatch.setattr(axone.optimizers.Optimizer, "apply_constraints", staticmethod(boom))
    axone.utils.clear_session()
    model = axone.Sequential([L.Input((4,)), L.Dense(3)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 4), "float32"), np.ones((8, 3), "float32"), epochs=1, verbose=0)


def test_load_model_restores_a_plain_function_constraint_from_custom_objects(tmp_path):
    import axone

    def clip_unit(w):
        return axone.ops.clip(w, -0.5, 0.5)

    m = axone.Sequential([axone.Input((3,)), axone.layers.Dense(2, kernel_constraint=clip_unit)])
    m.compile(optimizer="sgd", loss="mse")
    m.save(tmp_path / "m.axone")
    back = axone.models.load_model(tmp_path / "m.axone", custom_objects={"clip_unit": clip_unit})
    assert back.layers[0].kernel_constraint is clip_unit
