"""Optimizers: 5 steps on fixed weights and gradients agree with Keras 3 and PyTorch."""
import numpy as np
import pytest

import axone

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

CASES = [
    ("SGD", dict(learning_rate=0.1)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict()),
    ("Adam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-5)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True)),
    ("RMSprop", dict(learning_rate=0.01)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.9, centered=True)),
    ("Adagrad", dict(learning_rate=0.05)),
    ("Adadelta", dict(learning_rate=1.0)),
    ("Adamax", dict(learning_rate=0.01)),
    ("Nadam", dict(learning_rate=0.01)),
    ("AdamW", dict(learning_rate=0.01)),
    ("AdamW", dict(learning_rate=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(learning_rate=0.01, clipnorm=0.5)),
    ("Adam", dict(learning_rate=0.01, global_clipnorm=0.5, weight_decay=0.1)),
    ("SGD", dict(learning_rate=0.1, clipvalue=0.1)),
]


def _data(seed=0, shapes=((7, 5), (5,))):
    rng = np.random.default_rng(seed)
    w = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    gs = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(5)]
    return w, gs


@pytest.mark.parametrize("name, kwargs", CASES)
def test_apply_gradients_matches_keras(name, kwargs):
    w0, grads = _data()
    kvars = [keras.Variable(w.copy()) for w in w0]
    avars = [axone.Variable(w.copy()) for w in w0]
    kopt = getattr(keras.optimizers, name)(**kwargs)
    aopt = getattr(axone.optimizers, name)(**kwargs)
    for gs in grads:
        kopt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in gs], kvars))
        aopt.apply_gradients(zip(gs, avars))
    for kv, av in zip(kvars, avars):
        np.testing.assert_allclose(av.numpy(), np.asarray(kv.numpy()), rtol=1e-5, atol=1e-6)
    assert aopt.iterations == 5


@pytest.mark.parametrize("name, kwargs", CASES)
def test_flat_buffer_update_equals_per_variable_update(name, kwargs):
    w0, grads = _data(1)
    avars = [axone.Variable(w.copy()) for w in w0]
    aopt = getattr(axone.optimizers, name)(**kwargs)
    flat = np.concatenate([w.ravel() for w in w0])
    fopt = getattr(axone.optimizers, name)(**kwargs)
    bounds = np.cumsum([0] + [w.size for w in w0])
    segments = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    for gs in grads:
        aopt.apply_gradients(zip(gs, avars))
        fopt.update_flat(flat, np.concatenate([g.ravel() for g in gs]), segments)
    np.testing.assert_allclose(flat, np.concatenate([v.numpy().ravel() for v in avars]), rtol=1e-6, atol=1e-7)


def test_sgd_momentum_matches_torch():
    # torch's SGD keeps v ← μv + g and steps −ηv: the same trajectory as Keras's v ← μv − ηg
    w0, grads = _data(2, ((6,),))
    tw = torch.tensor(w0[0].copy(), requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.05, momentum=0.9)
    av = axone.Variable(w0[0].copy())
    aopt = axone.optimizers.SGD(learning_rate=0.05, momentum=0.9)
    for gs in grads:
        tw.grad = torch.tensor(gs[0])
        topt.step()
        aopt.apply_gradients([(gs[0], av)])
    np.testing.assert_allclose(av.numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_optimizer_names_and_bad_arguments():
    assert isinstance(axone.optimizers.get("adam"), axone.optimizers.Adam)
    assert isinstance(axone.optimizers.get("SGD"), axone.optimizers.SGD)
    with pytest.raises(ValueError, match="valid names"):
        axone.optimizers.get("adamx")
    with pytest.raises(ValueError, match="learning_rate"):
        axone.optimizers.SGD(learning_rate=-1)
    with pytest.raises(ValueError, match="beta_1"):
        axone.optimizers.Adam(beta_1=1.5)
    with pytest.raises(ValueError, match="shape"):
        axone.optimizers.SGD().apply_gradients([(np.zeros(3), axone.Variable(np.zeros(4)))])


def test_legacy_lr_and_decay_arguments():
    opt = axone.optimizers.SGD(lr=0.1, decay=0.5)
    assert opt.learning_rate == pytest.approx(0.1)
    v = axone.Variable(np.zeros(1, np.float32))
    opt.apply_gradients([(np.ones(1, np.float32), v)])      # step 0: lr 0.1
    opt.apply_gradients([(np.ones(1, np.float32), v)])      # step 1: lr 0.1 / (1 + 0.5)
    assert float(v.numpy()[0]) == pytest.approx(-(0.1 + 0.1 / 1.5), rel=1e-6)


SCHEDULES = [
    ("ExponentialDecay", (0.1, 3, 0.5), {}),
    ("ExponentialDecay", (0.1, 3, 0.5), {"staircase": True}),
    ("InverseTimeDecay", (0.1, 2, 0.3), {}),
    ("InverseTimeDecay", (0.1, 2, 0.3), {"staircase": True}),
    ("PiecewiseConstantDecay", ([3, 6], [0.1, 0.05, 0.01]), {}),
    ("CosineDecay", (0.1, 10), {"alpha": 0.1}),
    ("CosineDecay", (0.0, 10), {"warmup_target": 0.1, "warmup_steps": 4}),
]


@pytest.mark.parametrize("name, args, kwargs", SCHEDULES)
def test_schedules_match_keras(name, args, kwargs):
    ks = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
    s = getattr(axone.optimizers.schedules, name)(*args, **kwargs)
    for t in range(25):
        assert s(t) == pytest.approx(float(ks(t)), rel=1e-6, abs=1e-9)


def test_course_001_schedules():
    import math
    S = axone.optimizers.schedules
    assert S.ExponentialDecay(0.1, 1, math.exp(-0.1))(10) == pytest.approx(0.03679, abs=5e-6)
    step = S.StepDecay(0.1, 0.5, 10)
    assert step(10) == pytest.approx(0.05) and step(20) == pytest.approx(0.025) and step(9) == 0.1
    assert S.ExponentialDecay(0.1, 10, 0.5, staircase=True)(20) == pytest.approx(0.025)
    assert S.InverseTimeDecay(0.1, 1, 0.5)(2) == pytest.approx(0.05)


def test_schedule_drives_the_optimizer_step_by_step():
    sched = axone.optimizers.schedules.PiecewiseConstantDecay([0], [1.0, 0.5])
    opt = axone.optimizers.SGD(learning_rate=sched)
    v = axone.Variable(np.zeros(1, np.float32))
    opt.apply_gradients([(np.ones(1, np.float32), v)])
    opt.apply_gradients([(np.ones(1, np.float32), v)])
    assert float(v.numpy()[0]) == pytest.approx(-1.5)


@pytest.mark.parametrize("bad", [
    lambda: axone.optimizers.schedules.ExponentialDecay(0.1, 0, 0.5),
    lambda: axone.optimizers.schedules.InverseTimeDecay(0.1, -1, 0.5),
    lambda: axone.optimizers.schedules.PiecewiseConstantDecay([1, 2], [0.1]),
    lambda: axone.optimizers.schedules.CosineDecay(0.1, 0),
])
def test_impossible_schedule_arguments(bad):
    with pytest.raises(ValueError):
        bad()


def test_apply_gradients_refuses_what_is_not_pairs():
    v = axone.Variable(np.zeros(3, "float32"))
    with pytest.raises(TypeError, match="apply_gradients: expected \\(gradient, variable\\) pairs"):
        axone.optimizers.SGD().apply_gradients([np.zeros(3, "float32")])
    with pytest.raises(TypeError, match="pairs"):
        axone.optimizers.SGD().apply_gradients([(np.zeros(3, "float32"), v, v)])
