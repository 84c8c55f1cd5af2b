"""Movie-review sentiment: 10,605 Rotten Tomatoes sentences with human scores, an IMDB-like task.

The data is ``movie_review_snippets.tsv`` from the VADER paper (Hutto & Gilbert, ICWSM 2014;
shipped in the vaderSentiment 3.3.2 sdist, MIT): one sentence per line, ``id<TAB>mean score<TAB>
text`` with CRLF line ends, the score the mean of 20+ raters on -4..4. The label is
``score > 0`` (5,242 positive, 5,363 not).

``load_data`` encodes it the way ``keras.datasets.imdb``/``reuters`` encode theirs: each sentence
is ``text_to_word_sequence``'d, each word replaced by its frequency rank over the whole file
(:func:`get_word_index`, 1 = most frequent, ties in order of first appearance) plus
``index_from``. :func:`load_texts` gives the raw sentences for a ``Tokenizer`` workflow.

kaffe never downloads: the file is looked up as described in :func:`load_data`.
"""
import functools
import gzip
import logging
import os
import warnings

import numpy as np

from kaffe.datasets import _home
from kaffe.preprocessing.text import text_to_word_sequence

logger = logging.getLogger(__name__)

NAME = "sentiment"
#: File names accepted in a data folder: kaffe's, then the name inside the vaderSentiment sdist.
FILE_NAMES = ("movie_review_snippets.tsv", "movieReviewSnippets_GroundTruth.txt")
HOW_TO_GET = (
    "The file ships in the vaderSentiment 3.3.2 source distribution (MIT): run `pip download "
    "vaderSentiment==3.3.2 --no-deps --no-binary :all:`, unpack it, then unpack "
    "additional_resources/hutto_ICWSM_2014.tar.gz and copy "
    "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt to "
    "$KAFFE_DATA_HOME/sentiment/movie_review_snippets.tsv (or pass its path as path=...).")


def _find_in(folder):
    for name in FILE_NAMES:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return None


BUNDLED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                       "movie_review_snippets.tsv.gz")


def find_file(path=None):
    """Path of the snippets file: ``path`` (the file or a folder holding it), else the first of
    ``$KAFFE_DATA_HOME/sentiment/`` and ``shared/data/sentiment/`` in the parent folders of the
    working directory and of the package. Raises FileNotFoundError saying where it looked."""
    if path is not None:
        path = os.path.expanduser(os.fspath(path))
        if os.path.isfile(path):
            return path
        found = _find_in(path) if os.path.isdir(path) else None
        if found:
            return found
        raise FileNotFoundError(
            f"Sentiment data not found at {path!r}: expected the file movie_review_snippets.tsv "
            f"or a folder holding it. {HOW_TO_GET}")
    folder, searched = _home.find_dataset_dir(NAME, _find_in)
    if folder is None and os.path.isfile(BUNDLED):
        return BUNDLED  # kaffe ships the sentences (MIT, vaderSentiment 3.3.2), gzipped
    if folder is None:
        explicit = [p for p in searched if not p.endswith(os.path.join("shared", "data", NAME))]
        raise FileNotFoundError(
            "Sentiment data (movie_review_snippets.tsv) not found. Looked in: "
            + ", ".join(explicit + [f"shared/data/{NAME} in every parent folder of the working "
                                    "directory and of the kaffe package"])
            + ("" if _home.data_home() else " ($KAFFE_DATA_HOME is unset)") + ". " + HOW_TO_GET)
    return _find_in(folder)


def _read(path):
    """``(texts, scores)`` of the file at ``path`` (cached on path, size and mtime)."""
    st = os.stat(path)
    return _read_cached(os.path.realpath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_cached(path, size, mtime_ns):
    texts, scores = [], []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t", 2)
            try:
                if len(fields) != 3:
                    raise ValueError(f"expected 3 tab-separated fields, got {len(fields)}")
                scores.append(float(fields[1]))
            except ValueError as e:
                raise ValueError(f"{path}, line {lineno}: not an 'id<TAB>score<TAB>text' line "
                                 f"({e}): {line[:80]!r}") from None
            texts.append(fields[2])
    if not texts:
        raise ValueError(f"{path} holds no sentences")
    scores = np.array(scores, dtype=np.float64)
    scores.flags.writeable = False
    # Vocabulary: rank by count over the whole file, ties in order of first appearance (as
    # Tokenizer.fit_on_texts ranks), then every sentence as its list of ranks.
    tokens = [text_to_word_sequence(t) for t in texts]
    counts = {}
    for seq in tokens:
        for w in seq:
            counts[w] = counts.get(w, 0) + 1
    ranked = sorted(counts, key=counts.__getitem__, reverse=True)
    word_index = {w: i for i, w in enumerate(ranked, 1)}
    ranks = tuple(tuple(word_index[w] for w in seq) for seq in tokens)
    return tuple(texts), scores, word_index, ranks


def load_texts(path=None, return_scores=False):
    """The raw sentences in file order: ``(texts, labels)`` or, with ``return_scores``,
    ``(texts, labels, scores)``; ``texts`` a list of str, ``labels`` int64 ``score > 0``,
    ``scores`` float64 in -4..4. ``path`` as in :func:`load_data`."""
    texts, scores, _, _ = _read(find_file(path))
    labels = (scores > 0).astype(np.int64)
    return (list(texts), labels, scores.copy()) if return_scores else (list(texts), labels)


def get_word_index(path=None):
    """``{word: rank}``: rank 1 is the most frequent word of the whole file. In ``load_data``'s
    sequences word ``w`` appears as ``get_word_index()[w] + index_from``."""
    return dict(_read(find_file(path))[2])


def load_data(path=None, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1,
              oov_char=2, index_from=3, test_split=0.2, **kwargs):
    """Load the sentences as ``(x_train, y_train), (x_test, y_test)``, encoded like Keras's IMDB.

    Steps, as ``keras.datasets.reuters.load_data`` (the Keras loader with ``test_split``): shuffle
    all sentences with ``np.random.RandomState(seed)``; prepend ``start_char`` and add
    ``index_from`` to every rank; drop sentences with ``len >= maxlen`` (start char included);
    replace indices outside ``[skip_top, num_words)`` by ``oov_char`` (or drop them when
    ``oov_char`` is None); the first ``int(n * (1 - test_split))`` sentences are the train set.

    Args:
        path: the TSV file or a folder holding it. ``None`` searches
            ``$KAFFE_DATA_HOME/sentiment/``, then ``shared/data/sentiment/`` in every parent folder
            of the working directory and of the package.
        num_words: keep indices below this; ``None`` keeps all but (as in Keras) the very
            largest, which becomes ``oov_char``.
        skip_top: indices below this become ``oov_char`` (so do ``start_char`` and padding
            indices if ``skip_top`` exceeds them, as in Keras).
        maxlen: keep only sentences shorter than this (``None``: all).
        seed: shuffling seed.
        start_char: index put first in every sequence (``None``: none).
        oov_char: index for dropped words (``None``: remove them).
        index_from: offset added to word ranks.
        test_split: fraction of (the kept) sentences that forms the test set.

    Returns:
        ``x_train``, ``x_test``: 1-D object arrays of Python lists of ints; ``y_train``,
        ``y_test``: int64 arrays of 0/1 labels.

    Raises:
        FileNotFoundError: no data file (the message says where it looked and how to get it).
        ValueError: ``maxlen`` removes every sentence, or an argument out of range.
    """
    num_words = _legacy_num_words(num_words, kwargs)
    if not 0 <= test_split <= 1:
        raise ValueError(f"sentiment.load_data expected 0 <= test_split <= 1. Received: "
                         f"test_split={test_split!r}")
    _, scores, _, ranks = _read(find_file(path))
    labels = (scores > 0).astype(np.int64)
    rng = np.random.RandomState(seed)
    indices = np.arange(len(ranks))
    rng.shuffle(indices)
    xs = [ranks[i] for i in indices]
    labels = labels[indices]
    xs = offset(xs, start_char, index_from)
    if maxlen:
        xs, labels = remove_long(maxlen, xs, labels)
    xs = cut_vocabulary(xs, num_words, skip_top, oov_char)
    split = int(len(xs) * (1 - test_split))
    return ((object_array(xs[:split]), labels[:split]),
            (object_array(xs[split:]), labels[split:]))


# Shared with kaffe.datasets.imdb: the steps of Keras's imdb/reuters encoding.

def _legacy_num_words(num_words, kwargs):
    if "nb_words" in kwargs:
        warnings.warn("The `nb_words` argument in `load_data` has been renamed `num_words`.",
                      stacklevel=3)
        num_words = kwargs.pop("nb_words")
    if kwargs:
        raise TypeError(f"load_data got unrecognized keyword arguments: {sorted(kwargs)}")
    return num_words


def offset(xs, start_char, index_from):
    """Prepend ``start_char`` (unless None) and add ``index_from`` to every index."""
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in xs]
    return [[w + index_from for w in x] for x in xs]


def remove_long(maxlen, xs, labels):
    """Keep sequences with ``len < maxlen`` (Keras's rule); labels filtered alike."""
    keep = [i for i, x in enumerate(xs) if len(x) < maxlen]
    if not keep:
        raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no "
                         "sequence was kept. Increase maxlen.")
    return [xs[i] for i in keep], np.asarray(labels)[keep]


def cut_vocabulary(xs, num_words, skip_top, oov_char):
    """Indices outside ``[skip_top, num_words)`` -> ``oov_char`` (or dropped if it is None);
    ``num_words`` falsy means the largest index present, as Keras computes it."""
    if not num_words:
        num_words = max((max(x) for x in xs if len(x)), default=0)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def object_array(xs):
    """1-D object array of the lists ``xs`` (never 2-D, even when all lists are equally long)."""
    out = np.empty(len(xs), dtype=object)
    for i, x in enumerate(xs):
        out[i] = x
    return out
