"""Training callbacks (Keras hooks): History, EarlyStopping, progress output."""
import sys
import time
import warnings

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ProgbarLogger", "LambdaCallback"]


class Callback:
    """Base class: override any of Keras's hooks; ``self.model`` is set by ``fit``."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


class CallbackList:
    """Dispatches each hook to every callback; skips per-batch hooks nobody overrides."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for c in self.callbacks:
            if not isinstance(c, Callback):
                raise TypeError(f"fit: callbacks must be Callback instances, received {type(c).__name__}")
            c.set_model(model)
            c.set_params(params)
        self.batch_hooks = [c for c in self.callbacks
                            if type(c).on_train_batch_end is not Callback.on_train_batch_end
                            or type(c).on_train_batch_begin is not Callback.on_train_batch_begin]

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for c in self.callbacks:
                getattr(c, hook)(*args, **kwargs)
        return call


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"]`` etc."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving.

    Args:
        monitor: quantity to watch (default ``"val_loss"``).
        min_delta: smallest change counted as an improvement.
        patience: epochs without improvement after which training stops.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy-like names).
        baseline: value the monitor must beat.
        restore_best_weights: restore the weights of the best epoch when stopping.
        start_from_epoch: epochs to wait before counting.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be non-negative, received {patience}")
        if start_from_epoch < 0:
            raise ValueError(f"EarlyStopping: start_from_epoch must be non-negative, received {start_from_epoch}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', received {mode!r}")
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        if mode == "auto":
            metric = monitor[4:] if monitor.startswith("val_") else monitor
            if any(s in metric for s in ("acc", "auc", "precision", "recall", "f1")):
                mode = "max"
            elif "loss" in metric or "error" in metric or metric in ("mse", "mae", "mape", "msle", "rmse"):
                mode = "min"
            else:
                raise ValueError(
                    f"EarlyStopping: cannot tell whether monitor={monitor!r} should be minimized or "
                    f"maximized; pass mode='min' or mode='max'")
        self.mode = mode
        self._warned = False

    def _better(self, current, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            if not self._warned:
                warnings.warn(
                    f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                    f"Available metrics are: {','.join(logs or {})}", stacklevel=2)
                self._warned = True
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._better(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: …)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        for name, f in dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                            on_train_begin=on_train_begin, on_train_end=on_train_end,
                            on_train_batch_begin=on_train_batch_begin,
                            on_train_batch_end=on_train_batch_end, **kwargs).items():
            if f is not None:
                setattr(self, name, f)


def _fmt(v):
    v = float(v)
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"


def _fmt_time(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s"
    return "0s"


def _per_step(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class ProgbarLogger(Callback):
    """Keras-style progress: verbose=1 a live bar per epoch, verbose=2 one line per epoch."""

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream

    @property
    def _out(self):
        return self.stream or sys.stdout

    def on_train_begin(self, logs=None):
        self.epochs = self.params.get("epochs", 1)
        self.steps = self.params.get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._last_draw = 0.0
        if self.verbose:
            print(f"Epoch {epoch + 1}/{self.epochs}", file=self._out)

    def _line(self, step, logs, final):
        elapsed = time.perf_counter() - self._start
        n = self.steps or step
        metrics = "".join(f" - {k}: {_fmt(v)}" for k, v in (logs or {}).items())
        if self.verbose == 2:
            return f"{n}/{n} - {_fmt_time(elapsed)} - {_per_step(elapsed / max(step, 1))}{metrics}"
        width = 20
        done = int(width * step / n) if n else width
        bar = "━" * done + ("━" if False else "") + " " * (width - done) if not final else "━" * width
        if final:
            timing = f"{_fmt_time(elapsed)} {_per_step(elapsed / max(step, 1))}"
        else:
            eta = elapsed / max(step, 1) * (n - step)
            timing = f"{_fmt_time(eta)} {_per_step(elapsed / max(step, 1))}"
        return f"{step}/{n} {bar} {timing}{metrics}"

    def on_train_batch_end(self, batch, logs=None):
        if self.verbose != 1:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.05:
            return
        self._last_draw = now
        self._out.write("\r" + self._line(batch + 1, logs, final=False))
        self._out.flush()

    def on_epoch_end(self, epoch, logs=None):
        if not self.verbose:
            return
        line = self._line(self.steps or 1, logs, final=True)
        if self.verbose == 1:
            self._out.write("\r" + line + "\x1b[K\n")
        else:
            self._out.write(line + "\n")
        self._out.flush()
