"""Capabilities that keras.io's Keras 3 examples (the session-5 outside set: PixelCNN, attention
MIL, ...) rely on, each checked against Keras 3 (torch backend) running the same code."""
import keras
import numpy as np

import kaffe


def _custom_layer_classes(lib):
    """The same user layers written against ``lib`` (keras or kaffe)."""
    ops = lib.ops

    class CountingScale(lib.layers.Layer):
        """Writes to its weights inside ``call``: a non-trainable counter and a trainable
        kernel halved on every call (PixelCNN's ``self.conv.kernel.assign(kernel * mask)``)."""

        def build(self, input_shape):
            self.count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                         name="count")
            self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="ones", name="w")

        def call(self, x):
            self.count.assign_add(1.0)
            self.w.assign(self.w * 0.5)
            return ops.matmul(x, self.w)

    class TiedAttention(lib.layers.Layer):
        """attention_mil_classification.py's MILAttentionLayer: a weight made by add_weight(name=
        "u") and kept as ``self.u_weight_params`` (one tensor under two attribute names)."""

        def build(self, input_shape):
            dim = input_shape[-1]
            self.v_weight_params = self.add_weight(shape=(dim, 4), initializer="glorot_uniform",
                                                   name="v")
            self.u_weight_params = self.add_weight(shape=(dim, 4), initializer="glorot_uniform",
                                                   name="u")
            self.w_weight_params = self.add_weight(shape=(4, 1), initializer="glorot_uniform",
                                                   name="w")

        def call(self, x):
            gate = ops.sigmoid(ops.tensordot(x, self.u_weight_params, axes=1))
            h = ops.tanh(ops.tensordot(x, self.v_weight_params, axes=1)) * gate
            return ops.tensordot(h, self.w_weight_params, axes=1)

    return CountingScale, TiedAttention


def test_assign_inside_call_matches_keras_and_the_symbolic_call_writes_nothing():
    x = np.ones((4, 3), "float32")
    results = []
    for lib in (keras, kaffe):
        CountingScale, _ = _custom_layer_classes(lib)
        layer = CountingScale()
        inp = lib.Input((3,))
        model = lib.Model(inp, layer(inp))          # symbolic call: no write to the weights
        y = model.predict(x, verbose=0)             # one eager call: count 1, w halved once
        results.append((float(np.asarray(layer.count)), y, np.asarray(layer.w.detach()
                                                                         if hasattr(layer.w, "detach")
                                                                         else layer.w)))
    (k_count, k_y, k_w), (f_count, f_y, f_w) = results
    assert f_count == k_count == 1.0
    np.testing.assert_allclose(f_y, k_y)
    np.testing.assert_allclose(f_w, k_w)


def test_buffer_weights_take_assign_spellings():
    layer = kaffe.layers.Layer()
    counter = layer.add_weight(name="n", shape=(2,), initializer="zeros", trainable=False)
    counter.assign([3.0, 4.0])
    counter.assign_add(np.array([1.0, 1.0]))
    counter.assign_sub(0.5)
    np.testing.assert_allclose(counter.numpy(), [3.5, 4.5])


def test_weight_under_two_attribute_names_builds_and_matches_keras():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6)).astype("float32")
    models = []
    for lib in (keras, kaffe):
        _, TiedAttention = _custom_layer_classes(lib)
        inp = lib.Input((6,))
        models.append(lib.Model(inp, TiedAttention()(inp)))
    k_model, f_model = models
    assert tuple(f_model.output.shape) == tuple(k_model.output.shape) == (None, 1)
    f_model.set_weights(k_model.get_weights())
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
