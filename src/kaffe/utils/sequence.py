"""Batch-indexed datasets: Keras 3's ``PyDataset``, also under its Keras 2 name ``Sequence``."""
import itertools


class PyDataset:
    """Base class for a dataset that serves whole batches by index, as ``keras.utils.PyDataset``.

    Subclasses implement ``__len__`` (number of batches) and ``__getitem__(idx)`` returning a batch
    ``(x, y)`` or ``(x, y, sample_weight)``; ``on_epoch_end()`` may shuffle. Because every batch is
    addressed by index, training sees each sample once per epoch even with several workers.

    Example::

        class Batches(kaffe.utils.Sequence):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, idx):
                lo = idx * self.batch_size
                return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]

    Args:
        workers: number of threads or processes a loader may use to fetch batches.
        use_multiprocessing: use processes rather than threads for ``workers > 1``.
        max_queue_size: batches a loader may prefetch.

    Keras 2 ``Sequence`` subclasses often skip ``super().__init__()``; the defaults above then
    apply.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"PyDataset expected workers to be a positive integer. Received: "
                             f"workers={workers!r}")
        if not isinstance(max_queue_size, int) or max_queue_size < 1:
            raise ValueError(f"PyDataset expected max_queue_size to be a positive integer. "
                             f"Received: max_queue_size={max_queue_size!r}")
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    # Read through getattr so Keras 2 subclasses that never call super().__init__() still work.
    @property
    def workers(self):
        return getattr(self, "_workers", 1)

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        return getattr(self, "_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        return getattr(self, "_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __len__(self):
        raise NotImplementedError(
            f"{type(self).__name__} must implement __len__ (the number of batches per epoch), "
            "or the num_batches property returning None for an endless dataset")

    def __getitem__(self, idx):
        raise NotImplementedError(
            f"{type(self).__name__} must implement __getitem__(idx) returning the batch at "
            "position idx as (x, y) or (x, y, sample_weight)")

    @property
    def num_batches(self):
        """Batches per epoch, ``len(self)``; a subclass may give ``None`` for an endless dataset."""
        return len(self)

    def __iter__(self):
        """Yield the batches in order (endlessly when ``num_batches`` is ``None``)."""
        n = self.num_batches
        for idx in (itertools.count() if n is None else range(n)):
            yield self[idx]

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch; override to shuffle."""


#: Keras 2 name of :class:`PyDataset`.
Sequence = PyDataset
