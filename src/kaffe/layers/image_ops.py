"""Image geometry on torch tensors for the image preprocessing layers: resizing (optionally
cropped or padded to the target aspect ratio), Keras's ``smart_resize``, and the affine
resampling that random rotations, zooms and translations use, with Keras's fill modes
(``reflect``, ``wrap``, ``nearest``, ``constant``, ``mirror``) and interpolations.

Images are ``(batch, height, width, channels)`` here; the layers move channels_first data
into that layout and back.
"""
import torch
import torch.nn.functional as F

from kaffe.ops.image_geometry import _INDEX_FIXERS  # fill mode -> where an index reads

RESIZE_MODES = {"bilinear": "bilinear", "nearest": "nearest-exact", "bicubic": "bicubic",
                "area": "area"}
FILL_MODES = ("reflect", "wrap", "constant", "nearest", "mirror")
AFFINE_INTERPOLATIONS = ("nearest", "bilinear")


def resize(images, size, interpolation="bilinear", crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_value=0.0, antialias=False):
    """``images`` (B, H, W, C) float -> (B, size[0], size[1], C)."""
    if interpolation not in RESIZE_MODES:
        raise ValueError(f"interpolation must be one of {sorted(RESIZE_MODES)}. Received: "
                         f"interpolation={interpolation!r}")
    x = images.permute(0, 3, 1, 2)
    if crop_to_aspect_ratio:
        x = _center_crop_box(x, size)
    elif pad_to_aspect_ratio:
        x = _pad_to_aspect(x, size, fill_value)
    align = False if interpolation in ("bilinear", "bicubic") else None
    antialias = antialias and interpolation in ("bilinear", "bicubic")
    x = F.interpolate(x, size=tuple(size), mode=RESIZE_MODES[interpolation],
                      align_corners=align, antialias=antialias)
    return x.permute(0, 2, 3, 1)


def _center_crop_box(x, size):
    """The largest centred window of the target aspect ratio (Keras's rounding)."""
    height, width = x.shape[-2:]
    target_h, target_w = size
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    top, left = int(float(height - crop_h) / 2), int(float(width - crop_w) / 2)
    return x[..., top:top + crop_h, left:left + crop_w]


def _pad_to_aspect(x, size, fill_value):
    height, width = x.shape[-2:]
    target_h, target_w = size
    pad_h = max(height, int(float(width * target_h) / target_w))
    pad_w = max(width, int(float(height * target_w) / target_h))
    top, left = int(float(pad_h - height) / 2), int(float(pad_w - width) / 2)
    return F.pad(x, (left, left, top, top), value=float(fill_value))


def smart_resize(images, size, interpolation="bilinear"):
    """Keras's ``smart_resize``: crop the centred window of the target aspect ratio, then
    resize it, so the image is never distorted."""
    x = _center_crop_box(images.permute(0, 3, 1, 2), size).permute(0, 2, 3, 1)
    return resize(x, size, interpolation)


# ---------------------------------------------------------------------------------- affine
def affine_transform(images, transforms, interpolation="bilinear", fill_mode="reflect",
                     fill_value=0.0):
    """Resample ``images`` (B, H, W, C) where output pixel (x, y) reads the input at
    ``(a0 x + a1 y + a2, b0 x + b1 y + b2)``; ``transforms`` is (B, 8) in Keras's
    ``[a0, a1, a2, b0, b1, b2, c0, c1]`` order (c0, c1 unused, as in Keras's torch backend)."""
    batch, height, width, _ = images.shape
    t = transforms.to(device=images.device, dtype=images.dtype)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=images.dtype, device=images.device),
                            torch.arange(width, dtype=images.dtype, device=images.device),
                            indexing="ij")
    def coef(i):
        return t[:, i].view(batch, 1, 1)
    src_x = coef(0) * xs + coef(1) * ys + coef(2)
    src_y = coef(3) * xs + coef(4) * ys + coef(5)
    if interpolation == "nearest":
        taps_y = [(torch.round(src_y).long(), 1.0)]
        taps_x = [(torch.round(src_x).long(), 1.0)]
    elif interpolation == "bilinear":
        taps_y, taps_x = _linear_taps(src_y), _linear_taps(src_x)
    else:
        raise ValueError(f"interpolation must be one of {AFFINE_INTERPOLATIONS}. Received: "
                         f"interpolation={interpolation!r}")
    fix = _INDEX_FIXERS.get(fill_mode)
    if fix is None:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}. Received: "
                         f"fill_mode={fill_mode!r}")
    batch_index = torch.arange(batch, device=images.device).view(batch, 1, 1)
    out = torch.zeros_like(images)
    for iy, wy in taps_y:
        for ix, wx in taps_x:
            values = images[batch_index, fix(iy, height), fix(ix, width)]
            if fill_mode == "constant":
                inside = ((iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)).unsqueeze(-1)
                values = torch.where(inside, values, torch.as_tensor(fill_value, dtype=values.dtype))
            weight = wy * wx
            out = out + (weight.unsqueeze(-1) if torch.is_tensor(weight) else weight) * values
    return out


def _linear_taps(coordinate):
    lower = torch.floor(coordinate)
    upper_weight = coordinate - lower
    index = lower.long()
    return [(index, 1 - upper_weight), (index + 1, upper_weight)]


def rotation_matrices(angles_deg, height, width):
    """Keras's rotation about the image centre, (B,) degrees -> (B, 8) transforms."""
    angle = angles_deg * (torch.pi / 180.0)
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = cx - cx * a0 - cy * a1
    b2 = cy - cx * b0 - cy * b1
    zeros = torch.zeros_like(angle)
    return torch.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], dim=1)


def zoom_matrices(width_zoom, height_zoom, height, width):
    """Zoom about the centre: (B,) sampling scales (>1 zooms out) -> (B, 8) transforms."""
    zeros = torch.zeros_like(width_zoom)
    x_offset = (width - 1.0) / 2.0 * (1.0 - width_zoom)
    y_offset = (height - 1.0) / 2.0 * (1.0 - height_zoom)
    return torch.stack([width_zoom, zeros, x_offset, zeros, height_zoom, y_offset, zeros, zeros],
                       dim=1)


def translation_matrices(dx, dy):
    """Shift by (dx, dy) pixels: (B,) each -> (B, 8) transforms."""
    ones, zeros = torch.ones_like(dx), torch.zeros_like(dx)
    return torch.stack([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros], dim=1)
