"""Weight initializers (Keras names and defaults), all drawing from the backend generator.

Glorot: Var(w) = 2 / (fan_in + fan_out); He: std = √(2 / fan_in); LeCun: Var = 1 / fan_in
(SPEC.md §8 errata: not 001's 1/√(2m)).
"""
import math

import numpy as np

from . import backend

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform",
           "HeNormal", "LecunUniform", "LecunNormal", "Orthogonal", "Identity", "STFT",
           "IdentityInitializer", "OrthogonalInitializer", "STFTInitializer", "constant",
           "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "identity", "lecun_normal",
           "lecun_uniform", "ones", "orthogonal", "random_normal", "random_uniform", "stft",
           "truncated_normal", "variance_scaling", "zeros", "get", "serialize", "deserialize"]


def _rng(seed):
    return backend.rng() if seed is None else np.random.default_rng(seed)


def compute_fans(shape):
    """(fan_in, fan_out) as Keras computes them: kernels (…, in, out) count the receptive field."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return np.zeros(shape, dtype=dtype or backend.floatx())


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return np.ones(shape, dtype=dtype or backend.floatx())


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype=dtype or backend.floatx())

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        return _rng(self.seed).normal(self.mean, self.stddev, shape).astype(dtype or backend.floatx())

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype=None):
        return _rng(self.seed).uniform(self.minval, self.maxval, shape).astype(dtype or backend.floatx())

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_normal(rng, mean, stddev, shape):
    """Normal draws, redrawing every value that falls beyond 2σ."""
    out = rng.normal(0.0, 1.0, shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
        bad = np.abs(out) > 2
    return mean + stddev * out


class TruncatedNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        return _truncated_normal(_rng(self.seed), self.mean, self.stddev, shape).astype(
            dtype or backend.floatx())

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    """Draws with variance ``scale / n``, n = fan_in, fan_out or their mean (``mode``)."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 input_axes=None, output_axes=None):
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be positive, received {scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be 'fan_in', 'fan_out' or 'fan_avg', received {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform", "normal"):
            raise ValueError(f"VarianceScaling: unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed
        self.input_axes, self.output_axes = input_axes, output_axes

    def __call__(self, shape, dtype=None):
        if self.input_axes is not None and self.output_axes is not None:
            fan_in = int(np.prod([shape[a] for a in np.atleast_1d(self.input_axes)]))
            fan_out = int(np.prod([shape[a] for a in np.atleast_1d(self.output_axes)]))
        else:
            fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        rng = _rng(self.seed)
        if self.distribution == "truncated_normal":
            std = math.sqrt(var) / 0.87962566103423978  # std of a unit normal truncated at ±2
            out = _truncated_normal(rng, 0.0, std, shape)
        elif self.distribution in ("untruncated_normal", "normal"):
            out = rng.normal(0.0, math.sqrt(var), shape)
        else:
            limit = math.sqrt(3.0 * var)
            out = rng.uniform(-limit, limit, shape)
        return out.astype(dtype or backend.floatx())

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


class GlorotUniform(VarianceScaling):
    """U(−l, l), l = √(6 / (fan_in + fan_out)): Var = 2 / (fan_in + fan_out)."""

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_avg", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class HeUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class HeNormal(VarianceScaling):
    """Truncated normal with std √(2 / fan_in)."""

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class LecunUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class LecunNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed}


class Orthogonal(Initializer):
    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape, dtype=None):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: the shape must have at least 2 dimensions, received {shape}")
        rows = int(np.prod(shape[:-1]))
        cols = shape[-1]
        a = _rng(self.seed).normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(dtype or backend.floatx())

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(f"Identity: only 2-D shapes are supported, received {shape}")
        return (self.gain * np.eye(*shape)).astype(dtype or backend.floatx())

    def get_config(self):
        return {"gain": self.gain}


def _window(name, length, periodic):
    """The window ``name`` of ``length`` points (symmetric, or periodic: the first ``length``
    points of the ``length + 1`` symmetric window), as ``scipy.signal.get_window``."""
    n = length + 1 if periodic else length
    if name in ("boxcar", "rect", "rectangular", "ones"):
        w = np.ones(n)
    elif n == 1:
        w = np.ones(1)
    elif name in ("hann", "hanning"):
        w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1))
    elif name in ("hamming", "hamm"):
        w = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(n) / (n - 1))
    elif name in ("blackman", "black", "blk"):
        k = 2 * np.pi * np.arange(n) / (n - 1)
        w = 0.42 - 0.5 * np.cos(k) + 0.08 * np.cos(2 * k)
    else:
        try:
            import scipy.signal
        except ImportError:
            raise ImportError(f"STFT: the window {name!r} needs SciPy (pip install scipy); "
                              f"without it 'hann', 'hamming', 'blackman' and 'boxcar' are "
                              f"available") from None
        return np.asarray(scipy.signal.get_window(name, length, fftbins=periodic), dtype=np.float64)
    return w[:length]


_WINDOWS = ("boxcar", "rect", "rectangular", "ones", "hann", "hanning", "hamming", "hamm",
            "blackman", "black", "blk")


class STFT(Initializer):
    """Kernels of a short-time Fourier transform as a convolution, shape (T, 1, F//2 + 1):

        k[t, 0, f] = cos(−2π·t·f/F) (``side="real"``) or sin(−2π·t·f/F) (``"imag"``),
        F = 2·(F//2), times the window w[t] / s, s = √Σw² ("density") or Σ|w| ("spectrum").
    """

    def __init__(self, side="real", window="hann", scaling="density", periodic=False):
        if side not in ("real", "imag"):
            raise ValueError(f"STFT: side should be 'real' or 'imag', received {side!r}")
        if isinstance(window, str) and window not in _WINDOWS:
            _window(window, 1, False)        # an unknown window name raises here, as Keras
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError(f"STFT: scaling must be None, 'density' or 'spectrum', "
                             f"received {scaling!r}")
        self.side, self.window, self.scaling, self.periodic = side, window, scaling, periodic

    def __call__(self, shape, dtype=None):
        dtype = dtype or backend.floatx()
        if len(shape) != 3:
            raise ValueError(f"STFT: the shape must be (frame_length, input_channels, "
                             f"fft_length // 2 + 1), received {shape}")
        frame_length, _, fft_length = (int(d) for d in shape)
        full = (fft_length - 1) * 2
        freq = np.arange(fft_length, dtype=dtype).reshape(1, 1, -1) / np.asarray(full, dtype)
        time = np.arange(frame_length, dtype=dtype).reshape(-1, 1, 1)
        args = (-2 * time * freq * np.asarray(np.pi, dtype)).astype(dtype)
        kernel = (np.cos(args) if self.side == "real" else np.sin(args)).astype(dtype)
        if self.window is not None:
            win = self.window
            if isinstance(win, str):
                win = _window(win, frame_length, self.periodic)
            win = np.asarray(win, dtype=dtype)
            if win.ndim != 1 or win.shape[0] != frame_length:
                raise ValueError(f"STFT: the window must have shape ({frame_length},) "
                                 f"(frame_length), received {win.shape}")
            win = win.reshape(frame_length, 1, 1)
            scale = 1.0
            if self.scaling == "density":
                scale = np.sqrt(np.sum(np.square(win)))
            elif self.scaling == "spectrum":
                scale = np.sum(np.abs(win))
            kernel = kernel * win / scale
        return np.broadcast_to(kernel, tuple(int(d) for d in shape)).astype(dtype)

    def get_config(self):
        win = self.window.tolist() if isinstance(self.window, np.ndarray) else self.window
        return {"side": self.side, "window": win, "periodic": self.periodic,
                "scaling": self.scaling}


# Keras's other names of the same classes, and its lower-case function names
IdentityInitializer = Identity
OrthogonalInitializer = Orthogonal
STFTInitializer = STFT
constant, identity, ones, zeros, stft, orthogonal = Constant, Identity, Ones, Zeros, STFT, Orthogonal
glorot_normal, glorot_uniform, he_normal, he_uniform = GlorotNormal, GlorotUniform, HeNormal, HeUniform
lecun_normal, lecun_uniform, variance_scaling = LecunNormal, LecunUniform, VarianceScaling
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal


_ALIASES = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
    "identity": Identity, "stft": STFT,
    # Keras's short aliases
    "uniform": RandomUniform, "normal": RandomNormal, "zero": Zeros, "one": Ones,
}
_CLASSES = {cls.__name__: cls for cls in _ALIASES.values()}
_CLASSES.update({"IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal,
                 "STFTInitializer": STFT})


def serialize(initializer):
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config):
    name = config.get("class_name")
    cls = _CLASSES.get(name) or _ALIASES.get(name)
    if cls is None:
        raise ValueError(f"Unknown initializer {name!r}; valid names: {sorted(_ALIASES)}")
    return cls(**config.get("config", {}))


def get(identifier):
    """An initializer from a name (``"glorot_uniform"``), a config dict, an instance or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        key = identifier if identifier in _ALIASES else identifier.lower()
        cls = _ALIASES.get(key) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown initializer {identifier!r}; valid names: {sorted(_ALIASES)}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier) and not hasattr(identifier, "__array__"):
        return identifier
    if isinstance(identifier, np.ndarray) or hasattr(identifier, "__array__"):
        value = np.asarray(identifier)

        def initialize_fn(shape, dtype=None):
            if tuple(shape) != value.shape:
                raise ValueError(f"initializer: the given value has shape {value.shape}, "
                                 f"which differs from the requested shape {tuple(shape)}")
            return np.array(value, dtype=dtype or (value.dtype if value.dtype.kind == "f"
                                                   else backend.floatx()))
        return initialize_fn
    raise TypeError(f"Could not interpret initializer identifier: {identifier!r}")


def _register():
    from . import variables
    variables._resolve_initializer = get


_register()
