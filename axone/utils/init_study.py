"""Weight initialization study of course 001 §10: activation and gradient statistics, layer by
layer, of a deep multilayer perceptron (10 layers of 500 units by default) under several
initializers.

A batch of inputs x ~ N(0, 1) runs forward through ``depth`` dense layers of ``units`` units
(biases zero); a random direction g ~ N(0, 1) is then backpropagated from the last layer's output
(the loss L = Σ g ⊙ a⁽ᴸ⁾, so ∂L/∂a⁽ᴸ⁾ = g), with axone's engine::

    forward                         backward
    z⁽ˡ⁾ = a⁽ˡ⁻¹⁾ W⁽ˡ⁾ + b⁽ˡ⁾        ∂L/∂z⁽ˡ⁾ = ∂L/∂a⁽ˡ⁾ ⊙ f'(z⁽ˡ⁾)
    a⁽ˡ⁾ = f(z⁽ˡ⁾)                  ∂L/∂a⁽ˡ⁻¹⁾ = ∂L/∂z⁽ˡ⁾ W⁽ˡ⁾ᵀ,   ∂L/∂W⁽ˡ⁾ = a⁽ˡ⁻¹⁾ᵀ ∂L/∂z⁽ˡ⁾

Per layer it records the mean and standard deviation of a⁽ˡ⁾, the fraction of saturated
activations (|a| ≥ ``saturation`` for tanh / softsign, a within 1 − ``saturation`` of 0 or 1
for sigmoid / hard_sigmoid; None for unbounded activations), the fraction of dead units (units
whose output is exactly 0 on every sample, as ReLU units that never fire), the mean of f'(z),
and the standard deviations of ∂L/∂a⁽ˡ⁾ and ∂L/∂W⁽ˡ⁾.

What the course shows (and the tests check): with tanh and a small N(0, σ) the activations
shrink toward 0 layer after layer; with a large σ they saturate at ±1 and f'(z) vanishes;
Glorot's scaling (Var W = 1/m for a square layer) keeps their spread roughly stable; with ReLU
the He scaling (Var W = 2/m) does.
"""
import numpy as np

from .. import activations, initializers as initializers_mod
from ..autograd.tensor import Tensor
from .. import ops

__all__ = ["init_study", "InitStudy"]

_STATS = ("act_mean", "act_std", "saturated", "dead", "mean_derivative", "grad_std",
          "weight_grad_std")

# bounded activations: (lower bound, upper bound) of the output
_BOUNDS = {"tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "sigmoid": (0.0, 1.0),
           "hard_sigmoid": (0.0, 1.0)}


def _label(spec):
    if isinstance(spec, str):
        return spec
    cfg = {}
    try:
        cfg = spec.get_config()
    except AttributeError:
        pass
    shown = {k: v for k, v in cfg.items() if k in ("stddev", "minval", "maxval", "scale", "value",
                                                   "mode", "distribution") and v is not None}
    args = ", ".join(f"{k}={v}" for k, v in shown.items())
    return f"{type(spec).__name__}({args})"


def _seeded(init, seed):
    """A copy of the initializer with its own seed (an unseeded Keras initializer draws from the
    global generator, which the study leaves alone)."""
    try:
        cfg = init.get_config()
    except AttributeError:
        return init
    if "seed" not in cfg:
        return init
    cfg = dict(cfg, seed=int(seed))
    try:
        return type(init).from_config(cfg)
    except AttributeError:
        return type(init)(**cfg)


class InitStudy:
    """The result of :func:`init_study`.

    Attributes:
        activation, depth, units, n_samples: the network studied.
        results: {initializer label: list of ``depth`` dicts, one per layer, with the keys
            ``layer`` (1-based), ``act_mean``, ``act_std``, ``saturated``, ``dead``,
            ``mean_derivative``, ``grad_std``, ``weight_grad_std``}.
        figure: the matplotlib Figure when ``plot=True`` was given, else None.
    """

    def __init__(self, activation, depth, units, n_samples, results):
        self.activation, self.depth, self.units, self.n_samples = activation, depth, units, n_samples
        self.results = results
        self.figure = None

    @property
    def labels(self):
        return list(self.results)

    def stat(self, label, key):
        """The statistic ``key`` of initializer ``label`` over the layers, as an array (NaN where
        it does not apply)."""
        if label not in self.results:
            raise KeyError(f"init_study: no initializer {label!r}; studied: {self.labels}")
        if key not in _STATS:
            raise KeyError(f"init_study: no statistic {key!r}; statistics: {list(_STATS)}")
        return np.array([np.nan if r[key] is None else r[key] for r in self.results[label]],
                        dtype=np.float64)

    def table(self, precision=4):
        """One block per initializer: one row per layer, one column per statistic."""
        cols = ["layer"] + list(_STATS)
        out = [f"Initialization study: {self.depth} layers × {self.units} units, activation "
               f"{self.activation}, {self.n_samples} samples"]
        for label, rows in self.results.items():
            cells = [[str(r["layer"])] + ["-" if r[k] is None else f"{r[k]:.{precision}g}"
                                          for k in _STATS] for r in rows]
            widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(cols)]
            out.append("")
            out.append(f"{label}:")
            out.append("  " + "  ".join(c.rjust(w) for c, w in zip(cols, widths)))
            for row in cells:
                out.append("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)))
        return "\n".join(out)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (f"<InitStudy {self.depth}×{self.units} {self.activation}: "
                f"{', '.join(self.labels)}>")

    def plot(self, figsize=None):
        """Three panels against the layer index, one line per initializer: the spread of the
        activations (std), the spread of the backpropagated gradients ∂L/∂a (std, log scale),
        and the saturated (bounded activations) or dead (others) fraction.  Returns the Figure."""
        from .plotting import _plt
        plt = _plt()
        fig, axes = plt.subplots(1, 3, figsize=figsize or (15, 4))
        layers = np.arange(1, self.depth + 1)
        bounded = self.activation in _BOUNDS
        frac_key = "saturated" if bounded else "dead"
        for label in self.labels:
            axes[0].plot(layers, self.stat(label, "act_std"), marker="o", label=label)
            g = self.stat(label, "grad_std")
            axes[1].plot(layers, np.where(g > 0, g, np.nan), marker="o", label=label)
            axes[2].plot(layers, self.stat(label, frac_key), marker="o", label=label)
        axes[0].set_title(f"std of the activations ({self.activation})")
        axes[1].set_title("std of the gradients dL/da")
        axes[1].set_yscale("log")
        axes[2].set_title(f"fraction {frac_key}")
        axes[2].set_ylim(-0.05, 1.05)
        for a in axes:
            a.set_xlabel("layer")
            a.grid(True, alpha=0.3)
            a.legend(fontsize=8)
        fig.tight_layout()
        self.figure = fig
        return fig


def init_study(initializers=None, activation="tanh", depth=10, units=500, n_samples=1000,
               seed=0, saturation=0.99, plot=False, dtype="float32"):
    """Activation and gradient statistics per layer of a deep MLP, for each initializer.

    Args:
        initializers: an initializer (name, config dict or object), a list of them, or a dict
            {label: initializer}.  Default: ``RandomNormal(stddev=0.01)`` (small),
            ``RandomNormal(stddev=1.0)`` (large), ``"glorot_normal"`` and ``"he_normal"``.
        activation: the hidden activation (any name of ``axone.activations``).
        depth: the number of layers (10 in the course).
        units: units per layer, also the input size (500 in the course).
        n_samples: the batch of inputs x ~ N(0, 1).
        seed: seeds the inputs, the backpropagated direction and every layer's initializer
            (layer l uses seed + l); the global generator is not touched.  None: unseeded.
        saturation: the threshold of the saturated fraction (see the module docstring).
        plot: also draw the study (matplotlib) into ``result.figure``.
        dtype: the float type of the computation.

    Returns:
        An :class:`InitStudy`; ``print(result)`` shows the tables.
    """
    for name, v in (("depth", depth), ("units", units), ("n_samples", n_samples)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"init_study: {name} must be a positive integer, received {v!r}")
    if isinstance(saturation, bool) or not isinstance(saturation, (int, float)) \
            or not 0 < saturation < 1:
        raise ValueError(f"init_study: saturation must be a number in (0, 1), received "
                         f"{saturation!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise ValueError(f"init_study: seed must be a non-negative integer or None, received "
                         f"{seed!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"init_study: dtype must be 'float32' or 'float64', received {dtype!r}")
    act_name = activation if isinstance(activation, str) else activations.serialize(activation)
    try:
        act = activations.get(activation)
    except (ValueError, TypeError) as e:
        raise ValueError(f"init_study: unknown activation {activation!r}: {e}") from None
    if initializers is None:
        initializers = {"RandomNormal(stddev=0.01)": initializers_mod.RandomNormal(stddev=0.01),
                        "RandomNormal(stddev=1.0)": initializers_mod.RandomNormal(stddev=1.0),
                        "glorot_normal": "glorot_normal", "he_normal": "he_normal"}
    if isinstance(initializers, dict) and not ("class_name" in initializers
                                               and "config" in initializers):
        items = list(initializers.items())
    elif isinstance(initializers, (list, tuple)):
        items = [(_label(s), s) for s in initializers]
    else:
        items = [(_label(initializers), initializers)]
    if not items:
        raise ValueError("init_study: no initializer given")
    resolved = []
    for label, spec in items:
        try:
            init = initializers_mod.get(spec)
        except (ValueError, TypeError) as e:
            raise ValueError(f"init_study: unknown initializer {spec!r}: {e}") from None
        if init is None:
            raise ValueError(f"init_study: initializer {label!r} resolves to None")
        resolved.append((str(label), init))

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((int(n_samples), int(units))).astype(dtype)
    g = rng.standard_normal((int(n_samples), int(units))).astype(dtype)
    bounds = _BOUNDS.get(act_name)
    results = {}
    for k, (label, init) in enumerate(resolved):
        h = Tensor(x)
        record = []
        for l in range(int(depth)):
            layer_init = init if seed is None else _seeded(init, seed * 100003 + 1000 * k + l + 1)
            W = Tensor(np.asarray(layer_init((int(units), int(units)), dtype=dtype), dtype=dtype),
                       requires_grad=True)
            b = Tensor(np.zeros(int(units), dtype=dtype), requires_grad=True)
            z = ops.dense(h, W, b)
            z.retain_grad()
            a = act(z)
            if a is z:
                a = z * 1.0
            a.retain_grad()
            record.append((z, a, W))
            h = a
        L = ops.sum(h * Tensor(g))
        L.backward()
        rows = []
        for l, (z, a, W) in enumerate(record, 1):
            av = a.data.astype(np.float64)
            dz = np.asarray(z.grad, dtype=np.float64)
            da = np.asarray(a.grad, dtype=np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                deriv = np.where(da != 0, dz / da, np.nan)
            if bounds is None:
                sat = None
            else:
                lo, hi = bounds
                s = float(saturation)
                span = hi - lo
                sat = float(np.mean((av <= lo + (1 - s) * span) | (av >= hi - (1 - s) * span)))
            rows.append({
                "layer": l,
                "act_mean": float(av.mean()), "act_std": float(av.std()),
                "saturated": sat,
                "dead": float(np.mean(np.all(av == 0, axis=0))),
                "mean_derivative": float(np.nanmean(deriv)) if np.any(np.isfinite(deriv))
                else None,
                "grad_std": float(da.std()),
                "weight_grad_std": float(np.asarray(W.grad, dtype=np.float64).std()),
            })
        results[label] = rows
    study = InitStudy(act_name, int(depth), int(units), int(n_samples), results)
    if plot:
        study.plot()
    return study
