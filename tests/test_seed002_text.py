"""Seed 002's text workflows on the real movie-review sentences: imdb-style load_data and
Tokenizer -> pad_sequences -> Embedding models (Flatten+Dense, frozen pretrained matrix,
SimpleRNN, LSTM, multi-head Conv1D). Each must beat chance (0.5) clearly on held-out data, and
fit(..., validation_split=0.2) histories carry Keras's keys."""
import numpy as np
import pytest

import kaffe
from kaffe.datasets import imdb, sentiment
from kaffe.layers import (LSTM, Conv1D, Dense, Embedding, Flatten, GlobalMaxPooling1D, Input,
                          SimpleRNN, concatenate)
from kaffe.models import Model, Sequential
from kaffe.preprocessing import sequence
from kaffe.preprocessing.text import Tokenizer

KERAS_KEYS = {"loss", "acc", "val_loss", "val_acc"}


@pytest.fixture(scope="module")
def tokenized():
    texts, labels = sentiment.load_texts()
    tokenizer = Tokenizer(num_words=5000)
    tokenizer.fit_on_texts(texts)
    data = sequence.pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=30)
    labels = np.asarray(labels, dtype="float32")
    order = np.random.default_rng(0).permutation(len(data))
    return data[order], labels[order], tokenizer


def compile_and_fit(model, x, y, epochs, batch_size=64):
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=0.2, verbose=0)


def test_imdb_style_load_data_embedding_flatten_dense():
    max_features, maxlen = 10000, 20
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=max_features)
    x_train = sequence.pad_sequences(x_train, maxlen=maxlen)
    x_test = sequence.pad_sequences(x_test, maxlen=maxlen)
    emb_dense = Sequential()
    emb_dense.add(Embedding(10000, 8, input_length=maxlen))
    emb_dense.add(Flatten())
    emb_dense.add(Dense(1, activation="sigmoid"))
    history = compile_and_fit(emb_dense, x_train, y_train, epochs=6, batch_size=32)
    assert set(history.history) == KERAS_KEYS
    assert history.history["val_acc"][-1] > 0.62
    assert emb_dense.evaluate(x_test, y_test, verbose=0)[1] > 0.62


def test_tokenizer_pipeline_and_frozen_pretrained_matrix(tokenized):
    data, labels, tokenizer = tokenized
    first = Sequential([Embedding(5000, 16, input_length=30), Flatten(),
                        Dense(32, activation="relu"), Dense(1, activation="sigmoid")])
    history = compile_and_fit(first, data, labels, epochs=4)
    assert history.history["val_acc"][-1] > 0.62
    embedding_matrix = first.layers[0].get_weights()[0]  # "pretrained" vectors for the next model

    model = Sequential()
    model.add(Embedding(5000, 16, input_length=30))
    model.add(Flatten())
    model.add(Dense(32, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    model.layers[0].set_weights([embedding_matrix])
    model.layers[0].trainable = False
    history = compile_and_fit(model, data, labels, epochs=3)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], embedding_matrix)
    assert history.history["val_acc"][-1] > 0.62


@pytest.mark.parametrize("recurrent", [SimpleRNN, LSTM])
def test_recurrent_classifiers(tokenized, recurrent):
    data, labels, _ = tokenized
    model = Sequential()
    model.add(Embedding(5000, 32))
    model.add(recurrent(32))
    model.add(Dense(1, activation="sigmoid"))
    history = compile_and_fit(model, data, labels, epochs=3, batch_size=128)
    assert set(history.history) == KERAS_KEYS
    assert history.history["val_acc"][-1] > 0.6


def test_multi_head_conv1d_model(tokenized):
    data, labels, _ = tokenized
    words = Input(shape=(30,), dtype="int32")
    embedded = Embedding(5000, 32)(words)
    heads = [GlobalMaxPooling1D()(Conv1D(32, width, activation="relu")(embedded)) for width in (2, 3, 5)]
    output = Dense(1, activation="sigmoid")(concatenate(heads))
    model = Model(words, output)
    history = compile_and_fit(model, data, labels, epochs=3)
    assert set(history.history) == KERAS_KEYS
    assert history.history["val_acc"][-1] > 0.62
