"""The ``axone`` command: ``axone demo`` trains the course networks on bundled data."""
import argparse
import sys


def _engine_demo(epochs=200, seed=0):
    """Train a 4 → 16 → 3 network on iris with the raw engine and plain gradient descent."""
    import numpy as np

    from . import Tensor, backend, ops
    from .datasets import load_iris

    backend.set_seed(seed)
    rng = backend.rng()
    x, y = load_iris()
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y1 = ops.one_hot(y, 3).data
    w1 = Tensor(rng.normal(0, 0.5, (4, 16)).astype("float32"), requires_grad=True)
    b1 = Tensor(np.zeros(16, "float32"), requires_grad=True)
    w2 = Tensor(rng.normal(0, 0.5, (16, 3)).astype("float32"), requires_grad=True)
    b2 = Tensor(np.zeros(3, "float32"), requires_grad=True)
    params = [w1, b1, w2, b2]
    lr = 0.5
    print("axone engine demo: iris, 4 -> 16 (tanh) -> 3 (softmax), full-batch gradient descent")
    for epoch in range(1, epochs + 1):
        logits = ops.dense(ops.tanh(ops.dense(x, w1, b1)), w2, b2)
        loss = ops.categorical_crossentropy(y1, logits, from_logits=True).mean()
        for p in params:
            p.zero_grad()
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
        if epoch == 1 or epoch % 20 == 0:
            acc = float((ops.argmax(logits, axis=-1).data == y).mean())
            print(f"epoch {epoch:4d}  loss {float(loss):.4f}  accuracy {acc:.3f}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="axone", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="train the course networks on the bundled data")
    d.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _engine_demo(epochs=args.epochs)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
