"""kaffe.datasets.sentiment / kaffe.datasets.imdb: movie-review sentences encoded as Keras's IMDB.

Oracles: Keras 3's own ``reuters.load_data`` / ``imdb.load_data`` (their download replaced by a
local npz holding the same word ranks), so the shuffling, offsets, ``maxlen``, ``num_words``,
``skip_top`` and ``oov_char`` steps are Keras's, not a re-reading of them.
"""
import numpy as np
import pytest

from kaffe.datasets import _home, imdb, sentiment
from kaffe.preprocessing.sequence import pad_sequences
from kaffe.preprocessing.text import Tokenizer, text_to_word_sequence

N, N_POSITIVE = 10605, 5242  # sentences in the file; those with score > 0


@pytest.fixture(scope="module")
def data_file():
    try:
        return sentiment.find_file()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def corpus(data_file):
    texts, labels, scores = sentiment.load_texts(data_file, return_scores=True)
    return texts, labels, scores


@pytest.fixture(scope="module")
def ranks(corpus, data_file):
    """Every sentence as word ranks (no offsets), in file order: what a Keras npz would hold."""
    index = sentiment.get_word_index(data_file)
    return [[index[w] for w in text_to_word_sequence(t)] for t in corpus[0]]


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """Hide every default data location."""
    home = tmp_path / "data_home"
    home.mkdir()
    monkeypatch.setenv("KAFFE_DATA_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_home, "_PACKAGE_DIR", str(tmp_path / "pkg"))
    return home


def obj(rows):
    return sentiment.object_array([list(r) for r in rows])


def as_lists(x):
    return [list(r) for r in x]


# ----------------------------------------------------------------------------- the file

def test_texts_labels_and_word_index(corpus, data_file):
    texts, labels, scores = corpus
    assert len(texts) == len(labels) == len(scores) == N
    assert labels.dtype == np.int64 and int(labels.sum()) == N_POSITIVE
    assert scores.min() >= -4 and scores.max() <= 4
    assert texts[2] == "Effective but too tepid biopic" and labels[2] == 0
    assert not any("\r" in t or "\n" in t for t in texts)
    index = sentiment.get_word_index(data_file)
    assert list(index)[:4] == ["the", "a", "and", "of"] and index["the"] == 1
    assert sorted(index.values()) == list(range(1, len(index) + 1))
    # the same ranking Tokenizer.fit_on_texts gives
    tok = Tokenizer()
    tok.fit_on_texts(texts)
    assert tok.word_index == index


def test_without_local_files_the_bundled_copy_is_used_and_a_wrong_path_is_named(nowhere):
    assert sentiment.find_file() == sentiment.BUNDLED
    (x_train, _), (x_test, _) = sentiment.load_data()
    assert len(x_train) + len(x_test) == 10605
    with pytest.raises(FileNotFoundError, match="movie_review_snippets.tsv") as e:
        sentiment.load_data(path=nowhere / "missing.tsv")
    assert "vaderSentiment 3.3.2" in str(e.value)


def test_search_order_and_small_file(nowhere):
    folder = nowhere / "sentiment"
    folder.mkdir()
    rows = ["1\t2.5\tA fine, fine film.", "2\t-1.25\tA dull film!", "3\t0\tFilm.",
            "4\t0.1\tFine enough", ""]
    # the sdist's own file name is accepted too; CRLF line ends as in the original
    (folder / "movieReviewSnippets_GroundTruth.txt").write_bytes("\r\n".join(rows).encode())
    texts, labels = sentiment.load_texts()
    assert texts == ["A fine, fine film.", "A dull film!", "Film.", "Fine enough"]
    assert labels.tolist() == [1, 0, 0, 1]
    # ties (fine, film: 3 each) keep the order of first appearance
    assert sentiment.get_word_index() == {"fine": 1, "film": 2, "a": 3, "dull": 4, "enough": 5}
    (x_train, y_train), (x_test, y_test) = sentiment.load_data(test_split=0.5, seed=0)
    assert len(x_train) == len(x_test) == 2
    decoded = {tuple(x) for x in list(x_train) + list(x_test)}
    # num_words=None: as in Keras the largest index (8, "enough") becomes oov_char 2
    assert decoded == {(1, 6, 4, 4, 5), (1, 6, 7, 5), (1, 5), (1, 4, 2)}
    (folder / "movieReviewSnippets_GroundTruth.txt").write_text("1\tnot a score\ttext\n")
    with pytest.raises(ValueError, match="line 1"):
        sentiment.load_texts()


# ----------------------------------------------------------------------------- load_data

def test_shapes_labels_and_balance(data_file):
    (x_train, y_train), (x_test, y_test) = sentiment.load_data(data_file)
    assert x_train.shape == y_train.shape == (int(N * 0.8),)
    assert x_test.shape == y_test.shape == (N - int(N * 0.8),)
    assert x_train.dtype == object and y_train.dtype == np.int64
    assert all(type(x) is list and all(type(w) is int for w in x) for x in x_train[:200])
    assert set(np.unique(np.concatenate([y_train, y_test]))) == {0, 1}
    assert int(y_train.sum() + y_test.sum()) == N_POSITIVE
    overall = N_POSITIVE / N  # 0.494: roughly balanced, as the file is
    assert abs(y_train.mean() - overall) < 0.02 and abs(y_test.mean() - overall) < 0.03


def test_index_conventions(data_file, corpus):
    (x_train, _), (x_test, _) = sentiment.load_data(data_file, num_words=1000)
    xs = list(x_train) + list(x_test)
    assert all(x[0] == 1 for x in xs)  # start_char
    words = np.concatenate([x[1:] for x in xs])
    assert words.min() == 2 and words.max() == 999  # oov_char used, nothing >= num_words
    assert not np.isin(words, [0, 1]).any()
    (x_train, _), _ = sentiment.load_data(data_file, num_words=500, skip_top=20, oov_char=7,
                                          start_char=3)
    flat = np.concatenate(list(x_train))
    assert ((flat >= 20) & (flat < 500) | (flat == 7)).all()
    assert all(x[0] == 7 for x in x_train)  # start_char 3 < skip_top: Keras makes it oov too
    (x_train, _), _ = sentiment.load_data(data_file, start_char=None, index_from=0,
                                          oov_char=None, num_words=50)
    assert np.concatenate(list(x_train)).max() == 49
    # decoding gives back the sentence: x_train[i] is file row perm[i]
    texts = corpus[0]
    (x_train, _), _ = sentiment.load_data(data_file, seed=5)
    perm = np.random.RandomState(5).permutation(N)
    index = sentiment.get_word_index(data_file)
    inverse = {rank + 3: w for w, rank in index.items()}
    inverse[2] = "[OOV]"
    biggest = max(index.values()) + 3  # num_words=None: Keras turns this one into oov_char
    for i in range(50):
        words = [inverse[w] for w in x_train[i][1:]]
        expect = [w if index[w] + 3 != biggest else "[OOV]"
                  for w in text_to_word_sequence(texts[perm[i]])]
        assert words == expect


def test_maxlen_and_seed(data_file):
    a = sentiment.load_data(data_file, seed=1, maxlen=20)
    b = sentiment.load_data(data_file, seed=1, maxlen=20)
    c = sentiment.load_data(data_file, seed=2, maxlen=20)
    for split in (0, 1):
        assert as_lists(a[split][0]) == as_lists(b[split][0])
        np.testing.assert_array_equal(a[split][1], b[split][1])
    assert as_lists(a[0][0]) != as_lists(c[0][0])
    lens = [len(x) for x in list(a[0][0]) + list(a[1][0])]
    assert max(lens) == 19 and len(lens) < N  # Keras keeps len < maxlen
    assert sorted(map(tuple, list(a[0][0]) + list(a[1][0]))) == sorted(
        map(tuple, list(c[0][0]) + list(c[1][0])))
    with pytest.raises(ValueError, match="maxlen=2"):
        sentiment.load_data(data_file, maxlen=2)
    with pytest.raises(ValueError, match="test_split=1.5"):
        sentiment.load_data(data_file, test_split=1.5)
    with pytest.warns(UserWarning, match="nb_words"):
        (x, _), _ = sentiment.load_data(data_file, nb_words=30)
    assert max(max(r) for r in x) == 29
    with pytest.raises(TypeError, match="num_word"):
        sentiment.load_data(data_file, num_word=3)


@pytest.fixture(scope="module")
def keras_datasets():
    pytest.importorskip("keras")
    from keras.src.datasets import imdb as keras_imdb, reuters as keras_reuters
    return keras_imdb, keras_reuters


@pytest.mark.parametrize("kwargs", [
    {}, {"num_words": 1000}, {"num_words": 5000, "skip_top": 30, "maxlen": 25, "seed": 3},
    {"start_char": None, "oov_char": None, "num_words": 200, "index_from": 0},
    {"start_char": 5, "oov_char": 4, "index_from": 10, "test_split": 0.35, "seed": 0}])
def test_matches_keras_reuters_steps(keras_datasets, ranks, corpus, data_file, tmp_path,
                                     monkeypatch, kwargs):
    """Keras's reuters loader (the one with test_split) on the same ranks gives the same arrays."""
    _, keras_reuters = keras_datasets
    npz = tmp_path / "sentiment_ranks.npz"
    np.savez(npz, x=obj(ranks), y=corpus[1])
    monkeypatch.setattr(keras_reuters, "get_file", lambda *a, **k: str(npz))
    (kx, ky), (kxt, kyt) = keras_reuters.load_data(**kwargs)
    (x, y), (xt, yt) = sentiment.load_data(data_file, **kwargs)
    assert as_lists(x) == as_lists(kx) and as_lists(xt) == as_lists(kxt)
    np.testing.assert_array_equal(y, ky)
    np.testing.assert_array_equal(yt, kyt)


@pytest.mark.parametrize("kwargs", [{}, {"num_words": 2000, "maxlen": 30, "seed": 9},
                                    {"skip_top": 5, "start_char": None, "oov_char": None}])
def test_imdb_npz_matches_keras_imdb(keras_datasets, ranks, corpus, tmp_path, monkeypatch, kwargs):
    """A Keras-style npz, in kaffe's pickle-free layout or Keras's own pickled one, loads as
    Keras's imdb loader loads the pickled original."""
    keras_imdb, _ = keras_datasets
    labels = corpus[1]
    train, test = ranks[:7000], ranks[7000:]
    pickled = tmp_path / "imdb.npz"
    np.savez(pickled, x_train=obj(train), y_train=labels[:7000], x_test=obj(test),
             y_test=labels[7000:])
    flat = tmp_path / "imdb_flat.npz"
    np.savez(flat, y_train=labels[:7000], y_test=labels[7000:],
             **{f"{s}_values": np.concatenate([np.asarray(r, np.int64) for r in rows])
                for s, rows in (("x_train", train), ("x_test", test))},
             **{f"{s}_lengths": np.array([len(r) for r in rows])
                for s, rows in (("x_train", train), ("x_test", test))})
    monkeypatch.setattr(keras_imdb, "get_file", lambda *a, **k: str(pickled))
    (kx, ky), (kxt, kyt) = keras_imdb.load_data(**kwargs)
    (x, y), (xt, yt) = imdb.load_data(path=flat, **kwargs)
    assert as_lists(x) == as_lists(kx) and as_lists(xt) == as_lists(kxt)
    np.testing.assert_array_equal(y, ky)
    np.testing.assert_array_equal(yt, kyt)
    # Keras's own pickled layout is read too, through the plain-data unpickler.
    (px, py), (pxt, pyt) = imdb.load_data(path=pickled, **kwargs)
    assert as_lists(px) == as_lists(kx) and as_lists(pxt) == as_lists(kxt)
    np.testing.assert_array_equal(py, ky)


def test_imdb_defaults_to_sentiment(data_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.keras/datasets/imdb.npz
    (x, y), (xt, yt) = imdb.load_data(num_words=300, seed=4)
    (sx, sy), (sxt, syt) = sentiment.load_data(num_words=300, seed=4)
    assert as_lists(x) == as_lists(sx) and as_lists(xt) == as_lists(sxt)
    np.testing.assert_array_equal(y, sy)
    (x2, _), _ = imdb.load_data(path="imdb.npz", num_words=300, seed=4)  # Keras's default name
    assert as_lists(x2) == as_lists(x)
    (x3, _), _ = imdb.load_data(path=data_file, num_words=300, seed=4)
    assert as_lists(x3) == as_lists(x)
    assert imdb.get_word_index() == sentiment.get_word_index()
    (tmp_path / "idx.json").write_text('{"film": 1}')
    assert imdb.get_word_index(tmp_path / "idx.json") == {"film": 1}
    rect = tmp_path / "rect.npz"
    np.savez(rect, x_train=np.array([[4, 5], [6, 7]]), y_train=np.array([0, 1]),
             x_test=np.array([[8, 9]]), y_test=np.array([1]))
    (x, y), (xt, yt) = imdb.load_data(path=rect, seed=0)
    assert sorted(as_lists(x)) == [[1, 7, 8], [1, 9, 10]] and as_lists(xt) == [[1, 11, 2]]
    with pytest.raises(FileNotFoundError, match="cannot download"):
        imdb.load_data(path=tmp_path / "nope" / "imdb.npz")


def test_seed_002_workflows(corpus, data_file):
    """The seed's Keras 2 text workflow: Tokenizer(num_words=10000) -> pad_sequences(maxlen=100),
    and imdb.load_data(num_words=...) -> pad_sequences(maxlen=20)."""
    texts, labels, _ = corpus
    max_words, maxlen = 10000, 100
    tokenizer = Tokenizer(num_words=max_words)
    tokenizer.fit_on_texts(texts)
    sequences = tokenizer.texts_to_sequences(texts)
    word_index = tokenizer.word_index
    assert len(word_index) == len(sentiment.get_word_index(data_file)) > max_words
    data = pad_sequences(sequences, maxlen=maxlen)
    labels = np.asarray(labels)
    assert data.shape == (N, maxlen) and data.dtype == np.int32 and labels.shape == (N,)
    assert 0 <= data.min() and data.max() < max_words
    assert (data[:, 0] == 0).mean() > 0.9  # sentences are short: mostly pre-padded

    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=10000)
    x_train = pad_sequences(x_train, maxlen=20)
    x_test = pad_sequences(x_test, maxlen=20)
    assert x_train.shape == (len(y_train), 20) and x_test.shape == (len(y_test), 20)
    assert x_train.max() < 10000
