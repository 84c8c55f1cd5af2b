"""Reading and writing Caffe's text files (``.prototxt``): nets and solvers.

Text is parsed with protobuf's own ``text_format`` against kaffe's ``caffe.proto`` (BVLC's
messages and field numbers), so whatever real Caffe reads, kaffe reads. Readers follow Caffe's
``ReadNetParamsFromTextFileOrDie`` / ``ReadSolverParamsFromTextFileOrDie``: parse, then upgrade old
formats (see ``upgrade.py``). A file that does not parse raises :class:`PrototxtError`, naming
the file, line and column (1-based, pointing at the offending token) with the line and a caret.

    >>> from kaffe.caffe.prototxt import parse_net_param
    >>> net = parse_net_param('name: "tiny" layer { name: "ip" type: "InnerProduct" }')
    >>> net.layer[0].type
    'InnerProduct'
"""
import difflib
import logging
import math
import os
import re

import numpy as np
from google.protobuf import text_encoding, text_format
from google.protobuf.descriptor import FieldDescriptor as _FD

from kaffe.caffe.proto import caffe_pb2
from kaffe.saving.keras_file import atomic_write

log = logging.getLogger("kaffe")

__all__ = ["CaffeFormatError", "PrototxtError", "parse_prototxt", "read_prototxt",
           "parse_net_param", "read_net_param", "parse_solver_param", "read_solver_param",
           "format_prototxt", "write_prototxt", "write_bytes_atomically"]


class CaffeFormatError(ValueError):
    """A Caffe file (prototxt, caffemodel, binaryproto, solverstate) that kaffe cannot use.

    ``path`` names the file (or ``'<string>'``)."""

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = path


class PrototxtError(CaffeFormatError):
    """A prototxt that does not parse; ``line`` and ``column`` are 1-based (0 when unknown)."""

    def __init__(self, message, path=None, line=0, column=0):
        super().__init__(message, path)
        self.line = line
        self.column = column


# Fields people carry over from the old `layers {}` format or from the Keras side, with the fix.
_FIELD_HINTS = {
    "blobs_lr": "blobs_lr belongs to the old V1 `layers {}` format; in `layer {}` write "
                "`param { lr_mult: ... }` (one per blob)",
    "weight_decay": "in a `layer {}`, per-blob decay is `param { decay_mult: ... }`; the global "
                    "weight_decay belongs in the solver",
}
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[^\s{}:;,\[\]<>]+')


def _describe_parse_error(err, text, path, message_type):
    """Turn protobuf's ParseError into a PrototxtError with the line, a caret and a hint."""
    line_no, column = err.GetLine(), err.GetColumn()
    lines = text.split("\n")
    source = lines[line_no - 1].rstrip("\r") if 0 < line_no <= len(lines) else ""
    # Drop protobuf's "L:C : " prefix and its quoted copy of the line; we show the line below.
    detail = re.sub(r"^\d+:\d+ : ", "", str(err))
    if source and detail.startswith(f"'{source}': "):
        detail = detail[len(source) + 4:]
    message = f"{path}:{line_no}:{column}: cannot read {message_type}: {detail}"
    hints = _hints(detail, source, max(column - 1, 0))
    if hints:
        message += " (" + "; ".join(hints) + ")"
    if source:
        message += f"\n    {source}\n    {' ' * max(column - 1, 0)}^"
    return PrototxtError(message, path, line_no, column)


def _hints(detail, source, offset):
    """What the user probably meant, from the error text and the line around ``offset``."""
    hints = []
    token_match = _TOKEN.match(source, offset) if source else None
    token = token_match.group(0) if token_match else ""
    field = re.search(r"(\w+)\s*:\s*$", source[:offset])
    field = field.group(1) if field else None
    if field and f'"{field}"' not in detail:
        hints.append(f'field "{field}"' + (f", value {token}" if token else ""))
    unknown = re.search(r'Message type "([\w.]+)" has no field named "(\w+)"', detail)
    if unknown:
        name = unknown.group(2)
        close = difflib.get_close_matches(name, _field_names(unknown.group(1)), n=3)
        if name in _FIELD_HINTS:
            hints.append(_FIELD_HINTS[name])
        elif close:
            hints.append("did you mean " + " or ".join(close) + "?")
    if field == "type" and token in caffe_pb2.V1LayerParameter.LayerType.keys():
        from kaffe.caffe.upgrade import V1_LAYER_TYPES
        new = V1_LAYER_TYPES[caffe_pb2.V1LayerParameter.LayerType.Value(token)]
        hints.append(f'{token} is a V1 `layers {{}}` type; in `layer {{}}` write type: "{new}"')
    if token.startswith("/"):
        hints.append("prototxt comments start with '#', not '//'")
    return hints


def _field_names(full_name):
    try:
        descriptor = caffe_pb2.DESCRIPTOR.pool.FindMessageTypeByName(full_name)
    except KeyError:
        return []
    return [f.name for f in descriptor.fields]


def parse_prototxt(text, message, path="<string>"):
    """Parse protobuf text into ``message`` (cleared first) and return it.

    ``text`` is ``str`` or UTF-8 ``bytes``; ``path`` only names the source in errors. Raises
    :class:`PrototxtError` (file:line:column) on a syntax error, an unknown field or enum value,
    or a singular field given twice, as Caffe's parser does."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            line = bytes(text).count(b"\n", 0, err.start) + 1
            raise PrototxtError(f"{path}:{line}: not UTF-8 text (byte {err.start}): {err.reason}",
                                path, line) from None
    name = message.DESCRIPTOR.full_name
    message.Clear()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as err:
        raise _describe_parse_error(err, text, path, name) from None
    except (ValueError, TypeError, RecursionError) as err:  # protobuf's own range/limit checks
        raise PrototxtError(f"{path}: cannot read {name}: {err}", path) from None
    return message


def read_prototxt(path, message):
    """Read the text file ``path`` into ``message``; see :func:`parse_prototxt`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise CaffeFormatError(f"{path}: cannot open: {err.strerror}", path) from None
    return parse_prototxt(data, message, path)


def parse_net_param(text, path="<string>", upgrade=True):
    """A ``NetParameter`` from prototxt text, upgraded from V0/V1 as Caffe does when ``upgrade``."""
    net = parse_prototxt(text, caffe_pb2.NetParameter(), path)
    return _upgraded_net(net, path) if upgrade else net


def read_net_param(path, upgrade=True):
    """A ``NetParameter`` from a ``.prototxt`` file (Caffe's ReadNetParamsFromTextFileOrDie)."""
    path = os.fspath(path)
    net = read_prototxt(path, caffe_pb2.NetParameter())
    return _upgraded_net(net, path) if upgrade else net


def _upgraded_net(net, path):
    from kaffe.caffe import upgrade
    if upgrade.net_needs_upgrade(net):
        net = upgrade.upgrade_net(net, path)
    return net


def parse_solver_param(text, path="<string>", upgrade=True):
    """A ``SolverParameter`` from text, with the ``solver_type`` enum upgraded when ``upgrade``."""
    solver = parse_prototxt(text, caffe_pb2.SolverParameter(), path)
    return _upgraded_solver(solver, path) if upgrade else solver


def read_solver_param(path, upgrade=True):
    """A ``SolverParameter`` from a file, as Caffe's ReadSolverParamsFromTextFileOrDie gives it.

    With ``upgrade``: the ``solver_type`` enum becomes ``type``, and a missing
    ``snapshot_prefix`` becomes the solver's path without its extension (an existing directory
    gets the solver file's stem appended), as ``caffe train`` does."""
    from kaffe.caffe import upgrade as _upgrade
    path = os.fspath(path)
    solver = read_prototxt(path, caffe_pb2.SolverParameter())
    if upgrade:
        solver = _upgraded_solver(solver, path)
        _upgrade.upgrade_snapshot_prefix(solver, path)
    return solver


def _upgraded_solver(solver, path):
    from kaffe.caffe import upgrade
    if upgrade.solver_needs_upgrade(solver):
        solver = upgrade.upgrade_solver(solver, path)
    return solver


def write_bytes_atomically(path, data):
    """Write ``data`` to ``path`` through a temporary file renamed over it (mode 0644)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
    atomic_write(path, write)


def _format_float(value, digits, fallback_digits, same):
    # C++ protobuf's SimpleFtoa / SimpleDtoa: %g with FLT_DIG (DBL_DIG) digits, more when that
    # does not read back as the same number.
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = "%.*g" % (digits, value)
    return text if same(float(text), value) else "%.*g" % (fallback_digits, value)


def _format_scalar(field, value):
    kind = field.cpp_type
    if kind == _FD.CPPTYPE_ENUM:
        enum = field.enum_type.values_by_number.get(value)
        return enum.name if enum is not None else str(value)
    if kind == _FD.CPPTYPE_STRING:
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        return '"' + text_encoding.CEscape(raw, False) + '"'
    if kind == _FD.CPPTYPE_BOOL:
        return "true" if value else "false"
    if kind == _FD.CPPTYPE_FLOAT:
        return _format_float(value, 6, 9, lambda a, b: np.float32(a) == np.float32(b))
    if kind == _FD.CPPTYPE_DOUBLE:
        return _format_float(value, 15, 17, lambda a, b: a == b)
    return str(value)


def format_prototxt(message):
    """``message`` as protobuf text laid out exactly as Caffe's C++ ``TextFormat::Print`` writes
    it (field-number order, two-space indent, floats as ``1`` / ``0.001`` / ``1e-08``)."""
    out = []

    def emit(msg, pad):
        for field, value in msg.ListFields():
            for item in (value if field.is_repeated else (value,)):
                if field.cpp_type == _FD.CPPTYPE_MESSAGE:
                    out.append(f"{pad}{field.name} {{\n")
                    emit(item, pad + "  ")
                    out.append(f"{pad}}}\n")
                else:
                    out.append(f"{pad}{field.name}: {_format_scalar(field, item)}\n")
    emit(message, "")
    return "".join(out)


def write_prototxt(message, path):
    """Write ``message`` as Caffe writes prototxt (:func:`format_prototxt`), atomically."""
    write_bytes_atomically(path, format_prototxt(message).encode("utf-8"))
