"""Core ops under their ``keras.ops`` names: control flow, slicing and scattering, segment
reductions, custom gradients, dtype helpers, einops-style ``rearrange``, sequence framing,
``in_top_k``, ``cdist`` and the complex views.

Control flow runs eagerly in Python, as Keras's torch backend does: ``cond`` calls one branch,
``scan`` / ``fori_loop`` / ``while_loop`` / ``map`` loop, so gradients flow through whatever
ops the loop body runs.  The scattering and segment ops are nodes with their own backward.
A complex tensor's gradient is G = dL/d(Re z) + i·dL/d(Im z), the convention of ``polar``.
"""
import builtins as _b
import re

import numpy as np

from .. import backend
from ..autograd.function import Function, no_grad, unbroadcast
from ..autograd.tensor import Tensor
from ..device import array_module, is_device_array, to_numpy
from . import math as M

__all__ = ["cond", "switch", "scan", "associative_scan", "fori_loop", "while_loop", "map",
           "vectorized_map", "slice", "slice_update", "scatter", "scatter_update", "segment_sum",
           "segment_max", "segment_min", "segment_prod", "custom_gradient", "is_tensor", "dtype",
           "saturate_cast", "rearrange", "extract_sequences", "in_top_k", "cdist",
           "view_as_complex", "view_as_real"]


# ------------------------------------------------------------------ structures
def _is_nested(x):
    return isinstance(x, (list, tuple, dict))


def _flatten(tree):
    if isinstance(tree, (list, tuple)):
        return [leaf for t in tree for leaf in _flatten(t)]
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in _flatten(tree[k])]
    return [tree]


def _pack(tree, leaves):
    it = iter(leaves)

    def build(t):
        if isinstance(t, (list, tuple)):
            return type(t)(build(v) for v in t)
        if isinstance(t, dict):
            return {k: build(t[k]) for k in sorted(t)}
        return next(it)
    return build(tree)


def _tensor(x, op):
    return x if isinstance(x, Tensor) else M._t(x, op)


def _ints(x, op, arg):
    v = x.data if isinstance(x, Tensor) else x
    try:
        return [int(i) for i in to_numpy(v).reshape(-1)]
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {arg} must be a sequence of integers, received {x!r}") from None


def _callable(f, op, arg="f"):
    if not callable(f):
        raise TypeError(f"{op}: {arg} must be callable, received {f!r}")


# ---------------------------------------------------------------- control flow
def cond(pred, true_fn, false_fn):
    """``true_fn()`` if ``pred`` holds, else ``false_fn()``."""
    _callable(true_fn, "cond", "true_fn")
    _callable(false_fn, "cond", "false_fn")
    p = pred.data if isinstance(pred, Tensor) else pred
    p = to_numpy(p)
    if p.size != 1:
        raise ValueError(f"cond: pred must be a scalar, received shape {p.shape}")
    return true_fn() if bool(p.reshape(())) else false_fn()


def switch(index, branches, *operands):
    """``branches[index](*operands)``, the index clamped to [0, len(branches) − 1]."""
    if not branches:
        raise ValueError("switch: branches must not be empty")
    for f in branches:
        _callable(f, "switch", "each branch")
    i = int(to_numpy(index.data if isinstance(index, Tensor) else index).reshape(()))
    return branches[_b.min(_b.max(i, 0), len(branches) - 1)](*operands)


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """Loop ``carry, y = f(carry, x)`` over the leading axis of ``xs`` (or ``length`` times with
    x None); returns the last carry and the ys stacked (``jax.lax.scan``'s semantics)."""
    _callable(f, "scan")
    if isinstance(unroll, bool) or not (isinstance(unroll, int) and unroll >= 1):
        if not isinstance(unroll, bool):
            raise ValueError(f"scan: unroll must be a positive integer or a boolean, received "
                             f"unroll={unroll!r}")
    if xs is None and length is None:
        raise ValueError("scan: got no xs to scan over and length not provided")
    xs_flat = [] if xs is None else [_tensor(x, "scan") for x in _flatten(xs)]
    if length is not None:
        n = int(length)
    else:
        n = xs_flat[0].shape[0]
    for x in xs_flat:
        if x.ndim == 0 or x.shape[0] < n:
            raise ValueError(f"scan: every xs leaf needs a leading axis of length {n}, "
                             f"received shape {x.shape}")
    init_flat = [_tensor(t, "scan") for t in _flatten(init)]
    carry = _pack(init, init_flat) if _is_nested(init) else init_flat[0]
    ys = []
    steps = range(n - 1, -1, -1) if reverse else range(n)
    for i in steps:
        x = None
        if xs is not None:
            sl = [x_[i] for x_ in xs_flat]
            x = _pack(xs, sl) if _is_nested(xs) else sl[0]
        carry, y = f(carry, x)
        ys.append([M.zeros_like(t) for t in init_flat] if y is None else y)
    if reverse:
        ys = ys[::-1]
    if not ys:
        return carry, None
    tree = ys[0]
    leaves = [_flatten(y) for y in ys]
    stacked = [M.stack([_tensor(l[j], "scan") for l in leaves]) for j in range(len(leaves[0]))]
    return carry, (_pack(tree, stacked) if _is_nested(tree) else stacked[0])


def map(f, xs):  # noqa: A001 - keras.ops name
    """``f`` applied to each slice of ``xs`` along its leading axis, the results stacked."""
    _callable(f, "map")
    return scan(lambda c, x: ((), f(x)), (), xs)[1]


def vectorized_map(function, elements):
    """``function`` applied to each slice along the leading axis, stacked (run as a loop)."""
    _callable(function, "vectorized_map", "function")
    return map(function, elements)


def associative_scan(f, elems, reverse=False, axis=0):
    """Inclusive prefix scan with the associative ``f`` along ``axis``: out₀ = e₀,
    outᵢ = f(outᵢ₋₁, eᵢ); ``f`` receives slices of length 1 along ``axis`` (like the element
    arrays, pairs of nested structures).  ``reverse=True`` scans from the end."""
    _callable(f, "associative_scan")
    flat = [_tensor(e, "associative_scan") for e in _flatten(elems)]
    if not flat:
        raise ValueError("associative_scan: elems must hold at least one tensor")
    ax = M._axis(axis, flat[0].ndim, "associative_scan")[0]
    n = flat[0].shape[ax]
    if any(e.shape[ax] != n for e in flat[1:]):
        raise ValueError(f"associative_scan: every element must have the same size along axis "
                         f"{axis}, received shapes {[e.shape for e in flat]}")

    def at(i):
        key = (_b.slice(None),) * ax + (_b.slice(i, i + 1),)
        return [e[key] for e in flat]
    order = range(n - 1, -1, -1) if reverse else range(n)
    out, acc = [], None
    for i in order:
        cur = at(i)
        if acc is None:
            acc = cur
        else:
            res = f(_pack(elems, acc) if _is_nested(elems) else acc[0],
                    _pack(elems, cur) if _is_nested(elems) else cur[0])
            acc = [_tensor(r, "associative_scan") for r in _flatten(res)]
        out.append(acc)
    if reverse:
        out = out[::-1]
    if not out:
        return elems
    res = [M.concatenate([o[j] for o in out], axis=ax) for j in range(len(flat))]
    return _pack(elems, res) if _is_nested(elems) else res[0]


def fori_loop(lower, upper, body_fun, init_val):
    """``val = body_fun(i, val)`` for i in [lower, upper)."""
    _callable(body_fun, "fori_loop", "body_fun")
    val = init_val
    for i in range(int(lower), int(upper)):
        val = body_fun(i, val)
    return val


def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """``loop_vars = body(*loop_vars)`` while ``cond(*loop_vars)`` holds (at most
    ``maximum_iterations`` times); a single loop variable may be given bare."""
    _callable(cond, "while_loop", "cond")
    _callable(body, "while_loop", "body")
    is_tuple = isinstance(loop_vars, (tuple, list))
    vs = tuple(loop_vars) if is_tuple else (loop_vars,)
    vs = tuple(_pack(v, [_tensor(t, "while_loop") for t in _flatten(v)]) if _is_nested(v)
               else _tensor(v, "while_loop") for v in vs)
    i = 0
    while (maximum_iterations is None or i < maximum_iterations) and bool(
            to_numpy(_data(cond(*vs))).reshape(())):
        vs = body(*vs)
        if not isinstance(vs, (list, tuple)):
            vs = (vs,)
        vs = tuple(vs)
        i += 1
    return vs if is_tuple else vs[0]


def _data(x):
    return x.data if isinstance(x, Tensor) else x


# ------------------------------------------------------------- slice, scatter
def slice(inputs, start_indices, shape):  # noqa: A001 - keras.ops name
    """The block of ``inputs`` of size ``shape`` starting at ``start_indices``."""
    x = _tensor(inputs, "slice")
    start = _ints(start_indices, "slice", "start_indices")
    size = _ints(shape, "slice", "shape")
    if len(start) != x.ndim or len(size) != x.ndim:
        raise ValueError(f"slice: start_indices and shape need one entry per axis ({x.ndim}), "
                         f"received {start} and {size}")
    for s, n, d in zip(start, size, x.shape):
        if s < 0 or n < 0 or s + n > d:
            raise ValueError(f"slice: the block start {start}, shape {size} does not fit in a "
                             f"tensor of shape {x.shape}")
    return x[tuple(_b.slice(s, s + n) for s, n in zip(start, size))]


class SliceUpdate(Function):
    """y = x with the block at ``start`` replaced by u;  dL/dx = G outside the block (0 inside),
    dL/du = G over the block."""

    def forward(self, x, u):
        y = x.copy()
        y[self.key] = u
        return y

    def backward(self, g):
        gx = None
        if self.needs[0]:
            gx = g.copy()
            gx[self.key] = 0
        return gx, (g[self.key].copy() if self.needs[1] else None)


def slice_update(inputs, start_indices, updates):
    """``inputs`` with the block starting at ``start_indices`` replaced by ``updates``."""
    x = _tensor(inputs, "slice_update")
    u = _tensor(updates, "slice_update")
    start = _ints(start_indices, "slice_update", "start_indices")
    if len(start) != x.ndim or u.ndim != x.ndim:
        raise ValueError(f"slice_update: start_indices and updates need one entry / axis per "
                         f"axis of inputs ({x.ndim}), received {start} and shape {u.shape}")
    for s, n, d in zip(start, u.shape, x.shape):
        if s < 0 or s + n > d:
            raise ValueError(f"slice_update: updates of shape {u.shape} at {start} do not fit "
                             f"in inputs of shape {x.shape}")
    if u.dtype != x.dtype:
        u = M.cast(u, x.dtype)
    key = tuple(_b.slice(s, s + n) for s, n in zip(start, u.shape))
    return SliceUpdate.apply(x, u, key=key)


def _on(xp, key):
    """Host index arrays (validated on the host) moved to the array module of the data."""
    return key if xp is np else tuple(xp.asarray(k) for k in key)


def _index_tuple(indices, shape, op):
    idx = to_numpy(_data(indices))
    if idx.dtype.kind == "f" and np.all(np.mod(idx, 1) == 0):
        idx = idx.astype(np.int64)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, received dtype {idx.dtype}")
    if idx.ndim == 0:
        raise ValueError(f"{op}: indices must have shape (..., k), received a scalar")
    k = idx.shape[-1]
    if k > len(shape):
        raise ValueError(f"{op}: indices address {k} axes, but the tensor of shape {shape} has "
                         f"{len(shape)}")
    idx = idx.reshape(-1, k)
    for j in range(k):
        if idx.size and (idx[:, j].min() < 0 or idx[:, j].max() >= shape[j]):
            raise ValueError(f"{op}: indices along axis {j} must lie in [0, {shape[j]}), "
                             f"received values from {idx[:, j].min()} to {idx[:, j].max()}")
    return idx


class Scatter(Function):
    """y = zeros(shape), y[idxᵢ] += vᵢ (duplicates add up);  dL/dvᵢ = G[idxᵢ]."""

    def forward(self, v):
        xp = array_module(v)
        self.dkey = key = _on(xp, self.key)
        y = xp.zeros(self.shape, dtype=v.dtype)
        xp.add.at(y, key, v)
        return y

    def backward(self, g):
        return (g[self.dkey].reshape(self.vshape),)


def scatter(indices, values, shape):
    """A tensor of ``shape``, zero but for ``values`` added at ``indices`` (shape (N, k), each row
    the first k coordinates of a place; ``values`` of shape (N,) + shape[k:])."""
    shape = tuple(_ints(shape, "scatter", "shape"))
    v = _tensor(values, "scatter")
    idx = _index_tuple(indices, shape, "scatter")
    want = (idx.shape[0],) + shape[idx.shape[1]:]
    if int(np.prod(v.shape)) != int(np.prod(want)):
        raise ValueError(f"scatter: values must have shape {want} for indices of shape "
                         f"{to_numpy(_data(indices)).shape} into shape {shape}, received {v.shape}")
    v2 = M.reshape(v, want)
    out = Scatter.apply(v2, key=tuple(idx.T), shape=shape, vshape=want)
    return out


class ScatterUpdate(Function):
    """y = x with y[idxᵢ] = uᵢ (reduction None), += uᵢ ("add"), ·= uᵢ ("mul"), max / min.
    None: dL/dx = G where nothing was written, dL/duᵢ = G[idxᵢ] for the update that stayed;
    add: dL/dx = G, dL/duᵢ = G[idxᵢ];  mul: dL/dx = G·Πu, dL/duᵢ = G[idxᵢ]·x·Π_{j≠i}u_j;
    max / min: the gradient goes to the values equal to the result, shared among ties."""

    def forward(self, x, u):
        xp = array_module(x, u)
        self.dkey = key = _on(xp, self.key)
        red = self.reduction
        self.x, self.u = x, u
        y = x.copy()
        if red is None:
            y[key] = u
        elif red == "add":
            xp.add.at(y, key, u)
        elif red == "mul":
            xp.multiply.at(y, key, u)
        elif red == "max":
            xp.maximum.at(y, key, u)
        else:
            xp.minimum.at(y, key, u)
        self.y = y
        return y

    def backward(self, g):
        xp = array_module(g)
        key, red, x, u, y = self.dkey, self.reduction, self.x, self.u, self.y
        n = u.shape[0]
        rows = [tuple(k[i] for k in self.key) for i in range(n)]      # host coordinates
        gx = gu = None
        if red is None:
            gx = g.copy()
            gx[key] = 0
            gu = xp.zeros_like(u)
            last = {}
            for i, r in enumerate(rows):
                last[r] = i
            for r, i in last.items():
                gu[i] = g[r]
        elif red == "add":
            gx, gu = g, g[key].reshape(u.shape)
        elif red == "mul":
            gx = g.copy()
            gu = xp.zeros_like(u)
            groups = {}
            for i, r in enumerate(rows):
                groups.setdefault(r, []).append(i)
            for r, ids in groups.items():
                prod_all = u[ids].prod(axis=0)
                gx[r] = g[r] * prod_all
                for i in ids:
                    others = u[[j for j in ids if j != i]].prod(axis=0)
                    gu[i] = g[r] * x[r] * others
        else:
            gx = g * (x == y)
            gu = xp.zeros_like(u)
            count = (x == y).astype(g.dtype)
            hit = [(u[i] == y[r]) for i, r in enumerate(rows)]
            for i, r in enumerate(rows):
                count[r] = count[r] + hit[i]
            gx = xp.where(x == y, g / xp.maximum(count, 1), 0)
            for i, r in enumerate(rows):
                gu[i] = xp.where(hit[i], g[r] / xp.maximum(count[r], 1), 0)
        return (gx if self.needs[0] else None), (gu if self.needs[1] else None)


def scatter_update(inputs, indices, updates, reduction=None):
    """``inputs`` with ``updates`` written at ``indices`` (shape (N, k)); ``reduction`` None
    (replace), "add", "max", "min" or "mul" combines them with what is there."""
    if reduction not in (None, "add", "max", "min", "mul"):
        raise ValueError(f"scatter_update: unsupported reduction {reduction!r}; expected None, "
                         f"'add', 'max', 'min' or 'mul'")
    x = _tensor(inputs, "scatter_update")
    u = _tensor(updates, "scatter_update")
    idx = to_numpy(_data(indices))
    if idx.ndim != 2:
        raise ValueError(f"scatter_update: indices must have shape (N, k), received "
                         f"{idx.shape}")
    idx = _index_tuple(idx, x.shape, "scatter_update")
    want = (idx.shape[0],) + x.shape[idx.shape[1]:]
    if u.shape != want:
        if int(np.prod(u.shape)) != int(np.prod(want)):
            raise ValueError(f"scatter_update: updates must have shape {want}, received "
                             f"{u.shape}")
        u = M.reshape(u, want)
    if u.dtype != x.dtype:
        u = M.cast(u, x.dtype) if x.dtype.kind == "f" else Tensor(u.data.astype(x.dtype))
    return ScatterUpdate.apply(x, u, key=tuple(idx.T), reduction=reduction)


# ------------------------------------------------------------ segment reductions
class Segment(Function):
    """yₛ = ⊕_{i: idᵢ = s} dataᵢ (sum, prod, max, min; ids outside [0, S) dropped).
    sum: dL/ddataᵢ = G[idᵢ];  prod: G[idᵢ]·Π_{j≠i, idⱼ=idᵢ} dataⱼ;  max / min: G[idᵢ] where
    dataᵢ equals the result, shared among ties."""

    def forward(self, d):
        xp = array_module(d)
        ids, s, red = self.ids, self.num, self.red          # ids: host, validated there
        keep = (ids >= 0) & (ids < s)
        self.keep_host, self.ki_host = keep, ids[keep]
        self.keep, self.ki = keep, ki = _on(xp, (keep, ids[keep]))
        shape = (s,) + d.shape[1:]
        kd = d[keep]
        if red == "sum":
            y = xp.zeros(shape, d.dtype)
            xp.add.at(y, ki, kd)
        elif red == "prod":
            y = xp.ones(shape, d.dtype)
            xp.multiply.at(y, ki, kd)
        else:
            fill = -np.inf if red == "max" else np.inf
            if d.dtype.kind != "f":
                info = np.iinfo(d.dtype)
                fill = info.min if red == "max" else info.max
            y = xp.full(shape, fill, d.dtype)
            (xp.maximum if red == "max" else xp.minimum).at(y, ki, kd)
        self.d, self.y = d, y
        return y

    def backward(self, g):
        xp = array_module(g)
        d, y, keep, ki, red = self.d, self.y, self.keep, self.ki, self.red
        gd = xp.zeros_like(d, dtype=g.dtype)
        if red == "sum":
            gd[keep] = g[ki]
        elif red == "prod":
            kd = d[keep]
            out = xp.zeros_like(kd)
            ki_host = self.ki_host
            for s in np.unique(ki_host):                    # host loops over the segments
                rows = np.nonzero(ki_host == s)[0]
                for j, r in enumerate(rows):
                    others = kd[_on(xp, (np.delete(rows, j),))[0]].prod(axis=0)
                    out[r] = g[s] * others
            gd[keep] = out
        else:
            hit = (d[keep] == y[ki]).astype(g.dtype)
            count = xp.zeros_like(y, dtype=g.dtype)
            xp.add.at(count, ki, hit)
            gd[keep] = hit * g[ki] / xp.maximum(count[ki], 1)
        return (gd,)


def _segment(red, data, segment_ids, num_segments, sorted):
    op = f"segment_{red}"
    d = _tensor(data, op)
    ids = to_numpy(_data(segment_ids))
    if ids.dtype.kind == "f" and np.all(np.mod(ids, 1) == 0):
        ids = ids.astype(np.int64)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{op}: segment_ids must be integers, received dtype {ids.dtype}")
    if ids.ndim != 1 or d.ndim == 0 or ids.shape[0] != d.shape[0]:
        raise ValueError(f"{op}: segment_ids must be 1-D with one id per row of data: data "
                         f"shape {d.shape}, segment_ids shape {ids.shape}")
    if sorted and ids.size and np.any(np.diff(ids) < 0):
        raise ValueError(f"{op}: sorted=True but segment_ids are not sorted")
    if num_segments is None:
        num = int(ids.max()) + 1 if ids.size else 0
    else:
        num = int(num_segments)
        if num < 0:
            raise ValueError(f"{op}: num_segments must be non-negative, received {num}")
    return Segment.apply(d, ids=ids.astype(np.int64), num=num, red=red)


def segment_sum(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Sum of the rows of ``data`` in each segment (ids outside [0, num_segments) dropped)."""
    return _segment("sum", data, segment_ids, num_segments, sorted)


def segment_max(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Maximum of the rows of ``data`` in each segment (−inf for an empty one)."""
    return _segment("max", data, segment_ids, num_segments, sorted)


def segment_min(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Minimum of the rows of ``data`` in each segment (+inf for an empty one)."""
    return _segment("min", data, segment_ids, num_segments, sorted)


def segment_prod(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Product of the rows of ``data`` in each segment (1 for an empty one)."""
    return _segment("prod", data, segment_ids, num_segments, sorted)


# ------------------------------------------------------------- custom gradient
class CustomGradient(Function):
    """y = f(x…) computed by the user's function, dL/dx… = grad_fn(x…, upstream=G)."""

    def forward(self, *xs):
        return self.value

    def backward(self, g):
        with no_grad():
            grads = self.grad_fn(*self.args, upstream=Tensor(g))
        if not isinstance(grads, (tuple, list)):
            grads = (grads,)
        if len(grads) != len(self.inputs):
            raise ValueError(f"custom_gradient: the gradient function returned {len(grads)} "
                             f"gradients for {len(self.inputs)} tensor inputs")
        out = []
        for gi, t in zip(grads, self.inputs):
            if gi is None:
                out.append(None)
                continue
            a = _data(gi)
            xp = array_module(t.data)
            a = xp.asarray(a if xp is np or array_module(a) is xp else np.asarray(a),
                           dtype=t.data.dtype)
            out.append(unbroadcast(xp.broadcast_to(a, t.shape) if a.ndim < t.ndim else a,
                                   t.shape))
        return tuple(out)


def custom_gradient(f):
    """Decorator: ``f(*args)`` returns ``(value, grad_fn)``; the result is ``value``, and the
    gradient of its tensor arguments is ``grad_fn(*args, upstream=G)`` (one gradient per
    tensor argument, a tuple when several), as Keras calls it on its torch backend."""
    _callable(f, "custom_gradient")
    import functools

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        tensors = [a for a in args if isinstance(a, Tensor)]
        plain = [a.detach() if isinstance(a, Tensor) else a for a in args]
        with no_grad():
            res = f(*plain, **kwargs)
        if not isinstance(res, (tuple, list)) or len(res) != 2 or not callable(res[1]):
            raise TypeError("custom_gradient: the decorated function must return a pair "
                            "(value, grad_fn)")
        value, grad_fn = res
        value = _tensor(value, "custom_gradient")
        if not tensors:
            return value
        return CustomGradient.apply(*tensors, value=value.data, grad_fn=grad_fn,
                                    args=tuple(t.detach() for t in tensors))
    return wrapper


# --------------------------------------------------------------- dtype helpers
def is_tensor(x):
    """Whether ``x`` is an axone Tensor."""
    return isinstance(x, Tensor)


def dtype(x):
    """The dtype of ``x`` as Keras names it (``"float32"``, ``"int32"``, ``"bool"``, …)."""
    d = x.data.dtype if isinstance(x, Tensor) else x.dtype if is_device_array(x) else \
        np.asarray(x).dtype
    if not isinstance(x, (Tensor, np.ndarray, np.generic)) and not is_device_array(x):
        d = M._t(x, "dtype").dtype
    return np.dtype(d).name


def _limits(dt):
    dt = np.dtype(dt)
    if dt.kind == "b":
        return 0, 1
    if dt.kind in "iu":
        i = np.iinfo(dt)
        return i.min, i.max
    f = np.finfo(dt)
    return f.min, f.max


def saturate_cast(x, dtype):  # noqa: A002 - keras.ops name
    """Cast to ``dtype``, first clipping to the range both dtypes can represent (so values
    beyond it saturate instead of wrapping)."""
    x = _tensor(x, "saturate_cast")
    try:
        out = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"saturate_cast: unknown dtype {dtype!r}") from None
    in_dt = x.data.dtype
    in_min, in_max = _limits(in_dt)
    out_min, out_max = _limits(out)
    lo = np.asarray(np.maximum(in_min, out_min)).astype(in_dt)
    if lo < out_min:
        lo = np.nextafter(lo, 0, dtype=in_dt)
    hi = np.asarray(np.minimum(in_max, out_max)).astype(in_dt)
    if hi > out_max:
        hi = np.nextafter(hi, 0, dtype=in_dt)
    if in_dt.kind == "f":
        y = M.clip(x, lo.item(), hi.item())
    else:
        y = Tensor(array_module(x.data).clip(x.data, lo.item(), hi.item()))
    return M.cast(y, out)


# -------------------------------------------------------------------- rearrange
def rearrange(tensor, pattern, **axes_lengths):
    """einops-style axis rearrangement, e.g. ``"b (h w) c -> b h w c"`` with ``h=2``: names
    axes, splits grouped ones (one size per group may be inferred), transposes and merges."""
    x = _tensor(tensor, "rearrange")
    if not isinstance(pattern, str) or "->" not in pattern:
        raise ValueError(f"rearrange: pattern must be a string 'in -> out', received {pattern!r}")
    left, right = re.split(r"\s*->\s*", pattern.strip())

    def groups(side):
        tokens = re.findall(r"\(([^()]*)\)|(\w+)|(\S)", side)
        out = []
        for g, name, other in tokens:
            if other:
                raise ValueError(f"rearrange: unsupported token {other!r} in pattern "
                                 f"{pattern!r} (named axes and parenthesized groups only)")
            out.append(g.split() if g or name == "" else [name])
        return out
    lg, rg = groups(left), groups(right)
    if len(lg) != x.ndim:
        raise ValueError(f"rearrange: the input pattern {left!r} names {len(lg)} axes, but the "
                         f"tensor has shape {x.shape}")
    sizes = {k: int(v) for k, v in axes_lengths.items()}
    for grp, dim in zip(lg, x.shape):
        known = [a for a in grp if a in sizes]
        unknown = [a for a in grp if a not in sizes]
        prod = int(np.prod([sizes[a] for a in known])) if known else 1
        if len(unknown) > 1:
            raise ValueError(f"rearrange: cannot infer the sizes of {unknown} in group {grp}; "
                             f"give all but one as keyword arguments")
        if unknown:
            if prod == 0 or dim % prod:
                raise ValueError(f"rearrange: axis of size {dim} cannot be split into {grp} "
                                 f"with {dict((a, sizes[a]) for a in known)}")
            sizes[unknown[0]] = dim // prod
        elif prod != dim:
            raise ValueError(f"rearrange: group {grp} has size {prod}, but the axis has size {dim}")
    flat_l = [a for g in lg for a in g]
    flat_r = [a for g in rg for a in g]
    if sorted(flat_l) != sorted(flat_r) or len(set(flat_l)) != len(flat_l):
        raise ValueError(f"rearrange: both sides must name the same axes once each, received "
                         f"{flat_l} and {flat_r}")
    y = M.reshape(x, tuple(sizes[a] for a in flat_l))
    y = M.transpose(y, tuple(flat_l.index(a) for a in flat_r))
    return M.reshape(y, tuple(int(np.prod([sizes[a] for a in g])) for g in rg))


# --------------------------------------------------------------- sequences, top-k
def extract_sequences(x, sequence_length, sequence_stride):
    """Frames of ``sequence_length`` samples every ``sequence_stride`` along the last axis:
    shape (…, num_sequences, sequence_length); the gradient adds the overlaps back."""
    x = _tensor(x, "extract_sequences")
    n, s = int(sequence_length), int(sequence_stride)
    if n < 1 or s < 1:
        raise ValueError(f"extract_sequences: sequence_length and sequence_stride must be "
                         f"positive, received {sequence_length} and {sequence_stride}")
    if x.ndim == 0:
        raise ValueError("extract_sequences: x must have rank >= 1")
    total = x.shape[-1]
    if total < n:
        raise ValueError(f"extract_sequences: sequence_length {n} exceeds the last axis of "
                         f"size {total}")
    count = (total - n) // s + 1
    xp = array_module(x.data)
    idx = xp.arange(count)[:, None] * s + xp.arange(n)[None, :]
    return M.take(x, idx, axis=x.ndim - 1)


def in_top_k(targets, predictions, k):
    """Whether each target's prediction is among the k largest of its row (ties count)."""
    p = _data(predictions)
    xp = array_module(p)
    p = p if xp is not np else np.asarray(p)
    t = _data(targets)
    t = (np.asarray(t) if xp is np else t if array_module(t) is xp
         else xp.asarray(to_numpy(t))).astype(np.int64)
    if p.ndim != 2 or t.shape != p.shape[:1]:
        raise ValueError(f"in_top_k: predictions must have shape (batch, classes) and targets "
                         f"(batch,), received {p.shape} and {t.shape}")
    k = int(k)
    if k < 1:
        raise ValueError(f"in_top_k: k must be positive, received {k}")
    kk = _b.min(k, p.shape[1])
    kth = -xp.sort(-p, axis=-1)[:, kk - 1]
    return Tensor(xp.take_along_axis(p, t[:, None], axis=-1)[:, 0] >= kth)


def cdist(x, y):
    """Euclidean distances between the rows of x (…, P, M) and of y (…, R, M): (…, P, R)."""
    x = _tensor(x, "cdist")
    y = _tensor(y, "cdist")
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError(f"cdist: inputs must have rank >= 2, received shapes {x.shape} and "
                         f"{y.shape}")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"cdist: the last dimensions must match, received shapes {x.shape} "
                         f"and {y.shape}")
    d = M.expand_dims(x, -2) - M.expand_dims(y, -3)
    return M.sqrt(M.sum(d * d, axis=-1))


# -------------------------------------------------------------------- complex
class ViewAsComplex(Function):
    """z = x[…, 0] + i·x[…, 1];  dL/dx = (Re G, Im G) stacked on a last axis."""

    def forward(self, x):
        return x[..., 0] + 1j * x[..., 1]

    def backward(self, g):
        xp = array_module(g)
        g = xp.asarray(g)
        return (xp.stack([xp.real(g), xp.imag(g)], axis=-1).astype(self.dt),)


class ViewAsReal(Function):
    """x = (Re z, Im z) on a last axis;  G_z = G[…, 0] + i·G[…, 1]."""

    def forward(self, z):
        xp = array_module(z)
        return xp.stack([xp.real(z), xp.imag(z)], axis=-1)

    def backward(self, g):
        return (g[..., 0] + 1j * g[..., 1],)


def view_as_complex(x):
    """The complex tensor whose real and imaginary parts are x[…, 0] and x[…, 1]."""
    x = _tensor(x, "view_as_complex")
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError(f"view_as_complex: the last dimension must be 2 (real, imaginary), "
                         f"received shape {x.shape}")
    if x.dtype.kind != "f":
        x = Tensor(x.data.astype(backend.floatx()))
    return ViewAsComplex.apply(x, dt=x.dtype)


def view_as_real(x):
    """A complex tensor as a real one with a last axis of 2 (real, imaginary)."""
    x = _tensor(x, "view_as_real")
    if x.dtype.kind != "c":
        raise ValueError(f"view_as_real: expected a complex tensor, received dtype {x.dtype}")
    return ViewAsReal.apply(x)
