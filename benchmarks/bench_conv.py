"""Convolutional training benchmarks: axone vs a plain PyTorch loop (vs Keras 3 with --keras).

Workloads (random data of the given shape; the arithmetic is the same as on real images)
  lenet  one epoch of the course's LeNet (002 §6.2.2): 32x32x1 -> Conv2D(6, 5, relu) -> MaxPool(2)
         -> Conv2D(16, 5, relu) -> MaxPool(2) -> Flatten -> 120 -> 84 -> 10 (softmax),
         10,000 samples, batch 64, Adam, categorical cross-entropy
  wide   one epoch of a wider CNN on 32x32x3: [Conv2D(32, 3, same, relu) -> MaxPool(2)]
         -> [Conv2D(64, 3, same, relu) -> MaxPool(2)] -> [Conv2D(64, 3, same, relu) -> MaxPool(2)]
         -> Flatten -> Dense(64, relu) -> Dense(10, softmax); 5,000 samples, batch 64, Adam

Usage: python benchmarks/bench_conv.py [--workload lenet|wide|all] [--rounds 5] [--keras]
                                       [--threads 0] [--no-memory] [--profile]
``--threads 0`` (default) leaves every library at its own defaults (torch's thread count,
axone's thread policy); ``--threads N`` pins BLAS, torch's intra-op threads and axone's own
threads to N for every framework alike; ``--threads 0,1`` reports the defaults first and the
pinned run second.  ``--profile`` runs one axone LeNet epoch under cProfile and prints where
the time goes.  Prints per-round times, then per framework the median and fastest round, the
ratios axone/x of both and each framework's peak RSS (one child process each).  Nothing here
asserts.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def make_data(n, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n,) + shape, dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    return x, y


# Layer specs shared by the three frameworks:
#   ("conv", filters, kernel, padding) | ("pool", size) | ("flatten",) | ("dense", units, activation)
WORKLOADS = {
    "lenet": dict(n=10000, shape=(32, 32, 1), batch=64, epochs=1,
                  spec=[("conv", 6, 5, "valid"), ("pool", 2), ("conv", 16, 5, "valid"), ("pool", 2),
                        ("flatten",), ("dense", 120, "relu"), ("dense", 84, "relu"),
                        ("dense", 10, "softmax")]),
    "wide": dict(n=5000, shape=(32, 32, 3), batch=64, epochs=1,
                 spec=[("conv", 32, 3, "same"), ("pool", 2), ("conv", 64, 3, "same"), ("pool", 2),
                       ("conv", 64, 3, "same"), ("pool", 2), ("flatten",), ("dense", 64, "relu"),
                       ("dense", 10, "softmax")]),
}


def _keras_like_layers(L, spec):
    out = []
    for s in spec:
        if s[0] == "conv":
            out.append(L.Conv2D(s[1], s[2], padding=s[3], activation="relu"))
        elif s[0] == "pool":
            out.append(L.MaxPooling2D(s[1]))
        elif s[0] == "flatten":
            out.append(L.Flatten())
        else:
            out.append(L.Dense(s[1], activation=s[2]))
    return out


def build_axone(w):
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    model = axone.Sequential([layers.InputLayer(input_shape=w["shape"])] +
                             _keras_like_layers(layers, w["spec"]))
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def run_axone(w, x, y):
    model = build_axone(w)
    t = time.perf_counter()
    h = model.fit(x, y, epochs=w["epochs"], batch_size=w["batch"], verbose=0)
    return time.perf_counter() - t, h.history["loss"][-1]


def build_torch(w):
    import torch
    torch.manual_seed(0)
    mods, c, hw = [], w["shape"][-1], w["shape"][0]
    for s in w["spec"]:
        if s[0] == "conv":
            mods += [torch.nn.Conv2d(c, s[1], s[2], padding="same" if s[3] == "same" else 0),
                     torch.nn.ReLU()]
            c = s[1]
            hw = hw if s[3] == "same" else hw - s[2] + 1
        elif s[0] == "pool":
            mods.append(torch.nn.MaxPool2d(s[1]))
            hw //= s[1]
        elif s[0] == "flatten":
            mods.append(torch.nn.Flatten())
            c = c * hw * hw
        else:
            mods.append(torch.nn.Linear(c, s[1]))
            if s[2] == "relu":
                mods.append(torch.nn.ReLU())
            c = s[1]
    return torch.nn.Sequential(*mods)   # logits: softmax is fused into CrossEntropyLoss


def run_torch(w, x, y):
    import torch
    net = build_torch(w)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    # NCHW, torch's native layout; the conversion is outside the timed loop
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y.argmax(1))
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
    model = keras.Sequential([keras.Input(w["shape"])] + _keras_like_layers(keras.layers, w["spec"]))
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    t = time.perf_counter()
    h = model.fit(x, y, epochs=w["epochs"], batch_size=w["batch"], verbose=0)
    return time.perf_counter() - t, h.history["loss"][-1]


def profile_axone(workload="lenet", top=25):
    """One axone epoch under cProfile; prints the top functions by total (self) time and a
    breakdown of the convolution / pooling ops."""
    import cProfile
    import pstats
    w = WORKLOADS[workload]
    x, y = make_data(w["n"], w["shape"])
    model = build_axone(w)
    model.fit(x[:256], y[:256], epochs=1, batch_size=w["batch"], verbose=0)   # warm-up
    pr = cProfile.Profile()
    t = time.perf_counter()
    pr.enable()
    model.fit(x, y, epochs=1, batch_size=w["batch"], verbose=0)
    pr.disable()
    wall = time.perf_counter() - t
    print(f"\n[profile {workload}] one epoch under cProfile: {wall:.2f}s wall")
    st = pstats.Stats(pr)
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats("conv.py|nn.py|function.py|tensor.py", 25)


def _best_ms(f, reps=15):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return 1e3 * min(ts)


def lenet_components(batch=64, n=10000):
    """axone's LeNet convolution (+ReLU) and pooling nodes timed one by one at the workload's
    shapes, as the model calls them (best of 15, so less sensitive to load than the epoch),
    scaled to one epoch."""
    import axone
    rng = np.random.default_rng(0)
    steps = -(-n // batch)
    rows = []
    # (name, H, C, k, F): conv1's input needs no gradient (it is the data)
    for name, h, c, k, f in [("conv1", 32, 1, 5, 6), ("conv2", 14, 6, 5, 16)]:
        x = axone.Tensor(rng.random((batch, h, h, c), dtype=np.float32), requires_grad=name != "conv1")
        kern = axone.Tensor(rng.random((k, k, c, f), dtype=np.float32) - 0.5, requires_grad=True)
        bias = axone.Tensor(np.zeros(f, np.float32), requires_grad=True)
        y = axone.ops.conv(x, kern, bias, relu=True)
        gy = rng.random(y.shape, dtype=np.float32)

        def conv_fb():
            axone.ops.conv(x, kern, bias, relu=True).backward(gy)
        rows.append((f"{name}+relu: forward", _best_ms(lambda: axone.ops.conv(x, kern, bias, relu=True))))
        rows.append((f"{name}+relu: forward+backward", _best_ms(conv_fb)))
        t = axone.Tensor(y.data.copy(), requires_grad=True)
        out = axone.ops.max_pool(t, 2)
        gp = rng.random(out.shape, dtype=np.float32)

        def pool_fb():
            axone.ops.max_pool(t, 2).backward(gp)
        rows.append((f"pool after {name}: forward", _best_ms(lambda: axone.ops.max_pool(t, 2))))
        rows.append((f"pool after {name}: forward+backward", _best_ms(pool_fb)))
    print(f"\n[components] best-of-15 per batch of {batch}, x{steps} batches = per epoch")
    for what, ms in rows:
        print(f"  {what:42s} {ms:7.3f} ms/batch  {ms * steps / 1e3:6.2f} s/epoch")


RUNNERS = {"axone": run_axone, "torch": run_torch, "keras": run_keras}


def child(framework, workload):
    """One training epoch in a child process (peak-RSS measurement)."""
    w = WORKLOADS[workload]
    x, y = make_data(w["n"], w["shape"])
    t, loss = RUNNERS[framework](w, x, y)
    return {"seconds": t, "loss": float(loss)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="all", choices=["all"] + list(WORKLOADS))
    p.add_argument("--keras", action="store_true", help="also time Keras 3 (PyTorch backend)")
    p.add_argument("--profile", action="store_true", help="profile one axone LeNet epoch and exit")
    _common.add_common_args(p)
    args = p.parse_args(argv)
    for threads in _common.thread_settings(args.threads):
        with _common.thread_scope(threads):
            _common.banner("convolutional training: axone vs torch" + (" vs keras" if args.keras else ""),
                           threads)
            if args.profile:
                profile_axone("lenet")
                lenet_components()
                continue
            names = list(WORKLOADS) if args.workload == "all" else [args.workload]
            frameworks = ["axone", "torch"] + (["keras"] if args.keras else [])
            for name in names:
                w = WORKLOADS[name]
                x, y = make_data(w["n"], w["shape"])
                runners = {k: (lambda f=RUNNERS[k]: f(w, x, y)) for k in frameworks}
                mem = None if args.no_memory else _common.memory_runner(__file__, threads, workload=name)
                _common.compare(name, runners, args.rounds, memory=mem)


if __name__ == "__main__":
    main()
