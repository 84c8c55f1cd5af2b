"""``ConvLSTM1D`` / ``ConvLSTM2D`` / ``ConvLSTM3D``: LSTMs whose input and recurrent transforms
are convolutions (Shi et al., 2015), with Keras 3's arguments, weights and gate order.

kernel: Keras shape ``(*kernel_size, in_channels, 4 * filters)``, recurrent_kernel
``(*kernel_size, filters, 4 * filters)``, gates ``i, f, c, o`` along the last axis; stored as
torch's ``(4 * filters, in, *kernel_size)``. bias ``(4 * filters,)``, ones on the forget gate
with ``unit_forget_bias``. The input convolution uses ``strides``/``padding``/``dilation_rate``;
the recurrent one is always stride 1, ``'same'``, undilated (as in Keras).

The input convolutions of all time steps run as one batched call; the recurrence is a step loop
(one convolution per step). Masks, ``go_backwards``, ``return_state``, ``initial_state``,
``stateful`` and dropout behave as in the other recurrent layers (``kaffe.layers.recurrent``).
States are returned in the layer's ``data_format``.
"""
import torch
import torch.nn.functional as F

from kaffe import activations
from kaffe.config import standardize_data_format
from kaffe.layers.convolutional import (normalize_padding, normalize_tuple, output_length,
                                        same_padding)
from kaffe.layers.core import _positive_int
from kaffe.layers.recurrent import _RNN, _UnitForgetBias

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_SPATIAL = {1: "steps", 2: "rows, cols", 3: "depth, rows, cols"}


class _ConvLSTM(_RNN):
    rank = None
    _gates = 4
    _n_states = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kwargs):
        cls = type(self).__name__
        _positive_int(filters, "filters", cls)
        super().__init__(filters, activation=activation, **kwargs)
        self.filters = filters
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size", cls)
        self.strides = normalize_tuple(strides, self.rank, "strides", cls)
        self.padding = normalize_padding(padding, cls)
        self.data_format = standardize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate", cls)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{cls}: strides > 1 cannot be combined with dilation_rate > 1 (as in "
                             f"Keras). Received: strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}")
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        self._input_rank = self.rank + 3
        self._conv = _CONV[self.rank]
        self._spatial_out = None

    # ------------------------------------------------------------------ weights
    def _split_shape(self, seq_shape):
        """(channels, spatial sizes) of a ``(batch, time, ...)`` input shape."""
        if self.data_format == "channels_first":
            return seq_shape[2], tuple(seq_shape[3:])
        return seq_shape[-1], tuple(seq_shape[2:-1])

    def build(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        self.check_input_shape(input_shape)
        channels, spatial = self._split_shape(seq_shape)
        if channels is None or None in spatial:
            raise ValueError(f"{type(self).__name__} '{self.name}' needs known channel and spatial "
                             f"sizes (as Keras). Received input shape {tuple(seq_shape)}.")
        self._spatial_out = self._out_spatial(spatial)
        k, f = self.kernel_size, self.filters
        layout = (self.rank + 1, self.rank) + tuple(range(self.rank))  # -> (out, in, *kernel)
        self.kernel = self.add_weight("kernel", k + (channels, 4 * f), self.kernel_initializer,
                                      layout=layout, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel", k + (f, 4 * f), self.recurrent_initializer, layout=layout,
            regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint)
        self.bias = (self.add_weight("bias", (4 * f,), self._bias_init(),
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint)
                     if self.use_bias else None)
        self._build_states(seq_shape)

    def _bias_init(self):
        if self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.filters)
        return self.bias_initializer

    def _out_spatial(self, spatial):
        return tuple(output_length(n, k, s, d, self.padding) for n, k, s, d in zip(
            spatial, self.kernel_size, self.strides, self.dilation_rate))

    # ------------------------------------------------------------------ layouts
    def _state_shape(self):
        return (self.filters,) + self._spatial_out  # stored channels first

    def _channels_last(self):
        return self.data_format == "channels_last"

    def _to_internal(self, x):  # (batch, time, ..., C) -> (batch, time, C, ...)
        if not self._channels_last():
            return x
        return x.permute(0, 1, x.dim() - 1, *range(2, x.dim() - 1))

    def _to_internal_state(self, state):
        if not self._channels_last():
            return state
        return state.permute(0, state.dim() - 1, *range(1, state.dim() - 1))

    def _export_sequence(self, sequence):
        if not self._channels_last():
            return sequence
        return sequence.permute(0, 1, *range(3, sequence.dim()), 2)

    def _export_state(self, state):
        if not self._channels_last():
            return state
        return state.permute(0, *range(2, state.dim()), 1)

    def _input_description(self):
        spatial = _SPATIAL[self.rank]
        return ("(batch, time, " + (f"{spatial}, channels)" if self._channels_last()
                                     else f"channels, {spatial})"))

    # ------------------------------------------------------------------ math
    def _fusable(self):
        return False

    def _conv_same(self, x, kernel, bias, strides, dilation, padding="same"):
        """Convolution with Keras's padding: 'same' puts TensorFlow's odd pixel after."""
        pads = 0
        if padding == "same":
            pairs = [same_padding(n, k, s, d) for n, k, s, d in zip(
                x.shape[2:], self.kernel_size, strides, dilation)]
            if all(a == b for a, b in pairs):
                pads = tuple(a for a, _ in pairs)
            else:  # F.pad takes the last axis first
                x = F.pad(x, [p for pair in reversed(pairs) for p in pair])
        return self._conv(x, kernel, bias, strides, pads, dilation)

    def _input_conv(self, x, kernel, bias):
        return self._conv_same(x, kernel, bias, self.strides, self.dilation_rate, self.padding)

    def _recurrent_conv(self, h, kernel):
        ones = (1,) * self.rank
        return self._conv_same(h, kernel, None, ones, ones)

    def _project_inputs(self, x, in_masks):
        """All steps' input convolutions in one call: ``(batch, time, 4 * filters, ...)``."""
        batch, steps = x.shape[:2]
        if in_masks is None or len(in_masks) == 1:
            if in_masks is not None:
                x = x * in_masks[0]
            y = self._input_conv(x.reshape((batch * steps,) + x.shape[2:]), self.kernel, self.bias)
        else:  # one dropout mask per gate
            biases = self.bias.chunk(4) if self.bias is not None else [None] * 4
            y = torch.cat([self._input_conv((x * m).reshape((batch * steps,) + x.shape[2:]), w, b)
                           for m, w, b in zip(in_masks, self.kernel.chunk(4), biases)], 1)
        return y.view((batch, steps) + y.shape[1:])

    def _step(self, x_t, states, rec_masks):
        h, c = states
        if rec_masks is None:
            rec = self._recurrent_conv(h, self.recurrent_kernel)
        else:
            rec = torch.cat([self._recurrent_conv(h * m, w)
                             for m, w in zip(rec_masks, self.recurrent_kernel.chunk(4))], 1)
        i, f, g, o = (x_t + rec).chunk(4, 1)
        act, gate = self.activation, self.recurrent_activation
        c = gate(f) * c + gate(i) * act(g)
        return [gate(o) * act(c), c]

    # ------------------------------------------------------------------ shapes and config
    def check_input_shape(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        if len(seq_shape) != self._input_rank:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects inputs of rank "
                             f"{self._input_rank} {self._input_description()}. Received input "
                             f"shape {tuple(seq_shape)}.")
        if self.built:
            channels, _ = self._split_shape(seq_shape)
            expected = self.kernel.shape[1]
            if channels not in (None, expected):
                raise ValueError(f"{type(self).__name__} '{self.name}' was built for {expected} "
                                 f"input channels. Received input shape {tuple(seq_shape)}.")

    def compute_output_shape(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        batch, steps = seq_shape[0], seq_shape[1]
        spatial = self._out_spatial(self._split_shape(seq_shape)[1])
        state = ((batch,) + spatial + (self.filters,) if self._channels_last()
                 else (batch, self.filters) + spatial)
        output = (state[:1] + (steps,) + state[1:]) if self.return_sequences else state
        if self.return_state:
            return [output, state, state]
        return output

    def get_config(self):
        config = super().get_config()
        del config["units"]
        return {**config, "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "data_format": self.data_format, "dilation_rate": self.dilation_rate,
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}

    def extra_repr(self):
        return (f"name={self.name!r}, filters={self.filters}, kernel_size={self.kernel_size}, "
                f"strides={self.strides}, padding={self.padding!r}")


class ConvLSTM1D(_ConvLSTM):
    """Convolutional LSTM over sequences of 1D signals ``(batch, time, steps, channels)``."""
    rank = 1


class ConvLSTM2D(_ConvLSTM):
    """Convolutional LSTM over sequences of images ``(batch, time, rows, cols, channels)``."""
    rank = 2


class ConvLSTM3D(_ConvLSTM):
    """Convolutional LSTM over sequences of volumes
    ``(batch, time, depth, rows, cols, channels)``."""
    rank = 3
