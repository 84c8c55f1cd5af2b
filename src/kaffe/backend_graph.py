"""Keras 2's graph-level backend functions: ``K.function``, ``K.gradients``, ``K.placeholder``
and the learning phase, on kaffe's functional graph of ``KerasTensor``s.

TensorFlow 1 compiled a graph and fed it through a session; kaffe has no sessions: the graph is
a functional ``Model`` from the given inputs to the given outputs, run eagerly by torch when the
function is called. ``K.gradients(loss, x)`` adds a gradient node to that graph: run, it asks
autograd for ``d sum(loss) / d x`` (``create_graph=True``, so further ops and second gradients
work), which is what ``tf.gradients`` returns.
"""
import numpy as np
import torch

from kaffe.engine.keras_tensor import KerasTensor, flatten
from kaffe.engine.layer import Layer

_LEARNING_PHASE = {"value": None}


class LearningPhase:
    """The value ``K.learning_phase()`` returns while no phase is set: put it in the inputs
    of ``K.function`` and feed 0 (test) or 1 (train) for it."""

    shape = ()
    dtype = "bool"
    name = "keras_learning_phase"

    def __repr__(self):
        return "<kaffe learning phase (feed 0 or 1 in K.function)>"


LEARNING_PHASE = LearningPhase()


def learning_phase():
    """The phase set with ``set_learning_phase`` (0 or 1), else the feedable marker."""
    value = _LEARNING_PHASE["value"]
    return LEARNING_PHASE if value is None else value


def set_learning_phase(value):
    """Fix the phase (0: test, 1: train) that ``K.function`` runs layers in when it is not fed."""
    if value not in (0, 1, False, True):
        raise ValueError(f"set_learning_phase expects 0 or 1. Received: value={value!r}")
    _LEARNING_PHASE["value"] = int(value)


def placeholder(shape=None, ndim=None, dtype=None, sparse=False, name=None):
    """A symbolic input (``Input(batch_shape=shape)``): ``shape`` includes the batch axis,
    ``None`` for unknown sizes; ``ndim`` alone gives every axis unknown."""
    from kaffe.engine.input_layer import Input
    if shape is None:
        if ndim is None:
            raise ValueError("placeholder needs shape= or ndim=.")
        shape = (None,) * int(ndim)
    if len(shape) == 0:
        raise ValueError("placeholder(shape=()) has no batch axis; kaffe's symbolic inputs "
                         "start with one: use shape=(None,) or a tensor instead.")
    return Input(batch_shape=tuple(shape), dtype=dtype, name=name)


def is_placeholder(x):
    return isinstance(x, KerasTensor) and x.node.is_input


def is_keras_tensor(x):
    return isinstance(x, KerasTensor)


# -- gradients ----------------------------------------------------------------------------------

class NoAutogradHistory(RuntimeError):
    """``K.gradients`` was asked inside a pass that records no autograd history (evaluate and
    predict run without it). The functional runner catches it and runs the pass again with
    history recorded (``run_recording_autograd``): TensorFlow 1 built the gradient as graph
    ops, so Keras 2 programs use it in test passes too (mnist_swwae.py's ``getwhere``)."""


def needs_recorded_autograd(error):
    """Whether ``error`` (or an error it was raised from) is a ``NoAutogradHistory``."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, NoAutogradHistory):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def run_recording_autograd(run, inputs):
    """``run(inputs)`` with autograd recording (outside inference mode too), float inputs made
    differentiable so gradients against any value of the pass exist; outputs come back
    detached, as the no-grad pass would have given them."""
    def prepare(t):
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            return t.detach().clone().requires_grad_(True)
        return t.clone() if isinstance(t, torch.Tensor) and t.is_inference() else t

    with torch.inference_mode(False), torch.enable_grad():
        outputs = run(_map_tensors(prepare, inputs))
    return _map_tensors(lambda t: t.detach() if isinstance(t, torch.Tensor) else t, outputs)


def _map_tensors(fn, value):
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(fn, v) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(fn, v) for k, v in value.items()}
    return fn(value)


def _check_history(loss, sources):
    """Raise ``NoAutogradHistory`` when ``loss`` was computed without recording autograd."""
    if loss.requires_grad:
        return
    shapes = [tuple(s.shape) for s in sources]
    if not torch.is_grad_enabled() or torch.is_inference_mode_enabled():
        raise NoAutogradHistory(
            f"K.gradients: the loss (shape {tuple(loss.shape)}) was computed without gradient "
            f"recording (torch.no_grad / inference mode), so it has no history back to the "
            f"tensors of shape {shapes}.")
    raise RuntimeError(f"K.gradients: the loss (shape {tuple(loss.shape)}) does not depend on "
                       f"anything that requires gradients (sources of shape {shapes}).")


class Gradient(Layer):
    """``d sum(loss) / d source`` (inputs ``[loss, source]``), a node of the graph."""

    def call(self, inputs):
        loss, source = inputs
        if isinstance(loss, torch.Tensor) and not torch.is_grad_enabled():
            _check_history(loss, [source])
        if not (isinstance(source, torch.Tensor) and source.requires_grad):
            raise RuntimeError(
                f"K.gradients: the tensor differentiated against (shape {tuple(source.shape)}) "
                "does not require gradients; run the graph through K.function (which makes "
                "float inputs differentiable) or differentiate against a float input.")
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(loss.sum(), source, create_graph=True,
                                          allow_unused=True)
        return torch.zeros_like(source) if grad is None else grad

    def compute_output_shape(self, input_shape):
        return input_shape[1]


class WeightGradient(Layer):
    """``d sum(loss) / d weight`` for a weight tensor (a node with the loss as its input)."""

    def __init__(self, weight, **kwargs):
        super().__init__(**kwargs)
        self._weight = [weight]  # a list: not registered as this layer's own parameter

    def call(self, loss):
        weight = self._weight[0]
        _check_history(loss, [weight])
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(loss.sum(), weight, create_graph=True,
                                          allow_unused=True)
        return torch.zeros_like(weight) if grad is None else grad

    def compute_output_shape(self, input_shape):
        return tuple(self._weight[0].shape)


def gradients(loss, variables):
    """The gradients of ``loss`` (summed) with respect to each of ``variables``, a list.

    Symbolic ``loss`` (a KerasTensor): one gradient node per variable (a KerasTensor input or
    intermediate, or a weight tensor), evaluated by ``K.function``. Eager ``loss`` (a tensor):
    ``torch.autograd.grad`` at once (``None`` for variables it does not depend on); inside a
    pass without autograd history (a Lambda during evaluate/predict) it raises
    ``NoAutogradHistory``, on which the functional runner repeats the pass recording history.
    """
    single = not isinstance(variables, (list, tuple))
    variables = [variables] if single else list(variables)
    if isinstance(loss, KerasTensor):
        out = []
        for v in variables:
            if isinstance(v, KerasTensor):
                out.append(Gradient(name=None)([loss, v]))
            elif isinstance(v, torch.Tensor):
                out.append(WeightGradient(v)(loss))
            else:
                raise TypeError(f"K.gradients: cannot differentiate against {type(v).__name__}; "
                                "expected a KerasTensor or a weight tensor.")
        return out
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"K.gradients expects a tensor or KerasTensor loss, received "
                        f"{type(loss).__name__}.")
    _check_history(loss, variables)
    with torch.enable_grad():
        grads = torch.autograd.grad(loss.sum(), variables, create_graph=True, allow_unused=True)
    return list(grads)


# -- functions ----------------------------------------------------------------------------------

class Function:
    """``K.function(inputs, outputs)``: call it with a list of arrays, one per input (feed 0/1
    for a ``K.learning_phase()`` input), to get a list of NumPy arrays, one per output."""

    def __init__(self, inputs, outputs, updates=None, name=None):
        from kaffe.engine.functional import Functional
        if updates:
            raise ValueError("K.function(updates=...) is TensorFlow 1's way to change variables "
                             "inside a session run; kaffe has no sessions: train with fit(), a "
                             "custom train_step, or an optimizer's apply_gradients.")
        self.single_output = not isinstance(outputs, (list, tuple))
        self.inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        self.outputs = [outputs] if self.single_output else list(outputs)
        self.phase_index = next((i for i, t in enumerate(self.inputs)
                                 if isinstance(t, LearningPhase)), None)
        graph_inputs = [t for t in self.inputs if not isinstance(t, LearningPhase)]
        for t in graph_inputs + flatten(self.outputs):
            if not isinstance(t, KerasTensor):
                raise TypeError(f"K.function inputs and outputs must be symbolic tensors "
                                f"(model.input, layer.output, K.placeholder(...)); received "
                                f"{type(t).__name__}.")
        self.model = Functional(graph_inputs, self.outputs, name=name or "k_function")
        self.needs_grad = any(isinstance(layer, (Gradient, WeightGradient))
                              for layer in self.model.layers)

    def __call__(self, values):
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if len(values) != len(self.inputs):
            raise ValueError(f"This K.function takes {len(self.inputs)} input(s), received "
                             f"{len(values)}.")
        phase = _LEARNING_PHASE["value"] or 0
        if self.phase_index is not None:
            phase = int(np.asarray(values.pop(self.phase_index)).reshape(()))
        tensors = [_as_input(v, t, self.needs_grad)
                   for v, t in zip(values, self.model.inputs)]
        self.model.train(bool(phase))
        try:
            with torch.set_grad_enabled(self.needs_grad):
                out = self.model(tensors if len(tensors) != 1 else tensors[0])
        finally:
            self.model.train(False)
        out = [out] if len(self.outputs) == 1 else list(out)
        arrays = [o.detach().cpu().numpy() if isinstance(o, torch.Tensor) else np.asarray(o)
                  for o in out]
        return arrays[0] if self.single_output else arrays


def function(inputs, outputs, updates=None, name=None, **kwargs):
    """Keras 2's ``K.function``; see ``Function``."""
    return Function(inputs, outputs, updates=updates, name=name)


def _as_input(value, tensor, differentiable):
    from kaffe.training.data_adapters import as_tensor
    from kaffe.engine.device import default_device
    dtype = "int64" if str(tensor.dtype).startswith(("int", "uint")) else "float32"
    out = as_tensor(value, dtype)
    out = out.to(default_device())
    if differentiable and out.is_floating_point():
        out = out.detach().clone().requires_grad_(True)
    return out
