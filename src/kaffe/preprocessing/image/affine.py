"""Keras 2's image transforms on one image array: the affine warp (rotation, shift, shear, zoom
about the centre), flips, channel shift and brightness.

The warp is ``scipy.ndimage.affine_transform`` (spline order 1 by default, fill modes
``constant``/``nearest``/``reflect``/``wrap``), as in keras-preprocessing: Keras 2 defines
augmentation by exactly that resampling, edge handling included, and seeded augmentations
reproduce Keras's images only with it; a torch ``grid_sample`` warp differs at the borders and
in ``reflect``/``wrap``.
"""
import numpy as np
from PIL import ImageEnhance

from kaffe.preprocessing.image.image_io import array_to_img, img_to_array

FILL_MODES = ("constant", "nearest", "reflect", "wrap")


def _ndimage():
    try:
        from scipy import ndimage
    except ImportError as error:  # scipy is a declared dependency; say so if it is missing
        raise ImportError("kaffe's image transforms need SciPy (scipy.ndimage), a dependency of "
                          "kaffe: pip install scipy") from error
    return ndimage


def transform_matrix_offset_center(matrix, x, y):
    """``matrix`` moved so that it acts about the centre of an ``x`` by ``y`` image."""
    o_x, o_y = float(x) / 2 + 0.5, float(y) / 2 + 0.5
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return offset @ matrix @ reset


def affine_matrix(theta=0, tx=0, ty=0, shear=0, zx=1, zy=1):
    """The 3x3 (row, col) matrix Keras composes: rotation, then shift, shear, zoom; ``None``
    for the identity. Angles in degrees."""
    parts = []
    if theta != 0:
        t = np.deg2rad(theta)
        parts.append(np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]))
    if tx != 0 or ty != 0:
        parts.append(np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]))
    if shear != 0:
        s = np.deg2rad(shear)
        parts.append(np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]]))
    if zx != 1 or zy != 1:
        parts.append(np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]]))
    if not parts:
        return None
    matrix = parts[0]
    for part in parts[1:]:
        matrix = matrix @ part
    return matrix


def apply_affine_transform(x, theta=0, tx=0, ty=0, shear=0, zx=1, zy=1, row_axis=0, col_axis=1,
                           channel_axis=2, fill_mode="nearest", cval=0.0, order=1):
    """``x`` (one image) warped by :func:`affine_matrix` about its centre; ``tx`` moves along
    rows, ``ty`` along columns (Keras's naming)."""
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode expected one of {FILL_MODES}. Received: "
                         f"fill_mode={fill_mode!r}")
    matrix = affine_matrix(theta, tx, ty, shear, zx, zy)
    if matrix is None:
        return x
    ndimage = _ndimage()
    matrix = transform_matrix_offset_center(matrix, x.shape[row_axis], x.shape[col_axis])
    channels = np.rollaxis(x, channel_axis, 0)
    warped = [ndimage.affine_transform(c, matrix[:2, :2], matrix[:2, 2], order=order,
                                       mode=fill_mode, cval=cval) for c in channels]
    return np.rollaxis(np.stack(warped, axis=0), 0, channel_axis + 1)


def flip_axis(x, axis):
    """``x`` reversed along ``axis``."""
    return np.flip(np.asarray(x), axis)


def apply_channel_shift(x, intensity, channel_axis=0):
    """Add ``intensity`` to every channel, clipped to the image's own min..max."""
    channels = np.rollaxis(x, channel_axis, 0)
    low, high = np.min(channels), np.max(channels)
    shifted = [np.clip(c + intensity, low, high) for c in channels]
    return np.rollaxis(np.stack(shifted, axis=0), 0, channel_axis + 1)


def apply_brightness_shift(x, brightness, scale=True, data_format="channels_last"):
    """Pillow's brightness enhancement by ``brightness`` (1 = unchanged), through an 8-bit image
    as in Keras 2 (``scale`` maps the array's min..max to 0..255 first). Keras 2 assumes
    channels-last here and fails on channels-first images; kaffe passes the format through."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    img = ImageEnhance.Brightness(img).enhance(brightness)
    return img_to_array(img, data_format=data_format)


def random_rotation(x, rg, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest",
                    cval=0.0, interpolation_order=1):
    """Rotate by an angle drawn uniformly from ``[-rg, rg]`` degrees (NumPy's global RNG)."""
    theta = np.random.uniform(-rg, rg)
    return apply_affine_transform(x, theta=theta, row_axis=row_axis, col_axis=col_axis,
                                  channel_axis=channel_axis, fill_mode=fill_mode, cval=cval,
                                  order=interpolation_order)


def random_shift(x, wrg, hrg, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest",
                 cval=0.0, interpolation_order=1):
    """Shift by fractions drawn from ``[-hrg, hrg]`` of the height and ``[-wrg, wrg]`` of the
    width."""
    h, w = x.shape[row_axis], x.shape[col_axis]
    tx = np.random.uniform(-hrg, hrg) * h
    ty = np.random.uniform(-wrg, wrg) * w
    return apply_affine_transform(x, tx=tx, ty=ty, row_axis=row_axis, col_axis=col_axis,
                                  channel_axis=channel_axis, fill_mode=fill_mode, cval=cval,
                                  order=interpolation_order)


def random_shear(x, intensity, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest",
                 cval=0.0, interpolation_order=1):
    """Shear by an angle drawn from ``[-intensity, intensity]`` degrees."""
    shear = np.random.uniform(-intensity, intensity)
    return apply_affine_transform(x, shear=shear, row_axis=row_axis, col_axis=col_axis,
                                  channel_axis=channel_axis, fill_mode=fill_mode, cval=cval,
                                  order=interpolation_order)


def random_zoom(x, zoom_range, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest",
                cval=0.0, interpolation_order=1):
    """Zoom by factors drawn from ``zoom_range = (low, high)`` per axis."""
    if len(zoom_range) != 2:
        raise ValueError(f"zoom_range should be a tuple or list of two floats. Received: "
                         f"{zoom_range!r}")
    if zoom_range[0] == 1 and zoom_range[1] == 1:
        zx, zy = 1, 1
    else:
        zx, zy = np.random.uniform(zoom_range[0], zoom_range[1], 2)
    return apply_affine_transform(x, zx=zx, zy=zy, row_axis=row_axis, col_axis=col_axis,
                                  channel_axis=channel_axis, fill_mode=fill_mode, cval=cval,
                                  order=interpolation_order)


def random_channel_shift(x, intensity_range, channel_axis=0):
    """Channel shift by an intensity drawn from ``[-intensity_range, intensity_range]``."""
    intensity = np.random.uniform(-intensity_range, intensity_range)
    return apply_channel_shift(x, intensity, channel_axis=channel_axis)


def random_brightness(x, brightness_range, scale=True):
    """Brightness shift by a factor drawn from ``brightness_range = (low, high)``."""
    if len(brightness_range) != 2:
        raise ValueError(f"brightness_range should be a tuple or list of two floats. Received: "
                         f"{brightness_range!r}")
    u = np.random.uniform(brightness_range[0], brightness_range[1])
    return apply_brightness_shift(x, u, scale)
