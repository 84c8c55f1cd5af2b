"""MNIST handwritten digits, read from local IDX files (kaffe never downloads).

``load_data()`` returns what ``keras.datasets.mnist.load_data()`` returns: ``uint8`` arrays
``x_train (60000, 28, 28)``, ``y_train (60000,)``, ``x_test (10000, 28, 28)``, ``y_test (10000,)``.
"""
import logging
import os

from kaffe.datasets import _home, _idx, keras_cache
from kaffe.utils import file_utils

logger = logging.getLogger(__name__)

NAME = "mnist"
SAMPLE_FILE = os.path.join(_home.BUNDLED_DIR, "mnist_sample.npz")


def load_data(path=None):
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Args:
        path: a folder holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
            ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``, or a Keras-style
            ``mnist.npz`` (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``). A bare file name
            that does not exist here, such as Keras's default ``"mnist.npz"``, is looked up in
            ``$KAFFE_DATA_HOME`` and Keras's cache (``$KERAS_HOME/datasets``, default
            ``~/.keras/datasets``), then treated as ``None``.
            ``None`` (the default) searches ``$KAFFE_DATA_HOME/mnist``, then ``shared/data/mnist``
            in the parent folders of the working directory and of the package, then Keras's
            cached ``mnist.npz``; when nothing is
            found it returns the bundled sample (first 6,000 train and 1,000 test digits of the
            real set) and logs a warning.

    Returns:
        Tuple of numpy ``uint8`` arrays ``(x_train, y_train), (x_test, y_test)``; labels are 0-9.

    Raises:
        FileNotFoundError: an explicit ``path`` that does not exist or lacks the files.
        ValueError: a file that is truncated or not IDX / not a valid npz.
    """
    if path is not None:
        source = _resolve_explicit(os.path.expanduser(os.fspath(path)))
        if source is not None:
            return _load_source(source)
    folder, _ = _home.find_dataset_dir(NAME, _has_data)
    if folder is not None:
        return _load_source(folder)
    cached = keras_cache.cached_path("mnist")
    if cached is not None:
        return keras_cache.read_checked("mnist", cached, _idx.load_split_npz)
    return _load_sample()


def _has_data(folder):
    return _idx.has_split_files(folder) or os.path.isfile(os.path.join(folder, "mnist.npz"))


def _load_source(source):
    if os.path.isdir(source):
        if not _idx.has_split_files(source) and os.path.isfile(os.path.join(source, "mnist.npz")):
            source = os.path.join(source, "mnist.npz")
        else:
            logger.debug("loading MNIST from IDX files in %s", source)
            return _idx.load_split_folder(source)
    logger.debug("loading MNIST from %s", source)
    return _idx.load_split_npz(source)


def _resolve_explicit(path):
    """The folder or npz that ``path`` names, or ``None`` to fall back to the default search."""
    if os.path.exists(path):
        return path
    if os.path.dirname(path):
        raise FileNotFoundError(
            f"MNIST path {path!r} does not exist: expected a folder holding the four MNIST IDX "
            f"files or a Keras-style mnist.npz. kaffe cannot download; pass a local path.")
    # A bare name, as Keras's path="mnist.npz" which means "cache file name".
    for folder in (_home.data_home(), file_utils.cache_folder("datasets")):
        if folder and os.path.exists(os.path.join(folder, path)):
            return os.path.join(folder, path)
    logger.info("MNIST file %r not found in the working directory, $KAFFE_DATA_HOME or "
                "~/.keras/datasets; searching the default locations", path)
    return None


def _load_sample():
    if not os.path.isfile(SAMPLE_FILE):
        raise FileNotFoundError(
            f"MNIST not found and the bundled sample {SAMPLE_FILE} is missing (was kaffe installed "
            f"without its package data?). Put the four MNIST IDX files in $KAFFE_DATA_HOME/mnist "
            f"or pass load_data(path=<folder or mnist.npz>).")
    home = _home.data_home()
    looked = os.path.join(home, NAME) if home else "$KAFFE_DATA_HOME/mnist ($KAFFE_DATA_HOME unset)"
    logger.warning(
        "Full MNIST not found (looked in %s and in shared/data/mnist above the working directory "
        "and the package); using the small sample bundled with kaffe: the first 6,000 train and "
        "1,000 test digits. For the full 60,000/10,000 set, set KAFFE_DATA_HOME to a folder whose "
        "mnist/ subfolder holds the four IDX files (train-images-idx3-ubyte.gz, ...) or call "
        "load_data(path=<that folder or a Keras mnist.npz>).", looked)
    return _idx.load_split_npz(SAMPLE_FILE)
