"""``DataParallel``: the data-parallel strategy ``fit`` / ``evaluate`` follow.

Every process holds the whole model; each computes the loss on its part of every global
batch (see ``sharding``); ``torch.nn.parallel.DistributedDataParallel`` averages the
gradients during ``backward``, so every process takes the same optimizer step and the weights
stay identical. Metrics are summed over processes at every epoch end; only rank 0 prints and
writes files.
"""
import logging
import warnings
import weakref

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from kaffe.distribute import collectives, environment, process_group, sharding

log = logging.getLogger("kaffe")


class _LossModule(nn.Module):
    """The module DDP wraps: forward computes the model's loss, so DDP's backward hooks see
    every gradient of the step."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, xs, ys, sws):
        return self.model._forward_loss_impl(xs, ys, sws)


class DataParallel:
    """Data-parallel training over processes and machines, Keras 3's
    ``keras.distribution.DataParallel`` spelling.

    Batch size is GLOBAL, as in Keras 3: ``fit(x, y, batch_size=256)`` on 4 processes gives
    each process 64 samples per step and takes the same number of steps per epoch as one
    process would; leave the learning rate as it was. A generator / ``Sequence`` /
    ``DataLoader`` batch is likewise one global batch, split across the processes.

    The progress bar (rank 0's) shows rank 0's running values during an epoch; the values at
    the epoch's end, in ``History``, in callbacks' ``logs`` and from ``evaluate`` are over all
    processes' samples and the same in every process, so ``EarlyStopping`` and
    ``ReduceLROnPlateau`` decide alike everywhere.

    Under ``torchrun`` no code is needed: ``fit`` sees the environment and uses a default
    ``DataParallel``. Pass one explicitly (``fit(..., distribute=DataParallel(...))`` or
    ``set_distribution(...)``) to set its options, or to start processes some other way.

    Args:
        device_mesh: Keras 3 argument; only the default (one process per device) is supported.
        devices: Keras 3 argument, accepted for compatibility: the devices are the processes'
            own (``LOCAL_RANK``'s GPU, or the CPU).
        auto_shard_dataset: split every data source across processes (default). ``False``:
            each process trains on the data it is given, as given (per-process batches).
        backend: torch.distributed backend; default gloo on CPU, NCCL (with gloo for CPU
            tensors) on CUDA.
        timeout: seconds a process waits for the others before failing with an error (default
            600, or ``KAFFE_DIST_TIMEOUT``): a dead or hung worker stops the job.
        init_method, rank, world_size: for processes not started by torchrun (e.g.
            ``init_method="tcp://10.0.0.1:29500"``); default: torchrun's environment.
        find_unused_parameters: whether some trainable weights take no part in the loss (an
            output without a loss): DDP then looks for them every step. Default: found out
            once, on the first batch (one extra forward and backward in inference mode).
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True, *,
                 backend=None, timeout=None, init_method=None, rank=None, world_size=None,
                 find_unused_parameters=None):
        if device_mesh is not None:
            raise NotImplementedError(
                "kaffe's DataParallel runs one process per device; a device_mesh is not "
                "supported. Start one process per device with torchrun instead.")
        self.devices = devices
        self.auto_shard_dataset = bool(auto_shard_dataset)
        self.backend = backend
        self.timeout = process_group.resolve_timeout(timeout)
        self.init_method, self._rank, self._world = init_method, rank, world_size
        self.find_unused_parameters = find_unused_parameters
        self.rank, self.world_size = None, None
        self._joined = False

    def __repr__(self):
        where = "not started" if self.rank is None else f"rank {self.rank} of {self.world_size}"
        return f"<DataParallel {where}>"

    # ------------------------------------------------------------------ the job
    def setup(self):
        """Join the job (once); afterwards ``rank`` and ``world_size`` are set."""
        if self._joined:
            return self
        if not torch.distributed.is_initialized() and (
                self._world if self._world is not None else environment.world_size()) == 1:
            self.rank, self.world_size = 0, 1  # one process: nothing to join (yet)
            return self
        self.rank, self.world_size = process_group.ensure_process_group(
            self.backend, self.timeout, self.init_method, self._rank, self._world)
        self._joined = True
        return self

    @property
    def is_chief(self):
        return self.rank == 0

    def device(self):
        """The device this process computes on: its ``LOCAL_RANK``'s GPU under NCCL."""
        if torch.cuda.is_available() and "nccl" in torch.distributed.get_backend():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def place(self, model):
        """Put the model on this process's device before anything is built on it."""
        device = self.device()
        if model._device != device:
            model._device = device
            model._prepared_for = None

    # ------------------------------------------------------------------ data
    def shard(self, data):
        if not self.auto_shard_dataset:
            return sharding.PerProcessBatches(data, self.world_size)
        return sharding.shard(data, self.rank, self.world_size)

    def begin_fit(self):
        """Once per ``fit``: rank 0's numpy/``random`` states everywhere (see ``sharding``)."""
        collectives.share_host_rng_states()

    # ------------------------------------------------------------------ the step
    def wrap(self, model, probe=None):
        """The model's loss computation inside ``DistributedDataParallel`` (this broadcasts
        rank 0's weights and buffers to every process). ``probe``: a batch ``(xs, ys, sws)``
        to find out whether some weights take no part in the loss."""
        _wrapped_models.add(model)
        unused = self.find_unused_parameters
        if unused is None:
            unused = probe is not None and self.any_rank(_has_unused_parameters(model, probe))
        device = self.device()
        # A convolution with one input channel has ambiguous strides; DDP then copies its
        # gradient into the bucket instead of viewing it, and says so: harmless, and noise.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
        ddp = DistributedDataParallel(
            _LossModule(model), device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=bool(unused))
        return ddp

    # ------------------------------------------------------------------ reporting
    def global_logs(self, metrics, prefix=""):
        return collectives.global_logs(metrics, prefix)

    def any_rank(self, flag):
        return collectives.any_rank(flag)

    def lost_peer(self, err, where):
        """A clear error for a collective that failed because another process left."""
        if not process_group.is_lost_peer_error(err):
            return None
        return process_group.DistributedError(
            f"kaffe data-parallel job: process rank {self.rank} of {self.world_size} lost "
            f"contact with the others {where}. Another worker most likely died, was killed or "
            f"hung for longer than the timeout ({self.timeout.total_seconds():.0f} s); see "
            f"its own log for the first error. Underlying error: "
            f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}")


def _has_unused_parameters(model, probe):
    """Whether some trainable weight gets no gradient from the loss (checked in inference
    mode, so no dropout mask or batch statistic is drawn or updated)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return False
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            total = model._forward_with_logits(model._forward_loss_impl, *probe)[0]
            grads = torch.autograd.grad(total, params, allow_unused=True)
    finally:
        model.train(was_training)
    return any(g is None for g in grads)


_wrapped_models = weakref.WeakSet()


def _release_wrappers():
    """Drop every model's DDP wrapper (see ``process_group._destroy``)."""
    for model in list(_wrapped_models):
        model._forward_loss = None
    _wrapped_models.clear()


process_group.before_destroy(_release_wrappers)

_global = None
_auto = None


def set_distribution(value):
    """Keras 3's ``keras.distribution.set_distribution``: the strategy ``fit`` uses when none
    is passed (``None`` goes back to the default: data-parallel under torchrun only)."""
    global _global
    if value is not None and not isinstance(value, DataParallel):
        raise TypeError(f"set_distribution expects a kaffe.distribute.DataParallel or None; "
                        f"received {type(value).__name__}.")
    _global = value


def distribution():
    """The strategy set by ``set_distribution`` (None if none)."""
    return _global


def resolve(distribute=None):
    """The strategy for one ``fit``/``evaluate`` call, joined to its job; None for the plain
    single-process path.

    ``distribute``: a ``DataParallel``, ``True`` (a default one), ``False`` (never), or None:
    ``set_distribution``'s, else a default one when started by torchrun with more than one
    process.
    """
    global _auto
    if distribute is False:
        return None
    if isinstance(distribute, DataParallel):
        strategy = distribute
    elif distribute is True or (distribute is None and _global is None
                                and environment.launched_by_torchrun()):
        _auto = _auto or DataParallel()
        strategy = _auto
    elif distribute is None:
        strategy = _global
    else:
        raise TypeError("distribute= expects a kaffe.distribute.DataParallel, True, False or "
                        f"None; received {type(distribute).__name__}.")
    if strategy is None:
        return None
    strategy.setup()
    return None if strategy.world_size == 1 else strategy


def list_devices(device_type=None):
    """Keras 3's ``keras.distribution.list_devices``: the devices this machine offers."""
    if device_type in (None, "gpu", "cuda") and torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if device_type in (None, "cpu"):
        return ["cpu:0"]
    return []
