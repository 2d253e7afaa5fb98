"""``keras.saving``: registering user objects, serializing objects as Keras 3's dicts, and
saving / loading models and weights (axone's own zip format, see :mod:`axone.models.saving`).

Loading never executes code from a file: classes and functions are found by name in
``custom_objects``, an open ``custom_object_scope`` or the ``register_keras_serializable``
registry, and an unknown name is an error naming it.
"""
import types

import numpy as np

from . import (activations, constraints, initializers, layers, losses, metrics, optimizers,
               regularizers)
from .layers.base import Layer
from .models import saving as _model_saving
from .models.model import Model
from .object_registration import (CustomObjectScope, custom_object_scope, get_custom_objects,
                                  get_registered_name, get_registered_object, lookup,
                                  register_keras_serializable)
from .optimizers import schedules
from . import formats as _formats  # noqa: F401,E402  (registers Keras's file formats)

__all__ = ["register_keras_serializable", "get_registered_name", "get_registered_object",
           "custom_object_scope", "CustomObjectScope", "get_custom_objects",
           "serialize_keras_object", "deserialize_keras_object", "save_model", "load_model",
           "save_weights", "load_weights"]

# the Keras module each family of axone's public objects is serialized under
_FAMILIES = [("keras.layers", layers), ("keras.losses", losses), ("keras.metrics", metrics),
             ("keras.optimizers", optimizers), ("keras.optimizers.schedules", schedules),
             ("keras.initializers", initializers), ("keras.regularizers", regularizers),
             ("keras.constraints", constraints), ("keras.activations", activations)]
_PLAIN = (str, int, float, bool)


def _public_module(cls):
    for name, mod in _FAMILIES:
        if getattr(mod, cls.__name__, None) is cls:
            return name
    return None


def serialize_keras_object(obj):
    """The dict Keras 3 writes for ``obj``: ``{"module", "class_name", "config",
    "registered_name"}`` (+ ``build_config`` for a built layer); plain values, lists, tuples and
    dicts element by element; a function as ``{"class_name": "function", "config": name}``."""
    if obj is None or isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, (list, tuple)):
        out = [serialize_keras_object(x) for x in obj]
        return tuple(out) if isinstance(obj, tuple) else out
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return {"class_name": "__numpy__", "config": {"value": obj.tolist(),
                                                      "dtype": str(obj.dtype)}}
    if isinstance(obj, np.dtype):
        return str(obj)
    if isinstance(obj, types.FunctionType):
        return {"module": "builtins", "class_name": "function",
                "config": get_registered_name(obj), "registered_name": "function"}
    if isinstance(obj, Model):
        return _model_saving.model_entry(obj)
    if isinstance(obj, type):
        return {"module": obj.__module__, "class_name": "__type__", "config": obj.__name__,
                "registered_name": get_registered_name(obj)}
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize object {obj!r} of type {type(obj)}. To be "
                        f"serializable, a class must implement the `get_config()` method.")
    cls = type(obj)
    config = obj.get_config()
    if not isinstance(config, dict):
        raise TypeError(f"The `get_config()` method of {obj} should return a dict. It returned: "
                        f"{config}")
    config = {k: serialize_keras_object(v) for k, v in config.items()}
    from .object_registration import is_registered
    public = None if is_registered(cls) else _public_module(cls)
    out = {"module": public or cls.__module__, "class_name": cls.__name__, "config": config,
           "registered_name": None if public else get_registered_name(cls)}
    if isinstance(obj, Layer):
        build = obj.get_build_config()
        if build is not None:
            out["build_config"] = build
    return out


def _builtin(module, name):
    families = [m for n, m in _FAMILIES if n == module] or [m for _, m in _FAMILIES]
    for mod in families:
        obj = getattr(mod, name, None)
        if obj is not None and not isinstance(obj, types.ModuleType):
            return obj
    return _model_saving._MODEL_CLASSES.get(name)


def _locate_error(kind, name, config):
    return TypeError(f"Could not locate {kind} {name!r}. Make sure custom classes and functions "
                     f"are decorated with `@keras.saving.register_keras_serializable()`, or "
                     f"pass them in custom_objects. If they are already decorated, make sure "
                     f"they are all imported so that the decorator is run before trying to load "
                     f"them. Full object config: {config}")


def deserialize_keras_object(config, custom_objects=None, safe_mode=True, **kwargs):
    """The object :func:`serialize_keras_object`'s dict describes (a new one).

    User classes and functions are looked up by name (registered name first) in
    ``custom_objects``, the open scopes and the registry, then axone's own by ``module``.
    ``safe_mode`` is accepted for Keras compatibility; axone never loads code (a Keras
    ``__lambda__`` entry is refused whatever its value)."""
    if kwargs:
        raise TypeError(f"deserialize_keras_object: unexpected keyword argument(s) "
                        f"{sorted(kwargs)}")
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"deserialize_keras_object: custom_objects must be a dict, received "
                        f"{type(custom_objects).__name__}")
    with custom_object_scope(custom_objects):
        return _deserialize(config, custom_objects)


def _deserialize(config, custom_objects):
    if config is None or isinstance(config, (int, float, bool)):
        return config
    if isinstance(config, str):
        obj = lookup([config], custom_objects)
        return obj if obj is not None else config
    if isinstance(config, (list, tuple)):
        out = [_deserialize(x, custom_objects) for x in config]
        return tuple(out) if isinstance(config, tuple) else out
    if not isinstance(config, dict):
        raise TypeError(f"Could not parse config: {config!r}")
    if "class_name" not in config or "config" not in config:
        return {k: _deserialize(v, custom_objects) for k, v in config.items()}
    cname, inner = config["class_name"], config["config"]
    module = config.get("module")
    if cname == "__numpy__":
        return np.array(inner["value"], dtype=inner["dtype"])
    if cname == "__lambda__":
        raise ValueError("deserialize_keras_object: the config holds a Python lambda as "
                         "bytecode; axone never executes code from a configuration, also with "
                         "safe_mode=False: register the function with "
                         "keras.saving.register_keras_serializable() instead")
    if cname in ("function", "__type__"):
        obj = lookup([inner], custom_objects) if isinstance(inner, str) else None
        if obj is None and isinstance(inner, str):
            obj = _builtin(module, inner) if module not in (None, "builtins") else None
            for mod in (activations, losses, metrics):
                if obj is None:
                    f = getattr(mod, inner, None)
                    obj = f if callable(f) and not isinstance(f, type) else None
        if obj is None:
            raise _locate_error("function" if cname == "function" else "class", inner, config)
        return obj
    if isinstance(config.get("nested_class_name"), str) or cname in ("Sequential", "Functional"):
        return _model_saving.deserialize_model(config, custom_objects)
    cls = lookup([config.get("registered_name"), cname], custom_objects)
    if cls is None:
        cls = _builtin(module, cname)
    if cls is None or not isinstance(cls, type):
        raise _locate_error("class", cname, config)
    if isinstance(cls, type) and issubclass(cls, Model) and not isinstance(inner, dict):
        raise TypeError(f"the config of model class {cname!r} must be a dict")
    if isinstance(cls, type) and issubclass(cls, Model) and cls not in (
            _model_saving._MODEL_CLASSES.get("Model"), _model_saving._MODEL_CLASSES.get("Sequential")):
        return _model_saving._subclassed_from_entry(config, custom_objects)
    if not isinstance(inner, dict):
        raise TypeError(f"the config of {cname!r} must be a dict, received {inner!r}")
    if issubclass(cls, Layer):
        obj = cls.from_config(_model_saving._resolve_user_objects(inner))
        build = config.get("build_config")
        if build and not obj.built:
            obj.build_from_config(build)
        return obj
    inner = {k: _deserialize(v, custom_objects) if isinstance(v, dict) and "class_name" in v
             else v for k, v in inner.items()}
    if hasattr(cls, "from_config"):
        return cls.from_config(inner)
    return cls(**inner)


def save_model(model, filepath, overwrite=True, zipped=None, **kwargs):
    """Save ``model`` to ``filepath`` (``model.save``): architecture, weights, compile state."""
    return _model_saving.keras_save_model(model, filepath, overwrite=overwrite, zipped=zipped,
                                          **kwargs)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model written by ``model.save`` / :func:`save_model`."""
    return _model_saving.load_model(filepath, custom_objects=custom_objects, compile=compile,
                                    safe_mode=safe_mode)


def save_weights(model, filepath, overwrite=True, **kwargs):
    """``model.save_weights(filepath)`` as a function."""
    if kwargs:
        raise ValueError(f"save_weights: unexpected keyword argument(s) {sorted(kwargs)}")
    return model.save_weights(filepath, overwrite=overwrite)


def load_weights(model, filepath, skip_mismatch=False, **kwargs):
    """``model.load_weights(filepath)`` as a function."""
    return model.load_weights(filepath, skip_mismatch=skip_mismatch, **kwargs)
