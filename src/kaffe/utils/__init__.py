"""``keras.utils`` counterparts: one-hot encoding, normalisation, batch datasets, ``get_file``,
model and training plots, seeding."""
import os

from kaffe.utils.np_utils import normalize, to_categorical
from kaffe.utils.plotting import model_to_dot, plot_history, plot_model
from kaffe.utils.random import set_random_seed
from kaffe.utils.sequence import PyDataset, Sequence

__all__ = ["to_categorical", "normalize", "Sequence", "PyDataset", "get_file", "plot_model",
           "model_to_dot", "plot_history", "set_random_seed"]


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False,
             archive_format="auto", cache_dir=None, force_download=False):
    """Keras's ``get_file`` without the download: kaffe never fetches files from the network.

    When the file is already in the Keras-style cache (``cache_dir/cache_subdir/fname``, default
    ``~/.keras/datasets/fname``) its path is returned; hashes are not checked and nothing is
    extracted. Otherwise raises ``FileNotFoundError`` explaining how to supply the file locally.
    """
    if fname is None and origin:
        fname = os.path.basename(origin.split("?")[0])
    if fname:
        base = os.path.expanduser(cache_dir) if cache_dir else os.path.join(
            os.path.expanduser("~"), ".keras")
        cached = os.path.join(base, cache_subdir, fname)
        if os.path.exists(cached) and not force_download and not (untar or extract):
            return cached
    else:
        cached = None
    raise FileNotFoundError(
        f"kaffe cannot download files. Received: fname={fname!r}, origin={origin!r}. "
        "Download the file yourself and pass its local path to the code that needs it"
        + (f" (or place it at {cached})" if cached else "")
        + "; for datasets see kaffe.datasets, which reads local files (e.g. "
        "kaffe.datasets.mnist.load_data(path=...)).")
