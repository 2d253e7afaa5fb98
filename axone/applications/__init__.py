"""``keras.applications``: the model zoo, each family in its module as in Keras (layer names,
order, weights and parameter counts as Keras builds them), with its ``preprocess_input`` and
``decode_predictions``."""
from axone.applications import (densenet, efficientnet, imagenet_utils, inception_v3, lenet,
                                mobilenet, mobilenet_v2, mobilenet_v3, resnet, resnet50,
                                resnet_v2, vgg16, vgg19, xception)
from axone.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from axone.applications.efficientnet import (EfficientNetB0, EfficientNetB1, EfficientNetB2,
                                             EfficientNetB3)
from axone.applications.inception_v3 import InceptionV3
from axone.applications.lenet import LeNet5
from axone.applications.mobilenet import MobileNet
from axone.applications.mobilenet_v2 import MobileNetV2
from axone.applications.mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from axone.applications.resnet import ResNet50, ResNet101, ResNet152
from axone.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from axone.applications.vgg16 import VGG16
from axone.applications.vgg19 import VGG19
from axone.applications.xception import Xception
