"""Small-op overhead: axone vs PyTorch on the same graph of a few hundred tiny ops.

One forward and backward pass through a chain of ~300 elementwise and matmul
ops on 32×32 float32 tensors (+, −, ·, /, tanh, sigmoid, relu, exp, matmul
with weights that require a gradient, a final sum).  At this size NumPy and
PyTorch kernels take a microsecond or two, so the time measured is mostly the
per-op cost of each framework: building the graph node, creating the output
tensor, and the backward engine.

The graph is written once, in :func:`chain`, against a small namespace of ops;
axone and PyTorch each supply theirs, so both run exactly the same sequence.

    python benchmarks/bench_ops.py            # 7 rounds of 50 passes
    python benchmarks/bench_ops.py --quick    # a few seconds
    python benchmarks/bench_ops.py --threads 1         # pin every library to one thread
    python benchmarks/bench_ops.py --threads 0,1       # defaults first, then pinned

``--threads 0`` (default) leaves each library at its own defaults.  Prints each
round's time per pass in both frameworks, their ratio, and the median and
fastest-round ratios axone/torch (below 1: axone is faster).  It asserts
nothing about timings.
"""
import argparse
import gc
import os
import statistics
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

N = 32          # tensors are N×N
N_WEIGHTS = 8   # weight matrices, used in turn by the blocks
N_BLOCKS = 21   # 14 ops per block: 294 ops, plus the final sum


def chain(ns, x, weights, blocks=N_BLOCKS):
    """The workload: ``blocks`` blocks of 14 ops each, then a sum.

    ``ns`` supplies ``tanh``, ``sigmoid``, ``relu``, ``exp`` and ``sum``;
    +, −, ·, / and @ are the tensors' own operators.  Values stay in a small
    range: |h| stays about 0.6 on average, exp sees arguments in [0, 0.5).
    """
    h = x
    for i in range(blocks):
        w = weights[i % len(weights)]
        a = (h @ w) * 0.5                      # matmul, scalar mul
        b = ns.tanh(a)                         # tanh
        c = ns.sigmoid(h * 2.0)                # scalar mul, sigmoid
        h2 = b * c + h                         # mul, add
        d = ns.relu(h2 - 0.5)                  # scalar sub, relu
        e = ns.exp(ns.tanh(d) * 0.5)           # tanh, scalar mul, exp
        h = (h2 - d) / e                       # sub, div
    return ns.sum(h)


def count_ops(blocks=N_BLOCKS):
    return 14 * blocks + 1


# --------------------------------------------------------------- frameworks
def make_axone(x0, w0):
    from axone import Tensor, ops
    ns = types.SimpleNamespace(tanh=ops.tanh, sigmoid=ops.sigmoid, relu=ops.relu,
                               exp=ops.exp, sum=ops.sum)
    x = Tensor(x0.copy())
    ws = [Tensor(w.copy(), requires_grad=True) for w in w0]

    def step():
        for w in ws:
            w.grad = None
        loss = chain(ns, x, ws)
        loss.backward()
        return loss

    def result():
        loss = step()
        return float(loss.item()), [np.asarray(w.grad) for w in ws]

    return step, result


def make_torch(x0, w0):
    import torch
    ns = types.SimpleNamespace(tanh=torch.tanh, sigmoid=torch.sigmoid, relu=torch.relu,
                               exp=torch.exp, sum=torch.sum)
    x = torch.tensor(x0)
    ws = [torch.tensor(w, requires_grad=True) for w in w0]

    def step():
        for w in ws:
            w.grad = None
        loss = chain(ns, x, ws)
        loss.backward()
        return loss

    def result():
        loss = step()
        return float(loss.item()), [w.grad.numpy().copy() for w in ws]

    return step, result


# ------------------------------------------------------------------- timing
def time_per_pass(step, reps):
    """Seconds per call of ``step``, averaged over ``reps`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t0) / reps


def print_environment(threads):
    print(_common.describe(threads))
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
           if k in os.environ}
    print(f"threading env: {env or 'none set'}")


def run(args, threads):
    rounds = args.rounds or (3 if args.quick else 7)
    reps = args.reps or (10 if args.quick else 50)
    warmup = args.warmup if args.warmup is not None else (3 if args.quick else 10)
    print(f"\n=== per-op overhead: axone vs torch ===")
    print_environment(threads)
    print(f"workload: {count_ops()} ops on {N}x{N} float32 ({N_WEIGHTS} weight matrices requiring grad), "
          f"forward + backward; {rounds} rounds x {reps} passes, {warmup} warm-up passes")

    rng = np.random.default_rng(args.seed)
    x0 = rng.standard_normal((N, N)).astype(np.float32)
    w0 = [(rng.standard_normal((N, N)) / np.sqrt(N)).astype(np.float32) for _ in range(N_WEIGHTS)]

    ax_step, ax_result = make_axone(x0, w0)
    th_step, th_result = make_torch(x0, w0)

    # Same graph, same numbers: a check that the two runs do the same work.
    la, ga = ax_result()
    lt, gt = th_result()
    gdiff = max(float(np.max(np.abs(a - t))) for a, t in zip(ga, gt))
    print(f"loss: axone {la:.6f}, torch {lt:.6f}; max |grad difference| {gdiff:.2e}")

    for _ in range(warmup):
        ax_step()
        th_step()

    def on_round(r, ts, _):
        print(f"{r + 1:>5} {ts['axone'] * 1e3:>14.3f} {ts['torch'] * 1e3:>14.3f} "
              f"{ts['axone'] / ts['torch']:>12.3f}", flush=True)

    def timer(step):
        def f():
            gc.collect()
            return time_per_pass(step, reps)
        return f

    print(f"\n{'round':>5} {'axone ms/pass':>14} {'torch ms/pass':>14} {'axone/torch':>12}")
    times = _common.interleaved({"axone": timer(ax_step), "torch": timer(th_step)}, rounds, on_round)
    ratios = [a / t for a, t in zip(times["axone"], times["torch"])]
    n = count_ops()
    (med_a, fast_a), (med_t, fast_t) = _common.summary(times["axone"]), _common.summary(times["torch"])
    print(f"\nmedian ms/pass: axone {med_a * 1e3:.3f} ({med_a / n * 1e6:.2f} us/op), "
          f"torch {med_t * 1e3:.3f} ({med_t / n * 1e6:.2f} us/op)")
    print(f"fastest ms/pass: axone {fast_a * 1e3:.3f} ({fast_a / n * 1e6:.2f} us/op), "
          f"torch {fast_t * 1e3:.3f} ({fast_t / n * 1e6:.2f} us/op)")
    print(f"median ratio axone/torch: {statistics.median(ratios):.3f}  fastest rounds' ratio: "
          f"{fast_a / fast_t:.3f}  (rounds: {', '.join(f'{x:.3f}' for x in ratios)})")
    load = _common.load_average()
    if load is not None and os.cpu_count() and load[0] > 0.5 * os.cpu_count():
        print(f"note: 1-min load average {load[0]:.2f} on {os.cpu_count()} CPUs; other processes were "
              "running, and torch's worker threads slow down most when CPUs are shared")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short run: 3 rounds of 10 passes")
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 7; 3 with --quick)")
    p.add_argument("--reps", type=int, default=None, help="passes per round and framework (default 50; 10 with --quick)")
    p.add_argument("--warmup", type=int, default=None, help="untimed passes before timing (default 10; 3 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    _common.add_thread_args(p)
    args = p.parse_args(argv)
    for threads in _common.thread_settings(args.threads):
        with _common.thread_scope(threads):
            run(args, threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
