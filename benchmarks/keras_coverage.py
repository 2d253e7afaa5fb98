"""How much of Keras 3's public namespace axone resolves, module by module.

For each Keras module below, the public names of the real ``keras`` package (``dir()`` minus
names starting with ``_`` and the submodules Keras lists beside its functions) are compared with
what ``import keras`` gives once ``axone.compat.install_keras_alias()`` is in force: a name is
covered when the aliased module has it (``hasattr``).  The two sides run in separate
subprocesses, so neither import sees the other.

    KERAS_BACKEND=torch python benchmarks/keras_coverage.py            # the table
    KERAS_BACKEND=torch python benchmarks/keras_coverage.py --missing  # + the names not covered
    python benchmarks/keras_coverage.py --json out.json                # machine-readable
"""
import argparse
import json
import os
import subprocess
import sys

MODULES = [
    "keras.ops", "keras.ops.numpy", "keras.ops.nn", "keras.ops.linalg", "keras.ops.image",
    "keras.ops.core", "keras.layers", "keras.utils", "keras.random", "keras.losses",
    "keras.metrics", "keras.callbacks", "keras.optimizers", "keras.constraints",
    "keras.initializers", "keras.regularizers", "keras.activations", "keras.models",
    "keras.saving", "keras.wrappers", "keras.distribution", "keras.config", "keras.backend",
]

# Run inside a subprocess: print {module: [public names]} of the real Keras 3.
_KERAS_NAMES = r"""
import importlib, json, sys, types
out = {}
for mod in sys.argv[1:]:
    try:
        m = importlib.import_module(mod)
    except Exception as e:
        out[mod] = {"error": f"{type(e).__name__}: {e}"}
        continue
    names = [n for n in dir(m) if not n.startswith("_")
             and not isinstance(getattr(m, n, None), types.ModuleType)]
    out[mod] = sorted(names)
print(json.dumps(out))
"""

# Run inside a subprocess: for each module and name, whether the alias resolves it.
_AXONE_HAS = r"""
import importlib, json, sys
import axone.compat
axone.compat.install_keras_alias()
wanted = json.loads(sys.stdin.read())
out = {}
for mod, names in wanted.items():
    try:
        m = importlib.import_module(mod)
    except Exception as e:
        out[mod] = {"error": f"{type(e).__name__}: {e}"}
        continue
    has = []
    for n in names:
        try:
            ok = hasattr(m, n)
        except Exception:
            ok = False
        has.append(bool(ok))
    out[mod] = has
print(json.dumps(out))
"""


def _run(code, args=(), stdin=None):
    env = dict(os.environ)
    env.setdefault("KERAS_BACKEND", "torch")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    proc = subprocess.run([sys.executable, "-c", code, *args], input=stdin, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"keras_coverage: the subprocess failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def coverage(modules=MODULES):
    """{module: (covered names, missing names)}; a module axone cannot import covers nothing."""
    keras_names = _run(_KERAS_NAMES, modules)
    wanted = {m: v for m, v in keras_names.items() if isinstance(v, list)}
    has = _run(_AXONE_HAS, stdin=json.dumps(wanted))
    result = {}
    for mod in modules:
        names = wanted.get(mod)
        if names is None:
            result[mod] = None   # not in this Keras
            continue
        flags = has.get(mod)
        if not isinstance(flags, list):
            flags = [False] * len(names)
        result[mod] = ([n for n, f in zip(names, flags) if f],
                       [n for n, f in zip(names, flags) if not f])
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--missing", action="store_true", help="list the names not covered")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    p.add_argument("modules", nargs="*", help="Keras modules (default: all of them)")
    args = p.parse_args(argv)
    result = coverage(args.modules or MODULES)
    width = max(len(m) for m in result) + 2
    print(f"{'module':<{width}}{'covered':>14}{'%':>8}")
    tot_c = tot_n = 0
    for mod, r in result.items():
        if r is None:
            print(f"{mod:<{width}}{'(not in this Keras)':>22}")
            continue
        c, n = len(r[0]), len(r[0]) + len(r[1])
        tot_c += c
        tot_n += n
        print(f"{mod:<{width}}{f'{c}/{n}':>14}{100 * c / max(n, 1):>7.0f}%")
    print(f"{'total':<{width}}{f'{tot_c}/{tot_n}':>14}{100 * tot_c / max(tot_n, 1):>7.0f}%")
    if args.missing:
        for mod, r in result.items():
            if r and r[1]:
                print(f"\n{mod} missing ({len(r[1])}): " + ", ".join(r[1]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({m: (None if r is None else {"covered": r[0], "missing": r[1]})
                       for m, r in result.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
