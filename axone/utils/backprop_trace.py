"""Backpropagation written out for one observation, layer by layer (course 004's worked exercise).

For a chain of Dense layers ``z⁽ˡ⁾ = a⁽ˡ⁻¹⁾·W⁽ˡ⁾ + b⁽ˡ⁾``, ``a⁽ˡ⁾ = f⁽ˡ⁾(z⁽ˡ⁾)`` and a loss
``E(y, a⁽ᴸ⁾)``, the trace records the forward and the backward quantities side by side::

    forward                              backward
    z⁽ˡ⁾ = a⁽ˡ⁻¹⁾ W⁽ˡ⁾ + b⁽ˡ⁾             δ⁽ˡ⁾ = ∂E/∂z⁽ˡ⁾ = ∂E/∂a⁽ˡ⁾ ⊙ f'(z⁽ˡ⁾)   (f applied per unit)
    a⁽ˡ⁾ = f(z⁽ˡ⁾)                       ∂E/∂a⁽ˡ⁻¹⁾ = δ⁽ˡ⁾ W⁽ˡ⁾ᵀ
    E = loss(y, a⁽ᴸ⁾)                    ∂E/∂W⁽ˡ⁾ = a⁽ˡ⁻¹⁾ᵀ δ⁽ˡ⁾,   ∂E/∂b⁽ˡ⁾ = δ⁽ˡ⁾

(for a softmax output, the Jacobian of f replaces ⊙ f').  Nothing is re-derived here: the
forward runs axone's ops on copies of the layers' weights, keeping each z and a, and the backward
is the engine's ``backward()`` from E, whose gradients at z (``retain_grad``), W and b are read
off.  The computation is in float64 by default so that the course's six-digit values come out
exactly.  E is the loss of the observation alone: weight penalties (regularizers) are not added.
"""
import numpy as np

from .. import activations, losses as losses_mod
from ..autograd.tensor import Tensor
from ..layers import core as _core
from ..layers import regularization as _reg
from ..models.sequential import Sequential
from .. import ops

__all__ = ["backprop_trace", "BackpropTrace", "LayerTrace"]

_NOISE = (_core.Dropout, _reg.GaussianNoise, _reg.GaussianDropout, _reg.AlphaDropout,
          _reg.SpatialDropout1D, _reg.SpatialDropout2D, _reg.SpatialDropout3D)


class LayerTrace:
    """The recorded quantities of one traced layer (arrays of one row, batch axis dropped).

    Attributes:
        name, class_name, activation: the layer's name, type and activation name.
        inputs: a⁽ˡ⁻¹⁾, what the layer received.
        z: the pre-activations (for an Activation layer: its input).
        a: the activations f(z), the layer's output.
        delta: ∂E/∂z.
        grad_a: ∂E/∂a.
        kernel, bias: the weights used (None where the layer has none).
        kernel_grad: ∂E/∂W, shape of the kernel (None without a kernel).
        bias_grad: ∂E/∂b (None without a bias).
    """

    def __init__(self, layer, inputs, z, a, delta, grad_a, kernel, bias, kernel_grad, bias_grad):
        self.name = layer.name
        self.class_name = type(layer).__name__
        self.activation = activations.serialize(layer.activation)
        self.inputs, self.z, self.a = inputs, z, a
        self.delta, self.grad_a = delta, grad_a
        self.kernel, self.bias = kernel, bias
        self.kernel_grad, self.bias_grad = kernel_grad, bias_grad

    def __repr__(self):
        return (f"<LayerTrace {self.name} ({self.class_name}, {self.activation}): "
                f"{self.inputs.shape[-1]} → {self.a.shape[-1]}>")


class BackpropTrace:
    """The result of :func:`backprop_trace`: ``loss`` (E), ``output`` (the network's output),
    ``x``, ``y``, ``loss_name`` and ``layers``, one :class:`LayerTrace` per traced layer, also
    reachable by name (``trace["dense"]``).  ``str(trace)`` is the table of the course."""

    def __init__(self, x, y, output, loss, loss_name, layers, precision=6):
        self.x, self.y, self.output = x, y, output
        self.loss, self.loss_name = loss, loss_name
        self.layers = layers
        self.precision = precision

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.layers[key]
        for lt in self.layers:
            if lt.name == key:
                return lt
        raise KeyError(f"backprop_trace: no traced layer named {key!r}; traced: "
                       f"{[lt.name for lt in self.layers]}")

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def table(self, precision=None):
        """The trace as text: for each layer, one row per unit with z, f(z), ∂E/∂z and ∂E/∂b,
        then the matrix ∂E/∂W (rows: inputs, columns: units); then E."""
        p = self.precision if precision is None else int(precision)
        def num(v):
            text = f"{float(v):.{p}f}"
            return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no −0
        vec = lambda a: "[" + ", ".join(num(v) for v in np.ravel(a)) + "]"
        out = [f"Backpropagation of one observation, loss {self.loss_name}",
               f"x = {vec(self.x)}   y = {vec(self.y)}", ""]
        for k, lt in enumerate(self.layers, 1):
            n_out = lt.a.shape[-1]
            out.append(f"layer {k}: {lt.name} ({lt.class_name}, activation {lt.activation}), "
                       f"{lt.inputs.shape[-1]} → {n_out}")
            cols = ["unit", "z", "f(z)", "dE/df(z)", "dE/dz"] + (["dE/db"] if lt.bias_grad is not None
                                                                  else [])
            rows = []
            for j in range(n_out):
                r = [str(j + 1), num(lt.z[j]), num(lt.a[j]), num(lt.grad_a[j]), num(lt.delta[j])]
                if lt.bias_grad is not None:
                    r.append(num(lt.bias_grad[j]))
                rows.append(r)
            widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
            out.append("  " + "  ".join(c.rjust(w) for c, w in zip(cols, widths)))
            for r in rows:
                out.append("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)))
            if lt.kernel_grad is not None:
                g = lt.kernel_grad
                out.append(f"  dE/dW ({g.shape[0]} input{'s' * (g.shape[0] != 1)} × "
                           f"{g.shape[1]} unit{'s' * (g.shape[1] != 1)}; "
                           f"dE/dW[i, j] = a_prev[i] · dE/dz[j]):")
                cells = [[num(v) for v in row] for row in g]
                w = max(len(c) for row in cells for c in row)
                for i, row in enumerate(cells):
                    out.append(f"    {i + 1:>3}  " + "  ".join(c.rjust(w) for c in row))
            out.append("")
        out.append(f"output = {vec(self.output)}")
        out.append(f"E = {num(self.loss)}")
        return "\n".join(out)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (f"<BackpropTrace {len(self.layers)} layers, loss {self.loss_name} = "
                f"{float(self.loss):.6g}>")


def _chain(model):
    """The layers of a Sequential or single-path functional model, in order (nested Sequential
    and chain models are opened)."""
    if isinstance(model, Sequential):
        out = []
        for layer in model.layers:
            out.extend(_chain(layer) if hasattr(layer, "layers") else [layer])
        return out
    layers = list(getattr(model, "layers", []))
    inputs = getattr(model, "inputs", None)
    outputs = getattr(model, "outputs", None)
    if inputs is None or outputs is None:
        raise ValueError(f"backprop_trace: model {getattr(model, 'name', model)!r} is not a "
                         f"Sequential or functional model (a subclassed model's call cannot be "
                         f"traced)")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"backprop_trace: model {model.name!r} has {len(inputs)} inputs and "
                         f"{len(outputs)} outputs; only a single chain of layers is traced")
    prev = inputs[0]
    out = []
    for layer in layers:
        if isinstance(layer, _core.InputLayer):
            continue
        nodes = getattr(layer, "_inbound_nodes", [])
        try:
            ok = len(nodes) == 1 and layer.input is prev
        except (AttributeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"backprop_trace: model {model.name!r} is not a chain (layer "
                             f"{layer.name!r} does not take the previous layer's output alone); "
                             f"only a straight stack of layers is traced")
        out.extend(_chain(layer) if hasattr(layer, "layers") else [layer])
        prev = layer.output
    if prev is not outputs[0]:
        raise ValueError(f"backprop_trace: model {model.name!r} is not a chain ending at its "
                         f"output")
    return out


def _row(v, what, size):
    if hasattr(v, "to_numpy"):
        v = v.to_numpy()
    if isinstance(v, Tensor):
        v = v.data
    a = np.asarray(v)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"backprop_trace: {what} must hold numbers, received dtype {a.dtype}")
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"backprop_trace: {what} must be one observation, shape ({size},) or "
                         f"(1, {size}), received shape {np.shape(v)}")
    if size is not None and a.shape[0] != size:
        raise ValueError(f"backprop_trace: {what} must have {size} values, received shape "
                         f"{np.shape(v)}")
    return a


def backprop_trace(model, x, y, loss=None, training=False, dtype="float64", precision=6):
    """Forward and backward pass of one observation through a chain of Dense layers.

    Args:
        model: a built Sequential or single-chain functional model made of ``Dense`` and
            ``Activation`` layers (any activation of axone); an ``InputLayer`` is skipped and, at
            inference (``training=False``), Dropout / noise layers pass their input through.
        x: one observation, shape (n_inputs,) or (1, n_inputs).
        y: its target, shape (n_outputs,) or (1, n_outputs) (a scalar for one output).
        loss: a loss name, Loss object or function; default the loss given to ``compile``.
        training: the mode the layers run in; a layer that acts at random in training (Dropout,
            GaussianNoise, …) cannot be traced then.
        dtype: the float type of the computation ("float64" default; "float32" computes as the
            model does).
        precision: decimals shown by ``str()``.

    Returns:
        A :class:`BackpropTrace`: per layer the inputs, z, f(z), ∂E/∂f(z), ∂E/∂z, ∂E/∂W, ∂E/∂b,
        and the loss E.

    Raises:
        ValueError: a layer that cannot be traced (named), a model that is not a chain or not
            built, no loss, x or y of the wrong shape.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"backprop_trace: dtype must be 'float32' or 'float64', received {dtype!r}")
    if not getattr(model, "built", False):
        raise ValueError(f"backprop_trace: model {getattr(model, 'name', model)!r} is not built; "
                         f"give it an Input or call it once first")
    chain = _chain(model)
    traced = []
    for layer in chain:
        if isinstance(layer, _core.InputLayer):
            continue
        if isinstance(layer, _NOISE):
            if training and getattr(layer, "rate", getattr(layer, "stddev", 1.0)) != 0:
                raise ValueError(f"backprop_trace: cannot trace layer {layer.name!r} "
                                 f"({type(layer).__name__}) with training=True: its output is "
                                 f"random in training; trace with training=False")
            continue                                    # identity at inference
        if type(layer) not in (_core.Dense, _core.Activation):
            raise ValueError(f"backprop_trace: cannot trace layer {layer.name!r} "
                             f"({type(layer).__name__}): only Dense and Activation layers (and "
                             f"Dropout or noise layers at inference) are traced")
        traced.append(layer)
    if not traced:
        raise ValueError(f"backprop_trace: model {model.name!r} has no Dense or Activation layer")

    loss_spec = loss if loss is not None else getattr(model, "loss", None)
    if loss_spec is None:
        raise ValueError("backprop_trace: no loss: compile the model with loss=... or pass "
                         "loss= to backprop_trace")
    if isinstance(loss_spec, (list, tuple, dict)):
        raise ValueError(f"backprop_trace: expected one loss for the model's one output, "
                         f"received {loss_spec!r}")
    loss_fn = losses_mod.get(loss_spec)
    loss_name = loss_spec if isinstance(loss_spec, str) else getattr(
        loss_fn, "name", getattr(loss_fn, "__name__", type(loss_fn).__name__))

    n_in = int(traced[0].kernel.shape[0]) if isinstance(traced[0], _core.Dense) else None
    x = _row(x, "x", n_in).astype(dtype)
    y = _row(y, "y", None).astype(dtype)

    # ---- forward on axone's ops, keeping z and a of every layer
    a = Tensor(x[None, :])
    records = []
    for layer in traced:
        inputs = a
        if isinstance(layer, _core.Dense):
            kernel = np.array(layer.kernel.data, dtype=dtype)
            if kernel.shape[0] != inputs.shape[-1]:
                raise ValueError(f"backprop_trace: layer {layer.name!r} expects "
                                 f"{kernel.shape[0]} inputs, receives {inputs.shape[-1]}")
            W = Tensor(kernel, requires_grad=True)
            b = Tensor(np.array(layer.bias.data, dtype=dtype), requires_grad=True) \
                if layer.bias is not None else None
            z = ops.dense(inputs, W, b)
        else:
            W = b = None
            z = inputs if inputs.requires_grad else Tensor(inputs.data, requires_grad=True)
        a = layer.activation(z)
        if a is z:                                  # linear: f(z) is z itself
            a = z * 1.0
        records.append((layer, inputs, z, a, W, b))
        if z._ctx is not None:
            z.retain_grad()
        a.retain_grad()
    out = a
    if y.shape[0] != out.shape[-1]:
        raise ValueError(f"backprop_trace: y must have {out.shape[-1]} values (the model's "
                         f"output size), received shape {y.shape}")
    E = loss_fn(Tensor(y[None, :]), out)
    if not isinstance(E, Tensor):
        E = Tensor(E)
    if E.data.size != 1:
        E = ops.mean(E)
    E = ops.reshape(E, ()) if E.ndim else E
    E.backward()
    grad_out = out.grad
    if grad_out is None:
        # the cross-entropies read the logits under a sigmoid / softmax output (one fused node,
        # gradient ŷ − y at z), so nothing arrives at the output itself: ∂E/∂f(z) is taken
        # by a second backward of the same loss from a leaf copy of the output
        leaf = Tensor(out.data.copy(), requires_grad=True)
        E2 = loss_fn(Tensor(y[None, :]), leaf)
        E2 = ops.mean(E2) if E2.data.size != 1 else E2
        E2 = ops.reshape(E2, ()) if E2.ndim else E2
        E2.backward()
        grad_out = leaf.grad

    layers = []
    for layer, inputs, z, a_t, W, b in records:
        dz = z.grad if z.grad is not None else np.zeros_like(z.data)
        da = grad_out if a_t is out else a_t.grad
        da = da if da is not None else np.zeros_like(a_t.data)
        layers.append(LayerTrace(
            layer, inputs.data[0].copy(), z.data[0].copy(), a_t.data[0].copy(),
            np.array(dz)[0].copy(), np.array(da)[0].copy(),
            None if W is None else W.data.copy(), None if b is None else b.data.copy(),
            None if W is None else np.array(W.grad).copy(),
            None if b is None else np.array(b.grad).copy()))
    return BackpropTrace(x, y, out.data[0].copy(), float(E.data), loss_name, layers,
                         precision=precision)
