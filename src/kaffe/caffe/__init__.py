"""Caffe in kaffe: ``import kaffe.caffe as caffe``.

So far: the schema (``caffe.proto.caffe_pb2``, BVLC's messages), prototxt reading with Caffe's
upgrades of old formats, and ``.caffemodel`` / ``.binaryproto`` / ``.solverstate`` files.
"""
from kaffe.caffe.proto import caffe_pb2
from kaffe.caffe.prototxt import (CaffeFormatError, PrototxtError, parse_net_param,
                                  parse_solver_param, read_net_param, read_solver_param,
                                  write_prototxt)
from kaffe.caffe.upgrade import (UpgradeError, net_needs_upgrade, solver_needs_upgrade,
                                 upgrade_net, upgrade_solver)
from kaffe.caffe.blobs import (SolverSnapshot, array_to_blob, blob_to_array, fit_blob_shape,
                               load_blobproto, load_caffemodel, load_solverstate, read_caffemodel,
                               save_blobproto, save_caffemodel, save_solverstate, write_caffemodel)
from kaffe.caffe.net import TEST, TRAIN, Net
from kaffe.caffe import io
from kaffe.caffe.classifier import Classifier
from kaffe.caffe.bridge import load_model
from kaffe.export.caffe_onnx import export_caffe_onnx as export_onnx
from kaffe.caffe.solver import (AdaDeltaSolver, AdaGradSolver, AdamSolver, NesterovSolver,
                                 RMSPropSolver, SGDSolver, Solver, SolverError, get_solver)
from kaffe.caffe.export import ExportError, export
from kaffe.caffe import net_spec, coord_map
from kaffe.caffe.net_spec import NetSpec, to_proto
from kaffe.caffe.net_spec import layers, params  # pycaffe's L and P
from kaffe.caffe.python_layer import Layer
from kaffe.caffe.pyblob import Blob
from kaffe.caffe.detector import Detector
from kaffe.caffe.runtime import (Timer, has_nccl, layer_type_list, set_device, set_mode_cpu,
                                 set_mode_gpu, set_random_seed)
