"""``type: "Python"``: a user's :class:`kaffe.caffe.Layer` subclass inside a kaffe net.

The layer object works on pycaffe :class:`~kaffe.caffe.pyblob.Blob` objects with numpy, as in
Caffe; :class:`_PythonStep` makes it one node of torch's autograd graph, so the net's fast
backward, the solver and ``propagate_down`` reach its ``backward(top, propagate_down, bottom)``.
Its ``self.blobs`` are torch Parameters the solver updates (``net.params[name]``).
"""
import torch

from kaffe.caffe.builders.registry import CaffeLayer, register
from kaffe.caffe.pyblob import Blob, BlobVec
from kaffe.caffe.python_layer import load_layer_class

_PHASES = {"TRAIN": 0, "TEST": 1}


class _PythonStep(torch.autograd.Function):
    """Forward: the layer's ``reshape`` + ``forward`` on the bottoms; backward: its
    ``backward`` with the tops' diffs. Parameters ride along as inputs only so that autograd
    calls backward when they alone need gradients (the layer writes their diffs itself)."""

    @staticmethod
    def forward(ctx, layer, n_bottoms, *inputs):
        ctx.layer, ctx.n_bottoms = layer, n_bottoms
        tops = layer.run_forward(inputs[:n_bottoms])
        return tuple(tops)

    @staticmethod
    def backward(ctx, *top_grads):
        layer, n = ctx.layer, ctx.n_bottoms
        need = list(ctx.needs_input_grad[2:2 + n])
        diffs = layer.run_backward(top_grads, need)
        return (None, None, *[d if want else None for d, want in zip(diffs, need)],
                *[None] * (len(ctx.needs_input_grad) - 2 - n))


@register("Python")
class PythonLayer(CaffeLayer):
    """Builds the user's layer class (``cls(layer_param)``), sets ``param_str`` / ``phase`` /
    ``blobs``, and calls its ``setup`` then ``reshape`` on blobs of the bottom shapes."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        cls = load_layer_class(param)
        impl = cls(param)
        impl.layer_param = param
        impl.param_str = param.python_param.param_str
        impl.phase = _PHASES.get(phase, phase)
        impl.blobs = BlobVec(self.blobs)
        self.impl = impl
        self.bottom_blobs = [Blob(s) for s in bottom_shapes]
        self.top_blobs = [Blob() for _ in param.top]
        impl.setup(self.bottom_blobs, self.top_blobs)
        impl.reshape(self.bottom_blobs, self.top_blobs)

    def top_shapes(self, bottom_shapes):
        for blob, shape in zip(self.bottom_blobs, bottom_shapes):
            blob.reshape(*shape)
        self.impl.reshape(self.bottom_blobs, self.top_blobs)
        return [b.shape for b in self.top_blobs]

    output_device = None   # set when the net is placed on a device: where tops and diffs go

    def forward(self, *bottoms):
        return list(_PythonStep.apply(self, len(bottoms), *bottoms, *self.blobs))

    def _to_net(self, tensors):
        """The layer works on the host; the net's other layers on ``output_device``."""
        if self.output_device is None:
            return tensors
        return [t.to(self.output_device) for t in tensors]

    # -------------------------------------------------------------- on blobs
    def run_forward(self, bottoms):
        """Tensors in, tensors out: the bottoms become the bottom blobs' data (no copy)."""
        for blob, t in zip(self.bottom_blobs, bottoms):
            blob._hold(t)
        self.impl.reshape(self.bottom_blobs, self.top_blobs)
        self.impl.forward(self.bottom_blobs, self.top_blobs)
        return self._to_net([b._data.clone() for b in self.top_blobs])

    def run_backward(self, top_diffs, propagate_down):
        """The tops' diffs (tensors or None) in, the bottoms' diffs (tensors) out."""
        for blob, g in zip(self.top_blobs, top_diffs):
            blob._diff = (torch.zeros(blob.shape) if g is None
                          else g.detach().float().contiguous().clone())
        for blob in self.bottom_blobs:
            blob._diff = torch.zeros(blob.shape)
        self.impl.backward(self.top_blobs, list(propagate_down), self.bottom_blobs)
        return self._to_net([b._diff for b in self.bottom_blobs])

    def backward_blobs(self, tops, propagate_down, bottoms):
        """Caffe's layer-by-layer backward on the net's own blobs."""
        self.impl.backward(tops, list(propagate_down), bottoms)
