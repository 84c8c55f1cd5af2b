"""Keras's ``applications.imagenet_utils``: the ImageNet input preprocessing modes, the top-k
decoding of predictions, and the input-shape rules every application shares.

``preprocess_input`` modes (as Keras): ``caffe`` RGB->BGR then minus the ImageNet BGR mean,
no scaling; ``tf`` to [-1, 1]; ``torch`` to [0, 1] then the ImageNet mean/std per channel.
"""
import json
import warnings

import numpy as np
import torch

from kaffe import activations, config
from kaffe.applications._weights import cached_model_file

CLASS_INDEX_URL = ("https://storage.googleapis.com/download.tensorflow.org/data/"
                   "imagenet_class_index.json")
CLASS_INDEX_HASH = "c2c37ea517e94d9795004a39431a14cb"

_MODES = {  # mode -> (scale applied first, per-channel mean, per-channel std, flip to BGR)
    "caffe": (1.0, (103.939, 116.779, 123.68), None, True),
    "torch": (1 / 255.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False),
}

_class_index = None


def preprocess_input(x, data_format=None, mode="caffe"):
    """Scale/centre a batch (or one) of RGB images with values in [0, 255] as the ImageNet
    models expect. Numpy input is returned as float32 numpy (a float array is changed in place,
    as Keras does); a torch tensor comes back as a tensor."""
    if mode not in ("caffe", "tf", "torch"):
        raise ValueError(f"Expected mode to be one of 'caffe', 'tf' or 'torch'. Received: "
                         f"mode={mode!r}")
    data_format = data_format or config.image_data_format()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError("Expected data_format to be 'channels_first' or 'channels_last'. "
                         f"Received: data_format={data_format!r}")
    if isinstance(x, torch.Tensor):
        return _preprocess_tensor(x, data_format, mode)
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    scale, mean, std, to_bgr = _MODES[mode]
    channel_axis = _channel_axis(x.ndim, data_format)
    if scale != 1.0:
        x *= scale
    if to_bgr:
        x = np.flip(x, axis=channel_axis)
    shape = [1] * x.ndim
    shape[channel_axis] = 3
    x -= np.asarray(mean, x.dtype).reshape(shape)
    if std is not None:
        x /= np.asarray(std, x.dtype).reshape(shape)
    # Keras returns the flipped view; a contiguous copy of the same values is what torch (and
    # K.variable) can take.
    return np.ascontiguousarray(x)


def _channel_axis(ndim, data_format):
    if data_format == "channels_last":
        return ndim - 1
    return 0 if ndim == 3 else 1


def _preprocess_tensor(x, data_format, mode):
    x = x if torch.is_floating_point(x) else x.to(torch.float32)
    if mode == "tf":
        return x / 127.5 - 1.0
    scale, mean, std, to_bgr = _MODES[mode]
    channel_axis = _channel_axis(x.dim(), data_format)
    x = x * scale
    if to_bgr:
        x = torch.flip(x, dims=(channel_axis,))
    shape = [1] * x.dim()
    shape[channel_axis] = 3
    x = x - torch.tensor(mean, dtype=x.dtype, device=x.device).reshape(shape)
    if std is not None:
        x = x / torch.tensor(std, dtype=x.dtype, device=x.device).reshape(shape)
    return x


def decode_predictions(preds, top=5):
    """``[(wnid, label, score), ...]`` of the ``top`` classes of each row of ``preds``
    (shape ``(samples, 1000)``), read from Keras's ``imagenet_class_index.json`` in the Keras
    cache folder (``$KERAS_HOME/models`` or ``~/.keras/models``)."""
    global _class_index
    if isinstance(preds, torch.Tensor):
        preds = preds.detach().cpu().numpy()
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError("decode_predictions expects a batch of predictions (a 2D array of "
                         f"shape (samples, 1000)). Received array with shape: {preds.shape}")
    if _class_index is None:
        path = cached_model_file("imagenet_class_index.json", CLASS_INDEX_URL, CLASS_INDEX_HASH)
        with open(path) as f:
            _class_index = json.load(f)
    results = []
    for pred in preds:
        best = pred.argsort()[-top:][::-1]
        rows = [tuple(_class_index[str(i)]) + (pred[i],) for i in best]
        rows.sort(key=lambda row: row[2], reverse=True)
        results.append(rows)
    return results


def obtain_input_shape(input_shape, default_size, min_size, data_format, require_flatten,
                       weights=None):
    """The model's input shape (no batch axis) from the user's ``input_shape`` and the model's
    defaults, with Keras's checks (3 channels for ImageNet weights, ``min_size``)."""
    channels_last = data_format != "channels_first"
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        channels = input_shape[-1] if channels_last else input_shape[0]
        if channels not in (1, 3):
            warnings.warn("This model usually expects 1 or 3 input channels. However, it was "
                          f"passed an input_shape with {channels} input channels.", stacklevel=3)
    else:
        channels = 3
    default_shape = ((default_size, default_size, channels) if channels_last
                     else (channels, default_size, default_size))
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and tuple(input_shape) != default_shape:
            raise ValueError("When setting include_top=True and loading 'imagenet' weights, "
                             f"input_shape should be {default_shape}. Received: "
                             f"input_shape={input_shape}")
        return default_shape
    if input_shape:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError("input_shape must be a tuple of three integers. Received: "
                             f"input_shape={input_shape}")
        channels = input_shape[-1] if channels_last else input_shape[0]
        if channels != 3 and weights == "imagenet":
            raise ValueError(f"The input must have 3 channels; Received input_shape={input_shape}")
        spatial = input_shape[:2] if channels_last else input_shape[1:]
        if any(d is not None and d < min_size for d in spatial):
            raise ValueError(f"Input size must be at least {min_size}x{min_size}; Received: "
                             f"input_shape={input_shape}")
        return input_shape
    if require_flatten:
        return default_shape
    return (None, None, 3) if channels_last else (3, None, None)


def validate_activation(classifier_activation, weights):
    """ImageNet weights were trained with softmax: only ``None`` or ``'softmax'`` go with them."""
    if weights is None:
        return
    if classifier_activation not in (None, "softmax") and (
            activations.get(classifier_activation) is not activations.get("softmax")):
        raise ValueError("Only None and 'softmax' activations are allowed for the "
                         "classifier_activation argument when using pretrained weights. "
                         f"Received: classifier_activation={classifier_activation!r}")


def correct_pad(inputs, kernel_size):
    """Zero padding for a stride-2 'valid' convolution that matches TF's 'same' padding."""
    channels_last = config.image_data_format() != "channels_first"
    size = inputs.shape[1:3] if channels_last else inputs.shape[2:4]
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    correct = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))
