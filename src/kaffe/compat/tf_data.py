"""``tf.data.Dataset`` for in-memory data, enough for the usual input pipeline of a Keras
example: ``from_tensor_slices(x or (x, y))``, ``zip``, ``shuffle``, ``batch``, ``map``,
``repeat``, ``take``, ``prefetch`` / ``cache`` (accepted, nothing to do in memory). Iterating gives torch
tensors (a tuple for tuple elements); ``fit`` takes the dataset like any iterable of batches
and ``len(dataset)`` is its number of batches (elements before ``batch``).
"""
import math

import numpy as np
import torch


class Dataset:
    """A pipeline over arrays; each method returns a new ``Dataset``."""

    AUTOTUNE = -1

    def __init__(self, arrays, structure, steps=(), length="slices"):
        self._arrays, self._structure, self._steps = arrays, structure, tuple(steps)
        # None: repeats forever; "slices": one element per slice of the arrays
        self._length = len(_leaves(arrays[0])[0]) if length == "slices" else length

    @staticmethod
    def from_tensor_slices(tensors, name=None):
        structure = "tuple" if isinstance(tensors, tuple) else "dict" if isinstance(
            tensors, dict) else "single"
        items = (list(tensors) if structure == "tuple" else list(tensors.values())
                 if structure == "dict" else [tensors])
        # components may nest tuples and dicts (keras.io: ({"img": x, "ts": t}, {"score": y}))
        arrays = [_nested(a, _as_tensor) for a in items]
        leaves = [leaf for a in arrays for leaf in _leaves(a)]
        lengths = {len(a) for a in leaves}
        if len(lengths) != 1:
            raise ValueError(f"from_tensor_slices needs arrays of one length; received lengths "
                             f"{[len(a) for a in leaves]}.")
        keys = list(tensors) if structure == "dict" else None
        return Dataset(arrays, (structure, keys))

    from_tensors = from_tensor_slices

    @staticmethod
    def zip(datasets, name=None):
        """Several datasets side by side: each element is the tuple (or dict) of their elements,
        ending with the shortest (keras.io's SimSiam zips two augmented views of one data)."""
        if isinstance(datasets, Dataset):
            datasets = (datasets,)
        keys = list(datasets) if isinstance(datasets, dict) else None
        members = list(datasets.values()) if keys else list(datasets)
        if not members or not all(isinstance(d, Dataset) for d in members):
            raise TypeError(f"Dataset.zip expects a tuple or dict of Datasets. Received "
                            f"{type(datasets).__name__} of "
                            f"{[type(d).__name__ for d in members]}.")
        lengths = [d._length for d in members]
        known = [n for n in lengths if n is not None]
        zipped = Dataset.__new__(Dataset)
        zipped._arrays, zipped._steps = None, ()
        zipped._structure = ("dict", keys) if keys else ("tuple", None)
        zipped._length = min(known) if known else None
        zipped._members = members
        return zipped

    _members = None  # the datasets a zip() reads from, in place of arrays

    def _with(self, step, length):
        derived = Dataset.__new__(Dataset)
        derived.__dict__.update(self.__dict__)
        derived._steps, derived._length = self._steps + (step,), length
        return derived

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True, name=None):
        if self._length is None:  # endless: tf.data's buffer of buffer_size elements
            return self._with(("buffer_shuffle", seed, int(buffer_size)), None)
        return self._with(("shuffle", seed), self._length)

    def batch(self, batch_size, drop_remainder=False, **kwargs):
        n = (None if self._length is None else self._length // batch_size if drop_remainder
             else math.ceil(self._length / batch_size))
        return self._with(("batch", int(batch_size), drop_remainder), n)

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        return self._with(("map", map_func), self._length)

    def repeat(self, count=None, name=None):
        if count is None:
            return self._with(("repeat", None), None)
        return self._with(("repeat", int(count)),
                          None if self._length is None else self._length * int(count))

    def take(self, count, name=None):
        return self._with(("take", int(count)), min(int(count), self._length)
                          if self._length is not None else int(count))

    def prefetch(self, buffer_size=None, name=None):
        return self

    def cache(self, filename="", name=None):
        return self

    def make_one_shot_iterator(self):
        """TensorFlow 1's graph iterator: refused, naming what TensorFlow 2 code writes."""
        from kaffe.compat.import_hook import MissingAPIError
        raise MissingAPIError(
            "Dataset.make_one_shot_iterator() is TensorFlow 1's graph API (TensorFlow 2, which "
            "kaffe's tensorflow stand-in follows, removed it, and with it Keras 2's "
            "Input(tensor=iterator.get_next()) and compile(target_tensors=...)). Pass the "
            "dataset itself to fit(dataset, steps_per_epoch=...), or iterate it: "
            "for x, y in dataset: ... / next(iter(dataset)).")

    make_initializable_iterator = make_one_shot_iterator

    def __len__(self):
        if self._length is None:
            raise TypeError("The dataset repeats forever; it has no length.")
        return self._length

    def __iter__(self):
        return self._elements()

    def cardinality(self):
        """Elements (batches once batched) as a 0-d int64 tensor; -1 (tf.data.INFINITE_CARDINALITY)
        for a dataset that repeats forever."""
        return torch.tensor(-1 if self._length is None else self._length, dtype=torch.int64)

    def as_numpy_iterator(self):
        for element in self:
            yield _map_structure(element, lambda t: t.numpy())

    def _elements(self):
        """Apply the steps in order to a stream of elements (tuples of tensors)."""
        stream = self._source()
        for step in self._steps:
            stream = _STEPS[step[0]](stream, *step[1:])
        structure, keys = self._structure
        if any(step[0] == "map" for step in self._steps):
            structure = "mapped"
        for element in stream:
            yield _pack(element, structure, keys)

    def _source(self):
        def run():
            if self._members is not None:
                yield from zip(*self._members)
            else:
                yield from self._slices(None)
        return _Replayable(run)

    def _slices(self, order):
        n = len(_leaves(self._arrays[0])[0])
        for i in range(n) if order is None else order:
            yield tuple(_nested(a, lambda leaf: leaf[i]) for a in self._arrays)


def TextLineDataset(filenames, compression_type=None, buffer_size=None, num_parallel_reads=None,
                    name=None):
    """``tf.data.TextLineDataset``: one element per line of the text files, in order, without
    its line ending (UTF-8 text as ``str``; TensorFlow gives bytes, which kaffe's tf.strings
    and TextVectorization treat alike). Gzip/zlib files are refused by name."""
    if compression_type:
        raise ValueError(f"TextLineDataset: compression_type={compression_type!r} is not "
                         f"supported by kaffe's tf.data stand-in; decompress the files first.")
    if isinstance(filenames, (str, bytes, np.str_)):
        filenames = [filenames]
    lines = []
    for filename in list(filenames):
        path = filename.decode() if isinstance(filename, bytes) else str(filename)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines.extend(line.rstrip("\r\n") for line in f)
        except OSError as error:
            raise FileNotFoundError(f"TextLineDataset could not read {path!r}: {error}") from error
    return Dataset([np.array(lines, dtype=str)], ("single", None))


class _Replayable:
    """A stream that can be iterated again (for ``repeat``)."""

    def __init__(self, make):
        self.make = make

    def __iter__(self):
        return iter(self.make())


def _as_tensor(array):
    """Numbers as a torch tensor; text (str, bytes or object arrays) stays a NumPy array, whose
    slices and batches stay text for TextVectorization and tf.strings."""
    if isinstance(array, torch.Tensor):
        return array
    array = np.asarray(array)
    if array.dtype.kind in "USO":
        return array
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array))


def _pack(element, structure, keys):
    if structure == "dict":
        return dict(zip(keys, element))
    if structure == "single" or (structure == "mapped" and len(element) == 1):
        return element[0]
    return tuple(element)


def _map_structure(element, fn):
    return _nested(element, fn)


def _nested(value, fn):
    """``fn`` on each leaf of nested tuples and dicts (a list is a leaf: tf.data makes it a
    tensor)."""
    if isinstance(value, tuple):
        return tuple(_nested(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _nested(v, fn) for k, v in value.items()}
    return fn(value)


def _leaves(value):
    found = []
    _nested(value, found.append)
    return found


def _shuffle(stream, seed):
    def run():
        items = list(stream)
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))
        for i in torch.randperm(len(items), generator=gen).tolist():
            yield items[i]
    return _Replayable(run)


def _buffer_shuffle(stream, seed, buffer_size):
    """tf.data's shuffle of an endless stream: keep ``buffer_size`` elements, yield a random
    one and put the next element of the stream in its place."""
    def run():
        gen = torch.Generator()
        gen.manual_seed(int(seed) if seed is not None else int(torch.randint(2**31, ())))
        buffer = []
        for element in stream:
            if len(buffer) < max(buffer_size, 1):
                buffer.append(element)
                continue
            i = int(torch.randint(len(buffer), (), generator=gen))
            yield buffer[i]
            buffer[i] = element
        while buffer:
            yield buffer.pop(int(torch.randint(len(buffer), (), generator=gen)))
    return _Replayable(run)


def _batch(stream, size, drop_remainder):
    def run():
        chunk = []
        for element in stream:
            chunk.append(element)
            if len(chunk) == size:
                yield tuple(_stack(parts) for parts in zip(*chunk))
                chunk = []
        if chunk and not drop_remainder:
            yield tuple(_stack(parts) for parts in zip(*chunk))
    return _Replayable(run)


def _stack(parts):
    """Stack one component of a batch's elements; nested ones (a zip's tuples and dicts) part
    by part; text into a NumPy string array."""
    first = parts[0]
    if isinstance(first, (str, bytes, np.str_, np.bytes_, np.ndarray)):
        return np.stack(parts) if isinstance(first, np.ndarray) else np.array(parts)
    if isinstance(first, tuple):
        return tuple(_stack(p) for p in zip(*parts))
    if isinstance(first, dict):
        return {k: _stack([p[k] for p in parts]) for k in first}
    return torch.stack(parts)


def _map(stream, fn):
    def run():
        for element in stream:
            out = fn(*element)
            yield out if isinstance(out, tuple) else (out,)
    return _Replayable(run)


def _repeat(stream, count):
    def run():
        rounds = 0
        while count is None or rounds < count:
            yield from stream
            rounds += 1
    return _Replayable(run)


def _take(stream, count):
    def run():
        for i, element in enumerate(stream):
            if i >= count:
                break
            yield element
    return _Replayable(run)


_STEPS = {"shuffle": _shuffle, "buffer_shuffle": _buffer_shuffle, "batch": _batch, "map": _map,
          "repeat": _repeat, "take": _take}
