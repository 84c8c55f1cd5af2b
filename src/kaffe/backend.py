"""``from kaffe import backend as K``: Keras 2's backend functions over torch tensors.

Custom losses, metrics and ``Lambda`` layers written for Keras 2 call these. They follow the
Keras 2 (TensorFlow) semantics: reductions take ``axis=None, keepdims=False`` with ``axis`` an
int or a list; ``std``/``var`` are population statistics; ``argmax`` defaults to the last axis;
``round`` rounds half to even; ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)``.

Tensors are created on torch's current default device, so code run under
``with torch.device(x.device):`` gets them where ``x`` lives.
"""
import numpy as np
import torch
import torch.nn.functional as F

from kaffe import losses as _losses
from kaffe.config import (epsilon, floatx, image_data_format, set_epsilon, set_floatx,
                          set_image_data_format)

def _dtype(dtype):
    """A torch dtype from a name (``'float32'``), a torch/numpy dtype or ``None`` (floatx)."""
    if dtype is None:
        dtype = floatx()
    if isinstance(dtype, torch.dtype):
        return dtype
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name == "bool":
        return torch.bool
    return getattr(torch, name)


def _t(x):
    """``x`` as a tensor (floats in floatx)."""
    if isinstance(x, torch.Tensor):
        return x
    arr = np.asarray(x)
    dtype = _dtype(None) if arr.dtype.kind == "f" else None
    return torch.as_tensor(arr, dtype=dtype)


def _axes(axis):
    if axis is None:
        return None
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _reduce(fn, x, axis, keepdims):
    x = _t(x)
    axis = _axes(axis)
    if axis is None:
        out = fn(x)
        return out.reshape((1,) * x.dim()) if keepdims else out
    return fn(x, dim=axis, keepdim=keepdims)


# -- reductions ---------------------------------------------------------------------------------

def mean(x, axis=None, keepdims=False):
    x = _t(x)
    if not x.is_floating_point():
        x = x.to(_dtype(None))
    return _reduce(torch.mean, x, axis, keepdims)


def sum(x, axis=None, keepdims=False):
    return _reduce(torch.sum, x, axis, keepdims)


def prod(x, axis=None, keepdims=False):
    x = _t(x)
    axis = _axes(axis)
    if axis is None:
        out = torch.prod(x)
        return out.reshape((1,) * x.dim()) if keepdims else out
    for a in sorted((axis,) if isinstance(axis, int) else axis, key=lambda a: -(a % x.dim())):
        x = torch.prod(x, dim=a, keepdim=keepdims)
    return x


def max(x, axis=None, keepdims=False):
    return _reduce(torch.amax, x, axis, keepdims)


def min(x, axis=None, keepdims=False):
    return _reduce(torch.amin, x, axis, keepdims)


def var(x, axis=None, keepdims=False):
    x = _t(x)
    if not x.is_floating_point():
        x = x.to(_dtype(None))
    axis = _axes(axis)
    return torch.var(x, dim=axis, unbiased=False, keepdim=keepdims)


def std(x, axis=None, keepdims=False):
    return torch.sqrt(var(x, axis, keepdims))


def any(x, axis=None, keepdims=False):
    x = _t(x).bool()
    axis = _axes(axis)
    if axis is None:
        out = torch.any(x)
        return out.reshape((1,) * x.dim()) if keepdims else out
    return torch.any(x, dim=axis, keepdim=keepdims)


def all(x, axis=None, keepdims=False):
    x = _t(x).bool()
    axis = _axes(axis)
    if axis is None:
        out = torch.all(x)
        return out.reshape((1,) * x.dim()) if keepdims else out
    return torch.all(x, dim=axis, keepdim=keepdims)


def argmax(x, axis=-1):
    return torch.argmax(_t(x), dim=axis)


def argmin(x, axis=-1):
    return torch.argmin(_t(x), dim=axis)


# -- element-wise -------------------------------------------------------------------------------

def square(x):
    return torch.square(_t(x))


def sqrt(x):
    # Keras 2 clips at 0 so that tiny negative round-off does not give NaN.
    return torch.sqrt(torch.clamp(_t(x), min=0.0))


def abs(x):
    return torch.abs(_t(x))


def exp(x):
    return torch.exp(_t(x))


def log(x):
    return torch.log(_t(x))


def pow(x, a):
    return torch.pow(_t(x), a)


def clip(x, min_value=None, max_value=None):
    if isinstance(min_value, (int, float)) and isinstance(max_value, (int, float)) and max_value < min_value:
        max_value = min_value
    return torch.clamp(_t(x), min=min_value, max=max_value)


def round(x):
    return torch.round(_t(x))  # half to even, as tf.round


def sign(x):
    return torch.sign(_t(x))


def maximum(x, y):
    return torch.maximum(_t(x), torch.as_tensor(y, dtype=_t(x).dtype, device=_t(x).device))


def minimum(x, y):
    return torch.minimum(_t(x), torch.as_tensor(y, dtype=_t(x).dtype, device=_t(x).device))


def equal(x, y):
    return torch.eq(_t(x), y)


def not_equal(x, y):
    return torch.ne(_t(x), y)


def greater(x, y):
    return torch.gt(_t(x), y)


def greater_equal(x, y):
    return torch.ge(_t(x), y)


def less(x, y):
    return torch.lt(_t(x), y)


def less_equal(x, y):
    return torch.le(_t(x), y)


def cast(x, dtype):
    return _t(x).to(_dtype(dtype))


# -- linear algebra -----------------------------------------------------------------------------

def dot(x, y):
    """Keras 2 ``dot``: for N-d inputs, contracts the last axis of ``x`` with the second-to-last
    of ``y`` (``(2, 3, 4) . (4, 5) -> (2, 3, 5)``; ``(2, 3) . (4, 3, 5) -> (2, 4, 5)``)."""
    x, y = _t(x), _t(y)
    if x.dim() > 2 or y.dim() > 2:
        return torch.tensordot(x, y, dims=([x.dim() - 1], [y.dim() - 2 if y.dim() >= 2 else 0]))
    return torch.matmul(x, y)


def batch_dot(x, y, axes=None):
    """Keras 2 ``batch_dot``: per-sample dot product along ``axes`` (default: last axis of ``x``
    with the second-to-last of ``y``, or the last if ``y`` is 2-D). Two 2-D inputs give
    ``(batch, 1)``."""
    x, y = _t(x), _t(y)
    x_ndim, y_ndim = x.dim(), y.dim()
    if x_ndim < 2 or y_ndim < 2:
        raise ValueError(f"batch_dot needs inputs of rank >= 2, received shapes {tuple(x.shape)} "
                         f"and {tuple(y.shape)}.")
    if isinstance(axes, int):
        axes = (axes, axes)
    if axes is None:
        axes = (x_ndim - 1, y_ndim - 1 if y_ndim == 2 else y_ndim - 2)
    a0, a1 = axes[0] % x_ndim, axes[1] % y_ndim
    if 0 in (a0, a1):
        raise ValueError("batch_dot cannot contract the batch axis 0; add a batch axis with "
                         "expand_dims(x, 0) if the inputs are not batched.")
    if x.shape[a0] != y.shape[a1]:
        raise ValueError(f"batch_dot axes do not match: x.shape[{a0}]={x.shape[a0]} vs "
                         f"y.shape[{a1}]={y.shape[a1]}.")
    # x: (batch, rest_x..., k), y: (batch, k, rest_y...)
    x = torch.movedim(x, a0, -1)
    y = torch.movedim(y, a1, 1)
    rest_x, rest_y = x.shape[1:-1], y.shape[2:]
    out = torch.bmm(x.reshape(x.shape[0], -1, x.shape[-1]), y.reshape(y.shape[0], y.shape[1], -1))
    out = out.reshape((x.shape[0],) + tuple(rest_x) + tuple(rest_y))
    if out.dim() == 1:  # both inputs were 2-D
        out = out.unsqueeze(-1)
    return out


def transpose(x):
    x = _t(x)
    return x.permute(*reversed(range(x.dim())))


def reshape(x, shape):
    return torch.reshape(_t(x), tuple(shape))


def permute_dimensions(x, pattern):
    return _t(x).permute(*pattern)


def expand_dims(x, axis=-1):
    return torch.unsqueeze(_t(x), axis)


def squeeze(x, axis):
    return torch.squeeze(_t(x), axis)


def concatenate(tensors, axis=-1):
    return torch.cat([_t(t) for t in tensors], dim=axis)


def stack(x, axis=0):
    return torch.stack([_t(t) for t in x], dim=axis)


def flatten(x):
    return torch.reshape(_t(x), (-1,))


def batch_flatten(x):
    x = _t(x)
    return torch.reshape(x, (x.shape[0], -1))


def repeat(x, n):
    """``(batch, dim) -> (batch, n, dim)``."""
    x = _t(x)
    if x.dim() != 2:
        raise ValueError(f"repeat expects a 2-D tensor, received shape {tuple(x.shape)}.")
    return x.unsqueeze(1).expand(-1, n, -1).contiguous()


def tile(x, n):
    return torch.tile(_t(x), (n,) if isinstance(n, int) else tuple(n))


# -- shapes and dtypes --------------------------------------------------------------------------

def shape(x):
    """The shape as a tuple of ints (``K.shape(x)[0]`` is the batch size)."""
    return tuple(_t(x).shape)


def int_shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else None


def ndim(x):
    return _t(x).dim()


def dtype(x):
    return str(_t(x).dtype).replace("torch.", "")


def is_tensor(x):
    return isinstance(x, torch.Tensor)


# -- construction -------------------------------------------------------------------------------

def zeros(shape, dtype=None, name=None):
    return torch.zeros(tuple(shape), dtype=_dtype(dtype))


def ones(shape, dtype=None, name=None):
    return torch.ones(tuple(shape), dtype=_dtype(dtype))


def zeros_like(x, dtype=None, name=None):
    x = _t(x)
    return torch.zeros_like(x, dtype=None if dtype is None else _dtype(dtype))


def ones_like(x, dtype=None, name=None):
    x = _t(x)
    return torch.ones_like(x, dtype=None if dtype is None else _dtype(dtype))


def constant(value, dtype=None, shape=None, name=None):
    t = torch.as_tensor(np.asarray(value), dtype=_dtype(dtype))
    return t.expand(tuple(shape)).clone() if shape is not None else t


def variable(value, dtype=None, name=None, constraint=None):
    """A tensor holding ``value`` (Keras 2 variables are read with ``get_value``, set with ``set_value``)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().to(_dtype(dtype))
    return torch.as_tensor(np.asarray(value), dtype=_dtype(dtype)).clone()


def get_value(x):
    """A NumPy copy of ``x`` (this syncs with the device). Python numbers pass through."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x) if not isinstance(x, (int, float)) else x


eval = get_value


def set_value(x, value):
    """Write ``value`` into tensor ``x`` in place; ``x`` may also be ``optimizer.lr``."""
    if not isinstance(x, torch.Tensor) and hasattr(x, "assign"):
        x.assign(value)
        return
    with torch.no_grad():
        x.copy_(torch.as_tensor(np.asarray(value), dtype=x.dtype))


def batch_get_value(tensors):
    return [get_value(t) for t in tensors]


def batch_set_value(tuples):
    for x, value in tuples:
        set_value(x, value)


# -- indexing -----------------------------------------------------------------------------------

def gather(reference, indices):
    reference = _t(reference)
    return reference[torch.as_tensor(indices, device=reference.device).long()]


def one_hot(indices, num_classes):
    return F.one_hot(_t(indices).long(), num_classes).to(_dtype(None))


# -- activations --------------------------------------------------------------------------------

def softmax(x, axis=-1):
    return torch.softmax(_t(x), dim=axis)


def sigmoid(x):
    return torch.sigmoid(_t(x))


def hard_sigmoid(x):
    return torch.clamp(0.2 * _t(x) + 0.5, 0.0, 1.0)


def relu(x, alpha=0.0, max_value=None, threshold=0.0):
    """Keras 2 ``relu``: ``x`` above ``threshold``, ``alpha * (x - threshold)`` below, capped at ``max_value``."""
    x = _t(x)
    if threshold != 0:
        out = torch.where(x > threshold, x, torch.zeros_like(x))
    else:
        out = torch.relu(x)
    if alpha != 0.0:
        out = out - alpha * torch.relu(threshold - x)
    if max_value is not None:
        out = torch.clamp(out, max=max_value)
    return out


def elu(x, alpha=1.0):
    return F.elu(_t(x), alpha=alpha)


def softplus(x):
    return F.softplus(_t(x))


def softsign(x):
    return F.softsign(_t(x))


def tanh(x):
    return torch.tanh(_t(x))


def l2_normalize(x, axis=None):
    x = _t(x)
    square_sum = torch.sum(torch.square(x), dim=_axes(axis), keepdim=True) if axis is not None \
        else torch.sum(torch.square(x)).reshape((1,) * x.dim())
    return x * torch.rsqrt(torch.clamp(square_sum, min=1e-12))


# -- losses (Keras 2 argument order: target first) ----------------------------------------------

def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    return _losses.categorical_crossentropy(target, output, from_logits=from_logits, axis=axis)


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    return _losses.sparse_categorical_crossentropy(target, output, from_logits=from_logits, axis=axis)


def binary_crossentropy(target, output, from_logits=False):
    """Element-wise binary cross-entropy (no mean over the last axis, as Keras 2's backend)."""
    target, output = _t(target), _t(output)
    if from_logits:
        return F.binary_cross_entropy_with_logits(output, target.to(output.dtype), reduction="none")
    eps = epsilon()
    p = torch.clamp(output, eps, 1.0 - eps)
    return -(target * torch.log(p) + (1.0 - target) * torch.log(1.0 - p))


# -- randomness ---------------------------------------------------------------------------------

def _generator(seed):
    if seed is None:
        return None
    return torch.Generator(device=torch.get_default_device()).manual_seed(int(seed))


def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    out = torch.randn(tuple(shape), dtype=_dtype(dtype), generator=_generator(seed))
    return out * stddev + mean


def random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    out = torch.rand(tuple(shape), dtype=_dtype(dtype), generator=_generator(seed))
    return out * (maxval - minval) + minval


def dropout(x, level, noise_shape=None, seed=None):
    """Drop entries with probability ``level`` and scale the rest by ``1 / (1 - level)``."""
    x = _t(x)
    if not 0.0 <= level < 1.0:
        raise ValueError(f"dropout level must be in [0, 1). Received: level={level}")
    keep_shape = tuple(x.shape) if noise_shape is None else tuple(
        d if n is None else n for n, d in zip(noise_shape, x.shape))
    gen = None if seed is None else torch.Generator(device=x.device).manual_seed(int(seed))
    keep = torch.rand(keep_shape, generator=gen, device=x.device, dtype=x.dtype) >= level
    return x * keep.to(x.dtype) / (1.0 - level)


def switch(condition, then_expression, else_expression):
    """Element-wise ``where`` (callables are called first); a Python bool picks a branch."""
    then_value = then_expression() if callable(then_expression) else then_expression
    else_value = else_expression() if callable(else_expression) else else_expression
    if isinstance(condition, bool):
        return then_value if condition else else_value
    condition = _t(condition).bool()
    then_value, else_value = _t(then_value), _t(else_value)
    while condition.dim() < then_value.dim():
        condition = condition.unsqueeze(-1)
    return torch.where(condition, then_value, else_value)


# ---------------------------------------------------------------------------------------------
# Session helpers live in the engine; they are re-exported here.
# ---------------------------------------------------------------------------------------------
from kaffe.engine.naming import clear_session  # noqa: E402
