"""Keras 3's focal and overlap losses: binary and categorical focal cross-entropy (Lin et
al. 2017), Dice and Tversky. Functions and classes take Keras's arguments and defaults and
compute Keras's formulas; ``kaffe.losses`` serves them."""
import torch

from kaffe import config
from kaffe.losses import LossFunctionWrapper, _pair

_SBS = "sum_over_batch_size"


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25,
                              gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary cross-entropy scaled by ``(1 - p_t) ** gamma`` (and by ``alpha`` / ``1 - alpha``
    for positives / negatives when class-balanced), mean over ``axis``."""
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = torch.sigmoid(y_pred)
    eps = config.epsilon()
    p = torch.clamp(y_pred, eps, 1.0 - eps)
    bce = -(y_true * torch.log(p) + (1.0 - y_true) * torch.log(1.0 - p))
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    focal = torch.pow(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return torch.mean(focal, dim=axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                   label_smoothing=0.0, axis=-1):
    """``-sum(alpha * (1 - p) ** gamma * y_true * log(p))`` over ``axis``, ``p`` renormalised
    and clipped as Keras does."""
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[axis]
    if from_logits:
        y_pred = torch.softmax(y_pred, dim=axis)
    eps = config.epsilon()
    p = torch.clamp(y_pred / torch.sum(y_pred, dim=axis, keepdim=True), eps, 1.0 - eps)
    focal = alpha * torch.pow(1.0 - p, gamma) * (-y_true * torch.log(p))
    return torch.sum(focal, dim=axis)


def _sum(x, axis):
    return torch.sum(x) if axis is None else torch.sum(x, dim=axis)


def dice(y_true, y_pred, axis=None):
    """``1 - 2 |y_true . y_pred| / (|y_true| + |y_pred|)``, summed over ``axis`` (all axes by
    default)."""
    y_true, y_pred = _pair(y_true, y_pred)
    overlap = _sum(y_true * y_pred, axis)
    return 1 - 2.0 * overlap / (_sum(y_true, axis) + _sum(y_pred, axis) + config.epsilon())


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """``1 - TP / (TP + alpha FP + beta FN)`` with Keras's soft counts (``FP`` weighs the
    targets the prediction misses, as Keras writes it)."""
    y_true, y_pred = _pair(y_true, y_pred)
    overlap = _sum(y_true * y_pred, axis)
    fp = _sum((1 - y_pred) * y_true, axis)
    fn = _sum(y_pred * (1 - y_true), axis)
    return 1 - overlap / (overlap + fp * alpha + fn * beta + config.epsilon())


class BinaryFocalCrossentropy(LossFunctionWrapper):
    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction=_SBS,
                 name="binary_focal_crossentropy", dtype=None):
        super().__init__(binary_focal_crossentropy, reduction, name, dtype,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class CategoricalFocalCrossentropy(LossFunctionWrapper):
    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction=_SBS, name="categorical_focal_crossentropy", dtype=None):
        super().__init__(categorical_focal_crossentropy, reduction, name, dtype, alpha=alpha,
                         gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing,
                         axis=axis)


class Dice(LossFunctionWrapper):
    def __init__(self, reduction=_SBS, name="dice", axis=None, dtype=None):
        super().__init__(dice, reduction, name, dtype, axis=axis)


class Tversky(LossFunctionWrapper):
    def __init__(self, alpha=0.5, beta=0.5, reduction=_SBS, name="tversky", axis=None,
                 dtype=None):
        super().__init__(tversky, reduction, name, dtype, alpha=alpha, beta=beta, axis=axis)


FUNCTIONS = {f.__name__: f for f in (binary_focal_crossentropy, categorical_focal_crossentropy,
                                     dice, tversky)}
CLASSES = {c.__name__: c for c in (BinaryFocalCrossentropy, CategoricalFocalCrossentropy, Dice,
                                   Tversky)}
