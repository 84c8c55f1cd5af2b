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


def _masked_conv_classes(lib):
    """keras.io PixelCNN's PixelConvLayer: a Conv2D made in ``__init__`` whose kernel the
    owner masks in Keras's layout ``(kh, kw, in, out)`` before each call."""
    ops = lib.ops

    class PixelConvLayer(lib.layers.Layer):
        def __init__(self, mask_type, **kwargs):
            super().__init__()
            self.mask_type = mask_type
            self.conv = lib.layers.Conv2D(**kwargs)

        def build(self, input_shape):
            self.conv.build(input_shape)
            kernel_shape = ops.shape(self.conv.kernel)
            self.mask = np.zeros(shape=kernel_shape)
            self.mask[: kernel_shape[0] // 2, ...] = 1.0
            self.mask[kernel_shape[0] // 2, : kernel_shape[1] // 2, ...] = 1.0
            if self.mask_type == "B":
                self.mask[kernel_shape[0] // 2, kernel_shape[1] // 2, ...] = 1.0

        def call(self, inputs):
            self.conv.kernel.assign(self.conv.kernel * self.mask)
            return self.conv(inputs)

    return PixelConvLayer


def test_conv_inside_a_user_layer_has_keras_kernel_layout_and_masks_like_keras():
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(2, 6, 6, 1)).astype("float32")
    models = []
    for lib in (keras, kaffe):
        PixelConvLayer = _masked_conv_classes(lib)
        inp = lib.Input((6, 6, 1))
        h = PixelConvLayer("A", filters=4, kernel_size=5, padding="same")(inp)
        out = PixelConvLayer("B", filters=2, kernel_size=3, padding="same")(h)
        models.append(lib.Model(inp, out))
    k_model, f_model = models
    f_layer = f_model.layers[1]
    assert tuple(f_layer.conv.kernel.shape) == (5, 5, 1, 4)   # Keras's layout
    f_model.set_weights(k_model.get_weights())
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    for k_w, f_w in zip(k_model.get_weights(), f_model.get_weights()):   # both masked alike
        np.testing.assert_allclose(f_w, k_w, rtol=1e-6, atol=1e-7)


def test_conv_made_directly_in_a_model_keeps_torch_layout():
    """Only parts of user *layers* switch layout: a subclassed model's own convolutions stay
    in torch's faster layout (its code reads weights through get_weights)."""
    class Net(kaffe.Model):
        def __init__(self):
            super().__init__()
            self.conv = kaffe.layers.Conv2D(3, 2)

        def call(self, x):
            return self.conv(x)

    net = Net()
    net(np.zeros((1, 4, 4, 2), "float32"))
    assert tuple(net.conv.kernel.shape) == (3, 2, 2, 2)


def _stacked_classes(lib):
    """Layers held in a list built by append (keras.io ShiftViT's ``self.stages``), in a dict and
    in a tuple, as Keras 3 tracks them."""
    class Stacked(lib.Model):
        def __init__(self):
            super().__init__()
            self.stages = list()
            for units in (5, 4):
                self.stages.append(lib.layers.Dense(units, activation="tanh"))
            self.heads = {"main": lib.layers.Dense(2)}
            self.extra = (lib.layers.Dense(2),)

        def call(self, x):
            for stage in self.stages:
                x = stage(x)
            return self.heads["main"](x) + self.extra[0](x)

    return Stacked


def test_layers_in_lists_dicts_and_tuples_are_tracked_as_in_keras():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 3)).astype("float32")
    models = []
    for lib in (keras, kaffe):
        model = _stacked_classes(lib)()
        model(x[:1])
        models.append(model)
    k_model, f_model = models
    assert len(f_model.trainable_weights) == len(k_model.trainable_weights) == 8
    assert len(f_model.layers) == len(k_model.layers) == 4
    assert [tuple(w.shape) for w in f_model.get_weights()] == \
        [tuple(w.shape) for w in k_model.get_weights()]
    f_model.set_weights(k_model.get_weights())
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert "stages.0.kernel" in f_model.state_dict()


def test_tracked_list_layers_train_and_follow_changes():
    model = _stacked_classes(kaffe)()
    x = np.random.default_rng(4).normal(size=(32, 3)).astype("float32")
    y = np.zeros((32, 2), "float32")
    model.compile(optimizer="sgd", loss="mse")
    model(x[:1])
    before = model.stages[0].kernel.detach().clone()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.allclose(before.numpy(), model.stages[0].kernel.detach().numpy())
    model.stages.pop()
    assert len(model.trainable_weights) == 6
    model.stages = "replaced"         # no longer a container: its layers are dropped
    assert len(model.trainable_weights) == 4


def _call_free_model(lib):
    """keras.io ShiftViT's shape: a Model with no ``call`` whose layers are first run (and so
    built) inside its own ``train_step``; the optimizer must build on the variables given to
    its first ``apply``."""
    class CallFree(lib.Model):
        def __init__(self):
            super().__init__()
            self.blocks = [lib.layers.Dense(3, kernel_initializer="ones", activation="tanh"),
                           lib.layers.Dense(1, kernel_initializer="ones")]
            self.tracker = lib.metrics.Mean(name="loss")

        def train_step(self, data):
            x, y = data
            h = x
            for block in self.blocks:
                h = block(h)
            loss = lib.ops.mean((h - y) ** 2)
            self.zero_grad()
            loss.backward()
            variables = [v for block in self.blocks for v in block.trainable_variables]
            self.optimizer.apply([v.value.grad for v in variables], variables)
            self.tracker.update_state(loss)
            return {"loss": self.tracker.result()}

    return CallFree


def test_model_built_in_its_own_train_step_trains_like_a_torch_loop():
    """Keras 3 (3.x here) refuses to fit such a model ("Unable to automatically build the
    model"); tf.keras ran it (ShiftViT's TensorFlow form), so kaffe does: the oracle is the same
    two Dense layers and SGD written in plain torch."""
    import torch
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 2)).astype("float32") * 0.3
    y = rng.normal(size=(16, 1)).astype("float32")
    model = _call_free_model(kaffe)()
    model.compile(optimizer=kaffe.optimizers.SGD(0.1))
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)

    w1, b1 = torch.ones(2, 3, requires_grad=True), torch.zeros(3, requires_grad=True)
    w2, b2 = torch.ones(3, 1, requires_grad=True), torch.zeros(1, requires_grad=True)
    for start in range(0, 16, 4):
        xb, yb = torch.from_numpy(x[start:start + 4]), torch.from_numpy(y[start:start + 4])
        loss = ((torch.tanh(xb @ w1 + b1) @ w2 + b2 - yb) ** 2).mean()
        grads = torch.autograd.grad(loss, [w1, b1, w2, b2])
        with torch.no_grad():
            for v, g in zip([w1, b1, w2, b2], grads):
                v -= 0.1 * g
    expected = [w1, b1, w2, b2]
    got = model.blocks[0].get_weights() + model.blocks[1].get_weights()
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_masked_conv_trains_like_keras():
    """PixelCNN's ``kernel.assign(kernel * mask)`` while training (the kernel requires grad and
    the mask is a float64 NumPy array): one SGD epoch matches Keras 3."""
    rng = np.random.default_rng(6)
    x = rng.uniform(size=(8, 6, 6, 1)).astype("float32")
    y = rng.uniform(size=(8, 6, 6, 2)).astype("float32")
    models = []
    for lib in (keras, kaffe):
        PixelConvLayer = _masked_conv_classes(lib)
        inp = lib.Input((6, 6, 1))
        out = PixelConvLayer("B", filters=2, kernel_size=3, padding="same")(inp)
        models.append(lib.Model(inp, out))
    k_model, f_model = models
    f_model.set_weights(k_model.get_weights())
    for lib, model in ((keras, k_model), (kaffe, f_model)):
        model.compile(optimizer=lib.optimizers.SGD(0.5), loss="mse")
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for k_w, f_w in zip(k_model.get_weights(), f_model.get_weights()):
        np.testing.assert_allclose(f_w, k_w, rtol=1e-5, atol=1e-6)


def test_weights_combine_with_numpy_arrays_like_keras_variables():
    mask = np.arange(6, dtype="float64").reshape(2, 3)
    for lib in (keras, kaffe):
        layer = lib.layers.Layer()
        kernel = layer.add_weight(shape=(2, 3), initializer="ones", name="k")
        for got, want in ((kernel * mask, mask), (mask * kernel, mask), (kernel + mask, mask + 1),
                          (mask - kernel, mask - 1), (kernel / (mask + 1), 1 / (mask + 1))):
            np.testing.assert_allclose(lib.ops.convert_to_numpy(got), want, rtol=1e-6)


def _tied_dense_classes(lib):
    """A user layer that uses its Dense part's kernel itself (tied decoder weights)."""
    ops = lib.ops

    class TiedAutoencoder(lib.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.encoder = lib.layers.Dense(3, activation="tanh")

        def call(self, x):
            code = self.encoder(x)
            return ops.matmul(code, ops.transpose(self.encoder.kernel))

    return TiedAutoencoder


def test_dense_inside_a_user_layer_has_keras_kernel_layout():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 5)).astype("float32")
    models = []
    for lib in (keras, kaffe):
        inp = lib.Input((5,))
        models.append(lib.Model(inp, _tied_dense_classes(lib)()(inp)))
    k_model, f_model = models
    assert tuple(f_model.layers[1].encoder.kernel.shape) == (5, 3)
    f_model.set_weights(k_model.get_weights())
    np.testing.assert_allclose(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_traceback_filtering_setting_round_trips_as_in_keras():
    for config in (keras.config, kaffe.config):
        assert config.is_traceback_filtering_enabled() is True
        config.disable_traceback_filtering()
        assert config.is_traceback_filtering_enabled() is False
        config.enable_traceback_filtering()
        assert config.is_traceback_filtering_enabled() is True


def test_attributes_set_before_super_init_as_tf_keras_allows():
    """keras.io's Switch Transformer (tf.keras) sets sub-layers before ``super().__init__()``;
    Keras 3's torch backend refuses that, tf.keras runs it. The oracle is the same layer written
    in the usual order under Keras 3."""
    def make(lib, early):
        class Router(lib.layers.Layer):
            def __init__(self, n):
                if early:
                    self.n = n
                    self.route = lib.layers.Dense(units=n)
                    self.experts = [lib.layers.Dense(2) for _ in range(2)]
                    super().__init__()
                else:
                    super().__init__()
                    self.n = n
                    self.route = lib.layers.Dense(units=n)
                    self.experts = [lib.layers.Dense(2) for _ in range(2)]

            def call(self, x):
                return self.route(x) + self.experts[1](x)[:, :1]
        return Router(3)

    x = np.random.default_rng(8).normal(size=(4, 5)).astype("float32")
    k_layer, f_layer = make(keras, early=False), make(kaffe, early=True)
    k_out = k_layer(x)
    f_layer(x)
    assert f_layer.n == 3 and len(f_layer.trainable_weights) == len(k_layer.trainable_weights) == 4
    f_layer.set_weights(k_layer.get_weights())
    np.testing.assert_allclose(kaffe.ops.convert_to_numpy(f_layer(x)),
                               keras.ops.convert_to_numpy(k_out), rtol=1e-5, atol=1e-6)


def test_targets_only_for_outputs_with_a_loss_as_in_keras():
    """keras.io's miniature GPT: outputs [logits, embeddings], loss=[fn, None], one target."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.integers(0, 5, size=(16,))
    histories = []
    for lib in (keras, kaffe):
        inp = lib.layers.Input((4,))
        h = lib.layers.Dense(3, kernel_initializer="ones")(inp)
        out = lib.layers.Dense(5, kernel_initializer="ones")(h)
        model = lib.Model(inp, [out, h])
        model.compile(lib.optimizers.SGD(0.1),
                      loss=[lib.losses.SparseCategoricalCrossentropy(from_logits=True), None])
        histories.append(model.fit(x, y, batch_size=8, epochs=2, shuffle=False,
                                   verbose=0).history)
    k_hist, f_hist = histories
    assert sorted(f_hist) == sorted(k_hist) == ["loss"]
    np.testing.assert_allclose(f_hist["loss"], k_hist["loss"], rtol=1e-5)
