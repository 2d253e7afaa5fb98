"""The training loop: compile, fit, evaluate, predict and the *_on_batch variants.

As in Keras 3 the step is the unit: ``fit``, ``evaluate`` and ``predict`` take their batches
from one data adapter (:mod:`.data_adapters`) and call ``train_step(data)``,
``test_step(data)`` and ``predict_step(data)`` on each, so a subclass's override runs; the
callbacks and the progress bar are driven from one place (``callbacks.CallbackList``).

The built-in step: run the model forward on the batch, compute the compiled loss (plus the
weights' penalties and the layers' ``add_loss`` terms), ``backward()`` straight into the flat
gradient buffer, and let the optimizer update the flat parameter buffer in one vectorized pass.
Keras semantics kept: ``validation_split`` takes the last rows before any shuffling, rows are
reshuffled every epoch, the reported training loss is the running mean over the epoch's batches
(weighted by batch size).

On a device (weights created while ``axone.device("gpu:0")`` is current): the flat buffers are
that device's arrays, each host batch is copied there as the step starts (inputs, targets and
sample weights for the loss; with prepared arrays the next batch's inputs are copied on a
background thread while the current step computes, ``_PREFETCH``), and what comes back is host
data: predictions, ``get_weights``, the metrics (updated from host copies of the outputs) and the
logs as Python floats.
"""
import contextlib
import math
from math import isfinite as _isfinite
import os
import threading
import warnings
import weakref

import numpy as np

from .. import backend, config, distribution as distribution_lib, losses as losses_mod, \
    metrics as metrics_mod, optimizers
from ..autograd.function import no_grad
from ..autograd.tensor import Tensor, finish_fresh_grads, mark_fresh_grads
from ..device import array_module, current_module, to_numpy
from ..callbacks import CallbackList, History, ProgbarLogger
from ..layers import base as layer_base
from ..variables import _TRAINABLE_VERSION
from . import _inference, _work, data_adapters
from .data import cast_inputs, check_finite, n_rows, to_array, to_arrays
from .data_adapters import ArrayDataAdapter, _Batches

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


#: model -> (layer-tracking state, the array module of its weights), kept beside the model so
#: that it still pickles and deep-copies (a module is neither)
_DEVICE_OF = weakref.WeakKeyDictionary()


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
        self._added_losses = False     # the last forward pass called add_loss

    # ------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Configure training: ``compile(optimizer="adam", loss="mse", metrics=["mae"])``."""
        self.optimizer = optimizers.get(optimizer)
        # loss=None is allowed, as in Keras 3: the loss then comes from add_loss terms or from
        # an overridden train_step / compute_loss
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

    def _out_shapes(self):
        """The outputs' shapes: from the graph, or from a subclassed model's first call."""
        if self._is_graph:
            return [t.shape for t in self._outputs]
        return [s for s, _ in self._subclass_outputs()]

    def _subclass_outputs(self):
        spec = self.__dict__.get("_call_outputs")
        if spec is None:
            raise ValueError(f"Model {self.name!r} has not been called on data yet, so its outputs "
                             f"are unknown; call it on a batch (or fit/evaluate it) first")
        return spec[1]

    def _n_outputs(self):
        return len(self._outputs) if self._is_graph else len(self._subclass_outputs())

    def _output_names(self):
        if not self._is_graph:
            keys = self.__dict__["_call_outputs"][0]
            n = self._n_outputs()
            return list(keys) if keys is not None else (
                ["output"] if n == 1 else [f"output_{i}" for i in range(n)])
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
        n_out = self._n_outputs()
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
        out_shapes = self._out_shapes()
        self._metric_objs, self._metric_weighted = [], []
        for i in range(n_out):
            objs, weighted = [], []
            y_shape = None if ys is None else ys[i].shape
            plain = set()
            for specs, flag in ((self._metrics_per_out[i], False), (self._weighted_per_out[i], True)):
                for m in specs:
                    obj = metrics_mod.resolve(m, self._loss_objs[i], out_shapes[i], y_shape)
                    if flag and obj.name in plain:       # Keras: weighted_accuracy beside accuracy
                        obj.name = f"weighted_{obj.name}"
                    elif not flag:
                        plain.add(obj.name)
                    _host_state(obj)
                    obj._keras_base_name = obj.name     # Keras's order of evaluate's values
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
        if self._is_graph:
            return getattr(self, "_nodes", None)
        spec = self.__dict__.get("_call_outputs")
        return None if spec is None else spec

    def _outputs_known(self):
        return self._is_graph or self.__dict__.get("_call_outputs") is not None

    @property
    def metrics_names(self):
        """Names of the values ``evaluate`` returns, in their order: ``"loss"``, the compiled
        metrics of a single-output model in compile order (for several outputs: each output's
        loss, then the metrics by name, as Keras 3 orders them), then the model's own metrics."""
        return self._flat_names(self.get_metrics_result())

    def _flat_names(self, logs):
        """Keras 3's ``_flatten_metrics_in_order``: the loss tracker, the compiled metrics by
        their unprefixed names, the per-output losses and the model's own metrics, as far as
        ``logs`` has them; then the rest of ``logs`` in sorted order."""
        order = []
        if getattr(self, "compiled", False):
            order.append("loss")
            if self._outputs_known() and getattr(self, "_metric_objs", None) is not None:
                order += [getattr(m, "_keras_base_name", m.name) for ms in self._metric_objs
                          for m in ms]
                if self._n_outputs() > 1:
                    order += [f"{n}_loss" for n in self._output_names()]
        order += [m.name for m in self._tracked_metrics()]
        names = [n for n in dict.fromkeys(order) if n in logs]
        return names + [k for k in sorted(logs) if k not in names]

    @property
    def metrics(self):
        """The metric objects, as Keras 3 lists them: the loss tracker, the compiled metrics
        (one object per metric and output), the per-output loss trackers, then the metrics held
        as attributes of the model and of its layers.  ``reset_metrics`` resets them all."""
        out = []
        if getattr(self, "compiled", False):
            if getattr(self, "_loss_tracker", None) is None:
                self._loss_tracker = metrics_mod.Mean(name="loss")
            out.append(self._loss_tracker)
            if self._outputs_known():
                self._setup_compiled()
                out += [m for ms in self._metric_objs for m in ms]
                if self._n_outputs() > 1:
                    if len(getattr(self, "_out_loss_trackers", ())) != self._n_outputs():
                        self._out_loss_trackers = [metrics_mod.Mean(name=f"{n}_loss")
                                                   for n in self._output_names()]
                    out += list(self._out_loss_trackers)
        seen = {id(m) for m in out}
        out += [m for m in self._tracked_metrics() if id(m) not in seen]
        return out

    def _tracked_metrics(self):
        """Metric objects set as attributes of the model or of any of its layers (Keras 3
        tracks them; a model's own ``metrics`` property override is honoured by Keras code
        that reads ``self.metrics``)."""
        version = layer_base.tracking_version()
        cached = self.__dict__.get("_tracked_metrics_cache")
        if cached is not None and cached[0] == version:
            return cached[1]
        out, seen = [], set()
        for layer in _all_layers(self):
            for m in layer.__dict__.get("_tracked_metrics_list", ()):
                if id(m) not in seen:
                    seen.add(id(m))
                    out.append(m)
        self.__dict__["_tracked_metrics_cache"] = (version, out)
        return out

    def reset_metrics(self):
        """Reset the state of every metric in ``self.metrics``."""
        for m in self.metrics:
            m.reset_state()

    def get_metrics_result(self):
        """``{name: result}`` of every metric in ``self.metrics`` (a metric whose result is a
        dict adds its entries)."""
        out = {}
        for m in self.metrics:
            r = m.result()
            if isinstance(r, dict):
                out.update(r)
            else:
                out[m.name] = r
        return out

    # ---------------------------------------------------- parameter buffer
    def _trainable_key(self):
        return layer_base.tracking_version(), _TRAINABLE_VERSION[0]

    def _prepare_trainable(self):
        """Keras 3 at the start of fit / evaluate / ``*_on_batch``, and at a training step after
        a ``trainable`` flag changed: the trainable weights in one buffer and the optimizer built
        on them (so its variables exist).  A built optimizer only takes the variables it was built
        with: unfreezing weights needs a new optimizer (``compile`` with one), as in Keras."""
        vars_ = self._param_buffer()[0]
        self._refresh_penalties()
        self._trainable_seen = self._trainable_key()
        opt = self.optimizer
        if opt is None:
            return
        if not opt.built:
            opt.build(vars_)          # also on none, as Keras: weights unfrozen later are unknown
            return
        known = getattr(opt, "_tv_index", None)
        if known is None:
            return
        for v in vars_:
            if id(v) not in known:
                raise ValueError(
                    f"Unknown variable: {v.path!r}. The optimizer {type(opt).__name__!r} of model "
                    f"{self.name!r} can only be called for the variables it was originally built "
                    f"with; after making weights trainable, compile the model again with a new "
                    f"optimizer instance (e.g. model.compile(optimizer='adam', ...))")

    def _carry_optimizer_state(self, old, new):
        """Keras keeps an optimizer's state per variable: when the trainable set changes under
        the same optimizer, each weight still trained takes its state (moments, EMA,
        accumulators) into the new buffer, and a weight frozen meanwhile keeps its own for
        when it trains again."""
        opt = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        st = getattr(opt, "_flat_state", None)
        if st is None or old is None or len(old) < 4 or old[1] is None \
                or st.get("_size") != old[1].size or "_full_state" not in dir(opt):
            return
        size = st["_size"]
        per_var = [n for n, a in st.items() if n[0] != "_" and optimizers._is_array(a)
                   and a.ndim == 1 and a.size == size]
        parked = opt.__dict__.setdefault("_parked_state", {})
        for v, seg in zip(old[0], old[3]):
            parked[id(v)] = (v, {n: st[n][seg].copy() for n in per_var})
        if new[1] is None:
            return
        fresh = opt._full_state(new[1])
        fresh["_size"] = new[1].size
        for n, a in st.items():              # state of the whole optimizer, not per weight
            if n[0] != "_" and n not in per_var:
                fresh[n] = a
        for v, seg in zip(new[0], new[3]):
            kept = parked.pop(id(v), None)
            if kept is not None and kept[0] is v:
                for n, a in kept[1].items():
                    if n in fresh and a.shape == fresh[n][seg].shape:
                        fresh[n][seg] = a
        opt._flat_state = fresh

    def _param_buffer(self):
        """Move trainable weights into one contiguous buffer (and their grads into another)."""
        tw = self.trainable_weights
        buf = self._buffer
        if buf is not None and len(buf[0]) == len(tw) and buf[1] is not None \
                and type(buf[1]) is not np.ndarray:
            if all(a is b and getattr(a, "_flat", None) is not None and a._flat[0] is buf[1]
                   and a._flat[2] is a.data for a, b in zip(buf[0], tw)):
                return buf
        elif buf is not None and len(buf[0]) == len(tw) and all(
                a is b and a.data.base is buf[1] for a, b in zip(buf[0], tw)):
            return buf
        if not tw:
            self._buffer = ([], None, None)
            self._carry_optimizer_state(buf, self._buffer)
            return self._buffer
        dtypes = {w.dtype for w in tw}
        dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(backend.floatx())
        total = sum(w.data.size for w in tw)
        xp = array_module(*[w.data for w in tw])
        if xp is not np:
            return self._device_param_buffer(tw, buf, xp, dtype, total)
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
        self._carry_optimizer_state(buf, self._buffer)
        return self._buffer

    def _device_param_buffer(self, tw, old, xp, dtype, total):
        """``_param_buffer`` for weights on a device (module ``xp``): the buffers are device
        arrays; each weight records (buffer, slice, its view) as ``_flat``, since device views
        are not traced back to their buffer through ``.base`` as host views are.  A weight
        still on the host joins the device buffer."""
        params = xp.empty(total, dtype=dtype)
        grads = xp.zeros(total, dtype=dtype)
        off, segments = 0, []
        for w in tw:
            n, d = w.data.size, w.data
            if array_module(d) is not xp:
                d = xp.asarray(to_numpy(d))
            params[off:off + n] = d.reshape(-1).astype(dtype, copy=False)
            seg = slice(off, off + n)
            w.data = params[seg].reshape(w.data.shape)
            w.grad = grads[seg].reshape(w.data.shape)
            w._flat = (params, seg, w.data)
            segments.append(seg)
            off += n
        self._buffer = (list(tw), params, grads, segments)
        self._carry_optimizer_state(old, self._buffer)
        return self._buffer

    def _device_module(self):
        """The array module of the model's weights (NumPy for host weights); before any weight
        exists, the current device's (where building will create them)."""
        buf = self._buffer
        if buf is not None and buf[1] is not None:
            p = buf[1]
            return np if type(p) is np.ndarray else array_module(p)
        key = layer_base._TRACKING[0]
        cached = _DEVICE_OF.get(self)
        if cached is not None and cached[0] == key:
            return cached[1]
        ws = self.weights
        if not ws:
            return current_module()
        xp = array_module(*[w.data for w in ws])
        _DEVICE_OF[self] = (key, xp)
        return xp

    def get_weights(self):
        """Copies of the weights' values as host arrays, in ``weights`` order (weights on a
        device copied back)."""
        return [np.array(w.data, copy=True) if type(w.data) is np.ndarray else to_numpy(w.data)
                for w in self.weights]

    # ------------------------------------------------------------ data prep
    def _n_inputs(self):
        if self._is_graph:
            return len(self._inputs)
        keys = self.__dict__.get("_call_inputs")
        return keys[1] if keys is not None else None

    def _prepare_x(self, x, what="x"):
        if x is None:
            raise ValueError(f"{what}: no input data was given")
        if self._is_subclassed():
            return self._prepare_subclass_x(x, what)
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

    # A subclassed model (``call`` written by the user) takes its inputs as given: one array, a
    # list/tuple of arrays (one per input) or a dict; the first batch fixes the structure and
    # the per-sample shapes the later batches must have.
    def _is_subclassed(self):
        """A model whose ``call`` is the user's (no functional graph to build from data)."""
        return not self._is_graph and not getattr(self, "_builds_graph_from_data", False)

    def _prepare_subclass_x(self, x, what):
        if isinstance(x, dict):
            keys = list(x)
            xs = [to_array(x[k], f"{what}[{k!r}]") for k in keys]
        elif isinstance(x, (list, tuple)) and x and all(
                hasattr(v, "shape") or isinstance(v, dict) for v in x):
            keys = len(x)
            xs = [to_array(v, f"{what}[{i}]") for i, v in enumerate(x)]
        else:
            keys = None
            xs = [to_array(x, what)]
        for a in xs:
            if a.ndim == 0:
                raise ValueError(f"{what}: expected an array with a batch dimension, received a scalar")
        check_finite(xs, what)
        known = self.__dict__.get("_call_inputs")
        shapes = [a.shape[1:] for a in xs]
        if known is None:
            self.__dict__["_call_inputs"] = (keys, len(xs), shapes, [a.dtype for a in xs])
        else:
            k0, n0, s0, _ = known
            if (keys if not isinstance(keys, int) else len(xs)) != (
                    k0 if not isinstance(k0, int) else n0) or len(xs) != n0:
                raise ValueError(f"{what}: model {self.name!r} was first given "
                                 f"{_describe_inputs(k0, n0)}, now {_describe_inputs(keys, len(xs))}")
            for i, (a, b) in enumerate(zip(shapes, s0)):
                if a != b:
                    name = what if n0 == 1 else f"{what}[{i}]"
                    raise ValueError(f"{name}: inconsistent shapes: the first batch had samples of "
                                     f"shape {b}, this one has samples of shape {a} (batch shape "
                                     f"{xs[i].shape})")
        fx = np.dtype(backend.floatx())
        return [a.astype(fx) if a.dtype.kind == "f" and a.dtype != fx else a for a in xs]

    def _input_structure(self, tensors):
        """The inputs as ``call`` receives them: one tensor, a list, or a dict."""
        if self._is_subclassed():
            keys = self.__dict__["_call_inputs"][0]
            if keys is None:
                return tensors[0]
            if isinstance(keys, int):
                return list(tensors)
            return dict(zip(keys, tensors))
        return tensors[0] if len(tensors) == 1 else list(tensors)

    def _record_call_outputs(self, out):
        """Note a subclassed model's output structure and shapes (from its first call)."""
        if isinstance(out, dict):
            keys = sorted(out)
            flat = [out[k] for k in keys]
        elif isinstance(out, (list, tuple)):
            keys, flat = None, list(out)
        else:
            keys, flat = None, [out]
        for t in flat:
            if not isinstance(t, Tensor):
                raise TypeError(f"Model {self.name!r}: call() must return tensors (or a list or "
                                f"dict of them), returned {type(t).__name__}")
        spec = (keys, [((None,) + tuple(t.shape[1:]), t.dtype) for t in flat],
                isinstance(out, (list, tuple)) or isinstance(out, dict))
        old = self.__dict__.get("_call_outputs")
        if old is None or old[1] != spec[1] or old[0] != spec[0]:
            self.__dict__["_call_outputs"] = spec

    def _prepare_y(self, y, n, what="y", check=True):
        if y is None:
            raise ValueError(f"{what}: targets are required for training and evaluation")
        ys = to_arrays(y, what, self._n_outputs())
        if isinstance(ys, dict):
            names = self._output_names()
            missing = [nm for nm in names if nm not in ys]
            if missing:
                raise ValueError(f"{what}: missing target(s) {missing}; the outputs are {names}")
            ys = [ys[nm] for nm in names]
        if len(ys) != self._n_outputs():
            raise ValueError(f"{what}: model {self.name!r} has {self._n_outputs()} output(s) but "
                             f"{len(ys)} target array(s) were given")
        check_finite(ys, what)
        for i, a in enumerate(ys):
            if a.ndim == 0 or a.shape[0] != n:
                raise ValueError(
                    f"x and {what} must have the same number of rows: x has {n}, {what} has "
                    f"{a.shape[0] if a.ndim else 'a scalar'}")
            if check:
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
        out = self._out_shapes()[i]
        kind = _loss_kind(loss)
        lname = getattr(loss, "name", "loss")
        if kind == "categorical":
            if not _fits(y.shape[1:], out[1:]):
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
            ok = _fits(y.shape[1:], out[1:]) or (
                y.ndim == len(out) - 1 and out[-1] == 1 and _fits(y.shape[1:], out[1:-1]))
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
        out = self._out_shapes()[0]
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
        """The compiled losses of every output (lists), the weights' penalties and the layers'
        ``add_loss`` / activity terms of the last call: ``(total, per_output)``."""
        total = None
        per_output = []
        for i, (loss, p) in enumerate(zip(self._loss_objs, preds)):
            if loss is None or ys is None:
                per_output.append(None)
                continue
            y = ys[i]
            m = getattr(p, "_keras_mask", None)
            if type(p.data) is not np.ndarray:
                xp = array_module(p.data)
                if xp is not np:          # the batch's targets and weights on the outputs' device
                    y, dsw = _to_module(xp, [y, sw], p.data)
                    if m is None:
                        l = loss(y, p, sample_weight=dsw)
                        per_output.append(l)
                        w = self._loss_weights[i]
                        term = l if w == 1.0 else l * w
                        total = term if total is None else total + term
                        continue
            l = loss(y, p, sample_weight=sw if m is None else _masked_weights(m, sw, loss))
            per_output.append(l)
            w = self._loss_weights[i]
            term = l if w == 1.0 else l * w
            total = term if total is None else total + term
        for w in self._regularized:
            pen = w.regularizer(w)
            total = pen if total is None else total + pen
        if self._has_activity_reg or self._added_losses:
            for pen in self._collect_activity_losses():
                pen = _as_loss_tensor(pen)
                total = pen if total is None else total + pen
        if total is None:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`, add "
                             "losses with `add_loss`, or override `train_step` / `compute_loss`.")
        return total, per_output

    def _forward(self, xs, training):
        """The model's outputs (a list) on input arrays ``xs`` (one per input)."""
        mark = layer_base.added_loss_count()
        if self._has_activity_reg or self._added_losses:
            self._clear_activity_losses()
        xp = self._device_module()
        if xp is not np:
            buf = self._buffer        # the batch copied to the weights' device
            xs = _to_module(xp, xs, None if buf is None else buf[1])
        if self._is_graph:
            outs = self._run_graph([Tensor(a) for a in xs], training=training)
        else:
            out = self(self._input_structure([Tensor(a) for a in xs]), training=training)
            self._record_call_outputs(out)
            outs = _flat_outputs(out)
        self._added_losses = layer_base.added_loss_count() != mark
        return outs

    def _train_step(self, xs, ys, sw):
        if self.__dict__.get("_trainable_seen") != self._trainable_key():
            # Keras 3 reads the trainable weights at every step: a flag changed since the last
            # one (by a callback, between two fits) takes effect now
            self._prepare_trainable()
        vars_, params, grads = self._buffer[0], self._buffer[1], self._buffer[2]
        if params is None:
            warnings.warn("The model does not have any trainable weights.", stacklevel=2)
        if grads is not None:
            # the buffer counts as zero: backward writes each weight's first gradient over it
            mark_fresh_grads(vars_)
        dp = self.__dict__.get("_dp")
        try:
            preds = self._forward(xs, training=True)
            total, per_output = self._compute_loss(ys, preds, sw)
            if total.requires_grad:
                scale = self.optimizer.loss_scale_factor
                root = total if scale is None else total * scale
                if dp is None:
                    root.backward()
                else:         # DataParallel: the all-reduce may start during the backward pass
                    dp.backward(root, self._buffer, xs[0].shape[0] if xs else 0)
        except BaseException:
            if grads is not None:
                finish_fresh_grads(vars_)
                grads.fill(0)
            raise
        if grads is not None:
            finish_fresh_grads(vars_)
            if dp is not None:
                dp.reduce_gradients(grads, xs[0].shape[0] if xs else 0, self._buffer)
        if params is not None:
            self.optimizer.update_flat(params, grads, self._buffer[3], variables=vars_)
            if self._constrained:
                self.optimizer.apply_constraints(self._constrained)
        return total, per_output, preds

    def _empty_shard_step(self):
        """A rank whose part of a global batch has no rows (a last batch smaller than the
        number of processes): a zero gradient in the all-reduce, then the same update."""
        vars_, params, grads = self._buffer[0], self._buffer[1], self._buffer[2]
        if grads is not None:
            grads.fill(0)
            self._dp.reduce_gradients(grads, 0, self._buffer)
        if params is not None:
            self.optimizer.update_flat(params, grads, self._buffer[3], variables=vars_)
            if self._constrained:
                self.optimizer.apply_constraints(self._constrained)

    def _trackers(self):
        if getattr(self, "_loss_tracker", None) is None:
            self._loss_tracker = _host_state(metrics_mod.Mean(name="loss"))
        names = self._output_names() if self._outputs_known() else []
        if len(getattr(self, "_out_loss_trackers", ())) != len(names) or any(
                t.name != f"{n}_loss" for t, n in zip(getattr(self, "_out_loss_trackers", ()), names)):
            self._out_loss_trackers = [_host_state(metrics_mod.Mean(name=f"{n}_loss"))
                                       for n in names]

    def _reset_trackers(self):
        self._trackers()
        self.reset_metrics()

    def _update_trackers(self, total, per_output, ys, preds, sw, m):
        self._loss_tracker.update_state(float(total.data), sample_weight=m)
        if len(per_output) > 1:
            for t, l in zip(self._out_loss_trackers, per_output):
                if l is not None:
                    t.update_state(float(l.data), sample_weight=m)
        if ys is None:
            return
        for ms, flags, y, p in zip(self._metric_objs, self._metric_weighted, ys, preds):
            d = p.data if type(p.data) is np.ndarray or not ms else to_numpy(p.data)
            for metric, weighted in zip(ms, flags):
                metric.update_state(y, d, sample_weight=sw if weighted else None)

    def _logs(self):
        # scalars become floats; a metric with one value per class (F1Score) stays an array
        dp = self.__dict__.get("_dp")
        if dp is not None:        # the metrics of the global batches, the same on every rank
            return dp.reduced_results(self.metrics,
                                      lambda: _pythonify(self.get_metrics_result(), sort=True))
        return _pythonify(self.get_metrics_result(), sort=True)

    def _snapshot_metrics(self):
        """The state of every metric (restored after a validation pass or an ``evaluate`` on a
        model being trained), values copied."""
        snap = []
        for m in self.metrics:
            d = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in m.__dict__.items()}
            # each value copied where it lives (a metric built under a device scope may hold
            # device arrays until the training loop brings its state to the host)
            vals = [(v, v.data.copy()) for v in d.values() if isinstance(v, Tensor)]
            for v in getattr(m, "variables", None) or ():
                if isinstance(v, Tensor):
                    vals.append((v, v.data.copy()))
            snap.append((m, d, vals))
        return snap

    @staticmethod
    def _restore_metrics(snap):
        for m, d, vals in snap:
            m.__dict__.update(d)
            for v, val in vals:
                v.data[...] = val

    # -------------------------------------------------------- the step API
    def _steps_overridden(self, name):
        return getattr(type(self), name) is not getattr(Trainer, name)

    def _step_arrays(self, x, y, sample_weight, what="train_step"):
        """Lists of arrays (one per input/output) from the step's ``data`` parts."""
        x, y, sample_weight = (data_adapters.host_arrays(x), data_adapters.host_arrays(y),
                               data_adapters.host_arrays(sample_weight))
        xs = self._prepare_x(_strip_tensors(x), f"{what} x")
        n = n_rows(xs, f"{what} x")
        self._build_by_call(xs)
        if self._outputs_known():
            self._setup_compiled()
        ys = self._targets(_strip_tensors(y), n, f"{what} y")
        sw = None if sample_weight is None else self._sample_weights(
            ys or [], _strip_tensors(sample_weight), None, n)
        return xs, ys, sw, n

    def _targets(self, y, n, what):
        if y is None:
            if not self._outputs_known() or all(l is None for l in self._loss_objs):
                return None
        if not self._outputs_known():
            return to_arrays(y, what, None)
        # an overridden step decides what its targets mean: only their rows are checked here
        check = not (self._steps_overridden("train_step") or self._steps_overridden("test_step"))
        return self._prepare_y(y, n, "y" if what.endswith(" y") and "validation" not in what
                               else what, check=check)

    def train_step(self, data):
        """One training step on one batch ``data`` (``x``, ``(x, y)`` or ``(x, y,
        sample_weight)``), as Keras 3: forward, ``compute_loss``, gradients, the optimizer's
        update, then ``compute_metrics``; returns ``{metric name: value}``.  Override it to
        train differently; ``fit`` calls it for every batch."""
        x, y, sw = data_adapters.unpack_x_y_sample_weight(data)
        xs, ys, sw, n = self._step_arrays(x, y, sw)
        self._param_buffer()
        self._refresh_penalties()
        self._trackers()
        total, per_output, preds = self._train_step(xs, ys, sw)
        self._update_trackers(total, per_output, ys, preds, sw, n)
        return self.get_metrics_result()

    def test_step(self, data):
        """One evaluation step on one batch: forward (``training=False``), ``compute_loss``,
        ``compute_metrics``; returns ``{metric name: value}``.  ``evaluate`` calls it."""
        x, y, sw = data_adapters.unpack_x_y_sample_weight(data)
        xs, ys, sw, n = self._step_arrays(x, y, sw, "test_step")
        self._trackers()
        with no_grad():
            preds = self._forward(xs, training=False)
            total, per_output = self._compute_loss(ys, preds, sw)
        self._update_trackers(total, per_output, ys, preds, sw, n)
        return self.get_metrics_result()

    def predict_step(self, data):
        """The model's outputs on one batch (``training=False``); ``predict`` calls it."""
        x, _, _ = data_adapters.unpack_x_y_sample_weight(data)
        xs = self._prepare_x(_strip_tensors(x), "predict_step x")
        self._build_by_call(xs)
        with no_grad():
            preds = self._forward(xs, training=False)
        return self._output_structure(preds)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The total loss of a batch, as Keras 3: the compiled loss(es) of ``y`` and ``y_pred``
        (weighted by ``loss_weights``), plus ``self.losses`` (weight penalties and the
        ``add_loss`` terms of the last call).  A differentiable scalar Tensor; with several
        outputs the per-output loss trackers are updated too."""
        del x, training
        if sample_weight is None and isinstance(y_pred, Tensor):
            # the common case inside fit: one output, the batch's own targets (checked when
            # the batch was prepared), no sample weights
            st = self.__dict__.get("_step_y")
            if st is not None and y is st[0] and st[1] is not None and len(st[1]) == 1 \
                    and self.__dict__.get("_in_fit") and self._outputs_known() \
                    and self._compiled_for is self._nodes_key() and len(self._loss_objs) == 1:
                self._added_losses = layer_base.added_loss_count() != self.__dict__.get("_loss_mark")
                return self._compute_loss(st[1], [y_pred], None)[0]
        preds = [p if isinstance(p, Tensor) else Tensor(np.asarray(p)) for p in _flat_outputs(y_pred)] \
            if y_pred is not None else []
        if preds and not self._outputs_known():
            self._record_call_outputs(y_pred if not isinstance(y_pred, tuple) else list(y_pred))
        if self._outputs_known():
            self._setup_compiled()
        else:
            self._loss_objs = []
        ys = None
        if y is not None and self._outputs_known():
            ys = self._step_targets(y)
            if ys is None:
                ys = self._prepare_y(_strip_tensors(y), preds[0].shape[0] if preds and preds[0].ndim
                                     else n_rows(to_arrays(_strip_tensors(y), "y", None), "y"),
                                     "compute_loss y")
        elif self._outputs_known() and any(l is not None for l in self._loss_objs):
            raise ValueError("compute_loss: the compiled loss needs targets y, received y=None")
        sw = None
        if sample_weight is not None and ys is not None:
            sw = self._sample_weights(ys, _strip_tensors(sample_weight), None, ys[0].shape[0])
        if not self.__dict__.get("_in_fit"):       # fit refreshed them when it began
            self._refresh_penalties()
        # an add_loss since the outermost call began (or ever, for a model never called)
        self._added_losses = layer_base.added_loss_count() != self.__dict__.get("_loss_mark")
        total, per_output = self._compute_loss(ys, preds, sw)
        if len(per_output) > 1 and preds:
            self._trackers()
            m = preds[0].shape[0]
            for t, l in zip(self._out_loss_trackers, per_output):
                if l is not None:
                    t.update_state(float(l.data), sample_weight=m)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics with a batch and return ``get_metrics_result()``."""
        del x
        if self._outputs_known() and y is not None:
            self._setup_compiled()
            if sample_weight is None and not any(self._metric_objs) \
                    and self._step_targets(y) is not None:
                return self.get_metrics_result()      # no compiled metrics, the step's own y
            preds = [p.data if isinstance(p, Tensor) else np.asarray(p) for p in _flat_outputs(y_pred)]
            ys = self._step_targets(y)
            if ys is None:
                ys = self._prepare_y(_strip_tensors(y), preds[0].shape[0], "compute_metrics y")
            sw = None if sample_weight is None else self._sample_weights(
                ys, _strip_tensors(sample_weight), None, ys[0].shape[0])
            for ms, flags, yy, p in zip(self._metric_objs, self._metric_weighted, ys, preds):
                for metric, weighted in zip(ms, flags):
                    metric.update_state(yy, p, sample_weight=sw if weighted else None)
        return self.get_metrics_result()

    def _output_structure(self, preds):
        if self._is_graph:
            return self._restructure(preds)
        keys, _, nested = self.__dict__["_call_outputs"]
        if keys is not None:
            return dict(zip(keys, preds))
        return list(preds) if nested else preds[0]

    def _build_by_call(self, xs):
        """Build a subclassed model (and learn its outputs) by calling it once on the first
        rows of a batch, without recording a graph; Sequential builds from the data's shape."""
        if self._is_graph or not self._is_subclassed():
            return
        if self.__dict__.get("_call_outputs") is not None and self.built:
            return
        rows = [a[:min(len(a), 2)] for a in xs]
        try:
            with no_grad():
                self._forward(rows, training=False)
        except NotImplementedError:
            if not (self._steps_overridden("train_step") or self._steps_overridden("test_step")
                    or self._steps_overridden("predict_step")):
                raise
        except (ValueError, TypeError):
            raise
        except Exception as e:       # Keras 3's message when the automatic build fails
            raise RuntimeError(
                f"Unable to automatically build the model {self.name!r} by calling it on a batch "
                f"of shape {[a.shape for a in rows]}. Please build it yourself before calling "
                f"fit/evaluate/predict: a model is built when its variables have been created "
                f"and its `built` attribute is True; usually, calling the model on a batch of "
                f"data is the right way to build it.\nException encountered: "
                f"'{type(e).__name__}: {e}'") from e
        self._clear_activity_losses()
        self._added_losses = False
        self.built = True

    def _custom_step(self, fn, name, xs, ys, sw):
        """Call an overridden ``train_step``/``test_step`` on one batch and check what it returns."""
        x = self._input_structure([Tensor(a) for a in xs])
        y = None if ys is None else (Tensor(ys[0]) if len(ys) == 1 else [Tensor(a) for a in ys])
        # the targets were checked when the batch was prepared: compute_loss and
        # compute_metrics given this same object take them as they are
        state = self.__dict__
        outer = state.get("_step_y"), state.get("_step_fresh")
        state["_step_y"] = (y, ys)
        state["_step_fresh"] = False         # zero_grad may mark the buffer (see zero_grad)
        data = data_adapters.pack_x_y_sample_weight(x, y, None if sw is None else Tensor(sw))
        dp = state.get("_dp")
        if dp is not None:     # decided from the global batch, so every rank raises together
            dp.check_step_rows(name)
        try:
            if dp is not None:
                with distribution_lib.step_scope(dp, xs[0].shape[0] if xs else 0):
                    logs = fn(data)
            else:
                logs = fn(data)
        finally:
            marked = state.get("_step_fresh")
            state["_step_y"], state["_step_fresh"] = outer
            if marked:
                finish_fresh_grads(marked)
        return _check_step_logs(logs, name)

    def _step_targets(self, y):
        st = self.__dict__.get("_step_y")
        if st is not None and y is st[0] and st[1] is not None and self._outputs_known():
            return st[1]
        return None

    def _metrics_or_logs(self, logs):
        """Keras 3: the metrics' results when the step's logs name the same metrics, else the
        logs the last step returned."""
        dp = self.__dict__.get("_dp")
        result = self.get_metrics_result()
        if isinstance(logs, dict) and set(logs) == set(result):
            if dp is not None:        # the metrics of the global batches, on every rank
                return dp.reduced_results(self.metrics, lambda: _pythonify(
                    self.get_metrics_result(), sort=True))
            return _pythonify(result, sort=True)
        if dp is not None:            # a step's own numbers: their mean over the ranks
            return dp.mean_logs(_pythonify(logs or {}, sort=True))
        return _pythonify(logs or {}, sort=True)

    def zero_grad(self):
        """Zero the gradients of every trainable weight (the flat buffer in one pass), before a
        ``loss.backward()`` in a custom ``train_step``.

        Inside a ``train_step`` that ``fit`` calls, the zeroed buffer is also marked fresh
        (see ``mark_fresh_grads``): the next backward pass writes each weight's first gradient
        straight into it, which is what adding it to the zeros would give, and the marks are
        cleared when the step returns."""
        buf = self._buffer
        if buf is not None and buf[2] is not None:
            buf[2].fill(0)
            state = self.__dict__
            if state.get("_in_fit"):       # fit made the buffer of the trainable set
                marked = state.get("_step_fresh")
                if marked is not None and buf[0]:
                    if marked and marked is not buf[0]:
                        finish_fresh_grads(marked)
                    mark_fresh_grads(buf[0])
                    state["_step_fresh"] = buf[0]
                return
        for w in self.trainable_weights:
            if w.grad is not None:
                w.grad[...] = 0

    # ------------------------------------------------------------------ data
    def _adapter(self, x, y, sample_weight, class_weight, batch_size, steps, shuffle, what,
                 rng=None):
        """The data adapter of ``x``: arrays are checked against the model now and sliced; any
        other input is read batch by batch and each batch checked as it comes.  Device arrays
        given are copied to the host first (each batch goes back as its step starts)."""
        x, y, sample_weight = (data_adapters.host_arrays(x), data_adapters.host_arrays(y),
                               data_adapters.host_arrays(sample_weight))
        ad = data_adapters.get_data_adapter(x, y, sample_weight, steps=steps, shuffle=shuffle,
                                            what=what, rng=rng)
        # class weights of batches read one at a time apply as each batch is prepared
        self._batch_class_weight = class_weight if ad is not None else None
        if ad is not None:
            if batch_size is not None:
                raise ValueError(f"{what}: batch_size must not be given when x is a dataset, a "
                                 f"generator or a PyDataset ({type(x).__name__}), which makes its "
                                 f"own batches; received batch_size={batch_size}")
            dp = distribution_lib.active()
            if dp is not None and what in ("fit", "evaluate", "predict") and not (
                    what == "predict" and self._steps_overridden("predict_step")):
                ad = dp.shard_by_index(ad)     # a PyDataset: each rank reads its own indices
            first = ad.first_batch()
            xs, ys, sw, n = self._prepare_batch(first, what)
            return ad, n
        xs = self._prepare_x(x)
        n = n_rows(xs, "x")
        if n == 0:
            raise ValueError(f"{what}: x is empty (0 rows)" + ("; nothing to train on"
                                                                if what == "fit" else ""))
        self._build_by_call(xs)
        if self._outputs_known() and getattr(self, "compiled", False):
            self._setup_compiled()
        ys = self._targets(y, n, "y") if what != "predict" else None
        sw = self._sample_weights(ys or [], sample_weight, class_weight, n) \
            if what != "predict" else None
        return (xs, ys, sw), n

    def _prepare_batch(self, data, what):
        """``(xs, ys, sw, rows)`` from one ``(x, y, sample_weight)`` batch an adapter read."""
        x, y, sw = data
        if x is None:
            raise ValueError(f"{what}: a batch without inputs x was read")
        xs = self._prepare_x(x, f"{what} x")
        n = n_rows(xs, f"{what} x")
        self._build_by_call(xs)
        if what == "predict":
            return xs, None, None, n
        if self._outputs_known() and getattr(self, "compiled", False):
            self._setup_compiled()
        ys = self._targets(y, n, f"{what} y" if what != "fit" else "y")
        cw = getattr(self, "_batch_class_weight", None) if what in ("fit", "train_on_batch") else None
        sww = None if sw is None and cw is None else self._sample_weights(ys or [], sw, cw, n)
        return xs, ys, sww, n

    def _batches_of(self, adapter, what):
        """``(step, xs, ys, sw, rows)`` for one epoch of ``adapter``.

        A model whose weights are on a device, reading prepared arrays (``ArrayDataAdapter``,
        whose batches are gathers without side effects or random draws; not ``shuffle="batch"``,
        which draws each batch's order) with the built-in step, reads one batch ahead: batch k+1
        is gathered here on the calling thread, then its inputs are copied to the device on the
        prefetch thread (``_copy_ahead``) while step k computes, and step k+1 receives them as
        device arrays (``_to_module`` leaves those as they are); a copy the thread has not begun
        by then is made here instead (``_take_ahead``), and so is the copy of a batch of fewer
        than ``_PREFETCH_MIN_BYTES`` input bytes.  Targets and sample weights
        stay host arrays (the metrics read them; the loss copies them).  ``_PREFETCH = False``
        turns this off."""
        if adapter.prepared:
            xp = np
            if _PREFETCH and isinstance(adapter, ArrayDataAdapter) and \
                    adapter._batches.shuffle != "batch" and \
                    not self._steps_overridden(_STEP_OF.get(what, "train_step")):
                xp = self._device_module()
            if xp is np:
                for step, (xs, ys, sw), m in adapter.epoch():
                    yield step, xs, ys, sw, m
                return
            buf = self._buffer
            like = buf[1] if buf is not None and buf[1] is not None else next(
                (w.data for w in self.weights), None)
            ahead = None         # (the copy's future, step, xs, ys, sw, rows) of the next step
            try:
                for step, (xs, ys, sw), m in adapter.epoch():
                    big = sum(a.nbytes for a in xs if a is not None) >= _PREFETCH_MIN_BYTES
                    nxt = (_copy_ahead(xp, xs, like) if big else None, step, xs, ys, sw, m)
                    if ahead is not None:
                        (fut, step, xs, ys, sw, m), ahead = ahead, nxt
                        yield step, _take_ahead(fut, xp, xs, like), ys, sw, m
                    else:
                        ahead = nxt
                if ahead is not None:
                    (fut, step, xs, ys, sw, m), ahead = ahead, None
                    yield step, _take_ahead(fut, xp, xs, like), ys, sw, m
            finally:
                if ahead is not None and ahead[0] is not None:   # the loop stopped early: the
                    ahead[0].cancel()                               # copy read ahead is dropped
                    ahead = None
            return
        else:
            for step, data, _ in adapter.epoch():
                xs, ys, sw, m = self._prepare_batch(data, what)
                yield step, xs, ys, sw, m

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs on (x, y); returns a History whose ``.history`` holds
        the per-epoch ``loss``, metrics and ``val_*`` values.

        ``x`` is arrays (with ``y``), or a PyDataset, a generator/iterator or an iterable
        dataset yielding ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` batches; each batch
        goes to ``train_step``.  As Keras 3: ``steps_per_epoch`` batches per epoch continue
        where the previous epoch stopped (a new shuffled pass starts when the data is used up,
        and an epoch ends early with a warning when it runs out); without ``batch_size`` it is
        ``ceil(n / steps)``; ``validation_freq`` is an int k (every k-th epoch) or a list of
        1-based epochs; ``shuffle="batch"`` shuffles within each batch; the callbacks'
        ``on_test_*`` hooks run around each validation pass."""
        self._assert_compiled("fit")
        # keras.config.set_max_epochs / set_max_steps_per_epoch
        epochs, steps_per_epoch, validation_steps = config.limit_fit(
            epochs, steps_per_epoch, validation_steps, initial_epoch, validation_data,
            validation_split)
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
        if x is None:
            raise ValueError("fit: no input data was given (x=None)")
        rng = backend.rng()
        dp = distribution_lib.active()
        if dp is not None:
            dp.share_rng(rng)
            if not dp.is_chief:
                verbose = 0
        source, n = self._adapter(x, y, sample_weight, class_weight, batch_size, steps_per_epoch,
                                  shuffle, "fit", rng=rng)
        val = None
        if isinstance(source, tuple):        # arrays: validation rows, then the batch plan
            xs, ys, sw = source
            if validation_data is None and validation_split:
                split = int(math.floor(n * (1.0 - validation_split)))
                if split == 0 or split == n:
                    raise ValueError(f"fit: validation_split={validation_split} leaves no rows for "
                                     f"{'training' if split == 0 else 'validation'} with {n} samples")
                vsw = None if sw is None else sw[split:]
                val = ArrayDataAdapter([a[split:] for a in xs],
                                       None if ys is None else [a[split:] for a in ys], vsw,
                                       validation_batch_size or batch_size or 32,
                                       steps=validation_steps)
                xs = [a[:split] for a in xs]
                ys = None if ys is None else [a[:split] for a in ys]
                sw = None if sw is None else sw[:split]
                n = split
            if batch_size is None:
                batch_size = int(math.ceil(n / steps_per_epoch)) if steps_per_epoch else 32
            adapter = ArrayDataAdapter(xs, ys, sw, batch_size, shuffle, steps_per_epoch, rng)
        else:
            if validation_split:
                raise ValueError(f"fit: validation_split is only supported for arrays; x is "
                                 f"{type(x).__name__}: pass validation_data instead")
            adapter = source
            batch_size = n
        if validation_data is not None:
            val = self._validation_adapter(validation_data, validation_batch_size or (
                batch_size if adapter.prepared else None), validation_steps)
        if dp is not None:
            dp.check_replicas(self)
            adapter, val = dp.shard(adapter), dp.shard(val)
        history = History()
        cbs = list(callbacks or [])
        cbs.append(history)
        if verbose and not any(isinstance(c, ProgbarLogger) for c in cbs):
            cbs.append(ProgbarLogger(verbose=verbose))
        cblist = CallbackList(cbs, self, {"epochs": epochs, "steps": adapter.num_batches,
                                          "verbose": verbose})
        self._prepare_trainable()
        self._trackers()
        self.stop_training = False
        self._resume_epoch = None
        self._in_fit = True
        self._dp = dp
        if dp is not None:           # the rows' order stays on the shared generator (rng)
            backend.swap_rng(dp.rank_rng(rng))
        try:
            with self._blas_scope(batch_size):
                return self._fit_epochs(cblist, history, adapter, val, epochs, initial_epoch,
                                        validation_freq)
        finally:
            self._in_fit = False
            self._dp = None
            if dp is not None:
                backend.swap_rng(rng)
            adapter.close()
            if val is not None:
                val.close()

    def _validation_adapter(self, validation_data, batch_size, steps):
        if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) and all(
                data_adapters.is_array_input(v) for v in validation_data):
            vsw = validation_data[2] if len(validation_data) == 3 else None
            vx = self._prepare_x(validation_data[0], "validation_data x")
            vn = n_rows(vx, "validation_data x")
            if vn == 0:
                raise ValueError("fit: validation_data x is empty (0 rows)")
            vy = self._targets(validation_data[1], vn, "validation_data y")
            vs = None if vsw is None else self._sample_weights(vy or [], vsw, None, vn)
            if batch_size is None:
                batch_size = int(math.ceil(vn / steps)) if steps else 32
            return ArrayDataAdapter(vx, vy, vs, batch_size, steps=steps)
        if isinstance(validation_data, (list, tuple)) and not data_adapters.get_data_adapter(
                validation_data[0] if validation_data else None) and (
                len(validation_data) not in (2, 3)):
            raise ValueError("fit: validation_data must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val), or a dataset/generator/PyDataset")
        ad = data_adapters.get_data_adapter(validation_data, steps=steps, what="validation_data")
        if ad is None:
            raise ValueError("fit: validation_data must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val), or a dataset/generator/PyDataset")
        return ad

    def _fit_epochs(self, cblist, history, adapter, val, epochs, initial_epoch, validation_freq):
        batch_hooks = cblist.batch_hooks
        dp = self.__dict__.get("_dp")
        batch_logs = dp.any(bool(batch_hooks)) if dp is not None else False
        custom = self._steps_overridden("train_step")
        step_fn = self.train_step
        cblist.on_train_begin({})
        if dp is not None:
            dp.check_same(self._resume_epoch, "the epoch to resume at (BackupAndRestore)")
        if self._resume_epoch is not None:       # BackupAndRestore found a backup
            initial_epoch = max(initial_epoch, self._resume_epoch)
        logs = {}
        log_lr = self.optimizer is not None and (
            callable(self.optimizer._learning_rate) or bool(self.optimizer.decay))
        for epoch in range(initial_epoch, epochs):
            self._reset_trackers()
            cblist.on_epoch_begin(epoch, {})
            step_logs = None
            ran = 0
            for step, xs, ys, sw, m in self._batches_of(adapter, "fit"):
                if batch_hooks:
                    for c in batch_hooks:
                        c.on_train_batch_begin(step, {})
                if custom:
                    step_logs = self._custom_step(step_fn, "train_step", xs, ys, sw)
                elif m == 0 and dp is not None:
                    self._empty_shard_step()
                else:
                    total, per_output, preds = self._train_step(xs, ys, sw)
                    self._update_trackers(total, per_output, ys, preds, sw, m)
                ran += 1
                if batch_hooks or batch_logs:
                    blogs = (step_logs if dp is None else self._metrics_or_logs(step_logs)) \
                        if custom else self._logs()
                    for c in batch_hooks:
                        c.on_train_batch_end(step, blogs)
                if self.stop_training:
                    break
            if ran == 0 and adapter.ran_out:
                break
            if dp is not None:
                dp.average_non_trainable(self)
            logs = self._metrics_or_logs(step_logs) if custom else self._logs()
            if val is not None and _should_eval(epoch, validation_freq):
                vlogs = self._evaluate_adapter(val, cblist)
                logs.update({f"val_{k}": v for k, v in vlogs.items()})
            if log_lr:
                logs["learning_rate"] = float(self.optimizer.learning_rate)
            cblist.on_epoch_end(epoch, logs)
            if self.stop_training or adapter.ran_out:
                break
        if epochs > 0 and self.optimizer is not None:
            # Keras 3: with use_ema the weights take their moving averages
            self.optimizer.finalize_variable_values(self.trainable_weights)
        cblist.on_train_end(logs)
        self.history = history
        return history

    def _blas_scope(self, batch_size, rows=None):
        """One BLAS thread for the whole call when a step's work is small: the multiply-adds of
        a step of ``batch_size`` rows from the layers' shapes (models/_work.py; a training step
        counts three forward passes), judged by backend.blas_threads_for_work.  An unbuilt
        model is judged by trainable parameters × batch rows.  ``rows``: the rows of a
        prediction call, whose whole work must pay for the scope (backend.EAGER_MIN_WORK)."""
        batch = batch_size or 32
        work = _work.step_work(self, batch, training=bool(self.__dict__.get("_in_fit")))
        if work is None:
            work = batch * sum(int(np.prod(w.shape)) for w in self.trainable_weights)
        if rows is not None:
            return backend.step_scope(work, work * max(1, rows) / batch)
        return backend.step_scope(work)

    # ------------------------------------------------------------- evaluate
    def _evaluate_adapter(self, adapter, cblist=None):
        """Loss and metrics over one pass of ``adapter``, firing the ``on_test_*`` hooks of
        ``cblist``; the training metrics are left as they were."""
        snap = self._snapshot_metrics()
        self._reset_trackers()
        custom = self._steps_overridden("test_step")
        hooks = cblist.hooks("test") if cblist is not None else ()
        dp = self.__dict__.get("_dp")
        batch_logs = dp.any(bool(hooks)) if dp is not None else False
        if cblist is not None:
            cblist.on_test_begin({})
        step_logs = None
        try:
            with no_grad():
                for step, xs, ys, sw, m in self._batches_of(adapter, "evaluate"):
                    for c in hooks:
                        c.on_test_batch_begin(step, {})
                    if custom:
                        step_logs = self._custom_step(self.test_step, "test_step", xs, ys, sw)
                    elif m or dp is None:
                        preds = self._forward(xs, training=False)
                        total, per_output = self._compute_loss(ys, preds, sw)
                        self._update_trackers(total, per_output, ys, preds, sw, m)
                    if hooks or batch_logs:
                        blogs = (step_logs if dp is None else self._metrics_or_logs(step_logs)) \
                            if custom else self._logs()
                        for c in hooks:
                            c.on_test_batch_end(step, blogs)
            logs = self._metrics_or_logs(step_logs) if custom else self._logs()
        finally:
            self._restore_metrics(snap)
        if cblist is not None:
            cblist.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        """Loss (and metrics) on (x, y) — arrays, or a dataset/generator/PyDataset of batches:
        a scalar without metrics, else the values in ``metrics_names`` order (Keras 3's);
        a dict with ``return_dict=True``.  ``steps`` limits the batches (without
        ``batch_size`` they are ``ceil(n / steps)`` rows); ``callbacks`` receive the
        ``on_test_*`` hooks; verbose 1 shows a progress bar, 2 one line."""
        if kwargs:
            raise ValueError(f"evaluate: arguments not recognized: {sorted(kwargs)}")
        self._assert_compiled("evaluate")
        batch_size = _check_batch_size(batch_size, "evaluate", default=None)
        steps = config.limit_steps(_check_steps(steps, "evaluate", "steps"))
        verbose = _check_verbose(verbose, "evaluate")
        if x is None:
            raise ValueError("evaluate: no input data was given (x=None)")
        source, n = self._adapter(x, y, sample_weight, None, batch_size, steps, False, "evaluate")
        if isinstance(source, tuple):
            if batch_size is None:
                batch_size = int(math.ceil(n / steps)) if steps else 32
            adapter = ArrayDataAdapter(*source, batch_size, steps=steps)
        else:
            adapter, batch_size = source, n
        self._prepare_trainable()
        dp = distribution_lib.active()
        if dp is not None:
            dp.check_replicas(self)
            adapter = dp.shard(adapter)
            if not dp.is_chief:
                verbose = 0
        cblist = self._callback_list(callbacks, verbose, adapter.num_batches, "evaluate")
        outer = self.__dict__.get("_dp")
        self._dp = dp
        try:
            with self._blas_scope(batch_size):
                logs = self._evaluate_adapter(adapter, cblist)
        finally:
            self._dp = outer
            adapter.close()
        if return_dict:
            return logs
        values = [logs[k] for k in self._flat_names(logs)]
        return values[0] if len(values) == 1 else values

    def _callback_list(self, callbacks, verbose, steps, what):
        cbs = list(callbacks or [])
        if verbose and not any(isinstance(c, ProgbarLogger) for c in cbs):
            cbs.append(ProgbarLogger(verbose=verbose))
        return CallbackList(cbs, self, {"epochs": 1, "steps": steps, "verbose": verbose}, what=what)

    # -------------------------------------------------------------- predict
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x (arrays, or a dataset/generator/PyDataset whose batches hold
        inputs), as NumPy arrays in the model's output structure.  ``steps`` limits the
        batches (without ``batch_size`` they are ``ceil(n / steps)`` rows); ``callbacks``
        receive the ``on_predict_*`` hooks (``on_predict_batch_end`` logs hold ``"outputs"``);
        verbose 1 shows a progress bar, 2 one line."""
        sig = self.__dict__.get("_predict_sig")
        if (sig is not None and type(x) is np.ndarray and batch_size is None and steps is None
                and callbacks is None and type(verbose) in (int, bool) and not verbose
                and x.ndim and 0 < len(x) <= 32 and config.max_steps_per_epoch() is None
                and sig == (x.dtype, x.shape[1:], layer_base._TRACKING[0], backend.floatx())
                and (x.dtype.kind != "f" or _isfinite(float(np.dot(r := x.reshape(-1), r))) or np.isfinite(x).all())):
            # the input signature of the last one-batch call (an array of the dtype and row
            # shape _prepare_x accepted, unchanged layers), finite: the checks below pass it
            # (a finite Σx² has no NaN or infinity among its terms; one that overflowed is
            # checked entry by entry)
            return self._predict_batch([x], len(x))
        batch_size = _check_batch_size(batch_size, "predict", default=None)
        steps = config.limit_steps(_check_steps(steps, "predict", "steps"))
        verbose = _check_verbose(verbose, "predict")
        if x is None:
            raise ValueError("predict: no input data was given (x=None)")
        rows = None
        x = data_adapters.host_arrays(x)
        if data_adapters.is_array_input(x) and not isinstance(x, data_adapters.PyDataset):
            xs = self._prepare_x(x)
            n = rows = n_rows(xs, "x")
            if n:
                self._build_by_call(xs)
            if batch_size is None:
                batch_size = int(math.ceil(n / steps)) if steps and n else 32
            if 0 < n <= batch_size and not verbose and not callbacks and steps is None \
                    and not self._steps_overridden("predict_step"):
                if (self._is_graph and type(x) is np.ndarray and len(xs) == 1 and xs[0] is x):
                    self.__dict__["_predict_sig"] = (x.dtype, x.shape[1:],
                                                     layer_base._TRACKING[0], backend.floatx())
                return self._predict_batch(xs, n)
            adapter = ArrayDataAdapter(xs, None, None, batch_size, steps=steps)
        else:
            adapter, n = self._adapter(x, None, None, None, batch_size, steps, False, "predict")
            batch_size = n
        self._refresh_penalties()
        custom = self._steps_overridden("predict_step")
        # DataParallel: each rank predicts its part of every batch, the parts are gathered
        # back into their order on every rank (an overridden predict_step runs whole on each)
        dp = distribution_lib.active() if not custom else None
        counts = None
        if dp is not None:
            adapter, counts = dp.shard(adapter), []
            if not dp.is_chief:
                verbose = 0
        cblist = self._callback_list(callbacks, verbose, adapter.num_batches, "predict")
        hooks = cblist.hooks("predict")
        outs = None
        first = None
        cblist.on_predict_begin({})
        try:
            with no_grad(), self._blas_scope(batch_size, rows):
                for step, xs, _, _, _ in self._batches_of(adapter, "predict"):
                    for c in hooks:
                        c.on_predict_batch_begin(step, {})
                    if custom:
                        x_in = self._input_structure([Tensor(a) for a in xs])
                        batch_out = self.predict_step(x_in)
                    else:
                        batch_out = self._output_structure(self._forward(xs, training=False))
                    flat, struct = _flatten_structure(batch_out)
                    if counts is not None:
                        counts.append(dp.global_rows)
                    if outs is None:
                        outs, first = [[] for _ in flat], struct
                    for acc, p in zip(outs, flat):
                        acc.append(p)
                    if hooks:
                        blogs = {"outputs": _unflatten_structure(first, flat)}
                        for c in hooks:
                            c.on_predict_batch_end(step, blogs)
        finally:
            adapter.close()
        cblist.on_predict_end({})
        if outs is None:
            if self._is_graph:
                res = [np.zeros((0,) + tuple(d or 0 for d in t.shape[1:]), dtype=t.dtype)
                       for t in self._outputs]
                return res[0] if len(res) == 1 else res
            return np.zeros((0,), dtype=backend.floatx())
        if counts is not None:
            return _unflatten_structure(first, [dp.gather_batches(o, counts) for o in outs])
        return _unflatten_structure(first, [np.concatenate(o, axis=0) for o in outs])

    def _predict_batch(self, xs, n):
        """``predict`` of one batch of ``n`` rows, with no callbacks or progress bar: the forward
        pass and a copy of each output, as the batch loop returns them, without its adapter and
        hooks; on the model's array plan when it has one (models/_inference.py).  The penalty
        caches are refreshed when a layer or a trainable flag changed (a regularizer set later
        is read by fit's own refresh; activity terms of a call are cleared through
        _added_losses whatever the cache says)."""
        key = (layer_base._TRACKING[0], _TRAINABLE_VERSION[0], self._nodes_key())
        if self.__dict__.get("_predict_penalties") != key:
            self._refresh_penalties()
            self.__dict__["_predict_penalties"] = key
        plan = _inference.plan_of(self) if self._is_graph else None
        if plan is not None and not self._added_losses and self._device_module() is np:
            mark = layer_base.added_loss_count()
            try:
                with no_grad(), self._blas_scope(n, n):
                    outs = _inference.run_plan(self, plan, xs)
            except _inference.NeedsGraph:
                _inference.drop_plan(self)
            else:
                if layer_base.added_loss_count() != mark:
                    self._added_losses = True    # a layer's own add_loss ran: _forward clears
                return self._restructure([np.array(o, copy=True) for o in outs])
        with no_grad(), self._blas_scope(n, n):
            out = self._output_structure(self._forward(xs, training=False))
        flat, struct = _flatten_structure(out)
        return _unflatten_structure(struct, [np.concatenate([p], axis=0) for p in flat])

    # ------------------------------------------------------------ on batch
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch (through ``train_step``); returns the batch's loss
        (and metrics)."""
        self._assert_compiled("train_on_batch")
        (xs, ys, sw), n = self._adapter(x, y, sample_weight, class_weight, None, None, False,
                                        "train_on_batch")
        self._prepare_trainable()
        self._reset_trackers()
        if self._steps_overridden("train_step"):
            logs = self._metrics_or_logs(self._custom_step(self.train_step, "train_step", xs, ys, sw))
            return self._batch_result(return_dict, logs)
        total, per_output, preds = self._train_step(xs, ys, sw)
        self._update_trackers(total, per_output, ys, preds, sw, n)
        return self._batch_result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch (through ``test_step``), without updating weights."""
        self._assert_compiled("test_on_batch")
        (xs, ys, sw), n = self._adapter(x, y, sample_weight, None, None, None, False,
                                        "test_on_batch")
        self._prepare_trainable()
        self._reset_trackers()
        if self._steps_overridden("test_step"):
            with no_grad():
                logs = self._custom_step(self.test_step, "test_step", xs, ys, sw)
            return self._batch_result(return_dict, self._metrics_or_logs(logs))
        with no_grad():
            preds = self._forward(xs, training=False)
            total, per_output = self._compute_loss(ys, preds, sw)
        self._update_trackers(total, per_output, ys, preds, sw, n)
        return self._batch_result(return_dict)

    def _batch_result(self, return_dict, logs=None):
        logs = self._logs() if logs is None else logs
        if return_dict:
            return logs
        values = [logs[k] for k in self._flat_names(logs)]
        return values[0] if len(values) == 1 else values

    def predict_on_batch(self, x):
        """The outputs on one batch (through ``predict_step``), as NumPy arrays."""
        xs = self._prepare_x(data_adapters.host_arrays(x))
        self._build_by_call(xs)
        n = len(xs[0]) if xs and getattr(xs[0], "ndim", 0) else 1
        with no_grad(), self._blas_scope(n, n):
            if self._steps_overridden("predict_step"):
                out = self.predict_step(self._input_structure([Tensor(a) for a in xs]))
            else:
                out = self._output_structure(self._forward(xs, training=False))
        flat, struct = _flatten_structure(out)
        return _unflatten_structure(struct, flat)

    # ------------------------------------------------- Keras 2 generator API
    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1, callbacks=None,
                      validation_data=None, validation_steps=None, validation_freq=1,
                      class_weight=None, max_queue_size=10, workers=1, use_multiprocessing=False,
                      shuffle=True, initial_epoch=0):
        """Keras 2's ``fit_generator``: ``fit`` on a generator or Sequence (deprecated there;
        kept for older code).  ``workers`` / ``use_multiprocessing`` / ``max_queue_size`` read a
        Sequence (PyDataset) ahead as its own settings do."""
        warnings.warn("`Model.fit_generator` is deprecated; `Model.fit` accepts generators and "
                      "PyDatasets directly.", DeprecationWarning, stacklevel=2)
        with _reading(generator, workers, use_multiprocessing, max_queue_size, "fit_generator"):
            return self.fit(generator, steps_per_epoch=steps_per_epoch, epochs=epochs,
                            verbose=verbose, callbacks=callbacks, validation_data=validation_data,
                            validation_steps=validation_steps, validation_freq=validation_freq,
                            class_weight=class_weight, shuffle=shuffle, initial_epoch=initial_epoch)

    def evaluate_generator(self, generator, steps=None, callbacks=None, max_queue_size=10,
                           workers=1, use_multiprocessing=False, verbose=0):
        """Keras 2's ``evaluate_generator``: ``evaluate`` on a generator or Sequence."""
        warnings.warn("`Model.evaluate_generator` is deprecated; `Model.evaluate` accepts "
                      "generators and PyDatasets directly.", DeprecationWarning, stacklevel=2)
        with _reading(generator, workers, use_multiprocessing, max_queue_size, "evaluate_generator"):
            return self.evaluate(generator, steps=steps, callbacks=callbacks, verbose=verbose)

    def predict_generator(self, generator, steps=None, callbacks=None, max_queue_size=10,
                          workers=1, use_multiprocessing=False, verbose=0):
        """Keras 2's ``predict_generator``: ``predict`` on a generator or Sequence."""
        warnings.warn("`Model.predict_generator` is deprecated; `Model.predict` accepts "
                      "generators and PyDatasets directly.", DeprecationWarning, stacklevel=2)
        with _reading(generator, workers, use_multiprocessing, max_queue_size, "predict_generator"):
            return self.predict(generator, steps=steps, callbacks=callbacks, verbose=verbose)


@contextlib.contextmanager
def _reading(source, workers, use_multiprocessing, max_queue_size, what):
    """The Keras 2 reader settings of a ``*_generator`` call, applied to a Sequence for the
    call; a plain generator is read in turn on the calling thread."""
    if isinstance(source, data_adapters.PyDataset):
        old = source._settings()
        source.workers = max(1, workers) if workers else 1
        source.use_multiprocessing = use_multiprocessing
        source.max_queue_size = max_queue_size
        try:
            yield
        finally:
            source._workers, source._use_multiprocessing, source._max_queue_size = old
        return
    if (workers and workers > 1) or use_multiprocessing:
        raise NotImplementedError(
            f"{what}: workers={workers}, use_multiprocessing={use_multiprocessing} with a plain "
            f"generator is not implemented in axone (reading one generator from several threads "
            f"needs it to be thread-safe); wrap the data in a keras.utils.PyDataset (Sequence), "
            f"which is read ahead by index")
    yield


def _strip_tensors(x):
    """Tensors in a step's data become arrays for the checks (structures kept)."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, dict):
        return {k: _strip_tensors(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and any(isinstance(v, (Tensor, dict, list, tuple)) for v in x):
        return [_strip_tensors(v) for v in x]
    return x


def _flat_outputs(out):
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    if isinstance(out, (list, tuple)):
        flat = []
        for o in out:
            flat.extend(_flat_outputs(o) if isinstance(o, (list, tuple, dict)) else [o])
        return flat
    return [out]


def _flatten_structure(out):
    """Leaves (as arrays) and a description to rebuild ``out``'s list/tuple/dict structure."""
    if isinstance(out, dict):
        keys = sorted(out)
        return [_np(out[k]) for k in keys], ("dict", keys)
    if isinstance(out, (list, tuple)):
        return [_np(o) for o in out], ("list", len(out))
    return [_np(out)], None


def _unflatten_structure(struct, flat):
    if struct is None:
        return flat[0]
    if struct[0] == "dict":
        return dict(zip(struct[1], flat))
    return list(flat)


def _np(t):
    """An output as a host array (a device output copied back)."""
    if isinstance(t, Tensor):
        t = t.data
    if type(t) is np.ndarray:
        return t
    return to_numpy(t) if array_module(t) is not np else np.asarray(t)


def _host_state(metric):
    """``metric`` with its state variables on the host (moved back when it was made while a
    device was current): the metrics compute with NumPy on host copies of the outputs."""
    for v in getattr(metric, "variables", None) or ():
        d = getattr(v, "data", None)
        if d is not None and type(d) is not np.ndarray and array_module(d) is not np:
            v.data = to_numpy(d)
    return metric


def _to_module(xp, arrays, like=None):
    """The host arrays of list ``arrays`` copied to device module ``xp`` (on the device of
    device array ``like`` when it names one, as a CuPy array's ``.device`` does); None and
    device arrays as they are."""
    where = getattr(like, "device", None)
    if where is not None and hasattr(where, "__enter__"):
        with where:
            return [a if a is None or type(a) is not np.ndarray else xp.asarray(a)
                    for a in arrays]
    return [a if a is None or type(a) is not np.ndarray else xp.asarray(a) for a in arrays]


#: Whether fit / evaluate / predict of a model on a device copy the next batch's inputs to the
#: device on a background thread while the current step computes (see ``Trainer._batches_of``).
_PREFETCH = True
#: the inputs' bytes per batch from which the copy goes to the prefetch thread: a hand-over to
#: it costs about 170 µs on a busy 2-core host, more than a small batch's copy takes; smaller
#: batches are copied by the step itself, as without the read-ahead (to be set from
#: benchmarks/gpu_check.py's prefetch line on a GPU)
_PREFETCH_MIN_BYTES = 1 << 20
_STEP_OF = {"fit": "train_step", "evaluate": "test_step", "predict": "predict_step"}
_PREFETCH_POOL = []              # [the one-thread executor], made on first use
_PREFETCH_LOCK = threading.Lock()
_PREFETCH_LOCAL = threading.local()   # .streams: the prefetch thread's copy stream per device


def _prefetch_pool():
    if not _PREFETCH_POOL:
        with _PREFETCH_LOCK:
            if not _PREFETCH_POOL:
                from concurrent.futures import ThreadPoolExecutor
                _PREFETCH_POOL.append(ThreadPoolExecutor(1, thread_name_prefix="axone-prefetch"))
    return _PREFETCH_POOL[0]


def _prefetch_after_fork():      # a forked child has no prefetch thread: it starts its own
    global _PREFETCH_LOCK
    _PREFETCH_POOL.clear()
    _PREFETCH_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_prefetch_after_fork)


def _device_scope(like):
    where = getattr(like, "device", None)
    return where if where is not None and hasattr(where, "__enter__") else contextlib.nullcontext()


def _copy_ahead(xp, arrays, like):
    """A future of ``_to_module(xp, arrays, like)`` computed on the prefetch thread.  With CuPy
    the copies run on that thread's own non-blocking stream on ``like``'s device, ordered after
    the work queued so far on the caller's current stream (an event recorded here: a block of
    the memory pool a copy reuses may still be read there), and the stream is synchronized
    before the arrays are handed over; a module without ``cuda.Stream`` (the test stand-in)
    copies with plain ``xp.asarray``."""
    cuda = getattr(xp, "cuda", None)
    event = None
    if getattr(cuda, "Stream", None) is not None and getattr(cuda, "Event", None) is not None:
        with _device_scope(like):
            event = cuda.Event(disable_timing=True)
            event.record()
    return _prefetch_pool().submit(_copy_on_worker, xp, arrays, like, event)


def _take_ahead(future, xp, arrays, like):
    """The device copies of host ``arrays`` that ``_copy_ahead`` gave ``future`` for: its result,
    or, when the prefetch thread has not begun the copy (it had no turn while the step before
    held the interpreter), the copy taken back and made here, so that a step never waits for
    the thread to wake."""
    if future is None or future.cancel():
        return _to_module(xp, arrays, like)
    return future.result()


def _copy_on_worker(xp, arrays, like, event):
    with _device_scope(like):
        if event is None:
            return _to_module(xp, arrays)
        streams = getattr(_PREFETCH_LOCAL, "streams", None)
        if streams is None:
            streams = _PREFETCH_LOCAL.streams = {}
        key = getattr(getattr(like, "device", None), "id", None)
        stream = streams.get(key)
        if stream is None:
            stream = streams[key] = xp.cuda.Stream(non_blocking=True)
        stream.wait_event(event)
        with stream:
            out = _to_module(xp, arrays)
        stream.synchronize()
        return out


def _as_loss_tensor(p):
    if not isinstance(p, Tensor):
        p = Tensor(np.asarray(p, dtype=backend.floatx()))
    if p.ndim:
        p = p.sum()
    return p


def _pythonify(logs, sort=False):
    """Log values as Python floats (arrays with several values stay arrays); nested dicts are
    flattened into the top level, as Keras does."""
    out = {}
    for k, v in logs.items():
        if isinstance(v, dict):
            out.update(_pythonify(v))
            continue
        if isinstance(v, Tensor):
            v = v.data
        out[k] = float(v) if np.ndim(v) == 0 else np.asarray(v)
    return {k: out[k] for k in sorted(out)} if sort else out


def _check_step_logs(logs, name):
    if not isinstance(logs, dict):
        raise TypeError(f"{name} must return a dict of metric names to scalar values (e.g. "
                        f"{{'loss': loss}} or {{m.name: m.result() for m in self.metrics}}), "
                        f"returned {type(logs).__name__}: {str(logs)[:100]}")
    for k, v in logs.items():
        if not isinstance(k, str):
            raise TypeError(f"{name} must return a dict keyed by metric names (str), received the "
                            f"key {k!r} ({type(k).__name__})")
        if isinstance(v, dict):
            _check_step_logs(v, name)
            continue
        arr = v.data if isinstance(v, Tensor) else v
        try:
            a = np.asarray(arr)
        except Exception:
            a = None
        if a is None or a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must return a dict of metric names to scalar values; the "
                            f"value of {k!r} is {type(v).__name__}: {str(v)[:100]}")
    return logs


def _describe_inputs(keys, n):
    if keys is None:
        return "one input array"
    if isinstance(keys, int):
        return f"a list of {n} input arrays"
    return f"a dict of inputs {list(keys)}"


def _fits(shape, declared):
    """Whether an array's ``shape`` fits a ``declared`` one whose unknown sizes are None."""
    return len(shape) == len(declared) and all(d is None or d == s for s, d in zip(shape, declared))


def _masked_weights(mask, sw, loss):
    """Keras's apply_mask: masked entries weigh 0, the rest total/valid (mean reductions).
    The weights are made with the array module of the mask and ``sw`` (on their device, a
    host one copied there)."""
    xp = array_module(mask, sw)
    m = xp.asarray(mask, dtype=backend.floatx())
    if getattr(loss, "reduction", None) in ("sum_over_batch_size", "mean"):
        m = m * (m.size / (m.sum() + backend.epsilon()))
    if sw is not None:
        w = xp.asarray(sw, dtype=m.dtype)
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
