"""Data adapters: the one place that turns what ``fit`` / ``evaluate`` / ``predict`` accept into
batches, as Keras 3's ``trainers/data_adapters`` do.

- arrays (NumPy, nested lists, pandas, axone Tensors; one per input/output, or lists and dicts
  of them) are sliced by :class:`ArrayDataAdapter` from a plan of rows (:class:`_Batches`);
- a :class:`PyDataset` (``keras.utils.PyDataset``, and the legacy ``Sequence``) is read by index,
  on ``workers`` threads or processes with at most ``max_queue_size`` batches waiting;
- Python generators and iterators, ``torch.utils.data.DataLoader`` and other re-iterable datasets
  (a ``tf.data.Dataset``-like object that iterates to arrays) are iterated batch by batch.

Every adapter yields ``(step, batch)`` per epoch, a batch being ``(x, y, sample_weight)`` of
NumPy structures; none copies its source whole into memory. ``steps_per_epoch`` batches per
epoch continue where the previous epoch stopped, as Keras does; an input that runs out of data
ends the epoch early with Keras's warning.
"""
import itertools
import math
import queue
import threading
import warnings

import numpy as np

from .. import distribution as _distribution
from ..autograd.tensor import Tensor
from ..device import _MODULES as _DEVICE_MODULES
from ..device import array_module, to_numpy

__all__ = ["PyDataset", "Sequence", "pack_x_y_sample_weight", "unpack_x_y_sample_weight",
           "get_data_adapter", "is_array_input"]


# ---------------------------------------------------------------------- PyDataset
class PyDataset:
    """Base class of a dataset read batch by batch by index (``keras.utils.PyDataset``).

    Subclasses implement ``__getitem__(index)`` (a batch: ``x``, ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)``) and ``__len__`` (the number of batches; or a ``num_batches``
    property returning ``None`` for an endless dataset), and may implement ``on_epoch_begin``
    and ``on_epoch_end``.

    Args:
        workers: how many threads (or processes) read batches ahead; 1 reads them in turn.
        use_multiprocessing: read with processes instead of threads (the dataset must be
            picklable; on Linux the workers are forked).
        max_queue_size: at most this many batches are read ahead and held in memory.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = _positive(workers, "workers")
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = _positive(max_queue_size, "max_queue_size")

    def _settings(self):
        # a subclass that forgot super().__init__() still gets Keras's defaults
        return (getattr(self, "_workers", 1), getattr(self, "_use_multiprocessing", False),
                getattr(self, "_max_queue_size", 10))

    @property
    def workers(self):
        return self._settings()[0]

    @workers.setter
    def workers(self, value):
        self._workers = _positive(value, "workers")

    @property
    def use_multiprocessing(self):
        return self._settings()[1]

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = bool(value)

    @property
    def max_queue_size(self):
        return self._settings()[2]

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = _positive(value, "max_queue_size")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: a PyDataset must implement "
                                  f"__getitem__(index), returning one batch")

    @property
    def num_batches(self):
        """The number of batches (``len(self)``), or ``None`` for an endless dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(f"{type(self).__name__}: a PyDataset must implement __len__ "
                                  f"(or a num_batches property; None for an endless dataset)")

    def __iter__(self):
        n = self.num_batches
        for i in (range(n) if n is not None else itertools.count()):
            yield self[i]

    def on_epoch_begin(self):
        """Called at the beginning of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


Sequence = PyDataset


def _positive(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"PyDataset: {name} must be a positive integer, received {v!r}")
    return int(v)


# --------------------------------------------------------------- (x, y, sample_weight)
def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` as a step receives them (Keras)."""
    if y is None:
        if not isinstance(x, (tuple, list)):
            return x
        return (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data):
    """``(x, y, sample_weight)`` from a batch given as ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sw)``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return (data, None, None)
    if len(data) == 1:
        return (data[0], None, None)
    if len(data) == 2:
        return (data[0], data[1], None)
    if len(data) == 3:
        return (data[0], data[1], data[2])
    raise ValueError(f"Data is expected to be in the format `x`, `(x,)`, `(x, y)`, or "
                     f"`(x, y, sample_weight)`, found a tuple of {len(data)} elements: "
                     f"{str(data)[:100]}")


# ------------------------------------------------------------------- conversions
def _is_torch_tensor(x):
    return type(x).__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "numpy")


def _leaf_to_numpy(x):
    if x is None or isinstance(x, np.ndarray):
        return x
    if isinstance(x, Tensor):
        return x.data
    if _is_torch_tensor(x):
        return x.detach().cpu().numpy()
    if hasattr(x, "to_numpy") and hasattr(x, "shape"):      # pandas
        return x.to_numpy()
    if hasattr(x, "numpy") and hasattr(x, "shape"):          # other framework tensors
        return np.asarray(x.numpy())
    return x


def to_numpy_structure(x):
    """Framework tensors in a (nested) batch become NumPy arrays; lists of numbers stay as they
    are for the model's own conversion."""
    if isinstance(x, dict):
        return {k: to_numpy_structure(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and x and any(
            isinstance(v, (np.ndarray, Tensor, dict, list, tuple)) or _is_torch_tensor(v)
            or hasattr(v, "to_numpy") for v in x):
        return type(x)(to_numpy_structure(v) for v in x) if isinstance(x, tuple) else \
            [to_numpy_structure(v) for v in x]
    return _leaf_to_numpy(x)


def _is_array_leaf(x):
    return isinstance(x, (np.ndarray, Tensor, np.generic)) or _is_torch_tensor(x) or (
        hasattr(x, "to_numpy") and hasattr(x, "shape")) or _is_device_array(x)


def _is_device_array(x):
    t = type(x)
    return t is not np.ndarray and (t in _DEVICE_MODULES or (
        t.__module__[:4] == "cupy" and array_module(x) is not np))


def host_arrays(x):
    """``x`` with its device arrays (CuPy arrays, device Tensors) copied to the host, through
    dicts, lists and tuples; everything else as it is.  The data adapters slice host arrays,
    and each batch goes to the model's device when its step starts (Keras 3's host batches)."""
    t = type(x)
    if t is np.ndarray or x is None:
        return x
    if isinstance(x, Tensor):
        d = x.data
        return to_numpy(d) if type(d) is not np.ndarray and array_module(d) is not np else x
    if _is_device_array(x):
        return to_numpy(x)
    if t is dict:
        out = {k: host_arrays(v) for k, v in x.items()}
        return x if all(out[k] is v for k, v in x.items()) else out
    if t is list or t is tuple:
        out = [v if type(v) in _PLAIN else host_arrays(v) for v in x]
        return x if all(map(_same, out, x)) else t(out)
    return x


_PLAIN = frozenset((int, float, bool, np.ndarray, str))


def _same(a, b):
    return a is b


def is_array_input(x):
    """True for what :class:`ArrayDataAdapter` slices: arrays, nested lists of numbers, pandas
    objects, Tensors, and lists/tuples/dicts of those."""
    if x is None or _is_array_leaf(x):
        return True
    if isinstance(x, dict):
        return all(is_array_input(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return True      # nested lists of numbers, or one array per input
    return isinstance(x, (int, float, bool, np.number))


def _is_torch_dataloader(x):
    mod = type(x).__module__
    return mod.startswith("torch.utils.data") and hasattr(x, "dataset") and hasattr(x, "__iter__")


def _is_generator(x):
    return hasattr(x, "__next__") and hasattr(x, "__iter__")


# ----------------------------------------------------------------- array batches
class _Batches:
    """The rows of each step, as Keras 3's epoch iterator over arrays.

    Without ``steps`` an epoch is one pass over the ``n`` rows in batches of ``batch_size``
    (reshuffled each epoch).  With ``steps`` an epoch takes the next ``steps`` batches of the
    current pass, which carries over from epoch to epoch; a new pass (new order) starts when
    one is used up, and an epoch that runs out of batches ends early with Keras's warning.
    ``shuffle="batch"`` keeps the batches in order and shuffles the rows within each.
    """

    def __init__(self, n, batch_size, shuffle, steps, rng):
        self.n, self.batch_size, self.shuffle, self.rng = n, batch_size, shuffle, rng
        self.num_batches = int(math.ceil(n / batch_size))
        self._steps = steps
        self.steps = steps or self.num_batches      # what the progress bar counts to
        self._order, self._pos = None, 0

    def _draw(self):
        return self.rng.permutation(self.n) if self.shuffle and self.shuffle != "batch" else None

    def _rows(self, order, i):
        lo, hi = i * self.batch_size, min(self.n, (i + 1) * self.batch_size)
        if self.shuffle == "batch":
            return lo + self.rng.permutation(hi - lo), hi - lo
        return (order[lo:hi] if order is not None else slice(lo, hi)), hi - lo

    def epoch(self):
        """Yield ``(step, rows, count)`` for one epoch."""
        if self._steps is None:
            order = self._draw()
            for step in range(self.num_batches):
                rows, m = self._rows(order, step)
                yield step, rows, m
            return
        for step in range(self._steps):
            if self._pos >= self.num_batches:
                _ran_out(self._steps, step)
                break
            if self._pos == 0:
                self._order = self._draw()
            rows, m = self._rows(self._order, self._pos)
            self._pos += 1
            yield step, rows, m
        if self._pos >= self.num_batches:
            self._pos = 0


def _ran_out(expected, got):
    warnings.warn(f"Your input ran out of data; interrupting training. Make sure that your "
                  f"dataset or generator can generate at least `steps_per_epoch * epochs` "
                  f"batches (this epoch expected {expected} batches and received {got}). You may "
                  f"need to use the `.repeat()` function when building your dataset.",
                  stacklevel=4)


class ArrayDataAdapter:
    """Batches sliced from prepared arrays: ``xs``/``ys`` lists (one per input/output), ``sw``."""

    prepared = True

    def __init__(self, xs, ys, sw, batch_size, shuffle=False, steps=None, rng=None):
        self.xs, self.ys, self.sw = xs, ys, sw
        self.n = xs[0].shape[0]
        self._batches = _Batches(self.n, batch_size, shuffle, steps, rng)
        self.num_batches = self._batches.steps
        self.batch_size = batch_size
        self.ran_out = False

    def epoch(self):
        """Yield ``(step, (xs, ys, sw), rows)`` for one epoch."""
        xs, ys, sw = self.xs, self.ys, self.sw
        for step, b, m in self._batches.epoch():
            yield step, ([a[b] for a in xs], None if ys is None else [a[b] for a in ys],
                         None if sw is None else sw[b]), m

    def first_batch(self):
        b = slice(0, min(self.n, self.batch_size))
        return ([a[b] for a in self.xs], None if self.ys is None else [a[b] for a in self.ys],
                None if self.sw is None else self.sw[b])

    def close(self):
        pass


# -------------------------------------------------------------- iterated batches
def _standardize(batch, what):
    if isinstance(batch, dict):
        return (to_numpy_structure(batch), None, None)
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        if _is_array_leaf(batch):
            return (_leaf_to_numpy(batch), None, None)
        raise ValueError(f"{what} must yield a tuple `(inputs,)`, `(inputs, targets)` or "
                         f"`(inputs, targets, sample_weights)`, or an array of inputs; received "
                         f"{str(batch)[:100]} of type {type(batch).__name__}")
    if len(batch) not in (1, 2, 3):
        raise ValueError(f"{what} must yield a tuple `(inputs,)`, `(inputs, targets)` or "
                         f"`(inputs, targets, sample_weights)`; received a tuple of {len(batch)} "
                         f"elements")
    x, y, sw = unpack_x_y_sample_weight(batch)
    return (to_numpy_structure(x), to_numpy_structure(y), to_numpy_structure(sw))


class _IteratedAdapter:
    """Common epoch logic for inputs read one batch at a time."""

    prepared = False
    batch_size = None

    def __init__(self, steps, what):
        self.steps = steps
        self.what = what
        self._it = None
        self._seen = 0          # batches drawn from the current pass
        self._known = self._length()
        self.ran_out = False
        self._peeked = []

    @property
    def num_batches(self):
        return self.steps or self._known

    def _length(self):
        return None

    def _new_pass(self):
        raise NotImplementedError

    def _begin_epoch(self):
        pass

    def _end_epoch(self):
        pass

    def first_batch(self):
        """The first batch (read once and kept for the first epoch), for building a model."""
        if not self._peeked:
            if self._it is None:
                self._it = self._new_pass()
                self._seen = 0
            try:
                self._peeked.append(next(self._it))
            except StopIteration:
                raise ValueError(f"{self.what} yielded no batch: it must yield at least one "
                                 f"batch") from None
        return _standardize(self._peeked[0], self.what)

    def _next(self):
        if self._peeked:
            return self._peeked.pop(0)
        return next(self._it)

    def epoch(self):
        """Yield ``(step, (x, y, sw), None)`` for one epoch."""
        self._begin_epoch()
        try:
            steps = self.steps or self._known
            if self._it is None or (self.steps is None and not self._peeked):
                if self._it is not None and not self._restartable():
                    if self._seen:      # a one-shot generator used up by an earlier epoch
                        self.ran_out = True
                        warnings.warn(
                            f"{self.what} was used up after {self._seen} batches in an earlier "
                            f"epoch; interrupting training. Pass steps_per_epoch with a generator "
                            f"that loops forever, or a PyDataset, to train for several epochs.",
                            stacklevel=3)
                        return
                self._it = self._new_pass()
                self._seen = 0
            step = 0
            while steps is None or step < steps:
                try:
                    batch = self._next()
                except StopIteration:
                    if self.steps is not None:
                        self.ran_out = not self._restartable()
                        _ran_out(self.steps, step)
                    elif self._known is None:
                        self._known = step
                    self._it = None if self._restartable() else self._it
                    return
                self._seen += 1
                yield step, _standardize(batch, self.what), None
                step += 1
            if self.steps is None or (self._known is not None and self._seen >= self._known):
                # a pass ended with the epoch: the next epoch starts a new pass
                if self._restartable():
                    self._it = None
        finally:
            self._end_epoch()

    def _restartable(self):
        return True

    def close(self):
        pass


class GeneratorDataAdapter(_IteratedAdapter):
    """A Python generator or iterator: read once, in order; the same one serves every epoch."""

    def __init__(self, gen, steps, what):
        self.gen = gen
        super().__init__(steps, what)

    def _new_pass(self):
        return self.gen

    def _restartable(self):
        return False


class IterableDataAdapter(_IteratedAdapter):
    """A re-iterable dataset (a ``torch.utils.data.DataLoader``, a ``tf.data``-like pipeline):
    ``iter()`` gives a new pass each epoch."""

    def __init__(self, data, steps, what):
        self.data = data
        super().__init__(steps, what)

    def _length(self):
        try:
            n = len(self.data)
        except (TypeError, NotImplementedError):
            return None
        return int(n) if n is not None and n >= 0 else None

    def _new_pass(self):
        return iter(self.data)


class PyDatasetAdapter(_IteratedAdapter):
    """A :class:`PyDataset`: batches by index (shuffled order with ``shuffle=True``), read ahead
    on ``workers`` threads or processes, at most ``max_queue_size`` held at once."""

    def __init__(self, dataset, steps, what, shuffle=False, rng=None):
        self.dataset = dataset
        self.shuffle = bool(shuffle) and shuffle != "batch"
        self.rng = rng
        self._pool = None
        super().__init__(steps, what)
        if self._known == 0:
            raise ValueError(f"{what}: the PyDataset {type(dataset).__name__} has length 0; it "
                             f"must have at least one batch")

    def _length(self):
        n = self.dataset.num_batches
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
            raise ValueError(f"{self.what}: PyDataset.num_batches (or __len__) must be a "
                             f"non-negative integer or None, received {n!r}")
        return None if n is None else int(n)

    def _indices(self):
        n = self._known
        if n is None:
            return itertools.count()
        if self.shuffle and self.rng is not None:
            return iter(self.rng.permutation(n).tolist())
        return iter(range(n))

    def _new_pass(self):
        workers, use_mp, qsize = self.dataset._settings() if isinstance(self.dataset, PyDataset) \
            else (1, False, 10)
        indices = self._indices()
        if workers <= 1:
            return (self.dataset[i] for i in indices)
        return _read_ahead(self.dataset, indices, workers, use_mp, qsize, self)

    def sharded_by_index(self, dp):
        """This adapter as one reading only the indices of rank ``dp.rank`` of a
        DataParallel ``dp`` (axone.distribution), while it has read nothing yet; else itself."""
        if type(self) is not PyDatasetAdapter or self._peeked or self._it is not None:
            return self
        return IndexShardedPyDatasetAdapter(self, dp)

    def _begin_epoch(self):
        self.dataset.on_epoch_begin()

    def _end_epoch(self):
        self.dataset.on_epoch_end()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _get_item(dataset, i):
    return dataset[i]


_MP_DATASET = {}


def _mp_get_item(key, i):
    return _MP_DATASET[key][i]


def _read_ahead(dataset, indices, workers, use_mp, qsize, owner):
    """Batches ``dataset[i]`` for ``i`` in ``indices``, in order, read by ``workers`` threads (or
    forked processes), with at most ``qsize`` batches read ahead."""
    import concurrent.futures as cf
    if owner._pool is None:
        if use_mp:
            import multiprocessing as mp
            key = id(dataset)
            _MP_DATASET[key] = dataset
            try:
                ctx = mp.get_context("fork")
            except ValueError:
                ctx = None
            owner._pool = cf.ProcessPoolExecutor(workers, mp_context=ctx)
            owner._pool_key = key
        else:
            owner._pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="axone-pydataset")
    pool = owner._pool
    pending = []

    def submit(i):
        if use_mp:
            return pool.submit(_mp_get_item, owner._pool_key, i)
        return pool.submit(_get_item, dataset, i)

    for i in itertools.islice(indices, qsize):
        pending.append(submit(i))
    try:
        while pending:
            fut = pending.pop(0)
            batch = fut.result()
            nxt = next(indices, None)
            if nxt is not None:
                pending.append(submit(nxt))
            yield batch
    finally:
        for f in pending:
            f.cancel()


# ---------------------------------------------------------------------- dispatch
def get_data_adapter(x, y=None, sample_weight=None, steps=None, shuffle=False, what="x",
                     rng=None):
    """The adapter for a non-array input ``x`` (a PyDataset, a generator or iterator, a
    DataLoader or another re-iterable dataset); ``None`` for arrays, which the trainer checks
    against the model and slices with :class:`ArrayDataAdapter`."""
    if is_array_input(x) and not isinstance(x, PyDataset):
        return None
    kind = ("a PyDataset" if isinstance(x, PyDataset) else "a torch DataLoader"
            if _is_torch_dataloader(x) else "a generator" if _is_generator(x) else "a dataset")
    for arg, name in ((y, "y"), (sample_weight, "sample_weight")):
        if arg is not None:
            raise ValueError(f"{what}: argument `{name}` must not be given when x is {kind} "
                             f"({type(x).__name__}); the {'targets' if name == 'y' else 'sample weights'} "
                             f"come from x itself")
    label = f"{what} ({type(x).__name__})"
    if isinstance(x, PyDataset) or (hasattr(x, "__getitem__") and hasattr(x, "__len__")
                                    and hasattr(x, "on_epoch_end") and not hasattr(x, "__next__")):
        return PyDatasetAdapter(x, steps, label, shuffle=shuffle, rng=rng)
    if _is_generator(x):
        return GeneratorDataAdapter(x, steps, label)
    if hasattr(x, "__iter__"):
        return IterableDataAdapter(x, steps, label)
    raise TypeError(f"{what}: unrecognized data type {type(x).__name__}; expected NumPy arrays, "
                    f"lists, pandas objects, a PyDataset, a generator, an iterator or an iterable "
                    f"dataset (e.g. a torch DataLoader)")


class IndexShardedPyDatasetAdapter:
    """A PyDataset read by index across the ranks: the epoch's order of batch indices (shuffled
    from the shared generator, so the same on every rank) is cut into groups of N consecutive
    indices; global step k is group k, and rank r reads only ``order[k*N + r]``.  A rank
    without an index in a last incomplete group contributes zero rows to that step.  Each step
    all-gathers the ranks' rows (``dp.global_rows``, a ``_Rows``): the gradients are weighted by
    them and predict's outputs are put back in index order with them."""

    prepared = False
    batch_size = None
    index_sharded = True

    def __init__(self, inner, dp):
        self.inner, self.dp = inner, dp
        self.dataset, self.what, self.steps = inner.dataset, inner.what, inner.steps
        self.ran_out = False
        n = inner._known
        if n is None and self.steps is None:
            raise ValueError(
                f"{self.what}: an endless PyDataset (num_batches None) sharded by index across "
                f"{dp.size} processes needs steps (steps_per_epoch / steps) so that every rank "
                f"runs the same number of steps")
        if n is not None and n < dp.size:
            raise ValueError(
                f"{self.what}: a PyDataset sharded by index across {dp.size} processes needs at "
                f"least {dp.size} batches (one per process), received one of {n}; use "
                f"DataParallel(auto_shard_dataset=False) to give each process its own data")
        self.n = n
        self.groups = None if n is None else -(-n // dp.size)
        ds = self.dataset
        self._settings = ds._settings() if isinstance(ds, PyDataset) else (1, False, 10)
        self._order = None      # the current pass's order of indices (None: not started)
        self._pos = 0           # groups of the current pass taken
        self._it = None         # this rank's batches of the current pass, from group _pos
        self._peeked = []
        self._fresh = False     # a pass begun by first_batch, for the first epoch
        self._empty = None      # a batch of this rank's structure with 0 rows
        self._pool = None

    def __getattr__(self, name):
        return getattr(self.__dict__["inner"], name)

    def sharded_by_index(self, dp):
        return self

    @property
    def num_batches(self):
        return self.steps or self.groups

    def _index(self, k):
        """This rank's index of group ``k`` of the current pass (None: it has none)."""
        i = k * self.dp.size + self.dp.rank
        if self.n is None:
            return i
        if i >= self.n:
            return None
        return i if self._order is None else int(self._order[i])

    def _new_pass(self):
        inner = self.inner
        self._order = None
        if self.n is not None and inner.shuffle and inner.rng is not None:
            self._order = inner.rng.permutation(self.n)
        self._pos = 0
        self._peeked = []
        k = itertools.count() if self.groups is None else range(self.groups)
        indices = (i for i in (self._index(g) for g in k) if i is not None)
        workers, use_mp, qsize = self._settings
        if workers <= 1:
            self._it = (self.dataset[i] for i in indices)
        else:
            self._it = _read_ahead(self.dataset, indices, workers, use_mp, qsize, self)

    def _read(self):
        if self._peeked:
            return self._peeked.pop(0)
        return _standardize(next(self._it), self.what)

    def first_batch(self):
        """This rank's first batch of a new pass (kept for the first epoch), for building the
        model."""
        if not self._peeked:
            self._new_pass()
            self._fresh = True
            self._peeked.append(self._read())
        return self._peeked[0]

    def _step(self, step):
        """``(step, batch, None)`` of group ``self._pos``, after all-gathering the rows."""
        dp = self.dp
        if self._index(self._pos) is None:
            data, m = self._empty, 0
        else:
            data = self._read()
            m = int(_distribution._first_leaf(data[0]).shape[0])
            if self._empty is None:
                self._empty = tuple(_distribution._slice_structure(a, 0, 0) for a in data)
        got = dp.allgather_bytes(np.array([m], dtype=np.int64).tobytes(),
                                 "sharing the batches' rows")
        dp.global_rows = _distribution._Rows([int(np.frombuffer(b, dtype=np.int64)[0]) for b in got])
        self._pos += 1
        return step, data, None

    def epoch(self):
        """Yield ``(step, (x, y, sw), None)`` for one epoch: one group of indices a step."""
        self.dataset.on_epoch_begin()
        try:
            if self.steps is None:
                if not self._fresh:
                    self._new_pass()
                self._fresh = False
                for step in range(self.groups):
                    yield self._step(step)
                self._order = self._it = None
                return
            for step in range(self.steps):
                if self._it is None:
                    self._new_pass()
                elif self.groups is not None and self._pos >= self.groups:
                    _ran_out(self.steps, step)      # as a PyDataset without distribution
                    self._it = None
                    return
                self._fresh = False
                yield self._step(step)
            if self.groups is not None and self._pos >= self.groups:
                self._it = None         # the pass ended with the epoch: the next starts one
        finally:
            self.dataset.on_epoch_end()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
