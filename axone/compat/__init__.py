"""Run Keras code unchanged: ``keras``, ``keras_core`` and ``tensorflow.keras`` resolve to axone.

``install_keras_alias()`` puts an import hook in front of ``sys.meta_path``, so
``import keras``, ``from keras.layers import Dense`` or
``from tensorflow.keras.models import Sequential`` give axone's objects.  A Keras
name axone does not provide fails with an error that names it.
"""
import importlib
import importlib.abc
import importlib.machinery
import sys
import types

__all__ = ["install_keras_alias", "uninstall_keras_alias", "UnsupportedKerasName",
           "UnsupportedKerasAttribute", "KERAS_VERSION"]

_ROOTS = ("keras", "keras_core", "tensorflow.keras")
_SUBMODULES = {"layers", "models", "optimizers", "losses", "metrics", "callbacks", "regularizers",
               "constraints", "initializers", "activations", "utils", "datasets", "backend", "ops",
               "applications", "optimizers.schedules", "preprocessing", "random", "saving", "wrappers",
               "distribution", "config"}
# Keras names whose axone module lives elsewhere than axone.<name>
_MODULE_OF = {"backend": "axone.compat.keras_backend", "config": "axone.config",
              "ops": "axone.compat.keras_ops", "ops.numpy": "axone.compat.keras_ops_numpy",
              "ops.nn": "axone.compat.keras_ops_nn", "ops.linalg": "axone.compat.keras_ops_linalg",
              "ops.core": "axone.compat.keras_ops_core",
              "ops.image": "axone.compat.keras_ops_image",
              "preprocessing": "axone.utils.preprocessing",
              "preprocessing.image": "axone.utils.image_utils",
              "preprocessing.sequence": "axone.utils.sequence_utils"}


class UnsupportedKerasName(ImportError):
    """A Keras module or name that axone does not provide (yet), on import."""


class UnsupportedKerasAttribute(AttributeError):
    """A Keras name that axone does not provide, read as an attribute (``keras.layers.Name``):
    an AttributeError, so ``hasattr`` is False.  ``from keras.layers import Name`` goes on to
    look for a submodule of that name and raises :class:`UnsupportedKerasName` with the same
    kind of message."""


#: the Keras 3 version the alias reports as ``keras.__version__`` / ``keras.version()``
KERAS_VERSION = "3.15.0"


def _axone_version():
    import axone
    return axone.__version__


class _AliasModule(types.ModuleType):
    def __init__(self, name, target, keras_name):
        super().__init__(name)
        self.__dict__["_target"] = target
        self.__dict__["_keras_name"] = keras_name
        self.__dict__["__path__"] = []
        self.__dict__["__axone_alias__"] = True
        self.__doc__ = getattr(target, "__doc__", None)

    def __getattr__(self, attr):
        target = self.__dict__["_target"]
        if attr == "__version__" and self.__dict__["_keras_name"] in _ROOTS:
            return KERAS_VERSION
        if attr == "version" and self.__dict__["_keras_name"] in _ROOTS:
            return _keras_version
        if attr.startswith("__") and attr.endswith("__"):
            return getattr(target, attr)
        try:
            return getattr(target, attr)
        except AttributeError:
            # a Keras submodule axone's package does not import eagerly (keras.applications)
            keras_name = self.__dict__["_keras_name"]
            root = next((r for r in _ROOTS if keras_name == r or keras_name.startswith(r + ".")), None)
            sub = (keras_name[len(root) + 1:] + "." if root and keras_name != root else "") + attr
            if root is not None and sub in _SUBMODULES:
                return importlib.import_module(keras_name + "." + attr)
            raise UnsupportedKerasAttribute(
                f"{self.__dict__['_keras_name']}.{attr} is not supported by axone "
                f"{_axone_version()} (the Keras name is mapped to {target.__name__}, which has no "
                f"{attr!r})") from None

    def __dir__(self):
        return dir(self.__dict__["_target"])


def _keras_version():
    """The Keras version string (``keras.version()``)."""
    return KERAS_VERSION


class _TensorflowModule(types.ModuleType):
    """``tensorflow`` stand-in: ``tensorflow.keras`` and the names of :mod:`axone.compat.tf`."""

    def __init__(self):
        super().__init__("tensorflow")
        self.__dict__["__path__"] = []
        self.__dict__["__axone_alias__"] = True

    def __getattr__(self, attr):
        if attr == "keras":
            return importlib.import_module("tensorflow.keras")
        tf = importlib.import_module("axone.compat.tf")
        if attr in tf.__dict__ and not attr.startswith("_") or attr == "__version__":
            value = tf.__dict__[attr]
            self.__dict__[attr] = value
            return value
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise UnsupportedKerasAttribute(
            f"tensorflow.{attr} is not supported by axone {_axone_version()}: the tensorflow "
            f"alias provides tensorflow.keras and the names of axone.compat.tf")


class _Loader(importlib.abc.Loader):
    def __init__(self, fullname):
        self.fullname = fullname

    def create_module(self, spec):
        name = spec.name
        if name == "tensorflow":
            return _TensorflowModule()
        root = next(r for r in sorted(_ROOTS, key=len, reverse=True)
                    if name == r or name.startswith(r + "."))
        sub = name[len(root) + 1:]
        if not sub:
            import axone
            return _AliasModule(name, axone, name)
        if sub not in _SUBMODULES and sub.split(".")[0] not in _SUBMODULES:
            raise UnsupportedKerasName(f"{name} is not supported by axone {_axone_version()}; "
                                       f"supported submodules: {sorted(_SUBMODULES)}")
        try:
            target = importlib.import_module(_MODULE_OF.get(sub, "axone." + sub))
        except ModuleNotFoundError:
            raise UnsupportedKerasName(f"{name} is not supported by axone {_axone_version()} yet") from None
        return _AliasModule(name, target, name)

    def exec_module(self, module):
        name = module.__name__
        if name in _ROOTS:
            # `from keras import ops` must give the alias of keras.ops (symbolic-aware), not
            # axone.ops itself
            module.__dict__["ops"] = importlib.import_module(name + ".ops")
            # and `keras.backend` / `keras.config` the Keras namespaces, not axone.backend
            module.__dict__["backend"] = importlib.import_module(name + ".backend")
            module.__dict__["config"] = importlib.import_module(name + ".config")
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules:
            try:
                object.__setattr__(sys.modules[parent], child, module) if not isinstance(
                    sys.modules[parent], _TensorflowModule) else None
            except AttributeError:
                pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "tensorflow" or any(fullname == r or fullname.startswith(r + ".") for r in _ROOTS):
            return importlib.machinery.ModuleSpec(fullname, _Loader(fullname), is_package=True)
        return None


_finder = _Finder()
_saved = {}


def _is_alias_name(name):
    return name == "tensorflow" or name.startswith("tensorflow.") or any(
        name == r or name.startswith(r + ".") for r in _ROOTS)


def install_keras_alias():
    """Make ``keras``, ``keras_core`` and ``tensorflow.keras`` (and submodules) import axone."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    for name in list(sys.modules):
        if _is_alias_name(name) and not getattr(sys.modules[name], "__axone_alias__", False):
            _saved[name] = sys.modules.pop(name)


def uninstall_keras_alias():
    """Undo :func:`install_keras_alias` (restoring modules it displaced)."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in list(sys.modules):
        if getattr(sys.modules[name], "__axone_alias__", False):
            del sys.modules[name]
    sys.modules.update(_saved)
    _saved.clear()
