"""Models on a device: weights, optimizer state and the flat buffers stay there through fit,
evaluate, predict and the *_on_batch calls; what comes back is host data.

The strict stand-in (``strict_xp``) plays the GPU: ``axone.device("gpu:0")`` selects it, so a
model built in that scope has StrictArray weights, and any NumPy call on them fails.  With
AXONE_TEST_DEVICE=cupy (``strict_xp.IS_STAND_IN`` False) the same tests run on the real
``axone.device("gpu:0")``, StrictArray then being ``cupy.ndarray``.  Each
model is trained the same way on the CPU and on the "GPU" and the two compared, with losses
written with ``axone.ops`` (a scalar per batch) and with the built-in Loss objects (their
reduction, sample and class weights on the device).
"""
import numpy as np
import pytest

import axone
from axone import device as dev
from axone import layers, losses, models, ops, optimizers

import strict_xp
from strict_xp import StrictArray


class _Cuda:
    """A stand-in ``cupy.cuda``: Device contexts that do nothing."""

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False


@pytest.fixture
def gpu(monkeypatch):
    """``axone.device("gpu:0")`` gives the strict module (registered for StrictArrays); on a
    real device (AXONE_TEST_DEVICE=cupy) the real ``gpu:0``, the device probe left as it is.
    The default device is the CPU in both modes (the CPU models the device ones are compared
    with)."""
    monkeypatch.setattr(dev, "_default", dev._CPU)
    if not strict_xp.IS_STAND_IN:
        if not dev.gpu_available():
            pytest.skip("AXONE_TEST_DEVICE=cupy but CuPy sees no GPU")
        yield lambda: axone.device("gpu:0")
        return
    monkeypatch.setattr(dev, "_gpu", (strict_xp.strict_xp, 1, None))
    monkeypatch.setattr(strict_xp.strict_xp, "cuda", _Cuda(), raising=False)
    before = dict(dev._MODULES)
    strict_xp.register()
    yield lambda: axone.device("gpu:0")
    dev._MODULES.clear()
    dev._MODULES.update(before)


def sce(y, p):
    """Mean sparse categorical cross-entropy of the batch, from ops (one scalar)."""
    return ops.mean(ops.sparse_categorical_crossentropy(y, p))


def mse(y, p):
    return ops.mean(ops.square(p - y))


def _data(shape=(4,), n=40, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + shape).astype("float32")
    return x, rng.integers(0, classes, n)


def _dense(opt="adam", loss=sce, metrics=("accuracy",)):
    axone.utils.set_random_seed(0)
    m = models.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"),
                           layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizers.get(opt) if isinstance(opt, str) else opt(), loss=loss,
              metrics=list(metrics))
    return m


class _OnDevice(axone.callbacks.Callback):
    """Checks at every batch that the weights, gradients and optimizer state are device arrays."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        m = self.model
        assert all(type(w.data) is StrictArray for w in m.weights)
        buf = m._buffer
        assert type(buf[1]) is StrictArray and type(buf[2]) is StrictArray
        opt = getattr(m.optimizer, "inner_optimizer", m.optimizer)
        if isinstance(opt, optimizers.MultiOptimizer):
            return                      # its optimizers' state: checked by its test
        state = {k: a for k, a in opt._flat_state.items()
                 if k[0] != "_" and hasattr(a, "shape")}
        assert state or not opt._state_names
        assert all(type(a) is StrictArray for a in state.values()), \
            {k: type(a).__name__ for k, a in state.items()}
        per_var = opt.variables[opt._n_scalar_vars():]          # Keras's per-variable views
        assert all(type(v.data) is StrictArray for v in per_var), \
            {v.name: type(v.data).__name__ for v in per_var}
        assert isinstance(logs["loss"], float)


def _fit_both(gpu, make, x, y, epochs=3, batch_size=16, **fit):
    cpu_model = make()
    h_cpu = cpu_model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=False,
                          **fit)
    check = _OnDevice()
    with gpu():
        dev_model = make()
        assert all(type(w.data) is StrictArray for w in dev_model.weights)
        h_dev = dev_model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                              shuffle=False, callbacks=[check], **fit)
    assert check.batches == epochs * -(-len(x) // batch_size)
    return cpu_model, h_cpu, dev_model, h_dev


def _same_history(h_cpu, h_dev, rtol=1e-5):
    assert sorted(h_cpu.history) == sorted(h_dev.history)
    for k, v in h_cpu.history.items():
        assert all(isinstance(e, float) for e in h_dev.history[k]), k
        np.testing.assert_allclose(h_dev.history[k], v, rtol=rtol, atol=1e-6, err_msg=k)


def _same_weights(a, b, rtol=1e-5, atol=1e-6):
    wa, wb = a.get_weights(), b.get_weights()
    assert all(type(w) is np.ndarray for w in wb)
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        np.testing.assert_allclose(v, u, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ Dense, every elementwise rule
@pytest.mark.parametrize("opt", [
    "sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "adamw", "lion", "ftrl",
    lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: optimizers.RMSprop(centered=True, momentum=0.5),
    lambda: optimizers.Adam(amsgrad=True),
    lambda: optimizers.ScheduleFreeAdamW(),
], ids=lambda o: o if isinstance(o, str) else None)
def test_dense_fit_on_device_matches_the_cpu(gpu, opt):
    x, y = _data()
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, lambda: _dense(opt), x, y)
    _same_history(h_cpu, h_dev)
    _same_weights(cpu_model, dev_model)
    assert dev_model.optimizer.iterations == cpu_model.optimizer.iterations == 9


@pytest.mark.parametrize("kwargs", [
    {"clipnorm": 0.1}, {"clipvalue": 0.01}, {"global_clipnorm": 0.1}, {"weight_decay": 0.1},
    {"use_ema": True, "ema_overwrite_frequency": 2}, {"gradient_accumulation_steps": 2},
    {"loss_scale_factor": 4.0},
], ids=lambda k: next(iter(k)))
def test_optimizer_options_on_device(gpu, kwargs):
    x, y = _data()
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(
        gpu, lambda: _dense(lambda: optimizers.Adam(0.01, **kwargs)), x, y)
    _same_history(h_cpu, h_dev)
    _same_weights(cpu_model, dev_model)


def test_loss_scale_optimizer_on_device(gpu):
    x, y = _data()
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(
        gpu, lambda: _dense(lambda: optimizers.LossScaleOptimizer(optimizers.SGD(0.1))), x, y)
    _same_history(h_cpu, h_dev)
    _same_weights(cpu_model, dev_model)


def test_evaluate_and_predict_a_device_model_never_fitted(gpu):
    """A model built and compiled on a device evaluates before any fit (its metrics' state
    snapshot is copied where it lives) and gives the CPU's numbers."""
    x, y = _data()
    with gpu():
        dev_model = _dense()
        ev = dev_model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
        p_dev = dev_model.predict(x, verbose=0)
    cpu_model = _dense()
    ev_cpu = cpu_model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert ev.keys() == ev_cpu.keys() and all(isinstance(v, float) for v in ev.values())
    np.testing.assert_allclose([ev[k] for k in sorted(ev)], [ev_cpu[k] for k in sorted(ev_cpu)],
                               rtol=1e-5)
    np.testing.assert_allclose(p_dev, cpu_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_validation_evaluate_predict_and_on_batch_give_host_values(gpu):
    x, y = _data()
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, _dense, x, y, epochs=2,
                                                   validation_data=(x[:10], y[:10]))
    _same_history(h_cpu, h_dev)
    assert "val_loss" in h_dev.history
    p_cpu = cpu_model.predict(x, verbose=0)
    with gpu():
        p_dev = dev_model.predict(x, verbose=0)
        p_big = dev_model.predict(x, batch_size=7, verbose=0)
        ev = dev_model.evaluate(x, y, verbose=0, return_dict=True)
        pb = dev_model.predict_on_batch(x[:5])
        tb = dev_model.test_on_batch(x[:8], y[:8])
        tr = dev_model.train_on_batch(x[:8], y[:8], return_dict=True)
    assert type(p_dev) is np.ndarray and type(p_big) is np.ndarray and type(pb) is np.ndarray
    np.testing.assert_allclose(p_dev, p_cpu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p_big, p_cpu, rtol=1e-5, atol=1e-6)
    ev_cpu = cpu_model.evaluate(x, y, verbose=0, return_dict=True)
    assert all(isinstance(v, float) for v in ev.values())
    np.testing.assert_allclose([ev[k] for k in sorted(ev)], [ev_cpu[k] for k in sorted(ev_cpu)],
                               rtol=1e-5)
    assert all(isinstance(v, float) for v in tb) and all(isinstance(v, float) for v in tr.values())
    # outside the scope the model stays where it was built
    p_after = dev_model.predict(x, verbose=0)
    assert type(p_after) is np.ndarray
    assert all(type(w.data) is StrictArray for w in dev_model.weights)
    w0 = dev_model.weights[0]
    assert type(w0.numpy()) is np.ndarray and type(np.asarray(w0)) is np.ndarray
    assert "Variable" in repr(w0)


def test_optimizer_weights_and_variables_on_device(gpu):
    x, y = _data()
    cpu_model, _, dev_model, _ = _fit_both(gpu, _dense, x, y, epochs=1)
    ow_cpu, ow_dev = cpu_model.optimizer.get_weights(), dev_model.optimizer.get_weights()
    assert all(type(a) is np.ndarray for a in ow_dev)
    assert [a.shape for a in ow_cpu] == [a.shape for a in ow_dev]
    for a, b in zip(ow_cpu, ow_dev):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    # the per-variable state views the flat device state
    variables = dev_model.optimizer.variables
    assert type(variables[-1].data) is StrictArray
    dev_model.optimizer.set_weights(ow_cpu)
    for a, b in zip(ow_cpu, dev_model.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_weights_and_assign_write_on_the_device(gpu):
    with gpu():
        m = _dense()
    host = [np.full(w.shape, 0.5, w.dtype) for w in m.weights]
    m.set_weights(host)
    assert all(type(w.data) is StrictArray for w in m.weights)
    for a, b in zip(m.get_weights(), host):
        np.testing.assert_array_equal(a, b)
    v = m.weights[1]
    v.assign_add(np.ones(v.shape, v.dtype))
    v.assign_sub(np.full(v.shape, 0.25, v.dtype))
    np.testing.assert_array_equal(v.numpy(), np.full(v.shape, 1.25, v.dtype))
    with gpu():
        w = axone.Variable(np.arange(3.0), name="w")
    assert type(w.data) is StrictArray
    w.assign(np.ones(3))
    np.testing.assert_array_equal(w.numpy(), np.ones(3, "float32"))


# ------------------------------------------------------------------ Conv2D and LSTM
def _conv():
    axone.utils.set_random_seed(1)
    m = models.Sequential([layers.Input((6, 6, 2)), layers.Conv2D(3, 3, activation="relu"),
                           layers.MaxPooling2D(2), layers.Flatten(),
                           layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizers.Adam(0.01), loss=sce, metrics=["accuracy"])
    return m


def _lstm():
    axone.utils.set_random_seed(2)
    m = models.Sequential([layers.Input((5, 3)), layers.LSTM(4), layers.Dense(1)])
    m.compile(optimizer=optimizers.RMSprop(0.01), loss=mse, metrics=["mae"])
    return m


def test_conv2d_model_on_device(gpu):
    x, y = _data((6, 6, 2), n=24)
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, _conv, x, y, epochs=2, batch_size=8)
    _same_history(h_cpu, h_dev, rtol=1e-4)
    _same_weights(cpu_model, dev_model, rtol=1e-4, atol=1e-5)


def test_lstm_model_on_device(gpu):
    x, _ = _data((5, 3), n=24)
    y = x.sum(axis=(1, 2))[:, None].astype("float32")
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, _lstm, x, y, epochs=2, batch_size=8)
    _same_history(h_cpu, h_dev, rtol=1e-4)
    _same_weights(cpu_model, dev_model, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ saving
@pytest.mark.parametrize("opt", ["adam", lambda: optimizers.Adafactor(0.01)],
                         ids=["adam", "adafactor"])
def test_save_on_device_load_on_the_cpu_and_back(gpu, tmp_path, opt):
    x, y = _data()
    custom = {"sce": sce}
    cpu_model, _, dev_model, _ = _fit_both(gpu, lambda: _dense(opt), x, y, epochs=1)
    path = str(tmp_path / "model.axone")
    dev_model.save(path)
    wpath = str(tmp_path / "dense.weights.axone")
    dev_model.save_weights(wpath)

    on_cpu = axone.saving.load_model(path, custom_objects=custom)
    assert all(type(w.data) is np.ndarray for w in on_cpu.weights)
    _same_weights(dev_model, on_cpu, rtol=0, atol=0)
    with gpu():
        on_dev = axone.saving.load_model(path, custom_objects=custom)
    assert all(type(w.data) is StrictArray for w in on_dev.weights)
    _same_weights(dev_model, on_dev, rtol=0, atol=0)

    # training continues from the saved optimizer state in both places alike
    h1 = on_cpu.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    with gpu():
        h2 = on_dev.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    h3 = cpu_model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    _same_history(h3, h1)
    _same_history(h3, h2)
    assert all(type(w.data) is StrictArray for w in on_dev.weights)

    fresh = _dense(opt)
    fresh.load_weights(wpath)
    _same_weights(dev_model, fresh, rtol=0, atol=0)


# ------------------------------------------------------------------ the per-variable rules
@pytest.mark.parametrize("opt", [
    lambda: optimizers.Lamb(0.01), lambda: optimizers.Adafactor(0.01),
    lambda: optimizers.Muon(0.01), lambda: optimizers.Muon(0.01, rms_rate=None, nesterov=False),
    lambda: optimizers.Lamb(0.01, clipnorm=0.5, use_ema=True)])
def test_per_variable_rules_on_device(gpu, opt):
    x, y = _data()
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, lambda: _dense(opt), x, y)
    _same_history(h_cpu, h_dev)
    _same_weights(cpu_model, dev_model)


# ------------------------------------------------------------------ what is not done
def test_cpu_model_unchanged(gpu):
    """A model built outside a device scope keeps host arrays even when a step runs in one."""
    x, y = _data()
    m = _dense()
    with gpu():
        m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert all(type(w.data) is np.ndarray for w in m.weights)
    assert type(m._buffer[1]) is np.ndarray


def test_custom_train_step_on_device(gpu):
    """An overridden train_step that calls the built-in one: its batches reach the weights'
    device as fit's do."""
    seen = []

    class Custom(models.Sequential):
        def train_step(self, data):
            seen.append(type(data[0].data))
            return super().train_step(data)

    def make():
        axone.utils.set_random_seed(0)
        m = Custom([layers.Input((4,)), layers.Dense(3, activation="softmax")])
        m.compile(optimizer="sgd", loss=sce, metrics=["accuracy"])
        return m

    x, y = _data()
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, make, x, y, epochs=2)
    _same_history(h_cpu, h_dev)
    _same_weights(cpu_model, dev_model)
    assert seen and all(t is np.ndarray for t in seen)     # host batches, moved by the step


def test_device_arrays_given_to_fit_evaluate_and_predict(gpu):
    """Device arrays as x / y (and sample weights) are read like host arrays."""
    x, y = _data()
    cpu_model = _dense()
    h_cpu = cpu_model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    with gpu():
        m = _dense()
        xd, yd = (axone.device.to_device(a) for a in (x, y))
        assert type(xd) is StrictArray
        h_dev = m.fit(xd, yd, epochs=2, batch_size=16, verbose=0, shuffle=False)
        p = m.predict(xd, verbose=0)
        p_host_input = m.predict(x, verbose=0)
        ev = m.evaluate(xd, yd, verbose=0)
        pb = m.predict_on_batch(axone.Tensor(xd[:4]))
        tr = m.train_on_batch({"x": xd[:8]}["x"], yd[:8])
    _same_history(h_cpu, h_dev)
    assert type(p) is np.ndarray and type(pb) is np.ndarray and isinstance(ev[0], float)
    assert all(isinstance(v, float) for v in tr)
    np.testing.assert_array_equal(p, p_host_input)


@pytest.mark.parametrize("opt", [lambda: optimizers.Adam(0.05),
                                 lambda: optimizers.SGD(0.1, momentum=0.9, clipnorm=0.5)])
def test_apply_gradients_on_device_variables(gpu, opt):
    """A custom loop: GradientTape gradients of device variables, apply_gradients on them."""
    rng = np.random.default_rng(3)
    w0, b0 = rng.standard_normal((4, 2)).astype("float32"), np.zeros(2, "float32")
    x = rng.standard_normal((8, 4)).astype("float32")

    def run(on_device):
        o = opt()
        with gpu() if on_device else axone.device("cpu"):
            w, b = axone.Variable(w0, name="w"), axone.Variable(b0, name="b")
            xs = axone.device.to_device(x)
            for _ in range(3):
                with axone.GradientTape() as tape:
                    loss = ops.mean(ops.square(ops.matmul(xs, w) + b))
                grads = tape.gradient(loss, [w, b])
                o.apply_gradients(zip(grads, [w, b]))
        return w, b, o

    w_cpu, b_cpu, _ = run(False)
    w_dev, b_dev, o_dev = run(True)
    assert type(w_dev.data) is StrictArray and type(b_dev.data) is StrictArray
    state = [v.data for v in o_dev.variables[2:]]
    assert state and all(type(a) is StrictArray for a in state)
    np.testing.assert_allclose(w_dev.numpy(), w_cpu.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b_dev.numpy(), b_cpu.numpy(), rtol=1e-6, atol=1e-7)


def test_multi_optimizer_on_device(gpu):
    def make_opt():
        return optimizers.MultiOptimizer(optimizers.OptimizerMap(
            optimizers.SGD(0.05, momentum=0.9), {"dense.*/kernel": optimizers.Adam(0.01)}))

    x, y = _data()
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, lambda: _dense(make_opt), x, y)
    _same_history(h_cpu, h_dev)
    _same_weights(cpu_model, dev_model)
    for o in dev_model.optimizer.optimizers:
        assert all(type(v.data) is StrictArray for v in o.variables[o._n_scalar_vars():])


def test_stateless_apply_on_device(gpu):
    x, y = _data()
    cpu_model, _, dev_model, _ = _fit_both(gpu, _dense, x, y, epochs=1)
    grads = [np.full(w.shape, 0.1, w.dtype) for w in cpu_model.trainable_weights]
    outs = []
    for m in (cpu_model, dev_model):
        o = m.optimizer
        outs.append(o.stateless_apply(o.variables, grads, m.trainable_weights))
    (t_cpu, o_cpu), (t_dev, o_dev) = outs
    assert all(type(a) is np.ndarray for a in t_dev + o_dev)
    for a, b in zip(t_cpu + o_cpu, t_dev + o_dev):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert all(type(w.data) is StrictArray for w in dev_model.weights)
    _same_weights(cpu_model, dev_model)          # the live weights are left as they were


# ------------------------------------------------------------------ built-in losses
_ONE_HOT = ("mse", "categorical_crossentropy", "binary_crossentropy", "huber", "hinge")


@pytest.mark.parametrize("loss", [
    "mse", "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
    "huber", "hinge",
    lambda: losses.CategoricalCrossentropy(label_smoothing=0.1),
    lambda: losses.SparseCategoricalCrossentropy(reduction="sum"),
    lambda: losses.MeanSquaredError(reduction="mean_with_sample_weight"),
], ids=lambda l: l if isinstance(l, str) else None)
@pytest.mark.parametrize("weights", [None, "sample_weight", "class_weight"])
def test_builtin_losses_in_fit_on_device(gpu, loss, weights):
    x, y = _data()
    make_loss = loss if callable(loss) else (lambda: loss)
    name = loss if isinstance(loss, str) else type(make_loss()).__name__
    if name in _ONE_HOT or name in ("CategoricalCrossentropy", "MeanSquaredError"):
        target = np.eye(3, dtype="float32")[y]
    else:
        target = y
    fit = {}
    if weights == "sample_weight":
        fit["sample_weight"] = np.random.default_rng(5).random(len(x)).astype("float32")
    elif weights == "class_weight":
        if target is not y:
            pytest.skip("class_weight reads integer labels")
        fit["class_weight"] = {0: 0.5, 1: 2.0, 2: 1.0}
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(
        gpu, lambda: _dense(loss=make_loss()), x, target, validation_data=(x[:8], target[:8]),
        **fit)
    _same_history(h_cpu, h_dev)
    _same_weights(cpu_model, dev_model)
    with gpu():
        ev = dev_model.evaluate(x, target, verbose=0, return_dict=True,
                                sample_weight=fit.get("sample_weight"))
    ev_cpu = cpu_model.evaluate(x, target, verbose=0, return_dict=True,
                                sample_weight=fit.get("sample_weight"))
    assert all(isinstance(v, float) for v in ev.values())
    np.testing.assert_allclose([ev[k] for k in sorted(ev)], [ev_cpu[k] for k in sorted(ev_cpu)],
                               rtol=1e-5)


@pytest.mark.parametrize("loss", [
    losses.MeanSquaredError(), losses.MeanSquaredError(reduction="sum"),
    losses.MeanSquaredError(reduction="none"),
    losses.MeanSquaredError(reduction="mean_with_sample_weight"),
    losses.CategoricalCrossentropy(), losses.BinaryCrossentropy(label_smoothing=0.2),
    losses.SparseCategoricalCrossentropy(from_logits=True), losses.Huber(), losses.Hinge()],
    ids=lambda l: f"{type(l).__name__}-{l.reduction}")
@pytest.mark.parametrize("sample_weight", [None, "rows", "column"])
def test_loss_objects_on_device_arrays(gpu, loss, sample_weight):
    """A Loss object called on device arrays: its value and gradient there, as on the host;
    host targets and weights next to a device prediction are copied to its device."""
    rng = np.random.default_rng(4)
    p = rng.random((6, 3)).astype("float32") + 0.05
    y = (np.arange(6) % 3) if isinstance(loss, losses.SparseCategoricalCrossentropy) \
        else np.eye(3, dtype="float32")[np.arange(6) % 3]
    sw = None if sample_weight is None else rng.random(6).astype("float32")
    if sample_weight == "column":
        sw = sw[:, None]
    host_p = axone.Tensor(p, requires_grad=True)
    ops.sum(loss(y, host_p, sample_weight=sw)).backward()
    ref = loss(y, axone.Tensor(p), sample_weight=sw).data
    for to_dev in (True, False):
        dp = axone.Tensor(strict_xp.to_strict(p), requires_grad=True)
        yt = strict_xp.to_strict(y) if to_dev else y
        swt = strict_xp.to_strict(sw) if to_dev and sw is not None else sw
        value = loss(yt, dp, sample_weight=swt)
        assert type(value.data) is StrictArray
        np.testing.assert_allclose(strict_xp.from_strict(value.data), ref, rtol=1e-6)
        ops.sum(value).backward()
        assert type(dp.grad) is StrictArray
        np.testing.assert_allclose(strict_xp.from_strict(dp.grad), host_p.grad, rtol=1e-6)


def _label_loss_case(name):
    rng = np.random.default_rng(8)
    p = rng.random((6, 3)).astype("float32") + 0.05
    labels = np.array([0, 1, 2, 0, 1, 1])
    if name == "generalized":
        return (losses.CategoricalGeneralizedCrossEntropy(q=0.7), labels,
                p / p.sum(-1, keepdims=True))
    if name == "circle":
        return losses.Circle(), labels, p / np.linalg.norm(p, axis=-1, keepdims=True)
    if name == "ctc":
        return (losses.CTC(), np.array([[1, 2, 0], [2, 2, 1]]),
                rng.standard_normal((2, 5, 4)).astype("float32"))
    return (losses.CategoricalFocalCrossentropy(alpha=[0.2, 0.3, 0.5]),
            np.eye(3, dtype="float32")[labels], p / p.sum(-1, keepdims=True))


@pytest.mark.parametrize("name", ["generalized", "circle", "ctc", "focal-alpha"])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_losses_on_device_arrays(gpu, name, weighted):
    """Losses whose labels are metadata (read on the host, the masks and one-hot rows copied to
    the prediction's device), Circle's mask of counted rows included."""
    loss, y, p = _label_loss_case(name)
    sw = np.random.default_rng(9).random(len(y)).astype("float32") if weighted else None
    host_p = axone.Tensor(p, requires_grad=True)
    ref = loss(y, host_p, sample_weight=sw)
    ops.sum(ref).backward()
    dp = axone.Tensor(strict_xp.to_strict(p), requires_grad=True)
    value = loss(strict_xp.to_strict(y), dp,
                 sample_weight=None if sw is None else strict_xp.to_strict(sw))
    assert type(value.data) is StrictArray
    ops.sum(value).backward()
    assert type(dp.grad) is StrictArray
    np.testing.assert_allclose(strict_xp.from_strict(value.data), ref.data, rtol=1e-5)
    np.testing.assert_allclose(strict_xp.from_strict(dp.grad), host_p.grad, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ recurrent layers
def _recurrent(kind, **kw):
    def make():
        axone.utils.set_random_seed(2)
        m = models.Sequential([layers.Input((5, 3)), kind(4, **kw), layers.Dense(1)])
        m.compile(optimizer=optimizers.RMSprop(0.01), loss="mse", metrics=["mae"])
        return m
    return make


@pytest.mark.parametrize("make", [
    _recurrent(layers.GRU), _recurrent(layers.GRU, reset_after=False),
    _recurrent(layers.SimpleRNN), _recurrent(layers.LSTM, use_bias=False),
    _recurrent(layers.LSTM, go_backwards=True),
    _recurrent(layers.GRU, dropout=0.2, recurrent_dropout=0.2, seed=3),
    _recurrent(lambda u, **k: layers.Bidirectional(layers.LSTM(u, **k))),
    _recurrent(lambda u, **k: layers.RNN(layers.StackedRNNCells(
        [layers.GRUCell(u), layers.SimpleRNNCell(u)]))),
    _recurrent(lambda u, **k: layers.RNN(layers.StackedRNNCells(
        [layers.LSTMCell(u), layers.GRUCell(u)]), unroll=True)),
], ids=["gru", "gru-reset-before", "simple-rnn", "lstm-no-bias", "lstm-backwards",
        "gru-dropout", "bidirectional", "stacked-cells", "stacked-unrolled"])
def test_recurrent_models_on_device(gpu, make):
    x, _ = _data((5, 3), n=24)
    y = x.sum(axis=(1, 2))[:, None].astype("float32")
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, make, x, y, epochs=2, batch_size=8)
    _same_history(h_cpu, h_dev, rtol=1e-4)
    _same_weights(cpu_model, dev_model, rtol=1e-4, atol=1e-5)


def test_masked_sequences_and_initial_states_on_device(gpu):
    """A mask computed with ops on the device through stacked LSTM / GRU in fit, and a masked
    LSTM called with given initial states (host arrays) and a host or device mask."""
    x, _ = _data((6, 3), n=16)
    x[::3, 4:] = 0.0
    y = x.sum(axis=(1, 2))[:, None].astype("float32")

    def make():
        from axone.compat import keras_ops as K
        axone.utils.set_random_seed(4)
        inp = layers.Input((6, 3))
        mask = K.any(K.not_equal(inp, 0.0), axis=-1)
        h = layers.LSTM(4, return_sequences=True)(inp, mask=mask)
        m = models.Model(inp, layers.Dense(1)(layers.GRU(3)(h, mask=mask)))
        m.compile(optimizer="adam", loss="mse")
        return m

    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, make, x, y, epochs=2, batch_size=8)
    _same_history(h_cpu, h_dev, rtol=1e-4)
    _same_weights(cpu_model, dev_model, rtol=1e-4, atol=1e-5)

    x, _ = _data((6, 3), n=2)
    h0 = np.full((2, 4), 0.5, "float32")
    mask = np.ones((2, 6), bool)
    mask[1, 3:] = False
    outs = []
    for on_device in (False, True):
        with gpu() if on_device else axone.device("cpu"):
            axone.utils.set_random_seed(5)
            lstm = layers.LSTM(4, return_state=True, return_sequences=True)
            xs = axone.Tensor(axone.device.to_device(x))
            outs.append(lstm(xs, initial_state=[h0, h0], mask=mask))
            outs.append(lstm(xs, mask=axone.device.to_device(mask)))
            states = lstm.cell.get_initial_state(batch_size=2)
    assert all(type(s.data) is StrictArray for s in states)
    for a, b in zip(outs[:2], outs[2:]):
        for u, v in zip(a, b):
            assert type(v.data) is StrictArray
            np.testing.assert_allclose(strict_xp.from_strict(v.data), u.data, rtol=1e-5,
                                       atol=1e-6)


def test_stateful_lstm_on_device(gpu):
    x, _ = _data((4, 3), n=4)
    outs = []
    for on_device in (False, True):
        with gpu() if on_device else axone.device("cpu"):
            axone.utils.set_random_seed(6)
            lstm = layers.LSTM(3, stateful=True)
            xs = axone.Tensor(axone.device.to_device(x))
            outs.append([lstm(xs), lstm(xs)])
            assert all(type(s) is (StrictArray if on_device else np.ndarray)
                       for s in lstm.states)
    assert all(type(o.data) is StrictArray for o in outs[1])
    for u, v in zip(*outs):
        np.testing.assert_allclose(strict_xp.from_strict(v.data), u.data, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ a layer's weights
def test_layer_get_and_set_weights_on_device(gpu):
    with gpu():
        m = _dense()
    layer = m.layers[0]
    ws = layer.get_weights()
    assert ws and all(type(w) is np.ndarray for w in ws)
    np.testing.assert_array_equal(ws[0], axone.device.to_numpy(layer.weights[0].data))
    ws[0][...] = 7.0                     # a copy: the layer's weight is left as it was
    assert not np.any(layer.get_weights()[0] == 7.0)
    new = [np.full(w.shape, 0.25, w.dtype) for w in ws]
    layer.set_weights(new)
    assert all(type(w.data) is StrictArray for w in layer.weights)
    for a, b in zip(layer.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    # device arrays are accepted as well, and a CPU layer takes a device model's weights
    layer.set_weights([strict_xp.to_strict(w * 2) for w in new])
    np.testing.assert_array_equal(layer.get_weights()[0], new[0] * 2)
    cpu = _dense()
    cpu.layers[0].set_weights([w.data for w in layer.weights])
    assert all(type(w.data) is np.ndarray for w in cpu.layers[0].weights)
    np.testing.assert_array_equal(cpu.layers[0].get_weights()[1], new[1] * 2)
    with pytest.raises(ValueError, match="shape"):
        layer.set_weights([strict_xp.to_strict(np.zeros((2, 2), "float32")), new[1]])


# ------------------------------------------------------------------ Keras's file formats
@pytest.mark.parametrize("opt", ["adam", lambda: optimizers.SGD(0.05, momentum=0.9),
                                 lambda: optimizers.LossScaleOptimizer(optimizers.Adam(0.01))],
                         ids=["adam", "sgd-momentum", "loss-scale"])
@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_keras_files_from_a_device_model(gpu, tmp_path, opt, ext):
    pytest.importorskip("h5py")
    x, y = _data()
    cpu_model, _, dev_model, _ = _fit_both(
        gpu, lambda: _dense(opt, loss="sparse_categorical_crossentropy"), x, y, epochs=1)
    path = str(tmp_path / f"model{ext}")
    dev_model.save(path)
    on_cpu = axone.saving.load_model(path)
    assert all(type(w.data) is np.ndarray for w in on_cpu.weights)
    _same_weights(dev_model, on_cpu, rtol=0, atol=0)
    with gpu():
        on_dev = axone.saving.load_model(path)
    assert all(type(w.data) is StrictArray for w in on_dev.weights)
    _same_weights(dev_model, on_dev, rtol=0, atol=0)
    for a, b in zip(on_cpu.optimizer.get_weights(), on_dev.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)

    # training continues from the saved optimizer state in both places alike
    h1 = on_cpu.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    with gpu():
        h2 = on_dev.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    h3 = cpu_model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    _same_history(h3, h1)
    _same_history(h3, h2)
    assert all(type(w.data) is StrictArray for w in on_dev.weights)


@pytest.mark.parametrize("name", ["dense.weights.h5", "dense.h5"])
def test_weight_files_from_a_device_model(gpu, tmp_path, name):
    pytest.importorskip("h5py")
    x, y = _data()
    _, _, dev_model, _ = _fit_both(gpu, _dense, x, y, epochs=1)
    path = str(tmp_path / name)
    dev_model.save_weights(path)
    fresh = _dense()
    fresh.load_weights(path)
    _same_weights(dev_model, fresh, rtol=0, atol=0)
    with gpu():
        fresh_dev = _dense()
        fresh_dev.load_weights(path)
    assert all(type(w.data) is StrictArray for w in fresh_dev.weights)
    _same_weights(dev_model, fresh_dev, rtol=0, atol=0)


def test_recurrent_model_saved_from_the_device(gpu, tmp_path):
    pytest.importorskip("h5py")
    x, _ = _data((5, 3), n=24)
    y = x.sum(axis=(1, 2))[:, None].astype("float32")
    _, _, dev_model, _ = _fit_both(gpu, _recurrent(layers.GRU), x, y, epochs=1, batch_size=8)
    path = str(tmp_path / "gru.keras")
    dev_model.save(path)
    with gpu():
        back = axone.saving.load_model(path)
        p_back = back.predict(x, verbose=0)
        p_dev = dev_model.predict(x, verbose=0)
    assert all(type(w.data) is StrictArray for w in back.weights)
    np.testing.assert_array_equal(p_back, p_dev)


# ------------------------------------------------------------------ Masking and Embedding
def _masked_steps(first, loss):
    """A sequence model whose mask comes from ``first`` (Masking or Embedding(mask_zero)) and
    whose loss is taken per time step over the masked outputs (return_sequences=True)."""
    def make():
        axone.utils.set_random_seed(7)
        m = models.Sequential([first(), layers.LSTM(4, return_sequences=True),
                               layers.GRU(3, return_sequences=True), layers.Dense(3)])
        m.compile(optimizer=optimizers.Adam(0.01), loss=loss)
        return m
    return make


@pytest.mark.parametrize("loss", ["mse", losses.MeanSquaredError(reduction="sum")],
                         ids=["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_masking_layer_and_masked_step_losses_on_device(gpu, loss, weighted):
    x, _ = _data((6, 3), n=16)
    x[::3, 4:] = 0.0
    x[1::4, :2] = 0.0
    y = np.cumsum(x, axis=1).astype("float32")
    fit = {}
    if weighted:
        fit["sample_weight"] = np.random.default_rng(6).random(len(x)).astype("float32")
    make = _masked_steps(lambda: layers.Masking(0.0, input_shape=(6, 3)), loss)
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, make, x, y, epochs=2, batch_size=8,
                                                   **fit)
    _same_history(h_cpu, h_dev, rtol=1e-4)
    _same_weights(cpu_model, dev_model, rtol=1e-4, atol=1e-5)
    with gpu():
        ev = dev_model.evaluate(x, y, verbose=0, sample_weight=fit.get("sample_weight"))
    np.testing.assert_allclose(
        ev, cpu_model.evaluate(x, y, verbose=0, sample_weight=fit.get("sample_weight")),
        rtol=1e-4)
    # the layer's mask and output on a device array
    masking = layers.Masking(0.0)
    xd = axone.Tensor(strict_xp.to_strict(x))
    mask = masking.compute_mask(xd)
    out = masking(xd)
    assert type(mask) is StrictArray and type(out.data) is StrictArray
    np.testing.assert_array_equal(strict_xp.from_strict(mask),
                                  masking.compute_mask(axone.Tensor(x)))
    np.testing.assert_array_equal(strict_xp.from_strict(out.data), masking(axone.Tensor(x)).data)


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy",
                                  losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                       reduction="sum")],
                         ids=["mean", "sum"])
def test_embedding_mask_zero_and_its_gradient_on_device(gpu, loss):
    rng = np.random.default_rng(11)
    x = rng.integers(1, 9, (16, 6))
    x[::2, 4:] = 0                                       # padding
    y = (x % 3).astype("int64")
    make = _masked_steps(lambda: layers.Embedding(9, 5, mask_zero=True), loss)
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, make, x, y, epochs=2, batch_size=8)
    # the device's scatter-add sums a row's gradients in another order than the host's
    # segment sums: float32 rounding, which Adam's normalized steps carry into the weights
    _same_history(h_cpu, h_dev, rtol=1e-4)
    _same_weights(cpu_model, dev_model, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("indices", ["int", "float", "host-int"])
def test_embedding_lookup_and_gradient_on_device_arrays(gpu, indices):
    """The embedding gradient (a scatter-add of the output gradient's rows on the device)
    against the host's segment sums, repeated indices included."""
    idx = np.array([[3, 1, 3, 0], [1, 1, 4, 3]])
    outs = []
    for on_device in (False, True):
        with gpu() if on_device else axone.device("cpu"):
            axone.utils.set_random_seed(3)
            emb = layers.Embedding(6, 4, mask_zero=True)
            a = idx.astype("float32") if indices == "float" else idx
            if on_device and indices != "host-int":
                a = strict_xp.to_strict(a)
            y = emb(axone.Tensor(a))
            ops.sum(ops.square(y) * 0.5 + y).backward()
            outs.append((y, emb.compute_mask(axone.Tensor(a)), emb.embeddings.grad))
    (y0, m0, g0), (y1, m1, g1) = outs
    assert type(y1.data) is StrictArray and type(g1) is StrictArray
    np.testing.assert_allclose(strict_xp.from_strict(y1.data), y0.data, rtol=1e-6)
    np.testing.assert_array_equal(strict_xp.from_strict(m1), m0)
    np.testing.assert_allclose(strict_xp.from_strict(g1), g0, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ a subclassed model
class _Sub(models.Model):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.hidden = layers.Dense(8, activation="relu")
        self.out = layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))


def test_subclassed_model_builds_and_trains_on_device(gpu):
    """build(input_shape) calls the model on zeros of the current device."""
    def make():
        axone.utils.set_random_seed(0)
        m = _Sub()
        m.build((None, 4))
        m.compile(optimizer="adam", loss=sce, metrics=["accuracy"])
        return m

    x, y = _data()
    cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, make, x, y, epochs=2)
    _same_history(h_cpu, h_dev)
    _same_weights(cpu_model, dev_model)
    assert all(type(w.data) is np.ndarray for w in cpu_model.weights)


# ------------------------------------------------------------------ DataParallel's reductions
class _FakeRequest:
    def Test(self):
        return True


class _FakeComm:
    """Two ranks in one process: the other rank holds the same buffers, so a sum doubles them.
    MPI reads and writes host memory only: a device buffer given here is an error."""

    def __init__(self):
        self.calls = []

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 2

    def _host(self, buf, what):
        assert type(buf) is np.ndarray, f"{what} was given a {type(buf).__name__}"
        self.calls.append(what)

    def Iallreduce(self, inplace, buf, op=None):
        self._host(buf, "Iallreduce")
        buf *= 2
        return _FakeRequest()

    def Ibcast(self, buf, root=0):
        self._host(buf, "Ibcast")
        return _FakeRequest()

    def Iallgather(self, send, out):
        self._host(send, "Iallgather")
        out[...] = send
        return _FakeRequest()


@pytest.fixture
def fake_dp(monkeypatch):
    from axone import distribution

    class _MPI:
        IN_PLACE, SUM = object(), object()

    monkeypatch.setattr(distribution, "_mpi", lambda: _MPI)
    monkeypatch.setattr(distribution, "_comm", lambda: _FakeComm())
    monkeypatch.setattr(distribution, "_share_cores", lambda comm: None)
    return distribution.DataParallel


def test_data_parallel_reductions_stage_device_buffers_through_the_host(gpu, fake_dp):
    """The gradient all-reduce, the metric and moving-statistics reductions and the replicas'
    checksum of device buffers: MPI sees host copies, the results land back on the device
    equal to the host buffers' reductions."""
    x, y = _data()
    results = {}
    for on_device in (False, True):
        dp = fake_dp()
        with gpu() if on_device else axone.device("cpu"):
            axone.utils.set_random_seed(0)
            m = models.Sequential([layers.Input((4,)), layers.Dense(8),
                                   layers.BatchNormalization(),
                                   layers.Dense(3, activation="softmax")])
            m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
            m.fit(x, y, epochs=1, batch_size=16, verbose=0)      # no distribution: local
            kind = StrictArray if on_device else np.ndarray
            grads = m._buffer[2]
            assert type(grads) is kind
            grads[...] = 0.25
            dp.global_rows = 24
            dp.reduce_gradients(grads, 8)            # 2 ranks x (8 / 24) x 0.25
            assert type(m._buffer[2]) is kind and m._buffer[2] is grads
            g = strict_xp.from_strict(grads).copy()

            mean = axone.metrics.Mean()              # its state made on the current device
            mean.variables[0].data[...] = 3.0
            mean.variables[1].data[...] = 2.0
            tracked = list(m.metrics) + [mean]
            assert all(type(v.data) is kind for v in mean.variables)
            kinds = [type(v.data) for mt in tracked for v in mt.variables]
            local = [strict_xp.from_strict(v.data).copy() for mt in tracked for v in mt.variables]
            summed = dp.reduced_results(tracked, lambda: [
                strict_xp.from_strict(v.data).copy() for mt in tracked for v in mt.variables])
            after = [v.data for mt in tracked for v in mt.variables]
            assert [type(a) for a in after] == kinds
            for a, b in zip(after, local):            # the local states are restored
                np.testing.assert_array_equal(strict_xp.from_strict(a), b)

            dp.average_non_trainable(m)
            moving = [w.data for w in m.non_trainable_weights]
            assert moving and all(type(a) is kind for a in moving)

            tensors = [axone.Tensor(axone.device.to_device(np.full((2, 3), 0.5, "float32"))),
                       None, axone.device.to_device(np.arange(4, dtype="float32"))]
            reduced = dp.reduce_gradient_list(tensors, 8)
            assert reduced[1] is None and reduced[0] is tensors[0] and reduced[2] is tensors[2]
            assert type(reduced[0].data) is kind and type(reduced[2]) is kind

            dp.check_replicas(m)
            results[on_device] = (g, summed, [strict_xp.from_strict(a) for a in moving],
                                  strict_xp.from_strict(reduced[0].data),
                                  strict_xp.from_strict(reduced[2]), dp.comm.calls)
    host, device = results[False], results[True]
    np.testing.assert_allclose(host[0], np.full_like(host[0], 2 * 0.25 * 8 / 24), rtol=1e-6)
    np.testing.assert_array_equal(device[0], host[0])
    np.testing.assert_array_equal(host[1][-2:], [6.0, 4.0])     # the Mean's total and count
    for a, b in zip(device[1], host[1]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    for a, b in zip(device[2], host[2]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_array_equal(device[3], host[3])
    np.testing.assert_array_equal(device[4], host[4])
    np.testing.assert_allclose(host[3], np.full((2, 3), 2 * 0.5 * 8 / 24), rtol=1e-6)
    assert device[5] == host[5]


def test_fit_under_data_parallel_on_device(gpu, fake_dp):
    """fit and evaluate under DataParallel (two ranks faked in one process, each holding the
    same rows): the device model's reductions go through host copies and it trains as the CPU
    one does under the same distribution."""
    from axone import distribution

    def make():
        axone.utils.set_random_seed(0)
        m = models.Sequential([layers.Input((4,)), layers.Dense(8), layers.BatchNormalization(),
                               layers.Dense(3, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        return m

    x, y = _data()
    dp = fake_dp()
    distribution.set_distribution(dp)
    try:
        cpu_model, h_cpu, dev_model, h_dev = _fit_both(gpu, make, x, y, epochs=2)
        ev_cpu = cpu_model.evaluate(x, y, verbose=0)
        with gpu():
            ev_dev = dev_model.evaluate(x, y, verbose=0)
    finally:
        distribution.set_distribution(None)
    _same_history(h_cpu, h_dev)
    _same_weights(cpu_model, dev_model)
    np.testing.assert_allclose(ev_dev, ev_cpu, rtol=1e-5)
    assert {"Iallreduce", "Iallgather"} <= set(dp.comm.calls)
