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
"""
import math

import numpy as np

from .. import _native
from ..autograd.tensor import Tensor
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


__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "AdamW", "Adagrad", "Adadelta", "Adamax", "Nadam",
           "schedules", "get", "serialize"]


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

    # ----------------------------------------------------------- schedule
    @property
    def iterations(self):
        """Updates applied so far: calls // ``gradient_accumulation_steps`` when accumulating
        (Keras 3), else the number of calls."""
        n = self.gradient_accumulation_steps
        return self._iterations // n if n else self._iterations

    @iterations.setter
    def iterations(self, value):
        n = self.gradient_accumulation_steps
        self._iterations = int(value) * n if n else int(value)

    @property
    def learning_rate(self):
        return self._current_lr()

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

    def _new_state(self, w):
        return {name: np.zeros_like(w) for name in self._state_names}

    def _full_state(self, w):
        """The rule's state for ``w`` plus the EMA ("average") and accumulation
        ("gradient_accumulator") arrays the options ask for, and a scratch array."""
        st = self._new_state(w)
        if self.use_ema:
            st["average"] = np.zeros_like(w)
        if self.gradient_accumulation_steps:
            st["gradient_accumulator"] = np.zeros_like(w)
        st["_tmp"] = np.empty_like(w)
        return st

    def update_flat(self, params, grads, segments=None):
        """One step over a model's flat parameter buffer ``params`` with gradient buffer ``grads``.

        ``segments`` (list of slices, one per variable) is needed only for per-variable clipnorm.
        """
        st = self._flat_state
        if st is None or st["_size"] != params.size:
            st = self._flat_state = self._full_state(params)
            st["_size"] = params.size
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
                    np.copyto(avg, w)
                else:
                    m = w.dtype.type(self.ema_momentum)
                    tmp = st["_tmp"]
                    np.multiply(w, w.dtype.type(1) - m, out=tmp)
                    avg *= m
                    avg += tmp
                if overwrite:
                    np.copyto(w, avg)
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
            np.copyto(w, avg)

    def _ema_pairs(self, var_list):
        """(weights, their moving averages) as array pairs for the variables of ``var_list``:
        each variable updated through ``apply_gradients``, and once the flat buffer of a model
        that ``fit`` updates."""
        flat, done, pairs = self._flat_state, set(), []
        for v in var_list:
            st = self._var_state.get(id(v))
            if st is not None and "average" in st:
                pairs.append((v.data, st["average"]))
                continue
            base = v.data.base
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

    def apply_gradients(self, grads_and_vars):
        """Apply gradients to variables (custom training loops): ``zip(grads, variables)``."""
        pairs = [(np.asarray(g.data if isinstance(g, Tensor) else g), v) for g, v in grads_and_vars]
        for g, v in pairs:
            if g.shape != v.shape:
                raise ValueError(f"{type(self).__name__}.apply_gradients: gradient of shape {g.shape} "
                                 f"for variable {getattr(v, 'path', '?')!r} of shape {v.shape}")
        grads = [np.array(g, dtype=v.dtype, copy=True) for g, v in pairs]
        triples = []
        for g, (_, v) in zip(grads, pairs):
            st = self._var_state.get(id(v))
            if st is None:
                st = self._var_state[id(v)] = self._full_state(v.data)
            triples.append((v.data, g, st))
        self._apply(triples, self._clip)
        self.apply_constraints([v for _, v in pairs])
        return self.iterations

    @staticmethod
    def apply_constraints(variables):
        """After an update, as Keras 3: ``w ← w.constraint(w)`` for each variable that has one."""
        from ..autograd.function import no_grad
        with no_grad():
            for v in variables:
                if getattr(v, "constraint", None) is not None:
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
        tmp = state["_tmp"]
        if not self.momentum:
            np.multiply(g, lr, out=tmp)
            w -= tmp
            return
        v = state["momentum"]
        v *= self.momentum
        np.multiply(g, lr, out=tmp)
        v -= tmp
        if self.nesterov:
            w -= tmp
            np.multiply(v, self.momentum, out=tmp)
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
        m, v, tmp = state["m"], state["v"], state["_tmp"]
        b1, b2 = self.beta_1, self.beta_2
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        np.subtract(g, m, out=tmp)
        tmp *= 1 - b1
        m += tmp
        np.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1 - b2
        v += tmp
        if self.amsgrad:
            vhat = state["vhat"]
            np.maximum(vhat, v, out=vhat)
            np.sqrt(vhat, out=tmp)
        else:
            np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
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
        s, tmp = state["velocity"], state["_tmp"]
        rho = self.rho
        s *= rho
        np.multiply(g, g, out=tmp)
        tmp *= 1 - rho
        s += tmp
        if self.centered:
            a = state["average_gradient"]
            a *= rho
            a += (1 - rho) * g
            np.multiply(a, a, out=tmp)
            np.subtract(s, tmp, out=tmp)
            tmp += self.epsilon
        else:
            np.add(s, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
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
        return {"accumulator": np.full_like(w, self.initial_accumulator_value)}

    def _update(self, w, g, state, lr, t):
        a, tmp = state["accumulator"], state["_tmp"]
        np.multiply(g, g, out=tmp)
        a += tmp
        np.add(a, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
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
        ag, ad, tmp = state["accumulated_grad"], state["accumulated_delta_var"], state["_tmp"]
        rho, eps = self.rho, self.epsilon
        ag *= rho
        ag += (1 - rho) * g * g
        delta = -np.sqrt(ad + eps) / np.sqrt(ag + eps) * g
        ad *= rho
        ad += (1 - rho) * delta * delta
        np.multiply(delta, lr, out=tmp)
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
        m, u, tmp = state["m"], state["u"], state["_tmp"]
        np.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        u *= self.beta_2
        np.maximum(u, np.abs(g), out=u)
        np.add(u, self.epsilon, out=tmp)
        np.divide(m, tmp, out=tmp)
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
        m, v = state["m"], state["v"]
        b1, b2 = self.beta_1, self.beta_2
        u_t = b1 * (1 - 0.5 * 0.96 ** t)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        prod_t = self._u_products(t) * u_t
        prod_t1 = prod_t * u_t1
        tmp = state["_tmp"]
        np.subtract(g, m, out=tmp)
        tmp *= 1 - b1
        m += tmp
        np.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1 - b2
        v += tmp
        # w ← w − η·m̂/(√v̂ + ε), with m̂ and v̂ formed in the scratch buffers
        np.multiply(v, 1.0 / (1 - b2 ** t), out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += self.epsilon
        m_hat = np.multiply(m, u_t1 / (1 - prod_t1))
        m_hat += g * ((1 - u_t) / (1 - prod_t))
        np.divide(m_hat, tmp, out=tmp)
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


_ALIASES = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adamw": AdamW, "adagrad": Adagrad,
            "adadelta": Adadelta, "adamax": Adamax, "nadam": Nadam}
_CLASSES = {c.__name__: c for c in (SGD, Adam, RMSprop, AdamW, Adagrad, Adadelta, Adamax, Nadam)}


def serialize(opt):
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


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
        return cls(**identifier.get("config", {}))
    raise TypeError(f"Could not interpret optimizer identifier: {identifier!r}; expected a name "
                    f"such as 'adam' or an Optimizer instance")
