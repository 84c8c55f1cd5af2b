"""Convolution layers: ``Conv1D`` and ``Conv2D`` (Keras 2 names ``Convolution1D``/``Convolution2D``).

Keras's semantics on torch's kernels. Inputs are ``channels_last`` by default; such an input is
handed to torch as a permuted view, which is an NCHW tensor in torch's channels_last memory
format, so convolution and pooling run on it without a copy. A 1D input is run as a 2D one of
height 1 (``(N, L, C)`` -> ``(N, C, 1, L)``), which keeps that fast path for sequences too.

``padding='same'`` pads as TensorFlow/Keras do: the total padding along an axis is
``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)``, split with the odd pixel on the
right/bottom. The helpers at the top are shared with the pooling and up-sampling layers.
"""
import inspect

import torch.nn.functional as F

from kaffe import activations, initializers
from kaffe.config import standardize_data_format
from kaffe.engine.layer import Layer


# ------------------------------------------------------------------------------ shared helpers
def normalize_tuple(value, n, arg, layer):
    """An int or a sequence of ``n`` positive ints as a tuple of ``n`` ints."""
    items = (value,) * n if isinstance(value, int) else value
    try:
        items = tuple(items)
    except TypeError:
        items = None
    if (items is None or len(items) != n
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items)):
        what = ("a positive integer" if n == 1
                else f"a positive integer or a tuple of {n} positive integers")
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


def spatial_padding(x, kernels, strides, dilations=(1, 1)):
    """'same' padding for an NCHW tensor: ``(padding for torch's op, F.pad tuple or None)``.

    Symmetric padding goes to the op itself (no copy); asymmetric padding needs ``F.pad``.
    """
    pads = [same_padding(n, k, s, d)
            for n, k, s, d in zip(x.shape[2:], kernels, strides, dilations)]
    if all(before == after for before, after in pads):
        return tuple(before for before, _ in pads), None
    (top, bottom), (left, right) = pads
    return 0, (left, right, top, bottom)


def to_nchw(x, rank, data_format):
    """A view of a layer input as ``(N, C, H, W)``; 1D inputs get height 1."""
    if rank == 1:
        if data_format == "channels_last":
            return x.unsqueeze(1).permute(0, 3, 1, 2)
        return x.unsqueeze(2)
    return x.permute(0, 3, 1, 2) if data_format == "channels_last" else x


def from_nchw(y, rank, data_format):
    """Undo ``to_nchw`` on an ``(N, C, H, W)`` result."""
    if data_format == "channels_last":
        y = y.permute(0, 2, 3, 1)
        return y.squeeze(1) if rank == 1 else y
    return y.squeeze(2) if rank == 1 else y


def spatial_shape(input_shape, data_format):
    return tuple(input_shape[1:-1]) if data_format == "channels_last" else tuple(input_shape[2:])


def check_rank(input_shape, rank, layer):
    expected = rank + 2
    if len(input_shape) != expected:
        example = "(batch, steps, channels)" if rank == 1 else "(batch, rows, cols, channels)"
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects inputs of rank {expected}, "
                         f"e.g. {example}. Received input shape {tuple(input_shape)}.")


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


# ------------------------------------------------------------------------------ convolutions
_KERAS1_CONV_ARGS = {
    "nb_filter": "filters", "filter_length": "kernel_size", "subsample": "strides",
    "subsample_length": "strides", "border_mode": "padding", "init": "kernel_initializer",
    "dim_ordering": "data_format", "bias": "use_bias", "atrous_rate": "dilation_rate",
    "W_regularizer": "kernel_regularizer", "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint", "b_constraint": "bias_constraint",
}


class _Conv(Layer):
    """N-D convolution (cross-correlation) plus bias, then ``activation``.

    kernel: Keras shape ``(*kernel_size, in_channels // groups, filters)``, drawn from
    ``kernel_initializer`` (Glorot uniform by default, fans counted over the receptive field);
    stored as torch's ``(filters, in_channels // groups, *kernel_size)``. bias: ``(filters,)``,
    zeros. ``reset_parameters()`` draws both again. Regularizer and constraint arguments are
    kept in the config only.
    """

    rank = None

    def __init__(self, filters=None, kernel_size=None, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, weights=None, **kwargs):
        given = dict(filters=filters, kernel_size=kernel_size, strides=strides, padding=padding,
                     data_format=data_format, dilation_rate=dilation_rate, use_bias=use_bias,
                     kernel_initializer=kernel_initializer, kernel_regularizer=kernel_regularizer,
                     bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                     bias_constraint=bias_constraint)
        a = self._keras1_args(kwargs, given)
        super().__init__(**kwargs)
        cls = type(self).__name__
        if a["filters"] is None or a["kernel_size"] is None:
            raise TypeError(f"{cls} needs filters and kernel_size, e.g. {cls}(32, 3). "
                            f"Received: filters={a['filters']!r}, kernel_size={a['kernel_size']!r}")
        if not isinstance(a["filters"], int) or isinstance(a["filters"], bool) or a["filters"] <= 0:
            raise ValueError(f"{cls} expected a positive integer for filters. "
                             f"Received: filters={a['filters']!r}")
        if not isinstance(groups, int) or isinstance(groups, bool) or groups <= 0:
            raise ValueError(f"{cls} expected a positive integer for groups. Received: groups={groups!r}")
        if a["filters"] % groups:
            raise ValueError(f"{cls}: filters must be divisible by groups. "
                             f"Received: filters={a['filters']}, groups={groups}")
        self.filters = a["filters"]
        self.kernel_size = normalize_tuple(a["kernel_size"], self.rank, "kernel_size", cls)
        self.strides = normalize_tuple(a["strides"], self.rank, "strides", cls)
        self.dilation_rate = normalize_tuple(a["dilation_rate"], self.rank, "dilation_rate", cls)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{cls}: strides > 1 cannot be combined with dilation_rate > 1 (as in "
                             f"Keras). Received: strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}")
        allowed = ("valid", "same", "causal") if self.rank == 1 else ("valid", "same")
        self.padding = normalize_padding(a["padding"], cls, allowed)
        self.data_format = standardize_data_format(a["data_format"])
        self.groups = groups
        self.activation = activations.get(activation)
        self.use_bias = bool(a["use_bias"])
        self.kernel_initializer = initializers.get(a["kernel_initializer"] or "glorot_uniform")
        self.bias_initializer = initializers.get(bias_initializer or "zeros")
        self.kernel_regularizer = a["kernel_regularizer"]
        self.bias_regularizer = a["bias_regularizer"]
        self.activity_regularizer = activity_regularizer
        self.kernel_constraint = a["kernel_constraint"]
        self.bias_constraint = a["bias_constraint"]
        self._initial_weights = weights  # Keras 2's ``weights=[kernel, bias]``
        # Every op runs in 2D: a 1D layer is a 2D one with a height-1 kernel.
        pad = (1,) * (2 - self.rank)
        self._kernel_2d = pad + self.kernel_size
        self._strides_2d = pad + self.strides
        self._dilation_2d = pad + self.dilation_rate

    def _keras1_args(self, kwargs, given):
        return take_keras1_args(kwargs, _KERAS1_CONV_ARGS, given, type(self))

    # ------------------------------------------------------------------ build and call
    def _channels(self, input_shape):
        return input_shape[-1] if self.data_format == "channels_last" else input_shape[1]

    def build(self, input_shape):
        check_rank(input_shape, self.rank, self)
        channels = self._channels(input_shape)
        if channels is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' needs the channel axis of its "
                             f"input to be known. Received input shape {tuple(input_shape)} "
                             f"(data_format={self.data_format!r}).")
        if channels % self.groups:
            raise ValueError(f"{type(self).__name__} '{self.name}': input channels ({channels}) must "
                             f"be divisible by groups={self.groups}. Received input shape "
                             f"{tuple(input_shape)}.")
        self.compute_output_shape(input_shape)  # too-small inputs fail here, with a clear message
        layout = (3, 2, 0, 1) if self.rank == 2 else (2, 1, 0)
        shape = self.kernel_size + (channels // self.groups, self.filters)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer, layout=layout)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer)
                     if self.use_bias else None)
        if self._initial_weights is not None:
            self.built = True
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def call(self, inputs):
        x = to_nchw(inputs, self.rank, self.data_format)
        kernel = self.kernel if self.rank == 2 else self.kernel.unsqueeze(2)  # (out, in/g, 1, k)
        padding = 0
        if self.padding == "causal":
            x = F.pad(x, ((self.kernel_size[0] - 1) * self.dilation_rate[0], 0))
        elif self.padding == "same":
            padding, pads = spatial_padding(x, self._kernel_2d, self._strides_2d, self._dilation_2d)
            if pads is not None:
                x = F.pad(x, pads)
        y = F.conv2d(x, kernel, self.bias, self._strides_2d, padding, self._dilation_2d, self.groups)
        return self.activation(from_nchw(y, self.rank, self.data_format))

    def check_input_shape(self, input_shape):
        check_rank(input_shape, self.rank, self)
        channels, expected = self._channels(input_shape), self.kernel.shape[1] * self.groups
        if channels is not None and channels != expected:
            raise ValueError(f"{type(self).__name__} '{self.name}' was built for {expected} input "
                             f"channels, received input shape {tuple(input_shape)} "
                             f"(data_format={self.data_format!r}).")

    def compute_output_shape(self, input_shape):
        check_rank(input_shape, self.rank, self)
        spatial = tuple(output_length(n, k, s, d, self.padding) for n, k, s, d in zip(
            spatial_shape(input_shape, self.data_format), self.kernel_size, self.strides,
            self.dilation_rate))
        if any(n is not None and n <= 0 for n in spatial):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': input shape {tuple(input_shape)} is too small "
                f"for kernel_size={self.kernel_size} with dilation_rate={self.dilation_rate} and "
                f"padding='valid' (output would be {spatial}). Use padding='same' or a larger input.")
        if self.data_format == "channels_last":
            return (input_shape[0],) + spatial + (self.filters,)
        return (input_shape[0], self.filters) + spatial

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate, "groups": self.groups,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": self.kernel_regularizer,
                "bias_regularizer": self.bias_regularizer,
                "activity_regularizer": self.activity_regularizer,
                "kernel_constraint": self.kernel_constraint, "bias_constraint": self.bias_constraint}

    def extra_repr(self):
        return (f"name={self.name!r}, filters={self.filters}, kernel_size={self.kernel_size}, "
                f"strides={self.strides}, padding={self.padding!r}, data_format={self.data_format!r}")


class Conv1D(_Conv):
    """1D convolution over ``(batch, steps, channels)`` (or ``(batch, channels, steps)``).

    ``padding='causal'`` pads ``dilation_rate * (kernel_size - 1)`` steps on the left only, so
    output step t sees input steps <= t. Keras 1's ``input_dim``/``input_length`` set the input
    shape ``(input_length, input_dim)``.
    """

    rank = 1

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


class Conv2D(_Conv):
    """2D convolution over ``(batch, rows, cols, channels)`` (or ``(batch, channels, rows, cols)``).

    Keras 1 spellings are accepted: ``nb_filter``, ``nb_row``/``nb_col``, ``subsample``,
    ``border_mode``, ``init``, ``dim_ordering``. With any of them present, Keras 1's positional
    form ``Convolution2D(32, 3, 5, border_mode='same')`` reads as a 3x5 kernel (Keras 1 and 2's
    reading); without them the third positional argument is ``strides``, as in Keras 3.
    """

    rank = 2

    def __init__(self, filters=None, kernel_size=None, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, groups,
                         activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, activity_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)

    def _keras1_args(self, kwargs, given):
        given = dict(given)
        nb_row, nb_col = kwargs.pop("nb_row", None), kwargs.pop("nb_col", None)
        kernel, strides = given["kernel_size"], given["strides"]
        if nb_row is not None and nb_col is not None:
            if kernel is not None:
                raise ValueError(f"Conv2D got both nb_row/nb_col (Keras 1) and kernel_size={kernel!r}; "
                                 "pass only kernel_size=(rows, cols).")
            given["kernel_size"] = (nb_row, nb_col)
        elif nb_col is not None and isinstance(kernel, int):  # Convolution2D(32, 3, nb_col=3)
            given["kernel_size"] = (kernel, nb_col)
        elif nb_row is not None or nb_col is not None:
            raise TypeError(f"Conv2D got nb_row={nb_row!r}, nb_col={nb_col!r} (Keras 1); pass both, "
                            "or kernel_size=(rows, cols).")
        elif (set(kwargs) & set(_KERAS1_CONV_ARGS) and isinstance(kernel, int)
              and isinstance(strides, int) and strides != 1):
            # Keras 1's positional Convolution2D(nb_filter, nb_row, nb_col, border_mode=...).
            given["kernel_size"], given["strides"] = (kernel, strides), 1
        return super()._keras1_args(kwargs, given)


# Keras 2 names: the same classes, as in Keras 3.
Convolution1D = Conv1D
Convolution2D = Conv2D
