"""Keras 2's HDF5 format (``.h5`` / ``.hdf5``), the one Keras's pretrained weight files use.

A full-model file has the root attributes ``model_config`` (the architecture as JSON),
``training_config`` (loss, metrics, ``optimizer_config``), ``keras_version`` and ``backend``, and
the weights in the group ``model_weights``.  A weights group (the root of a weights-only file,
or ``model_weights``) has the attribute ``layer_names`` and one group per layer, whose
``weight_names`` attribute lists its weights (``dense/kernel:0`` …) in Keras's legacy order —
trainable weights, then the others — each a dataset at that path inside the layer's group.

A file saved with ``include_optimizer=True`` from a compiled model also has the group
``optimizer_weights``: its ``weight_names`` attribute (split into ``weight_names0``,
``weight_names1`` … when it would pass HDF5's 64 KiB header limit) lists the optimizer's
variables by path (``adam/iteration``, ``adam/dense_kernel_momentum`` …), in the order of
Keras's ``optimizer.variables`` (see :func:`axone.formats.keras_v3.optimizer_plan`), each a
dataset at that path; loading with ``compile=True`` sets them back as Keras's
``optimizer.set_weights`` does.

Weights load by topological order (the file's layers that hold weights paired in order with the
model's layers that have weights) or, with ``by_name=True``, by layer name;
``skip_mismatch=True`` skips the layers whose weight count or shapes differ, with a warning.
"""
import json
import warnings

import numpy as np

from ..fileio import FileFormatError, atomic_write, loading_budget
from ..models import saving as _saving
from . import keras_config
from .h5io import H5Reader, h5_bytes
from .h5io import MAX_NAMES
from .keras_v3 import (KERAS_VERSION, _keras_layer_order, check_lambdas, count_values, host_array,
                       install_optimizer_values, optimizer_plan)

#: HDF5's limit on an object header: longer attributes are split in chunks, as Keras does
HDF5_OBJECT_HEADER_LIMIT = 64512
#: Keras's names of axone's slots (the rest are named alike)
_KERAS_SLOT_NAMES = {"m": "momentum", "v": "velocity", "vhat": "velocity_hat"}

LEGACY_WARNING = ("You are saving your model as an HDF5 file via `model.save()` or "
                  "`keras.saving.save_model(model)`. This file format is considered legacy. We "
                  "recommend using instead the native Keras format, e.g. "
                  "`model.save('my_model.keras')` or `keras.saving.save_model(model, "
                  "'my_model.keras')`. ")


def _legacy_weights(layer):
    tr = list(layer.trainable_weights)
    ids = {id(w) for w in tr}
    return tr + [w for w in layer.weights if id(w) not in ids]


def _weight_name(w, layer):
    p = str(w.path)
    if not p.startswith(layer.name + "/"):
        p = f"{layer.name}/{p}"
    return p


def _fill_weights_group(g, model):
    g.attrs["layer_names"] = [l.name.encode("utf8") for l in _keras_layer_order(model)]
    g.attrs["backend"] = b"numpy"
    g.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
    for layer in sorted(model.layers, key=lambda l: l.name):
        lg = g.create_group(layer.name)
        weights = _legacy_weights(layer)
        names, used = [], set()
        for w in weights:
            n = _weight_name(w, layer)
            base, k = n, 1
            while n in used:
                n, k = f"{base}_{k}", k + 1
            used.add(n)
            names.append(n)
        lg.attrs["weight_names"] = [n.encode("utf8") for n in names]
        for n, w in zip(names, weights):
            lg.create_dataset(n, data=host_array(w.data))


def save_weights(model, path):
    if not model.built:
        raise ValueError(f"save_weights: model {model.name!r} has no weights yet; build it first")
    data = h5_bytes(lambda f: _fill_weights_group(f, model))
    with atomic_write(path) as raw:
        raw.write(data)


def _legacy_form(entry):
    """Keras's legacy model config: the model and layer entries without ``module`` and
    ``registered_name`` (the objects inside a layer's config keep theirs)."""
    out = {k: x for k, x in entry.items() if k not in ("module", "registered_name")}
    reg = entry.get("registered_name")
    if isinstance(reg, str) and reg not in ("Functional",):
        out["class_name"] = reg
    cfg = entry.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list):
        out["config"] = dict(cfg, layers=[_legacy_form(l) if isinstance(l, dict) else l
                                          for l in cfg["layers"]])
    return out


def _slot_name(slot):
    """Keras's path of an optimizer variable (``adam/d1_kernel_momentum``)."""
    owner, _, rest = slot.label.partition("/")
    for axone_name, keras_name in _KERAS_SLOT_NAMES.items():
        if rest.endswith("_" + axone_name):
            rest = rest[:-len(axone_name)] + keras_name
            break
    return f"{owner}/{rest.replace('/', '_')}"


def _save_names_attr(g, name, names):
    """``g.attrs[name] = names``, split in chunks ``name0``, ``name1`` … past HDF5's header
    limit (Keras's ``save_attributes_to_hdf5_group``)."""
    data = np.asarray([n.encode("utf8") for n in names])
    chunks = 1
    parts = np.array_split(data, chunks)
    while any(p.nbytes > HDF5_OBJECT_HEADER_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(data, chunks)
    if chunks == 1:
        g.attrs[name] = data
    else:
        for k, p in enumerate(parts):
            g.attrs[f"{name}{k}"] = p


def _load_names_attr(r, g, name, where):
    """The list of names saved by :func:`_save_names_attr` (whole or in chunks), bounded."""
    names = r.attr(g, name, where)
    if names is None:
        names, k = [], 0
        while True:
            part = r.attr(g, f"{name}{k}", where)
            if part is None:
                break
            if not isinstance(part, list):
                raise FileFormatError(r.path, f"{where}: attribute {name}{k!r} is not a list of "
                                              f"names")
            names.extend(part)
            k += 1
            if len(names) > MAX_NAMES:
                break
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise FileFormatError(r.path, f"{where}: attribute {name!r} is not a list of names")
    if len(names) > MAX_NAMES:
        raise FileFormatError(r.path, f"{where}: attribute {name!r} lists {len(names)} names")
    return names


def _fill_optimizer_weights(f, model):
    """The ``optimizer_weights`` group of a Keras 2 model file, as Keras writes it
    (``save_optimizer_weights_to_hdf5_group``)."""
    plan = optimizer_plan(model.optimizer, model)
    names, used = [], set()
    for slot in plan:
        n = base = _slot_name(slot)
        k = 1
        while n in used:
            n, k = f"{base}_{k}", k + 1
        used.add(n)
        names.append(n)
    g = f.create_group("optimizer_weights")
    _save_names_attr(g, "weight_names", names)
    for n, slot in zip(names, plan):
        g.create_dataset(n, data=host_array(slot.value()))


def _read_optimizer_weights(r):
    """The optimizer's values listed by ``optimizer_weights/weight_names``, in that order
    (None when the file has no such group)."""
    g = r.get(r.f, "optimizer_weights")
    if g is None:
        return None
    if not isinstance(g, r.h5py.Group):
        raise FileFormatError(r.path, "optimizer_weights is not a group")
    names = _load_names_attr(r, g, "weight_names", "optimizer_weights")
    vals = []
    for n in names:
        parts = n.split("/")
        parent = r.group(g, "/".join(parts[:-1]), where="optimizer_weights") \
            if len(parts) > 1 else g
        ds = r.get(parent, parts[-1], where=f"optimizer_weights/{n}")
        if ds is None:
            raise FileFormatError(r.path, f"optimizer_weights lists {n!r}, which the file does "
                                          f"not hold")
        vals.append(r.array(ds, f"optimizer weight {n!r}"))
    return vals


def save_model(model, path, include_optimizer=True):
    if not model.built:
        raise ValueError(f"save: model {model.name!r} is not built yet; build it first")
    warnings.warn(LEGACY_WARNING, UserWarning, stacklevel=4)
    spec = keras_config.model_to_keras(_saving.serialize_model(model), model)
    spec.pop("build_config", None)
    spec = _legacy_form(spec)
    training = None
    if getattr(model, "compiled", False):
        comp = {"loss": _saving._serialize_loss(model._loss_spec),
                "metrics": _saving._serialize_metric(model._metrics_spec),
                "weighted_metrics": _saving._serialize_metric(model._weighted_spec),
                "loss_weights": model._loss_weights_spec}
        cc = keras_config.compile_to_keras(comp)
        training = {"loss": cc["loss"], "metrics": cc["metrics"],
                    "weighted_metrics": cc["weighted_metrics"],
                    "loss_weights": cc["loss_weights"]}
        if include_optimizer and model.optimizer is not None:
            entry = keras_config.optimizer_to_keras({
                "class_name": type(model.optimizer).__name__,
                "config": _saving._optimizer_config(model.optimizer)})
            training["optimizer_config"] = {"class_name": entry["class_name"],
                                            "config": entry["config"]}
    with_optimizer = include_optimizer and training is not None and \
        getattr(model, "optimizer", None) is not None

    def fill(f):
        f.attrs["backend"] = "numpy"
        f.attrs["keras_version"] = KERAS_VERSION
        f.attrs["model_config"] = json.dumps(spec).encode("utf8")
        if training is not None:
            f.attrs["training_config"] = json.dumps(training).encode("utf8")
        _fill_weights_group(f.create_group("model_weights"), model)
        if with_optimizer:
            _fill_optimizer_weights(f, model)
    data = h5_bytes(fill)
    with atomic_write(path) as raw:
        raw.write(data)


# ------------------------------------------------------------------ reading
def _weights_root(r):
    if r.attr(r.f, "layer_names", "the file") is not None:
        return r.f
    g = r.get(r.f, "model_weights")
    if g is not None and isinstance(g, r.h5py.Group):
        return g
    raise FileFormatError(r.path, "is an HDF5 file but not a Keras weights file (no "
                                  "'layer_names' attribute and no 'model_weights' group)")


def is_legacy(r):
    return r.attr(r.f, "layer_names", "the file") is not None or \
        r.attr(r.f, "model_config", "the file") is not None


def _file_layers(r, root):
    """[(layer name, [arrays])] of the file's layers that hold weights, in the file's order."""
    names = r.attr(root, "layer_names", "the weights group")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FileFormatError(r.path, f"'layer_names' must be a list of names, received "
                                      f"{names!r:.200}")
    out = []
    for name in names:
        lg = r.group(root, name, where=f"layer {name!r}") if "/" in name else r.get(root, name)
        if lg is None or not isinstance(lg, r.h5py.Group):
            raise FileFormatError(r.path, f"layer {name!r} is listed in layer_names but has no "
                                          f"group")
        wnames = r.attr(lg, "weight_names", f"layer {name!r}", default=[])
        if not isinstance(wnames, list) or not all(isinstance(n, str) for n in wnames):
            raise FileFormatError(r.path, f"layer {name!r}: 'weight_names' must be a list of "
                                          f"names, received {wnames!r:.200}")
        if not wnames:
            continue
        arrays = []
        for wn in wnames:
            parts = [p for p in wn.split("/") if p]
            if not parts:
                raise FileFormatError(r.path, f"layer {name!r}: empty weight name")
            g = r.group(lg, "/".join(parts[:-1]), where=f"layer {name!r} weight {wn!r}") \
                if len(parts) > 1 else lg
            ds = r.get(g, parts[-1])
            if ds is None:
                raise FileFormatError(r.path, f"layer {name!r}: weight {wn!r} is listed but "
                                              f"missing")
            arrays.append(r.array(ds, f"layer {name!r} weight {wn!r}"))
        out.append((name, arrays))
    return out


def _load_into(model, r, root, by_name, skip_mismatch):
    theirs = _file_layers(r, root)
    mine = [l for l in _keras_layer_order(model) if _legacy_weights(l)]
    pairs = []
    if by_name:
        index = {}
        for name, arrays in theirs:
            index.setdefault(name, arrays)
        pairs = [(l, l.name, index[l.name]) for l in mine if l.name in index]
    else:
        if len(theirs) != len(mine):
            raise FileFormatError(r.path, f"Layer count mismatch when loading weights from file. "
                                          f"Model expected {len(mine)} layers, found "
                                          f"{len(theirs)} saved layers.")
        pairs = [(l, name, arrays) for l, (name, arrays) in zip(mine, theirs)]
    skipped, todo = [], []
    for k, (layer, fname, arrays) in enumerate(pairs):
        weights = _legacy_weights(layer)
        bad = None
        if len(arrays) != len(weights):
            bad = (f"Weight count mismatch for layer #{k} (named {layer.name} in the current "
                   f"model, {fname} in the save file). Layer expects {len(weights)} weight(s). "
                   f"Received {len(arrays)} saved weight(s)")
        else:
            for w, a in zip(weights, arrays):
                if tuple(w.shape) != tuple(a.shape):
                    bad = (f"layer {layer.name!r} (file layer {fname!r}) weight {w.path!r}: "
                           f"shape {tuple(w.shape)} in the model, {tuple(a.shape)} in the file")
                    break
        if bad is not None:
            if not skip_mismatch:
                raise FileFormatError(r.path, bad + "; pass skip_mismatch=True to skip such "
                                                    "layers")
            skipped.append(bad)
            continue
        todo.extend(zip(weights, arrays, [layer.name] * len(weights)))
    for w, a, name in todo:
        if np.dtype(w.dtype).kind != "f":
            raise FileFormatError(r.path, f"layer {name!r} weight {w.path!r} has dtype "
                                          f"{w.dtype}; weights must be real floats")
        w.assign(a.astype(w.dtype, copy=False))
    for msg in skipped:
        warnings.warn(f"Skipping loading weights for {msg}", stacklevel=4)


def load_weights(model, path, by_name=False, skip_mismatch=False):
    if not model.built:
        raise ValueError(f"load_weights: build model {model.name!r} first (give an input shape or "
                         f"call it on data), so its weights exist")
    with H5Reader(path, what="Keras HDF5 weights file") as r:
        _load_into(model, r, _weights_root(r), by_name, skip_mismatch)


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    from .. import constraints, losses, metrics as metrics_mod
    from .. import object_registration as _registry
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"load_model: custom_objects must be a dict {{name: object}}, received "
                        f"{type(custom_objects).__name__}")
    with H5Reader(path, what="Keras HDF5 model file") as r:
        path = r.path
        spec = r.json_attr(r.f, "model_config", "the file")
        if spec is None:
            raise FileFormatError(path, "No model config found in the file; it holds weights "
                                        "only: build the model and call load_weights")
        if not isinstance(spec, dict):
            raise FileFormatError(path, "model_config does not hold an object")
        check_lambdas(spec, path, safe_mode)
        training = r.json_attr(r.f, "training_config", "the file")
        root = _weights_root(r)
        budget = count_values(r, root)
        with _registry.custom_object_scope(custom_objects):
            axone_spec = _saving._rebuild(path, "the saved architecture",
                                          keras_config.model_from_keras, spec)
            with loading_budget(path, budget):
                with constraints.custom_objects_scope(custom_objects):
                    model = _saving._rebuild(path, "the saved architecture",
                                             _saving.deserialize_model, axone_spec,
                                             custom_objects)
            _load_into(model, r, root, False, False)
            if compile and isinstance(training, dict) and training.get("loss") is not None:
                cc = dict(training, optimizer=training.get("optimizer_config"))
                comp = _saving._rebuild(path, "the saved compile arguments",
                                        keras_config.compile_from_keras, cc)
                _saving._rebuild(path, "the saved compile arguments",
                                 _saving._compile_from_entry, model, comp, {}, path,
                                 custom_objects, losses, metrics_mod)
                vals = _read_optimizer_weights(r)
                if vals and model.optimizer is not None:
                    install_optimizer_values(model.optimizer, model, vals, path)
    return model
