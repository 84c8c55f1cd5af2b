"""kaffe.pretraining.layerwise_pretrain: Keras 3 as the oracle for the layer-wise steps, plus
reconstruction quality, tied weights, noise, conv stacks and the errors raised before training."""
import numpy as np
import pytest
import torch

import kaffe
from kaffe import regularizers
from kaffe.callbacks import Callback
from kaffe.datasets import mnist
from kaffe.layers import (LSTM, BatchNormalization, Conv2D, Dense, Dropout, Flatten, Input,
                          MaxPooling2D)
from kaffe.optimizers import SGD
from kaffe.pretraining import (MaskingNoise, PretrainingError, TiedDense, layerwise_pretrain)


@pytest.fixture(scope="module")
def digits():
    """1,024 MNIST digits, flat, in [0, 1] (real MNIST when present, else the bundled sample)."""
    (x, _), _ = mnist.load_data()
    return (x[:1024].reshape(-1, 784) / 255.0).astype("float32")


class RecordStart(Callback):
    """Keeps each autoencoder's weights as training starts (one entry per pretrained layer)."""

    def __init__(self):
        super().__init__()
        self.initial = []

    def on_train_begin(self, logs=None):
        self.initial.append(self.model.get_weights())


def test_layers_equal_a_hand_written_keras3_loop(digits):
    """Two layers, plain SGD, no shuffling: kaffe's layer-wise result equals the same steps
    written by hand with Keras 3 (train AE 1 on x, encode x, train AE 2 on the codes) from the
    same initial weights. The second layer is sparse (L1 activity regularizer on its code)."""
    keras = pytest.importorskip("keras")
    x = digits[:256]
    first = Dense(32, activation="relu")
    second = Dense(16, activation="relu", activity_regularizer=regularizers.l1(1e-3))
    record = RecordStart()
    histories = layerwise_pretrain([first, second], x, epochs=2, batch_size=32, shuffle=False,
                                   optimizer=SGD(learning_rate=0.5), callbacks=[record],
                                   decoder_activation=["sigmoid", "linear"],
                                   loss=["binary_crossentropy", "mse"], verbose=0)
    assert len(histories) == 2 and len(record.initial) == 2

    data = x
    steps = [(32, "sigmoid", "binary_crossentropy", None),
             (16, "linear", "mse", keras.regularizers.L1(1e-3))]
    for k, (units, act, loss, reg) in enumerate(steps):
        inp = keras.Input(shape=(data.shape[1],))
        code = keras.layers.Dense(units, activation="relu", activity_regularizer=reg)(inp)
        out = keras.layers.Dense(data.shape[1], activation=act)(code)
        ae = keras.Model(inp, out)
        ae.set_weights(record.initial[k])
        ae.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss=loss)
        keras_history = ae.fit(data, data, epochs=2, batch_size=32, shuffle=False, verbose=0)
        got = (first if k == 0 else second).get_weights()
        for a, b in zip(got, ae.layers[1].get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
        np.testing.assert_allclose(histories[k].history["loss"], keras_history.history["loss"],
                                   rtol=1e-4)
        data = keras.Model(inp, code).predict(data, verbose=0)


def test_pretrained_layers_changed_and_reconstruct_much_better_than_untrained(digits):
    model = kaffe.Sequential([Dense(64, activation="relu", input_shape=(784,)), Dropout(0.2),
                              Dense(32, activation="relu"), Dense(10, activation="softmax")])
    before = [layer.get_weights() for layer in model.layers]
    record = RecordStart()
    x = digits[:512]
    histories = layerwise_pretrain(model.layers[:-1], x, epochs=3, batch_size=32,
                                   noise=0.2, callbacks=[record], verbose=0)
    assert len(histories) == 2  # Dropout passed through, the softmax layer left alone
    for i in (0, 2):
        assert not np.allclose(model.layers[i].get_weights()[0], before[i][0])
    np.testing.assert_array_equal(model.layers[3].get_weights()[0], before[3][0])

    codes = model.layers[0](torch.from_numpy(x)).detach().numpy()
    for history, initial, data in zip(histories, record.initial, [x, codes]):
        autoencoder = history.model
        trained_loss = autoencoder.evaluate(data, data, batch_size=256, verbose=0)
        trained = autoencoder.get_weights()
        autoencoder.set_weights(initial)
        untrained_loss = autoencoder.evaluate(data, data, batch_size=256, verbose=0)
        autoencoder.set_weights(trained)
        assert trained_loss < 0.6 * untrained_loss, (trained_loss, untrained_loss)
    # The stack still fine-tunes as an ordinary model.
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:64], np.arange(64) % 10, epochs=1, verbose=0)


def test_decoder_and_loss_follow_the_values_to_reconstruct(digits):
    histories = layerwise_pretrain([Dense(16, activation="relu"), Dense(8, activation="tanh")],
                                   digits[:128], epochs=1, verbose=0)
    first, second = (h.model for h in histories)
    assert first.layers[-1].activation.__name__ == "sigmoid"  # pixels in [0, 1]
    assert first.layers[-1].get_config()["units"] == 784
    assert second.layers[-1].activation.__name__ == "linear"  # ReLU codes exceed 1
    assert first._compile_args["loss"] == "binary_crossentropy"
    assert second._compile_args["loss"] == "mse"


def test_tied_weights_share_the_encoder_kernel(digits):
    encoder = Dense(24, activation="sigmoid")
    histories = layerwise_pretrain([encoder], digits[:256], epochs=3, tied_weights=True,
                                   batch_size=32, verbose=0)
    autoencoder = histories[0].model
    decoder = autoencoder.layers[-1]
    assert isinstance(decoder, TiedDense)
    assert autoencoder.count_params() == 784 * 24 + 24 + 784  # one kernel, two biases
    assert histories[0].history["loss"][-1] < histories[0].history["loss"][0]
    kernel, bias = encoder.get_weights()
    (decoder_bias,) = decoder.get_weights()
    x = digits[:5]
    code = 1 / (1 + np.exp(-(x @ kernel + bias)))
    expected = 1 / (1 + np.exp(-(code @ kernel.T + decoder_bias)))
    np.testing.assert_allclose(autoencoder.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)


def test_masking_noise_zeroes_a_fraction_without_rescaling():
    layer = MaskingNoise(0.25)
    x = torch.full((200, 100), 3.0)
    torch.testing.assert_close(layer(x), x)  # inference: unchanged
    noisy = layer(x, training=True)
    assert set(torch.unique(noisy).tolist()) == {0.0, 3.0}
    assert abs(float((noisy == 0).float().mean()) - 0.25) < 0.02


def test_denoising_autoencoders_hold_their_noise_layer(digits):
    for noise_type, cls in (("gaussian", "GaussianNoise"), ("masking", "MaskingNoise")):
        (history,) = layerwise_pretrain([Dense(8)], digits[:64], epochs=1, noise=0.3,
                                        noise_type=noise_type, verbose=0)
        names = [type(l).__name__ for l in history.model.layers]
        assert names == ["InputLayer", cls, "Dense", "Dense"], names


def test_conv2d_stack_with_pooling_and_strides(digits):
    x = digits[:64].reshape(-1, 28, 28, 1)
    conv1 = Conv2D(4, 3, activation="relu", padding="same")
    conv2 = Conv2D(4, 3, strides=2, activation="relu")  # 14 -> 6, mirrored back to 14
    conv1(torch.zeros(1, 28, 28, 1))
    before = conv1.get_weights()
    histories = layerwise_pretrain([conv1, MaxPooling2D(2), conv2, Flatten()], x, epochs=1,
                                   batch_size=32, verbose=0)
    assert [h.model.output_shape for h in histories] == [(None, 28, 28, 1), (None, 14, 14, 4)]
    assert [type(h.model.layers[-1]).__name__ for h in histories] == ["Conv2DTranspose"] * 2
    assert not np.allclose(conv1.get_weights()[0], before[0])


def test_sparse_activity_regularizer_makes_codes_sparser(digits):
    torch.manual_seed(1)
    plain = Dense(64, activation="relu")
    sparse = Dense(64, activation="relu", activity_regularizer=regularizers.l1(1e-2))
    plain(torch.zeros(1, 784))
    sparse(torch.zeros(1, 784))
    sparse.set_weights(plain.get_weights())
    for layer in (plain, sparse):
        torch.manual_seed(2)
        layerwise_pretrain([layer], digits[:512], epochs=3, batch_size=64, verbose=0)
    x = torch.from_numpy(digits[:512])
    assert float(sparse(x).mean()) < 0.5 * float(plain(x).mean())


def test_frozen_layers_are_passed_through_and_optimizer_instances_copied(digits):
    frozen = Dense(16, activation="relu", trainable=False)
    top = Dense(8, activation="relu")
    frozen(torch.zeros(1, 784))
    kept = frozen.get_weights()
    optimizer = SGD(learning_rate=0.1)
    histories = layerwise_pretrain([frozen, top], digits[:64], epochs=1, optimizer=optimizer,
                                   verbose=0)
    assert len(histories) == 1 and histories[0].model.input_shape == (None, 16)
    np.testing.assert_array_equal(frozen.get_weights()[0], kept[0])
    assert not optimizer.built and histories[0].model.optimizer is not optimizer


class Never(Callback):
    def on_train_begin(self, logs=None):
        raise AssertionError("training started")


@pytest.mark.parametrize("bad", [
    lambda: BatchNormalization(), lambda: LSTM(4),
])
def test_layer_that_cannot_be_mirrored_is_named_with_the_supported_types(bad, digits):
    layer = bad()
    x = digits[:8].reshape(8, 28, 28) if isinstance(layer, LSTM) else digits[:8]
    with pytest.raises(PretrainingError) as info:
        layerwise_pretrain([Dense(784), layer], x, callbacks=[Never()], verbose=0)
    message = str(info.value)
    assert f"'{layer.name}' ({type(layer).__name__})" in message
    assert "Dense, Conv2D" in message and "trainable=False" in message


def test_data_that_does_not_fit_the_first_layer_names_both_shapes(digits):
    model = kaffe.Sequential([Dense(32, input_shape=(784,)), Dense(10)])
    before = model.get_weights()
    with pytest.raises(PretrainingError) as info:
        layerwise_pretrain(model, digits[:50, :100], callbacks=[Never()], verbose=0)
    message = str(info.value)
    assert "(50, 100)" in message and "(None, 784)" in message and "'dense'" in message
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(PretrainingError, match=r"layer 1 'conv2d' \(Conv2D\).*'dense_2', of "
                                               r"shape \(None, 8\)"):
        layerwise_pretrain([Dense(8), Conv2D(4, 3)], digits[:8], callbacks=[Never()], verbose=0)


def test_bad_options_fail_before_training(digits):
    x = digits[:16]
    cases = [
        (dict(layers=[Conv2D(2, 3)], x=x.reshape(16, 28, 28, 1), tied_weights=True),
         "tied_weights"),
        (dict(layers=[Dense(4)], x=x, noise_type="salt"), "noise_type"),
        (dict(layers=[Dense(4)], x=x, noise=2.0), "noise=2.0"),
        (dict(layers=[Dense(4), Dense(2)], x=x, epochs=[1]), "epochs"),
        (dict(layers=[Dense(4)], x=x, loss="binary_crossentropyy"), "binary_crossentropyy"),
        (dict(layers=[Dense(4)], x=x,
              optimizer=torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)),
         "optimizer"),
        (dict(layers=[Dropout(0.1)], x=x), "no layer to train"),
    ]
    for kwargs, words in cases:
        with pytest.raises((PretrainingError, ValueError), match=words):
            layerwise_pretrain(callbacks=[Never()], verbose=0, **kwargs)
    inp = Input(shape=(784,))
    functional = kaffe.Model(inp, Dense(4)(inp))
    with pytest.raises(PretrainingError, match="model.layers"):
        layerwise_pretrain(functional, x, verbose=0)
