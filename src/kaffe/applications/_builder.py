"""The steps every application shares: checking ``weights``/``classes``, the input tensor,
the classifier head or pooling, and loading Keras's ImageNet weights file."""
import os

from kaffe import config, layers
from kaffe.applications import imagenet_utils
from kaffe.applications._weights import cached_model_file
from kaffe.engine.functional import Functional
from kaffe.engine.keras_tensor import KerasTensor


def check_weights(weights, include_top, classes):
    """Keras's argument checks: ``weights`` is None, 'imagenet' or an existing file."""
    if not (weights in ("imagenet", None) or (isinstance(weights, (str, os.PathLike))
                                              and os.path.exists(weights))):
        raise ValueError("The weights argument should be either None (random initialization), "
                         "'imagenet' (pre-training on ImageNet), or the path to the weights file "
                         f"to be loaded. Received: weights={weights!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("If using weights='imagenet' with include_top=True, classes should be "
                         f"1000. Received: classes={classes}")


def channel_axis():
    """The channel axis of 4D images under the global image data format (3 or 1)."""
    return 1 if config.image_data_format() == "channels_first" else 3


def image_input(input_tensor, input_shape):
    """The symbolic image the network starts from: ``input_tensor`` or a new ``Input``."""
    if input_tensor is None:
        return layers.Input(shape=input_shape)
    if not isinstance(input_tensor, KerasTensor):
        raise TypeError("input_tensor must be a symbolic tensor (the output of kaffe.Input or "
                        f"of a layer called on one). Received: {type(input_tensor).__name__}")
    return input_tensor


def source_inputs(tensor):
    """The ``Input`` tensors a symbolic tensor was computed from (Keras's
    ``get_source_inputs``), so a model built on ``input_tensor`` starts at the real inputs."""
    found, stack, seen = [], [tensor], set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        node = t.node
        if node.is_input:
            found.append(t)
        else:
            stack.extend(reversed(node.inputs))
    return found[0] if len(found) == 1 else found


def head(x, include_top, pooling, classes, classifier_activation, weights,
         avg_name=None, max_name=None, top_avg_name=None, dropout=None):
    """The classifier (global average pool, optional dropout, ``predictions`` Dense) or, without
    the top, the optional ``pooling`` ('avg' or 'max')."""
    if include_top:
        x = layers.GlobalAveragePooling2D(name=top_avg_name)(x)
        if dropout:
            x = layers.Dropout(dropout[0], name=dropout[1])(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return pool(x, pooling, avg_name, max_name)


def pool(x, pooling, avg_name=None, max_name=None):
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    if pooling is not None:
        raise ValueError(f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    return x


def finish(img_input, input_tensor, x, name, weights, imagenet_file=None):
    """The functional model from the image input to ``x``, with its weights loaded.

    ``imagenet_file`` is ``(file name, URL, md5)`` of Keras's weights for this configuration
    (None where Keras has none); the file is read from Keras's cache folder.
    """
    inputs = source_inputs(input_tensor) if input_tensor is not None else img_input
    model = Functional(inputs, x, name=name)
    if weights == "imagenet":
        if imagenet_file is None:
            raise ValueError(f"Keras has no ImageNet weights for model '{name}' in this "
                             "configuration; use weights=None.")
        model.load_weights(cached_model_file(*imagenet_file))
    elif weights is not None:
        model.load_weights(os.fspath(weights))
    return model
