"""Sliding windows over a time series, as ``keras.utils.timeseries_dataset_from_array``.

The windows are cut lazily: the dataset keeps the start positions only, and each batch gathers
its own rows, so a long series is never copied into the whole windowed array.
"""
import numpy as np

__all__ = ["timeseries_dataset_from_array", "TimeseriesDataset"]


def _as_array(a, what):
    if hasattr(a, "to_numpy"):
        a = a.to_numpy()
    if not hasattr(a, "__len__") or not hasattr(a, "__getitem__"):
        raise TypeError(f"timeseries_dataset_from_array: `{what}` must be an array (indexable along "
                        f"its first axis), received {type(a).__name__}")
    return a if isinstance(a, np.ndarray) else np.asarray(a)


def _check_int(value, name, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"timeseries_dataset_from_array: `{name}` must be an integer"
                        f"{' or None' if allow_none else ''}, received {value!r}")


class TimeseriesDataset:
    """The windows of a series, in batches: iterating gives ``(x_batch, y_batch)`` (``x_batch``
    alone without targets); ``len()`` is the number of batches. Re-iterable; every pass yields
    the same batches."""

    def __init__(self, data, targets, start_positions, sequence_length, sampling_rate,
                 batch_size, start_index):
        self.data, self.targets = data, targets
        self.start_positions = start_positions
        self.sequence_length, self.sampling_rate = sequence_length, sampling_rate
        self.batch_size, self.start_index = batch_size, start_index
        self._offsets = np.arange(sequence_length, dtype=np.int64) * sampling_rate

    def __len__(self):
        n = len(self.start_positions)
        if self.batch_size is None:
            return n
        return -(-n // self.batch_size)

    def _batch(self, positions):
        rows = self.start_index + positions[:, None] + self._offsets[None, :]
        x = np.asarray(self.data[rows.ravel()]).reshape(rows.shape + self.data.shape[1:])
        if self.targets is None:
            return x
        return x, np.asarray(self.targets[self.start_index + positions])

    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"TimeseriesDataset: index must be an integer, received {index!r}")
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"TimeseriesDataset: batch index {index} out of range for {n} batches")
        if self.batch_size is None:
            out = self._batch(self.start_positions[index:index + 1])
            return tuple(a[0] for a in out) if isinstance(out, tuple) else out[0]
        b = self.batch_size
        return self._batch(self.start_positions[index * b:(index + 1) * b])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return (f"<TimeseriesDataset: {len(self.start_positions)} windows of length "
                f"{self.sequence_length}, {len(self)} batches>")


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None):
    """Windows of ``data`` (and the matching ``targets``), batched.

    With ``s = start_index`` (default 0), ``e = end_index`` (default ``len(data)``),
    ``L = sequence_length``, ``r = sampling_rate``:

    - there are ``N = e - s - (L - 1)·r`` candidate starts (capped at ``len(targets)``), and the
      windows start at ``p = 0, sequence_stride, 2·sequence_stride, … < N``;
    - window ``p`` is ``data[s + p + k·r]`` for ``k = 0 … L-1``, its target ``targets[s + p]``;
    - ``shuffle`` permutes the starts with ``np.random.RandomState(seed).shuffle`` (as Keras
      does before batching), then batches of ``batch_size`` windows are cut in that order
      (``batch_size=None``: single windows).

    Keras's docstring example: ``data = arange(10)``, ``sequence_length=5``, ``sampling_rate=2``
    gives the windows ``[0 2 4 6 8]`` and ``[1 3 5 7 9]``.
    """
    data = _as_array(data, "data")
    if targets is not None:
        targets = _as_array(targets, "targets")
    for name, v in (("sequence_length", sequence_length), ("sequence_stride", sequence_stride),
                    ("sampling_rate", sampling_rate)):
        _check_int(v, name)
    _check_int(batch_size, "batch_size", allow_none=True)
    _check_int(start_index, "start_index", allow_none=True)
    _check_int(end_index, "end_index", allow_none=True)
    if data.ndim == 0:
        raise ValueError("timeseries_dataset_from_array: `data` must have a time axis, received a scalar")
    n = len(data)
    if sequence_length <= 0:
        raise ValueError(f"timeseries_dataset_from_array: `sequence_length` must be higher than 0, "
                         f"received sequence_length={sequence_length}")
    if start_index:
        if start_index < 0:
            raise ValueError(f"timeseries_dataset_from_array: `start_index` must be 0 or greater, "
                             f"received start_index={start_index}")
        if start_index >= n:
            raise ValueError(f"timeseries_dataset_from_array: `start_index` must be lower than the "
                             f"length of the data, received start_index={start_index}, for data "
                             f"of length {n}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(f"timeseries_dataset_from_array: `end_index` must be higher than "
                             f"`start_index`, received start_index={start_index}, and "
                             f"end_index={end_index}")
        if end_index >= n:
            raise ValueError(f"timeseries_dataset_from_array: `end_index` must be lower than the "
                             f"length of the data, received end_index={end_index}, for data of "
                             f"length {n}")
        if end_index <= 0:
            raise ValueError(f"timeseries_dataset_from_array: `end_index` must be higher than 0, "
                             f"received end_index={end_index}")
    if sampling_rate <= 0:
        raise ValueError(f"timeseries_dataset_from_array: `sampling_rate` must be higher than 0, "
                         f"received sampling_rate={sampling_rate}")
    if sampling_rate >= n:
        raise ValueError(f"timeseries_dataset_from_array: `sampling_rate` must be lower than the "
                         f"length of the data, received sampling_rate={sampling_rate}, for data "
                         f"of length {n}")
    if sequence_stride <= 0:
        raise ValueError(f"timeseries_dataset_from_array: `sequence_stride` must be higher than 0, "
                         f"received sequence_stride={sequence_stride}")
    if sequence_stride >= n:
        raise ValueError(f"timeseries_dataset_from_array: `sequence_stride` must be lower than the "
                         f"length of the data, received sequence_stride={sequence_stride}, for "
                         f"data of length {n}")
    if batch_size is not None and batch_size <= 0:
        raise ValueError(f"timeseries_dataset_from_array: `batch_size` must be a positive integer "
                         f"or None, received batch_size={batch_size}")
    start = int(start_index or 0)
    end = n if end_index is None else int(end_index)
    num_seqs = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        if targets.ndim == 0:
            raise ValueError("timeseries_dataset_from_array: `targets` must be an array with one "
                             "entry per time step, received a scalar")
        num_seqs = min(num_seqs, len(targets) - start)
    positions = np.arange(0, max(num_seqs, 0), sequence_stride, dtype=np.int64)
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(positions)
    return TimeseriesDataset(data, targets, positions, int(sequence_length), int(sampling_rate),
                             None if batch_size is None else int(batch_size), start)
