"""``keras.ops.image`` resampling ops: ``map_coordinates`` and the warps built on it
(``affine_transform``, ``perspective_transform``, ``elastic_transform``), plus
``scale_and_translate``.

Interpolation is Keras's: order 0 (nearest, round half to even) or 1 (linear), with the fill
modes ``constant`` / ``nearest`` / ``wrap`` / ``mirror`` / ``reflect`` of
``scipy.ndimage.map_coordinates`` (without scipy's boundary bug, as in Keras). Every output point
is computed at once: a gather per interpolation corner (2 ** rank corners), no per-pixel loop.
"""
import functools
import itertools
import math
import operator

import torch

from kaffe.ops.image_filters import gaussian_blur_channels_first
from kaffe.ops.nn import _channels_last
from kaffe.ops.registry import float_tensor, op, tensor

_ORDERS = {"nearest": 0, "bilinear": 1}


def _mirror(index, size):
    if size == 1:
        return torch.zeros_like(index)
    period = size - 1
    return torch.abs((index + period) % (2 * period) - period)


def _reflect(index, size):
    return torch.div(_mirror(2 * index + 1, 2 * size + 1) - 1, 2, rounding_mode="floor")


#: fill mode -> where an out-of-range index reads from
_INDEX_FIXERS = {
    "constant": lambda index, size: index.clamp(0, size - 1),
    "nearest": lambda index, size: index.clamp(0, size - 1),
    "wrap": lambda index, size: index % size,
    "mirror": _mirror,
    "reflect": _reflect,
}


def _nearest_nodes(coordinate):
    if coordinate.is_floating_point():
        coordinate = torch.round(coordinate)
    return [(coordinate.long(), 1)]


def _linear_nodes(coordinate):
    coordinate = coordinate if coordinate.is_floating_point() else coordinate.float()
    lower = torch.floor(coordinate)
    upper_weight = coordinate - lower
    index = lower.long()
    return [(index, 1 - upper_weight), (index + 1, upper_weight)]


_NODES = {0: _nearest_nodes, 1: _linear_nodes}


def _check_choice(op_name, argument, value, choices):
    if value not in choices:
        raise ValueError(f"{op_name}: invalid {argument}={value!r}; expected one of "
                         f"{sorted(choices)}.")


def interpolate(gather, coordinates, sizes, order, fill_mode, fill_value, trailing=0):
    """Interpolate at ``coordinates`` (one tensor per indexed axis of size ``sizes``).

    ``gather(indices)`` reads the values at integer indices (one tensor per axis); values may
    have ``trailing`` axes beyond the coordinates' shape (e.g. channels)."""
    constant = fill_mode == "constant"
    fix = _INDEX_FIXERS[fill_mode]
    axes = []
    for coordinate, size in zip(coordinates, sizes):
        axes.append([(fix(index, size), (index >= 0) & (index < size) if constant else None,
                      weight) for index, weight in _NODES[order](coordinate)])
    expand = (...,) + (None,) * trailing
    total = None
    for corner in itertools.product(*axes):
        indices, valid, weights = zip(*corner)
        values = gather(indices)
        if constant:
            inside = functools.reduce(operator.and_, valid)[expand]
            values = torch.where(inside, values, torch.as_tensor(fill_value, dtype=values.dtype,
                                                                 device=values.device))
        weight = functools.reduce(operator.mul, weights)
        term = values if isinstance(weight, int) else weight[expand] * values
        total = term if total is None else total + term
    return total


def _finish(result, like):
    """``result`` in the dtype of ``like`` (integer images are rounded, as Keras does)."""
    if not like.is_floating_point() and result.is_floating_point():
        result = torch.round(result)
    return result.to(like.dtype)


@op("MapCoordinates", call=2, module="image")
def map_coordinates(inputs, coordinates, order, fill_mode="constant", fill_value=0):
    """``inputs`` read at ``coordinates`` (shape ``(inputs.ndim, ...)``), interpolated."""
    x = tensor(inputs)
    if isinstance(coordinates, (list, tuple)):
        coords = [tensor(c, device=x.device) for c in coordinates]
    else:
        coords = list(tensor(coordinates, device=x.device).unbind(0))
    if len(coords) != x.dim():
        raise ValueError(f"image.map_coordinates: the first axis of coordinates must equal the "
                         f"rank of inputs ({x.dim()}, shape {tuple(x.shape)}). Received "
                         f"{len(coords)} coordinate arrays.")
    if coords[0].dim() < 1:
        raise ValueError("image.map_coordinates: coordinates must have rank 2 or more, "
                         f"(rank, ...). Received shape {(len(coords),)}.")
    _check_choice("image.map_coordinates", "fill_mode", fill_mode, _INDEX_FIXERS)
    _check_choice("image.map_coordinates", "order", order, _NODES)
    if not x.is_floating_point() and isinstance(fill_value, float):
        fill_value = int(fill_value)
    result = interpolate(lambda idx: x[idx], coords, x.shape, order, fill_mode, fill_value)
    return _finish(result, x)


# ---------------------------------------------------------------------------------- warps
def _images_nhwc(op_name, images, data_format):
    """(images as (batch, H, W, C), channels_last, whether a batch axis was added)."""
    x = tensor(images)
    if x.dim() not in (3, 4):
        raise ValueError(f"{op_name}: expected images of rank 3 (one image) or 4 (a batch). "
                         f"Received shape {tuple(x.shape)}.")
    unbatched = x.dim() == 3
    x = x.unsqueeze(0) if unbatched else x
    last = _channels_last(data_format)
    return (x if last else x.permute(0, 2, 3, 1)), last, unbatched


def _images_back(out, last, unbatched):
    out = out if last else out.permute(0, 3, 1, 2)
    return out[0] if unbatched else out


def _coordinate_dtype(images, *others):
    """float64 when any of the geometry is float64 (numpy's default), else the image's float."""
    if any(t.dtype == torch.float64 for t in others):
        return torch.float64
    return images.dtype if images.is_floating_point() else torch.float32


def _warp(images, ys, xs, order, fill_mode, fill_value):
    """(B, H, W, C) ``images`` sampled at per-batch points ``ys``, ``xs`` of shape (B, h, w)."""
    batch = torch.arange(images.shape[0], device=images.device).reshape(-1, 1, 1)
    fill = int(fill_value) if not images.is_floating_point() else fill_value
    result = interpolate(lambda idx: images[batch, idx[0], idx[1]], (ys, xs),
                         images.shape[1:3], order, fill_mode, fill, trailing=1)
    return _finish(result, images)


def _grid(height, width, dtype, device):
    ys = torch.arange(height, dtype=dtype, device=device).reshape(1, -1, 1)
    xs = torch.arange(width, dtype=dtype, device=device).reshape(1, 1, -1)
    return ys, xs


@op("AffineTransform", call=2, module="image")
def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                     fill_value=0, data_format=None):
    """Warp by ``transform`` rows ``[a0, a1, a2, b0, b1, b2, c0, c1]``, which map each output
    point (x, y) to the input point ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k) with
    k = c0 x + c1 y + 1, as TensorFlow does (Keras documents c0, c1 as taken for 0 on its other
    backends; Keras's own image layers always pass 0)."""
    name = "image.affine_transform"
    _check_choice(name, "interpolation", interpolation, _ORDERS)
    _check_choice(name, "fill_mode", fill_mode, _INDEX_FIXERS)
    x, last, unbatched = _images_nhwc(name, images, data_format)
    t = tensor(transform, device=x.device)
    if t.dim() not in (1, 2) or t.shape[-1] != 8:
        raise ValueError(f"{name}: expected transform of shape (8,) or (batch, 8). Received "
                         f"shape {tuple(t.shape)}.")
    t = t.to(_coordinate_dtype(x, t)).reshape(-1, 8)
    if t.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"{name}: {t.shape[0]} transforms for a batch of {x.shape[0]} images; "
                         "give one transform or one per image.")
    t = t.expand(x.shape[0], 8)[:, :, None, None]
    ys, xs = _grid(x.shape[1], x.shape[2], t.dtype, x.device)
    k = t[:, 6] * xs + t[:, 7] * ys + 1
    x_in = (t[:, 0] * xs + t[:, 1] * ys + t[:, 2]) / k
    y_in = (t[:, 3] * xs + t[:, 4] * ys + t[:, 5]) / k
    out = _warp(x, y_in, x_in, _ORDERS[interpolation], fill_mode, fill_value)
    return _images_back(out, last, unbatched)


def _points(name, argument, points, dtype, device):
    p = tensor(points, device=device).to(dtype)
    if p.dim() not in (2, 3) or tuple(p.shape[-2:]) != (4, 2):
        raise ValueError(f"{name}: expected {argument} of shape (4, 2) or (batch, 4, 2). "
                         f"Received shape {tuple(p.shape)}.")
    return p.reshape(-1, 4, 2)


def homography(start_points, end_points):
    """(N, 8) projective maps taking each of ``end_points`` to its ``start_points`` (N, 4, 2)."""
    ex, ey = end_points[..., 0], end_points[..., 1]  # (N, 4)
    sx, sy = start_points[..., 0], start_points[..., 1]
    one, zero = torch.ones_like(ex), torch.zeros_like(ex)
    rows_x = torch.stack([ex, ey, one, zero, zero, zero, -sx * ex, -sx * ey], dim=-1)
    rows_y = torch.stack([zero, zero, zero, ex, ey, one, -sy * ex, -sy * ey], dim=-1)
    system = torch.stack([rows_x, rows_y], dim=2).reshape(-1, 8, 8)
    target = torch.stack([sx, sy], dim=-1).reshape(-1, 8, 1)
    solve_dtype = torch.promote_types(system.dtype, torch.float32)
    solution = torch.linalg.solve(system.to(solve_dtype), target.to(solve_dtype))
    return solution.reshape(-1, 8).to(system.dtype)


@op("PerspectiveTransform", call=3, module="image")
def perspective_transform(images, start_points, end_points, interpolation="bilinear",
                          fill_value=0, data_format=None):
    """Warp so that ``start_points`` (4 corners, (x, y)) land on ``end_points``."""
    name = "image.perspective_transform"
    _check_choice(name, "interpolation", interpolation, _ORDERS)
    x, last, unbatched = _images_nhwc(name, images, data_format)
    dtype = x.dtype if x.is_floating_point() else torch.float32
    start = _points(name, "start_points", start_points, dtype, x.device)
    end = _points(name, "end_points", end_points, dtype, x.device)
    if start.shape != end.shape:
        raise ValueError(f"{name}: start_points and end_points must have the same shape. "
                         f"Received {tuple(start.shape)} and {tuple(end.shape)}.")
    h = homography(start, end)
    if h.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"{name}: {h.shape[0]} point sets for a batch of {x.shape[0]} images; "
                         "give one set or one per image.")
    h = h.expand(x.shape[0], 8)[:, :, None, None]
    ys, xs = _grid(x.shape[1], x.shape[2], dtype, x.device)
    denominator = h[:, 6] * xs + h[:, 7] * ys + 1.0
    x_in = (h[:, 0] * xs + h[:, 1] * ys + h[:, 2]) / denominator
    y_in = (h[:, 3] * xs + h[:, 4] * ys + h[:, 5]) / denominator
    out = _warp(x, y_in, x_in, _ORDERS[interpolation], "constant", fill_value)
    return _images_back(out, last, unbatched)


def _noise(shape, seed, dtype, device):
    """Standard normal noise: torch's global generator for ``seed=None`` (what Keras's torch
    backend always uses), else a generator seeded from the int or ``SeedGenerator``."""
    if device.type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    from kaffe.random import _generator
    return torch.normal(0.0, 1.0, size=shape, generator=_generator(seed, device), dtype=dtype,
                        device=device)


@op("ElasticTransform", module="image")
def elastic_transform(images, alpha=20.0, sigma=5.0, interpolation="bilinear",
                      fill_mode="reflect", fill_value=0.0, seed=None, data_format=None):
    """Displace every pixel by ``alpha`` times Gaussian-smoothed (``sigma``) normal noise
    scaled by ``sigma``, as Keras does: fresh noise on every call."""
    name = "image.elastic_transform"
    _check_choice(name, "interpolation", interpolation, _ORDERS)
    _check_choice(name, "fill_mode", fill_mode, _INDEX_FIXERS)
    x, last, unbatched = _images_nhwc(name, images, data_format)
    batch, height, width, _ = x.shape
    dtype = x.dtype if x.is_floating_point() else torch.float32
    sigma, alpha = float(sigma), float(alpha)
    size = int(6 * sigma) | 1
    noise = [_noise((batch, height, width), seed, dtype, x.device) * sigma for _ in range(2)]
    dx, dy = (gaussian_blur_channels_first(n.unsqueeze(1), (size, size), (sigma, sigma))[:, 0]
              for n in noise)
    ys, xs = _grid(height, width, dtype, x.device)
    out = _warp(x, ys + alpha * dy, xs + alpha * dx, _ORDERS[interpolation], fill_mode,
                fill_value)
    return _images_back(out, last, unbatched)


# ---------------------------------------------------------------------------------- scale
def _triangle(x):
    return torch.clamp(1 - torch.abs(x), min=0)


def _keys_cubic(x):
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return torch.where(x >= 2.0, torch.zeros_like(x), torch.where(x >= 1.0, far, near))


def _lanczos(radius, x):
    y = radius * torch.sin(math.pi * x) * torch.sin(math.pi * x / radius)
    safe = torch.where(x != 0, math.pi ** 2 * x ** 2, torch.ones_like(x))
    out = torch.where(x > 1e-3, y / safe, torch.ones_like(x))
    return torch.where(x > radius, torch.zeros_like(x), out)


#: method -> resampling kernel of |distance| (in input pixels, widened when antialiasing)
_KERNELS = {
    **dict.fromkeys(("linear", "bilinear", "trilinear", "triangle"), _triangle),
    **dict.fromkeys(("cubic", "bicubic", "tricubic"), _keys_cubic),
    "lanczos3": functools.partial(_lanczos, 3.0), "lanczos5": functools.partial(_lanczos, 5.0),
}
_EPS32 = float(torch.finfo(torch.float32).eps)


def _resample_matrix(in_size, out_size, scale, translation, kernel, antialias):
    """(in_size, out_size) weights: output sample j reads input pixels i with weight w[i, j]."""
    inv_scale = 1.0 / scale
    kernel_scale = torch.clamp(inv_scale, min=1.0) if antialias else 1.0
    positions = torch.arange(out_size, dtype=scale.dtype, device=scale.device)
    sample = (positions + 0.5) * inv_scale - translation * inv_scale - 0.5
    pixels = torch.arange(in_size, dtype=scale.dtype, device=scale.device)
    weights = kernel(torch.abs(sample[None, :] - pixels[:, None]) / kernel_scale)
    total = weights.sum(dim=0, keepdim=True)
    weights = torch.where(torch.abs(total) > 1000.0 * _EPS32,
                          weights / torch.where(total != 0, total, torch.ones_like(total)),
                          torch.zeros_like(weights))
    inside = (sample >= -0.5) & (sample <= in_size - 0.5)
    return torch.where(inside[None, :], weights, torch.zeros_like(weights))


@op("ScaleAndTranslate", call=("images", "output_shape", "scale", "translation"),
    module="image")
def scale_and_translate(images, output_shape, scale, translation, spatial_dims, method,
                        antialias=True):
    """Resample ``images`` to ``output_shape``: input point p of axis ``spatial_dims[i]`` lands
    at p * scale[i] + translation[i] (half-pixel centres), one separable pass per axis."""
    name = "image.scale_and_translate"
    _check_choice(name, "method", method, _KERNELS)
    x = tensor(images)
    output_shape = tuple(int(d) for d in output_shape)
    if len(output_shape) != x.dim():
        raise ValueError(f"{name}: output_shape must have one entry per axis of images "
                         f"({x.dim()}, shape {tuple(x.shape)}). Received {output_shape}.")
    scale = float_tensor(tensor(scale, device=x.device))
    translation = tensor(translation, device=x.device)
    dtype = torch.promote_types(scale.dtype, translation.dtype)
    dtype = dtype if dtype.is_floating_point else torch.float32
    scale, translation = scale.to(dtype).reshape(-1), translation.to(dtype).reshape(-1)
    if len(spatial_dims) != scale.numel() or len(spatial_dims) != translation.numel():
        raise ValueError(f"{name}: scale and translation need one entry per spatial dim "
                         f"{tuple(spatial_dims)}. Received {scale.numel()} and "
                         f"{translation.numel()}.")
    out = x if x.is_floating_point() else x.to(torch.float32)
    for i, axis in enumerate(spatial_dims):
        axis = axis % x.dim()
        weights = _resample_matrix(x.shape[axis], output_shape[axis], scale[i],
                                   translation[i], _KERNELS[method], antialias)
        out = torch.tensordot(out, weights.to(out.dtype), dims=([axis], [0]))
        out = torch.movedim(out, -1, axis)
    if not x.is_floating_point():
        out = torch.clamp(torch.round(out), x.min(), x.max()).to(x.dtype)
    return out
