"""Old Caffe formats brought to the current one, rule for rule as Caffe's ``upgrade_proto.cpp``.

A net goes through the steps Caffe's ``UpgradeNetAsNeeded`` takes, in its order, each only when
the net needs it:

1. **V0 -> V1** (``layers { layer { type: "conv" kernelsize: 5 ... } }``): a ``"padding"`` layer
   is folded into the ``pad`` of the conv / pool layer it feeds; the flat V0 fields move into the
   typed ``*_param`` messages (``kernelsize`` -> ``convolution_param.kernel_size``, ...); string
   types become V1 enums. Everything else at net level but ``name``, ``input``, ``input_dim`` and
   ``force_backward`` is dropped, as Caffe does.
2. **Data transformation**: ``scale``, ``mean_file``, ``crop_size`` and ``mirror`` of V1
   ``DATA`` / ``IMAGE_DATA`` / ``WINDOW_DATA`` layers move into ``transform_param``.
3. **V1 -> current** (``layers { type: CONVOLUTION blobs_lr: 1 weight_decay: 1 }``):
   ``layer { type: "Convolution" param { lr_mult: 1 decay_mult: 1 } }``; ``param: "name"`` and
   ``blob_share_mode`` become ``param { name share_mode }``; blobs and every ``*_param`` are kept.
4. **Input fields** (``input`` + ``input_dim`` / ``input_shape``): an ``Input`` layer named
   ``"input"`` placed first; a weights file with bare ``input`` names just loses them.
5. **BatchNorm** layers declaring three ``param {}`` get ``lr_mult: 0 decay_mult: 0`` on each.

A solver's ``solver_type`` enum becomes the ``type`` string (``NESTEROV`` -> ``"Nesterov"``).

The functions return upgraded copies and leave their input alone. They work on messages of any
descriptor pool with Caffe's schema (``blobs.py`` parses weights with one whose blob values are
raw bytes). Where Caffe stops with a fatal error kaffe raises :class:`UpgradeError`; where Caffe
logs "Unknown parameter ..." and carries on, kaffe logs a warning, carries on, and appends the
text to ``problems`` when given a list.

    >>> from kaffe.caffe.prototxt import parse_net_param
    >>> net = parse_net_param('layers { name: "fc" type: INNER_PRODUCT blobs_lr: 1 blobs_lr: 2 }')
    >>> net.layer[0].type, [p.lr_mult for p in net.layer[0].param]
    ('InnerProduct', [1.0, 2.0])
"""
import logging
import os

from kaffe.caffe.proto import caffe_pb2
from kaffe.caffe.prototxt import CaffeFormatError

log = logging.getLogger("kaffe")

__all__ = ["UpgradeError", "V1_LAYER_TYPES", "V0_LAYER_TYPES", "SOLVER_TYPES",
           "net_needs_upgrade", "upgrade_net", "solver_needs_upgrade", "upgrade_solver",
           "upgrade_snapshot_prefix"]

_V1 = caffe_pb2.V1LayerParameter


class UpgradeError(CaffeFormatError):
    """An old-format net or solver that Caffe itself refuses to upgrade."""


# V1 enum -> current type string (UpgradeV1LayerType).
V1_LAYER_TYPES = {
    _V1.NONE: "", _V1.ABSVAL: "AbsVal", _V1.ACCURACY: "Accuracy", _V1.ARGMAX: "ArgMax",
    _V1.BNLL: "BNLL", _V1.CONCAT: "Concat", _V1.CONTRASTIVE_LOSS: "ContrastiveLoss",
    _V1.CONVOLUTION: "Convolution", _V1.DECONVOLUTION: "Deconvolution", _V1.DATA: "Data",
    _V1.DROPOUT: "Dropout", _V1.DUMMY_DATA: "DummyData", _V1.EUCLIDEAN_LOSS: "EuclideanLoss",
    _V1.ELTWISE: "Eltwise", _V1.EXP: "Exp", _V1.FLATTEN: "Flatten", _V1.HDF5_DATA: "HDF5Data",
    _V1.HDF5_OUTPUT: "HDF5Output", _V1.HINGE_LOSS: "HingeLoss", _V1.IM2COL: "Im2col",
    _V1.IMAGE_DATA: "ImageData", _V1.INFOGAIN_LOSS: "InfogainLoss",
    _V1.INNER_PRODUCT: "InnerProduct", _V1.LRN: "LRN", _V1.MEMORY_DATA: "MemoryData",
    _V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss", _V1.MVN: "MVN",
    _V1.POOLING: "Pooling", _V1.POWER: "Power", _V1.RELU: "ReLU", _V1.SIGMOID: "Sigmoid",
    _V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss", _V1.SILENCE: "Silence",
    _V1.SOFTMAX: "Softmax", _V1.SOFTMAX_LOSS: "SoftmaxWithLoss", _V1.SPLIT: "Split",
    _V1.SLICE: "Slice", _V1.TANH: "TanH", _V1.WINDOW_DATA: "WindowData",
    _V1.THRESHOLD: "Threshold",
}

# V0 type string -> V1 enum (UpgradeV0LayerType).
V0_LAYER_TYPES = {
    "accuracy": _V1.ACCURACY, "bnll": _V1.BNLL, "concat": _V1.CONCAT, "conv": _V1.CONVOLUTION,
    "data": _V1.DATA, "dropout": _V1.DROPOUT, "euclidean_loss": _V1.EUCLIDEAN_LOSS,
    "flatten": _V1.FLATTEN, "hdf5_data": _V1.HDF5_DATA, "hdf5_output": _V1.HDF5_OUTPUT,
    "im2col": _V1.IM2COL, "images": _V1.IMAGE_DATA, "infogain_loss": _V1.INFOGAIN_LOSS,
    "innerproduct": _V1.INNER_PRODUCT, "lrn": _V1.LRN,
    "multinomial_logistic_loss": _V1.MULTINOMIAL_LOGISTIC_LOSS, "pool": _V1.POOLING,
    "relu": _V1.RELU, "sigmoid": _V1.SIGMOID, "softmax": _V1.SOFTMAX,
    "softmax_loss": _V1.SOFTMAX_LOSS, "split": _V1.SPLIT, "tanh": _V1.TANH,
    "window_data": _V1.WINDOW_DATA,
}

# Where each flat V0 field goes, per V0 layer type: (message field, its field, how). "*" is any
# type; "set" assigns, "add" appends to a repeated field, "copy" copies a message.
_V0_FIELD_MOVES = (
    ("num_output", {"conv": ("convolution_param", "num_output", "set"),
                    "innerproduct": ("inner_product_param", "num_output", "set")}),
    ("biasterm", {"conv": ("convolution_param", "bias_term", "set"),
                  "innerproduct": ("inner_product_param", "bias_term", "set")}),
    ("weight_filler", {"conv": ("convolution_param", "weight_filler", "copy"),
                       "innerproduct": ("inner_product_param", "weight_filler", "copy")}),
    ("bias_filler", {"conv": ("convolution_param", "bias_filler", "copy"),
                     "innerproduct": ("inner_product_param", "bias_filler", "copy")}),
    ("pad", {"conv": ("convolution_param", "pad", "add"),
             "pool": ("pooling_param", "pad", "set")}),
    ("kernelsize", {"conv": ("convolution_param", "kernel_size", "add"),
                    "pool": ("pooling_param", "kernel_size", "set")}),
    ("group", {"conv": ("convolution_param", "group", "set")}),
    ("stride", {"conv": ("convolution_param", "stride", "add"),
                "pool": ("pooling_param", "stride", "set")}),
    ("pool", {"pool": ("pooling_param", "pool", "set")}),  # same enum numbers
    ("dropout_ratio", {"dropout": ("dropout_param", "dropout_ratio", "set")}),
    ("local_size", {"lrn": ("lrn_param", "local_size", "set")}),
    ("alpha", {"lrn": ("lrn_param", "alpha", "set")}),
    ("beta", {"lrn": ("lrn_param", "beta", "set")}),
    ("k", {"lrn": ("lrn_param", "k", "set")}),
    ("source", {"data": ("data_param", "source", "set"),
                "hdf5_data": ("hdf5_data_param", "source", "set"),
                "images": ("image_data_param", "source", "set"),
                "window_data": ("window_data_param", "source", "set"),
                "infogain_loss": ("infogain_loss_param", "source", "set")}),
    ("scale", {"*": ("transform_param", "scale", "set")}),
    ("meanfile", {"*": ("transform_param", "mean_file", "set")}),
    ("batchsize", {"data": ("data_param", "batch_size", "set"),
                   "hdf5_data": ("hdf5_data_param", "batch_size", "set"),
                   "images": ("image_data_param", "batch_size", "set"),
                   "window_data": ("window_data_param", "batch_size", "set")}),
    ("cropsize", {"*": ("transform_param", "crop_size", "set")}),
    ("mirror", {"*": ("transform_param", "mirror", "set")}),
    ("rand_skip", {"data": ("data_param", "rand_skip", "set"),
                   "images": ("image_data_param", "rand_skip", "set")}),
    ("shuffle_images", {"images": ("image_data_param", "shuffle", "set")}),
    ("new_height", {"images": ("image_data_param", "new_height", "set")}),
    ("new_width", {"images": ("image_data_param", "new_width", "set")}),
    ("concat_dim", {"concat": ("concat_param", "concat_dim", "set")}),
    ("det_fg_threshold", {"window_data": ("window_data_param", "fg_threshold", "set")}),
    ("det_bg_threshold", {"window_data": ("window_data_param", "bg_threshold", "set")}),
    ("det_fg_fraction", {"window_data": ("window_data_param", "fg_fraction", "set")}),
    ("det_context_pad", {"window_data": ("window_data_param", "context_pad", "set")}),
    ("det_crop_mode", {"window_data": ("window_data_param", "crop_mode", "set")}),
    ("hdf5_output_param", {"hdf5_output": ("hdf5_output_param", None, "copy")}),
)

# V1 data layers whose transformation fields moved into transform_param.
_DATA_LAYER_PARAMS = {_V1.DATA: "data_param", _V1.IMAGE_DATA: "image_data_param",
                      _V1.WINDOW_DATA: "window_data_param"}
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")

# Every typed parameter message of V1LayerParameter has a namesake in LayerParameter.
_V1_PARAM_FIELDS = tuple(f.name for f in _V1.DESCRIPTOR.fields if f.name.endswith("_param"))

SOLVER_TYPES = {0: "SGD", 1: "Nesterov", 2: "AdaGrad", 3: "RMSProp", 4: "AdaDelta", 5: "Adam"}


# ----------------------------------------------------------------------------------- tests

def _needs_v0_upgrade(net):
    return any(layer.HasField("layer") for layer in net.layers)


def _needs_v1_upgrade(net):
    return len(net.layers) > 0


def _needs_data_upgrade(net):
    for layer in net.layers:
        field = _DATA_LAYER_PARAMS.get(layer.type)
        if field and any(getattr(layer, field).HasField(f) for f in _TRANSFORM_FIELDS):
            return True
    return False


def _needs_input_upgrade(net):
    return len(net.input) > 0


def _needs_batch_norm_upgrade(net):
    return any(layer.type == "BatchNorm" and len(layer.param) == 3 for layer in net.layer)


def net_needs_upgrade(net):
    """Whether ``net`` (a ``NetParameter``) uses any format :func:`upgrade_net` rewrites."""
    return (_needs_v0_upgrade(net) or _needs_v1_upgrade(net) or _needs_data_upgrade(net)
            or _needs_input_upgrade(net) or _needs_batch_norm_upgrade(net))


def solver_needs_upgrade(solver):
    """Whether ``solver`` (a ``SolverParameter``) still names its type with the old enum."""
    return solver.HasField("solver_type")


# ------------------------------------------------------------------------------------ nets

def upgrade_net(net, path="<net>", problems=None):
    """An upgraded copy of ``net`` (a ``NetParameter``); ``path`` names it in messages.

    Raises :class:`UpgradeError` where Caffe aborts (an unknown V0 type, a padding layer that
    feeds neither a conv nor a pool layer, a net with both ``layer`` and ``layers``, input shapes
    missing for some inputs)."""
    report = _Report(path, problems)
    net = _copy(net)
    if _needs_v0_upgrade(net):
        log.info("%s: upgrading V0 layers (layers { layer { ... } })", path)
        net = _upgrade_v0_net(net, report)
    if _needs_data_upgrade(net):
        log.info("%s: moving data transformation fields into transform_param", path)
        _upgrade_data_transformation(net)
    if _needs_v1_upgrade(net):
        log.info("%s: upgrading V1 layers (layers { type: ENUM ... }) to layer {}", path)
        net = _upgrade_v1_net(net, report)
    if _needs_input_upgrade(net):
        log.info("%s: turning input / input_dim / input_shape into an Input layer", path)
        _upgrade_input(net, report)
    if _needs_batch_norm_upgrade(net):
        log.info("%s: fixing lr_mult / decay_mult of BatchNorm layers to 0", path)
        _upgrade_batch_norm(net)
    return net


class _Report:
    """Collects Caffe's non-fatal upgrade complaints."""

    def __init__(self, path, problems):
        self.path = path
        self.problems = problems

    def problem(self, text):
        log.warning("%s: %s", self.path, text)
        if self.problems is not None:
            self.problems.append(text)

    def fail(self, text):
        raise UpgradeError(f"{self.path}: {text}", self.path)


def _copy(message):
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _layer_label(index, name):
    return f"layer {index} ('{name}')" if name else f"layer {index}"


def _upgrade_v0_net(net, report):
    padded = _fold_padding_layers(net, report)
    out = type(net)()
    if padded.HasField("name"):
        out.name = padded.name
    for index, connection in enumerate(padded.layers):
        _upgrade_v0_layer(connection, out.layers.add(), index, report)
    out.input.extend(padded.input)
    out.input_dim.extend(padded.input_dim)
    if padded.HasField("force_backward"):
        out.force_backward = padded.force_backward
    return out


def _fold_padding_layers(net, report):
    """Drop V0 "padding" layers, giving their pad to the conv / pool layer they feed."""
    out = _copy(net)
    del out.layers[:]
    last_producer = {name: -1 for name in net.input}  # blob -> index of the layer writing it
    for index, connection in enumerate(net.layers):
        v0 = connection.layer
        if v0.type != "padding":
            out.layers.add().CopyFrom(connection)
        for j, blob in enumerate(connection.bottom):
            if blob not in last_producer:
                report.fail(f"{_layer_label(index, v0.name)} reads blob '{blob}', which no "
                            "earlier layer or net input produces")
            producer = last_producer[blob]
            if producer == -1:
                continue
            source = net.layers[producer]
            if source.layer.type != "padding":
                continue
            label = _layer_label(index, v0.name)
            if v0.type not in ("conv", "pool"):
                report.fail(f"{label}: a padding layer can feed only a conv or pool layer, "
                            f"not type '{v0.type}'")
            if len(connection.bottom) != 1:
                report.fail(f"{label}: a layer fed by a padding layer must have one bottom")
            if len(source.bottom) != 1 or len(source.top) != 1:
                report.fail(f"padding layer '{source.layer.name}' must have one bottom and one top")
            target = out.layers[len(out.layers) - 1]
            target.layer.pad = source.layer.pad
            target.bottom[j] = source.bottom[0]
        for blob in connection.top:
            last_producer[blob] = index
    return out


def _upgrade_v0_layer(connection, layer, index, report):
    """One V0 ``layers { layer { ... } bottom top }`` -> a V1 layer (UpgradeV0LayerParameter)."""
    layer.bottom.extend(connection.bottom)
    layer.top.extend(connection.top)
    if not connection.HasField("layer"):
        return
    v0 = connection.layer
    if v0.HasField("name"):
        layer.name = v0.name
    kind = v0.type
    if v0.HasField("type"):
        if kind not in V0_LAYER_TYPES:
            report.fail(f"{_layer_label(index, v0.name)}: unknown V0 layer type '{kind}' "
                        f"(known: {', '.join(sorted(V0_LAYER_TYPES))})")
        layer.type = V0_LAYER_TYPES[kind]
    for blob in v0.blobs:
        layer.blobs.add().CopyFrom(blob)
    layer.blobs_lr.extend(v0.blobs_lr)
    layer.weight_decay.extend(v0.weight_decay)
    for v0_field, targets in _V0_FIELD_MOVES:
        if not v0.HasField(v0_field):
            continue
        target = targets.get(kind, targets.get("*"))
        if target is None:
            report.problem(f"{_layer_label(index, v0.name)}: V0 parameter {v0_field} has no "
                           f"meaning for layer type '{kind}'; dropped")
            continue
        param_name, field, how = target
        value = getattr(v0, v0_field)
        param = getattr(layer, param_name)
        if field is None:
            param.CopyFrom(value)
        elif how == "copy":
            getattr(param, field).CopyFrom(value)
        elif how == "add":
            getattr(param, field).append(value)
        else:
            setattr(param, field, value)


def _upgrade_data_transformation(net):
    # As Caffe's CONVERT_LAYER_TRANSFORM_PARAM: every data layer of these types gets its typed
    # param and a transform_param marked present, even when nothing moves.
    for layer in net.layers:
        field = _DATA_LAYER_PARAMS.get(layer.type)
        if field is None:
            continue
        param = getattr(layer, field)
        param.SetInParent()
        layer.transform_param.SetInParent()
        for name in _TRANSFORM_FIELDS:
            if param.HasField(name):
                setattr(layer.transform_param, name, getattr(param, name))
                param.ClearField(name)


def _upgrade_v1_net(net, report):
    if len(net.layer) > 0:
        report.fail("the net has both `layer {}` (current) and `layers {}` (V1) entries; Caffe "
                    "refuses to upgrade a mix: rewrite the `layers { type: ENUM }` entries as "
                    "`layer { type: \"String\" }` (or upgrade them on their own first)")
    out = _copy(net)
    out.ClearField("layers")
    out.ClearField("layer")
    for index, v1 in enumerate(net.layers):
        _upgrade_v1_layer(v1, out.layer.add(), index, report)
    return out


def _param_spec(layer, index):
    while len(layer.param) <= index:
        layer.param.add()
    return layer.param[index]


def _upgrade_v1_layer(v1, layer, index, report):
    """One V1 ``layers {}`` -> a current ``layer {}`` (UpgradeV1LayerParameter)."""
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    if v1.HasField("name"):
        layer.name = v1.name
    for rule in v1.include:
        layer.include.add().CopyFrom(rule)
    for rule in v1.exclude:
        layer.exclude.add().CopyFrom(rule)
    if v1.HasField("type"):
        if v1.type not in V1_LAYER_TYPES:
            report.fail(f"{_layer_label(index, v1.name)}: unknown V1 layer type {v1.type}")
        layer.type = V1_LAYER_TYPES[v1.type]
    for blob in v1.blobs:
        layer.blobs.add().CopyFrom(blob)
    for i, name in enumerate(v1.param):
        _param_spec(layer, i).name = name
    for i, mode in enumerate(v1.blob_share_mode):
        _param_spec(layer, i).share_mode = mode  # STRICT / PERMISSIVE: same numbers
    for i, lr in enumerate(v1.blobs_lr):
        _param_spec(layer, i).lr_mult = lr
    for i, decay in enumerate(v1.weight_decay):
        _param_spec(layer, i).decay_mult = decay
    layer.loss_weight.extend(v1.loss_weight)
    for name in _V1_PARAM_FIELDS:
        if v1.HasField(name):
            getattr(layer, name).CopyFrom(getattr(v1, name))
    if v1.HasField("layer"):
        report.problem(f"{_layer_label(index, v1.name)}: a V0 `layer {{}}` inside a V1 layer "
                       "is ignored")


def _upgrade_input(net, report):
    """``input`` + ``input_shape`` / ``input_dim`` -> an Input layer first (UpgradeNetInput)."""
    has_shape, has_dim = len(net.input_shape) > 0, len(net.input_dim) > 0
    if has_shape or has_dim:
        n = len(net.input)
        if has_shape and len(net.input_shape) < n:
            report.fail(f"{n} net inputs but only {len(net.input_shape)} input_shape entries")
        if not has_shape and len(net.input_dim) < 4 * n:
            report.fail(f"{n} net inputs need {4 * n} input_dim values (4 each), "
                        f"found {len(net.input_dim)}")
        kept = [_copy(layer) for layer in net.layer]
        net.ClearField("layer")
        input_layer = net.layer.add()
        input_layer.name = "input"
        input_layer.type = "Input"
        input_layer.input_param.SetInParent()
        for i, blob in enumerate(net.input):
            input_layer.top.append(blob)
            shape = input_layer.input_param.shape.add()
            if has_shape:
                shape.CopyFrom(net.input_shape[i])
            else:
                shape.dim.extend(net.input_dim[4 * i:4 * i + 4])
        for layer in kept:
            net.layer.add().CopyFrom(layer)
    net.ClearField("input")
    net.ClearField("input_shape")
    net.ClearField("input_dim")


def _upgrade_batch_norm(net):
    for layer in net.layer:
        if layer.type == "BatchNorm" and len(layer.param) == 3:
            for spec in layer.param:
                spec.lr_mult = 0.0
                spec.decay_mult = 0.0


# --------------------------------------------------------------------------------- solvers

def upgrade_solver(solver, path="<solver>", problems=None):
    """An upgraded copy of ``solver``: ``solver_type: NESTEROV`` -> ``type: "Nesterov"``.

    Raises :class:`UpgradeError` when both ``solver_type`` and ``type`` are given, as Caffe."""
    report = _Report(path, problems)
    if solver.HasField("solver_type") and solver.HasField("type"):
        report.fail(f"both solver_type ({SOLVER_TYPES.get(solver.solver_type, solver.solver_type)}"
                    f", old enum) and type (\"{solver.type}\") are given; keep only type")
    out = _copy(solver)
    if not out.HasField("solver_type"):
        return out
    log.info("%s: upgrading solver_type (enum) to type (string)", path)
    if out.solver_type not in SOLVER_TYPES:
        report.fail(f"unknown solver_type {out.solver_type}")
    out.type = SOLVER_TYPES[out.solver_type]
    out.ClearField("solver_type")
    return out


def upgrade_snapshot_prefix(solver, path):
    """``solver`` with Caffe's snapshot-prefix rule applied (UpgradeSnapshotPrefixProperty).

    Unset: the solver file's path without its extension. An existing directory: that directory
    joined with the solver file's stem. The message is changed in place and returned."""
    path = os.fspath(path)
    if not solver.HasField("snapshot_prefix"):
        solver.snapshot_prefix = os.path.splitext(path)[0]
        log.info("snapshot_prefix was not specified and is set to %s", solver.snapshot_prefix)
    elif os.path.isdir(solver.snapshot_prefix):
        stem = os.path.splitext(os.path.basename(path))[0]
        solver.snapshot_prefix = os.path.join(solver.snapshot_prefix, stem)
        log.info("snapshot_prefix was a directory and is replaced by %s", solver.snapshot_prefix)
    return solver
