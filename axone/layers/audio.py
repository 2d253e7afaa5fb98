"""Audio front ends: STFTSpectrogram (the STFT as a strided convolution with DFT kernels, which
may be trained) and MelSpectrogram (|STFT|^p on the mel scale, in decibels), as Keras 3."""
import math
import warnings

import numpy as np

from .. import backend, initializers, ops
from ..autograd.tensor import Tensor
from ..config import standardize_data_format
from .base import Layer
from .input_spec import InputSpec

__all__ = ["STFTSpectrogram", "MelSpectrogram"]

_MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")


def _float_input(layer, inputs):
    """The input as a float Tensor of the layer's dtype; other dtypes raise TypeError."""
    x = inputs if isinstance(inputs, Tensor) else Tensor(np.asarray(inputs))
    if x.dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(f"{type(layer).__name__} {layer.name!r}: invalid input type. Expected "
                        f"`float16`, `float32` or `float64`. Received: input type={x.dtype}")
    return ops.cast(x, layer.dtype)


class STFTSpectrogram(Layer):
    """Spectrogram of each channel of a 1-D signal by the short-time Fourier transform, computed
    as a convolution with kernels k_re[t, f] = w_t·cos(−2πtf/N)/s and k_im = w_t·sin(−2πtf/N)/s
    (``initializers.STFT``; stride ``frame_step``), which are weights and so can be trained.

    ``mode``: "real" / "imag" (the two convolutions), "stft" (both, concatenated on the
    frequencies), "angle" (atan2(imag, real)), "psd" (|S|², the inner bins doubled),
    "magnitude" (√max(|S|², ε)) or "log" (log max(magnitude, ε)).
    Input (batch, time, channels) (channels_last) or (batch, channels, time); output
    (batch, time', channels·freq) / (batch, channels·freq, time'), or with ``expand_dims``
    (batch, time', freq, channels) / (batch, channels, time', freq)."""

    _autocast = False

    def __init__(self, mode="log", frame_length=256, frame_step=None, fft_length=None,
                 window="hann", periodic=False, scaling="density", padding="valid",
                 expand_dims=False, data_format=None, **kwargs):
        who = "STFTSpectrogram"
        if frame_step is not None and (frame_step > frame_length or frame_step < 1):
            raise ValueError(f"{who}: `frame_step` should be a positive integer not greater than "
                             f"`frame_length`. Received frame_step={frame_step}, "
                             f"frame_length={frame_length}")
        if fft_length is not None and fft_length < frame_length:
            raise ValueError(f"{who}: `fft_length` should be not less than `frame_length`. "
                             f"Received fft_length={fft_length}, frame_length={frame_length}")
        if fft_length is not None and (fft_length & -fft_length) != fft_length:
            warnings.warn(f"`fft_length` is recommended to be a power of two. Received "
                          f"fft_length={fft_length}")
        if mode not in _MODES:
            raise ValueError(f"{who}: output mode is invalid, it must be one of "
                             f"{', '.join(_MODES)}. Received: mode={mode}")
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError(f"{who}: scaling is invalid, it must be `None`, 'density' or "
                             f"'spectrum'. Received scaling={scaling}")
        if padding not in ("valid", "same"):
            raise ValueError(f"{who}: padding is invalid, it should be 'valid', 'same'. "
                             f"Received: padding={padding}")
        if isinstance(window, str):
            # an unknown window name raises here (a 4-point kernel, so the name is looked up)
            initializers.STFT("real", window)((4, 1, 3))
        super().__init__(**kwargs)
        self.mode = mode
        self.frame_length = int(frame_length)
        self.frame_step = frame_step
        self._frame_step = int(frame_step or self.frame_length // 2)
        self.fft_length = fft_length
        self._fft_length = int(fft_length or 2 ** int(math.ceil(math.log2(frame_length))))
        self.window = window
        self.periodic = periodic
        self.scaling = scaling
        self.padding = padding
        self.expand_dims = expand_dims
        self.data_format = standardize_data_format(data_format, who)
        self.input_spec = InputSpec(ndim=3)

    def build(self, input_shape):
        shape = (self.frame_length, 1, self._fft_length // 2 + 1)
        if self.mode != "imag":
            self.real_kernel = self.add_weight(shape, initializers.STFT(
                "real", self.window, self.scaling, self.periodic), name="real_kernel")
        if self.mode != "real":
            self.imag_kernel = self.add_weight(shape, initializers.STFT(
                "imag", self.window, self.scaling, self.periodic), name="imag_kernel")
        self.built = True

    def _apply_conv(self, x, kernel):
        """Each channel convolved alone: (batch, channels, freq, time')."""
        if self.data_format == "channels_last":
            n, t, c = x.shape
            x = ops.reshape(ops.transpose(x, (0, 2, 1)), (n * c, t, 1))
        else:
            n, c, t = x.shape
            x = ops.reshape(x, (n * c, t, 1))
        y = ops.conv(x, kernel, strides=self._frame_step, padding=self.padding)
        return ops.reshape(ops.transpose(y, (0, 2, 1)), (n, c, y.shape[-1], y.shape[1]))

    def _adjust_shapes(self, y):
        n, c, f, t = y.shape
        if self.data_format == "channels_last":
            if self.expand_dims:
                return ops.transpose(y, (0, 3, 2, 1))
            return ops.transpose(ops.reshape(y, (n, c * f, t)), (0, 2, 1))
        if self.expand_dims:
            return ops.transpose(y, (0, 1, 3, 2))
        return ops.reshape(y, (n, c * f, t))

    def call(self, inputs):
        x = _float_input(self, inputs)
        re = self._apply_conv(x, self.real_kernel) if self.mode != "imag" else None
        im = self._apply_conv(x, self.imag_kernel) if self.mode != "real" else None
        if self.mode == "real":
            return self._adjust_shapes(re)
        if self.mode == "imag":
            return self._adjust_shapes(im)
        if self.mode == "angle":
            return self._adjust_shapes(ops.arctan2(im, re))
        if self.mode == "stft":
            return self._adjust_shapes(ops.concatenate([re, im], axis=2))
        power = ops.square(re) + ops.square(im)
        if self.mode == "psd":
            inner = ops.pad(power[:, :, 1:-1, :], [(0, 0), (0, 0), (1, 1), (0, 0)])
            return self._adjust_shapes(power + inner)
        eps = backend.epsilon()
        magnitude = self._adjust_shapes(ops.sqrt(ops.maximum(power, eps)))
        if self.mode == "magnitude":
            return magnitude
        return ops.log(ops.maximum(magnitude, eps))

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_last":
            n, t, c = input_shape
        else:
            n, c, t = input_shape
        freq = self._fft_length // 2 + 1
        if self.mode == "stft":
            freq *= 2
        if t is None:
            steps = None
        elif self.padding == "same":
            steps = -(-t // self._frame_step)
        else:
            steps = (t - self.frame_length) // self._frame_step + 1
        if self.expand_dims:
            return (n, steps, freq, c) if self.data_format == "channels_last" else \
                (n, c, steps, freq)
        feat = None if c is None else c * freq
        return (n, steps, feat) if self.data_format == "channels_last" else (n, feat, steps)

    def get_config(self):
        cfg = super().get_config()
        window = self.window.tolist() if isinstance(self.window, np.ndarray) else self.window
        cfg.update({"mode": self.mode, "frame_length": self.frame_length,
                    "frame_step": self.frame_step, "fft_length": self.fft_length,
                    "window": window, "periodic": self.periodic, "scaling": self.scaling,
                    "padding": self.padding, "data_format": self.data_format,
                    "expand_dims": self.expand_dims})
        return cfg


# mel scale of the Hidden Markov Model Toolkit: mel(f) = 1127·ln(1 + f/700)
_MEL_BREAK_FREQUENCY_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0


def _hertz_to_mel(f):
    return _MEL_HIGH_FREQUENCY_Q * np.log(1.0 + f / _MEL_BREAK_FREQUENCY_HERTZ)


class MelSpectrogram(Layer):
    """Mel spectrogram of audio (samples,) or (batch, samples): S = |stft(x)|^mag_exp (centred
    frames, :func:`axone.ops.stft`), M = S·A with A the triangular mel filters
    (:meth:`linear_to_mel_weight_matrix`), and with ``power_to_db``
    10·log10(max(M, min_power)) − 10·log10(max(|ref_power|, min_power)), floored at its
    maximum − ``top_db``.  Output (…, num_mel_bins, frames)."""

    def __init__(self, fft_length=2048, sequence_stride=512, sequence_length=None, window="hann",
                 sampling_rate=16000, num_mel_bins=128, min_freq=20.0, max_freq=None,
                 power_to_db=True, top_db=80.0, mag_exp=2.0, min_power=1e-10, ref_power=1.0,
                 **kwargs):
        self.fft_length = fft_length
        self.sequence_stride = sequence_stride
        self.sequence_length = sequence_length or fft_length
        if self.fft_length < self.sequence_length:
            raise ValueError(f"MelSpectrogram: `fft_length` must be greater than or equal to "
                             f"`sequence_length`. Received: `sequence_length`="
                             f"{self.sequence_length}, `fft_length`={self.fft_length}.")
        if isinstance(window, str) and window not in ("hann", "hamming"):
            raise ValueError(f'MelSpectrogram: if a string is passed to `window`, it must be one '
                             f'of "hann", "hamming". Received: window={window!r}')
        self.window = window
        self.sampling_rate = sampling_rate
        self.num_mel_bins = num_mel_bins
        self.min_freq = min_freq
        self.max_freq = max_freq or int(sampling_rate / 2)
        self.power_to_db = power_to_db
        self.top_db = top_db
        self.mag_exp = mag_exp
        self.min_power = min_power
        self.ref_power = ref_power
        super().__init__(**kwargs)

    def _dtype(self):
        return self.dtype if self.dtype in ("float32", "float64") else "float32"

    def call(self, inputs):
        x = inputs if isinstance(inputs, Tensor) else Tensor(np.asarray(inputs))
        x = ops.cast(x, self._dtype())
        if x.ndim not in (1, 2):
            raise ValueError(f"MelSpectrogram {self.name!r}: expected audio of shape (samples,) "
                             f"or (batch, samples), received shape {x.shape}")
        re, im = ops.stft(x, sequence_length=self.sequence_length,
                          sequence_stride=self.sequence_stride, fft_length=self.fft_length,
                          window=self.window, center=True)
        spec = ops.power(ops.sqrt(ops.square(re) + ops.square(im)), self.mag_exp)
        matrix = self.linear_to_mel_weight_matrix(
            num_mel_bins=self.num_mel_bins, num_spectrogram_bins=spec.shape[-1],
            sampling_rate=self.sampling_rate, lower_edge_hertz=self.min_freq,
            upper_edge_hertz=self.max_freq, dtype=self._dtype())
        out = ops.tensordot(spec, Tensor(matrix), axes=1)
        if self.power_to_db:
            out = self._dbscale(out)
        return ops.cast(ops.swapaxes(out, -1, -2), self.dtype)

    def _dbscale(self, x):
        log_spec = 10.0 * ops.log10(ops.maximum(x, self.min_power))
        ref = max(abs(float(self.ref_power)), self.min_power)
        log_spec = log_spec - np.asarray(10.0 * np.log10(ref), dtype=log_spec.dtype)
        floor = ops.max(log_spec) - self.top_db
        return ops.maximum(log_spec, floor)

    def linear_to_mel_weight_matrix(self, num_mel_bins=20, num_spectrogram_bins=129,
                                    sampling_rate=8000, lower_edge_hertz=125.0,
                                    upper_edge_hertz=3800.0, dtype="float32"):
        """The (num_spectrogram_bins, num_mel_bins) matrix of triangular filters, linear on the
        mel scale, peaks 1, the DC bin left out (HTK): filter m rises from mel edge e_m to
        e_(m+1) and falls to e_(m+2), the num_mel_bins + 2 edges equally spaced in mel
        between ``lower_edge_hertz`` and ``upper_edge_hertz``."""
        dt = np.dtype(dtype)
        freqs = np.linspace(0.0, sampling_rate / 2.0, num_spectrogram_bins, dtype=dt)[1:]
        bins_mel = _hertz_to_mel(freqs)[:, None]
        edges = np.linspace(_hertz_to_mel(np.asarray(lower_edge_hertz, dtype=dt)),
                            _hertz_to_mel(np.asarray(upper_edge_hertz, dtype=dt)),
                            num_mel_bins + 2, dtype=dt)
        lower, center, upper = edges[None, :-2], edges[None, 1:-1], edges[None, 2:]
        lower_slopes = (bins_mel - lower) / (center - lower)
        upper_slopes = (upper - bins_mel) / (upper - center)
        weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes)).astype(dt)
        return np.pad(weights, [(1, 0), (0, 0)])

    def compute_output_shape(self, input_shape):
        def frames(t):
            return None if t is None else (t + self.sequence_stride + 1) // self.sequence_stride
        if len(input_shape) == 1:
            return (self.num_mel_bins, frames(input_shape[0]))
        return (input_shape[0], self.num_mel_bins, frames(input_shape[1]))

    def get_config(self):
        cfg = super().get_config()
        window = self.window.tolist() if isinstance(self.window, np.ndarray) else self.window
        cfg.update({"fft_length": self.fft_length, "sequence_stride": self.sequence_stride,
                    "sequence_length": self.sequence_length, "window": window,
                    "sampling_rate": self.sampling_rate, "num_mel_bins": self.num_mel_bins,
                    "min_freq": self.min_freq, "max_freq": self.max_freq,
                    "power_to_db": self.power_to_db, "top_db": self.top_db,
                    "mag_exp": self.mag_exp, "min_power": self.min_power,
                    "ref_power": self.ref_power})
        return cfg
