"""The Keras layer zoo (``kaffe.layers.Dense`` ...), one family per module."""
from kaffe.engine.input_layer import Input, InputLayer
from kaffe.engine.input_spec import InputSpec
from kaffe.engine.layer import Layer
from kaffe.layers.core import (Activation, Dense, Dropout, Flatten, Lambda, Permute, RepeatVector,
                               Reshape, TorchModuleWrapper)
from kaffe.layers.embedding import Embedding
from kaffe.layers.merge import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                                Subtract, add, average, concatenate, dot, maximum, minimum,
                                multiply, subtract)
from kaffe.layers.normalization import BatchNormalization, GroupNormalization, LayerNormalization
from kaffe.layers.activations import ELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU
from kaffe.layers.regularization import (ActivityRegularization, AlphaDropout, GaussianDropout,
                                         GaussianNoise, SpatialDropout1D, SpatialDropout2D,
                                         SpatialDropout3D)
from kaffe.layers.attention import AdditiveAttention, Attention, MultiHeadAttention
from kaffe.layers.preprocessing import Normalization, Rescaling
from kaffe.layers.recurrent import GRU, LSTM, SimpleRNN
from kaffe.layers.rnn_cells import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from kaffe.layers.convolutional import (Conv1D, Conv2D, Conv3D, Convolution1D, Convolution2D,
                                        Convolution3D)
from kaffe.layers.conv_transpose import (Conv1DTranspose, Conv2DTranspose, Conv3DTranspose,
                                         Convolution1DTranspose, Convolution2DTranspose,
                                         Convolution3DTranspose, Deconv2D, Deconv3D,
                                         Deconvolution2D, Deconvolution3D)
from kaffe.layers.separable import (DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D,
                                    SeparableConv2D, SeparableConvolution1D, SeparableConvolution2D)
from kaffe.layers.pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, AvgPool1D,
                                  AvgPool2D, AvgPool3D, GlobalAveragePooling1D,
                                  GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalAvgPool1D,
                                  GlobalAvgPool2D, GlobalAvgPool3D, GlobalMaxPool1D,
                                  GlobalMaxPool2D, GlobalMaxPool3D, GlobalMaxPooling1D,
                                  GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPool1D, MaxPool2D,
                                  MaxPool3D, MaxPooling1D, MaxPooling2D, MaxPooling3D)
from kaffe.layers.reshaping import (Cropping1D, Cropping2D, Cropping3D, UpSampling1D, UpSampling2D,
                                    UpSampling3D, ZeroPadding1D, ZeroPadding2D, ZeroPadding3D)
from kaffe.layers.masking import Masking
from kaffe.layers.rnn_wrappers import Bidirectional, TimeDistributed
from kaffe.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from kaffe.layers.image_preprocessing import (CenterCrop, RandomBrightness, RandomContrast,
                                              RandomCrop, RandomFlip, RandomRotation,
                                              RandomTranslation, RandomZoom, Resizing)
from kaffe.layers.categorical import CategoryEncoding, Discretization
from kaffe.layers.einsum_dense import EinsumDense
from kaffe.layers.unit_normalization import UnitNormalization
from kaffe.layers.hashing import Hashing
from kaffe.layers.lookup import IntegerLookup, StringLookup
from kaffe.layers.text_vectorization import TextVectorization
