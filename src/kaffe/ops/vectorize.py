"""``keras.ops.vectorize`` (also ``ops.numpy.vectorize``): ``numpy.vectorize`` for functions
written with ops, batched with ``torch.vmap``.

The arguments' loop axes (all axes, or those left of the core axes a ``signature`` such as
``'(n),(n)->()'`` names) broadcast against each other as numpy's do, are flattened into one
axis and mapped in one ``vmap`` call; the outputs get the broadcast loop shape back. A function
``vmap`` cannot batch (Python branches on tensor values, ``.item()``) runs once per element
instead. ``excluded`` positions are passed through unchanged (numpy's meaning; Keras 3's torch
backend ignores ``excluded``).
"""
import functools
import math
import re

import torch

from kaffe.ops.registry import tensor

_GROUP = re.compile(r"\(([^()]*)\)")


def _parse(signature):
    """``'(m,n),(n)->(m)'`` -> ([('m', 'n'), ('n',)], [('m',)])."""
    if signature.count("->") != 1:
        raise ValueError(f"vectorize: signature must look like '(n),(n)->()'. Received "
                         f"signature={signature!r}.")
    sides = signature.replace(" ", "").split("->")
    groups = [[tuple(n for n in g.split(",") if n) for g in _GROUP.findall(side)]
              for side in sides]
    rebuilt = [",".join("(" + ",".join(g) + ")" for g in side) for side in groups]
    if rebuilt != sides:
        raise ValueError(f"vectorize: could not read signature={signature!r}; write core "
                         "dimensions as '(name,name),(name)->(name)'.")
    return groups


def _core_sizes(values, cores, signature):
    sizes = {}
    for value, core in zip(values, cores):
        if value.dim() < len(core):
            raise ValueError(f"vectorize: an argument of shape {tuple(value.shape)} has fewer "
                             f"than the {len(core)} core dimensions {core} of "
                             f"signature={signature!r}.")
        for name, size in zip(core, value.shape[value.dim() - len(core):]):
            if sizes.setdefault(name, size) != size:
                raise ValueError(f"vectorize: core dimension '{name}' of signature="
                                 f"{signature!r} has sizes {sizes[name]} and {size}.")


def _restore(result, loop):
    if isinstance(result, (tuple, list)):
        return type(result)(_restore(r, loop) for r in result)
    return result.reshape(*loop, *result.shape[1:])


def _stack(results):
    first = results[0]
    if isinstance(first, (tuple, list)):
        return type(first)(_stack([r[i] for r in results]) for i in range(len(first)))
    return torch.stack([tensor(r) for r in results])


def vectorize(pyfunc, *, excluded=None, signature=None):
    """``pyfunc`` mapped over the broadcast loop axes of its (non-excluded) arguments."""
    excluded = set(excluded or ())
    inputs = _parse(signature)[0] if signature is not None else None

    @functools.wraps(pyfunc)
    def vectorized(*args, **kwargs):
        mapped = [i for i, a in enumerate(args) if i not in excluded and a is not None]
        cores = inputs if inputs is not None else [()] * len(mapped)
        if len(cores) != len(mapped):
            raise ValueError(f"vectorize: signature={signature!r} describes {len(cores)} "
                             f"arguments; the call maps {len(mapped)}.")
        if not mapped:
            return pyfunc(*args, **kwargs)
        values = [tensor(args[i]) for i in mapped]
        _core_sizes(values, cores, signature)
        loop = torch.broadcast_shapes(*(v.shape[:v.dim() - len(c)]
                                        for v, c in zip(values, cores)))
        flat = [v.expand(*loop, *v.shape[v.dim() - len(c):])
                 .reshape(-1, *v.shape[v.dim() - len(c):]) for v, c in zip(values, cores)]

        def one(*items):
            call = list(args)
            for i, item in zip(mapped, items):
                call[i] = item
            return pyfunc(*call, **kwargs)
        if math.prod(loop) == 0:
            raise ValueError(f"vectorize: the arguments broadcast to the empty loop shape "
                             f"{tuple(loop)}; there is nothing to map over.")
        try:
            result = torch.vmap(one)(*flat)
        except (RuntimeError, TypeError, ValueError):  # not batchable: element by element
            result = _stack([one(*(f[k] for f in flat)) for k in range(flat[0].shape[0])])
        return _restore(result, loop)
    return vectorized
