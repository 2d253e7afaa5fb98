"""GradientTape, grad and value_and_grad: gradients of a target with respect to chosen sources.

The graph is recorded by the ops themselves whenever an input requires a gradient (Variables
always do); a tape chooses what to differentiate and walks only the part of the graph between
the target and its sources:

- leaf sources (Variables, watched constants) receive their gradient in their own ``.grad``
  array, marked "fresh" first (see ``mark_fresh_grads``): the first gradient to arrive is
  written over the array, or computed straight into it by an op's backward, so a model whose
  weights are views into one flat buffer gets its gradients in the flat gradient buffer with no
  zero-fill and no copy.  The returned Tensor wraps exactly that array (``g.data is v.grad``);
- intermediate (non-leaf) sources get the total gradient arriving at them;
- nothing else in the graph receives a gradient.

Second derivatives (Chainer's double backprop): a gradient taken while another tape on the
same thread records (or a persistent tape inside its own block, or ``grad`` inside ``grad``)
walks the graph with each op's ``backward_graph``, the derivative written in differentiable
ops, under recording, so the gradient it returns is a Tensor with a graph of its own that the
enclosing tape differentiates again (``_backprop_graph``).  The forward graph is kept for it.
An op without a ``backward_graph`` still gives its first derivative; its gradient is a node
that refuses, naming the op, to be differentiated again.  Gradients taken with no enclosing
recording take the plain NumPy walk (``_backprop``), unchanged.
"""
import threading

import numpy as np

from ..device import array_module
from .function import Function, enable_grad, is_grad_enabled, no_grad
from .tensor import (_ADD, _FRESH, _NEW, _OVER, Tensor, _device_leaf_grad, _grad_buffer_fits,
                     _like)

_ndarray = np.ndarray

__all__ = ["GradientTape", "grad", "value_and_grad"]

_lock = threading.Lock()
# id(tensor) -> [tensor, number of tapes watching it, its requires_grad before the first watch]
_watch = {}


def _flatten(struct, out):
    if isinstance(struct, dict):
        for k in struct:
            _flatten(struct[k], out)
    elif isinstance(struct, (list, tuple)):
        for s in struct:
            _flatten(s, out)
    else:
        out.append(struct)
    return out


def _flat_tensors(struct):
    """The leaves of ``struct``, and whether it is a plain list or tuple of Tensors (a
    model's variables), taken as it is without the recursive walk."""
    tp = type(struct)
    if tp is list or tp is tuple:
        for s in struct:
            if not isinstance(s, Tensor):
                return _flatten(struct, []), False
        return list(struct), True
    return _flatten(struct, []), False


def _pack(struct, it):
    if isinstance(struct, dict):
        return type(struct)((k, _pack(v, it)) for k, v in struct.items())
    if isinstance(struct, tuple) and hasattr(struct, "_fields"):
        return type(struct)(*[_pack(s, it) for s in struct])
    if isinstance(struct, (list, tuple)):
        return type(struct)(_pack(s, it) for s in struct)
    return next(it)


def _pack_list(struct, out, simple):
    """``out`` (a list, one entry per leaf) in the structure of ``struct`` (``simple``: a
    plain list or tuple of Tensors)."""
    if simple:
        return out if type(struct) is list else tuple(out)
    return _pack(struct, iter(out))


_FREED_ROOT = ("GradientTape.gradient: the graph of this target was freed by an earlier "
               "gradient call (use GradientTape(persistent=True))")
_FREED_PART = ("GradientTape.gradient: part of this graph was freed by an earlier gradient "
               "call (use persistent=True)")


def _walk(targets, src_ids):
    """The functions reachable from the targets, inputs before users (one depth-first pass);
    the set of those on a path to a source (some input is a source, or was made by such a
    function: decided as each function is finished, when all its inputs are); and the set of
    those among them that also need a gradient for an input on no such path (their ``needs``
    are narrowed while they run, see ``_needs_here``)."""
    order, seen, useful, narrow = [], set(), set(), set()
    append, add, mark = order.append, seen.add, useful.add
    for r in targets:
        fn0 = r._ctx
        if fn0 is None or fn0 in seen:
            continue
        if fn0.inputs is None:
            raise RuntimeError(_FREED_ROOT)
        add(fn0)
        stack = [(fn0, iter(fn0.inputs))]
        push, pop = stack.append, stack.pop
        while stack:
            fn, it = stack[-1]
            for t in it:
                ctx = t._ctx
                if ctx is not None and ctx not in seen:
                    if ctx.inputs is None:
                        raise RuntimeError(_FREED_PART)
                    add(ctx)
                    push((ctx, iter(ctx.inputs)))
                    break
            else:
                pop()
                append(fn)
                on = off = False
                for t, n in zip(fn.inputs, fn.needs):
                    ctx = t._ctx
                    if (ctx is not None and ctx in useful) or id(t) in src_ids:
                        on = True
                    elif n:
                        off = True
                if on:
                    mark(fn)
                    if off:
                        narrow.add(fn)
    return order, useful, narrow


def _needs_here(fn, src_ids, useful):
    """``fn.needs`` restricted to the inputs on a path to a source."""
    return tuple(bool(n) and (id(t) in src_ids or (t._ctx is not None and t._ctx in useful))
                 for t, n in zip(fn.inputs, fn.needs))


def _backprop(targets, seeds, sources, retain_graph, into_grad):
    """Gradients of Σ targets·seeds with respect to each source (None where unconnected).

    ``into_grad``: leaf sources receive theirs in ``.grad`` (fresh-marked, see module doc)."""
    src_ids = set()
    src_fns = {}
    leaves = []
    for s in sources:
        src_ids.add(id(s))
        if s._ctx is None:
            leaves.append(s)
        elif s._ctx not in src_fns:
            src_fns[s._ctx] = s
    order, useful, narrow = _walk(targets, src_ids)
    leaf_grads = {}
    inter_grads = {}
    marked = ()
    if into_grad:
        marked = set()
        for s in leaves:
            g = s.grad
            if g is not None and g.shape == s.data.shape and g.dtype == s.data.dtype and (
                    g.flags.writeable and (type(s.data) is _ndarray
                                           or array_module(s.data) is np)
                    if type(g) is _ndarray else _grad_buffer_fits(g, s.data)):
                marked.add(id(s))
        _FRESH.update(marked)           # as mark_fresh_grads
    else:
        saved = [(s, s.grad) for s in leaves]
        for s in leaves:
            s.grad = None
    received = set()
    grads = {}
    get = grads.get
    try:
        for t, g in zip(targets, seeds):
            ctx = t._ctx
            if ctx is None:
                if id(t) in src_ids:
                    _acc_leaf(t, g, received, marked)
            elif ctx in useful or ctx in src_fns:
                prev = get(ctx)
                grads[ctx] = g if prev is None else prev + g
        pop = grads.pop
        for fn in reversed(order):
            g = pop(fn, None)
            if g is None:
                continue
            if src_fns and fn in src_fns:
                inter_grads[fn] = g
            if fn not in useful:
                continue
            needs = mine = fn.needs
            if fn not in narrow:
                gis = fn.backward(g)
            else:
                fn.needs = mine = _needs_here(fn, src_ids, useful)
                try:
                    gis = fn.backward(g)
                finally:
                    fn.needs = needs
            for t, gi, need in zip(fn.inputs, gis, mine):
                if gi is None or not need:
                    continue
                ctx = t._ctx
                if ctx is None:
                    _acc_leaf(t, gi, received, marked)
                else:
                    prev = get(ctx)
                    grads[ctx] = gi if prev is None else prev + gi
            if not retain_graph:
                fn.__dict__.clear()
                fn.inputs = None
        for s in leaves:
            i = id(s)
            if i in received or (i in marked and i not in _FRESH):
                leaf_grads[i] = s.grad
    finally:
        if marked:
            for s in leaves:
                _FRESH.discard(id(s))
        if not into_grad:
            for s, g in saved:
                s.grad = g
    out = []
    for s in sources:
        if s._ctx is None:
            g = leaf_grads.get(id(s))
        else:
            g = inter_grads.get(s._ctx)
            if g is not None:
                xp = array_module(g)
                g = xp.asarray(g, dtype=s.data.dtype)
                if g.shape != s.data.shape:
                    g = xp.broadcast_to(g, s.data.shape).copy()
        out.append(g)
    return out


# --------------------------------------------------- gradients with a graph
class _NoGraph(Function):
    """A gradient computed by an op that has no ``backward_graph``: its value is right, and
    differentiating it again is refused here, naming the op, rather than being treated as a
    constant (a silently wrong higher derivative)."""

    def backward(self, g):
        raise NotImplementedError(
            f"second derivatives through {self.op} are not implemented in axone (its gradient "
            f"has no backward written in differentiable ops)")


def _no_graph(arr, op, parents):
    t = _wrap(arr)
    live = tuple(p for p in parents if p.requires_grad)
    if live:
        fn = object.__new__(_NoGraph)
        fn.inputs = live
        fn.needs = (True,) * len(live)
        fn.op = op
        t.requires_grad = True
        t._ctx = fn
    return t


def _as_tensor(g, dtype):
    if isinstance(g, Tensor):
        return g
    return _wrap(array_module(g).asarray(g, dtype=dtype))


def _as_array(g):
    """A gradient array as it is (a device array stays on its device), a host value as an
    ndarray."""
    xp = array_module(g)
    return g if xp is not np else np.asarray(g)


def _fit_shape(g, shape):
    """A gradient Tensor broadcast to its source's shape, differentiably (a sum of the
    broadcast copies flows back)."""
    if g.data.shape == shape:
        return g
    return g * _wrap(array_module(g.data).ones(shape, dtype=g.data.dtype))


def _backprop_graph(targets, seeds, sources, into_grad):
    """``_backprop`` with every op's backward run as differentiable ops (``backward_graph``)
    under recording: the gradients are Tensors with a graph, so an enclosing tape can
    differentiate them again.  The forward graph is kept (the gradients' graphs use it)."""
    src_ids = {id(s) for s in sources}
    src_fns = {}
    for s in sources:
        if s._ctx is not None:
            src_fns.setdefault(s._ctx, s)
    order, useful, narrow = _walk(targets, src_ids)
    leaf_grads = {}
    inter_grads = {}
    grads = {}

    def acc(t, gi):
        if t._ctx is None:
            if id(t) in src_ids:
                prev = leaf_grads.get(id(t))
                leaf_grads[id(t)] = gi if prev is None else prev + gi
        else:
            prev = grads.get(t._ctx)
            grads[t._ctx] = gi if prev is None else prev + gi

    with enable_grad():
        for t, g in zip(targets, seeds):
            if t._ctx is None or t._ctx in useful or t._ctx in src_fns:
                acc(t, g)
        for fn in reversed(order):
            g = grads.pop(fn, None)
            if g is None:
                continue
            if fn in src_fns:
                inter_grads[fn] = g
            if fn not in useful:
                continue
            needs = mine = fn.needs
            if fn in narrow:
                fn.needs = mine = _needs_here(fn, src_ids, useful)
            try:
                if fn.backward_graph is not None:
                    gis = fn.backward_graph(g)
                else:
                    gis = fn.backward(g.data)
                    gis = [None if gi is None else
                           _no_graph(_as_array(gi), fn.name, (g,) + tuple(fn.inputs))
                           for gi in gis]
            finally:
                fn.needs = needs
            for t, gi, need in zip(fn.inputs, gis, mine):
                if gi is None or not need:
                    continue
                acc(t, _as_tensor(gi, t.data.dtype))
    out = []
    for s in sources:
        g = leaf_grads.get(id(s)) if s._ctx is None else inter_grads.get(s._ctx)
        if g is not None:
            if g.data.dtype != s.data.dtype:
                g = g.astype(s.data.dtype)
            g = _fit_shape(g, s.data.shape)
            if into_grad and s._ctx is None:
                buf = s.grad
                xp = array_module(g.data)
                if xp is not np:
                    _device_leaf_grad(s, g.data, xp, _OVER)
                elif buf is not None and buf.shape == s.data.shape and \
                        buf.dtype == s.data.dtype and buf.flags.writeable:
                    np.copyto(buf, g.data)
                else:
                    s.grad = np.array(g.data, dtype=s.data.dtype, copy=True)
        out.append(g)
    return out


def _acc_leaf(t, g, received, marked):
    i = id(t)
    if type(g) is not _ndarray:
        xp = array_module(g)
        if xp is not np:
            if i in _FRESH and t.grad is not None:
                _FRESH.discard(i)
                _device_leaf_grad(t, g, xp, _OVER)
            else:
                _device_leaf_grad(t, g, xp, _ADD if i in received or i in marked else _NEW)
            received.add(i)
            return
    if i in _FRESH and t.grad is not None:
        _FRESH.discard(i)
        np.copyto(t.grad, g)
    elif i in received or i in marked:      # marked, unmarked: an op wrote it in place
        t.grad += g
    else:
        t.grad = np.array(np.broadcast_to(g, t.data.shape), dtype=t.data.dtype, copy=True)
    received.add(i)


def _same(t):
    return t


def _seed_tensor(target, given, who):
    """The seed of a gradient with a graph: a given Tensor is kept (so the result is
    differentiable with respect to it too), anything else becomes a constant."""
    if isinstance(given, Tensor) and given.data.shape == target.data.shape:
        return given if given.data.dtype == target.data.dtype else given.astype(target.data.dtype)
    seed = _seed(target, given, who)
    return _wrap(array_module(seed).array(seed, copy=True))


def _seed(target, given, who):
    """dL/d(target): ones, or ``given`` broadcast to the target's shape, as an array of the
    target's dtype on the target's device."""
    d = target.data
    xp = np if type(d) is _ndarray else array_module(d)
    if given is None:
        return xp.ones(d.shape, dtype=d.dtype)
    g = _like(given.data if isinstance(given, Tensor) else given, d)
    if g.shape != d.shape:
        try:
            g = xp.broadcast_to(g, d.shape)
        except ValueError:
            raise ValueError(f"{who}: output_gradients must have the target's shape "
                             f"{target.data.shape}, received {g.shape}") from None
    return g


_TAPES = threading.local()


def _open_tapes():
    """The tapes recording on this thread, innermost last."""
    tapes = _TAPES.__dict__.get("open")
    if tapes is None:
        tapes = _TAPES.open = []
    return tapes


class GradientTape:
    """Record operations for automatic differentiation (``tf.GradientTape``).

    Args:
        persistent: allow ``gradient`` to be called more than once (the graph is kept).
        watch_accessed_variables: watch the trainable Variables the computation uses; when
            False only ``watch``-ed tensors are sources (others come back unconnected).

    Inside the ``with`` block, ``watch(x)`` makes a constant differentiable; Variables are
    always recorded.  ``gradient(target, sources)`` returns the gradients in the structure of
    ``sources``.  Gradients of leaf Variables are their own ``.grad`` arrays (the first
    gradient is written over them, no zero-fill, no copy; ``g.data is v.grad``): a later
    tape's ``gradient`` for the same Variables writes over them again, as PyTorch's ``.grad``,
    so copy a gradient to keep it past the next step.  Later calls on the same persistent tape
    return new arrays and leave ``.grad`` alone, so their results are independent.

    Tapes nest for higher derivatives: a ``gradient`` (or ``jacobian``) called inside an
    enclosing tape's block, or inside a persistent tape's own block, returns Tensors that
    carry a graph, so the enclosing (or the same persistent) tape differentiates them again
    (Hessians, Hessian-vector products).  Under ``stop_recording`` the gradient is a constant.

    Deviation from TensorFlow: ops on Variables run before the ``with`` block are recorded too
    (axone records the graph whenever a Variable takes part), so they are differentiated.
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self._persistent = bool(persistent)
        self._watch_accessed = bool(watch_accessed_variables)
        self._watched = {}          # id -> tensor
        self._changed = []          # tensors whose requires_grad this tape switched on
        self._recording = False
        self._used = False
        self._gave = False
        self._stopped = None

    # -------------------------------------------------------------- context
    def __enter__(self):
        if self._recording:
            raise ValueError("GradientTape: this tape is already recording (nested `with` on "
                             "the same tape)")
        self._recording = True
        _open_tapes().append(self)
        for t in self._watched.values():
            self._switch_on(t)
        return self

    def __exit__(self, *exc):
        self._recording = False
        tapes = _open_tapes()
        if self in tapes:
            tapes.remove(self)
        self._release()
        return False

    def _switch_on(self, t):
        if any(c is t for c in self._changed):
            return
        with _lock:
            entry = _watch.get(id(t))
            if entry is None:
                _watch[id(t)] = [t, 1, t.requires_grad]
            else:
                entry[1] += 1
            t.requires_grad = True
        self._changed.append(t)

    def _release(self):
        if not self._changed:
            return
        with _lock:
            for t in self._changed:
                entry = _watch.get(id(t))
                if entry is None:
                    continue
                entry[1] -= 1
                if entry[1] == 0:
                    del _watch[id(t)]
                    t.requires_grad = entry[2]
        self._changed = []

    def watch(self, tensor):
        """Make ``tensor`` (or each tensor of a nested structure) a differentiable source."""
        for t in _flatten(tensor, []):
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.watch: expected a Tensor or Variable, received "
                                f"{type(t).__name__}; convert with tf.constant / "
                                f"ops.convert_to_tensor first")
            if t.data.dtype.kind != "f":
                continue        # TF ignores non-float tensors (their gradients are None)
            self._watched[id(t)] = t
            if self._recording:
                self._switch_on(t)

    def watched_variables(self):
        return tuple(self._watched.values())

    def stop_recording(self):
        """Context in which ops are not recorded (their results are constants)."""
        return _StopRecording(self)

    def reset(self):
        """Forget everything watched, as if a new tape were entered."""
        self._release()
        self._watched = {}
        self._used = False

    # ------------------------------------------------------------ gradients
    def _check_use(self, who):
        if self._used and not self._persistent:
            raise RuntimeError(f"GradientTape.{who} can only be called once on non-persistent "
                               f"tapes.")
        self._used = True

    def _sources(self, sources, who):
        """The sources' leaves, and whether ``sources`` is a plain list or tuple of them."""
        flat, simple = _flat_tensors(sources)
        if not simple:
            for s in flat:
                if not isinstance(s, Tensor):
                    raise TypeError(f"GradientTape.{who}: every source must be a Tensor or "
                                    f"Variable, received {type(s).__name__}")
        return flat, simple

    def _connected(self, s):
        if self._watch_accessed:
            return s.requires_grad or id(s) in self._watched
        return id(s) in self._watched

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """d(target)/d(sources), in the structure of ``sources``.

        ``target`` may be a tensor or a nested structure (their gradients are summed); a
        non-scalar target is differentiated as its sum, weighted by ``output_gradients`` when
        given.  ``unconnected_gradients``: "none" (None for a source the target does not
        depend on) or "zero" (zeros of its shape)."""
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(f"GradientTape.gradient: unconnected_gradients must be 'none' or "
                             f"'zero', received {unconnected_gradients!r}")
        self._check_use("gradient")
        flat, simple = self._sources(sources, "gradient")
        targets = _flat_tensors(target)[0]
        for t in targets:
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.gradient: the target must be a Tensor, received "
                                f"{type(t).__name__}")
        ogs = [None] * len(targets) if output_gradients is None else _flatten(output_gradients, [])
        if len(ogs) != len(targets):
            raise ValueError(f"GradientTape.gradient: output_gradients has {len(ogs)} entries "
                             f"for {len(targets)} targets")
        watched = self._watched
        if self._watch_accessed:
            live = [s for s in flat if s.requires_grad or id(s) in watched]
        else:
            live = [s for s in flat if id(s) in watched]
        first = not self._gave
        self._gave = True
        if self._graph_wanted():
            seeds = [_seed_tensor(t, g, "GradientTape.gradient") for t, g in zip(targets, ogs)]
            res = _backprop_graph(targets, seeds, live, into_grad=first)
            wrap = _same
        else:
            seeds = [_seed(t, g, "GradientTape.gradient") for t, g in zip(targets, ogs)]
            with no_grad():
                res = _backprop(targets, seeds, live, retain_graph=self._persistent,
                                into_grad=first)
            wrap = _wrap
        if len(live) == len(flat):
            gs = res
        else:
            by_id = {id(s): g for s, g in zip(live, res)}
            gs = [by_id.get(id(s)) for s in flat]
        out = []
        for s, g in zip(flat, gs):
            if g is None:
                out.append(Tensor(array_module(s.data).zeros_like(s.data))
                           if unconnected_gradients == "zero" else None)
            else:
                out.append(wrap(g))
        return _pack_list(sources, out, simple)

    def _graph_wanted(self):
        """Whether a gradient taken now must carry a graph: another tape on this thread is
        recording (or this one, when it is persistent and so can differentiate the result
        again), and recording is on."""
        for t in _open_tapes():
            if t._recording and t._stopped is None and (t is not self or self._persistent):
                return is_grad_enabled()
        return False

    def jacobian(self, target, sources, unconnected_gradients="none",
                 parallel_iterations=None, experimental_use_pfor=True):
        """d(target)/d(sources) element by element: shape target.shape + source.shape."""
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(f"GradientTape.jacobian: unconnected_gradients must be 'none' or "
                             f"'zero', received {unconnected_gradients!r}")
        self._check_use("jacobian")
        if not isinstance(target, Tensor):
            raise TypeError(f"GradientTape.jacobian: the target must be a Tensor, received "
                            f"{type(target).__name__}")
        flat = self._sources(sources, "jacobian")[0]
        live = [s for s in flat if self._connected(s)]
        n = target.data.size
        rows = [[] for _ in live]
        if n and self._graph_wanted():
            return self._jacobian_graph(target, sources, flat, live, unconnected_gradients)
        xp = array_module(target.data)
        with no_grad():
            for k in range(n):
                seed = xp.zeros(target.data.size, dtype=target.data.dtype)
                seed[k] = 1
                res = _backprop([target], [seed.reshape(target.data.shape)], live,
                                retain_graph=True, into_grad=False)
                for r, s, g in zip(rows, live, res):
                    r.append(None if g is None else array_module(g).array(g, copy=True))
        by_id = {}
        for s, r in zip(live, rows):
            if n and all(g is None for g in r):
                continue
            xs = array_module(s.data)
            j = xs.stack([xs.zeros_like(s.data) if g is None else g for g in r]) if n else \
                xs.zeros((0,) + s.data.shape, s.data.dtype)
            by_id[id(s)] = j.reshape(target.data.shape + s.data.shape)
        out = []
        for s in flat:
            j = by_id.get(id(s))
            if j is None:
                out.append(Tensor(array_module(s.data).zeros(target.data.shape + s.data.shape,
                                                              s.data.dtype))
                           if unconnected_gradients == "zero" else None)
            else:
                out.append(_wrap(j))
        return _pack(sources, iter(out))

    def _jacobian_graph(self, target, sources, flat, live, unconnected_gradients):
        """``jacobian`` whose rows carry a graph (an enclosing tape is recording)."""
        n = target.data.size
        rows = [[] for _ in live]
        xp = array_module(target.data)
        for k in range(n):
            seed = xp.zeros(n, dtype=target.data.dtype)
            seed[k] = 1
            res = _backprop_graph([target], [_wrap(seed.reshape(target.data.shape))], live,
                                  into_grad=False)
            for r, g in zip(rows, res):
                r.append(g)
        row_of = {id(s): r for s, r in zip(live, rows)}
        out = []
        for s in flat:
            r = row_of.get(id(s))
            shape = target.data.shape + s.data.shape
            if r is None or all(g is None for g in r):
                out.append(Tensor(array_module(s.data).zeros(shape, s.data.dtype))
                           if unconnected_gradients == "zero" else None)
                continue
            r = [_wrap(array_module(s.data).zeros_like(s.data)) if g is None else g for g in r]
            with enable_grad():
                j = _StackRows.apply(*r)
            j.data = j.data.reshape(shape)
            out.append(j)
        return _pack(sources, iter(out))


class _StackRows(Function):
    """J = [g₁, g₂, …] stacked on a new first axis (the rows of a Jacobian), kept as
    (n, …) in the node and viewed in the target's shape;  dL/dgᵢ = dL/dJ[i]."""

    def forward(self, *rows):
        self.shape = rows[0].shape
        return array_module(*rows).stack(rows)

    def backward(self, g):
        g = g.reshape((len(self.inputs),) + self.shape)
        return tuple(g[i] for i in range(len(self.inputs)))

    def backward_graph(self, g):
        g = g.reshape((len(self.inputs),) + self.shape)
        return tuple(g[i] for i in range(len(self.inputs)))


class _StopRecording:
    def __init__(self, tape):
        self._tape = tape
        self._ctx = None

    def __enter__(self):
        if not self._tape._recording:
            raise ValueError("GradientTape.stop_recording: the tape is not recording (use it "
                             "inside the tape's `with` block)")
        self._ctx = no_grad()
        self._ctx.__enter__()
        self._prev, self._tape._stopped = self._tape._stopped, self
        return self

    def __exit__(self, *exc):
        self._tape._stopped = self._prev
        return self._ctx.__exit__(*exc)


def _wrap(arr):
    t = Tensor.__new__(Tensor)
    t.data = arr
    t.grad = None
    t.requires_grad = False
    t._ctx = None
    return t


# ------------------------------------------------------------- functional
class _Through(Function):
    """y = x, a new node over a Tensor that an enclosing differentiation follows: the
    argument ``grad``/``value_and_grad`` differentiates, kept connected to the outer graph
    (``grad(grad(f))``);  dL/dx = dL/dy."""

    def forward(self, x):
        return x

    def backward(self, g):
        return (g,)

    def backward_graph(self, g):
        return (g,)


class _Differentiating:
    """What a running ``grad``/``value_and_grad`` puts on the thread's list of open tapes
    while its function runs: gradients taken inside it carry a graph."""
    _recording = True
    _stopped = None
    _persistent = False


def _leaf_of(x, who, i):
    if isinstance(x, Tensor):
        data = x.data
    elif array_module(x) is not np:
        data = x                        # a device array stays on its device
    else:
        try:
            data = np.asarray(x)
        except Exception:
            raise TypeError(f"{who}: argument {i} holds a {type(x).__name__}, expected Tensors, "
                            f"arrays or numbers") from None
        if isinstance(x, float):
            data = data.astype(np.float32)
    if data.dtype.kind != "f":
        raise TypeError(f"{who} requires real-valued floating-point inputs, but argument {i} "
                        f"has dtype {data.dtype}; pass floats (e.g. 1.0, or cast the array)")
    if isinstance(x, Tensor) and x.requires_grad and _outer_recording(None):
        with enable_grad():
            return _Through.apply(x)
    t = _wrap(data)
    t.requires_grad = True
    return t


def _outer_recording(me):
    """Whether a tape or a differentiation other than ``me`` records on this thread."""
    for t in _open_tapes():
        if t is not me and t._recording and t._stopped is None:
            return is_grad_enabled()
    return False


def _make(fn, argnums, has_aux, who):
    if not callable(fn):
        raise TypeError(f"{who}: fn must be callable, received {type(fn).__name__}")
    single = isinstance(argnums, (int, np.integer))
    nums = (int(argnums),) if single else tuple(argnums)
    if not nums or not all(isinstance(a, (int, np.integer)) for a in nums):
        raise TypeError(f"{who}: argnums must be an int or a tuple of ints, received {argnums!r}")

    def run(*args, **kwargs):
        args = list(args)
        for a in nums:
            if not -len(args) <= a < len(args):
                raise ValueError(f"{who}: argnums {a} is out of range for {len(args)} positional "
                                 f"arguments")
        leaves = {}
        for a in nums:
            flat = [_leaf_of(x, who, a) for x in _flatten(args[a], [])]
            leaves[a] = flat
            args[a] = _pack(args[a], iter(flat))
        me = _Differentiating()
        tapes = _open_tapes()
        tapes.append(me)
        try:
            out = fn(*args, **kwargs)
        finally:
            tapes.remove(me)
        aux = None
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(f"{who}: with has_aux=True, fn must return a pair (output, aux), "
                                f"received {type(out).__name__}")
            out, aux = out
        if not isinstance(out, Tensor):
            out = Tensor(out)
        if out.data.ndim != 0:
            raise TypeError(f"{who}: gradient is only defined for scalar-output functions; the "
                            f"output has shape {out.data.shape}")
        if out.data.dtype.kind != "f":
            raise TypeError(f"{who}: the output must be a float scalar, received dtype "
                            f"{out.data.dtype}")
        sources = [t for a in nums for t in leaves[a]]
        xp = array_module(out.data)
        if _outer_recording(None):
            res = _backprop_graph([out], [_wrap(xp.ones((), out.data.dtype))], sources,
                                  into_grad=False)
            res = iter(_wrap(array_module(s.data).zeros_like(s.data)) if g is None else g
                       for s, g in zip(sources, res))
            value = out
        else:
            with no_grad():
                res = _backprop([out], [xp.ones((), out.data.dtype)], sources,
                                retain_graph=False, into_grad=True)
            res = iter(_wrap(array_module(s.data).zeros_like(s.data)) if g is None else _wrap(g)
                       for s, g in zip(sources, res))
            value = _wrap(out.data)
        grads = tuple(_pack(args[a], res) for a in nums)
        return (grads[0] if single else grads), value, aux
    return run


def grad(fn, argnums=0, has_aux=False):
    """The function computing d fn / d args[argnums] (JAX's ``grad``).

    ``fn`` returns a scalar (and aux data when ``has_aux``); each differentiated argument may be
    a Tensor, an array, a float or a nested list/tuple/dict of them, and its gradient comes
    back in the same structure (zeros where fn does not depend on it)."""
    run = _make(fn, argnums, has_aux, "grad")

    def g(*args, **kwargs):
        gr, _, aux = run(*args, **kwargs)
        return (gr, aux) if has_aux else gr
    return g


def value_and_grad(fn, argnums=0, has_aux=False):
    """The function computing (fn(args), d fn / d args[argnums]); with ``has_aux``
    ((value, aux), grads), as JAX's ``value_and_grad``."""
    run = _make(fn, argnums, has_aux, "value_and_grad")

    def vg(*args, **kwargs):
        gr, value, aux = run(*args, **kwargs)
        return ((value, aux), gr) if has_aux else (value, gr)
    return vg
