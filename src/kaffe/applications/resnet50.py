"""Keras 2's ``keras.applications.resnet50`` module: ResNet50 and its preprocessing."""
from kaffe.applications.resnet import ResNet50, decode_predictions, preprocess_input

__all__ = ["ResNet50", "preprocess_input", "decode_predictions"]
