"""Caffe's ``extract_features`` tool: blobs of a TEST-phase net written to LMDB / LevelDB.

For each of ``num_batches`` forward passes and each requested blob, every item of the batch
becomes one ``Datum`` (``channels`` / ``height`` / ``width`` from the blob's legacy 4-axis
shape, the values in ``float_data``, no label) under the key ``%010d`` (the item's index), as
``tools/extract_features.cpp`` writes them. Databases are built by :class:`kaffe.data.db.DBWriter`
in a temporary folder renamed when complete, so an interrupted run leaves no half database.
"""
import logging
import os

import numpy as np
import torch

from kaffe.caffe.net import TEST, Net
from kaffe.caffe.proto import caffe_pb2

log = logging.getLogger("kaffe")

__all__ = ["extract_features"]


def _legacy_dims(shape):
    """Caffe's ``LegacyShape``: (num, channels, height, width), missing trailing axes = 1."""
    dims = tuple(shape) + (1,) * (4 - len(shape))
    if len(dims) > 4:
        raise ValueError(f"a blob of shape {tuple(shape)} has more than 4 axes; extract_features "
                         f"writes Datum records, which hold at most channels x height x width.")
    return dims


def extract_features(weights, net_prototxt, blob_names, db_names, num_batches, backend="lmdb",
                     progress=None):
    """Run ``net_prototxt`` (TEST phase, ``weights`` copied in) ``num_batches`` times and write
    blob ``blob_names[i]`` into the new database ``db_names[i]``. Returns the number of records
    written per blob. ``progress(batch_index)`` is called after each batch when given."""
    from kaffe.data.db import DBWriter
    blob_names, db_names = list(blob_names), list(db_names)
    if len(blob_names) != len(db_names):
        raise ValueError(f"the number of blob names ({len(blob_names)}: {','.join(blob_names)}) "
                         f"and dataset names ({len(db_names)}: {','.join(db_names)}) must be "
                         f"equal.")
    if int(num_batches) < 0:
        raise ValueError(f"num_mini_batches must be >= 0. Received: {num_batches}")
    for path in db_names:
        if os.path.exists(path):
            raise ValueError(f"the dataset '{path}' already exists; extract_features creates a "
                             f"new database. Remove it or choose another name.")
    net = Net(net_prototxt, weights=weights, phase=TEST)
    for name in blob_names:
        if name not in net.blobs:
            raise ValueError(f"Unknown feature blob name '{name}' in the network {net_prototxt}. "
                             f"Blobs: {', '.join(net.blobs)}.")
    writers = []
    try:
        for name, path in zip(blob_names, db_names):
            log.info("Opening dataset %s", path)
            writers.append(DBWriter(path, backend))
        log.info("Extracting Features")
        counts = [0] * len(blob_names)
        datum = caffe_pb2.Datum()
        for batch in range(int(num_batches)):
            with torch.no_grad():
                net.forward_tensors()
            net.sync_blobs()
            for i, (name, writer) in enumerate(zip(blob_names, writers)):
                data = np.asarray(net.blobs[name].data, np.float32)
                num, channels, height, width = _legacy_dims(data.shape)
                rows = data.reshape(num, -1)
                for row in rows:
                    datum.Clear()
                    datum.channels, datum.height, datum.width = channels, height, width
                    datum.float_data.extend(row.tolist())
                    writer.put(f"{counts[i]:010d}", datum.SerializeToString())
                    counts[i] += 1
                    if counts[i] % 1000 == 0:
                        log.info("Extracted features of %d query images for feature blob %s",
                                 counts[i], name)
            if progress is not None:
                progress(batch)
        for writer, name, count in zip(writers, blob_names, counts):
            writer.close()
            log.info("Extracted features of %d query images for feature blob %s", count, name)
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    log.info("Successfully extracted the features!")
    return counts
