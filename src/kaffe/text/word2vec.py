"""word2vec (Mikolov et al. 2013): skip-gram and CBOW, negative sampling and hierarchical softmax,
with gensim 4's API (and the gensim 3 spellings ``size``, ``iter``, ``model.most_similar``,
``model[word]`` that older tutorials use).

    >>> from kaffe.text import word2vec
    >>> sentences = word2vec.Text8Corpus("text8")
    >>> model = word2vec.Word2Vec(sentences, size=200)
    >>> model.save("text8.model")
    >>> model = word2vec.Word2Vec.load("text8.model")
    >>> model.most_similar(positive=["woman", "king"], negative=["man"], topn=1)

Training (:mod:`kaffe.text.w2v_training`) streams the corpus: batches of ``batch_words`` words
become index arrays and ``workers`` threads train on them at once with compiled kernels
(:mod:`kaffe.text.kernels`) that release the GIL, sharing the weights lock-free as word2vec.c
does. ``device='cuda'`` (or any torch device) trains with batched PyTorch updates instead
(:mod:`kaffe.text.torch_trainer`).
"""
import collections.abc
import logging
import os
import time

import numpy as np

from kaffe.text import kernels, scoring, vocab, w2v_training
from kaffe.text.corpora import (MAX_WORDS_IN_BATCH, LineSentence, PathLineSentences,
                                Text8Corpus, TextSentences)
from kaffe.text.keyedvectors import KeyedVectors, _load_arrays, _save_arrays

__all__ = ["Word2Vec", "LineSentence", "PathLineSentences", "Text8Corpus", "TextSentences",
           "KeyedVectors"]

logger = logging.getLogger(__name__)
FORMAT_NAME = "kaffe.Word2Vec"

#: hyper-parameters saved with a model, in ``__init__``'s order.
PARAMS = ("vector_size", "alpha", "window", "min_count", "max_vocab_size", "sample", "seed",
          "workers", "min_alpha", "sg", "hs", "negative", "ns_exponent", "cbow_mean", "epochs",
          "null_word", "sorted_vocab", "batch_words", "compute_loss", "comment",
          "max_final_vocab", "shrink_windows", "device")


class _ClassOnly(classmethod):
    """A classmethod that refuses to run on an instance (gensim's ``call_on_class_only``):
    ``model.load(path)`` would return a new model and leave ``model`` unchanged."""

    def __get__(self, instance, owner=None):
        if instance is not None:
            raise AttributeError(
                f"{self.__func__.__name__}() is called on the class, not on a model: write "
                f"model = {type(instance).__name__}.{self.__func__.__name__}(path)")
        return super().__get__(instance, owner)


class WrongModelFileError(ValueError, AttributeError):
    """``Word2Vec.load`` on a file that holds something else (a ``KeyedVectors``); an
    ``AttributeError`` too, as gensim's load of the wrong type raises."""


class EmptyVocabularyError(RuntimeError, ValueError):
    """Training asked of a model whose vocabulary is empty; a ``RuntimeError`` as gensim
    raises, and a ``ValueError`` (bad input: the corpus or ``min_count``)."""


class Word2Vec:
    """Train word vectors; ``model.wv`` holds them as :class:`KeyedVectors`.

    Args (gensim 4's, same defaults):
        sentences: iterable of lists of words (re-iterable: one pass per epoch plus one for the
            vocabulary); given here, the model builds its vocabulary and trains at once.
        corpus_file: path of a ``LineSentence`` file, instead of ``sentences``.
        vector_size (gensim 3: ``size``): dimensions. window: max distance to a context word.
        min_count: drop rarer words. max_vocab_size: prune while counting to bound memory.
        max_final_vocab: raise ``min_count`` so that at most this many words remain.
        sample: subsampling threshold of frequent words (0: none).
        seed: initial vectors and random draws. workers: training threads.
        sg: 1 skip-gram, 0 CBOW. hs: 1 hierarchical softmax. negative: noise words per
            example (0: none). ns_exponent: noise distribution ``count**ns_exponent``.
        cbow_mean: CBOW input is the mean (1) or the sum (0) of the context vectors.
        alpha, min_alpha: learning rate, decayed linearly to ``min_alpha`` over training.
        epochs (gensim 3: ``iter``): passes over the corpus. batch_words: words per job.
        shrink_windows: sample the window size in ``[1, window]`` per word, as word2vec.c.
        compute_loss: keep ``get_latest_training_loss()``. callbacks: objects with
            ``on_train_begin/on_epoch_begin/on_epoch_end/on_train_end(model)`` methods.
        device: ``None`` for the CPU kernels, or a torch device (``'cuda'``, ``'cpu'``) for
            batched PyTorch training on it.
    """

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5,
                 min_count=5, max_vocab_size=None, sample=1e-3, seed=1, workers=3,
                 min_alpha=0.0001, sg=0, hs=0, negative=5, ns_exponent=0.75, cbow_mean=1,
                 hashfxn=None, epochs=5, null_word=0, trim_rule=None, sorted_vocab=1,
                 batch_words=MAX_WORDS_IN_BATCH, compute_loss=False, callbacks=(), comment=None,
                 max_final_vocab=None, shrink_windows=True, device=None, size=None, iter=None):
        vector_size = _renamed("size", size, "vector_size", vector_size, 100)
        epochs = _renamed("iter", iter, "epochs", epochs, 5)
        _check_positive(vector_size=vector_size, window=window, epochs=epochs, workers=workers,
                        batch_words=batch_words)
        if not hs and not negative:
            raise ValueError("Word2Vec needs hs=1 or negative > 0 (received hs=0, negative=0): "
                             "with neither there is no output layer to train")
        if null_word:
            raise ValueError("null_word is only used by Doc2Vec's concatenation mode; "
                             "Word2Vec expects null_word=0")
        if hs and negative:
            logger.warning("Both hierarchical softmax and negative sampling are activated. "
                           "This is probably a mistake. You should set either 'hs=0' or "
                           "'negative=0' to disable one of them.")
        self.vector_size, self.alpha, self.window = int(vector_size), float(alpha), int(window)
        self.min_count, self.max_vocab_size, self.sample = min_count, max_vocab_size, sample
        self.seed, self.workers, self.min_alpha = seed, int(workers), float(min_alpha)
        self.sg, self.hs, self.negative = int(sg), int(hs), int(negative)
        self.ns_exponent, self.cbow_mean, self.epochs = ns_exponent, int(cbow_mean), int(epochs)
        self.null_word, self.sorted_vocab, self.batch_words = null_word, sorted_vocab, batch_words
        self.compute_loss, self.comment = bool(compute_loss), comment
        self.max_final_vocab, self.shrink_windows = max_final_vocab, bool(shrink_windows)
        self.device = device
        self.hashfxn = hashfxn
        self.random = np.random.RandomState(seed)
        self.layer1_size = self.vector_size
        self.wv = KeyedVectors(self.vector_size)
        self.wv.vectors_lockf = np.ones(1, dtype=np.float32)
        self.syn1neg = self.syn1 = self.cum_table = None
        self.corpus_count = self.corpus_total_words = 0
        self.train_count, self.total_train_time = 0, 0.0
        self.running_training_loss = 0.0
        self.min_alpha_yet_reached = self.alpha
        self.effective_min_count = min_count
        self.raw_vocab = None
        self._empty_vocab_reason = None
        if sentences is not None or corpus_file is not None:
            _check_reiterable(sentences, self.epochs + 1)
            self.build_vocab(sentences, corpus_file=corpus_file, trim_rule=trim_rule)
            self.train(sentences, corpus_file=corpus_file, total_examples=self.corpus_count,
                       total_words=self.corpus_total_words, epochs=self.epochs,
                       start_alpha=self.alpha, end_alpha=self.min_alpha,
                       compute_loss=self.compute_loss, callbacks=callbacks)

    def __str__(self):
        return (f"Word2Vec<vocab={len(self.wv)}, vector_size={self.vector_size}, "
                f"alpha={self.alpha}>")

    __repr__ = __str__

    # -- vocabulary ---------------------------------------------------------------------------
    def build_vocab(self, corpus_iterable=None, corpus_file=None, update=False,
                    progress_per=10000, keep_raw_vocab=False, trim_rule=None, sentences=None,
                    **kwargs):
        """Count the corpus, keep words seen ``min_count`` times, set up subsampling, the noise
        table or Huffman tree and fresh weights (``update=True``: add new words, keep the
        trained ones)."""
        self.scan_vocab(corpus_iterable if corpus_iterable is not None else sentences,
                        corpus_file, progress_per=progress_per, trim_rule=trim_rule)
        report = self.prepare_vocab(update=update, keep_raw_vocab=keep_raw_vocab,
                                    trim_rule=trim_rule, **kwargs)
        self.prepare_weights(update=update)
        return report

    def scan_vocab(self, corpus_iterable=None, corpus_file=None, progress_per=10000,
                   workers=None, trim_rule=None):
        """Count the corpus's words into ``raw_vocab`` (one pass); returns
        ``(total raw words, number of sentences)``. ``prepare_vocab`` then applies the rules."""
        corpus = _corpus(corpus_iterable, corpus_file)
        counts, total_words, n_sentences = vocab.scan_vocab(corpus, self.max_vocab_size,
                                                            trim_rule)
        logger.info("collected %i word types from a corpus of %i raw words and %i sentences",
                    len(counts), total_words, n_sentences)
        self.corpus_count, self.corpus_total_words = n_sentences, total_words
        self.raw_vocab = counts
        return total_words, n_sentences

    def build_vocab_from_freq(self, word_freq, keep_raw_vocab=False, corpus_count=None,
                              trim_rule=None, update=False):
        """Vocabulary from a ``{word: count}`` dict instead of a corpus."""
        self.raw_vocab = dict(word_freq)
        self.corpus_count = corpus_count or 0
        self.corpus_total_words = int(sum(self.raw_vocab.values()))
        report = self.prepare_vocab(update=update, keep_raw_vocab=keep_raw_vocab,
                                    trim_rule=trim_rule)
        self.prepare_weights(update=update)
        return report

    def prepare_vocab(self, update=False, keep_raw_vocab=False, trim_rule=None, min_count=None,
                      sample=None, dry_run=False):
        """Apply ``min_count``/``max_final_vocab`` and ``sample`` to the counted words."""
        min_count = min_count or self.min_count
        sample = self.sample if sample is None else sample
        counts = self.raw_vocab
        self.effective_min_count = vocab.effective_min_count(counts, min_count,
                                                             self.max_final_vocab)
        kept = [w for w, c in counts.items()
                if vocab.keep_word(w, c, self.effective_min_count, trim_rule)]
        new_counts = np.array([counts[w] for w in kept], dtype=np.int64)
        # As gensim: the subsampling thresholds come from this corpus's counts (on update,
        # the new corpus's alone); words absent from it keep theirs.
        retained_total = int(new_counts.sum())
        kept_ints, downsampled = vocab.sample_ints(new_counts, sample, retained_total)
        if update:
            if not len(self.wv):
                raise RuntimeError("build_vocab(update=True) needs a model that already has a "
                                   "vocabulary: call build_vocab(corpus) first")
            new_words = [w for w in kept if w not in self.wv.key_to_index]
            keys = self.wv.index_to_key + new_words
            index = dict(self.wv.key_to_index)
            index.update((w, len(self.wv.index_to_key) + i) for i, w in enumerate(new_words))
            rows = np.array([index[w] for w in kept], dtype=np.int64)
            # every known word's count grows by its count here, even under min_count (gensim)
            word_counts = np.concatenate([self.wv.expandos["count"],
                                          np.zeros(len(new_words), np.int64)])
            word_counts += np.array([counts.get(w, 0) for w in keys], dtype=np.int64)
            sample_ints = np.concatenate([self.wv.expandos["sample_int"],
                                          np.zeros(len(new_words), np.uint32)])
            sample_ints[rows] = kept_ints
            retained = kept
        else:
            self._empty_vocab_reason = None
            if len(kept) < 2:
                self._warn_small_vocab(counts, kept)
            order = np.arange(len(kept))
            if self.sorted_vocab and kept:
                by_count = vocab.sorted_by_count(kept, counts)
                position = {w: i for i, w in enumerate(kept)}
                order = np.array([position[w] for w in by_count], dtype=np.int64)
            keys = [kept[i] for i in order]
            word_counts, sample_ints = new_counts[order], kept_ints[order]
            retained = keys
            self.min_count, self.sample = min_count, sample
        report = {"drop_unique": len(counts) - len(kept), "retain_total": retained_total,
                  "downsample_total": int(downsampled), "num_retained_words": len(retained)}
        logger.info("min_count=%d keeps %d of %d word types (%d of %d words); sample=%g "
                    "leaves about %d words", self.effective_min_count, len(kept), len(counts),
                    retained_total, sum(counts.values()), sample or 0, downsampled)
        if dry_run:
            return report
        self.wv.index_to_key = list(keys)
        self.wv.key_to_index = {k: i for i, k in enumerate(keys)}
        self.wv.expandos["count"] = word_counts
        self.wv.expandos["sample_int"] = sample_ints
        if not keep_raw_vocab:
            self.raw_vocab = {}
        self._make_output_tables()
        return report

    def _warn_small_vocab(self, counts, kept):
        """A vocabulary of one word (nothing to learn) or none (nothing to train): say why,
        with the counts; ``train`` refuses an empty one (gensim warns here too)."""
        size = f"{sum(counts.values())} words, {len(counts)} distinct"
        if kept:
            logger.warning("Word2Vec: only one word, %r, occurs at least min_count=%d times in "
                           "the corpus (%s): word vectors need at least two words to learn "
                           "anything; lower min_count or give a larger corpus",
                           kept[0], self.effective_min_count, size)
            return
        if not counts:
            reason = ("the corpus holds no words (an empty iterable, or a generator that was "
                      "already used up: pass a re-iterable corpus, e.g. a list or LineSentence)")
        else:
            word, top = max(counts.items(), key=lambda kv: kv[1])
            reason = (f"no word occurs at least min_count={self.effective_min_count} times in "
                      f"the corpus ({size}; the most frequent, {word!r}, occurs {top} times): "
                      f"lower min_count (and max_final_vocab) or give a larger corpus")
        self._empty_vocab_reason = reason
        logger.warning("Word2Vec: the vocabulary is empty: %s", reason)

    def _make_output_tables(self):
        counts = self.wv.expandos["count"]
        self.cum_table = vocab.cum_table(counts, self.ns_exponent) if self.negative else None
        if self.negative and len(counts):
            weights = np.asarray(counts, dtype=np.float64) ** float(self.ns_exponent)
            self._noise_keep, self._noise_alias = kernels.alias_table(weights)
        if self.hs:
            self._points, self._codes, self._code_lens = vocab.huffman_codes(counts)
            # gensim keeps each word's Huffman code and path as the vecattrs 'code'/'point'
            for name, table in (("code", self._codes), ("point", self._points)):
                per_word = np.empty(len(counts), dtype=object)
                per_word[:] = [table[i, :n] for i, n in enumerate(self._code_lens)]
                self.wv.expandos[name] = per_word

    def prepare_weights(self, update=False):
        """Fresh weights (uniform in ``±1/vector_size``, zero output layers), or grown ones."""
        n, old = len(self.wv), len(self.wv.vectors) if update else 0
        rng = np.random.default_rng(seed=self.seed)
        fresh = rng.random((n, self.vector_size), dtype=np.float32) * 2.0 - 1.0
        fresh /= self.vector_size
        if update:
            fresh[:old] = self.wv.vectors
        self.wv.vectors = fresh
        self.wv.norms = None
        for name, enabled in (("syn1neg", self.negative), ("syn1", self.hs)):
            grown = np.zeros((n, self.layer1_size), dtype=np.float32) if enabled else None
            prior = getattr(self, name)
            if enabled and update and prior is not None:
                grown[:len(prior)] = prior
            setattr(self, name, grown)

    # -- training -------------------------------------------------------------------------------
    def train(self, corpus_iterable=None, corpus_file=None, total_examples=None,
              total_words=None, epochs=None, start_alpha=None, end_alpha=None, word_count=0,
              queue_factor=2, report_delay=1.0, compute_loss=False, callbacks=(),
              sentences=None, **kwargs):
        """Train (or continue training) on a corpus; returns ``(trained words, raw words)``.
        As in gensim, give ``epochs`` and ``total_examples`` (or ``total_words``) explicitly:
        ``model.train(corpus, total_examples=model.corpus_count, epochs=model.epochs)``."""
        corpus = _corpus(corpus_iterable if corpus_iterable is not None else sentences,
                         corpus_file)
        _check_reiterable(corpus, epochs or 1)
        if not len(self.wv) and self._empty_vocab_reason:
            raise EmptyVocabularyError(f"you must first build the vocabulary: it is empty "
                                       f"because {self._empty_vocab_reason}")
        if not len(self.wv) or self.wv.vectors.shape[0] != len(self.wv):
            raise RuntimeError("you must first build the vocabulary: model.build_vocab(corpus) "
                               "before model.train(...)")
        if epochs is None:
            raise ValueError("train() needs an explicit epochs (e.g. epochs=model.epochs)")
        if not total_examples and not total_words:
            raise ValueError("train() needs total_examples (e.g. model.corpus_count) or "
                             "total_words for the learning-rate decay and progress")
        self.alpha = start_alpha or self.alpha
        self.min_alpha = end_alpha or self.min_alpha
        if self.alpha > self.min_alpha_yet_reached:
            logger.warning("Effective 'alpha' higher than previous training cycles")
        self.epochs = int(epochs)
        self.compute_loss = bool(compute_loss)
        self.running_training_loss = 0.0
        trainer = self._trainer()
        for cb in callbacks:
            _call(cb, "on_train_begin", self)
        trained = raw = 0
        start = time.perf_counter()
        cache = w2v_training.TokenCache(corpus)
        try:
            for epoch in range(self.epochs):
                for cb in callbacks:
                    _call(cb, "on_epoch_begin", self)
                t, r = w2v_training.train_epoch(self, trainer, corpus, epoch, total_examples,
                                                total_words, queue_factor, report_delay, cache)
                trained += t
                raw += r
                for cb in callbacks:
                    _call(cb, "on_epoch_end", self)
        finally:  # an error or Ctrl-C mid-training still leaves the model plain arrays
            trainer.finish()
        elapsed = time.perf_counter() - start
        self.total_train_time += elapsed
        self.train_count += 1
        self.wv.norms = None
        logger.info("training on %i raw words (%i effective words) took %.1fs, %.0f effective "
                    "words/s", raw, trained, elapsed, trained / max(elapsed, 1e-9))
        for cb in callbacks:
            _call(cb, "on_train_end", self)
        return trained, raw

    def _trainer(self):
        if self.device is None:
            return w2v_training.KernelTrainer(self)
        from kaffe.text.torch_trainer import TorchTrainer
        return TorchTrainer(self, self.device)

    def _next_alpha(self, epoch_progress, epoch):
        progress = (epoch + epoch_progress) / self.epochs
        alpha = max(self.min_alpha, self.alpha - (self.alpha - self.min_alpha) * progress)
        self.min_alpha_yet_reached = alpha
        return alpha

    def get_latest_training_loss(self):
        """The summed word2vec loss (``-log sigmoid`` of every positive and noise pair, or
        of every Huffman node) since the latest ``train()`` began, over all its epochs and
        jobs; needs ``compute_loss=True``. gensim means the same sum, but its jobs write it
        back without a lock, so with several workers gensim loses part of it (about a third
        is left with 3 workers); kaffe's is the whole sum at any worker count, and equals
        gensim's in expectation with ``workers=1``."""
        return self.running_training_loss

    # -- using the trained model --------------------------------------------------------------
    def score(self, sentences, total_sentences=int(1e6), chunksize=100, queue_factor=2,
              report_delay=1):
        """Log-probability of each sentence (float32 array) under a hierarchical-softmax
        model (:mod:`kaffe.text.scoring`); ``total_sentences`` caps how many are read."""
        if not self.hs or self.syn1 is None:
            raise RuntimeError("score() is implemented for hierarchical softmax only, as in "
                               "gensim: train with hs=1 and negative=0 to use it")
        return scoring.score_sentences(self, sentences, total_sentences)

    def predict_output_word(self, context_words_list, topn=10):
        """The ``topn`` likeliest centre words for the context words (words or row numbers),
        as ``[(word, probability), ...]``; None when none of them is known. Needs a
        negative-sampling model (``syn1neg``)."""
        if not self.negative:
            raise RuntimeError("predict_output_word() is implemented for negative sampling "
                               "only, as in gensim: train with negative > 0 to use it")
        if self.syn1neg is None or not len(self.wv):
            raise RuntimeError("predict_output_word() needs the trained output weights "
                               "(syn1neg), which this model does not have (vectors loaded from "
                               "a word2vec file carry none): train or load a full model")
        return scoring.predict_output_word(self, context_words_list, topn)

    def reset_from(self, other_model):
        """Take ``other_model``'s vocabulary (words, counts, tables) and start fresh weights,
        to train on another corpus with the same vocabulary."""
        self.wv.index_to_key = other_model.wv.index_to_key
        self.wv.key_to_index = other_model.wv.key_to_index
        self.wv.expandos = other_model.wv.expandos
        self.corpus_count = other_model.corpus_count
        self.corpus_total_words = other_model.corpus_total_words
        self._make_output_tables()
        self.prepare_weights()

    # -- gensim 3 style shortcuts to ``wv`` ----------------------------------------------------
    def __getitem__(self, words):
        return self.wv[words]

    def __contains__(self, word):
        return word in self.wv

    def most_similar(self, *args, **kwargs):
        return self.wv.most_similar(*args, **kwargs)

    def most_similar_cosmul(self, *args, **kwargs):
        return self.wv.most_similar_cosmul(*args, **kwargs)

    def similar_by_word(self, *args, **kwargs):
        return self.wv.similar_by_word(*args, **kwargs)

    def similar_by_vector(self, *args, **kwargs):
        return self.wv.similar_by_vector(*args, **kwargs)

    def similarity(self, w1, w2):
        return self.wv.similarity(w1, w2)

    def n_similarity(self, ws1, ws2):
        return self.wv.n_similarity(ws1, ws2)

    def doesnt_match(self, words):
        return self.wv.doesnt_match(words)

    def evaluate_word_analogies(self, *args, **kwargs):
        return self.wv.evaluate_word_analogies(*args, **kwargs)

    def evaluate_word_pairs(self, *args, **kwargs):
        return self.wv.evaluate_word_pairs(*args, **kwargs)

    # -- files ----------------------------------------------------------------------------------
    def save(self, fname, separately=None, sep_limit=None, ignore=frozenset(),
             pickle_protocol=None):
        """Write the model: ``fname`` (JSON: hyper-parameters, vocabulary, counts) and
        ``fname.<array>.npy`` beside it. Nothing is pickled. (gensim's ``separately``,
        ``sep_limit``, ``ignore`` and ``pickle_protocol`` are accepted and have nothing to
        choose: kaffe always writes every array to its own ``.npy`` file, mmap-able.)"""
        arrays = {"vectors": self.wv.vectors, "sample_int": self.wv.expandos["sample_int"]}
        for name in ("syn1neg", "syn1"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        device = self.device if self.device is None else str(self.device)
        meta = {"format": FORMAT_NAME, "version": 1,
                "params": {p: (device if p == "device" else getattr(self, p)) for p in PARAMS},
                "index_to_key": self.wv.index_to_key,
                "count": self.wv.expandos["count"].tolist(),
                "corpus_count": self.corpus_count, "corpus_total_words": self.corpus_total_words,
                "train_count": self.train_count, "random_state": _random_state(self.random)}
        _save_arrays(fname, arrays, meta)

    @_ClassOnly
    def load(cls, fname, mmap=None):
        """Read a model written by ``save``; ``mmap='r'`` maps its arrays read-only. Called
        on the class: ``model = Word2Vec.load(path)``."""
        try:
            meta, arrays = _load_arrays(fname, FORMAT_NAME, mmap)
        except ValueError as error:
            if " holds a " not in str(error):
                raise
            raise WrongModelFileError(f"{error}: load it with the class that saved it (e.g. "
                                      f"KeyedVectors.load for model.wv.save)") from None
        model = cls(**meta["params"])
        model.wv.index_to_key = list(meta["index_to_key"])
        model.wv.key_to_index = {k: i for i, k in enumerate(model.wv.index_to_key)}
        model.wv.vectors = arrays["vectors"]
        model.wv.expandos = {"count": np.asarray(meta["count"], dtype=np.int64),
                             "sample_int": np.asarray(arrays["sample_int"])}
        model.syn1neg, model.syn1 = arrays.get("syn1neg"), arrays.get("syn1")
        model.corpus_count = meta["corpus_count"]
        model.corpus_total_words = meta["corpus_total_words"]
        model.train_count = meta["train_count"]
        model.random.set_state(tuple(meta["random_state"][:1]) +
                               (np.asarray(meta["random_state"][1], np.uint32),) +
                               tuple(meta["random_state"][2:]))
        model._make_output_tables()
        return model


def _corpus(corpus_iterable, corpus_file):
    if corpus_iterable is not None and corpus_file is not None:
        raise TypeError("give either sentences (corpus_iterable) or corpus_file, not both")
    if corpus_file is not None:
        if not os.path.isfile(corpus_file):
            raise FileNotFoundError(f"corpus_file {corpus_file!r} does not exist")
        return LineSentence(corpus_file)
    if corpus_iterable is None:
        raise TypeError("give a corpus: sentences (an iterable of lists of words) or "
                        "corpus_file (a path)")
    if isinstance(corpus_iterable, str):
        raise TypeError(f"sentences must be an iterable of lists of words, received the string "
                        f"{corpus_iterable[:40]!r}; for a file use corpus_file= or LineSentence")
    return corpus_iterable


def _check_reiterable(corpus, passes):
    """A generator or iterator is used up after one pass: refuse it when more are needed."""
    if passes > 1 and isinstance(corpus, collections.abc.Iterator):
        raise TypeError(
            f"sentences is a one-shot {type(corpus).__name__}, but training reads the corpus "
            f"{passes} times (vocabulary + epochs): pass a list, or a re-iterable such as "
            f"LineSentence(path) or a class whose __iter__ opens the data again")


def _renamed(old, old_value, new, new_value, default):
    """Accept gensim 3's spelling ``old`` for gensim 4's ``new``."""
    if old_value is None:
        return new_value
    if new_value != default and new_value != old_value:
        raise TypeError(f"both {old}={old_value} (gensim 3 name) and {new}={new_value} given; "
                        f"use {new} only")
    return old_value


def _check_positive(**values):
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"Word2Vec expected a positive integer for {name}. "
                             f"Received: {name}={value!r}")


def _call(callback, method, model):
    fn = getattr(callback, method, None)
    if fn is not None:
        fn(model)


def _random_state(rs):
    name, keys, pos, has_gauss, cached = rs.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]
