"""fit / evaluate / predict on generators, iterators, PyDatasets, DataLoaders and iterable
datasets: the same batches as arrays, Keras's epoch rules, and clear errors on bad input."""
import threading
import warnings

import numpy as np
import pytest

from axone import layers, models, utils
from axone.models.data_adapters import pack_x_y_sample_weight, unpack_x_y_sample_weight

RNG = np.random.default_rng(11)
X = RNG.normal(size=(30, 3)).astype("float32")
Y = RNG.normal(size=(30, 1)).astype("float32")
SW = RNG.uniform(0.5, 2.0, size=30).astype("float32")


def _model(seed=0):
    utils.set_random_seed(seed)
    m = models.Sequential([layers.Input((3,)), layers.Dense(4, activation="tanh"), layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return m


def _batches(sw=False, bs=10):
    for i in range(0, 30, bs):
        yield (X[i:i + bs], Y[i:i + bs], SW[i:i + bs]) if sw else (X[i:i + bs], Y[i:i + bs])


def _looping(sw=False):
    while True:
        yield from _batches(sw)


def _same(a, b, tol=1e-6):
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=tol, err_msg=k)


def test_generator_with_sample_weights_equals_arrays():
    ref = _model().fit(X, Y, sample_weight=SW, batch_size=10, epochs=2, shuffle=False,
                       verbose=0).history
    got = _model().fit(_looping(True), steps_per_epoch=3, epochs=2, verbose=0).history
    _same(got, ref)


class Iterable:
    """A tf.data-like dataset: every iter() is a new pass."""

    def __init__(self):
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        return _batches()

    def __len__(self):
        return 3


def test_reiterable_dataset_gives_a_new_pass_each_epoch():
    ds = Iterable()
    ref = _model().fit(X, Y, batch_size=10, epochs=3, shuffle=False, verbose=0).history
    got = _model().fit(ds, epochs=3, verbose=0).history
    _same(got, ref)
    assert ds.passes == 3
    m = _model()
    m.fit(X, Y, epochs=1, verbose=0)
    np.testing.assert_allclose(m.evaluate(Iterable(), verbose=0),
                               m.evaluate(X, Y, batch_size=10, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(m.predict(Iterable(), verbose=0), m.predict(X, verbose=0),
                               rtol=1e-6)


def test_validation_data_as_a_generator_and_validation_steps():
    ref = _model().fit(X, Y, batch_size=10, epochs=2, shuffle=False, verbose=0,
                       validation_data=(X[:20], Y[:20])).history
    def first_two():
        while True:
            yield X[:10], Y[:10]
            yield X[10:20], Y[10:20]
    got = _model().fit(X, Y, batch_size=10, epochs=2, shuffle=False, verbose=0,
                       validation_data=first_two(), validation_steps=2).history
    _same(got, ref)


def test_steps_per_epoch_continues_where_the_last_epoch_stopped():
    seen = []

    def gen():
        i = 0
        while True:
            seen.append(i)
            yield X[i % 3 * 10:(i % 3 + 1) * 10], Y[i % 3 * 10:(i % 3 + 1) * 10]
            i += 1
    _model().fit(gen(), steps_per_epoch=2, epochs=3, verbose=0)
    assert seen == list(range(6))


def test_a_generator_that_runs_dry_warns_and_stops():
    m = _model()
    with pytest.warns(UserWarning, match=r"ran out of data.*expected 5 batches and received 3"):
        h = m.fit(_batches(), steps_per_epoch=5, epochs=4, verbose=0)
    assert len(h.history["loss"]) == 1
    m = _model()
    with pytest.warns(UserWarning, match="used up after 3 batches"):
        h = m.fit(_batches(), epochs=3, verbose=0)
    assert len(h.history["loss"]) == 1


def test_inconsistent_batches_get_clear_errors():
    def bad():
        yield X[:10], Y[:10]
        yield X[:10, :2], Y[:10]
    with pytest.raises(ValueError, match=r"expects input shape \(None, 3\).*\(10, 2\)"):
        _model().fit(bad(), epochs=1, verbose=0)

    def bad_rows():
        yield X[:10], Y[:9]
    with pytest.raises(ValueError, match="same number of rows"):
        _model().fit(bad_rows(), epochs=1, verbose=0)

    def bad_kind():
        yield "not a batch"
    with pytest.raises(ValueError, match="must yield a tuple"):
        _model().fit(bad_kind(), epochs=1, verbose=0)

    def empty():
        return
        yield
    with pytest.raises(ValueError, match="yielded no batch"):
        _model().fit(empty(), epochs=1, verbose=0)


def test_arguments_that_the_data_itself_gives_are_refused():
    with pytest.raises(ValueError, match="`y` must not be given"):
        _model().fit(_looping(), Y, steps_per_epoch=2, verbose=0)
    with pytest.raises(ValueError, match="batch_size must not be given"):
        _model().fit(_looping(), steps_per_epoch=2, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="validation_split is only supported for arrays"):
        _model().fit(_looping(), steps_per_epoch=2, validation_split=0.2, verbose=0)


class Batches(utils.PyDataset):
    def __init__(self, n=3, **kw):
        super().__init__(**kw)
        self.n = n
        self.calls = []
        self.lock = threading.Lock()
        self.epochs_ended = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with self.lock:
            self.calls.append(i)
        j = i % 3
        return X[j * 10:(j + 1) * 10], Y[j * 10:(j + 1) * 10]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_pydataset_workers_and_processes_give_the_arrays_history():
    ref = _model().fit(X, Y, batch_size=10, epochs=2, shuffle=False, verbose=0).history
    for kw in ({}, {"workers": 3}, {"workers": 2, "use_multiprocessing": True}):
        ds = Batches(**kw)
        _same(_model().fit(ds, epochs=2, shuffle=False, verbose=0).history, ref)
        assert ds.epochs_ended == 2


def test_pydataset_shuffles_batch_order_with_the_seed():
    orders = []
    for _ in range(2):
        ds = Batches()
        _model(seed=5).fit(ds, epochs=2, verbose=0)
        orders.append(ds.calls)
    assert orders[0] == orders[1]
    assert sorted(orders[0][:3]) == [0, 1, 2]


def test_a_huge_pydataset_streams_only_what_is_asked():
    ds = Batches(n=10 ** 9, workers=2, max_queue_size=4)
    _model().fit(ds, steps_per_epoch=3, epochs=1, shuffle=False, verbose=0)
    assert len(ds.calls) <= 3 + 4


def test_pydataset_of_length_zero_and_bad_settings():
    with pytest.raises(ValueError, match="length 0"):
        _model().fit(Batches(n=0), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        Batches(workers=0)
    with pytest.raises(ValueError, match="max_queue_size"):
        Batches(max_queue_size=-1)


def test_legacy_generator_methods_and_sequence():
    assert utils.Sequence is utils.PyDataset
    ref = _model().fit(X, Y, batch_size=10, epochs=2, shuffle=False, verbose=0).history
    m = _model()
    with pytest.warns(DeprecationWarning):
        h = m.fit_generator(_looping(), steps_per_epoch=3, epochs=2, verbose=0)
    _same(h.history, ref)
    with pytest.warns(DeprecationWarning):
        e = m.evaluate_generator(Batches(), workers=2)
    np.testing.assert_allclose(e, m.evaluate(X, Y, batch_size=10, verbose=0), rtol=1e-6)
    with pytest.warns(DeprecationWarning):
        p = m.predict_generator(Batches())
    np.testing.assert_allclose(p, m.predict(X, verbose=0), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="workers=4"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit_generator(_looping(), steps_per_epoch=3, workers=4, verbose=0)


def test_torch_dataloader():
    torch = pytest.importorskip("torch")
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    dl = torch.utils.data.DataLoader(ds, batch_size=10, shuffle=False)
    ref = _model().fit(X, Y, batch_size=10, epochs=2, shuffle=False, verbose=0).history
    _same(_model().fit(dl, epochs=2, verbose=0).history, ref)


def test_class_weight_with_a_generator():
    def gen():
        while True:
            yield X[:10], (Y[:10] > 0).astype("int64")[:, 0]
    m = models.Sequential([layers.Input((3,)), layers.Dense(2, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    w = m.get_weights()
    h1 = m.fit(gen(), steps_per_epoch=1, class_weight={0: 1.0, 1: 3.0}, verbose=0).history
    m.set_weights(w)
    yb = (Y[:10] > 0).astype("int64")[:, 0]
    h2 = m.fit(X[:10], yb, sample_weight=np.where(yb == 1, 3.0, 1.0), batch_size=10,
               verbose=0).history
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-6)


def test_pack_and_unpack():
    assert unpack_x_y_sample_weight((1, 2)) == (1, 2, None)
    assert unpack_x_y_sample_weight(5) == (5, None, None)
    assert pack_x_y_sample_weight(1, 2) == (1, 2)
    assert pack_x_y_sample_weight(1) == 1
    with pytest.raises(ValueError, match="4 elements"):
        unpack_x_y_sample_weight((1, 2, 3, 4))
