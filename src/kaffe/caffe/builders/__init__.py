"""kaffe's implementations of Caffe's layer types (``caffe.layers`` is pycaffe's NetSpec factory).

Importing this package registers every builder in ``registry.LAYER_BUILDERS``.
"""
from kaffe.caffe.builders import (data, elementwise, extra, losses, recurrent,  # noqa: F401
                                  structure, vision, window_data)
