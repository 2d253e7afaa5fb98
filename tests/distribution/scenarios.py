"""Training scenarios run under ``mpiexec -n N python scenarios.py <name> <out_dir> <dp|single>``
(and in-process for the one-process reference): each writes its results to
``<out_dir>/<name>_<rank>.json`` / ``.npz``."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import axone  # noqa: E402
from axone import layers  # noqa: E402


def _iris():
    from axone.datasets import load_iris
    x, y = load_iris()
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    return x, axone.utils.to_categorical(y, 3)


def _mlp(bn=False):
    body = [layers.Input((4,)), layers.Dense(16, activation="relu")]
    if bn:
        body.append(layers.BatchNormalization())
    model = axone.Sequential(body + [layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=["accuracy", axone.metrics.AUC(name="auc")])
    return model


def arrays(out, rank):
    """Arrays with a validation split, shuffling, and a last batch of one row (an empty part on
    rank 1 of 2); evaluate and predict after."""
    x, y = _iris()
    model = _mlp()
    h = model.fit(x, y, epochs=4, batch_size=7, validation_split=0.2, verbose=0)
    ev = model.evaluate(x, y, batch_size=16, verbose=0)
    seen = []
    forward = model._forward
    model._forward = lambda xs, training: seen.append(len(xs[0])) or forward(xs, training)
    pred = model.predict(x, batch_size=16, verbose=0)          # 10 batches, the last of 6 rows
    del model._forward
    pred3 = model.predict(x[:7], batch_size=3, verbose=0)      # a last batch of 1 row
    return {"history": h.history, "evaluate": ev, "predict_rows": sum(seen)}, \
        model.get_weights() + [pred, pred3]


def generator(out, rank):
    """A generator of global batches: every rank reads each batch and takes its part."""
    x, y = _iris()

    def gen():
        while True:
            for i in range(0, 150, 25):
                yield x[i:i + 25], y[i:i + 25]
    model = _mlp()
    h = model.fit(gen(), steps_per_epoch=6, epochs=3, verbose=0)
    return {"history": h.history}, model.get_weights()


def batchnorm(out, rank):
    """BatchNormalization: moving statistics averaged over the ranks at each epoch end."""
    x, y = _iris()
    model = _mlp(bn=True)
    h = model.fit(x, y, epochs=2, batch_size=30, shuffle=False, verbose=0)
    return {"history": h.history}, model.get_weights()


def chief_files(out, rank):
    """Only rank 0 writes checkpoints and CSV logs (each rank names its own files here)."""
    x, y = _iris()
    model = _mlp()
    cbs = [axone.callbacks.CSVLogger(os.path.join(out, f"log_{rank}.csv")),
           axone.callbacks.ModelCheckpoint(os.path.join(out, f"ckpt_{rank}.weights.h5"),
                                           save_weights_only=True),
           axone.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)]
    h = model.fit(x, y, epochs=5, batch_size=30, verbose=0, callbacks=cbs)
    return {"history": h.history,
            "files": sorted(f for f in os.listdir(out) if f.startswith(("log_", "ckpt_")))}, []


def differ(out, rank):
    """Ranks that build different models: fit refuses at the start, on every rank."""
    axone.utils.set_random_seed(rank)
    x, y = _iris()
    model = _mlp()
    try:
        model.fit(x, y, epochs=1, verbose=0)
    except ValueError as e:
        return {"error": str(e)}, []
    return {"error": None}, []


class _TapeStep(axone.Model):
    """An overridden train_step as keras.io writes it (GradientTape, apply_gradients, the
    compiled metrics), and a test_step."""

    def __init__(self):
        super().__init__()
        self.h = layers.Dense(16, activation="relu")
        self.d = layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.d(self.h(x))

    def train_step(self, data):
        x, y = data
        with axone.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        for m in self.metrics:
            if m.name == "loss":
                m.update_state(loss)
            else:
                m.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        for m in self.metrics:
            if m.name == "loss":
                m.update_state(loss)
            else:
                m.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def custom_step(out, rank):
    """An overridden train_step / test_step: the optimizer's apply sums the gradients over the
    ranks, the metrics are reduced, so two ranks train as one process."""
    x, y = _iris()
    model = _TapeStep()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=3, batch_size=30, verbose=0)
    ev = model.evaluate(x, y, batch_size=50, verbose=0, return_dict=True)
    weights = model.get_weights()
    short = None
    try:
        model.fit(x[:31], y[:31], epochs=1, batch_size=30, verbose=0)   # a last batch of 1 row
    except ValueError as e:
        short = str(e)
    return {"history": h.history, "evaluate": ev, "short": short}, weights


def backup(out, rank):
    """BackupAndRestore: an interrupted run resumes on every rank at the same epoch, from the
    backup rank 0 wrote, and ends where an uninterrupted run ends."""
    x, y = _iris()
    axone.utils.set_random_seed(3)
    full = _mlp()
    h_full = full.fit(x, y, epochs=5, batch_size=30, shuffle=False, verbose=0)

    class Crash(axone.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt("simulated crash")
    where = os.path.join(out, "backup")
    axone.utils.set_random_seed(3)
    m = _mlp()
    try:
        m.fit(x, y, epochs=5, batch_size=30, shuffle=False, verbose=0,
              callbacks=[axone.callbacks.BackupAndRestore(where), Crash()])
    except KeyboardInterrupt:
        pass
    axone.distribution.distribution().comm.Barrier()      # a restart comes after every rank stopped
    resumed = _mlp()
    h = resumed.fit(x, y, epochs=5, batch_size=30, shuffle=False, verbose=0,
                    callbacks=[axone.callbacks.BackupAndRestore(where)])
    return {"history": h.history, "full": h_full.history,
            "left": sorted(os.listdir(where)) if os.path.isdir(where) else None}, \
        resumed.get_weights() + full.get_weights()


def sync_bn(out, rank):
    """BatchNormalization(synchronized=True) across processes is refused, naming the layer."""
    x, y = _iris()
    model = axone.Sequential([layers.Input((4,)), layers.Dense(8),
                              layers.BatchNormalization(synchronized=True, name="bn"),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    try:
        model.fit(x, y, epochs=1, verbose=0)
    except NotImplementedError as e:
        return {"error": str(e)}, []
    return {"error": None}, []


def dies(out, rank):
    """Rank 1 dies during epoch 3; rank 0 must stop (an error or MPI's abort), not hang."""
    x, y = _iris()
    model = _mlp()

    class Die(axone.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if rank == 1 and self.epoch == 2 and batch == 2:
                os._exit(3)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
    ckpt = axone.callbacks.ModelCheckpoint(os.path.join(out, "last.weights.h5"),
                                           save_weights_only=True)
    model.fit(x, y, epochs=6, batch_size=30, verbose=0, callbacks=[Die(), ckpt])
    return {"finished": True}, []


def threads(out, rank):
    """axone's thread count once DataParallel is set up (the ranks share the machine's CPUs)."""
    dp = axone.distribution.distribution()
    return {"dp_threads": dp.threads}, []


def run(name, out, mode):
    axone.utils.set_random_seed(0)
    rank = 0
    if mode == "dp":
        dp = axone.distribution.DataParallel()
        axone.distribution.set_distribution(dp)
        rank = dp.rank
    result, arrays_ = globals()[name](out, rank)
    result["rank"] = rank
    result["threads"] = axone.backend.get_num_threads()
    with open(os.path.join(out, f"{name}_{mode}_{rank}.json"), "w") as f:
        json.dump(result, f)
    np.savez(os.path.join(out, f"{name}_{mode}_{rank}.npz"), *arrays_)
    axone.distribution.set_distribution(None)
    return result, arrays_


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], sys.argv[3])
