"""Many-to-many forecasting: predict the next value of a noisy multi-sine series at every step.

A GRU reads windows of the series (return_sequences=True) and TimeDistributed(Dense(1)) turns
each step's state into a prediction of the next value.  The model is compared on later, unseen
windows with the naive forecast "the next value equals the last one seen" (repeat-last).

This is plain Keras code:
    python -m axone run examples/forecasting.py          # keras -> axone
    python examples/forecasting.py                       # the same (installs the alias itself)
    EXAMPLE_BACKEND=keras KERAS_BACKEND=torch python examples/forecasting.py   # on Keras 3
Options: --epochs N  --series N (length of the series)  --quick (a short run, for tests)
"""
import argparse
import os
import sys

if os.environ.get("EXAMPLE_BACKEND") != "keras":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from axone.compat import install_keras_alias
    install_keras_alias()

import numpy as np

import keras
from keras import layers

WINDOW = 40


def make_series(n, seed=0, noise=0.1):
    """Three sines with incommensurate periods (12, 29 and 7.3 steps) plus Gaussian noise."""
    t = np.arange(n)
    clean = (np.sin(2 * np.pi * t / 12) + 0.5 * np.sin(2 * np.pi * t / 29 + 1.0)
             + 0.3 * np.sin(2 * np.pi * t / 7.3 + 2.0))
    return (clean + noise * np.random.default_rng(seed).normal(size=n)).astype("float32")


def windows(series, window=WINDOW, stride=2):
    """Inputs s[i : i+window], targets s[i+1 : i+window+1], as (n, window, 1) arrays."""
    starts = np.arange(0, len(series) - window - 1, stride)
    x = np.stack([series[i:i + window] for i in starts])[..., None]
    y = np.stack([series[i + 1:i + window + 1] for i in starts])[..., None]
    return x, y


def build_model(units=32, lr=0.01):
    model = keras.Sequential([
        keras.Input((WINDOW, 1)),
        layers.GRU(units, return_sequences=True),
        layers.TimeDistributed(layers.Dense(1)),
    ])
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=lr))
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description="next-step forecasting of a noisy multi-sine series")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--series", type=int, default=6000)
    p.add_argument("--quick", action="store_true", help="a short run (about 1,800 points, 6 epochs)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.series = 6, 1800
    keras.utils.set_random_seed(0)
    print("running on", "axone" if getattr(keras, "__axone_alias__", False)
          else f"Keras {keras.__version__} ({keras.backend.backend()} backend)")
    s = make_series(args.series)
    split = int(0.75 * len(s))                 # train on the past, test on the future
    x_train, y_train = windows(s[:split])
    x_test, y_test = windows(s[split:], stride=WINDOW)
    print(f"series of {len(s)} points: {len(x_train)} training windows, {len(x_test)} test windows "
          f"of {WINDOW} steps")
    model = build_model()
    model.summary()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=2,
              validation_split=0.1)
    pred = model.predict(x_test, verbose=0)
    mse = float(np.mean((pred - y_test) ** 2))
    baseline = float(np.mean((x_test - y_test) ** 2))   # repeat the last value seen
    print(f"test MSE: model {mse:.5f}  repeat-last baseline {baseline:.5f}  "
          f"ratio {mse / baseline:.3f}")
    print(f"(noise floor: the series' noise variance is {0.1 ** 2:.5f})")
    return mse, baseline


if __name__ == "__main__":
    main()
