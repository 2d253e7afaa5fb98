"""The registry of user objects that saved configurations name, as Keras 3's ``keras.saving``.

A saved architecture names its classes and functions by string; rebuilding it looks each name up
here, never imports or runs anything the file names:

- ``register_keras_serializable(package="Custom", name=None)`` registers a class or function
  globally under ``"package>name"``;
- ``custom_object_scope(objects)`` / ``CustomObjectScope`` adds names for the duration of a
  ``with`` block (per thread here; Keras keeps one process-wide scope);
- ``custom_objects=`` of the loading functions adds names for one call.

This module imports nothing from axone, so the layers (``Lambda``) and the model file reader
(``models/saving.py``) use it; ``axone.saving`` builds the public ``keras.saving`` names on it.
"""
import inspect
import threading

__all__ = ["register_keras_serializable", "get_registered_name", "get_registered_object",
           "custom_object_scope", "CustomObjectScope", "get_custom_objects", "lookup",
           "function_name_for_saving"]

GLOBAL_CUSTOM_OBJECTS = {}      # "package>name" -> object
GLOBAL_CUSTOM_NAMES = {}        # object -> "package>name"
_SCOPES = threading.local()
# axone's own model classes by saved name ("Sequential", "Functional", "Model"): models/saving.py
# fills it, so that layers.deserialize rebuilds a nested model without importing the models
BUILTIN_MODEL_CLASSES = {}


def _scope_dict():
    """The names of the open ``custom_object_scope`` blocks of this thread (innermost last)."""
    merged = {}
    for objects in getattr(_SCOPES, "stack", None) or ():
        merged.update(objects)
    return merged


class CustomObjectScope:
    """``with CustomObjectScope({"name": obj}):`` makes ``name`` resolvable while loading.

    Args:
        custom_objects: a dict ``{str: object}`` (``None`` for none).  Several dicts given as
            positional arguments are merged, as Keras 2 allowed.
    """

    def __init__(self, custom_objects=None, *more):
        objects = {}
        for d in (custom_objects,) + more:
            if d is None:
                continue
            if not isinstance(d, dict):
                raise TypeError(f"CustomObjectScope: custom_objects must be a dict {{name: "
                                f"object}}, received {type(d).__name__} {d!r}")
            objects.update(d)
        for k in objects:
            if not isinstance(k, str):
                raise TypeError(f"CustomObjectScope: the keys of custom_objects must be strings, "
                                f"received {k!r}")
        self.custom_objects = objects

    def __enter__(self):
        stack = getattr(_SCOPES, "stack", None)
        if stack is None:
            stack = _SCOPES.stack = []
        stack.append(dict(self.custom_objects))
        return self

    def __exit__(self, *exc):
        _SCOPES.stack.pop()
        return False


custom_object_scope = CustomObjectScope


def get_custom_objects():
    """The live global dict of registered objects (``{"package>name": object}``); objects of
    an open ``custom_object_scope`` are not in it, as in Keras."""
    return GLOBAL_CUSTOM_OBJECTS


def register_keras_serializable(package="Custom", name=None):
    """Decorator: register a class or function under ``"package>name"`` (``name`` defaults to
    its ``__name__``), so saved configurations naming it load without ``custom_objects``.

    A class must have ``get_config`` (ValueError otherwise, as Keras)."""
    if not isinstance(package, str) or not package:
        raise TypeError(f"register_keras_serializable: package must be a non-empty string, "
                        f"received {package!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"register_keras_serializable: name must be a non-empty string or None, "
                        f"received {name!r}")

    def decorator(arg):
        if not callable(arg):
            raise TypeError(f"register_keras_serializable: expected a class or a function, "
                            f"received {type(arg).__name__} {arg!r}")
        class_name = name if name is not None else getattr(arg, "__name__", None)
        if not class_name:
            raise ValueError(f"register_keras_serializable: {arg!r} has no __name__; pass name=")
        if inspect.isclass(arg) and not hasattr(arg, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() method.")
        registered = f"{package}>{class_name}"
        GLOBAL_CUSTOM_OBJECTS[registered] = arg
        GLOBAL_CUSTOM_NAMES[arg] = registered
        return arg
    return decorator


def get_registered_name(obj):
    """The name ``obj`` is registered under, else its ``__name__`` (Keras's rule)."""
    try:
        if obj in GLOBAL_CUSTOM_NAMES:
            return GLOBAL_CUSTOM_NAMES[obj]
    except TypeError:            # unhashable
        pass
    return obj.__name__


def is_registered(obj):
    try:
        return obj in GLOBAL_CUSTOM_NAMES
    except TypeError:
        return False


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object ``name`` stands for, as Keras looks it up: the open scopes, the global
    registry, then ``custom_objects``, then ``module_objects``; ``None`` when none has it."""
    scope = _scope_dict()
    if name in scope:
        return scope[name]
    if name in GLOBAL_CUSTOM_OBJECTS:
        return GLOBAL_CUSTOM_OBJECTS[name]
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None


def lookup(names, custom_objects=None, bare=True):
    """The user object for the first of ``names`` (e.g. a registered name, then a class name)
    found in ``custom_objects``, the open scopes or the registry; a bare name also finds an
    object registered as ``"package>name"`` when only one package has it (unless ``bare`` is
    False).  ``None`` if none."""
    scope = _scope_dict()
    for n in names:
        if not isinstance(n, str) or not n:
            continue
        if custom_objects and n in custom_objects:
            return custom_objects[n]
        if n in scope:
            return scope[n]
        if n in GLOBAL_CUSTOM_OBJECTS:
            return GLOBAL_CUSTOM_OBJECTS[n]
    for n in names if bare else ():
        if not isinstance(n, str) or not n or ">" in n:
            continue
        hits = [o for k, o in GLOBAL_CUSTOM_OBJECTS.items() if k.rpartition(">")[2] == n]
        if len(hits) == 1:
            return hits[0]
    return None


def function_name_for_saving(fn, who):
    """The name a saved configuration stores the function ``fn`` by: its registered name, or
    the name of a plain named function (given in ``custom_objects`` when loading).

    A lambda or a closure that is not registered cannot be restored without executing code
    from the file, which axone never does: ValueError naming ``who``."""
    if is_registered(fn):
        return GLOBAL_CUSTOM_NAMES[fn]
    fname = getattr(fn, "__name__", None)
    if not fname or fname == "<lambda>" or getattr(fn, "__closure__", None):
        kind = "a lambda" if fname == "<lambda>" else "a closure" if fname else "an object"
        raise ValueError(
            f"{who} function is not serializable: {fn!r} is {kind} without a registered name, "
            f"and axone never saves or runs code from a file (Keras's bytecode form, even with "
            f"safe_mode=False). Register it with keras.saving.register_keras_serializable() "
            f"(or define it as a named module-level function and pass it in custom_objects "
            f"when loading)")
    return fname
