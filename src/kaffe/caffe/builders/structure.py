"""Caffe's layers that combine, split, reshape, select or reduce blobs.

Backward is autograd of the forward below, which equals Caffe's Backward_cpu; where Caffe picks
one input (Eltwise MAX: the first bottom holding the maximum) the forward picks it the same way.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from kaffe.caffe import fillers
from kaffe.caffe.builders.elementwise import canonical_axis
from kaffe.caffe.builders.registry import CaffeLayer, register
from kaffe.caffe.proto import caffe_pb2

_EP = caffe_pb2.EltwiseParameter
_RP = caffe_pb2.ReductionParameter


def _same_shapes(layer, bottom_shapes):
    first = tuple(bottom_shapes[0])
    for i, shape in enumerate(bottom_shapes[1:], 1):
        if tuple(shape) != first:
            raise ValueError(f"{layer.param.type} '{layer.name}' expected every bottom to have "
                             f"the shape of bottom 0 {first}. Received: bottom {i} "
                             f"('{layer.param.bottom[i]}') of shape {tuple(shape)}.")


@register("Eltwise")
class Eltwise(CaffeLayer):
    """SUM (sum of coeff_i * x_i, coeff 1 by default), PROD or MAX of same-shape bottoms; MAX sends
    the gradient to the first bottom that holds the maximum, as Caffe's mask does."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.eltwise_param
        self.operation = p.operation
        self.coeff = list(p.coeff)
        if self.coeff and (len(self.coeff) != len(bottom_shapes) or self.operation != _EP.SUM):
            raise ValueError(f"Eltwise '{param.name}' expected one coeff per bottom "
                             f"({len(bottom_shapes)}), and only for SUM. Received: "
                             f"coeff={self.coeff} with operation "
                             f"{_EP.EltwiseOp.Name(self.operation)}.")
        _same_shapes(self, bottom_shapes)

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]

    def forward(self, *bottoms):
        if self.operation == _EP.PROD:
            out = bottoms[0]
            for x in bottoms[1:]:
                out = out * x
            return [out]
        if self.operation == _EP.MAX:
            stacked = torch.stack(bottoms)
            # Caffe keeps the earlier bottom on ties (strict >); argmax returns the first maximum
            index = stacked.detach().argmax(dim=0, keepdim=True)
            return [stacked.gather(0, index).squeeze(0)]
        coeff = self.coeff or [1.0] * len(bottoms)
        out = bottoms[0] if coeff[0] == 1 else coeff[0] * bottoms[0]
        for c, x in zip(coeff[1:], bottoms[1:]):
            out = out + (x if c == 1 else c * x)
        return [out]


def _legacy_axis(param, legacy_field, sub):
    """``concat_dim`` / ``slice_dim`` (old spelling) wins over ``axis`` when given."""
    if sub.HasField(legacy_field):
        if sub.HasField("axis"):
            raise ValueError(f"{param.type} '{param.name}' expected either axis or "
                             f"{legacy_field}, not both.")
        return getattr(sub, legacy_field)
    return sub.axis


@register("Concat")
class Concat(CaffeLayer):
    """Bottoms joined along ``axis`` (or legacy ``concat_dim``); default 1."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        axis = _legacy_axis(param, "concat_dim", param.concat_param)
        self.axis = canonical_axis(axis, len(bottom_shapes[0]), "Concat", param.name)
        self.top_shapes(bottom_shapes)

    def top_shapes(self, bottom_shapes):
        first = list(bottom_shapes[0])
        for i, shape in enumerate(bottom_shapes[1:], 1):
            if len(shape) != len(first) or any(a != b for k, (a, b) in enumerate(
                    zip(shape, first)) if k != self.axis):
                raise ValueError(f"Concat '{self.name}' expected bottoms that differ only on "
                                 f"axis {self.axis}. Received: {tuple(first)} and bottom {i} "
                                 f"{tuple(shape)}.")
        first[self.axis] = sum(s[self.axis] for s in bottom_shapes)
        return [tuple(first)]

    def forward(self, *bottoms):
        return [torch.cat(bottoms, dim=self.axis)]


@register("Slice")
class Slice(CaffeLayer):
    """The bottom cut along ``axis`` (or legacy ``slice_dim``) at ``slice_point``s, or into as
    many equal parts as there are tops."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.slice_param
        shape = tuple(bottom_shapes[0])
        self.axis = canonical_axis(_legacy_axis(param, "slice_dim", p), len(shape), "Slice",
                                   param.name)
        self.sizes = self._sizes(shape[self.axis], list(p.slice_point), len(param.top))

    def _sizes(self, dim, points, tops):
        if points:
            if len(points) != tops - 1 or any(b <= a for a, b in zip([0] + points, points + [dim])):
                raise ValueError(f"Slice '{self.name}' expected {tops - 1} increasing "
                                 f"slice_point(s) inside (0, {dim}). Received: {points}.")
            return [b - a for a, b in zip([0] + points, points + [dim])]
        if tops == 0 or dim % tops:
            raise ValueError(f"Slice '{self.name}' without slice_point splits axis {self.axis} "
                             f"({dim}) into {tops} equal parts; {dim} is not divisible by {tops}.")
        return [dim // tops] * tops

    def top_shapes(self, bottom_shapes):
        shapes = []
        for size in self.sizes:
            shape = list(bottom_shapes[0])
            shape[self.axis] = size
            shapes.append(tuple(shape))
        return shapes

    def forward(self, x):
        return list(torch.split(x, self.sizes, dim=self.axis))


@register("Split")
class Split(CaffeLayer):
    """The bottom copied to every top; the gradients of the tops add up."""

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])] * len(self.param.top)

    def forward(self, x):
        return [x.view_as(x) for _ in self.param.top]


@register("Flatten")
class Flatten(CaffeLayer):
    """Axes ``axis`` .. ``end_axis`` (defaults 1, -1) merged into one."""

    def top_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        p = self.param.flatten_param
        start = canonical_axis(p.axis, len(shape), "Flatten", self.name)
        end = canonical_axis(p.end_axis, len(shape), "Flatten", self.name, "end_axis")
        return [shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]]

    def forward(self, x):
        return [x.reshape(self.top_shapes([x.shape])[0])]


@register("Reshape")
class Reshape(CaffeLayer):
    """Axes [axis, axis + num_axes) of the bottom replaced by ``shape``; a 0 copies the bottom's
    dim at that place, one -1 is inferred from the count."""

    def top_shapes(self, bottom_shapes):
        bottom = tuple(bottom_shapes[0])
        p = self.param.reshape_param
        dims = list(p.shape.dim)
        start = p.axis if p.axis >= 0 else len(bottom) + p.axis + 1
        if not 0 <= start <= len(bottom):
            raise ValueError(f"Reshape '{self.name}' expected axis in [{-len(bottom) - 1}, "
                             f"{len(bottom)}]. Received: axis={p.axis}.")
        end = len(bottom) if p.num_axes == -1 else start + p.num_axes
        if p.num_axes < -1 or end > len(bottom):
            raise ValueError(f"Reshape '{self.name}' expected num_axes -1 or in [0, "
                             f"{len(bottom) - start}]. Received: num_axes={p.num_axes}.")
        if dims.count(-1) > 1:
            raise ValueError(f"Reshape '{self.name}' expected at most one -1 in shape. "
                             f"Received: {dims}.")
        new = [bottom[start + i] if d == 0 else d for i, d in enumerate(dims)]
        if -1 in new:
            known = math.prod(bottom[:start]) * math.prod(bottom[end:]) * math.prod(
                d for d in new if d != -1)
            if known == 0 or math.prod(bottom) % known:
                raise ValueError(f"Reshape '{self.name}' cannot infer -1 in {dims} for a "
                                 f"bottom of shape {bottom}.")
            new[new.index(-1)] = math.prod(bottom) // known
        top = bottom[:start] + tuple(new) + bottom[end:]
        if math.prod(top) != math.prod(bottom):
            raise ValueError(f"Reshape '{self.name}' expected a shape with the bottom's count "
                             f"{math.prod(bottom)}. Received: top shape {top} for bottom {bottom}.")
        return [top]

    def forward(self, x):
        return [x.reshape(self.top_shapes([tuple(x.shape)])[0])]


@register("Crop")
class Crop(CaffeLayer):
    """Bottom 0 cropped to bottom 1's shape on axes >= ``axis`` (default 2), starting at
    ``offset`` (one for all those axes, or one each; default 0)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.crop_param
        shape = tuple(bottom_shapes[0])
        self.axis = canonical_axis(p.axis, len(shape), "Crop", param.name)
        n = len(shape) - self.axis
        offsets = list(p.offset)
        if len(offsets) not in (0, 1, n):
            raise ValueError(f"Crop '{param.name}' expected 0, 1 or {n} offsets. "
                             f"Received: {offsets}.")
        self.offsets = [0] * n if not offsets else offsets * n if len(offsets) == 1 else offsets
        self.top_shapes(bottom_shapes)

    def top_shapes(self, bottom_shapes):
        data, ref = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        top = data[:self.axis] + ref[self.axis:]
        for i, off in enumerate(self.offsets):
            if off + top[self.axis + i] > data[self.axis + i]:
                raise ValueError(f"Crop '{self.name}': offset {off} + size "
                                 f"{top[self.axis + i]} exceeds axis {self.axis + i} of bottom "
                                 f"0 {data}.")
        return [top]

    def forward(self, x, ref):
        index = [slice(None)] * self.axis + [slice(o, o + ref.shape[self.axis + i])
                                             for i, o in enumerate(self.offsets)]
        return [x[tuple(index)]]


@register("Tile")
class Tile(CaffeLayer):
    """The bottom repeated ``tiles`` times along ``axis`` (whole blocks, as numpy.tile)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.axis = canonical_axis(param.tile_param.axis, len(bottom_shapes[0]), "Tile",
                                   param.name)
        self.tiles = param.tile_param.tiles
        if self.tiles < 1:
            raise ValueError(f"Tile '{param.name}' expected tiles >= 1. Received: "
                             f"tiles={self.tiles}.")

    def top_shapes(self, bottom_shapes):
        shape = list(bottom_shapes[0])
        shape[self.axis] *= self.tiles
        return [tuple(shape)]

    def forward(self, x):
        reps = [1] * x.dim()
        reps[self.axis] = self.tiles
        return [x.repeat(*reps)]


@register("ArgMax")
class ArgMax(CaffeLayer):
    """Indices (and with ``out_max_val`` values) of the ``top_k`` largest entries. With ``axis``:
    along it, top (bottom with axis -> top_k), values instead of indices if out_max_val. Without:
    over each item's flattened rest, top (N, 1 or 2, top_k) padded with 1s to the bottom's rank,
    indices then values. Ties go to the larger index, as Caffe's partial_sort. No backward."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.argmax_param
        shape = tuple(bottom_shapes[0])
        self.top_k, self.out_max_val = p.top_k, p.out_max_val
        self.axis = canonical_axis(p.axis, len(shape), "ArgMax", param.name) \
            if p.HasField("axis") else None
        dim = shape[self.axis] if self.axis is not None else math.prod(shape[1:])
        if not 1 <= self.top_k <= dim:
            raise ValueError(f"ArgMax '{param.name}' expected 1 <= top_k <= {dim}. "
                             f"Received: top_k={self.top_k}.")

    def top_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if self.axis is not None:
            return [shape[:self.axis] + (self.top_k,) + shape[self.axis + 1:]]
        top = [1] * max(len(shape), 3)
        top[0], top[1], top[2] = shape[0], 2 if self.out_max_val else 1, self.top_k
        return [tuple(top)]

    def _top_k(self, x, dim):
        flipped = x.flip(dim)  # stable descending sort on the flipped axis: larger index first
        values, index = torch.sort(flipped, dim=dim, descending=True, stable=True)
        values = values.narrow(dim, 0, self.top_k)
        index = x.shape[dim] - 1 - index.narrow(dim, 0, self.top_k)
        return values, index.to(x.dtype)

    def forward(self, x):
        x = x.detach()
        if self.axis is not None:
            values, index = self._top_k(x, self.axis)
            return [values if self.out_max_val else index]
        values, index = self._top_k(x.reshape(x.shape[0], -1), 1)
        out = torch.stack([index, values], 1) if self.out_max_val else index[:, None]
        return [out.reshape(self.top_shapes([tuple(x.shape)])[0])]


@register("Embed")
class Embed(CaffeLayer):
    """Rows of a (input_dim, num_output) table picked by integer bottom values, plus a bias
    (num_output,) if ``bias_term``; top = bottom shape + (num_output,). No input gradient."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.embed_param
        if p.num_output < 1 or p.input_dim < 1:
            raise ValueError(f"Embed '{param.name}' expected positive num_output and input_dim. "
                             f"Received: num_output={p.num_output}, input_dim={p.input_dim}.")
        self.blobs.append(nn.Parameter(torch.empty(p.input_dim, p.num_output)))
        if p.bias_term:
            self.blobs.append(nn.Parameter(torch.empty(p.num_output)))
        self.reset_parameters()

    def reset_parameters(self):
        """weight_filler / bias_filler (Caffe's default: constant 0)."""
        p = self.param.embed_param
        with torch.no_grad():
            self.blobs[0].copy_(fillers.fill(p.weight_filler, tuple(self.blobs[0].shape)))
            if len(self.blobs) > 1:
                self.blobs[1].copy_(fillers.fill(p.bias_filler, tuple(self.blobs[1].shape)))

    fill_blobs = reset_parameters

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0]) + (self.param.embed_param.num_output,)]

    def forward(self, x):
        index = x.detach().long()
        k = self.param.embed_param.input_dim
        if index.numel() and (index.min() < 0 or index.max() >= k):
            raise ValueError(f"Embed '{self.name}' expected indices in [0, {k}). Received: "
                             f"min {index.min().item()}, max {index.max().item()}.")
        out = F.embedding(index, self.blobs[0])
        return [out + self.blobs[1] if len(self.blobs) > 1 else out]


@register("Silence")
class Silence(CaffeLayer):
    """Consumes its bottoms; no top (their gradient is 0)."""

    def top_shapes(self, bottom_shapes):
        return []

    def forward(self, *bottoms):
        return []


@register("Reduction")
class Reduction(CaffeLayer):
    """SUM, ASUM (sum of |x|), SUMSQ or MEAN over all axes from ``axis`` (default 0) on, times
    ``coeff``; top shape = bottom shape[:axis] (() for axis 0)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.reduction_param
        self.operation, self.coeff = p.operation, p.coeff
        self.axis = canonical_axis(p.axis, len(bottom_shapes[0]), "Reduction", param.name)

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])[:self.axis]]

    def forward(self, x):
        flat = x.reshape(tuple(x.shape[:self.axis]) + (-1,))
        if self.operation == _RP.ASUM:
            out = flat.abs().sum(-1)
        elif self.operation == _RP.SUMSQ:
            out = (flat * flat).sum(-1)
        elif self.operation == _RP.MEAN:
            out = flat.sum(-1) * (1.0 / flat.shape[-1])
        else:
            out = flat.sum(-1)
        return [out if self.coeff == 1 else out * self.coeff]


@register("MVN")
class MVN(CaffeLayer):
    """x - mean over each (N, C) map (each N with ``across_channels``), divided by std + eps if
    ``normalize_variance`` (default true, eps 1e-9)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.mvn_param
        self.normalize_variance, self.across_channels, self.eps = (
            p.normalize_variance, p.across_channels, p.eps)

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]

    def forward(self, x):
        lead = 1 if self.across_channels else 2
        flat = x.reshape(tuple(x.shape[:lead]) + (-1,))
        centred = flat - flat.mean(-1, keepdim=True)
        if self.normalize_variance:
            std = (centred * centred).mean(-1, keepdim=True).sqrt()
            centred = centred / (std + self.eps)
        return [centred.reshape(x.shape)]
