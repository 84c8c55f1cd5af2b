"""Conv3D, transposed, separable and depthwise convolutions, 3D pooling, UpSampling3D, zero
padding and cropping against Keras 3 (torch backend) given the same weights: outputs, gradients,
output shapes (with unknown sizes), parameter counts, configs, weight regularizers/constraints and
argument errors."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kaffe.layers import conv_transpose, convolutional, pooling, reshaping, separable  # noqa: E402

MODULES = (convolutional, conv_transpose, separable, pooling, reshaping)
LAYERS = {name: getattr(module, name) for module in MODULES for name in dir(module)
          if isinstance(getattr(module, name), type)}
FORMATS = ["channels_last", "channels_first"]


def shaped(shape, data_format):
    """A channels_last input shape in ``data_format``."""
    if data_format == "channels_last":
        return shape
    return (shape[0], shape[-1]) + tuple(shape[1:-1])


def probes(shape, data_format):
    """The input shape, then with an unknown batch, then with unknown spatial sizes too."""
    rank = len(shape) - 2
    unknown = ((None,) * (rank + 1) + (shape[-1],) if data_format == "channels_last"
               else (None, shape[1]) + (None,) * rank)
    return [shape, (None,) + tuple(shape[1:]), unknown]


def check_against_keras(class_name, config, shape, data_format=None):
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
    for probe in probes(shape, data_format or "channels_last"):
        expected = tuple(k_layer.compute_output_shape(probe))
        assert tuple(f_layer.compute_output_shape(probe)) == expected, probe
    assert f_layer.count_params() == k_layer.count_params()
    (f_out * torch.randn_like(f_out)).sum().backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all()
    for w in f_layer.trainable_weights:
        assert w.grad is not None and torch.isfinite(w.grad).all()


# ------------------------------------------------------------------------ layers against Keras
S1, S2, S3 = (2, 9, 3), (2, 7, 8, 3), (2, 5, 6, 7, 2)  # channels_last shapes, odd sizes
CASES = [
    ("Conv3D", dict(filters=3, kernel_size=3), S3),
    ("Conv3D", dict(filters=4, kernel_size=(3, 2, 3), strides=2, padding="same"), S3),
    ("Conv3D", dict(filters=2, kernel_size=2, dilation_rate=(2, 1, 2), padding="same",
                    use_bias=False, activation="relu"), S3),
    ("Conv3D", dict(filters=4, kernel_size=3, groups=2, padding="same"), (2, 4, 5, 3, 4)),
    # transposed: valid/same, output_padding, kernel smaller than the stride, even kernels, dilation
    ("Conv1DTranspose", dict(filters=4, kernel_size=3), S1),
    ("Conv1DTranspose", dict(filters=4, kernel_size=3, strides=2, padding="same"), S1),
    ("Conv1DTranspose", dict(filters=4, kernel_size=2, strides=3), S1),
    ("Conv1DTranspose", dict(filters=4, kernel_size=4, strides=3, padding="same",
                             output_padding=2), S1),
    ("Conv1DTranspose", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same"), S1),
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, strides=2), S2),
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, strides=2, padding="same"), S2),
    ("Conv2DTranspose", dict(filters=3, kernel_size=(4, 3), strides=(2, 3), padding="same",
                             output_padding=(1, 0)), S2),
    ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=3, output_padding=2,
                             activation="tanh"), S2),
    ("Conv2DTranspose", dict(filters=2, kernel_size=(2, 3), dilation_rate=(1, 2),
                             use_bias=False), S2),
    ("Conv3DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same"), S3),
    ("Conv3DTranspose", dict(filters=2, kernel_size=(2, 3, 3), strides=(1, 2, 3),
                             output_padding=(0, 1, 2)), S3),
    # depthwise / separable: depth_multiplier, strides with dilation (allowed here)
    ("DepthwiseConv2D", dict(kernel_size=3), S2),
    ("DepthwiseConv2D", dict(kernel_size=(3, 2), depth_multiplier=3, strides=2, padding="same"), S2),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2, strides=2, dilation_rate=2,
                             padding="same", activation="relu", use_bias=False), S2),
    ("DepthwiseConv1D", dict(kernel_size=4, depth_multiplier=2, padding="same"), S1),
    ("DepthwiseConv1D", dict(kernel_size=3, strides=2), S1),
    ("SeparableConv2D", dict(filters=5, kernel_size=3), S2),
    ("SeparableConv2D", dict(filters=4, kernel_size=(2, 3), depth_multiplier=2, strides=2,
                             padding="same"), S2),
    ("SeparableConv2D", dict(filters=3, kernel_size=3, dilation_rate=2, use_bias=False,
                             activation="relu"), S2),
    ("SeparableConv1D", dict(filters=4, kernel_size=3, depth_multiplier=3, strides=2,
                             padding="same"), S1),
    ("SeparableConv1D", dict(filters=2, kernel_size=2, dilation_rate=3), S1),
    # 3D pooling ('same' average pooling only where Keras's torch backend pads like TensorFlow)
    ("MaxPooling3D", dict(), S3),
    ("MaxPooling3D", dict(pool_size=3, strides=2, padding="same"), S3),
    ("MaxPooling3D", dict(pool_size=(2, 3, 1), strides=1, padding="same"), S3),
    ("AveragePooling3D", dict(pool_size=(2, 3, 2), strides=(1, 2, 2)), S3),
    ("AveragePooling3D", dict(pool_size=2, padding="same"), S3),
    ("AveragePooling3D", dict(pool_size=3, strides=1, padding="same"), S3),
    ("GlobalMaxPooling3D", dict(), S3),
    ("GlobalMaxPooling3D", dict(keepdims=True), S3),
    ("GlobalAveragePooling3D", dict(), S3),
    ("GlobalAveragePooling3D", dict(keepdims=True), S3),
    # reshaping
    ("UpSampling3D", dict(), S3),
    ("UpSampling3D", dict(size=(1, 2, 3)), S3),
    ("ZeroPadding1D", dict(), S1),
    ("ZeroPadding1D", dict(padding=(0, 2)), S1),
    ("ZeroPadding2D", dict(padding=(1, 2)), S2),
    ("ZeroPadding2D", dict(padding=((0, 1), (2, 3))), S2),
    ("ZeroPadding3D", dict(padding=2), S3),
    ("ZeroPadding3D", dict(padding=((0, 1), 2, (3, 0))), S3),
    ("Cropping2D", dict(cropping=((1, 2), (0, 3))), S2),
    ("Cropping2D", dict(cropping=(2, 1)), S2),
    ("Cropping3D", dict(), S3),
    ("Cropping3D", dict(cropping=((0, 1), 2, (3, 0))), S3),
]


@pytest.mark.parametrize("class_name,config,shape", CASES)
def test_layer_equals_keras(class_name, config, shape):
    for data_format in FORMATS:
        check_against_keras(class_name, config, shaped(shape, data_format), data_format)


@pytest.mark.parametrize("cropping", [1, (2, 0), (0, 3)])
def test_cropping1d_equals_keras(cropping):
    check_against_keras("Cropping1D", dict(cropping=cropping), S1)


def test_same_average_pooling_3d_divides_by_real_elements():
    # Keras's torch backend replicates edge values for asymmetric 'same' windows of 3 or more; its
    # documented rule (TensorFlow/JAX) divides each window by the real elements it covers.
    x = torch.randn(1, 4, 5, 6, 2)
    y = pooling.AveragePooling3D(3, 2, padding="same")(x)
    xp = torch.nn.functional.pad(x, (0, 0, 0, 1, 1, 1, 0, 1))  # rows 'same': (0,1),(1,1),(0,1)
    ones = torch.nn.functional.pad(torch.ones(1, 4, 5, 6, 1), (0, 0, 0, 1, 1, 1, 0, 1))
    window = [slice(i * 2, i * 2 + 3) for i in range(2)], [slice(j * 2, j * 2 + 3) for j in range(3)]
    for i, a in enumerate(window[0]):
        for j, b in enumerate(window[1]):
            for k in range(3):
                c = slice(k * 2, k * 2 + 3)
                expected = xp[0, a, b, c].sum((0, 1, 2)) / ones[0, a, b, c].sum()
                torch.testing.assert_close(y[0, i, j, k], expected)


# ------------------------------------------------------------------------ regularizers, constraints
WEIGHTED = [
    ("Conv1D", dict(filters=3, kernel_size=3), S1, ["kernel", "bias"]),
    ("Conv2D", dict(filters=3, kernel_size=3), S2, ["kernel", "bias"]),
    ("Conv3D", dict(filters=2, kernel_size=2), S3, ["kernel", "bias"]),
    ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2), S2, ["kernel", "bias"]),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2), S2, ["depthwise", "bias"]),
    ("SeparableConv1D", dict(filters=4, kernel_size=3, depth_multiplier=2), S1,
     ["depthwise", "pointwise", "bias"]),
]


@pytest.mark.parametrize("class_name,config,shape,weights", WEIGHTED)
def test_weight_regularizers_and_constraints_equal_keras(class_name, config, shape, weights):
    extras = {}
    for i, w in enumerate(weights):
        extras[f"{w}_regularizer"] = {"class_name": "L1L2", "config": {"l1": 0.01 * (i + 1),
                                                                      "l2": 0.02}}
        extras[f"{w}_constraint"] = {"class_name": "MaxNorm", "config": {"max_value": 0.3,
                                                                        "axis": 0}}
    config = {**config, **extras}
    k_layer = getattr(keras.layers, class_name)(**config)
    f_layer = LAYERS[class_name](**config)
    x = np.random.randn(*shape).astype("float32")
    k_layer(x)
    f_layer(torch.tensor(x))
    values = [w * 3 + 1 for w in k_layer.get_weights()]  # big enough for MaxNorm to bite
    k_layer.set_weights(values)
    f_layer.set_weights(values)
    k_losses = [float(keras.ops.convert_to_numpy(v)) for v in k_layer.losses]
    f_losses = [float(v) for v in f_layer.losses]
    np.testing.assert_allclose(sorted(f_losses), sorted(k_losses), rtol=1e-5)
    assert len(f_losses) == len(weights)
    f_layer.apply_constraints()
    for variable in k_layer.trainable_variables:
        variable.assign(variable.constraint(variable))
    for got, expected in zip(f_layer.get_weights(), k_layer.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    f_config = f_layer.get_config()
    for key, value in extras.items():
        assert f_config[key]["class_name"] == k_layer.get_config()[key]["class_name"]
        assert f_config[key]["config"] == value["config"]


# ------------------------------------------------------------------------ configs
CONFIG_CASES = [
    ("Conv3D", dict(filters=4, kernel_size=(3, 1, 2), strides=2, padding="same", groups=2,
                    data_format="channels_first", kernel_initializer="he_normal")),
    ("Conv1DTranspose", dict(filters=2, kernel_size=3, strides=2, output_padding=1)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, padding="same", activation="relu",
                             kernel_regularizer="l2", bias_constraint="non_neg")),
    ("Conv3DTranspose", dict(filters=2, kernel_size=2, dilation_rate=2, use_bias=False)),
    ("DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=2, padding="same")),
    ("DepthwiseConv2D", dict(kernel_size=(3, 2), strides=2, depthwise_initializer="he_uniform",
                             activity_regularizer="l1")),
    ("SeparableConv1D", dict(filters=3, kernel_size=5, dilation_rate=2)),
    ("SeparableConv2D", dict(filters=3, kernel_size=3, depth_multiplier=4,
                             pointwise_regularizer="l2", depthwise_constraint="max_norm")),
    ("MaxPooling3D", dict(pool_size=3, strides=(1, 2, 1), padding="same")),
    ("AveragePooling3D", dict(pool_size=2, data_format="channels_first")),
    ("GlobalMaxPooling3D", dict(keepdims=True)),
    ("GlobalAveragePooling3D", dict(data_format="channels_first")),
    ("UpSampling3D", dict(size=(1, 2, 3))),
    ("ZeroPadding1D", dict(padding=(1, 2))),
    ("ZeroPadding2D", dict(padding=(1, 2), data_format="channels_first")),
    ("ZeroPadding3D", dict(padding=((0, 1), 2, (3, 0)))),
    ("Cropping1D", dict(cropping=3)),
    ("Cropping2D", dict(cropping=((1, 2), (3, 4)))),
    ("Cropping3D", dict(cropping=2)),
]


@pytest.mark.parametrize("class_name,config", CONFIG_CASES)
def test_config_equals_keras_and_round_trips(class_name, config):
    k_config = getattr(keras.layers, class_name)(**config).get_config()
    f_layer = LAYERS[class_name](**config)
    f_config = f_layer.get_config()
    skip = {"name", "dtype", "trainable"}
    assert set(f_config) - skip == set(k_config) - skip
    for key in set(k_config) - skip:
        if key.endswith(("_initializer", "_regularizer", "_constraint")) and k_config[key]:
            assert f_config[key]["class_name"] == k_config[key]["class_name"], key
            if not key.endswith("_initializer"):
                assert f_config[key]["config"] == pytest.approx(k_config[key]["config"]), key
        else:
            assert f_config[key] == k_config[key], key
    again = type(f_layer).from_config({**f_config, "name": "copy"}).get_config()
    assert {**again, "name": f_config["name"]} == f_config


def test_aliases_are_the_same_classes_as_in_keras():
    pairs = [(convolutional, "Convolution3D", "Conv3D"),
             (conv_transpose, "Convolution1DTranspose", "Conv1DTranspose"),
             (conv_transpose, "Convolution2DTranspose", "Conv2DTranspose"),
             (conv_transpose, "Convolution3DTranspose", "Conv3DTranspose"),
             (separable, "SeparableConvolution1D", "SeparableConv1D"),
             (separable, "SeparableConvolution2D", "SeparableConv2D"),
             (pooling, "MaxPool3D", "MaxPooling3D"), (pooling, "AvgPool3D", "AveragePooling3D"),
             (pooling, "GlobalMaxPool3D", "GlobalMaxPooling3D"),
             (pooling, "GlobalAvgPool3D", "GlobalAveragePooling3D")]
    for module, alias, name in pairs:
        assert getattr(module, alias) is getattr(module, name)
        assert getattr(keras.layers, alias) is getattr(keras.layers, name)
    # Keras 2's names for the transposed convolutions.
    assert conv_transpose.Deconvolution2D is conv_transpose.Deconv2D is conv_transpose.Conv2DTranspose
    assert conv_transpose.Deconvolution3D is conv_transpose.Deconv3D is conv_transpose.Conv3DTranspose


def test_keras1_spellings():
    layer = convolutional.Convolution3D(8, 3, 4, 5, border_mode="same", dim_ordering="th")
    assert (layer.kernel_size, layer.strides, layer.padding, layer.data_format) == \
        ((3, 4, 5), (1, 1, 1), "same", "channels_first")
    layer = convolutional.Convolution3D(nb_filter=4, kernel_dim1=1, kernel_dim2=2, kernel_dim3=3,
                                        subsample=(2, 2, 2))
    assert (layer.filters, layer.kernel_size, layer.strides) == (4, (1, 2, 3), (2, 2, 2))
    # Keras 1's Deconvolution2D(nb_filter, nb_row, nb_col, output_shape, ...): output_shape dropped.
    deconv = conv_transpose.Deconvolution2D(8, 3, 5, (None, 14, 14, 8), border_mode="same",
                                            subsample=(2, 2))
    assert (deconv.filters, deconv.kernel_size, deconv.strides, deconv.padding) == \
        (8, (3, 5), (2, 2), "same")
    deconv = conv_transpose.Deconvolution2D(nb_filter=4, nb_row=3, nb_col=3,
                                            output_shape=(None, 9, 9, 4))
    assert (deconv.filters, deconv.kernel_size) == (4, (3, 3))
    assert conv_transpose.Conv2DTranspose(4, 3, 2).strides == (2, 2)  # Keras 3 reading
    sep = separable.SeparableConvolution2D(nb_filter=6, nb_row=3, nb_col=2, init="he_normal",
                                           border_mode="same", depth_multiplier=2, bias=False)
    assert (sep.filters, sep.kernel_size, sep.padding, sep.use_bias) == (6, (3, 2), "same", False)
    assert type(sep.depthwise_initializer).__name__ == type(sep.pointwise_initializer).__name__ \
        == "HeNormal"
    mp = pooling.MaxPooling3D(pool_size=(2, 2, 2), border_mode="same", dim_ordering="tf")
    assert (mp.padding, mp.data_format) == ("same", "channels_last")
    assert reshaping.ZeroPadding2D(padding=(1, 2), dim_ordering="th").data_format == \
        "channels_first"


BAD_ARGUMENTS = [
    (lambda: convolutional.Conv3D(0, 3), "filters=0"),
    (lambda: convolutional.Conv3D(4, (3, 3)), r"kernel_size=\(3, 3\)"),
    (lambda: convolutional.Conv3D(4, 3, padding="causal"), "padding='causal'"),
    (lambda: conv_transpose.Conv2DTranspose(4, 3, strides=2, output_padding=2),
     r"output_padding=2"),
    (lambda: conv_transpose.Conv2DTranspose(4, 3, output_padding=(1, -1)),
     r"output_padding=\(1, -1\)"),
    (lambda: conv_transpose.Conv1DTranspose(4, 3, padding="causal"), "padding='causal'"),
    (lambda: conv_transpose.Conv3DTranspose(4, 3, strides=2, dilation_rate=2), "dilation_rate"),
    (lambda: conv_transpose.Conv2DTranspose(-1, 3), "filters=-1"),
    (lambda: separable.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier=0"),
    (lambda: separable.SeparableConv2D(4, 3, depth_multiplier=1.5), "depth_multiplier=1.5"),
    (lambda: separable.SeparableConv1D(0, 3), "filters=0"),
    (lambda: separable.SeparableConv1D(4, 3, padding="causal"), "padding='causal'"),
    (lambda: separable.DepthwiseConv1D(3, strides=0), "strides=0"),
    (lambda: separable.DepthwiseConv2D(3, data_format="nhwc"), "data_format='nhwc'"),
    (lambda: pooling.MaxPooling3D(pool_size=(2, 2)), r"pool_size=\(2, 2\)"),
    (lambda: pooling.AveragePooling3D(padding="full"), "padding='full'"),
    (lambda: reshaping.UpSampling3D(size=0), "size=0"),
    (lambda: reshaping.ZeroPadding1D(padding=-1), "padding=-1"),
    (lambda: reshaping.ZeroPadding2D(padding=(1, 2, 3)), r"padding=\(1, 2, 3\)"),
    (lambda: reshaping.ZeroPadding3D(padding=((1, 1), (1, -1), 0)), "padding="),
    (lambda: reshaping.Cropping1D(cropping=(1, 2, 3)), r"cropping=\(1, 2, 3\)"),
    (lambda: reshaping.Cropping2D(cropping=-2), "cropping=-2"),
    (lambda: reshaping.Cropping3D(cropping="all"), "cropping='all'"),
]


def test_bad_arguments_name_the_received_value():
    for make, match in BAD_ARGUMENTS:
        with pytest.raises(ValueError, match=match):
            make()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="rank 5"):
        convolutional.Conv3D(4, 3)(torch.randn(1, 5, 5, 2))
    with pytest.raises(ValueError, match="too small"):
        separable.SeparableConv2D(4, 5)(torch.randn(1, 3, 3, 2))
    with pytest.raises(ValueError, match="cropping"):
        reshaping.Cropping2D(((2, 2), (0, 0)))(torch.randn(1, 4, 5, 2))
    with pytest.raises(ValueError, match="cropping"):
        reshaping.Cropping1D((3, 3)).compute_output_shape((None, 5, 2))
    layer = conv_transpose.Conv2DTranspose(4, 3)
    layer(torch.randn(1, 5, 5, 2))
    with pytest.raises(ValueError, match="built for 2 input channels"):
        layer.check_input_shape((None, 5, 5, 3))


def test_weight_layouts_and_reset_parameters():
    dw = separable.SeparableConv2D(6, 3, depth_multiplier=2)
    dw(torch.randn(1, 5, 5, 3))
    assert [tuple(w.shape) for w in dw.get_weights()] == [(3, 3, 3, 2), (1, 1, 6, 6), (6,)]
    assert tuple(dw.depthwise_kernel.shape) == (3, 2, 3, 3)  # (in, multiplier, kh, kw)
    assert dw.depthwise_kernel.is_contiguous()
    tr = conv_transpose.Conv3DTranspose(4, (1, 2, 3))
    tr(torch.randn(1, 3, 3, 3, 5))
    assert tuple(tr.get_weights()[0].shape) == (1, 2, 3, 4, 5)
    assert tuple(tr.kernel.shape) == (5, 4, 1, 2, 3)  # torch's (in, out, kd, kh, kw)
    before = tr.get_weights()[0].copy()
    tr.reset_parameters()
    assert not np.allclose(tr.get_weights()[0], before)


# ------------------------------------------------------------------------ in a model
def autoencoder(lib):
    L = lib.layers
    inputs = lib.Input(shape=(9, 9, 2))
    x = L.ZeroPadding2D(((0, 1), (1, 0)))(inputs)
    x = L.SeparableConv2D(4, 3, padding="same", activation="relu", depth_multiplier=2)(x)
    x = L.MaxPooling2D()(x)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1)(x)
    x = L.Cropping2D(((0, 1), (1, 0)))(x)
    return lib.Model(inputs, x)


def test_autoencoder_equals_keras():
    import kaffe
    from types import SimpleNamespace
    f_layers = SimpleNamespace(**{name: LAYERS[name] for name in (
        "ZeroPadding2D", "SeparableConv2D", "MaxPooling2D", "DepthwiseConv2D", "Conv2DTranspose",
        "Cropping2D")})
    k_model = autoencoder(keras)
    f_model = autoencoder(SimpleNamespace(Input=kaffe.Input, Model=kaffe.Model, layers=f_layers))
    assert tuple(f_model.output_shape) == tuple(k_model.output_shape) == (None, 9, 9, 3)
    assert f_model.count_params() == k_model.count_params()
    f_model.set_weights(k_model.get_weights())
    x = np.random.rand(2, 9, 9, 2).astype("float32")
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
