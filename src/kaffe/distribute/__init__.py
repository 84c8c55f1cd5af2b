"""Data-parallel training over processes and machines on torch.distributed.

A script that calls ``fit`` trains data-parallel, unedited, when started under torchrun::

    torchrun --nproc_per_node=4 train.py                     # one machine, 4 processes
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d \\
             --rdzv_endpoint=host0:29500 train.py             # on each of 2 machines

Batch size is GLOBAL (Keras 3's ``DataParallel``): ``batch_size=256`` on 4 processes is 64
samples per process per step; epochs take the same steps as on one process. See
``DataParallel`` for the explicit form and ``launch`` for starting processes from Python.
"""
from kaffe.distribute.environment import (is_rank_zero, launched_by_torchrun, local_rank, rank,
                                          world_size)
from kaffe.distribute.gradients import average_gradients, broadcast_parameters
from kaffe.distribute.launcher import gpu_list, launch, launched, torchrun_command
from kaffe.distribute.process_group import DistributedError, ensure_process_group
from kaffe.distribute.strategy import (DataParallel, distribution, list_devices, resolve,
                                       set_distribution)

__all__ = ["DataParallel", "DistributedError", "average_gradients", "broadcast_parameters",
           "distribution", "ensure_process_group",
           "gpu_list", "is_rank_zero", "launch", "launched", "launched_by_torchrun",
           "list_devices", "local_rank", "rank", "resolve", "set_distribution",
           "torchrun_command", "world_size"]

# Keras 3's spelling, importable as kaffe.distribution (and keras.distribution under kaffe run).
from kaffe import distribution as _keras_spelling  # noqa: E402,F401
