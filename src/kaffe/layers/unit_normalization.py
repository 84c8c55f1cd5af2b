"""``UnitNormalization``: scale each sample to unit L2 norm over ``axis`` (Keras 3's)."""
import torch

from kaffe.engine.layer import Layer


class UnitNormalization(Layer):
    """``x * min(1 / ||x||, 1e12)`` over ``axis`` (an int or a list of ints)."""

    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)

    def call(self, inputs):
        x = torch.as_tensor(inputs)
        x = x if torch.is_floating_point(x) else x.to(torch.float32)
        dims = tuple(self.axis) if isinstance(self.axis, list) else (self.axis,)
        inv_norm = torch.rsqrt(torch.sum(x * x, dim=dims, keepdim=True))
        return x * torch.clamp(inv_norm, max=1e12)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
