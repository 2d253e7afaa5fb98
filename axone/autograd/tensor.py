"""Tensor: one array, its gradient, and the Function that made it.

``backward()`` walks the graph once in reverse topological order, from
dL/dL = 1, and accumulates gradients wherever a value was used more than
once (course 001, part 5).  Leaves that require a gradient receive it in
``.grad``; intermediate tensors keep theirs only after ``retain_grad()``.
"""
import numpy as np

from .. import backend
from ..device import _MODULES as _DEVICE_MODULES
from ..device import array_module, to_numpy

_ndarray = np.ndarray

_FLOAT_KINDS = "f"


def _to_array(data, dtype):
    """``data`` as the Tensor's array: a host ndarray, or a registered device array (a CuPy
    array) kept on its device, converted to ``dtype`` there when one is given."""
    if dtype is not None:
        try:
            return np.asarray(data, dtype=dtype)
        except (TypeError, ValueError) as e:
            # a device array refuses np.asarray (TypeError): converted on its device instead
            if type(data) in _DEVICE_MODULES:
                return _DEVICE_MODULES[type(data)].asarray(data, dtype=dtype)
            raise TypeError(f"Tensor: cannot convert {type(data).__name__} to dtype {dtype}: {e}") from None
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    if hasattr(data, "__array__") and not isinstance(data, (list, tuple)):
        if type(data) in _DEVICE_MODULES:
            return data                      # a device array stays on its device
        arr = np.asarray(data)
        return arr
    try:
        arr = np.asarray(data)
    except ValueError as e:
        raise ValueError(f"Tensor: data is not a rectangular array: {e}") from None
    if arr.dtype.kind in "biuf":
        return arr.astype(backend.floatx())
    raise TypeError(
        f"Tensor: expected numbers (a scalar, a nested list or an array), received "
        f"{type(data).__name__} of dtype {arr.dtype}")


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    Args:
        data: array-like. A NumPy array keeps its dtype (so float64 work stays
            float64); Python scalars and lists become ``floatx`` (float32).
        requires_grad: whether ``backward()`` should fill ``.grad``.
        dtype: optional dtype to convert to.

    >>> x = Tensor(2.0, requires_grad=True)
    >>> y = x * x + 3 * x
    >>> y.backward()
    >>> float(x.grad)
    7.0
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "_keras_mask", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        arr = _to_array(data, dtype)
        if arr.dtype == object or arr.dtype.kind not in "biufc":
            raise TypeError(f"Tensor: expected a numeric array, received dtype {arr.dtype}")
        if requires_grad and arr.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"Tensor: only floating-point tensors can require gradients, received dtype "
                f"{arr.dtype}; convert first, e.g. Tensor(x, dtype='float32', requires_grad=True)")
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None

    # ----------------------------------------------------------- array facts
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def numpy(self):
        """The underlying ndarray (shared, not copied); a device tensor's values copied to the
        host (``to_numpy``)."""
        d = self.data
        if type(d) is _ndarray or array_module(d) is np:
            return d
        return to_numpy(d)

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        if type(self.data) is not _ndarray and array_module(self.data) is not np:
            host = to_numpy(self.data)                  # a device tensor: a host copy
            return host if dtype is None else host.astype(dtype, copy=False)
        if dtype is None:
            return self.data if not copy else self.data.copy()
        return np.array(self.data, dtype=dtype, copy=True if copy else None)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d Tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d Tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __float__(self):
        if self.data.size != 1:
            raise TypeError(f"float(): only a single-element Tensor converts, this one has shape {self.data.shape}")
        return float(self.data.item())

    def __int__(self):
        if self.data.size != 1:
            raise TypeError(f"int(): only a single-element Tensor converts, this one has shape {self.data.shape}")
        return int(self.data.item())

    def __index__(self):
        return self.data.__index__()

    def __bool__(self):
        return bool(self.data)

    def __hash__(self):
        return id(self)

    def __format__(self, spec):
        """A 0-d tensor formats as its value (``f"{loss:.4f}"``); others as ``str`` when the
        spec is empty."""
        if self.data.ndim == 0:
            return format(self.data.item(), spec)
        if not spec:
            return str(self)
        raise TypeError(f"unsupported format string {spec!r} for a Tensor of shape "
                        f"{self.data.shape}; only 0-d tensors take a format spec")

    def __repr__(self):
        """``Tensor([...], dtype=…, grad_fn=…)``; a device tensor prints its values copied to the
        host."""
        d = self.data
        if type(d) is not _ndarray:
            d = to_numpy(d)
        body = np.array2string(d, separator=", ", prefix="Tensor(")
        extra = ""
        if self.data.dtype != np.dtype(backend.floatx()):
            extra += f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn={self._ctx.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # --------------------------------------------------------------- autograd
    def detach(self):
        """A tensor sharing this data, cut from the graph."""
        t = Tensor.__new__(Tensor)
        t.data = self.data
        t.grad = None
        t.requires_grad = False
        t._ctx = None
        return t

    def requires_grad_(self, flag=True):
        if flag and self.data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"Tensor: only floating-point tensors can require gradients, received dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self):
        """Zero the gradient in place (keeps a preallocated gradient buffer)."""
        if self.grad is not None:
            self.grad[...] = 0

    def retain_grad(self):
        """Keep this intermediate tensor's gradient in ``.grad`` after ``backward``."""
        if self._ctx is not None:
            self._ctx.retained = self

    def backward(self, grad=None, retain_graph=False):
        """Backpropagate from this tensor: dL/dL = 1 for a scalar, else ``grad``.

        Gradients accumulate into ``.grad`` of every leaf that requires one.
        The graph's saved buffers are freed afterwards unless
        ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise ValueError(
                "backward: this tensor does not require a gradient (no input of the ops that "
                "made it has requires_grad=True, or it was computed under no_grad())")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: a gradient must be given for a non-scalar output, received "
                    f"none for shape {self.data.shape}; pass grad= with that shape or reduce first")
            d = self.data
            xp = np if type(d) is _ndarray else array_module(d)
            grad = xp.ones(d.shape, dtype=d.dtype)
        else:
            grad = _like(grad.data if isinstance(grad, Tensor) else grad, self.data)
            if grad.shape != self.data.shape:
                raise ValueError(
                    f"backward: grad must have the output's shape {self.data.shape}, "
                    f"received {grad.shape}")
        run_backward(self, grad, retain_graph)


_FREED = ("backward: trying to backpropagate through a graph a second time; its buffers "
          "were freed after the first backward(). Call backward(retain_graph=True) the first time.")


def _toposort(root_fn):
    """Functions reachable from ``root_fn``, inputs before users."""
    if root_fn.inputs is None:
        raise RuntimeError(_FREED)
    order = []
    append = order.append
    seen = {root_fn}
    add = seen.add
    stack = [(root_fn, iter(root_fn.inputs))]
    push = stack.append
    pop = stack.pop
    while stack:
        fn, it = stack[-1]
        for t in it:
            ctx = t._ctx
            if ctx is not None and ctx not in seen:
                if ctx.inputs is None:
                    raise RuntimeError(_FREED)
                add(ctx)
                push((ctx, iter(ctx.inputs)))
                break
        else:
            pop()
            append(fn)
    return order


# Leaves whose ``grad`` buffer holds stale values that count as zero (ids).  A training step
# marks its weights this way instead of zero-filling their gradient buffer: the first gradient
# to arrive is written over the buffer (or computed straight into it, see ``fresh_grad_out``),
# later ones add to it, and ``finish_fresh_grads`` zeroes the buffers nothing reached.
_FRESH = set()


def mark_fresh_grads(leaves):
    """Treat these leaves' preallocated ``grad`` buffers as zero without filling them."""
    _FRESH.update(id(t) for t in leaves)


def finish_fresh_grads(leaves):
    """Zero the gradient buffers of these leaves that received no gradient, and unmark them."""
    if _FRESH:
        for t in leaves:
            i = id(t)
            if i in _FRESH:
                _FRESH.discard(i)
                if t.grad is not None:
                    t.grad.fill(0)


def fresh_grad_out(t, shape, dtype):
    """The buffer to compute leaf ``t``'s gradient into, when nothing has been accumulated into
    it yet this step (then it counts as received), else None: the caller returns its gradient
    as usual.  Lets a backward write dL/dW straight into a model's flat gradient buffer.

    The buffer is given only where it lives with the leaf's values (a host buffer for a host
    leaf, a device buffer for a leaf on that device), so a node computing on a device is never
    handed a host buffer."""
    if _FRESH and id(t) in _FRESH and t._ctx is None:
        out = t.grad
        if out is not None and out.shape == shape and out.dtype == dtype and (
                out.flags.writeable and (type(t.data) is _ndarray or array_module(t.data) is np)
                if type(out) is _ndarray else _grad_buffer_fits(out, t.data)):
            _FRESH.discard(id(t))
            return out
    return None


def _grad_buffer_fits(buf, data):
    """Whether ``buf`` (not a plain host ndarray) can hold the gradient of values ``data``: a
    writeable host array for host values, an array of the values' device module for device
    values (device arrays are always writeable)."""
    xp = array_module(buf)
    if xp is np:
        return isinstance(buf, np.ndarray) and buf.flags.writeable and array_module(data) is np
    return array_module(data) is xp


#: how ``_device_leaf_grad`` stores a gradient: in a new array, written over the leaf's
#: buffer (a fresh one), or added to the gradient the buffer holds
_NEW, _OVER, _ADD = 0, 1, 2


def _device_leaf_grad(t, g, xp, mode):
    """Leaf ``t`` receives device gradient ``g`` (module ``xp``) as ``mode`` says (``_NEW``,
    ``_OVER``, ``_ADD``), always into an array of ``t``'s shape and dtype on ``g``'s device: a
    buffer elsewhere (a host array) is not written; it is replaced, a gradient it held moved
    across first."""
    buf = t.grad
    data = t.data
    if mode and buf is not None and array_module(buf) is xp and buf.shape == data.shape \
            and buf.dtype == data.dtype:
        if mode == _ADD:
            buf += g
        else:
            buf[...] = g
        return
    if mode == _ADD and buf is not None:
        g = xp.asarray(buf) + g
    out = xp.array(g, dtype=data.dtype, copy=True)
    if out.shape != data.shape:
        out = xp.broadcast_to(out, data.shape).copy()
    t.grad = out


def _accumulate_leaf(t, g):
    if type(g) is not _ndarray:
        xp = array_module(g)
        if xp is not np:
            if _FRESH and id(t) in _FRESH and t.grad is not None:
                _FRESH.discard(id(t))
                _device_leaf_grad(t, g, xp, _OVER)
            else:
                _device_leaf_grad(t, g, xp, _NEW if t.grad is None else _ADD)
            return
    if _FRESH and id(t) in _FRESH and t.grad is not None:
        _FRESH.discard(id(t))
        np.copyto(t.grad, g)
        return
    if t.grad is None:
        t.grad = np.array(g, dtype=t.data.dtype, copy=True)
        if t.grad.shape != t.data.shape:
            t.grad = np.broadcast_to(t.grad, t.data.shape).copy()
    else:
        t.grad += g


def _like(g, data):
    """``g`` as an array of ``data``'s dtype on ``data``'s device (a host or device array is
    copied across when it lives elsewhere)."""
    xp = np if type(data) is _ndarray else array_module(data)
    if xp is np:
        if type(g) is not _ndarray and array_module(g) is not np:
            g = to_numpy(g)
        return np.asarray(g, dtype=data.dtype)
    return xp.asarray(g, dtype=data.dtype)


def run_backward(root, grad, retain_graph=False):
    fn0 = root._ctx
    if fn0 is None:  # a leaf
        _accumulate_leaf(root, grad)
        return
    order = _toposort(fn0)
    grads = {fn0: grad}
    pop = grads.pop
    get = grads.get
    for fn in reversed(order):
        g = pop(fn, None)
        inputs = fn.inputs
        if inputs is None:
            raise RuntimeError(_FREED)
        if g is None:
            continue
        state = fn.__dict__
        retained = state.get("retained")
        if retained is not None:
            _accumulate_leaf(retained, g)
        for t, gi, need in zip(inputs, fn.backward(g), fn.needs):
            if gi is None or not need:
                continue
            ctx = t._ctx
            if ctx is None:
                _accumulate_leaf(t, gi)
            else:
                prev = get(ctx)
                grads[ctx] = gi if prev is None else prev + gi
        if not retain_graph:
            state.clear()
            fn.inputs = None


def run_backward_reporting(root, grad, watch, final, poll):
    """``run_backward(root, grad)`` (the graph freed) that reports when leaves' gradients are
    final, for work that can start on a gradient before the whole backward pass has run (the
    data-parallel all-reduce of a bucket of weights, ``axone.distribution``).

    ``watch`` maps ``id(leaf)`` to a key.  ``final(keys)`` is called with the keys of the
    watched leaves whose gradient can no longer change: once before the walk for those no node
    of the graph reads, then right after the last node that reads a leaf has run (a leaf is
    final when every node that reads it is done); every watched leaf is reported exactly once.
    ``poll()`` is called after every node.  The walk itself is ``run_backward``'s."""
    fn0 = root._ctx
    if fn0 is None:  # a leaf
        _accumulate_leaf(root, grad)
        final(list(watch.values()))
        return
    order = _toposort(fn0)
    # the walk runs ``order`` backwards: a leaf's last reader is its first one in ``order``
    first = {}
    due = {}
    for pos, fn in enumerate(order):
        for t in fn.inputs:
            if t._ctx is None:
                i = id(t)
                key = watch.get(i)
                if key is not None and i not in first:
                    first[i] = pos
                    due.setdefault(pos, []).append(key)
    unread = [k for i, k in watch.items() if i not in first]
    if unread:
        final(unread)
    grads = {fn0: grad}
    pop = grads.pop
    get = grads.get
    for pos in range(len(order) - 1, -1, -1):
        fn = order[pos]
        g = pop(fn, None)
        inputs = fn.inputs
        if inputs is None:
            raise RuntimeError(_FREED)
        if g is not None:
            state = fn.__dict__
            retained = state.get("retained")
            if retained is not None:
                _accumulate_leaf(retained, g)
            for t, gi, need in zip(inputs, fn.backward(g), fn.needs):
                if gi is None or not need:
                    continue
                ctx = t._ctx
                if ctx is None:
                    _accumulate_leaf(t, gi)
                else:
                    prev = get(ctx)
                    grads[ctx] = gi if prev is None else prev + gi
            state.clear()
            fn.inputs = None
        keys = due.get(pos)
        if keys is not None:
            final(keys)
        poll()
