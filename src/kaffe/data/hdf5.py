"""Caffe's HDF5 data sources: a list file naming ``.h5`` files, each holding one dataset per top
blob (``data``, ``label``, ...) whose first axis counts the rows (Caffe's ``HDF5Data`` layer)."""
import os

import numpy as np

from kaffe.data.errors import DataSourceError, missing


def read_hdf5_list(source):
    """The file names listed in ``source``, split on white space as Caffe reads them. Relative
    names are used as they are (Caffe opens them relative to the current directory)."""
    if not os.path.isfile(source):
        raise missing(source, "HDF5 list file (hdf5_data_param.source)",
                      " It should list one .h5 file per line.")
    with open(source, encoding="utf-8") as f:
        names = f.read().split()
    if not names:
        raise DataSourceError(f"HDF5 list file {source!r} is empty; it must name at least one "
                              f".h5 file (one per line).")
    return names


def load_hdf5_file(filename, names, source=None):
    """The datasets ``names`` of ``filename`` as float32 arrays (Caffe loads every HDF5 top as
    its float Dtype). All must have at least one axis and the same number of rows."""
    import h5py
    listed = f" (listed in {source!r})" if source else ""
    if not os.path.isfile(filename):
        raise missing(filename, f"HDF5 file{listed}")
    try:
        f = h5py.File(filename, "r")
    except OSError as err:
        raise DataSourceError(f"Cannot open HDF5 file {filename!r}{listed}: {err}.") from None
    with f:
        arrays = []
        for name in names:
            if name not in f or not isinstance(f[name], h5py.Dataset):
                found = ", ".join(sorted(k for k in f if isinstance(f[k], h5py.Dataset)))
                raise DataSourceError(
                    f"HDF5 file {filename!r}{listed} has no dataset {name!r} (the layer's top "
                    f"names are the dataset names). Datasets found: {found or 'none'}.")
            ds = f[name]
            if ds.dtype.kind not in "biuf" or ds.ndim < 1:
                raise DataSourceError(
                    f"HDF5 dataset {name!r} in {filename!r} must be a numeric array with at "
                    f"least one axis; it is {ds.dtype} with shape {ds.shape}.")
            arrays.append(np.asarray(ds[()], dtype=np.float32))
    rows = arrays[0].shape[0]
    for name, a in zip(names, arrays):
        if a.shape[0] != rows:
            raise DataSourceError(
                f"HDF5 file {filename!r}: dataset {name!r} has {a.shape[0]} rows but "
                f"{names[0]!r} has {rows}; every top needs the same number of rows.")
    if rows == 0:
        raise DataSourceError(f"HDF5 file {filename!r}: the datasets have no rows.")
    return arrays
