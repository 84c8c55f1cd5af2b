"""kaffe.applications against Keras 3 (torch backend): layer names, output shapes and parameter
counts of the same model built with weights=None; ImageNet weights read from a Keras 2-layout
.h5 file in a temporary Keras cache, giving Keras 3's predictions; preprocess_input and
decode_predictions; a ResNet50 that trains a step and saves a .keras file Keras 3 loads.

The default run builds a representative set; KAFFE_SLOW_TESTS=1 adds every other model."""
import hashlib
import json
import os

import h5py
import keras
import numpy as np
import pytest
import torch

import kaffe
import kaffe.applications as apps
from kaffe.engine.naming import clear_session

SLOW = os.environ.get("KAFFE_SLOW_TESTS") == "1"

FAST_MODELS = [
    ("VGG16", {"include_top": False, "input_shape": (64, 64, 3), "pooling": "max"}),
    ("ResNet50", {}),
    ("MobileNetV2", {"alpha": 0.35, "input_shape": (96, 96, 3)}),
    ("InceptionV3", {"include_top": False, "pooling": "avg"}),
    ("DenseNet121", {}),
    ("EfficientNetB0", {"classes": 10, "classifier_activation": None}),
    ("MobileNet", {"alpha": 0.25, "input_shape": (128, 128, 3), "include_top": False}),
    ("MobileNetV3Small", {}),
]
SLOW_MODELS = [
    ("VGG16", {}), ("VGG19", {}), ("ResNet101", {}), ("ResNet152", {}), ("ResNet50V2", {}),
    ("ResNet101V2", {}), ("ResNet152V2", {}), ("InceptionV3", {}), ("MobileNetV2", {}),
    ("MobileNetV2", {"alpha": 1.4, "include_top": False}),
    ("DenseNet169", {}), ("DenseNet201", {}), ("MobileNet", {}), ("Xception", {}),
    ("MobileNetV3Large", {}), ("MobileNetV3Large", {"minimalistic": True, "alpha": 0.75}),
    ("NASNetMobile", {}), ("NASNetLarge", {"include_top": False, "input_shape": (96, 96, 3)}),
] + [(f"EfficientNetB{i}", {}) for i in range(8)]


def _rows(model):
    return [(layer.name, tuple(layer.output.shape), layer.count_params())
            for layer in model.layers]


def _keras_builder(name):
    if name == "NASNetMobile":  # Keras 3 refuses it on torch; its NASNet() builds it
        from keras.src.applications import nasnet
        return lambda weights=None: nasnet.NASNet(
            (224, 224, 3), 1056, 4, 32, False, 2, True, weights, default_size=224,
            name="nasnet_mobile")
    return getattr(keras.applications, name)


def _build_both(name, kwargs):
    keras.backend.clear_session()
    k_model = _keras_builder(name)(weights=None, **kwargs)
    clear_session()
    return k_model, getattr(apps, name)(weights=None, **kwargs)


@pytest.mark.parametrize("name,kwargs", FAST_MODELS + (SLOW_MODELS if SLOW else []),
                         ids=lambda v: v if isinstance(v, str) else ",".join(map(str, v)))
def test_architecture_equals_keras(name, kwargs):
    k_model, f_model = _build_both(name, kwargs)
    assert f_model.name == k_model.name
    assert f_model.count_params() == k_model.count_params()
    assert _rows(f_model) == _rows(k_model)
    trainable = sum(int(np.prod(w.shape)) for w in k_model.trainable_weights)
    assert sum(t.numel() for t in f_model.trainable_weights) == trainable


def test_input_tensor_and_pooling():
    inputs = kaffe.Input((48, 48, 3))
    x = kaffe.layers.Rescaling(1 / 255)(inputs)
    model = apps.ResNet50V2(weights=None, include_top=False, input_tensor=x, pooling="max")
    assert model.inputs[0] is inputs
    assert model.output.shape == (None, 2048)
    assert model.layers[-1].name == "max_pool"
    out = model.predict(np.random.rand(2, 48, 48, 3).astype("float32"), verbose=0)
    assert out.shape == (2, 2048)


def test_argument_errors_say_what_was_received():
    with pytest.raises(ValueError, match="classes should be 1000"):
        apps.VGG16(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="weights=.nope"):
        apps.ResNet50(weights="nope")
    with pytest.raises(ValueError, match="at least 32x32"):
        apps.ResNet50(weights=None, include_top=False, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="pooling"):
        apps.DenseNet121(weights=None, include_top=False, pooling="mean")


# ------------------------------------------------------------------ ImageNet weights files
def write_keras2_weights(k_model, path):
    """Keras 2's ``save_weights`` h5 layout (what Keras's ImageNet files are) from a Keras 3
    model: ``layer_names`` on the root, one group per layer with ``weight_names``."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([l.name.encode() for l in k_model.layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in k_model.layers:
            g = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            g.attrs["weight_names"] = np.array([n.encode() for n in names])
            for n, w in zip(names, layer.weights):
                g.create_dataset(n, data=keras.ops.convert_to_numpy(w))


def _randomise_statistics(k_model, rng):
    """Random BN moving statistics, so inference-mode batch norm is really exercised."""
    for layer in k_model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))


def _set_statistics(norm, mean, variance):
    norm.set_weights([mean, variance, np.array(0)])
    norm.finalize_state()


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    return tmp_path / "models"


def test_imagenet_weights_from_keras_cache_predict_like_keras(keras_home):
    rng = np.random.default_rng(0)
    keras.backend.clear_session()
    k_model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    _randomise_statistics(k_model, rng)
    write_keras2_weights(
        k_model, keras_home / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5")
    model = apps.MobileNetV2(weights="imagenet", alpha=0.35, input_shape=(96, 96, 3))
    x = rng.uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    x = apps.mobilenet_v2.preprocess_input(x)
    expected = keras.ops.convert_to_numpy(k_model(x, training=False))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)


def test_efficientnet_imagenet_file_with_hash_check(keras_home, monkeypatch):
    rng = np.random.default_rng(1)
    keras.backend.clear_session()
    k_model = keras.applications.EfficientNetB0(weights=None, include_top=False,
                                                input_shape=(64, 64, 3))
    _randomise_statistics(k_model, rng)
    norm = k_model.get_layer("normalization")
    std = np.array([0.229, 0.224, 0.225])
    _set_statistics(norm, np.array([0.485, 0.456, 0.406]), std ** 2)
    path = keras_home / "efficientnetb0_notop.h5"
    write_keras2_weights(k_model, path)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    from kaffe.applications import efficientnet
    monkeypatch.setitem(efficientnet._HASHES, "b0", ("unused", md5))
    model = apps.EfficientNetB0(weights="imagenet", include_top=False, input_shape=(64, 64, 3))
    # kaffe's ImageNet model divides once more by sqrt(std), as Keras's does with these weights;
    # the Keras 3 model built with weights=None has no such layer: fold it into its variance.
    _set_statistics(norm, np.array([0.485, 0.456, 0.406]), std ** 2 * std)
    x = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(k_model(x, training=False))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-3, atol=1e-5)


def test_cached_file_with_wrong_md5_is_named_corrupt(keras_home):
    (keras_home / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"\x89HDF")
    with pytest.raises(ValueError, match="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 has "
                                         "md5 .*corrupt"):
        apps.VGG16(weights="imagenet", include_top=False, input_shape=(32, 32, 3))


def test_missing_weights_file_names_file_folder_and_url(keras_home):
    with pytest.raises(FileNotFoundError) as info:
        apps.ResNet50(weights="imagenet")
    message = str(info.value)
    assert "resnet50_weights_tf_dim_ordering_tf_kernels.h5" in message
    assert str(keras_home) in message
    assert ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
            "resnet50_weights_tf_dim_ordering_tf_kernels.h5") in message


# ------------------------------------------------------------------ preprocessing and decoding
@pytest.mark.parametrize("module", ["vgg16", "resnet50", "resnet_v2", "inception_v3",
                                    "mobilenet_v2", "densenet", "efficientnet"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_preprocess_input_equals_keras(module, data_format):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, (2, 5, 5, 3) if data_format == "channels_last" else (2, 3, 5, 5))
    k_fn = getattr(keras.applications, module).preprocess_input
    f_fn = getattr(apps, module).preprocess_input
    expected = np.asarray(k_fn(x.astype("float32").copy(), data_format=data_format))
    np.testing.assert_allclose(f_fn(x.astype("float32").copy(), data_format=data_format),
                               expected, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(f_fn(x[0].astype("uint8"), data_format=data_format),
                               k_fn(x[0].astype("uint8"), data_format=data_format),
                               rtol=1e-6, atol=1e-4)
    tensor_out = f_fn(torch.tensor(x, dtype=torch.float32), data_format=data_format)
    np.testing.assert_allclose(tensor_out.numpy(), expected, rtol=1e-6, atol=1e-4)


def test_decode_predictions_equals_keras(keras_home, monkeypatch):
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (keras_home / "imagenet_class_index.json").write_text(json.dumps(index))
    from kaffe.applications import imagenet_utils
    monkeypatch.setattr(imagenet_utils, "_class_index", None)
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX_HASH", None)
    from keras.src.applications import imagenet_utils as k_utils
    monkeypatch.setattr(k_utils, "CLASS_INDEX", index)
    preds = np.random.default_rng(3).random((3, 1000)).astype("float32")
    expected = keras.applications.resnet50.decode_predictions(preds, top=4)
    assert apps.resnet50.decode_predictions(preds, top=4) == expected
    with pytest.raises(ValueError, match=r"\(samples, 1000\).*\(3, 10\)"):
        apps.vgg16.decode_predictions(preds[:, :10])


# ------------------------------------------------------------------ training and export
def test_resnet50_trains_a_step_and_keras_loads_its_keras_file(tmp_path):
    model = apps.ResNet50(weights=None, input_shape=(32, 32, 3), classes=5)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 5, 4)
    before = model.get_layer("conv1_conv").get_weights()[0].copy()
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(model.get_layer("conv1_conv").get_weights()[0], before)
    path = tmp_path / "resnet50.keras"
    model.save(path)
    k_model = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(k_model(x, training=False)),
                               model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ served as keras.applications
def test_kaffe_run_serves_keras_applications_modules(tmp_path, capsys, keras_home):
    from kaffe.cli.main import main
    script = tmp_path / "apps.py"
    script.write_text(
        "import numpy as np\n"
        "from keras.applications.resnet50 import ResNet50, preprocess_input\n"
        "from tensorflow.keras.applications import MobileNetV2, mobilenet_v2\n"
        "from keras.applications import imagenet_utils, vgg16\n"
        "m = MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=3)\n"
        "x = mobilenet_v2.preprocess_input(np.full((1, 96, 96, 3), 255.0))\n"
        "print('mobilenet', m.predict(x, verbose=0).shape, float(x.max()))\n"
        "print('caffe', preprocess_input(np.zeros((1, 2, 2, 3)))[0, 0, 0].tolist())\n"
        "vgg16.VGG16(include_top=False, input_shape=(32, 32, 3))\n")
    code = main(["run", str(script)])
    captured = capsys.readouterr()
    assert "mobilenet (1, 3) 1.0" in captured.out
    assert "caffe [-103.939, -116.779, -123.68]" in captured.out
    assert code == 1 and "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in captured.err
    assert str(keras_home) in captured.err  # the weights file is looked for in KERAS_HOME
