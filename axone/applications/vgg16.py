"""``keras.applications.vgg16``: VGG16 (138,357,544 parameters; the convolutional base
14,714,688)."""
from axone.applications import imagenet_utils
from axone.applications._vgg import vgg

__all__ = ["VGG16", "preprocess_input", "decode_predictions"]


def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg16"):
    """VGG16 as Keras builds it (same layer names, order and weights).  ``weights``: None,
    "imagenet" or the path of a weight file; ``pooling`` ("avg", "max" or None) applies without
    the top; the default input is 224x224x3, at least 32x32."""
    return vgg((2, 2, 3, 3, 3), name, ("64373286793e3c8b2b4e3219cbf3544b",
                                      "6d6bbae143d832006294945121d1f1fc"),
               include_top, weights, input_tensor, input_shape, pooling, classes,
               classifier_activation)


def preprocess_input(x, data_format=None):
    """Caffe mode: RGB to BGR, minus the ImageNet channel means, no scaling."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


decode_predictions = imagenet_utils.decode_predictions
