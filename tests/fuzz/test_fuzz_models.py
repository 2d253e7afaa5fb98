"""Fuzzing the model, weights and backup loaders: mutated files raise FileFormatError (or
FileNotFoundError) and nothing else — no other exception, no crash, no time-out, no memory blow-up
(each input runs in a worker under a 1 GiB address-space cap and a 2 s time cap).

A loaded model with an optimizer takes one optimizer step on its flat buffers, so a state that
does not fit the optimizer (which once crashed the compiled kernels) is caught as well.
``AXONE_FUZZ_INPUTS`` sets the inputs per test (default: a short pass).
"""
import os

import numpy as np
import pytest

import axone
from axone import layers

from _harness import fuzz, mutants, n_inputs

#: AXONE_FUZZ_SEED shifts the mutation seeds (a long pass with new inputs)
SEED = int(os.environ.get("AXONE_FUZZ_SEED", "0") or 0)

SHORT = 1000


def _step(model):
    opt = getattr(model, "optimizer", None)
    if opt is None or not model.trainable_weights:
        return
    buf = model._param_buffer()
    if buf[1] is None:
        return
    buf[2][...] = 0.01
    opt.update_flat(buf[1], buf[2], buf[3])


def _sequential(optimizer="adam"):
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Dense(6, activation="relu", input_shape=(4,)),
                          layers.BatchNormalization(),
                          layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def _functional():
    axone.utils.set_random_seed(0)
    a, b = axone.Input((4,), name="a"), axone.Input((2,), name="b")
    shared = layers.Dense(5, name="shared")
    s = layers.Add()([shared(a), layers.Dense(5)(b)])
    o1 = layers.Dense(1, name="o1")(s)
    o2 = layers.Dense(2, name="o2", activation="softmax")(layers.Concatenate()([s, shared(a)]))
    m = axone.Model([a, b], [o1, o2])
    m.compile(optimizer=axone.optimizers.RMSprop(momentum=0.5, centered=True),
              loss=["mse", "categorical_crossentropy"], loss_weights=[1.0, 0.5])
    return m


def _train(m, functional=False):
    rng = np.random.default_rng(0)
    x = rng.random((16, 4)).astype(np.float32)
    if functional:
        m.fit([x, x[:, :2]], [x[:, :1], np.eye(2, dtype=np.float32)[np.arange(16) % 2]],
              epochs=1, verbose=0)
    else:
        m.fit(x, np.eye(3, dtype=np.float32)[np.arange(16) % 3], epochs=1, verbose=0)
    return m


# ----------------------------------------------------------------- loaders (run in the workers)
def load_model_loader(path):
    _step(axone.models.load_model(path))


def load_weights_loader(path):
    m = _sequential()
    m.load_weights(path, skip_mismatch=len(path) % 2 == 0)


def backup_loader(path):
    m = _sequential()
    m._param_buffer()
    cb = axone.callbacks.BackupAndRestore(os.path.dirname(path))
    cb.set_model(m)
    cb.on_train_begin()
    _step(m)


# ----------------------------------------------------------------- seeds
def _read(p):
    with open(p, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    out = {}
    seq = _train(_sequential())
    seq.save(d / "seq.keras")
    fun = _train(_functional(), functional=True)
    fun.save(d / "fun.keras")
    plain = _sequential(axone.optimizers.SGD(0.01, momentum=0.9, nesterov=True))
    plain.save(d / "plain.keras")               # an optimizer that has not stepped yet
    out["models"] = [_read(d / "seq.keras"), _read(d / "fun.keras"), _read(d / "plain.keras")]
    seq.save_weights(d / "w.weights")
    out["weights"] = [_read(d / "w.weights"), _read(d / "seq.keras")]
    seq._save_backup(str(d / "latest.axone"), {"epoch": 3})
    out["backup"] = [_read(d / "latest.axone")]
    return out


def _check(report, label):
    print(f"{label}: {report.summary()}")
    folder = os.environ.get("AXONE_FUZZ_FAILURES")
    if folder:
        report.save_failures(os.path.join(folder, label))
    assert not report.failures, report.summary()


def test_fuzz_load_model(seeds):
    n = n_inputs(SHORT)
    report = fuzz(load_model_loader, mutants(seeds["models"], n, seed=SEED + 11), filename="m.keras")
    assert report.count == n
    _check(report, "load_model")


def test_fuzz_load_weights(seeds):
    n = n_inputs(SHORT // 2)
    report = fuzz(load_weights_loader, mutants(seeds["weights"], n, seed=SEED + 12), filename="w.weights")
    _check(report, "load_weights")


def test_fuzz_backup_restore(seeds):
    n = n_inputs(SHORT // 2)
    report = fuzz(backup_loader, mutants(seeds["backup"], n, seed=SEED + 13), filename="latest.axone")
    _check(report, "backup")


def test_seeds_load_cleanly(seeds, tmp_path):
    """The unmutated seeds load (so the fuzz inputs start from valid files)."""
    for i, data in enumerate(seeds["models"]):
        p = tmp_path / f"{i}.keras"
        p.write_bytes(data)
        load_model_loader(str(p))
    p = tmp_path / "b" / "latest.axone"
    p.parent.mkdir()
    p.write_bytes(seeds["backup"][0])
    backup_loader(str(p))
