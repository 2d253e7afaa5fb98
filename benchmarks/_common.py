"""What every benchmark here shares: thread settings, interleaved rounds, medians and fastest
rounds, peak memory of a child process, and table printing.

Threads.  ``--threads 0`` (the default everywhere) leaves every library at its own defaults:
PyTorch keeps ``torch.get_num_threads()``, NumPy's BLAS keeps its setting and axone keeps its own
policy (``Model.fit`` runs small steps on one BLAS thread, ``axone.backend.get_num_threads()``
for its own compiled work).  ``--threads N`` pins all of them to N: torch's intra-op threads,
NumPy's OpenBLAS (``axone.backend.blas_threads``) and axone's own threads.  A comma-separated
list (``--threads 0,1``) runs the whole benchmark once per setting, in the order given, so the
defaults come first and the pinned comparison second.

Memory.  ``peak_rss(script, func, **kwargs)`` runs ``func(**kwargs)`` of a benchmark script in a
fresh Python process and returns that process's peak resident set size (its VmHWM), so each
framework's figure holds its own imports, data and training and nothing of the other's.

Timing.  ``interleaved(runners, rounds)`` calls each runner once a round, alternating which one
goes first, and keeps every round; ``summary`` gives the median and the fastest round.  On a shared
machine the fastest round is the least disturbed one; the median says how it usually goes.
"""
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("KERAS_BACKEND", "torch")


# ------------------------------------------------------------------ threads
def add_thread_args(parser, default="0"):
    parser.add_argument(
        "--threads", default=default,
        help="0: each library at its own defaults (default); N: pin torch, NumPy's BLAS and "
             "axone to N threads; a list such as 0,1 runs once per setting, in that order")


def thread_settings(value):
    """``"0,1"`` -> ``[0, 1]``; bad values raise ValueError naming --threads."""
    out = []
    for part in str(value).split(","):
        part = part.strip()
        if not part.isdigit():
            raise ValueError(f"--threads: expected non-negative integers separated by commas, "
                             f"received {value!r}")
        out.append(int(part))
    return out


@contextlib.contextmanager
def thread_scope(n, with_torch=True):
    """``n == 0``: change nothing.  ``n > 0``: torch, NumPy's OpenBLAS and axone on ``n``
    threads for the scope; the previous settings come back afterwards.  ``with_torch=False``
    leaves torch out unless it is imported already (a child measuring axone's memory alone)."""
    if not n:
        yield
        return
    from axone import backend
    torch = sys.modules.get("torch")
    if torch is None and with_torch:
        try:
            import torch
        except ImportError:
            torch = None
    old_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    old_axone = backend.set_num_threads(n)
    try:
        with backend.blas_threads(n):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old_torch)
        backend.set_num_threads(old_axone)


def load_average():
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def describe(threads):
    """One paragraph on the machine, the load and the thread counts in force."""
    from axone import backend
    lines = []
    la = load_average()
    load = "unknown" if la is None else " ".join(f"{v:.2f}" for v in la)
    lines.append(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
                 f"load average (1/5/15 min) {load}")
    try:
        import torch
        tv = f"torch {torch.__version__}: {torch.get_num_threads()} intra-op threads"
    except ImportError:
        tv = "torch not installed"
    blas = backend.get_blas_threads()
    lines.append(f"{tv}; NumPy OpenBLAS: {'not controllable' if blas is None else blas} threads; "
                 f"axone: {backend.get_num_threads()} threads"
                 + (", small fit steps on 1 BLAS thread" if backend.SMALL_STEP_WORK else ""))
    lines.append("threads: " + ("library defaults (--threads 0)" if not threads
                                else f"every library pinned to {threads} (--threads {threads})"))
    return "\n".join(lines)


def banner(title, threads):
    print(f"\n=== {title} ===")
    print(describe(threads), flush=True)


# ------------------------------------------------------------------- timing
def interleaved(runners, rounds, on_round=None):
    """``runners``: name -> callable returning seconds (or a tuple whose first item is seconds).
    Returns name -> list of seconds, one per round; the order alternates round by round."""
    names = list(runners)
    times = {k: [] for k in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        extras = {}
        for k in order:
            out = runners[k]()
            t, extra = (out[0], out[1:]) if isinstance(out, tuple) else (out, ())
            times[k].append(float(t))
            extras[k] = extra
        if on_round is not None:
            on_round(r, {k: times[k][-1] for k in names}, extras)
    return times


def summary(seconds):
    """(median, fastest) of a list of seconds."""
    return statistics.median(seconds), min(seconds)


def timed(f, *args, **kwargs):
    t = time.perf_counter()
    out = f(*args, **kwargs)
    return time.perf_counter() - t, out


def per_call(f, calls, warmup=3):
    """Seconds of each of ``calls`` calls of ``f`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(calls):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return ts


def ratio(a, b):
    return a / b if b else float("nan")


# ------------------------------------------------------------------- memory
def _load_script(path):
    name = "_bench_child_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def peak_rss(script, func, threads=0, timeout=1800, **kwargs):
    """Peak RSS in MiB of a fresh process running ``func(**kwargs)`` from ``script`` under
    ``thread_scope(threads)``, and what the function returned (through JSON).  The figure is the
    child's own VmHWM (``/proc/self/status``, read by the child as it finishes): Linux carries
    the high-water mark of the forking parent into the child's ``ru_maxrss`` across exec, so
    ``wait4``'s figure is used only where /proc is missing.  Returns (None, error text) when the
    child fails."""
    import tempfile
    import threading
    payload = json.dumps(dict(script=os.path.abspath(script), func=func, threads=threads, kwargs=kwargs))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", payload],
                                stdout=out, stderr=err, cwd=ROOT)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                rss = usage.ru_maxrss / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)
            else:  # pragma: no cover
                proc.wait()
                rss = None
        finally:
            timer.cancel()
        out.seek(0)
        err.seek(0)
        text, errs = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        return None, errs[-2000:]
    result = None
    for line in text.splitlines():
        if line.startswith("__child__ "):
            result = json.loads(line[len("__child__ "):])
        elif line.startswith("__rss__ "):
            rss = float(line.split()[1])
    return rss, result


def _vm_hwm_mib():
    """This process's peak RSS (VmHWM of /proc/self/status, else ru_maxrss) in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _child_main(payload):
    spec = json.loads(payload)
    mod = _load_script(spec["script"])
    with thread_scope(spec["threads"], with_torch=spec["kwargs"].get("framework") != "axone"):
        result = getattr(mod, spec["func"])(**spec["kwargs"])
    sys.stdout.write("__child__ " + json.dumps(result) + "\n")
    hwm = _vm_hwm_mib()
    if hwm is not None:
        sys.stdout.write(f"__rss__ {hwm:.1f}\n")
    sys.stdout.flush()


def fmt_mib(x):
    return "n/a" if x is None else f"{x:.0f}"


# -------------------------------------------------------- the comparison
def add_common_args(parser, rounds=5, memory=True):
    """--rounds, --threads and (for training benchmarks) --no-memory."""
    parser.add_argument("--rounds", type=int, default=rounds, help=f"timed rounds (default {rounds})")
    add_thread_args(parser)
    if memory:
        parser.add_argument("--no-memory", action="store_true",
                            help="skip the peak-RSS runs (one child process per framework)")


def compare(name, runners, rounds, memory=None, unit="s", scale=1.0, first="axone"):
    """Time ``runners`` (name -> callable returning seconds or (seconds, loss)) in interleaved
    rounds, print each round, then one table: median and fastest time per framework, the
    ratios ``first`` / framework of both, and each framework's peak RSS when ``memory``
    (framework -> MiB or None) is given.  Returns {framework: (median, fastest)}."""
    def on_round(r, ts, extras):
        parts = []
        for k, t in ts.items():
            loss = extras.get(k) or ()
            parts.append(f"{k} {t * scale:.3f}{unit}" + (f" (loss {loss[0]:.4f})" if loss else ""))
        print(f"[{name}] round {r + 1}: " + "  ".join(parts), flush=True)

    times = interleaved(runners, rounds, on_round)
    stats = {k: summary(v) for k, v in times.items()}
    mem = memory(list(runners)) if memory is not None else None
    headers = ["framework", f"median {unit}", f"fastest {unit}", f"{first}/x median", f"{first}/x fastest"]
    if mem is not None:
        headers += ["peak RSS MiB", f"{first}/x RSS"]
    rows = []
    for k, (med, fast) in stats.items():
        row = [k, med * scale, fast * scale]
        if k == first:
            row += ["", ""]
        else:
            row += [ratio(stats[first][0], med), ratio(stats[first][1], fast)]
        if mem is not None:
            row.append(fmt_mib(mem.get(k)))
            row.append("" if k == first or mem.get(k) is None or mem.get(first) is None
                       else _num(mem[first] / mem[k]))
        rows.append(row)
    table(headers, rows, title=f"[{name}] {rounds} rounds (ratios below 1: {first} is faster / smaller)")
    return stats


def memory_runner(script, threads, **common):
    """A ``memory`` callable for ``compare``: each framework's training in its own child
    (``script``'s ``child(framework=..., **common)``); failures print and give None."""
    def measure(frameworks):
        out = {}
        for k in frameworks:
            rss, res = peak_rss(script, "child", threads=threads, framework=k, **common)
            if rss is None:
                print(f"  peak RSS of {k}: child failed: {str(res).strip().splitlines()[-1:]}")
            out[k] = rss
        return out
    return measure


# ------------------------------------------------------------------- tables
def table(headers, rows, title=None):
    """Print rows (lists of already formatted strings or numbers) under headers, columns aligned."""
    cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else _num(c) for c in row]
                                          for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}")
    for j, r in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def _num(x):
    if x is None:
        return "n/a"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if x != x:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child_main(sys.argv[2])
    else:
        sys.exit("usage: python benchmarks/_common.py --child JSON (used by the benchmarks)")
