"""pycaffe's process-wide switches: mode, device, random seed, the layer type list, NCCL, Timer.

``set_mode_gpu()`` with CUDA makes the nets built afterwards compute on ``cuda:<set_device id>``
(:mod:`kaffe.caffe.device`); without CUDA it says so once and goes on on the CPU (as a net
written for the GPU should still run here).
"""
import logging
import time

import torch

log = logging.getLogger("kaffe.caffe")

__all__ = ["set_mode_cpu", "set_mode_gpu", "set_device", "set_random_seed", "has_nccl",
           "layer_type_list", "Timer", "mode", "device_id"]

_STATE = {"mode": "CPU", "device": 0, "warned": False}


def mode():
    """``'CPU'`` or ``'GPU'``: what ``set_mode_*`` last asked for."""
    return _STATE["mode"]


def device_id():
    """The CUDA device id ``set_device`` last chose (0 by default)."""
    return _STATE["device"]


def set_mode_cpu():
    """pycaffe's ``caffe.set_mode_cpu()``."""
    _STATE["mode"] = "CPU"


def gpu_or_cpu(asked_by):
    """'GPU' when CUDA is there, else 'CPU' with a one-time (per process) message naming what
    asked for the GPU (``set_mode_gpu``, a solver's ``solver_mode: GPU``)."""
    if torch.cuda.is_available():
        return "GPU"
    if not _STATE["warned"]:
        log.warning("%s: no CUDA device is available (torch.cuda.is_available() is False); "
                    "running on the CPU.", asked_by)
        _STATE["warned"] = True
    return "CPU"


def set_mode_gpu():
    """pycaffe's ``caffe.set_mode_gpu()``: without CUDA, a one-time message and the CPU."""
    _STATE["mode"] = gpu_or_cpu("set_mode_gpu")


def set_device(device_id):
    """pycaffe's ``caffe.set_device(id)``: the CUDA device GPU mode uses for nets built
    afterwards. An id past the devices torch sees is refused (without CUDA any id is kept:
    the nets run on the CPU)."""
    device_id = int(device_id)
    if device_id < 0:
        raise ValueError(f"set_device: expected a device id >= 0; received {device_id}.")
    if torch.cuda.is_available() and device_id >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ValueError(f"set_device({device_id}): torch sees {count} CUDA device"
                         f"{'s' if count != 1 else ''}; use an id in 0..{count - 1}.")
    _STATE["device"] = device_id


def set_random_seed(seed):
    """pycaffe's ``caffe.set_random_seed(seed)``: seeds the RNG fillers, dropout and shuffling
    draw from (torch's)."""
    torch.manual_seed(int(seed))


def has_nccl():
    """pycaffe's ``caffe.has_nccl()``: False (kaffe's multi-process training uses
    torch.distributed, not Caffe's NCCL class)."""
    return False


def layer_type_list():
    """pycaffe's ``caffe.layer_type_list()``: every layer type a net can use, sorted."""
    from kaffe.caffe.builders.registry import LAYER_BUILDERS
    from kaffe.caffe.net import _load_layer_modules
    _load_layer_modules()
    return sorted(LAYER_BUILDERS)


class Timer:
    """pycaffe's ``caffe.Timer``: ``start()``, ``stop()``, ``ms`` (milliseconds between the
    last start and stop, or up to now while running)."""

    def __init__(self):
        self._start = self._stop = None

    def start(self):
        self._start, self._stop = time.perf_counter(), None

    def stop(self):
        if self._start is not None and self._stop is None:
            self._stop = time.perf_counter()

    @property
    def ms(self):
        if self._start is None:
            return 0.0
        end = self._stop if self._stop is not None else time.perf_counter()
        return (end - self._start) * 1e3

    @property
    def seconds(self):
        return self.ms / 1e3
