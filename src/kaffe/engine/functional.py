"""Functional models: a graph of layers from ``Input`` tensors to output tensors."""
import torch
from torch import nn

from kaffe.engine.graph import map_graph
from kaffe.engine.input_layer import InputLayer
from kaffe.engine.keras_tensor import KerasTensor, flatten
from kaffe.engine.layer import LayerCallError, Layer
from kaffe.engine.model import Model
from kaffe.engine.naming import unique_name
from kaffe.engine.operation import Operation, OpStep, fill, torch_dtype


class Functional(Model):
    """``Model(inputs, outputs)``: runs the layers connected from ``inputs`` to ``outputs``.

    The graph is compiled once into a flat list of steps over numbered value slots, so a
    forward pass is one Python loop over the layers with no graph walking.
    """

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        Model.__init__(self, name=name or unique_name("functional"), trainable=trainable, **kwargs)
        self._init_graph(inputs, outputs)

    def _init_graph(self, inputs, outputs):
        self._input_structure = inputs
        self._output_structure = outputs
        self.inputs = _as_tensor_list(inputs, "inputs")
        self.outputs = _as_tensor_list(outputs, "outputs")
        losses = list(getattr(self, "_symbolic_losses", ()))
        nodes, operations = map_graph(self.inputs, self.outputs + losses)
        # Op nodes (h * 2, ops.sum(h)) are graph members but not layers, as in Keras 3.
        self._operations = operations
        self._graph_layers = nn.ModuleList(
            [op for op in operations if not isinstance(op, Operation)])
        self._nodes = set(nodes)
        slots = {id(t): i for i, t in enumerate(self.inputs)}
        steps = []
        for node in nodes:
            if node.is_input:
                continue
            in_slots = tuple(slots[id(t)] for t in node.inputs)
            out_slots = []
            for t in node.outputs:
                slots[id(t)] = len(slots)
                out_slots.append(slots[id(t)])
            if isinstance(node.layer, Operation):
                steps.append((OpStep(node), in_slots, False, tuple(out_slots), {}))
            elif node.input_structure == "args":
                steps.append((PositionalStep(node), in_slots, False, tuple(out_slots),
                              dict(node.call_kwargs)))
            else:
                steps.append((node.layer, in_slots, node.input_structure == "single",
                              tuple(out_slots), dict(node.call_kwargs)))
        self._steps = steps
        self._num_slots = len(slots)
        self._output_slots = [slots[id(t)] for t in self.outputs]
        self._loss_slots = [slots[id(t)] for t in losses]
        self._input_ranks = tuple(len(t.shape) for t in self.inputs)
        # Keras 3 casts each input to its Input's dtype: integer tensors (uint8 MNIST batches
        # from a tf.data pipeline) fed to a float Input become floats
        self._float_inputs = tuple(torch_dtype(t.dtype) if str(t.dtype).startswith(
            ("float", "bfloat")) else None for t in self.inputs)
        self.creates_mask = any(getattr(l, "creates_mask", False) for l in operations)
        self.built = True

    @property
    def layers(self):
        return list(self._graph_layers)

    @property
    def operations(self):
        """Layers and op nodes of the graph, in Keras's order (``summary`` lists these)."""
        return list(self._operations)

    def _io(self, tensors, what):
        if not tensors:
            raise ValueError(f"Model '{self.name}' is not built yet, so it has no {what}.")
        return tensors[0] if len(tensors) == 1 else list(tensors)

    @property
    def input(self):
        return self._io(self.inputs, "input")

    @property
    def output(self):
        return self._io(self.outputs, "output")

    #: set once a pass without autograd needed it (a layer calls K.gradients): see ``call``.
    _records_autograd = False

    def call(self, inputs):
        if self._records_autograd and not torch.is_grad_enabled():
            from kaffe import backend_graph
            return backend_graph.run_recording_autograd(self._run_graph, inputs)
        try:
            return self._run_graph(inputs)
        except LayerCallError as error:
            from kaffe import backend_graph
            if not backend_graph.needs_recorded_autograd(error):
                raise
            # A layer differentiates inside the pass (Keras 2's K.gradients in a Lambda) but
            # this pass records no autograd (evaluate/predict): run it again recording it.
            self._records_autograd = True
            return backend_graph.run_recording_autograd(self._run_graph, inputs)

    def _run_graph(self, inputs):
        values = [None] * self._num_slots
        values[:len(self.inputs)] = self._flatten_inputs(inputs)
        # Masks ride along in their own slots, only in graphs where some layer makes one.
        masks = [None] * self._num_slots if self.creates_mask else None
        layer = None
        try:
            for layer, in_slots, single, out_slots, kwargs in self._steps:
                args = values[in_slots[0]] if single else [values[s] for s in in_slots]
                if masks is None:
                    result = layer(args, **kwargs)
                else:
                    mask = masks[in_slots[0]] if single else [masks[s] for s in in_slots]
                    result, out_mask = call_with_mask(layer, args, mask, kwargs)
                    for slot in out_slots:
                        masks[slot] = out_mask
                if len(out_slots) == 1:
                    values[out_slots[0]] = result
                else:
                    for slot, tensor in zip(out_slots, result):
                        values[slot] = tensor
        except (LayerCallError, torch.OutOfMemoryError):  # OOM keeps its type
            raise
        except (RuntimeError, ValueError, IndexError) as error:
            raise _call_error(layer, args, error) from error
        if self._loss_slots or self._loss_functions:
            self._collect_losses(values)
        outputs = [values[s] for s in self._output_slots]
        return outputs[0] if len(outputs) == 1 else outputs

    # ------------------------------------------------------------------ added losses
    _loss_functions = ()

    def add_loss(self, loss):
        """Add to the training loss: a symbolic tensor computed from the model's inputs (Keras
        2's functional ``model.add_loss(kl_loss)``: computed on every forward pass from then
        on), a zero-argument callable (evaluated on every forward pass) or a tensor (Keras 3's
        ``self.add_loss`` inside ``call``). Non-scalar losses are summed, as Keras 3 does."""
        items = list(loss) if isinstance(loss, (list, tuple)) else [loss]
        symbolic = [t for t in items if isinstance(t, KerasTensor)]
        if symbolic:
            self._symbolic_losses = list(getattr(self, "_symbolic_losses", ())) + symbolic
            self._init_graph(self._input_structure, self._output_structure)
        for item in items:
            if isinstance(item, KerasTensor):
                continue
            if callable(item) and not hasattr(item, "shape"):
                self._loss_functions = tuple(self._loss_functions) + (item,)
            else:
                Model.add_loss(self, item)

    @property
    def _adds_losses(self):
        """Whether each forward pass adds losses (the trainer collects them)."""
        return bool(self._loss_slots or self._loss_functions)

    def _collect_losses(self, values):
        self._added_losses.clear()
        for slot in self._loss_slots:
            value = values[slot]
            self._added_losses.append(value if value.dim() == 0 else value.sum())
        for function in self._loss_functions:
            value = function()
            self._added_losses.append(value if value.dim() == 0 else value.sum())

    def _raw_input_dtypes(self, inputs):
        """``model(np_array)`` converts each array to its ``Input``'s dtype, as Keras 3 does."""
        if not self.inputs:
            return getattr(self, "input_dtype", "float32")
        dtypes = [t.dtype for t in self.inputs]
        return dict(zip(self.input_names, dtypes)) if isinstance(inputs, dict) else dtypes

    def _flatten_inputs(self, inputs):
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ValueError(f"Model '{self.name}' inputs {missing} are missing from the dict "
                                 f"of inputs (keys received: {sorted(inputs)}).")
            flat = [inputs[n] for n in self.input_names]
        else:
            flat = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(flat) != len(self.inputs):
            raise ValueError(f"Model '{self.name}' expects {len(self.inputs)} input(s) "
                             f"{self.input_names}, received {len(flat)}.")
        for i, (x, dtype) in enumerate(zip(flat, self._float_inputs)):
            if dtype is not None and type(x) is torch.Tensor and not x.is_floating_point():
                flat[i] = x.to(dtype)
        # One rank compare per input (the data of fit/evaluate/predict is adjusted up front).
        ranks = self._input_ranks
        if len(flat) == 1:
            return flat if getattr(flat[0], "ndim", None) == ranks[0] else \
                self._adjust_input_ranks(flat)
        for x, rank in zip(flat, ranks):
            if getattr(x, "ndim", rank) != rank:
                return self._adjust_input_ranks(flat)
        return flat

    def _adjust_input_ranks(self, flat):
        """Keras 3's input rank adjustment: an input missing a trailing axis of size 1 gets it,
        one with an extra trailing axis of size 1 loses it (``(N, 28, 28)`` arrays for
        ``Input((28, 28, 1))``). Other ranks pass as they are (the shape check names them)."""
        return [_adjusted_rank(x, tensor.shape) for x, tensor in zip(flat, self.inputs)]

    # Arrays are adjusted once when fit/evaluate/predict set up their data, so the batches
    # already have the expected ranks; generator batches are adjusted as they are converted.
    def _make_data(self, x, *args, **kwargs):
        data = Model._make_data(self, x, *args, **kwargs)
        xs = getattr(data, "xs", None)
        if xs is not None and len(xs) == len(self.inputs):
            xs[:] = self._adjust_input_ranks(xs)
        return data

    def _convert_batch(self, batch):
        xs, ys, sws = Model._convert_batch(self, batch)
        if len(xs) == len(self.inputs):
            xs = self._adjust_input_ranks(xs)
        return xs, ys, sws

    def compute_output_shape(self, input_shape):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def get_config(self):
        from kaffe.saving.serialization import functional_config
        return functional_config(self)


def _as_tensor_list(structure, what):
    if isinstance(structure, dict):
        structure = list(structure.values())
    flat = flatten(structure)
    for t in flat:
        if not isinstance(t, KerasTensor):
            raise TypeError(f"Model {what} must be symbolic tensors from Input() or from calling "
                            f"layers on them. Received: {type(t).__name__}")
    return flat


def _adjusted_rank(x, expected_shape):
    rank, expected = getattr(x, "ndim", None), len(expected_shape)
    if rank == expected + 1 and x.shape[-1] == 1:
        return x.squeeze(-1)
    if rank == expected - 1 and expected_shape[-1] == 1:
        return x.unsqueeze(-1) if isinstance(x, torch.Tensor) else x[..., None]
    return x


def call_with_mask(layer, args, mask, kwargs):
    """Call ``layer`` passing ``mask`` when it takes one; return its output and output mask."""
    if isinstance(mask, list) and all(m is None for m in mask):
        mask = None
    if mask is not None and layer._call_takes_mask:
        result = layer(args, mask=mask, **kwargs)
    else:
        result = layer(args, **kwargs)
    return result, layer.compute_mask(args, mask)


def _call_error(layer, args, error):
    shapes = ([tuple(a.shape) for a in args] if isinstance(args, list)
              else tuple(getattr(args, "shape", ())))
    expected = getattr(layer, "_build_input_shape", None)
    return LayerCallError(
        f"Layer '{layer.name}' ({type(layer).__name__}) failed on input shape {shapes}"
        + (f" (it was built for {expected})" if expected is not None else "") + f": {error}")


class PositionalStep:
    """What the functional runner calls for a node recorded from ``layer(a, b, c)`` or
    ``layer(a, targets=b)`` with several KerasTensors: puts the node's input values back into
    those arguments. Only such nodes pay for it; single-input steps call the layer directly."""
    _call_takes_mask = False

    def __init__(self, node):
        self.layer = node.layer
        self.name = node.layer.name
        self.template = node.args_template
        self._build_input_shape = getattr(node.layer, "_build_input_shape", None)

    def __call__(self, values, **kwargs):
        args, tensor_kwargs = fill(self.template, values)
        return self.layer(*args, **tensor_kwargs, **kwargs)

    @staticmethod
    def compute_mask(inputs, mask=None):
        return None
