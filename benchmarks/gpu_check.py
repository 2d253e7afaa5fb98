"""The GPU checks, in one run of a few minutes on a machine with an NVIDIA GPU and CuPy.

  1. tests   the device suites on CuPy (AXONE_TEST_DEVICE=cupy): every op's forward and backward
             (tests/device/test_strict_ops, _nn, _conv_rnn, _image_ctc), whole graphs
             (_autograd) and models (_training), each on the GPU against the same run on the
             host, to float32 tolerance; the tests of the strict stand-in itself are skipped;
             test_prefetch: fit / evaluate / predict with the next batch copied on the
             prefetch thread's stream against the same runs without it.
  2. train   LeNet (32x32x1, Adam, sparse categorical cross-entropy) and an LSTM(32) -> Dense(1)
             (mse) trained for 2 epochs from the same seed on the GPU and on the CPU: every
             epoch's loss within 1e-3 relative.
  3. save    the LeNet trained on the GPU saved as .keras and as .weights.h5, loaded on the CPU:
             predictions within 1e-5 of the GPU model's; and loaded back under the GPU scope.
  4. speed   MNIST-size MLP epoch (60,000 x 784 -> 256 -> 10, batch 128), LeNet epoch (10,000,
             batch 64), ResNet50 training step (batch 64, 224x224x3), LSTM(256) epoch (5,000 x 50
             x 8, batch 64): axone on the GPU against PyTorch CUDA eager (when torch sees CUDA)
             and against axone on the CPU; medians of --rounds.  Goals: axone GPU <= 1.5x torch
             CUDA, and >= 10x faster than axone CPU on the ResNet50 step and the LSTM(256) epoch.
             With the LeNet workload: its epoch on the device with the next batch's copy
             overlapped (training._PREFETCH on) and without (off), medians of interleaved rounds.

Usage: python benchmarks/gpu_check.py [--only tests,train,save,speed] [--rounds 3] [--quick]
                                      [--device gpu:0] [--workloads mlp,lenet,resnet50,lstm]
``--quick`` shrinks the speed workloads (a tenth of the data, ResNet50 at batch 16) and skips
axone's CPU times of the two large ones.  ``--device cpu`` runs parts 2-4 with the CPU standing
in for the GPU (both sides on the CPU: a check of this script itself, not of a device).
Without CuPy or a visible GPU (and without ``--device cpu``) it says what is missing and exits 0.
Exit status 1 when a check fails.  Timing never asserts.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

SUITES = ["test_strict_ops.py", "test_strict_nn.py", "test_strict_conv_rnn.py",
          "test_strict_image_ctc.py", "test_strict_autograd.py", "test_strict_training.py",
          "test_prefetch.py"]
PARTS = ["tests", "train", "save", "speed"]


def _scope(device):
    import axone
    return axone.device(device)


# ------------------------------------------------------------------ 1. the device suites
def run_tests():
    env = dict(os.environ, AXONE_TEST_DEVICE="cupy")
    files = [os.path.join(ROOT, "tests", "device", f) for f in SUITES]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"] + files
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    out = (p.stdout + p.stderr).strip().splitlines()
    print(f"[tests] {' '.join(SUITES)} on CuPy: exit {p.returncode} in "
          f"{time.perf_counter() - t:.0f} s")
    for line in out[-40:]:
        print("  " + line)
    return p.returncode == 0


# ------------------------------------------------------------------ 2. and 3. train and save
def _lenet():
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((32, 32, 1)), layers.Conv2D(6, 5, activation="relu"),
                          layers.MaxPooling2D(2), layers.Conv2D(16, 5, activation="relu"),
                          layers.MaxPooling2D(2), layers.Flatten(),
                          layers.Dense(120, activation="relu"), layers.Dense(84, activation="relu"),
                          layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _lstm(units=32, steps=20, features=8):
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((steps, features)), layers.LSTM(units), layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 32, 32, 1), dtype=np.float32), rng.integers(0, 10, n)


def _sequences(n, steps=20, features=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, steps, features)).astype(np.float32)
    return x, x.sum(axis=(1, 2))[:, None].astype(np.float32) / steps


def _same_losses(what, cpu, dev, rtol=1e-3):
    a, b = np.asarray(cpu.history["loss"]), np.asarray(dev.history["loss"])
    ok = a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=1e-6)
    print(f"[train] {what}: CPU losses {np.round(a, 5).tolist()}  device {np.round(b, 5).tolist()}"
          f"  -> {'same' if ok else 'DIFFERENT'}")
    return ok


def run_train(device):
    ok = True
    x, y = _images(512)
    cpu = _lenet().fit(x, y, epochs=2, batch_size=64, shuffle=False, verbose=0)
    with _scope(device):
        dev = _lenet().fit(x, y, epochs=2, batch_size=64, shuffle=False, verbose=0)
    ok &= _same_losses("LeNet", cpu, dev)
    xs, ys = _sequences(256)
    cpu = _lstm().fit(xs, ys, epochs=2, batch_size=32, shuffle=False, verbose=0)
    with _scope(device):
        dev = _lstm().fit(xs, ys, epochs=2, batch_size=32, shuffle=False, verbose=0)
    ok &= _same_losses("LSTM(32)", cpu, dev)
    return bool(ok)


def run_save(device):
    import axone
    x, y = _images(256, seed=1)
    with _scope(device):
        model = _lenet()
        model.fit(x, y, epochs=1, batch_size=64, verbose=0)
        ref = model.predict(x[:32], verbose=0)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("lenet.keras", "lenet.weights.h5"):
            path = os.path.join(tmp, name)
            try:
                if name.endswith(".weights.h5"):
                    model.save_weights(path)
                    back = _lenet()
                    back.load_weights(path)
                else:
                    model.save(path)
                    back = axone.models.load_model(path)
                got = back.predict(x[:32], verbose=0)
                with _scope(device):
                    again = axone.models.load_model(path) if name.endswith(".keras") else None
                    if again is None:
                        again = _lenet()
                        again.load_weights(path)
                    got_dev = again.predict(x[:32], verbose=0)
                same = np.allclose(got, ref, rtol=1e-5, atol=1e-6) and \
                    np.allclose(got_dev, ref, rtol=1e-5, atol=1e-6)
                print(f"[save] {name}: saved on {device}, loaded on the CPU and back: "
                      f"max |diff| {np.abs(got - ref).max():.2e} / {np.abs(got_dev - ref).max():.2e}"
                      f" -> {'same' if same else 'DIFFERENT'}")
            except Exception as e:          # noqa: BLE001 -- a failed check is reported, not raised
                same = False
                print(f"[save] {name}: FAILED: {type(e).__name__}: {e}")
            ok &= same
    return bool(ok)


# ------------------------------------------------------------------ 4. speed
def _mlp():
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((784,)), layers.Dense(256, activation="relu"),
                          layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def _resnet50(batch, size):
    import axone
    import axone.applications  # noqa: F401 -- the zoo is imported on demand
    axone.utils.set_random_seed(0)
    m = axone.applications.ResNet50(weights=None, input_shape=(size, size, 3), classes=10)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def _workloads(quick):
    rng = np.random.default_rng(0)
    n_mlp, n_lenet, n_lstm = (6000, 1000, 500) if quick else (60000, 10000, 5000)
    rb = 16 if quick else 64
    return {
        "MLP epoch": (_mlp, rng.random((n_mlp, 784), dtype=np.float32),
                      rng.integers(0, 10, n_mlp), 128, "fit"),
        "LeNet epoch": (_lenet, *_images(n_lenet), 64, "fit"),
        "ResNet50 step": (lambda: _resnet50(rb, 224), rng.random((rb, 224, 224, 3), dtype=np.float32),
                          rng.integers(0, 10, rb), rb, "step"),
        "LSTM(256) epoch": (lambda: _lstm(256, 50, 8), *_sequences(n_lstm, 50, 8), 64, "fit"),
    }


def _time_axone(build, x, y, batch, kind, device, rounds):
    scope = _scope(device) if device else _NoScope()
    with scope:
        model = build()
        if kind == "fit":
            model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)   # warm-up
        else:
            model.train_on_batch(x, y)
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            if kind == "fit":
                model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
            else:
                model.train_on_batch(x, y)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


class _NoScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__} sees no CUDA device (a CPU build?)"
    return torch, None


def _time_torch(torch, name, x, y, batch, rounds):
    nn = torch.nn
    dev = torch.device("cuda")
    torch.manual_seed(0)
    if name == "MLP epoch":
        net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        prep = lambda a: torch.from_numpy(a)                                   # noqa: E731
    elif name == "LeNet epoch":
        net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120),
                            nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        prep = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    elif name == "LSTM(256) epoch":
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn, self.head = nn.LSTM(8, 256, batch_first=True), nn.Linear(256, 1)

            def forward(self, a):
                return self.head(self.rnn(a)[0][:, -1])
        net = Net()
        prep = lambda a: torch.from_numpy(a)                                   # noqa: E731
    else:
        try:
            import torchvision
            net = torchvision.models.resnet50(num_classes=10)
        except Exception as e:              # noqa: BLE001
            print(f"[speed] {name}: torchvision unavailable ({type(e).__name__}); no torch time")
            return None
        prep = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    net = net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    regression = name.startswith("LSTM")
    lossf = nn.MSELoss() if regression else nn.CrossEntropyLoss()
    xt = prep(x).to(dev)
    yt = torch.from_numpy(np.asarray(y, np.float32 if regression else np.int64)).to(dev)
    whole = name.endswith("step")

    def epoch():
        for i in range(0, len(xt), len(xt) if whole else batch):
            j = len(xt) if whole else i + batch
            opt.zero_grad()
            loss = lossf(net(xt[i:j]), yt[i:j])
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
    epoch()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _time_prefetch(device, rounds, quick):
    """LeNet epochs on ``device`` with the next batch copied ahead (training._PREFETCH) and
    without, the same model, rounds interleaved; medians printed."""
    from axone.models import training
    x, y = _images(1000 if quick else 10000)
    before = training._PREFETCH
    times = {True: [], False: []}
    try:
        with _scope(device):
            model = _lenet()
            model.fit(x[:64], y[:64], batch_size=64, epochs=1, verbose=0)         # warm-up
            for _ in range(rounds):
                for on in (True, False):
                    training._PREFETCH = on
                    t = time.perf_counter()
                    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
                    times[on].append(time.perf_counter() - t)
    finally:
        training._PREFETCH = before
    t_on, t_off = statistics.median(times[True]), statistics.median(times[False])
    note = "  (a CPU model never prefetches: both the same path)" if device == "cpu" else ""
    print(f"  LeNet epoch prefetch on {t_on:.3f} s, off {t_off:.3f} s (off/on "
          f"{t_off / t_on:.2f}){note}", flush=True)


def run_speed(device, rounds, quick, names=None):
    torch, why = _torch_cuda() if device != "cpu" else (None, "--device cpu")
    if torch is None:
        print(f"[speed] no PyTorch CUDA comparison: {why}")
    print(f"[speed] medians of {rounds} rounds, seconds")
    print(f"  {'workload':16s} {'axone ' + device:>14s} {'torch cuda':>11s} {'axone cpu':>10s} "
          f"{'/torch':>7s} {'cpu/dev':>8s}")
    for name, (build, x, y, batch, kind) in _workloads(quick).items():
        if names is not None and name.split()[0].split("(")[0].lower() not in names:
            continue
        t_dev = _time_axone(build, x, y, batch, kind, device, rounds)
        t_torch = _time_torch(torch, name, x, y, batch, rounds) if torch is not None else None
        large = name.startswith(("ResNet50", "LSTM"))
        t_cpu = None
        if not (quick and large):
            t_cpu = _time_axone(build, x, y, batch, kind, None, 1 if large else rounds)
        r_torch = f"{t_dev / t_torch:7.2f}" if t_torch else "      -"
        r_cpu = f"{t_cpu / t_dev:8.1f}" if t_cpu else "       -"
        print(f"  {name:16s} {t_dev:14.3f} {t_torch if t_torch else float('nan'):11.3f} "
              f"{t_cpu if t_cpu else float('nan'):10.3f} {r_torch} {r_cpu}", flush=True)
    if names is None or "lenet" in names:
        _time_prefetch(device, rounds, quick)
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(PARTS), help="parts to run: " + ",".join(PARTS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="gpu:0", help="gpu:N, or cpu to check this script itself")
    p.add_argument("--workloads", default="mlp,lenet,resnet50,lstm",
                   help="speed workloads: mlp,lenet,resnet50,lstm")
    args = p.parse_args(argv)
    parts = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in parts if s not in PARTS]
    if bad or args.rounds < 1:
        p.error(f"--only takes {','.join(PARTS)} (received {bad}); --rounds >= 1")
    from axone import device as dev
    if args.device != "cpu":
        if not dev.gpu_available():
            cupy = dev._probe_gpu()
            print(f"gpu_check: no usable GPU here ({cupy[2] or 'CuPy sees no device'}); nothing "
                  f"was checked. Install the extra (pip install 'axone[gpu]') on a machine with "
                  f"an NVIDIA GPU and run this again.")
            return 0
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        print(f"gpu_check: {props['name'].decode() if isinstance(props['name'], bytes) else props['name']}, "
              f"CuPy {cupy.__version__}")
    elif "tests" in parts:
        parts.remove("tests")
        print("gpu_check: --device cpu: the device suites need a GPU; skipped")
    results = {}
    for part in parts:
        t = time.perf_counter()
        if part == "tests":
            results[part] = run_tests()
        elif part == "train":
            results[part] = run_train(args.device)
        elif part == "save":
            results[part] = run_save(args.device)
        else:
            results[part] = run_speed(args.device, args.rounds, args.quick,
                                      [w.strip().lower() for w in args.workloads.split(",")])
        print(f"[{part}] {'ok' if results[part] else 'FAILED'} ({time.perf_counter() - t:.0f} s)\n",
              flush=True)
    print("gpu_check: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
