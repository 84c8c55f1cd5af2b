"""``convert_mnist_data``: MNIST IDX files -> an LMDB / LevelDB of Caffe Datums, as Caffe's
``examples/mnist/convert_mnist_data`` writes them (keys ``%08d``, Datum 1 x rows x cols uint8
with the label; no ``encoded`` field), committed every 1000 records."""
import logging

import numpy as np

from kaffe.caffe.proto import caffe_pb2
from kaffe.caffe.tools.progress import progress
from kaffe.data.db import DBWriter

log = logging.getLogger("kaffe")


def _read(path, kind, ndim):
    from kaffe.datasets._idx import read_idx
    array = read_idx(path)
    if array.dtype != np.uint8 or array.ndim != ndim:
        magic = 2051 if ndim == 3 else 2049
        raise ValueError(f"{path}: not an MNIST {kind} file: expected an IDX file of unsigned "
                         f"bytes with {ndim} dimension(s) (magic {magic}), found {array.dtype} "
                         f"with shape {array.shape}.")
    return array


def convert_mnist_data(images, labels, db_path, backend="lmdb", overwrite=False,
                       show_progress=None):
    """Convert the IDX files ``images`` (N x rows x cols) and ``labels`` (N) into a new
    database at ``db_path``; returns the number of records. Gzipped IDX files are read too."""
    x = _read(images, "image", 3)
    y = _read(labels, "label", 1)
    if len(x) != len(y):
        raise ValueError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels; "
                         f"they must match.")
    rows, cols = x.shape[1:]
    log.info("A total of %d items.", len(x))
    log.info("Rows: %d Cols: %d", rows, cols)
    datum = caffe_pb2.Datum(channels=1, height=rows, width=cols)
    labels_signed = y.view(np.int8)   # Caffe reads the label as a char
    with DBWriter(db_path, backend, overwrite=overwrite) as db, \
            progress(len(x), "convert_mnist_data", show_progress) as bar:
        for i in range(len(x)):
            datum.data = x[i].tobytes()
            datum.label = int(labels_signed[i])
            db.put(f"{i:08d}", datum.SerializeToString())
            bar.update(1)
    log.info("Processed %d files.", len(x))
    return len(x)
