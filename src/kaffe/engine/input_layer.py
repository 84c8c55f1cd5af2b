"""``Input``: the entry points of a functional model."""
from kaffe.engine.keras_tensor import KerasTensor, Node
from kaffe.engine.layer import Layer

_DTYPE_ALIASES = {"int": "int64", "int32": "int64", "int16": "int64", "int8": "int64",
                  "uint8": "int64", "float": "float32", "float64": "float32", "float16": "float32",
                  None: "float32"}


class InputLayer(Layer):
    """Holds the shape and dtype of one model input; passes data through unchanged."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None,
                 sparse=False, input_shape=None, batch_input_shape=None, **kwargs):
        shape = shape if shape is not None else input_shape
        if batch_shape is None:
            batch_shape = batch_input_shape
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input needs a shape, e.g. Input(shape=(784,)). Received shape=None.")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        dtype = _DTYPE_ALIASES.get(dtype, dtype)
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.batch_shape = tuple(batch_shape)
        self.input_dtype = dtype
        self.built = True
        tensor = KerasTensor(self.batch_shape, dtype, name=self.name, history=(self, 0, 0))
        self._inbound_nodes.append(Node(self, [], [tensor], {}, "single"))

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype,
                "sparse": False, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, sparse=False,
          tensor=None, **kwargs):
    """A symbolic input of ``shape`` (without the batch axis), the start of a functional model."""
    if tensor is not None:
        raise ValueError("Input(tensor=...) is not supported: pass shape= instead.")
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                       batch_shape=batch_shape, sparse=sparse, **kwargs)
    return layer.output
