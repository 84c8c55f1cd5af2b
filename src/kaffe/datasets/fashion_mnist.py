"""Fashion-MNIST (Zalando article images), read from local IDX files (kaffe never downloads).

Same layout as MNIST: ``uint8`` ``x_train (60000, 28, 28)``, ``y_train (60000,)``,
``x_test (10000, 28, 28)``, ``y_test (10000,)``. Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover,
3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot.
"""
import logging
import os

from kaffe.datasets import _home, _idx
from kaffe.utils import file_utils

logger = logging.getLogger(__name__)

NAME = "fashion-mnist"
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def load_data(path=None):
    """Load Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Args:
        path: a folder holding the four IDX files (``train-images-idx3-ubyte[.gz]``,
            ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``,
            ``t10k-labels-idx1-ubyte[.gz]``) or an npz with keys ``x_train``, ``y_train``,
            ``x_test``, ``y_test``. ``None`` searches ``$KAFFE_DATA_HOME/fashion-mnist``, then
            ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``), then
            ``shared/data/fashion-mnist`` in the parent folders of the working directory and the
            package.

    Returns:
        Tuple of numpy ``uint8`` arrays ``(x_train, y_train), (x_test, y_test)``.

    Raises:
        FileNotFoundError: nothing found; the message lists where it looked and how to install.
        ValueError: a file that is truncated or not IDX / not a valid npz.
    """
    if path is not None:
        path = os.path.expanduser(os.fspath(path))
        if os.path.isdir(path):
            return _idx.load_split_folder(path)
        if os.path.isfile(path):
            return _idx.load_split_npz(path)
        raise FileNotFoundError(
            f"Fashion-MNIST path {path!r} does not exist: expected a folder holding the four IDX "
            f"files or an npz. kaffe cannot download; pass a local path.")
    keras_cache_dir = os.path.join(file_utils.cache_folder("datasets"), NAME)  # Keras's layout
    folder, searched = _home.find_dataset_dir(NAME, _idx.has_split_files,
                                              system_dirs=(SYSTEM_DIR, keras_cache_dir))
    if folder is None:
        explicit = [p for p in searched if not p.endswith(os.path.join("shared", "data", NAME))]
        raise FileNotFoundError(
            "Fashion-MNIST not found. Looked in: " + ", ".join(explicit)
            + f", and shared/data/{NAME} in every parent folder of the working directory and of "
            "the kaffe package" + ("" if _home.data_home() else " ($KAFFE_DATA_HOME is unset)")
            + ". Keras downloads the four files from "
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/ into "
            f"{keras_cache_dir}; put them there, or install it with "
            "`apt-get install dataset-fashion-mnist` (puts the IDX files in "
            f"{SYSTEM_DIR}), or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in "
            "$KAFFE_DATA_HOME/fashion-mnist, or call load_data(path=<that folder>).")
    logger.debug("loading Fashion-MNIST from IDX files in %s", folder)
    return _idx.load_split_folder(folder)
