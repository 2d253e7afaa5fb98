"""The ``axone`` command.

``axone demo``           train the course's iris and Boston networks on the bundled data
``axone run script.py``  run a Keras script unchanged, with ``keras`` resolving to axone
``axone tour``           every course chapter's example in order, plots saved as PNG files
                         (``--out DIR``, ``--chapters a,b``, ``--quick``, ``--list``)
"""
import argparse
import os
import runpy
import sys


def demo(epochs_iris=60, epochs_boston=60, verbose=2):
    """The course's iris classifier and Boston regressor, trained on the bundled data."""
    import numpy as np

    from . import layers, models, optimizers, utils
    from .callbacks import EarlyStopping
    from .datasets import load_boston, load_iris

    utils.set_random_seed(0)
    x, y = load_iris()
    x = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], utils.to_categorical(y[order], 3)
    print("== Iris: 4 -> 100 (relu) -> 3 (softmax), Adam, categorical cross-entropy ==")
    model = models.Sequential([
        layers.InputLayer(input_shape=(4,)),
        layers.Dense(units=100, activation="relu"),
        layers.Dense(units=3, activation="softmax"),
    ])
    model.summary()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x[:120], y[:120], epochs=epochs_iris, batch_size=16, verbose=verbose,
              validation_split=0.2)
    loss, acc = model.evaluate(x[120:], y[120:], verbose=0)
    print(f"iris held-out rows: loss {loss:.4f}, accuracy {acc:.3f}\n")

    x, price = load_boston()
    x = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    order = np.random.default_rng(1).permutation(len(x))
    x, price = x[order], price[order]
    print("== Boston: 6 -> 100 (relu) -> 1, Adam, mean squared error, EarlyStopping ==")
    model = models.Sequential([
        layers.InputLayer(input_shape=(6,)),
        layers.Dense(units=100, activation="relu"),
        layers.Dense(units=1),
    ])
    model.summary()
    model.compile(loss="mse", optimizer=optimizers.Adam(learning_rate=0.01), metrics=["mae"])
    stop = EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    model.fit(x[:400], price[:400], epochs=epochs_boston, batch_size=32, verbose=verbose,
              validation_split=0.2, callbacks=[stop])
    mse, mae = model.evaluate(x[400:], price[400:], verbose=0)
    print(f"boston held-out rows: mse {mse:.2f}, mae {mae:.2f} (k$)")
    return 0


def run_script(path, args):
    """Execute ``path`` as ``__main__`` with ``sys.argv = [path, *args]`` and the Keras alias."""
    from .compat import install_keras_alias

    if not os.path.isfile(path):
        print(f"axone run: no such file: {path}", file=sys.stderr)
        return 2
    install_keras_alias()
    sys.argv = [path] + list(args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def tour(chapters=None, out="axone_tour", quick=False):
    """``axone tour``: run the chapters (all by default) and print what each shows."""
    from .tour import CHAPTERS, run_tour

    if chapters is not None:
        unknown = [c for c in chapters if c not in CHAPTERS]
        if unknown:
            print(f"axone tour: unknown chapter(s) {', '.join(unknown)}; the chapters are "
                  f"{', '.join(CHAPTERS)}", file=sys.stderr)
            return 2
    results = run_tour(chapters, out=out, quick=quick)
    return 0 if all(m.beats_baseline for r in results for m in r.metrics) else 1


def _chapter_list(text):
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected chapter names separated by commas")
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(prog="axone", description="Keras-compatible deep learning on NumPy")
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="train the course's iris and Boston networks on the bundled data")
    d.add_argument("--epochs", type=int, default=60)
    d.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    r = sub.add_parser("run", help="run a Keras script with keras/tensorflow.keras mapped to axone")
    r.add_argument("script")
    r.add_argument("args", nargs=argparse.REMAINDER)
    t = sub.add_parser("tour", help="run every course chapter's example on the bundled data, "
                                    "saving each chapter's plot as PNG")
    t.add_argument("--out", default="axone_tour", help="folder for the plots (default ./axone_tour)")
    t.add_argument("--chapters", type=_chapter_list, default=None,
                   help="comma-separated chapters to run (default all; see --list)")
    t.add_argument("--quick", action="store_true", help="fewer epochs and samples")
    t.add_argument("--list", action="store_true", help="list the chapters and exit")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.epochs, args.epochs, verbose=args.verbose)
    if args.command == "run":
        return run_script(args.script, args.args)
    if args.command == "tour":
        if args.list:
            from .tour import CHAPTERS
            for name, (title, _) in CHAPTERS.items():
                print(f"{name:15s} {title}")
            return 0
        return tour(args.chapters, out=args.out, quick=args.quick)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
