"""CIFAR-10 / CIFAR-100 from the Keras cache: the python-version batches, read as plain data.

Keras 2 leaves the extracted folder at ``<cache>/datasets/cifar-10-batches-py`` (archive
``cifar-10-batches-py.tar.gz``); Keras 3 at ``<cache>/datasets/cifar-10-batches-py-target/
cifar-10-batches-py`` (archive ``cifar-10-batches-py-target_archive``). kaffe looks for both, and
for the archive under its own name ``cifar-10-python.tar.gz``; an archive found is extracted the
Keras 2 way. The batches are Python 2 pickles of ``{b"data": uint8 (N, 3072), b"labels": [...]}``,
read with :mod:`kaffe.datasets.safe_pickle`.
"""
import os

import numpy as np

from kaffe.config import image_data_format
from kaffe.datasets import keras_cache, safe_pickle
from kaffe.utils import file_utils


def batches_folder(key, folder_name):
    """The extracted ``folder_name`` (``cifar-10-batches-py``) in the Keras cache, extracting a
    cached archive if needed; the missing-file error names the archive URL, path and size."""
    datadir = file_utils.cache_folder("datasets")
    keras2 = os.path.join(datadir, folder_name)
    keras3 = os.path.join(datadir, folder_name + "-target")
    for folder in (keras2, os.path.join(keras3, folder_name)):
        if os.path.isdir(folder):
            return folder
    archives = [keras2 + ".tar.gz", keras3 + "_archive",
                os.path.join(datadir, keras_cache.FILES[key].fname)]
    for archive in archives:
        if os.path.isfile(archive):
            keras_cache.read_checked(
                key, archive, lambda path: file_utils.extract_archive(path, datadir, "tar"))
            if os.path.isdir(keras2):
                return keras2
            raise file_utils.CorruptCachedFileError(
                f"{archive} was extracted but holds no {folder_name}/ folder: not the CIFAR "
                f"python archive ({keras_cache.FILES[key].origin}).")
    spec = keras_cache.FILES[key]
    return _raise_missing(spec, archives[2], [keras2 + "/", archives[0], archives[1]])


def _raise_missing(spec, expected, also):
    raise file_utils.missing_file_error(spec.origin, expected, spec.size, also=also)


def load_batch(fpath, label_key="labels"):
    """``(data uint8 (N, 3, 32, 32), labels list)`` from one CIFAR python batch file."""
    batch = safe_pickle.load_pickle(fpath, encoding="bytes")
    if not isinstance(batch, dict):
        raise ValueError(f"{fpath}: expected a pickled dict of a CIFAR batch, found "
                         f"{type(batch).__name__}")
    batch = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    for key in ("data", label_key):
        if key not in batch:
            raise ValueError(f"{fpath}: a CIFAR batch needs the key {key!r}; found "
                             f"{sorted(batch)}")
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{fpath}: CIFAR data has shape {data.shape}, expected (N, 3072)")
    labels = batch[label_key]
    if len(labels) != len(data):
        raise ValueError(f"{fpath}: {len(data)} images but {len(labels)} {label_key}")
    return data.reshape(len(data), 3, 32, 32), labels


def finish(x_train, y_train, x_test, y_test):
    """Keras's last steps: labels as ``(N, 1)`` uint8 columns, images channels-last if the
    image data format says so."""
    y_train = np.reshape(np.asarray(y_train, dtype=np.uint8), (len(y_train), 1))
    y_test = np.reshape(np.asarray(y_test, dtype=np.uint8), (len(y_test), 1))
    if image_data_format() == "channels_last":
        x_train = x_train.transpose(0, 2, 3, 1)
        x_test = x_test.transpose(0, 2, 3, 1)
    return (x_train, y_train), (x_test.astype(x_train.dtype), y_test)
