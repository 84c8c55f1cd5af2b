"""Every op name of Keras 3's ``keras.ops`` and of its groups (``numpy``, ``nn``, ``image``,
``linalg``, ``math``, ``core``) exists in ``kaffe.ops`` under the same group, and in the modules
``kaffe run`` serves for them (``keras.ops.image`` is the module ``kaffe.ops.image``)."""
import importlib
import types

import pytest

from kaffe import ops

keras = pytest.importorskip("keras")
GROUPS = ("numpy", "nn", "math", "image", "linalg", "core")


def _names(namespace):
    return {n for n in dir(namespace) if not n.startswith("_")
            and callable(getattr(namespace, n))
            and not isinstance(getattr(namespace, n), (types.ModuleType, type))}


def test_every_keras_op_name_is_in_kaffe_ops():
    assert sorted(_names(keras.ops) - _names(ops)) == []
    for group in GROUPS:
        if not hasattr(keras.ops, group):
            continue  # Keras 3 serves math ops at ops level only
        theirs = _names(getattr(keras.ops, group))
        assert sorted(theirs - _names(getattr(ops, group))) == [], group


def test_the_module_served_as_keras_ops_image_has_every_image_op():
    served = importlib.import_module("kaffe.ops.image")
    assert sorted(_names(keras.ops.image) - _names(served)) == []
