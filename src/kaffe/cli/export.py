"""``kaffe export``: a Keras model file or a Caffe net to ONNX.

    kaffe export model.keras model.onnx                 (or model.h5)
    kaffe export deploy.prototxt weights.caffemodel model.onnx
    kaffe export deploy.prototxt model.onnx             (Caffe net with its fillers' weights)

``--static-batch`` fixes the batch size (Keras: 1; Caffe: the prototxt's) instead of leaving it
symbolic; ``--outputs a,b`` picks the Caffe blobs the graph returns.
"""
import os
import sys

ARGUMENTS = [
    ("paths", {"nargs": "+", "metavar": "PATH",
               "help": "SRC [WEIGHTS] OUT.onnx: a .keras/.h5 model file, or a Caffe prototxt "
                       "(and its .caffemodel), then the ONNX file to write"}),
    ("--static-batch", {"action": "store_true",
                        "help": "fix the batch size instead of making it a symbolic axis"}),
    ("--outputs", {"default": None,
                   "help": "Caffe only: comma-separated blob names the graph returns "
                           "(default: the net's unconsumed tops)"}),
]

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def command(args):
    from kaffe.export import OnnxExportError, export_caffe_onnx, export_model
    from kaffe.export.keras_onnx import load_keras_file
    paths = list(args.paths)
    if len(paths) not in (2, 3) or not paths[-1].endswith(".onnx"):
        print(f"kaffe export: expected SRC [WEIGHTS] OUT.onnx, received {' '.join(paths)}",
              file=sys.stderr)
        return 2
    source, out = paths[0], paths[-1]
    weights = paths[1] if len(paths) == 3 else None
    dynamic = not args.static_batch
    try:
        if source.endswith(KERAS_SUFFIXES) and not source.endswith(".caffemodel.h5"):
            if weights is not None:
                raise OnnxExportError(f"A Keras model file holds its weights; received an extra "
                                      f"path '{weights}'. Use: kaffe export {source} {out}")
            export_model(load_keras_file(source), out, dynamic_batch=dynamic)
        else:
            for path in (source, weights):
                if path is not None and not os.path.isfile(path):
                    raise OnnxExportError(f"No such file: '{path}'.")
            outputs = [o for o in args.outputs.split(",") if o] if args.outputs else None
            export_caffe_onnx(source, weights, out, outputs=outputs, dynamic_batch=dynamic)
    except (OnnxExportError, ValueError, OSError) as error:
        print(f"kaffe export: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0
