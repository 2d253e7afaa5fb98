"""``keras.applications.densenet``: DenseNet121 / 169 / 201 (Huang et al., 2017): dense
blocks of 6-12-24-16, 6-12-32-32 and 6-12-48-32 bottleneck layers (BN-ReLU-1x1 conv to 128
channels, BN-ReLU-3x3 conv to the growth rate 32, concatenated to the block's input), with
transition layers (BN-ReLU-1x1 conv halving the channels, 2x2 average pooling) between them."""
from axone import layers
from axone.applications import imagenet_utils as iu

__all__ = ["DenseNet121", "DenseNet169", "DenseNet201", "preprocess_input", "decode_predictions"]

_HASHES = {(6, 12, 24, 16): ("densenet121", "9d60b8095a5708f2dcce2bca79d332c7",
                             "30ee3e1110167f948a6b9946edeeb738"),
           (6, 12, 32, 32): ("densenet169", "d699b8f76981ab1b30698df4c175e90b",
                             "b8c4d4c20dd625c148057b9ff1c1176b"),
           (6, 12, 48, 32): ("densenet201", "1ceb130c1ea1b78c3bf6114dbdfd8807",
                             "c13680b51ded0fb44dff2d8f86ac8bb1")}
_EPS = 1.001e-5


def dense_block(x, blocks, name):
    for i in range(blocks):
        x = conv_block(x, 32, name=f"{name}_block{i + 1}")
    return x


def transition_block(x, reduction, name):
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.Conv2D(int(x.shape[3] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def conv_block(x, growth_rate, name):
    x1 = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_0_bn")(x)
    x1 = layers.Activation("relu", name=f"{name}_0_relu")(x1)
    x1 = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(x1)
    x1 = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_1_bn")(x1)
    x1 = layers.Activation("relu", name=f"{name}_1_relu")(x1)
    x1 = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x1)
    return layers.Concatenate(axis=3, name=f"{name}_concat")([x, x1])


def DenseNet(blocks, include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="densenet"):
    """A DenseNet with ``blocks`` layers in each of its four dense blocks."""
    from axone.models import Model
    iu.check_weights_and_classes(weights, False, classes)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError('If using `weights` as `"imagenet"` with `include_top` as true, '
                         f"`classes` should be 1000. Received classes={classes}")
    iu.check_pooling(pooling)
    input_shape = iu.obtain_input_shape(input_shape, default_size=224, min_size=32,
                                        data_format="channels_last", require_flatten=include_top,
                                        weights=weights)
    img_input = iu.image_input(input_tensor, input_shape)
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)))(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for i, n in enumerate(blocks):
        x = dense_block(x, n, name=f"conv{i + 2}")
        if i < 3:
            x = transition_block(x, 0.5, name=f"pool{i + 2}")
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        iu.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = iu.keras_layer_order(Model(iu.model_inputs(input_tensor, img_input), x, name=name))
    if weights == "imagenet":
        if tuple(blocks) not in _HASHES:
            raise ValueError("weights_path undefined: Keras publishes ImageNet weights for "
                             f"DenseNet121, 169 and 201 only; received blocks={list(blocks)}")
        stem, top_hash, notop_hash = _HASHES[tuple(blocks)]
        suffix = "" if include_top else "_notop"
        iu.load_weights(model, weights, f"{stem}_weights_tf_dim_ordering_tf_kernels{suffix}.h5",
                        top_hash if include_top else notop_hash, subdir="densenet/")
    else:
        iu.load_weights(model, weights)
    return model


def DenseNet121(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="densenet121"):
    """DenseNet121 (8,062,504 parameters), as Keras builds it."""
    return DenseNet([6, 12, 24, 16], include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation, name=name)


def DenseNet169(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="densenet169"):
    """DenseNet169, as Keras builds it."""
    return DenseNet([6, 12, 32, 32], include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation, name=name)


def DenseNet201(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="densenet201"):
    """DenseNet201, as Keras builds it."""
    return DenseNet([6, 12, 48, 32], include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation, name=name)


def preprocess_input(x, data_format=None):
    """Torch mode: ``x / 255``, then the ImageNet mean and standard deviation per channel."""
    return iu.preprocess_input(x, data_format=data_format, mode="torch")


decode_predictions = iu.decode_predictions
