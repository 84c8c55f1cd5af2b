"""kaffe: Keras scripts and Caffe nets on one PyTorch engine."""
__version__ = "0.1.0"

from kaffe.engine.functional import Functional
from kaffe.engine.input_layer import Input
from kaffe.engine.model import Model
from kaffe.engine.sequential import Sequential
from kaffe import (activations, backend, callbacks, config, constraints, datasets, initializers,
                   layers, losses, metrics, mixed_precision, models, ops, optimizers,
                   preprocessing, pretraining, random, regularizers, schedules, text, utils)
