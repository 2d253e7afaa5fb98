"""Utilities: to_categorical, seeding, gradient checking, data helpers (pad_sequences,
timeseries windows, split_dataset, images), the progress bar."""
import random as _random

import numpy as np

from .. import backend
from ..autograd.gradcheck import GradientCheck, check_gradients, numerical_gradient
from .conv_utils import conv_output_length, conv_params, pool_output_length
from .plotting import (gradient_descent_1d, plot_confusion_matrix, plot_decision_regions,
                       plot_feature_maps, plot_filters, plot_gradient_descent_1d, plot_history)
from .backprop_trace import backprop_trace
from .init_study import init_study
from .dataset_utils import split_dataset
from .image_utils import array_to_img, img_to_array, load_img, save_img
from .progbar import Progbar
from .sequence_utils import pad_sequences
from .timeseries import timeseries_dataset_from_array

__all__ = ["check_gradients", "numerical_gradient", "GradientCheck", "set_random_seed",
           "to_categorical", "normalize", "clear_session", "conv_output_length",
           "pool_output_length", "conv_params", "plot_history", "plot_filters", "plot_feature_maps",
           "pad_sequences", "timeseries_dataset_from_array", "split_dataset", "Progbar",
           "load_img", "img_to_array", "array_to_img", "save_img",
           # the courses' learning tools
           "backprop_trace", "init_study", "plot_decision_regions", "plot_confusion_matrix",
           "gradient_descent_1d", "plot_gradient_descent_1d"]


def set_random_seed(seed):
    """Seed every random draw of axone (init, dropout, shuffling), and Python's and NumPy's
    global generators, so the same seed gives the same run bit for bit."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_random_seed: expected a non-negative integer, received {seed!r}")
    backend.set_seed(int(seed))
    _random.seed(int(seed))
    np.random.seed(int(seed) % (2 ** 32))


def to_categorical(x, num_classes=None):
    """One-hot encode integer class labels: ``to_categorical([0, 2], 3)`` → [[1,0,0],[0,0,1]].

    A trailing axis of size 1 is dropped first, as Keras does; ``num_classes``
    defaults to ``max(x) + 1``.
    """
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    x = np.asarray(x.data if hasattr(x, "data") and not isinstance(x, np.ndarray) else x)
    if x.dtype.kind == "f":
        if x.size and not np.all(np.mod(x, 1) == 0):
            raise ValueError("to_categorical: expected integer class labels, received non-integer values")
        x = x.astype(np.int64)
    if x.dtype.kind not in "iub":
        raise TypeError(f"to_categorical: expected integer class labels, received dtype {x.dtype}")
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical: labels must be non-negative, received {x.min()}")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(f"to_categorical: labels must lie in [0, {num_classes}), received a label {x.max()}")
    out = np.zeros(x.shape + (int(num_classes),), dtype=backend.floatx())
    np.put_along_axis(out, x[..., None].astype(np.int64), 1, axis=-1)
    return out


def normalize(x, axis=-1, order=2):
    x = np.asarray(x, dtype=backend.floatx())
    n = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(n == 0, 1, n)


def clear_session(free_memory=True):
    """Reset the global state as Keras's ``clear_session``: layer, model, metric and
    SeedGenerator auto-naming start again (``dense``, ``dense_1``, …)."""
    backend.clear_session(free_memory)


from ..datasets.remote import get_file  # noqa: E402

__all__ += ["get_file"]

from ..models.data_adapters import (PyDataset, Sequence, pack_x_y_sample_weight,  # noqa: E402
                                    unpack_x_y_sample_weight)

__all__ += ["PyDataset", "Sequence", "pack_x_y_sample_weight", "unpack_x_y_sample_weight"]

from .directory_datasets import (audio_dataset_from_directory,  # noqa: E402
                                 image_dataset_from_directory, text_dataset_from_directory)

__all__ += ["image_dataset_from_directory", "text_dataset_from_directory",
            "audio_dataset_from_directory"]
from ..saving import (CustomObjectScope, custom_object_scope, deserialize_keras_object,  # noqa: E402
                      get_custom_objects, get_registered_name, get_registered_object,
                      register_keras_serializable, serialize_keras_object)

from ..io_utils import (disable_interactive_logging, enable_interactive_logging,  # noqa: E402
                        is_interactive_logging_enabled)
from .config import Config  # noqa: E402

__all__ += ["Config", "enable_interactive_logging", "disable_interactive_logging",
            "is_interactive_logging_enabled", "get_source_inputs", "is_keras_tensor",
            "standardize_dtype"]

# the dtype names Keras 3 accepts, and what Python types and type names stand for
_ALLOWED_DTYPES = ("float16", "float32", "float64", "uint8", "uint16", "uint32", "uint64", "int8",
                   "int16", "int32", "int64", "bfloat16", "bool", "string", "float8_e4m3fn",
                   "float8_e5m2", "complex64", "complex128")
_PYTHON_DTYPES = {bool: "bool", int: "int32", float: "float32", str: "string", "int": "int32",
                  complex: "complex64"}


def standardize_dtype(dtype):
    """The Keras name of ``dtype``: ``None`` → ``floatx()``, ``int`` → ``"int32"``, ``float`` →
    ``"float32"``, ``str`` → ``"string"``, a NumPy dtype or scalar type, a torch dtype or a
    name → its name; a dtype Keras does not know raises ``ValueError``."""
    if dtype is None:
        return backend.floatx()
    try:
        dtype = _PYTHON_DTYPES.get(dtype, dtype)
    except TypeError:                     # unhashable
        pass
    if hasattr(dtype, "name") and isinstance(dtype.name, str):
        dtype = dtype.name
    elif hasattr(dtype, "__name__"):
        dtype = dtype.__name__
    elif "torch" in str(dtype) or "jax.numpy" in str(dtype):
        dtype = str(dtype).split(".")[-1]
    if not isinstance(dtype, str) or dtype not in _ALLOWED_DTYPES:
        raise ValueError(f"Invalid dtype: {dtype}")
    return dtype


def is_keras_tensor(x):
    """True when ``x`` is a symbolic tensor of a functional graph (a ``KerasTensor`` made by
    ``Input`` or by calling layers on one), False for arrays, Tensors and anything else."""
    from ..layers.base import KerasTensor
    return isinstance(x, KerasTensor)


def get_source_inputs(tensor):
    """The ``Input`` tensors that ``tensor`` is computed from, as a list, each once, in the
    order the graph reaches them. A tensor without graph history is returned as it is."""
    from ..layers.base import KerasTensor
    if not isinstance(tensor, KerasTensor) or tensor._history is None:
        return tensor
    layer, node, _ = tensor._history
    if node is None or not node.flat_inputs:        # an Input: the graph starts here
        return list(node.flat_outputs) if node is not None else [tensor]
    found = []
    for t in node.flat_inputs:
        for src in get_source_inputs(t):
            if all(src is not f for f in found):
                found.append(src)
    return found

from .model_visualization import model_to_dot, plot_model  # noqa: E402

__all__ += ["model_to_dot", "plot_model"]

from .feature_space import FeatureSpace  # noqa: E402

__all__ += ["FeatureSpace"]
