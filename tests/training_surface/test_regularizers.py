"""Regularizers: penalty values and gradients (L2 = λΣw², no ½), their place in the training
loss against Keras 3 (same weights, same data), and the SGD update of SPEC §8 errata."""
import math

import numpy as np
import pytest
import torch

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone
from axone import Tensor, ops, regularizers as R

KR = keras.regularizers
LOSS_RTOL = 1e-5


def _w(shape=(5, 4), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _pen(reg, w):
    out = reg(Tensor(w))
    return float(np.asarray(out.data if isinstance(out, Tensor) else out))


def _kpen(reg, w):
    return float(keras.ops.convert_to_numpy(reg(torch.tensor(w))))


# ----------------------------------------------------------- penalty values
CASES = [
    (lambda m: m.L1(0.03), lambda m: m.L1(0.03)),
    (lambda m: m.L2(0.05), lambda m: m.L2(0.05)),
    (lambda m: m.L1L2(l1=0.01, l2=0.02), lambda m: m.L1L2(l1=0.01, l2=0.02)),
    (lambda m: m.L1L2(l2=0.3), lambda m: m.L1L2(l2=0.3)),
    (lambda m: m.L1L2(l1=0.3), lambda m: m.L1L2(l1=0.3)),
    (lambda m: m.L1L2(), lambda m: m.L1L2()),
    (lambda m: m.L1(), lambda m: m.L1()),
    (lambda m: m.L2(), lambda m: m.L2()),
    (lambda m: m.get("l1"), lambda m: m.get("l1")),
    (lambda m: m.get("l2"), lambda m: m.get("l2")),
    (lambda m: m.get("L1"), lambda m: m.get("L1")),
    (lambda m: m.get("l1_l2"), lambda m: m.L1L2(0.01, 0.01)),
    (lambda m: m.l1_l2(), lambda m: m.L1L2(0.01, 0.01)),
    (lambda m: m.l1(0.2), lambda m: m.L1(0.2)),
    (lambda m: m.l2(0.2), lambda m: m.L2(0.2)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("shape", [(5, 4), (7,), (3, 3, 2, 4)])
def test_penalty_equals_keras(case, shape):
    ours, theirs = CASES[case][0](R), CASES[case][1](KR)
    w = _w(shape, seed=case)
    assert _pen(ours, w) == pytest.approx(_kpen(theirs, w), rel=1e-6, abs=1e-7)


def test_penalty_formulas_and_defaults():
    w = _w((6, 3), seed=1).astype(np.float64)
    l1, l2 = np.abs(w).sum(), (w ** 2).sum()
    assert _pen(R.L1(0.3), w) == pytest.approx(0.3 * l1)
    assert _pen(R.L2(0.3), w) == pytest.approx(0.3 * l2)         # no ½
    assert _pen(R.L1L2(0.1, 0.2), w) == pytest.approx(0.1 * l1 + 0.2 * l2)
    assert _pen(R.get("l1"), w) == pytest.approx(0.01 * l1)
    assert _pen(R.get("l2"), w) == pytest.approx(0.01 * l2)
    assert _pen(R.get("l1_l2"), w) == pytest.approx(0.01 * (l1 + l2))
    assert _pen(R.L1L2(), w) == 0.0                              # class default: no penalty
    assert R.L1().l1 == 0.01 and R.L2().l2 == 0.01


# ----------------------------------------------------------- gradients
@pytest.mark.parametrize("lam", [0.01, 0.3])
def test_l2_gradient_is_2_lambda_w(lam):
    w = _w((4, 6), seed=2)
    for reg in (R.L2(lam), R.L1L2(l2=lam)):
        t = Tensor(w, requires_grad=True)
        reg(t).backward()
        np.testing.assert_allclose(np.asarray(t.grad), 2 * lam * w, rtol=1e-6)
    kt = torch.tensor(w, requires_grad=True)
    KR.L2(lam)(kt).backward()
    np.testing.assert_allclose(np.asarray(t.grad), kt.grad.numpy(), rtol=1e-6)


def test_l1_and_l1l2_gradients():
    w = _w((4, 6), seed=3)
    t = Tensor(w, requires_grad=True)
    R.L1(0.2)(t).backward()
    np.testing.assert_allclose(np.asarray(t.grad), 0.2 * np.sign(w), rtol=1e-6)
    t = Tensor(w, requires_grad=True)
    R.L1L2(0.2, 0.5)(t).backward()
    np.testing.assert_allclose(np.asarray(t.grad), 0.2 * np.sign(w) + 2 * 0.5 * w, rtol=1e-6)


# ----------------------------------------------------------- config / get / errors
@pytest.mark.parametrize("make,cfg", [(lambda: R.L1(0.3), {"l1": 0.3}),
                                      (lambda: R.L2(0.25), {"l2": 0.25}),
                                      (lambda: R.L1L2(0.1, 0.2), {"l1": 0.1, "l2": 0.2}),
                                      (lambda: R.get("l1_l2"), {"l1": 0.01, "l2": 0.01})])
def test_get_config_from_config(make, cfg):
    reg = make()
    assert reg.get_config() == pytest.approx(cfg)
    back = type(reg).from_config(reg.get_config())
    assert type(back) is type(reg) and back.get_config() == reg.get_config()
    w = _w(seed=4)
    assert _pen(back, w) == _pen(reg, w)
    # same keys and values as Keras
    kreg = getattr(KR, type(reg).__name__).from_config(cfg)
    assert set(kreg.get_config()) == set(cfg)
    assert kreg.get_config() == pytest.approx(reg.get_config())
    # serialize → get round trip, and a Keras-written dict loads
    assert R.get(R.serialize(reg)).get_config() == reg.get_config()
    assert R.get(KR.serialize(kreg)).get_config() == pytest.approx(reg.get_config())


def test_module_has_keras_deserialize():
    """keras.regularizers has serialize / deserialize / get."""
    assert callable(getattr(R, "deserialize", None)), "axone.regularizers.deserialize is missing"
    back = R.deserialize(R.serialize(R.L2(0.2)))
    assert isinstance(back, R.L2) and back.l2 == pytest.approx(0.2)


def test_get_by_class_instantiates_like_keras():
    assert isinstance(KR.get(KR.L2), KR.L2)
    reg = R.get(R.L2)
    assert isinstance(reg, R.L2), f"get(L2) returned {reg!r}, not an instance"


def test_dense_accepts_regularizer_class():
    layer = axone.layers.Dense(2, kernel_regularizer=R.L2, kernel_initializer="ones")
    layer.build((None, 3))
    assert [float(np.asarray(p.data)) for p in layer.losses] == pytest.approx([0.01 * 6])


def test_get_instance_callable_none_and_unknown():
    reg = R.L1(0.1)
    assert R.get(reg) is reg
    assert R.get(None) is None
    f = lambda w: ops.sum(w) * 0.0  # noqa: E731
    assert R.get(f) is f
    with pytest.raises(ValueError, match="l2"):
        R.get("l3")
    with pytest.raises(ValueError):
        R.get({"class_name": "L7", "config": {}})


@pytest.mark.parametrize("make", [lambda m: m.L1(-0.1), lambda m: m.L2(-1.0),
                                  lambda m: m.L1L2(l1=-0.01), lambda m: m.L1L2(l2=-0.01),
                                  lambda m: m.l1(-1.0), lambda m: m.l2(-1.0),
                                  lambda m: m.l1_l2(-1.0, 0.0), lambda m: m.l1_l2(0.0, -1.0)])
def test_negative_factor_raises_value_error(make):
    with pytest.raises(ValueError):
        make(KR)
    with pytest.raises(ValueError):
        make(R)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_factor_raises_value_error_like_keras(bad):
    with pytest.raises(ValueError):
        KR.L2(bad)
    with pytest.raises(ValueError):
        R.L2(bad)
    with pytest.raises(ValueError):
        R.L1(bad)


# ----------------------------------------------------------- in a layer
def test_dense_layer_losses_match_keras():
    r = np.random.default_rng(5)
    w = [r.normal(size=(4, 3)).astype(np.float32), r.normal(size=(3,)).astype(np.float32)]
    x = r.normal(size=(6, 4)).astype(np.float32)

    def make(lib):
        d = lib.layers.Dense(3, activation="tanh", kernel_regularizer=lib.regularizers.L1(0.02),
                             bias_regularizer=lib.regularizers.L2(0.3),
                             activity_regularizer=lib.regularizers.L2(0.05))
        d.build((None, 4))
        d.set_weights(w)
        d(x)
        return d
    ours = sorted(float(np.asarray(p.data if isinstance(p, Tensor) else p)) for p in make(axone).losses)
    theirs = sorted(float(keras.ops.convert_to_numpy(p)) for p in make(keras).losses)
    assert ours == pytest.approx(theirs, rel=1e-5)
    y = np.tanh(x @ w[0] + w[1])
    want = sorted([0.02 * np.abs(w[0]).sum(), 0.3 * (w[1] ** 2).sum(), 0.05 * (y ** 2).sum() / 6])
    assert ours == pytest.approx(want, rel=1e-5)


def test_kernel_regularizer_does_not_penalize_bias():
    layer = axone.layers.Dense(3, kernel_regularizer="l2", bias_initializer="ones",
                               kernel_initializer="ones")
    layer.build((None, 2))
    pens = [float(np.asarray(p.data)) for p in layer.losses]
    assert pens == pytest.approx([0.01 * 6])
    layer = axone.layers.Dense(3, bias_regularizer="l1", bias_initializer="ones")
    layer.build((None, 2))
    assert [float(np.asarray(p.data)) for p in layer.losses] == pytest.approx([0.03])
    assert axone.layers.Dense(3).get_config()["kernel_regularizer"] is None


def test_dense_config_round_trip_keeps_regularizers():
    layer = axone.layers.Dense(3, kernel_regularizer=R.L1L2(0.1, 0.2), bias_regularizer="l2",
                               activity_regularizer=R.L1(0.05))
    back = axone.layers.Dense.from_config(layer.get_config())
    assert back.kernel_regularizer.get_config() == {"l1": 0.1, "l2": 0.2}
    assert back.bias_regularizer.get_config() == {"l2": 0.01}
    assert back.activity_regularizer.get_config() == {"l1": 0.05}


# ----------------------------------------------------------- training loss vs Keras
N, IN, HID, OUT = 40, 4, 5, 2

REG_SETUPS = {
    "kernel_l1": lambda m: dict(kernel_regularizer=m.regularizers.L1(0.03)),
    "kernel_l2": lambda m: dict(kernel_regularizer=m.regularizers.L2(0.05)),
    "kernel_l1l2": lambda m: dict(kernel_regularizer=m.regularizers.L1L2(0.01, 0.02)),
    "kernel_str_l1": lambda m: dict(kernel_regularizer="l1"),
    "kernel_str_l2": lambda m: dict(kernel_regularizer="l2"),
    "kernel_str_l1_l2": lambda m: dict(kernel_regularizer="l1_l2" if m is axone
                                       else m.regularizers.L1L2(0.01, 0.01)),
    "bias_l2": lambda m: dict(bias_regularizer=m.regularizers.L2(0.1)),
    "bias_l1": lambda m: dict(bias_regularizer="l1"),
    "activity_l1": lambda m: dict(activity_regularizer=m.regularizers.L1(0.02)),
    "activity_l2": lambda m: dict(activity_regularizer=m.regularizers.L2(0.05)),
    "all_three": lambda m: dict(kernel_regularizer=m.regularizers.L2(0.04),
                                bias_regularizer=m.regularizers.L1(0.05),
                                activity_regularizer=m.regularizers.L1L2(0.01, 0.03)),
}


def _data(seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(N, IN)).astype(np.float32)
    y = r.normal(size=(N, OUT)).astype(np.float32)
    return x, y


def _pair(setup, seed=0, lr=0.1):
    def build(lib):
        return lib.Sequential([lib.Input((IN,)),
                               lib.layers.Dense(HID, activation="tanh", **REG_SETUPS[setup](lib)),
                               lib.layers.Dense(OUT, kernel_regularizer=lib.regularizers.L2(0.02))])
    km, am = build(keras), build(axone)
    r = np.random.default_rng(seed + 50)
    weights = [(r.normal(size=w.shape) * (0.5 if w.ndim > 1 else 0.3)).astype(np.float32)
               for w in km.get_weights()]
    km.set_weights(weights)
    am.set_weights(weights)
    km.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse")
    am.compile(optimizer=axone.optimizers.SGD(learning_rate=lr), loss="mse")
    return km, am, weights


def _f(v):
    return float(np.asarray(v).ravel()[0]) if np.ndim(v) else float(v)


@pytest.mark.parametrize("setup", sorted(REG_SETUPS))
def test_reported_losses_match_keras(setup):
    km, am, _ = _pair(setup)
    x, y = _data()
    assert _f(am.test_on_batch(x, y)) == pytest.approx(_f(km.test_on_batch(x, y)), rel=LOSS_RTOL)
    assert _f(am.evaluate(x, y, batch_size=16, verbose=0)) == pytest.approx(
        _f(km.evaluate(x, y, batch_size=16, verbose=0)), rel=LOSS_RTOL)
    assert _f(am.train_on_batch(x, y)) == pytest.approx(_f(km.train_on_batch(x, y)), rel=LOSS_RTOL)
    for a, k in zip(am.get_weights(), km.get_weights()):          # the step includes the penalty
        np.testing.assert_allclose(a, k, rtol=1e-5, atol=1e-6)
    assert _f(am.test_on_batch(x, y)) == pytest.approx(_f(km.test_on_batch(x, y)), rel=LOSS_RTOL)


@pytest.mark.parametrize("setup", ["all_three", "activity_l2"])
def test_fit_history_matches_keras(setup):
    km, am, _ = _pair(setup, seed=1, lr=0.05)
    x, y = _data(seed=1)
    kh = km.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    ah = axone_h = am.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    assert ah == pytest.approx(kh, rel=LOSS_RTOL), (axone_h, kh)
    for a, k in zip(am.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, k, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("setup", ["kernel_l2", "bias_l2", "activity_l1", "all_three"])
def test_loss_is_data_loss_plus_penalty(setup):
    """Hand check: loss = mse + Σ weight penalties + activity penalty / batch size."""
    km, am, w = _pair(setup)
    x, y = _data()
    w = [v.astype(np.float64) for v in w]
    h = np.tanh(x @ w[0] + w[1])
    out = h @ w[2] + w[3]
    data = ((out - y) ** 2).mean()
    pen = 0.02 * (w[2] ** 2).sum()                   # second layer kernel; its bias is free
    if setup == "kernel_l2":
        pen += 0.05 * (w[0] ** 2).sum()
    elif setup == "bias_l2":
        pen += 0.1 * (w[1] ** 2).sum()
    elif setup == "activity_l1":
        pen += 0.02 * np.abs(h).sum() / N
    else:
        pen += 0.04 * (w[0] ** 2).sum() + 0.05 * np.abs(w[1]).sum()
        pen += (0.01 * np.abs(h).sum() + 0.03 * (h ** 2).sum()) / N
    assert _f(am.test_on_batch(x, y)) == pytest.approx(data + pen, rel=LOSS_RTOL)
    # without any regularizer the same model reports the bare data loss
    plain = axone.Sequential([axone.Input((IN,)), axone.layers.Dense(HID, activation="tanh"),
                              axone.layers.Dense(OUT)])
    plain.set_weights([v.astype(np.float32) for v in w])
    plain.compile(optimizer="sgd", loss="mse")
    assert _f(plain.test_on_batch(x, y)) == pytest.approx(data, rel=LOSS_RTOL)


def test_activity_penalty_divided_by_batch_size_in_evaluate():
    """Batches of 16, 16 and 8: each batch's activity penalty is divided by its own size,
    and evaluate averages batch losses weighted by batch size (Keras)."""
    km, am, _ = _pair("activity_l1")
    x, y = _data(seed=3)
    for bs in (8, 16, 40):
        assert _f(am.evaluate(x, y, batch_size=bs, verbose=0)) == pytest.approx(
            _f(km.evaluate(x, y, batch_size=bs, verbose=0)), rel=LOSS_RTOL), bs


def test_frozen_layer_regularizer_like_keras():
    """Keras counts the penalties of trainable weights only (Layer._get_regularization_losses
    iterates trainable_weights): a frozen regularized layer adds nothing to the loss."""
    km, am, _ = _pair("kernel_l2")
    km.layers[0].trainable = False
    am.layers[0].trainable = False
    km.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    am.compile(optimizer=axone.optimizers.SGD(learning_rate=0.1), loss="mse")
    x, y = _data()
    assert _f(am.test_on_batch(x, y)) == pytest.approx(_f(km.test_on_batch(x, y)), rel=LOSS_RTOL)
    assert _f(am.train_on_batch(x, y)) == pytest.approx(_f(km.train_on_batch(x, y)), rel=LOSS_RTOL)


# ----------------------------------------------------------- SPEC §8: the L1/L2 update
@pytest.mark.parametrize("a1,a2", [(0.05, 0.0), (0.0, 0.1), (0.05, 0.1)])
def test_sgd_step_with_l1_l2_penalty(a1, a2):
    """w ← w − η(∂E/∂w + α₁ sign(w) + 2α₂ w); the bias is not penalized."""
    r = np.random.default_rng(7)
    x = r.normal(size=(10, 3)).astype(np.float32)
    y = r.normal(size=(10, 1)).astype(np.float32)
    w0 = r.normal(size=(3, 1)).astype(np.float32)
    b0 = np.array([0.4], np.float32)
    eta = 0.1
    model = axone.Sequential([axone.Input((3,)),
                              axone.layers.Dense(1, kernel_regularizer=R.L1L2(l1=a1, l2=a2))])
    model.set_weights([w0, b0])
    model.compile(optimizer=axone.optimizers.SGD(learning_rate=eta), loss="mse")
    loss = _f(model.train_on_batch(x, y))
    xd, yd, wd, bd = (v.astype(np.float64) for v in (x, y, w0, b0))
    err = xd @ wd + bd - yd
    assert loss == pytest.approx((err ** 2).mean() + a1 * np.abs(wd).sum() + a2 * (wd ** 2).sum(),
                                 rel=1e-5)
    dEdw = 2 * xd.T @ err / len(x)
    dEdb = 2 * err.mean(axis=0)
    w1, b1 = model.get_weights()
    np.testing.assert_allclose(w1, wd - eta * (dEdw + a1 * np.sign(wd) + 2 * a2 * wd), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(b1, bd - eta * dEdb, rtol=1e-5, atol=1e-6)
    # the ½-convention (2α₂ → α₂) would differ measurably here
    if a2:
        half = wd - eta * (dEdw + a1 * np.sign(wd) + a2 * wd)
        assert not np.allclose(w1, half, rtol=1e-5, atol=1e-6)
