"""Layer behaviour that real Keras programs (the Keras 2.x examples, keras.io's) rely on, each
checked against Keras 3 (torch backend) with the same inputs and weights."""
import keras
import numpy as np
import pytest

import kaffe
from kaffe import layers as kl


def _both(build):
    """Build the same functional model with Keras 3 and with kaffe; copy Keras's weights over."""
    keras.backend.clear_session()
    k_model = build(keras, keras.layers)
    f_model = build(kaffe, kl)
    f_model.set_weights(k_model.get_weights())
    return k_model, f_model


# ---------------------------------------------------------------- merges of different ranks
# mnist_acgan.py: layers.multiply([latent (None, 100), Flatten(Embedding(...)) ...]) and
# merges whose inputs differ in rank: Keras expands the lower-rank input at axis 1.
MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]


@pytest.mark.parametrize("merge", MERGES)
def test_merge_of_different_ranks_matches_keras(merge):
    def build(lib, L):
        a = lib.Input((5,))
        b = lib.Input((3, 5))
        return lib.Model([a, b], getattr(L, merge)()([a, b]))

    k_model, f_model = _both(build)
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(4, 3, 5)).astype("float32")]
    assert tuple(f_model.output.shape) == tuple(k_model.output.shape) == (None, 3, 5)
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)


def test_acgan_latent_times_class_embedding_matches_keras():
    """mnist_acgan.py's generator input: multiply([latent, Flatten()(Embedding(...)(cls))])
    in its Keras 2 form, where the embedding output is (None, 1, 100) before Flatten, and the
    rank-mismatched form (without Flatten) that Keras also accepts."""
    def build(lib, L):
        latent = lib.Input((8,))
        image_class = lib.Input((1,), dtype="int32")
        cls = L.Embedding(10, 8)(image_class)          # (None, 1, 8)
        h = L.multiply([latent, cls])                   # (None, 8) * (None, 1, 8)
        return lib.Model([latent, image_class], L.Flatten()(h))

    k_model, f_model = _both(build)
    rng = np.random.default_rng(1)
    x = [rng.normal(size=(6, 8)).astype("float32"), rng.integers(0, 10, size=(6, 1))]
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)


def test_merge_of_unbroadcastable_shapes_names_them():
    a, b = kaffe.Input((3,)), kaffe.Input((4, 5))
    with pytest.raises(ValueError, match=r"\(None, 3\).*\(None, 4, 5\)"):
        kl.Add()([a, b])


# ---------------------------------------------------------------- Lambda returning [tensor]
def test_lambda_returning_one_element_list_gives_the_tensor_as_keras2():
    """mnist_swwae.py: Lambda(getwhere) returns K.gradients(...), a one-element list; Keras 2
    unpacks it, so multiply([y, where]) works. Same numbers as Keras 3 returning the tensor."""
    def build(lib, L, wrap):
        a = lib.Input((4,))
        h = L.Dense(4)(a)
        twice = L.Lambda(lambda t: [t * 2.0] if wrap else t * 2.0)(h)
        return lib.Model(a, L.multiply([h, twice]))

    keras.backend.clear_session()
    k_model = build(keras, keras.layers, wrap=False)
    f_model = build(kaffe, kl, wrap=True)
    f_model.set_weights(k_model.get_weights())
    x = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")
    assert tuple(f_model.output.shape) == (None, 4)
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- Conv subclass hooks
# keras.io subclassing_conv_layers.py: a Conv2D subclass reads self.kernel (Keras layout) and
# calls self.convolution_op(inputs, kernel) from call, or overrides convolution_op.
def _standardized_conv_classes(lib):
    ops = lib.ops

    def standardize(kernel):
        mean, var = ops.moments(kernel, axes=[0, 1, 2], keepdims=True)
        return (kernel - mean) / ops.sqrt(var + 1e-10)

    class WithCall(lib.layers.Conv2D):
        def call(self, inputs):
            result = self.convolution_op(inputs, standardize(self.kernel))
            if self.use_bias:
                result = result + self.bias
            return result

    class WithOverride(lib.layers.Conv2D):
        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, standardize(kernel))

    return WithCall, WithOverride


@pytest.mark.parametrize("which", [0, 1])
def test_conv_subclass_convolution_op_matches_keras(which):
    def build(lib, L):
        cls = _standardized_conv_classes(lib)[which]
        inp = lib.Input((9, 9, 2))
        h = cls(4, 3, strides=2, padding="same", activation="relu")(inp)
        return lib.Model(inp, L.Conv2D(3, 2)(h))

    k_model, f_model = _both(build)
    assert [w.shape for w in f_model.get_weights()] == [w.shape for w in k_model.get_weights()]
    x = np.random.default_rng(3).normal(size=(2, 9, 9, 2)).astype("float32")
    assert tuple(f_model.output.shape) == tuple(k_model.output.shape)
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_conv_subclass_trains():
    """The Keras-layout kernel of a subclass is a real trainable weight: one fit step moves it."""
    cls = _standardized_conv_classes(kaffe)[0]
    model = kaffe.Sequential([kaffe.Input((8, 8, 1)), cls(2, 3), kl.Flatten(), kl.Dense(1)])
    model.compile("sgd", "mse")
    before = model.layers[0].get_weights()[0].copy()
    rng = np.random.default_rng(4)
    model.fit(rng.normal(size=(4, 8, 8, 1)).astype("float32"), np.ones((4, 1), "float32"),
              verbose=0)
    assert before.shape == (3, 3, 1, 2)
    assert not np.allclose(before, model.layers[0].get_weights()[0])


def test_plain_conv_keeps_torch_layout():
    conv = kl.Conv2D(4, 3)
    conv.build((None, 8, 8, 2))
    assert tuple(conv.kernel.shape) == (4, 2, 3, 3)
