"""Layer wrappers for sequences: ``Bidirectional`` and ``TimeDistributed`` (Keras 3 semantics).

``Bidirectional(LSTM(8))`` holds two fresh copies of the wrapped layer, ``forward_<name>`` and
``backward_<name>`` (the latter with ``go_backwards=True``), weights in that order, and merges
their outputs (the backward sequence flipped back into time order). ``TimeDistributed(layer)``
runs ``layer`` on every time step as one call over ``batch * time`` samples.
"""
import torch

from kaffe.engine.layer import Layer
from kaffe.layers.masking import first_mask

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _layer_argument(value, custom_objects=None):
    """A layer, or a layer config written by ``get_config`` (Keras's serialised form)."""
    if isinstance(value, dict):
        from kaffe.saving.serialization import deserialize_layer
        return deserialize_layer(value, custom_objects)
    return value


def _serialize(layer):
    from kaffe.saving.serialization import serialize_layer
    return serialize_layer(layer)


def _clone(layer, **overrides):
    """A fresh, unbuilt layer with ``layer``'s configuration (and ``overrides``)."""
    return type(layer).from_config({**layer.get_config(), **overrides})


def _removeprefix(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Run a recurrent layer forwards and backwards over the sequence and merge the two.

    merge_mode: ``'concat'`` (default, features side by side), ``'sum'``, ``'mul'``, ``'ave'``
    or ``None`` (both outputs returned as a list). ``backward_layer``: a layer to use for the
    backward direction instead of a copy of ``layer`` (it must have the opposite
    ``go_backwards`` and the same ``return_sequences``/``return_state``/``stateful``).
    ``weights``: Keras 2's initial weights, forward ones then backward ones.
    With ``return_state`` the outputs are ``[output, *forward_states, *backward_states]``;
    ``initial_state`` is split the same way (first half forward). When returning sequences,
    masked steps are zeros in both directions (Keras forces ``zero_output_for_mask``).
    """

    supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        layer = _layer_argument(layer)
        backward_layer = _layer_argument(backward_layer)
        for name, value in (("layer", layer), ("backward_layer", backward_layer)):
            if value is not None and not (isinstance(value, Layer) and all(
                    hasattr(value, a) for a in ("go_backwards", "return_sequences",
                                                "return_state"))):
                raise ValueError(f"Bidirectional expected a recurrent layer (LSTM, GRU, "
                                 f"SimpleRNN...) for {name}. Received: {value!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Bidirectional expected merge_mode to be one of {_MERGE_MODES}. "
                             f"Received: merge_mode={merge_mode!r}")
        super().__init__(**kwargs)
        self.forward_layer = _clone(layer, name="forward_" + _removeprefix(layer.name, "forward_"))
        if backward_layer is None:
            backward_layer = _clone(layer, go_backwards=True,
                                    name="backward_" + _removeprefix(layer.name, "backward_"))
        self.backward_layer = backward_layer
        self._verify_pair()
        for sub in (self.forward_layer, self.backward_layer):
            if hasattr(sub, "zero_output_for_mask"):
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.stateful = getattr(self.forward_layer, "stateful", False)
        self._initial_weights = weights

    def _verify_pair(self):
        fwd, bwd = self.forward_layer, self.backward_layer
        if fwd.go_backwards == bwd.go_backwards:
            raise ValueError("Bidirectional: the forward and backward layers need different "
                             f"go_backwards values. Received: {fwd.go_backwards} for both.")
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(fwd, attr, False) != getattr(bwd, attr, False):
                raise ValueError(f"Bidirectional: the forward and backward layers need the same "
                                 f"{attr}. Received: {getattr(fwd, attr, False)} (forward), "
                                 f"{getattr(bwd, attr, False)} (backward).")

    def build(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        self.forward_layer._build_once(seq_shape)
        self.backward_layer._build_once(seq_shape)
        if self._initial_weights:
            self.built = True
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def __call__(self, *args, initial_state=None, **kwargs):
        if initial_state is not None:  # as in the RNNs: extra inputs of the node
            states = (list(initial_state) if isinstance(initial_state, (list, tuple))
                      else [initial_state])
            args = ([args[0] if args else kwargs.pop("inputs")] + states,) + args[1:]
        return super().__call__(*args, **kwargs)

    def call(self, inputs, mask=None):
        states = []
        if isinstance(inputs, (list, tuple)):
            inputs, states = inputs[0], list(inputs[1:])
        half = len(states) // 2
        mask = first_mask(mask)
        y = self._run(self.forward_layer, inputs, states[:half], mask)
        y_rev = self._run(self.backward_layer, inputs, states[half:], mask)
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev.flip(1)
        if self.merge_mode == "concat":
            output = [torch.cat([y, y_rev], -1)]
        elif self.merge_mode == "sum":
            output = [y + y_rev]
        elif self.merge_mode == "ave":
            output = [(y + y_rev) / 2]
        elif self.merge_mode == "mul":
            output = [y * y_rev]
        else:
            output = [y, y_rev]
        if self.return_state:
            return output + states
        return output[0] if len(output) == 1 else output

    @staticmethod
    def _run(layer, x, states, mask):
        kwargs = {"initial_state": states} if states else {}
        if mask is not None and layer._call_takes_mask:
            kwargs["mask"] = mask
        return layer(x, **kwargs)

    def compute_mask(self, inputs, mask=None):
        """The input mask with ``return_sequences`` (for each output), else None."""
        mask = first_mask(mask)
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            shape, states = shape[0], list(shape[1:])
        shape = tuple(shape)
        if self.merge_mode == "concat":
            outputs = [shape[:-1] + (None if shape[-1] is None else 2 * shape[-1],)]
        elif self.merge_mode is None:
            outputs = [shape, shape]
        else:
            outputs = [shape]
        outputs += [tuple(s) for s in states] * 2
        return outputs[0] if len(outputs) == 1 else outputs

    def check_input_shape(self, input_shape):
        self.forward_layer.check_input_shape(input_shape)

    @property
    def states(self):
        fwd, bwd = self.forward_layer.states, self.backward_layer.states
        return None if fwd is None or bwd is None else list(fwd) + list(bwd)

    def reset_states(self, states=None):
        if not self.stateful:
            raise AttributeError(f"Bidirectional '{self.name}' is not stateful; "
                                 "reset_states() needs stateful=True.")
        half = None if states is None else len(states) // 2
        self.forward_layer.reset_states(None if states is None else states[:half])
        self.backward_layer.reset_states(None if states is None else states[half:])

    reset_state = reset_states  # Keras 3 spelling

    def get_config(self):
        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": _serialize(self.forward_layer),
                "backward_layer": _serialize(self.backward_layer)}

    def extra_repr(self):
        return f"name={self.name!r}, merge_mode={self.merge_mode!r}"


class TimeDistributed(Layer):
    """Apply ``layer`` to every time step: ``(batch, time, ...)`` runs as one call on
    ``(batch * time, ...)`` and is reshaped back. The weights are the wrapped layer's.

    The mask passes through. A mask with more axes than ``(batch, time)`` is handed to a wrapped
    layer that takes one, reshaped likewise. Unlike Keras's per-step loop, a wrapped
    ``BatchNormalization`` in training sees statistics over all steps at once.
    """

    supports_masking = True

    def __init__(self, layer, **kwargs):
        layer = _layer_argument(layer)
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed expected a layer. Received: {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def _child_shape(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 3:
            raise ValueError(f"TimeDistributed '{self.name}' expects one input of rank >= 3 "
                             f"(batch, time, ...). Received input shape {input_shape}.")
        return (input_shape[0],) + tuple(input_shape[2:])

    def build(self, input_shape):
        self.layer._build_once(self._child_shape(input_shape))

    def check_input_shape(self, input_shape):
        self.layer.check_input_shape(self._child_shape(input_shape))

    def call(self, inputs, mask=None):
        batch, steps = inputs.shape[:2]
        flat = inputs.reshape((batch * steps,) + inputs.shape[2:])
        kwargs = {}
        if mask is not None and mask.dim() > 2 and self.layer._call_takes_mask:
            kwargs["mask"] = mask.reshape((batch * steps,) + mask.shape[2:])
        y = self.layer(flat, **kwargs)
        return y.reshape((batch, steps) + y.shape[1:])

    def compute_output_shape(self, input_shape):
        child = tuple(self.layer.compute_output_shape(self._child_shape(input_shape)))
        return (child[0], input_shape[1]) + child[1:]

    def get_config(self):
        return {**super().get_config(), "layer": _serialize(self.layer)}

    def extra_repr(self):
        return f"name={self.name!r}"
