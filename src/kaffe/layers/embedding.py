"""``Embedding``: integer indices to dense vectors."""
import torch
import torch.nn.functional as F

from kaffe import constraints, initializers, ops, regularizers
from kaffe.engine.layer import Layer


class Embedding(Layer):
    """Look up rows of ``embeddings`` (``(input_dim, output_dim)``, uniform(-0.05, 0.05)).

    ``input_length`` (Keras 2) fixes the sequence length so a following ``Flatten`` knows its
    size; it also serves as the input shape of a first layer in ``Sequential``.
    """

    input_dtype = "int64"

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, activity_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, input_length=None, weights=None,
                 **kwargs):
        if input_length is not None and "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,) if isinstance(input_length, int) else tuple(input_length)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for arg, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Embedding expected a positive integer for {arg}. "
                                 f"Received: {arg}={value!r}")
        self.input_dim, self.output_dim = input_dim, output_dim
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = mask_zero
        self.creates_mask = bool(mask_zero)
        self.input_length = input_length
        self._initial_weights = weights

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)
        if self._initial_weights is not None:  # Keras 2's Embedding(weights=[matrix])
            self.built = True
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def call(self, inputs):
        if inputs.is_floating_point():
            inputs = inputs.long()
        return F.embedding(inputs, self.embeddings)

    def compute_mask(self, inputs, mask=None):
        """With ``mask_zero``, index 0 is padding: positions holding it are masked out."""
        if not self.mask_zero:
            return None
        return inputs != 0 if isinstance(inputs, torch.Tensor) else ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_output_dtype(self, inputs):
        return "float32"

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
                "mask_zero": self.mask_zero}
