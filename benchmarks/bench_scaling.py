"""Training throughput as models grow: axone vs PyTorch at its defaults, family by family.

Each row trains one model size for a fixed number of Adam steps in both frameworks (axone's
``Model.fit`` over exactly that many batches, a plain PyTorch loop over the same batches) and
prints: the sizes, the GFLOP of one training step, ms per step of each, the ratio axone/torch,
and the GFLOP/s each achieves, for the median and for the fastest round.  The machine's
single-precision matrix-product peak (NumPy float32 2048x2048 @ 2048x2048, at NumPy's default
threads and on one thread) is measured once and printed as the ceiling.

FLOPs are counted analytically from the matrix products only: 2*M*K*N for each product of the
forward pass, times 3 for forward + backward (the two backward products of each forward one);
a convolution counts as its im2col product (output positions x (kh*kw*C_in) x filters), a
recurrent layer as its input and recurrent products at every time step, attention as its
projections and its two score/value products.  Element-wise work, pooling and the optimizer are
left out, and the first layer's input gradient (which neither framework computes) is counted
like the others, so the figures are the conventional 3x-forward estimate.

Families (``--family``)
  mlp          784 -> width x depth (ReLU) -> 10 (softmax); rows (width, batch):
               (64, 32) (256, 32) (256, 256) (1024, 128) (2048, 256) (4096, 512); depth 2
  cnn          3 x [Conv2D 3x3 same + ReLU] with max-pools after the first two, global average
               pool, Dense(10); rows (input, filters, batch): 28x28x1 f8 b32, 32x32x3 f32 b64,
               32x32x3 f64 b64, 64x64x3 f64 b32, 96x96x3 f128 b16
  lstm, gru    LSTM / GRU (units) -> Dense(1), mse; rows (T, features, units, batch):
               (50, 8, 64, 64) (100, 32, 128, 64) (100, 64, 256, 128) (200, 128, 512, 64)
  transformer  one post-norm encoder block (axone: MultiHeadAttention + Add + LayerNormalization
               + Dense(4d, relu) + Dense(d) + Add + LayerNormalization; PyTorch:
               nn.TransformerEncoderLayer, dropout 0, the same shapes), mean over the sequence,
               Dense(10); rows (d_model, heads, seq, batch): (128, 4, 64, 32) (256, 8, 128, 32)

Usage: python benchmarks/bench_scaling.py [--family all|mlp,cnn,...] [--steps 5] [--rounds 3]
                                          [--threads 0] [--quick] [--memory] [--depth 2]
``--quick`` keeps the first row of each family (a smoke test: 2 steps, 1 round unless given,
the ceiling measured on a 512^3 product); ``--no-peak`` skips the ceiling.
``--threads 0`` (default) leaves every library at its own defaults; ``--threads 1`` pins them
all to one thread; ``--threads 0,1`` reports the defaults first and the pinned run second.
``--memory`` adds each framework's peak RSS for the row, each in a child process of its own.
Nothing here asserts.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

CLASSES = 10

FAMILIES = {
    "mlp": [dict(width=w, batch=b) for w, b in
            [(64, 32), (256, 32), (256, 256), (1024, 128), (2048, 256), (4096, 512)]],
    "cnn": [dict(hw=hw, c=c, f=f, batch=b) for hw, c, f, b in
            [(28, 1, 8, 32), (32, 3, 32, 64), (32, 3, 64, 64), (64, 3, 64, 32), (96, 3, 128, 16)]],
    "lstm": [dict(T=t, d=d, u=u, batch=b) for t, d, u, b in
             [(50, 8, 64, 64), (100, 32, 128, 64), (100, 64, 256, 128), (200, 128, 512, 64)]],
    "transformer": [dict(d=d, heads=h, seq=s, batch=b) for d, h, s, b in
                    [(128, 4, 64, 32), (256, 8, 128, 32)]],
}
FAMILIES["gru"] = [dict(r) for r in FAMILIES["lstm"]]
ORDER = ["mlp", "cnn", "lstm", "gru", "transformer"]


# -------------------------------------------------------------- sizes and FLOPs
def label(family, cfg, depth=2):
    if family == "mlp":
        return f"784-{cfg['width']}x{depth}-10 b{cfg['batch']}"
    if family == "cnn":
        return f"{cfg['hw']}x{cfg['hw']}x{cfg['c']} f{cfg['f']} b{cfg['batch']}"
    if family in ("lstm", "gru"):
        return f"T{cfg['T']} d{cfg['d']} u{cfg['u']} b{cfg['batch']}"
    return f"d{cfg['d']} h{cfg['heads']} s{cfg['seq']} b{cfg['batch']}"


def flops(family, cfg, depth=2):
    """FLOPs of one training step: 3 x the forward pass's 2*M*K*N products."""
    b = cfg["batch"]
    prods = []                                 # (M, K, N) of each forward product
    if family == "mlp":
        sizes = [784] + [cfg["width"]] * depth + [CLASSES]
        prods = [(b, k, n) for k, n in zip(sizes[:-1], sizes[1:])]
    elif family == "cnn":
        hw, c, f = cfg["hw"], cfg["c"], cfg["f"]
        for i in range(3):
            prods.append((b * hw * hw, 9 * c, f))
            c = f
            if i < 2:
                hw //= 2
        prods.append((b, f, CLASSES))
    elif family in ("lstm", "gru"):
        g = (4 if family == "lstm" else 3) * cfg["u"]
        prods = [(b, cfg["d"], g), (b, cfg["u"], g)] * cfg["T"] + [(b, cfg["u"], 1)]
    else:
        d, s = cfg["d"], cfg["seq"]
        rows = b * s
        prods = [(rows, d, d)] * 4                       # Q, K, V and output projections
        prods += [(b * s, d, s), (b * s, s, d)]          # scores QK^T and weights x V, all heads
        prods += [(rows, d, 4 * d), (rows, 4 * d, d)]    # feed-forward
        prods.append((b, d, CLASSES))
    return 3 * sum(2.0 * m * k * n for m, k, n in prods)


def make_data(family, cfg, n, seed=0):
    rng = np.random.default_rng(seed)
    if family == "mlp":
        x = rng.random((n, 784), dtype=np.float32)
    elif family == "cnn":
        x = rng.random((n, cfg["hw"], cfg["hw"], cfg["c"]), dtype=np.float32)
    elif family in ("lstm", "gru"):
        x = rng.standard_normal((n, cfg["T"], cfg["d"]), dtype=np.float32)
        y = (x[:, :, 0].mean(axis=1, keepdims=True) + 0.1 * x[:, -1, 1:2]).astype(np.float32)
        return x, y
    else:
        x = rng.standard_normal((n, cfg["seq"], cfg["d"]), dtype=np.float32)
    y = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, n)]
    return x, y


# ------------------------------------------------------------------ models
def build_axone(family, cfg, depth=2):
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    if family == "mlp":
        model = axone.Sequential([layers.InputLayer(input_shape=(784,))]
                                 + [layers.Dense(cfg["width"], activation="relu") for _ in range(depth)]
                                 + [layers.Dense(CLASSES, activation="softmax")])
        loss = "categorical_crossentropy"
    elif family == "cnn":
        f = cfg["f"]
        model = axone.Sequential([
            layers.InputLayer(input_shape=(cfg["hw"], cfg["hw"], cfg["c"])),
            layers.Conv2D(f, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(f, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(f, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(), layers.Dense(CLASSES, activation="softmax")])
        loss = "categorical_crossentropy"
    elif family in ("lstm", "gru"):
        rnn = layers.LSTM if family == "lstm" else layers.GRU
        model = axone.Sequential([layers.InputLayer(input_shape=(cfg["T"], cfg["d"])),
                                  rnn(cfg["u"]), layers.Dense(1)])
        loss = "mse"
    else:
        d, h = cfg["d"], cfg["heads"]
        inp = axone.Input((cfg["seq"], d))
        a = layers.MultiHeadAttention(num_heads=h, key_dim=d // h)(inp, inp)
        x = layers.LayerNormalization(epsilon=1e-5)(layers.Add()([inp, a]))
        f = layers.Dense(4 * d, activation="relu")(x)
        f = layers.Dense(d)(f)
        x = layers.LayerNormalization(epsilon=1e-5)(layers.Add()([x, f]))
        x = layers.GlobalAveragePooling1D()(x)
        model = axone.Model(inp, layers.Dense(CLASSES, activation="softmax")(x))
        loss = "categorical_crossentropy"
    model.compile(loss=loss, optimizer="adam")
    return model


def build_torch(family, cfg, depth=2):
    """(module, loss function, x converter, y converter)."""
    import torch
    nn = torch.nn
    torch.manual_seed(0)
    ce = (nn.CrossEntropyLoss(), lambda y: torch.from_numpy(y.argmax(1)))
    if family == "mlp":
        mods, k = [], 784
        for _ in range(depth):
            mods += [nn.Linear(k, cfg["width"]), nn.ReLU()]
            k = cfg["width"]
        net = nn.Sequential(*mods, nn.Linear(k, CLASSES))
        return (net, ce[0], torch.from_numpy, ce[1])
    if family == "cnn":
        c, f = cfg["c"], cfg["f"]
        net = nn.Sequential(nn.Conv2d(c, f, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(f, f, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(f, f, 3, padding=1), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(f, CLASSES))
        return (net, ce[0], lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))),
                ce[1])
    if family in ("lstm", "gru"):
        rnn_cls = nn.LSTM if family == "lstm" else nn.GRU

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = rnn_cls(cfg["d"], cfg["u"], batch_first=True)
                self.head = nn.Linear(cfg["u"], 1)

            def forward(self, xb):
                seq, _ = self.rnn(xb)
                return self.head(seq[:, -1])
        return (Net(), nn.MSELoss(), torch.from_numpy, torch.from_numpy)
    d = cfg["d"]

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.TransformerEncoderLayer(d, cfg["heads"], dim_feedforward=4 * d, dropout=0.0,
                                                    batch_first=True)
            self.head = nn.Linear(d, CLASSES)

        def forward(self, xb):
            return self.head(self.block(xb).mean(dim=1))
    return (Encoder(), ce[0], torch.from_numpy, ce[1])


class AxoneRunner:
    def __init__(self, family, cfg, x, y, depth):
        self.model = build_axone(family, cfg, depth)
        self.x, self.y, self.b = x, y, cfg["batch"]
        self.model.fit(x[:self.b], y[:self.b], batch_size=self.b, epochs=1, shuffle=False, verbose=0)

    def __call__(self):
        t = time.perf_counter()
        h = self.model.fit(self.x, self.y, batch_size=self.b, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - t, h.history["loss"][-1]


class TorchRunner:
    def __init__(self, family, cfg, x, y, depth):
        import torch
        self.net, self.lossf, fx, fy = build_torch(family, cfg, depth)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, eps=1e-7)
        self.x, self.y, self.b = fx(x), fy(y), cfg["batch"]
        self._step(0)

    def _step(self, i):
        self.opt.zero_grad()
        loss = self.lossf(self.net(self.x[i:i + self.b]), self.y[i:i + self.b])
        loss.backward()
        self.opt.step()
        return loss

    def __call__(self):
        t = time.perf_counter()
        for i in range(0, len(self.x), self.b):
            loss = self._step(i)
        loss = float(loss.item())
        return time.perf_counter() - t, loss


RUNNERS = {"axone": AxoneRunner, "torch": TorchRunner}


def child(framework, family, cfg, steps, depth=2):
    """One row's training in a child process (peak-RSS measurement)."""
    x, y = make_data(family, cfg, steps * cfg["batch"])
    t, loss = RUNNERS[framework](family, cfg, x, y, depth)()
    return {"seconds": t, "loss": float(loss)}


# ------------------------------------------------------------------ the ceiling
def gemm_peak(n=2048, reps=3):
    """GFLOP/s of NumPy's float32 n^3 product: (default threads, one thread), best of ``reps``."""
    from axone import backend
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)

    def best():
        a @ b
        return min(_common.timed(np.matmul, a, b)[0] for _ in range(reps))
    default = best()
    with backend.blas_threads(1):
        one = best()
    work = 2.0 * n ** 3
    return work / default / 1e9, work / one / 1e9


# ------------------------------------------------------------------ main
def run_family(family, rows, args, threads):
    steps, depth = args.steps, args.depth
    table_rows = []
    for cfg in rows:
        name = label(family, cfg, depth)
        x, y = make_data(family, cfg, steps * cfg["batch"])
        runners = {k: cls(family, cfg, x, y, depth) for k, cls in RUNNERS.items()}
        times = _common.interleaved(runners, args.rounds)
        gflop = flops(family, cfg, depth) / 1e9
        (ma, fa), (mt, ft) = _common.summary(times["axone"]), _common.summary(times["torch"])
        ms = lambda t: 1e3 * t / steps   # noqa: E731
        row = [name, gflop, ms(ma), ms(mt), ma / mt, gflop * steps / ma, gflop * steps / mt,
               ms(fa), ms(ft), fa / ft]
        if args.memory:
            for k in RUNNERS:
                rss, _ = _common.peak_rss(__file__, "child", threads=threads, framework=k,
                                          family=family, cfg=cfg, steps=steps, depth=depth)
                row.append(_common.fmt_mib(rss))
        table_rows.append(row)
        print(f"[{family}] {name}: axone {ms(ma):.2f} ms/step, torch {ms(mt):.2f} ms/step "
              f"(median of {args.rounds}), ratio {ma / mt:.2f}", flush=True)
        del runners
    headers = ["size", "GFLOP/step", "axone ms", "torch ms", "axone/torch", "axone GFLOP/s",
               "torch GFLOP/s", "fastest: axone ms", "torch ms", "axone/torch"]
    if args.memory:
        headers += ["axone RSS MiB", "torch RSS MiB"]
    _common.table(headers, table_rows,
                  title=f"[{family}] {steps} Adam steps per round, {args.rounds} rounds "
                        f"(median, then fastest round)")
    return table_rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="all",
                   help=f"all, or a comma-separated list among {', '.join(ORDER)}")
    p.add_argument("--steps", type=int, default=None, help="Adam steps per round (default 5; 2 with --quick)")
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    p.add_argument("--depth", type=int, default=2, help="hidden layers of the MLP family (default 2)")
    p.add_argument("--quick", action="store_true", help="first row of each family only")
    p.add_argument("--memory", action="store_true", help="peak RSS of each row, one child per framework")
    p.add_argument("--no-peak", action="store_true", help="skip the GEMM peak measurement")
    _common.add_thread_args(p)
    args = p.parse_args(argv)
    families = ORDER if args.family == "all" else [f.strip() for f in args.family.split(",")]
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        p.error(f"--family: unknown {bad}; expected 'all' or names among {ORDER}")
    if args.steps is None:
        args.steps = 2 if args.quick else 5
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.steps < 1 or args.rounds < 1 or args.depth < 1:
        p.error("--steps, --rounds and --depth must be positive")
    settings = _common.thread_settings(args.threads)
    import torch  # noqa: F401  (imported before any thread setting is read)
    if not args.no_peak:
        peak, peak1 = gemm_peak(512 if args.quick else 2048)
        size = 512 if args.quick else 2048
        print(f"ceiling: NumPy float32 {size}^3 matmul {peak:.1f} GFLOP/s at default threads, "
              f"{peak1:.1f} GFLOP/s on 1 thread")
    for threads in settings:
        with _common.thread_scope(threads):
            _common.banner("training throughput by model size: axone vs torch", threads)
            for family in families:
                rows = FAMILIES[family][:1] if args.quick else FAMILIES[family]
                run_family(family, rows, args, threads)


if __name__ == "__main__":
    main()
