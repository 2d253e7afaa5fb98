"""audio_dataset_from_directory: Keras's listing (its own index_directory as reference), WAV
decoding as TensorFlow's decode_wav (PCM / 2^(bits-1), cut or zero-padded), batches padded to
the longest clip, label modes, splits, and fit on the result."""
import os
import sys
import wave

import numpy as np
import pytest

from axone import layers, models, utils
from axone.utils.directory_datasets import read_wav


def _write(path, samples, rate=8000, width=2):
    """samples: int array (n, channels) of raw PCM values."""
    samples = np.asarray(samples)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 1:
            w.writeframes(samples.astype(np.uint8).tobytes())
        elif width == 2:
            w.writeframes(samples.astype("<i2").tobytes())
        elif width == 3:
            v = samples.astype(np.int64).reshape(-1) & 0xFFFFFF
            b = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], axis=1).astype(np.uint8)
            w.writeframes(b.tobytes())
        else:
            w.writeframes(samples.astype("<i4").tobytes())


def _clips(tmp_path, counts=(3, 4), channels=1):
    rng = np.random.default_rng(0)
    root = tmp_path / "audio"
    raw = {}
    for c, n in zip(("no", "yes"), counts):
        (root / c).mkdir(parents=True)
        for i in range(n):
            length = int(rng.integers(5, 12))
            s = rng.integers(-32768, 32768, size=(length, channels))
            _write(root / c / f"{i}.wav", s)
            raw[str(root / c / f"{i}.wav")] = s
    (root / "yes" / "readme.txt").write_text("not audio")
    return str(root), raw


def _keras_index(root, seed, **kw):
    for name in list(sys.modules):
        if (name == "keras" or name.startswith("keras.")) and getattr(sys.modules[name],
                                                                       "__axone_alias__", False):
            pytest.skip("the keras import alias is installed in this process")
    pytest.importorskip("keras")
    from keras.src.utils import dataset_utils
    return dataset_utils.index_directory(root, "inferred", formats=(".wav",), seed=seed,
                                         verbose=False, **kw)


def test_read_wav_is_decode_wav(tmp_path):
    s16 = np.array([[0, -32768], [32767, 1], [-1, 16384]])
    _write(tmp_path / "a.wav", s16)
    x, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and x.dtype == np.float32 and x.shape == (3, 2)
    np.testing.assert_array_equal(x, s16 / 32768.0)
    cut, _ = read_wav(tmp_path / "a.wav", 2)
    np.testing.assert_array_equal(cut, s16[:2] / 32768.0)
    padded, _ = read_wav(tmp_path / "a.wav", 5)
    np.testing.assert_array_equal(padded, np.concatenate([s16 / 32768.0, np.zeros((2, 2))]))
    _write(tmp_path / "b.wav", np.array([[0], [128], [255]]), width=1)
    np.testing.assert_array_equal(read_wav(tmp_path / "b.wav")[0][:, 0],
                                  np.array([-128, 0, 127]) / 128.0)
    s24 = np.array([[-(1 << 23)], [(1 << 23) - 1], [-5]])
    _write(tmp_path / "c.wav", s24, width=3)
    np.testing.assert_array_equal(read_wav(tmp_path / "c.wav")[0], (s24 / 2.0 ** 23).astype("f4"))
    s32 = np.array([[-(1 << 31)], [123456789]])
    _write(tmp_path / "d.wav", s32, width=4)
    np.testing.assert_array_equal(read_wav(tmp_path / "d.wav")[0], (s32 / 2.0 ** 31).astype("f4"))
    (tmp_path / "e.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(ValueError, match="could not read the WAV file"):
        read_wav(tmp_path / "e.wav")


def test_listing_and_padded_batches_follow_keras(tmp_path):
    root, raw = _clips(tmp_path)
    ds = utils.audio_dataset_from_directory(root, batch_size=3, seed=7, verbose=False)
    paths, labels, names = _keras_index(root, 7)
    assert ds.class_names == names == ["no", "yes"]
    assert ds.file_paths == list(paths)
    assert len(ds) == 3
    seen = 0
    for x, y in ds:
        assert x.dtype == np.float32 and y.dtype == np.int32 and x.ndim == 3
        batch_paths = paths[seen:seen + len(y)]
        np.testing.assert_array_equal(y, labels[seen:seen + len(y)])
        longest = max(len(raw[p]) for p in batch_paths)
        assert x.shape == (len(y), longest, 1)
        for k, p in enumerate(batch_paths):
            n = len(raw[p])
            np.testing.assert_array_equal(x[k, :n], raw[p] / 32768.0)
            assert not x[k, n:].any()
        seen += len(y)
    assert seen == 7


def test_output_sequence_length_and_unbatched(tmp_path):
    root, raw = _clips(tmp_path, channels=2)
    ds = utils.audio_dataset_from_directory(root, batch_size=4, output_sequence_length=8,
                                            shuffle=False, verbose=False)
    paths, _, _ = _keras_index(root, None, shuffle=False)
    assert ds.file_paths == list(paths)
    x, _ = ds[0]
    assert x.shape == (4, 8, 2)
    for k, p in enumerate(paths[:4]):
        want = np.zeros((8, 2))
        n = min(8, len(raw[p]))
        want[:n] = raw[p][:n] / 32768.0
        np.testing.assert_array_equal(x[k], want)
    one = utils.audio_dataset_from_directory(root, batch_size=None, shuffle=False,
                                             verbose=False)
    x0, y0 = one[0]
    assert x0.shape == (len(raw[paths[0]]), 2) and y0 == 0


def test_label_modes_and_splits(tmp_path, capsys):
    root, _ = _clips(tmp_path)
    cat = utils.audio_dataset_from_directory(root, label_mode="categorical", batch_size=7,
                                             seed=1, verbose=False)
    _, y = cat[0]
    assert y.shape == (7, 2) and y.dtype == np.float32 and (y.sum(1) == 1).all()
    binary = utils.audio_dataset_from_directory(root, label_mode="binary", batch_size=7, seed=1,
                                                verbose=False)
    assert binary[0][1].shape == (7, 1)
    unlabeled = utils.audio_dataset_from_directory(root, label_mode=None, batch_size=7, seed=1,
                                                   verbose=False)
    assert isinstance(unlabeled[0], np.ndarray)
    train, val = utils.audio_dataset_from_directory(root, validation_split=0.3, subset="both",
                                                    seed=3, batch_size=2)
    out = capsys.readouterr().out
    assert "Found 7 files belonging to 2 classes." in out
    assert "Using 5 files for training." in out and "Using 2 files for validation." in out
    paths, _, _ = _keras_index(root, 3)
    assert train.file_paths == list(paths[:5]) and val.file_paths == list(paths[5:])
    only = utils.audio_dataset_from_directory(root, class_names=["yes"], batch_size=10,
                                              verbose=False, seed=0)
    assert len(only.file_paths) == 4 and only.class_names == ["yes"]


def test_fit_on_an_audio_dataset(tmp_path):
    root, _ = _clips(tmp_path)
    ds = utils.audio_dataset_from_directory(root, batch_size=4, output_sequence_length=12,
                                            seed=0, verbose=False)
    m = models.Sequential([layers.Input((12, 1)), layers.Flatten(), layers.Dense(2)])
    m.compile("sgd", "sparse_categorical_crossentropy")
    h = m.fit(ds, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2 and np.isfinite(h.history["loss"]).all()


def test_mixed_channels_in_a_batch(tmp_path):
    root = tmp_path / "mixed" / "a"
    root.mkdir(parents=True)
    _write(root / "1.wav", np.zeros((4, 1)))
    _write(root / "2.wav", np.zeros((4, 2)))
    ds = utils.audio_dataset_from_directory(str(tmp_path / "mixed"), batch_size=2, shuffle=False,
                                            verbose=False)
    with pytest.raises(ValueError, match="different numbers of channels"):
        ds[0]


def test_bad_arguments(tmp_path):
    root, _ = _clips(tmp_path)
    f = utils.audio_dataset_from_directory
    with pytest.raises(NotImplementedError, match="ragged"):
        f(root, ragged=True)
    with pytest.raises(ValueError, match="both `ragged` and `output_sequence_length`"):
        f(root, ragged=True, output_sequence_length=4)
    with pytest.raises(NotImplementedError, match="sampling_rate"):
        f(root, sampling_rate=16000)
    with pytest.raises(ValueError, match="sampling_rate"):
        f(root, sampling_rate=0)
    with pytest.raises(ValueError, match="sampling_rate"):
        f(root, sampling_rate=1.5)
    with pytest.raises(ValueError, match="output_sequence_length"):
        f(root, output_sequence_length=0)
    with pytest.raises(ValueError, match="label_mode"):
        f(root, label_mode="onehot")
    with pytest.raises(ValueError, match="seed"):
        f(root, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match="exactly 2"):
        os.makedirs(os.path.join(root, "maybe"))
        _write(os.path.join(root, "maybe", "x.wav"), np.zeros((3, 1)))
        f(root, label_mode="binary", verbose=False)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no audio files found"):
        f(str(tmp_path / "empty"), verbose=False)
    with pytest.raises(ValueError, match="does not exist"):
        f(str(tmp_path / "nowhere"), verbose=False)
