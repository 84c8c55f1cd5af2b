"""Depthwise and depthwise-separable convolutions: ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D``
(Keras's ``SeparableConvolution1D/2D``).

A depthwise convolution filters each input channel on its own with ``depth_multiplier`` kernels:
output channel ``c * depth_multiplier + m`` is input channel ``c`` seen through kernel ``m``
(Keras's order), which is torch's grouped convolution with ``groups = in_channels``. A separable
convolution follows it with a 1x1 ("pointwise") convolution to ``filters`` channels; the bias
comes after the pointwise step only. As in Keras 3, strides and dilation may be combined here.
"""
from kaffe import constraints, initializers, regularizers
from kaffe.layers.convolutional import (TORCH_CONV, SpatialConv, kernel_layout, positive_int,
                                        take_keras1_args, take_keras1_kernel_size, with_spatial)

# Keras 1's SeparableConvolution2D spellings (``init`` sets both kernels' initializers).
_KERAS1_SEPARABLE_ARGS = {"nb_filter": "filters", "subsample": "strides", "border_mode": "padding",
                          "dim_ordering": "data_format", "b_regularizer": "bias_regularizer",
                          "b_constraint": "bias_constraint", "bias": "use_bias"}


class BaseDepthwiseConv(SpatialConv):
    """Depthwise convolution plus bias, then ``activation``.

    kernel: Keras shape ``(*kernel_size, in_channels, depth_multiplier)``, Glorot uniform by
    default; stored as ``(in_channels, depth_multiplier, *kernel_size)``, which is torch's grouped
    kernel ``(in_channels * depth_multiplier, 1, *kernel_size)`` without a copy.
    bias: ``(in_channels * depth_multiplier,)``, zeros.
    """

    strides_or_dilation = False
    kernel_name = "kernel"  # Keras's weight name: 'depthwise_kernel' in separable layers

    def __init__(self, kernel_size=None, strides=1, padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, bias_initializer, bias_regularizer, bias_constraint,
                         activity_regularizer, **kwargs)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier",
                                             type(self).__name__)
        self.depthwise_initializer = initializers.get(depthwise_initializer or "glorot_uniform")
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def _add_depthwise_kernel(self, channels):
        shape = self.kernel_size + (channels, self.depth_multiplier)
        self.add_weight(self.kernel_name, shape, self.depthwise_initializer,
                        layout=(self.rank, self.rank + 1) + tuple(range(self.rank)),
                        regularizer=self.depthwise_regularizer,
                        constraint=self.depthwise_constraint)

    def _depthwise(self, inputs, bias):
        kernel = getattr(self, self.kernel_name)
        channels, multiplier = kernel.shape[:2]
        grouped = kernel.reshape(channels * multiplier, 1, *kernel.shape[2:])
        return self._convolve(inputs, grouped, bias, channels)

    def build(self, input_shape):
        channels = self._known_channels(input_shape)
        self.compute_output_shape(input_shape)  # too-small inputs fail here, with a clear message
        self._add_depthwise_kernel(channels)
        self._add_bias(channels * self.depth_multiplier)
        self._load_initial_weights()

    def call(self, inputs):
        return self._finish(self._depthwise(inputs, self.bias))

    def check_input_shape(self, input_shape):
        self._check_channels(input_shape, getattr(self, self.kernel_name).shape[0])

    def compute_output_shape(self, input_shape):
        channels = self._channels(input_shape)
        out = None if channels is None else channels * self.depth_multiplier
        return with_spatial(input_shape, self._spatial_output(input_shape), out, self.data_format)

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "depthwise_constraint": constraints.serialize(self.depthwise_constraint)}


class DepthwiseConv1D(BaseDepthwiseConv):
    """Depthwise 1D convolution: ``(batch, steps, channels)`` ->
    ``(batch, new_steps, channels * depth_multiplier)``."""
    rank = 1


class DepthwiseConv2D(BaseDepthwiseConv):
    """Depthwise 2D convolution: ``(batch, rows, cols, channels)`` ->
    ``(batch, new_rows, new_cols, channels * depth_multiplier)``."""
    rank = 2


class BaseSeparableConv(BaseDepthwiseConv):
    """Depthwise convolution, then a pointwise one to ``filters`` channels, bias, ``activation``.

    depthwise_kernel: as ``BaseDepthwiseConv``'s kernel. pointwise_kernel: Keras shape
    ``(*(1,) * rank, in_channels * depth_multiplier, filters)``, Glorot uniform by default, stored
    as torch's ``(filters, in_channels * depth_multiplier, 1...)``. bias: ``(filters,)``, zeros.
    Keras 1's ``nb_filter``, ``nb_row``/``nb_col``, ``subsample``, ``border_mode``, ``init`` (both
    kernels) and ``dim_ordering`` are accepted.
    """

    kernel_name = "depthwise_kernel"

    def __init__(self, filters=None, kernel_size=None, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, depth_multiplier=1, activation=None,
                 use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, pointwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, pointwise_constraint=None,
                 bias_constraint=None, **kwargs):
        cls = type(self).__name__
        if "init" in kwargs:  # Keras 1: one initializer for both kernels
            depthwise_initializer = pointwise_initializer = kwargs.pop("init")
        given = dict(filters=filters, kernel_size=kernel_size, strides=strides, padding=padding,
                     data_format=data_format, use_bias=use_bias, bias_regularizer=bias_regularizer,
                     bias_constraint=bias_constraint)
        keras1 = bool(set(kwargs) & set(_KERAS1_SEPARABLE_ARGS))
        given = take_keras1_kernel_size(kwargs, given, self.rank, cls, keras1)
        a = take_keras1_args(kwargs, _KERAS1_SEPARABLE_ARGS, given, type(self))
        if a["filters"] is None or a["kernel_size"] is None:
            raise TypeError(f"{cls} needs filters and kernel_size, e.g. {cls}(32, 3). "
                            f"Received: filters={a['filters']!r}, kernel_size={a['kernel_size']!r}")
        super().__init__(a["kernel_size"], a["strides"], a["padding"], depth_multiplier,
                         a["data_format"], dilation_rate, activation, a["use_bias"],
                         depthwise_initializer, bias_initializer, depthwise_regularizer,
                         a["bias_regularizer"], activity_regularizer, depthwise_constraint,
                         a["bias_constraint"], **kwargs)
        self.filters = positive_int(a["filters"], "filters", cls)
        self.pointwise_initializer = initializers.get(pointwise_initializer or "glorot_uniform")
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, input_shape):
        channels = self._known_channels(input_shape)
        self.compute_output_shape(input_shape)
        self._add_depthwise_kernel(channels)
        shape = (1,) * self.rank + (channels * self.depth_multiplier, self.filters)
        self.pointwise_kernel = self.add_weight("pointwise_kernel", shape,
                                                self.pointwise_initializer,
                                                layout=kernel_layout(self.rank),
                                                regularizer=self.pointwise_regularizer,
                                                constraint=self.pointwise_constraint)
        self._add_bias(self.filters)
        self._load_initial_weights()

    def call(self, inputs):
        y = self._depthwise(inputs, None)
        pointwise = self._op_kernel(self.pointwise_kernel)
        return self._finish(TORCH_CONV[y.dim() - 2](y, pointwise, self.bias))

    def compute_output_shape(self, input_shape):
        return with_spatial(input_shape, self._spatial_output(input_shape), self.filters,
                            self.data_format)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                "pointwise_constraint": constraints.serialize(self.pointwise_constraint)}


class SeparableConv1D(BaseSeparableConv):
    """Depthwise-separable 1D convolution over ``(batch, steps, channels)``."""
    rank = 1


class SeparableConv2D(BaseSeparableConv):
    """Depthwise-separable 2D convolution over ``(batch, rows, cols, channels)``."""
    rank = 2


# Keras's other names for the same classes.
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
