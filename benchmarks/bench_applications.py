"""The model zoo against PyTorch: inference of ResNet50 and MobileNetV2, and one training epoch
of a frozen VGG16 base under the course's transfer-learning head.

Workloads (random weights in both frameworks, each at its library defaults; the two do not share
weights, so only times and memory are compared)
  resnet50      ResNet50 (axone.applications, weights=None) vs torchvision's resnet50() in eval
                mode under torch.inference_mode(); batch 1 and 16 of 224x224x3
  mobilenet_v2  MobileNetV2 (alpha 1.0) vs torchvision's mobilenet_v2(), the same way
  vgg16_head    one epoch of the course's transfer model on --train-images random images of
                --train-size x --train-size x 3 in batches of --train-batch (default 1,000
                images of 96x96x3, batch 32): VGG16 include_top=False frozen
                (base.trainable = False, called with training=False), GlobalMaxPooling2D,
                Dense(256, relu), Dense(10, softmax), Adam(1e-3), categorical cross-entropy,
                trained with ``fit(epochs=1)``; PyTorch: vgg16().features frozen in eval mode,
                AdaptiveMaxPool2d(1), Linear(512, 256), ReLU, Linear(256, 10), Adam(1e-3),
                CrossEntropyLoss, the usual loop over a fresh permutation of the same images
                (both shuffle once per epoch; the last batch is the remainder)

PyTorch's models come from torchvision when ``import torchvision.models`` works; otherwise (not
installed, or a wheel built for another torch) the reason is printed and the same architectures
are built here in plain torch.nn, layer for layer and initialised as torchvision defines them
(ResNet50 v1.5 with the stride on the Bottleneck's 3x3 conv; MobileNetV2 at width 1.0 with
inverted residuals, ReLU6 and a last channel of 1280; VGG16 configuration "D").  Their
parameter counts are checked against torchvision's (ResNet50 25,557,032; MobileNetV2 3,504,872;
VGG16 features 14,714,688) and printed; the PyTorch rows are labelled "torchvision" or
"torch.nn" after the source used.

Usage: python benchmarks/bench_applications.py [--workloads resnet50,mobilenet_v2,vgg16_head]
           [--batches 1,16] [--size 224] [--train-size 96] [--train-batch 32]
           [--train-images 1000] [--calls 3] [--epochs 1] [--rounds 3] [--threads 0]
           [--no-memory]
Each round times ``--calls`` inference calls (``--epochs`` epochs for vgg16_head) of each
framework after one untimed warm-up call (one training batch for vgg16_head), the order
alternating from round to round (benchmarks/_common.py); the table gives the median and the
fastest round's seconds per call (per epoch) and each framework's peak RSS, measured in a fresh
child process per framework that builds the model and makes the same calls.  On a shared
machine the figures are indicative.  Nothing here asserts.
"""
import argparse
import functools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

WORKLOADS = ["resnet50", "mobilenet_v2", "vgg16_head"]
CLASSES = 10


@functools.lru_cache(maxsize=None)
def torchvision_models():
    """(torchvision.models, None), or (None, why it cannot be used); asked once a process."""
    try:
        import torchvision.models as tvm
    except ImportError as e:
        return None, f"torchvision is not installed ({e})"
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


def torch_source():
    """("torchvision", None) when torchvision imports, ("torch.nn", why not) when only torch
    does, (None, why) without torch."""
    try:
        import torch  # noqa: F401
    except ImportError as e:
        return None, f"torch is not installed ({e})"
    tvm, why = torchvision_models()
    return ("torchvision", None) if tvm is not None else ("torch.nn", why)


# ------------------------------------------ torchvision's architectures in torch.nn
# Used when torchvision does not import.  Layer for layer as torchvision.models defines them
# (and initialised as it does), so the parameter counts are torchvision's own:
PARAMETERS = {"resnet50": 25_557_032, "mobilenet_v2": 3_504_872, "vgg16_features": 14_714_688}
VGG16_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
           512, 512, 512, "M"]


def _torch_resnet50(num_classes=1000):
    """ResNet50 v1.5 (torchvision.models.resnet50): a 7x7/2 conv, BN, ReLU, 3x3/2 max-pool,
    then [3, 4, 6, 3] Bottlenecks of widths 64, 128, 256, 512 (1x1 -> 3x3 with the stride ->
    1x1 to 4 x width, each conv bias-free and followed by BN; out = ReLU(F(x) + shortcut(x)),
    the shortcut a strided 1x1 conv + BN when the shape changes), global average pooling and
    Linear(2048, num_classes).  Convs: Kaiming normal (fan_out, ReLU); BN: weight 1, bias 0."""
    import torch
    nn = torch.nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + identity)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            self.layer1 = self._layer(64, 3)
            self.layer2 = self._layer(128, 4, stride=2)
            self.layer3 = self._layer(256, 6, stride=2)
            self.layer4 = self._layer(512, 3, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * 4, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

        def _layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * 4:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes * 4))
            layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * 4
            layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


def _torch_mobilenet_v2(num_classes=1000):
    """MobileNetV2 at width 1.0 (torchvision.models.mobilenet_v2): a 3x3/2 conv to 32 channels,
    the inverted residuals (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1)
    (6,160,3,2) (6,320,1,1) -- 1x1 expansion to t x in channels (when t != 1), 3x3 depthwise
    with the stride, linear 1x1 projection, each conv bias-free with BN, ReLU6 after the first
    two; x + F(x) when the stride is 1 and in == out channels -- a 1x1 conv to 1280, global
    average pooling, Dropout(0.2) and Linear(1280, num_classes).  Convs: Kaiming normal
    (fan_out); BN: weight 1, bias 0; Linear: N(0, 0.01), bias 0."""
    import torch
    nn = torch.nn

    def conv_bn(inp, oup, kernel, stride=1, groups=1):
        return nn.Sequential(
            nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, t):
            super().__init__()
            hidden = int(round(inp * t))
            self.use_res_connect = stride == 1 and inp == oup
            layers = [conv_bn(inp, hidden, 1)] if t != 1 else []
            layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                       nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
            inp, features = 32, [conv_bn(3, 32, 3, stride=2)]
            for t, c, n, s in settings:
                for i in range(n):
                    features.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                    inp = c
            features.append(conv_bn(inp, 1280, 1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(1280, num_classes))
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    return MobileNetV2()


def _torch_vgg16_features():
    """VGG16's convolutional base, configuration "D" (torchvision.models.vgg16().features):
    3x3 convs with bias, padding 1, each followed by ReLU, in blocks of 64, 64 | 128, 128 |
    256 x 3 | 512 x 3 | 512 x 3 channels, a 2x2/2 max-pool after each block.  Convs: Kaiming
    normal (fan_out, ReLU), bias 0."""
    import torch
    nn = torch.nn
    layers, inp = [], 3
    for v in VGG16_D:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            conv = nn.Conv2d(inp, v, kernel_size=3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(conv.bias, 0)
            layers += [conv, nn.ReLU(inplace=True)]
            inp = v
    return nn.Sequential(*layers)


def torch_model(name):
    """The PyTorch model ``name`` (resnet50, mobilenet_v2 or vgg16_features) from torchvision
    when it imports, else from the torch.nn definitions above, seeded with 0; its parameter
    count must be torchvision's (RuntimeError otherwise)."""
    import torch
    torch.manual_seed(0)
    tvm, _ = torchvision_models()
    if tvm is not None:
        model = {"resnet50": tvm.resnet50, "mobilenet_v2": tvm.mobilenet_v2,
                 "vgg16_features": lambda: _torchvision_vgg16_features(tvm)}[name]()
    else:
        model = {"resnet50": _torch_resnet50, "mobilenet_v2": _torch_mobilenet_v2,
                 "vgg16_features": _torch_vgg16_features}[name]()
    n = count_parameters(model)
    if n != PARAMETERS[name]:
        raise RuntimeError(f"{name}: expected torchvision's {PARAMETERS[name]:,} parameters, "
                           f"the model built has {n:,}")
    return model


def _torchvision_vgg16_features(tvm):
    """torchvision's vgg16().features without building (and holding in the peak RSS) the
    138M-parameter classifier: its make_layers("D") initialised as VGG.__init__ does."""
    import torch
    vgg = getattr(tvm, "vgg", None)
    if vgg is None or not hasattr(vgg, "make_layers") or "D" not in getattr(vgg, "cfgs", {}):
        return tvm.vgg16().features
    features = vgg.make_layers(vgg.cfgs["D"], batch_norm=False)
    for m in features.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.constant_(m.bias, 0)
    return features


def count_parameters(model):
    """sum over the parameters of their element counts."""
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------ models
def axone_inference(workload, size):
    import axone  # noqa: F401
    from axone import applications
    axone.utils.set_random_seed(0)
    cls = {"resnet50": applications.ResNet50, "mobilenet_v2": applications.MobileNetV2}[workload]
    return cls(weights=None, input_shape=(size, size, 3))


def torch_inference(workload):
    return torch_model(workload).eval()


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
    """One optimizer step ``step(x, labels)`` of the frozen VGG16 features under the head."""
    import torch
    nn = torch.nn
    base = torch_model("vgg16_features").eval()
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


def make_call(framework, workload, batch, size, train_size, train_images=1000):
    """(call, warm_up) for ``framework`` ("axone", or a PyTorch one) and ``workload``, built
    here.  Inference: both are one forward of ``batch`` images.  vgg16_head: ``call`` is one
    epoch over ``train_images`` images in batches of ``batch``, ``warm_up`` one batch."""
    if workload == "vgg16_head":
        x, labels = _data(train_images, train_size)
        if framework == "axone":
            model = axone_head(train_size)
            y = np.eye(CLASSES, dtype=np.float32)[labels]

            def epoch():
                return model.fit(x, y, batch_size=batch, epochs=1, verbose=0)

            def warm_up():
                return model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)
            return epoch, warm_up
        import torch
        step = torch_head()
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        lt = torch.from_numpy(labels)

        def epoch():
            perm = torch.randperm(train_images)
            for i in range(0, train_images, batch):
                idx = perm[i:i + batch]
                step(xt[idx], lt[idx])
        return epoch, lambda: step(xt[:batch], lt[:batch])
    x, _ = _data(batch, size)
    if framework == "axone":
        model = axone_inference(workload, size)

        def call():
            return model.predict(x, batch_size=batch, verbose=0)
        return call, call
    import torch
    net = torch_inference(workload)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def call():
        with torch.inference_mode():
            return net(xt)
    return call, call


def child(framework, workload, batch, size, train_size, calls, train_images=1000):
    """What the peak-RSS child runs: build, one warm-up call and ``calls`` calls."""
    f, warm_up = make_call(framework, workload, batch, size, train_size, train_images)
    warm_up()
    for _ in range(calls):
        f()
    return framework


def describe_torch(workloads):
    """The lines saying where PyTorch's models come from, with their parameter counts."""
    source, why = torch_source()
    if source is None:
        return None, [f"PyTorch rows skipped: {why}"]
    if source == "torchvision":
        import torchvision
        lines = [f"PyTorch models: torchvision {torchvision.__version__}"]
    else:
        lines = [f"PyTorch models: torch.nn, torchvision's architecture ({why})"]
    names = [w if w != "vgg16_head" else "vgg16_features" for w in workloads]
    counts = ", ".join(f"{n} {count_parameters(torch_model(n)):,}" for n in names)
    lines.append(f"PyTorch parameters (equal to torchvision's): {counts}")
    return source, lines


def run(args, threads):
    _common.banner("model zoo: axone vs PyTorch", threads)
    source, lines = describe_torch(args.workloads)
    print("\n".join(lines), flush=True)
    frameworks = ["axone"] + ([source] if source is not None else [])
    for workload in args.workloads:
        train = workload == "vgg16_head"
        batches = [args.train_batch] if train else args.batches
        for batch in batches:
            if train:
                name = (f"{workload} b{batch} {args.train_size}x{args.train_size}x3 "
                        f"epoch of {args.train_images}")
            else:
                name = f"{workload} b{batch} {args.size}x{args.size}x3 inference"
            calls = args.epochs if train else args.calls
            made = {k: make_call(k, workload, batch, args.size, args.train_size,
                                 args.train_images) for k in frameworks}
            for _, warm_up in made.values():
                warm_up()

            def runner(f, calls=calls):
                def timed():
                    t, _ = _common.timed(lambda: [f() for _ in range(calls)])
                    return t / calls
                return timed
            memory = None
            if not args.no_memory:
                memory = _common.memory_runner(
                    os.path.abspath(__file__), threads, workload=workload, batch=batch,
                    size=args.size, train_size=args.train_size, calls=calls,
                    train_images=args.train_images)
            _common.compare(name, {k: runner(f) for k, (f, _) in made.items()}, args.rounds,
                            memory=memory, unit="s")
            del made


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
    p.add_argument("--batches", default="1,16", help="inference batch sizes (default 1,16)")
    p.add_argument("--size", type=int, default=224, help="inference image side (default 224)")
    p.add_argument("--train-size", type=int, default=96,
                   help="image side of the vgg16_head epoch (default 96)")
    p.add_argument("--train-batch", type=int, default=32,
                   help="batch of the vgg16_head epoch (default 32)")
    p.add_argument("--train-images", type=int, default=1000,
                   help="images in the vgg16_head epoch (default 1000)")
    p.add_argument("--calls", type=int, default=3,
                   help="inference calls per round (default 3)")
    p.add_argument("--epochs", type=int, default=1,
                   help="vgg16_head epochs per round (default 1)")
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
    for opt in ("calls", "epochs", "rounds", "train_batch", "train_images"):
        if getattr(args, opt) < 1:
            p.error(f"--{opt.replace('_', '-')}: expected at least 1, "
                    f"received {getattr(args, opt)}")
    for threads in _common.thread_settings(args.threads):
        with _common.thread_scope(threads):
            run(args, threads)


if __name__ == "__main__":
    main()
