"""Caffe's data-source and vision layers with Caffe's exact semantics, on torch ops.

Input, DummyData, Convolution, Deconvolution, InnerProduct, Pooling (MAX/AVE, Caffe's ceil-mode
sizes), LRN (ACROSS_CHANNELS, WITHIN_CHANNEL), BatchNorm (mean, variance, scale-factor blobs),
Scale and Bias. Blobs are kept in Caffe's shapes and order (``net.params[name]``).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from kaffe.caffe.proto import caffe_pb2
from kaffe.caffe.builders.registry import CaffeLayer, register

_P = caffe_pb2


# ------------------------------------------------------------------------------ helpers

def fill(tensor, filler):
    """Fill ``tensor`` in place with Caffe's ``FillerParameter`` (constant, uniform, gaussian,
    xavier, msra, positive_unitball, bilinear); returns it."""
    kind = filler.type or "constant"
    shape = tensor.shape
    count = tensor.numel()
    fan_in = count // shape[0] if len(shape) > 0 and shape[0] else count
    fan_out = count // shape[1] if len(shape) > 1 and shape[1] else count
    with torch.no_grad():
        if kind == "constant":
            tensor.fill_(filler.value)
        elif kind == "uniform":
            tensor.uniform_(filler.min, filler.max)
        elif kind == "gaussian":
            tensor.normal_(filler.mean, filler.std)
            if filler.sparse >= 0 and len(shape) >= 2:
                keep = torch.rand_like(tensor) < filler.sparse / shape[1] if shape[1] else 1.0
                tensor.mul_(keep)
        elif kind in ("xavier", "msra"):
            norm = filler.variance_norm
            n = (fan_in if norm == _P.FillerParameter.FAN_IN else fan_out
                 if norm == _P.FillerParameter.FAN_OUT else (fan_in + fan_out) / 2.0)
            if kind == "xavier":
                bound = math.sqrt(3.0 / n)
                tensor.uniform_(-bound, bound)
            else:
                tensor.normal_(0.0, math.sqrt(2.0 / n))
        elif kind == "positive_unitball":
            tensor.uniform_(0, 1)
            flat = tensor.view(shape[0], -1)
            flat.div_(flat.sum(1, keepdim=True))
        elif kind == "bilinear":
            k = shape[-1]
            f = math.ceil(k / 2.0)
            c = (2 * f - 1 - f % 2) / (2.0 * f)
            x = torch.arange(k, dtype=torch.float32)
            w = 1 - (x / f - c).abs()
            tensor.copy_((w[:, None] * w[None, :]).expand(shape))
        else:
            raise ValueError(f"Unknown filler type {kind!r}; expected constant, uniform, "
                             f"gaussian, xavier, msra, positive_unitball or bilinear.")
    return tensor


def _canonical_axis(axis, ndim, layer):
    if not -ndim <= axis < ndim:
        raise ValueError(f"Layer '{layer}': axis {axis} out of range for a {ndim}-axis blob.")
    return axis % ndim


def _param_blob(shape, filler, requires_grad=True):
    return nn.Parameter(fill(torch.zeros(tuple(shape)), filler), requires_grad=requires_grad)


def _spatial(param, name, num, default, layer):
    """Caffe's repeated ``kernel_size``/``pad``/``stride``/``dilation`` with ``_h``/``_w``."""
    h_field, w_field = f"{name}_h", f"{name}_w"
    repeated = list(getattr(param, name if name != "kernel" else "kernel_size"))
    if param.HasField(h_field) or param.HasField(w_field):
        if num != 2:
            raise ValueError(f"Layer '{layer}': {name}_h/_w are for 2-D only.")
        if repeated:
            raise ValueError(f"Layer '{layer}': give either {name}_h/_w or {name}, not both.")
        return [getattr(param, h_field), getattr(param, w_field)]
    if not repeated:
        if default is None:
            raise ValueError(f"Layer '{layer}': kernel_size (or kernel_h and kernel_w) is "
                             f"required.")
        return [default] * num
    if len(repeated) == 1:
        return repeated * num
    if len(repeated) != num:
        raise ValueError(f"Layer '{layer}': {name} has {len(repeated)} values; expected 1 or "
                         f"{num}.")
    return repeated


# ------------------------------------------------------------------------------ data sources

@register("Input")
class Input(CaffeLayer):
    """Net inputs: the net fills its tops from ``net.blobs[top].data``."""
    net_input = True

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        shapes = [tuple(int(d) for d in s.dim) for s in param.input_param.shape]
        tops = len(param.top)
        if len(shapes) not in (0, 1, tops):
            raise ValueError(f"Input layer '{param.name}': {len(shapes)} shapes for {tops} tops; "
                             f"give one shape, or one per top.")
        self.shapes = shapes * tops if len(shapes) == 1 else shapes or [()] * tops

    def top_shapes(self, bottom_shapes):
        return list(self.shapes)

    def forward(self, *bottoms):
        return [torch.zeros(s) for s in self.shapes]


@register("DummyData")
class DummyData(CaffeLayer):
    """Tops filled by ``data_filler`` (constant by default) at every forward."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.dummy_data_param
        tops = len(param.top)
        if p.shape:
            shapes = [tuple(int(d) for d in s.dim) for s in p.shape]
        else:
            legacy = [list(p.num), list(p.channels), list(p.height), list(p.width)]
            n = max(len(v) for v in legacy)
            shapes = [tuple((v[i] if len(v) > 1 else v[0]) for v in legacy) for i in range(n)]
        if len(shapes) not in (1, tops):
            raise ValueError(f"DummyData layer '{param.name}': {len(shapes)} shapes for {tops} "
                             f"tops; give one shape, or one per top.")
        fillers = list(p.data_filler) or [_P.FillerParameter()]
        if len(fillers) not in (1, tops):
            raise ValueError(f"DummyData layer '{param.name}': {len(fillers)} data_fillers for "
                             f"{tops} tops; give one, or one per top.")
        self.shapes = shapes * tops if len(shapes) == 1 else shapes
        self.fillers = fillers * tops if len(fillers) == 1 else fillers

    def top_shapes(self, bottom_shapes):
        return list(self.shapes)

    def forward(self, *bottoms):
        return [fill(torch.zeros(s), f) for s, f in zip(self.shapes, self.fillers)]


# ------------------------------------------------------------------------------ convolution

# below this many FLOPs per call, a CPU convolution at inference skips oneDNN (1 thread, this
# project's Xeon: LeNet's 0.6 and 3.2 MFLOP convs win 2-5x, GoogLeNet's 5x5 convs of 7-15 MFLOP
# a little, 20 MFLOP and up lose)
_ONEDNN_MIN_FLOPS = 16e6

# a 1x1 convolution (no padding) is one matrix product per image on NCHW memory as it lies;
# oneDNN reorders the activation to its blocked layout and back on every call instead, which
# costs more than the product at large spatial sizes (this project's Xeon, 2 threads, ResNet-50
# shapes: batch 1, 64->256 at 56x56 2.6 -> 0.66 ms; batch 10 23 -> 6.4 ms), less at 7x7, where
# oneDNN wins from batch 10 (4.0 against 4.8 ms)
_GEMM_MIN_PIXELS = 28 * 28


def pointwise_conv(x, weight, bias, stride, out=None):
    """A 1x1 convolution without padding as matrix products: ``weight (out, in, 1, 1)`` times
    each image's ``(in, h*w)`` pixels (every ``stride``-th), plus ``bias``; ``out``: an
    ``(n, out, h', w')`` buffer to write into."""
    if tuple(stride) != (1, 1):
        x = x[:, :, ::stride[0], ::stride[1]]
    n, c, h, w = x.shape
    w2d = weight.view(weight.shape[0], c)
    if out is None:
        out = x.new_empty((n, w2d.shape[0], h, w))
    if n == 1:
        pixels, flat = x.reshape(c, h * w), out.view(w2d.shape[0], h * w)
        if bias is None:
            torch.mm(w2d, pixels, out=flat)
        else:
            torch.addmm(bias.unsqueeze(1), w2d, pixels, out=flat)
        return out
    torch.matmul(w2d, x.reshape(n, c, h * w), out=out.view(n, w2d.shape[0], h * w))
    return out if bias is None else out.add_(bias.view(1, -1, 1, 1))


@register("Convolution", "Deconvolution")
class Convolution(CaffeLayer):
    """Caffe's (de)convolution over the axes after ``axis`` (1). Weight blob
    ``(out, in/group, *kernel)`` for Convolution, ``(in, out/group, *kernel)`` for
    Deconvolution (torch's layouts too); bias blob ``(out,)``."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.convolution_param
        self.transposed = param.type == "Deconvolution"
        shape = bottom_shapes[0]
        axis = _canonical_axis(p.axis, len(shape), param.name)
        if axis != 1:
            raise ValueError(f"Layer '{param.name}': convolution axis {p.axis} is not supported "
                             f"by kaffe (only the channel axis 1).")
        nsp = len(shape) - 2
        if nsp not in (1, 2, 3):
            raise ValueError(f"Layer '{param.name}': {nsp} spatial axes; kaffe convolves 1 to 3.")
        self.kernel = _spatial(p, "kernel", nsp, None, param.name)
        self.pad = _spatial(p, "pad", nsp, 0, param.name)
        self.stride = _spatial(p, "stride", nsp, 1, param.name)
        dilation = list(p.dilation) or [1]
        self.dilation = dilation * nsp if len(dilation) == 1 else dilation
        channels, out, group = shape[1], p.num_output, p.group
        if out <= 0:
            raise ValueError(f"{param.type} layer '{param.name}': num_output must be positive. "
                             f"Received: num_output={out}.")
        if channels % group or out % group:
            raise ValueError(f"Layer '{param.name}': group {group} must divide both the input "
                             f"channels ({channels}) and num_output ({out}).")
        if any(k <= 0 for k in self.kernel) or any(s <= 0 for s in self.stride):
            raise ValueError(f"Layer '{param.name}': kernel and stride must be positive. "
                             f"Received: kernel={self.kernel}, stride={self.stride}.")
        self.group = group
        wshape = ((channels, out // group) if self.transposed else (out, channels // group))
        self.blobs.append(_param_blob(wshape + tuple(self.kernel), p.weight_filler))
        self.bias_term = p.bias_term
        if p.bias_term:
            self.blobs.append(_param_blob((out,), p.bias_filler))
        self.num_output = out
        self._conv = [F.conv1d, F.conv2d, F.conv3d][nsp - 1]
        # torch's direct (im2col + GEMM) kernel serves plain 2-D convolutions
        self._direct = (nsp == 2 and group == 1 and not self.transposed
                        and all(d == 1 for d in self.dilation))
        self._pointwise = (self._direct and tuple(self.kernel) == (1, 1)
                           and tuple(self.pad) == (0, 0))
        self._macs_per_output = (channels // group) * math.prod(self.kernel)
        self._deconv = [F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d][nsp - 1]
        self.top_shapes(bottom_shapes)

    def top_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        sizes = []
        for i, size in enumerate(shape[2:]):
            ext = self.dilation[i] * (self.kernel[i] - 1) + 1
            if self.transposed:
                out = self.stride[i] * (size - 1) + ext - 2 * self.pad[i]
            else:
                out = (size + 2 * self.pad[i] - ext) // self.stride[i] + 1
            if out <= 0:
                raise ValueError(f"Layer '{self.name}': output size {out} along spatial axis {i} "
                                 f"(input {size}, kernel {self.kernel[i]}, pad {self.pad[i]}, "
                                 f"stride {self.stride[i]}, dilation {self.dilation[i]}).")
            sizes.append(out)
        return [tuple(shape[:1]) + (self.num_output,) + tuple(sizes)]

    def forward(self, x):
        weight, bias = self.blobs[0], (self.blobs[1] if self.bias_term else None)
        if self.transposed:
            return [self._deconv(x, weight, bias, self.stride, self.pad, 0, self.group,
                                 self.dilation)]
        if self._direct and not torch.is_grad_enabled() and x.device.type == "cpu":
            kernel = self.inference_kernel(x.shape)
            if kernel == "gemm":
                return [pointwise_conv(x, weight, bias, self.stride)]
            if kernel == "direct":
                return [torch._C._nn.thnn_conv2d(x, weight, self.kernel, bias, self.stride,
                                                 self.pad)]
        return [self._conv(x, weight, bias, self.stride, self.pad, self.dilation, self.group)]

    def inference_kernel(self, shape):
        """Which CPU kernel serves a plain 2-D convolution of an input of ``shape`` at
        inference: ``"gemm"`` (:func:`pointwise_conv`: 1x1, large images or batch 1),
        ``"direct"`` (torch's im2col + GEMM: small work, where oneDNN's per-call set-up of
        ~40-50 us outweighs its faster arithmetic; LeNet batch 1: conv1 53 -> 12 us, conv2
        117 -> 43 us, 1 thread) or ``"onednn"``."""
        out = self.top_shapes([shape])[0][2:]
        if self._pointwise and (shape[0] == 1 or math.prod(out) >= _GEMM_MIN_PIXELS):
            return "gemm"
        flops = 2 * shape[0] * self.num_output * math.prod(out) * self._macs_per_output
        return "direct" if flops < _ONEDNN_MIN_FLOPS else "onednn"


@register("InnerProduct")
class InnerProduct(CaffeLayer):
    """``y = x W^T + b`` over the axes from ``axis`` on; weight ``(out, K)``, or ``(K, out)``
    with ``transpose``."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.inner_product_param
        shape = bottom_shapes[0]
        self.axis = _canonical_axis(p.axis, len(shape), param.name)
        k = math.prod(shape[self.axis:])
        if p.num_output <= 0:
            raise ValueError(f"InnerProduct layer '{param.name}': num_output must be positive. "
                             f"Received: num_output={p.num_output}.")
        self.num_output, self.transpose, self.bias_term = p.num_output, p.transpose, p.bias_term
        self.k = k
        wshape = (k, p.num_output) if p.transpose else (p.num_output, k)
        self.blobs.append(_param_blob(wshape, p.weight_filler))
        if p.bias_term:
            self.blobs.append(_param_blob((p.num_output,), p.bias_filler))

    def top_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        k = math.prod(shape[self.axis:])
        if k != self.k:
            raise ValueError(f"InnerProduct layer '{self.name}': input has {k} values per "
                             f"example from axis {self.axis} on; the weights expect {self.k}.")
        return [tuple(shape[:self.axis]) + (self.num_output,)]

    def forward(self, x):
        flat = x.reshape(tuple(x.shape[:self.axis]) + (-1,))
        w = self.blobs[0].t() if self.transpose else self.blobs[0]
        return [F.linear(flat, w, self.blobs[1] if self.bias_term else None)]


# ------------------------------------------------------------------------------ pooling

@register("Pooling")
class Pooling(CaffeLayer):
    """MAX / AVE pooling with Caffe's ceil-mode size: ``ceil((H + 2p - k) / s) + 1``, minus one
    when the last window would start in the padding. AVE divides by the window clipped to the
    padded image (not to the image)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.pooling_param
        self.method = p.pool
        if p.pool not in (_P.PoolingParameter.MAX, _P.PoolingParameter.AVE):
            raise ValueError(f"Pooling layer '{param.name}': only MAX and AVE pooling are "
                             f"implemented (STOCHASTIC is not).")
        if len(bottom_shapes[0]) != 4:
            raise ValueError(f"Pooling layer '{param.name}': expects a 4-axis input, "
                             f"received shape {bottom_shapes[0]}.")
        self.global_pooling = p.global_pooling
        if p.global_pooling:
            if p.HasField("kernel_size") or p.HasField("kernel_h"):
                raise ValueError(f"Pooling layer '{param.name}': with global_pooling the "
                                 f"kernel size cannot be specified.")
            self.pad, self.stride = (0, 0), (1, 1)
        else:
            if p.HasField("kernel_h") != p.HasField("kernel_w") or (
                    p.HasField("kernel_size") == p.HasField("kernel_h")):
                raise ValueError(f"Pooling layer '{param.name}': give kernel_size, or kernel_h "
                                 f"and kernel_w.")
            self.kernel = ((p.kernel_h, p.kernel_w) if p.HasField("kernel_h")
                           else (p.kernel_size,) * 2)
            self.pad = (p.pad_h, p.pad_w) if p.HasField("pad_h") else (p.pad,) * 2
            self.stride = (p.stride_h, p.stride_w) if p.HasField("stride_h") else (p.stride,) * 2
            if any(pd >= k for pd, k in zip(self.pad, self.kernel)):
                raise ValueError(f"Pooling layer '{param.name}': pad {self.pad} must be smaller "
                                 f"than the kernel {self.kernel}.")
        self.mask_top = len(param.top) > 1
        self._window_cache = {}
        # MAX over tiles (kernel == stride >= 2, no padding): pairwise maxima serve it
        self.tiles = (None if p.global_pooling or self.mask_top or
                      p.pool != _P.PoolingParameter.MAX or any(self.pad) or
                      self.kernel != self.stride or min(self.kernel) < 2 else self.kernel)

    def _geometry(self, shape):
        size = tuple(shape[2:])
        kernel = size if self.global_pooling else self.kernel
        if any(k > n + 2 * pd for n, k, pd in zip(size, kernel, self.pad)):
            raise ValueError(
                f"Pooling layer '{self.name}': kernel {kernel[0]}x{kernel[1]} is larger than its "
                f"padded input {size[0] + 2 * self.pad[0]}x{size[1] + 2 * self.pad[1]} (input "
                f"{size[0]}x{size[1]}, pad {self.pad[0]}x{self.pad[1]}); use a smaller "
                f"kernel_size, more pad, or global_pooling: true.")
        pooled = []
        for n, k, pd, s in zip(size, kernel, self.pad, self.stride):
            out = int(math.ceil((n + 2 * pd - k) / s)) + 1
            if pd and (out - 1) * s >= n + pd:
                out -= 1
            pooled.append(out)
        return kernel, pooled

    def _torch_pads_like_caffe(self, size, kernel, pooled):
        """Whether ``F.max_pool2d(padding=pad, ceil_mode=True)`` has Caffe's output size (it
        clips windows to the input as Caffe's MAX does; torch allows pad <= kernel / 2)."""
        for n, k, pd, s, out in zip(size, kernel, self.pad, self.stride, pooled):
            if pd > k // 2:
                return False
            size_torch = -(-(n + 2 * pd - k) // s) + 1
            if (size_torch - 1) * s >= n + pd:
                size_torch -= 1
            if size_torch != out:
                return False
        return True

    def top_shapes(self, bottom_shapes):
        _, pooled = self._geometry(bottom_shapes[0])
        shape = tuple(bottom_shapes[0][:2]) + tuple(pooled)
        return [shape] * (2 if self.mask_top else 1)

    def _windows(self, size):
        """``(kernel, pooled, padding, torch_pads)`` for a spatial ``size``, worked out once per
        size (Python arithmetic that costs LeNet's batch-1 forward ~10 us per pool): ``padding``
        is the ``F.pad`` that fits every Caffe window (extra on the far side), ``torch_pads``
        whether torch's own padding and ceil mode give those windows."""
        found = self._window_cache.get(size)
        if found is None:
            kernel, pooled = self._geometry((0, 0) + size)
            extra = [max(0, (o - 1) * s + k - (n + 2 * pd))
                     for o, s, k, n, pd in zip(pooled, self.stride, kernel, size, self.pad)]
            ph, pw = self.pad
            padding = (pw, pw + extra[1], ph, ph + extra[0])
            found = self._window_cache[size] = (
                kernel, pooled, padding, self._torch_pads_like_caffe(size, kernel, pooled))
        return found

    def forward(self, x):
        size = tuple(x.shape[2:])
        kernel, pooled, padding, torch_pads = self._windows(size)
        ph, pw = self.pad
        unpadded = not any(padding)  # LeNet's pools: skip the copy F.pad would make
        if self.method == _P.PoolingParameter.MAX:
            if self.tiles is not None and not x.requires_grad and x.device.type == "cpu" \
                    and not (size[0] % self.tiles[0] or size[1] % self.tiles[1]):
                return [max_pool_tiles(x, *self.tiles)]
            if not self.mask_top and x.device.type == "cpu" and not x.requires_grad:
                # torch's NCHW max-pool CPU kernel is 3-6x slower than its channels-last one,
                # both layout copies included (LeNet batch 64 pool1: 19.8 -> 4.9 ms); not
                # under autograd: the channels-last gradient slows the convolutions' backward
                x = x.contiguous(memory_format=torch.channels_last)
                if torch_pads:
                    # torch's own padding and ceil mode give Caffe's windows: no padded copy
                    # (GoogLeNet's 3x3/1 pad 1 pools, 1 x 480 x 14 x 14: 0.37 -> 0.28 ms)
                    return [F.max_pool2d(x, kernel, self.stride, self.pad,
                                         ceil_mode=True).contiguous()]
                padded = x if unpadded else F.pad(x, padding, value=float("-inf"))
                return [F.max_pool2d(padded, kernel, self.stride).contiguous()]
            padded = x if unpadded else F.pad(x, padding, value=float("-inf"))
            if not self.mask_top:
                return [F.max_pool2d(padded, kernel, self.stride)]
            out, idx = F.max_pool2d(padded, kernel, self.stride, return_indices=True)
            wp = padded.shape[3]
            row, col = idx // wp - ph, idx % wp - pw
            return [out, (row * size[1] + col).to(x.dtype)]
        padded = x if unpadded else F.pad(x, padding)
        sums = F.avg_pool2d(padded, kernel, self.stride, divisor_override=1)
        counts = []
        for o, s, k, n, pd in zip(pooled, self.stride, kernel, size, self.pad):
            start = torch.arange(o, device=x.device) * s - pd
            counts.append((torch.clamp(start + k, max=n + pd) - start).to(x.dtype))
        out = sums / (counts[0][:, None] * counts[1][None, :])
        return [out] * (2 if self.mask_top else 1)


def max_pool_tiles(x, kh, kw, out=None):
    """MAX pooling of ``x`` (N, C, H, W) over non-overlapping ``kh`` x ``kw`` tiles that cover
    it exactly (H % kh == W % kw == 0): Caffe's ceil-mode windows are then these tiles. Pairwise
    maxima of strided views, rows first (contiguous runs), then columns: torch's NCHW max-pool
    CPU kernel is 3x slower and its channels-last one needs two layout copies (LeNet pool1,
    1 x 20 x 24 x 24, 1 thread: NCHW 42-47 us, channels-last 25 us, this 15 us; batch 64:
    5.2 / 1.2 / 0.4 ms). No autograd: at ties ``torch.maximum`` splits the gradient, Caffe's
    max-pool gives it to the first maximum. ``out``: a tensor of the result's shape to write."""
    n, c, h, w = x.shape
    rows = x.reshape(n, c, h // kh, kh, w).unbind(3)
    y = rows[0]
    for r in rows[1:]:
        y = torch.maximum(y, r)
    cols = y.reshape(n, c, h // kh, w // kw, kw).unbind(4)
    y = cols[0]
    for col in cols[1:-1]:
        y = torch.maximum(y, col)
    return torch.maximum(y, cols[-1], out=out)


# ------------------------------------------------------------------------------ normalization

@register("LRN")
class LRN(CaffeLayer):
    """ACROSS_CHANNELS: ``x / (k + alpha/n * sum_window x^2)^beta`` over ``n`` channels;
    WITHIN_CHANNEL: ``x / (1 + alpha * mean_{n x n} x^2)^beta`` (zero-padded window of n*n)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.lrn_param
        if p.local_size % 2 == 0:
            raise ValueError(f"LRN layer '{param.name}': local_size must be odd. "
                             f"Received: local_size={p.local_size}.")
        self.size, self.alpha, self.beta, self.k = p.local_size, p.alpha, p.beta, p.k
        self.within = p.norm_region == _P.LRNParameter.WITHIN_CHANNEL

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]

    def forward(self, x):
        n = self.size
        if not self.within and not torch.is_grad_enabled():
            # inference: the channel window as n shifted slices of one zero-padded x^2, summed
            # in place (GoogLeNet's norm1, 1 x 192 x 56 x 56, 1 thread: 9.6 -> 3.5 ms against
            # F.local_response_norm's avg_pool3d)
            channels = x.shape[1]
            squares = F.pad(x * x, (0, 0) * (x.dim() - 2) + (n // 2, n // 2))
            window = squares[:, :channels].clone()
            for i in range(1, n):
                window += squares[:, i:i + channels]
            return [x * window.mul_(self.alpha / n).add_(self.k).pow_(-self.beta)]
        if not self.within:
            return [F.local_response_norm(x, n, self.alpha, self.beta, self.k)]
        mean = F.avg_pool2d(x * x, n, 1, (n - 1) // 2, count_include_pad=True)
        return [x * (1 + self.alpha * mean).pow(-self.beta)]


@register("BatchNorm")
class BatchNorm(CaffeLayer):
    """Normalise each channel (axis 1): blobs ``mean``, ``variance`` (running sums) and the
    scale factor ``s``; the statistics are ``blob / s``. ``use_global_stats`` (default: TEST
    phase) uses them; otherwise batch statistics, and the running sums are updated as
    ``blob = maf * blob + stat`` (variance unbiased), ``s = maf * s + 1``."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.batch_norm_param
        self.use_global_stats = (p.use_global_stats if p.HasField("use_global_stats")
                                 else phase == "TEST")
        self.maf, self.eps = p.moving_average_fraction, p.eps
        channels = bottom_shapes[0][1] if len(bottom_shapes[0]) > 1 else 1
        for shape in ((channels,), (channels,), (1,)):
            self.blobs.append(nn.Parameter(torch.zeros(shape), requires_grad=False))

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]

    def forward(self, x):
        view = (1, -1) + (1,) * (x.dim() - 2)
        axes = [0] + list(range(2, x.dim()))
        if self.use_global_stats:
            s = self.blobs[2].detach()[0]
            factor = torch.where(s == 0, 0.0, 1.0 / s)   # a tensor: no host sync on a GPU
            mean, var = self.blobs[0].detach() * factor, self.blobs[1].detach() * factor
            # one fused pass over x instead of a subtract and a divide (ResNet-50 TEST forward)
            return [F.batch_norm(x, mean, var, None, None, False, 0.0, self.eps)]
        else:
            mean = x.mean(axes)
            var = ((x - mean.view(view)) ** 2).mean(axes)
            m = x.numel() // x.shape[1]
            with torch.no_grad():
                self.blobs[2].mul_(self.maf).add_(1)
                self.blobs[0].mul_(self.maf).add_(mean.detach())
                self.blobs[1].mul_(self.maf).add_(var.detach() * (m / (m - 1) if m > 1 else 1))
        return [(x - mean.view(view)) / torch.sqrt(var.view(view) + self.eps)]


# ------------------------------------------------------------------------------ scale / bias

class _Broadcast(CaffeLayer):
    """Shared logic of Scale and Bias: a learned blob, or a second bottom, covering the axes
    ``axis .. axis + num_axes`` of the first bottom, broadcast over the others."""
    field = None

    def _setup(self, p, bottom_shapes, default_value):
        shape = bottom_shapes[0]
        if len(bottom_shapes) > 1:
            other = tuple(bottom_shapes[1])
            self.axis = (p.axis % len(shape)) if other else 0
            if tuple(shape[self.axis:self.axis + len(other)]) != other:
                raise ValueError(f"{self.param.type} layer '{self.name}': second bottom shape "
                                 f"{other} does not match the first bottom {tuple(shape)} from "
                                 f"axis {p.axis}.")
            self.param_shape = other
            return None
        self.axis = _canonical_axis(p.axis, len(shape), self.name)
        if p.num_axes < -1:
            raise ValueError(f"{self.param.type} layer '{self.name}': num_axes must be -1 or "
                             f"non-negative. Received: num_axes={p.num_axes}.")
        end = len(shape) if p.num_axes == -1 else self.axis + p.num_axes
        if end > len(shape):
            raise ValueError(f"{self.param.type} layer '{self.name}': axis {p.axis} + num_axes "
                             f"{p.num_axes} exceeds the bottom's {len(shape)} axes.")
        self.param_shape = tuple(shape[self.axis:end])
        filler = p.filler if p.HasField("filler") else _P.FillerParameter(
            type="constant", value=default_value)
        return _param_blob(self.param_shape, filler)

    def _expand(self, value, x):
        shape = (1,) * self.axis + tuple(value.shape)
        return value.reshape(shape + (1,) * (x.dim() - len(shape)))

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]


@register("Scale")
class Scale(_Broadcast):
    """``y = x * scale (+ bias)``; ``scale`` is the second bottom or a learned blob (filler
    default 1); ``bias_term`` adds a learned bias blob (``bias_filler`` default 0)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.scale_param
        blob = self._setup(p, bottom_shapes, 1.0)
        if blob is not None:
            self.blobs.append(blob)
        self.bias_term = p.bias_term
        if p.bias_term:
            filler = p.bias_filler if p.HasField("bias_filler") else _P.FillerParameter()
            self.blobs.append(_param_blob(self.param_shape, filler))
        self.learned = blob is not None

    def forward(self, x, *scale):
        factor = scale[0] if scale else self.blobs[0]
        y = x * self._expand(factor, x)
        if self.bias_term:
            y = y + self._expand(self.blobs[-1], x)
        return [y]


@register("Bias")
class Bias(_Broadcast):
    """``y = x + bias``; ``bias`` is the second bottom or a learned blob (filler default 0)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        blob = self._setup(param.bias_param, bottom_shapes, 0.0)
        if blob is not None:
            self.blobs.append(blob)

    def forward(self, x, *bias):
        return [x + self._expand(bias[0] if bias else self.blobs[0], x)]
