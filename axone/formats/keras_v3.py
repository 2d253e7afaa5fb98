"""Keras 3's native files: the ``.keras`` archive and the ``.weights.h5`` weights file.

A ``.keras`` file is a zip of ``metadata.json`` ({"keras_version", "date_saved"}),
``config.json`` (the model's Keras entry with its ``compile_config``, see
:mod:`axone.formats.keras_config`) and ``model.weights.h5``.  The weights file (the member, or a
``.weights.h5`` file) holds one group per object as Keras walks the model:
``layers/<layer name>/vars/<i>`` for a layer's own variables (trainable first, then the others),
``layers/<layer>/<attribute>/vars/<i>`` for the layers it holds (``cell`` of a recurrent layer,
``forward_layer`` / ``backward_layer`` of Bidirectional, ``layer`` of a wrapper, ``query_dense``
… of MultiHeadAttention), ``layers/<nested model>/layers/...`` for a nested model, and
``optimizer/vars/<i>`` for the optimizer: every variable of Keras's ``optimizer.variables``
(iteration count, learning rate unless it is a schedule, then the slots in the order Keras
creates them; see :func:`optimizer_plan`).  A ``LossScaleOptimizer`` lists its own counters
(``step_counter``, ``dynamic_scale``) before its inner optimizer's variables and a
``MultiOptimizer`` its sub-optimizers' after its own; as Keras, each wrapped optimizer's
variables are also written to ``optimizer/inner_optimizer/vars`` or
``optimizer/optimizers/<snake-case class name>/vars`` (read back from ``optimizer/vars``).
"""
import datetime
import json
import re
import warnings

import numpy as np

from .. import backend
from ..device import array_module, to_numpy
from ..fileio import FileFormatError, ZipArchive, atomic_write, atomic_write_zip, loading_budget
from ..models import saving as _saving
from . import keras_config
from .h5io import H5Reader, h5_bytes

KERAS_VERSION = "3.15.1"
MAX_WEIGHTS_BYTES = 1 << 40


# ------------------------------------------------------------------ the layout
#: layers whose sublayers Keras reaches through public properties named without the underscore
_PUBLIC_SUBLAYERS = ("MultiHeadAttention",)
#: layers whose own variables Keras keeps in a ``cell`` sublayer that axone does not have
_CELL_OWNED = ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")


def _sublayers(layer):
    """[(Keras attribute name, sublayer or list of sublayers)] of the layers ``layer`` holds,
    in Keras's order (public attributes first, each sorted)."""
    from ..layers.base import Layer
    cname = type(layer).__name__
    out = []
    if hasattr(layer, "cell") and isinstance(getattr(layer, "cell"), Layer):
        out.append(("cell", layer.cell))
    if cname == "Bidirectional":
        out += [("backward_layer", layer.backward_layer), ("forward_layer", layer.forward_layer)]
    if hasattr(layer, "layer") and isinstance(getattr(layer, "layer"), Layer) and \
            cname != "Bidirectional":
        out.append(("layer", layer.layer))
    seen = {id(s) for _, s in out}
    for k, v in vars(layer).items():
        if k in ("cell", "layer") or id(v) in seen:
            continue
        name = k.lstrip("_") if cname in _PUBLIC_SUBLAYERS else k
        if isinstance(v, Layer):
            seen.add(id(v))
            out.append((name, v))
        elif isinstance(v, (list, tuple)) and v and not k.startswith("_") and \
                all(isinstance(x, Layer) for x in v):           # (axone's own lists are private)
            seen.add(id(v))
            out.append((name, list(v)))
    return sorted(out, key=lambda kv: ("~" + kv[0]) if kv[0].startswith("_") else kv[0])


def _own(layer, sub):
    ids = set()
    for _, s in sub:
        for x in (s if isinstance(s, list) else [s]):
            ids.update(id(w) for w in x.weights)
    tr = [w for w in layer.trainable_weights if id(w) not in ids]
    non = [w for w in layer.weights if id(w) not in ids and not any(w is t for t in tr)]
    return tr + non


def _snake(name):
    """Keras's ``to_snake_case`` of a class name (``SimpleRNN`` → ``simple_rnn``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _is_model(layer):
    return hasattr(layer, "_is_graph") and hasattr(layer, "layers")


def layout(model):
    """[(group path, name, [weights])] of ``model`` in Keras's layout (model itself at "").

    A model's layers are addressed as Keras addresses a list: by the snake-case class name,
    made unique in order (``dense``, ``dense_1``, …), never by the layers' own names; a
    subclassed model's layers by the attribute that holds them."""
    out = []
    visited = set()

    def join(path, name):
        return f"{path}/{name}" if path else name

    def walk_layer(layer, path):
        if id(layer) in visited:
            return
        visited.add(id(layer))
        if _is_model(layer):
            walk_model(layer, path)
            return
        sub = _sublayers(layer)
        own = _own(layer, sub)
        if type(layer).__name__ in _CELL_OWNED:
            out.append((path, layer.name, []))
            out.append((join(path, "cell"), layer.name + "_cell", own))
        else:
            out.append((path, layer.name, own))
        for name, s in sub:
            if isinstance(s, list):
                walk_list(s, join(path, name))
            else:
                walk_layer(s, join(path, name))

    def walk_list(layers, path):
        used = {}
        for layer in layers:
            name = _snake(type(layer).__name__)
            if name in used:
                used[name] += 1
                name = f"{name}_{used[name]}"
            else:
                used[name] = 0
            walk_layer(layer, join(path, name))

    def walk_model(model, path):
        from ..layers.base import Layer
        out.append((path, model.name, []))
        if getattr(model, "_is_graph", False) or type(model).__name__ == "Sequential":
            walk_list(_keras_layer_order(model), join(path, "layers"))
            return
        for attr in sorted(k for k in vars(model) if not k.startswith("_")):
            v = vars(model)[attr]
            if isinstance(v, Layer):
                walk_layer(v, join(path, attr))
            elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Layer) for x in v):
                walk_list(v, join(path, attr))
        rest = [l for l in model.layers if id(l) not in visited]
        if rest:
            walk_list(rest, join(path, "layers"))
    visited.add(id(model))
    walk_model(model, "")
    return out


def _keras_layer_order(model):
    """The layers of a model in the order Keras's ``Functional.layers`` lists them: a
    functional model keeps its layers in that order (``models.model.keras_layer_order``)."""
    if not getattr(model, "_is_graph", False) or type(model).__name__ == "Sequential":
        return list(model.layers)
    return list(model._graph_layers)


def keras_trainable_order(model):
    """The model's trainable weights in Keras's ``model.trainable_variables`` order."""
    out, seen = [], set()

    def add(layer):
        if hasattr(layer, "layers") and (getattr(layer, "_is_graph", False) or
                                         type(layer).__name__ == "Sequential"):
            for l in _keras_layer_order(layer):
                add(l)
            return
        for w in layer.trainable_weights:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
    add(model)
    rest = [w for w in model.trainable_weights if id(w) not in seen]
    return out + rest


#: each optimizer's slots in the order Keras creates them: groups of slots made together
#: (interleaved per variable)
_SLOT_GROUPS = {"Adam": [["m", "v"], ["vhat"]], "AdamW": [["m", "v"], ["vhat"]],
                "RMSprop": [["velocity"], ["momentum"], ["average_gradient"]]}
#: the base optimizer's slots, made before the rule's own (each a list over the variables)
_BASE_SLOTS = ("average", "gradient_accumulator")


def _slot_plan(opt, names):
    groups = _SLOT_GROUPS.get(type(opt).__name__, [list(names)])
    groups = [[n for n in g if n in names] for g in groups]
    left = [n for n in names if not any(n in g for g in groups)]
    return [g for g in groups if g] + ([left] if left else [])


def host_array(a):
    """``a`` as a host array for a file: a device array copied back, a host one as
    ``np.asarray`` gives it."""
    if type(a) is not np.ndarray and array_module(a) is not np:
        return to_numpy(a)
    return np.asarray(a)


def _is_array(a):
    """Whether ``a`` is a host or device array (not a number or a Python object)."""
    return isinstance(a, np.ndarray) or array_module(a) is not np


def _flat_offsets(model):
    offs, k = {}, 0
    for w in model.trainable_weights:
        offs[id(w)] = (k, int(w.data.size), tuple(w.shape))
        k += int(w.data.size)
    return offs, k


class _Slot:
    """One entry of an optimizer's ``optimizer/vars`` list: a live state array (``array``,
    written and read in place), or a counter read through ``get`` and set through ``put``."""

    def __init__(self, label, array=None, get=None, put=None, kind="f"):
        self.label, self.array, self.get, self.put, self.kind = label, array, get, put, kind

    def value(self):
        return self.array if self.array is not None else self.get()

    @property
    def shape(self):
        return tuple(self.array.shape) if self.array is not None else ()


def _iteration_slot(opt):
    return _Slot(f"{opt.name}/iteration", get=lambda: np.int64(opt.iterations),
                 put=lambda v: setattr(opt, "iterations", v), kind="iter")


def _learning_rate_slot(opt):
    def put(v):
        opt.learning_rate = v
    return _Slot(f"{opt.name}/learning_rate",
                 get=lambda: np.float32(float(host_array(getattr(opt.learning_rate, "data",
                                                                opt.learning_rate)))),
                 put=put, kind="lr")


def _constant_slot(label, value):
    """A variable Keras keeps that carries nothing here (a wrapper's own learning rate, 0)."""
    return _Slot(label, get=lambda: value, put=lambda v: None, kind="any")


def _variable_states(opt, model, variables):
    """[(variable, {slot name: live array})] of a plain optimizer over ``variables`` (in
    Keras's order), or None when it has no per-variable state yet."""
    if not variables:
        return []
    if opt.built and all(id(v) in opt._tv_index for v in variables):
        return [(v, opt._state_of(v)) for v in variables]
    flat = opt._flat_state
    offs, total = _flat_offsets(model)
    if flat is not None and flat.get("_size") == total and all(id(v) in offs for v in variables):
        out = []
        for v in variables:
            start, size, shape = offs[id(v)]
            out.append((v, {n: a[start:start + size].reshape(shape) for n, a in flat.items()
                            if _is_array(a) and n[0] != "_" and a.ndim == 1 and
                            a.size == total}))
        return out
    return None


def _plain_plan(opt, model, variables):
    """The slots of a plain optimizer as Keras lists its variables: iteration, learning rate
    (a number, not a schedule), the base slots (EMA averages, gradient accumulators) over every
    variable, then the rule's slots per group made together, interleaved per variable."""
    plan = [_iteration_slot(opt)]
    if not callable(opt._learning_rate):
        plan.append(_learning_rate_slot(opt))
    states = _variable_states(opt, model, variables)
    if not states:
        return plan
    for n in _BASE_SLOTS:
        if n in states[0][1]:
            plan += [_Slot(f"{opt.name}/{v.path}_{n}", st[n]) for v, st in states]
    names = []
    for _, st in states:
        names += [n for n in opt._var_names(st) if n not in names]
    for group in _slot_plan(opt, names):
        for v, st in states:
            mine = opt._var_names(st)
            plan += [_Slot(f"{opt.name}/{v.path}_{n}", st[n]) for n in group if n in mine]
    return plan


def _is_loss_scale(opt):
    return type(opt).__name__ == "LossScaleOptimizer" and hasattr(opt, "inner_optimizer")


def _is_multi(opt):
    return type(opt).__name__ == "MultiOptimizer" and hasattr(opt, "optimizers")


def optimizer_plan(opt, model, variables=None):
    """Every variable of ``opt`` in the order Keras 3's ``optimizer.variables`` lists them (what
    ``optimizer/vars`` of ``model.weights.h5`` holds), as :class:`_Slot` entries.

    * a plain optimizer: :func:`_plain_plan` over the model's trainable variables in Keras's
      order (the ones it was built on);
    * ``LossScaleOptimizer``: its own iteration (never advanced: the inner optimizer counts),
      its learning rate (0), ``step_counter``, ``dynamic_scale``, then the inner optimizer's
      variables;
    * ``MultiOptimizer``: its iteration (the calls), its learning rate (0), then each
      sub-optimizer's variables in ``optimizers`` order, each over the variables it updates.
    """
    if variables is None:
        variables = keras_trainable_order(model)
    if _is_loss_scale(opt):
        plan = [_Slot(f"{opt.name}/iteration", get=lambda: np.int64(opt._iterations),
                      put=lambda v: None, kind="iter"),
                _constant_slot(f"{opt.name}/learning_rate", np.float32(0.0)),
                _Slot(f"{opt.name}/step_counter", opt.step_counter.data, kind="count"),
                _Slot(f"{opt.name}/dynamic_scale", opt.dynamic_scale.data, kind="scale")]
        return plan + optimizer_plan(opt.inner_optimizer, model, variables)
    if _is_multi(opt):
        def put(v):
            opt._iterations = int(v)
        plan = [_Slot(f"{opt.name}/iteration", get=lambda: np.int64(opt._iterations), put=put,
                      kind="iter"),
                _constant_slot(f"{opt.name}/learning_rate", np.float32(0.0))]
        for sub in opt.optimizers:
            mine = [v for v in variables if id(v) in sub._tv_index] if sub.built else []
            plan += _plain_plan(sub, model, mine)
        return plan
    if opt.built and opt._tv_index:      # (built on part of the model: its own variables)
        variables = [v for v in variables if id(v) in opt._tv_index]
    return _plain_plan(opt, model, variables)


def _sub_groups(opt):
    """[(group path under ``optimizer``, optimizer)] of the optimizers a wrapper holds, as Keras
    walks them: ``inner_optimizer``, or ``optimizers/<snake-case class name>`` made unique."""
    if _is_loss_scale(opt):
        return [("inner_optimizer", opt.inner_optimizer)] + [
            ("inner_optimizer/" + p, o) for p, o in _sub_groups(opt.inner_optimizer)]
    if _is_multi(opt):
        out, used = [], {}
        for sub in opt.optimizers:
            name = _snake(type(sub).__name__)
            if name in used:
                used[name] += 1
                name = f"{name}_{used[name]}"
            else:
                used[name] = 0
            out.append((f"optimizers/{name}", sub))
        return out
    return []


# ------------------------------------------------------------------ writing
def _fill_weights(f, model, include_optimizer=False):
    for path, name, weights in layout(model):
        g = f.create_group(f"{path}/vars" if path else "vars")
        g.attrs["name"] = name
        for i, w in enumerate(weights):
            g.create_dataset(str(i), data=host_array(w.data))
    opt = getattr(model, "optimizer", None)
    if include_optimizer and opt is not None:
        _fill_optimizer(f, model, opt)


def _fill_optimizer(f, model, opt):
    """``optimizer/vars`` as Keras writes it (every variable of :func:`optimizer_plan`), and for a
    wrapper the groups of the optimizers it holds (``optimizer/inner_optimizer/vars``,
    ``optimizer/optimizers/<name>/vars``) with their own variables, as Keras also writes them."""
    korder = keras_trainable_order(model)

    def write(path, o, plan):
        g = f.create_group(path)
        g.attrs["name"] = getattr(o, "name", type(o).__name__.lower())
        for i, slot in enumerate(plan):
            g.create_dataset(str(i), data=host_array(slot.value()))
    write("optimizer/vars", opt, optimizer_plan(opt, model, korder))
    for path, sub in _sub_groups(opt):
        if _is_multi(opt):
            mine = [v for v in korder if id(v) in sub._tv_index] if sub.built else []
        else:
            mine = korder
        write(f"optimizer/{path}/vars", sub, optimizer_plan(sub, model, mine))


def weights_bytes(model, include_optimizer=False):
    return h5_bytes(lambda f: _fill_weights(f, model, include_optimizer))


def save_weights(model, path):
    if not model.built:
        raise ValueError(f"save_weights: model {model.name!r} has no weights yet; build it first")
    data = weights_bytes(model)
    with atomic_write(path) as raw:
        raw.write(data)


def save_model(model, path, include_optimizer=True):
    if not model.built:
        raise ValueError(f"save: model {model.name!r} is not built yet; build it first")
    spec = keras_config.model_to_keras(_saving.serialize_model(model), model)
    if getattr(model, "compiled", False):
        comp = {"loss": _saving._serialize_loss(model._loss_spec),
                "metrics": _saving._serialize_metric(model._metrics_spec),
                "weighted_metrics": _saving._serialize_metric(model._weighted_spec),
                "loss_weights": model._loss_weights_spec}
        if model.optimizer is not None:
            comp["optimizer"] = {"class_name": type(model.optimizer).__name__,
                                 "config": _saving._optimizer_config(model.optimizer)}
        spec["compile_config"] = keras_config.compile_to_keras(comp)
    meta = {"keras_version": KERAS_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    entries = {"metadata.json": json.dumps(meta).encode("utf-8"),
               "config.json": json.dumps(spec).encode("utf-8"),
               "model.weights.h5": weights_bytes(model, include_optimizer and
                                                 getattr(model, "compiled", False))}
    atomic_write_zip(path, entries)


# ------------------------------------------------------------------ reading
def _read_vars(r, root, path, n, label):
    """The ``n`` arrays of group ``path/vars`` (None when the group is absent and n == 0)."""
    g = r.group(root, path, required=False) if path else root
    vg = r.get(g, "vars") if g is not None else None
    if vg is None:
        if n == 0:
            return []
        raise FileFormatError(r.path, f"layer {label!r}: the weights file has no group "
                                      f"{(path + '/vars') if path else 'vars'!r}")
    if not isinstance(vg, r.h5py.Group):
        raise FileFormatError(r.path, f"layer {label!r}: {vg.name!r} is not a group")
    names = r.keys(vg)
    if sorted(names) != sorted(str(i) for i in range(len(names))):
        raise FileFormatError(r.path, f"layer {label!r}: {vg.name!r} holds {sorted(names)[:8]}, "
                                      f"expected datasets named 0..N-1")
    return [r.array(r.get(vg, str(i)), f"layer {label!r} variable {vg.name}/{i}")
            for i in range(len(names))]


def _assign(w, a, path, label):
    if np.dtype(w.dtype).kind != "f":
        raise FileFormatError(path, f"layer {label!r} weight {w.path!r} has dtype {w.dtype}; "
                                    f"weights must be real floats")
    w.assign(a.astype(w.dtype, copy=False))


def read_weights_into(model, r, root, skip_mismatch=False, label_path=None):
    """Assign the weights under ``root`` (an open :class:`H5Reader` group) to ``model``."""
    todo, skipped = [], []
    for path, name, weights in layout(model):
        try:
            arrays = _read_vars(r, root, path, len(weights), name)
            if len(arrays) != len(weights):
                raise FileFormatError(r.path, f"layer {name!r} ({path or 'the model'}) expects "
                                              f"{len(weights)} variables, the file holds "
                                              f"{len(arrays)} ({[a.shape for a in arrays]})")
            for w, a in zip(weights, arrays):
                if tuple(a.shape) != tuple(w.shape):
                    raise FileFormatError(r.path, f"layer {name!r} weight {w.path!r}: shape "
                                                  f"{tuple(w.shape)} in the model, "
                                                  f"{tuple(a.shape)} in the file ({path}/vars)")
        except FileFormatError as e:
            if not skip_mismatch:
                raise
            skipped.append(f"{name!r} ({str(e).split(': ', 1)[-1]})")
            continue
        todo.extend((w, a, name) for w, a in zip(weights, arrays))
    for w, a, name in todo:
        _assign(w, a, r.path, name)
    if skipped:
        warnings.warn(f"A total of {len(skipped)} objects could not be loaded from {r.path!r} "
                      f"(skip_mismatch=True): {', '.join(skipped)}", stacklevel=4)


def count_values(r, root):
    """How many numeric values the datasets under ``root`` declare (for the loading budget)."""
    total = 0
    stack = [root]
    while stack:
        g = stack.pop()
        for k in r.keys(g):
            o = r.get(g, k)
            if isinstance(o, r.h5py.Group):
                stack.append(o)
            elif isinstance(o, r.h5py.Dataset):
                try:
                    total += int(np.prod(o.shape, dtype=np.int64)) if o.shape else 1
                except Exception:
                    pass
    return total


def load_weights(model, path, skip_mismatch=False):
    if not model.built:
        raise ValueError(f"load_weights: build model {model.name!r} first (give an input shape or "
                         f"call it on data), so its weights exist")
    with H5Reader(path, what="Keras weights file (.weights.h5)") as r:
        read_weights_into(model, r, r.f, skip_mismatch)


def load_weights_from_archive(model, path, skip_mismatch=False):
    if not model.built:
        raise ValueError(f"load_weights: build model {model.name!r} first")
    with ZipArchive(path, "Keras model file (.keras)") as arc:
        data = arc.read("model.weights.h5", MAX_WEIGHTS_BYTES)
    with H5Reader(data, label=f"{arc.path}!model.weights.h5",
                  what="model.weights.h5 member") as r:
        read_weights_into(model, r, r.f, skip_mismatch)


def is_keras_archive(names):
    return "config.json" in names and "model.weights.h5" in names and "axone.json" not in names


def _check_slot(slot, a, path, k):
    """The value ``a`` read for ``slot`` (variable ``k`` of ``optimizer/vars``), checked."""
    if tuple(a.shape) != slot.shape:
        raise FileFormatError(path, f"optimizer variable {k} ({slot.label}) has shape "
                                    f"{tuple(a.shape)}, expected {slot.shape}")
    if slot.kind in ("iter", "count"):
        x = float(a)
        if not np.isfinite(x) or x != int(x) or not 0 <= x <= 2 ** 53:
            raise FileFormatError(path, f"optimizer variable {k} ({slot.label}) must be a "
                                        f"non-negative integer, received {x!r}")
        return int(x)
    if slot.kind in ("lr", "scale"):
        x = float(a)
        if not np.isfinite(x) or x < 0 or (slot.kind == "scale" and x <= 0):
            raise FileFormatError(path, f"optimizer variable {k} ({slot.label}) must be a finite "
                                        f"{'positive' if slot.kind == 'scale' else 'non-negative'}"
                                        f" number, received {x!r}")
        return x
    if slot.kind == "f":
        if not np.isfinite(a).all():         # (Keras keeps Adafactor's unused slots as int 0)
            raise FileFormatError(path, f"optimizer variable {k} ({slot.label}) must hold finite "
                                        f"real numbers")
    return a


def install_optimizer_values(opt, model, vals, path):
    """Set ``opt``'s state from ``vals`` (Keras's ``optimizer/vars`` list, see
    :func:`optimizer_plan`); returns whether it was installed.

    A list of the counters only (an optimizer saved before its first step) sets the counters. A
    list of another length than the optimizer's variables is skipped with Keras's warning (the
    state starts fresh); a value of the wrong shape or kind is a FileFormatError and nothing
    changes."""
    plan = optimizer_plan(opt, model)
    if len(vals) != len(plan):
        _saving._build_on_model(opt, model)
        plan = optimizer_plan(opt, model)
    if len(vals) != len(plan):
        counters = [s for s in plan if s.array is None or s.kind in ("count", "scale")]
        if len(vals) != len(counters):
            warnings.warn(f"Skipping variable loading for optimizer '{opt.name}', because it has "
                          f"{len(plan)} variables whereas the saved optimizer has {len(vals)} "
                          f"variables; its state starts fresh", stacklevel=4)
            return False
        plan = counters
    checked = [_check_slot(s, a, path, k) for k, (s, a) in enumerate(zip(plan, vals))]
    for slot, a in zip(plan, checked):
        if slot.array is None:
            slot.put(a)
        elif type(slot.array) is np.ndarray:
            np.copyto(slot.array, np.asarray(a), casting="unsafe")
        else:               # a device state array: the host value copied there, in place
            xp = array_module(slot.array)
            slot.array[...] = xp.asarray(np.asarray(a).astype(slot.array.dtype, copy=False))
    for o in [opt] + [sub for _, sub in _sub_groups(opt)]:
        if "_u_step" in o.__dict__:
            o._after_set_state()
    return True


def _restore_optimizer(model, r, path):
    g = r.group(r.f, "optimizer", required=False)
    if g is None or r.get(g, "vars") is None:
        return
    vg = r.get(g, "vars")
    if not isinstance(vg, r.h5py.Group):
        raise FileFormatError(path, f"{vg.name!r} is not a group")
    names = r.keys(vg)
    if sorted(names) != sorted(str(i) for i in range(len(names))):
        raise FileFormatError(path, f"{vg.name!r} holds {sorted(names)[:8]}, expected datasets "
                                    f"named 0..N-1")
    vals = [r.array(r.get(vg, str(i)), f"optimizer variable {i}") for i in range(len(names))]
    if vals:
        install_optimizer_values(model.optimizer, model, vals, path)


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    from .. import losses, metrics as metrics_mod, constraints
    from .. import object_registration as _registry
    with ZipArchive(path, "Keras model file (.keras)") as arc:
        path = arc.path
        if "config.json" not in arc:
            raise FileFormatError(path, "the .keras file has no config.json")
        spec = arc.read_json("config.json")
        data = arc.read("model.weights.h5", MAX_WEIGHTS_BYTES) \
            if "model.weights.h5" in arc else None
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"load_model: custom_objects must be a dict {{name: object}}, received "
                        f"{type(custom_objects).__name__}")
    if not isinstance(spec, dict):
        raise FileFormatError(path, "config.json does not hold an object")
    check_lambdas(spec, path, safe_mode)
    cc = spec.get("compile_config")
    r = H5Reader(data, label=f"{path}!model.weights.h5", what="model.weights.h5 member") \
        if data is not None else None
    try:
        budget = count_values(r, r.f) if r is not None else 0
        with _registry.custom_object_scope(custom_objects):
            axone_spec = _saving._rebuild(path, "the saved architecture",
                                          keras_config.model_from_keras, spec)
            with loading_budget(path, budget):
                with constraints.custom_objects_scope(custom_objects):
                    model = _saving._rebuild(path, "the saved architecture",
                                             _saving.deserialize_model, axone_spec,
                                             custom_objects)
            if r is not None:
                read_weights_into(model, r, r.f)
            elif model.weights:
                raise FileFormatError(path, "the .keras file has no model.weights.h5")
            if compile and isinstance(cc, dict) and cc.get("loss") is not None:
                comp = _saving._rebuild(path, "the saved compile arguments",
                                        keras_config.compile_from_keras, cc)
                _saving._rebuild(path, "the saved compile arguments",
                                 _saving._compile_from_entry, model, comp, {}, path,
                                 custom_objects, losses, metrics_mod)
                if r is not None and model.optimizer is not None:
                    _restore_optimizer(model, r, path)
    finally:
        if r is not None:
            r.close()
    return model


def check_lambdas(spec, path, safe_mode):
    """Refuse a Lambda whose function is Python bytecode: always, as loading never runs code
    from a file (Keras runs it with ``safe_mode=False``)."""
    stack = [spec]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if v.get("class_name") == "__lambda__":
                extra = "" if safe_mode else " (axone never executes code from a file, also " \
                                             "with safe_mode=False)"
                raise FileFormatError(path, f"the model holds a Lambda whose function is Python "
                                            f"bytecode; loading it would run code from the file"
                                            f"{extra}. Register the function with "
                                            f"keras.saving.register_keras_serializable() and "
                                            f"use it by name")
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
