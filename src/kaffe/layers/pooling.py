"""Pooling layers: max and average pooling over windows, and global pooling over all positions,
in 1D, 2D and 3D.

``padding='same'`` pads as TensorFlow/Keras do (odd pixel on the right/bottom). Max pooling treats
padding as -inf; average pooling divides each window by the number of real (unpadded) elements
in it, as Keras documents and its TensorFlow and JAX backends compute.
"""
import torch
import torch.nn.functional as F

from kaffe.config import standardize_data_format
from kaffe.engine.layer import Layer
from kaffe.layers.convolutional import (check_rank, from_nchw, normalize_padding, normalize_tuple,
                                        output_length, same_padding, spatial_padding,
                                        spatial_shape, take_keras1_args, to_nchw)

_TORCH_POOLS = {2: (F.max_pool2d, F.avg_pool2d), 3: (F.max_pool3d, F.avg_pool3d)}

_KERAS1_POOL_ARGS = {"pool_length": "pool_size", "stride": "strides", "border_mode": "padding",
                     "dim_ordering": "data_format"}


class _Pooling(Layer):
    rank = None
    mode = None  # 'max' or 'average'

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        a = take_keras1_args(kwargs, _KERAS1_POOL_ARGS,
                             dict(pool_size=pool_size, strides=strides, padding=padding,
                                  data_format=data_format), type(self))
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = normalize_tuple(a["pool_size"], self.rank, "pool_size", cls)
        self.strides = normalize_tuple(a["pool_size"] if a["strides"] is None else a["strides"],
                                       self.rank, "strides", cls)
        self.padding = normalize_padding(a["padding"], cls)
        self.data_format = standardize_data_format(a["data_format"])
        pad = (1,) * (self.rank == 1)  # 1D pools run as 2D ones of height 1
        self._pool_op, self._strides_op = pad + self.pool_size, pad + self.strides

    def call(self, inputs):
        x = to_nchw(inputs, self.rank, self.data_format)
        pool, strides = self._pool_op, self._strides_op
        padding, pads = (0, None) if self.padding == "valid" else spatial_padding(x, pool, strides)
        max_pool, avg_pool = _TORCH_POOLS[x.dim() - 2]
        if self.mode == "max":
            if pads is not None:
                x = F.pad(x, pads, value=float("-inf"))
            y = max_pool(x, pool, strides, padding)
        elif pads is None:
            y = avg_pool(x, pool, strides, padding, count_include_pad=False)
        else:  # asymmetric: window sums over zero padding, divided by the real elements per window
            counts = self._window_counts(x.shape[2:], x)
            y = avg_pool(F.pad(x, pads), pool, strides, divisor_override=1) / counts
        return from_nchw(y, self.rank, self.data_format)

    def _window_counts(self, sizes, like):
        """(*spatial_out): how many real input elements each 'same'-padded window covers."""
        counts = []
        for n, k, s in zip(sizes, self._pool_op, self._strides_op):
            before = same_padding(n, k, s)[0]
            starts = [i * s - before for i in range(output_length(n, k, s, 1, "same"))]
            counts.append([min(t + k, n) - max(t, 0) for t in starts])
        table = torch.ones((), dtype=like.dtype, device=like.device)
        for axis, per_axis in enumerate(counts):
            shape = [1] * len(counts)
            shape[axis] = len(per_axis)
            table = table * torch.tensor(per_axis, dtype=like.dtype, device=like.device).view(shape)
        return table

    def build(self, input_shape):
        check_rank(input_shape, self.rank, self)

    def check_input_shape(self, input_shape):
        check_rank(input_shape, self.rank, self)

    def compute_output_shape(self, input_shape):
        check_rank(input_shape, self.rank, self)
        spatial = tuple(output_length(n, k, s, 1, self.padding) for n, k, s in zip(
            spatial_shape(input_shape, self.data_format), self.pool_size, self.strides))
        if any(n is not None and n <= 0 for n in spatial):
            raise ValueError(f"{type(self).__name__} '{self.name}': input shape {tuple(input_shape)} "
                             f"is smaller than pool_size={self.pool_size} with padding='valid'. "
                             "Use padding='same' or a larger input.")
        if self.data_format == "channels_last":
            return (input_shape[0],) + spatial + (input_shape[-1],)
        return (input_shape[0], input_shape[1]) + spatial

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding,
                "strides": self.strides, "data_format": self.data_format}

    def extra_repr(self):
        return (f"name={self.name!r}, pool_size={self.pool_size}, strides={self.strides}, "
                f"padding={self.padding!r}, data_format={self.data_format!r}")


class MaxPooling1D(_Pooling):
    """Max over windows of ``pool_size`` steps (``strides`` defaults to ``pool_size``)."""
    rank, mode = 1, "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pooling):
    """Mean over windows of ``pool_size`` steps (``strides`` defaults to ``pool_size``)."""
    rank, mode = 1, "average"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling2D(_Pooling):
    """Max over ``pool_size`` windows of rows x cols (``strides`` defaults to ``pool_size``)."""
    rank, mode = 2, "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(_Pooling):
    """Mean over ``pool_size`` windows of rows x cols (``strides`` defaults to ``pool_size``)."""
    rank, mode = 2, "average"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling3D(_Pooling):
    """Max over ``pool_size`` windows of depth x rows x cols (``strides`` defaults to
    ``pool_size``)."""
    rank, mode = 3, "max"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling3D(_Pooling):
    """Mean over ``pool_size`` windows of depth x rows x cols (``strides`` defaults to
    ``pool_size``)."""
    rank, mode = 3, "average"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class _GlobalPooling(Layer):
    rank = None
    reduce = None  # torch reduction taking (tensor, dim, keepdim)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        a = take_keras1_args(kwargs, {"dim_ordering": "data_format"},
                             {"data_format": data_format}, type(self))
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(a["data_format"])
        self.keepdims = bool(keepdims)
        first = 1 if self.data_format == "channels_last" else 2
        self._axes = tuple(range(first, first + self.rank))

    def build(self, input_shape):
        check_rank(input_shape, self.rank, self)

    def check_input_shape(self, input_shape):
        check_rank(input_shape, self.rank, self)

    def call(self, inputs):
        return type(self).reduce(inputs, dim=self._axes, keepdim=self.keepdims)

    def compute_output_shape(self, input_shape):
        check_rank(input_shape, self.rank, self)
        ones = (1,) * self.rank if self.keepdims else ()
        if self.data_format == "channels_last":
            return (input_shape[0],) + ones + (input_shape[-1],)
        return (input_shape[0], input_shape[1]) + ones

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over all steps: ``(batch, steps, channels)`` -> ``(batch, channels)``.

    Like Keras 3, it ignores a mask: masked steps take part in the max, and no mask goes on.
    """
    rank, reduce = 1, torch.amax


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over all steps: ``(batch, steps, channels)`` -> ``(batch, channels)``.

    With a mask ``(batch, steps)`` (e.g. from ``Embedding(mask_zero=True)``), the mean over the
    kept steps only, as Keras (a row with no kept step gives NaN there too); no mask goes on.
    """
    rank, reduce = 1, torch.mean

    def call(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is None:
            return torch.mean(inputs, dim=self._axes, keepdim=self.keepdims)
        keep = mask.to(torch.bool).unsqueeze(2 if self.data_format == "channels_last" else 1)
        total = torch.where(keep, inputs, 0.0).sum(self._axes, keepdim=self.keepdims)
        return total / keep.to(inputs.dtype).sum(self._axes, keepdim=self.keepdims)


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over all positions: ``(batch, rows, cols, channels)`` -> ``(batch, channels)``."""
    rank, reduce = 2, torch.amax


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over all positions: ``(batch, rows, cols, channels)`` -> ``(batch, channels)``."""
    rank, reduce = 2, torch.mean


class GlobalMaxPooling3D(_GlobalPooling):
    """Max over all positions: ``(batch, depth, rows, cols, channels)`` -> ``(batch, channels)``."""
    rank, reduce = 3, torch.amax


class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over all positions: ``(batch, depth, rows, cols, channels)`` -> ``(batch, channels)``."""
    rank, reduce = 3, torch.mean


# Keras's other names for the same classes.
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (GlobalMaxPooling1D, GlobalMaxPooling2D,
                                                     GlobalMaxPooling3D)
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (GlobalAveragePooling1D,
                                                     GlobalAveragePooling2D,
                                                     GlobalAveragePooling3D)
