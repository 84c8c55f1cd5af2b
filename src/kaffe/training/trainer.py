"""``compile`` / ``fit`` / ``evaluate`` / ``predict``: the Keras training API on torch.

One train step (``_train_step``) does forward, loss, backward and the optimizer update; its
forward+loss half is a plain function that ``torch.compile`` (``jit_compile=True``) can wrap.
Metrics and losses accumulate on the device; Python reads them only at logging points (epoch
ends, or the progress bar's refresh interval), never once per batch unless a callback asks.
"""
import contextlib
import logging

import numpy as np
import torch

from kaffe import metrics as metrics_module
from kaffe import optimizers as optimizers_module
from kaffe.callbacks.base import History
from kaffe.engine.device import default_device
from kaffe.training import data_adapters as da
from kaffe.training import data_checks
from kaffe.training.callback_utils import BatchHooks, callback_list
from kaffe.training.compile_utils import (CompiledLoss, CompiledMetrics, TrainableAtCompile,
                                          logits_twin)
from kaffe.training import custom_steps
from kaffe.training.custom_steps import StepAPI
from kaffe.training import variables  # noqa: F401  (v.value / v.assign on weights)
from kaffe.training.legacy import LegacyGeneratorAPI
from kaffe import distribute as distribute_module  # after compile_utils, which it uses
from kaffe.training import precision
from kaffe.training.oom import explained as _explain_out_of_memory

log = logging.getLogger("kaffe")


class Trainer(StepAPI, LegacyGeneratorAPI):
    """Mixed into ``Model``: everything about training and inference loops."""

    def __init__(self):
        self.compiled = False
        self.optimizer = None
        self.stop_training = False
        self.history = None
        self._compile_args = None
        self._compiled_loss = None
        self._compiled_metrics = None
        self._forward_loss = None
        self._jit_compile = False
        self._logit_outputs = []
        self._outputs_needing_probabilities = set()
        self._custom = (frozenset(), frozenset())  # (train, test) hooks the class overrides
        self._device = None
        self._prepared_for = None
        self._loss_layers = []
        self._constrained = []
        self._distribution = None  # the DataParallel strategy of the running fit/evaluate
        self._amp = None  # (device type, dtype) for torch.autocast under a mixed policy
        self._grad_scaler = None  # float16 loss scaling
        self._memory_format_done = False
        self._trainable_at_compile = None  # TrainableAtCompile: what this model's steps train

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile=False, **kwargs):
        """Choose optimizer, loss(es), metrics and loss weights (names or objects, per output
        as a list or a dict keyed by output names, or one for all outputs).

        ``loss`` may be left out when the model adds its own losses (``add_loss``) or overrides
        ``train_step`` / ``compute_loss`` (Keras 3); training then fails at the first batch only
        if there is no loss at all."""
        for inert in ("sample_weight_mode", "target_tensors", "auto_scale_loss"):
            kwargs.pop(inert, None)
        if kwargs:
            raise TypeError(f"compile() got unexpected arguments {sorted(kwargs)}.")
        self.optimizer = optimizers_module.get(optimizer)
        _validate_losses(loss)
        self._compile_args = dict(loss=loss, metrics=metrics, loss_weights=loss_weights)
        # Keras-contract steps where the class overrides one, or where there is no compiled loss
        # (the loss then comes from add_loss): see kaffe.training.custom_steps.
        no_loss = loss is None or (isinstance(loss, (list, tuple, dict)) and not any(
            l is not None for l in (loss.values() if isinstance(loss, dict) else loss)))
        train = set(custom_steps.overrides(self, custom_steps.TRAIN_HOOKS))
        test = set(custom_steps.overrides(self, custom_steps.TEST_HOOKS))
        if no_loss:
            train.add("no loss")
            test.add("no loss")
        self._custom = (frozenset(train), frozenset(test))
        self._compiled_loss = self._compiled_metrics = None
        self._jit_compile = bool(jit_compile)
        self._forward_loss = None
        # Keras 2: the weights trainable now are the ones this model trains (unbuilt: at build)
        self._trainable_at_compile = TrainableAtCompile(self) if self.built else None
        self.compiled = True

    @property
    def loss(self):
        """The ``loss`` given to ``compile()`` (Keras's ``model.loss``); None before it."""
        return (self._compile_args or {}).get("loss")

    @loss.setter
    def loss(self, value):  # as in Keras, a record only: compile() decides what trains
        self._compile_args = {**(self._compile_args or {}), "loss": value}

    # Names for dicts keyed by input/output and for History keys: the layers that hold them.
    @property
    def output_names(self):
        outputs = getattr(self, "outputs", None)
        if outputs:
            return [t._keras_history[0].name for t in outputs]
        return ["output_1"]

    @property
    def input_names(self):
        inputs = getattr(self, "inputs", None)
        if inputs:
            return [t._keras_history[0].name for t in inputs]
        return list(self._x_keys) if self._x_keys else ["input_1"]

    #: the keys of the dict ``x`` last given to a model without symbolic inputs (a subclassed
    #: model): Keras 3 hands such a model its ``x`` as it came, so ``call`` gets that dict back.
    _x_keys = None

    def _note_x_structure(self, x):
        """Remember a dict ``x`` given to a subclassed model (see ``_model_input``)."""
        if not getattr(self, "inputs", None):
            self._x_keys = list(x) if isinstance(x, dict) else None

    def _model_input(self, xs):
        """The batch as the model's ``call`` takes it: one tensor, a list, or the dict of the
        keys ``x`` came with (subclassed models)."""
        if self._x_keys and len(xs) == len(self._x_keys):
            return dict(zip(self._x_keys, xs))
        return xs[0] if len(xs) == 1 else xs

    def _ensure_compile_state(self):
        if self._compiled_loss is not None:
            return
        names = self.output_names
        args = self._compile_args
        self._compiled_loss = CompiledLoss(args["loss"], args["loss_weights"], names)
        shapes = [t.shape for t in getattr(self, "outputs", [])] or [None] * len(names)
        self._compiled_metrics = CompiledMetrics(args["metrics"], names,
                                                 self._compiled_loss.losses, shapes)
        self._fold_output_activations()
        self._loss_layers = [layer for layer in self.modules() if _may_add_losses(layer)]
        self._constrained = [layer for layer in self.modules()
                             if any(spec.constraint is not None
                                    for spec in getattr(layer, "_weight_specs", ()))]

    def _fold_output_activations(self):
        """Where an output is a softmax/sigmoid layer feeding its cross-entropy, train on the
        layer's logits with the from-logits loss (see ``logits_twin``); metrics still see
        probabilities."""
        self._logit_outputs = []  # (output index, layer, activation)
        if self._custom[0] or self._custom[1]:
            return  # user code calls self(x) and sees the probabilities the loss must take
        for i, tensor in enumerate(getattr(self, "outputs", None) or []):
            loss = self._compiled_loss.losses[i]
            twin = logits_twin(loss) if loss is not None else None
            layer = tensor._keras_history[0]
            if twin is None or not hasattr(layer, "_emit_logits") or len(layer._inbound_nodes) != 1:
                continue
            twin_loss, activation = twin
            if getattr(layer, "activation", None) is activation:
                self._compiled_loss.losses[i] = twin_loss
                self._logit_outputs.append((i, layer, activation))
        # Softmax keeps the arg-max, so accuracy on logits equals accuracy on probabilities.
        self._outputs_needing_probabilities = {
            i for i, metric in self._compiled_metrics.entries
            if getattr(metric, "fn", None) not in _ARGMAX_METRICS}

    @property
    def metrics(self):
        """The loss trackers, the compiled metrics, then ``Metric`` attributes of the model."""
        found = [] if self._compiled_loss is None else (
            self._compiled_loss.all_trackers() + self._compiled_metrics.metrics())
        return found + self._attribute_metrics()

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        for m in self.metrics:
            m.reset_state()

    def _logs(self, prefix=""):
        """The one host sync: read every running metric as a Python float."""
        return {prefix + m.name: v for m, v in zip(self.metrics, self._metric_values())}

    def _metric_values(self):
        return torch.stack([torch.as_tensor(m.result(), dtype=torch.float32).reshape(()).cpu()
                            for m in self.metrics]).tolist()

    def _result_values(self, logs):
        """The list ``evaluate`` / ``*_on_batch`` return: one value per metric, as Keras does
        even where two share a name (two outputs of one nested model) and the dict kept one."""
        if len(logs) < len(self.metrics) and self._distribution is None:
            return self._metric_values()
        return list(logs.values())

    # ------------------------------------------------------------------ preparation
    def _require_compiled(self):
        if not self.compiled:
            raise RuntimeError(f"Model '{self.name}' must be compiled before training or "
                               "evaluation: call model.compile(optimizer=..., loss=...) first.")

    def _prepare(self, xs):
        """Build the model from the first batch if needed, check input shapes, place it on the
        device and build the optimizer: all before any long work starts. Repeated calls with
        the same input shapes (train_on_batch in a loop) return at once."""
        key = (tuple(tuple(x.shape[1:]) for x in xs), self.optimizer, self._compiled_loss)
        if key == self._prepared_for:
            return
        if not self.built:
            self._build_from_batch(xs)
        self._check_input_shapes(xs)
        if self._device is None:
            self._device = default_device()
        first = next(self.parameters(), None)
        if first is not None and first.device != self._device:
            self.to(self._device)
        if not self._memory_format_done and first is not None:
            self._memory_format_done = True
            precision.use_channels_last(self, self._device)
        if self.optimizer is not None and not getattr(self.optimizer, "built", True):
            params = list(self.parameters())
            # A model whose weights appear only in its own train_step (no call: keras.io's
            # ShiftViT runs its parts there) leaves the optimizer to build on the variables
            # its first apply_gradients names, as Keras 3's optimizers do.
            if params or type(self).train_step is Trainer.train_step:
                self.optimizer.build(params)
        if self.compiled:
            self._ensure_compile_state()
            recorded = getattr(self, "_trainable_at_compile", None)
            if recorded is None or not recorded.current(self):
                self._trainable_at_compile = TrainableAtCompile(self)
        self._prepared_for = (key[0], self.optimizer, self._compiled_loss)

    def _build_from_batch(self, xs):
        """Create the weights of a model not built yet by running it once on a batch (a model
        without ``call``, e.g. a GAN driving its parts from ``train_step``, has nothing to run)."""
        from kaffe.engine.layer import Layer
        if type(self).call is Layer.call:
            self.built = True
            return
        # Outside inference mode (predict runs in it): weights made now must stay trainable.
        with torch.inference_mode(False), torch.no_grad():
            self(self._model_input(xs))
        self.built = True

    def _check_input_shapes(self, xs):
        inputs = getattr(self, "inputs", None)
        if not inputs:
            return
        for i, (tensor, data) in enumerate(zip(inputs, xs)):
            expected, received = tensor.shape, tuple(data.shape)
            ok = len(expected) == len(received) and all(
                e is None or e == r for e, r in zip(expected[1:], received[1:]))
            if not ok:
                consumers = [l.name for l in self.layers
                             if any(tensor in node.inputs for node in l._inbound_nodes)]
                where = f"x[{i}]" if len(inputs) > 1 else "x"
                raise da.DataError(
                    f"Input '{tensor._keras_history[0].name}' of model '{self.name}' (feeding "
                    f"layer {', '.join(repr(c) for c in consumers) or '?'}) expects shape "
                    f"{expected}, received {received} (from array {where}).")

    def _input_dtypes(self):
        inputs = getattr(self, "inputs", None)
        if inputs:
            return [t.dtype if t.dtype in ("float32", "int64", "string") else "float32"
                    for t in inputs]
        return [getattr(self, "input_dtype", "float32")] * len(self.input_names)

    def _convert_batch(self, batch):
        """One batch from a generator/Sequence/loader → lists of tensors in model order."""
        x, y, sw = da.unpack_batch(batch)
        self._note_x_structure(x)
        xs = [np.asarray(a) if d == "string" else da.as_tensor(a, d) for a, d in zip(
            da.to_list(x, self.input_names, "inputs", self.name), self._input_dtypes())]
        ys = None if y is None else [None if a is None else da.as_tensor(a) for a in
                                     self._per_output_list(y)]
        sws = None if sw is None else [None if a is None else da.as_tensor(a, "float32") for a in
                                       self._per_output_list(sw)]
        return xs, ys, sws

    def _per_output_list(self, data):
        """Targets (or sample weights) in output order. As in Keras 3, a model compiled with no
        loss for some outputs (``loss=[fn, None]``: keras.io's miniature GPT also returns its
        embeddings) may be given arrays for the outputs that have a loss only; the others get
        None."""
        names = self.output_names
        try:
            return da.to_list(data, names, "outputs", self.name)
        except da.DataError:
            loss = (getattr(self, "_compile_args", None) or {}).get("loss")
            losses = loss if isinstance(loss, (list, tuple)) and len(loss) == len(names) else []
            with_loss = [i for i, loss in enumerate(losses) if loss is not None]
            if not 0 < len(with_loss) < len(names) or isinstance(data, dict):
                raise
            given = da.to_list(data, [names[i] for i in with_loss], "outputs with a loss",
                               self.name)
            spread = [None] * len(names)
            for i, array in zip(with_loss, given):
                spread[i] = array
            return spread

    def _make_data(self, x, y=None, sample_weight=None, class_weight=None, batch_size=None,
                   shuffle=False, steps=None):
        if da.is_iterable_source(x):
            if isinstance(x, torch.utils.data.Dataset) and not isinstance(x, torch.utils.data.IterableDataset):
                x = torch.utils.data.DataLoader(x, batch_size=batch_size or 32, shuffle=shuffle)
            return da.IterableData(x, steps, self._convert_batch, shuffle=shuffle)
        if x is None:
            raise da.DataError("No input data: pass x (arrays, a dict, a generator or a Sequence).")
        self._note_x_structure(x)
        xs = data_checks.to_tensors(da.to_list(x, self.input_names, "inputs", self.name),
                                    self.input_names, self._input_dtypes(), "input", self.name)
        ys = None if y is None else data_checks.to_tensors(
            self._per_output_list(y), self.output_names,
            [None] * len(self.output_names), "target for output", self.name)
        sws = None
        if sample_weight is not None:
            sws = [None if a is None else da.as_tensor(a, "float32") for a in
                   self._per_output_list(sample_weight)]
        if class_weight is not None and ys is not None:
            cw = [da.class_weights_to_sample_weights(t, class_weight) for t in ys]
            sws = cw if sws is None else [c if s is None else c * s for c, s in zip(cw, sws)]
        return da.ArrayData(xs, ys, sws, batch_size or 32, shuffle=shuffle)

    def _to_device(self, tensors):
        """The batch on the model's device (as it is when already there: no per-tensor call)."""
        if tensors is None:
            return None
        device = self._device
        if all(t is None or not isinstance(t, torch.Tensor) or t.device == device
               for t in tensors):
            return tensors
        return [t.to(device, non_blocking=True) if isinstance(t, torch.Tensor) else t
                for t in tensors]

    # ------------------------------------------------------------------ steps
    def _forward_loss_impl(self, xs, ys, sws):
        for layer in self._loss_layers:
            layer._added_losses.clear()
        if self._amp is None:
            preds = self(self._model_input(xs))
            preds = list(preds) if isinstance(preds, (list, tuple)) else [preds]
        else:  # mixed precision: low-precision forward, float32 outputs, losses and metrics
            with precision.autocast(self._amp):
                preds = self(self._model_input(xs))
            preds = [p.float() if p.is_floating_point() else p
                     for p in (preds if isinstance(preds, (list, tuple)) else [preds])]
        total, per_output = self._compiled_loss(ys, preds, sws)
        for layer in self._loss_layers:  # regularizers and add_loss: part of Keras's "loss"
            for penalty in layer._added_losses + layer._weight_penalties():
                total = total + penalty
        return total, per_output, preds

    def _get_forward_loss(self, probe=None):
        """The forward+loss callable of a training step: the plain method, inside DDP when
        training data-parallel (``probe``: a batch telling DDP whether some weights are
        unused), compiled when ``jit_compile``."""
        if self._forward_loss is None:
            fn = self._forward_loss_impl
            if self._distribution is not None:
                fn = self._distribution.wrap(self, probe)
            if self._jit_compile:
                fn = torch.compile(fn)
            # a bound method, not the module: the model must not own its DDP wrapper
            self._forward_loss = fn if self._distribution is None else fn.__call__
        return self._forward_loss

    def _use_distribution(self, strategy):
        """Switch the step between the plain and the data-parallel forward+loss."""
        if strategy is not self._distribution:
            self._distribution = strategy
            self._forward_loss = None
        if strategy is not None:
            strategy.place(self)

    def _set_precision(self):
        """Autocast and loss scaling as the global mixed-precision policy says (per call)."""
        device = self._device or default_device()
        amp = precision.autocast_spec(device)
        if amp != self._amp:
            self._amp, self._forward_loss = amp, None
        self._grad_scaler = precision.grad_scaler(amp, self._grad_scaler)

    def _compiled_trainability(self):
        """A context in which exactly the weights trainable at ``compile()`` require grad."""
        recorded = getattr(self, "_trainable_at_compile", None)
        return contextlib.nullcontext() if recorded is None else recorded.applied(self.name)

    def _select_train_step(self):
        """The plain step when nothing else is asked for: no per-step cost for what is off."""
        if self._distribution is None and self._grad_scaler is None:
            return self._train_step
        return self._general_train_step

    def _forward_with_logits(self, forward_loss, xs, ys, sws):
        for _, layer, _ in self._logit_outputs:
            layer._emit_logits = True
        try:
            return forward_loss(xs, ys, sws)
        finally:
            for _, layer, _ in self._logit_outputs:
                layer._emit_logits = False

    def _train_step(self, xs, ys, sws):
        """One optimisation step on one batch; updates the running metrics on the device."""
        ys = self._compiled_loss.prepare_targets(ys)
        optimizer = self.optimizer
        kaffe_optimizer = isinstance(optimizer, optimizers_module.Optimizer)
        if kaffe_optimizer:
            optimizer.clear_gradients()
        else:
            optimizer.zero_grad(set_to_none=True)
        total, per_output, preds = self._forward_with_logits(self._get_forward_loss(), xs, ys, sws)
        if total.requires_grad:  # else no weight is trainable: Keras updates nothing
            total.backward()
            optimizer.step_unhooked() if kaffe_optimizer else optimizer.step()
        for layer in self._constrained:
            layer.apply_constraints()
        self._update_metrics(total, per_output, preds, ys, sws, xs[0].shape[0])

    def _general_train_step(self, xs, ys, sws, share=None):
        """``_train_step`` plus what data-parallelism and float16 need.

        ``share`` (data-parallel): this process's and the global batch's sample counts. The
        loss is weighted by ``local * world / total`` before DDP averages the gradients, so
        the update equals one process's on the whole global batch even when a short last
        batch splits unevenly; a stand-in part (``local == 0``) has weight 0 and updates no
        metric.
        """
        ys = self._compiled_loss.prepare_targets(ys)
        self.optimizer.zero_grad(set_to_none=True)
        forward_loss = self._forward_loss or self._get_forward_loss((xs, ys, sws))
        total, per_output, preds = self._forward_with_logits(forward_loss, xs, ys, sws)
        loss = total
        if share is not None and share.total and share.local * share.world != share.total:
            loss = total * (share.local * share.world / share.total)
        scaler = self._grad_scaler
        if not loss.requires_grad:  # no weight is trainable: Keras updates nothing
            pass
        elif scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(self.optimizer)
            scaler.update()
        for layer in self._constrained:
            layer.apply_constraints()
        if share is None or share.local:
            self._update_metrics(total, per_output, preds, ys, sws, xs[0].shape[0])

    def _epoch_logs(self, prefix=""):
        """Logs at an epoch end: over all processes' samples when data-parallel."""
        if self._distribution is None:
            return self._logs(prefix)
        return self._distribution.global_logs(self.metrics, prefix)

    def _test_step(self, xs, ys, sws, share=None):
        ys = self._compiled_loss.prepare_targets(ys)
        total, per_output, preds = self._forward_with_logits(self._forward_loss_impl, xs, ys, sws)
        if share is None or share.local:
            self._update_metrics(total, per_output, preds, ys, sws, xs[0].shape[0])

    def _update_metrics(self, total, per_output, preds, ys, sws, batch_size):
        with torch.no_grad():
            self._compiled_loss.update_trackers(total, per_output, batch_size)
            preds = [p.detach() for p in preds]
            for i, _, activation in self._logit_outputs:
                if i in self._outputs_needing_probabilities:
                    preds[i] = activation(preds[i])
            self._compiled_metrics.update(ys, preds, sws)

    # ------------------------------------------------------------------ fit
    @_explain_out_of_memory
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, jit_compile=None, nb_epoch=None,
            distribute=None, **kwargs):
        """Train for ``epochs`` over the data; returns a ``History`` with Keras's keys.

        ``jit_compile=True`` compiles the step's forward and loss with ``torch.compile``.
        ``distribute``: a ``kaffe.distribute.DataParallel`` (or True/False); by default
        data-parallel exactly when started by torchrun with several processes. Data-parallel,
        ``batch_size`` is the GLOBAL batch (Keras 3's semantics): each of N processes takes
        ``batch_size / N`` samples of every batch, and the epoch's logs are over all samples.
        """
        for legacy in ("max_queue_size", "workers", "use_multiprocessing"):
            kwargs.pop(legacy, None)
        if kwargs:
            raise TypeError(f"fit() got unexpected arguments {sorted(kwargs)}.")
        epochs = nb_epoch if nb_epoch is not None else epochs
        data_checks.check_batch_size(batch_size, "fit")
        data_checks.check_batch_size(validation_batch_size, "fit")
        self._require_compiled()
        if jit_compile is not None and bool(jit_compile) != self._jit_compile:
            self._jit_compile, self._forward_loss = bool(jit_compile), None
        strategy = distribute_module.resolve(distribute)
        custom = bool(self._custom[0])
        if custom and strategy is not None:
            raise ValueError(f"Model '{self.name}' trains with its own train_step / compute_loss "
                             "(or without a compiled loss), which kaffe does not run data-parallel "
                             "yet; train it in one process (distribute=False).")
        self._use_distribution(strategy)
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = _split_for_validation(
                x, y, sample_weight, validation_split)
        train = self._make_data(x, y, sample_weight, class_weight, batch_size, shuffle,
                                steps_per_epoch)
        if isinstance(train, da.ArrayData):
            self._prepare(train.xs)
            data_checks.warn_nan(train.xs, self.input_names, "input", self.name)
            if not custom:
                data_checks.check_sparse_labels(self, train.ys)
            train.place(self._device)  # CUDA: the arrays on the device (or pinned) once
        val = None
        if validation_data is not None:
            val = self._validation_source(validation_data, validation_batch_size or batch_size,
                                          validation_steps)
            if isinstance(val, da.ArrayData):
                val.place(self._device)
        self._set_precision()
        train_step = self._select_train_step()
        sync_stop = False
        if strategy is not None:
            train = strategy.shard(train)
            val = None if val is None else strategy.shard(val)
            # A callback reading batch logs may stop training mid-epoch on one rank only.
            sync_stop = any(_batch_level(cb) for cb in callbacks or [])
            if not strategy.is_chief:
                verbose = 0  # rank 0 prints
            strategy.begin_fit()

        history = History()
        cbs = callback_list(self, callbacks, verbose, train.steps, epochs, history)
        batch_hooks = BatchHooks(cbs, "train")
        self.stop_training = False
        cbs.on_train_begin()
        last_epoch_logs = {}
        epoch, step = initial_epoch, -1
        step_logs = None
        trainability = contextlib.ExitStack()
        trainability.enter_context(self._compiled_trainability())
        try:
            for epoch in range(initial_epoch, epochs):
                self.reset_metrics()
                cbs.on_epoch_begin(epoch)
                self.train()
                step = -1
                for step, batch in enumerate(train.batches()):
                    xs, ys, sws = batch[0], batch[1], batch[2]
                    if step == 0 and self._compiled_loss is None:
                        self._prepare(xs)
                        self.reset_metrics()
                    if ys is None and not custom:
                        raise da.DataError("fit() needs targets: pass y, or batches of (x, y).")
                    batch_hooks.begin(step)
                    if custom:
                        step_logs = self._custom_step(self.train_step, xs, ys, sws)
                        batch_hooks.end(step, lambda: custom_steps.pythonify_logs(step_logs))
                    else:
                        try:
                            train_step(self._to_device(xs), self._to_device(ys),
                                       self._to_device(sws), *batch[3:])
                        except IndexError as error:
                            raise self._label_error(error, ys) from error
                        batch_hooks.end(step, self._logs)
                    if sync_stop:
                        self.stop_training = strategy.any_rank(self.stop_training)
                    if self.stop_training:
                        break
                self.eval()
                if step < 0:
                    raise da.DataError("The training data produced no batches.")
                epoch_logs = self._custom_logs(step_logs) if custom else self._epoch_logs()
                if val is not None and (epoch + 1) % validation_freq == 0:
                    epoch_logs.update(self._run_evaluation(val, prefix="val_"))
                with torch.no_grad():  # callbacks look at the model (tensor.numpy() works)
                    cbs.on_epoch_end(epoch, epoch_logs)
                last_epoch_logs = epoch_logs
                if strategy is not None:
                    self.stop_training = strategy.any_rank(self.stop_training)
                if self.stop_training:
                    break
        except Exception as err:
            lost = strategy.lost_peer(err, f"in epoch {epoch + 1}, step {step + 1}") \
                if strategy is not None else None
            if lost is not None:
                raise lost from err
            raise
        finally:
            trainability.close()
        self.eval()
        cbs.on_train_end(last_epoch_logs)
        return history

    def _label_error(self, error, ys):
        """torch's "Target 10 is out of bounds" named with the output and its class count."""
        if "out of bounds" not in str(error) or ys is None or self._compiled_loss is None:
            return error
        try:
            data_checks.check_sparse_labels(self, ys)
        except da.DataError as named:
            return named
        return error

    def _validation_source(self, validation_data, batch_size, steps):
        if da.is_iterable_source(validation_data):
            return self._make_data(validation_data, steps=steps, batch_size=batch_size)
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise da.DataError("validation_data must be (x_val, y_val) or "
                               "(x_val, y_val, val_sample_weight), or a generator/Sequence.")
        vx, vy, vsw = tuple(validation_data) + (None,) * (3 - len(validation_data))
        return self._make_data(vx, vy, vsw, batch_size=batch_size, steps=steps)

    def _run_evaluation(self, data, prefix="", callbacks=None):
        """Run the test step over ``data`` with fresh metrics and return the logs (the train
        metrics were already read)."""
        self.eval()
        self.reset_metrics()
        hooks = BatchHooks(callbacks, "test")
        if callbacks is not None:
            callbacks.on_test_begin()
        custom, step_logs = bool(self._custom[1]), None
        with torch.no_grad():
            for step, batch in enumerate(data.batches()):
                xs, ys, sws = batch[0], batch[1], batch[2]
                if step == 0:
                    self._prepare(xs)
                    self.reset_metrics()
                if ys is None and not custom:
                    raise da.DataError("evaluate() needs targets: pass y, or batches of (x, y).")
                hooks.begin(step)
                if custom:
                    step_logs = self._custom_step(self.test_step, xs, ys, sws)
                    hooks.end(step, lambda: custom_steps.pythonify_logs(step_logs))
                else:
                    self._test_step(self._to_device(xs), self._to_device(ys),
                                    self._to_device(sws), *batch[3:])
                    hooks.end(step, self._logs)
        logs = self._custom_logs(step_logs, prefix) if custom else self._epoch_logs(prefix)
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs

    # ------------------------------------------------------------------ evaluate / predict
    @_explain_out_of_memory
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, distribute=None, **kwargs):
        """Loss and metrics on the data: a scalar, a list in ``metrics_names`` order, or a dict.
        Data-parallel (see ``fit``), each process evaluates its part and all get the totals."""
        self._require_compiled()
        data_checks.check_batch_size(batch_size, "evaluate")
        strategy = distribute_module.resolve(distribute)
        self._use_distribution(strategy)
        data = self._make_data(x, y, sample_weight, batch_size=batch_size, steps=steps)
        self._set_precision()
        if strategy is not None:
            data = strategy.shard(data)
            if not strategy.is_chief:
                verbose = 0
        logs = self._run_evaluation(data, callbacks=callback_list(self, callbacks, verbose,
                                                                   data.steps))
        if return_dict:
            return logs
        values = self._result_values(logs)
        return values[0] if len(values) == 1 else values

    @_explain_out_of_memory
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, **kwargs):
        """Model outputs for the inputs, as numpy arrays (a list for several outputs)."""
        data_checks.check_batch_size(batch_size, "predict")
        data = self._make_data(x, batch_size=batch_size, steps=steps)
        cbs = callback_list(self, callbacks, verbose, data.steps)
        hooks = BatchHooks(cbs, "predict")
        self.eval()
        self._set_precision()
        chunks = None
        custom_predict = bool(custom_steps.overrides(self, ("predict_step",)))
        cbs.on_predict_begin()
        with torch.inference_mode():
            for step, (xs, _, _) in enumerate(data.batches()):
                if step == 0:
                    self._prepare(xs)
                hooks.begin(step)
                if custom_predict:
                    xs = self._to_device(xs)
                    out = self.predict_step(custom_steps.pack_x_y_sample_weight(
                        self._model_input(xs)))
                else:
                    with precision.autocast(self._amp):
                        out = self(self._model_input(self._to_device(xs)))
                out = list(out) if isinstance(out, (list, tuple)) else [out]
                if self._amp is not None:
                    out = [o.float() if o.is_floating_point() else o for o in out]
                hooks.end(step, lambda: {"outputs": out})
                if chunks is None:
                    chunks = [[] for _ in out]
                for store, tensor in zip(chunks, out):
                    store.append(tensor)
        if chunks is None:
            raise da.DataError("predict() received no data.")
        arrays = [torch.cat(c).cpu().numpy() for c in chunks]
        cbs.on_predict_end()
        return arrays[0] if len(arrays) == 1 else arrays

    # ------------------------------------------------------------------ single batches
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False,
                       reset_metrics=True):
        """One update on one batch; returns that batch's loss (and metrics). Data-parallel
        (see ``fit``), the batch is global: each process trains on its part."""
        self._require_compiled()
        batch = self._one_batch(x, y, sample_weight, class_weight)
        if reset_metrics:
            self.reset_metrics()
        self.train()
        self._set_precision()
        with self._compiled_trainability():
            if self._custom[0]:
                logs = self._custom_step(self.train_step, *batch[:3])
                self.eval()
                return self._custom_result(logs, return_dict)
            self._select_train_step()(self._to_device(batch[0]), self._to_device(batch[1]),
                                      self._to_device(batch[2]), *batch[3:])
        self.eval()
        return self._batch_result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False, reset_metrics=True):
        self._require_compiled()
        batch = self._one_batch(x, y, sample_weight)
        if reset_metrics:
            self.reset_metrics()
        self.eval()
        self._set_precision()
        with torch.no_grad():
            if self._custom[1]:
                return self._custom_result(self._custom_step(self.test_step, *batch[:3]),
                                           return_dict)
            self._test_step(self._to_device(batch[0]), self._to_device(batch[1]),
                            self._to_device(batch[2]), *batch[3:])
        return self._batch_result(return_dict)

    def _one_batch(self, x, y, sample_weight, class_weight=None):
        """The arrays as one batch (this process's part of it when data-parallel)."""
        strategy = distribute_module.resolve()
        self._use_distribution(strategy)
        data = self._make_data(x, y, sample_weight, class_weight, batch_size=da.num_samples(x))
        if strategy is not None:
            data = strategy.shard(data)
        batch = next(data.batches())
        self._prepare(batch[0])
        return batch

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=da.num_samples(x), verbose=0)

    # ------------------------------------------------------------------ Keras-contract steps
    def _custom_step(self, step, xs, ys, sws):
        """Call ``train_step`` / ``test_step`` with the batch packed as Keras packs it."""
        for layer in self._loss_layers:
            layer._added_losses.clear()
        xs, ys, sws = self._to_device(xs), self._to_device(ys), self._to_device(sws)
        one = lambda ts: None if ts is None else (ts[0] if len(ts) == 1 else list(ts))  # noqa: E731
        if sws is not None and all(s is None for s in sws):
            sws = None
        return step(custom_steps.pack_x_y_sample_weight(self._model_input(xs), one(ys), one(sws)))

    def _custom_logs(self, step_logs, prefix=""):
        """Keras's rule: the metrics' results when the step's keys are theirs, else the last
        step's logs."""
        metric_logs = self.get_metrics_result()
        if not isinstance(step_logs, dict) or set(step_logs) == set(metric_logs):
            step_logs = metric_logs
        return {prefix + k: v for k, v in custom_steps.pythonify_logs(step_logs).items()}

    def _custom_result(self, step_logs, return_dict):
        logs = self._custom_logs(step_logs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _batch_result(self, return_dict):
        logs = self._epoch_logs()
        if return_dict:
            return logs
        values = self._result_values(logs)
        return values[0] if len(values) == 1 else values

# ---------------------------------------------------------------------- helpers
def _batch_level(callback):
    """A user callback that may set ``stop_training`` from per-batch logs."""
    from kaffe.callbacks.base import _overrides_batch_hook
    return _overrides_batch_hook(callback)


def _may_add_losses(module):
    """Layers whose forward pass can add to the loss: regularized ones, and user-written
    layers (their ``call`` may use ``add_loss``)."""
    if not hasattr(module, "_added_losses"):
        return False
    return (module.activity_regularizer is not None
            or any(spec.regularizer is not None for spec in module._weight_specs)
            or not type(module).__module__.startswith("kaffe.")
            or getattr(module, "_adds_losses", False))  # functional add_loss(symbolic)


_ARGMAX_METRICS = {metrics_module.categorical_accuracy, metrics_module.sparse_categorical_accuracy}


def _validate_losses(loss):
    """Resolve loss names now so a typo fails at compile time, not at the first batch."""
    from kaffe import losses as losses_module
    values = loss.values() if isinstance(loss, dict) else loss if isinstance(loss, (list, tuple)) else [loss]
    for value in values:
        if value is not None:
            losses_module.get_loss_object(value)


def _split_for_validation(x, y, sample_weight, split):
    """Keras's ``validation_split``: the last fraction of the arrays, taken before shuffling."""
    if da.is_iterable_source(x):
        raise da.DataError("validation_split works only with arrays; pass validation_data for "
                           "generators, Sequences and datasets.")
    if not 0.0 < split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1). Received: {split}")
    n = da.num_samples(x)
    cut = int(n * (1.0 - split))

    def part(data, sl):
        if data is None:
            return None
        if isinstance(data, dict):
            return {k: v[sl] for k, v in data.items()}
        if isinstance(data, (list, tuple)) and not isinstance(data, np.ndarray) and len(data) and \
                hasattr(data[0], "__len__") and len(data[0]) == n:
            return [d[sl] for d in data]
        return data[sl]
    train = (part(x, slice(0, cut)), part(y, slice(0, cut)), part(sample_weight, slice(0, cut)))
    val = (part(x, slice(cut, None)), part(y, slice(cut, None)))
    if sample_weight is not None:
        val = val + (part(sample_weight, slice(cut, None)),)
    return train, val
