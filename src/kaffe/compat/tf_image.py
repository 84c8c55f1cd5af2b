"""``tf.image`` for the tensorflow stand-in: TensorFlow's names and arguments over kaffe.ops and
torch, for the image code of Keras examples (augmentation in ``Dataset.map``, patch extraction in
ViT-style layers, shifting windows by crop + pad).

Images are channels-last, as TensorFlow's: ``(height, width, channels)`` or a batch
``(batch, height, width, channels)``. Random ops draw from torch's generator (``tf.random.
set_seed`` seeds it); a batch gets one draw per image where TensorFlow does so (the flips) and one
for the whole call otherwise. Decoding (``decode_jpeg`` / ``decode_png``) is not here.
"""
import torch

from kaffe import ops
from kaffe.engine.keras_tensor import is_symbolic

_SEEDED = {}


def _generator(seed):
    """torch's global generator, or one per op seed that goes on from call to call (TensorFlow's
    op-level seed gives a fixed sequence, not the same draw every call)."""
    if seed is None:
        return None
    if int(seed) not in _SEEDED:
        _SEEDED[int(seed)] = torch.Generator().manual_seed(int(seed))
    return _SEEDED[int(seed)]

#: ``tf.image.ResizeMethod`` spellings -> Keras 3's ``interpolation`` names
RESIZE_METHODS = {"bilinear": "bilinear", "nearest": "nearest", "bicubic": "bicubic",
                  "area": "area", "lanczos3": "lanczos3", "lanczos5": "lanczos5",
                  "gaussian": "bilinear", "mitchellcubic": "bicubic"}


class ResizeMethod:
    BILINEAR, NEAREST_NEIGHBOR, BICUBIC, AREA = "bilinear", "nearest", "bicubic", "area"
    LANCZOS3, LANCZOS5, GAUSSIAN, MITCHELLCUBIC = "lanczos3", "lanczos5", "gaussian", "mitchellcubic"


def _tensor(image):
    return image if isinstance(image, torch.Tensor) or is_symbolic(image) \
        else ops.convert_to_tensor(image)


def _check_rank(op_name, image):
    if len(image.shape) not in (3, 4):
        raise ValueError(f"tf.image.{op_name} expected an image (height, width, channels) or a "
                         f"batch (batch, height, width, channels). Received shape "
                         f"{tuple(image.shape)}.")


def resize(images, size, method="bilinear", preserve_aspect_ratio=False, antialias=False,
           name=None):
    """Resize to ``size=(height, width)``; float32 out except for ``nearest`` (TensorFlow's)."""
    images = _tensor(images)
    _check_rank("resize", images)
    interpolation = RESIZE_METHODS.get(str(method).lower())
    if interpolation is None:
        raise ValueError(f"tf.image.resize: unknown method {method!r}; expected one of "
                         f"{sorted(RESIZE_METHODS)}.")
    height, width = (int(d) for d in size)
    if preserve_aspect_ratio:
        in_h, in_w = images.shape[-3], images.shape[-2]
        scale = min(height / in_h, width / in_w)
        height, width = max(1, round(in_h * scale)), max(1, round(in_w * scale))
    if interpolation != "nearest":
        images = ops.cast(images, "float32")
    return ops.image.resize(images, (height, width), interpolation=interpolation,
                            antialias=antialias, data_format="channels_last")


def flip_left_right(image):
    image = _tensor(image)
    _check_rank("flip_left_right", image)
    return ops.flip(image, axis=-2)


def flip_up_down(image):
    image = _tensor(image)
    _check_rank("flip_up_down", image)
    return ops.flip(image, axis=-3)


def _random_flip(op_name, image, axis, seed):
    image = _tensor(image)
    _check_rank(op_name, image)
    count = image.shape[0] if image.dim() == 4 else 1
    flip = torch.rand(count, generator=_generator(seed)) < 0.5
    flipped = torch.flip(image, dims=(axis,))
    if image.dim() == 3:
        return flipped if bool(flip) else image
    return torch.where(flip.view(-1, 1, 1, 1).to(image.device), flipped, image)


def random_flip_left_right(image, seed=None):
    """Each image of a batch mirrored left-right with probability 1/2."""
    return _random_flip("random_flip_left_right", image, -2, seed)


def random_flip_up_down(image, seed=None):
    """Each image of a batch mirrored top-bottom with probability 1/2."""
    return _random_flip("random_flip_up_down", image, -3, seed)


def random_crop(value, size, seed=None, name=None):
    """A crop of shape ``size`` (one entry per axis of ``value``) at a uniform random offset."""
    value = _tensor(value)
    size = [int(s) for s in size]
    if len(size) != value.dim() or any(s > d for s, d in zip(size, value.shape)):
        raise ValueError(f"tf.image.random_crop: size {size} must have one entry per axis of the "
                         f"value and fit inside its shape {tuple(value.shape)}.")
    gen = _generator(seed)
    starts = [int(torch.randint(d - s + 1, (), generator=gen)) for s, d in zip(size, value.shape)]
    return value[tuple(slice(a, a + s) for a, s in zip(starts, size))]


def _box_args(op_name, image, offsets_and_sizes):
    """``(image tensor, [top, left, height, width], in_h, in_w)`` for a bounding-box op."""
    image = _tensor(image)
    _check_rank(op_name, image)
    values = [int(v) for v in offsets_and_sizes]
    if any(v < 0 for v in values):
        raise ValueError(f"tf.image.{op_name}: offsets and target sizes must be >= 0. Received "
                         f"{values}.")
    return image, values, image.shape[-3], image.shape[-2]


def crop_to_bounding_box(image, offset_height, offset_width, target_height, target_width):
    """The ``target_height x target_width`` window whose top-left corner is at the offsets."""
    image, (top, left, height, width), in_h, in_w = _box_args(
        "crop_to_bounding_box", image, (offset_height, offset_width, target_height, target_width))
    if top + height > in_h or left + width > in_w:
        raise ValueError(f"tf.image.crop_to_bounding_box: the box (offset {top}, {left}, size "
                         f"{height}x{width}) does not fit in the {in_h}x{in_w} image.")
    return image[..., top:top + height, left:left + width, :]


def pad_to_bounding_box(image, offset_height, offset_width, target_height, target_width):
    """Zero-pad to ``target_height x target_width`` with the image's top-left at the offsets."""
    image, (top, left, height, width), in_h, in_w = _box_args(
        "pad_to_bounding_box", image, (offset_height, offset_width, target_height, target_width))
    bottom, right = height - top - in_h, width - left - in_w
    if bottom < 0 or right < 0:
        raise ValueError(f"tf.image.pad_to_bounding_box: a {in_h}x{in_w} image at offset "
                         f"({top}, {left}) does not fit in {height}x{width}.")
    return torch.nn.functional.pad(image, (0, 0, left, right, top, bottom))


def central_crop(image, central_fraction):
    """The central ``central_fraction`` of each spatial side."""
    image = _tensor(image)
    _check_rank("central_crop", image)
    if not 0.0 < central_fraction <= 1.0:
        raise ValueError(f"tf.image.central_crop: central_fraction must be in (0, 1]. Received "
                         f"{central_fraction}.")
    in_h, in_w = image.shape[-3], image.shape[-2]
    top = int((in_h - in_h * central_fraction) / 2)
    left = int((in_w - in_w * central_fraction) / 2)
    return image[..., top:in_h - top, left:in_w - left, :]


def convert_image_dtype(image, dtype, saturate=False, name=None):
    """Integers <-> floats with TensorFlow's scaling: an integer image maps onto [0, 1] by its
    dtype's maximum, a float one back by the same factor; float <-> float is a cast."""
    from kaffe.compat.tensorflow_shim import torch_dtype
    image = _tensor(image)
    target = torch_dtype(dtype)
    source = image.dtype
    if source == target:
        return image
    if source.is_floating_point and target.is_floating_point:
        return image.to(target)
    if not source.is_floating_point and target.is_floating_point:
        return image.to(target) / float(torch.iinfo(source).max)
    if source.is_floating_point:
        top = torch.iinfo(target).max
        scaled = image * (top + 0.5)
        if saturate:
            scaled = scaled.clamp(torch.iinfo(target).min, top)
        return scaled.to(target)
    return image.to(target)  # integer -> integer: TensorFlow rescales by bit shifts; rare


def rgb_to_grayscale(images, name=None):
    return ops.image.rgb_to_grayscale(_tensor(images), data_format="channels_last")


def grayscale_to_rgb(images, name=None):
    images = _tensor(images)
    return ops.concatenate([images, images, images], axis=-1)


def rgb_to_hsv(images, name=None):
    return ops.image.rgb_to_hsv(_tensor(images), data_format="channels_last")


def hsv_to_rgb(images, name=None):
    return ops.image.hsv_to_rgb(_tensor(images), data_format="channels_last")


def adjust_brightness(image, delta):
    return _tensor(image) + delta


def adjust_contrast(images, contrast_factor):
    """``(x - mean) * factor + mean`` with the mean over each image's height and width, per
    channel."""
    images = _tensor(images)
    mean = images.mean(dim=(-3, -2), keepdim=True)
    return (images - mean) * contrast_factor + mean


def random_brightness(image, max_delta, seed=None):
    if max_delta < 0:
        raise ValueError(f"tf.image.random_brightness: max_delta must be >= 0. Received "
                         f"{max_delta}.")
    delta = (torch.rand((), generator=_generator(seed)) * 2 - 1) * max_delta
    return adjust_brightness(image, float(delta))


def _random_factor(op_name, lower, upper, seed):
    """A factor drawn uniformly from ``[lower, upper)`` (``0 <= lower < upper``)."""
    if not 0 <= lower < upper:
        raise ValueError(f"tf.image.{op_name}: expected 0 <= lower < upper. Received "
                         f"lower={lower}, upper={upper}.")
    return lower + float(torch.rand((), generator=_generator(seed))) * (upper - lower)


def random_contrast(image, lower, upper, seed=None):
    return adjust_contrast(image, _random_factor("random_contrast", lower, upper, seed))


def _hsv_channel(images, channel, change):
    hsv = ops.image.rgb_to_hsv(_tensor(images), data_format="channels_last")
    parts = list(torch.unbind(hsv, dim=-1))
    parts[channel] = change(parts[channel])
    return ops.image.hsv_to_rgb(torch.stack(parts, dim=-1), data_format="channels_last")


def adjust_saturation(image, saturation_factor, name=None):
    """Saturation (HSV's S) times ``saturation_factor``, clipped to [0, 1]."""
    return _hsv_channel(image, 1, lambda sat: (sat * saturation_factor).clamp(0.0, 1.0))


def adjust_hue(image, delta, name=None):
    """Hue (HSV's H, in [0, 1)) shifted by ``delta``, wrapping around."""
    if not -1.0 <= delta <= 1.0:
        raise ValueError(f"tf.image.adjust_hue: delta must be in [-1, 1]. Received {delta}.")
    return _hsv_channel(image, 0, lambda hue: torch.remainder(hue + delta, 1.0))


def random_saturation(image, lower, upper, seed=None):
    return adjust_saturation(image, _random_factor("random_saturation", lower, upper, seed))


def random_hue(image, max_delta, seed=None):
    if not 0 <= max_delta <= 0.5:
        raise ValueError(f"tf.image.random_hue: max_delta must be in [0, 0.5]. Received "
                         f"{max_delta}.")
    delta = (float(torch.rand((), generator=_generator(seed))) * 2 - 1) * max_delta
    return adjust_hue(image, delta)


def extract_patches(images, sizes, strides, rates, padding, name=None):
    """TensorFlow's 4-entry ``sizes`` / ``strides`` / ``rates`` (``[1, h, w, 1]``) over Keras 3's
    ``ops.image.extract_patches``: ``(batch, rows, cols, h * w * channels)``."""
    def middle(value, what):
        value = [int(v) for v in value]
        if len(value) != 4 or value[0] != 1 or value[3] != 1:
            raise ValueError(f"tf.image.extract_patches: {what} must be [1, rows, cols, 1]. "
                             f"Received {value}.")
        return tuple(value[1:3])
    rate_rows, rate_cols = middle(rates, "rates")
    if rate_rows != rate_cols:
        raise ValueError(f"tf.image.extract_patches: kaffe takes one dilation for both axes (as "
                         f"keras.ops.image.extract_patches). Received rates={list(rates)}.")
    return ops.image.extract_patches(_tensor(images), middle(sizes, "sizes"),
                                     strides=middle(strides, "strides"),
                                     dilation_rate=rate_rows,
                                     padding=str(padding).lower(), data_format="channels_last")


def psnr(a, b, max_val, name=None):
    """Peak signal-to-noise ratio per image: ``10 log10(max_val^2 / mse)`` over the last three
    axes."""
    a, b = _tensor(a), _tensor(b)
    mse = ((a.float() - b.float()) ** 2).mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(float(max_val) ** 2 / mse)


IMAGE = {name: globals()[name] for name in (
    "resize", "flip_left_right", "flip_up_down", "random_flip_left_right", "random_flip_up_down",
    "random_crop", "crop_to_bounding_box", "pad_to_bounding_box", "central_crop",
    "convert_image_dtype", "rgb_to_grayscale", "grayscale_to_rgb", "rgb_to_hsv", "hsv_to_rgb",
    "adjust_brightness", "adjust_contrast", "random_brightness", "random_contrast",
    "adjust_saturation", "adjust_hue", "random_saturation", "random_hue",
    "extract_patches", "psnr")}
IMAGE["ResizeMethod"] = ResizeMethod
