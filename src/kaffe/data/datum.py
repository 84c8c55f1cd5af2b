"""Caffe's ``Datum`` record: one image (or feature vector) and its label, as stored in LMDB /
LevelDB databases by ``convert_imageset``, ``convert_mnist_data`` and ``extract_features``.

A Datum holds ``channels x height x width`` values either as raw ``uint8`` bytes (``data``,
channel-major, BGR for colour images), as ``float_data``, or as the bytes of an encoded image
file (``encoded: true``, JPEG/PNG; decoded as Caffe does, see :mod:`kaffe.data.images`).
"""
import numpy as np
from google.protobuf import message

from kaffe.caffe.proto import caffe_pb2
from kaffe.data import images as _images
from kaffe.data.errors import DataSourceError

__all__ = ["Datum", "array_to_datum", "datum_to_array", "image_to_datum", "datum_to_image",
           "parse_datum", "datum_shape"]

Datum = caffe_pb2.Datum


def array_to_datum(arr, label=None):
    """A ``C x H x W`` array as a Datum (pycaffe's ``caffe.io.array_to_datum``): ``uint8`` goes
    to the ``data`` bytes, any other dtype to ``float_data``; ``label`` is set unless None."""
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"array_to_datum needs a 3-D C x H x W array; received shape "
                         f"{arr.shape}.")
    datum = Datum()
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = np.ascontiguousarray(arr).tobytes()
    else:
        datum.float_data.extend(arr.astype(np.float64).ravel().tolist())
    if label is not None:
        datum.label = int(label)
    return datum


def datum_to_array(datum):
    """A Datum's values as ``C x H x W``: uint8 for raw bytes or encoded images (decoded as
    stored, BGR), float64 for ``float_data`` (as pycaffe). The label is ``datum.label``."""
    if datum.encoded:
        return datum_to_image(datum).transpose(2, 0, 1).copy()
    count = datum.channels * datum.height * datum.width
    if len(datum.data):
        if len(datum.data) != count:
            raise DataSourceError(f"Datum holds {len(datum.data)} bytes for a "
                                  f"{datum.channels}x{datum.height}x{datum.width} image "
                                  f"({count} expected).")
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(
            datum.channels, datum.height, datum.width).copy()
    if len(datum.float_data) != count:
        raise DataSourceError(f"Datum holds {len(datum.float_data)} float values for shape "
                              f"{datum.channels}x{datum.height}x{datum.width} ({count} expected).")
    return np.array(datum.float_data, dtype=np.float64).reshape(
        datum.channels, datum.height, datum.width)


def datum_to_image(datum, color=None):
    """An encoded Datum decoded to ``H x W x C`` uint8 BGR: ``color`` None keeps the stored
    channels (Caffe's ``DecodeDatumToCVMatNative``), True forces 3, False forces 1
    (``transform_param.force_color`` / ``force_gray``)."""
    return _images.decode_image(datum.data, color, where="encoded Datum")


def image_to_datum(img, label=None, encoding=None):
    """An ``H x W x C`` uint8 BGR image as a Datum (Caffe's ``CVMatToDatum``: channels, height,
    width, ``data`` channel-major, ``encoded: false``), or with ``encoding`` ('png', 'jpg', ...)
    as the bytes of that file format (``encoded: true``, no shape fields), as ``convert_imageset
    --encoded`` writes it."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
    if img.dtype != np.uint8 or img.ndim != 3:
        raise ValueError(f"image_to_datum needs an H x W x C uint8 image; received dtype "
                         f"{img.dtype} shape {img.shape}.")
    datum = Datum()
    if encoding:
        datum.data = _images.encode_image(img, encoding)
        if label is not None:
            datum.label = int(label)
        datum.encoded = True
        return datum
    datum.channels, datum.height, datum.width = img.shape[2], img.shape[0], img.shape[1]
    datum.data = np.ascontiguousarray(img.transpose(2, 0, 1)).tobytes()
    if label is not None:
        datum.label = int(label)
    datum.encoded = False
    return datum


def encoded_file_datum(data, label=None):
    """A Datum holding a file's bytes unchanged (``encoded: true``; Caffe's
    ``ReadFileToDatum``)."""
    datum = Datum(data=bytes(data), encoded=True)
    if label is not None:
        datum.label = int(label)
    return datum


def parse_datum(value, where="record"):
    """A serialized Datum (a database value) parsed; ``where`` names it in the error."""
    datum = Datum()
    try:
        datum.ParseFromString(value)
    except message.DecodeError as err:
        raise DataSourceError(f"{where} is not a Caffe Datum ({len(value)} bytes; protobuf "
                              f"says: {err}). Was the database written by convert_imageset, "
                              f"convert_mnist_data or extract_features?") from None
    if not len(datum.data) and not len(datum.float_data):
        raise DataSourceError(f"{where} is not a Caffe Datum: it holds neither image bytes "
                              f"nor float_data ({len(value)} bytes).")
    return datum


def datum_shape(datum, color=None):
    """``(channels, height, width)`` of a Datum, decoding an encoded one."""
    if datum.encoded:
        img = datum_to_image(datum, color)
        return (img.shape[2], img.shape[0], img.shape[1])
    return (datum.channels, datum.height, datum.width)
