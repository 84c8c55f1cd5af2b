"""Callbacks that set the optimizer's learning rate: ``ReduceLROnPlateau`` and
``LearningRateScheduler``. Both add the current rate to the epoch logs as ``learning_rate``."""
import inspect
import math
import numbers

import numpy as np

from kaffe.callbacks.base import Callback
from kaffe.callbacks.early_stopping import MonitorCallback
from kaffe.callbacks.progbar import print_msg


def _optimizer(callback):
    optimizer = getattr(callback.model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{type(callback).__name__} needs a compiled model whose optimizer has "
                         f"a learning_rate attribute. Received: optimizer={optimizer!r}")
    return optimizer


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    Args:
        monitor: quantity to watch (default ``"val_loss"``).
        factor: ``new_lr = lr * factor``; must be below 1 (default 0.1).
        patience: epochs without improvement before reducing (default 10).
        verbose: 1 prints a line on each reduction.
        mode: ``"auto"``, ``"min"`` or ``"max"``: see ``EarlyStopping``.
        min_delta: smallest change that counts as an improvement (default 1e-4; Keras 2's
            ``epsilon`` is the same argument).
        cooldown: epochs to wait after a reduction before counting patience again.
        min_lr: the rate never goes below this.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        if "epsilon" in kwargs:  # Keras 2 spelling
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected arguments {sorted(kwargs)}.")
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau expected a factor below 1.0 (the rate is "
                             f"multiplied by it). Received: factor={factor}")
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0
        self._warned_missing = False

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        optimizer = _optimizer(self)
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = self._monitor_value(logs, "Learning rate reduction")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, optimizer, epoch):
        old_lr = float(optimizer.learning_rate)
        # float32 as Keras compares: a rate stored in float32 at min_lr counts as at min_lr.
        if not old_lr > np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                      f"{new_lr}.")
        return True


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch from ``schedule``.

    Args:
        schedule: ``schedule(epoch, lr) -> new_lr`` (epoch counts from 0, ``lr`` is the current
            rate) or Keras 2's ``schedule(epoch) -> new_lr``; the result must be a number.
        verbose: 1 prints the rate set at each epoch.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError("LearningRateScheduler expected a callable schedule(epoch, lr). "
                            f"Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._takes_lr = _accepts_two_positional(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = _optimizer(self)
        if self._takes_lr is None:  # signature unknown: try the Keras 3 form first, as Keras
            try:
                new_lr = self.schedule(epoch, float(optimizer.learning_rate))
            except TypeError:
                new_lr = self.schedule(epoch)
        elif self._takes_lr:
            new_lr = self.schedule(epoch, float(optimizer.learning_rate))
        else:
            new_lr = self.schedule(epoch)
        new_lr = _as_rate(new_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                      f"{new_lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(_optimizer(self).learning_rate)


def _accepts_two_positional(fn):
    """True if ``fn(a, b)`` binds, False if only ``fn(a)`` does, None if the signature is hidden."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(0, 0.0)
        return True
    except TypeError:
        return False


def _as_rate(value):
    """The schedule's result as a float: a number, or a 0-d numpy array / torch tensor."""
    is_scalar = isinstance(value, numbers.Real) or getattr(value, "ndim", None) == 0
    if isinstance(value, bool) or not is_scalar:
        raise ValueError("The output of the schedule function should be a float. "
                         f"Received: {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError("The schedule function returned NaN as the learning rate.")
    return value
