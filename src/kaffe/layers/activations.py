"""Activation layers with parameters: LeakyReLU, PReLU, ELU, ReLU, Softmax, ThresholdedReLU.

All pass masks through. ``Softmax`` also *takes* a mask, as Keras 3's does: masked positions get
-1e9 before the softmax and 0 after it.
"""
import torch
import torch.nn.functional as F

from kaffe import constraints, initializers, regularizers
from kaffe.engine.layer import Layer


def _non_negative(value, arg, layer):
    if value is None or isinstance(value, bool) or value < 0:
        raise ValueError(f"{layer} expected a non-negative number for {arg}. "
                         f"Received: {arg}={value!r}")
    return value


class _Elementwise(Layer):
    """A shape-preserving activation layer without weights."""

    supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape


class LeakyReLU(_Elementwise):
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise (Keras 2 called it ``alpha``)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2 spelling
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = _non_negative(negative_slope, "negative_slope", "LeakyReLU")

    def call(self, inputs):
        return F.leaky_relu(inputs, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def call(self, inputs):
        return F.elu(inputs, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class ReLU(_Elementwise):
    """Keras's general rectifier::

        f(x) = min(x, max_value)                    for x >= threshold
        f(x) = negative_slope * (x - threshold)     otherwise

    (the plain, ``relu6`` and leaky cases run on torch's own kernels).
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None:
            _non_negative(max_value, "max_value", "ReLU")
        self.max_value = max_value
        self.negative_slope = _non_negative(negative_slope, "negative_slope", "ReLU")
        self.threshold = _non_negative(threshold, "threshold", "ReLU")

    def call(self, inputs):
        slope, top, threshold = self.negative_slope, self.max_value, self.threshold
        if threshold == 0 and slope == 0:
            if top is None:
                return F.relu(inputs)
            if top == 6:
                return F.relu6(inputs)
            return inputs.clamp(0.0, top)
        if threshold == 0 and top is None:
            return F.leaky_relu(inputs, slope)
        # Keras's order of operations, so the results agree to the last bit.
        negative = F.relu(threshold - inputs) if threshold else F.relu(-inputs)
        x = torch.where(inputs > threshold, inputs, 0.0) if threshold else F.relu(inputs)
        if top is not None:
            x = x.clamp(0.0, top)
        return x - slope * negative if slope else x

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class ThresholdedReLU(_Elementwise):
    """Keras 2's ``ThresholdedReLU``: ``x`` where ``x > theta``, else 0 (Keras 3 dropped it;
    ``ReLU(threshold=theta)`` is the same for ``theta >= 0``)."""

    def __init__(self, theta=1.0, **kwargs):
        super().__init__(**kwargs)
        if theta is None or theta < 0:
            raise ValueError(f"ThresholdedReLU expected theta >= 0. Received: theta={theta!r}")
        self.theta = float(theta)

    def call(self, inputs):
        return torch.where(inputs > self.theta, inputs, 0.0)

    def get_config(self):
        return {**super().get_config(), "theta": self.theta}


class PReLU(_Elementwise):
    """Leaky ReLU with a learned slope per input element: ``x`` for ``x >= 0``, ``alpha * x``
    otherwise.

    alpha: shaped like one example (``input_shape[1:]``) with the ``shared_axes`` (counted from
    1, the first non-batch axis) set to 1, zeros by default (``alpha_initializer``).
    ``shared_axes=[1, 2]`` gives one slope per channel of channels_last images.
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            self.shared_axes = (list(shared_axes) if isinstance(shared_axes, (list, tuple))
                                else [shared_axes])
            if any(isinstance(a, bool) or not isinstance(a, int) or a < 1
                   for a in self.shared_axes):
                raise ValueError("PReLU shared_axes count from 1 (the first non-batch axis). "
                                 f"Received: shared_axes={shared_axes!r}")

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if axis > len(shape):
                raise ValueError(f"PReLU '{self.name}': shared axis {axis} is out of range for "
                                 f"input shape {tuple(input_shape)}.")
            shape[axis - 1] = 1
        if None in shape:
            raise ValueError(f"PReLU '{self.name}' needs every non-shared axis of its input to be "
                             f"known. Received input shape {tuple(input_shape)}; share the "
                             "unknown axes with shared_axes.")
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint)

    def call(self, inputs):
        return torch.where(inputs >= 0, inputs, self.alpha * inputs)

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes}


_MASKED = -1e9  # what Keras 3 puts at masked positions before the softmax (float32)


def masked_softmax(inputs, mask=None, axis=-1):
    """Softmax over ``axis`` (an int or several axes) where ``mask`` (broadcastable; False, or
    <= 0.5 for numbers, at masked positions) holds: masked positions get -1e9 before the softmax
    and exactly 0 after it, as Keras 3's ``Softmax`` layer does."""
    if mask is not None:
        mask = torch.as_tensor(mask, device=inputs.device)
        if mask.dim() > inputs.dim():
            raise ValueError("The softmax mask must broadcast to the inputs and have no more "
                             f"axes. Received inputs {tuple(inputs.shape)}, mask "
                             f"{tuple(mask.shape)}.")
        if mask.dtype != torch.bool:
            mask = mask > 0.5
        inputs = torch.where(mask, inputs, _MASKED)
    if isinstance(axis, (list, tuple)) and len(axis) > 1:
        outputs = torch.exp(inputs - torch.logsumexp(inputs, dim=tuple(axis), keepdim=True))
    else:
        outputs = torch.softmax(inputs, dim=axis[0] if isinstance(axis, (list, tuple)) else axis)
    return outputs if mask is None else torch.where(mask, outputs, 0.0)


class Softmax(_Elementwise):
    """Softmax over ``axis`` (an int or a list of axes).

    ``mask`` (broadcastable to the inputs; non-boolean masks count where > 0.5): masked
    positions get -1e9 before the softmax and exactly 0 after it, as in Keras 3.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, mask=None):
        return masked_softmax(inputs, mask, self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
