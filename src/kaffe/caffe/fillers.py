"""Caffe's weight fillers (``include/caffe/filler.hpp``) as functions of (FillerParameter, shape).

Each returns a new float32 tensor of ``shape``. ``fill(param, shape)`` dispatches on ``param.type``
through the ``FILLERS`` table. Fan sizes follow Caffe, not PyTorch: ``fan_in = count / shape[0]``
and ``fan_out = count / shape[1]`` (``count`` for a 1-D blob), whatever the layer.
"""
import math

import torch

from kaffe.caffe.proto import caffe_pb2

_VN = caffe_pb2.FillerParameter


def _count(shape):
    return math.prod(shape)


def _check(shape, where):
    if _count(shape) == 0:
        raise ValueError(f"Caffe filler '{where}' expected a blob with at least one element. "
                         f"Received: shape={tuple(shape)}.")


def _no_sparse(param, where):
    if param.sparse != -1:
        raise ValueError(f"Caffe filler '{where}' does not support sparse; only 'gaussian' does. "
                         f"Received: sparse={param.sparse}.")


def constant(param, shape, generator=None):
    """Every value is ``param.value`` (default 0)."""
    _check(shape, "constant")
    _no_sparse(param, "constant")
    return torch.full(tuple(shape), float(param.value), dtype=torch.float32)


def uniform(param, shape, generator=None):
    """U(``min``, ``max``) (defaults 0, 1)."""
    _check(shape, "uniform")
    _no_sparse(param, "uniform")
    out = torch.empty(tuple(shape), dtype=torch.float32)
    return out.uniform_(param.min, param.max, generator=generator)


def gaussian(param, shape, generator=None):
    """N(``mean``, ``std``^2); with ``sparse`` = s >= 0 each value is kept with probability
    s / shape[0] (else 0), so each output unit has about s non-zero inputs."""
    _check(shape, "gaussian")
    if param.sparse < -1:
        raise ValueError(f"Caffe filler 'gaussian' expected sparse >= -1. Received: "
                         f"sparse={param.sparse}.")
    out = torch.empty(tuple(shape), dtype=torch.float32)
    out.normal_(param.mean, param.std, generator=generator)
    if param.sparse >= 0:
        if len(shape) < 1:
            raise ValueError("Caffe filler 'gaussian' with sparse needs a blob of at least 1 axis.")
        p = min(1.0, param.sparse / shape[0])
        mask = torch.bernoulli(torch.full_like(out, p), generator=generator)
        out = out * mask
    return out


def positive_unitball(param, shape, generator=None):
    """U(0, 1), then each of the shape[0] rows (the rest of the axes flattened) divided by its sum."""
    _check(shape, "positive_unitball")
    _no_sparse(param, "positive_unitball")
    out = torch.empty(tuple(shape), dtype=torch.float32).uniform_(0, 1, generator=generator)
    rows = out.reshape(shape[0], -1)
    return (rows / rows.sum(dim=1, keepdim=True)).reshape(tuple(shape))


def _fan(param, shape):
    count = _count(shape)
    fan_in = count / shape[0]
    fan_out = count / shape[1] if len(shape) > 1 else count
    if param.variance_norm == _VN.AVERAGE:
        return (fan_in + fan_out) / 2.0
    if param.variance_norm == _VN.FAN_OUT:
        return fan_out
    return fan_in


def xavier(param, shape, generator=None):
    """U(-a, a) with a = sqrt(3 / n), n = fan_in, fan_out or their mean (``variance_norm``)."""
    _check(shape, "xavier")
    _no_sparse(param, "xavier")
    scale = math.sqrt(3.0 / _fan(param, shape))
    out = torch.empty(tuple(shape), dtype=torch.float32)
    return out.uniform_(-scale, scale, generator=generator)


def msra(param, shape, generator=None):
    """N(0, 2 / n), n = fan_in, fan_out or their mean (``variance_norm``)."""
    _check(shape, "msra")
    _no_sparse(param, "msra")
    std = math.sqrt(2.0 / _fan(param, shape))
    out = torch.empty(tuple(shape), dtype=torch.float32)
    return out.normal_(0.0, std, generator=generator)


def bilinear(param, shape, generator=None):
    """Bilinear-interpolation kernels for a 4-D square filter (K, K): every (out, in) slice is
    (1 - |x/f - c|)(1 - |y/f - c|) with f = ceil(K/2), c = (K - 1) / (2f)."""
    if len(shape) != 4 or shape[2] != shape[3]:
        raise ValueError(f"Caffe filler 'bilinear' expected a 4-D blob with a square filter. "
                         f"Received: shape={tuple(shape)}.")
    _no_sparse(param, "bilinear")
    k = shape[3]
    f = math.ceil(k / 2.0)
    c = (k - 1) / (2.0 * f)
    x = torch.arange(k, dtype=torch.float64)
    w = 1 - (x / f - c).abs()
    kernel = (w[:, None] * w[None, :]).to(torch.float32)
    return kernel.expand(tuple(shape)).clone()


FILLERS = {
    "constant": constant,
    "uniform": uniform,
    "gaussian": gaussian,
    "positive_unitball": positive_unitball,
    "xavier": xavier,
    "msra": msra,
    "bilinear": bilinear,
}


def fill(param, shape, generator=None):
    """A new tensor of ``shape`` filled as Caffe's ``GetFiller(param)`` would."""
    try:
        filler = FILLERS[param.type]
    except KeyError:
        raise ValueError(f"Unknown Caffe filler type {param.type!r}. Known: "
                         f"{', '.join(sorted(FILLERS))}.") from None
    return filler(param, tuple(int(d) for d in shape), generator=generator)
