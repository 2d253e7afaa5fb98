"""Training parity with Keras 3 (PyTorch backend): same network, same initial weights, same data.

Each case builds one Sequential network in Keras and in axone, copies Keras's
initial weights into axone with ``set_weights`` (biases perturbed away from zero so
they matter from the first step), and trains both with ``shuffle=False`` and a batch
size that does not divide the sample count (the last batch is smaller).  After every
epoch the weights are snapshotted on both sides; the per-epoch weights, the History
(loss and metrics, and ``val_*`` with ``validation_split``), ``evaluate()`` and
``predict()`` must agree to float32 precision.
"""
import numpy as np
import pytest

import keras  # noqa: E402  (tests/conftest.py selects the torch backend first)

import axone

assert keras.backend.backend() == "torch", (
    "the Keras parity tests need KERAS_BACKEND=torch (set by tests/conftest.py)")

RTOL, ATOL = 1e-5, 1e-6
HIST_RTOL = 1e-5
N, BATCH = 70, 16            # 70 = 4·16 + 6: the last batch has 6 rows


# ------------------------------------------------------------------- tasks
def _data(task, seed=0):
    r = np.random.default_rng(seed)
    if task == "categorical":
        x = r.normal(size=(N, 4)).astype(np.float32)
        labels = r.integers(0, 3, size=N)
        return x, np.eye(3, dtype=np.float32)[labels]
    if task == "sparse":
        x = r.normal(size=(N, 4)).astype(np.float32)
        return x, r.integers(0, 3, size=N).astype(np.int64)
    if task == "binary":
        x = r.normal(size=(N, 5)).astype(np.float32)
        y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * r.normal(size=N) > 0).astype(np.float32)
        return x, y[:, None]
    if task == "regression":
        x = r.normal(size=(N, 6)).astype(np.float32)
        y = np.sin(x[:, :1]) + 0.5 * x[:, 1:2] + 0.1 * r.normal(size=(N, 1))
        return x, y.astype(np.float32)
    raise ValueError(task)


TASKS = {
    # task: (input dim, [(units, activation)], loss, metrics)
    "categorical": (4, [(16, "relu"), (3, "softmax")], "categorical_crossentropy", ["accuracy"]),
    "sparse": (4, [(16, "relu"), (3, "softmax")], "sparse_categorical_crossentropy", ["accuracy"]),
    "binary": (5, [(8, "tanh"), (1, "sigmoid")], "binary_crossentropy", ["accuracy"]),
    "regression": (6, [(8, "tanh"), (1, None)], "mse", ["mae"]),
}

OPTIMIZERS = {
    "sgd": lambda lib: lib.optimizers.SGD(learning_rate=0.1),
    "sgd_momentum": lambda lib: lib.optimizers.SGD(learning_rate=0.05, momentum=0.9),
    "sgd_nesterov": lambda lib: lib.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": lambda lib: lib.optimizers.Adam(),
    "adam_custom": lambda lib: lib.optimizers.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.95,
                                                   epsilon=1e-6),
    "adam_amsgrad": lambda lib: lib.optimizers.Adam(learning_rate=0.01, amsgrad=True),
}


def _schedule(lib):
    if lib is keras:
        return keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    return lambda step: 0.1 * 0.5 ** (step / 4)


# optimizer options, each run through fit() on two tasks
EXTRA_OPTIMIZERS = {
    "rmsprop": lambda lib: lib.optimizers.RMSprop(learning_rate=0.01),
    "rmsprop_centered_momentum": lambda lib: lib.optimizers.RMSprop(
        learning_rate=0.005, rho=0.8, momentum=0.5, centered=True),
    "sgd_weight_decay": lambda lib: lib.optimizers.SGD(learning_rate=0.1, momentum=0.5,
                                                       weight_decay=0.05),
    "adam_weight_decay": lambda lib: lib.optimizers.Adam(learning_rate=0.01, weight_decay=0.1),
    "sgd_clipnorm": lambda lib: lib.optimizers.SGD(learning_rate=0.1, clipnorm=0.05),
    "sgd_global_clipnorm": lambda lib: lib.optimizers.SGD(learning_rate=0.1,
                                                          global_clipnorm=0.1),
    "adam_clipvalue": lambda lib: lib.optimizers.Adam(learning_rate=0.01, clipvalue=0.01),
    "sgd_schedule": lambda lib: lib.optimizers.SGD(learning_rate=_schedule(lib)),
}

# the same optimizers without the option: the option must change the result
WITHOUT_OPTION = {
    "sgd_weight_decay": lambda: axone.optimizers.SGD(learning_rate=0.1, momentum=0.5),
    "adam_weight_decay": lambda: axone.optimizers.Adam(learning_rate=0.01),
    "sgd_clipnorm": lambda: axone.optimizers.SGD(learning_rate=0.1),
    "sgd_global_clipnorm": lambda: axone.optimizers.SGD(learning_rate=0.1),
    "adam_clipvalue": lambda: axone.optimizers.Adam(learning_rate=0.01),
    "sgd_schedule": lambda: axone.optimizers.SGD(learning_rate=0.1),
}


def _build_pair(task, seed=0):
    in_dim, spec, _, _ = TASKS[task]
    keras.utils.set_random_seed(seed)
    km = keras.Sequential([keras.Input(shape=(in_dim,))]
                          + [keras.layers.Dense(u, activation=a) for u, a in spec])
    am = axone.Sequential([axone.layers.InputLayer(shape=(in_dim,))]
                          + [axone.layers.Dense(u, activation=a) for u, a in spec])
    weights = km.get_weights()
    r = np.random.default_rng(seed + 100)
    weights = [w if w.ndim > 1 else (0.1 * r.normal(size=w.shape)).astype(np.float32)
               for w in weights]
    km.set_weights(weights)
    am.set_weights(weights)
    assert [w.shape for w in am.get_weights()] == [w.shape for w in km.get_weights()]
    for a, k in zip(am.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, k)
    return km, am


def _compile_pair(km, am, task, opt):
    _, _, loss, metrics = TASKS[task]
    make = OPTIMIZERS.get(opt) or EXTRA_OPTIMIZERS[opt]
    km.compile(optimizer=make(keras), loss=loss, metrics=list(metrics))
    am.compile(optimizer=make(axone), loss=loss, metrics=list(metrics))


class _KerasSnapshots(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


class _AxoneSnapshots(axone.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def _fit_pair(km, am, x, y, **kw):
    ks, as_ = _KerasSnapshots(), _AxoneSnapshots()
    hk = km.fit(x, y, shuffle=False, verbose=0, callbacks=[ks], **kw)
    ha = am.fit(x, y, shuffle=False, verbose=0, callbacks=[as_], **kw)
    return hk, ha, ks.weights, as_.weights


def _assert_weights_close(wa, wk, what):
    assert len(wa) == len(wk), what
    for i, (a, k) in enumerate(zip(wa, wk)):
        assert a.shape == k.shape and a.dtype == np.float32, f"{what}: weight {i}"
        np.testing.assert_allclose(a, k, rtol=RTOL, atol=ATOL, err_msg=f"{what}: weight {i}")


def _assert_history_close(ha, hk, epochs):
    for key in hk.history:
        assert key in ha.history, f"History has no {key!r}: {sorted(ha.history)}"
        assert len(ha.history[key]) == len(hk.history[key]) == epochs, key
        np.testing.assert_allclose(ha.history[key], hk.history[key], rtol=HIST_RTOL, atol=1e-7,
                                   err_msg=f"History[{key!r}]")
    # the same keys, no more: checked last so that a value mismatch is reported first.
    # axone also logs `learning_rate` when a schedule drives it (the issue asks for it; Keras 3
    # does not log it), so that one extra key is allowed.
    assert sorted(k for k in ha.history if k != "learning_rate") == sorted(hk.history)


def _assert_trained(w0, w1):
    """The run must actually have moved the weights (else a no-op optimizer would pass)."""
    assert max(float(np.abs(a - b).max()) for a, b in zip(w0, w1)) > 1e-3


# ------------------------------------------------------------------- tests
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("task", list(TASKS))
def test_fit_three_epochs_matches_keras(task, opt):
    x, y = _data(task)
    km, am = _build_pair(task)
    w0 = km.get_weights()
    _compile_pair(km, am, task, opt)
    hk, ha, kw, aw = _fit_pair(km, am, x, y, batch_size=BATCH, epochs=3)
    assert len(kw) == len(aw) == 3
    for epoch, (wa, wk) in enumerate(zip(aw, kw)):
        _assert_weights_close(wa, wk, f"{task}/{opt} after epoch {epoch + 1}")
    _assert_weights_close(am.get_weights(), km.get_weights(), f"{task}/{opt} final")
    _assert_trained(w0, am.get_weights())
    _assert_history_close(ha, hk, 3)
    assert am.optimizer.iterations == 3 * 5 == int(km.optimizer.iterations)


@pytest.mark.parametrize("opt", list(EXTRA_OPTIMIZERS))
@pytest.mark.parametrize("task", ["categorical", "regression"])
def test_fit_optimizer_options_match_keras(task, opt):
    """RMSprop, decoupled weight decay, gradient clipping and a learning-rate schedule."""
    x, y = _data(task)
    km, am = _build_pair(task, seed=10)
    w0 = km.get_weights()
    _compile_pair(km, am, task, opt)
    hk, ha, kw, aw = _fit_pair(km, am, x, y, batch_size=BATCH, epochs=2)
    for epoch, (wa, wk) in enumerate(zip(aw, kw)):
        _assert_weights_close(wa, wk, f"{task}/{opt} after epoch {epoch + 1}")
    _assert_trained(w0, am.get_weights())
    _assert_history_close(ha, hk, 2)
    if opt in WITHOUT_OPTION:
        _, plain = _build_pair(task, seed=10)
        _, _, loss, metrics = TASKS[task]
        plain.compile(optimizer=WITHOUT_OPTION[opt](), loss=loss, metrics=list(metrics))
        plain.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
        assert max(float(np.abs(a - b).max())
                   for a, b in zip(plain.get_weights(), am.get_weights())) > 1e-4, \
            f"{opt}: the option had no effect"


@pytest.mark.parametrize("opt", ["sgd", "sgd_momentum", "adam"])
@pytest.mark.parametrize("task", list(TASKS))
def test_fit_one_epoch_then_evaluate_predict(task, opt):
    x, y = _data(task)
    km, am = _build_pair(task, seed=1)
    _compile_pair(km, am, task, opt)
    hk, ha, _, _ = _fit_pair(km, am, x, y, batch_size=BATCH, epochs=1)
    _assert_weights_close(am.get_weights(), km.get_weights(), f"{task}/{opt} after 1 epoch")
    _assert_history_close(ha, hk, 1)

    xe, ye = _data(task, seed=7)
    ek = km.evaluate(xe, ye, batch_size=BATCH, verbose=0, return_dict=True)
    ea = am.evaluate(xe, ye, batch_size=BATCH, verbose=0, return_dict=True)
    assert sorted(ea) == sorted(ek)
    for key in ek:
        assert ea[key] == pytest.approx(ek[key], rel=HIST_RTOL, abs=1e-7), key
    # list form: [loss, *metrics] in the same order
    lk = km.evaluate(xe, ye, batch_size=32, verbose=0)
    la = am.evaluate(xe, ye, batch_size=32, verbose=0)
    np.testing.assert_allclose(la, lk, rtol=HIST_RTOL, atol=1e-7)

    pk = km.predict(xe, batch_size=BATCH, verbose=0)
    pa = am.predict(xe, batch_size=BATCH, verbose=0)
    assert pa.shape == pk.shape and pa.dtype == np.float32
    np.testing.assert_allclose(pa, pk, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("opt", ["sgd_nesterov", "adam_custom"])
@pytest.mark.parametrize("task", ["categorical", "regression"])
def test_validation_split_matches_keras(task, opt):
    x, y = _data(task)
    km, am = _build_pair(task, seed=2)
    _compile_pair(km, am, task, opt)
    # 70 rows, validation_split=0.2: 56 training rows in batches 16, 16, 16, 8; 14 validation rows
    hk, ha, kw, aw = _fit_pair(km, am, x, y, batch_size=BATCH, epochs=3, validation_split=0.2)
    assert "val_loss" in hk.history and "val_loss" in ha.history
    _assert_history_close(ha, hk, 3)
    for epoch, (wa, wk) in enumerate(zip(aw, kw)):
        _assert_weights_close(wa, wk, f"{task}/{opt} validation_split, epoch {epoch + 1}")
    # the validation loss is the loss on the last 14 rows, not on rows seen in training
    vl = am.evaluate(x[56:], y[56:], batch_size=BATCH, verbose=0, return_dict=True)["loss"]
    assert ha.history["val_loss"][-1] == pytest.approx(vl, rel=1e-6)


@pytest.mark.parametrize("opt", ["sgd_momentum", "adam"])
def test_second_fit_call_continues_optimizer_state(opt):
    """Keras keeps momentum / Adam moments and the step count across fit() calls."""
    task = "sparse"
    x, y = _data(task)
    km, am = _build_pair(task, seed=3)
    _compile_pair(km, am, task, opt)
    _fit_pair(km, am, x, y, batch_size=BATCH, epochs=1)
    hk, ha, _, _ = _fit_pair(km, am, x, y, batch_size=BATCH, epochs=2)
    _assert_weights_close(am.get_weights(), km.get_weights(), f"{opt} after two fit() calls")
    _assert_history_close(ha, hk, 2)
    assert am.optimizer.iterations == int(km.optimizer.iterations) == 15


def _weighted_run(metrics=("accuracy",), weighted_metrics=None, epochs=2):
    task = "binary"
    x, y = _data(task)
    xv, yv = _data(task, seed=5)
    sw = np.random.default_rng(9).uniform(0.2, 2.0, size=N).astype(np.float32)
    km, am = _build_pair(task, seed=4)
    km.compile(optimizer=OPTIMIZERS["adam_custom"](keras), loss="binary_crossentropy",
               metrics=list(metrics), weighted_metrics=weighted_metrics)
    am.compile(optimizer=OPTIMIZERS["adam_custom"](axone), loss="binary_crossentropy",
               metrics=list(metrics), weighted_metrics=weighted_metrics)
    hk, ha, kw, aw = _fit_pair(km, am, x, y, batch_size=BATCH, epochs=epochs, sample_weight=sw,
                               validation_data=(xv[:30], yv[:30]))
    return km, am, hk, ha, kw, aw


def test_validation_data_and_sample_weight_match_keras():
    """The sample-weighted loss, the weights and the validation logs match Keras."""
    km, am, hk, ha, kw, aw = _weighted_run()
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(ha.history[key], hk.history[key], rtol=HIST_RTOL, atol=1e-7,
                                   err_msg=f"History[{key!r}]")
    for wa, wk in zip(aw, kw):
        _assert_weights_close(wa, wk, "binary with sample_weight")
    _assert_weights_close(am.get_weights(), km.get_weights(), "binary with sample_weight")


def test_compile_metrics_ignore_sample_weight_like_keras():
    """Keras 3 weights only compile(weighted_metrics=...), not compile(metrics=...)."""
    km, am, hk, ha, kw, aw = _weighted_run()
    np.testing.assert_allclose(ha.history["accuracy"], hk.history["accuracy"], rtol=HIST_RTOL,
                               atol=1e-7)


@pytest.mark.parametrize("metrics", [(), ("accuracy",)], ids=["weighted_only", "both"])
def test_weighted_metrics_like_keras(metrics):
    """compile(weighted_metrics=...) metrics see the sample weights; with the same name also in
    metrics=..., Keras logs the weighted one as weighted_<name>."""
    km, am, hk, ha, kw, aw = _weighted_run(metrics=metrics, weighted_metrics=["accuracy"],
                                           epochs=1)
    _assert_history_close(ha, hk, 1)


def test_train_and_test_on_batch_match_keras():
    task = "categorical"
    x, y = _data(task)
    km, am = _build_pair(task, seed=6)
    _compile_pair(km, am, task, "adam")
    for lo in (0, 16, 32):
        rk = km.train_on_batch(x[lo:lo + 16], y[lo:lo + 16])
        ra = am.train_on_batch(x[lo:lo + 16], y[lo:lo + 16])
        np.testing.assert_allclose(ra, rk, rtol=HIST_RTOL, atol=1e-7)
    _assert_weights_close(am.get_weights(), km.get_weights(), "train_on_batch")
    np.testing.assert_allclose(am.test_on_batch(x[48:], y[48:]), km.test_on_batch(x[48:], y[48:]),
                               rtol=HIST_RTOL, atol=1e-7)
    np.testing.assert_allclose(am.predict_on_batch(x[:5]), km.predict_on_batch(x[:5]),
                               rtol=RTOL, atol=ATOL)


def test_predict_without_compile_matches_keras():
    """Keras predicts with a model that was never compiled, or compiled but not yet trained."""
    x, _ = _data("categorical")
    km, am = _build_pair("categorical", seed=8)
    np.testing.assert_allclose(am.predict(x, batch_size=BATCH, verbose=0),
                               km.predict(x, batch_size=BATCH, verbose=0), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(am.predict_on_batch(x[:5]), km.predict_on_batch(x[:5]),
                               rtol=RTOL, atol=ATOL)


def test_predict_after_compile_before_fit_matches_keras():
    x, _ = _data("sparse")
    km, am = _build_pair("sparse", seed=8)
    _compile_pair(km, am, "sparse", "adam")
    np.testing.assert_allclose(am.predict(x, batch_size=BATCH, verbose=0),
                               km.predict(x, batch_size=BATCH, verbose=0), rtol=RTOL, atol=ATOL)
