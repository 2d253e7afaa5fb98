"""``keras.applications.vgg19``: VGG19 (143,667,240 parameters; the convolutional base
20,024,384)."""
from axone.applications import imagenet_utils
from axone.applications._vgg import vgg

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]


def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg19"):
    """VGG19 as Keras builds it (same layer names, order and weights).  ``weights``: None,
    "imagenet" or the path of a weight file; ``pooling`` ("avg", "max" or None) applies without
    the top; the default input is 224x224x3, at least 32x32."""
    return vgg((2, 2, 4, 4, 4), name, ("cbe5617147190e668d6c5d5026f83318",
                                      "253f8cb515780f3b799900260a226db6"),
               include_top, weights, input_tensor, input_shape, pooling, classes,
               classifier_activation)


def preprocess_input(x, data_format=None):
    """Caffe mode: RGB to BGR, minus the ImageNet channel means, no scaling."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


decode_predictions = imagenet_utils.decode_predictions
