"""What ``keras.ops`` (and ``keras.ops.numpy`` / ``keras.ops.nn``) resolve to through the alias:
axone's ops, each of which, given symbolic tensors (``keras.Input`` and what layers make of
it), adds a node to the functional graph instead of computing, as Keras 3's ops do.  axone's
own layers call ``axone.ops`` directly and pay nothing for this."""
import functools
import importlib
import types

from ..layers.base import has_symbolic, symbolic_op


def symbolic_aware(fn):
    """``fn`` that builds a graph node when called on KerasTensors."""
    @functools.wraps(fn)
    def op(*args, **kwargs):
        if has_symbolic(args, kwargs):
            return symbolic_op(fn, args, kwargs)
        return fn(*args, **kwargs)
    return op


_WRAPPED = {}      # one wrapper per function, so a name Keras puts in several places is one object


def view(target):
    """A module-level ``__getattr__`` and ``__dir__`` over ``target``'s names, functions wrapped."""
    cache = {}

    def __getattr__(name):
        if name in cache:
            return cache[name]
        value = getattr(target, name)
        if isinstance(value, types.ModuleType) and value.__name__ == f"axone.ops.{name}":
            # keras.ops.<family> read as an attribute: the family's symbolic-aware view
            try:
                value = importlib.import_module(f"axone.compat.keras_ops_{name}")
            except ModuleNotFoundError:
                pass
        if isinstance(value, types.FunctionType) and not name.startswith("_"):
            wrapped = _WRAPPED.get(value)
            if wrapped is None:
                wrapped = _WRAPPED[value] = symbolic_aware(value)
            value = wrapped
        cache[name] = value
        return value

    def __dir__():
        return dir(target)
    return __getattr__, __dir__


from .. import ops as _ops  # noqa: E402

__getattr__, __dir__ = view(_ops)
