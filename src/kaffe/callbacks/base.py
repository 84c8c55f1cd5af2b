"""The callback protocol of Keras: hooks the training loops call with a ``logs`` dict.

``logs`` values are Python floats: the loops convert on-device metrics once per logging
point, so callbacks never force a device sync of their own.
"""


class Callback:
    """Base class; override the hooks you need. ``self.model`` and ``self.params`` are set by fit."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    # As in Keras: the loops call the ``on_train_batch_*`` names, whose default forwards to the
    # Keras 2 names, so a callback overriding either spelling is called.
    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass

    # Keras 2 names, overridden by old scripts' callbacks.
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass


_HOOKS = [name for name in vars(Callback) if name.startswith("on_")]


class CallbackList:
    """Calls one hook on every callback in order.

    ``wants_batch_logs`` tells the loop whether any callback overrides a per-batch hook, so
    the loop can skip building per-batch logs (a device sync) when none does. A callback that
    reads batch logs only now and then sets ``batch_log_interval_s`` (the progress bar: 0.2 s;
    ``inf``: never): the loop then calls ``on_train_batch_end`` with fresh logs only when the
    smallest such interval among those callbacks has passed (a callback without the attribute
    counts as 0: every batch). ``on_train_batch_begin`` is called every batch either way.
    """

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        self.wants_batch_logs = any(_overrides_batch_hook(cb) for cb in self.callbacks)

    def __getattr__(self, hook):
        if hook not in _HOOKS:
            raise AttributeError(hook)

        arity = 2 if ("epoch_" in hook or "batch_" in hook) else 1

        def call_all(*args, **kwargs):
            # Keras hands every hook a ``logs`` dict, empty when there is nothing to log: user
            # hooks such as ``def on_train_begin(self, logs): logs.keys()`` rely on it.
            if "logs" in kwargs:
                kwargs["logs"] = {} if kwargs["logs"] is None else kwargs["logs"]
            elif len(args) < arity:
                args = args + (None,) * (arity - 1 - len(args)) + ({},)
            elif args[arity - 1] is None:
                args = args[:arity - 1] + ({},) + args[arity:]
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)
        return call_all


def _overrides_batch_hook(callback):
    batch_hooks = ("on_train_batch_end", "on_train_batch_begin", "on_batch_end", "on_batch_begin",
                   "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
                   "on_predict_batch_end")
    return any(getattr(type(callback), h) is not getattr(Callback, h) for h in batch_hooks) or \
        getattr(callback, "needs_batch_logs", False)


class History(Callback):
    """Records every epoch's logs in ``history`` (a dict of lists), as Keras's History does."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self
