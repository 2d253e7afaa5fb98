"""Saving and loading: a documented zip of JSON and .npy arrays, never pickle.

A model file (``model.save(path)``) is an uncompressed zip archive holding
  ``axone.json``      {"format": "axone.model", "format_version": 1, "model": name,
                      "weights": [{"path", "shape", "dtype"} for each weight]}
  ``config.json``     the architecture: {"class_name", "config"} with every layer's config
                      and, for functional models, the graph (inbound nodes, inputs, outputs;
                      a node is its input references then {"structure", "kwargs"}: the call's
                      keyword arguments, a symbolic one as {"__tensor__": its reference's index})
  ``compile.json``    the compile arguments (loss, metrics, loss_weights) and the optimizer:
                      {"class_name", "config", "state": {"iterations", "flat_size", ...}}
                      (when compiled)
  ``weights/NNNN.npy`` each weight in ``model.weights`` order (NumPy .npy, no pickle)
  ``optimizer/NAME.npy`` the optimizer's flat state vectors, one value per trainable parameter;
                      for an optimizer whose state is not all flat (Adafactor's factored
                      moments) its variables after the counters as ``vNNNN`` (their shapes in
                      the state's "variables"); a LossScaleOptimizer's state is its inner
                      optimizer's (``inner.NAME``) with "loss_scale" and "step_counter", a
                      MultiOptimizer's one such state per optimizer (``K.vNNNN``)
A weights file (``save_weights``) holds ``axone.json`` ("axone.weights") and ``weights/`` only.
A BackupAndRestore backup ("axone.backup") holds ``axone.json``, ``weights/``, ``optimizer.json``
(the optimizer entry of ``compile.json``), ``optimizer/`` and ``training_state.json``
({"epoch": last completed epoch}) in the same archive, so weights and epoch change together.
Files of format version 1 without ``training_state.json`` (older backups, with the epoch in a
separate ``training_state.json`` file) still load.

Writes are atomic (:func:`axone.fileio.atomic_write_zip`): the archive is written to a temporary
file beside the target, flushed, then renamed over it; a crash mid-write leaves the previous file
intact, and the next write removes temporary files left by killed writers.

Reading is bounded by what the file holds: only regular files are opened; each member's declared
size and compression ratio is checked before it is read; JSON members are bounded in size and
nesting depth; each ``.npy`` header is checked against the shape ``axone.json`` declares (and must
be a real float type) before exactly that many bytes are read; and the architecture is rebuilt
under a budget of the weight values the file holds, so a configuration declaring larger weights
fails before they are allocated.

Errors: every malformed file — truncated, corrupted, of another format, inconsistent with itself
(weights that do not fit the architecture, an optimizer state of the wrong length), or with a
configuration that cannot be rebuilt — raises :class:`axone.fileio.FileFormatError`, a
``ValueError`` subclass, whose message starts with the path and says what is wrong (the cause is
chained).  A missing file raises ``FileNotFoundError``.  An optimizer state that does not match the
optimizer's configuration (other buffers than the configuration needs) is skipped with a warning
and starts fresh, as Keras does.
"""
import io
import json
import math
import os
import warnings

import numpy as np

from .. import object_registration as _registry
from ..fileio import (FileFormatError, ZipArchive, atomic_write_zip, loading_budget,  # noqa: F401
                      remove_stale_temps)

# The model classes the architecture reader builds.  models/model.py and models/sequential.py
# register them as they are defined: they import this module, never the reverse.
_MODEL_CLASSES = {}


def register_model_class(name, cls):
    """Make ``cls`` the class that a saved ``{"class_name": name}`` model is rebuilt as."""
    _MODEL_CLASSES[name] = cls
    _registry.BUILTIN_MODEL_CLASSES[name] = cls
    return cls


def model_entry(model):
    """Keras's serialized form of a model (``module``, ``class_name``, ``config``,
    ``registered_name``, and ``build_config`` for a subclassed one): what ``to_json`` writes."""
    entry = dict(serialize_model(model))
    Model, Sequential = _model_classes()
    if type(model) in (Model, Sequential):
        entry.setdefault("module", "keras")
        entry.setdefault("registered_name", None)
    else:
        entry.setdefault("module", type(model).__module__)
        entry.setdefault("registered_name", _registry.get_registered_name(type(model)))
    return entry


def model_from_config(spec, custom_objects=None):
    """A model from :func:`model_entry`'s dict (``custom_objects`` and the open scopes name the
    user's classes and functions)."""
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"custom_objects must be a dict {{name: object}}, received "
                        f"{type(custom_objects).__name__}")
    with _registry.custom_object_scope(custom_objects):
        return deserialize_model(spec, custom_objects)


def model_from_json(json_string, custom_objects=None):
    """A model (fresh weights) from ``model.to_json()``'s string, as Keras's
    ``models.model_from_json``."""
    if not isinstance(json_string, (str, bytes, bytearray)):
        raise TypeError(f"model_from_json: expected a JSON string, received "
                        f"{type(json_string).__name__}")
    try:
        spec = json.loads(json_string)
    except ValueError as e:
        raise ValueError(f"model_from_json: the string is not valid JSON ({e})") from None
    return model_from_config(spec, custom_objects)


def _model_classes():
    return _MODEL_CLASSES["Model"], _MODEL_CLASSES["Sequential"]


# Keras's file formats (.keras, .weights.h5, .h5): axone.formats registers the function that
# picks the format of a path; it returns NotImplemented for axone's own archive.
_FORMAT_DISPATCH = []


def register_format_dispatch(fn):
    _FORMAT_DISPATCH[:] = [fn]


def _dispatch(op, path, *args, **kwargs):
    if not _FORMAT_DISPATCH:
        return NotImplemented
    return _FORMAT_DISPATCH[0](op, path, *args, **kwargs)

FORMAT_VERSION = 1

#: errors that rebuilding a configuration from a malformed file can raise (become FileFormatError)
_REBUILD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, LookupError,
                   NotImplementedError, ArithmeticError, RecursionError, UnicodeError, AssertionError)


# ------------------------------------------------------------------ archive io
def _host(a):
    """``a`` as a host array: weights and optimizer state on a device are copied back, so a
    file written on a device reads on the CPU."""
    if type(a) is np.ndarray:
        return a
    from ..device import array_module, to_numpy
    return to_numpy(a) if array_module(a) is not np else a


def _array_bytes(a):
    a = _host(a)
    buf = io.BytesIO()
    # np.require keeps a 0-d weight 0-d (np.ascontiguousarray would make it 1-d)
    np.lib.format.write_array(buf, np.require(a, requirements='C'), allow_pickle=False)
    return buf.getvalue()


def _is_shape(s):
    return isinstance(s, list) and len(s) <= 32 and all(type(d) is int and d >= 0 for d in s)


def open_archive(path, expected):
    """Open and validate an axone archive; returns (ZipArchive, metadata).

    The metadata's format must be one of ``expected``, its version not newer than this axone's,
    and its weight list well formed.
    """
    what = "axone " + " or ".join(e.split(".")[-1] for e in expected) + " file"
    remove_stale_temps(path)          # temporary files of writes to this path that were killed
    arc = ZipArchive(path, what)
    try:
        if "axone.json" not in arc:
            raise FileFormatError(arc.path, "is a zip file but not an axone file (no axone.json)")
        meta = arc.read_json("axone.json", max_bytes=16 << 20)
        if not isinstance(meta, dict):
            raise FileFormatError(arc.path, "axone.json does not hold an object")
        fmt = meta.get("format")
        if fmt not in expected:
            raise FileFormatError(arc.path, f"holds {fmt!r}, expected {' or '.join(expected)}")
        version = meta.get("format_version", 0)
        if type(version) is not int:
            raise FileFormatError(arc.path, f"format_version {version!r} is not an integer")
        if version > FORMAT_VERSION:
            raise FileFormatError(arc.path, f"was written by a newer axone (format version "
                                            f"{version}); upgrade axone to read it")
        infos = meta.get("weights")
        if infos is None:
            raise FileFormatError(arc.path, "axone.json has no 'weights' list")
        if not isinstance(infos, list) or not all(
                isinstance(i, dict) and isinstance(i.get("path"), str) and _is_shape(i.get("shape"))
                for i in infos):
            raise FileFormatError(arc.path, "axone.json: 'weights' must list {path, shape, dtype} "
                                            "entries with non-negative integer shapes")
        meta["weights"] = infos          # every reader below relies on this list
    except BaseException:
        arc.close()
        raise
    return arc, meta


def _read_weight_arrays(arc, meta):
    """The weights listed in axone.json, each checked against its declared shape."""
    return [arc.read_npy(f"weights/{i:04d}.npy", shape=info["shape"])
            for i, info in enumerate(meta.get("weights", []))]


def _read_optimizer_arrays(arc):
    out = {}
    for name in arc.names():
        if name.startswith("optimizer/") and name.endswith(".npy"):
            key = name[len("optimizer/"):-4]
            a = arc.read_npy(name)
            if a.ndim != 1:
                raise FileFormatError(arc.path, f"optimizer state {name!r} has shape {a.shape}; "
                                                f"it must be a vector")
            out[key] = a
    return out


# ------------------------------------------------------------------ weights
def _weights_entries(model):
    weights = model.weights
    entries = {}
    names = []
    for i, w in enumerate(weights):
        entries[f"weights/{i:04d}.npy"] = _array_bytes(w.data)
        names.append({"path": w.path, "shape": list(w.shape), "dtype": str(w.dtype)})
    return entries, names


def save_weights(model, path):
    """Write every weight of ``model`` (``model.weights`` order) to ``path`` atomically."""
    if _dispatch("save_weights", path, model) is not NotImplemented:
        return
    if not model.built:
        raise ValueError(f"save_weights: model {model.name!r} has no weights yet; build it (call it "
                         f"on data, fit, or give an input shape) first")
    entries, names = _weights_entries(model)
    meta = {"format": "axone.weights", "format_version": FORMAT_VERSION, "weights": names,
            "model": model.name}
    entries["axone.json"] = json.dumps(meta, indent=1).encode("utf-8")
    atomic_write_zip(path, entries)


def _check_real_float(model, path):
    for w in model.weights:
        if np.dtype(w.dtype).kind != "f":
            raise FileFormatError(path, f"layer {w.path.split('/')[0]!r} weight {w.path!r} has dtype "
                                        f"{w.dtype} in the saved architecture; weights must be real "
                                        f"floats")


def assign_weights(model, arrays, infos, path):
    """Check count and shapes layer by layer, then assign; names the first mismatch."""
    weights = model.weights
    if len(arrays) != len(weights):
        first = None
        for w, info in zip(weights, infos):
            if tuple(info["shape"]) != tuple(w.shape):
                first = (w, info)
                break
        where = ""
        if first is not None:
            where = (f"; first mismatch at {first[0].path!r}: model {tuple(first[0].shape)}, "
                     f"file {tuple(first[1]['shape'])} ({first[1]['path']!r})")
        raise FileFormatError(path, f"holds {len(arrays)} weights but model {model.name!r} has "
                                    f"{len(weights)}: the architectures differ{where}")
    for w, a, info in zip(weights, arrays, infos):
        if tuple(a.shape) != tuple(w.shape):
            layer = w.path.split("/")[0]
            raise FileFormatError(
                path, f"does not fit model {model.name!r}: layer {layer!r} weight {w.path!r} has "
                      f"shape {tuple(w.shape)} in the model but {tuple(a.shape)} in the file "
                      f"({info.get('path')!r})")
    _check_real_float(model, path)
    for w, a in zip(weights, arrays):
        w.assign(a.astype(w.dtype, copy=False))


def _layer_groups(paths):
    """Consecutive runs of weight indices that share a layer (the path before the last '/')."""
    groups = []
    for i, p in enumerate(paths):
        layer = p.rsplit("/", 1)[0] if "/" in p else p
        if groups and groups[-1][0] == layer:
            groups[-1][1].append(i)
        else:
            groups.append((layer, [i]))
    return groups


def _assign_skipping(model, arrays, infos, path, by_name):
    """``load_weights(skip_mismatch=True)`` / ``by_name=True``: layer by layer, as Keras.

    Model and file weights are grouped by layer and paired in order (by layer name with
    ``by_name``); a layer whose weight count or shapes differ is skipped — a ValueError without
    ``skip_mismatch`` — and each skipped layer is named in one warning, as Keras's
    "A total of N objects could not be loaded".
    """
    weights = model.weights
    mine = _layer_groups([w.path for w in weights])
    theirs = _layer_groups([i["path"] for i in infos])
    if by_name:
        index = {}
        for name, idx in theirs:
            index.setdefault(name, idx)
        pairs = [(name, idx, index.get(name)) for name, idx in mine]
    else:
        pairs = [(name, idx, theirs[k][1] if k < len(theirs) else None)
                 for k, (name, idx) in enumerate(mine)]
    skipped = []
    todo = []
    for name, idx, src in pairs:
        if src is None:
            if not by_name:
                skipped.append(f"{name!r} (not in the file)")
            continue
        ok = len(idx) == len(src) and all(tuple(weights[i].shape) == tuple(arrays[j].shape)
                                          for i, j in zip(idx, src))
        if not ok:
            model_shapes = [tuple(weights[i].shape) for i in idx]
            file_shapes = [tuple(arrays[j].shape) for j in src]
            skipped.append(f"{name!r} (model {model_shapes}, file {file_shapes})")
            continue
        todo.extend(zip(idx, src))
    if not by_name and len(theirs) > len(mine):
        skipped.append(f"{len(theirs) - len(mine)} more layer(s) in the file than in the model")
    return todo, skipped


def load_weights(model, path, skip_mismatch=False, by_name=False):
    """Load weights saved by ``save_weights``, ``save`` or BackupAndRestore into ``model``.

    Shapes must match layer by layer; with ``skip_mismatch=True`` a layer whose weights do not
    match is left as it is and named in a warning (Keras's behaviour); with ``by_name=True`` the
    model's layers take the weights of the file's layers of the same name.
    """
    if _dispatch("load_weights", path, model, skip_mismatch=skip_mismatch,
                 by_name=by_name) is not NotImplemented:
        return
    arc, meta = open_archive(path, ("axone.weights", "axone.model", "axone.backup"))
    with arc:
        arrays = _read_weight_arrays(arc, meta)
    if not model.built:
        raise ValueError(f"load_weights: build model {model.name!r} first (give an input shape or "
                         f"call it on data), so its weights exist")
    if not skip_mismatch and not by_name:
        assign_weights(model, arrays, meta["weights"], arc.path)
        return
    todo, skipped = _assign_skipping(model, arrays, meta["weights"], arc.path, by_name)
    if skipped and not skip_mismatch:
        raise FileFormatError(arc.path, f"does not fit model {model.name!r}: layer "
                                        f"{skipped[0]}; pass skip_mismatch=True to skip such layers")
    _check_real_float(model, arc.path)
    weights = model.weights
    for i, j in todo:
        weights[i].assign(arrays[j].astype(weights[i].dtype, copy=False))
    if skipped:
        warnings.warn(f"A total of {len(skipped)} objects could not be loaded from {arc.path!r} "
                      f"(skip_mismatch=True): {', '.join(skipped)}", stacklevel=3)


# ------------------------------------------------------------------ whole model
def _serialize_metric(m):
    if isinstance(m, str) or m is None:
        return m
    if isinstance(m, (list, tuple)):
        return [_serialize_metric(x) for x in m]
    if isinstance(m, dict):
        return {k: _serialize_metric(v) for k, v in m.items()}
    if hasattr(m, "get_config"):
        out = {"class_name": type(m).__name__, "config": m.get_config()}
        if _registry.is_registered(type(m)):
            out["registered_name"] = _registry.get_registered_name(type(m))
        fn = out["config"].get("fn") if isinstance(out["config"], dict) else None
        if callable(fn):
            out["config"] = dict(out["config"], fn=_function_entry(
                _registry.function_name_for_saving(fn, f"the metric {m.name!r}")))
        return out
    if callable(m):
        return _function_entry(_registry.function_name_for_saving(m, "the metric"))
    raise ValueError(f"save: cannot serialize the metric {m!r}; pass metrics by name or as "
                     f"axone metric objects")


def _serialize_loss(l):
    from .. import losses
    if l is None or isinstance(l, str):
        return l
    if isinstance(l, (list, tuple)):
        return [_serialize_loss(x) for x in l]
    if isinstance(l, dict):
        return {k: _serialize_loss(v) for k, v in l.items()}
    s = losses.serialize(l)
    if isinstance(s, str) and not (s in _builtin_loss_names() and losses.get(s) is l):
        # a user's loss function: stored by its registered (or plain) name, as Keras stores it
        return _function_entry(_registry.function_name_for_saving(l, "the loss"))
    if isinstance(s, dict) and _registry.is_registered(type(l)):
        s = dict(s, registered_name=_registry.get_registered_name(type(l)))
    return s


def _builtin_loss_names():
    from .. import losses
    return set(losses._FUNCTIONS) | set(losses._CLASSES)


def _function_entry(name):
    """Keras's entry for a function named in a saved configuration."""
    return {"module": "builtins", "class_name": "function", "config": name,
            "registered_name": "function"}


def _optimizer_config(opt):
    """``opt.get_config()`` with a schedule learning rate serialized, and the optimizers a
    LossScaleOptimizer or MultiOptimizer wraps written the same way."""
    from .. import optimizers
    from ..optimizers import schedules
    if isinstance(opt, optimizers.LossScaleOptimizer):
        cfg = opt.get_config()
        inner = opt.inner_optimizer
        cfg["inner_optimizer"] = {"class_name": type(inner).__name__,
                                  "config": _optimizer_config(inner)}
        return cfg
    if isinstance(opt, optimizers.MultiOptimizer):
        cfg = opt.get_config()          # refuses a callable optimizer_map
        m = opt._optimizer_map

        def entry(o):
            return {"class_name": type(o).__name__, "config": _optimizer_config(o)}
        cfg["optimizer_map"] = {"class_name": "OptimizerMap", "config": {
            "default_optimizer": entry(m.default_optimizer),
            "optimizer_map": {k: entry(o) for k, o in m.items()}}}
        return cfg
    cfg = opt.get_config()
    lr = opt._learning_rate
    if callable(lr):
        if isinstance(lr, schedules.LearningRateSchedule):
            cfg["learning_rate"] = schedules.serialize(lr)
        else:
            raise ValueError("save: a learning rate given as a plain function cannot be saved; "
                             "use an axone.optimizers.schedules object")
    return cfg


def _counters(opt):
    state = {"iterations": opt.iterations}
    if getattr(opt, "gradient_accumulation_steps", None):
        state["calls"] = int(opt._iterations)    # mid-cycle position of gradient accumulation
    for k in ("_u_product", "_u_step"):
        if k in opt.__dict__:
            state[k] = opt.__dict__[k]
    return state


def _variables_state(opt):
    """The state of an optimizer whose state is not all flat vectors (Adafactor's factored
    moments, a MultiOptimizer's per-group optimizers): its ``variables`` after the counters,
    each as a vector ``vNNNN`` with its shape in ``state["variables"]``."""
    state = _counters(opt)
    arrays = {}
    if not opt.built:
        state["variables"] = None
        return state, arrays
    own = opt.variables[opt._n_scalar_vars():]
    state["variables"] = [list(v.data.shape) for v in own]
    for i, v in enumerate(own):
        arrays[f"v{i:04d}"] = np.ascontiguousarray(_host(v.data)).reshape(-1)
    return state, arrays


def _optimizer_state(opt):
    """(state object, {name: vector}) of ``opt`` for the file."""
    from .. import optimizers
    if isinstance(opt, optimizers.LossScaleOptimizer):
        inner_state, inner_arrays = _optimizer_state(opt.inner_optimizer)
        state = {"iterations": opt.iterations, "loss_scale": float(opt._scale),
                 "step_counter": int(opt._counter), "inner": inner_state}
        return state, {f"inner.{k}": a for k, a in inner_arrays.items()}
    if isinstance(opt, optimizers.MultiOptimizer):
        state = {"iterations": int(opt._iterations), "built": bool(opt.built), "optimizers": []}
        arrays = {}
        for k, o in enumerate(opt.optimizers):
            st, arr = _variables_state(o)
            state["optimizers"].append(st)
            arrays.update({f"{k}.{n}": a for n, a in arr.items()})
        return state, arrays
    if opt._extra_names:
        return _variables_state(opt)
    state = _counters(opt)
    arrays = {}
    if opt._flat_state is not None:
        for name, arr in opt._flat_state.items():
            if not name.startswith("_") and hasattr(arr, "dtype") and hasattr(arr, "shape"):
                arrays[name] = _host(arr)
        state["flat_size"] = int(opt._flat_state["_size"])
    return state, arrays


def _optimizer_entries(opt):
    state, arrays = _optimizer_state(opt)
    return {"class_name": type(opt).__name__, "config": _optimizer_config(opt),
            "state": state}, arrays


def save_model(model, path, include_optimizer=True, save_format=None):
    if _dispatch("save_model", path, model, include_optimizer=include_optimizer,
                 save_format=save_format) is not NotImplemented:
        return
    if not model.built:
        raise ValueError(f"save: model {model.name!r} is not built yet; build it first")
    entries, names = _weights_entries(model)
    meta = {"format": "axone.model", "format_version": FORMAT_VERSION, "weights": names,
            "model": model.name}
    entries["config.json"] = json.dumps(serialize_model(model), indent=1).encode("utf-8")
    if getattr(model, "compiled", False):
        comp = compile_entry(model, optimizer=False)
        if include_optimizer and model.optimizer is not None:
            comp["optimizer"], arrays = _optimizer_entries(model.optimizer)
            for name, arr in arrays.items():
                entries[f"optimizer/{name}.npy"] = _array_bytes(arr)
        entries["compile.json"] = json.dumps(comp, indent=1).encode("utf-8")
    entries["axone.json"] = json.dumps(meta, indent=1).encode("utf-8")
    atomic_write_zip(path, entries)


def compile_entry(model, optimizer=True):
    """The arguments ``model`` was compiled with, as a JSON object (``{}`` when it is not
    compiled): losses and metrics serialized, and with ``optimizer`` the optimizer's class and
    config (its state stays out: a model compiled from this entry starts fresh)."""
    if not getattr(model, "compiled", False):
        return {}
    comp = {"loss": _serialize_loss(model._loss_spec), "metrics": _serialize_metric(model._metrics_spec),
            "weighted_metrics": _serialize_metric(model._weighted_spec),
            "loss_weights": model._loss_weights_spec}
    if optimizer and model.optimizer is not None:
        comp["optimizer"] = {"class_name": type(model.optimizer).__name__,
                             "config": _optimizer_config(model.optimizer)}
    return comp


def compile_from_entry(model, comp, custom_objects=None):
    """Compile ``model`` with the arguments of a :func:`compile_entry` (new metric objects and
    a new optimizer of the same config)."""
    from .. import losses, metrics
    comp = dict(comp)
    opt = comp.pop("optimizer", None)
    if opt is not None:
        comp["optimizer"] = dict(opt, state={})
    _compile_from_entry(model, comp, {}, "compile_config", custom_objects, losses, metrics)


def layer_config(layer):
    """``layer.get_config()`` with the user objects it holds named as they were registered:
    an attribute holding a registered function becomes Keras's function entry (its registered
    name), a registered class's config dict gains its ``registered_name``."""
    cfg = layer.get_config()
    if not isinstance(cfg, dict):
        raise TypeError(f"save: the get_config() of layer {layer.name!r} "
                        f"({type(layer).__name__}) must return a dict, received {cfg!r}")
    out = dict(cfg)
    for k, v in cfg.items():
        if k in ("name", "dtype", "trainable"):
            continue
        attr = layer.__dict__.get(k, None)
        if attr is None or attr is v:
            continue
        if _registry.is_registered(attr) and not isinstance(attr, type):
            if callable(attr) and not hasattr(attr, "get_config"):
                out[k] = _function_entry(_registry.get_registered_name(attr))
        elif isinstance(v, dict) and _registry.is_registered(type(attr)) and "class_name" in v:
            out[k] = dict(v, registered_name=_registry.get_registered_name(type(attr)))
    return out


def _class_entry(layer, config):
    """``{"class_name", "config"}`` of a layer, with ``module`` and ``registered_name`` for a
    registered class (Keras's form)."""
    entry = {"class_name": type(layer).__name__, "config": config}
    if _registry.is_registered(type(layer)):
        entry["module"] = type(layer).__module__
        entry["registered_name"] = _registry.get_registered_name(type(layer))
    return entry


def serialize_model(model):
    Model, Sequential = _model_classes()
    if isinstance(model, Sequential) and type(model).get_config is Sequential.get_config:
        cfg = model.get_config()
        cfg["layers"] = ([cfg["layers"][0]] if model._input_layer is not None else []) + [
            _class_entry(l, layer_config(l)) if not isinstance(l, Model) else
            dict(serialize_model(l), name=l.name) for l in model._seq_layers]
        out = {"class_name": "Sequential", "config": cfg}
        if type(model) is not Sequential:
            out = _class_entry(model, cfg)
            out["nested_class_name"] = "Sequential"
        return out
    if isinstance(model, Model) and model._is_graph:
        layers = []
        own = set(id(n) for n in model._nodes)

        def ref(t):
            layer, node, idx = t._history
            if type(layer).__name__ == "InputLayer":
                return [layer.name, 0, idx]
            mine = [n for n in layer._inbound_nodes if id(n) in own]
            return [layer.name, mine.index(node), idx]

        for layer in model.layers:
            nodes = []
            for node in layer._inbound_nodes:
                if id(node) not in own:
                    continue
                meta = {"structure": "list" if isinstance(node.inputs, (list, tuple)) else "single"}
                kwargs = _node_kwargs(layer, node)
                if kwargs:
                    meta["kwargs"] = kwargs
                nodes.append([ref(t) for t in node.flat_inputs] + [meta])
            if isinstance(layer, Model):
                nested = serialize_model(layer)
                entry = dict(nested, class_name=type(layer).__name__, name=layer.name,
                             inbound_nodes=nodes)
                entry["nested_class_name"] = nested.get("nested_class_name", nested["class_name"])
            else:
                entry = _class_entry(layer, layer_config(layer))
                entry.update(name=layer.name, inbound_nodes=nodes)
            layers.append(entry)
        return {"class_name": "Functional", "config": {
            "name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": [ref(t) for t in model._inputs],
            "output_layers": [ref(t) for t in model._outputs],
            "output_structure": "list" if isinstance(model._output_struct, (list, tuple)) else "single",
            "input_structure": "list" if isinstance(model._input_struct, (list, tuple)) else "single"}}
    if isinstance(model, Model) and type(model).get_config is not Model.get_config:
        # a subclassed model with its own get_config: rebuilt by from_config, then built from
        # its build config (the input shape of its first call), as Keras rebuilds it
        entry = {"module": type(model).__module__, "class_name": type(model).__name__,
                 "config": model.get_config(),
                 "registered_name": _registry.get_registered_name(type(model))
                 if _registry.is_registered(type(model)) else None,
                 "nested_class_name": "Subclassed"}
        build = model.get_build_config() if hasattr(model, "get_build_config") else None
        if build is not None:
            entry["build_config"] = build
        return entry
    raise ValueError(f"save: model {model.name!r} is a subclassed model without a functional "
                     f"graph or a get_config(); define get_config() (and register the class with "
                     f"keras.saving.register_keras_serializable), or save its weights with "
                     f"save_weights and rebuild it in code")


def _node_kwargs(layer, node):
    """A call's keyword arguments as JSON (:func:`axone.layers.base.encode_call_value`, the one
    encoding of call arguments): symbolic tensors as ``{"__tensor__": j}`` (the j-th of the
    node's input references; they follow the positional inputs), plain values as they are."""
    from ..layers.base import NotEncodable, encode_call_value
    index = {id(t): j for j, t in enumerate(node.flat_inputs)}

    def ref(v):
        return index.get(id(v)) if type(v).__name__ == "KerasTensor" else None
    out = {}
    for k, v in node.call_kwargs.items():
        try:
            out[k] = encode_call_value(v, ref)
        except NotEncodable as e:
            raise NotImplementedError(f"save: layer {layer.name!r} was called with {k}= {e}, "
                                      f"which the model file cannot hold; pass symbolic tensors, "
                                      f"numbers, strings or booleans") from None
    return out


def _decode_kwargs(kwargs, args, npos, what):
    """The saved call kwargs with ``{"__tensor__": j}`` replaced by the j-th input tensor."""
    from ..layers.base import decode_call_value
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ValueError(f"{what}: kwargs must be an object of named arguments")

    def at(j):
        if type(j) is not int or not npos <= j < len(args):
            raise ValueError(f"{what}: a tensor argument must be {{'__tensor__': j}} with j "
                             f"one of the keyword inputs {npos}..{len(args) - 1}, received {j!r}")
        return args[j]
    return {k: decode_call_value(v, at, what) for k, v in kwargs.items()}


def _count_tensor_refs(v):
    from ..layers.base import count_tensor_refs
    return count_tensor_refs(v)


def _layer_class(name, custom_objects, registered_name=None):
    """The class a saved entry names: a user class (``custom_objects``, an open
    ``custom_object_scope``, the registry; by registered name first), else axone's own."""
    from .. import layers as layers_mod
    Model, Sequential = _model_classes()
    if not isinstance(name, str):
        raise ValueError(f"a layer entry's class_name must be a string, received {name!r}")
    user = _registry.lookup([registered_name, name], custom_objects)
    if user is not None:
        if not isinstance(user, type):
            raise ValueError(f"the object given for layer class {name!r} is not a class: {user!r}")
        return user
    if name == "Sequential":
        return Sequential
    if name in ("Functional", "Model"):
        return Model
    if name == "OpLayer":
        from ..layers.base import OpLayer
        return OpLayer
    cls = getattr(layers_mod, name, None)
    if cls is None or not isinstance(cls, type):
        shown = registered_name or name
        raise ValueError(f"Unknown layer class {shown!r} in the saved model: register it with "
                         f"@keras.saving.register_keras_serializable() before loading, or pass "
                         f"it in custom_objects={{{name!r}: {name}}}")
    return cls


def _family_of(key):
    """The registry family a layer argument names by Keras's naming (``kernel_initializer``,
    ``bias_regularizer``, ``recurrent_constraint``, ``activation``…), or None."""
    if not isinstance(key, str):
        return None
    for suffix, family in (("initializer", "initializers"), ("regularizer", "regularizers"),
                           ("constraint", "constraints"), ("activation", "activations")):
        if key == suffix or key.endswith("_" + suffix):
            return family
    return None


def _is_builtin(family, name):
    """Whether axone's ``family`` module resolves ``name`` by itself."""
    from .. import activations, constraints, initializers, regularizers
    mod = {"activations": activations, "constraints": constraints,
           "initializers": initializers, "regularizers": regularizers}[family]
    try:
        mod.get(name)
        return True
    except (ValueError, TypeError, KeyError, AttributeError):
        return False


def _resolve_user_objects(cfg):
    """The config with every value that names a user object (a registered or given function,
    a custom initializer / regularizer / constraint / activation class entry) replaced by the
    object, so the layer's constructor receives it as Keras's ``get`` functions would."""
    from ..layers.base import Layer
    out = dict(cfg)
    for k, v in cfg.items():
        if k in ("name", "dtype", "trainable"):
            continue
        family = _family_of(k)
        if isinstance(v, str):
            obj = _registry.lookup([v], bare=False)
            if obj is not None and callable(obj) and not isinstance(obj, type):
                out[k] = obj
            elif family is not None and not _is_builtin(family, v):
                raise ValueError(f"{k}: unknown {family[:-1]} {v!r}: register it with "
                                 f"@keras.saving.register_keras_serializable() or pass it in "
                                 f"custom_objects={{{v!r}: ...}}")
        elif isinstance(v, dict) and isinstance(v.get("class_name"), str):
            cname = v["class_name"]
            if cname == "function":
                fname = v.get("config")
                obj = _registry.lookup([fname]) if isinstance(fname, str) else None
                if obj is None:
                    raise ValueError(f"{k}: unknown function {fname!r}: register it with "
                                     f"@keras.saving.register_keras_serializable() or pass it in "
                                     f"custom_objects")
                out[k] = obj
                continue
            obj = _registry.lookup([v.get("registered_name"), cname])
            if obj is None and family is not None and not _is_builtin(family, cname):
                raise ValueError(f"{k}: unknown {family[:-1]} class {cname!r}: register it with "
                                 f"@keras.saving.register_keras_serializable() or pass it in "
                                 f"custom_objects={{{cname!r}: {cname}}}")
            if obj is None or not isinstance(obj, type) or issubclass(obj, Layer):
                continue
            inner = v.get("config", {})
            if not isinstance(inner, dict):
                raise ValueError(f"{k}: the config of {cname!r} must be an object")
            out[k] = obj.from_config(dict(inner)) if hasattr(obj, "from_config") else obj(**inner)
    return out


def _ref(r, what):
    if not (isinstance(r, list) and len(r) == 3 and isinstance(r[0], str)
            and type(r[1]) is int and type(r[2]) is int and r[1] >= 0 and r[2] >= 0):
        raise ValueError(f"{what}: a tensor reference must be [layer name, node index, tensor "
                         f"index], received {r!r}")
    return r[0], r[1], r[2]


def _replay_order(entries):
    """The saved layer calls in an order where each comes after the calls that feed it.

    Kahn's algorithm over (layer name, node index) keys: each reference is looked at once, so the
    work is linear in the size of the graph whatever order the file lists the layers in.  Node
    ``i`` of a layer also waits for its node ``i − 1``, so shared layers are called in their
    saved order.  Returns ``[(name, node index, refs, (structure, kwargs, number of
    positional refs))]``; ValueError when some calls can never run (a cycle, or a reference to a call that is not in the file).
    """
    calls = {}
    for entry in entries:
        name = entry["name"]
        nodes = entry["inbound_nodes"]
        if not isinstance(nodes, list):
            raise ValueError(f"layer {name!r}: inbound_nodes must be a list")
        for i, node in enumerate(nodes):
            if not isinstance(node, list) or not node or not isinstance(node[-1], dict):
                raise ValueError(f"layer {name!r}: node {i} is malformed")
            structure = node[-1].get("structure", "single")
            refs = [_ref(r, f"layer {name!r} node {i}") for r in node[:-1]]
            kwargs = node[-1].get("kwargs", {})
            if not isinstance(kwargs, dict):
                raise ValueError(f"layer {name!r}: node {i} kwargs must be an object")
            npos = len(refs) - sum(_count_tensor_refs(v) for v in kwargs.values())
            if structure not in ("list", "single") or (structure == "single" and npos != 1) \
                    or npos < 0:
                raise ValueError(f"layer {name!r}: node {i} has structure {structure!r} with "
                                 f"{len(refs)} inputs")
            deps = [(r[0], r[1]) for r in refs]
            if i > 0:
                deps.append((name, i - 1))
            calls[(name, i)] = (refs, (structure, kwargs, npos), deps)
    waiting = {}
    missing = {}
    ready = []
    for key, (refs, structure, deps) in calls.items():
        n = 0
        for d in deps:
            if d in calls:
                waiting.setdefault(d, []).append(key)
                n += 1
        missing[key] = n
        if n == 0:
            ready.append(key)
    order = []
    while ready:
        key = ready.pop()
        refs, structure, _ = calls[key]
        order.append((key[0], key[1], refs, structure))
        for k in waiting.get(key, ()):
            missing[k] -= 1
            if missing[k] == 0:
                ready.append(k)
    if len(order) != len(calls):
        stuck = sorted(k for k, n in missing.items() if n > 0)[:3]
        raise ValueError(f"the saved graph is inconsistent: the calls {stuck} wait on each other")
    return order


def _from_config(cls, entry):
    """``cls.from_config`` of a saved layer entry; errors name the layer (cause chained)."""
    cfg = entry["config"]
    name = cfg.get("name") if isinstance(cfg, dict) else None
    if not isinstance(cfg, dict):
        raise TypeError(f"layer {name!r} ({cls.__name__}): its config must be an object")
    from ..layers.base import OpLayer
    try:
        if cls is OpLayer:           # names a keras.ops function: never a user object
            return cls.from_config(dict(cfg))
        return cls.from_config(_resolve_user_objects(cfg))
    except _REBUILD_ERRORS as e:
        raise type(e)(f"layer {name!r} ({cls.__name__}): {e}") if type(e) in (
            ValueError, TypeError) else ValueError(
            f"layer {name!r} ({cls.__name__}): {type(e).__name__}: {e}") from e


def deserialize_model(spec, custom_objects=None):
    """Rebuild a model from its saved architecture (``serialize_model``'s output)."""
    from ..layers.core import InputLayer
    Model, Sequential = _model_classes()
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise ValueError("the architecture must be {'class_name': ..., 'config': {...}}")
    cname, cfg = spec.get("class_name"), spec["config"]
    kind = spec.get("nested_class_name", cname)
    if kind == "Subclassed" or cname not in ("Sequential", "Functional", "Model") and \
            kind not in ("Sequential", "Functional"):
        return _subclassed_from_entry(spec, custom_objects)
    if kind == "Sequential":
        cls = Sequential if cname == "Sequential" else _layer_class(
            cname, custom_objects, spec.get("registered_name"))
        model = cls(name=cfg.get("name"), trainable=cfg.get("trainable", True))
        for entry in cfg["layers"]:
            if not isinstance(entry, dict):
                raise ValueError(f"a layer entry must be an object, received {entry!r}")
            cls = _layer_class(entry["class_name"], custom_objects, entry.get("registered_name"))
            if isinstance(cls, type) and issubclass(cls, Model) and (
                    cls in (Sequential, Model) or "nested_class_name" in entry):
                layer = deserialize_model(entry, custom_objects)
            else:
                layer = _from_config(cls, entry)
            model.add(layer)
        return model
    if cname in ("Functional", "Model"):
        created = {}
        outputs_of = {}
        for entry in cfg["layers"]:
            if "nested_class_name" in entry:
                layer = deserialize_model(entry, custom_objects)
            else:
                cls = _layer_class(entry["class_name"], custom_objects,
                                   entry.get("registered_name"))
                layer = _from_config(cls, entry)
            if entry["name"] in created:
                raise ValueError(f"two layers are named {entry['name']!r}")
            created[entry["name"]] = layer
            if isinstance(layer, InputLayer):
                outputs_of[(entry["name"], 0)] = [layer.output_tensor]
        for name, i, refs, (structure, kwargs, npos) in _replay_order(cfg["layers"]):
            args = []
            for r in refs:
                outs = outputs_of.get((r[0], r[1]))
                if outs is None or r[2] >= len(outs):
                    raise ValueError(f"layer {name!r} node {i} refers to the missing tensor {list(r)}")
                args.append(outs[r[2]])
            kwargs = _decode_kwargs(kwargs, args, npos, f"layer {name!r} node {i}")
            out = created[name](args[:npos] if structure == "list" else args[0], **kwargs)
            outputs_of[(name, i)] = list(out) if isinstance(out, (list, tuple)) else [out]

        def tensors(key):
            out = []
            for r in cfg[key]:
                r = _ref(r, key)
                outs = outputs_of.get((r[0], r[1]))
                if outs is None or r[2] >= len(outs):
                    raise ValueError(f"{key} refers to the missing tensor {list(r)}")
                out.append(outs[r[2]])
            if not out:
                raise ValueError(f"{key} is empty")
            return out
        ins, outs = tensors("input_layers"), tensors("output_layers")
        return Model(ins if cfg.get("input_structure") == "list" else ins[0],
                     outs if cfg.get("output_structure") == "list" else outs[0], name=cfg.get("name"))
    raise ValueError(f"unknown model class {cname!r}")


def _subclassed_from_entry(spec, custom_objects):
    """A subclassed model: its class's ``from_config``, then ``build_from_config``."""
    Model, _ = _model_classes()
    cname = spec.get("class_name")
    cls = _registry.lookup([spec.get("registered_name"), cname], custom_objects)
    if cls is None:
        shown = spec.get("registered_name") or cname
        raise ValueError(f"Unknown model class {shown!r} in the saved model: register it with "
                         f"@keras.saving.register_keras_serializable() before loading, or pass "
                         f"it in custom_objects={{{cname!r}: {cname}}}")
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ValueError(f"the object given for model class {cname!r} is not a Model subclass: "
                         f"{cls!r}")
    model = cls.from_config(_resolve_user_objects(spec["config"]))
    build = spec.get("build_config")
    if build is not None:
        model.build_from_config(build)
    return model


def _rebuild(path, what, fn, *args):
    """Run ``fn(*args)``; the errors a malformed configuration causes become FileFormatError."""
    try:
        return fn(*args)
    except FileFormatError:
        raise
    except _REBUILD_ERRORS as e:
        raise FileFormatError(path, f"{what} could not be rebuilt ({type(e).__name__}: {e})") from e


def _optimizer_from_entry(o, path):
    """An optimizer instance from a saved {"class_name", "config", "state"} entry (the
    optimizers a LossScaleOptimizer or MultiOptimizer wraps from their own entries)."""
    from .. import optimizers
    from ..optimizers import schedules
    if not isinstance(o, dict) or not isinstance(o.get("config"), dict):
        raise ValueError("the optimizer entry must be {'class_name', 'config', 'state'}")
    cfg = dict(o["config"])
    kind = o.get("class_name")
    nested = {"LossScaleOptimizer": ("inner_optimizer",),
              "MultiOptimizer": ("optimizer_map",)}.get(kind, ())
    for k, v in cfg.items():       # an optimizer's hyperparameters are scalars (Keras configs too)
        if k == "name" and isinstance(v, str) or k == "learning_rate" and isinstance(v, dict) \
                or k in nested:
            continue
        if not (v is None or type(v) in (bool, int, float)) or (
                type(v) is float and not math.isfinite(v)):
            raise ValueError(f"optimizer {kind!r}: config {k!r} must be a finite "
                             f"number, a bool or null, received {v!r}")
    if isinstance(cfg.get("learning_rate"), dict):
        cfg["learning_rate"] = schedules.deserialize(cfg["learning_rate"])
    if kind == "LossScaleOptimizer":
        inner = cfg.pop("inner_optimizer", None)
        if not isinstance(inner, dict):
            raise ValueError(f"optimizer 'LossScaleOptimizer': inner_optimizer must be an "
                             f"optimizer entry {{'class_name', 'config'}}, received {inner!r}")
        return optimizers.LossScaleOptimizer(_optimizer_from_entry(inner, path), **cfg)
    if kind == "MultiOptimizer":
        m = cfg.pop("optimizer_map", None)
        m = m.get("config") if isinstance(m, dict) and m.get("class_name") == "OptimizerMap" else m
        if not (isinstance(m, dict) and isinstance(m.get("optimizer_map", {}), dict)
                and isinstance(m.get("default_optimizer"), dict)):
            raise ValueError(f"optimizer 'MultiOptimizer': optimizer_map must be an OptimizerMap "
                             f"entry {{'default_optimizer', 'optimizer_map'}}, received {m!r:.200}")
        omap = optimizers.OptimizerMap(
            _optimizer_from_entry(m["default_optimizer"], path),
            {k: _optimizer_from_entry(e, path) for k, e in (m.get("optimizer_map") or {}).items()})
        return optimizers.MultiOptimizer(omap, **cfg)
    return optimizers.get({"class_name": kind, "config": cfg})


def _scalar_state(st, path):
    """The optimizer's scalar state checked: iterations (and Nadam's momentum product)."""
    if not isinstance(st, dict):
        raise FileFormatError(path, "the optimizer state must be an object")
    it = st.get("iterations", 0)
    if type(it) is not int or not 0 <= it <= 2 ** 53:
        raise FileFormatError(path, f"optimizer iterations must be an integer in [0, 2**53], "
                                    f"received {it!r}")
    out = {"iterations": it}
    calls = st.get("calls")
    if calls is not None and (type(calls) is not int or not 0 <= calls <= 2 ** 53):
        raise FileFormatError(path, f"optimizer calls must be an integer in [0, 2**53], "
                                    f"received {calls!r}")
    out["calls"] = calls
    if "_u_step" in st or "_u_product" in st:
        step, prod = st.get("_u_step", 0), st.get("_u_product", 1.0)
        if type(step) is not int or not 0 <= it - step <= 1 or step < 0:
            raise FileFormatError(path, f"optimizer _u_step {step!r} does not fit iterations {it}")
        if type(prod) not in (int, float) or not math.isfinite(prod):
            raise FileFormatError(path, f"optimizer _u_product {prod!r} is not a finite number")
        out["_u_step"], out["_u_product"] = step, float(prod)
    size = st.get("flat_size")
    if size is not None and (type(size) is not int or size < 0):
        raise FileFormatError(path, f"optimizer flat_size {size!r} is not a non-negative integer")
    out["flat_size"] = size
    if "variables" in st:                 # state as the optimizer's variables (their shapes)
        shapes = st["variables"]
        if shapes is not None and not (isinstance(shapes, list) and all(
                isinstance(sh, list) and all(type(d) is int and d >= 0 for d in sh)
                for sh in shapes)):
            raise FileFormatError(path, f"optimizer variables must be a list of shapes, "
                                        f"received {shapes!r:.200}")
        out["variables"] = shapes
    if "inner" in st:                     # LossScaleOptimizer: the scale and the inner state
        scale, counter = st.get("loss_scale"), st.get("step_counter")
        if type(scale) not in (int, float) or not (math.isfinite(scale) and scale > 0):
            raise FileFormatError(path, f"the loss scale must be a finite positive number, "
                                        f"received {scale!r}")
        if type(counter) is not int or counter < 0:
            raise FileFormatError(path, f"the loss scale step_counter must be a non-negative "
                                        f"integer, received {counter!r}")
        out["loss_scale"], out["step_counter"] = float(scale), counter
        out["inner"] = _scalar_state(st["inner"], path)
    if "optimizers" in st:                # MultiOptimizer: one state per optimizer
        if not isinstance(st["optimizers"], list):
            raise FileFormatError(path, "a MultiOptimizer state's optimizers must be a list")
        out["optimizers"] = [_scalar_state(x, path) for x in st["optimizers"]]
        out["built"] = bool(st.get("built", True))
    return out


def _flat_size_and_dtype(model):
    tw = model.trainable_weights
    dtypes = {np.dtype(w.dtype) for w in tw}
    from .. import backend
    dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(backend.floatx())
    return sum(int(w.data.size) for w in tw), dtype


def _set_iterations(opt, scalars):
    """The step counter, and with gradient accumulation the position inside the cycle (the
    calls since the start), when the file's two counts agree."""
    opt.iterations = scalars["iterations"]
    n, calls = getattr(opt, "gradient_accumulation_steps", None), scalars.get("calls")
    if n and calls is not None and calls // n == scalars["iterations"]:
        opt._iterations = calls


def restore_optimizer_state(opt, model, scalars, arrays, path, restore_lr=None):
    """Install a saved optimizer state into ``opt`` (the optimizer of ``model``).

    The state vectors must have one value per trainable parameter of ``model`` (else
    FileFormatError); when they are not the buffers ``opt``'s configuration needs (the optimizer
    was changed, or the file's config was edited), ``opt.load_flat_state`` warns and the whole
    state starts fresh — step counter included — as Keras skips a mismatched optimizer.
    """
    from .. import optimizers
    if isinstance(opt, optimizers.LossScaleOptimizer) and scalars.get("inner") is not None:
        inner = {k[len("inner."):]: a for k, a in arrays.items() if k.startswith("inner.")}
        if len(inner) != len(arrays):
            raise FileFormatError(path, f"a LossScaleOptimizer state holds only inner.* arrays, "
                                        f"received {sorted(set(arrays) - {'inner.' + k for k in inner})}")
        if not restore_optimizer_state(opt.inner_optimizer, model, scalars["inner"], inner, path,
                                       restore_lr):
            return False
        opt._scale[...] = scalars["loss_scale"]
        opt._counter[...] = scalars["step_counter"]
        return True
    if isinstance(opt, optimizers.MultiOptimizer) and scalars.get("optimizers") is not None:
        if scalars["built"]:
            _build_on_model(opt, model)
        sts = scalars["optimizers"]
        if len(sts) != len(opt.optimizers):
            warnings.warn(f"Skipping variable loading for optimizer '{opt.name}', because it has "
                          f"{len(opt.optimizers)} optimizers whereas the saved optimizer has "
                          f"{len(sts)}; its state starts fresh", stacklevel=2)
            return False
        for k, (o, st) in enumerate(zip(opt.optimizers, sts)):
            own = {n[len(f"{k}."):]: a for n, a in arrays.items() if n.startswith(f"{k}.")}
            if not _restore_variables(o, model, st, own, path):
                return False
        opt._iterations = scalars["iterations"]
        return True
    if "variables" in scalars:
        ok = _restore_variables(opt, model, scalars, arrays, path)
        if ok and restore_lr is not None:
            opt.learning_rate = restore_lr
        return ok
    size, dtype = _flat_size_and_dtype(model)
    if not arrays and scalars["flat_size"] is None:     # saved before its first step: no state
        _set_iterations(opt, scalars)
        return True
    if scalars["flat_size"] is not None and scalars["flat_size"] != size and arrays:
        raise FileFormatError(path, f"the optimizer state is for {scalars['flat_size']} parameters "
                                    f"but model {model.name!r} has {size} trainable parameters")
    try:
        loaded = opt.load_flat_state(arrays, size, dtype=dtype)
    except ValueError as e:
        raise FileFormatError(path, f"optimizer state: {e}") from None
    if not loaded:
        return False
    _set_iterations(opt, scalars)
    for k in ("_u_product", "_u_step"):
        if k in scalars:
            setattr(opt, k, scalars[k])
    if restore_lr is not None:
        opt.learning_rate = restore_lr
    return True


def _build_on_model(opt, model):
    """Build ``opt`` on the model's trainable weights as its first training step would (the
    weights moved into the model's parameter buffer first)."""
    if not opt.built:
        if hasattr(model, "_param_buffer"):
            model._param_buffer()
        opt.build(model.trainable_weights)


def _restore_variables(opt, model, st, arrays, path):
    """Install a state saved as ``opt``'s variables (see ``_variables_state``); a state that is
    not the one ``opt``'s configuration has is skipped with a warning (Keras's behaviour)."""
    shapes = st["variables"]
    if shapes is None:                      # saved before its first step
        _set_iterations(opt, st)
        return True
    _build_on_model(opt, model)
    own = opt.variables[opt._n_scalar_vars():]
    if [list(v.data.shape) for v in own] != shapes:
        warnings.warn(f"Skipping variable loading for optimizer '{opt.name}', because it has "
                      f"{len(own)} variables whereas the saved optimizer has {len(shapes)} "
                      f"variables (or of other shapes); its state starts fresh", stacklevel=3)
        return False
    if len(arrays) != len(own):
        raise FileFormatError(path, f"optimizer {opt.name!r}: the file holds {len(arrays)} state "
                                    f"arrays for {len(own)} variables")
    for i, (v, shape) in enumerate(zip(own, shapes)):
        a = arrays.get(f"v{i:04d}")
        if a is None or a.size != v.data.size:
            raise FileFormatError(path, f"optimizer {opt.name!r}: state array v{i:04d} is missing "
                                        f"or not of {v.data.size} values (shape {tuple(shape)})")
        if type(v.data) is np.ndarray:
            np.copyto(v.data, a.reshape(v.data.shape), casting="same_kind")
        else:                       # state on a device: the host values copied there
            from ..device import array_module
            v.data[...] = array_module(v.data).asarray(
                a.reshape(v.data.shape).astype(v.data.dtype, casting="same_kind"))
    _set_iterations(opt, st)
    for k in ("_u_product", "_u_step"):
        if k in st:
            setattr(opt, k, st[k])
    return True


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved with ``model.save(path)``: architecture, weights, compile state.

    Raises FileFormatError (a ValueError) for a malformed file, FileNotFoundError when there is
    none; see the module docstring.  ``safe_mode`` is accepted for Keras compatibility: axone's
    format holds no code, so loading is always safe in Keras's sense, whatever its value.
    After ``keras.config.enable_unsafe_deserialization()`` it is False whatever is passed, as
    in Keras; a bytecode lambda in a Keras file is refused either way, only the words of the
    refusal change.
    """
    from .. import losses, metrics as metrics_mod
    from ..config import effective_safe_mode
    safe_mode = effective_safe_mode(safe_mode)
    loaded = _dispatch("load_model", path, custom_objects=custom_objects, compile=compile,
                       safe_mode=safe_mode)
    if loaded is not NotImplemented:
        return loaded
    arc, meta = open_archive(path, ("axone.model",))
    path = arc.path
    with arc:
        if "config.json" not in arc:
            raise FileFormatError(path, "the model file has no config.json")
        spec = arc.read_json("config.json")
        arrays = _read_weight_arrays(arc, meta)
        comp = arc.read_json("compile.json") if "compile.json" in arc else None
        opt_arrays = _read_optimizer_arrays(arc) if comp is not None else {}
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"load_model: custom_objects must be a dict {{name: object}}, received "
                        f"{type(custom_objects).__name__}")
    with _registry.custom_object_scope(custom_objects):
        with loading_budget(path, sum(a.size for a in arrays)):
            from .. import constraints
            with constraints.custom_objects_scope(custom_objects):   # plain-function constraints
                model = _rebuild(path, "the saved architecture", deserialize_model, spec,
                                 custom_objects)
        assign_weights(model, arrays, meta["weights"], path)
        if compile and comp is not None:
            _rebuild(path, "the saved compile arguments", _compile_from_entry, model, comp,
                     opt_arrays, path, custom_objects, losses, metrics_mod)
    return model


def _user_entry(entry, what):
    """The user object a saved loss / metric entry names, or None when it names axone's."""
    from .. import losses, metrics
    if isinstance(entry, str):
        return _registry.lookup([entry])
    if entry.get("class_name") == "function":
        name = entry.get("config")
        obj = _registry.lookup([name]) if isinstance(name, str) else None
        if obj is None and name in (losses._FUNCTIONS if what == "loss" else metrics._FUNCTIONS):
            return None
        if obj is None:
            raise ValueError(f"unknown {what} function {name!r}: register it with "
                             f"@keras.saving.register_keras_serializable() or pass it in "
                             f"custom_objects={{{name!r}: ...}}")
        return obj
    cls = _registry.lookup([entry.get("registered_name"), entry.get("class_name")])
    if cls is None:
        return None
    cfg = entry.get("config", {})
    if not isinstance(cfg, dict):
        raise ValueError(f"the config of {what} {entry.get('class_name')!r} must be an object")
    return cls.from_config(dict(cfg)) if isinstance(cls, type) else cls


def _compile_from_entry(model, comp, opt_arrays, path, custom_objects, losses, metrics_mod):
    if not isinstance(comp, dict):
        raise ValueError("compile.json must hold an object")

    def _loss(l):
        if isinstance(l, dict) and "class_name" in l:
            user = _user_entry(l, "loss")
            return user if user is not None else losses.get(l)
        if isinstance(l, dict):
            return {k: _loss(v) for k, v in l.items()}
        if isinstance(l, list):
            return [_loss(x) for x in l]
        if custom_objects and isinstance(l, str) and l in custom_objects:
            return custom_objects[l]
        return l

    def _metric(m):
        if isinstance(m, dict) and "class_name" in m:
            cfg = m.get("config")
            if isinstance(cfg, dict) and isinstance(cfg.get("fn"), dict):
                m = dict(m, config=dict(cfg, fn=_user_entry(cfg["fn"], "metric") or cfg["fn"]))
            user = _user_entry(m, "metric")
            return user if user is not None else metrics_mod.get(m)
        if isinstance(m, dict):
            return {k: _metric(v) for k, v in m.items()}
        if isinstance(m, list):
            return [_metric(x) for x in m]
        return m
    opt = "rmsprop"
    scalars = None
    if "optimizer" in comp:
        o = comp["optimizer"]
        opt = _optimizer_from_entry(o, path)
        scalars = _scalar_state(o.get("state", {}), path)
    model.compile(optimizer=opt, loss=_loss(comp["loss"]), metrics=_metric(comp.get("metrics")),
                  weighted_metrics=_metric(comp.get("weighted_metrics")),
                  loss_weights=comp.get("loss_weights"))
    if scalars is not None:
        restore_optimizer_state(model.optimizer, model, scalars, opt_arrays, path)


# ------------------------------------------------------------------ backups
def save_backup(model, path, training_state):
    """Write a BackupAndRestore backup: weights, optimizer state and ``training_state`` (a JSON
    object, e.g. {"epoch": 3}) in ONE archive, atomically — a kill leaves the old backup whole or
    the new one whole, never new weights with an old epoch."""
    if not model.built:
        raise ValueError(f"BackupAndRestore: model {model.name!r} is not built yet")
    entries, names = _weights_entries(model)
    opt = getattr(model, "optimizer", None)
    if opt is not None:
        o, arrays = _optimizer_entries(opt)
        entries["optimizer.json"] = json.dumps(o, indent=1).encode("utf-8")
        for name, arr in arrays.items():
            entries[f"optimizer/{name}.npy"] = _array_bytes(arr)
    entries["training_state.json"] = json.dumps(training_state).encode("utf-8")
    meta = {"format": "axone.backup", "format_version": FORMAT_VERSION, "weights": names,
            "model": model.name}
    entries["axone.json"] = json.dumps(meta, indent=1).encode("utf-8")
    atomic_write_zip(path, entries)


def load_backup(model, path):
    """Restore a backup into ``model`` (weights, then optimizer state); returns the training
    state held in the archive, or None for an older backup (a model file) that holds none.

    The weights must fit the model exactly (FileFormatError otherwise).  The optimizer state is
    restored when it is the state the model's optimizer needs; after a change of optimizer it is
    skipped with a warning and starts fresh (Keras's behaviour), the weights still restored.
    """
    arc, meta = open_archive(path, ("axone.backup", "axone.model"))
    path = arc.path
    with arc:
        arrays = _read_weight_arrays(arc, meta)
        entry = None
        if "optimizer.json" in arc:
            entry = arc.read_json("optimizer.json")
        elif "compile.json" in arc:
            comp = arc.read_json("compile.json")
            entry = comp.get("optimizer") if isinstance(comp, dict) else None
        opt_arrays = _read_optimizer_arrays(arc) if entry is not None else {}
        state = arc.read_json("training_state.json") if "training_state.json" in arc else None
    if state is not None and not (isinstance(state, dict) and type(state.get("epoch")) is int
                                  and state["epoch"] >= -1):
        raise FileFormatError(path, f"training_state.json must hold {{'epoch': int}}, received "
                                    f"{state!r}")
    assign_weights(model, arrays, meta["weights"], path)
    opt = getattr(model, "optimizer", None)
    if opt is not None and entry is not None:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise FileFormatError(path, "the optimizer entry must be {'class_name', 'config', "
                                        "'state'}")
        scalars = _scalar_state(entry.get("state", {}), path)
        cfg = entry["config"]
        if isinstance(cfg.get("inner_optimizer"), dict):        # a LossScaleOptimizer's
            cfg = cfg["inner_optimizer"].get("config")
            cfg = cfg if isinstance(cfg, dict) else {}
        lr = cfg.get("learning_rate")
        lr = float(lr) if type(lr) in (int, float) and math.isfinite(lr) and lr >= 0 else None
        if callable(getattr(opt, "inner_optimizer", opt)._learning_rate) or \
                "_optimizer_map" in opt.__dict__:
            lr = None
        restore_optimizer_state(opt, model, scalars, opt_arrays, path, restore_lr=lr)
    return state


def keras_save_model(model, filepath, overwrite=True, zipped=None, **kwargs):
    """``keras.saving.save_model`` / ``keras.models.save_model``: ``model.save(filepath, ...)``."""
    if not hasattr(model, "save") or not hasattr(model, "weights"):
        raise TypeError(f"save_model: expected a Model, received {type(model).__name__}")
    return model.save(filepath, overwrite=overwrite, zipped=zipped, **kwargs)
