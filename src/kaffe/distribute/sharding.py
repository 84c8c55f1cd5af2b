"""Give each process its part of every batch, so each sample is seen once per epoch.

Batch sizes are GLOBAL, as in Keras 3's ``DataParallel``: a batch of ``batch_size`` samples
(or one batch yielded by a generator / ``Sequence`` / ``DataLoader``) is split into
``world_size`` contiguous parts, part ``r`` to rank ``r`` (sizes differ by at most one). The
job therefore takes the same steps over the same batches as one process would, and the
gradients, averaged with the right weights, are the same.

How each source is split:

- arrays (and dicts/lists of them): the order of an epoch is drawn once, by rank 0, and
  broadcast; each rank slices its part of each batch. No sample is copied to another process.
- torch map-style ``Dataset`` (or a ``DataLoader`` over one): rank 0's batches of indices are
  broadcast once per epoch and each rank's loader fetches only its part (with the loader's own
  workers, collate function and pinning).
- generators, ``Sequence`` and iterable datasets: every rank draws every batch and keeps its
  part (a ``Sequence``'s shuffled order comes from rank 0). They must yield the same batches in
  every process: ``fit`` gives all ranks rank 0's numpy and ``random`` states at its start, so
  pipelines using those agree; ones using other randomness must be seeded alike.
- a ``DataLoader`` whose sampler is a ``DistributedSampler`` was split by its author: its
  batches are used as they come (per-process batches).

A rank whose part of a short last batch is empty runs the step on one sample with weight 0,
so every rank takes part in every all-reduce.
"""
import collections

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset
from torch.utils.data.distributed import DistributedSampler

from kaffe.distribute import collectives
from kaffe.training import data_adapters as da

#: this rank's samples in a step and the samples of the whole (global) batch; ``local == 0``
#: marks a stand-in step (one sample, weight 0). ``total is None``: batches were split by the
#: user, gradients are plain means over ranks.
Share = collections.namedtuple("Share", "local total world")


def bounds(size, rank, world):
    """``[lo, hi)`` of rank's contiguous part of ``size`` samples (as ``torch.tensor_split``)."""
    base, extra = divmod(size, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def _cut(tensors, lo, hi):
    if tensors is None:
        return None
    return [None if t is None else t[lo:hi] for t in tensors]


def split_batch(xs, ys, sws, rank, world):
    """This rank's part of one global batch, with its ``Share``."""
    size = xs[0].shape[0]
    lo, hi = bounds(size, rank, world)
    share = Share(hi - lo, size, world)
    if hi == lo:  # a stand-in: first sample of the batch, weight 0
        lo, hi = 0, 1
    return _cut(xs, lo, hi), _cut(ys, lo, hi), _cut(sws, lo, hi), share


class ShardedArrays:
    """``ArrayData`` in global batches, each rank slicing its part."""

    def __init__(self, data, rank, world):
        self.data, self.rank, self.world = data, rank, world
        self.steps = data.steps

    def batches(self):
        data = self.data
        n, bs = data.num_samples, data.batch_size
        order = collectives.broadcast_permutation(n) if data.shuffle else None
        for start in range(0, n, bs):
            size = min(bs, n - start)
            lo, hi = bounds(size, self.rank, self.world)
            share = Share(hi - lo, size, self.world)
            if hi == lo:
                lo, hi = 0, 1
            pick = slice(start + lo, start + hi) if order is None else order[start + lo:start + hi]
            yield (da._take(data.xs, pick), da._take(data.ys, pick), da._take(data.sws, pick),
                   share)


class ShardedIndexLoader:
    """A ``DataLoader`` over a map-style dataset: rank 0's index batches, each rank loading
    only its part of each."""

    def __init__(self, loader, steps, convert, rank, world):
        self.loader, self.convert, self.rank, self.world = loader, convert, rank, world
        self.steps = steps if steps is not None else len(loader)

    def _my_loader(self, parts):
        lo = self.loader
        return DataLoader(lo.dataset, batch_sampler=parts, num_workers=lo.num_workers,
                          collate_fn=lo.collate_fn, pin_memory=lo.pin_memory,
                          timeout=lo.timeout, worker_init_fn=lo.worker_init_fn,
                          multiprocessing_context=lo.multiprocessing_context,
                          persistent_workers=False)

    def batches(self):
        mine = None
        if self.rank == 0:
            mine = [list(map(int, b)) for b in self.loader.batch_sampler]
        global_batches = collectives.broadcast_int_lists(mine if mine is not None else [])
        global_batches = global_batches[:self.steps]
        parts, shares = [], []
        for batch in global_batches:
            lo, hi = bounds(len(batch), self.rank, self.world)
            shares.append(Share(hi - lo, len(batch), self.world))
            parts.append(batch[lo:hi] if hi > lo else batch[:1])
        for share, batch in zip(shares, self._my_loader(parts)):
            yield self.convert(batch) + (share,)


class ShardedStream:
    """Generators, ``Sequence``s and iterable datasets: every rank draws every batch and keeps
    its part. A ``Sequence`` is read in an order rank 0 draws."""

    def __init__(self, data, rank, world):
        self.data, self.rank, self.world = data, rank, world
        self.steps = data.steps
        self._known_length = self.steps is not None
        self._is_sequence = data._is_sequence

    def _sequence_batches(self):
        source, steps = self.data.source, self.data.steps
        n = len(source)
        order = range(n)
        if self.data.shuffle:  # numpy's order, as one process draws it, rank 0's for all
            order = collectives.broadcast(torch.from_numpy(np.random.permutation(n))).tolist()
        for count, index in enumerate(order):
            if steps is not None and count >= steps:
                break
            yield self.data.convert(source[int(index)])
        if hasattr(source, "on_epoch_end"):
            source.on_epoch_end()

    def batches(self):
        inner = self._sequence_batches() if self._is_sequence else self.data.batches()
        while True:
            batch = next(inner, None)
            if not self._known_length:
                # Unknown length: the ranks agree on each step, so one running dry stops all
                # (rather than leaving the others waiting in an all-reduce).
                if not collectives.all_ranks(batch is not None):
                    return
            if batch is None:
                return
            yield split_batch(*batch, self.rank, self.world)


class PerProcessBatches:
    """Batches the user already split per process (a ``DistributedSampler``); plain means."""

    def __init__(self, data, world):
        self.data, self.world = data, world
        self.steps = data.steps

    def batches(self):
        for xs, ys, sws in self.data.batches():
            yield xs, ys, sws, Share(xs[0].shape[0], None, self.world)


def shard(data, rank, world):
    """The sharded form of what ``Trainer._make_data`` built."""
    if isinstance(data, da.ArrayData):
        return ShardedArrays(data, rank, world)
    source = data.source
    if isinstance(source, DataLoader) and not isinstance(source.dataset, IterableDataset) \
            and source.batch_sampler is not None:
        if isinstance(source.sampler, DistributedSampler):
            return PerProcessBatches(data, world)
        return ShardedIndexLoader(source, data.steps, data.convert, rank, world)
    return ShardedStream(data, rank, world)
