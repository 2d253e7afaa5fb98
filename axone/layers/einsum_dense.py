"""EinsumDense: a dense layer whose product is an einsum equation (Keras ``layers.EinsumDense``)."""
import re

import numpy as np

from .. import activations, constraints, initializers, ops, regularizers
from .base import Layer

__all__ = ["EinsumDense"]


def _ser(x, mod):
    return None if x is None else mod.serialize(x)


def analyze_equation(equation, bias_axes, input_shape, output_shape, where="EinsumDense"):
    """Kernel shape, bias shape (or None), full output shape, and the kernel's input / output
    axes, for ``equation`` of the form ``X,Y->Z``, ``...X,Y->...Z`` or ``X...,Y->Z...``.

    ``output_shape`` gives the output's sizes without the batch axis; None entries stay None in
    the reported output shape (as Keras), and a kernel or bias letter sized None there takes its
    size from the input when the input has the letter.  A kernel letter takes its size from the
    output when the output has it, else from the input.  The bias spans the output from its first bias letter on, 1 where a letter
    is not in ``bias_axes``."""
    if not isinstance(equation, str):
        raise TypeError(f"{where}: equation must be a string, received {equation!r}")
    eq = equation.replace(" ", "").replace("...", "0")
    left = False
    m = re.fullmatch(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", eq)
    if m is None:
        m = re.fullmatch(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", eq)
        left = m is not None
    if m is None:
        m = re.fullmatch(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", eq)
    if m is None:
        raise ValueError(f"{where}: invalid einsum equation {equation!r}; equations must be of the "
                         f"form [X],[Y]->[Z], ...[X],[Y]->...[Z] or [X]...,[Y]->[Z]...")
    ins, ws, outs = m.groups()
    input_shape = tuple(input_shape)
    elided = len(input_shape) - len(ins)
    if elided < 0 or (elided > 0 and "0" not in eq):
        raise ValueError(f"{where}: the equation {equation!r} expects an input of rank {len(ins)}, "
                         f"received shape {input_shape}")
    out = list(output_shape)
    out.insert(0, input_shape[0])
    if elided > 0 and left:
        for i in range(1, elided):
            out.insert(1, input_shape[i])
    elif elided > 0:
        out.extend(input_shape[len(input_shape) - elided:])
    if left:
        in_pos = {c: i + elided - len(input_shape) for i, c in enumerate(ins)}
        out_pos = {c: i + elided for i, c in enumerate(outs)}
    else:
        in_pos = {c: i for i, c in enumerate(ins)}
        out_pos = {c: i for i, c in enumerate(outs)}
    if len(out) != len(outs) + max(elided, 0):
        raise ValueError(f"{where}: output_shape {tuple(output_shape)} does not fit the equation "
                         f"{equation!r} (the output spec {outs!r} has {len(outs)} axes, the batch "
                         f"axis included)")
    # ``out`` is the output shape Keras reports (None where output_shape leaves a size open);
    # ``sizes`` fills those from the input where the letter is shared, for the kernel's shape
    sizes = list(out)
    for c in ins:
        if c in out_pos:
            o = out[out_pos[c]]
            if o is None:
                sizes[out_pos[c]] = input_shape[in_pos[c]]
            elif o != input_shape[in_pos[c]]:
                raise ValueError(f"{where}: input shape and output shape do not match at shared "
                                 f"dimension {c!r}: input size {input_shape[in_pos[c]]}, output "
                                 f"size {o}")
    for c in outs:
        if c not in ins and c not in ws:
            raise ValueError(f"{where}: dimension {c!r} of the output spec {outs!r} is in neither "
                             f"the input spec {ins!r} nor the weight spec {ws!r}")
    kshape, in_axes, out_axes = [], [], []
    for i, c in enumerate(ws):
        if c in out_pos:
            kshape.append(sizes[out_pos[c]])
            out_axes.append(i)
        elif c in in_pos:
            kshape.append(input_shape[in_pos[c]])
            in_axes.append(i)
        else:
            raise ValueError(f"{where}: weight dimension {c!r} matches neither the input spec "
                             f"{ins!r} nor the output spec {outs!r}; the weight must be fully "
                             f"specified")
        if kshape[-1] is None:
            raise ValueError(f"{where}: the size of weight dimension {c!r} is unknown (input shape "
                             f"{input_shape}, output_shape {tuple(output_shape)})")
    bshape = None
    if bias_axes is not None:
        if not isinstance(bias_axes, str):
            raise TypeError(f"{where}: bias_axes must be a string of output letters, received "
                            f"{bias_axes!r}")
        for c in bias_axes:
            if c not in outs:
                raise ValueError(f"{where}: bias dimension {c!r} was requested, but is not part of "
                                 f"the output spec {outs!r}")
        shift = elided if left else 0
        by_letter = {c: sizes[i + shift] for i, c in enumerate(outs)}
        first = min(outs.find(c) for c in bias_axes) if bias_axes else len(outs)
        bshape = [by_letter[c] if c in bias_axes else 1 for c in outs[first:]]
        if any(d is None for d in bshape):
            raise ValueError(f"{where}: the size of a bias dimension in {bias_axes!r} is unknown "
                             f"(input shape {input_shape}, output_shape {tuple(output_shape)})")
        if not left:
            bshape += [1] * max(elided, 0)
    return kshape, bshape, out, in_axes, out_axes


def matmul_plan(equation):
    """How many trailing input axes the kernel contracts when ``equation`` is a plain matrix
    product (``...X K, K Y -> ...X Y`` with the letters in that order, as every projection of the
    attention layers is), else None.  Such an equation runs as one BLAS product of the input
    reshaped to (−1, ΠK) with the kernel reshaped to (ΠK, ΠY)."""
    eq = equation.replace(" ", "")
    m = re.fullmatch(r"(\.\.\.)?([a-zA-Z]*),([a-zA-Z]+)->(\.\.\.)?([a-zA-Z]*)", eq)
    if m is None or bool(m.group(1)) != bool(m.group(4)):
        return None
    ins, ws, outs = m.group(2), m.group(3), m.group(5)
    if len(set(ins)) != len(ins) or len(set(ws)) != len(ws) or len(set(outs)) != len(outs):
        return None
    shared = set(ins) & set(ws)
    k = len(shared)
    if k == 0 or shared & set(outs) or ins[len(ins) - k:] != ws[:k]:
        return None
    if outs != ins[:len(ins) - k] + ws[k:]:
        return None
    return k


class EinsumDense(Layer):
    """y = activation(einsum(equation, x, kernel) + bias).

    Args (Keras's): equation (e.g. ``"ab,bc->ac"``, ``"...b,bc->...c"``, ``"abc,cde->abde"``),
    output_shape (the output's sizes without the batch axis; an int for one axis; None entries
    follow the input), activation, bias_axes (the output letters the bias spans, or None for no
    bias), kernel/bias initializers, regularizers and constraints.
    Weights: kernel (shaped by the equation), bias.
    """

    def __init__(self, equation, output_shape, activation=None, bias_axes=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, lora_alpha=None,
                 gptq_unpacked_column_size=None, quantization_config=None, **kwargs):
        super().__init__(**kwargs)
        for n, v in (("lora_rank", lora_rank), ("lora_alpha", lora_alpha),
                     ("gptq_unpacked_column_size", gptq_unpacked_column_size),
                     ("quantization_config", quantization_config)):
            if v is not None:
                raise NotImplementedError(f"EinsumDense {self.name!r}: {n} is not supported by "
                                          f"axone (received {v!r})")
        if not isinstance(equation, str):
            raise TypeError(f"EinsumDense {self.name!r}: equation must be a string, received "
                            f"{equation!r}")
        self.equation = equation
        if isinstance(output_shape, (int, np.integer)) and not isinstance(output_shape, bool):
            self.partial_output_shape = (int(output_shape),)
        elif isinstance(output_shape, (list, tuple)) and all(
                d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool))
                for d in output_shape):
            self.partial_output_shape = tuple(None if d is None else int(d) for d in output_shape)
        else:
            raise TypeError(f"EinsumDense {self.name!r}: output_shape must be an int or a tuple of "
                            f"ints/None, received {output_shape!r}")
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _analyze(self, input_shape):
        return analyze_equation(self.equation, self.bias_axes, input_shape,
                                self.partial_output_shape, where=f"EinsumDense {self.name!r}")

    def build(self, input_shape):
        kshape, bshape, _, in_axes, out_axes = self._analyze(input_shape)
        init = self.kernel_initializer
        if isinstance(init, initializers.VarianceScaling) and (
                init.input_axes is None or init.output_axes is None):
            # the fans come from the kernel's input and output axes, as Keras does
            cfg = init.get_config()
            cfg.update({"input_axes": in_axes, "output_axes": out_axes})
            init = type(init).from_config(cfg) if hasattr(type(init), "from_config") else \
                type(init)(**cfg)
        self.kernel = self.add_weight(tuple(kshape), init, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.bias = None if bshape is None else self.add_weight(
            tuple(bshape), self.bias_initializer, regularizer=self.bias_regularizer,
            constraint=self.bias_constraint, name="bias")
        self._input_ndim = len(input_shape)
        self._rank = len(input_shape)
        self._plan = matmul_plan(self.equation)
        self.built = True

    def call(self, inputs, training=None):
        if inputs.ndim != self._rank:
            raise ValueError(f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                             f"expected ndim={self._rank}, found ndim={inputs.ndim}. Full shape "
                             f"received: {tuple(inputs.shape)}")
        k = self._plan
        bias = self.bias
        if k is not None:
            # one BLAS product: (…, ΠK) · (ΠK, ΠY), the same sums as the einsum; a bias over
            # all of Y joins it in one dense node (x·W + b, its Σ_rows backward in one pass)
            kshape = tuple(self.kernel.shape)
            rows = ops.reshape(inputs, (-1, int(np.prod(kshape[:k]))))
            w = ops.reshape(self.kernel, (rows.shape[1], -1))
            if bias is not None and tuple(bias.shape) == kshape[k:]:
                x = ops.dense(rows, w, ops.reshape(bias, (w.shape[1],)))
                bias = None
            else:
                x = ops.matmul(rows, w)
            x = ops.reshape(x, tuple(inputs.shape[:inputs.ndim - k]) + kshape[k:])
        else:
            x = ops.einsum(self.equation, inputs, self.kernel)
        if bias is not None:
            x = x + bias
        if self.activation is not None:
            x = self.activation(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(self._analyze(input_shape)[2])

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"output_shape": self.partial_output_shape, "equation": self.equation,
                    "activation": activations.serialize(self.activation),
                    "bias_axes": self.bias_axes,
                    "kernel_initializer": initializers.serialize(self.kernel_initializer),
                    "bias_initializer": initializers.serialize(self.bias_initializer),
                    "kernel_regularizer": _ser(self.kernel_regularizer, regularizers),
                    "bias_regularizer": _ser(self.bias_regularizer, regularizers),
                    "activity_regularizer": _ser(self.activity_regularizer, regularizers),
                    "kernel_constraint": _ser(self.kernel_constraint, constraints),
                    "bias_constraint": _ser(self.bias_constraint, constraints),
                    "quantization_config": None})
        return cfg
