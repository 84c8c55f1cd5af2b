"""Caffe's data layers: ``HDF5Data``, ``Data`` (LMDB / LevelDB of ``Datum`` records), ``ImageData``
(a ``path label`` list of image files), ``MemoryData`` (arrays handed in from Python).

A data layer has no bottoms; each ``forward()`` returns the next batch as float32 tensors (image
data ``N x C x H x W`` in Caffe's BGR order, labels ``(N,)``), going round the source when it
ends, as Caffe does. Top shapes are known at build time without consuming a batch. Relative
``source`` paths are opened against the current directory, as Caffe does (run from the
prototxt's folder). ``Data`` and ``ImageData`` read and transform their batches on a background
thread (``data_param.prefetch`` batches ahead), started at the first forward.
"""
import numpy as np
import torch

from kaffe.caffe.layers.registry import CaffeLayer, register
from kaffe.data import hdf5 as _hdf5


def _shuffle_rng():
    """A numpy generator seeded from torch's global RNG, so ``torch.manual_seed`` (the solver's
    ``random_seed``) makes shuffling repeatable. Drawn only by layers that shuffle."""
    return np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, ())))


class _DataLayer(CaffeLayer):
    """Base of the layers that produce batches: fixed ``shapes`` per top, ``next_batch()``
    returns one numpy array per top."""
    data_layer = True

    def top_shapes(self, bottom_shapes):
        return [tuple(s) for s in self.shapes]

    def next_batch(self):
        raise NotImplementedError

    def forward(self, *bottoms):
        return [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
                for a in self.next_batch()]


def _positive_batch_size(param, value, field):
    if value <= 0:
        raise ValueError(f"{param.type} layer '{param.name}': {field}.batch_size must be "
                         f"positive; received {value}.")
    return int(value)


@register("HDF5Data")
class HDF5Data(_DataLayer):
    """Rows of the HDF5 files listed in ``hdf5_data_param.source``: one dataset per top, named
    as the top; ``batch_size`` rows per forward, moving to the next file at the end of one;
    ``shuffle`` shuffles the file order and the rows within each file (at every pass)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.hdf5_data_param
        if param.HasField("transform_param"):
            raise ValueError(f"HDF5Data layer '{param.name}' does not transform data; remove "
                             f"its transform_param (HDF5 data is used as stored).")
        if not param.top:
            raise ValueError(f"HDF5Data layer '{param.name}' needs at least one top (each top "
                             f"names a dataset in the HDF5 files).")
        self.batch_size = _positive_batch_size(param, p.batch_size, "hdf5_data_param")
        self.source = p.source
        self.files = _hdf5.read_hdf5_list(p.source)
        self.shuffle = bool(p.shuffle)
        self._rng = _shuffle_rng() if self.shuffle else None
        self._file_order = np.arange(len(self.files))
        if self.shuffle:
            self._rng.shuffle(self._file_order)
        self._file_pos = 0
        self._load(self._file_order[0])
        self.shapes = [(self.batch_size,) + a.shape[1:] for a in self._arrays]

    def _load(self, index):
        self._arrays = _hdf5.load_hdf5_file(self.files[index], list(self.param.top), self.source)
        self._rows = np.arange(self._arrays[0].shape[0])
        if self.shuffle:
            self._rng.shuffle(self._rows)
        self._row = 0

    def _end_of_file(self):
        if len(self.files) > 1:
            self._file_pos += 1
            if self._file_pos == len(self.files):
                self._file_pos = 0
                if self.shuffle:
                    self._rng.shuffle(self._file_order)
            self._load(self._file_order[self._file_pos])
        else:
            self._row = 0
            if self.shuffle:
                self._rng.shuffle(self._rows)

    def next_batch(self):
        parts = [[] for _ in self._arrays]
        remaining = self.batch_size
        while remaining:
            n = min(remaining, len(self._rows) - self._row)
            take = self._rows[self._row:self._row + n]
            for part, array in zip(parts, self._arrays):
                part.append(array[take])
            self._row += n
            remaining -= n
            if self._row == len(self._rows):
                self._end_of_file()
        out = [np.concatenate(p) for p in parts]
        for i, (a, shape) in enumerate(zip(out, self.shapes)):
            if a.shape[1:] != tuple(shape[1:]):
                raise ValueError(
                    f"HDF5Data layer '{self.name}': dataset '{self.param.top[i]}' has rows of "
                    f"shape {a.shape[1:]} in {self.files[self._file_order[self._file_pos]]!r} "
                    f"but {tuple(shape[1:])} in the first file; all files must agree.")
        return out
