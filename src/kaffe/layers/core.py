"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Permute, RepeatVector, Lambda."""
import math

import torch
import torch.nn.functional as F

from kaffe import activations, constraints, initializers, regularizers
from kaffe.engine.layer import Layer, inside_user_layer_init
from kaffe.layers import dropout_mask


def _positive_int(value, arg, layer):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{layer} expected a positive integer for {arg}. Received: {arg}={value!r}")
    return value


class _FoldableActivation:
    """Layers ending in ``self.activation`` that the trainer may ask for pre-activation values
    (``_emit_logits``) to fuse the activation into a cross-entropy loss."""
    _emit_logits = False

    def _activate(self, z):
        return z if self._emit_logits else self.activation(z)


class Dense(_FoldableActivation, Layer):
    """``output = activation(inputs @ kernel + bias)`` on the last axis.

    kernel: ``(input_dim, units)`` in Keras's terms (``get_weights``), stored as torch's
    ``(units, input_dim)``, drawn from ``kernel_initializer`` (Glorot uniform by default);
    bias: ``(units,)``, zeros. Inputs of rank > 2 are transformed on their last axis.
    """

    supports_masking = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 output_dim=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        units = output_dim if output_dim is not None else units  # Keras 1 spelling
        self.units = _positive_int(units, "units", "Dense")
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        # A part of a user layer keeps Keras's (in, units) kernel: its owner's code may use it
        # (tied weights: ops.matmul(x, ops.transpose(self.dense.kernel))).
        self._keras_kernel = inside_user_layer_init()

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"Dense '{self.name}' needs the last axis of its input to be known. "
                             f"Received input shape {tuple(input_shape)}.")
        # Stored as torch's (units, in): F.linear then needs no transpose, forward or backward.
        self.kernel = self.add_weight("kernel", (in_dim, self.units), self.kernel_initializer,
                                      layout=None if self._keras_kernel else (1, 0),
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = (self.add_weight("bias", (self.units,), self.bias_initializer,
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint)
                     if self.use_bias else None)

    def call(self, inputs):
        kernel = self.kernel.t() if self._keras_kernel else self.kernel
        return self._activate(F.linear(inputs, kernel, self.bias))

    def check_input_shape(self, input_shape):
        expected = self.kernel.shape[0 if self._keras_kernel else 1]
        if input_shape[-1] is not None and input_shape[-1] != expected:
            raise ValueError(f"Dense '{self.name}' expected input width {expected}, received "
                             f"input shape {tuple(input_shape)}.")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}


class Activation(_FoldableActivation, Layer):
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self._activate(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Zero a fraction ``rate`` of the inputs while training, scaling the rest by 1/(1-rate)."""

    supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"Dropout rate must be in [0, 1]. Received: rate={rate}")
        self.rate, self.noise_shape, self.seed = float(rate), noise_shape, seed

    def call(self, inputs):
        if not self.training or self.rate == 0:
            return inputs
        shape = None if self.noise_shape is None else \
            [inputs.shape[i] if d is None else d for i, d in enumerate(self.noise_shape)]
        return dropout_mask.dropout(inputs, self.rate, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape,
                "seed": self.seed}


class Flatten(Layer):
    """Flatten all axes but the batch axis (channels_first inputs are moved to channels_last
    first, as Keras does, so weights trained either way line up)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        from kaffe.config import standardize_data_format
        self.data_format = standardize_data_format(data_format)

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.dim() > 2:
            inputs = inputs.movedim(1, -1)
        return inputs.reshape(inputs.shape[0], -1)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if any(d is None for d in rest) else math.prod(rest))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)
        if sum(1 for d in self.target_shape if d == -1) > 1:
            raise ValueError(f"Reshape target_shape may hold at most one -1. "
                             f"Received: {self.target_shape}")

    def call(self, inputs):
        return inputs.reshape((inputs.shape[0],) + self.target_shape)

    def compute_output_shape(self, input_shape):
        target = list(self.target_shape)
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            rest = input_shape[1:]
            total = None if any(d is None for d in rest) else math.prod(rest)
            if total is not None and total % known:
                raise ValueError(f"Reshape '{self.name}' cannot reshape input {tuple(input_shape)} "
                                 f"to {self.target_shape}.")
            target[target.index(-1)] = None if total is None else total // known
        else:
            rest = input_shape[1:]
            if all(d is not None for d in rest) and math.prod(rest) != math.prod(target):
                raise ValueError(f"Reshape '{self.name}': total size of input {tuple(input_shape)} "
                                 f"does not match target_shape {self.target_shape}.")
        return (input_shape[0],) + tuple(target)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permute the non-batch axes; ``dims`` counts from 1 as in Keras."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute dims must be a permutation of 1..{len(self.dims)}. "
                             f"Received: dims={self.dims}")

    def call(self, inputs):
        return inputs.permute((0,) + self.dims)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features)."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = _positive_int(n, "n", "RepeatVector")

    def call(self, inputs):
        return inputs.unsqueeze(1).expand(-1, self.n, -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Lambda(Layer):
    """Wrap a function of tensors as a layer. The function is never saved as code: loading a
    model with a Lambda asks for it again by name through ``custom_objects``."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a callable. Received: {function!r}")
        self.function = function
        self._output_shape = output_shape
        self.arguments = arguments or {}

    def call(self, inputs):
        out = self.function(inputs, **self.arguments)
        # Keras 2 unpacks a one-element list output (``K.gradients(...)`` returns a list), so
        # the next layer receives the tensor (mnist_swwae.py's ``getwhere``).
        if isinstance(out, (list, tuple)) and len(out) == 1 and isinstance(out[0], torch.Tensor):
            return out[0]
        return out

    def compute_output_shape(self, input_shape):
        spec = self._output_shape
        if spec is None:
            return super().compute_output_shape(input_shape)
        if callable(spec):
            return tuple(spec(input_shape))
        spec = tuple(spec)
        first = input_shape[0] if isinstance(input_shape, list) else input_shape
        if spec and isinstance(spec[0], (tuple, list)):
            return [(first[0],) + tuple(s) for s in spec]
        return (first[0],) + spec

    def get_config(self):
        shape = self._output_shape
        return {**super().get_config(), "function": getattr(self.function, "__name__", "lambda"),
                "output_shape": list(shape) if isinstance(shape, (tuple, list)) else None,
                "arguments": self.arguments}


class TorchModuleWrapper(Layer):
    """Use any ``torch.nn.Module`` as a kaffe layer (Keras 3 has the same name): its parameters
    train with the model, its weights are listed in torch's order and shapes, and its output
    shape is found by tracing on the meta device."""

    def __init__(self, module, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"TorchModuleWrapper needs a torch.nn.Module. Received: {module!r}")
        self.module = module
        self.module.train(False)
        self.built = True

    def call(self, inputs):
        return self.module(inputs)

    def get_config(self):
        raise NotImplementedError("A TorchModuleWrapper holds arbitrary torch code and cannot be "
                                  "saved as a config; save its weights with save_weights.")
