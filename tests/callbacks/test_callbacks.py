"""Callbacks: ModelCheckpoint, CSVLogger, TerminateOnNaN, LambdaCallback, LearningRateScheduler,
ReduceLROnPlateau, BackupAndRestore, and the learning rate in History."""
import csv
import os

import numpy as np
import pytest

import axone
from axone import callbacks, layers

rng = np.random.default_rng(0)
X = rng.standard_normal((120, 4)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32) + 0.1 * rng.standard_normal((120, 1))).astype(np.float32)


def _model(lr=0.01, opt="sgd"):
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Dense(8, activation="tanh", input_shape=(4,)), layers.Dense(1)])
    m.compile(optimizer=axone.optimizers.get({"class_name": opt, "config": {"learning_rate": lr}}),
              loss="mse")
    return m


def test_course_004_checkpoint_keeps_the_best_epoch(tmp_path):
    # 004: ModelCheckpoint(filepath=..., monitor='val_loss', save_best_only=True,
    #                      save_weights_only=True, mode='min')
    path = str(tmp_path / "best.weights")
    seen = []
    m = _model(lr=0.3)        # a large step: val_loss goes up and down
    cb = callbacks.ModelCheckpoint(filepath=path, monitor="val_loss", save_best_only=True,
                                   save_weights_only=True, mode="min")
    snap = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append((logs["val_loss"], m.get_weights())))
    m.fit(X, Y, epochs=15, batch_size=16, validation_split=0.25, verbose=0, callbacks=[cb, snap])
    best_loss, best_weights = min(seen, key=lambda s: s[0])
    fresh = _model()
    fresh.load_weights(path)
    for a, b in zip(fresh.get_weights(), best_weights):
        np.testing.assert_array_equal(a, b)
    assert cb.best == best_loss


def test_checkpoint_filepath_templates(tmp_path):
    m = _model()
    tpl = str(tmp_path / "ckpt{epoch:04d}-{val_loss:.2f}.keras")
    m.fit(X, Y, epochs=3, verbose=0, validation_split=0.2, callbacks=[callbacks.ModelCheckpoint(tpl)])
    files = sorted(os.listdir(tmp_path))
    assert [f[:8] for f in files] == ["ckpt0001", "ckpt0002", "ckpt0003"]
    m2 = axone.models.load_model(tmp_path / files[-1])
    np.testing.assert_array_equal(m2.predict(X, verbose=0), m.predict(X, verbose=0))


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    m = _model()
    h = m.fit(X, Y, epochs=3, verbose=0, validation_split=0.2, callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows], h.history["val_loss"], rtol=1e-12)
    m.fit(X, Y, epochs=2, verbose=0, validation_split=0.2, callbacks=[callbacks.CSVLogger(path, append=True)])
    assert len(list(csv.DictReader(open(path)))) == 5


def test_terminate_on_nan_stops_within_the_epoch():
    m = _model(lr=1e6)        # diverges to inf/NaN at once
    h = m.fit(X * 1e3, Y, epochs=5, batch_size=8, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    assert len(h.history["loss"]) == 1


def test_learning_rate_scheduler_and_history_learning_rate():
    m = _model(lr=0.1)
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    h = m.fit(X, Y, epochs=4, verbose=0, callbacks=[sched])
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.05, 0.025, 0.0125])
    m = _model()
    m.compile(optimizer=axone.optimizers.SGD(axone.optimizers.schedules.InverseTimeDecay(0.1, 1, 1.0)), loss="mse")
    h = m.fit(X, Y, epochs=2, batch_size=60, verbose=0)         # 2 steps an epoch
    np.testing.assert_allclose(h.history["learning_rate"], [0.1 / 3, 0.1 / 5])


def test_reduce_lr_on_plateau():
    m = _model(lr=0.0)        # nothing improves: the rate is cut every `patience` epochs
    m.optimizer.learning_rate = 0.1
    m.compile(optimizer=axone.optimizers.SGD(0.0), loss="mse")
    cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=0.0)
    m.optimizer.learning_rate = 0.0
    h = m.fit(X, Y, epochs=1, verbose=0, callbacks=[cb])
    assert h.history["learning_rate"] == [0.0]
    m2 = _model(lr=1e-12)
    cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=1.0)
    h = m2.fit(X, Y, epochs=7, verbose=0, callbacks=[cb])
    # epoch 0 sets the best; epochs 1-2 do not improve by min_delta → cut at the end of epoch 2;
    # like Keras, each epoch logs the rate it trained with (read before any cut)
    np.testing.assert_allclose(h.history["learning_rate"],
                               [1e-12, 1e-12, 1e-12, 5e-13, 5e-13, 2.5e-13, 2.5e-13], rtol=1e-9)
    assert m2.optimizer.learning_rate == pytest.approx(1.25e-13)


def test_lambda_callback_hooks():
    events = []
    cb = callbacks.LambdaCallback(on_train_begin=lambda logs: events.append("begin"),
                                  on_epoch_end=lambda e, logs: events.append(e),
                                  on_train_batch_end=lambda b, logs: events.append("b"),
                                  on_train_end=lambda logs: events.append("end"))
    _model().fit(X, Y, epochs=2, batch_size=60, verbose=0, callbacks=[cb])
    assert events == ["begin", "b", "b", 0, "b", "b", 1, "end"]


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    class Crash(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt("simulated crash")

    full = _model()
    axone.utils.set_random_seed(3)
    hist_full = full.fit(X, Y, epochs=6, verbose=0, shuffle=False)

    m = _model()
    backup = callbacks.BackupAndRestore(str(tmp_path / "backup"))
    axone.utils.set_random_seed(3)
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, Y, epochs=6, verbose=0, shuffle=False, callbacks=[backup, Crash()])
    resumed = _model()            # a fresh process would rebuild the model the same way
    h = resumed.fit(X, Y, epochs=6, verbose=0, shuffle=False, callbacks=[backup])
    assert len(h.history["loss"]) == 3          # epochs 3, 4, 5 only
    np.testing.assert_allclose(h.history["loss"], hist_full.history["loss"][3:], rtol=1e-6)
    for a, b in zip(resumed.get_weights(), full.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not os.listdir(tmp_path / "backup")  # deleted after a completed run


@pytest.mark.parametrize("bad", [
    lambda: callbacks.EarlyStopping(patience=-1),
    lambda: callbacks.ReduceLROnPlateau(factor=1.5),
    lambda: callbacks.ReduceLROnPlateau(patience=-2),
    lambda: callbacks.ModelCheckpoint("x", save_freq=0),
    lambda: callbacks.ModelCheckpoint("x", mode="up"),
    lambda: callbacks.LearningRateScheduler(0.1),
])
def test_impossible_callback_arguments(bad):
    with pytest.raises((ValueError, TypeError)):
        bad()


def test_unknown_monitor_warns_once():
    m = _model()
    with pytest.warns(UserWarning, match="val_acc") as rec:
        m.fit(X, Y, epochs=3, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_acc", mode="max")])
    assert len([w for w in rec if "val_acc" in str(w.message)]) == 1
