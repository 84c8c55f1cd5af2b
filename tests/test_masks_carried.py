"""Keras 3's carried masks (keras.io guide "Understanding masking & padding"): a tensor holds
its mask as ``_keras_mask``, eager and symbolic; layers taking ``mask`` receive it; custom
``compute_mask`` / ``supports_masking`` layers produce and pass it on. Keras 3 is the oracle."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import kaffe  # noqa: E402

PADDED = np.array([[711, 632, 71, 0, 0, 0], [73, 8, 3215, 55, 927, 0],
                   [83, 91, 1, 645, 1253, 927]])


def to_np(t):
    return keras.ops.convert_to_numpy(t) if not isinstance(t, torch.Tensor) else t.numpy()


def test_eager_masks_of_embedding_and_masking_equal_keras():
    for lib in (keras, kaffe):
        embedded = lib.layers.Embedding(5000, 16, mask_zero=True)(PADDED)
        np.testing.assert_array_equal(to_np(embedded._keras_mask), PADDED != 0)
        dense = np.tile(PADDED[..., None], (1, 1, 10)).astype("float32")
        masked = lib.layers.Masking()(lib.ops.convert_to_tensor(dense))
        np.testing.assert_array_equal(to_np(masked._keras_mask), PADDED != 0)


def _layers(lib):
    class TemporalSplit(lib.layers.Layer):
        def call(self, inputs):
            return lib.ops.split(inputs, 2, axis=1)

        def compute_mask(self, inputs, mask=None):
            return None if mask is None else lib.ops.split(mask, 2, axis=1)

    class PassThrough(lib.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs):
            return lib.ops.relu(inputs)

    class TemporalSoftmax(lib.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            assert mask is not None
            weights = lib.ops.expand_dims(lib.ops.cast(mask, "float32"), -1)
            exp = lib.ops.exp(inputs) * weights
            return exp / lib.ops.sum(exp * weights, axis=-1, keepdims=True)
    return TemporalSplit, PassThrough, TemporalSoftmax


def test_custom_compute_mask_splits_and_pass_through_layers_carry_it():
    for lib in (keras, kaffe):
        TemporalSplit, PassThrough, _ = _layers(lib)
        embedded = lib.layers.Embedding(5000, 4, mask_zero=True)(PADDED)
        first, second = TemporalSplit()(embedded)
        np.testing.assert_array_equal(to_np(first._keras_mask), PADDED[:, :3] != 0)
        np.testing.assert_array_equal(to_np(second._keras_mask), PADDED[:, 3:] != 0)
        np.testing.assert_array_equal(to_np(PassThrough()(embedded)._keras_mask), PADDED != 0)


def test_symbolic_mask_reaches_a_layer_taking_mask_and_outputs_equal_keras():
    models = []
    for lib in (keras, kaffe):
        _, PassThrough, TemporalSoftmax = _layers(lib)
        inputs = lib.Input(shape=(None,), dtype="int32")
        x = PassThrough()(lib.layers.Embedding(10, 8, mask_zero=True)(inputs))
        assert x._keras_mask is not None and tuple(x._keras_mask.shape) == (None, None)
        outputs = TemporalSoftmax()(lib.layers.Dense(1)(x))
        models.append(lib.Model(inputs, outputs))
    k_model, f_model = models
    f_model.set_weights(k_model.get_weights())
    x = np.random.RandomState(0).randint(0, 10, size=(4, 7))
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
