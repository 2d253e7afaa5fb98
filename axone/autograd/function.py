"""Function: the forward and backward of one differentiable op, and grad mode.

A :class:`Function` subclass computes its result from plain arrays in
``forward`` and, given dL/d(output), returns dL/d(input) for each input in
``backward`` (``None`` where an input needs no gradient).  ``apply`` runs the
forward pass and, when a gradient is wanted, records the node in the graph.

Grad mode is per thread, as in PyTorch: ``no_grad`` on one thread (a ``predict``
or a validation pass) leaves graph recording on for a ``fit`` running on
another, and every new thread starts with recording on.
"""
import contextlib
import threading

import numpy as np

from ..device import array_module
from .tensor import Tensor


class _GradMode(threading.local):
    """Whether ops record the graph, one flag per thread (the class attribute is the default
    every new thread sees)."""
    enabled = True


_state = _GradMode()
# One entry per ``no_grad`` block open on any thread (list append/pop are atomic).  While it is
# empty no thread has recording off, so ``apply`` skips the thread-local read: a thread's flag
# is False only inside its own ``no_grad``, which appended first and pops last.
_OFF = []
_new = object.__new__
_NO_NEEDS_1 = (False,)
_NO_NEEDS_2 = (False, False)


def is_grad_enabled():
    """True when ops on this thread record the graph for ``backward``."""
    return not _OFF or _state.enabled


class no_grad(contextlib.ContextDecorator):
    """Context in which ops on this thread record no graph (inference, optimizer updates);
    also a decorator.  A class rather than a generator: it is entered on every inference
    batch and optimizer step, so its own cost counts."""

    __slots__ = ("_prev",)

    def __enter__(self):
        _OFF.append(None)
        self._prev = _state.enabled
        _state.enabled = False
        return None

    def __exit__(self, *exc):
        _state.enabled = self._prev
        _OFF.pop()
        return False

    def _recreate_cm(self):
        return type(self)()


class enable_grad(contextlib.ContextDecorator):
    """Context in which ops on this thread record the graph, even inside ``no_grad``; also a
    decorator."""

    __slots__ = ("_prev",)

    def __enter__(self):
        self._prev = _state.enabled
        _state.enabled = True
        return None

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False

    def _recreate_cm(self):
        return type(self)()


class Function:
    """One node of the computational graph.

    Subclasses define ``forward(*arrays) -> array`` and
    ``backward(grad) -> tuple`` with one entry per input, side by side, and
    keep in ``self`` whatever the backward pass needs.  ``self.needs`` tells
    which inputs want a gradient so ``backward`` can skip the others.

    ``backward_graph(grad) -> tuple`` is the same derivative written with
    differentiable ops on Tensors (``grad`` and ``self.inputs`` are Tensors), so the
    gradient it returns carries a graph of its own: a gradient taken while an
    enclosing tape records (second derivatives, Hessian-vector products) walks the
    graph with it.  An op without one (``backward_graph = None``) still gives its
    first derivative there; differentiating that gradient again raises
    NotImplementedError naming the op.
    """

    inputs = ()
    needs = ()
    backward_graph = None

    @classmethod
    def apply(cls, *inputs, **params):
        """Run ``forward`` on the inputs' arrays; record the node if a gradient is wanted."""
        # One- and two-input ops (nearly all of them) take unrolled paths: this
        # runs once per op, so its Python overhead is the engine's per-op cost.
        fn = _new(cls)
        if params:
            fn.__dict__.update(params)
        n = len(inputs)
        if not _OFF or _state.enabled:
            if n == 2:
                a, b = inputs
                needs = (a.requires_grad, b.requires_grad)
            elif n == 1:
                needs = (inputs[0].requires_grad,)
            else:
                needs = tuple([t.requires_grad for t in inputs])
            if True in needs:
                fn.needs = needs
                if n == 2:
                    out = fn.forward(a.data, b.data)
                elif n == 1:
                    out = fn.forward(inputs[0].data)
                else:
                    out = fn.forward(*[t.data for t in inputs])
                fn.inputs = inputs
                res = _new(Tensor)
                res.data = out
                res.grad = None
                res.requires_grad = True
                res._ctx = fn
                return res
        if n == 2:
            fn.needs = _NO_NEEDS_2
            a, b = inputs
            out = fn.forward(a.data, b.data)
        elif n == 1:
            fn.needs = _NO_NEEDS_1
            out = fn.forward(inputs[0].data)
        else:
            fn.needs = (False,) * n
            out = fn.forward(*[t.data for t in inputs])
        res = _new(Tensor)
        res.data = out
        res.grad = None
        res.requires_grad = False
        res._ctx = None
        return res

    def forward(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    def output(self, data):
        """A Tensor of this node's own result ``data`` (what ``forward`` returned), made by
        this node: a ``backward_graph`` that reads y = f(x) uses it, so a derivative taken
        through it flows back through this node to x."""
        t = _new(Tensor)
        t.data = data
        t.grad = None
        t.requires_grad = True
        t._ctx = self
        return t

    @property
    def name(self):
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name} backward>"


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``
    (array methods only: a device gradient is summed on its device)."""
    if grad.shape == shape:
        return grad
    nd = grad.ndim - len(shape)
    if nd > 0:
        grad = grad.sum(axis=tuple(range(nd)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def zeros_grad_like(x):
    """A zero gradient of ``x``'s shape and dtype, on ``x``'s device."""
    if type(x) is np.ndarray:
        return np.zeros_like(x)
    return array_module(x).zeros_like(x)
