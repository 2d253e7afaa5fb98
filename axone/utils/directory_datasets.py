"""Datasets of files in class folders, as ``keras.utils.image_dataset_from_directory``,
``text_dataset_from_directory`` and ``audio_dataset_from_directory``.

The files are listed (and shuffled) as Keras lists them: class sub-folders in sorted order (or
``class_names``' order), files walked in sorted order, one global shuffle with
``np.random.RandomState(seed)``, then the last ``validation_split`` of them for validation.
The result is a :class:`FileDataset`: a ``PyDataset`` whose batches are read from disk one at a
time (never the whole folder in memory), re-iterable each epoch, with ``class_names``,
``file_paths`` and ``map(fn)``, which ``fit`` / ``evaluate`` / ``predict`` accept.

Differences from Keras (which builds a ``tf.data.Dataset``): with ``shuffle=True`` the order of
the files is reshuffled every epoch by the batch order ``fit`` draws and within the listing made
once (Keras reshuffles through a buffer of ``8 × batch_size`` files); images are decoded with
Pillow and resized with axone's ``Resizing`` arithmetic, so values after a resize can differ
from TensorFlow's decoder and resizer by interpolation rounding.
"""
import os

import numpy as np

from .. import backend
from ..models.data_adapters import PyDataset

__all__ = ["image_dataset_from_directory", "text_dataset_from_directory",
           "audio_dataset_from_directory", "FileDataset", "index_directory", "read_wav"]

ALLOWLIST_IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
ALLOWLIST_TEXT_FORMATS = (".txt",)
ALLOWLIST_AUDIO_FORMATS = (".wav",)


def _walk_files(directory, follow_links, formats):
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda r: r[0]):
        for fname in sorted(files):
            if fname.lower().endswith(formats):
                yield root, fname


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None,
                    follow_links=False, verbose=True, who="index_directory"):
    """``(file_paths, labels, class_names)`` of the files under ``directory`` (Keras's listing)."""
    if not os.path.isdir(directory):
        raise ValueError(f"{who}: directory {directory!r} does not exist or is not a folder")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names).issubset(subdirs):
                raise ValueError(f"{who}: the `class_names` passed did not match the names of the "
                                 f"subdirectories of the target directory. Expected: {subdirs} "
                                 f"(or a subset of it), but received: class_names={class_names}")
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise ValueError(f"{who}: " + (
                "when `labels=None` (no labels), argument `class_names` cannot be specified"
                if labels is None else "when argument `labels` is specified, argument "
                "`class_names` cannot be specified (the `class_names` will be the sorted list of "
                "labels)"))
        subdirs = [""]
    class_indices = {name: i for i, name in enumerate(subdirs)}
    filenames, found = [], []
    for sub in subdirs:
        path = os.path.join(directory, sub)
        base = os.path.basename(path)
        for root, fname in _walk_files(path, follow_links, formats):
            filenames.append(os.path.join(base, os.path.relpath(os.path.join(root, fname), path)))
            found.append(class_indices[base] if labels == "inferred" else 0)
    if labels == "inferred":
        labels = np.asarray(found, dtype="int32")
        names = subdirs
    elif labels is None:
        names = None
    else:
        if len(labels) != len(filenames):
            raise ValueError(f"{who}: expected the lengths of `labels` to match the number of "
                             f"files in the target directory. len(labels) is {len(labels)} while "
                             f"we found {len(filenames)} files in directory {directory}.")
        names = [str(v) for v in sorted(set(labels))]
        labels = np.asarray(labels)
    if verbose:
        if labels is None:
            print(f"Found {len(filenames)} files.")
        else:
            print(f"Found {len(filenames)} files belonging to {len(names)} classes.")
    paths = [os.path.join(directory, f) for f in filenames]
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return paths, labels, names


def _split(paths, labels, validation_split, subset, who):
    if not validation_split:
        return paths, labels
    n_val = int(validation_split * len(paths))
    if subset == "training":
        print(f"Using {len(paths) - n_val} files for training.")
        return paths[:len(paths) - n_val], None if labels is None else labels[:len(paths) - n_val]
    print(f"Using {n_val} files for validation.")
    return paths[len(paths) - n_val:], None if labels is None else labels[len(paths) - n_val:]


def _check_split(validation_split, subset, shuffle, seed, who):
    if subset not in (None, "training", "validation", "both"):
        raise ValueError(f"{who}: `subset` must be either 'training', 'validation' or 'both', "
                         f"received: {subset!r}")
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"{who}: `validation_split` must be between 0 and 1, received: "
                         f"{validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError(f"{who}: if `subset` is set, `validation_split` must be set, and "
                         f"inversely")
    if validation_split and shuffle and seed is None:
        raise ValueError(f"{who}: if using `validation_split` and shuffling the data, you must "
                         f"provide a `seed` argument, to make sure that there is no overlap "
                         f"between the training and validation subset")


def _check_common(labels, label_mode, batch_size, who):
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError(f"{who}: `labels` argument should be a list/tuple of integer labels, of "
                         f"the same size as the number of files in the target directory. If you "
                         f"wish to infer the labels from the subdirectory names in the target "
                         f"directory, pass `labels=\"inferred\"`. If you wish to get a dataset "
                         f"that only contains images (no labels), pass `labels=None`. Received: "
                         f"labels={labels!r}")
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(f"{who}: `label_mode` argument must be one of 'int', 'categorical', "
                         f"'binary', or None. Received: label_mode={label_mode!r}")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"{who}: batch_size must be a positive integer or None, received "
                         f"{batch_size!r}")
    return labels, label_mode


def _encode_labels(labels, label_mode, num_classes, who):
    if label_mode == "binary":
        if num_classes != 2:
            raise ValueError(f"{who}: when passing `label_mode=\"binary\"`, there must be exactly 2 "
                             f"class_names. Received: class_names has {num_classes} names")
        return labels.astype("float32")[:, None]
    if label_mode == "categorical":
        out = np.zeros((len(labels), num_classes), dtype="float32")
        out[np.arange(len(labels)), labels] = 1
        return out
    return labels.astype("int32")


class FileDataset(PyDataset):
    """Batches of files read on demand: ``(inputs, labels)`` or inputs alone."""

    def __init__(self, paths, labels, label_mode, class_names, batch_size, load, who):
        super().__init__()
        self.file_paths = list(paths)
        self.class_names = class_names
        self._labels = None if labels is None else _encode_labels(
            np.asarray(labels), label_mode, len(class_names or []), who)
        self._batch_size = batch_size
        self._load = load
        self._maps = []

    def __len__(self):
        n = len(self.file_paths)
        if self._batch_size is None:
            return n
        return -(-n // self._batch_size)

    def _raw(self, i):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"batch index {i} out of range for {n} batches")
        i %= n
        if self._batch_size is None:          # unbatched: one element per item
            x = self._load(self.file_paths[i:i + 1])[0]
            return x if self._labels is None else (x, self._labels[i])
        lo, hi = i * self._batch_size, min(len(self.file_paths), (i + 1) * self._batch_size)
        x = self._load(self.file_paths[lo:hi])
        return x if self._labels is None else (x, self._labels[lo:hi])

    def __getitem__(self, i):
        item = self._raw(i)
        for fn in self._maps:
            item = fn(*item) if isinstance(item, tuple) else fn(item)
        return item

    def map(self, fn):
        """A dataset whose batches are ``fn(x, y)`` (or ``fn(x)``) of this one's, as tf.data's
        ``map``: applied lazily, batch by batch."""
        out = FileDataset.__new__(FileDataset)
        out.__dict__.update(self.__dict__)
        out._maps = self._maps + [fn]
        return out

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("image_dataset_from_directory needs Pillow, which is not installed: "
                          "pip install pillow (or pip install 'axone[image]')") from None
    return Image


def _image_loader(image_size, channels, interpolation, crop, pad, data_format):
    from ..autograd.function import no_grad
    from ..autograd.tensor import Tensor
    from ..layers.preprocessing import resize
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]

    def load(paths):
        Image = _pil()
        out = np.empty((len(paths),) + tuple(image_size) + (channels,), dtype=backend.floatx())
        for k, p in enumerate(paths):
            try:
                with Image.open(p) as img:
                    arr = np.asarray(img.convert(mode), dtype=backend.floatx())
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                raise ValueError(f"image_dataset_from_directory: could not read the image "
                                 f"{p!r}: {e}") from None
            if arr.ndim == 2:
                arr = arr[:, :, None]
            with no_grad():
                out[k] = resize(Tensor(arr[None]), image_size[0], image_size[1],
                                interpolation=interpolation, crop_to_aspect_ratio=crop,
                                pad_to_aspect_ratio=pad).data[0]
        if data_format == "channels_first":
            return np.ascontiguousarray(out.transpose(0, 3, 1, 2))
        return out
    return load


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                 color_mode="rgb", batch_size=32, image_size=(256, 256),
                                 shuffle=True, seed=None, validation_split=None, subset=None,
                                 interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                                 data_format=None, verbose=True):
    """Images in class folders (``directory/<class>/<image>``) as batches ``(images, labels)``:
    images float32 ``(batch, height, width, channels)`` with values 0–255, labels int32 (or
    one-hot float32 for ``label_mode="categorical"``, float32 ``(batch, 1)`` for ``"binary"``).
    ``subset="both"`` returns ``(training, validation)``."""
    who = "image_dataset_from_directory"
    labels, label_mode = _check_common(labels, label_mode, batch_size, who)
    channels = {"rgb": 3, "rgba": 4, "grayscale": 1}.get(color_mode)
    if channels is None:
        raise ValueError(f"{who}: `color_mode` must be one of {{'rgb', 'rgba', 'grayscale'}}. "
                         f"Received: color_mode={color_mode!r}")
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                   for s in image_size)):
        raise ValueError(f"{who}: image_size must be a tuple of two positive integers (height, "
                         f"width), received {image_size!r}")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(f"{who}: only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` "
                         f"can be set to `True`")
    if interpolation not in ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                             "gaussian", "mitchellcubic"):
        raise ValueError(f"{who}: unknown interpolation {interpolation!r}")
    if interpolation not in ("bilinear", "nearest", "bicubic"):
        raise NotImplementedError(f"{who}: interpolation={interpolation!r} is not implemented in "
                                  f"axone; use 'bilinear', 'nearest' or 'bicubic'")
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"{who}: data_format must be 'channels_last' or 'channels_first', "
                         f"received {data_format!r}")
    _check_split(validation_split, subset, shuffle, seed, who)
    _pil()
    load = _image_loader(tuple(int(s) for s in image_size), channels, interpolation,
                         crop_to_aspect_ratio, pad_to_aspect_ratio, data_format)
    return _make(directory, labels, label_mode, class_names, batch_size, shuffle, seed,
                 validation_split, subset, follow_links, verbose, ALLOWLIST_IMAGE_FORMATS, load,
                 who, "images")


def _make(directory, labels, label_mode, class_names, batch_size, shuffle, seed,
          validation_split, subset, follow_links, verbose, formats, load, who, what):
    if seed is None:
        seed = np.random.randint(1e6)
    paths, found, names = index_directory(directory, "inferred" if labels == "inferred" else labels,
                                          formats, class_names=class_names, shuffle=shuffle,
                                          seed=seed, follow_links=follow_links, verbose=verbose,
                                          who=who)
    if labels is None:
        found = None
    if label_mode == "binary" and len(names) != 2:
        raise ValueError(f"{who}: when passing `label_mode=\"binary\"`, there must be exactly 2 "
                         f"class_names. Received: class_names={names}")
    subsets = ("training", "validation") if subset == "both" else (subset,)
    out = []
    for sub in subsets:
        p, l = _split(paths, found, validation_split, sub, who)
        if not p:
            raise ValueError(f"{who}: no {what} found in directory {directory}. Allowed formats: "
                             f"{formats}")
        out.append(FileDataset(p, l, label_mode, names, batch_size, load, who))
    return tuple(out) if subset == "both" else out[0]


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                batch_size=32, max_length=None, shuffle=True, seed=None,
                                validation_split=None, subset=None, follow_links=False,
                                verbose=True):
    """Text files in class folders (``directory/<class>/<file>.txt``) as batches ``(texts,
    labels)``: texts a NumPy array of strings (cut to ``max_length`` characters), labels as in
    :func:`image_dataset_from_directory`."""
    who = "text_dataset_from_directory"
    labels, label_mode = _check_common(labels, label_mode, batch_size, who)
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(
            max_length, (int, np.integer)) or max_length < 1):
        raise ValueError(f"{who}: max_length must be a positive integer or None, received "
                         f"{max_length!r}")
    _check_split(validation_split, subset, shuffle, seed, who)

    def load(paths):
        texts = []
        for p in paths:
            with open(p, "rb") as f:      # Keras cuts the first max_length bytes
                data = f.read() if max_length is None else f.read(max_length)
            texts.append(data.decode("utf-8", errors="replace"))
        return np.array(texts, dtype=object)
    return _make(directory, labels, label_mode, class_names, batch_size, shuffle, seed,
                 validation_split, subset, follow_links, verbose, ALLOWLIST_TEXT_FORMATS, load,
                 who, "text files")


def read_wav(path, desired_samples=-1):
    """A WAV file's samples as float32 ``(samples, channels)`` in [-1, 1), as TensorFlow's
    ``decode_wav``: integer PCM divided by 2^(bits−1) (8-bit, unsigned, centred on 128 first);
    ``desired_samples`` ≥ 0 cuts the file to that many samples or pads it with zeros.
    Returns ``(samples, sample_rate)``. Read with the standard library's ``wave`` module."""
    import wave
    try:
        with wave.open(os.fspath(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            n = w.getnframes()
            if desired_samples is not None and desired_samples >= 0:
                n = min(n, int(desired_samples))
            raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise ValueError(f"audio_dataset_from_directory: could not read the WAV file {path!r}: "
                         f"{e}") from None
    n = len(raw) // (width * channels)
    raw = raw[:n * width * channels]
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2.0 ** 31).astype(np.float32)
    else:
        raise ValueError(f"audio_dataset_from_directory: {path!r} has {8 * width}-bit samples; "
                         f"expected 8, 16, 24 or 32-bit integer PCM")
    x = x.reshape(n, channels)
    if desired_samples is not None and desired_samples >= 0 and n < desired_samples:
        x = np.concatenate([x, np.zeros((int(desired_samples) - n, channels), np.float32)])
    return x, rate


def _audio_loader(output_sequence_length):
    want = -1 if output_sequence_length is None else int(output_sequence_length)

    def load(paths):
        clips = [read_wav(p, want)[0] for p in paths]
        channels = {c.shape[1] for c in clips}
        if len(channels) > 1:
            raise ValueError(f"audio_dataset_from_directory: the files of one batch have "
                             f"different numbers of channels {sorted(channels)}: {list(paths)}")
        length = max(c.shape[0] for c in clips)     # padded to the longest of the batch
        out = np.zeros((len(clips), length, channels.pop()), dtype=np.float32)
        for k, c in enumerate(clips):
            out[k, :c.shape[0]] = c
        return out
    return load


def audio_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, batch_size=32, sampling_rate=None,
                                 output_sequence_length=None, ragged=False, shuffle=True,
                                 seed=None, validation_split=None, subset=None,
                                 follow_links=False, verbose=True):
    """WAV files in class folders (``directory/<class>/<clip>.wav``) as batches ``(audio,
    labels)``: audio float32 ``(batch, samples, channels)`` in [-1, 1), each clip cut to
    ``output_sequence_length`` samples (and zero-padded to it), or with ``None`` zero-padded to
    the longest clip of its batch; labels as in :func:`image_dataset_from_directory`.
    ``subset="both"`` returns ``(training, validation)``. ``ragged=True`` and resampling
    (``sampling_rate``) are not available in axone."""
    who = "audio_dataset_from_directory"
    labels, label_mode = _check_common(labels, label_mode, batch_size, who)
    if ragged and output_sequence_length is not None:
        raise ValueError(f"{who}: cannot set both `ragged` and `output_sequence_length`")
    if ragged:
        raise NotImplementedError(f"{who}: ragged=True is not supported by axone (no ragged "
                                  f"tensors); use ragged=False (batches padded with zeros)")
    if output_sequence_length is not None and (
            isinstance(output_sequence_length, bool)
            or not isinstance(output_sequence_length, (int, np.integer))
            or output_sequence_length < 1):
        raise ValueError(f"{who}: output_sequence_length must be a positive integer or None, "
                         f"received {output_sequence_length!r}")
    if sampling_rate is not None:
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)):
            raise ValueError(f"{who}: `sampling_rate` should have an integer value. Received: "
                             f"sampling_rate={sampling_rate!r}")
        if sampling_rate <= 0:
            raise ValueError(f"{who}: `sampling_rate` should be higher than 0. Received: "
                             f"sampling_rate={sampling_rate}")
        raise NotImplementedError(f"{who}: sampling_rate={sampling_rate} (resampling) is not "
                                  f"supported by axone; use sampling_rate=None (the files' own "
                                  f"rate)")
    _check_split(validation_split, subset, shuffle, seed, who)
    return _make(directory, labels, label_mode, class_names, batch_size, shuffle, seed,
                 validation_split, subset, follow_links, verbose, ALLOWLIST_AUDIO_FORMATS,
                 _audio_loader(output_sequence_length), who, "audio files")
