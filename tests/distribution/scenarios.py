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


class _Batches(axone.utils.PyDataset):
    """Iris in ``sizes`` batches of different sizes (``rows`` starts at ``start``); records
    every ``__getitem__`` index with the epoch it came in, and the epoch hooks."""

    def __init__(self, sizes, start=0):
        super().__init__()
        x, y = _iris()
        ends = np.cumsum([0] + list(sizes)) + start
        self.parts = [(x[a:b], y[a:b]) for a, b in zip(ends[:-1], ends[1:])]
        self.calls, self.begun, self.ended = [], 0, 0

    def __len__(self):
        return len(self.parts)

    def __getitem__(self, i):
        self.calls.append([self.ended, int(i)])
        return self.parts[i]

    def on_epoch_begin(self):
        self.begun += 1

    def on_epoch_end(self):
        self.ended += 1


_SIZES = [10, 13, 16] * 3          # 9 batches (odd: the last step has one on rank 0 only)
_VAL_SIZES = [7, 5, 9]             # 3 validation batches, from row 117


class _Grouped(axone.utils.PyDataset):
    """One process's equivalent of a PyDataset sharded by index: batch k of epoch e is the
    concatenation of the ranks' batches of step k of epoch e (``groups[e][k]``: indices)."""

    def __init__(self, base, groups):
        super().__init__()
        self.base, self.groups, self.epoch = base, groups, 0

    def __len__(self):
        return len(self.groups[0])

    def __getitem__(self, k):
        parts = [self.base.parts[i] for i in self.groups[self.epoch][k]]
        return tuple(np.concatenate(p, axis=0) for p in zip(*parts))

    def on_epoch_end(self):
        self.epoch += 1


def _calls(ds, since=0):
    return [c for c in ds.calls[since:]]


def pydataset(out, rank):
    """PyDatasets sharded by index: fit (shuffled and in order, with a validation PyDataset),
    evaluate and predict; each rank's reads recorded.  Also auto_shard_dataset=False (each
    rank reads every index of its own dataset) and an overridden train_step refused on a
    last step that leaves a rank without a batch."""
    res, arrays_ = {}, []
    for shuffle in (True, False):
        axone.utils.set_random_seed(0)
        ds, val = _Batches(_SIZES), _Batches(_VAL_SIZES, start=117)
        model = _mlp()
        h = model.fit(ds, epochs=3, shuffle=shuffle, validation_data=val, verbose=0)
        key = "shuffled" if shuffle else "ordered"
        res[key] = {"history": h.history, "calls": ds.calls, "val_calls": val.calls,
                    "hooks": [ds.begun, ds.ended, val.begun, val.ended]}
        arrays_ += model.get_weights()
    ds = _Batches(_SIZES)
    ev = model.evaluate(ds, verbose=0, return_dict=True)
    res["evaluate"], res["evaluate_calls"] = ev, _calls(ds)
    ds = _Batches(_SIZES)
    pred = model.predict(ds, verbose=0)
    res["predict_calls"] = _calls(ds)
    arrays_.append(pred)
    # steps_per_epoch counts global steps (groups of indices), continuing from epoch to epoch
    ds = _Batches(_SIZES)
    h = model.fit(ds, epochs=2, steps_per_epoch=3, shuffle=False, verbose=0)
    res["steps_calls"], res["steps_epochs"] = _calls(ds), len(h.history["loss"])
    # each rank's input is its own shard: every rank reads every index of its own dataset
    dp = axone.distribution.distribution()
    own = axone.distribution.DataParallel(auto_shard_dataset=False)
    axone.distribution.set_distribution(own)
    try:
        axone.utils.set_random_seed(0)
        ds = _Batches([10, 10, 10], start=30 * rank)
        model = _mlp()
        model.fit(ds, epochs=1, shuffle=False, verbose=0)
        res["own_calls"] = _calls(ds)
        arrays_ += model.get_weights()
    finally:
        axone.distribution.set_distribution(dp)
    m = _TapeStep()
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    try:
        m.fit(_Batches(_SIZES), epochs=1, verbose=0)
        res["custom_error"] = None
    except ValueError as e:
        res["custom_error"] = str(e)
    return res, arrays_


def pydataset_reference(out, groups):
    """The one-process run ``pydataset`` must equal: fit on the ranks' batches of each step
    concatenated (``groups[key][e][k]``: the indices of step k of epoch e), then evaluate and
    predict on the PyDataset itself."""
    res, arrays_ = {}, []
    for key in ("shuffled", "ordered"):
        axone.utils.set_random_seed(0)
        ds = _Grouped(_Batches(_SIZES), groups[key])
        model = _mlp()
        h = model.fit(ds, epochs=3, shuffle=False,
                      validation_data=_Batches(_VAL_SIZES, start=117), verbose=0)
        res[key] = {"history": h.history}
        arrays_ += model.get_weights()
    res["evaluate"] = model.evaluate(_Batches(_SIZES), verbose=0, return_dict=True)
    arrays_.append(model.predict(_Batches(_SIZES), verbose=0))
    return res, arrays_


class _Unused(layers.Layer):
    """A scale with a second weight that nothing reads (its gradient stays zero)."""

    def build(self, input_shape):
        self.s = self.add_weight(shape=(int(input_shape[-1]),), initializer="ones", name="s")
        self.u = self.add_weight(shape=(3,), initializer="ones", name="u")

    def call(self, x):
        return x * self.s


def overlap(out, rank):
    """The same training with the gradient all-reduce in one piece and bucketed during the
    backward pass (small buckets: one or two weights each): the weights must be equal bit for
    bit.  Arrays whose last batch has one row (rank 1 has none), BatchNormalization, Dropout,
    an L2 penalty and a weight no node reads; then a PyDataset of an odd number of batches."""
    x, y = _iris()
    x, y = x[:141], y[:141]
    dp = axone.distribution.distribution()
    res, arrays_ = {}, []
    for on in (False, True):
        mine = axone.distribution.DataParallel(overlap_allreduce=on, bucket_bytes=64)
        axone.distribution.set_distribution(mine)
        try:
            axone.utils.set_random_seed(0)
            model = axone.Sequential([
                layers.Input((4,)), _Unused(),
                layers.Dense(16, activation="relu", kernel_regularizer="l2"),
                layers.BatchNormalization(), layers.Dropout(0.2),
                layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
            model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
            h = model.fit(x, y, epochs=3, batch_size=20, verbose=0)
            h2 = model.fit(_Batches(_SIZES), epochs=2, verbose=0)
            res["on" if on else "off"] = {"history": h.history, "history2": h2.history,
                                          "last": mine.last_overlap}
            arrays_ += model.get_weights()
        finally:
            axone.distribution.set_distribution(dp)
    return res, arrays_


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
