"""``keras.ops.image`` filters: ``gaussian_blur``, ``sobel_edges`` and ``ssim``, each one
depthwise ``torch.nn.functional.conv2d`` per image batch (channels-last by default)."""
import torch
import torch.nn.functional as F

from kaffe.ops.nn import _channels_last
from kaffe.ops.registry import float_tensor, op


def _pair(value, name, op_name):
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{op_name}: {name} must be one number or a pair. Received {value!r}.")
    return pair


def _gaussian_1d(size, sigma, dtype, device):
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur_channels_first(x, kernel_size, sigma):
    """Blur (B, C, H, W) ``x``, each channel alone, 'same' size. As Keras's backends build the
    kernel, ``kernel_size[0]`` / ``sigma[0]`` run along the width and ``[1]`` along the height."""
    kernel = torch.outer(_gaussian_1d(kernel_size[1], sigma[1], x.dtype, x.device),
                         _gaussian_1d(kernel_size[0], sigma[0], x.dtype, x.device))
    channels = x.shape[1]
    rows, cols = kernel.shape
    x = F.pad(x, ((cols - 1) // 2, cols // 2, (rows - 1) // 2, rows // 2))
    return F.conv2d(x, kernel.expand(channels, 1, rows, cols), groups=channels)


def _batch_nchw(op_name, images, data_format, ranks=(3, 4)):
    x = float_tensor(images)
    if x.dim() not in ranks:
        wanted = " or ".join(f"rank {r}" for r in ranks)
        raise ValueError(f"{op_name}: expected images of {wanted} (3: one image, 4: a batch). "
                         f"Received shape {tuple(x.shape)}.")
    unbatched = x.dim() == 3
    x = x.unsqueeze(0) if unbatched else x
    last = _channels_last(data_format)
    return (x.permute(0, 3, 1, 2) if last else x), last, unbatched


@op("GaussianBlur", module="image")
def gaussian_blur(images, kernel_size=(3, 3), sigma=(1.0, 1.0), data_format=None):
    """Gaussian blur of each channel (zero padding, output the input's size)."""
    name = "image.gaussian_blur"
    sizes = tuple(int(k) for k in _pair(kernel_size, "kernel_size", name))
    sigmas = tuple(float(s) for s in _pair(sigma, "sigma", name))
    if min(sizes) < 1 or min(sigmas) <= 0:
        raise ValueError(f"{name}: kernel_size must be positive and sigma > 0. Received "
                         f"kernel_size={kernel_size!r}, sigma={sigma!r}.")
    x, last, unbatched = _batch_nchw(name, images, data_format)
    out = gaussian_blur_channels_first(x, sizes, sigmas)
    out = out.permute(0, 2, 3, 1) if last else out
    return out[0] if unbatched else out


_SOBEL_Y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))


@op("SobelEdges", module="image")
def sobel_edges(images, data_format=None):
    """Sobel gradients (zero padding) of a batch: ``(..., 2)`` holding ``[dy, dx]`` per pixel
    and channel; ``(B, H, W, C, 2)`` channels-last, ``(B, C, H, W, 2)`` channels-first."""
    x, last, _ = _batch_nchw("image.sobel_edges", images, data_format, ranks=(4,))
    channels = x.shape[1]
    dy = torch.tensor(_SOBEL_Y, dtype=x.dtype, device=x.device)
    kernels = torch.stack([dy, dy.t()]).unsqueeze(1).repeat(channels, 1, 1, 1)
    edges = F.conv2d(x, kernels, padding=1, groups=channels)  # (B, 2C, H, W): c's dy, dx
    edges = edges.reshape(x.shape[0], channels, 2, *x.shape[2:]).movedim(2, -1)
    return edges.permute(0, 2, 3, 1, 4) if last else edges


@op("SSIM", call=2, module="image")
def ssim(image1, image2, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03,
         data_format=None):
    """Structural similarity (Wang et al. 2004) with a ``filter_size`` Gaussian window
    ('valid' positions only), averaged over positions and channels: one value per image."""
    name = "image.ssim"
    if not isinstance(filter_size, int) or filter_size < 1:
        raise ValueError(f"{name}: filter_size must be a positive int. Received "
                         f"filter_size={filter_size!r}.")
    a, last, unbatched = _batch_nchw(name, image1, data_format)
    b, _, _ = _batch_nchw(name, image2, data_format)
    if a.shape != b.shape:
        raise ValueError(f"{name}: image1 and image2 must have the same shape. Received "
                         f"{tuple(a.shape)} and {tuple(b.shape)} (as batches, channels first).")
    if min(a.shape[2:]) < filter_size:
        raise ValueError(f"{name}: images of {tuple(a.shape[2:])} pixels are smaller than "
                         f"filter_size={filter_size}; use a smaller filter_size.")
    b = b.to(a.dtype)
    batch, channels = a.shape[:2]
    window = _gaussian_1d(filter_size, float(filter_sigma), a.dtype, a.device)
    window = torch.outer(window, window).reshape(1, 1, filter_size, filter_size)
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=0).reshape(-1, 1, *a.shape[2:])
    mu1, mu2, s11, s22, s12 = F.conv2d(stack, window).reshape(5, batch * channels, -1)
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    mu11, mu22, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    numerator = (2.0 * mu12 + c1) * (2.0 * (s12 - mu12) + c2)
    denominator = (mu11 + mu22 + c1) * ((s11 - mu11) + (s22 - mu22) + c2)
    value = (numerator / denominator).mean(dim=-1).reshape(batch, channels).mean(dim=-1)
    return value[0] if unbatched else value
