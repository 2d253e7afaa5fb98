"""Optimizers (Keras names, arguments and update rules) over flat parameter buffers.

An optimizer's rule is written once as an in-place update of arrays ``w``
with gradient ``g`` and per-parameter state; a model hands it its whole
contiguous parameter and gradient buffers, so one step is a handful of
vectorized operations.  ``apply_gradients(zip(grads, variables))`` applies
the same rule variable by variable, for custom training loops.

Each rule also has a fused form: the compiled module ``axone._kernels`` (built from
``axone/_kernels.c`` when a C compiler is available at install time) applies the same arithmetic,
operation for operation, in one pass over the buffers, splitting large buffers across threads.
The NumPy code below is the reference: the two give the same bits, and the NumPy form runs when
the module is not built or ``AXONE_KERNELS=0`` is set in the environment.

On a device (a model whose weights live on a GPU, see ``axone.device``) the buffers and the
state are that device's arrays and the reference form runs with its array module
(``xp = array_module(w)``): the same operations, in the same order, as on the host (products
written array first where a NumPy scalar would otherwise meet a device array's operator).
"""
import math
from operator import is_ as _is

import numpy as np

from .. import _native, distribution
from ..autograd.tensor import Tensor
from ..device import _MODULES as _DEVICE_MODULES
from ..device import array_module
from . import schedules


# The compiled module (loaded in axone/_native.py); tests set this to None to force NumPy.
_KERNELS = _native.KERNELS


def fused_kernels_available():
    """True when the compiled fused updates (``axone._kernels``) are in use."""
    return _KERNELS is not None


def _fusable(*arrays):
    dt = arrays[0].dtype
    return all(a.dtype == dt and a.flags.c_contiguous and a.flags.writeable for a in arrays) and \
        dt in (np.float32, np.float64)


def _np(x):
    """A NumPy view of a Tensor, Variable or array-like."""
    return x.data if isinstance(x, Tensor) else x


def _xp(w):
    """The array module of buffer ``w``: NumPy for a host array (no lookup), else its device's."""
    return np if type(w) is np.ndarray else array_module(w)


def _is_array(a):
    """Whether ``a`` is a host ndarray or a registered device array (a state buffer)."""
    return isinstance(a, np.ndarray) or type(a) in _DEVICE_MODULES


def _on_device(a):
    return type(a) is not np.ndarray and type(a) in _DEVICE_MODULES


def _host_array(a):
    """``a`` as a host array (a device array copied back)."""
    if type(a) is not np.ndarray and _on_device(a):
        from ..device import to_numpy
        return to_numpy(a)
    return np.asarray(a)


def _host_copy(a):
    """A host copy of array ``a``."""
    if type(a) is not np.ndarray and _on_device(a):
        from ..device import to_numpy
        return to_numpy(a)
    return np.array(a, copy=True)


def _copyto(dst, src):
    """``dst ← src`` in place (``np.copyto`` on the host, an indexed write on a device)."""
    if type(dst) is np.ndarray:
        np.copyto(dst, src)
    else:
        dst[...] = src


def _ref_name(v):
    path = getattr(v, "path", None) or getattr(v, "name", None) or "var"
    return str(path).replace("/", "_").replace(":", "_")


def _offset(a, base):
    return (a.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize


def _flat_views(variables):
    """(buffer, slices) when each variable's data views, in order and without gaps, one
    contiguous 1-D buffer that they cover entirely; else None."""
    if not variables:
        return None
    d0 = getattr(variables[0], "data", None)
    if _on_device(d0):
        return _device_flat_views(variables)
    base = getattr(d0, "base", None)
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    off, segs = 0, []
    for v in variables:
        d = getattr(v, "data", None)
        if not isinstance(d, np.ndarray) or d.base is not base or not d.flags.c_contiguous \
                or d.dtype != base.dtype or _offset(d, base) != off:
            return None
        segs.append(slice(off, off + d.size))
        off += d.size
    return (base, segs) if off == base.size else None


def _device_flat_views(variables):
    """``_flat_views`` of device variables: the buffer a model recorded on each one
    (``Variable._flat``: buffer, slice, the view it gave the variable), when they are the
    views, in order, covering it."""
    first = getattr(variables[0], "_flat", None)
    if first is None:
        return None
    base, off, segs = first[0], 0, []
    for v in variables:
        f = getattr(v, "_flat", None)
        if f is None or f[0] is not base or f[2] is not v.data or f[1].start != off:
            return None
        segs.append(f[1])
        off = f[1].stop
    return (base, segs) if off == base.size else None


def _grad_buffer(arrays, views):
    """The gradient buffer when ``arrays`` view one buffer at the variables' offsets."""
    if _on_device(arrays[0]):
        return None                     # a device gradient: updated variable by variable
    base = getattr(arrays[0], "base", None)
    if not isinstance(base, np.ndarray) or base.ndim != 1 or base.size != views[0].size \
            or base.dtype != views[0].dtype or not base.flags.c_contiguous:
        return None
    for a, s in zip(arrays, views[1]):
        if a.base is not base or not a.flags.c_contiguous or _offset(a, base) != s.start \
                or a.size != s.stop - s.start:
            return None
    return base


__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "AdamW", "Adagrad", "Adadelta", "Adamax", "Nadam",
           "Adafactor", "Ftrl", "Lamb", "Lion", "Muon", "ScheduleFreeAdamW", "LossScaleOptimizer",
           "MultiOptimizer", "OptimizerMap", "schedules", "get", "serialize", "deserialize"]


class OptimizerScalar:
    """What ``optimizer.iterations`` and ``optimizer.learning_rate`` return: the value at the
    time of reading, as a Python number (so arithmetic, comparisons, ``float``/``int``, JSON
    and formatting work unchanged), with the reading and writing methods of the Keras 3
    variable it stands for: ``numpy()``, ``value``, ``dtype``, ``shape``, ``assign(v)``
    (written to the optimizer; the number already read keeps its value)."""

    shape = ()
    ndim = 0

    def numpy(self):
        return np.asarray(self._number(), dtype=self.dtype)

    @property
    def value(self):
        return self

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._number(), dtype=dtype or self.dtype)


class _Iterations(int, OptimizerScalar):
    dtype = "int32"
    _name = "iteration"

    def __new__(cls, value, owner):
        obj = int.__new__(cls, value)
        obj._owner = owner
        return obj

    def _number(self):
        return int(self)

    def assign(self, value):
        self._owner.iterations = int(np.asarray(value))
        return self._owner.iterations

    def assign_add(self, value):
        return self.assign(int(self._owner.iterations) + int(np.asarray(value)))

    def __repr__(self):
        return int.__repr__(self)


class _LearningRate(float, OptimizerScalar):
    dtype = "float32"
    _name = "learning_rate"

    def __new__(cls, value, owner):
        obj = float.__new__(cls, value)
        obj._owner = owner
        return obj

    def _number(self):
        return float(self)

    def assign(self, value):
        owner = self._owner
        if callable(getattr(owner, "_learning_rate", None)):
            raise TypeError(
                f"{type(owner).__name__}: this optimizer was created with a "
                f"`LearningRateSchedule` object as its `learning_rate` constructor argument, "
                f"hence its learning rate is not settable")
        owner.learning_rate = float(np.asarray(value))
        return owner.learning_rate

    def __repr__(self):
        return float.__repr__(self)


def _real(opt, name, value, minimum=None):
    """``value`` as a float, if it is a finite real number (at least ``minimum``), else ValueError
    naming the optimizer and the argument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or (minimum is not None and value < minimum):
        need = "a finite number" + ("" if minimum is None else f" >= {minimum}")
        raise ValueError(f"{type(opt).__name__}: {name} must be {need}, received {value!r}")
    return float(value)


def _flag(opt, name, value):
    """``value`` as a bool, if it is one (or 0 / 1), else ValueError naming the argument."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{type(opt).__name__}: {name} must be True or False, received {value!r}")


class Optimizer:
    """Base class: learning rate (float or schedule), step counter, flat and per-variable state.

    Args:
        learning_rate: float, or a callable ``schedule(step) -> float``.
        weight_decay: decoupled decay, ``w ← w − lr·wd·w`` before the update.
        clipnorm / clipvalue / global_clipnorm: gradient clipping, as Keras.
        use_ema: keep an exponential moving average of the weights, updated after every
            step: ``a ← μ·a + (1 − μ)·w`` (μ = ``ema_momentum``; μ = 0 on the first step).
            ``ema_overwrite_frequency=k`` copies the average into the weights every k
            steps; ``fit`` copies it in at the end of training
            (:meth:`finalize_variable_values`).
        loss_scale_factor: the loss is multiplied by it before the gradient is taken
            (:meth:`scale_loss`) and the gradients divided by it before the update.
        gradient_accumulation_steps: n ≥ 2 sums the gradients of n calls and applies their
            mean on the n-th; ``iterations`` counts applied updates (calls // n) while a
            learning-rate schedule sees every call, as Keras 3.
    """

    _state_names = ()

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, lr=None, decay=None, **kwargs):
        who = type(self).__name__
        if gradient_accumulation_steps is not None and gradient_accumulation_steps != 0:
            if isinstance(gradient_accumulation_steps, bool) or not isinstance(
                    gradient_accumulation_steps, (int, np.integer)) or gradient_accumulation_steps < 2:
                raise ValueError(f"{who}: gradient_accumulation_steps must be an integer >= 2 (or None), "
                                 f"received {gradient_accumulation_steps!r}")
        if use_ema:
            if isinstance(ema_momentum, bool) or not isinstance(ema_momentum, (int, float, np.number)) \
                    or not 0 <= ema_momentum <= 1:
                raise ValueError(f"{who}: ema_momentum must be a number in [0, 1], received {ema_momentum!r}")
            if ema_overwrite_frequency is not None and ema_overwrite_frequency != 0 and (
                    isinstance(ema_overwrite_frequency, bool)
                    or not isinstance(ema_overwrite_frequency, (int, np.integer)) or ema_overwrite_frequency < 1):
                raise ValueError(f"{who}: ema_overwrite_frequency must be an integer >= 1 or None, "
                                 f"received {ema_overwrite_frequency!r}")
        if loss_scale_factor is not None and (
                isinstance(loss_scale_factor, bool) or not isinstance(loss_scale_factor, (int, float, np.number))
                or not math.isfinite(loss_scale_factor) or loss_scale_factor <= 0):
            raise ValueError(f"{who}: loss_scale_factor must be a positive finite number or None, "
                             f"received {loss_scale_factor!r}")
        self.use_ema = bool(use_ema)
        self.ema_momentum = float(ema_momentum) if use_ema else ema_momentum
        self.ema_overwrite_frequency = int(ema_overwrite_frequency) if ema_overwrite_frequency else None
        self.loss_scale_factor = None if loss_scale_factor is None else float(loss_scale_factor)
        self.gradient_accumulation_steps = int(gradient_accumulation_steps) if gradient_accumulation_steps \
            else None
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if lr is not None:
            learning_rate = lr
        if not callable(learning_rate):
            learning_rate = float(learning_rate)
            if learning_rate < 0 or not math.isfinite(learning_rate):
                raise ValueError(f"{type(self).__name__}: learning_rate must be a non-negative number, "
                                 f"received {learning_rate}")
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"{type(self).__name__}: give at most one of clipnorm, clipvalue and global_clipnorm")
        self._learning_rate = learning_rate
        for arg, value in (("weight_decay", weight_decay), ("clipnorm", clipnorm),
                           ("clipvalue", clipvalue), ("global_clipnorm", global_clipnorm)):
            if value is not None:
                _real(self, arg, value, minimum=0)
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.decay = _real(self, "decay", decay or 0.0, minimum=0)
        self.name = name or type(self).__name__.lower()
        self._iterations = 0
        self._flat_state = None
        self._var_state = {}
        self.built = False
        self._trainable_variables = []
        self._tv_index = {}
        self._keras_vars = {}

    # ----------------------------------------------------------- schedule
    @property
    def iterations(self):
        """Updates applied so far: calls // ``gradient_accumulation_steps`` when accumulating
        (Keras 3), else the number of calls.  A number that also reads like Keras's variable
        (``.numpy()``, ``.value``, ``.assign(n)``, see :class:`OptimizerScalar`)."""
        n = self.gradient_accumulation_steps
        return _Iterations(self._iterations // n if n else self._iterations, self)

    @iterations.setter
    def iterations(self, value):
        n = self.gradient_accumulation_steps
        self._iterations = int(value) * n if n else int(value)

    @property
    def learning_rate(self):
        """The current learning rate: a number that also reads like Keras's variable
        (``.numpy()``, ``.value``, and ``.assign(x)`` unless a schedule gives it)."""
        return _LearningRate(self._current_lr(), self)

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = value if callable(value) else float(value)

    lr = learning_rate

    def _current_lr(self):
        lr = self._learning_rate
        # a schedule sees every call, accumulation steps included (Keras 3)
        lr = float(lr(self._iterations)) if callable(lr) else lr
        if self.decay:
            lr = lr / (1.0 + self.decay * self._iterations)
        return lr

    # --------------------------------------------------------- gradients
    def _clip(self, grads):
        """Clip a list of gradient arrays in place (clipvalue, clipnorm, global_clipnorm)."""
        if grads and _on_device(grads[0]):
            return self._clip_device(grads)
        if self.clipvalue is not None:
            for g in grads:
                np.clip(g, -self.clipvalue, self.clipvalue, out=g)
        elif self.clipnorm is not None:
            for g in grads:
                n = float(np.sqrt(np.sum(g * g)))
                if n > self.clipnorm:
                    g *= self.clipnorm / n
        elif self.global_clipnorm is not None:
            n = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
            if n > self.global_clipnorm:
                for g in grads:
                    g *= self.global_clipnorm / n

    def _clip_device(self, grads):
        """``_clip`` on device arrays: the same operations with their array module (the norms
        come back to the host as Python floats, as ``float(np.sqrt(...))`` does there)."""
        xp = _xp(grads[0])
        if self.clipvalue is not None:
            for g in grads:
                xp.clip(g, -self.clipvalue, self.clipvalue, out=g)
        elif self.clipnorm is not None:
            for g in grads:
                n = float(xp.sqrt(xp.sum(g * g)))
                if n > self.clipnorm:
                    g *= self.clipnorm / n
        elif self.global_clipnorm is not None:
            n = math.sqrt(sum(float(xp.sum(g * g)) for g in grads))
            if n > self.global_clipnorm:
                for g in grads:
                    g *= self.global_clipnorm / n

    def _new_state(self, w):
        xp = _xp(w)
        return {name: xp.zeros_like(w) for name in self._state_names}

    def _full_state(self, w):
        """The rule's state for ``w`` plus the EMA ("average") and accumulation
        ("gradient_accumulator") arrays the options ask for, and a scratch array."""
        st = self._new_state(w)
        xp = _xp(w)
        if self.use_ema:
            st["average"] = xp.zeros_like(w)
        if self.gradient_accumulation_steps:
            st["gradient_accumulator"] = xp.zeros_like(w)
        st["_tmp"] = xp.empty_like(w)
        return st

    def _flat_state_for(self, params):
        """The flat state arrays for a parameter buffer of ``params.size`` values (made at the
        first step, again when the size changes)."""
        st = self._flat_state
        if st is None or st["_size"] != params.size:
            st = self._flat_state = self._full_state(params)
            st["_size"] = params.size
        elif type(params) is not np.ndarray or type(st["_tmp"]) is not np.ndarray:
            st = self._state_to_device_of(st, params)
        return st

    def _state_to_device_of(self, st, params):
        """Move the flat state arrays to where ``params`` lives (state loaded from a file or
        built on the host, for a model on a device; or back), in place in ``st``."""
        xp = _xp(params)
        if _xp(st["_tmp"]) is xp:
            return st
        from ..device import to_numpy
        moved = {}
        for n, a in st.items():
            if n in ("_fusable", "_segs"):
                continue
            if _is_array(a):
                host = a if type(a) is np.ndarray else to_numpy(a)
                a = host if xp is np else xp.asarray(host)
            moved[n] = a
        self._flat_state = moved       # a new dict: views of the old one are rebuilt
        return moved

    def update_flat(self, params, grads, segments=None, variables=None):
        """One step over a model's flat parameter buffer ``params`` with gradient buffer ``grads``.

        ``segments`` (list of slices, one per variable) is needed for per-variable clipnorm and
        by the rules that work on each variable as a whole (Lamb, Adafactor, Muon), which also
        need the ``variables`` (their shapes and paths) — given here, or the ones the optimizer
        was built with (:meth:`build`) when they view ``params`` in order.
        """
        st = self._flat_state_for(params)
        if self._per_variable:
            self._apply(self._segment_triples(params, grads, segments, variables), self._clip)
            return
        if self.use_ema or self.gradient_accumulation_steps or self.loss_scale_factor is not None:
            self._apply([(params, grads, st)], lambda gs: self._clip_flat(gs[0], segments))
            return
        self._clip_flat(grads, segments)
        lr = self._current_lr()
        self._iterations += 1
        self._step(params, grads, st, lr, self._iterations)

    def _clip_flat(self, grads, segments):
        if self.clipnorm is not None and segments is not None:
            self._clip([grads[s] for s in segments])
        elif self.clipnorm is not None or self.clipvalue is not None or self.global_clipnorm is not None:
            self._clip([grads])

    def _apply(self, triples, clip):
        """One call with the Keras 3 options, over ``(w, g, state)`` triples (in place):

        - ``g ← g / loss_scale_factor``;
        - accumulation over n calls: ``acc ← acc + g`` on calls 1..n−1; on the n-th the rule
          runs on ``(acc + g)/n`` (clipped, with the schedule at the call's count), ``acc ← 0``;
        - EMA after every call: ``a ← μ·a + (1 − μ)·w`` with μ = 0 while ``iterations`` is 0;
          every ``ema_overwrite_frequency`` updates ``w ← a``.
        """
        scale = self.loss_scale_factor
        if scale is not None:
            for _, g, _ in triples:
                g /= g.dtype.type(scale)
        raw = self._iterations
        n = self.gradient_accumulation_steps
        if n:
            accs = [st["gradient_accumulator"] for _, _, st in triples]
            if (raw + 1) % n == 0:
                for a, (_, g, _) in zip(accs, triples):
                    a += g
                    a /= a.dtype.type(n)
                clip(accs)
                lr = self._current_lr()
                for a, (w, _, st) in zip(accs, triples):
                    self._step(w, a, st, lr, (raw + 1) // n)
                    a.fill(0)
            else:
                for a, (_, g, _) in zip(accs, triples):
                    a += g
        else:
            clip([g for _, g, _ in triples])
            lr = self._current_lr()
            for w, g, st in triples:
                self._step(w, g, st, lr, raw + 1)
        if self.use_ema:
            it = raw // n if n else raw
            overwrite = self.ema_overwrite_frequency and (it + 1) % self.ema_overwrite_frequency == 0
            for w, _, st in triples:
                avg = st["average"]
                if it == 0:
                    _copyto(avg, w)
                else:
                    m = w.dtype.type(self.ema_momentum)
                    tmp = st["_tmp"]
                    _xp(w).multiply(w, w.dtype.type(1) - m, out=tmp)
                    avg *= m
                    avg += tmp
                if overwrite:
                    _copyto(w, avg)
        self._iterations = raw + 1

    def scale_loss(self, loss):
        """The loss times ``loss_scale_factor`` (before the gradient is taken), as Keras 3."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    def finalize_variable_values(self, var_list):
        """End of training (``fit`` calls it): with ``use_ema`` the weights take their moving
        averages, as Keras 3."""
        if not self.use_ema:
            return
        for w, avg in self._ema_pairs(var_list):
            _copyto(w, avg)

    def _ema_pairs(self, var_list):
        """(weights, their moving averages) as array pairs for the variables of ``var_list``:
        each variable updated through ``apply_gradients``, and once the flat buffer of a model
        that ``fit`` updates."""
        flat, done, pairs = self._flat_state, set(), []
        for v in var_list:
            st = self._var_state.get(id(v))
            if st is not None and "average" in st and (st["_views_of"] is None or st["_views_of"] is flat) \
                    and st["average"].shape == v.data.shape:
                pairs.append((v.data, st["average"]))
                continue
            base = getattr(v.data, "base", None)
            if base is None and _on_device(v.data) and getattr(v, "_flat", None) is not None:
                base = v._flat[0]             # a device buffer, recorded by the model
            if flat is not None and "average" in flat and base is not None and id(base) not in done \
                    and base.size == flat["_size"] and base.dtype == flat["average"].dtype:
                pairs.append((base, flat["average"]))
                done.add(id(base))
        return pairs

    def _flat_state_names(self):
        """Names of the flat state arrays this optimizer's configuration updates."""
        return tuple(self._state_names) + (("average",) if self.use_ema else ()) + (
            ("gradient_accumulator",) if self.gradient_accumulation_steps else ())

    def load_flat_state(self, arrays, size, dtype=None):
        """Install saved flat state ``arrays`` ({name: 1-D array}) for a parameter buffer of
        ``size`` values (cast to ``dtype`` when given); returns whether it was installed.

        - The names match :meth:`_flat_state_names`: each array must be a real-float vector of
          length ``size``, else ``ValueError`` (an inconsistent file) and nothing changes.
        - The names differ (the configuration needs a buffer the saved state lacks, as Adam with
          ``amsgrad=True`` over a plain Adam state, or the optimizer was changed since): as Keras,
          a warning "Skipping variable loading for optimizer …" and the state stays fresh (built
          at the first step), so no update ever runs on a missing buffer.
        """
        import warnings
        names = set(self._flat_state_names())
        if set(arrays) != names:
            warnings.warn(
                f"Skipping variable loading for optimizer '{self.name}', because it uses the state "
                f"{sorted(names)} whereas the saved optimizer holds {sorted(arrays)}; its state "
                f"starts fresh", stacklevel=2)
            return False
        size = int(size)
        state = {}
        for name in sorted(names):
            a = arrays[name]
            if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or a.ndim != 1 or a.size != size:
                raise ValueError(
                    f"{type(self).__name__}: the saved state array {name!r} must be a real-float "
                    f"vector of {size} values (one per parameter), received "
                    f"{getattr(a, 'dtype', type(a).__name__)} of shape {getattr(a, 'shape', None)}")
            state[name] = np.array(a, dtype=dtype or a.dtype, order="C", copy=True)
        ref_dtype = dtype or (next(iter(state.values())).dtype if state else np.float32)
        if len({a.dtype for a in state.values()}) > 1:
            raise ValueError(f"{type(self).__name__}: the saved state arrays have different dtypes "
                             f"{sorted(str(a.dtype) for a in state.values())}")
        state["_size"] = size
        state["_tmp"] = np.empty(size, dtype=ref_dtype)
        self._flat_state = state
        return True

    def _step(self, w, g, state, lr, t):
        """Decoupled weight decay then the rule: fused in one pass when the kernels are built."""
        df = 1.0 - lr * self.weight_decay if self.weight_decay else 1.0
        if type(w) is not np.ndarray and _on_device(w):
            return self._device_step(w, g, state, lr, t, df)
        bad = [n for n in self._state_names
               if not (isinstance(state.get(n), np.ndarray) and state[n].shape == w.shape)]
        if bad:       # e.g. state restored for another configuration: never hand it to a kernel
            raise ValueError(
                f"{type(self).__name__}: its configuration needs the state buffers "
                f"{list(self._state_names)} of the parameters' shape {w.shape}; "
                f"{', '.join(bad)} " + ("is" if len(bad) == 1 else "are") + " missing or of "
                f"another shape (received {sorted(k for k in state if k[0] != '_')})")
        if self.use_fused and _KERNELS is not None:
            # the flat buffers of a model stay the same from step to step: check them once
            key = (id(w), id(g), w.dtype, g.dtype, w.size, g.size,
                   w.flags.c_contiguous and g.flags.c_contiguous and w.flags.writeable)
            if state.get("_fusable") != key:
                if not _fusable(w, g, *[a for n, a in state.items()
                                        if n[0] != "_" and isinstance(a, np.ndarray)]):
                    key = None
                state["_fusable"] = key
            if key is not None:
                self._fused(_KERNELS, w, g, state, lr, t, df)
                return
        if self.weight_decay:
            w *= df
        self._update(w, g, state, lr, t)

    def _device_step(self, w, g, state, lr, t, df):
        """``_step`` on device buffers: decoupled decay then the rule's reference form, with
        the buffers' array module (the compiled kernels take host buffers only)."""
        xp = _xp(w)
        bad = [n for n in self._state_names
               if not (_is_array(state.get(n)) and _xp(state[n]) is xp
                       and state[n].shape == w.shape)]
        if bad:
            raise ValueError(
                f"{type(self).__name__}: its configuration needs the state buffers "
                f"{list(self._state_names)} of the parameters' shape {w.shape} on the "
                f"parameters' device; {', '.join(bad)} " + ("is" if len(bad) == 1 else "are") +
                f" missing, of another shape or elsewhere (received "
                f"{sorted(k for k in state if k[0] != '_')})")
        if self.weight_decay:
            w *= df
        self._update(w, g, state, lr, t)

    # ------------------------------------------------ Keras 3 variable API
    #: the rule works on each variable as a whole (norms, factored moments, matrix steps)
    _per_variable = False
    #: the rule needs each variable's shape (and path): a flat buffer alone is not enough
    _needs_variables = False
    #: per-variable state that is not of the variable's shape (Adafactor's factored moments)
    _extra_names = ()

    def _extra_state(self, w, var):
        """State arrays of ``w`` beyond the flat ones (names in ``_extra_names``)."""
        return {}

    def build(self, var_list):
        """Create the optimizer's state for the variables it will update (Keras 3): ``apply``
        builds on its first call; after it, only these variables may be given."""
        if self.built:
            return
        var_list = list(var_list)
        for v in var_list:
            if not hasattr(v, "data") or not _is_array(v.data):
                raise TypeError(f"{type(self).__name__}.build: expected axone Variables, received "
                                f"{type(v).__name__}")
        self._trainable_variables = var_list
        self._tv_index = {id(v): i for i, v in enumerate(var_list)}
        self.built = True
        flat = _flat_views(var_list)
        if flat is not None:
            self._flat_state_for(flat[0])
        for v in var_list:
            self._state_of(v)

    def _state_of(self, v):
        """The state dict of variable ``v``: views into the flat state when the optimizer is
        built over variables that view one buffer, else arrays of its own."""
        st = self._var_state.get(id(v))
        flat = self._flat_state
        if st is not None and (st["_views_of"] is None or st["_views_of"] is flat):
            return st
        if flat is not None and id(v) in self._tv_index:
            views = _flat_views(self._trainable_variables)
            if views is not None and views[0].size == flat["_size"]:
                seg = views[1][self._tv_index[id(v)]]
                st = self._var_state[id(v)] = self._views(flat, seg, v.data.shape, v, old=st)
                return st
        old = st
        st = self._full_state(v.data)
        st.update(self._extra_state(v.data, v))
        if old is not None:
            for n, a in old.items():
                if n[0] != "_" and n in st and _is_array(a) and a.shape == st[n].shape:
                    _copyto(st[n], a)
        st["_views_of"] = None
        self._var_state[id(v)] = st
        return st

    def _views(self, flat, seg, shape, var, old=None):
        """Views of the flat state arrays for one segment, with the extra state carried over."""
        st = {n: a[seg].reshape(shape) for n, a in flat.items()
              if _is_array(a) and a.ndim == 1 and a.size == flat["_size"] and n[0] != "_"}
        st["_tmp"] = flat["_tmp"][seg].reshape(shape)
        extra = self._extra_state(st["_tmp"], var) if self._extra_names or self._needs_variables \
            else {}
        if old is not None:
            for n, a in old.items():
                if n in extra and _is_array(a) and a.shape == extra[n].shape:
                    extra[n] = a
                elif n in st and n[0] != "_" and a is not st[n] and a.shape == st[n].shape:
                    _copyto(st[n], a)        # state of a variable built before it joined a buffer
        st.update(extra)
        st["_views_of"] = flat
        return st

    def _segment_triples(self, params, grads, segments, variables):
        """(w, g, state) per variable of a flat buffer, for the per-variable rules."""
        flat = self._flat_state
        if variables is None and self.built:
            views = _flat_views(self._trainable_variables)
            if views is not None and views[0] is params:
                variables = self._trainable_variables
        if variables is not None:
            variables = list(variables)
            if not self.built:
                self.build(variables)
            if segments is None:
                segments = _flat_views(variables)[1]
            out = []
            for v, s in zip(variables, segments):
                st = self._var_state.get(id(v))
                if st is None or st.get("_views_of") is not flat:
                    st = self._views(flat, s, v.data.shape, v, old=st)
                    if id(v) in self._tv_index:
                        self._var_state[id(v)] = st
                out.append((params[s].reshape(v.data.shape), grads[s].reshape(v.data.shape), st))
            return out
        if self._needs_variables:
            raise ValueError(
                f"{type(self).__name__}: its rule needs each variable's shape and path; build the "
                f"optimizer on the model's weights first (optimizer.build(model.trainable_variables)) "
                f"or pass variables= to update_flat")
        segments = segments or [slice(0, params.size)]
        key = (id(params), id(grads), id(flat), tuple((s.start, s.stop) for s in segments))
        cached = flat.get("_segs")
        if cached is None or cached[0] != key:
            shapes = [(s.stop - s.start,) for s in segments]
            sts = [self._views(flat, s, sh, None) for s, sh in zip(segments, shapes)]
            cached = flat["_segs"] = (key, [(params[s], grads[s], st) for s, st in zip(segments, sts)])
        return cached[1]

    @property
    def variables(self):
        """The optimizer's variables, as Keras 3 orders them: the step counter, the learning rate
        (when it is a number), then per trainable variable its state (moving averages and
        gradient accumulators first, then the rule's own state, variable by variable)."""
        out = [self._keras_var("iteration", np.asarray(self._iterations, dtype=np.int64))]
        if not callable(self._learning_rate):
            out.append(self._keras_var("learning_rate", np.asarray(self._learning_rate, np.float32)))
        if not self.built:
            return out
        sts = [self._state_of(v) for v in self._trainable_variables]
        names = [n for n in ("average", "gradient_accumulator") if n in (sts[0] if sts else {})]
        for n in names:
            for v, st in zip(self._trainable_variables, sts):
                out.append(self._keras_var(f"{_ref_name(v)}_{n}", st[n]))
        for v, st in zip(self._trainable_variables, sts):
            for n in self._var_names(st):
                out.append(self._keras_var(f"{_ref_name(v)}_{n}", st[n]))
        return out

    def _var_names(self, st):
        """The rule's state names of one variable, in Keras's order."""
        return [n for n in tuple(self._extra_names) + tuple(self._state_names)
                if _is_array(st.get(n))]

    def _keras_var(self, name, array):
        """A Variable whose data is ``array`` itself (so assigning it changes the state); the
        counters are fresh scalar copies."""
        from ..variables import Variable
        key = (name, id(array))
        v = self._keras_vars.get(name)
        if v is None or v.data is not array:
            v = Variable(np.zeros((), array.dtype), dtype=array.dtype, trainable=False, name=name)
            v.data = array
            self._keras_vars[name] = v
        return v

    def _set_scalar_vars(self, values):
        """Set the counters from ``values`` (the first entries of a ``variables`` list)."""
        self._iterations = int(np.asarray(_np(values[0])).reshape(()))
        if not callable(self._learning_rate):
            self._learning_rate = float(np.asarray(_np(values[1])).reshape(()))

    def apply_gradients(self, grads_and_vars):
        """Keras 3: ``apply(grads, variables)`` for ``zip(grads, variables)``; returns
        ``iterations``."""
        pairs = list(grads_and_vars)
        if not pairs:
            return self.iterations
        try:
            grads = [g for g, _ in pairs]
            variables = [v for _, v in pairs]
        except (TypeError, ValueError):
            raise TypeError(f"{type(self).__name__}.apply_gradients: expected (gradient, variable) "
                            f"pairs, e.g. zip(grads, model.trainable_variables), received "
                            f"{[type(p).__name__ for p in pairs[:3]]}") from None
        self.apply(grads, variables)
        return self.iterations

    @distribution.reduces_gradients
    def apply(self, grads, trainable_variables=None):
        """Update ``trainable_variables`` with ``grads`` (Tensors, arrays or None), as Keras 3.

        The first call builds the optimizer on the variables given (later calls may give only
        those, or None for all of them).  A None gradient skips its variable with Keras's
        warning (all None: ValueError).  When the variables are a model's whole trainable set
        — views, in order, covering one contiguous buffer — and each gradient is the variable's
        own ``.grad`` (a view into the matching gradient buffer), the whole buffer is updated in
        one fused step; otherwise variable by variable, with the same numbers.
        """
        grads = grads if type(grads) is list else list(grads)
        if len(grads) == 0:
            return
        plan = self.__dict__.get("_apply_plan")
        if plan is not None and trainable_variables is not None and plan[0] is self._tv_index:
            # the same variables and gradient arrays as the last fused call: skip the checks
            _, pv, pa, pd, views, G = plan
            tv = trainable_variables if isinstance(trainable_variables, list) \
                else list(trainable_variables)
            if len(tv) == len(pv) == len(grads) and all(map(_is, tv, pv)) and all(map(
                    _is, [g.data if isinstance(g, Tensor) else g for g in grads], pa)) and \
                    all(map(_is, [v.data for v in tv], pd)):
                if self.clipnorm is not None or self.clipvalue is not None or \
                        self.global_clipnorm is not None or self.loss_scale_factor is not None \
                        or self.gradient_accumulation_steps:
                    G = G.copy()      # the rule scales gradients in place: keep the caller's
                self.update_flat(views[0], G, views[1], variables=pv)
                self.apply_constraints(pv)
                return
        who = f"{type(self).__name__}.apply"
        if trainable_variables is None:
            if not self.built:
                raise ValueError(f"{who}: when passing `grads` without `variables`, the optimizer "
                                 f"must already be built on a list of variables; call "
                                 f"optimizer.build(trainable_variables) first")
            if len(grads) != len(self._trainable_variables):
                raise ValueError(f"{who}: received {len(grads)} gradients, but the optimizer is "
                                 f"tracking {len(self._trainable_variables)} trainable variables")
            variables = list(self._trainable_variables)
        else:
            variables = list(trainable_variables)
            if len(grads) != len(variables):
                raise ValueError(f"{who}: received {len(grads)} gradients for {len(variables)} "
                                 f"variables")
            if not self.built:
                self.build(variables)
            for v in variables:
                if id(v) not in self._tv_index:
                    raise ValueError(
                        f"{who}: unknown variable {getattr(v, 'path', v)!r}; this optimizer can "
                        f"only be called for the variables it was originally built with. When "
                        f"working with a new set of variables, create a new optimizer instance")
        arrays = []
        for g, v in zip(grads, variables):
            if g is None:
                arrays.append(None)
                continue
            a = g.data if isinstance(g, Tensor) else g
            a = a if isinstance(a, np.ndarray) or _on_device(a) else np.asarray(_np(a))
            if a.shape != tuple(v.shape):
                raise ValueError(f"{who}: gradient of shape {a.shape} for variable "
                                 f"{getattr(v, 'path', '?')!r} of shape {tuple(v.shape)}")
            if a.dtype.kind not in "fiub":
                raise TypeError(f"{who}: the gradient of {getattr(v, 'path', '?')!r} must be real "
                                f"numbers, received dtype {a.dtype}")
            arrays.append(a)
        missing = [getattr(v, "path", getattr(v, "name", "?")) for a, v in zip(arrays, variables)
                   if a is None]
        if len(missing) == len(variables):
            raise ValueError("No gradients provided for any variable.")
        if missing:
            import warnings
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the "
                          f"loss. If using `model.compile()`, did you forget to provide a `loss` "
                          f"argument?", stacklevel=2)
        pairs = [(a, v) for a, v in zip(arrays, variables) if a is not None]
        self._apply_arrays(pairs, all_given=not missing and len(variables) == len(self._tv_index))
        self.apply_constraints([v for _, v in pairs])

    def _apply_arrays(self, pairs, all_given):
        """One step over (gradient array, variable) pairs: fused over the buffer when possible."""
        if all_given:
            views = _flat_views([v for _, v in pairs])
            if views is not None:
                G = _grad_buffer([a for a, _ in pairs], views)
                G_orig = G
                if G is not None:
                    if self.clipnorm is not None or self.clipvalue is not None or \
                            self.global_clipnorm is not None or self.loss_scale_factor is not None \
                            or self.gradient_accumulation_steps:
                        G = G.copy()      # the rule scales gradients in place: keep the caller's
                    vs = [v for _, v in pairs]
                    self.__dict__["_apply_plan"] = (self._tv_index, vs, [a for a, _ in pairs],
                                                    [v.data for v in vs], views, G_orig)
                    self.update_flat(views[0], G, views[1], variables=vs)
                    return
        triples = []
        for a, v in pairs:
            st = self._state_of(v)
            if type(v.data) is np.ndarray and type(a) is np.ndarray:
                g = np.array(a, dtype=v.data.dtype, copy=True)
            else:               # on the variable's device (a gradient elsewhere copied there)
                xp = _xp(v.data)
                if _xp(a) is not xp:
                    from ..device import to_numpy
                    a = to_numpy(a) if xp is np else xp.asarray(to_numpy(a))
                g = xp.array(a, dtype=v.data.dtype, copy=True)
            triples.append((v.data, g, st))
        self._apply(triples, self._clip)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        """Keras 3's functional form of :meth:`apply`: from the values of the optimizer's
        ``variables`` and of the trainable variables it was built with, the new values
        ``(new_trainable_values, new_optimizer_values)`` (NumPy arrays); the live variables and
        the optimizer's own state are left as they were."""
        who = f"{type(self).__name__}.stateless_apply"
        if not self.built:
            raise ValueError(f"To call `stateless_apply`, {type(self).__name__} must be built "
                             f"(i.e. its variables must have been created). You can build it via "
                             f"`optimizer.build(trainable_variables)`.")
        own = self.variables
        optimizer_variables, trainable_variables = list(optimizer_variables), list(trainable_variables)
        if len(optimizer_variables) != len(own):
            raise ValueError(f"{who}: `optimizer_variables` must correspond 1:1 to "
                             f"{type(self).__name__}().variables; received a list of length "
                             f"{len(optimizer_variables)}, expected {len(own)}")
        tv = self._trainable_variables
        if len(trainable_variables) != len(tv):
            raise ValueError(f"{who}: `trainable_variables` must correspond 1:1 to the "
                             f"{len(tv)} variables the optimizer was built with; received "
                             f"{len(trainable_variables)}")
        new_vals = []
        for val, v in zip(trainable_variables, tv):
            a = np.array(_host_array(_np(val)), dtype=v.data.dtype, copy=True)
            if a.shape != v.data.shape:
                raise ValueError(f"{who}: value of shape {a.shape} for variable "
                                 f"{getattr(v, 'path', '?')!r} of shape {v.data.shape}")
            if type(v.data) is not np.ndarray and _on_device(v.data):
                a = _xp(v.data).asarray(a)            # computed where the variable lives
            new_vals.append(a)
        opt_vals = []
        for val, v in zip(optimizer_variables, own):
            a = _host_array(_np(val))
            if a.shape != v.data.shape:
                raise ValueError(f"{who}: optimizer value of shape {a.shape} for "
                                 f"{v.name!r} of shape {v.data.shape}")
            opt_vals.append(a)
        saved = self._snapshot(own)
        live = [v.data for v in tv]
        try:
            self._restore_into(own, opt_vals)
            for v, a in zip(tv, new_vals):
                v.data = a
            self.apply(grads)
            out_vars = [_host_copy(v.data) for v in tv]
            out_opt = [_host_copy(v.data) for v in self.variables]
        finally:
            for v, a in zip(tv, live):
                v.data = a
            self._restore(saved)
        return out_vars, out_opt

    def _snapshot(self, own):
        """Everything a step changes, to put back after a stateless step."""
        arrays = [(v.data, v.data.copy()) for v in own[self._n_scalar_vars():]]
        scalars = {k: self.__dict__[k] for k in ("_iterations", "_learning_rate", "_u_product",
                                                  "_u_step") if k in self.__dict__}
        return arrays, scalars

    def _restore(self, saved):
        arrays, scalars = saved
        for a, copy in arrays:
            _copyto(a, copy)
        self.__dict__.update(scalars)
        self._on_restore()

    def _on_restore(self):
        pass

    def _n_scalar_vars(self):
        return 1 if callable(self._learning_rate) else 2

    def _restore_into(self, own, values):
        n = self._n_scalar_vars()
        self._set_scalar_vars(values[:n])
        for v, a in zip(own[n:], values[n:]):
            a = a.astype(v.data.dtype, copy=False)
            if type(v.data) is not np.ndarray and _on_device(v.data) and _xp(a) is not _xp(v.data):
                a = _xp(v.data).asarray(a)         # a host value for state on a device
            _copyto(v.data, a)
        self._after_set_state()

    def _after_set_state(self):
        """Derived scalar state recomputed after the step counter was set (Nadam's product)."""
        if "_u_step" in self.__dict__:
            self._u_product, self._u_step = 1.0, 0
            self._u_products(self._iterations + 1 if not self.gradient_accumulation_steps
                             else self._iterations // self.gradient_accumulation_steps + 1)

    def set_weights(self, weights):
        """Set the optimizer's variables from a list of arrays (Keras 3); it must be built."""
        if not self.built:
            raise ValueError("You are calling `set_weights()` on an optimizer that has not yet "
                             "been built. Please call `optimizer.build(trainable_variables)` to "
                             "create the optimizer weights before calling `set_weights()`.")
        own = self.variables
        for v, w in zip(own, weights):
            if tuple(np.shape(_np(w))) != v.data.shape:
                raise ValueError(f"Optimizer variable {v.name!r} has shape {v.data.shape} not "
                                 f"compatible with provided weight shape {np.shape(_np(w))}")
        self._restore_into(own, [np.asarray(_np(w)) for w in weights])

    def get_weights(self):
        """Copies of the optimizer's variables as host arrays (state on a device copied back)."""
        return [_host_copy(v.data) for v in self.variables]

    @staticmethod
    def apply_constraints(variables):
        """After an update, as Keras 3: ``w ← w.constraint(w)`` for each variable that has one."""
        constrained = [v for v in variables if getattr(v, "constraint", None) is not None]
        if not constrained:
            return
        from ..autograd.function import no_grad
        with no_grad():
            for v in constrained:
                v.assign(v.constraint(v))

    #: set to False on an instance to force the NumPy reference updates
    use_fused = True

    def _update(self, w, g, state, lr, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fused(self, k, w, g, state, lr, t, df):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        lr = self._learning_rate
        return {"name": self.name, "learning_rate": lr if not callable(lr) else repr(lr),
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm,
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps,
                **({"decay": self.decay} if self.decay else {})}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, Keras's form:

        v ← μ·v − η·g;   w ← w + v   (Nesterov: w ← w + μ·v − η·g);   μ = 0: w ← w − η·g.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = _real(self, "momentum", momentum)
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"SGD: momentum must lie in [0, 1], received {momentum}")
        self.nesterov = _flag(self, "nesterov", nesterov)
        self._state_names = ("momentum",) if self.momentum else ()

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        tmp = state["_tmp"]
        if not self.momentum:
            xp.multiply(g, lr, out=tmp)
            w -= tmp
            return
        v = state["momentum"]
        v *= self.momentum
        xp.multiply(g, lr, out=tmp)
        v -= tmp
        if self.nesterov:
            w -= tmp
            xp.multiply(v, self.momentum, out=tmp)
            w += tmp
        else:
            w += v

    def _fused(self, k, w, g, state, lr, t, df):
        flags = 0 if not self.momentum else (2 if self.nesterov else 1)
        k.sgd(w.dtype == np.float64, flags, (w, g, state.get("momentum")), (lr, df, self.momentum))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return cfg


class Adam(Optimizer):
    """Adam (Kingma & Ba) as Keras computes it, with β-power bias correction:

        m ← m + (g − m)(1 − β₁);   v ← v + (g² − v)(1 − β₂)
        α = η·√(1 − β₂ᵗ)/(1 − β₁ᵗ);   w ← w − α·m/(√v + ε)
    """

    _state_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        for n, b in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= _real(self, n, b) < 1:
                raise ValueError(f"Adam: {n} must lie in [0, 1), received {b}")
        self.beta_1 = _real(self, "beta_1", beta_1)
        self.beta_2 = _real(self, "beta_2", beta_2)
        self.epsilon = _real(self, "epsilon", epsilon)
        self.amsgrad = _flag(self, "amsgrad", amsgrad)
        if self.amsgrad:
            self._state_names = ("m", "v", "vhat")

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        m, v, tmp = state["m"], state["v"], state["_tmp"]
        b1, b2 = self.beta_1, self.beta_2
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - b1
        m += tmp
        xp.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1 - b2
        v += tmp
        if self.amsgrad:
            vhat = state["vhat"]
            xp.maximum(vhat, v, out=vhat)
            xp.sqrt(vhat, out=tmp)
        else:
            xp.sqrt(v, out=tmp)
        tmp += self.epsilon
        xp.divide(m, tmp, out=tmp)
        tmp *= alpha
        w -= tmp

    def _fused(self, k, w, g, state, lr, t, df):
        b1, b2 = self.beta_1, self.beta_2
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        k.adam(w.dtype == np.float64, int(self.amsgrad), (w, g, state["m"], state["v"], state.get("vhat")),
               (alpha, df, 1 - b1, 1 - b2, self.epsilon))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                    "amsgrad": self.amsgrad})
        return cfg


class RMSprop(Optimizer):
    """RMSprop as Keras computes it (ε inside the root):

        s ← ρ·s + (1 − ρ)·g²   (centered: also ḡ ← ρ·ḡ + (1 − ρ)·g, s − ḡ² in the root)
        Δ = η·g / √(s + ε);   w ← w − Δ   (momentum μ: v ← μ·v + Δ, w ← w − v)
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not 0 <= _real(self, "rho", rho) < 1:
            raise ValueError(f"RMSprop: rho must lie in [0, 1), received {rho}")
        self.rho = _real(self, "rho", rho)
        self.momentum = _real(self, "momentum", momentum)
        self.epsilon = _real(self, "epsilon", epsilon)
        self.centered = _flag(self, "centered", centered)
        self._state_names = ("velocity",) + (("average_gradient",) if self.centered else ()) + (
            ("momentum",) if self.momentum else ())

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        s, tmp = state["velocity"], state["_tmp"]
        rho = self.rho
        s *= rho
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - rho
        s += tmp
        if self.centered:
            a = state["average_gradient"]
            a *= rho
            a += (1 - rho) * g
            xp.multiply(a, a, out=tmp)
            xp.subtract(s, tmp, out=tmp)
            tmp += self.epsilon
        else:
            xp.add(s, self.epsilon, out=tmp)
        xp.sqrt(tmp, out=tmp)
        xp.divide(g, tmp, out=tmp)
        tmp *= lr
        if self.momentum:
            v = state["momentum"]
            v *= self.momentum
            v += tmp
            w -= v
        else:
            w -= tmp

    def _fused(self, k, w, g, state, lr, t, df):
        flags = (1 if self.centered else 0) | (2 if self.momentum else 0)
        k.rmsprop(w.dtype == np.float64, flags,
                  (w, g, state["velocity"], state.get("average_gradient"), state.get("momentum")),
                  (lr, df, self.rho, 1 - self.rho, self.epsilon, self.momentum))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                    "centered": self.centered})
        return cfg


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004): w ← w − η·λ·w before the Adam step."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number, received None")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)


class Adagrad(Optimizer):
    """Adagrad: a ← a + g²;  w ← w − η·g/√(a + ε)  (a starts at ``initial_accumulator_value``)."""

    _state_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if _real(self, "initial_accumulator_value", initial_accumulator_value) < 0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be non-negative, "
                             f"received {initial_accumulator_value}")
        self.initial_accumulator_value = _real(self, "initial_accumulator_value", initial_accumulator_value)
        self.epsilon = _real(self, "epsilon", epsilon)

    def _new_state(self, w):
        xp = _xp(w)
        return {"accumulator": xp.full_like(w, self.initial_accumulator_value)}

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        a, tmp = state["accumulator"], state["_tmp"]
        xp.multiply(g, g, out=tmp)
        a += tmp
        xp.add(a, self.epsilon, out=tmp)
        xp.sqrt(tmp, out=tmp)
        xp.divide(g, tmp, out=tmp)
        tmp *= lr
        w -= tmp

    def _fused(self, k, w, g, state, lr, t, df):
        k.adagrad(w.dtype == np.float64, 0, (w, g, state["accumulator"]), (lr, df, self.epsilon))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon})
        return cfg


class Adadelta(Optimizer):
    """Adadelta: E[g²] ← ρE[g²] + (1−ρ)g²;  Δ = −√(E[Δ²] + ε)/√(E[g²] + ε)·g;
    E[Δ²] ← ρE[Δ²] + (1−ρ)Δ²;  w ← w + η·Δ."""

    _state_names = ("accumulated_grad", "accumulated_delta_var")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.epsilon = _real(self, "rho", rho), _real(self, "epsilon", epsilon)

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        ag, ad, tmp = state["accumulated_grad"], state["accumulated_delta_var"], state["_tmp"]
        rho, eps = self.rho, self.epsilon
        ag *= rho
        ag += (1 - rho) * g * g
        delta = -xp.sqrt(ad + eps) / xp.sqrt(ag + eps) * g
        ad *= rho
        ad += (1 - rho) * delta * delta
        xp.multiply(delta, lr, out=tmp)
        w += tmp

    def _fused(self, k, w, g, state, lr, t, df):
        k.adadelta(w.dtype == np.float64, 0, (w, g, state["accumulated_grad"], state["accumulated_delta_var"]),
                   (lr, df, self.rho, 1 - self.rho, self.epsilon))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"rho": self.rho, "epsilon": self.epsilon})
        return cfg


class Adamax(Optimizer):
    """Adamax: m ← m + (g − m)(1 − β₁);  u ← max(β₂u, |g|);  w ← w − η/(1 − β₁ᵗ)·m/(u + ε)."""

    _state_names = ("m", "u")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = _real(self, "beta_1", beta_1)
        self.beta_2 = _real(self, "beta_2", beta_2)
        self.epsilon = _real(self, "epsilon", epsilon)

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        m, u, tmp = state["m"], state["u"], state["_tmp"]
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        u *= self.beta_2
        xp.maximum(u, xp.abs(g), out=u)
        xp.add(u, self.epsilon, out=tmp)
        xp.divide(m, tmp, out=tmp)
        tmp *= lr / (1 - self.beta_1 ** t)
        w -= tmp

    def _fused(self, k, w, g, state, lr, t, df):
        k.adamax(w.dtype == np.float64, 0, (w, g, state["m"], state["u"]),
                 (lr / (1 - self.beta_1 ** t), df, 1 - self.beta_1, self.beta_2, self.epsilon))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return cfg


class Nadam(Optimizer):
    """Nesterov Adam with Keras's momentum schedule μₜ = β₁(1 − ½·0.96ᵗ):

        m̂ = μₜ₊₁m/(1 − Πμ₁..ₜ₊₁) + (1 − μₜ)g/(1 − Πμ₁..ₜ);  v̂ = v/(1 − β₂ᵗ);
        w ← w − η·m̂/(√v̂ + ε)
    """

    _state_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = _real(self, "beta_1", beta_1)
        self.beta_2 = _real(self, "beta_2", beta_2)
        self.epsilon = _real(self, "epsilon", epsilon)
        self._u_product = 1.0
        self._u_step = 0

    def _u_products(self, t):
        # Π of μ over steps 1..t−1 and 1..t, tracked once per step (shared by all variables)
        while self._u_step < t - 1:
            self._u_step += 1
            self._u_product *= self.beta_1 * (1 - 0.5 * 0.96 ** self._u_step)
        return self._u_product

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        m, v = state["m"], state["v"]
        b1, b2 = self.beta_1, self.beta_2
        u_t = b1 * (1 - 0.5 * 0.96 ** t)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        prod_t = self._u_products(t) * u_t
        prod_t1 = prod_t * u_t1
        tmp = state["_tmp"]
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - b1
        m += tmp
        xp.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1 - b2
        v += tmp
        # w ← w − η·m̂/(√v̂ + ε), with m̂ and v̂ formed in the scratch buffers
        xp.multiply(v, 1.0 / (1 - b2 ** t), out=tmp)
        xp.sqrt(tmp, out=tmp)
        tmp += self.epsilon
        m_hat = xp.multiply(m, u_t1 / (1 - prod_t1))
        m_hat += g * ((1 - u_t) / (1 - prod_t))
        xp.divide(m_hat, tmp, out=tmp)
        tmp *= lr
        w -= tmp

    def _fused(self, k, w, g, state, lr, t, df):
        b1, b2 = self.beta_1, self.beta_2
        u_t = b1 * (1 - 0.5 * 0.96 ** t)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        prod_t = self._u_products(t) * u_t
        prod_t1 = prod_t * u_t1
        k.nadam(w.dtype == np.float64, 0, (w, g, state["m"], state["v"]),
                (lr, df, 1 - b1, 1 - b2, self.epsilon, u_t1 / (1 - prod_t1), (1 - u_t) / (1 - prod_t),
                 1.0 / (1 - b2 ** t)))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return cfg


def _check_number(opt, name, value, lo=None, hi=None, lo_open=False):
    v = _real(opt, name, value)
    if lo is not None and (v < lo or (lo_open and v == lo)) or hi is not None and v > hi:
        rng = f"{'(' if lo_open else '['}{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{type(opt).__name__}: {name} must be {rng}, received {value!r}")
    return v


class Lion(Optimizer):
    """Lion (Chen et al. 2023), as Keras:

        w ← w − η·sign(β₁m + (1 − β₁)g);   m ← β₂m + (1 − β₂)g.
    """

    _state_names = ("momentum",)
    use_fused = False

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        b1 = _real(self, "beta_1", beta_1)
        if b1 <= 0 or b1 > 1:
            raise ValueError(f"Lion: beta_1 must be in the [0, 1] range, otherwise the optimizer "
                             f"degenerates to SignSGD; received beta_1={beta_1!r}")
        self.beta_1, self.beta_2 = b1, _real(self, "beta_2", beta_2)

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        m, tmp = state["momentum"], state["_tmp"]
        b1, b2 = w.dtype.type(self.beta_1), w.dtype.type(self.beta_2)
        xp.multiply(m, b1, out=tmp)
        tmp += g * (w.dtype.type(1) - b1)
        xp.sign(tmp, out=tmp)
        tmp *= w.dtype.type(lr)
        w -= tmp
        m *= b2
        m += g * (w.dtype.type(1) - b2)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"beta_1": self.beta_1, "beta_2": self.beta_2})
        return cfg


class Ftrl(Optimizer):
    """FTRL-proximal (McMahan et al. 2013), as Keras (p = ``learning_rate_power``):

        g' = g + 2·λ_shrink·w;   n' = n + g²;   z ← z + g' − (n'^(−p) − n^(−p))/η · w
        w ← (clip(z, −λ₁, λ₁) − z) / (n'^(−p)/η + 2(λ₂ + β/(2η)));   n ← n'
    """

    _state_names = ("accumulator", "linear")
    use_fused = False

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        checks = (("initial_accumulator_value", initial_accumulator_value, "positive or zero"),
                  ("l1_regularization_strength", l1_regularization_strength, "positive or zero"),
                  ("l2_regularization_strength", l2_regularization_strength, "positive or zero"),
                  ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength,
                   "positive or zero"))
        for name, value, need in checks:
            if _real(self, name, value) < 0:
                raise ValueError(f"Ftrl: `{name}` needs to be {need}. Received: {name}={value}.")
        if _real(self, "learning_rate_power", learning_rate_power) > 0:
            raise ValueError(f"Ftrl: `learning_rate_power` needs to be negative or zero. "
                             f"Received: learning_rate_power={learning_rate_power}.")
        self.learning_rate_power = float(learning_rate_power)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.l1_regularization_strength = float(l1_regularization_strength)
        self.l2_regularization_strength = float(l2_regularization_strength)
        self.l2_shrinkage_regularization_strength = float(l2_shrinkage_regularization_strength)
        self.beta = _real(self, "beta", beta)

    def _new_state(self, w):
        xp = _xp(w)
        return {"accumulator": xp.full_like(w, self.initial_accumulator_value),
                "linear": xp.zeros_like(w)}

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        acc, lin = state["accumulator"], state["linear"]
        p = -self.learning_rate_power
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        g_use = g + (2 * self.l2_shrinkage_regularization_strength) * w
        new_acc = acc + g * g
        new_pow = xp.power(new_acc, p)
        lin += g_use - (new_pow - xp.power(acc, p)) / w.dtype.type(lr) * w
        quadratic = new_pow / w.dtype.type(lr) + w.dtype.type(2 * l2)
        l1 = self.l1_regularization_strength
        xp.divide(xp.clip(lin, -l1, l1) - lin, quadratic, out=w)
        _copyto(acc, new_acc)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"learning_rate_power": self.learning_rate_power,
                    "initial_accumulator_value": self.initial_accumulator_value,
                    "l1_regularization_strength": self.l1_regularization_strength,
                    "l2_regularization_strength": self.l2_regularization_strength,
                    "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                    "beta": self.beta})
        return cfg


class Lamb(Optimizer):
    """LAMB (You et al.), Adam's step scaled per variable by the trust ratio, as Keras:

        m ← m + (g − m)(1 − β₁);   v ← v + (g² − v)(1 − β₂)
        u = (m/(1 − β₁ᵗ)) / (√(v/(1 − β₂ᵗ)) + ε);   r = ‖w‖/‖u‖ (1 when either is 0)
        w ← w − r·η·u
    """

    _state_names = ("momentum", "velocity")
    _per_variable = True
    use_fused = False

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2 = _real(self, "beta_1", beta_1), _real(self, "beta_2", beta_2)
        self.epsilon = _real(self, "epsilon", epsilon)

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        m, v, u = state["momentum"], state["velocity"], state["_tmp"]
        f = w.dtype.type
        m += (g - m) * f(1 - self.beta_1)
        v += (g * g - v) * f(1 - self.beta_2)
        xp.divide(v, f(1.0 - f(self.beta_2) ** f(t)), out=u)
        xp.sqrt(u, out=u)
        u += f(self.epsilon)
        xp.divide(m / f(1.0 - f(self.beta_1) ** f(t)), u, out=u)
        w_norm = xp.sqrt(xp.sum(w * w))
        u_norm = xp.sqrt(xp.sum(u * u))
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else f(1.0)
        # on a device the ratio is a 0-d device array of w's dtype: the same product
        u *= f(ratio * f(lr)) if xp is np else ratio * f(lr)
        w -= u

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return cfg


def _rms(x):
    xp = _xp(x)
    return xp.sqrt(xp.mean(xp.square(x)))


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern 2018), as Keras; t the step, G = g² + ε₁:

        η' = min(η, 1/√t) (``relative_step`` with a number η);  ρ = min(η', 1/√t)
        α = max(ε₂, RMS(w))·ρ;   β̂ = 1 − t^(beta_2_decay)
        rank ≥ 2 (factored over the last two axes):  r ← β̂r + (1 − β̂)·mean₋₁G,
            c ← β̂c + (1 − β̂)·mean₋₂G,   v = (r / mean₋₁r)[…, None] · c[…, None, :]
        rank < 2:  v ← β̂v + (1 − β̂)G
        u = g/√v;   w ← w − α·u / max(1, RMS(u)/clip_threshold)
    """

    _state_names = ("velocity",)
    _extra_names = ("r", "c")
    _per_variable = True
    _needs_variables = True
    use_fused = False

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                 clip_threshold=1.0, relative_step=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_2_decay = _real(self, "beta_2_decay", beta_2_decay)
        self.epsilon_1 = _real(self, "epsilon_1", epsilon_1)
        self.epsilon_2 = _real(self, "epsilon_2", epsilon_2)
        self.clip_threshold = _real(self, "clip_threshold", clip_threshold)
        self.relative_step = _flag(self, "relative_step", relative_step)

    def _extra_state(self, w, var):
        xp = _xp(w)
        if w.ndim < 2:
            return {"r": xp.zeros((), w.dtype), "c": xp.zeros((), w.dtype)}
        return {"r": xp.zeros(w.shape[:-1], w.dtype),
                "c": xp.zeros(w.shape[:-2] + w.shape[-1:], w.dtype)}

    def _update(self, w, g, state, lr, t):
        f = w.dtype.type
        step = f(t)
        inv_sqrt = f(1) / np.sqrt(step)
        lr = f(lr)
        if not callable(self._learning_rate) and self.relative_step:
            lr = min(lr, inv_sqrt)
        rho = min(lr, inv_sqrt)
        alpha = max(f(self.epsilon_2), _rms(w)) * rho
        xp = _xp(w)
        sq = xp.square(g) + f(self.epsilon_1)
        beta = f(1) - np.power(step, f(self.beta_2_decay))
        v = state["velocity"]
        # products with the array first (the same bits: IEEE products and sums commute), so a
        # device array never meets a NumPy scalar's operator
        if w.ndim >= 2:
            r, c = state["r"], state["c"]
            r[...] = r * beta + xp.mean(sq, axis=-1) * (f(1) - beta)
            c[...] = c * beta + xp.mean(sq, axis=-2) * (f(1) - beta)
            xp.multiply((r / xp.mean(r, axis=-1, keepdims=True))[..., None], c[..., None, :], out=v)
        else:
            v[...] = v * beta + sq * (f(1) - beta)
        u = g / xp.sqrt(v)
        u /= max(f(1), _rms(u) / f(self.clip_threshold))
        w -= u * alpha

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                    "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                    "relative_step": self.relative_step})
        return cfg


class ScheduleFreeAdamW(Optimizer):
    """Schedule-free AdamW (Defazio et al. 2024), as Keras; z = ``momentum`` starts at w:

        η_t = η·min(t/warmup_steps, 1);   v ← v + (g² − v)(1 − β₂)
        z ← z − η_t·g/(√(v/(1 − β₂ᵗ)) + ε);   x = (w − (1 − β₁)z)/β₁
        x' = (1 − 1/t)x + z/t;   w ← (1 − β₁)z + β₁x'

    x is formed from the updated z, as Keras 3 computes it on the torch backend (its
    ``momentum.value`` there is the variable updated in place).
    """

    _state_names = ("momentum", "velocity")
    use_fused = False

    def __init__(self, learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8, warmup_steps=0,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2 = _real(self, "beta_1", beta_1), _real(self, "beta_2", beta_2)
        self.epsilon = _real(self, "epsilon", epsilon)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) \
                or warmup_steps < 0:
            raise ValueError(f"ScheduleFreeAdamW: warmup_steps must be an integer >= 0, received "
                             f"{warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)

    def _new_state(self, w):
        xp = _xp(w)
        return {"momentum": xp.array(w, copy=True), "velocity": xp.zeros_like(w)}

    def _update(self, w, g, state, lr, t):
        xp = _xp(w)
        f = w.dtype.type
        z, v = state["momentum"], state["velocity"]
        step = f(t)
        lr = f(lr)
        if self.warmup_steps > 0:
            lr = lr * min(step / f(self.warmup_steps), f(1))
        b1, b2 = f(self.beta_1), f(self.beta_2)
        v += (g * g - v) * (f(1) - b2)
        denom = xp.sqrt(v / (f(1) - b2 ** step)) + f(self.epsilon)
        # each product with the array first (the same bits: IEEE products and sums commute),
        # so a device array never meets a NumPy scalar's operator
        z -= g * lr / denom
        weight = f(1) / step
        x_old = (w - z * (f(1) - b1)) / b1
        x_new = x_old * (f(1) - weight) + z * weight
        _copyto(w, z * (f(1) - b1) + x_new * b1)

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                    "warmup_steps": self.warmup_steps})
        return cfg


class Muon(Optimizer):
    """Muon, as Keras: 2-D weights (not embeddings with ``exclude_embeddings``, not paths
    matching ``exclude_layers``) take the orthogonalized momentum step, the others AdamW:

        muon:  m ← μm + g;   G = g + μm (Nesterov) or m;   O = NS₅(G) (Newton–Schulz, ``ns_steps``
               iterations X ← aX + (bA + cA²)X, A = XXᵀ, on X = G/(‖G‖_F + 1e−7), the wide way)
               w ← w − η·O·√max(rows, cols)·rms_rate   (no factor when rms_rate is None)
        adamw: Adam with η·adam_lr_ratio, ε outside the root; decay ``adam_weight_decay``.
    """

    _state_names = ("momentum", "velocity")
    _per_variable = True
    _needs_variables = True
    use_fused = False

    def __init__(self, learning_rate=0.001, adam_beta_1=0.9, adam_beta_2=0.999,
                 adam_weight_decay=0.004, epsilon=1e-7, weight_decay=0.004, exclude_layers=None,
                 exclude_embeddings=True, muon_a=3.4445, muon_b=-4.7750, muon_c=2.0315,
                 adam_lr_ratio=1, momentum=0.95, ns_steps=5, nesterov=True, rms_rate=0.2, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        self.adam_beta_1 = _real(self, "adam_beta_1", adam_beta_1)
        self.adam_beta_2 = _real(self, "adam_beta_2", adam_beta_2)
        self.adam_weight_decay = None if adam_weight_decay is None else \
            _real(self, "adam_weight_decay", adam_weight_decay, minimum=0)
        self.epsilon = _real(self, "epsilon", epsilon)
        if exclude_layers is not None and (isinstance(exclude_layers, str) or not all(
                isinstance(k, str) for k in exclude_layers)):
            raise ValueError(f"Muon: exclude_layers must be a list of strings, received "
                             f"{exclude_layers!r}")
        self.exclude_layers = list(exclude_layers or [])
        self.exclude_embeddings = _flag(self, "exclude_embeddings", exclude_embeddings)
        self.muon_a, self.muon_b, self.muon_c = (_real(self, n, x) for n, x in
                                                 (("muon_a", muon_a), ("muon_b", muon_b),
                                                  ("muon_c", muon_c)))
        self.adam_lr_ratio = _real(self, "adam_lr_ratio", adam_lr_ratio)
        self.momentum = _real(self, "momentum", momentum)
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, (int, np.integer)) or ns_steps < 0:
            raise ValueError(f"Muon: ns_steps must be an integer >= 0, received {ns_steps!r}")
        self.ns_steps = int(ns_steps)
        self.nesterov = _flag(self, "nesterov", nesterov)
        self.rms_rate = None if rms_rate is None else _real(self, "rms_rate", rms_rate)

    def _should_use_adamw(self, shape, path):
        import re
        if len(shape) != 2:
            return True
        if self.exclude_embeddings and "embedding" in path.lower():
            return True
        return any(re.search(k, path) for k in self.exclude_layers)

    def _extra_state(self, w, var):
        path = str(getattr(var, "path", "") or "")
        return {"_adam": self._should_use_adamw(w.shape, path)}

    def _var_names(self, st):
        return ["momentum", "velocity"] if st.get("_adam") else ["momentum"]

    def _step(self, w, g, state, lr, t):
        adam = state.get("_adam")
        if adam is None:
            adam = state["_adam"] = self._should_use_adamw(w.shape, "")
        wd = self.adam_weight_decay if adam else self.weight_decay
        if wd:
            w *= w.dtype.type(1.0 - lr * wd)
        if adam:
            self._adamw(w, g, state, lr * self.adam_lr_ratio, t)
        else:
            self._muon(w, g, state, lr)

    def _adamw(self, w, g, state, lr, t):
        f = w.dtype.type
        m, v = state["momentum"], state["velocity"]
        step = f(t)
        alpha = f(lr) * np.sqrt(f(1) - f(self.adam_beta_2) ** step) / (f(1) - f(self.adam_beta_1) ** step)
        m += (g - m) * f(1 - self.adam_beta_1)
        v += (g * g - v) * f(1 - self.adam_beta_2)
        w -= m * alpha / (_xp(w).sqrt(v) + f(self.epsilon))

    def _muon(self, w, g, state, lr):
        f = w.dtype.type
        m = state["momentum"]
        mu = f(self.momentum)
        m += g + m * (mu - f(1))
        G = g + m * mu if self.nesterov else m
        update = self.zeropower_via_newtonschulz5(G, self.ns_steps)
        update = update * f(lr)
        if self.rms_rate is not None:
            update = update * np.sqrt(f(max(w.shape[0], w.shape[1]))) * f(self.rms_rate)
        w -= update

    def zeropower_via_newtonschulz5(self, x, steps):
        """The Newton–Schulz quintic iteration towards the orthogonal factor of ``x`` (products
        with the array first, so it runs on device arrays too)."""
        xp = _xp(x)
        x = xp.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"Muon: expected gradient or momentum to have at least 2 dimensions, "
                             f"received shape={x.shape}")
        f = x.dtype.type
        a, b, c = f(self.muon_a), f(self.muon_b), f(self.muon_c)
        tall = x.shape[-2] > x.shape[-1]
        if tall:
            x = xp.swapaxes(x, -1, -2)
        x = x / (xp.sqrt(xp.sum(x * x, axis=(-2, -1), keepdims=True)) + f(1e-7))
        for _ in range(steps):
            A = x @ xp.swapaxes(x, -1, -2)
            B = A * b + (A * c) @ A
            x = x * a + B @ x
        return xp.swapaxes(x, -1, -2) if tall else x

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"adam_beta_1": self.adam_beta_1, "adam_beta_2": self.adam_beta_2,
                    "epsilon": self.epsilon, "exclude_layers": self.exclude_layers,
                    "muon_a": self.muon_a, "muon_b": self.muon_b, "muon_c": self.muon_c,
                    "adam_lr_ratio": self.adam_lr_ratio, "momentum": self.momentum,
                    "ns_steps": self.ns_steps, "nesterov": self.nesterov,
                    "exclude_embeddings": self.exclude_embeddings,
                    "adam_weight_decay": self.adam_weight_decay, "rms_rate": self.rms_rate})
        return cfg


class LossScaleOptimizer(Optimizer):
    """Dynamic loss scaling around ``inner_optimizer``, as Keras 3: the loss is multiplied by
    the scale s (``scale_loss``; ``fit`` reads it as ``loss_scale_factor``); a step whose
    gradients are all finite applies g/s with the inner optimizer, and after
    ``dynamic_growth_steps`` such steps in a row s doubles; a step with a non-finite gradient is
    skipped and halves s."""

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000,
                 name=None, **kwargs):
        if not kwargs.pop("dynamic", True):
            raise ValueError("LossScaleOptimizer no longer supports `dynamic=False`. Instead, "
                             "simply set `loss_scale_factor` directly on the `inner_optimizer`.")
        defaults = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None,
                    "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
                    "ema_overwrite_frequency": None, "loss_scale_factor": None,
                    "gradient_accumulation_steps": None}
        for k, d in defaults.items():
            if k in kwargs and kwargs.pop(k) != d:
                raise ValueError(f"LossScaleOptimizer does not support `{k}`. Instead, set `{k}` "
                                 f"on the `inner_optimizer`.")
        if kwargs:
            raise ValueError(f"LossScaleOptimizer does not support arguments: "
                             f"`{'`, `'.join(kwargs)}`.")
        if not isinstance(inner_optimizer, Optimizer):
            raise TypeError(f"LossScaleOptimizer: inner_optimizer must be an Optimizer, received "
                            f"{type(inner_optimizer).__name__}")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.initial_scale = _check_number(self, "initial_scale", initial_scale, 0, lo_open=True)
        if isinstance(dynamic_growth_steps, bool) or not isinstance(dynamic_growth_steps, (int, np.integer)) \
                or dynamic_growth_steps < 1:
            raise ValueError(f"LossScaleOptimizer: dynamic_growth_steps must be an integer >= 1, "
                             f"received {dynamic_growth_steps!r}")
        self.dynamic_growth_steps = int(dynamic_growth_steps)
        self.inner_optimizer.loss_scale_factor = None
        self._scale = np.array(self.initial_scale, np.float32)
        self._counter = np.array(0, np.int64)

    @property
    def loss_scale_factor(self):
        """The current dynamic scale (``fit`` multiplies the loss by it)."""
        return float(self._scale) if "_scale" in self.__dict__ else None

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        if value is not None:
            raise ValueError("LossScaleOptimizer does not support `loss_scale_factor`; its scale "
                             "is dynamic")

    @property
    def dynamic_scale(self):
        return self._keras_var("dynamic_scale", self._scale)

    @property
    def step_counter(self):
        return self._keras_var("step_counter", self._counter)

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if "inner_optimizer" in self.__dict__:
            self.inner_optimizer.learning_rate = value

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @iterations.setter
    def iterations(self, value):
        self.inner_optimizer.iterations = value

    def scale_loss(self, loss):
        return loss * float(self._scale)

    def build(self, var_list):
        if self.built:
            return
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        own = [self._keras_var("iteration", np.asarray(self._iterations, np.int64)),
               self._keras_var("learning_rate", np.asarray(0.0, np.float32)),
               self.step_counter, self.dynamic_scale]
        return own + self.inner_optimizer.variables

    def _after_finite(self):
        if self._counter == self.dynamic_growth_steps - 1:
            self._counter[...] = 0
            self._scale *= np.float32(2.0)
        else:
            self._counter += 1

    def _after_nonfinite(self):
        self._counter[...] = 0
        self._scale *= np.float32(0.5)

    @distribution.reduces_gradients
    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if not self.built:
            if trainable_variables is None:
                raise ValueError("LossScaleOptimizer.apply: pass the trainable variables on the "
                                 "first call, or build the optimizer first")
            self.build(list(trainable_variables))
        arrays = [None if g is None else np.asarray(_np(g)) for g in grads]
        if all(bool(np.all(np.isfinite(a))) for a in arrays if a is not None):
            s = float(self._scale)
            self.inner_optimizer.apply([None if a is None else a / np.asarray(s, a.dtype) for a in arrays],
                                       trainable_variables)
            self._after_finite()
        else:
            self._after_nonfinite()

    def update_flat(self, params, grads, segments=None, variables=None):
        finite = np.all(np.isfinite(grads)) if type(grads) is np.ndarray else \
            bool(_xp(grads).all(_xp(grads).isfinite(grads)))
        if finite:
            grads /= grads.dtype.type(self._scale)
            self.inner_optimizer.update_flat(params, grads, segments, variables=variables)
            self._after_finite()
        else:
            self._after_nonfinite()

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        if not self.built:
            raise ValueError("To call `stateless_apply`, LossScaleOptimizer must be built (i.e. its "
                             "variables must have been created). You can build it via "
                             "`optimizer.build(trainable_variables)`.")
        optimizer_variables = list(optimizer_variables)
        if len(optimizer_variables) != len(self.variables):
            raise ValueError(f"LossScaleOptimizer.stateless_apply: `optimizer_variables` must "
                             f"correspond 1:1 to its variables; received {len(optimizer_variables)}, "
                             f"expected {len(self.variables)}")
        saved = (self._counter.copy(), self._scale.copy())
        try:
            self._counter[...] = np.asarray(_np(optimizer_variables[2]))
            self._scale[...] = np.asarray(_np(optimizer_variables[3]))
            arrays = [None if g is None else np.asarray(_np(g)) for g in grads]
            if all(bool(np.all(np.isfinite(a))) for a in arrays if a is not None):
                s = float(self._scale)
                new_t, new_inner = self.inner_optimizer.stateless_apply(
                    optimizer_variables[4:], [None if a is None else a / np.asarray(s, a.dtype)
                                              for a in arrays], trainable_variables)
                self._after_finite()
            else:
                new_t = [np.array(_np(t), copy=True) for t in trainable_variables]
                new_inner = [np.array(_np(v), copy=True) for v in optimizer_variables[4:]]
                self._after_nonfinite()
            own = [np.array(_np(optimizer_variables[0]), copy=True),
                   np.array(_np(optimizer_variables[1]), copy=True),
                   self._counter.copy(), self._scale.copy()]
        finally:
            self._counter[...], self._scale[...] = saved
        return new_t, own + new_inner

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def _flat_state_names(self):
        return self.inner_optimizer._flat_state_names()

    def load_flat_state(self, arrays, size, dtype=None):
        return self.inner_optimizer.load_flat_state(arrays, size, dtype)

    def get_config(self):
        return {"name": self.name, "inner_optimizer": serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        inner = get(config.pop("inner_optimizer"))
        return cls(inner, **config)


class OptimizerMap:
    """Variable path → optimizer, as Keras 3: an exact key first, else the one key that
    ``re.fullmatch``-es the path (two: ValueError), else ``default_optimizer``."""

    def __init__(self, default_optimizer, optimizer_map=None):
        if not isinstance(default_optimizer, Optimizer):
            raise TypeError(f"default_optimizer must be a Keras Optimizer instance. Received: "
                            f"{default_optimizer!r}")
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(f"optimizer_map must be a dictionary. Received: {optimizer_map!r}")
        self._default_optimizer = default_optimizer
        self._optimizer_map = {}
        for k, o in (optimizer_map or {}).items():
            self[k] = o

    @property
    def default_optimizer(self):
        return self._default_optimizer

    def __getitem__(self, key):
        import re
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        hits = [p for p in self._optimizer_map if re.fullmatch(p, key)]
        if len(hits) > 1:
            raise ValueError(f"Multiple optimizers assigned to variable {key}.")
        return self._optimizer_map[hits[0]] if hits else self._default_optimizer

    def __setitem__(self, key, optimizer):
        if key in self._optimizer_map:
            raise ValueError(f"'{key}' already exists in the OptimizerMap with value "
                             f"{self._optimizer_map[key]}. Please make sure to not use "
                             f"duplicated keys.")
        if not isinstance(key, str):
            raise ValueError(f"key must be a string. Received: {key!r}")
        if not isinstance(optimizer, Optimizer):
            raise ValueError(f"optimizer must be a Keras Optimizer instance. Received: {optimizer!r}")
        if isinstance(optimizer, (LossScaleOptimizer, MultiOptimizer)):
            raise ValueError(f"optimizer cannot be {type(optimizer).__name__}.")
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key):
        del self._optimizer_map[key]

    def __len__(self):
        return len(self._optimizer_map)

    def __iter__(self):
        return iter(self._optimizer_map)

    def __contains__(self, key):
        return key in self._optimizer_map

    def keys(self):
        return self._optimizer_map.keys()

    def values(self):
        return self._optimizer_map.values()

    def items(self):
        return self._optimizer_map.items()

    def __call__(self, variable):
        return self[getattr(variable, "path", getattr(variable, "name", ""))]

    def get_config(self):
        return {"default_optimizer": serialize(self._default_optimizer),
                "optimizer_map": {k: serialize(o) for k, o in self._optimizer_map.items()}}

    @classmethod
    def from_config(cls, config):
        return cls(get(config["default_optimizer"]),
                   {k: get(o) for k, o in (config.get("optimizer_map") or {}).items()})


class MultiOptimizer(Optimizer):
    """Each variable updated by its own optimizer (an OptimizerMap, or a callable
    ``variable → optimizer``), as Keras 3; ``iterations`` counts the calls."""

    def __init__(self, optimizer_map, loss_scale_factor=None, name=None):
        super().__init__(learning_rate=0.0, loss_scale_factor=loss_scale_factor, name=name)
        if not callable(optimizer_map):
            raise TypeError(f"MultiOptimizer: optimizer_map must be an OptimizerMap or a callable "
                            f"returning an optimizer for a variable, received {optimizer_map!r}")
        self._optimizer_map = optimizer_map
        self._inner = []
        for opt in list(getattr(optimizer_map, "values", lambda: [])()) + \
                [getattr(optimizer_map, "default_optimizer", None)]:
            if opt is not None and all(opt is not o for o in self._inner):
                opt.loss_scale_factor = loss_scale_factor
                self._inner.append(opt)
        self._var_opt = {}

    @property
    def optimizers(self):
        return self._inner

    @property
    def learning_rate(self):
        raise AttributeError("Learning rate cannot be accessed on a MultiOptimizer. Access the "
                             "learning rate on the individual sub-optimizers instead.")

    @learning_rate.setter
    def learning_rate(self, value):
        raise AttributeError("Learning rate cannot be set on a MultiOptimizer. Set the learning "
                             "rate on the individual sub-optimizers instead.")

    def build(self, var_list):
        if self.built:
            return
        var_list = list(var_list)
        groups = {}
        for v in var_list:
            opt = self._optimizer_map(v)
            if not isinstance(opt, Optimizer):
                raise ValueError(f"Optimizer for variable {getattr(v, 'path', v)!r} is not an "
                                 f"Optimizer instance.")
            if isinstance(opt, (LossScaleOptimizer, MultiOptimizer)):
                raise ValueError(f"{type(opt).__name__} cannot be used inside an MultiOptimizer.")
            if all(opt is not o for o in self._inner):
                opt.loss_scale_factor = self.loss_scale_factor
                self._inner.append(opt)
            idx = next(i for i, o in enumerate(self._inner) if o is opt)
            self._var_opt[id(v)] = idx
            groups.setdefault(idx, []).append(v)
        for idx, vs in groups.items():
            self._inner[idx].build(vs)
        self._trainable_variables = var_list
        self._tv_index = {id(v): i for i, v in enumerate(var_list)}
        self.built = True

    @property
    def variables(self):
        out = [self._keras_var("iteration", np.asarray(self._iterations, np.int64)),
               self._keras_var("learning_rate", np.asarray(0.0, np.float32))]
        for o in self._inner:
            out.extend(o.variables)
        return out

    @distribution.reduces_gradients
    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, the optimizer must "
                                 "already be built on a list of variables. Call "
                                 "`optimizer.build(trainable_variables)` first.")
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            self.build(trainable_variables)
        if len(grads) != len(self._tv_index):
            raise ValueError(f"Gradients must match trainable variables one-to-one. Received "
                             f"{len(grads)} gradients and {len(self._tv_index)} variables.")
        groups = [([], []) for _ in self._inner]
        for g, v in zip(grads, trainable_variables):
            if id(v) not in self._var_opt:
                raise ValueError(f"MultiOptimizer.apply: unknown variable {getattr(v, 'path', v)!r}")
            gs, vs = groups[self._var_opt[id(v)]]
            gs.append(g)
            vs.append(v)
        for opt, (gs, vs) in zip(self._inner, groups):
            if gs:
                opt.apply(gs, vs)
        self._iterations += 1

    def update_flat(self, params, grads, segments=None, variables=None):
        if variables is None and self.built and _flat_views(self._trainable_variables) is not None:
            variables = self._trainable_variables
        if variables is None:
            raise ValueError("MultiOptimizer: it maps each variable to an optimizer by its path; "
                             "build it on the model's weights first "
                             "(optimizer.build(model.trainable_variables))")
        self.apply([v.grad if v.grad is not None else grads[s].reshape(v.shape)
                    for v, s in zip(variables, segments or _flat_views(variables)[1])], variables)

    def finalize_variable_values(self, var_list):
        groups = {}
        for v in var_list:
            if id(v) in self._var_opt:
                groups.setdefault(self._var_opt[id(v)], []).append(v)
        for idx, vs in groups.items():
            self._inner[idx].finalize_variable_values(vs)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError("MultiOptimizer.stateless_apply is not supported in axone; use "
                                  "each sub-optimizer's stateless_apply")

    def _flat_state_names(self):
        return ()

    def get_config(self):
        m = self._optimizer_map
        if not isinstance(m, OptimizerMap):
            raise ValueError("MultiOptimizer.get_config: a callable optimizer_map cannot be "
                             "serialized; use an OptimizerMap")
        return {"optimizer_map": {"class_name": "OptimizerMap", "config": m.get_config()},
                "loss_scale_factor": self.loss_scale_factor, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        m = config.pop("optimizer_map")
        if isinstance(m, dict):
            m = OptimizerMap.from_config(m.get("config", m))
        return cls(m, **config)


_ALIASES = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adamw": AdamW, "adagrad": Adagrad,
            "adadelta": Adadelta, "adamax": Adamax, "nadam": Nadam, "adafactor": Adafactor,
            "ftrl": Ftrl, "lamb": Lamb, "lion": Lion, "muon": Muon,
            "schedulefreeadamw": ScheduleFreeAdamW, "schedule_free_adamw": ScheduleFreeAdamW}
_CLASSES = {c.__name__: c for c in (SGD, Adam, RMSprop, AdamW, Adagrad, Adadelta, Adamax, Nadam,
                                     Adafactor, Ftrl, Lamb, Lion, Muon, ScheduleFreeAdamW,
                                     LossScaleOptimizer, MultiOptimizer)}


def serialize(opt):
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config, custom_objects=None):
    """An optimizer from ``serialize``'s dict ``{"class_name", "config"}`` (custom classes by
    name in ``custom_objects``)."""
    if not isinstance(config, dict):
        raise TypeError(f"optimizers.deserialize: expected a dict {{'class_name', 'config'}}, "
                        f"received {type(config).__name__}")
    cls = (custom_objects or {}).get(config.get("class_name"))
    if cls is not None:
        return cls.from_config(dict(config.get("config", {})))
    return get(config)


def get(identifier):
    """An optimizer from a name (``"adam"``), a config dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown optimizer {identifier!r}; valid names: {sorted(_ALIASES)}")
        return cls()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name")) or _ALIASES.get(str(identifier.get("class_name")).lower())
        if cls is None:
            raise ValueError(f"Unknown optimizer {identifier.get('class_name')!r}; valid names: {sorted(_CLASSES)}")
        return cls.from_config(dict(identifier.get("config", {})))
    raise TypeError(f"Could not interpret optimizer identifier: {identifier!r}; expected a name "
                    f"such as 'adam' or an Optimizer instance")
