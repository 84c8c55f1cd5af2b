"""Caffe layer type -> kaffe builder, as a table (no if-chains).

A builder is registered with ``@register("Convolution", "Deconvolution")`` and called as
``builder(param, bottom_shapes, phase)``, where ``param`` is the ``caffe_pb2.LayerParameter``,
``bottom_shapes`` the list of bottom blob shapes (tuples, NCHW, batch included) and ``phase``
``"TRAIN"`` or ``"TEST"``. It returns a :class:`CaffeLayer`.

A ``CaffeLayer`` is an ``nn.Module`` whose ``forward(*bottoms)`` returns the list of top tensors,
whose ``blobs`` (a list of tensors, in Caffe's order and Caffe's shapes) are the learnable or
stored parameters pycaffe exposes as ``net.params[name]``, and whose ``top_shapes(bottom_shapes)``
gives the top shapes without running it. ``fill_blobs(param)`` fills ``blobs`` with Caffe's
fillers.
"""
from torch import nn

LAYER_BUILDERS = {}


class UnknownLayerType(ValueError):
    pass


def register(*caffe_types):
    """Decorator: make the function or class the builder of these Caffe layer types."""
    def decorate(builder):
        for caffe_type in caffe_types:
            if caffe_type in LAYER_BUILDERS:
                raise ValueError(f"Caffe layer type {caffe_type!r} is registered twice.")
            LAYER_BUILDERS[caffe_type] = builder
        return builder
    return decorate


def builder_for(param):
    """The builder of ``param.type``; an unknown type names the layer and lists the known ones."""
    try:
        return LAYER_BUILDERS[param.type]
    except KeyError:
        raise UnknownLayerType(
            f"Unknown layer type {param.type!r} (layer '{param.name}'). Known types: "
            f"{', '.join(sorted(LAYER_BUILDERS))}.") from None


class CaffeLayer(nn.Module):
    """Base of the layers a Caffe net is made of."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__()
        self.param = param
        self.name = param.name
        self.phase = phase
        self.blobs = nn.ParameterList()

    def top_shapes(self, bottom_shapes):
        raise NotImplementedError

    def forward(self, *bottoms):
        raise NotImplementedError
