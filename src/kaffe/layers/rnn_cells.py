"""Keras's generic recurrent API: ``RNN(cell)`` and the cells ``SimpleRNNCell``, ``LSTMCell``,
``GRUCell``, ``StackedRNNCells``.

A cell is any layer with a ``state_size`` (an int, or a list of ints, one per state tensor), an
optional ``output_size`` and ``call(inputs, states)`` returning ``(output, new_states)`` for one
time step; ``RNN`` runs it over the time axis in a Python loop (user-written cells included:
keras.io's ``MinimalRNNCell``). A cell whose ``call`` takes ``training`` gets it; a cell with
``get_initial_state(batch_size)`` gives the initial states, else they are zeros.

The built-in cells hold Keras 3's weights in Keras's shapes and order (LSTMCell ``kernel (in,
4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)``, gates ``i, f, c, o``; GRUCell gates ``z, r,
h``, bias ``(2, 3u)`` with ``reset_after=True``), so ``set_weights(keras_layer.get_weights())``
gives Keras's outputs. Masks follow Keras: at a masked step the states are carried over and the
output repeats the previous one (zeros before the first kept step, or zeros at every masked step
with ``zero_output_for_mask``). ``go_backwards`` returns the sequence in reversed time order.

With ``return_state`` the outputs are ``[output, *states]``, states flattened (a stacked cell's
``[h1, c1, h2, c2]``; Keras nests them per cell), so every output is one tensor of the graph.
"""
import torch

from kaffe import activations
from kaffe.engine.layer import Layer
from kaffe.layers.masking import check_mask, first_mask
from kaffe.layers.recurrent import (_UnitForgetBias, recurrent_options_config,
                                    set_recurrent_options, stateful_batch_size)


# ---------------------------------------------------------------------------------- state trees
def _flat(structure):
    """Leaves of a nested list/tuple structure, in order."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in _flat(item)]
    return [structure]


def _pack(template, leaves):
    """``leaves`` (an iterator) arranged like ``template`` (nested lists)."""
    if isinstance(template, (list, tuple)):
        return [_pack(item, leaves) for item in template]
    return next(leaves)


def _sizes(cell):
    """The RNN's state structure: a list with one entry (int or nested list) per state."""
    size = cell.state_size
    return list(size) if isinstance(size, (list, tuple)) else [size]


def _output_size(cell):
    size = getattr(cell, "output_size", None)
    if size is not None:
        return size
    first = _sizes(cell)[0]
    return _flat(first)[0]


def _takes_training(cell):
    return bool(getattr(cell, "_call_takes_training", False))


def _zeros_like_sizes(sizes, batch_size, dtype=torch.float32, device=None):
    return [_zeros_like_sizes(s, batch_size, dtype, device) if isinstance(s, (list, tuple))
            else torch.zeros((batch_size, int(s)), dtype=dtype, device=device) for s in sizes]


# ---------------------------------------------------------------------------------- cells
class _DenseCell(Layer):
    """Shared arguments, weights and dropout masks of the built-in cells.

    Subclasses set ``_gates`` and define ``step(inputs, states)``. Dropout masks are drawn once
    per sequence (as Keras's ``DropoutRNNCell``) and dropped by ``reset_dropout_mask``.
    """

    _gates = 1

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 implementation=2, **kwargs):
        super().__init__(**kwargs)
        set_recurrent_options(
            self, units, activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
            seed)
        self.implementation = implementation  # accepted; one fused matmul per step either way
        self._generator = None
        self.reset_dropout_mask()

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def build(self, input_shape):
        width = self._gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], width), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel", (self.units, width), self.recurrent_initializer,
            regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint)
        self.bias = (self.add_weight("bias", self._bias_shape(), self._bias_init(),
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint)
                     if self.use_bias else None)

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def get_initial_state(self, batch_size=None):
        device = self.kernel.device if self.built else None
        dtype = self.kernel.dtype if self.built else torch.float32
        return _zeros_like_sizes(_flat(self.state_size), batch_size, dtype, device)

    # dropout: one mask per sequence
    def reset_dropout_mask(self):
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self):
        self._recurrent_dropout_mask = None

    def _mask(self, like, rate):
        if self.seed is not None and (self._generator is None
                                      or self._generator.device != like.device):
            self._generator = torch.Generator(like.device).manual_seed(int(self.seed))
        return torch.empty_like(like).bernoulli_(1 - rate, generator=self._generator) / (1 - rate)

    def _dropped(self, inputs, h, training):
        """``inputs`` and ``h`` with this sequence's dropout masks applied when training."""
        if training and 0 < self.dropout < 1:
            if self._dropout_mask is None:
                self._dropout_mask = self._mask(inputs, self.dropout)
            inputs = inputs * self._dropout_mask
        if training and 0 < self.recurrent_dropout < 1:
            if self._recurrent_dropout_mask is None:
                self._recurrent_dropout_mask = self._mask(h, self.recurrent_dropout)
            h = h * self._recurrent_dropout_mask
        return inputs, h

    def get_config(self):
        return {**super().get_config(), **recurrent_options_config(self)}

    def extra_repr(self):
        return f"name={self.name!r}, units={self.units}"


class SimpleRNNCell(_DenseCell):
    """``h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)``; state ``[h]``."""

    def call(self, inputs, states, training=False):
        prev = states[0] if isinstance(states, (list, tuple)) else states
        inputs, prev_dropped = self._dropped(inputs, prev, training)
        h = inputs @ self.kernel
        if self.bias is not None:
            h = h + self.bias
        output = h + prev_dropped @ self.recurrent_kernel
        if self.activation is not None:
            output = self.activation(output)
        return output, ([output] if isinstance(states, (list, tuple)) else output)


class LSTMCell(_DenseCell):
    """One LSTM step, gates ``i, f, c, o``; states ``[h, c]``. Bias initialised with ones on the
    forget gate when ``unit_forget_bias``."""

    _gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_init(self):
        if self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.units)
        return self.bias_initializer

    def call(self, inputs, states, training=False):
        h, c = states[0], states[1]
        inputs, h = self._dropped(inputs, h, training)
        z = inputs @ self.kernel + h @ self.recurrent_kernel
        if self.bias is not None:
            z = z + self.bias
        i, f, g, o = z.chunk(4, -1)
        gate = self.recurrent_activation
        c = gate(f) * c + gate(i) * self.activation(g)
        h = gate(o) * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_DenseCell):
    """One GRU step, gates ``z, r, h``; state ``[h]``. ``reset_after=True`` (default, the
    cuDNN form): bias ``(2, 3u)``, input and recurrent biases; else bias ``(3u,)`` and the reset
    gate applied before the recurrent matmul."""

    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 reset_after=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs, states, training=False):
        nested = isinstance(states, (list, tuple))
        h_prev = states[0] if nested else states
        inputs, h_dropped = self._dropped(inputs, h_prev, training)
        u, gate = self.units, self.recurrent_activation
        in_bias, rec_bias = None, None
        if self.bias is not None:
            in_bias, rec_bias = (self.bias[0], self.bias[1]) if self.reset_after else (self.bias,
                                                                                       None)
        x = inputs @ self.kernel
        if in_bias is not None:
            x = x + in_bias
        x_z, x_r, x_h = x.chunk(3, -1)
        if self.reset_after:
            rec = h_dropped @ self.recurrent_kernel
            if rec_bias is not None:
                rec = rec + rec_bias
            rec_z, rec_r, rec_h = rec.chunk(3, -1)
            z, r = gate(x_z + rec_z), gate(x_r + rec_r)
            candidate = self.activation(x_h + r * rec_h)
        else:
            rec_z, rec_r = (h_dropped @ self.recurrent_kernel[:, :2 * u]).chunk(2, -1)
            z, r = gate(x_z + rec_z), gate(x_r + rec_r)
            candidate = self.activation(x_h + (r * h_dropped) @ self.recurrent_kernel[:, 2 * u:])
        h = z * h_prev + (1 - z) * candidate
        return h, ([h] if nested else h)

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "reset_after": self.reset_after}


def _check_cell(cell, owner):
    if not callable(getattr(cell, "call", None)) or not hasattr(cell, "state_size"):
        raise ValueError(
            f"{owner} expected an RNN cell: a layer with a `state_size` attribute and a "
            f"`call(inputs, states)` method. Received: cell={cell!r}")


def _cell_argument(value, custom_objects=None):
    """A cell, or a cell config written by ``get_config`` (Keras's serialised form)."""
    if isinstance(value, dict):
        from kaffe.saving.serialization import deserialize_layer
        return deserialize_layer(value, custom_objects)
    return value


def _serialize(cell):
    from kaffe.saving.serialization import serialize_layer
    return serialize_layer(cell)


class StackedRNNCells(Layer):
    """Several cells run as one: each step feeds the output of one cell to the next. States:
    one entry per cell (a cell with several states gives a list)."""

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = [_cell_argument(c) for c in cells]
        for cell in cells:
            _check_cell(cell, "StackedRNNCells")
        self.cells = torch.nn.ModuleList(cells)

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @property
    def output_size(self):
        return _output_size(self.cells[-1])

    def build(self, input_shape):
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell._build_once(tuple(input_shape))
            input_shape = (input_shape[0], _output_size(cell))

    def get_initial_state(self, batch_size=None):
        states = []
        for cell in self.cells:
            fn = getattr(cell, "get_initial_state", None)
            if fn is not None:
                states.append(fn(batch_size=batch_size))
            elif isinstance(cell.state_size, (list, tuple)):
                states.append(_zeros_like_sizes(cell.state_size, batch_size))
            else:
                states.append(torch.zeros((batch_size, int(cell.state_size))))
        return states

    def call(self, inputs, states, training=False):
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            was_list = isinstance(cell_states, (list, tuple))
            cell_states = list(cell_states) if was_list else [cell_states]
            kwargs = {"training": training} if _takes_training(cell) else {}
            inputs, cell_states = cell(inputs, cell_states, **kwargs)
            if not isinstance(cell_states, (list, tuple)):
                cell_states = [cell_states]
            new_states.append(cell_states[0] if len(cell_states) == 1 and not was_list
                              else list(cell_states))
        return inputs, new_states

    def reset_dropout_mask(self):
        for cell in self.cells:
            for reset in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
                if hasattr(cell, reset):
                    getattr(cell, reset)()

    def get_config(self):
        return {**super().get_config(), "cells": [_serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cells = [_cell_argument(c, custom_objects) for c in config.pop("cells")]
        return cls(cells, **config)


# ---------------------------------------------------------------------------------- RNN
class RNN(Layer):
    """Run ``cell`` over the time axis of ``(batch, timesteps, features)`` inputs.

    ``cell`` may be a list of cells (stacked, as ``StackedRNNCells``). Initial states:
    ``layer(x, initial_state=[...])``, eagerly or on symbolic tensors (a stacked cell's nested
    states may be given nested or flat). ``stateful=True`` carries the final states of a batch
    over to the next (fixed batch size); ``reset_states()`` zeroes them. ``unroll`` is
    accepted: the loop is a Python loop either way.
    """

    supports_masking = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        cell = _cell_argument(cell)
        _check_cell(cell, "RNN")
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self._states = None  # stateful: flat list of the states carried to the next batch
        self._batch_size = None

    @property
    def state_size(self):
        return _sizes(self.cell)

    # ------------------------------------------------------------------ build and states
    def build(self, input_shape):
        seq_shape = tuple(input_shape[0] if isinstance(input_shape, list) else input_shape)
        if len(seq_shape) < 3:
            raise ValueError(f"RNN '{self.name}' expects inputs (batch, timesteps, features). "
                             f"Received input shape {seq_shape}.")
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell._build_once((seq_shape[0],) + seq_shape[2:])
        if self.stateful:
            self._batch_size = stateful_batch_size(self, seq_shape)
            self._states = [s.detach() for s in _flat(self.get_initial_state(self._batch_size))]

    def get_initial_state(self, batch_size):
        """The cell's ``get_initial_state(batch_size)`` as a list, else zeros per state."""
        fn = getattr(self.cell, "get_initial_state", None)
        if fn is None:
            return _zeros_like_sizes(self.state_size, batch_size)
        states = fn(batch_size=batch_size)
        return list(states) if isinstance(states, (list, tuple)) else [states]

    @property
    def states(self):
        """The states a stateful layer carries over (None when not stateful)."""
        return None if self._states is None else list(self._states)

    def reset_states(self, states=None):
        """Zero the carried states of a stateful layer (or set them to ``states``)."""
        if not (self.stateful and self.built):
            return
        zeros = [s.detach() for s in _flat(self.get_initial_state(self._batch_size))]
        if states is not None:
            given = [torch.as_tensor(s, dtype=z.dtype) for s, z in zip(_flat(states), zeros)]
            if len(given) != len(zeros) or any(g.shape != z.shape for g, z in zip(given, zeros)):
                raise ValueError(f"RNN '{self.name}' expects states of shapes "
                                 f"{[tuple(z.shape) for z in zeros]}. Received shapes "
                                 f"{[tuple(torch.as_tensor(s).shape) for s in _flat(states)]}.")
            zeros = given
        self._states = zeros

    reset_state = reset_states  # Keras 3 spelling

    # ------------------------------------------------------------------ call
    def __call__(self, *args, initial_state=None, **kwargs):
        if initial_state is not None:  # fold into the inputs so symbolic graphs record it too
            states = _flat(initial_state)
            args = ([args[0] if args else kwargs.pop("inputs")] + states,) + args[1:]
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=False, mask=None):
        states = None
        if isinstance(inputs, (list, tuple)):
            inputs, states = inputs[0], list(inputs[1:]) or None
        x = inputs
        mask = check_mask(first_mask(mask), x, self)
        template = self.state_size
        if states is None:
            if self.stateful:
                states = self._carried_states(x)
            else:
                states = _flat(self.get_initial_state(x.shape[0]))
        expected = len(_flat(template))
        if len(states) != expected:
            raise ValueError(f"RNN '{self.name}' expects {expected} initial state tensor(s) "
                             f"(state_size={self.cell.state_size}). Received {len(states)}.")
        states = [torch.as_tensor(s).to(device=x.device, dtype=x.dtype) for s in states]
        if self.go_backwards:
            x = x.flip(1)
            mask = None if mask is None else mask.flip(1)
        sequence, last, states = self._loop(x, states, mask, training, template)
        if hasattr(self.cell, "reset_dropout_mask"):
            self.cell.reset_dropout_mask()
        if hasattr(self.cell, "reset_recurrent_dropout_mask"):
            self.cell.reset_recurrent_dropout_mask()
        if self.stateful:
            self._states = [s.detach() for s in states]
        output = sequence if self.return_sequences else last
        if self.return_state:
            return [output, *states]
        return output

    def _carried_states(self, x):
        if x.shape[0] != self._batch_size:
            raise ValueError(
                f"RNN '{self.name}' is stateful with batch size {self._batch_size}, received a "
                f"batch of {x.shape[0]}. Feed batches of exactly that size.")
        return list(self._states)

    def _loop(self, x, flat_states, mask, training, template):
        """(sequence or None, last output, flat final states): Keras's ``backend.rnn``."""
        kwargs = {"training": bool(training)} if _takes_training(self.cell) else {}
        states = _pack(template, iter(flat_states))
        outputs, out = [], None
        for t in range(x.shape[1]):
            step_out, new = self.cell(x[:, t], states, **kwargs)
            new_flat = _flat(new)
            if mask is not None:  # masked step: states carried over, output held (or zero)
                keep = mask[:, t, None]
                new_flat = [torch.where(keep, n, s) for n, s in zip(new_flat, flat_states)]
                held = (torch.zeros_like(step_out) if out is None or self.zero_output_for_mask
                        else out)
                step_out = torch.where(keep, step_out, held)
            flat_states, out = new_flat, step_out
            states = _pack(template, iter(flat_states))
            if self.return_sequences:
                outputs.append(out)
        sequence = torch.stack(outputs, 1) if self.return_sequences else None
        return sequence, out, flat_states

    # ------------------------------------------------------------------ shapes, masks, config
    def compute_output_shape(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        batch, steps = seq_shape[0], seq_shape[1]
        size = _output_size(self.cell)
        output = (batch, steps, size) if self.return_sequences else (batch, size)
        if self.return_state:
            return [output] + [(batch, int(s)) for s in _flat(self.state_size)]
        return output

    def compute_mask(self, inputs, mask=None):
        """The input mask with ``return_sequences``, else None (as kaffe's LSTM)."""
        mask = first_mask(mask)
        return mask if self.return_sequences else None

    def get_config(self):
        return {**super().get_config(), "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards,
                "stateful": self.stateful, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
                "cell": _serialize(self.cell)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cell = _cell_argument(config.pop("cell"), custom_objects)
        return cls(cell, **config)

    def extra_repr(self):
        return f"name={self.name!r}, cell={type(self.cell).__name__}"
