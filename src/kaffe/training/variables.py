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


def install():
    for name, attr in _SPELLINGS.items():
        if not hasattr(torch.nn.Parameter, name):
            setattr(torch.nn.Parameter, name, attr)
    for name in _TENSOR_SPELLINGS:
        if not hasattr(torch.Tensor, name):
            setattr(torch.Tensor, name, _SPELLINGS[name])


install()
