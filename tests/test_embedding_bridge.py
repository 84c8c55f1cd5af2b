"""The bridge from word vectors into Keras-style models: ``kv.embedding_matrix`` against seed
002's own GloVe recipe, ``kv.to_keras_embedding`` against Keras 3's Embedding, and a sentiment
classifier on pretrained vectors (kaffe's vs gensim's, trained alike, as the oracle)."""
import os

import numpy as np
import pytest
import torch

import kaffe
from kaffe.layers import Dense, Embedding, Flatten
from kaffe.models import Sequential
from kaffe.preprocessing.sequence import pad_sequences
from kaffe.preprocessing.text import Tokenizer, text_to_word_sequence
from kaffe.text import KeyedVectors, Word2Vec

gensim = pytest.importorskip("gensim")
from gensim.test.utils import datapath  # noqa: E402

GLOVE = datapath("test_glove.txt")
SENTIMENT = os.path.join("..", "shared", "data", "sentiment", "movie_review_snippets.tsv")
TEXTS = ["the president said in a statement that the people would act first",
         "police and military forces were sent to the city on sunday, which is new",
         "a cappuccino and an espresso for her at the zzzunknownzzz cafe, one year after"]


def seed_recipe(glove_path, word_index, max_words, embedding_dim):
    """Seed 002's code, verbatim in substance: a dict from GloVe lines, then the loop."""
    embeddings_index = {}
    with open(glove_path, encoding="utf-8") as f:
        for line in f:
            values = line.split()
            embeddings_index[values[0]] = np.asarray(values[1:], dtype="float32")
    embedding_matrix = np.zeros((max_words, embedding_dim))
    for word, i in word_index.items():
        embedding_vector = embeddings_index.get(word)
        if i < max_words:
            if embedding_vector is not None:
                embedding_matrix[i] = embedding_vector
    return embedding_matrix


@pytest.fixture(scope="module")
def glove():
    return KeyedVectors.load_word2vec_format(GLOVE, no_header=True)


@pytest.mark.parametrize("max_words", [12, 1000])
def test_embedding_matrix_equals_seed_recipe(glove, max_words):
    tokenizer = Tokenizer(num_words=max_words)
    tokenizer.fit_on_texts(TEXTS)
    got = glove.embedding_matrix(tokenizer.word_index, num_words=max_words)
    want = seed_recipe(GLOVE, tokenizer.word_index, max_words, 50)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want.astype(np.float32))
    assert not got[0].any()  # row 0 is padding


def test_embedding_matrix_default_size(glove):
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts(TEXTS)
    matrix = glove.embedding_matrix(tokenizer.word_index)
    assert matrix.shape == (len(tokenizer.word_index) + 1, 50)
    np.testing.assert_array_equal(matrix[tokenizer.word_index["people"]], glove["people"])
    with pytest.raises(ValueError, match="word_index is empty"):
        glove.embedding_matrix({})


@pytest.mark.parametrize("trainable", [False, True])
def test_to_keras_embedding_matches_keras_and_freezes(glove, trainable):
    keras = pytest.importorskip("keras")
    tokenizer = Tokenizer(num_words=40)
    tokenizer.fit_on_texts(TEXTS)
    layer = glove.to_keras_embedding(tokenizer.word_index, num_words=40, trainable=trainable,
                                     input_length=6)
    assert isinstance(layer, Embedding) and layer.trainable == trainable
    x = pad_sequences(tokenizer.texts_to_sequences(TEXTS), maxlen=6)
    reference = keras.layers.Embedding(40, 50)
    reference.build((None, 6))
    reference.set_weights([glove.embedding_matrix(tokenizer.word_index, num_words=40)])
    model = Sequential([layer, Flatten(), Dense(1, activation="sigmoid")])
    np.testing.assert_allclose(layer(torch.as_tensor(x)).detach().numpy(),
                               keras.ops.convert_to_numpy(reference(x)), atol=1e-7)
    before = layer.get_weights()[0].copy()
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    model.fit(x, np.array([1.0, 0.0, 1.0]), epochs=2, verbose=0)
    changed = not np.array_equal(before, layer.get_weights()[0])
    assert changed == trainable


def train_vectors(cls, sentences):
    return cls(sentences, vector_size=50, window=5, min_count=2, sg=0, epochs=10, seed=1,
               workers=1).wv


@pytest.mark.skipif(not os.path.exists(SENTIMENT), reason="../shared/data/sentiment absent")
def test_sentiment_classifier_on_pretrained_vectors():
    """Seed 002's recipe on the movie-review sentences: Tokenizer -> pad_sequences -> frozen
    Embedding from pretrained word2vec vectors -> Flatten -> Dense (one, to stay quick).
    Vectors trained by kaffe must serve the classifier as well as gensim's (same corpus, same
    hyper-parameters)."""
    from kaffe.datasets import sentiment
    texts, labels = sentiment.load_texts(path=SENTIMENT)
    max_words, maxlen = 5000, 30
    tokenizer = Tokenizer(num_words=max_words)
    tokenizer.fit_on_texts(texts)
    data = pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=maxlen)
    order = np.random.default_rng(0).permutation(len(data))
    data, labels = data[order], np.asarray(labels, dtype="float32")[order]
    n_train = 8000
    sentences = [text_to_word_sequence(t) for t in texts]
    accuracies = {}
    for name, cls in (("kaffe", Word2Vec), ("gensim", gensim.models.Word2Vec)):
        kv = train_vectors(cls, sentences)
        if name == "gensim":
            kv = KeyedVectors.from_arrays(list(kv.index_to_key), kv.vectors)
        kaffe.utils.set_random_seed(0)
        model = Sequential()
        model.add(kv.to_keras_embedding(tokenizer.word_index, num_words=max_words,
                                        input_length=maxlen))
        model.add(Flatten())
        model.add(Dense(1, activation="sigmoid"))
        model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
        frozen = model.layers[0].get_weights()[0].copy()
        model.fit(data[:n_train], labels[:n_train], epochs=3, batch_size=128, verbose=0)
        np.testing.assert_array_equal(model.layers[0].get_weights()[0], frozen)
        accuracies[name] = model.evaluate(data[n_train:], labels[n_train:], verbose=0)[1]
    # chance is 0.51 (majority class) on these 2,605 held-out sentences (1 SE ~ 0.01)
    assert accuracies["kaffe"] > 0.55, accuracies
    assert accuracies["kaffe"] >= accuracies["gensim"] - 0.03, accuracies
