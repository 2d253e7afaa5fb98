"""examples/autoencoders.py, vae.py and gan.py run with tiny settings, each in a subprocess (the
examples install the keras alias, which must not leak into the test process): losses go down,
the KL term is positive, the GAN's two steps move what they should, the plots are written."""
import os
import subprocess
import sys
import textwrap

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO_ROOT, "examples")

try:
    import matplotlib  # noqa: F401
    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False

PNG = b"\x89PNG\r\n\x1a\n"

# run inside every subprocess: the example folder on the path, and a check of the plots
PRELUDE = f"""
import os, sys
import numpy as np
sys.path.insert(0, {EXAMPLES!r})
HAVE_MPL = {HAVE_MPL!r}

def check_png(path, written):
    if HAVE_MPL:
        assert written == path, (written, path)
        with open(path, "rb") as f:
            assert f.read(8) == {PNG!r}, path
    else:
        assert written is None and not os.path.exists(path), path

def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env.pop("EXAMPLE_BACKEND", None)
    env.pop("KERAS_BACKEND", None)     # the examples must not need a real Keras backend
    return env


def _python(code, cwd, timeout=240):
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "ALL_OK" in proc.stdout, proc.stdout[-3000:]
    return proc.stdout


def test_autoencoders_reconstruction_loss_goes_down(tmp_path):
    out = _python("""
        import autoencoders as ex
        res = ex.main(["--epochs", "3", "--samples", "300", "--out", "out"])
        x_test, noisy = res["x_test"], res["noisy_test"]
        assert x_test.shape == (60, 8, 8, 1) and 0.0 <= x_test.min() and x_test.max() <= 1.0
        # the denoising inputs carry Gaussian noise, clipped into [0, 1]
        assert noisy.shape == x_test.shape and 0.0 <= noisy.min() and noisy.max() <= 1.0
        assert 0.01 < float(np.mean((noisy - x_test) ** 2)) < 0.2
        assert set(res["models"]) == set(ex.MODELS)
        kinds = {name: {type(l).__name__ for l in r["model"].layers}
                 for name, r in res["models"].items()}
        assert "Conv2D" not in kinds["dense"] and "Dense" in kinds["dense"]
        assert "Conv2DTranspose" in kinds["conv_transpose"]
        assert "UpSampling2D" in kinds["conv_upsampling"]
        assert "UpSampling2D" not in kinds["conv_transpose"]
        assert "Conv2DTranspose" in kinds["denoising"]
        for name, r in res["models"].items():
            h = r["history"].history
            assert len(h["loss"]) == 3, name
            assert all(np.isfinite(h["loss"])) and all(np.isfinite(h["val_loss"])), name
            assert h["loss"][-1] < h["loss"][0], (name, h["loss"])
            assert h["val_loss"][-1] < h["val_loss"][0], (name, h["val_loss"])
            rec = r["reconstructions"]
            assert rec.shape == x_test.shape and 0.0 <= rec.min() and rec.max() <= 1.0, name
            assert abs(r["test_loss"] - h["val_loss"][-1]) < 1e-4, name
            check_png(os.path.join("out", name + ".png"), r["plot"])
        # the encoder of the convolutional models halves the side twice: 8 -> 4 -> 2
        enc = [l for l in res["models"]["conv_transpose"]["model"].layers
               if type(l).__name__ == "Conv2D"][1]
        assert tuple(enc.output.shape[1:]) == (2, 2, 32)
        print("ALL_OK")
        """, tmp_path)
    assert "running on axone" in out and "240 training and 60 test images of 8x8x1" in out
    assert "denoising: mse of the noisy inputs" in out


def test_autoencoders_upscaled_and_without_matplotlib(tmp_path):
    """--size 12 resizes the digits with ops.image.resize; without matplotlib the plot is
    skipped with a message."""
    out = _python("""
        sys.modules["matplotlib"] = None          # import matplotlib raises ImportError
        import autoencoders as ex
        res = ex.main(["--epochs", "2", "--samples", "100", "--size", "12",
                       "--models", "dense,conv_upsampling", "--out", "out"])
        assert set(res["models"]) == {"dense", "conv_upsampling"}
        assert res["x_test"].shape == (20, 12, 12, 1)
        for r in res["models"].values():
            assert r["plot"] is None and r["reconstructions"].shape == (20, 12, 12, 1)
        assert not os.path.exists(os.path.join("out", "dense.png"))
        print("ALL_OK")
        """, tmp_path)
    assert "matplotlib is not installed (pip install matplotlib): no plot" in out


def test_bad_arguments_are_rejected(tmp_path):
    """argparse errors (exit status 2) naming the option, before any training."""
    _python("""
        import contextlib, io
        import autoencoders, vae, gan
        cases = [(autoencoders, ["--size", "10"], "--size"),
                 (autoencoders, ["--models", "dense,pca"], "--models"),
                 (vae, ["--size", "18"], "--size"),
                 (vae, ["--kl", "both"], "--kl"),
                 (gan, ["--filters", "0"], "--filters"),
                 (gan, ["--mode", "wgan"], "--mode")]
        for module, argv, option in cases:
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                try:
                    module.main(argv + ["--out", "never"])
                except SystemExit as e:
                    assert e.code == 2, (module.__name__, argv, e.code)
                else:
                    raise AssertionError(f"{module.__name__} {argv} was accepted")
            assert option in err.getvalue(), (argv, err.getvalue())
        assert not os.path.exists("never")
        print("ALL_OK")
        """, tmp_path)


def test_vae_train_step_and_add_loss(tmp_path):
    """Both forms train (total loss down, KL finite and > 0); from the same seed they take the
    same steps, so their encoders agree on the held-out digits."""
    out = _python("""
        import vae as ex
        import keras
        tiny = ["--epochs", "3", "--samples", "300", "--size", "16", "--batch-size", "32",
                "--grid", "4"]
        a = ex.main(tiny + ["--kl", "train_step", "--out", "out_a"])
        h = a["history"].history
        assert set(h) == {"loss", "reconstruction_loss", "kl_loss"}, set(h)
        assert all(np.isfinite(h[k]).all() for k in h)
        assert h["loss"][-1] < h["loss"][0], h["loss"]
        assert all(k > 0 for k in h["kl_loss"]), h["kl_loss"]
        for t, r, k in zip(h["loss"], h["reconstruction_loss"], h["kl_loss"]):
            assert abs(t - (r + k)) < 1e-3 * t                 # the trackers add up
        assert np.isfinite(a["test_kl"]) and a["test_kl"] > 0
        assert isinstance(a["vae"], ex.VAE)

        b = ex.main(tiny + ["--kl", "add_loss", "--out", "out_b"])
        hb = b["history"].history
        assert set(hb) == {"loss"} and all(np.isfinite(hb["loss"]))
        assert hb["loss"][-1] < hb["loss"][0], hb["loss"]
        assert np.isfinite(b["test_kl"]) and b["test_kl"] > 0
        x = np.random.default_rng(0).random((4, 16, 16, 1)).astype("float32")
        b["vae"](x)
        kl = [float(keras.ops.convert_to_numpy(l)) for l in b["vae"].losses]
        assert len(kl) == 1 and np.isfinite(kl[0]) and kl[0] > 0, kl
        # same gradients, same steps: the two forms end at the same weights
        assert np.isclose(a["test_kl"], b["test_kl"], rtol=1e-3), (a["test_kl"], b["test_kl"])
        assert np.isclose(a["test_reconstruction_loss"], b["test_reconstruction_loss"], rtol=1e-4)

        # Sampling: z_mean and z_log_var deterministic, z drawn afresh at each call
        enc = b["encoder"]
        m1, v1, z1 = (keras.ops.convert_to_numpy(t) for t in enc(x))
        m2, v2, z2 = (keras.ops.convert_to_numpy(t) for t in enc(x))
        assert np.array_equal(m1, m2) and np.array_equal(v1, v2) and not np.allclose(z1, z2)
        assert z1.shape == (4, 2)
        figure, gx, gy = ex.decode_grid(b["decoder"], n=4)
        assert figure.shape == (64, 64) and 0.0 <= figure.min() and figure.max() <= 1.0
        for res, folder in ((a, "out_a"), (b, "out_b")):
            check_png(os.path.join(folder, "latent_space.png"), res["plots"][0])
            check_png(os.path.join(folder, "latent_grid.png"), res["plots"][1])
        print("ALL_OK")
        """, tmp_path)
    assert "KL term through train_step" in out and "KL term through add_loss" in out


def test_gan_train_step_form(tmp_path):
    out = _python("""
        import gan as ex
        import keras
        tiny = ["--epochs", "1", "--samples", "192", "--filters", "8", "--latent-dim", "16",
                "--grid", "3", "--out", "out"]
        res = ex.main(tiny)
        h = res["history"]
        assert set(h) == {"d_loss", "g_loss"} and len(h["d_loss"]) == 1
        assert np.isfinite(h["d_loss"]).all() and np.isfinite(h["g_loss"]).all()
        assert h["d_loss"][0] > 0 and h["g_loss"][0] > 0
        g = res["generated"]
        assert res["activation"] == "sigmoid"
        assert g.shape == (9, 28, 28, 1) and 0.0 <= g.min() and g.max() <= 1.0
        check_png(os.path.join("out", "generated.png"), res["plot"])

        # one train_step moves both networks, each through its own optimizer
        keras.utils.set_random_seed(1)
        d, gen = ex.build_discriminator(8), ex.build_generator(16, 8)
        gan = ex.GAN(discriminator=d, generator=gen, latent_dim=16)
        d_opt, g_opt = keras.optimizers.Adam(2e-4), keras.optimizers.Adam(2e-4)
        gan.compile(d_optimizer=d_opt, g_optimizer=g_opt,
                    loss_fn=keras.losses.BinaryCrossentropy())
        images, _ = ex.make_data(64)
        assert images.shape == (64, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
        d0, g0 = d.get_weights(), gen.get_weights()
        gan.fit(images, epochs=1, batch_size=32, verbose=0)
        assert changed(d0, d.get_weights()) and changed(g0, gen.get_weights())
        assert int(d_opt.iterations.numpy()) == 2 and int(g_opt.iterations.numpy()) == 2
        print("ALL_OK")
        """, tmp_path)
    assert "train_step form" in out


def test_gan_classic_frozen_discriminator(tmp_path):
    """The Keras 2 textbook form: the combined model's train_on_batch leaves the frozen
    discriminator as it is and moves the generator; the discriminator's own step moves it."""
    _python("""
        import gan as ex
        import keras
        keras.utils.set_random_seed(2)
        d, g = ex.build_discriminator(8), ex.build_generator(16, 8, "tanh")
        combined = ex.build_combined(g, d, 16)
        assert d.trainable is False
        assert len(combined.trainable_weights) == len(g.trainable_weights)
        images, _ = ex.make_data(32, scale="tanh")
        assert images.min() >= -1 and images.max() <= 1 and images.min() < 0
        rng = np.random.default_rng(0)
        for _ in range(2):
            d0, g0 = d.get_weights(), g.get_weights()
            g_loss = ex.generator_step(combined, 16, 16, rng)
            assert np.isfinite(g_loss) and g_loss > 0
            assert not changed(d0, d.get_weights()), "the frozen discriminator moved"
            assert changed(g0, g.get_weights()), "the generator did not move"
            d1, g1 = d.get_weights(), g.get_weights()
            d_loss = ex.discriminator_step(g, d, images[:16], 16, rng)
            assert np.isfinite(d_loss) and d_loss > 0
            assert changed(d1, d.get_weights()), "the discriminator's own step did not move it"
            assert not changed(g1, g.get_weights())
            assert d.trainable is False                  # frozen again for the combined model

        res = ex.main(["--mode", "classic", "--epochs", "2", "--samples", "96", "--filters", "8",
                       "--latent-dim", "16", "--batch-size", "32", "--grid", "3", "--out", "out"])
        h = res["history"]
        assert len(h["d_loss"]) == 2 and np.isfinite(h["d_loss"]).all()
        assert np.isfinite(h["g_loss"]).all()
        gen = res["generated"]
        assert res["activation"] == "tanh"
        assert gen.shape == (9, 28, 28, 1) and -1.0 <= gen.min() and gen.max() <= 1.0
        check_png(os.path.join("out", "generated.png"), res["plot"])
        print("ALL_OK")
        """, tmp_path)
