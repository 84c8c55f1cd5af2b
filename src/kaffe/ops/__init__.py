"""``kaffe.ops``: Keras 3's ``keras.ops`` over torch (served as ``keras.ops`` by ``kaffe run``).

Every op runs eagerly on torch tensors, numpy arrays and Python numbers (results are torch
tensors) and, given a symbolic ``KerasTensor`` anywhere among its arguments, records an op node
in the functional graph instead (``kaffe.engine.operation``), as Keras 3 does. The names and
signatures are Keras 3's; the sub-namespaces ``numpy``, ``nn``, ``math``, ``image``,
``linalg`` and ``core`` hold the same functions grouped as Keras groups them.

kaffe's integers are int64 (torch's default) where Keras's are int32.
"""
from kaffe.ops.namespaces import all_functions as _all_functions, groups as _groups
from kaffe.ops.registry import BY_CLASS, REGISTRY

globals().update(_all_functions())
numpy, nn, math, image, linalg, core = (_groups()[m] for m in
                                        ("numpy", "nn", "math", "image", "linalg", "core"))
__all__ = sorted(_all_functions()) + ["numpy", "nn", "math", "image", "linalg", "core"]
