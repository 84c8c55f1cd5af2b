"""Small callbacks: ``TerminateOnNaN`` and ``LambdaCallback``."""
import math

from kaffe.callbacks.base import _HOOKS, Callback
from kaffe.callbacks.progbar import print_msg

_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")


class TerminateOnNaN(Callback):
    """Stop training as soon as the batch ``loss`` is NaN or infinite.

    It reads the loss of every batch, so ``fit`` builds per-batch logs while it is present
    (one device sync per batch). The running mean the loops report stays NaN once one batch
    was NaN, so nothing is missed.

    Args:
        raise_error: False (default) sets ``model.stop_training`` so training ends cleanly
            (``on_train_end`` of every callback still runs); True raises ``RuntimeError`` at once.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                               f"{loss}. Terminating training immediately.")
        print_msg(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback made of the functions passed in, e.g.
    ``LambdaCallback(on_epoch_end=lambda epoch, logs: print(logs["loss"]))``.

    Any hook can be given by name, with the hook's arguments: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_batch_begin(batch, logs)``/``on_batch_end(batch, logs)`` (Keras 2 names) or
    ``on_train_batch_begin``/``on_train_batch_end``, ``on_test_*``, ``on_predict_*``.
    Giving a train-batch function makes ``fit`` pass logs to every batch.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_begin=None,
                 on_batch_end=None, on_train_begin=None, on_train_end=None, **kwargs):
        super().__init__()
        unknown = sorted(k for k in kwargs if k not in _HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback got unknown hook name(s) {unknown}; valid ones "
                            f"are {sorted(_HOOKS)}.")
        functions = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                         on_batch_begin=on_batch_begin, on_batch_end=on_batch_end,
                         on_train_begin=on_train_begin, on_train_end=on_train_end, **kwargs)
        for name, fn in functions.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback expected a function for {name}. "
                                f"Received: {fn!r}")
            setattr(self, name, fn)
            if name in _BATCH_HOOKS:
                self.needs_batch_logs = True
