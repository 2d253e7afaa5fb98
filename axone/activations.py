"""Activation functions by Keras name: strings, callables and ``get``."""
import functools

from . import ops

__all__ = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus",
           "softsign", "hard_sigmoid", "exponential", "softmax", "log_softmax", "gelu", "silu",
           "swish", "heaviside", "get", "serialize"]


def linear(x):
    """Identity."""
    return x


def sigmoid(x):
    return ops.sigmoid(x)


def tanh(x):
    return ops.tanh(x)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """max(x, 0), with Keras's optional negative slope, ceiling and threshold."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return ops.relu(x)
    x = ops.convert_to_tensor(x)
    pos = ops.where(x.data > threshold, x, ops.zeros_like(x) if not negative_slope
                    else negative_slope * (x - threshold))
    if max_value is not None:
        pos = ops.clip(pos, None, max_value)
    return pos


def leaky_relu(x, negative_slope=0.2):
    return ops.leaky_relu(x, negative_slope)


def elu(x, alpha=1.0):
    return ops.elu(x, alpha)


def selu(x):
    return ops.selu(x)


def softplus(x):
    return ops.softplus(x)


def softsign(x):
    return ops.softsign(x)


def hard_sigmoid(x):
    return ops.hard_sigmoid(x)


def exponential(x):
    return ops.exp(x)


def softmax(x, axis=-1):
    return ops.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return ops.log_softmax(x, axis=axis)


def gelu(x, approximate=False):
    """GELU; ``approximate=False`` by default, like ``keras.activations.gelu``."""
    return ops.gelu(x, approximate=approximate)


def silu(x):
    return ops.silu(x)


swish = silu


def heaviside(x):
    """The perceptron step: 1 where x ≥ 0, else 0 (zero gradient)."""
    return ops.heaviside(x, 1.0)


_ALL = {f.__name__: f for f in (linear, sigmoid, tanh, relu, leaky_relu, elu, selu, softplus,
                                softsign, hard_sigmoid, exponential, softmax, log_softmax, gelu,
                                silu, heaviside)}
_ALL["swish"] = silu


def serialize(activation):
    for name, f in _ALL.items():
        if activation is f:
            return name
    return getattr(activation, "__name__", str(activation))


def get(identifier):
    """An activation from a name (``"relu"``), ``None`` (linear) or a callable."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        f = _ALL.get(identifier.lower())
        if f is None:
            raise ValueError(f"Unknown activation {identifier!r}; valid names: {sorted(_ALL)}")
        return f
    if isinstance(identifier, dict):
        return get(identifier.get("config", {}).get("name", identifier.get("class_name")))
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret activation function identifier: {identifier!r}")
