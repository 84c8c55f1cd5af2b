"""``keras.datasets.boston_housing``: 506 houses, 13 features, median value in k$; read from the
Keras cache (``boston_housing.npz``; kaffe never downloads)."""
import numpy as np

from kaffe.datasets import keras_cache


def load_data(path="boston_housing.npz", test_split=0.2, seed=113):
    """``(x_train, y_train), (x_test, y_test)``: Keras's steps (shuffle with
    ``RandomState(seed)``, first ``int(n * (1 - test_split))`` rows train)."""
    if not 0 <= test_split < 1:
        raise ValueError("boston_housing.load_data expected 0 <= test_split < 1. "
                         f"Received: test_split={test_split!r}")
    source = keras_cache.require("boston_housing", path)
    x, y = keras_cache.read_checked("boston_housing", source, _read)
    indices = np.arange(len(x))
    np.random.RandomState(seed).shuffle(indices)
    x, y = x[indices], y[indices]
    split = int(len(x) * (1 - test_split))
    return (np.array(x[:split]), np.array(y[:split])), (np.array(x[split:]), np.array(y[split:]))


def _read(path):
    with np.load(path, allow_pickle=False) as f:
        return f["x"], f["y"]
