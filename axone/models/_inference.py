"""The array plan of a prediction: a functional graph's layer calls run on NumPy arrays.

``predict`` on a batch that fits one call (the serving case: one sample, or a few) spends most of
its time around the arithmetic, not in it: wrapping each layer's input and output in a Tensor,
the generic ``Layer.__call__`` checks, the graph's bookkeeping.  The plan is the model's recorded
layer calls (``Model._plan``) as ``(infer, input key, output key, keys to drop)`` rows, each
``infer`` a layer's ``_infer(array) -> array``: the Dense layer computes its node's forward
(``ops.nn.Dense.forward``, the same operations in the same order, so the same bits) on the
arrays directly; every other layer runs its ordinary call (``Layer._infer``), so a plan exists
for every graph it can serve, and it gives the results the graph gives.

A plan is made (once per graph and layer-tracking state) only for graphs whose every call takes
one value and gives one, with no call arguments, no masks (no layer produces one) and no
activity regularizer, in the model or any layer nested in it; otherwise ``plan_of`` returns
None and predict runs the graph as before.  A layer whose output turns out to carry a mask all
the same (a custom layer setting one) raises ``NeedsGraph``: that prediction and the later ones
run the graph.
"""
from ..layers import base as layer_base

__all__ = ["NeedsGraph", "drop_plan", "plan_of", "run_plan"]


class NeedsGraph(Exception):
    """Raised by a layer's ``_infer`` whose output carries what an array cannot (a mask): the
    prediction runs the graph instead, and the model's plan is dropped."""


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
    """The model's array plan (a tuple of rows), or None when it has none (see the module)."""
    key = (layer_base._TRACKING[0], model.__dict__.get("_nodes"))
    cached = model.__dict__.get("_array_plan")
    if cached is not None and cached[0][0] == key[0] and cached[0][1] is key[1]:
        return cached[1]
    plan = None
    if _plannable(model):
        rows = []
        for layer, in_key, node, kwargs, out_key, drop in model._plan():
            if in_key is None or out_key is None or kwargs is None or kwargs:
                rows = None
                break
            rows.append((layer._infer, in_key, out_key, drop))
        plan = None if rows is None else tuple(rows)
    model.__dict__["_array_plan"] = (key, plan)
    return plan


def drop_plan(model):
    """No plan for the model in its current state (a layer's output needed the graph)."""
    cached = model.__dict__.get("_array_plan")
    if cached is not None:
        model.__dict__["_array_plan"] = (cached[0], None)


def run_plan(model, plan, xs):
    """The model's outputs (a list of arrays) on input arrays ``xs`` through ``plan``."""
    values = {}
    for kt, x in zip(model._inputs, xs):
        values[id(kt)] = x
    for infer, in_key, out_key, drop in plan:
        values[out_key] = infer(values[in_key])
        for key in drop:
            values.pop(key, None)
    return [values[id(o)] for o in model._outputs]
