"""``keras.applications.resnet_v2``: ResNet50V2 / 101V2 / 152V2 (He et al., 2016),
pre-activation bottleneck blocks; inputs scaled to [-1, 1]."""
from axone.applications import imagenet_utils as iu
from axone.applications.resnet import build_resnet, stack_residual_blocks_v2

__all__ = ["ResNet50V2", "ResNet101V2", "ResNet152V2", "preprocess_input", "decode_predictions"]


def _v2_stages(counts):
    def stack_fn(x):
        x = stack_residual_blocks_v2(x, 64, counts[0], name="conv2")
        x = stack_residual_blocks_v2(x, 128, counts[1], name="conv3")
        x = stack_residual_blocks_v2(x, 256, counts[2], name="conv4")
        return stack_residual_blocks_v2(x, 512, counts[3], stride1=1, name="conv5")
    return stack_fn


def ResNet50V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
               pooling=None, classes=1000, classifier_activation="softmax", name="resnet50v2"):
    """ResNet50V2, as Keras builds it."""
    return build_resnet(_v2_stages((3, 4, 6, 3)), True, True, include_top, weights, input_tensor,
                        input_shape, pooling, classes, classifier_activation, name, "resnet50v2")


def ResNet101V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="resnet101v2"):
    """ResNet101V2, as Keras builds it."""
    return build_resnet(_v2_stages((3, 4, 23, 3)), True, True, include_top, weights, input_tensor,
                        input_shape, pooling, classes, classifier_activation, name, "resnet101v2")


def ResNet152V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax", name="resnet152v2"):
    """ResNet152V2, as Keras builds it."""
    return build_resnet(_v2_stages((3, 8, 36, 3)), True, True, include_top, weights, input_tensor,
                        input_shape, pooling, classes, classifier_activation, name, "resnet152v2")


def preprocess_input(x, data_format=None):
    """TF mode: ``x / 127.5 - 1``."""
    return iu.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = iu.decode_predictions
