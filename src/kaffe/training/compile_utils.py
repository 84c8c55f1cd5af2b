"""What ``compile`` builds: one loss per output with its weight, metrics per output, and the
on-device running means the loops report. Names follow Keras: ``loss``, ``<output>_loss``,
``<metric>`` or ``<output>_<metric>``."""
import contextlib
import copy
import warnings

import torch
import torch.nn.functional as F

from kaffe import activations
from kaffe import losses as losses_module
from kaffe import metrics as metrics_module


class RunningMean:
    """A sample-weighted running mean: the sum lives on the device (no host sync until
    ``result``), the weight total is a Python number (batch sizes are known on the host)."""

    def __init__(self, name):
        self.name = name
        self.total = None
        self.count = 0.0
        self.used = False  # ever updated (a model compiled without loss lists it only then)

    def update(self, value, weight):
        if self.total is None:
            self.total = torch.zeros((), dtype=torch.float32, device=value.device)
        self.total.add_(value.detach(), alpha=weight)
        self.count += weight
        self.used = True

    def update_state(self, values, sample_weight=None):
        """Keras's ``Mean.update_state``: the mean of ``values`` counted ``sample_weight`` times
        (a number: custom ``train_step``s pass the batch size; default 1)."""
        values = torch.as_tensor(values).detach().float()
        weight = 1.0 if sample_weight is None else sample_weight
        if isinstance(weight, torch.Tensor):
            weight = float(weight.sum()) if weight.dim() else float(weight)
        self.update(values.mean() if values.dim() else values, float(weight))

    def result(self):
        if self.total is None:
            return torch.tensor(0.0)
        return self.total / max(self.count, 1e-12)

    def reset_state(self):
        if self.total is not None:
            self.total.zero_()
        self.count = 0.0


def _per_output(value, output_names, what, default=None):
    """A single value, a list or a dict keyed by output name → a list, one per output."""
    n = len(output_names)
    if isinstance(value, dict):
        unknown = [k for k in value if k not in output_names]
        if unknown:
            raise ValueError(f"compile({what}=...) has keys {unknown} that are not outputs of the "
                             f"model; outputs are {output_names}.")
        return [value.get(name, default) for name in output_names]
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"compile({what}=...) got a list of {len(value)} entries but the model "
                             f"has {n} output(s) {output_names}.")
        return list(value)
    return [value] * n


class CompiledLoss:
    """Total loss = sum over outputs of ``loss_weight * loss(y_true, y_pred, sample_weight)``."""

    def __init__(self, loss, loss_weights, output_names):
        self.output_names = output_names
        self.losses = [None if l is None else losses_module.get_loss_object(l)
                       for l in _per_output(loss, output_names, "loss")]
        weights = _per_output(loss_weights if loss_weights is not None else 1.0,
                              output_names, "loss_weights", default=1.0)
        self.weights = [float(w) for w in weights]
        self.sparse = [losses_module.loss_kind(l) == "sparse" if l is not None else False
                       for l in self.losses]
        # per-output "<name>_loss" logs when more than one output has a loss (as Keras 3)
        multi = sum(l is not None for l in self.losses) > 1
        self.trackers = [RunningMean(f"{name}_loss") if (multi and l is not None) else None
                         for name, l in zip(output_names, self.losses)]
        self.total_tracker = RunningMean("loss")

    def prepare_targets(self, ys):
        """Cast targets to what each loss wants: integer labels for sparse losses, float otherwise."""
        out = []
        for y, sparse in zip(ys, self.sparse):
            if y is None:
                out.append(None)
            elif sparse:
                out.append(y if not y.is_floating_point() else y.long())
            else:
                out.append(y if y.is_floating_point() else y.float())
        return out

    def __call__(self, ys, preds, sws):
        """``(total, per-output values)``; ``total`` is 0.0 when no output has a loss. A weight
        of 1 and a first term add no tensor ops (one output: the loss itself)."""
        total, per_output = None, []
        for i, (loss, weight) in enumerate(zip(self.losses, self.weights)):
            if loss is None:
                per_output.append(None)
                continue
            sw = sws[i] if sws is not None else None
            value = loss(ys[i], preds[i], sample_weight=sw)
            per_output.append(value)
            term = value if weight == 1.0 else weight * value
            total = term if total is None else total + term
        return (0.0 if total is None else total), per_output

    def update_trackers(self, total, per_output, batch_size):
        self.total_tracker.update(total, batch_size)
        for tracker, value in zip(self.trackers, per_output):
            if tracker is not None and value is not None:
                tracker.update(value, batch_size)

    def all_trackers(self):
        """The ``loss`` tracker (when there is a compiled loss, or a custom step has fed it, as
        tf.keras 2 lists it), then the per-output ones."""
        listed = self.total_tracker.used or any(l is not None for l in self.losses)
        return ([self.total_tracker] if listed else []) + [t for t in self.trackers
                                                           if t is not None]


# A probability-space cross-entropy, the output activation whose logits it can take instead,
# and the kind of fused torch loss that computes it in one op.
_FOLDABLE = {losses_module.categorical_crossentropy: (activations.softmax, "categorical"),
             losses_module.sparse_categorical_crossentropy: (activations.softmax, "sparse"),
             losses_module.binary_crossentropy: (torch.sigmoid, "binary")}


class LogitsCrossEntropy:
    """A cross-entropy computed from the logits of the output layer's softmax/sigmoid.

    Softmax followed by a clipped log costs several kernels forward and backward; from the
    logits it is one fused, more accurate torch op (Keras's TensorFlow backend makes the same
    substitution). Values differ from the clipped form only where a probability is below 1e-7.
    Weighted or unusual shapes go through the general loss object with ``from_logits=True``.
    """

    def __init__(self, loss, kind):
        self.name, self.kind = loss.name, kind
        self.general = copy.copy(loss)
        self.general.fn_kwargs = {**loss.fn_kwargs, "from_logits": True}
        self.plain_mean = loss.reduction == "sum_over_batch_size" and \
            loss.fn_kwargs.get("ignore_class") is None

    def __call__(self, y_true, logits, sample_weight=None):
        if sample_weight is None and self.plain_mean and logits.dim() == 2:
            if self.kind == "categorical" and y_true.shape == logits.shape:
                return F.cross_entropy(logits, y_true)
            if self.kind == "sparse" and y_true.numel() == logits.shape[0]:
                return F.cross_entropy(logits, y_true.reshape(-1).long())
            if self.kind == "binary" and y_true.shape == logits.shape:
                return F.binary_cross_entropy_with_logits(logits, y_true)
        return self.general(y_true, logits, sample_weight)


def logits_twin(loss):
    """``(LogitsCrossEntropy, activation)`` for a plain probability cross-entropy, else None."""
    if not isinstance(loss, losses_module.LossFunctionWrapper) or loss.fn not in _FOLDABLE:
        return None
    kwargs = loss.fn_kwargs
    if kwargs.get("from_logits") or kwargs.get("label_smoothing") or kwargs.get("axis", -1) != -1:
        return None
    activation, kind = _FOLDABLE[loss.fn]
    return LogitsCrossEntropy(loss, kind), activation


class CompiledMetrics:
    """Metrics per output; a flat list ``['accuracy']`` applies to every output (as Keras 2 did;
    Keras 3 refuses it for multi-output models, which breaks the seeds' scripts)."""

    def __init__(self, metrics, output_names, loss_objects, output_shapes):
        self.entries = []  # (output_index, metric)
        if not metrics:
            return
        per_output = (_per_output(metrics, output_names, "metrics", default=[])
                      if isinstance(metrics, dict) or _is_list_of_lists(metrics, len(output_names))
                      else [metrics] * len(output_names))
        multi = len(output_names) > 1
        for i, (name, wanted) in enumerate(zip(output_names, per_output)):
            for identifier in (wanted if isinstance(wanted, (list, tuple)) else [wanted]):
                if identifier is None:
                    continue
                metric = metrics_module.get(identifier, loss=loss_objects[i],
                                            output_shape=output_shapes[i])
                if multi:
                    metric.name = f"{name}_{metric.name}"
                self.entries.append((i, metric))

    def update(self, ys, preds, sws):
        for i, metric in self.entries:
            if ys[i] is not None:
                metric.update_state(aligned_target(ys[i], preds[i]), preds[i],
                                    None if sws is None else sws[i])

    def metrics(self):
        return [m for _, m in self.entries]


def aligned_target(y_true, y_pred):
    """Keras 2's rule before metrics: a 1-D target ``(N,)`` against a one-column output
    ``(N, 1)`` becomes ``(N, 1)``, so a metric function comparing them element-wise does not
    broadcast to ``(N, N)`` (a siamese net's hand-written accuracy read 0.50 instead of 0.84)."""
    if y_true.dim() == 1 and y_pred.dim() == 2 and y_pred.shape[-1] == 1:
        return y_true.unsqueeze(-1)
    return y_true


def _is_list_of_lists(metrics, n_outputs):
    return (isinstance(metrics, (list, tuple)) and len(metrics) == n_outputs and n_outputs > 1
            and all(isinstance(m, (list, tuple)) or m is None for m in metrics))


class TrainableAtCompile:
    """The weights a compiled model trains: those trainable when ``compile()`` ran (Keras 2's
    rule). The GAN pattern relies on it: ``discriminator.compile()``, then
    ``discriminator.trainable = False`` and ``combined.compile()``; the discriminator's own
    steps still update it, ``combined``'s update only the generator. A later ``trainable``
    change takes effect at the next ``compile()``. Layers whose training behaviour follows
    ``trainable`` (a frozen ``BatchNormalization`` normalises with its moving statistics, as in
    Keras 3) keep in this model's steps the behaviour they had at ``compile()`` too, so weights
    and modes stay one consistent state (Keras's documented contract: "the trainable attribute
    values at the time the model is compiled should be preserved ... until compile is called
    again")."""

    def __init__(self, model):
        self.params = list(model.parameters())
        self.flags = [p.requires_grad for p in self.params]
        self.modes = [(layer, layer.trainable) for layer in model.modules()
                      if getattr(layer, "mode_follows_trainable", False)]
        self.warned = False

    def current(self, model):
        """Whether the recorded parameters are still the model's (else record again)."""
        params = list(model.parameters())
        return len(params) == len(self.params) and all(
            a is b for a, b in zip(params, self.params))

    @contextlib.contextmanager
    def applied(self, model_name):
        """Within the block, exactly the compile-time trainable parameters require grad; the
        flags the user set are restored after. One pass over the flags when nothing changed."""
        changed = [(p, want) for p, want in zip(self.params, self.flags)
                   if p.requires_grad != want]
        modes = [(layer, want) for layer, want in self.modes if layer.trainable != want]
        if not changed and not modes:
            yield
            return
        if not self.warned:
            self.warned = True
            parts = [f"{len(changed)} weight(s)"] if changed else []
            if modes:  # layers whose training behaviour follows the flag (BatchNormalization)
                parts.append("layer(s) " + ", ".join(f"'{layer.name}'" for layer, _ in modes))
            what = " and ".join(parts)
            warnings.warn(
                f"The trainable state of {what} of model '{model_name}' changed since it was "
                "compiled; as in Keras 2 (and Keras's compile() contract), it keeps training "
                "what was trainable at compile() time. Call compile() again to apply the "
                "change.", stacklevel=4)
        for p, want in changed:
            p.requires_grad_(want)
        for layer, want in modes:
            layer._compiled_trainable = want
        try:
            yield
        finally:
            for p, want in changed:
                p.requires_grad_(not want)
            for layer, _ in modes:
                layer._compiled_trainable = None
