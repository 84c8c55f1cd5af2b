"""Symbolic tensors of the functional API and the nodes that connect layers.

A ``KerasTensor`` has a shape (batch axis ``None``) and a dtype but no values. Calling a
layer on KerasTensors records a ``Node``; ``Model(inputs, outputs)`` walks nodes back from
the outputs to find the graph.
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

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __bool__(self):
        raise TypeError("A symbolic KerasTensor has no value; it cannot be used in an `if`. "
                        "Put the logic inside a layer (e.g. a Lambda).")


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
