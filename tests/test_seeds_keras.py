"""Every Keras code block of the seeds (../shared/seeds 000 ch.2, 001, 002, 003, 004) with
``keras`` replaced by ``kaffe``: blog typos fixed (``LR=`` -> ``lr=``, ``imput_dim``,
``ouput_dim``), sizes shrunk, and random labels replaced by learnable ones so that "it learns"
can be checked (loss falls, accuracy beats chance)."""
import numpy as np
import pytest

import kaffe
from kaffe import backend as K
from kaffe.config import image_data_format, set_image_data_format
from kaffe.layers import (LSTM, Activation, Conv2D, Dense, Dropout, Embedding, Flatten, Input,
                          Lambda, MaxPool2D, MaxPooling2D, SimpleRNN, UpSampling2D)
from kaffe.models import Model, Sequential
from kaffe.optimizers import SGD
from kaffe.utils import to_categorical


@pytest.fixture
def channels_first():
    """The seeds' (3, 256, 256) blocks come from Keras set to channels_first in keras.json."""
    before = image_data_format()
    set_image_data_format("channels_first")
    yield
    set_image_data_format(before)


def learnable(n, dim, classes):
    x = np.random.random((n, dim)).astype("float32")
    labels = (x[:, :classes] * np.arange(1, classes + 1)).argmax(axis=1)
    return x, labels


def assert_learns(history, key="loss", acc_key=None, chance=None):
    losses = history.history[key]
    assert losses[-1] < losses[0], losses
    if acc_key:
        assert history.history[acc_key][-1] > chance, history.history[acc_key]


def test_000_sequential_add_compile_fit_train_on_batch_evaluate_predict():
    x, labels = learnable(512, 100, 10)
    y = to_categorical(labels, num_classes=10)
    model = Sequential()
    model.add(Dense(units=64, input_dim=100))
    model.add(Activation("relu"))
    model.add(Dense(units=10))
    model.add(Activation("softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    model.compile(loss="categorical_crossentropy", optimizer=SGD(lr=0.01, momentum=0.9, nesterov=True))
    model.compile(loss="categorical_crossentropy", optimizer=SGD(lr=0.05, momentum=0.9, nesterov=True),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert_learns(history, acc_key="accuracy", chance=0.15)
    model.train_on_batch(x[:32], y[:32])
    loss_and_metrics = model.evaluate(x, y, batch_size=128, verbose=0)
    classes = model.predict(x, batch_size=128)
    assert len(loss_and_metrics) == 2 and classes.shape == (512, 10)


def test_000_sequential_from_list_and_input_shape():
    model = Sequential([Dense(32, input_dim=784), Activation("relu"), Dense(10), Activation("softmax")])
    assert model.output_shape == (None, 10) and model.count_params() == 784 * 32 + 32 + 330
    model = Sequential()
    model.add(Dense(32, input_shape=(784,)))
    model.add(Activation("relu"))
    assert model.output_shape == (None, 32)


def test_000_compile_variants_and_custom_metric():
    model = Sequential([Dense(32, activation="relu", input_dim=100), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    model.compile(optimizer="adagrad", loss="mse")

    def mean_pred(y_true, y_pred):
        return K.mean(y_pred)
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy", mean_pred])
    data, bits = learnable(600, 100, 2)
    labels = bits.reshape(-1, 1)
    history = model.fit(data, labels, epochs=6, batch_size=32, verbose=0)
    assert_learns(history, acc_key="accuracy", chance=0.6)
    assert "mean_pred" in history.history


def test_000_fit_generator_reading_a_file(tmp_path):
    x, labels = learnable(200, 20, 2)
    path = tmp_path / "my_file.txt"
    path.write_text("".join(",".join(f"{v:.5f}" for v in row) + f",{lab}\n" for row, lab in zip(x, labels)))

    def process_line(line):
        values = [float(v) for v in line.split(",")]
        return np.array([values[:-1]], dtype="float32"), np.array([[values[-1]]], dtype="float32")

    def generate_arrays_from_file(path):
        while 1:
            f = open(path)
            for line in f:
                x, y = process_line(line)
                yield (x, y)
            f.close()
    model = Sequential([Dense(16, activation="relu", input_dim=20), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit_generator(generate_arrays_from_file(path), samples_per_epoch=200, nb_epoch=4)
    assert_learns(history)


def test_000_mlp_with_dropout_and_sgd_decay():
    x_train, l_train = learnable(1000, 20, 10)
    y_train = to_categorical(l_train.reshape(-1, 1), num_classes=10)
    x_test, l_test = learnable(100, 20, 10)
    y_test = to_categorical(l_test.reshape(-1, 1), num_classes=10)
    model = Sequential()
    model.add(Dense(64, activation="relu", input_dim=20))
    model.add(Dropout(0.5))
    model.add(Dense(64, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(10, activation="softmax"))
    sgd = SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)
    model.compile(loss="categorical_crossentropy", optimizer=sgd, metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=20, batch_size=128, verbose=0)
    score = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
    assert_learns(history)
    assert score[1] > 0.15


def test_000_vgg_like_convnet():
    n = 160
    x_train = np.random.random((n, 16, 16, 3)).astype("float32")
    labels = (x_train[:, :8].mean(axis=(1, 2, 3)) > x_train[:, 8:].mean(axis=(1, 2, 3))).astype(int)
    y_train = to_categorical(labels, num_classes=10)
    model = Sequential()
    model.add(Conv2D(32, (3, 3), activation="relu", input_shape=(16, 16, 3)))
    model.add(Conv2D(32, (3, 3), activation="relu"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Dropout(0.25))
    model.add(Conv2D(64, (3, 3), activation="relu"))
    model.add(Conv2D(64, (3, 3), activation="relu"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Dropout(0.25))
    model.add(Flatten())
    model.add(Dense(256, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(10, activation="softmax"))
    sgd = SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)
    model.compile(loss="categorical_crossentropy", optimizer=sgd, metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=6, verbose=0)
    score = model.evaluate(x_train[:20], y_train[:20], batch_size=32, verbose=0)
    assert_learns(history)
    assert len(score) == 2


def sequences(n, length, vocab):
    x = np.random.randint(1, vocab, size=(n, length))
    y = (x[:, :3] < vocab // 2).sum(axis=1) >= 2
    return x, y.astype("float32").reshape(-1, 1)


def test_000_embedding_lstm_classifier():
    max_features = 50
    x_train, y_train = sequences(256, 12, max_features)
    model = Sequential()
    model.add(Embedding(max_features, output_dim=16))
    model.add(LSTM(16))
    model.add(Dropout(0.5))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=16, epochs=4, verbose=0)
    score = model.evaluate(x_train, y_train, batch_size=16, verbose=0)
    assert_learns(history)
    assert score[1] > 0.5


def test_000_functional_mlp_and_model_reuse():
    data, l = learnable(300, 784, 10)
    labels = to_categorical(l, 10)
    inputs = Input(shape=(784,))
    x = Dense(64, activation="relu")(inputs)
    x = Dense(64, activation="relu")(x)
    predictions = Dense(10, activation="softmax")(x)
    model = Model(inputs=inputs, outputs=predictions)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(data, labels, verbose=0, epochs=3)
    assert_learns(history)
    x = Input(shape=(784,))
    y = model(x)
    reused = Model(x, y)
    np.testing.assert_allclose(reused.predict(data[:5]), model.predict(data[:5]), rtol=1e-6)


def twitter_model():
    main_input = Input(shape=(20,), dtype="int32", name="main_input")
    x = Embedding(output_dim=16, input_dim=100, input_length=20)(main_input)
    lstm_out = LSTM(8)(x)
    auxiliary_output = Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    auxiliary_input = Input(shape=(5,), name="aux_input")
    x = kaffe.layers.concatenate([lstm_out, auxiliary_input])
    x = Dense(16, activation="relu")(x)
    x = Dense(16, activation="relu")(x)
    x = Dense(16, activation="relu")(x)
    main_output = Dense(1, activation="sigmoid", name="main_output")(x)
    return Model(inputs=[main_input, auxiliary_input], outputs=[main_output, auxiliary_output])


def test_000_003_multi_input_multi_output_list_and_dict_forms():
    headline_data, labels = sequences(128, 20, 100)
    additional_data = np.random.random((128, 5)).astype("float32")
    model = twitter_model()
    # Keras 2 semantics the seeds rely on: one loss for all outputs, with a list of weights
    # (Keras 3 rejects this combination).
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", loss_weights=[1.0, 0.2])
    history = model.fit([headline_data, additional_data], [labels, labels], epochs=5,
                        batch_size=32, verbose=0)
    assert set(history.history) == {"loss", "main_output_loss", "aux_output_loss"}
    assert_learns(history)
    model.compile(optimizer="rmsprop",
                  loss={"main_output": "binary_crossentropy", "aux_output": "binary_crossentropy"},
                  loss_weights={"main_output": 1.0, "aux_output": 0.2})
    history = model.fit({"main_input": headline_data, "aux_input": additional_data},
                        {"main_output": labels, "aux_output": labels}, epochs=2, batch_size=32,
                        verbose=0)
    assert len(history.history["loss"]) == 2


def test_000_inception_block_channels_first(channels_first):
    input_img = Input(shape=(3, 32, 32))
    tower_1 = Conv2D(8, (1, 1), padding="same", activation="relu")(input_img)
    tower_1 = Conv2D(8, (3, 3), padding="same", activation="relu")(tower_1)
    tower_2 = Conv2D(8, (1, 1), padding="same", activation="relu")(input_img)
    tower_2 = Conv2D(8, (5, 5), padding="same", activation="relu")(tower_2)
    tower_3 = MaxPooling2D((3, 3), strides=(1, 1), padding="same")(input_img)
    tower_3 = Conv2D(8, (1, 1), padding="same", activation="relu")(tower_3)
    output = kaffe.layers.concatenate([tower_1, tower_2, tower_3], axis=1)
    model = Model(input_img, output)
    assert model.output_shape == (None, 24, 32, 32)
    assert model.predict(np.random.rand(2, 3, 32, 32)).shape == (2, 24, 32, 32)


def test_000_residual_connection_channels_first(channels_first):
    x = Input(shape=(3, 32, 32))
    y = Conv2D(3, (3, 3), padding="same")(x)
    z = kaffe.layers.add([x, y])
    model = Model(x, z)
    data = np.random.rand(2, 3, 32, 32).astype("float32")
    conv_only = Model(x, y).predict(data)
    np.testing.assert_allclose(model.predict(data), data + conv_only, rtol=1e-5, atol=1e-6)


def test_000_shared_vision_model_channels_first(channels_first):
    digit_input = Input(shape=(1, 27, 27))
    x = Conv2D(8, (3, 3))(digit_input)
    x = Conv2D(8, (3, 3))(x)
    x = MaxPooling2D((2, 2))(x)
    out = Flatten()(x)
    vision_model = Model(digit_input, out)
    digit_a = Input(shape=(1, 27, 27))
    digit_b = Input(shape=(1, 27, 27))
    out_a = vision_model(digit_a)
    out_b = vision_model(digit_b)
    concatenated = kaffe.layers.concatenate([out_a, out_b])
    out = Dense(1, activation="sigmoid")(concatenated)
    classification_model = Model([digit_a, digit_b], out)
    assert classification_model.count_params() == vision_model.count_params() + 2 * 8 * 11 * 11 + 1
    classification_model.compile(optimizer="adam", loss="binary_crossentropy")
    a = np.random.rand(16, 1, 27, 27)
    history = classification_model.fit([a, a[::-1]], np.random.randint(0, 2, (16, 1)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_000_video_qa_vision_model_start(channels_first):
    vision_model = Sequential()
    vision_model.add(Conv2D(8, (3, 3), activation="relu", padding="same", input_shape=(3, 24, 24)))
    vision_model.add(Conv2D(8, (3, 3), activation="relu"))
    vision_model.add(MaxPooling2D((2, 2)))
    vision_model.add(Flatten())
    assert vision_model.output_shape == (None, 8 * 11 * 11)


def test_001_functional_and_sequential_fit_random_targets():
    input_tensor = Input(shape=(64,))
    x = Dense(32, activation="relu")(input_tensor)
    x = Dense(32, activation="relu")(x)
    output_tensor = Dense(10, activation="softmax")(x)
    model = Model(input_tensor, output_tensor)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    x_train = np.random.random((1000, 64))
    y_train = np.random.random((1000, 10))
    history = model.fit(x_train, y_train, epochs=3, batch_size=128, verbose=0)
    assert len(history.history["loss"]) == 3 and output_tensor.shape == (None, 10)


def cnn(input_shape, classes):
    model = Sequential()
    model.add(Conv2D(input_shape=input_shape, filters=8, kernel_size=(3, 3), padding="same",
                     activation="relu"))
    model.add(MaxPool2D())
    model.add(Dropout(rate=0.3, name="student_feature1"))
    model.add(Flatten())
    model.add(Dense(32, activation="relu", name="student_feature2"))
    model.add(Dense(classes, activation="softmax"))
    return model


@pytest.fixture(scope="module")
def mnist_small():
    (x_train, y_train), _ = kaffe.datasets.mnist.load_data()
    x = x_train[:1200].reshape(-1, 28, 28, 1).astype("float32") / 255.0
    return x, to_categorical(y_train[:1200], 10)


def test_004_ensemble_of_three_cnns_on_mnist(mnist_small):
    x_train, y_train = mnist_small
    cnn1, cnn2, cnn3 = cnn((28, 28, 1), 10), cnn((28, 28, 1), 10), cnn((28, 28, 1), 10)
    cnn1.compile(loss=kaffe.losses.categorical_crossentropy, optimizer=kaffe.optimizers.Adam(0.001),
                 metrics=["accuracy"])
    history = cnn1.fit(x_train, y_train, batch_size=64, epochs=2, shuffle=True, verbose=0)
    assert_learns(history, acc_key="accuracy", chance=0.3)

    def mean(data):
        return (data[0] + data[1]) / 2

    inputs = Input((28, 28, 1))
    result1, result2, result3 = cnn1(inputs), cnn2(inputs), cnn3(inputs)
    outputs = Lambda(mean, output_shape=(10,))([result1, result2])
    dropped = Model(inputs, outputs)
    assert [l.name for l in dropped.layers][1:3] == [cnn1.name, cnn2.name]
    assert len(dropped.layers) == 4  # the third net reaches no output and is left out
    mod = Model(inputs, [outputs, result3])
    assert len(mod.layers) == 5
    mod.compile(loss=kaffe.losses.categorical_crossentropy, optimizer=kaffe.optimizers.Adam(0.001),
                metrics=["accuracy"])
    history = mod.fit(x_train, [y_train, y_train], batch_size=64, epochs=2, shuffle=True, verbose=0)
    assert {"loss", "lambda_loss", f"{cnn3.name}_loss"} <= set(history.history)
    assert_learns(history)

    input1, input2 = Input((28, 28, 1)), Input((28, 28, 1))
    out3 = Lambda(lambda d: (d[0] + d[1] + d[2]) / 3, output_shape=(10,))(
        [cnn1(input1), cnn2(input1), cnn3(input2)])
    two_inputs = Model([input1, input2], out3)
    two_inputs.compile(loss=kaffe.losses.categorical_crossentropy,
                       optimizer=kaffe.optimizers.Adam(0.001), metrics=["accuracy"])
    history = two_inputs.fit([x_train, x_train], y_train, batch_size=64, epochs=1, verbose=0)
    assert history.history["accuracy"][0] > 0.2


def test_002_embedding_flatten_dense_with_acc_and_validation_split():
    maxlen = 20
    x_train, y_train = sequences(400, maxlen, 10000)
    emb_dense = Sequential()
    emb_dense.add(Embedding(10000, 8, input_length=maxlen))
    emb_dense.add(Flatten())
    emb_dense.add(Dense(1, activation="sigmoid"))
    emb_dense.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    lines = []
    emb_dense.summary(print_fn=lines.append)
    assert any("(None, 20, 8)" in l for l in lines) and any("80,000" in l for l in lines)
    history = emb_dense.fit(x_train, y_train, epochs=4, batch_size=32, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert_learns(history)


def test_002_simple_rnn():
    x_train, y_train = sequences(256, 10, 60)
    emb_rnn = Sequential()
    emb_rnn.add(Embedding(60, 16))
    emb_rnn.add(SimpleRNN(16))
    emb_rnn.add(Dense(1, activation="sigmoid"))
    emb_rnn.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    history = emb_rnn.fit(x_train, y_train, epochs=4, batch_size=32, validation_split=0.2, verbose=0)
    assert_learns(history)


def test_002_dense_autoencoder_and_encoder_decoder_cut_out(mnist_small):
    x_train = mnist_small[0].reshape(-1, 784)
    encoding_dim = 32
    input_img = Input(shape=(784,))
    encoded = Dense(encoding_dim, activation="relu")(input_img)
    decoded = Dense(784, activation="sigmoid")(encoded)
    autoencoder = Model(input_img, decoded)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    history = autoencoder.fit(x_train, x_train, epochs=3, batch_size=64, verbose=0)
    assert_learns(history)
    # Keras 3 numbers layers from 'dense'; the seed's Keras 2 names were dense_1, dense_2.
    ori_input = Input(shape=(784,))
    encoder = Model(ori_input, autoencoder.get_layer("dense")(ori_input))
    encoded_input = Input(shape=(encoding_dim,))
    decoder = Model(encoded_input, autoencoder.get_layer("dense_1")(encoded_input))
    encoded_imgs = encoder.predict(x_train[:10])
    decoded_imgs = decoder.predict(encoded_imgs)
    np.testing.assert_allclose(decoded_imgs, autoencoder.predict(x_train[:10]), rtol=1e-5, atol=1e-6)


def test_002_conv_autoencoder_denoising_with_tensorboard(mnist_small, tmp_path):
    from kaffe.callbacks import TensorBoard
    x_train = mnist_small[0][:256]
    noise_factor = 0.5
    x_train_noisy = np.clip(x_train + noise_factor * np.random.normal(0.0, 1.0, x_train.shape), 0.0, 1.0)
    input_img = Input(shape=(28, 28, 1))
    x = Conv2D(8, (3, 3), activation="relu", padding="same")(input_img)
    x = MaxPooling2D((2, 2), padding="same")(x)
    x = Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    encoded = MaxPooling2D((2, 2), padding="same")(x)
    x = Conv2D(8, (3, 3), activation="relu", padding="same")(encoded)
    x = UpSampling2D((2, 2))(x)
    x = Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    x = UpSampling2D((2, 2))(x)
    decoded = Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)
    autoencoder = Model(input_img, decoded)
    assert encoded.shape == (None, 7, 7, 8) and autoencoder.output_shape == (None, 28, 28, 1)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    history = autoencoder.fit(x_train_noisy, x_train, epochs=3, batch_size=64, shuffle=True,
                              validation_data=(x_train_noisy[:64], x_train[:64]),
                              callbacks=[TensorBoard(log_dir=str(tmp_path / "tb"), histogram_freq=0,
                                                     write_graph=False)], verbose=0)
    assert_learns(history)
    assert any((tmp_path / "tb").rglob("events.out.tfevents*"))
    assert autoencoder.predict(x_train[:4]).shape == (4, 28, 28, 1)


def test_002_pretrained_embedding_matrix_frozen_and_trainable():
    max_words, embedding_dim, maxlen = 200, 10, 12
    embedding_matrix = np.random.rand(max_words, embedding_dim).astype("float32")
    x_train, y_train = sequences(96, maxlen, max_words)
    model = Sequential()
    model.add(Embedding(max_words, embedding_dim, input_length=maxlen))
    model.add(Flatten())
    model.add(Dense(32, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    model.layers[0].set_weights([embedding_matrix])
    model.layers[0].trainable = False
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    model.fit(x_train, y_train, epochs=2, batch_size=32, validation_data=(x_train, y_train), verbose=0)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], embedding_matrix)
    model.layers[0].trainable = True
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    assert not np.allclose(model.layers[0].get_weights()[0], embedding_matrix)


def test_002_keras2_layer_names_make_get_layer_dense_1_work_unedited(monkeypatch):
    """With Keras 2 numbering the seed's own names (dense_1 = encoder, dense_2 = decoder) work."""
    monkeypatch.setenv("KAFFE_LAYER_NAMING", "keras2")
    input_img = Input(shape=(784,))
    encoded = Dense(32, activation="relu")(input_img)
    decoded = Dense(784, activation="sigmoid")(encoded)
    autoencoder = Model(input_img, decoded)
    assert [l.name for l in autoencoder.layers] == ["input_1", "dense_1", "dense_2"]
    ori_input = Input(shape=(784,))
    encoder = Model(ori_input, autoencoder.get_layer("dense_1")(ori_input))
    encoded_input = Input(shape=(32,))
    decoder = Model(encoded_input, autoencoder.get_layer("dense_2")(encoded_input))
    x = np.random.rand(3, 784).astype("float32")
    np.testing.assert_allclose(decoder.predict(encoder.predict(x)), autoencoder.predict(x), rtol=1e-5)
