"""Caffe's element-wise (neuron) layers and Softmax, each with Caffe's exact formula.

Every layer here has one bottom and one top of the bottom's shape; backward is PyTorch's autograd
of the same formula, which equals Caffe's hand-written Backward_cpu (checked against real Caffe's
gradients in tests/test_caffe_layers.py).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from kaffe.caffe import fillers
from kaffe.caffe.builders.registry import CaffeLayer, register
from kaffe.caffe.proto import caffe_pb2
from kaffe.layers import dropout_mask


class _Elementwise(CaffeLayer):
    """One bottom -> one top of the same shape, ``top = self.fn(bottom)``."""

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]

    def forward(self, x):
        return [self.fn(x)]


@register("ReLU")
class ReLU(_Elementwise):
    """max(x, 0) + negative_slope * min(x, 0)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.negative_slope = param.relu_param.negative_slope

    def fn(self, x):
        if self.negative_slope == 0:
            return torch.relu(x)
        return F.leaky_relu(x, self.negative_slope)


@register("PReLU")
class PReLU(_Elementwise):
    """max(x, 0) + a_c * min(x, 0) with one learned slope per channel (axis 1), or one in all
    (``channel_shared``). Blob 0: slopes, shape (C,) or () (shared); filled by ``prelu_param.filler``
    (Caffe's default: constant 0.25)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        shape = tuple(bottom_shapes[0])
        if len(shape) < 2:
            raise ValueError(f"PReLU '{param.name}' expected a bottom with at least 2 axes "
                             f"(N, C, ...). Received: shape={shape}.")
        self.channel_shared = param.prelu_param.channel_shared
        # Caffe's shared slope is a 0-axis blob
        self.blobs.append(nn.Parameter(torch.empty(() if self.channel_shared else (shape[1],))))
        self.reset_parameters()

    def reset_parameters(self):
        p = self.param.prelu_param
        filler = p.filler if p.HasField("filler") else caffe_pb2.FillerParameter(
            type="constant", value=0.25)
        with torch.no_grad():
            self.blobs[0].copy_(fillers.fill(filler, tuple(self.blobs[0].shape)))

    fill_blobs = reset_parameters

    def fn(self, x):
        slope = self.blobs[0]
        if not self.channel_shared:
            slope = slope.reshape((1, -1) + (1,) * (x.dim() - 2))
        return torch.relu(x) + slope * torch.clamp(x, max=0)


@register("ELU")
class ELU(_Elementwise):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.alpha = param.elu_param.alpha

    def fn(self, x):
        return torch.where(x > 0, x, self.alpha * torch.expm1(torch.clamp(x, max=0)))


@register("Sigmoid")
class Sigmoid(_Elementwise):
    def fn(self, x):
        return torch.sigmoid(x)


@register("TanH")
class TanH(_Elementwise):
    def fn(self, x):
        return torch.tanh(x)


@register("AbsVal")
class AbsVal(_Elementwise):
    def fn(self, x):
        return torch.abs(x)


@register("BNLL")
class BNLL(_Elementwise):
    """log(1 + exp(x)), computed as max(x, 0) + log(1 + exp(-|x|)); gradient sigmoid(x)."""

    def fn(self, x):
        return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))


@register("Power")
class Power(_Elementwise):
    """(shift + scale * x) ** power."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.power_param
        self.power, self.scale, self.shift = p.power, p.scale, p.shift

    def fn(self, x):
        if self.power == 0:
            return torch.ones_like(x)
        base = self.shift + self.scale * x
        return base if self.power == 1 else torch.pow(base, self.power)


def _log_base(base, layer, name):
    if base == -1:
        return 1.0
    if base <= 0:
        raise ValueError(f"{layer} '{name}' expected base -1 (for e) or a positive number. "
                         f"Received: base={base}.")
    return math.log(base)


@register("Exp")
class Exp(_Elementwise):
    """base ** (shift + scale * x); base -1 (the default) means e."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.exp_param
        log_base = _log_base(p.base, "Exp", param.name)
        self.inner_scale = log_base * p.scale
        self.outer_scale = 1.0 if p.shift == 0 else math.exp(log_base * p.shift)

    def fn(self, x):
        y = torch.exp(self.inner_scale * x)
        return y if self.outer_scale == 1 else self.outer_scale * y


@register("Log")
class Log(_Elementwise):
    """log_base(shift + scale * x); base -1 (the default) means e."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.log_param
        self.base_scale = 1.0 / _log_base(p.base, "Log", param.name)
        self.scale, self.shift = p.scale, p.shift

    def fn(self, x):
        y = torch.log(self.shift + self.scale * x)
        return y if self.base_scale == 1 else self.base_scale * y


@register("Threshold")
class Threshold(_Elementwise):
    """1 where x > threshold, else 0 (no backward in Caffe)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.threshold = param.threshold_param.threshold

    def fn(self, x):
        return (x > self.threshold).to(x.dtype)


@register("Clip")
class Clip(_Elementwise):
    """min(max(x, min), max); gradient passes where min <= x <= max."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.clip_param
        if not (p.HasField("min") and p.HasField("max")):
            raise ValueError(f"Clip '{param.name}' expected clip_param {{ min: ... max: ... }}; "
                             f"both are required in Caffe.")
        self.min, self.max = p.min, p.max

    def fn(self, x):
        return torch.clamp(x, self.min, self.max)


@register("Swish")
class Swish(_Elementwise):
    """x * sigmoid(beta * x)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.beta = param.swish_param.beta

    def fn(self, x):
        return x * torch.sigmoid(self.beta * x)


@register("Dropout")
class Dropout(_Elementwise):
    """TRAIN: x * mask / (1 - p) with mask ~ Bernoulli(1 - p); TEST: identity (Caffe's
    inverted dropout)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.ratio = param.dropout_param.dropout_ratio
        if not 0 <= self.ratio < 1:
            raise ValueError(f"Dropout '{param.name}' expected 0 <= dropout_ratio < 1. "
                             f"Received: dropout_ratio={self.ratio}.")

    def fn(self, x):
        if self.phase != "TRAIN" or self.ratio == 0:
            return x
        return dropout_mask.dropout(x, self.ratio)


def canonical_axis(axis, num_axes, layer, name, field="axis"):
    """Caffe's ``Blob::CanonicalAxisIndex``: -num_axes <= axis < num_axes, negatives from the end."""
    if not -num_axes <= axis < num_axes:
        raise ValueError(f"{layer} '{name}' expected {field} in [{-num_axes}, {num_axes}) for a "
                         f"bottom with {num_axes} axes. Received: {field}={axis}.")
    return axis + num_axes if axis < 0 else axis


@register("Softmax")
class Softmax(_Elementwise):
    """softmax over ``softmax_param.axis`` (default 1)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.axis = canonical_axis(param.softmax_param.axis, len(bottom_shapes[0]), "Softmax",
                                   param.name)

    def fn(self, x):
        return torch.softmax(x, dim=self.axis)
