"""Where kaffe computes: CUDA when present (said once in the log), else the CPU.
``KAFFE_DEVICE=cpu`` (or ``cuda:1``) overrides."""
import logging
import os

import torch

log = logging.getLogger("kaffe")
_announced = set()


def default_device():
    name = os.environ.get("KAFFE_DEVICE")
    if name:
        device = torch.device(name)
    elif torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = torch.device("cpu")
    if device.type == "cuda" and str(device) not in _announced:
        _announced.add(str(device))
        log.warning("kaffe: training on %s (%s)", device, torch.cuda.get_device_name(device))
    return device
