"""Gradient averaging for training loops that are not ``fit`` (the Caffe solver, a
hand-written loop): Caffe's multi-GPU rule, every process's gradients summed and divided by
the number of processes, on torch.distributed's all-reduce.

    kaffe.distribute.broadcast_parameters(params)   # once: every process starts from rank 0's
    loss.backward()
    kaffe.distribute.average_gradients(params)      # every step, before optimizer.step()

DDP does the same inside ``fit`` (overlapping the exchange with backward); these helpers
exchange after backward, in buckets of about 25 MB.
"""
import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

_BUCKET_BYTES = 25 * 2 ** 20


def _buckets(tensors):
    """Consecutive tensors of one dtype and device, about ``_BUCKET_BYTES`` each."""
    bucket, size = [], 0
    for t in tensors:
        if bucket and (t.dtype != bucket[0].dtype or t.device != bucket[0].device
                       or size + t.numel() * t.element_size() > _BUCKET_BYTES):
            yield bucket
            bucket, size = [], 0
        bucket.append(t)
        size += t.numel() * t.element_size()
    if bucket:
        yield bucket


def _params(params):
    params = params.parameters() if hasattr(params, "parameters") else params
    return [p for p in params if p.requires_grad]


def broadcast_parameters(params, src=0):
    """Copy rank ``src``'s values of ``params`` (a module or a list) to every process."""
    with torch.no_grad():
        for bucket in _buckets([p.data for p in _params(params)]):
            flat = _flatten_dense_tensors(bucket)
            dist.broadcast(flat, src)
            for t, value in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                t.copy_(value)


def average_gradients(params):
    """Replace every ``param.grad`` by its mean over the processes (a parameter without a
    gradient counts as zeros, so every process exchanges the same buckets)."""
    world = dist.get_world_size()
    params = _params(params)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    with torch.no_grad():
        for bucket in _buckets([p.grad for p in params]):
            flat = _flatten_dense_tensors(bucket)
            dist.all_reduce(flat)
            flat.div_(world)
            for t, value in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                t.copy_(value)
