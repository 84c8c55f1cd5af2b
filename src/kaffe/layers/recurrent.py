"""Recurrent layers: ``SimpleRNN``, ``LSTM``, ``GRU`` with Keras 3's arguments and weights.

Weights keep Keras's shapes and gate order (LSTM ``i, f, c, o``; GRU ``z, r, h``); kernels are
stored transposed, ``(gates * units, in)``, which is the ``w_ih``/``w_hh`` layout torch's fused
RNN kernels take. With the default activations (and GRU's ``reset_after=True``) a layer runs in
one ``torch.lstm`` / ``torch.gru`` / ``torch.rnn_tanh`` call (cuDNN on GPU); other activations,
``reset_after=False`` and training-time dropout fall back to a step loop that follows Keras's
cell code. Like Keras, ``go_backwards`` returns the sequence in reversed time order.

Initial states may be given as ``layer(x, initial_state=[h, c])``, eagerly or on symbolic
tensors (they become extra inputs of the layer's node, as in Keras 2's ``layer([x, h, c])``).
"""
import warnings

import torch
import torch.nn.functional as F

from kaffe import activations, initializers
from kaffe.engine.layer import Layer
from kaffe.layers.core import _positive_int


def _rate(value, arg, layer):
    if not 0 <= value <= 1:
        raise ValueError(f"{layer} expected {arg} in [0, 1]. Received: {arg}={value!r}")
    return float(value)


def _project(v, weight, bias, masks):
    """``v @ weight.T + bias``; with per-gate dropout ``masks`` each gate block gets its own."""
    if masks is None:
        return F.linear(v, weight, bias)
    if len(masks) == 1:
        return F.linear(v * masks[0], weight, bias)
    weights = weight.chunk(len(masks))
    biases = bias.chunk(len(masks)) if bias is not None else [None] * len(masks)
    return torch.cat([F.linear(v * m, w, b) for m, w, b in zip(masks, weights, biases)], -1)


class _UnitForgetBias(initializers.Initializer):
    """LSTM bias: ``bias_initializer`` everywhere except ones on the forget gate."""

    def __init__(self, base, units):
        self.base, self.units = base, units

    def __call__(self, shape, dtype=torch.float32):
        u = self.units
        return torch.cat([self.base((u,), dtype), torch.ones(u, dtype=dtype),
                          self.base((2 * u,), dtype)])


class _RNN(Layer):
    """Shared machinery; subclasses set ``_gates``/``_n_states`` and define the cell math."""

    _gates = 1     # weight blocks per kernel
    _n_states = 1  # h, or h and c

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, use_cudnn="auto",
                 implementation=None, **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        self.units = _positive_int(units, "units", kind)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        # Stored and returned by get_config; kaffe's trainer does not apply them yet.
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.bias_regularizer = bias_regularizer
        self.activity_regularizer = activity_regularizer
        self.kernel_constraint = kernel_constraint
        self.recurrent_constraint = recurrent_constraint
        self.bias_constraint = bias_constraint
        self.dropout = _rate(dropout, "dropout", kind)
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout", kind)
        self.seed = seed
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        if stateful:
            raise NotImplementedError(
                f"{kind} '{self.name}': stateful=True is not supported by kaffe yet. "
                "Pass the carried-over states explicitly with initial_state=... instead.")
        self.stateful = False
        self.unroll = bool(unroll)  # accepted; the fused kernel is faster than unrolling
        self.use_cudnn = use_cudnn  # accepted; torch picks cuDNN itself on GPU
        self._generator = None

    # ------------------------------------------------------------------ weights
    def build(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        if len(seq_shape) != 3 or seq_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects inputs (batch, timesteps, features) "
                f"with a known feature size. Received input shape {tuple(seq_shape)}.")
        width = self._gates * self.units
        # Stored as (width, in) / (width, units): torch's w_ih / w_hh; Keras shapes outside.
        self.kernel = self.add_weight("kernel", (seq_shape[-1], width), self.kernel_initializer,
                                      layout=(1, 0), regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel", (self.units, width), self.recurrent_initializer, layout=(1, 0),
            regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint)
        self.bias = (self.add_weight("bias", self._bias_shape(), self._bias_init(),
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint)
                     if self.use_bias else None)

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def _biases(self):
        """(input bias, recurrent bias) in Keras's gate order; either may be None."""
        return self.bias, None

    # ------------------------------------------------------------------ call
    def __call__(self, *args, initial_state=None, **kwargs):
        if initial_state is not None:  # fold into the inputs so symbolic graphs record it too
            states = (list(initial_state) if isinstance(initial_state, (list, tuple))
                      else [initial_state])
            args = ([args[0] if args else kwargs.pop("inputs")] + states,) + args[1:]
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=False, mask=None):
        if mask is not None:
            raise NotImplementedError(f"{type(self).__name__} '{self.name}': masking is not "
                                      "supported by kaffe yet.")
        x, states = self._split_inputs(inputs)
        if x.dtype != self.kernel.dtype:
            x = x.to(self.kernel.dtype)
        if self.go_backwards:
            x = x.flip(1)
        drop = training and 0 < self.dropout < 1
        rec_drop = training and 0 < self.recurrent_dropout < 1
        if not (drop or rec_drop) and self._fusable():
            sequence, states = self._fused(x, states)
        else:
            sequence, states = self._loop(x, states, drop, rec_drop)
        output = sequence if self.return_sequences else states[0]
        return [output, *states] if self.return_state else output

    def _split_inputs(self, inputs):
        states = None
        if isinstance(inputs, (list, tuple)):
            inputs, states = inputs[0], list(inputs[1:]) or None
        if inputs.dim() != 3:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects inputs (batch, "
                             f"timesteps, features). Received shape {tuple(inputs.shape)}.")
        batch = inputs.shape[0]
        if states is None:
            zeros = inputs.new_zeros(batch, self.units, dtype=self.kernel.dtype)
            return inputs, [zeros] * self._n_states
        expected = (batch, self.units)
        if len(states) != self._n_states or any(tuple(s.shape) != expected for s in states):
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects initial_state as {self._n_states} "
                f"tensor(s) of shape {expected}. Received shapes "
                f"{[tuple(s.shape) for s in states]}.")
        return inputs, [s.to(self.kernel.dtype) for s in states]

    def _fusable(self):
        return self.activation is torch.tanh

    def _fused_params(self):
        """(w_ih, w_hh, b_ih, b_hh) in torch's gate order; no biases without use_bias."""
        b_in, b_rec = self._biases()
        if b_in is not None and b_rec is None:
            b_rec = torch.zeros_like(b_in)
        return self.kernel, self.recurrent_kernel, b_in, b_rec

    def _run_fused(self, fn, x, hx):
        w_ih, w_hh, b_ih, b_hh = self._fused_params()
        params = [w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
        # cuDNN keeps what backward needs only with train=True (not a dropout switch here).
        args = (params, b_ih is not None, 1, 0.0, torch.is_grad_enabled(), False, True)
        if not x.is_cuda:
            return fn(x, hx, *args)
        with warnings.catch_warnings():  # cuDNN packs our separate weights each call, on purpose
            warnings.filterwarnings("ignore", message="RNN module weights are not part of single")
            return fn(x, hx, *args)

    def _fused(self, x, states):
        raise NotImplementedError

    # ------------------------------------------------------------------ step loop (fallback)
    def _masks(self, like, rate, count):
        """``count`` dropout masks (scaled by 1/(1-rate)), drawn once for the whole sequence."""
        if self.seed is not None and (self._generator is None
                                      or self._generator.device != like.device):
            self._generator = torch.Generator(like.device).manual_seed(int(self.seed))
        return [torch.empty_like(like).bernoulli_(1 - rate, generator=self._generator) / (1 - rate)
                for _ in range(count)]

    def _loop(self, x, states, drop, rec_drop):
        # Keras: one input mask, or one per gate when recurrent_dropout is set (implementation 1).
        per_gate = self._gates if self.recurrent_dropout else 1
        in_masks = ([m.unsqueeze(1) for m in self._masks(x[:, 0], self.dropout, per_gate)]
                    if drop else None)
        rec_masks = (self._masks(states[0], self.recurrent_dropout, self._gates)
                     if rec_drop else None)
        b_in, _ = self._biases()
        projected = _project(x, self.kernel, b_in, in_masks)  # (batch, time, gates * units)
        outputs = []
        for t in range(x.shape[1]):
            states = self._step(projected[:, t], states, rec_masks)
            if self.return_sequences:
                outputs.append(states[0])
        sequence = torch.stack(outputs, 1) if self.return_sequences else None
        return sequence, states

    def _step(self, x_t, states, rec_masks):
        raise NotImplementedError

    # ------------------------------------------------------------------ shapes and config
    def check_input_shape(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        expected = self.kernel.shape[1]
        if len(seq_shape) != 3 or seq_shape[-1] not in (None, expected):
            raise ValueError(f"{type(self).__name__} '{self.name}' expects inputs (batch, "
                             f"timesteps, {expected}). Received input shape {tuple(seq_shape)}.")

    def compute_output_shape(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        batch, steps = seq_shape[0], seq_shape[1]
        output = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [output] + [(batch, self.units)] * self._n_states
        return output

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": self.kernel_regularizer,
                "recurrent_regularizer": self.recurrent_regularizer,
                "bias_regularizer": self.bias_regularizer,
                "activity_regularizer": self.activity_regularizer,
                "kernel_constraint": self.kernel_constraint,
                "recurrent_constraint": self.recurrent_constraint,
                "bias_constraint": self.bias_constraint,
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed, "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards,
                "stateful": self.stateful, "unroll": self.unroll}

    def extra_repr(self):
        return f"name={self.name!r}, units={self.units}"


class SimpleRNN(_RNN):
    """``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    kernel ``(in, units)`` Glorot uniform; recurrent_kernel ``(units, units)`` orthogonal;
    bias ``(units,)`` zeros. tanh and relu run fused (``torch.rnn_tanh`` / ``rnn_relu``).
    """

    def _fusable(self):
        return self.activation in (torch.tanh, torch.relu)

    def _fused(self, x, states):
        fn = torch.rnn_tanh if self.activation is torch.tanh else torch.rnn_relu
        sequence, h = self._run_fused(fn, x, states[0].unsqueeze(0))
        return sequence, [h[0]]

    def _step(self, x_t, states, rec_masks):
        return [self.activation(x_t + _project(states[0], self.recurrent_kernel, None, rec_masks))]


class _GatedRNN(_RNN):
    """LSTM and GRU: a ``recurrent_activation`` for the gates besides ``activation``."""

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)

    def _fusable(self):
        return self.activation is torch.tanh and self.recurrent_activation is torch.sigmoid

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation)}


class LSTM(_GatedRNN):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997), Keras's gate order ``i, f, c, o``.

    kernel ``(in, 4u)`` Glorot uniform; recurrent_kernel ``(u, 4u)`` orthogonal; bias ``(4u,)``
    zeros with ones on the forget gate when ``unit_forget_bias``. Returns ``[output, h, c]``
    with ``return_state``.
    """

    _gates = 4
    _n_states = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_init(self):
        if self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.units)
        return self.bias_initializer

    def _fused(self, x, states):
        sequence, h, c = self._run_fused(torch.lstm, x, (states[0][None], states[1][None]))
        return sequence, [h[0], c[0]]

    def _step(self, x_t, states, rec_masks):
        h, c = states
        z = x_t + _project(h, self.recurrent_kernel, None, rec_masks)
        i, f, g, o = z.chunk(4, -1)
        act, gate = self.activation, self.recurrent_activation
        c = gate(f) * c + gate(i) * act(g)
        h = gate(o) * act(c)
        return [h, c]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_GatedRNN):
    """Gated recurrent unit (Cho et al., 2014), Keras's gate order ``z, r, h``.

    kernel ``(in, 3u)`` Glorot uniform; recurrent_kernel ``(u, 3u)`` orthogonal; bias zeros,
    ``(2, 3u)`` (input and recurrent biases) with ``reset_after=True`` (the cuDNN / torch form,
    run fused), else ``(3u,)`` (reset gate applied before the recurrent matmul; step loop).
    """

    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 reset_after=True, **kwargs):
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, **kwargs)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _biases(self):
        if self.bias is None or not self.reset_after:
            return self.bias, None
        return self.bias[0], self.bias[1]

    def _fusable(self):
        return self.reset_after and super()._fusable()

    def _fused_params(self):
        # Keras z, r, h -> torch r, z, n (rows of the stored (3u, in) kernels).
        def reorder(t):
            if t is None:
                return None
            z, r, h = t.chunk(3, 0)
            return torch.cat([r, z, h], 0)
        return tuple(reorder(t) for t in super()._fused_params())

    def _fused(self, x, states):
        sequence, h = self._run_fused(torch.gru, x, states[0].unsqueeze(0))
        return sequence, [h[0]]

    def _step(self, x_t, states, rec_masks):
        (h,) = states
        u, gate = self.units, self.recurrent_activation
        x_z, x_r, x_h = x_t.chunk(3, -1)
        if self.reset_after:
            _, b_rec = self._biases()
            rec_z, rec_r, rec_h = _project(h, self.recurrent_kernel, b_rec, rec_masks).chunk(3, -1)
            z, r = gate(x_z + rec_z), gate(x_r + rec_r)
            candidate = self.activation(x_h + r * rec_h)
        else:
            zr_masks, h_masks = (rec_masks[:2], rec_masks[2:]) if rec_masks else (None, None)
            rec_z, rec_r = _project(h, self.recurrent_kernel[:2 * u], None, zr_masks).chunk(2, -1)
            z, r = gate(x_z + rec_z), gate(x_r + rec_r)
            candidate = self.activation(
                x_h + _project(r * h, self.recurrent_kernel[2 * u:], None, h_masks))
        return [z * h + (1 - z) * candidate]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}
