"""Saving and loading: a documented zip of JSON and .npy arrays, never pickle.

A model file (``model.save(path)``) is a zip archive holding
  ``axone.json``      {"format": "axone.model" or "axone.weights", "format_version": 1, ...}
  ``config.json``     the architecture: {"class_name", "config"} with every layer's config
                      and, for functional models, the graph (inbound nodes, inputs, outputs)
  ``compile.json``    the compile arguments (loss, metrics, loss_weights) and the optimizer
                      config and scalar state (model files only, when compiled)
  ``weights/NNNN.npy`` each weight in ``model.weights`` order (NumPy .npy, no pickle)
  ``optimizer/NAME.npy`` the optimizer's state arrays (model files only)
A weights file (``save_weights``) holds ``axone.json`` and ``weights/`` only.

Writes are atomic: the archive is written to a temporary file in the same folder, flushed to
disk, then renamed over the target, so a crash mid-write leaves the previous file intact.
Loading checks the archive and raises ValueError on a truncated, corrupted or foreign file.
"""
import io
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT_VERSION = 1


# ------------------------------------------------------------------ archive io
def _array_bytes(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _read_array(zf, name, path):
    try:
        with zf.open(name) as f:
            return np.lib.format.read_array(io.BytesIO(f.read()), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path}: the array {name!r} in this file is corrupted ({e})") from None


def atomic_write_zip(path, entries):
    """Write ``entries`` {name: bytes} as a zip at ``path`` atomically."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".axone-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, data in entries.items():
                    zf.writestr(name, data)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
        try:
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def open_archive(path, expected):
    """Open and validate an axone archive; returns (ZipFile, metadata)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder, not an axone model or weights file")
    try:
        zf = zipfile.ZipFile(path, "r")
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(b"\x89HDF"):
            raise ValueError(f"{path!r} is an HDF5 (.h5) file from Keras, not an axone file; "
                             f"this version reads axone archives only") from None
        raise ValueError(f"{path!r} is not a valid axone file: it is truncated, corrupted or of "
                         f"another format ({e})") from None
    if bad is not None:
        zf.close()
        raise ValueError(f"{path!r} is corrupted: the member {bad!r} fails its checksum")
    try:
        meta = json.loads(zf.read("axone.json").decode("utf-8"))
    except KeyError:
        zf.close()
        raise ValueError(f"{path!r} is a zip file but not an axone file (no axone.json)") from None
    except (ValueError, UnicodeDecodeError) as e:
        zf.close()
        raise ValueError(f"{path!r}: its axone.json is corrupted ({e})") from None
    fmt = meta.get("format")
    if fmt not in expected:
        zf.close()
        raise ValueError(f"{path!r} holds {fmt!r}, expected {' or '.join(expected)}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        zf.close()
        raise ValueError(f"{path!r} was written by a newer axone (format version "
                         f"{meta.get('format_version')}); upgrade axone to read it")
    return zf, meta


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
    if not model.built:
        raise ValueError(f"save_weights: model {model.name!r} has no weights yet; build it (call it "
                         f"on data, fit, or give an input shape) first")
    entries, names = _weights_entries(model)
    meta = {"format": "axone.weights", "format_version": FORMAT_VERSION, "weights": names,
            "model": model.name}
    entries["axone.json"] = json.dumps(meta, indent=1).encode("utf-8")
    atomic_write_zip(path, entries)


def _load_weight_arrays(zf, meta, path):
    n = len(meta.get("weights", []))
    arrays = []
    for i in range(n):
        arrays.append(_read_array(zf, f"weights/{i:04d}.npy", path))
    return arrays


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
        raise ValueError(f"{path!r} holds {len(arrays)} weights but model {model.name!r} has "
                         f"{len(weights)}: the architectures differ{where}")
    for w, a, info in zip(weights, arrays, infos):
        if tuple(a.shape) != tuple(w.shape):
            layer = w.path.split("/")[0]
            raise ValueError(
                f"{path!r} does not fit model {model.name!r}: layer {layer!r} weight {w.path!r} has "
                f"shape {tuple(w.shape)} in the model but {tuple(a.shape)} in the file "
                f"({info.get('path')!r})")
    for w, a in zip(weights, arrays):
        w.assign(a.astype(w.dtype, copy=False))


def load_weights(model, path):
    zf, meta = open_archive(path, ("axone.weights", "axone.model"))
    with zf:
        arrays = _load_weight_arrays(zf, meta, path)
    if not model.built:
        raise ValueError(f"load_weights: build model {model.name!r} first (give an input shape or "
                         f"call it on data), so its weights exist")
    assign_weights(model, arrays, meta["weights"], path)


# ------------------------------------------------------------------ whole model
def _serialize_metric(m):
    if isinstance(m, str) or m is None:
        return m
    if isinstance(m, (list, tuple)):
        return [_serialize_metric(x) for x in m]
    if isinstance(m, dict):
        return {k: _serialize_metric(v) for k, v in m.items()}
    if hasattr(m, "get_config"):
        return {"class_name": type(m).__name__, "config": m.get_config()}
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
    if isinstance(s, str) and losses.get(s) is not l:
        raise ValueError(f"save: cannot serialize the custom loss {l!r}; pass custom_objects when "
                         f"loading and give the loss by name")
    return s


def _optimizer_entries(opt):
    from ..optimizers import schedules
    cfg = opt.get_config()
    lr = opt._learning_rate
    if callable(lr):
        if isinstance(lr, schedules.LearningRateSchedule):
            cfg["learning_rate"] = schedules.serialize(lr)
        else:
            raise ValueError("save: a learning rate given as a plain function cannot be saved; "
                             "use an axone.optimizers.schedules object")
    state = {"iterations": opt.iterations}
    for k in ("_u_product", "_u_step"):
        if k in opt.__dict__:
            state[k] = opt.__dict__[k]
    arrays = {}
    if opt._flat_state is not None:
        for name, arr in opt._flat_state.items():
            if isinstance(arr, np.ndarray) and not name.startswith("_"):
                arrays[name] = arr
        state["flat_size"] = int(opt._flat_state["_size"])
    return {"class_name": type(opt).__name__, "config": cfg, "state": state}, arrays


def save_model(model, path, include_optimizer=True):
    if not model.built:
        raise ValueError(f"save: model {model.name!r} is not built yet; build it first")
    entries, names = _weights_entries(model)
    meta = {"format": "axone.model", "format_version": FORMAT_VERSION, "weights": names,
            "model": model.name}
    entries["config.json"] = json.dumps(serialize_model(model), indent=1).encode("utf-8")
    if getattr(model, "compiled", False):
        comp = {"loss": _serialize_loss(model._loss_spec), "metrics": _serialize_metric(model._metrics_spec),
                "weighted_metrics": _serialize_metric(model._weighted_spec),
                "loss_weights": model._loss_weights_spec}
        if include_optimizer and model.optimizer is not None:
            comp["optimizer"], arrays = _optimizer_entries(model.optimizer)
            for name, arr in arrays.items():
                entries[f"optimizer/{name}.npy"] = _array_bytes(arr)
        entries["compile.json"] = json.dumps(comp, indent=1).encode("utf-8")
    entries["axone.json"] = json.dumps(meta, indent=1).encode("utf-8")
    atomic_write_zip(path, entries)


def serialize_model(model):
    from .sequential import Sequential
    from .model import Model
    if isinstance(model, Sequential):
        return {"class_name": "Sequential", "config": model.get_config()}
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
                nodes.append([ref(t) for t in node.flat_inputs] + [
                    {"structure": "list" if isinstance(node.inputs, (list, tuple)) else "single"}])
            entry = {"class_name": type(layer).__name__, "name": layer.name,
                     "config": serialize_model(layer)["config"] if isinstance(layer, Model) else layer.get_config(),
                     "inbound_nodes": nodes}
            if isinstance(layer, Model):
                entry["nested_class_name"] = serialize_model(layer)["class_name"]
            layers.append(entry)
        return {"class_name": "Functional", "config": {
            "name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": [ref(t) for t in model._inputs],
            "output_layers": [ref(t) for t in model._outputs],
            "output_structure": "list" if isinstance(model._output_struct, (list, tuple)) else "single",
            "input_structure": "list" if isinstance(model._input_struct, (list, tuple)) else "single"}}
    raise ValueError(f"save: model {model.name!r} is a subclassed model without a functional graph; "
                     f"save its weights with save_weights and rebuild it in code")


def _layer_class(name, custom_objects):
    from .. import layers as layers_mod
    from .model import Model
    from .sequential import Sequential
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name == "Sequential":
        return Sequential
    if name in ("Functional", "Model"):
        return Model
    cls = getattr(layers_mod, name, None)
    if cls is None or not isinstance(cls, type):
        raise ValueError(f"Unknown layer class {name!r} in the saved model; pass it in "
                         f"custom_objects={{{name!r}: ...}}")
    return cls


def deserialize_model(spec, custom_objects=None):
    from ..layers.core import InputLayer
    from .model import Model
    from .sequential import Sequential
    cname, cfg = spec["class_name"], spec["config"]
    if cname == "Sequential":
        model = Sequential(name=cfg.get("name"), trainable=cfg.get("trainable", True))
        for entry in cfg["layers"]:
            cls = _layer_class(entry["class_name"], custom_objects)
            if cls in (Sequential, Model):
                layer = deserialize_model(entry, custom_objects)
            else:
                layer = cls.from_config(dict(entry["config"]))
            model.add(layer)
        return model
    if cname in ("Functional", "Model"):
        created = {}
        outputs_of = {}
        pending = list(cfg["layers"])
        for entry in pending:
            cls = _layer_class(entry.get("nested_class_name", entry["class_name"]), custom_objects)
            if cls in (Sequential, Model):
                layer = deserialize_model({"class_name": entry.get("nested_class_name", "Functional"),
                                           "config": entry["config"]}, custom_objects)
            else:
                layer = cls.from_config(dict(entry["config"]))
            created[entry["name"]] = layer
            if isinstance(layer, InputLayer):
                outputs_of[(layer.name, 0)] = [layer.output_tensor]
        # replay layer calls until every node is made
        remaining = [(e, i, n) for e in pending for i, n in enumerate(e["inbound_nodes"])]
        progress = True
        while remaining and progress:
            progress = False
            for item in list(remaining):
                entry, i, node = item
                refs, structure = node[:-1], node[-1]["structure"]
                if all((r[0], r[1]) in outputs_of for r in refs):
                    args = [outputs_of[(r[0], r[1])][r[2]] for r in refs]
                    layer = created[entry["name"]]
                    out = layer(args if structure == "list" else args[0])
                    outputs_of[(entry["name"], i)] = out if isinstance(out, list) else [out]
                    remaining.remove(item)
                    progress = True
        if remaining:
            raise ValueError("load_model: the saved graph is inconsistent (some layer calls could not "
                             "be replayed); the file may be corrupted")
        ins = [outputs_of[(r[0], r[1])][r[2]] for r in cfg["input_layers"]]
        outs = [outputs_of[(r[0], r[1])][r[2]] for r in cfg["output_layers"]]
        return Model(ins if cfg.get("input_structure") == "list" else ins[0],
                     outs if cfg.get("output_structure") == "list" else outs[0], name=cfg.get("name"))
    raise ValueError(f"load_model: unknown model class {cname!r}")


def load_model(path, custom_objects=None, compile=True):
    """Load a model saved with ``model.save(path)``: architecture, weights, compile state."""
    from .. import losses, metrics as metrics_mod, optimizers
    from ..optimizers import schedules
    zf, meta = open_archive(path, ("axone.model",))
    with zf:
        try:
            spec = json.loads(zf.read("config.json").decode("utf-8"))
        except KeyError:
            raise ValueError(f"{path!r}: the model file has no config.json") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path!r}: config.json is corrupted ({e})") from None
        arrays = _load_weight_arrays(zf, meta, path)
        comp = None
        opt_arrays = {}
        if "compile.json" in zf.namelist():
            comp = json.loads(zf.read("compile.json").decode("utf-8"))
            for name in zf.namelist():
                if name.startswith("optimizer/") and name.endswith(".npy"):
                    opt_arrays[name[len("optimizer/"):-4]] = _read_array(zf, name, path)
    try:
        model = deserialize_model(spec, custom_objects)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path!r}: the saved architecture could not be rebuilt ({e})") from None
    assign_weights(model, arrays, meta["weights"], path)
    if compile and comp is not None:
        def _loss(l):
            if isinstance(l, dict) and "class_name" in l:
                return losses.get(l)
            if isinstance(l, dict):
                return {k: _loss(v) for k, v in l.items()}
            if isinstance(l, list):
                return [_loss(x) for x in l]
            if custom_objects and isinstance(l, str) and l in custom_objects:
                return custom_objects[l]
            return l

        def _metric(m):
            if isinstance(m, dict) and "class_name" in m:
                return metrics_mod.get(m)
            if isinstance(m, dict):
                return {k: _metric(v) for k, v in m.items()}
            if isinstance(m, list):
                return [_metric(x) for x in m]
            return m
        opt = "rmsprop"
        if "optimizer" in comp:
            o = comp["optimizer"]
            cfg = dict(o["config"])
            if isinstance(cfg.get("learning_rate"), dict):
                cfg["learning_rate"] = schedules.deserialize(cfg["learning_rate"])
            opt = optimizers.get({"class_name": o["class_name"], "config": cfg})
            st = o.get("state", {})
            opt.iterations = int(st.get("iterations", 0))
            for k in ("_u_product", "_u_step"):
                if k in st:
                    setattr(opt, k, st[k])
            if opt_arrays and "flat_size" in st:
                size = int(st["flat_size"])
                state = {k: v for k, v in opt_arrays.items()}
                ref = next(iter(state.values()))
                state["_size"] = size
                state["_tmp"] = np.empty_like(ref)
                opt._flat_state = state
        model.compile(optimizer=opt, loss=_loss(comp["loss"]), metrics=_metric(comp.get("metrics")),
                      weighted_metrics=_metric(comp.get("weighted_metrics")),
                      loss_weights=comp.get("loss_weights"))
    return model
