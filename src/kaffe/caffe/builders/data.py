"""Caffe's data layers: ``HDF5Data``, ``Data`` (LMDB / LevelDB of ``Datum`` records), ``ImageData``
(a ``path label`` list of image files), ``MemoryData`` (arrays handed in from Python).

A data layer has no bottoms; each ``forward()`` returns the next batch as float32 tensors (image
data ``N x C x H x W`` in Caffe's BGR order, labels ``(N,)``), going round the source when it
ends, as Caffe does. Top shapes are known at build time without consuming a batch. Relative
``source`` paths are opened against the current directory, as Caffe does (run from the
prototxt's folder). ``Data`` and ``ImageData`` read and transform their batches on a background
thread (``data_param.prefetch`` batches ahead), started at the first forward. In a net on a CUDA
device (``output_device``) that thread also pins each batch (page-locked host memory), so the
forward's copy to the device runs asynchronously, as Caffe's prefetch into pinned memory does.

Data-parallel solvers split the records as Caffe's multi-GPU training does (``DataLayer::Skip``
and ``HDF5DataLayer::Skip`` in Caffe 1.0): in the TRAIN phase, solver ``rank`` of ``count``
keeps the records whose running offset satisfies ``offset % count == rank`` -- records
``rank, rank + count, rank + 2 * count, ...``, strided record by record (not batch by batch),
so one step of all solvers together reads the ``count * batch_size`` consecutive records a
single solver with that batch would read. TEST-phase layers never skip (only rank 0 tests).
Caffe's ``ImageData`` does not split (it only warns); kaffe's does, so that every image is read
once per pass over the list.
"""
import contextlib
import logging

import numpy as np
import torch

from kaffe.caffe.builders.registry import CaffeLayer, register
from kaffe.data import datum as _datum
from kaffe.data import db as _db
from kaffe.data import hdf5 as _hdf5
from kaffe.data import imagelist as _imagelist
from kaffe.data import images as _images
from kaffe.data.errors import DataSourceError
from kaffe.data.prefetch import Prefetcher
from kaffe.data.transform import DataTransformer

log = logging.getLogger("kaffe")


def _shuffle_rng():
    """A numpy generator seeded from torch's global RNG, so ``torch.manual_seed`` (the solver's
    ``random_seed``) makes shuffling repeatable. Drawn only by layers that shuffle."""
    return np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, ())))


_SPLIT = {"rank": 0, "count": 1}   # Caffe::solver_rank() / Caffe::solver_count()


@contextlib.contextmanager
def solver_split(rank, count):
    """Data layers built inside this block are solver ``rank`` of ``count`` (a data-parallel
    solver builds its train net here): in the TRAIN phase they keep records
    ``rank, rank + count, ...``."""
    if not 0 <= int(rank) < int(count):
        raise ValueError(f"solver_split: rank must be in [0, count); received rank {rank}, "
                         f"count {count}.")
    saved = dict(_SPLIT)
    _SPLIT.update(rank=int(rank), count=int(count))
    try:
        yield
    finally:
        _SPLIT.update(saved)


class _RecordSplit:
    """Caffe's ``Skip()`` / ``offset_``: how many records to pass over before the next one this
    solver keeps."""

    def __init__(self, phase):
        train = phase == "TRAIN"
        self.rank, self.count = (_SPLIT["rank"], _SPLIT["count"]) if train else (0, 1)
        self.offset = 0

    def to_skip(self):
        """Records to pass over now; counts them and the kept one that follows."""
        n = (self.rank - self.offset) % self.count
        self.offset += n + 1
        return n


def _as_tensors(arrays):
    return [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays]


def _pin(tensor):
    """Page-locked copy of a host tensor (CUDA's asynchronous copies need one)."""
    return tensor.pin_memory()


class _DataLayer(CaffeLayer):
    """Base of the layers that produce batches: fixed ``shapes`` per top, ``next_batch()``
    returns one numpy array (or host tensor) per top. ``output_device`` (set when the net is
    placed on a device): where the tops go."""
    data_layer = True
    output_device = None

    def top_shapes(self, bottom_shapes):
        return [tuple(s) for s in self.shapes]

    def next_batch(self):
        raise NotImplementedError

    def forward(self, *bottoms):
        tops = _as_tensors(self.next_batch())
        if self.output_device is None:
            return tops
        return [t.to(self.output_device, non_blocking=t.is_pinned()) for t in tops]


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
        try:
            self.files = _hdf5.read_hdf5_list(p.source)
        except DataSourceError as err:
            raise type(err)(f"HDF5Data layer '{param.name}': {err}") from None
        self.shuffle = bool(p.shuffle)
        self._rng = _shuffle_rng() if self.shuffle else None
        self._file_order = np.arange(len(self.files))
        if self.shuffle:
            self._rng.shuffle(self._file_order)
        self._file_pos = 0
        self._load(self._file_order[0])
        self.shapes = [(self.batch_size,) + a.shape[1:] for a in self._arrays]
        self.split = _RecordSplit(phase)

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

    def _take(self, parts, count, keep=True):
        """Move ``count`` rows on, appending them to ``parts`` when ``keep``."""
        while count:
            n = min(count, len(self._rows) - self._row)
            if keep:
                take = self._rows[self._row:self._row + n]
                for part, array in zip(parts, self._arrays):
                    part.append(array[take])
            self._row += n
            count -= n
            if self._row == len(self._rows):
                self._end_of_file()

    def next_batch(self):
        parts = [[] for _ in self._arrays]
        if self.split.count == 1:
            self._take(parts, self.batch_size)
        else:
            for _ in range(self.batch_size):
                self._take(parts, self.split.to_skip(), keep=False)
                self._take(parts, 1)
        out = [np.concatenate(p) for p in parts]
        for i, (a, shape) in enumerate(zip(out, self.shapes)):
            if a.shape[1:] != tuple(shape[1:]):
                raise ValueError(
                    f"HDF5Data layer '{self.name}': dataset '{self.param.top[i]}' has rows of "
                    f"shape {a.shape[1:]} in {self.files[self._file_order[self._file_pos]]!r} "
                    f"but {tuple(shape[1:])} in the first file; all files must agree.")
        return out


# ------------------------------------------------------------------------------ prefetching base

class _PrefetchingLayer(_DataLayer):
    """A data layer whose batches are made by ``make_batch()`` on a background thread
    (``depth`` batches ahead), started at the first forward. ``close()`` stops it."""
    depth = 4
    _prefetcher = None

    def next_batch(self):
        if self._prefetcher is None:
            make = self.make_batch
            device = self.output_device
            if device is not None and device.type == "cuda":
                make = self._make_pinned_batch
            self._prefetcher = Prefetcher(make, self.depth, self.thread_setup,
                                          name=f"kaffe-{self.param.type}-{self.name}")
        return self._prefetcher.get()

    def _make_pinned_batch(self):
        """A batch as pinned host tensors (on the prefetch thread, off the training loop)."""
        return [_pin(t) for t in _as_tensors(self.make_batch())]

    def thread_setup(self):
        """Runs on the prefetch thread before the first batch."""

    def make_batch(self):
        raise NotImplementedError

    def close(self):
        if self._prefetcher is not None:
            self._prefetcher.close()
            self._prefetcher = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _transform_images(transformer, images, labels, where):
    """Transformed batch + labels; every image must share the first one's shape."""
    first = images[0].shape
    for im, (key, _) in zip(images, labels):
        if im.shape != first:
            key = f"record {key.decode(errors='replace')!r}" if isinstance(key, bytes) else key
            raise DataSourceError(f"{where}: {key} has shape {'x'.join(map(str, im.shape))} "
                                  f"but the batch's first image {'x'.join(map(str, first))}; "
                                  f"a batch needs one size (resize or crop the images).")
    data = transformer.batch(images)
    return data, np.array([lab for _, lab in labels], np.float32)


# ------------------------------------------------------------------------------ Data

@register("Data")
class Data(_PrefetchingLayer):
    """Datum records of an LMDB or LevelDB (``data_param``: ``source``, ``backend``,
    ``batch_size``, ``rand_skip``, ``prefetch``), read in key order and going round at the end,
    transformed by ``transform_param``. Tops: data ``N x C x h x w`` and, optionally, label
    ``(N,)``. A ``backend`` left unset is detected from the folder (Caffe's default LEVELDB
    would refuse an LMDB)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.data_param
        where = f"Data layer '{param.name}'"
        if len(param.top) not in (1, 2):
            raise ValueError(f"{where} has {len(param.top)} tops; it gives data and optionally "
                             f"label.")
        self.batch_size = _positive_batch_size(param, p.batch_size, "data_param")
        backend = _db.normalize_backend(p.backend) if p.HasField("backend") else None
        try:
            self.db = _db.open_db(p.source, backend)
        except DataSourceError as err:
            raise type(err)(f"{where}: {err}") from None
        self.depth = max(1, p.prefetch)
        self.transformer = DataTransformer(param.transform_param, phase, where)
        self._color_flag = self.transformer.color_flag   # read per record: looked up once
        key, value = self.db.first()
        first = self._decode(self._parse(key, value))
        self.shapes = [(self.batch_size,) + self.transformer.output_shape(first.shape)]
        if len(param.top) == 2:
            self.shapes.append((self.batch_size,))
        self.skip = int(_shuffle_rng().integers(p.rand_skip)) if p.rand_skip else 0
        self.split = _RecordSplit(phase)
        self._where = where
        self._cursor = None

    def _parse(self, key, value):
        try:
            return _datum.parse_datum(value)
        except DataSourceError:   # name the record only when it is bad (not per record)
            return _datum.parse_datum(value, f"record {key.decode(errors='replace')!r} of "
                                             f"{self.db.path!r}")

    def _decode(self, datum):
        if datum.encoded:
            img = _datum.datum_to_image(datum, self._color_flag)
            return img.transpose(2, 0, 1)
        if self._color_flag is not None and not getattr(self, "_warned", False):
            self._warned = True
            log.warning("%s: force_color / force_gray apply only to encoded Datums; ignored.",
                        self.param.name)
        array = _datum.datum_to_array(datum)
        return array if array.dtype == np.uint8 else array.astype(np.float32)

    def thread_setup(self):
        self._cursor = self.db.cursor()
        if self.skip:
            self._cursor.skip(self.skip)

    def make_batch(self):
        images, labels = [], []
        split = self.split.count > 1   # one solver: no record is skipped
        for _ in range(self.batch_size):
            if split:
                self._cursor.skip(self.split.to_skip())
            key, value = self._cursor.next()
            datum = self._parse(key, value)
            images.append(self._decode(datum))
            labels.append((key, datum.label))
        data, label = _transform_images(self.transformer, images, labels, self._where)
        return [data, label][:len(self.param.top)]

    def close(self):
        super().close()
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None


# ------------------------------------------------------------------------------ ImageData

@register("ImageData")
class ImageData(_PrefetchingLayer):
    """Images named in a ``path label`` list (``image_data_param``: ``source``,
    ``root_folder`` (joined by plain concatenation, as Caffe), ``batch_size``, ``shuffle``,
    ``new_height`` / ``new_width``, ``is_color``, ``rand_skip``), read as Caffe does (BGR,
    OpenCV resize) and transformed by ``transform_param``. Every listed file is checked when
    the net is built: a missing one is an error naming its line, unless
    ``ImageData.skip_missing_images`` is set true (then those lines are left out with a
    warning)."""
    skip_missing_images = False

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.image_data_param
        where = f"ImageData layer '{param.name}'"
        if len(param.top) != 2:
            raise ValueError(f"{where} needs two tops (data and label); it has "
                             f"{len(param.top)}.")
        if (p.new_height > 0) != (p.new_width > 0):
            raise ValueError(f"{where}: set new_height and new_width together (received "
                             f"{p.new_height} x {p.new_width}).")
        self.batch_size = _positive_batch_size(param, p.batch_size, "image_data_param")
        self.root, self.size, self.is_color = p.root_folder, (p.new_height, p.new_width), \
            bool(p.is_color)
        try:
            lines = _imagelist.read_image_list(p.source)
        except DataSourceError as err:
            raise type(err)(f"{where}: {err}") from None
        absent = _imagelist.check_images_exist(lines, self.root, p.source)
        if absent and not self.skip_missing_images:
            raise _imagelist.missing_images_error(
                absent, self.root, p.source, f"({where}; set kaffe.caffe.builders.data.ImageData."
                f"skip_missing_images = True to leave such lines out with a warning.)")
        for path, _, number in absent:
            log.warning("%s: %s:%d: image %r not found; skipped", where, p.source, number,
                        self.root + path)
        missing_lines = {n for _, _, n in absent}
        self.lines = [(path, label) for path, label, n in lines if n not in missing_lines]
        if not self.lines:
            raise DataSourceError(f"{where}: no image of {p.source!r} was found.")
        self.shuffle = bool(p.shuffle)
        self._rng = _shuffle_rng() if (self.shuffle or p.rand_skip) else None
        if self.shuffle:
            self._rng.shuffle(self.lines)
        self.pos = int(self._rng.integers(p.rand_skip)) % len(self.lines) if p.rand_skip else 0
        self.transformer = DataTransformer(param.transform_param, phase, where)
        first = self._read(self.pos)
        self.shapes = [(self.batch_size,) + self.transformer.output_shape(first.shape),
                       (self.batch_size,)]
        self.split = _RecordSplit(phase)
        self._where = where

    def _next_line(self):
        self.pos += 1
        if self.pos >= len(self.lines):
            self.pos = 0
            if self.shuffle:
                self._rng.shuffle(self.lines)

    def _read(self, index):
        path = self.lines[index][0]
        img = _images.read_image(self.root + path, self.size[0], self.size[1], self.is_color)
        return img.transpose(2, 0, 1)

    def make_batch(self):
        images, labels = [], []
        for _ in range(self.batch_size):
            for _ in range(self.split.to_skip()):
                self._next_line()
            images.append(self._read(self.pos))
            path, label = self.lines[self.pos]
            labels.append((f"image {path!r}", label))
            self._next_line()
        return list(_transform_images(self.transformer, images, labels, self._where))


# ------------------------------------------------------------------------------ MemoryData

@register("MemoryData")
class MemoryData(_DataLayer):
    """Arrays handed in from Python (pycaffe's ``net.set_input_arrays``): call
    ``layer.reset(data, labels)`` with ``data`` ``N x channels x height x width`` float32 and
    ``labels`` of N values, N a multiple of ``batch_size``; each forward gives the next
    ``batch_size`` rows, going round. Data is used as given (no transform), as in Caffe."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.memory_data_param
        self.batch_size = _positive_batch_size(param, p.batch_size, "memory_data_param")
        self.item_shape = (int(p.channels), int(p.height), int(p.width))
        self.shapes = [(self.batch_size,) + self.item_shape, (self.batch_size,)]
        self._data = None

    def reset(self, data, labels):
        data = np.ascontiguousarray(data, dtype=np.float32)
        labels = np.ascontiguousarray(labels, dtype=np.float32).reshape(-1)
        where = f"MemoryData layer '{self.name}'"
        if data.ndim != 4 or data.shape[1:] != self.item_shape:
            raise ValueError(f"{where}: data must be N x {' x '.join(map(str, self.item_shape))}"
                             f" (memory_data_param); received shape {data.shape}.")
        if len(labels) != len(data):
            raise ValueError(f"{where}: {len(data)} data rows but {len(labels)} labels.")
        if len(data) == 0 or len(data) % self.batch_size:
            raise ValueError(f"{where}: the number of rows ({len(data)}) must be a positive "
                             f"multiple of batch_size {self.batch_size}.")
        self._data, self._labels, self._pos = data, labels, 0

    set_input_arrays = reset

    def next_batch(self):
        if self._data is None:
            raise RuntimeError(f"MemoryData layer '{self.name}' has no data yet; call "
                               f"net.layer_dict['{self.name}'].reset(data, labels) first.")
        b = slice(self._pos, self._pos + self.batch_size)
        out = [self._data[b], self._labels[b]]
        self._pos = (self._pos + self.batch_size) % len(self._data)
        return out[:len(self.param.top)]
