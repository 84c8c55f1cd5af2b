"""Transposed convolutions: ``Conv1DTranspose``, ``Conv2DTranspose``, ``Conv3DTranspose``
(Keras's ``Convolution*Transpose``; Keras 2's ``Deconvolution2D/3D``, ``Deconv2D/3D``).

Output sizes follow Keras (TensorFlow's rule): along an axis of input size ``n``, stride ``s``
and dilated kernel ``k = (kernel_size - 1) * dilation_rate + 1``,

- ``padding='valid'``: ``(n - 1) * s + max(k, s)``, or ``(n - 1) * s + k + output_padding``;
- ``padding='same'``: ``n * s``, or ``(n - 1) * s + k % 2 + output_padding``.

torch's ``conv_transpose`` gives ``(n - 1) * s + k`` and crops symmetrically, so the layer asks
torch for the largest symmetric crop and trims (or zero-pads) the rest on each side, where
TensorFlow places it. The bias is added after that, so padded positions hold the bias.
"""
import torch.nn.functional as F

from kaffe.layers.convolutional import (KERAS1_CONV_ARGS, BaseConv, check_rank, kernel_layout,
                                        normalize_tuple, spatial_shape, take_keras1_kernel_size,
                                        to_nchw, with_spatial)

_TORCH_CONV_TRANSPOSE = {2: F.conv_transpose2d, 3: F.conv_transpose3d}


def transpose_crops(kernel, stride, dilation, padding, output_padding):
    """(left, right) crop of torch's full ``(n - 1) * s + k`` output for Keras's size on one axis;
    negative values are zero padding."""
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        return 0, -extra
    total = stride + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, k - 1)
    return k - 1 - left, k - 1 - (total - left)


def transpose_length(size, kernel, stride, dilation, padding, output_padding):
    """Output length of one axis of a transposed convolution, ``None`` if ``size`` is unknown."""
    if size is None:
        return None
    left, right = transpose_crops(kernel, stride, dilation, padding, output_padding)
    return (size - 1) * stride + (kernel - 1) * dilation + 1 - left - right


def split_crops(crops):
    """(left, right) crops as torch's symmetric ``padding`` plus the ``F.pad`` amounts left over
    (negative ones crop, positive ones pad zeros), or ``None`` when torch's padding does it all."""
    padding = tuple(max(min(left, right), 0) for left, right in crops)
    rest = [(p - left, p - right) for (left, right), p in zip(crops, padding)]
    flat = tuple(v for pair in reversed(rest) for v in pair)  # F.pad: last axis first
    return padding, (flat if any(flat) else None)


class _ConvTranspose(BaseConv):
    """N-D transposed convolution plus bias, then ``activation``.

    kernel: Keras shape ``(*kernel_size, filters, in_channels)``, Glorot uniform by default (fans
    counted as Keras does on that shape); stored as torch's ``(in_channels, filters,
    *kernel_size)``. bias: ``(filters,)``, zeros. ``output_padding`` (each smaller than the
    stride) adds that many positions at the end of each axis. Keras 1's ``output_shape`` is
    accepted and ignored, as Keras 2 did: the output size follows from the arguments above.
    """

    def __init__(self, filters=None, kernel_size=None, strides=1, padding="valid",
                 output_padding=None, data_format=None, dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        if "groups" in kwargs:
            raise TypeError(f"{type(self).__name__} has no groups argument (as in Keras). "
                            f"Received: groups={kwargs['groups']!r}")
        super().__init__(filters=filters, kernel_size=kernel_size, strides=strides,
                         padding=padding, data_format=data_format, dilation_rate=dilation_rate,
                         activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         **kwargs)
        cls = type(self).__name__
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = normalize_tuple(output_padding, self.rank, "output_padding", cls,
                                                  allow_zero=True)
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ValueError(f"{cls} expected output_padding smaller than strides on every "
                                 f"axis. Received: output_padding={output_padding!r}, "
                                 f"strides={self.strides}")
        paddings = self.output_padding or (None,) * self.rank
        crops = [transpose_crops(k, s, d, self.padding, p) for k, s, d, p in
                 zip(self.kernel_size, self.strides, self.dilation_rate, paddings)]
        crops = [(0, 0)] * (self.rank == 1) + crops  # 1D runs as 2D with a height-1 axis
        self._torch_padding, self._pad_after = split_crops(crops)

    def _keras1_kernel_size(self, kwargs, given):
        """Keras 1's ``Deconvolution2D(nb_filter, nb_row, nb_col, output_shape, ...)``: the
        output shape (keyword or fourth positional) is dropped, as Keras 2 did."""
        given = dict(given)
        keras1 = kwargs.pop("output_shape", None) is not None
        if isinstance(given["padding"], (tuple, list)):
            given["padding"], keras1 = "valid", True
        keras1 = keras1 or bool(set(kwargs) & set(KERAS1_CONV_ARGS))
        return take_keras1_kernel_size(kwargs, given, self.rank, type(self).__name__, keras1)

    def build(self, input_shape):
        channels = self._known_channels(input_shape)
        shape = self.kernel_size + (self.filters, channels)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer,
                                      layout=kernel_layout(self.rank),
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self._add_bias(self.filters)
        self._load_initial_weights()

    def call(self, inputs):
        x = to_nchw(inputs, self.rank, self.data_format)
        conv = _TORCH_CONV_TRANSPOSE[x.dim() - 2]
        y = conv(x, self._op_kernel(self.kernel), self.bias if self._pad_after is None else None,
                 stride=self._strides_op, padding=self._torch_padding, dilation=self._dilation_op)
        if self._pad_after is not None:
            y = F.pad(y, self._pad_after)
            if self.bias is not None:  # after the padding, as Keras adds it
                y = y + self.bias.view(-1, *(1,) * (y.dim() - 2))
        return self._finish(y)

    def check_input_shape(self, input_shape):
        self._check_channels(input_shape, self.kernel.shape[0])

    def compute_output_shape(self, input_shape):
        check_rank(input_shape, self.rank, self)
        paddings = self.output_padding or (None,) * self.rank
        spatial = tuple(transpose_length(n, k, s, d, self.padding, p) for n, k, s, d, p in zip(
            spatial_shape(input_shape, self.data_format), self.kernel_size, self.strides,
            self.dilation_rate, paddings))
        return with_spatial(input_shape, spatial, self.filters, self.data_format)

    def get_config(self):
        config = {**super().get_config(), "output_padding": self.output_padding}
        del config["groups"]
        return config


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1D convolution: ``(batch, steps, channels)`` -> ``(batch, new_steps, filters)``."""
    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2D convolution (the "deconvolution" of Keras 1/2), e.g. ``Conv2DTranspose(16, 3,
    strides=2, padding='same')`` doubles rows and columns. Keras 1's ``nb_filter``,
    ``nb_row``/``nb_col``, ``subsample``, ``border_mode``, ``dim_ordering`` are accepted."""
    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3D convolution over ``(batch, depth, rows, cols, channels)`` (or channels first).
    As in Keras, ``data_format`` comes before ``output_padding`` among the positional arguments."""
    rank = 3

    def __init__(self, filters=None, kernel_size=None, strides=1, padding="valid",
                 data_format=None, output_padding=None, dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format,
                         dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


# Keras 3's other names, and Keras 2's (``keras.layers.Deconvolution2D`` was Conv2DTranspose).
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Deconvolution2D = Deconv2D = Conv2DTranspose
Convolution3DTranspose = Deconvolution3D = Deconv3D = Conv3DTranspose
