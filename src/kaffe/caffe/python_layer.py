"""Python layers (``type: "Python"``): ``caffe.Layer``, the base class users derive from, and
the lookup of ``python_param { module layer }``.

As in Caffe, a prototxt that names a module runs that module's code when the net is built:
only build nets from prototxt files you trust. The module is imported from ``sys.path``, to
which the working directory and the entries of ``PYTHONPATH`` are added first (what Caffe's
tools do, so ``kaffe train`` finds a layer module next to the solver it is run beside).
"""
import importlib
import logging
import os
import sys

from kaffe.caffe.pyblob import BlobVec

log = logging.getLogger("kaffe.caffe")

__all__ = ["Layer", "PythonLayerError", "load_layer_class"]


class PythonLayerError(ImportError, ValueError):
    """A ``type: "Python"`` layer whose module cannot be imported or lacks the class."""


class Layer:
    """pycaffe's ``caffe.Layer``. Override ``setup(bottom, top)`` (check parameters, read
    ``self.param_str``), ``reshape(bottom, top)`` (call ``top[i].reshape(...)``),
    ``forward(bottom, top)`` (write ``top[i].data``) and ``backward(top, propagate_down,
    bottom)`` (write ``bottom[i].diff`` where ``propagate_down[i]``). ``bottom`` and ``top`` are
    lists of :class:`kaffe.caffe.pyblob.Blob`; ``self.blobs`` holds learnable blobs
    (``self.blobs.add_blob(*shape)``), ``self.phase`` is ``caffe.TRAIN`` or ``caffe.TEST``."""

    type = "Python"

    def __init__(self, param=None):
        self.layer_param = param
        self.param_str = param.python_param.param_str if param is not None else ""
        self.phase = 0
        self.blobs = BlobVec([])

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass


def _extend_path():
    """Put the working directory and ``PYTHONPATH``'s entries on ``sys.path`` (once each)."""
    extra = [os.getcwd()] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for entry in extra:
        if entry not in sys.path:
            sys.path.append(entry)


def load_layer_class(param):
    """The class ``python_param.layer`` of module ``python_param.module`` for layer ``param``;
    a clear :class:`PythonLayerError` naming the module, the class and ``sys.path`` otherwise."""
    spec = param.python_param
    where = f"Python layer '{param.name}'"
    if not spec.module or not spec.layer:
        raise PythonLayerError(f"{where} needs python_param {{ module: ... layer: ... }}; "
                               f"received module={spec.module!r}, layer={spec.layer!r}.")
    _extend_path()
    try:
        module = importlib.import_module(spec.module)
    except ImportError as err:
        raise PythonLayerError(
            f"{where}: cannot import module '{spec.module}' (for class '{spec.layer}'): {err}. "
            f"Searched sys.path = {sys.path}. Put the module's directory on PYTHONPATH or run "
            f"from it.") from err
    cls = getattr(module, spec.layer, None)
    if cls is None:
        raise PythonLayerError(
            f"{where}: module '{spec.module}' ({getattr(module, '__file__', '?')}) has no class "
            f"'{spec.layer}'. sys.path = {sys.path}.")
    log.info("Python layer '%s': imported module '%s' from %s (class %s)", param.name,
             spec.module, getattr(module, "__file__", "?"), spec.layer)
    return cls
