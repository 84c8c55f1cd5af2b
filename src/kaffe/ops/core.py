"""``keras.ops.core``: conversion, casting, shapes, scatter/slice updates and control flow.

Control-flow ops (``cond``, ``while_loop``, ``fori_loop``, ``scan``, ``map``, ``switch``) run
eagerly as Python loops over torch calls, as Keras's torch backend does.
"""
import numpy as np
import torch

from kaffe.engine.keras_tensor import KerasTensor
from kaffe.engine.operation import dtype_name
from kaffe.ops.int_dtypes import from_python_ints
from kaffe.ops.registry import as_dtype, op, tensor, tensors


@op("Cast", module="core")
def cast(x, dtype):
    return tensor(x).to(as_dtype(dtype))


@op("SaturateCast", module="core")
def saturate_cast(x, dtype):
    x = tensor(x)
    dtype = as_dtype(dtype)
    if not dtype.is_floating_point and dtype != torch.bool:
        info = torch.iinfo(dtype)
        x = torch.clamp(x, info.min, info.max)
    return x.to(dtype)


@op("ConvertToTensor", module="core")
def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """Python ints become int32 (Keras's), numpy arrays and tensors keep their dtype."""
    return from_python_ints(x, tensor(x, dtype=as_dtype(dtype)), dtype)


def convert_to_numpy(x):
    """``x`` as a numpy array (copied to the host; detached from autograd)."""
    if type(x) is KerasTensor:
        raise TypeError("convert_to_numpy: a symbolic KerasTensor has no values yet. Call it "
                        "inside a layer, or on the output of model.predict().")
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def is_tensor(x):
    """Whether ``x`` is a torch tensor (Keras's native tensor on the torch backend)."""
    return isinstance(x, torch.Tensor)


def shape(x):
    """The shape as a tuple (None for unknown axes of a symbolic tensor)."""
    if type(x) is KerasTensor:
        return tuple(x.shape)
    return tuple(tensor(x).shape)


def dtype(x):
    """Keras's name of the dtype of ``x`` (``'float32'``...)."""
    if type(x) is KerasTensor:
        return x.dtype
    return dtype_name(tensor(x).dtype)


@op("StopGradient", module="core")
def stop_gradient(variable):
    return tensor(variable).detach()


@op("Scatter", call=2, module="core")
def scatter(indices, values, shape):
    values = tensor(values)
    indices = tensor(indices, device=values.device).long()
    out = torch.zeros(tuple(shape), dtype=values.dtype, device=values.device)
    index = tuple(indices[..., i] for i in range(indices.shape[-1]))
    return out.index_put(index, values, accumulate=True)


@op("ScatterUpdate", call=3, module="core")
def scatter_update(inputs, indices, updates, reduction=None):
    inputs = tensor(inputs)
    indices = tensor(indices, device=inputs.device).long()
    updates = tensor(updates, dtype=inputs.dtype, device=inputs.device)
    index = tuple(indices[..., i] for i in range(indices.shape[-1]))
    if reduction is None:
        return inputs.index_put(index, updates)
    if reduction == "add":
        return inputs.index_put(index, updates, accumulate=True)
    out = inputs.clone()
    current = out[index]
    combined = {"mul": torch.mul, "max": torch.maximum, "min": torch.minimum}[reduction](
        current, updates)
    out[index] = combined
    return out


@op("Slice", call=2, module="core")
def slice(inputs, start_indices, shape):
    x = tensor(inputs)
    starts = [int(s) for s in (start_indices.tolist() if hasattr(start_indices, "tolist")
                               else start_indices)]
    key = tuple(builtin_slice(s, s + (x.shape[i] - s if n == -1 else n))
                for i, (s, n) in enumerate(zip(starts, shape)))
    return x[key]


builtin_slice = __builtins__["slice"] if isinstance(__builtins__, dict) else __builtins__.slice


@op("SliceUpdate", call=3, module="core")
def slice_update(inputs, start_indices, updates):
    x = tensor(inputs)
    updates = tensor(updates, dtype=x.dtype, device=x.device)
    starts = [int(s) for s in (start_indices.tolist() if hasattr(start_indices, "tolist")
                               else start_indices)]
    key = tuple(builtin_slice(s, s + n) for s, n in zip(starts, updates.shape))
    out = x.clone()
    out[key] = updates
    return out


@op("Unstack", module="core")
def unstack(x, num=None, axis=0):
    return list(torch.unbind(tensor(x), dim=axis))


def cond(pred, true_fn, false_fn):
    """``true_fn()`` if ``pred`` else ``false_fn()`` (decided eagerly)."""
    return true_fn() if bool(tensor(pred)) else false_fn()


def switch(index, branches, *operands):
    """``branches[index](*operands)``, the index clamped into range as in Keras."""
    i = int(tensor(index))
    return branches[max(0, min(i, len(branches) - 1))](*operands)


def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """Run ``body`` while ``cond`` holds; loop_vars as a tuple/list or a single value."""
    single = not isinstance(loop_vars, (list, tuple))
    state = (loop_vars,) if single else tuple(loop_vars)
    count = 0
    while bool(tensor(cond(*state))):
        if maximum_iterations is not None and count >= maximum_iterations:
            break
        result = body(*state)
        state = (result,) if single or not isinstance(result, (list, tuple)) else tuple(result)
        count += 1
    return state[0] if single else type(loop_vars)(state) if isinstance(loop_vars, list) else state


def fori_loop(lower, upper, body_fun, init_val):
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``."""
    value = init_val
    for i in range(int(lower), int(upper)):
        value = body_fun(i, value)
    return value


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """``carry, y = f(carry, x)`` over the leading axis of ``xs``; returns ``(carry, stacked ys)``."""
    n = length if xs is None else len(_leading(xs))
    order = range(n - 1, -1, -1) if reverse else range(n)
    carry, ys = init, []
    for i in order:
        x = None if xs is None else _index(xs, i)
        carry, y = f(carry, x)
        ys.append(y)
    if reverse:
        ys.reverse()
    return carry, _stack(ys)


def map(f, xs):
    """``f`` applied to each entry along the leading axis of ``xs``, results stacked."""
    return _stack([f(_index(xs, i)) for i in range(len(_leading(xs)))])


def vectorized_map(function, elements):
    """``function`` applied to each element along the leading axis (a loop; results stacked)."""
    return map(function, elements)


def associative_scan(f, elems, reverse=False, axis=0):
    """Inclusive scan of ``elems`` with the associative ``f`` (sequentially, along ``axis``)."""
    x = tensor(elems)
    parts = list(torch.unbind(x, dim=axis))
    if reverse:
        parts.reverse()
    out = [parts[0]]
    for part in parts[1:]:
        out.append(f(out[-1], part))
    if reverse:
        out.reverse()
    return torch.stack(out, dim=axis)


def custom_gradient(f):
    """Decorate ``f(*args) -> (y, grad_fn)`` so autograd uses ``grad_fn(upstream)``."""
    def wrapped(*args):
        class _Function(torch.autograd.Function):
            @staticmethod
            def forward(ctx, *inputs):
                with torch.enable_grad():
                    y, grad_fn = f(*inputs)
                ctx.grad_fn = grad_fn
                return y.detach() if isinstance(y, torch.Tensor) else y

            @staticmethod
            def backward(ctx, *upstream):
                grads = ctx.grad_fn(*upstream)
                return grads if isinstance(grads, tuple) else (grads,)
        return _Function.apply(*args)
    return wrapped


def jvp(fun, primals, tangents, has_aux=False):
    """Forward-mode product: ``(fun(*primals), J @ tangents)`` (and ``aux``) via torch.func."""
    primals = tuple(tensor(p) for p in primals)
    tangents = tuple(tensor(t) for t in tangents)
    return torch.func.jvp(fun, primals, tangents, has_aux=has_aux)


def _leading(xs):
    if isinstance(xs, (list, tuple)):
        return _leading(xs[0])
    if isinstance(xs, dict):
        return _leading(next(iter(xs.values())))
    return tensor(xs)


def _index(xs, i):
    if isinstance(xs, (list, tuple)):
        return type(xs)(_index(x, i) for x in xs)
    if isinstance(xs, dict):
        return {k: _index(v, i) for k, v in xs.items()}
    return tensor(xs)[i]


def _stack(items):
    first = items[0] if items else None
    if isinstance(first, (list, tuple)):
        return type(first)(_stack([it[j] for it in items]) for j in range(len(first)))
    if isinstance(first, dict):
        return {k: _stack([it[k] for it in items]) for k in first}
    if first is None:
        return None
    return torch.stack(tensors(*items))
