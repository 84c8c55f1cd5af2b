"""Image files as Caffe reads them: ``uint8`` arrays ``H x W x C`` in BGR order (``C`` = 1 for
gray), decoded and resized as Caffe's ``ReadImageToCVMat`` does (OpenCV ``imread`` /
``imdecode`` and ``cv::resize`` with ``INTER_LINEAR``).

OpenCV (``opencv-python-headless``) is used when installed: on the reference images it gives
real Caffe's pixels exactly for colour images and PNG encodings byte for byte. Without it,
Pillow decodes (same libjpeg-turbo / libpng pixels for colour) and torch resizes (bilinear,
half-pixel centres, as ``INTER_LINEAR``, but float arithmetic where OpenCV uses 11-bit fixed
point, so pixels may differ by one); a warning says so once.
"""
import logging
import os

import numpy as np

from kaffe.data.errors import DataSourceError, missing

log = logging.getLogger("kaffe")

try:  # the field's decoder, the one Caffe used
    import cv2 as _cv2
except ImportError:  # pragma: no cover - exercised only where OpenCV is absent
    _cv2 = None

_warned = []


def _warn_no_opencv():
    if not _warned:
        _warned.append(True)
        log.warning("kaffe: OpenCV (opencv-python-headless) is not installed; images are decoded "
                    "with Pillow and resized with torch, which can differ from Caffe's OpenCV "
                    "pixels by a few levels. Install opencv-python-headless for Caffe's pixels.")


def _as_hwc(img):
    return img[:, :, np.newaxis] if img.ndim == 2 else img


def decode_image(data, color=None, where="image"):
    """Encoded bytes (JPEG, PNG, ...) -> ``H x W x C`` uint8 BGR. ``color``: True = 3 channels
    (``IMREAD_COLOR``), False = 1 channel (``IMREAD_GRAYSCALE``), None = as stored
    (``IMREAD_UNCHANGED``, Caffe's ``DecodeDatumToCVMatNative``)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if _cv2 is not None:
        flag = {None: _cv2.IMREAD_UNCHANGED, True: _cv2.IMREAD_COLOR,
                False: _cv2.IMREAD_GRAYSCALE}[color]
        img = _cv2.imdecode(buf, flag) if buf.size else None
    else:
        img = _pillow_decode(data, color)
    if img is None:
        raise DataSourceError(f"Could not decode {where}: its {len(data)} bytes are not an "
                              f"image OpenCV/Pillow can read (JPEG, PNG, BMP, ...).")
    return _as_hwc(img)


def _pillow_decode(data, color):
    import io

    from PIL import Image
    _warn_no_opencv()
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if color is False:
                mode = "L"
            elif color is None and im.mode in ("L", "RGBA"):
                mode = im.mode
            else:
                mode = "RGB"
            im = im.convert(mode) if im.mode != mode else im
            img = np.asarray(im)
    except Exception:  # noqa: BLE001 - any decoder failure means "not an image"
        return None
    if img.ndim == 3:
        img = img[:, :, [2, 1, 0, 3][:img.shape[2]]]
    return np.ascontiguousarray(img)


def encode_image(img, ext):
    """``H x W x C`` uint8 BGR -> the bytes of a ``.ext`` file (``cv::imencode``)."""
    ext = ext.lower().lstrip(".")
    if _cv2 is not None:
        ok, buf = _cv2.imencode("." + ext, img)
        if not ok:
            raise ValueError(f"OpenCV cannot encode images as {ext!r}; use png or jpg.")
        return buf.tobytes()
    import io

    from PIL import Image
    _warn_no_opencv()
    arr = img[:, :, 0] if img.shape[2] == 1 else img[:, :, ::-1]
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(out, format={"jpg": "JPEG"}.get(ext, ext))
    return out.getvalue()


def resize_image(img, height, width):
    """``cv::resize(img, Size(width, height))`` with ``INTER_LINEAR`` (Caffe's resize)."""
    if _cv2 is not None:
        return _as_hwc(_cv2.resize(img, (int(width), int(height)),
                                   interpolation=_cv2.INTER_LINEAR))
    import torch
    _warn_no_opencv()
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    out = torch.nn.functional.interpolate(t, size=(int(height), int(width)), mode="bilinear",
                                          align_corners=False, antialias=False)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def read_image(path, height=0, width=0, is_color=True):
    """Caffe's ``ReadImageToCVMat``: the image file at ``path`` as ``H x W x C`` uint8 BGR (3
    channels, or 1 when ``is_color`` is false), resized to ``height x width`` when both are
    positive. A missing or unreadable file raises :class:`DataSourceError` naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise missing(path, "Image file")
    with open(path, "rb") as f:
        data = f.read()
    img = decode_image(data, bool(is_color), where=f"image file {path!r}")
    if height > 0 and width > 0:
        img = resize_image(img, height, width)
    return img
