"""Symbolic tensors of the functional API and the nodes that connect layers.

A ``KerasTensor`` has a shape (batch axis ``None``) and a dtype but no values. Calling a
layer on KerasTensors records a ``Node``; ``Model(inputs, outputs)`` walks nodes back from
the outputs to find the graph. Python operators, indexing and every ``kaffe.ops`` function
record op nodes too (``h * 2``, ``1 - h``, ``h[:, 0]``: Keras 3's ``Multiply``, ``Subtract``,
``GetItem``); ``==`` stays identity, as in Keras, so tensors can be dict keys.
"""


class KerasTensor:
    __slots__ = ("shape", "dtype", "name", "_keras_history")

    def __init__(self, shape, dtype="float32", name=None, history=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = dtype
        self.name = name
        self._keras_history = history  # (layer, node_index, tensor_index)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def node(self):
        layer, node_index, _ = self._keras_history
        return layer._inbound_nodes[node_index]

    @property
    def _keras_mask(self):
        """The mask Keras 3 attaches to this tensor (symbolic, or None): the producing
        layer's ``compute_mask`` of its inputs and their masks, computed when asked for."""
        if self._keras_history is None:
            return None
        node = self.node
        layer = node.layer
        masks = [t._keras_mask for t in node.inputs]
        masks = None if all(m is None for m in masks) else masks
        if not (getattr(layer, "creates_mask", False) or getattr(layer, "_computes_mask", False)
                or (masks is not None and getattr(layer, "supports_masking", False))):
            return None
        single = node.input_structure == "single"
        mask = layer.compute_mask(node.inputs[0] if single else node.inputs,
                                  masks[0] if single and masks else masks)
        return mask[self._keras_history[2]] if isinstance(mask, (list, tuple)) else mask

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __bool__(self):
        raise TypeError("A symbolic KerasTensor has no value; it cannot be used in an `if`. "
                        "Put the logic inside a layer (e.g. a Lambda).")

    def __len__(self):
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"len() of a symbolic tensor of shape {self.shape} is unknown.")
        return self.shape[0]

    def __iter__(self):
        raise TypeError(f"A symbolic tensor of shape {self.shape} cannot be iterated; use "
                        "ops.unstack or indexing (h[:, 0]).")

    def __array__(self, *args, **kwargs):
        raise TypeError(f"A symbolic KerasTensor (shape {self.shape}) has no values, so it "
                        "cannot become a numpy array. Use kaffe.ops / keras.ops functions on it "
                        "(they record graph nodes), or compute inside a layer.")

    def reshape(self, newshape):
        return _ops().reshape(self, newshape)

    def squeeze(self, axis=None):
        return _ops().squeeze(self, axis)

    def __getitem__(self, key):
        return _ops().get_item(self, key)

    def __round__(self, ndigits=None):
        return _ops().round(self, decimals=ndigits or 0)


_OPS = None


def _ops():
    global _OPS
    if _OPS is None:
        import kaffe.ops
        _OPS = kaffe.ops
    return _OPS


def _binary(op_name, reflected=False):
    if reflected:
        def method(self, other):
            return getattr(_ops(), op_name)(other, self)
    else:
        def method(self, other):
            return getattr(_ops(), op_name)(self, other)
    method.__name__ = op_name
    return method


def _unary(op_name):
    def method(self):
        return getattr(_ops(), op_name)(self)
    method.__name__ = op_name
    return method


#: Python operator -> Keras 3's op (each records a node of that op's class).
_BINARY_OPERATORS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "matmul": "matmul",
    "truediv": "true_divide", "div": "divide", "floordiv": "floor_divide", "mod": "mod",
    "pow": "power", "and": "logical_and", "or": "logical_or", "xor": "logical_xor",
}
for _name, _op in _BINARY_OPERATORS.items():
    setattr(KerasTensor, f"__{_name}__", _binary(_op))
    setattr(KerasTensor, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal",
                   "ne": "not_equal"}.items():
    setattr(KerasTensor, f"__{_name}__", _binary(_op))
for _name, _op in {"neg": "negative", "abs": "absolute", "invert": "logical_not"}.items():
    setattr(KerasTensor, f"__{_name}__", _unary(_op))


class Node:
    """One call of ``layer`` on symbolic ``inputs`` producing ``outputs`` (flat lists)."""

    def __init__(self, layer, inputs, outputs, call_kwargs, input_structure):
        self.layer = layer
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.call_kwargs = call_kwargs
        self.input_structure = input_structure  # 'single' | 'list'
        self.is_input = not self.inputs

    @property
    def parent_nodes(self):
        return [t.node for t in self.inputs]


def flatten(structure):
    """KerasTensors or tensors of a possibly nested list/tuple/dict, in order."""
    if isinstance(structure, (list, tuple)):
        return [t for item in structure for t in flatten(item)]
    if isinstance(structure, dict):
        return [t for item in structure.values() for t in flatten(item)]
    return [structure]


def is_symbolic(inputs):
    if type(inputs) is KerasTensor:
        return True
    if isinstance(inputs, (list, tuple)):
        return any(type(t) is KerasTensor for t in inputs)
    return False
