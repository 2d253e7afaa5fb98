"""``keras.layers.serialize`` / ``deserialize``: a layer as Keras 3's dict and back."""
from .. import object_registration as _registry
from .base import Layer

__all__ = ["serialize", "deserialize"]


def serialize(layer):
    """``{"module", "class_name", "config", "registered_name"}`` (+ ``build_config`` when
    built from a shape), as Keras's ``layers.serialize``."""
    if not isinstance(layer, Layer):
        raise TypeError(f"layers.serialize: expected a Layer, received {type(layer).__name__}")
    from .. import layers as layers_mod
    cls = type(layer)
    registered = _registry.is_registered(cls)
    builtin = getattr(layers_mod, cls.__name__, None) is cls
    out = {"module": "keras.layers" if builtin and not registered else cls.__module__,
           "class_name": cls.__name__, "config": layer.get_config(),
           "registered_name": _registry.get_registered_name(cls) if registered
           else None if builtin else cls.__name__}
    build = layer.get_build_config()
    if build is not None:
        out["build_config"] = build
    return out


def deserialize(config, custom_objects=None):
    """A layer from :func:`serialize`'s dict (a new layer, fresh weights once built); user
    classes come from ``custom_objects``, an open ``custom_object_scope`` or the registry."""
    from .. import layers as layers_mod
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or \
            not isinstance(config.get("config", {}), dict):
        raise ValueError(f"layers.deserialize: expected a dict {{'class_name': ..., 'config': "
                         f"{{...}}}}, received {config!r}")
    name = config["class_name"]
    with _registry.custom_object_scope(custom_objects):
        cls = _registry.lookup([config.get("registered_name"), name], custom_objects)
        if cls is None:
            cls = _registry.BUILTIN_MODEL_CLASSES.get(name)
        if cls is None:
            cls = getattr(layers_mod, name, None)
        if not isinstance(cls, type) or not issubclass(cls, Layer):
            raise ValueError(f"layers.deserialize: unknown layer class {name!r}: register it with "
                             f"@keras.saving.register_keras_serializable() or pass it in "
                             f"custom_objects={{{name!r}: {name}}}")
        layer = cls.from_config(dict(config.get("config", {})))
        build = config.get("build_config")
        if build and not layer.built:
            layer.build_from_config(build)
    return layer
