"""``keras.applications.inception_v3``: InceptionV3 (Szegedy et al., 2016): a convolutional
stem, then Inception modules (parallel 1x1, factorized 5x5 / 7x7 / 3x3 and pooling branches
concatenated, named ``mixed0`` ... ``mixed10``); every convolution is followed by a batch
norm without scale and a ReLU (layers named automatically, as in Keras).  Inputs scaled to
[-1, 1]."""
from axone import layers
from axone.applications import imagenet_utils as iu

__all__ = ["InceptionV3", "preprocess_input", "decode_predictions"]


def conv2d_bn(x, filters, num_row, num_col, padding="same", strides=(1, 1), name=None):
    """Conv2D (no bias) → BatchNormalization(scale=False) → ReLU."""
    conv_name, bn_name = (f"{name}_conv", f"{name}_bn") if name is not None else (None, None)
    x = layers.Conv2D(filters, (num_row, num_col), strides=strides, padding=padding,
                      use_bias=False, name=conv_name)(x)
    x = layers.BatchNormalization(axis=3, scale=False, name=bn_name)(x)
    return layers.Activation("relu", name=name)(x)


def _avg_branch(x, filters):
    b = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    return conv2d_bn(b, filters, 1, 1)


def InceptionV3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="inception_v3"):
    """InceptionV3 as Keras builds it (default input 299x299, at least 75x75)."""
    from axone.models import Model
    iu.check_weights_and_classes(weights, include_top, classes)
    iu.check_pooling(pooling)
    input_shape = iu.obtain_input_shape(input_shape, default_size=299, min_size=75,
                                        data_format="channels_last", require_flatten=include_top,
                                        weights=weights)
    img_input = iu.image_input(input_tensor, input_shape)
    cat = lambda ts, name=None: layers.Concatenate(axis=3, name=name)(ts)  # noqa: E731
    x = conv2d_bn(img_input, 32, 3, 3, strides=(2, 2), padding="valid")
    x = conv2d_bn(x, 32, 3, 3, padding="valid")
    x = conv2d_bn(x, 64, 3, 3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv2d_bn(x, 80, 1, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    # mixed 0, 1, 2: 35 x 35
    for i, pool_filters in enumerate((32, 64, 64)):
        b1 = conv2d_bn(x, 64, 1, 1)
        b5 = conv2d_bn(conv2d_bn(x, 48, 1, 1), 64, 5, 5)
        b3 = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
        x = cat([b1, b5, b3, _avg_branch(x, pool_filters)], f"mixed{i}")
    # mixed 3: 17 x 17
    b3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="valid")
    bd = conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3)
    bd = conv2d_bn(bd, 96, 3, 3, strides=(2, 2), padding="valid")
    x = cat([b3, bd, layers.MaxPooling2D((3, 3), strides=(2, 2))(x)], "mixed3")
    # mixed 4 - 7: factorized 7x7
    for i, f in ((4, 128), (5, 160), (6, 160), (7, 192)):
        b1 = conv2d_bn(x, 192, 1, 1)
        b7 = conv2d_bn(conv2d_bn(conv2d_bn(x, f, 1, 1), f, 1, 7), 192, 7, 1)
        bd = conv2d_bn(x, f, 1, 1)
        bd = conv2d_bn(bd, f, 7, 1)
        bd = conv2d_bn(bd, f, 1, 7)
        bd = conv2d_bn(bd, f, 7, 1)
        bd = conv2d_bn(bd, 192, 1, 7)
        x = cat([b1, b7, bd, _avg_branch(x, 192)], f"mixed{i}")
    # mixed 8: 8 x 8
    b3 = conv2d_bn(conv2d_bn(x, 192, 1, 1), 320, 3, 3, strides=(2, 2), padding="valid")
    b7 = conv2d_bn(conv2d_bn(conv2d_bn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
    b7 = conv2d_bn(b7, 192, 3, 3, strides=(2, 2), padding="valid")
    x = cat([b3, b7, layers.MaxPooling2D((3, 3), strides=(2, 2))(x)], "mixed8")
    # mixed 9, 10
    for i in range(2):
        b1 = conv2d_bn(x, 320, 1, 1)
        b3 = conv2d_bn(x, 384, 1, 1)
        b3 = cat([conv2d_bn(b3, 384, 1, 3), conv2d_bn(b3, 384, 3, 1)], f"mixed9_{i}")
        bd = conv2d_bn(conv2d_bn(x, 448, 1, 1), 384, 3, 3)
        bd = cat([conv2d_bn(bd, 384, 1, 3), conv2d_bn(bd, 384, 3, 1)])
        x = cat([b1, b3, bd, _avg_branch(x, 192)], f"mixed{9 + i}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        iu.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)
    model = iu.keras_layer_order(Model(iu.model_inputs(input_tensor, img_input), x, name=name))
    fname = ("inception_v3_weights_tf_dim_ordering_tf_kernels.h5" if include_top
             else "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
    iu.load_weights(model, weights, fname, "9a0d58056eeedaa3f26cb7ebd46da564" if include_top
                    else "bcbd6486424b2319ff4ef7d526e38f63", subdir="inception_v3/")
    return model


def preprocess_input(x, data_format=None):
    """TF mode: ``x / 127.5 - 1``."""
    return iu.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = iu.decode_predictions
