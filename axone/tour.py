"""``axone tour``: every course chapter's example, in order, on the bundled data.

Each chapter trains small models, prints what it shows and its final metric next to a trivial
baseline (what a model that learned nothing would score), and saves its plot as a PNG in the
output folder:

=================  ==========================================================================
mlp                the course's iris classifier (4 -> 32 -> 3) and Boston regressor
                   (6 -> 32 -> 1); learning curves
optimization       the same iris network from the same initial weights under SGD, SGD with
                   momentum and Adam; training-loss curves
regularization     the course's 3 x 256 network overfits iris; L2, dropout and early stopping
                   against it; validation-loss curves
cnn                a small convolutional network on the 8x8 digits; learning curves and the
                   first layer's filters
transfer           a convolutional base trained on digits 0-4, frozen, with a new head trained
                   on 25 images of digits 5-9, against the same network from scratch
rnn                an LSTM reading each digit row by row (a sequence of 8 rows of 8 pixels)
generative         an autoencoder 64 -> 8 -> 64 on the digits; originals, reconstructions and
                   images decoded from codes between two digits
=================  ==========================================================================

``run_tour(chapters=None, out="axone_tour", quick=False)`` runs them (``quick`` uses fewer
epochs and samples) and returns one :class:`ChapterResult` per chapter.  matplotlib is optional:
without it the tour runs, says the plots were skipped, and how to install it.
"""
import os
import time

import numpy as np

__all__ = ["CHAPTERS", "ChapterResult", "Metric", "run_tour"]


class Metric:
    """One reported number: its value, a trivial baseline, and which direction is better."""

    def __init__(self, name, value, baseline, higher_is_better=True):
        self.name = name
        self.value = float(value)
        self.baseline = float(baseline)
        self.higher_is_better = bool(higher_is_better)

    @property
    def beats_baseline(self):
        return (self.value > self.baseline if self.higher_is_better
                else self.value < self.baseline)

    def __repr__(self):
        return f"{self.name} {self.value:.4g} (baseline {self.baseline:.4g})"


class ChapterResult:
    """What a chapter did: its metrics, the files it wrote and the seconds it took."""

    def __init__(self, name, title, text, metrics, files, seconds):
        self.name, self.title, self.text = name, title, text
        self.metrics, self.files, self.seconds = metrics, files, seconds

    @property
    def metric(self):
        """The chapter's main metric (the first one)."""
        return self.metrics[0]

    def __repr__(self):
        return f"ChapterResult({self.name!r}, {self.metrics!r})"


# ------------------------------------------------------------------ shared helpers
class _Context:
    def __init__(self, out, quick, plots):
        self.out = out
        self.quick = quick
        self.plt = plots
        self.files = []

    def n(self, full, quick):
        return quick if self.quick else full

    def save(self, fig, name):
        path = os.path.join(self.out, name)
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        self.plt.close(fig)
        self.files.append(path)


def _matplotlib():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _standardize(x, ref=None):
    ref = x if ref is None else ref
    return (x - ref.mean(axis=0)) / ref.std(axis=0, ddof=1)


def _digits():
    from .datasets import load_digits
    x, y = load_digits()
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order] / 16.0).astype(np.float32), y[order]


def _majority(y):
    return np.bincount(y).max() / len(y)


def _mosaic(images, ncols, pad=1):
    """Images of one shape tiled into one array (one imshow draws them all), NaN between."""
    images = np.asarray(images, dtype=np.float64)
    n, h, w = images.shape
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img
    return out


def _curves(ax, logs, keys, title, labels=None):
    for i, k in enumerate(keys):
        if k in logs:
            ax.plot(np.arange(1, len(logs[k]) + 1), logs[k],
                    "--" if k.startswith("val_") else "-",
                    label=(labels[i] if labels else k))
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.legend()


# ------------------------------------------------------------------ chapters
def _mlp(ctx):
    from . import layers, models, optimizers, utils
    from .datasets import load_boston, load_iris

    x, y = load_iris()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = _standardize(x)[order], y[order]
    utils.set_random_seed(0)
    iris = models.Sequential([layers.Input((4,)), layers.Dense(32, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    iris.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    h1 = iris.fit(x[:120], utils.to_categorical(y[:120], 3), epochs=ctx.n(60, 20),
                  batch_size=16, validation_split=0.2, verbose=0)
    _, acc = iris.evaluate(x[120:], utils.to_categorical(y[120:], 3), verbose=0)

    xb, price = load_boston()
    order = np.random.default_rng(1).permutation(len(xb))
    xb, price = xb[order], price[order]
    xb = _standardize(xb, xb[:400])
    utils.set_random_seed(0)
    boston = models.Sequential([layers.Input((6,)), layers.Dense(32, activation="relu"),
                                layers.Dense(1)])
    boston.compile(loss="mse", optimizer=optimizers.Adam(learning_rate=0.02), metrics=["mae"])
    h2 = boston.fit(xb[:400], price[:400], epochs=ctx.n(60, 20), batch_size=32,
                    validation_split=0.2, verbose=0)
    _, mae = boston.evaluate(xb[400:], price[400:], verbose=0)
    mae_mean = np.mean(np.abs(price[400:] - price[:400].mean()))
    if ctx.plt:
        fig, ax = ctx.plt.subplots(1, 2, figsize=(9, 3.5))
        _curves(ax[0], h1.history, ["loss", "val_loss"], "iris: cross-entropy")
        _curves(ax[1], h2.history, ["loss", "val_loss"], "Boston: mean squared error")
        ax[1].set_yscale("log")
        ctx.save(fig, "1_mlp.png")
    text = ("A multi-layer perceptron sized by the data: 4 features in, one softmax unit per "
            "iris class out; 6 features in, one linear unit out for the Boston price. "
            f"Validation loss from the first to the last epoch: iris "
            f"{h1.history['val_loss'][0]:.3f} -> {h1.history['val_loss'][-1]:.3f}, Boston "
            f"{h2.history['val_loss'][0]:.1f} -> {h2.history['val_loss'][-1]:.1f}.")
    return text, [Metric("iris held-out accuracy", acc, _majority(y[120:])),
                  Metric("Boston held-out MAE (k$)", mae, mae_mean, higher_is_better=False)]


def _optimization(ctx):
    from . import layers, models, optimizers, utils
    from .datasets import load_iris

    x, y = load_iris()
    x, t = _standardize(x), utils.to_categorical(y, 3)
    runs = [("SGD", lambda: optimizers.SGD(learning_rate=0.01)),
            ("SGD + momentum 0.9", lambda: optimizers.SGD(learning_rate=0.01, momentum=0.9)),
            ("Adam", lambda: optimizers.Adam(learning_rate=0.01))]
    logs, final = {}, {}
    for name, make in runs:
        utils.set_random_seed(0)        # the same initial weights and batches for each
        model = models.Sequential([layers.Input((4,)), layers.Dense(16, activation="tanh"),
                                   layers.Dense(3, activation="softmax")])
        model.compile(loss="categorical_crossentropy", optimizer=make())
        h = model.fit(x, t, epochs=ctx.n(40, 15), batch_size=16, verbose=0)
        logs[name] = h.history["loss"]
        final[name] = h.history["loss"][-1]
    if ctx.plt:
        fig, ax = ctx.plt.subplots(figsize=(6, 4))
        _curves(ax, logs, list(logs), "iris: training loss by optimizer")
        ax.set_ylabel("cross-entropy")
        ctx.save(fig, "2_optimization.png")
    ahead = [k for k in ("SGD + momentum 0.9", "Adam") if final[k] < final["SGD"]]
    text = ("Same network, same initial weights, same mini-batches: only the update rule "
            "changes. " + ", ".join(f"{k} ends at {v:.3f}" for k, v in final.items()) + "; " +
            (f"{' and '.join(ahead)} go{'es' if len(ahead) == 1 else ''} further than plain "
             f"SGD in the same number of steps." if ahead else
             "plain SGD does as well here."))
    uniform = float(np.log(3))            # the loss of predicting 1/3 for every class
    return text, [Metric("Adam final training loss", final["Adam"], uniform, False),
                  Metric("momentum final training loss", final["SGD + momentum 0.9"],
                         uniform, False),
                  Metric("SGD final training loss", final["SGD"], uniform, False)]


def _regularization(ctx):
    from . import layers, models, regularizers, utils
    from .callbacks import EarlyStopping
    from .datasets import load_iris

    # the course's setting (002 chapter 5): a 3 x 256 ReLU network on iris, 30% held out
    x, y = load_iris()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = _standardize(x)[order], y[order]
    t = utils.to_categorical(y, 3)
    n_val = int(len(x) * 0.3)
    epochs = ctx.n(80, 20)

    def net(reg=None, rate=0.0):
        stack = [layers.Input((4,))]
        for _ in range(3):
            if rate:
                stack.append(layers.Dropout(rate))
            stack.append(layers.Dense(256, activation="relu", kernel_regularizer=reg))
        if rate:
            stack.append(layers.Dropout(rate))
        stack.append(layers.Dense(3, activation="softmax"))
        model = models.Sequential(stack)
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model
    variants = [("none", lambda: net(), []),
                ("L2 (0.01)", lambda: net(reg=regularizers.L2(0.01)), []),
                ("dropout 0.3", lambda: net(rate=0.3), []),
                ("early stopping", lambda: net(),
                 [EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)])]
    logs, accs, losses = {}, {}, {}
    for name, make, cbs in variants:
        utils.set_random_seed(0)
        model = make()
        h = model.fit(x, t, epochs=epochs, batch_size=30, validation_split=0.3, verbose=0,
                      callbacks=cbs)
        logs[name] = h.history
        losses[name], accs[name] = model.evaluate(x[-n_val:], t[-n_val:], verbose=0)
    if ctx.plt:
        fig, ax = ctx.plt.subplots(1, 2, figsize=(10, 4))
        for name in logs:
            ax[0].plot(np.arange(1, len(logs[name]["val_loss"]) + 1), logs[name]["val_loss"],
                       label=name)
        ax[0].plot(np.arange(1, len(logs["none"]["loss"]) + 1), logs["none"]["loss"], "k:",
                   label="none (training loss)")
        ax[0].set_yscale("log")
        ax[0].set_title("iris, 3 x 256 ReLU: validation loss (log scale)")
        ax[0].set_xlabel("epoch")
        ax[0].legend()
        ax[1].bar(range(len(accs)), list(accs.values()))
        ax[1].set_xticks(range(len(accs)), list(accs), rotation=15)
        ax[1].set_ylim(min(accs.values()) - 0.05, 1.0)
        ax[1].set_title("validation accuracy at the end")
        ctx.save(fig, "3_regularization.png")
    val = np.asarray(logs["none"]["val_loss"])
    stopped = len(logs["early stopping"]["val_loss"])
    es_best = int(np.argmin(logs["early stopping"]["val_loss"])) + 1
    text = (f"Without regularization the training loss falls to {logs['none']['loss'][-1]:.4f} "
            f"while the validation loss is lowest at epoch {val.argmin() + 1} ({val.min():.3f}) "
            f"and ends at {val[-1]:.3f}"
            f"{': the network overfits' if val[-1] > val.min() + 0.02 else ''}. "
            "Early stopping (patience 10) " +
            (f"stops at epoch {stopped}" if stopped < epochs else
             f"does not stop within {epochs} epochs") +
            f" and keeps the weights of its best epoch ({es_best}). Validation loss at the end "
            "(penalty included): " + ", ".join(f"{k} {v:.3f}" for k, v in losses.items()) +
            "; accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in accs.items()) + ".")
    chance = _majority(y[-n_val:])
    return text, [Metric(f"{k} validation accuracy", v, chance) for k, v in accs.items()]


def _conv_base(layers, models):
    return models.Sequential([
        layers.Input((8, 8, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Flatten(),
    ], name="conv_base")


def _cnn(ctx):
    from . import layers, models, utils

    x, y = _digits()
    x = x[..., None]
    n = ctx.n(1400, 600)
    utils.set_random_seed(0)
    model = models.Sequential([
        layers.Input((8, 8, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    h = model.fit(x[:n], utils.to_categorical(y[:n], 10), epochs=ctx.n(12, 4), batch_size=32,
                  validation_split=0.15, verbose=0)
    _, acc = model.evaluate(x[1400:], utils.to_categorical(y[1400:], 10), verbose=0)
    if ctx.plt:
        kernel = model.layers[0].get_weights()[0]          # (3, 3, 1, 16)
        fig, ax = ctx.plt.subplots(1, 3, figsize=(11, 3.6),
                                   gridspec_kw={"width_ratios": [1.3, 1, 1]})
        _curves(ax[0], h.history, ["accuracy", "val_accuracy"], "accuracy")
        k = kernel[:, :, 0, :].transpose(2, 0, 1)
        k = (k - k.min(axis=(1, 2), keepdims=True)) / (np.ptp(k, axis=(1, 2), keepdims=True) + 1e-12)
        ax[1].imshow(_mosaic(k, 4), cmap="gray")
        ax[1].set_title("the 16 first-layer 3x3 filters")
        guess = model.predict(x[1400:1416], verbose=0).argmax(axis=1)
        ax[2].imshow(_mosaic(x[1400:1416, :, :, 0], 4, pad=3), cmap="gray_r")
        for i, g in enumerate(guess):
            ax[2].text((i % 4) * 11 + 3.5, (i // 4) * 11 - 0.8, str(g), ha="center", fontsize=8,
                       color="tab:blue" if g == y[1400 + i] else "tab:red")
        ax[2].set_title("held-out digits and predictions", pad=12)
        for a in ax[1:]:
            a.axis("off")
        ctx.save(fig, "4_cnn.png")
    text = ("Two 3x3 convolutions with max pooling, then one softmax layer: the filters are "
            f"shared over the image, so {model.count_params():,} parameters are enough to read "
            "the digits.")
    return text, [Metric("held-out accuracy", acc, _majority(y[1400:]))]


def _transfer(ctx):
    from . import layers, models, utils

    x, y = _digits()
    x = x[..., None]
    low = y < 5
    xa, ya = x[low], y[low]
    xb, yb = x[~low], y[~low] - 5
    per_class = 5
    pick = np.concatenate([np.flatnonzero(yb[:300] == c)[:per_class] for c in range(5)])
    small = (xb[pick], utils.to_categorical(yb[pick], 5))
    test = (xb[300:], utils.to_categorical(yb[300:], 5))
    epochs = ctx.n(20, 10)
    # 1. pre-train a convolutional base on digits 0-4
    utils.set_random_seed(0)
    base = _conv_base(layers, models)
    pre = models.Sequential([base, layers.Dense(5, activation="softmax")])
    pre.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    pre.fit(xa, utils.to_categorical(ya, 5), epochs=ctx.n(4, 2), batch_size=32, verbose=0)
    # 2. freeze it, put a new head on, train on a few images of digits 5-9
    base.trainable = False
    utils.set_random_seed(1)
    new = models.Sequential([base, layers.Dense(5, activation="softmax")])
    new.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    frozen_before = [w.copy() for w in base.get_weights()]
    curve = (test[0][:300], test[1][:300])          # validation rows for the curves
    h_t = new.fit(*small, epochs=epochs, batch_size=5, validation_data=curve, verbose=0)
    unchanged = all(np.array_equal(a, b) for a, b in zip(frozen_before, base.get_weights()))
    acc_t = new.evaluate(*test, verbose=0)[1]
    # 3. the same network from scratch on the same images
    utils.set_random_seed(1)
    scratch = models.Sequential([_conv_base(layers, models),
                                 layers.Dense(5, activation="softmax")])
    scratch.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    h_s = scratch.fit(*small, epochs=epochs, batch_size=5, validation_data=curve, verbose=0)
    acc_s = scratch.evaluate(*test, verbose=0)[1]
    if ctx.plt:
        fig, ax = ctx.plt.subplots(figsize=(6, 4))
        _curves(ax, {"frozen pre-trained base": h_t.history["val_accuracy"],
                     "from scratch": h_s.history["val_accuracy"]},
                ["frozen pre-trained base", "from scratch"],
                f"digits 5-9 from {len(pick)} images: held-out accuracy")
        ctx.save(fig, "5_transfer.png")

    def count(model):
        return sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    text = (f"The convolutional base learned on digits 0-4 is frozen (its weights "
            f"{'stay' if unchanged else 'do NOT stay'} unchanged while the head trains): only "
            f"the new head's {count(new)} weights are trained, on {len(pick)} images of digits "
            f"5-9 ({per_class} per class), against {count(scratch)} weights for the same "
            f"network from scratch. Held-out accuracy: {acc_t:.3f} with the frozen base, "
            f"{acc_s:.3f} from scratch.")
    return text, [Metric("held-out accuracy, frozen base + new head", acc_t,
                         _majority(yb[300:])),
                  Metric("held-out accuracy, from scratch", acc_s, _majority(yb[300:]))]


def _rnn(ctx):
    from . import layers, models, optimizers, utils

    x, y = _digits()
    n = ctx.n(1400, 600)
    utils.set_random_seed(0)
    model = models.Sequential([layers.Input((8, 8)), layers.LSTM(32),
                               layers.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=optimizers.Adam(learning_rate=0.01),
                  metrics=["accuracy"])
    h = model.fit(x[:n], utils.to_categorical(y[:n], 10), epochs=ctx.n(15, 6), batch_size=32,
                  validation_split=0.15, verbose=0)
    _, acc = model.evaluate(x[1400:], utils.to_categorical(y[1400:], 10), verbose=0)
    if ctx.plt:
        fig, ax = ctx.plt.subplots(1, 2, figsize=(9, 3.5))
        _curves(ax[0], h.history, ["loss", "val_loss"], "LSTM(32) over the 8 rows: loss")
        _curves(ax[1], h.history, ["accuracy", "val_accuracy"], "accuracy")
        ctx.save(fig, "6_rnn.png")
    text = ("Each digit is read as a sequence of 8 time steps (its rows, 8 pixels each); the "
            "LSTM's last hidden state feeds a softmax layer. The state carries what the "
            "earlier rows showed.")
    return text, [Metric("held-out accuracy", acc, _majority(y[1400:]))]


def _generative(ctx):
    from . import layers, models, optimizers, utils

    x, y = _digits()
    x = x.reshape(len(x), -1)
    n = ctx.n(1400, 800)
    utils.set_random_seed(0)
    encoder = models.Sequential([layers.Input((64,)), layers.Dense(32, activation="relu"),
                                 layers.Dense(8, activation="relu")], name="encoder")
    decoder = models.Sequential([layers.Input((8,)), layers.Dense(32, activation="relu"),
                                 layers.Dense(64, activation="sigmoid")], name="decoder")
    auto = models.Sequential([encoder, decoder])
    auto.compile(loss="mse", optimizer=optimizers.Adam(learning_rate=0.005))
    h = auto.fit(x[:n], x[:n], epochs=ctx.n(50, 20), batch_size=32, validation_split=0.1,
                 verbose=0)
    test = x[1400:]
    mse = float(np.mean((auto.predict(test, verbose=0) - test) ** 2))
    mean_mse = float(np.mean((x[:n].mean(axis=0) - test) ** 2))
    if ctx.plt:
        rec = auto.predict(test[:10], verbose=0)
        codes = encoder.predict(test[:2], verbose=0)
        steps = np.linspace(0, 1, 10)[:, None]
        between = decoder.predict(((1 - steps) * codes[0] + steps * codes[1]).astype(np.float32),
                                  verbose=0)
        fig, ax = ctx.plt.subplots(figsize=(8, 3))
        ax.imshow(_mosaic(np.concatenate([test[:10], rec, between]).reshape(-1, 8, 8), 10,
                          pad=2), cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([3.5, 13.5, 23.5], ["original", "reconstructed", "in between"])
        ax.set_title("autoencoder 64 -> 8 -> 64: held-out digits, their reconstructions, and "
                     "decoded codes between the first two", fontsize=9)
        ctx.save(fig, "7_generative.png")
    text = ("The encoder squeezes each 64-pixel digit into 8 numbers and the decoder draws it "
            "back; decoding codes between two digits' codes makes new images that morph "
            f"from one to the other. Final validation loss {h.history['val_loss'][-1]:.4f}.")
    return text, [Metric("held-out reconstruction MSE", mse, mean_mse, higher_is_better=False)]


#: chapter name -> (title, function), in the course's order
CHAPTERS = {
    "mlp": ("Multi-layer perceptrons: iris and Boston", _mlp),
    "optimization": ("Optimization: SGD, momentum and Adam", _optimization),
    "regularization": ("Regularization: L2, dropout and early stopping", _regularization),
    "cnn": ("Convolutional networks on the 8x8 digits", _cnn),
    "transfer": ("Transfer learning: a frozen base and a new head", _transfer),
    "rnn": ("Recurrent networks: digits read row by row", _rnn),
    "generative": ("Generative models: an autoencoder on the digits", _generative),
}


def run_tour(chapters=None, out="axone_tour", quick=False, plots=True, echo=print):
    """Run the tour's chapters in the course's order.

    Args:
        chapters: names from :data:`CHAPTERS` (default: all), run in the course's order.
        out: folder for the PNG plots (created if missing).
        quick: fewer epochs and samples (a few seconds a chapter).
        plots: save the plots (needs matplotlib; skipped with a message without it).
        echo: where the text goes (``print``; ``None`` for silence).

    Returns:
        A list of :class:`ChapterResult`.
    """
    say = echo or (lambda *a, **k: None)
    if chapters is None:
        names = list(CHAPTERS)
    else:
        if isinstance(chapters, str):
            chapters = [chapters]
        unknown = [c for c in chapters if c not in CHAPTERS]
        if unknown:
            raise ValueError(f"run_tour: unknown chapter(s) {unknown}; the chapters are "
                             f"{list(CHAPTERS)}")
        names = [c for c in CHAPTERS if c in set(chapters)]
    plt = _matplotlib() if plots else None
    if plots and plt is None:
        say("Plots skipped: matplotlib is not installed (pip install matplotlib).")
    if plt is not None:
        os.makedirs(out, exist_ok=True)
    results = []
    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        title, fn = CHAPTERS[name]
        ctx = _Context(out, quick, plt)
        t0 = time.perf_counter()
        text, metrics = fn(ctx)
        seconds = time.perf_counter() - t0
        results.append(ChapterResult(name, title, text, metrics, list(ctx.files), seconds))
        say(f"== {i}. {title} [{name}, {seconds:.1f} s] ==")
        say(_wrap(text))
        for m in metrics:
            verdict = "better than" if m.beats_baseline else "NOT better than"
            say(f"   {m.name}: {m.value:.4f} ({verdict} the baseline {m.baseline:.4f})")
        for f in ctx.files:
            say(f"   plot: {f}")
        say("")
    say(f"Tour done: {len(results)} chapter(s) in {time.perf_counter() - start:.1f} s"
        + (f", plots in {out}" if plt is not None else ""))
    return results


def _wrap(text, width=96):
    import textwrap
    return textwrap.fill(text, width=width, initial_indent="   ", subsequent_indent="   ")
