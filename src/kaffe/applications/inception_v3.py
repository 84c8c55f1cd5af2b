"""InceptionV3 (Szegedy et al. 2015): factorised inception modules ``mixed0`` .. ``mixed10``."""
from kaffe import config, layers
from kaffe.applications import _builder, imagenet_utils

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
_FILES = {True: ("inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                 "9a0d58056eeedaa3f26cb7ebd46da564"),
          False: ("inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                  "bcbd6486424b2319ff4ef7d526e38f63")}


def conv2d_bn(x, filters, num_row, num_col, padding="same", strides=(1, 1), name=None):
    """Convolution (no bias), batch norm without scale, ReLU."""
    x = layers.Conv2D(filters, (num_row, num_col), strides=strides, padding=padding,
                      use_bias=False, name=f"{name}_conv" if name else None)(x)
    x = layers.BatchNormalization(axis=_builder.channel_axis(), scale=False,
                                  name=f"{name}_bn" if name else None)(x)
    return layers.Activation("relu", name=name)(x)


def _avg_branch(x, filters):
    branch = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    return conv2d_bn(branch, filters, 1, 1)


def _join(branches, name=None):
    return layers.concatenate(branches, axis=_builder.channel_axis(), name=name)


def _block35(x, pool_filters, name):
    """The 35x35 module: 1x1, 5x5, double 3x3 and pooled branches."""
    branch1x1 = conv2d_bn(x, 64, 1, 1)
    branch5x5 = conv2d_bn(x, 48, 1, 1)
    branch5x5 = conv2d_bn(branch5x5, 64, 5, 5)
    branch3x3dbl = conv2d_bn(x, 64, 1, 1)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3)
    return _join([branch1x1, branch5x5, branch3x3dbl, _avg_branch(x, pool_filters)], name)


def _block17(x, mid, name):
    """The 17x17 module with 1x7/7x1 factorised convolutions of ``mid`` channels."""
    branch1x1 = conv2d_bn(x, 192, 1, 1)
    branch7x7 = conv2d_bn(x, mid, 1, 1)
    branch7x7 = conv2d_bn(branch7x7, mid, 1, 7)
    branch7x7 = conv2d_bn(branch7x7, 192, 7, 1)
    branch7x7dbl = conv2d_bn(x, mid, 1, 1)
    branch7x7dbl = conv2d_bn(branch7x7dbl, mid, 7, 1)
    branch7x7dbl = conv2d_bn(branch7x7dbl, mid, 1, 7)
    branch7x7dbl = conv2d_bn(branch7x7dbl, mid, 7, 1)
    branch7x7dbl = conv2d_bn(branch7x7dbl, 192, 1, 7)
    return _join([branch1x1, branch7x7, branch7x7dbl, _avg_branch(x, 192)], name)


def _block8(x, i):
    """The 8x8 module with split 1x3/3x1 branches."""
    branch1x1 = conv2d_bn(x, 320, 1, 1)
    branch3x3 = conv2d_bn(x, 384, 1, 1)
    branch3x3 = _join([conv2d_bn(branch3x3, 384, 1, 3), conv2d_bn(branch3x3, 384, 3, 1)],
                      f"mixed9_{i}")
    branch3x3dbl = conv2d_bn(x, 448, 1, 1)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 384, 3, 3)
    branch3x3dbl = _join([conv2d_bn(branch3x3dbl, 384, 1, 3),
                          conv2d_bn(branch3x3dbl, 384, 3, 1)])
    return _join([branch1x1, branch3x3, branch3x3dbl, _avg_branch(x, 192)], f"mixed{9 + i}")


def InceptionV3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="inception_v3"):
    """InceptionV3 (23.9M parameters with the top), 299x299 inputs by default."""
    _builder.check_weights(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=299, min_size=75, data_format=config.image_data_format(),
        require_flatten=include_top, weights=weights)
    img_input = _builder.image_input(input_tensor, input_shape)
    x = conv2d_bn(img_input, 32, 3, 3, strides=(2, 2), padding="valid")
    x = conv2d_bn(x, 32, 3, 3, padding="valid")
    x = conv2d_bn(x, 64, 3, 3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv2d_bn(x, 80, 1, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = _block35(x, 32, "mixed0")
    x = _block35(x, 64, "mixed1")
    x = _block35(x, 64, "mixed2")
    branch3x3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="valid")
    branch3x3dbl = conv2d_bn(x, 64, 1, 1)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3)
    branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3, strides=(2, 2), padding="valid")
    branch_pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = _join([branch3x3, branch3x3dbl, branch_pool], "mixed3")
    x = _block17(x, 128, "mixed4")
    x = _block17(x, 160, "mixed5")
    x = _block17(x, 160, "mixed6")
    x = _block17(x, 192, "mixed7")
    branch3x3 = conv2d_bn(x, 192, 1, 1)
    branch3x3 = conv2d_bn(branch3x3, 320, 3, 3, strides=(2, 2), padding="valid")
    branch7x7x3 = conv2d_bn(x, 192, 1, 1)
    branch7x7x3 = conv2d_bn(branch7x7x3, 192, 1, 7)
    branch7x7x3 = conv2d_bn(branch7x7x3, 192, 7, 1)
    branch7x7x3 = conv2d_bn(branch7x7x3, 192, 3, 3, strides=(2, 2), padding="valid")
    branch_pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = _join([branch3x3, branch7x7x3, branch_pool], "mixed8")
    x = _block8(x, 0)
    x = _block8(x, 1)
    x = _builder.head(x, include_top, pooling, classes, classifier_activation, weights,
                      top_avg_name="avg_pool")
    fname, md5 = _FILES[bool(include_top)]
    return _builder.finish(img_input, input_tensor, x, name, weights, (fname, _BASE + fname, md5))


def preprocess_input(x, data_format=None):
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    return imagenet_utils.decode_predictions(preds, top=top)
