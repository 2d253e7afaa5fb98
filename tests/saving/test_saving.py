"""Saving and loading: whole models, weights, optimizer state, atomic writes, bad files."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import axone
from axone import layers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
rng = np.random.default_rng(0)
X = rng.random((64, 4)).astype(np.float32)
Y = axone.utils.to_categorical(rng.integers(0, 3, 64), 3)


def _model(compile_=True, lr=None):
    axone.utils.set_random_seed(0)
    m = axone.Sequential([
        layers.Dense(8, activation="relu", input_shape=(4,), kernel_regularizer="l2"),
        layers.BatchNormalization(),
        layers.Dropout(0.2),
        layers.Dense(3, activation="softmax"),
    ])
    if compile_:
        opt = axone.optimizers.Adam(lr or axone.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9))
        m.compile(optimizer=opt, loss="categorical_crossentropy",
                  metrics=["accuracy", axone.metrics.CategoricalAccuracy(name="cat")])
    return m


def test_saved_model_predicts_identically_and_resumes_training_identically(tmp_path):
    m = _model()
    m.fit(X, Y, epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    m.save(path)
    m2 = axone.models.load_model(path)
    np.testing.assert_array_equal(m.predict(X, verbose=0), m2.predict(X, verbose=0))
    assert [w.shape for w in m2.weights] == [w.shape for w in m.weights]
    assert m2.optimizer.iterations == m.optimizer.iterations
    axone.utils.set_random_seed(7)
    h1 = m.fit(X, Y, epochs=3, verbose=0)
    axone.utils.set_random_seed(7)
    h2 = m2.fit(X, Y, epochs=3, verbose=0)
    assert h1.history == h2.history
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_functional_model_with_shared_layer_round_trip(tmp_path):
    i1, i2 = axone.Input((4,), name="a"), axone.Input((2,), name="b")
    shared = layers.Dense(5, name="shared")
    s = layers.Add()([shared(i1), layers.Dense(5)(i2)])
    o1 = layers.Dense(1, name="o1")(s)
    o2 = layers.Dense(2, name="o2", activation="softmax")(layers.Concatenate()([s, shared(i1)]))
    f = axone.Model([i1, i2], [o1, o2])
    f.compile(optimizer="sgd", loss=["mse", "categorical_crossentropy"], loss_weights=[1.0, 0.5])
    f.save(tmp_path / "f.keras")
    g = axone.models.load_model(tmp_path / "f.keras")
    xs = [X, X[:, :2]]
    for p, q in zip(f.predict(xs, verbose=0), g.predict(xs, verbose=0)):
        np.testing.assert_array_equal(p, q)
    assert len(g.weights) == len(f.weights) == 8      # the shared layer counted once
    assert [l.name for l in g.layers] == [l.name for l in f.layers]


def test_save_weights_and_load_weights(tmp_path):
    m = _model(compile_=False)
    m.save_weights(tmp_path / "w.weights")
    other = _model(compile_=False)
    for w in other.weights:
        w.assign(np.zeros(w.shape))
    other.load_weights(tmp_path / "w.weights")
    for a, b in zip(m.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    # a model file also carries loadable weights
    m.compile(optimizer="adam", loss="mse")
    m.save(tmp_path / "m.keras")
    other.load_weights(tmp_path / "m.keras")


def test_load_weights_into_other_architecture_names_layer_and_shapes(tmp_path):
    m = _model(compile_=False)
    m.save_weights(tmp_path / "w.weights")
    wider = axone.Sequential([layers.Dense(9, activation="relu", input_shape=(4,)),
                              layers.BatchNormalization(), layers.Dense(3)])
    with pytest.raises(ValueError, match=r"dense.*\(4, 9\).*\(4, 8\)"):
        wider.load_weights(tmp_path / "w.weights")
    smaller = axone.Sequential([layers.Dense(3, input_shape=(4,))])
    with pytest.raises(ValueError, match="architectures differ"):
        smaller.load_weights(tmp_path / "w.weights")


def test_file_format_is_zip_of_json_and_npy_without_pickle(tmp_path):
    m = _model()
    m.fit(X, Y, epochs=1, verbose=0)
    m.save(tmp_path / "m.axone")          # axone's own archive (a .keras path is Keras's)
    with zipfile.ZipFile(tmp_path / "m.axone") as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("axone.json"))
        assert meta["format"] == "axone.model"
        assert "config.json" in names and "compile.json" in names
        assert all(n.endswith((".json", ".npy")) for n in names)
        for n in names:
            if n.endswith(".npy"):
                import io
                np.lib.format.read_array(io.BytesIO(zf.read(n)), allow_pickle=False)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign_zip", "hdf5", "flip_byte"])
def test_corrupted_or_foreign_files_raise_clear_errors(tmp_path, damage):
    good = tmp_path / "good.keras"
    _model().save(good)
    bad = tmp_path / "bad.keras"
    data = good.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"not a model at all")
    elif damage == "foreign_zip":
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("hello.txt", "hi")
    elif damage == "hdf5":
        bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    else:
        good = tmp_path / "good.axone"
        _model().save(good)
        data = good.read_bytes()
        i = data.index(b"weights/0000.npy") + 200
        bad.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
    with pytest.raises(ValueError, match="bad.keras"):
        axone.models.load_model(bad)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        axone.models.load_model(tmp_path / "nope.keras")


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    m = _model()
    path = tmp_path / "m.axone"
    m.save(path)
    before = path.read_bytes()
    from axone.models import saving

    def boom(a):
        raise OSError("disk full")
    monkeypatch.setattr(saving, "_array_bytes", boom)
    with pytest.raises(OSError):
        m.save(path)
    assert path.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    import numpy as np, axone
    from axone import layers
    from axone.callbacks import ModelCheckpoint, Callback
    rng = np.random.default_rng(0)
    x = rng.random((2000, 20)).astype("float32"); y = rng.random((2000, 1)).astype("float32")
    m = axone.Sequential([layers.Dense(256, activation="relu", input_shape=(20,)), layers.Dense(256),
                          layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    class Tell(Callback):
        def on_epoch_end(self, epoch, logs=None):
            print("epoch", epoch, flush=True)
    m.fit(x, y, epochs=100000, batch_size=50, verbose=0,
          callbacks=[ModelCheckpoint({path!r}, save_freq=3), Tell()])
""")


def test_sigkill_mid_fit_leaves_checkpoint_loadable(tmp_path):
    path = str(tmp_path / "ckpt.keras")
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT.format(root=ROOT, path=path))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()                      # one epoch done: checkpoints are being written
        for delay in (0.013, 0.029, 0.047, 0.071, 0.11):
            time.sleep(delay)                       # kill at arbitrary moments of saving
            assert os.path.exists(path)
            axone.models.load_model(path)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    model = axone.models.load_model(path)
    assert model.predict(np.zeros((2, 20), np.float32), verbose=0).shape == (2, 1)
