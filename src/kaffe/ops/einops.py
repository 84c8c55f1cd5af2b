"""``keras.ops.rearrange``: einops-style axis rearrangement (the subset Keras 3 implements).

A pattern such as ``'b (h1 h) (w1 w) c -> (b h1 w1) h w c'`` names every input axis, splits a
parenthesised input axis into the named parts (all but one of their lengths given as keyword
arguments, the last inferred), permutes, and joins parenthesised output groups. As in Keras:
no ellipsis (``...``), no anonymous axes (``1``, ``()``), no repetition or reduction; the
identifiers on both sides must be the same. Errors state einops' facts (which identifiers,
which lengths) with the pattern and the tensor's shape.
"""
import math
import re

from kaffe.ops.registry import op, tensor as as_tensor

_TOKEN = re.compile(r"\(([^()]*)\)|([^\s()]+)|(\S)")
_NAME = re.compile(r"[A-Za-z_]\w*\Z")


def _error(pattern, shape, text):
    where = f" (tensor shape {tuple(shape)})" if shape is not None else ""
    return ValueError(f"ops.rearrange: {text}. Pattern: '{pattern}'{where}.")


def _groups(side, pattern):
    """One side of the pattern as a list of groups, each a list of axis names."""
    groups = []
    for inner, name, stray in _TOKEN.findall(side):
        if stray:
            raise _error(pattern, None, f"unbalanced parenthesis or stray character {stray!r}")
        names = inner.split() if not name else [name]
        for n in names:
            if "..." in n or n == "…":
                raise _error(pattern, None, "ellipsis (...) is not supported by keras.ops."
                             "rearrange; name every axis")
            if not _NAME.match(n):
                raise _error(pattern, None, f"{n!r} is not an axis name (anonymous axes like "
                             "'1' or '()' are not supported; use names made of letters, digits "
                             "and '_')")
        if not name and not names:
            raise _error(pattern, None, "an empty group '()' is not supported")
        groups.append(names)
    return groups


def parse(pattern):
    """(input groups, output groups) of an ``'in -> out'`` pattern, checked."""
    if not isinstance(pattern, str) or pattern.count("->") != 1:
        raise ValueError(f"ops.rearrange: expected a pattern 'input axes -> output axes' with "
                         f"one '->'. Received: pattern={pattern!r}.")
    left, right = pattern.split("->")
    inputs, outputs = _groups(left, pattern), _groups(right, pattern)
    for side, groups in (("left", inputs), ("right", outputs)):
        flat = [n for g in groups for n in g]
        repeated = sorted({n for n in flat if flat.count(n) > 1})
        if repeated:
            raise _error(pattern, None, f"indexing expression contains duplicate dimension(s) "
                         f"{repeated} on the {side} side")
    left_names = {n for g in inputs for n in g}
    right_names = {n for g in outputs for n in g}
    if left_names != right_names:
        raise _error(pattern, None, "identifiers only on one side of expression (should be on "
                     f"both): {sorted(left_names ^ right_names)}")
    return inputs, outputs


def axis_sizes(pattern, inputs, shape, axes_lengths):
    """Length of every named axis, from the shape and ``axes_lengths`` (one unknown per group)."""
    if len(inputs) != len(shape):
        raise _error(pattern, shape, f"wrong shape: expected {len(inputs)} dims, received a "
                     f"{len(shape)}-dim tensor")
    unused = sorted(set(axes_lengths) - {n for g in inputs for n in g})
    if unused:
        raise _error(pattern, shape, f"axes_lengths names {unused}, which the input side does "
                     "not decompose")
    sizes = {}
    for group, dim in zip(inputs, shape):
        unknown = [n for n in group if n not in axes_lengths]
        if len(unknown) > 1:
            raise _error(pattern, shape, f"could not infer sizes for {unknown}: give all but one "
                         "of them as keyword arguments (e.g. h1=2)")
        known = math.prod(int(axes_lengths[n]) for n in group if n in axes_lengths)
        if unknown:
            if known <= 0 or dim % known:
                raise _error(pattern, shape, f"shape mismatch, can't divide axis of length {dim} "
                             f"in chunks of {known}")
            sizes[unknown[0]] = dim // known
        elif known != dim:
            raise _error(pattern, shape, f"shape mismatch, {known} != {dim} for the axes "
                         f"{group} (lengths given: "
                         f"{ {n: axes_lengths[n] for n in group} })")
        sizes.update({n: int(axes_lengths[n]) for n in group if n in axes_lengths})
    return sizes


@op("Rearrange", call=("tensor", "pattern", "axes_lengths"), module="einops")
def rearrange(tensor, pattern, **axes_lengths):
    """Split, permute and join axes as ``pattern`` says (einops notation, Keras's subset)."""
    x = as_tensor(tensor)
    inputs, outputs = parse(pattern)
    sizes = axis_sizes(pattern, inputs, tuple(x.shape), axes_lengths)
    order = [n for g in inputs for n in g]
    x = x.reshape([sizes[n] for n in order])
    x = x.permute([order.index(n) for g in outputs for n in g])
    return x.reshape([math.prod(sizes[n] for n in g) for g in outputs])
