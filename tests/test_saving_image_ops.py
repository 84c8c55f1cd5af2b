"""Graphs holding the image ops and ``rearrange`` through ``.keras`` files, both ways with
Keras 3: the node classes, call arguments and configs mean the same in both libraries
(``rearrange``'s axis lengths are the node's kwargs, as Keras writes them)."""
import numpy as np
import pytest

import kaffe

keras = pytest.importorskip("keras")

X = np.random.default_rng(2).uniform(size=(2, 12, 12, 3)).astype("float32")
CORNERS = np.array([[0, 0], [0, 12], [12, 0], [12, 12]], "float32")
MOVED = np.array([[1, 0], [0, 11], [12, 1], [11, 12]], "float32")
GRAPHS = {
    "rearrange": lambda lib, h, x: lib.ops.rearrange(h, "b (h1 h) w c -> b h w (h1 c)", h1=2),
    "gaussian_blur": lambda lib, h, x: lib.ops.image.gaussian_blur(
        h, (3, 3), (1.0, 1.0), data_format="channels_last"),
    "sobel_edges": lambda lib, h, x: lib.ops.image.sobel_edges(h, data_format="channels_last"),
    "ssim": lambda lib, h, x: lib.ops.image.ssim(h, x, filter_size=3),
    "affine_transform": lambda lib, h, x: lib.ops.image.affine_transform(
        h, np.array([[1.1, 0.1, -1, 0.05, 0.9, 0.5, 0, 0]] * 2, "float32")),
    "perspective_transform": lambda lib, h, x: lib.ops.image.perspective_transform(
        h, CORNERS, MOVED),
    "scale_and_translate": lambda lib, h, x: lib.ops.image.scale_and_translate(
        h, (2, 6, 6, 3), np.array([0.5, 0.5], "float32"), np.zeros(2, "float32"), (1, 2),
        "linear"),
    "map_coordinates": lambda lib, h, x: lib.ops.image.map_coordinates(
        h, np.full((4, 5), 1.5, "float32"), 1),
    "extract_patches_3d": lambda lib, h, x: lib.ops.image.extract_patches_3d(
        lib.ops.expand_dims(h, 1), (1, 2, 2)),
}


def _model(lib, name):
    lib.backend.clear_session()
    x = lib.Input(batch_shape=X.shape)
    h = lib.layers.Conv2D(3, 3, padding="same", name="conv")(x)
    return lib.Model(x, GRAPHS[name](lib, h, x))


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_image_op_graphs_round_trip_with_keras(name, tmp_path):
    ours = _model(kaffe, name)
    expected = np.asarray(ours.predict(X, verbose=0))
    ours.save(str(tmp_path / "kaffe.keras"))
    theirs = keras.saving.load_model(str(tmp_path / "kaffe.keras"))
    np.testing.assert_allclose(np.asarray(theirs.predict(X, verbose=0)), expected,
                               rtol=1e-4, atol=1e-4)
    keras_made = _model(keras, name)
    keras_made.save(str(tmp_path / "keras.keras"))
    back = kaffe.models.load_model(str(tmp_path / "keras.keras"), compile=False)
    np.testing.assert_allclose(np.asarray(back.predict(X, verbose=0)),
                               np.asarray(keras_made.predict(X, verbose=0)), rtol=1e-4, atol=1e-4)
