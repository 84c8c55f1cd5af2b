"""Keras 3's variable spellings on kaffe's weights, which are plain ``torch.nn.Parameter``s.

Keras 3's torch backend wraps each weight in a ``KerasVariable`` whose ``.value`` is the
``torch.nn.Parameter``; code written for it (the keras.io guide to a custom ``train_step`` with
PyTorch: ``gradients = [v.value.grad for v in self.trainable_weights]``) reads ``v.value``.
kaffe's weights are the parameters themselves, so ``value`` is a read-only property returning
the parameter, and ``assign`` / ``assign_add`` / ``assign_sub`` write in place without autograd
(TensorFlow's ``tf.Variable`` methods, used by Keras 2 scripts); the three writes also work on
the buffers that hold non-trainable weights. Installed once on import; a name torch already
defines is never replaced.
"""
import numpy as np
import torch


def _value(self):
    return self


def _assign(self, value):
    with torch.no_grad():
        self.copy_(torch.as_tensor(value, dtype=self.dtype, device=self.device))
    return self


def _assign_add(self, delta):
    with torch.no_grad():
        self.add_(torch.as_tensor(delta, dtype=self.dtype, device=self.device))
    return self


def _assign_sub(self, delta):
    with torch.no_grad():
        self.sub_(torch.as_tensor(delta, dtype=self.dtype, device=self.device))
    return self


_SPELLINGS = {"value": property(_value), "assign": _assign, "assign_add": _assign_add,
              "assign_sub": _assign_sub}


#: the writes also on plain tensors: kaffe's non-trainable weights (``add_weight(trainable=False)``,
#: moving statistics, counters) are buffers, and Keras 3 code assigns to them as to any variable
#: (``self.count.assign_add(1.0)`` in a custom layer's ``call``).
_TENSOR_SPELLINGS = ("assign", "assign_add", "assign_sub")


#: Arithmetic of a weight with a NumPy array (``kernel * mask``, ``mask * kernel``): torch hands
#: ``tensor * ndarray`` to NumPy, which cannot read a tensor that requires grad; Keras 3's
#: variables take arrays as operands, so a weight converts the array first (floats to its dtype).
_ARITHMETIC = ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
               "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__",
               "__rmod__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__")


def _array_operand(self, other):
    if isinstance(other, (np.ndarray, np.generic)) and not isinstance(other, (np.str_, np.bytes_)):
        array = np.asarray(other)
        dtype = self.dtype if array.dtype.kind == "f" else None
        return torch.as_tensor(array, dtype=dtype, device=self.device)
    return other


def _takes_arrays(name):
    method = getattr(torch.Tensor, name)

    def with_array_operand(self, other):
        return method(self, _array_operand(self, other))
    with_array_operand.__name__ = name
    with_array_operand._kaffe_array_operand = True
    return with_array_operand


def install():
    for name in _ARITHMETIC:
        if not getattr(torch.nn.Parameter.__dict__.get(name), "_kaffe_array_operand", False):
            setattr(torch.nn.Parameter, name, _takes_arrays(name))
    for name, attr in _SPELLINGS.items():
        if not hasattr(torch.nn.Parameter, name):
            setattr(torch.nn.Parameter, name, attr)
    for name in _TENSOR_SPELLINGS:
        if not hasattr(torch.Tensor, name):
            setattr(torch.Tensor, name, _SPELLINGS[name])


install()
