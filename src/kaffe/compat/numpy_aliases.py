"""NumPy's removed builtin aliases (``np.float``, ``np.int``, ...) for the script ``kaffe run`` runs.

Keras 2-era scripts write ``np.float`` / ``np.int`` / ``np.bool`` / ``np.object``: under the
NumPy those scripts ran with (< 1.24) these were the Python builtins. NumPy 1.24 removed them, so
an unedited script stops with ``AttributeError`` before it reaches any Keras code. Inside
``numpy_builtin_aliases()`` a missing-name lookup on ``numpy`` for one of these names returns the
builtin (as NumPy 1.23 did) and says so once on stderr; every other missing name still raises
NumPy's own error. On exit ``numpy`` is as it was: the aliases exist only for that run.
"""
import builtins
import contextlib
import sys

import numpy

# The names NumPy 1.20 deprecated and 1.24 removed -> the builtin they stood for.
REMOVED_ALIASES = {
    "float": builtins.float,
    "int": builtins.int,
    "bool": builtins.bool,
    "object": builtins.object,
    "str": builtins.str,
    "complex": builtins.complex,
    "long": builtins.int,
    "unicode": builtins.str,
}


@contextlib.contextmanager
def numpy_builtin_aliases(stream=None):
    """Within the block ``numpy.float`` etc. resolve to the builtins; a note goes to ``stream``
    (stderr by default) the first time one is used."""
    module_dict = vars(numpy)
    missing = object()
    saved = module_dict.get("__getattr__", missing)
    numpy_getattr = None if saved is missing else saved
    said = []

    def __getattr__(name):
        if name in REMOVED_ALIASES:
            if not said:
                said.append(name)
                print(f"kaffe run: the script uses np.{name}, removed in NumPy 1.24; kaffe run "
                      f"serves NumPy's old builtin aliases (np.{name} is {name}) for this run only "
                      f"(write {name} to run without kaffe run).",
                      file=stream if stream is not None else sys.stderr, flush=True)
            return REMOVED_ALIASES[name]
        if numpy_getattr is not None:
            return numpy_getattr(name)
        raise AttributeError(f"module 'numpy' has no attribute {name!r}")

    module_dict["__getattr__"] = __getattr__
    try:
        yield
    finally:
        if saved is missing:
            module_dict.pop("__getattr__", None)
        else:
            module_dict["__getattr__"] = saved
