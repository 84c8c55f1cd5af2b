"""``keras.applications``: ImageNet classification networks built from kaffe layers, with
Keras's layer names, shapes and parameter counts; ``weights='imagenet'`` reads Keras's own
weights files from the Keras cache folder (``$KERAS_HOME/models`` or ``~/.keras/models``).

Each family lives in the module of Keras's name (``kaffe.applications.resnet50``,
``.mobilenet_v2`` ...) with its ``preprocess_input`` and ``decode_predictions``.
"""
from kaffe.applications import imagenet_utils
from kaffe.applications.resnet import ResNet50, ResNet101, ResNet152
from kaffe.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from kaffe.applications.vgg16 import VGG16
from kaffe.applications.vgg19 import VGG19
from kaffe.applications.mobilenet_v2 import MobileNetV2
from kaffe.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from kaffe.applications.inception_v3 import InceptionV3
from kaffe.applications.efficientnet import (EfficientNetB0, EfficientNetB1, EfficientNetB2,
                                             EfficientNetB3, EfficientNetB4, EfficientNetB5,
                                             EfficientNetB6, EfficientNetB7)
from kaffe.applications.mobilenet import MobileNet
from kaffe.applications.xception import Xception
from kaffe.applications.mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from kaffe.applications.nasnet import NASNetLarge, NASNetMobile
from kaffe.applications import (densenet, efficientnet, inception_v3, mobilenet,  # noqa: F401
                                mobilenet_v2, mobilenet_v3, nasnet, resnet, resnet50, resnet_v2, vgg16, vgg19, xception)
