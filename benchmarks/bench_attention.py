"""Transformer encoder block training benchmark: axone vs PyTorch's nn.TransformerEncoderLayer.

Workload: one post-norm encoder block, d_model 128, 4 heads, sequence 64, batch 32, dropout 0:
  axone   x -> MultiHeadAttention(4, key_dim 32)(x, x) -> Add -> LayerNormalization(1e-5)
            -> Dense(512, relu) -> Dense(128) -> Add -> LayerNormalization(1e-5)
  torch   nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0, batch_first=True)
followed in both by the mean over the sequence and Dense(10), softmax cross-entropy, Adam
(lr 1e-3, eps 1e-7).  A round is ``--steps`` whole training steps (forward, backward, update) on
the same random data: ``Model.fit`` for axone, the usual zero_grad / backward / step loop for
torch.  Each library runs at its own defaults unless ``--threads`` says otherwise.

Usage: python benchmarks/bench_attention.py [--steps 10] [--rounds 7] [--threads 0]
                                            [--d 128] [--heads 4] [--seq 64] [--batch 32]
       python benchmarks/bench_attention.py --profile     # cProfile of axone's steps
Prints each round, then per framework the median and fastest round and the ratios axone/torch
of both (below 1: axone is faster).  Nothing here asserts.
"""
import argparse
import cProfile
import io
import os
import pstats
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

CLASSES = 10


def make_data(n, seq, d, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, seq, d), dtype=np.float32)
    y = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, n)]
    return x, y


def build_axone(d, heads, seq):
    import axone
    from axone import layers
    axone.utils.set_random_seed(0)
    inp = axone.Input((seq, d))
    a = layers.MultiHeadAttention(num_heads=heads, key_dim=d // heads)(inp, inp)
    x = layers.LayerNormalization(epsilon=1e-5)(layers.Add()([inp, a]))
    f = layers.Dense(4 * d, activation="relu")(x)
    f = layers.Dense(d)(f)
    x = layers.LayerNormalization(epsilon=1e-5)(layers.Add()([x, f]))
    x = layers.GlobalAveragePooling1D()(x)
    model = axone.Model(inp, layers.Dense(CLASSES, activation="softmax")(x))
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


class AxoneRunner:
    def __init__(self, x, y, d, heads, seq, batch):
        self.model = build_axone(d, heads, seq)
        self.x, self.y, self.b = x, y, batch
        self.model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, shuffle=False, verbose=0)

    def __call__(self):
        t = time.perf_counter()
        h = self.model.fit(self.x, self.y, batch_size=self.b, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - t, h.history["loss"][-1]


class TorchRunner:
    def __init__(self, x, y, d, heads, seq, batch):
        import torch
        nn = torch.nn
        torch.manual_seed(0)

        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = nn.TransformerEncoderLayer(d, heads, dim_feedforward=4 * d,
                                                        dropout=0.0, batch_first=True)
                self.head = nn.Linear(d, CLASSES)

            def forward(self, xb):
                return self.head(self.block(xb).mean(dim=1))

        self.net = Encoder()
        self.lossf = nn.CrossEntropyLoss()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3, eps=1e-7)
        self.x, self.y, self.b = torch.from_numpy(x), torch.from_numpy(y.argmax(1)), batch
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


def profile(args):
    x, y = make_data(args.steps * args.batch, args.seq, args.d)
    run = AxoneRunner(x, y, args.d, args.heads, args.seq, args.batch)
    run()
    prof = cProfile.Profile()
    prof.enable()
    run()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="training steps per round (default 10)")
    p.add_argument("--d", type=int, default=128, help="d_model (default 128)")
    p.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    p.add_argument("--seq", type=int, default=64, help="sequence length (default 64)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--profile", action="store_true", help="cProfile one round of axone's steps")
    _common.add_common_args(p, rounds=7, memory=False)
    args = p.parse_args(argv)
    if min(args.steps, args.rounds, args.d, args.heads, args.seq, args.batch) < 1:
        p.error("--steps, --rounds, --d, --heads, --seq and --batch must be positive")
    if args.d % args.heads:
        p.error(f"--d ({args.d}) must be a multiple of --heads ({args.heads})")
    settings = _common.thread_settings(args.threads)
    import torch  # noqa: F401  (imported before any thread setting is read)
    if args.profile:
        with _common.thread_scope(settings[0]):
            profile(args)
        return
    for threads in settings:
        with _common.thread_scope(threads):
            _common.banner(f"Transformer encoder block d{args.d} h{args.heads} s{args.seq} "
                           f"b{args.batch}: {args.steps} Adam steps a round", threads)
            x, y = make_data(args.steps * args.batch, args.seq, args.d)
            shape = (args.d, args.heads, args.seq, args.batch)
            runners = {"axone": AxoneRunner(x, y, *shape), "torch": TorchRunner(x, y, *shape)}
            stats = _common.compare("encoder block", runners, args.rounds)
            (ma, fa), (mt, ft) = stats["axone"], stats["torch"]
            print(f"per step: axone {1e3 * ma / args.steps:.2f} ms median "
                  f"({1e3 * fa / args.steps:.2f} fastest), torch {1e3 * mt / args.steps:.2f} ms "
                  f"({1e3 * ft / args.steps:.2f}); axone/torch {ma / mt:.2f} median, "
                  f"{fa / ft:.2f} fastest")


if __name__ == "__main__":
    main()
