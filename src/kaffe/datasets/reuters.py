"""``keras.datasets.reuters``: 11,228 newswires in 46 topics, read from the Keras cache
(``reuters.npz``, ``reuters_word_index.json``; kaffe never downloads). The npz holds ragged
object arrays, read through :mod:`kaffe.datasets.safe_pickle`."""
import json

import numpy as np

from kaffe.datasets import keras_cache, safe_pickle, sentiment


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2,
              seed=113, start_char=1, oov_char=2, index_from=3, **kwargs):
    """``(x_train, y_train), (x_test, y_test)`` with Keras's steps: shuffle with
    ``RandomState(seed)``, ``start_char`` + ranks shifted by ``index_from``, drop sequences with
    ``len >= maxlen``, indices outside ``[skip_top, num_words)`` -> ``oov_char``, the first
    ``int(n * (1 - test_split))`` are the train set."""
    num_words = sentiment._legacy_num_words(num_words, kwargs)
    source = keras_cache.require("reuters", path)
    arrays = keras_cache.read_checked("reuters", source, safe_pickle.load_npz)
    xs, labels = arrays["x"], arrays["y"]
    indices = np.arange(len(xs))
    np.random.RandomState(seed).shuffle(indices)
    xs = [list(xs[i]) for i in indices]
    labels = labels[indices]
    if start_char is not None or index_from:
        xs = sentiment.offset(xs, start_char, index_from)
    if maxlen:
        xs, labels = sentiment.remove_long(maxlen, xs, labels)
    xs = sentiment.cut_vocabulary(xs, num_words, skip_top, oov_char)
    split = int(len(xs) * (1 - test_split))
    return ((sentiment.object_array(xs[:split]), np.array(labels[:split])),
            (sentiment.object_array(xs[split:]), np.array(labels[split:])))


def get_word_index(path="reuters_word_index.json"):
    """``{word: rank}`` from Keras's cached ``reuters_word_index.json``."""
    source = keras_cache.require("reuters_word_index", path)
    return keras_cache.read_checked("reuters_word_index", source, _read_json)


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
