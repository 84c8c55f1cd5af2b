"""Caffe's ``WindowData`` layer (R-CNN fine-tuning): batches of image windows, warped to a square.

The window file (``window_data_param.source``) is Caffe's text format, one block per image::

    # 0                      <- '#' and the image index (0, 1, ...)
    images/cat.jpg           <- path, appended to root_folder by plain concatenation
    3 480 640                <- channels height width
    2                        <- number of windows
    1 0.9 10 20 200 300      <- class overlap x1 y1 x2 y2 (inclusive pixel corners)
    0 0.1 0 0 50 50

A window with ``overlap >= fg_threshold`` is foreground (its class must be > 0); one with
``overlap < bg_threshold`` is background (class 0); others are unused. Each batch is
``batch_size - int(batch_size * fg_fraction)`` background windows then the foreground ones, each
drawn at random with replacement. A window is cut from the image (BGR), grown by
``context_pad`` pixels of context at the crop scale (``crop_mode: "square"`` first makes it
square), clipped to the image with the clipped part left zero, resized to ``crop_size``
(OpenCV ``INTER_LINEAR``), mirrored at random when ``mirror``, mean-subtracted (``mean_file``
or ``mean_value``) and multiplied by ``window_data_param.scale``. Tops: data
``(batch, channels, crop, crop)`` and label ``(batch,)``.

As in Caffe, ``crop_size``, ``mirror`` and ``mean_file`` / ``mean_value`` come from
``transform_param`` (kaffe also reads the deprecated copies in ``window_data_param`` when
``transform_param`` leaves them unset). Windows are drawn with torch's seeded RNG, not Caffe's
Boost generator, so the batches differ from Caffe's draw for draw; the geometry of each
window follows ``window_data_layer.cpp`` exactly.
"""
import logging

import numpy as np

from kaffe.caffe.blobs import load_blobproto
from kaffe.caffe.builders.data import _DataLayer, _positive_batch_size, _shuffle_rng
from kaffe.caffe.builders.registry import register
from kaffe.data import images as _images
from kaffe.data.errors import DataSourceError

log = logging.getLogger("kaffe")


def _c_round(value):
    """C's ``round`` (halves away from zero) of a float32 value, as an int."""
    value = np.float32(value)
    return int(np.sign(value) * np.floor(np.abs(value) + np.float32(0.5)))


def read_window_file(path, root_folder="", fg_threshold=0.5, bg_threshold=0.5):
    """Parse a window file. Returns ``(images, foreground, background)``: ``images`` a list of
    ``(path, (channels, height, width))`` by image index, the others lists of
    ``(image_index, label, overlap, x1, y1, x2, y2)``. Errors name the file and line."""
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except OSError as err:
        raise DataSourceError(f"Failed to open window file {path!r}: {err.strerror}.") from None
    tokens = [(word, number) for number, line in enumerate(lines, 1) for word in line.split()]
    if not tokens:
        raise DataSourceError(f"Window file {path!r} is empty.")
    pos = 0

    def take(count, what):
        nonlocal pos
        if pos + count > len(tokens):
            raise DataSourceError(f"Window file {path!r} ends early: expected {what} after "
                                  f"line {tokens[-1][1]}.")
        words = tokens[pos:pos + count]
        pos += count
        return words

    def numbers(words, kind, what):
        try:
            return [kind(w) for w, _ in words]
        except ValueError:
            raise DataSourceError(f"{path}:{words[0][1]}: expected {what}; received "
                                  f"{' '.join(w for w, _ in words)!r}.") from None

    images, foreground, background = {}, [], []
    while pos < len(tokens):
        (hashtag, line), = take(1, "'#'")
        if hashtag != "#":
            raise DataSourceError(f"{path}:{line}: expected '# <image index>' to start an "
                                  f"image block; received {hashtag!r}.")
        (index,) = numbers(take(1, "an image index"), int, "an image index")
        (image_path, _), = take(1, "an image path")
        size = tuple(numbers(take(3, "channels height width"), int, "channels height width"))
        (count,) = numbers(take(1, "the number of windows"), int, "the number of windows")
        for _ in range(count):
            words = take(6, "a window 'class overlap x1 y1 x2 y2'")
            label, = numbers(words[:1], int, "an integer class")
            overlap, = numbers(words[1:2], float, "an overlap")
            x1, y1, x2, y2 = numbers(words[2:], int, "integer corners x1 y1 x2 y2")
            if overlap >= fg_threshold:
                if label <= 0:
                    raise DataSourceError(f"{path}:{words[0][1]}: a foreground window (overlap "
                                          f"{overlap} >= fg_threshold {fg_threshold}) needs a "
                                          f"class > 0; received {label}.")
                foreground.append((index, label, overlap, x1, y1, x2, y2))
            elif overlap < bg_threshold:
                background.append((index, 0, 0.0, x1, y1, x2, y2))
        images[index] = (root_folder + image_path, size)
    missing = [i for i in {w[0] for w in foreground + background} if i not in images]
    if missing:
        raise DataSourceError(f"Window file {path!r}: windows refer to image index "
                              f"{missing[0]}, which has no block.")
    return images, foreground, background


def window_geometry(box, rows, cols, crop_size, context_pad, square, mirror):
    """Caffe's warp of one window: ``(roi, size, pad)`` where ``roi = (x1, y1, x2, y2)`` is the
    clipped image region, ``size = (height, width)`` what it is resized to, and
    ``pad = (pad_h, pad_w)`` where it lands in the ``crop_size`` square."""
    x1, y1, x2, y2 = box
    if not (context_pad > 0 or square):
        return (x1, y1, x2, y2), (crop_size, crop_size), (0, 0)
    f = np.float32
    context_scale = f(crop_size) / f(crop_size - 2 * context_pad)
    half_h, half_w = f(y2 - y1 + 1) / f(2), f(x2 - x1 + 1) / f(2)
    center_x, center_y = f(x1) + half_w, f(y1) + half_h
    if square:
        half_h = half_w = max(half_h, half_w)
    x1 = _c_round(center_x - half_w * context_scale)
    x2 = _c_round(center_x + half_w * context_scale)
    y1 = _c_round(center_y - half_h * context_scale)
    y2 = _c_round(center_y + half_h * context_scale)
    unclipped_h, unclipped_w = y2 - y1 + 1, x2 - x1 + 1
    pad_x1, pad_y1 = max(0, -x1), max(0, -y1)
    pad_x2, pad_y2 = max(0, x2 - cols + 1), max(0, y2 - rows + 1)
    x1, x2, y1, y2 = x1 + pad_x1, x2 - pad_x2, y1 + pad_y1, y2 - pad_y2
    scale_x, scale_y = f(crop_size) / f(unclipped_w), f(crop_size) / f(unclipped_h)
    width = _c_round(f(x2 - x1 + 1) * scale_x)
    height = _c_round(f(y2 - y1 + 1) * scale_y)
    pad_x1, pad_x2 = _c_round(f(pad_x1) * scale_x), _c_round(f(pad_x2) * scale_x)
    pad_h = _c_round(f(pad_y1) * scale_y)
    pad_w = pad_x2 if mirror else pad_x1
    height = min(height, crop_size - pad_h)
    width = min(width, crop_size - pad_w)
    return (x1, y1, x2, y2), (height, width), (pad_h, pad_w)


@register("WindowData")
class WindowData(_DataLayer):
    """R-CNN's window data layer; see the module docstring for the file format and sampling."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p, tp = param.window_data_param, param.transform_param
        where = f"WindowData layer '{param.name}'"
        if len(param.top) != 2:
            raise ValueError(f"{where} needs two tops (data and label); it has "
                             f"{len(param.top)}.")
        self.batch_size = _positive_batch_size(param, p.batch_size, "window_data_param")
        self.crop_size = tp.crop_size or p.crop_size
        if self.crop_size <= 0:
            raise ValueError(f"{where}: transform_param.crop_size must be positive (the side "
                             f"of the warped windows); received {self.crop_size}.")
        if 2 * p.context_pad >= self.crop_size:
            raise ValueError(f"{where}: context_pad {p.context_pad} leaves no room in a "
                             f"{self.crop_size}-pixel crop.")
        if p.crop_mode not in ("warp", "square"):
            raise ValueError(f"{where}: crop_mode must be 'warp' or 'square'; received "
                             f"{p.crop_mode!r}.")
        self.mirror = tp.mirror or p.mirror
        self.scale, self.context_pad, self.square = p.scale, p.context_pad, p.crop_mode == "square"
        self.fg_fraction = p.fg_fraction
        try:
            self.images, self.fg, self.bg = read_window_file(
                p.source, p.root_folder, p.fg_threshold, p.bg_threshold)
        except DataSourceError as err:
            raise DataSourceError(f"{where}: {err}") from None
        if not self.fg or not self.bg:
            raise DataSourceError(
                f"{where}: window file {p.source!r} has {len(self.fg)} foreground windows "
                f"(overlap >= {p.fg_threshold}) and {len(self.bg)} background ones (overlap < "
                f"{p.bg_threshold}); Caffe needs at least one of each.")
        self.channels = next(iter(self.images.values()))[1][0]
        self.mean = self._mean(tp.mean_file or p.mean_file, list(tp.mean_value), where)
        self._cache = {} if p.cache_images else None
        self._rng = _shuffle_rng()
        self.shapes = [(self.batch_size, self.channels, self.crop_size, self.crop_size),
                       (self.batch_size,)]
        log.info("%s: %d images, %d foreground and %d background windows from %s", where,
                 len(self.images), len(self.fg), len(self.bg), p.source)

    def _mean(self, mean_file, mean_values, where):
        if mean_file and mean_values:
            raise ValueError(f"{where}: give mean_file or mean_value, not both.")
        if mean_file:
            mean = load_blobproto(mean_file).astype(np.float32)
            return mean.reshape(mean.shape[-3:])   # (C, H, W), indexed at the centre offset
        if mean_values:
            if len(mean_values) not in (1, self.channels):
                raise ValueError(f"{where}: give 1 mean_value or one per channel "
                                 f"({self.channels}); received {len(mean_values)}.")
            values = mean_values * self.channels if len(mean_values) == 1 else mean_values
            return np.asarray(values, np.float32)
        return None

    def _image(self, index):
        path = self.images[index][0]
        if self._cache is not None and path in self._cache:
            return self._cache[path]
        img = _images.read_image(path, is_color=True)
        if self._cache is not None:
            self._cache[path] = img
        return img

    def _warp(self, window, mirror):
        """One window as a ``(channels, crop, crop)`` float32 array, before scaling."""
        crop = self.crop_size
        img = self._image(window[0])
        rows, cols = img.shape[:2]
        (x1, y1, x2, y2), (height, width), (pad_h, pad_w) = window_geometry(
            window[3:], rows, cols, crop, self.context_pad, self.square, mirror)
        if not (0 <= x1 <= x2 < cols and 0 <= y1 <= y2 < rows):
            raise DataSourceError(f"WindowData layer '{self.name}': window {window[3:]} lies "
                                  f"outside its {cols}x{rows} image "
                                  f"{self.images[window[0]][0]!r}.")
        patch = _images.resize_image(img[y1:y2 + 1, x1:x2 + 1], height, width)
        if mirror:
            patch = patch[:, ::-1]
        out = np.zeros((self.channels, crop, crop), np.float32)
        out[:, pad_h:pad_h + height, pad_w:pad_w + width] = patch.transpose(2, 0, 1)
        if self.mean is None:
            return out
        if self.mean.ndim == 1:
            sub = self.mean[:, None, None]
        else:
            off = (self.mean.shape[2] - crop) // 2
            sub = np.zeros_like(out)
            sub[:, pad_h:pad_h + height, pad_w:pad_w + width] = self.mean[
                :, off + pad_h:off + pad_h + height, off + pad_w:off + pad_w + width]
        region = np.zeros_like(out, dtype=bool)
        region[:, pad_h:pad_h + height, pad_w:pad_w + width] = True
        return np.where(region, out - sub, 0.0).astype(np.float32)

    def next_batch(self):
        num_fg = int(np.float32(self.batch_size) * np.float32(self.fg_fraction))
        data = np.zeros(self.shapes[0], np.float32)
        labels = np.zeros(self.batch_size, np.float32)
        item = 0
        for pool, count in ((self.bg, self.batch_size - num_fg), (self.fg, num_fg)):
            for _ in range(count):
                window = pool[int(self._rng.integers(len(pool)))]
                mirror = bool(self.mirror and self._rng.integers(2))
                data[item] = self._warp(window, mirror) * np.float32(self.scale)
                labels[item] = window[1]
                item += 1
        return [data, labels]


__all__ = ["WindowData", "read_window_file", "window_geometry"]
