"""``TensorBoard``: event files laid out as Keras writes them, through torch's SummaryWriter.

``log_dir/train`` holds the training scalars (``epoch_loss``, ``epoch_accuracy``,
``epoch_learning_rate``, batch-level ``batch_loss``...) and weight histograms;
``log_dir/validation`` holds the validation scalars under the same tags (``val_loss`` is
written as ``epoch_loss`` there), so TensorBoard overlays the two runs. Epoch scalars use the
0-based epoch as step; batch scalars the 1-based count of batches since ``fit`` began.
"""
import logging
import os
import time

from kaffe.callbacks.base import Callback

log = logging.getLogger(__name__)

_KERAS2_IGNORED = ("batch_size", "write_grads", "embeddings_layer_names", "embeddings_data")


def _is_rank_zero():
    from kaffe.distribute.environment import is_rank_zero
    return is_rank_zero()


class TensorBoard(Callback):
    """Write TensorBoard logs: scalars every epoch (and every N batches), weight histograms.

    Args:
        log_dir: directory for the ``train/`` and ``validation/`` event files.
        histogram_freq: every this many epochs (counted from epoch 0), write a histogram of
            each parameter and floating buffer, tagged ``<layer>/<weight>/histogram``
            (``dense/kernel/histogram``; torch's dotted names become slashes); 0 = never.
        write_graph: accepted for compatibility; the graph is not written (torch's
            ``add_graph`` needs a traced example input).
        write_images: with ``histogram_freq``, also write 1-D and 2-D weights as images
            (``<name>/image``).
        write_steps_per_second: add ``epoch_steps_per_second`` (and ``batch_steps_per_second``
            with a batch-level ``update_freq``).
        update_freq: ``"epoch"``, ``"batch"`` (= 1) or N: also write ``batch_<key>`` scalars
            every N batches; this makes fit build logs every batch (a device sync per batch).
        profile_batch: only 0 is supported (profiling: use ``torch.profiler``); other values
            log a warning and are ignored.
        embeddings_freq: every this many epochs save the weights to
            ``train/keras_embedding.ckpt-<epoch>.weights.h5`` (as Keras 3); no projector config.
        embeddings_metadata: accepted, unused.

    Keras 2's ``batch_size``, ``write_grads``, ``embeddings_layer_names`` and
    ``embeddings_data`` are accepted and ignored. Only the process with ``RANK`` 0 (or no
    ``RANK``) writes anything, so a distributed run has one set of event files. Writers are
    flushed every epoch and closed when training ends.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None, **kwargs):
        super().__init__()
        unknown = sorted(k for k in kwargs if k not in _KERAS2_IGNORED)
        if unknown:
            raise TypeError(f"TensorBoard got unexpected arguments {unknown}.")
        if kwargs.get("write_grads"):
            log.warning("TensorBoard(write_grads=True) is not supported and is ignored.")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool)
                                       or not isinstance(update_freq, int) or update_freq < 1):
            raise ValueError("TensorBoard expected update_freq 'epoch', 'batch' or a positive "
                             f"number of batches. Received: update_freq={update_freq!r}")
        if not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise ValueError("TensorBoard expected histogram_freq >= 0. "
                             f"Received: histogram_freq={histogram_freq!r}")
        if profile_batch:
            log.warning("TensorBoard profiling is not available in kaffe (use torch.profiler); "
                        "profile_batch=%r is ignored.", profile_batch)
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = update_freq
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        if update_freq != "epoch":
            # Bound on the instance so an epoch-level TensorBoard asks fit for no batch logs.
            self.on_train_batch_begin = self._on_train_batch_begin
            self.on_train_batch_end = self._on_train_batch_end
            self.needs_batch_logs = True
        self._writers = {}
        self._in_fit = False
        self._global_train_batch = 0
        self._batch_start = 0.0
        self._epoch_start = 0.0
        self._epoch_start_iterations = None

    # -- writers
    def _writer(self, which):
        """The ``train`` or ``validation`` SummaryWriter, created on first use; None off rank 0."""
        if not _is_rank_zero():
            return None
        if which not in self._writers:
            from torch.utils.tensorboard import SummaryWriter
            self._writers[which] = SummaryWriter(log_dir=os.path.join(self.log_dir, which))
        return self._writers[which]

    def _close_writers(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _scalars(self, which, prefix, logs, step):
        writer = self._writer(which)
        if writer is None:
            return
        for name, value in logs.items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue  # not a scalar (Keras also writes only scalars here)
            writer.add_scalar(f"{prefix}{name}", value, global_step=step)

    # -- hooks
    def on_train_begin(self, logs=None):
        self._in_fit = True
        self._global_train_batch = 0

    def on_train_end(self, logs=None):
        self._in_fit = False
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.monotonic()
        self._epoch_start_iterations = self._iterations()

    def _on_train_batch_begin(self, batch, logs=None):
        self._batch_start = time.monotonic()

    def _on_train_batch_end(self, batch, logs=None):
        self._global_train_batch += 1
        if self._global_train_batch % self.update_freq:
            return
        step = self._global_train_batch
        batch_logs = dict(logs or {})
        if self.write_steps_per_second:
            elapsed = time.monotonic() - self._batch_start
            if elapsed > 0:
                batch_logs["steps_per_second"] = 1.0 / elapsed
        self._scalars("train", "batch_", batch_logs, step)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val_logs = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        learning_rate = self._learning_rate()
        if learning_rate is not None and "learning_rate" not in train_logs:
            train_logs["learning_rate"] = learning_rate
        if self.write_steps_per_second:
            train_logs["steps_per_second"] = self._steps_per_second()
        if train_logs:
            self._scalars("train", "epoch_", train_logs, epoch)
        if val_logs:
            self._scalars("validation", "epoch_", val_logs, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        if self.embeddings_freq and epoch % self.embeddings_freq == 0 and _is_rank_zero():
            path = os.path.join(self.log_dir, "train", f"keras_embedding.ckpt-{epoch}.weights.h5")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.model.save_weights(path)
        for writer in self._writers.values():
            writer.flush()

    def on_test_end(self, logs=None):
        """Evaluation results against the optimizer's step count, as Keras's
        ``evaluation_<name>_vs_iterations``."""
        iterations = self._iterations()
        if logs and iterations is not None:
            self._scalars("validation", "evaluation_",
                          {f"{k}_vs_iterations": v for k, v in logs.items()}, iterations)
            if "validation" in self._writers:
                self._writers["validation"].flush()
        if not self._in_fit:
            self._close_writers()

    # -- helpers
    def _iterations(self):
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        try:
            return int(iterations)
        except (TypeError, ValueError):
            return None

    def _learning_rate(self):
        optimizer = getattr(self.model, "optimizer", None)
        try:
            return float(optimizer.learning_rate)
        except (AttributeError, TypeError, ValueError):
            return None

    def _steps_per_second(self):
        elapsed = time.monotonic() - self._epoch_start
        now_iterations = self._iterations()
        if now_iterations is not None and self._epoch_start_iterations is not None:
            steps = now_iterations - self._epoch_start_iterations
        else:
            steps = self.params.get("steps") or 0
        return steps / elapsed if elapsed > 0 else 0.0

    def _named_weights(self):
        """(tag, tensor) for every parameter and floating buffer: ``<layer name>/<weight>``
        for a model's top-level layers (as Keras's ``dense/kernel``), torch's dotted names
        turned into slashes for anything else."""
        named, seen = [], set()

        def add(prefix, module):
            items = list(module.named_parameters())
            if hasattr(module, "named_buffers"):
                items += [(n, b) for n, b in module.named_buffers() if b.is_floating_point()]
            for name, tensor in items:
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    named.append((prefix + name.replace(".", "/"), tensor))

        for layer in getattr(self.model, "layers", None) or ():
            if hasattr(layer, "named_parameters") and getattr(layer, "name", None):
                add(f"{layer.name}/", layer)
        add("", self.model)
        return named

    def _log_weights(self, epoch):
        writer = self._writer("train")
        if writer is None:
            return
        for tag, tensor in self._named_weights():
            values = tensor.detach().float().cpu()
            if values.numel() == 0 or not bool(values.isfinite().all()):
                log.warning("TensorBoard: skipping the histogram of %s (empty or not finite).",
                            tag)
                continue
            writer.add_histogram(f"{tag}/histogram", values, global_step=epoch)
            if self.write_images:
                image = _weight_image(values)
                if image is not None:
                    writer.add_image(f"{tag}/image", image, global_step=epoch,
                                     dataformats="HW")


def _weight_image(values):
    """A 1-D weight as a 1-row image, a 2-D one as itself (wider than tall, as Keras); else None."""
    values = values.squeeze()
    if values.dim() == 1:
        return values.reshape(1, -1)
    if values.dim() == 2:
        return values.t() if values.shape[0] > values.shape[1] else values
    return None

