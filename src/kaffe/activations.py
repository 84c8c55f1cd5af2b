"""``keras.activations``: Keras's activation functions, by name and as functions.

Each function takes Keras 3's arguments. On a torch tensor it runs torch directly (layers call
their activation every step); on anything else, a numpy array or a symbolic ``KerasTensor`` of
a functional graph, it goes through ``kaffe.ops``, which records an op node as Keras 3 does.
``get(name)`` gives the function a layer stores; for the argument-free ones that is torch's own
function (``torch.relu``, ``torch.sigmoid``, ...), which the trainer and the recurrent layers
recognise to fuse work, so ``get(activations.relu)`` gives ``torch.relu`` too.
Softmax and log-softmax act on the last axis, as in Keras.
"""
import torch
import torch.nn.functional as F


def _ops():
    from kaffe import ops  # ops builds on the engine, which builds on this module
    return ops


def _eager(x):
    return type(x) is torch.Tensor


def _elementwise(name, fast):
    """Keras's ``activations.<name>(x)``: ``fast`` on a tensor, ``kaffe.ops.<name>`` otherwise."""
    def activation(x):
        return fast(x) if _eager(x) else getattr(_ops(), name)(x)
    activation.__name__ = activation.__qualname__ = name
    activation.__doc__ = f"Keras's ``activations.{name}``, element-wise."
    return activation


# name -> torch's function of one float tensor (what get(name) returns)
_TORCH = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
          "softplus": F.softplus, "silu": F.silu, "softsign": F.softsign, "selu": F.selu,
          "relu6": F.relu6, "log_sigmoid": F.logsigmoid, "hard_tanh": F.hardtanh,
          "tanh_shrink": F.tanhshrink, "hard_silu": F.hardswish}
sigmoid, tanh, softplus, silu, softsign, selu, relu6, log_sigmoid, hard_tanh, tanh_shrink, \
    hard_silu = (_elementwise(n, _TORCH[n]) for n in (
        "sigmoid", "tanh", "softplus", "silu", "softsign", "selu", "relu6", "log_sigmoid",
        "hard_tanh", "tanh_shrink", "hard_silu"))
swish, hard_swish = silu, hard_silu


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0, alpha=None):
    """Keras's rectifier: ``max(x, 0)``; with ``threshold`` values up to it give 0, with
    ``max_value`` the output is clipped, with ``negative_slope`` (Keras 2: ``alpha``) values
    below the threshold leak with that slope."""
    if alpha is not None:
        negative_slope = alpha
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return torch.relu(x) if _eager(x) else _ops().relu(x)
    ops = _ops()
    if negative_slope != 0.0 and max_value is None and threshold == 0.0:
        return ops.leaky_relu(x, negative_slope)
    negative = ops.relu(ops.subtract(threshold, x)) if negative_slope != 0.0 else None
    if threshold != 0.0:
        x = ops.where(ops.greater(x, threshold), x, 0.0)
    else:
        x = ops.relu(x)
    if max_value is not None:
        x = ops.clip(x, 0.0, float(max_value))
    if negative is not None:
        x = ops.subtract(x, ops.multiply(negative_slope, negative))
    return x


def linear(x):
    return x


def softmax(x, axis=-1):
    return torch.softmax(x, dim=axis) if _eager(x) else _ops().softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return torch.log_softmax(x, dim=axis) if _eager(x) else _ops().log_softmax(x, axis=axis)


def hard_sigmoid(x):
    # Keras 3 definition: relu6(x + 3) / 6.
    return F.relu6(x + 3.0) / 6.0 if _eager(x) else _ops().hard_sigmoid(x)


def exponential(x):
    return torch.exp(x) if _eager(x) else _ops().exp(x)


def leaky_relu(x, negative_slope=0.2):
    return F.leaky_relu(x, negative_slope) if _eager(x) else _ops().leaky_relu(x, negative_slope)


def gelu(x, approximate=False):
    # Keras 3's activation 'gelu' is the exact (erf) form unless approximate=True.
    if _eager(x):
        return F.gelu(x, approximate="tanh" if approximate else "none")
    return _ops().gelu(x, approximate=approximate)


def elu(x, alpha=1.0):
    return F.elu(x, alpha) if _eager(x) else _ops().elu(x, alpha)


def celu(x, alpha=1.0):
    return _ops().celu(x, alpha)


def glu(x, axis=-1):
    return _ops().glu(x, axis=axis)


def hard_shrink(x, threshold=0.5):
    return _ops().hard_shrink(x, threshold)


def soft_shrink(x, threshold=0.5):
    return _ops().soft_shrink(x, threshold)


def threshold(x, threshold, default_value):
    return _ops().threshold(x, threshold, default_value)


def squareplus(x, b=4):
    return _ops().squareplus(x, b)


def sparsemax(x, axis=-1):
    return _ops().sparsemax(x, axis=axis)


def sparse_plus(x):
    return _ops().sparse_plus(x)


def sparse_sigmoid(x):
    return _ops().sparse_sigmoid(x)


def mish(x):
    if _eager(x):
        return F.mish(x)
    ops = _ops()
    return ops.multiply(x, ops.tanh(ops.softplus(x)))


ALL = {
    **_TORCH,
    "linear": linear, "softmax": softmax, "log_softmax": log_softmax, "elu": elu,
    "gelu": gelu, "swish": F.silu, "mish": mish, "exponential": exponential,
    "hard_sigmoid": hard_sigmoid, "hard_swish": F.hardswish, "leaky_relu": leaky_relu,
    "celu": celu, "glu": glu, "hard_shrink": hard_shrink, "soft_shrink": soft_shrink,
    "squareplus": squareplus, "sparsemax": sparsemax, "sparse_plus": sparse_plus,
    "sparse_sigmoid": sparse_sigmoid, "threshold": threshold,
}

# the public wrapper of an argument-free activation -> the torch function get() stores
_TO_TORCH = {globals()[name]: fn for name, fn in _TORCH.items()}
_NAMES = {fn: name for name, fn in reversed(list(ALL.items()))}
_NAMES.update({wrapper: _NAMES[fn] for wrapper, fn in _TO_TORCH.items()})


def get(identifier):
    """Resolve ``None``, a Keras activation name, a serialized activation or a callable."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        try:
            return ALL[identifier.lower()]
        except KeyError:
            raise ValueError(
                f"Unknown activation {identifier!r}. Valid names: {', '.join(sorted(ALL))}."
            ) from None
    if isinstance(identifier, dict) and "class_name" in identifier:
        return get(identifier.get("config", identifier["class_name"]))
    if callable(identifier):
        return _TO_TORCH.get(identifier, identifier)
    raise ValueError(f"Could not interpret activation {identifier!r}: expected a name or a callable.")


deserialize = get


def serialize(fn):
    """The Keras name of an activation, or the function's own name for custom ones."""
    return _NAMES.get(fn, getattr(fn, "__name__", str(fn)))
