"""The small exchanges a data-parallel ``fit`` makes besides DDP's gradient all-reduce.

All of them run on CPU tensors (gloo, also beside NCCL on CUDA), at most once per epoch or
per logging point, never per step on the fast path: the shuffling order rank 0 draws, rank 0's
numpy/``random`` states (so data pipelines agree), metric sums, and the stop flag.
"""
import random

import numpy as np
import torch
import torch.distributed as dist

from kaffe.training.compile_utils import RunningMean


def broadcast(tensor, src=0):
    """``tensor`` (CPU) as rank ``src`` has it, on every rank."""
    dist.broadcast(tensor, src)
    return tensor


def broadcast_permutation(n):
    """Rank 0's ``torch.randperm(n)``, drawn from its global RNG (so a 1-process run seeded
    the same way draws the same order)."""
    order = torch.randperm(n) if dist.get_rank() == 0 else torch.empty(n, dtype=torch.int64)
    return broadcast(order)


def broadcast_int_lists(lists):
    """Rank 0's list of integer lists (batches of sample indices) on every rank."""
    if dist.get_rank() == 0:
        sizes = torch.tensor([len(x) for x in lists], dtype=torch.int64)
        flat = torch.tensor([i for x in lists for i in x], dtype=torch.int64)
        header = torch.tensor([len(sizes), len(flat)], dtype=torch.int64)
    else:
        header = torch.zeros(2, dtype=torch.int64)
    broadcast(header)
    if dist.get_rank() != 0:
        sizes = torch.empty(int(header[0]), dtype=torch.int64)
        flat = torch.empty(int(header[1]), dtype=torch.int64)
    broadcast(sizes)
    broadcast(flat)
    return [chunk.tolist() for chunk in torch.split(flat, sizes.tolist())]


def share_host_rng_states():
    """Give every rank rank 0's numpy and ``random`` states, so generators and Sequences that
    shuffle or sample with them yield the same batches in every process (each process then
    keeps its own part). torch's RNG is left alone: dropout masks stay independent."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    packed = torch.cat([torch.from_numpy(keys.astype(np.int64)),
                        torch.tensor([pos, has_gauss], dtype=torch.int64),
                        torch.tensor(py_state, dtype=torch.int64)])
    extra = torch.tensor([gauss, -1.0 if gauss_next is None else 1.0,
                          0.0 if gauss_next is None else gauss_next], dtype=torch.float64)
    broadcast(packed)
    broadcast(extra)
    if dist.get_rank() != 0:
        values = packed.tolist()
        n = len(keys)
        np.random.set_state((kind, np.array(values[:n], dtype=np.uint32), values[n],
                             values[n + 1], float(extra[0])))
        random.setstate((version, tuple(values[n + 2:]),
                         None if extra[1] < 0 else float(extra[2])))


def any_rank(flag):
    """True on every rank if ``flag`` is true on any (keeps ranks stopping together)."""
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def all_ranks(flag):
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


# ------------------------------------------------------------------------------ metrics
def _parts(metric):
    """A metric's additive state as CPU float64 tensors, and how to read its result from the
    summed state."""
    if isinstance(metric, RunningMean):
        total = torch.zeros(()) if metric.total is None else metric.total.detach()
        parts = [total.reshape(1).cpu().double(), torch.tensor([metric.count], dtype=torch.float64)]
        return parts, lambda s: float(s[0][0] / max(float(s[1][0]), 1e-12))
    shapes = getattr(metric, "_state_shapes", None)
    if shapes and hasattr(metric, "_state"):
        state = metric._state or {}
        parts = [(state[k].detach().cpu().double() if k in state
                  else torch.zeros(shape, dtype=torch.float64)).reshape(-1)
                 for k, shape in shapes.items()]

        def read(summed):
            kept = metric._state
            device = next(iter(kept.values())).device if kept else torch.device("cpu")
            dtype = getattr(torch, getattr(metric, "dtype", "float32"))
            metric._state = {k: v.reshape(shape).to(device=device, dtype=dtype)
                             for (k, shape), v in zip(shapes.items(), summed)}
            try:
                return float(metric.result())
            finally:
                metric._state = kept
        return parts, read
    # A metric kaffe does not know the state of: average its per-rank results.
    world = dist.get_world_size()
    return ([torch.tensor([float(metric.result())], dtype=torch.float64)],
            lambda s: float(s[0][0]) / world)


def global_logs(metrics, prefix=""):
    """Every metric over the samples of all ranks (sums of states, not means of means), as
    the ``logs`` dict ``fit`` hands to callbacks: identical on every rank."""
    entries = [_parts(m) for m in metrics]
    flat = [p for parts, _ in entries for p in parts]
    if not flat:
        return {}
    sizes = [p.numel() for p in flat]
    summed = torch.cat(flat)
    dist.all_reduce(summed)
    pieces = iter(torch.split(summed, sizes))
    logs = {}
    for metric, (parts, read) in zip(metrics, entries):
        logs[prefix + metric.name] = read([next(pieces) for _ in parts])
    return logs
