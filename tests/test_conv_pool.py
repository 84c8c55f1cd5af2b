"""Convolution, pooling and up-sampling layers against Keras 3 (torch backend) given the same weights:
outputs, gradients, output shapes, parameter counts, configs and argument errors."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kaffe.layers import convolutional as conv  # noqa: E402
from kaffe.layers import pooling as pool  # noqa: E402
from kaffe.layers import reshaping  # noqa: E402

LAYERS = {name: getattr(module, name) for module in (conv, pool, reshaping) for name in dir(module)
          if isinstance(getattr(module, name), type)}


def check_against_keras(class_name, config, shape, data_format=None, grad=True):
    """Same layer in Keras and kaffe, Keras's weights copied over: outputs, gradients, output
    shapes (with unknown sizes) and parameter counts agree."""
    if data_format is not None:
        config = {**config, "data_format": data_format}
    k_layer = getattr(keras.layers, class_name)(**config)
    f_layer = LAYERS[class_name](**config)
    x = np.random.randn(*shape).astype("float32")
    k_out = keras.ops.convert_to_numpy(k_layer(x))
    xt = torch.tensor(x, requires_grad=True)
    f_layer(xt)  # build
    k_weights = k_layer.get_weights()
    assert [w.shape for w in f_layer.get_weights()] == [w.shape for w in k_weights]
    f_layer.set_weights(k_weights)
    f_out = f_layer(xt)
    np.testing.assert_allclose(f_out.detach().numpy(), k_out, rtol=1e-5, atol=1e-5)
    for probe in (shape, (None,) + shape[1:], _unknown_spatial(shape, data_format)):
        expected = tuple(k_layer.compute_output_shape(probe))
        assert tuple(f_layer.compute_output_shape(probe)) == expected, probe
    assert f_layer.count_params() == k_layer.count_params()
    if grad:
        (f_out * torch.randn_like(f_out)).sum().backward()
        assert xt.grad is not None and torch.isfinite(xt.grad).all()
        for w in f_layer.trainable_weights:
            assert w.grad is not None and torch.isfinite(w.grad).all()
    return f_layer, k_layer


def _unknown_spatial(shape, data_format):
    if data_format == "channels_first":
        return (None, shape[1]) + (None,) * (len(shape) - 2)
    return (None,) + (None,) * (len(shape) - 2) + (shape[-1],)


def shaped(shape, data_format):
    """A channels_last input shape in ``data_format``."""
    if data_format == "channels_last":
        return shape
    return (shape[0], shape[-1]) + tuple(shape[1:-1])


FORMATS = ["channels_last", "channels_first"]

CONV2D_CASES = [
    (dict(filters=4, kernel_size=3), (2, 8, 9, 3)),
    (dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 7, 8, 3)),   # asymmetric
    (dict(filters=5, kernel_size=(2, 4), padding="same"), (2, 6, 7, 3)),         # even kernel
    (dict(filters=4, kernel_size=3, dilation_rate=2, padding="same"), (2, 9, 8, 3)),
    (dict(filters=4, kernel_size=(3, 2), dilation_rate=(2, 1)), (2, 9, 8, 3)),
    (dict(filters=6, kernel_size=3, groups=2, padding="same"), (2, 6, 6, 4)),
    (dict(filters=4, kernel_size=(3, 1), strides=(2, 1), use_bias=False, activation="relu"),
     (2, 9, 6, 3)),
    (dict(filters=3, kernel_size=5, strides=3, padding="same", activation="tanh"), (2, 9, 10, 2)),
    (dict(filters=2, kernel_size=1, strides=2), (1, 5, 5, 3)),
]


@pytest.mark.parametrize("config,shape", CONV2D_CASES)
def test_conv2d_equals_keras(config, shape):
    for data_format in FORMATS:
        check_against_keras("Conv2D", config, shaped(shape, data_format), data_format)


CONV1D_CASES = [
    (dict(filters=4, kernel_size=3), (2, 10, 3)),
    (dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 9, 3)),
    (dict(filters=4, kernel_size=4, padding="same"), (2, 9, 3)),
    (dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2), (2, 10, 3)),
    (dict(filters=4, kernel_size=2, padding="causal", strides=2), (2, 9, 3)),
    (dict(filters=6, kernel_size=3, groups=3, activation="relu"), (2, 8, 6)),
    (dict(filters=3, kernel_size=5, dilation_rate=2, use_bias=False), (2, 12, 2)),
]


@pytest.mark.parametrize("config,shape", CONV1D_CASES)
def test_conv1d_equals_keras(config, shape):
    for data_format in FORMATS:
        check_against_keras("Conv1D", config, shaped(shape, data_format), data_format)


# Average pooling is compared with Keras where its torch backend pads like TensorFlow: symmetric
# padding, or windows of 2 (see test_average_pooling_same_divides_by_real_elements for the rest).
POOL2D_CASES = [
    ("MaxPooling2D", dict(), (2, 8, 9, 3)),
    ("MaxPooling2D", dict(pool_size=(3, 3), strides=(1, 1), padding="same"), (2, 7, 8, 3)),
    ("MaxPooling2D", dict(pool_size=2, padding="same"), (2, 7, 9, 3)),
    ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same"), (2, 8, 8, 3)),
    ("MaxPooling2D", dict(pool_size=(3, 2), strides=(2, 1), padding="same"), (2, 7, 8, 3)),
    ("MaxPooling2D", dict(pool_size=3, strides=2), (2, 9, 8, 3)),
    ("AveragePooling2D", dict(pool_size=(2, 2)), (2, 8, 9, 3)),
    ("AveragePooling2D", dict(pool_size=3, strides=1, padding="same"), (2, 7, 8, 3)),
    ("AveragePooling2D", dict(pool_size=2, padding="same"), (2, 7, 9, 3)),
    ("AveragePooling2D", dict(pool_size=3, strides=2), (2, 9, 8, 3)),
    ("AveragePooling2D", dict(pool_size=(2, 3), strides=(1, 2)), (2, 6, 9, 3)),
]


@pytest.mark.parametrize("class_name,config,shape", POOL2D_CASES)
def test_pooling2d_equals_keras(class_name, config, shape):
    for data_format in FORMATS:
        check_against_keras(class_name, config, shaped(shape, data_format), data_format)


POOL1D_CASES = [
    ("MaxPooling1D", dict(), (2, 9, 3)),
    ("MaxPooling1D", dict(pool_size=5), (2, 23, 3)),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 8, 3)),
    ("MaxPooling1D", dict(pool_size=4, strides=1, padding="same"), (2, 7, 3)),
    ("AveragePooling1D", dict(pool_size=2), (2, 9, 3)),
    ("AveragePooling1D", dict(pool_size=2, padding="same"), (2, 9, 3)),
    ("AveragePooling1D", dict(pool_size=3, strides=1, padding="same"), (2, 7, 3)),
]


@pytest.mark.parametrize("class_name,config,shape", POOL1D_CASES)
def test_pooling1d_equals_keras(class_name, config, shape):
    for data_format in FORMATS:
        check_against_keras(class_name, config, shaped(shape, data_format), data_format)


def _tf_average_pool_1d(x, k, s):
    """Reference 'same' average pooling along axis 1: TensorFlow's rule, real elements only."""
    n = x.shape[1]
    out = -(-n // s)
    before = max((out - 1) * s + k - n, 0) // 2
    windows = [x[:, max(i * s - before, 0):min(i * s - before + k, n)] for i in range(out)]
    return np.stack([w.mean(axis=1) for w in windows], axis=1)


@pytest.mark.parametrize("k,s,n", [(3, 2, 8), (4, 1, 7), (5, 3, 10), (3, 2, 4)])
def test_average_pooling_same_divides_by_real_elements(k, s, n):
    # Keras documents this and its TensorFlow/JAX backends compute it; its torch backend pads
    # asymmetric windows of 3 or more by replicating edge values, so it is not the oracle here.
    x = np.random.randn(2, n, 3).astype("float32")
    got = pool.AveragePooling1D(k, s, padding="same")(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, _tf_average_pool_1d(x, k, s), rtol=1e-5, atol=1e-6)
    x2 = np.random.randn(2, n, n + 1, 3).astype("float32")
    got2 = pool.AveragePooling2D(k, s, padding="same")(torch.tensor(x2)).numpy()
    rows = _tf_average_pool_1d(x2, k, s)
    expected = _tf_average_pool_1d(rows.transpose(0, 2, 1, 3), k, s).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(got2, expected, rtol=1e-5, atol=1e-6)
    # The documented TensorFlow example of this rule.
    small = pool.AveragePooling1D(3, 2, padding="same")(torch.arange(1.0, 5.0).reshape(1, 4, 1))
    assert small.ravel().tolist() == [2.0, 3.5]


@pytest.mark.parametrize("class_name,shape", [
    ("GlobalMaxPooling1D", (2, 7, 3)), ("GlobalAveragePooling1D", (2, 7, 3)),
    ("GlobalMaxPooling2D", (2, 5, 6, 3)), ("GlobalAveragePooling2D", (2, 5, 6, 3))])
def test_global_pooling_equals_keras(class_name, shape):
    for data_format in FORMATS:
        for keepdims in (False, True):
            check_against_keras(class_name, dict(keepdims=keepdims), shaped(shape, data_format),
                                data_format)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic"])
def test_upsampling_equals_keras(interpolation):
    for data_format in FORMATS:
        for size in (2, (2, 3), (3, 2)):
            config = dict(size=size, interpolation=interpolation)
            shape = shaped((2, 5, 4, 3), data_format)
            check_against_keras("UpSampling2D", config, shape, data_format)
    for size in (2, 3):
        check_against_keras("UpSampling1D", dict(size=size), (2, 5, 3))


# ---------------------------------------------------------------------------------- configs
CONFIG_CASES = [
    ("Conv2D", dict(filters=4, kernel_size=(3, 5), strides=2, padding="same", activation="relu",
                    data_format="channels_first", kernel_initializer="he_normal", groups=2)),
    ("Conv1D", dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2, use_bias=False)),
    ("MaxPooling2D", dict(pool_size=3, strides=(1, 1), padding="same")),
    ("AveragePooling1D", dict(pool_size=3)),
    ("GlobalAveragePooling2D", dict(keepdims=True)),
    ("GlobalMaxPooling1D", dict(data_format="channels_first")),
    ("UpSampling2D", dict(size=(2, 3), interpolation="bilinear")),
    ("UpSampling1D", dict(size=4)),
]


@pytest.mark.parametrize("class_name,config", CONFIG_CASES)
def test_config_equals_keras_and_round_trips(class_name, config):
    k_config = getattr(keras.layers, class_name)(**config).get_config()
    f_layer = LAYERS[class_name](**config)
    f_config = f_layer.get_config()
    skip = {"name", "dtype", "trainable"}
    assert set(f_config) - skip == set(k_config) - skip
    for key in set(k_config) - skip:
        if key.endswith("_initializer"):
            assert f_config[key]["class_name"] == k_config[key]["class_name"]
        else:
            assert f_config[key] == k_config[key], key
    again = type(f_layer).from_config({**f_config, "name": "copy"}).get_config()
    assert {**again, "name": f_config["name"]} == f_config


def test_keras_aliases_are_the_same_classes():
    for alias, name in [("Convolution1D", "Conv1D"), ("Convolution2D", "Conv2D")]:
        assert getattr(conv, alias) is getattr(conv, name)
    for alias, name in [("MaxPool1D", "MaxPooling1D"), ("MaxPool2D", "MaxPooling2D"),
                        ("AvgPool1D", "AveragePooling1D"), ("AvgPool2D", "AveragePooling2D"),
                        ("GlobalMaxPool1D", "GlobalMaxPooling1D"),
                        ("GlobalMaxPool2D", "GlobalMaxPooling2D"),
                        ("GlobalAvgPool1D", "GlobalAveragePooling1D"),
                        ("GlobalAvgPool2D", "GlobalAveragePooling2D")]:
        assert getattr(pool, alias) is getattr(pool, name)
        assert getattr(keras.layers, alias) is getattr(keras.layers, name)


def test_keras1_spellings():
    layer = conv.Convolution2D(nb_filter=8, nb_row=3, nb_col=5, border_mode="same",
                               subsample=(2, 2), dim_ordering="th", init="he_normal", bias=False)
    assert (layer.filters, layer.kernel_size, layer.strides, layer.padding, layer.data_format,
            layer.use_bias) == (8, (3, 5), (2, 2), "same", "channels_first", False)
    assert type(layer.kernel_initializer).__name__ == "HeNormal"
    positional = conv.Convolution2D(32, 3, 5, border_mode="same", subsample=(2, 2))
    assert (positional.kernel_size, positional.strides) == ((3, 5), (2, 2))
    assert conv.Convolution2D(32, 3, nb_col=5).kernel_size == (3, 5)
    assert conv.Conv2D(32, 3, 2).strides == (2, 2)  # Keras 3's reading without Keras 1 keywords
    seq = conv.Convolution1D(nb_filter=4, filter_length=5, subsample_length=2, input_dim=7,
                             input_length=20)
    assert (seq.filters, seq.kernel_size, seq.strides, seq._batch_input_shape) == \
        (4, (5,), (2,), (None, 20, 7))
    mp = pool.MaxPooling1D(pool_length=3, stride=1, border_mode="same")
    assert (mp.pool_size, mp.strides, mp.padding) == ((3,), (1,), "same")
    assert reshaping.UpSampling1D(length=3).size == 3
    with pytest.raises(ValueError, match="padding='full'"):
        conv.Convolution2D(8, nb_row=3, nb_col=3, border_mode="full")
    with pytest.raises(ValueError, match="nb_filter"):
        conv.Conv2D(8, 3, nb_filter=4)


def test_keras2_weights_argument_and_weight_layout():
    kernel = np.random.randn(3, 3, 2, 4).astype("float32")
    bias = np.random.randn(4).astype("float32")
    layer = conv.Conv2D(4, 3, weights=[kernel, bias])
    x = torch.randn(1, 5, 5, 2)
    y = layer(x)
    np.testing.assert_array_equal(layer.get_weights()[0], kernel)
    assert tuple(layer.kernel.shape) == (4, 2, 3, 3)  # stored in torch's layout
    torch_kernel = torch.tensor(kernel).permute(3, 2, 0, 1)  # (out, in, kh, kw)
    expected = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), torch_kernel,
                                          torch.tensor(bias)).permute(0, 2, 3, 1)
    torch.testing.assert_close(y, expected)
    layer.reset_parameters()
    assert not np.allclose(layer.get_weights()[0], kernel)
    assert np.all(layer.get_weights()[1] == 0)


def test_channels_last_runs_without_copies_of_the_input():
    x = torch.randn(2, 8, 8, 3)
    y = conv.Conv2D(4, 3, padding="same")(x)
    assert y.is_contiguous()  # the permuted channels_last result is plain NHWC memory
    assert pool.MaxPooling2D()(x).is_contiguous()


BAD_ARGUMENTS = [
    (lambda: conv.Conv2D(0, 3), "filters=0"),
    (lambda: conv.Conv2D(4, 0), "kernel_size=0"),
    (lambda: conv.Conv2D(4, (3, 3, 3)), r"kernel_size=\(3, 3, 3\)"),
    (lambda: conv.Conv2D(4, 3, padding="causal"), "padding='causal'"),
    (lambda: conv.Conv1D(4, 3, padding="full"), "padding='full'"),
    (lambda: conv.Conv2D(4, 3, strides=2, dilation_rate=2), "dilation_rate"),
    (lambda: conv.Conv2D(5, 3, groups=2), "groups=2"),
    (lambda: conv.Conv2D(4, 3, data_format="nchw"), "data_format='nchw'"),
    (lambda: pool.MaxPooling2D(pool_size=-1), "pool_size=-1"),
    (lambda: pool.AveragePooling1D(2, padding="causal"), "padding='causal'"),
    (lambda: reshaping.UpSampling2D(interpolation="area"), "interpolation='area'"),
    (lambda: reshaping.UpSampling1D(size=0), "size=0"),
]


def test_bad_arguments_name_the_received_value():
    for make, match in BAD_ARGUMENTS:
        with pytest.raises(ValueError, match=match):
            make()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        conv.Conv2D(4, 3, groups=2)(torch.randn(1, 5, 5, 3))
    with pytest.raises(ValueError, match="too small"):
        conv.Conv2D(4, 5)(torch.randn(1, 3, 3, 2))
    with pytest.raises(ValueError, match="rank 4"):
        conv.Conv2D(4, 3)(torch.randn(1, 5, 2))
    with pytest.raises(ValueError, match="smaller than pool_size"):
        pool.MaxPooling2D(3).compute_output_shape((None, 2, 2, 1))


# ---------------------------------------------------------------------------------- the seed
def inception(lib, layers, concatenate):
    """The seed's Inception block (channels_first, 32x32 instead of 256x256)."""
    input_img = lib.Input(shape=(3, 32, 32))
    kw = dict(padding="same", activation="relu", data_format="channels_first")
    tower_1 = layers.Conv2D(64, (1, 1), **kw)(input_img)
    tower_1 = layers.Conv2D(64, (3, 3), **kw)(tower_1)
    tower_2 = layers.Conv2D(64, (1, 1), **kw)(input_img)
    tower_2 = layers.Conv2D(64, (5, 5), **kw)(tower_2)
    tower_3 = layers.MaxPooling2D((3, 3), strides=(1, 1), padding="same",
                                  data_format="channels_first")(input_img)
    tower_3 = layers.Conv2D(64, (1, 1), **kw)(tower_3)
    output = concatenate([tower_1, tower_2, tower_3], axis=1)
    return lib.Model(input_img, output)


def test_seed_inception_block_channels_first_equals_keras():
    from types import SimpleNamespace

    from kaffe.engine.input_layer import Input
    from kaffe.engine.model import Model
    from kaffe.layers import concatenate
    k_model = inception(keras, keras.layers, keras.layers.concatenate)
    f_layers = SimpleNamespace(Conv2D=conv.Conv2D, MaxPooling2D=pool.MaxPooling2D)
    f_model = inception(SimpleNamespace(Input=Input, Model=Model), f_layers, concatenate)
    assert tuple(f_model.output_shape) == tuple(k_model.output_shape) == (None, 192, 32, 32)
    assert f_model.count_params() == k_model.count_params()
    f_model.set_weights(k_model.get_weights())
    x = np.random.rand(2, 3, 32, 32).astype("float32")
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
