"""STFTSpectrogram and MelSpectrogram (axone/layers/audio.py) against Keras 3 (torch backend):
weights, outputs and gradients on the same random audio, output shapes, get_config round trips,
use in a model, bad input."""
import warnings

import numpy as np
import pytest
import torch

import keras

import axone
from axone import Tensor, ops
from axone.layers.audio import MelSpectrogram, STFTSpectrogram
from axone.utils import check_gradients

assert keras.backend.backend() == "torch", "these tests need KERAS_BACKEND=torch (tests/conftest.py)"


def _audio(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


STFT_CASES = [
    dict(mode="log", frame_length=32, frame_step=8, fft_length=32),
    dict(mode="magnitude", frame_length=30, frame_step=10, fft_length=64, window="hamming",
         padding="same"),
    dict(mode="psd", frame_length=32, periodic=True, scaling="spectrum"),
    dict(mode="real", frame_length=16, expand_dims=True),
    dict(mode="imag", frame_length=16, data_format="channels_first"),
    dict(mode="angle", frame_length=16, scaling=None),
    dict(mode="stft", frame_length=16, expand_dims=True, data_format="channels_first",
         padding="same"),
    dict(mode="log", frame_length=12, window=np.linspace(0, 1, 12).astype(np.float32)),
    dict(mode="magnitude", frame_length=20, frame_step=5, window=None, expand_dims=True),
]


def _ids(cases):
    return [f"{i}-{c.get('mode', 'mel')}" for i, c in enumerate(cases)]


def _signal(kw, seed=0):
    x = _audio(2, 200, 2, seed=seed)
    return np.ascontiguousarray(np.transpose(x, (0, 2, 1))) \
        if kw.get("data_format") == "channels_first" else x


@pytest.mark.parametrize("kw", STFT_CASES, ids=_ids(STFT_CASES))
def test_stft_spectrogram_matches_keras(kw):
    x = _signal(kw)
    ours, theirs = STFTSpectrogram(**kw), keras.layers.STFTSpectrogram(**kw)
    y = ours(Tensor(x))
    want = theirs(x).detach().numpy()
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-6, atol=1e-6)
    assert y.shape == want.shape
    np.testing.assert_allclose(y.data, want, rtol=1e-4, atol=1e-4)
    assert ours.compute_output_shape(x.shape) == tuple(theirs.compute_output_shape(x.shape))
    assert ours.compute_output_shape((None,) + x.shape[1:])[1:] == want.shape[1:]


@pytest.mark.parametrize("kw", [STFT_CASES[0], STFT_CASES[2], STFT_CASES[5], STFT_CASES[6]],
                         ids=["log", "psd", "angle", "stft_first"])
def test_stft_spectrogram_gradients_match_torch(kw):
    x = _signal(kw, seed=1)
    ours, theirs = STFTSpectrogram(**kw), keras.layers.STFTSpectrogram(**kw)
    xa = Tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ya, yt = ours(xa), theirs(xt)
    weight = _audio(*yt.shape, seed=5)
    ops.sum(ya * weight).backward()
    (yt * torch.tensor(weight)).sum().backward()
    np.testing.assert_allclose(xa.grad, xt.grad.numpy(), rtol=1e-3, atol=1e-3)
    for w, v in zip(ours.weights, theirs.weights):
        np.testing.assert_allclose(w.grad, v.value.grad.numpy(), rtol=1e-3, atol=1e-3)


def test_stft_spectrogram_finite_differences():
    layer = STFTSpectrogram(mode="log", frame_length=8, frame_step=4, fft_length=8, dtype="float64")
    x = np.random.default_rng(2).standard_normal((1, 24, 1))
    layer.build(x.shape)
    assert check_gradients(lambda v: layer(v), x).max_error < 1e-6


def test_stft_spectrogram_trains_in_a_model_and_freezes():
    x = _audio(8, 64, 1)
    y = _audio(8, 1, seed=3)
    m = axone.Sequential([axone.Input((64, 1)),
                          STFTSpectrogram(mode="magnitude", frame_length=16, frame_step=8),
                          axone.layers.Flatten(), axone.layers.Dense(1)])
    spec = m.layers[0]
    before = spec.get_weights()
    m.compile("sgd", "mse")
    m.fit(x, y, epochs=1, verbose=0)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, spec.get_weights()))
    frozen = STFTSpectrogram(frame_length=16, trainable=False)
    frozen.build((None, 64, 1))
    assert frozen.trainable_weights == [] and len(frozen.non_trainable_weights) == 2


def test_stft_spectrogram_config_round_trip():
    layer = STFTSpectrogram(mode="psd", frame_length=24, frame_step=6, fft_length=32,
                            window=np.hanning(24), periodic=True, scaling="spectrum",
                            padding="same", expand_dims=True, data_format="channels_first")
    cfg = layer.get_config()
    keys = set(keras.layers.STFTSpectrogram(frame_length=24).get_config())
    assert keys <= set(cfg) | {"dtype"}
    clone = STFTSpectrogram.from_config(cfg)
    assert clone.get_config() == cfg
    x = _audio(1, 2, 96)
    np.testing.assert_allclose(clone(x).data, layer(x).data, rtol=1e-6)


@pytest.mark.parametrize("call,exc,words", [
    (lambda: STFTSpectrogram(frame_length=16, frame_step=17), ValueError, "frame_step"),
    (lambda: STFTSpectrogram(frame_length=16, fft_length=8), ValueError, "fft_length"),
    (lambda: STFTSpectrogram(mode="power"), ValueError, "mode"),
    (lambda: STFTSpectrogram(scaling="max"), ValueError, "Scaling|scaling"),
    (lambda: STFTSpectrogram(padding="causal"), ValueError, "adding"),
    (lambda: STFTSpectrogram(window="nope"), ValueError, "window|nope"),
    (lambda: STFTSpectrogram(data_format="nchw"), ValueError, "data_format"),
    (lambda: STFTSpectrogram(frame_length=8)(np.ones((2, 32, 1), dtype=np.int32)), TypeError,
     "float32"),
    (lambda: STFTSpectrogram(frame_length=8)(np.ones((32, 1), dtype=np.float32)), ValueError,
     "ndim=3"),
])
def test_stft_spectrogram_bad_input(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


def test_stft_spectrogram_warns_for_fft_length_not_a_power_of_two():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        STFTSpectrogram(frame_length=16, fft_length=24)
    assert any("power of two" in str(m.message) for m in w)


MEL_CASES = [
    dict(),
    dict(fft_length=512, sequence_stride=128, num_mel_bins=40, sampling_rate=8000),
    dict(fft_length=256, sequence_length=200, sequence_stride=100, window="hamming",
         power_to_db=False, mag_exp=1.0),
    dict(fft_length=256, sequence_stride=64, top_db=20.0, ref_power=2.0, min_freq=100.0,
         max_freq=3000.0),
    dict(fft_length=128, sequence_stride=32, window=None, num_mel_bins=16, min_power=1e-3),
]


@pytest.mark.parametrize("kw", MEL_CASES, ids=[str(i) for i in range(len(MEL_CASES))])
def test_mel_spectrogram_matches_keras(kw):
    audio = _audio(2, 3000)
    ours, theirs = MelSpectrogram(**kw), keras.layers.MelSpectrogram(**kw)
    for x in (audio, audio[0]):
        got, want = ours(x).data, np.asarray(theirs(x))
        assert got.shape == want.shape and got.dtype == np.float32
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5 * scale)
        assert tuple(ours.compute_output_shape(x.shape)) == tuple(theirs.compute_output_shape(x.shape))
    np.testing.assert_allclose(
        ours.linear_to_mel_weight_matrix(16, 65, 8000, 100.0, 3000.0),
        np.asarray(theirs.linear_to_mel_weight_matrix(16, 65, 8000, 100.0, 3000.0)), atol=1e-5)


def test_mel_spectrogram_gradient_finite_differences():
    layer = MelSpectrogram(fft_length=16, sequence_stride=8, sampling_rate=100, num_mel_bins=4,
                           min_freq=5.0, power_to_db=False, dtype="float64")
    x = np.random.default_rng(4).standard_normal(40) + 1.0
    assert check_gradients(lambda v: layer(v), x).max_error < 1e-6


def test_mel_spectrogram_config_round_trip_and_keys():
    layer = MelSpectrogram(fft_length=512, sequence_stride=100, num_mel_bins=32, top_db=60.0)
    cfg = layer.get_config()
    keras_cfg = keras.layers.MelSpectrogram(fft_length=512, sequence_stride=100,
                                            num_mel_bins=32, top_db=60.0).get_config()
    for k in ("fft_length", "sequence_stride", "sequence_length", "window", "sampling_rate",
              "num_mel_bins", "min_freq", "max_freq", "power_to_db", "top_db", "mag_exp",
              "min_power", "ref_power"):
        assert cfg[k] == keras_cfg[k], k
    assert MelSpectrogram.from_config(cfg).get_config() == cfg


def test_mel_spectrogram_bad_input():
    with pytest.raises(ValueError, match="fft_length"):
        MelSpectrogram(fft_length=128, sequence_length=256)
    with pytest.raises(ValueError, match="hann"):
        MelSpectrogram(window="kaiser")
    with pytest.raises(ValueError, match="samples"):
        MelSpectrogram(fft_length=64, sequence_stride=16)(np.ones((2, 2, 200), dtype=np.float32))


def test_layers_resolve_through_the_keras_names():
    assert axone.layers.STFTSpectrogram is STFTSpectrogram
    assert axone.layers.MelSpectrogram is MelSpectrogram


def test_mel_spectrogram_in_a_functional_model_matches_keras():
    kw = dict(fft_length=256, sequence_stride=128, num_mel_bins=20, sampling_rate=8000)
    inp = axone.Input((2000,))
    out = MelSpectrogram(**kw)(inp)
    kinp = keras.Input((2000,))
    kout = keras.layers.MelSpectrogram(**kw)(kinp)
    assert out.shape == tuple(kout.shape)
    x = _audio(3, 2000)
    got = axone.Model(inp, out).predict(x, verbose=0)
    want = keras.Model(kinp, kout).predict(x, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5 * np.abs(want).max())
