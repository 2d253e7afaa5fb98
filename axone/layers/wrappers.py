"""Wrapper (the base of layers that wrap another layer) and TorchModuleWrapper (a
``torch.nn.Module`` as a layer: its parameters are the layer's weights, PyTorch computes its
forward pass and, through ``torch.autograd``, its backward pass), as Keras 3."""
import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .base import Layer

__all__ = ["Wrapper", "TorchModuleWrapper"]


class Wrapper(Layer):
    """Abstract base of the layers that wrap another layer (``layer``), whose weights become
    theirs; ``build`` builds the inner layer, ``get_config`` holds it under ``"layer"``."""

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"Layer {layer} supplied to Wrapper isn't a supported layer type. "
                             f"Please ensure wrapped layer is a valid Keras layer.")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer._maybe_build(input_shape)
        self.built = True

    def call(self, inputs, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} {self.name!r}: Wrapper is an abstract "
                                  f"base class; subclass it and define call()")

    def get_config(self):
        from .serialization import serialize
        cfg = super().get_config()
        cfg["layer"] = serialize(self.layer)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from .serialization import deserialize
        config = dict(config)
        layer = deserialize(config.pop("layer"), custom_objects=custom_objects)
        return cls(layer, **config)


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("TorchModuleWrapper needs PyTorch: pip install torch") from None
    return torch


class TorchModule(Function):
    """y = module(x; θ) computed by PyTorch on the arrays of x and of the weights θ (which the
    module's parameters are pointed at).  Backward: (dL/dx, dL/dθ) = torch.autograd.grad(y, (x, θ),
    grad_outputs=G), the vector-Jacobian product of PyTorch's own graph of the call."""

    def forward(self, x, *params):
        torch = self.torch
        for p, arr in zip(self.params, params):
            p.data = torch.from_numpy(arr)       # the module sees the weights' current values
        if True not in self.needs:
            with torch.no_grad():
                out = self.module(torch.from_numpy(x), *self.args, **self.kwargs)
            return _result(out)
        self.x = torch.from_numpy(x).requires_grad_(self.needs[0])
        with torch.enable_grad():
            self.out = self.module(self.x, *self.args, **self.kwargs)
        return _result(self.out)

    def backward(self, g):
        torch = self.torch
        wanted = [t for t, need in zip([self.x] + self.params, self.needs) if need]
        grads = iter(torch.autograd.grad(self.out, wanted,
                                         grad_outputs=torch.from_numpy(np.ascontiguousarray(g)),
                                         allow_unused=True))
        out = []
        for t, need in zip([self.x] + self.params, self.needs):
            if not need:
                out.append(None)
                continue
            gr = next(grads)
            out.append(np.zeros(tuple(t.shape), dtype=_np_dtype(t)) if gr is None
                       else gr.detach().numpy().copy())
        self.x = self.out = None
        return tuple(out)


def _np_dtype(t):
    return np.dtype(str(t.dtype).replace("torch.", ""))


def _result(out):
    torch = _torch()
    if not isinstance(out, torch.Tensor):
        raise NotImplementedError(f"TorchModuleWrapper: the module must return one tensor, it "
                                  f"returned {type(out).__name__}")
    return out.detach().numpy().copy()


class TorchModuleWrapper(Layer):
    """A ``torch.nn.Module`` as a layer (needs PyTorch).

    The module's parameters become the layer's weights (trainable where ``requires_grad``), so
    ``fit`` and the optimizers update them and ``get_weights`` / ``set_weights`` read and write
    them; the module's parameters view the weights' values.  A call runs the module on the
    batch (``module.eval()`` when ``training`` is False, ``module.train()`` otherwise, as
    Keras), and the backward pass asks ``torch.autograd`` for the gradients of the input and
    the parameters.  Buffers (BatchNorm statistics) stay in the module.

    Args:
        module: a ``torch.nn.Module`` (a lazy module must be initialized first).
        name: the layer's name.
        output_shape: the output shape, for shape inference without running the module.
    """

    def __init__(self, module, name=None, output_shape=None, **kwargs):
        super().__init__(name=name, **kwargs)
        torch = _torch()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"TorchModuleWrapper: module must be a torch.nn.Module, received "
                            f"{type(module).__name__}")
        lazy = getattr(torch.nn.modules.lazy, "LazyModuleMixin", ())
        if isinstance(module, lazy) and module.has_uninitialized_params():
            raise ValueError(f"LazyModules are not supported unless they are already "
                             f"initialized. Received uninitialized LazyModule: module={module}")
        self.module = module.cpu()
        self.output_shape_arg = None if output_shape is None else tuple(output_shape)
        self._params = []
        for pname, p in self.module.named_parameters():
            value = p.detach().cpu().numpy().copy()
            if value.dtype.kind != "f":
                raise TypeError(f"TorchModuleWrapper: parameter {pname!r} has dtype {p.dtype}; "
                                f"only floating parameters are supported")
            v = self.add_weight(value.shape, _Value(value), dtype=value.dtype,
                                trainable=bool(p.requires_grad), name=pname.replace("/", "_"))
            p.data = torch.from_numpy(v.data)   # set_weights shows in the module at once
            self._params.append(p)
        self.built = True

    def parameters(self, recurse=True):
        return self.module.parameters(recurse=recurse)

    def call(self, inputs, *args, training=None, **kwargs):
        torch = _torch()
        if training is False:
            self.module.eval()
        else:
            self.module.train()
        x = inputs if isinstance(inputs, Tensor) else Tensor(np.asarray(inputs))
        args = tuple(torch.from_numpy(np.asarray(a.data if isinstance(a, Tensor) else a))
                     if isinstance(a, (Tensor, np.ndarray)) else a for a in args)
        return TorchModule.apply(x, *self._weights, torch=torch, module=self.module,
                                 params=self._params, args=args, kwargs=kwargs)

    def compute_output_shape(self, input_shape):
        if self.output_shape_arg is None:
            return super().compute_output_shape(input_shape)
        return self.output_shape_arg

    def get_config(self):
        raise NotImplementedError(
            f"TorchModuleWrapper {self.name!r} cannot be serialized: Keras stores the torch "
            f"module by pickling it (torch.save), and axone never loads pickles. Save the weights "
            f"(save_weights / get_weights) and build the module again in code.")


class _Value:
    """An initializer that returns a given array (the torch parameter's value)."""

    def __init__(self, value):
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.array(self.value, dtype=dtype or self.value.dtype)
