"""IMDB movie-review sentiment, as ``keras.datasets.imdb`` — from a pickle-free ``.npz``.

Keras's ``imdb.npz`` stores the ragged reviews as NumPy *object* arrays, which
only pickle can read (Keras uses a restricted unpickler).  axone never
unpickles data files, so it reads a **pickle-free layout** of the same data::

    x_train_tokens   int32 (total tokens,)  every training review's word indices, one after another
    x_train_lengths  int64 (n_train,)       the length of each review
    y_train          int   (n_train,)       labels 0 / 1
    x_test_tokens, x_test_lengths, y_test   the same for the test reviews

(the word indices as in Keras's file: 1 = most frequent word, before
``index_from`` is added).  Handed Keras's original file, :func:`load_data`
raises :class:`PickledDatasetError` explaining how to convert it once with
:func:`save_npz`, in an environment that can read it::

    from keras.src.datasets import npz_utils          # Keras's restricted unpickler
    from axone.datasets import imdb
    f = npz_utils.load_npz(path_to_keras_imdb_npz)
    imdb.save_npz("~/.axone/datasets/imdb_axone.npz",
                  (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"]))

and then ``imdb.load_data(path="imdb_axone.npz")``.  Everything after the
reading follows Keras's ``load_data`` exactly (same shuffling, start / OOV
characters, ``maxlen`` filter, ``num_words`` / ``skip_top`` cut — including
Keras's quirk that, with ``num_words=None``, the single highest index becomes
``oov_char``), except that ``x_train`` / ``x_test`` are always 1-D object arrays
of lists (Keras's ``np.array(..., dtype=object)`` turns equal-length reviews
into a 2-D array).
"""
import json
import os

import numpy as np

from ..fileio import FileFormatError, atomic_write, check_regular_file
from .remote import DEFAULT_TIMEOUT, fetch_dataset_file, load_npz_arrays, npz_dtypes

_INTEGERS = tuple(np.dtype(c) for c in ("u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"))

__all__ = ["load_data", "get_word_index", "read_word_index", "save_npz", "PickledDatasetError", "CONVERTED_NAME"]

CONVERTED_NAME = "imdb_axone.npz"
_LAYOUT = ("x_train_tokens", "x_train_lengths", "y_train", "x_test_tokens", "x_test_lengths",
           "y_test")


class PickledDatasetError(FileFormatError):
    """The ``.npz`` stores object arrays (pickles), which axone does not read."""


#: largest word-index JSON read (Keras's is about 1.6 MB)
MAX_WORD_INDEX_BYTES = 64 << 20


def _pack(xs):
    seqs = [np.asarray(x, dtype=np.int64).reshape(-1) for x in xs]
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    tokens = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
    if tokens.size and (tokens.min() < np.iinfo(np.int32).min or tokens.max() > np.iinfo(np.int32).max):
        raise ValueError("imdb.save_npz: word indices must fit in int32")
    return tokens.astype(np.int32), lengths


def save_npz(path, train, test):
    """Write ``(x_train, y_train), (x_test, y_test)`` (sequences of word indices, labels) in the
    pickle-free layout that :func:`load_data` reads; the write is atomic."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    arrays = {}
    for split, (x, y) in (("train", train), ("test", test)):
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x):
            raise ValueError(f"imdb.save_npz: {len(x)} {split} sequences but {len(y)} labels")
        if y.dtype.kind not in "biu":
            raise ValueError(f"imdb.save_npz: {split} labels must be integers, received {y.dtype}")
        arrays[f"x_{split}_tokens"], arrays[f"x_{split}_lengths"] = _pack(x)
        arrays[f"y_{split}"] = y
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def _conversion_help(path):
    target = os.path.join(os.path.dirname(path), CONVERTED_NAME)
    return (
        f"{path} is Keras's imdb.npz: its reviews are NumPy object arrays that only pickle can "
        f"read, and axone never unpickles data files. Convert it once to axone's pickle-free "
        f"layout: in a Python session, load it with np.load and its allow-pickle option (only "
        f"for a file you trust), then write it with\n"
        f"    axone.datasets.imdb.save_npz({target!r}, (x_train, y_train), (x_test, y_test))\n"
        f"then call imdb.load_data(path={CONVERTED_NAME!r}).")


def _read(path):
    """The two splits of a pickle-free IMDB ``.npz``: every array's header checked before it is
    read (integers only), the lengths checked against the tokens without overflow, word
    indices non-negative; every problem is an :class:`axone.fileio.FileFormatError`."""
    dtypes = npz_dtypes(path)
    if all(k in dtypes for k in _LAYOUT):
        bad = [k for k in _LAYOUT if dtypes[k].hasobject or dtypes[k].kind not in "biu"]
        if bad:
            raise FileFormatError(path, f"imdb.load_data: the arrays {bad} must hold integers")
        a = dict(zip(_LAYOUT, load_npz_arrays(path, _LAYOUT, "imdb.load_data", dtypes=_INTEGERS)))
        out = []
        for split in ("train", "test"):
            tokens, lengths = a[f"x_{split}_tokens"].reshape(-1), a[f"x_{split}_lengths"].reshape(-1)
            y = a[f"y_{split}"].reshape(-1)
            if tokens.size and int(tokens.min()) < 0:
                raise FileFormatError(path, f"imdb.load_data: x_{split}_tokens holds the negative "
                                            f"word index {int(tokens.min())}")
            # each length within [0, tokens]; then the running sum cannot wrap around without
            # decreasing somewhere, so a sum that overflows int64 is caught too
            ends = np.cumsum(lengths.astype(np.int64)) if lengths.size else np.zeros(0, np.int64)
            if len(lengths) != len(y) or (lengths.size and (
                    int(lengths.min()) < 0 or int(lengths.max()) > tokens.size
                    or (ends.size > 1 and bool((np.diff(ends) < 0).any()))
                    or int(ends[-1]) != tokens.size)) or (not lengths.size and tokens.size):
                raise FileFormatError(path, f"imdb.load_data: x_{split}_lengths does not match "
                                            f"x_{split}_tokens ({tokens.size} tokens) or y_{split} "
                                            f"({len(y)} labels)")
            out.append((np.split(tokens.astype(np.int64), ends[:-1]) if len(lengths) else [], y))
        return out
    if any(dtypes.get(k, np.dtype(np.int8)).hasobject for k in ("x_train", "x_test")):
        raise PickledDatasetError(path, _conversion_help(path))
    raise FileFormatError(path, f"imdb.load_data: holds {sorted(dtypes)}, not the pickle-free "
                                f"IMDB layout {list(_LAYOUT)}")


def _remove_long_seq(maxlen, seqs, labels):
    keep = [i for i, x in enumerate(seqs) if len(x) < maxlen]
    return [seqs[i] for i in keep], labels[np.asarray(keep, dtype=np.int64)]


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1,
              oov_char=2, index_from=3, *, base_url=None, checksums=None, cache_dir=None,
              timeout=DEFAULT_TIMEOUT):
    """Load IMDB: ``(x_train, y_train), (x_test, y_test)`` — 25000 + 25000 reviews as lists of word
    indices (object arrays) and labels 0 / 1, processed as Keras does:

    1. both splits are shuffled with ``np.random.RandomState(seed)`` (train first, then test);
    2. each word index w becomes ``w + index_from``, and ``start_char`` (if not None) is put first;
    3. with ``maxlen``, only the sequences strictly shorter than ``maxlen`` are kept;
    4. indices outside ``[skip_top, num_words)`` become ``oov_char`` (dropped when it is None);
       ``num_words=None`` means the largest index of the data.

    ``path`` must be an ``.npz`` in axone's pickle-free layout (see the module
    docstring and :func:`save_npz`); Keras's own ``imdb.npz`` (downloaded by
    default, checked against Keras's SHA-256) raises :class:`PickledDatasetError`
    with the one-off conversion to run.  ``base_url``, ``checksums`` and
    ``cache_dir`` work as in :func:`axone.datasets.mnist.load_data` (a file not
    named ``imdb.npz`` is not checksummed unless ``checksums`` says so).
    """
    path = fetch_dataset_file("imdb.npz", path, base_url=base_url, checksums=checksums,
                              cache_dir=cache_dir, timeout=timeout)
    (x_train, labels_train), (x_test, labels_test) = _read(path)

    rng = np.random.RandomState(seed)
    indices = np.arange(len(x_train))
    rng.shuffle(indices)
    x_train = [x_train[i] for i in indices]
    labels_train = labels_train[indices]
    indices = np.arange(len(x_test))
    rng.shuffle(indices)
    x_test = [x_test[i] for i in indices]
    labels_test = labels_test[indices]

    def shift(x):
        x = x + index_from if index_from else x
        if start_char is not None:
            x = np.concatenate([np.array([start_char], dtype=np.int64), x])
        return x

    x_train = [shift(x) for x in x_train]
    x_test = [shift(x) for x in x_test]

    if maxlen:
        x_train, labels_train = _remove_long_seq(maxlen, x_train, labels_train)
        x_test, labels_test = _remove_long_seq(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no "
                             f"sequence was kept. Increase maxlen.")

    xs = x_train + x_test
    labels = np.concatenate([labels_train, labels_test])
    if not num_words:
        num_words = max((int(x.max()) for x in xs if len(x)), default=0)
    out = []
    for x in xs:
        keep = (x >= skip_top) & (x < num_words)
        if oov_char is not None:
            x = np.where(keep, x, oov_char)
        else:
            x = x[keep]
        out.append(x.tolist())

    def as_object(seqs):
        arr = np.empty(len(seqs), dtype=object)
        for i, seq in enumerate(seqs):
            arr[i] = seq
        return arr

    idx = len(x_train)
    return (as_object(out[:idx]), labels[:idx]), (as_object(out[idx:]), labels[idx:])


def get_word_index(path="imdb_word_index.json", *, base_url=None, checksums=None, cache_dir=None,
                   timeout=DEFAULT_TIMEOUT):
    """``{word: index}`` of the IMDB reviews (index 1 = most frequent), Keras's
    ``imdb_word_index.json`` (plain JSON), downloaded once and checked against Keras's MD5."""
    path = fetch_dataset_file("imdb_word_index.json", path, base_url=base_url, checksums=checksums,
                              cache_dir=cache_dir, timeout=timeout)
    return read_word_index(path)


def read_word_index(path):
    """``{word: index}`` from a word-index JSON file: a regular file of bounded size holding one
    object of string keys and non-negative integer values, else a FileFormatError."""
    path = check_regular_file(path, "word index JSON file")
    size = os.path.getsize(path)
    if size > MAX_WORD_INDEX_BYTES:
        raise FileFormatError(path, f"is {size} bytes; a word index may be at most "
                                    f"{MAX_WORD_INDEX_BYTES}")
    try:
        with open(path, "rb") as f:
            index = json.loads(f.read(MAX_WORD_INDEX_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError, UnicodeError, RecursionError) as e:
        raise FileFormatError(path, f"is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(index, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in index.items()):
        raise FileFormatError(path, "is not a word index: expected one JSON object mapping words "
                                    "to non-negative integers")
    return index
