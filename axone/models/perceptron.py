"""Rosenblatt's perceptron, trained sample by sample with the Widrow–Hoff rule (course 004, ch. 1).

One neuron with a Heaviside output::

    Y   = Σᵢ wᵢ xᵢ + b                 (weighted sum)
    out = f(Y) = 1 if Y ≥ 0 else 0     (Heaviside, the course's convention: Y = 0 gives 1)

and, after each presentation of one observation (x, d), the delta rule::

    wᵢ ← wᵢ + η (d − out) xᵢ
    b  ← b  + η (d − out)              (the bias is the weight of a constant input 1)

Observations are presented in the order given; an *epoch* is one pass over them, and training
stops after the first epoch in which no presentation changed the weights (the course's first
stopping condition), or after ``max_epochs`` epochs (then ``converged`` is False and a warning
says so: the data are not linearly separable, e.g. XOR, or more epochs are needed).

Every presentation is recorded in :attr:`Perceptron.trace` (one dict per *iteration*) and
:meth:`Perceptron.trace_table` prints it as the course's table (iteration 0 holds the initial
weights).  On the course's OR example (η = 1, w = (1, −1), b = 0) the last update happens at
iteration 9 and training ends after iteration 16 with w = (1, 1), b = −1.

Note: the course's full table prints f(Y) = 0 at iteration 9 although Y = 0 there; its own rule
(f(Y) = 1 if Y ≥ 0) and the update it prints (b: 0 → −1) both mean f(Y) = 1, which is what is
computed here.
"""
import warnings

import numpy as np

from .. import backend
from ..callbacks import History
from ..io_utils import print_msg

__all__ = ["Perceptron"]


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Perceptron: {what} must be a number, received {type(value).__name__} "
                        f"{value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"Perceptron: {what} must be finite, received {value!r}")
    return value


def _to_array(x, what):
    if hasattr(x, "to_numpy"):                 # pandas
        x = x.to_numpy()
    if hasattr(x, "data") and not isinstance(x, (np.ndarray, list, tuple)):   # axone Tensor
        x = x.data
    try:
        a = np.asarray(x)
    except ValueError as e:
        raise ValueError(f"Perceptron: {what} is not a rectangular array: {e}") from None
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"Perceptron: {what} must hold numbers, received dtype {a.dtype}")
    return a


class Perceptron:
    """A single Heaviside neuron trained online by the perceptron (Widrow–Hoff) rule.

    Args:
        learning_rate: the step η > 0 of the rule (the course takes η in ]0, 1]; any positive
            number is accepted).
        name: a name shown in the trace table.

    Attributes (after ``fit``):
        trace: one dict per presentation: ``iteration`` (1, 2, …), ``epoch`` (1, 2, …),
            ``weights_before``, ``bias_before``, ``x``, ``d``, ``y`` (the weighted sum Y),
            ``out`` (f(Y)), ``weights``, ``bias`` (after the update) and ``updated``.
        converged: True when an epoch passed without any change.
        epochs: the number of epochs run.
        iterations: the number of presentations (the last iteration number).
        last_update: the iteration of the last change of the weights (0 when none).
        history: the ``History`` returned by the last ``fit``.

    ``get_weights()`` returns ``[kernel, bias]`` as a Keras ``Dense(1)`` layer does: the kernel of
    shape (n_inputs, 1) and the bias of shape (1,).
    """

    def __init__(self, learning_rate=1.0, name="perceptron"):
        lr = _number(learning_rate, "learning_rate")
        if lr <= 0:
            raise ValueError(f"Perceptron: learning_rate must be > 0, received {learning_rate!r}")
        self.learning_rate = lr
        self.name = str(name)
        self._w = None          # (n_inputs,) float64
        self._b = 0.0
        self._initial = None    # (weights, bias) the last fit started from
        self.trace = []
        self.converged = False
        self.epochs = 0
        self.iterations = 0
        self.last_update = 0
        self.history = None

    # ----------------------------------------------------------------- weights
    @property
    def built(self):
        return self._w is not None

    def get_weights(self):
        """``[kernel (n_inputs, 1), bias (1,)]`` as float64 copies; ``[]`` before ``fit``."""
        if self._w is None:
            return []
        return [self._w.reshape(-1, 1).copy(), np.array([self._b], dtype=np.float64)]

    def set_weights(self, weights):
        """Set ``[kernel, bias]``: a kernel of shape (n_inputs, 1) (or (n_inputs,)) and a bias of
        shape (1,) (or a scalar).  On a fitted perceptron n_inputs must not change."""
        if not isinstance(weights, (list, tuple)) or len(weights) != 2:
            raise ValueError(f"Perceptron.set_weights: expected a list [kernel, bias], received "
                             f"{type(weights).__name__} of length "
                             f"{len(weights) if hasattr(weights, '__len__') else '?'}")
        k = _to_array(weights[0], "the kernel").astype(np.float64)
        b = _to_array(weights[1], "the bias").astype(np.float64)
        if k.ndim == 2 and k.shape[1] == 1:
            k = k[:, 0]
        if k.ndim != 1 or k.size == 0:
            raise ValueError(f"Perceptron.set_weights: expected a kernel of shape (n_inputs, 1), "
                             f"received shape {k.shape}")
        if b.size != 1 or b.ndim > 1:
            raise ValueError(f"Perceptron.set_weights: expected a bias of shape (1,), received "
                             f"shape {b.shape}")
        if self._w is not None and k.shape[0] != self._w.shape[0]:
            raise ValueError(f"Perceptron.set_weights: the perceptron has {self._w.shape[0]} "
                             f"inputs, received a kernel of shape {k.shape}")
        if not (np.all(np.isfinite(k)) and np.all(np.isfinite(b))):
            raise ValueError("Perceptron.set_weights: the weights must be finite")
        self._w = k.copy()
        self._b = float(b.reshape(()))

    # ------------------------------------------------------------------ checks
    def _check_x(self, x, what="x"):
        x = _to_array(x, what)
        if x.ndim != 2:
            raise ValueError(f"Perceptron: {what} must have rank 2 (n_samples, n_inputs), "
                             f"received shape {x.shape}")
        if x.shape[1] == 0:
            raise ValueError(f"Perceptron: {what} has no input column, received shape {x.shape}")
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"Perceptron: {what} holds NaN or infinite values")
        if self._w is not None and x.shape[1] != self._w.shape[0] and what == "x":
            raise ValueError(f"Perceptron: the perceptron has {self._w.shape[0]} inputs, {what} "
                             f"has shape {x.shape}")
        return x

    @staticmethod
    def _check_d(d, n):
        d = _to_array(d, "d")
        if d.ndim == 2 and d.shape[1] == 1:
            d = d[:, 0]
        if d.ndim != 1:
            raise ValueError(f"Perceptron: d (the desired classes) must have shape (n_samples,) "
                             f"or (n_samples, 1), received shape {d.shape}")
        if d.shape[0] != n:
            raise ValueError(f"Perceptron: x has {n} samples but d has {d.shape[0]}")
        bad = ~np.isin(d, (0, 1))
        if np.any(bad):
            raise ValueError(f"Perceptron: d must hold binary classes 0 or 1, received "
                             f"{sorted(set(np.asarray(d[bad]).tolist()))[:5]}")
        return d.astype(np.float64)

    # --------------------------------------------------------------- training
    def fit(self, x, d, initial_weights=None, initial_bias=None, max_epochs=100, verbose=0):
        """Train on (x, d), presenting the rows of ``x`` in order, epoch after epoch.

        Args:
            x: array (n_samples, n_inputs).
            d: desired classes, 0 or 1, shape (n_samples,) or (n_samples, 1).
            initial_weights: starting w, length n_inputs (shape (n_inputs,) or (n_inputs, 1)).
                Default: the current weights of a fitted perceptron (training continues, as
                Keras's ``fit`` does); for a fresh one, a draw from U(−0.05, 0.05) with the
                seeded backend generator (the course initialises at random).
            initial_bias: starting b; default the current bias, or 0.0 for a fresh perceptron.
            max_epochs: stop after this many epochs even without convergence (warning).
            verbose: 1 prints one line per epoch (changes made, weights after it).

        Returns:
            A ``History``: ``history.history["errors"]`` holds, per epoch, the number of
            presentations that changed the weights (misclassified at that moment);
            ``history.epoch`` the epoch indices (0-based, as Keras).  The full record is in
            ``self.trace``.
        """
        x = self._check_x(x)
        n, n_in = x.shape
        d = self._check_d(d, n)
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, (int, np.integer)) \
                or max_epochs < 1:
            raise ValueError(f"Perceptron.fit: max_epochs must be a positive integer, received "
                             f"{max_epochs!r}")
        if initial_weights is not None:
            w = _to_array(initial_weights, "initial_weights").astype(np.float64)
            if w.ndim == 2 and w.shape[1] == 1:
                w = w[:, 0]
            if w.ndim != 1 or w.shape[0] != n_in:
                raise ValueError(f"Perceptron.fit: initial_weights must have length {n_in} (one "
                                 f"weight per input column of x), received shape {w.shape}")
            if not np.all(np.isfinite(w)):
                raise ValueError("Perceptron.fit: initial_weights must be finite")
            w = w.copy()
        elif self._w is not None and self._w.shape[0] == n_in:
            w = self._w.copy()
        else:
            w = backend.rng().uniform(-0.05, 0.05, size=n_in).astype(np.float64)
        if initial_bias is not None:
            b = _number(initial_bias, "initial_bias")
        elif initial_weights is None and self._w is not None and self._w.shape[0] == n_in:
            b = self._b
        else:
            b = 0.0
        eta = self.learning_rate
        self._initial = (w.copy(), b)
        self.trace = []
        self.converged = False
        self.last_update = 0
        history = History()
        history.model = self
        it = 0
        epoch = 0
        for epoch in range(1, int(max_epochs) + 1):
            changes = 0
            for i in range(n):
                it += 1
                xi = x[i]
                y = float(np.dot(w, xi) + b)
                out = 1.0 if y >= 0 else 0.0
                err = d[i] - out
                w_before, b_before = w.copy(), b
                if err != 0:
                    w = w + eta * err * xi
                    b = b + eta * err
                updated = bool(np.any(w != w_before) or b != b_before)
                if updated:
                    changes += 1
                    self.last_update = it
                self.trace.append({
                    "iteration": it, "epoch": epoch,
                    "weights_before": w_before, "bias_before": b_before,
                    "x": xi.copy(), "d": d[i], "y": y, "out": out,
                    "weights": w.copy(), "bias": b, "updated": updated})
            history.epoch.append(epoch - 1)
            history.history.setdefault("errors", []).append(changes)
            if verbose:
                print_msg(f"Epoch {epoch}: {changes} change(s), weights "
                          f"{np.round(w, 6).tolist()}, bias {b:.6g}")
            if changes == 0:
                self.converged = True
                break
        self._w, self._b = w, float(b)
        self.epochs = epoch
        self.iterations = it
        self.history = history
        if not self.converged:
            warnings.warn(f"Perceptron: no convergence after max_epochs={max_epochs} epochs "
                          f"({it} iterations): the weights still changed in the last epoch. The "
                          f"classes may not be linearly separable (as XOR), or more epochs are "
                          f"needed.", RuntimeWarning, stacklevel=2)
        return history

    # -------------------------------------------------------------- inference
    def _require_built(self, what):
        if self._w is None:
            raise ValueError(f"Perceptron.{what}: the perceptron has no weights yet; call fit() "
                             f"or set_weights() first")

    def decision_function(self, x):
        """The weighted sums Y = x·w + b, shape (n_samples, 1)."""
        self._require_built("decision_function")
        x = self._check_x(x)
        return (x @ self._w + self._b).reshape(-1, 1)

    def predict(self, x, verbose=0):
        """Heaviside outputs f(Y) ∈ {0, 1}, shape (n_samples, 1), in ``floatx`` as Keras's
        ``predict`` returns them."""
        self._require_built("predict")
        return (self.decision_function(x) >= 0).astype(backend.floatx())

    def evaluate(self, x, d, verbose=0):
        """The accuracy of ``predict(x)`` against d (a fraction in [0, 1])."""
        self._require_built("evaluate")
        x = self._check_x(x)
        d = self._check_d(d, x.shape[0])
        return float(np.mean(self.predict(x)[:, 0] == d))

    # ------------------------------------------------------------------ trace
    def trace_table(self, precision=4):
        """The trace as the course prints it: one row per iteration, the weights and bias before
        it, the observation x and its class d, Y, f(Y), and the weights and bias after it.
        Row 0 holds the initial weights."""
        if self._initial is None:
            raise ValueError("Perceptron.trace_table: nothing to show; call fit() first")
        n_in = self._initial[0].shape[0]

        def fmt(v):
            v = float(v)
            if v == int(v) and abs(v) < 1e15:
                return str(int(v))
            return f"{v:.{precision}g}"

        ws = [f"w{i + 1}" for i in range(n_in)]
        xs = [f"x{i + 1}" for i in range(n_in)]
        header = ["it"] + ws + ["b"] + xs + ["d", "Y", "f(Y)"] + ws + ["b"]
        rows = [["0"] + ["-"] * (n_in + 1 + n_in + 3) + [fmt(v) for v in self._initial[0]]
                + [fmt(self._initial[1])]]
        for r in self.trace:
            rows.append([str(r["iteration"])] + [fmt(v) for v in r["weights_before"]]
                        + [fmt(r["bias_before"])] + [fmt(v) for v in r["x"]]
                        + [fmt(r["d"]), fmt(r["y"]), fmt(r["out"])]
                        + [fmt(v) for v in r["weights"]] + [fmt(r["bias"])])
        widths = [max(len(h), *(len(row[j]) for row in rows)) for j, h in enumerate(header)]
        line = lambda cells: "  ".join(c.rjust(wd) for c, wd in zip(cells, widths)).rstrip()
        out = [line(header), "  ".join("-" * wd for wd in widths)]
        epoch_ends = {}
        for r in self.trace:
            epoch_ends[r["epoch"]] = r["iteration"]
        ends = set(epoch_ends.values())
        for k, row in enumerate(rows):
            out.append(line(row))
            if k in ends and k != self.iterations:
                out.append("  ".join("·" * wd for wd in widths))
        status = (f"converged: no change during epoch {self.epochs} (last update at iteration "
                  f"{self.last_update})" if self.converged else
                  f"not converged after {self.epochs} epochs")
        out.append(f"{self.name}: η = {self.learning_rate:g}, {self.iterations} iterations, "
                   f"{status}")
        return "\n".join(out)

    def print_trace(self, precision=4):
        """Print :meth:`trace_table`."""
        print(self.trace_table(precision))

    def __repr__(self):
        n_in = None if self._w is None else self._w.shape[0]
        return f"<Perceptron name={self.name}, inputs={n_in}, learning_rate={self.learning_rate:g}>"
