"""Models on a device: weights, optimizer state and the flat buffers stay there through fit,
evaluate, predict and the *_on_batch calls; what comes back is host data.

The strict stand-in (``strict_xp``) plays the GPU: ``axone.device("gpu:0")`` selects it, so a
model built in that scope has StrictArray weights, and any NumPy call on them fails.  Each
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
    """``axone.device("gpu:0")`` gives the strict module (registered for StrictArrays)."""
    monkeypatch.setattr(dev, "_gpu", (strict_xp.strict_xp, 1, None))
    monkeypatch.setattr(strict_xp.strict_xp, "cuda", _Cuda(), raising=False)
    monkeypatch.setattr(dev, "_default", dev._CPU)
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
    LSTM called with given initial states (host arrays) and a host or device mask.  (The
    Masking layer and the Embedding's gradient node compute with NumPy: the mask is made with
    ops here.)"""
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
