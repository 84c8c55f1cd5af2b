"""Activation functions by Keras name, as torch functions of one tensor.

``get('relu')`` returns the function; ``serialize(fn)`` gives its name back for configs.
Softmax and log-softmax act on the last axis, as in Keras.
"""
import torch
import torch.nn.functional as F


def linear(x):
    return x


def softmax(x, axis=-1):
    return torch.softmax(x, dim=axis)


def log_softmax(x, axis=-1):
    return torch.log_softmax(x, dim=axis)


def hard_sigmoid(x):
    # Keras 3 definition: relu6(x + 3) / 6.
    return F.relu6(x + 3.0) / 6.0


def hard_silu(x):
    return x * hard_sigmoid(x)


def exponential(x):
    return torch.exp(x)


def relu6(x):
    return F.relu6(x)


def leaky_relu(x, negative_slope=0.2):
    return F.leaky_relu(x, negative_slope)


def gelu(x, approximate=False):
    # Keras 3's activation 'gelu' is the exact (erf) form unless approximate=True.
    return F.gelu(x, approximate="tanh" if approximate else "none")


def selu(x):
    return F.selu(x)


def elu(x, alpha=1.0):
    return F.elu(x, alpha)


def softsign(x):
    return F.softsign(x)


def mish(x):
    return F.mish(x)


ALL = {
    "linear": linear,
    "relu": torch.relu,
    "relu6": relu6,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "softplus": F.softplus,
    "softsign": softsign,
    "elu": elu,
    "selu": selu,
    "gelu": gelu,
    "silu": F.silu,
    "swish": F.silu,
    "mish": mish,
    "exponential": exponential,
    "hard_sigmoid": hard_sigmoid,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "leaky_relu": leaky_relu,
}

_NAMES = {fn: name for name, fn in reversed(list(ALL.items()))}


def get(identifier):
    """Resolve ``None``, a Keras activation name or a callable to a function."""
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
        return identifier
    raise ValueError(f"Could not interpret activation {identifier!r}: expected a name or a callable.")


def serialize(fn):
    """The Keras name of an activation, or the function's own name for custom ones."""
    return _NAMES.get(fn, getattr(fn, "__name__", str(fn)))
