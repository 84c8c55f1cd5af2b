"""Weights in HDF5: Keras 3's ``.weights.h5`` layout and Keras 2's legacy ``.h5`` layout.

Keras 3 (``model.weights.h5`` inside a ``.keras`` file, or a ``.weights.h5`` file): every layer
writes its own variables to ``<path>/vars/0..n-1`` (a group carrying the layer's name as the
``name`` attribute), in Keras's shapes and order. Paths follow Keras's ``_save_state`` walk: a
Sequential or functional model lists ``layers`` (a Sequential's input layer left out), each
named after its class in snake case and numbered within its container (``layers/dense``,
``layers/dense_1``, ``layers/sequential/layers/dense`` ...), never after the layer's own name;
other layers and subclassed models list their sub-layer attributes (``cell``, ``forward_layer``)
in sorted order, private ones last. A layer met twice (shared) is written once.

Keras 2 (``.h5``): ``layer_names`` on the weights group, one group per layer with a
``weight_names`` attribute and datasets ``<layer>/<weight>:0``; loading matches layers with
weights in order (or by name), as Keras does.

Every reading error names the file and the path in it; nothing is assigned until the whole file
has been checked, so a failed load leaves the model as it was.
"""
import io
import re

import h5py
import numpy as np
import torch
from torch import nn

from kaffe.engine.layer import Layer

# Keras layers whose variables live in a sub-layer that kaffe's layer may not have as an attribute.
_KERAS_VARS_SUBPATH = {"LSTM": "cell", "GRU": "cell", "SimpleRNN": "cell",
                       "ConvLSTM1D": "cell", "ConvLSTM2D": "cell", "ConvLSTM3D": "cell"}


def keras_snake_case(name):
    """Keras 3's ``to_snake_case`` (``Conv2DTranspose`` -> ``conv2d_transpose``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ---------------------------------------------------------------------------------- the walk
class _Entry:
    """One layer's own weights at one path: Keras arrays out, checked assignment in."""

    def __init__(self, path, layer):
        self.path, self.layer = path, layer
        self.items = [(spec, tensor) for spec, tensor in layer._own_weights()]
        for child in layer.children():  # plain torch modules wrapped in the layer
            if not isinstance(child, (Layer, nn.ModuleList, nn.ModuleDict)):
                self.items += [(None, t) for t in list(child.parameters()) + list(child.buffers())]
        subpath = _KERAS_VARS_SUBPATH.get(type(layer).__name__)
        subpath = subpath if self.items else None
        self.vars_path = _join(path, subpath, "vars")

    def arrays(self):
        return [(spec.to_keras(t) if spec else t).detach().cpu().numpy() for spec, t in self.items]

    def shapes(self):
        return [tuple(spec.keras_shape) if spec else tuple(t.shape) for spec, t in self.items]

    def assign(self, arrays):
        with torch.no_grad():
            for (spec, tensor), array in zip(self.items, arrays):
                value = spec.from_keras(array) if spec else torch.as_tensor(array)
                tensor.copy_(value.to(device=tensor.device, dtype=tensor.dtype))


def _join(*parts):
    return "/".join(p for p in parts if p)


def weight_entries(model, inference_only=False):
    """``_Entry`` for every layer in Keras's ``_save_state`` order and paths. ``inference_only``
    (a ``.keras`` file): the top model's layers between its inputs and outputs, as the file's
    config holds them (layers used only by losses added on symbolic tensors are left out)."""
    entries, visited = [], set()
    _walk(model, "", entries, visited, inference_only)
    return entries


def _walk(layer, path, entries, visited, inference_only=False):
    if id(layer) in visited:
        return
    visited.add(id(layer))
    entries.append(_Entry(path, layer))
    from kaffe.engine.functional import Functional
    if isinstance(layer, Functional):
        layers = layer.layers
        if inference_only and getattr(layer, "_loss_slots", None):
            from kaffe.engine.graph import map_graph
            kept = set(map_graph(layer.inputs, layer.outputs)[1])
            layers = [l for l in layers if l in kept]
        _walk_container(layers, _join(path, "layers"), entries, visited)
        return
    def private_last(item):
        return "~" + item[0] if item[0].startswith("_") else item[0]
    for name, child in sorted(layer.named_children(), key=private_last):
        if isinstance(child, Layer):
            _walk(child, _join(path, name), entries, visited)
        elif isinstance(child, (nn.ModuleList, nn.Sequential)):
            _walk_container(list(child), _join(path, name), entries, visited)
        elif isinstance(child, nn.ModuleDict):
            _walk_container(list(child.values()), _join(path, name), entries, visited)


def _walk_container(layers, path, entries, visited):
    used = {}
    for layer in layers:
        if not isinstance(layer, Layer):
            continue
        base = keras_snake_case(type(layer).__name__)
        name = base if base not in used else f"{base}_{used[base] + 1}"
        used[base] = used.get(base, -1) + 1
        _walk(layer, _join(path, name), entries, visited)


# ---------------------------------------------------------------------------------- Keras 3 layout
def write_weights(model, target, inference_only=False):
    """Write ``model``'s weights in Keras 3's layout to ``target`` (a path or a binary file)."""
    with h5py.File(target, "w") as f:
        for entry in weight_entries(model, inference_only):
            group = f.create_group(_join(entry.path, "vars"))
            group.attrs["name"] = entry.layer.name
            if entry.vars_path != _join(entry.path, "vars"):
                group = f.create_group(entry.vars_path)
                group.attrs["name"] = entry.layer.name
            for i, array in enumerate(entry.arrays()):
                group.create_dataset(str(i), data=array)


def read_weights(model, f, source, skip_mismatch=False):
    """Load Keras-3-layout weights from the open ``h5py.File`` ``f`` into ``model``."""
    if "layers" not in f and "vars" not in f:
        raise ValueError(f"{source}: no Keras weights in this HDF5 file (expected groups "
                         f"'layers' and 'vars'; found {sorted(f.keys())[:10]}).")
    plan, skipped = [], []
    for entry in weight_entries(model):
        expected = entry.shapes()
        group = f.get(entry.vars_path)
        if not expected:
            if isinstance(group, h5py.Group) and len(group):
                problem = (f"{entry.vars_path} holds {len(group)} array(s) but layer "
                           f"'{entry.layer.name}' ({type(entry.layer).__name__}) has no weights "
                           "(not built yet? call the model on data or build it first)")
                if not skip_mismatch:
                    raise ValueError(f"{source}: {problem}")
                skipped.append(problem)
            continue
        problem = _check_group(group, entry, expected)
        if problem is None:
            plan.append((entry, [_read_array(group[str(i)], source, f"{entry.vars_path}/{i}")
                                 for i in range(len(expected))]))
        elif skip_mismatch:
            skipped.append(problem)
        else:
            raise ValueError(f"{source}: {problem}")
    for entry, arrays in plan:
        entry.assign(arrays)
    if skipped:
        import logging
        logging.getLogger("kaffe").warning("%s: skipped layers whose weights do not match: %s",
                                           source, "; ".join(skipped))


def _check_group(group, entry, expected):
    layer = f"layer '{entry.layer.name}' ({type(entry.layer).__name__})"
    if not isinstance(group, h5py.Group):
        return (f"expected {entry.vars_path}/0 with shape {expected[0]} for {layer}, "
                "not found (a truncated file, or one saved from another model?)")
    found = [k for k in group.keys()]
    if len(found) != len(expected):
        return (f"{entry.vars_path} holds {len(found)} array(s) but {layer} has {len(expected)} "
                f"weight(s) with shapes {expected}")
    for i, shape in enumerate(expected):
        ds = group.get(str(i))
        if not isinstance(ds, h5py.Dataset):
            return f"expected {entry.vars_path}/{i} with shape {shape} for {layer}, not found"
        if tuple(ds.shape) != shape:
            return (f"expected {entry.vars_path}/{i} with shape {shape} for {layer}, "
                    f"found {tuple(ds.shape)}")
    return None


def _read_array(ds, source, path):
    if ds.dtype.kind not in "fiub":
        raise ValueError(f"{source}: {path} holds {ds.dtype} data, not numbers.")
    try:
        return np.asarray(ds[()])
    except OSError as error:  # a dataset whose bytes are missing (truncated file)
        raise ValueError(f"{source}: cannot read {path} ({error}); the file looks truncated."
                         ) from error


# ---------------------------------------------------------------------------------- Keras 2 layout
def write_legacy_weights(model, group):
    """Keras 2's ``save_weights_to_hdf5_group``: one group per layer of ``model.layers``."""
    from kaffe.engine.functional import Functional
    layers = list(model.layers) if isinstance(model, Functional) else [
        l for l in model.children() if isinstance(l, Layer)]
    group.attrs["layer_names"] = np.array([l.name.encode("utf8") for l in layers])
    group.attrs["backend"] = b"tensorflow"
    group.attrs["keras_version"] = b"2.15.0"
    for layer in sorted(layers, key=lambda l: l.name):
        g = group.create_group(layer.name)
        names = _legacy_weight_names(layer)
        g.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
        for name, array in zip(names, layer.get_weights()):
            g.create_dataset(name, data=array)


def _legacy_weight_names(layer):
    names, used = [], set()
    for spec, _ in layer._weight_entries():
        owner = _owner_name(layer, spec)
        base = f"{owner}/{spec.attr if spec else 'param'}"
        name, k = f"{base}:0", 0
        while name in used:
            k += 1
            name = f"{base}_{k}:0"
        used.add(name)
        names.append(name)
    return names


def _owner_name(layer, spec):
    if spec is None:
        return layer.name
    for sub in layer.modules():
        if isinstance(sub, Layer) and any(s is spec for s in sub._weight_specs):
            return sub.name if sub is layer else f"{layer.name}/{sub.name}"
    return layer.name


def read_legacy_weights(model, group, source, by_name=False, skip_mismatch=False):
    """Keras 2 / legacy ``.h5`` weights (``layer_names``, ``weight_names``) into ``model``."""
    from kaffe.engine.functional import Functional
    names = [_decode(n) for n in _legacy_attr(group, "layer_names")]
    saved = []
    for name in names:
        g = group.get(name)
        weight_names = [] if g is None else [_decode(n) for n in _legacy_attr(g, "weight_names")]
        if weight_names:
            saved.append((name, [_read_array(_get_dataset(g, w, source, name), source,
                                             f"{name}/{w}") for w in weight_names]))
    layers = list(model.layers) if isinstance(model, Functional) else [
        l for l in model.children() if isinstance(l, Layer)]
    layers = [l for l in layers if l.weights]
    if by_name:
        by = {l.name: l for l in layers}
        pairs = [(by[name], name, arrays) for name, arrays in saved if name in by]
    else:
        if len(saved) != len(layers):
            raise ValueError(f"{source}: holds weights for {len(saved)} layer(s) "
                             f"{[n for n, _ in saved]}, but the model has {len(layers)} layer(s) "
                             f"with weights {[l.name for l in layers]}.")
        pairs = [(layer, name, arrays) for layer, (name, arrays) in zip(layers, saved)]
    checked = []
    for layer, name, arrays in pairs:
        expected = [tuple(w.shape) for w in layer.get_weights()]
        found = [tuple(a.shape) for a in arrays]
        if expected != found:
            message = (f"{source}: layer '{name}' in the file has weights of shapes {found}; "
                       f"layer '{layer.name}' ({type(layer).__name__}) expects {expected}.")
            if skip_mismatch:
                import logging
                logging.getLogger("kaffe").warning(message)
                continue
            raise ValueError(message)
        checked.append((layer, arrays))
    for layer, arrays in checked:
        layer.set_weights(arrays)


def _legacy_attr(group, name):
    if name in group.attrs:
        return list(group.attrs[name])
    values, k = [], 0
    while f"{name}{k}" in group.attrs:  # Keras chunks long attribute lists
        values += list(group.attrs[f"{name}{k}"])
        k += 1
    return values


def _decode(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _get_dataset(group, name, source, layer_name):
    ds = group.get(name)
    if not isinstance(ds, h5py.Dataset):
        raise ValueError(f"{source}: weight '{name}' of layer '{layer_name}' is listed but "
                         "missing.")
    return ds


# ---------------------------------------------------------------------------------- opening
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

def open_h5(target, source):
    """``h5py.File`` for reading, or a ValueError that says what is wrong with the file."""
    if isinstance(target, (bytes, bytearray)):
        target = io.BytesIO(target)
    try:
        if isinstance(target, io.BytesIO):
            head = target.getvalue()[:8]
        else:
            with open(target, "rb") as raw:
                head = raw.read(8)
    except OSError as error:
        raise ValueError(f"{source}: cannot be read ({error}).") from error
    if not head:
        raise ValueError(f"{source}: the file is empty, not an HDF5 weights file.")
    try:
        return h5py.File(target, "r")
    except OSError as error:
        if head != HDF5_SIGNATURE:
            raise ValueError(f"{source}: not an HDF5 file (it starts with {head!r}).") from error
        raise ValueError(f"{source}: an HDF5 file that cannot be opened, probably truncated "
                         f"({error}).") from error
