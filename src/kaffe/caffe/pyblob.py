"""pycaffe's object model: ``Blob``, the parameter blobs of ``net.params``, ``BlobVec`` (a Python
layer's ``self.blobs``) and the layer objects of ``net.layers``.

A :class:`Blob` holds its ``data`` and ``diff`` as CPU torch tensors and hands Python numpy
views of them (writable, no copy): a forward keeps each top itself (no copy) until Python first
looks at the blob, and from then on copies it into the blob's buffer (likewise a backward's
diffs); a Python write into ``blob.data`` is what the next forward (or a layer-by-layer
backward without a forward) reads.
"""
import math

import numpy as np
import torch

from kaffe.caffe.synced import MirroredTensor, SyncedTensor

__all__ = ["Blob", "ParamBlob", "BlobVec", "LayerView"]


def _shape_of(args):
    """``reshape(2, 3)`` and ``reshape((2, 3))`` alike, as a tuple of ints."""
    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        args = tuple(args[0])
    shape = tuple(int(d) for d in args)
    if any(d < 0 for d in shape):
        raise ValueError(f"Blob dimensions must be >= 0; received shape {shape}.")
    return shape


class Blob:
    """A named blob of a net: ``data`` and ``diff`` (float32 numpy views you may write into),
    ``shape``, ``count``, ``reshape(*shape)`` and Caffe's legacy ``num/channels/height/width``.

    Each of ``data`` and ``diff`` is a :class:`~kaffe.caffe.synced.SyncedTensor`: with a device
    (``to_device``) the net's layers read and write the device copy and Python's ``.data`` /
    ``.diff`` the host copy, each copied across only when the other side is fresher."""

    def __init__(self, shape=(), device=None):
        shape = _shape_of((shape,))
        self._d = SyncedTensor(shape, device)
        self._g = SyncedTensor(shape, device)

    # -------------------------------------------------------------- pycaffe surface
    @property
    def data(self):
        return self._d.host().numpy()

    @property
    def diff(self):
        return self._g.host().numpy()

    @property
    def shape(self):
        return self._d.shape

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
            self._d.reshape(shape)
            self._g.reshape(shape)

    def to_device(self, device):
        """Keep the layers' copy of data and diff on ``device`` (None: the host only)."""
        self._d.to_device(device)
        self._g.to_device(device)

    # -------------------------------------------------------------- the net's side
    @property
    def _data(self):
        """The host tensor (up to date) for kaffe's own reads."""
        return self._d.host(mutable=False)

    @property
    def _diff(self):
        return self._g.host(mutable=False)

    @_diff.setter
    def _diff(self, tensor):
        self._g.hold(tensor)

    def _store(self, tensor, borrow=False):
        """Keep ``tensor`` (a layer's top) as the data: copied into the blob's own buffer when
        the shape is the same (warm memory across forwards, as Caffe's blobs), on the device
        when the blob has one; ``borrow`` (nothing writes into ``tensor`` later): kept itself
        until Python looks (see :meth:`SyncedTensor.write`)."""
        self._d.write(tensor, borrow)
        if self._g.shape != self._d.shape:
            self._g.reshape(self._d.shape)

    def _keep(self, tensor):
        """``_store(tensor, borrow=True)`` for a fresh float32 host tensor nothing else writes
        into (the inference plan's tops), without the checks when it is kept as it is."""
        if not self._d.lend(tensor):
            self._store(tensor, borrow=True)

    def _hold(self, tensor):
        """Make ``tensor`` the data itself (no copy): a Python layer's view of its bottoms."""
        self._d.hold(tensor)
        if self._g.shape != self._d.shape:
            self._g.reshape(self._d.shape)

    def _store_diff(self, tensor, borrow=False):
        """Keep a computed diff (None: zeros) as the diff, in the blob's kept buffer
        (``borrow``: kept itself until Python looks, as :meth:`_store`)."""
        if self._g.shape != self._d.shape:
            self._g.reshape(self._d.shape)
        self._g.write(None if tensor is None else tensor.detach().reshape(self._g.shape),
                      borrow)

    def _tensor(self):
        """The data where the layers compute (uploaded first if Python wrote it)."""
        return self._d.on_device()

    def _diff_tensor(self):
        return self._g.on_device()

    def __repr__(self):
        return f"<Blob shape={self.shape}>"


class ParamBlob(Blob):
    """A learnable blob: ``data`` views the torch ``Parameter``, ``diff`` its ``.grad`` (shared
    between layers that share the parameter). ``shape`` differs from the parameter's for a
    PERMISSIVE share (same count, this layer's own shape)."""

    _mirrors = None   # (data, diff) MirroredTensors once the parameter lives on a device

    def __init__(self, parameter, shape=None):  # noqa: D107 - no Blob storage of its own
        self.parameter = parameter
        self._shape = tuple(parameter.shape) if shape is None else tuple(shape)
        if parameter.grad is None or parameter.grad.shape != parameter.shape:
            parameter.grad = torch.zeros_like(parameter)

    def to_device(self, device):
        """The parameter now lives on a device (moved by its module): ``data`` / ``diff`` become
        host copies kept by :class:`~kaffe.caffe.synced.MirroredTensor` (None: views again)."""
        p = self.parameter
        self._mirrors = None if device is None else (
            MirroredTensor(lambda: p), MirroredTensor(lambda: p.grad))

    @property
    def data(self):
        if self._mirrors is not None:
            return self._mirrors[0].host().numpy().reshape(self._shape)
        return self.parameter.detach().numpy().reshape(self._shape)

    @property
    def diff(self):
        if self._mirrors is not None:
            return self._mirrors[1].host().numpy().reshape(self._shape)
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
