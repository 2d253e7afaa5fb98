"""Inference latency of the course models: axone's ``model.predict(x)`` and ``model(x)`` against
PyTorch eager under ``torch.inference_mode()`` (and onnxruntime when it is installed).

Models (the same weights in every framework: axone's are copied into the PyTorch module, and the
largest output difference is printed as a check)
  iris   4 -> 256 -> 256 -> 256 -> 3 (ReLU, softmax)
  lenet  32x32x1 -> Conv2D(6, 5, relu) -> MaxPool(2) -> Conv2D(16, 5, relu) -> MaxPool(2)
         -> Flatten -> 120 -> 84 -> 10 (softmax)
  lstm   50 steps x 8 features -> LSTM(64) -> Dense(1)
each for one sample and for a batch of 32.

Usage: python benchmarks/bench_inference.py [--models iris,lenet,lstm] [--batches 1,32]
                                            [--calls 200] [--rounds 3] [--threads 0]
Each round makes ``--calls`` calls of every variant in turn (the order alternates from round to
round); the table gives the median and the fastest call in microseconds, pooled over the rounds,
and the ratio of each variant's median to PyTorch eager's.  ``--threads 0`` (default) leaves
every library at its own defaults, ``--threads 1`` pins them all to one thread, ``--threads 0,1``
reports both, defaults first.  onnxruntime runs only when ``onnxruntime`` and ``onnx`` import
(the model is exported with ``torch.onnx.export``); otherwise its rows are skipped.  Nothing
here asserts.
"""
import argparse
import io
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

MODELS = ["iris", "lenet", "lstm"]
INPUT = {"iris": (4,), "lenet": (32, 32, 1), "lstm": (50, 8)}


def build_axone(name):
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    if name == "iris":
        body = [layers.Dense(256, activation="relu") for _ in range(3)] + [layers.Dense(3, activation="softmax")]
    elif name == "lenet":
        body = [layers.Conv2D(6, 5, activation="relu"), layers.MaxPooling2D(2),
                layers.Conv2D(16, 5, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
                layers.Dense(120, activation="relu"), layers.Dense(84, activation="relu"),
                layers.Dense(10, activation="softmax")]
    else:
        body = [layers.LSTM(64), layers.Dense(1)]
    model = axone.Sequential([layers.InputLayer(input_shape=INPUT[name])] + body)
    model.compile(loss="mse", optimizer="adam")
    return model


def _weights(layer):
    return [np.asarray(w) for w in layer.get_weights()]


def build_torch(name, model):
    """A PyTorch module computing the same function as the axone ``model`` (weights copied);
    it takes the same channels-last input."""
    import torch
    nn = torch.nn
    dense = [lay for lay in model.layers if type(lay).__name__ == "Dense"]

    def linear(lay):
        k, b = _weights(lay)
        m = nn.Linear(k.shape[0], k.shape[1])
        m.weight.data = torch.from_numpy(np.ascontiguousarray(k.T))
        m.bias.data = torch.from_numpy(b.copy())
        return m

    if name == "iris":
        mods = []
        for lay in dense[:-1]:
            mods += [linear(lay), nn.ReLU()]
        return nn.Sequential(*mods, linear(dense[-1]), nn.Softmax(dim=-1))
    if name == "lenet":
        convs = [lay for lay in model.layers if type(lay).__name__ == "Conv2D"]

        def conv(lay):
            k, b = _weights(lay)
            m = nn.Conv2d(k.shape[2], k.shape[3], k.shape[0])
            m.weight.data = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
            m.bias.data = torch.from_numpy(b.copy())
            return m

        class LeNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1, self.c2 = conv(convs[0]), conv(convs[1])
                self.d = nn.ModuleList(linear(lay) for lay in dense)

            def forward(self, x):                           # x: (N, H, W, C)
                x = x.permute(0, 3, 1, 2)
                x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
                x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
                x = x.permute(0, 2, 3, 1).flatten(1)        # flatten in (H, W, C) order, as Keras
                x = torch.relu(self.d[0](x))
                x = torch.relu(self.d[1](x))
                return torch.softmax(self.d[2](x), dim=-1)
        return LeNet()
    lstm = [lay for lay in model.layers if type(lay).__name__ == "LSTM"][0]
    k, rk, b = _weights(lstm)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(k.shape[0], rk.shape[0], batch_first=True)
            # Keras's gate order (i, f, c, o) is PyTorch's (i, f, g, o)
            self.rnn.weight_ih_l0.data = torch.from_numpy(np.ascontiguousarray(k.T))
            self.rnn.weight_hh_l0.data = torch.from_numpy(np.ascontiguousarray(rk.T))
            self.rnn.bias_ih_l0.data = torch.from_numpy(b.copy())
            self.rnn.bias_hh_l0.data = torch.zeros_like(self.rnn.bias_hh_l0)
            self.head = linear(dense[0])

        def forward(self, x):
            seq, _ = self.rnn(x)
            return self.head(seq[:, -1])
    return Net()


def onnx_session(net, x):
    """An onnxruntime session for ``net`` on inputs shaped like ``x``, or None (not installed,
    or the export failed)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import torch
    except ImportError:
        return None
    buf = io.BytesIO()
    try:
        torch.onnx.export(net, (torch.from_numpy(x),), buf, input_names=["x"], output_names=["y"],
                          dynamo=False)
    except TypeError:
        torch.onnx.export(net, (torch.from_numpy(x),), buf, input_names=["x"], output_names=["y"])
    except Exception as e:  # noqa: BLE001 -- report and skip the rows
        print(f"  onnx export failed ({type(e).__name__}: {e}); onnxruntime rows skipped")
        return None
    return onnxruntime.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])


def variants(name, batch):
    import torch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch,) + INPUT[name]).astype(np.float32)
    model = build_axone(name)
    net = build_torch(name, model).eval()
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        ref = net(xt).numpy()
    diff = float(np.max(np.abs(np.asarray(model.predict(x, verbose=0)) - ref)))
    out = {
        "axone predict": lambda: model.predict(x, verbose=0),
        "axone model(x)": lambda: model(x),
    }

    def torch_eager():
        with torch.inference_mode():
            return net(xt)
    out["torch eager"] = torch_eager
    sess = onnx_session(net, x)
    if sess is not None:
        out["onnxruntime"] = lambda: sess.run(None, {"x": x})
    return out, diff


def run(args, threads):
    _common.banner("inference latency: axone vs torch eager", threads)
    try:
        import onnxruntime  # noqa: F401
        import onnx  # noqa: F401
        print("onnxruntime: installed")
    except ImportError:
        print("onnxruntime (or onnx): not installed, its rows are skipped "
              "(pip install onnxruntime onnx)")
    rows = []
    for name in args.models:
        for batch in args.batches:
            fns, diff = variants(name, batch)
            pooled = {k: [] for k in fns}
            for r in range(args.rounds):
                order = list(fns) if r % 2 == 0 else list(fns)[::-1]
                for k in order:
                    pooled[k] += _common.per_call(fns[k], args.calls, warmup=min(3, args.calls))
            ref = statistics.median(pooled["torch eager"])
            for k, ts in pooled.items():
                med, fast = statistics.median(ts), min(ts)
                rows.append([name, batch, k, 1e6 * med, 1e6 * fast, med / ref, f"{diff:.1e}"])
            print(f"[{name} b{batch}] " + "  ".join(
                f"{k} {1e6 * statistics.median(ts):.0f} us" for k, ts in pooled.items()), flush=True)
    _common.table(["model", "batch", "variant", "median us/call", "fastest us/call",
                   "median / torch eager", "max |axone - torch|"], rows,
                  title=f"{args.rounds} rounds x {args.calls} calls per variant")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated among {MODELS}")
    p.add_argument("--batches", default="1,32", help="comma-separated batch sizes (default 1,32)")
    p.add_argument("--calls", type=int, default=200, help="calls per variant and round (default 200)")
    p.add_argument("--rounds", type=int, default=3)
    _common.add_thread_args(p)
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",")]
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        p.error(f"--models: unknown {bad}; expected names among {MODELS}")
    try:
        args.batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        p.error(f"--batches: expected comma-separated positive integers, received {args.batches!r}")
    if any(b < 1 for b in args.batches) or args.calls < 1 or args.rounds < 1:
        p.error("--batches, --calls and --rounds must be positive")
    import torch  # noqa: F401
    for threads in _common.thread_settings(args.threads):
        with _common.thread_scope(threads):
            run(args, threads)


if __name__ == "__main__":
    main()
