"""Weights in and out of a :class:`kaffe.caffe.net.Net`: Caffe's ``CopyTrainedLayersFrom``
(binary ``.caffemodel`` or HDF5, told apart by the file's first bytes as Caffe does, not by its
suffix), ``ToHDF5`` and the checks Caffe leaves out (an empty file, a file none of whose layers
the net has, weights holding NaN or Inf).
"""
import collections
import logging
import os

import numpy as np

from kaffe.caffe import blobs as _blobs

log = logging.getLogger("kaffe.caffe")

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"   # the first bytes of every HDF5 file


def is_hdf5(path):
    """True when ``path`` starts with HDF5's signature."""
    with open(path, "rb") as f:
        return f.read(len(HDF5_MAGIC)) == HDF5_MAGIC


def read_weights(path):
    """``{layer: [arrays]}`` of a weights file; an empty or missing file is refused."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file {path} does not exist.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"Weights file {path} is empty (0 bytes): not a .caffemodel or Caffe "
                         f"HDF5 file. Was it written completely?")
    return _blobs._load_h5_weights(path) if is_hdf5(path) else _read_protobuf(path)


def _read_protobuf(path):
    """A binary ``.caffemodel``'s weights whatever its file name ends in (a later layer of
    the same name replaces an earlier one, as when Caffe copies them)."""
    weights = collections.OrderedDict()
    for index, layer in enumerate(_blobs.read_caffemodel(path, raw_blobs=True).layer):
        if layer.blobs:
            weights.pop(layer.name, None)
            weights[layer.name] = [
                _blobs.blob_to_array(b, f"{path}: layer {index} ('{layer.name}') blob {i}")
                for i, b in enumerate(layer.blobs)]
    return weights


def copy_weights(net, path, source=None, verbose=True):
    """Copy ``path``'s weights into ``net`` by layer name. Source layers the net lacks are
    logged ("Ignoring source layer X", as Caffe does) and, when nothing at all matched, a
    warning says so; arrays holding NaN or Inf are warned about, naming the layer. Returns the
    names of the layers copied."""
    path = os.fspath(path)
    source = read_weights(path) if source is None else source
    copied = []
    for name, arrays in source.items():
        if name not in net._layer_names:
            if verbose:
                log.info("Ignoring source layer %s", name)
            continue
        targets = net.params.get(name, [])
        if len(arrays) != len(targets):
            raise ValueError(f"Incompatible number of blobs for layer '{name}': the file "
                             f"{path} has {len(arrays)}, the net {len(targets)}.")
        for i, (array, target) in enumerate(zip(arrays, targets)):
            try:
                array = _blobs.fit_blob_shape(array, target.shape)
            except ValueError:
                raise ValueError(
                    f"Cannot copy param {i} weights from layer '{name}'; shape mismatch. "
                    f"Source param shape is {_shape_str(array.shape)}; target param shape is "
                    f"{_shape_str(target.shape)} (file {path}). To learn this layer's "
                    f"parameters from scratch rather than copying from a saved net, rename "
                    f"the layer.") from None
            if verbose and not np.isfinite(array).all():
                bad = int(np.size(array) - np.isfinite(array).sum())
                log.warning("Weights file %s: layer '%s' blob %d holds %d NaN/Inf value(s) "
                            "of %d; the net's outputs will be NaN/Inf.", path, name, i, bad,
                            np.size(array))
            target.data[...] = array
        if targets:
            copied.append(name)
    if verbose and net.params and not copied:
        log.warning("Weights file %s: no layer of the net matches a layer of the file; "
                    "nothing was copied. Net '%s' layers with weights: %s; file layers: %s. "
                    "Layers are matched by name.", path, net._param.name,
                    ", ".join(net.params), ", ".join(source) or "(none)")
    return copied


def save_hdf5(net, path):
    """pycaffe's ``net.save_hdf5``: Caffe's HDF5 weights (``/data/<layer>/<i>``)."""
    weights = collections.OrderedDict(
        (name, [b.data.copy() for b in blobs]) for name, blobs in net.params.items())
    _blobs._save_h5_weights(os.fspath(path), weights)


def _shape_str(shape):
    return f"{' '.join(str(d) for d in shape)} ({int(np.prod(shape, dtype=np.int64))})"
