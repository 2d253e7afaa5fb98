"""The cost of Keras 3's ways of writing training, against axone's built-in step, same workload.

Workloads
  iris   the course's iris network 4 -> 256 -> 256 -> 256 -> 3, Adam, 100 epochs, batch 30:
         built-in fit  vs  an overridden train_step with GradientTape  vs  one with
         loss.backward() and the variables' .grad (the PyTorch-style idiom)
  mnist  one epoch of the MNIST-size MLP 784 -> 256 -> 10, batch 128, Adam:
         arrays  vs  a Python generator of batches  vs  a PyDataset (1 and 2 workers)

Usage: python benchmarks/bench_step_api.py [--workload iris|mnist|all] [--rounds 5]
Prints per-round times, the medians and each variant's ratio to the first one, and the same
for each variant's fastest round.  Nothing here asserts.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import axone  # noqa: E402
from axone import layers  # noqa: E402


def _mlp(sizes):
    axone.utils.set_random_seed(0)
    return [layers.Dense(n, activation="relu") for n in sizes[1:-1]] + \
        [layers.Dense(sizes[-1], activation="softmax")]


class _Tape(axone.Model):
    def __init__(self, sizes):
        super().__init__()
        self.stack = _mlp(sizes)

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return x

    def train_step(self, data):
        x, y = data
        with axone.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self._loss_tracker.update_state(loss, sample_weight=x.shape[0])
        return self.compute_metrics(x, y, y_pred)


class _Backward(_Tape):
    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        tw = self.trainable_weights
        self.optimizer.apply_gradients(zip([v.grad for v in tw], tw))
        self._loss_tracker.update_state(loss, sample_weight=x.shape[0])
        return self.compute_metrics(x, y, y_pred)


class _Builtin(_Tape):
    train_step = axone.Model.train_step


def iris_variants():
    from axone.datasets import load_iris
    x, y = load_iris()
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    y = axone.utils.to_categorical(y, 3)
    sizes = [4, 256, 256, 256, 3]

    def run(cls):
        def f():
            m = cls(sizes)
            m.compile(optimizer="adam", loss="categorical_crossentropy")
            t = time.perf_counter()
            h = m.fit(x, y, epochs=100, batch_size=30, verbose=0)
            return time.perf_counter() - t, h.history["loss"][-1]
        return f
    out = {"built-in": run(_Builtin), "backward()": run(_Backward)}
    if hasattr(axone, "GradientTape"):
        out["GradientTape"] = run(_Tape)
    return out


class _Batches(axone.utils.PyDataset):
    def __init__(self, x, y, bs, **kw):
        super().__init__(**kw)
        self.x, self.y, self.bs = x, y, bs

    def __len__(self):
        return -(-len(self.x) // self.bs)

    def __getitem__(self, i):
        return self.x[i * self.bs:(i + 1) * self.bs], self.y[i * self.bs:(i + 1) * self.bs]


def mnist_variants():
    rng = np.random.default_rng(0)
    x = rng.random((60000, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 60000)]
    bs = 128

    def model():
        m = axone.Sequential([layers.Input((784,))] + _mlp([784, 256, 10]))
        m.compile(optimizer="adam", loss="categorical_crossentropy")
        return m

    def arrays():
        m = model()
        t = time.perf_counter()
        h = m.fit(x, y, batch_size=bs, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - t, h.history["loss"][-1]

    def generator():
        m = model()

        def gen():
            for i in range(0, len(x), bs):
                yield x[i:i + bs], y[i:i + bs]
        t = time.perf_counter()
        h = m.fit(gen(), epochs=1, verbose=0)
        return time.perf_counter() - t, h.history["loss"][-1]

    def pydataset(workers):
        def f():
            m = model()
            t = time.perf_counter()
            h = m.fit(_Batches(x, y, bs, workers=workers), epochs=1, shuffle=False, verbose=0)
            return time.perf_counter() - t, h.history["loss"][-1]
        return f
    return {"arrays": arrays, "generator": generator, "PyDataset": pydataset(1),
            "PyDataset 2 workers": pydataset(2)}


WORKLOADS = {"iris": iris_variants, "mnist": mnist_variants}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="all", choices=["all"] + list(WORKLOADS))
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    for name in names:
        variants = WORKLOADS[name]()
        times = {k: [] for k in variants}
        for r in range(args.rounds):
            order = list(variants.items())
            if r % 2:
                order.reverse()
            line = []
            for k, f in order:
                t, loss = f()
                times[k].append(t)
                line.append(f"{k} {t:.3f}s (loss {loss:.4f})")
            print(f"[{name}] round {r + 1}: " + "  ".join(line), flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        low = {k: min(v) for k, v in times.items()}
        first = next(iter(med))
        print(f"[{name}] median: " + "  ".join(f"{k} {v:.3f}s" for k, v in med.items()))
        print(f"[{name}] ratio to {first}: " + "  ".join(
            f"{k} {v / med[first]:.3f}" for k, v in med.items() if k != first))
        # on a shared machine the fastest round is the least disturbed one
        print(f"[{name}] fastest: " + "  ".join(f"{k} {v:.3f}s" for k, v in low.items()))
        print(f"[{name}] fastest ratio to {first}: " + "  ".join(
            f"{k} {v / low[first]:.3f}" for k, v in low.items() if k != first))


if __name__ == "__main__":
    main()
