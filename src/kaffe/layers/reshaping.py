"""Up-sampling layers: ``UpSampling1D`` repeats steps, ``UpSampling2D`` repeats or interpolates."""
import torch.nn.functional as F

from kaffe.config import standardize_data_format
from kaffe.engine.layer import Layer
from kaffe.layers.convolutional import (check_rank, from_nchw, normalize_tuple, take_keras1_args,
                                        to_nchw)

# Keras's interpolation name -> torch's mode. 'nearest' with an integer factor repeats pixels;
# bilinear/bicubic use half-pixel centres (align_corners=False), as Keras's resize does.
_INTERPOLATIONS = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic"}


class UpSampling1D(Layer):
    """Repeat each step ``size`` times: ``(batch, steps, features)`` ->
    ``(batch, steps * size, features)``."""

    def __init__(self, size=2, **kwargs):
        a = take_keras1_args(kwargs, {"length": "size"}, {"size": size}, type(self))  # Keras 1
        super().__init__(**kwargs)
        self.size = normalize_tuple(a["size"], 1, "size", "UpSampling1D")[0]

    def build(self, input_shape):
        check_rank(input_shape, 1, self)

    def check_input_shape(self, input_shape):
        check_rank(input_shape, 1, self)

    def call(self, inputs):
        return inputs.repeat_interleave(self.size, dim=1)

    def compute_output_shape(self, input_shape):
        check_rank(input_shape, 1, self)
        steps = None if input_shape[1] is None else input_shape[1] * self.size
        return (input_shape[0], steps, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class UpSampling2D(Layer):
    """Scale rows by ``size[0]`` and columns by ``size[1]``.

    ``interpolation='nearest'`` (default) repeats pixels; ``'bilinear'`` interpolates with
    half-pixel centres (TensorFlow's ``resize`` and torch's ``align_corners=False``); ``'bicubic'``
    uses torch's bicubic kernel, as Keras does on its torch backend.
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        a = take_keras1_args(kwargs, {"dim_ordering": "data_format"}, {"data_format": data_format},
                             type(self))
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, 2, "size", "UpSampling2D")
        self.data_format = standardize_data_format(a["data_format"])
        method = interpolation.lower() if isinstance(interpolation, str) else interpolation
        if method not in _INTERPOLATIONS:
            raise ValueError(f"UpSampling2D expected interpolation to be one of "
                             f"{tuple(_INTERPOLATIONS)}. Received: interpolation={interpolation!r}")
        self.interpolation = method

    def build(self, input_shape):
        check_rank(input_shape, 2, self)

    def check_input_shape(self, input_shape):
        check_rank(input_shape, 2, self)

    def call(self, inputs):
        x = to_nchw(inputs, 2, self.data_format)
        size = (x.shape[2] * self.size[0], x.shape[3] * self.size[1])
        mode = _INTERPOLATIONS[self.interpolation]
        align = False if mode in ("bilinear", "bicubic") else None
        y = F.interpolate(x, size=size, mode=mode, align_corners=align)
        return from_nchw(y, 2, self.data_format)

    def compute_output_shape(self, input_shape):
        check_rank(input_shape, 2, self)
        first = 1 if self.data_format == "channels_last" else 2
        shape = list(input_shape)
        for i, factor in enumerate(self.size):
            n = shape[first + i]
            shape[first + i] = None if n is None else n * factor
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format,
                "interpolation": self.interpolation}
