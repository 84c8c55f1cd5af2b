"""Start torch.distributed's process group, once, the way the hardware wants it.

CUDA: NCCL for the model's gradients and gloo beside it for the small CPU-side exchanges
(metric sums, shuffling orders); each process drives the GPU numbered by its ``LOCAL_RANK``.
CPU: gloo. The group gets a timeout, so when a worker dies or hangs the others stop with an
error naming the job rather than wait for ever.
"""
import atexit
import datetime
import gc
import logging
import os

import torch
import torch.distributed as dist

from kaffe.distribute import environment as env

log = logging.getLogger("kaffe")

#: seconds a collective may wait for the other processes (first steps under torch.compile can
#: take minutes on one rank while another waits); KAFFE_DIST_TIMEOUT overrides.
DEFAULT_TIMEOUT_S = 600.0

_created_here = False
_before_destroy = []  # callables that drop references to the group (DDP wrappers) at exit


class DistributedError(RuntimeError):
    """A data-parallel job that cannot go on: a process died, hung or was set up wrongly."""


def default_backend():
    if torch.cuda.is_available() and os.environ.get("KAFFE_DEVICE", "cuda").startswith("cuda"):
        return "cpu:gloo,cuda:nccl"
    return "gloo"


def resolve_timeout(timeout):
    if timeout is None:
        timeout = float(os.environ.get("KAFFE_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    if isinstance(timeout, datetime.timedelta):
        return timeout
    if timeout <= 0:
        raise ValueError(f"The process-group timeout must be positive seconds; received {timeout}.")
    return datetime.timedelta(seconds=float(timeout))


def ensure_process_group(backend=None, timeout=None, init_method=None, rank=None,
                         world_size=None):
    """Initialise the default process group unless one exists; returns (rank, world size).

    With no arguments the environment set by torchrun says everything. ``rank``,
    ``world_size`` and ``init_method`` (``tcp://host:port`` or ``file:///path``) serve
    processes started some other way (``torch.multiprocessing``, a cluster scheduler).
    """
    global _created_here
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if not dist.is_available():
        raise DistributedError("This torch build has no torch.distributed; data-parallel "
                               "training needs it (pip install a standard torch wheel).")
    world = env.world_size() if world_size is None else int(world_size)
    me = env.rank() if rank is None else int(rank)
    if init_method is None and ("MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ):
        raise DistributedError(
            f"Data-parallel training (rank {me} of {world}) needs to know where rank 0 listens: "
            "start the script with torchrun (torchrun --nproc_per_node=N script.py), or set "
            "MASTER_ADDR and MASTER_PORT, or pass DataParallel(init_method='tcp://host:port').")
    backend = backend or default_backend()
    if "nccl" in backend:
        torch.cuda.set_device(env.local_rank() % max(torch.cuda.device_count(), 1))
    kwargs = {"backend": backend, "timeout": resolve_timeout(timeout), "rank": me,
              "world_size": world}
    if init_method is not None:
        kwargs["init_method"] = init_method
    try:
        dist.init_process_group(**kwargs)
    except Exception as err:  # rendezvous failures: say which job and how it was set up
        where = init_method or (f"env://{os.environ.get('MASTER_ADDR', '?')}:"
                                f"{os.environ.get('MASTER_PORT', '?')}")
        raise DistributedError(
            f"Could not join the data-parallel job as rank {me} of {world} (backend {backend}, "
            f"rendezvous {where}): {err}") from err
    if not _created_here:
        _created_here = True
        atexit.register(_destroy)
    if me == 0:
        log.info("kaffe: data-parallel over %d processes (backend %s)", world, backend)
    return me, world


def before_destroy(release):
    """Run ``release()`` at exit before the group is destroyed."""
    _before_destroy.append(release)


def _destroy():
    """At exit, while the interpreter is whole: free what holds the group (DDP wrappers keep
    it alive), then the group. Gloo's threads freed later, during interpreter finalisation,
    can abort the process ("terminate called without an active exception")."""
    for release in _before_destroy:
        release()
    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # already torn down by a failed peer: nothing left to free
            pass
    gc.collect()


def is_lost_peer_error(err):
    """Errors torch raises when another process of the job died, hung or left."""
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(word in text for word in (
        "gloo", "nccl", "connection", "timed out", "timeout", "peer", "broken pipe",
        "socket", "store", "process group"))
