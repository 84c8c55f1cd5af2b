"""The tensorflow stand-in's ``tf.image`` group and ``tf.data.Dataset.zip`` (keras.io's ShiftViT
shifts windows with crop_to_bounding_box + pad_to_bounding_box; SimSiam zips two augmented
views), checked against Keras 3's own ops (torch backend) and TensorFlow's documented formulas."""
import keras
import numpy as np
import pytest
import torch

import kaffe
from kaffe.compat.tensorflow_shim import build_module

tf = build_module()
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 1, size=(2, 8, 10, 3)).astype("float32")


def close(a, b, rtol=1e-5, atol=1e-5):
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("method", ["bilinear", "nearest", "bicubic"])
def test_resize_matches_keras_ops(method):
    ours = tf.image.resize(IMAGES, (5, 7), method=method)
    close(ours, keras.ops.image.resize(IMAGES, (5, 7), interpolation=method))
    assert ours.dtype == torch.float32


def test_resize_of_uint8_gives_float32_and_aspect_ratio_is_kept():
    img = (IMAGES[0] * 255).astype("uint8")
    assert tf.image.resize(img, (4, 4)).dtype == torch.float32
    assert tuple(tf.image.resize(img, (4, 4), preserve_aspect_ratio=True).shape) == (3, 4, 3)


def test_crop_and_pad_to_bounding_box_match_keras_crop_and_pad_images():
    crop = tf.image.crop_to_bounding_box(IMAGES, 1, 2, 5, 6)
    close(crop, keras.ops.image.crop_images(IMAGES, top_cropping=1, left_cropping=2,
                                            target_height=5, target_width=6))
    pad = tf.image.pad_to_bounding_box(crop, 1, 2, 8, 10)
    close(pad, keras.ops.image.pad_images(np.asarray(crop), top_padding=1, left_padding=2,
                                          target_height=8, target_width=10))
    with pytest.raises(ValueError, match="does not fit"):
        tf.image.crop_to_bounding_box(IMAGES, 4, 0, 5, 6)


def test_extract_patches_matches_keras_ops():
    ours = tf.image.extract_patches(IMAGES, sizes=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                                    rates=[1, 1, 1, 1], padding="VALID")
    close(ours, keras.ops.image.extract_patches(IMAGES, (2, 2), strides=(2, 2), padding="valid"))
    assert tuple(ours.shape) == (2, 4, 5, 12)


def test_grayscale_and_flips():
    close(tf.image.rgb_to_grayscale(IMAGES), keras.ops.image.rgb_to_grayscale(IMAGES))
    close(tf.image.flip_left_right(IMAGES), IMAGES[:, :, ::-1])
    close(tf.image.flip_up_down(IMAGES[0]), IMAGES[0, ::-1])
    flipped = tf.image.random_flip_left_right(IMAGES).numpy()
    for got, img in zip(flipped, IMAGES):   # each image either kept or mirrored
        assert np.allclose(got, img) or np.allclose(got, img[:, ::-1])


def test_convert_image_dtype_scales_as_tensorflow():
    pixels = np.array([[[0], [51], [255]]], dtype="uint8")
    as_float = tf.image.convert_image_dtype(pixels, tf.float32)
    close(as_float, pixels / 255.0)
    close(tf.image.convert_image_dtype(as_float, tf.uint8), pixels)


def test_random_crop_central_crop_and_psnr():
    crop = tf.image.random_crop(IMAGES[0], size=(4, 4, 3))
    assert tuple(crop.shape) == (4, 4, 3)
    windows = [IMAGES[0, i:i + 4, j:j + 4] for i in range(5) for j in range(7)]
    assert any(np.allclose(crop.numpy(), w) for w in windows)
    close(tf.image.central_crop(IMAGES, 0.5), IMAGES[:, 2:6, 2:8])
    noisy = IMAGES + 0.1
    close(tf.image.psnr(IMAGES, noisy, max_val=1.0), keras.ops.psnr(IMAGES[0], noisy[0], 1.0)
          * np.ones(2), rtol=1e-4)


def test_dataset_zip_pairs_elements_and_batches_nested():
    a = tf.data.Dataset.from_tensor_slices(np.arange(5, dtype="float32"))
    b = tf.data.Dataset.from_tensor_slices((np.arange(4, dtype="float32") * 10,
                                            np.arange(4, dtype="float32") * 100))
    zipped = tf.data.Dataset.zip((a, b))
    assert len(zipped) == 4
    first = next(iter(zipped))
    close(first[0], 0.0)
    close(first[1][1], 0.0)
    batches = list(zipped.batch(3))
    assert len(batches) == 2
    close(batches[0][0], [0, 1, 2])
    close(batches[0][1][0], [0, 10, 20])
    summed = list(tf.data.Dataset.zip((a, a)).map(lambda x, y: x + y))
    close(torch.stack(summed), np.arange(5) * 2)


def test_fit_on_zipped_views_in_a_custom_train_step():
    """SimSiam's pattern: fit on zip((view_one, view_two)) and a train_step that unpacks both."""
    class TwoViews(kaffe.Model):
        def __init__(self):
            super().__init__()
            self.dense = kaffe.layers.Dense(1)
            self.tracker = kaffe.metrics.Mean(name="loss")

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            one, two = data
            loss = kaffe.ops.mean((self(one) - self(two)) ** 2)
            self.zero_grad()
            loss.backward()
            self.optimizer.apply([v.value.grad for v in self.trainable_weights],
                                 self.trainable_weights)
            self.tracker.update_state(loss)
            return {"loss": self.tracker.result()}

    x = RNG.normal(size=(16, 3)).astype("float32")
    one = tf.data.Dataset.from_tensor_slices(x).batch(4)
    two = tf.data.Dataset.from_tensor_slices(x + 1).batch(4)
    model = TwoViews()
    model.compile(optimizer="sgd")
    history = model.fit(tf.data.Dataset.zip((one, two)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_saturation_and_hue_follow_the_hsv_definition():
    hsv = keras.ops.image.rgb_to_hsv(IMAGES)
    half_sat = keras.ops.image.hsv_to_rgb(keras.ops.stack(
        [hsv[..., 0], hsv[..., 1] * 0.5, hsv[..., 2]], axis=-1))
    close(tf.image.adjust_saturation(IMAGES, 0.5), half_sat, atol=1e-4)
    shifted = keras.ops.image.hsv_to_rgb(keras.ops.stack(
        [keras.ops.mod(hsv[..., 0] + 0.25, 1.0), hsv[..., 1], hsv[..., 2]], axis=-1))
    close(tf.image.adjust_hue(IMAGES, 0.25), shifted, atol=1e-4)
    assert tuple(tf.image.random_hue(IMAGES, 0.1).shape) == IMAGES.shape
    assert tuple(tf.image.random_saturation(IMAGES, 0.5, 1.5).shape) == IMAGES.shape


def test_layers_answer_keras3_variable_list_names():
    """ShiftViT's train_step gathers ``layer.trainable_variables`` of each sub-layer."""
    for lib in (keras, kaffe):
        layer = lib.layers.BatchNormalization()
        layer.build((None, 3))
        assert len(layer.trainable_variables) == 2      # gamma, beta
        assert len(layer.non_trainable_variables) == 2  # moving mean, variance
        assert len(layer.variables) == 4


def test_random_gamma_shape_and_moments():
    """TensorFlow's shape rule (``shape + alpha.shape``) and Gamma(alpha, rate) moments, mean
    alpha / rate, variance alpha / rate^2; Keras 3's keras.random.gamma draws the same law."""
    draws = tf.random.gamma((20000,), alpha=[2.0, 5.0], beta=2.0, seed=1).numpy()
    assert draws.shape == (20000, 2) and draws.dtype == np.float32
    np.testing.assert_allclose(draws.mean(axis=0), [1.0, 2.5], rtol=0.03)
    np.testing.assert_allclose(draws.var(axis=0), [0.5, 1.25], rtol=0.08)
    keras_draws = keras.ops.convert_to_numpy(keras.random.gamma((20000,), alpha=5.0, seed=1))
    np.testing.assert_allclose(tf.random.gamma((20000,), 5.0).numpy().mean(), keras_draws.mean(),
                               rtol=0.03)


def test_text_line_dataset_and_text_slices_stay_text(tmp_path):
    """keras.io's miniature GPT reads reviews with TextLineDataset, batches them and adapts a
    TextVectorization on the batches; tf.data keeps text elements as text."""
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("the movie was good\nbad plot<br />\n")
    second.write_text("good acting\n")
    lines = tf.data.TextLineDataset([str(first), str(second)])
    assert [str(t) for t in lines] == ["the movie was good", "bad plot<br />", "good acting"]
    batches = list(lines.batch(2))
    assert batches[0].tolist() == ["the movie was good", "bad plot<br />"]
    texts = ["the movie was good", "bad plot", "good acting"]
    ours = kaffe.layers.TextVectorization(output_sequence_length=4)
    ours.adapt(lines.batch(2))
    # (Keras 3's TextVectorization needs TensorFlow, absent here: the reference is the same
    # layer adapted on the file's lines given as an array)
    reference = kaffe.layers.TextVectorization(output_sequence_length=4)
    reference.adapt(np.array(["the movie was good", "bad plot<br />", "good acting"]))
    assert ours.get_vocabulary() == reference.get_vocabulary()
    pairs = tf.data.Dataset.from_tensor_slices((np.array(texts), np.array([1, 0, 1]))).batch(2)
    x, y = next(iter(pairs))
    assert x.tolist() == texts[:2] and y.tolist() == [1, 0]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        tf.data.TextLineDataset(str(tmp_path / "missing.txt"))
