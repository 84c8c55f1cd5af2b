"""Keras's utilities beside the engine: TensorBoard under ``kaffe run``, NumPy integers as layer
arguments, ``*_dataset_from_directory``, ``pad_sequences``, ``Progbar``, ``clone_model``, the
scikit-learn wrappers and Keras 2's ``predict_classes``."""
import os
import subprocess
import sys

import numpy as np
import pytest

import kaffe
from kaffe import layers


def kaffe_run(path, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", KERAS_BACKEND="torch")
    return subprocess.run([sys.executable, "-m", "kaffe.cli.main", "run", str(path)],
                          capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


# -- bugs --------------------------------------------------------------------------------------

def test_tensorboard_under_kaffe_run_writes_real_event_files(tmp_path):
    script = tmp_path / "tb.py"
    script.write_text(
        "import numpy as np\n"
        "import tensorflow as tf\n"  # the shim is in sys.modules before tensorboard looks
        "from keras.models import Sequential\n"
        "from keras.layers import Dense\n"
        "from keras.callbacks import TensorBoard\n"
        "m = Sequential([Dense(2, input_shape=(3,))])\n"
        "m.compile('sgd', 'mse')\n"
        "m.fit(np.ones((8, 3)), np.ones((8, 2)), epochs=2, verbose=0,\n"
        "      validation_split=0.25, callbacks=[TensorBoard(log_dir='logs')])\n")
    result = kaffe_run(script, tmp_path)
    assert result.returncode == 0, result.stderr
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    for run in ("train", "validation"):
        acc = EventAccumulator(str(tmp_path / "logs" / run))
        acc.Reload()
        tags = acc.Tags()["scalars"] + acc.Tags().get("tensors", [])
        assert "epoch_loss" in tags, (run, acc.Tags())


def test_numpy_integers_are_accepted_wherever_a_layer_takes_ints():
    pool = layers.MaxPooling2D(pool_size=(np.int64(2), np.int64(2)), strides=np.int32(2))
    assert pool.get_config()["pool_size"] == (2, 2)
    assert type(pool.get_config()["strides"][0]) is int
    model = kaffe.Sequential([
        kaffe.Input((8, 8, 1)),
        layers.Conv2D(np.int64(4), (np.int64(3), np.int64(3)), padding="same"),
        pool,
        layers.Reshape((np.int64(16), np.int64(4))),
        layers.LSTM(np.int16(3), return_sequences=False),
        layers.Dense(np.uint8(5)),
        layers.Dropout(np.float32(0.5)),
    ])
    assert model.output_shape == (None, 5)
    emb = layers.Embedding(np.int64(10), np.int64(4))
    import torch
    assert tuple(emb(torch.tensor([[1, 2]])).shape) == (1, 2, 4)


# -- *_dataset_from_directory ------------------------------------------------------------------

@pytest.fixture
def image_folders(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for cls, count in (("b_cats", 4), ("a_dogs", 5), (".hidden", 2)):
        (root / cls / "deeper").mkdir(parents=True)
        for i in range(count):
            where = root / cls / ("deeper" if i == 1 else "")
            Image.fromarray(rng.integers(0, 256, (12, 16, 3), np.uint8)).save(
                where / f"img{i}.png")
    (root / "a_dogs" / "readme.txt").write_text("not an image")
    return root


def keras_index(directory, **kwargs):
    from keras.src.utils import dataset_utils
    return dataset_utils.index_directory(str(directory), formats=kwargs.pop("formats"), **kwargs)


@pytest.mark.parametrize("seed", [1, 7])
def test_image_dataset_file_order_labels_and_split_equal_keras(image_folders, seed, capsys):
    from keras.src.utils import dataset_utils
    from kaffe.utils import image_dataset_from_directory
    paths, labels, names = keras_index(image_folders, labels="inferred", shuffle=True, seed=seed,
                                       formats=(".bmp", ".gif", ".jpeg", ".jpg", ".png"))
    for subset in ("training", "validation"):
        ds = image_dataset_from_directory(image_folders, validation_split=0.34, subset=subset,
                                          seed=seed, image_size=(12, 16), batch_size=3)
        want_paths, want_labels = dataset_utils.get_training_or_validation_split(
            paths, labels, 0.34, subset)
        assert ds.class_names == names == ["a_dogs", "b_cats"]
        assert ds.file_paths == want_paths
        x, y = ds[0]
        assert x.shape == (3, 12, 16, 3) and x.dtype == np.float32 and y.dtype == np.int32
        np.testing.assert_array_equal(y, want_labels[:3])
        from PIL import Image
        np.testing.assert_array_equal(x[0], np.asarray(Image.open(want_paths[0]), np.float32))
    train, val = image_dataset_from_directory(image_folders, validation_split=0.34,
                                              subset="both", seed=seed, image_size=(6, 8),
                                              label_mode="categorical")
    assert len(train.file_paths) + len(val.file_paths) == 9
    x, y = train[0]
    assert x.shape[1:] == (6, 8, 3) and y.shape[1] == 2 and set(y.sum(1)) == {1.0}


def test_image_dataset_resizes_as_keras_resize(image_folders):
    import keras
    from kaffe.utils import image_dataset_from_directory
    for kwargs in ({"interpolation": "bilinear"}, {"interpolation": "nearest"},
                   {"interpolation": "bilinear", "crop_to_aspect_ratio": True},
                   {"interpolation": "bicubic"}):
        ds = image_dataset_from_directory(image_folders, image_size=(5, 7), shuffle=False,
                                          batch_size=None, label_mode=None, **kwargs)
        from PIL import Image
        original = np.asarray(Image.open(ds.file_paths[0]), np.float32)
        want = keras.ops.convert_to_numpy(keras.ops.image.resize(original, (5, 7), **kwargs))
        np.testing.assert_allclose(ds[0], want, atol=1e-3)


def test_image_dataset_labels_modes_and_errors(image_folders):
    from kaffe.utils import image_dataset_from_directory
    ds = image_dataset_from_directory(image_folders, label_mode="binary", shuffle=False,
                                      image_size=(4, 4), color_mode="grayscale")
    x, y = ds[0]
    assert x.shape == (9, 4, 4, 1) and y.shape == (9, 1) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0], [0] * 5 + [1] * 4)
    with pytest.raises(ValueError, match="seed"):
        image_dataset_from_directory(image_folders, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match="class_names"):
        image_dataset_from_directory(image_folders, class_names=["a_dogs", "zebras"])
    with pytest.raises(ValueError, match="labels"):
        image_dataset_from_directory(image_folders, labels=[0, 1])
    broken = image_folders / "a_dogs" / "broken.png"
    broken.write_bytes(b"not a png")
    ds = image_dataset_from_directory(image_folders, shuffle=False, image_size=(4, 4))
    from kaffe.preprocessing.image import ImageDecodeError
    with pytest.raises(ImageDecodeError, match="broken.png"):
        ds[0]


def test_text_dataset_equals_keras_order(tmp_path):
    from kaffe.utils import text_dataset_from_directory
    for cls in ("neg", "pos"):
        (tmp_path / cls).mkdir()
        for i in range(4):
            (tmp_path / cls / f"{i}.txt").write_text(f"{cls} review number {i} " * (i + 1))
    paths, labels, names = keras_index(tmp_path, labels="inferred", shuffle=True, seed=3,
                                       formats=(".txt",))
    ds = text_dataset_from_directory(tmp_path, seed=3, batch_size=5, max_length=12)
    assert ds.file_paths == paths and ds.class_names == names
    texts, y = ds[0]
    assert list(texts) == [open(p).read()[:12] for p in paths[:5]]
    np.testing.assert_array_equal(y, labels[:5])


def test_timeseries_dataset_follows_keras_documented_examples():
    from kaffe.utils import timeseries_dataset_from_array
    data = np.arange(100)
    ds = timeseries_dataset_from_array(data[:99], None, sequence_length=10, sampling_rate=2,
                                       sequence_stride=3, batch_size=128)
    (x,) = (ds[0],)
    np.testing.assert_array_equal(x[0], np.arange(0, 20, 2))
    np.testing.assert_array_equal(x[1], np.arange(3, 23, 2))
    np.testing.assert_array_equal(x[-1], np.arange(78, 98, 2))
    inputs, targets = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10,
                                                    batch_size=16)[0]
    np.testing.assert_array_equal(inputs[0], data[:10])
    assert targets[0] == data[10] and inputs.shape == (16, 10)
    ds = timeseries_dataset_from_array(data, data, 5, shuffle=True, seed=4, batch_size=None,
                                       start_index=10, end_index=60)
    order = np.arange(46)
    np.random.RandomState(4).shuffle(order)
    window, target = ds[0]
    np.testing.assert_array_equal(window, data[10 + order[0]:15 + order[0]])
    assert target == data[10 + order[0]] and len(ds) == 46


def test_pad_sequences_and_progbar_equal_keras():
    import keras
    from kaffe.utils import Progbar, pad_sequences
    seqs = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
    for kwargs in ({}, {"maxlen": 4, "padding": "post", "truncating": "post", "value": -1}):
        np.testing.assert_array_equal(pad_sequences(seqs, **kwargs),
                                      keras.utils.pad_sequences(seqs, **kwargs))
    ours, theirs = Progbar(10, verbose=0, stateful_metrics=["lr"]), keras.utils.Progbar(
        10, verbose=0, stateful_metrics=["lr"])
    for step, values in ((2, [("loss", 1.0), ("lr", 0.1)]), (5, [("loss", 4.0), ("lr", 0.2)]),
                         (6, [("loss", 0.5)])):
        ours.update(step, values)
        theirs.update(step, values)
    ours.add(2, [("loss", 3.0)])
    theirs.add(2, [("loss", 3.0)])
    for name in ("loss", "lr"):
        total, count = theirs._values[name]
        assert ours._sums[name][0] / ours._sums[name][1] == pytest.approx(total / count)


# -- models ------------------------------------------------------------------------------------

def test_clone_model_matches_keras_architecture_with_fresh_weights():
    import keras
    from kaffe.models import clone_model
    shared = layers.Dense(4, name="shared")
    a, b = kaffe.Input((3,), name="a"), kaffe.Input((3,), name="b")
    out = layers.Dense(1, name="out")(layers.concatenate([shared(a), shared(b)]))
    model = kaffe.Model([a, b], out)
    clone = clone_model(model)
    ka, kb = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    kshared = keras.layers.Dense(4, name="shared")
    kout = keras.layers.Dense(1, name="out")(keras.layers.concatenate([kshared(ka), kshared(kb)]))
    kclone = keras.models.clone_model(keras.Model([ka, kb], kout))
    assert [l.name for l in clone.layers if l.name in ("a", "b", "shared", "out")] == [
        l.name for l in kclone.layers if l.name in ("a", "b", "shared", "out")]
    assert clone.count_params() == kclone.count_params() == model.count_params()
    assert not np.allclose(clone.get_weights()[0], model.get_weights()[0])
    x = [np.ones((2, 3), np.float32)] * 2
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    seq = kaffe.Sequential([kaffe.Input((5,)), layers.Dense(3), layers.Dropout(0.1),
                            layers.Dense(2)])
    renamed = clone_model(seq, clone_function=lambda l: l.__class__.from_config(
        dict(l.get_config(), name="c_" + l.name)))
    assert [l.name for l in renamed.layers] == ["c_" + l.name for l in seq.layers]
    assert renamed.count_params() == seq.count_params()


def test_predict_classes_and_predict_proba_as_keras2():
    model = kaffe.Sequential([kaffe.Input((4,)), layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    probs = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict_classes(x), probs.argmax(-1))
    np.testing.assert_allclose(model.predict_proba(x), probs)
    binary = kaffe.Sequential([kaffe.Input((4,)), layers.Dense(1, activation="sigmoid")])
    got = binary.predict_classes(x)
    assert got.dtype == np.int32 and got.shape == (6, 1)
    np.testing.assert_array_equal(got, (binary.predict(x, verbose=0) > 0.5).astype("int32"))
    linear = kaffe.Sequential([kaffe.Input((4,)), layers.Dense(1)])
    linear.set_weights([np.full((4, 1), 3.0), np.zeros(1)])
    with pytest.warns(UserWarning, match="invalid probability"):
        linear.predict_proba(x)


# -- scikit-learn wrappers ---------------------------------------------------------------------

def make_classifier(hidden=8, optimizer="adam"):
    model = kaffe.Sequential([kaffe.Input((4,)), layers.Dense(hidden, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer, "categorical_crossentropy", metrics=["accuracy"])
    return model


def test_keras_classifier_and_regressor_follow_the_sklearn_protocol():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    from kaffe.wrappers.scikit_learn import KerasClassifier, KerasRegressor
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    y = np.array(["ant", "bee", "cat"])[np.argmax(x[:, :3], axis=1)]
    clf = KerasClassifier(build_fn=make_classifier, hidden=16, epochs=30, batch_size=16,
                          verbose=0)
    assert clone(clf).get_params()["hidden"] == 16
    clf.fit(x, y)
    assert list(clf.classes_) == ["ant", "bee", "cat"]
    predicted = clf.predict(x)
    assert predicted.dtype.kind == "U" and (predicted == y).mean() > 0.6
    assert clf.predict_proba(x).shape == (60, 3)
    assert clf.score(x, y) == pytest.approx((predicted == y).mean(), abs=1e-6)
    scores = cross_val_score(KerasClassifier(make_classifier, epochs=5, verbose=0), x, y, cv=2)
    assert scores.shape == (2,)
    with pytest.raises(ValueError, match="not_a_param is not a legal parameter"):
        KerasClassifier(make_classifier, not_a_param=1)

    def make_regressor():
        model = kaffe.Sequential([kaffe.Input((4,)), layers.Dense(1)])
        model.compile("sgd", "mse")
        return model
    reg = KerasRegressor(make_regressor, epochs=3, verbose=0).fit(x, x[:, 0]).model
    wrapper = KerasRegressor(make_regressor, epochs=3, verbose=0)
    wrapper.fit(x, x[:, 0])
    assert wrapper.predict(x).shape == (60,)
    assert wrapper.score(x, x[:, 0]) == pytest.approx(
        -wrapper.model.evaluate(x, x[:, 0], verbose=0), rel=1e-5)
    assert reg is not None


def test_the_batteries_are_served_under_keras_names():
    from kaffe.compat import kaffe_as_keras
    with kaffe_as_keras():
        from keras.preprocessing.image import ImageDataGenerator
        from keras.utils.generic_utils import Progbar
        from keras.wrappers.scikit_learn import KerasClassifier
        from keras.datasets import boston_housing, cifar10, cifar100, reuters
        from keras.models import clone_model
        from keras.utils import image_dataset_from_directory, pad_sequences, get_file
        from keras.utils.image_utils import load_img
        import tensorflow as tf
        assert tf.keras.preprocessing.image.ImageDataGenerator is ImageDataGenerator
        assert tf.keras.preprocessing.timeseries_dataset_from_array is not None
    import kaffe.preprocessing.image as image
    import kaffe.datasets as datasets
    assert ImageDataGenerator is image.ImageDataGenerator
    assert cifar10.load_data is datasets.cifar10.load_data
    assert all(f is not None for f in (Progbar, KerasClassifier, boston_housing, cifar100,
                                       reuters, clone_model, image_dataset_from_directory,
                                       pad_sequences, get_file, load_img))


def test_load_img_refuses_what_is_neither_a_path_nor_a_file():
    """Keras: "path should be path-like or io.BytesIO"; a None path (a missing weights file
    in neural_doodle.py) gave an AttributeError about ``read``."""
    from kaffe.preprocessing.image import load_img
    with pytest.raises(TypeError, match="path-like"):
        load_img(None)
