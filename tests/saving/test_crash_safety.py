"""Crash safety of writes: BackupAndRestore's weights and epoch change together under SIGKILL,
and temporary files of killed writers are removed by the next write."""
import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import axone
from axone import fileio, layers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODEL = """
import numpy as np, axone
from axone import layers
def build():
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Dense(64, activation="tanh", input_shape=(4,)), layers.Dense(3)])
    m.compile(optimizer=axone.optimizers.SGD(0.01), loss="mse")
    return m
X = (np.arange(32, dtype=np.float32).reshape(8, 4) / 32)
Y = np.tile(np.float32([1, 0, -1]), (8, 1))
"""

CHILD = MODEL + """
import sys
class Go(axone.callbacks.Callback):
    def on_train_begin(self, logs=None):
        print("go", flush=True)
m = build()
m.fit(X, Y, epochs=100000, batch_size=8, shuffle=False, verbose=0,
      callbacks=[axone.callbacks.BackupAndRestore(sys.argv[1], delete_checkpoint=False), Go()])
"""


def _namespace():
    ns = {}
    exec(MODEL, ns)
    return ns


def _digest(weights):
    return hashlib.sha1(b"".join(np.ascontiguousarray(w).tobytes() for w in weights)).hexdigest()


class _Stop(Exception):
    pass


def _restored(ns, backup):
    """(resume epoch, weights digest) that a new fit would start from."""
    m = ns["build"]()
    seen = {}

    class Peek(axone.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["epoch"] = self.model._resume_epoch
            seen["digest"] = _digest(self.model.get_weights())
            raise _Stop()
    try:
        m.fit(ns["X"], ns["Y"], epochs=100000, batch_size=8, shuffle=False, verbose=0,
              callbacks=[axone.callbacks.BackupAndRestore(backup, delete_checkpoint=False), Peek()])
    except _Stop:
        pass
    return seen.get("epoch"), seen.get("digest")


def test_killed_backups_resume_at_the_epoch_of_their_weights(tmp_path):
    ns = _namespace()
    backup = str(tmp_path / "backup")
    rand = random.Random(1)
    env = dict(os.environ, PYTHONPATH=ROOT, AXONE_NUM_THREADS="1")
    observed = []
    for _ in range(15):
        p = subprocess.Popen([sys.executable, "-c", CHILD, backup], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        try:
            assert p.stdout.readline().strip() == b"go"
            time.sleep(rand.uniform(0.05, 0.5))
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        epoch, digest = _restored(ns, backup)
        if epoch is not None:
            observed.append((epoch, digest))
    assert len(observed) >= 10
    # the weights each backup holds, recomputed epoch by epoch without interruption
    m = ns["build"]()
    reference = {}

    class Record(axone.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            reference[epoch + 1] = _digest(self.model.get_weights())
    m.fit(ns["X"], ns["Y"], epochs=max(e for e, _ in observed), batch_size=8, shuffle=False,
          verbose=0, callbacks=[Record()])
    wrong = [(e, d == reference.get(e)) for e, d in observed if d != reference.get(e)]
    assert not wrong, f"resume epochs whose weights are from another epoch: {wrong} of {observed}"
    # the killed writes left no temporary files behind once the next write or restore ran
    left = [n for n in os.listdir(backup) if n.endswith(".tmp")]
    assert not left, left


def _temp(folder, target, pid, start, tag="abcd"):
    p = os.path.join(folder, f".{target}.axone-{pid}-{start}-{tag}.tmp")
    open(p, "wb").close()
    return p


def test_a_write_removes_temporary_files_of_dead_writers_only(tmp_path):
    folder = str(tmp_path)
    target = os.path.join(folder, "model.keras")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = os.getpid()
    my_start = fileio._process_start(me)
    stale = _temp(folder, "model.keras", dead.pid, 12345)
    reused = _temp(folder, "model.keras", me, my_start + 1, "efgh")     # same pid, other process
    live = _temp(folder, "model.keras", me, my_start, "ijkl")           # a concurrent writer
    other = _temp(folder, "other.keras", dead.pid, 12345)              # another target's
    foreign = os.path.join(folder, ".model.keras.tmp")                  # not ours at all
    open(foreign, "wb").close()
    m = axone.Sequential([layers.Dense(2, input_shape=(3,))])
    m.save(target)
    assert not os.path.exists(stale) and not os.path.exists(reused)
    assert os.path.exists(live) and os.path.exists(other) and os.path.exists(foreign)
    assert axone.models.load_model(target).count_params() == m.count_params()


def test_a_write_names_its_temporary_file_after_its_target_and_process(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)
    monkeypatch.setattr(fileio.os, "replace", spy)
    axone.Sequential([layers.Dense(2, input_shape=(3,))]).save_weights(tmp_path / "w.weights")
    assert len(seen) == 1
    assert seen[0].startswith(f".w.weights.axone-{os.getpid()}-") and seen[0].endswith(".tmp")


def test_a_load_removes_temporary_files_of_dead_writers(tmp_path):
    folder = str(tmp_path)
    target = os.path.join(folder, "model.keras")
    m = axone.Sequential([layers.Dense(2, input_shape=(3,))])
    m.save(target)
    m.save_weights(os.path.join(folder, "w.weights"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = _temp(folder, "model.keras", dead.pid, 12345)
    stale_w = _temp(folder, "w.weights", dead.pid, 12345)
    axone.models.load_model(target)
    m.load_weights(os.path.join(folder, "w.weights"))
    assert not os.path.exists(stale) and not os.path.exists(stale_w)


def test_save_refuses_unknown_keywords(tmp_path):
    m = axone.Sequential([layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="not supported"):
        m.save(tmp_path / "m.keras", compression="lzma")
    with pytest.raises(NotImplementedError, match="zipped"):
        m.save(tmp_path / "m.keras", zipped=False)
    with pytest.raises(NotImplementedError, match="save_format"):
        m.save(tmp_path / "m.keras", save_format="h5")
    m.save(tmp_path / "m.keras", zipped=True, save_format="keras")
