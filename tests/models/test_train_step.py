"""The step is the unit: overridden train_step / test_step / predict_step, compute_loss,
metrics tracking, stateless_call, subclassed models with layers in lists and dicts."""
import warnings

import numpy as np
import pytest

import axone
from axone import layers, metrics, models, ops
from axone.autograd.tensor import Tensor

RNG = np.random.default_rng(3)
X = RNG.normal(size=(40, 4)).astype("float32")
Y = RNG.integers(0, 3, 40)


class Tower(axone.Model):
    def __init__(self):
        super().__init__()
        self.stack = [layers.Dense(6, activation="relu"), layers.Dense(6, activation="relu")]
        self.heads = {"cls": layers.Dense(3, activation="softmax")}

    def call(self, x, training=None):
        for layer in self.stack:
            x = layer(x)
        return self.heads["cls"](x)


def test_layers_in_lists_and_dicts_are_tracked():
    m = Tower()
    m(X[:2])
    assert len(m.trainable_weights) == 6
    assert len(m.layers) == 3


def test_train_step_override_runs_for_every_batch_and_its_logs_reach_history():
    calls = []

    class M(Tower):
        def train_step(self, data):
            x, y = data
            calls.append(x.shape[0])
            return {"seen": float(len(calls))}
    m = M()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    h = m.fit(X, Y, batch_size=16, epochs=2, verbose=0)
    assert calls == [16, 16, 8, 16, 16, 8]
    assert h.history["seen"] == [3.0, 6.0]
    m.train_on_batch(X[:5], Y[:5])
    assert calls[-1] == 5


def test_test_step_and_predict_step_overrides_run():
    class M(Tower):
        def test_step(self, data):
            x, y = data
            return {"rows": float(x.shape[0])}

        def predict_step(self, data):
            return ops.sum(self(data), axis=-1)
    m = M()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert m.evaluate(X, Y, batch_size=16, verbose=0) == 8.0
    p = m.predict(X, batch_size=16, verbose=0)
    np.testing.assert_allclose(p, np.ones(40), rtol=1e-5)


def test_super_train_step_is_the_built_in_step():
    class M(Tower):
        def train_step(self, data):
            logs = super().train_step(data)
            logs["extra"] = 1.0
            return logs
    a, b = M(), Tower()
    a(X[:2])
    b(X[:2])
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ha = a.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    hb = b.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-6)
    assert ha["extra"] == [1.0, 1.0]
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-6)


def test_metric_attributes_are_tracked_and_reset_every_epoch():
    class M(Tower):
        def __init__(self):
            super().__init__()
            self.batches = metrics.Sum(name="batches")

        def train_step(self, data):
            self.batches.update_state(1.0)
            return {"batches": self.batches.result()}
    m = M()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert m.batches in m.metrics
    h = m.fit(X, Y, batch_size=10, epochs=2, verbose=0)
    assert h.history["batches"] == [4.0, 4.0]


def test_train_step_must_return_a_dict_of_numbers():
    class Bad(Tower):
        def train_step(self, data):
            return 3.0

    class Bad2(Tower):
        def train_step(self, data):
            return {"loss": "low"}
    for cls, match in ((Bad, "must return a dict"), (Bad2, "'loss' is str")):
        m = cls()
        m.compile(optimizer="sgd", loss="mse")
        with pytest.raises(TypeError, match=match):
            m.fit(X, Y, verbose=0)


def test_compute_loss_includes_compiled_loss_and_added_losses():
    class M(Tower):
        def call(self, x, training=None):
            y = super().call(x)
            self.add_loss(ops.sum(y) * 0.0 + 2.0)
            return y
    m = M()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    yp = m(X[:8])
    total = m.compute_loss(y=Y[:8], y_pred=yp)
    ce = axone.losses.SparseCategoricalCrossentropy()(Y[:8], yp)
    np.testing.assert_allclose(float(total), float(ce) + 2.0, rtol=1e-6)
    assert total.requires_grad


def test_stateless_call_uses_the_given_values_and_leaves_the_weights():
    m = Tower()
    m(X[:2])
    before = m.get_weights()
    tv = [Tensor(np.array(v.data) * 0.5, requires_grad=True) for v in m.trainable_variables]
    out, ntv = m.stateless_call(tv, [], X[:5])
    ref = Tower()
    ref(X[:2])
    ref.set_weights([w * 0.5 for w in before])
    np.testing.assert_allclose(out.data, ref(X[:5]).data, rtol=1e-6)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    ops.sum(out * out).backward()
    assert all(t.grad is not None and np.any(t.grad != 0) for t in tv)
    assert all(v.grad is None or not np.any(v.grad) for v in m.trainable_variables)
    with pytest.raises(ValueError, match="trainable_variables"):
        m.stateless_call(tv[:1], [], X[:5])


def test_stateless_call_returns_updated_non_trainable_values():
    m = models.Sequential([layers.Input((4,)), layers.BatchNormalization()])
    ntv0 = [np.array(v.data) for v in m.non_trainable_variables]
    out, ntv = m.stateless_call([v.data for v in m.trainable_variables],
                                [v.data for v in m.non_trainable_variables], X, training=True)
    assert not np.allclose(ntv[0].data, ntv0[0])
    np.testing.assert_array_equal(m.non_trainable_variables[0].data, ntv0[0])


def test_zero_grad_clears_the_flat_buffer():
    m = Tower()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    m.fit(X, Y, epochs=1, verbose=0)
    assert any(np.any(v.grad) for v in m.trainable_weights)
    m.zero_grad()
    assert not any(np.any(v.grad) for v in m.trainable_weights)


def test_subclassed_model_with_several_inputs_and_dict_outputs():
    class Two(axone.Model):
        def __init__(self):
            super().__init__()
            self.a = layers.Dense(3)
            self.b = layers.Dense(1)

        def call(self, inputs):
            u, v = inputs
            h = self.a(u) + self.a(v)
            return {"cls": ops.softmax(h), "reg": self.b(h)}
    m = Two()
    m.compile(optimizer="adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"})
    h = m.fit([X, X * 2], {"cls": Y, "reg": X[:, :1]}, epochs=2, batch_size=8, verbose=0)
    assert {"loss", "cls_loss", "reg_loss"} <= set(h.history)
    p = m.predict([X, X], verbose=0)
    assert set(p) == {"cls", "reg"} and p["cls"].shape == (40, 3) and p["reg"].shape == (40, 1)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        m.predict([X[:, :3], X[:, :3]], verbose=0)


def test_symbolic_arithmetic_and_ops_in_a_functional_model():
    inp = layers.Input((4,))
    h = layers.Dense(3)(inp)
    out = ops.mean(h * 2.0 + 1.0, axis=-1) if False else None
    from axone.compat.keras_ops import symbolic_aware
    mean = symbolic_aware(ops.mean)
    out = mean(h * 2.0 + 1.0, axis=-1, keepdims=True) - h[:, :1]
    m = models.Model(inp, out)
    assert out.shape == (None, 1)
    x = X[:6]
    hv = m.layers[1](x).data
    np.testing.assert_allclose(m.predict(x, verbose=0),
                               (hv * 2 + 1).mean(-1, keepdims=True) - hv[:, :1], rtol=1e-5)
    m.compile(optimizer="sgd", loss="mse")
    m.fit(X, X[:, :1], epochs=1, verbose=0)


def test_model_on_intermediate_tensors_shares_the_weights():
    inp = layers.Input((4,))
    feat = layers.Dense(5, activation="relu", name="feat")(inp)
    out = layers.Dense(2, name="head")(feat)
    base = models.Model(inp, out)
    head = models.Model(feat, out)
    both = models.Model(base.inputs, [base.get_layer("feat").output, base.output])
    f, o = both.predict(X, verbose=0)
    np.testing.assert_allclose(head.predict(f, verbose=0), o, rtol=1e-6)
    assert head.get_layer("head") is base.get_layer("head")


def test_a_subclassed_model_that_cannot_be_built_gets_keras_message():
    class Broken(axone.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(2)

        def call(self, x):
            return self.d(x)[self.missing]
    m = Broken()
    m.compile(optimizer="sgd", loss="mse")
    with pytest.raises(RuntimeError, match="(?s)Unable to automatically build the model .broken.*"
                                           "AttributeError"):
        m.fit(X, X[:, :2], verbose=0)

    class NoCall(axone.Model):
        pass
    m = NoCall()
    m.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match="call"):
        m.fit(X, X, verbose=0)
