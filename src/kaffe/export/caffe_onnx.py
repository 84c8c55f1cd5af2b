"""A Caffe net (``deploy.prototxt`` + ``.caffemodel``) as an ONNX file.

``export_caffe_onnx(prototxt, weights, path)`` builds the net in the TEST phase (as
``caffe.load_model``), checks every layer type against :data:`REFUSED` before anything is
traced or written, and exports it with the net's input blobs as graph inputs and its unconsumed
tops (or ``outputs=``) as graph outputs, batch axis symbolic.

Most layers export as kaffe runs them. :data:`EXPORT_FORMS` swaps in an equivalent module where
kaffe's training-ready form does not translate faithfully:

- ``BatchNorm`` (global statistics): folded into one ONNX ``BatchNormalization`` with the
  statistics divided by Caffe's scale-factor blob, and with the following in-place ``Scale``
  layer's factor and bias as its gamma and beta (ONNX Runtime then fuses it into the
  convolution before it).
- ``Embed``: the table lookup without kaffe's index range check (a data-dependent branch).
- ``Pooling`` AVE: kaffe divides window sums (``avg_pool2d(divisor_override=1)``) by Caffe's
  clipped window sizes; the ONNX exporters drop ``divisor_override`` silently (GoogLeNet's
  ``pool5`` came out 49x too small), so the export form takes the plain average of the padded
  input and rescales it.
"""
import os

import torch
import torch.nn.functional as F
from torch import nn

from kaffe.export.onnx_file import (OnnxExportError, batch_dim, export_program, module_labels,
                                    require_onnx, unique_names, write_onnx)

REFUSED = {
    "Python": "a Python layer runs arbitrary Python code, which has no ONNX form",
    "SoftmaxWithLoss": "a training loss",
    "SigmoidCrossEntropyLoss": "a training loss",
    "EuclideanLoss": "a training loss",
    "HingeLoss": "a training loss",
    "ContrastiveLoss": "a training loss",
    "InfogainLoss": "a training loss",
    "MultinomialLogisticLoss": "a training loss",
    "Accuracy": "a training metric",
}
"""Caffe layer types kaffe does not export, and why. A loss or metric belongs to training: export
the deploy prototxt, or pass ``outputs=`` to stop before it."""


class FoldedBatchNorm(nn.Module):
    """Caffe ``BatchNorm`` (global statistics, divided by the scale-factor blob), optionally
    followed by ``Scale``: one ``F.batch_norm`` in inference mode."""

    def __init__(self, bn, scale=None):
        super().__init__()
        mean, var, factor = (b.detach().clone() for b in bn.blobs)
        s = float(factor.reshape(-1)[0])
        inv = 0.0 if s == 0 else 1.0 / s
        channels = mean.numel()
        weight, bias = torch.ones(channels), torch.zeros(channels)
        if scale is not None:
            weight = scale.blobs[0].detach().clone().reshape(-1)
            if scale.bias_term:
                bias = scale.blobs[-1].detach().clone().reshape(-1)
        self.eps = float(bn.eps)
        self.register_buffer("mean", mean * inv)
        self.register_buffer("var", var * inv)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def forward(self, x):
        return [F.batch_norm(x, self.mean, self.var, self.weight, self.bias, False, 0.0,
                             self.eps)]


class AveragePooling(nn.Module):
    """Caffe AVE pooling: pad (Caffe's pad plus the far-side extra that ceil mode needs), average
    whole windows, and rescale each output to Caffe's divisor (the window clipped to the padded
    image, not to the extra)."""

    def __init__(self, pooling, shape):
        super().__init__()
        kernel, pooled = pooling._geometry(shape)
        size = shape[2:]
        extra = [max(0, (o - 1) * s + k - (n + 2 * pd))
                 for o, s, k, n, pd in zip(pooled, pooling.stride, kernel, size, pooling.pad)]
        ph, pw = pooling.pad
        self.padding = (pw, pw + extra[1], ph, ph + extra[0])
        self.kernel, self.stride = tuple(kernel), tuple(pooling.stride)
        self.copies = 2 if pooling.mask_top else 1
        counts = []
        for o, s, k, n, pd in zip(pooled, pooling.stride, kernel, size, pooling.pad):
            start = torch.arange(o) * s - pd
            counts.append((torch.clamp(start + k, max=n + pd) - start).float())
        area = float(kernel[0] * kernel[1])
        self.register_buffer("rescale", area / (counts[0][:, None] * counts[1][None, :]))

    def forward(self, x):
        padded = F.pad(x, self.padding) if any(self.padding) else x
        out = F.avg_pool2d(padded, self.kernel, self.stride) * self.rescale
        return [out] * self.copies


class Embedding(nn.Module):
    """Caffe ``Embed`` without kaffe's index range check (a data-dependent branch, which has no
    ONNX form; ONNX Runtime's ``Gather`` rejects an index out of range itself)."""

    def __init__(self, embed):
        super().__init__()
        self.register_buffer("weight", embed.blobs[0].detach().clone())
        self.register_buffer("bias", embed.blobs[1].detach().clone() if len(embed.blobs) > 1
                             else torch.zeros(self.weight.shape[1]))

    def forward(self, x):
        return [F.embedding(x.long(), self.weight) + self.bias]


def _embed_form(layer, spec, shapes, following):
    return Embedding(layer), 1


def _pooling_form(layer, spec, shapes, following):
    from kaffe.caffe.proto import caffe_pb2
    if layer.method == caffe_pb2.PoolingParameter.AVE:
        return AveragePooling(layer, shapes[spec.bottom[0]]), 1
    return None, 1


def _batch_norm_form(layer, spec, shapes, following):
    if not layer.use_global_stats:
        return None, 1
    scale = _foldable_scale(spec, following)
    return FoldedBatchNorm(layer, scale), (2 if scale is not None else 1)


def _foldable_scale(spec, following):
    """The ``Scale`` layer right after a BatchNorm that works in place on its top with a
    learned per-channel factor, or None."""
    if not following:
        return None
    next_spec, next_layer = following[0]
    top = spec.top[0]
    if (next_spec.type == "Scale" and list(next_spec.bottom) == [top]
            and list(next_spec.top) == [top] and getattr(next_layer, "learned", False)
            and next_layer.axis == 1 and len(next_layer.param_shape) == 1):
        return next_layer
    return None


EXPORT_FORMS = {"BatchNorm": _batch_norm_form, "Embed": _embed_form, "Pooling": _pooling_form}
"""Caffe type -> ``form(layer, spec, blob_shapes, following) -> (module or None, layers used)``;
None keeps kaffe's own layer."""


class CaffeExportNet(nn.Module):
    """The net's layers (export forms swapped in) as one module: ``forward(*inputs)`` takes the
    input blobs and returns a tuple of the output blobs."""

    def __init__(self, caffe_net):
        super().__init__()
        specs = list(caffe_net._specs)
        layers = list(caffe_net.caffe_layers)
        shapes = caffe_net.blob_shapes
        steps, modules, i = [], [], 0
        while i < len(specs):
            spec, layer = specs[i], layers[i]
            form = EXPORT_FORMS.get(spec.type)
            module, used = form(layer, spec, shapes, list(zip(specs, layers))[i + 1:]) \
                if form else (None, 1)
            last = specs[i + used - 1]
            steps.append((list(spec.bottom), list(last.top),
                          f"'{spec.name}' ({spec.type})"))
            modules.append(module if module is not None else layer)
            i += used
        self.steps = steps
        self.layers = nn.ModuleList(modules)
        self.input_names = list(caffe_net.input_names)
        self.output_names = list(caffe_net.output_names)

    def labelled_layers(self):
        return [(label, module) for (_, _, label), module in zip(self.steps, self.layers)]

    def forward(self, *inputs):
        blobs = dict(zip(self.input_names, inputs))
        for (bottoms, tops, _), layer in zip(self.steps, self.layers):
            for name, value in zip(tops, layer(*[blobs[b] for b in bottoms])):
                blobs[name] = value
        return tuple(blobs[name] for name in self.output_names)


def check_exportable(specs, source):
    """Refuse, before any tracing or writing, a net with a layer type in :data:`REFUSED`."""
    for spec in specs:
        reason = REFUSED.get(spec.type)
        if reason:
            raise OnnxExportError(
                f"Cannot export {source}: layer '{spec.name}' of type {spec.type} has no ONNX "
                f"form ({reason}). Export the deploy prototxt, or pass outputs=[...] naming "
                f"blobs before that layer.")


def export_caffe_onnx(prototxt, weights, path, outputs=None, dynamic_batch=True):
    """Write the Caffe net ``prototxt`` with ``weights`` (``.caffemodel`` / Caffe ``.h5``; None:
    the fillers' values) to ``path`` as ONNX; returns ``path``. Graph inputs are the net's input
    blobs, outputs its unconsumed tops (or the blobs named in ``outputs``)."""
    from kaffe.caffe.bridge import load_model
    require_onnx()
    source = f"'{os.fspath(prototxt)}'" if not hasattr(prototxt, "layer") else "the net"
    if outputs is None:   # refuse from the prototxt alone (a Python layer's module may be absent)
        check_exportable(_test_phase_layers(prototxt), source)
    model = load_model(prototxt, weights=weights, phase="test", outputs=outputs)
    return export_caffe_model(model, path, dynamic_batch=dynamic_batch, source=source)


def _test_phase_layers(prototxt):
    from kaffe.caffe import prototxt as _prototxt
    from kaffe.caffe.net import filter_net
    from kaffe.caffe.proto import caffe_pb2
    param = prototxt if hasattr(prototxt, "layer") else _prototxt.read_net_param(
        os.fspath(prototxt))
    state = caffe_pb2.NetParameter()
    state.CopyFrom(param)
    state.state.phase = caffe_pb2.TEST
    return list(filter_net(state).layer)


def export_caffe_model(model, path, dynamic_batch=True, source=None):
    """Write a model from ``caffe.load_model`` as ONNX (see :func:`export_caffe_onnx`)."""
    require_onnx()
    caffe_net = model.caffe_net
    source = source or f"Caffe net '{model.name}'"
    check_exportable(caffe_net._specs, source)
    net = CaffeExportNet(caffe_net).eval()
    examples, dims = [], []
    batch = batch_dim()
    shapes = [tuple(caffe_net.blob_shapes[name]) for name in net.input_names]
    for shape in shapes:
        # an input has a batch axis when its axis 0 is as long as the first input's (a Scale's
        # second bottom of shape (C,) or (C, H) has none)
        batched = dynamic_batch and bool(shape) and shape[0] == shapes[0][0]
        examples.append(torch.randn(((2,) + shape[1:]) if batched else shape))
        dims.append({0: batch} if batched else None)
    layers = net.labelled_layers()
    program = export_program(net, examples, layers, dims, source)
    return write_onnx(program, path, unique_names(net.input_names),
                      unique_names(net.output_names), source, module_labels(net, layers))
