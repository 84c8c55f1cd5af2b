"""A deploy net's whole forward as a flat list of steps, worked out once (the inference plan).

``Net.forward()`` over all layers of a host net none of whose layers runs backward (a deploy
net: no loss, no ``force_backward``) runs this plan instead of walking the layers. Per call the
walk cost more than LeNet's arithmetic at batch 1 (0.46 ms against OpenCV's 0.19 for the whole
net): ``nn.Module`` calls, ``ParameterList`` look-ups, protobuf-derived bookkeeping, a scan of
every parameter's storage, a blob store with its checks after each layer. The plan resolves all
of that at build time:

- each step is one callable on tensors: for Convolution, InnerProduct, tile MAX Pooling and the
  one-bottom element-wise layers (ReLU, Softmax, ...) a kernel bound to the layer's own
  ``Parameter`` objects (so ``net.params[...].data`` writes and ``share_with`` still reach it);
  the in-place chains of :mod:`kaffe.caffe.fusion` as one step; any other layer (data layers,
  Python layers, ...) called as the module itself;
- blobs are slots in a list, read and written by index;
- every blob is stored once, after the last step, with its final value: what Caffe leaves in
  it (an in-place layer's blob holds the last layer's value). A blob Python has not looked at
  keeps the computed tensor itself (no copy); one it has copies into its own buffer.

Nothing is cached across calls but the plan's shape and, in its steady state (see
:class:`InferencePlan`), which blob buffers the kernels write into: weights, inputs written from
Python and blob reshapes are read afresh every forward. ``forward(start=..., end=...)``, nets
that record gradients and nets on a device keep the layer-by-layer walk (``Net._run``).
"""
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from kaffe.caffe.builders import elementwise as _elementwise
from kaffe.caffe.builders import vision as _vision

__all__ = ["InferencePlan"]


# ------------------------------------------------------------------------------ kernels

def _convolution(layer):
    """Caffe's 2-D convolution on its ``Parameter``s, by the kernel
    ``Convolution.inference_kernel`` picks for the input's shape (worked out once per shape):
    1x1 as matrix products, small work by torch's direct (im2col + GEMM) kernel, else oneDNN."""
    if layer.transposed or not layer._direct:
        return None
    weight, bias = layer.blobs[0], (layer.blobs[1] if layer.bias_term else None)
    kernel, stride, pad, dilation = layer.kernel, layer.stride, layer.pad, layer.dilation
    direct, pointwise = torch._C._nn.thnn_conv2d, _vision.pointwise_conv
    kinds = {}   # input shape -> kernel name

    def kind_of(shape):
        kind = kinds.get(shape)
        if kind is None:
            if len(kinds) > 64:
                kinds.clear()
            kind = kinds[shape] = layer.inference_kernel(shape)
        return kind

    def run(x):
        kind = kind_of(x.shape)
        if kind == "gemm":
            return pointwise(x, weight, bias, stride)
        if kind == "direct":
            return direct(x, weight, kernel, bias, stride, pad)
        return F.conv2d(x, weight, bias, stride, pad, dilation)

    def into(x, fixed):
        kind = kind_of(x.shape)
        if kind == "gemm":
            return lambda x, out: pointwise(x, weight, bias, stride, out)
        if kind == "direct":
            return lambda x, out: direct(x, weight, kernel, bias, stride, pad, out=out)
        return None
    run.into = into
    return run


def _inner_product(layer):
    """``y = x W^T + b`` over the axes from 1 on (Caffe's default ``axis``)."""
    if layer.axis != 1:
        return None
    bias = layer.blobs[1] if layer.bias_term else None
    weight = layer.blobs[0]
    linear = torch._C._nn.linear
    if layer.transpose:
        def run(x):
            return linear(x.flatten(1), weight.t(), bias)

        def write(x, out):
            return linear(x.flatten(1), weight.t(), bias, out=out)
    else:
        def run(x):
            return linear(x.flatten(1), weight, bias)

        def write(x, out):
            return linear(x.flatten(1), weight, bias, out=out)
    def into(x, fixed):
        if not (fixed and x.is_contiguous()):
            return write
        flat = x.flatten(1)   # a view of the fixed input: no call per forward
        if layer.transpose:
            return lambda x, out: linear(flat, weight.t(), bias, out=out)
        return lambda x, out: linear(flat, weight, bias, out=out)
    run.into = into
    return run


def _pooling(layer):
    """MAX pooling over tiles (kernel == stride, no padding) by pairwise maxima; other sizes
    (a tile that does not divide the input) go to the layer itself."""
    if layer.tiles is None:
        return None
    kh, kw = layer.tiles
    tiles, whole = _vision.max_pool_tiles, layer.forward

    def run(x):
        if x.shape[2] % kh or x.shape[3] % kw:
            return whole(x)[0]
        return tiles(x, kh, kw)

    def into(x, fixed):
        n, c, h, w = x.shape
        if h % kh or w % kw:
            return None
        if not (fixed and x.is_contiguous()):
            return lambda x, out: tiles(x, kh, kw, out)
        # the fixed input's row views, a row-maximum buffer and its column views, made once
        rows = x.view(n, c, h // kh, kh, w).unbind(3)
        scratch = torch.empty((n, c, h // kh, w))
        cols = scratch.view(n, c, h // kh, w // kw, kw).unbind(4)
        maximum = torch.maximum

        def write(x, out):
            maximum(rows[0], rows[1], out=scratch)
            for r in rows[2:]:
                maximum(scratch, r, out=scratch)
            maximum(cols[0], cols[1], out=out)
            for col in cols[2:]:
                maximum(out, col, out=out)
            return out
        return write
    run.into = into
    return run


def _elementwise_fn(layer):
    """A one-bottom element-wise layer that is ``[self.fn(x)]``: ``fn`` itself."""
    if type(layer).forward is not _elementwise._Elementwise.forward:
        return None
    return layer.fn


# layer type -> maker of a one-tensor-in, one-tensor-out kernel (or None where it does not apply)
_KERNELS = {"Convolution": _convolution, "InnerProduct": _inner_product, "Pooling": _pooling}


def _kernel(lp, layer):
    """``(fn, kind)`` for layer ``lp`` with one bottom and one top: ``kind`` ``"fresh"`` (``fn``
    returns a new tensor and never writes into its input) or ``"elementwise"`` (``fn`` may
    return its input itself, e.g. Dropout at test time); ``(None, None)``: call the layer."""
    if len(lp.bottom) != 1 or len(lp.top) != 1 or parametrize.is_parametrized(layer.blobs):
        return None, None
    if isinstance(layer, _elementwise._Elementwise):
        fn = _elementwise_fn(layer)
        return fn, "elementwise" if fn is not None else None
    make = _KERNELS.get(lp.type)
    fn = make(layer) if make is not None else None
    return fn, "fresh" if fn is not None else None


def _chained(chain, head):
    """A fused in-place chain as one step: ``head`` (a fresh kernel of the chain's first layer,
    or None: the layer itself) then its followers."""
    if head is None:
        return lambda *bottoms: [chain(*bottoms)]
    finish = chain.finish

    def run(x):
        return finish(head(x))

    def into(x, fixed):
        # BatchNorm makes a new tensor; ReLU and Scale alone work in place on the output
        writer = head.into(x, fixed) if chain.bn is None else None
        if writer is None:
            return None
        return lambda x, out: finish(writer(x, out))
    run.into = into
    return run


# ------------------------------------------------------------------------------ the plan

class InferencePlan:
    """``net``'s forward as steps on a list of tensor slots (one per blob name).

    ``steps``: ``(fn, bottoms, tops, single, lp)`` with slot indices; a ``single`` step is
    ``slots[top] = fn(slots[bottom])``, the others ``fn(*bottoms) -> [tops]``. ``loads``: the
    input blobs read into slots first, cloned where a layer that may write into it or hand it
    on (a module, an element-wise ``fn``) reads it. ``stores``: every computed blob with its
    slot and whether its tensor is the plan's own (a kernel's fresh output): those the blob
    keeps without a copy until Python looks; others (a module's top may be a parameter's or
    a data layer's memory) go through the blob's full store.

    The steady state: after a run, a kernel whose input shape follows from the inputs' shapes
    (no module before it) writes its next outputs straight into the buffer its blob kept (the
    tensor itself, or the blob's own buffer once Python has a view of it: Caffe's blobs are
    overwritten in place too), so those blobs need no store and no fresh memory. It holds
    while every such buffer, and every input blob's tensor, is still the one recorded (a
    reshape, or Python's first look at a blob, replaces it: the next run is a full one)."""

    def __init__(self, net):
        slot = {}

        def slot_of(name):
            return slot.setdefault(name, len(slot))

        steps, kinds, loads, stores, cloned = [], [], [], {}, set()
        chains, skip_to = net._chains, -1
        for i, (step, layer) in enumerate(zip(net._steps, net._layer_modules)):
            if i <= skip_to:
                continue
            lp = net._specs[i][0]
            if step.net_input:
                loads.extend((net.blobs[t], slot_of(t)) for t in step.tops)
                continue
            bottoms = tuple(slot_of(b) for b in step.bottoms)
            fn, kind = _kernel(lp, layer)
            chain = chains.get(i)
            if chain is not None:
                head = fn if kind == "fresh" else None
                fn, skip_to = _chained(chain, head), chain.last
                kind = "fresh" if head is not None else "chain"
            if kind != "fresh":
                cloned.update(bottoms)
            tops = tuple(slot_of(t) for t in step.tops)
            steps.append((fn if kind else layer, bottoms, tops, kind in ("fresh", "elementwise"),
                          lp))
            kinds.append(kind)
            stores.update((name, (net.blobs[name], index)) for name, index in zip(step.tops, tops))
        # whose tensor each slot ends with: the plan's own (a fresh kernel's, an element-wise
        # fn's of an own tensor, a cloned input) or maybe someone else's memory; and whose
        # shape follows from the input blobs' shapes alone (no module on the way)
        own = {index for _, index in loads if index in cloned}
        shaped = {index for _, index in loads}
        writes = {}   # slot -> index of the last step writing it
        for i, ((_, bottoms, tops, _, _), kind) in enumerate(zip(steps, kinds)):
            if kind == "fresh" or (kind == "elementwise" and bottoms[0] in own):
                own.update(tops)
            else:
                own.difference_update(tops)
            if kind in ("fresh", "elementwise") and bottoms[0] in shaped:
                shaped.update(tops)
            else:
                shaped.difference_update(tops)
            writes.update((t, i) for t in tops)
        self.steps, self._kinds, self._writes = steps, kinds, writes
        self._shaped_in = [kind == "fresh" and bottoms[0] in shaped and tops[0] not in bottoms
                           for (_, bottoms, tops, _, _), kind in zip(steps, kinds)]
        self.loads = [(blob, index, index in cloned) for blob, index in loads]
        self.stores = [(blob, index, index in own) for blob, index in stores.values()]
        self.slots = [None] * len(slot)
        self._empty = [None] * len(slot)
        self.parameters = ([] if all(o for _, _, o in self.stores)
                           else list(net.module.parameters()))
        self._steady = None   # (steps, stores, watched (SyncedTensor, tensor) pairs)

    def run(self):
        """One forward: inputs in, every step, every computed blob stored (or written in
        place, in the steady state)."""
        steady = self._steady
        if steady is not None:
            for synced, tensor in steady[2]:
                if synced._host is not tensor:
                    break
            else:
                self._steps(steady[0], steady[1])
                return
        self._steps(self.steps, self.stores)
        try:
            self._steady = self._record()
        finally:
            self.slots[:] = self._empty

    def _steps(self, steps, stores):
        s = self.slots
        for blob, index, clone in self.loads:
            t = blob._tensor()
            s[index] = t.clone() if clone else t
        for fn, bottoms, tops, single, lp in steps:
            if single is True:
                s[tops[0]] = fn(s[bottoms[0]])
            elif single is False:
                out = fn(*[s[b] for b in bottoms])
                if len(out) != len(tops):
                    raise RuntimeError(f"Layer '{lp.name}' ({lp.type}) returned {len(out)} "
                                       f"tops; the net expects {len(lp.top)}.")
                for index, t in zip(tops, out):
                    s[index] = t
            else:   # the steady state: into the blob's kept buffer
                s[tops[0]] = fn(s[bottoms[0]], single)
        memory = {p.untyped_storage().data_ptr() for p in self.parameters} \
            if self.parameters else ()
        for blob, index, own in stores:
            t = s[index]
            if own:
                blob._keep(t)
            else:
                blob._store(t, borrow=t.untyped_storage().data_ptr() not in memory)
        if stores is not self.stores:
            s[:] = self._empty

    def _record(self):
        """The steady state's steps after a full run (the slots still hold its tensors): a
        kernel step whose blob keeps its value in a buffer of that shape writes there next
        time. None when no step can."""
        s, steps, written, watched = self.slots, [], set(), []
        blob_of = {index: blob for blob, index, _ in self.stores}
        # slots every steady run fills with the same tensor: uncloned inputs, kernel buffers
        fixed = {index: blob._d._host for blob, index, clone in self.loads if not clone}
        for i, step in enumerate(self.steps):
            fn, bottoms, tops, single, lp = step
            writer = None
            if self._shaped_in[i] and self._writes[tops[0]] == i:
                synced = blob_of[tops[0]]._d
                buffer = synced._host
                if synced.device is None and buffer.shape == s[tops[0]].shape:
                    x = fixed.get(bottoms[0])
                    writer = fn.into(s[bottoms[0]] if x is None else x, x is not None)
            for t in tops:
                fixed.pop(t, None)
            if writer is None:
                steps.append(step)
                continue
            steps.append((writer, bottoms, tops, buffer, lp))
            written.add(tops[0])
            watched.append((synced, buffer))
            fixed[tops[0]] = buffer
        if not written:
            return None
        watched += [(blob._d, blob._d._host) for blob, _, _ in self.loads]
        stores = [store for store in self.stores if store[1] not in written]
        return steps, stores, watched
