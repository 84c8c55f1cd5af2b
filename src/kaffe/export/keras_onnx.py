"""``model.export(path, format="onnx")`` for kaffe's Keras-side models.

The ONNX graph takes the model's inputs under their ``Input`` names (in ``model.inputs``
order, with their dtypes: integer inputs such as an ``Embedding``'s stay integers) and returns
its outputs under the names of the layers that produce them, as Keras 3's ONNX export does.
The batch axis is symbolic, and so is every other axis the ``Input`` leaves as ``None``.
Layers run in inference mode (dropout off, batch norm on its moving statistics).
"""
import os

import torch
from torch import nn

from kaffe.export.onnx_file import (OnnxExportError, batch_dim, export_program, module_labels,
                                    require_onnx, unique_names, write_onnx)

# sizes the example input gets on axes the model leaves open (None): not 0 or 1, which
# torch.export would treat as special cases
EXAMPLE_BATCH = 2
EXAMPLE_OPEN_AXIS = 3


class _PositionalInputs(nn.Module):
    """The model called on positional tensors, returning a tuple (what ``torch.export`` needs)."""

    def __init__(self, model, count):
        super().__init__()
        self.model, self.count = model, count

    def forward(self, *inputs):
        outputs = self.model(list(inputs) if self.count > 1 else inputs[0])
        return tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs,)


def input_specs(model):
    """``[(name, batch_shape, torch dtype)]`` of the model's inputs; an unbuilt model is an error
    that says how to build it."""
    tensors = list(getattr(model, "inputs", None) or [])
    if not tensors:
        raise OnnxExportError(
            f"Model '{model.name}' has no known input shape yet, so it cannot be exported. Give "
            "its first layer input_shape=..., start it with an Input, call model.build(shape) "
            "or call it on data first.")
    names = model.input_names
    specs = []
    for name, tensor in zip(names, tensors):
        dtype = str(getattr(tensor, "dtype", "float32") or "float32")
        torch_dtype = torch.int64 if "int" in dtype else (
            torch.bool if dtype == "bool" else torch.float32)
        specs.append((name, tuple(tensor.shape), torch_dtype))
    return specs


def _example(shape, dtype, generator):
    sizes = [EXAMPLE_BATCH if i == 0 else (EXAMPLE_OPEN_AXIS if d is None else int(d))
             for i, d in enumerate(shape)]
    if dtype.is_floating_point:
        return torch.rand(sizes, generator=generator)
    return torch.zeros(sizes, dtype=dtype)   # index 0 is valid for any Embedding


def _dynamic_axes(name, shape, batch, dynamic_batch):
    axes = {}
    for i, d in enumerate(shape):
        if i == 0 and dynamic_batch:
            axes[0] = batch
        elif i > 0 and d is None:
            axes[i] = torch.export.Dim(f"{name}_axis{i}", min=1, max=2 ** 20)
    return axes or None


def _named_layers(model):
    from kaffe.engine.layer import Layer
    return [(f"'{m.name}' ({type(m).__name__})", m) for m in model.modules()
            if isinstance(m, Layer) and m is not model]


def export_keras_onnx(model, path, dynamic_batch=True):
    """Write ``model`` (a kaffe ``Model`` / ``Sequential``) to ``path`` as ONNX; returns
    ``path``. Input names are the ``Input`` names, output names the output layers' names."""
    require_onnx()
    specs = input_specs(model)
    what = f"model '{model.name}'"
    generator = torch.Generator().manual_seed(0)
    examples = [_example(shape, dtype, generator) for _, shape, dtype in specs]
    batch = batch_dim()
    shapes = [_dynamic_axes(name, shape, batch, dynamic_batch) for name, shape, _ in specs]
    input_names = unique_names([name for name, _, _ in specs])
    output_names = unique_names(list(model.output_names))
    was_training = model.training
    model.eval()
    try:
        wrapper = _PositionalInputs(model, len(specs))
        with torch.no_grad():
            try:
                wrapper(*examples)   # builds lazy layers; a plain error before any tracing
            except Exception as error:  # noqa: BLE001
                raise OnnxExportError(f"Cannot export {what}: it fails on example inputs of "
                                      f"shapes {[tuple(e.shape) for e in examples]}: "
                                      f"{error}") from error
        layers = _named_layers(model)
        program = export_program(wrapper, examples, layers, shapes, what)
        count = len(program.graph_signature.user_outputs)
        if count != len(output_names):
            output_names = unique_names([f"output_{i}" for i in range(count)])
        return write_onnx(program, path, input_names, output_names, what,
                          module_labels(wrapper, layers))
    finally:
        model.train(was_training)


def load_keras_file(path):
    """A ``.keras`` (Keras 3 zip) or ``.h5`` (Keras 2) model file as a kaffe model."""
    from kaffe.models import load_model
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise OnnxExportError(f"No model file '{path}'.")
    return load_model(path, compile=False)

