"""A tf.keras 2.x ``.h5`` file, written here byte-layout-for-byte-layout the way TF-Keras 2.15
writes one (``model_config`` attribute with Keras 2's config JSON, ``model_weights/<layer>/
<layer>/<var>:0`` datasets, ``layer_names``/``weight_names`` attributes), then loaded by kaffe.
The weights come from a Keras 3 model of the same architecture, which is the output oracle."""
import json

import h5py
import keras
import numpy as np

import kaffe

INIT = {"class_name": "GlorotUniform", "config": {"seed": None}}
ZEROS = {"class_name": "Zeros", "config": {}}


def keras2_layer(class_name, name, inbound, **config):
    config = {"name": name, "trainable": True, "dtype": "float32", **config}
    entry = {"class_name": class_name, "config": config, "name": name,
             "inbound_nodes": [[[src, 0, 0, {}] for src in inbound]] if inbound else []}
    return entry


def keras2_functional_config():
    layers = [
        keras2_layer("InputLayer", "input_1", [], batch_input_shape=[None, 6, 6, 2],
                     sparse=False, ragged=False),
        keras2_layer("Conv2D", "conv2d", ["input_1"], filters=3, kernel_size=[3, 3],
                     strides=[1, 1], padding="same", data_format="channels_last",
                     dilation_rate=[1, 1], groups=1, activation="relu", use_bias=True,
                     kernel_initializer=INIT, bias_initializer=ZEROS, kernel_regularizer=None,
                     bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                     bias_constraint=None),
        keras2_layer("BatchNormalization", "batch_normalization", ["conv2d"], axis=[3],
                     momentum=0.99, epsilon=0.001, center=True, scale=True,
                     beta_initializer=ZEROS, gamma_initializer={"class_name": "Ones", "config": {}},
                     moving_mean_initializer=ZEROS,
                     moving_variance_initializer={"class_name": "Ones", "config": {}},
                     beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                     gamma_constraint=None),
        keras2_layer("MaxPooling2D", "max_pooling2d", ["batch_normalization"], pool_size=[2, 2],
                     padding="valid", strides=[2, 2], data_format="channels_last"),
        keras2_layer("Flatten", "flatten", ["max_pooling2d"], data_format="channels_last"),
        keras2_layer("Dense", "dense", ["flatten"], units=4, activation="softmax", use_bias=True,
                     kernel_initializer=INIT, bias_initializer=ZEROS, kernel_regularizer=None,
                     bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                     bias_constraint=None),
    ]
    return {"class_name": "Functional",
            "config": {"name": "model", "layers": layers, "input_layers": [["input_1", 0, 0]],
                       "output_layers": [["dense", 0, 0]]}}


VARIABLES = {"conv2d": ["kernel", "bias"], "batch_normalization": ["gamma", "beta", "moving_mean",
                                                                  "moving_variance"],
             "dense": ["kernel", "bias"]}


def write_keras2_h5(path, weights_by_layer):
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(keras2_functional_config())
        group = f.create_group("model_weights")
        names = ["input_1", "conv2d", "batch_normalization", "max_pooling2d", "flatten", "dense"]
        group.attrs["layer_names"] = np.array([n.encode() for n in names])
        group.attrs["backend"] = "tensorflow"
        group.attrs["keras_version"] = "2.15.0"
        for name in names:
            layer_group = group.create_group(name)
            arrays = weights_by_layer.get(name, [])
            weight_names = [f"{name}/{var}:0" for var in VARIABLES.get(name, [])]
            layer_group.attrs["weight_names"] = np.array([w.encode() for w in weight_names])
            for weight_name, array in zip(weight_names, arrays):
                layer_group.create_dataset(weight_name, data=array)


def keras3_twin():
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv2d")(inp)
    x = keras.layers.BatchNormalization(name="batch_normalization")(x)
    x = keras.layers.MaxPooling2D(name="max_pooling2d")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="dense")(x))


def test_tf_keras2_functional_h5_loads_and_predicts_like_keras(tmp_path):
    twin = keras3_twin()
    rng = np.random.default_rng(1)
    for w in twin.weights:
        w.assign(rng.normal(size=tuple(w.shape)).astype("float32") * 0.5
                 + (1.5 if "variance" in w.path else 0.0))
    weights = {layer.name: layer.get_weights() for layer in twin.layers if layer.get_weights()}
    path = tmp_path / "tf2_model.h5"
    write_keras2_h5(path, weights)
    model = kaffe.models.load_model(str(path), compile=False)
    assert [l.name for l in model.layers][1:] == [l.name for l in twin.layers][1:]
    x = rng.random((5, 6, 6, 2), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x), twin.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_tf_keras2_h5_with_wrong_weight_shape_names_layer_and_shapes(tmp_path):
    twin = keras3_twin()
    weights = {layer.name: layer.get_weights() for layer in twin.layers if layer.get_weights()}
    weights["dense"] = [weights["dense"][0].T, weights["dense"][1]]
    path = tmp_path / "bad.h5"
    write_keras2_h5(path, weights)
    try:
        kaffe.models.load_model(str(path), compile=False)
    except ValueError as error:
        message = str(error)
    else:
        raise AssertionError("a transposed kernel was accepted")
    assert "dense" in message and "(27, 4)" in message and "(4, 27)" in message
