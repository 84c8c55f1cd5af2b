"""``ModelCheckpoint``: save the model or its weights during training, never half-written."""
import logging
import os
import shutil
import string
import uuid

from kaffe.callbacks.early_stopping import MonitorCallback
from kaffe.callbacks.progbar import print_msg

log = logging.getLogger(__name__)

_MODEL_EXTENSIONS = (".keras", ".h5", ".hdf5")
_WEIGHTS_EXTENSIONS = (".weights.h5", ".h5", ".hdf5")


class ModelCheckpoint(MonitorCallback):
    """Save the model (``model.save``) or its weights (``model.save_weights``) as training goes.

    Args:
        filepath: where to save; may hold ``str.format`` fields filled from ``epoch``
            (1-based), ``batch`` (1-based, with an integer ``save_freq``) and the logs, e.g.
            ``"weights.{epoch:02d}-{val_loss:.2f}.weights.h5"``. The extension picks the format:
            ``.keras`` or ``.h5`` for a whole model; ``.weights.h5`` or ``.h5`` for weights
            (Keras 2's ``.hdf5`` is passed on as it is).
        monitor: quantity compared when ``save_best_only`` (default ``"val_loss"``).
        verbose: 1 prints a line for every save and every skipped save.
        save_best_only: save only when ``monitor`` improves on the best value so far (if it
            is missing from the logs, save anyway and warn, as Keras does).
        save_weights_only: ``model.save_weights`` instead of ``model.save``.
        mode: ``"auto"``, ``"min"`` or ``"max"``: see ``EarlyStopping``.
        save_freq: ``"epoch"`` or an integer number of batches between saves (the batch
            variant needs per-batch logs, so it costs a device sync every batch).
        initial_value_threshold: the best value to beat before the first save.
        period: Keras 2's argument: save every ``period`` epochs.

    Every save writes a temporary file next to the target and then ``os.replace``-s it onto
    the target, so a crash or a failing save leaves the previous checkpoint whole. In a
    data-parallel job only rank 0 writes.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None, *, period=None, options=None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self.period = 1 if period is None else int(period)
        if self.period < 1:
            raise ValueError(f"ModelCheckpoint expected period >= 1. Received: period={period}")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                      or save_freq < 1):
            raise ValueError(f"Unrecognized save_freq: {save_freq!r}. Expected 'epoch' or a "
                             "positive number of batches.")
        extensions = _WEIGHTS_EXTENSIONS if save_weights_only else _MODEL_EXTENSIONS
        if not self.filepath.endswith(extensions):
            what = "save_weights_only=True" if save_weights_only else "a whole model"
            raise ValueError(f"ModelCheckpoint with {what} expected a filepath ending in "
                             f"{' or '.join(extensions)}. Received: filepath={self.filepath}")
        if save_freq != "epoch":
            # Batch-level saving is the only reason to see batches; bound on the instance so
            # an epoch-level checkpoint does not make fit build per-batch logs.
            self.on_train_batch_end = self._on_train_batch_end
            self.needs_batch_logs = True
        self._current_epoch = 0
        self._batches_since_save = 0
        self._epochs_since_save = 0

    def on_train_begin(self, logs=None):
        self._warned_missing = False
        self._batches_since_save = 0
        self._epochs_since_save = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def _on_train_batch_end(self, batch, logs=None):
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None and self.save_best_only:
            self._set_monitor_op()
        if self.save_freq != "epoch":
            return
        self._epochs_since_save += 1
        if self._epochs_since_save >= self.period:
            self._epochs_since_save = 0
            self._save_model(epoch, None, logs)

    def _file_path(self, epoch, batch, logs):
        fields = dict(logs or {})
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in fields:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError) as err:
            names = [f for _, f, _, _ in string.Formatter().parse(self.filepath) if f]
            raise KeyError(f"Failed to format ModelCheckpoint filepath '{self.filepath}': it "
                           f"needs {names} but the logs hold {sorted(fields)}. Reason: {err!r}") \
                from None

    def _should_save(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = self._monitor_value(logs, "ModelCheckpoint (save_best_only)")
        if current is None:
            return True  # as Keras: without the value, save rather than lose the model
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                          f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch, batch, logs):
        from kaffe.distribute.environment import is_rank_zero
        filepath = self._file_path(epoch, batch, logs)
        if not self._should_save(epoch, logs, filepath) or not is_rank_zero():
            return  # data-parallel: every rank decides alike (same logs), rank 0 writes
        if os.path.isdir(filepath):
            raise IsADirectoryError("ModelCheckpoint needs a file path, but this is an existing "
                                    f"directory: {filepath}")
        directory = os.path.dirname(filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        save = self.model.save_weights if self.save_weights_only else self.model.save
        atomic_save(save, filepath)
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")


def atomic_save(save, filepath):
    """Call ``save(path)`` on a temporary file beside ``filepath``, then move it into place.

    The temporary name keeps the target's ending (``.keras``, ``.weights.h5``...), so a saver
    that picks the format from the extension writes the same format. If ``save`` raises, the
    temporary file is removed and ``filepath`` is untouched.
    """
    directory, name = os.path.split(filepath)
    tmp = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:12]}-{name}")
    try:
        save(tmp)
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.lexists(tmp):
            try:
                if os.path.isdir(tmp) and not os.path.islink(tmp):
                    shutil.rmtree(tmp)
                else:
                    os.remove(tmp)
            except OSError:
                log.warning("Could not remove the temporary checkpoint %s", tmp)
        raise
