"""Keras 3 as people write it, against real Keras 3 (torch backend): subclassed models, an
overridden train_step, add_loss, generators and PyDatasets, evaluate's order of values."""
import numpy as np
import pytest

import axone
from axone import layers, models, ops

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(7)
X = RNG.normal(size=(48, 5)).astype("float32")
Y = RNG.integers(0, 3, 48)
W0 = [RNG.normal(scale=0.4, size=(5, 8)).astype("float32"), np.zeros(8, "float32"),
      RNG.normal(scale=0.4, size=(8, 3)).astype("float32"), np.zeros(3, "float32")]


def _keras_functional():
    inp = keras.Input((5,))
    h = keras.layers.Dense(8, activation="tanh")(inp)
    out = keras.layers.Dense(3, activation="softmax")(h)
    m = keras.Model(inp, out)
    m.set_weights(W0)
    return m


class AxSub(axone.Model):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.hidden = layers.Dense(8, activation="tanh")
        self.out = layers.Dense(3, activation="softmax")

    def call(self, inputs, training=None):
        return self.out(self.hidden(inputs))


class KSub(keras.Model):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.out = keras.layers.Dense(3, activation="softmax")

    def call(self, inputs, training=None):
        return self.out(self.hidden(inputs))


def _ax_sub():
    m = AxSub()
    m(X[:2])
    m.set_weights(W0)
    return m


def _ax_functional():
    inp = layers.Input((5,))
    h = layers.Dense(8, activation="tanh")(inp)
    m = models.Model(inp, layers.Dense(3, activation="softmax")(h))
    m.set_weights(W0)
    return m


def _fit(m, **kw):
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0, **kw).history


def _same_history(a, b, tol=1e-5):
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=tol, atol=tol, err_msg=k)


def test_subclassed_model_trains_like_the_functional_one_and_like_keras():
    ks = KSub()
    ks(X[:2])
    ks.set_weights(W0)
    h_keras = _fit(ks)
    h_sub = _fit(_ax_sub())
    h_fun = _fit(_ax_functional())
    _same_history(h_sub, h_fun, 1e-6)
    _same_history(h_sub, h_keras)
    h_kf = _fit(_keras_functional())
    _same_history(h_kf, h_keras, 1e-6)


def test_subclassed_model_evaluate_predict_and_weights_round_trip(tmp_path):
    m = _ax_sub()
    _fit(m)
    loss, acc = m.evaluate(X, Y, verbose=0)
    p = m.predict(X, verbose=0)
    assert p.shape == (48, 3)
    ref = _ax_functional()
    ref.set_weights(m.get_weights())
    np.testing.assert_allclose(p, ref.predict(X, verbose=0), rtol=1e-6)
    path = str(tmp_path / "sub.weights.axone")
    m.save_weights(path)
    m2 = _ax_sub()
    m2.load_weights(path)
    np.testing.assert_array_equal(m2.predict(X, verbose=0), p)


class AxBackwardStep(AxSub):
    """The engine's own idiom: zero_grad, loss.backward(), the variables' .grad."""

    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        tw = self.trainable_weights
        self.optimizer.apply_gradients(zip([v.grad for v in tw], tw))
        for m in self.metrics:
            if m.name == "loss":
                m.update_state(loss)
            else:
                m.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


class KTorchStep(KSub):
    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        tw = self.trainable_weights
        import torch
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in tw], tw)
        for m in self.metrics:
            if m.name == "loss":
                m.update_state(loss)
            else:
                m.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_custom_train_step_with_backward_reproduces_fit():
    ref = _ax_sub()
    h_ref = _fit(ref)
    m = AxBackwardStep()
    m(X[:2])
    m.set_weights(W0)
    h = _fit(m)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    _same_history(h, h_ref)
    k = KTorchStep()
    k(X[:2])
    k.set_weights(W0)
    h_k = _fit(k)
    for a, b in zip(m.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)
    _same_history(h, h_k)


class AxActivity(layers.Layer):
    def call(self, x):
        self.add_loss(0.01 * ops.sum(ops.square(x)))
        return x


class KActivity(keras.layers.Layer):
    def call(self, x):
        self.add_loss(0.01 * keras.ops.sum(keras.ops.square(x)))
        return x


def test_add_loss_joins_the_training_loss_as_in_keras():
    def build(mod, act):
        m = mod.Sequential([mod.Input((5,)), mod.layers.Dense(8, activation="tanh"), act(),
                            mod.layers.Dense(3, activation="softmax")])
        m.set_weights(W0)
        return m
    ka = build(keras, KActivity)
    aa = build(axone_keras(), AxActivity)
    _same_history(_fit(aa), _fit(ka))
    assert len(aa.losses) == 1
    # the terms of one call only: a second call replaces them
    aa(X[:4])
    aa(X[:4])
    assert len(aa.losses) == 1


def axone_keras():
    class K:
        Sequential = models.Sequential
        Input = layers.Input
    K.layers = layers
    return K


def test_add_loss_only_model_trains_without_a_compiled_loss():
    class AE(axone.Model):
        def __init__(self):
            super().__init__()
            self.enc = layers.Dense(2)
            self.dec = layers.Dense(5)

        def call(self, x):
            r = self.dec(self.enc(x))
            self.add_loss(ops.mean(ops.square(r - x)))
            return r
    m = AE()
    m.compile(optimizer="adam")
    h = m.fit(X, epochs=5, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    with pytest.raises(ValueError, match="No loss to compute"):
        s = models.Sequential([layers.Input((5,)), layers.Dense(1)])
        s.compile(optimizer="sgd")
        s.fit(X, verbose=0)


class Seq(axone.utils.PyDataset):
    def __init__(self, **kw):
        super().__init__(**kw)

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return X[i * 16:(i + 1) * 16], Y[i * 16:(i + 1) * 16]


def test_generator_pydataset_with_workers_and_arrays_give_the_same_history():
    def gen():
        while True:
            for i in range(3):
                yield X[i * 16:(i + 1) * 16], Y[i * 16:(i + 1) * 16]
    h_arr = _fit(_ax_functional())
    m = _ax_functional()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h_gen = m.fit(gen(), steps_per_epoch=3, epochs=3, verbose=0).history
    m = _ax_functional()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h_ds = m.fit(Seq(workers=2), epochs=3, shuffle=False, verbose=0).history
    m = _ax_functional()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h_mp = m.fit(Seq(workers=2, use_multiprocessing=True), epochs=3, shuffle=False,
                 verbose=0).history
    _same_history(h_gen, h_arr, 1e-7)
    _same_history(h_ds, h_arr, 1e-7)
    _same_history(h_mp, h_arr, 1e-7)

    class KSeq(keras.utils.PyDataset):
        def __init__(self, **kw):
            super().__init__(**kw)

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return X[i * 16:(i + 1) * 16], Y[i * 16:(i + 1) * 16]
    k = _keras_functional()
    k.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _same_history(h_ds, k.fit(KSeq(), epochs=3, shuffle=False, verbose=0).history)


class _AxMod:
    Input = staticmethod(layers.Input)
    Model = models.Model


def test_multi_output_evaluate_returns_keras_order():
    def build(mod, L):
        inp = mod.Input((5,))
        a = L.Dense(1, name="r")(inp)
        b = L.Dense(3, activation="softmax", name="c")(inp)
        m = mod.Model(inp, [a, b])
        m.set_weights([W0[0][:, :1], W0[1][:1], W0[0][:, :3], W0[1][:3]])
        m.compile("sgd", loss=["mse", "sparse_categorical_crossentropy"],
                  metrics=[["mae"], ["accuracy"]])
        return m
    y1 = X[:, :1]
    k = build(keras, keras.layers)
    a = build(_AxMod, layers)
    kv = k.evaluate(X, [y1, Y], verbose=0)
    av = a.evaluate(X, [y1, Y], verbose=0)
    np.testing.assert_allclose(av, kv, rtol=1e-5)
    kd = k.evaluate(X, [y1, Y], verbose=0, return_dict=True)
    ad = a.evaluate(X, [y1, Y], verbose=0, return_dict=True)
    assert set(kd) == set(ad)
