"""Where this process stands in a data-parallel job: rank, world size, local rank.

torchrun (``torch.distributed.run``) tells each worker through the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``); once a process group is up,
torch.distributed is asked instead. Cheap to call (callbacks ask before writing anything).
"""
import os

import torch.distributed as dist


def _env_int(name, default):
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def launched_by_torchrun():
    """True when started by torchrun (or another launcher that sets the same variables) with
    more than one process in the job."""
    return "RANK" in os.environ and _env_int("WORLD_SIZE", 1) > 1


def group_ready():
    return dist.is_available() and dist.is_initialized()


def rank():
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if group_ready() else _env_int("RANK", 0)


def world_size():
    """Processes in the job (1 when not distributed)."""
    return dist.get_world_size() if group_ready() else _env_int("WORLD_SIZE", 1)


def local_rank():
    """This process's rank on its machine: which GPU it drives."""
    return _env_int("LOCAL_RANK", rank() if world_size() > 1 else 0)


def is_rank_zero():
    """Only rank 0 prints, writes TensorBoard events, CSV logs and checkpoints."""
    return rank() == 0
