"""``kaffe run script.py [args]``: run an unedited Keras script on kaffe.

The script runs as ``python script.py args`` would run it (``sys.argv``, ``__name__ ==
'__main__'``, its folder first on ``sys.path``) while ``import keras``, ``keras.<...>``,
``tensorflow.keras.<...>``, ``import tensorflow`` and ``gensim.models`` are served by kaffe
(``kaffe.compat.kaffe_as_keras``), and NumPy's removed builtin aliases (``np.float``, ...)
resolve as they did under the NumPy of Keras 2's day (``kaffe.compat.numpy_aliases``). Afterwards ``sys.argv``, ``sys.path``, ``sys.meta_path`` and
the ``keras`` / ``tensorflow`` entries of ``sys.modules`` are as they were.
"""
import argparse
import os
import runpy
import sys
import traceback

import kaffe.compat
from kaffe.compat import kaffe_as_keras
from kaffe.compat.numpy_aliases import numpy_builtin_aliases

_COMPAT_DIR = os.path.dirname(os.path.abspath(kaffe.compat.__file__)) + os.sep

ARGUMENTS = [
    ("script", {"help": "path of the Keras (or gensim word2vec) script to run"}),
    ("args", {"nargs": argparse.REMAINDER, "help": "arguments passed on to the script (sys.argv[1:])"}),
]


def run_script(path, args=()):
    """Run the script at ``path`` as ``__main__`` with ``sys.argv = [path, *args]``.

    Returns the script's globals; whatever the script raises (``SystemExit`` included) is
    raised after the interpreter state is restored.
    """
    saved_argv, saved_path = sys.argv, sys.path[:]
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        with kaffe_as_keras(), numpy_builtin_aliases():
            return runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


def command(args):
    """The ``run`` sub-command: 0 when the script ends normally, 1 (and the traceback from
    the script's own frames on) when it raises; ``sys.exit`` in the script exits as it says."""
    if not os.path.exists(args.script):
        print(f"kaffe run: can't open file {args.script!r}: no such file", file=sys.stderr)
        return 2
    try:
        run_script(args.script, args.args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as error:
        _print_traceback(error, args.script)
        return 1
    return 0


def _print_traceback(error, script):
    """Print the traceback as ``python script.py`` would: from the script's first frame on
    (kaffe run's and runpy's frames are no news to the user), without the frames of the
    keras stand-in modules that raised a missing-name error."""
    target = os.path.abspath(script)
    tb = error.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != target:
        tb = tb.tb_next
    report = traceback.TracebackException(type(error), error, tb or error.__traceback__)
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack if not frame.filename.startswith(_COMPAT_DIR)])
    print("".join(report.format()), end="", file=sys.stderr)
    sys.stderr.flush()
