"""``compute_image_mean``: the per-pixel mean of every Datum in a database, written as a legacy
``1 x C x H x W`` BlobProto (``.binaryproto``), as Caffe's ``tools/compute_image_mean`` does:
float32 sums of the uint8 (or float) values, divided by the record count."""
import logging

import numpy as np

from kaffe.caffe import blobs as _blobs
from kaffe.caffe.tools.progress import progress
from kaffe.data import datum as _datum
from kaffe.data.db import open_db
from kaffe.data.errors import DataSourceError

log = logging.getLogger("kaffe")


def compute_image_mean(db_path, output=None, backend=None, show_progress=None):
    """The mean image (``1 x C x H x W`` float32) of the database at ``db_path``; written to
    ``output`` (a ``.binaryproto``) when given. Every record must have the first one's shape."""
    with open_db(db_path, backend) as db:
        total = len(db)
        if total == 0:
            raise DataSourceError(f"Database {db_path!r} is empty; there is no mean to compute.")
        total_sum, count, shape = None, 0, None
        with progress(total, "compute_image_mean", show_progress) as bar:
            for key, value in db:
                where = f"record {key.decode(errors='replace')!r} of {db_path!r}"
                values = _datum.datum_to_array(_datum.parse_datum(value, where)).astype(np.float32)
                if total_sum is None:
                    shape = values.shape
                    total_sum = np.zeros(shape, np.float32)
                elif values.shape != shape:
                    raise DataSourceError(
                        f"{where} has shape {values.shape} but the first record has {shape}; "
                        f"compute_image_mean needs images of one size (convert_imageset "
                        f"--resize_height/--resize_width).")
                total_sum += values
                count += 1
                bar.update(1)
    mean = (total_sum / np.float32(count)).astype(np.float32)[np.newaxis]
    log.info("Processed %d files.", count)
    if output:
        log.info("Write to %s", output)
        _blobs.save_blobproto(output, mean, legacy=True)
    log.info("Number of channels: %d", mean.shape[1])
    for c, v in enumerate(mean[0].reshape(mean.shape[1], -1).mean(axis=1, dtype=np.float64)):
        log.info("mean_value channel [%d]: %g", c, v)
    return mean
