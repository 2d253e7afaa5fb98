"""Padding lists of sequences into one array, as ``keras.utils.pad_sequences``."""
import numpy as np

__all__ = ["pad_sequences"]


def _is_string_dtype(dtype):
    try:
        return np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    except TypeError:
        return False


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (or truncate) ``sequences`` to one array of shape ``(len(sequences), maxlen, *feature)``.

    For sequence ``s`` of length ``n`` and output length ``T`` (``maxlen``, or the longest
    length when ``maxlen`` is None):

    - ``truncating="pre"`` keeps ``s[-T:]``, ``"post"`` keeps ``s[:T]``;
    - ``padding="pre"`` writes the kept part at the end of the row, ``"post"`` at its start;
    - every other position holds ``value``.

    ``pad_sequences([[1], [2, 3]])`` → ``[[0, 1], [2, 3]]`` (int32). Items may be arrays of
    one common shape (the feature shape). For strings use ``dtype=object`` (or a NumPy string
    dtype) with a string ``value``.
    """
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise ValueError(f"pad_sequences: `sequences` must be a list of sequences, received "
                         f"{type(sequences).__name__}")
    if padding not in ("pre", "post"):
        raise ValueError(f"pad_sequences: `padding` must be 'pre' or 'post', received {padding!r}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"pad_sequences: `truncating` must be 'pre' or 'post', received {truncating!r}")
    try:
        np.dtype(dtype)
    except TypeError:
        raise TypeError(f"pad_sequences: `dtype` must be a NumPy dtype, received {dtype!r}") from None
    lengths, sample_shape, found = [], (), False
    for i, s in enumerate(sequences):
        if isinstance(s, (str, bytes)) or not hasattr(s, "__len__"):
            raise ValueError(f"pad_sequences: `sequences` must be a list of sequences; the item at "
                             f"position {i} is {type(s).__name__} {s!r}")
        lengths.append(len(s))
        if not found and len(s):
            sample_shape = np.asarray(s).shape[1:]
            found = True
    if maxlen is None:
        if not lengths:
            raise ValueError("pad_sequences: `sequences` is empty and no `maxlen` was given, so the "
                             "output length is unknown")
        maxlen = max(lengths)
    elif isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"pad_sequences: `maxlen` must be a non-negative integer or None, "
                         f"received {maxlen!r}")
    maxlen = int(maxlen)
    if isinstance(value, str) and np.dtype(dtype) != object and not _is_string_dtype(dtype):
        raise ValueError(f"pad_sequences: `dtype` {dtype} is not compatible with `value`'s type "
                         f"{type(value)}; set dtype=object for variable-length strings")
    try:
        x = np.full((len(lengths), maxlen) + sample_shape, value, dtype=dtype)
    except (ValueError, TypeError) as e:
        raise ValueError(f"pad_sequences: the padding value {value!r} cannot be stored as dtype "
                         f"{dtype}: {e}") from None
    if maxlen == 0:
        return x
    for i, s in enumerate(sequences):
        if not len(s):
            continue
        kept = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        try:
            kept = np.asarray(kept, dtype=dtype)
        except (ValueError, TypeError) as e:
            raise ValueError(f"pad_sequences: the sequence at position {i} cannot be converted to "
                             f"dtype {dtype}: {e}") from None
        if kept.shape[1:] != sample_shape:
            raise ValueError(f"pad_sequences: shape of sample {kept.shape[1:]} of the sequence at "
                             f"position {i} is different from the expected shape {sample_shape}")
        if padding == "post":
            x[i, :len(kept)] = kept
        else:
            x[i, -len(kept):] = kept
    return x
