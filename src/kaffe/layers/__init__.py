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
from kaffe.layers.convolutional import Conv1D, Conv2D, Convolution1D, Convolution2D
from kaffe.layers.pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D,
                                  GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAvgPool1D,
                                  GlobalAvgPool2D, GlobalMaxPool1D, GlobalMaxPool2D,
                                  GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D, MaxPool2D,
                                  MaxPooling1D, MaxPooling2D)
from kaffe.layers.reshaping import UpSampling1D, UpSampling2D
