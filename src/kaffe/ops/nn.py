"""``keras.ops.nn``: activations, normalisation, one-hot, convolution and pooling, losses,
attention, written with ``torch.nn.functional``. Tensors are channels-last by default, as in
Keras (``data_format='channels_last'``)."""
import math

import torch
import torch.nn.functional as F

from kaffe.ops.ctc import ctc_decode  # noqa: F401  (Keras's ops.nn.ctc_decode)
from kaffe.ops.registry import as_dtype, axis_tuple, float_tensor, float_tensors, op, tensor, tensors

# name: (Keras class, torch function of a float tensor)
ACTIVATIONS = {
    "relu": ("Relu", F.relu), "relu6": ("Relu6", F.relu6), "sigmoid": ("Sigmoid", torch.sigmoid),
    "softplus": ("Softplus", F.softplus), "softsign": ("Softsign", F.softsign),
    "silu": ("Silu", F.silu), "log_sigmoid": ("LogSigmoid", F.logsigmoid),
    "selu": ("Selu", F.selu), "hard_sigmoid": ("HardSigmoid", lambda x: F.relu6(x + 3.0) / 6.0),
    "hard_silu": ("HardSilu", F.hardswish), "hard_tanh": ("HardTanh", F.hardtanh),
    "tanh_shrink": ("TanhShrink", F.tanhshrink),
    "sparse_plus": ("SparsePlus", lambda x: torch.where(
        x <= -1, torch.zeros_like(x), torch.where(x >= 1, x, (x + 1) ** 2 / 4))),
    "sparse_sigmoid": ("SparseSigmoid", lambda x: torch.clamp(0.5 * (x + 1), 0.0, 1.0)),
}
_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def _activation(name, fn):
    def activation(x):
        return fn(float_tensor(x))
    activation.__name__ = activation.__qualname__ = name
    activation.__doc__ = f"Keras's ``ops.{name}``: element-wise, with torch."
    return activation


def declare_activations(namespace):
    from kaffe.engine.operation import OpSpec
    from kaffe.ops.registry import register
    for name, (class_name, fn) in ACTIVATIONS.items():
        namespace[name] = register(OpSpec(_activation(name, fn), class_name, "nn", call=1))
    for alias, target in _ALIASES.items():
        namespace[alias] = namespace[target]


@op("LeakyRelu", module="nn")
def leaky_relu(x, negative_slope=0.2):
    return F.leaky_relu(float_tensor(x), negative_slope)


@op("Elu", module="nn")
def elu(x, alpha=1.0):
    return F.elu(float_tensor(x), alpha)


@op("Celu", module="nn")
def celu(x, alpha=1.0):
    return F.celu(float_tensor(x), alpha)


@op("Gelu", module="nn")
def gelu(x, approximate=True):
    return F.gelu(float_tensor(x), approximate="tanh" if approximate else "none")


@op("Glu", module="nn")
def glu(x, axis=-1):
    return F.glu(float_tensor(x), axis)


@op("HardShrink", module="nn")
def hard_shrink(x, threshold=0.5):
    return F.hardshrink(float_tensor(x), threshold)


@op("SoftShrink", module="nn")
def soft_shrink(x, threshold=0.5):
    return F.softshrink(float_tensor(x), threshold)


@op("Squareplus", module="nn")
def squareplus(x, b=4):
    x = float_tensor(x)
    return (x + torch.sqrt(x * x + b)) / 2


@op("Threshold", module="nn")
def threshold(x, threshold, default_value):
    return F.threshold(float_tensor(x), threshold, default_value)


@op("Softmax", module="nn")
def softmax(x, axis=-1):
    x = float_tensor(x)
    if isinstance(axis, (list, tuple)):
        axes = axis_tuple(axis, x.dim())
        return torch.exp(x - torch.logsumexp(x, dim=axes, keepdim=True))
    return torch.softmax(x, dim=axis)


@op("LogSoftmax", module="nn")
def log_softmax(x, axis=-1):
    x = float_tensor(x)
    if isinstance(axis, (list, tuple)):
        return x - torch.logsumexp(x, dim=axis_tuple(axis, x.dim()), keepdim=True)
    return torch.log_softmax(x, dim=axis)


@op("Sparsemax", module="nn")
def sparsemax(x, axis=-1):
    x = float_tensor(x)
    z = torch.movedim(x, axis, -1)
    sorted_z = torch.sort(z, dim=-1, descending=True).values
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    cumulative = torch.cumsum(sorted_z, dim=-1)
    support = (1 + k * sorted_z) > cumulative
    k_z = support.sum(dim=-1, keepdim=True).clamp(min=1)
    tau = (torch.gather(cumulative, -1, k_z - 1) - 1) / k_z.to(z.dtype)
    return torch.movedim(torch.clamp(z - tau, min=0), -1, axis)


@op("OneHot", module="nn")
def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    x = tensor(x).long()
    valid = (x >= 0) & (x < num_classes)
    out = F.one_hot(torch.where(valid, x, torch.zeros_like(x)), num_classes)
    out = out * valid.unsqueeze(-1)
    out = out.to(as_dtype(dtype) if dtype is not None else torch.float32)
    return torch.movedim(out, -1, axis) if axis != -1 else out


@op("MultiHot", module="nn")
def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False):
    x = tensor(inputs).long()
    if x.dim() == 1:
        x = x.unsqueeze(0)
        squeeze = True
    else:
        squeeze = False
    hot = one_hot.spec.impl(x, num_classes, dtype=dtype).amax(dim=-2)
    hot = hot[0] if squeeze else hot
    return torch.movedim(hot, -1, axis) if axis != -1 else hot


@op("Normalize", module="nn")
def normalize(x, axis=-1, order=2, epsilon=None):
    x = float_tensor(x)
    eps = 1e-12 if epsilon is None else epsilon
    norm = torch.linalg.vector_norm(x, ord=order, dim=axis, keepdim=True)
    return x / torch.clamp(norm, min=eps)


@op("Moments", module="nn")
def moments(x, axes, keepdims=False, synchronized=False):
    x = float_tensor(x)
    dims = axis_tuple(axes, x.dim())
    mean = torch.mean(x, dim=dims, keepdim=True)
    variance = torch.mean(torch.square(x - mean), dim=dims, keepdim=keepdims)
    return (mean if keepdims else mean.squeeze(dims)), variance


@op("BatchNorm", call=("x", "mean", "variance", "offset", "scale"), module="nn")
def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    x = float_tensor(x)
    shape = [1] * x.dim()
    shape[axis] = x.shape[axis]

    def shaped(v):
        return None if v is None else tensor(v, dtype=x.dtype, device=x.device).reshape(shape)
    inv = torch.rsqrt(shaped(variance) + epsilon)
    if scale is not None:
        inv = inv * shaped(scale)
    out = (x - shaped(mean)) * inv
    return out if offset is None else out + shaped(offset)


@op("LayerNorm", call=3, module="nn")
def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, rms_scaling=False):
    """Keras's ``LayerNorm`` op (epsilon defaults to Keras's 1e-7). ``rms_scaling`` is Keras's
    deprecated mode: scale by the variance without centring, ``beta`` ignored."""
    x = float_tensor(x)
    dims = axis_tuple(axis, x.dim())
    eps = 1e-7 if epsilon is None else epsilon
    variance = x.var(dim=dims, keepdim=True, correction=0)
    if rms_scaling:
        out = x * torch.rsqrt(variance + eps)
        return out if gamma is None else out * tensor(gamma, dtype=x.dtype, device=x.device)
    mean = x.mean(dim=dims, keepdim=True)
    out = (x - mean) * torch.rsqrt(variance + eps)
    if gamma is not None:
        out = out * tensor(gamma, dtype=x.dtype, device=x.device)
    if beta is not None:
        out = out + tensor(beta, dtype=x.dtype, device=x.device)
    return out


@op("RMSNorm", call=2, module="nn")
def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    x = float_tensor(x)
    eps = 1e-7 if epsilon is None else epsilon  # Keras's backend.epsilon()
    out = x * torch.rsqrt(torch.mean(x * x, dim=axis, keepdim=True) + eps)
    return out if scale is None else out * tensor(scale, dtype=x.dtype, device=x.device)


# ---------------------------------------------------------------------------------- losses
@op("BinaryCrossentropy", call=2, module="nn")
def binary_crossentropy(target, output, from_logits=False):
    target, output = float_tensors(target, output)
    if from_logits:
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")
    output = torch.clamp(output, 1e-7, 1.0 - 1e-7)
    return -(target * torch.log(output) + (1 - target) * torch.log(1 - output))


@op("CategoricalCrossentropy", call=2, module="nn")
def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    target, output = float_tensors(target, output)
    if from_logits:
        log_probs = torch.log_softmax(output, dim=axis)
    else:
        output = output / output.sum(dim=axis, keepdim=True)
        log_probs = torch.log(torch.clamp(output, 1e-7, 1.0 - 1e-7))
    return -(target * log_probs).sum(dim=axis)


@op("SparseCategoricalCrossentropy", call=2, module="nn")
def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    output = float_tensor(output)
    target = tensor(target, device=output.device).long()
    if target.dim() == output.dim() and target.shape[-1] == 1:
        target = target.squeeze(-1)
    hot = F.one_hot(target, output.shape[axis]).to(output.dtype)
    return categorical_crossentropy.spec.impl(hot, output, from_logits, axis)


@op("CTCLoss", call=4, module="nn")
def ctc_loss(target, output, target_length, output_length, mask_index=0):
    output = float_tensor(output)
    target = tensor(target, device=output.device).long()
    log_probs = torch.log_softmax(output, dim=-1).transpose(0, 1)
    return F.ctc_loss(log_probs, target, tensor(output_length).long(),
                      tensor(target_length).long(), blank=mask_index, reduction="none",
                      zero_infinity=False)


# ---------------------------------------------------------------------------------- conv/pool
def _channels_last(data_format):
    from kaffe import config
    fmt = data_format or config.image_data_format()
    return fmt == "channels_last"


def _to_channels_first(x, channels_last):
    return torch.movedim(x, -1, 1) if channels_last else x


def _from_channels_first(x, channels_last):
    return torch.movedim(x, 1, -1) if channels_last else x


def _tuple(value, n):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def _same_padding(x, kernel_size, strides, dilation):
    """Pad ``x`` (channels first) as TensorFlow's 'same' does: the extra cell at the end."""
    pads = []
    for size, k, s, d in reversed(list(zip(x.shape[2:], kernel_size, strides, dilation))):
        effective = (k - 1) * d + 1
        out = -(-size // s)
        total = max(0, (out - 1) * s + effective - size)
        pads += [total // 2, total - total // 2]
    return pads


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@op("Conv", call=2, module="nn")
def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    x, kernel = float_tensors(inputs, kernel)
    n = x.dim() - 2
    last = _channels_last(data_format)
    x = _to_channels_first(x, last)
    strides, dilation = _tuple(strides, n), _tuple(dilation_rate, n)
    weight = kernel.permute(n + 1, n, *range(n))  # (k..., in/groups, out) -> (out, in, k...)
    groups = x.shape[1] // weight.shape[1]
    if padding == "same":
        x = F.pad(x, _same_padding(x, weight.shape[2:], strides, dilation))
    out = _CONV[n](x, weight, None, strides, 0, dilation, groups)
    return _from_channels_first(out, last)


@op("DepthwiseConv", call=2, module="nn")
def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1):
    kernel = float_tensor(kernel)
    n = kernel.dim() - 2
    shape = tuple(kernel.shape[:n]) + (1, kernel.shape[n] * kernel.shape[n + 1])
    return conv.spec.impl(inputs, kernel.reshape(shape), strides, padding, data_format,
                          dilation_rate)


@op("SeparableConv", call=3, module="nn")
def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid",
                   data_format=None, dilation_rate=1):
    depthwise = depthwise_conv.spec.impl(inputs, depthwise_kernel, strides, padding,
                                         data_format, dilation_rate)
    return conv.spec.impl(depthwise, pointwise_kernel, 1, "valid", data_format, 1)


@op("ConvTranspose", call=2, module="nn")
def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None,
                   data_format=None, dilation_rate=1):
    x, kernel = float_tensors(inputs, kernel)
    n = x.dim() - 2
    last = _channels_last(data_format)
    x = _to_channels_first(x, last)
    strides, dilation = _tuple(strides, n), _tuple(dilation_rate, n)
    weight = kernel.permute(n + 1, n, *range(n))  # (k..., out, in) -> (in, out, k...)
    out = _CONV_T[n](x, weight, None, strides, 0, 0, 1, dilation)
    crops = [_transpose_crop(k, st, d, padding, None if output_padding is None
                             else _tuple(output_padding, n)[i])
             for i, (k, st, d) in enumerate(zip(weight.shape[2:], strides, dilation))]
    out = out[(slice(None), slice(None)) + tuple(
        slice(max(left, 0), out.shape[2 + i] - max(right, 0)) for i, (left, right) in
        enumerate(crops))]
    if any(left < 0 or right < 0 for left, right in crops):
        out = F.pad(out, [p for left, right in reversed(crops)
                          for p in (max(-left, 0), max(-right, 0))])
    return _from_channels_first(out, last)


def _transpose_crop(kernel, stride, dilation, padding, output_padding):
    """(left, right) cells to cut from torch's full transposed-conv output (negative: add
    zeros) for Keras's output length: ``(in - 1) * s + max(k, s)`` for 'valid', ``in * s``
    for 'same' when ``output_padding`` is unset; the cut falls where TensorFlow/JAX put it."""
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(effective, stride) - effective if output_padding is None else output_padding
        return 0, -extra
    if output_padding is None:
        total = stride + effective - 2
    else:
        total = effective + effective % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, effective - 1)
    return effective - 1 - left, effective - 1 - (total - left)


def _pool(kind, inputs, pool_size, strides, padding, data_format):
    x = float_tensor(inputs)
    n = x.dim() - 2
    last = _channels_last(data_format)
    x = _to_channels_first(x, last)
    size = _tuple(pool_size, n)
    strides = size if strides is None else _tuple(strides, n)
    if padding == "same":
        pads = _same_padding(x, size, strides, (1,) * n)
        value = float("-inf") if kind == "max" else 0.0
        counts = None
        if kind == "avg":
            counts = F.pad(torch.ones_like(x[:1, :1]), pads)
        x = F.pad(x, pads, value=value)
    fn = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
          ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d, ("avg", 3): F.avg_pool3d}[(kind, n)]
    out = fn(x, size, strides)
    if padding == "same" and kind == "avg":
        out = out / fn(counts, size, strides)
    return _from_channels_first(out, last)


@op("MaxPool", module="nn")
def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool("max", inputs, pool_size, strides, padding, data_format)


@op("AveragePool", module="nn")
def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool("avg", inputs, pool_size, strides, padding, data_format)


def _adaptive(kind, inputs, output_size, data_format):
    x = float_tensor(inputs)
    n = x.dim() - 2
    last = _channels_last(data_format)
    fn = {("max", 1): F.adaptive_max_pool1d, ("max", 2): F.adaptive_max_pool2d,
          ("max", 3): F.adaptive_max_pool3d, ("avg", 1): F.adaptive_avg_pool1d,
          ("avg", 2): F.adaptive_avg_pool2d, ("avg", 3): F.adaptive_avg_pool3d}[(kind, n)]
    out = fn(_to_channels_first(x, last), _tuple(output_size, n))
    return _from_channels_first(out, last)


@op("AdaptiveMaxPool", module="nn")
def adaptive_max_pool(inputs, output_size, data_format=None):
    return _adaptive("max", inputs, output_size, data_format)


@op("AdaptiveAveragePool", module="nn")
def adaptive_average_pool(inputs, output_size, data_format=None):
    return _adaptive("avg", inputs, output_size, data_format)


@op("DepthToSpace", module="nn")
def depth_to_space(x, block_size, data_format="channels_last"):
    """TensorFlow's order: channels split as (block row, block column, channel)."""
    x = tensor(x)
    last = data_format == "channels_last"
    x = x if last else torch.movedim(x, 1, -1)
    n, h, w, c = x.shape
    b = block_size
    out = x.reshape(n, h, w, b, b, c // (b * b)).permute(0, 1, 3, 2, 4, 5)
    out = out.reshape(n, h * b, w * b, c // (b * b))
    return out if last else torch.movedim(out, -1, 1)


@op("SpaceToDepth", module="nn")
def space_to_depth(x, block_size, data_format="channels_last"):
    """The inverse of ``depth_to_space``."""
    x = tensor(x)
    last = data_format == "channels_last"
    x = x if last else torch.movedim(x, 1, -1)
    n, h, w, c = x.shape
    b = block_size
    out = x.reshape(n, h // b, b, w // b, b, c).permute(0, 1, 3, 2, 4, 5)
    out = out.reshape(n, h // b, w // b, b * b * c)
    return out if last else torch.movedim(out, -1, 1)


@op("Unfold", module="nn")
def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    return F.unfold(float_tensor(x), kernel_size, dilation, padding, stride)


@op("Fold", module="nn")
def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    return F.fold(float_tensor(x), output_size, kernel_size, dilation, padding, stride)


# ---------------------------------------------------------------------------------- attention
@op("DotProductAttention", call=6, module="nn")
def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False,
                          flash_attention=None, attn_logits_soft_cap=None):
    """Keras's layout: (batch, length, heads, head_dim)."""
    q, k, v = float_tensors(query, key, value)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # -> (batch, heads, length, dim)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = torch.matmul(q, k.transpose(-1, -2)) * scale
    if attn_logits_soft_cap is not None:
        logits = attn_logits_soft_cap * torch.tanh(logits / attn_logits_soft_cap)
    if bias is not None:
        logits = logits + tensor(bias, device=logits.device)  # (batch, heads, Tq, Tk)
    if mask is not None:
        logits = logits.masked_fill(~tensor(mask, device=logits.device).to(torch.bool),
                                    torch.finfo(logits.dtype).min)
    if is_causal:
        lq, lk = logits.shape[-2], logits.shape[-1]
        causal = torch.ones(lq, lk, dtype=torch.bool, device=logits.device).tril()
        logits = logits.masked_fill(~causal, torch.finfo(logits.dtype).min)
    weights = torch.softmax(logits, dim=-1)
    return torch.matmul(weights, v).transpose(1, 2)


@op("Polar", call=2, module="nn")
def polar(abs_, angle):
    a, b = float_tensors(abs_, angle)
    return torch.polar(a, b)


@op("PSNR", call=2, module="nn")
def psnr(x1, x2, max_val):
    a, b = float_tensors(x1, x2)
    mse = torch.mean(torch.square(a - b))
    return 20 * math.log10(max_val) - 10 * torch.log10(mse)


_ = tensors
