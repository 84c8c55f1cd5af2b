"""Caffe's loss layers and Accuracy.

A loss top is a 0-axis tensor, shape ``()`` (Caffe's loss blob has 0 axes and count 1; pycaffe
shows shape ``()``). Layers return the unweighted loss: the Net scales the top's gradient by its
``loss_weight`` (1 for ``*Loss`` types unless set), as Caffe puts loss_weight in the top's diff.
Backward is autograd of the forward, which equals Caffe's Backward_cpu (ContrastiveLoss keeps
Caffe's 1e-4 in the dissimilar-pair gradient).
"""
import torch
import torch.nn.functional as F

from kaffe.caffe.blobs import load_blobproto
from kaffe.caffe.builders.elementwise import canonical_axis
from kaffe.caffe.builders.registry import CaffeLayer, register
from kaffe.caffe.proto import caffe_pb2

_LP = caffe_pb2.LossParameter
_FLT_MIN = 1.17549435e-38
_LOG_FLT_MIN = float(torch.log(torch.tensor(_FLT_MIN)))   # Caffe's floor of log(prob), float32
_LOG_THRESHOLD = 1e-20


def _normalization(param, default):
    """Caffe's choice: ``normalization`` if set, else old ``normalize`` (true -> VALID, false ->
    BATCH_SIZE), else ``default``."""
    lp = param.loss_param
    if lp.HasField("normalization"):
        return lp.normalization
    if lp.HasField("normalize"):
        return _LP.VALID if lp.normalize else _LP.BATCH_SIZE
    return default


def _normalizer(mode, outer, inner, valid):
    if mode == _LP.FULL:
        n = outer * inner
    elif mode == _LP.VALID:
        n = valid
    elif mode == _LP.BATCH_SIZE:
        n = outer
    else:
        n = 1
    return max(1.0, float(n))


def _ignore(param):
    lp = param.loss_param
    return lp.ignore_label if lp.HasField("ignore_label") else None


class _Loss(CaffeLayer):
    def top_shapes(self, bottom_shapes):
        return [()] + [tuple(bottom_shapes[0])] * (len(self.param.top) - 1)


def _split_axis(shape, axis):
    outer = 1
    for d in shape[:axis]:
        outer *= d
    inner = 1
    for d in shape[axis + 1:]:
        inner *= d
    return outer, inner


def _labels(label, outer, inner, layer, classes):
    """The label blob as ``(outer, inner)`` class indices (Caffe: ``static_cast<int>``), each
    checked to lie in ``[0, classes)`` unless it is the layer's ``ignore_label``: one min/max
    over the labels; the ignored ones are looked at only when that finds one out of range."""
    if label.numel() != outer * inner:
        raise ValueError(f"{layer.param.type} '{layer.name}' expected {outer * inner} labels "
                         f"(one per prediction). Received: label blob of shape "
                         f"{tuple(label.shape)}.")
    labels = label.detach().reshape(outer, inner).long()
    if labels.numel():
        low, high = (int(v) for v in torch.aminmax(labels))
        if low < 0 or high >= classes:
            _label_out_of_range(labels, layer, classes)
    return labels


def _label_out_of_range(labels, layer, classes):
    ignore = getattr(layer, "ignore_label", None)
    bad = (labels < 0) | (labels >= classes)
    if ignore is not None:
        bad &= labels != ignore
    if bad.any():
        where = bad.nonzero()[0].tolist()
        value = int(labels[where[0], where[1]])
        raise ValueError(
            f"{layer.param.type} layer '{layer.name}': label {value} (at position {where[0]}"
            f"{', ' + str(where[1]) if labels.shape[1] > 1 else ''}) is outside the {classes} "
            f"classes of its input (valid: 0 to {classes - 1}"
            f"{'' if ignore is None else f', or ignore_label {ignore}'}). Check the labels in "
            f"the data or the layer's num_output.")


@register("SoftmaxWithLoss")
class SoftmaxWithLoss(_Loss):
    """-log softmax(x)[label] over ``softmax_param.axis`` (default 1), summed over the non-ignored
    positions and divided per ``normalization`` (default VALID). Optional 2nd top: the softmax."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.axis = canonical_axis(param.softmax_param.axis, len(bottom_shapes[0]),
                                   "SoftmaxWithLoss", param.name)
        self.ignore_label = _ignore(param)
        self.normalization = _normalization(param, _LP.VALID)

    def forward(self, x, label):
        outer, inner = _split_axis(x.shape, self.axis)
        labels = _labels(label, outer, inner, self, x.shape[self.axis])
        logp = torch.log_softmax(x, dim=self.axis).reshape(outer, x.shape[self.axis], inner)
        if self.ignore_label is None:   # every position counts: no mask to build or apply
            valid = None
            picked = logp.gather(1, labels.unsqueeze(1)).squeeze(1)
        else:
            valid = labels != self.ignore_label
            picked = logp.gather(1, torch.where(valid, labels, 0).unsqueeze(1)).squeeze(1)
        # Caffe's log(max(prob, FLT_MIN)) as the value; log_softmax's gradient (prob - onehot)
        picked = picked + (picked.clamp(min=_LOG_FLT_MIN) - picked).detach()
        count = outer * inner if valid is None else int(valid.sum())
        norm = _normalizer(self.normalization, outer, inner, count)
        loss = -(picked if valid is None else picked * valid).sum() / norm
        tops = [loss]
        if len(self.param.top) > 1:
            tops.append(torch.softmax(x, dim=self.axis))
        return tops


@register("SigmoidCrossEntropyLoss")
class SigmoidCrossEntropyLoss(_Loss):
    """Cross-entropy of sigmoid(x) against targets in [0, 1] (same count as x), skipping
    ``ignore_label`` targets; divided per ``normalization`` (Caffe's default here: BATCH_SIZE)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        self.ignore_label = _ignore(param)
        self.normalization = _normalization(param, _LP.BATCH_SIZE)
        if bottom_shapes[0] and tuple(bottom_shapes[0]) != tuple(bottom_shapes[1]) and \
                _count(bottom_shapes[0]) != _count(bottom_shapes[1]):
            raise ValueError(f"SigmoidCrossEntropyLoss '{param.name}' expected targets with "
                             f"the count of the input {tuple(bottom_shapes[0])}. Received: "
                             f"{tuple(bottom_shapes[1])}.")

    def forward(self, x, target):
        target = target.detach().reshape(x.shape)
        per = F.binary_cross_entropy_with_logits(x, target, reduction="none")
        if self.ignore_label is not None:
            valid = target.long() != self.ignore_label
            per = per * valid
            count = int(valid.sum())
        else:
            count = x.numel()
        outer = x.shape[0] if x.dim() else 1
        norm = _normalizer(self.normalization, outer, x.numel() // max(outer, 1), count)
        return [per.sum() / norm]


def _count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


@register("EuclideanLoss")
class EuclideanLoss(_Loss):
    """sum((a - b)^2) / (2 N); both bottoms get gradients."""

    def forward(self, a, b):
        if a.numel() != b.numel():
            raise ValueError(f"EuclideanLoss '{self.name}' expected bottoms of equal count. "
                             f"Received: {tuple(a.shape)} and {tuple(b.shape)}.")
        diff = a - b.reshape(a.shape)
        return [(diff * diff).sum() / (2.0 * a.shape[0])]


@register("HingeLoss")
class HingeLoss(_Loss):
    """One-vs-all hinge: t = -1 except +1 at the label, sum(max(0, 1 - t x)) / N (L1) or the sum
    of squares / N (L2)."""

    def forward(self, x, label):
        n = x.shape[0]
        flat = x.reshape(n, -1)
        sign = torch.ones_like(flat).scatter_(1, label.detach().reshape(n, 1).long(), -1.0)
        margin = torch.clamp(1 + sign * flat, min=0)
        if self.param.hinge_loss_param.norm == caffe_pb2.HingeLossParameter.L2:
            return [(margin * margin).sum() / n]
        return [margin.sum() / n]


@register("ContrastiveLoss")
class ContrastiveLoss(_Loss):
    """Pairs (a_i, b_i) with similarity y_i: sum(y d^2 + (1 - y) max(margin - d, 0)^2) / (2N),
    d = ||a_i - b_i||; ``legacy_version``: (1 - y) max(margin - d^2, 0) instead."""

    def forward(self, a, b, sim):
        n = a.shape[0]
        diff = (a - b).reshape(n, -1)
        dist_sq = (diff * diff).sum(1)
        similar = sim.detach().reshape(n).long() != 0  # Caffe: static_cast<int>(y)
        p = self.param.contrastive_loss_param
        if p.legacy_version:
            dissimilar = torch.clamp(p.margin - dist_sq, min=0)
            return [torch.where(similar, dist_sq, dissimilar).sum() / (2.0 * n)]
        dist = dist_sq.detach().sqrt()
        mdist = torch.clamp(p.margin - dist, min=0)
        value = torch.where(similar, dist_sq, (mdist * mdist)).sum() / (2.0 * n)
        # Caffe's gradient for a dissimilar pair: -(mdist / (d + 1e-4)) (a - b) / N
        coef = -(mdist / (dist + 1e-4))
        surrogate = torch.where(similar, dist_sq, coef * dist_sq).sum() / (2.0 * n)
        return [value.detach() + surrogate - surrogate.detach()]


@register("InfogainLoss")
class InfogainLoss(_Loss):
    """-sum_l H[label, l] log(max(softmax(x)_l, 1e-20)) over ``infogain_loss_param.axis``
    (default 1), per ``normalization`` (default VALID), ``ignore_label`` honoured. H is bottom 2
    or the (K, K) matrix in ``infogain_loss_param.source`` (a .binaryproto)."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.infogain_loss_param
        self.axis = canonical_axis(p.axis, len(bottom_shapes[0]), "InfogainLoss", param.name)
        if param.loss_param.HasField("normalize"):
            raise ValueError(f"InfogainLoss '{param.name}': normalize is deprecated in Caffe; "
                             f"use loss_param {{ normalization: ... }}.")
        self.normalization = _normalization(param, _LP.VALID)
        self.ignore_label = _ignore(param)
        k = bottom_shapes[0][self.axis]
        self.H = None
        if len(bottom_shapes) < 3:
            if not p.source:
                raise ValueError(f"InfogainLoss '{param.name}' expected a third bottom (H) or "
                                 f"infogain_loss_param {{ source: 'H.binaryproto' }}.")
            self.H = torch.from_numpy(load_blobproto(p.source).astype("float32"))
            if self.H.numel() != k * k:
                raise ValueError(f"InfogainLoss '{param.name}' expected H with {k}x{k} values "
                                 f"in {p.source}. Received: shape {tuple(self.H.shape)}.")

    def forward(self, x, label, H=None):
        H = (self.H if H is None else H.detach()).reshape(-1)
        k = x.shape[self.axis]
        H = H.reshape(k, k)
        outer, inner = _split_axis(x.shape, self.axis)
        labels = _labels(label, outer, inner, self, k)
        prob = torch.softmax(x, dim=self.axis).reshape(outer, k, inner)
        valid = torch.ones_like(labels, dtype=torch.bool) if self.ignore_label is None \
            else labels != self.ignore_label
        rows = H[torch.where(valid, labels, 0)]  # (outer, inner, k)
        logp = torch.log(prob.clamp(min=_LOG_THRESHOLD)).permute(0, 2, 1)
        per = -(rows * logp).sum(-1) * valid
        norm = _normalizer(self.normalization, outer, inner, int(valid.sum()))
        return [per.sum() / norm]


@register("MultinomialLogisticLoss")
class MultinomialLogisticLoss(_Loss):
    """-sum log(max(p[label], 1e-20)) / N for probabilities p (N, K, 1, 1 or N, K)."""

    def forward(self, prob, label):
        n = prob.shape[0]
        flat = prob.reshape(n, -1)
        picked = flat.gather(1, label.detach().reshape(n, 1).long()).squeeze(1)
        return [-torch.log(picked.clamp(min=_LOG_THRESHOLD)).sum() / n]


@register("Accuracy")
class Accuracy(CaffeLayer):
    """Fraction of non-ignored positions whose label is among the ``top_k`` scores along
    ``axis`` (default 1); ties count against (Caffe counts scores >= the true one). Top 0: shape
    (); optional top 1: per-class accuracy, shape (K,). No backward."""

    def __init__(self, param, bottom_shapes, phase):
        super().__init__(param, bottom_shapes, phase)
        p = param.accuracy_param
        self.top_k = p.top_k
        self.axis = canonical_axis(p.axis, len(bottom_shapes[0]), "Accuracy", param.name)
        self.ignore_label = p.ignore_label if p.HasField("ignore_label") else None
        k = bottom_shapes[0][self.axis]
        if not 1 <= self.top_k <= k:
            raise ValueError(f"Accuracy '{param.name}' expected 1 <= top_k <= {k} (the number "
                             f"of classes). Received: top_k={self.top_k}.")

    def top_shapes(self, bottom_shapes):
        return [()] + [(bottom_shapes[0][self.axis],)] * (len(self.param.top) - 1)

    def forward(self, x, label):
        x = x.detach()
        k = x.shape[self.axis]
        outer, inner = _split_axis(x.shape, self.axis)
        labels = _labels(label, outer, inner, self, k)
        scores = x.reshape(outer, k, inner)
        valid = torch.ones_like(labels, dtype=torch.bool) if self.ignore_label is None \
            else labels != self.ignore_label
        safe = torch.where(valid, labels, 0)
        true_score = scores.gather(1, safe.unsqueeze(1))  # (outer, 1, inner)
        better = (scores >= true_score).sum(1) - 1  # the true class counts itself
        hit = (better < self.top_k) & valid
        count = int(valid.sum())
        acc = hit.sum().to(x.dtype) / count if count else x.new_zeros(())
        tops = [acc.reshape(())]
        if len(self.param.top) > 1:
            per_label = x.new_zeros(k).index_add_(0, safe[valid], x.new_ones(count))
            hits = x.new_zeros(k).index_add_(0, safe[hit], x.new_ones(int(hit.sum())))
            tops.append(torch.where(per_label > 0, hits / per_label.clamp(min=1),
                                    torch.zeros_like(hits)))
        return tops
