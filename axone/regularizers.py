"""Weight penalties added to the loss: L1 α₁Σ|w|, L2 α₂Σw² (no ½, as Keras), L1L2 both."""
from . import ops
from .autograd.tensor import Tensor

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2",
           "orthogonal_regularizer", "get", "serialize", "deserialize"]


class Regularizer:
    def __call__(self, x):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check(name, value):
    import math
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: the penalty factor must be a finite non-negative number, received {value}")
    return value


class L1(Regularizer):
    """penalty = l1 · Σ|w|;  gradient l1 · sign(w)."""

    def __init__(self, l1=0.01):
        self.l1 = _check("L1", l1)

    def __call__(self, x):
        return self.l1 * ops.sum(ops.abs(x))

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """penalty = l2 · Σw²;  gradient 2 · l2 · w."""

    def __init__(self, l2=0.01):
        self.l2 = _check("L2", l2)

    def __call__(self, x):
        return self.l2 * ops.sum(ops.square(x))

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """penalty = l1 · Σ|w| + l2 · Σw²."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _check("L1L2", l1)
        self.l2 = _check("L1L2", l2)

    def __call__(self, x):
        out = None
        if self.l1:
            out = self.l1 * ops.sum(ops.abs(x))
        if self.l2:
            p = self.l2 * ops.sum(ops.square(x))
            out = p if out is None else out + p
        return out if out is not None else ops.sum(x * 0.0)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Penalty on non-orthogonal rows (``mode="rows"``) or columns (``"columns"``) of a 2-D w:

        n̂ᵢ = nᵢ / ‖nᵢ‖ (the rows or columns, L2-normalized),  P = n̂ n̂ᵀ with its diagonal zeroed,
        penalty = factor · ½ · Σ|Pᵢⱼ| / (k(k − 1)/2),  k the number of rows (columns).
    """

    def __init__(self, factor=0.01, mode="rows"):
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            raise ValueError(f"OrthogonalRegularizer: factor must be a non-negative float, "
                             f"received factor={factor!r}")
        self.factor = _check("OrthogonalRegularizer", factor)
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', "
                             f"received mode={mode!r}")
        self.mode = mode

    def __call__(self, x):
        x = x if isinstance(x, Tensor) else ops.convert_to_tensor(x)
        if x.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer: inputs must have rank 2, received "
                             f"inputs.shape={tuple(x.shape)}")
        if self.mode == "rows":
            n = ops.normalize(x, axis=1)
            product, size = ops.matmul(n, ops.transpose(n)), x.shape[0]
        else:
            n = ops.normalize(x, axis=0)
            product, size = ops.matmul(ops.transpose(n), n), x.shape[1]
        off = product * (1.0 - ops.eye(size, dtype=x.dtype))
        pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * ops.sum(ops.abs(off)) / pairs

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


orthogonal_regularizer = OrthogonalRegularizer


def l1(l1=0.01):
    return L1(l1)


def l2(l2=0.01):
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    return L1L2(l1=l1, l2=l2)


_ALIASES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01), "l1l2": lambda: L1L2(0.01, 0.01),
            "orthogonal_regularizer": OrthogonalRegularizer}
_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2, "OrthogonalRegularizer": OrthogonalRegularizer}


def serialize(reg):
    return {"class_name": type(reg).__name__, "config": reg.get_config()}


def get(identifier):
    """A regularizer from a name (``"l2"``), a config dict, an instance or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Regularizer):
        return identifier()
    if isinstance(identifier, str):
        f = _ALIASES.get(identifier.lower()) or _CLASSES.get(identifier)
        if f is None:
            raise ValueError(f"Unknown regularizer {identifier!r}; valid names: {sorted(_ALIASES)}")
        return f()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown regularizer {identifier.get('class_name')!r}; valid names: {sorted(_CLASSES)}")
        return cls(**identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret regularizer identifier: {identifier!r}")


def deserialize(config):
    """A regularizer from ``serialize``'s dict ({"class_name", "config"}) or a name."""
    return get(config)
