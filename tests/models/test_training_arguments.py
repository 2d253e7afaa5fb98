"""fit / evaluate / predict arguments: each takes effect as in Keras 3 or is refused clearly."""
import warnings

import numpy as np
import pytest

import axone
from axone import layers


def _model(units=3, loss="categorical_crossentropy", act="softmax"):
    axone.utils.set_random_seed(0)
    m = axone.Sequential([axone.Input((4,)), layers.Dense(units, activation=act)])
    m.compile(optimizer="sgd", loss=loss)
    return m


def _data(n=20, k=3):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    labels = rng.integers(0, k, n)
    return x, np.eye(k, dtype=np.float32)[labels], labels


class StepCounter(axone.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train, self.test, self.predict, self.sizes = [], [], [], []

    def on_train_batch_end(self, batch, logs=None):
        self.train.append(batch)

    def on_test_batch_end(self, batch, logs=None):
        self.test.append(batch)

    def on_predict_batch_end(self, batch, logs=None):
        self.predict.append(batch)
        self.sizes.append(len(logs["outputs"]))


@pytest.mark.parametrize("cw, match", [
    ({-1: 2.0}, r"\[0, 3\).*-1"), ({3: 2.0}, r"\[0, 3\).*3"), ({"a": 2.0}, "integer class indices"),
    ({1.5: 2.0}, "integer class indices"), ({0: "heavy"}, "must be a number"),
])
def test_class_weight_keys_must_be_class_indices(cw, match):
    m = _model()
    x, y, _ = _data()
    with pytest.raises((ValueError, TypeError), match=match):
        m.fit(x, y, class_weight=cw, verbose=0)


def test_class_weight_for_binary_and_sparse_outputs():
    x, _, labels = _data(k=2)
    m = _model(1, "binary_crossentropy", "sigmoid")
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        m.fit(x, labels.astype(np.float32), class_weight={2: 1.0}, verbose=0)
    m = _model(3, "sparse_categorical_crossentropy")
    x, _, labels = _data()
    m.fit(x, labels, class_weight={0: 1.0, 2: 3.0, 1.0: 0.5}, verbose=0)
    sw = m._sample_weights([labels], None, {0: 1.0, 2: 3.0, 1: 0.5}, len(labels))
    np.testing.assert_array_equal(sw, np.array([1.0, 0.5, 3.0])[labels].astype(np.float32))


def test_class_weight_with_sample_weight_is_refused_as_keras():
    m = _model()
    x, y, _ = _data()
    with pytest.raises(ValueError, match="class_weight and sample_weight"):
        m.fit(x, y, class_weight={0: 2.0}, sample_weight=np.ones(len(x)), verbose=0)


@pytest.mark.parametrize("kw, match", [
    (dict(steps_per_epoch=0), "steps_per_epoch"), (dict(steps_per_epoch=-1), "steps_per_epoch"),
    (dict(steps_per_epoch=2.5), "steps_per_epoch"), (dict(steps_per_epoch=True), "steps_per_epoch"),
    (dict(validation_steps=0, validation_split=0.2), "validation_steps"),
    (dict(validation_freq=0, validation_split=0.2), "validation_freq"),
    (dict(validation_freq=-2, validation_split=0.2), "validation_freq"),
    (dict(validation_freq=[0, 1], validation_split=0.2), "validation_freq"),
    (dict(validation_freq="1", validation_split=0.2), "validation_freq"),
    (dict(initial_epoch=5, epochs=2), "initial_epoch"), (dict(initial_epoch=-1), "initial_epoch"),
    (dict(validation_batch_size=0, validation_split=0.2), "validation_batch_size"),
    (dict(validation_batch_size=-4, validation_split=0.2), "validation_batch_size"),
    (dict(validation_split="0.2"), "validation_split"), (dict(validation_split=1.0), "validation_split"),
    (dict(shuffle="yes"), "shuffle"), (dict(verbose=3), "verbose"), (dict(verbose="1"), "verbose"),
])
def test_impossible_fit_arguments_are_refused(kw, match):
    m = _model()
    x, y, _ = _data()
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match=match):
        m.fit(x, y, **{"epochs": 1, "verbose": 0, **kw})
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kw", [dict(max_queue_size=10), dict(workers=2), dict(use_multiprocessing=True)])
def test_arguments_keras3_fit_does_not_take(kw):
    m = _model()
    x, y, _ = _data()
    with pytest.raises(TypeError, match=next(iter(kw))):
        m.fit(x, y, verbose=0, **kw)


def test_validation_freq_int_and_list():
    m = _model()
    x, y, _ = _data()
    h = m.fit(x, y, epochs=4, verbose=0, validation_data=(x, y), validation_freq=2)
    assert len(h.history["loss"]) == 4 and len(h.history["val_loss"]) == 2
    h = m.fit(x, y, epochs=4, verbose=0, validation_data=(x, y), validation_freq=[1, 4])
    assert len(h.history["val_loss"]) == 2


def test_steps_per_epoch_continues_through_the_data_as_keras():
    # 20 rows in batches of 4: 5 batches; 2 per epoch take batches 0-1, 2-3, then 4 alone
    # (the data runs out, with Keras's warning), then a new pass
    m = _model()
    x, y, _ = _data()
    seen = []

    class Rows(axone.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)

    with pytest.warns(UserWarning, match="ran out of data"):
        h = m.fit(x, y, batch_size=4, epochs=4, steps_per_epoch=2, shuffle=False, verbose=0,
                  callbacks=[Rows()])
    assert seen == [0, 1, 0, 1, 0, 0, 1]
    assert m.optimizer.iterations == 7 and len(h.history["loss"]) == 4


def test_steps_per_epoch_without_batch_size_splits_the_data():
    m = _model()
    x, y, _ = _data()
    c = StepCounter()
    m.fit(x, y, steps_per_epoch=3, epochs=1, verbose=0, callbacks=[c])   # batches of ceil(20/3)=7
    assert c.train == [0, 1, 2] and m.optimizer.iterations == 3


def test_shuffle_batch_keeps_the_batches_and_shuffles_within():
    m = _model()
    x, y, _ = _data()
    seen = []
    orig = m._train_step

    def spy(xb, yb, swb):
        seen.append(xb[0].copy())
        return orig(xb, yb, swb)

    m._train_step = spy
    m.fit(x, y, batch_size=8, epochs=1, shuffle="batch", verbose=0)
    for i, xb in enumerate(seen):
        chunk = x[i * 8:(i + 1) * 8]
        assert sorted(map(tuple, xb)) == sorted(map(tuple, chunk))


def test_evaluate_and_predict_steps_limit_the_batches():
    m = _model()
    x, y, _ = _data()
    c = StepCounter()
    first = m.evaluate(x[:8], y[:8], batch_size=4, verbose=0)
    assert m.evaluate(x, y, batch_size=4, steps=2, verbose=0, callbacks=[c]) == pytest.approx(first)
    assert c.test == [0, 1]
    p = m.predict(x, batch_size=4, steps=3, verbose=0, callbacks=[c])
    assert p.shape == (12, 3) and c.predict == [0, 1, 2] and c.sizes == [4, 4, 4]
    c.predict, c.sizes = [], []
    p = m.predict(x, steps=3, verbose=0, callbacks=[c])          # batches of ceil(20/3) = 7
    assert p.shape == (20, 3) and c.sizes == [7, 7, 6]
    with pytest.warns(UserWarning, match="ran out of data"):
        assert m.predict(x, batch_size=8, steps=5, verbose=0).shape == (20, 3)


def test_validation_steps_and_batch_size_take_effect():
    m = _model()
    x, y, _ = _data()
    c = StepCounter()
    h = m.fit(x, y, epochs=1, verbose=0, validation_data=(x, y), validation_steps=2,
              validation_batch_size=5, callbacks=[c])
    assert c.test == [0, 1]
    m2 = _model()
    m2.set_weights(m.get_weights())
    assert h.history["val_loss"][0] != pytest.approx(m2.evaluate(x, y, verbose=0))


@pytest.mark.parametrize("kw, match", [(dict(steps=0), "steps"), (dict(steps=1.5), "steps"),
                                       (dict(verbose=5), "verbose"), (dict(batch_size=0), "batch_size")])
def test_impossible_evaluate_and_predict_arguments(kw, match):
    m = _model()
    x, y, _ = _data()
    with pytest.raises(ValueError, match=match):
        m.evaluate(x, y, **kw)
    with pytest.raises(ValueError, match=match):
        m.predict(x, **kw)
