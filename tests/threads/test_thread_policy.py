"""The thread policy: a step is judged by its multiply-adds from the layers' shapes, eager calls
(model(x), predict, predict_on_batch) take the same one-thread BLAS scope as fit, nested scopes
cost nothing, and one-batch predict returns what the batch loop returns."""
import threading

import numpy as np
import pytest

import axone
from axone import backend, layers
from axone.models import _work


def _seq(shape, *body):
    m = axone.Sequential([layers.Input(shape)] + list(body))
    return m


@pytest.fixture
def blas3():
    """OpenBLAS on 3 threads for the test (restored after), so one thread is visible."""
    before = backend.get_blas_threads()
    if before is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS: its threads are left alone")
    backend.set_blas_threads(3)
    yield
    backend.set_blas_threads(before)


class Probe(layers.Layer):
    """Identity layer recording the BLAS threads and the open scopes while it runs."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen = []

    def call(self, x):
        self.seen.append((backend.get_blas_threads(), len(backend._blas_scopes)))
        return x


# ------------------------------------------------------------------ work estimates
def test_dense_and_conv_work_from_shapes():
    m = _seq((20,), layers.Dense(30), layers.Dense(7))
    assert _work.forward_work(m) == 20 * 30 + 30 * 7
    # Dense on a sequence: every position is a row
    m = _seq((5, 20), layers.Dense(30))
    assert _work.forward_work(m) == 5 * 20 * 30
    # Conv2D: output positions x k x k x C_in x C_out, same and valid padding, strides
    m = _seq((12, 10, 3), layers.Conv2D(8, 3, padding="same"),
             layers.Conv2D(4, 3, strides=2), layers.MaxPooling2D(2), layers.Flatten(),
             layers.Dense(5))
    h2, w2 = (12 - 3) // 2 + 1, (10 - 3) // 2 + 1
    want = 12 * 10 * 9 * 3 * 8 + h2 * w2 * 9 * 8 * 4 + (h2 // 2) * (w2 // 2) * 4 * 5
    assert _work.forward_work(m) == want
    # the large CNN of the scaling benchmark: its work is its positions', not its parameters'
    m = _seq((96, 96, 3), layers.Conv2D(128, 3, padding="same"), layers.MaxPooling2D(2),
             layers.Conv2D(128, 3, padding="same"))
    assert _work.forward_work(m) == 96 * 96 * 27 * 128 + 48 * 48 * 9 * 128 * 128
    assert _work.forward_work(m) > 1000 * m.count_params()


def test_depthwise_separable_transpose_conv1d_work():
    m = _seq((16, 4), layers.Conv1D(6, 5))
    assert _work.forward_work(m) == 12 * 5 * 4 * 6
    m = _seq((8, 8, 3), layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2))
    assert _work.forward_work(m) == 8 * 8 * 9 * 3 * 2
    m = _seq((8, 8, 3), layers.SeparableConv2D(5, 3, padding="same"))
    assert _work.forward_work(m) == 8 * 8 * (9 * 3 + 3 * 5)
    m = _seq((6, 6, 4), layers.Conv2DTranspose(2, 3, strides=2))
    assert _work.forward_work(m) == 6 * 6 * 9 * 4 * 2      # input positions x kernel


def test_recurrent_and_wrapper_work():
    T, d, u = 7, 5, 6
    for cls, g in ((layers.LSTM, 4), (layers.GRU, 3), (layers.SimpleRNN, 1)):
        m = _seq((T, d), cls(u))
        assert _work.forward_work(m) == T * (d + u) * g * u, cls.__name__
    m = _seq((T, d), layers.Bidirectional(layers.LSTM(u)))
    assert _work.forward_work(m) == 2 * T * (d + u) * 4 * u
    m = _seq((T, d), layers.TimeDistributed(layers.Dense(3)))
    assert _work.forward_work(m) == T * d * 3


def test_attention_nested_model_and_hook():
    inp = axone.Input((10, 16))
    out = layers.MultiHeadAttention(num_heads=2, key_dim=4)(inp, inp)
    m = axone.Model(inp, out)
    proj = 16 * 2 * 4                      # each of query, key, value: 16 -> 2 heads x 4
    want = 10 * (proj + 2 * 4 * 16) + 10 * 2 * proj + 10 * 10 * 2 * (4 + 4)
    assert _work.forward_work(m) == want
    inner = _seq((20,), layers.Dense(30))
    outer = _seq((20,), inner, layers.Dense(2))
    assert _work.forward_work(outer) == 20 * 30 + 30 * 2

    class Costly(layers.Layer):
        def _step_flops(self, input_shape):
            return 1000 * input_shape[-1]

        def call(self, x):
            return x
    m = _seq((3,), Costly(), layers.Dense(2))
    assert _work.forward_work(m) == 3000 + 3 * 2


def test_step_work_and_cache():
    m = _seq((20,), layers.Dense(30))
    assert _work.step_work(m, 8) == 8 * 600
    assert _work.step_work(m, 8, training=True) == 3 * 8 * 600
    m.add(layers.Dense(4))                 # a new layer: a new estimate
    assert _work.forward_work(m) == 600 + 120
    unbuilt = axone.Sequential([layers.Dense(3)])
    assert _work.forward_work(unbuilt) is None and _work.step_work(unbuilt, 4) is None


# ------------------------------------------------------------------ the decision
def test_decision_follows_work_not_parameters(monkeypatch):
    monkeypatch.setattr(backend, "SMALL_STEP_WORK", 10 ** 9)
    cnn = _seq((96, 96, 3), layers.Conv2D(32, 3, padding="same"))
    mlp = _seq((1000,), layers.Dense(1000))
    assert cnn.count_params() < mlp.count_params()
    assert backend.blas_threads_for_work(_work.step_work(cnn, 64, training=True)) is None
    assert backend.blas_threads_for_work(_work.step_work(mlp, 64, training=True)) == 1
    assert backend.blas_threads_for_work(None) is None
    assert backend.blas_threads_for(10, 10) == 1               # no estimate: params x rows
    assert backend.blas_threads_for(10, 10, work=10 ** 10) is None
    monkeypatch.setattr(backend, "SMALL_STEP_WORK", 0)          # 0: leave BLAS alone
    assert backend.blas_threads_for_work(1) is None


def test_step_scope_nested_and_on_other_threads(blas3, monkeypatch):
    assert backend.step_scope(1 << 60) is backend._NO_SCOPE          # large: leave BLAS
    assert backend.step_scope(10, call_work=10) is backend._NO_SCOPE  # too small to pay
    with backend.step_scope(10) as outer:
        assert isinstance(outer, backend.blas_threads) and backend.get_blas_threads() == 1
        assert backend.step_scope(10) is backend._NO_SCOPE             # same thread: nothing
        got = []
        t = threading.Thread(target=lambda: got.append(backend.step_scope(10)))
        t.start()
        t.join()
        assert isinstance(got[0], backend.blas_threads)       # another thread opens its own
    assert backend.get_blas_threads() == 3 and not backend._blas_scopes


# ------------------------------------------------------------------ eager calls
def _probe_model():
    probe = Probe()
    m = _seq((64,), layers.Dense(64, activation="relu"), probe, layers.Dense(3))
    m.compile(optimizer="sgd", loss="mse")
    return m, probe


def test_model_call_takes_the_scope_when_it_pays(blas3, monkeypatch):
    m, probe = _probe_model()
    x = np.ones((32, 64), np.float32)
    monkeypatch.setattr(backend, "EAGER_MIN_WORK", 0)
    y1 = np.asarray(m(x))
    assert probe.seen[-1] == (1, 1) and backend.get_blas_threads() == 3
    monkeypatch.setattr(backend, "EAGER_MIN_WORK", 1 << 40)    # too small a call: left alone
    m(x)
    assert probe.seen[-1] == (3, 0)
    monkeypatch.setattr(backend, "EAGER_MIN_WORK", 0)
    monkeypatch.setattr(backend, "SMALL_STEP_WORK", 1)           # too large a step: left alone
    m(x)
    assert probe.seen[-1] == (3, 0)
    monkeypatch.setattr(backend, "SMALL_STEP_WORK", 1 << 35)
    # predict and predict_on_batch run the same products on one thread: the same numbers
    np.testing.assert_array_equal(m.predict(x, verbose=0), y1)
    assert probe.seen[-1] == (1, 1)
    np.testing.assert_array_equal(m.predict_on_batch(x), y1)
    assert probe.seen[-1] == (1, 1) and backend.get_blas_threads() == 3


def test_model_call_restores_after_an_error(blas3, monkeypatch):
    monkeypatch.setattr(backend, "EAGER_MIN_WORK", 0)

    class Boom(layers.Layer):
        armed = False

        def call(self, x):
            if self.armed:            # not while the model is traced
                assert backend.get_blas_threads() == 1
                raise RuntimeError("boom")
            return x
    boom = Boom()
    m = _seq((4,), layers.Dense(3), boom)
    boom.armed = True
    with pytest.raises(RuntimeError, match="boom"):
        m(np.ones((2, 4), np.float32))
    assert backend.get_blas_threads() == 3 and not backend._blas_scopes


def test_model_call_inside_fit_opens_no_second_scope(blas3, monkeypatch):
    monkeypatch.setattr(backend, "EAGER_MIN_WORK", 0)
    m, probe = _probe_model()
    outer = axone.Sequential([layers.Input((64,)), m])
    outer.compile(optimizer="sgd", loss="mse")
    x = np.ones((16, 64), np.float32)
    y = np.zeros((16, 3), np.float32)
    probe.seen.clear()                             # (the symbolic trace of the outer model)
    outer.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert probe.seen and all(s == (1, 1) for s in probe.seen)   # fit's scope only
    probe.seen.clear()
    outer(x)                                       # the outer model's scope, none for the inner
    assert probe.seen == [(1, 1)]
    assert backend.get_blas_threads() == 3


# ------------------------------------------------------------------ one-batch predict
def test_one_batch_predict_matches_the_batch_loop():
    axone.utils.set_random_seed(1)
    inp = axone.Input((6,))
    h = layers.Dense(5, activation="tanh")(inp)
    m = axone.Model(inp, {"a": layers.Dense(2)(h), "b": layers.Dense(1)(h)})
    x = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
    fast = m.predict(x, verbose=0)
    loop = m.predict(x, verbose=0, steps=1)
    seen = []
    cb = axone.callbacks.LambdaCallback(on_predict_batch_end=lambda b, logs: seen.append(b))
    hooked = m.predict(x, verbose=0, callbacks=[cb])
    assert seen == [0] and sorted(fast) == ["a", "b"]
    for k in fast:
        np.testing.assert_array_equal(fast[k], loop[k])
        np.testing.assert_array_equal(fast[k], hooked[k])
        assert fast[k].dtype == np.float32 and fast[k].shape == loop[k].shape


def test_one_batch_predict_returns_new_arrays():
    m = _seq((3,), layers.Reshape((3,)))        # the output is a view of the input
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = m.predict(x, verbose=0)
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)
    out2 = m.predict(x, verbose=0)
    assert not np.shares_memory(out, out2)


def test_one_batch_predict_checks_its_input():
    m = _seq((3,), layers.Dense(2))
    with pytest.raises(ValueError, match="expects input shape"):
        m.predict(np.ones((2, 4), np.float32), verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        m.predict(np.array([[1.0, np.nan, 0.0]], np.float32), verbose=0)


# ------------------------------------------------------------------ products outside scopes
def test_mid_size_products_outside_scopes_run_on_one_blas_thread(blas3, monkeypatch):
    from axone.autograd.tape import GradientTape
    from axone.ops import _parallel as P
    opened = []

    class Recording(backend.blas_threads):
        def __enter__(self):
            opened.append((self.n, len(backend._blas_scopes)))
            return super().__enter__()
    monkeypatch.setattr(backend, "blas_threads", Recording)
    monkeypatch.setattr(backend, "EAGER_MIN_WORK", 1 << 40)      # model(x) takes no scope
    m = _seq((64,), layers.Dense(128), layers.Dense(4))
    x = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    assert 64 * 64 * 128 >= P._PIN_MIN_WORK
    with GradientTape() as tape:
        loss = axone.ops.sum(m(x))
    fwd = len(opened)
    grads = tape.gradient(loss, m.trainable_variables)
    # the first layer's products (64x64x128) are pinned, the second's (64x128x4) too small;
    # backward: the first kernel's gradient (its input needs none)
    assert fwd == 1 and len(opened) == 2 and all(o == (1, 0) for o in opened)
    assert backend.get_blas_threads() == 3
    # the same numbers as under one scope (products on one BLAS thread either way)
    with backend.blas_threads(1):
        with GradientTape() as tape:
            loss1 = axone.ops.sum(m(x))
        grads1 = tape.gradient(loss1, m.trainable_variables)
    for g, g1 in zip(grads, grads1):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(g1))
    # small products, and products inside an open scope, open nothing
    opened.clear()
    m(x[:1])
    assert opened == []
    monkeypatch.setattr(P, "_PIN", False)
    m(x)
    assert opened == []


def test_an_estimate_that_fails_never_breaks_a_call(monkeypatch):
    class Odd(layers.Layer):
        def _step_flops(self, input_shape):
            raise RuntimeError("no estimate")

        def call(self, x):
            return x
    m = _seq((3,), Odd(), layers.Dense(2))
    m.compile(optimizer="sgd", loss="mse")
    assert _work.forward_work(m) is None
    x = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(m.predict(x, verbose=0), np.asarray(m(x)))
    m.fit(x, np.zeros((4, 2), np.float32), epochs=1, verbose=0)
