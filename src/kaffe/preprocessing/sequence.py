"""Keras 2 sequence preprocessing: ``pad_sequences``, ``skipgrams``, ``make_sampling_table``,
``TimeseriesGenerator``.

Same algorithms and outputs as ``keras.preprocessing.sequence`` (keras-preprocessing 1.1; Keras 3
keeps them as ``keras.utils.pad_sequences`` and ``keras.src.legacy.preprocessing.sequence``).

    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2).tolist()
    [[2, 3], [0, 4]]
"""
import json
import numbers
import random

import numpy as np

from kaffe.utils.sequence import PyDataset

__all__ = ["pad_sequences", "skipgrams", "make_sampling_table", "TimeseriesGenerator",
           "timeseries_generator_from_json"]

_SIDES = ("pre", "post")


def _is_number(x):
    return isinstance(x, (numbers.Number, np.number, np.bool_)) and not isinstance(x, str)


def _leaves(row):
    """Items of ``row``, descending into nested lists/tuples/arrays."""
    for item in row:
        if isinstance(item, (list, tuple, np.ndarray)):
            yield from _leaves(item)
        else:
            yield item


def _row_to_array(row, idx, dtype, numeric):
    """``np.asarray(row, dtype)``, or a ValueError naming row ``idx`` and the offending item."""
    try:
        return np.asarray(row, dtype=dtype)
    except (ValueError, TypeError) as err:
        if numeric:
            bad = next((item for item in _leaves(row) if not _is_number(item)), None)
            if bad is not None or any(item is None for item in _leaves(row)):
                raise ValueError(
                    f"row {idx} holds {bad!r} ({type(bad).__name__}); pad_sequences needs "
                    f"numbers for dtype={np.dtype(dtype).name!r}. To pad strings pass "
                    f"dtype=object or a string dtype such as '<U20' (and a string value)"
                ) from err
        raise ValueError(f"row {idx} cannot be read as an array of {np.dtype(dtype).name}: every "
                         f"row must be a list of numbers, or of equal-shaped arrays. Numpy said: "
                         f"{err}") from err


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Pad (or cut) a list of sequences to one length: array ``(len(sequences), maxlen, ...)``.

    Args:
        sequences: list (anything with ``len``) of sequences; each a list/array of numbers, or of
            equal-shaped arrays (the trailing shape comes from the first non-empty sequence).
        maxlen: output length; ``None`` uses the longest sequence.
        dtype: output dtype. ``object`` or a string dtype (``str``, ``'<U10'``) pads strings.
        padding: ``'pre'`` (default) or ``'post'``: where ``value`` goes in short sequences.
        truncating: ``'pre'`` (default: keep the last ``maxlen`` items) or ``'post'`` (keep the
            first ``maxlen``).
        value: padding value (a string needs a string or object dtype).

    Raises:
        ValueError: an unknown ``padding``/``truncating``, a string ``value`` with a numeric
            ``dtype``, a row that is not a sequence, a row holding something other than numbers
            (the message names the row and the item), or rows of differing trailing shapes.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable (a list of sequences, with len()). "
                         f"Received: {type(sequences).__name__}")
    for name, side in (("padding", padding), ("truncating", truncating)):
        if side not in _SIDES:
            raise ValueError(f'{name.capitalize()} type "{side}" not understood: expected '
                             f"{name}='pre' or {name}='post'")
    if maxlen is not None and (not isinstance(maxlen, (int, np.integer)) or maxlen < 0):
        raise ValueError(f"pad_sequences expected maxlen to be None or a non-negative integer. "
                         f"Received: maxlen={maxlen!r}")
    is_dtype_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    is_object = np.dtype(dtype) == np.dtype(object)
    if isinstance(value, str) and not is_object and not is_dtype_str:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
                         "You should set `dtype=object` for variable length strings.")
    numeric = not (is_dtype_str or is_object)

    lengths, sample_shape, found_first = [], (), False
    for idx, row in enumerate(sequences):
        if isinstance(row, (str, bytes)):
            raise ValueError(f"row {idx} is the string {row[:40]!r}, not a sequence of tokens: "
                             "turn texts into lists first (Tokenizer.texts_to_sequences)")
        try:
            lengths.append(len(row))
        except TypeError as err:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable at "
                             f"row {idx}: {row!r}") from err
        if not found_first and len(row):
            sample_shape = _row_to_array(row, idx, None if numeric else object,
                                         numeric=False).shape[1:]
            found_first = True
    if maxlen is None:
        maxlen = int(max(lengths, default=0))

    x = np.full((len(sequences), maxlen) + sample_shape, value, dtype=dtype)
    for idx, row in enumerate(sequences):
        if not len(row) or maxlen == 0:
            continue
        trunc = row[-maxlen:] if truncating == "pre" else row[:maxlen]
        trunc = _row_to_array(trunc, idx, dtype, numeric)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(f"Shape of sample {trunc.shape[1:]} of sequence at position {idx} "
                             f"is different from expected shape {sample_shape}")
        if padding == "post":
            x[idx, :len(trunc)] = trunc
        else:
            x[idx, -len(trunc):] = trunc
    return x


def make_sampling_table(size, sampling_factor=1e-5):
    """word2vec's keep-probability of the word of frequency rank ``i`` (index 0 treated as rank 1),
    ``min(1, sqrt(f / s) / (f / s))`` with Zipf frequencies
    ``f(rank) ~ 1 / (rank * (log(rank) + gamma) + 1/2 - 1 / (12 rank))``; a ``float64`` array of
    length ``size``, for ``skipgrams(sampling_table=...)``."""
    gamma = 0.577
    rank = np.arange(size)
    rank[0] = 1
    inv_fq = rank * (np.log(rank) + gamma) + 0.5 - 1.0 / (12.0 * rank)
    f = sampling_factor * inv_fq
    return np.minimum(1.0, f / np.sqrt(f))


def skipgrams(sequence, vocabulary_size, window_size=4, negative_samples=1.0, shuffle=True,
              categorical=False, sampling_table=None, seed=None):
    """Skip-gram pairs of a sequence of word indices, as Keras.

    Positive pairs ``[w_i, w_j]`` (label 1) for every ``j != i`` within ``window_size`` of ``i``
    (index 0 is a non-word and skipped; with ``sampling_table``, ``w_i`` is kept with probability
    ``sampling_table[w_i]``); then ``int(n_positive * negative_samples)`` negative pairs
    ``[w, random index in [1, vocabulary_size - 1]]`` (label 0); then both lists shuffled.
    Labels are ints, or ``[0, 1]`` / ``[1, 0]`` when ``categorical``.

    Randomness, as in Keras, comes from Python's global ``random`` module: ``seed`` only fixes the
    final shuffle (and re-seeds ``random`` with it); call ``random.seed(...)`` first to also fix
    the sampling and the negative words.

    Returns:
        ``(couples, labels)``: lists of ``[word, context]`` and of labels.
    """
    couples, labels = [], []
    for i, wi in enumerate(sequence):
        if not wi:
            continue
        if sampling_table is not None and sampling_table[wi] < random.random():
            continue
        for j in range(max(0, i - window_size), min(len(sequence), i + window_size + 1)):
            if j != i:
                wj = sequence[j]
                if not wj:
                    continue
                couples.append([wi, wj])
                labels.append([0, 1] if categorical else 1)

    if negative_samples > 0:
        num_negative = int(len(labels) * negative_samples)
        words = [c[0] for c in couples]
        random.shuffle(words)
        couples += [[words[i % len(words)], random.randint(1, vocabulary_size - 1)]
                    for i in range(num_negative)]
        labels += ([[1, 0]] if categorical else [0]) * num_negative

    if shuffle:
        if seed is None:
            seed = random.randint(0, 10 ** 7)
        random.seed(seed)
        random.shuffle(couples)
        random.seed(seed)
        random.shuffle(labels)
    return couples, labels


class TimeseriesGenerator(PyDataset):
    """Batches of windows over a time series, as ``keras.preprocessing.sequence``'s.

    Sample for target row ``t`` is ``data[t - length:t:sampling_rate]`` and its target is
    ``targets[t]``; ``t`` runs from ``start_index + length`` to ``end_index`` (default
    ``len(data) - 1``) in steps of ``stride``, ``batch_size`` rows per batch; ``shuffle`` draws
    ``batch_size`` random rows per batch (``np.random``); ``reverse`` flips time in each sample.

    >>> data = np.arange(50).reshape(50, 1)
    >>> gen = TimeseriesGenerator(data, data, length=10, sampling_rate=2, batch_size=2)
    >>> len(gen), gen[0][0][:, :, 0].tolist(), gen[0][1].tolist()
    (20, [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]], [[10], [11]])
    """

    def __init__(self, data, targets, length, sampling_rate=1, stride=1, start_index=0,
                 end_index=None, shuffle=False, reverse=False, batch_size=128, **kwargs):
        super().__init__(**kwargs)
        if len(data) != len(targets):
            raise ValueError(f"Data and targets have to be of same length. Data length is "
                             f"{len(data)} while target length is {len(targets)}")
        for name, val in (("length", length), ("sampling_rate", sampling_rate),
                          ("stride", stride), ("batch_size", batch_size)):
            if not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"TimeseriesGenerator expected a positive integer. Received: "
                                 f"{name}={val!r}")
        self.data, self.targets = data, targets
        self.length, self.sampling_rate, self.stride = length, sampling_rate, stride
        self._start_arg = start_index
        self.start_index = start_index + length
        self.end_index = len(data) - 1 if end_index is None else end_index
        self._end_arg = end_index
        self.shuffle, self.reverse, self.batch_size = shuffle, reverse, batch_size
        if self.start_index > self.end_index:
            raise ValueError(f"`start_index+length={self.start_index} > end_index="
                             f"{self.end_index}` is disallowed, as no part of the sequence would "
                             "be left to be used as current step.")

    def __len__(self):
        step = self.batch_size * self.stride
        return (self.end_index - self.start_index + step) // step

    def __getitem__(self, index):
        if self.shuffle:
            rows = np.random.randint(self.start_index, self.end_index + 1, size=self.batch_size)
        else:
            i = self.start_index + self.batch_size * self.stride * index
            rows = np.arange(i, min(i + self.batch_size * self.stride, self.end_index + 1),
                             self.stride)
        samples = np.array([self.data[row - self.length:row:self.sampling_rate] for row in rows])
        targets = np.array([self.targets[row] for row in rows])
        if self.reverse:
            return samples[:, ::-1, ...], targets
        return samples, targets

    def get_config(self):
        """Constructor arguments, ``data``/``targets`` as JSON strings. Unlike Keras (which stores
        ``start_index + length`` and so shifts a reloaded generator), ``start_index`` is the one
        passed in, so :func:`timeseries_generator_from_json` rebuilds the same generator."""
        def to_json(values, what):
            if type(values).__module__ == np.__name__:
                values = values.tolist()
            try:
                return json.dumps(values)
            except TypeError as err:
                raise TypeError(f"{what} not JSON serializable: {values!r}") from err

        return {"data": to_json(self.data, "Data"), "targets": to_json(self.targets, "Targets"),
                "length": self.length, "sampling_rate": self.sampling_rate,
                "stride": self.stride, "start_index": self._start_arg,
                "end_index": self._end_arg, "shuffle": self.shuffle, "reverse": self.reverse,
                "batch_size": self.batch_size}

    def to_json(self, **kwargs):
        """``{"class_name": "TimeseriesGenerator", "config": get_config()}`` as JSON."""
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()},
                          **kwargs)


def timeseries_generator_from_json(json_string):
    """Rebuild a :class:`TimeseriesGenerator` from :meth:`TimeseriesGenerator.to_json`
    (``data``/``targets`` come back as numpy arrays)."""
    config = dict(json.loads(json_string).get("config"))
    config["data"] = np.asarray(json.loads(config.pop("data")))
    config["targets"] = np.asarray(json.loads(config.pop("targets")))
    return TimeseriesGenerator(**config)
