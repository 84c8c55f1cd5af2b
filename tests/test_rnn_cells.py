"""``RNN(cell)``, the built-in cells, StackedRNNCells and user-written cells against Keras 3
(torch backend) with the same weights: outputs and states, masks, initial states, symbolic
graphs, fit, and .keras files both ways."""
import copy
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import kaffe  # noqa: E402
from kaffe import layers as kl  # noqa: E402
from kaffe import ops as kops  # noqa: E402
from kaffe.engine.functional import Functional  # noqa: E402
from kaffe.engine.input_layer import Input  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
CELLS = [("SimpleRNNCell", {}), ("LSTMCell", {}), ("GRUCell", {}),
         ("GRUCell", {"reset_after": False})]


def to_np(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(value)


def data(shape=(3, 5, 4), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def pair(cell_name, cell_kwargs, units=6, **rnn_kwargs):
    """A Keras RNN and a kaffe RNN with the same cell and weights (both built on (.., 4))."""
    k = keras.layers.RNN(getattr(keras.layers, cell_name)(units, **cell_kwargs), **rnn_kwargs)
    k(data())
    f = kl.RNN(getattr(kl, cell_name)(units, **cell_kwargs), **rnn_kwargs)
    f(torch.as_tensor(data()))
    f.set_weights(k.get_weights())
    return k, f


def assert_outputs(kaffe_out, keras_out):
    kaffe_out = kaffe_out if isinstance(kaffe_out, (list, tuple)) else [kaffe_out]
    keras_out = keras_out if isinstance(keras_out, (list, tuple)) else [keras_out]
    keras_flat = []
    for item in keras_out:  # Keras nests a stacked cell's states per cell
        keras_flat.extend(item if isinstance(item, (list, tuple)) else [item])
    assert len(kaffe_out) == len(keras_flat)
    for a, b in zip(kaffe_out, keras_flat):
        np.testing.assert_allclose(to_np(a), to_np(b), **TOL)


@pytest.mark.parametrize("cell_name,cell_kwargs", CELLS)
@pytest.mark.parametrize("flags", [dict(), dict(return_sequences=True, return_state=True),
                                   dict(return_state=True, go_backwards=True),
                                   dict(return_sequences=True, go_backwards=True)])
def test_cells_match_keras(cell_name, cell_kwargs, flags):
    k, f = pair(cell_name, cell_kwargs, **flags)
    assert [w.shape for w in f.get_weights()] == [w.shape for w in k.get_weights()]
    x = data(seed=1)
    assert_outputs(f(torch.as_tensor(x)), k(x))


@pytest.mark.parametrize("cell_name,cell_kwargs", CELLS)
@pytest.mark.parametrize("zero_output", [False, True])
def test_mask_keeps_states_as_keras(cell_name, cell_kwargs, zero_output):
    k, f = pair(cell_name, cell_kwargs, return_sequences=True, return_state=True,
                zero_output_for_mask=zero_output)
    x = data((4, 6, 4), seed=2)
    mask = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1], [1, 0, 1, 0, 1, 0],
                     [1, 1, 1, 1, 1, 1]], dtype=bool)
    assert_outputs(f(torch.as_tensor(x), mask=torch.as_tensor(mask)),
                   k(x, mask=keras.ops.convert_to_tensor(mask)))


@pytest.mark.parametrize("cell_name,cell_kwargs", CELLS)
def test_initial_state_as_keras(cell_name, cell_kwargs):
    k, f = pair(cell_name, cell_kwargs, return_sequences=True, return_state=True)
    n_states = 2 if cell_name == "LSTMCell" else 1
    states = [data((3, 6), seed=10 + i) for i in range(n_states)]
    x = data(seed=3)
    assert_outputs(f(torch.as_tensor(x), initial_state=[torch.as_tensor(s) for s in states]),
                   k(x, initial_state=[keras.ops.convert_to_tensor(s) for s in states]))


@pytest.mark.parametrize("rnn,cell", [("LSTM", "LSTMCell"), ("GRU", "GRUCell"),
                                      ("SimpleRNN", "SimpleRNNCell")])
def test_rnn_of_cell_equals_kaffe_layer(rnn, cell):
    """kaffe's fused LSTM/GRU/SimpleRNN and RNN(cell) agree given the same weights (masked)."""
    whole = getattr(kl, rnn)(5, return_sequences=True, return_state=True)
    x = torch.as_tensor(data((3, 6, 4), seed=4))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]]).bool()
    whole(x)
    generic = kl.RNN(getattr(kl, cell)(5), return_sequences=True, return_state=True)
    generic(x)
    generic.set_weights(whole.get_weights())
    assert_outputs(generic(x, mask=mask), whole(x, mask=mask))


def _minimal_cell(layer_base, ops):
    """keras.io's MinimalRNNCell (from Keras's RNN docstring), on ``layer_base`` (Keras's or
    kaffe's ``Layer``) with that framework's ``ops``."""
    class MinimalRNNCell(layer_base):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                          initializer="uniform", name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                    initializer="uniform",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            prev_output = states[0]
            h = ops.matmul(inputs, self.kernel)
            output = h + ops.matmul(prev_output, self.recurrent_kernel)
            return output, [output]

        def get_config(self):
            return {**super().get_config(), "units": self.units}
    return MinimalRNNCell


def _keras_minimal_cell():
    return _minimal_cell(keras.layers.Layer, keras.ops)


def _kaffe_minimal_cell():
    return _minimal_cell(kaffe.layers.Layer, kops)


def test_minimal_custom_cell_and_stack_of_them():
    KCell, FCell = _keras_minimal_cell(), _kaffe_minimal_cell()
    x = data(seed=5)
    k = keras.layers.RNN(KCell(7), return_sequences=True)
    f = kl.RNN(FCell(7), return_sequences=True)
    k(x), f(torch.as_tensor(x))
    f.set_weights(k.get_weights())
    assert_outputs(f(torch.as_tensor(x)), k(x))
    # the docstring's stacked form: RNN([cell, cell]), symbolically then on data
    k2 = keras.layers.RNN([KCell(3), KCell(5)], return_state=True)
    f2 = kl.RNN([FCell(3), FCell(5)], return_state=True)
    kin, fin = keras.Input((None, 4)), Input((None, 4))
    k_model = keras.Model(kin, k2(kin))
    f_outs = f2(fin)
    assert [tuple(t.shape) for t in f_outs] == [(None, 5), (None, 3), (None, 5)]
    f_model = Functional(fin, f_outs)
    f2.set_weights(k2.get_weights())
    assert_outputs(f_model.predict(x, verbose=0), k_model.predict(x, verbose=0))


def test_custom_cell_training_arg_and_initial_state():
    """A cell whose call takes ``training`` gets it; ``get_initial_state`` gives the start."""
    seen = []

    class Cell(kaffe.layers.Layer):
        state_size = [2, 3]
        output_size = 2

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 2), name="w")

        def get_initial_state(self, batch_size=None):
            return [torch.ones(batch_size, 2), torch.full((batch_size, 3), 2.0)]

        def call(self, inputs, states, training=False):
            seen.append(training)
            h, c = states
            return inputs @ self.w + h, [inputs @ self.w + h, c + 1]

    layer = kl.RNN(Cell(), return_state=True)
    x = torch.as_tensor(data(seed=6))
    out, h, c = layer(x, training=True)
    assert seen == [True] * 5
    w = layer.cell.w.detach()
    np.testing.assert_allclose(to_np(h), to_np(1 + x.sum(1) @ w), **TOL)
    np.testing.assert_allclose(to_np(c), np.full((3, 3), 7.0))


def test_stacked_cells_match_keras():
    def cells(lib):
        return lib.StackedRNNCells([lib.LSTMCell(4), lib.GRUCell(3), lib.SimpleRNNCell(5)])
    x = data(seed=7)
    k = keras.layers.RNN(cells(keras.layers), return_sequences=True, return_state=True)
    f = kl.RNN(cells(kl), return_sequences=True, return_state=True)
    k(x), f(torch.as_tensor(x))
    assert [w.shape for w in f.get_weights()] == [w.shape for w in k.get_weights()]
    f.set_weights(k.get_weights())
    assert_outputs(f(torch.as_tensor(x)), k(x))
    mask = np.array([[1, 1, 0, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]], dtype=bool)
    assert_outputs(f(torch.as_tensor(x), mask=torch.as_tensor(mask)),
                   k(x, mask=keras.ops.convert_to_tensor(mask)))


def _models(return_state=False):
    """The same small functional model in Keras and kaffe: Masking -> RNN(LSTMCell) -> Dense."""
    def build(lib, inp):
        h = lib.layers.Masking()(inp)
        rnn = lib.layers.RNN(lib.layers.LSTMCell(6), return_state=return_state)(h)
        last = rnn[0] if return_state else rnn
        return lib.layers.Dense(1)(last)
    kin = keras.Input((5, 4))
    k = keras.Model(kin, build(keras, kin))
    fin = Input((5, 4))
    f = Functional(fin, build(kaffe, fin))
    f.set_weights(k.get_weights())
    return k, f


def test_functional_model_and_fit_match_keras():
    k, f = _models(return_state=True)
    x, y = data((16, 5, 4), seed=8), data((16, 1), seed=9)
    x[:4, 3:] = 0.0  # padded rows for Masking
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), **TOL)
    k.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    f.compile(optimizer=kaffe.optimizers.SGD(0.1), loss="mse")
    kh = k.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"]
    fh = f.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(fh, kh, rtol=1e-4)
    assert fh[-1] < fh[0]
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), atol=1e-4)


def test_keras_file_round_trip_both_ways(tmp_path):
    k, f = _models()
    x = data((4, 5, 4), seed=11)
    expected = k.predict(x, verbose=0)
    f.save(tmp_path / "kaffe.keras")
    from_kaffe = keras.models.load_model(tmp_path / "kaffe.keras")
    np.testing.assert_allclose(from_kaffe.predict(x, verbose=0), expected, **TOL)
    k.save(tmp_path / "keras.keras")
    from_keras = kaffe.models.load_model(tmp_path / "keras.keras")
    rnn = [l for l in from_keras.layers if isinstance(l, kl.RNN)][0]
    assert isinstance(rnn.cell, kl.LSTMCell) and rnn.cell.units == 6
    np.testing.assert_allclose(from_keras.predict(x, verbose=0), expected, **TOL)


def test_stacked_config_round_trip_and_symbolic_shapes():
    layer = kl.RNN([kl.LSTMCell(4), kl.GRUCell(3, reset_after=False)], return_sequences=True,
                   go_backwards=True)
    config = layer.get_config()
    assert config["cell"]["class_name"] == "StackedRNNCells"
    assert [c["class_name"] for c in config["cell"]["config"]["cells"]] == ["LSTMCell",
                                                                             "GRUCell"]
    # Keras 3 reads the same config into the same structure
    keras_layer = keras.layers.RNN.from_config(copy.deepcopy(config))  # Keras pops keys
    assert keras_layer.go_backwards and keras_layer.cell.cells[1].reset_after is False
    again = kl.RNN.from_config(config)
    out = again(Input((7, 2)))
    assert tuple(out.shape) == (None, 7, 3)
    x = torch.as_tensor(data((2, 7, 2)))
    layer(x)
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_np(again(x)), to_np(layer(x)), **TOL)


def test_stateful_carries_states_and_bad_cell_errors():
    layer = kl.RNN(kl.GRUCell(3), stateful=True, return_state=True)
    x = torch.as_tensor(data((2, 4, 4), seed=12))
    layer.build((2, 4, 4))
    _, h1 = layer(x[:, :2])
    _, h2 = layer(x[:, 2:])
    fresh = kl.RNN(kl.GRUCell(3), return_state=True)
    fresh(x)
    fresh.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_np(h2), to_np(fresh(x)[1]), **TOL)
    layer.reset_states()
    np.testing.assert_allclose(to_np(layer(x[:, :2])[1]), to_np(h1), **TOL)
    with pytest.raises(ValueError, match="state_size"):
        kl.RNN(kl.Dense(3))


def test_custom_cell_keras_file_both_ways(tmp_path):
    """A model with a user-written cell saved by kaffe loads in Keras 3 (and back in kaffe)."""
    KCell, FCell = _keras_minimal_cell(), _kaffe_minimal_cell()
    fin = Input((5, 4))
    f = Functional(fin, kl.Dense(2)(kl.RNN([FCell(3), FCell(4)])(fin)))
    x = data((3, 5, 4), seed=13)
    expected = f.predict(x, verbose=0)
    f.save(tmp_path / "cell.keras")
    k = keras.models.load_model(tmp_path / "cell.keras", custom_objects={"MinimalRNNCell": KCell})
    np.testing.assert_allclose(k.predict(x, verbose=0), expected, **TOL)
    again = kaffe.models.load_model(tmp_path / "cell.keras",
                                    custom_objects={"MinimalRNNCell": FCell})
    np.testing.assert_allclose(again.predict(x, verbose=0), expected, **TOL)


def test_bidirectional_rnn_of_cell_matches_keras():
    x = data(seed=14)
    k = keras.layers.Bidirectional(keras.layers.RNN(keras.layers.GRUCell(3),
                                                    return_sequences=True))
    f = kl.Bidirectional(kl.RNN(kl.GRUCell(3), return_sequences=True))
    k(x), f(torch.as_tensor(x))
    f.set_weights(k.get_weights())
    assert_outputs(f(torch.as_tensor(x)), k(x))


def test_cell_dropout_only_in_training_and_symbolic_initial_state():
    layer = kl.RNN(kl.LSTMCell(4, dropout=0.5, recurrent_dropout=0.5, seed=1))
    plain = kl.RNN(kl.LSTMCell(4))
    x = torch.as_tensor(data(seed=15))
    layer(x), plain(x)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_np(layer(x)), to_np(plain(x)), **TOL)
    assert not np.allclose(to_np(layer(x, training=True)), to_np(plain(x)))
    assert layer.cell._dropout_mask is None  # drawn per sequence, dropped after it
    # initial states as graph inputs (the seq2seq encoder-decoder pattern), vs Keras
    def build(lib, inputs):
        seq, h0, c0 = inputs
        _, h, c = lib.layers.RNN(lib.layers.LSTMCell(4), return_state=True)(seq)
        out = lib.layers.RNN(lib.layers.LSTMCell(4), return_sequences=True)(
            seq, initial_state=[h0 + h, c0 + c] if lib is keras else [h, c])
        return out
    k_in = [keras.Input((5, 4)), keras.Input((4,)), keras.Input((4,))]
    k = keras.Model(k_in, build(keras, k_in))
    f_in = [Input((5, 4)), Input((4,)), Input((4,))]
    f = Functional(f_in[:1], build(kaffe, f_in))
    f.set_weights(k.get_weights())
    zeros = np.zeros((3, 4), "float32")
    xs = data(seed=16)
    np.testing.assert_allclose(f.predict(xs, verbose=0),
                               k.predict([xs, zeros, zeros], verbose=0), **TOL)
