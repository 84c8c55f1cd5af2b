"""Up-sampling, zero-padding and cropping of the spatial axes: ``UpSampling1D/2D/3D``,
``ZeroPadding1D/2D/3D``, ``Cropping1D/2D/3D``."""
import torch.nn.functional as F

from kaffe.config import standardize_data_format
from kaffe.engine.layer import Layer
from kaffe.layers.convolutional import (check_rank, from_nchw, normalize_tuple, spatial_shape,
                                        take_keras1_args, to_nchw, with_spatial)

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


class UpSampling3D(Layer):
    """Repeat each position ``size[0]`` times along depth, ``size[1]`` along rows and ``size[2]``
    along columns."""

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        a = take_keras1_args(kwargs, {"dim_ordering": "data_format"}, {"data_format": data_format},
                             type(self))
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, 3, "size", "UpSampling3D")
        self.data_format = standardize_data_format(a["data_format"])

    def build(self, input_shape):
        check_rank(input_shape, 3, self)

    def check_input_shape(self, input_shape):
        check_rank(input_shape, 3, self)

    def call(self, inputs):
        x = to_nchw(inputs, 3, self.data_format)
        size = tuple(n * f for n, f in zip(x.shape[2:], self.size))
        return from_nchw(F.interpolate(x, size=size, mode="nearest-exact"), 3, self.data_format)

    def compute_output_shape(self, input_shape):
        check_rank(input_shape, 3, self)
        spatial = [None if n is None else n * f
                   for n, f in zip(spatial_shape(input_shape, self.data_format), self.size)]
        return with_spatial(input_shape, spatial, _channels(input_shape, self.data_format),
                            self.data_format)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}


# ------------------------------------------------------------------------------ padding, cropping
def _channels(input_shape, data_format):
    return input_shape[-1] if data_format == "channels_last" else input_shape[1]


def _pairs(value, rank, arg, cls):
    """Keras's forms of a padding/cropping argument as ``rank`` (before, after) pairs: an int
    (everywhere), or one entry per axis that is an int (both sides) or a pair; in 1D the argument
    itself is the pair."""
    if rank == 1:
        return (normalize_tuple(value, 2, arg, cls, allow_zero=True),)
    entries = (value,) * rank if isinstance(value, int) else value
    try:
        if len(entries) != rank:
            raise ValueError(arg)
        return tuple(normalize_tuple(e, 2, arg, cls, allow_zero=True) for e in entries)
    except (TypeError, ValueError):
        raise ValueError(f"{cls} expected a non-negative integer, or a tuple of {rank} non-negative "
                         f"integers or (before, after) pairs, for {arg}. "
                         f"Received: {arg}={value!r}") from None


class _SpatialEdges(Layer):
    """Shared by ZeroPadding and Cropping: (before, after) amounts on each spatial axis."""

    rank = None
    arg = None  # 'padding' or 'cropping'
    sign = None  # +1 pads, -1 crops

    def __init__(self, amounts, data_format=None, **kwargs):
        a = take_keras1_args(kwargs, {"dim_ordering": "data_format"}, {"data_format": data_format},
                             type(self))
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(a["data_format"])
        self._pairs = _pairs(amounts, self.rank, self.arg, type(self).__name__)

    def build(self, input_shape):
        check_rank(input_shape, self.rank, self)

    def check_input_shape(self, input_shape):
        check_rank(input_shape, self.rank, self)

    def compute_output_shape(self, input_shape):
        check_rank(input_shape, self.rank, self)
        spatial = [None if n is None else n + self.sign * (before + after)
                   for n, (before, after) in zip(spatial_shape(input_shape, self.data_format),
                                                 self._pairs)]
        if any(n is not None and n <= 0 for n in spatial):
            raise ValueError(f"{type(self).__name__} '{self.name}': {self.arg}="
                             f"{self._config_value()} leaves nothing of input shape "
                             f"{tuple(input_shape)}; each axis must be longer than its total "
                             f"{self.arg}.")
        return with_spatial(input_shape, spatial, _channels(input_shape, self.data_format),
                            self.data_format)

    def _config_value(self):
        return self._pairs[0] if self.rank == 1 else self._pairs

    def get_config(self):
        return {**super().get_config(), self.arg: self._config_value(),
                "data_format": self.data_format}


class _ZeroPadding(_SpatialEdges):
    arg, sign = "padding", 1

    @property
    def padding(self):
        return self._config_value()

    def call(self, inputs):
        axes = list(self._pairs)
        axes = axes + [(0, 0)] if self.data_format == "channels_last" else [(0, 0)] + axes
        return F.pad(inputs, tuple(p for pair in reversed(axes) for p in pair))


class ZeroPadding1D(_ZeroPadding):
    """Add ``padding`` zeros before and after the steps: an int, or ``(before, after)``."""
    rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Add zero rows and columns: ``padding`` is an int, ``(rows, cols)`` (both sides) or
    ``((top, bottom), (left, right))``."""
    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Add zeros on the three spatial axes: ``padding`` is an int, three ints (both sides) or
    three ``(before, after)`` pairs."""
    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class _Cropping(_SpatialEdges):
    arg, sign = "cropping", -1

    @property
    def cropping(self):
        return self._config_value()

    def call(self, inputs):
        self.compute_output_shape(tuple(inputs.shape))  # too much cropping: a clear error
        first = 1 if self.data_format == "channels_last" else 2
        index = [slice(None)] * inputs.dim()
        for axis, (before, after) in enumerate(self._pairs):
            index[first + axis] = slice(before, inputs.shape[first + axis] - after)
        return inputs[tuple(index)]


class Cropping1D(_Cropping):
    """Remove ``cropping`` steps from the start and end: an int, or ``(start, end)``."""
    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, "channels_last", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]  # Keras's Cropping1D is channels_last only
        return config


class Cropping2D(_Cropping):
    """Remove rows and columns at the edges: ``cropping`` is an int, ``(rows, cols)`` (both
    sides) or ``((top, bottom), (left, right))``."""
    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Remove positions at the edges of the three spatial axes: ``cropping`` is an int, three
    ints (both sides) or three ``(before, after)`` pairs."""
    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)
