"""``KeyedVectors``: words and their vectors, the queries people run on them (gensim 4's names
and answers), word2vec/GloVe files, kaffe's own memory-mappable format, and the bridge into a
Keras-style ``Embedding`` layer.

    >>> kv = KeyedVectors.load_word2vec_format("GoogleNews-vectors-negative300.bin", binary=True)
    >>> kv.most_similar(positive=["woman", "king"], negative=["man"], topn=1)
    >>> matrix = kv.embedding_matrix(tokenizer.word_index, num_words=10000)
"""
import json
import numbers
import os

import numpy as np

from kaffe.text import evaluation, formats

_KEY_TYPES = (str, int, np.integer)
FORMAT_NAME = "kaffe.KeyedVectors"

#: the dtype of word vectors (gensim's name for it).
REAL = np.float32


def pseudorandom_weak_vector(size, seed_string=None, hashfxn=hash):
    """A small random vector (uniform in ``±0.5/size``), as gensim starts new word vectors;
    with ``seed_string`` the same string always gives the same vector (within one process,
    as Python's ``hash`` of a str is salted per process)."""
    if seed_string:
        rng = np.random.Generator(np.random.SFC64(hashfxn(seed_string) & 0xffffffff))
    else:
        rng = np.random.default_rng()
    return (rng.random(size).astype(REAL) - 0.5) / size


def _as_list(value):
    """A single key or vector becomes a one-item list (gensim accepts both)."""
    if value is None:
        return []
    if isinstance(value, _KEY_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return list(value)
    return list(value)


def _unit(v):
    norm = np.linalg.norm(v)
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)


class KeyedVectors:
    """Keys (words) mapped to rows of ``vectors`` (``(len(self), vector_size)`` float32).

    ``index_to_key[i]`` is the word of row ``i``; ``key_to_index`` the reverse. Per-word
    attributes (``count`` after training) live in ``get_vecattr``/``set_vecattr``.
    """

    def __init__(self, vector_size, count=0, dtype=np.float32):
        self.vector_size = int(vector_size)
        self.index_to_key = []
        self.key_to_index = {}
        self.vectors = np.zeros((count, self.vector_size), dtype=dtype)
        self.norms = None
        self.expandos = {}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, keys, vectors, counts=None):
        """Vectors for ``keys`` (row ``i`` for ``keys[i]``); duplicate keys keep the first."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError(f"expected one vector row per key: received {len(keys)} keys and "
                             f"vectors of shape {vectors.shape}")
        kv = cls(vectors.shape[1])
        keys = list(keys)
        key_to_index = {}
        for i, k in enumerate(keys):
            key_to_index.setdefault(k, i)
        if len(key_to_index) != len(keys):
            first = sorted(key_to_index.values())
            keys, vectors = [keys[i] for i in first], vectors[first]
            counts = None if counts is None else np.asarray(counts)[first]
            key_to_index = {k: i for i, k in enumerate(keys)}
        kv.index_to_key, kv.key_to_index, kv.vectors = keys, key_to_index, vectors
        if counts is not None:
            kv.expandos["count"] = np.asarray(counts, dtype=np.int64)
        return kv

    def add_vectors(self, keys, weights, extras=None, replace=False):
        """Append vectors for new ``keys`` (one key and its vector, or lists of both);
        existing keys keep their vectors unless ``replace``. ``extras``: ``{attr: values}``
        per key, stored as vecattrs."""
        if isinstance(keys, _KEY_TYPES):
            keys = [keys]
        keys = list(keys)
        weights = np.asarray(weights, dtype=self.vectors.dtype).reshape(len(keys), -1)
        if weights.shape[1] != self.vector_size:
            raise ValueError(f"expected vectors of size {self.vector_size} for "
                             f"{len(keys)} keys, received weights of shape {weights.shape}")
        new = [i for i, k in enumerate(keys) if k not in self.key_to_index]
        if replace:
            for i, k in enumerate(keys):
                if k in self.key_to_index:
                    self.vectors[self.key_to_index[k]] = weights[i]
        for i in new:
            self.key_to_index[keys[i]] = len(self.index_to_key)
            self.index_to_key.append(keys[i])
        self.vectors = np.vstack([self.vectors, weights[new]])
        for name, values in self.expandos.items():
            self.expandos[name] = np.concatenate([values, np.zeros(len(new), values.dtype)])
        added = {keys[i] for i in new}
        for name, values in (extras or {}).items():
            for key, value in zip(keys, values):
                if replace or key in added:
                    self.set_vecattr(key, name, value)
        self.norms = None

    def add_vector(self, key, vector):
        """Add one vector; returns its index."""
        self.add_vectors([key], [vector])
        return self.key_to_index[key]

    def __setitem__(self, keys, weights):
        keys = [keys] if isinstance(keys, _KEY_TYPES) else list(keys)
        self.add_vectors(keys, weights, replace=True)

    # -- attributes -----------------------------------------------------------------------
    def set_vecattr(self, key, attr, value):
        if attr not in self.expandos:
            self.expandos[attr] = np.zeros(len(self.index_to_key), dtype=np.asarray(value).dtype)
        self.expandos[attr][self.get_index(key)] = value

    def get_vecattr(self, key, attr):
        return self.expandos[attr][self.get_index(key)]

    # -- lookup -------------------------------------------------------------------------------
    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, key):
        """Whether ``key`` is a word, or (an int) a row number, as gensim answers."""
        return self.has_index_for(key)

    def has_index_for(self, key):
        return self.get_index(key, -1) >= 0

    def __str__(self):
        return f"{type(self).__name__}<vector_size={self.vector_size}, {len(self)} keys>"

    __repr__ = __str__

    def _missing(self, key):
        return KeyError(f"word {key!r} not in vocabulary ({len(self)} words; check spelling and "
                        f"case, or test `word in kv` first)")

    def get_index(self, key, default=None):
        """Row of ``key``; an int that is no word is taken as a row number, as in gensim."""
        idx = self.key_to_index.get(key, -1)
        if idx >= 0:
            return idx
        if isinstance(key, (int, np.integer)) and 0 <= key < len(self.index_to_key):
            return int(key)
        if default is not None:
            return default
        raise self._missing(key)

    def get_vector(self, key, norm=False):
        """The vector of ``key`` (read-only view); ``norm=True``: scaled to unit length."""
        idx = self.get_index(key)
        if norm:
            self.fill_norms()
            result = self.vectors[idx] / self.norms[idx]
        else:
            result = self.vectors[idx]
        result.setflags(write=False)  # a view: writing would leave ``norms`` stale
        return result

    word_vec = get_vector

    def __getitem__(self, key_or_keys):
        """One vector for a word, a ``(n, vector_size)`` array for a list of words."""
        if isinstance(key_or_keys, _KEY_TYPES):
            return self.get_vector(key_or_keys)
        return np.vstack([self.get_vector(k) for k in key_or_keys])

    def fill_norms(self, force=False):
        if self.norms is None or force:
            self.norms = np.linalg.norm(self.vectors, axis=1)

    def get_normed_vectors(self):
        self.fill_norms()
        return self.vectors / self.norms[:, None]

    def unit_normalize_all(self):
        """Scale every vector to unit length in place (the raw lengths are lost)."""
        self.fill_norms()
        self.vectors /= np.maximum(self.norms, 1e-30)[:, None].astype(self.vectors.dtype)
        self.norms = np.ones(len(self.vectors), dtype=self.vectors.dtype)

    def vectors_for_all(self, keys, allow_inference=True, copy_vecattrs=False):
        """A new ``KeyedVectors`` holding the vectors of those ``keys`` that are known, once
        each, in the order given; ``copy_vecattrs`` copies their vecattrs (otherwise ``count``
        is the usual stand-in, decreasing from ``len``)."""
        chosen = list(dict.fromkeys(k for k in keys if k in self.key_to_index))
        rows = [self.key_to_index[k] for k in chosen]
        counts = np.arange(len(chosen), 0, -1, dtype=np.int64)
        kv = type(self).from_arrays(chosen, self.vectors[rows].reshape(len(rows), -1), counts)
        kv.vector_size = self.vector_size
        if copy_vecattrs:
            for name, values in self.expandos.items():
                kv.expandos[name] = np.asarray(values)[rows]
        return kv

    def get_mean_vector(self, keys, weights=None, pre_normalize=True, post_normalize=False,
                        ignore_missing=True):
        """Weighted mean of the vectors of ``keys`` (words or raw vectors)."""
        if len(keys) == 0:
            raise ValueError("cannot compute mean with no input")
        weights = np.ones(len(keys), self.vectors.dtype) if weights is None else \
            np.asarray(weights, dtype=self.vectors.dtype)
        if len(weights) != len(keys):
            raise ValueError(f"keys and weights must have the same length: received "
                             f"{len(keys)} keys and {len(weights)} weights")
        mean = np.zeros(self.vector_size, self.vectors.dtype)
        total = 0.0
        for w, key in zip(weights, keys):
            if isinstance(key, np.ndarray):
                mean += w * key
            elif key in self:
                mean += w * self.get_vector(key, norm=pre_normalize)
            elif not ignore_missing:
                raise self._missing(key)
            else:
                continue
            total += abs(w)
        if total > 0:
            mean = mean / total
        return _unit(mean) if post_normalize else mean

    # -- similarity queries --------------------------------------------------------------------
    def _top(self, scores, topn, exclude, offset=0):
        """The ``topn`` best ``(word, score)`` pairs, rows in ``exclude`` left out."""
        k = min(topn + len(exclude), len(scores))
        best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.index_to_key[i + offset], float(scores[i])) for i in best
                if i + offset not in exclude][:topn]

    def most_similar(self, positive=None, negative=None, topn=10, clip_start=0, clip_end=None,
                     restrict_vocab=None, indexer=None):
        """Words closest (cosine) to the mean of the unit vectors of ``positive`` minus
        ``negative`` words; the query words themselves are left out. ``topn=None`` returns the
        similarity to every word."""
        if isinstance(topn, numbers.Integral) and topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        self.fill_norms()
        clip_end = clip_end or len(self.vectors)
        if restrict_vocab:
            clip_start, clip_end = 0, restrict_vocab
        keys, weights = [], []
        for sign, items in ((1.0, positive), (-1.0, negative)):
            for item in items:
                if isinstance(item, (tuple, list)) and len(item) == 2 and \
                        not isinstance(item, np.ndarray):
                    keys.append(item[0])
                    weights.append(item[1])
                else:
                    keys.append(item)
                    weights.append(sign)
        mean = self.get_mean_vector(keys, weights, pre_normalize=True, post_normalize=True,
                                    ignore_missing=False)
        exclude = {self.get_index(k) for k in keys if isinstance(k, _KEY_TYPES) and k in self}
        dists = self.vectors[clip_start:clip_end] @ mean / self.norms[clip_start:clip_end]
        if not topn:
            return dists
        return self._top(dists, topn, exclude, clip_start)

    def similar_by_key(self, key, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_word = similar_by_key

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """Levy & Goldberg's 3CosMul: product of positive over negative cosines shifted to
        [0, 1]."""
        if isinstance(topn, numbers.Integral) and topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        if not positive:
            raise ValueError("cannot compute similarity with no input")
        self.fill_norms()
        exclude = {self.get_index(w) for w in positive + negative
                   if not isinstance(w, np.ndarray) and w in self}
        vectors = self.vectors[:restrict_vocab] if restrict_vocab else self.vectors
        norms = self.norms[:len(vectors)]

        def shifted(terms):
            return [(1 + vectors @ (self.get_vector(t, norm=True) if isinstance(t, str) else t)
                     / norms) / 2 for t in terms]
        dists = np.prod(shifted(positive), axis=0) / (np.prod(shifted(negative), axis=0)
                                                      + 0.000001)
        if not topn:
            return dists
        return self._top(dists, topn, exclude)

    def rank_by_centrality(self, words, use_norm=True):
        """``[(similarity to the centroid, word), ...]``, most central first."""
        used = [w for w in words if w in self]
        if not used:
            raise ValueError(f"cannot select a word from an empty list: none of {list(words)} "
                             f"is in the vocabulary")
        vectors = np.vstack([self.get_vector(w, norm=use_norm) for w in used]).astype(np.float32)
        mean = _unit(vectors.mean(axis=0))
        return sorted(zip(vectors @ mean, used), reverse=True)

    def doesnt_match(self, words):
        """The word furthest from the mean of the others."""
        return self.rank_by_centrality(words)[-1][1]

    @staticmethod
    def cosine_similarities(vector_1, vectors_all):
        return vectors_all @ vector_1 / (np.linalg.norm(vector_1) *
                                         np.linalg.norm(vectors_all, axis=1))

    def distances(self, word_or_vector, other_words=()):
        """Cosine distances from a word or vector to ``other_words`` (default: all words)."""
        v = self.get_vector(word_or_vector) if isinstance(word_or_vector, _KEY_TYPES) \
            else word_or_vector
        others = self.vectors if not other_words else \
            self.vectors[[self.get_index(w) for w in other_words]]
        return 1 - self.cosine_similarities(v, others)

    def similarity(self, w1, w2):
        """Cosine similarity of two words (exactly 1 for a word with itself)."""
        if isinstance(w1, _KEY_TYPES) and w1 == w2 and np.any(self[w1]):
            return np.float32(1.0)
        return np.dot(_unit(self[w1]), _unit(self[w2]))

    def relative_cosine_similarity(self, wa, wb, topn=10):
        """Leeuwenberg et al.'s relative cosine similarity: ``similarity(wa, wb)`` divided by
        the sum of ``wa``'s ``topn`` best similarities."""
        total = sum(sim for _, sim in self.most_similar(wa, topn=topn))
        return self.similarity(wa, wb) / total

    def wmdistance(self, document1, document2, norm=True):
        """Word Mover's Distance between two lists of words (Kusner et al. 2015), solved
        with the POT package (``pip install POT``); see :mod:`kaffe.text.wmd`."""
        from kaffe.text.wmd import wmdistance
        return wmdistance(self, document1, document2, norm)

    def distance(self, w1, w2):
        return 1 - self.similarity(w1, w2)

    def n_similarity(self, ws1, ws2):
        """Cosine similarity of the means of two word lists."""
        if not (len(ws1) and len(ws2)):
            raise ZeroDivisionError("At least one of the passed lists is empty.")
        m1 = self.get_mean_vector(ws1, pre_normalize=False)
        m2 = self.get_mean_vector(ws2, pre_normalize=False)
        return np.dot(_unit(m1), _unit(m2))

    def closer_than(self, key1, key2):
        d = self.distances(key1)
        i1, i2 = self.get_index(key1), self.get_index(key2)
        return [self.index_to_key[i] for i in np.flatnonzero(d < d[i2]) if i != i1]

    def rank(self, key1, key2):
        return len(self.closer_than(key1, key2)) + 1

    def most_similar_to_given(self, key1, keys_list):
        return keys_list[int(np.argmax([self.similarity(key1, k) for k in keys_list]))]

    # -- benchmarks ---------------------------------------------------------------------------
    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True,
                                dummy4unknown=False, similarity_function="most_similar"):
        """Accuracy on a ``questions-words.txt``-style file: ``(score, sections)``."""
        return evaluation.evaluate_word_analogies(self, analogies, restrict_vocab,
                                                  case_insensitive, dummy4unknown,
                                                  similarity_function)

    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                            case_insensitive=True, dummy4unknown=False):
        """``(pearson, spearman, oov_ratio)`` against human similarity scores in ``pairs``."""
        return evaluation.evaluate_word_pairs(self, pairs, delimiter, encoding, restrict_vocab,
                                              case_insensitive, dummy4unknown)

    # -- word2vec.c / GloVe files ---------------------------------------------------------
    @classmethod
    def load_word2vec_format(cls, fname, fvocab=None, binary=False, encoding="utf8",
                             unicode_errors="strict", limit=None, datatype=np.float32,
                             no_header=False, binary_chunk_size=None):
        """Vectors from a word2vec.c file (``binary=True`` or text) or, with ``no_header=True``,
        a GloVe text file; ``.gz`` / ``.bz2`` files are decompressed. ``limit``: read only the
        first words. ``fvocab``: word counts. (``binary_chunk_size``, gensim's read-buffer
        size, is accepted and unused: kaffe scans the whole file at once.)"""
        if no_header and binary:
            raise ValueError("no_header=True is for text files (GloVe); binary word2vec files "
                             "always have a header")
        if binary:
            words, vectors = formats.read_binary(fname, limit, encoding, unicode_errors)
        else:
            words, vectors = formats.read_text(fname, limit, encoding, unicode_errors, no_header)
        counts = None
        if fvocab is not None:
            with open(fvocab, "rb") as f:
                table = dict((w.decode(encoding, unicode_errors), int(c))
                             for w, c in (line.split() for line in f if line.strip()))
            counts = [table.get(w, 0) for w in words]
        kv = cls.from_arrays(words, vectors.astype(datatype, copy=False), counts)
        if counts is None:
            kv.expandos["count"] = np.arange(len(kv), 0, -1, dtype=np.int64)  # gensim's stand-in
        return kv

    def save_word2vec_format(self, fname, fvocab=None, binary=False, total_vec=None,
                             write_header=True):
        """Write word2vec.c's format (``binary`` or text; ``write_header=False``: GloVe's)."""
        if total_vec not in (None, len(self)):
            raise ValueError(f"total_vec={total_vec} differs from the {len(self)} vectors held")
        formats.write(fname, self.index_to_key, self.vectors, binary, write_header)
        if fvocab is not None:
            counts = self.expandos.get("count")
            if counts is None:
                raise ValueError("cannot write fvocab: these vectors carry no word counts")
            with open(fvocab, "wb") as f:
                for word, count in zip(self.index_to_key, counts):
                    f.write(f"{word} {int(count)}\n".encode("utf8"))

    # -- kaffe's own format: JSON vocabulary + .npy arrays, memory-mappable, never pickled ----
    def save(self, fname):
        """Write ``fname`` (JSON: words and attributes) and ``fname.vectors.npy``."""
        _save_arrays(fname, {"vectors": self.vectors}, {
            "format": FORMAT_NAME, "version": 1, "vector_size": self.vector_size,
            "index_to_key": self.index_to_key,
            "attrs": {k: _to_json(v) for k, v in self.expandos.items()}})

    @classmethod
    def load(cls, fname, mmap=None):
        """Read what ``save`` wrote; ``mmap='r'`` maps the vectors read-only instead of
        reading them (for files larger than memory)."""
        meta, arrays = _load_arrays(fname, FORMAT_NAME, mmap)
        kv = cls(meta["vector_size"])
        kv.index_to_key = list(meta["index_to_key"])
        kv.key_to_index = {k: i for i, k in enumerate(kv.index_to_key)}
        kv.vectors = arrays["vectors"]
        kv.expandos = {k: _from_json(v) for k, v in meta.get("attrs", {}).items()}
        return kv

    # -- the bridge into Keras-style models -------------------------------------------------
    def embedding_matrix(self, word_index, num_words=None, dtype="float32"):
        """Rows for a Keras ``Embedding`` from a ``Tokenizer``'s ``word_index``: row ``i`` holds
        the vector of the word with index ``i``; row 0 (padding) and words without a vector
        stay zero. ``num_words`` (as the Tokenizer's) keeps indices ``< num_words``; default
        ``max(word_index) + 1``."""
        if not word_index:
            raise ValueError("word_index is empty: fit the Tokenizer on texts first")
        if num_words is None:
            num_words = max(word_index.values()) + 1
        if not isinstance(num_words, numbers.Integral) or num_words < 1:
            raise ValueError(f"num_words must be a positive integer, received {num_words!r}")
        matrix = np.zeros((num_words, self.vector_size), dtype=dtype)
        rows, sources = [], []
        for word, i in word_index.items():
            j = self.key_to_index.get(word, -1)
            if 0 < i < num_words and j >= 0:
                rows.append(i)
                sources.append(j)
        if rows:
            matrix[rows] = self.vectors[sources]
        self.last_embedding_coverage = len(rows) / max(min(len(word_index), num_words - 1), 1)
        return matrix

    def to_keras_embedding(self, word_index, num_words=None, trainable=False, **kwargs):
        """A ``kaffe.layers.Embedding`` initialised with ``embedding_matrix(word_index,
        num_words)``; frozen unless ``trainable``. Extra arguments (``input_length``,
        ``mask_zero``, ``name``) go to the layer."""
        from kaffe.layers import Embedding
        matrix = self.embedding_matrix(word_index, num_words)
        return Embedding(matrix.shape[0], matrix.shape[1], weights=[matrix], trainable=trainable,
                         **kwargs)


def _to_json(values):
    """A vecattr array as JSON: a list, or for per-word arrays (Huffman ``code``/``point``)
    ``{"ragged": [[...], ...]}``."""
    values = np.asarray(values)
    if values.dtype == object:
        return {"ragged": [np.asarray(v).tolist() for v in values]}
    return values.tolist()


def _from_json(value):
    if isinstance(value, dict) and "ragged" in value:
        ragged = np.empty(len(value["ragged"]), dtype=object)
        ragged[:] = [np.asarray(v) for v in value["ragged"]]
        return ragged
    return np.asarray(value)


def _load_word2vec_format(cls, fname, fvocab=None, binary=False, encoding="utf8",
                          unicode_errors="strict", limit=None, datatype=REAL, no_header=False,
                          binary_chunk_size=100 * 1024):
    """gensim's module-level loader (``cls.load_word2vec_format`` under another name)."""
    return cls.load_word2vec_format(fname, fvocab, binary, encoding, unicode_errors, limit,
                                    datatype, no_header, binary_chunk_size)


def _save_arrays(fname, arrays, meta):
    """Write each array as ``fname.<name>.npy`` then the JSON at ``fname``, each to a temporary
    name renamed into place."""
    fname = os.fspath(fname)
    for name, value in arrays.items():
        tmp = f"{fname}.{name}.tmp{os.getpid()}.npy"
        np.save(tmp, np.asarray(value), allow_pickle=False)
        os.replace(tmp, f"{fname}.{name}.npy")
    meta = dict(meta, arrays=sorted(arrays))
    tmp = f"{fname}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf8") as f:
        json.dump(meta, f, ensure_ascii=False)
    os.replace(tmp, fname)


def _load_arrays(fname, format_name, mmap):
    fname = os.fspath(fname)
    with open(fname, "rb") as f:
        head = f.read(1)
        if head != b"{":
            raise ValueError(
                f"{fname} is not a kaffe {format_name.split('.')[-1]} file (kaffe writes JSON + "
                f".npy and never unpickles). For gensim models, export the vectors with "
                f"model.wv.save_word2vec_format(path, binary=True) and use "
                f"KeyedVectors.load_word2vec_format(path, binary=True).")
        meta = json.loads(head + f.read())
    if meta.get("format") != format_name:
        raise ValueError(f"{fname} holds a {meta.get('format')!r}, not a {format_name!r}")
    arrays = {name: np.load(f"{fname}.{name}.npy", mmap_mode=mmap, allow_pickle=False)
              for name in meta.get("arrays", [])}
    return meta, arrays
