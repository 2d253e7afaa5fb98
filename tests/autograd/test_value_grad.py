"""``variable.value`` is the variable's tensor (Keras 3), so ``v.value.grad`` is ``v.grad``."""
import numpy as np
import pytest

import axone
from axone import layers, ops


def test_value_grad_is_the_variables_gradient_after_a_tape():
    v = axone.Variable(np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32))
    with axone.GradientTape() as t:
        loss = ops.sum(v.value * v.value)
    (g,) = t.gradient(loss, [v])
    assert v.value.grad is v.grad
    np.testing.assert_array_equal(v.value.grad, 2 * v.numpy())
    assert g.data is v.value.grad


def test_value_grad_after_backward_and_in_a_model():
    model = axone.Sequential([layers.Input((3,)), layers.Dense(2, activation="tanh")])
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    model.zero_grad()
    loss = ops.mean(ops.square(model(x)))
    loss.backward()
    for w in model.trainable_weights:
        assert w.value.grad is w.grad
        assert w.value.grad is not None and w.value.grad.shape == w.shape
    # the engine's idiom in a Keras-style custom step: optimizer.apply on v.value.grad
    before = [w.numpy().copy() for w in model.trainable_weights]
    opt = axone.optimizers.SGD(0.1)
    opt.apply([w.value.grad for w in model.trainable_weights], model.trainable_weights)
    for b, w in zip(before, model.trainable_weights):
        np.testing.assert_allclose(w.numpy(), b - 0.1 * w.grad, rtol=1e-6)


def test_value_still_works_as_an_array():
    v = axone.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    a = np.asarray(v.value)
    assert isinstance(a, np.ndarray) and np.shares_memory(a, v.data)
    assert v.value.shape == (2, 3) and v.value.dtype == np.float32 and v.value.ndim == 2
    assert isinstance(v.value.numpy(), np.ndarray)
    np.testing.assert_array_equal(np.asarray(v.value + 1), np.arange(6).reshape(2, 3) + 1)
    np.testing.assert_array_equal(np.asarray(2 * v.value), 2 * np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(np.exp(v.value).numpy(), np.exp(v.numpy()))
    assert float(axone.Variable(2.5).value) == 2.5
    assert v.value.tolist() == [[0, 1, 2], [3, 4, 5]]
    np.testing.assert_array_equal(ops.convert_to_numpy(ops.stop_gradient(v)), v.numpy())


def test_value_assignment_writes_in_place():
    v = axone.Variable(np.zeros((2, 2), dtype=np.float32))
    buf = v.data
    v.value = np.ones((2, 2))
    assert v.data is buf and np.all(v.numpy() == 1)
    with pytest.raises(ValueError, match=r"cannot assign a value of shape \(3,\)"):
        v.value = np.ones(3)


def test_value_is_differentiated_like_the_variable():
    v = axone.Variable(np.array([0.3, -0.4], dtype=np.float64), dtype="float64")
    g = axone.grad(lambda w: ops.sum(ops.tanh(w)))(v.value)
    np.testing.assert_allclose(g.data, 1 - np.tanh(v.numpy()) ** 2)


def test_value_grad_matches_keras_torch_backend():
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    if keras.backend.backend() != "torch":
        pytest.skip("needs KERAS_BACKEND=torch")
    w = np.array([[0.2, -1.0], [1.5, 0.3]], dtype=np.float32)
    kv = keras.Variable(w)
    loss = torch.sum(torch.tanh(kv.value) ** 2)
    loss.backward()
    av = axone.Variable(w)
    al = ops.sum(ops.tanh(av.value) ** 2)
    al.backward()
    np.testing.assert_allclose(av.value.grad, kv.value.grad.cpu().numpy(), rtol=1e-6, atol=1e-7)


class _Net(axone.Model):
    def __init__(self):
        super().__init__()
        self.d1 = layers.Dense(8, activation="relu")
        self.d2 = layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.d2(self.d1(x))


class _TorchStyleStep(_Net):
    """Keras 3's custom train_step for the torch backend, word for word (without torch.no_grad)."""

    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        tw = self.trainable_weights
        self.optimizer.apply([v.value.grad for v in tw], tw)
        for m in self.metrics:
            if m.name == "loss":
                m.update_state(loss)
            else:
                m.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_keras_torch_style_train_step_with_value_grad_reproduces_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 40)]
    runs = []
    for cls in (_Net, _TorchStyleStep):
        axone.utils.set_random_seed(0)
        m = cls()
        m.compile(optimizer="adam", loss="categorical_crossentropy")
        h = m.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False)
        runs.append((h.history["loss"], [w.numpy().copy() for w in m.trainable_weights]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
