"""``Layer``: the unit every kaffe model is built from, a ``torch.nn.Module`` with Keras's lifecycle.

Lifecycle (as in Keras): ``__init__`` validates and stores the configuration; ``build(input_shape)``
creates the weights once the input shape is known (on the first call); ``call(inputs)`` is the
math; ``get_config()`` returns the constructor arguments. Calling a layer on symbolic
``KerasTensor``s records a graph node instead of computing.

Weights are created with ``add_weight`` in the shape Keras gives them (Dense kernel ``(in, out)``,
Conv2D kernel ``(kh, kw, in, out)``) and may be stored permuted (``layout``) to the order torch's
kernels want; ``get_weights``/``set_weights`` always speak Keras's shapes and order.
"""
import contextlib
import functools
import inspect
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from kaffe import constraints, initializers, regularizers
from kaffe.engine.input_spec import check_input_spec
from kaffe.engine.keras_tensor import KerasTensor, Node, flatten, is_symbolic
from kaffe.engine.naming import to_snake_case, unique_name
from kaffe.engine.operation import _template, fill, torch_dtype
from kaffe.engine.tracking import tracking_setattr


@dataclass
class WeightSpec:
    """How one weight is stored: attribute name, torch-side permutation of the Keras shape."""
    attr: str
    keras_shape: tuple
    initializer: object
    trainable: bool
    layout: tuple = None  # stored = keras.permute(layout)
    regularizer: object = None  # tensor (Keras shape) -> scalar penalty added to the loss
    constraint: object = None  # tensor (Keras shape) -> projected tensor, after each update

    def to_keras(self, tensor):
        if self.layout is None:
            return tensor
        return tensor.permute(tuple(np.argsort(self.layout)))

    def from_keras(self, array):
        array = np.asarray(array)
        tensor = torch.as_tensor(array, dtype=torch.float64 if array.dtype == np.float64
                                 else torch.float32)  # the weight's own dtype casts it next
        return tensor if self.layout is None else tensor.permute(self.layout)


class _EagerCalls:
    """Nesting of eager layer calls. As in Keras, the outermost call starts a new forward pass:
    the losses its layers added during the previous one are cleared (``layer.losses`` holds the
    last pass's). ``pending`` counts losses added since (it may overcount: a clearing walk then
    finds nothing), so calls skip the walk while no layer has added any."""
    depth = 0
    pending = 0

    @classmethod
    @contextlib.contextmanager
    def nested(cls):
        """Run calls as inner ones (shape tracing must not clear the caller's losses)."""
        cls.depth += 1
        try:
            yield
        finally:
            cls.depth -= 1


class LayerCallError(RuntimeError):
    """A layer failed on the data it was given; the message names the layer and the shapes."""


class Layer(nn.Module):
    """Base class of all layers. Subclasses override ``build``, ``call``,
    ``compute_output_shape`` (optional: it is traced otherwise) and ``get_config``."""

    #: dtype of the inputs the layer expects when fed raw arrays ('float32' or 'int64').
    input_dtype = "float32"

    #: whether the layer passes a mask through unchanged (Keras's ``supports_masking``).
    supports_masking = False
    #: whether the layer can create a mask of its own (Embedding(mask_zero=True), Masking).
    creates_mask = False

    def __new__(cls, *args, **kwargs):
        """tf.keras lets a subclass set attributes, sub-layers included, before it calls
        ``super().__init__()`` (keras.io's Switch Transformer router does); torch needs its
        module state first, so a user-written layer gets it here."""
        layer = super().__new__(cls)
        if cls.__setattr__ is tracking_setattr:  # user-written classes only
            nn.Module.__init__(layer)
        return layer

    def __init__(self, *, name=None, trainable=True, dtype=None, input_shape=None,
                 input_dim=None, batch_input_shape=None, batch_size=None,
                 activity_regularizer=None, **kwargs):
        if "_parameters" not in self.__dict__:  # else made by __new__ (attributes set before)
            super().__init__()
        self.training = False  # like Keras, a layer called directly runs in inference mode
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword argument(s) {sorted(kwargs)}. "
                "Check the spelling against the Keras documentation of this layer.")
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype = dtype or "float32"
        # Keras's "float64" policy: float64 weights, float inputs cast up (others compute in
        # float32; mixed precision autocasts in fit).
        self._float64 = getattr(self.dtype, "name", self.dtype) == "float64"
        self.built = False
        self._inbound_nodes = []
        self._weight_specs = []
        self._added_losses = []
        self.activity_regularizer = regularizers.get(activity_regularizer)
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size,) + tuple(input_shape)
        self._batch_input_shape = tuple(batch_input_shape) if batch_input_shape else None

    # ------------------------------------------------------------------ weights
    def add_weight(self, name=None, shape=None, initializer="glorot_uniform", dtype=None,
                   trainable=True, layout=None, regularizer=None, constraint=None, **unused):
        """Create a weight of Keras shape ``shape`` and register it on the module.

        ``layout`` permutes the Keras shape into the stored one (e.g. conv kernels to torch's
        ``(out, in, kh, kw)``). Non-trainable weights (moving statistics) are buffers.
        """
        if isinstance(name, (tuple, list)):  # Keras 3 puts ``shape`` first
            name, shape = shape, name
        shape = tuple(int(d) for d in shape)
        attr = name if name and not hasattr(self, name) else f"weight_{len(self._weight_specs)}"
        spec = WeightSpec(attr, shape, initializers.get(initializer) or initializers.Zeros(),
                          bool(trainable), tuple(layout) if layout else None,
                          regularizers.get(regularizer), constraints.get(constraint))
        value = self._initial_value(spec)
        wanted = torch_dtype(dtype) if dtype is not None else None
        if wanted is None or not wanted.is_floating_point:
            wanted = torch.float64 if self._float64 else None
        if wanted is not None:
            value = value.to(wanted)
        if trainable:
            setattr(self, attr, nn.Parameter(value, requires_grad=self._trainable))
        else:
            self.register_buffer(attr, value)
        self._weight_specs.append(spec)
        return getattr(self, attr)

    @staticmethod
    def _initial_value(spec):
        value = spec.initializer(spec.keras_shape)
        value = torch.as_tensor(value, dtype=torch.float32)
        return value if spec.layout is None else value.permute(spec.layout).contiguous()

    def reset_parameters(self):
        """Draw every weight of this layer again from its initializer (for fine-tuning or
        layer-wise pretraining that restarts chosen layers)."""
        with torch.no_grad():
            for spec in self._weight_specs:
                tensor = getattr(self, spec.attr)
                tensor.copy_(self._initial_value(spec).to(tensor.device))

    def _own_weights(self):
        specs = sorted(self._weight_specs, key=lambda s: not s.trainable)
        return [(spec, getattr(self, spec.attr)) for spec in specs]

    def _sublayers(self):
        """Direct child layers (looking through ModuleList/ModuleDict containers)."""
        found = []

        def visit(module):
            for child in module.children():
                if isinstance(child, Layer):
                    found.append(child)
                elif isinstance(child, (nn.ModuleList, nn.ModuleDict, nn.Sequential)):
                    visit(child)
                else:
                    found.append(child)  # a plain torch module wrapped inside a layer
        visit(self)
        return found

    def _weight_entries(self):
        """(spec or None, tensor) for every weight, Keras's order, shared weights once."""
        entries, seen = [], set()
        for spec, tensor in self._own_weights():
            if id(tensor) not in seen:
                seen.add(id(tensor))
                entries.append((spec, tensor))
        for child in self._sublayers():
            child_entries = (child._weight_entries() if isinstance(child, Layer)
                             else [(None, t) for t in list(child.parameters()) + list(child.buffers())])
            for spec, tensor in child_entries:
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    entries.append((spec, tensor))
        return entries

    @property
    def weights(self):
        """All weight tensors (as stored), trainable ones of each layer first, like Keras."""
        return [t for _, t in self._weight_entries()]

    @property
    def trainable_weights(self):
        return [t for t in self.weights if isinstance(t, nn.Parameter) and t.requires_grad]

    @property
    def non_trainable_weights(self):
        return [t for t in self.weights if not (isinstance(t, nn.Parameter) and t.requires_grad)]

    # Keras 3's other spelling of the same lists (custom train steps gather
    # ``layer.trainable_variables`` per sub-layer, as keras.io's ShiftViT does).
    variables = weights
    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freeze or unfreeze this layer and every layer inside it (as Keras does)."""
        value = bool(value)
        for module in self.modules():
            if isinstance(module, Layer):
                module._trainable = value
                for spec in module._weight_specs:
                    tensor = getattr(module, spec.attr)
                    if isinstance(tensor, nn.Parameter):
                        tensor.requires_grad_(value)
            elif not isinstance(module, Layer):
                for p in module.parameters(recurse=False):
                    p.requires_grad_(value)

    def get_weights(self):
        """Weights as numpy arrays in Keras's shapes and order."""
        return [(spec.to_keras(t) if spec else t).detach().cpu().numpy().copy()
                for spec, t in self._weight_entries()]

    def set_weights(self, weights):
        """Load numpy arrays given in Keras's shapes and order (as ``get_weights`` returns)."""
        if not self.built:
            raise ValueError(f"Layer '{self.name}' is not built yet, so it has no weights to set. "
                             "Call it on data (or give the model an input shape) first.")
        entries = self._weight_entries()
        weights = list(weights)
        if len(weights) != len(entries):
            raise ValueError(
                f"Layer '{self.name}' expects {len(entries)} weight arrays "
                f"({', '.join(self._weight_names(entries))}), received {len(weights)}.")
        with torch.no_grad():
            for i, ((spec, tensor), array) in enumerate(zip(entries, weights)):
                expected = spec.keras_shape if spec else tuple(tensor.shape)
                received = tuple(np.shape(array))
                if received != tuple(expected):
                    raise ValueError(
                        f"Layer '{self.name}' weight {i} ({self._weight_names(entries)[i]}) expects "
                        f"shape {tuple(expected)}, received {received}.")
                value = spec.from_keras(array) if spec else torch.as_tensor(np.asarray(array))
                tensor.copy_(value.to(tensor.dtype))

    @staticmethod
    def _weight_names(entries):
        return [spec.attr if spec else "param" for spec, _ in entries]

    def count_params(self):
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet, so it has no weights to count. "
                "Call it on data or give the model an input shape first.")
        return int(sum(t.numel() for t in self.weights))

    def train(self, mode=True):
        """Set training mode on this layer and everything inside it.

        Same result as ``nn.Module.train`` without its per-module ``__setattr__`` cost (fit and
        train_on_batch switch modes on every call). Modules with their own ``train`` keep it.
        """
        stack = [self]
        while stack:
            module = stack.pop()
            if not isinstance(module, Layer) and type(module).train is not nn.Module.train:
                module.train(mode)
                continue
            object.__setattr__(module, "training", mode)
            stack.extend(m for m in module._modules.values() if m is not None)
        return self

    # ------------------------------------------------------------------ losses and constraints
    def add_loss(self, loss):
        """Add a scalar tensor to the training loss of the current forward pass (Keras's
        ``add_loss``; activity regularizers use it)."""
        self._added_losses.append(loss)
        _EagerCalls.pending += 1

    def _clear_added_losses(self):
        for layer in self._layers_and_self():
            _EagerCalls.pending -= len(layer._added_losses)
            layer._added_losses.clear()
        _EagerCalls.pending = max(_EagerCalls.pending, 0)

    def _layers_and_self(self):
        return [m for m in self.modules() if isinstance(m, Layer)]

    def _weight_penalties(self):
        """Weight regularizer penalties of this layer alone, on Keras-shaped views."""
        return [spec.regularizer(spec.to_keras(getattr(self, spec.attr)))
                for spec in self._weight_specs
                if spec.regularizer is not None and getattr(self, spec.attr).requires_grad]

    @property
    def losses(self):
        """Losses added during the last forward pass and weight regularizer penalties, of this
        layer and every layer inside it."""
        found = []
        for layer in self._layers_and_self():
            found.extend(layer._added_losses)
            found.extend(layer._weight_penalties())
        return found

    def apply_constraints(self):
        """Project each constrained weight back onto its constraint (after an update)."""
        with torch.no_grad():
            for spec in self._weight_specs:
                if spec.constraint is not None:
                    keras_view = spec.to_keras(getattr(self, spec.attr))
                    keras_view.copy_(spec.constraint(keras_view))

    # ------------------------------------------------------------------ masks
    def compute_mask(self, inputs, mask=None):
        """The mask of the output: passed through when the layer supports masking."""
        return mask if self.supports_masking else None

    # ------------------------------------------------------------------ build and call
    def build(self, input_shape):
        """Create weights for ``input_shape`` (batch axis included, may be ``None``)."""

    def call(self, inputs):
        return inputs

    _call_takes_training = False
    _call_takes_mask = False
    _computes_mask = False
    #: name of ``call``'s first argument: a call passing it by keyword (``layer(logits=x)``) has
    #: it as its inputs, as in Keras 3.
    _call_first_arg = "inputs"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Keras-style ``call(self, inputs, training=None, mask=None)`` gets them passed in.
        parameters = inspect.signature(cls.call).parameters
        cls._call_takes_training = "training" in parameters
        cls._call_takes_mask = "mask" in parameters
        cls._computes_mask = cls.compute_mask is not Layer.compute_mask
        first = list(parameters.values())[1:2]
        if first and first[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            cls._call_first_arg = first[0].name
        if "build" in cls.__dict__:
            cls.build = _marks_built(cls.__dict__["build"])
        if "__init__" in cls.__dict__:
            cls.__init__ = _plain_scalar_args(cls.__dict__["__init__"], _is_user_layer(cls))
        if not cls.__module__.startswith("kaffe.") and "__setattr__" not in cls.__dict__:
            cls.__setattr__ = tracking_setattr  # layers in lists/dicts/tuples are sub-layers

    def forward(self, *args, **kwargs):
        if self._call_takes_training and "training" not in kwargs:
            kwargs["training"] = self.training
        return self.call(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        inputs = args[0] if args else kwargs.get(self._call_first_arg)
        if is_symbolic(inputs):
            return self._call_symbolic(*args, **kwargs)
        converted = None
        if (inputs.dtype is torch.float64 if type(inputs) is torch.Tensor
                else _holds_arrays(inputs)):
            converted = self._arrays_to_tensors(inputs)
        elif self._float64 and type(inputs) is torch.Tensor and inputs.dtype is torch.float32:
            converted = inputs.double()
        if converted is not None:
            inputs = converted
            if args:
                args = (inputs,) + args[1:]
            else:
                kwargs[self._call_first_arg] = inputs
        if not self.built:
            self._build_from_tensors(inputs)
        training = kwargs.pop("training", None)
        # Keras 3: a tensor carries its mask as ``_keras_mask``; a layer that takes ``mask``
        # gets it unless one is passed, and its output carries the mask it computes
        incoming = kwargs["mask"] if "mask" in kwargs else carried_mask(inputs)
        if incoming is not None and self._call_takes_mask and "mask" not in kwargs:
            kwargs["mask"] = incoming
        if _EagerCalls.depth == 0 and _EagerCalls.pending:
            self._clear_added_losses()
        _EagerCalls.depth += 1
        was_training = self.training
        try:
            if training is not None and bool(training) != was_training:
                self.train(bool(training))
            outputs = super().__call__(*args, **kwargs)
        finally:
            _EagerCalls.depth -= 1
            if self.training != was_training:
                self.train(was_training)
        if self.activity_regularizer is not None and not torch.is_inference_mode_enabled():
            self._record_activity_loss(outputs)
        if self.creates_mask or self._computes_mask or (incoming is not None
                                                         and self.supports_masking):
            attach_masks(outputs, self.compute_mask(inputs, incoming))
        return outputs

    def _arrays_to_tensors(self, inputs):
        """Keras 3 converts numpy arrays given to a layer (``layer(np_array)``) to tensors:
        floats to floatx, each to the dtype the layer takes (``input_dtype``), on the device of
        the layer's weights; float64 tensors become float32 too (its autocast). Models convert
        each input to its ``Input``'s dtype instead."""
        dtypes = self._raw_input_dtypes(inputs)
        device = next(self.parameters(), None)
        device = None if device is None or device.device.type == "cpu" else device.device
        return _map_arrays(inputs, dtypes, device)

    def _raw_input_dtypes(self, inputs):
        return "float64" if self.dtype == "float64" else self.input_dtype

    def _record_activity_loss(self, outputs):
        """Keras 3: the activity penalty of each output, divided by its batch size."""
        for output in flatten(outputs):
            if isinstance(output, torch.Tensor):
                penalty = self.activity_regularizer(output)
                self.add_loss(penalty / output.shape[0] if output.dim() > 0 else penalty)

    def _build_from_tensors(self, inputs):
        shapes = _map_shapes(inputs, lambda t: tuple(t.shape))
        check_input_spec(self, shapes)
        self._build_once(shapes)
        first = flatten(inputs)[0]
        if isinstance(first, torch.Tensor) and first.device.type not in ("cpu", "meta"):
            self.to(first.device)

    def _build_once(self, input_shape):
        if not self.built:
            self.build(input_shape)
            self.built = True
            self._build_input_shape = input_shape

    def _call_symbolic(self, inputs, *args, **kwargs):
        kwargs.pop("training", None)
        if args or any(type(v) is KerasTensor for v in kwargs.values()):
            return self._call_symbolic_positional((inputs,) + args, kwargs)
        shapes = _map_shapes(inputs, lambda t: t.shape)
        check_input_spec(self, shapes)
        self._build_once(shapes)
        self.check_input_shape(shapes)
        # a layer taking ``mask`` is traced with stand-ins of its inputs' masks, as Keras
        # passes the symbolic mask to the symbolic call
        masks = carried_mask(inputs) if self._call_takes_mask and "mask" not in kwargs else None
        with _TracedMasks.given(masks):
            out_shapes = self.compute_output_shape(shapes)
        out_dtype = self.compute_output_dtype(inputs)
        flat_in = flatten(inputs)
        multi = isinstance(out_shapes, list)
        shape_list = out_shapes if multi else [out_shapes]
        node_index = len(self._inbound_nodes)
        outputs = [KerasTensor(s, out_dtype, name=f"{self.name}_output",
                               history=(self, node_index, i)) for i, s in enumerate(shape_list)]
        structure = "list" if isinstance(inputs, (list, tuple)) else "single"
        self._inbound_nodes.append(Node(self, flat_in, outputs, kwargs, structure))
        return outputs if multi else outputs[0]

    def _call_symbolic_positional(self, call_args, kwargs):
        """Keras 3's ``layer(logits, targets, sample_weight)`` (or ``targets=targets``) on
        KerasTensors: every KerasTensor among the arguments is an input of the node; the layer
        is built from the first argument's shape and its output shape traced with all of them."""
        found = []
        tensor_kwargs = {k: v for k, v in kwargs.items() if type(v) is KerasTensor}
        kwargs = {k: v for k, v in kwargs.items() if k not in tensor_kwargs}
        template = _template((list(call_args), tensor_kwargs), found)
        self._build_once(_map_shapes(call_args[0], lambda t: t.shape))
        out_shapes = _trace_positional(self, template, found, kwargs)
        multi = isinstance(out_shapes, list)
        shape_list = out_shapes if multi else [out_shapes]
        node_index = len(self._inbound_nodes)
        out_dtype = self.compute_output_dtype(call_args[0])
        outputs = [KerasTensor(s, out_dtype, name=f"{self.name}_output",
                               history=(self, node_index, i)) for i, s in enumerate(shape_list)]
        node = Node(self, found, outputs, kwargs, "args")
        node.args_template = template
        self._inbound_nodes.append(node)
        return outputs if multi else outputs[0]

    def check_input_shape(self, input_shape):
        """Refuse a symbolic input whose shape cannot work with the built weights."""

    def compute_output_dtype(self, inputs):
        return "float64" if self._float64 else "float32"

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape``; by default found by running ``call`` on the meta device."""
        return trace_output_shape(self, input_shape)

    # ------------------------------------------------------------------ graph introspection
    def _node_attr(self, attr, what):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has never been called, so it has no {what}.")
        values = getattr(self._inbound_nodes[0], attr)
        return values[0] if len(values) == 1 else values

    @property
    def input(self):
        return self._node_attr("inputs", "input")

    @property
    def output(self):
        return self._node_attr("outputs", "output")

    @property
    def input_shape(self):
        value = self.input
        return [t.shape for t in value] if isinstance(value, list) else value.shape

    @property
    def output_shape(self):
        value = self.output
        return [t.shape for t in value] if isinstance(value, list) else value.shape

    # ------------------------------------------------------------------ config
    def get_config(self):
        # a user layer without get_config of its own saves its constructor arguments (Keras 3)
        auto = self.__dict__.get("_auto_config") or {}
        config = {**auto, "name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def extra_repr(self):
        return f"name={self.name!r}"


def carried_mask(inputs):
    """The ``_keras_mask`` a tensor (or each tensor of a list) carries, else None."""
    if isinstance(inputs, (list, tuple)):
        masks = [getattr(x, "_keras_mask", None) for x in inputs]
        return None if all(m is None for m in masks) else masks
    return getattr(inputs, "_keras_mask", None)


def attach_masks(outputs, masks):
    """Set ``_keras_mask`` on the output tensor(s): one mask, or one per output."""
    if isinstance(outputs, torch.Tensor):
        if masks is not None:
            outputs._keras_mask = masks
    elif isinstance(outputs, (list, tuple)) and isinstance(masks, (list, tuple)) \
            and len(outputs) == len(masks):
        for output, mask in zip(outputs, masks):
            if mask is not None and isinstance(output, torch.Tensor):
                output._keras_mask = mask


def _holds_arrays(value):
    """Whether a layer's first argument is or holds numpy arrays or float64 tensors (to convert
    before the call)."""
    if type(value) is list or type(value) is tuple:  # the graph runner's multi-input calls
        for item in value:
            if type(item) is not torch.Tensor or item.dtype is torch.float64:
                return any(_converts(v) for v in value)
        return False
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, (list, tuple)):
        return any(_converts(v) for v in value)
    if isinstance(value, dict):
        return any(_converts(v) for v in value.values())
    return False


def _converts(value):
    return isinstance(value, np.ndarray) or (isinstance(value, torch.Tensor)
                                             and value.dtype is torch.float64)


def _map_arrays(value, dtypes, device):
    """``value`` with its numpy arrays as tensors; ``dtypes`` is one dtype name or a list (one
    per item of a list/tuple, or a dict by key)."""
    from kaffe.training.data_adapters import as_tensor

    def convert(item, dtype):
        if not _converts(item) or dtype == "string":   # text stays a numpy array of str
            return item
        target = torch_dtype(dtype)
        if isinstance(item, torch.Tensor) or target is None or target is torch.float64:
            tensor = torch.as_tensor(item)
            if tensor.dtype is torch.float64 and target is not torch.float64:
                tensor = tensor.float()  # floatx
        else:
            tensor = as_tensor(item)  # float64 -> float32 (floatx), other ints -> int64
        if target is not None and tensor.dtype != target:
            tensor = tensor.to(target)
        return tensor if device is None else tensor.to(device)
    if isinstance(value, (list, tuple)):
        per_item = dtypes if isinstance(dtypes, list) and len(dtypes) == len(value) else None
        items = [convert(v, per_item[i] if per_item else dtypes) for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        per_key = dtypes if isinstance(dtypes, dict) else {}
        return {k: convert(v, per_key.get(k, dtypes if isinstance(dtypes, str) else None))
                for k, v in value.items()}
    return convert(value, dtypes[0] if isinstance(dtypes, list) else dtypes)


def _map_shapes(inputs, fn):
    if isinstance(inputs, (list, tuple)):
        return [fn(t) for t in inputs]
    if isinstance(inputs, dict):  # a subclassed model called on a dict (Keras 3: dict of shapes)
        return {key: fn(t) for key, t in inputs.items()}
    return fn(inputs)


_TRACE_SIZES = (2, 3)  # two sizes for unknown axes: output axes that change are unknown too


def trace_output_shape(layer, input_shape):
    """Run the layer on meta-device tensors to learn its output shape (no real compute)."""
    with _EagerCalls.nested():
        results = [_trace_once(layer, input_shape, size) for size in _TRACE_SIZES]
    first, second = results

    def merge(a, b):
        return tuple(x if x == y else None for x, y in zip(a, b))
    if isinstance(first, list):
        return [merge(a, b) for a, b in zip(first, second)]
    return merge(first, second)


def _trace_positional(layer, template, inputs, kwargs):
    """Output shape(s) of ``layer(*fill(template, inputs), **kwargs)`` traced on the meta device
    (real zeros where an op refuses it); losses the call adds while tracing are dropped."""
    layers = layer._layers_and_self()
    added = [len(l._added_losses) for l in layers]
    metrics = _metric_states(layers)
    results = []
    with _EagerCalls.nested():  # tracing is not a forward pass of its own
        try:
            for size in _TRACE_SIZES:
                def fake(t, device):
                    return torch.zeros([size if d is None else d for d in t.shape], device=device)
                try:
                    with torch.no_grad():
                        args, more = fill(template, [fake(t, "meta") for t in inputs])
                        out = torch.func.functional_call(layer, stand_in_weights(layer, "meta"),
                                                         tuple(args), {**kwargs, **more})
                except (RuntimeError, NotImplementedError, TypeError):
                    args, more = fill(template, [fake(t, "cpu") for t in inputs])
                    with torch.no_grad():
                        out = torch.func.functional_call(layer, stand_in_weights(layer, None),
                                                         tuple(args), {**kwargs, **more})
                results.append([tuple(t.shape) for t in out] if isinstance(out, (list, tuple))
                               else tuple(out.shape))
        finally:
            for l, n in zip(layers, added):
                del l._added_losses[n:]
            for metric, state in metrics:
                metric._state = state

    def merge(a, b):
        return tuple(x if x == y else None for x, y in zip(a, b))
    first, second = results
    if isinstance(first, list):
        return [merge(a, b) for a, b in zip(first, second)]
    return merge(first, second)


def _metric_states(layers):
    """(metric, copy of its state) for the metrics the layers hold as attributes, so a trace
    that calls ``metric.update_state`` (Keras's endpoint layers) leaves them as they were."""
    found = []
    for l in layers:
        for value in vars(l).values():
            if hasattr(value, "_state_shapes") and hasattr(value, "update_state"):
                state = value._state
                found.append((value, None if state is None
                              else {k: v.clone() for k, v in state.items()}))
    return found


def stand_in_weights(layer, device):
    """Stand-ins for the layer's weights in a shape trace, so a call that writes to a weight
    (Keras 3's ``variable.assign`` in ``call``, as PixelCNN's masked convolution and stateful
    counters do) changes nothing real, as Keras's symbolic call leaves variables untouched.
    ``device="meta"`` gives empty meta tensors, ``None`` detached copies (for ops that refuse
    the meta device). A weight held under two attribute names (``self.u = self.add_weight("u")``)
    gets one stand-in for both names, as ``functional_call`` requires; parameters stay
    parameters."""
    made = {}
    weights = {}
    for key, value in layer.state_dict(keep_vars=True).items():
        stand_in = made.get(id(value))
        if stand_in is None:
            stand_in = (torch.empty_like(value, device="meta") if device == "meta"
                        else value.detach().clone())
            if isinstance(value, nn.Parameter):
                stand_in = nn.Parameter(stand_in, requires_grad=False)
            made[id(value)] = stand_in
        weights[key] = stand_in
    return weights


class _TracedMasks:
    """The symbolic masks of the inputs being traced (see ``Layer._call_symbolic``)."""
    masks = None

    @classmethod
    @contextlib.contextmanager
    def given(cls, masks):
        cls.masks, before = masks, cls.masks
        try:
            yield
        finally:
            cls.masks = before

    @classmethod
    def attach(cls, inputs, size, device):
        """All-True stand-in masks on the stand-in inputs (each mask's unknown axes: ``size``)."""
        if cls.masks is None:
            return inputs
        def stand_in(mask):
            return None if mask is None else torch.ones(
                [size if d is None else d for d in mask.shape], dtype=torch.bool, device=device)
        if isinstance(inputs, list) and isinstance(cls.masks, list):
            attach_masks(inputs, [stand_in(m) for m in cls.masks])
        elif isinstance(inputs, torch.Tensor) and not isinstance(cls.masks, list):
            attach_masks(inputs, stand_in(cls.masks))
        return inputs


def _trace_once(layer, input_shape, size):
    def fake(shape):
        concrete = [size if d is None else d for d in shape]
        return torch.zeros(concrete, device="meta")
    inputs = [fake(s) for s in input_shape] if isinstance(input_shape, list) else fake(input_shape)
    inputs = _TracedMasks.attach(inputs, size, "meta")
    try:
        with torch.no_grad():
            out = torch.func.functional_call(layer, stand_in_weights(layer, "meta"), (inputs,))
    except (RuntimeError, NotImplementedError, TypeError):
        # Some ops (or tensors captured by a Lambda) refuse the meta device: use real zeros.
        real = ([torch.zeros([size if d is None else d for d in s]) for s in input_shape]
                if isinstance(input_shape, list)
                else torch.zeros([size if d is None else d for d in input_shape]))
        real = _TracedMasks.attach(real, size, None)
        with torch.no_grad():
            out = torch.func.functional_call(layer, stand_in_weights(layer, None), (real,))
    if isinstance(out, (list, tuple)):
        return [tuple(t.shape) for t in out]
    return tuple(out.shape)


def plain_scalars(value):
    """``value`` with NumPy scalars (``np.int64(2)``, ``np.float32(0.5)``, ``np.bool_``) turned
    into Python's, inside tuples and lists too, so every layer argument that takes an int takes a
    NumPy integer, as in Keras (``MaxPooling2D(pool_size=(np.int64(2), np.int64(2)))``)."""
    if isinstance(value, np.generic) and value.ndim == 0 and not isinstance(value, np.str_):
        return value.item()
    if type(value) in (tuple, list):
        return type(value)(plain_scalars(v) for v in value)
    return value


_USER_LAYER_INITS = [0]  # how many user-written layers' __init__ are running now


def inside_user_layer_init():
    """True while a user-written layer (not a model) runs its ``__init__``: the layers it makes
    are its parts, and its own code may read or write their weights (keras.io's PixelCNN masks
    ``self.conv.kernel``), so they keep Keras's weight layout."""
    return _USER_LAYER_INITS[0] > 0


def _is_user_layer(cls):
    is_model = any(base.__name__ == "Model" and base.__module__ == "kaffe.engine.model"
                   for base in cls.__mro__)
    return not cls.__module__.startswith("kaffe.") and not is_model


def _plain_scalar_args(init, user_layer=False):
    """Wrap a subclass's ``__init__`` so its arguments pass through :func:`plain_scalars` (and,
    for a user-written layer, so :func:`inside_user_layer_init` knows it is running)."""
    @functools.wraps(init)
    def init_with_plain_args(self, *args, **kwargs):
        if user_layer:
            _USER_LAYER_INITS[0] += 1
        args = tuple(plain_scalars(a) for a in args)
        kwargs = {k: plain_scalars(v) for k, v in kwargs.items()}
        try:
            init(self, *args, **kwargs)
        finally:
            if user_layer:
                _USER_LAYER_INITS[0] -= 1
        if user_layer and type(self).__dict__.get("__init__") is init_with_plain_args:
            self.__dict__["_auto_config"] = _constructor_config(init, self, args, kwargs)
    return init_with_plain_args


def _constructor_config(init, layer, args, kwargs):
    """Keras 3's automatic config of a user layer: the arguments its ``__init__`` was called
    with, when all are plain JSON values (else None: the layer must write ``get_config``)."""
    try:
        bound = inspect.signature(init).bind(layer, *args, **kwargs).arguments
    except TypeError:
        return None
    bound.pop(next(iter(bound)))  # self
    extra = bound.pop("kwargs", {}) if "kwargs" in inspect.signature(init).parameters else {}
    config = {**bound, **extra}
    return config if _plain_json(config) else None


def _plain_json(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    return False


def _marks_built(build):
    """Wrap a subclass's ``build`` so a direct ``layer.build(shape)`` leaves the layer built, as
    in Keras 3 (else the next call would build, and create its weights, a second time)."""
    @functools.wraps(build)
    def build_and_mark(self, input_shape, *args, **kwargs):
        result = build(self, input_shape, *args, **kwargs)
        if not self.built:
            self.built = True
            self._build_input_shape = input_shape
        return result
    return build_and_mark
