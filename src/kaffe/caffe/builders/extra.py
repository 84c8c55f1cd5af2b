"""Caffe's less common layer types: Im2col, SPP, BatchReindex, Filter, Parameter, HDF5Output.

Each follows Caffe's own ``*_layer.cpp`` (forward, shapes, which bottoms take no gradient);
backward is autograd of the forward, which equals Caffe's ``Backward_cpu`` (index layers
scatter-add the top diff back to the rows they read).
"""
import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kaffe.caffe.builders.registry import CaffeLayer, register
from kaffe.caffe.builders.vision import Pooling, _canonical_axis, _spatial
from kaffe.caffe.proto import caffe_pb2

log = logging.getLogger("kaffe")


# ------------------------------------------------------------------------------ Im2col

@register("Im2col")
class Im2col(CaffeLayer):
    """Every ``kernel`` window of the image as a column (``convolution_param``'s kernel, pad,
    stride, dilation): ``(N, C, H, W) -> (N, C * kh * kw, H_out, W_out)``, rows ordered channel
    first, then kernel row, then kernel column, as Caffe's ``im2col_cpu``."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.convolution_param
        shape = bottom_shapes[0]
        axis = _canonical_axis(p.axis, len(shape), param.name)
        if axis != 1 or len(shape) != 4:
            raise ValueError(f"Im2col layer '{param.name}': kaffe unrolls 2-D images with "
                             f"channels on axis 1 (N, C, H, W); received shape {tuple(shape)} "
                             f"and axis {p.axis}.")
        self.kernel = _spatial(p, "kernel", 2, None, param.name)
        self.pad = _spatial(p, "pad", 2, 0, param.name)
        self.stride = _spatial(p, "stride", 2, 1, param.name)
        dilation = list(p.dilation) or [1]
        self.dilation = dilation * 2 if len(dilation) == 1 else dilation
        if min(self.kernel) <= 0 or min(self.stride) <= 0:
            raise ValueError(f"Im2col layer '{param.name}': kernel and stride must be "
                             f"positive. Received: kernel={self.kernel}, stride={self.stride}.")
        self.top_shapes(bottom_shapes)

    def top_shapes(self, bottom_shapes):
        n, c, h, w = bottom_shapes[0]
        out = []
        for size, k, pad, s, d in zip((h, w), self.kernel, self.pad, self.stride, self.dilation):
            extent = d * (k - 1) + 1
            o = (size + 2 * pad - extent) // s + 1
            if o <= 0:
                raise ValueError(f"Im2col layer '{self.name}': the kernel extent {extent} is "
                                 f"larger than the padded input {size + 2 * pad}.")
            out.append(o)
        return [(n, c * self.kernel[0] * self.kernel[1], out[0], out[1])]

    def forward(self, x):
        (shape,) = self.top_shapes([tuple(x.shape)])
        cols = F.unfold(x, self.kernel, self.dilation, self.pad, self.stride)
        return [cols.reshape(shape)]


# ------------------------------------------------------------------------------ SPP

def _spp_pooling(param, level, height, width):
    """Caffe's ``SPPLayer::GetPoolingParam``: the pooling of pyramid level ``level``
    (``2**level`` bins a side; kernel = stride = ceil(size / bins), pad half the remainder)."""
    bins = 2 ** level
    kernel_h, kernel_w = math.ceil(height / bins), math.ceil(width / bins)
    pooling = caffe_pb2.LayerParameter(name=f"{param.name}/level{level}", type="Pooling")
    pp = pooling.pooling_param
    pp.kernel_h, pp.kernel_w = kernel_h, kernel_w
    pp.stride_h, pp.stride_w = kernel_h, kernel_w
    pp.pad_h = (kernel_h * bins - height + 1) // 2
    pp.pad_w = (kernel_w * bins - width + 1) // 2
    pp.pool = param.spp_param.pool   # SPP's MAX/AVE/STOCHASTIC share Pooling's numbers
    return pooling


@register("SPP")
class SPP(CaffeLayer):
    """Spatial pyramid pooling (``spp_param``: ``pyramid_height``, ``pool``): level ``l``
    pools the image into ``2**l x 2**l`` bins with Caffe's Pooling; each level is flattened
    and the levels concatenated along axis 1. With ``pyramid_height: 1`` the one pooling's
    output is the top, unflattened, as in Caffe."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.height = param.spp_param.pyramid_height
        if self.height < 1:
            raise ValueError(f"SPP layer '{param.name}': pyramid_height must be at least 1. "
                             f"Received: pyramid_height={self.height}.")
        self._levels = {}
        self.top_shapes(bottom_shapes)

    def _pools(self, shape):
        if len(shape) != 4 or min(shape[2:]) <= 0:
            raise ValueError(f"SPP layer '{self.name}': expects a 4-axis input (N, C, H, W) "
                             f"with non-zero H and W; received shape {tuple(shape)}.")
        key = tuple(shape[2:])
        if key not in self._levels:
            self._levels[key] = [Pooling(_spp_pooling(self.param, level, *key), [shape],
                                         self.phase) for level in range(self.height)]
        return self._levels[key]

    def top_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        pools = self._pools(shape)
        if self.height == 1:
            return pools[0].top_shapes([shape])
        width = sum(math.prod(p.top_shapes([shape])[0][1:]) for p in pools)
        return [(shape[0], width)]

    def forward(self, x):
        pools = self._pools(tuple(x.shape))
        if self.height == 1:
            return pools[0](x)
        return [torch.cat([p(x)[0].flatten(1) for p in pools], dim=1)]


# ------------------------------------------------------------------------------ index layers

def _index_rows(index, rows, layer, what):
    """``index`` (float blob) as long row numbers, each checked to lie in ``[0, rows)``."""
    index = index.detach().reshape(-1).long()
    if index.numel():
        low, high = (int(v) for v in torch.aminmax(index))
        if low < 0 or high >= rows:
            bad = low if low < 0 else high
            raise ValueError(f"{layer.param.type} layer '{layer.name}': {what} {bad} is out of "
                             f"range; the first bottom has {rows} rows (valid: 0 to {rows - 1}).")
    return index


@register("BatchReindex")
class BatchReindex(CaffeLayer):
    """``top[i] = bottom0[index[i]]`` for the 1-axis index blob (bottom 1): rows picked,
    repeated or reordered; backward adds each top row's diff to the row it came from (the
    index bottom gets none)."""

    def top_shapes(self, bottom_shapes):
        data, index = bottom_shapes
        if len(index) != 1:
            raise ValueError(f"BatchReindex layer '{self.name}': the index bottom must have "
                             f"one axis; received shape {tuple(index)}.")
        return [tuple(index) + tuple(data[1:])]

    def forward(self, x, index):
        return [x[_index_rows(index, x.shape[0], self, "index")]]


@register("Filter")
class Filter(CaffeLayer):
    """Bottoms ``0 .. K-1`` keep the rows where the last bottom (the selector, shape ``(N,)``
    or ``(N, 1, ...)``) is non-zero; tops ``0 .. K-1``. Before the first forward the tops have
    the bottoms' shapes (Caffe's first reshape); each forward gives them the selected count."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        if len(param.top) != len(bottom_shapes) - 1:
            raise ValueError(f"Filter layer '{param.name}': {len(bottom_shapes)} bottoms "
                             f"(blobs to filter + the selector) need {len(bottom_shapes) - 1} "
                             f"tops; it has {len(param.top)}.")
        self.top_shapes(bottom_shapes)

    def top_shapes(self, bottom_shapes):
        selector = tuple(bottom_shapes[-1])
        if any(d != 1 for d in selector[1:]):
            raise ValueError(f"Filter layer '{self.name}': the selector's axes after the first "
                             f"must be 1; received shape {selector}.")
        for i, shape in enumerate(bottom_shapes[:-1]):
            if shape[0] != selector[0]:
                raise ValueError(f"Filter layer '{self.name}': bottom {i} has {shape[0]} rows, "
                                 f"the selector {selector[0]}; they must match.")
        return [tuple(s) for s in bottom_shapes[:-1]]

    def forward(self, *bottoms):
        keep = bottoms[-1].detach().reshape(-1) != 0
        rows = keep.nonzero().reshape(-1)
        return [x[rows] for x in bottoms[:-1]]


# ------------------------------------------------------------------------------ Parameter

@register("Parameter")
class Parameter(CaffeLayer):
    """A learnable blob of ``parameter_param.shape`` (zeros until weights are loaded or a
    solver updates it) given out as the layer's one top; the top's diff is the blob's."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        if bottom_shapes or len(param.top) != 1:
            raise ValueError(f"Parameter layer '{param.name}' takes no bottom and has one top; "
                             f"received {len(bottom_shapes)} bottoms, {len(param.top)} tops.")
        shape = tuple(int(d) for d in param.parameter_param.shape.dim)
        self.blobs.append(nn.Parameter(torch.zeros(shape)))

    def top_shapes(self, bottom_shapes):
        return [tuple(self.blobs[0].shape)]

    def forward(self):
        return [self.blobs[0].view(self.blobs[0].shape)]


# ------------------------------------------------------------------------------ HDF5Output

@register("HDF5Output")
class HDF5Output(CaffeLayer):
    """Writes its two bottoms to ``hdf5_output_param.file_name`` as the float32 datasets
    ``data`` and ``label``, in Caffe's legacy 4-axis shapes ``(num, channels, height, width)``.
    As in Caffe the file is created (emptied) when the net is built, so a path that cannot be
    written fails then; each forward replaces the datasets with its batch. No tops, no
    backward."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        import h5py
        self.file_name = param.hdf5_output_param.file_name
        if len(bottom_shapes) != 2 or param.top:
            raise ValueError(f"HDF5Output layer '{param.name}' takes two bottoms (data, label) "
                             f"and no tops; received {len(bottom_shapes)} bottoms, "
                             f"{len(param.top)} tops.")
        if bottom_shapes[0][:1] != bottom_shapes[1][:1]:
            raise ValueError(f"HDF5Output layer '{param.name}': data and label must have the "
                             f"same batch size; received shapes {tuple(bottom_shapes[0])} and "
                             f"{tuple(bottom_shapes[1])}.")
        try:
            h5py.File(self.file_name, "w").close()
        except OSError as err:
            raise OSError(f"HDF5Output layer '{param.name}': cannot create the HDF5 file "
                          f"{self.file_name!r}: {err}") from None

    def top_shapes(self, bottom_shapes):
        return []

    def forward(self, data, label):
        import h5py
        log.info("Saving HDF5 file %s", self.file_name)
        with h5py.File(self.file_name, "w") as f:
            for name, blob in (("data", data), ("label", label)):
                f.create_dataset(name, data=_legacy_4d(blob.detach().cpu().numpy()))
        log.info("Successfully saved %d rows", data.shape[0])
        return []


def _legacy_4d(array):
    """``array`` in Caffe's legacy ``(num, channels, height, width)`` (missing axes are 1)."""
    if array.ndim > 4:
        raise ValueError(f"HDF5Output writes blobs of at most 4 axes; received {array.shape}.")
    return np.ascontiguousarray(array, np.float32).reshape(
        tuple(array.shape) + (1,) * (4 - array.ndim))


__all__ = ["Im2col", "SPP", "BatchReindex", "Filter", "Parameter", "HDF5Output"]
