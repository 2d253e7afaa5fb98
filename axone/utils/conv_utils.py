"""Convolution arithmetic of course 004 (output sizes and parameter counts).

    convolution, valid:  ⌈(L − (k − 1)·d) / s⌉   (= ⌊(L − k)/s⌋ + 1 for d = 1)
    convolution, same:   ⌈L / s⌉
    pooling, valid:      ⌊(L − p) / s⌋ + 1
    pooling, same:       ⌊(L − 1) / s⌋ + 1
    parameters:          (k_h · k_w · C_in + 1) · F      (without bias: k_h · k_w · C_in · F)

Example (004): Conv2D(20, (3, 3), padding="same") on 64×64×3 → (64, 64, 20) with
(3·3·3 + 1)·20 = 560 parameters; MaxPool2D((4, 4)) then → (16, 16, 20).
"""
import numpy as np

from ..ops.conv import conv_output_length as _conv_length
from ..ops.conv import pool_output_length as _pool_length

__all__ = ["conv_output_length", "pool_output_length", "conv_params", "conv_output_shape",
           "pool_output_shape", "normalize_tuple"]


def normalize_tuple(value, n, name="value"):
    """An int → n copies; a sequence of n ints as a tuple (Keras's ``normalize_tuple``)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value),) * n
    try:
        value = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, received {value!r}") from None
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, received {value!r}")
    return value


def _padding(padding, allowed):
    p = str(padding).lower()
    if p not in allowed:
        raise ValueError(f"padding must be one of {allowed}, received {padding!r}")
    return p


def _positive(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{name} must be a positive integer, received {v!r}")
    return int(v)


def conv_output_length(input_length, filter_size, padding, stride, dilation=1):
    """Output length of a convolution along one axis (None stays None).

    ``padding``: "valid", "same", "causal" or "full".
    >>> conv_output_length(64, 3, "same", 1), conv_output_length(5, 3, "valid", 1)
    (64, 3)
    """
    if input_length is None:
        return None
    padding = _padding(padding, ("valid", "same", "causal", "full"))
    return _conv_length(int(input_length), _positive(filter_size, "filter_size"), padding,
                        _positive(stride, "stride"), _positive(dilation, "dilation"))


def pool_output_length(input_length, pool_size, padding, stride):
    """Output length of a pooling along one axis: valid ⌊(L − p)/s⌋ + 1, same ⌊(L − 1)/s⌋ + 1.

    >>> pool_output_length(64, 4, "valid", 4)
    16
    """
    if input_length is None:
        return None
    padding = _padding(padding, ("valid", "same"))
    return _pool_length(int(input_length), _positive(pool_size, "pool_size"), padding,
                        _positive(stride, "stride"))


def conv_params(kernel_size, in_channels, filters, use_bias=True):
    """Trainable parameters of a convolution: (∏kernel_size · C_in + 1) · F (no "+ 1" without bias).

    ``kernel_size`` is an int k (a k×k kernel) or a tuple (k_h, k_w) / (k,) for Conv1D.
    >>> conv_params(3, 3, 20)
    560
    """
    ks = normalize_tuple(kernel_size, 2, "kernel_size") if isinstance(kernel_size, (int, np.integer)) \
        else normalize_tuple(kernel_size, len(tuple(kernel_size)), "kernel_size")
    if any(k <= 0 for k in ks):
        raise ValueError(f"kernel_size must be positive, received {kernel_size!r}")
    cin = _positive(in_channels, "in_channels")
    f = _positive(filters, "filters")
    return (int(np.prod(ks)) * cin + (1 if use_bias else 0)) * f


def conv_output_shape(input_shape, filters, kernel_size, strides=1, padding="valid", dilation_rate=1):
    """(H', W', F) of a channels-last Conv2D on ``input_shape`` = (H, W, C) (or any rank)."""
    spatial = tuple(input_shape[:-1])
    n = len(spatial)
    ks = normalize_tuple(kernel_size, n, "kernel_size")
    st = normalize_tuple(strides, n, "strides")
    dl = normalize_tuple(dilation_rate, n, "dilation_rate")
    return tuple(conv_output_length(L, k, padding, s, d) for L, k, s, d in zip(spatial, ks, st, dl)) \
        + (_positive(filters, "filters"),)


def pool_output_shape(input_shape, pool_size, strides=None, padding="valid"):
    """(H', W', C) of a channels-last pooling on ``input_shape`` = (H, W, C)."""
    spatial = tuple(input_shape[:-1])
    n = len(spatial)
    ps = normalize_tuple(pool_size, n, "pool_size")
    st = ps if strides is None else normalize_tuple(strides, n, "strides")
    return tuple(pool_output_length(L, p, padding, s) for L, p, s in zip(spatial, ps, st)) \
        + (input_shape[-1],)
