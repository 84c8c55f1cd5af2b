"""kaffe's data side: Caffe ``Datum`` records, LMDB / LevelDB databases, HDF5 lists, image lists
and Caffe's ``transform_param``.

The files bundled beside this package (``mnist_sample.npz``, the movie-review snippets) are
data for :mod:`kaffe.datasets`; the modules here are code.
"""
from kaffe.data.errors import DataSourceError, MissingSourceError

__all__ = ["DataSourceError", "MissingSourceError"]
