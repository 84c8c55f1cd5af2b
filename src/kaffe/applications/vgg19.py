"""VGG19: VGG16's network with four convolutions in each of the last three blocks."""
from kaffe.applications.vgg16 import VGG, decode_predictions, preprocess_input

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]


def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg19"):
    """VGG19 (144M parameters with the top); inputs preprocessed with ``preprocess_input``."""
    return VGG((2, 2, 4, 4, 4), include_top, weights, input_tensor, input_shape, pooling,
               classes, classifier_activation, name)
