"""Training-loop benchmarks: axone vs a plain PyTorch loop vs Keras 3, same workload, one run.

Workloads
  iris   the course's iris network 4 -> 256 -> 256 -> 256 -> 3 (ReLU, softmax), Adam,
         100 epochs, batch 30, 150 samples, verbose 0 (000/002 §4.5)
  mnist  one epoch of an MNIST-size MLP: 60,000 x 784 -> 256 (ReLU) -> 10 (softmax), batch 128,
         Adam (random data of MNIST's shape and scale; the arithmetic is the same)

Usage: python benchmarks/bench_training.py [--workload iris|mnist|all] [--rounds 5] [--no-keras]
Prints per-round times and the median ratios axone/torch and axone/keras (who runs first
alternates from round to round).  Nothing here asserts.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("KERAS_BACKEND", "torch")


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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="all", choices=["all"] + list(WORKLOADS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-keras", action="store_true")
    args = p.parse_args(argv)
    import torch
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    for name in names:
        w = WORKLOADS[name]
        x, y = w["data"]()
        runners = {"axone": run_axone, "torch": run_torch}
        if not args.no_keras:
            runners["keras"] = run_keras
        times = {k: [] for k in runners}
        for r in range(args.rounds):
            line = []
            order = list(runners.items())
            if r % 2:
                order.reverse()                          # alternate who runs first
            for k, f in order:
                t, loss = f(w, x, y)
                times[k].append(t)
                line.append(f"{k} {t:7.3f}s (loss {loss:.4f})")
            print(f"[{name}] round {r + 1}: " + "  ".join(line), flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"[{name}] median: " + "  ".join(f"{k} {v:.3f}s" for k, v in med.items()))
        print(f"[{name}] ratio axone/torch = {med['axone'] / med['torch']:.3f}"
              + ("" if args.no_keras else f"   axone/keras = {med['axone'] / med['keras']:.3f}"))


if __name__ == "__main__":
    main()
