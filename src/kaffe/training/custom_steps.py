"""Keras 3's customisation points of ``fit`` / ``evaluate`` / ``predict`` (torch backend).

A ``Model`` subclass may override ``train_step(data)``, ``test_step(data)``,
``predict_step(data)``, ``compute_loss(x, y, y_pred, sample_weight, training)`` or
``compute_metrics(x, y, y_pred, sample_weight)``; the loops then call them once per batch with
``data`` packed as Keras packs it: ``x`` alone, ``(x, y)`` or ``(x, y, sample_weight)``. The
contract is Keras 3's torch backend (``keras/src/backend/torch/trainer.py``):

- ``self.zero_grad()``, ``y_pred = self(x, training=True)``,
  ``loss = self.compute_loss(y=y, y_pred=y_pred)``, ``loss.backward()``,
  ``self.optimizer.apply([v.value.grad for v in self.trainable_weights], self.trainable_weights)``
  (``v.value`` is the parameter itself; see ``kaffe.training.variables``);
- ``self.metrics`` lists the loss tracker ``loss``, the compiled metrics, and ``Metric``
  objects held as attributes of the model (or what an overriding ``metrics`` property returns);
  the loops reset them at each epoch start;
- the step returns a dict of logs (tensors or numbers; a nested dict is flattened). At an epoch
  end, when its keys are those of ``get_metrics_result()``, the metrics' results are logged,
  else the last step's dict, as Keras does.

tf.keras 2's spellings inside a ``train_step`` work too: ``self.compiled_loss(y, y_pred,
regularization_losses=self.losses)`` (updates the ``loss`` tracker) and
``self.compiled_metrics.update_state(y, y_pred)``; with ``tf.GradientTape`` from kaffe's
``tensorflow`` stand-in for the gradients.
"""
import inspect

import torch

from kaffe.metrics import Metric

#: the methods whose override makes the loops call the Keras-contract steps.
TRAIN_HOOKS = ("train_step", "compute_loss", "compute_metrics")
TEST_HOOKS = ("test_step", "compute_loss", "compute_metrics")


def unpack_x_y_sample_weight(data):
    """``(x, y, sample_weight)`` from ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError("Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
                     f"`(x, y, sample_weight)`, found a tuple of {len(data)} items.")


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """What a step receives: ``x`` (or ``(x,)`` when ``x`` is a list), ``(x, y)``, ``(x, y, sw)``."""
    if y is None:
        return (x,) if isinstance(x, (list, tuple)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def pythonify_logs(logs):
    """A step's logs as a flat dict of Python floats (nested dicts are merged in; values that
    are not numbers are kept as they are)."""
    result = {}
    for key, value in (logs or {}).items():
        if isinstance(value, dict):
            result.update(pythonify_logs(value))
            continue
        if isinstance(value, torch.Tensor):
            value = value.detach()
            value = value.item() if value.numel() == 1 else value.cpu().numpy()
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        result[key] = value
    return result


def overrides(model, names):
    """The names in ``names`` that ``type(model)`` overrides (methods defined below StepAPI)."""
    return [n for n in names if getattr(type(model), n) is not getattr(StepAPI, n)]


def _first_batch_size(x):
    for item in _flat(x):
        if isinstance(item, torch.Tensor) and item.dim() > 0:
            return item.shape[0]
    return 1


def _flat(structure):
    if isinstance(structure, dict):
        return [t for v in structure.values() for t in _flat(v)]
    if isinstance(structure, (list, tuple)):
        return [t for v in structure for t in _flat(v)]
    return [structure]


class StepAPI:
    """Mixed into ``Trainer``: Keras 3's step methods and what they use."""

    # -- the steps ------------------------------------------------------------------------------
    def train_step(self, data):
        """One update on ``data`` (Keras 3's torch ``train_step``); returns the logs dict."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=True)
        self.zero_grad()
        loss = self._compute_loss(x, y, y_pred, sample_weight, training=True)
        self._loss_tracker.update_state(loss, sample_weight=_first_batch_size(x))
        trainable = self.trainable_weights
        if trainable:
            loss.backward()
            with torch.no_grad():
                self.optimizer.apply([v.grad for v in trainable], trainable)
            for layer in self._constrained:
                layer.apply_constraints()
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data):
        """Loss and metrics on ``data``, no update; returns the logs dict."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        loss = self._compute_loss(x, y, y_pred, sample_weight, training=False)
        self._loss_tracker.update_state(loss, sample_weight=_first_batch_size(x))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def predict_step(self, data):
        """The model's output on ``data``'s ``x``."""
        x, _, _ = unpack_x_y_sample_weight(data)
        return self(x, training=False)

    # -- what the steps use ---------------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss(es) of ``y`` against ``y_pred`` plus the model's added losses
        (``self.losses``: ``add_loss`` and regularizers), as one scalar tensor."""
        self._ensure_compile_state()
        terms = []
        compiled = self._compiled_loss
        if any(loss is not None for loss in compiled.losses):
            ys = self._output_list(y, "y")
            preds = self._output_list(y_pred, "y_pred")
            sws = None if sample_weight is None else self._output_list(sample_weight, "sample_weight")
            total, _ = compiled(compiled.prepare_targets(ys), preds, sws)
            terms.append(total)
        for extra in self.losses:
            extra = torch.as_tensor(extra)
            terms.append(extra.float().sum() if not extra.is_floating_point() else extra.sum())
        if not terms:
            raise ValueError(f"No loss to compute for model '{self.name}': pass a `loss` to "
                             "compile(), add one with add_loss(), or override compute_loss / "
                             "train_step.")
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def _compute_loss(self, x, y, y_pred, sample_weight, training):
        """``compute_loss``, passing ``training`` only to overrides that take it (Keras 3.3+)."""
        if "training" in inspect.signature(self.compute_loss).parameters:
            return self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                     training=training)
        return self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics and return ``get_metrics_result()``."""
        self._ensure_compile_state()
        if y is not None and self._compiled_metrics.entries:
            self._compiled_metrics.update(
                self._output_list(y, "y"), [p.detach() for p in self._output_list(y_pred, "y_pred")],
                None if sample_weight is None else self._output_list(sample_weight, "sample_weight"))
        return self.get_metrics_result()

    def get_metrics_result(self):
        """``{metric.name: metric.result()}`` over ``self.metrics`` (tensors: no host sync)."""
        results = {}
        for metric in self.metrics:
            value = metric.result()
            if isinstance(value, dict):
                results.update(value)
            else:
                results[metric.name] = value
        return results

    @property
    def _loss_tracker(self):
        self._ensure_compile_state()
        return self._compiled_loss.total_tracker

    def _attribute_metrics(self):
        """``Metric`` objects held as attributes (Keras 3 tracks them into ``model.metrics``)."""
        return [v for k, v in vars(self).items() if isinstance(v, Metric) and not k.startswith("_")]

    # -- tf.keras 2 spellings used in train_step ------------------------------------------------
    @property
    def compiled_loss(self):
        """tf.keras 2's ``self.compiled_loss(y, y_pred, sample_weight, regularization_losses)``."""
        return _CompiledLossView(self)

    @property
    def compiled_metrics(self):
        """tf.keras 2's ``self.compiled_metrics.update_state(y, y_pred, sample_weight)``."""
        return _CompiledMetricsView(self)

    @property
    def trainable_variables(self):
        return self.trainable_weights

    @property
    def non_trainable_variables(self):
        return self.non_trainable_weights

    @property
    def variables(self):
        return self.weights

    def _output_list(self, value, what):
        """``y`` / ``y_pred`` / ``sample_weight`` as a list in output order."""
        if isinstance(value, dict):
            names = self.output_names
            missing = [n for n in names if n not in value]
            if missing:
                raise ValueError(f"Model '{self.name}': {what} is a dict with keys "
                                 f"{sorted(value)}, but the outputs are named {names}.")
            return [value[n] for n in names]
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value]


class _CompiledLossView:
    def __init__(self, model):
        self.model = model

    def __call__(self, y_true, y_pred, sample_weight=None, regularization_losses=None):
        model = self.model
        model._ensure_compile_state()
        compiled = model._compiled_loss
        ys = compiled.prepare_targets(model._output_list(y_true, "y"))
        preds = model._output_list(y_pred, "y_pred")
        sws = None if sample_weight is None else model._output_list(sample_weight, "sample_weight")
        total, per_output = compiled(ys, preds, sws)
        for extra in regularization_losses or ():
            total = total + torch.as_tensor(extra).sum()
        if not isinstance(total, torch.Tensor):
            raise ValueError(f"Model '{model.name}' was compiled without a loss, so "
                             "self.compiled_loss has nothing to compute; pass loss= to compile().")
        compiled.update_trackers(total, per_output, _first_batch_size(preds))
        return total

    @property
    def metrics(self):
        return self.model._compiled_loss.all_trackers()


class _CompiledMetricsView:
    def __init__(self, model):
        self.model = model

    def update_state(self, y_true, y_pred, sample_weight=None):
        model = self.model
        model._ensure_compile_state()
        sws = None if sample_weight is None else model._output_list(sample_weight, "sample_weight")
        model._compiled_metrics.update(model._output_list(y_true, "y"),
                                       [p.detach() for p in model._output_list(y_pred, "y_pred")],
                                       sws)

    def reset_state(self):
        for metric in self.metrics:
            metric.reset_state()

    @property
    def metrics(self):
        self.model._ensure_compile_state()
        return self.model._compiled_metrics.metrics()
