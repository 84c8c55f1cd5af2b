"""How the loops drive callbacks: Keras's default list, and per-batch hooks at the rate the
callbacks ask for (building batch logs is a device sync)."""
import time

from kaffe.callbacks.base import CallbackList, _overrides_batch_hook


def callback_list(model, callbacks, verbose, steps, epochs=1, history=None):
    """The user's callbacks, then History (fit) and the progress bar, as Keras orders them."""
    from kaffe.callbacks import ProgbarLogger
    verbose = 1 if verbose == "auto" else int(verbose)
    callbacks = list(callbacks or [])
    if history is not None:
        callbacks.append(history)
    if verbose and not any(isinstance(c, ProgbarLogger) for c in callbacks):
        callbacks.append(ProgbarLogger())
    return CallbackList(callbacks, model, {"epochs": epochs, "steps": steps, "verbose": verbose})


class BatchHooks:
    """Per-batch callback calls, made only when some callback wants them and at most as often
    as it asks (``batch_log_interval_s``): building batch logs is a device sync."""

    def __init__(self, callbacks, mode):
        self.callbacks, self.mode = callbacks, mode
        self.interval = None
        if callbacks is not None and callbacks.wants_batch_logs:
            intervals = [getattr(cb, "batch_log_interval_s", 0) for cb in callbacks.callbacks
                         if _overrides_batch_hook(cb)]
            self.interval = min(intervals) if intervals else None
        self.last = time.monotonic()

    def begin(self, step):
        if self.interval is not None:
            getattr(self.callbacks, f"on_{self.mode}_batch_begin")(step)

    def end(self, step, make_logs):
        if self.interval is None:
            return
        now = time.monotonic()
        if self.interval == 0 or now - self.last >= self.interval:
            self.last = now
            getattr(self.callbacks, f"on_{self.mode}_batch_end")(step, make_logs())
