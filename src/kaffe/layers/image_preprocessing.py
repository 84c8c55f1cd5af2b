"""Image preprocessing layers (Keras 3's): ``Resizing``, ``CenterCrop``, and the augmentations
``RandomFlip``, ``RandomRotation``, ``RandomZoom``, ``RandomTranslation``, ``RandomCrop``,
``RandomContrast``, ``RandomBrightness``.

They take batches ``(B, H, W, C)`` (or ``(B, C, H, W)`` with ``data_format='channels_first'``)
or single images, and return float32. The random layers augment in training (``fit``,
``training=True``, or a direct call, as in Keras); in inference (``predict``, ``evaluate``,
``training=False``) they pass images through (``RandomCrop`` centre-crops to its size, as
Keras 2 does; Keras 3's returns the uncropped image there, against its own output shape). ``seed`` fixes a layer's own random stream: two layers with the
same seed draw the same transformations; without one they draw from torch's global generator
(``kaffe.utils.set_random_seed``).
"""
import numpy as np
import torch

from kaffe.config import standardize_data_format
from kaffe.engine.layer import Layer
from kaffe.layers import image_ops


class ImagePreprocessingLayer(Layer):
    """Shared plumbing: float32 channels-last batches inside ``transform``, any layout outside."""

    supports_masking = False

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)

    def call(self, inputs, training=None):
        x = torch.as_tensor(inputs)
        x = x if torch.is_floating_point(x) else x.to(torch.float32)
        if x.dim() not in (3, 4):
            raise ValueError(f"{type(self).__name__} '{self.name}' expects images of rank 3 or 4 "
                             f"(one image or a batch). Received shape {tuple(x.shape)}.")
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        if self.data_format == "channels_first":
            x = x.permute(0, 2, 3, 1)
        x = self.transform(x, bool(training))
        if self.data_format == "channels_first":
            x = x.permute(0, 3, 1, 2)
        return x.squeeze(0) if unbatched else x

    def transform(self, images, training):
        """``images`` (B, H, W, C) float -> transformed (B, H', W', C)."""
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _spatial_axes(self, rank):
        h = (rank - 3) if self.data_format == "channels_last" else (rank - 2)
        return h, h + 1

    def _with_size(self, input_shape, height, width):
        shape = list(input_shape)
        h, w = self._spatial_axes(len(shape))
        shape[h], shape[w] = height, width
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class RandomLayer(ImagePreprocessingLayer):
    """An augmentation: its own ``torch.Generator`` when ``seed`` is given."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        # Keras (2 and 3) augments when the layer, or a model holding it, is called directly
        # without ``training``; predict/evaluate (eval mode) and training=False pass through.
        self.training = True

    def uniform(self, shape, low, high):
        """Uniform draws in [low, high) from the layer's stream (CPU, float32)."""
        u = torch.rand(shape, generator=self._generator, dtype=torch.float32)
        return low + (high - low) * u

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _factor_pair(factor, name, bounds=(-1.0, 1.0), layer="layer"):
    """Keras's factor rule: a number f means (-|f|, |f|) clipped to ``bounds``; a pair is
    sorted. Either must lie within ``bounds``."""
    error = (f"{layer}: {name} should be a number or a pair of numbers in [{bounds[0]}, "
             f"{bounds[1]}]. Received: {name}={factor!r}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(error)
        return tuple(sorted(float(f) for f in factor))
    if isinstance(factor, (int, float, np.number)):
        if not bounds[0] <= factor <= bounds[1]:
            raise ValueError(error)
        factor = abs(float(factor))
        return (max(-factor, bounds[0]), factor)
    raise ValueError(error)


def _check_choice(value, choices, name, layer):
    if value not in choices:
        raise ValueError(f"{layer}: {name} must be one of {tuple(choices)}. Received: "
                         f"{name}={value!r}")


# ---------------------------------------------------------------------------------- sizes
class Resizing(ImagePreprocessingLayer):
    """Resize images to ``(height, width)``; ``crop_to_aspect_ratio`` crops the centred window of
    the target aspect ratio first, ``pad_to_aspect_ratio`` pads with ``fill_value`` instead."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0,
                 antialias=False, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        _check_choice(interpolation, image_ops.RESIZE_MODES, "interpolation", "Resizing")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Resizing: only one of crop_to_aspect_ratio and pad_to_aspect_ratio "
                             "can be True.")
        self.height, self.width = int(height), int(width)
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value = fill_mode, fill_value
        self.antialias = bool(antialias)

    def transform(self, images, training):
        return image_ops.resize(images, (self.height, self.width), self.interpolation,
                                self.crop_to_aspect_ratio, self.pad_to_aspect_ratio,
                                self.fill_value, self.antialias)

    def compute_output_shape(self, input_shape):
        return self._with_size(input_shape, self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias}


class CenterCrop(ImagePreprocessingLayer):
    """The centred ``(height, width)`` window; an image smaller than that is cropped to the
    target aspect ratio and resized up (Keras's ``smart_resize``)."""

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.height, self.width = int(height), int(width)

    def transform(self, images, training):
        h, w = images.shape[1:3]
        if h >= self.height and w >= self.width:
            top, left = (h - self.height) // 2, (w - self.width) // 2
            return images[:, top:top + self.height, left:left + self.width]
        return image_ops.smart_resize(images, (self.height, self.width))

    def compute_output_shape(self, input_shape):
        return self._with_size(input_shape, self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class RandomCrop(RandomLayer):
    """In training, a random ``(height, width)`` window of each batch (resized when the image is
    not larger than it); in inference, the centred window of that aspect ratio, resized."""

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.height, self.width = int(height), int(width)

    def transform(self, images, training):
        h, w = images.shape[1:3]
        if training and h > self.height and w > self.width:
            top = int(self.uniform((), 0.0, float(h - self.height + 1)))
            left = int(self.uniform((), 0.0, float(w - self.width + 1)))
            return images[:, top:top + self.height, left:left + self.width]
        if (h, w) == (self.height, self.width):
            return images
        return image_ops.smart_resize(images, (self.height, self.width))

    def compute_output_shape(self, input_shape):
        return self._with_size(input_shape, self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


# ---------------------------------------------------------------------------------- geometry
_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


class RandomFlip(RandomLayer):
    """Flip each image left-right and/or up-down with probability 1/2 (``mode``)."""

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        _check_choice(mode, _MODES, "mode", "RandomFlip")
        self.mode = mode

    def transform(self, images, training):
        if not training:
            return images
        flips = (self.uniform((images.shape[0], 1, 1, 1), 0.0, 1.0) <= 0.5).to(images.device)
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            images = torch.where(flips, torch.flip(images, dims=(2,)), images)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            images = torch.where(flips, torch.flip(images, dims=(1,)), images)
        return images

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class _AffineLayer(RandomLayer):
    """Random affine resampling with Keras's ``fill_mode``/``interpolation``/``fill_value``."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        _check_choice(fill_mode, image_ops.FILL_MODES, "fill_mode", type(self).__name__)
        _check_choice(interpolation, image_ops.AFFINE_INTERPOLATIONS, "interpolation",
                      type(self).__name__)
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, fill_value

    def transform(self, images, training):
        if not training:
            return images
        batch, height, width, _ = images.shape
        matrices = self.matrices(batch, height, width)
        return image_ops.affine_transform(images, matrices, self.interpolation, self.fill_mode,
                                          self.fill_value)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


class RandomRotation(_AffineLayer):
    """Rotate each image about its centre by a random fraction of a full turn drawn from
    ``factor`` (0.1 means up to +-36 degrees)."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = _factor_pair(factor, "factor", layer="RandomRotation")

    def matrices(self, batch, height, width):
        angles = self.uniform((batch,), self.factor[0] * 360.0, self.factor[1] * 360.0)
        return image_ops.rotation_matrices(angles, height, width)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomZoom(_AffineLayer):
    """Zoom each image by a random amount: ``height_factor`` -0.2 zooms in up to 20%, 0.2 out;
    ``width_factor`` defaults to keeping the aspect ratio."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_pair(height_factor, "height_factor", layer="RandomZoom")
        self._width = (None if width_factor is None else
                       _factor_pair(width_factor, "width_factor", layer="RandomZoom"))
        if self._height[0] <= -1.0 or (self._width and self._width[0] <= -1.0):
            raise ValueError("RandomZoom: factors must be greater than -1. Received: "
                             f"height_factor={height_factor!r}, width_factor={width_factor!r}")

    def matrices(self, batch, height, width):
        height_zoom = self.uniform((batch,), 1.0 + self._height[0], 1.0 + self._height[1])
        width_zoom = (height_zoom if self._width is None else
                      self.uniform((batch,), 1.0 + self._width[0], 1.0 + self._width[1]))
        return image_ops.zoom_matrices(width_zoom, height_zoom, height, width)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor}


class RandomTranslation(_AffineLayer):
    """Shift each image by random fractions of its height and width."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_pair(height_factor, "height_factor", layer="RandomTranslation")
        self._width = _factor_pair(width_factor, "width_factor", layer="RandomTranslation")

    def matrices(self, batch, height, width):
        dy = self.uniform((batch,), *self._height) * height
        dx = self.uniform((batch,), *self._width) * width
        return image_ops.translation_matrices(dx, dy)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor}


# ---------------------------------------------------------------------------------- colour
class RandomContrast(RandomLayer):
    """Scale each image's deviation from its per-channel mean by a factor drawn from
    ``[1 - factor[0], 1 + factor[1]]`` (Keras 3's rule), clipped to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(factor, "factor", (0.0, 1.0), "RandomContrast")
        self.value_range = tuple(value_range)

    def transform(self, images, training):
        if not training:
            return images
        factor = self.uniform((images.shape[0], 1, 1, 1), 1.0 - self.factor[0],
                              1.0 + self.factor[1]).to(images.device)
        mean = images.mean(dim=(1, 2), keepdim=True)
        return ((images - mean) * factor + mean).clamp(*self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


class RandomBrightness(RandomLayer):
    """Add a random ``factor`` fraction of ``value_range``'s width to each image, clipped."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(factor, "factor", layer="RandomBrightness")
        if len(value_range) != 2:
            raise ValueError("RandomBrightness: value_range must be (low, high). Received: "
                             f"value_range={value_range!r}")
        self.value_range = tuple(sorted(value_range))

    def transform(self, images, training):
        if not training:
            return images
        delta = self.uniform((images.shape[0], 1, 1, 1), *self.factor).to(images.device)
        delta = delta * (self.value_range[1] - self.value_range[0])
        return (images + delta).clamp(*self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}
