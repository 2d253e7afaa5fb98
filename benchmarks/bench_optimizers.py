"""Optimizer step over a 1M-parameter model: axone's fused flat-buffer update vs PyTorch.

PyTorch runs its multi-tensor implementations (foreach=True; fused=True where the CPU build has
it) over the same parameter tensors (a 1M-parameter MLP's shapes: 1000x500, 500, 500x1000,
1000).  axone updates its one contiguous buffer (what Model.fit does each step).

Usage: python benchmarks/bench_optimizers.py [--rounds 7] [--steps 200]
Prints the median time per step and the ratio axone/torch for each optimizer.  No assertions.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SHAPES = [(1000, 500), (500,), (500, 1000), (1000,)]
OPTS = {
    # name: (axone class, kwargs, torch class, torch kwargs)
    "SGD": ("SGD", dict(learning_rate=0.01), "SGD", dict(lr=0.01)),
    "SGD momentum": ("SGD", dict(learning_rate=0.01, momentum=0.9), "SGD", dict(lr=0.01, momentum=0.9)),
    "Adam": ("Adam", dict(), "Adam", dict(lr=1e-3, eps=1e-7)),
    "AdamW": ("AdamW", dict(), "AdamW", dict(lr=1e-3, eps=1e-7, weight_decay=0.004)),
    "RMSprop": ("RMSprop", dict(), "RMSprop", dict(lr=1e-3, alpha=0.9, eps=1e-7)),
    "Adagrad": ("Adagrad", dict(), "Adagrad", dict(lr=1e-3, initial_accumulator_value=0.1, eps=1e-7)),
    "Adamax": ("Adamax", dict(), "Adamax", dict(lr=1e-3, eps=1e-7)),
    "Nadam": ("Nadam", dict(), "NAdam", dict(lr=1e-3, eps=1e-7)),
    "Adadelta": ("Adadelta", dict(), "Adadelta", dict(lr=1e-3, rho=0.95, eps=1e-7)),
}


def time_axone(name, kwargs, steps):
    import axone
    n = sum(int(np.prod(s)) for s in SHAPES)
    rng = np.random.default_rng(0)
    params = rng.standard_normal(n).astype(np.float32)
    grads = rng.standard_normal(n).astype(np.float32)
    opt = getattr(axone.optimizers, name)(**kwargs)
    opt.update_flat(params, grads)
    t = time.perf_counter()
    for _ in range(steps):
        opt.update_flat(params, grads)
    return (time.perf_counter() - t) / steps


def time_torch(name, kwargs, steps):
    import torch
    ps = [torch.nn.Parameter(torch.randn(s)) for s in SHAPES]
    for p in ps:
        p.grad = torch.randn(p.shape)
    cls = getattr(torch.optim, name)
    best = None
    for extra in (dict(fused=True), dict(foreach=True)):
        try:
            opt = cls(ps, **kwargs, **extra)
            opt.step()
        except (RuntimeError, TypeError, ValueError):
            continue
        t = time.perf_counter()
        for _ in range(steps):
            opt.step()
        dt = (time.perf_counter() - t) / steps
        best = dt if best is None else min(best, dt)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--only", default=None, help="comma-separated optimizer names")
    args = p.parse_args(argv)
    import torch
    n = sum(int(np.prod(s)) for s in SHAPES)
    print(f"{n:,} parameters; numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    names = args.only.split(",") if args.only else list(OPTS)
    for label in names:
        an, akw, tn, tkw = OPTS[label]
        ta, tt = [], []
        for _ in range(args.rounds):
            ta.append(time_axone(an, akw, args.steps))
            tt.append(time_torch(tn, tkw, args.steps))
        a, t = statistics.median(ta), statistics.median(tt)
        print(f"{label:14s} axone {a * 1e6:8.1f} us/step   torch {t * 1e6:8.1f} us/step   ratio {a / t:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
