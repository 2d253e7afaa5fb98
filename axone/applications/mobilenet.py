"""``keras.applications.mobilenet``: MobileNet (Howard et al., 2017): a 3x3 convolution, then
13 depthwise-separable blocks (3x3 depthwise convolution, 1x1 pointwise convolution, each
followed by batch norm and ReLU6); ``alpha`` scales the widths, ``depth_multiplier`` the
depthwise outputs."""
import warnings

from axone import layers
from axone.applications import imagenet_utils as iu

__all__ = ["MobileNet", "preprocess_input", "decode_predictions"]

_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
           (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def MobileNet(input_shape=None, alpha=1.0, depth_multiplier=1, dropout=1e-3, include_top=True,
              weights="imagenet", input_tensor=None, pooling=None, classes=1000,
              classifier_activation="softmax", name=None):
    """MobileNet as Keras builds it; the default name is ``mobilenet_{alpha:.2f}_{rows}``.
    ImageNet weights exist for alpha 0.25, 0.5, 0.75, 1.0 at 128, 160, 192 or 224 pixels."""
    from axone.models import Model
    iu.check_weights_and_classes(weights, include_top, classes)
    iu.check_pooling(pooling)
    default_size = 224
    if input_shape is not None:
        rows, cols = input_shape[0], input_shape[1]
        if rows == cols and rows in (128, 160, 192, 224):
            default_size = rows
    input_shape = iu.obtain_input_shape(input_shape, default_size=default_size, min_size=32,
                                        data_format="channels_last", require_flatten=include_top,
                                        weights=weights)
    rows, cols = input_shape[0], input_shape[1]
    if weights == "imagenet":
        if depth_multiplier != 1:
            raise ValueError("If imagenet weights are being loaded, depth multiplier must be 1.  "
                             f"Received depth_multiplier={depth_multiplier}")
        if alpha not in (0.25, 0.5, 0.75, 1.0):
            raise ValueError("If imagenet weights are being loaded, alpha can be one of`0.25`, "
                             f"`0.50`, `0.75` or `1.0` only.  Received alpha={alpha}")
        if rows != cols or rows not in (128, 160, 192, 224):
            rows = 224
            warnings.warn("`input_shape` is undefined or non-square, or `rows` is not in [128, "
                          "160, 192, 224]. Weights for input shape (224, 224) will be loaded as "
                          "the default.", stacklevel=2)
    img_input = iu.image_input(input_tensor, input_shape)
    x = layers.Conv2D(int(32 * alpha), (3, 3), padding="same", use_bias=False, strides=(2, 2),
                      name="conv1")(img_input)
    x = layers.BatchNormalization(axis=-1, name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block_id, (filters, stride) in enumerate(_BLOCKS, start=1):
        x = _depthwise_conv_block(x, filters, alpha, depth_multiplier, stride, block_id)
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, (1, 1), padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape_2")(x)
        iu.validate_activation(classifier_activation, weights)
        x = layers.Activation(activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)
    if name is None:
        name = f"mobilenet_{alpha:0.2f}_{rows}"
    model = iu.keras_layer_order(Model(iu.model_inputs(input_tensor, img_input), x, name=name))
    if weights == "imagenet":
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0"}.get(alpha, "2_5")
        fname = f"mobilenet_{alpha_text}_{rows}_tf{'' if include_top else '_no_top'}.h5"
        iu.load_weights(model, weights, fname, None, subdir="mobilenet/")
    else:
        iu.load_weights(model, weights)
    return model


def _depthwise_conv_block(inputs, pointwise_filters, alpha, depth_multiplier, stride, block_id):
    x = inputs
    if stride != 1:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
    x = layers.DepthwiseConv2D((3, 3), padding="same" if stride == 1 else "valid",
                               depth_multiplier=depth_multiplier, strides=(stride, stride),
                               use_bias=False, name=f"conv_dw_{block_id}")(x)
    x = layers.BatchNormalization(axis=-1, name=f"conv_dw_{block_id}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = layers.Conv2D(int(pointwise_filters * alpha), (1, 1), padding="same", use_bias=False,
                      strides=(1, 1), name=f"conv_pw_{block_id}")(x)
    x = layers.BatchNormalization(axis=-1, name=f"conv_pw_{block_id}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


def preprocess_input(x, data_format=None):
    """TF mode: ``x / 127.5 - 1``."""
    return iu.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = iu.decode_predictions
