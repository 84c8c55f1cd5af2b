"""``keras.ops.nn.ctc_decode``: greedy and beam-search decoding of CTC outputs.

Both follow Keras 3 (whose torch backend ports its JAX one): ``inputs`` (batch, steps, classes)
are scores (greedy: taken as they are; beam search: ``log_softmax``-ed), ``mask_index`` is the
blank class, and the result is ``(decoded, scores)`` with ``decoded`` int32 of shape
(top_paths, batch, steps), labels first and -1 after, and ``scores`` (batch, top_paths).

The beam search keeps, per sequence, ``beam_width`` label prefixes each with two scores (last
emitted a label / last emitted a blank), extends every prefix by every class per step, merges
equal prefixes in log space and keeps the best ``beam_width``; all sequences of the batch at
once, one loop over time steps. Equal prefixes are found by sorting packed integer keys of
the rows (exact, no hashing; a child's key is its parent's plus the label written, so the
``beam_width * classes`` children never become rows), so among exactly tied scores the order is the lexicographic one
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
    return decoded.unsqueeze(0).to(torch.int32), log_prob


class _Packing:
    """Exact int64 keys of label rows (labels -1..classes-1): ``per_key`` columns packed per
    key, first column most significant, so comparing keys compares rows lexicographically."""

    def __init__(self, classes, steps, device):
        self.bits = max(1, int(classes).bit_length())
        self.per_key = 62 // self.bits
        self.count = -(-steps // self.per_key)
        self.steps = steps
        self.shifts = self.bits * torch.arange(self.per_key - 1, -1, -1, device=device)

    def keys(self, paths):
        """(..., steps) rows -> (..., count) keys."""
        padded = F.pad(paths + 1, (0, self.count * self.per_key - self.steps))
        chunks = padded.reshape(*paths.shape[:-1], self.count, self.per_key)
        return (chunks << self.shifts).sum(dim=-1)

    def written(self, position, labels):
        """What writing ``labels`` into empty cells at ``position`` adds to the keys."""
        value = (labels + 1) << (self.bits * (self.per_key - 1 - position % self.per_key))
        added = torch.zeros(*labels.shape, self.count, dtype=labels.dtype, device=labels.device)
        return added.scatter_(-1, (position // self.per_key)[..., None], value[..., None])


def _distinct(keys, size, used):
    """Per sequence, the distinct rows of ``keys`` (batch, n, count; the first ``used`` keys
    can differ) in lexicographic order: each row's position among them (batch, n), and a
    row holding each position (batch, size; -1 for positions past the last). Stable sorts,
    least significant key first."""
    batch, n, _ = keys.shape
    order = torch.arange(n, device=keys.device).expand(batch, n)
    for k in reversed(range(used)):
        order = order.gather(1, keys[..., k].gather(1, order).argsort(dim=1, stable=True))
    ranked = keys[..., :used].gather(1, order[..., None].expand(-1, -1, used))
    new = torch.ones((batch, n), dtype=torch.bool, device=keys.device)
    new[:, 1:] = (ranked[:, 1:] != ranked[:, :-1]).any(dim=-1)
    sorted_position = torch.cumsum(new.long(), dim=1) - 1
    position = torch.empty_like(order).scatter_(1, order, sorted_position)
    holder = torch.full((batch, size), -1, dtype=order.dtype, device=keys.device)
    holder.scatter_(1, sorted_position, order)  # equal rows: any one of them
    return position, holder


def _merge(position, scores, size):
    """log(sum(exp(score))) of the rows at each position: (batch, size), -inf where none."""
    top = scores.max(dim=1, keepdim=True).values
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = torch.zeros((scores.shape[0], size), dtype=scores.dtype, device=scores.device)
    total.scatter_add_(1, position, torch.exp(scores - top))
    return torch.log(total) + top


def _rows(paths, holder, chosen):
    """Rows of ``paths`` at ``holder``'s ``chosen`` positions; all -1 where none."""
    index = holder.gather(1, chosen)
    rows = paths.gather(1, index.clamp(min=0)[..., None].expand(-1, -1, paths.shape[2]))
    return torch.where((index >= 0)[..., None], rows, _PAD)


def _step(paths, scores, masked, step_scores, blank, beam_width, packing, used):
    """One time step: every prefix followed by every class (the blank appends nothing, nor
    does a repeat of the last label unless a blank came between), equal prefixes merged in
    log space, the ``beam_width`` best kept as (emit, blank) rows. Children are handled as
    packed keys; only the kept ones become rows."""
    batch, rows, steps = paths.shape
    classes = step_scores.shape[1]
    end = (paths == _PAD).int().argmax(dim=-1)  # first free cell (batch, rows)
    last = paths.gather(2, (end - 1).clamp(min=0)[..., None])[..., 0]
    last = torch.where(end == 0, _PAD, last)
    labels = torch.arange(classes, device=paths.device, dtype=paths.dtype)
    labels = torch.where(labels == blank, _PAD, labels).expand(batch, rows, classes)
    by_blank = (labels == _PAD).reshape(batch, -1)
    labels = torch.where(~masked[..., None] & (last[..., None] == labels), _PAD, labels)
    cells = end[..., None].expand_as(labels)
    keys = packing.keys(paths)[:, :, None] + packing.written(cells, labels)
    children = (scores[..., None] + step_scores[:, None, :]).reshape(batch, -1)
    size = rows * classes
    position, holder = _distinct(keys.reshape(batch, size, -1), size, used)
    minus_inf = torch.full_like(children, float("-inf"))
    emit = _merge(position, torch.where(by_blank, minus_inf, children), size)
    blanks = _merge(position, torch.where(by_blank, children, minus_inf), size)
    best = torch.logaddexp(emit, blanks).argsort(dim=1, stable=True)[:, -beam_width:]
    child = holder.gather(1, best)
    parent = child.clamp(min=0) // classes
    kept = paths.gather(1, parent[..., None].expand(-1, -1, steps))
    label = labels.reshape(batch, -1).gather(1, child.clamp(min=0))
    kept = kept.scatter(2, end.gather(1, parent)[..., None], label[..., None])
    kept = torch.where((child >= 0)[..., None], kept, _PAD)
    scores = torch.cat([emit.gather(1, best), blanks.gather(1, best)], dim=1)
    masked = torch.zeros_like(scores, dtype=torch.bool)
    masked[:, beam_width:] = True
    return kept.repeat(1, 2, 1), scores, masked


def _beam_search(inputs, lengths, beam_width, top_paths, mask_index):
    batch, steps, classes = inputs.shape
    # classes reversed, so that ascending stable sorts break ties as Keras does
    log_probs = torch.log_softmax(inputs, dim=-1).flip(-1)
    blank = classes - 1 - mask_index
    packing = _Packing(classes, steps, inputs.device)
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
        used = t // packing.per_key + 1  # children hold labels in cells 0..t only
        grown = _step(paths, scores, masked, log_probs[:, t], blank, beam_width, packing, used)
        active = (lengths > t)[:, None]
        paths = torch.where(active[..., None], grown[0], paths)
        scores = torch.where(active, grown[1], scores)
        masked = torch.where(active, grown[2], masked)
    size = 2 * classes * beam_width
    position, holder = _distinct(packing.keys(paths), size, packing.count)
    merged = _merge(position, scores, size)
    best = merged.argsort(dim=1, stable=True)[:, -top_paths:].flip(1)
    decoded = _rows(paths, holder, best)
    decoded = torch.where(decoded == _PAD, _PAD, classes - 1 - decoded)
    return decoded.permute(1, 0, 2).to(torch.int32), merged.gather(1, best)


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
