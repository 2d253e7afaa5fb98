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
"""
import threading

import numpy as np

from .function import no_grad
from .tensor import Tensor, _FRESH, mark_fresh_grads

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


def _pack(struct, it):
    if isinstance(struct, dict):
        return type(struct)((k, _pack(v, it)) for k, v in struct.items())
    if isinstance(struct, tuple) and hasattr(struct, "_fields"):
        return type(struct)(*[_pack(s, it) for s in struct])
    if isinstance(struct, (list, tuple)):
        return type(struct)(_pack(s, it) for s in struct)
    return next(it)


def _toposort(roots):
    order, seen = [], set()
    for r in roots:
        fn0 = r._ctx
        if fn0 is None or fn0 in seen:
            continue
        seen.add(fn0)
        stack = [(fn0, iter(fn0.inputs or ()))]
        if fn0.inputs is None:
            raise RuntimeError("GradientTape.gradient: the graph of this target was freed by an "
                               "earlier gradient call (use GradientTape(persistent=True))")
        while stack:
            fn, it = stack[-1]
            for t in it:
                ctx = t._ctx
                if ctx is not None and ctx not in seen:
                    if ctx.inputs is None:
                        raise RuntimeError("GradientTape.gradient: part of this graph was freed "
                                           "by an earlier gradient call (use persistent=True)")
                    seen.add(ctx)
                    stack.append((ctx, iter(ctx.inputs)))
                    break
            else:
                stack.pop()
                order.append(fn)
    return order


def _backprop(targets, seeds, sources, retain_graph, into_grad):
    """Gradients of Σ targets·seeds with respect to each source (None where unconnected).

    ``into_grad``: leaf sources receive theirs in ``.grad`` (fresh-marked, see module doc)."""
    src_ids = {id(s) for s in sources}
    src_fns = {}
    for s in sources:
        if s._ctx is not None:
            src_fns.setdefault(s._ctx, s)
    order = _toposort(targets)
    # functions on a path to a source: some input is a source, or made by such a function
    useful = set()
    for fn in order:                      # inputs before users
        for t in fn.inputs:
            if id(t) in src_ids or (t._ctx is not None and t._ctx in useful):
                useful.add(fn)
                break
    leaf_grads = {}
    inter_grads = {}
    leaves = [s for s in sources if s._ctx is None]
    marked = set()
    if into_grad:
        fresh = [s for s in leaves if s.grad is not None and s.grad.shape == s.data.shape
                 and s.grad.dtype == s.data.dtype and s.grad.flags.writeable]
        mark_fresh_grads(fresh)
        marked = {id(s) for s in fresh}
    else:
        saved = [(s, s.grad) for s in leaves]
        for s in leaves:
            s.grad = None
    received = set()
    grads = {}
    try:
        for t, g in zip(targets, seeds):
            if id(t) in src_ids and t._ctx is None:
                _acc_leaf(t, g, received, marked)
            elif t._ctx is not None and t._ctx in useful or t._ctx in src_fns:
                prev = grads.get(t._ctx)
                grads[t._ctx] = g if prev is None else prev + g
        for fn in reversed(order):
            g = grads.pop(fn, None)
            if g is None:
                continue
            if fn in src_fns:
                inter_grads[fn] = g
            if fn not in useful:
                continue
            needs = fn.needs
            mine = tuple(bool(n) and (id(t) in src_ids or (t._ctx is not None and t._ctx in useful))
                         for t, n in zip(fn.inputs, needs))
            fn.needs = mine
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
                    prev = grads.get(ctx)
                    grads[ctx] = gi if prev is None else prev + gi
            if not retain_graph:
                fn.__dict__.clear()
                fn.inputs = None
        for s in leaves:
            if id(s) in received or (id(s) in marked and id(s) not in _FRESH):
                leaf_grads[id(s)] = s.grad
    finally:
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
                g = np.asarray(g, dtype=s.data.dtype)
                if g.shape != s.data.shape:
                    g = np.broadcast_to(g, s.data.shape).copy()
        out.append(g)
    return out


def _acc_leaf(t, g, received, marked):
    i = id(t)
    if i in _FRESH and t.grad is not None:
        _FRESH.discard(i)
        np.copyto(t.grad, g)
    elif i in received or i in marked:      # marked, unmarked: an op wrote it in place
        t.grad += g
    else:
        t.grad = np.array(np.broadcast_to(g, t.data.shape), dtype=t.data.dtype, copy=True)
    received.add(i)


def _seed(target, given, who):
    if given is None:
        return np.ones(target.data.shape, dtype=target.data.dtype)
    g = np.asarray(given.data if isinstance(given, Tensor) else given, dtype=target.data.dtype)
    if g.shape != target.data.shape:
        try:
            g = np.broadcast_to(g, target.data.shape)
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
        flat = _flatten(sources, [])
        for s in flat:
            if not isinstance(s, Tensor):
                raise TypeError(f"GradientTape.{who}: every source must be a Tensor or Variable, "
                                f"received {type(s).__name__}")
        return flat

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
        if any(t is not self and t._recording and t._stopped is None for t in _open_tapes()):
            # an enclosing tape would see these gradients as constants: refuse rather than let
            # it return a wrong (None) second derivative
            raise NotImplementedError(
                "GradientTape.gradient inside another recording GradientTape (second "
                "derivatives through nested tapes) is not implemented in axone: the backward "
                "passes are not recorded. Compute the gradient outside the enclosing tape, or "
                "use the enclosing tape's stop_recording()")
        flat = self._sources(sources, "gradient")
        targets = _flatten(target, [])
        for t in targets:
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.gradient: the target must be a Tensor, received "
                                f"{type(t).__name__}")
        ogs = [None] * len(targets) if output_gradients is None else _flatten(output_gradients, [])
        if len(ogs) != len(targets):
            raise ValueError(f"GradientTape.gradient: output_gradients has {len(ogs)} entries "
                             f"for {len(targets)} targets")
        seeds = [_seed(t, g, "GradientTape.gradient") for t, g in zip(targets, ogs)]
        live = [s for s in flat if self._connected(s)]
        first = not getattr(self, "_gave", False)
        self._gave = True
        with no_grad():
            res = _backprop(targets, seeds, live, retain_graph=self._persistent,
                            into_grad=first)
        by_id = {id(s): g for s, g in zip(live, res)}
        out = []
        for s in flat:
            g = by_id.get(id(s))
            if g is None:
                out.append(Tensor(np.zeros_like(s.data)) if unconnected_gradients == "zero"
                           else None)
            else:
                out.append(_wrap(g))
        return _pack(sources, iter(out))

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
        flat = self._sources(sources, "jacobian")
        live = [s for s in flat if self._connected(s)]
        n = target.data.size
        rows = [[] for _ in live]
        with no_grad():
            for k in range(n):
                seed = np.zeros(target.data.size, dtype=target.data.dtype)
                seed[k] = 1
                res = _backprop([target], [seed.reshape(target.data.shape)], live,
                                retain_graph=True, into_grad=False)
                for r, s, g in zip(rows, live, res):
                    r.append(None if g is None else np.array(g, copy=True))
        by_id = {}
        for s, r in zip(live, rows):
            if n and all(g is None for g in r):
                continue
            j = np.stack([np.zeros_like(s.data) if g is None else g for g in r]) if n else \
                np.zeros((0,) + s.data.shape, s.data.dtype)
            by_id[id(s)] = j.reshape(target.data.shape + s.data.shape)
        out = []
        for s in flat:
            j = by_id.get(id(s))
            if j is None:
                out.append(Tensor(np.zeros(target.data.shape + s.data.shape, s.data.dtype))
                           if unconnected_gradients == "zero" else None)
            else:
                out.append(_wrap(j))
        return _pack(sources, iter(out))


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
        return self

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _wrap(arr):
    t = Tensor.__new__(Tensor)
    t.data = arr
    t.grad = None
    t.requires_grad = False
    t._ctx = None
    return t


# ------------------------------------------------------------- functional
def _leaf_of(x, who, i):
    if isinstance(x, Tensor):
        data = x.data
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
    t = _wrap(data)
    t.requires_grad = True
    return t


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
        out = fn(*args, **kwargs)
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
        with no_grad():
            res = _backprop([out], [np.ones((), out.data.dtype)], sources, retain_graph=False,
                            into_grad=True)
        res = iter(_wrap(np.zeros_like(s.data)) if g is None else _wrap(g)
                   for s, g in zip(sources, res))
        grads = tuple(_pack(args[a], res) for a in nums)
        value = _wrap(out.data)
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
