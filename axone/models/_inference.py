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

from ..layers import base as layer_base
from ..layers.base import NeedsGraph

__all__ = ["NeedsGraph", "drop_plan", "plan_of", "run_plan"]

#: model -> ((layer-tracking state, graph), plan): kept beside the model, not in it, so that a
#: model still pickles and deep-copies (a copy makes its own plan, over its own layers)
_PLANS = weakref.WeakKeyDictionary()


def _layers(layer):
    yield layer
    for sub in layer._sublayers:
        yield from _layers(sub)


def _plannable(model):
    if not model._is_graph or getattr(model, "_has_activity_reg", False):
        return False
    for layer in _layers(model):
        if layer._produces_mask or getattr(layer, "activity_regularizer", None) is not None:
            return False
    return True


def plan_of(model):
    """The model's array plan, or None when it has none (see the module): ``(chain, rows)``,
    ``rows`` the ``(step, input key, output key, keys to drop)`` of every call, ``chain`` the
    steps alone when each call reads the one before it (else None)."""
    key = (layer_base._TRACKING[0], model.__dict__.get("_nodes"))
    cached = _PLANS.get(model)
    if cached is not None and cached[0][0] == key[0] and cached[0][1] is key[1]:
        return cached[1]
    plan = None
    if _plannable(model):
        rows = []
        for layer, in_key, node, kwargs, out_key, drop in model._plan():
            if in_key is None or out_key is None or kwargs is None or kwargs:
                rows = None
                break
            rows.append((layer._inference_step(), in_key, out_key, drop))
        if rows is not None:
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
        values[out_key] = infer(values[in_key])
        for key in drop:
            values.pop(key, None)
    return [values[id(o)] for o in model._outputs]
