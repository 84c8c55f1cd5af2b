"""Reductions and scans of ``keras.ops.numpy`` (sum, mean, max, argmax, var, cumsum, ...)."""
import torch

from kaffe.ops.int_dtypes import cumulative_dtype, index_result, reduction_dtype
from kaffe.ops.registry import as_dtype, axis_tuple, float_tensor, op, tensor


def _reduce(fn, x, axis, keepdims):
    """Apply a torch reduction taking one ``dim`` over every axis of ``axis`` in turn."""
    axes = sorted(axis_tuple(axis, x.dim()), reverse=True)
    for a in axes:
        x = fn(x, a, True)
    if not keepdims:
        x = x.reshape([d for i, d in enumerate(x.shape) if i not in axes]) if axes else x
    return x


def _dims(x, axis):
    return axis_tuple(axis, x.dim())


@op("Sum")
def sum(x, axis=None, keepdims=False):
    x = tensor(x)
    if x.is_floating_point() or x.is_complex():
        return torch.sum(x, dim=_dims(x, axis), keepdim=keepdims) if x.dim() else x
    dtype = reduction_dtype(x.dtype)  # Keras's: int32 stays int32 (torch would give int64)
    if not x.dim():
        return x.to(dtype)
    return torch.sum(x, dim=_dims(x, axis), keepdim=keepdims, dtype=dtype)


@op("Mean")
def mean(x, axis=None, keepdims=False):
    x = float_tensor(x)
    return torch.mean(x, dim=_dims(x, axis), keepdim=keepdims) if x.dim() else x


@op("Max")
def max(x, axis=None, keepdims=False, initial=None):
    x = tensor(x)
    result = torch.amax(x, dim=_dims(x, axis), keepdim=keepdims) if x.dim() else x
    return result if initial is None else torch.clamp(result, min=initial)


@op("Min")
def min(x, axis=None, keepdims=False, initial=None):
    x = tensor(x)
    result = torch.amin(x, dim=_dims(x, axis), keepdim=keepdims) if x.dim() else x
    return result if initial is None else torch.clamp(result, max=initial)


@op("Amax")
def amax(x, axis=None, keepdims=False):
    x = tensor(x)
    return torch.amax(x, dim=_dims(x, axis), keepdim=keepdims) if x.dim() else x


@op("Amin")
def amin(x, axis=None, keepdims=False):
    x = tensor(x)
    return torch.amin(x, dim=_dims(x, axis), keepdim=keepdims) if x.dim() else x


@op("Prod")
def prod(x, axis=None, keepdims=False, dtype=None):
    x = tensor(x, dtype=as_dtype(dtype))
    out_dtype = reduction_dtype(x.dtype)
    return _reduce(lambda t, a, k: torch.prod(t, dim=a, keepdim=k, dtype=out_dtype), x, axis,
                   keepdims)


@op("All")
def all(x, axis=None, keepdims=False):
    x = tensor(x).to(torch.bool)
    return _reduce(lambda t, a, k: torch.all(t, dim=a, keepdim=k), x, axis, keepdims)


@op("Any")
def any(x, axis=None, keepdims=False):
    x = tensor(x).to(torch.bool)
    return _reduce(lambda t, a, k: torch.any(t, dim=a, keepdim=k), x, axis, keepdims)


@op("Var")
def var(x, axis=None, keepdims=False):
    x = float_tensor(x)
    return torch.var(x, dim=_dims(x, axis), keepdim=keepdims, correction=0)


@op("Std")
def std(x, axis=None, keepdims=False):
    x = float_tensor(x)
    return torch.std(x, dim=_dims(x, axis), keepdim=keepdims, correction=0)


@op("Ptp")
def ptp(x, axis=None, keepdims=False):
    x = tensor(x)
    dim = _dims(x, axis)
    return torch.amax(x, dim=dim, keepdim=keepdims) - torch.amin(x, dim=dim, keepdim=keepdims)


def _arg(fn, x, axis, keepdims):
    x = tensor(x)
    if axis is None:
        result = fn(x.reshape(-1), dim=0)
        return index_result(result.reshape([1] * x.dim()) if keepdims else result)
    return index_result(fn(x, dim=axis, keepdim=keepdims))


@op("Argmax")
def argmax(x, axis=None, keepdims=False):
    return _arg(torch.argmax, x, axis, keepdims)


@op("Argmin")
def argmin(x, axis=None, keepdims=False):
    return _arg(torch.argmin, x, axis, keepdims)


@op("Median")
def median(x, axis=None, keepdims=False):
    return quantile.spec.impl(x, 0.5, axis=axis, keepdims=keepdims)


@op("Quantile", call=2)
def quantile(x, q, axis=None, method="linear", keepdims=False):
    return _quantile_along(torch.quantile, x, q, axis, method, keepdims)


def _quantile_along(quantile_fn, x, q, axis, method, keepdims):
    """``torch.quantile`` / ``nanquantile`` over ``axis`` (one axis, several, or all), NumPy's way."""
    x = float_tensor(x)
    q = tensor(q, dtype=x.dtype, device=x.device)
    if axis is None:
        result = quantile_fn(x.reshape(-1), q, interpolation=method)
        return result.reshape(list(q.shape) + [1] * x.dim()) if keepdims else result
    moved, axes = _axes_last(x, axis)
    result = quantile_fn(moved, q, dim=-1, interpolation=method)
    return _restore_kept(result, axes, q, keepdims)


def _axes_last(x, axis):
    """``x`` with the axes of ``axis`` merged into one last axis."""
    axes = axis_tuple(axis, x.dim())
    rest = [a for a in range(x.dim()) if a not in axes]
    return x.permute(rest + list(axes)).reshape([x.shape[a] for a in rest] + [-1]), axes


def _restore_kept(result, axes, q, keepdims):
    if keepdims:
        for a in sorted(axes):
            result = result.unsqueeze(a + q.dim())
    return result


@op("Percentile", call=2)
def percentile(x, q, axis=None, method="linear", keepdims=False):
    return quantile.spec.impl(x, tensor(q) / 100.0, axis=axis, method=method, keepdims=keepdims)


@op("CountNonzero")
def count_nonzero(x, axis=None):
    x = tensor(x)
    return index_result(torch.count_nonzero(
        x, dim=None if axis is None else axis_tuple(axis, x.dim())))


@op("Average", call=("x", "weights"))
def average(x, axis=None, weights=None):
    x = float_tensor(x)
    if weights is None:
        return mean.spec.impl(x, axis=axis)
    w = tensor(weights, dtype=x.dtype, device=x.device)
    if axis is not None and w.dim() == 1 and x.dim() > 1:
        shape = [1] * x.dim()
        shape[axis] = -1
        w = w.reshape(shape)
    w = torch.broadcast_to(w, x.shape)
    dim = None if axis is None else axis
    return torch.sum(x * w, dim=dim) / torch.sum(w, dim=dim)


def _cumulative(fn, x, axis, dtype):
    x = tensor(x, dtype=as_dtype(dtype))
    out_dtype = cumulative_dtype(x.dtype)  # Keras's: the input's own (torch: ints -> int64)
    if axis is None:
        return fn(x.reshape(-1), dim=0, dtype=out_dtype)
    return fn(x, dim=axis, dtype=out_dtype)


@op("Cumsum")
def cumsum(x, axis=None, dtype=None):
    return _cumulative(torch.cumsum, x, axis, dtype)


@op("Cumprod")
def cumprod(x, axis=None, dtype=None):
    return _cumulative(torch.cumprod, x, axis, dtype)


@op("Logsumexp", module="math")
def logsumexp(x, axis=None, keepdims=False):
    x = float_tensor(x)
    return torch.logsumexp(x, dim=_dims(x, axis), keepdim=keepdims)


# NaN-ignoring reductions: NaN replaced by the reduction's neutral value.
def _nan_filled(x, value):
    x = float_tensor(x)
    return torch.where(torch.isnan(x), torch.full_like(x, value), x)


@op("Nansum")
def nansum(x, axis=None, keepdims=False):
    return sum.spec.impl(_nan_filled(x, 0.0), axis, keepdims)


@op("Nanprod")
def nanprod(x, axis=None, keepdims=False):
    return prod.spec.impl(_nan_filled(x, 1.0), axis, keepdims)


@op("Nanmax")
def nanmax(x, axis=None, keepdims=False):
    return amax.spec.impl(_nan_filled(x, float("-inf")), axis, keepdims)


@op("Nanmin")
def nanmin(x, axis=None, keepdims=False):
    return amin.spec.impl(_nan_filled(x, float("inf")), axis, keepdims)


@op("Nanmean")
def nanmean(x, axis=None, keepdims=False):
    x = float_tensor(x)
    return torch.nanmean(x, dim=_dims(x, axis), keepdim=keepdims)


@op("Nanvar")
def nanvar(x, axis=None, keepdims=False):
    x = float_tensor(x)
    dim = _dims(x, axis)
    centred = x - torch.nanmean(x, dim=dim, keepdim=True)
    return torch.nanmean(centred * centred, dim=dim, keepdim=keepdims)


@op("Nanstd")
def nanstd(x, axis=None, keepdims=False):
    return torch.sqrt(nanvar.spec.impl(x, axis, keepdims))


@op("Nanargmax")
def nanargmax(x, axis=None, keepdims=False):
    return argmax.spec.impl(_nan_filled(x, float("-inf")), axis, keepdims)


@op("Nanargmin")
def nanargmin(x, axis=None, keepdims=False):
    return argmin.spec.impl(_nan_filled(x, float("inf")), axis, keepdims)


@op("Nancumsum")
def nancumsum(x, axis=None, dtype=None):
    return cumsum.spec.impl(_nan_filled(x, 0.0), axis, dtype)


@op("Nancumprod")
def nancumprod(x, axis=None, dtype=None):
    return cumprod.spec.impl(_nan_filled(x, 1.0), axis, dtype)


@op("Nanmedian")
def nanmedian(x, axis=None, keepdims=False):
    return nanquantile.spec.impl(x, 0.5, axis=axis, keepdims=keepdims)


@op("Nanquantile", call=2)
def nanquantile(x, q, axis=None, method="linear", keepdims=False):
    return _quantile_along(torch.nanquantile, x, q, axis, method, keepdims)


@op("Nanpercentile", call=2)
def nanpercentile(x, q, axis=None, method="linear", keepdims=False):
    return nanquantile.spec.impl(x, tensor(q) / 100.0, axis=axis, method=method,
                                 keepdims=keepdims)
