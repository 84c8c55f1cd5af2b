"""``Masking`` and the mask arithmetic the recurrent layers share.

Masks are boolean tensors ``(batch, timesteps)``, True where a step holds data. A recurrent layer
skips the False steps: its state is carried over them unchanged. Its fused torch kernels can do
that only when every row's True steps form one contiguous run (post- or pre-padding);
``single_runs`` finds out, with one device-to-host copy.
"""
import numbers

import torch

from kaffe import ops
from kaffe.engine.layer import Layer


class Masking(Layer):
    """Mark the time steps whose features all equal ``mask_value`` as padding.

    Output: the input with those steps set to 0; output mask: ``any(inputs != mask_value,
    axis=-1)`` (whatever mask came in is replaced, as in Keras). Layers after it that take a
    ``mask`` (RNNs, ``GlobalAveragePooling1D``) skip the masked steps.
    """

    supports_masking = True
    creates_mask = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, numbers.Real):
            raise ValueError(f"Masking expected a number for mask_value. "
                             f"Received: mask_value={mask_value!r}")
        self.mask_value = mask_value

    def call(self, inputs):
        keep = (inputs != self.mask_value).any(-1, keepdim=True)
        return torch.where(keep, inputs, torch.zeros((), dtype=inputs.dtype, device=inputs.device))

    def compute_mask(self, inputs, mask=None):
        if isinstance(inputs, torch.Tensor):
            return (inputs != self.mask_value).any(-1)
        return ops.any(ops.not_equal(inputs, self.mask_value), axis=-1)  # symbolic

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}

    def extra_repr(self):
        return f"name={self.name!r}, mask_value={self.mask_value!r}"


def first_mask(mask):
    """The sequence mask out of what a graph hands a layer (a list when it has several inputs)."""
    if isinstance(mask, (list, tuple)):
        return mask[0] if mask else None
    return mask


def check_mask(mask, x, layer):
    """``mask`` as a bool ``(batch, timesteps)`` tensor matching ``x``; a clear error if not."""
    if mask is None:
        return None
    mask = torch.as_tensor(mask, device=x.device)
    if tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects a mask of shape (batch, "
                         f"timesteps) = {tuple(x.shape[:2])} for inputs of shape "
                         f"{tuple(x.shape)}. Received a mask of shape {tuple(mask.shape)}.")
    return mask if mask.dtype == torch.bool else mask != 0


def single_runs(mask):
    """When each row of ``mask`` keeps one contiguous run of steps ``[start, start + length)``
    (or none): ``(starts, lengths)`` as CPU int64 tensors followed by the same two on the
    mask's device; else ``None``.

    One device-to-host copy (a synchronisation on GPU), the price of choosing the fused path.
    """
    steps = mask.shape[1]
    lengths = mask.sum(1)
    starts = mask.to(torch.uint8).argmax(1)  # first kept step (0 in an empty row)
    t = torch.arange(steps, device=mask.device)
    run = (t >= starts[:, None]) & (t < (starts + lengths)[:, None])
    one_run = (run == mask).all()
    host = torch.cat([starts, lengths, one_run.long()[None]]).cpu()
    if not host[-1]:
        return None
    batch = mask.shape[0]
    return host[:batch], host[batch:2 * batch], starts, lengths


def roll_rows(x, shifts):
    """``out[b, t] = x[b, (t + shifts[b]) % T]`` for ``x`` of shape ``(batch, T, ...)``."""
    steps = x.shape[1]
    index = (torch.arange(steps, device=x.device)[None, :] + shifts[:, None]) % steps
    index = index.view(index.shape + (1,) * (x.dim() - 2)).expand(x.shape)
    return x.gather(1, index)
