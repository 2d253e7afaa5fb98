"""Keras 3 optimizer options: use_ema (+ ema_overwrite_frequency), gradient_accumulation_steps,
loss_scale_factor — against Keras 3 through apply_gradients and through fit, on the flat
buffer and per variable, fused and NumPy."""
import numpy as np
import pytest

import axone

keras = pytest.importorskip("keras")

OPTION_CASES = [
    ("SGD", dict(learning_rate=0.1, use_ema=True)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9, use_ema=True, ema_momentum=0.8,
                 ema_overwrite_frequency=2)),
    ("Adam", dict(learning_rate=0.01, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)),
    ("SGD", dict(learning_rate=0.1, gradient_accumulation_steps=2)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9, gradient_accumulation_steps=3)),
    ("Adam", dict(learning_rate=0.01, gradient_accumulation_steps=2)),
    ("Adam", dict(learning_rate=0.01, gradient_accumulation_steps=3, use_ema=True,
                  ema_overwrite_frequency=2, global_clipnorm=1.0)),
    ("SGD", dict(learning_rate=0.1, loss_scale_factor=8.0)),
    ("Adam", dict(learning_rate=0.01, loss_scale_factor=128.0, clipnorm=0.5)),
    ("Nadam", dict(learning_rate=0.01, gradient_accumulation_steps=2, use_ema=True)),
]


def _ids(cases):
    return [c[0] + "-" + "-".join(f"{k}={v}" for k, v in c[1].items() if k != "learning_rate")
            for c in cases]


def _data(seed=0, shapes=((7, 5), (5,)), steps=7):
    rng = np.random.default_rng(seed)
    w = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    gs = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(steps)]
    return w, gs


@pytest.mark.parametrize("name, kwargs", OPTION_CASES, ids=_ids(OPTION_CASES))
def test_apply_gradients_with_options_matches_keras(name, kwargs):
    w0, grads = _data()
    kvars = [keras.Variable(w.copy()) for w in w0]
    avars = [axone.Variable(w.copy()) for w in w0]
    kopt = getattr(keras.optimizers, name)(**kwargs)
    aopt = getattr(axone.optimizers, name)(**kwargs)
    for gs in grads:
        kopt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in gs], kvars))
        aopt.apply_gradients(zip(gs, avars))
        assert aopt.iterations == int(kopt.iterations)
        for kv, av in zip(kvars, avars):
            np.testing.assert_allclose(av.numpy(), np.asarray(kv.numpy()), rtol=1e-5, atol=1e-6)
    kopt.finalize_variable_values(kvars)
    aopt.finalize_variable_values(avars)
    for kv, av in zip(kvars, avars):
        np.testing.assert_allclose(av.numpy(), np.asarray(kv.numpy()), rtol=1e-5, atol=1e-6)


def test_accumulation_counts_updates_and_the_schedule_sees_every_call():
    lr = axone.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    klr = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    w0, grads = _data(3, ((4,),), steps=6)
    av, kv = axone.Variable(w0[0].copy()), keras.Variable(w0[0].copy())
    aopt = axone.optimizers.SGD(learning_rate=lr, gradient_accumulation_steps=3)
    kopt = keras.optimizers.SGD(learning_rate=klr, gradient_accumulation_steps=3)
    for i, gs in enumerate(grads):
        aopt.apply_gradients([(gs[0], av)])
        kopt.apply_gradients([(keras.ops.convert_to_tensor(gs[0]), kv)])
        assert aopt.iterations == int(kopt.iterations) == (i + 1) // 3
        np.testing.assert_allclose(av.numpy(), np.asarray(kv.numpy()), rtol=1e-6, atol=1e-7)
    # by hand: the 3rd call applies the mean of calls 1-3 at lr(2) = 0.025, the 6th at lr(5)
    want = w0[0] - 0.025 * np.mean([g[0] for g in grads[:3]], axis=0) \
        - 0.1 * 0.5 ** 5 * np.mean([g[0] for g in grads[3:]], axis=0)
    np.testing.assert_allclose(av.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
@pytest.mark.parametrize("name, kwargs", OPTION_CASES, ids=_ids(OPTION_CASES))
def test_flat_buffer_with_options_equals_per_variable(name, kwargs, fused):
    w0, grads = _data(1)
    avars = [axone.Variable(w.copy()) for w in w0]
    aopt = getattr(axone.optimizers, name)(**kwargs)
    fopt = getattr(axone.optimizers, name)(**kwargs)
    aopt.use_fused = fopt.use_fused = fused
    flat = np.concatenate([w.ravel() for w in w0])
    bounds = np.cumsum([0] + [w.size for w in w0])
    segments = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    for gs in grads:
        aopt.apply_gradients(zip(gs, avars))
        fopt.update_flat(flat, np.concatenate([g.ravel() for g in gs]), segments)
    assert fopt.iterations == aopt.iterations
    np.testing.assert_allclose(flat, np.concatenate([v.numpy().ravel() for v in avars]),
                               rtol=1e-6, atol=1e-7)
    names = set(fopt._state_names) | ({"average"} if kwargs.get("use_ema") else set()) | (
        {"gradient_accumulator"} if kwargs.get("gradient_accumulation_steps") else set())
    assert set(fopt._flat_state_names()) == names
    assert names == {k for k in fopt._flat_state if not k.startswith("_")}
    if "loss_scale_factor" in kwargs:     # the same as the plain rule on the unscaled gradients
        plain = {k: v for k, v in kwargs.items() if k != "loss_scale_factor"}
        popt = getattr(axone.optimizers, name)(**plain)
        ref = np.concatenate([w.ravel() for w in w0])
        for gs in grads:
            popt.update_flat(ref, np.concatenate([g.ravel() for g in gs]) / kwargs["loss_scale_factor"],
                             segments)
        np.testing.assert_allclose(flat, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name, kwargs", OPTION_CASES[:7], ids=_ids(OPTION_CASES[:7]))
def test_fused_and_numpy_paths_agree_bit_for_bit(name, kwargs):
    w0, grads = _data(2)
    flat0 = np.concatenate([w.ravel() for w in w0])
    out = []
    for fused in (True, False):
        opt = getattr(axone.optimizers, name)(**kwargs)
        opt.use_fused = fused
        flat = flat0.copy()
        for gs in grads:
            opt.update_flat(flat, np.concatenate([g.ravel() for g in gs]))
        extra = [opt._flat_state[k] for k in ("average", "gradient_accumulator")
                 if kwargs.get({"average": "use_ema"}.get(k, "gradient_accumulation_steps"))]
        out.append([flat] + extra)
    assert len(out[0]) == 1 + bool(kwargs.get("use_ema")) + bool(kwargs.get("gradient_accumulation_steps"))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def _fit_pair(name, kwargs, epochs=2, batch_size=8, n=24):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    w = [rng.standard_normal((4, 6)).astype(np.float32) * 0.5, np.zeros(6, np.float32),
         rng.standard_normal((6, 3)).astype(np.float32) * 0.5, np.zeros(3, np.float32)]
    models = []
    for lib in (keras, axone):
        m = lib.Sequential([lib.Input((4,)), lib.layers.Dense(6, activation="tanh"),
                            lib.layers.Dense(3, activation="softmax")])
        m.set_weights([a.copy() for a in w])
        m.compile(optimizer=getattr(lib.optimizers, name)(**kwargs), loss="categorical_crossentropy")
        h = m.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)
        models.append((m, h))
    return models


FIT_CASES = [
    ("SGD", dict(learning_rate=0.1, use_ema=True, ema_momentum=0.9)),
    ("Adam", dict(learning_rate=0.01, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=2)),
    ("SGD", dict(learning_rate=0.1, gradient_accumulation_steps=2)),
    ("Adam", dict(learning_rate=0.01, gradient_accumulation_steps=3)),
    ("SGD", dict(learning_rate=0.1, loss_scale_factor=16.0)),
    ("Adam", dict(learning_rate=0.01, loss_scale_factor=4.0, gradient_accumulation_steps=2,
                  use_ema=True)),
]


@pytest.mark.parametrize("name, kwargs", FIT_CASES, ids=_ids(FIT_CASES))
def test_fit_with_options_matches_keras(name, kwargs):
    (km, kh), (am, ah) = _fit_pair(name, kwargs)
    assert am.optimizer.iterations == int(km.optimizer.iterations)
    for kw, aw in zip(km.get_weights(), am.get_weights()):
        np.testing.assert_allclose(aw, kw, rtol=1e-4, atol=1e-5)
    # the reported loss is the unscaled one
    np.testing.assert_allclose(ah.history["loss"], kh.history["loss"], rtol=1e-4)


def test_fit_with_ema_ends_on_the_average():
    opt = axone.optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.5)
    m = axone.Sequential([axone.Input((2,)), axone.layers.Dense(1)])
    m.compile(optimizer=opt, loss="mse")
    x = np.arange(8, dtype=np.float32).reshape(4, 2) / 8
    m.fit(x, x[:, :1], epochs=3, batch_size=2, verbose=0, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in m.get_weights()]),
                                  opt._flat_state["average"])


def test_scale_loss_and_config_round_trip():
    opt = axone.optimizers.Adam(use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=5,
                                loss_scale_factor=2.0, gradient_accumulation_steps=4)
    assert float(opt.scale_loss(3.0)) == 6.0
    cfg = opt.get_config()
    for k, v in dict(use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=5, loss_scale_factor=2.0,
                     gradient_accumulation_steps=4).items():
        assert cfg[k] == v
    again = axone.optimizers.Adam.from_config(cfg)
    assert again._flat_state_names() == ("m", "v", "average", "gradient_accumulator")
    assert axone.optimizers.SGD()._flat_state_names() == ()
    assert axone.optimizers.SGD().scale_loss(3.0) == 3.0


@pytest.mark.parametrize("bad", [
    dict(gradient_accumulation_steps=1), dict(gradient_accumulation_steps=-2),
    dict(gradient_accumulation_steps=2.5), dict(use_ema=True, ema_momentum=1.5),
    dict(use_ema=True, ema_momentum=-0.1), dict(use_ema=True, ema_overwrite_frequency=-1),
    dict(use_ema=True, ema_overwrite_frequency=1.5), dict(loss_scale_factor=0.0),
    dict(loss_scale_factor=-1.0), dict(loss_scale_factor=float("inf")), dict(loss_scale_factor="2"),
])
def test_impossible_option_values_are_rejected(bad):
    name = next(iter(k for k in bad if k != "use_ema"))
    with pytest.raises(ValueError, match=name):
        axone.optimizers.SGD(**bad)
