"""The optimizers added to match Keras 3 (Adafactor, Ftrl, Lamb, Lion, Muon, ScheduleFreeAdamW,
LossScaleOptimizer) against Keras 3 (torch backend): same weights and gradients → same weights
after several steps; Keras 3's apply / stateless_apply / variables; the fused path of apply."""
import numpy as np
import pytest

import axone
from axone import optimizers as AO

keras = pytest.importorskip("keras")

SHAPES = [(4, 3), (3,), (2, 3, 5)]

CASES = [
    ("Lion", {}), ("Lion", dict(weight_decay=0.1, beta_2=0.9, learning_rate=0.01)),
    ("Ftrl", {}),
    ("Ftrl", dict(l1_regularization_strength=0.1, l2_regularization_strength=0.2,
                  l2_shrinkage_regularization_strength=0.05, beta=0.3, learning_rate=0.1,
                  learning_rate_power=-0.3, initial_accumulator_value=0.5)),
    ("Lamb", {}), ("Lamb", dict(learning_rate=0.01, clipnorm=1.0, weight_decay=0.01)),
    ("Adafactor", {}),
    ("Adafactor", dict(learning_rate=0.5, relative_step=False, clip_threshold=0.5, epsilon_2=1e-2)),
    ("ScheduleFreeAdamW", {}), ("ScheduleFreeAdamW", dict(warmup_steps=3, weight_decay=0.01)),
    ("Muon", {}), ("Muon", dict(nesterov=False, rms_rate=None, exclude_layers=["v0"], ns_steps=3)),
    ("Lion", dict(use_ema=True, gradient_accumulation_steps=2)),
]


def _data(seed, steps, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    w0 = [rng.normal(size=s).astype("float32") for s in shapes]
    gs = [[rng.normal(size=s).astype("float32") for s in shapes] for _ in range(steps)]
    return w0, gs


@pytest.mark.parametrize("name,kwargs", CASES)
def test_apply_matches_keras(name, kwargs):
    w0, gs = _data(0, 6)
    kv = [keras.Variable(w, name=f"v{i}") for i, w in enumerate(w0)]
    av = [axone.Variable(w.copy(), name=f"v{i}") for i, w in enumerate(w0)]
    ko, ao = getattr(keras.optimizers, name)(**kwargs), getattr(AO, name)(**kwargs)
    for g in gs:
        ko.apply([keras.ops.convert_to_tensor(x) for x in g], kv)
        ao.apply(g, av)
    for k, a in zip(kv, av):
        np.testing.assert_allclose(a.data, np.asarray(k.numpy()), rtol=1e-5, atol=1e-5)
    assert ao.iterations == int(ko.iterations)
    assert len(ao.variables) == len(ko.variables)
    for k, a in zip(ko.variables, ao.variables):
        assert tuple(a.shape) == tuple(k.shape)


@pytest.mark.parametrize("name,kwargs", CASES[:12:2])
def test_config_round_trip(name, kwargs):
    ao = getattr(AO, name)(**kwargs)
    cfg = ao.get_config()
    kcfg = getattr(keras.optimizers, name)(**kwargs).get_config()
    assert set(cfg) - {"decay"} == set(kcfg)
    again = AO.deserialize(AO.serialize(ao))
    assert type(again) is type(ao) and again.get_config() == cfg
    assert type(AO.get(name.lower())) is type(ao)


def test_loss_scale_optimizer_matches_keras():
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(3, 2)).astype("float32")
    kv, av = keras.Variable(w0), axone.Variable(w0.copy())
    ko = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1, momentum=0.5),
                                             initial_scale=8.0, dynamic_growth_steps=2)
    ao = AO.LossScaleOptimizer(AO.SGD(0.1, momentum=0.5), initial_scale=8.0, dynamic_growth_steps=2)
    for i in range(7):
        g = rng.normal(size=(3, 2)).astype("float32") * 8
        if i in (2, 5):
            g[0, 0] = np.inf if i == 2 else np.nan
        ko.apply([keras.ops.convert_to_tensor(g)], [kv])
        ao.apply([g], [av])
        assert float(ao.dynamic_scale.data) == float(ko.dynamic_scale.numpy())
        assert ao.iterations == int(ko.iterations)
        np.testing.assert_allclose(av.data, kv.numpy(), rtol=1e-5, atol=1e-6)
    assert ao.scale_loss(2.0) == pytest.approx(float(keras.ops.convert_to_numpy(ko.scale_loss(2.0))))
    assert len(ao.variables) == len(ko.variables)
    again = AO.deserialize(AO.serialize(ao))
    assert isinstance(again.inner_optimizer, AO.SGD) and again.dynamic_growth_steps == 2
    with pytest.raises(ValueError, match="clipnorm"):
        AO.LossScaleOptimizer(AO.SGD(), clipnorm=1.0)
    with pytest.raises(ValueError, match="dynamic=False"):
        AO.LossScaleOptimizer(AO.SGD(), dynamic=False)


@pytest.mark.parametrize("name,kwargs", [("Adam", {}), ("Nadam", {}), ("Lamb", {}), ("Adafactor", {}),
                                         ("Adam", dict(use_ema=True, gradient_accumulation_steps=2)),
                                         ("Muon", {}), ("ScheduleFreeAdamW", {})])
def test_stateless_apply_equals_apply(name, kwargs):
    w0, gs = _data(2, 5)
    av = [axone.Variable(w.copy(), name=f"v{i}") for i, w in enumerate(w0)]
    sv = [axone.Variable(w.copy(), name=f"v{i}") for i, w in enumerate(w0)]
    live, free = getattr(AO, name)(**kwargs), getattr(AO, name)(**kwargs)
    free.build(sv)
    opt_vals = [np.array(v.data, copy=True) for v in free.variables]
    before = [np.array(v.data, copy=True) for v in free.variables]
    vals = [w.copy() for w in w0]
    for g in gs:
        live.apply(g, av)
        vals, opt_vals = free.stateless_apply(opt_vals, g, vals)
    for a, b in zip(av, vals):
        np.testing.assert_array_equal(a.data, b)
    for a, b in zip(live.variables, opt_vals):
        np.testing.assert_array_equal(a.data, b)
    # the live variables and the optimizer's own state are untouched
    for v, w in zip(sv, w0):
        np.testing.assert_array_equal(v.data, w)
    for v, b in zip(free.variables, before):
        np.testing.assert_array_equal(v.data, b)


def test_stateless_apply_matches_keras():
    w0, gs = _data(3, 4)
    kv = [keras.Variable(w) for w in w0]
    av = [axone.Variable(w.copy()) for w in w0]
    ko, ao = keras.optimizers.Adam(0.05), AO.Adam(0.05)
    ko.build(kv)
    ao.build(av)
    kvals, kopt = [v.value for v in kv], [v.value for v in ko.variables]
    avals, aopt = [w.copy() for w in w0], [v.data.copy() for v in ao.variables]
    for g in gs:
        kvals, kopt = ko.stateless_apply(kopt, [keras.ops.convert_to_tensor(x) for x in g], kvals)
        avals, aopt = ao.stateless_apply(aopt, g, avals)
    for k, a in zip(kvals, avals):
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(k), rtol=1e-5, atol=1e-5)
    assert int(aopt[0]) == int(keras.ops.convert_to_numpy(kopt[0])) == 4


def _model(seed):
    axone.utils.set_random_seed(seed)
    m = axone.Sequential([axone.layers.Input((4,)), axone.layers.Dense(5, activation="tanh"),
                          axone.layers.Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    m._param_buffer()
    return m


@pytest.mark.parametrize("name,kwargs", [("Adam", {}), ("Lamb", {}), ("Adafactor", {}),
                                         ("SGD", dict(momentum=0.9, clipnorm=0.5))])
def test_apply_on_a_model_buffer_is_one_flat_step(name, kwargs, monkeypatch):
    rng = np.random.default_rng(4)
    m1, m2 = _model(7), _model(7)
    tw1, tw2 = m1.trainable_weights, m2.trainable_weights
    o1, o2 = getattr(AO, name)(**kwargs), getattr(AO, name)(**kwargs)
    calls = []
    real = type(o1).update_flat
    monkeypatch.setattr(type(o1), "update_flat",
                        lambda self, *a, **k: (calls.append(1), real(self, *a, **k))[1])
    for _ in range(4):
        for v in tw1:
            v.grad[...] = rng.normal(size=v.shape)
        gs = [np.array(v.grad, copy=True) for v in tw1]
        o1.apply([v.grad for v in tw1], tw1)          # the buffer's own views: fused
        o2.apply(gs, tw2)                             # copies: variable by variable
    assert len(calls) == 4
    for a, b in zip(tw1, tw2):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-7)


def test_apply_none_gradients_and_errors():
    v1, v2 = axone.Variable(np.ones(2, "float32"), name="a"), axone.Variable(np.ones(3, "float32"), name="b")
    opt = AO.SGD(0.5)
    with pytest.warns(UserWarning, match="Gradients do not exist for variables"):
        opt.apply([None, np.ones(3, "float32")], [v1, v2])
    np.testing.assert_array_equal(v1.data, 1.0)
    np.testing.assert_allclose(v2.data, 0.5)
    with pytest.raises(ValueError, match="No gradients provided"):
        opt.apply([None, None], [v1, v2])
    with pytest.raises(ValueError, match="'b'"):
        opt.apply([np.ones(2), np.ones(4)], [v1, v2])
    with pytest.raises(ValueError, match="unknown variable"):
        opt.apply([np.ones(2)], [axone.Variable(np.ones(2))])
    opt.apply([axone.Tensor(np.ones(2, "float32")), np.ones(3, "float32")])   # built: vars optional
    np.testing.assert_allclose(v1.data, 0.5)
    with pytest.raises(ValueError, match="must be built"):
        AO.Adam().stateless_apply([], [], [])
    fresh = AO.Adam()
    with pytest.raises(ValueError, match="build"):
        fresh.apply([np.ones(2)])


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="beta_1"):
        AO.Lion(beta_1=0.0)
    with pytest.raises(ValueError, match="learning_rate_power"):
        AO.Ftrl(learning_rate_power=0.5)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        AO.Ftrl(initial_accumulator_value=-1.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        AO.ScheduleFreeAdamW(warmup_steps=-1)
    with pytest.raises(ValueError, match="exclude_layers"):
        AO.Muon(exclude_layers="dense")


FIT_CASES = [("Lion", dict(learning_rate=0.01)), ("Ftrl", dict(learning_rate=0.1)),
             ("Lamb", dict(learning_rate=0.01)), ("ScheduleFreeAdamW", dict(learning_rate=0.01)),
             ("Adafactor", dict(learning_rate=0.01)), ("Muon", dict(learning_rate=0.01)),
             ("LossScale", dict(initial_scale=64.0, dynamic_growth_steps=2))]


@pytest.mark.parametrize("name,kwargs", FIT_CASES)
def test_fit_matches_keras(name, kwargs):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((24, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]
    w = [rng.standard_normal((4, 6)).astype(np.float32) * 0.5, np.zeros(6, np.float32),
         rng.standard_normal((6, 3)).astype(np.float32) * 0.5, np.zeros(3, np.float32)]
    out = []
    for lib in (keras, axone):
        m = lib.Sequential([lib.Input((4,)), lib.layers.Dense(6, activation="tanh"),
                            lib.layers.Dense(3, activation="softmax")])
        m.set_weights([a.copy() for a in w])
        if name == "LossScale":
            opt = lib.optimizers.LossScaleOptimizer(lib.optimizers.Adam(0.01), **kwargs)
        else:
            opt = getattr(lib.optimizers, name)(**kwargs)
        m.compile(optimizer=opt, loss="categorical_crossentropy")
        if lib is axone and name in ("Adafactor", "Muon"):
            m.optimizer.build(m.trainable_weights)     # their rules need the variables' shapes
        m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
        out.append(m)
    km, am = out
    assert am.optimizer.iterations == int(km.optimizer.iterations)
    for kw, aw in zip(km.get_weights(), am.get_weights()):
        np.testing.assert_allclose(aw, kw, rtol=1e-4, atol=1e-5)


def test_adafactor_fit_without_build_equals_fit_after_build():
    x, y = np.ones((4, 4), np.float32), np.ones((4, 2), np.float32)
    out = []
    for build in (False, True):
        axone.utils.set_random_seed(0)
        m = axone.Sequential([axone.layers.Input((4,)), axone.layers.Dense(2)])
        m.compile(optimizer="adafactor", loss="mse")
        if build:
            m.optimizer.build(m.trainable_weights)
        m.fit(x, y, epochs=2, verbose=0)
        out.append(m.get_weights())
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def _multi(lib, w0):
    m = lib.Sequential([lib.Input((3,)), lib.layers.Dense(2, name="enc")])
    m.set_weights([a.copy() for a in w0])
    om = lib.optimizers.OptimizerMap(lib.optimizers.SGD(0.1))
    om[".*enc/bias"] = lib.optimizers.Adam(0.1)
    return m, lib.optimizers.MultiOptimizer(om)


def test_multi_optimizer_matches_keras():
    rng = np.random.default_rng(0)
    w0 = [rng.normal(size=s).astype("float32") for s in [(3, 2), (2,)]]
    (km, ko), (am, ao) = _multi(keras, w0), _multi(axone, w0)
    for _ in range(3):
        g = [rng.normal(size=w.shape).astype("float32") for w in w0]
        ko.apply([keras.ops.convert_to_tensor(x) for x in g], km.trainable_weights)
        ao.apply(g, am.trainable_weights)
    for k, a in zip(km.get_weights(), am.get_weights()):
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-6)
    assert ao.iterations == int(ko.iterations) and len(ao.variables) == len(ko.variables)
    assert isinstance(ao.optimizers[1], AO.SGD) and isinstance(ao.optimizers[0], AO.Adam)
    again = AO.deserialize(AO.serialize(ao))
    assert isinstance(again, AO.MultiOptimizer)
    with pytest.raises(AttributeError, match="sub-optimizers"):
        ao.learning_rate
    om = AO.OptimizerMap(AO.SGD())
    with pytest.raises(ValueError, match="LossScaleOptimizer"):
        om["x"] = AO.LossScaleOptimizer(AO.SGD())
    om["a.*"] = AO.Adam()
    om["ab.*"] = AO.Adam()
    with pytest.raises(ValueError, match="Multiple optimizers"):
        om["abc"]
