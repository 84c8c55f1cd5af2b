"""kaffe: Keras scripts and Caffe nets on one PyTorch engine."""
__version__ = "0.1.0"

from kaffe.engine.functional import Functional
from kaffe.engine.input_layer import Input
from kaffe.engine.model import Model
from kaffe.engine.sequential import Sequential
from kaffe import (activations, backend, callbacks, config, constraints, datasets, initializers,
                   layers, losses, metrics, mixed_precision, models, ops, optimizers,
                   preprocessing, pretraining, random, regularizers, schedules, text, utils)
# Keras 3's top-level names for its base classes and helpers (keras.Layer, keras.Variable, ...)
from kaffe.engine.input_spec import InputSpec
from kaffe.engine.keras_tensor import KerasTensor
from kaffe.engine.layer import Layer
from kaffe.engine.operation import Operation
from kaffe.initializers import Initializer
from kaffe.losses import Loss
from kaffe.metrics import Metric
from kaffe.mixed_precision import Policy as DTypePolicy, Policy as FloatDTypePolicy
from kaffe.optimizers import Optimizer
from kaffe.regularizers import Regularizer
from kaffe.toplevel import Variable, device, name_scope, version
