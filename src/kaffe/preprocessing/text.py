"""Keras 2 text preprocessing: ``Tokenizer``, ``text_to_word_sequence``, ``one_hot``,
``hashing_trick``.

Same algorithms, defaults and outputs as ``keras.preprocessing.text`` (keras-preprocessing 1.1 /
tf.keras 2.x, kept in Keras 3 as ``keras.src.legacy.preprocessing.text``). Index 0 is never given to
a word; word ``i`` in ``word_index`` is the i-th most frequent one (ties: first seen first).

Example::

    >>> tok = Tokenizer(num_words=3)
    >>> tok.fit_on_texts(["the cat sat", "the cat ran", "the end"])
    >>> tok.word_index
    {'the': 1, 'cat': 2, 'sat': 3, 'ran': 4, 'end': 5}
    >>> tok.texts_to_sequences(["the cat ran away"])  # only indices < num_words survive
    [[1, 2]]
"""
import collections
import hashlib
import json
import warnings

import numpy as np

__all__ = ["Tokenizer", "tokenizer_from_json", "text_to_word_sequence", "one_hot", "hashing_trick"]

#: Keras's default ``filters``: punctuation (but not ``'``), tab and newline.
DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
MODES = ("binary", "count", "tfidf", "freq")


def text_to_word_sequence(input_text, filters=DEFAULT_FILTERS, lower=True, split=" "):
    """Split ``input_text`` into words: lower-case it, turn every character of ``filters`` into
    ``split``, split on ``split`` and drop empty strings.

    >>> text_to_word_sequence("Don't panic -- it's only a test!")
    ["don't", 'panic', "it's", 'only', 'a', 'test']
    """
    if lower:
        input_text = input_text.lower()
    input_text = input_text.translate(str.maketrans({c: split for c in filters}))
    return [word for word in input_text.split(split) if word]


def hashing_trick(text, n, hash_function=None, filters=DEFAULT_FILTERS, lower=True, split=" "):
    """Words of ``text`` mapped to ``hash(word) % (n - 1) + 1``: integers in ``[1, n - 1]``.

    ``hash_function``: ``None`` uses Python's ``hash``, which is salted per process for strings
    (see ``PYTHONHASHSEED``), so the indices change from one run to the next, exactly as in
    Keras; ``"md5"`` is stable across runs and machines (Keras's md5 of the UTF-8 word); or any
    callable from a string to an int. Different words may share an index.
    """
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"hashing_trick expected n to be an integer >= 2 (indices run from 1 "
                         f"to n - 1). Received: n={n!r}")
    if hash_function is None:
        hash_function = hash
    elif hash_function == "md5":
        def hash_function(word):
            return int(hashlib.md5(word.encode()).hexdigest(), 16)
    elif not callable(hash_function):
        raise ValueError(f"hashing_trick expected hash_function to be None, 'md5' or a callable. "
                         f"Received: hash_function={hash_function!r}")
    words = text_to_word_sequence(text, filters=filters, lower=lower, split=split)
    return [hash_function(w) % (n - 1) + 1 for w in words]


def one_hot(input_text, n, filters=DEFAULT_FILTERS, lower=True, split=" "):
    """``hashing_trick`` with Python's ``hash``: word indices in ``[1, n - 1]``, not unique, and
    (as in Keras) different in every process unless ``PYTHONHASHSEED`` is fixed. Use
    ``hashing_trick(..., hash_function="md5")`` for indices that stay the same."""
    return hashing_trick(input_text, n, hash_function=hash, filters=filters, lower=lower,
                         split=split)


class Tokenizer:
    """Turn texts into sequences of word indices or into bag-of-words matrices (Keras 2).

    Args:
        num_words: keep only words with index ``< num_words``, i.e. the ``num_words - 1`` most
            frequent, when converting (``texts_to_sequences``, ``*_to_matrix``). ``fit_on_texts``
            still indexes every word. ``None`` keeps all.
        filters: characters replaced by ``split`` before splitting (default: punctuation except
            ``'``, plus tab and newline).
        lower: lower-case texts (and tokens of pre-split texts) first.
        split: word separator.
        char_level: every character is a token (``filters`` and ``split`` are then ignored).
        oov_token: if given, it gets index 1 and stands for every unknown word (or word beyond
            ``num_words``) in ``texts_to_sequences``; otherwise such words are dropped.
        analyzer: callable text -> list of tokens used instead of ``text_to_word_sequence``
            (tf.keras 2.6+). Not saved by ``to_json``, as in Keras.
        document_count: starting document count (used by ``tokenizer_from_json``).

    A text may also be a list of tokens, which are used as they are (lower-cased if ``lower``).
    ``nb_words=`` (Keras 1) is accepted with a warning.

    Attributes filled by ``fit_on_texts``: ``word_counts`` (OrderedDict word -> count, in order
    of first appearance), ``word_docs`` (word -> number of texts holding it), ``word_index``
    (word -> index from 1, most frequent first; ties keep first-appearance order), ``index_word``
    (its inverse), ``index_docs`` (index -> number of texts), ``document_count``.
    """

    def __init__(self, num_words=None, filters=DEFAULT_FILTERS, lower=True, split=" ",
                 char_level=False, oov_token=None, analyzer=None, document_count=0, **kwargs):
        if "nb_words" in kwargs:
            warnings.warn("The `nb_words` argument in `Tokenizer` has been renamed `num_words`.",
                          stacklevel=2)
            num_words = kwargs.pop("nb_words")
        if kwargs:
            raise TypeError(f"Tokenizer got unrecognized keyword arguments: {sorted(kwargs)}. "
                            "Known: num_words, filters, lower, split, char_level, oov_token, "
                            "analyzer, document_count")
        if num_words is not None and (not isinstance(num_words, (int, np.integer))
                                      or isinstance(num_words, bool) or num_words < 0):
            raise ValueError(f"Tokenizer expected num_words to be None or a non-negative integer. "
                             f"Received: num_words={num_words!r}")
        if analyzer is not None and not callable(analyzer):
            raise ValueError(
                f"Tokenizer expected analyzer to be None or a callable text -> tokens. Received: "
                f"analyzer={analyzer!r} (keras-preprocessing's 7th positional argument was "
                f"document_count; pass it as document_count=...)")
        self.num_words = num_words
        self.filters = filters
        self.lower = lower
        self.split = split
        self.char_level = char_level
        self.oov_token = oov_token
        self.analyzer = analyzer
        self.document_count = document_count
        self.word_counts = collections.OrderedDict()
        self.word_docs = collections.defaultdict(int)
        self.index_docs = collections.defaultdict(int)
        self.word_index = {}
        self.index_word = {}

    def _tokens(self, text, position):
        """Tokens of one text (a string, or a list of tokens), as Keras splits them."""
        if isinstance(text, (list, tuple)):
            return [t.lower() for t in text] if self.lower else list(text)
        if not isinstance(text, str):
            raise TypeError(f"Tokenizer expected text {position} to be a string or a list of "
                            f"tokens. Received: {text!r} ({type(text).__name__})"
                            + (" - a missing value? Drop or fill NaNs first"
                               if isinstance(text, float) else ""))
        if self.char_level:
            return text.lower() if self.lower else text
        if self.analyzer is not None:
            return self.analyzer(text)
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts):
        """Count the words of ``texts`` (strings, lists of tokens, or a generator of either) and
        rebuild ``word_index``/``index_word``/``index_docs``. Calls accumulate."""
        if isinstance(texts, str):
            raise TypeError("Tokenizer.fit_on_texts expected a list of texts, received a single "
                            "string (it would be read one character per text); wrap it: [text]")
        for position, text in enumerate(texts):
            self.document_count += 1
            seq = self._tokens(text, position)
            for w in seq:
                self.word_counts[w] = self.word_counts.get(w, 0) + 1
            for w in set(seq):
                self.word_docs[w] += 1
        ranked = sorted(self.word_counts.items(), key=lambda wc: wc[1], reverse=True)  # stable
        vocab = ([] if self.oov_token is None else [self.oov_token]) + [w for w, _ in ranked]
        self.word_index = dict(zip(vocab, range(1, len(vocab) + 1)))
        self.index_word = {i: w for w, i in self.word_index.items()}
        for w, c in list(self.word_docs.items()):
            self.index_docs[self.word_index[w]] = c

    def fit_on_sequences(self, sequences):
        """Count documents per index from integer ``sequences`` (for ``tfidf`` without texts)."""
        self.document_count += len(sequences)
        for seq in sequences:
            for i in set(seq):
                self.index_docs[i] += 1

    def texts_to_sequences(self, texts):
        """List of index lists; unknown words and words with index ``>= num_words`` are dropped,
        or become the ``oov_token`` index when there is one."""
        return list(self.texts_to_sequences_generator(texts))

    def texts_to_sequences_generator(self, texts):
        """Generator form of :meth:`texts_to_sequences`, one list per text."""
        if isinstance(texts, str):
            raise TypeError("Tokenizer.texts_to_sequences expected a list of texts, received a "
                            "single string; wrap it: [text]")
        num_words = self.num_words
        oov_index = self.word_index.get(self.oov_token)
        for position, text in enumerate(texts):
            vect = []
            for w in self._tokens(text, position):
                i = self.word_index.get(w)
                if i is not None:
                    if num_words and i >= num_words:
                        if oov_index is not None:
                            vect.append(oov_index)
                    else:
                        vect.append(i)
                elif oov_index is not None:
                    vect.append(oov_index)
            yield vect

    def sequences_to_texts(self, sequences):
        """Index lists back to space-joined words (same ``num_words``/``oov_token`` rules)."""
        return list(self.sequences_to_texts_generator(sequences))

    def sequences_to_texts_generator(self, sequences):
        """Generator form of :meth:`sequences_to_texts`."""
        num_words = self.num_words
        oov_index = self.word_index.get(self.oov_token)
        for seq in sequences:
            words = []
            for num in seq:
                word = self.index_word.get(num)
                if word is not None:
                    if num_words and num >= num_words:
                        if oov_index is not None:
                            words.append(self.index_word[oov_index])
                    else:
                        words.append(word)
                elif oov_index is not None:
                    words.append(self.index_word[oov_index])
            yield " ".join(words)

    def texts_to_matrix(self, texts, mode="binary"):
        """``sequences_to_matrix(texts_to_sequences(texts), mode)``."""
        return self.sequences_to_matrix(self.texts_to_sequences(texts), mode=mode)

    def sequences_to_matrix(self, sequences, mode="binary"):
        """``float64`` matrix ``(len(sequences), num_words)`` (``len(word_index) + 1`` columns
        when ``num_words`` is unset); indices ``>= num_words`` are ignored. Per row and index
        with count ``c`` in a sequence of length ``L``: ``binary`` 1, ``count`` c, ``freq`` c / L,
        ``tfidf`` ``(1 + log c) * log(1 + document_count / (1 + index_docs[j]))``."""
        if mode not in MODES:
            raise ValueError(f"Tokenizer expected mode to be one of {MODES}. Received: "
                             f"mode={mode!r}")
        if self.num_words:
            num_words = self.num_words
        elif self.word_index:
            num_words = len(self.word_index) + 1
        else:
            raise ValueError("Specify a dimension (`num_words` argument), or fit on some text "
                             "data first.")
        if mode == "tfidf" and not self.document_count:
            raise ValueError("Fit the Tokenizer on some data before using tfidf mode.")
        x = np.zeros((len(sequences), num_words))
        for i, seq in enumerate(sequences):
            if not len(seq):
                continue
            counts = collections.Counter(j for j in seq if j < num_words)
            for j, c in counts.items():
                if mode == "count":
                    x[i, j] = c
                elif mode == "freq":
                    x[i, j] = c / len(seq)
                elif mode == "binary":
                    x[i, j] = 1
                else:  # tfidf, weighting scheme 2 of https://en.wikipedia.org/wiki/Tf-idf
                    tf = 1 + np.log(c)
                    idf = np.log(1 + self.document_count / (1 + self.index_docs.get(j, 0)))
                    x[i, j] = tf * idf
        return x

    def get_config(self):
        """Keras's config dict: the constructor options (less ``analyzer``) and the fitted
        dictionaries, each as a JSON string."""
        return {
            "num_words": self.num_words,
            "filters": self.filters,
            "lower": self.lower,
            "split": self.split,
            "char_level": self.char_level,
            "oov_token": self.oov_token,
            "document_count": self.document_count,
            "word_counts": json.dumps(self.word_counts),
            "word_docs": json.dumps(self.word_docs),
            "index_docs": json.dumps(self.index_docs),
            "index_word": json.dumps(self.index_word),
            "word_index": json.dumps(self.word_index),
        }

    def to_json(self, **kwargs):
        """``{"class_name": "Tokenizer", "config": get_config()}`` as JSON (Keras's format, so
        either library reads the other's); ``kwargs`` go to ``json.dumps``."""
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()},
                          **kwargs)


def tokenizer_from_json(json_string):
    """Rebuild a :class:`Tokenizer` from :meth:`Tokenizer.to_json` output (or Keras's).

    Unlike Keras, ``word_docs``/``index_docs`` come back as ``defaultdict`` so that fitting on
    more texts afterwards works instead of raising ``KeyError``.
    """
    config = dict(json.loads(json_string).get("config"))
    word_counts = json.loads(config.pop("word_counts"), object_pairs_hook=collections.OrderedDict)
    word_docs = json.loads(config.pop("word_docs"))
    index_docs = {int(k): v for k, v in json.loads(config.pop("index_docs")).items()}
    index_word = {int(k): v for k, v in json.loads(config.pop("index_word")).items()}
    word_index = json.loads(config.pop("word_index"))
    tokenizer = Tokenizer(**config)
    tokenizer.word_counts = word_counts
    tokenizer.word_docs = collections.defaultdict(int, word_docs)
    tokenizer.index_docs = collections.defaultdict(int, index_docs)
    tokenizer.word_index = word_index
    tokenizer.index_word = index_word
    return tokenizer
