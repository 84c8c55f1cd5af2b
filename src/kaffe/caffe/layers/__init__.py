"""Caffe layers: importing this package registers every builder in ``registry.LAYER_BUILDERS``."""
import importlib.util

from kaffe.caffe.layers import elementwise, losses, structure  # noqa: F401
from kaffe.caffe.layers import recurrent  # noqa: F401
from kaffe.caffe.layers import data  # noqa: F401

# vision.py (Convolution, Pooling, ...) is written in parallel; import it once it exists.
if importlib.util.find_spec("kaffe.caffe.layers.vision") is not None:
    from kaffe.caffe.layers import vision  # noqa: F401
