"""Transfer learning with VGG16 (course 004, chapter 4): a frozen pre-trained convolutional base,
a new head, then fine-tuning of the last convolutional block at a low learning rate.

The data are the bundled handwritten digits (8x8, classes 0, 1 and 2), upscaled to SIZE x SIZE
and repeated on three channels so that they look like the RGB images VGG16 expects.

1. ``base = VGG16(include_top=False, weights=..., input_shape=(SIZE, SIZE, 3))``, frozen
   (``base.trainable = False``);
2. the course's head: GlobalMaxPooling2D, Dense(256, relu), Dense(3, softmax);
3. train the head for ``--epochs`` epochs;
4. unfreeze block5 (``layer.trainable = True`` for the block5 layers), recompile with a learning
   rate 100 times lower, fine-tune for ``--epochs`` more epochs;
5. evaluate on held-out digits and plot both phases' History (``OUT/history.png``, with
   matplotlib; without it the plot is skipped with a message).

``--weights`` is given to VGG16 as Keras takes it: ``none`` (random initialization, the
default: nothing to download), ``imagenet`` (Keras's notop weight file, downloaded once into the
cache), or the path of a weight file such as ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``.

This is plain Keras code:
    python -m axone run examples/transfer_learning.py          # keras -> axone
    python examples/transfer_learning.py                       # the same (installs the alias itself)
    EXAMPLE_BACKEND=keras KERAS_BACKEND=torch python examples/transfer_learning.py   # on Keras 3
Options: --epochs N  --weights none|imagenet|PATH  --out DIR  --size {32,48}  --samples N
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
if os.environ.get("EXAMPLE_BACKEND") != "keras":
    from axone.compat import install_keras_alias
    install_keras_alias()

import numpy as np

import keras
from keras import layers

from axone.datasets import load_digits   # the bundled data, also when running on Keras

CLASSES = (0, 1, 2)


def make_data(size=32, samples=None, seed=0):
    """Digits 0, 1, 2 as (n, size, size, 3) images with values 0..255, one-hot labels; 75 % for
    training, the rest held out."""
    x, y = load_digits()
    keep = np.isin(y, CLASSES)
    x, y = x[keep], y[keep]
    order = np.random.default_rng(seed).permutation(len(x))
    if samples is not None:
        order = order[:samples]
    x, y = x[order], y[order]
    factor = size // 8
    x = np.kron(x, np.ones((factor, factor), dtype=np.float32))        # nearest-neighbour upscale
    x = np.repeat(x[..., None] * (255.0 / 16.0), 3, axis=-1).astype("float32")
    x = keras.applications.vgg16.preprocess_input(x)                   # as VGG16 was trained
    y = keras.utils.to_categorical([CLASSES.index(int(c)) for c in y], len(CLASSES))
    split = int(0.75 * len(x))
    return (x[:split], y[:split]), (x[split:], y[split:])


def build_model(size, weights):
    base = keras.applications.vgg16.VGG16(include_top=False, weights=weights,
                                          input_shape=(size, size, 3))
    base.trainable = False                                  # frozen pre-trained model
    inputs = keras.Input(shape=(size, size, 3))
    x = base(inputs, training=False)
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    outputs = layers.Dense(len(CLASSES), activation="softmax")(x)
    return keras.Model(inputs, outputs), base


def unfreeze_block5(base):
    """The base trainable again, every layer but block5's frozen."""
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith("block5")


def n_trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def plot_history(histories, path):
    """Loss and accuracy of both phases, one after the other; needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no plot of the History")
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        start = 0
        for label, h in histories:
            n = len(h.history[metric])
            epochs = np.arange(start + 1, start + n + 1)
            ax.plot(epochs, h.history[metric], marker="o", label=f"{label} (train)")
            if "val_" + metric in h.history:
                ax.plot(epochs, h.history["val_" + metric], marker="x", linestyle="--",
                        label=f"{label} (validation)")
            start += n
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print("History plot written to", path)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description="VGG16 transfer learning on the bundled digits")
    p.add_argument("--epochs", type=int, default=4, help="epochs of each phase (default 4)")
    p.add_argument("--weights", default="none",
                   help="none (random initialization), imagenet, or a weight file path")
    p.add_argument("--out", default="transfer_learning_out", help="folder of the History plot")
    p.add_argument("--size", type=int, default=32, choices=(32, 48), help="image side")
    p.add_argument("--samples", type=int, default=None,
                   help="use only this many images (default: all 537 digits 0, 1, 2)")
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    weights = None if args.weights.lower() == "none" else args.weights
    keras.utils.set_random_seed(0)
    print("running on", "axone" if getattr(keras, "__axone_alias__", False)
          else f"Keras {keras.__version__} ({keras.backend.backend()} backend)")

    (x_train, y_train), (x_test, y_test) = make_data(args.size, args.samples)
    print(f"{len(x_train)} training and {len(x_test)} test images of {args.size}x{args.size}x3, "
          f"classes {CLASSES}; VGG16 weights: {weights}")
    model, base = build_model(args.size, weights)
    print(f"frozen base: {n_trainable(model):,} trainable of {model.count_params():,} parameters")

    t0 = time.perf_counter()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    h_head = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                       validation_split=0.2, verbose=2)
    t1 = time.perf_counter()

    unfreeze_block5(base)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-5),    # low learning rate
                  loss="categorical_crossentropy", metrics=["accuracy"])
    print(f"block5 unfrozen: {n_trainable(model):,} trainable parameters")
    h_fine = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                       validation_split=0.2, verbose=2)
    t2 = time.perf_counter()

    loss, acc = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    print(f"test loss {loss:.4f}  test accuracy {acc:.3f}  "
          f"(head {t1 - t0:.1f} s, fine-tuning {t2 - t1:.1f} s)")
    os.makedirs(args.out, exist_ok=True)
    plot = plot_history([("head", h_head), ("fine-tuning", h_fine)],
                        os.path.join(args.out, "history.png"))
    return {"model": model, "base": base, "history_head": h_head, "history_fine": h_fine,
            "test_loss": float(loss), "test_accuracy": float(acc), "plot": plot,
            "seconds": (t1 - t0, t2 - t1)}


if __name__ == "__main__":
    main()
