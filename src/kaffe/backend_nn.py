"""Keras 2's neural-network backend functions with TensorFlow's conventions, on torch:
``K.conv1d`` / ``K.conv2d`` (Keras kernel layouts, TensorFlow's ``'same'`` padding, which pads
the extra row/column at the end), ``K.local_conv1d`` / ``K.local_conv2d`` (unshared weights,
Keras 2's kernel layout), ``K.ctc_batch_cost`` and ``K.ctc_decode`` (blank = the last class).
"""
import math

import torch
import torch.nn.functional as F

from kaffe.config import epsilon, image_data_format


def _tuple(value, n):
    return tuple(value) if isinstance(value, (list, tuple)) else (int(value),) * n


def _check_padding(padding, allowed):
    if padding not in allowed:
        raise ValueError(f"padding must be one of {allowed}. Received: padding={padding!r}")


def _same_pads(size, kernel, stride, dilation):
    """TensorFlow's 'same' padding of one axis: (before, after), the odd one after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _channels_first(x, data_format, spatial):
    data_format = data_format or image_data_format()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(f"data_format must be 'channels_first' or 'channels_last'. "
                         f"Received: data_format={data_format!r}")
    if data_format == "channels_last":
        x = x.movedim(-1, 1)
    return x, data_format


def _restore(x, data_format):
    return x.movedim(1, -1) if data_format == "channels_last" else x


def conv1d(x, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """1-D convolution of ``x`` ``(batch, steps, in)`` with ``kernel`` ``(width, in, out)``;
    ``padding`` 'valid', 'same' or 'causal' (left padding only)."""
    _check_padding(padding, ("valid", "same", "causal"))
    stride, dilation = _tuple(strides, 1)[0], _tuple(dilation_rate, 1)[0]
    x, data_format = _channels_first(torch.as_tensor(x), data_format, 1)
    kernel = torch.as_tensor(kernel, dtype=x.dtype, device=x.device)
    width = kernel.shape[0]
    if padding == "causal":
        x = F.pad(x, ((width - 1) * dilation, 0))
    elif padding == "same":
        x = F.pad(x, _same_pads(x.shape[-1], width, stride, dilation))
    out = F.conv1d(x, kernel.permute(2, 1, 0), stride=stride, dilation=dilation)
    return _restore(out, data_format)


def conv2d(x, kernel, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1)):
    """2-D convolution of ``x`` with ``kernel`` ``(kh, kw, in, out)`` (Keras's layout)."""
    _check_padding(padding, ("valid", "same"))
    strides, dilation = _tuple(strides, 2), _tuple(dilation_rate, 2)
    x, data_format = _channels_first(torch.as_tensor(x), data_format, 2)
    kernel = torch.as_tensor(kernel, dtype=x.dtype, device=x.device)
    if padding == "same":
        (top, bottom), (left, right) = (
            _same_pads(x.shape[2 + i], kernel.shape[i], strides[i], dilation[i]) for i in range(2))
        x = F.pad(x, (left, right, top, bottom))
    out = F.conv2d(x, kernel.permute(3, 2, 0, 1), stride=strides, dilation=dilation)
    return _restore(out, data_format)


def local_conv1d(inputs, kernel, kernel_size, strides, data_format=None):
    """Unshared-weight 1-D convolution: ``inputs`` ``(batch, steps, in)``, ``kernel``
    ``(output_length, kernel_size * in, filters)`` -> ``(batch, output_length, filters)``."""
    x, data_format = _channels_first(torch.as_tensor(inputs), data_format, 1)
    width, stride = _tuple(kernel_size, 1)[0], _tuple(strides, 1)[0]
    patches = x.unfold(2, width, stride)  # (batch, in, out_len, width)
    patches = patches.permute(0, 2, 3, 1).reshape(x.shape[0], patches.shape[2], -1)
    kernel = torch.as_tensor(kernel, dtype=x.dtype, device=x.device)
    _check_kernel(kernel, patches.shape[1:], "local_conv1d")
    out = torch.einsum("nlf,lfo->nlo", patches, kernel)  # (batch, out_len, filters)
    return out if data_format == "channels_last" else out.movedim(-1, 1)


def local_conv2d(inputs, kernel, kernel_size, strides, output_shape, data_format=None):
    """Unshared-weight 2-D convolution: ``kernel`` ``(rows * cols, kh * kw * in, filters)``."""
    x, data_format = _channels_first(torch.as_tensor(inputs), data_format, 2)
    (kh, kw), (sh, sw) = _tuple(kernel_size, 2), _tuple(strides, 2)
    patches = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (batch, in, rows, cols, kh, kw)
    rows, cols = patches.shape[2], patches.shape[3]
    if tuple(output_shape) != (rows, cols):
        raise ValueError(f"local_conv2d: output_shape={tuple(output_shape)} but the input gives "
                         f"{(rows, cols)}.")
    patches = patches.permute(0, 2, 3, 4, 5, 1).reshape(x.shape[0], rows * cols, -1)
    kernel = torch.as_tensor(kernel, dtype=x.dtype, device=x.device)
    _check_kernel(kernel, patches.shape[1:], "local_conv2d")
    out = torch.einsum("nlf,lfo->nlo", patches, kernel).reshape(x.shape[0], rows, cols, -1)
    return out if data_format == "channels_last" else out.permute(0, 3, 1, 2)


def _check_kernel(kernel, expected, what):
    if tuple(kernel.shape[:2]) != tuple(expected):
        raise ValueError(f"{what}: kernel shape {tuple(kernel.shape)} does not fit the input; "
                         f"expected ({expected[0]}, {expected[1]}, filters).")


# -- CTC ----------------------------------------------------------------------------------------

def _lengths(values, what):
    values = torch.as_tensor(values)
    if values.dim() == 2:
        values = values[:, 0]
    return values.long().reshape(-1)


def ctc_batch_cost(y_true, y_pred, input_length, label_length):
    """Per-sample CTC loss ``(samples, 1)``, Keras 2's ``K.ctc_batch_cost``.

    ``y_true`` ``(samples, max_label_length)`` class ids; ``y_pred`` ``(samples, steps,
    classes)`` softmax outputs whose last class is the blank; ``input_length`` /
    ``label_length`` ``(samples, 1)``. As Keras 2 on TensorFlow, ``log(y_pred + epsilon)`` are
    the logits (renormalised by a log-softmax), and torch's ``ctc_loss`` does the rest.
    """
    y_pred = torch.as_tensor(y_pred)
    if y_pred.dim() != 3:
        raise ValueError(f"ctc_batch_cost expects y_pred of shape (samples, steps, classes), "
                         f"received {tuple(y_pred.shape)}.")
    logits = torch.log(y_pred.float() + epsilon()).transpose(0, 1)  # (steps, samples, classes)
    log_probs = torch.log_softmax(logits, dim=-1)
    targets = torch.as_tensor(y_true, device=y_pred.device).long()
    input_length = _lengths(input_length, "input_length").to(y_pred.device)
    label_length = _lengths(label_length, "label_length").to(y_pred.device)
    if int(input_length.max()) > y_pred.shape[1]:
        raise ValueError(f"ctc_batch_cost: input_length up to {int(input_length.max())} but "
                         f"y_pred has only {y_pred.shape[1]} steps.")
    loss = F.ctc_loss(log_probs, targets, input_length, label_length,
                      blank=y_pred.shape[-1] - 1, reduction="none")
    return loss.unsqueeze(1)


def ctc_decode(y_pred, input_length, greedy=True, beam_width=100, top_paths=1):
    """Keras 2's ``K.ctc_decode`` of softmax outputs, the blank being the last class.

    Greedy: per step the best class, repeats merged, blanks dropped; returns ``([decoded],
    log_prob)`` with ``decoded`` ``(samples, steps)`` padded with -1 and ``log_prob``
    ``(samples, 1)`` the negative sum of the best logits (``log(y_pred + epsilon)``) over the
    input length. ``greedy=False``: a beam search of ``beam_width`` prefixes over those logits
    (:func:`kaffe.ops.ctc_decode`); returns ``top_paths`` decoded ``(samples, steps)`` arrays and
    their log-probabilities ``(samples, top_paths)``."""
    y_pred = torch.as_tensor(y_pred)
    if not greedy:
        from kaffe.ops.ctc import ctc_decode as decode
        decoded, log_prob = decode(torch.log(y_pred.float() + epsilon()),
                                   _lengths(input_length, "input_length"),
                                   strategy="beam_search", beam_width=beam_width,
                                   top_paths=top_paths, mask_index=y_pred.shape[-1] - 1)
        return [paths.long() for paths in decoded], log_prob
    samples, steps, classes = y_pred.shape
    logits = torch.log(y_pred.float() + epsilon())
    lengths = _lengths(input_length, "input_length").to(y_pred.device)
    best, best_class = logits.max(dim=-1)  # (samples, steps)
    valid = torch.arange(steps, device=y_pred.device)[None, :] < lengths[:, None]
    log_prob = -(best * valid).sum(dim=1, keepdim=True)
    repeat = torch.zeros_like(valid)
    repeat[:, 1:] = best_class[:, 1:] == best_class[:, :-1]
    keep = valid & ~repeat & (best_class != classes - 1)
    decoded = torch.full((samples, steps), -1, dtype=torch.int64, device=y_pred.device)
    for i in range(samples):
        labels = best_class[i][keep[i]]
        decoded[i, :labels.numel()] = labels
    return [decoded], log_prob
