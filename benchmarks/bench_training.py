"""Training-loop benchmarks: axone vs a plain PyTorch loop vs Keras 3, same workload, one run.

Workloads
  iris   the course's iris network 4 -> 256 -> 256 -> 256 -> 3 (ReLU, softmax), Adam,
         100 epochs, batch 30, 150 samples, verbose 0 (000/002 §4.5)
  mnist  one epoch of an MNIST-size MLP: 60,000 x 784 -> 256 (ReLU) -> 10 (softmax), batch 128,
         Adam (random data of MNIST's shape and scale; the arithmetic is the same)

Usage: python benchmarks/bench_training.py [--workload iris|mnist|all] [--rounds 5] [--no-keras]
                                           [--threads 0] [--no-memory]
``--threads 0`` (default) runs every library at its own defaults; ``--threads 1`` pins them all
to one thread; ``--threads 0,1`` reports the defaults first and the pinned run second.
Prints per-round times, then per framework the median and fastest round, the ratios axone/x of
both (who runs first alternates from round to round), and each framework's peak RSS measured in
a child process of its own.  Nothing here asserts.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def iris_data():
    from axone.datasets import load_iris
    from axone.utils import to_categorical
    x, y = load_iris()
    x = (x - x.mean(0)) / x.std(0)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order].astype(np.float32), to_categorical(y[order], 3)


def mnist_data():
    rng = np.random.default_rng(0)
    x = rng.random((60000, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 60000)]
    return x, y


WORKLOADS = {
    "iris": dict(data=iris_data, sizes=[4, 256, 256, 256, 3], epochs=100, batch=30),
    "mnist": dict(data=mnist_data, sizes=[784, 256, 10], epochs=1, batch=128),
}


def run_axone(w, x, y):
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    sizes = w["sizes"]
    model = axone.Sequential([layers.InputLayer(input_shape=(sizes[0],))] +
                             [layers.Dense(n, activation="relu") for n in sizes[1:-1]] +
                             [layers.Dense(sizes[-1], activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    t = time.perf_counter()
    h = model.fit(x, y, epochs=w["epochs"], batch_size=w["batch"], verbose=0)
    return time.perf_counter() - t, h.history["loss"][-1]


def run_torch(w, x, y):
    import torch
    torch.manual_seed(0)
    sizes = w["sizes"]
    mods = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    mods.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.argmax(1))
    n, bs = len(x), w["batch"]
    t = time.perf_counter()
    for _ in range(w["epochs"]):
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            loss = lossf(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
    return time.perf_counter() - t, total / n


def run_keras(w, x, y):
    import keras
    keras.utils.set_random_seed(0)
    sizes = w["sizes"]
    model = keras.Sequential([keras.Input((sizes[0],))] +
                             [keras.layers.Dense(n, activation="relu") for n in sizes[1:-1]] +
                             [keras.layers.Dense(sizes[-1], activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    t = time.perf_counter()
    h = model.fit(x, y, epochs=w["epochs"], batch_size=w["batch"], verbose=0)
    return time.perf_counter() - t, h.history["loss"][-1]


RUNNERS = {"axone": run_axone, "torch": run_torch, "keras": run_keras}


def child(framework, workload):
    """One training run in a child process (peak-RSS measurement)."""
    w = WORKLOADS[workload]
    x, y = w["data"]()
    t, loss = RUNNERS[framework](w, x, y)
    return {"seconds": t, "loss": float(loss)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="all", choices=["all"] + list(WORKLOADS))
    p.add_argument("--no-keras", action="store_true")
    _common.add_common_args(p)
    args = p.parse_args(argv)
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    frameworks = ["axone", "torch"] + ([] if args.no_keras else ["keras"])
    for threads in _common.thread_settings(args.threads):
        with _common.thread_scope(threads):
            _common.banner("training loops: axone vs torch" + ("" if args.no_keras else " vs keras"),
                           threads)
            for name in names:
                w = WORKLOADS[name]
                x, y = w["data"]()
                runners = {k: (lambda f=RUNNERS[k]: f(w, x, y)) for k in frameworks}
                mem = None if args.no_memory else _common.memory_runner(__file__, threads, workload=name)
                _common.compare(name, runners, args.rounds, memory=mem)


if __name__ == "__main__":
    main()
