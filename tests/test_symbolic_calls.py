"""Layer calls on symbolic tensors that Keras 3 accepts: several positional KerasTensors
(keras.io's endpoint layer), checked against Keras 3 (torch backend)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import torch

import kaffe


def _endpoint_class(lib):
    class Endpoint(lib.layers.Layer):
        def __init__(self, name=None, **kwargs):
            super().__init__(name=name, **kwargs)
            self.loss_fn = lib.losses.BinaryCrossentropy(from_logits=True)
            self.accuracy_metric = lib.metrics.BinaryAccuracy(name="accuracy")

        def call(self, logits, targets=None, sample_weight=None):
            if targets is not None:
                self.add_loss(self.loss_fn(targets, logits, sample_weight))
                self.accuracy_metric.update_state(targets, logits, sample_weight)
            return logits * 2.0 + 0.0 * (targets if targets is not None else 0.0)
    return Endpoint


def _endpoint_model(lib):
    inputs = lib.Input((6,), name="inputs")
    logits = lib.layers.Dense(1, name="dense")(inputs)
    targets = lib.Input((1,), name="targets")
    weight = lib.Input((1,), name="sample_weight")
    preds = _endpoint_class(lib)(name="endpoint")(logits, targets, weight)
    return lib.Model([inputs, targets, weight], preds)


def test_several_positional_keras_tensors_become_node_inputs():
    ours, theirs = _endpoint_model(kaffe), _endpoint_model(keras)
    assert ours.output.shape == tuple(theirs.output.shape) == (None, 1)
    assert len(ours.inputs) == 3
    ours.summary(print_fn=lambda *a, **k: None)
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(6, 1)).astype("float32")
    for model in (ours, theirs):
        model.get_layer("dense").set_weights([kernel, np.zeros(1, "float32")])
    data = [rng.random((8, 6)).astype("float32"), rng.random((8, 1)).astype("float32"),
            rng.random((8, 1)).astype("float32")]
    np.testing.assert_allclose(ours.predict(data, verbose=0), theirs.predict(data, verbose=0),
                               rtol=1e-5, atol=1e-6)
    ours_direct = ours([torch.as_tensor(a) for a in data])
    np.testing.assert_allclose(ours_direct.detach().numpy(), data[0] @ kernel * 2, rtol=1e-5)


def test_keras_tensors_given_as_keywords_become_node_inputs():
    def build(lib):
        inputs = lib.Input((6,), name="inputs")
        logits = lib.layers.Dense(1, name="dense")(inputs)
        targets = lib.Input((1,), name="targets")
        preds = _endpoint_class(lib)(name="endpoint")(logits, targets=targets)
        return lib.Model([inputs, targets], preds)
    ours, theirs = build(kaffe), build(keras)
    rng = np.random.default_rng(6)
    kernel = rng.normal(size=(6, 1)).astype("float32")
    for model in (ours, theirs):
        model.get_layer("dense").set_weights([kernel, np.zeros(1, "float32")])
    data = [rng.random((8, 6)).astype("float32"), rng.random((8, 1)).astype("float32")]
    np.testing.assert_allclose(ours.predict(data, verbose=0), theirs.predict(data, verbose=0),
                               rtol=1e-5, atol=1e-6)
    ours.compile(kaffe.optimizers.Adam(1e-2))
    assert np.isfinite(ours.fit(data, epochs=1, verbose=0).history["loss"]).all()


def test_positional_keras_tensor_node_saved_as_keras_3_and_loaded(tmp_path):
    ours, theirs = _endpoint_model(kaffe), _endpoint_model(keras)

    def endpoint_node(model):
        layer = [l for l in model.get_config()["layers"] if l["name"] == "endpoint"][0]
        return layer["inbound_nodes"][0]
    ours_node, theirs_node = endpoint_node(ours), endpoint_node(theirs)
    history = [[a["config"]["keras_history"][0] for a in node["args"]]
               for node in (ours_node, theirs_node)]
    assert history[0] == history[1] == ["dense", "targets", "sample_weight"]
    path = str(tmp_path / "endpoint.keras")
    ours.save(path)
    loaded = kaffe.models.load_model(path, custom_objects={"Endpoint": _endpoint_class(kaffe)})
    data = [np.random.default_rng(7).random((4, n)).astype("float32") for n in (6, 1, 1)]
    np.testing.assert_allclose(loaded.predict(data, verbose=0), ours.predict(data, verbose=0),
                               rtol=1e-6)


def test_endpoint_model_trains_on_added_loss_from_a_dict():
    model = _endpoint_model(kaffe)
    rng = np.random.default_rng(1)
    data = {"inputs": rng.random((64, 6)).astype("float32"),
            "targets": (rng.random((64, 1)) > 0.5).astype("float32"),
            "sample_weight": rng.random((64, 1)).astype("float32")}
    model.compile(kaffe.optimizers.Adam(1e-2))
    history = model.fit(data, epochs=3, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def _rank_model(lib, shape):
    inputs = lib.Input(shape, name="x")
    outputs = lib.layers.Dense(2, name="dense")(lib.layers.Flatten()(inputs))
    return lib.Model(inputs, outputs)


def test_functional_input_rank_adjusted_as_keras_3():
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(4, 2)).astype("float32")
    # (shape of Input, shape of the data): a missing trailing 1 is added, an extra one squeezed.
    for shape, data_shape in (((4, 1), (10, 4)), ((4,), (10, 4, 1))):
        ours, theirs = _rank_model(kaffe, shape), _rank_model(keras, shape)
        for model in (ours, theirs):
            model.get_layer("dense").set_weights([kernel, np.zeros(2, "float32")])
        x = rng.random(data_shape).astype("float32")
        expected = theirs.predict(x, verbose=0)
        np.testing.assert_allclose(ours.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours(torch.as_tensor(x)).detach().numpy(), expected,
                                   rtol=1e-5, atol=1e-6)
        y = rng.random((10, 2)).astype("float32")
        for model in (ours, theirs):
            model.compile("sgd", "mse")
        np.testing.assert_allclose(ours.evaluate(x, y, verbose=0),
                                   theirs.evaluate(x, y, verbose=0), rtol=1e-5)
        ours.fit(x, y, epochs=1, batch_size=5, verbose=0)
        ours.fit(_batches(x, y), epochs=1, steps_per_epoch=2, verbose=0)


def _batches(x, y):
    while True:
        for i in range(0, len(x), 5):
            yield x[i:i + 5], y[i:i + 5]


def test_functional_input_rank_other_mismatches_still_refused():
    model = _rank_model(kaffe, (4, 1))
    model.compile("sgd", "mse")
    try:
        model.fit(np.zeros((10, 4, 3), "float32"), np.zeros((10, 2), "float32"), verbose=0)
    except Exception as error:  # kaffe's DataError names the input and both shapes
        assert "(None, 4, 1)" in str(error) and "(10, 4, 3)" in str(error)
    else:
        raise AssertionError("a (10, 4, 3) array for Input((4, 1)) was accepted")


def _tf():
    from kaffe.compat.tensorflow_shim import build_module
    return build_module()


def test_tf_nn_conv2d_matches_keras_ops_conv():
    tf = _tf()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 7, 9, 3)).astype("float32")
    kernel = rng.normal(size=(3, 2, 3, 4)).astype("float32")  # TF's HWIO
    cases = [dict(strides=1, padding="VALID"), dict(strides=[2, 2], padding="SAME"),
             dict(strides=[1, 2, 1, 1], padding="valid", dilations=[1, 2])]
    for case in cases:
        keras_strides = case["strides"]
        if isinstance(keras_strides, list) and len(keras_strides) == 4:
            keras_strides = keras_strides[1:3]
        expected = keras.ops.convert_to_numpy(keras.ops.conv(
            x, kernel, strides=keras_strides, padding=case["padding"].lower(),
            dilation_rate=case.get("dilations", 1)))
        ours = tf.nn.conv2d(x, kernel, **case)
        np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-4, atol=1e-5)
    # NCHW and explicit padding pairs, against torch's own conv2d
    x_first = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    ours = tf.nn.conv2d(x_first, kernel, strides=1, padding=[[0, 0], [0, 0], [1, 1], [2, 0]],
                        data_format="NCHW")
    reference = torch.nn.functional.conv2d(
        torch.nn.functional.pad(torch.as_tensor(x_first), (2, 0, 1, 1)),
        torch.as_tensor(kernel).permute(3, 2, 0, 1))
    np.testing.assert_allclose(np.asarray(ours), reference.numpy(), rtol=1e-4, atol=1e-5)


def test_tf_nn_conv1d_matches_keras_ops_conv():
    tf = _tf()
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 11, 3)).astype("float32")
    kernel = rng.normal(size=(3, 3, 5)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, strides=2, padding="same"))
    np.testing.assert_allclose(np.asarray(tf.nn.conv1d(x, kernel, stride=2, padding="SAME")),
                               expected, rtol=1e-4, atol=1e-5)


def test_conv2d_subclass_convolution_op_through_tf_nn_conv2d():
    """keras.io subclassing_conv_layers: ``convolution_op`` written with ``tf.nn.conv2d``."""
    tf = _tf()

    class Standardized(kaffe.layers.Conv2D):
        def convolution_op(self, inputs, kernel):
            mean, var = tf.nn.moments(kernel, axes=[0, 1, 2], keepdims=True)
            return tf.nn.conv2d(inputs, (kernel - mean) / tf.sqrt(var + 1e-10),
                                padding="valid", strides=list(self.strides), name="conv")

    inputs = kaffe.Input((8, 8, 2))
    model = kaffe.Model(inputs, Standardized(4, 3, name="conv")(inputs))
    assert model.output.shape == (None, 6, 6, 4)
    x = np.random.default_rng(5).normal(size=(2, 8, 8, 2)).astype("float32")
    kernel, bias = model.get_layer("conv").get_weights()
    standardized = (kernel - kernel.mean((0, 1, 2), keepdims=True)) / np.sqrt(
        kernel.var((0, 1, 2), keepdims=True) + 1e-10)
    expected = keras.ops.convert_to_numpy(keras.ops.conv(x, standardized)) + bias
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)
