"""Bad calls of every function of the compiled module, generated from one table.

Run as a script, ``python kernel_cases.py [AFTER]``: it makes each bad call of each function
(see ``SPECS``; after the call AFTER when given) and prints one JSON line per call,
``{"case": "NAME: case", "outcome": …}``, where outcome is ``"raised ValueError"`` or
``"raised TypeError"`` (as it should be), ``"no error"`` or ``"raised <other type>"``.  The line
``{"start": "NAME: case"}`` comes before each call, so that when the process dies (a segfault)
the caller knows which call did it, and goes on after it in a new process.  The test
(test_kernel_validation.py) runs it in subprocesses.

Each function is described by its arguments in order: a buffer argument by its shape, item type
('f' for the float type of the call, 'B' for a uint8 mask, 'i' for int32 indices), whether it is written, whether it may
be None, and which of its axes the function takes as given (so that changing them is not an
error); scalar arguments by their good value and some bad ones.
"""
import json
import sys

import numpy as np

T, N, U, D = 3, 2, 2, 3           # LSTM: steps, rows, units, input features
K = U + D + 1                     # [h, x, 1] columns
M, n = 4, 5                       # Dense / softmax rows and columns
L = 7                             # optimizer buffers
PN, PH, PW, PC = 2, 4, 5, 3       # pooling input (N, H, W, C); 2×2 windows, strides 1, pads below
POH, POW = PH, PW                 # top pad 1, right pad 1: OH = H + 1 − 2 + 1 = H, OW = W
WX, WY = (2, 5, 6, 3), (2, 5, 6, 4)   # Winograd: x (N, H, W, C), "same" y (N, H, W, F)
WP = 2 * 3 * 3                        # its tiles: N · ⌈5/2⌉ · ⌈6/2⌉
WP4 = 2 * 2 * 2                       # F(4×4, 3×3)'s: N · ⌈5/4⌉ · ⌈6/4⌉
# (H and W one longer or shorter are other valid calls: the same tiles cover them, with one
# row or column more or less of zeros beyond; tiles that do not cover x are the TH/TW cases)


def buf(shape, code="f", written=False, optional=False, free=()):
    return {"kind": "buf", "shape": shape, "code": code, "written": written,
            "optional": optional, "free": free}


def scalar(value, bad=()):
    return {"kind": "scalar", "value": value, "bad": list(bad)}


def _lstm_fwd_bufs(free_K):
    return [("A", buf((T, N, 4 * U), written=True)), ("C", buf((T + 1, N, U), written=True)),
            ("AC", buf((T, N, U), written=True)),
            ("Hc", buf((T + 1, N, K), written=True, free=(2,) if free_K else ())),
            ("H", buf((T + 1, N, U), written=True, optional=True)),
            ("rm", buf((N, U), optional=True)), ("fr", buf((T, N), "B", optional=True))]


def _lstm_bwd_bufs(P_written):
    return [("A", buf((T, N, 4 * U))), ("C", buf((T + 1, N, U))), ("AC", buf((T, N, U))),
            ("dZ", buf((T, N, 4 * U), written=True)), ("gh", buf((N, U), written=True)),
            ("gc", buf((N, U), written=True)),
            ("P", buf((N, U), written=P_written, optional=not P_written)),
            ("G", buf((N, T + 1, U), optional=True)),
            *([("live", buf((T,), "B"))] if P_written else []),
            ("rm", buf((N, U), optional=True)), ("fr", buf((T, N), "B", optional=True))]


# optimizer rule -> (number of scalars, state buffers after w and g); flags values of each rule
RULE_STATE = {"sgd": (3, ["momentum"]), "adam": (5, ["m", "v", "vhat"]),
              "rmsprop": (6, ["velocity", "average_gradient", "momentum"]),
              "adagrad": (3, ["accumulator"]), "adadelta": (5, ["accumulated_grad",
                                                                 "accumulated_delta_var"]),
              "adamax": (5, ["m", "u"]), "nadam": (8, ["m", "v"])}
RULE_FLAGS = {"sgd": 3, "adam": 2, "rmsprop": 4}


def _rule_spec(rule, flags, dtype):
    nscalar, state = RULE_STATE[rule]
    args = [("is_double", scalar(dtype == "d")), ("flags", scalar(flags, bad=[-1, 99])),
            ("w", buf((L,), written=True)), ("g", buf((L,)))]
    unused = {("sgd", 0): {"momentum"}, ("adam", 0): {"vhat"},
              ("rmsprop", 0): {"average_gradient", "momentum"}, ("rmsprop", 1): {"momentum"},
              ("rmsprop", 2): {"average_gradient"}}.get((rule, flags), set())
    args += [(s, buf((L,), written=True, optional=s in unused)) for s in state]
    args.append(("scalars", scalar(tuple([0.01] * nscalar), bad=[(0.01,) * (nscalar + 1),
                                                                 ("x",) * nscalar])))
    nbuf = 2 + len(state)

    def call(k, a):
        return getattr(k, rule)(a[0], a[1], tuple(a[2:2 + nbuf]), a[2 + nbuf])
    return call, args


def specs():
    out = {}
    for rule in RULE_STATE:
        for flags in range(RULE_FLAGS.get(rule, 1)):
            for dt in ("f", "d"):
                out[f"{rule}[flags={flags},{dt}]"] = (rule,) + _rule_spec(rule, flags, dt)
    out["lstm_forward"] = ("lstm_forward", lambda k, a: k.lstm_forward(*a),
                           [("j", scalar(1, bad=[-1, T, "x"]))] + _lstm_fwd_bufs(True))
    out["lstm_backward"] = ("lstm_backward", lambda k, a: k.lstm_backward(*a),
                            [("j", scalar(T - 2, bad=[T - 1, T, -2]))] + _lstm_bwd_bufs(False))
    out["lstm_forward_seq"] = ("lstm_forward_seq", lambda k, a: k.lstm_forward_seq(*a),
                               _lstm_fwd_bufs(False) + [("Wc", buf((K, 4 * U)))])
    out["lstm_backward_seq"] = ("lstm_backward_seq", lambda k, a: k.lstm_backward_seq(*a),
                                [("hi", scalar(T, bad=[T + 1, -1])), ("lo", scalar(0, bad=[-1, T + 1]))]
                                + _lstm_bwd_bufs(True) + [("Wc", buf((K, 4 * U), free=(0,)))])
    for gru in (True, False):
        g = (3 if gru else 1) * U
        cell = "gru" if gru else "simple"
        only = (lambda d: d) if gru else (lambda d: scalar(None))
        out[f"{cell}_forward_seq"] = (
            f"{cell}_forward_seq", lambda k, a, f=f"{cell}_forward_seq": getattr(k, f)(*a),
            [("XP", buf((T, N, g), written=True)), ("R", only(buf((T, N, g), written=True))),
             ("H", buf((T + 1, N, U), written=True)),
             ("HR", buf((T + 1, N, U), written=True, optional=True)),
             ("rm", buf((N, U), optional=True)), ("fr", buf((T, N), "B", optional=True)),
             ("U", buf((U, g))), ("b1", only(buf((g,))))])
        out[f"{cell}_backward_seq"] = (
            f"{cell}_backward_seq", lambda k, a, f=f"{cell}_backward_seq": getattr(k, f)(*a),
            [("XP", only(buf((T, N, g)))), ("R", only(buf((T, N, g)))),
             ("H", buf((T + 1, N, U))), ("dX", buf((T, N, g), written=True)),
             ("dR", only(buf((T, N, g), written=True))), ("gh", buf((N, U), written=True)),
             ("P", buf((N, U), written=True)), ("G", buf((N, T, U), optional=True)),
             ("live", buf((T,), "B")), ("rm", buf((N, U), optional=True)),
             ("fr", buf((T, N), "B", optional=True)), ("U", buf((U, g)))])
    out["gru_rb_forward_seq"] = (
        "gru_rb_forward_seq", lambda k, a: k.gru_rb_forward_seq(*a),
        [("XP", buf((T, N, 3 * U), written=True)), ("S", buf((N, 3 * U), written=True)),
         ("RH", buf((T, N, U), written=True)), ("H", buf((T + 1, N, U), written=True)),
         ("HR", buf((T + 1, N, U), written=True, optional=True)),
         ("rm", buf((N, U), optional=True)), ("fr", buf((T, N), "B", optional=True)),
         ("U", buf((U, 3 * U)))])
    out["gru_rb_backward_seq"] = (
        "gru_rb_backward_seq", lambda k, a: k.gru_rb_backward_seq(*a),
        [("XP", buf((T, N, 3 * U))), ("H", buf((T + 1, N, U))),
         ("HR", buf((T + 1, N, U), optional=True)), ("dX", buf((T, N, 3 * U), written=True)),
         ("gh", buf((N, U), written=True)), ("P", buf((2, N, U), written=True)),
         ("G", buf((N, T, U), optional=True)), ("live", buf((T,), "B")),
         ("rm", buf((N, U), optional=True)), ("fr", buf((T, N), "B", optional=True)),
         ("U", buf((U, 3 * U)))])
    geometry = [("ph", scalar(2, bad=[0, -1, 99, "x"])), ("pw", scalar(2, bad=[0, -1, 99])),
                ("sh", scalar(1, bad=[0, -2])), ("sw", scalar(1, bad=[0, -2])),
                ("pt", scalar(1, bad=[-1, 2])), ("pb", scalar(0, bad=[-1, 2])),
                ("pl", scalar(0, bad=[-1, 2])), ("pr", scalar(1, bad=[-1, 2]))]
    x4, y4 = (PN, PH, PW, PC), (PN, POH, POW, PC)
    out["max_pool2d"] = ("max_pool2d", lambda k, a: k.max_pool2d(*a),
                         [("x", buf(x4)), ("y", buf(y4, written=True)),
                          ("idx", buf(y4, "i", written=True))] + geometry)
    out["max_pool2d_backward"] = ("max_pool2d_backward", lambda k, a: k.max_pool2d_backward(*a),
                                  [("gy", buf(y4)), ("idx", buf(y4, "i")),
                                   ("gx", buf(x4, written=True))] + geometry)
    out["avg_pool2d"] = ("avg_pool2d", lambda k, a: k.avg_pool2d(*a),
                         [("x", buf(x4)), ("y", buf(y4, written=True))] + geometry)
    out["avg_pool2d_backward"] = ("avg_pool2d_backward", lambda k, a: k.avg_pool2d_backward(*a),
                                  [("gy", buf(y4)), ("gx", buf(x4, written=True))] + geometry)
    out["small_matmul"] = ("small_matmul", lambda k, a: k.small_matmul(*a),
                           [("x", buf((M, n))), ("w", buf((n, D))),
                            ("y", buf((M, D), written=True))])
    tiles = [("pt", scalar(1, bad=[-1, 3])), ("pl", scalar(1, bad=[-1, 3])),
             ("TH", scalar(3, bad=[-1, 1, 9])), ("TW", scalar(3, bad=[-1, 1, 9])),
             ("parts", scalar(1, bad=[0, -1]))]
    out["winograd_input"] = ("winograd_input", lambda k, a: k.winograd_input(*a),
                             [("x", buf(WX, free=(1, 2))), ("V", buf((16, WP, 3), written=True))] + tiles)
    out["winograd_input_grad"] = ("winograd_input_grad", lambda k, a: k.winograd_input_grad(*a),
                                  [("dV", buf((16, WP, 3))), ("gx", buf(WX, written=True, free=(1, 2)))] + tiles)
    out["winograd_output"] = ("winograd_output", lambda k, a: k.winograd_output(*a),
                              [("M", buf((16, WP, 4))), ("y", buf(WY, written=True, free=(1, 2))),
                               ("bias", buf((4,), optional=True)), ("relu", scalar(True)),
                               ("parts", scalar(2, bad=[0, -1]))])
    out["winograd_kernel"] = ("winograd_kernel", lambda k, a: k.winograd_kernel(*a),
                              [("g", buf((3, 3, 5, 4), free=(2, 3))),
                               ("U", buf((16, 5, 4), written=True)),
                               ("parts", scalar(2, bad=[0, -1]))])
    out["winograd_output_grad"] = ("winograd_output_grad", lambda k, a: k.winograd_output_grad(*a),
                                   [("gy", buf(WY, free=(1, 2))), ("dM", buf((16, WP, 4), written=True)),
                                    ("parts", scalar(2, bad=[0, -1]))])
    tiles4 = [("pt", scalar(1, bad=[-1, 3])), ("pl", scalar(1, bad=[-1, 3])),
              ("TH", scalar(2, bad=[-1, 0, 9])), ("TW", scalar(2, bad=[-1, 0, 9])),
              ("parts", scalar(1, bad=[0, -1])), ("m", scalar(4, bad=[3, 0]))]
    m4 = [("m", scalar(4, bad=[3, 0, 6]))]
    out["winograd_input_f4"] = ("winograd_input", lambda k, a: k.winograd_input(*a),
                                [("x", buf(WX, free=(1, 2))), ("V", buf((36, WP4, 3), written=True))]
                                + tiles4)
    out["winograd_input_grad_f4"] = (
        "winograd_input_grad", lambda k, a: k.winograd_input_grad(*a),
        [("dV", buf((36, WP4, 3))), ("gx", buf(WX, written=True, free=(1, 2)))] + tiles4)
    out["winograd_output_f4"] = ("winograd_output", lambda k, a: k.winograd_output(*a),
                                 [("M", buf((36, WP4, 4))), ("y", buf(WY, written=True, free=(1, 2))),
                                  ("bias", buf((4,), optional=True)), ("relu", scalar(True)),
                                  ("parts", scalar(2, bad=[0, -1]))] + m4)
    out["winograd_kernel_f4"] = ("winograd_kernel", lambda k, a: k.winograd_kernel(*a),
                                 [("g", buf((3, 3, 5, 4), free=(2, 3))),
                                  ("U", buf((36, 5, 4), written=True)),
                                  ("parts", scalar(2, bad=[0, -1]))] + m4)
    out["winograd_output_grad_f4"] = (
        "winograd_output_grad", lambda k, a: k.winograd_output_grad(*a),
        [("gy", buf(WY, free=(1, 2))), ("dM", buf((36, WP4, 4), written=True)),
         ("parts", scalar(2, bad=[0, -1]))] + m4)
    out["layer_norm_rows"] = ("layer_norm_rows", lambda k, a: k.layer_norm_rows(*a),
                              [("x", buf((M, n))), ("gamma", buf((n,), optional=True)),
                               ("beta", buf((n,), optional=True)), ("eps", scalar(1e-5, bad=[-1.0])),
                               ("y", buf((M, n), written=True)), ("xhat", buf((M, n), written=True)),
                               ("inv", buf((M,), written=True)), ("parts", scalar(2, bad=[0, -1]))])
    out["layer_norm_rows_backward"] = (
        "layer_norm_rows_backward", lambda k, a: k.layer_norm_rows_backward(*a),
        [("g", buf((M, n))), ("xhat", buf((M, n))), ("inv", buf((M,))),
         ("gamma", buf((n,), optional=True)), ("dx", buf((M, n), written=True)),
         ("parts", scalar(2, bad=[0, -1]))])
    out["softmax_grad_rows"] = ("softmax_grad_rows", lambda k, a: k.softmax_grad_rows(*a),
                                [("dp", buf((M, n), written=True)), ("p", buf((M, n))),
                                 ("parts", scalar(2, bad=[0, -1]))])
    out["dense_forward"] = ("dense_forward", lambda k, a: k.dense_forward(*a),
                            [("y", buf((M, n), written=True, free=(0,))),
                             ("b", buf((n,), optional=True)), ("relu", scalar(True))])
    out["dense_backward"] = ("dense_backward", lambda k, a: k.dense_backward(*a),
                             [("g", buf((M, n))), ("y", buf((M, n), optional=True)),
                              ("gm", buf((M, n), written=True)),
                              ("db", buf((n,), written=True, optional=True))])
    out["softmax_rows"] = ("softmax_rows", lambda k, a: k.softmax_rows(*a),
                           [("z", buf((M, n))), ("p", buf((M, n), written=True)),
                            ("logp", buf((M, n), written=True, optional=True))])
    out["xent_rows"] = ("xent_rows", lambda k, a: k.xent_rows(*a),
                        [("y", buf((M, n))), ("logp", buf((M, n))),
                         ("loss", buf((M,), written=True))])
    out["xent_grad_rows"] = ("xent_grad_rows", lambda k, a: k.xent_grad_rows(*a),
                             [("g", buf((M,))), ("p", buf((M, n))), ("y", buf((M, n))),
                              ("gz", buf((M, n), written=True))])
    return out


SPECS = specs()


def _good(desc, dtype, rng):
    if desc["kind"] == "scalar":
        return desc["value"]
    if desc["code"] == "B":
        return np.zeros(desc["shape"], np.uint8)
    if desc["code"] == "i":
        return np.zeros(desc["shape"], np.int32)
    return rng.uniform(-1, 1, size=desc["shape"]).astype(dtype)


def _dtype(name):
    return np.float64 if "d]" in name else np.float32


def good_args(name, rng):
    _, _, args = SPECS[name]
    dt = _dtype(name)
    return [_good(d, dt, rng) for _, d in args]


def _strided(a):
    """The same values in a non-contiguous array of the same shape (and dtype)."""
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype) if a.ndim else np.zeros(2, a.dtype)
    v = big[..., ::2]
    v[...] = a
    return v


def mutations(name):
    """(case, mutate(args) -> args) for every bad call of the function ``name``."""
    _, _, args = SPECS[name]
    names = [a for a, _ in args]
    dt = _dtype(name)
    other = np.float64 if dt == np.float32 else np.float32
    out = []

    def put(i, fn):
        def mutate(a):
            a = list(a)
            a[i] = fn(a[i], a)
            return a
        return mutate

    for i, (arg, d) in enumerate(args):
        if d["kind"] == "scalar":
            for bad in d["bad"]:
                out.append((f"{arg}={bad!r}", put(i, lambda v, a, bad=bad: bad)))
            continue
        shape, code, flat = d["shape"], d["code"], name.split("[")[0] in RULE_STATE
        if not d["optional"]:
            out.append((f"{arg}=None", put(i, lambda v, a: None)))
        out.append((f"{arg} a list", put(i, lambda v, a: v.tolist())))
        for ax in range(len(shape)):
            if ax not in d["free"] and shape[ax] > 0:
                out.append((f"{arg} short on axis {ax}",
                            put(i, lambda v, a, ax=ax: np.take(v, range(v.shape[ax] - 1), axis=ax))))
                out.append((f"{arg} long on axis {ax}",
                            put(i, lambda v, a, ax=ax: np.concatenate([v, np.take(v, [0], axis=ax)],
                                                                      axis=ax))))
        if len(shape) > 1 and not flat:
            out.append((f"{arg} flattened", put(i, lambda v, a: v.reshape(-1))))
            out.append((f"{arg} with an extra axis", put(i, lambda v, a: v[None])))
        if code == "B":
            out.append((f"{arg} float32", put(i, lambda v, a: v.astype(np.float32))))
            out.append((f"{arg} int32", put(i, lambda v, a: v.astype(np.int32))))
        elif code == "i":
            out.append((f"{arg} int64", put(i, lambda v, a: v.astype(np.int64))))
            out.append((f"{arg} uint32", put(i, lambda v, a: v.astype(np.uint32))))
            out.append((f"{arg} float32", put(i, lambda v, a: v.astype(np.float32))))
            out.append((f"{arg} big-endian", put(i, lambda v, a: v.astype(v.dtype.newbyteorder(">")))))
        else:
            out.append((f"{arg} {np.dtype(other).name}", put(i, lambda v, a: v.astype(other))))
            out.append((f"{arg} int32", put(i, lambda v, a: v.astype(np.int32))))
            out.append((f"{arg} float16", put(i, lambda v, a: v.astype(np.float16))))
            out.append((f"{arg} big-endian", put(i, lambda v, a: v.astype(v.dtype.newbyteorder(">")))))
        out.append((f"{arg} non-contiguous", put(i, lambda v, a: _strided(v))))
        if d["written"]:
            def readonly(v, a):
                v = v.copy()
                v.flags.writeable = False
                return v
            out.append((f"{arg} read-only", put(i, readonly)))
            # the same memory as another buffer argument of the same item type
            for j, (arg2, d2) in enumerate(args):
                if j == i or d2["kind"] != "buf" or d2["code"] != code:
                    continue

                def alias(a, i=i, j=j):
                    a = list(a)
                    x, y = a[i], a[j]
                    if y.size >= x.size:
                        a[i] = y.reshape(-1)[:x.size].reshape(x.shape)
                    else:
                        a[j] = x.reshape(-1)[:y.size].reshape(y.shape)
                    return a
                out.append((f"{arg} shares memory with {arg2}", alias))
    return out


def run(after=None):
    """Every bad call of every function, in table order (after the call ``after``, if given):
    the line {"start": id} before each call, {"case": id, "outcome": …} after it."""
    from axone import _native
    k = _native.KERNELS
    if k is None:
        print(json.dumps({"skip": "compiled module not built"}), flush=True)
        return
    seq = _native.seq_kernels() is not None
    rng = np.random.default_rng(0)
    skipping = after is not None
    for name, (fn_name, call, _) in SPECS.items():
        if "seq" in fn_name and not seq:
            print(json.dumps({"skipped": name, "why": "no BLAS handed over"}), flush=True)
            continue
        for case, mutate in [("good call", None)] + mutations(name):
            cid = f"{name}: {case}"
            if skipping:
                skipping = cid != after
                continue
            print(json.dumps({"start": cid}), flush=True)
            args = good_args(name, rng)
            if mutate is None:
                call(k, args)                   # must work
                outcome = "ok"
            else:
                try:
                    call(k, mutate(args))
                    outcome = "no error"
                except (ValueError, TypeError) as e:
                    outcome = f"raised {type(e).__name__}" if str(e) else "raised an empty message"
                except Exception as e:          # noqa: BLE001 - reported to the test
                    outcome = f"raised {type(e).__name__}: {e}"
            print(json.dumps({"case": cid, "outcome": outcome}), flush=True)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else None)
