"""Model files: kaffe <-> Keras 3 (the oracle loads what kaffe writes and vice versa), kaffe round
trips, Lambda by name only, clear errors on bad files, atomic writes."""
import json
import os
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import kaffe  # noqa: E402
from kaffe import layers as L  # noqa: E402

keras = pytest.importorskip("keras")

RTOL, ATOL = 1e-5, 1e-6
rng = np.random.default_rng(0)


def _predict(model, x):
    out = model.predict(x, verbose=0)
    return [np.asarray(o) for o in out] if isinstance(out, list) else [np.asarray(out)]


def assert_same_predictions(a, b, x):
    for pa, pb in zip(_predict(a, x), _predict(b, x), strict=True):
        np.testing.assert_allclose(pa, pb, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------ models used below
def kaffe_mlp():
    model = kaffe.Sequential([L.Dense(16, activation="relu", input_shape=(8,)), L.Dropout(0.3),
                              L.Dense(3, activation="softmax")])
    model.compile(optimizer=kaffe.optimizers.Adam(learning_rate=0.01),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model, rng.random((6, 8), dtype=np.float32)


def kaffe_multi_io():
    a, b = kaffe.Input((8,), name="a"), kaffe.Input((3,), name="b")
    shared = L.Dense(4, name="shared", activation="tanh")
    x = L.concatenate([shared(a), L.Dense(4)(b)])
    x = L.Reshape((2, 4))(x)
    x = L.Permute((2, 1))(x)
    x = L.Flatten()(x)
    y = L.Dense(2, activation="sigmoid", name="y")(x)
    z = L.add([shared(L.Dense(8)(b)), L.Activation("relu")(L.Dense(4)(a))])
    z = L.Dense(1, name="z")(L.RepeatVector(2)(z))
    model = kaffe.Model([a, b], [y, z])
    return model, [rng.random((5, 8), dtype=np.float32), rng.random((5, 3), dtype=np.float32)]


def kaffe_embedding():
    model = kaffe.Sequential([L.Embedding(20, 4, input_length=6), L.Flatten(), L.Dense(2)])
    return model, rng.integers(0, 20, size=(5, 6))


def kaffe_nested():
    inner = kaffe.Sequential([kaffe.Input((8,)), L.Dense(5, activation="relu")], name="inner")
    i = kaffe.Input((5,))
    head = kaffe.Model(i, L.Dense(2)(i), name="head")
    a = kaffe.Input((8,))
    h = inner(a)
    model = kaffe.Model(a, [head(h), head(L.Dense(5)(a))])
    return model, rng.random((4, 8), dtype=np.float32)


# ------------------------------------------------------------------ kaffe -> Keras 3
@pytest.mark.parametrize("build", [kaffe_mlp, kaffe_multi_io, kaffe_embedding, kaffe_nested])
def test_keras_loads_kaffe_file(build, tmp_path):
    model, x = build()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_same_predictions(model, loaded, x)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_keras_loads_kaffe_compile_state(tmp_path):
    model, _ = kaffe_mlp()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer).__name__ == "Adam"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.01)
    assert loaded.loss == "categorical_crossentropy"


def test_keras_reads_kaffe_weights_file(tmp_path):
    model, x = kaffe_multi_io()
    model.save_weights(tmp_path / "w.weights.h5")
    twin = keras.models.model_from_json(model.to_json())
    twin.load_weights(tmp_path / "w.weights.h5")
    assert_same_predictions(model, twin, x)


# ------------------------------------------------------------------ Keras 3 -> kaffe
def keras_models():
    k = keras.layers
    mlp = keras.Sequential([keras.Input((8,)), k.Dense(16, activation="relu"), k.Dropout(0.5),
                            k.Dense(3, activation="softmax")])
    mlp.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9), loss="mse",
                metrics=["mae"])
    a, b = keras.Input((6,), name="a"), keras.Input((4,), name="b")
    shared = k.Dense(4, name="shared")
    inner = keras.Sequential([keras.Input((8,)), k.Dense(3)], name="inner")
    x = k.concatenate([shared(a), k.Dense(4)(b)])
    y = inner(x)
    z = k.multiply([shared(k.Dense(6)(b)), k.Dense(4, activation="tanh")(a)])
    func = keras.Model([a, b], [y, k.Dense(1)(z)])
    emb = keras.Sequential([keras.Input((5,), dtype="int32"), k.Embedding(10, 3), k.Flatten(),
                            k.Dense(1)])
    return [(mlp, rng.random((4, 8), dtype=np.float32)),
            (func, [rng.random((4, 6), dtype=np.float32), rng.random((4, 4), dtype=np.float32)]),
            (emb, rng.integers(0, 10, size=(4, 5)).astype("int32"))]


def test_kaffe_loads_keras_files(tmp_path):
    for i, (kmodel, x) in enumerate(keras_models()):
        path = tmp_path / f"k{i}.keras"
        kmodel.save(path)
        model = kaffe.models.load_model(path)
        assert_same_predictions(kmodel, model, x)
        assert [layer.name for layer in model.layers] == [layer.name for layer in kmodel.layers]
    assert type(kaffe.models.load_model(tmp_path / "k0.keras").optimizer).__name__ == "SGD"


def test_kaffe_loads_keras_compile_state(tmp_path):
    kmodel, _ = keras_models()[0]
    kmodel.save(tmp_path / "k.keras")
    model = kaffe.models.load_model(tmp_path / "k.keras")
    assert model.compiled
    assert model._compile_args["loss"] == "mse" and model._compile_args["metrics"] == ["mae"]
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    assert model.optimizer.momentum == pytest.approx(0.9)
    assert not kaffe.models.load_model(tmp_path / "k.keras", compile=False).compiled


def test_kaffe_loads_keras_legacy_h5(tmp_path):
    kmodel, x = keras_models()[1]
    kmodel.save(tmp_path / "k.h5")
    assert_same_predictions(kmodel, kaffe.models.load_model(tmp_path / "k.h5"), x)


def test_keras_loads_kaffe_legacy_h5(tmp_path):
    model, x = kaffe_multi_io()
    model.save(tmp_path / "m.h5")
    assert_same_predictions(model, keras.saving.load_model(tmp_path / "m.h5"), x)
    assert_same_predictions(model, kaffe.models.load_model(tmp_path / "m.h5"), x)


def rewrite_keras_file(src, dst, edit):
    """Copy a .keras zip, letting ``edit(members)`` change its members (name -> bytes)."""
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    edit(members)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_unknown_keras_arguments_are_reported(tmp_path):
    kmodel = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")])
    kmodel.save(tmp_path / "k.keras")

    def add_lora(members):
        config = json.loads(members["config.json"])
        config["config"]["layers"][1]["config"]["lora_rank"] = 4
        members["config.json"] = json.dumps(config)
    rewrite_keras_file(tmp_path / "k.keras", tmp_path / "bad.keras", add_lora)
    with pytest.raises(ValueError, match=r"bad\.keras.*'head'.*lora_rank=4"):
        kaffe.models.load_model(tmp_path / "bad.keras")


def test_layer_kaffe_lacks_is_named(tmp_path):
    kmodel = keras.Sequential([keras.Input((3,)), keras.layers.RMSNormalization(),
                               keras.layers.Dense(2)])
    kmodel.save(tmp_path / "k.keras")
    with pytest.raises(ValueError, match=r"k\.keras.*kaffe has no layer RMSNormalization"):
        kaffe.models.load_model(tmp_path / "k.keras")


def conv_bn_models(lib):
    """The same conv + batch-norm net in Keras or kaffe (``lib``), with non-trivial BN stats."""
    k = lib.layers
    return lib.Sequential([lib.Input((9, 9, 2)), k.Conv2D(4, 3, padding="same", activation="relu"),
                           k.BatchNormalization(), k.MaxPooling2D(2), k.Conv2D(3, 2),
                           k.Flatten(), k.Dense(2)])


def rnn_models(lib):
    k = lib.layers
    return lib.Sequential([lib.Input((5, 3)), k.LSTM(4, return_sequences=True),
                           k.BatchNormalization(), k.GRU(3), k.Dense(1)])


@pytest.mark.parametrize("build, shape", [(conv_bn_models, (3, 9, 9, 2)), (rnn_models, (3, 5, 3))])
def test_conv_bn_and_rnn_interop(build, shape, tmp_path):
    x = rng.random(shape, dtype=np.float32)
    kmodel = build(keras)
    for w in kmodel.weights:  # moving statistics away from 0/1 so that they are tested too
        w.assign(rng.normal(size=tuple(w.shape)).astype("float32") * 0.3
                 + (1.0 if "variance" in w.path else 0.0))
    kmodel.save(tmp_path / "k.keras")
    model = kaffe.models.load_model(tmp_path / "k.keras")
    assert_same_predictions(kmodel, model, x)
    model.save(tmp_path / "m.keras")
    assert_same_predictions(model, keras.saving.load_model(tmp_path / "m.keras"), x)
    fresh = build(kaffe)
    fresh.load_weights(tmp_path / "k.keras")
    assert_same_predictions(kmodel, fresh, x)


# ------------------------------------------------------------------ kaffe -> kaffe
@pytest.mark.parametrize("build", [kaffe_mlp, kaffe_multi_io, kaffe_embedding, kaffe_nested])
def test_round_trip(build, tmp_path):
    model, x = build()
    model.save(tmp_path / "m.keras")
    loaded = kaffe.models.load_model(tmp_path / "m.keras")
    assert_same_predictions(model, loaded, x)
    assert json.loads(loaded.to_json())["config"] == json.loads(model.to_json())["config"]
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_round_trip_compile_state(tmp_path):
    model, x = kaffe_mlp()
    model.compile(optimizer=kaffe.optimizers.RMSprop(learning_rate=0.003),
                  loss={"dense_1": "categorical_crossentropy"}, metrics=["accuracy", "mae"])
    model.save(tmp_path / "m.keras")
    loaded = kaffe.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer).__name__ == "RMSprop"
    assert loaded.optimizer.learning_rate == pytest.approx(0.003)
    assert loaded._compile_args["loss"] == {"dense_1": "categorical_crossentropy"}
    assert loaded._compile_args["metrics"] == ["accuracy", "mae"]
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=6)]
    loaded.fit(x, y, epochs=1, verbose=0)  # the restored compile state trains


def test_loss_and_metric_objects_in_compile_state_round_trip_both_ways(tmp_path):
    # keras.io's functional-API guide: compile(loss=SparseCategoricalCrossentropy(from_logits=
    # True), ...), save, load_model; the loss is written as a {class_name, config} object
    def build(lib):
        inputs = lib.Input((4,))
        model = lib.Model(inputs, lib.layers.Dense(3)(inputs))
        model.compile(loss=lib.losses.SparseCategoricalCrossentropy(from_logits=True),
                      optimizer=lib.optimizers.RMSprop(),
                      metrics=["accuracy", lib.metrics.SparseTopKCategoricalAccuracy(k=2)])
        return model

    x, y = rng.random((8, 4), dtype=np.float32), rng.integers(0, 3, size=8)
    for writer, reader in ((kaffe, kaffe), (kaffe, keras), (keras, kaffe)):
        path = tmp_path / f"{writer.__name__}_{reader.__name__}.keras"
        build(writer).save(path)
        loaded = (kaffe.models.load_model if reader is kaffe else keras.saving.load_model)(path)
        assert type(loaded.loss).__name__ == "SparseCategoricalCrossentropy"
        assert loaded.loss.get_config()["from_logits"] is True
        logs = loaded.evaluate(x, y, verbose=0, return_dict=True)
        assert set(logs) == {"loss", "accuracy", "sparse_top_k_categorical_accuracy"}


def test_weights_round_trip_and_legacy_h5_weights(tmp_path):
    model, x = kaffe_multi_io()
    for name in ("w.weights.h5", "w.h5"):
        twin, _ = kaffe_multi_io()
        model.save_weights(tmp_path / name)
        twin.load_weights(tmp_path / name)
        assert_same_predictions(model, twin, x)
    with h5py.File(tmp_path / "w.h5") as f:
        assert "shared/kernel:0" in f["shared"]


def test_to_json_and_model_from_json():
    model, x = kaffe_multi_io()
    text = model.to_json()
    assert json.loads(text)["class_name"] == "Functional"
    clone = kaffe.models.model_from_json(text)
    clone.set_weights(model.get_weights())
    assert_same_predictions(model, clone, x)
    kclone = keras.models.model_from_json(text)
    kclone.set_weights(model.get_weights())
    assert_same_predictions(model, kclone, x)


# ------------------------------------------------------------------ Lambda
def double(x):
    return x * 2.0


def test_lambda_needs_custom_objects(tmp_path):
    model = kaffe.Sequential([L.Dense(4, input_shape=(3,)), L.Lambda(double), L.Dense(2)])
    x = rng.random((3, 3), dtype=np.float32)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        config = json.loads(zf.read("config.json"))
    assert config["config"]["layers"][2]["config"]["function"] == "double"  # a name, no code
    with pytest.raises(ValueError, match=r"custom_objects=\{'double': double\}"):
        kaffe.models.load_model(tmp_path / "m.keras")
    loaded = kaffe.models.load_model(tmp_path / "m.keras", custom_objects={"double": double})
    assert_same_predictions(model, loaded, x)


def test_keras_lambda_bytecode_is_never_run(tmp_path):
    plus = keras.layers.Lambda(lambda t: t + 1.0, name="plus")
    kmodel = keras.Sequential([keras.Input((3,)), plus])
    kmodel.save(tmp_path / "k.keras")
    with pytest.raises(ValueError, match=r"bytecode.*custom_objects=\{'plus': fn\}"):
        kaffe.models.load_model(tmp_path / "k.keras")
    loaded = kaffe.models.load_model(tmp_path / "k.keras",
                                     custom_objects={"plus": lambda t: t + 1.0})
    assert_same_predictions(kmodel, loaded, rng.random((2, 3), dtype=np.float32))


# ------------------------------------------------------------------ bad files
def test_truncated_weights_file_names_file(tmp_path):
    model, _ = kaffe_mlp()
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"w\.weights\.h5.*(truncated|cannot)"):
        model.load_weights(path)


def test_empty_and_foreign_files(tmp_path):
    model, _ = kaffe_mlp()
    (tmp_path / "empty.weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.weights\.h5.*empty"):
        model.load_weights(tmp_path / "empty.weights.h5")
    (tmp_path / "text.weights.h5").write_text("not weights at all")
    with pytest.raises(ValueError, match=r"text\.weights\.h5.*not an HDF5 file"):
        model.load_weights(tmp_path / "text.weights.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"other\.h5.*no Keras weights"):
        model.load_weights(tmp_path / "other.h5")
    with pytest.raises(ValueError, match=r"text\.weights\.h5.*neither"):
        kaffe.models.load_model(tmp_path / "text.weights.h5")


def test_weights_of_another_model_are_refused_untouched(tmp_path):
    model, _ = kaffe_mlp()
    other = kaffe.Sequential([L.Dense(16, input_shape=(9,)), L.Dense(3)])
    other.save_weights(tmp_path / "o.weights.h5")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"o\.weights\.h5.*layers/dense/vars/0 with shape "
                                         r"\(8, 16\).*found \(9, 16\)"):
        model.load_weights(tmp_path / "o.weights.h5")
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_transposed_weights_are_refused(tmp_path):
    model = kaffe.Sequential([L.Dense(64, input_shape=(784,))])
    with h5py.File(tmp_path / "t.weights.h5", "w") as f:
        f["layers/dense/vars/0"] = np.zeros((64, 784), np.float32)
        f["layers/dense/vars/1"] = np.zeros((64,), np.float32)
    with pytest.raises(ValueError, match=r"t\.weights\.h5.*expected layers/dense/vars/0 with "
                                         r"shape \(784, 64\).*found \(64, 784\)"):
        model.load_weights(tmp_path / "t.weights.h5")


def test_npz_weights_are_refused_without_unpickling(tmp_path):
    kmodel = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    kmodel.save(tmp_path / "k.keras")

    def to_npz(members):  # Keras's npz weights store pickled dicts
        del members["model.weights.h5"]
        members["model.weights.npz"] = b"PK-not-read"
    rewrite_keras_file(tmp_path / "k.keras", tmp_path / "n.keras", to_npz)
    with pytest.raises(ValueError, match=r"n\.keras.*unpickling"):
        kaffe.models.load_model(tmp_path / "n.keras")


# ------------------------------------------------------------------ atomic writes
def test_save_leaves_no_temp_file_and_failed_save_keeps_old_file(tmp_path):
    model, _ = kaffe_mlp()
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    model.save(tmp_path / "m.h5")
    assert sorted(os.listdir(tmp_path)) == ["m.h5", "m.keras", "m.weights.h5"]
    before = (tmp_path / "m.keras").read_bytes()
    bad = kaffe.Sequential([L.Dense(2, input_shape=(3,)), L.Lambda(double)])
    bad.layers[1].get_config = lambda: {"name": "x", "function": object()}  # not JSON-able
    with pytest.raises(TypeError):
        bad.save(tmp_path / "m.keras")
    assert (tmp_path / "m.keras").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.h5", "m.keras", "m.weights.h5"]
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.keras", overwrite=False)


def test_keras_loads_kaffe_multi_head_attention_model(tmp_path):
    q, v = kaffe.Input((5, 8)), kaffe.Input((7, 8))
    model = kaffe.Model([q, v], kaffe.layers.MultiHeadAttention(num_heads=2, key_dim=4)(q, v))
    model.save(str(tmp_path / "mha.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "mha.keras"))
    x = [rng.random((2, 5, 8), dtype=np.float32), rng.random((2, 7, 8), dtype=np.float32)]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x), rtol=1e-5, atol=1e-6)


def test_keras3_functional_text_model_with_mask_zero_loads(tmp_path):
    """Keras 3 saves the Embedding mask as a NotEqual op feeding LSTM(mask=...); kaffe rebuilds
    the mask itself and predicts the same on padded input."""
    ids = keras.Input((5,), dtype="int32")
    states = keras.layers.LSTM(3)(keras.layers.Embedding(10, 4, mask_zero=True)(ids))
    keras.Model(ids, keras.layers.Dense(2)(states)).save(tmp_path / "text.keras")
    kmodel = keras.saving.load_model(tmp_path / "text.keras")
    model = kaffe.models.load_model(tmp_path / "text.keras")
    x = np.array([[1, 2, 0, 0, 0], [3, 0, 0, 0, 0], [4, 5, 6, 7, 8]])
    np.testing.assert_allclose(model.predict(x), kmodel.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_only_rank_zero_writes_in_data_parallel_training(tmp_path, monkeypatch):
    """Under torchrun every process runs the script's ``model.save``; only rank 0 writes."""
    model = kaffe.models.Sequential([kaffe.Input((3,)), L.Dense(2)])
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv("RANK", "0")
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "m.weights.h5"]


def test_user_layer_without_get_config_saves_its_constructor_arguments(tmp_path):
    # Keras 3 records a user layer's __init__ arguments as its config (keras.io's
    # MinimalRNNCell and most subclassing examples write no get_config)
    def make(lib):
        class Scale(lib.layers.Layer):
            def __init__(self, units, factor=2.0, **kwargs):
                super().__init__(**kwargs)
                self.units, self.factor = units, factor

            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                         initializer="ones")

            def call(self, x):
                return lib.ops.matmul(x, self.w) * self.factor
        return Scale

    x = np.ones((2, 3), "float32")
    for writer, reader in ((kaffe, keras), (keras, kaffe), (kaffe, kaffe)):
        scale = make(writer)
        inputs = writer.Input((3,))
        model = writer.Model(inputs, scale(4, factor=5.0)(inputs))
        assert model.layers[-1].get_config()["factor"] == 5.0
        path = tmp_path / f"{writer.__name__}_{reader.__name__}.keras"
        model.save(path)
        load = kaffe.models.load_model if reader is kaffe else keras.saving.load_model
        loaded = load(path, custom_objects={"Scale": make(reader)})
        np.testing.assert_allclose(np.asarray(loaded.predict(x, verbose=0)), np.full((2, 4), 15.0))
