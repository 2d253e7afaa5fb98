"""The one translation between axone's saved architecture and Keras 3's ``config.json``.

axone's layers already write Keras's ``get_config`` keys; what differs is the frame around them:

* every object entry carries Keras's ``module`` (``keras.layers``, ``keras.initializers``, …) and
  ``registered_name`` (None for Keras's own classes, the registered name for a user's class);
  a layer's ``dtype`` is Keras's ``DTypePolicy`` entry;
* a functional node is Keras's ``{"args": [...], "kwargs": {...}}`` with each symbolic tensor as
  ``{"class_name": "__keras_tensor__", "config": {"shape", "dtype", "keras_history"}}``, where
  axone writes its input references then ``{"structure", "kwargs"}`` (a tensor keyword argument as
  ``{"__tensor__": j}``); Keras 2's (legacy ``.h5``) node is a list of ``[layer, node, tensor,
  kwargs]``;
* a positional argument after the first (``MultiHeadAttention(query, value)``) is named after the
  layer's ``call`` parameter, as axone records it;
* the model entry: ``Functional`` under ``keras.src.models.functional``, ``Sequential`` under
  ``keras``, with the model's ``build_config`` and ``compile_config`` (loss, metrics, optimizer).

:func:`to_keras` writes the Keras form of a model, :func:`from_keras` turns a Keras (3 or 2)
config into the form :func:`axone.models.saving.deserialize_model` rebuilds.  Both are pure
functions of JSON values (plus the model for shapes), so one is the inverse of the other.
"""
import inspect

from .. import object_registration as _registry

#: the Keras module each family of entries (by the config key that holds it) is written under
_FAMILY_MODULES = (("initializer", "keras.initializers"), ("regularizer", "keras.regularizers"),
                   ("constraint", "keras.constraints"), ("activation", "keras.activations"))


def _family_module(key):
    if not isinstance(key, str):
        return None
    for suffix, module in _FAMILY_MODULES:
        if key == suffix or key.endswith("_" + suffix):
            return module
    return None


def _dtype_entry(dtype):
    if isinstance(dtype, str):
        return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype},
                "registered_name": None}
    return dtype


def _object_entry(v, module):
    """An inner ``{"class_name", "config"}`` entry with Keras's module / registered_name."""
    if not (isinstance(v, dict) and isinstance(v.get("class_name"), str) and "config" in v):
        return v
    out = dict(v)
    if out["class_name"] == "function" or "module" in out:
        return out
    out.setdefault("registered_name", None)
    out["module"] = module if out.get("registered_name") in (None, out["class_name"]) \
        else "builtins"
    if out.get("registered_name") == out["class_name"]:
        out["registered_name"] = None
    return out


def _layer_config_to_keras(cfg):
    out = {}
    for k, v in cfg.items():
        if k == "dtype":
            out[k] = _dtype_entry(v)
            continue
        module = _family_module(k)
        if module is not None:
            v = _object_entry(v, module)
        elif isinstance(v, dict) and isinstance(v.get("class_name"), str) and "config" in v \
                and isinstance(v["config"], dict) and "module" not in v:
            # an inner layer (Bidirectional's, TimeDistributed's, a cell)
            v = _layer_entry_to_keras(v)
        elif isinstance(v, list) and v and all(isinstance(x, dict) and "class_name" in x
                                               for x in v):
            v = [_layer_entry_to_keras(x) if isinstance(x.get("config"), dict) else x for x in v]
        out[k] = v
    return out


#: layers whose class Keras's config names by its exported name
_KERAS_CLASS_NAMES = {"GroupedQueryAttention": "GroupQueryAttention"}


def _layer_entry_to_keras(entry):
    out = dict(entry)
    if "module" not in out and out.get("class_name") in _KERAS_CLASS_NAMES:
        out["class_name"] = _KERAS_CLASS_NAMES[out["class_name"]]
    cfg = entry.get("config")
    if isinstance(cfg, dict):
        out["config"] = _layer_config_to_keras(cfg)
    if "module" not in out:
        out["module"] = "keras.layers"
        out["registered_name"] = None
    return out


# ------------------------------------------------------------------ axone -> Keras
def _tensor_shapes(model):
    """{(layer name, node index, tensor index): (shape, dtype)} of a functional model, with the
    node indices ``serialize_model`` writes (the model's own nodes of each layer)."""
    shapes = {}
    own = set(id(n) for n in getattr(model, "_nodes", ()))
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            t = layer.output_tensor
            shapes[(layer.name, 0, 0)] = (list(t.shape), str(getattr(t, "dtype", "float32")))
            continue
        mine = [n for n in layer._inbound_nodes if id(n) in own]
        for i, node in enumerate(mine):
            for j, t in enumerate(node.flat_outputs):
                shapes[(layer.name, i, j)] = (list(t.shape), str(getattr(t, "dtype", "float32")))
    return shapes


def _kt(ref, shapes):
    shape, dtype = shapes.get(tuple(ref), (None, "float32"))
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": dtype, "keras_history": list(ref)}}


def _replace_tensor_refs(v, f):
    if isinstance(v, dict):
        if set(v) == {"__tensor__"} and type(v["__tensor__"]) is int:
            return f(v["__tensor__"])
        return {k: _replace_tensor_refs(x, f) for k, x in v.items()}
    if isinstance(v, list):
        return [_replace_tensor_refs(x, f) for x in v]
    return v


def _count_refs(v):
    if isinstance(v, dict):
        if set(v) == {"__tensor__"}:
            return 1
        return sum(_count_refs(x) for x in v.values())
    if isinstance(v, list):
        return sum(_count_refs(x) for x in v)
    return 0


def _node_to_keras(node, shapes):
    refs, meta = node[:-1], node[-1]
    kwargs = meta.get("kwargs", {})
    npos = len(refs) - _count_refs(kwargs)
    if meta.get("structure") == "list":
        args = [[_kt(r, shapes) for r in refs[:npos]]]
    else:
        args = [_kt(r, shapes) for r in refs[:npos]]
    return {"args": args, "kwargs": _replace_tensor_refs(kwargs, lambda j: _kt(refs[j], shapes))}


def _functional_to_keras(spec, model):
    cfg = dict(spec["config"])
    shapes = _tensor_shapes(model)
    by_name = {l.name: l for l in model.layers}
    layers = []
    for entry in cfg["layers"]:
        layer = by_name.get(entry.get("name"))
        if "nested_class_name" in entry and layer is not None and hasattr(layer, "layers"):
            out = model_to_keras(entry, layer)
            out["name"] = entry["name"]
            out["inbound_nodes"] = [_node_to_keras(n, shapes) for n in entry["inbound_nodes"]]
        else:
            out = _layer_entry_to_keras(entry)
            out["inbound_nodes"] = [_node_to_keras(n, shapes) for n in entry["inbound_nodes"]]
            if layer is not None and getattr(layer, "built", False) and \
                    hasattr(layer, "get_build_config") and type(layer).__name__ != "InputLayer":
                build = layer.get_build_config()
                if build is not None:
                    out["build_config"] = build
        layers.append(out)
    cfg["layers"] = layers
    keep = ("name", "trainable", "layers", "input_layers", "output_layers")
    cfg = {k: cfg[k] for k in keep if k in cfg} | {k: v for k, v in cfg.items() if k not in keep
                                                  and k not in ("input_structure",
                                                                "output_structure")}
    if spec["config"].get("input_structure") == "single" and len(cfg["input_layers"]) == 1:
        cfg["input_layers"] = cfg["input_layers"][0]
    if spec["config"].get("output_structure") == "single" and len(cfg["output_layers"]) == 1:
        cfg["output_layers"] = cfg["output_layers"][0]
    return cfg


def model_to_keras(spec, model):
    """Keras 3's entry of ``model`` from its axone ``spec`` (``serialize_model(model)``)."""
    cname = spec.get("class_name")
    kind = spec.get("nested_class_name", cname)
    if kind == "Sequential":
        cfg = dict(spec["config"])
        subs = [l for l in model.layers]
        layers = []
        k = 0
        for entry in cfg["layers"]:
            if entry.get("class_name") == "InputLayer":
                layers.append(_layer_entry_to_keras(entry))
                continue
            layer = subs[k] if k < len(subs) else None
            k += 1
            if "nested_class_name" in entry or entry.get("class_name") in ("Sequential",
                                                                           "Functional"):
                layers.append(model_to_keras(entry, layer))
                continue
            out = _layer_entry_to_keras(entry)
            if layer is not None and getattr(layer, "built", False):
                build = layer.get_build_config()
                if build is not None:
                    out["build_config"] = build
            layers.append(out)
        cfg["layers"] = layers
        cfg.setdefault("dtype", _dtype_entry("float32"))
        out = {"module": "keras", "class_name": "Sequential", "config": cfg,
               "registered_name": None}
        shape = _input_shape(model)
        if shape is not None:
            cfg["build_input_shape"] = shape
            out["build_config"] = {"input_shape": shape}
    elif kind in ("Functional", "Model"):
        out = {"module": "keras.src.models.functional", "class_name": "Functional",
               "config": _functional_to_keras(spec, model), "registered_name": "Functional",
               "build_config": {"input_shape": None}}
    else:                                   # a subclassed model: its own config, as Keras
        out = dict(spec)
        out.pop("nested_class_name", None)
        return out
    if cname not in ("Sequential", "Functional", "Model"):     # a registered subclass
        out["class_name"] = cname
        out["module"] = spec.get("module", out["module"])
        out["registered_name"] = spec.get("registered_name")
    return out


def _input_shape(model):
    try:
        ins = model.inputs
    except Exception:
        return None
    if not ins:
        return None
    shapes = [list(t.shape) for t in ins]
    return shapes[0] if len(shapes) == 1 else shapes


def _keras_entry(v, module):
    if isinstance(v, dict) and isinstance(v.get("class_name"), str) and "module" not in v:
        out = dict(v)
        reg = out.get("registered_name")
        out["module"] = module if reg in (None, out["class_name"]) else "builtins"
        out["registered_name"] = None if reg in (None, out["class_name"]) else reg
        return out
    if isinstance(v, list):
        return [_keras_entry(x, module) for x in v]
    if isinstance(v, dict) and "class_name" not in v:
        return {k: _keras_entry(x, module) for k, x in v.items()}
    return v


def compile_to_keras(comp):
    """Keras's ``compile_config`` from axone's compile entry (the optimizer's state stays out)."""
    out = {"optimizer": None, "loss": _keras_entry(comp.get("loss"), "keras.losses"),
           "loss_weights": comp.get("loss_weights"),
           "metrics": _keras_entry(comp.get("metrics"), "keras.metrics"),
           "weighted_metrics": _keras_entry(comp.get("weighted_metrics"), "keras.metrics"),
           "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}
    opt = comp.get("optimizer")
    if opt is not None:
        out["optimizer"] = optimizer_to_keras(opt)
    return out


def optimizer_to_keras(opt):
    """Keras's entry of an optimizer ``{"class_name", "config"}``: ``module`` and
    ``registered_name`` on it, on a schedule learning rate, and on the optimizers a
    LossScaleOptimizer (``inner_optimizer``) or MultiOptimizer (its ``OptimizerMap``) holds."""
    cname, cfg = opt["class_name"], dict(opt["config"])
    lr = cfg.get("learning_rate")
    if isinstance(lr, dict) and "class_name" in lr:
        sc = {k: v for k, v in (lr.get("config") or {}).items()
              if not (k == "name" and v is None)}     # (Keras's schedules need a name: default)
        cfg["learning_rate"] = {"module": "keras.optimizers.schedules",
                                "class_name": lr["class_name"], "config": sc,
                                "registered_name": None}
    if cname == "LossScaleOptimizer" and isinstance(cfg.get("inner_optimizer"), dict):
        cfg["inner_optimizer"] = optimizer_to_keras(cfg["inner_optimizer"])
    m = cfg.get("optimizer_map")
    if cname == "MultiOptimizer" and isinstance(m, dict) and isinstance(m.get("config"), dict):
        mc = m["config"]
        cfg["optimizer_map"] = {
            "module": "keras.optimizers", "class_name": "OptimizerMap", "registered_name": None,
            "config": {"default_optimizer": optimizer_to_keras(mc["default_optimizer"]),
                       "optimizer_map": {k: optimizer_to_keras(o) for k, o in
                                         (mc.get("optimizer_map") or {}).items()}}}
    return {"module": "keras.optimizers", "class_name": cname, "config": cfg,
            "registered_name": None}


def optimizer_from_keras(opt):
    """axone's ``{"class_name", "config"}`` of a Keras optimizer entry (nested optimizers and
    schedules without Keras's ``module`` / ``registered_name``)."""
    if not isinstance(opt.get("config"), dict) or not isinstance(opt.get("class_name"), str):
        raise ValueError("the optimizer entry must be {'class_name', 'config'}")
    cname, cfg = opt["class_name"], dict(opt["config"])
    lr = cfg.get("learning_rate")
    if isinstance(lr, dict) and "module" in lr:
        cfg["learning_rate"] = {k: v for k, v in lr.items() if k != "module"}
    inner = cfg.get("inner_optimizer")
    if cname == "LossScaleOptimizer" and isinstance(inner, dict):
        cfg["inner_optimizer"] = optimizer_from_keras(inner)
    m = cfg.get("optimizer_map")
    if cname == "MultiOptimizer" and isinstance(m, dict) and isinstance(m.get("config"), dict):
        mc = m["config"]
        if not isinstance(mc.get("default_optimizer"), dict) or \
                not isinstance(mc.get("optimizer_map") or {}, dict):
            raise ValueError("the MultiOptimizer's OptimizerMap entry must be "
                             "{'default_optimizer', 'optimizer_map'}")
        cfg["optimizer_map"] = {"class_name": "OptimizerMap", "config": {
            "default_optimizer": optimizer_from_keras(mc["default_optimizer"]),
            "optimizer_map": {k: optimizer_from_keras(o) for k, o in
                              (mc.get("optimizer_map") or {}).items()
                              if isinstance(o, dict)}}}
    return {"class_name": cname, "config": cfg}


# ------------------------------------------------------------------ Keras -> axone
def _is_kt(v):
    return isinstance(v, dict) and v.get("class_name") == "__keras_tensor__" and \
        isinstance(v.get("config"), dict)


def _history(v, what):
    h = v["config"].get("keras_history")
    if not (isinstance(h, list) and len(h) == 3 and isinstance(h[0], str)
            and type(h[1]) is int and type(h[2]) is int):
        raise ValueError(f"{what}: a tensor's keras_history must be [layer, node, tensor], "
                         f"received {h!r}")
    return list(h)


def _call_params(cls):
    try:
        params = list(inspect.signature(cls.call).parameters)
    except (TypeError, ValueError, AttributeError):
        return []
    return [p for p in params if p not in ("self", "args", "kwargs")]


def _node_from_keras(node, what, cls):
    if isinstance(node, list):              # Keras 2: [[layer, node, tensor, kwargs], ...]
        refs = []
        kwargs = {}
        for r in node:
            if not (isinstance(r, list) and len(r) in (3, 4)):
                raise ValueError(f"{what}: a Keras 2 node input must be [layer, node, tensor, "
                                 f"kwargs], received {r!r:.200}")
            refs.append(list(r[:3]))
            if len(r) == 4 and isinstance(r[3], dict):
                kwargs = r[3]
        meta = {"structure": "list" if len(refs) > 1 else "single"}
        if kwargs:
            meta["kwargs"] = kwargs
        return refs + [meta]
    if not isinstance(node, dict) or not isinstance(node.get("args", []), list) or \
            not isinstance(node.get("kwargs", {}), dict):
        raise ValueError(f"{what}: a node must be {{'args': [...], 'kwargs': {{...}}}}, received "
                         f"{node!r:.200}")
    args, kwargs = node.get("args", []), dict(node.get("kwargs", {}))
    refs = []
    if not args:
        raise ValueError(f"{what}: a node without positional inputs is not supported")
    first = args[0]
    if isinstance(first, list) and all(_is_kt(x) for x in first):
        structure = "list"
        refs = [_history(x, what) for x in first]
    elif _is_kt(first):
        structure = "single"
        refs = [_history(first, what)]
    else:
        raise ValueError(f"{what}: the first argument of a node must be a tensor or a list of "
                         f"tensors, received {first!r:.200}")
    if len(args) > 1:
        names = _call_params(cls) if cls is not None else []
        for k, a in enumerate(args[1:], start=1):
            if k >= len(names):
                raise ValueError(f"{what}: {len(args)} positional arguments for a call that "
                                 f"takes {len(names)}")
            kwargs[names[k]] = a

    def enc(v):
        if _is_kt(v):
            refs.append(_history(v, what))
            return {"__tensor__": len(refs) - 1}
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        if isinstance(v, list):
            return [enc(x) for x in v]
        return v
    kwargs = {k: enc(v) for k, v in kwargs.items()}
    meta = {"structure": structure}
    if kwargs:
        meta["kwargs"] = kwargs
    return refs + [meta]


def _plain_dtype(v):
    if isinstance(v, dict) and v.get("class_name") in ("DTypePolicy", "FloatDTypePolicy",
                                                       "Policy") \
            and isinstance(v.get("config"), dict):
        return v["config"].get("name", "float32")
    return v


def _layer_config_from_keras(cfg):
    out = {}
    for k, v in cfg.items():
        if k == "dtype":
            out[k] = _plain_dtype(v)
            continue
        if isinstance(v, dict) and isinstance(v.get("class_name"), str) and \
                isinstance(v.get("config"), dict) and _family_module(k) is None and \
                v.get("class_name") not in ("function", "__numpy__", "__tensor__"):
            v = layer_entry_from_keras(v)
        elif isinstance(v, list) and v and all(isinstance(x, dict) and "class_name" in x
                                               for x in v):
            v = [layer_entry_from_keras(x) if isinstance(x.get("config"), dict) else x
                 for x in v]
        out[k] = v
    return out


def _drop_mirrored_backward(cfg):
    """Keras writes Bidirectional's backward layer even when it is the forward layer's mirror
    (the same config with ``go_backwards`` flipped), which axone rebuilds by itself."""
    fwd, bwd = cfg.get("layer"), cfg["backward_layer"]
    same = isinstance(fwd, dict) and fwd.get("class_name") == bwd.get("class_name")
    if same:
        a, b = dict(fwd.get("config", {})), dict(bwd.get("config", {}))
        same = bool(a.pop("go_backwards", False)) != bool(b.pop("go_backwards", False))
        a.pop("name", None), b.pop("name", None)
        same = same and a == b
    if not same:
        raise NotImplementedError(f"Bidirectional {cfg.get('name')!r}: a backward_layer other "
                                  f"than the forward layer's mirror is not implemented in axone")
    return {k: v for k, v in cfg.items() if k != "backward_layer"}


#: arguments Keras's configs hold that axone's layers do not take, with the value under which
#: they change nothing (dropped then; any other value is NotImplementedError)
_KERAS_ONLY_KEYS = {"InputLayer": {"sparse": False, "ragged": False, "optional": False},
                    "BatchNormalization": {"renorm": False, "renorm_clipping": None,
                                           "renorm_momentum": 0.99}}


def _drop_keras_only(cname, cfg):
    for k, neutral in _KERAS_ONLY_KEYS.get(cname, {}).items():
        if k not in cfg:
            continue
        v = cfg.pop(k)
        if v != neutral and not (neutral is False and v is None):
            raise NotImplementedError(f"{cname} {cfg.get('name')!r}: {k}={v!r} is not "
                                      f"implemented in axone")
    return cfg


def layer_entry_from_keras(entry):
    """axone's entry of one Keras layer entry (nested models through :func:`model_from_keras`)."""
    cname = entry.get("class_name")
    if cname in ("Sequential", "Functional", "Model") or "nested_class_name" in entry or (
            isinstance(entry.get("config"), dict) and "input_layers" in entry["config"]):
        out = model_from_keras(entry, _top=False)
        for k in ("name", "inbound_nodes"):
            if k in entry:
                out[k] = entry[k]
        return out
    out = {k: v for k, v in entry.items() if k not in ("module", "build_config",
                                                        "shared_object_id")}
    if entry.get("registered_name") is None or (
            str(entry.get("module", "keras")).startswith("keras")):
        out.pop("registered_name", None)
    cfg = entry.get("config")
    if isinstance(cfg, dict):
        cfg = _layer_config_from_keras(cfg)
        if "batch_input_shape" in cfg:            # Keras 2
            shape = cfg.pop("batch_input_shape")
            if cname == "InputLayer":
                cfg.setdefault("batch_shape", shape)
            else:
                out["_batch_input_shape"] = shape
        if cname == "Bidirectional" and isinstance(cfg.get("backward_layer"), dict):
            cfg = _drop_mirrored_backward(cfg)
        cfg = _drop_keras_only(cname, cfg)
        out["config"] = cfg
    return out


def _ref_list(v, what):
    if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str):
        return [v], "single"
    if isinstance(v, list):
        return [list(x) for x in v], "list"
    if isinstance(v, dict):
        raise ValueError(f"{what}: dict inputs or outputs are not supported, received "
                         f"{sorted(v)!r:.200}")
    raise ValueError(f"{what}: expected a list of [layer, node, tensor], received {v!r:.200}")


def _strip_shared_ids(v):
    """The config without Keras's ``shared_object_id`` markers (objects shared between
    layers are rebuilt one per use, as axone's own files hold them)."""
    if isinstance(v, dict):
        return {k: _strip_shared_ids(x) for k, x in v.items() if k != "shared_object_id"}
    if isinstance(v, list):
        return [_strip_shared_ids(x) for x in v]
    return v


def model_from_keras(spec, _top=True):
    """axone's architecture entry from a Keras 3 (or Keras 2) model entry."""
    from ..models.saving import _layer_class
    if _top:
        spec = _strip_shared_ids(spec)
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise ValueError("the model config must be {'class_name': ..., 'config': {...}}")
    cname, cfg = spec.get("class_name"), dict(spec["config"])
    if cname == "Sequential" or (cname not in ("Functional", "Model") and
                                 isinstance(cfg.get("layers"), list) and
                                 "input_layers" not in cfg):
        if not isinstance(cfg.get("layers"), list):
            raise ValueError("a Sequential config must hold a 'layers' list")
        layers = [layer_entry_from_keras(e) if isinstance(e, dict) else e for e in cfg["layers"]]
        shape = cfg.get("build_input_shape") or (spec.get("build_config") or {}).get(
            "input_shape")
        if layers and isinstance(layers[0], dict) and "_batch_input_shape" in layers[0]:
            shape = layers[0]["_batch_input_shape"]
        for e in layers:
            if isinstance(e, dict):
                e.pop("_batch_input_shape", None)
        if layers and isinstance(layers[0], dict) and layers[0].get("class_name") != \
                "InputLayer" and isinstance(shape, list):
            layers.insert(0, {"class_name": "InputLayer", "config": {
                "batch_shape": shape, "dtype": "float32", "name": cfg.get("name", "sequential")
                + "_input"}})
        new = {"name": cfg.get("name"), "trainable": cfg.get("trainable", True),
               "layers": layers}
        out = {"class_name": "Sequential", "config": new}
        if cname != "Sequential":
            out["class_name"] = cname
            out["nested_class_name"] = "Sequential"
            out["registered_name"] = spec.get("registered_name")
        return out
    if cname in ("Functional", "Model") or "input_layers" in cfg:
        layers = []
        for e in cfg.get("layers", []):
            if not isinstance(e, dict):
                raise ValueError(f"a layer entry must be an object, received {e!r:.200}")
            name = e.get("name") or (e.get("config") or {}).get("name")
            what = f"layer {name!r}"
            out = layer_entry_from_keras(e)
            out.pop("_batch_input_shape", None)
            out["name"] = name
            try:
                cls = _layer_class(out["class_name"], None, out.get("registered_name")) \
                    if "nested_class_name" not in out else None
            except ValueError:
                cls = None
            nodes = e.get("inbound_nodes", [])
            if not isinstance(nodes, list):
                raise ValueError(f"{what}: inbound_nodes must be a list")
            out["inbound_nodes"] = [_node_from_keras(n, what, cls) for n in nodes]
            layers.append(out)
        ins, in_struct = _ref_list(cfg.get("input_layers"), "input_layers")
        outs, out_struct = _ref_list(cfg.get("output_layers"), "output_layers")
        new = {"name": cfg.get("name"), "trainable": cfg.get("trainable", True),
               "layers": layers, "input_layers": ins, "output_layers": outs,
               "input_structure": in_struct, "output_structure": out_struct}
        out = {"class_name": "Functional", "config": new}
        if cname not in ("Functional", "Model"):
            out["class_name"] = cname
            out["nested_class_name"] = "Functional"
            out["registered_name"] = spec.get("registered_name")
        return out
    out = dict(spec)                           # a subclassed model
    out["nested_class_name"] = "Subclassed"
    return out


def _plain_entry(v):
    """A loss / metric entry as axone's compile entry holds it."""
    if isinstance(v, list):
        return [_plain_entry(x) for x in v]
    if isinstance(v, dict) and "class_name" not in v:
        return {k: _plain_entry(x) for k, x in v.items()}
    if isinstance(v, dict):
        if v.get("class_name") == "function" and isinstance(v.get("config"), str) and \
                v.get("module") not in ("builtins",) and _registry.lookup([v["config"]]) is None:
            return v["config"]
        out = {k: x for k, x in v.items() if k != "module"}
        if out.get("registered_name") is None:
            out.pop("registered_name", None)
        return out
    return v


def compile_from_keras(cc):
    """axone's compile entry from Keras's ``compile_config`` (without the optimizer state)."""
    if not isinstance(cc, dict):
        raise ValueError("compile_config must be an object")
    comp = {"loss": _plain_entry(cc.get("loss")), "metrics": _plain_entry(cc.get("metrics")),
            "weighted_metrics": _plain_entry(cc.get("weighted_metrics")),
            "loss_weights": cc.get("loss_weights")}
    opt = cc.get("optimizer")
    if isinstance(opt, str):
        comp["optimizer"] = {"class_name": opt, "config": {}, "state": {"iterations": 0}}
    elif isinstance(opt, dict):
        comp["optimizer"] = dict(optimizer_from_keras(opt), state={"iterations": 0})
    return comp
