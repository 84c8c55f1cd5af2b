"""``from kaffe import backend as K``: Keras 2's backend functions over torch tensors.

Custom losses, metrics and ``Lambda`` layers written for Keras 2 call these. They follow the
Keras 2 (TensorFlow) semantics: reductions take ``axis=None, keepdims=False`` with ``axis`` an
int or a list; ``std``/``var`` are population statistics; ``argmax`` defaults to the last axis;
``round`` rounds half to even; ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)``.

Given a symbolic ``KerasTensor`` (``model.input``, ``layer.output``, ``K.placeholder``) among
its arguments, a function records a node of the functional graph instead of computing: through
the same-meaning ``kaffe.ops`` op where there is one (so the graph saves as Keras 3 saves it),
else as a ``Lambda`` of the function itself. ``K.function`` / ``K.gradients`` run such graphs
(``kaffe.backend_graph``); ``K.conv1d`` & co. and the CTC functions are in
``kaffe.backend_nn``. kaffe has no TensorFlow sessions: ``K.get_session`` and the other
TensorFlow-1-only names raise an error saying what to write instead.

Tensors are created on torch's current default device, so code run under
``with torch.device(x.device):`` gets them where ``x`` lives.
"""
import builtins
import functools
import inspect

import numpy as np
import torch
import torch.nn.functional as F

from kaffe import losses as _losses
from kaffe.engine.keras_tensor import KerasTensor
from kaffe.layers import dropout_mask
from kaffe.training import variables as _variables
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
    return dropout_mask.dropout(x, level, keep_shape, gen)


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


# -- more element-wise and array functions -----------------------------------------------------

def cos(x):
    return torch.cos(_t(x))


def sin(x):
    return torch.sin(_t(x))


def cumsum(x, axis=0):
    return torch.cumsum(_t(x), dim=axis)


def cumprod(x, axis=0):
    return torch.cumprod(_t(x), dim=axis)


def logsumexp(x, axis=None, keepdims=False):
    x = _t(x)
    if axis is None:
        out = torch.logsumexp(x.reshape(-1), dim=0)
        return out.reshape((1,) * x.dim()) if keepdims else out
    return torch.logsumexp(x, dim=_axes(axis), keepdim=keepdims)


def reverse(x, axes):
    return torch.flip(_t(x), dims=(axes,) if isinstance(axes, int) else tuple(axes))


def arange(start, stop=None, step=1, dtype="int32"):
    if stop is None:
        start, stop = 0, start
    return torch.arange(start, stop, step, dtype=_dtype(dtype))


def eye(size, dtype=None, name=None):
    rows, cols = (size, size) if isinstance(size, int) else tuple(size)
    return torch.eye(rows, cols, dtype=_dtype(dtype))


def identity(x, name=None):
    return _t(x).clone()


def stop_gradient(variables):
    if isinstance(variables, (list, tuple)):
        return [_t(v).detach() for v in variables]
    return _t(variables).detach()


def bias_add(x, bias, data_format=None):
    """``x + bias`` on the channel axis (last for channels_last)."""
    x, bias = _t(x), _t(bias)
    data_format = data_format or image_data_format()
    if data_format == "channels_first" and x.dim() > 2:
        bias = bias.reshape((1, -1) + (1,) * (x.dim() - 2)) if bias.dim() == 1 else \
            bias.movedim(-1, 0).unsqueeze(0)
    return x + bias


def temporal_padding(x, padding=(1, 1)):
    """Zero-pad axis 1 of a 3-D tensor by ``padding = (left, right)``."""
    return F.pad(_t(x), (0, 0, padding[0], padding[1]))


def spatial_2d_padding(x, padding=((1, 1), (1, 1)), data_format=None):
    x = _t(x)
    (top, bottom), (left, right) = padding
    if (data_format or image_data_format()) == "channels_first":
        return F.pad(x, (left, right, top, bottom))
    return F.pad(x, (0, 0, left, right, top, bottom))


def resize_images(x, height_factor, width_factor, data_format=None, interpolation="nearest"):
    x = _t(x)
    channels_last = (data_format or image_data_format()) == "channels_last"
    if channels_last:
        x = x.permute(0, 3, 1, 2)
    mode = {"nearest": "nearest", "bilinear": "bilinear"}[interpolation]
    out = F.interpolate(x, scale_factor=(height_factor, width_factor), mode=mode,
                        **({} if mode == "nearest" else {"align_corners": False}))
    return out.permute(0, 2, 3, 1) if channels_last else out


def pool2d(x, pool_size, strides=(1, 1), padding="valid", data_format=None, pool_mode="max"):
    """Max or average pooling of a 4-D tensor (TensorFlow's 'same' padding)."""
    from kaffe.backend_nn import _same_pads
    x = _t(x)
    channels_last = (data_format or image_data_format()) == "channels_last"
    if channels_last:
        x = x.permute(0, 3, 1, 2)
    if padding == "same":
        pads = [_same_pads(x.shape[2 + i], pool_size[i], strides[i], 1) for i in range(2)]
        fill = float("-inf") if pool_mode == "max" else 0.0
        if pool_mode == "avg":  # TF averages over the real entries only
            ones = F.pad(torch.ones_like(x[:, :1]), (*pads[1], *pads[0]))
            total = F.avg_pool2d(F.pad(x, (*pads[1], *pads[0])), pool_size, strides)
            out = total / F.avg_pool2d(ones, pool_size, strides)
            return out.permute(0, 2, 3, 1) if channels_last else out
        x = F.pad(x, (*pads[1], *pads[0]), value=fill)
    if pool_mode == "max":
        out = F.max_pool2d(x, pool_size, strides)
    elif pool_mode == "avg":
        out = F.avg_pool2d(x, pool_size, strides)
    else:
        raise ValueError(f"pool_mode must be 'max' or 'avg'. Received: pool_mode={pool_mode!r}")
    return out.permute(0, 2, 3, 1) if channels_last else out


def in_train_phase(x, alt, training=None):
    """``x`` in the training phase, ``alt`` otherwise (callables are called)."""
    from kaffe.backend_graph import learning_phase
    if training is None:
        training = learning_phase()
        training = 0 if not isinstance(training, int) else training
    chosen = x if (training if isinstance(training, (bool, int)) else bool(training)) else alt
    return chosen() if callable(chosen) else chosen


def in_test_phase(x, alt, training=None):
    return in_train_phase(alt, x, training=training)


def count_params(x):
    return int(np.prod(tuple(_t(x).shape)))


def update(x, new_x):
    """Write ``new_x`` into the tensor ``x`` in place (TensorFlow 2's ``x.assign``)."""
    set_value(x, get_value(new_x) if isinstance(new_x, torch.Tensor) else new_x)
    return x


def update_add(x, increment):
    """``x += increment`` in place, outside autograd (TensorFlow's ``assign_add``)."""
    return _variables._assign_add(x, increment)


def update_sub(x, decrement):
    """``x -= decrement`` in place, outside autograd (TensorFlow's ``assign_sub``)."""
    return _variables._assign_sub(x, decrement)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal draws re-drawn beyond two standard deviations (TensorFlow's truncated normal)."""
    out = torch.empty(tuple(shape), dtype=_dtype(dtype))
    torch.nn.init.trunc_normal_(out, 0.0, 1.0, -2.0, 2.0, generator=_generator(seed))
    return out * stddev + mean


def random_binomial(shape, p=0.0, dtype=None, seed=None):
    return (torch.rand(tuple(shape), generator=_generator(seed)) < p).to(_dtype(dtype))


def is_sparse(tensor):
    return bool(getattr(tensor, "is_sparse", False))


def image_dim_ordering():
    """Keras 1's name: 'tf' for channels_last, 'th' for channels_first."""
    return "tf" if image_data_format() == "channels_last" else "th"


def set_image_dim_ordering(dim_ordering):
    set_image_data_format({"tf": "channels_last", "th": "channels_first"}[dim_ordering])


_UIDS = {}


def get_uid(prefix=""):
    """1, 2, 3 ... per ``prefix`` (Keras 2 numbers layer names with it)."""
    _UIDS[prefix] = _UIDS.get(prefix, 0) + 1
    return _UIDS[prefix]


def reset_uids():
    _UIDS.clear()


class name_scope:
    """``with K.name_scope('block'):`` is accepted; kaffe names layers, not graph scopes."""

    def __init__(self, name, *args, **kwargs):
        self.name = name

    def __enter__(self):
        return self.name

    def __exit__(self, *exc):
        return False


def backend():
    """``'tensorflow'``.

    kaffe presents itself as tf.keras 2.15 (``keras.__version__`` is ``2.15.0+kaffe``) with a
    ``tensorflow`` stand-in, and Keras 2 programs branch on this value to choose between
    TensorFlow, Theano and CNTK code (``if K.backend() == 'tensorflow': ...``): the TensorFlow
    branch uses channels_last, TensorFlow's ``K.dot`` semantics and ``tf.*`` calls, which are
    what kaffe and its shim serve. (Keras 3 with its torch backend answers ``'torch'``; the
    tensors here are torch tensors all the same, ``kaffe.engine`` says so in ``tensor.device``.)
    """
    return "tensorflow"


# -- TensorFlow 1 only: sessions and graphs ----------------------------------------------------

class NoSessionError(RuntimeError):
    """A TensorFlow 1 session/graph name; kaffe computes eagerly with torch."""


_NO_SESSION_FIX = {
    "get_session": "read values with K.get_value(x) or x.numpy(); run part of a model with "
                   "K.function([inputs], [outputs]) or keras.Model(inputs, outputs).predict(x)",
    "set_session": "delete the line (device memory is managed by torch; there is no session "
                   "config to set)",
    "get_graph": "delete the graph handling: models are built eagerly, one after another",
    "manual_variable_initialization": "delete the line: weights are initialised when a layer is "
                                      "built",
    "Session": "use K.function or the model directly; values are computed eagerly",
}


def _no_session(name):
    def refuse(*args, **kwargs):
        raise NoSessionError(f"K.{name}: kaffe has no TensorFlow sessions or graphs (it computes "
                             f"eagerly with torch). Instead: {_NO_SESSION_FIX[name]}.")
    refuse.__name__ = name
    refuse.__doc__ = "TensorFlow 1 only: raises ``NoSessionError`` saying what to write instead."
    return refuse


get_session = _no_session("get_session")
set_session = _no_session("set_session")
get_graph = _no_session("get_graph")
manual_variable_initialization = _no_session("manual_variable_initialization")


# -- graph-level and nn functions (their own modules) -----------------------------------------
from kaffe.backend_graph import (function, gradients, is_keras_tensor, is_placeholder,  # noqa: E402
                                 learning_phase, placeholder, set_learning_phase)
from kaffe.backend_nn import (conv1d, conv2d, ctc_batch_cost, ctc_decode, local_conv1d,  # noqa: E402
                              local_conv2d)
from kaffe.engine.naming import clear_session  # noqa: E402


# -- symbolic tensors: record a node instead of computing --------------------------------------

def _static_size(shape):
    if builtins.any(d is None for d in shape):
        return None
    return int(np.prod(shape))


#: K function -> how to write it with kaffe.ops (same meaning), given its bound arguments.
_AS_OPS = {
    "sum": lambda o, x, axis, keepdims: o.sum(x, axis=_axes(axis), keepdims=keepdims),
    "mean": lambda o, x, axis, keepdims: o.mean(x, axis=_axes(axis), keepdims=keepdims),
    "max": lambda o, x, axis, keepdims: o.max(x, axis=_axes(axis), keepdims=keepdims),
    "min": lambda o, x, axis, keepdims: o.min(x, axis=_axes(axis), keepdims=keepdims),
    "prod": lambda o, x, axis, keepdims: o.prod(x, axis=_axes(axis), keepdims=keepdims),
    "std": lambda o, x, axis, keepdims: o.std(x, axis=_axes(axis), keepdims=keepdims),
    "var": lambda o, x, axis, keepdims: o.var(x, axis=_axes(axis), keepdims=keepdims),
    "any": lambda o, x, axis, keepdims: o.any(x, axis=_axes(axis), keepdims=keepdims),
    "all": lambda o, x, axis, keepdims: o.all(x, axis=_axes(axis), keepdims=keepdims),
    "argmax": lambda o, x, axis: o.argmax(x, axis=axis),
    "argmin": lambda o, x, axis: o.argmin(x, axis=axis),
    "square": lambda o, x: o.square(x),
    "sqrt": lambda o, x: o.sqrt(o.maximum(x, 0.0)),
    "abs": lambda o, x: o.abs(x),
    "exp": lambda o, x: o.exp(x),
    "log": lambda o, x: o.log(x),
    "sign": lambda o, x: o.sign(x),
    "cos": lambda o, x: o.cos(x),
    "sin": lambda o, x: o.sin(x),
    "tanh": lambda o, x: o.tanh(x),
    "sigmoid": lambda o, x: o.sigmoid(x),
    "softplus": lambda o, x: o.softplus(x),
    "softsign": lambda o, x: o.softsign(x),
    "softmax": lambda o, x, axis: o.softmax(x, axis=axis),
    "pow": lambda o, x, a: o.power(x, a),
    "maximum": lambda o, x, y: o.maximum(x, y),
    "minimum": lambda o, x, y: o.minimum(x, y),
    "equal": lambda o, x, y: o.equal(x, y),
    "not_equal": lambda o, x, y: o.not_equal(x, y),
    "greater": lambda o, x, y: o.greater(x, y),
    "greater_equal": lambda o, x, y: o.greater_equal(x, y),
    "less": lambda o, x, y: o.less(x, y),
    "less_equal": lambda o, x, y: o.less_equal(x, y),
    "cast": lambda o, x, dtype: o.cast(x, dtype),
    "expand_dims": lambda o, x, axis: o.expand_dims(x, axis),
    "squeeze": lambda o, x, axis: o.squeeze(x, axis=axis),
    "concatenate": lambda o, tensors, axis: o.concatenate(list(tensors), axis=axis),
    "stack": lambda o, x, axis: o.stack(list(x), axis=axis),
    "reshape": lambda o, x, shape: o.reshape(x, tuple(shape)),
    "permute_dimensions": lambda o, x, pattern: o.transpose(x, axes=tuple(pattern)),
    "transpose": lambda o, x: o.transpose(x),
    "flatten": lambda o, x: o.reshape(x, (-1,)),
    "batch_flatten": lambda o, x: (o.reshape(x, (-1, _static_size(x.shape[1:])))
                                   if _static_size(x.shape[1:]) else None),
    "tile": lambda o, x, n: o.tile(x, (n,) if isinstance(n, int) else tuple(n)),
    "one_hot": lambda o, indices, num_classes: o.one_hot(indices, num_classes),
    "cumsum": lambda o, x, axis: o.cumsum(x, axis=axis),
    "cumprod": lambda o, x, axis: o.cumprod(x, axis=axis),
    "zeros_like": lambda o, x, dtype, name: o.zeros_like(x, dtype=dtype),
    "ones_like": lambda o, x, dtype, name: o.ones_like(x, dtype=dtype),
    "l2_normalize": lambda o, x, axis: (o.multiply(x, o.rsqrt(o.maximum(
        o.sum(o.square(x), axis=_axes(axis), keepdims=True), 1e-12))) if axis is not None else None),
}

#: functions that take no tensors, or answer from the shape alone, never record a node.
_NOT_RECORDED = {"shape", "int_shape", "ndim", "dtype", "is_tensor", "is_keras_tensor",
                 "is_placeholder", "function", "gradients", "placeholder", "learning_phase",
                 "set_learning_phase", "clear_session", "epsilon", "floatx", "set_epsilon",
                 "set_floatx", "image_data_format", "set_image_data_format", "backend",
                 "get_uid", "reset_uids", "image_dim_ordering", "set_image_dim_ordering",
                 "get_value", "set_value", "batch_get_value", "batch_set_value", "eval",
                 "get_session", "set_session", "get_graph", "manual_variable_initialization",
                 "update", "update_add", "update_sub", "count_params", "is_sparse",
                 "in_train_phase", "in_test_phase", "switch"}


def _is_symbolic(value):
    if type(value) is KerasTensor:
        return True
    if isinstance(value, (list, tuple)):
        return builtins.any(type(v) is KerasTensor for v in value)
    return False


def _ops_module():
    try:
        import kaffe.ops as ops
    except ImportError:
        return None
    return ops


def _record(fn, args, kwargs):
    """``fn(*args, **kwargs)`` with KerasTensors among the arguments, as a graph node."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    as_ops, ops = _AS_OPS.get(fn.__name__), _ops_module()
    if as_ops is not None and ops is not None:
        node = as_ops(ops, **bound.arguments)
        if node is not None:
            return node
    return _as_lambda(fn, bound)


def _as_lambda(fn, bound):
    """A ``Lambda`` layer calling ``fn`` with the KerasTensors' values put back in place."""
    from kaffe.layers import Lambda
    symbolic = []

    def template(value):
        if type(value) is KerasTensor:
            symbolic.append(value)
            return _Slot(len(symbolic) - 1)
        if isinstance(value, (list, tuple)):
            return type(value)(template(v) for v in value)
        return value
    arguments = {k: template(v) for k, v in bound.arguments.items()}

    def fill(value, values):
        if isinstance(value, _Slot):
            return values[value.index]
        if isinstance(value, (list, tuple)):
            return type(value)(fill(v, values) for v in value)
        return value

    def apply(inputs):
        values = inputs if len(symbolic) > 1 else [inputs]
        return fn(**{k: fill(v, values) for k, v in arguments.items()})
    apply.__name__ = f"K_{fn.__name__}"
    return Lambda(apply)(symbolic[0] if len(symbolic) == 1 else symbolic)


class _Slot:
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


def _graph_aware(fn):
    @functools.wraps(fn)
    def run(*args, **kwargs):
        if builtins.any(map(_is_symbolic, args)) or builtins.any(map(_is_symbolic, kwargs.values())):
            return _record(fn, args, kwargs)
        return fn(*args, **kwargs)
    return run


def _symbolic_answer(fn, answer):
    """``fn``, answering ``answer(x)`` for a KerasTensor from its shape/dtype alone."""
    @functools.wraps(fn)
    def run(x):
        return answer(x) if type(x) is KerasTensor else fn(x)
    return run


shape = _symbolic_answer(shape, lambda x: tuple(x.shape))
ndim = _symbolic_answer(ndim, lambda x: len(x.shape))
dtype = _symbolic_answer(dtype, lambda x: x.dtype)

for _name, _value in list(globals().items()):
    if (inspect.isfunction(_value) and _value.__module__ == __name__
            and not _name.startswith("_") and _name not in _NOT_RECORDED):
        globals()[_name] = _graph_aware(_value)
for _name in ("conv1d", "conv2d", "local_conv1d", "local_conv2d", "ctc_batch_cost", "ctc_decode"):
    globals()[_name] = _graph_aware(globals()[_name])
del _name, _value

