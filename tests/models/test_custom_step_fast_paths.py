"""The shortcuts a custom ``train_step`` takes inside ``fit`` give what the general paths give:
``compute_loss`` on the batch's own targets, the loss tracker fed a scalar loss Tensor, and
``zero_grad`` marking the zeroed gradient buffer so that ``loss.backward()`` writes into it."""
import numpy as np
import pytest

import axone
from axone import Tensor, layers, ops
from axone.autograd import tensor as T


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, n)]
    return x, y


class _Stack(axone.Model):
    def __init__(self, extra=False, reg=None):
        super().__init__()
        self.hidden = layers.Dense(6, activation="relu", kernel_regularizer=reg)
        self.out = layers.Dense(3, activation="softmax")
        self.extra = layers.Dense(3, name="unreached") if extra else None

    def call(self, x):
        h = self.hidden(x)
        if self.extra is not None:
            self.extra(h)                  # built and called, but not part of the loss
            self.add_loss(0.01 * ops.sum(ops.square(h)))
        return self.out(h)


def _compile(m):
    m.compile(optimizer=axone.optimizers.SGD(0.05), loss="categorical_crossentropy")
    return m


@pytest.mark.parametrize("extra", [False, True])
def test_compute_loss_on_the_step_targets_equals_the_general_path(extra):
    """The same loss (bits) whether y is the step's own object or a copy of it; weight
    penalties and add_loss terms included."""
    x, y = _data()
    got = []

    class M(_Stack):
        def train_step(self, data):
            xb, yb = data
            y_pred = self(xb, training=True)
            fast = self.compute_loss(y=yb, y_pred=y_pred)
            general = self.compute_loss(y=Tensor(np.array(yb.data)), y_pred=y_pred)
            got.append((float(fast.data), float(general.data)))
            fast.backward()
            tw = self.trainable_weights
            self.optimizer.apply_gradients(zip([v.grad for v in tw], tw))
            return {"loss": fast}

    axone.utils.set_random_seed(0)
    m = _compile(M(extra=extra, reg=axone.regularizers.L2(0.1)))
    m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert len(got) == 6
    for a, b in got:
        assert a == b


class _Backward(_Stack):
    def train_step(self, data):
        xb, yb = data
        self.zero_grad()
        y_pred = self(xb, training=True)
        loss = self.compute_loss(y=yb, y_pred=y_pred)
        loss.backward()
        tw = self.trainable_weights
        self.grads.append([np.array(v.grad) for v in tw])
        self.optimizer.apply_gradients(zip([v.grad for v in tw], tw))
        self._loss_tracker.update_state(loss, sample_weight=xb.shape[0])
        return self.compute_metrics(xb, yb, y_pred)


class _Tape(_Stack):
    def train_step(self, data):
        xb, yb = data
        with axone.GradientTape() as tape:
            y_pred = self(xb, training=True)
            loss = self.compute_loss(y=yb, y_pred=y_pred)
        tw = self.trainable_variables
        grads = tape.gradient(loss, tw)
        self.grads.append([np.zeros_like(v.data) if g is None else np.array(g.data)
                           for v, g in zip(tw, grads)])
        self.optimizer.apply_gradients(zip([g if g is not None else Tensor(np.zeros_like(v.data))
                                            for v, g in zip(tw, grads)], tw))
        self._loss_tracker.update_state(loss, sample_weight=xb.shape[0])
        return self.compute_metrics(xb, yb, y_pred)


def test_zero_grad_then_backward_gives_the_tape_gradients_and_zero_for_unreached_weights():
    x, y = _data(seed=1)
    runs = {}
    for cls in (_Backward, _Tape):
        axone.utils.set_random_seed(3)
        m = _compile(cls(extra=True))
        m.grads = []
        h = m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
        runs[cls] = (m, h)
        assert not T._FRESH
    (mb, hb), (mt, ht) = runs[_Backward], runs[_Tape]
    np.testing.assert_allclose(hb, ht, rtol=1e-6)
    names = [v.path for v in mb.trainable_weights]
    unreached = [i for i, n in enumerate(names) if "unreached" in n]
    assert unreached
    for gb, gt in zip(mb.grads, mt.grads):
        for i, (a, b) in enumerate(zip(gb, gt)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
            if i in unreached:
                assert np.all(a == 0)
    # the unreached weights' buffers stay zero after fit, with no marks left
    for i in unreached:
        assert np.all(mb.trainable_weights[i].grad == 0)


def _autograd_grads(model, x, y):
    """dL/dw of the compiled loss (plus add_loss terms) by plain autograd on a copy of model."""
    clone = type(model)(extra=model.extra is not None)
    clone(Tensor(x[:1]))
    clone.set_weights(model.get_weights())
    p = clone(Tensor(x), training=True)
    loss = axone.losses.CategoricalCrossentropy()(Tensor(y), p)
    for extra in clone.losses:
        loss = loss + extra
    loss.backward()
    return [np.zeros_like(v.data) if v.grad is None else np.array(v.grad)
            for v in clone.trainable_weights]


def test_stale_gradients_do_not_leak_into_a_backward_after_zero_grad():
    x, y = _data(n=8, seed=2)
    axone.utils.set_random_seed(1)
    m = _compile(_Backward(extra=True))
    m.grads = []
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for v in m.trainable_weights:          # stale values in the whole buffer
        v.grad[...] = 123.0
    ref = _autograd_grads(m, x, y)
    m.grads = []
    m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert not T._FRESH
    for a, r, v in zip(m.grads[0], ref, m.trainable_weights):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-7)
        if "unreached" in v.path:
            assert np.all(a == 0)


def test_two_zero_grads_in_one_step_and_accumulation_across_steps():
    x, y = _data(n=16, seed=4)

    class TwoLosses(_Stack):
        def train_step(self, data):
            xb, yb = data
            self.zero_grad()
            p = self(xb, training=True)
            self.compute_loss(y=yb, y_pred=p).backward()
            first = [np.array(v.grad) for v in self.trainable_weights]
            self.zero_grad()
            p = self(xb, training=True)
            l1 = self.compute_loss(y=yb, y_pred=p)
            l1.backward()
            second = [np.array(v.grad) for v in self.trainable_weights]
            p = self(xb, training=True)
            self.compute_loss(y=yb, y_pred=p).backward()       # adds to the first
            both = [np.array(v.grad) for v in self.trainable_weights]
            self.record.append((first, second, both))
            return {"loss": l1}

    axone.utils.set_random_seed(5)
    m = _compile(TwoLosses())
    m.record = []
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert len(m.record) == 2 and not T._FRESH
    for first, second, both in m.record:
        for a, b, c in zip(first, second, both):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(c, 2 * a, rtol=1e-6, atol=1e-7)

    class EveryOther(_Stack):
        """zero_grad every other step: the next step's gradients add to the buffer."""

        def train_step(self, data):
            xb, yb = data
            if self.k % 2 == 0:
                self.zero_grad()
            p = self(xb, training=True)
            self.compute_loss(y=yb, y_pred=p).backward()
            self.record.append([np.array(v.grad) for v in self.trainable_weights])
            self.k += 1
            return {"loss": 0.0}

    axone.utils.set_random_seed(5)
    e = _compile(EveryOther())
    e.record, e.k = [], 0
    e.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    # no optimizer step: the second batch's gradient is added to the first's
    single = []
    for i in range(2):
        for v in e.trainable_weights:
            v.grad = None
        p = e(Tensor(x[8 * i:8 * i + 8]), training=True)
        axone.losses.CategoricalCrossentropy()(Tensor(y[8 * i:8 * i + 8]), p).backward()
        single.append([np.array(v.grad) for v in e.trainable_weights])
    for a, s in zip(e.record[0], single[0]):
        np.testing.assert_allclose(a, s, rtol=1e-5, atol=1e-7)
    for a, s0, s1 in zip(e.record[1], single[0], single[1]):
        np.testing.assert_allclose(a, s0 + s1, rtol=1e-5, atol=1e-7)


def test_an_exception_in_the_step_leaves_no_marks_and_zero_gradients():
    x, y = _data(n=8)

    class Boom(_Stack):
        def train_step(self, data):
            self.zero_grad()
            raise RuntimeError("boom")

    m = _compile(Boom())
    m(Tensor(x))
    with pytest.raises(RuntimeError, match="boom"):
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not T._FRESH
    assert all(np.all(v.grad == 0) for v in m.trainable_weights)


def test_zero_grad_outside_fit_still_zeroes_and_marks_nothing():
    x, y = _data(n=8)
    m = _compile(_Stack())
    m.train_on_batch(x, y)
    m.zero_grad()
    assert not T._FRESH
    assert all(np.all(v.grad == 0) for v in m.trainable_weights)


def test_compute_loss_and_compute_metrics_take_the_short_path_inside_fit(monkeypatch):
    """With the batch's own targets, one output and no sample weights, neither flattens the
    predictions again (the general path does): the count does not grow with the steps."""
    from axone.models import training

    x, y = _data(n=16, seed=6)
    flat = training._flat_outputs
    counts = []
    for epochs in (1, 3):
        calls = []

        def counting(out):
            calls.append(1)
            return flat(out)

        axone.utils.set_random_seed(2)
        m = _compile(_Backward())
        m.grads = []
        monkeypatch.setattr(training, "_flat_outputs", counting)
        h = m.fit(x, y, epochs=epochs, batch_size=8, verbose=0).history["loss"]
        monkeypatch.setattr(training, "_flat_outputs", flat)
        assert len(m.grads) == 2 * epochs and np.all(np.isfinite(h))
        counts.append(len(calls))
    assert counts[0] == counts[1] <= 1
