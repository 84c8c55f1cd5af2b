"""Functional graphs that compute on symbolic tensors: op nodes (``h * 2``, ``h[:, 0]``,
``ops.sum``) build, summarise, train and round-trip through ``.keras`` with Keras 3 both ways;
losses on KerasTensors, ``add_loss`` and ``compile()`` without a loss; Keras 2's metric target
alignment."""
import io
import contextlib

import numpy as np
import pytest
import torch

import kaffe
from kaffe import backend as K, layers, losses, ops

keras = pytest.importorskip("keras")


def _op_graph(lib):
    """The same graph in kaffe or Keras 3: a Dense layer and ops on its output."""
    x = lib.Input((4,))
    h = lib.layers.Dense(3, name="dense_a")(x)
    z = lib.ops.add(h, 2.0) * h
    w = 1 - z[:, 0:2]
    s = lib.ops.sum(w, axis=-1, keepdims=True)
    out = -s + abs(h[..., :1]) / 2
    return lib.Model(x, out)


def _summary_rows(model):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        model.summary(line_length=200)
    text = buffer.getvalue()
    return [name for name in ("add (Add)", "multiply (Multiply)", "get_item (GetItem)",
                              "subtract (Subtract)", "sum (Sum)", "absolute (Absolute)",
                              "negative (Negative)", "true_divide (TrueDivide)")
            if name in text]


def test_op_graph_summary_names_and_shapes_equal_keras():
    kaffe.backend.clear_session()
    keras.backend.clear_session()
    ours, theirs = _op_graph(kaffe), _op_graph(keras)
    assert _summary_rows(ours) == _summary_rows(theirs)
    assert len(_summary_rows(ours)) == 8
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers]  # ops not layers
    assert ours.output.shape == tuple(theirs.output.shape)


def test_op_graph_trains_and_round_trips_with_keras(tmp_path):
    kaffe.backend.clear_session()
    model = _op_graph(kaffe)
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = rng.random((64, 4), dtype=np.float32)
    y = rng.random((64, 1), dtype=np.float32)
    history = model.fit(x, y, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    expected = model.predict(x, verbose=0)

    path = str(tmp_path / "ops.keras")
    model.save(path)
    again = kaffe.models.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), expected, rtol=1e-6)

    theirs = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), expected, rtol=1e-5,
                               atol=1e-6)
    back = str(tmp_path / "from_keras.keras")
    theirs.save(back)
    mine = kaffe.models.load_model(back, compile=False)
    np.testing.assert_allclose(mine.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_keras_file_with_not_equal_and_slicing_nodes_loads(tmp_path):
    """A Keras 3 graph whose ops are outputs (not only masks): NotEqual, GetItem, Mean."""
    ids = keras.Input((5,), dtype="int32")
    mask = keras.ops.not_equal(ids, 0)
    emb = keras.layers.Embedding(10, 3)(ids)
    first = emb[:, 0, :]
    pooled = keras.ops.mean(emb, axis=1)
    model = keras.Model(ids, [mask, first + pooled])
    path = str(tmp_path / "keras_ops.keras")
    model.save(path)
    data = np.array([[1, 2, 0, 0, 3], [4, 0, 0, 0, 0]], dtype="int32")
    want_mask, want_sum = (np.asarray(v) for v in model.predict(data, verbose=0))

    ours = kaffe.models.load_model(path)
    got_mask, got_sum = ours.predict(data, verbose=0)
    np.testing.assert_array_equal(got_mask, want_mask)
    np.testing.assert_allclose(got_sum, want_sum, rtol=1e-6)


def test_losses_on_symbolic_tensors_give_symbolic_tensors():
    x = kaffe.Input((6,))
    out = layers.Dense(6, activation="sigmoid")(x)
    for fn in (losses.binary_crossentropy, losses.mse, losses.mean_absolute_error):
        value = fn(x, out)
        assert isinstance(value, kaffe.engine.keras_tensor.KerasTensor)
        assert value.shape == (None,)


def _vae_like(seed=0):
    torch.manual_seed(seed)
    x = kaffe.Input((8,))
    h = layers.Dense(6, activation="relu")(x)
    z_mean, z_log_var = layers.Dense(2)(h), layers.Dense(2)(h)
    out = layers.Dense(8, activation="sigmoid")(layers.Dense(6, activation="relu")(z_mean))
    model = kaffe.Model(x, out)
    reconstruction = losses.binary_crossentropy(x, out) * 8
    kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
    model.add_loss(ops.mean(reconstruction + kl))
    return model, (x, out, z_mean, z_log_var)


def test_add_loss_symbolic_and_compile_without_loss_trains():
    model, _ = _vae_like()
    model.compile(optimizer="adam")
    x = np.random.default_rng(1).random((128, 8), dtype=np.float32)
    history = model.fit(x, epochs=4, batch_size=32, verbose=0, validation_data=(x, None))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "val_loss" in history.history


def test_added_loss_value_equals_the_formula():
    model, (_, out, z_mean, z_log_var) = _vae_like()
    x = np.random.default_rng(2).random((16, 8), dtype=np.float32)
    model.compile(optimizer="sgd")
    reported = model.evaluate(x, verbose=0)
    inner = kaffe.Model(model.inputs, [out, z_mean, z_log_var])
    out, mean, log_var = (torch.as_tensor(v) for v in inner.predict(x, verbose=0))
    xt = torch.as_tensor(x)
    bce = -(xt * torch.log(out.clamp(1e-7, 1 - 1e-7))
            + (1 - xt) * torch.log((1 - out).clamp(1e-7, 1 - 1e-7))).mean(-1) * 8
    kl = -0.5 * (1 + log_var - mean ** 2 - log_var.exp()).sum(-1)
    assert reported == pytest.approx(float((bce + kl).mean()), rel=1e-4)


def test_add_loss_inside_call_keras3_style():
    class ActivityPenalty(layers.Layer):
        def call(self, inputs):
            self.add_loss(0.5 * ops.sum(ops.square(inputs)))
            return inputs

    x = kaffe.Input((3,))
    y = ActivityPenalty()(layers.Dense(3, kernel_initializer="ones")(x))
    model = kaffe.Model(x, y)
    model.compile("sgd", "mse")
    data = np.ones((4, 3), "float32")
    loss = model.evaluate(data, np.zeros((4, 3), "float32"), verbose=0, batch_size=4)
    # mse of 3s against zeros is 9; the penalty is 0.5 * 4 * 3 * 9 = 54
    assert loss == pytest.approx(9.0 + 54.0, rel=1e-5)


def test_layer_losses_hold_the_last_outermost_call_like_keras():
    # keras.io's "making new layers via subclassing" guide: layer.losses is reset at the start
    # of each outermost __call__, inner layers' losses count for the outer one, and weight
    # regularizers are always listed
    def run(lib):
        class Penalty(lib.layers.Layer):
            def call(self, inputs):
                self.add_loss(1e-2 * lib.ops.mean(inputs))
                return inputs

        class Outer(lib.layers.Layer):
            def __init__(self):
                super().__init__()
                self.penalty = Penalty()
                self.dense = lib.layers.Dense(2, kernel_regularizer=lib.regularizers.l2(1e-3))

            def call(self, inputs):
                return self.dense(self.penalty(inputs))

        outer, counts = Outer(), []
        x = np.ones((1, 3), "float32")
        counts.append(len(outer.losses))
        for _ in range(2):
            outer(x)
            counts.append(len(outer.losses))
        outer.penalty(x)  # the inner layer called on its own starts its own pass
        counts.append(len(outer.penalty.losses))
        return counts

    assert run(kaffe) == run(keras) == [0, 2, 2, 1]


def _siamese_accuracy(y_true, y_pred):
    """The hand-written metric of Keras 2's examples/mnist_siamese.py."""
    return K.mean(K.equal(y_true, K.cast(y_pred < 0.5, y_true.dtype)))


def test_custom_metric_gets_target_aligned_to_one_column_output():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2)).astype("float32")
    labels = (x[:, 0] < 0).astype("float32")  # 1-D targets, as the siamese example passes
    inp = kaffe.Input((2,))
    out = layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")(inp)
    model = kaffe.Model(inp, out)
    model.compile("sgd", "mse", metrics=[_siamese_accuracy])
    model.layers[1].set_weights([np.array([[1.0], [0.0]], "float32"),
                                 np.array([0.5], "float32")])
    _, accuracy = model.evaluate(x, labels, verbose=0, batch_size=200)
    prediction = x[:, 0] + 0.5
    true_accuracy = float(np.mean(labels == (prediction < 0.5)))
    assert accuracy == pytest.approx(true_accuracy)
    assert true_accuracy > 0.9  # the broadcast (N, N) comparison would give about 0.5


def test_op_free_graph_has_no_op_steps():
    x = kaffe.Input((4,))
    model = kaffe.Model(x, layers.Dense(2)(layers.Dense(3)(x)))
    assert all(type(step[0]).__name__ != "OpStep" for step in model._steps)
    assert model._loss_slots == [] and not model._adds_losses


def test_op_kaffe_lacks_is_named_with_the_script_line_under_kaffe_run(tmp_path, capsys):
    from kaffe.cli.main import main
    script = tmp_path / "uses_ops.py"
    script.write_text("import keras\nfrom keras import ops\nh = keras.Input((3,))\n"
                      "y = ops.square(h) + 1\nz = ops.frobnicate(y)\n")
    assert main(["run", str(script)]) == 1
    err = capsys.readouterr().err
    assert f"kaffe has no keras.ops.frobnicate (used at {script}:5)" in err


def test_keras_random_is_seeded_under_kaffe_names():
    from kaffe import random
    generator = random.SeedGenerator(7)
    first = random.normal((3,), seed=random.SeedGenerator(7))
    assert torch.equal(first, random.normal((3,), seed=generator))
    assert not torch.equal(random.normal((3,), seed=generator), first)  # the stream moves on
    assert torch.equal(random.uniform((4,), seed=3), random.uniform((4,), seed=3))
    values = random.randint((1000,), 2, 5, seed=1)
    assert int(values.min()) == 2 and int(values.max()) == 4
    assert float(random.truncated_normal((1000,), seed=1).abs().max()) <= 2.0
    kept = random.dropout(torch.ones(1000), 0.25, seed=2)
    assert np.allclose(sorted(kept.unique().tolist()), [0.0, 1.0 / 0.75])
    assert sorted(random.shuffle(torch.arange(10), seed=4).tolist()) == list(range(10))


def test_custom_layer_building_sublayers_while_its_shape_is_traced():
    """keras.io's TokenAndPositionEmbedding: sub-layers built inside call, ops.arange making a
    new tensor; the meta-device trace must not leave the sub-layers' weights on 'meta'."""
    class TokenAndPosition(layers.Layer):
        def __init__(self):
            super().__init__()
            self.token_emb = layers.Embedding(50, 4)
            self.pos_emb = layers.Embedding(6, 4)

        def call(self, x):
            positions = self.pos_emb(ops.arange(0, ops.shape(x)[-1], 1))
            return self.token_emb(x) + positions

    inputs = kaffe.Input((6,), dtype="int32")
    out = TokenAndPosition()(inputs)
    assert out.shape == (None, 6, 4)
    model = kaffe.Model(inputs, out)
    result = model.predict(np.ones((2, 6), "int32"), verbose=0)
    assert result.shape == (2, 6, 4) and np.isfinite(result).all()
