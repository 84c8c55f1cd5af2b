"""What the policy and the device mean for one training run: autocast, loss scaling and
memory format. Decided once per ``fit``/``evaluate``/``predict`` call, never per step."""
import contextlib
import os

import torch

from kaffe import mixed_precision

_TORCH = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def autocast_spec(device):
    """``(device_type, dtype)`` for ``torch.autocast`` under the global policy, or None."""
    policy = mixed_precision.global_policy()
    if not policy.is_mixed:
        return None
    return device.type, _TORCH[policy.compute_dtype]


def autocast(spec):
    """The autocast context for ``spec`` (a no-op context for None)."""
    if spec is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=spec[0], dtype=spec[1])


def grad_scaler(spec, current):
    """A GradScaler for float16 (the one already made, so its scale carries over between
    ``fit`` calls); None otherwise."""
    if spec is None or spec[1] != torch.float16:
        return None
    if current is not None and current._device == spec[0]:
        return current
    return torch.amp.GradScaler(spec[0])


def use_channels_last(model, device):
    """On CUDA, store a convnet's 4-D weights in channels_last memory format (what cuDNN's
    fastest convolution kernels read; kaffe's channels_last inputs already are) and let cuDNN
    pick its fastest algorithm per shape (``cudnn.benchmark``, as TensorFlow autotunes). Off
    with ``KAFFE_CHANNELS_LAST=0``; on the CPU, oneDNN gains nothing for the seed nets."""
    if os.environ.get("KAFFE_CHANNELS_LAST", "1") == "0":
        return False
    if device.type != "cuda" and os.environ.get("KAFFE_CHANNELS_LAST") != "force":
        return False
    if not any(p.dim() == 4 for p in model.parameters()):
        return False
    model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return True
