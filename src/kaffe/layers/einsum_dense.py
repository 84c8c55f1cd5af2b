"""``EinsumDense``: a dense layer whose contraction is an einsum equation (Keras 3's), e.g.
``EinsumDense("abc,cde->abde", output_shape=(None, 4, 8), bias_axes="de")`` projects each
feature vector of a sequence into 4 heads of 8. The kernel's shape comes from the equation:
each kernel axis takes its size from the output (when named there) or the input."""
import re

import torch

from kaffe import activations, constraints, initializers, regularizers
from kaffe.engine.layer import Layer


def analyze_equation(equation, bias_axes, input_shape, output_shape):
    """Kernel shape, bias shape, full output shape, and which kernel axes contract with the
    input (``input_axes``) or reach the output (``output_axes``), as Keras's analysis."""
    dotted = equation.replace("...", "0")
    patterns = ((r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$", False),
                (r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)$", True),
                (r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0$", False))
    for pattern, left_elided in patterns:
        match = re.match(pattern, dotted)
        if match:
            return _analyze(*match.groups(), bias_axes, list(input_shape), output_shape,
                            left_elided, equation)
    raise ValueError(f"EinsumDense: invalid equation {equation!r}. Expected 'ab,bc->ac' style "
                     "(two inputs, one output), optionally with '...' as the first or last axes.")


def _analyze(input_spec, weight_spec, output_spec, bias_axes, input_shape, output_shape,
             left_elided, equation):
    elided = len(input_shape) - len(input_spec)
    output_shape = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    output_shape.insert(0, input_shape[0])
    if elided > 0 and left_elided:
        for i in range(1, elided):
            output_shape.insert(1, input_shape[i])
    elif elided > 0:
        output_shape.extend(input_shape[len(input_shape) - elided:])
    offset = elided - len(input_shape) if left_elided else 0
    input_map = {d: i + offset for i, d in enumerate(input_spec)}
    output_map = {d: i + (elided if left_elided else 0) for i, d in enumerate(output_spec)}
    for d in input_spec:
        if d in output_map:
            out_dim = output_shape[output_map[d]]
            if out_dim is not None and out_dim != input_shape[input_map[d]]:
                raise ValueError(f"EinsumDense {equation!r}: input axis '{d}' has size "
                                 f"{input_shape[input_map[d]]} but output_shape gives {out_dim}.")
    for d in output_spec:
        if d not in input_spec and d not in weight_spec:
            raise ValueError(f"EinsumDense {equation!r}: output axis '{d}' is in neither the "
                             "input nor the kernel.")
    kernel_shape, input_axes, output_axes = [], [], []
    for i, d in enumerate(weight_spec):
        if d in output_map:
            kernel_shape.append(output_shape[output_map[d]])
            output_axes.append(i)
        elif d in input_map:
            kernel_shape.append(input_shape[input_map[d]])
            input_axes.append(i)
        else:
            raise ValueError(f"EinsumDense {equation!r}: kernel axis '{d}' is in neither the "
                             "input nor the output.")
    bias_shape = None
    if bias_axes is not None:
        sizes = {d: output_shape[i + (elided if left_elided else 0)]
                 for i, d in enumerate(output_spec)}
        for d in bias_axes:
            if d not in output_spec:
                raise ValueError(f"EinsumDense {equation!r}: bias axis '{d}' is not an output "
                                 f"axis ({output_spec}).")
        first = min(output_spec.find(d) for d in bias_axes)
        bias_shape = [sizes[d] if d in bias_axes else 1 for d in output_spec[first:]]
        if not left_elided:
            bias_shape.extend([1] * elided)
    return kernel_shape, bias_shape, output_shape, input_axes, output_axes


class EinsumDense(Layer):
    """``activation(einsum(equation, inputs, kernel) + bias)``; ``output_shape`` leaves out the
    batch axis (``None`` for axes of unknown size), ``bias_axes`` names the output axes the
    bias spans."""

    def __init__(self, equation, output_shape, activation=None, bias_axes=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None,
                 **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if lora_rank:
            raise ValueError("EinsumDense: LoRA (lora_rank) is not supported by kaffe. "
                             f"Received: lora_rank={lora_rank}")
        self.equation = equation
        self.partial_output_shape = (tuple(output_shape) if isinstance(output_shape, (list, tuple))
                                     else (output_shape,))
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        kernel_shape, bias_shape, self.full_output_shape, in_axes, out_axes = analyze_equation(
            self.equation, self.bias_axes, input_shape, self.partial_output_shape)
        self.kernel = self.add_weight("kernel", tuple(kernel_shape),
                                      self._fan_aware(self.kernel_initializer, in_axes, out_axes),
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = None
        if bias_shape is not None:
            self.bias = self.add_weight("bias", tuple(bias_shape), self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)

    @staticmethod
    def _fan_aware(initializer, input_axes, output_axes):
        """Variance-scaling initializers see the kernel as (product of input axes, product of
        output axes), as Keras's EinsumDense arranges."""
        if not isinstance(initializer, initializers.VarianceScaling):
            return initializer

        def draw(shape):
            fan_in = int(torch.tensor([shape[i] for i in input_axes]).prod()) if input_axes else 1
            fan_out = (int(torch.tensor([shape[i] for i in output_axes]).prod())
                       if output_axes else 1)
            value = torch.as_tensor(initializer((fan_in, fan_out)))
            return value.reshape(shape)
        return draw

    def call(self, inputs):
        x = torch.einsum(self.equation, torch.as_tensor(inputs, dtype=self.kernel.dtype),
                         self.kernel)
        if self.bias is not None:
            x = x + self.bias
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        return tuple(analyze_equation(self.equation, self.bias_axes, input_shape,
                                      self.partial_output_shape)[2])

    def get_config(self):
        return {**super().get_config(), "equation": self.equation,
                "output_shape": list(self.partial_output_shape), "bias_axes": self.bias_axes,
                "activation": activations.serialize(self.activation),
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint)}
