"""The Keras layer zoo (``kaffe.layers.Dense`` ...), one family per module."""
from kaffe.engine.input_layer import Input, InputLayer
from kaffe.engine.layer import Layer
from kaffe.layers.core import (Activation, Dense, Dropout, Flatten, Lambda, Permute, RepeatVector,
                               Reshape, TorchModuleWrapper)
from kaffe.layers.embedding import Embedding
from kaffe.layers.merge import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                                Subtract, add, average, concatenate, dot, maximum, minimum,
                                multiply, subtract)
from kaffe.layers.normalization import BatchNormalization
from kaffe.layers.recurrent import GRU, LSTM, SimpleRNN
