"""``keras.ops.image``: resizing, colour conversion, patches, padding and cropping of image
batches (channels-last by default, as in Keras)."""
import torch
import torch.nn.functional as F

from kaffe.ops.nn import _channels_last, _from_channels_first, _to_channels_first
from kaffe.ops.registry import float_tensor, op

_MODES = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic",
          "area": "area", "lanczos3": None, "lanczos5": None}


def _batched(images):
    x = float_tensor(images)
    return (x.unsqueeze(0), True) if x.dim() == 3 else (x, False)


@op("Resize", module="image")
def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None):
    mode = _MODES.get(interpolation)
    if mode is None:
        raise ValueError(f"image.resize: interpolation {interpolation!r} is not supported; use "
                         f"one of {[k for k, v in _MODES.items() if v]}.")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("image.resize: only one of crop_to_aspect_ratio and "
                         "pad_to_aspect_ratio can be True.")
    if fill_mode != "constant":
        raise ValueError(f"image.resize: fill_mode must be 'constant'. Received "
                         f"fill_mode={fill_mode!r}.")
    if len(size) != 2:
        raise ValueError(f"image.resize: size must be (height, width). Received size={size!r}.")
    x, unbatch = _batched(images)
    if x.dim() != 4:
        raise ValueError("image.resize: expected images of rank 3 (one image) or 4 (a batch). "
                         f"Received shape {tuple(float_tensor(images).shape)}.")
    last = _channels_last(data_format)
    x = _to_channels_first(x, last)
    height, width = size
    h, w = x.shape[-2:]
    if crop_to_aspect_ratio:
        crop_h = max(min(h, int(w * height / width)), 1)
        crop_w = max(min(w, int(h * width / height)), 1)
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        x = x[..., top:top + crop_h, left:left + crop_w]
    elif pad_to_aspect_ratio:  # as Keras: the same margin on both sides, fill_value
        top = (max(h, int(w * height / width)) - h) // 2
        left = (max(w, int(h * width / height)) - w) // 2
        x = F.pad(x, (left, left, top, top), value=float(fill_value))
    kwargs = {} if mode in ("nearest-exact", "area") else {"align_corners": False,
                                                    "antialias": bool(antialias)}
    out = F.interpolate(x, size=(height, width), mode=mode, **kwargs)
    out = _from_channels_first(out, last)
    return out[0] if unbatch else out


_GRAY = (0.2989, 0.5870, 0.1140)


@op("RGBToGrayscale", module="image")
def rgb_to_grayscale(images, data_format=None):
    x = float_tensor(images)
    axis = -1 if _channels_last(data_format) else -3
    weights = torch.tensor(_GRAY, dtype=x.dtype, device=x.device)
    shape = [1] * x.dim()
    shape[axis] = 3
    return (x * weights.reshape(shape)).sum(dim=axis, keepdim=True)


@op("RGBToHSV", module="image")
def rgb_to_hsv(images, data_format=None):
    x = float_tensor(images)
    axis = -1 if _channels_last(data_format) else -3
    r, g, b = x.unbind(axis)
    value = torch.maximum(torch.maximum(r, g), b)
    minimum = torch.minimum(torch.minimum(r, g), b)
    delta = value - minimum
    safe = torch.where(delta == 0, torch.ones_like(delta), delta)
    hue = torch.where(value == r, (g - b) / safe,
                      torch.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = torch.where(delta == 0, torch.zeros_like(hue), (hue / 6.0) % 1.0)
    saturation = torch.where(value == 0, torch.zeros_like(value),
                             delta / torch.where(value == 0, torch.ones_like(value), value))
    return torch.stack([hue, saturation, value], dim=axis)


@op("HSVToRGB", module="image")
def hsv_to_rgb(images, data_format=None):
    x = float_tensor(images)
    axis = -1 if _channels_last(data_format) else -3
    h, s, v = x.unbind(axis)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (n + h * 6.0) % 6.0
        channels.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(channels, dim=axis)


@op("ExtractPatches", module="image")
def extract_patches(images, size, strides=None, dilation_rate=1, padding="valid",
                    data_format=None):
    """Patches of ``size`` (2 numbers: images; 3: volumes, as ``extract_patches_3d``) laid out
    along the channel axis in (rows, cols, channels) order, as Keras's identity convolution."""
    if isinstance(size, (list, tuple)) and len(size) == 3:
        return _extract_patches_3d(images, size, strides, dilation_rate, padding, data_format)
    if isinstance(size, (list, tuple)) and len(size) != 2:
        raise ValueError(f"image.extract_patches: size must be an int or a tuple of 2 (images) "
                         f"or 3 (volumes). Received size={size!r}.")
    x, unbatch = _batched(images)
    last = _channels_last(data_format)
    x = _to_channels_first(x, last)
    size = (size, size) if isinstance(size, int) else tuple(size)
    strides = size if strides is None else ((strides, strides) if isinstance(strides, int)
                                            else tuple(strides))
    if padding == "same":
        from kaffe.ops.nn import _same_padding
        x = F.pad(x, _same_padding(x, size, strides, (dilation_rate,) * 2))
    cols = F.unfold(x, size, dilation=dilation_rate, stride=strides)
    batch, channels = x.shape[0], x.shape[1]
    out_h = (x.shape[2] - (size[0] - 1) * dilation_rate - 1) // strides[0] + 1
    out_w = (x.shape[3] - (size[1] - 1) * dilation_rate - 1) // strides[1] + 1
    # unfold gives (batch, C*kh*kw, L) with channel slowest; Keras wants (kh, kw, C) order
    cols = cols.reshape(batch, channels, size[0] * size[1], out_h, out_w)
    cols = cols.permute(0, 3, 4, 2, 1).reshape(batch, out_h, out_w, -1)
    out = cols if last else cols.permute(0, 3, 1, 2)
    return out[0] if unbatch else out


def _triple(value, name):
    triple = tuple(value) if isinstance(value, (list, tuple)) else (value,) * 3
    if len(triple) != 3:
        raise ValueError(f"image.extract_patches_3d: {name} must be an int or a tuple of 3. "
                         f"Received {name}={value!r}.")
    return tuple(int(v) for v in triple)


def extract_patches_3d(volumes, size, strides=None, dilation_rate=1, padding="valid",
                       data_format=None):
    """Patches of ``size`` (depth, height, width) from (batches of) volumes, flattened in
    (depth, rows, cols, channels) order along the channel axis. As in Keras, an
    ``ExtractPatches`` op with a 3-number size (so a graph node reads back the same)."""
    return extract_patches(volumes, _triple(size, "size"), strides, dilation_rate, padding,
                           data_format)


def _extract_patches_3d(volumes, size, strides, dilation_rate, padding, data_format):
    x = float_tensor(volumes)
    if x.dim() not in (4, 5):
        raise ValueError("image.extract_patches_3d: expected volumes of rank 4 (one volume) or "
                         f"5 (a batch). Received shape {tuple(x.shape)}.")
    unbatch = x.dim() == 4
    x = x.unsqueeze(0) if unbatch else x
    last = _channels_last(data_format)
    x = _to_channels_first(x, last)
    size = _triple(size, "size")
    strides = size if strides is None else _triple(strides, "strides")
    dilation = _triple(dilation_rate, "dilation_rate")
    if padding not in ("valid", "same"):
        raise ValueError("image.extract_patches_3d: padding must be 'valid' or 'same'. "
                         f"Received padding={padding!r}.")
    if padding == "same":
        from kaffe.ops.nn import _same_padding
        x = F.pad(x, _same_padding(x, size, strides, dilation))
    for axis, (k, s, d) in enumerate(zip(size, strides, dilation), start=2):
        span = (k - 1) * d + 1
        if x.shape[axis] < span:
            raise ValueError(f"image.extract_patches_3d: a patch spans {span} cells along axis "
                             f"{axis - 2} of the volume, which has only {x.shape[axis]}.")
        x = x.unfold(axis, span, s)[..., ::d]  # appends the patch axis
    # (B, C, oD, oH, oW, kd, kh, kw) -> (B, oD, oH, oW, kd*kh*kw*C)
    patches = x.permute(0, 2, 3, 4, 5, 6, 7, 1).flatten(4)
    out = patches if last else patches.movedim(-1, 1)
    return out[0] if unbatch else out


@op("PadImages", module="image")
def pad_images(images, top_padding=None, left_padding=None, bottom_padding=None,
               right_padding=None, target_height=None, target_width=None, data_format=None):
    x, unbatch = _batched(images)
    last = _channels_last(data_format)
    x = _to_channels_first(x, last)
    h, w = x.shape[-2:]
    top = top_padding or 0
    left = left_padding or 0
    bottom = bottom_padding if bottom_padding is not None else (target_height - h - top
                                                                if target_height else 0)
    right = right_padding if right_padding is not None else (target_width - w - left
                                                             if target_width else 0)
    out = _from_channels_first(F.pad(x, (left, right, top, bottom)), last)
    return out[0] if unbatch else out


@op("CropImages", module="image")
def crop_images(images, top_cropping=None, left_cropping=None, bottom_cropping=None,
                right_cropping=None, target_height=None, target_width=None, data_format=None):
    x, unbatch = _batched(images)
    last = _channels_last(data_format)
    x = _to_channels_first(x, last)
    h, w = x.shape[-2:]
    top, left = top_cropping or 0, left_cropping or 0
    height = target_height if target_height is not None else h - top - (bottom_cropping or 0)
    width = target_width if target_width is not None else w - left - (right_cropping or 0)
    out = _from_channels_first(x[..., top:top + height, left:left + width], last)
    return out[0] if unbatch else out


# The whole of Keras's ops.image also in this module (``kaffe run`` serves it as keras.ops.image).
from kaffe.ops.image_filters import gaussian_blur, sobel_edges, ssim  # noqa: E402,F401
from kaffe.ops.image_geometry import (affine_transform, elastic_transform,  # noqa: E402,F401
                                      map_coordinates, perspective_transform,
                                      scale_and_translate)
