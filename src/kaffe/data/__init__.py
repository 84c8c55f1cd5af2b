"""kaffe's data side: Caffe ``Datum`` records, LMDB / LevelDB databases, HDF5 lists, image lists
and Caffe's ``transform_param``.

* :mod:`kaffe.data.db` - ``open_db(path, backend=None)`` -> ``DBReader`` (iterate ``(key,
  value)`` bytes in key order, ``len()``, ``cursor()`` going round at the end), and
  ``DBWriter(path, backend="lmdb")`` (context manager; temp folder renamed when complete).
* :mod:`kaffe.data.datum` - ``array_to_datum``, ``datum_to_array``, ``image_to_datum``,
  ``datum_to_image``, ``parse_datum``.
* :mod:`kaffe.data.images` - images read, decoded, encoded and resized as Caffe (OpenCV) does.
* :mod:`kaffe.data.imagelist`, :mod:`kaffe.data.hdf5`, :mod:`kaffe.data.transform`.

The files bundled beside this package (``mnist_sample.npz``, the movie-review snippets) are
data for :mod:`kaffe.datasets`; the modules here are code.
"""
from kaffe.data.errors import DataSourceError, MissingSourceError

__all__ = ["DataSourceError", "MissingSourceError"]
