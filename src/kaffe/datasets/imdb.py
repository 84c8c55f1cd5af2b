"""``keras.datasets.imdb``'s API. The real IMDB reviews when Keras's ``imdb.npz`` is in the Keras cache
(``$KERAS_HOME/datasets`` or ``~/.keras/datasets``; its pickled object arrays are read as plain
data through :mod:`kaffe.datasets.safe_pickle`, never ``allow_pickle=True``). kaffe cannot
download it, so without that file this serves the movie-review sentences of
:mod:`kaffe.datasets.sentiment` (10,605 Rotten Tomatoes sentences, label ``score > 0``),
encoded the same way.

Seed scripts run unchanged::

    from kaffe.datasets import imdb
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=10000)
"""
import json
import logging
import os

import numpy as np

from kaffe.datasets import _home, keras_cache, safe_pickle, sentiment
from kaffe.utils import file_utils

logger = logging.getLogger(__name__)

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

CONVERT_RECIPE = """\
    import numpy as np
    f = np.load("imdb.npz", allow_pickle=True)  # only for a file you trust
    out = {"y_train": f["y_train"], "y_test": f["y_test"]}
    for s in ("x_train", "x_test"):
        out[s + "_values"] = np.concatenate([np.asarray(r, np.int64) for r in f[s]])
        out[s + "_lengths"] = np.array([len(r) for r in f[s]], np.int64)
    np.savez("imdb_flat.npz", **out)"""


def load_data(path=None, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1,
              oov_char=2, index_from=3, test_split=0.2, **kwargs):
    """``keras.datasets.imdb.load_data`` over local data: by default NOT the IMDB reviews but the
    movie-review sentences of :func:`kaffe.datasets.sentiment.load_data` (same encoding, split by
    ``test_split`` since the sentences have no fixed split), because kaffe cannot download.

    Args:
        path: ``None`` (Keras's cached ``imdb.npz`` when there, else the sentiment
            sentences); a Keras-style ``.npz``; or a sentiment TSV file
            or folder. A bare file name that does not exist here, such as Keras's default
            ``"imdb.npz"``, is looked up in ``$KAFFE_DATA_HOME`` and ``~/.keras/datasets``, and
            if absent the sentiment sentences are used.
            Keras's own ``imdb.npz`` stores its reviews as pickled object arrays; they are read
            with an unpickler that admits only plain data (lists, numbers, NumPy arrays) and
            refuses anything else, naming it. A pickle-free layout is read too
            (``x_train_values``/``x_train_lengths``, ``x_test_values``/``x_test_lengths``,
            ``y_train``, ``y_test``), made from a trusted file by::

{recipe}

            Rectangular integer ``x_train``/``x_test`` arrays (one row per review) are read too.
        num_words, skip_top, maxlen, seed, start_char, oov_char, index_from: as Keras (see
            :func:`kaffe.datasets.sentiment.load_data`). For an npz the steps are exactly
            ``keras.datasets.imdb``'s: train and test shuffled separately with one
            ``RandomState(seed)``, ``maxlen`` applied per split.
        test_split: test fraction for the sentiment sentences; ignored for an npz.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: 1-D object arrays of lists of ints, and labels.
    """
    num_words = sentiment._legacy_num_words(num_words, kwargs)
    npz = _resolve_npz(path)
    if npz is None:
        if path is not None and not _is_bare_npz_name(path):
            return sentiment.load_data(path, num_words, skip_top, maxlen, seed, start_char,
                                       oov_char, index_from, test_split)
        logger.info("kaffe.datasets.imdb: using the movie-review sentences of "
                    "kaffe.datasets.sentiment (kaffe cannot download IMDB)")
        return sentiment.load_data(None, num_words, skip_top, maxlen, seed, start_char,
                                   oov_char, index_from, test_split)
    (x_train, y_train), (x_test, y_test) = read_npz(npz)
    rng = np.random.RandomState(seed)
    indices = np.arange(len(x_train))
    rng.shuffle(indices)
    x_train, y_train = [x_train[i] for i in indices], y_train[indices]
    indices = np.arange(len(x_test))
    rng.shuffle(indices)
    x_test, y_test = [x_test[i] for i in indices], y_test[indices]
    x_train = sentiment.offset(x_train, start_char, index_from)
    x_test = sentiment.offset(x_test, start_char, index_from)
    if maxlen:
        x_train, y_train = sentiment.remove_long(maxlen, x_train, y_train)
        x_test, y_test = sentiment.remove_long(maxlen, x_test, y_test)
    xs = sentiment.cut_vocabulary(x_train + x_test, num_words, skip_top, oov_char)
    n = len(x_train)
    return ((sentiment.object_array(xs[:n]), y_train),
            (sentiment.object_array(xs[n:]), y_test))


load_data.__doc__ = load_data.__doc__.format(recipe=CONVERT_RECIPE.replace("\n", "\n        "))


def get_word_index(path=None):
    """``{word: rank}``. ``path`` a Keras ``imdb_word_index.json`` reads that; otherwise the
    word index of the sentiment sentences (:func:`kaffe.datasets.sentiment.get_word_index`)."""
    if path is None and keras_cache.cached_path("imdb") and keras_cache.cached_path(
            "imdb_word_index"):
        path = keras_cache.cached_path("imdb_word_index")  # goes with the real IMDB reviews
    if path is not None and str(path).endswith(".json"):
        resolved = _resolve_bare(os.path.expanduser(os.fspath(path)))
        if resolved is not None:
            with open(resolved, encoding="utf-8") as f:
                return json.load(f)
        if os.path.dirname(os.fspath(path)):
            raise FileNotFoundError(f"IMDB word index {path!r} does not exist")
        path = None
    return sentiment.get_word_index(path)


def _is_bare_npz_name(path):
    path = os.fspath(path)
    return path.endswith(".npz") and not os.path.dirname(path)


def _resolve_bare(path):
    if os.path.exists(path):
        return path
    if os.path.dirname(path):
        return None
    for folder in (_home.data_home(), file_utils.cache_folder("datasets")):
        if folder and os.path.isfile(os.path.join(folder, path)):
            return os.path.join(folder, path)
    return None


def _resolve_npz(path):
    """The npz file ``path`` names (``None``: Keras's cached ``imdb.npz`` if there), or ``None``
    when it is not an npz (sentiment data instead)."""
    if path is None:
        return keras_cache.cached_path("imdb")
    path = os.path.expanduser(os.fspath(path))
    if not path.endswith(".npz"):
        return None
    resolved = _resolve_bare(path)
    if resolved is None and os.path.dirname(path):
        raise FileNotFoundError(f"IMDB npz {path!r} does not exist. kaffe cannot download; pass "
                                "a local Keras-style imdb.npz, or path=None for the sentiment "
                                "sentences.")
    if resolved is None:
        logger.info("IMDB file %r not found in the working directory, $KAFFE_DATA_HOME or "
                    "~/.keras/datasets; using the sentiment sentences", path)
    return resolved


def read_npz(path):
    """``(x_train, y_train), (x_test, y_test)`` from an IMDB-style npz: x as lists of lists of
    ints, y as arrays. Object arrays (Keras's own file) are read through
    :func:`kaffe.datasets.safe_pickle.load_npz`; a pickle holding more than plain data is
    refused, naming what it tried to load."""
    f = keras_cache.read_checked("imdb", path, safe_pickle.load_npz)
    out = {}
    for split in ("train", "test"):
        x_key, y_key = "x_" + split, "y_" + split
        if y_key not in f or (x_key not in f and x_key + "_values" not in f):
            raise ValueError(f"npz file {path} lacks the IMDB keys: expected {list(NPZ_KEYS)} "
                             f"(or x_*_values/x_*_lengths), found {sorted(f)}")
        if x_key + "_values" in f:
            values, lengths = f[x_key + "_values"], f[x_key + "_lengths"]
            if lengths.sum() != len(values):
                raise ValueError(f"npz file {path}: {x_key}_lengths sum to {lengths.sum()} but "
                                 f"{x_key}_values holds {len(values)}")
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            x = [values[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]
        elif f[x_key].dtype == object and f[x_key].ndim == 1:
            x = [list(row) for row in f[x_key]]
        elif f[x_key].ndim == 2:
            x = f[x_key].tolist()
        else:
            raise ValueError(f"npz file {path}: {x_key} has shape {f[x_key].shape}, expected "
                             "(reviews, words) or an object array of lists")
        y = f[y_key]
        if len(x) != len(y):
            raise ValueError(f"npz file {path}: {len(x)} {x_key} sequences but {len(y)} "
                             f"{y_key} labels")
        out[split] = (x, y)
    return out["train"], out["test"]
