"""word2vec on a torch device (CUDA, or CPU): the same model, examples and learning-rate
schedule as the compiled kernels, but updates applied to mini-batches of examples at once.

Each job's examples (subsampled centre words and their dynamic-window contexts, from
:func:`kaffe.text.kernels.make_examples`) go to the device in batches of ``BATCH`` examples;
a batch's gradients are computed from the weights as they were before it and summed into
``syn0``/``syn1neg``/``syn1`` with ``index_add_`` (sparse SGD; word2vec.c instead updates after
every pair). Noise words come from ``torch.multinomial`` over ``count**ns_exponent``.
"""
import numpy as np
import torch

from kaffe.text import kernels

#: examples (centre words) per batch: large enough to keep a GPU busy, small enough that
#: a frequent word's summed update stays close to word2vec.c's sequential ones.
BATCH = 1024


class TorchTrainer:
    """Holds the weights on ``device`` during ``Word2Vec.train`` and copies them back after."""

    threads = 1

    def __init__(self, model, device):
        self.model = model
        self.device = torch.device(device)
        self.syn0 = self._to_device(model.wv.vectors)
        self.syn1neg = self._to_device(model.syn1neg) if model.negative else None
        self.syn1 = self._to_device(model.syn1) if model.hs else None
        self.lockf = torch.as_tensor(np.asarray(model.wv.vectors_lockf, np.float32),
                                     device=self.device)
        counts = np.asarray(model.wv.expandos["count"], dtype=np.float64)
        if model.negative:
            self.noise = torch.as_tensor(counts ** float(model.ns_exponent), device=self.device)
        if model.hs:
            self.points = torch.as_tensor(model._points.astype(np.int64), device=self.device)
            self.codes = torch.as_tensor(model._codes.astype(np.float32), device=self.device)
            lens = torch.as_tensor(model._code_lens.astype(np.int64), device=self.device)
            self.path_mask = (torch.arange(self.points.shape[1], device=self.device)[None, :]
                              < lens[:, None]).float()
        self.sample_ints = model.wv.expandos["sample_int"]
        self.generator = torch.Generator(device=self.device)

    def _to_device(self, array):
        if not array.flags.writeable:
            array = np.array(array)
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return tensor.to(self.device) if self.device.type != "cpu" else tensor

    def thread_state(self):
        return np.zeros(1, dtype=np.float64)

    def thread_done(self, loss):
        self.model.running_training_loss += float(loss[0])

    def train_job(self, loss, tokens, ends, alpha, seed):
        m = self.model
        centres, contexts = kernels.make_examples(tokens, ends, self.sample_ints, bool(m.sample),
                                                  m.window, m.shrink_windows, seed)
        if not len(centres):
            return 0
        self.generator.manual_seed(int(seed))
        centres = torch.as_tensor(centres, device=self.device)
        contexts = torch.as_tensor(contexts, device=self.device)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for start in range(0, len(centres), BATCH):
            c, ctx = centres[start:start + BATCH], contexts[start:start + BATCH]
            if m.sg:
                valid = ctx >= 0
                c, ctx = c[:, None].expand_as(ctx)[valid], ctx[valid]
                total += self._step(self.syn0[ctx], c, float(alpha), ctx[:, None], None)
            else:
                mask = (ctx >= 0).float()
                count = mask.sum(1, keepdim=True)
                keep = count[:, 0] > 0
                c, ctx, mask, count = c[keep], ctx[keep], mask[keep], count[keep]
                idx = ctx.clamp(min=0)
                neu1 = (self.syn0[idx] * mask[..., None]).sum(1)
                if m.cbow_mean:
                    neu1 = neu1 / count
                scale = mask if m.cbow_mean else mask / count
                total += self._step(neu1, c, float(alpha), idx, scale)
        if m.compute_loss:
            loss[0] += float(total)
        return len(centres)

    def _step(self, l1, target, alpha, inputs, input_weight):
        """Gradients of the output layer(s) for inputs ``l1`` (B, D) predicting ``target``;
        the input gradient goes to rows ``inputs`` (B, n) of ``syn0`` (scaled by
        ``input_weight`` (B, n), or 1). Returns the batch's loss."""
        m = self.model
        grad = torch.zeros_like(l1)
        loss = torch.zeros((), dtype=torch.float64, device=self.device)
        if m.negative:
            noise = torch.multinomial(self.noise, target.shape[0] * m.negative, replacement=True,
                                      generator=self.generator).view(-1, m.negative)
            ids = torch.cat([target[:, None], noise], 1)
            labels = torch.zeros(ids.shape, device=self.device)
            labels[:, 0] = 1.0
            valid = torch.ones(ids.shape, device=self.device)
            valid[:, 1:] = (noise != target[:, None]).float()
            grad += self._output_update(self.syn1neg, ids, labels, valid, l1, alpha)
            if m.compute_loss:
                loss += self._loss(self.syn1neg, ids, labels, valid, l1)
        if m.hs:
            ids, labels, valid = self.points[target], 1.0 - self.codes[target], \
                self.path_mask[target]
            grad += self._output_update(self.syn1, ids, labels, valid, l1, alpha)
            if m.compute_loss:
                loss += self._loss(self.syn1, ids, labels, valid, l1)
        rows = inputs.reshape(-1)
        weight = self.lockf[rows % self.lockf.shape[0]][:, None]
        if input_weight is not None:
            weight = weight * input_weight.reshape(-1, 1)
        self.syn0.index_add_(0, rows, (grad[:, None, :].expand(*inputs.shape, -1)
                                       .reshape(-1, grad.shape[1]) * weight))
        return loss

    def _output_update(self, table, ids, labels, valid, l1, alpha):
        """Update ``table`` rows ``ids`` (B, K) towards ``labels``; return the input gradient."""
        w = table[ids]                                   # (B, K, D)
        f = torch.einsum("bkd,bd->bk", w, l1)
        g = (labels - torch.sigmoid(f)) * alpha * valid  # (B, K)
        table.index_add_(0, ids.reshape(-1),
                         (g[..., None] * l1[:, None, :]).reshape(-1, l1.shape[1]))
        return torch.einsum("bk,bkd->bd", g, w)

    @staticmethod
    def _loss(table, ids, labels, valid, l1):
        f = torch.einsum("bkd,bd->bk", table[ids], l1)
        sign = labels * 2 - 1
        return -(torch.nn.functional.logsigmoid(sign * f) * valid).sum().double()

    def finish(self):
        """Copy the trained weights back into the model's numpy arrays."""
        m = self.model
        for name, tensor in (("syn1neg", self.syn1neg), ("syn1", self.syn1)):
            if tensor is not None:
                setattr(m, name, tensor.cpu().numpy())
        m.wv.vectors = self.syn0.cpu().numpy()
        m.wv.norms = None
