"""The ``kaffe`` command. Sub-commands live in a table so later ones (``train``, ``test``,
``time``, ``run`` ...) are one entry each."""
import argparse
import sys

from kaffe.cli import caffe_data_tools as _data_tools
from kaffe.cli import caffe_draw as _caffe_draw
from kaffe.cli import caffe_time as _caffe_time
from kaffe.cli import caffe_train as _caffe_train
from kaffe.cli import caffe_tools as _caffe_tools
from kaffe.cli import export as _export
from kaffe.cli import run as _run


def _version(args):
    import torch

    import kaffe
    print(f"kaffe {kaffe.__version__} (torch {torch.__version__}, "
          f"{'CUDA ' + torch.version.cuda if torch.cuda.is_available() else 'CPU'})")
    return 0


def _summary(args):
    from kaffe.models import load_model
    model = load_model(args.model, compile=False)
    model.summary()
    return 0


COMMANDS = {
    "version": (_version, "print kaffe's and torch's versions", []),
    "summary": (_summary, "print the summary() of a saved model (.keras / .h5)",
                [("model", {"help": "path of a .keras or .h5 model file"})]),
    "run": (_run.command, "run an unedited Keras script: its keras / tensorflow.keras imports "
            "are served by kaffe", _run.ARGUMENTS),
    "upgrade_net_proto_text": (_caffe_tools.upgrade_net_proto_text, "upgrade a V0/V1 Caffe net "
                               "prototxt to the current format", _caffe_tools.IN_OUT),
    "upgrade_net_proto_binary": (_caffe_tools.upgrade_net_proto_binary, "upgrade a V0/V1 "
                                 ".caffemodel to the current format", _caffe_tools.IN_OUT),
    "upgrade_solver_proto_text": (_caffe_tools.upgrade_solver_proto_text, "upgrade a solver "
                                  "prototxt's solver_type enum to type", _caffe_tools.IN_OUT),
    "draw_net": (_caffe_draw.command, "draw a net prototxt as an image (graphviz), as Caffe's "
                 "draw_net.py", _caffe_draw.ARGUMENTS),
    "time": (_caffe_time.command, "caffe time: per-layer forward/backward times of a net "
             "prototxt (-model net.prototxt -iterations N)", _caffe_time.ARGUMENTS),
    "convert_mnist_data": (_data_tools.convert_mnist_data, "MNIST IDX files -> LMDB/LevelDB of "
                           "Datums", _data_tools.CONVERT_MNIST_ARGUMENTS),
    "convert_imageset": (_data_tools.convert_imageset, "image list -> LMDB/LevelDB of Datums",
                         _data_tools.CONVERT_IMAGESET_ARGUMENTS),
    "compute_image_mean": (_data_tools.compute_image_mean, "mean image of a database -> "
                           ".binaryproto", _data_tools.COMPUTE_MEAN_ARGUMENTS),
    "train": (_caffe_train.train, "caffe train: train a solver prototxt (-solver S [-weights W] "
              "[-snapshot S.solverstate])", _caffe_train.TRAIN_ARGUMENTS),
    "test": (_caffe_train.test, "caffe test: score a net's TEST phase (-model M -weights W "
             "-iterations N)", _caffe_train.TEST_ARGUMENTS),
    "device_query": (_caffe_train.device_query, "caffe device_query: describe the CUDA device",
                     _caffe_train.DEVICE_QUERY_ARGUMENTS),
    "extract_features": (_caffe_train.extract_features, "blobs of a net over its data -> "
                         "LMDB/LevelDB of Datums", _caffe_train.EXTRACT_ARGUMENTS),
    "export": (_export.command, "a .keras/.h5 model or a Caffe prototxt (+ .caffemodel) -> "
               "ONNX (SRC [WEIGHTS] OUT.onnx)", _export.ARGUMENTS),
    "parse_log": (_caffe_train.parse_log, "a Caffe/kaffe training log -> <log>.train/.test CSV "
                  "and a plot", _caffe_train.PARSE_LOG_ARGUMENTS),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="kaffe", description="Keras scripts and Caffe nets on PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text, arguments) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        for arg, options in arguments:
            command.add_argument(arg, **options)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return COMMANDS[args.command][0](args)


if __name__ == "__main__":
    sys.exit(main())
