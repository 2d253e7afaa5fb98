"""The model zoo against torchvision: inference of ResNet50 and MobileNetV2, and a training step
of a frozen VGG16 base under the course's transfer-learning head.

Workloads (random weights in both frameworks, each at its library defaults; the two do not share
weights, so only times and memory are compared)
  resnet50      ResNet50 (axone.applications, weights=None) vs torchvision.models.resnet50()
                in eval mode under torch.inference_mode(); batch 1 and 8 of 224x224x3
  mobilenet_v2  MobileNetV2 (alpha 1.0) vs torchvision.models.mobilenet_v2(), the same way
  vgg16_head    one optimizer step (train_on_batch) of the course's transfer model: VGG16
                include_top=False frozen (base.trainable = False, called with training=False),
                GlobalMaxPooling2D, Dense(256, relu), Dense(10, softmax), Adam(1e-3),
                categorical cross-entropy; torchvision: vgg16().features frozen in eval mode,
                AdaptiveMaxPool2d(1), Linear(512, 256), ReLU, Linear(256, 10), Adam(1e-3),
                CrossEntropyLoss; batch --train-batch of --train-size x --train-size x 3

Usage: python benchmarks/bench_applications.py [--workloads resnet50,mobilenet_v2,vgg16_head]
           [--batches 1,8] [--size 224] [--train-size 64] [--train-batch 16] [--calls 3]
           [--rounds 3] [--threads 0] [--no-memory]
Each round times ``--calls`` calls of each framework (after one untimed warm-up call), the
order alternating from round to round (benchmarks/_common.py); the table gives the median and
the fastest round's seconds per call and each framework's peak RSS, measured in a fresh child
process per framework that builds the model and makes the same calls.  torchvision is imported
only here and only when it works: when ``import torchvision.models`` fails (not installed, or
built for another torch), the reason is printed and only axone's rows are measured.  On a
shared machine the figures are indicative.  Nothing here asserts.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

WORKLOADS = ["resnet50", "mobilenet_v2", "vgg16_head"]
CLASSES = 10


def torchvision_models():
    """(torchvision.models, None), or (None, why it cannot be used)."""
    try:
        import torchvision.models as tvm
    except ImportError as e:
        return None, f"torchvision is not installed ({e}); pip install torchvision"
    except Exception as e:  # noqa: BLE001 -- a wheel built for another torch fails here
        import glob
        import importlib.util
        spec = importlib.util.find_spec("torchvision")
        hint = ""
        if spec is not None and spec.submodule_search_locations:
            libs = glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "_C*.so"))
            if libs:
                try:
                    import ctypes
                    import torch  # noqa: F401 -- its libraries first
                    ctypes.CDLL(libs[0])
                except OSError as le:
                    hint = f"; its compiled operators do not load: {le}"
        return None, (f"torchvision is installed but does not import with this torch "
                      f"({type(e).__name__}: {e}{hint})")
    return tvm, None


# ------------------------------------------------------------------ models
def axone_inference(workload, size):
    import axone  # noqa: F401
    from axone import applications
    axone.utils.set_random_seed(0)
    cls = {"resnet50": applications.ResNet50, "mobilenet_v2": applications.MobileNetV2}[workload]
    return cls(weights=None, input_shape=(size, size, 3))


def torch_inference(workload):
    tvm, why = torchvision_models()
    if tvm is None:
        raise RuntimeError(why)
    import torch
    torch.manual_seed(0)
    return {"resnet50": tvm.resnet50, "mobilenet_v2": tvm.mobilenet_v2}[workload]().eval()


def axone_head(size):
    import axone
    import axone.applications  # noqa: F401
    from axone import layers
    axone.utils.set_random_seed(0)
    base = axone.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    base.trainable = False
    inputs = axone.Input(shape=(size, size, 3))
    x = base(inputs, training=False)
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    model = axone.Model(inputs, layers.Dense(CLASSES, activation="softmax")(x))
    model.compile(optimizer=axone.optimizers.Adam(learning_rate=1e-3),
                  loss="categorical_crossentropy")
    return model


def torch_head():
    tvm, why = torchvision_models()
    if tvm is None:
        raise RuntimeError(why)
    import torch
    nn = torch.nn
    torch.manual_seed(0)
    base = tvm.vgg16().features.eval()
    for p in base.parameters():
        p.requires_grad_(False)
    head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(512, 256), nn.ReLU(),
                         nn.Linear(256, CLASSES))
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, labels):
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            feats = base(x)
        loss = loss_fn(head(feats), labels)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def _data(batch, size, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, size, size, 3), dtype=np.float32)
    labels = rng.integers(0, CLASSES, batch)
    return x, labels


def make_call(framework, workload, batch, size, train_size):
    """A function making one call of ``workload`` for ``framework`` (built here)."""
    if workload == "vgg16_head":
        x, labels = _data(batch, train_size)
        if framework == "axone":
            model = axone_head(train_size)
            y = np.eye(CLASSES, dtype=np.float32)[labels]
            return lambda: model.train_on_batch(x, y)
        import torch
        step = torch_head()
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        lt = torch.from_numpy(labels)
        return lambda: step(xt, lt)
    x, _ = _data(batch, size)
    if framework == "axone":
        model = axone_inference(workload, size)
        return lambda: model.predict(x, batch_size=batch, verbose=0)
    import torch
    net = torch_inference(workload)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def call():
        with torch.inference_mode():
            return net(xt)
    return call


def child(framework, workload, batch, size, train_size, calls):
    """What the peak-RSS child runs: build, one warm-up call and ``calls`` calls."""
    f = make_call(framework, workload, batch, size, train_size)
    for _ in range(calls + 1):
        f()
    return framework


def run(args, threads):
    _common.banner("model zoo: axone vs torchvision", threads)
    tvm, why = torchvision_models()
    if tvm is None:
        print(f"torchvision rows skipped: {why}")
    else:
        import torchvision
        print(f"torchvision {torchvision.__version__}")
    frameworks = ["axone"] + (["torchvision"] if tvm is not None else [])
    for workload in args.workloads:
        batches = [args.train_batch] if workload == "vgg16_head" else args.batches
        for batch in batches:
            shape = args.train_size if workload == "vgg16_head" else args.size
            name = f"{workload} b{batch} {shape}x{shape}x3" + \
                (" train step" if workload == "vgg16_head" else " inference")
            calls = {k: make_call(k, workload, batch, args.size, args.train_size)
                     for k in frameworks}
            for f in calls.values():
                f()                                              # warm-up

            def runner(f):
                def timed():
                    t, _ = _common.timed(lambda: [f() for _ in range(args.calls)])
                    return t / args.calls
                return timed
            memory = None
            if not args.no_memory:
                memory = _common.memory_runner(
                    os.path.abspath(__file__), threads, workload=workload, batch=batch,
                    size=args.size, train_size=args.train_size, calls=args.calls)
            _common.compare(name, {k: runner(f) for k, f in calls.items()}, args.rounds,
                            memory=memory, unit="s")


def _ints(text, what):
    try:
        out = [int(t) for t in str(text).split(",")]
    except ValueError:
        raise SystemExit(f"{what}: expected integers separated by commas, received {text!r}")
    if any(v < 1 for v in out):
        raise SystemExit(f"{what}: expected positive integers, received {text!r}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated among {WORKLOADS}")
    p.add_argument("--batches", default="1,8", help="inference batch sizes (default 1,8)")
    p.add_argument("--size", type=int, default=224, help="inference image side (default 224)")
    p.add_argument("--train-size", type=int, default=64,
                   help="image side of the vgg16_head step (default 64)")
    p.add_argument("--train-batch", type=int, default=16,
                   help="batch of the vgg16_head step (default 16)")
    p.add_argument("--calls", type=int, default=3, help="calls per round (default 3)")
    _common.add_common_args(p, rounds=3)
    args = p.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    bad = [w for w in args.workloads if w not in WORKLOADS]
    if bad or not args.workloads:
        p.error(f"--workloads: unknown {bad}; choose among {WORKLOADS}")
    args.batches = _ints(args.batches, "--batches")
    for opt in ("size", "train_size"):
        if getattr(args, opt) < 32:
            p.error(f"--{opt.replace('_', '-')}: the applications need an image side of at "
                    f"least 32, received {getattr(args, opt)}")
    if args.calls < 1 or args.rounds < 1 or args.train_batch < 1:
        p.error("--calls, --rounds and --train-batch must be at least 1")
    for threads in _common.thread_settings(args.threads):
        with _common.thread_scope(threads):
            run(args, threads)


if __name__ == "__main__":
    main()
