"""``keras.applications.xception``: Xception (Chollet, 2017): depthwise-separable
convolutions throughout, in an entry flow with strided 1x1 projection shortcuts, eight
middle-flow residual blocks and an exit flow; inputs scaled to [-1, 1]."""
from axone import layers
from axone.applications import imagenet_utils as iu

__all__ = ["Xception", "preprocess_input", "decode_predictions"]


def _sep(x, filters, name, act_name=None):
    if act_name:
        x = layers.Activation("relu", name=act_name)(x)
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(axis=-1, name=f"{name}_bn")(x)


def _projection(x, filters):
    r = layers.Conv2D(filters, (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    return layers.BatchNormalization(axis=-1)(r)


def Xception(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="xception"):
    """Xception as Keras builds it (default input 299x299, at least 71x71)."""
    from axone.models import Model
    iu.check_weights_and_classes(weights, include_top, classes)
    iu.check_pooling(pooling)
    input_shape = iu.obtain_input_shape(input_shape, default_size=299, min_size=71,
                                        data_format="channels_last", require_flatten=include_top,
                                        weights=weights)
    img_input = iu.image_input(input_tensor, input_shape)
    x = layers.Conv2D(32, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(img_input)
    x = layers.BatchNormalization(axis=-1, name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, (3, 3), use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(axis=-1, name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)
    # entry flow: block 2 starts from an activated tensor, blocks 3 and 4 activate first
    for b, filters in ((2, 128), (3, 256), (4, 728)):
        residual = _projection(x, filters)
        x = _sep(x, filters, f"block{b}_sepconv1", None if b == 2 else f"block{b}_sepconv1_act")
        x = _sep(x, filters, f"block{b}_sepconv2", f"block{b}_sepconv2_act")
        x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{b}_pool")(x)
        x = layers.Add()([x, residual])
    for i in range(8):
        residual = x
        prefix = f"block{i + 5}"
        for j in (1, 2, 3):
            x = _sep(x, 728, f"{prefix}_sepconv{j}", f"{prefix}_sepconv{j}_act")
        x = layers.Add()([x, residual])
    residual = _projection(x, 1024)
    x = _sep(x, 728, "block13_sepconv1", "block13_sepconv1_act")
    x = _sep(x, 1024, "block13_sepconv2", "block13_sepconv2_act")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name="block13_pool")(x)
    x = layers.Add()([x, residual])
    x = _sep(x, 1536, "block14_sepconv1")
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = _sep(x, 2048, "block14_sepconv2")
    x = layers.Activation("relu", name="block14_sepconv2_act")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        iu.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)
    model = iu.keras_layer_order(Model(iu.model_inputs(input_tensor, img_input), x, name=name))
    fname = ("xception_weights_tf_dim_ordering_tf_kernels.h5" if include_top
             else "xception_weights_tf_dim_ordering_tf_kernels_notop.h5")
    iu.load_weights(model, weights, fname, "0a58e3b7378bc2990ea3b43d5981f1f6" if include_top
                    else "b0042744bf5b25fce3cb969f33bebb97", subdir="xception/")
    return model


def preprocess_input(x, data_format=None):
    """TF mode: ``x / 127.5 - 1``."""
    return iu.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = iu.decode_predictions
