"""``keras.ops.nn.ctc_decode``: greedy and beam-search decoding of CTC outputs.

Both follow Keras 3 (whose torch backend ports its JAX one): ``inputs`` (batch, steps, classes)
are scores (greedy: taken as they are; beam search: ``log_softmax``-ed), ``mask_index`` is the
blank class, and the result is ``(decoded, scores)`` with ``decoded`` of shape
(top_paths, batch, steps), labels first and -1 after, and ``scores`` (batch, top_paths).

The beam search keeps, per sequence, ``beam_width`` label prefixes each with two scores (last
emitted a label / last emitted a blank), extends every prefix by every class per step, merges
equal prefixes in log space and keeps the best ``beam_width``; all sequences of the batch at
once, one loop over time steps. Equal prefixes are found by sorting packed integer keys of
the rows (exact, no hashing), so among exactly tied scores the order is the lexicographic one
of Keras's JAX backend (Keras's torch backend orders ties by a hash instead).
"""
import torch
import torch.nn.functional as F

from kaffe.ops.registry import float_tensor, op, tensor

_PAD = -1
_STRATEGIES = ("greedy", "beam_search")


def _greedy(inputs, lengths, merge_repeated, mask_index):
    batch, steps, _ = inputs.shape
    scores, best = inputs.max(dim=-1)
    time = torch.arange(steps, device=inputs.device).expand(batch, steps)
    valid = time < lengths[:, None]
    best = torch.where(valid, best, mask_index)
    if merge_repeated:
        repeat = F.pad(best[:, 1:] == best[:, :-1], (1, 0))
        best = torch.where(repeat, mask_index, best)
    blank = best == mask_index
    order = torch.where(blank, steps, time).argsort(dim=-1, stable=True)
    decoded = torch.where(blank, _PAD, best).gather(1, order)
    log_prob = -torch.where(valid, scores, torch.zeros_like(scores)).sum(dim=1, keepdim=True)
    return decoded.unsqueeze(0), log_prob


def _row_keys(paths, classes):
    """Exact int64 keys of the rows of ``paths`` (labels -1..classes-1): a few columns packed
    per key, first column most significant, so comparing keys compares rows."""
    bits = max(1, int(classes).bit_length())
    per_key = 62 // bits
    steps = paths.shape[-1]
    keys = []
    for start in range(0, steps, per_key):
        chunk = paths[..., start:start + per_key] + 1
        shifts = bits * torch.arange(chunk.shape[-1] - 1, -1, -1, device=paths.device)
        keys.append((chunk << shifts).sum(dim=-1))
    return torch.stack(keys, dim=-1)  # (batch, n, keys)


def _unique_rows(paths, size, classes):
    """Per sequence, its distinct rows of ``paths`` (batch, n, steps) in lexicographic order,
    padded with -1 rows to ``size``; and for each input row the flat index (b * size +
    position) of its distinct row. A stable sort per packed key, last key first (LSD)."""
    batch, n, steps = paths.shape
    keys = _row_keys(paths, classes)
    order = torch.arange(n, device=paths.device).expand(batch, n)
    for k in reversed(range(keys.shape[-1])):
        column = keys[..., k].gather(1, order)
        order = order.gather(1, column.argsort(dim=1, stable=True))
    ranked = keys.gather(1, order[..., None].expand_as(keys))
    new = torch.ones((batch, n), dtype=torch.bool, device=paths.device)
    new[:, 1:] = (ranked[:, 1:] != ranked[:, :-1]).any(dim=-1)
    position = torch.cumsum(new.long(), dim=1) - 1  # of each sorted row
    offset = torch.arange(batch, device=paths.device)[:, None] * size
    slots = torch.empty_like(order).scatter_(1, order, position + offset)
    table = torch.full((batch * size, steps), _PAD, dtype=paths.dtype, device=paths.device)
    firsts = (order + torch.arange(batch, device=paths.device)[:, None] * n)[new]
    table[(position + offset)[new]] = paths.reshape(batch * n, steps)[firsts]
    return table.reshape(batch, size, steps), slots


def _merge(slots, scores, size):
    """log(sum(exp(score))) of the rows that share a slot: (batch, size), -inf where empty."""
    top = scores.max(dim=1, keepdim=True).values
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = torch.zeros(scores.shape[0] * size, dtype=scores.dtype, device=scores.device)
    total.scatter_add_(0, slots.reshape(-1), torch.exp(scores - top).reshape(-1))
    return torch.log(total.reshape(-1, size)) + top


def _extend(paths, scores, masked, step_scores, classes, blank):
    """Every prefix followed by every class (the blank appends nothing, nor does a repeat of
    the last label unless a blank came between): (batch, rows * classes, ...)."""
    batch, rows, steps = paths.shape
    paths = paths.repeat_interleave(classes, dim=1)
    scores = scores.repeat_interleave(classes, dim=1) + step_scores.repeat(1, rows)
    was_blank = masked.repeat_interleave(classes, dim=1)
    end = (paths == _PAD).int().argmax(dim=-1, keepdim=True)  # first free cell
    last = paths.gather(2, (end - 1).clamp(min=0))[..., 0]
    last = torch.where(end[..., 0] == 0, _PAD, last)
    labels = torch.arange(classes, device=paths.device, dtype=paths.dtype)
    labels = torch.where(labels == blank, _PAD, labels).repeat(rows).expand(batch, -1)
    is_blank = labels == _PAD
    labels = torch.where(~was_blank & (last == labels), _PAD, labels)
    paths = paths.scatter(2, end, labels[..., None])
    return paths, scores, is_blank


def _prune(paths, scores, masked, beam_width, classes):
    """Merge equal prefixes and keep the ``beam_width`` best, each as (emit, blank) rows."""
    size = paths.shape[1]
    unique, slots = _unique_rows(paths, size, classes)
    minus_inf = torch.full_like(scores, float("-inf"))
    emit = _merge(slots, torch.where(masked, minus_inf, scores), size)
    blank = _merge(slots, torch.where(masked, scores, minus_inf), size)
    best = torch.logaddexp(emit, blank).argsort(dim=1, stable=True)[:, -beam_width:]
    kept = unique.gather(1, best[..., None].expand(-1, -1, unique.shape[2]))
    scores = torch.cat([emit.gather(1, best), blank.gather(1, best)], dim=1)
    masked = torch.zeros_like(scores, dtype=torch.bool)
    masked[:, beam_width:] = True
    return kept.repeat(1, 2, 1), scores, masked


def _beam_search(inputs, lengths, beam_width, top_paths, mask_index):
    batch, steps, classes = inputs.shape
    # classes reversed, so that ascending stable sorts break ties as Keras does
    log_probs = torch.log_softmax(inputs, dim=-1).flip(-1)
    blank = classes - 1 - mask_index
    width = 2 * beam_width
    first = min(classes, beam_width)
    top = log_probs[:, 0].argsort(dim=-1, stable=True)[:, -first:]
    paths = torch.full((batch, width, steps), _PAD, dtype=torch.long, device=inputs.device)
    paths[:, :first, 0] = torch.where(top == blank, _PAD, top)
    scores = torch.full((batch, width), float("-inf"), dtype=inputs.dtype, device=inputs.device)
    scores[:, :first] = log_probs[:, 0].gather(1, top)
    masked = paths[:, :, 0] == _PAD
    longest = int(lengths.max()) if batch else 0
    for t in range(1, min(longest, steps)):
        grown = _prune(*_extend(paths, scores, masked, log_probs[:, t], classes, blank),
                       beam_width, classes)
        active = (lengths > t)[:, None]
        paths = torch.where(active[..., None], grown[0], paths)
        scores = torch.where(active, grown[1], scores)
        masked = torch.where(active, grown[2], masked)
    size = 2 * classes * beam_width
    unique, slots = _unique_rows(paths, size, classes)
    merged = _merge(slots, scores, size)
    best = merged.argsort(dim=1, stable=True)[:, -top_paths:].flip(1)
    decoded = unique.gather(1, best[..., None].expand(-1, -1, steps))
    decoded = torch.where(decoded == _PAD, _PAD, classes - 1 - decoded)
    return decoded.permute(1, 0, 2), merged.gather(1, best)


@op("CTCDecode", call=2, module="nn")
def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1,
               merge_repeated=True, mask_index=0):
    """Decode CTC outputs: ``strategy='greedy'`` (best class per step) or ``'beam_search'``
    (``beam_width`` prefixes, ``top_paths`` best returned; repeats always merged)."""
    if strategy not in _STRATEGIES:
        raise ValueError(f"ctc_decode: strategy must be one of {_STRATEGIES}. Received "
                         f"strategy={strategy!r}.")
    inputs = float_tensor(inputs)
    if inputs.dim() != 3:
        raise ValueError("ctc_decode: expected inputs of shape (batch, steps, classes). "
                         f"Received shape {tuple(inputs.shape)}.")
    classes = inputs.shape[-1]
    mask_index = classes - 1 if mask_index is None else int(mask_index)
    if not -classes <= mask_index < classes:
        raise ValueError(f"ctc_decode: mask_index={mask_index} is not a class of inputs with "
                         f"{classes} classes.")
    mask_index %= classes
    lengths = tensor(sequence_lengths, device=inputs.device).long().reshape(-1)
    if lengths.shape[0] != inputs.shape[0]:
        raise ValueError(f"ctc_decode: {lengths.shape[0]} sequence_lengths for a batch of "
                         f"{inputs.shape[0]}.")
    if strategy == "greedy":
        return _greedy(inputs, lengths, merge_repeated, mask_index)
    for name, value in (("beam_width", beam_width), ("top_paths", top_paths)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"ctc_decode: {name} must be a positive int. Received "
                             f"{name}={value!r}.")
    if top_paths > 2 * classes * beam_width:
        raise ValueError(f"ctc_decode: top_paths={top_paths} exceeds the "
                         f"{2 * classes * beam_width} candidate paths of the beam.")
    return _beam_search(inputs, lengths, beam_width, top_paths, mask_index)
