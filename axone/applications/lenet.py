"""LeNet-5 as the course builds it (LeCun et al., 1998, with ReLU): on 32x32x1 images,
Conv2D(6, 5) → MaxPool 2 → Conv2D(16, 5) → MaxPool 2 → Flatten → Dense 120 → Dense 84 →
Dense ``classes`` (61,706 parameters for 10 classes).  Keras has no LeNet; the layers keep
their automatic names (``conv2d``, ``max_pooling2d``, ``dense`` ...) as in the course's
Sequential model."""
from axone import layers
from axone.applications import imagenet_utils as iu

__all__ = ["LeNet5"]


def LeNet5(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
           classes=10, classifier_activation="softmax", name="lenet5"):
    """LeNet-5.  ``weights``: None or the path of a weight file (there are no published
    ImageNet weights); ``input_shape`` defaults to (32, 32, 1) and must be at least 28x28
    with the top (so that the second pooling has a 5x5 map to flatten), at least 12x12
    without it."""
    from axone.models import Model
    if weights == "imagenet":
        raise ValueError("LeNet5 has no 'imagenet' weights: pass weights=None or the path of a "
                         "weight file")
    iu.check_weights_and_classes(weights, include_top, classes)
    iu.check_pooling(pooling)
    if input_shape is None:
        input_shape = (32, 32, 1) if input_tensor is None else tuple(input_tensor.shape[1:])
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be a tuple of three integers. Received: "
                         f"input_shape={input_shape}")
    min_size = 12
    if any(s is not None and s < min_size for s in input_shape[:2]):
        raise ValueError(f"Input size must be at least {min_size}x{min_size}; Received: "
                         f"input_shape={input_shape}")
    if include_top and None in input_shape:
        raise ValueError("If `include_top` is True, you should specify a static `input_shape`. "
                         f"Received: input_shape={input_shape}")
    img_input = iu.image_input(input_tensor, input_shape)
    x = layers.Conv2D(filters=6, kernel_size=5, padding="valid", activation="relu")(img_input)
    x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Conv2D(filters=16, kernel_size=5, padding="valid", activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=2)(x)
    if include_top:
        x = layers.Flatten()(x)
        x = layers.Dense(120, activation="relu")(x)
        x = layers.Dense(84, activation="relu")(x)
        x = layers.Dense(classes, activation=classifier_activation)(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)
    model = iu.keras_layer_order(Model(iu.model_inputs(input_tensor, img_input), x, name=name))
    iu.load_weights(model, weights)
    return model
