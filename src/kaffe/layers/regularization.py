"""Regularisation layers: noise and dropout variants that act only while training, and
``ActivityRegularization``.

In inference (the default for a layer called directly, and ``predict``/``evaluate``) every noise
layer returns its input unchanged. ``seed`` is stored for Keras configs; the noise comes from
torch's global generator (seed it with ``torch.manual_seed``).
"""
import math

import torch

from kaffe import regularizers
from kaffe.config import standardize_data_format
from kaffe.engine.layer import Layer
from kaffe.layers import dropout_mask


def _unit_interval(value, arg, layer):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{layer} expected {arg} in [0, 1]. Received: {arg}={value!r}")
    return value


class _TrainOnly(Layer):
    """Shape-preserving, mask-preserving, no weights; ``_noisy`` runs only while training."""

    supports_masking = True

    def call(self, inputs):
        return self._noisy(inputs) if self.training else inputs

    def compute_output_shape(self, input_shape):
        return input_shape


class GaussianNoise(_TrainOnly):
    """Add zero-mean normal noise of standard deviation ``stddev`` while training."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.stddev = _unit_interval(stddev, "stddev", "GaussianNoise")
        self.seed = seed

    def _noisy(self, inputs):
        if self.stddev == 0:
            return inputs
        return inputs + torch.randn_like(inputs) * self.stddev

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_TrainOnly):
    """Multiply by normal noise of mean 1 and standard deviation ``sqrt(rate / (1 - rate))``
    while training (the variance of dropout at ``rate``, without zeros)."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _unit_interval(rate, "rate", "GaussianDropout")
        self.seed = seed

    def _noisy(self, inputs):
        if self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        return inputs * torch.randn_like(inputs).mul_(stddev).add_(1.0)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def _noise_shape(inputs, noise_shape):
    return [n if d is None else d for n, d in zip(inputs.shape, noise_shape)]


class AlphaDropout(_TrainOnly):
    """Dropout for SELU networks: dropped inputs take SELU's negative saturation value and an
    affine correction keeps the mean and variance of the inputs (Klambauer et al., 2017)."""

    _ALPHA = 1.6732632423543772848170429916717
    _SCALE = 1.0507009873554804934193349852946

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _unit_interval(rate, "rate", "AlphaDropout")
        self.noise_shape = noise_shape
        self.seed = seed

    def _noisy(self, inputs):
        if self.rate == 0:
            return inputs
        shape = inputs.shape if self.noise_shape is None else _noise_shape(inputs,
                                                                           self.noise_shape)
        kept = (torch.rand(shape, device=inputs.device) >= self.rate).to(inputs.dtype)
        alpha_p = -self._ALPHA * self._SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        return a * (inputs * kept + alpha_p * (1 - kept)) + b

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": self.noise_shape}


class _SpatialDropout(_TrainOnly):
    """Drop whole channels (one keep/drop draw per example and channel), scaling the kept ones
    by ``1 / (1 - rate)``: neighbouring positions of a feature map are correlated, so element
    dropout would hardly regularise them."""

    _rank = None

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None, **kwargs):
        kwargs.pop("noise_shape", None)  # in Keras 2 configs; fixed by the layer itself
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.rate = _unit_interval(rate, "rate", type(self).__name__)
        self.data_format = standardize_data_format(data_format)
        self.seed = seed

    def build(self, input_shape):
        if len(input_shape) != self._rank:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects rank-{self._rank} "
                             f"inputs. Received input shape {tuple(input_shape)}.")

    def _noisy(self, inputs):
        if self.rate == 0:
            return inputs
        shape = [1] * inputs.dim()
        shape[0] = inputs.shape[0]
        channel_axis = 1 if self.data_format == "channels_first" else -1
        shape[channel_axis] = inputs.shape[channel_axis]
        return dropout_mask.dropout(inputs, self.rate, shape)

    def get_config(self):
        # Keras 3's spatial dropout configs hold exactly these keys.
        return {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": self.dtype,
                "data_format": self.data_format}


class SpatialDropout1D(_SpatialDropout):
    """Drop whole channels of ``(batch, steps, channels)`` inputs while training."""

    _rank = 3

    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, data_format="channels_last", seed=seed, name=name, dtype=dtype,
                         **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        return config


class SpatialDropout2D(_SpatialDropout):
    """Drop whole feature maps of 4D inputs while training (channels on ``data_format``'s
    axis, the global image data format by default)."""

    _rank = 4


class SpatialDropout3D(_SpatialDropout):
    """Drop whole feature volumes of 5D inputs while training."""

    _rank = 5


class ActivityRegularization(Layer):
    """Identity that adds ``(l1 * sum(|x|) + l2 * sum(x**2)) / batch_size`` of its input to the
    training loss (Keras 3 divides every activity penalty by the batch size)."""

    supports_masking = True

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)  # Keras configs never hold one; it is l1/l2
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = l1, l2

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}
