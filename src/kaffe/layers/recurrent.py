"""Recurrent layers: ``SimpleRNN``, ``LSTM``, ``GRU`` with Keras 3's arguments and weights.

Weights keep Keras's shapes and gate order (LSTM ``i, f, c, o``; GRU ``z, r, h``); kernels are
stored transposed, ``(gates * units, in)``, which is the ``w_ih``/``w_hh`` layout torch's fused
RNN kernels take. With the default activations (and GRU's ``reset_after=True``) a layer runs in
one ``torch.lstm`` / ``torch.gru`` / ``torch.rnn_tanh`` call (cuDNN on GPU); other activations,
``reset_after=False`` and training-time dropout fall back to a step loop that follows Keras's
cell code. Like Keras, ``go_backwards`` returns the sequence in reversed time order.

Initial states may be given as ``layer(x, initial_state=[h, c])``, eagerly or on symbolic
tensors (they become extra inputs of the layer's node, as in Keras 2's ``layer([x, h, c])``).

Masks (``mask=``, from ``Embedding(mask_zero=True)`` or ``Masking``) follow Keras: at a masked
step the states are carried over unchanged and the output repeats the previous one (zeros before
the first kept step; zeros at every masked step with ``zero_output_for_mask=True``, which
``Bidirectional`` sets when returning sequences). So a padded sequence gives the same final state
as the unpadded one. When each row keeps one contiguous run of steps (post- or pre-padding) the
fused kernel still runs: over the whole sequence, each run moved to the front, with each row's
final state read at its last kept step (the kernel is causal); an LSTM whose ``c`` is returned or
carried over runs packed (``pack_padded_sequence``) instead. Finding out costs one
device-to-host copy per call (a synchronisation on GPU). Other masks, like dropout, take the
step loop, which applies the mask with ``torch.where``.

``stateful=True`` carries the final states of a batch over as the initial states of the next
(batch size fixed by ``batch_size``/``batch_input_shape``); ``reset_states()`` zeroes them.
"""
import contextlib
import warnings

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from kaffe import activations, constraints, initializers, regularizers
from kaffe.engine.layer import Layer
from kaffe.layers.core import _positive_int
from kaffe.layers.masking import check_mask, first_mask, roll_rows, single_runs



def set_recurrent_options(layer, units, activation, use_bias, kernel_initializer,
                          recurrent_initializer, bias_initializer, kernel_regularizer,
                          recurrent_regularizer, bias_regularizer, kernel_constraint,
                          recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed):
    """The options recurrent layers and their cells share, checked and resolved by Keras's
    rules (the layer's class name in errors)."""
    kind = type(layer).__name__
    layer.units = _positive_int(units, "units", kind)
    layer.activation = activations.get(activation)
    layer.use_bias = bool(use_bias)
    for name, value, resolve in (
            ("kernel_initializer", kernel_initializer, initializers.get),
            ("recurrent_initializer", recurrent_initializer, initializers.get),
            ("bias_initializer", bias_initializer, initializers.get),
            ("kernel_regularizer", kernel_regularizer, regularizers.get),
            ("recurrent_regularizer", recurrent_regularizer, regularizers.get),
            ("bias_regularizer", bias_regularizer, regularizers.get),
            ("kernel_constraint", kernel_constraint, constraints.get),
            ("recurrent_constraint", recurrent_constraint, constraints.get),
            ("bias_constraint", bias_constraint, constraints.get)):
        setattr(layer, name, resolve(value))
    layer.dropout = _rate(dropout, "dropout", kind)
    layer.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout", kind)
    layer.seed = seed



def recurrent_options_config(layer):
    """The options of ``set_recurrent_options`` as Keras writes them in a config."""
    return {"units": layer.units, "activation": activations.serialize(layer.activation),
            "use_bias": layer.use_bias,
            **{f"{w}_initializer": initializers.serialize(getattr(layer, f"{w}_initializer"))
               for w in _WEIGHTS},
            **{f"{w}_regularizer": regularizers.serialize(getattr(layer, f"{w}_regularizer"))
               for w in _WEIGHTS},
            **{f"{w}_constraint": constraints.serialize(getattr(layer, f"{w}_constraint"))
               for w in _WEIGHTS},
            "dropout": layer.dropout, "recurrent_dropout": layer.recurrent_dropout,
            "seed": layer.seed}


_WEIGHTS = ("kernel", "recurrent", "bias")



def stateful_batch_size(layer, seq_shape):
    """The fixed batch size a ``stateful=True`` layer needs, from its input shape."""
    if seq_shape[0] is None:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' has stateful=True, which needs a fixed batch "
            f"size. Received input shape {tuple(seq_shape)}. Give the model's Input a "
            "batch_size=... (or the first layer batch_input_shape=...), as in Keras.")
    return int(seq_shape[0])


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
    """Shared machinery; subclasses set ``_gates``/``_n_states`` and define the cell math.

    Hooks a non-dense cell (``ConvLSTM``) overrides: ``_state_shape`` (one sample's state, as
    stored), ``_to_internal``/``_export_sequence``/``_export_state`` (layout conversions at the
    boundary), ``_project_inputs`` (all steps' input transforms at once) and ``_step``.
    """

    _gates = 1     # weight blocks per kernel
    _n_states = 1  # h, or h and c
    _input_rank = 3
    supports_masking = True

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, use_cudnn="auto",
                 implementation=None, zero_output_for_mask=False, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        set_recurrent_options(
            self, units, activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
            seed)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.unroll = bool(unroll)  # accepted; the fused kernel is faster than unrolling
        self.use_cudnn = use_cudnn  # accepted; torch picks cuDNN itself on GPU
        self._generator = None
        self._states = None  # stateful: the states carried over to the next batch
        self._batch_size = None

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
        self._build_states(seq_shape)

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def _biases(self):
        """(input bias, recurrent bias) in Keras's gate order; either may be None."""
        return self.bias, None

    # ------------------------------------------------------------------ states
    def _state_shape(self):
        """One sample's state as stored (and, for dense cells, as returned)."""
        return (self.units,)

    def _zero_states(self, batch, like):
        return [like.new_zeros((batch,) + tuple(self._state_shape()), dtype=self.kernel.dtype)
                for _ in range(self._n_states)]

    def _build_states(self, seq_shape):
        if not self.stateful:
            return
        self._batch_size = stateful_batch_size(self, seq_shape)
        self._states = self._zero_states(self._batch_size, self.kernel)

    @property
    def states(self):
        """The states a stateful layer carries over (None when not stateful)."""
        if self._states is None:
            return None
        return [self._export_state(s) for s in self._states]

    def reset_states(self, states=None):
        """Zero the carried states of a stateful layer, or set them to ``states`` (arrays in the
        shapes ``return_state`` gives, as Keras 2's ``reset_states(states)``). Does nothing on
        a layer that is not stateful (or not built), as in Keras 3."""
        if not (self.stateful and self.built):
            return
        zeros = self._zero_states(self._batch_size, self.kernel)
        if states is None:
            self._states = zeros
            return
        states = states if isinstance(states, (list, tuple)) else [states]
        given = [torch.as_tensor(s, dtype=self.kernel.dtype, device=self.kernel.device)
                 for s in states]
        self._states = self._check_states(given, self._batch_size, zeros[0])

    reset_state = reset_states  # Keras 3 spelling

    def _check_states(self, states, batch, like):
        """External-layout states to internal ones, with an error naming the expected shapes."""
        expected = tuple(self._export_state(
            torch.empty((batch,) + tuple(self._state_shape()), device="meta")).shape)
        if len(states) != self._n_states or any(tuple(s.shape) != expected for s in states):
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects {self._n_states} state tensor(s) of "
                f"shape {expected}. Received shapes {[tuple(s.shape) for s in states]}.")
        return [self._to_internal_state(s.to(device=like.device, dtype=self.kernel.dtype))
                for s in states]

    def _carried_states(self, x):
        if x.shape[0] != self._batch_size:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' is stateful with batch size "
                f"{self._batch_size}, received a batch of {x.shape[0]}. Feed batches of exactly "
                "that size (e.g. drop the last, smaller one).")
        return [s.to(x.device) for s in self._states]

    # ------------------------------------------------------------------ layouts (dense: as is)
    def _to_internal(self, x):
        return x

    def _to_internal_state(self, state):
        return state

    def _export_sequence(self, sequence):
        return sequence

    def _export_state(self, state):
        return state

    # ------------------------------------------------------------------ call
    def __call__(self, *args, initial_state=None, **kwargs):
        if initial_state is not None:  # fold into the inputs so symbolic graphs record it too
            states = (list(initial_state) if isinstance(initial_state, (list, tuple))
                      else [initial_state])
            args = ([args[0] if args else kwargs.pop("inputs")] + states,) + args[1:]
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=False, mask=None):
        x, states = self._split_inputs(inputs)
        mask = check_mask(first_mask(mask), x, self)
        if states is None:
            states = (self._carried_states(x) if self.stateful
                      else self._zero_states(x.shape[0], x))
        if self.go_backwards:
            x = x.flip(1)
            mask = None if mask is None else mask.flip(1)
        drop = training and 0 < self.dropout < 1
        rec_drop = training and 0 < self.recurrent_dropout < 1
        result = None
        if not (drop or rec_drop) and self._fusable():
            result = self._fused_run(x, states, mask)
        if result is None:
            result = self._loop(x, states, mask, drop, rec_drop)
        sequence, last, states = result
        if self.stateful:
            self._states = [s.detach() for s in states]
        output = (self._export_sequence(sequence) if self.return_sequences
                  else self._export_state(last))
        if self.return_state:
            return [output, *(self._export_state(s) for s in states)]
        return output

    def _split_inputs(self, inputs):
        states = None
        if isinstance(inputs, (list, tuple)):
            inputs, states = inputs[0], list(inputs[1:]) or None
        if inputs.dim() != self._input_rank:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects inputs of rank "
                             f"{self._input_rank} {self._input_description()}. Received shape "
                             f"{tuple(inputs.shape)}.")
        x = self._to_internal(inputs.to(self.kernel.dtype))
        if states is not None:
            states = self._check_states(states, x.shape[0], x)
        return x, states

    def _input_description(self):
        return "(batch, timesteps, features)"

    def compute_mask(self, inputs, mask=None):
        """The input mask with ``return_sequences``, else None. With ``return_state`` the same
        mask is what the model's graph gives every output (Keras: None on the states)."""
        mask = first_mask(mask)
        return mask if self.return_sequences else None

    # ------------------------------------------------------------------ fused kernels
    def _fusable(self):
        return self.activation is torch.tanh

    def _fused_params(self):
        """(w_ih, w_hh, b_ih, b_hh) in torch's gate order; no biases without use_bias."""
        b_in, b_rec = self._biases()
        if b_in is not None and b_rec is None:
            b_rec = torch.zeros_like(b_in)
        return self.kernel, self.recurrent_kernel, b_in, b_rec

    def _run_fused(self, fn, x, hx, lengths=None):
        """One torch RNN kernel call; with ``lengths`` (CPU) each row runs its first
        ``lengths[b]`` steps only (packed), the output padded with zeros after them."""
        w_ih, w_hh, b_ih, b_hh = self._fused_params()
        params = [w_ih, w_hh] + ([b_ih, b_hh] if b_ih is not None else [])
        # cuDNN keeps what backward needs only with train=True (not a dropout switch here).
        flags = (params, b_ih is not None, 1, 0.0, torch.is_grad_enabled(), False)
        quiet = warnings.catch_warnings() if x.is_cuda else contextlib.nullcontext()
        with quiet:  # cuDNN packs our separate weights each call, on purpose
            if x.is_cuda:
                warnings.filterwarnings("ignore", message="RNN module weights are not part")
            if lengths is None:
                return fn(x, hx, *flags, True)
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            order, unorder = packed.sorted_indices, packed.unsorted_indices
            hx = (tuple(h.index_select(1, order) for h in hx) if isinstance(hx, tuple)
                  else hx.index_select(1, order))
            data, *states = fn(packed.data, packed.batch_sizes, hx, *flags)
            sequence, _ = pad_packed_sequence(
                PackedSequence(data, packed.batch_sizes, order, unorder), batch_first=True,
                total_length=x.shape[1])
            return (sequence, *(h.index_select(1, unorder) for h in states))

    def _fused(self, x, states, lengths=None):
        raise NotImplementedError

    def _fused_run(self, x, states, mask):
        """(sequence, last output, states) from the fused kernel; None when ``mask`` keeps more
        than one run of steps in some row (then the step loop runs)."""
        if mask is None:
            sequence, states = self._fused(x, states)
            return sequence, states[0], states
        runs = single_runs(mask)
        if runs is None:
            return None
        starts, lengths, dev_starts, dev_lengths = runs
        steps = x.shape[1]
        if not starts.any() and bool((lengths == steps).all()):  # nothing masked
            sequence, states = self._fused(x, states)
            return sequence, states[0], states
        if starts.any():  # pre-padding (or padding on both sides): move each run to the front
            x = roll_rows(x, dev_starts)
        last_step = (dev_lengths - 1).clamp(min=0)
        if self._n_states == 1 or not (self.return_state or self.stateful):
            # The kernel is causal: run over every step (as fast as unmasked); each run's outputs
            # are exact and its final h is the output at its last step. (LSTM's c is not in the
            # outputs: it is needed only when returned or carried over, and then we pack.)
            sequence, _ = self._fused(x, states)
            h = sequence.gather(1, last_step.view(-1, 1, 1).expand(-1, 1, sequence.shape[-1]))
            new_states = [h[:, 0]] + [None] * (self._n_states - 1)
        else:
            sequence, new_states = self._fused(x, states, lengths.clamp(min=1))
        seen = dev_lengths > 0  # rows with at least one kept step
        if bool((lengths == 0).any()):
            new_states = [n if n is None else torch.where(seen[:, None], n, s)
                          for n, s in zip(new_states, states)]
        kept_last = mask[:, -1] if self.zero_output_for_mask else seen
        last = torch.where(kept_last[:, None], new_states[0], 0.0)
        if not self.return_sequences:
            return None, last, new_states
        # Keras's output at step t: that of the run's latest step <= t, zeros before the run.
        t = torch.arange(steps, device=x.device)[None, :]
        index = torch.minimum((t - dev_starts[:, None]).clamp(min=0), last_step[:, None])
        sequence = sequence.gather(1, index[..., None].expand(-1, -1, sequence.shape[-1]))
        kept = mask if self.zero_output_for_mask else (t >= dev_starts[:, None]) & seen[:, None]
        return torch.where(kept[..., None], sequence, 0.0), last, new_states

    # ------------------------------------------------------------------ step loop (fallback)
    def _masks(self, like, rate, count):
        """``count`` dropout masks (scaled by 1/(1-rate)), drawn once for the whole sequence."""
        if self.seed is not None and (self._generator is None
                                      or self._generator.device != like.device):
            self._generator = torch.Generator(like.device).manual_seed(int(self.seed))
        return [torch.empty_like(like).bernoulli_(1 - rate, generator=self._generator) / (1 - rate)
                for _ in range(count)]

    def _project_inputs(self, x, in_masks):
        """Every step's input transform at once: ``(batch, time, gates * units)``."""
        b_in, _ = self._biases()
        return _project(x, self.kernel, b_in, in_masks)

    def _loop(self, x, states, mask, drop, rec_drop):
        # Keras: one input mask, or one per gate when recurrent_dropout is set (implementation 1).
        per_gate = self._gates if self.recurrent_dropout else 1
        in_masks = ([m.unsqueeze(1) for m in self._masks(x[:, 0], self.dropout, per_gate)]
                    if drop else None)
        rec_masks = (self._masks(states[0], self.recurrent_dropout, self._gates)
                     if rec_drop else None)
        projected = self._project_inputs(x, in_masks)
        if mask is not None:  # (batch, time, 1, ...) to broadcast over a state
            mask = mask.view(mask.shape + (1,) * (states[0].dim() - 1))
        outputs, out = [], None
        for t in range(x.shape[1]):
            new = self._step(projected[:, t], states, rec_masks)
            if mask is None:
                states, out = new, new[0]
            else:  # masked step: states carried over, output held (or zero)
                keep = mask[:, t]
                states = [torch.where(keep, n, s) for n, s in zip(new, states)]
                held = 0.0 if out is None or self.zero_output_for_mask else out
                out = torch.where(keep, new[0], held)
            if self.return_sequences:
                outputs.append(out)
        sequence = torch.stack(outputs, 1) if self.return_sequences else None
        return sequence, out, states

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
        return {**super().get_config(), **recurrent_options_config(self),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards,
                "stateful": self.stateful, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask}

    def extra_repr(self):
        return f"name={self.name!r}, units={self.units}"


class SimpleRNN(_RNN):
    """``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    kernel ``(in, units)`` Glorot uniform; recurrent_kernel ``(units, units)`` orthogonal;
    bias ``(units,)`` zeros. tanh and relu run fused (``torch.rnn_tanh`` / ``rnn_relu``).
    """

    def _fusable(self):
        return self.activation in (torch.tanh, torch.relu)

    def _fused(self, x, states, lengths=None):
        fn = torch.rnn_tanh if self.activation is torch.tanh else torch.rnn_relu
        sequence, h = self._run_fused(fn, x, states[0].unsqueeze(0), lengths)
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

    def _fused(self, x, states, lengths=None):
        sequence, h, c = self._run_fused(torch.lstm, x, (states[0][None], states[1][None]),
                                         lengths)
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

    def _fused(self, x, states, lengths=None):
        sequence, h = self._run_fused(torch.gru, x, states[0].unsqueeze(0), lengths)
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
