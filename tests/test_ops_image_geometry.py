"""kaffe.ops.image's resampling ops against Keras 3 (torch backend) with the same inputs:
``map_coordinates`` (every order and fill mode), ``affine_transform``,
``perspective_transform``, ``elastic_transform`` (the same noise: Keras's torch backend draws
it from torch's global generator, so equal ``torch.manual_seed`` gives equal results) and
``scale_and_translate`` (every method); eagerly, and symbolically inside a functional graph."""
import numpy as np
import pytest
import torch

import kaffe
from kaffe import ops

keras = pytest.importorskip("keras")

rng = np.random.default_rng(7)
IMAGES = rng.uniform(size=(2, 9, 10, 3)).astype("float32")
FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")
# zoom+shift and shear+shift rows; values chosen so no sample falls exactly half-way between
# pixels (where 'nearest' would depend on the last bit of the arithmetic)
TRANSFORMS = np.array([[1.37, 0.0, -2.11, 0.0, 1.29, -1.63, 0.0, 0.0],
                       [0.91, 0.27, -1.07, -0.19, 1.13, 0.41, 0.0, 0.0]])
START = np.array([[[0, 0], [0, 9], [10, 0], [10, 9]]] * 2, dtype="float32")
END = np.array([[[1, 2], [2, 9], [9, -1], [11, 8]], [[2, 1], [1, 8], [8, 1], [10, 7]]],
               dtype="float32")


def close(ours, theirs, rtol=1e-5, atol=1e-5):
    ours = ours.detach().cpu().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def graph_result(fn, *arrays):
    """``fn`` applied to symbolic inputs (batch axis unknown), run through a kaffe Model."""
    inputs = [kaffe.Input(shape=a.shape[1:]) for a in arrays]
    model = kaffe.Model(inputs, fn(*inputs))
    return model.predict(list(arrays) if len(arrays) > 1 else arrays[0], verbose=0)


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_map_coordinates_equals_keras(order, fill_mode):
    inputs = rng.uniform(size=(6, 7)).astype("float32")
    coordinates = rng.uniform(-3.3, 9.7, size=(2, 5, 4))
    close(ops.image.map_coordinates(inputs, coordinates, order, fill_mode, 0.5),
          keras.ops.image.map_coordinates(inputs, coordinates, order, fill_mode, 0.5))


def test_map_coordinates_integer_volume_equals_keras():
    volume = rng.integers(0, 255, size=(4, 5, 3)).astype("uint8")
    coordinates = rng.uniform(-1, 5, size=(3, 10))
    ours = ops.image.map_coordinates(volume, coordinates, 1, "reflect")
    assert ours.dtype == torch.uint8
    close(ours, keras.ops.image.map_coordinates(volume, coordinates, 1, "reflect"), atol=0)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_affine_transform_equals_keras(interpolation, fill_mode):
    close(ops.image.affine_transform(IMAGES, TRANSFORMS, interpolation, fill_mode, 0.25),
          keras.ops.image.affine_transform(IMAGES, TRANSFORMS.copy(), interpolation, fill_mode,
                                           0.25))


def test_affine_transform_single_image_channels_first_equals_keras():
    image, transform = IMAGES[0], TRANSFORMS[1].astype("float32")
    close(ops.image.affine_transform(image, transform, data_format="channels_first"),
          keras.ops.image.affine_transform(image, transform.copy(),
                                           data_format="channels_first"))


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_perspective_transform_equals_keras(interpolation):
    close(ops.image.perspective_transform(IMAGES, START, END, interpolation, 0.3),
          keras.ops.image.perspective_transform(IMAGES, START, END, interpolation, 0.3),
          rtol=1e-4, atol=1e-4)
    close(ops.image.perspective_transform(IMAGES[0], START[0], END[0],
                                          data_format="channels_first"),
          keras.ops.image.perspective_transform(IMAGES[0], START[0], END[0],
                                                data_format="channels_first"),
          rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fill_mode", ["reflect", "constant", "wrap"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_elastic_transform_equals_keras_under_the_same_torch_seed(fill_mode, interpolation):
    kwargs = dict(alpha=3.0, sigma=1.0, fill_mode=fill_mode, interpolation=interpolation)
    torch.manual_seed(3)
    ours = ops.image.elastic_transform(IMAGES, **kwargs)
    torch.manual_seed(3)
    close(ours, keras.ops.image.elastic_transform(IMAGES, **kwargs))


def test_elastic_transform_channels_first_and_seeds():
    torch.manual_seed(4)
    ours = ops.image.elastic_transform(IMAGES[:1], data_format="channels_first")
    torch.manual_seed(4)
    close(ours, keras.ops.image.elastic_transform(IMAGES[:1], data_format="channels_first"))
    # an int seed repeats, a SeedGenerator moves on, alpha=0 is the identity
    first = ops.image.elastic_transform(IMAGES, alpha=5.0, sigma=2.0, seed=11)
    close(first, ops.image.elastic_transform(IMAGES, alpha=5.0, sigma=2.0, seed=11))
    generator = kaffe.random.SeedGenerator(5)
    a = ops.image.elastic_transform(IMAGES, alpha=5.0, sigma=2.0, seed=generator)
    b = ops.image.elastic_transform(IMAGES, alpha=5.0, sigma=2.0, seed=generator)
    assert not torch.allclose(a, b)
    close(ops.image.elastic_transform(IMAGES, alpha=0.0), IMAGES, atol=1e-6)


@pytest.mark.parametrize("method", ["linear", "bilinear", "cubic", "lanczos3", "lanczos5"])
@pytest.mark.parametrize("antialias", [True, False])
def test_scale_and_translate_equals_keras(method, antialias):
    small = np.arange(9, dtype="float32").reshape(3, 3)
    scale = np.array([2.0, 2.0], "float32")
    translation = -(scale / 2.0 - 0.5)
    close(ops.image.scale_and_translate(small, (5, 5), scale, translation, (0, 1), method,
                                        antialias),
          keras.ops.image.scale_and_translate(small, (5, 5), scale, translation, (0, 1),
                                              method, antialias))
    scale, translation = np.array([0.4, 0.6], "float32"), np.array([0.3, -0.2], "float32")
    close(ops.image.scale_and_translate(IMAGES, (2, 4, 5, 3), scale, translation, (1, 2),
                                        method, antialias),
          keras.ops.image.scale_and_translate(IMAGES, (2, 4, 5, 3), scale, translation, (1, 2),
                                              method, antialias))


def test_scale_and_translate_integer_images_equal_keras():
    pixels = (IMAGES * 255).astype("uint8")
    scale, translation = np.array([1.7, 0.6], "float32"), np.array([0.3, -0.2], "float32")
    ours = ops.image.scale_and_translate(pixels, (2, 12, 5, 3), scale, translation, (1, 2),
                                         "cubic")
    assert ours.dtype == torch.uint8
    close(ours, keras.ops.image.scale_and_translate(pixels, (2, 12, 5, 3), scale, translation,
                                                    (1, 2), "cubic"), atol=0)


def test_symbolic_graphs_compute_what_eager_ops_compute():
    """Each op on KerasTensors records a node; the model's output equals the eager op's and
    its symbolic shape equals Keras's."""
    cases = [
        (lambda x: ops.image.affine_transform(x, TRANSFORMS[:1]),
         lambda x: keras.ops.image.affine_transform(x, TRANSFORMS[:1].copy())),
        (lambda x: ops.image.perspective_transform(x, START[0], END[0], "nearest"),
         lambda x: keras.ops.image.perspective_transform(x, START[0], END[0], "nearest")),
        (lambda x: ops.image.scale_and_translate(x, (2, 4, 5, 3), [0.4, 0.6], [0.3, -0.2],
                                                 (1, 2), "linear"),
         lambda x: keras.ops.image.scale_and_translate(x, (2, 4, 5, 3),
                                                       np.array([0.4, 0.6], "float32"),
                                                       np.array([0.3, -0.2], "float32"),
                                                       (1, 2), "linear")),
        (lambda x: ops.image.elastic_transform(x, alpha=0.0),
         lambda x: keras.ops.image.elastic_transform(x, alpha=0.0)),
    ]
    for ours, theirs in cases:
        close(graph_result(ours, IMAGES), ours(IMAGES))
        symbolic = ours(kaffe.Input(batch_shape=IMAGES.shape))
        assert tuple(symbolic.shape) == tuple(theirs(keras.Input(batch_shape=IMAGES.shape)).shape)
    images = kaffe.Input(shape=(9, 10, 3))
    transforms = kaffe.Input(shape=(8,))
    model = kaffe.Model([images, transforms], ops.image.affine_transform(images, transforms))
    close(model.predict([IMAGES, TRANSFORMS.astype("float32")], verbose=0),
          ops.image.affine_transform(IMAGES, TRANSFORMS.astype("float32")))
    inputs, coordinates = kaffe.Input(shape=(6,)), kaffe.Input(batch_shape=(2, 5))
    mapped = ops.image.map_coordinates(inputs, coordinates, 1)
    theirs = keras.ops.image.map_coordinates(keras.Input(shape=(6,)),
                                             keras.Input(batch_shape=(2, 5)), 1)
    assert tuple(mapped.shape) == tuple(theirs.shape) == (5,)


def test_bad_arguments_name_the_op_and_the_value():
    with pytest.raises(ValueError, match=r"affine_transform: invalid fill_mode='edge'"):
        ops.image.affine_transform(IMAGES, TRANSFORMS, fill_mode="edge")
    with pytest.raises(ValueError, match=r"affine_transform.*\(8,\) or \(batch, 8\).*\(2, 6\)"):
        ops.image.affine_transform(IMAGES, TRANSFORMS[:, :6])
    with pytest.raises(ValueError, match=r"map_coordinates.*rank of inputs \(2.*Received 3"):
        ops.image.map_coordinates(np.zeros((3, 3)), np.zeros((3, 4)), 1)
    with pytest.raises(ValueError, match="map_coordinates: invalid order=3"):
        ops.image.map_coordinates(np.zeros((3, 3)), np.zeros((2, 4)), 3)
    with pytest.raises(ValueError, match=r"perspective_transform.*start_points.*\(4, 3\)"):
        ops.image.perspective_transform(IMAGES, np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="scale_and_translate: invalid method='area'"):
        ops.image.scale_and_translate(IMAGES, (2, 4, 5, 3), [1, 1], [0, 0], (1, 2), "area")
    with pytest.raises(ValueError, match=r"elastic_transform.*rank 3.*Received shape \(9, 10\)"):
        ops.image.elastic_transform(IMAGES[0, :, :, 0])
    with pytest.raises(kaffe.engine.operation.OpError, match="affine_transform"):
        ops.image.affine_transform(kaffe.Input((9, 10, 3)), np.zeros((3, 8)))


def test_affine_transform_projective_terms_act_as_tensorflow_documents():
    """c0, c1 divide as TensorFlow's transform does: the homography that Keras's
    perspective_transform solves, given as affine_transform rows, warps the same way."""
    from kaffe.ops.image_geometry import homography
    rows = homography(torch.as_tensor(START), torch.as_tensor(END))
    assert float(rows[:, 6:].abs().max()) > 1e-3  # a truly projective case
    close(ops.image.affine_transform(IMAGES, rows, fill_value=0.3),
          keras.ops.image.perspective_transform(IMAGES, START, END, fill_value=0.3),
          rtol=1e-4, atol=1e-4)
