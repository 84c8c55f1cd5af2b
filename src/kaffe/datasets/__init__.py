"""Keras-style datasets read from local files: ``kaffe.datasets.mnist.load_data()``.

kaffe never downloads. ``cifar10``, ``cifar100``, ``reuters``, ``boston_housing`` and the real
``imdb`` are read from Keras's own download cache (``$KERAS_HOME/datasets`` or
``~/.keras/datasets``, the files Keras would have fetched); a missing file raises one error naming
its URL, the path to put it at and its size. MNIST and Fashion-MNIST are also looked up under
``$KAFFE_DATA_HOME/<name>`` and the other places each loader documents; MNIST falls back to a
small sample bundled with the package, IMDB to the bundled movie-review sentences.
"""
from kaffe.datasets import (boston_housing, cifar10, cifar100, fashion_mnist, imdb, mnist, reuters,
                            sentiment)

__all__ = ["mnist", "fashion_mnist", "imdb", "sentiment", "cifar10", "cifar100", "reuters",
           "boston_housing"]
