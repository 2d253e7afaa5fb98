"""Training callbacks (Keras hooks): History, EarlyStopping, progress output."""
import json
import os
import sys
import time
import types
import warnings

import numpy as np

from . import distribution, fileio
from .io_utils import is_interactive_logging_enabled, print_msg

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ProgbarLogger", "LambdaCallback",
           "ModelCheckpoint", "CSVLogger", "TerminateOnNaN", "LearningRateScheduler",
           "ReduceLROnPlateau", "BackupAndRestore", "SwapEMAWeights", "TensorBoard",
           "RemoteMonitor"]


class Callback:
    """Base class: override any of Keras's hooks; ``self.model`` is set by ``fit``."""

    #: printing and file-writing callbacks run only on rank 0 of a data-parallel run
    _chief_only = False

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


def _overrides(callback, hook):
    f = getattr(callback, hook)
    return getattr(f, "__func__", None) is not getattr(Callback, hook)


class CallbackList:
    """Dispatches each hook to every callback; skips per-batch hooks nobody overrides."""

    def __init__(self, callbacks, model, params, what="fit"):
        self.callbacks = list(callbacks)
        for c in self.callbacks:
            if not isinstance(c, Callback):
                raise TypeError(f"{what}: callbacks must be Callback instances, received {type(c).__name__}")
        if not distribution.is_chief():
            # data-parallel training: only rank 0 prints and writes files
            self.callbacks = [c for c in self.callbacks if not c._chief_only]
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)
        self.batch_hooks = self.hooks("train")

    def hooks(self, kind):
        """The callbacks that override ``on_{kind}_batch_begin`` or ``on_{kind}_batch_end``
        (kind: train, test, predict); the loops call only those per batch."""
        return [c for c in self.callbacks
                if _overrides(c, f"on_{kind}_batch_end") or _overrides(c, f"on_{kind}_batch_begin")]

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
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
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
    if np.ndim(v):
        return "[" + ", ".join(_fmt(x) for x in np.ravel(v)) + "]"
    v = float(v)
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"


def _fmt_time(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s"
    return "0s"


# The pieces of a progress-bar line, shared with utils.Progbar (Keras's formats).
def format_step_time(seconds, unit_name="step"):
    """``3s/step`` from 1 s on (and for 0), ``12ms/step`` from 1 ms, ``850us/step`` below."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def format_eta(eta):
    """Remaining time: ``h:mm:ss`` above an hour, ``m:ss`` above a minute, else ``Ns``."""
    if eta > 3600:
        return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
    if eta > 60:
        return "%d:%02d" % (eta // 60, eta % 60)
    return "%ds" % eta


def bar_string(current, target, width=20, color=False):
    """``' 3/10 ━━━━━━              '``: the step count right-aligned to the target's digits, then
    ``int(width · current / target)`` filled cells. Plain, the rest is blank; with ``color``
    (Keras's terminal form) the count is bold, the filled cells green and the rest white ``━``.
    Returns the string and its printed width."""
    count = f"%{len(str(int(target)))}d/%d" % (current, target)
    filled = max(0, min(width, int(width * float(current) / target)))
    printed = len(count) + 1 + width
    if not color:
        return f"{count} {'━' * filled}{' ' * (width - filled)}", printed
    bar = f"\x1b[1m{count}\x1b[0m "
    if filled > 0:
        bar += f"\x1b[32m{'━' * filled}\x1b[0m"
    return bar + f"\x1b[37m{'━' * (width - filled)}\x1b[0m", printed


_per_step = format_step_time


class ProgbarLogger(Callback):
    """Keras-style progress for fit, evaluate and predict: verbose=1 a live bar
    (``N/N ━━━━ 0s Xms/step - loss: …``), verbose=2 one line per epoch (or per call).
    Inside ``fit`` the validation passes are silent, as Keras."""

    _chief_only = True

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self._called_in_fit = False
        self.epochs, self.steps = 1, None

    @property
    def _out(self):
        return self.stream or sys.stdout

    def set_params(self, params):
        super().set_params(params)
        v = params.get("verbose", self.verbose)
        self.verbose = 1 if v == "auto" else v
        self.epochs = params.get("epochs", 1)
        self.steps = params.get("steps")

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def _begin(self):
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._seen = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._begin()
        if self.verbose and self.epochs > 1:
            print_msg(f"Epoch {epoch + 1}/{self.epochs}", stream=self.stream)

    def _line(self, step, logs, final):
        elapsed = time.perf_counter() - self._start
        n = self.steps or step
        count = f"{step:>{len(str(n))}}/{n}"
        metrics = "".join(f" - {k}: {_fmt(v)}" for k, v in (logs or {}).items())
        if self.verbose == 2:
            return f"{count} - {_fmt_time(elapsed)} - {_per_step(elapsed / max(step, 1))}{metrics}"
        bar, _ = bar_string(n if final else step, n)
        if final:
            timing = f"{_fmt_time(elapsed)} {_per_step(elapsed / max(step, 1))}"
        else:
            eta = elapsed / max(step, 1) * (n - step)
            timing = f"{format_eta(eta)} {_per_step(elapsed / max(step, 1))}"
        return f"{bar} {timing}{metrics}"

    def _update(self, batch, logs):
        self._seen = batch + 1
        if self.verbose != 1 or not is_interactive_logging_enabled():
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.05:
            return
        self._last_draw = now
        print_msg("\r" + self._line(batch + 1, logs, final=False), line_break=False,
                  stream=self.stream)

    def _finish(self, logs):
        if not self.verbose:
            return
        line = self._line(self.steps or self._seen or 1, logs, final=True)
        if self.verbose == 1:
            print_msg("\r" + line + "\x1b[K", stream=self.stream)
        else:
            print_msg(line, stream=self.stream)

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finish(logs)

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._begin()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finish(logs)

    def on_predict_begin(self, logs=None):
        self._begin()

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch, None)       # the outputs are not shown

    def on_predict_end(self, logs=None):
        self._finish(None)


# --------------------------------------------------------------------------- monitors
def _monitor_mode(monitor, mode, who):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', received {mode!r}")
    if mode != "auto":
        return mode
    metric = monitor[4:] if monitor.startswith("val_") else monitor
    if any(s in metric for s in ("acc", "auc", "precision", "recall", "f1")):
        return "max"
    return "min"


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after every epoch, or only when ``monitor`` improves.

    ``filepath`` may hold ``{epoch}`` (1-based) and any log name: ``"ckpt{epoch:04d}.keras"``,
    ``"best-{val_loss:.2f}.weights"``.  Each file is written atomically, so an interrupted
    run never leaves a broken checkpoint.  The extension picks the format as ``model.save`` /
    ``save_weights`` do: ``.keras`` (Keras 3 archive), ``.h5`` (Keras 2 HDF5), ``.weights.h5``
    (Keras 3 weights) with ``save_weights_only=True``, any other name axone's own archive.
    """

    _chief_only = True

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive integer, "
                             f"received {save_freq!r}")
        self.filepath = str(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _monitor_mode(monitor, mode, "ModelCheckpoint")
        self.save_freq = save_freq
        self.best = initial_value_threshold
        self._batches = 0
        self._warned = False

    def _better(self, current):
        if self.best is None:
            return True
        return current < self.best if self.mode == "min" else current > self.best

    def _path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **(logs or {}))
        except KeyError as e:
            raise KeyError(f"ModelCheckpoint: filepath {self.filepath!r} refers to {e}, which is not "
                           f"in the logs {sorted(logs or {})}") from None

    def _save(self, epoch, logs):
        path = self._path(epoch, logs)
        if self.save_best_only:
            current = (logs or {}).get(self.monitor)
            if current is None:
                if not self._warned:
                    warnings.warn(f"Can save best model only with {self.monitor} available, skipping.",
                                  stacklevel=3)
                    self._warned = True
                return
            if not self._better(current):
                if self.verbose > 0:
                    print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                prev = "inf" if self.best is None else f"{self.best:.5f}"
                print_msg(f"\nEpoch {epoch + 1}: {self.monitor} improved from {prev} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._batches += 1
            if self._batches % self.save_freq == 0:
                self._save(self._epoch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)


class CSVLogger(Callback):
    """Stream epoch results to a CSV file: ``epoch`` then the log keys."""

    _chief_only = True

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = str(filename), separator, append
        self.keys = None

    def on_train_begin(self, logs=None):
        import os
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._header_written = exists
        if exists:
            with open(self.filename) as f:
                self.keys = f.readline().strip().split(self.sep)[1:]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if not self._header_written:
            self._file.write(self.sep.join(["epoch"] + self.keys) + "\n")
            self._header_written = True
        row = [str(epoch)] + [repr(float(logs[k])) if k in logs else "NA" for k in self.keys]
        self._file.write(self.sep.join(row) + "\n")
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print_msg(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class SwapEMAWeights(Callback):
    """Evaluate (and predict) with the optimizer's moving averages of the weights (Keras 3).

    With an optimizer made with ``use_ema=True``, the model's weights and their exponential moving
    averages are swapped in place before each evaluation (fit's validation, ``evaluate``,
    ``predict``) and swapped back after it. ``swap_on_epoch=True`` also puts the averages into
    the model at the end of every epoch (for callbacks such as ``ModelCheckpoint`` that follow)
    and takes them out at the start of the next; after the last epoch both hold the averages.
    """

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = bool(swap_on_epoch)
        self._ema_weights_in_model = False

    def _pairs(self):
        opt = getattr(self.model, "optimizer", None)
        if opt is None or not getattr(opt, "use_ema", False):
            raise ValueError(f"SwapEMAWeights must be used when `use_ema=True` is set on the "
                             f"optimizer. Received: use_ema={getattr(opt, 'use_ema', None)}")
        return opt._ema_pairs(self.model.trainable_weights)

    def _swap(self):
        for w, avg in self._pairs():           # none before the first training step
            tmp = w.copy()
            np.copyto(w, avg)
            np.copyto(avg, tmp)

    def _swap_in(self):
        if not self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = True

    def _swap_out(self):
        if self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap_out()

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap_in()
            if epoch == self.params.get("epochs", 0) - 1:
                for w, avg in self._pairs():   # the averages stay in the model after training
                    np.copyto(avg, w)

    def on_test_begin(self, logs=None):
        self._swap_in()

    def on_test_end(self, logs=None):
        self._swap_out()

    def on_predict_begin(self, logs=None):
        self._swap_in()

    def on_predict_end(self, logs=None):
        self._swap_out()


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch start: ``schedule(epoch, lr) -> new_lr``
    (or ``schedule(epoch)``); the rate is logged as ``learning_rate``."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, received {schedule!r}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(opt.learning_rate))
        except TypeError:
            lr = self.schedule(epoch)
        lr = float(lr)
        if not np.isfinite(lr):
            raise ValueError(f"LearningRateScheduler: the schedule returned {lr} at epoch {epoch}")
        opt.learning_rate = lr
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (not below ``min_lr``; then wait ``cooldown`` epochs)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if factor >= 1.0 or factor <= 0:
            raise ValueError(f"ReduceLROnPlateau: factor must lie in (0, 1), received {factor}")
        if patience < 0:
            raise ValueError(f"ReduceLROnPlateau: patience must be non-negative, received {patience}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.min_delta, self.cooldown, self.min_lr = verbose, min_delta, cooldown, min_lr
        self.mode = _monitor_mode(monitor, mode, "ReduceLROnPlateau")
        self._warned = False
        self._reset()

    def _reset(self):
        self.best = np.inf if self.mode == "min" else -np.inf
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            if not self._warned:
                warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                              f"which is not available. Available metrics are: {','.join(logs)}.",
                              stacklevel=2)
                self._warned = True
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        better = current < self.best - self.min_delta if self.mode == "min" else current > self.best + self.min_delta
        if better:
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    opt.learning_rate = new
                    if self.verbose > 0:
                        print_msg(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class BackupAndRestore(Callback):
    """Back up the model and optimizer state every epoch in ``backup_dir``; a later ``fit``
    with the same callback resumes from the last completed epoch (after a crash or kill).

    The backup is one archive, ``backup_dir/latest.axone``, holding the weights, the optimizer
    state and the epoch, replaced atomically at each epoch end: a kill at any moment resumes at
    the epoch that matches the weights.  On resume the weights must fit the model
    (``axone.fileio.FileFormatError`` otherwise); an optimizer state that is not the state of the
    model's current optimizer (the optimizer was changed) is skipped with a warning and starts
    fresh, as Keras does.  Older backups (a model file plus ``training_state.json``) still load.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: backup_dir is required")
        if save_freq != "epoch":
            raise ValueError("BackupAndRestore: only save_freq='epoch' is supported")
        self.backup_dir = str(backup_dir)
        self.delete_checkpoint = delete_checkpoint

    @property
    def _model_path(self):
        return os.path.join(self.backup_dir, "latest.axone")

    @property
    def _epoch_path(self):
        return os.path.join(self.backup_dir, "training_state.json")

    def _legacy_epoch(self):
        """The epoch of an older backup, kept beside it in ``training_state.json``."""
        path = self._epoch_path
        if not os.path.exists(path):
            return None
        fileio.check_regular_file(path, "backup training state")
        with open(path, "rb") as f:
            raw = f.read(4097)
        try:
            epoch = json.loads(raw.decode("utf-8"))["epoch"] if len(raw) <= 4096 else None
        except (ValueError, UnicodeError, KeyError, TypeError):
            epoch = None
        if type(epoch) is not int or epoch < -1:
            raise fileio.FileFormatError(path, "must hold {\"epoch\": int}")
        return epoch

    def on_train_begin(self, logs=None):
        fileio.remove_stale_temps(self._model_path)
        if not os.path.exists(self._model_path):
            return
        state = self.model._restore_backup(self._model_path)
        epoch = state["epoch"] if state is not None else self._legacy_epoch()
        if epoch is not None:
            self.model._resume_epoch = epoch + 1

    def on_epoch_end(self, epoch, logs=None):
        if not distribution.is_chief():     # every rank restores; rank 0 writes
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        self.model._save_backup(self._model_path, {"epoch": int(epoch)})
        if os.path.exists(self._epoch_path):      # an older backup's separate epoch file
            os.remove(self._epoch_path)

    def on_train_end(self, logs=None):
        import os
        if self.delete_checkpoint and distribution.is_chief() and \
                not getattr(self.model, "stop_training_interrupted", False):
            for p in (self._model_path, self._epoch_path):
                if os.path.exists(p):
                    os.remove(p)


# --------------------------------------------------------------------------- reporting
def _summary_writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError("TensorBoard needs tensorboardX, which is not installed: pip install "
                          "tensorboardX (or pip install 'axone[tensorboard]')") from None
    return SummaryWriter


def _check_profile_batch(profile_batch):
    """Keras's accepted forms: a non-negative int, a pair ``(start, stop)`` of positive ints with
    start ≤ stop, or the same as a string ``"start,stop"``; returns (start, stop)."""
    message = (f"TensorBoard: profile_batch must be a non-negative integer or 2-tuple of positive "
               f"integers. A pair of positive integers signifies a range of batches to profile. "
               f"Found: {profile_batch!r}")
    value = profile_batch
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(message) from None
        value = value[0] if len(value) == 1 else value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        start = stop = int(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        start, stop = int(value[0]), int(value[1])
    else:
        raise ValueError(message)
    if start < 0 or stop < start:
        raise ValueError(message)
    return start, stop


class TensorBoard(Callback):
    """Write TensorBoard event files: ``log_dir/train`` and ``log_dir/validation``, as Keras 3.

    - every epoch: ``epoch_<name>`` scalars of the training logs (plus ``epoch_learning_rate``,
      and ``epoch_steps_per_second`` with ``write_steps_per_second``) in ``train``, and of the
      ``val_`` logs (prefix removed) in ``validation``, at step ``epoch``;
    - ``update_freq="batch"`` or an integer N: ``batch_<name>`` scalars every N training batches,
      at the step counted from the start of training (1-based);
    - each evaluation (fit's validation passes, ``evaluate``):
      ``evaluation_<name>_vs_iterations`` in ``validation`` at step ``optimizer.iterations``;
    - ``histogram_freq`` N: a histogram ``<weight path>/histogram`` of every layer weight every
      N epochs, and with ``write_images`` each weight as an image ``<weight path>/image``;
    - ``write_graph``: the model's JSON configuration (tag ``keras``, TensorBoard's
      ``graph_keras_model`` plugin) for functional and Sequential models.

    The events are written with tensorboardX's ``SummaryWriter`` (``pip install tensorboardX``).
    Profiling (``profile_batch``) and the embedding projector (``embeddings_freq``) are not
    available in axone and raise ``NotImplementedError`` when asked for.
    """

    _chief_only = True

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, (int, np.integer)) \
                or histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be a non-negative integer, "
                             f"received {histogram_freq!r}")
        if update_freq not in ("epoch", "batch") and (
                isinstance(update_freq, bool) or not isinstance(update_freq, (int, np.integer))
                or update_freq < 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                             f"integer, received {update_freq!r}")
        if isinstance(embeddings_freq, bool) or not isinstance(embeddings_freq, (int, np.integer)) \
                or embeddings_freq < 0:
            raise ValueError(f"TensorBoard: embeddings_freq must be a non-negative integer, "
                             f"received {embeddings_freq!r}")
        start, stop = _check_profile_batch(profile_batch)
        if start or stop:
            raise NotImplementedError(f"TensorBoard: profile_batch={profile_batch!r} is not "
                                      f"supported by axone (no profiler); use profile_batch=0")
        if embeddings_freq:
            raise NotImplementedError(f"TensorBoard: embeddings_freq={embeddings_freq} is not "
                                      f"supported by axone (no embedding projector); use "
                                      f"embeddings_freq=0")
        self._writer_class = _summary_writer_class()
        self.log_dir = str(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = bool(write_graph)
        self.write_images = bool(write_images)
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.embeddings_freq = int(embeddings_freq)
        self.embeddings_metadata = embeddings_metadata
        self._writers = {}
        self._training = False
        self._global_train_batch = 0
        self._previous_epoch_iterations = 0
        self._epoch_start_time = time.time()
        self._batch_start_time = time.time()
        if self.update_freq == "epoch":     # nothing per batch: the loops skip the batch hooks
            self.on_train_batch_begin = types.MethodType(Callback.on_train_batch_begin, self)
            self.on_train_batch_end = types.MethodType(Callback.on_train_batch_end, self)

    # ---- writers
    def set_model(self, model):
        super().set_model(model)
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._close_writers()
        if self.write_graph:
            self._write_model_summary()

    def _writer(self, which):
        w = self._writers.get(which)
        if w is None:
            path = self._train_dir if which == "train" else self._val_dir
            w = self._writers[which] = self._writer_class(logdir=path)
        return w

    def _close_writers(self):
        for w in self._writers.values():
            w.close()
        self._writers = {}

    def _flush(self):
        for w in self._writers.values():
            w.flush()

    def _write_model_summary(self):
        """The model's JSON as TensorBoard's conceptual graph (the ``graph_keras_model``
        plugin reads a string tensor tagged ``keras`` at step 0)."""
        if not getattr(self.model, "_is_graph", False):
            return
        try:
            text = self.model.to_json()
        except Exception as e:          # a model that cannot be written stays trainable
            warnings.warn(f"Model failed to serialize as JSON. Ignoring... {e}", stacklevel=3)
            return
        from tensorboardX.proto import types_pb2
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.proto.tensor_pb2 import TensorProto
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="graph_keras_model", content=b"1"))
        tensor = TensorProto(dtype=types_pb2.DT_STRING, string_val=[text.encode("utf-8")])
        summary = Summary(value=[Summary.Value(tag="keras", metadata=meta, tensor=tensor)])
        writer = self._writer("train")
        writer._get_file_writer().add_summary(summary, global_step=0)
        writer.flush()

    # ---- hooks
    def on_train_begin(self, logs=None):
        self._training = True
        self._global_train_batch = 0
        self._previous_epoch_iterations = 0

    def on_train_end(self, logs=None):
        self._training = False
        self._close_writers()

    def on_predict_end(self, logs=None):
        if not self._training:
            self._close_writers()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        step = self._global_train_batch
        writer = self._writer("train")
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._batch_start_time, 1e-12)
            writer.add_scalar("batch_steps_per_second", 1.0 / elapsed, step)
        if isinstance(logs, dict):
            for name, value in logs.items():
                writer.add_scalar(f"batch_{name}", float(np.mean(value)), step)

    def on_test_end(self, logs=None):
        opt = getattr(self.model, "optimizer", None)
        if opt is None or not logs:
            if not self._training:
                self._close_writers()
            return
        writer = self._writer("val")
        step = int(opt.iterations)
        for name, value in logs.items():
            writer.add_scalar(f"evaluation_{name}_vs_iterations", float(np.mean(value)), step)
        if not self._training:       # evaluate on its own: the events reach the files now
            self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._previous_epoch_iterations = int(self.model.optimizer.iterations)
            self._epoch_start_time = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self._log_epoch_metrics(epoch, logs)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        self._flush()

    # ---- what is written
    def _learning_rates(self, logs):
        opt = self.model.optimizer
        opt = getattr(opt, "inner_optimizer", opt)
        subs = getattr(opt, "optimizers", None)
        if subs is not None:
            for sub in subs:
                logs[f"learning_rate_{sub.name}"] = float(sub.learning_rate)
        elif opt is not None:
            logs["learning_rate"] = float(opt.learning_rate)
        return logs

    def _log_epoch_metrics(self, epoch, logs):
        if not logs:
            return
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        train = self._learning_rates(train)
        if self.write_steps_per_second:
            steps = int(self.model.optimizer.iterations) - self._previous_epoch_iterations
            train["steps_per_second"] = steps / max(time.time() - self._epoch_start_time, 1e-12)
        for which, values in (("train", train), ("val", val)):
            if values:
                writer = self._writer(which)
                for name, value in values.items():
                    writer.add_scalar(f"epoch_{name}", float(np.mean(value)), epoch)

    def _log_weights(self, epoch):
        writer = self._writer("train")
        for layer in self.model.layers:
            for weight in layer.weights:
                name = weight.path.replace(":", "_")
                values = np.asarray(getattr(weight, "data", weight))
                writer.add_histogram(f"{name}/histogram", values, epoch)
                if self.write_images:
                    image = self._weight_image(values)
                    if image is not None:
                        writer.add_images(f"{name}/image", image[:3], epoch,
                                          dataformats="NHWC")

    @staticmethod
    def _weight_image(w):
        """A weight as images (N, H, W, C) as Keras draws it: a bias as one row, a kernel as one
        image with the longer side across, a 3-D kernel as one image per last-axis slice;
        None for shapes Keras does not draw."""
        w = np.squeeze(w)
        if w.ndim == 1:
            w = w.reshape(1, w.shape[0], 1, 1)
        elif w.ndim == 2:
            if w.shape[0] > w.shape[1]:
                w = w.T
            w = w.reshape(1, w.shape[0], w.shape[1], 1)
        elif w.ndim == 3:
            w = np.transpose(w, (2, 0, 1))[..., None]
        if w.ndim == 4 and w.shape[-1] in (1, 3, 4):
            return w.astype(np.float32)
        return None


class RemoteMonitor(Callback):
    """POST each epoch's logs to a server: ``root + path``, the logs (and ``"epoch"``) as JSON.

    With ``send_as_json=False`` (default) the JSON goes in a form field ``field``
    (``application/x-www-form-urlencoded``); with ``send_as_json=True`` it is the request body
    (``application/json``). ``headers`` are added to the request. A server that cannot be
    reached gives a warning and training goes on. Sent with the standard library's
    ``urllib.request``.
    """

    _chief_only = True

    def __init__(self, root="http://localhost:9000", path="/publish/epoch/end/", field="data",
                 headers=None, send_as_json=False):
        super().__init__()
        if headers is not None and not isinstance(headers, dict):
            raise TypeError(f"RemoteMonitor: headers must be a dict or None, received "
                            f"{type(headers).__name__}")
        self.root = root
        self.path = path
        self.field = field
        self.headers = headers
        self.send_as_json = send_as_json

    def on_epoch_end(self, epoch, logs=None):
        import urllib.error
        import urllib.parse
        import urllib.request
        send = {"epoch": epoch}
        for k, v in (logs or {}).items():
            send[k] = v.item() if isinstance(v, (np.ndarray, np.generic)) else v
        headers = dict(self.headers or {})
        if self.send_as_json:
            body = json.dumps(send).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode("ascii")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        request = urllib.request.Request(self.root + self.path, data=body, headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request) as response:
                response.read()
        except urllib.error.HTTPError:      # the server answered: as with requests, no error
            pass
        except (urllib.error.URLError, OSError, ValueError):
            warnings.warn(f"Could not reach RemoteMonitor root server at {self.root}",
                          stacklevel=2)
