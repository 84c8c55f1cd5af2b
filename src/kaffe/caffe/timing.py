"""Caffe's ``caffe time``: per-layer forward and backward averages of a :class:`~kaffe.caffe.Net`.

``time_net(net, iterations)`` does what ``caffe.cpp``'s ``time()`` does: one untimed
forward (reporting the initial loss) and backward, then ``iterations`` rounds of a forward pass
timing every layer, and a backward pass in reverse layer order timing every layer, and returns a
:class:`TimingReport` whose ``lines()`` are Caffe's log messages (without glog's prefix).

To time each layer's backward on its own, each layer runs on detached copies of its bottoms
(leaves that require grad where Caffe's ``bottom_need_backward`` says so), so its autograd graph
is its own; backward then runs layer by layer
with ``torch.autograd.backward(tops, top_diffs, inputs=bottoms + params)`` and hands the bottoms'
gradients to the layers that produced them. Loss tops are seeded with their ``loss_weight``;
tops nobody consumes get zero diffs (as in Caffe, whose diffs start at zero). Times come from
``time.perf_counter``; on a net placed on CUDA (``kaffe time -gpu N``) each layer is followed by
``torch.cuda.synchronize()`` (on CPU torch's ops are synchronous, so no host sync is needed), and
blobs stay on the device between rounds.
"""
import dataclasses
import time

import torch


@dataclasses.dataclass
class TimingReport:
    layer_names: list
    forward_ms: list          # per layer, averaged over the iterations
    backward_ms: list
    iteration_ms: list        # forward + backward wall time of each iteration
    iterations: int
    initial_loss: float
    total_ms: float

    @property
    def forward_total_ms(self):
        return sum(self.forward_ms)

    @property
    def backward_total_ms(self):
        return sum(self.backward_ms)

    def lines(self):
        """Caffe's ``caffe time`` messages, in its order and number formats."""
        out = ["Performing Forward", f"Initial loss: {_g(self.initial_loss)}",
               "Performing Backward", "*** Benchmark begins ***",
               f"Testing for {self.iterations} iterations."]
        out += [f"Iteration: {i + 1} forward-backward time: {int(ms)} ms."
                for i, ms in enumerate(self.iteration_ms)]
        out.append("Average time per layer: ")
        for name, f, b in zip(self.layer_names, self.forward_ms, self.backward_ms):
            out.append(f"{name:>10}\tforward: {_g(f)} ms.")
            out.append(f"{name:>10}\tbackward: {_g(b)} ms.")
        out += [f"Average Forward pass: {_g(self.forward_total_ms)} ms.",
                f"Average Backward pass: {_g(self.backward_total_ms)} ms.",
                f"Average Forward-Backward: {_g(self.total_ms / self.iterations)} ms.",
                f"Total Time: {int(self.total_ms)} ms.", "*** Benchmark ends ***"]
        return out


def _g(value):
    """C++ ostream's default float format (6 significant digits, no trailing zeros)."""
    return f"{value:.6g}"


class _Timer:
    def __init__(self, cuda):
        self.cuda = cuda

    def now(self):
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def _forward(net, timer, record):
    """One forward pass layer by layer; returns (per-layer ms, per-layer records, loss)."""
    tensors, producers, read = {}, {}, set()   # read: the blobs' own tensors, left as they are
    times, steps, loss = [], [], 0.0
    for i, ((lp, weights), layer) in enumerate(zip(net._specs, net._layer_modules)):
        start = timer.now()
        if getattr(layer, "net_input", False):
            for k, top in enumerate(lp.top):
                tensors[top] = net.blobs[top]._tensor()   # where the net computes
                read.add(top)
                producers[top] = None
            times.append((timer.now() - start) * 1e3)
            steps.append(None)
            continue
        leaves, sources = [], []
        for j, b in enumerate(lp.bottom):
            t = tensors.get(b)
            if t is None:
                t = net.blobs[b]._tensor()
                read.add(b)
            source = producers.get(b)
            needs = record and _propagates_down(net, i, j)
            leaves.append(t.detach().requires_grad_(needs))
            sources.append(source)
        with torch.set_grad_enabled(record):
            tops = layer(*leaves)
        stop = timer.now()
        times.append((stop - start) * 1e3)
        for k, (name, t) in enumerate(zip(lp.top, tops)):
            tensors[name] = t
            producers[name] = (i, k)
            if weights[k]:
                loss += weights[k] * float(t.detach().sum())
        steps.append((leaves, sources, list(tops), weights))
    for name, t in tensors.items():   # kept where computed: no copy to the host per round
        if name not in read and name in net.blobs and tuple(t.shape) == net.blobs[name].shape:
            net.blobs[name]._store(t.detach())
    return times, steps, loss


def _propagates_down(net, i, j):
    """Caffe's ``bottom_need_backward[i][j]``, which ``caffe time`` passes to each layer's
    Backward as ``propagate_down``: the bottom's producer needs a diff (Input blobs only with
    ``force_backward``) and the layer lies under a loss. A deploy net without a loss therefore
    computes only parameter diffs, as real Caffe's ``caffe time`` does on it."""
    return bool(net._bottom_need[i][j]) and bool(net._runs_backward[i])


def _backward(net, steps, timer):
    """One backward pass in reverse layer order; returns per-layer ms."""
    grads = {}
    times = [0.0] * len(steps)
    for i in range(len(steps) - 1, -1, -1):
        step = steps[i]
        if step is None:
            continue
        start = timer.now()
        leaves, sources, tops, weights = step
        outs, diffs = [], []
        for k, t in enumerate(tops):
            if not t.requires_grad:
                continue
            g = grads.pop((i, k), None)
            if weights[k]:
                seed = torch.full_like(t, weights[k])
                g = seed if g is None else g + seed
            outs.append(t)
            diffs.append(torch.zeros_like(t) if g is None else g)
        inputs = [x for x in leaves if x.requires_grad]
        inputs += [p for p in net._layer_modules[i].parameters() if p.requires_grad]
        if outs and inputs:
            for x in leaves:
                x.grad = None
            torch.autograd.backward(outs, diffs, inputs=inputs)
            for x, src in zip(leaves, sources):
                if src is not None and x.grad is not None:
                    grads[src] = x.grad if src not in grads else grads[src] + x.grad
        times[i] = (timer.now() - start) * 1e3
    return times


def time_net(net, iterations=50):
    """Caffe's ``caffe time`` on ``net``: a :class:`TimingReport` over ``iterations`` rounds."""
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1; received {iterations}.")
    device = getattr(net, "_device", None)
    cuda = device is not None and device.type == "cuda" or \
        any(p.is_cuda for p in net.module.parameters())
    timer = _Timer(cuda)
    _, steps, loss = _forward(net, timer, record=True)
    _backward(net, steps, timer)
    n = len(net.layers)
    forward, backward, per_iter = [0.0] * n, [0.0] * n, []
    total_start = time.perf_counter()
    for _ in range(iterations):
        start = timer.now()
        f, steps, _ = _forward(net, timer, record=True)
        b = _backward(net, steps, timer)
        per_iter.append((timer.now() - start) * 1e3)
        forward = [x + y for x, y in zip(forward, f)]
        backward = [x + y for x, y in zip(backward, b)]
    total = (time.perf_counter() - total_start) * 1e3
    return TimingReport(list(net._layer_names), [x / iterations for x in forward],
                        [x / iterations for x in backward], per_iter, iterations, loss, total)
