"""Regularizers, constraints, add_loss and mask propagation against Keras 3."""
import keras
import numpy as np
import torch

import kaffe
from kaffe import layers as kl


def regularized(lib):
    L = lib.layers
    model = lib.Sequential([
        L.Dense(4, input_shape=(6,), kernel_regularizer=lib.regularizers.l2(0.01),
                activity_regularizer=lib.regularizers.l1(0.001),
                kernel_constraint=lib.constraints.MaxNorm(0.5)),
        L.Dense(2, bias_regularizer="l1", kernel_constraint=lib.constraints.NonNeg())])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_regularized_training_equals_keras():
    x, y = np.random.rand(32, 6).astype("float32"), np.random.rand(32, 2).astype("float32")
    k_model, f_model = regularized(keras), regularized(kaffe)
    f_model.set_weights(k_model.get_weights())
    np.testing.assert_allclose(f_model.evaluate(x, y, verbose=0), k_model.evaluate(x, y, verbose=0),
                               rtol=1e-6)
    kh = k_model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    fh = f_model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(fh.history["loss"], kh.history["loss"], rtol=1e-5)
    for a, b in zip(f_model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert (f_model.layers[1].get_weights()[0] >= 0).all()


def test_regularizer_and_constraint_names_resolve():
    assert abs(kaffe.regularizers.get("l2")(torch.ones(3)).item() - 0.03) < 1e-7
    assert isinstance(kaffe.constraints.get("max_norm"), kaffe.constraints.MaxNorm)


def test_add_loss_from_a_custom_layer_is_trained_on():
    class Penalised(kaffe.layers.Layer):
        def call(self, inputs):
            self.add_loss(0.5 * inputs.abs().mean())
            return inputs
    model = kaffe.Sequential([kl.Dense(3, input_shape=(4,)), Penalised()])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.random.rand(8, 4).astype("float32"), np.zeros((8, 3), "float32")
    plain = float(((model.predict(x) - y) ** 2).mean())
    penalty = 0.5 * float(np.abs(model.predict(x)).mean())
    assert abs(model.evaluate(x, y, verbose=0) - (plain + penalty)) < 1e-5


def test_embedding_mask_zero_mask_reaches_the_next_layer():
    seen = {}

    class Probe(kaffe.layers.Layer):
        supports_masking = True

        def call(self, inputs, mask=None):
            seen["mask"] = mask
            return inputs
    inp = kaffe.Input((5,), dtype="int32")
    out = Probe()(kl.Embedding(10, 3, mask_zero=True)(inp))
    model = kaffe.Model(inp, out)
    model.predict(np.array([[1, 2, 0, 0, 0], [3, 0, 0, 0, 0]]))
    np.testing.assert_array_equal(seen["mask"].numpy(), [[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    seq = kaffe.Sequential([kl.Embedding(10, 3, mask_zero=True), Probe()])
    seq.predict(np.array([[0, 4]]))
    np.testing.assert_array_equal(seen["mask"].numpy(), [[0, 1]])
