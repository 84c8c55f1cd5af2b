"""Convolution layers: ``Conv1D``, ``Conv2D``, ``Conv3D`` (Keras 2 names ``Convolution1D/2D/3D``).

Keras's semantics on torch's kernels. Inputs are ``channels_last`` by default; such an input is
handed to torch as a permuted view, which is an NC(D)HW tensor in torch's channels_last memory
format, so convolution and pooling run on it without a copy. A 1D input is run as a 2D one of
height 1 (``(N, L, C)`` -> ``(N, C, 1, L)``), which keeps that fast path for sequences too.

``padding='same'`` pads as TensorFlow/Keras do: the total padding along an axis is
``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)``, split with the odd pixel on the
right/bottom. The helpers at the top are shared with the transposed, separable and depthwise
convolutions and the pooling, padding and up-sampling layers.
"""
import inspect

import torch.nn.functional as F

from kaffe import activations, constraints, initializers, regularizers
from kaffe.config import standardize_data_format
from kaffe.engine.layer import Layer, inside_user_layer_init


# ------------------------------------------------------------------------------ shared helpers
def normalize_tuple(value, n, arg, layer, allow_zero=False):
    """An int or a sequence of ``n`` positive (or, with ``allow_zero``, non-negative) ints as a
    tuple of ``n`` ints."""
    items = (value,) * n if isinstance(value, int) else value
    try:
        items = tuple(items)
    except TypeError:
        items = None
    low = 0 if allow_zero else 1
    if (items is None or len(items) != n
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in items)):
        kind = "non-negative" if allow_zero else "positive"
        what = (f"a {kind} integer" if n == 1
                else f"a {kind} integer or a tuple of {n} {kind} integers")
        raise ValueError(f"{layer} expected {what} for {arg}. Received: {arg}={value!r}")
    return items


def normalize_padding(value, layer, allowed=("valid", "same")):
    padding = value.lower() if isinstance(value, str) else value
    if padding == "full":  # Keras 1's border_mode='full'
        raise ValueError(f"{layer}: padding='full' was removed in Keras 2. Pad the input explicitly "
                         "(ZeroPadding) and use padding='valid'.")
    if padding not in allowed:
        raise ValueError(f"{layer} expected padding to be one of {allowed}. "
                         f"Received: padding={value!r}")
    return padding


def same_padding(size, kernel, stride, dilation=1):
    """(before, after) padding of one axis for TensorFlow's 'same' (odd pixel after)."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def output_length(size, kernel, stride, dilation, padding):
    """Output length of a convolution/pooling axis, ``None`` if ``size`` is unknown."""
    if size is None:
        return None
    if padding == "valid":
        return (size - (kernel - 1) * dilation - 1) // stride + 1
    return (size - 1) // stride + 1  # 'same' and 'causal'


def spatial_padding(x, kernels, strides, dilations=None):
    """'same' padding for an NC(D)HW tensor: ``(padding for torch's op, F.pad tuple or None)``.

    Symmetric padding goes to the op itself (no copy); asymmetric padding needs ``F.pad``.
    """
    dilations = dilations or (1,) * len(kernels)
    pads = [same_padding(n, k, s, d)
            for n, k, s, d in zip(x.shape[2:], kernels, strides, dilations)]
    if all(before == after for before, after in pads):
        return tuple(before for before, _ in pads), None
    return 0, tuple(p for pair in reversed(pads) for p in pair)  # F.pad: last axis first


def to_nchw(x, rank, data_format):
    """A view of a layer input as torch's ``(N, C, *spatial)``; 1D inputs get height 1."""
    if rank == 1:
        if data_format == "channels_last":
            return x.unsqueeze(1).permute(0, 3, 1, 2)
        return x.unsqueeze(2)
    if data_format == "channels_last":
        return x.permute(0, rank + 1, *range(1, rank + 1))
    return x


def from_nchw(y, rank, data_format):
    """Undo ``to_nchw`` on an ``(N, C, *spatial)`` result."""
    if data_format == "channels_last":
        y = y.permute(0, *range(2, y.dim()), 1)
        return y.squeeze(1) if rank == 1 else y
    return y.squeeze(2) if rank == 1 else y


def spatial_shape(input_shape, data_format):
    return tuple(input_shape[1:-1]) if data_format == "channels_last" else tuple(input_shape[2:])


def with_spatial(input_shape, spatial, channels, data_format):
    """An output shape: batch axis of ``input_shape``, ``spatial`` sizes and ``channels``."""
    if data_format == "channels_last":
        return (input_shape[0],) + tuple(spatial) + (channels,)
    return (input_shape[0], channels) + tuple(spatial)


_EXAMPLES = {1: "(batch, steps, channels)", 2: "(batch, rows, cols, channels)",
             3: "(batch, depth, rows, cols, channels)"}


def check_rank(input_shape, rank, layer):
    expected = rank + 2
    if len(input_shape) != expected:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects inputs of rank {expected}, "
                         f"e.g. {_EXAMPLES[rank]}. Received input shape {tuple(input_shape)}.")


_KERAS1_FORMATS = {"tf": "channels_last", "th": "channels_first", "default": None}


def take_keras1_args(kwargs, renames, given, layer_cls):
    """Move Keras 1 spellings (``nb_filter``, ``border_mode``, ``dim_ordering``...) out of ``kwargs``
    onto their Keras 3 names in ``given``; passing both spellings of one argument is an error."""
    params = inspect.signature(layer_cls.__init__).parameters
    defaults = {name: p.default for name, p in params.items()}
    args = dict(given)
    for old, new in renames.items():
        if old not in kwargs:
            continue
        value = kwargs.pop(old)
        if new == "data_format":
            value = _KERAS1_FORMATS.get(value, value)
        if args.get(new) is not None and args[new] != defaults.get(new):
            raise ValueError(f"{layer_cls.__name__} got both {old}={value!r} (Keras 1) and "
                             f"{new}={args[new]!r}; pass only {new}.")
        args[new] = value
    return args


_KERAS1_KERNEL_DIMS = {2: ("nb_row", "nb_col"), 3: ("kernel_dim1", "kernel_dim2", "kernel_dim3")}


def take_keras1_kernel_size(kwargs, given, rank, cls, keras1):
    """Keras 1's per-axis kernel sizes (``nb_row``/``nb_col``, ``kernel_dim1..3``) as
    ``kernel_size``. With Keras 1 keywords present (``keras1``), the positional form
    ``Convolution2D(32, 3, 5)`` / ``Convolution3D(32, 3, 3, 3)`` reads as a 3x5 / 3x3x3 kernel, as
    in Keras 1 and 2; without them the later positions are ``strides``/``padding``, as in Keras 3."""
    names = _KERAS1_KERNEL_DIMS.get(rank)
    if names is None:
        return given
    given = dict(given)
    dims = [kwargs.pop(name, None) for name in names]
    kernel = given["kernel_size"]
    if all(d is not None for d in dims):
        if kernel is not None:
            raise ValueError(f"{cls} got both {'/'.join(names)} (Keras 1) and "
                             f"kernel_size={kernel!r}; pass only kernel_size.")
        given["kernel_size"] = tuple(dims)
    elif dims[0] is None and all(d is not None for d in dims[1:]) and isinstance(kernel, int):
        given["kernel_size"] = (kernel, *dims[1:])  # Convolution2D(32, 3, nb_col=3)
    elif any(d is not None for d in dims):
        raise TypeError(f"{cls} got {', '.join(f'{n}={d!r}' for n, d in zip(names, dims))} "
                        f"(Keras 1); pass all of them, or kernel_size.")
    elif rank == 2 and keras1 and isinstance(kernel, int) and isinstance(given["strides"], int) \
            and given["strides"] != 1:
        given["kernel_size"], given["strides"] = (kernel, given["strides"]), 1
    elif rank == 3 and isinstance(kernel, int) and isinstance(given["strides"], int) \
            and isinstance(given["padding"], int):  # an int padding is never Keras 3
        given["kernel_size"] = (kernel, given["strides"], given["padding"])
        given["strides"], given["padding"] = 1, "valid"
    return given


# ------------------------------------------------------------------------------ convolutions
KERAS1_CONV_ARGS = {
    "nb_filter": "filters", "filter_length": "kernel_size", "subsample": "strides",
    "subsample_length": "strides", "border_mode": "padding", "init": "kernel_initializer",
    "dim_ordering": "data_format", "bias": "use_bias", "atrous_rate": "dilation_rate",
    "W_regularizer": "kernel_regularizer", "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint", "b_constraint": "bias_constraint",
}

TORCH_CONV = {2: F.conv2d, 3: F.conv3d}


def kernel_layout(rank):
    """Permutation of a Keras kernel ``(*kernel_size, a, b)`` into torch's ``(b, a, *kernel_size)``."""
    return (rank + 1, rank) + tuple(range(rank))


def positive_int(value, arg, cls):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{cls} expected a positive integer for {arg}. Received: {arg}={value!r}")
    return value


class SpatialConv(Layer):
    """What every convolution shares: the window geometry (``kernel_size``, ``strides``,
    ``padding``, ``dilation_rate``, ``data_format``), ``activation``, the bias options and
    ``activity_regularizer``; inputs run as torch NC(D)HW views (1D as 2D of height 1).
    Keras 2's ``weights=[...]`` loads initial weights at build."""

    rank = None
    paddings = ("valid", "same")
    #: Keras refuses strides > 1 with dilation_rate > 1 for these layers (not for depthwise ones).
    strides_or_dilation = True

    def __init__(self, kernel_size, strides, padding, data_format, dilation_rate, activation,
                 use_bias, bias_initializer, bias_regularizer, bias_constraint,
                 activity_regularizer=None, weights=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        cls = type(self).__name__
        if kernel_size is None:
            raise TypeError(f"{cls} needs kernel_size. Received: kernel_size=None")
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size", cls)
        self.strides = normalize_tuple(strides, self.rank, "strides", cls)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate", cls)
        if self.strides_or_dilation and max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{cls}: strides > 1 cannot be combined with dilation_rate > 1 (as in "
                             f"Keras). Received: strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}")
        self.padding = normalize_padding(padding, cls, self.paddings)
        self.data_format = standardize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer or "zeros")
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)
        self._initial_weights = weights
        pad = (1,) * (self.rank == 1)  # torch runs a 1D layer as a 2D one of height 1
        self._kernel_op = pad + self.kernel_size
        self._strides_op = pad + self.strides
        self._dilation_op = pad + self.dilation_rate

    def _channels(self, input_shape):
        return input_shape[-1] if self.data_format == "channels_last" else input_shape[1]

    def _known_channels(self, input_shape):
        check_rank(input_shape, self.rank, self)
        channels = self._channels(input_shape)
        if channels is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' needs the channel axis of its "
                             f"input to be known. Received input shape {tuple(input_shape)} "
                             f"(data_format={self.data_format!r}).")
        return channels

    def _add_bias(self, size):
        self.bias = (self.add_weight("bias", (size,), self.bias_initializer,
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint)
                     if self.use_bias else None)

    def _load_initial_weights(self):
        if self._initial_weights is not None:
            self.built = True
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _op_kernel(self, kernel):
        """A stored ``(out, in, *kernel_size)`` kernel as torch's op wants it (1D: height 1)."""
        return kernel.unsqueeze(2) if self.rank == 1 else kernel

    def _convolve(self, inputs, kernel, bias, groups):
        """Cross-correlate an input in the layer's format with a stored kernel; the result stays
        NC(D)HW."""
        x = to_nchw(inputs, self.rank, self.data_format)
        padding = 0
        if self.padding == "causal":
            x = F.pad(x, ((self.kernel_size[0] - 1) * self.dilation_rate[0], 0))
        elif self.padding == "same":
            padding, pads = spatial_padding(x, self._kernel_op, self._strides_op,
                                            self._dilation_op)
            if pads is not None:
                x = F.pad(x, pads)
        conv = TORCH_CONV[x.dim() - 2]
        return conv(x, self._op_kernel(kernel), bias, self._strides_op, padding,
                    self._dilation_op, groups)

    def _finish(self, y):
        return self.activation(from_nchw(y, self.rank, self.data_format))

    def _spatial_output(self, input_shape):
        check_rank(input_shape, self.rank, self)
        spatial = tuple(output_length(n, k, s, d, self.padding) for n, k, s, d in zip(
            spatial_shape(input_shape, self.data_format), self.kernel_size, self.strides,
            self.dilation_rate))
        if any(n is not None and n <= 0 for n in spatial):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': input shape {tuple(input_shape)} is too small "
                f"for kernel_size={self.kernel_size} with dilation_rate={self.dilation_rate} and "
                f"padding='valid' (output would be {spatial}). Use padding='same' or a larger input.")
        return spatial

    def _check_channels(self, input_shape, expected):
        check_rank(input_shape, self.rank, self)
        channels = self._channels(input_shape)
        if channels is not None and channels != expected:
            raise ValueError(f"{type(self).__name__} '{self.name}' was built for {expected} input "
                             f"channels, received input shape {tuple(input_shape)} "
                             f"(data_format={self.data_format!r}).")

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "bias_constraint": constraints.serialize(self.bias_constraint)}

    def extra_repr(self):
        return (f"name={self.name!r}, kernel_size={self.kernel_size}, strides={self.strides}, "
                f"padding={self.padding!r}, data_format={self.data_format!r}")


class BaseConv(SpatialConv):
    """N-D convolution (cross-correlation) plus bias, then ``activation``.

    kernel: Keras shape ``(*kernel_size, in_channels // groups, filters)``, drawn from
    ``kernel_initializer`` (Glorot uniform by default, fans counted over the receptive field);
    stored as torch's ``(filters, in_channels // groups, *kernel_size)``. bias: ``(filters,)``,
    zeros. ``reset_parameters()`` draws both again. ``kernel_regularizer``/``bias_regularizer``
    add their penalties to the training loss; ``kernel_constraint``/``bias_constraint`` project
    the weights after each update (both on the Keras-shaped weight).
    """

    def __init__(self, filters=None, kernel_size=None, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, weights=None, **kwargs):
        cls = type(self).__name__
        given = dict(filters=filters, kernel_size=kernel_size, strides=strides, padding=padding,
                     data_format=data_format, dilation_rate=dilation_rate, use_bias=use_bias,
                     kernel_initializer=kernel_initializer, kernel_regularizer=kernel_regularizer,
                     bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                     bias_constraint=bias_constraint)
        given = self._keras1_kernel_size(kwargs, given)
        a = take_keras1_args(kwargs, KERAS1_CONV_ARGS, given, type(self))
        if a["filters"] is None or a["kernel_size"] is None:
            raise TypeError(f"{cls} needs filters and kernel_size, e.g. {cls}(32, 3). "
                            f"Received: filters={a['filters']!r}, kernel_size={a['kernel_size']!r}")
        super().__init__(a["kernel_size"], a["strides"], a["padding"], a["data_format"],
                         a["dilation_rate"], activation, a["use_bias"], bias_initializer,
                         a["bias_regularizer"], a["bias_constraint"], activity_regularizer,
                         weights, **kwargs)
        self.filters = positive_int(a["filters"], "filters", cls)
        positive_int(groups, "groups", cls)
        if self.filters % groups:
            raise ValueError(f"{cls}: filters must be divisible by groups. "
                             f"Received: filters={self.filters}, groups={groups}")
        self.groups = groups
        self.kernel_initializer = initializers.get(a["kernel_initializer"] or "glorot_uniform")
        self.kernel_regularizer = regularizers.get(a["kernel_regularizer"])
        self.kernel_constraint = constraints.get(a["kernel_constraint"])
        if inside_user_layer_init():  # a part of a user layer, whose code may use self.kernel
            self._keras_kernel = True

    def _keras1_kernel_size(self, kwargs, given):
        keras1 = bool(set(kwargs) & set(KERAS1_CONV_ARGS))
        return take_keras1_kernel_size(kwargs, given, self.rank, type(self).__name__, keras1)

    # ------------------------------------------------------------------ build and call
    def build(self, input_shape):
        channels = self._known_channels(input_shape)
        if channels % self.groups:
            raise ValueError(f"{type(self).__name__} '{self.name}': input channels ({channels}) must "
                             f"be divisible by groups={self.groups}. Received input shape "
                             f"{tuple(input_shape)}.")
        self.compute_output_shape(input_shape)  # too-small inputs fail here, with a clear message
        shape = self.kernel_size + (channels // self.groups, self.filters)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer,
                                      layout=None if self._keras_kernel else kernel_layout(self.rank),
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self._add_bias(self.filters)
        self._load_initial_weights()

    # A user subclass that overrides ``call`` or ``convolution_op`` (Keras 3's documented way to
    # customise a convolution) reads ``self.kernel`` itself, so it gets Keras's layout
    # ``(*kernel_size, in, filters)``, and so does a convolution made inside a user layer's
    # ``__init__`` (its owner reads ``self.conv.kernel``); kaffe's own layers keep torch's, which
    # is faster.
    _keras_kernel = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__module__.startswith("kaffe.") and (
                "call" in cls.__dict__ or "convolution_op" in cls.__dict__):
            cls._keras_kernel = True

    def convolution_op(self, inputs, kernel):
        """Keras 3's hook: convolve ``inputs`` (in the layer's data format) with a Keras-layout
        ``kernel`` using the layer's strides, padding and dilation; no bias, no activation."""
        torch_kernel = kernel.permute(kernel_layout(self.rank))
        return from_nchw(self._convolve(inputs, torch_kernel, None, self.groups), self.rank,
                         self.data_format)

    def call(self, inputs):
        if not self._keras_kernel:
            return self._finish(self._convolve(inputs, self.kernel, self.bias, self.groups))
        outputs = self.convolution_op(inputs, self.kernel)
        if self.use_bias:
            channel_axis = -1 if self.data_format == "channels_last" else 1
            shape = [1] * outputs.dim()
            shape[channel_axis] = self.filters
            outputs = outputs + self.bias.reshape(shape)
        return self.activation(outputs)

    def check_input_shape(self, input_shape):
        in_axis = -2 if self._keras_kernel else 1
        self._check_channels(input_shape, self.kernel.shape[in_axis] * self.groups)

    def compute_output_shape(self, input_shape):
        return with_spatial(input_shape, self._spatial_output(input_shape), self.filters,
                            self.data_format)

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "groups": self.groups,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint)}

    def extra_repr(self):
        return f"filters={self.filters}, {super().extra_repr()}"


class Conv1D(BaseConv):
    """1D convolution over ``(batch, steps, channels)`` (or ``(batch, channels, steps)``).

    ``padding='causal'`` pads ``dilation_rate * (kernel_size - 1)`` steps on the left only, so
    output step t sees input steps <= t. Keras 1's ``input_dim``/``input_length`` set the input
    shape ``(input_length, input_dim)``.
    """

    rank = 1
    paddings = ("valid", "same", "causal")

    def __init__(self, filters=None, kernel_size=None, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        if "input_dim" in kwargs and "input_shape" not in kwargs:  # Keras 1 / Keras 2 legacy
            kwargs["input_shape"] = (kwargs.pop("input_length", None), kwargs.pop("input_dim"))
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, groups,
                         activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, activity_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


class Conv2D(BaseConv):
    """2D convolution over ``(batch, rows, cols, channels)`` (or ``(batch, channels, rows, cols)``).

    Keras 1 spellings are accepted: ``nb_filter``, ``nb_row``/``nb_col``, ``subsample``,
    ``border_mode``, ``init``, ``dim_ordering``. With any of them present, Keras 1's positional
    form ``Convolution2D(32, 3, 5, border_mode='same')`` reads as a 3x5 kernel (Keras 1 and 2's
    reading); without them the third positional argument is ``strides``, as in Keras 3.
    """

    rank = 2


class Conv3D(BaseConv):
    """3D convolution over ``(batch, depth, rows, cols, channels)`` (or channels first).

    Keras 1 spellings are accepted as for ``Conv2D``, with ``kernel_dim1..3`` for the kernel
    size; Keras 1's positional ``Convolution3D(32, 3, 3, 3)`` reads as a 3x3x3 kernel.
    """

    rank = 3


# Keras 2 names: the same classes, as in Keras 3.
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D
