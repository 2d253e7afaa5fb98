"""The array plan of a prediction: a functional graph's layer calls run on NumPy arrays.

``predict`` on a batch that fits one call (the serving case: one sample, or a few) spends most of
its time around the arithmetic, not in it: wrapping each layer's input and output in a Tensor,
the generic ``Layer.__call__`` checks, the graph's bookkeeping.  The plan is the model's recorded
layer calls (``Model._plan``) as ``(step, input key, output key, keys to drop)`` rows, each
``step`` what a layer's ``_inference_step()`` gives, a function of an array to an array: the
Dense and recurrent layers compute their node's forward (``ops.nn.Dense.forward``,
``ops.recurrent.RNNSequence.forward``: the same operations in the same order, so the same bits)
on the arrays directly, a small Dense product with its ends written out; every other layer runs
its ordinary call (``Layer._infer``), so a plan exists for every graph it can serve, and it
gives the results the graph gives.  A chain of calls (a Sequential model) runs its steps one
after the other, without the graph's table of values.

A plan is made (once per graph and layer-tracking state) only for graphs whose every call takes
one value and gives one, with no call arguments, no masks (no layer produces one) and no
activity regularizer, in the model or any layer nested in it; otherwise ``plan_of`` returns
None and predict runs the graph as before.  A layer whose output turns out to carry a mask all
the same (a custom layer setting one) raises ``NeedsGraph``: that prediction and the later ones
run the graph.
"""
import weakref

import numpy as np

from ..layers import base as layer_base
from ..layers.base import KerasTensor, NeedsGraph, _np_dtype

__all__ = ["NeedsGraph", "drop_plan", "plan_of", "run_plan"]

#: model -> ((layer-tracking state, graph), plan): kept beside the model, not in it, so that a
#: model still pickles and deep-copies (a copy makes its own plan, over its own layers)
_PLANS = weakref.WeakKeyDictionary()
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _layers(layer):
    yield layer
    for sub in layer._sublayers:
        yield from _layers(sub)


def _plannable(model):
    if not model._is_graph:
        return False
    for layer in _layers(model):
        if layer._produces_mask or getattr(layer, "activity_regularizer", None) is not None:
            return False
    return True


def plan_of(model):
    """The model's array plan, or None when it has none (see the module): ``(chain, rows)``,
    ``rows`` the ``(step, input key(s), output key, keys to drop)`` of every call (a tuple of
    keys for a call on a list of values), ``chain`` the steps alone when each call reads the
    one before it (else None)."""
    key = (layer_base._TRACKING[0], model.__dict__.get("_nodes"))
    cached = _PLANS.get(model)
    if cached is not None and cached[0][0] == key[0] and cached[0][1] is key[1]:
        return cached[1]
    plan = None
    if _plannable(model):
        calls = []
        for layer, in_key, node, kwargs, out_key, drop, fixed in model._plan():
            if in_key is None and isinstance(node.inputs, list) and node.inputs and all(
                    isinstance(t, KerasTensor) for t in node.inputs) \
                    and len(node.flat_inputs) == len(node.inputs):
                in_key = tuple(id(t) for t in node.inputs)      # a merge: a list of values
            if in_key is None or out_key is None or kwargs is None or kwargs:
                calls = None
                break
            calls.append((layer, in_key, out_key, drop))
        if calls is not None:
            rows = _fuse(model, calls)
            # a chain (each call reads the one before it, as in a Sequential model): its steps
            # alone, each applied to the last one's output
            last = id(model._inputs[0]) if len(model._inputs) == 1 else None
            chain = []
            for step, in_key, out_key, _ in rows:
                if in_key != last:
                    chain = None
                    break
                chain.append(step)
                last = out_key
            if chain is not None and (len(model._outputs) != 1 or id(model._outputs[0]) != last):
                chain = None
            plan = (None if chain is None else tuple(chain), tuple(rows))
    _PLANS[model] = (key, plan)
    return plan


def _fresh_output(layer):
    """Whether this layer's inference step always returns a new array, referenced by nothing
    but the plan's table of values (a fused step after it may then write over it)."""
    from ..layers import convolutional, core, merging, normalization
    return type(layer) in (convolutional.Conv1D, convolutional.Conv2D, convolutional.Conv3D,
                           convolutional.DepthwiseConv2D, core.Dense,
                           normalization.BatchNormalization, merging.Add)


def _affine_kind(layer):
    """('bn', layer) for a BatchNormalization, ('clip', layer) for a ReLU or Activation layer
    (their own classes, not subclasses: a subclass may call otherwise), else (None, None)."""
    from ..layers import activation, core, normalization
    if type(layer) is normalization.BatchNormalization:
        return "bn", layer
    if type(layer) in (activation.ReLU, core.Activation):
        return "clip", layer
    return None, None


def _fuse(model, calls):
    """The rows of ``calls`` with each BatchNormalization (at inference) and the ReLU / relu6
    after it fused into one step, and a lone BatchNormalization or ReLU made one such step:
    y = min(max(x·s + shift, lo), hi) in one pass (``_affine_step``), written over its input
    where that is the fresh output of a layer that only this step reads."""
    reads = {}
    for _, in_key, _, _ in calls:
        for k in (in_key if type(in_key) is tuple else (in_key,)):
            reads[k] = reads.get(k, 0) + 1
    for o in model._outputs:
        reads[id(o)] = reads.get(id(o), 0) + 2            # never written over
    producer = {out_key: layer for layer, _, out_key, _ in calls}
    rows, skip = [], set()
    for i, (layer, in_key, out_key, drop) in enumerate(calls):
        if i in skip:
            continue
        kind, _ = _affine_kind(layer)
        bn = layer if kind == "bn" else None
        clip = layer if kind == "clip" else None
        if type(in_key) is tuple and _is_add(layer):
            # the sum written over the first or second input where that is a fresh output
            # that only this call reads (the later inputs are read after the first sum)
            into = next((i for i, k in enumerate(in_key[:2]) if reads.get(k) == 1
                         and in_key.count(k) == 1 and k in producer
                         and _fresh_output(producer[k])), None)
            rows.append((_add_step(layer, into), in_key, out_key, drop))
            continue
        if type(in_key) is tuple or kind is None:
            rows.append((layer._inference_step(), in_key, out_key, drop))
            continue
        steps = [layer._inference_step()]
        if bn is not None and reads.get(out_key) == 1:
            # the one reader of the normalization's output: a ReLU / relu6 on it alone
            for j in range(i + 1, len(calls)):
                nxt, nxt_in, nxt_out, nxt_drop = calls[j]
                if nxt_in == out_key:
                    if _affine_kind(nxt)[0] == "clip":
                        clip = nxt
                        steps.append(nxt._inference_step())
                        out_key, drop = nxt_out, tuple(drop) + tuple(nxt_drop)
                        skip.add(j)
                    break
        inplace = reads.get(in_key) == 1 and in_key in producer and _fresh_output(producer[in_key])
        rows.append((_affine_step(bn, clip, steps, inplace), in_key, out_key, drop))
    return rows


def _is_add(layer):
    from ..layers import merging
    return type(layer) is merging.Add


def _add_step(layer, into):
    """The step of an Add layer: x₀ + x₁ (+ x₂ …, added in order, as its call adds), into input
    ``into`` (0 or 1, or None: a new array) when the inputs are host arrays of one shape and of
    the layer's dtype; the layer's own step otherwise."""
    infer = layer._inference_step()
    if into is None:
        return infer
    dt = _np_dtype(layer.dtype)

    def step(xs):
        first = xs[0]
        if (len(xs) < 2 or any(type(a) is not np.ndarray or a.shape != first.shape
                               or a.dtype != first.dtype for a in xs)
                or (layer._autocast and first.dtype != dt) or first.dtype.kind not in "fc"):
            return infer(xs)
        out = xs[into]
        np.add(xs[0], xs[1], out=out)
        for a in xs[2:]:
            np.add(out, a, out=out)
        return out
    return step


def _affine_step(bn, clip, steps, inplace):
    """The step of a BatchNormalization ``bn`` at inference and/or a clip layer ``clip``
    (either may be None): y = min(max(x·s + shift, lo), hi) over the last axis in one pass of
    the compiled module (``affine_clip``: the product, the sum, the comparisons in the order the
    layers' own calls take them, so the same bits), into x itself when ``inplace``.  Whatever
    the pass cannot take (no compiled module, another dtype or layout, features on another
    axis) runs the layers' own ``steps`` one after the other."""
    from ..ops import _compiled
    kern = _compiled.kernels("affine_clip")

    def fallback(x):
        for step in steps:
            x = step(x)
        return x
    if kern is None:
        return fallback
    inf = float("inf")

    def step(x):
        if type(x) is not np.ndarray or x.dtype not in _FLOATS or not x.size or x.ndim < 1 \
                or not x.flags.c_contiguous:
            return fallback(x)
        lo, hi = -inf, inf
        if clip is not None:
            if clip._autocast and x.dtype != _np_dtype(clip.dtype):
                return fallback(x)
            bounds = clip._inference_clip()
            if bounds is None:
                return fallback(x)
            lo, hi = bounds
        scale = shift = None
        if bn is not None:
            affine = bn._inference_affine(x)
            if affine is None:
                return fallback(x)
            scale, shift = affine
            if scale.dtype != x.dtype or shift.dtype != x.dtype:
                return fallback(x)
        n = x.shape[-1]
        x2 = x.reshape(-1, n)
        if inplace:
            kern.affine_clip(x2, scale, shift, lo, hi, x2)
            return x
        y = np.empty_like(x)
        kern.affine_clip(x2, scale, shift, lo, hi, y.reshape(-1, n))
        return y
    return step


def drop_plan(model):
    """No plan for the model in its current state (a layer's output needed the graph)."""
    cached = _PLANS.get(model)
    if cached is not None:
        _PLANS[model] = (cached[0], None)


def run_plan(model, plan, xs):
    """The model's outputs (a list of arrays) on input arrays ``xs`` through ``plan``."""
    chain, rows = plan
    if chain is not None:
        x = xs[0]
        for step in chain:
            x = step(x)
        return [x]
    values = {}
    for kt, x in zip(model._inputs, xs):
        values[id(kt)] = x
    for infer, in_key, out_key, drop in rows:
        values[out_key] = infer(values[in_key] if type(in_key) is not tuple
                                else [values[k] for k in in_key])
        for key in drop:
            values.pop(key, None)
    return [values[id(o)] for o in model._outputs]
