"""Recurrent training benchmark: axone vs a plain PyTorch loop (vs Keras 3 with --keras).

Workloads (one epoch each, same data, same batch order policy: reshuffled every epoch)
  lstm   5,000 random sequences of 50 steps x 8 features -> LSTM(64) -> Dense(1), mse, Adam,
         batch 64 (79 steps of forward + backpropagation through time)
  gru    the same with GRU(64) (Keras's reset_after=True, which is PyTorch's nn.GRU)

Usage: python benchmarks/bench_rnn.py [--workload lstm|gru|all] [--rounds 5] [--keras]
                                      [--samples 5000] [--threads 0] [--no-memory]
       python benchmarks/bench_rnn.py --profile      # where axone's LSTM epoch spends its time
Prints per-round times, then per framework the median and fastest round, the ratios axone/x of
both and each framework's peak RSS (one child process each).  Nothing here asserts.  On a
shared machine the timings are noisy: look at the load average printed at the top.
``--threads 0`` (default) leaves every library at its own defaults; with several CPUs busy,
PyTorch's intra-op threads mostly wait for each other on these small per-step products, and
``--threads 1`` (or ``--threads 0,1``: defaults first, pinned second) shows the single-threaded
numbers of every library.
"""
import argparse
import cProfile
import io
import os
import pstats
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

T, F, UNITS, BATCH = 50, 8, 64, 64


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, F)).astype(np.float32)
    # a target that depends on the whole sequence (so the loss is meaningful)
    y = (x[:, :, 0].mean(axis=1, keepdims=True) + 0.1 * x[:, -1, 1:2]).astype(np.float32)
    return x, y


def run_axone(kind, x, y, epochs=1):
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    rnn = {"lstm": layers.LSTM, "gru": layers.GRU}[kind]
    model = axone.Sequential([layers.InputLayer(input_shape=(T, F)), rnn(UNITS), layers.Dense(1)])
    model.compile(loss="mse", optimizer="adam")
    t = time.perf_counter()
    h = model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0)
    return time.perf_counter() - t, h.history["loss"][-1]


def run_torch(kind, x, y, epochs=1):
    import torch
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](F, UNITS, batch_first=True)
            self.head = torch.nn.Linear(UNITS, 1)

        def forward(self, xb):
            seq, _ = self.rnn(xb)
            return self.head(seq[:, -1])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    lossf = torch.nn.MSELoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n = len(x)
    t = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = lossf(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
    return time.perf_counter() - t, total / n


def run_keras(kind, x, y, epochs=1):
    import keras
    keras.utils.set_random_seed(0)
    rnn = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind]
    model = keras.Sequential([keras.Input((T, F)), rnn(UNITS), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="adam")
    t = time.perf_counter()
    h = model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0)
    return time.perf_counter() - t, h.history["loss"][-1]


RUNNERS = {"axone": run_axone, "torch": run_torch, "keras": run_keras}


# ------------------------------------------------------------------ profile
def _best(f, reps):
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def profile_axone(kind, x, y, top=18):
    """cProfile of one axone epoch, then a decomposition of one batch's recurrent node
    (forward + backward) into matrix products, element-wise NumPy work and per-op overhead."""
    import axone
    from axone import Tensor
    from axone.ops.recurrent import rnn_sequence

    print(f"\n== cProfile: one axone {kind.upper()}({UNITS}) epoch, {len(x)} sequences ==")
    pr = cProfile.Profile()
    pr.enable()
    elapsed, _ = run_axone(kind, x, y)
    pr.disable()
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("tottime").print_stats(top)
    print(f"epoch {elapsed:.2f}s under the profiler")
    print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[:6000])
    stats = st.stats
    def cum(fname):
        return sum(v[3] for k, v in stats.items()
                   if k[0].endswith(os.path.join("ops", "recurrent.py")) and k[2] == fname)
    fwd, bwd = cum("forward"), cum("backward")
    total = sum(v[2] for v in stats.values())
    print(f"\nrecurrent node (ops/recurrent.py RNNSequence, cumulative): forward {fwd:.2f}s + "
          f"backward {bwd:.2f}s = {100 * (fwd + bwd) / max(total, 1e-9):.0f}% of the profiled "
          f"{total:.2f}s; the rest is the Dense head, the loss, Adam and fit's loop")

    # one batch of the recurrent node, decomposed
    G = {"lstm": 4, "gru": 3}[kind] * UNITS
    rng = np.random.default_rng(0)

    def node(nb):
        xb = Tensor(rng.normal(size=(nb, T, F)).astype(np.float32))
        W = Tensor(rng.normal(scale=0.1, size=(F, G)).astype(np.float32), requires_grad=True)
        U = Tensor(rng.normal(scale=0.1, size=(UNITS, G)).astype(np.float32), requires_grad=True)
        b = Tensor(np.zeros((2, G) if kind == "gru" else (G,), np.float32), requires_grad=True)
        h0 = Tensor(np.zeros((nb, UNITS), np.float32))
        c0 = Tensor(np.zeros((nb, UNITS), np.float32)) if kind == "lstm" else None

        def fb():
            _, h, _ = rnn_sequence(kind, xb, W, U, b, h0, c0)
            h.backward(np.ones(h.shape, np.float32))
        return fb

    h = rng.normal(size=(BATCH, UNITS)).astype(np.float32)
    Ua = rng.normal(size=(UNITS, G)).astype(np.float32)
    gz = rng.normal(size=(BATCH, G)).astype(np.float32)
    X2 = rng.normal(size=(BATCH * T, F)).astype(np.float32)
    Wa = rng.normal(size=(F, G)).astype(np.float32)
    G2 = rng.normal(size=(BATCH * T, G)).astype(np.float32)

    def gemms():
        # what the node multiplies: X·W once; per step h·U forward, hᵀ·gz (dL/dU) and gz·Uᵀ
        # (dL/dh) backward; then dL/dW = Xᵀ·G and dL/dX = G·Wᵀ once
        X2 @ Wa
        for _ in range(T):
            h @ Ua
        for _ in range(T):
            h.T @ gz
            gz @ Ua.T
        X2.T @ G2
        G2 @ Wa.T

    reps = 5
    full = _best(node(BATCH), reps)
    tiny = _best(node(1), reps)
    gemm = _best(gemms, reps)
    elem = max(full - tiny - gemm, 0.0)
    print(f"\n== one batch ({BATCH} x {T} x {F}) through the {kind.upper()} node, forward + "
          f"backward, best of {reps} ==")
    print(f"total                                   {1e3 * full:8.2f} ms")
    print(f"  matrix products (same shapes, alone)  {1e3 * gemm:8.2f} ms  ({100 * gemm / full:4.1f}%)")
    print(f"  per-op overhead (batch of 1)          {1e3 * tiny:8.2f} ms  ({100 * tiny / full:4.1f}%)  "
          f"Python + NumPy dispatch of ~{T} steps' ops")
    print(f"  element-wise work (the rest)          {1e3 * elem:8.2f} ms  ({100 * elem / full:4.1f}%)")
    print(f"  -> {1e6 * full / (2 * T):.0f} us per time step (forward or backward)")


def child(framework, workload, samples=5000):
    """One training epoch in a child process (peak-RSS measurement)."""
    x, y = make_data(samples)
    t, loss = RUNNERS[framework](workload, x, y)
    return {"seconds": t, "loss": float(loss)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="all", choices=["all", "lstm", "gru"])
    p.add_argument("--keras", action="store_true", help="also time Keras 3 (PyTorch backend)")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--profile", action="store_true", help="profile axone's epoch instead of timing rounds")
    _common.add_common_args(p)
    args = p.parse_args(argv)
    x, y = make_data(args.samples)
    names = ["lstm", "gru"] if args.workload == "all" else [args.workload]
    for threads in _common.thread_settings(args.threads):
        with _common.thread_scope(threads):
            _common.banner("recurrent training: axone vs torch" + (" vs keras" if args.keras else ""),
                           threads)
            if args.profile:
                for name in names:
                    profile_axone(name, x, y)
                continue
            frameworks = ["axone", "torch"] + (["keras"] if args.keras else [])
            for name in names:
                runners = {k: (lambda f=RUNNERS[k], name=name: f(name, x, y)) for k in frameworks}
                mem = None if args.no_memory else _common.memory_runner(
                    __file__, threads, workload=name, samples=args.samples)
                _common.compare(name, runners, args.rounds, memory=mem)


if __name__ == "__main__":
    main()
