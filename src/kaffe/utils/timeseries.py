"""``keras.utils.timeseries_dataset_from_array``: sliding windows over an array, Keras 3's
windows and targets, as a :class:`~kaffe.utils.batch_dataset.BatchDataset`."""
import numpy as np

from kaffe.utils.batch_dataset import BatchDataset


def _check(name, value, ok, why):
    if not ok:
        raise ValueError(f"`{name}` {why}. Received: {name}={value}")


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None):
    """Windows ``data[start + p + k * sampling_rate]`` for ``k < sequence_length`` and start
    positions ``p = 0, sequence_stride, ...`` within ``data[start_index:end_index]``; the target
    of a window is ``targets[start_index:][p]``. ``shuffle`` orders the windows by
    ``np.random.RandomState(seed)`` as Keras does first (a ``tf.data`` buffer shuffle follows in
    Keras, which kaffe replaces by a seeded reshuffle each pass)."""
    n = len(data)
    if start_index:
        _check("start_index", start_index, 0 <= start_index < n,
               f"must be 0 or greater and lower than the length of the data ({n})")
    if end_index:
        _check("end_index", end_index, 0 < end_index < n and not (
            start_index and end_index <= start_index),
            f"must be higher than 0 and start_index and lower than the length of the data ({n})")
    _check("sampling_rate", sampling_rate, 0 < sampling_rate < n,
           f"must be higher than 0 and lower than the length of the data ({n})")
    _check("sequence_stride", sequence_stride, 0 < sequence_stride < n,
           f"must be higher than 0 and lower than the length of the data ({n})")
    start = start_index or 0
    end = n if end_index is None else end_index
    count = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        count = min(count, len(targets))
    positions = np.arange(0, max(count, 0), sequence_stride)
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(positions)
    window = np.arange(sequence_length) * sampling_rate
    data_slice = np.asarray(data[start:end])
    target_slice = None if targets is None else np.asarray(targets[start:end])

    def sample(i):
        p = positions[i]
        if target_slice is None:
            return (data_slice[p + window],)
        return data_slice[p + window], target_slice[p]
    return BatchDataset(len(positions), sample, batch_size, shuffle=shuffle, seed=seed or 0)
