"""A training step's gradients: the flat gradient buffer is not zero-filled before backward;
each weight's first gradient is written over it (Dense computes dL/dW and dL/db straight into
it), later ones add to it, and weights nothing reached are zeroed afterwards.  These tests hold
the step's gradients to a plain autograd computation of the same loss."""
import numpy as np
import pytest

import axone
from axone import Tensor, layers, ops
from axone.autograd import tensor as T
from axone.losses import _SumOverBatchSize


def _reference_grads(model, x, y, loss_fn):
    """dL/dw for every trainable weight by plain autograd (fresh leaves, no flat buffer)."""
    ws = model.trainable_weights
    saved = [w.grad for w in ws]
    for w in ws:
        w.grad = None
    try:
        out = model(Tensor(x), training=True)
        loss = loss_fn(Tensor(y), out)
        loss.backward()
        return [np.array(w.grad) if w.grad is not None else np.zeros_like(w.data) for w in ws]
    finally:
        for w, g in zip(ws, saved):
            w.grad = g


def _step_grads(model, x, y):
    vars_, params, grads, _ = model._param_buffer()
    before = params.copy()
    model.optimizer.learning_rate = 0.0          # keep the weights as they are
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(params, before)
    return [np.array(w.grad) for w in vars_]


def test_shared_layer_gets_the_sum_of_both_uses():
    rng = np.random.default_rng(0)
    inp = axone.Input((5,))
    shared = layers.Dense(5, activation="relu")
    h = shared(shared(inp))                        # the same kernel and bias used twice
    out = layers.Dense(2)(layers.Dense(4)(h))
    model = axone.Model(inp, out)
    model.compile(optimizer=axone.optimizers.SGD(0.0), loss="mse")
    x, y = rng.normal(size=(8, 5)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    model.train_on_batch(x, y)                     # leaves stale values in the buffer
    got = _step_grads(model, x, y)
    ref = _reference_grads(model, x, y, axone.losses.MeanSquaredError())
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
    assert not T._FRESH


def test_weights_the_loss_does_not_reach_get_zero_not_stale_gradients():
    rng = np.random.default_rng(1)
    inp = axone.Input((3,))
    a = layers.Dense(2, name="used")(inp)
    b = layers.Dense(2, name="unused")(inp)
    model = axone.Model(inp, [a, b])
    x = rng.normal(size=(6, 3)).astype("float32")
    ya, yb = rng.normal(size=(6, 2)).astype("float32"), rng.normal(size=(6, 2)).astype("float32")
    model.compile(optimizer=axone.optimizers.SGD(0.0), loss=["mse", "mse"])
    model.train_on_batch(x, [ya, yb])
    assert all(np.abs(w.grad).sum() > 0 for w in model.trainable_weights)
    model.compile(optimizer=axone.optimizers.SGD(0.0), loss=["mse", None])
    model.train_on_batch(x, [ya, yb])
    unused = model.get_layer("unused")
    assert np.all(unused.kernel.grad == 0) and np.all(unused.bias.grad == 0)
    assert np.abs(model.get_layer("used").kernel.grad).sum() > 0
    assert not T._FRESH


def test_an_exception_inside_the_step_leaves_zero_gradients_and_no_marks():
    model = axone.Sequential([layers.Input((3,)), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 3), "float32")
    model.train_on_batch(x, np.ones((4, 2), "float32"))

    def boom(y_true, y_pred):
        raise RuntimeError("boom")

    model.compile(optimizer="sgd", loss=boom)
    with pytest.raises(RuntimeError, match="boom"):
        model.train_on_batch(x, np.ones((4, 2), "float32"))
    assert not T._FRESH
    assert all(np.all(w.grad == 0) for w in model.trainable_weights)


@pytest.mark.parametrize("relu", [False, True])
def test_dense_writes_into_a_fresh_buffer_exactly_what_it_would_return(relu):
    rng = np.random.default_rng(2)
    x = Tensor(rng.normal(size=(7, 4)).astype("float32"))
    w = Tensor(rng.normal(size=(4, 3)).astype("float32"), requires_grad=True)
    b = Tensor(rng.normal(size=3).astype("float32"), requires_grad=True)
    g = rng.normal(size=(7, 3)).astype("float32")
    ops.dense(x, w, b, relu=relu).backward(g)
    ref_w, ref_b = w.grad.copy(), b.grad.copy()
    w.grad = np.full((4, 3), 123.0, "float32")     # stale values that must not leak in
    b.grad = np.full(3, -7.0, "float32")
    T.mark_fresh_grads([w, b])
    ops.dense(x, w, b, relu=relu).backward(g)
    T.finish_fresh_grads([w, b])
    np.testing.assert_array_equal(w.grad, ref_w)
    np.testing.assert_array_equal(b.grad, ref_b)
    T.mark_fresh_grads([w, b])                     # twice in one graph: written, then added
    y = ops.dense(x, w, b, relu=relu) + ops.dense(x, w, b, relu=relu)
    y.backward(g)
    T.finish_fresh_grads([w, b])
    np.testing.assert_allclose(w.grad, 2 * ref_w, rtol=1e-6)
    np.testing.assert_allclose(b.grad, 2 * ref_b, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (30,), (7, 5), (1000,)])
def test_sum_over_batch_size_node_equals_sum_then_divide_bitwise(dtype, shape):
    v = np.random.default_rng(3).normal(size=shape).astype(dtype)
    a, b = Tensor(v, requires_grad=True), Tensor(v, requires_grad=True)
    new = _SumOverBatchSize.apply(a, n=v.size)
    old = ops.sum(b) / v.size
    assert new.data.dtype == old.data.dtype == dtype
    assert np.array_equal(new.data, old.data)
    g = np.asarray(0.37, dtype=dtype)
    new.backward(g)
    old.backward(g)
    assert np.array_equal(a.grad, b.grad)
