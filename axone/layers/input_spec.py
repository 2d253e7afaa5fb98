"""InputSpec: what a layer accepts (rank, dtype, shape, axis sizes), checked on every call.

A layer sets ``self.input_spec`` (one InputSpec, or a list with one per input) and
``Layer.__call__`` checks its inputs with :func:`assert_input_compatibility` before ``call``, with
Keras 3's error messages (the layer's name, what was expected, what was received).
"""
import numpy as np

__all__ = ["InputSpec", "assert_input_compatibility"]


def _standard_shape(shape, who):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: shape must be a tuple of ints or None, received {shape!r}") from None


def _shape_text(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + (
        ",)" if len(shape) == 1 else ")")


class InputSpec:
    """Specifies the rank, dtype and shape of every input to a layer (Keras 3).

    Args:
        dtype: expected dtype of the input.
        shape: expected shape, batch included (``None`` matches any size); sets ``ndim``.
        ndim, max_ndim, min_ndim: expected, largest and smallest rank.
        axes: dict ``{axis: size}`` of axes that must have that size.
        allow_last_axis_squeeze: compare shapes with a trailing axis of size 1 dropped.
        name: the key of this input when inputs are passed as a dict.
        optional: whether the input may be ``None``.
    """

    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None,
                 axes=None, allow_last_axis_squeeze=False, name=None, optional=False):
        self.dtype = str(np.dtype(dtype)) if dtype is not None else None
        if shape is not None:
            self.shape = _standard_shape(shape, "InputSpec")
            self.ndim = len(self.shape)
        else:
            self.ndim = ndim
            self.shape = None
        for n, v in (("ndim", self.ndim), ("max_ndim", max_ndim), ("min_ndim", min_ndim)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                  or v < 0):
                raise TypeError(f"InputSpec: {n} must be a non-negative integer or None, "
                                f"received {v!r}")
        self.max_ndim = max_ndim
        self.min_ndim = min_ndim
        self.name = name
        self.optional = optional
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        try:
            axes = axes or {}
            self.axes = {int(k): axes[k] for k in axes}
        except (ValueError, TypeError, AttributeError):
            raise TypeError(f"Argument `axes` must be a dict with integer keys. Received: "
                            f"axes={axes}") from None
        if self.axes and (self.ndim is not None or self.max_ndim is not None):
            max_dim = (self.ndim if self.ndim else self.max_ndim) - 1
            max_axis = max(self.axes)
            if max_axis > max_dim:
                raise ValueError(f"Axis {max_axis} is greater than the maximum allowed value: "
                                 f"{max_dim}")

    def __repr__(self):
        spec = [f"dtype={self.dtype}" if self.dtype else "",
                f"shape={self.shape}" if self.shape else "",
                f"ndim={self.ndim}" if self.ndim else "",
                f"max_ndim={self.max_ndim}" if self.max_ndim else "",
                f"min_ndim={self.min_ndim}" if self.min_ndim else "",
                f"axes={self.axes}" if self.axes else ""]
        return f"InputSpec({', '.join(x for x in spec if x)})"

    def get_config(self):
        return {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim,
                "max_ndim": self.max_ndim, "min_ndim": self.min_ndim, "axes": self.axes,
                "optional": self.optional}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _flat(x):
    if isinstance(x, (list, tuple)):
        out = []
        for v in x:
            out.extend(_flat(v))
        return out
    if isinstance(x, dict):
        out = []
        for k in x:
            out.extend(_flat(x[k]))
        return out
    return [x]


def assert_input_compatibility(input_spec, inputs, layer_name):
    """Raise ValueError when ``inputs`` do not satisfy ``input_spec`` (Keras 3's checks and
    messages: count of inputs, rank, max/min rank, dtype, axis sizes, shape)."""
    if not input_spec:
        return
    specs = _flat(input_spec)
    if isinstance(inputs, dict):
        names = [s.name for s in specs]
        if all(names):
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(f'Missing data for input "{missing[0]}". You passed a data '
                                 f"dictionary with keys {list(inputs.keys())}. Expected the "
                                 f"following keys: {names}")
            inputs = [inputs[n] for n in names]
    inputs = _flat(inputs)
    if len(inputs) != len(specs):
        raise ValueError(f'Layer "{layer_name}" expects {len(specs)} input(s), but it received '
                         f"{len(inputs)} input tensors. Inputs received: {inputs}")
    for i, (x, spec) in enumerate(zip(inputs, specs)):
        if spec is None or (x is None and spec.optional):
            continue
        if not hasattr(x, "shape"):
            raise ValueError(f"Inputs to a layer should be tensors. Got '{x}' (of type "
                             f"{type(x)}) as input for layer '{layer_name}'.")
        shape = tuple(None if d is None else int(d) for d in x.shape)
        ndim = len(shape)
        where = f"Input {i} with name '{spec.name}' of layer '{layer_name}' is incompatible " \
                f"with the layer:"
        if spec.ndim is not None and not spec.allow_last_axis_squeeze and ndim != spec.ndim:
            raise ValueError(f"{where} expected ndim={spec.ndim}, found ndim={ndim}. Full shape "
                             f"received: {_shape_text(shape)}")
        if spec.max_ndim is not None and ndim > spec.max_ndim:
            raise ValueError(f"{where} expected max_ndim={spec.max_ndim}, found ndim={ndim}")
        if spec.min_ndim is not None and ndim < spec.min_ndim:
            raise ValueError(f"{where} expected min_ndim={spec.min_ndim}, found ndim={ndim}. "
                             f"Full shape received: {_shape_text(shape)}")
        if spec.dtype is not None:
            dtype = str(np.dtype(x.dtype))
            if dtype != spec.dtype:
                raise ValueError(f"{where} expected dtype={spec.dtype}, found dtype={dtype}")
        if spec.axes:
            for axis, value in spec.axes.items():
                if not -ndim <= axis < ndim:
                    raise ValueError(f"{where} expected axis {axis} of input shape to have value "
                                     f"{value}, but received input with shape "
                                     f"{_shape_text(shape)}")
                if value is not None and shape[axis] not in (value, None):
                    raise ValueError(f"{where} expected axis {axis} of input shape to have value "
                                     f"{value}, but received input with shape "
                                     f"{_shape_text(shape)}")
        if spec.shape is not None:
            spec_shape, got = spec.shape, shape
            if spec.allow_last_axis_squeeze:
                if got and got[-1] == 1:
                    got = got[:-1]
                if spec_shape and spec_shape[-1] == 1:
                    spec_shape = spec_shape[:-1]
            for sd, d in zip(spec_shape, got):
                if sd is not None and d is not None and sd != d:
                    raise ValueError(f"{where} expected shape={spec.shape}, found "
                                     f"shape={got}")
