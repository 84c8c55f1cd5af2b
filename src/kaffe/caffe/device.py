"""Where a Caffe net computes: the host, or a device (CUDA) chosen by pycaffe's switches.

A net built while ``caffe.set_mode_gpu()`` holds (and CUDA is there) computes on
``cuda:<set_device id>``; the solver and ``kaffe train/test/time -gpu N`` pick a device
themselves (:func:`computing_on`). :func:`place_net` moves the layers and parameters there and
gives every blob a device copy (:mod:`kaffe.caffe.synced`), so pycaffe's numpy ``.data`` /
``.diff`` stay correct while the net's tensors stay on the device. A host net is left as it is:
no copies, no extra work per layer.

Tests prove the bookkeeping without a GPU: inside :func:`cpu_stand_in` the CPU plays the device
(blobs and parameters get separate host copies, every copy is counted), so a "device" net can be
compared with a host net on the same machine. ``KAFFE_CAFFE_STAND_IN=1`` in the environment does
the same for every net of a process (to run an outside suite, such as BVLC's pycaffe tests, with
its nets "on the device").
"""
import contextlib
import os

import torch

from kaffe.caffe import runtime as _runtime

__all__ = ["compute_device", "computing_on", "resolve", "cpu_stand_in", "placing", "overridden",
           "place_net", "describe", "out_of_memory"]

_OVERRIDE = []   # innermost last: a torch.device, or None for the host


def compute_device():
    """Where a net built now computes: a ``torch.device`` (CUDA, or the CPU standing in for
    one in tests), or None for the host."""
    if _OVERRIDE:
        return _OVERRIDE[-1]
    if os.environ.get("KAFFE_CAFFE_STAND_IN") == "1":
        return torch.device("cpu")
    if _runtime.mode() == "GPU" and torch.cuda.is_available():
        return torch.device("cuda", _runtime.device_id())
    return None


def overridden():
    """True inside :func:`computing_on` / :func:`cpu_stand_in` / :func:`placing`."""
    return bool(_OVERRIDE)


@contextlib.contextmanager
def placing(device):
    """Nets built inside compute on ``device`` exactly as :func:`compute_device` would return
    it (None: the host; the CPU as a ``torch.device``: the CPU standing in for a device)."""
    _OVERRIDE.append(device)
    try:
        yield
    finally:
        _OVERRIDE.pop()


def resolve(device):
    """``device`` as a net's placement: None for the host (None, ``'cpu'``), a CUDA device
    with its index (``'cuda'`` is the current one; blobs compare devices exactly)."""
    device = None if device is None else torch.device(device)
    if device is None or device.type == "cpu":
        return None
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def computing_on(device):
    """Nets built inside this block compute on ``device`` (``'cuda:1'``, a ``torch.device``;
    ``'cpu'`` or None: the host), whatever ``set_mode_*`` says."""
    return placing(resolve(device))


def cpu_stand_in():
    """For tests: nets built inside treat the CPU as a device (separate device copies of
    every blob and parameter, copied across as they would be to and from a GPU)."""
    return placing(torch.device("cpu"))


def place_net(net, device):
    """Move ``net``'s layers, parameters and blobs to ``device`` (None: leave it on the host).
    Data layers (and Python layers) hand their tops to the device themselves."""
    net._device = device
    if device is None:
        return
    net.module.to(device)
    for layer, (lp, _) in zip(net._layer_modules, net._specs):
        if getattr(layer, "data_layer", False) or hasattr(layer, "run_forward"):
            layer.output_device = device
        elif not lp.bottom and not getattr(layer, "net_input", False):   # DummyData & co
            layer.register_forward_hook(_to_device_hook(device))
    for blob in net.blobs.values():
        blob.to_device(device)
    for blobs in net.params.values():
        for blob in blobs:
            blob.to_device(device)


def describe(device):
    """Caffe's log line for the mode: ``Use GPU with device ID 0`` or ``Use CPU.``"""
    if device is not None and torch.device(device).type == "cuda":
        return f"Use GPU with device ID {torch.device(device).index or 0}"
    return "Use CPU."


def out_of_memory(net, error, what):
    """``error`` (torch's out-of-memory) retold for a Caffe net: the layer the forward reached
    (or that it happened in the backward), the batch size, and the fix."""
    done = set(getattr(net, "_io", {}))
    layer = next((i for i, m in enumerate(net._layer_modules)
                  if i not in done and not getattr(m, "net_input", False)), None)
    where = (f"in layer '{net._layer_names[layer]}' ({net._specs[layer][0].type})"
             if layer is not None else "in the backward pass")
    shapes = [b.shape for b in net.blobs.values() if b.shape]
    batch = shapes[0][0] if shapes else 0
    smaller = f"batch_size: {max(1, batch // 2)}" if batch > 1 else "a smaller batch_size"
    return torch.OutOfMemoryError(
        f"{what} ran out of device memory {where} with a batch of {batch}. Give the net's "
        f"data or input layer {smaller}, or use a device with more memory. ({error})")


def _to_device_hook(device):
    def hook(module, inputs, tops):
        return [t.to(device) for t in tops]
    return hook
