"""Keras 3's top-level helpers that are not classes of a sub-module: ``keras.Variable``,
``keras.device``, ``keras.name_scope``, ``keras.version``."""
import contextlib

import torch

from kaffe import initializers
from kaffe.engine.operation import torch_dtype


def Variable(initializer, shape=None, dtype=None, trainable=True, name=None, **unused):
    """A weight outside any layer: a ``torch.nn.Parameter`` (kaffe's weights are parameters,
    with Keras's ``assign`` / ``assign_add`` / ``value``). ``initializer`` is a value, or an
    initializer (name, object or callable) drawn at ``shape``."""
    if callable(initializer) or isinstance(initializer, str):
        if shape is None:
            raise ValueError("Variable: an initializer needs a shape; pass shape=(...).")
        value = initializers.get(initializer)(tuple(shape))
    else:
        value = initializer
    tensor = torch.as_tensor(value, dtype=torch_dtype(dtype) if dtype else None)
    if tensor.is_floating_point() and dtype is None:
        tensor = tensor.float()
    return torch.nn.Parameter(tensor.clone(), requires_grad=bool(trainable) and
                              tensor.is_floating_point())


@contextlib.contextmanager
def device(device_name):
    """Create tensors on ``device_name`` inside the block ('cpu', 'gpu', 'gpu:1', 'cuda:0')."""
    name = str(device_name).lower().replace("gpu", "cuda")
    with torch.device(name):
        yield


@contextlib.contextmanager
def name_scope(name, **unused):
    """Accepted for Keras code that groups names; kaffe names layers without scopes."""
    yield name


def version():
    from kaffe.compat.import_hook import KERAS_VERSION
    return KERAS_VERSION
