"""kaffe.ops.image's filters and 3-D patches against Keras 3 (torch backend), same inputs:
``gaussian_blur``, ``sobel_edges``, ``ssim``, ``extract_patches_3d``; eagerly and inside a
functional graph. ``data_format`` is always given to Keras: its eager torch ``gaussian_blur``
reads ``data_format=None`` as channels-first (its symbolic path and its docs say the
configured default, channels-last, which kaffe follows)."""
import numpy as np
import pytest
import torch

import kaffe
from kaffe import ops

keras = pytest.importorskip("keras")

rng = np.random.default_rng(11)
IMAGES = rng.uniform(size=(2, 9, 10, 3)).astype("float32")
BIG = rng.uniform(size=(2, 16, 13, 3)).astype("float32")
NOISY = (BIG + 0.1 * rng.uniform(size=BIG.shape)).astype("float32")
VOLUMES = rng.uniform(size=(2, 7, 8, 9, 3)).astype("float32")


def close(ours, theirs, rtol=1e-5, atol=1e-5):
    ours = ours.detach().cpu().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kwargs", [{}, {"kernel_size": (5, 5), "sigma": (1.5, 0.7)},
                                    {"kernel_size": (3, 3), "sigma": (2.0, 2.0)}])
def test_gaussian_blur_equals_keras(data_format, kwargs):
    close(ops.image.gaussian_blur(IMAGES, data_format=data_format, **kwargs),
          keras.ops.image.gaussian_blur(IMAGES, data_format=data_format, **kwargs))


def test_gaussian_blur_default_format_is_channels_last():
    close(ops.image.gaussian_blur(IMAGES[0]),
          keras.ops.image.gaussian_blur(IMAGES[0], data_format="channels_last"))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_sobel_edges_equals_keras(data_format):
    close(ops.image.sobel_edges(IMAGES, data_format=data_format),
          keras.ops.image.sobel_edges(IMAGES, data_format=data_format))


@pytest.mark.parametrize("args", [(BIG, NOISY, {}),
                                  (BIG[0], NOISY[0], {"filter_size": 5, "max_val": 2.0}),
                                  (BIG, NOISY, {"filter_size": 3, "filter_sigma": 0.8,
                                                "data_format": "channels_first"})])
def test_ssim_equals_keras(args):
    a, b, kwargs = args
    close(ops.image.ssim(a, b, **kwargs), keras.ops.image.ssim(a, b, **kwargs))
    assert float(ops.image.ssim(BIG, BIG).min()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kwargs", [
    {"size": (2, 3, 2)}, {"size": (3, 3, 3), "strides": (1, 2, 2)},
    {"size": 2, "strides": 1, "padding": "same"},
    {"size": (2, 2, 2), "dilation_rate": 2, "strides": 1},
    {"size": (3, 2, 2), "strides": (2, 3, 1), "padding": "same",
     "data_format": "channels_first"}])
def test_extract_patches_3d_equals_keras(kwargs):
    close(ops.image.extract_patches_3d(VOLUMES, **kwargs),
          keras.ops.image.extract_patches_3d(VOLUMES, **kwargs))


def test_extract_patches_with_three_sizes_and_unbatched_volume_equal_keras():
    close(ops.image.extract_patches(VOLUMES, (2, 2, 2)),
          keras.ops.image.extract_patches(VOLUMES, (2, 2, 2)))
    close(ops.image.extract_patches_3d(VOLUMES[0], (2, 2, 2)),
          keras.ops.image.extract_patches_3d(VOLUMES[0], (2, 2, 2)))


def test_symbolic_graphs_compute_what_eager_ops_compute():
    cases = [
        (lambda x: ops.image.gaussian_blur(x, (5, 5), (1.2, 1.2)),
         lambda x: keras.ops.image.gaussian_blur(x, (5, 5), (1.2, 1.2)), IMAGES),
        (ops.image.sobel_edges, keras.ops.image.sobel_edges, IMAGES),
        (lambda x: ops.image.ssim(x, x * 0.5, filter_size=5),
         lambda x: keras.ops.image.ssim(x, x * 0.5, filter_size=5), BIG),
        (lambda x: ops.image.extract_patches_3d(x, (2, 3, 2)),
         lambda x: keras.ops.image.extract_patches_3d(x, (2, 3, 2)), VOLUMES),
    ]
    for ours, theirs, data in cases:
        x = kaffe.Input(shape=data.shape[1:])
        close(kaffe.Model(x, ours(x)).predict(data, verbose=0), ours(data))
        fixed = ours(kaffe.Input(batch_shape=data.shape))
        assert tuple(fixed.shape) == tuple(theirs(keras.Input(batch_shape=data.shape)).shape)
    node = ops.image.extract_patches_3d(kaffe.Input((7, 8, 9, 3)), 2)
    assert type(node._keras_history[0]).__name__ == "ExtractPatches"  # Keras's class too


def test_bad_arguments_name_the_op_and_the_value():
    with pytest.raises(ValueError, match=r"ssim: images of \(9, 10\) pixels.*filter_size=11"):
        ops.image.ssim(IMAGES, IMAGES)
    with pytest.raises(ValueError, match=r"ssim: image1 and image2 must have the same shape"):
        ops.image.ssim(BIG, BIG[:, :15])
    with pytest.raises(ValueError, match=r"sobel_edges: expected images of rank 4.*\(9, 10, 3\)"):
        ops.image.sobel_edges(IMAGES[0])
    with pytest.raises(ValueError, match=r"gaussian_blur: kernel_size must be positive.*sigma=0"):
        ops.image.gaussian_blur(IMAGES, sigma=0)
    with pytest.raises(ValueError, match=r"extract_patches_3d: size must be .* size=\(2, 2\)"):
        ops.image.extract_patches_3d(VOLUMES, (2, 2))
    with pytest.raises(ValueError, match=r"extract_patches_3d: a patch spans 9 cells"):
        ops.image.extract_patches_3d(VOLUMES, 9)


@pytest.mark.parametrize("shape", [(2, 9, 14, 3), (14, 9, 3)])
@pytest.mark.parametrize("kwargs", [{"crop_to_aspect_ratio": True},
                                    {"pad_to_aspect_ratio": True},
                                    {"pad_to_aspect_ratio": True, "fill_value": 0.5}])
def test_resize_to_aspect_ratio_equals_keras(shape, kwargs):
    images = rng.uniform(size=shape).astype("float32")
    for size in [(6, 6), (12, 20), (5, 2)]:
        close(ops.image.resize(images, size, **kwargs),
              keras.ops.image.resize(images, size, **kwargs), rtol=1e-4)
    with pytest.raises(ValueError, match="only one of crop_to_aspect_ratio"):
        ops.image.resize(images, (4, 4), crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
