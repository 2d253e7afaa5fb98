"""The training loop: compile, fit, evaluate, predict and the *_on_batch variants.

One step: zero the flat gradient buffer, run the model forward on the batch,
compute the compiled loss (plus the weights' penalties), ``backward()``, and
let the optimizer update the flat parameter buffer in one vectorized pass.
Keras semantics kept: ``validation_split`` takes the last rows before any
shuffling, rows are reshuffled every epoch, the reported training loss is the
running mean over the epoch's batches (weighted by batch size).
"""
import math
import warnings

import numpy as np

from .. import backend, losses as losses_mod, metrics as metrics_mod, optimizers
from ..autograd.function import no_grad
from ..autograd.tensor import Tensor, finish_fresh_grads, mark_fresh_grads
from ..callbacks import CallbackList, History, ProgbarLogger
from .data import cast_inputs, check_finite, n_rows, to_arrays

_LOSS_KIND = {
    losses_mod.categorical_crossentropy: "categorical",
    losses_mod.sparse_categorical_crossentropy: "sparse",
    losses_mod.binary_crossentropy: "binary",
    losses_mod.mean_squared_error: "regression",
    losses_mod.mean_absolute_error: "regression",
}


def _loss_kind(loss_obj):
    fn = getattr(loss_obj, "fn", loss_obj)
    return _LOSS_KIND.get(fn)


class Trainer:
    """compile / fit / evaluate / predict for :class:`~axone.models.Model`."""

    def __init__(self):
        self.compiled = False
        self.optimizer = None
        self.loss = None
        self.stop_training = False
        self.history = None
        self._buffer = None       # (vars, params_flat, grads_flat, segments)
        self._regularized = []
        self._constrained = []    # trainable weights with a constraint, applied after each update
        self._has_activity_reg = True

    # ------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Configure training: ``compile(optimizer="adam", loss="mse", metrics=["mae"])``."""
        self.optimizer = optimizers.get(optimizer)
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='mse' or "
                             "loss='categorical_crossentropy'")
        self.loss = loss
        self._loss_spec = loss
        self._loss_weights_spec = loss_weights
        self._metrics_spec = metrics
        self._weighted_spec = weighted_metrics
        self._metrics_key = None
        self._metric_objs = None
        # validate names now, so a typo fails at compile time
        for l in (loss if isinstance(loss, (list, tuple)) else
                  loss.values() if isinstance(loss, dict) else [loss]):
            if l is not None:
                losses_mod.get(l)
        for m in _flat_metric_specs(metrics) + _flat_metric_specs(weighted_metrics):
            if m not in ("accuracy", "acc"):
                metrics_mod.get(m)
        self.compiled = True
        self._compiled_for = None
        self.stop_training = False

    def _assert_compiled(self, what):
        if not getattr(self, "compiled", False):
            raise ValueError(f"{what}: you must call compile() on model {self.name!r} before {what}(), "
                             f"e.g. model.compile(optimizer='adam', loss='mse')")

    def _output_names(self):
        names, seen = [], {}
        for t in self._outputs:
            n = t._history[0].name
            if n in seen:
                seen[n] += 1
                n = f"{n}_{seen[n]}"
            else:
                seen[n] = 0
            names.append(n)
        return names

    def _setup_compiled(self):
        """Resolve losses and metrics per output once the model's outputs are known."""
        if self._compiled_for is self._nodes_key():
            return
        n_out = len(self._outputs)
        names = self._output_names()
        spec = self._loss_spec
        if isinstance(spec, dict):
            unknown = set(spec) - set(names)
            if unknown:
                raise ValueError(f"compile: loss dict keys {sorted(unknown)} are not output names; "
                                 f"outputs are {names}")
            spec = [spec.get(n) for n in names]
        elif isinstance(spec, (list, tuple)):
            if len(spec) != n_out:
                raise ValueError(f"compile: the model has {n_out} output(s) but {len(spec)} losses were given")
            spec = list(spec)
        else:
            spec = [spec] * n_out
        self._loss_objs = [None if s is None else losses_mod.as_loss_object(s) for s in spec]
        lw = self._loss_weights_spec
        if lw is None:
            lw = [1.0] * n_out
        elif isinstance(lw, dict):
            lw = [float(lw.get(n, 1.0)) for n in names]
        else:
            lw = [float(w) for w in (lw if isinstance(lw, (list, tuple)) else [lw])]
            if len(lw) != n_out:
                raise ValueError(f"compile: {len(lw)} loss_weights for {n_out} output(s)")
        self._loss_weights = lw
        self._metrics_per_out = self._per_output_specs(self._metrics_spec, names, "metric")
        self._weighted_per_out = self._per_output_specs(self._weighted_spec, names, "weighted metric")
        self._build_metrics(None)
        self._compiled_for = self._nodes_key()
        self._refresh_penalties()

    def _per_output_specs(self, mspec, names, what):
        n_out = len(names)
        if mspec is None:
            return [[] for _ in range(n_out)]
        if isinstance(mspec, dict):
            return [_as_list(mspec.get(n)) for n in names]
        if isinstance(mspec, (list, tuple)) and n_out > 1 and mspec and all(
                isinstance(m, (list, tuple)) or m is None for m in mspec):
            if len(mspec) != n_out:
                raise ValueError(f"compile: {len(mspec)} {what} lists for {n_out} output(s)")
            return [_as_list(m) for m in mspec]
        return [_as_list(mspec) for _ in range(n_out)]

    def _build_metrics(self, ys):
        """Metric objects per output; ``"accuracy"`` is resolved from the target and output
        shapes as Keras 3 does, so it is rebuilt once the targets are known."""
        key = None if ys is None else tuple((a.ndim, a.shape[-1] if a.ndim else None) for a in ys)
        if ys is None and getattr(self, "_metrics_key", None) is not None:
            return
        if getattr(self, "_metrics_key", None) == key and getattr(self, "_metric_objs", None) is not None \
                and self._metrics_nodes is self._nodes_key():
            return
        names = self._output_names()
        n_out = len(names)
        self._metric_objs, self._metric_weighted = [], []
        for i in range(n_out):
            objs, weighted = [], []
            y_shape = None if ys is None else ys[i].shape
            plain = set()
            for specs, flag in ((self._metrics_per_out[i], False), (self._weighted_per_out[i], True)):
                for m in specs:
                    obj = metrics_mod.resolve(m, self._loss_objs[i], self._outputs[i].shape, y_shape)
                    if flag and obj.name in plain:       # Keras: weighted_accuracy beside accuracy
                        obj.name = f"weighted_{obj.name}"
                    elif not flag:
                        plain.add(obj.name)
                    if n_out > 1:
                        obj.name = f"{names[i]}_{obj.name}"
                    objs.append(obj)
                    weighted.append(flag)
            self._metric_objs.append(objs)
            self._metric_weighted.append(weighted)
        self._metrics_key = key
        self._metrics_nodes = self._nodes_key()

    def _refresh_penalties(self):
        """Cache which weights carry a regularizer and whether any layer has an activity one."""
        seen, reg = set(), []
        for w in self.trainable_weights:      # Keras 3: frozen weights are not penalized
            if id(w) not in seen and w.regularizer is not None:
                seen.add(id(w))
                reg.append(w)
        self._regularized = reg
        self._constrained = [w for w in self.trainable_weights if w.constraint is not None]
        self._has_activity_reg = any(getattr(l, "activity_regularizer", None) is not None
                                     for l in _all_layers(self))

    def _nodes_key(self):
        return getattr(self, "_nodes", None)

    @property
    def metrics_names(self):
        """Names of the values ``evaluate`` returns: ``["loss", *metrics]``."""
        if not getattr(self, "compiled", False) or not self._is_graph:
            return ["loss"] if getattr(self, "compiled", False) else []
        self._setup_compiled()
        names = ["loss"]
        if len(self._outputs) > 1:
            names += [f"{n}_loss" for n in self._output_names()]
        names += [m.name for ms in self._metric_objs for m in ms]
        return names

    @property
    def metrics(self):
        if not getattr(self, "compiled", False) or not self._is_graph:
            return []
        self._setup_compiled()
        return [m for ms in self._metric_objs for m in ms]

    # ---------------------------------------------------- parameter buffer
    def _param_buffer(self):
        """Move trainable weights into one contiguous buffer (and their grads into another)."""
        tw = self.trainable_weights
        buf = self._buffer
        if buf is not None and len(buf[0]) == len(tw) and all(
                a is b and a.data.base is buf[1] for a, b in zip(buf[0], tw)):
            return buf
        if not tw:
            self._buffer = ([], None, None)
            return self._buffer
        dtypes = {w.dtype for w in tw}
        dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(backend.floatx())
        total = sum(w.data.size for w in tw)
        params = np.empty(total, dtype=dtype)
        grads = np.zeros(total, dtype=dtype)
        off = 0
        segments = []
        for w in tw:
            n = w.data.size
            params[off:off + n] = w.data.reshape(-1)
            w.data = params[off:off + n].reshape(w.data.shape)
            w.grad = grads[off:off + n].reshape(w.data.shape)
            segments.append(slice(off, off + n))
            off += n
        self._buffer = (list(tw), params, grads, segments)
        return self._buffer

    # ------------------------------------------------------------ data prep
    def _n_inputs(self):
        return len(self._inputs) if self._is_graph else 1

    def _prepare_x(self, x, what="x"):
        if x is None:
            raise ValueError(f"{what}: no input data was given")
        xs = to_arrays(x, what, self._n_inputs())
        if isinstance(xs, dict):
            if not self._is_graph:
                raise ValueError(f"{what}: a dict of inputs needs a model with named inputs")
            names = [t._history[0].name for t in self._inputs]
            missing = [n for n in names if n not in xs]
            if missing:
                raise ValueError(f"{what}: missing input(s) {missing}; the model's inputs are {names}")
            xs = [xs[n] for n in names]
        for a in xs:
            if a.ndim == 0:
                raise ValueError(f"{what}: expected an array with a batch dimension, received a scalar")
        check_finite(xs, what)
        self._ensure_built_from_arrays(xs)
        if len(xs) != len(self._inputs):
            raise ValueError(f"{what}: model {self.name!r} expects {len(self._inputs)} input array(s), "
                             f"received {len(xs)}")
        for i, (a, t) in enumerate(zip(xs, self._inputs)):
            want = t.shape[1:]
            got = a.shape[1:]
            if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
                name = what if len(xs) == 1 else f"{what}[{i}]"
                raise ValueError(
                    f"{name}: model {self.name!r} expects input shape "
                    f"(None, {', '.join('None' if d is None else str(d) for d in want)}) "
                    f"but received an array of shape {a.shape}")
        return cast_inputs(xs, self._input_dtypes())

    def _ensure_built_from_arrays(self, xs):
        if not self._is_graph:
            if not self.built:
                self._ensure_built_from_data(xs[0] if len(xs) == 1 else xs)
            if not self._is_graph:
                raise ValueError(f"Model {self.name!r} has no functional graph; training a subclassed "
                                 f"model needs Sequential or Model(inputs, outputs)")

    def _prepare_y(self, y, n, what="y"):
        if y is None:
            raise ValueError(f"{what}: targets are required for training and evaluation")
        ys = to_arrays(y, what, len(self._outputs))
        if isinstance(ys, dict):
            names = self._output_names()
            missing = [nm for nm in names if nm not in ys]
            if missing:
                raise ValueError(f"{what}: missing target(s) {missing}; the outputs are {names}")
            ys = [ys[nm] for nm in names]
        if len(ys) != len(self._outputs):
            raise ValueError(f"{what}: model {self.name!r} has {len(self._outputs)} output(s) but "
                             f"{len(ys)} target array(s) were given")
        check_finite(ys, what)
        for i, a in enumerate(ys):
            if a.ndim == 0 or a.shape[0] != n:
                raise ValueError(
                    f"x and {what} must have the same number of rows: x has {n}, {what} has "
                    f"{a.shape[0] if a.ndim else 'a scalar'}")
            self._check_target(i, a, what if len(ys) == 1 else f"{what}[{i}]")
        fx = np.dtype(backend.floatx())
        if what == "y":
            self._build_metrics(ys)
        return [a if (_loss_kind(self._loss_objs[i]) == "sparse" or a.dtype == fx) else a.astype(fx)
                for i, a in enumerate(ys)]

    def _check_target(self, i, y, what):
        loss = self._loss_objs[i]
        if loss is None:
            return
        out = self._outputs[i].shape
        kind = _loss_kind(loss)
        lname = getattr(loss, "name", "loss")
        if kind == "categorical":
            if tuple(y.shape[1:]) != tuple(out[1:]):
                if (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)) and out[-1] and out[-1] > 1:
                    raise ValueError(
                        f"{what}: loss {lname!r} expects one-hot targets of shape (None, {out[-1]}), "
                        f"received integer class labels of shape {y.shape}; use "
                        f"loss='sparse_categorical_crossentropy', or one-hot encode the labels with "
                        f"utils.to_categorical(y, {out[-1]})")
                raise ValueError(f"{what}: loss {lname!r} expects targets of shape "
                                 f"(None, {', '.join(str(d) for d in out[1:])}), received {y.shape}")
        elif kind == "sparse":
            k = out[-1]
            if not (y.ndim == len(out) - 1 or (y.ndim == len(out) and y.shape[-1] == 1)):
                raise ValueError(
                    f"{what}: loss {lname!r} expects one integer label per sample (shape "
                    f"({y.shape[0]},)), received shape {y.shape}; for one-hot targets use "
                    f"loss='categorical_crossentropy'")
            if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
                raise ValueError(f"{what}: loss {lname!r} expects integer class labels, received "
                                 f"non-integer values")
            if k is not None and y.size and (y.min() < 0 or y.max() >= k):
                raise ValueError(
                    f"{what}: class labels must lie in [0, {k}) for an output of {k} units, received "
                    f"labels from {y.min():g} to {y.max():g}")
        elif kind in ("binary", "regression"):
            ok = tuple(y.shape[1:]) == tuple(out[1:]) or (
                y.ndim == len(out) - 1 and out[-1] == 1 and tuple(y.shape[1:]) == tuple(out[1:-1]))
            if not ok:
                raise ValueError(
                    f"{what}: loss {lname!r} expects targets of shape "
                    f"(None, {', '.join(str(d) for d in out[1:])}), received {y.shape}")
            if kind == "binary" and y.size and (y.min() < 0 or y.max() > 1):
                raise ValueError(f"{what}: loss {lname!r} expects targets in [0, 1], received values "
                                 f"from {y.min():g} to {y.max():g}")

    def _sample_weights(self, ys, sample_weight, class_weight, n):
        sw = None
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            if sw.ndim == 2 and sw.shape[1] == 1:
                sw = sw[:, 0]
            if sw.shape != (n,):
                raise ValueError(f"sample_weight must have shape ({n},), received {sw.shape}")
        if class_weight is not None:
            if len(ys) != 1:
                raise ValueError("class_weight is only supported for models with a single output")
            if not isinstance(class_weight, dict):
                raise TypeError(f"class_weight must be a dict {{class: weight}}, received "
                                f"{type(class_weight).__name__}")
            if sample_weight is not None:
                raise ValueError("class_weight and sample_weight cannot be given together (as in "
                                 "Keras): fold the class weights into sample_weight")
            cw = self._class_weights(ys[0], class_weight)
            sw = cw
        if sw is not None:
            if not np.isfinite(sw).all() or (sw < 0).any():
                raise ValueError("sample_weight/class_weight must be finite and non-negative")
            sw = sw.astype(backend.floatx())
        return sw

    def _class_weights(self, y, class_weight):
        """Per-sample weights from ``{class index: weight}``, Keras's labels: the argmax of
        one-hot rows, else the rounded label; a class absent from the dict weighs 1."""
        out = self._outputs[0].shape
        k = out[-1] if len(out) > 1 else None
        n_classes = k if (k or 0) > 1 else 2
        bounded = _loss_kind(self._loss_objs[0]) != "regression"
        weights = {}
        for key, value in class_weight.items():
            ok = isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)) or (
                isinstance(key, (float, np.floating)) and float(key).is_integer())
            if not ok:
                raise TypeError(f"class_weight: keys must be integer class indices, received "
                                f"{key!r} ({type(key).__name__})")
            key = int(key)
            if key < 0 or (bounded and key >= n_classes):
                raise ValueError(f"class_weight: keys must be class indices in [0, {n_classes}) for "
                                 f"an output of {n_classes if k and k > 1 else 1} unit(s), received {key}")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"class_weight: the weight of class {key} must be a number, received "
                                f"{value!r}") from None
            weights[key] = value
        if y.ndim > 1 and y.shape[-1] != 1:
            labels = np.argmax(y, axis=-1)
        else:
            labels = np.round(y.reshape(y.shape[0], -1)[:, 0] if y.ndim > 1 else y)
        labels = np.asarray(labels).astype(np.int64).reshape(y.shape[0], -1)[:, 0]
        top = max(int(labels.max(initial=0)), max(weights, default=0)) + 1
        table = np.ones(top, dtype=np.float64)
        for key, value in weights.items():
            table[key] = value
        return np.where(labels >= 0, table[np.clip(labels, 0, None)], 1.0)

    # ------------------------------------------------------------- one step
    def _compute_loss(self, ys, preds, sw):
        total = None
        per_output = []
        for i, (loss, y, p) in enumerate(zip(self._loss_objs, ys, preds)):
            if loss is None:
                per_output.append(None)
                continue
            m = getattr(p, "_keras_mask", None)
            l = loss(y, p, sample_weight=sw if m is None else _masked_weights(m, sw, loss))
            per_output.append(l)
            w = self._loss_weights[i]
            term = l if w == 1.0 else l * w
            total = term if total is None else total + term
        for w in self._regularized:
            total = total + w.regularizer(w)
        if self._has_activity_reg:
            for pen in self._collect_activity_losses():
                total = total + pen
        return total, per_output

    def _forward(self, xs, training):
        if self._has_activity_reg:
            self._clear_activity_losses()
        outs = self._run_graph([Tensor(a) for a in xs], training=training)
        return outs

    def _train_step(self, xs, ys, sw):
        vars_, params, grads = self._buffer[0], self._buffer[1], self._buffer[2]
        if grads is not None:
            # the buffer counts as zero: backward writes each weight's first gradient over it
            mark_fresh_grads(vars_)
        try:
            preds = self._forward(xs, training=True)
            total, per_output = self._compute_loss(ys, preds, sw)
            if total.requires_grad:
                scale = self.optimizer.loss_scale_factor
                (total if scale is None else total * scale).backward()
        except BaseException:
            if grads is not None:
                finish_fresh_grads(vars_)
                grads.fill(0)
            raise
        if grads is not None:
            finish_fresh_grads(vars_)
        if params is not None:
            self.optimizer.update_flat(params, grads, self._buffer[3])
            if self._constrained:
                self.optimizer.apply_constraints(self._constrained)
        return total, per_output, preds

    def _reset_trackers(self):
        self._loss_tracker = metrics_mod.Mean(name="loss")
        self._out_loss_trackers = [metrics_mod.Mean(name=f"{n}_loss") for n in self._output_names()]
        for ms in self._metric_objs:
            for m in ms:
                m.reset_state()

    def _update_trackers(self, total, per_output, ys, preds, sw, m):
        self._loss_tracker.update_state(float(total.data), sample_weight=m)
        if len(per_output) > 1:
            for t, l in zip(self._out_loss_trackers, per_output):
                if l is not None:
                    t.update_state(float(l.data), sample_weight=m)
        for ms, flags, y, p in zip(self._metric_objs, self._metric_weighted, ys, preds):
            for metric, weighted in zip(ms, flags):
                metric.update_state(y, p.data, sample_weight=sw if weighted else None)

    def _logs(self):
        logs = {"loss": self._loss_tracker.result()}
        if len(self._outputs) > 1:
            for t in self._out_loss_trackers:
                logs[t.name] = t.result()
        for ms in self._metric_objs:
            for metric in ms:
                logs[metric.name] = metric.result()
        # scalars become floats; a metric with one value per class (F1Score) stays an array
        return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v)) for k, v in sorted(logs.items())}

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs on (x, y); returns a History whose ``.history`` holds
        the per-epoch ``loss``, metrics and ``val_*`` values.

        As Keras 3: ``steps_per_epoch`` batches per epoch continue where the previous epoch
        stopped (a new shuffled pass starts when the data is used up, and an epoch ends early
        with a warning when it runs out); without ``batch_size`` it is ``ceil(n / steps)``;
        ``validation_freq`` is an int k (every k-th epoch) or a list of 1-based epochs;
        ``shuffle="batch"`` shuffles within each batch; the callbacks' ``on_test_*`` hooks run
        around each validation pass."""
        self._assert_compiled("fit")
        batch_size = _check_batch_size(batch_size, "fit", default=None)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative integer, received {epochs!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) \
                or not 0 <= initial_epoch <= epochs:
            raise ValueError(f"fit: initial_epoch must be an integer in [0, epochs={epochs}] (the epoch "
                             f"to resume at; epochs is the index of the last one), received "
                             f"{initial_epoch!r}")
        steps_per_epoch = _check_steps(steps_per_epoch, "fit", "steps_per_epoch")
        validation_steps = _check_steps(validation_steps, "fit", "validation_steps")
        validation_batch_size = _check_batch_size(validation_batch_size, "fit", default=None,
                                                  name="validation_batch_size")
        _check_validation_freq(validation_freq)
        _check_shuffle(shuffle)
        verbose = _check_verbose(verbose, "fit")
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.number)) \
                or not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(f"fit: validation_split must be a number in [0, 1), received "
                             f"{validation_split!r}")
        xs = self._prepare_x(x)
        n = n_rows(xs, "x")
        if n == 0:
            raise ValueError("fit: x is empty (0 rows); nothing to train on")
        self._setup_compiled()
        ys = self._prepare_y(y, n)
        sw = self._sample_weights(ys, sample_weight, class_weight, n)
        self._refresh_penalties()
        val = None
        if validation_data is not None:
            val = self._unpack_validation(validation_data)
        elif validation_split:
            split = int(math.floor(n * (1.0 - validation_split)))
            if split == 0 or split == n:
                raise ValueError(f"fit: validation_split={validation_split} leaves no rows for "
                                 f"{'training' if split == 0 else 'validation'} with {n} samples")
            val = ([a[split:] for a in xs], [a[split:] for a in ys],
                   None if sw is None else sw[split:])
            xs, ys = [a[:split] for a in xs], [a[:split] for a in ys]
            sw = None if sw is None else sw[:split]
            n = split
        val_batch_size = validation_batch_size or batch_size
        if batch_size is None:
            batch_size = int(math.ceil(n / steps_per_epoch)) if steps_per_epoch else 32
        batches = _Batches(n, batch_size, shuffle, steps_per_epoch, backend.rng())
        history = History()
        cbs = list(callbacks or [])
        cbs.append(history)
        if verbose and not any(isinstance(c, ProgbarLogger) for c in cbs):
            cbs.append(ProgbarLogger(verbose=verbose))
        cblist = CallbackList(cbs, self, {"epochs": epochs, "steps": batches.steps, "verbose": verbose})
        self._param_buffer()
        self.stop_training = False
        self._resume_epoch = None
        with self._blas_scope(batch_size):
            return self._fit_epochs(cblist, history, xs, ys, sw, val, batches, epochs, initial_epoch,
                                    validation_freq, val_batch_size, validation_steps)

    def _fit_epochs(self, cblist, history, xs, ys, sw, val, batches, epochs, initial_epoch,
                    validation_freq, val_batch_size, validation_steps):
        batch_hooks = cblist.batch_hooks
        cblist.on_train_begin({})
        if self._resume_epoch is not None:       # BackupAndRestore found a backup
            initial_epoch = max(initial_epoch, self._resume_epoch)
        logs = {}
        log_lr = callable(self.optimizer._learning_rate) or bool(self.optimizer.decay)
        for epoch in range(initial_epoch, epochs):
            self._reset_trackers()
            cblist.on_epoch_begin(epoch, {})
            for step, b, m in batches.epoch():
                xb = [a[b] for a in xs]
                yb = [a[b] for a in ys]
                swb = None if sw is None else sw[b]
                if batch_hooks:
                    for c in batch_hooks:
                        c.on_train_batch_begin(step, {})
                total, per_output, preds = self._train_step(xb, yb, swb)
                self._update_trackers(total, per_output, yb, preds, swb, m)
                if batch_hooks:
                    blogs = self._logs()
                    for c in batch_hooks:
                        c.on_train_batch_end(step, blogs)
                if self.stop_training:
                    break
            logs = self._logs()
            if val is not None and _should_eval(epoch, validation_freq):
                vlogs = self._evaluate_arrays(*val, batch_size=val_batch_size, steps=validation_steps,
                                              cblist=cblist)
                logs.update({f"val_{k}": v for k, v in vlogs.items()})
            if log_lr:
                logs["learning_rate"] = float(self.optimizer.learning_rate)
            cblist.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        if epochs > 0:       # Keras 3: with use_ema the weights take their moving averages
            self.optimizer.finalize_variable_values(self.trainable_weights)
        cblist.on_train_end(logs)
        self.history = history
        return history

    def _blas_scope(self, batch_size):
        """One BLAS thread for the whole call when a step's work is small (backend.blas_threads_for)."""
        n = sum(int(np.prod(w.shape)) for w in self.trainable_weights)
        return backend.blas_threads(backend.blas_threads_for(n, batch_size))

    def _unpack_validation(self, validation_data):
        if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
            raise ValueError("fit: validation_data must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val)")
        vx = self._prepare_x(validation_data[0], "validation_data x")
        vn = n_rows(vx, "validation_data x")
        if vn == 0:
            raise ValueError("fit: validation_data x is empty (0 rows)")
        vy = self._prepare_y(validation_data[1], vn, "validation_data y")
        vsw = None
        if len(validation_data) == 3 and validation_data[2] is not None:
            vsw = self._sample_weights(vy, validation_data[2], None, vn)
        return vx, vy, vsw

    # ------------------------------------------------------------- evaluate
    def _evaluate_arrays(self, xs, ys, sw, batch_size, steps=None, cblist=None):
        """Loss and metrics over (xs, ys) in batches (the first ``steps`` of them), firing the
        ``on_test_*`` hooks of ``cblist``; the training trackers are left as they were."""
        saved = (self._loss_tracker, self._out_loss_trackers,
                 [[m.__dict__.copy() for m in ms] for ms in self._metric_objs]) \
            if hasattr(self, "_loss_tracker") else None
        self._reset_trackers()
        n = xs[0].shape[0]
        if batch_size is None:
            batch_size = int(math.ceil(n / steps)) if steps else 32
        hooks = cblist.hooks("test") if cblist is not None else ()
        if cblist is not None:
            cblist.on_test_begin({})
        with no_grad():
            for step, b, m in _Batches(n, batch_size, False, steps, None).epoch():
                xb, yb = [a[b] for a in xs], [a[b] for a in ys]
                swb = None if sw is None else sw[b]
                for c in hooks:
                    c.on_test_batch_begin(step, {})
                preds = self._forward(xb, training=False)
                total, per_output = self._compute_loss(yb, preds, swb)
                self._update_trackers(total, per_output, yb, preds, swb, m)
                if hooks:
                    blogs = self._logs()
                    for c in hooks:
                        c.on_test_batch_end(step, blogs)
        logs = self._logs()
        if cblist is not None:
            cblist.on_test_end(logs)
        if saved is not None:
            self._loss_tracker, self._out_loss_trackers = saved[0], saved[1]
            for ms, states in zip(self._metric_objs, saved[2]):
                for m, st in zip(ms, states):
                    m.__dict__.update(st)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss (and metrics) on (x, y): a scalar without metrics, else ``[loss, *metrics]``
        in ``metrics_names`` order; a dict with ``return_dict=True``.  ``steps`` limits the
        batches (without ``batch_size`` they are ``ceil(n / steps)`` rows); ``callbacks``
        receive the ``on_test_*`` hooks; verbose 1 shows a progress bar, 2 one line."""
        self._assert_compiled("evaluate")
        batch_size = _check_batch_size(batch_size, "evaluate", default=None)
        steps = _check_steps(steps, "evaluate", "steps")
        verbose = _check_verbose(verbose, "evaluate")
        xs = self._prepare_x(x)
        n = n_rows(xs, "x")
        if n == 0:
            raise ValueError("evaluate: x is empty (0 rows)")
        self._setup_compiled()
        ys = self._prepare_y(y, n)
        sw = self._sample_weights(ys, sample_weight, None, n)
        if batch_size is None:
            batch_size = int(math.ceil(n / steps)) if steps else 32
        cblist = self._callback_list(callbacks, verbose, _Batches(n, batch_size, False, steps, None).steps,
                                     "evaluate")
        with self._blas_scope(batch_size):
            logs = self._evaluate_arrays(xs, ys, sw, batch_size, steps, cblist)
        if return_dict:
            return logs
        values = [logs[k] for k in self.metrics_names]
        return values[0] if len(values) == 1 else values

    def _callback_list(self, callbacks, verbose, steps, what):
        cbs = list(callbacks or [])
        if verbose and not any(isinstance(c, ProgbarLogger) for c in cbs):
            cbs.append(ProgbarLogger(verbose=verbose))
        return CallbackList(cbs, self, {"epochs": 1, "steps": steps, "verbose": verbose}, what=what)

    # -------------------------------------------------------------- predict
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x, as NumPy arrays (a list for several outputs).  ``steps`` limits
        the batches (without ``batch_size`` they are ``ceil(n / steps)`` rows); ``callbacks``
        receive the ``on_predict_*`` hooks (``on_predict_batch_end`` logs hold ``"outputs"``);
        verbose 1 shows a progress bar, 2 one line."""
        batch_size = _check_batch_size(batch_size, "predict", default=None)
        steps = _check_steps(steps, "predict", "steps")
        verbose = _check_verbose(verbose, "predict")
        xs = self._prepare_x(x)
        n = n_rows(xs, "x")
        if batch_size is None:
            batch_size = int(math.ceil(n / steps)) if steps and n else 32
        self._refresh_penalties()
        batches = _Batches(n, batch_size, False, steps, None)
        cblist = self._callback_list(callbacks, verbose, batches.steps, "predict")
        hooks = cblist.hooks("predict")
        outs = [[] for _ in self._outputs]
        cblist.on_predict_begin({})
        with no_grad(), self._blas_scope(batch_size):
            for step, b, _ in batches.epoch():
                for c in hooks:
                    c.on_predict_batch_begin(step, {})
                preds = self._forward([a[b] for a in xs], training=False)
                for acc, p in zip(outs, preds):
                    acc.append(p.data)
                if hooks:
                    blogs = {"outputs": preds[0].data if len(preds) == 1 else [p.data for p in preds]}
                    for c in hooks:
                        c.on_predict_batch_end(step, blogs)
        cblist.on_predict_end({})
        if not outs[0]:
            res = [np.zeros((0,) + tuple(d or 0 for d in t.shape[1:]), dtype=t.dtype) for t in self._outputs]
        else:
            res = [np.concatenate(o, axis=0) for o in outs]
        return res[0] if len(res) == 1 else res

    # ------------------------------------------------------------ on batch
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the batch's loss (and metrics)."""
        self._assert_compiled("train_on_batch")
        xs = self._prepare_x(x)
        n = n_rows(xs, "x")
        if n == 0:
            raise ValueError("train_on_batch: x is empty (0 rows)")
        self._setup_compiled()
        ys = self._prepare_y(y, n)
        sw = self._sample_weights(ys, sample_weight, class_weight, n)
        self._param_buffer()
        self._refresh_penalties()
        self._reset_trackers()
        total, per_output, preds = self._train_step(xs, ys, sw)
        self._update_trackers(total, per_output, ys, preds, sw, n)
        return self._batch_result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch, without updating weights."""
        self._assert_compiled("test_on_batch")
        xs = self._prepare_x(x)
        n = n_rows(xs, "x")
        if n == 0:
            raise ValueError("test_on_batch: x is empty (0 rows)")
        self._setup_compiled()
        ys = self._prepare_y(y, n)
        sw = self._sample_weights(ys, sample_weight, None, n)
        self._reset_trackers()
        with no_grad():
            preds = self._forward(xs, training=False)
            total, per_output = self._compute_loss(ys, preds, sw)
        self._update_trackers(total, per_output, ys, preds, sw, n)
        return self._batch_result(return_dict)

    def _batch_result(self, return_dict):
        logs = self._logs()
        if return_dict:
            return logs
        values = [logs[k] for k in self.metrics_names]
        return values[0] if len(values) == 1 else values

    def predict_on_batch(self, x):
        xs = self._prepare_x(x)
        with no_grad():
            preds = self._forward(xs, training=False)
        res = [p.data for p in preds]
        return res[0] if len(res) == 1 else res


def _masked_weights(mask, sw, loss):
    """Keras's apply_mask: masked entries weigh 0, the rest total/valid (mean reductions)."""
    m = np.asarray(mask, dtype=backend.floatx())
    if getattr(loss, "reduction", None) in ("sum_over_batch_size", "mean"):
        m = m * (m.size / (m.sum() + backend.epsilon()))
    if sw is not None:
        w = np.asarray(sw, dtype=m.dtype)
        while w.ndim < m.ndim:
            w = w[..., None]
        m = m * w
    return m


def _all_layers(layer):
    out = [layer]
    for sub in layer._sublayers:
        out.extend(_all_layers(sub))
    return out


def _check_batch_size(batch_size, what, default=32, name="batch_size"):
    if batch_size is None:
        return default
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"{what}: {name} must be a positive integer, received {batch_size!r}")
    return int(batch_size)


def _check_steps(steps, what, name):
    """``None`` (all the data) or a positive integer number of batches."""
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ValueError(f"{what}: {name} must be a positive integer number of batches (or None for "
                         f"all the data), received {steps!r}")
    return int(steps)


def _check_validation_freq(freq):
    """Keras 3: an int k ≥ 1 (validate every k-th epoch) or a list of 1-based epochs."""
    if isinstance(freq, (int, np.integer)) and not isinstance(freq, bool):
        if freq >= 1:
            return
    elif isinstance(freq, (list, tuple)) and all(
            isinstance(e, (int, np.integer)) and not isinstance(e, bool) and e >= 1 for e in freq):
        return
    raise ValueError(f"fit: validation_freq must be a positive integer (validate every k-th epoch) or "
                     f"a list of 1-based epoch numbers, received {freq!r}")


def _should_eval(epoch, freq):
    if isinstance(freq, (list, tuple)):
        return epoch + 1 in freq
    return (epoch + 1) % freq == 0


def _check_shuffle(shuffle):
    if isinstance(shuffle, (bool, np.bool_)) or shuffle in (0, 1, "batch"):
        return
    raise ValueError(f"fit: shuffle must be True, False or 'batch', received {shuffle!r}")


def _check_verbose(verbose, what):
    if verbose == "auto":
        return 1
    if isinstance(verbose, (int, np.integer)) and verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(f"{what}: verbose must be 'auto', 0, 1 or 2, received {verbose!r}")


class _Batches:
    """The rows of each step, as Keras 3's epoch iterator over arrays.

    Without ``steps`` an epoch is one pass over the ``n`` rows in batches of ``batch_size``
    (reshuffled each epoch).  With ``steps`` an epoch takes the next ``steps`` batches of the
    current pass, which carries over from epoch to epoch; a new pass (new order) starts when
    one is used up, and an epoch that runs out of batches ends early with Keras's warning.
    ``shuffle="batch"`` keeps the batches in order and shuffles the rows within each.
    """

    def __init__(self, n, batch_size, shuffle, steps, rng):
        self.n, self.batch_size, self.shuffle, self.rng = n, batch_size, shuffle, rng
        self.num_batches = int(math.ceil(n / batch_size))
        self._steps = steps
        self.steps = steps or self.num_batches      # what the progress bar counts to
        self._order, self._pos = None, 0

    def _draw(self):
        return self.rng.permutation(self.n) if self.shuffle and self.shuffle != "batch" else None

    def _rows(self, order, i):
        lo, hi = i * self.batch_size, min(self.n, (i + 1) * self.batch_size)
        if self.shuffle == "batch":
            return lo + self.rng.permutation(hi - lo), hi - lo
        return (order[lo:hi] if order is not None else slice(lo, hi)), hi - lo

    def epoch(self):
        """Yield ``(step, rows, count)`` for one epoch."""
        if self._steps is None:
            order = self._draw()
            for step in range(self.num_batches):
                rows, m = self._rows(order, step)
                yield step, rows, m
            return
        for step in range(self._steps):
            if self._pos >= self.num_batches:
                warnings.warn("Your input ran out of data; interrupting training. Make sure that your "
                              "dataset or generator can generate at least `steps_per_epoch * epochs` "
                              "batches.", stacklevel=3)
                break
            if self._pos == 0:
                self._order = self._draw()
            rows, m = self._rows(self._order, self._pos)
            self._pos += 1
            yield step, rows, m
        if self._pos >= self.num_batches:
            self._pos = 0


def _as_list(m):
    if m is None:
        return []
    return list(m) if isinstance(m, (list, tuple)) else [m]


def _flat_metric_specs(metrics):
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        out = []
        for v in metrics.values():
            out.extend(_as_list(v))
        return out
    out = []
    for m in _as_list(metrics):
        out.extend(_as_list(m) if isinstance(m, (list, tuple)) else [m])
    return [m for m in out if isinstance(m, str)]
