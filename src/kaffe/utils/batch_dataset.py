"""``BatchDataset``: what kaffe's ``*_dataset_from_*`` utilities return where Keras 3 returns a
``tf.data.Dataset`` - a ``PyDataset`` of NumPy batches that ``fit`` / ``evaluate`` / ``predict``
take, iterable for one pass, with the few ``tf.data`` methods Keras scripts chain on it.
"""
import numpy as np
import torch

from kaffe.utils.sequence import PyDataset


class BatchDataset(PyDataset):
    """``n`` samples from ``sample(i)`` (a tuple of arrays per sample), batched by
    ``batch_size`` (``None``: one sample per item, unbatched). The first pass takes the samples
    in order (the utilities put them in Keras's shuffled order); with ``shuffle`` each later
    pass ``p`` reshuffles with ``np.random.RandomState(seed + p)``, where ``tf.data`` would
    reshuffle through a buffer."""

    def __init__(self, n, sample, batch_size=32, shuffle=False, seed=None, transforms=()):
        super().__init__()
        self.n = int(n)
        self._sample = sample
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = np.random.randint(1e6) if seed is None else seed
        self._transforms = tuple(transforms)
        self._pass = 0
        self._order = self._new_order()

    def _new_order(self):
        if not self.shuffle or self._pass == 0:
            return np.arange(self.n)
        return np.random.RandomState(self.seed + self._pass).permutation(self.n)

    def __len__(self):
        if self.batch_size is None:
            return self.n
        return (self.n + self.batch_size - 1) // self.batch_size

    def __getitem__(self, idx):
        if not 0 <= idx < len(self):
            raise IndexError(f"batch {idx} out of range: this dataset has {len(self)} batches")
        if self.batch_size is None:
            item = self._sample(int(self._order[idx]))
            item = item[0] if len(item) == 1 else item
        else:
            rows = self._order[idx * self.batch_size:(idx + 1) * self.batch_size]
            item = _stack([self._sample(int(i)) for i in rows])
        for fn in self._transforms:
            item = fn(*item) if isinstance(item, tuple) else fn(item)
        return item

    def on_epoch_end(self):
        self._pass += 1
        self._order = self._new_order()

    def __iter__(self):
        for idx in range(len(self)):
            yield self[idx]
        self.on_epoch_end()

    # -- the tf.data methods scripts chain on these datasets ---------------------------------

    def map(self, fn, num_parallel_calls=None, deterministic=None):
        """A dataset whose batches are ``fn(*batch)`` (``fn(batch)`` for an unlabelled one)."""
        clone = BatchDataset(self.n, self._sample, self.batch_size, self.shuffle, self.seed,
                             self._transforms + (fn,))
        vars(clone).update({k: v for k, v in vars(self).items()
                            if k in ("class_names", "file_paths")})
        return clone

    def prefetch(self, buffer_size=None):
        """Accepted for ``tf.data`` compatibility; batches are made on demand."""
        return self

    def cache(self, filename=""):
        """Accepted for ``tf.data`` compatibility; returns the same dataset."""
        return self

    def take(self, count):
        """The first ``count`` batches, as a list."""
        return [self[i] for i in range(min(int(count), len(self)))]

    def as_numpy_iterator(self):
        return iter(self)

    def cardinality(self):
        """The number of batches (elements when unbatched), as ``tf.data`` gives it: a 0-d
        int64 tensor."""
        return torch.tensor(len(self), dtype=torch.int64)


class BatchArray(np.ndarray):
    """A batch as a NumPy array that also answers ``.numpy()``, the ``tf.Tensor`` spelling
    Keras 3 programs use on these batches (``text_batch.numpy()[i]``): text batches stay
    NumPy string arrays, which torch tensors cannot hold."""

    def numpy(self):
        return np.asarray(self)


def _stack(samples):
    """Stack a list of per-sample tuples into a tuple of batch arrays (a lone array for
    one-element tuples)."""
    parts = tuple(np.stack([s[k] for s in samples]).view(BatchArray)
                  for k in range(len(samples[0])))
    return parts[0] if len(parts) == 1 else parts
