"""Images as files and arrays, on Pillow: ``load_img``, ``img_to_array``, ``array_to_img``,
``save_img``, ``list_pictures``, as Keras 2 (keras-preprocessing 1.1.2) defines them."""
import io
import os
import warnings

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from kaffe.config import standardize_data_format

#: ``interpolation=`` names -> Pillow resampling filters (Keras's table).
INTERPOLATION = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
                 "hamming": Image.HAMMING, "box": Image.BOX, "lanczos": Image.LANCZOS}

#: ``color_mode`` -> the Pillow modes kept as they are, and the mode anything else becomes.
COLOR_MODES = {"grayscale": (("L", "I;16", "I"), "L"), "rgb": (("RGB",), "RGB"),
               "rgba": (("RGBA",), "RGBA")}

#: Pillow mode for an array with this many channels (Keras's ``array_to_img``).
CHANNEL_MODES = {4: "RGBA", 3: "RGB", 1: "L"}


class ImageDecodeError(ValueError):
    """An image file that Pillow cannot decode; the message names the file."""


def _data_format(data_format):
    data_format = standardize_data_format(data_format)
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(f"expected data_format 'channels_first' or 'channels_last'. "
                         f"Received: data_format={data_format!r}")
    return data_format


def load_img(path, grayscale=False, color_mode="rgb", target_size=None,
             interpolation="nearest", keep_aspect_ratio=False):
    """A Pillow image of the file at ``path`` (or a file-like object), converted to
    ``color_mode`` (``"grayscale"``, ``"rgb"``, ``"rgba"``) and resized to ``target_size``
    ``(height, width)`` with ``interpolation``; ``keep_aspect_ratio`` crops the centre to the
    target's aspect ratio first (Keras 2.9+). A file Pillow cannot decode raises
    ``ImageDecodeError`` naming it."""
    if grayscale is True:
        warnings.warn('grayscale is deprecated. Please use color_mode = "grayscale"')
        color_mode = "grayscale"
    if color_mode not in COLOR_MODES:
        raise ValueError(f'color_mode must be "grayscale", "rgb", or "rgba". '
                         f"Received: color_mode={color_mode!r}")
    is_path = isinstance(path, (str, os.PathLike))
    name = os.fspath(path) if is_path else getattr(path, "name", repr(path))
    if is_path:
        with open(path, "rb") as f:
            data = io.BytesIO(f.read())
    elif hasattr(path, "read"):
        data = io.BytesIO(path.read())
    else:
        raise TypeError(f"load_img: path should be path-like or a file-like object such as "
                        f"io.BytesIO; received {type(path).__name__} {path!r}.")
    try:
        img = Image.open(data)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"cannot decode image file {name}: {error}") from error
    kept, convert_to = COLOR_MODES[color_mode]
    if img.mode not in kept:
        img = img.convert(convert_to)
    if target_size is not None:
        width_height = (int(target_size[1]), int(target_size[0]))
        if img.size != width_height:
            if interpolation not in INTERPOLATION:
                raise ValueError(f"Invalid interpolation method {interpolation!r}. Supported "
                                 f"methods are {', '.join(INTERPOLATION)}")
            box = None
            if keep_aspect_ratio:
                width, height = img.size
                crop_height = (width * width_height[1]) // width_height[0]
                crop_width = (height * width_height[0]) // width_height[1]
                crop_height, crop_width = min(height, crop_height), min(width, crop_width)
                top, left = (height - crop_height) // 2, (width - crop_width) // 2
                box = (left, top, left + crop_width, top + crop_height)
            img = img.resize(width_height, INTERPOLATION[interpolation], box=box)
    return img


def img_to_array(img, data_format=None, dtype="float32"):
    """``(H, W, C)`` (or ``(C, H, W)``) array of a Pillow image; a 2-D image gets one channel."""
    data_format = _data_format(data_format)
    x = np.asarray(img, dtype=dtype)
    if x.ndim == 2:
        x = x.reshape(x.shape + (1,))
    elif x.ndim != 3:
        raise ValueError(f"img_to_array expected an image of rank 2 or 3. Received: an array "
                         f"of shape {x.shape}")
    return x.transpose(2, 0, 1) if data_format == "channels_first" else x


def array_to_img(x, data_format=None, scale=True, dtype="float32"):
    """A Pillow image of a rank-3 array; ``scale`` maps its min..max to 0..255 first. 1, 3 or 4
    channels give modes L (or I above 255), RGB, RGBA."""
    data_format = _data_format(data_format)
    if isinstance(x, torch.Tensor):  # a generator's output from a training step keeps its grad
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). Got array with "
                         f"shape: {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    channels = x.shape[2]
    if channels not in CHANNEL_MODES:
        raise ValueError(f"Unsupported channel number: {channels} (expected 1, 3 or 4; array "
                         f"shape {x.shape})")
    if channels == 1:
        if np.max(x) > 255:
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    return Image.fromarray(x.astype("uint8"), CHANNEL_MODES[channels])


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Write the rank-3 array ``x`` as an image file (format from ``file_format`` or the
    extension); RGBA is converted to RGB for JPEG."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and (file_format in ("jpg", "jpeg")
                               or str(path).lower().endswith((".jpg", ".jpeg"))):
        warnings.warn("The JPG format does not support RGBA images, converting to RGB.")
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)


def list_pictures(directory, ext=("jpg", "jpeg", "bmp", "png", "ppm", "tif", "tiff")):
    """Paths of the image files under ``directory`` (recursively) with one of ``ext``."""
    ext = tuple(f".{e}" for e in ((ext,) if isinstance(ext, str) else ext))
    return [os.path.join(root, f) for root, _, files in os.walk(directory) for f in files
            if f.lower().endswith(ext)]
