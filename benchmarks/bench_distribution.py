"""Data-parallel training on MPI: strong and weak scaling, the all-reduce's share of a step, and
the gradient all-reduce overlapped with the backward pass (bucketed) against one all-reduce.

Workloads (the same models as bench_training.py and bench_conv.py)
  mnist  one epoch of the MNIST-size MLP 784 -> 256 -> 10, Adam, global batch 128
  lenet  one epoch of the course's LeNet on 10,000 x 32x32x1, Adam, global batch 64

For N = 1, 2, ... processes (``mpiexec -n N``, one BLAS thread and one axone thread each):
  strong  the same data and global batch, split over N ranks: epoch time and speed-up
  weak    N times the data and N times the global batch (each rank keeps the one-process load)
and, per step, the time spent waiting in the gradient all-reduce against the whole step.
With --overlap (N > 1, strong scaling) each bucket size of --buckets is one mpiexec job whose
steps alternate between one all-reduce (``off``) and ``overlap_allreduce=True`` with that
``bucket_bytes`` (``on``), so that a drift of the machine's speed (other work on its cores)
touches both modes alike: per step, the time from its backward pass to the next step's, the
backward pass plus the all-reduce, and the wait left after the backward pass.

Usage: python benchmarks/bench_distribution.py [--workload mnist|lenet|all] [--procs 1,2]
       [--rounds 3] [--overlap] [--buckets 4096,65536,1048576] [--epochs 3]
Needs mpi4py and mpiexec (pip install 'axone[mpi]').  Nothing here asserts.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))


def _data(workload, n_scale, samples=None):
    rng = np.random.default_rng(0)
    n = (samples or (60000 if workload == "mnist" else 10000)) * n_scale
    if workload == "mnist":
        x = rng.random((n, 784), dtype=np.float32)
    else:
        x = rng.random((n, 32, 32, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    return x, y


def _model(workload):
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    if workload == "mnist":
        body = [layers.InputLayer(input_shape=(784,)), layers.Dense(256, activation="relu")]
    else:
        body = [layers.InputLayer(input_shape=(32, 32, 1)), layers.Conv2D(6, 5, activation="relu"),
                layers.MaxPooling2D(2), layers.Conv2D(16, 5, activation="relu"),
                layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(120, activation="relu"),
                layers.Dense(84, activation="relu")]
    model = axone.Sequential(body + [layers.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def child(workload, mode, rounds, samples=None, bucket=0):
    """One mpiexec job: ``rounds`` epochs timed on every rank; rank 0 prints a JSON line.
    ``mode`` "alternate": strong scaling with the all-reduce in one piece on even steps and
    bucketed (``bucket`` bytes) and overlapped with the backward pass on odd steps, each
    step's time (from its backward pass to the next step's) kept by mode."""
    import axone
    dp = axone.distribution.DataParallel(bucket_bytes=bucket or 1 << 20)
    axone.distribution.set_distribution(dp)
    n = dp.size
    alternate = mode == "alternate"
    scale = n if mode == "weak" else 1
    batch = (128 if workload == "mnist" else 64) * scale
    x, y = _data(workload, scale, samples)
    model = _model(workload)
    spent, back, marks = [], [], []
    orig, orig_back = dp.reduce_gradients, dp.backward

    def timed_backward(root, buffer, rows):
        if alternate:     # the same on every rank: they run the same steps
            dp.overlap_allreduce = len(marks) % 2 == 1
        t = time.perf_counter()
        marks.append((t, dp.overlap_allreduce))
        orig_back(root, buffer, rows)
        back.append((time.perf_counter() - t, dp.overlap_allreduce))

    def timed_reduce(grads, rows, buffer=None):
        t = time.perf_counter()
        orig(grads, rows, buffer)
        spent.append((time.perf_counter() - t, dp.overlap_allreduce))
    dp.reduce_gradients, dp.backward = timed_reduce, timed_backward
    model.fit(x[:batch * 4], y[:batch * 4], batch_size=batch, epochs=1, verbose=0)   # warm-up
    epochs, reduce_ms, steps = [], [], int(np.ceil(len(x) / batch))
    per_mode = {False: {"step": [], "backward": [], "wait": []},
                True: {"step": [], "backward": [], "wait": []}}
    for _ in range(rounds):
        spent.clear()
        back.clear()
        marks.clear()
        t = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
        epochs.append(time.perf_counter() - t)
        reduce_ms.append(1e3 * sum(s for s, _ in spent) / max(1, len(spent)))
        for (t0, on), (t1, _) in zip(marks, marks[1:]):
            per_mode[on]["step"].append(1e3 * (t1 - t0))
        for (b, on), (w, _) in zip(back, spent):
            per_mode[on]["backward"].append(1e3 * (b + w))
            per_mode[on]["wait"].append(1e3 * w)
    if dp.rank == 0:
        plan = dp._plan
        out = {"epoch_s": statistics.median(epochs), "epochs": epochs,
               "reduce_ms": statistics.median(reduce_ms), "steps": steps,
               "step_ms": 1e3 * statistics.median(epochs) / steps,
               "buckets": len(plan.ranges) if plan is not None else 1,
               "params": int(sum(w.data.size for w in model.trainable_weights))}
        if alternate:
            out["modes"] = {("on" if on else "off"): {k: statistics.median(v) for k, v in d.items()}
                            for on, d in per_mode.items()}
            out["means"] = {("on" if on else "off"): {k: statistics.fmean(v) for k, v in d.items()}
                            for on, d in per_mode.items()}
        print(json.dumps(out))


def child_allreduce(workload, rounds, bucket):
    """One mpiexec job: the workload's gradient buffer all-reduced with nothing else running,
    in one piece and in buckets of ``bucket`` bytes (started together, then waited for):
    what cutting it costs by itself.  Rank 0 prints a JSON line (median ms over ``rounds``
    x 200 reductions)."""
    import axone
    dp = axone.distribution.DataParallel(bucket_bytes=bucket)
    model = _model(workload)
    sizes = [w.data.size for w in model.trainable_weights]
    grads = np.ones(sum(sizes), dtype=np.float32)
    bounds = np.cumsum([0] + sizes)
    segments = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    from axone.distribution import _BucketPlan
    plan = _BucketPlan(list(model.trainable_weights), grads, segments, bucket)
    MPI = axone.distribution._mpi()
    times = {"one": [], "buckets": []}
    for _ in range(rounds):
        for mode in ("one", "buckets"):
            for _ in range(200):
                dp.comm.Barrier()
                t = time.perf_counter()
                if mode == "one":
                    dp.allreduce(grads)
                else:
                    reqs = [dp.comm.Iallreduce(MPI.IN_PLACE, grads[lo:hi], op=MPI.SUM)
                            for lo, hi in plan.ranges]
                    dp._wait_all(reqs, "bench")
                times[mode].append(1e3 * (time.perf_counter() - t))
                grads.fill(1)
    if dp.rank == 0:
        print(json.dumps({"buckets": len(plan.ranges), "bytes": grads.nbytes,
                          "one": statistics.median(times["one"]),
                          "buckets_t": statistics.median(times["buckets"])}))


def run(workload, mode, n, rounds, mpiexec, samples=None, bucket=0):
    env = dict(os.environ, AXONE_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    p = subprocess.run([mpiexec, "-n", str(n), sys.executable, os.path.abspath(__file__),
                        "--child", workload, mode, str(rounds), str(samples or 0), str(bucket)],
                       env=env, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"mpiexec -n {n} failed:\n{p.stdout}\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def scaling(a, mpiexec, procs, workloads):
    print(f"# data-parallel scaling on {os.cpu_count()} CPUs, one BLAS thread per process, "
          f"median of {a.rounds} epochs")
    print(f"{'workload':8} {'mode':6} {'N':>2} {'epoch s':>8} {'speed-up':>8} {'efficiency':>10} "
          f"{'step ms':>8} {'all-reduce ms':>13} {'share':>6}")
    for w in workloads:
        for mode in ("strong", "weak"):
            base = None
            for n in procs:
                r = run(w, mode, n, a.rounds, mpiexec, a.samples)
                base = base or r["epoch_s"]
                speed = base / r["epoch_s"] * (n if mode == "weak" else 1)
                print(f"{w:8} {mode:6} {n:>2} {r['epoch_s']:>8.3f} {speed:>8.2f} {speed / n:>10.2f} "
                      f"{r['step_ms']:>8.2f} {r['reduce_ms']:>13.3f} "
                      f"{r['reduce_ms'] / r['step_ms']:>6.1%}", flush=True)


def overlap(a, mpiexec, procs, workloads):
    buckets = [int(b) for b in a.buckets.split(",")]
    n = max(procs)
    for w in workloads:
        for b in buckets:
            r = run(w, "allreduce", n, a.rounds, mpiexec, a.samples, b)
            print(f"# {w}: its {r['bytes'] / 1024:.0f} KiB of gradients all-reduced alone: one "
                  f"piece {r['one']:.3f} ms, {r['buckets']} bucket(s) of {b // 1024} KiB "
                  f"{r['buckets_t']:.3f} ms", flush=True)
    print(f"# the gradient all-reduce bucketed and overlapped with the backward pass against one "
          f"all-reduce, N={n} (strong), {os.cpu_count()} CPUs; one mpiexec job of {a.epochs} "
          f"epochs a bucket size, the two modes alternating step by step; per step, median "
          f"(mean) ms")
    print(f"{'workload':8} {'bucket':>8} {'buckets':>7} {'step off':>15} {'step on':>15} "
          f"{'on/off':>7} {'bwd+reduce off':>15} {'bwd+reduce on':>15} {'wait off':>8} "
          f"{'wait on':>8}")
    for w in workloads:
        for b in buckets:
            r = run(w, "alternate", n, a.epochs, mpiexec, a.samples, b)
            md, mn = r["modes"], r["means"]

            def cell(k, m):
                return f"{md[m][k]:.2f} ({mn[m][k]:.2f})"
            print(f"{w:8} {b // 1024:>5} KiB {r['buckets']:>7} {cell('step', 'off'):>15} "
                  f"{cell('step', 'on'):>15} {md['on']['step'] / md['off']['step']:>7.3f} "
                  f"{cell('backward', 'off'):>15} {cell('backward', 'on'):>15} "
                  f"{md['off']['wait']:>8.3f} {md['on']['wait']:>8.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="all", choices=["mnist", "lenet", "all"])
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=None,
                    help="rows of data per process-unit (default: MNIST's 60,000 / LeNet's 10,000)")
    ap.add_argument("--overlap", action="store_true",
                    help="compare the overlapped, bucketed all-reduce with one all-reduce")
    ap.add_argument("--buckets", default="4096,65536,1048576",
                    help="bucket sizes in bytes for --overlap")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the job of each bucket size (--overlap)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child and a.child[1] == "allreduce":
        return child_allreduce(a.child[0], int(a.child[2]), int(a.child[4]))
    if a.child:
        return child(a.child[0], a.child[1], int(a.child[2]), int(a.child[3]) or None,
                     int(a.child[4]))
    mpiexec = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
    if mpiexec is None:
        raise SystemExit("mpiexec not found: pip install 'axone[mpi]'")
    procs = [int(p) for p in a.procs.split(",")]
    workloads = ["mnist", "lenet"] if a.workload == "all" else [a.workload]
    if a.overlap:
        overlap(a, mpiexec, procs, workloads)
    else:
        scaling(a, mpiexec, procs, workloads)


if __name__ == "__main__":
    main()
