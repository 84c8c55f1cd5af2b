"""Loss functions and ``Loss`` objects with Keras 3's semantics, computed with torch ops.

Two forms, as in Keras:

* functions ``f(y_true, y_pred) -> per-sample tensor``: they reduce the last axis only, so a
  ``(batch, d)`` input gives ``(batch,)`` and a ``(batch, time, d)`` input ``(batch, time)``;
* ``Loss`` objects: ``loss(y_true, y_pred, sample_weight=None)`` applies such a function,
  weights it and reduces it to a scalar with Keras 3's reductions.

Everything runs on the device of ``y_pred``, never syncs with the host and is differentiable.
The training engine should call :func:`get_loss_object` once at ``compile`` time and then
``loss_obj(y_true, y_pred, sample_weight)`` every step.
"""
import math
import warnings

import torch
import torch.nn.functional as F

from kaffe import config

_REDUCTIONS = ("sum_over_batch_size", "sum", "none", "mean", "mean_with_sample_weight")


# ---------------------------------------------------------------------------------------------
# Shared tensor helpers (also used by kaffe.metrics)
# ---------------------------------------------------------------------------------------------

def _floatx_dtype():
    return getattr(torch, config.floatx())


def as_tensor(x, dtype=None, device=None):
    """Return ``x`` as a torch tensor; non-float data default to ``floatx`` only if ``dtype`` says so."""
    if isinstance(x, torch.Tensor):
        if (dtype is not None and x.dtype != dtype) or (device is not None and x.device != device):
            x = x.to(device=device, dtype=dtype)
        return x
    t = torch.as_tensor(x, device=device)
    if dtype is not None:
        t = t.to(dtype)
    elif t.dtype == torch.float64:
        t = t.to(_floatx_dtype())
    return t


def prediction_tensor(y_pred):
    """``y_pred`` as a floating tensor in ``floatx`` (half-precision outputs are upcast, as Keras does)."""
    y_pred = as_tensor(y_pred)
    if y_pred.dtype != _floatx_dtype():
        y_pred = y_pred.to(_floatx_dtype())
    return y_pred


def _pair(y_true, y_pred):
    """Both as tensors on ``y_pred``'s device, ``y_true`` in ``y_pred``'s dtype, ranks matched."""
    y_pred = as_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(_floatx_dtype())
    y_true = as_tensor(y_true, dtype=y_pred.dtype, device=y_pred.device)
    return match_rank(y_true, y_pred)


def match_rank(x1, x2, expand_rank_1=True):
    """Squeeze or expand a trailing axis of size 1 when the ranks differ by exactly one (Keras rule)."""
    r1, r2 = x1.dim(), x2.dim()
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2.unsqueeze(-1)
        else:
            x1 = x1.squeeze(-1)
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1.unsqueeze(-1)
        else:
            x2 = x2.squeeze(-1)
    return x1, x2


def divide_no_nan(num, den):
    """``num / den`` with 0 where ``den == 0`` (gradient-safe; ``num`` may be a Python number)."""
    zero = den == 0
    safe = torch.where(zero, torch.ones_like(den), den)
    return torch.where(zero, torch.zeros_like(safe), num / safe)


# ---------------------------------------------------------------------------------------------
# Per-sample loss functions
# ---------------------------------------------------------------------------------------------

def mean_squared_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return torch.mean(torch.square(y_true - y_pred), dim=-1)


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return torch.mean(torch.abs(y_true - y_pred), dim=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    diff = torch.abs((y_true - y_pred) / torch.clamp(torch.abs(y_true), min=config.epsilon()))
    return 100.0 * torch.mean(diff, dim=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    eps = config.epsilon()
    first = torch.log(torch.clamp(y_pred, min=eps) + 1.0)
    second = torch.log(torch.clamp(y_true, min=eps) + 1.0)
    return torch.mean(torch.square(first - second), dim=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Mean over ``axis`` of the element-wise binary cross-entropy.

    Probabilities are clipped to ``[eps, 1 - eps]`` first (Keras); ``from_logits=True`` uses the
    numerically stable ``binary_cross_entropy_with_logits``.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        elementwise = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:
        eps = config.epsilon()
        p = torch.clamp(y_pred, eps, 1.0 - eps)
        elementwise = -(y_true * torch.log(p) + (1.0 - y_true) * torch.log(1.0 - p))
    return torch.mean(elementwise, dim=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """``-sum(y_true * log(p))`` over ``axis``, with ``p`` renormalised and clipped as Keras does."""
    if isinstance(axis, bool):
        raise ValueError(f"axis must be an integer. Received: axis={axis!r}")
    y_true, y_pred = _pair(y_true, y_pred)
    if y_pred.shape[-1] == 1:
        warnings.warn(
            "categorical_crossentropy expects y_pred of shape (batch, num_classes) with "
            f"num_classes > 1, received {tuple(y_pred.shape)}; use binary_crossentropy for one "
            "output unit.", SyntaxWarning, stacklevel=2)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "categorical_crossentropy expected y_true and y_pred of the same shape, received "
            f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}; for integer labels use "
            "sparse_categorical_crossentropy.")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[axis]
    if from_logits:
        log_prob = F.log_softmax(y_pred, dim=axis)
    else:
        eps = config.epsilon()
        p = y_pred / torch.sum(y_pred, dim=axis, keepdim=True)
        log_prob = torch.log(torch.clamp(p, eps, 1.0 - eps))
    return -torch.sum(y_true * log_prob, dim=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Cross-entropy against integer labels (shape ``(batch,)`` or ``(batch, 1)``, int or float).

    Entries whose label equals ``ignore_class`` give 0; the ``SparseCategoricalCrossentropy``
    object also leaves them out of the mean, as Keras does.
    """
    y_pred = prediction_tensor(y_pred)
    y_true = as_tensor(y_true, device=y_pred.device)
    if y_true.dim() == y_pred.dim() and y_true.shape[axis] == 1:
        y_true = y_true.squeeze(axis)
    labels = y_true.long()
    valid = None
    if ignore_class is not None:
        valid = labels != int(ignore_class)
        labels = torch.where(valid, labels, torch.zeros_like(labels))
    expected = tuple(d for i, d in enumerate(y_pred.shape) if i != axis % y_pred.dim())
    if tuple(labels.shape) != expected:
        raise ValueError(
            "sparse_categorical_crossentropy expected labels of shape "
            f"{expected} (or with a trailing 1) for predictions of shape {tuple(y_pred.shape)}, "
            f"received {tuple(y_true.shape)}.")
    class_axis = axis % y_pred.dim()
    if from_logits:
        log_prob = F.log_softmax(y_pred, dim=class_axis)
    else:
        eps = config.epsilon()
        p = y_pred / torch.sum(y_pred, dim=class_axis, keepdim=True)
        log_prob = torch.log(torch.clamp(p, eps, 1.0 - eps))
    picked = torch.gather(log_prob, class_axis, labels.unsqueeze(class_axis)).squeeze(class_axis)
    result = -picked
    if valid is not None:
        result = torch.where(valid, result, torch.zeros_like(result))
    return result


def _hinge_labels(y_true):
    """Map {0, 1} labels to {-1, 1}; other labels pass unchanged (decided on device, no sync)."""
    is_binary = torch.all((y_true == 0) | (y_true == 1))
    return torch.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.mean(torch.clamp(1.0 - y_true * y_pred, min=0.0), dim=-1)


def squared_hinge(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.mean(torch.square(torch.clamp(1.0 - y_true * y_pred, min=0.0)), dim=-1)


def categorical_hinge(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    pos = torch.sum(y_true * y_pred, dim=-1)
    neg = torch.amax((1.0 - y_true) * y_pred, dim=-1)
    return torch.clamp(neg - pos + 1.0, min=0.0)


def kl_divergence(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    eps = config.epsilon()
    y_true = torch.clamp(y_true, eps, 1.0)
    y_pred = torch.clamp(y_pred, eps, 1.0)
    return torch.sum(y_true * torch.log(y_true / y_pred), dim=-1)


def poisson(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return torch.mean(y_pred - y_true * torch.log(y_pred + config.epsilon()), dim=-1)


def log_cosh(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    x = y_pred - y_true
    return torch.mean(x + F.softplus(-2.0 * x) - math.log(2.0), dim=-1)


def _l2_normalize(x, axis):
    inv_norm = torch.rsqrt(torch.sum(torch.square(x), dim=axis, keepdim=True))
    return x * torch.clamp(inv_norm, max=1.0 / config.epsilon())


def cosine_similarity(y_true, y_pred, axis=-1):
    """Negative cosine similarity: -1 is best, 0 orthogonal (so it can be minimised)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return -torch.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), dim=axis)


def huber(y_true, y_pred, delta=1.0):
    y_true, y_pred = _pair(y_true, y_pred)
    error = y_pred - y_true
    abs_error = torch.abs(error)
    quadratic = 0.5 * torch.square(error)
    linear = delta * abs_error - 0.5 * delta * delta
    return torch.mean(torch.where(abs_error <= delta, quadratic, linear), dim=-1)


# Keras 2 / Keras 3 short names.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh
bce = binary_crossentropy
cosine_proximity = cosine_similarity


# ---------------------------------------------------------------------------------------------
# Reduction
# ---------------------------------------------------------------------------------------------

def standardize_reduction(reduction):
    if reduction is None:
        return "none"
    if reduction == "auto":  # Keras 2 spelling
        return "sum_over_batch_size"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}. Received: reduction={reduction!r}")
    return reduction


def reduce_weighted_values(values, sample_weight=None, mask=None, reduction="sum_over_batch_size"):
    """Weight per-sample ``values`` and reduce them as Keras 3 does.

    ``sum_over_batch_size`` / ``mean``: ``sum(values * weight) / values.numel()`` (masked
    entries leave the denominator); ``sum``: the weighted sum; ``mean_with_sample_weight``: divided
    by ``sum(sample_weight)``; ``none``: the weighted values.
    """
    reduction = standardize_reduction(reduction)
    if mask is not None:
        mask = as_tensor(mask, dtype=values.dtype, device=values.device)
        if reduction in ("mean", "sum_over_batch_size"):
            # valid entries get total/valid, so the later division by total divides by valid.
            mask = mask * divide_no_nan(float(mask.numel()), mask.sum())
        if sample_weight is None:
            sample_weight = mask
        else:
            sample_weight = as_tensor(sample_weight, dtype=values.dtype, device=values.device)
            mask, sample_weight = match_rank(mask, sample_weight)
            sample_weight = sample_weight * mask
    if sample_weight is not None:
        sample_weight = as_tensor(sample_weight, dtype=values.dtype, device=values.device)
        values, sample_weight = match_rank(values, sample_weight)
        while sample_weight.dim() < values.dim():  # (batch,) weights for (batch, time) losses
            sample_weight = sample_weight.unsqueeze(-1)
        values = values * sample_weight
    if reduction == "none" or values.dim() == 0 or tuple(values.shape) == (0,):
        return values
    total = torch.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return divide_no_nan(total, torch.sum(sample_weight))
    return total / max(values.numel(), 1)


# ---------------------------------------------------------------------------------------------
# Loss objects
# ---------------------------------------------------------------------------------------------

class Loss:
    """Base class: subclasses implement ``call(y_true, y_pred) -> per-sample values``.

    ``loss(y_true, y_pred, sample_weight=None, mask=None)`` returns the reduced loss.
    """

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None):
        self.reduction = standardize_reduction(reduction)
        self.name = name or _snake_case(type(self).__name__)
        self.dtype = dtype

    def __call__(self, y_true, y_pred, sample_weight=None, mask=None):
        y_pred = prediction_tensor(y_pred)
        if self.dtype is not None and y_pred.dtype != getattr(torch, self.dtype):
            y_pred = y_pred.to(getattr(torch, self.dtype))
        y_true = as_tensor(y_true, device=y_pred.device)
        values = self.call(y_true, y_pred)
        own_mask = self.compute_mask(y_true, y_pred)
        if own_mask is not None:
            mask = own_mask if mask is None else (as_tensor(mask, device=own_mask.device).bool() & own_mask)
        return reduce_weighted_values(values, sample_weight, mask, self.reduction)

    def call(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred).")

    def compute_mask(self, y_true, y_pred):
        """Entries to leave out of the reduction (``None``: keep all)."""
        return None

    def get_config(self):
        return {"reduction": self.reduction, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} reduction={self.reduction!r}>"


class LossFunctionWrapper(Loss):
    """Turn any ``fn(y_true, y_pred, **kwargs) -> per-sample values`` into a ``Loss``."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"LossFunctionWrapper expected a callable fn, received {fn!r}.")
        super().__init__(reduction=reduction, name=name or getattr(fn, "__name__", None), dtype=dtype)
        self.fn = fn
        self.fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        if self.fn is not sparse_categorical_crossentropy:  # integer labels stay integers there
            y_true = y_true.to(y_pred.dtype)
        y_true, y_pred = match_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self.fn_kwargs)

    def get_config(self):
        config = {"reduction": self.reduction, "name": self.name, **self.fn_kwargs}
        if type(self) is LossFunctionWrapper:
            config["fn"] = getattr(self.fn, "__name__", self.fn)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if cls is LossFunctionWrapper:
            fn = config.pop("fn")
            return cls(get(fn) if isinstance(fn, str) else fn, **config)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} fn={getattr(self.fn, '__name__', self.fn)} kwargs={self.fn_kwargs}>"


# Loss classes: the function's keywords come first, as in Keras (``BinaryCrossentropy(True)``).

_SBS = "sum_over_batch_size"


class MeanSquaredError(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, reduction, name, dtype)


class MeanAbsoluteError(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, reduction, name, dtype)


class MeanAbsolutePercentageError(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, reduction, name, dtype)


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, reduction, name, dtype)


class BinaryCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=_SBS,
                 name="binary_crossentropy", dtype=None):
        super().__init__(binary_crossentropy, reduction, name, dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class CategoricalCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=_SBS,
                 name="categorical_crossentropy", dtype=None):
        super().__init__(categorical_crossentropy, reduction, name, dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class Hinge(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="hinge", dtype=None):
        super().__init__(hinge, reduction, name, dtype)


class SquaredHinge(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, reduction, name, dtype)


class CategoricalHinge(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, reduction, name, dtype)


class KLDivergence(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, reduction, name, dtype)


class Poisson(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="poisson", dtype=None):
        super().__init__(poisson, reduction, name, dtype)


class LogCosh(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="log_cosh", dtype=None):
        super().__init__(log_cosh, reduction, name, dtype)


class CosineSimilarity(LossFunctionWrapper):
    def __init__(self, axis=-1, reduction=_SBS, name="cosine_similarity", dtype=None):
        super().__init__(cosine_similarity, reduction, name, dtype, axis=axis)


class Huber(LossFunctionWrapper):
    def __init__(self, delta=1.0, reduction=_SBS, name="huber_loss", dtype=None):
        super().__init__(huber, reduction, name, dtype, delta=delta)


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """``Loss`` object for :func:`sparse_categorical_crossentropy`; ``ignore_class`` entries are
    left out of the mean (they neither add to the sum nor to the count)."""

    def __init__(self, from_logits=False, ignore_class=None, axis=-1, reduction=_SBS,
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, reduction=reduction, name=name, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class, axis=axis)

    def call(self, y_true, y_pred):
        return sparse_categorical_crossentropy(y_true, y_pred, **self.fn_kwargs)

    def compute_mask(self, y_true, y_pred):
        ignore = self.fn_kwargs["ignore_class"]
        if ignore is None:
            return None
        axis = self.fn_kwargs["axis"]
        if y_true.dim() == y_pred.dim() and y_true.shape[axis] == 1:
            y_true = y_true.squeeze(axis)
        return y_true.long() != int(ignore)


def _accept_symbolic_tensors():
    """Make each loss function record graph nodes when given KerasTensors, the op nodes Keras
    3's own loss records (``binary_crossentropy(inputs, outputs)`` in a functional VAE; see
    ``kaffe.engine.symbolic_losses``): done before the lookup
    tables below are built, so every reference holds the same function."""
    from kaffe.engine.symbolic_losses import accepting_symbolic
    names = globals()
    wrapped = {fn: accepting_symbolic(fn) for fn in (
        mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
        mean_squared_logarithmic_error, binary_crossentropy, categorical_crossentropy,
        sparse_categorical_crossentropy, hinge, squared_hinge, categorical_hinge, kl_divergence,
        poisson, log_cosh, cosine_similarity, huber)}
    for name, value in list(names.items()):  # the functions and their short names (mse, bce)
        if callable(value) and value in wrapped:
            names[name] = wrapped[value]


_accept_symbolic_tensors()


# ---------------------------------------------------------------------------------------------
# Lookup
# ---------------------------------------------------------------------------------------------

_FUNCTIONS = {f.__name__: f for f in (
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_logarithmic_error, binary_crossentropy, categorical_crossentropy,
    sparse_categorical_crossentropy, hinge, squared_hinge, categorical_hinge, kl_divergence,
    poisson, log_cosh, cosine_similarity, huber)}
_ALIASES = {"mse": mean_squared_error, "mae": mean_absolute_error,
            "mape": mean_absolute_percentage_error, "msle": mean_squared_logarithmic_error,
            "kld": kl_divergence, "kullback_leibler_divergence": kl_divergence,
            "logcosh": log_cosh, "bce": binary_crossentropy, "cosine_proximity": cosine_similarity,
            "huber_loss": huber}
_CLASSES = {c.__name__: c for c in (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
    BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Hinge, SquaredHinge,
    CategoricalHinge, KLDivergence, Poisson, LogCosh, CosineSimilarity, Huber)}
_KIND_OF_FUNCTION = {binary_crossentropy: "binary", sparse_categorical_crossentropy: "sparse",
                     categorical_crossentropy: "categorical"}


def _snake_case(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def valid_names():
    return sorted(set(_FUNCTIONS) | set(_ALIASES) | set(_CLASSES))


def _lookup_name(name):
    for table in (_FUNCTIONS, _ALIASES, _CLASSES):
        if name in table:
            return table[name]
    lowered = name.lower()
    for table in (_FUNCTIONS, _ALIASES, _CLASSES):
        for key, value in table.items():
            if key.lower() == lowered:
                return value
    return None


def get(identifier):
    """Resolve ``identifier`` the way ``keras.losses.get`` does.

    Function names and aliases (``'mse'``, ``'categorical_crossentropy'``) give the function;
    class names (``'MeanSquaredError'``) give a fresh instance; a ``{'class_name', 'config'}``
    dict gives a configured instance; a ``Loss`` or other callable is returned as is. The
    training engine should not use this directly: call :func:`get_loss_object`.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        obj = _lookup_name(identifier)
        if obj is None:
            raise ValueError(f"Unknown loss {identifier!r}. Valid names: {', '.join(valid_names())}.")
        return obj() if isinstance(obj, type) else obj
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret loss identifier {identifier!r}: expected a name, a Loss, "
                     f"a config dict or a callable f(y_true, y_pred). Valid names: {', '.join(valid_names())}.")


def get_loss_object(identifier, output_shape=None, y_true_shape=None):
    """Always return a ``Loss`` instance, for the training engine.

    Functions are wrapped in a ``LossFunctionWrapper`` named as the user wrote them (``'mse'``
    stays ``'mse'``; a custom function keeps its ``__name__``). ``'crossentropy'``/``'ce'`` pick
    binary, sparse or categorical cross-entropy from the shapes, as Keras 3 does.
    Usage: ``loss_obj = get_loss_object(loss)`` then ``loss_obj(y_true, y_pred, sample_weight)``.
    """
    if isinstance(identifier, str) and identifier.lower() in ("crossentropy", "ce"):
        kind = kind_from_shapes(output_shape, y_true_shape) or "categorical"
        fn = {"binary": binary_crossentropy, "sparse": sparse_categorical_crossentropy,
              "categorical": categorical_crossentropy}[kind]
        return LossFunctionWrapper(fn, name=identifier)
    obj = get(identifier)
    if obj is None or isinstance(obj, Loss):
        return obj
    if obj is sparse_categorical_crossentropy:
        return SparseCategoricalCrossentropy(name=identifier if isinstance(identifier, str) else obj.__name__)
    if isinstance(identifier, str):
        name = identifier
    else:
        name = getattr(obj, "__name__", None) or _snake_case(type(obj).__name__)
    return LossFunctionWrapper(obj, name=name)


def kind_from_shapes(output_shape, y_true_shape=None):
    """Keras 3's shape rule: 'binary' if the output has one unit, 'sparse' if labels have one
    axis fewer (or a trailing 1 against several units), else 'categorical'; ``None`` if unknown."""
    if output_shape is None:
        return None
    output_shape = tuple(output_shape)
    if output_shape and output_shape[-1] == 1:
        return "binary"
    if y_true_shape is not None and output_shape:
        y_true_shape = tuple(y_true_shape)
        if len(y_true_shape) < len(output_shape) or (y_true_shape and y_true_shape[-1] == 1):
            return "sparse"
    return "categorical" if y_true_shape is not None else None


def loss_kind(loss):
    """'binary' | 'sparse' | 'categorical' for the three cross-entropies (any spelling), else None.

    Accepts names, functions, ``Loss`` objects (including kaffe's wrappers around the functions)
    and Keras loss objects; the metrics resolver uses it to pick an accuracy.
    """
    if loss is None:
        return None
    if isinstance(loss, str):
        try:
            loss = get(loss)
        except ValueError:
            return None
    if isinstance(loss, LossFunctionWrapper) or callable(getattr(loss, "fn", None)):
        loss = loss.fn
    if callable(loss) and loss in _KIND_OF_FUNCTION:
        return _KIND_OF_FUNCTION[loss]
    name = getattr(loss, "__name__", None) or type(loss).__name__
    return {"binary_crossentropy": "binary", "BinaryCrossentropy": "binary",
            "sparse_categorical_crossentropy": "sparse", "SparseCategoricalCrossentropy": "sparse",
            "categorical_crossentropy": "categorical", "CategoricalCrossentropy": "categorical",
            }.get(name)


def is_binary_crossentropy(loss):
    return loss_kind(loss) == "binary"


def is_sparse_categorical(loss):
    return loss_kind(loss) == "sparse"


def serialize(loss):
    """``{'class_name', 'config'}`` for a ``Loss``; the name for a built-in function."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    name = getattr(loss, "__name__", None)
    if name in _FUNCTIONS:
        return name
    raise ValueError(f"Cannot serialize loss {loss!r}: only Loss objects and built-in functions can be.")


def deserialize(config):
    if isinstance(config, str):
        return get(config)
    class_name = config.get("class_name")
    cls = _CLASSES.get(class_name) or {"LossFunctionWrapper": LossFunctionWrapper}.get(class_name)
    if cls is None:
        raise ValueError(f"Unknown loss class {class_name!r}. Valid: {', '.join(sorted(_CLASSES))}.")
    return cls.from_config(config.get("config", {}))


# Keras's focal and overlap losses live in their own module; served from here as Keras does.
from kaffe import loss_classes as _more  # noqa: E402  (it builds on the classes above)
globals().update(_more.FUNCTIONS)
globals().update(_more.CLASSES)
_FUNCTIONS.update(_more.FUNCTIONS)
_CLASSES.update(_more.CLASSES)
