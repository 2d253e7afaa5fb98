"""Discrete Fourier transforms under their ``keras.ops`` names: fft, fft2, ifft2, rfft, irfft,
stft and istft.

As in Keras 3, a complex tensor is a ``(real, imag)`` pair of float tensors of one shape, and
every transform returns such a pair (``irfft`` and ``istft`` return one real tensor).

With F the unnormalized DFT matrix, F_kj = e^(−2πi·jk/N), every transform here is linear, and
the backward pass of a linear map y = A·x is its adjoint: for a real loss L and
G = dL/dRe y + i·dL/dIm y,  dL/dRe x + i·dL/dIm x = Aᴴ·G.  So the backward of ``fft`` is
Fᴴ·G = N·ifft(G), the backward of ``ifft2`` is F·G / N, and the real transforms add the
conjugate-symmetry bookkeeping written under each one.  ``stft`` and ``istft`` are built from
these nodes and the framing / overlap-add pair (each the adjoint of the other).
"""
import numpy as np

from ..autograd.function import Function
from ..device import array_module
from ..autograd.tensor import Tensor
from . import math as M
from . import numpy as N

__all__ = ["fft", "fft2", "ifft2", "rfft", "irfft", "stft", "istft"]


# ------------------------------------------------------------------ inputs
def _float_tensor(x, op, what="x"):
    t = x if isinstance(x, Tensor) else M._t(x, op)
    if t.data.dtype.kind != "f":
        raise ValueError(f"{op}: {what} must be of a floating type, received dtype {t.data.dtype}")
    return t


def _complex_pair(x, op):
    """The (real, imag) Tensors of a complex input given as a tuple, checked as Keras does."""
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(f"{op}: input `x` should be a tuple of two tensors - real and imaginary. "
                         f"Received: x={x!r}")
    re, im = (_float_tensor(v, op, "both parts of `x`") for v in x)
    if re.shape != im.shape:
        raise ValueError(f"{op}: input `x` should be a tuple of two tensors - real and imaginary. "
                         f"Both the real and imaginary parts should have the same shape. "
                         f"Received: x[0].shape = {re.shape}, x[1].shape = {im.shape}")
    if re.dtype != im.dtype:
        dt = np.result_type(re.dtype, im.dtype)
        re, im = M.cast(re, dt), M.cast(im, dt)
    return re, im


def _rank_at_least(t, n, op):
    if t.ndim < n:
        raise ValueError(f"{op}: input should have rank >= {n}. Received: input.shape = {t.shape}")


def _split(packed):
    """The two halves of a packed (2, …) result as differentiable Tensors."""
    return M.get_item(packed, 0), M.get_item(packed, 1)


def _pack(z, dtype):
    return array_module(z).stack([z.real, z.imag]).astype(dtype, copy=False)


# ------------------------------------------------------------------ complex transforms
class ComplexDFT(Function):
    """Y = F·X over ``axes`` (``inverse``: Y = F̄·X / N, N the product of the axes' lengths).
    Backward (the adjoint): G_X = Fᴴ·G = N·ifft(G) for the forward transform,
    G_X = F·G / N = fft(G) / N for the inverse one."""

    def forward(self, re, im):
        self.dtype = re.dtype
        xp = array_module(re, im)
        z = re + 1j * im
        z = xp.fft.ifftn(z, axes=self.axes) if self.inverse else xp.fft.fftn(z, axes=self.axes)
        return _pack(z, re.dtype)

    def backward(self, g):
        xp = array_module(g)
        gz = g[0] + 1j * g[1]
        n = int(np.prod([g.shape[1:][a] for a in self.axes]))
        gx = xp.fft.fftn(gz, axes=self.axes) / n if self.inverse else \
            xp.fft.ifftn(gz, axes=self.axes) * n
        return gx.real.astype(self.dtype), gx.imag.astype(self.dtype)


def _complex(x, op, axes, inverse, rank):
    re, im = _complex_pair(x, op)
    _rank_at_least(re, rank, op)
    return _split(ComplexDFT.apply(re, im, axes=axes, inverse=inverse))


def fft(x):
    """The DFT along the last axis: Y_k = Σ_j X_j·e^(−2πi·jk/N), of ``x = (real, imag)``;
    returns ``(real, imag)``."""
    return _complex(x, "fft", (-1,), False, 1)


def fft2(x):
    """The 2-D DFT over the last two axes of ``x = (real, imag)``; returns ``(real, imag)``."""
    return _complex(x, "fft2", (-2, -1), False, 2)


def ifft2(x):
    """The 2-D inverse DFT over the last two axes, X_jl = (1/MN)·Σ Y_km·e^(+2πi(jk/M + lm/N)),
    of ``x = (real, imag)``; returns ``(real, imag)``."""
    return _complex(x, "ifft2", (-2, -1), True, 2)


# ------------------------------------------------------------------ real transforms
def _fit_last(a, n):
    """``a`` cropped or zero-padded along its last axis to length n."""
    m = a.shape[-1]
    if m == n:
        return a
    if m > n:
        return a[..., :n]
    xp = array_module(a)
    pad = xp.zeros(a.shape[:-1] + (n - m,), dtype=a.dtype)
    return xp.concatenate([a, pad], axis=-1)


class RealDFT(Function):
    """Y_k = Σ_{j<n} x_j·e^(−2πi·jk/n), k = 0 … n//2 (x cropped or zero-padded to n).
    Backward: g_x,j = Re Σ_k G_k·e^(+2πi·jk/n) = Re(n·ifft(G padded with zeros to n))_j,
    then cropped / zero-padded back to the input's length."""

    def forward(self, x):
        self.dtype, self.length = x.dtype, x.shape[-1]
        return _pack(array_module(x).fft.rfft(x, n=self.n, axis=-1), x.dtype)

    def backward(self, g):
        gz = _fit_last(g[0] + 1j * g[1], self.n)
        gx = (array_module(gz).fft.ifft(gz, axis=-1) * self.n).real
        return (_fit_last(gx, self.length).astype(self.dtype),)


class InverseRealDFT(Function):
    """x_j = (1/n)·Σ_{k ≤ n//2} c_k·Re(Y_k·e^(+2πi·jk/n)), c_0 = 1, c_k = 2 for 0 < k < n − n//2,
    c_{n/2} = 1 (n even): the inverse DFT of the Hermitian extension of Y (its first n//2 + 1
    bins, cropped or zero-padded; the imaginary parts of the DC and Nyquist bins drop out).
    Backward: G_Y,k = (c_k / n)·rfft(g)_k, fitted back to the input's number of bins."""

    def forward(self, re, im):
        self.dtype, self.bins = re.dtype, re.shape[-1]
        xp = array_module(re, im)
        return xp.fft.irfft(re + 1j * im, n=self.n, axis=-1).astype(re.dtype, copy=False)

    def backward(self, g):
        n = self.n
        gy = array_module(g).fft.rfft(g, n=n, axis=-1) / n
        gy[..., 1:n - (n // 2 + 1) + 1] *= 2
        gy = _fit_last(gy, self.bins)
        return gy.real.astype(self.dtype), gy.imag.astype(self.dtype)


def _fft_length(fft_length, default, op):
    n = default if fft_length is None else fft_length
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{op}: fft_length must be a positive integer, received {fft_length!r}")
    return int(n)


def rfft(x, fft_length=None):
    """The DFT of a real signal along the last axis, its ``fft_length // 2 + 1`` unique bins
    (the signal cropped or zero-padded to ``fft_length``, default its length); returns
    ``(real, imag)``."""
    x = _float_tensor(x, "rfft")
    _rank_at_least(x, 1, "rfft")
    n = _fft_length(fft_length, x.shape[-1], "rfft")
    return _split(RealDFT.apply(x, n=n))


def irfft(x, fft_length=None):
    """The inverse of :func:`rfft`: a real signal of ``fft_length`` samples (default
    2·(bins − 1)) from the ``(real, imag)`` unique bins along the last axis."""
    re, im = _complex_pair(x, "irfft")
    _rank_at_least(re, 1, "irfft")
    default = 2 * (re.shape[-1] - 1)
    if fft_length is None and default < 1:
        raise ValueError(f"irfft: cannot infer fft_length from {re.shape[-1]} bin(s); give "
                         f"fft_length")
    n = _fft_length(fft_length, default, "irfft")
    return InverseRealDFT.apply(re, im, n=n)


# ------------------------------------------------------------------ framing
class Frames(Function):
    """Frames of ``length`` samples every ``stride`` along the last axis:
    y[…, f, j] = x[…, f·stride + j], shape (…, frames, length).
    Backward: the overlap-add of the gradient's frames, g_x,t = Σ_{f·stride + j = t} G[…, f, j]."""

    def forward(self, x):
        self.total = x.shape[-1]
        count = (x.shape[-1] - self.length) // self.stride + 1
        xp = array_module(x)
        idx = xp.arange(count)[:, None] * self.stride + xp.arange(self.length)[None, :]
        return x[..., idx]

    def backward(self, g):
        return (_overlap_add(g, self.stride, self.total),)


class OverlapAdd(Function):
    """y[…, t] = Σ_{f·stride + j = t} x[…, f, j], of length (frames − 1)·stride + length.
    Backward: the frames of the gradient, G_x[…, f, j] = g[…, f·stride + j]."""

    def forward(self, x):
        self.frames, self.length = x.shape[-2], x.shape[-1]
        return _overlap_add(x, self.stride, (self.frames - 1) * self.stride + self.length)

    def backward(self, g):
        xp = array_module(g)
        idx = xp.arange(self.frames)[:, None] * self.stride + xp.arange(self.length)[None, :]
        return (g[..., idx],)


def _overlap_add(frames, stride, total):
    """Σ of the frames (…, F, n) placed every ``stride`` samples, on ``total`` samples."""
    count, n = frames.shape[-2], frames.shape[-1]
    k = -(-n // stride)                       # how many stride-blocks one frame covers
    batch = frames.shape[:-2]
    xp = array_module(frames)
    padded = xp.zeros(batch + (count, k * stride), dtype=frames.dtype)
    padded[..., :n] = frames
    blocks = padded.reshape(batch + (count, k, stride))
    out = xp.zeros(batch + (count + k - 1, stride), dtype=frames.dtype)
    for i in range(k):
        out[..., i:i + count, :] += blocks[..., :, i, :]
    out = out.reshape(batch + ((count + k - 1) * stride,))
    return _fit_last(out, total)


# ------------------------------------------------------------------ windows
def _check_stride(sequence_stride, op):
    if isinstance(sequence_stride, bool) or not isinstance(sequence_stride, (int, np.integer)) \
            or sequence_stride <= 0:
        raise ValueError(f"{op}: `sequence_stride` must be a positive integer. Received: "
                         f"sequence_stride={sequence_stride!r}")
    return int(sequence_stride)


def _positive(v, name, op):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{op}: `{name}` must be a positive integer. Received: {name}={v!r}")
    return int(v)


def _window(window, length, dtype, op, xp=np):
    """The window as a Tensor of ``length`` values (periodic Hann / Hamming, as Keras) in the
    array module ``xp`` of the signal, or None."""
    if window is None:
        return None
    if isinstance(window, str):
        if window not in ("hann", "hamming"):
            raise ValueError(f'{op}: if a string is passed to `window`, it must be one of "hann", '
                             f'"hamming". Received: window={window!r}')
        if length == 1:
            w = xp.ones(1)
        else:
            a = 0.5 if window == "hann" else 0.54
            w = a - (1 - a) * xp.cos(2 * np.pi * xp.arange(length) / length)
        return Tensor(w.astype(dtype))
    w = window if isinstance(window, Tensor) else Tensor(
        window if array_module(window) is xp else xp.asarray(np.asarray(window), dtype=dtype))
    if w.dtype != dtype:
        w = M.cast(w, dtype)
    if w.ndim != 1 or w.shape[0] != length:
        raise ValueError(f"{op}: the shape of `window` must be equal to [sequence_length] = "
                         f"[{length}]. Received: window shape={w.shape}")
    return w


def _centered(w, n):
    """A window of ``len(w)`` ≤ n values zero-padded on both sides to n (left (n − len)//2)."""
    lo = (n - w.shape[0]) // 2
    if lo == 0 and w.shape[0] == n:
        return w
    return M.pad(w, [(lo, n - w.shape[0] - lo)])


def _reflect_pad(x, p, op):
    """x padded by p samples on both ends of its last axis, mirrored without the edge sample."""
    n = x.shape[-1]
    if p >= n:
        raise ValueError(f"{op}: with center=True the signal is reflect-padded by fft_length // 2 "
                         f"= {p} samples, which needs more than {p} samples; received "
                         f"{n} along the last axis")
    xp = array_module(x.data)
    idx = xp.concatenate([xp.arange(p, 0, -1), xp.arange(n), xp.arange(n - 2, n - 2 - p, -1)])
    return M.take(x, idx, axis=x.ndim - 1)


# ------------------------------------------------------------------ stft / istft
def stft(x, sequence_length, sequence_stride, fft_length, window="hann", center=True):
    """Short-time Fourier transform along the last axis: frames of ``fft_length`` samples every
    ``sequence_stride``, each multiplied by the window (``sequence_length`` values centred in
    the frame) and transformed by :func:`rfft`:
        S[…, f, k] = Σ_j w_j·x[…, f·stride + j]·e^(−2πi·jk/fft_length).
    With ``center`` the signal is first reflect-padded by fft_length // 2 on both sides.
    Returns ``(real, imag)`` of shape (…, frames, fft_length // 2 + 1)."""
    op = "stft"
    stride = _check_stride(sequence_stride, op)
    x = x if isinstance(x, Tensor) else M._t(x, op)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: invalid input type. Expected `float32` or `float64`. Received: "
                        f"input type={x.dtype}")
    length = _positive(sequence_length, "sequence_length", op)
    n = _positive(fft_length, "fft_length", op)
    if n < length:
        raise ValueError(f"{op}: `fft_length` must equal or larger than `sequence_length`. "
                         f"Received: sequence_length={length}, fft_length={n}")
    xp = array_module(x.data)
    w = _window(window, length, x.dtype, op, xp)
    _rank_at_least(x, 1, op)
    if center:
        x = _reflect_pad(x, n // 2, op)
    if x.shape[-1] < n:
        raise ValueError(f"{op}: the signal has {x.shape[-1]} samples (after padding), fewer "
                         f"than fft_length={n}")
    if w is None:
        w = Tensor(xp.ones(length, dtype=x.dtype))
    frames = Frames.apply(x, length=n, stride=stride) * _centered(w, n)
    return _split(RealDFT.apply(frames, n=n))


def istft(x, sequence_length, sequence_stride, fft_length, length=None, window="hann",
          center=True):
    """Inverse short-time Fourier transform: each frame's :func:`irfft`, windowed and
    overlap-added,  y_t = Σ_f w̃_(t − f·stride)·irfft(S[…, f])_(t − f·stride).
    As Keras's PyTorch backend: when ``sequence_length == fft_length``, ``center`` and a window
    are given, y is divided by the overlap-added squared window Σ_f w²_(t − f·stride) (the
    signal ``stft`` was taken from comes back exactly); otherwise the window is divided by its
    squares summed over the ``stride``-periodic positions.  With ``center``, fft_length // 2
    samples are dropped at each end; ``length`` crops (or zero-pads) the result."""
    op = "istft"
    stride = _check_stride(sequence_stride, op)
    re, im = _complex_pair(x, op)
    _rank_at_least(re, 2, op)
    seq = _positive(sequence_length, "sequence_length", op)
    n = _positive(fft_length, "fft_length", op)
    if length is not None:
        length = _positive(length, "length", op)
    xp = array_module(re.data)
    w = _window(window, seq, re.dtype, op, xp)
    count = re.shape[-2]
    frames = InverseRealDFT.apply(re, im, n=n)                 # (…, frames, n)
    expected = n + stride * (count - 1)
    start = n // 2 if center else 0
    if seq == n and center and w is not None:
        y = OverlapAdd.apply(frames * w, stride=stride)
        env = OverlapAdd.apply(N.broadcast_to(w * w, (count, n)), stride=stride)
        end = start + length if length is not None else expected - n // 2
        stop = min(end, expected)
        env = M.get_item(env, slice(start, stop))
        low = float(xp.abs(env.data).min()) if env.data.size else 1.0
        if low < 1e-11:
            raise ValueError(f"{op}: the window's overlap-add has a zero (min {low:.3g}); "
                             f"choose a window and sequence_stride whose squared windows cover "
                             f"every sample")
        y = M.get_item(y, (Ellipsis, slice(start, stop))) / env
        if end > expected:
            y = M.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, end - expected)])
        return y
    if w is not None:
        wp = _centered(w, n)
        overlaps = -(-n // stride)
        sq = M.pad(wp * wp, [(0, overlaps * stride - n)])
        per_phase = M.sum(M.reshape(sq, (overlaps, stride)), axis=0)
        frames = frames * (wp / M.take(per_phase, xp.arange(n) % stride))
    y = OverlapAdd.apply(frames, stride=stride)
    if length is not None:
        key = slice(start, start + length)
    elif center:
        key = slice(start, -(n // 2) if n // 2 else None)
    else:
        key = slice(start, expected)
    return M.get_item(y, (Ellipsis, key))
