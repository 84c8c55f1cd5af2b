"""Keras 3's preprocessing layers in kaffe against Keras 3 (torch backend): the deterministic
ones exactly; the random ones exactly where a degenerate factor range fixes the draw, otherwise
by statistics and by ``seed``; inference passes images through. StringLookup, IntegerLookup,
TextVectorization and Hashing need TensorFlow in Keras 3, so they are checked against the
outputs printed in Keras's documentation and, for the hash, FarmHash's own Fingerprint64
values (computed with the pyfarmhash package)."""
import os

import keras
import numpy as np
import pytest
import torch

import kaffe
from kaffe import layers as L
from kaffe.layers.string_hashing import fingerprint64

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 255, (3, 9, 7, 3)).astype("float32")


def k_np(x):
    return keras.ops.convert_to_numpy(x)


def f_np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# ------------------------------------------------------------------ image layers: exact
@pytest.mark.parametrize("kwargs", [
    {}, {"interpolation": "nearest"}, {"interpolation": "bicubic"},
    {"crop_to_aspect_ratio": True}, {"pad_to_aspect_ratio": True, "fill_value": 3.0},
    {"antialias": True}])
@pytest.mark.parametrize("size", [(5, 4), (12, 10)])
def test_resizing_equals_keras(kwargs, size):
    expected = k_np(keras.layers.Resizing(*size, **kwargs)(IMAGES))
    np.testing.assert_allclose(f_np(L.Resizing(*size, **kwargs)(IMAGES)), expected, atol=1e-4)


@pytest.mark.parametrize("size", [(5, 4), (12, 5), (9, 7)])
def test_center_crop_equals_keras(size):
    expected = k_np(keras.layers.CenterCrop(*size)(IMAGES))
    np.testing.assert_allclose(f_np(L.CenterCrop(*size)(IMAGES)), expected, atol=1e-4)


def test_channels_first_and_single_image_equal_keras():
    chw = np.transpose(IMAGES, (0, 3, 1, 2)).copy()
    expected = k_np(keras.layers.Resizing(4, 4, data_format="channels_first")(chw))
    np.testing.assert_allclose(f_np(L.Resizing(4, 4, data_format="channels_first")(chw)),
                               expected, atol=1e-4)
    layer = L.RandomRotation((0.2, 0.2), data_format="channels_first")
    expected = k_np(keras.layers.RandomRotation((0.2, 0.2), data_format="channels_first")(
        chw, training=True))
    np.testing.assert_allclose(f_np(layer(chw, training=True)), expected, atol=1e-3)
    np.testing.assert_allclose(f_np(L.CenterCrop(5, 5)(IMAGES[0])),
                               k_np(keras.layers.CenterCrop(5, 5)(IMAGES[0])), atol=1e-4)


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_rotation_with_fixed_angle_equals_keras(fill_mode, interpolation):
    kwargs = dict(fill_mode=fill_mode, interpolation=interpolation, fill_value=7.0)
    expected = k_np(keras.layers.RandomRotation((0.1, 0.1), **kwargs)(IMAGES, training=True))
    out = L.RandomRotation((0.1, 0.1), **kwargs)(IMAGES, training=True)
    np.testing.assert_allclose(f_np(out), expected, atol=1e-3)


@pytest.mark.parametrize("name,args", [
    ("RandomZoom", ((-0.3, -0.3), (0.2, 0.2))),
    ("RandomZoom", ((0.4, 0.4),)),
    ("RandomTranslation", ((0.2, 0.2), (-0.3, -0.3))),
    ("RandomContrast", ((-0.5, 0.5),)),
    ("RandomBrightness", ((0.2, 0.2),)),
])
def test_fixed_draw_augmentations_equal_keras(name, args):
    expected = k_np(getattr(keras.layers, name)(*args)(IMAGES, training=True))
    np.testing.assert_allclose(f_np(getattr(L, name)(*args)(IMAGES, training=True)), expected,
                               atol=1e-3)


def test_random_crop_inference_is_keras_smart_resize():
    from keras.src.utils.image_utils import smart_resize
    for size in [(5, 3), (12, 3)]:
        expected = k_np(smart_resize(IMAGES, size))
        np.testing.assert_allclose(f_np(L.RandomCrop(*size)(IMAGES, training=False)), expected,
                                   atol=1e-4)


@pytest.mark.parametrize("layer", [
    L.RandomFlip(), L.RandomRotation(0.3), L.RandomZoom(0.3), L.RandomTranslation(0.2, 0.2),
    L.RandomContrast(0.5), L.RandomBrightness(0.3)], ids=lambda l: type(l).__name__)
def test_augmentations_pass_images_through_in_inference(layer):
    np.testing.assert_array_equal(f_np(layer(IMAGES, training=False)), IMAGES)
    model = kaffe.Sequential([kaffe.Input((9, 7, 3)), layer])
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0), IMAGES)


def test_direct_calls_augment_as_in_keras():
    k_out = k_np(keras.layers.RandomFlip("horizontal", seed=0)(IMAGES[:1].repeat(64, 0)))
    assert not np.array_equal(k_out, IMAGES[:1].repeat(64, 0))   # what Keras 3 does
    layer = L.RandomFlip("horizontal", seed=0)
    assert not np.array_equal(f_np(layer(IMAGES[:1].repeat(64, 0))), IMAGES[:1].repeat(64, 0))
    model = kaffe.Sequential([kaffe.Input((9, 7, 3)), L.RandomFlip("horizontal", seed=0)])
    batch = IMAGES[:1].repeat(64, 0)
    assert not np.array_equal(f_np(model(torch.tensor(batch))), batch)
    np.testing.assert_array_equal(model.predict(batch, verbose=0), batch)


# ------------------------------------------------------------------ image layers: random
def test_random_flip_statistics_and_seed():
    x = np.arange(400 * 2 * 3, dtype="float32").reshape(400, 2, 3, 1)
    out = f_np(L.RandomFlip("horizontal", seed=3)(x, training=True))
    flipped = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    kept = np.all(out == x, axis=(1, 2, 3))
    assert np.all(flipped | kept) and 160 < flipped.sum() < 240
    again = f_np(L.RandomFlip("horizontal", seed=3)(x, training=True))
    np.testing.assert_array_equal(out, again)
    layer = L.RandomFlip("vertical", seed=3)
    assert not np.array_equal(f_np(layer(x, training=True)), f_np(layer(x, training=True)))


def test_random_contrast_and_brightness_draw_within_their_ranges():
    x = RNG.uniform(50, 200, (300, 4, 4, 1)).astype("float32")
    out = f_np(L.RandomContrast((0.2, 0.5), seed=1)(x, training=True))
    mean = x.mean(axis=(1, 2), keepdims=True)
    factor = ((out - mean) / (x - mean)).reshape(300, -1)[:, 0]
    assert factor.min() >= 0.8 - 1e-4 and factor.max() <= 1.5 + 1e-4
    assert abs(factor.mean() - 1.15) < 0.05
    out = f_np(L.RandomBrightness((-0.1, 0.1), value_range=(0, 255), seed=2)(x, training=True))
    delta = (out - x).reshape(300, -1)[:, 0]
    assert np.abs(delta).max() <= 25.5 + 1e-3 and abs(delta.mean()) < 3


def test_random_geometry_seeded_and_varied():
    x = np.ones((200, 8, 8, 1), "float32")
    zoom = L.RandomZoom((0.1, 0.5), fill_mode="constant", seed=7)
    filled = 1 - f_np(zoom(x, training=True)).mean(axis=(1, 2, 3))
    assert filled.min() > 0 and filled.std() > 0.01       # zoomed out, by varying amounts
    rotate = L.RandomRotation(0.25, fill_mode="constant", seed=5)
    first = f_np(rotate(x, training=True))
    assert not np.array_equal(first, f_np(rotate(x, training=True)))
    np.testing.assert_array_equal(
        first, f_np(L.RandomRotation(0.25, fill_mode="constant", seed=5)(x, training=True)))
    crop = L.RandomCrop(4, 4, seed=1)
    starts = {tuple(np.argwhere(f_np(crop(np.arange(64.).reshape(1, 8, 8, 1),
                                          training=True))[0, 0, 0] == np.arange(64.).reshape(8, 8))[0])
              for _ in range(30)}
    assert len(starts) > 5 and all(r <= 4 and c <= 4 for r, c in starts)


def test_augmentation_runs_in_fit_and_changes_training_batches():
    model = kaffe.Sequential([kaffe.Input((8, 8, 1)), L.RandomFlip(seed=0),
                              L.RandomRotation(0.1, seed=0), L.Flatten(), L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 8, 8, 1), "float32"), np.zeros((4, 1)), epochs=1, verbose=0)


# ------------------------------------------------------------------ numeric layers
@pytest.mark.parametrize("mode", ["one_hot", "multi_hot", "count"])
def test_category_encoding_equals_keras(mode):
    ids = RNG.integers(0, 6, (4, 3))
    for data in ([ids, ids[:, :1], ids[0]] + ([ids.reshape(2, 2, 3)] if mode != "one_hot" else [])):
        np.testing.assert_array_equal(f_np(L.CategoryEncoding(6, output_mode=mode)(data)),
                                      k_np(keras.layers.CategoryEncoding(6, output_mode=mode)(data)))
    weights = RNG.random((4, 3)).astype("float32")
    np.testing.assert_allclose(
        f_np(L.CategoryEncoding(6, output_mode="count")(ids, count_weights=weights)),
        k_np(keras.layers.CategoryEncoding(6, output_mode="count")(ids, count_weights=weights)),
        rtol=1e-6)


def test_discretization_equals_keras():
    x = RNG.normal(size=(5, 4)).astype("float32")
    for mode in ["int", "one_hot", "multi_hot", "count"]:
        np.testing.assert_array_equal(
            f_np(L.Discretization([-0.5, 0.0, 0.5], output_mode=mode)(x)),
            k_np(keras.layers.Discretization([-0.5, 0.0, 0.5], output_mode=mode)(x)))
    data = RNG.normal(size=(1000,)).astype("float32")
    for num_bins, epsilon in [(4, 0.01), (7, 0.1)]:
        k_layer = keras.layers.Discretization(num_bins=num_bins, epsilon=epsilon)
        k_layer.update_state(data[:300])      # Keras's adapt needs tf.data; the same steps
        k_layer.update_state(data[300:])
        k_layer.finalize_state()
        layer = L.Discretization(num_bins=num_bins, epsilon=epsilon)
        layer.adapt(iter([data[:300], data[300:]]))
        np.testing.assert_allclose(layer.bin_boundaries, k_layer.bin_boundaries, rtol=1e-6)
    with pytest.raises(ValueError, match="adapt"):
        L.Discretization(num_bins=3)(x)


def test_unit_normalization_equals_keras():
    x = RNG.normal(size=(5, 2, 3)).astype("float32")
    for axis in [-1, [1, 2]]:
        np.testing.assert_allclose(f_np(L.UnitNormalization(axis=axis)(x)),
                                   k_np(keras.layers.UnitNormalization(axis=axis)(x)), rtol=1e-5)


@pytest.mark.parametrize("equation,output_shape,bias_axes,shape", [
    ("ab,bc->ac", 7, "c", (3, 5)),
    ("abc,cde->abde", (None, 4, 8), "de", (2, 6, 5)),
    ("...b,bc->...c", 7, None, (2, 3, 5)),
    ("abc,cd->abd", (6, 7), "d", (2, 6, 5)),
])
def test_einsum_dense_equals_keras(equation, output_shape, bias_axes, shape):
    k_layer = keras.layers.EinsumDense(equation, output_shape, bias_axes=bias_axes,
                                       activation="relu")
    layer = L.EinsumDense(equation, output_shape, bias_axes=bias_axes, activation="relu")
    k_layer.build(shape)
    layer.build(shape)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in k_layer.weights]
    layer.set_weights([k_np(w) for w in k_layer.weights])
    x = RNG.normal(size=shape).astype("float32")
    np.testing.assert_allclose(f_np(layer(torch.tensor(x))), k_np(k_layer(x)), atol=1e-5)
    batchless = (None,) + shape[1:]
    assert layer.compute_output_shape(batchless) == k_layer.compute_output_shape(batchless)


# ------------------------------------------------------------------ hashing and lookups
FARMHASH = {  # pyfarmhash 0.5.1 farmhash.fingerprint64 (Google's FarmHash)
    "": 11160318154034397263, "a": 12917804110809363939, "abc": 2640714258260161385,
    "hello": 13009744463427800296, "TensorFlow!": 15051067998676096915,
    "seventeen chars!!": 8342057420157996792,
    "a string of thirty-three chars...": 2984896837421957163,
    "x" * 64: 6916188127298655160, "y" * 65: 13246502507848426076,
    "the quick brown fox jumps over the lazy dog " * 3: 5861556989732575120,
    "naïve café": 10985537734658424218,
}


def test_fingerprint64_equals_farmhash():
    for text, value in FARMHASH.items():
        assert fingerprint64(text) == value, text


def test_hashing_equals_keras_documentation():
    inp = [["A"], ["B"], ["C"], ["D"], ["E"]]
    assert f_np(L.Hashing(num_bins=3)(inp)).tolist() == [[1], [0], [1], [1], [2]]
    assert f_np(L.Hashing(num_bins=3, mask_value="")([["A"], ["B"], [""], ["C"], ["D"]])
                ).tolist() == [[1], [1], [0], [2], [2]]
    assert f_np(L.Hashing(num_bins=3, salt=[133, 137])(inp)).tolist() == [[1], [2], [1], [0], [2]]
    out = f_np(L.Hashing(num_bins=4, output_mode="multi_hot")([["A", "B"], ["C", "D"]]))
    assert out.shape == (2, 4) and out.sum(axis=1).max() <= 2


def test_string_lookup_equals_keras_documentation():
    vocab = ["a", "b", "c", "d"]
    data = [["a", "c", "d"], ["d", "z", "b"]]
    assert f_np(L.StringLookup(vocabulary=vocab)(data)).tolist() == [[1, 3, 4], [4, 0, 2]]
    layer = L.StringLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    assert f_np(L.StringLookup(vocabulary=vocab, num_oov_indices=2)(
        [["a", "c", "d"], ["m", "z", "b"]])).tolist() == [[2, 4, 5], [0, 1, 3]]
    assert f_np(L.StringLookup(vocabulary=vocab, output_mode="multi_hot")(data)).tolist() == [
        [0, 1, 0, 1, 1], [1, 0, 1, 0, 1]]
    tf_idf = L.StringLookup(vocabulary=vocab, output_mode="tf_idf",
                            idf_weights=[0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(f_np(tf_idf([["a", "c", "d", "d"], ["d", "z", "b", "z"]])),
                               [[0, 0.25, 0, 0.6, 0.8], [1.0, 0, 0.75, 0, 0.4]], rtol=1e-6)
    inverse = L.StringLookup(vocabulary=vocab, invert=True)
    assert inverse([[1, 3, 4], [4, 0, 2]]).tolist() == [["a", "c", "d"], ["d", "[UNK]", "b"]]
    with_mask = L.StringLookup(vocabulary=vocab, mask_token="[MASK]")
    assert f_np(with_mask([["a", "[MASK]"]])).tolist() == [[2, 0]]
    with pytest.raises(ValueError, match="repeated"):
        L.StringLookup(vocabulary=["a", "a"])


def test_integer_lookup_equals_keras_documentation():
    vocab = [12, 36, 1138, 42]
    data = np.array([[12, 1138, 42], [42, 1000, 36]])
    assert f_np(L.IntegerLookup(vocabulary=vocab)(data)).tolist() == [[1, 3, 4], [4, 0, 2]]
    layer = L.IntegerLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    assert f_np(L.IntegerLookup(vocabulary=vocab, num_oov_indices=2)(
        np.array([[12, 1138, 42], [37, 1000, 36]]))).tolist() == [[2, 4, 5], [1, 0, 3]]
    inverse = L.IntegerLookup(vocabulary=vocab, invert=True)
    assert f_np(inverse(np.array([[1, 3, 4], [4, 0, 2]]))).tolist() == [
        [12, 1138, 42], [42, -1, 36]]


def test_text_vectorization_equals_keras_documentation():
    layer = L.TextVectorization(max_tokens=5000, output_sequence_length=4)
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    assert f_np(layer([["foo qux bar"], ["qux baz"]])).tolist() == [[4, 1, 3, 0], [1, 2, 0, 0]]
    layer = L.TextVectorization(vocabulary=["earth", "wind", "and", "fire"],
                                output_sequence_length=4)
    assert f_np(layer([["earth wind and fire"], ["fire and earth michigan"]])).tolist() == [
        [2, 3, 4, 5], [5, 4, 2, 1]]


def test_text_vectorization_standardize_ngrams_and_bags():
    layer = L.TextVectorization(output_mode="multi_hot", ngrams=2)
    layer.adapt(["The cat sat.", "the dog, sat!"])
    vocab = layer.get_vocabulary()
    assert vocab[:3] == ["[UNK]", "the", "sat"] and set(vocab[3:]) == {
        "the dog", "the cat", "dog sat", "dog", "cat sat", "cat"}
    row = f_np(layer(["the CAT"]))[0]
    assert [vocab[i] for i in np.flatnonzero(row)] == sorted(
        ["the", "the cat", "cat"], key=vocab.index)
    layer = L.TextVectorization(output_mode="tf_idf")
    layer.adapt(["a b b", "b c"])
    idf_b, idf_oov = np.log(1 + 2 / 3), np.mean([np.log(1 + 2 / 3), np.log(2), np.log(2)])
    np.testing.assert_allclose(f_np(layer(["b b z"])), [[idf_oov, 2 * idf_b, 0, 0]], rtol=1e-5)
    padded = f_np(L.TextVectorization(vocabulary=["x"])(["x x x", "x"]))
    assert padded.tolist() == [[2, 2, 2], [2, 0, 0]]


# ------------------------------------------------------------------ configs and .keras files
@pytest.mark.parametrize("layer", [
    L.Resizing(5, 4, interpolation="nearest"), L.CenterCrop(4, 4), L.RandomCrop(4, 4, seed=1),
    L.RandomFlip("horizontal", seed=2), L.RandomRotation(0.2, fill_mode="constant"),
    L.RandomZoom(0.2, 0.1), L.RandomTranslation(0.1, 0.2), L.RandomContrast(0.3),
    L.RandomBrightness(0.2), L.CategoryEncoding(5, "count"), L.Discretization([0.0, 1.0]),
    L.Hashing(7, salt=3), L.UnitNormalization(), L.EinsumDense("ab,bc->ac", 4, bias_axes="c"),
    L.StringLookup(vocabulary=["a", "b"]), L.IntegerLookup(vocabulary=[3, 9], invert=True),
    L.TextVectorization(vocabulary=["a", "b"], output_sequence_length=3),
], ids=lambda l: type(l).__name__)
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    config.pop("name")
    clone_config = clone.get_config()
    clone_config.pop("name")
    assert clone_config == config


def test_image_model_saved_by_kaffe_loads_in_keras(tmp_path):
    inputs = kaffe.Input((9, 7, 3))
    x = L.Resizing(8, 8)(inputs)
    x = L.RandomFlip(seed=1)(x)
    x = L.RandomRotation(0.1, fill_mode="nearest")(x)
    x = L.RandomZoom(0.1)(x)
    x = L.RandomTranslation(0.1, 0.1)(x)
    x = L.RandomContrast(0.2)(x)
    x = L.RandomBrightness(0.1)(x)
    x = L.CenterCrop(4, 4)(x)  # (Keras 3 runs RandomCrop as the identity in inference)
    x = L.Flatten()(x)
    x = L.UnitNormalization()(x)
    x = L.Reshape((8, 6))(x)
    x = L.EinsumDense("abc,cd->abd", (8, 5), bias_axes="d")(x)
    outputs = L.Flatten()(x)
    model = kaffe.Model(inputs, outputs)
    path = tmp_path / "augment.keras"
    model.save(path)
    expected = model.predict(IMAGES, verbose=0)
    reloaded = kaffe.models.load_model(path)
    np.testing.assert_allclose(reloaded.predict(IMAGES, verbose=0), expected, atol=1e-5)
    k_model = keras.saving.load_model(path)
    np.testing.assert_allclose(k_np(k_model(IMAGES, training=False)), expected, atol=1e-4)


def test_encoding_model_saved_by_kaffe_loads_in_keras(tmp_path):
    inputs = kaffe.Input((3,))
    a = L.Discretization([0.0, 1.0], output_mode="one_hot")(inputs)
    b = L.CategoryEncoding(3, output_mode="multi_hot")(L.Discretization([0.0, 1.0])(inputs))
    model = kaffe.Model(inputs, [a, b])
    path = tmp_path / "encode.keras"
    model.save(path)
    x = RNG.normal(size=(4, 3)).astype("float32")
    expected = model.predict(x, verbose=0)
    k_out = keras.saving.load_model(path).predict(x, verbose=0)
    for e, k in zip(expected, k_out):
        np.testing.assert_array_equal(e, k)


def test_lookup_model_with_integer_inputs_round_trips_in_kaffe(tmp_path):
    inputs = kaffe.Input((3,), dtype="int64")
    lookup = L.IntegerLookup(max_tokens=10)
    lookup.adapt(np.array([[5, 5, 7], [9, 5, 7]]))
    model = kaffe.Model(inputs, L.Flatten()(lookup(inputs)))
    path = tmp_path / "lookup.keras"
    model.save(path)
    x = np.array([[5, 7, 9], [1, 5, 5]])
    reloaded = kaffe.models.load_model(path)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert f_np(model.predict(x, verbose=0)).tolist() == [[1, 2, 3], [0, 1, 1]]
