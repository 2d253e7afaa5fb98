"""The VAE and GAN idioms of Keras 3 code, trained briefly on the bundled digits."""
import numpy as np
import pytest

import axone
from axone import layers, models, ops
from axone import random as krandom
from axone.datasets import load_digits


def _digits():
    x, _ = load_digits()
    return (x.reshape(-1, 64) / 16.0).astype("float32")


class Sampling(layers.Layer):
    """z = mean + exp(log_var / 2) · ε, ε ~ N(0, 1); the KL term joins the loss via add_loss."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seed_generator = krandom.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        kl = -0.5 * ops.mean(ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var),
                                     axis=1))
        self.add_loss(kl)
        eps = krandom.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def test_vae_with_add_loss_and_random_normal_trains():
    x = _digits()
    axone.utils.set_random_seed(0)
    inp = layers.Input((64,))
    h = layers.Dense(32, activation="relu")(inp)
    z_mean = layers.Dense(2, name="z_mean")(h)
    z_log_var = layers.Dense(2, name="z_log_var")(h)
    z = Sampling()([z_mean, z_log_var])
    encoder = models.Model(inp, [z_mean, z_log_var, z], name="encoder")
    dec_in = layers.Input((2,))
    decoder = models.Model(dec_in, layers.Dense(64, activation="sigmoid")(
        layers.Dense(32, activation="relu")(dec_in)), name="decoder")

    class VAE(axone.Model):
        def __init__(self, encoder, decoder, **kw):
            super().__init__(**kw)
            self.encoder, self.decoder = encoder, decoder

        def call(self, x):
            return self.decoder(self.encoder(x)[2])

    vae = VAE(encoder, decoder)
    vae.compile(optimizer=axone.optimizers.Adam(1e-2), loss="binary_crossentropy")
    h = vae.fit(x, x, epochs=8, batch_size=64, verbose=0).history
    assert h["loss"][-1] < h["loss"][0]
    assert np.all(np.isfinite(h["loss"]))
    kl = [float(l.data) for l in vae.losses]
    assert len(kl) == 1 and np.isfinite(kl[0]) and kl[0] >= 0
    grid = decoder.predict(np.array([[0.0, 0.0], [1.0, -1.0]], "float32"), verbose=0)
    assert grid.shape == (2, 64)


def test_gan_with_a_custom_train_step_and_two_optimizers():
    x = _digits()
    axone.utils.set_random_seed(0)
    latent = 8
    generator = models.Sequential([layers.Input((latent,)), layers.Dense(32, activation="relu"),
                                   layers.Dense(64, activation="sigmoid")], name="generator")
    discriminator = models.Sequential([layers.Input((64,)), layers.Dense(32, activation="relu"),
                                       layers.Dense(1)], name="discriminator")

    class GAN(axone.Model):
        def __init__(self, d, g, **kw):
            super().__init__(**kw)
            self.discriminator, self.generator = d, g
            self.seed_generator = krandom.SeedGenerator(7)
            self.d_loss_tracker = axone.metrics.Mean(name="d_loss")
            self.g_loss_tracker = axone.metrics.Mean(name="g_loss")

        def compile(self, d_optimizer, g_optimizer, loss_fn):
            super().compile(loss=None)
            self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

        @property
        def metrics(self):
            return [self.d_loss_tracker, self.g_loss_tracker]

        def train_step(self, real):
            n = ops.shape(real)[0]
            z = krandom.normal((n, latent), seed=self.seed_generator)
            fake = self.generator(z)
            both = ops.concatenate([fake, real], axis=0)
            labels = ops.concatenate([ops.ones((n, 1)), ops.zeros((n, 1))], axis=0)
            self.zero_grad()
            d_loss = self.loss_fn(labels, self.discriminator(both))
            d_loss.backward()
            dw = self.discriminator.trainable_weights
            self.d_optimizer.apply_gradients(zip([w.grad for w in dw], dw))
            z = krandom.normal((n, latent), seed=self.seed_generator)
            self.zero_grad()
            g_loss = self.loss_fn(ops.zeros((n, 1)), self.discriminator(self.generator(z)))
            g_loss.backward()
            gw = self.generator.trainable_weights
            self.g_optimizer.apply_gradients(zip([w.grad for w in gw], gw))
            self.d_loss_tracker.update_state(d_loss)
            self.g_loss_tracker.update_state(g_loss)
            return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}

    gan = GAN(discriminator, generator)
    gan.compile(axone.optimizers.Adam(1e-3), axone.optimizers.Adam(1e-3),
                axone.losses.BinaryCrossentropy(from_logits=True))
    d0 = [w.copy() for w in discriminator.get_weights()]
    g0 = [w.copy() for w in generator.get_weights()]
    h = gan.fit(x, epochs=2, batch_size=64, verbose=0).history
    assert set(h) == {"d_loss", "g_loss"} and len(h["d_loss"]) == 2
    assert all(np.isfinite(h["d_loss"])) and all(np.isfinite(h["g_loss"]))
    assert any(not np.allclose(a, b) for a, b in zip(d0, discriminator.get_weights()))
    assert any(not np.allclose(a, b) for a, b in zip(g0, generator.get_weights()))
    samples = generator.predict(np.zeros((5, latent), "float32"), verbose=0)
    assert samples.shape == (5, 64)
