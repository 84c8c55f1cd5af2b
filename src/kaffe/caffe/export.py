"""A Keras-style kaffe model written out as a Caffe net: ``caffe.export(model, prototxt,
caffemodel)``.

Each Keras layer becomes the Caffe layer(s) with the same arithmetic (table ``CONVERTERS``,
keyed by Keras class name): Input, Dense, Conv2D, MaxPooling2D/AveragePooling2D,
GlobalMax/AveragePooling2D, Flatten, Dropout, Activation/ReLU/LeakyReLU/ELU/Softmax (and the
``activation=`` of Dense/Conv2D), BatchNormalization (-> BatchNorm + Scale), Add, Subtract,
Multiply, Average, Maximum, Concatenate and Embedding. Caffe layer and blob names are the Keras
layer names. A layer with no Caffe equivalent, or a setting Caffe computes differently, is an
``ExportError`` naming the layer, its type and what to change; nothing is written then.

Layouts. Keras images are ``channels_last`` (N, H, W, C); Caffe blobs are N, C, H, W. The
exported net takes NCHW input (feed ``x.transpose(0, 3, 1, 2)``); conv kernels go from Keras's
(kh, kw, in, out) to Caffe's (out, in, kh, kw). Caffe's Flatten of an NCHW map orders features
C, H, W where Keras's orders them H, W, C, so each flat blob remembers the permutation
``caffe[j] = keras[perm[j]]`` and the next Dense/BatchNormalization permutes its weights to
match. Caffe's pooling rounds its output size up; a Keras pooling whose size or windows Caffe
cannot reproduce is refused with the reason.
"""
import collections
import math
import os
from dataclasses import dataclass

import numpy as np

from kaffe import activations
from kaffe.caffe.blobs import save_caffemodel
from kaffe.caffe.prototxt import write_prototxt
from kaffe.caffe.proto import caffe_pb2

_P = caffe_pb2
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


class ExportError(ValueError):
    pass


@dataclass
class _Blob:
    """A Keras tensor as a Caffe blob: its name, Keras shape (batch axis left out), whether it
    is a channels_last image (Caffe holds it NCHW) and, for flat features, the permutation."""
    name: str
    shape: tuple
    nhwc: bool = False
    perm: np.ndarray = None


def _fail(layer, message):
    raise ExportError(f"Cannot export layer '{layer.name}' ({type(layer).__name__}) to Caffe: "
                      f"{message}")


# ------------------------------------------------------------------------------ the writer

class _Writer:
    """Accumulates the ``NetParameter`` and the weights (``layer name -> [arrays]``)."""

    def __init__(self, model, batch_size):
        from kaffe.engine.graph import map_graph
        if not getattr(model, "built", False) or not model.inputs:
            raise ExportError(f"Model '{model.name}' is not built yet: give it an input shape "
                              f"(an Input, input_shape=..., or call it on data) before export.")
        self.model, self.batch_size = model, batch_size
        self.nodes = [n for n in map_graph(model.inputs, model.outputs)[0]]
        self.net = _P.NetParameter(name=model.name)
        self.weights = collections.OrderedDict()
        self.blobs = {}  # id(KerasTensor) -> _Blob
        self.uses = collections.Counter(id(t) for n in self.nodes for t in n.inputs)
        self.uses.update(id(t) for t in model.outputs)
        self.calls = collections.Counter(n.layer for n in self.nodes if not n.is_input)
        self.names, self.seen = set(), collections.Counter()

    def layer(self, name, caffe_type, bottoms, tops):
        if name in self.names:
            raise ExportError(f"Two Caffe layers would be named '{name}'; rename the Keras "
                              f"layer.")
        self.names.add(name)
        lp = self.net.layer.add(name=name, type=caffe_type)
        lp.bottom.extend(bottoms)
        lp.top.extend(tops)
        return lp

    def params(self, lp, keras_layer, arrays, role=""):
        """Store ``arrays`` as ``lp``'s blobs; a Keras layer called several times shares them."""
        self.weights[lp.name] = [np.ascontiguousarray(a, np.float32) for a in arrays]
        if self.calls[keras_layer] > 1:
            for i in range(len(arrays)):
                lp.param.add(name=f"{keras_layer.name}{role}_{i}")

    def top_name(self, layer):
        """The Caffe name of the output of ``layer``'s current call."""
        k = self.seen[layer]
        return layer.name if k == 0 else f"{layer.name}_{k}"

    def in_place(self, tensor):
        """Whether a layer may overwrite ``tensor``'s blob (nothing else reads it)."""
        return self.uses[id(tensor)] <= 1 and not any(tensor is t for t in self.model.outputs)

    def activation(self, fn, blob, keras_layer):
        """The Caffe layer of a layer's ``activation=`` function, in place on its output."""
        key = activations.serialize(fn) if callable(fn) else str(fn)
        if key == "linear":
            return blob
        if key not in _ACTIVATIONS:
            _fail(keras_layer, f"activation '{key}' has no Caffe layer; Caffe has "
                               f"{', '.join(sorted(_ACTIVATIONS))}.")
        caffe_type, configure = _ACTIVATIONS[key]
        lp = self.layer(f"{blob.name}_{key}", caffe_type, [blob.name], [blob.name])
        if configure:
            configure(lp, blob)
        return blob


def _softmax_axis(lp, blob, keras_axis=-1):
    lp.softmax_param.axis = _caffe_axis(blob, keras_axis % (len(blob.shape) + 1))


_ACTIVATIONS = {
    "relu": ("ReLU", None),
    "sigmoid": ("Sigmoid", None),
    "tanh": ("TanH", None),
    "softmax": ("Softmax", _softmax_axis),
    "elu": ("ELU", None),
    "softplus": ("BNLL", None),
    "exponential": ("Exp", None),
    "silu": ("Swish", None),
}


def _caffe_axis(blob, keras_axis):
    """The Caffe axis of a Keras axis (batch axis counted as 0)."""
    return _NHWC_TO_NCHW_AXIS[keras_axis] if blob.nhwc else keras_axis


# ------------------------------------------------------------------------------ converters

def _input(w, layer, ins, out):
    shape = tuple(out.shape[1:])
    if any(d is None for d in shape):
        _fail(layer, f"Caffe needs a fixed input shape; received {tuple(out.shape)}. Give "
                     f"Input(shape=...) every dimension.")
    nhwc = len(shape) == 3 and _image_format(w, out) == "channels_last"
    blob = _Blob(w.top_name(layer), shape, nhwc=nhwc)
    caffe_shape = (w.batch_size,) + ((shape[2], shape[0], shape[1]) if nhwc else shape)
    lp = w.layer(layer.name, "Input", [], [blob.name])
    lp.input_param.shape.add().dim.extend(caffe_shape)
    return blob


def _image_format(w, tensor):
    """channels_last / channels_first for a 4-D model input: what the layers reading it use."""
    from kaffe.config import image_data_format
    for node in w.nodes:
        if any(t is tensor for t in node.inputs):
            fmt = getattr(node.layer, "data_format", None)
            if fmt:
                return fmt
    return image_data_format()


def _dense(w, layer, ins, out):
    (x,) = ins
    if x.nhwc:
        _fail(layer, "a Dense on a 4-D channels_last map acts on the channel axis, which "
                     "Caffe's InnerProduct cannot; put Flatten or GlobalAveragePooling2D first.")
    weights = layer.get_weights()
    kernel = weights[0]
    if x.perm is not None:
        kernel = kernel[x.perm]
    name = w.top_name(layer)
    lp = w.layer(name, "InnerProduct", [x.name], [name])
    p = lp.inner_product_param
    p.num_output, p.bias_term, p.axis = layer.units, bool(layer.use_bias), len(x.shape)
    w.params(lp, layer, [kernel.T] + ([weights[1]] if layer.use_bias else []))
    blob = _Blob(name, tuple(out.shape[1:]))
    return w.activation(layer.activation, blob, layer)


def _spatial_input(layer, x):
    fmt = getattr(layer, "data_format", "channels_last")
    if (fmt == "channels_last") != x.nhwc or len(x.shape) != 3:
        _fail(layer, f"expects a 4-D {fmt} image; its input '{x.name}' is "
                     f"{'channels_last' if x.nhwc else 'not a channels_last image'} with shape "
                     f"{x.shape}.")
    if any(d is None for d in x.shape):
        _fail(layer, f"Caffe needs fixed spatial sizes; received input shape {x.shape}.")
    return (x.shape[0], x.shape[1]) if x.nhwc else (x.shape[1], x.shape[2])


def _same_pads(layer, size, kernel, stride, dilation, what):
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    if total % 2:
        _fail(layer, f"padding='same' pads the {what} axis asymmetrically here ({total // 2} "
                     f"before, {total - total // 2} after, input {size}, kernel {kernel}, "
                     f"stride {stride}); Caffe pads both sides equally. Choose sizes that pad "
                     f"evenly, or padding='valid'.")
    return total // 2


def _conv2d(w, layer, ins, out):
    (x,) = ins
    sizes = _spatial_input(layer, x)
    weights = layer.get_weights()
    name = w.top_name(layer)
    lp = w.layer(name, "Convolution", [x.name], [name])
    p = lp.convolution_param
    p.num_output, p.bias_term = layer.filters, bool(layer.use_bias)
    p.kernel_h, p.kernel_w = layer.kernel_size
    p.stride_h, p.stride_w = layer.strides
    if layer.groups != 1:
        p.group = layer.groups
    if tuple(layer.dilation_rate) != (1, 1):
        p.dilation.extend(layer.dilation_rate)
    if layer.padding == "same":
        p.pad_h, p.pad_w = (_same_pads(layer, s, k, st, d, axis) for s, k, st, d, axis in zip(
            sizes, layer.kernel_size, layer.strides, layer.dilation_rate, ("height", "width")))
    elif layer.padding != "valid":
        _fail(layer, f"padding={layer.padding!r} has no Caffe equivalent; use 'valid' or 'same'.")
    kernel = weights[0].transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
    w.params(lp, layer, [kernel] + ([weights[1]] if layer.use_bias else []))
    blob = _Blob(name, tuple(out.shape[1:]), nhwc=x.nhwc)
    return w.activation(layer.activation, blob, layer)


def _caffe_pool_size(size, kernel, stride, pad):
    """Caffe's pooled size: rounded up, minus one if the last window starts in the padding."""
    out = int(math.ceil((size + 2 * pad - kernel) / stride)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pooling(method):
    def convert(w, layer, ins, out):
        (x,) = ins
        sizes = _spatial_input(layer, x)
        name = w.top_name(layer)
        pads = []
        for size, k, s, axis in zip(sizes, layer.pool_size, layer.strides, ("height", "width")):
            if layer.padding == "valid":
                want, pad = (size - k) // s + 1, 0
            else:
                want = -(-size // s)
                pad = max((want - 1) * s + k - size, 0) // 2
                if pad and method == _P.PoolingParameter.AVE:
                    _fail(layer, "AveragePooling2D with padding='same' needs padding here; "
                                 "Keras leaves the padding out of each average, Caffe counts "
                                 "it. Use padding='valid' or sizes that need no padding.")
            got = _caffe_pool_size(size, k, s, pad)
            if got != want:
                _fail(layer, f"Caffe's pooling gives {got} rows on the {axis} axis (it rounds "
                             f"up: ceil(({size} + 2*{pad} - {k}) / {s}) + 1), Keras gives {want} "
                             f"(padding={layer.padding!r}). Change the input size, pool_size "
                             f"or strides so the windows tile the input, or use padding='same'.")
            pads.append(pad)
        lp = w.layer(name, "Pooling", [x.name], [name])
        p = lp.pooling_param
        p.pool = method
        p.kernel_h, p.kernel_w = layer.pool_size
        p.stride_h, p.stride_w = layer.strides
        if any(pads):
            p.pad_h, p.pad_w = pads
        return _Blob(name, tuple(out.shape[1:]), nhwc=x.nhwc)
    return convert


def _global_pooling(method):
    def convert(w, layer, ins, out):
        (x,) = ins
        _spatial_input(layer, x)
        name = w.top_name(layer)
        pooled = name if getattr(layer, "keepdims", False) else f"{name}_pooled"
        lp = w.layer(name, "Pooling", [x.name], [pooled])
        lp.pooling_param.pool, lp.pooling_param.global_pooling = method, True
        if getattr(layer, "keepdims", False):
            return _Blob(name, tuple(out.shape[1:]), nhwc=x.nhwc)
        w.layer(f"{name}_flatten", "Flatten", [pooled], [name])
        return _Blob(name, tuple(out.shape[1:]))
    return convert


def _flatten(w, layer, ins, out):
    (x,) = ins
    name = w.top_name(layer)
    w.layer(name, "Flatten", [x.name], [name])
    perm = x.perm
    if x.nhwc:
        h, wd, c = x.shape
        perm = np.arange(h * wd * c).reshape(h, wd, c).transpose(2, 0, 1).ravel()
        if np.array_equal(perm, np.arange(perm.size)):
            perm = None
    return _Blob(name, tuple(out.shape[1:]), perm=perm)


def _same_layout(x, name, shape):
    return _Blob(name, shape, nhwc=x.nhwc, perm=x.perm)


def _elementwise_layer(w, layer, x, out, caffe_type):
    """An in-place Caffe layer when nothing else reads the input, else a new top."""
    name = w.top_name(layer)
    top = x.name if w.in_place(w.current.inputs[0]) else name
    lp = w.layer(name, caffe_type, [x.name], [top])
    return lp, _same_layout(x, top, tuple(out.shape[1:]))


def _dropout(w, layer, ins, out):
    lp, blob = _elementwise_layer(w, layer, ins[0], out, "Dropout")
    lp.dropout_param.dropout_ratio = layer.rate
    return blob


def _activation_layer(w, layer, ins, out):
    (x,) = ins
    key = activations.serialize(layer.activation)
    if key == "linear":
        return x
    if key not in _ACTIVATIONS:
        _fail(layer, f"activation '{key}' has no Caffe layer; Caffe has "
                     f"{', '.join(sorted(_ACTIVATIONS))}.")
    caffe_type, configure = _ACTIVATIONS[key]
    lp, blob = _elementwise_layer(w, layer, x, out, caffe_type)
    if configure:
        configure(lp, x)
    return blob


def _relu(w, layer, ins, out):
    if getattr(layer, "max_value", None) is not None or getattr(layer, "threshold", 0.0):
        _fail(layer, "ReLU with max_value or threshold has no Caffe layer; use plain ReLU.")
    lp, blob = _elementwise_layer(w, layer, ins[0], out, "ReLU")
    slope = float(getattr(layer, "negative_slope", 0.0))
    if slope:
        lp.relu_param.negative_slope = slope
    return blob


def _elu(w, layer, ins, out):
    lp, blob = _elementwise_layer(w, layer, ins[0], out, "ELU")
    lp.elu_param.alpha = float(layer.alpha)
    return blob


def _softmax_layer(w, layer, ins, out):
    (x,) = ins
    if not isinstance(layer.axis, int):
        _fail(layer, f"softmax over several axes {layer.axis} has no Caffe layer.")
    lp, blob = _elementwise_layer(w, layer, x, out, "Softmax")
    _softmax_axis(lp, x, layer.axis)
    return blob


def _batch_norm(w, layer, ins, out):
    (x,) = ins
    ndim = len(x.shape) + 1
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    if len(axes) != 1 or _caffe_axis(x, axes[0] % ndim) != 1:
        _fail(layer, f"Caffe's BatchNorm normalises per channel (Caffe axis 1); axis={layer.axis} "
                     f"on a {'channels_last image' if x.nhwc else f'{ndim}-axis tensor'} is "
                     f"not that axis.")
    values = list(layer.get_weights())
    gamma = values.pop(0) if layer.scale else None
    beta = values.pop(0) if layer.center else None
    mean, var = values
    gamma = np.ones_like(mean) if gamma is None else gamma
    beta = np.zeros_like(mean) if beta is None else beta
    if x.perm is not None:
        gamma, beta, mean, var = (a[x.perm] for a in (gamma, beta, mean, var))
    name = w.top_name(layer)
    top = x.name if w.in_place(w.current.inputs[0]) else name
    bn = w.layer(name, "BatchNorm", [x.name], [top])
    bn.batch_norm_param.eps = layer.epsilon
    w.params(bn, layer, [mean, var, np.ones(1, np.float32)])
    scale = w.layer(f"{name}_scale", "Scale", [top], [top])
    scale.scale_param.bias_term = True
    w.params(scale, layer, [gamma, beta], role="_scale")
    return _same_layout(x, top, tuple(out.shape[1:]))


def _eltwise(operation, coeff=None):
    def convert(w, layer, ins, out):
        first = ins[0]
        for other in ins[1:]:
            if other.nhwc != first.nhwc or not _same_perm(first.perm, other.perm):
                _fail(layer, f"inputs '{first.name}' and '{other.name}' have different layouts "
                             f"in Caffe (a channels_last map flattened vs not); merge them "
                             f"before Flatten.")
        name = w.top_name(layer)
        lp = w.layer(name, "Eltwise", [b.name for b in ins], [name])
        lp.eltwise_param.operation = operation
        if coeff:
            lp.eltwise_param.coeff.extend(coeff(len(ins)))
        return _Blob(name, tuple(out.shape[1:]), nhwc=first.nhwc, perm=first.perm)
    return convert


def _same_perm(a, b):
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a, b)


def _concatenate(w, layer, ins, out):
    ndim = len(ins[0].shape) + 1
    axis = layer.axis % ndim
    if len({b.nhwc for b in ins}) != 1:
        _fail(layer, "inputs mix channels_last images with other tensors.")
    perm = None
    if any(b.perm is not None for b in ins):
        if ndim != 2 or axis != 1:
            _fail(layer, "concatenating flattened channels_last maps is supported on the "
                         "feature axis only.")
        parts, offset = [], 0
        for b in ins:
            parts.append((np.arange(b.shape[0]) if b.perm is None else b.perm) + offset)
            offset += b.shape[0]
        perm = np.concatenate(parts)
    name = w.top_name(layer)
    lp = w.layer(name, "Concat", [b.name for b in ins], [name])
    lp.concat_param.axis = _caffe_axis(ins[0], axis)
    return _Blob(name, tuple(out.shape[1:]), nhwc=ins[0].nhwc, perm=perm)


def _embedding(w, layer, ins, out):
    (x,) = ins
    name = w.top_name(layer)
    lp = w.layer(name, "Embed", [x.name], [name])
    p = lp.embed_param
    p.num_output, p.input_dim, p.bias_term = layer.output_dim, layer.input_dim, False
    w.params(lp, layer, [layer.get_weights()[0]])
    return _Blob(name, tuple(out.shape[1:]))


CONVERTERS = {
    "InputLayer": _input,
    "Dense": _dense,
    "Conv2D": _conv2d,
    "MaxPooling2D": _pooling(_P.PoolingParameter.MAX),
    "AveragePooling2D": _pooling(_P.PoolingParameter.AVE),
    "GlobalMaxPooling2D": _global_pooling(_P.PoolingParameter.MAX),
    "GlobalAveragePooling2D": _global_pooling(_P.PoolingParameter.AVE),
    "Flatten": _flatten,
    "Dropout": _dropout,
    "Activation": _activation_layer,
    "ReLU": _relu,
    "LeakyReLU": _relu,
    "ELU": _elu,
    "Softmax": _softmax_layer,
    "BatchNormalization": _batch_norm,
    "Add": _eltwise(_P.EltwiseParameter.SUM),
    "Subtract": _eltwise(_P.EltwiseParameter.SUM, lambda n: [1.0, -1.0]),
    "Average": _eltwise(_P.EltwiseParameter.SUM, lambda n: [1.0 / n] * n),
    "Multiply": _eltwise(_P.EltwiseParameter.PROD),
    "Maximum": _eltwise(_P.EltwiseParameter.MAX),
    "Concatenate": _concatenate,
    "Embedding": _embedding,
}


def _converter(layer):
    for cls in type(layer).__mro__:
        if cls.__name__ in CONVERTERS:
            return CONVERTERS[cls.__name__]
    _fail(layer, f"Caffe has no equivalent layer type. Exportable Keras layers: "
                 f"{', '.join(sorted(CONVERTERS))}.")


# ------------------------------------------------------------------------------ entry point

def to_net_param(model, batch_size=1):
    """``(NetParameter, weights)`` for ``model``: the Caffe net and its blobs by layer name."""
    w = _Writer(model, batch_size)
    for node in w.nodes:
        layer = node.layer
        if not node.is_input and hasattr(layer, "layers") and hasattr(layer, "inputs"):
            _fail(layer, "a model used as a layer; export a model built from plain layers.")
        convert = _converter(layer)
        ins = [w.blobs[id(t)] for t in node.inputs]
        if len(node.outputs) != 1:
            _fail(layer, f"it has {len(node.outputs)} outputs; only one is supported.")
        w.current = node
        w.blobs[id(node.outputs[0])] = convert(w, layer, ins, node.outputs[0])
        w.seen[layer] += 1
    return w.net, w.weights


def export(model, prototxt_path, caffemodel_path, batch_size=1):
    """Write ``model`` as ``prototxt_path`` (the net, inputs of batch ``batch_size``) and
    ``caffemodel_path`` (its weights in Caffe's layouts). The whole net is converted before
    either file is written; both are written to a temporary file and renamed. Returns the
    ``NetParameter``."""
    net, weights = to_net_param(model, batch_size)
    write_prototxt(net, os.fspath(prototxt_path))
    save_caffemodel(os.fspath(caffemodel_path), weights, net=net)
    return net
