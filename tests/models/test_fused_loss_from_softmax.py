"""The cross-entropies of a softmax output read the logits under it (one fused node), in the
built-in step and in a custom ``train_step`` alike: the value and the gradients equal those of
the cross-entropy computed on the probabilities (float64), and the loss is not fused where the
probabilities are not the direct output of a softmax over the loss's axis."""
import numpy as np
import pytest

import axone
from axone import Tensor, layers, losses, ops
from axone.autograd.gradcheck import check_gradients
from axone.ops import nn as _nn


def _graph_types(t):
    """The Function classes in the graph that made ``t``."""
    seen, out, stack = set(), set(), [t._ctx]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        out.add(type(fn).__name__)
        stack.extend(i._ctx for i in (fn.inputs or ()))
    return out


def _manual_softmax(z, axis=-1):
    """softmax(z) from elementwise ops: no Softmax node, so the loss cannot fuse."""
    e = ops.exp(z - ops.max(z, axis=axis, keepdims=True))
    return e / ops.sum(e, axis=axis, keepdims=True)


def _data(shape=(6, 5), seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=shape)
    y = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    return z, y


def _loss_and_grad(loss_obj, y, z, probs, sample_weight=None):
    zt = Tensor(z.copy(), requires_grad=True)
    l = loss_obj(Tensor(y), probs(zt), sample_weight=sample_weight)
    types = _graph_types(l)          # read before backward frees the graph
    l.backward()
    return l, np.array(zt.grad), types


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_categorical_fused_equals_unfused_float64(label_smoothing, weighted):
    z, y = _data()
    sw = np.linspace(0.5, 2.0, len(z)) if weighted else None
    loss = losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    fused, g_fused, t_fused = _loss_and_grad(loss, y, z, ops.softmax, sw)
    plain, g_plain, t_plain = _loss_and_grad(loss, y, z, _manual_softmax, sw)
    assert "SoftmaxCrossEntropy" in t_fused
    assert "SoftmaxCrossEntropy" not in t_plain
    np.testing.assert_allclose(float(fused.data), float(plain.data), rtol=1e-12)
    np.testing.assert_allclose(g_fused, g_plain, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_categorical_fused_equals_unfused_float64(weighted):
    z, y = _data(seed=1)
    labels = y.argmax(-1)
    sw = np.linspace(0.5, 2.0, len(z)) if weighted else None
    loss = losses.SparseCategoricalCrossentropy()
    fused, g_fused, t_fused = _loss_and_grad(loss, labels, z, ops.softmax, sw)
    plain, g_plain, t_plain = _loss_and_grad(loss, labels, z, _manual_softmax, sw)
    assert "SparseSoftmaxCrossEntropy" in t_fused
    assert "SparseSoftmaxCrossEntropy" not in t_plain
    np.testing.assert_allclose(float(fused.data), float(plain.data), rtol=1e-12)
    np.testing.assert_allclose(g_fused, g_plain, rtol=1e-10, atol=1e-13)


def test_fused_path_matches_finite_differences():
    z, y = _data(seed=2)
    r = check_gradients(lambda t: losses.categorical_crossentropy(Tensor(y), ops.softmax(t)), z)
    assert r.max_error < 1e-7, r
    labels = y.argmax(-1)
    r = check_gradients(lambda t: losses.sparse_categorical_crossentropy(labels, ops.softmax(t)), z)
    assert r.max_error < 1e-7, r


def test_from_logits_true_reads_the_probabilities_as_logits():
    z, y = _data(seed=3)
    zt = Tensor(z.copy(), requires_grad=True)
    p = ops.softmax(zt)
    got = losses.categorical_crossentropy(Tensor(y), p, from_logits=True)
    want = -np.sum(y * _np_log_softmax(np.asarray(p.data)), axis=-1)
    np.testing.assert_allclose(got.data, want, rtol=1e-12)
    # the softmax node stays in the graph: the gradient flows through it
    assert "Softmax" in _graph_types(got)
    got.sum().backward()
    ref = Tensor(z.copy(), requires_grad=True)
    _nn.categorical_crossentropy(Tensor(y), _manual_softmax(ref), from_logits=True).sum().backward()
    np.testing.assert_allclose(zt.grad, ref.grad, rtol=1e-10, atol=1e-13)


def _np_log_softmax(a):
    s = a - a.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True))


def test_softmax_over_another_axis_is_not_fused():
    z, y = _data(shape=(3, 4, 5), seed=4)
    fused_probs = lambda t: ops.softmax(t, axis=1)          # noqa: E731
    plain_probs = lambda t: _manual_softmax(t, axis=1)      # noqa: E731
    loss = losses.CategoricalCrossentropy()
    a, ga, t_a = _loss_and_grad(loss, y, z, fused_probs)
    b, gb, t_b = _loss_and_grad(loss, y, z, plain_probs)
    assert "SoftmaxCrossEntropy" not in t_a
    np.testing.assert_allclose(float(a.data), float(b.data), rtol=1e-12)
    np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-13)
    # the softmax's axis and the loss's axis 1 agree: still computed on the probabilities
    loss1 = losses.CategoricalCrossentropy(axis=1)
    c, gc, t_c = _loss_and_grad(loss1, y, z, fused_probs)
    d, gd, t_d = _loss_and_grad(loss1, y, z, plain_probs)
    assert "SoftmaxCrossEntropy" not in t_c
    np.testing.assert_allclose(float(c.data), float(d.data), rtol=1e-12)
    np.testing.assert_allclose(gc, gd, rtol=1e-10, atol=1e-13)


def _model(cls, seed=0):
    axone.utils.set_random_seed(seed)
    m = cls([layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m


class _Stack(axone.Model):
    def __init__(self, stack):
        super().__init__()
        self.stack = stack

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return x


class _TapeStep(_Stack):
    def train_step(self, data):
        x, y = data
        with axone.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        self.seen.update(_graph_types(loss))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self._loss_tracker.update_state(loss, sample_weight=x.shape[0])
        return self.compute_metrics(x, y, y_pred)


class _BackwardStep(_Stack):
    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        self.seen.update(_graph_types(loss))
        loss.backward()
        tw = self.trainable_weights
        self.optimizer.apply_gradients(zip([v.grad for v in tw], tw))
        self._loss_tracker.update_state(loss, sample_weight=x.shape[0])
        return self.compute_metrics(x, y, y_pred)


@pytest.mark.parametrize("cls", [_TapeStep, _BackwardStep])
def test_custom_step_fuses_and_trains_as_the_built_in_step(cls):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 40)]
    ref = _model(_Stack)
    h_ref = ref.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    m = _model(cls)
    m.seen = set()
    h = m.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    assert "SoftmaxCrossEntropy" in m.seen
    np.testing.assert_allclose(h, h_ref, rtol=1e-6)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
