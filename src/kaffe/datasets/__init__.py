"""Keras-style datasets read from local files: ``kaffe.datasets.mnist.load_data()``.

kaffe never downloads. Data is looked up under ``$KAFFE_DATA_HOME/<name>`` and the other places
each loader documents; MNIST falls back to a small sample bundled with the package.
"""
from kaffe.datasets import fashion_mnist, imdb, mnist, sentiment

__all__ = ["mnist", "fashion_mnist", "imdb", "sentiment"]
