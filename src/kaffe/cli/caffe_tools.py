"""Caffe's format tools as ``kaffe`` sub-commands, with Caffe's arguments and exit statuses.

``kaffe upgrade_net_proto_text IN OUT``, ``kaffe upgrade_net_proto_binary IN OUT`` and
``kaffe upgrade_solver_proto_text IN OUT`` read an old-format net (prototxt / caffemodel) or
solver, upgrade it as Caffe does (``kaffe.caffe.upgrade``) and write the result atomically. As in
Caffe: a file already in the current format is written unchanged (with a note), the status is
0 on success, 1 when the upgrade reported problems (the file is still written) and 2 when the
input cannot be read.
"""
import sys

from kaffe.caffe import blobs, prototxt, upgrade
from kaffe.caffe.proto import caffe_pb2

IN_OUT = [
    ("input", {"help": "the old-format file to read"}),
    ("output", {"help": "where to write the upgraded file"}),
]


def _fail(tool, error):
    print(f"kaffe {tool}: {error}", file=sys.stderr)
    return 2


def _finish(tool, what, args, problems, needed):
    if not needed:
        print(f"kaffe {tool}: {args.input} is already in the latest format; copied unchanged",
              file=sys.stderr)
    if problems:
        print(f"kaffe {tool}: the upgrade reported {len(problems)} problem(s); see above",
              file=sys.stderr)
    print(f"Wrote upgraded {what} to {args.output}", file=sys.stderr)
    return 1 if problems else 0


def upgrade_net_proto_text(args):
    """``upgrade_net_proto_text IN OUT``: a V0/V1 (or input-field) net prototxt, upgraded."""
    tool, problems = "upgrade_net_proto_text", []
    try:
        net = prototxt.read_net_param(args.input, upgrade=False)
        needed = upgrade.net_needs_upgrade(net)
        if needed:
            net = upgrade.upgrade_net(net, args.input, problems)
        prototxt.write_prototxt(net, args.output)
    except (prototxt.CaffeFormatError, OSError) as error:
        return _fail(tool, error)
    return _finish(tool, "NetParameter text proto", args, problems, needed)


def upgrade_net_proto_binary(args):
    """``upgrade_net_proto_binary IN OUT``: a V0/V1 ``.caffemodel``, upgraded (blobs untouched)."""
    tool, problems = "upgrade_net_proto_binary", []
    try:
        net = blobs.read_caffemodel(args.input, upgrade=False, raw_blobs=True)
        needed = upgrade.net_needs_upgrade(net)
        if needed:
            net = upgrade.upgrade_net(net, args.input, problems)
        blobs.write_caffemodel(net, args.output)
    except (prototxt.CaffeFormatError, OSError) as error:
        return _fail(tool, error)
    return _finish(tool, "NetParameter binary proto", args, problems, needed)


def upgrade_solver_proto_text(args):
    """``upgrade_solver_proto_text IN OUT``: a solver's ``solver_type`` enum made a ``type``."""
    tool, problems = "upgrade_solver_proto_text", []
    try:
        solver = prototxt.read_prototxt(args.input, caffe_pb2.SolverParameter())
        needed = upgrade.solver_needs_upgrade(solver)
        if needed:
            solver = upgrade.upgrade_solver(solver, args.input, problems)
        prototxt.write_prototxt(solver, args.output)
    except (prototxt.CaffeFormatError, OSError) as error:
        return _fail(tool, error)
    return _finish(tool, "SolverParameter text proto", args, problems, needed)
