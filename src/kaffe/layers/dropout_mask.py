"""Inverted dropout from one uniform draw.

``torch.rand(...).ge_(rate).mul_(1 / (1 - rate))`` builds the scaled keep mask in place in three
cheap kernels, then one multiply applies it (and is the whole backward). ``F.dropout``'s CPU
path draws Bernoulli samples instead and takes about 1.5-2x as long for the same distribution:
each value is kept with probability ``1 - rate`` and scaled by ``1 / (1 - rate)``.
"""
import torch

# Uniform draws in these dtypes resolve a rate finely enough; half types draw in float32.
_DRAW_DTYPES = (torch.float32, torch.float64)


def scaled_keep_mask(shape, rate, like, generator=None):
    """``1 / (1 - rate)`` where kept, 0 where dropped; ``like``'s dtype and device."""
    dtype = like.dtype if like.dtype in _DRAW_DTYPES else torch.float32
    mask = torch.rand(shape, dtype=dtype, device=like.device, generator=generator)
    mask.ge_(rate).mul_(1.0 / (1.0 - rate))
    return mask if mask.dtype == like.dtype else mask.to(like.dtype)


def dropout(inputs, rate, noise_shape=None, generator=None):
    """``inputs`` with a fraction ``rate`` zeroed (one mask per ``noise_shape`` cell, broadcast)."""
    if rate >= 1:
        return torch.zeros_like(inputs)
    shape = inputs.shape if noise_shape is None else noise_shape
    return inputs * scaled_keep_mask(shape, rate, inputs, generator)
