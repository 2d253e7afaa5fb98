"""timeseries_dataset_from_array: Keras's windows and batches (its docstring examples and a
direct NumPy construction of its index arithmetic), shuffling, laziness, bad input."""
import itertools

import numpy as np
import pytest

from axone.utils import timeseries_dataset_from_array as tsd


def _reference(data, targets, L, stride, rate, start=0, end=None):
    """All windows at once, by NumPy: window p is data[start + p + k·rate], k < L."""
    end = len(data) if end is None else end
    seg = data[start:end]
    n = len(seg) - (L - 1) * rate
    if targets is not None:
        n = min(n, len(targets) - start)
    starts = np.arange(0, max(n, 0), stride)
    x = np.stack([seg[p:p + (L - 1) * rate + 1:rate] for p in starts]) if len(starts) else None
    y = None if targets is None else targets[start + starts]
    return starts, x, y


def _collect(ds):
    batches = list(ds)
    if batches and isinstance(batches[0], tuple):
        return (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]),
                [len(b[0]) for b in batches])
    return np.concatenate(batches), None, [len(b) for b in batches]


def test_docstring_example_1():
    ds = tsd(np.arange(99), None, sequence_length=10, sampling_rate=2, sequence_stride=3)
    x, _, sizes = _collect(ds)
    np.testing.assert_array_equal(x[0], [0, 2, 4, 6, 8, 10, 12, 14, 16, 18])
    np.testing.assert_array_equal(x[1], [3, 5, 7, 9, 11, 13, 15, 17, 19, 21])
    np.testing.assert_array_equal(x[2], [6, 8, 10, 12, 14, 16, 18, 20, 22, 24])
    np.testing.assert_array_equal(x[-1], [78, 80, 82, 84, 86, 88, 90, 92, 94, 96])
    assert len(x) == 27 and sizes == [27] and len(ds) == 1


def test_docstring_example_2_regression_targets():
    data = np.arange(100, dtype="float32") * 0.5
    ds = tsd(data[:-10], data[10:], sequence_length=10)
    inputs, targets = next(iter(ds))
    np.testing.assert_array_equal(inputs[0], data[:10])
    assert targets[0] == data[10]
    assert inputs.shape == (81, 10) and targets.shape == (81,)


def test_docstring_example_3_non_overlapping():
    X = np.arange(100)
    Y = X * 2
    xs = tsd(X, None, sequence_length=20, sequence_stride=20)
    ys = tsd(Y, None, sequence_length=20, sequence_stride=20)
    inputs, targets = next(zip(xs, ys))
    np.testing.assert_array_equal(inputs[0], X[:20])
    np.testing.assert_array_equal(targets[1], Y[20:40])
    assert inputs.shape == (5, 20)


@pytest.mark.parametrize("L,stride,rate,batch", [(3, 1, 1, 4), (5, 2, 3, 7), (1, 4, 1, 128),
                                                 (4, 3, 2, 1), (6, 1, 5, 3)])
@pytest.mark.parametrize("with_targets", [False, True])
def test_matches_numpy_construction(L, stride, rate, batch, with_targets):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(57, 3)).astype("float32")
    targets = rng.integers(0, 9, size=57) if with_targets else None
    ds = tsd(data, targets, L, sequence_stride=stride, sampling_rate=rate, batch_size=batch)
    starts, x_ref, y_ref = _reference(data, targets, L, stride, rate)
    x, y, sizes = _collect(ds)
    np.testing.assert_array_equal(x, x_ref)
    assert x.dtype == data.dtype and x.shape == (len(starts), L, 3)
    if with_targets:
        np.testing.assert_array_equal(y, y_ref)
    assert sizes == [min(batch, len(starts) - i) for i in range(0, len(starts), batch)]
    assert len(ds) == len(sizes)


@pytest.mark.parametrize("start,end", [(5, None), (None, 40), (7, 33)])
def test_start_and_end_index(start, end):
    data = np.arange(50) * 10
    targets = np.arange(50)
    ds = tsd(data, targets, 4, sampling_rate=2, batch_size=5, start_index=start, end_index=end)
    _, x_ref, y_ref = _reference(data, targets, 4, 1, 2, start or 0, end)
    x, y, _ = _collect(ds)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(y, y_ref)
    assert x.max() < (end or 50) * 10


def test_short_targets_cap_the_number_of_windows():
    x, y, _ = _collect(tsd(np.arange(20), np.arange(6), 3))
    assert len(x) == 6 and len(y) == 6


def test_batch_size_none_yields_single_windows():
    ds = tsd(np.arange(10), np.arange(10) * 2, 3, batch_size=None)
    items = list(ds)
    assert len(ds) == len(items) == 8
    x, y = items[2]
    np.testing.assert_array_equal(x, [2, 3, 4])
    assert y == 4


def test_reiterable_and_indexable():
    ds = tsd(np.arange(30), None, 4, batch_size=6)
    a, b = list(ds), list(ds)
    assert len(a) == len(b) == len(ds) == 5
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(ds[-1], a[-1])
    with pytest.raises(IndexError):
        ds[5]


def test_shuffle_with_seed_is_reproducible_and_a_permutation():
    data, targets = np.arange(100), np.arange(100) + 1000
    ds1 = tsd(data, targets, 5, batch_size=8, shuffle=True, seed=3)
    ds2 = tsd(data, targets, 5, batch_size=8, shuffle=True, seed=3)
    x1, y1, _ = _collect(ds1)
    x2, y2, _ = _collect(ds2)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    _, x_ref, _ = _reference(data, targets, 5, 1, 1)
    assert not np.array_equal(x1, x_ref)
    np.testing.assert_array_equal(np.sort(x1[:, 0]), x_ref[:, 0])
    np.testing.assert_array_equal(y1 - 1000, x1[:, 0])          # targets follow their windows
    perm = np.arange(len(x_ref))
    np.random.RandomState(3).shuffle(perm)
    np.testing.assert_array_equal(x1, x_ref[perm])               # Keras's permutation of starts
    x3, _, _ = _collect(tsd(data, targets, 5, batch_size=8, shuffle=True, seed=4))
    assert not np.array_equal(x1, x3)


class _Recorder(np.ndarray):
    """An array that remembers the largest number of rows one indexing asked for."""
    largest = 0

    def __getitem__(self, key):
        out = np.ndarray.__getitem__(self, key)
        if isinstance(key, np.ndarray):
            _Recorder.largest = max(_Recorder.largest, key.size)
        return out


def test_windows_are_gathered_per_batch():
    data = np.arange(10_000, dtype="float32").view(_Recorder)
    _Recorder.largest = 0
    ds = tsd(data, None, 50, batch_size=16)
    assert _Recorder.largest == 0                                # nothing gathered up front
    first = ds[0]
    assert first.shape == (16, 50)
    assert _Recorder.largest == 16 * 50
    for _ in ds:
        pass
    assert _Recorder.largest == 16 * 50                          # one batch at a time


@pytest.mark.parametrize("kw,exc,match", [
    (dict(sequence_length=0), ValueError, "sequence_length"),
    (dict(sampling_rate=0), ValueError, "sampling_rate"),
    (dict(sampling_rate=20), ValueError, "sampling_rate"),
    (dict(sequence_stride=0), ValueError, "sequence_stride"),
    (dict(sequence_stride=20), ValueError, "sequence_stride"),
    (dict(start_index=-1), ValueError, "start_index"),
    (dict(start_index=20), ValueError, "start_index"),
    (dict(start_index=5, end_index=3), ValueError, "end_index"),
    (dict(end_index=20), ValueError, "end_index"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.0), TypeError, "batch_size"),
    (dict(sequence_length=2.5), TypeError, "sequence_length"),
])
def test_bad_arguments(kw, exc, match):
    args = dict(sequence_length=3)
    args.update(kw)
    with pytest.raises(exc, match=match):
        tsd(np.arange(20), None, **args)


def test_bad_data():
    with pytest.raises(TypeError, match="data"):
        tsd(5, None, 3)
    with pytest.raises(ValueError, match="scalar"):
        tsd(np.array(1.0), None, 3)


def test_too_short_series_gives_no_batches():
    ds = tsd(np.arange(5), None, 10)
    assert len(ds) == 0 and list(ds) == []
