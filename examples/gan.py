"""DCGAN on the bundled digits upscaled to 28x28, in two forms.

The digits (8x8, values 0..16) are resized to 28x28 with ``keras.ops.image.resize`` (bilinear).
The networks are those of the keras.io "DCGAN to generate face images" guide, sized for
28x28x1 images (``--filters F`` scales their widths; the guide's are F = 64):

* discriminator: Conv2D(F, 4, strides 2) -> 14x14, Conv2D(2F) -> 7x7, Conv2D(2F) -> 4x4, each
  followed by LeakyReLU(0.2); Flatten, Dropout(0.2), Dense(1, sigmoid);
* generator: Dense(7*7*2F), Reshape, Conv2DTranspose(2F, 4, strides 2) -> 14x14,
  Conv2DTranspose(4F) -> 28x28, each followed by LeakyReLU(0.2); Conv2D(1, 5) with a sigmoid
  (images in [0, 1]) or, in the ``classic`` form, a tanh (images scaled to [-1, 1]).

Labels follow the guide: 1 for generated images, 0 for real ones, with 0.05 * U(0, 1) noise on
the discriminator's labels (added, as the guide does, in ``train_step``; towards the other class in
``classic``, which keeps them in [0, 1] as ``binary_crossentropy`` requires of ``fit`` targets on
axone and on Keras's torch backend); the generator is trained towards "real" (0).

``--mode`` chooses the training form:

* ``train_step`` (default, the keras.io form): ``GAN(keras.Model)`` with
  ``compile(d_optimizer, g_optimizer, loss_fn)``, a custom ``train_step`` that takes one
  discriminator step and one generator step under ``tf.GradientTape``, each with its own
  optimizer, and ``keras.metrics.Mean`` trackers for ``d_loss`` and ``g_loss``; fitted with
  ``gan.fit(images)``. On Keras 3 this form needs the TensorFlow backend, as the guide does; on
  axone the ``tensorflow`` alias provides ``tf.GradientTape``;
* ``classic`` (the Keras 2 textbook form, any backend): the discriminator is compiled on its
  own, frozen (``trainable = False``) inside a combined ``generator -> discriminator`` model
  compiled with a second optimizer, and the loop alternates ``discriminator.train_on_batch`` on
  generated + real images with ``combined.train_on_batch`` on noise labelled "real", which moves
  only the generator. Keras 2 fixed the trainable flags when ``compile`` was called; Keras 3 reads
  them at every step, so the loop sets ``discriminator.trainable = True`` for the
  discriminator's own step and back to False for the combined model's.

Plot (with matplotlib; without it it is skipped with a message): ``OUT/generated.png``, a grid of
generated digits.

This is plain Keras code:
    python -m axone run examples/gan.py          # keras -> axone
    python examples/gan.py                       # the same (installs the alias itself)
    EXAMPLE_BACKEND=keras KERAS_BACKEND=tensorflow python examples/gan.py   # on Keras 3
    EXAMPLE_BACKEND=keras KERAS_BACKEND=torch python examples/gan.py --mode classic
Options: --epochs N  --samples N  --batch-size N  --mode train_step|classic  --filters F
         --latent-dim N  --grid N  --out DIR
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

SIZE = 28


def make_data(samples=None, scale="sigmoid", seed=0):
    """The digits as (n, 28, 28, 1) float32 images in [0, 1] (``scale="sigmoid"``) or [-1, 1]
    (``"tanh"``), and their labels."""
    x, y = load_digits()
    order = np.random.default_rng(seed).permutation(len(x))
    if samples is not None:
        order = order[:samples]
    x, y = (x[order, :, :, None] / 16.0).astype("float32"), y[order]
    x = ops.image.resize(x, (SIZE, SIZE), interpolation="bilinear")
    x = np.clip(ops.convert_to_numpy(x), 0.0, 1.0).astype("float32")
    if scale == "tanh":
        x = 2.0 * x - 1.0
    return x, y


def build_discriminator(filters=64):
    return keras.Sequential(
        [
            keras.Input(shape=(SIZE, SIZE, 1)),
            layers.Conv2D(filters, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(2 * filters, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(2 * filters, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    )


def build_generator(latent_dim=128, filters=64, activation="sigmoid"):
    return keras.Sequential(
        [
            keras.Input(shape=(latent_dim,)),
            layers.Dense(7 * 7 * 2 * filters),
            layers.Reshape((7, 7, 2 * filters)),
            layers.Conv2DTranspose(2 * filters, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(4 * filters, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(1, kernel_size=5, padding="same", activation=activation),
        ],
        name="generator",
    )


class GAN(keras.Model):
    """The keras.io form: two optimizers and a custom ``train_step``."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        # Sample random points in the latent space
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator)

        # Decode them to fake images
        generated_images = self.generator(random_latent_vectors)

        # Combine them with real images
        combined_images = ops.concatenate([generated_images, real_images], axis=0)

        # Assemble labels discriminating real from fake images
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        # Add random noise to the labels - important trick!
        labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)

        # Train the discriminator
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        # Sample random points in the latent space
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator)

        # Assemble labels that say "all real images"
        misleading_labels = ops.zeros((batch_size, 1))

        # Train the generator (note that we should *not* update the weights
        # of the discriminator)!
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        # Update metrics
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


# ---- the Keras 2 textbook form: a frozen discriminator inside a combined model ----

def build_combined(generator, discriminator, latent_dim, learning_rate=2e-4):
    """Compile the discriminator, freeze it, and compile generator -> discriminator."""
    discriminator.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
                          loss="binary_crossentropy")
    discriminator.trainable = False
    gan_input = keras.Input(shape=(latent_dim,))
    gan_output = discriminator(generator(gan_input))
    combined = keras.Model(gan_input, gan_output, name="combined")
    combined.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
                     loss="binary_crossentropy")
    return combined


def discriminator_step(generator, discriminator, real_images, latent_dim, rng):
    """One ``train_on_batch`` of the discriminator on generated (label 1) and real (label 0)
    images, the labels moved by 0.05 * U(0, 1) towards the other class (so they stay in [0, 1],
    which binary cross-entropy requires on the torch backend)."""
    batch_size = len(real_images)
    noise = rng.normal(size=(batch_size, latent_dim)).astype("float32")
    generated_images = generator.predict(noise, verbose=0)
    combined_images = np.concatenate([generated_images, real_images])
    labels = np.concatenate([1.0 - 0.05 * rng.random((batch_size, 1)),     # generated
                             0.05 * rng.random((batch_size, 1))]).astype("float32")   # real
    discriminator.trainable = True          # Keras 3 reads the flag at every step
    d_loss = discriminator.train_on_batch(combined_images, labels)
    discriminator.trainable = False
    return float(d_loss)


def generator_step(combined, batch_size, latent_dim, rng):
    """One ``train_on_batch`` of the combined model on noise labelled "real": the frozen
    discriminator's weights stay as they are, the generator's move."""
    noise = rng.normal(size=(batch_size, latent_dim)).astype("float32")
    misleading_targets = np.zeros((batch_size, 1), dtype="float32")
    return float(combined.train_on_batch(noise, misleading_targets))


def train_classic(generator, discriminator, images, epochs, batch_size, latent_dim,
                  learning_rate=2e-4, seed=0):
    """The alternating loop; returns a History-like dict of per-epoch mean losses."""
    combined = build_combined(generator, discriminator, latent_dim, learning_rate)
    rng = np.random.default_rng(seed)
    history = {"d_loss": [], "g_loss": []}
    steps = max(1, len(images) // batch_size)
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        d_losses, g_losses = [], []
        for step in range(steps):
            real_images = images[order[step * batch_size:(step + 1) * batch_size]]
            d_losses.append(discriminator_step(generator, discriminator, real_images,
                                               latent_dim, rng))
            g_losses.append(generator_step(combined, len(real_images), latent_dim, rng))
        history["d_loss"].append(float(np.mean(d_losses)))
        history["g_loss"].append(float(np.mean(g_losses)))
        print(f"epoch {epoch + 1}/{epochs} - d_loss: {history['d_loss'][-1]:.4f} - "
              f"g_loss: {history['g_loss'][-1]:.4f}")
    return combined, history


def tile(images, n):
    """Images (k, h, w, 1) as one (n*h, n*w) mosaic, row after row (empty cells stay 0)."""
    k, h, w = images.shape[:3]
    mosaic = np.zeros((n * h, n * w), dtype="float32")
    for i in range(min(k, n * n)):
        r, c = divmod(i, n)
        mosaic[r * h:(r + 1) * h, c * w:(c + 1) * w] = images[i, :, :, 0]
    return mosaic


def plot_generated(images, path, value_range=(0.0, 1.0)):
    """A square grid of generated images; needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed (pip install matplotlib): no plot {path}")
        return None
    n = int(np.ceil(np.sqrt(len(images))))
    fig, ax = plt.subplots(figsize=(1.1 * n, 1.1 * n))
    ax.imshow(tile(images, n), cmap="gray", vmin=value_range[0], vmax=value_range[1])
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print("plot written to", path)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description="DCGAN on the bundled digits (28x28)")
    p.add_argument("--epochs", type=int, default=20, help="epochs (default 20)")
    p.add_argument("--samples", type=int, default=None,
                   help="use only this many digits (default: all 1797)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--mode", default="train_step", choices=("train_step", "classic"),
                   help="keras.io custom train_step, or the Keras 2 frozen-discriminator loop")
    p.add_argument("--filters", type=int, default=16,
                   help="width F of the networks (keras.io: 64; default 16, for CPU run times)")
    p.add_argument("--latent-dim", type=int, default=128)
    p.add_argument("--grid", type=int, default=5, help="generated digits per side of the plot")
    p.add_argument("--out", default="gan_out", help="folder of the plot")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "filters", "latent_dim", "grid"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, received "
                    f"{getattr(args, name)}")
    if args.mode == "train_step" and tf is None:
        p.error("--mode train_step uses tf.GradientTape: it needs TensorFlow (KERAS_BACKEND="
                "tensorflow on Keras 3); use --mode classic on the other backends")
    keras.utils.set_random_seed(0)
    print("running on", "axone" if getattr(keras, "__axone_alias__", False)
          else f"Keras {keras.__version__} ({keras.backend.backend()} backend)")

    activation = "sigmoid" if args.mode == "train_step" else "tanh"
    images, _ = make_data(args.samples, scale=activation)
    print(f"{len(images)} images of {SIZE}x{SIZE}x1 in [{images.min():.0f}, {images.max():.0f}];"
          f" {args.mode} form")
    discriminator = build_discriminator(args.filters)
    generator = build_generator(args.latent_dim, args.filters, activation)
    print(f"discriminator {discriminator.count_params():,} and generator "
          f"{generator.count_params():,} parameters")

    if args.mode == "train_step":
        gan = GAN(discriminator=discriminator, generator=generator, latent_dim=args.latent_dim)
        gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
                    g_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
                    loss_fn=keras.losses.BinaryCrossentropy())
        history = gan.fit(images, epochs=args.epochs, batch_size=args.batch_size,
                          verbose=2).history
    else:
        gan, history = train_classic(generator, discriminator, images, args.epochs,
                                     args.batch_size, args.latent_dim)

    z = np.random.default_rng(1).normal(size=(args.grid * args.grid, args.latent_dim))
    generated = generator.predict(z.astype("float32"), verbose=0)
    print(f"d_loss {history['d_loss'][-1]:.4f}  g_loss {history['g_loss'][-1]:.4f}  "
          f"generated {generated.shape} in [{generated.min():.3f}, {generated.max():.3f}]")
    os.makedirs(args.out, exist_ok=True)
    value_range = (0.0, 1.0) if activation == "sigmoid" else (-1.0, 1.0)
    plot = plot_generated(generated, os.path.join(args.out, "generated.png"), value_range)
    return {"gan": gan, "generator": generator, "discriminator": discriminator,
            "history": history, "generated": generated, "activation": activation, "plot": plot}


if __name__ == "__main__":
    main()
