"""Caffe's ``transform_param`` (``DataTransformer``): crop, mirror, mean subtraction and scale of
``C x H x W`` images (BGR, uint8 or float), in Caffe's arithmetic: ``(x - mean) * scale`` in
float32, the mean being ``mean_file`` (full image size, indexed before cropping) or one
``mean_value`` per channel (or one for all). ``crop_size`` crops at random in TRAIN and at the
centre in TEST; ``mirror`` flips horizontally at random (in both phases, as Caffe does)."""
import logging

import numpy as np
import torch

from kaffe.data.errors import DataSourceError, missing

log = logging.getLogger("kaffe")


class DataTransformer:
    """Apply a ``TransformationParameter`` in ``phase`` ('TRAIN' / 'TEST'); ``where`` names the
    layer in errors."""

    def __init__(self, param, phase, where="data layer"):
        self.param = param
        self.phase = phase
        self.where = where
        self.scale = np.float32(param.scale)
        self.crop = int(param.crop_size)
        self.mirror = bool(param.mirror)
        if param.force_color and param.force_gray:
            raise ValueError(f"{where}: transform_param sets both force_color and force_gray; "
                             f"choose one.")
        if param.mean_file and len(param.mean_value):
            raise ValueError(f"{where}: transform_param sets both mean_file and mean_value; "
                             f"Caffe takes one or the other.")
        self.mean = self._load_mean(param.mean_file) if param.mean_file else None
        self.mean_values = np.array(param.mean_value, np.float32)
        needs_rand = self.mirror or (phase == "TRAIN" and self.crop)
        self._rng = np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, ()))) \
            if needs_rand else None

    @property
    def color_flag(self):
        """How encoded images are decoded: True (force_color), False (force_gray) or None."""
        if self.param.force_color:
            return True
        if self.param.force_gray:
            return False
        return None

    def _load_mean(self, path):
        import os

        from kaffe.caffe import blobs
        if not os.path.isfile(path):
            raise missing(path, f"{self.where}: mean_file",
                          " Make it with compute_image_mean, or use mean_value.")
        mean = blobs.load_blobproto(path)
        if mean.ndim == 4 and mean.shape[0] == 1:
            mean = mean[0]
        if mean.ndim != 3:
            raise DataSourceError(f"{self.where}: mean_file {path!r} holds a blob of shape "
                                  f"{mean.shape}; expected 1 x C x H x W.")
        return mean.astype(np.float32)

    def output_shape(self, shape):
        """``(C, h, w)`` the transform makes of a ``(C, H, W)`` image, checking it fits."""
        c, h, w = shape
        self._check(shape)
        return (c, self.crop, self.crop) if self.crop else (c, h, w)

    def _check(self, shape):
        c, h, w = shape
        if self.crop and (h < self.crop or w < self.crop):
            raise DataSourceError(f"{self.where}: crop_size {self.crop} is larger than the "
                                  f"{h}x{w} images; use a smaller crop or larger images.")
        if self.mean is not None and tuple(self.mean.shape) != tuple(shape):
            crop = f" (before cropping to {self.crop}x{self.crop})" if self.crop else ""
            m = "x".join(map(str, self.mean.shape))
            raise DataSourceError(
                f"{self.where}: mean_file {self.param.mean_file!r} has shape {m} but the images "
                f"are {c}x{h}x{w}{crop}; Caffe subtracts the mean from the full image, so it "
                f"must have the images' size. Recompute it with compute_image_mean on these "
                f"images, or use mean_value.")
        if len(self.mean_values) not in (0, 1, c):
            raise DataSourceError(f"{self.where}: {len(self.mean_values)} mean_value entries "
                                  f"for {c}-channel images; give one, or one per channel.")

    def _offsets(self, h, w):
        if not self.crop:
            return 0, 0
        if self.phase == "TRAIN":
            return (int(self._rng.integers(h - self.crop + 1)),
                    int(self._rng.integers(w - self.crop + 1)))
        return (h - self.crop) // 2, (w - self.crop) // 2

    def __call__(self, image):
        """One ``C x H x W`` image -> float32 ``C x h x w``."""
        image = np.asarray(image)
        c, h, w = image.shape
        self._check(image.shape)
        do_mirror = self.mirror and bool(self._rng.integers(2))
        y, x = self._offsets(h, w)
        ch, cw = (self.crop, self.crop) if self.crop else (h, w)
        out = image[:, y:y + ch, x:x + cw].astype(np.float32)
        if self.mean is not None:
            out -= self.mean[:, y:y + ch, x:x + cw]
        elif len(self.mean_values):
            values = np.broadcast_to(self.mean_values, (c,)) if len(self.mean_values) == 1 \
                else self.mean_values
            out -= values[:, None, None]
        if self.scale != 1:
            out *= self.scale
        return out[:, :, ::-1] if do_mirror else out

    def batch(self, images):
        """A list of ``C x H x W`` images (one size) -> float32 ``N x C x h x w``. Without
        random crops or mirrors the whole batch is done in one go (same arithmetic)."""
        if self._rng is not None:
            return np.stack([self(im) for im in images])
        stack = np.stack(images)
        c, h, w = stack.shape[1:]
        self._check((c, h, w))
        y, x = self._offsets(h, w)
        ch, cw = (self.crop, self.crop) if self.crop else (h, w)
        out = stack[:, :, y:y + ch, x:x + cw].astype(np.float32)
        if self.mean is not None:
            out -= self.mean[None, :, y:y + ch, x:x + cw]
        elif len(self.mean_values):
            values = np.broadcast_to(self.mean_values, (c,)) if len(self.mean_values) == 1 \
                else self.mean_values
            out -= values[None, :, None, None]
        if self.scale != 1:
            out *= self.scale
        return out
