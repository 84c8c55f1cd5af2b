"""``convert_imageset``: a list of ``path label`` lines -> an LMDB / LevelDB of Caffe Datums,
as Caffe's ``tools/convert_imageset`` writes them: keys ``%08d_<path>`` (the line's index),
images read with OpenCV semantics (BGR, optional gray, ``cv::resize`` INTER_LINEAR), stored raw
(``C x H x W`` uint8) or, with ``encoded``, as the image file's bytes (or re-encoded as
``encode_type`` when resized, converted, or of another type)."""
import logging

import numpy as np
import torch

from kaffe.caffe.tools.progress import progress
from kaffe.data import datum as _datum
from kaffe.data import images as _images
from kaffe.data import imagelist as _imagelist
from kaffe.data.db import DBWriter
from kaffe.data.errors import DataSourceError

log = logging.getLogger("kaffe")


def _matches_ext(filename, encoding):
    """Caffe's ``matchExt``: the file's extension is ``encoding`` (jpeg counts as jpg)."""
    ext = filename.rsplit(".", 1)[-1].lower()
    encoding = encoding.lower()
    return ext == encoding or (encoding == "jpg" and ext == "jpeg")


def image_file_to_datum(path, label, resize_height=0, resize_width=0, is_color=True,
                        encoding=""):
    """Caffe's ``ReadImageToDatum``: the image at ``path`` as a Datum (see module doc)."""
    img = _images.read_image(path, resize_height, resize_width, is_color)
    if encoding:
        if (img.shape[2] == 3) == is_color and not resize_height and not resize_width and \
                _matches_ext(path, encoding):
            with open(path, "rb") as f:
                return _datum.encoded_file_datum(f.read(), label)
        return _datum.image_to_datum(img, label, encoding=encoding)
    return _datum.image_to_datum(img, label)


def convert_imageset(root_folder, list_file, db_path, resize_height=0, resize_width=0,
                     gray=False, shuffle=False, encoded=False, encode_type="", backend="lmdb",
                     check_size=False, skip_missing=False, overwrite=False, seed=None,
                     show_progress=None):
    """Convert the images listed in ``list_file`` (paths relative to ``root_folder``, joined by
    plain concatenation as Caffe does: give ``root_folder`` its trailing ``/``) into a new
    database at ``db_path``; returns the number of records written.

    Every listed image is checked before writing starts: a missing one raises an error naming
    its line, unless ``skip_missing`` (then it is left out with a warning, as Caffe does).
    ``shuffle`` shuffles the lines (``seed`` makes it repeatable; default from torch's RNG)."""
    entries = _imagelist.read_image_list(list_file)
    absent = _imagelist.check_images_exist(entries, root_folder, list_file)
    if absent and not skip_missing:
        raise _imagelist.missing_images_error(
            absent, root_folder, list_file, "Fix the list or root folder, or pass "
            "--skip_missing to leave those lines out.")
    for path, _, number in absent:
        log.warning("%s:%d: could not open or find file %s; skipped", list_file, number,
                    root_folder + path)
    if shuffle:
        seed = int(torch.randint(0, 2 ** 31 - 1, ())) if seed is None else seed
        order = np.random.default_rng(seed).permutation(len(entries))
        entries = [entries[i] for i in order]
    log.info("A total of %d images.", len(entries))
    if encode_type and not encoded:
        log.info("encode_type specified, assuming encoded=true.")
    is_color = not gray
    missing_lines = {e[2] for e in absent}
    count, data_size = 0, None
    with DBWriter(db_path, backend, overwrite=overwrite) as db, \
            progress(len(entries), "convert_imageset", show_progress) as bar:
        for line_id, (path, label, number) in enumerate(entries):
            bar.update(1)
            if number in missing_lines:
                continue
            enc = encode_type
            if encoded and not enc:
                enc = path.rsplit(".", 1)[-1].lower() if "." in path else ""
                if not enc:
                    log.warning("Failed to guess the encoding of %r", path)
            try:
                datum = image_file_to_datum(root_folder + path, label, max(0, resize_height),
                                            max(0, resize_width), is_color, enc)
            except DataSourceError as err:
                raise DataSourceError(f"{list_file}:{number}: {err}") from None
            if check_size:
                size = datum.channels * datum.height * datum.width
                if data_size is None:
                    data_size = size
                elif len(datum.data) != data_size:
                    raise DataSourceError(f"{list_file}:{number}: {path!r} has "
                                          f"{len(datum.data)} values, the first image "
                                          f"{data_size} (--check_size).")
            db.put(f"{line_id:08d}_{path}", datum.SerializeToString())
            count += 1
    log.info("Processed %d files.", count)
    return count
