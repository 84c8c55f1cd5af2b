"""Inference-only fusion of a Convolution (or Eltwise, InnerProduct) with the in-place layers
after it.

ResNet's ``conv -> BatchNorm -> Scale -> ReLU`` (and CaffeNet's / GoogLeNet's ``conv -> ReLU``)
all write the convolution's top in place, so in Caffe that blob holds only the last layer's
value once the chain has run: the intermediate values are never observable from Python. When a
forward records no gradient (a net none of whose layers runs backward) and runs the whole chain,
:class:`ConvChain` computes it as the convolution, then BatchNorm and Scale in one
``F.batch_norm`` pass (Scale as its affine weight and bias), then ReLU in place on that fresh
tensor: one pass over the activation instead of four, the same values up to float rounding.
ResNet's ``Eltwise -> ReLU`` and CaffeNet's ``InnerProduct -> ReLU`` take the ReLU in place on
the fresh sum or product the same way.

Nothing is cached: the BatchNorm statistics, Scale factors and convolution weights are read
from the parameters on every call, so a write through ``net.params[...].data`` changes the next
forward exactly as in Caffe (OpenCV and ONNX Runtime fold them into the weights once, at load).
"""
import torch
import torch.nn.functional as F

__all__ = ["ConvChain", "find_conv_chains"]

# layer type -> the in-place followers it may take, in order
_FOLLOWERS = {"Convolution": ("bn", "scale", "relu"), "Eltwise": ("relu",),
              "InnerProduct": ("relu",)}


def _in_place_on(lp, blob):
    return list(lp.bottom) == [blob] and list(lp.top) == [blob]


def _joins(lp, layer, blob, channels):
    """Which part of a chain the layer ``lp`` can be (``"bn"``, ``"scale"``, ``"relu"``), or
    None: it must work in place on ``blob`` and be per-channel over axis 1."""
    if not _in_place_on(lp, blob) or lp.loss_weight:
        return None
    if lp.type == "BatchNorm" and layer.use_global_stats:
        return "bn"
    if lp.type == "Scale" and layer.learned and layer.axis == 1 and \
            tuple(layer.param_shape) == (channels,):
        return "scale"
    if lp.type == "ReLU":
        return "relu"
    return None


def find_conv_chains(specs, modules):
    """``{index of a layer: ConvChain}`` for every Convolution followed directly by in-place
    BatchNorm (global statistics), Scale (learned, per channel) and/or ReLU layers on its top,
    in that order (each at most once), and every Eltwise or InnerProduct followed by an
    in-place ReLU. ``specs`` are the net's ``(LayerParameter, loss weights)`` pairs,
    ``modules`` its layer modules, both in run order."""
    chains = {}
    for i, ((lp, _), layer) in enumerate(zip(specs, modules)):
        order = _FOLLOWERS.get(lp.type)
        if order is None or len(lp.top) != 1 or lp.top[0] in lp.bottom:
            continue
        blob, parts = lp.top[0], {}
        channels = getattr(layer, "num_output", None)
        j = i + 1
        while j < len(specs):
            part = _joins(specs[j][0], modules[j], blob, channels)
            if part not in order or part in parts or any(p in parts for p in
                                                         order[order.index(part) + 1:]):
                break
            parts[part] = modules[j]
            j += 1
        if parts:
            chains[i] = ConvChain(layer, parts, last=j - 1)
    return chains


class ConvChain:
    """A layer (Convolution, Eltwise, InnerProduct) and the in-place layers after it, run as
    one step (no autograd)."""

    def __init__(self, conv, parts, last):
        self.conv, self.last = conv, last
        self.bn, self.scale, self.relu = parts.get("bn"), parts.get("scale"), parts.get("relu")

    def __call__(self, *bottoms):
        return self.finish(self.conv(*bottoms)[0], bottoms)

    def finish(self, y, bottoms=()):
        """The in-place followers on ``y``, the head layer's output for ``bottoms`` (which
        it may share memory with; none given: ``y`` is fresh, as an inference plan's own
        kernel returns it)."""
        if self.bn is not None or self.scale is not None:
            y = self._affine(y)
        if self.relu is not None:
            slope = self.relu.negative_slope
            if any(_shares_memory(y, b) for b in bottoms):   # e.g. a one-bottom Eltwise
                return self.relu(y)[0]
            y = y.relu_() if slope == 0 else F.leaky_relu_(y, slope)
        return y

    def _affine(self, y):
        weight = self.scale.blobs[0] if self.scale is not None else None
        bias = self.scale.blobs[1] if self.scale is not None and self.scale.bias_term else None
        if self.bn is None:   # Scale alone: per-channel y * w (+ b)
            view = (1, -1) + (1,) * (y.dim() - 2)
            y = y.mul_(weight.view(view))
            return y if bias is None else y.add_(bias.view(view))
        blobs, eps = self.bn.blobs, self.bn.eps
        s = blobs[2].detach()[0]
        # Caffe's statistics are sums over s; a tensor, as BatchNorm's: no host sync on a GPU
        factor = torch.where(s == 0, 0.0, 1.0 / s)
        return F.batch_norm(y, blobs[0] * factor, blobs[1] * factor, weight, bias, False,
                            0.0, eps)


def _shares_memory(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
