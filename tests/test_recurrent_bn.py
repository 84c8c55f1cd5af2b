"""SimpleRNN / LSTM / GRU and BatchNormalization against Keras 3 (torch backend), same weights."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kaffe.engine.functional import Functional  # noqa: E402
from kaffe.engine.input_layer import Input  # noqa: E402
from kaffe.layers.normalization import BatchNormalization  # noqa: E402
from kaffe.layers.recurrent import GRU, LSTM, SimpleRNN  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
RNNS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}


def to_np(value):
    return keras.ops.convert_to_numpy(value)


def as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def twin_rnn(name, shape, **kwargs):
    """A Keras layer and a kaffe layer built on ``shape`` sharing (perturbed) Keras weights."""
    rng = np.random.default_rng(1)
    keras_layer = getattr(keras.layers, name)(5, **kwargs)
    keras_layer.build(shape)
    # Non-zero biases so bias handling (GRU's two biases, gate order) is exercised.
    keras_layer.set_weights([w + 0.2 * rng.standard_normal(w.shape).astype("float32")
                             for w in keras_layer.get_weights()])
    layer = RNNS[name](5, **kwargs)
    layer(torch.zeros([2 if d is None else d for d in shape]))
    layer.set_weights(keras_layer.get_weights())
    return keras_layer, layer


def data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


# ---------------------------------------------------------------------------------- recurrent
CASES = [("SimpleRNN", {}), ("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}),
         ("SimpleRNN", {"activation": "relu"}), ("LSTM", {"activation": "relu"}),
         ("GRU", {"recurrent_activation": "hard_sigmoid"})]


@pytest.mark.parametrize("name,extra", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_rnn_matches_keras(name, extra, return_sequences, return_state, go_backwards):
    kwargs = dict(extra, return_sequences=return_sequences, return_state=return_state,
                  go_backwards=go_backwards)
    keras_layer, layer = twin_rnn(name, (3, 7, 4), **kwargs)
    x = data(3, 7, 4)
    expected = as_list(keras_layer(x))
    got = as_list(layer(torch.from_numpy(x)))
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g.detach().numpy(), to_np(e), **TOL)


@pytest.mark.parametrize("name,extra", CASES[:4], ids=lambda v: str(v))
def test_rnn_shapes_params_and_weights_match_keras(name, extra):
    for return_state in (False, True):
        kwargs = dict(extra, return_sequences=True, return_state=return_state)
        keras_layer, layer = twin_rnn(name, (None, None, 4), **kwargs)
        assert layer.count_params() == keras_layer.count_params()
        shapes = [w.shape for w in keras_layer.get_weights()]
        assert [w.shape for w in layer.get_weights()] == shapes
        for shape in [(None, None, 4), (2, 6, 4)]:
            expected = keras_layer.compute_output_shape(shape)
            got = layer.compute_output_shape(shape)
            if return_state:
                assert [tuple(s) for s in got] == [tuple(s) for s in expected]
            else:
                assert tuple(got) == tuple(expected)


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_rnn_initial_state_and_gradients_match_keras(name):
    keras_layer, layer = twin_rnn(name, (3, 6, 4), return_sequences=True, return_state=True)
    x = data(3, 6, 4)
    states = [data(3, 5, seed=i + 1) for i in range(2 if name == "LSTM" else 1)]
    x_k = torch.from_numpy(x).requires_grad_()
    expected = keras_layer(x_k, initial_state=[torch.from_numpy(s) for s in states])
    x_t = torch.from_numpy(x).requires_grad_()
    layer.train()
    got = layer(x_t, initial_state=[torch.from_numpy(s) for s in states])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g.detach().numpy(), to_np(e.detach()), **TOL)
    weights = [torch.from_numpy(data(*t.shape, seed=9)) for t in got]
    sum((e * w).sum() for e, w in zip(expected, weights)).backward()
    sum((g * w).sum() for g, w in zip(got, weights)).backward()
    np.testing.assert_allclose(x_t.grad.numpy(), x_k.grad.numpy(), **TOL)
    assert all(p.grad is not None for p in layer.trainable_weights)


def test_rnn_fallback_gradients_match_keras():
    keras_layer, layer = twin_rnn("GRU", (2, 5, 4), reset_after=False)
    x = data(2, 5, 4)
    x_k, x_t = (torch.from_numpy(x).requires_grad_() for _ in range(2))
    keras_layer(x_k).pow(2).sum().backward()
    layer(x_t).pow(2).sum().backward()
    np.testing.assert_allclose(x_t.grad.numpy(), x_k.grad.numpy(), **TOL)


def test_rnn_symbolic_initial_state_and_states():
    seq, h0, c0 = Input((None, 4)), Input((5,)), Input((5,))
    layer = LSTM(5, return_sequences=True, return_state=True)
    outputs = layer(seq, initial_state=[h0, c0])
    assert [tuple(t.shape) for t in outputs] == [(None, None, 5), (None, 5), (None, 5)]
    model = Functional([seq, h0, c0], outputs)
    x, h, c = (torch.from_numpy(a) for a in (data(2, 3, 4), data(2, 5, seed=1), data(2, 5, seed=2)))
    for a, b in zip(model([x, h, c]), layer(x, initial_state=[h, c])):
        torch.testing.assert_close(a, b)


def test_rnn_dropout_uses_one_mask_per_sequence():
    # Identity kernel, no recurrence, linear: each step's output is the input dropout mask.
    layer = SimpleRNN(6, activation="linear", dropout=0.5, return_sequences=True, use_bias=False)
    layer(torch.zeros(1, 1, 6))
    layer.set_weights([np.eye(6, dtype="float32"), np.zeros((6, 6), "float32")])
    layer.train()
    out = layer(torch.ones(64, 9, 6)).detach()
    assert torch.equal(out, out[:, :1].expand_as(out))  # the same mask at every step
    assert set(out.unique().tolist()) <= {0.0, 2.0} and 0 < (out == 0).float().mean() < 1
    layer.eval()
    assert torch.equal(layer(torch.ones(2, 9, 6)), torch.ones(2, 9, 6))


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_rnn_dropout_trains_and_eval_is_deterministic(cls):
    layer = cls(5, dropout=0.3, recurrent_dropout=0.3, seed=3)
    x = torch.from_numpy(data(4, 6, 3))
    layer.train()
    layer(x).sum().backward()
    assert layer.kernel.grad is not None and layer.recurrent_kernel.grad.abs().sum() > 0
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


def test_rnn_config_round_trip_and_errors():
    for layer in (SimpleRNN(3, go_backwards=True), LSTM(4, unit_forget_bias=False, dropout=0.1),
                  GRU(2, reset_after=False, return_state=True)):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="units"):
        GRU(0)
    with pytest.raises(ValueError, match="timesteps"):
        LSTM(3)(torch.zeros(2, 4))


def test_lstm_unit_forget_bias_init():
    layer = LSTM(3)
    layer(torch.zeros(1, 1, 2))
    bias = layer.get_weights()[2]
    np.testing.assert_array_equal(bias, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    layer.reset_parameters()
    np.testing.assert_array_equal(layer.get_weights()[2], bias)


# ---------------------------------------------------------------------------------- batch norm
def twin_bn(shape, **kwargs):
    rng = np.random.default_rng(2)
    keras_layer = keras.layers.BatchNormalization(**kwargs)
    keras_layer.build(shape)
    weights = [w + 0.3 * rng.standard_normal(w.shape).astype("float32")
               for w in keras_layer.get_weights()]
    weights[-1] = np.abs(weights[-1]) + 0.1  # a valid moving variance
    keras_layer.set_weights(weights)
    layer = BatchNormalization(**kwargs)
    layer(torch.zeros(shape))
    layer.set_weights(keras_layer.get_weights())
    return keras_layer, layer


BN_CASES = [((16, 5), {}), ((4, 6, 5, 3), {}), ((4, 3, 6, 5), {"axis": 1}),
            ((4, 6, 5, 3), {"axis": 2, "center": False}),
            ((8, 7, 3), {"scale": False, "momentum": 0.9, "epsilon": 1e-5})]


@pytest.mark.parametrize("shape,kwargs", BN_CASES, ids=str)
def test_batchnorm_inference_matches_keras(shape, kwargs):
    keras_layer, layer = twin_bn(shape, **kwargs)
    x = 2 * data(*shape) + 1
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(), to_np(keras_layer(x)),
                               **TOL)
    assert layer.count_params() == keras_layer.count_params()
    assert tuple(layer.compute_output_shape((None,) + shape[1:])) == tuple(
        keras_layer.compute_output_shape((None,) + shape[1:]))


@pytest.mark.parametrize("shape,kwargs", BN_CASES, ids=str)
def test_batchnorm_training_step_matches_keras(shape, kwargs):
    keras_layer, layer = twin_bn(shape, **kwargs)
    layer.train()
    for step in range(2):
        x = 3 * data(*shape, seed=step) - 1
        x_k, x_t = (torch.from_numpy(x).requires_grad_() for _ in range(2))
        expected = keras_layer(x_k, training=True)
        got = layer(x_t)
        np.testing.assert_allclose(got.detach().numpy(), to_np(expected.detach()), **TOL)
        for k_w, w in zip(keras_layer.get_weights(), layer.get_weights()):  # moving stats moved
            np.testing.assert_allclose(w, k_w, **TOL)
        g = torch.from_numpy(data(*shape, seed=7))
        (expected * g).sum().backward()
        (got * g).sum().backward()
        np.testing.assert_allclose(x_t.grad.numpy(), x_k.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_batchnorm_frozen_runs_in_inference_mode():
    shape = (8, 4)
    keras_layer, layer = twin_bn(shape)
    keras_layer.trainable = False
    layer.trainable = False
    before = layer.get_weights()
    x = data(*shape)
    layer.train()
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(),
                               to_np(keras_layer(x, training=True)), **TOL)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_batchnorm_weights_config_and_single_sample():
    layer = BatchNormalization(axis=1, momentum=0.9)
    layer(torch.zeros(2, 3, 4, 4))
    assert [w.shape for w in layer.get_weights()] == [(3,)] * 4
    assert len(layer.trainable_weights) == 2 and len(layer.non_trainable_weights) == 2
    clone = BatchNormalization.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    keras_layer, layer = twin_bn((1, 4))  # one value per channel: variance 0, like Keras
    x = data(1, 4)
    layer.train()
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(),
                               to_np(keras_layer(x, training=True)), rtol=1e-5, atol=2e-5)
    for k_w, w in zip(keras_layer.get_weights(), layer.get_weights()):
        np.testing.assert_allclose(w, k_w, **TOL)
    with pytest.raises(NotImplementedError, match="renorm"):
        BatchNormalization(renorm=True)
