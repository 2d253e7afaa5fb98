"""Reuters newswire topics, as ``keras.datasets.reuters`` — from a pickle-free ``.npz``.

Keras's ``reuters.npz`` stores the ragged newswires as NumPy object arrays, which only pickle can
read; axone never unpickles data files.  As for IMDB (:mod:`axone.datasets.imdb`), it reads a
pickle-free layout of the same data::

    x_tokens   int32 (total tokens,)   every newswire's word indices, one after another
    x_lengths  int64 (n,)              the length of each newswire
    y          int   (n,)              topics 0..45

written once from Keras's file with :func:`save_npz`.  Everything after the reading follows
Keras's ``load_data``: one shuffle with ``np.random.RandomState(seed)``, ``start_char`` and
``index_from``, the ``maxlen`` filter, the ``num_words`` / ``skip_top`` cut, then the first
``int(n · (1 − test_split))`` newswires for training.
"""
import os

import numpy as np

from ..fileio import FileFormatError, atomic_write
from . import imdb
from .imdb import PickledDatasetError
from .remote import DEFAULT_TIMEOUT, fetch_dataset_file, load_npz_arrays, npz_dtypes

__all__ = ["load_data", "get_word_index", "get_label_names", "save_npz", "CONVERTED_NAME"]

CONVERTED_NAME = "reuters_axone.npz"
_LAYOUT = ("x_tokens", "x_lengths", "y")
_INTEGERS = tuple(np.dtype(c) for c in ("u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8"))
LABEL_NAMES = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply",
    "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi",
    "money-fx", "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin",
    "strategic-metal", "livestock", "retail", "ipi", "iron-steel", "rubber", "heat", "jobs", "lei",
    "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog", "lead")


def get_label_names():
    """The 46 topic names, in label order (Keras's ``get_label_names``)."""
    return LABEL_NAMES


def save_npz(path, x, y):
    """Write the newswires ``x`` (sequences of word indices) and topics ``y`` in the pickle-free
    layout :func:`load_data` reads (atomic write)."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"reuters.save_npz: {len(x)} sequences but {len(y)} labels")
    if y.dtype.kind not in "biu":
        raise ValueError(f"reuters.save_npz: labels must be integers, received {y.dtype}")
    tokens, lengths = imdb._pack(x)
    with atomic_write(path) as f:
        np.savez(f, x_tokens=tokens, x_lengths=lengths, y=y)
    return path


def _read(path):
    dtypes = npz_dtypes(path)
    if all(k in dtypes for k in _LAYOUT):
        tokens, lengths, y = (a.reshape(-1) for a in load_npz_arrays(
            path, _LAYOUT, "reuters.load_data", dtypes=_INTEGERS))
        if tokens.size and int(tokens.min()) < 0:
            raise FileFormatError(path, f"reuters.load_data: x_tokens holds the negative word "
                                        f"index {int(tokens.min())}")
        ends = np.cumsum(lengths.astype(np.int64)) if lengths.size else np.zeros(0, np.int64)
        if len(lengths) != len(y) or (lengths.size and (
                int(lengths.min()) < 0 or int(lengths.max()) > tokens.size
                or int(ends[-1]) != tokens.size)) or (not lengths.size and tokens.size):
            raise FileFormatError(path, f"reuters.load_data: x_lengths does not match x_tokens "
                                        f"({tokens.size} tokens) or y ({len(y)} labels)")
        if y.size and (int(y.min()) < 0 or int(y.max()) >= len(LABEL_NAMES)):
            raise FileFormatError(path, f"reuters.load_data: topics must lie in 0..45, found "
                                        f"{int(y.min())}..{int(y.max())}")
        return np.split(tokens.astype(np.int64), ends[:-1]) if len(lengths) else [], y
    if dtypes.get("x", np.dtype(np.int8)).hasobject:
        target = os.path.join(os.path.dirname(path), CONVERTED_NAME)
        raise PickledDatasetError(path, (
            f"{path} is Keras's reuters.npz: its newswires are NumPy object arrays that only "
            f"pickle can read, and axone never unpickles data files. Convert it once: load it "
            f"with np.load and its allow-pickle option (only for a file you trust), then write "
            f"it with\n    axone.datasets.reuters.save_npz({target!r}, x, y)\nthen call "
            f"reuters.load_data(path={CONVERTED_NAME!r})."))
    raise FileFormatError(path, f"reuters.load_data: holds {sorted(dtypes)}, not the pickle-free "
                                f"layout {list(_LAYOUT)}")


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2,
              seed=113, start_char=1, oov_char=2, index_from=3, *, base_url=None, checksums=None,
              cache_dir=None, timeout=DEFAULT_TIMEOUT):
    """``(x_train, y_train), (x_test, y_test)``: 11,228 newswires as lists of word indices
    (object arrays) and their topics 0..45, processed exactly as Keras's ``load_data``."""
    path = fetch_dataset_file("reuters.npz", path, base_url=base_url, checksums=checksums,
                              cache_dir=cache_dir, timeout=timeout)
    xs, labels = _read(path)
    rng = np.random.RandomState(seed)
    idx = np.arange(len(xs))
    rng.shuffle(idx)
    xs = [xs[i].tolist() for i in idx]
    labels = labels[idx]
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    elif index_from:
        xs = [[w + index_from for w in x] for x in xs]
    if maxlen:
        keep = [i for i, x in enumerate(xs) if len(x) < maxlen]
        xs, labels = [xs[i] for i in keep], labels[np.asarray(keep, dtype=np.int64)]
    if not num_words:
        num_words = max(max(x) for x in xs if x)
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
    cut = int(len(xs) * (1 - test_split))

    def as_object(seqs):
        arr = np.empty(len(seqs), dtype=object)
        for i, s in enumerate(seqs):
            arr[i] = s
        return arr
    return (as_object(xs[:cut]), np.array(labels[:cut])), (as_object(xs[cut:]),
                                                          np.array(labels[cut:]))


def get_word_index(path="reuters_word_index.json", *, base_url=None, checksums=None,
                   cache_dir=None, timeout=DEFAULT_TIMEOUT):
    """``{word: index}`` (index 1 = most frequent), Keras's ``reuters_word_index.json``."""
    path = fetch_dataset_file("reuters_word_index.json", path, base_url=base_url,
                              checksums=checksums, cache_dir=cache_dir, timeout=timeout)
    return imdb.read_word_index(path)
