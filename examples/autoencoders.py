"""Autoencoders on the bundled digits: Dense, convolutional (two decoders) and denoising.

The digits (8x8, values 0..16) are scaled to [0, 1] and, with ``--size``, resized with
``keras.ops.image.resize`` (bilinear) to SIZE x SIZE. Each model is trained to give back its input:

1. ``dense``: Flatten, Dense(64, relu), Dense(LATENT, relu) | Dense(64, relu),
   Dense(SIZE*SIZE, sigmoid), Reshape; binary cross-entropy against the input;
2. ``conv_transpose``: a Conv2D encoder (two stride-2 convolutions, SIZE -> SIZE/4) and a
   Conv2DTranspose decoder (two stride-2 transposed convolutions back to SIZE);
3. ``conv_upsampling``: the same kind of encoder, decoded with UpSampling2D + Conv2D;
4. ``denoising``: the Conv2DTranspose autoencoder fitted on noisy inputs
   (``x + NOISE * N(0, 1)``, clipped to [0, 1]) with the clean images as targets.

Plots (with matplotlib; without it they are skipped with a message): ``OUT/<model>.png``, test
inputs on the top row and their reconstructions below (for ``denoising``: noisy input, output,
clean image).

This is plain Keras code:
    python -m axone run examples/autoencoders.py          # keras -> axone
    python examples/autoencoders.py                       # the same (installs the alias itself)
    EXAMPLE_BACKEND=keras KERAS_BACKEND=torch python examples/autoencoders.py   # on Keras 3
Options: --epochs N  --samples N  --size S (a multiple of 4)  --batch-size N  --noise F
         --models dense,conv_transpose,conv_upsampling,denoising  --out DIR
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
if os.environ.get("EXAMPLE_BACKEND") != "keras":
    from axone.compat import install_keras_alias
    install_keras_alias()

import numpy as np

import keras
from keras import layers, ops

from axone.datasets import load_digits   # the bundled data, also when running on Keras

MODELS = ("dense", "conv_transpose", "conv_upsampling", "denoising")
LATENT = 16


def make_data(size=8, samples=None, seed=0):
    """Digits as (n, size, size, 1) float32 images in [0, 1] with their labels; 80 % for
    training, the rest held out."""
    x, y = load_digits()
    order = np.random.default_rng(seed).permutation(len(x))
    if samples is not None:
        order = order[:samples]
    x, y = x[order, :, :, None] / 16.0, y[order]
    if size != 8:
        x = ops.image.resize(x.astype("float32"), (size, size), interpolation="bilinear")
        x = np.clip(ops.convert_to_numpy(x), 0.0, 1.0)
    x = x.astype("float32")
    split = int(0.8 * len(x))
    return (x[:split], y[:split]), (x[split:], y[split:])


def add_noise(x, noise, seed=1):
    """Gaussian noise on the inputs, clipped back into [0, 1]."""
    noisy = x + noise * np.random.default_rng(seed).normal(size=x.shape)
    return np.clip(noisy, 0.0, 1.0).astype("float32")


def dense_autoencoder(size):
    inputs = keras.Input(shape=(size, size, 1))
    x = layers.Flatten()(inputs)
    x = layers.Dense(64, activation="relu")(x)
    encoded = layers.Dense(LATENT, activation="relu", name="code")(x)
    x = layers.Dense(64, activation="relu")(encoded)
    x = layers.Dense(size * size, activation="sigmoid")(x)
    outputs = layers.Reshape((size, size, 1))(x)
    return keras.Model(inputs, outputs, name="dense_autoencoder")


def conv_encoder(inputs):
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    return layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)


def conv_transpose_autoencoder(size, name="conv_transpose_autoencoder"):
    inputs = keras.Input(shape=(size, size, 1))
    x = conv_encoder(inputs)                                             # size/4 x size/4 x 32
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(x)
    outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name=name)


def conv_upsampling_autoencoder(size):
    inputs = keras.Input(shape=(size, size, 1))
    x = conv_encoder(inputs)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="conv_upsampling_autoencoder")


BUILDERS = {"dense": dense_autoencoder, "conv_transpose": conv_transpose_autoencoder,
            "conv_upsampling": conv_upsampling_autoencoder,
            "denoising": lambda size: conv_transpose_autoencoder(size, "denoising_autoencoder")}


def plot_rows(rows, labels, path, n=10):
    """The first n images of each array of ``rows``, one row each; needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed (pip install matplotlib): no plot {path}")
        return None
    n = min(n, len(rows[0]))
    size = rows[0].shape[1]
    mosaic = np.ones((len(rows) * (size + 1) - 1, n * (size + 1) - 1), dtype="float32")
    for r, images in enumerate(rows):                 # one-pixel white lines between images
        for i in range(n):
            mosaic[r * (size + 1):r * (size + 1) + size,
                   i * (size + 1):i * (size + 1) + size] = images[i, :, :, 0]
    fig, ax = plt.subplots(figsize=(1.0 * n, 1.1 * len(rows)))
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([r * (size + 1) + size / 2 for r in range(len(rows))], labels)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print("plot written to", path)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description="autoencoders on the bundled digits")
    p.add_argument("--epochs", type=int, default=20, help="epochs for each model (default 20)")
    p.add_argument("--samples", type=int, default=None,
                   help="use only this many digits (default: all 1797)")
    p.add_argument("--size", type=int, default=8, help="image side, a multiple of 4 (default 8)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--noise", type=float, default=0.3,
                   help="standard deviation of the denoising inputs' noise (default 0.3)")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated subset of " + ", ".join(MODELS))
    p.add_argument("--out", default="autoencoders_out", help="folder of the plots")
    args = p.parse_args(argv)
    if args.size < 4 or args.size % 4:
        p.error(f"--size must be a positive multiple of 4, received {args.size}")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        p.error(f"--models: unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    keras.utils.set_random_seed(0)
    print("running on", "axone" if getattr(keras, "__axone_alias__", False)
          else f"Keras {keras.__version__} ({keras.backend.backend()} backend)")

    (x_train, _), (x_test, _) = make_data(args.size, args.samples)
    print(f"{len(x_train)} training and {len(x_test)} test images of {args.size}x{args.size}x1")
    noisy_train, noisy_test = add_noise(x_train, args.noise, 1), add_noise(x_test, args.noise, 2)
    os.makedirs(args.out, exist_ok=True)

    results = {}
    for name in names:
        model = BUILDERS[name](args.size)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                      loss="binary_crossentropy", metrics=["mse"])
        inputs_train, inputs_test = ((noisy_train, noisy_test) if name == "denoising"
                                     else (x_train, x_test))
        history = model.fit(inputs_train, x_train, epochs=args.epochs,
                            batch_size=args.batch_size, shuffle=True,
                            validation_data=(inputs_test, x_test), verbose=2)
        test_loss, test_mse = model.evaluate(inputs_test, x_test, verbose=0)
        reconstructions = model.predict(inputs_test, verbose=0)
        print(f"{name}: {model.count_params():,} parameters, loss {history.history['loss'][0]:.4f}"
              f" -> {history.history['loss'][-1]:.4f}, test loss {test_loss:.4f}, "
              f"test mse {test_mse:.4f}")
        if name == "denoising":
            noisy_mse = float(np.mean((noisy_test - x_test) ** 2))
            print(f"denoising: mse of the noisy inputs {noisy_mse:.4f}, of the outputs "
                  f"{test_mse:.4f}")
            rows, labels = [noisy_test, reconstructions, x_test], ["noisy", "denoised", "clean"]
        else:
            rows, labels = [x_test, reconstructions], ["input", "output"]
        plot = plot_rows(rows, labels, os.path.join(args.out, f"{name}.png"))
        results[name] = {"model": model, "history": history, "test_loss": float(test_loss),
                         "test_mse": float(test_mse), "reconstructions": reconstructions,
                         "plot": plot}
    return {"models": results, "x_test": x_test, "noisy_test": noisy_test}


if __name__ == "__main__":
    main()
