"""``EarlyStopping``, and ``MonitorCallback``: what it shares with ``ModelCheckpoint`` and
``ReduceLROnPlateau`` (which quantity to watch, in which direction, and what counts as better)."""
import logging

from kaffe.callbacks.base import Callback
from kaffe.callbacks.progbar import print_msg

log = logging.getLogger(__name__)

# Metric names whose values should go up, as Keras 3's metric classes declare with
# ``_direction = "up"``; everything named like a loss or an error goes down.
_UP_NAMES = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "io_u",
             "cosine_similarity", "r2", "correlation", "sensitivity", "specificity")
_DOWN_NAMES = ("loss", "error", "mse", "mae", "mape", "msle", "rmse", "crossentropy", "hinge",
               "divergence", "poisson", "cosh")


def metric_direction(name, model=None):
    """``"min"`` or ``"max"`` for a logged quantity such as ``val_accuracy``, or None if unknown.

    A metric object on ``model.metrics`` with a ``_direction`` of ``"up"``/``"down"`` (Keras 3's
    convention) decides; otherwise the name does: losses and errors go down, accuracies, AUC,
    precision, recall, F-scores and IoU go up.
    """
    base = name[4:] if name.startswith("val_") else name
    if base == "loss" or base.endswith("_loss"):
        return "min"
    for metric in getattr(model, "metrics", None) or ():
        direction = getattr(metric, "_direction", None)
        if getattr(metric, "name", None) == base and direction in ("up", "down"):
            return "max" if direction == "up" else "min"
    if any(part in base for part in _UP_NAMES):
        return "max"
    if any(part in base for part in _DOWN_NAMES):
        return "min"
    return None


class MonitorCallback(Callback):
    """Watches ``logs[monitor]`` and decides what an improvement is (Keras 3 semantics).

    ``mode="auto"`` takes the direction from the name (see :func:`metric_direction`) when the
    first epoch ends, and raises if it cannot tell. An improvement beats the reference by more
    than ``min_delta``: ``current < best - min_delta`` when minimizing, ``current > best +
    min_delta`` when maximizing; any value improves on a reference of None.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            log.warning("%s mode '%s' is unknown (expected 'auto', 'min' or 'max'); "
                        "falling back to 'auto'.", type(self).__name__, mode)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None  # "min" or "max" once resolved
        self._warned_missing = False

    def _set_monitor_op(self):
        if self.mode != "auto":
            self.monitor_op = self.mode
            return
        self.monitor_op = metric_direction(self.monitor, self.model)
        if self.monitor_op is None:
            raise ValueError(
                f"{type(self).__name__} received monitor='{self.monitor}' but cannot tell "
                "whether it should be maximized or minimized. Pass mode='max' to keep the "
                "highest value, or mode='min' to keep the lowest.")

    def _is_improvement(self, current, reference):
        if reference is None:
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.monitor_op == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference

    def _monitor_value(self, logs, what):
        """``logs[monitor]`` or None, warning once per training run when it is missing."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None and not self._warned_missing:
            self._warned_missing = True
            log.warning("%s is conditioned on metric '%s' which is not available. "
                        "Available metrics are: %s", what, self.monitor, ",".join(logs))
        return value


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has stopped improving.

    Args:
        monitor: quantity to watch in the epoch logs (default ``"val_loss"``).
        min_delta: an absolute change smaller than this counts as no improvement (default 0).
        patience: epochs without improvement after which training stops (default 0: stop at
            the first epoch that does not improve).
        verbose: 1 prints a line when training stops and when weights are restored.
        mode: ``"auto"`` (from the name: losses down, accuracies up), ``"min"`` or ``"max"``.
        baseline: training stops if the monitored value does not beat this within
            ``patience`` epochs (default None: no baseline).
        restore_best_weights: at the end of training, load the weights of the best epoch
            (``model.get_weights``/``set_weights``), even when no epoch beat ``baseline``.
        start_from_epoch: epochs of warm-up before monitoring starts (default 0).

    ``model.stop_training`` is set to True, so training ends after the current epoch; the
    number of the epoch that stopped it (0-based) is kept in ``stopped_epoch``.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if patience < 0:
            raise ValueError(f"EarlyStopping expected patience >= 0. Received: patience={patience}")
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # Instances may be reused across fit() calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0
        self._warned_missing = False

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self._monitor_value(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until something improves, the first monitored epoch is the best one.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Patience restarts only when the value also beats the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg("Restoring model weights from the end of the best epoch: "
                          f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)
