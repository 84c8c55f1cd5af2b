"""Where Keras keeps each dataset it downloads, and how to read one from there with a clear word
when it is missing or damaged.

The table holds what Keras's loaders pass to ``get_file``: file name, URL, sha256 and size. A
cached file that cannot be read is reported with its hash against the expected one (so a
truncated download is named as such); a file that reads well but hashes differently (a
hand-made subset, another release) is used, with a warning.
"""
import logging
import os
from typing import NamedTuple

from kaffe.utils import file_utils

logger = logging.getLogger(__name__)

_TF_DATASETS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


class KerasFile(NamedTuple):
    """One file Keras downloads: cache name, URL, sha256 (or md5) hex digest, size in bytes."""
    fname: str
    origin: str
    file_hash: str = None
    size: int = None
    cache_subdir: str = "datasets"


FILES = {
    "mnist": KerasFile("mnist.npz", _TF_DATASETS + "mnist.npz",
                       "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                       11490434),
    "imdb": KerasFile("imdb.npz", _TF_DATASETS + "imdb.npz",
                      "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
                      17464789),
    "imdb_word_index": KerasFile("imdb_word_index.json", _TF_DATASETS + "imdb_word_index.json",
                                 "bfafd718b763782e994055a2d397834f", 1641221),
    "reuters": KerasFile("reuters.npz", _TF_DATASETS + "reuters.npz",
                         "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
                         2110848),
    "reuters_word_index": KerasFile("reuters_word_index.json",
                                    _TF_DATASETS + "reuters_word_index.json",
                                    "4d44cc38712099c9e383dc6e5f11a921", 550378),
    "boston_housing": KerasFile("boston_housing.npz", _TF_DATASETS + "boston_housing.npz",
                                "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5",
                                57026),
    "cifar10": KerasFile("cifar-10-python.tar.gz",
                         "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                         "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                         170498071),
    "cifar100": KerasFile("cifar-100-python.tar.gz",
                          "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                          "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
                          169001437),
    **{f"fashion_mnist/{name}": KerasFile(name, _TF_DATASETS + name, None, size,
                                          os.path.join("datasets", "fashion-mnist"))
       for name, size in (("train-labels-idx1-ubyte.gz", 29515),
                          ("train-images-idx3-ubyte.gz", 26421880),
                          ("t10k-labels-idx1-ubyte.gz", 5148),
                          ("t10k-images-idx3-ubyte.gz", 4422102))},
}


def cached_path(key, fname=None):
    """Path of dataset file ``key`` in the Keras cache, ``fname`` overriding the cache name
    (Keras's ``path=`` argument); ``None`` when absent."""
    spec = FILES[key]
    path = os.path.join(file_utils.cache_folder(spec.cache_subdir), fname or spec.fname)
    return path if os.path.exists(path) else None


def require(key, fname=None):
    """Like :func:`cached_path`, but a missing file raises the one error naming URL, path and
    size."""
    path = cached_path(key, fname)
    if path is None:
        spec = FILES[key]
        expected = os.path.join(file_utils.cache_folder(spec.cache_subdir), fname or spec.fname)
        raise file_utils.missing_file_error(spec.origin, expected, spec.size)
    return path


def read_checked(key, path, reader):
    """``reader(path)``; if it fails, the error names the file and its hash against Keras's;
    if it succeeds on a file whose hash differs, a warning says so."""
    spec = FILES[key]
    try:
        result = reader(path)
    except file_utils.CorruptCachedFileError:
        raise
    except Exception as error:
        if type(error).__name__ == "UnsafePickleError":
            raise
        problem = _mismatch(spec, path) or f"{path} has the expected hash"
        raise file_utils.CorruptCachedFileError(
            f"cannot read the cached {key} file {path}: {error}. {problem}; the download is "
            f"truncated or corrupt. Delete it and download {spec.origin} again.") from error
    problem = _mismatch(spec, path)
    if problem:
        logger.warning("%s; using it, since it reads as a valid %s file.", problem, key)
    return result


def _mismatch(spec, path):
    if spec.file_hash is None or not os.path.isfile(path):
        return None
    return file_utils.hash_mismatch(path, spec.file_hash, expected_size=spec.size)
