"""Masks in RNNs, stateful RNNs, Masking, Bidirectional, TimeDistributed, ConvLSTM and masked
global pooling against Keras 3 (torch backend), same weights."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kaffe.engine.functional import Functional  # noqa: E402
from kaffe.engine.input_layer import Input  # noqa: E402
from kaffe.engine.sequential import Sequential  # noqa: E402
from kaffe.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D  # noqa: E402
from kaffe.layers.convolutional import Conv2D  # noqa: E402
from kaffe.layers.core import Dense  # noqa: E402
from kaffe.layers.embedding import Embedding  # noqa: E402
from kaffe.optimizers import Adam  # noqa: E402
from kaffe.layers.masking import Masking  # noqa: E402
from kaffe.layers.pooling import GlobalAveragePooling1D, GlobalMaxPooling1D  # noqa: E402
from kaffe.layers.recurrent import GRU, LSTM, SimpleRNN  # noqa: E402
from kaffe.layers.rnn_wrappers import Bidirectional, TimeDistributed  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
RNNS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}

# Post-padded, unpadded, pre-padded, holes (step loop), empty: one of each per batch.
TOKENS = np.array([[3, 7, 2, 0, 0, 0],
                   [5, 1, 4, 9, 8, 6],
                   [0, 0, 0, 4, 4, 1],
                   [6, 0, 2, 0, 3, 0],
                   [0, 0, 0, 0, 0, 0]], dtype="int64")
POST_PRE = TOKENS[:3]  # one contiguous run per row: the fused (packed) path


def to_np(value):
    return keras.ops.convert_to_numpy(value)


def as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def perturbed(weights, seed=1):
    rng = np.random.default_rng(seed)
    return [w + 0.2 * rng.standard_normal(w.shape).astype("float32") for w in weights]


def assert_all_close(got, expected):
    got, expected = as_list(got), as_list(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.detach().numpy(), to_np(e), **TOL)


def twin_models(make_keras, make_kaffe, steps=6, vocab=10, dim=4):
    """Input -> Embedding(mask_zero) -> layer, in Keras and kaffe, Keras's weights in both."""
    k_in = keras.Input((steps,), dtype="int32")
    k_embedded = keras.layers.Embedding(vocab, dim, mask_zero=True)(k_in)
    k_model = keras.Model(k_in, make_keras()(k_embedded))
    k_model.set_weights(perturbed(k_model.get_weights()))
    t_in = Input((steps,), dtype="int64")
    t_model = Functional(t_in, make_kaffe()(Embedding(vocab, dim, mask_zero=True)(t_in)))
    t_model.set_weights(k_model.get_weights())
    return k_model, t_model


# ---------------------------------------------------------------------------------- masked RNNs
@pytest.mark.parametrize("name", list(RNNS))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_state", [False, True])  # LSTM: packed only for return_state
def test_masked_rnn_model_matches_keras(name, return_sequences, go_backwards, return_state):
    kwargs = dict(return_sequences=return_sequences, return_state=return_state,
                  go_backwards=go_backwards)
    k_model, t_model = twin_models(lambda: getattr(keras.layers, name)(5, **kwargs),
                                   lambda: RNNS[name](5, **kwargs))
    with torch.no_grad():
        assert_all_close(t_model(torch.from_numpy(TOKENS)), k_model(TOKENS))


@pytest.mark.parametrize("name,extra", [("LSTM", {}), ("GRU", {"reset_after": False}),
                                        ("SimpleRNN", {"activation": "relu"}),
                                        ("LSTM", {"zero_output_for_mask": True})], ids=str)
def test_masked_rnn_options_and_initial_state_match_keras(name, extra):
    kwargs = dict(extra, return_sequences=True, return_state=True)
    keras_layer = getattr(keras.layers, name)(5, **kwargs)
    keras_layer.build((None, 6, 3))
    keras_layer.set_weights(perturbed(keras_layer.get_weights()))
    layer = RNNS[name](5, **kwargs)
    layer(torch.zeros(1, 6, 3))
    layer.set_weights(keras_layer.get_weights())
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((5, 6, 3)).astype("float32"))
    mask = torch.from_numpy(TOKENS != 0)
    states = [torch.ones(5, 5) * 0.3] * (2 if name == "LSTM" else 1)
    assert_all_close(layer(x, mask=mask, initial_state=states),
                     keras_layer(x, mask=mask, initial_state=states))


@pytest.mark.parametrize("name", list(RNNS))
def test_masked_rnn_gradients_match_keras(name):
    keras_layer = getattr(keras.layers, name)(5, return_sequences=True)
    keras_layer.build((None, 6, 3))
    keras_layer.set_weights(perturbed(keras_layer.get_weights()))
    layer = RNNS[name](5, return_sequences=True)
    layer(torch.zeros(1, 6, 3))
    layer.set_weights(keras_layer.get_weights())
    x = np.random.default_rng(3).standard_normal((3, 6, 3)).astype("float32")
    mask = torch.from_numpy(POST_PRE != 0)
    x_k, x_t = (torch.from_numpy(x).requires_grad_() for _ in range(2))
    keras_layer(x_k, mask=mask).pow(2).sum().backward()
    layer.train()
    layer(x_t, mask=mask).pow(2).sum().backward()
    np.testing.assert_allclose(x_t.grad.numpy(), x_k.grad.numpy(), **TOL)


@pytest.mark.parametrize("name", list(RNNS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_padded_sequences_give_the_unpadded_result(name, go_backwards):
    layer = RNNS[name](4, return_state=True, go_backwards=go_backwards)
    embedding = Embedding(10, 3, mask_zero=True)
    t_in = Input((None,), dtype="int64")
    model = Functional(t_in, layer(embedding(t_in)))
    with torch.no_grad():
        unpadded = model(torch.tensor([[1, 2, 3]]))
        for padded in ([[1, 2, 3, 0, 0]], [[0, 0, 1, 2, 3]]):
            for a, b in zip(model(torch.tensor(padded)), unpadded):
                torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_contiguous_masks_stay_on_the_fused_kernel(monkeypatch):
    layer = LSTM(4, return_sequences=True)
    x = torch.randn(3, 6, 2)
    layer(x)

    def no_loop(*args, **kwargs):
        raise AssertionError("step loop used for a mask with one run per row")
    monkeypatch.setattr(layer, "_loop", no_loop)
    layer(x, mask=torch.from_numpy(POST_PRE != 0))
    monkeypatch.undo()
    layer(x, mask=torch.from_numpy(TOKENS[2:5] != 0))  # holes: the loop, which must work
    assert layer.compute_mask(x, torch.ones(3, 6, dtype=torch.bool)) is not None
    assert LSTM(4).compute_mask(x, torch.ones(3, 6, dtype=torch.bool)) is None


def test_masked_rnn_with_dropout_trains():
    layer = GRU(4, dropout=0.3, recurrent_dropout=0.3, seed=1, return_sequences=True)
    layer.train()
    out = layer(torch.randn(5, 6, 3), mask=torch.from_numpy(TOKENS != 0))
    out.sum().backward()
    assert layer.kernel.grad is not None
    assert torch.equal(out[0, 3:], out[0, 2:3].expand(3, -1).detach())  # held after the run
    with pytest.raises(ValueError, match="mask of shape"):
        layer(torch.randn(5, 6, 3), mask=torch.ones(5, 4, dtype=torch.bool))


# ---------------------------------------------------------------------------------- stateful
def test_stateful_lstm_matches_keras_over_consecutive_batches():
    k_in = keras.Input(batch_shape=(2, 4, 3))
    k_layer = keras.layers.LSTM(5, stateful=True, return_sequences=True)
    k_model = keras.Model(k_in, k_layer(k_in))
    k_model.set_weights(perturbed(k_model.get_weights()))
    t_in = Input(batch_shape=(2, 4, 3))
    layer = LSTM(5, stateful=True, return_sequences=True)
    t_model = Functional(t_in, layer(t_in))
    t_model.set_weights(k_model.get_weights())
    rng = np.random.default_rng(4)
    batches = [rng.standard_normal((2, 4, 3)).astype("float32") for _ in range(3)]
    with torch.no_grad():
        for x in batches[:2]:
            assert_all_close(t_model(torch.from_numpy(x)), k_model(x))
        assert not torch.equal(layer.states[0], torch.zeros(2, 5))
        k_layer.reset_state()
        layer.reset_states()
        assert torch.equal(layer.states[1], torch.zeros(2, 5))
        assert_all_close(t_model(torch.from_numpy(batches[2])), k_model(batches[2]))
        with pytest.raises(ValueError, match="batch size 2"):
            layer(torch.zeros(3, 4, 3))


def test_stateful_options_and_errors():
    with pytest.raises(ValueError, match="fixed batch size"):
        LSTM(3, stateful=True)(Input((4, 2)))
    GRU(3).reset_states()  # a no-op, as in Keras 3
    with pytest.raises(AttributeError, match="stateful"):
        Bidirectional(GRU(3)).reset_states()
    # go_backwards, return_state and a given initial state with stateful=True
    layer = GRU(3, stateful=True, go_backwards=True, return_state=True)
    x = torch.randn(2, 4, 2)
    out, h = layer(x, initial_state=[torch.ones(2, 3)])
    _, h_next = layer(x)
    reference = GRU(3, go_backwards=True, return_state=True)
    reference(x)
    reference.set_weights(layer.get_weights())
    torch.testing.assert_close(reference(x, initial_state=[h])[1], h_next)
    layer.reset_states([np.full((2, 3), 0.5, "float32")])
    half = torch.full((2, 3), 0.5)
    torch.testing.assert_close(layer(x)[1], reference(x, initial_state=[half])[1])
    assert layer.get_config()["stateful"] and len(layer.get_weights()) == 3


# ---------------------------------------------------------------------------------- Masking
def test_masking_then_lstm_matches_keras():
    x = np.random.default_rng(5).standard_normal((3, 6, 4)).astype("float32")
    x[0, 4:] = 0.0
    x[1, :2] = 0.0
    x[2, 3] = 0.0
    k_in = keras.Input((6, 4))
    k_model = keras.Model(k_in, keras.layers.LSTM(5, return_sequences=True)(
        keras.layers.Masking()(k_in)))
    k_model.set_weights(perturbed(k_model.get_weights()))
    t_model = Sequential([Input((6, 4)), Masking(), LSTM(5, return_sequences=True)])
    t_model.set_weights(k_model.get_weights())
    with torch.no_grad():
        assert_all_close(t_model(torch.from_numpy(x)), k_model(x))
    masking, k_masking = Masking(mask_value=0.5), keras.layers.Masking(mask_value=0.5)
    x[0, 1] = 0.5
    np.testing.assert_array_equal(masking(torch.from_numpy(x)).numpy(), to_np(k_masking(x)))
    np.testing.assert_array_equal(masking.compute_mask(torch.from_numpy(x)).numpy(),
                                  to_np(k_masking.compute_mask(x)))
    assert Masking.from_config(masking.get_config()).mask_value == 0.5


# ---------------------------------------------------------------------------------- Bidirectional
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_matches_keras(merge_mode, return_sequences):
    kwargs = dict(return_sequences=return_sequences)
    k_model, t_model = twin_models(
        lambda: keras.layers.Bidirectional(keras.layers.LSTM(5, **kwargs), merge_mode=merge_mode),
        lambda: Bidirectional(LSTM(5, **kwargs), merge_mode=merge_mode))
    with torch.no_grad():
        assert_all_close(t_model(torch.from_numpy(TOKENS)), k_model(TOKENS))
    layer = t_model.layers[-1]
    assert layer.forward_layer.name.startswith("forward_lstm")
    assert layer.backward_layer.name.startswith("backward_lstm")
    assert layer.backward_layer.go_backwards


@pytest.mark.parametrize("name", ["GRU", "SimpleRNN"])
def test_bidirectional_states_shapes_and_backward_layer_match_keras(name):
    kwargs = dict(return_sequences=True, return_state=True)
    keras_layer = keras.layers.Bidirectional(getattr(keras.layers, name)(4, **kwargs),
                                             backward_layer=getattr(keras.layers, name)(
                                                 4, go_backwards=True, activation="relu", **kwargs))
    keras_layer.build((None, 6, 3))
    keras_layer.set_weights(perturbed(keras_layer.get_weights()))
    layer = Bidirectional(RNNS[name](4, **kwargs), backward_layer=RNNS[name](
        4, go_backwards=True, activation="relu", **kwargs))
    layer(torch.zeros(1, 6, 3))
    layer.set_weights(keras_layer.get_weights())
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in keras_layer.get_weights()]
    x = np.random.default_rng(6).standard_normal((5, 6, 3)).astype("float32")
    mask = torch.from_numpy(TOKENS != 0)
    states = [torch.full((5, 4), 0.1), torch.full((5, 4), -0.2)]
    assert_all_close(layer(torch.from_numpy(x), mask=mask, initial_state=states),
                     keras_layer(x, mask=mask, initial_state=states))
    got = layer.compute_output_shape((None, 6, 3))
    expected = keras_layer.compute_output_shape((None, 6, 3))
    assert [tuple(s) for s in got] == [tuple(s) for s in expected]
    clone = Bidirectional.from_config(layer.get_config())
    assert clone.backward_layer.activation is torch.relu and clone.merge_mode == "concat"
    with pytest.raises(ValueError, match="go_backwards"):
        Bidirectional(LSTM(3), backward_layer=LSTM(3))
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(LSTM(3), merge_mode="max")


def test_bidirectional_weights_argument_and_symbolic_shape():
    source = Bidirectional(LSTM(3))
    source(torch.zeros(1, 4, 2))
    layer = Bidirectional(LSTM(3, return_sequences=True), weights=source.get_weights())
    out = layer(Input((4, 2)))
    assert tuple(out.shape) == (None, 4, 6)
    for a, b in zip(layer.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------- TimeDistributed
def test_time_distributed_dense_and_conv2d_match_keras():
    rng = np.random.default_rng(7)
    cases = [(keras.layers.Dense(4, activation="relu"), Dense(4, activation="relu"), (2, 5, 3)),
             (keras.layers.Conv2D(4, 3, padding="same"), Conv2D(4, 3, padding="same"),
              (2, 3, 6, 6, 2))]
    for k_inner, inner, shape in cases:
        keras_layer = keras.layers.TimeDistributed(k_inner)
        keras_layer.build((None,) + shape[1:])
        keras_layer.set_weights(perturbed(keras_layer.get_weights()))
        layer = TimeDistributed(inner)
        out = layer(Input(shape[1:]))
        assert tuple(out.shape) == tuple(keras_layer.compute_output_shape((None,) + shape[1:]))
        layer.set_weights(keras_layer.get_weights())
        x = rng.standard_normal(shape).astype("float32")
        assert_all_close(layer(torch.from_numpy(x)), keras_layer(x))
        clone = TimeDistributed.from_config(layer.get_config())
        assert type(clone.layer) is type(inner)


def test_time_distributed_passes_the_mask_on():
    k_model, t_model = twin_models(
        lambda: _Seq([keras.layers.TimeDistributed(keras.layers.Dense(3)),
                      keras.layers.GRU(4, return_sequences=True)]),
        lambda: _Seq([TimeDistributed(Dense(3)), GRU(4, return_sequences=True)]))
    with torch.no_grad():
        assert_all_close(t_model(torch.from_numpy(TOKENS)), k_model(TOKENS))


class _Seq:
    """Apply layers one after the other to a symbolic tensor (a chain inside one model)."""

    def __init__(self, layers):
        self.layers = layers

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


# ---------------------------------------------------------------------------------- ConvLSTM
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3),
    dict(kernel_size=2, padding="same", return_sequences=True),
    dict(kernel_size=3, strides=2, padding="same", go_backwards=True, return_state=True),
    dict(kernel_size=(3, 2), dilation_rate=2, padding="same", data_format="channels_first",
         return_sequences=True),
], ids=str)
def test_conv_lstm2d_matches_keras(kwargs):
    channels_first = kwargs.get("data_format") == "channels_first"
    shape = (2, 4, 3, 7, 6) if channels_first else (2, 4, 7, 6, 3)
    keras_layer = keras.layers.ConvLSTM2D(4, **kwargs)
    keras_layer.build(shape)
    keras_layer.set_weights(perturbed(keras_layer.get_weights()))
    layer = ConvLSTM2D(4, **kwargs)
    layer(torch.zeros(shape))
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in keras_layer.get_weights()]
    layer.set_weights(keras_layer.get_weights())
    x = np.random.default_rng(8).standard_normal(shape).astype("float32")
    mask = torch.tensor([[True, True, True, False], [False, True, False, True]])
    assert_all_close(layer(torch.from_numpy(x), mask=mask), keras_layer(x, mask=mask))
    got = layer.compute_output_shape((None,) + shape[1:])
    expected = keras_layer.compute_output_shape((None,) + shape[1:])
    if not kwargs.get("return_state"):
        got, expected = [got], [expected]
    assert [tuple(s) for s in got] == [tuple(s) for s in expected]
    assert ConvLSTM2D.from_config(layer.get_config()).get_config() == layer.get_config()


def test_conv_lstm1d_matches_keras_and_trains():
    keras_layer = keras.layers.ConvLSTM1D(3, 3, padding="same", return_sequences=True)
    keras_layer.build((2, 5, 8, 2))
    keras_layer.set_weights(perturbed(keras_layer.get_weights()))
    layer = ConvLSTM1D(3, 3, padding="same", return_sequences=True, dropout=0.2,
                       recurrent_dropout=0.2)
    layer(torch.zeros(2, 5, 8, 2))
    layer.set_weights(keras_layer.get_weights())
    x = np.random.default_rng(9).standard_normal((2, 5, 8, 2)).astype("float32")
    assert_all_close(layer(torch.from_numpy(x)), keras_layer(x))
    layer.train()
    layer(torch.from_numpy(x)).sum().backward()
    assert layer.recurrent_kernel.grad is not None


# ---------------------------------------------------------------------------------- pooling
def test_global_pooling_1d_with_mask_matches_keras():
    tokens = TOKENS[:4]  # Keras divides by zero (NaN) for an empty row too; leave it out
    for k_cls, cls in ((keras.layers.GlobalAveragePooling1D, GlobalAveragePooling1D),
                       (keras.layers.GlobalMaxPooling1D, GlobalMaxPooling1D)):
        k_model, t_model = twin_models(k_cls, cls)
        with torch.no_grad():
            assert_all_close(t_model(torch.from_numpy(tokens)), k_model(tokens))
    layer = GlobalAveragePooling1D(data_format="channels_first", keepdims=True)
    x = torch.randn(2, 3, 5)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = layer(x, mask=mask)
    torch.testing.assert_close(out[0, :, 0], x[0, :, :2].mean(-1))
    torch.testing.assert_close(out[1], x[1].mean(-1, keepdim=True))


# ---------------------------------------------------------------------------------- training
def test_fit_embedding_mask_bidirectional_lstm_loss_falls():
    rng = np.random.default_rng(10)
    lengths = rng.integers(2, 12, size=128)
    x = np.zeros((128, 12), dtype="int64")
    for row, n in enumerate(lengths):
        x[row, :n] = rng.integers(1, 20, size=n)
    y = (np.where(x > 0, x, 0).sum(1) / np.maximum(lengths, 1) > 10).astype("float32")
    inputs = Input((12,), dtype="int64")
    h = Bidirectional(LSTM(8))(Embedding(20, 8, mask_zero=True)(inputs))
    model = Functional(inputs, Dense(1, activation="sigmoid")(h))
    model.compile(optimizer=Adam(learning_rate=0.01), loss="binary_crossentropy")
    history = model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses


# ---------------------------------------------------------------------------------- saving
def test_keras_file_round_trip(tmp_path):
    import kaffe.layers
    import kaffe.models
    k_model = keras.Sequential([
        keras.Input((6, 4)), keras.layers.Masking(),
        keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True)),
        keras.layers.TimeDistributed(keras.layers.Dense(3)),
        keras.layers.GlobalAveragePooling1D()])
    k_model.save(tmp_path / "k.keras")
    model = kaffe.models.load_model(tmp_path / "k.keras")
    x = np.random.default_rng(11).standard_normal((2, 6, 4)).astype("float32")
    x[0, 3:] = 0.0
    np.testing.assert_allclose(model.predict(x, verbose=0), to_np(k_model(x)), **TOL)
    assert model.layers[1].forward_layer.name == k_model.layers[1].forward_layer.name
    model.save(tmp_path / "t.keras")
    np.testing.assert_allclose(to_np(keras.models.load_model(tmp_path / "t.keras")(x)),
                               to_np(k_model(x)), **TOL)
