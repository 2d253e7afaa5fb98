"""TextVectorization: strings → integer token sequences (or multi-hot / count / TF-IDF vectors).

Pure Python/NumPy re-implementation of ``keras.layers.TextVectorization``
(Keras 3's runs on TensorFlow; this one needs no TensorFlow).  It reproduces
Keras's processing step by step:

1. **standardize** — ``"lower_and_strip_punctuation"`` (default), ``"lower"``,
   ``"strip_punctuation"``, ``None`` or a callable.  As in Keras (which uses
   ``tf.strings.lower`` without an encoding), lowercasing is *ASCII only*: "É"
   stays "É".  Punctuation is Keras's regex class
   ``[!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~']``, i.e. the 32 ASCII characters of
   :data:`string.punctuation`.  A callable receives a NumPy array of unicode
   strings (what Keras gives it on its non-TensorFlow backends) and returns an
   array of the same shape.
2. **split** — ``"whitespace"`` (default: runs of ASCII whitespace
   `` \\t\\n\\v\\f\\r``, leading/trailing ignored, like ``tf.strings.split``),
   ``"character"`` (unicode code points), ``None`` (each string is one token)
   or a callable receiving the 1-D array of strings and returning one sequence
   of tokens per string.
3. **ngrams** — ``None``, an integer *n* (all widths 1..n) or a tuple of
   widths; for each row, the n-grams of each width in order, joined by a space
   (``tf.strings.ngrams``: no padding, a row shorter than a width gives none of
   that width).
4. **index** — the vocabulary.  In ``"int"`` mode index 0 is the padding /
   mask token ``""`` and index 1 the OOV token ``"[UNK]"``; learned tokens
   start at 2.  In the other modes there is no padding index: ``"[UNK]"`` is 0
   and tokens start at 1.  ``adapt`` counts every token, drops ``""`` and
   ``"[UNK]"``, sorts by descending count with ties broken by the token's UTF-8
   bytes in *descending* order (Keras's ``np.lexsort((tokens, counts))[::-1]``)
   and keeps the first ``max_tokens - 2`` (``"int"``) or ``max_tokens - 1``.
5. **output** — ``"int"``: an int64 Tensor (batch, length) right-padded with 0
   to the longest row, or padded / truncated at the end to
   ``output_sequence_length``; ``"multi_hot"``, ``"count"``, ``"tf_idf"``: a
   float Tensor (batch, depth), depth = ``vocabulary_size()`` or ``max_tokens``
   with ``pad_to_max_tokens=True``.  TF-IDF weights are
   ``log(1 + n_docs / (1 + doc_count))``, the OOV slot getting their mean.

Differences from Keras: the layer works on Python/NumPy strings, eagerly, as a
preprocessing step (calling it on a symbolic ``Input`` raises — Keras too
supports it inside a model only on TensorFlow); ``sparse=True`` and
``ragged=True`` raise, as in Keras on a non-TensorFlow backend;
``"multi_hot"``/``"count"`` outputs are ``floatx`` (Keras's declared output
spec) where eager Keras hands back int64; ``get_config`` carries the adapted
vocabulary (Keras stores it as a separate asset file).
"""
import collections
import os
import re
import string

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor
from .base import Layer, _is_symbolic

__all__ = ["TextVectorization"]

_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")
_OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
_MASK, _OOV = "", "[UNK]"

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_DROP_PUNCT = str.maketrans("", "", string.punctuation)
_WHITESPACE_TOKENS = re.compile(r"[^ \t\n\v\f\r]+")


def _positive_int_or_none(v, name):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"TextVectorization: {name} must be None or a positive integer, received {v!r}")
    return int(v)


class TextVectorization(Layer):
    """Map strings to token indices (or bag-of-words vectors), as ``keras.layers.TextVectorization``.

    Args:
        max_tokens: maximum vocabulary size, the padding and OOV tokens included
            (``None``: unlimited).
        standardize: ``"lower_and_strip_punctuation"``, ``"lower"``,
            ``"strip_punctuation"``, ``None`` or a callable (array → array).
        split: ``"whitespace"``, ``"character"``, ``None`` or a callable.
        ngrams: ``None``, an int n (widths 1..n) or a tuple of widths.
        output_mode: ``"int"``, ``"multi_hot"`` (alias ``"binary"``), ``"count"``
            or ``"tf_idf"`` (alias ``"tf-idf"``).
        output_sequence_length: ``"int"`` mode only: pad / truncate every row to
            this length.
        pad_to_max_tokens: non-int modes: make the feature axis ``max_tokens`` long.
        vocabulary: list / tuple / 1-D array of tokens, or the path of a text
            file with one token per line; the layer then needs no ``adapt``.
            A leading ``["", "[UNK]"]`` (``["[UNK]"]`` in non-int modes) is
            recognised and skipped.
        idf_weights: ``"tf_idf"`` with a given vocabulary: one weight per token.
        encoding: how byte strings are decoded (default ``"utf-8"``).

    Example:
        >>> layer = TextVectorization(max_tokens=5000, output_sequence_length=4)
        >>> layer.adapt(["foo bar", "bar baz", "baz bada boom"])
        >>> layer([["foo qux bar"], ["qux baz"]]).numpy()
        array([[4, 1, 3, 0],
               [1, 2, 0, 0]])
    """

    _autocast = False

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace",
                 ngrams=None, output_mode="int", output_sequence_length=None, pad_to_max_tokens=False,
                 vocabulary=None, idf_weights=None, sparse=False, ragged=False, encoding="utf-8",
                 name=None, **kwargs):
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        if not (standardize is None or callable(standardize) or standardize in _STANDARDIZE):
            raise ValueError(f"TextVectorization: standardize must be None, a callable or one of "
                             f"{_STANDARDIZE}, received {standardize!r}")
        if not (split is None or callable(split) or split in _SPLIT):
            raise ValueError(f"TextVectorization: split must be None, a callable or one of {_SPLIT}, "
                             f"received {split!r}")
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode == "tf-idf":
            output_mode = "tf_idf"
        if output_mode not in _OUTPUT_MODES:
            raise ValueError(f"TextVectorization: output_mode must be one of {_OUTPUT_MODES}, "
                             f"received {output_mode!r}")
        if isinstance(ngrams, (list, tuple)):
            widths = tuple(ngrams)
            if not widths or not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool)
                                     and w > 0 for w in widths):
                raise ValueError(f"TextVectorization: ngrams must be None, a positive integer, or a "
                                 f"tuple of positive integers. Received: ngrams={ngrams!r}")
            self._ngrams = tuple(int(w) for w in widths)
        elif ngrams is None:
            self._ngrams = None
        elif isinstance(ngrams, (int, np.integer)) and not isinstance(ngrams, bool) and ngrams > 0:
            self._ngrams = tuple(range(1, int(ngrams) + 1))
        else:
            raise ValueError(f"TextVectorization: ngrams must be None, a positive integer, or a "
                             f"tuple of positive integers. Received: ngrams={ngrams!r}")
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError("TextVectorization: `output_sequence_length` must not be set if "
                             f"`output_mode` is not 'int'. Received "
                             f"output_sequence_length={output_sequence_length}.")
        if sparse:
            raise ValueError("TextVectorization: `sparse=True` is not supported by axone (Keras "
                             "supports it only with the TensorFlow backend)")
        if ragged:
            raise ValueError("TextVectorization: `ragged=True` is not supported by axone (Keras "
                             "supports it only with the TensorFlow backend)")
        self.max_tokens = _positive_int_or_none(max_tokens, "max_tokens")
        self.output_sequence_length = _positive_int_or_none(output_sequence_length,
                                                            "output_sequence_length")
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self.output_mode = output_mode
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.encoding = encoding
        self._has_input_vocabulary = bool(has_input_vocabulary)
        self._input_vocabulary = vocabulary if not isinstance(vocabulary, (str, os.PathLike)) else None
        self._tokens = []          # learned tokens, without the special ones
        self._index = {}
        self._idf = None           # full-depth idf weights (tf_idf)
        self.reset_state()
        if output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError("TextVectorization: when specifying the `vocabulary` argument in TF-IDF "
                             "output mode, the `idf_weights` argument must also be provided.")
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights=idf_weights)
        self.built = True

    # ------------------------------------------------------------ indices
    def _token_start(self):
        return 2 if self.output_mode == "int" else 1

    def _oov_index(self):
        return 1 if self.output_mode == "int" else 0

    def _depth(self):
        if self.pad_to_max_tokens and self.max_tokens is not None:
            return self.max_tokens
        return self.vocabulary_size()

    # ---------------------------------------------------------- vocabulary
    def vocabulary_size(self):
        """Size of the vocabulary, the padding and OOV tokens included."""
        return len(self._tokens) + self._token_start()

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary, by index: ``["", "[UNK]", most frequent, …]`` in ``"int"`` mode."""
        special = [_MASK, _OOV] if self.output_mode == "int" else [_OOV]
        return (special if include_special_tokens else []) + list(self._tokens)

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (and TF-IDF weights) directly instead of ``adapt``.

        ``vocabulary`` is a list / tuple / 1-D array of strings or the path of a
        text file with one token per line.  It may start with the special tokens
        (``["", "[UNK]"]`` in ``"int"`` mode, ``["[UNK]"]`` otherwise); they are
        then skipped.
        """
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError("TextVectorization: `idf_weights` must be set if output_mode is 'tf_idf'.")
        elif idf_weights is not None:
            raise ValueError("TextVectorization: `idf_weights` should only be set if output_mode is "
                             f"'tf_idf'. Received: output_mode={self.output_mode!r}")
        if isinstance(vocabulary, (str, os.PathLike)):
            path = os.fspath(vocabulary)
            if not os.path.isfile(path):
                raise ValueError(f"TextVectorization: vocabulary file {path} does not exist.")
            with open(path, encoding=self.encoding) as f:
                vocabulary = f.read().splitlines()
            while vocabulary and vocabulary[-1] == "":
                vocabulary.pop()
        vocab = [self._as_text(t) for t in np.asarray(vocabulary, dtype=object).reshape(-1)] \
            if not isinstance(vocabulary, (list, tuple)) else [self._as_text(t) for t in vocabulary]
        if not vocab:
            raise ValueError(f"TextVectorization: cannot set an empty vocabulary. "
                             f"Received: vocabulary={vocabulary!r}")
        start = self._token_start()
        special = self.get_vocabulary()[:start]
        found_special = vocab[:start] == special
        tokens = vocab[start:] if found_special else vocab
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError("TextVectorization: the passed vocabulary has at least one repeated "
                             f"term. Please uniquify your dataset. The repeated terms are: {repeated}")
        if _MASK in tokens:
            raise ValueError("TextVectorization: found the reserved mask token '' at an unexpected "
                             "location in `vocabulary`. Either remove the mask and OOV tokens, or "
                             f"include them only at the start, in precisely this order: {special}.")
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError("TextVectorization: attempted to set a vocabulary larger than the maximum "
                             f"vocab size. Received vocabulary size is {start + len(tokens)}; "
                             f"`max_tokens` is {self.max_tokens}.")
        if idf_weights is not None:
            w = np.asarray(idf_weights.data if isinstance(idf_weights, Tensor) else idf_weights,
                           dtype=np.float64)
            if w.ndim != 1 or len(w) != len(vocab):
                raise ValueError("TextVectorization: `idf_weights` must be a 1-D array as long as the "
                                 f"vocabulary ({len(vocab)}), received shape {w.shape}")
            if not found_special:
                w = np.concatenate([np.full(start, np.mean(w)), w])
            self._idf = self._pad_idf(w)
        self._set_tokens(tokens)

    def _pad_idf(self, w):
        if self.pad_to_max_tokens and self.max_tokens is not None and len(w) < self.max_tokens:
            w = np.concatenate([w, np.zeros(self.max_tokens - len(w))])
        return w.astype(backend.floatx())

    def _set_tokens(self, tokens):
        self._tokens = list(tokens)
        start = self._token_start()
        self._index = {t: i + start for i, t in enumerate(self._tokens)}

    # ---------------------------------------------------------------- adapt
    def reset_state(self):
        """Forget the token counts gathered by ``update_state``."""
        self._counts = collections.Counter()
        self._doc_counts = collections.Counter()
        self._num_documents = 0

    def update_state(self, data):
        """Count the tokens of one batch of strings (``adapt`` = reset, update per batch, finalize)."""
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer {self.name!r} after setting a static vocabulary via "
                             "the `vocabulary` argument.")
        rows = self._preprocess(data)
        for row in rows:
            self._counts.update(row)
        if self.output_mode == "tf_idf":
            for row in rows:
                self._doc_counts.update(set(row))
            self._num_documents += len(rows)

    def finalize_state(self):
        """Build the vocabulary from the counts: by descending count, ties by descending token bytes."""
        if self._has_input_vocabulary or not self._counts:
            return
        counts = dict(self._counts)
        counts.pop(_MASK, None)
        counts.pop(_OOV, None)
        order = sorted(counts, key=lambda t: (counts[t], t.encode("utf-8")), reverse=True)
        if self.max_tokens is not None:
            order = order[:max(self.max_tokens - self._token_start(), 0)]
        self._set_tokens(order)
        if self.output_mode == "tf_idf":
            df = np.array([self._doc_counts[t] for t in order], dtype=np.float64)
            idf = np.log1p(self._num_documents / (1.0 + df))
            front = np.mean(idf) if len(idf) else 0.0
            self._idf = self._pad_idf(np.concatenate([np.full(self._token_start(), front), idf]))

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary from ``data``: a list / tuple / array of strings, or an iterable of
        such batches (a generator…), of which at most ``steps`` are read."""
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer {self.name!r} after setting a static vocabulary via "
                             "the `vocabulary` argument.")
        self.reset_state()
        if hasattr(data, "to_numpy"):
            data = data.to_numpy()
        if isinstance(data, (list, tuple, np.ndarray, str, bytes)):
            arr = self._to_strings(data)
            if arr.ndim == 1:
                arr = arr[:, None]
            if batch_size is None:
                self.update_state(arr)
            else:
                bs = _positive_int_or_none(batch_size, "batch_size")
                for i in range(0, len(arr), bs):
                    self.update_state(arr[i:i + bs])
        elif hasattr(data, "__iter__"):
            for i, batch in enumerate(data):
                if steps is not None and i >= steps:
                    break
                self.update_state(batch)
        else:
            raise TypeError(f"TextVectorization.adapt: expected a list or array of strings or an "
                            f"iterable of batches of strings, received {type(data).__name__}")
        self.finalize_state()

    # ------------------------------------------------------- preprocessing
    def _as_text(self, t):
        if isinstance(t, bytes):
            return t.decode(self.encoding)
        if isinstance(t, (str, np.str_)):
            return str(t)
        raise TypeError(f"TextVectorization {self.name!r}: expected strings, received "
                        f"{type(t).__name__} {t!r}")

    def _to_strings(self, x):
        """Any string input as an object array of Python ``str``."""
        if isinstance(x, Tensor):
            raise TypeError(f"TextVectorization {self.name!r}: expected strings, received a numeric "
                            f"Tensor")
        if hasattr(x, "to_numpy"):
            x = x.to_numpy()
        if isinstance(x, (str, bytes)):
            return np.array(self._as_text(x), dtype=object)
        arr = np.asarray(x, dtype=object) if not isinstance(x, np.ndarray) else x
        if arr.dtype.kind in "US":
            arr = arr.astype(object)
        if arr.dtype.kind != "O":
            raise TypeError(f"TextVectorization {self.name!r}: expected strings, received an array of "
                            f"dtype {arr.dtype}")
        flat = [self._as_text(t) for t in arr.reshape(-1)]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(arr.shape)

    def _standardized(self, arr):
        std = self.standardize
        if std is None:
            return arr
        if callable(std):
            res = std(arr.astype(str))
            res = self._to_strings(res)
            if res.shape != arr.shape:
                raise ValueError(f"TextVectorization {self.name!r}: the standardize callable must return "
                                 f"an array of the shape it received {arr.shape}, returned {res.shape}")
            return res
        flat = arr.reshape(-1)
        out = np.empty(len(flat), dtype=object)
        for i, s in enumerate(flat):
            if std != "strip_punctuation":
                s = s.translate(_ASCII_LOWER)
            if std != "lower":
                s = s.translate(_DROP_PUNCT)
            out[i] = s
        return out.reshape(arr.shape)

    def _split_rows(self, arr):
        """The token rows of standardized strings: a list (one per string) of lists of tokens."""
        if self.split is None:
            if arr.ndim == 0:
                return [[arr.item()]]
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2:
                raise ValueError(f"TextVectorization {self.name!r}: with split=None expected inputs of "
                                 f"rank 1 or 2, received shape {arr.shape}")
            return [list(r) for r in arr]
        if arr.ndim > 1:
            if arr.shape[-1] != 1 or arr.ndim > 2:
                raise ValueError(
                    "When using `TextVectorization` to tokenize strings, the input rank must be 1 or "
                    f"the last shape dimension must be 1. Received: inputs.shape={arr.shape} with "
                    f"rank={arr.ndim}")
            arr = arr[:, 0]
        strings = [arr.item()] if arr.ndim == 0 else list(arr)
        if self.split == "whitespace":
            return [_WHITESPACE_TOKENS.findall(s) for s in strings]
        if self.split == "character":
            return [list(s) for s in strings]
        res = self.split(np.asarray(strings, dtype=str) if strings else np.zeros(0, dtype=str))
        if hasattr(res, "to_numpy"):
            res = res.to_numpy()
        rows = [[self._as_text(t) for t in np.asarray(r, dtype=object).reshape(-1)] for r in res]
        if len(rows) != len(strings):
            raise ValueError(f"TextVectorization {self.name!r}: the split callable must return one "
                             f"sequence of tokens per string ({len(strings)}), returned {len(rows)}")
        return rows

    def _ngram_rows(self, rows):
        if self._ngrams is None:
            return rows
        out = []
        for r in rows:
            grams = []
            for w in self._ngrams:
                grams.extend(" ".join(r[i:i + w]) for i in range(len(r) - w + 1))
            out.append(grams)
        return out

    def _preprocess(self, inputs):
        arr = self._standardized(self._to_strings(inputs))
        return self._ngram_rows(self._split_rows(arr))

    # ---------------------------------------------------------------- call
    def __call__(self, inputs, *args, training=None, **kwargs):
        if _is_symbolic(inputs):
            raise TypeError(
                f"TextVectorization {self.name!r} works on Python / NumPy strings, not on a symbolic "
                "Input: use it as a preprocessing step outside the model (vectorize the texts, then "
                "feed the integer arrays to the model), as Keras recommends for non-TensorFlow backends")
        return self.call(inputs)

    def call(self, inputs):
        scalar = isinstance(inputs, (str, bytes)) or (isinstance(inputs, np.ndarray) and inputs.ndim == 0)
        rows = self._preprocess(inputs)
        if self.output_mode == "int":
            oov, index = self._oov_index(), self._index
            seqs = [[0 if t == _MASK else index.get(t, oov) for t in r] for r in rows]
            length = self.output_sequence_length
            if length is None:
                length = max((len(s) for s in seqs), default=0)
            out = np.zeros((len(seqs), length), dtype=np.int64)
            for i, s in enumerate(seqs):
                s = s[:length]
                out[i, :len(s)] = s
            if scalar and self.split is not None:
                out = out[0]
            return Tensor(out)
        depth = self._depth()
        out = np.zeros((len(rows), depth), dtype=backend.floatx())
        oov, index = self._oov_index(), self._index
        for i, r in enumerate(rows):
            idx = np.array([index.get(t, oov) for t in r if t != _MASK], dtype=np.int64)
            idx = idx[idx < depth]
            if self.output_mode == "multi_hot":
                out[i, idx] = 1
            else:
                np.add.at(out[i], idx, 1)
        if self.output_mode == "tf_idf":
            if self._idf is None:
                raise ValueError(f"TextVectorization {self.name!r}: output_mode 'tf_idf' needs idf "
                                 "weights: call adapt() or set_vocabulary(vocabulary, idf_weights)")
            out *= self._idf[:depth].astype(out.dtype)
        return Tensor(out)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return (input_shape[0], self.output_sequence_length)
        return (input_shape[0], self._depth())

    def _output_dtype(self):
        return "int64" if self.output_mode == "int" else backend.floatx()

    # --------------------------------------------------------------- config
    def get_config(self):
        cfg = super().get_config()
        vocab = self._input_vocabulary
        if isinstance(vocab, np.ndarray):
            vocab = vocab.tolist()
        elif vocab is not None:
            vocab = list(vocab)
        idf = None
        if vocab is None and self._tokens:
            vocab = list(self._tokens)
        if self.output_mode == "tf_idf" and self._idf is not None and vocab is not None:
            start = self._token_start()
            idf = self._idf[start:start + len(self._tokens)].tolist()
            vocab = list(self._tokens)
        cfg.update({"max_tokens": self.max_tokens, "standardize": self.standardize,
                    "split": self.split, "ngrams": self.ngrams, "output_mode": self.output_mode,
                    "output_sequence_length": self.output_sequence_length,
                    "pad_to_max_tokens": self.pad_to_max_tokens, "sparse": False, "ragged": False,
                    "vocabulary": vocab, "idf_weights": idf, "encoding": self.encoding,
                    "vocabulary_size": self.vocabulary_size()})
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("ngrams"), list):
            config["ngrams"] = tuple(config["ngrams"])
        return cls(**config)
