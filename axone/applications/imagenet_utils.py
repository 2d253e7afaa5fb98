"""What every application shares (``keras.applications.imagenet_utils``): checking the
arguments, the input shape, the ImageNet weight files, ``preprocess_input`` and
``decode_predictions``.

The 1,000 ImageNet class names are bundled as ``imagenet_class_index.json`` in Keras's form
``{"0": ["n01440764", "tench"], ...}``: index ``i`` is the ``i``-th WordNet synset id in sorted
order (the ILSVRC-2012 class order) and its name is the first lemma of that synset with spaces
written as underscores.  Both lists come from the Apache-2.0 ``timm`` wheel
(``timm/data/_info/imagenet_synsets.txt`` and ``imagenet_synset_to_lemma.txt``).
"""
import json
import os
import warnings

import numpy as np

from .. import config

#: where Keras publishes its application weight files
BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

_CLASS_INDEX = None

__all__ = ["preprocess_input", "decode_predictions", "obtain_input_shape", "correct_pad"]


def _class_index():
    global _CLASS_INDEX
    if _CLASS_INDEX is None:
        path = os.path.join(os.path.dirname(__file__), "imagenet_class_index.json")
        with open(path, encoding="utf-8") as f:
            _CLASS_INDEX = json.load(f)
    return _CLASS_INDEX


def decode_predictions(preds, top=5):
    """The ``top`` most probable ImageNet classes of each row of ``preds`` (shape
    ``(samples, 1000)``), as lists of ``(class_name, class_description, score)`` sorted by
    decreasing score."""
    preds = np.asarray(getattr(preds, "data", preds))
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError("`decode_predictions` expects a batch of predictions (i.e. a 2D array "
                         f"of shape (samples, 1000)). Received array with shape: {preds.shape}")
    index = _class_index()
    results = []
    for row in preds:
        best = row.argsort()[-top:][::-1]
        result = [tuple(index[str(i)]) + (row[i],) for i in best]
        result.sort(key=lambda r: r[2], reverse=True)
        results.append(result)
    return results


_MEANS = {"caffe": (103.939, 116.779, 123.68), "torch": (0.485, 0.456, 0.406)}
_STDS = {"torch": (0.229, 0.224, 0.225)}


def preprocess_input(x, data_format=None, mode="caffe"):
    """Scale a batch of RGB images with values in [0, 255] as the ImageNet weights expect.

    mode ``"caffe"``: RGB to BGR, then minus the ImageNet mean of each channel;
    ``"tf"``: ``x / 127.5 - 1`` (values in [-1, 1]); ``"torch"``: ``x / 255``, minus the
    ImageNet mean and divided by its standard deviation, per channel.  A floating NumPy
    array is written over (as Keras does); an integer one is converted to float32 first.
    ``data_format`` is ``"channels_last"`` (default) or ``"channels_first"``.
    """
    if mode not in {"caffe", "tf", "torch"}:
        raise ValueError(f"Expected mode to be one of `caffe`, `tf` or `torch`. Received: mode={mode}")
    if data_format is None:
        data_format = config.image_data_format()
    elif data_format not in {"channels_first", "channels_last"}:
        raise ValueError("Expected data_format to be one of `channels_first` or `channels_last`. "
                         f"Received: data_format={data_format}")
    if isinstance(x, np.ndarray):
        return _preprocess_array(x, data_format, mode)
    return _preprocess_tensor(x, data_format, mode)


def _channel_shape(ndim, data_format):
    if data_format == "channels_first":
        return (3, 1, 1) if ndim == 3 else (1, 3) + (1,) * (ndim - 2)
    return (1,) * (ndim - 1) + (3,)


def _preprocess_array(x, data_format, mode):
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype("float32", copy=False)
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    if mode == "torch":
        x /= 255.0
    else:
        axis = (0 if x.ndim == 3 else 1) if data_format == "channels_first" else -1
        x = np.flip(x, axis=axis)
    shape = _channel_shape(x.ndim, data_format)
    x -= np.asarray(_MEANS[mode], dtype=x.dtype).reshape(shape)
    if mode in _STDS:
        x /= np.asarray(_STDS[mode], dtype=x.dtype).reshape(shape)
    return x


def _preprocess_tensor(x, data_format, mode):
    """The same on a Tensor or a symbolic tensor, as differentiable ops (a new tensor)."""
    ndim = len(x.shape)
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        x = x / 255.0
    elif data_format == "channels_first":
        x = x[::-1] if ndim == 3 else x[:, ::-1]
    else:
        x = x[..., ::-1]
    shape = _channel_shape(ndim, data_format)
    x = x - np.asarray(_MEANS[mode], dtype="float32").reshape(shape)
    if mode in _STDS:
        x = x / np.asarray(_STDS[mode], dtype="float32").reshape(shape)
    return x


def obtain_input_shape(input_shape, default_size, min_size, data_format, require_flatten,
                       weights=None):
    """The model's input shape, from ``input_shape`` or the default, checked as Keras does
    (three dimensions, three channels with ImageNet weights, at least ``min_size`` pixels,
    static and equal to the default when the top is included with ImageNet weights)."""
    if input_shape is not None:
        input_shape = tuple(input_shape)
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        if data_format == "channels_first":
            if input_shape[0] not in {1, 3}:
                warnings.warn("This model usually expects 1 or 3 input channels. However, it was "
                              f"passed an input_shape with {input_shape[0]} input channels.",
                              stacklevel=3)
            default_shape = (input_shape[0], default_size, default_size)
        else:
            if input_shape[-1] not in {1, 3}:
                warnings.warn("This model usually expects 1 or 3 input channels. However, it was "
                              f"passed an input_shape with {input_shape[-1]} input channels.",
                              stacklevel=3)
            default_shape = (default_size, default_size, input_shape[-1])
    elif data_format == "channels_first":
        default_shape = (3, default_size, default_size)
    else:
        default_shape = (default_size, default_size, 3)
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and input_shape != default_shape:
            raise ValueError("When setting `include_top=True` and loading `imagenet` weights, "
                             f"`input_shape` should be {default_shape}.  Received: "
                             f"input_shape={input_shape}")
        return default_shape
    if input_shape:
        if len(input_shape) != 3:
            raise ValueError("`input_shape` must be a tuple of three integers.")
        channels, spatial = ((input_shape[0], input_shape[1:]) if data_format == "channels_first"
                             else (input_shape[-1], input_shape[:2]))
        if channels != 3 and weights == "imagenet":
            raise ValueError(f"The input must have 3 channels; Received `input_shape={input_shape}`")
        if any(s is not None and s < min_size for s in spatial):
            raise ValueError(f"Input size must be at least {min_size}x{min_size}; Received: "
                             f"input_shape={input_shape}")
    elif require_flatten:
        input_shape = default_shape
    else:
        input_shape = (3, None, None) if data_format == "channels_first" else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError("If `include_top` is True, you should specify a static `input_shape`. "
                         f"Received: input_shape={input_shape}")
    return input_shape


def correct_pad(inputs, kernel_size):
    """Zero padding ``((top, bottom), (left, right))`` before a strided "valid" convolution so
    that it sees the same windows as TensorFlow's "same" padding."""
    size = inputs.shape[1:3]
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    correct = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def validate_activation(classifier_activation, weights):
    """With pretrained weights, the classifier's activation must be ``None`` or softmax."""
    if weights is None:
        return
    from axone import activations
    act = activations.get(classifier_activation)
    if act not in (activations.get("softmax"), activations.get(None)):
        raise ValueError("Only `None` and `softmax` activations are allowed for the "
                         "`classifier_activation` argument when using pretrained weights, with "
                         f"`include_top=True`; Received: classifier_activation={classifier_activation}")


def check_weights_and_classes(weights, include_top, classes):
    """Keras's two checks of ``weights`` and ``classes`` at the start of every application."""
    if not (weights in {"imagenet", None} or (isinstance(weights, (str, os.PathLike))
                                              and os.path.exists(weights))):
        raise ValueError("The `weights` argument should be either `None` (random initialization), "
                         "'imagenet' (pre-training on ImageNet), or the path to the weights file "
                         f"to be loaded.  Received: weights={weights}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("If using `weights='imagenet'` with `include_top=True`, `classes` should "
                         f"be 1000.  Received classes={classes}")


def check_pooling(pooling):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` should be None, 'avg' or 'max'. Received: pooling={pooling!r}")


def image_input(input_tensor, input_shape):
    """The model's input tensor: a new Input, or ``input_tensor`` (a symbolic tensor used as
    it is; an array or Tensor wrapped in an Input of its shape)."""
    from axone import layers
    from axone.utils import is_keras_tensor
    if input_tensor is None:
        return layers.Input(shape=input_shape)
    if is_keras_tensor(input_tensor):
        return input_tensor
    raise TypeError("input_tensor: expected a symbolic tensor (the output of keras.Input or of "
                    f"a layer called on one); received {type(input_tensor).__name__}")


def model_inputs(input_tensor, img_input):
    if input_tensor is None:
        return img_input
    from axone.utils import get_source_inputs
    return get_source_inputs(input_tensor)


def load_weights(model, weights, file_name=None, file_hash=None, subdir="", base_url=None):
    """Load ``weights`` into ``model``: ``"imagenet"`` is Keras's published file ``file_name``
    (downloaded once into the ``models`` cache folder through ``get_file``, its hash checked,
    then read from the cache offline); a path is loaded as it is."""
    if weights is None:
        return
    if weights == "imagenet":
        if file_name is None:
            return
        from axone.utils import get_file
        path = get_file(file_name, (BASE_URL if base_url is None else base_url) + subdir + file_name, cache_subdir="models",
                        file_hash=file_hash)
        model.load_weights(path)
    else:
        model.load_weights(weights)


def keras_layer_order(model):
    """The model, whose layers a functional Model already keeps in Keras 3's order
    (``axone.models.model.keras_layer_order``)."""
    return model

