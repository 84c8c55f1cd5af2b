"""``caffe.load_model(prototxt, weights=None, phase='test')``: a Caffe net as a kaffe ``Model``.

The net is built by :class:`kaffe.caffe.net.Net` (same layers, same Caffe semantics, same
weights); the model holds those very layers, so ``model.weights`` are the net's parameters
(shared, not copied) and ``model.net.save(...)`` writes what ``fit`` learned.

The model's inputs are the net's input blobs (``Input`` layers / ``input:`` fields) and the tops
of its data layers (``Data``, ``ImageData``, ``HDF5Data``, ``MemoryData``, ``WindowData``),
which are fed by the caller instead of read from the database; its outputs are the net's output
blobs (those no later layer consumes), or the blobs named in ``outputs=`` (then only the layers
those need run, and only the inputs they need are asked for).

What works: ``predict`` (any batch size for layers that do not fix it, e.g. not ``Reshape`` with
an explicit batch dim), ``summary`` (one row per Caffe layer: type, top shapes, parameter count),
``get_weights`` / ``set_weights`` (Caffe's shapes and order), ``save_weights`` / ``load_weights``
(kaffe's weight files), ``save('x.caffemodel')`` (Caffe weights through ``Net.save``), and
``compile`` + ``fit`` with a Keras loss on a non-loss output (e.g. ``outputs=['ip2']`` of a
train net, or ``prob`` of a deploy net). Not provided: ``save`` to ``.keras`` / ``.h5`` model
files (there is no Keras config for a Caffe net; the prototxt is the architecture), and Caffe's
own losses/solver settings (``lr_mult``, ``decay_mult``, ``loss_weight``) do not steer ``fit`` —
the Keras optimizer and loss do (``lr_mult: 0`` parameters stay frozen). Dropout and other
phase-dependent layers follow the ``phase`` the net was built in. A scalar loss top (e.g.
``SoftmaxWithLoss``'s) can be an output of ``model(...)`` but not of ``predict`` (which stacks
per-sample rows): pick non-loss blobs with ``outputs=``.
"""
import collections
import os

import numpy as np
import torch
from torch import nn

from kaffe.caffe import fusion as _fusion
from kaffe.caffe.net import TEST, TRAIN, Net
from kaffe.engine.model import Model
from kaffe.engine.summary import print_table

__all__ = ["load_model", "CaffeModel"]

DATA_LAYER_TYPES = ("Input", "Data", "ImageData", "HDF5Data", "MemoryData", "WindowData")


def _phase(phase):
    if isinstance(phase, str):
        key = phase.strip().upper()
        if key not in ("TRAIN", "TEST"):
            raise ValueError(f"load_model: phase must be 'train' or 'test', received {phase!r}.")
        return TRAIN if key == "TRAIN" else TEST
    if phase in (TRAIN, TEST):
        return phase
    raise ValueError(f"load_model: phase must be 'train' or 'test', received {phase!r}.")


class CaffeNetModule(nn.Module):
    """The net's layers as one module: ``forward(*inputs)`` takes the input blobs in
    ``input_names`` order and returns the ``output_names`` blobs (a list)."""

    def __init__(self, net, outputs=None):
        super().__init__()
        specs = [lp for lp, _ in net._specs]
        feeds = []
        for lp, layer in zip(specs, net._layer_modules):
            if getattr(layer, "net_input", False) or (not lp.bottom and
                                                       lp.type in DATA_LAYER_TYPES):
                feeds.extend(t for t in lp.top if t not in feeds)
        if outputs is None:
            outputs = list(net.outputs)
        else:
            outputs = [outputs] if isinstance(outputs, str) else list(outputs)
            for name in outputs:
                if name not in net.blobs:
                    raise ValueError(f"load_model: the net has no blob '{name}'; blobs: "
                                     f"{', '.join(net.blobs)}.")
        # keep only the layers the outputs need (walking back from them)
        needed, keep = set(outputs), []
        for i in range(len(specs) - 1, -1, -1):
            lp = specs[i]
            is_feed = any(t in feeds for t in lp.top) and not lp.bottom
            if is_feed:
                continue
            if needed.intersection(lp.top):
                keep.append(i)
                needed.update(lp.bottom)
        keep.reverse()
        self.input_names = [t for t in feeds if t in needed]
        self.output_names = outputs
        self._specs = [specs[i] for i in keep]
        self.caffe_layers = nn.ModuleList([net._layer_modules[i] for i in keep])
        self.layer_names = [specs[i].name for i in keep]
        self.blob_shapes = {name: tuple(blob.shape) for name, blob in net.blobs.items()}
        # with no gradient to record (predict), in-place chains run fused, as in Net.forward
        self._chains = _fusion.find_conv_chains([(lp, ()) for lp in self._specs],
                                                list(self.caffe_layers))

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"The Caffe net takes {len(self.input_names)} input(s) "
                             f"({', '.join(self.input_names)}), received {len(inputs)}.")
        tensors = dict(zip(self.input_names, inputs))
        chains = self._chains if not torch.is_grad_enabled() else {}
        skip_to = -1
        for i, (lp, layer) in enumerate(zip(self._specs, self.caffe_layers)):
            if i <= skip_to:
                continue
            chain = chains.get(i)
            if chain is not None:
                layer, skip_to = _Fused(chain), chain.last
            bottoms = []
            for j, b in enumerate(lp.bottom):
                if b not in tensors:
                    raise ValueError(f"Layer '{lp.name}' needs blob '{b}', which no input or "
                                     "earlier layer of the model provides.")
                t = tensors[b]
                if lp.propagate_down and not lp.propagate_down[j]:
                    t = t.detach()
                bottoms.append(t)
            tops = layer(*bottoms)
            for name, t in zip(lp.top, tops):
                tensors[name] = t
        return [tensors[name] for name in self.output_names]


class _Fused:
    """A fused chain called as a layer is: tops in a list."""

    def __init__(self, chain):
        self.chain = chain

    def __call__(self, *bottoms):
        return [self.chain(*bottoms)]


class CaffeModel(Model):
    """A kaffe ``Model`` running a Caffe ``Net``'s layers (see :func:`load_model`)."""

    def __init__(self, net, outputs=None, name=None):
        super().__init__(name=name or (net._param.name or "caffe_net"))
        self.net = net
        self.caffe_net = CaffeNetModule(net, outputs)
        self.built = True

    @property
    def input_names(self):
        return list(self.caffe_net.input_names)

    @property
    def output_names(self):
        return list(self.caffe_net.output_names)

    def _input_dtypes(self):
        return ["float32"] * len(self.input_names)

    def call(self, inputs):
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ValueError(f"Missing Caffe input blob(s) {missing}; the model takes "
                                 f"{self.input_names}.")
            inputs = [inputs[n] for n in self.input_names]
        elif isinstance(inputs, (list, tuple)):
            inputs = list(inputs)
        else:
            inputs = [inputs]
        inputs = [x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x),
                                                                        dtype=torch.float32)
                  for x in inputs]
        outputs = self.caffe_net(*inputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """One row per Caffe layer: name (type), top blob shapes (Caffe's, batch included),
        parameter count; then the totals."""
        print_fn = print_fn or print
        module = self.caffe_net
        rows = []
        for lp, layer in zip(module._specs, module.caffe_layers):
            shapes = [module.blob_shapes.get(t, "?") for t in lp.top]
            shape = ", ".join(str(s) for s in shapes) or "-"
            count = sum(p.numel() for p in layer.parameters())
            rows.append([f"{lp.name} ({lp.type})", shape, f"{count:,}"])
        rows = [[f"{n} (Input)", str(module.blob_shapes.get(n, "?")), "0"]
                for n in module.input_names] + rows
        headers = ["Layer (type)", "Top shape", "Param #"]
        total = int(sum(t.numel() for t in self.weights))
        trainable = int(sum(t.numel() for t in self.trainable_weights))
        print_fn(f'Model: "{self.name}"')
        print_table(headers, rows, print_fn, line_length)
        print_fn(f" Total params: {total:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {total - trainable:,}")
        print_fn(f" Inputs: {', '.join(self.input_names)}; outputs: "
                 f"{', '.join(self.output_names)}")

    def get_config(self):
        raise NotImplementedError(
            "A Caffe net loaded with caffe.load_model has no Keras config: its architecture is "
            "the prototxt. Save the weights with model.save('weights.caffemodel') or "
            "model.save_weights(...).")

    def save(self, filepath, overwrite=True, **kwargs):
        """``.caffemodel`` (or Caffe ``.h5`` via ``Net.save``): the net's current weights.
        Other formats are not supported for Caffe nets (there is no Keras config)."""
        path = os.fspath(filepath)
        if path.endswith(".caffemodel") or path.endswith(".caffemodel.h5"):
            if os.path.exists(path) and not overwrite:
                raise FileExistsError(f"'{path}' exists and overwrite=False.")
            self.net.save(path)
            return
        raise NotImplementedError(
            f"save('{path}'): a model loaded from a Caffe prototxt is saved as Caffe weights "
            "(model.save('name.caffemodel')) or with model.save_weights(...); .keras/.h5 "
            "model files need a Keras config, which a Caffe net does not have.")


def _with_inputs(prototxt, input_shapes):
    """The NetParameter with every data layer whose tops are all in ``input_shapes`` replaced by
    an ``Input`` layer of those shapes (the caller feeds the data)."""
    from kaffe.caffe import prototxt as _prototxt
    from kaffe.caffe import upgrade as _upgrade
    from kaffe.caffe.proto import caffe_pb2
    if isinstance(prototxt, caffe_pb2.NetParameter):
        param = caffe_pb2.NetParameter()
        param.CopyFrom(prototxt)
        if _upgrade.net_needs_upgrade(param):
            param = _upgrade.upgrade_net(param)
    else:
        param = _prototxt.read_net_param(os.fspath(prototxt))
    for lp in param.layer:
        if lp.bottom or lp.type not in DATA_LAYER_TYPES or lp.type == "Input":
            continue
        if not all(t in input_shapes for t in lp.top):
            continue
        tops, name, include = list(lp.top), lp.name, list(lp.include)
        exclude = list(lp.exclude)
        lp.Clear()
        lp.name, lp.type = name, "Input"
        lp.top.extend(tops)
        lp.include.extend(include)
        lp.exclude.extend(exclude)
        for t in tops:
            lp.input_param.shape.add().dim.extend(int(d) for d in input_shapes[t])
    return param


def load_model(prototxt, weights=None, phase="test", outputs=None, input_shapes=None):
    """A kaffe ``Model`` running the Caffe net in ``prototxt`` (path or ``NetParameter``) with
    ``weights`` (``.caffemodel``/Caffe ``.h5``; else the fillers' values) in ``phase``
    ('train' or 'test'). ``outputs`` optionally names the blobs the model returns;
    ``input_shapes`` (``{top: shape}``) turns data layers (``Data``, ``ImageData``, ...) into
    ``Input`` layers of those shapes, so a train/test prototxt runs on arrays you pass."""
    if input_shapes:
        prototxt = _with_inputs(prototxt, input_shapes)
    net = Net(prototxt, weights=weights, phase=_phase(phase))
    return CaffeModel(net, outputs=outputs)
