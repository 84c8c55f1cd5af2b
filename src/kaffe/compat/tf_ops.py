"""TensorFlow's math, shape and ``tf.nn`` names written with ``kaffe.ops``, for the
``tensorflow`` stand-in of ``kaffe run``.

Each entry keeps TensorFlow's argument names and defaults (``tf.reduce_sum(input_tensor,
axis=None, keepdims=False)``, ``tf.concat(values, axis)``) and calls the ``kaffe.ops`` op of the
same meaning, so it works eagerly on tensors and arrays and records a graph node on a
``KerasTensor``. ``tf.shape(x)`` is a tuple of ints (``None`` for unknown symbolic axes), as
``keras.ops.shape``; TensorFlow gives an int32 tensor, used the same way (``tf.shape(x)[0]``).
Shapes given to ``tf.zeros`` / ``tf.random.normal`` may be tuples, lists or tensors.
"""
import numpy as np
import torch
import torch.nn.functional as F

import kaffe.ops as ops
from kaffe.engine.keras_tensor import KerasTensor


def _shape(shape):
    """A shape given as ints, 0-d tensors, a tuple/list or a 1-d tensor -> a tuple of ints."""
    if isinstance(shape, torch.Tensor):
        return tuple(int(d) for d in shape.reshape(-1).tolist())
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def _axis(axis):
    if isinstance(axis, torch.Tensor):
        axis = axis.tolist()
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _reduction(op):
    def reduce(input_tensor, axis=None, keepdims=False, name=None):
        return op(input_tensor, axis=_axis(axis), keepdims=keepdims)
    reduce.__name__ = f"reduce_{op.__name__}"
    reduce.__doc__ = f"TensorFlow's reduction over ``axis`` (all axes when None), via ops.{op.__name__}."
    return reduce


def _unary(op):
    def apply(x, name=None):
        return op(x)
    apply.__name__ = op.__name__
    return apply


def _binary(op):
    def apply(x, y, name=None):
        return op(x, y)
    apply.__name__ = op.__name__
    return apply


def shape(input, out_type=None, name=None):
    """The shape as a tuple of ints (see module doc)."""
    return ops.shape(input)


def size(input, out_type=None, name=None):
    return ops.size(input)


def rank(input, name=None):
    return ops.ndim(input)


def concat(values, axis, name="concat"):
    return ops.concatenate(list(values), axis=axis)


def stack(values, axis=0, name="stack"):
    return ops.stack(list(values), axis=axis)


def unstack(value, num=None, axis=0, name="unstack"):
    return ops.unstack(value, num=num, axis=axis)


def reshape(tensor, shape, name=None):
    return ops.reshape(tensor, shape if type(tensor) is KerasTensor and not isinstance(
        shape, torch.Tensor) else _shape(shape))


def cast(x, dtype, name=None):
    from kaffe.compat.tensorflow_shim import torch_dtype
    return ops.cast(x, torch_dtype(dtype))


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype=None, name=None):
    """``on_value`` (1) where ``indices`` says, ``off_value`` (0) elsewhere; float32 unless
    ``dtype`` says otherwise."""
    from kaffe.compat.tensorflow_shim import torch_dtype
    out = ops.one_hot(indices, depth, axis=-1 if axis is None else axis)
    if on_value is not None or off_value is not None:
        on = 1.0 if on_value is None else on_value
        off = 0.0 if off_value is None else off_value
        out = ops.add(ops.multiply(out, on - off), off)
    return out if dtype is None else ops.cast(out, torch_dtype(dtype))


def where(condition, x=None, y=None, name=None):
    if x is None and y is None:
        return torch.nonzero(torch.as_tensor(condition))  # TF: (num_true, rank) indices
    return ops.where(condition, x, y)


def _constructor(op):
    def make(shape, dtype=None, name=None):
        from kaffe.compat.tensorflow_shim import torch_dtype
        return op(_shape(shape), dtype=torch_dtype(dtype) or torch.float32)
    make.__name__ = op.__name__
    return make


def _like(op):
    def make(input, dtype=None, name=None):
        from kaffe.compat.tensorflow_shim import torch_dtype
        return op(input, dtype=torch_dtype(dtype))
    make.__name__ = op.__name__
    return make


def fill(dims, value, name=None):
    return torch.full(_shape(dims), value)


def range_(start, limit=None, delta=1, dtype=None, name="range"):
    from kaffe.compat.tensorflow_shim import torch_dtype
    if limit is None:
        start, limit = 0, start
    return ops.arange(start, limit, delta, dtype=torch_dtype(dtype))


def _is_text(value):
    """A string batch (kaffe keeps text as NumPy string arrays; torch tensors hold numbers)."""
    return isinstance(value, (str, bytes)) or (
        isinstance(value, np.ndarray) and value.dtype.kind in "OUS")


def expand_dims(input, axis, name=None):
    if _is_text(input):  # tf.expand_dims(text_batch, -1) before a TextVectorization layer
        return np.expand_dims(input, axis)
    return ops.expand_dims(input, axis)


def squeeze(input, axis=None, name=None):
    if _is_text(input):
        return np.squeeze(input, axis=_axis(axis))
    return ops.squeeze(input, axis=_axis(axis))


def transpose(a, perm=None, conjugate=False, name="transpose"):
    return ops.transpose(a, axes=None if perm is None else tuple(perm))


def tile(input, multiples, name=None):
    return ops.tile(input, _shape(multiples) if not isinstance(multiples, tuple) else multiples)


def gather(params, indices, axis=None, batch_dims=0, name=None):
    return ops.take(params, indices, axis=0 if axis is None else axis)


def argmax(input, axis=None, output_type="int64", name=None):
    """TensorFlow's ``tf.argmax``: int64 unless ``output_type`` says otherwise (Keras's
    ``ops.argmax`` gives int32)."""
    return cast(ops.argmax(input, axis=0 if axis is None else axis), output_type or "int64")


def argmin(input, axis=None, output_type="int64", name=None):
    """TensorFlow's ``tf.argmin``: int64 unless ``output_type`` says otherwise."""
    return cast(ops.argmin(input, axis=0 if axis is None else axis), output_type or "int64")


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    return ops.clip(t, clip_value_min, clip_value_max)


def matmul(a, b, transpose_a=False, transpose_b=False, name=None, **kwargs):
    if transpose_a:
        a = ops.swapaxes(a, -1, -2)
    if transpose_b:
        b = ops.swapaxes(b, -1, -2)
    return ops.matmul(a, b)


def tensordot(a, b, axes, name=None):
    return ops.tensordot(a, b, axes=axes)


def einsum(equation, *inputs, **kwargs):
    return ops.einsum(equation, *inputs)


def split(value, num_or_size_splits, axis=0, num=None, name="split"):
    if isinstance(num_or_size_splits, int):
        return ops.split(value, num_or_size_splits, axis=axis)
    boundaries = np.cumsum(list(num_or_size_splits))[:-1].tolist()
    return ops.split(value, boundaries, axis=axis)


def norm(tensor, ord="euclidean", axis=None, keepdims=None, name=None):
    return ops.norm(tensor, ord=None if ord == "euclidean" else ord, axis=_axis(axis),
                    keepdims=bool(keepdims))


def l2_normalize(x, axis=None, epsilon=1e-12, name=None, dim=None):
    axis = dim if axis is None else axis
    squares = ops.sum(ops.square(x), axis=_axis(axis), keepdims=True)
    return ops.multiply(x, ops.rsqrt(ops.maximum(squares, epsilon)))


def identity(input, name=None):
    return ops.identity(input)


def stop_gradient(input, name=None):
    return ops.stop_gradient(input)


def reduce_std(input_tensor, axis=None, keepdims=False, name=None):
    return ops.std(input_tensor, axis=_axis(axis), keepdims=keepdims)


def reduce_variance(input_tensor, axis=None, keepdims=False, name=None):
    return ops.var(input_tensor, axis=_axis(axis), keepdims=keepdims)


def reduce_logsumexp(input_tensor, axis=None, keepdims=False, name=None):
    return ops.logsumexp(input_tensor, axis=_axis(axis), keepdims=keepdims)


def pow(x, y, name=None):
    return ops.power(x, y)


def divide(x, y, name=None):
    return ops.divide(x, y)


def cumsum(x, axis=0, exclusive=False, reverse=False, name=None):
    if exclusive or reverse:
        raise NotImplementedError("kaffe's tf.cumsum has no exclusive/reverse; use "
                                  "ops.flip and subtract x instead.")
    return ops.cumsum(x, axis=axis)


def reverse(tensor, axis, name=None):
    return ops.flip(tensor, axis=_axis(axis))


# -- tf.nn --------------------------------------------------------------------------------------

def softmax(logits, axis=None, name=None):
    return ops.softmax(logits, axis=-1 if axis is None else axis)


def log_softmax(logits, axis=None, name=None):
    return ops.log_softmax(logits, axis=-1 if axis is None else axis)


def leaky_relu(features, alpha=0.2, name=None):
    return ops.leaky_relu(features, negative_slope=alpha)


def sigmoid_cross_entropy_with_logits(labels=None, logits=None, name=None):
    """Element-wise ``max(x, 0) - x * z + log(1 + exp(-|x|))``."""
    return ops.add(ops.subtract(ops.relu(logits), ops.multiply(logits, labels)),
                   ops.log1p(ops.exp(ops.negative(ops.abs(logits)))))


def softmax_cross_entropy_with_logits(labels, logits, axis=-1, name=None):
    return ops.categorical_crossentropy(labels, logits, from_logits=True, axis=axis)


def sparse_softmax_cross_entropy_with_logits(labels=None, logits=None, name=None):
    return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def moments(x, axes, shift=None, keepdims=False, name=None):
    return ops.moments(x, axes=list(axes), keepdims=keepdims)


def dropout(x, rate, noise_shape=None, seed=None, name=None):
    """Drop with probability ``rate``, scale the rest by ``1 / (1 - rate)`` (always on, as
    ``tf.nn.dropout``)."""
    x = torch.as_tensor(x)
    keep = (torch.rand_like(x) >= rate).to(x.dtype)
    return x * keep / (1.0 - rate)


def bias_add(value, bias, data_format=None, name=None):
    return ops.add(value, bias)


def _spatial(value, n, channels_last, what):
    """TF's ``strides``/``dilations``: an int, or a list of 1, N or N + 2 ints (the N + 2 form
    includes batch and channel entries, which must be 1) -> N ints."""
    values = [value] if isinstance(value, int) else [int(v) for v in value]
    if len(values) == 1:
        return tuple(values) * n
    if len(values) == n:
        return tuple(values)
    if len(values) == n + 2:
        return tuple(values[1:-1] if channels_last else values[2:])
    raise ValueError(f"tf.nn.conv{n}d {what}={value!r}: expected an int or a list of 1, {n} or "
                     f"{n + 2} ints.")


def _tf_conv(n, layouts):
    """``tf.nn.conv1d`` / ``conv2d``: NWC/NHWC (or NCW/NCHW) input, a (k..., in, out) filter
    (TF's HWIO, Keras's kernel layout), padding 'SAME'/'VALID' or explicit (before, after)
    pairs for every axis."""
    def conv_nd(input, filters, strides, padding, data_format=None, dilations=None, name=None):
        fmt = (data_format or layouts[0]).upper()
        if fmt not in layouts:
            raise ValueError(f"tf.nn.conv{n}d data_format={data_format!r}: expected one of "
                             f"{list(layouts)}.")
        last = fmt == layouts[0]
        strides = _spatial(strides, n, last, "strides")
        dilations = _spatial(1 if dilations is None else dilations, n, last, "dilations")
        if not isinstance(padding, str):
            pairs = [tuple(int(p) for p in pair) for pair in padding]
            if len(pairs) != n + 2:
                raise ValueError(f"tf.nn.conv{n}d explicit padding {padding!r}: expected "
                                 f"{n + 2} (before, after) pairs, one per axis of {fmt}.")
            input, padding = ops.pad(input, pairs), "valid"
        if padding.lower() not in ("same", "valid"):
            raise ValueError(f"tf.nn.conv{n}d padding={padding!r}: expected 'SAME', 'VALID' "
                             "or a list of (before, after) pairs.")
        return ops.conv(input, filters, strides=strides, padding=padding.lower(),
                        data_format="channels_last" if last else "channels_first",
                        dilation_rate=dilations)
    conv_nd.__name__ = f"conv{n}d"
    return conv_nd


_conv2d = _tf_conv(2, ("NHWC", "NCHW"))
_conv1d_strides = _tf_conv(1, ("NWC", "NCW"))


def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None, name=None):
    return _conv2d(input, filters, strides, padding, data_format, dilations)


def conv1d(input, filters, stride, padding, data_format="NWC", dilations=None, name=None):
    return _conv1d_strides(input, filters, stride, padding, data_format, dilations)


# -- tf.random ----------------------------------------------------------------------------------

def _generator(seed):
    return None if seed is None else torch.Generator().manual_seed(int(seed))


def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None, name=None):
    from kaffe.compat.tensorflow_shim import torch_dtype
    out = torch.randn(_shape(shape), generator=_generator(seed),
                      dtype=torch_dtype(dtype) or torch.float32)
    return out * stddev + mean


def random_uniform(shape, minval=0, maxval=None, dtype=None, seed=None, name=None):
    from kaffe.compat.tensorflow_shim import torch_dtype
    dtype = torch_dtype(dtype) or torch.float32
    if not dtype.is_floating_point:
        if maxval is None:
            raise ValueError("tf.random.uniform with an integer dtype needs maxval.")
        return torch.randint(int(minval), int(maxval), _shape(shape), generator=_generator(seed),
                             dtype=dtype)
    maxval = 1.0 if maxval is None else maxval
    out = torch.rand(_shape(shape), generator=_generator(seed), dtype=dtype)
    return out * (maxval - minval) + minval


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None, name=None):
    from kaffe.compat.tensorflow_shim import torch_dtype
    out = torch.empty(_shape(shape), dtype=torch_dtype(dtype) or torch.float32)
    torch.nn.init.trunc_normal_(out, 0.0, 1.0, -2.0, 2.0, generator=_generator(seed))
    return out * stddev + mean


def random_shuffle(value, seed=None, name=None):
    value = torch.as_tensor(value)
    return value[torch.randperm(value.shape[0], generator=_generator(seed))]


def categorical(logits, num_samples, dtype=None, seed=None, name=None):
    probs = torch.softmax(torch.as_tensor(logits).float(), dim=-1)
    return torch.multinomial(probs, num_samples, replacement=True, generator=_generator(seed))


# -- the tables the stand-in module is built from ----------------------------------------------

_REDUCTIONS = {f"reduce_{n}": _reduction(getattr(ops, n))
               for n in ("sum", "mean", "max", "min", "prod", "any", "all")}
_UNARY = {n: _unary(getattr(ops, n)) for n in (
    "square", "sqrt", "exp", "log", "abs", "sign", "negative", "reciprocal", "sin", "cos", "tan",
    "tanh", "sigmoid", "floor", "ceil", "round", "log1p", "expm1", "rsqrt", "softplus", "erf",
    "logical_not")}
_UNARY.update(is_nan=_unary(ops.isnan), is_finite=_unary(ops.isfinite), is_inf=_unary(ops.isinf))
_BINARY = {n: _binary(getattr(ops, n)) for n in (
    "add", "subtract", "multiply", "maximum", "minimum", "equal", "not_equal", "greater",
    "greater_equal", "less", "less_equal", "logical_and", "logical_or", "divide_no_nan",
    "floor_divide")}
_BINARY.update(truediv=_binary(ops.true_divide), floordiv=_binary(ops.floor_divide),
               squared_difference=lambda x, y, name=None: ops.square(ops.subtract(x, y)))

#: ``tf.<name>``
TOP_LEVEL = {
    **_REDUCTIONS, **_UNARY, **_BINARY,
    "reduce_logsumexp": reduce_logsumexp, "shape": shape, "size": size, "rank": rank,
    "concat": concat, "stack": stack, "unstack": unstack, "reshape": reshape, "cast": cast,
    "one_hot": one_hot, "where": where, "zeros": _constructor(ops.zeros),
    "ones": _constructor(ops.ones), "zeros_like": _like(ops.zeros_like),
    "ones_like": _like(ops.ones_like), "fill": fill, "range": range_,
    "expand_dims": expand_dims, "squeeze": squeeze, "transpose": transpose, "tile": tile,
    "gather": gather, "argmax": argmax, "argmin": argmin, "clip_by_value": clip_by_value,
    "matmul": matmul, "tensordot": tensordot, "einsum": einsum, "split": split, "norm": norm,
    "identity": identity, "stop_gradient": stop_gradient, "pow": pow, "divide": divide,
    "cumsum": cumsum, "reverse": reverse, "sort": lambda values, axis=-1, direction="ASCENDING",
    name=None: ops.flip(ops.sort(values, axis=axis), axis=axis) if direction == "DESCENDING"
    else ops.sort(values, axis=axis),
}

#: ``tf.math.<name>``
MATH = {
    **_REDUCTIONS, **_UNARY, **_BINARY, "reduce_logsumexp": reduce_logsumexp,
    "reduce_std": reduce_std, "reduce_variance": reduce_variance, "pow": pow, "divide": divide,
    "argmax": argmax, "argmin": argmin, "cumsum": cumsum, "l2_normalize": l2_normalize,
    "top_k": lambda input, k=1, sorted=True, name=None: ops.top_k(input, k, sorted=sorted),
}

#: ``tf.nn.<name>``
NN = {
    "relu": _unary(ops.relu), "relu6": _unary(ops.relu6), "elu": _unary(ops.elu),
    "selu": _unary(ops.selu), "gelu": lambda features, approximate=False, name=None:
    ops.gelu(features, approximate=approximate), "silu": _unary(ops.silu),
    "swish": _unary(ops.silu), "sigmoid": _unary(ops.sigmoid), "tanh": _unary(ops.tanh),
    "softplus": _unary(ops.softplus), "softsign": _unary(ops.softsign),
    "softmax": softmax, "log_softmax": log_softmax, "leaky_relu": leaky_relu,
    "l2_normalize": l2_normalize, "moments": moments, "dropout": dropout, "bias_add": bias_add,
    "conv1d": conv1d, "conv2d": conv2d,
    "sigmoid_cross_entropy_with_logits": sigmoid_cross_entropy_with_logits,
    "softmax_cross_entropy_with_logits": softmax_cross_entropy_with_logits,
    "sparse_softmax_cross_entropy_with_logits": sparse_softmax_cross_entropy_with_logits,
}

#: ``tf.random.<name>`` (``set_seed`` is added by the shim)
def random_gamma(shape, alpha, beta=None, dtype=None, seed=None, name=None):
    """``tf.random.gamma``: Gamma(alpha, rate=beta) draws of shape ``shape + broadcast(alpha,
    beta).shape`` (one batch of draws per alpha, as TensorFlow; keras.io's mixup draws its
    Beta weights from two of these)."""
    from kaffe.compat.tensorflow_shim import torch_dtype
    out_dtype = torch_dtype(dtype) or torch.float32
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    rate = torch.ones_like(alpha) if beta is None else torch.as_tensor(beta, dtype=torch.float64)
    distribution = torch.distributions.Gamma(*torch.broadcast_tensors(alpha, rate))
    if seed is None:
        return distribution.sample(_shape(shape)).to(out_dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return distribution.sample(_shape(shape)).to(out_dtype)


RANDOM = {"normal": random_normal, "uniform": random_uniform,
          "truncated_normal": truncated_normal, "shuffle": random_shuffle,
          "categorical": categorical, "gamma": random_gamma}

#: ``tf.linalg.<name>``
LINALG = {"matmul": matmul, "norm": norm, "l2_normalize": l2_normalize,
          "inv": _unary(ops.inv), "det": _unary(ops.det), "einsum": einsum,
          "diag_part": lambda input, name=None: ops.diagonal(input, axis1=-2, axis2=-1),
          "trace": lambda x, name=None: ops.trace(x, axis1=-2, axis2=-1)}
