"""VGG16 and VGG19 (Simonyan & Zisserman, 2015): stacks of 3x3 ReLU convolutions, each block
closed by 2x2 max pooling; the top is Flatten and two 4096-unit ReLU layers."""
from axone import layers
from axone.applications import imagenet_utils as iu


def vgg(blocks, name, hashes, include_top=True, weights="imagenet", input_tensor=None,
        input_shape=None, pooling=None, classes=1000, classifier_activation="softmax"):
    """A VGG with ``blocks`` = convolutions per block (2, 2, 3, 3, 3 for VGG16)."""
    from axone.models import Model
    iu.check_weights_and_classes(weights, include_top, classes)
    iu.check_pooling(pooling)
    input_shape = iu.obtain_input_shape(input_shape, default_size=224, min_size=32,
                                        data_format="channels_last", require_flatten=include_top,
                                        weights=weights)
    img_input = iu.image_input(input_tensor, input_shape)
    x = img_input
    for b, (n, filters) in enumerate(zip(blocks, (64, 128, 256, 512, 512)), start=1):
        for c in range(1, n + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same",
                              name=f"block{b}_conv{c}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{b}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        iu.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)
    model = iu.keras_layer_order(Model(iu.model_inputs(input_tensor, img_input), x, name=name))
    fname = (f"{name}_weights_tf_dim_ordering_tf_kernels.h5" if include_top
             else f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5")
    iu.load_weights(model, weights, fname, hashes[0 if include_top else 1], subdir=name + "/")
    return model
