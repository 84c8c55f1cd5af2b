"""Array ops of ``keras.ops.numpy``: shape and layout, joining and splitting, indexing,
products, sorting and searching, and array creation."""
import builtins

import numpy as np
import torch

from kaffe.ops.int_dtypes import from_python_ints, index_result
from kaffe.ops.registry import (as_dtype, axis_tuple, float_tensor, float_tensors, op, tensor,
                                tensors)

_builtin_sum, _builtin_max, _builtin_slice = builtins.sum, builtins.max, builtins.slice


def _float_dtype(dtype):
    return as_dtype(dtype) if dtype is not None else torch.float32


# ---------------------------------------------------------------------------------- shape
@op("Reshape")
def reshape(x, newshape):
    x = tensor(x)
    shape = [newshape] if isinstance(newshape, int) else [-1 if d is None else d for d in newshape]
    return torch.reshape(x, shape)


@op("Transpose")
def transpose(x, axes=None):
    x = tensor(x)
    return x.permute(tuple(reversed(range(x.dim()))) if axes is None else tuple(axes))


@op("ExpandDims")
def expand_dims(x, axis):
    x = tensor(x)
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    ndim = x.dim() + len(axes)
    for a in sorted(a % ndim for a in axes):
        x = x.unsqueeze(a)
    return x


@op("Squeeze")
def squeeze(x, axis=None):
    x = tensor(x)
    if axis is None:
        return torch.squeeze(x)
    for a in sorted(axis_tuple(axis, x.dim()), reverse=True):
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1 "
                             f"(shape {tuple(x.shape)}).")
        x = x.squeeze(a)
    return x


@op("Ravel")
def ravel(x):
    return tensor(x).reshape(-1)


@op("Swapaxes")
def swapaxes(x, axis1, axis2):
    return torch.swapaxes(tensor(x), axis1, axis2)


@op("Moveaxis")
def moveaxis(x, source, destination):
    return torch.movedim(tensor(x), source, destination)


@op("BroadcastTo")
def broadcast_to(x, shape):
    return torch.broadcast_to(tensor(x), tuple(shape))


@op("Flip")
def flip(x, axis=None):
    x = tensor(x)
    return torch.flip(x, axis_tuple(axis, x.dim()))


@op("Fliplr")
def fliplr(x):
    return torch.flip(tensor(x), (1,))


@op("Flipud")
def flipud(x):
    return torch.flip(tensor(x), (0,))


@op("Rot90")
def rot90(array, k=1, axes=(0, 1)):
    return torch.rot90(tensor(array), k, tuple(axes))


@op("Roll")
def roll(x, shift, axis=None):
    x = tensor(x)
    if axis is None:
        return torch.roll(x.reshape(-1), shift).reshape(x.shape)
    return torch.roll(x, shift, axis)


@op("Tile")
def tile(x, repeats):
    x = tensor(x)
    repeats = [repeats] if isinstance(repeats, int) else list(repeats)
    return torch.tile(x, repeats)


@op("Repeat")
def repeat(x, repeats, axis=None):
    x = tensor(x)
    if not isinstance(repeats, int):
        repeats = tensor(repeats, device=x.device)
    if axis is None:
        return torch.repeat_interleave(x.reshape(-1), repeats)
    return torch.repeat_interleave(x, repeats, dim=axis)


@op("Pad", call=("x", "constant_values"))
def pad(x, pad_width, mode="constant", constant_values=None):
    x = tensor(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.dim(), 2))
    flat = [int(v) for pair in reversed(widths.tolist()) for v in pair]
    torch_mode = {"constant": "constant", "reflect": "reflect", "symmetric": "symmetric",
                  "edge": "replicate", "wrap": "circular"}.get(mode)
    if torch_mode is None:
        raise ValueError(f"pad: mode {mode!r} is not supported; use 'constant', 'reflect', "
                         "'symmetric', 'edge' or 'wrap'.")
    if torch_mode == "constant":
        value = 0 if constant_values is None else float(constant_values)
        return torch.nn.functional.pad(x, flat, value=value)
    if torch_mode == "symmetric":
        return torch.from_numpy(np.pad(x.cpu().numpy(), widths, mode="symmetric")).to(x.device)
    batched = x.reshape((1, 1) + tuple(x.shape)) if x.dim() <= 3 else x
    out = torch.nn.functional.pad(batched.float() if not batched.is_floating_point() else batched,
                                  flat, mode=torch_mode)
    return out.reshape(out.shape[2:] if x.dim() <= 3 else out.shape).to(x.dtype)


# ---------------------------------------------------------------------------------- joining
@op("Concatenate")
def concatenate(xs, axis=0):
    parts = tensors(*xs)
    if axis is None:
        return torch.cat([p.reshape(-1) for p in parts])
    return torch.cat(_promoted(parts), dim=axis)


def _promoted(parts):
    dtype = parts[0].dtype
    for p in parts[1:]:
        dtype = torch.promote_types(dtype, p.dtype)
    return [p.to(dtype) for p in parts]


@op("Append", call=2)
def append(x1, x2, axis=None):
    return concatenate.spec.impl([x1, x2], axis=axis)


@op("Stack")
def stack(x, axis=0):
    return from_python_ints(list(x), torch.stack(_promoted(tensors(*x)), dim=axis))


@op("Hstack")
def hstack(xs):
    return torch.hstack(_promoted(tensors(*xs)))


@op("Vstack")
def vstack(xs):
    return torch.vstack(_promoted(tensors(*xs)))


@op("Dstack")
def dstack(xs):
    return torch.dstack(_promoted(tensors(*xs)))


def _split(x, indices_or_sections, axis, even):
    x = tensor(x)
    if isinstance(indices_or_sections, int):
        if even and x.shape[axis] % indices_or_sections:
            raise ValueError(f"split: axis {axis} of size {x.shape[axis]} does not divide into "
                             f"{indices_or_sections} equal parts.")
        return list(torch.tensor_split(x, indices_or_sections, dim=axis))
    return list(torch.tensor_split(x, list(indices_or_sections), dim=axis))


@op("Split")
def split(x, indices_or_sections, axis=0):
    return _split(x, indices_or_sections, axis, even=True)


@op("ArraySplit")
def array_split(x, indices_or_sections, axis=0):
    return _split(x, indices_or_sections, axis, even=False)


@op("Hsplit")
def hsplit(x, indices_or_sections):
    return _split(x, indices_or_sections, 1 if tensor(x).dim() > 1 else 0, even=True)


@op("Vsplit")
def vsplit(x, indices_or_sections):
    return _split(x, indices_or_sections, 0, even=True)


@op("Dsplit")
def dsplit(x, indices_or_sections):
    return _split(x, indices_or_sections, 2, even=True)


# ---------------------------------------------------------------------------------- indexing
def _key(key, device):
    if isinstance(key, list):
        key = tuple(key)
    if isinstance(key, tuple):
        return tuple(_key_part(k, device) for k in key)
    return _key_part(key, device)


def _key_part(part, device):
    if isinstance(part, (np.ndarray, list)):
        return tensor(part, device=device)
    if isinstance(part, torch.Tensor) and part.device != device:
        return part.to(device)
    return part


@op("GetItem", call=2)
def get_item(x, key):
    x = tensor(x)
    return x[_key(key, x.device)]


@op("Take", call=2)
def take(x, indices, axis=None):
    x = tensor(x)
    indices = tensor(indices, device=x.device).long()
    if axis is None:
        return x.reshape(-1)[indices.reshape(-1)].reshape(indices.shape)
    axis = axis % x.dim()
    indices = torch.where(indices < 0, indices + x.shape[axis], indices)
    out = torch.index_select(x, axis, indices.reshape(-1))
    return out.reshape(tuple(x.shape[:axis]) + tuple(indices.shape) + tuple(x.shape[axis + 1:]))


@op("TakeAlongAxis", call=2)
def take_along_axis(x, indices, axis=None):
    x = tensor(x)
    indices = tensor(indices, device=x.device).long()
    if axis is None:
        return torch.take_along_dim(x.reshape(-1), indices.reshape(-1))
    shape = list(torch.broadcast_shapes(
        tuple(x.shape[:axis % x.dim()]) + (1,) + tuple(x.shape[axis % x.dim() + 1:]),
        tuple(indices.shape[:axis % x.dim()]) + (1,) + tuple(indices.shape[axis % x.dim() + 1:])))
    x_shape, i_shape = list(shape), list(shape)
    x_shape[axis] = x.shape[axis]
    i_shape[axis] = indices.shape[axis]
    return torch.take_along_dim(x.expand(x_shape), indices.expand(i_shape), dim=axis)


@op("Where", call=3)
def where(condition, x1=None, x2=None):
    condition = tensor(condition)
    if x1 is None and x2 is None:
        return tuple(torch.nonzero(condition, as_tuple=True))
    if x1 is None or x2 is None:
        raise ValueError("where: give both x1 and x2, or neither.")
    from kaffe.ops.elementwise import _operand
    if not isinstance(x1, torch.Tensor) and not isinstance(x2, torch.Tensor):
        x1, x2 = tensors(x1, x2)
    if not isinstance(x1, torch.Tensor):
        x1 = _operand(x1, x2, None)
    if not isinstance(x2, torch.Tensor):
        x2 = _operand(x2, x1, None)
    return torch.where(condition.to(torch.bool).to(x1.device), x1, x2)


@op("Nonzero", dynamic=True)
def nonzero(x):
    return index_result(tuple(torch.nonzero(tensor(x), as_tuple=True)))


@op("Select", call=3)
def select(condlist, choicelist, default=0):
    conds = [tensor(c).to(torch.bool) for c in condlist]
    choices = tensors(*choicelist)
    result = torch.broadcast_to(tensor(default, dtype=choices[0].dtype,
                                       device=choices[0].device), choices[0].shape)
    for cond, choice in reversed(list(zip(conds, choices))):
        result = torch.where(cond, choice, result)
    return result


@op("Diag")
def diag(x, k=0):
    return torch.diag(tensor(x), k)


@op("Diagflat")
def diagflat(x, k=0):
    return torch.diagflat(tensor(x), k)


@op("Diagonal")
def diagonal(x, offset=0, axis1=0, axis2=1):
    return torch.diagonal(tensor(x), offset, axis1, axis2)


@op("Trace")
def trace(x, offset=0, axis1=0, axis2=1):
    x = tensor(x)
    result = torch.diagonal(x, offset, axis1, axis2).sum(-1)
    return result.to(torch.int64) if x.dtype == torch.bool else result


@op("Tril")
def tril(x, k=0):
    return torch.tril(tensor(x), k)


@op("Triu")
def triu(x, k=0):
    return torch.triu(tensor(x), k)


# ---------------------------------------------------------------------------------- products
@op("Matmul", call=2)
def matmul(x1, x2):
    a, b = tensors(x1, x2)
    if a.dtype != b.dtype:
        dtype = torch.promote_types(a.dtype, b.dtype)
        a, b = a.to(dtype), b.to(dtype)
    return torch.matmul(a, b)


@op("Dot", call=2)
def dot(x1, x2):
    a, b = tensors(x1, x2)
    if a.dim() == 0 or b.dim() == 0:
        return a * b
    if b.dim() == 1:
        return matmul.spec.impl(a, b)
    return torch.tensordot(*_same_dtype(a, b), dims=([a.dim() - 1], [b.dim() - 2]))


def _same_dtype(a, b):
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


@op("Tensordot", call=2)
def tensordot(x1, x2, axes=2):
    a, b = _same_dtype(*tensors(x1, x2))
    if isinstance(axes, (list, tuple)) and len(axes) == 2:
        first, second = axes
        axes = ([first] if isinstance(first, int) else list(first),
                [second] if isinstance(second, int) else list(second))
    return torch.tensordot(a, b, dims=axes)


@op("Inner", call=2)
def inner(x1, x2):
    return torch.inner(*_same_dtype(*tensors(x1, x2)))


@op("Outer", call=2)
def outer(x1, x2):
    a, b = _same_dtype(*tensors(x1, x2))
    return torch.outer(a.reshape(-1), b.reshape(-1))


@op("Vdot", call=2)
def vdot(x1, x2):
    a, b = _same_dtype(*tensors(x1, x2))
    return torch.vdot(a.reshape(-1), b.reshape(-1))


@op("Kron", call=2)
def kron(x1, x2):
    return torch.kron(*_same_dtype(*tensors(x1, x2)))


@op("Cross", call=2)
def cross(x1, x2, axisa=-1, axisb=-1, axisc=-1, axis=None):
    a, b = _same_dtype(*tensors(x1, x2))
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = torch.movedim(a, axisa, -1), torch.movedim(b, axisb, -1)
    if a.shape[-1] == 2:
        a = torch.nn.functional.pad(a, (0, 1))
    if b.shape[-1] == 2:
        b = torch.nn.functional.pad(b, (0, 1))
    a, b = torch.broadcast_tensors(a, b)
    return torch.movedim(torch.linalg.cross(a, b, dim=-1), -1, axisc)


@op("Einsum", call=("operands", "kwargs"))
def einsum(subscripts, *operands, **kwargs):
    parts = _promoted(tensors(*operands))
    return torch.einsum(subscripts, *parts)


@op("Correlate", call=2)
def correlate(x1, x2, mode="valid"):
    a, b = float_tensors(x1, x2)
    a, b = _same_dtype(a, b)
    pad = {"valid": 0, "same": (b.shape[0] - 1) // 2, "full": b.shape[0] - 1}[mode]
    out = torch.nn.functional.conv1d(a.reshape(1, 1, -1), b.reshape(1, 1, -1),
                                     padding=pad).reshape(-1)
    if mode == "same" and out.shape[0] > _builtin_max(a.shape[0], b.shape[0]):
        out = out[:_builtin_max(a.shape[0], b.shape[0])]
    return out


# ---------------------------------------------------------------------------------- sorting
@op("Sort")
def sort(x, axis=-1):
    x = tensor(x)
    if axis is None:
        return torch.sort(x.reshape(-1)).values
    return torch.sort(x, dim=axis).values


@op("Argsort")
def argsort(x, axis=-1):
    x = tensor(x)
    if axis is None:
        return index_result(torch.argsort(x.reshape(-1), stable=True))
    return index_result(torch.argsort(x, dim=axis, stable=True))


@op("Argpartition")
def argpartition(x, kth, axis=-1):
    return argsort.spec.impl(x, axis)


@op("SearchSorted", call=2)
def searchsorted(sorted_sequence, values, side="left"):
    seq, values = tensors(sorted_sequence, values)
    return index_result(torch.searchsorted(seq, values.to(seq.dtype), right=(side == "right")))


@op("Digitize", call=2)
def digitize(x, bins):
    x, bins = tensors(x, bins)
    return index_result(torch.bucketize(x, bins.to(x.dtype), right=True))


@op("Unique", dynamic=True)
def unique(x, sorted=True, return_index=False, return_inverse=False, return_counts=False,
           axis=None, size=None, fill_value=None):
    x = tensor(x)
    values, inverse, counts = torch.unique(x, sorted=True, return_inverse=True,
                                           return_counts=True, dim=axis)
    results = [values]
    if return_index:
        flat_inverse = inverse.reshape(-1)
        first = torch.full((values.shape[0],), flat_inverse.numel(), dtype=torch.int64,
                           device=x.device)
        first = first.scatter_reduce(0, flat_inverse, torch.arange(flat_inverse.numel(),
                                                                   device=x.device), "amin")
        results.append(first)
    if return_inverse:
        results.append(inverse)
    if return_counts:
        results.append(counts)
    return results[0] if len(results) == 1 else tuple(results)


@op("Bincount", dynamic=True)
def bincount(x, weights=None, minlength=0, sparse=False):
    x = tensor(x)
    w = None if weights is None else tensor(weights, device=x.device)
    # Keras's dtype: int32 counts, or the weights' and x's promoted dtype
    dtype = torch.int32 if w is None else torch.promote_types(x.dtype, w.dtype)
    x = x.long()
    if x.dim() == 2:
        return torch.stack([torch.bincount(row, None if w is None else w[i], minlength)
                            for i, row in enumerate(x)]).to(dtype)
    return torch.bincount(x, w, minlength).to(dtype)


@op("Histogram", dynamic=True)
def histogram(x, bins=10, range=None):
    x = float_tensor(x)
    low, high = range if range is not None else (float(x.min()), float(x.max()))
    counts = torch.histc(x, bins=bins, min=low, max=high)
    return counts.to(torch.int64), torch.linspace(low, high, bins + 1, device=x.device)


@op("IsIn", call=2)
def isin(x1, x2, assume_unique=False, invert=False):
    a, b = tensors(x1, x2)
    return torch.isin(a, b, assume_unique=assume_unique, invert=invert)


@op("Isclose", call=4)
def isclose(x1, x2, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = _same_dtype(*float_tensors(x1, x2))
    return torch.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


@op("AllClose", call=2)
def allclose(x1, x2, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = _same_dtype(*float_tensors(x1, x2))
    return torch.tensor(torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


# ---------------------------------------------------------------------------------- math
@op("Clip")
def clip(x, x_min, x_max):
    x = tensor(x)
    if x.dtype == torch.bool:
        x = x.to(torch.int64)
    low = x_min if not isinstance(x_min, (np.ndarray, list)) else tensor(x_min, device=x.device)
    high = x_max if not isinstance(x_max, (np.ndarray, list)) else tensor(x_max, device=x.device)
    return torch.clamp(x, low, high)


@op("Round")
def round(x, decimals=0):
    x = tensor(x)
    if not x.is_floating_point():
        return x
    return torch.round(x, decimals=decimals)


@op("NanToNum")
def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    return torch.nan_to_num(tensor(x), nan=nan, posinf=posinf, neginf=neginf)


@op("Diff")
def diff(a, n=1, axis=-1):
    return torch.diff(tensor(a), n=n, dim=axis)


@op("Trapezoid")
def trapezoid(y, x=None, dx=1.0, axis=-1):
    y = float_tensor(y)
    if x is None:
        return torch.trapezoid(y, dx=dx, dim=axis)
    return torch.trapezoid(y, tensor(x, dtype=y.dtype, device=y.device), dim=axis)


@op("Vander")
def vander(x, N=None, increasing=False):
    return torch.vander(tensor(x), N=N, increasing=increasing)


@op("Corrcoef")
def corrcoef(x):
    return torch.corrcoef(float_tensor(x))


@op("Slogdet", module="numpy")
def slogdet(x):
    sign, logabs = torch.linalg.slogdet(float_tensor(x))
    return sign, logabs


@op("UnravelIndex")
def unravel_index(indices, shape):
    return tuple(torch.unravel_index(tensor(indices).long(), tuple(shape)))


@op("Meshgrid", call=("x",))
def meshgrid(*x, indexing="xy"):
    return list(torch.meshgrid(*tensors(*x), indexing=indexing))


@op("View")
def view(x, dtype=None):
    x = tensor(x)
    return x if dtype is None else x.view(as_dtype(dtype))


# ---------------------------------------------------------------------------------- creation
def _shape(shape):
    return (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)


@op("Zeros", call=0)
def zeros(shape, dtype=None):
    return torch.zeros(_shape(shape), dtype=_float_dtype(dtype))


@op("Ones", call=0)
def ones(shape, dtype=None):
    return torch.ones(_shape(shape), dtype=_float_dtype(dtype))


@op("Empty", call=0)
def empty(shape, dtype=None):
    return torch.zeros(_shape(shape), dtype=_float_dtype(dtype))


@op("Full", call=("fill_value",))
def full(shape, fill_value, dtype=None):
    if isinstance(fill_value, torch.Tensor) or isinstance(fill_value, np.ndarray):
        value = tensor(fill_value, dtype=as_dtype(dtype))
        return torch.broadcast_to(value, _shape(shape)).clone()
    # Keras's full: floatx unless a dtype is given, whatever the Python fill value
    return torch.full(_shape(shape), fill_value,
                      dtype=torch.float32 if dtype is None else as_dtype(dtype))


def _like(x, dtype):
    x = tensor(x)
    return x, (as_dtype(dtype) if dtype is not None else x.dtype)


@op("ZerosLike")
def zeros_like(x, dtype=None):
    x, dtype = _like(x, dtype)
    return torch.zeros_like(x, dtype=dtype)


@op("OnesLike")
def ones_like(x, dtype=None):
    x, dtype = _like(x, dtype)
    return torch.ones_like(x, dtype=dtype)


@op("EmptyLike")
def empty_like(x, dtype=None):
    x, dtype = _like(x, dtype)
    return torch.zeros_like(x, dtype=dtype)


@op("FullLike", call=2)
def full_like(x, fill_value, dtype=None):
    x, dtype = _like(x, dtype)
    if isinstance(fill_value, (torch.Tensor, np.ndarray)):
        return torch.broadcast_to(tensor(fill_value, dtype=dtype, device=x.device),
                                  x.shape).clone()
    return torch.full_like(x, fill_value, dtype=dtype)


@op("Eye", call=0)
def eye(N, M=None, k=0, dtype=None):
    M = N if M is None else M
    return torch.ones((N, M), dtype=_float_dtype(dtype)).tril(k).triu(k)


@op("Identity", call=0)
def identity(n, dtype=None):
    return torch.eye(n, dtype=_float_dtype(dtype))


@op("Tri", call=0)
def tri(N, M=None, k=0, dtype=None):
    M = N if M is None else M
    return torch.tril(torch.ones((N, M), dtype=_float_dtype(dtype)), k)


@op("Arange", call=("start", "stop", "step"))
def arange(start, stop=None, step=None, dtype=None):
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    values = [start, stop, step]
    if dtype is None:
        floating = any(isinstance(v, float) or (isinstance(v, torch.Tensor)
                                                 and v.is_floating_point()) for v in values)
        dtype = torch.float32 if floating else torch.int32  # Keras's, whatever the ints
    values = [v.item() if isinstance(v, torch.Tensor) else v for v in values]
    return torch.arange(*values, dtype=as_dtype(dtype))


@op("Linspace", call=2)
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    dtype = _float_dtype(dtype)
    start_t, stop_t = tensor(start, dtype=torch.float64), tensor(stop, dtype=torch.float64)
    count = num if endpoint else num + 1
    steps = torch.linspace(0.0, 1.0, count, dtype=torch.float64)[:num]
    shape = [-1] + [1] * start_t.dim()
    result = start_t + steps.reshape(shape) * (stop_t - start_t)
    result = torch.movedim(result, 0, axis).to(dtype)
    if retstep:
        return result, ((stop_t - start_t) / _builtin_max(count - 1, 1)).to(dtype)
    return result


@op("Logspace", call=2)
def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0):
    exponents = linspace.spec.impl(start, stop, num=num, endpoint=endpoint, dtype="float64",
                                   axis=axis)
    return torch.pow(float(base), exponents).to(_float_dtype(dtype))


@op("Geomspace", call=2)
def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    log_start = torch.log10(tensor(start, dtype=torch.float64))
    log_stop = torch.log10(tensor(stop, dtype=torch.float64))
    return logspace.spec.impl(log_start, log_stop, num=num, endpoint=endpoint, dtype=dtype,
                              axis=axis)


@op("Array")
def array(x, dtype=None):
    return from_python_ints(x, tensor(x, dtype=as_dtype(dtype)), dtype)


def _window(fn, x, **kwargs):
    n = int(x)
    if n == 1:
        return torch.ones(1)
    return fn(n, periodic=False, **kwargs).to(torch.float32)


def bartlett(x):
    """The Bartlett window of ``x`` points (numpy's definition)."""
    return _window(torch.bartlett_window, x)


def blackman(x):
    """The Blackman window of ``x`` points (numpy's definition)."""
    return _window(torch.blackman_window, x)


def hamming(x):
    """The Hamming window of ``x`` points (numpy's definition)."""
    return _window(torch.hamming_window, x)


def hanning(x):
    """The Hann window of ``x`` points (numpy's definition)."""
    return _window(torch.hann_window, x)


def kaiser(x, beta):
    """The Kaiser window of ``x`` points (numpy's definition)."""
    return _window(torch.kaiser_window, x, beta=float(beta))


def ndim(x):
    """Number of axes of ``x`` (a Python int, also for symbolic tensors)."""
    return len(x.shape) if hasattr(x, "shape") else np.ndim(x)


@op("Size")
def size(x):
    """Number of elements of ``x``: an int64 scalar tensor, as Keras's torch backend returns (a
    ``Size`` node on a symbolic tensor)."""
    x = tensor(x)
    return torch.tensor(x.numel(), dtype=torch.int64, device=x.device)


_ = (_builtin_sum, _builtin_slice, float_tensor)
