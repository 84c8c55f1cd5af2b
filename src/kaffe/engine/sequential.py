"""``Sequential``: a plain stack of layers, each feeding the next."""
import torch
from torch import nn

from kaffe.engine.functional import Functional, _call_error, call_with_mask
from kaffe.engine.input_layer import InputLayer
from kaffe.engine.keras_tensor import KerasTensor
from kaffe.engine.layer import Layer, LayerCallError
from kaffe.engine.model import Model
from kaffe.engine.naming import unique_name
from kaffe.engine.operation import torch_dtype


class Sequential(Functional):
    """Layers given as a list or with ``add``. The input shape comes from ``input_shape`` /
    ``input_dim`` on the first layer, an ``Input`` added first, ``build(shape)``, or the first
    batch of data it is called on (like Keras, the model is unbuilt until one of those)."""

    def __init__(self, layers=None, name=None, trainable=True):
        Model.__init__(self, name=name or unique_name("sequential"), trainable=trainable)
        self._stack = nn.ModuleList()
        self._input_layer = None
        self.inputs, self.outputs = [], []
        self._nodes = set()
        self.built = False
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError("An Input can only be the first thing added to a Sequential model.")
            self._input_layer = layer
            self._connect()
            return
        if not isinstance(layer, nn.Module):
            raise TypeError(f"Sequential.add expects a layer. Received: {layer!r} "
                            f"of type {type(layer).__name__}.")
        if any(existing.name == getattr(layer, "name", None) for existing in self._stack):
            raise ValueError(f"All layers in a Sequential model need unique names; "
                             f"'{layer.name}' is already in '{self.name}'.")
        self._stack.append(layer)
        first_shape = getattr(self._stack[0], "_batch_input_shape", None)
        if self._input_layer is None and first_shape is not None:
            self._input_layer = InputLayer(batch_shape=first_shape,
                                           dtype=getattr(self._stack[0], "input_dtype", None))
        if self._input_layer is not None:
            self._connect()

    def pop(self):
        if not self._stack:
            raise TypeError("There are no layers in the model to pop.")
        layer = self._stack[-1]
        del self._stack[-1]
        if self._input_layer is not None:
            self._connect()
        return layer

    def _connect(self):
        """Call the layers on the input symbolically: builds them and records output shapes."""
        x = self._input_layer.output
        self._nodes = set()
        for layer in self._stack:
            x = layer(x)
            self._nodes.add(layer._inbound_nodes[-1])
        self.inputs, self.outputs = [self._input_layer.output], [x]
        self.creates_mask = any(getattr(l, "creates_mask", False) for l in self._stack)
        self.built = bool(self._stack)

    def build(self, input_shape=None):
        if input_shape is None:
            raise ValueError("Sequential.build needs an input shape, e.g. build((None, 784)).")
        if not self._stack:
            raise ValueError(f"Sequential model '{self.name}' has no layers to build.")
        self._input_layer = InputLayer(batch_shape=(None,) + tuple(input_shape)[1:],
                                       dtype=getattr(self._stack[0], "input_dtype", None))
        self._connect()

    def _build_from_batch(self, xs):
        self.build((None,) + tuple(xs[0].shape[1:]))

    def _build_once(self, input_shape):
        if not self.built:
            self.build(input_shape)
            self._build_input_shape = input_shape

    @property
    def layers(self):
        return list(self._stack)

    @property
    def output_names(self):
        return [self._stack[-1].name] if self._stack else ["output_1"]

    @property
    def input_dtype(self):
        if self._input_layer is not None:
            return self._input_layer.input_dtype
        return getattr(self._stack[0], "input_dtype", "float32") if self._stack else "float32"

    def call(self, inputs):
        if type(inputs) is torch.Tensor and not inputs.is_floating_point() and \
                str(self.input_dtype).startswith(("float", "bfloat")):
            inputs = inputs.to(torch_dtype(self.input_dtype))  # Keras 3: cast to the Input's
        x, mask = inputs, None
        layer = None
        try:
            for layer in self._stack:
                x_in = x
                if self.creates_mask:
                    x, mask = call_with_mask(layer, x, mask, {})
                else:
                    x = layer(x)
        except (LayerCallError, torch.OutOfMemoryError):  # OOM keeps its type
            raise
        except (RuntimeError, ValueError, IndexError) as error:
            raise _call_error(layer, x_in, error) from error
        return x

    def compute_output_shape(self, input_shape):
        if self.outputs:
            return self.outputs[0].shape
        return super(Functional, self).compute_output_shape(input_shape)

    def get_config(self):
        from kaffe.saving.serialization import sequential_config
        return sequential_config(self)

    # Keras 2's Sequential-only prediction helpers (removed in Keras 2.6; Keras 2 scripts use them).
    def predict_proba(self, x, batch_size=None, verbose=0, steps=None):
        """``predict``, warning when the outputs are not probabilities (Keras 2)."""
        preds = self.predict(x, batch_size=batch_size, verbose=verbose, steps=steps)
        if preds.min() < 0.0 or preds.max() > 1.0:
            import warnings
            warnings.warn("Network returning invalid probability values. The last layer might "
                          "not normalize predictions into probabilities (like softmax or "
                          "sigmoid would).")
        return preds

    def predict_classes(self, x, batch_size=None, verbose=0, steps=None):
        """Class indices: the argmax over several outputs, ``prob > 0.5`` as int32 for one
        (Keras 2)."""
        proba = self.predict(x, batch_size=batch_size, verbose=verbose, steps=steps)
        if proba.shape[-1] > 1:
            return proba.argmax(axis=-1)
        return (proba > 0.5).astype("int32")
