"""Reading one batch ahead on a device: fit, evaluate and predict of a model whose weights are on
a device, reading prepared arrays, copy the next batch's inputs to the device on the prefetch
thread while the current step computes (``training._PREFETCH``).

The strict stand-in plays the GPU as in ``test_strict_training.py``; with AXONE_TEST_DEVICE=cupy
the same tests run on the real ``gpu:0``.  Each run with the prefetch is compared with the same
run without it: the main thread does the same things in the same order, so History, weights,
evaluations and predictions are the same numbers.
"""
import contextlib
import os
import threading

import numpy as np
import pytest

import axone
from axone import device as dev
from axone import layers, models
from axone.models import training

import strict_xp
from strict_xp import StrictArray


class _Cuda:
    """A stand-in ``cupy.cuda`` with Device contexts only (no streams: the plain copy path)."""

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False


@pytest.fixture(autouse=True)
def every_batch_read_ahead(monkeypatch):
    """These small batches read ahead too (below ``_PREFETCH_MIN_BYTES`` the step copies its
    own batch; test_small_batches_are_copied_by_their_step checks that)."""
    monkeypatch.setattr(training, "_PREFETCH_MIN_BYTES", 0)


@pytest.fixture
def gpu(monkeypatch):
    """``axone.device("gpu:0")`` gives the strict module (or, with AXONE_TEST_DEVICE=cupy, the
    real gpu:0); the default device is the CPU."""
    monkeypatch.setattr(dev, "_default", dev._CPU)
    if not strict_xp.IS_STAND_IN:
        if not dev.gpu_available():
            pytest.skip("AXONE_TEST_DEVICE=cupy but CuPy sees no GPU")
        yield lambda: axone.device("gpu:0")
        return
    monkeypatch.setattr(dev, "_gpu", (strict_xp.strict_xp, 1, None))
    monkeypatch.setattr(strict_xp.strict_xp, "cuda", _Cuda(), raising=False)
    before = dict(dev._MODULES)
    strict_xp.register()
    yield lambda: axone.device("gpu:0")
    dev._MODULES.clear()
    dev._MODULES.update(before)


class _Copies:
    """``xp.asarray`` wrapped: records (thread name, shape) of every host array copied; raises
    ``fail`` when the array copied equals ``fail_on`` (one batch's inputs); sets ``copied``
    after each copy of an input batch (rows x 4) on the prefetch thread."""

    def __init__(self, monkeypatch, fail=None, fail_on=None):
        self.calls = []
        self.lock = threading.Lock()
        self.copied = threading.Event()
        inner = strict_xp.strict_xp.asarray
        self.fail, self.fail_on = fail, fail_on

        def asarray(a, *args, **kwargs):
            if type(a) is np.ndarray:
                name = threading.current_thread().name
                with self.lock:
                    self.calls.append((name, a.shape))
                if self.fail is not None and a.shape == self.fail_on.shape and \
                        np.array_equal(a, self.fail_on):
                    raise self.fail
                if name.startswith("axone-prefetch") and a.ndim == 2 and a.shape[1:] == (4,):
                    out = inner(a, *args, **kwargs)
                    self.copied.set()
                    return out
            return inner(a, *args, **kwargs)

        monkeypatch.setattr(strict_xp.strict_xp, "asarray", asarray)

    def inputs(self):
        """The thread names of the copies of input batches (rows x 4)."""
        return [n for n, s in self.calls if len(s) == 2 and s[1:] == (4,)]


class _GiveTheWorkerItsTurn(axone.callbacks.Callback):
    """At the end of every step but an epoch's last, waits (the interpreter free) until the
    prefetch thread has copied the next batch, which it may otherwise not get to before the
    next step takes the copy back (a short step that never lets go of the interpreter)."""

    def __init__(self, copies):
        super().__init__()
        self.copies = copies

    def _wait(self, batch, steps):
        if steps is not None and batch + 1 < steps:
            self.copies.copied.wait(2)     # (no next batch when an epoch's steps ran out)
        self.copies.copied.clear()

    def on_epoch_begin(self, epoch, logs=None):
        self.copies.copied.clear()      # (a validation batch's copy at the last epoch's end)

    def on_train_batch_end(self, batch, logs=None):
        self._wait(batch, self.params.get("steps"))


class _WorkerBusy:
    """The prefetch thread kept busy: every copy given to it is taken back and made by the step
    that needs it."""

    def __enter__(self):
        self.go = threading.Event()
        self.blocker = training._prefetch_pool().submit(self.go.wait, 30)
        return self

    def __exit__(self, *exc):
        self.go.set()
        assert self.blocker.result(timeout=10)
        return False


class _Boom(RuntimeError):
    pass


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype("float32"), rng.integers(0, 3, n)


def _model(dropout=0.25):
    axone.utils.set_random_seed(0)
    m = models.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"),
                           layers.Dropout(dropout), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _same(a, b):
    """Equal bitwise on the stand-in (the same NumPy calls in the same order); on a GPU within
    1e-6 (a kernel may add in an order of its own from run to run)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    if strict_xp.IS_STAND_IN:
        assert np.array_equal(a, b, equal_nan=True), np.abs(a - b).max()
    else:
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def _same_history(h1, h2):
    assert h1.history.keys() == h2.history.keys()
    for k in h1.history:
        _same(h1.history[k], h2.history[k])


def _fit(gpu, monkeypatch, prefetch, callbacks=None, model=None, **fit):
    monkeypatch.setattr(training, "_PREFETCH", prefetch)
    x, y = _data()
    with gpu():
        m = model() if model is not None else _model()
        h = m.fit(x, y, verbose=0, callbacks=callbacks, **fit)
    return m, h


def _pool_alive():
    """The prefetch thread takes new work (none is stuck)."""
    assert training._prefetch_pool().submit(lambda: 7).result(timeout=10) == 7


# ------------------------------------------------------------------ same results
@pytest.mark.parametrize("fit", [
    dict(epochs=3, batch_size=16, shuffle=True),
    dict(epochs=2, batch_size=8, shuffle=True, class_weight={0: 1.0, 1: 2.0, 2: 0.5},
         validation_data=_data(12, seed=1)),
    dict(epochs=2, batch_size=16, shuffle=False, validation_split=0.25,
         sample_weight=np.linspace(0.5, 1.5, 40).astype("float32")),
    dict(epochs=3, batch_size=8, steps_per_epoch=3, shuffle=True),
], ids=["shuffle", "class_weight-validation_data", "sample_weight-validation_split", "steps"])
def test_fit_same_with_and_without(gpu, monkeypatch, fit):
    """Copied on the prefetch thread, taken back by the steps (the thread busy), or not read
    ahead: the same History, weights and optimizer state."""
    copies = _Copies(monkeypatch)
    m_on, h_on = _fit(gpu, monkeypatch, True, callbacks=[_GiveTheWorkerItsTurn(copies)], **fit)
    on = copies.inputs()
    assert sum(n.startswith("axone-prefetch") for n in on) >= len(on) // 3, on
    del copies.calls[:]
    with _WorkerBusy():
        m_busy, h_busy = _fit(gpu, monkeypatch, True, **fit)
    busy = copies.inputs()
    assert not any(n.startswith("axone-prefetch") for n in busy), busy
    del copies.calls[:]
    m_off, h_off = _fit(gpu, monkeypatch, False, **fit)
    off = copies.inputs()
    assert not any(n.startswith("axone-prefetch") for n in off)
    assert len(on) == len(busy) == len(off)          # each batch's inputs copied once
    assert all(type(w.data) is StrictArray for w in m_on.weights)
    for m, h in ((m_on, h_on), (m_busy, h_busy)):
        _same_history(h, h_off)
        for a, b in zip(m.get_weights(), m_off.get_weights()):
            _same(a, b)
        for a, b in zip(m.optimizer.variables, m_off.optimizer.variables):
            _same(strict_xp.from_strict(a.data), strict_xp.from_strict(b.data))


def test_copies_run_on_the_prefetch_thread(gpu, monkeypatch):
    copies = _Copies(monkeypatch)
    _fit(gpu, monkeypatch, True, callbacks=[_GiveTheWorkerItsTurn(copies)], epochs=2,
         batch_size=16, shuffle=True, validation_data=_data(10, seed=2))
    names = copies.inputs()
    # 2 epochs of 3 training batches and one validation batch each, each copied once; the 2nd
    # and 3rd training batches of each epoch on the prefetch thread (the steps before them
    # gave it its turn); the first ones, read ahead just before their step, on either thread
    assert len(names) == 8, names
    ahead = [n for n in names if n.startswith("axone-prefetch")]
    assert len(ahead) >= 4, names
    assert len(set(ahead)) == 1            # one thread, the same for every copy
    # the targets are copied where the loss needs them, on the main thread
    main = threading.current_thread().name
    assert any(n == main and len(s) == 1 for n, s in copies.calls)


def test_evaluate_and_predict_same_with_and_without(gpu, monkeypatch):
    x, y = _data(50, seed=3)
    out = {}
    copies = _Copies(monkeypatch)
    for prefetch in (True, "busy", False):
        monkeypatch.setattr(training, "_PREFETCH", bool(prefetch))
        with gpu(), (_WorkerBusy() if prefetch == "busy" else contextlib.nullcontext()):
            m = _model()
            m.fit(*_data(), epochs=1, batch_size=16, verbose=0)
            out[prefetch] = (m.evaluate(x, y, batch_size=8, verbose=0),
                             m.evaluate(x, y, batch_size=8, verbose=0, steps=3),
                             m.predict(x, batch_size=8, verbose=0),
                             m.predict(x, batch_size=16, verbose=0, steps=2))
        names = copies.inputs()
        assert prefetch is True or not any(n.startswith("axone-prefetch") for n in names), names
        out[prefetch, "copies"] = len(names)
        del copies.calls[:]
    assert out[True, "copies"] == out["busy", "copies"] == out[False, "copies"]
    for a, b, c in zip(out[True], out["busy"], out[False]):
        _same(a, c)
        _same(b, c)
    assert type(out[True][2]) is np.ndarray and out[True][2].shape == (50, 3)
    assert out[True][3].shape == (32, 3)


# ------------------------------------------------------------------ failures and early stops
def test_a_failing_copy_raises_in_fit(gpu, monkeypatch):
    copies = _Copies(monkeypatch, fail=_Boom("the copy failed"), fail_on=_data()[0][16:24])
    seen = []

    class Count(axone.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    with pytest.raises(_Boom, match="the copy failed"):
        _fit(gpu, monkeypatch, True, callbacks=[Count()], epochs=2, batch_size=8, shuffle=False)
    assert seen == [0, 1]          # the third batch's copy failed: raised at the step needing it
    _pool_alive()
    copies.fail = None
    _fit(gpu, monkeypatch, True, epochs=1, batch_size=8)        # the next fit runs


def test_a_failing_copy_raises_in_evaluate_and_predict(gpu, monkeypatch):
    x, y = _data(24)
    with gpu():
        m = _model()
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)     # (its metrics' state on the host)
    _Copies(monkeypatch, fail=MemoryError("out of device memory"), fail_on=x[8:16])
    seen = []

    class Count(axone.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            seen.append(("test", batch))

        def on_predict_batch_end(self, batch, logs=None):
            seen.append(("predict", batch))

    with gpu(), pytest.raises(MemoryError, match="out of device memory"):
        m.evaluate(x, y, batch_size=8, verbose=0, callbacks=[Count()])
    with gpu(), pytest.raises(MemoryError, match="out of device memory"):
        m.predict(x, batch_size=8, verbose=0, callbacks=[Count()])
    assert seen == [("test", 0), ("predict", 0)]
    _pool_alive()


@pytest.mark.parametrize("stop", ["stop_training", "step error", "KeyboardInterrupt"])
def test_an_early_stop_leaves_no_stuck_worker_and_loses_no_batch(gpu, monkeypatch, stop):
    class Stop(axone.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = []

        def on_train_batch_end(self, batch, logs=None):
            self.batches.append(batch)
            if batch == 1:
                if stop == "stop_training":
                    self.model.stop_training = True
                elif stop == "step error":
                    raise _Boom("a step failed")
                else:
                    raise KeyboardInterrupt

    results = {}
    for prefetch in (True, False):
        cb = Stop()
        kind = {"step error": _Boom, "KeyboardInterrupt": KeyboardInterrupt}.get(stop)
        if kind is None:
            m, h = _fit(gpu, monkeypatch, prefetch, callbacks=[cb], epochs=3, batch_size=8,
                        shuffle=True, steps_per_epoch=4)
        else:
            monkeypatch.setattr(training, "_PREFETCH", prefetch)
            with gpu():
                m = _model()
                with pytest.raises(kind):
                    m.fit(*_data(), epochs=3, batch_size=8, shuffle=True, steps_per_epoch=4,
                          verbose=0, callbacks=[cb])
        assert cb.batches == [0, 1]
        _pool_alive()
        # the same model trained on: a new fit reads its batches from the first again
        with gpu():
            h2 = m.fit(*_data(), epochs=2, batch_size=8, shuffle=True, verbose=0)
        results[prefetch] = (m.get_weights(), h2)
    for a, b in zip(results[True][0], results[False][0]):
        _same(a, b)
    _same_history(results[True][1], results[False][1])


def test_a_batch_loop_dropped_early_cancels_its_copy(gpu, monkeypatch):
    """The batch generator closed after one batch: the copy read ahead is not waited for, and
    the prefetch thread goes on with new work."""
    monkeypatch.setattr(training, "_PREFETCH", True)
    x, y = _data()
    with gpu():
        m = _model()
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)
        adapter = training.ArrayDataAdapter([x], [y], None, 8)
        it = m._batches_of(adapter, "fit")
        step, xs, ys, sw, rows = next(it)
        assert step == 0 and type(xs[0]) is StrictArray and type(ys[0]) is np.ndarray
        assert rows == 8
        it.close()
    _pool_alive()


# ------------------------------------------------------------------ where it does not apply
@pytest.fixture
def no_worker(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the prefetch thread was used")
    monkeypatch.setattr(training, "_copy_ahead", refuse)


def test_cpu_models_never_use_the_worker(no_worker, monkeypatch):
    monkeypatch.setattr(training, "_PREFETCH", True)
    x, y = _data()
    m = _model()
    m.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_data=_data(8, seed=1))
    m.evaluate(x, y, batch_size=8, verbose=0)
    assert m.predict(x, batch_size=8, verbose=0).shape == (40, 3)


def test_the_switch_turns_it_off(gpu, no_worker, monkeypatch):
    m, h = _fit(gpu, monkeypatch, False, epochs=2, batch_size=8,
                validation_data=_data(8, seed=1))
    with gpu():
        m.evaluate(*_data(), batch_size=8, verbose=0)
        m.predict(_data()[0], batch_size=8, verbose=0)
    assert len(h.history["loss"]) == 2


def test_small_batches_are_copied_by_their_step(gpu, no_worker, monkeypatch):
    monkeypatch.setattr(training, "_PREFETCH_MIN_BYTES", 1 << 20)
    on, h_on = _fit(gpu, monkeypatch, True, epochs=2, batch_size=8)
    off, h_off = _fit(gpu, monkeypatch, False, epochs=2, batch_size=8)
    assert h_on.history == h_off.history
    for a, b in zip(on.get_weights(), off.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_shuffle_batch_generators_and_custom_steps_keep_todays_path(gpu, no_worker, monkeypatch):
    monkeypatch.setattr(training, "_PREFETCH", True)
    x, y = _data()
    # shuffle="batch" draws each batch's order as it is read: reading ahead would move the draw
    _fit(gpu, monkeypatch, True, epochs=2, batch_size=8, shuffle="batch")

    def gen():
        for i in range(0, 40, 8):
            yield x[i:i + 8], y[i:i + 8]

    class Seq(axone.utils.PyDataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]

    with gpu():
        m = _model()
        m.fit(gen(), epochs=1, steps_per_epoch=5, verbose=0)
        m.fit(Seq(), epochs=2, verbose=0)
        m.evaluate(Seq(), verbose=0)
        assert m.predict(Seq(), verbose=0).shape == (40, 3)

    class Custom(models.Sequential):
        def train_step(self, data):
            return super().train_step(data)

        def test_step(self, data):
            return super().test_step(data)

        def predict_step(self, data):
            return super().predict_step(data)

    def custom():
        axone.utils.set_random_seed(0)
        m = Custom([layers.Input((4,)), layers.Dense(3, activation="softmax")])
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return m

    with gpu():
        m = custom()
        m.fit(x, y, epochs=1, batch_size=8, verbose=0, validation_data=_data(8, seed=1))
        m.evaluate(x, y, batch_size=8, verbose=0)
        m.predict(x, batch_size=8, verbose=0)


# ------------------------------------------------------------------ the copy itself
class _FakeCuda:
    """``cupy.cuda``'s Stream and Event, recording what is done with them and on which thread."""

    def __init__(self, log):
        cuda = self

        class Event:
            def __init__(self, disable_timing=False):
                assert disable_timing
                log.append(("event", threading.current_thread().name))

            def record(self):
                log.append(("record", threading.current_thread().name))

        class Stream:
            def __init__(self, non_blocking=False):
                assert non_blocking
                log.append(("stream", threading.current_thread().name))
                cuda.streams.append(self)

            def wait_event(self, event):
                log.append(("wait", threading.current_thread().name))

            def __enter__(self):
                log.append(("enter", threading.current_thread().name))
                cuda.current = self
                return self

            def __exit__(self, *exc):
                cuda.current = None
                return False

            def synchronize(self):
                log.append(("sync", threading.current_thread().name))

        self.Event, self.Stream, self.streams, self.current = Event, Stream, [], None


class _FakeXp:
    def __init__(self, log):
        self.cuda = _FakeCuda(log)
        self.log = log

    def asarray(self, a):
        assert self.cuda.current is not None, "copied outside the prefetch stream"
        self.log.append(("copy", threading.current_thread().name))
        return ("on device", a.copy())


class _Like:
    """A device array's stand-in: ``.device`` a context with an ``id``, as CuPy's."""

    def __init__(self, log, index):
        class Device:
            id = index

            def __enter__(self):
                log.append(("device", index, threading.current_thread().name))
                return self

            def __exit__(self, *exc):
                return False

        self.device = Device()


@strict_xp.stand_in_only
def test_the_stream_path():
    """With a module that has ``cuda.Stream``: an event recorded on the calling thread, one
    non-blocking stream per device on the prefetch thread, made once, waiting on the event,
    the copies inside it, synchronized before the arrays are handed over."""
    log = []
    xp = _FakeXp(log)
    like0, like1 = _Like(log, 0), _Like(log, 1)
    a = np.arange(6.0).reshape(2, 3)
    main = threading.current_thread().name
    outs = [training._copy_ahead(xp, [a, None], like0).result(timeout=10) for _ in range(2)]
    outs.append(training._copy_ahead(xp, [a], like1).result(timeout=10))
    for out in outs:
        assert out[0][0] == "on device" and np.array_equal(out[0][1], a)
    assert outs[0][1] is None
    assert len(xp.cuda.streams) == 2                       # one per device, made once
    worker = [e for e in log if e[-1] != main]
    assert {e[-1] for e in worker} and all(n.startswith("axone-prefetch") for *_, n in worker)
    assert [e[0] for e in log if e[-1] == main] == ["device", "event", "record"] * 3
    first = [e[0] for e in worker][:6]
    assert first == ["device", "stream", "wait", "enter", "copy", "sync"], first
    assert [e[0] for e in worker][6:11] == ["device", "wait", "enter", "copy", "sync"]


@pytest.mark.skipif(not hasattr(os, "fork") or not strict_xp.IS_STAND_IN,
                    reason="needs fork (and no CUDA context to carry into a child)")
def test_a_forked_child_starts_its_own_prefetch_thread(gpu, monkeypatch):
    _fit(gpu, monkeypatch, True, epochs=1, batch_size=8)      # the parent's thread exists
    assert training._PREFETCH_POOL
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                                # the child
        code = 1
        try:
            os.close(r)
            ok = not training._PREFETCH_POOL
            x, y = _data()
            with gpu():
                m = _model()
                m.fit(x, y, epochs=1, batch_size=8, verbose=0)
            ok = ok and len(training._PREFETCH_POOL) == 1
            os.write(w, b"ok" if ok else b"no")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    got = os.read(r, 2)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert got == b"ok" and os.WEXITSTATUS(status) == 0
