"""Caffe's recurrent layers: ``RNN``, ``LSTM`` and ``LSTMUnit``, with Caffe's exact semantics.

Caffe builds these as an unrolled net (``recurrent_layer.cpp``, ``rnn_layer.cpp``,
``lstm_layer.cpp``); here the same arithmetic runs on torch's own RNN/LSTM kernels (input
projection of all steps at once, the time loop in C++), one call per stretch of steps in which
no stream restarts; Caffe's gate order and blob layout are mapped onto torch's at call time.

Bottoms are ``x`` (``T x N x ...``), ``cont`` (``T x N``: 0 starts a new sequence), an optional
static input ``x_static`` (``N x ...``, added to every step's gate input) and, with
``expose_hidden``, the initial states (``h_0``, plus ``c_0`` for LSTM; each ``1 x N x H``).
Tops are the outputs (``T x N x H``) and, with ``expose_hidden``, the final states.

Caffe's rules kept here:

- blobs in Caffe's order and shapes: LSTM ``W_xc (4H, D)``, ``b_c (4H)``, [``W_xc_static
  (4H, Ds)``], ``W_hc (4H, H)``, gates ordered ``i, f, o, g``; RNN ``W_xh (H, D)``, ``b_h (H)``,
  [``W_xh_static (H, Ds)``], ``W_hh (H, H)``, ``W_ho (H, H)``, ``b_o (H)``;
- ``h_{t-1}`` is multiplied by ``cont_t``; LSTM's forget gate is ``cont_t * sigmoid(.)`` and 0
  where ``cont_t == 0``; RNN outputs ``o_t = tanh(W_ho h_t + b_o)``;
- no gradient reaches ``cont``, nor (with ``expose_hidden``) the initial-state bottoms, and the
  diffs of the final-state tops are ignored (Caffe shares their data, not their diffs);
- without ``expose_hidden`` the state at the end of one forward pass is the initial state of
  the next (Caffe's streaming truncated BPTT); ``reset()`` zeroes it (Caffe's ``Reset``);
- LSTMUnit's backward is Caffe's formula (``f * (1 - f)`` of the cont-scaled forget gate),
  which equals the true gradient for 0/1 ``cont``; LSTM's backward is the true gradient, so
  the two differ only for a fractional ``cont`` (the forward passes agree for any ``cont``).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from kaffe.caffe import fillers
from kaffe.caffe.builders.registry import CaffeLayer, register


def _fail(layer, message):
    raise ValueError(f"{layer.param.type} layer '{layer.name}': {message}")


class _LSTMUnitFunction(torch.autograd.Function):
    """Caffe's ``LSTMUnitLayer``: ``(c_prev, gates, cont) -> (c, h)``, gates ``i, f, o, g``."""

    @staticmethod
    def forward(ctx, c_prev, gates, cont):
        i, f, o, g = gates.chunk(4, dim=-1)
        i, o, g = torch.sigmoid(i), torch.sigmoid(o), torch.tanh(g)
        cont = cont.unsqueeze(-1)
        f = torch.where(cont == 0, torch.zeros_like(f), cont * torch.sigmoid(f))
        c = f * c_prev + i * g
        tanh_c = torch.tanh(c)
        ctx.save_for_backward(c_prev, i, f, o, g, tanh_c)
        return c, o * tanh_c

    @staticmethod
    def backward(ctx, c_diff, h_diff):
        c_prev, i, f, o, g, tanh_c = ctx.saved_tensors
        c_term = c_diff + h_diff * o * (1 - tanh_c * tanh_c)
        gates_diff = torch.cat([c_term * g * i * (1 - i), c_term * c_prev * f * (1 - f),
                                h_diff * tanh_c * o * (1 - o), c_term * i * (1 - g * g)], dim=-1)
        return c_term * f, gates_diff, None


lstm_unit = _LSTMUnitFunction.apply


@register("LSTMUnit")
class LSTMUnit(CaffeLayer):
    """Bottoms ``c_prev (1, N, H)``, ``x (1, N, 4H)``, ``cont (1, N)``; tops ``c``, ``h``."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.top_shapes(bottom_shapes)

    def top_shapes(self, bottom_shapes):
        if len(bottom_shapes) != 3:
            _fail(self, f"expects 3 bottoms (c_prev, gate input, cont); received "
                        f"{len(bottom_shapes)}.")
        c_prev, x, cont = (tuple(s) for s in bottom_shapes)
        n = c_prev[1] if len(c_prev) == 3 else None
        if (len(c_prev) != 3 or len(x) != 3 or len(cont) != 2 or c_prev[0] != 1 or x[0] != 1
                or cont[0] != 1 or x[1] != n or cont[1] != n or x[2] != 4 * c_prev[2]):
            _fail(self, f"bottom shapes must be c_prev (1, N, H), x (1, N, 4H), cont (1, N); "
                        f"received {c_prev}, {x}, {cont}.")
        return [c_prev, c_prev]

    def forward(self, c_prev, x, cont):
        return list(lstm_unit(c_prev, x, cont.detach()))


class _Recurrent(CaffeLayer):
    """What RNN and LSTM share: bottom parsing, the input projections, the carried state."""

    num_states = 1  # recurrent state blobs (h; LSTM adds c)
    gates = 1       # rows of the projections per hidden unit (LSTM: 4)

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.recurrent_param
        if p.num_output <= 0:
            _fail(self, "recurrent_param { num_output } must be positive; received "
                        f"{p.num_output}.")
        self.hidden = p.num_output
        self.expose_hidden = p.expose_hidden
        exposed = self.num_states if self.expose_hidden else 0
        if len(bottom_shapes) not in (2 + exposed, 3 + exposed):
            states = f", then the {exposed} initial states" if exposed else ""
            _fail(self, f"expects bottoms x, cont, optionally x_static{states}; received "
                        f"{len(bottom_shapes)} bottoms.")
        self.static_input = len(bottom_shapes) == 3 + exposed
        if len(param.top) != 1 + exposed:
            _fail(self, f"expects {1 + exposed} tops; received {len(param.top)}.")
        x_shape = tuple(bottom_shapes[0])
        if len(x_shape) < 2:
            _fail(self, f"bottom x must have at least 2 axes (T, N, ...); received {x_shape}.")
        self.x_dim = math.prod(x_shape[2:])
        self.static_dim = (math.prod(tuple(bottom_shapes[2])[1:]) if self.static_input
                           else None)
        self.top_shapes(bottom_shapes)
        self._state = None

    def _new_blob(self, shape, filler):
        return nn.Parameter(fillers.fill(filler, shape))

    def _input_blobs(self):
        """``W_x (GH, D)``, ``b (GH)`` and, with a static input, ``W_x_static (GH, Ds)``."""
        p = self.param.recurrent_param
        rows = self.gates * self.hidden
        self.blobs.append(self._new_blob((rows, self.x_dim), p.weight_filler))
        self.blobs.append(self._new_blob((rows,), p.bias_filler))
        if self.static_input:
            self.blobs.append(self._new_blob((rows, self.static_dim), p.weight_filler))

    def top_shapes(self, bottom_shapes):
        shapes = [tuple(s) for s in bottom_shapes]
        x, cont = shapes[0], shapes[1]
        t, n = x[0], x[1]
        if len(cont) != 2 or cont != (t, n):
            _fail(self, f"bottom cont must have shape (T, N) = {(t, n)}; received {cont}.")
        if math.prod(x[2:]) != self.x_dim:
            _fail(self, f"bottom x has {math.prod(x[2:])} values per step; the weights "
                        f"expect {self.x_dim}.")
        if self.static_input:
            xs = shapes[2]
            if xs[0] != n or math.prod(xs[1:]) != self.static_dim:
                _fail(self, f"bottom x_static must have shape (N={n}, ...) with "
                            f"{self.static_dim} values per stream; received {xs}.")
        state = (1, n, self.hidden)
        first = 3 if self.static_input else 2
        for k, s in enumerate(shapes[first:]):
            if s != state:
                _fail(self, f"initial-state bottom {first + k} must have shape {state}; "
                            f"received {s}.")
        return [(t, n, self.hidden)] + [state] * (self.num_states if self.expose_hidden else 0)

    def _inputs(self, x, x_static):
        """Each step's input features (T, N, D [+ Ds]) and the matching input weight: a static
        input is the same extra features at every step, so one matrix product covers both."""
        x = x.reshape(x.shape[0], x.shape[1], -1)
        if x_static is None:
            return x, self.blobs[0]
        xs = x_static.reshape(1, x_static.shape[0], -1).expand(x.shape[0], -1, -1)
        return torch.cat([x, xs], dim=2), torch.cat([self.blobs[0], self.blobs[2]], dim=1)

    def _initial_states(self, n, given, like):
        if self.expose_hidden:
            return [s.detach()[0] for s in given]
        shape = (n, self.hidden)
        if self._state is None or tuple(self._state[0].shape) != shape:
            return [like.new_zeros(shape) for _ in range(self.num_states)]
        return list(self._state)

    def reset(self):
        """Zero the carried hidden state (Caffe's ``RecurrentLayer::Reset``)."""
        self._state = None

    def forward(self, x, cont, *rest):
        x_static = rest[0] if self.static_input else None
        given = rest[1:] if self.static_input else rest
        cont = cont.detach().to(x.dtype)
        inputs, w_in = self._inputs(x, x_static)
        states = self._initial_states(x.shape[1], given, inputs)
        outputs, states = self._run(inputs, w_in, cont, states)
        self._state = [s.detach() for s in states]
        tops = [outputs]
        if self.expose_hidden:
            tops += [s.detach().unsqueeze(0) for s in states]
        return tops


def _segments(cont):
    """``[(t0, t1)]`` covering the steps, such that inside a segment every stream continues
    (``cont == 1`` at ``t0 < t < t1``): there the recurrence is a plain RNN/LSTM that torch runs
    in one call; at ``t0`` the carried state is multiplied by ``cont[t0]`` first."""
    steps = cont.shape[0]
    breaks = (~(cont[1:] == 1).all(dim=1)).nonzero().flatten().add(1).tolist()
    bounds = [0] + breaks + [steps]
    return list(zip(bounds[:-1], bounds[1:]))


class _Recurrence(_Recurrent):
    """Runs the recurrence segment by segment with torch's own RNN/LSTM kernels."""

    def _run(self, inputs, w_in, cont, states):
        w_ih, b_ih, w_hh = self._torch_weights(w_in)
        params = [w_ih, w_hh, b_ih, torch.zeros_like(b_ih)]
        outputs = []
        for t0, t1 in _segments(cont):
            keep = cont[t0].unsqueeze(-1)
            hx = [(s * keep).unsqueeze(0) for s in states]
            result = self._torch_kernel(inputs[t0:t1], hx, params)
            outputs.append(result[0])
            states = [s[0] for s in result[1:]]
        return self._output(torch.cat(outputs)), states


@register("RNN")
class RNN(_Recurrence):
    """``h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h)``, ``o_t = tanh(W_ho h_t + b_o)``."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.recurrent_param
        self._input_blobs()
        h = self.hidden
        self.blobs.append(self._new_blob((h, h), p.weight_filler))   # W_hh
        self.blobs.append(self._new_blob((h, h), p.weight_filler))   # W_ho
        self.blobs.append(self._new_blob((h,), p.bias_filler))       # b_o

    def _torch_weights(self, w_in):
        return w_in, self.blobs[1], self.blobs[-3]

    @staticmethod
    def _torch_kernel(inputs, hx, params):
        return torch.rnn_tanh(inputs, hx[0], params, True, 1, 0.0, False, False, False)

    def _output(self, hs):
        return torch.tanh(F.linear(hs, self.blobs[-2], self.blobs[-1]))


@register("LSTM")
class LSTM(_Recurrence):
    """Caffe's LSTM: gate input ``W_hc (cont_t h_{t-1}) + W_xc x_t + b_c`` in Caffe's gate
    order ``i, f, o, g``; ``c_t = cont_t f_t c_{t-1} + i_t g_t``, ``h_t = o_t tanh(c_t)``."""

    num_states = 2
    gates = 4

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.recurrent_param
        self._input_blobs()
        self.blobs.append(self._new_blob((4 * self.hidden, self.hidden), p.weight_filler))
        h = self.hidden
        # Caffe's gate rows i, f, o, g -> torch's i, f, g, o
        self.register_buffer("_torch_order", torch.cat([torch.arange(2 * h),
                                                        torch.arange(3 * h, 4 * h),
                                                        torch.arange(2 * h, 3 * h)]),
                             persistent=False)

    def _torch_weights(self, w_in):
        order = self._torch_order
        return w_in[order], self.blobs[1][order], self.blobs[-1][order]

    @staticmethod
    def _torch_kernel(inputs, hx, params):
        return torch.lstm(inputs, hx, params, True, 1, 0.0, False, False, False)

    def _output(self, hs):
        return hs
