"""The console display of ``fit``/``evaluate``/``predict``: ``ProgbarLogger`` and its bar.

What it prints, as Keras 3 does::

    Epoch 1/10
    469/469 ━━━━━━━━━━━━━━━━━━━━ 2s 4ms/step - accuracy: 0.9012 - loss: 0.3120 - val_accuracy: ...

``verbose=1`` redraws the line in place on a terminal (at most every ``batch_log_interval_s``
seconds) and, when stdout is not a terminal (a log file, CI), writes only each epoch's final
line. ``verbose=2`` writes one line per epoch: ``469/469 - 2s - 4ms/step - accuracy: ...``.

The console is this module's: other callbacks' ``verbose`` messages go through
:func:`print_msg` so they share the stream and its encoding fallback.
"""
import logging
import math
import sys
import time

from kaffe.callbacks.base import Callback

log = logging.getLogger(__name__)


def print_msg(message, line_break=True):
    """Write ``message`` to stdout (the console the progress bar uses) and flush; in a
    data-parallel job only rank 0 writes."""
    from kaffe.distribute.environment import is_rank_zero
    if not is_rank_zero():
        return
    text = f"{message}\n" if line_break else str(message)
    stream = sys.stdout
    try:
        stream.write(text)
    except UnicodeEncodeError:  # e.g. the bar's '━' on an ASCII console
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(text.replace("━", "=").encode(encoding, "replace").decode(encoding))
    stream.flush()


def _is_terminal():
    stream = sys.stdout
    return (hasattr(stream, "isatty") and stream.isatty()) or "ipykernel" in sys.modules


def _bar_char():
    try:
        "━".encode(getattr(sys.stdout, "encoding", None) or "utf-8")
        return "━"
    except (UnicodeEncodeError, LookupError):
        return "="


def _format_value(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return f" {value}"
    return f" {value:.4f}" if abs(value) > 1e-3 else f" {value:.4e}"


def _format_time_per_unit(seconds, unit):
    if seconds >= 1 or seconds == 0:
        return f" {seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f" {seconds * 1e3:.0f}ms/{unit}"
    return f" {seconds * 1e6:.0f}us/{unit}"


def _format_eta(seconds):
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def _display_order(logs):
    """Training keys sorted, then validation keys sorted (the order Keras 3 shows)."""
    return sorted(k for k in logs if not k.startswith("val_")) + \
        sorted(k for k in logs if k.startswith("val_"))


class Progbar:
    """One bar: ``update(current, logs)`` as steps complete, ``finalize=True`` at the end.

    ``logs`` values are shown as given (the loops report running means over the epoch); a key
    keeps its place once shown. Step time ignores everything before the first update, so
    warm-up and compilation do not inflate ``ms/step``.
    """

    def __init__(self, target, verbose=1, width=20, interval=0.2, unit_name="step"):
        self.target = target
        self.verbose = verbose
        self.width = width
        self.interval = interval
        self.unit_name = unit_name
        self.seen = 0
        self._values = {}
        self._start = time.monotonic()
        self._ref = None  # (time, step) of the first update
        self._last_draw = -math.inf
        self._prev_width = 0

    def update(self, current, logs=None, finalize=False):
        now = time.monotonic()
        self.seen = current
        if logs:
            for key in _display_order(logs):
                self._values[key] = logs[key]
        if self._ref is None and current > 0 and not finalize:
            self._ref = (now, current)
        if self.verbose == 1:
            dynamic = _is_terminal()
            if finalize or (dynamic and now - self._last_draw >= self.interval):
                self._draw(current, now, finalize, dynamic)
                self._last_draw = now
        elif self.verbose == 2 and finalize:
            count = self._count(current)
            line = f"{count} - {now - self._start:.0f}s -" \
                f"{_format_time_per_unit(self._time_per_step(current, now), self.unit_name)}"
            print_msg(line + self._metrics())

    def _count(self, current):
        if not self.target:
            return "%7d/Unknown" % current
        digits = len(str(self.target))
        return f"{current:>{digits}}/{self.target}"

    def _time_per_step(self, current, now):
        if self._ref is not None and current > self._ref[1]:
            return (now - self._ref[0]) / (current - self._ref[1])
        return (now - self._start) / current if current else 0.0

    def _metrics(self):
        return "".join(f" - {k}:{_format_value(v)}" for k, v in self._values.items())

    def _draw(self, current, now, finalize, dynamic):
        count = self._count(current)
        plain = color = count
        if self.target:
            done = min(self.width, int(self.width * current / self.target))
            char = _bar_char()
            plain = f"{count} {char * self.width}"
            color = f"\x1b[1m{count}\x1b[0m \x1b[32m{char * done}\x1b[0m" \
                f"\x1b[37m{char * (self.width - done)}\x1b[0m"
        if self.target and not finalize:
            when = _format_eta(self._time_per_step(current, now) * (self.target - current))
        else:
            when = f"{now - self._start:.0f}s"
        info = f" {when}" + \
            _format_time_per_unit(self._time_per_step(current, now), self.unit_name) + \
            self._metrics()
        if not dynamic:  # a log file: one plain line, no escape codes
            print_msg(plain + info)
            return
        width = len(plain) + len(info)
        pad = " " * max(0, self._prev_width - width)
        self._prev_width = width
        print_msg("\r" + color + info + pad, line_break=finalize)


class ProgbarLogger(Callback):
    """Prints progress and metrics to stdout; ``fit`` adds one when ``verbose`` is 1 or 2.

    Args:
        count_mode: ``"steps"`` (batches). Keras 2's ``"samples"`` is accepted and counts
            steps too (kaffe's logs carry no batch sizes).
        stateful_metrics: Keras 2 argument, ignored: every value in kaffe's logs is already a
            running mean over the epoch and is shown as given.

    Batch logs: the bar reads them at most every ``batch_log_interval_s`` (0.2 s) and only
    with ``verbose=1``; with other verbosities it asks for none (``inf``).
    """

    batch_log_interval_s = 0.2

    def __init__(self, count_mode="steps", stateful_metrics=None):
        super().__init__()
        if count_mode not in ("steps", "samples"):
            raise ValueError("ProgbarLogger expected count_mode 'steps' or 'samples'. "
                             f"Received: count_mode={count_mode!r}")
        self.count_mode = count_mode
        self.stateful_metrics = stateful_metrics
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._last_batch = -1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        from kaffe.distribute.environment import is_rank_zero
        verbose = params.get("verbose", 1)
        self.verbose = (1 if verbose == "auto" else int(verbose)) if is_rank_zero() else 0
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")
        if self.verbose == 1:
            self.__dict__.pop("batch_log_interval_s", None)
        else:
            self.batch_log_interval_s = math.inf

    def _new_bar(self):
        self._last_batch = -1
        self.progbar = Progbar(self.target, verbose=self.verbose,
                               interval=type(self).batch_log_interval_s)

    def _batch_seen(self, batch):
        self._last_batch = batch

    def _update(self, batch, logs):
        self._last_batch = batch
        if self.progbar is not None and self.verbose == 1:
            self.progbar.update(batch + 1, logs)

    def _finalize(self, logs):
        if self.progbar is None:
            return
        target = self.progbar.target or self._last_batch + 1
        self.progbar.target = target
        self.progbar.update(target, logs, finalize=True)
        self.progbar = None

    # -- fit
    def on_train_begin(self, logs=None):
        self._called_in_fit = True  # validation inside fit stays silent, as in Keras

    def on_train_end(self, logs=None):
        self._called_in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._new_bar()
        if self.verbose and self.epochs > 1:
            print_msg(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_seen(batch)

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize(logs)

    # -- evaluate
    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._new_bar()

    def on_test_batch_begin(self, batch, logs=None):
        if not self._called_in_fit:
            self._batch_seen(batch)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize(logs)

    # -- predict (its batch logs hold outputs, never shown)
    def on_predict_begin(self, logs=None):
        self._new_bar()

    def on_predict_batch_begin(self, batch, logs=None):
        self._batch_seen(batch)

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch, None)

    def on_predict_end(self, logs=None):
        self._finalize(None)
