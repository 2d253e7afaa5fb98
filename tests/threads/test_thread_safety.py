"""Module state under several threads: grad mode is per thread, names stay unique, the conv
scratch pool and the BLAS thread scope hold when two threads train at once.

Every overlap is forced with events or barriers (with timeouts, so a regression fails
instead of hanging); nothing depends on timing."""
import threading
import time

import numpy as np
import pytest

import axone
from axone import backend, ops
from axone.layers.base import unique_name

WAIT = 30   # seconds an event may take before the test fails instead of hanging


def _wait(event):
    assert event.wait(WAIT), "the other thread never reached its point"


class _Run(threading.Thread):
    """A thread that keeps its target's exception (re-raised by ``result``)."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self._target_fn, self.error, self.value = target, None, None

    def run(self):
        try:
            self.value = self._target_fn()
        except BaseException as e:       # noqa: BLE001 - handed to the main thread
            self.error = e

    def result(self):
        self.join(WAIT)
        assert not self.is_alive(), "thread did not finish"
        if self.error is not None:
            raise self.error
        return self.value


class Gate(axone.layers.Layer):
    """Identity layer; while armed, its first inference call (training=False) sets ``entered``
    and waits for ``release`` — a way to hold a thread inside predict or validation."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.entered, self.release, self.armed = threading.Event(), threading.Event(), False

    def call(self, x, training=None):
        if self.armed and not training:
            self.armed = False
            self.entered.set()
            _wait(self.release)
        return x


def _data(seed=0, n=64):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 6)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def _model(seed, gate=False):
    axone.utils.set_random_seed(seed)
    layers = [axone.layers.Input((6,)), axone.layers.Dense(8, activation="relu")]
    if gate:
        layers.append(Gate())
    layers.append(axone.layers.Dense(2, activation="softmax"))
    m = axone.Sequential(layers)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def _weights(m):
    return [np.array(w) for w in m.get_weights()]


def _assert_same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------ grad mode
def test_grad_mode_is_per_thread_and_on_in_new_threads():
    seen = {}
    inside, leave = threading.Event(), threading.Event()

    def other():
        seen["start"] = axone.is_grad_enabled()
        with axone.no_grad():
            inside.set()
            _wait(leave)
        return axone.is_grad_enabled()

    with axone.no_grad():
        t = _Run(other)
        t.start()               # a thread started inside no_grad still starts with grad on
        _wait(inside)
    assert axone.is_grad_enabled()          # the other thread is inside no_grad: not us
    x = axone.Tensor(np.ones(3), requires_grad=True)
    assert (x * 2).requires_grad
    leave.set()
    assert t.result() is True
    assert seen["start"] is True


def test_fit_learns_while_another_thread_is_inside_no_grad():
    x, y = _data()
    alone = _model(1)
    axone.utils.set_random_seed(7)
    alone.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0)

    inside, done = threading.Event(), threading.Event()

    def hold():
        with axone.no_grad():
            inside.set()
            _wait(done)

    m = _model(1)
    t = _Run(hold)
    t.start()
    _wait(inside)
    try:
        axone.utils.set_random_seed(7)
        m.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0)
    finally:
        done.set()
    t.result()
    _assert_same(_weights(m), _weights(alone))


@pytest.mark.parametrize("same_model", [False, True])
def test_fit_with_predict_loop_on_another_thread_is_bit_identical(same_model):
    x, y = _data()
    alone = _model(2)
    axone.utils.set_random_seed(11)
    alone.fit(x, y, epochs=3, batch_size=8, shuffle=True, verbose=0)

    m = _model(2)
    other = m if same_model else _model(3)
    started, stop = threading.Event(), threading.Event()
    calls = []

    def predict_loop():
        while not stop.is_set():
            other.predict(x[:8], batch_size=4, verbose=0)
            calls.append(1)
            started.set()

    t = _Run(predict_loop)
    t.start()
    if not started.wait(WAIT):
        t.result()
        pytest.fail("the predicting thread made no predict")
    # each step waits until the predicting thread has finished one more predict, so predict
    # calls and training steps are interleaved throughout
    def step_begin(batch, logs):
        n = len(calls)
        for _ in range(10000):
            if len(calls) > n or t.error is not None:
                break
            stop.wait(0.001)

    try:
        axone.utils.set_random_seed(11)
        m.fit(x, y, epochs=3, batch_size=8, shuffle=True, verbose=0,
              callbacks=[axone.callbacks.LambdaCallback(on_train_batch_begin=step_begin)])
    finally:
        stop.set()
    t.result()
    assert len(calls) >= 24
    _assert_same(_weights(m), _weights(alone))
    assert axone.is_grad_enabled()


def test_training_step_while_other_model_validates():
    """Thread A is held inside its validation pass (no_grad) while thread B takes a training
    step; then both run free.  Each model ends as it does when trained alone."""
    xa, ya = _data(0)
    xb, yb = _data(1)

    def fit_a(m):
        return m.fit(xa, ya, epochs=2, batch_size=16, shuffle=False, verbose=0,
                     validation_data=(xa[:16], ya[:16]))

    def fit_b(m, callbacks=()):
        return m.fit(xb, yb, epochs=2, batch_size=16, shuffle=False, verbose=0,
                     validation_data=(xb[:16], yb[:16]), callbacks=list(callbacks))

    ref_a, ref_b = _model(4, gate=True), _model(5)
    hist_a, hist_b = fit_a(ref_a).history, fit_b(ref_b).history

    a, b = _model(4, gate=True), _model(5)
    gate = a.layers[1]
    gate.armed = True

    def batch_begin(batch, logs):
        if batch == 2 and not gate.release.is_set():
            _wait(gate.entered)        # A is inside its first validation pass, under no_grad

    def batch_end(batch, logs):
        if batch == 2:
            gate.release.set()

    cb = axone.callbacks.LambdaCallback(on_train_batch_begin=batch_begin, on_train_batch_end=batch_end)
    ta, tb = _Run(lambda: fit_a(a)), _Run(lambda: fit_b(b, [cb]))
    ta.start()
    tb.start()
    ha, hb = ta.result().history, tb.result().history
    _assert_same(_weights(a), _weights(ref_a))
    _assert_same(_weights(b), _weights(ref_b))
    assert ha == hist_a and hb == hist_b


def test_two_overlapping_no_grad_blocks_leave_grad_on():
    """T1 enters, T2 enters, T1 leaves, T2 leaves: grad mode ends on everywhere."""
    ev = [threading.Event() for _ in range(3)]
    after = {}

    def t1():
        with axone.no_grad():
            ev[0].set()
            _wait(ev[1])
        after["t1"] = axone.is_grad_enabled()
        ev[2].set()

    def t2():
        _wait(ev[0])
        with axone.no_grad():
            ev[1].set()
            _wait(ev[2])
        after["t2"] = axone.is_grad_enabled()

    r1, r2 = _Run(t1), _Run(t2)
    r1.start()
    r2.start()
    r1.result()
    r2.result()
    assert after == {"t1": True, "t2": True}
    assert axone.is_grad_enabled()
    assert (axone.Tensor(np.ones(2), requires_grad=True) * 3).requires_grad


def test_two_overlapping_predicts_leave_grad_on():
    x, _ = _data()
    m1, m2 = _model(6, gate=True), _model(7, gate=True)
    g1, g2 = m1.layers[1], m2.layers[1]
    g1.armed = g2.armed = True
    r1 = _Run(lambda: m1.predict(x, verbose=0))
    r1.start()
    _wait(g1.entered)                  # predict 1 is inside no_grad
    r2 = _Run(lambda: m2.predict(x, verbose=0))
    r2.start()
    _wait(g2.entered)                  # predict 2 entered no_grad after it
    g1.release.set()
    r1.result()                        # predict 1 finishes first
    g2.release.set()
    r2.result()
    assert axone.is_grad_enabled()
    x_t = axone.Tensor(np.ones(2), requires_grad=True)
    assert (x_t * 2).requires_grad
    # and a fit afterwards still learns
    xd, yd = _data()
    m = _model(8)
    before = _weights(m)
    m.fit(xd, yd, epochs=1, batch_size=16, verbose=0)
    assert any(not np.array_equal(u, v) for u, v in zip(before, _weights(m)))


# ------------------------------------------------------------------ names
class _SlowCounts(dict):
    """The name counter with a pause after each read: whoever reads a count between another
    thread's read and its write gets the same number (the race made certain, not likely)."""

    def get(self, *args):
        value = super().get(*args)
        time.sleep(0.002)
        return value


def test_concurrent_construction_gives_unique_names(monkeypatch):
    import axone.layers.base as base
    monkeypatch.setattr(base, "_NAME_COUNTS", _SlowCounts())
    threads, per = 4, 3
    barrier = threading.Barrier(threads)

    def build():
        barrier.wait(WAIT)
        names = []
        for _ in range(per):
            m = axone.Sequential([axone.layers.Input((3,)), axone.layers.Dense(2)])
            names.append(m.name)
            names.extend(layer.name for layer in m.layers)
            names.append(unique_name("thread_probe"))
        return names

    runs = [_Run(build) for _ in range(threads)]
    for r in runs:
        r.start()
    names = [n for r in runs for n in r.result()]
    assert len(names) == threads * per * 3
    assert len(set(names)) == len(names)


# ------------------------------------------------------------------ conv scratch pool
def _conv_step(x, w, b):
    xt = axone.Tensor(x, requires_grad=True)
    wt = axone.Tensor(w, requires_grad=True)
    bt = axone.Tensor(b, requires_grad=True)
    y = ops.conv2d(xt, wt, bt, strides=1, padding="same")
    loss = (y * y).sum()
    loss.backward()
    return np.array(y.data), xt.grad.copy(), wt.grad.copy(), bt.grad.copy()


def test_concurrent_conv_forward_backward_matches_single_thread():
    r = np.random.default_rng(0)
    # large enough that the padded input, the im2col rows and the input gradient come from
    # the shared scratch pool (> 256 kB each)
    cases = [(r.standard_normal((8, 24, 24, 8)).astype(np.float32),
              r.standard_normal((3, 3, 8, 16)).astype(np.float32),
              r.standard_normal(16).astype(np.float32)) for _ in range(2)]
    ref = [_conv_step(*c) for c in cases]
    barrier = threading.Barrier(2)

    def loop(i):
        barrier.wait(WAIT)
        out = []
        for _ in range(6):
            out.append(_conv_step(*cases[i]))
        return out

    runs = [_Run(lambda i=i: loop(i)) for i in range(2)]
    for t in runs:
        t.start()
    for i, t in enumerate(runs):
        for got in t.result():
            for u, v in zip(got, ref[i]):
                np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------ BLAS thread scope
@pytest.mark.parametrize("first_to_finish", ["a", "b"])
def test_blas_threads_restored_after_two_overlapping_fits(first_to_finish):
    before = backend.get_blas_threads()
    if before is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS: its threads are left alone")
    backend.set_blas_threads(3)
    try:
        x, y = _data()
        ma, mb = _model(9), _model(10)
        a_in, b_in = threading.Event(), threading.Event()
        seen = {}
        runs = {}

        def fit(name, m, mine, theirs):
            def begin(logs):
                mine.set()
                _wait(theirs)              # both fits are inside their BLAS scope

            def end(logs):
                if name != first_to_finish:
                    other = runs[first_to_finish]
                    other.join(WAIT)       # the other fit has left its scope
                    seen["during"] = backend.get_blas_threads()
            cb = axone.callbacks.LambdaCallback(on_train_begin=begin, on_train_end=end)
            return m.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[cb])

        runs["a"] = _Run(lambda: fit("a", ma, a_in, b_in))
        runs["b"] = _Run(lambda: fit("b", mb, b_in, a_in))
        for r in runs.values():
            r.start()
        for r in runs.values():
            r.result()
        assert seen["during"] == 1          # the fit still running keeps its setting
        assert backend.get_blas_threads() == 3
    finally:
        backend.set_blas_threads(before)


def test_blas_threads_nested_scopes_restore_in_order():
    before = backend.get_blas_threads()
    if before is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS: its threads are left alone")
    backend.set_blas_threads(3)
    try:
        with backend.blas_threads(1):
            with backend.blas_threads(2):
                assert backend.get_blas_threads() == 2
            assert backend.get_blas_threads() == 1
        assert backend.get_blas_threads() == 3
    finally:
        backend.set_blas_threads(before)


# ------------------------------------------------------------------ the shared generator
def test_concurrent_draws_from_the_backend_generator_are_whole():
    """One generator for all threads (as Keras): concurrent draws neither crash nor tear — the
    draws made are exactly the seeded sequence's, shared out between the threads."""
    n_threads, per = 4, 200
    rng = backend.set_seed(123)
    expected = [rng.standard_normal(64) for _ in range(n_threads * per)]
    rng = backend.set_seed(123)
    barrier = threading.Barrier(n_threads)

    def draw():
        barrier.wait(WAIT)
        return [backend.rng().standard_normal(64) for _ in range(per)]

    runs = [_Run(draw) for _ in range(n_threads)]
    for r in runs:
        r.start()
    got = [d for r in runs for d in r.result()]
    key = lambda a: a.tobytes()
    assert sorted(map(key, got)) == sorted(map(key, expected))


# ------------------------------------------------------------------ the product pool
def test_product_pool_from_several_threads_at_once_gives_each_its_own_products(monkeypatch):
    """Four Python threads split products on the compiled pool at the same time (one caller
    uses it, the others compute their blocks themselves), with pooling and copies mixed in:
    every result is the one a single thread computes, bit for bit, and nothing hangs."""
    from axone.ops import _parallel as P
    if P._gemm_many() is None:
        pytest.skip("the compiled product pool is not built")
    monkeypatch.setattr(P, "_threads", lambda: 2)
    r = np.random.default_rng(5)
    cases = [(r.standard_normal((48, 64)).astype(np.float32),
              r.standard_normal((64, 80)).astype(np.float32)) for _ in range(4)]
    imgs = [r.standard_normal((8, 30, 30, 4)).astype(np.float32) for _ in range(4)]
    with backend.blas_threads(1):
        monkeypatch.setattr(P, "_MIN_WORK", 1)
        ref = [P.matmul(a, b).copy() for a, b in cases]
        ref_pool = [ops.max_pool(axone.Tensor(x), 3, 2).data.copy() for x in imgs]
        barrier = threading.Barrier(4)

        def loop(i):
            barrier.wait(WAIT)
            a, b = cases[i]
            out = []
            for _ in range(40):
                out.append((P.matmul(a, b), ops.max_pool(axone.Tensor(imgs[i]), 3, 2).data,
                            P.matmuls([(a, b, None), (b.T, a.T, None)])[1]))
            return out

        runs = [_Run(lambda i=i: loop(i)) for i in range(4)]
        for t in runs:
            t.start()
        for i, t in enumerate(runs):
            for prod, pooled, prod_t in t.result():
                np.testing.assert_array_equal(prod, ref[i])
                np.testing.assert_array_equal(pooled, ref_pool[i])
                np.testing.assert_allclose(prod_t, ref[i].T, rtol=2e-5, atol=1e-4)
