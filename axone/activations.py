"""Activation functions by Keras name: strings, callables and ``get``."""
import functools

from . import ops

__all__ = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus",
           "softsign", "hard_sigmoid", "exponential", "softmax", "log_softmax", "gelu", "silu",
           "swish", "heaviside", "get", "serialize", "deserialize", "relu6", "celu", "glu",
           "hard_shrink", "hard_silu", "hard_swish", "hard_tanh", "log_sigmoid", "mish",
           "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus",
           "tanh_shrink", "threshold"]


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
    if negative_slope == 0.0 and threshold == 0.0:
        # Keras: relu6 for a ceiling of 6, else relu then clip (one node each, no where)
        if max_value == 6:
            return ops.relu6(x)
        return ops.clip(ops.relu(x), None, max_value)
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


def relu6(x):
    """min(max(x, 0), 6)."""
    return ops.relu6(x)


def clip_bounds(fn, negative_slope=0.0, max_value=None, threshold=0.0):
    """(lo, hi) where ``fn`` with these arguments is min(max(x, lo), hi) on floats — relu
    without slope or threshold (0, ∞), with a ceiling of 6 or relu6 (0, 6) — else None."""
    if fn is relu6:
        return 0.0, 6.0
    if fn is not relu or negative_slope != 0.0 or threshold != 0.0:
        return None
    if max_value is None:
        return 0.0, float("inf")
    return (0.0, 6.0) if max_value == 6 else None


def celu(x, alpha=1.0):
    """max(0, x) + min(0, α(e^{x/α} − 1))."""
    return ops.celu(x, alpha=alpha)


def glu(x, axis=-1):
    """a·σ(b), a and b the two halves of x along ``axis``."""
    return ops.glu(x, axis=axis)


def hard_shrink(x, threshold=0.5):
    """x where |x| > threshold, else 0."""
    return ops.hard_shrink(x, threshold=threshold)


def hard_silu(x):
    """x·relu6(x + 3)/6."""
    return ops.hard_silu(x)


hard_swish = hard_silu


def hard_tanh(x):
    """clip(x, −1, 1)."""
    return ops.hard_tanh(x)


def log_sigmoid(x):
    """log σ(x)."""
    return ops.log_sigmoid(x)


def mish(x):
    """x·tanh(softplus(x)) (Misra, 2019)."""
    x = ops.convert_to_tensor(x)
    return x * ops.tanh(ops.softplus(x))


def soft_shrink(x, threshold=0.5):
    """x − t for x > t, x + t for x < −t, else 0."""
    return ops.soft_shrink(x, threshold=threshold)


def sparse_plus(x):
    """0 for x ≤ −1, (x + 1)²/4 on (−1, 1), x for x ≥ 1."""
    return ops.sparse_plus(x)


def sparse_sigmoid(x):
    """0 for x ≤ −1, (x + 1)/2 on (−1, 1), 1 for x ≥ 1."""
    return ops.sparse_sigmoid(x)


def sparsemax(x, axis=-1):
    """Projection of x onto the probability simplex along ``axis``."""
    return ops.sparsemax(x, axis=axis)


def squareplus(x, b=4):
    """(x + √(x² + b))/2."""
    return ops.squareplus(x, b=b)


def tanh_shrink(x):
    """x − tanh x."""
    return ops.tanh_shrink(x)


def threshold(x, threshold, default_value):
    """x where x > threshold, else ``default_value``."""
    return ops.threshold(x, threshold, default_value)


_ALL = {f.__name__: f for f in (linear, sigmoid, tanh, relu, leaky_relu, elu, selu, softplus,
                                softsign, hard_sigmoid, exponential, softmax, log_softmax, gelu,
                                silu, heaviside, relu6, celu, glu, hard_shrink, hard_silu,
                                hard_tanh, log_sigmoid, mish, soft_shrink, sparse_plus,
                                sparse_sigmoid, sparsemax, squareplus, tanh_shrink, threshold)}
_ALL["swish"] = silu
_ALL["hard_swish"] = hard_silu


def deserialize(config, custom_objects=None):
    """The activation a config names: a name (``"relu6"``) or a Keras function config
    ``{"class_name": "function", "config": "relu6", ...}``; ``custom_objects`` maps further
    names to callables and is looked up first."""
    custom = dict(custom_objects or {})
    name = config
    if isinstance(config, dict):
        name = config.get("config", config.get("class_name"))
        if isinstance(name, dict):
            name = name.get("name")
    if callable(name):
        return name
    if not isinstance(name, str):
        raise ValueError(f"activations.deserialize: could not interpret config {config!r}; expected "
                         f"an activation name or a function config")
    if name in custom:
        return custom[name]
    f = _ALL.get(name)
    if f is None:
        raise ValueError(f"activations.deserialize: unknown activation {name!r}; valid names: "
                         f"{sorted(_ALL)}")
    return f


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
