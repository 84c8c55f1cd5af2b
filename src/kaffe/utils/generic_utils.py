"""``keras.utils.generic_utils`` (Keras 2) / ``keras.utils.Progbar``: the progress bar with
Keras's own ``update(current, values)`` / ``add(n, values)`` API, drawn by kaffe's bar."""
from kaffe.callbacks.progbar import Progbar as _Bar


class Progbar(_Bar):
    """A progress bar for ``target`` steps (``None``: unknown). ``values`` are ``(name,
    value)`` pairs; each name is shown as its average over the steps so far, weighted by the
    steps each value covered, except names in ``stateful_metrics``, shown as given (Keras's
    rule)."""

    def __init__(self, target, width=30, verbose=1, interval=0.05, stateful_metrics=None,
                 unit_name="step"):
        super().__init__(target, verbose=verbose, width=width, interval=interval,
                         unit_name=unit_name)
        self.stateful_metrics = set(stateful_metrics or ())
        self._sums = {}
        self._seen_so_far = 0

    def update(self, current, values=None, finalize=None):
        """Move to step ``current``, folding ``values`` into the averages."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        steps = max(current - self._seen_so_far, 1)
        for name, value in values or ():
            if name in self.stateful_metrics:
                self._sums[name] = [value, 1]
            else:
                total, count = self._sums.get(name, [0.0, 0])
                self._sums[name] = [total + value * steps, count + steps]
        self._seen_so_far = current
        logs = {name: total / count for name, (total, count) in self._sums.items()}
        super().update(current, logs, finalize=finalize)

    def add(self, n, values=None):
        """Advance by ``n`` steps."""
        self.update(self._seen_so_far + n, values)


__all__ = ["Progbar"]
