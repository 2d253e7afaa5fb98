"""Variational autoencoder on the bundled digits, as the keras.io "Variational AutoEncoder" guide
writes it.

The digits (8x8, values 0..16) are scaled to [0, 1] and, with ``--size`` (a multiple of 4), resized
with ``keras.ops.image.resize`` to SIZE x SIZE; the guide's MNIST digits are 28 x 28.

* ``Sampling``: z = z_mean + exp(z_log_var / 2) * epsilon, epsilon drawn by
  ``keras.random.normal`` from the layer's own ``keras.random.SeedGenerator``;
* the encoder (Conv2D 32 and 64, stride 2; Dense 16; z_mean, z_log_var, z) and the decoder
  (Dense, Reshape, Conv2DTranspose 64 and 32, stride 2; a sigmoid Conv2DTranspose) are functional
  models;
* the loss is the reconstruction term, binary cross-entropy summed over the pixels, plus the KL
  divergence of N(z_mean, exp(z_log_var)) from N(0, 1),
  KL = -0.5 * sum(1 + z_log_var - z_mean^2 - exp(z_log_var)), both averaged over the batch.

``--kl`` chooses how the KL term reaches the optimizer:

* ``train_step`` (default, the keras.io form): ``VAE(keras.Model)`` overrides ``train_step``,
  computes both terms under ``tf.GradientTape``, applies the gradients itself and reports
  ``loss``, ``reconstruction_loss`` and ``kl_loss`` through ``keras.metrics.Mean`` trackers. On
  Keras 3 this form needs the TensorFlow backend, as the guide does; on axone the ``tensorflow``
  alias provides ``tf.GradientTape``;
* ``add_loss``: ``VAEWithAddLoss.call`` adds the KL term with ``self.add_loss``; the model is
  compiled with the reconstruction loss and fitted with ``fit(x, x)`` (any Keras 3 backend).

Plots (with matplotlib; without it they are skipped with a message): ``OUT/latent_space.png``, the
z_mean of the test digits coloured by label, and ``OUT/latent_grid.png``, the decoder's images on
a regular grid of the 2-D latent space.

This is plain Keras code:
    python -m axone run examples/vae.py          # keras -> axone
    python examples/vae.py                       # the same (installs the alias itself)
    EXAMPLE_BACKEND=keras KERAS_BACKEND=tensorflow python examples/vae.py   # on Keras 3
    EXAMPLE_BACKEND=keras KERAS_BACKEND=torch python examples/vae.py --kl add_loss
Options: --epochs N  --samples N  --size S  --batch-size N  --kl train_step|add_loss
         --grid N  --out DIR
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

try:
    import tensorflow as tf     # tf.GradientTape of the keras.io form (axone's alias has it)
except ImportError:
    tf = None

from axone.datasets import load_digits   # the bundled data, also when running on Keras

LATENT_DIM = 2


def make_data(size=28, samples=None, seed=0):
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


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def build_encoder(size, latent_dim=LATENT_DIM):
    encoder_inputs = keras.Input(shape=(size, size, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder(size, latent_dim=LATENT_DIM):
    side = size // 4
    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(side * side * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((side, side, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    return keras.Model(latent_inputs, decoder_outputs, name="decoder")


def reconstruction_loss(data, reconstruction):
    """Binary cross-entropy summed over the pixels: one value per image."""
    return ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))


def kl_divergence(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, 1)) summed over the latent axes, batch mean."""
    kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
    return ops.mean(ops.sum(kl_loss, axis=1))


class VAE(keras.Model):
    """The keras.io form: the KL term in a custom ``train_step`` under ``tf.GradientTape``."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, inputs):
        return self.decoder(self.encoder(inputs)[2])

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            rec_loss = ops.mean(reconstruction_loss(data, reconstruction))
            kl_loss = kl_divergence(z_mean, z_log_var)
            total_loss = rec_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(rec_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


class VAEWithAddLoss(keras.Model):
    """The KL term through ``add_loss``; compiled with ``loss=reconstruction_loss``."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder

    def call(self, inputs):
        z_mean, z_log_var, z = self.encoder(inputs)
        self.add_loss(kl_divergence(z_mean, z_log_var))
        return self.decoder(z)


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_label_clusters(encoder, x, y, path):
    """The z_mean of each digit, coloured by its label."""
    plt = _pyplot()
    if plt is None:
        print(f"matplotlib is not installed (pip install matplotlib): no plot {path}")
        return None
    z_mean, _, _ = encoder.predict(x, verbose=0)
    fig = plt.figure(figsize=(7, 6))
    plt.scatter(z_mean[:, 0], z_mean[:, 1], c=y, cmap="tab10", s=8)
    plt.colorbar(label="digit")
    plt.xlabel("z[0]")
    plt.ylabel("z[1]")
    fig.savefig(path)
    plt.close(fig)
    print("plot written to", path)
    return path


def decode_grid(decoder, n=10, scale=2.0):
    """Decoded digits on an n x n grid of the latent space [-scale, scale]^2, as one image."""
    size = decoder.output_shape[1]
    grid_x = np.linspace(-scale, scale, n)
    grid_y = np.linspace(-scale, scale, n)[::-1]
    z = np.array([[xi, yi] for yi in grid_y for xi in grid_x], dtype="float32")
    decoded = decoder.predict(z, verbose=0)
    figure = np.zeros((size * n, size * n), dtype="float32")
    for k, image in enumerate(decoded):
        i, j = divmod(k, n)
        figure[i * size:(i + 1) * size, j * size:(j + 1) * size] = image[:, :, 0]
    return figure, grid_x, grid_y


def plot_latent_space(decoder, path, n=10, scale=2.0):
    plt = _pyplot()
    if plt is None:
        print(f"matplotlib is not installed (pip install matplotlib): no plot {path}")
        return None
    figure, grid_x, grid_y = decode_grid(decoder, n, scale)
    size = decoder.output_shape[1]
    fig = plt.figure(figsize=(8, 8))
    start, end = size // 2, n * size - size // 2 + 1
    plt.xticks(np.arange(start, end, size), np.round(grid_x, 1))
    plt.yticks(np.arange(start, end, size), np.round(grid_y, 1))
    plt.xlabel("z[0]")
    plt.ylabel("z[1]")
    plt.imshow(figure, cmap="Greys_r")
    fig.savefig(path)
    plt.close(fig)
    print("plot written to", path)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description="variational autoencoder on the bundled digits")
    p.add_argument("--epochs", type=int, default=30, help="epochs (default 30)")
    p.add_argument("--samples", type=int, default=None,
                   help="use only this many digits (default: all 1797)")
    p.add_argument("--size", type=int, default=28, help="image side, a multiple of 4 (default 28)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--kl", default="train_step", choices=("train_step", "add_loss"),
                   help="the KL term in a custom train_step (keras.io) or through add_loss")
    p.add_argument("--grid", type=int, default=10, help="digits per side of the decoded grid")
    p.add_argument("--out", default="vae_out", help="folder of the plots")
    args = p.parse_args(argv)
    if args.size < 4 or args.size % 4:
        p.error(f"--size must be a positive multiple of 4, received {args.size}")
    if args.kl == "train_step" and tf is None:
        p.error("--kl train_step uses tf.GradientTape: it needs TensorFlow (KERAS_BACKEND="
                "tensorflow on Keras 3); use --kl add_loss on the other backends")
    keras.utils.set_random_seed(0)
    print("running on", "axone" if getattr(keras, "__axone_alias__", False)
          else f"Keras {keras.__version__} ({keras.backend.backend()} backend)")

    (x_train, y_train), (x_test, y_test) = make_data(args.size, args.samples)
    print(f"{len(x_train)} training and {len(x_test)} test images of {args.size}x{args.size}x1; "
          f"KL term through {args.kl}")
    encoder, decoder = build_encoder(args.size), build_decoder(args.size)
    if args.kl == "train_step":
        vae = VAE(encoder, decoder)
        vae.compile(optimizer=keras.optimizers.Adam())
        history = vae.fit(x_train, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
    else:
        vae = VAEWithAddLoss(encoder, decoder)
        vae.compile(optimizer=keras.optimizers.Adam(), loss=reconstruction_loss)
        history = vae.fit(x_train, x_train, epochs=args.epochs, batch_size=args.batch_size,
                          verbose=2)

    # both terms on the held-out digits, computed the same way for either form
    z_mean, z_log_var, z = encoder.predict(x_test, verbose=0)
    t = ops.convert_to_tensor
    test_kl = float(ops.convert_to_numpy(kl_divergence(t(z_mean), t(z_log_var))))
    rec = decoder.predict(z, verbose=0)
    test_rec = float(np.mean(ops.convert_to_numpy(reconstruction_loss(t(x_test), t(rec)))))
    losses = history.history["loss"]
    print(f"{encoder.count_params():,} encoder and {decoder.count_params():,} decoder parameters;"
          f" loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    print(f"test reconstruction loss {test_rec:.3f}  test KL {test_kl:.4f}")

    os.makedirs(args.out, exist_ok=True)
    scatter = plot_label_clusters(encoder, x_test, y_test, os.path.join(args.out,
                                                                        "latent_space.png"))
    grid = plot_latent_space(decoder, os.path.join(args.out, "latent_grid.png"), n=args.grid)
    return {"vae": vae, "encoder": encoder, "decoder": decoder, "history": history,
            "test_kl": test_kl, "test_reconstruction_loss": test_rec,
            "plots": (scatter, grid)}


if __name__ == "__main__":
    main()
