"""Differentiable ops on :class:`axone.Tensor`, named as in ``keras.ops``."""
from .math import *  # noqa: F401,F403
from .math import __all__ as _math_all
from .nn import *  # noqa: F401,F403
from .nn import __all__ as _nn_all
from .numpy import *  # noqa: F401,F403
from .numpy import __all__ as _numpy_all
from . import core, linalg  # noqa: F401 - keras.ops.core / linalg modules
from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all
from .linalg import *  # noqa: F401,F403
from .linalg import __all__ as _linalg_all
from .normalization import batch_normalization, layer_normalization, moments, rms_normalization
from .attention import dot_product_attention
from .conv import (average_pool, conv, conv1d, conv2d, conv_transpose, depthwise_conv, max_pool)
from .conv import (adaptive_average_pool, adaptive_max_pool, depth_to_space, fold, separable_conv,
                   space_to_depth, unfold)
from .ctc import ctc_decode, ctc_loss

__all__ = list(dict.fromkeys(list(_math_all) + list(_numpy_all))) + list(_nn_all) + [
    "batch_normalization", "moments", "conv", "conv1d", "conv2d", "conv_transpose", "depthwise_conv",
    "max_pool", "average_pool", "adaptive_average_pool", "adaptive_max_pool", "depth_to_space", "fold",
    "separable_conv", "space_to_depth", "unfold", "ctc_loss", "ctc_decode"]
__all__ += [n for n in list(_core_all) + list(_linalg_all) if n not in __all__]

from . import fft as _fft_module  # noqa: E402
from .fft import fft, fft2, ifft2, irfft, istft, rfft, stft  # noqa: E402,F401

__all__ += [n for n in _fft_module.__all__ if n not in __all__]
from . import image  # noqa: F401,E402 - keras.ops.image
