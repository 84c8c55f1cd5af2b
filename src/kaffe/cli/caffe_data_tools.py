"""``kaffe convert_mnist_data``, ``kaffe convert_imageset``, ``kaffe compute_image_mean``: Caffe's
data tools with Caffe's gflags spellings (``-backend lmdb``, ``--backend=lmdb``, ``-gray``,
``--gray=true``, ``--nogray``). They run :mod:`kaffe.caffe.tools`; exit status 0 on success, 1
when the input is unusable (the message names the file / line), 130 on Ctrl-C (no database is
left behind)."""
import argparse
import logging
import sys


def _value(name, **options):
    """``-name x``, ``--name x``, ``-name=x``, ``--name=x`` (same dest)."""
    return [(f"-{name}", dict(options, dest=name)), (f"--{name}", dict(options, dest=name))]


def _flag(name, help_text):
    """A gflags boolean: ``-name``, ``--name``, ``--name=true|false``, ``--noname``."""
    entries = [(f"-{name}", dict(action="store_true", dest=name, help=help_text)),
               (f"--{name}", dict(action="store_true", dest=name, help=argparse.SUPPRESS))]
    for dash in ("-", "--"):
        for text, value in (("true", True), ("1", True), ("false", False), ("0", False)):
            entries.append((f"{dash}{name}={text}", dict(
                action="store_const", const=value, dest=name, default=False,
                help=argparse.SUPPRESS)))
        entries.append((f"{dash}no{name}", dict(action="store_false", dest=name, default=False,
                                                help=argparse.SUPPRESS)))
    return entries


_BACKEND = _value("backend", default="lmdb", type=str.lower, choices=("lmdb", "leveldb"),
                  help="lmdb (default) or leveldb")

CONVERT_MNIST_ARGUMENTS = [
    ("images", {"help": "MNIST images IDX file (may be gzipped)"}),
    ("labels", {"help": "MNIST labels IDX file (may be gzipped)"}),
    ("db", {"help": "the database folder to create"}),
] + _BACKEND

CONVERT_IMAGESET_ARGUMENTS = [
    ("root", {"help": "ROOTFOLDER/ (joined to each listed path as written: keep the /)"}),
    ("listfile", {"help": "list file: one 'path label' per line"}),
    ("db", {"help": "the database folder to create"}),
] + (_flag("gray", "read images as grayscale") +
     _flag("shuffle", "shuffle the order of the lines") +
     _BACKEND +
     _value("resize_width", type=int, default=0, help="width to resize images to (0: keep)") +
     _value("resize_height", type=int, default=0, help="height to resize images to (0: keep)") +
     _flag("check_size", "check that all images have the same size") +
     _flag("encoded", "store the encoded image file bytes in the Datum") +
     _value("encode_type", default="", help="encode as this type ('png', 'jpg', ...)") +
     _flag("skip_missing", "leave out listed images that do not exist (with a warning) "
           "instead of stopping"))

COMPUTE_MEAN_ARGUMENTS = [
    ("db", {"help": "the database of images"}),
    ("output", {"nargs": "?", "default": None, "help": "the .binaryproto mean file to write"}),
] + _value("backend", default=None, type=str.lower, choices=("lmdb", "leveldb"),
           help="lmdb or leveldb (default: detected)")


def _logging():
    logger = logging.getLogger("kaffe")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _run(tool, work):
    _logging()
    try:
        work()
    except KeyboardInterrupt:
        print(f"kaffe {tool}: interrupted; no database was written", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:
        print(f"kaffe {tool}: {err}", file=sys.stderr)
        return 1
    return 0


def convert_mnist_data(args):
    from kaffe.caffe.tools import convert_mnist_data as tool
    return _run("convert_mnist_data", lambda: tool(args.images, args.labels, args.db,
                                                   backend=args.backend))


def convert_imageset(args):
    from kaffe.caffe.tools import convert_imageset as tool
    return _run("convert_imageset", lambda: tool(
        args.root, args.listfile, args.db, resize_height=args.resize_height,
        resize_width=args.resize_width, gray=args.gray, shuffle=args.shuffle,
        encoded=args.encoded, encode_type=args.encode_type, backend=args.backend,
        check_size=args.check_size, skip_missing=args.skip_missing))


def compute_image_mean(args):
    from kaffe.caffe.tools import compute_image_mean as tool
    return _run("compute_image_mean", lambda: tool(args.db, args.output, backend=args.backend))
