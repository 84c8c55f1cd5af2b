"""pycaffe's object model: ``Blob``, the parameter blobs of ``net.params``, ``BlobVec`` (a Python
layer's ``self.blobs``) and the layer objects of ``net.layers``.

A :class:`Blob` holds its ``data`` and ``diff`` as CPU torch tensors and hands Python numpy
views of them (writable, no copy): a forward copies each top into its blob's buffer, a backward
each diff into the blob's diff buffer, and a Python write into ``blob.data`` is what the
next forward (or a layer-by-layer backward without a forward) reads.
"""
import math

import numpy as np
import torch

__all__ = ["Blob", "ParamBlob", "BlobVec", "LayerView"]


def _shape_of(args):
    """``reshape(2, 3)`` and ``reshape((2, 3))`` alike, as a tuple of ints."""
    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        args = tuple(args[0])
    shape = tuple(int(d) for d in args)
    if any(d < 0 for d in shape):
        raise ValueError(f"Blob dimensions must be >= 0; received shape {shape}.")
    return shape


def _host(tensor):
    """A float32 CPU tensor that shares memory with ``tensor`` where it can."""
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    return tensor if tensor.dtype == torch.float32 else tensor.float()


class Blob:
    """A named blob of a net: ``data`` and ``diff`` (float32 numpy views you may write into),
    ``shape``, ``count``, ``reshape(*shape)`` and Caffe's legacy ``num/channels/height/width``."""

    def __init__(self, shape=()):
        shape = _shape_of((shape,))
        self._data = torch.zeros(shape)
        self._diff = torch.zeros(shape)

    # -------------------------------------------------------------- pycaffe surface
    @property
    def data(self):
        return self._data.numpy()

    @property
    def diff(self):
        return self._diff.numpy()

    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def count(self):
        return math.prod(self.shape)

    num = property(lambda self: self._legacy(0))
    channels = property(lambda self: self._legacy(1))
    height = property(lambda self: self._legacy(2))
    width = property(lambda self: self._legacy(3))

    def _legacy(self, axis):
        """Caffe's ``LegacyShape``: axes the blob lacks count as 1, at the end ((100, 500) is
        num 100, channels 500, height 1, width 1)."""
        return self.shape[axis] if axis < len(self.shape) else 1

    def reshape(self, *shape):
        """Give the blob a new shape (fresh zero data and diff when the shape changes)."""
        shape = _shape_of(shape)
        if shape != self.shape:
            self._data = torch.zeros(shape)
            self._diff = torch.zeros(shape)

    # -------------------------------------------------------------- the net's side
    def _store(self, tensor):
        """Copy ``tensor`` (a layer's top) into the data, in place when the shape is the same:
        the blob keeps one buffer across forwards (warm memory, as Caffe's blobs), and the
        run's own tensors can be let go when the next run starts."""
        tensor = tensor.detach()
        if tensor.shape == self._data.shape:
            self._data.copy_(tensor)
            return
        self._data = _host(tensor).clone()
        if self._diff.shape != self._data.shape:
            self._diff = torch.zeros(self._data.shape)

    def _hold(self, tensor):
        """Make ``tensor`` the data itself (no copy): a Python layer's view of its bottoms."""
        self._data = _host(tensor)
        if self._diff.shape != self._data.shape:
            self._diff = torch.zeros(self._data.shape)

    def _store_diff(self, tensor):
        """Copy a computed diff (None: zeros) into the blob's diff buffer, kept across
        backwards like the data's, so a backward's gradients reuse warm memory."""
        if self._diff.shape != self._data.shape:
            self._diff = torch.zeros(self._data.shape)
        if tensor is None:
            self._diff.zero_()
        else:
            self._diff.copy_(tensor.detach().reshape(self._diff.shape))

    def _tensor(self):
        return self._data

    def __repr__(self):
        return f"<Blob shape={self.shape}>"


class ParamBlob(Blob):
    """A learnable blob: ``data`` views the torch ``Parameter``, ``diff`` its ``.grad`` (shared
    between layers that share the parameter). ``shape`` differs from the parameter's for a
    PERMISSIVE share (same count, this layer's own shape)."""

    def __init__(self, parameter, shape=None):  # noqa: D107 - no Blob storage of its own
        self.parameter = parameter
        self._shape = tuple(parameter.shape) if shape is None else tuple(shape)
        if parameter.grad is None or parameter.grad.shape != parameter.shape:
            parameter.grad = torch.zeros_like(parameter)

    @property
    def data(self):
        return self.parameter.detach().numpy().reshape(self._shape)

    @property
    def diff(self):
        return self.parameter.grad.numpy().reshape(self._shape)

    @property
    def shape(self):
        return self._shape

    def _tensor(self):
        return self.parameter.detach().reshape(self._shape)

    def reshape(self, *shape):
        shape = _shape_of(shape)
        if shape != self._shape:
            raise ValueError(f"A parameter blob cannot be reshaped ({self._shape} -> {shape}); "
                             f"rebuild the net with the new layer parameters instead.")


class BlobVec(list):
    """A Python layer's ``self.blobs``: its learnable blobs; ``add_blob(*shape)`` makes one
    (a torch ``Parameter`` the solver updates, saved with the net's weights)."""

    def __init__(self, parameters):
        super().__init__()
        self._parameters = parameters   # the owning module's nn.ParameterList

    def add_blob(self, *shape):
        parameter = torch.nn.Parameter(torch.zeros(_shape_of(shape)))
        self._parameters.append(parameter)
        self.append(ParamBlob(parameter))


class LayerView:
    """``net.layers[i]``: the layer's ``type`` and its parameter blobs as pycaffe
    :class:`ParamBlob` objects; every other attribute is the kaffe layer module's."""

    def __init__(self, module, blobs, layer_type):
        self.__dict__.update(module=module, blobs=blobs, type=layer_type)

    def __getattr__(self, name):
        return getattr(self.__dict__["module"], name)

    def __repr__(self):
        return f"<Layer {self.module.name!r} type={self.type}>"


def as_array(value, shape, what):
    """``value`` as float32 of ``shape``, or an error naming ``what``."""
    value = np.asarray(value, np.float32)
    if value.shape != tuple(shape):
        raise ValueError(f"{what} has shape {value.shape}; expected {tuple(shape)}.")
    return value
