"""Optimizer step over a 1M-parameter model: axone's fused flat-buffer update vs PyTorch.

PyTorch runs its multi-tensor implementations (foreach=True; fused=True where the CPU build has
it) over the same parameter tensors (a 1M-parameter MLP's shapes: 1000x500, 500, 500x1000,
1000).  axone updates its one contiguous buffer (what Model.fit does each step).

Usage: python benchmarks/bench_optimizers.py [--rounds 7] [--steps 200] [--only Adam,SGD] [--threads 0]
``--threads 0`` (default) leaves each library at its own defaults; ``--threads N`` pins torch
and axone to N threads; ``--threads 0,1`` reports the defaults first and the pinned run second.
Prints, per optimizer, the median and fastest round's time per step and the ratios axone/torch
of both (rounds interleaved, who runs first alternating).  No assertions.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

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
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--only", default=None, help="comma-separated optimizer names")
    _common.add_common_args(p, rounds=7, memory=False)
    args = p.parse_args(argv)
    n = sum(int(np.prod(s)) for s in SHAPES)
    names = args.only.split(",") if args.only else list(OPTS)
    unknown = [k for k in names if k not in OPTS]
    if unknown:
        p.error(f"--only: unknown optimizer(s) {unknown}; expected names among {list(OPTS)}")
    for threads in _common.thread_settings(args.threads):
        with _common.thread_scope(threads):
            _common.banner(f"optimizer steps over {n:,} parameters: axone vs torch", threads)
            rows = []
            for label in names:
                an, akw, tn, tkw = OPTS[label]
                times = _common.interleaved(
                    {"axone": lambda: time_axone(an, akw, args.steps),
                     "torch": lambda: time_torch(tn, tkw, args.steps)}, args.rounds)
                (ma, fa), (mt, ft) = _common.summary(times["axone"]), _common.summary(times["torch"])
                rows.append([label, ma * 1e6, mt * 1e6, ma / mt, fa * 1e6, ft * 1e6, fa / ft])
                print(f"{label:14s} axone {ma * 1e6:8.1f} us/step   torch {mt * 1e6:8.1f} us/step   "
                      f"ratio {ma / mt:.2f} (fastest rounds {fa / ft:.2f})", flush=True)
            _common.table(["optimizer", "axone us (median)", "torch us (median)", "ratio",
                           "axone us (fastest)", "torch us (fastest)", "ratio"], rows,
                          title=f"{args.rounds} rounds x {args.steps} steps (ratio axone/torch)")


if __name__ == "__main__":
    main()
