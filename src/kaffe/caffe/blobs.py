"""Caffe's binary files: ``.caffemodel`` weights, ``.binaryproto`` blobs (means), ``.solverstate``.

Weights travel as an ordered dict ``layer name -> [numpy arrays]`` in Caffe's shapes and order
(InnerProduct ``(out, in)`` then bias; Convolution ``(out, in/group, kh, kw)``; BatchNorm mean,
variance, scale factor), like pycaffe's ``net.params``. A blob stored with the legacy
num/channels/height/width keeps those four axes (a V1 bias is ``(1, 1, 1, 20)``), as pycaffe's
``blobproto_to_array`` gives it; :func:`fit_blob_shape` applies Caffe's rule for loading such a
blob into a parameter of another shape. ``data`` (float32) comes back as float32, ``double_data``
as float64, and writing keeps the dtype, so a round trip is bit-exact.

Weights are parsed with a private copy of the schema in which a blob's values are raw bytes (the
wire format of a packed float field), so reading and writing big models costs a memory copy, not
a Python float per value. Old V0/V1 weight files are upgraded as Caffe does on load. Files that are
truncated, corrupt or inconsistent raise :class:`CaffeFormatError` naming the file; every file is
written through a temporary file renamed over the target.

``.h5`` weights and solver states (Caffe's ``snapshot_format: HDF5``) are read and written too.
"""
import collections
import dataclasses
import logging
import os

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

from kaffe.caffe import upgrade as _upgrade
from kaffe.caffe.proto import caffe_pb2
from kaffe.caffe.prototxt import CaffeFormatError, write_bytes_atomically

log = logging.getLogger("kaffe")

__all__ = ["blob_to_array", "array_to_blob", "fit_blob_shape", "read_caffemodel",
           "write_caffemodel", "load_caffemodel", "save_caffemodel", "load_blobproto",
           "save_blobproto", "SolverSnapshot", "load_solverstate", "save_solverstate"]

_VALUE_FIELDS = ("data", "diff", "double_data", "double_diff")
_LEGACY_FIELDS = ("num", "channels", "height", "width")


def _raw_schema():
    """Caffe's messages with BlobProto's value fields as ``repeated bytes`` (same wire format)."""
    file_proto = descriptor_pb2.FileDescriptorProto.FromString(caffe_pb2.DESCRIPTOR.serialized_pb)
    file_proto.name = "kaffe/caffe/raw_blobs.proto"
    blob = next(m for m in file_proto.message_type if m.name == "BlobProto")
    for field in blob.field:
        if field.name in _VALUE_FIELDS:
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
            field.ClearField("options")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    names = ("NetParameter", "BlobProto", "SolverState")
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{n}"))
            for n in names}


_RAW = _raw_schema()


# ------------------------------------------------------------------------------ one blob

def _blob_shape(blob, where):
    if any(blob.HasField(f) for f in _LEGACY_FIELDS):
        shape = tuple(getattr(blob, f) for f in _LEGACY_FIELDS)
    else:
        shape = tuple(blob.shape.dim)
    if any(d < 0 for d in shape):
        raise CaffeFormatError(f"{where}: negative extent in blob shape {shape}")
    return shape


def _values(blob, field, dtype):
    values = getattr(blob, field)
    if blob.DESCRIPTOR.fields_by_name[field].type == descriptor_pb2.FieldDescriptorProto.TYPE_BYTES:
        raw = values[0] if len(values) == 1 else b"".join(values)
        if len(raw) % np.dtype(dtype).itemsize:
            return None
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    return np.array(values, dtype=dtype)


def blob_to_array(blob, where="blob"):
    """A ``BlobProto``'s values as a numpy array of its shape (float64 for ``double_data``).

    Raises :class:`CaffeFormatError` (``where`` names the blob) when the number of values does
    not match the shape, as Caffe's ``Blob::FromProto`` refuses it."""
    shape = _blob_shape(blob, where)
    count = int(np.prod(shape, dtype=object)) if shape else 1
    use_double = len(blob.double_data) > 0
    values = _values(blob, "double_data", np.float64) if use_double else \
        _values(blob, "data", np.float32)
    if values is None or values.size != count:
        found = "a partial value" if values is None else f"{values.size} values"
        raise CaffeFormatError(f"{where}: shape {shape} needs {count} values, the file holds "
                               f"{found}")
    return values.reshape(shape)


def array_to_blob(array, blob=None, legacy=False):
    """Fill ``blob`` (a new ``caffe_pb2.BlobProto`` when None) with ``array`` and return it.

    float64 arrays go to ``double_data``, anything else to float32 ``data``; the shape goes to
    ``shape`` (as pycaffe's ``array_to_blobproto``) or, with ``legacy``, to the old
    num/channels/height/width (at most 4 axes, padded in front with 1s) for old readers."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"a Caffe blob holds numbers; received an array of dtype {array.dtype}")
    blob = caffe_pb2.BlobProto() if blob is None else blob
    blob.Clear()
    if legacy:
        if array.ndim > 4:
            raise ValueError(f"legacy blob shapes have at most 4 axes; received {array.shape}")
        dims = (1,) * (4 - array.ndim) + array.shape
        blob.num, blob.channels, blob.height, blob.width = dims
    else:
        blob.shape.SetInParent()
        blob.shape.dim.extend(array.shape)
    field, dtype = ("double_data", np.float64) if array.dtype == np.float64 else \
        ("data", np.float32)
    flat = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).reshape(-1)
    values = getattr(blob, field)
    if blob.DESCRIPTOR.fields_by_name[field].type == descriptor_pb2.FieldDescriptorProto.TYPE_BYTES:
        if flat.size:
            values.append(flat.tobytes())
    else:
        values.extend(flat.astype(dtype).tolist())
    return blob


def fit_blob_shape(array, shape, where="blob"):
    """``array`` reshaped to ``shape`` when Caffe would load it into a blob of that shape.

    Equal shapes always fit. An array with 4 axes read from a legacy blob fits a target of at
    most 4 axes whose shape, padded in front with 1s, equals it (a V1 ``(1, 1, 1, 20)`` bias
    fits ``(20,)``), as ``Blob::ShapeEquals`` allows. Otherwise raises ``ValueError``."""
    shape = tuple(int(d) for d in shape)
    if tuple(array.shape) == shape:
        return array
    if array.ndim == 4 and len(shape) <= 4 and (1,) * (4 - len(shape)) + shape == array.shape:
        return array.reshape(shape)
    raise ValueError(f"{where}: cannot load a blob of shape {tuple(array.shape)} into a "
                     f"parameter of shape {shape}")


# ------------------------------------------------------------------------------ files

def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise CaffeFormatError(f"{path}: cannot open: {err.strerror}", path) from None


def _parse(message_class, path, what):
    data = _read_bytes(path)
    msg = message_class()
    try:
        msg.ParseFromString(data)
    except (message.DecodeError, RecursionError, ValueError) as err:
        hint = ""
        if data[:200].isascii() and b":" in data[:200]:
            hint = " (it looks like text: a .prototxt, not binary weights?)"
        raise CaffeFormatError(f"{path}: not a valid {what} file; it is truncated or corrupt "
                               f"({len(data)} bytes; protobuf says: {err}){hint}", path) from None
    bad = _invalid_string(msg)
    if bad is not None:
        raise CaffeFormatError(f"{path}: not a valid {what} file; the text field {bad[0]} is not "
                               f"UTF-8 ({bad[1]!r}), so the file is corrupt", path)
    return msg


def _invalid_string(msg, where=""):
    """(field path, value) of the first string field that is not UTF-8 (protobuf hands those
    back as bytes), else None."""
    for field, value in msg.ListFields():
        items = value if field.is_repeated else (value,)
        name = f"{where}.{field.name}" if where else field.name
        if field.message_type is not None:
            for item in items:
                bad = _invalid_string(item, name)
                if bad is not None:
                    return bad
        elif field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
            for item in items:
                if isinstance(item, bytes):
                    return name, item
    return None


def read_caffemodel(path, upgrade=True, raw_blobs=False):
    """The ``NetParameter`` of a binary ``.caffemodel`` (a ``caffe_pb2`` message), upgraded from
    V0/V1 as Caffe's ``ReadNetParamsFromBinaryFileOrDie`` does unless ``upgrade`` is False.

    With ``raw_blobs`` the message comes from kaffe's copy of the schema in which blob values are
    bytes: fast to copy or rewrite whole (``write_caffemodel`` writes identical bytes), read
    values with :func:`blob_to_array`. For the weights alone use :func:`load_caffemodel`."""
    path = os.fspath(path)
    message_class = _RAW["NetParameter"] if raw_blobs else caffe_pb2.NetParameter
    net = _parse(message_class, path, "NetParameter (.caffemodel)")
    if upgrade and _upgrade.net_needs_upgrade(net):
        net = _upgrade.upgrade_net(net, path)
    return net


def write_caffemodel(net, path):
    """Write a ``NetParameter`` message as a binary ``.caffemodel``, atomically."""
    write_bytes_atomically(os.fspath(path), net.SerializeToString())


def load_caffemodel(path):
    """The weights of a ``.caffemodel`` (or Caffe HDF5 ``.h5``) file as an ordered dict
    ``layer name -> [arrays]`` for the layers that have blobs (like pycaffe's ``net.params``),
    in file order (HDF5: alphabetical). Where two layers share a name the later one wins, as
    when Caffe copies them into a net."""
    path = os.fspath(path)
    if path.endswith(".h5"):
        return _load_h5_weights(path)
    weights = collections.OrderedDict()
    for index, layer in enumerate(read_caffemodel(path, raw_blobs=True).layer):
        if not layer.blobs:
            continue
        label = f"{path}: layer {index} ('{layer.name}')"
        if layer.name in weights:
            log.warning("%s: a second layer named '%s'; its blobs replace the first's", path,
                        layer.name)
            del weights[layer.name]
        weights[layer.name] = [blob_to_array(b, f"{label} blob {i}")
                               for i, b in enumerate(layer.blobs)]
    return weights


def save_caffemodel(path, weights, net=None, name=None):
    """Write ``weights`` (``layer name -> [arrays]``) as a binary ``.caffemodel`` (or HDF5 when
    ``path`` ends in ``.h5``).

    With ``net`` (a ``NetParameter``, upgraded first if old) the file is that net with these
    blobs in the layers they name (other layers keep the blobs ``net`` has), as Caffe's
    ``net.save`` writes it; without, it holds one ``layer { name blobs }`` per entry, which is
    all Caffe needs to copy weights by name. ``name`` sets the net's name."""
    path = os.fspath(path)
    if path.endswith(".h5"):
        return _save_h5_weights(path, weights)
    raw = _RAW["NetParameter"]()
    if net is not None:
        if _upgrade.net_needs_upgrade(net):
            net = _upgrade.upgrade_net(net)
        raw.ParseFromString(net.SerializeToString())
        layers = collections.defaultdict(list)
        for layer in raw.layer:
            layers[layer.name].append(layer)
        missing = [n for n in weights if n not in layers]
        if missing:
            raise ValueError(f"weights for layer(s) {missing} that the net "
                             f"'{raw.name}' does not have")
        targets = {n: layers[n] for n in weights}
    else:
        targets = {n: [raw.layer.add(name=n)] for n in weights}
    if name is not None:
        raw.name = name
    for layer_name, arrays in weights.items():
        for layer in targets[layer_name]:
            del layer.blobs[:]
            for array in arrays:
                array_to_blob(array, layer.blobs.add())
    write_caffemodel(raw, path)


def load_blobproto(path):
    """The array in a ``.binaryproto`` file (e.g. a mean from ``compute_image_mean``): 4-D
    ``(num, channels, height, width)`` for legacy blobs, else the stored shape."""
    path = os.fspath(path)
    return blob_to_array(_parse(_RAW["BlobProto"], path, "BlobProto (.binaryproto)"), path)


def save_blobproto(path, array, legacy=False):
    """Write ``array`` as a ``.binaryproto`` (see :func:`array_to_blob` for ``legacy``)."""
    blob = array_to_blob(array, _RAW["BlobProto"](), legacy=legacy)
    write_bytes_atomically(os.fspath(path), blob.SerializeToString())


# ------------------------------------------------------------------------- solver state

@dataclasses.dataclass
class SolverSnapshot:
    """What a ``.solverstate`` holds: the iteration, the weights file written beside it, the
    learning-rate step reached (step / multistep policies) and the solver's history blobs
    (momentum, squared gradients, ... in the order of the net's learnable parameters)."""
    iter: int = 0
    learned_net: str = ""
    current_step: int = 0
    history: list = dataclasses.field(default_factory=list)


def load_solverstate(path):
    """A :class:`SolverSnapshot` from a ``.solverstate`` (or ``.solverstate.h5``) file."""
    path = os.fspath(path)
    if path.endswith(".h5"):
        return _load_h5_solverstate(path)
    state = _parse(_RAW["SolverState"], path, "SolverState (.solverstate)")
    history = [blob_to_array(b, f"{path}: history blob {i}") for i, b in enumerate(state.history)]
    return SolverSnapshot(state.iter, state.learned_net, state.current_step, history)


def save_solverstate(path, snapshot):
    """Write a :class:`SolverSnapshot` as Caffe does (binary, or HDF5 for ``.h5``)."""
    path = os.fspath(path)
    if path.endswith(".h5"):
        return _save_h5_solverstate(path, snapshot)
    state = _RAW["SolverState"](iter=snapshot.iter, learned_net=snapshot.learned_net,
                                current_step=snapshot.current_step)
    for array in snapshot.history:
        array_to_blob(array, state.history.add())
    write_bytes_atomically(path, state.SerializeToString())


# ------------------------------------------------------------------------------- HDF5

def _h5_error(path, err):
    return CaffeFormatError(f"{path}: not a readable Caffe HDF5 file: {err}", path)


def _h5_blobs(group, where):
    keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else -1)
    if any(not k.isdigit() for k in keys) or [int(k) for k in keys] != list(range(len(keys))):
        raise CaffeFormatError(f"{where}: blobs must be datasets named 0, 1, ...; found {keys}")
    return [np.array(group[k]) for k in keys]


def _load_h5_weights(path):
    import h5py
    try:
        with h5py.File(path, "r") as f:
            data = f["data"]
            return collections.OrderedDict(
                (name, _h5_blobs(data[name], f"{path}: layer '{name}'")) for name in data
                if len(data[name]))
    except (OSError, KeyError, TypeError, AttributeError) as err:
        raise _h5_error(path, err) from None


def _save_h5_weights(path, weights):
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            for name, arrays in weights.items():
                group = data.create_group(name)
                for i, array in enumerate(arrays):
                    group.create_dataset(str(i), data=np.asarray(array))
    from kaffe.saving.keras_file import atomic_write
    atomic_write(path, write)


def _load_h5_solverstate(path):
    import h5py
    try:
        with h5py.File(path, "r") as f:
            learned = f["learned_net"][()]
            return SolverSnapshot(
                int(np.asarray(f["iter"]).reshape(-1)[0]),
                learned.decode("utf-8", "replace") if isinstance(learned, bytes) else str(learned),
                int(np.asarray(f["current_step"]).reshape(-1)[0]),
                _h5_blobs(f["history"], f"{path}: history"))
    except (OSError, KeyError, TypeError, IndexError, AttributeError) as err:
        raise _h5_error(path, err) from None


def _save_h5_solverstate(path, snapshot):
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.create_dataset("iter", data=np.array([snapshot.iter], np.int32))
            f.create_dataset("learned_net", data=np.bytes_(snapshot.learned_net))
            f.create_dataset("current_step", data=np.array([snapshot.current_step], np.int32))
            history = f.create_group("history")
            for i, array in enumerate(snapshot.history):
                history.create_dataset(str(i), data=np.asarray(array))
    from kaffe.saving.keras_file import atomic_write
    atomic_write(path, write)
