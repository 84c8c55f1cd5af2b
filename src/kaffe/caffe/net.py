"""pycaffe's ``Net`` on torch: a ``NetParameter`` built into registered kaffe layers.

``Net(prototxt, weights=None, phase=TEST)`` (also pycaffe's ``Net(prototxt, phase, weights=...)``)
filters the layers by Caffe's NetState rules, inserts Caffe's automatic splits (so blob and
layer names match pycaffe's), builds each layer from the registry in order, and keeps every blob
as a :class:`Blob` whose ``data`` / ``diff`` are writable numpy arrays. ``forward`` runs the
layers in order on torch tensors (recording autograd); ``backward`` seeds the weighted loss tops
and the diffs written into the other outputs and lets autograd compute blob and parameter diffs
(parameter diffs accumulate, as in Caffe, until cleared).
"""
import collections
import importlib
import logging
import math
import os
import pkgutil

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

import kaffe.caffe.builders as _layers_pkg
from kaffe.caffe import blobs as _blobs
from kaffe.caffe import fusion as _fusion
from kaffe.caffe import device as _device
from kaffe.caffe import synced as _synced
from kaffe.caffe import net_weights as _weights
from kaffe.caffe import plan as _plan
from kaffe.caffe import prototxt as _prototxt
from kaffe.caffe import upgrade as _upgrade
from kaffe.caffe.builders.registry import LAYER_BUILDERS, CaffeLayer, builder_for
from kaffe.caffe.proto import caffe_pb2
from kaffe.caffe.pyblob import Blob, LayerView, ParamBlob

log = logging.getLogger("kaffe.caffe")

TRAIN = caffe_pb2.TRAIN
TEST = caffe_pb2.TEST
_PHASE_NAMES = {TRAIN: "TRAIN", TEST: "TEST"}


def _load_layer_modules():
    """Import every module of ``kaffe.caffe.builders`` so their builders register."""
    for info in pkgutil.iter_modules(_layers_pkg.__path__):
        importlib.import_module(f"{_layers_pkg.__name__}.{info.name}")


def _phase(value):
    if isinstance(value, str) and value.upper() in ("TRAIN", "TEST"):
        return TRAIN if value.upper() == "TRAIN" else TEST
    if value in (TRAIN, TEST):
        return int(value)
    raise ValueError(f"phase must be caffe.TRAIN or caffe.TEST (or 'train'/'test'). "
                     f"Received: phase={value!r}.")


# ------------------------------------------------------------------------------ NetState rules

def state_meets_rule(state, rule):
    """Caffe's ``Net::StateMeetsRule``."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    return all(s in stages for s in rule.stage) and not any(s in stages for s in rule.not_stage)


def filter_net(net):
    """The net with only the layers its ``state`` includes (Caffe's ``Net::FilterNet``)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    del out.layer[:]
    for layer in net.layer:
        if layer.include and layer.exclude:
            raise ValueError(f"Layer '{layer.name}' specifies both include and exclude rules; "
                             f"give only one kind.")
        if layer.include:
            keep = any(state_meets_rule(net.state, r) for r in layer.include)
        else:
            keep = not any(state_meets_rule(net.state, r) for r in layer.exclude)
        if keep:
            out.layer.add().CopyFrom(layer)
    return out


# ------------------------------------------------------------------------------ split insertion

def insert_splits(net):
    """Caffe's ``InsertSplits``: a ``Split`` layer after every top used by more than one bottom
    (a top with a non-zero explicit ``loss_weight`` counts as a use). Returns the new net and
    the names of the inserted layers. A bottom nobody produced raises ``ValueError``."""
    last_top, source, count, loss_weight, split_idx = {}, {}, collections.Counter(), {}, \
        collections.Counter()
    for i, layer in enumerate(net.layer):
        for j, blob in enumerate(layer.bottom):
            if blob not in last_top:
                raise ValueError(f"Unknown bottom blob '{blob}' (layer '{layer.name}', bottom "
                                 f"index {j}): no earlier layer produces it.")
            source[i, j] = last_top[blob]
            count[last_top[blob]] += 1
        for j, blob in enumerate(layer.top):
            last_top[blob] = (i, j)
        for j in range(min(len(layer.loss_weight), len(layer.top))):
            top = last_top[layer.top[j]]
            loss_weight[top] = layer.loss_weight[j]
            if loss_weight[top]:
                count[top] += 1
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    del out.layer[:]
    inserted = set()

    def split_name(layer_name, blob, idx):
        return f"{blob}_{layer_name}_{idx}_split"

    for i, src in enumerate(net.layer):
        layer = out.layer.add()
        layer.CopyFrom(src)
        for j, blob in enumerate(layer.bottom):
            top = source[i, j]
            if count[top] > 1:
                layer.bottom[j] = (f"{split_name(net.layer[top[0]].name, blob, top[1])}_"
                                   f"{split_idx[top]}")
                split_idx[top] += 1
        for j, blob in enumerate(layer.top):
            n = count[i, j]
            if n > 1:
                weight = loss_weight.get((i, j), 0.0)
                split = out.layer.add(name=split_name(layer.name, blob, j), type="Split")
                split.bottom.append(blob)
                for k in range(n):
                    split.top.append(f"{split.name}_{k}")
                    if weight:
                        split.loss_weight.append(weight if k == 0 else 0.0)
                if weight:
                    del layer.loss_weight[:]
                    split_idx[i, j] += 1
                inserted.add(split.name)
    return out, inserted


class _AutoSplit(CaffeLayer):
    """The Split layer Caffe inserts for a blob used several times (copies; diffs sum)."""

    def top_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])] * len(self.param.top)

    def forward(self, x):
        return [x] * len(self.param.top)


# ------------------------------------------------------------------------------ blobs

class _ViewAs(nn.Module):
    """Parametrization of a PERMISSIVE shared blob: the owner's parameter in this layer's shape."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, owner):
        return owner.reshape(self.shape)


def _param_blobs(layer):
    """``net.params[name]``: one :class:`ParamBlob` per blob of ``layer``, each on the
    ``Parameter`` that holds it (the owner's, reshaped, for a PERMISSIVE share)."""
    out = []
    for i in range(len(layer.blobs)):
        if parametrize.is_parametrized(layer.blobs, str(i)):
            owner = layer.blobs.parametrizations[str(i)].original
            out.append(ParamBlob(owner, layer.blobs[i].shape))
        else:
            out.append(ParamBlob(layer.blobs[i]))
    return out


# ------------------------------------------------------------------------------ the net

class Net:
    """pycaffe's ``caffe.Net``: ``Net(prototxt, weights=None, phase=TEST)``, or
    ``Net(prototxt, phase, weights=...)``; ``prototxt`` is a path or a ``NetParameter``.
    ``level`` and ``stages`` join the net's NetState as in pycaffe."""

    def __init__(self, network, *args, weights=None, phase=None, level=0, stages=(),
                 **kwargs):
        if "network_file" in kwargs:
            network = kwargs.pop("network_file")
        if kwargs:
            raise TypeError(f"Net() got unexpected keyword arguments {sorted(kwargs)}.")
        for arg in args:
            if isinstance(arg, (str, os.PathLike)) and not (
                    isinstance(arg, str) and arg.upper() in ("TRAIN", "TEST")):
                weights = arg
            else:
                phase = arg
        if phase is None:
            raise TypeError("Net() needs a phase: Net(prototxt, weights, caffe.TEST) or "
                            "Net(prototxt, caffe.TEST).")
        self.phase = _phase(phase)
        _load_layer_modules()
        if isinstance(network, caffe_pb2.NetParameter):
            param = caffe_pb2.NetParameter()
            param.CopyFrom(network)
            if _upgrade.net_needs_upgrade(param):
                param = _upgrade.upgrade_net(param)
            self._source = "<NetParameter>"
        else:
            self._source = os.fspath(network)
            param = _prototxt.read_net_param(self._source)
        param.state.phase = self.phase
        param.state.level = int(level)
        param.state.stage.extend(stages)
        self._param = filter_net(param)
        self._build()
        if weights is not None:
            self.copy_from(weights)
        _device.place_net(self, _device.compute_device())

    # -------------------------------------------------------------- building
    def _build(self):
        net, self._auto_splits = insert_splits(self._param)
        phase = _PHASE_NAMES[self.phase]
        force = bool(self._param.force_backward)
        self.blobs = collections.OrderedDict()
        self.params = collections.OrderedDict()
        self._layer_modules, self.layers, self._layer_names, self._specs = [], [], [], []
        self.top_names, self.bottom_names = collections.OrderedDict(), collections.OrderedDict()
        self._bottom_need, needs_diff = [], set()
        self._inputs, owners = [], {}
        for lp in net.layer:
            bottoms = [self.blobs[b].shape for b in lp.bottom]
            if lp.name in self._auto_splits:
                layer = _AutoSplit(lp, bottoms, phase)
            else:
                layer = builder_for(lp)(lp, bottoms, phase)
            layer.type = lp.type
            self._share_params(lp, layer, owners)
            shapes = _infer_top_shapes(layer, bottoms)
            for top, shape in zip(lp.top, shapes):
                if top in lp.bottom:
                    if tuple(shape) != self.blobs[top].shape:
                        raise ValueError(f"Layer '{lp.name}' works in place on '{top}' but "
                                         f"changes its shape {self.blobs[top].shape} -> "
                                         f"{tuple(shape)}.")
                    continue
                if top in self.blobs:
                    raise ValueError(f"Top blob '{top}' produced by multiple sources (layer "
                                     f"'{lp.name}' writes it again, not in place); rename one.")
                self.blobs[top] = Blob(shape)
            if getattr(layer, "net_input", False):
                self._inputs.extend(t for t in lp.top if t not in self._inputs)
            weights = self._loss_weights(lp, layer)
            for top, w in zip(lp.top, weights):
                if w:
                    self.blobs[top].diff[...] = w
            blobs = (list(layer.impl.blobs) if hasattr(layer, "impl")
                     else _param_blobs(layer) if len(layer.blobs) else [])
            if blobs:
                self.params[lp.name] = blobs
            if lp.propagate_down and len(lp.propagate_down) != len(lp.bottom):
                raise ValueError(f"Layer '{lp.name}': propagate_down has "
                                 f"{len(lp.propagate_down)} entries for {len(lp.bottom)} "
                                 f"bottoms; give one per bottom or none.")
            # Caffe's bottom_need_backward: the bottom's producer needs a diff, propagate_down
            need = [b in needs_diff and (not lp.propagate_down or bool(lp.propagate_down[j]))
                    for j, b in enumerate(lp.bottom)]
            learns = any(p.requires_grad for p in layer.parameters())
            if (force and not getattr(layer, "net_input", False) and lp.bottom) or \
                    any(need) or learns or (force and getattr(layer, "net_input", False)):
                needs_diff.update(lp.top)
            self._bottom_need.append(need)
            self._layer_modules.append(layer)
            self.layers.append(layer.impl if hasattr(layer, "impl")
                               else LayerView(layer, blobs, lp.type))
            self._layer_names.append(lp.name)
            self._specs.append((lp, weights))
            self.top_names[lp.name] = list(lp.top)
            self.bottom_names[lp.name] = list(lp.bottom)
        self.module = nn.ModuleList(self._layer_modules)
        produced = [t for lp, _ in self._specs for t in lp.top]
        self._outputs = sorted(set(produced) - self._consumed_at_end())   # Caffe: a std::set
        self._runs_backward = _layers_under_loss(self._specs, force)
        producer = {t: i for i, (lp, _) in enumerate(self._specs) for t in lp.top}
        self._diff_outputs = [n for n in self._outputs if self._runs_backward[producer[n]]]
        self._tensors, self._first, self._io = {}, {}, {}
        self._graph = False
        # no layer runs backward (a deploy net: no loss, no force_backward): Caffe's backward
        # does nothing, so forward() records no autograd graph and may fuse in-place chains
        self._inference_only = not any(self._runs_backward)
        self._steps = [_Step.of(lp, weights, layer)
                       for (lp, weights), layer in zip(self._specs, self._layer_modules)]
        self._chains = (_fusion.find_conv_chains(self._specs, self._layer_modules)
                        if self._inference_only else {})
        self._plan = None   # the whole forward as an InferencePlan, made on first use

    def _consumed_at_end(self):
        available = set()
        for lp, _ in self._specs:
            for b in lp.bottom:
                available.discard(b)
            available.update(lp.top)
        return set(t for lp, _ in self._specs for t in lp.top) - available

    @staticmethod
    def _loss_weights(lp, layer):
        tops = len(lp.top)
        if lp.loss_weight:
            if len(lp.loss_weight) != tops:
                raise ValueError(f"Layer '{lp.name}': loss_weight must be unspecified or given "
                                 f"once per top blob ({tops}); received {len(lp.loss_weight)}.")
            return list(lp.loss_weight)
        is_loss = getattr(layer, "is_loss", lp.type.endswith("Loss"))
        return [1.0 if (is_loss and i == 0) else 0.0 for i in range(tops)]

    @staticmethod
    def _share_params(lp, layer, owners):
        for i, spec in enumerate(lp.param):
            if i >= len(layer.blobs):
                break
            if spec.HasField("lr_mult") and spec.lr_mult == 0:
                layer.blobs[i].requires_grad_(False)
            if not spec.name:
                continue
            if spec.name not in owners:
                owners[spec.name] = (layer.blobs[i], lp.name)
                continue
            owner, owner_layer = owners[spec.name]
            mine = tuple(layer.blobs[i].shape)
            permissive = spec.share_mode == caffe_pb2.ParamSpec.PERMISSIVE
            if (owner.numel() != math.prod(mine) if permissive else tuple(owner.shape) != mine):
                raise ValueError(
                    f"Cannot share param '{spec.name}' owned by layer '{owner_layer}' with "
                    f"layer '{lp.name}'; {'count' if permissive else 'shape'} mismatch. Owner "
                    f"layer param shape is {_shape_str(owner.shape)}; sharing layer expects "
                    f"shape {_shape_str(mine)}. STRICT sharing (the default) needs equal shapes, "
                    f"share_mode: PERMISSIVE equal counts.")
            layer.blobs[i] = owner
            if tuple(owner.shape) != mine:  # PERMISSIVE: the layer sees the owner's data reshaped
                parametrize.register_parametrization(layer.blobs, str(i), _ViewAs(mine),
                                                     unsafe=True)

    # -------------------------------------------------------------- pycaffe surface
    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def layer_dict(self):
        return collections.OrderedDict(zip(self._layer_names, self.layers))

    @property
    def _blob_names(self):
        return list(self.blobs)

    @property
    def _blobs(self):
        return list(self.blobs.values())

    @property
    def blob_loss_weights(self):
        """``{blob: loss weight}`` for every blob (0 for blobs that are not losses)."""
        weights = collections.OrderedDict((name, 0.0) for name in self.blobs)
        for lp, ws in self._specs:
            for top, w in zip(lp.top, ws):
                if w:
                    weights[top] = float(w)
        return weights

    def set_input_arrays(self, data, labels):
        """pycaffe's ``net.set_input_arrays``: hand ``data`` (N x C x H x W) and ``labels`` (N)
        to the net's first layer, which must be a ``MemoryData`` layer (as in Caffe)."""
        first = self._layer_modules[0] if self.layers else None
        if type(first).__name__ != "MemoryData":
            raise ValueError(f"set_input_arrays needs a MemoryData layer first in the net; the "
                             f"first layer is {type(first).__name__} '{self._layer_names[0]}'."
                             if first is not None else "set_input_arrays: the net has no layers.")
        first.reset(data, labels)

    def _index(self, name, default):
        if name is None:
            return default
        try:
            return self._layer_names.index(name)
        except ValueError:
            raise ValueError(f"No layer named '{name}' in the net; layers: "
                             f"{', '.join(self._layer_names)}.") from None

    def forward(self, blobs=None, start=None, end=None, **inputs):
        """Run layers ``start..end`` (names; default all). Keyword arguments set input blobs.
        Returns ``{blob: data}`` for the net outputs (or ``end``'s tops) plus ``blobs``."""
        for name, value in inputs.items():
            blob = self.blobs.get(name)
            if blob is None:
                raise KeyError(f"Net has no blob '{name}' to set; inputs: {self.inputs}.")
            value = np.asarray(value, np.float32)
            if value.shape != blob.shape:
                raise ValueError(f"Input '{name}' has shape {value.shape}; the blob has shape "
                                 f"{blob.shape}. Call net.blobs['{name}'].reshape("
                                 f"*shape) and net.reshape() first.")
            blob.data[...] = value
        if self._inference_only and start is None and end is None and self._device is None:
            self._run_plan()
            names = self._outputs
        else:
            first, last = self._index(start, 0), self._index(end, len(self.layers) - 1)
            if self._inference_only:
                with torch.no_grad():
                    self._run(first, last, chains=self._chains)
            else:
                self._run(first, last)
            names = list(self._specs[last][0].top) if end is not None else self.outputs
        if blobs:
            names = names + [b for b in blobs if b not in names]
        return {n: self.blobs[n].data for n in names}

    def forward_all(self, blobs=None, **inputs):
        """pycaffe's ``forward_all``: run the inputs (arrays of any length) through the net in
        batches of the input blobs' batch size, zero-padding the last batch; returns
        ``{blob: array}`` for the outputs plus ``blobs``, concatenated with the padding cut."""
        outs, _ = self._run_batches(blobs, None, inputs, backward=False)
        return outs

    def forward_backward_all(self, blobs=None, diffs=None, **kwargs):
        """pycaffe's ``forward_backward_all``: ``kwargs`` give input arrays and output diffs
        (both any length); forward and backward run batch by batch (parameter diffs
        accumulate). Returns ``(outputs, diffs)`` as :meth:`forward_all` concatenates them."""
        return self._run_batches(blobs, diffs, kwargs, backward=True)

    def _run_batches(self, blobs, diffs, arrays, backward):
        unknown = sorted(set(arrays) - set(self.inputs) - (set(self.outputs) if backward
                                                           else set()))
        if unknown or not arrays:
            raise KeyError(f"Expected arrays for the net inputs {self.inputs}"
                           f"{' and output diffs ' + str(self.outputs) if backward else ''}; "
                           f"received {sorted(arrays)}.")
        arrays = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
        count = len(next(iter(arrays.values())))
        if any(len(a) != count for a in arrays.values()):
            raise ValueError(f"All arrays must have the same length; received "
                             f"{ {k: len(a) for k, a in arrays.items()} }.")
        size = next(iter(self.blobs.values())).shape[0]
        names = self.outputs + [b for b in (blobs or []) if b not in self.outputs]
        diff_names = self.inputs + [d for d in (diffs or []) if d not in self.inputs]
        got, got_diffs = {n: [] for n in names}, {n: [] for n in diff_names}
        for start in range(0, count, size):
            batch = {}
            for k, a in arrays.items():
                part = a[start:start + size]
                pad = np.zeros((size - len(part),) + a.shape[1:], np.float32)
                batch[k] = np.concatenate([part, pad]) if len(pad) else part
            outs = self.forward(blobs=blobs, **{k: batch[k] for k in self.inputs if k in batch})
            for n in names:
                got[n].append(outs[n].copy())
            if backward:
                grads = self.backward(diffs=diffs, **{k: batch[k] for k in self.outputs
                                                      if k in batch})
                for n in diff_names:
                    got_diffs[n].append(grads[n].copy())
        return _join_batches(got, count, size), _join_batches(got_diffs, count, size)

    def _leaf(self, name):
        leaf = self.blobs[name]._tensor().detach().clone()   # the blob's buffer is reused
        force = self._param.force_backward
        return leaf.requires_grad_(force or name not in self._inputs)

    def forward_tensors(self):
        """Run every layer without copying blobs into numpy (the solver's hot path). Returns
        ``(loss, outputs)``: the weighted loss (a tensor with its autograd graph; None when no
        top has a loss weight) and ``{output name: (tensor, loss_weight)}``. ``sync_blobs()``
        copies this run's tensors into ``net.blobs`` afterwards."""
        self._run(0, len(self.layers) - 1, store=False)
        loss = None
        for t, w in self._seeds:
            term = t.sum() * w
            loss = term if loss is None else loss + term
        weights = {top: w for lp, ws in self._specs for top, w in zip(lp.top, ws)}
        return loss, {n: (self._tensors[n], weights.get(n, 0.0)) for n in self._outputs}

    def sync_blobs(self):
        """Copy the tensors of the last run into ``net.blobs`` (after :meth:`forward_tensors`)."""
        param_memory = {_storage(p) for p in self.module.parameters()}
        for name, t in self._tensors.items():
            self.blobs[name]._store(t, borrow=_storage(t) not in param_memory)

    def _run_plan(self):
        """The whole forward of a host deploy net by its :class:`InferencePlan` (no autograd;
        the same blobs as :meth:`_run` with the fused chains, a fraction of its Python)."""
        plan = self._plan
        if plan is None:
            plan = self._plan = _plan.InferencePlan(self)
        if _synced.PENDING:   # parameters Python was handed (as in _run)
            _synced.flush_host_writes()
        self._tensors, self._first, self._seeds, self._io = {}, {}, [], {}
        grad = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)   # torch.no_grad() without its Python object
        try:
            plan.run()
        finally:
            torch._C._set_grad_enabled(grad)
        self._ran, self._graph = (0, len(self.layers) - 1), False

    def _run(self, first, last, store=True, chains=None):
        """Layers ``first..last``; ``chains`` (no autograd only): convolutions whose in-place
        followers run fused with them (see :mod:`kaffe.caffe.fusion`) where the whole chain is
        in the range, so the blob ends as Caffe leaves it."""
        # the last run's tensors are let go now, not after this run: their memory is then
        # free for this run's tops (warm in cache, no fresh pages to fault in)
        tensors = self._tensors = {}
        self._first, self._seeds, self._io = {}, [], {}
        if _synced.PENDING:   # Python wrote a device parameter's host copy: upload it first
            _synced.flush_host_writes()
        # a top may be kept without a copy unless it is a parameter's memory (the solver
        # updates that in place)
        param_memory = {_storage(p) for p in self.module.parameters()} if store else ()
        skip_to = -1
        steps = self._steps
        for i in range(first, last + 1):
            if i <= skip_to:
                continue
            step = steps[i]
            if step.net_input:
                for top in step.tops:
                    tensors[top] = self._leaf(top)
                    self._first.setdefault(top, tensors[top])
                continue
            bottoms = []
            for b, cut in zip(step.bottoms, step.cut):
                t = tensors.get(b)
                if t is None:
                    t = tensors[b] = self._leaf(b)
                    self._first.setdefault(b, t)
                bottoms.append(t.detach() if cut else t)
            chain = chains.get(i) if chains else None
            if chain is not None and chain.last <= last:
                tops, skip_to = [chain(*bottoms)], chain.last
            else:
                tops = self._layer_modules[i](*bottoms)
            if len(tops) != len(step.tops):
                lp = self._specs[i][0]
                raise RuntimeError(f"Layer '{lp.name}' ({lp.type}) returned {len(tops)} tops; "
                                   f"the net expects {len(lp.top)}.")
            self._io[i] = (bottoms, tops)
            for name, t, w, new in zip(step.tops, tops, step.weights, step.new):
                tensors[name] = t
                if new:
                    self._first[name] = t
                if store:
                    self.blobs[name]._store(t, borrow=_storage(t) not in param_memory)
                if w:
                    self._seeds.append((t, w))
        self._ran = (first, last)
        self._graph = torch.is_grad_enabled()

    def backward(self, diffs=None, start=None, end=None, **top_diffs):
        """Caffe's backward from layer ``start`` down to layer ``end`` (names; default all),
        reading each layer's top diffs from ``net.blobs`` (loss tops hold their loss weight)
        and writing its bottom diffs; parameter diffs accumulate. Keyword arguments set output
        diffs first. Works after a forward (through its autograd graph) or on diffs set by
        hand. Returns ``{blob: diff}`` for the net inputs (or ``end``'s bottoms) plus
        ``diffs``."""
        if _synced.PENDING:
            _synced.flush_host_writes()
        for name, value in top_diffs.items():
            if name not in self.outputs:
                raise KeyError(f"'{name}' is not a net output; outputs: {self.outputs}.")
            self.blobs[name].diff[...] = value
        last, first = self._index(start, len(self.layers) - 1), self._index(end, 0)
        whole = (first, last) == (0, len(self.layers) - 1)
        if whole and self._graph and self._tensors and self._ran == (first, last):
            self._backward_graph()
        else:
            for i in range(last, first - 1, -1):
                self._backward_layer(i)
        names = (self.bottom_names[self._layer_names[first]] if end is not None
                 else self.inputs)
        names = names + [d for d in (diffs or []) if d not in names]
        return {n: self.blobs[n].diff for n in names}

    def _backward_graph(self):
        """The whole backward in one autograd call over the last forward's graph (fast)."""
        outputs, grads = [], []
        seeded = set()
        for t, w in self._seeds:
            if t.requires_grad:
                outputs.append(t)
                grads.append(torch.full_like(t, w))
                seeded.add(id(t))
        for name in self._diff_outputs:
            t = self._tensors.get(name)
            if t is not None and t.requires_grad and id(t) not in seeded:
                outputs.append(t)
                grads.append(self.blobs[name]._diff_tensor().reshape(t.shape))
        params = [p for ps in self.params.values() for p in (b.parameter for b in ps)]
        params = list({id(p): p for p in params if p.requires_grad}.values())
        blob_names = [n for n, t in self._first.items()
                      if t.requires_grad and n not in self._outputs]
        targets = [self._first[n] for n in blob_names] + params
        if outputs and targets:
            results = torch.autograd.grad(outputs, targets, grads, retain_graph=True,
                                          allow_unused=True)
        else:
            results = [None] * len(targets)
        seed_memory = {_storage(g) for g in grads}   # a blob's own diff, passed through
        for name, g in zip(blob_names, results):
            self.blobs[name]._store_diff(g, borrow=g is not None
                                         and _storage(g) not in seed_memory)
        for p, g in zip(params, results[len(blob_names):]):
            if g is not None:
                p.grad.add_(g)

    def _backward_layer(self, i):
        """Layer ``i``'s backward on the blobs: top diffs in, bottom diffs out (overwritten
        where the bottom needs one), parameter diffs added."""
        lp, _ = self._specs[i]
        layer, need = self._layer_modules[i], self._bottom_need[i]
        params = [p for p in layer.parameters() if p.requires_grad]
        if not lp.bottom and not params or getattr(layer, "net_input", False) or \
                not self._runs_backward[i]:
            return
        tops = [self.blobs[t] for t in lp.top]
        if hasattr(layer, "backward_blobs"):   # a Python layer works on the blobs itself
            layer.backward_blobs(tops, need, [self.blobs[b] for b in lp.bottom])
            return
        if isinstance(layer, _AutoSplit):
            if need[0]:
                self.blobs[lp.bottom[0]]._store_diff(sum(b._diff_tensor() for b in tops))
            return
        saved = self._io.get(i) if self._graph else None
        if saved is not None:
            bottoms, outs = saved
        else:   # no graph (diffs set by hand): run the layer again on the blobs' data
            bottoms = [self.blobs[b]._tensor().detach().requires_grad_(n)
                       for b, n in zip(lp.bottom, need)]
            with torch.enable_grad():
                outs = layer(*bottoms)
        pairs = [(t, blob._diff_tensor().reshape(t.shape)) for t, blob in zip(outs, tops)
                 if t.requires_grad]
        wanted = [j for j, (b, n) in enumerate(zip(bottoms, need)) if n and b.requires_grad]
        targets = [bottoms[j] for j in wanted] + params
        if not pairs or not targets:
            return
        results = torch.autograd.grad([t for t, _ in pairs], targets, [g for _, g in pairs],
                                      retain_graph=True, allow_unused=True)
        for j, g in zip(wanted, results):
            self.blobs[lp.bottom[j]]._store_diff(g)
        for p, g in zip(params, results[len(wanted):]):
            if g is not None:
                p.grad.add_(g)

    def clear_param_diffs(self):
        touched = _synced.flush_host_writes() if _synced.PENDING else ()
        torch._foreach_zero_([b.parameter.grad for blobs in self.params.values() for b in blobs])
        if touched:   # views Python took just before see the zeros
            _synced.refresh(touched)

    def reshape(self):
        """Recompute every blob's shape from the input blobs' current shapes."""
        for (lp, _), layer in zip(self._specs, self._layer_modules):
            if getattr(layer, "net_input", False):
                continue
            shapes = _infer_top_shapes(layer, [self.blobs[b].shape for b in lp.bottom],
                                       self._device)
            for top, shape in zip(lp.top, shapes):
                self.blobs[top].reshape(*shape)

    # -------------------------------------------------------------- weights
    def copy_from(self, path):
        """Copy weights from a ``.caffemodel`` or Caffe HDF5 file (told apart by content) by
        layer name, as Caffe's ``CopyTrainedLayersFrom``: source layers the net lacks are
        ignored (logged); blob counts and shapes must match (legacy 4-D shapes are fitted)."""
        _weights.copy_weights(self, path)

    def load_hdf5(self, path):
        """pycaffe's ``net.load_hdf5``: copy weights from a Caffe HDF5 file."""
        _weights.copy_weights(self, path)

    def save_hdf5(self, path):
        """pycaffe's ``net.save_hdf5``: the weights as Caffe's HDF5 (``/data/<layer>/<i>``)."""
        _weights.save_hdf5(self, path)

    def save(self, path):
        """Write the net and its weights as a binary ``.caffemodel`` (HDF5 for ``.h5``)."""
        weights = collections.OrderedDict(
            (name, [b.data.copy() for b in blobs]) for name, blobs in self.params.items())
        _blobs.save_caffemodel(os.fspath(path), weights, net=self._param)

    def share_with(self, other):
        """Use ``other``'s parameter data for the layers both nets have (pycaffe's)."""
        _synced.flush_host_writes()
        for name, blobs in self.params.items():
            if name in other.params:
                for b, o in zip(blobs, other.params[name]):
                    b.parameter.data = o.parameter.data


class _Step(collections.namedtuple("_Step", "net_input bottoms tops cut new weights")):
    """What ``_run`` needs of one layer, read from its ``LayerParameter`` once (protobuf field
    access costs microseconds per layer per forward): bottom and top names, which bottoms
    ``propagate_down: false`` cuts, which tops are new blobs (not in place), loss weights."""

    @classmethod
    def of(cls, lp, weights, layer):
        bottoms, tops = tuple(lp.bottom), tuple(lp.top)
        cut = tuple(bool(lp.propagate_down) and not lp.propagate_down[j]
                    for j in range(len(bottoms)))
        return cls(bool(getattr(layer, "net_input", False)), bottoms, tops, cut,
                   tuple(t not in bottoms for t in tops), tuple(weights))


def _layers_under_loss(specs, force_backward):
    """Which layers run backward, by Caffe's rule (``Net::Init``): with ``force_backward`` all;
    otherwise only a layer one of whose tops has a loss weight or feeds, through later layers,
    a layer that does. The others leave their bottom and parameter diffs alone, so a diff
    written by hand into a non-loss output goes nowhere (as in Caffe's Embed oracle)."""
    if force_backward:
        return [True] * len(specs)
    runs, under_loss = [False] * len(specs), set()
    for i in range(len(specs) - 1, -1, -1):
        lp, weights = specs[i]
        if any(weights) or any(t in under_loss for t in lp.top):
            runs[i] = True
            under_loss.update(lp.bottom)
    return runs


def _storage(tensor):
    """Where ``tensor``'s memory starts (views of one tensor share it)."""
    return tensor.untyped_storage().data_ptr()


def _shape_str(shape):
    return f"{' '.join(str(d) for d in shape)} ({int(np.prod(shape, dtype=np.int64))})"


def _join_batches(parts, count, size):
    """Concatenate per-batch arrays and cut the padding; a blob without the batch axis (a loss
    scalar) gives one value per batch."""
    out = {}
    for name, arrays in parts.items():
        if not arrays:
            continue
        if arrays[0].ndim and arrays[0].shape[0] == size:
            out[name] = np.concatenate(arrays)[:count]
        else:
            out[name] = np.stack(arrays)
    return out


def _infer_top_shapes(layer, bottom_shapes, device=None):
    try:
        return [tuple(int(d) for d in s) for s in layer.top_shapes(bottom_shapes)]
    except NotImplementedError:
        with torch.no_grad():
            tops = layer(*[torch.zeros(s, device=device) for s in bottom_shapes])
        return [tuple(t.shape) for t in tops]
