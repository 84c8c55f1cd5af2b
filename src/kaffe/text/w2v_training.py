"""Word2Vec's training loop on the CPU: each epoch's corpus cut into jobs of ``batch_words``
words, which ``workers`` threads train on at once with the compiled kernels
(:mod:`kaffe.text.kernels`), sharing the weights lock-free as word2vec.c and gensim do.

Several workers sharing the weights fight over the output rows every job writes (the
frequent words' rows above all, which every positive pair of a frequent word and most noise
draws update): each write moves the row's cache lines to the writing core. So each worker
trains on its own copy of the output rows (up to ``OWN_BYTES``) and adds what it changed in
a row to the shared row each time it has updated that row a few dozen times (see
:class:`KernelTrainer`).
"""
import itertools
import logging
import queue
import threading
import time

import numpy as np

from kaffe.text import kernels

logger = logging.getLogger("kaffe.text.word2vec")  # the messages Word2Vec.train always gave


class _Lookup(dict):
    """``key_to_index`` whose misses give -1 (an unknown word), so lookups stay in C."""

    def __missing__(self, key):
        return -1


def _sentence_batches(corpus, batch_words):
    """``(sentences, #sentences, #words)`` groups of at most ``batch_words`` words (a longer
    sentence is a group of its own)."""
    batch, n_words = [], 0
    for sentence in corpus:
        length = len(sentence)
        if n_words + length <= batch_words or not batch:
            batch.append(sentence)
            n_words += length
            continue
        yield batch, len(batch), n_words
        batch, n_words = [sentence], length
    if batch:
        yield batch, len(batch), n_words


def _split_tail(jobs, n_tail):
    """Kept jobs (``((tokens, ends), #sentences, #words)``) with each of the last ``n_tail``
    cut in two at a sentence boundary: with several workers, the one that finishes first at
    the end of an epoch waits for the others' last jobs, so smaller last jobs wait less."""
    for index, job in enumerate(jobs):
        (tokens, ends), n_sentences, n_words = job
        if index < len(jobs) - n_tail or n_sentences < 2:
            yield job
            continue
        half = n_sentences // 2
        cut = int(ends[half - 1])
        yield (tokens[:cut], ends[:half]), half, cut
        yield (tokens[cut:], ends[half:] - cut), n_sentences - half, n_words - cut


def _with_alpha(model, jobs, epoch, total_examples, total_words):
    """``(job, #words, alpha)``: alpha decays linearly with the share of the epoch's
    sentences (or words) handed out before the job, as gensim's."""
    pushed_examples = pushed_words = 0
    for job, n_examples, n_words in jobs:
        progress = 0.0
        if pushed_examples:
            progress = pushed_examples / total_examples if total_examples else \
                pushed_words / total_words
        yield job, n_words, model._next_alpha(progress, epoch)
        pushed_examples += n_examples
        pushed_words += n_words


class TokenCache:
    """The jobs of an in-memory corpus (a list or tuple of sentences) as word rows, kept
    after the first epoch of a ``train()`` call so later epochs skip the word lookups.

    Turning words into rows is Python work the kernels wait for (~70 ns a word, a quarter of
    CBOW's kernel time; with several workers they take turns at the GIL for it). The
    vocabulary cannot change within ``train()``, so the rows are the same every epoch and
    training is bit-identical with or without the cache. A streamed corpus (a file) is read
    again each epoch, as gensim does."""

    def __init__(self, corpus):
        self.enabled = isinstance(corpus, (list, tuple))
        self.jobs = None        # [((tokens, ends), #sentences, #words)] once an epoch filled it
        self._filling = {}

    def put(self, index, rows, n_sentences, n_words):
        if self.enabled and self.jobs is None:
            self._filling[index] = (rows, n_sentences, n_words)

    def complete(self, n_jobs):
        """The epoch handed out ``n_jobs`` jobs and all were trained: keep them."""
        if self.enabled and self.jobs is None and len(self._filling) == n_jobs:
            self.jobs = [self._filling[i] for i in range(n_jobs)]
        self._filling = {}


def train_epoch(model, trainer, corpus, epoch, total_examples, total_words, queue_factor,
                report_delay, cache=None):
    """One pass: this thread groups sentences into jobs, ``trainer.threads`` workers
    train on them (``cache``: a :class:`TokenCache` that may hold the jobs as rows already).

    The kernels release the GIL, so workers train at once; what serialises them is the
    GIL they need between kernels. Turning words into rows is pure-Python work (~0.1-0.2
    us a word, a third of CBOW's kernel time). With one worker this thread does it, in
    step with the worker's kernel. With several, a feeding thread doing it would hold
    the GIL most of the time, and a worker back from a kernel waits for it (up to the
    5 ms switch interval, longer than a CBOW job of 10k words takes); so there the
    workers look their own jobs up (as gensim's do), overlapping the others' kernels."""
    get = _Lookup(model.wv.key_to_index).__getitem__
    n_threads = trainer.threads
    lookup_in_workers = n_threads > 1
    cache = cache or TokenCache(None)
    cached = cache.jobs is not None

    def to_rows(sentences, n_words):
        tokens = np.fromiter(map(get, itertools.chain.from_iterable(sentences)),
                             dtype=np.int32, count=n_words)
        return tokens, np.cumsum([len(s) for s in sentences], dtype=np.int64)
    jobs = queue.Queue(maxsize=max(queue_factor, 1) * n_threads)
    tally = {"trained": 0, "raw": 0, "sentences": 0}
    lock = threading.Lock()
    errors = []

    def work():
        state = trainer.thread_state()
        while True:
            job = jobs.get()
            if job is None:
                break
            if errors:
                continue
            index, batch, is_rows, raw, alpha, seed = job
            try:
                tokens, ends = batch if is_rows else to_rows(batch, raw)
                cache.put(index, (tokens, ends), len(ends), raw)
                n = trainer.train_job(state, tokens, ends, alpha, seed)
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller
                errors.append(err)
                continue
            with lock:
                tally["trained"] += n
                tally["raw"] += raw
                tally["sentences"] += len(ends)
        trainer.thread_done(state)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(n_threads)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    next_report = start + report_delay
    if cached:  # an epoch of a few jobs keeps them whole (each worker's share is a job)
        split = n_threads > 1 and len(cache.jobs) >= 4 * n_threads
        source = _split_tail(cache.jobs, n_threads if split else 0)
    else:
        source = _sentence_batches(corpus, model.batch_words)
    n_jobs = 0
    try:
        for batch, n_words, alpha in _with_alpha(model, source, epoch, total_examples,
                                                 total_words):
            if errors:
                break
            seed = (2**24) * model.random.randint(0, 2**24) + model.random.randint(0, 2**24)
            is_rows = cached or not lookup_in_workers
            if not cached and is_rows:
                batch = to_rows(batch, n_words)
            jobs.put((n_jobs, batch, is_rows, n_words, np.float32(alpha), seed))
            n_jobs += 1
            now = time.perf_counter()
            if now >= next_report:
                _log_progress(epoch, tally, total_examples, total_words, now - start,
                              alpha)
                next_report = now + report_delay
    finally:
        for _ in threads:
            jobs.put(None)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    cache.complete(n_jobs)
    elapsed = time.perf_counter() - start
    logger.info("EPOCH %d: training on %i raw words (%i effective words) took %.1fs, %.0f "
                "effective words/s", epoch + 1, tally["raw"], tally["trained"], elapsed,
                tally["trained"] / max(elapsed, 1e-9))
    if total_examples and tally["sentences"] != total_examples:
        logger.warning("EPOCH %d: supplied example count (%i) did not equal expected count "
                       "(%i)", epoch + 1, tally["sentences"], total_examples)
    return tally["trained"], tally["raw"]


def _log_progress(epoch, tally, total_examples, total_words, elapsed, alpha):
    done = 100.0 * (tally["sentences"] / total_examples if total_examples
                    else tally["raw"] / total_words)
    logger.info("EPOCH %d - PROGRESS: at %.2f%% examples, %.0f words/s, alpha %.5f",
                epoch + 1, done, tally["trained"] / max(elapsed, 1e-9), alpha)


#: with several workers, each keeps its own copy of the output rows (``syn1neg``, ``syn1``),
#: the most frequently trained first, as many as fit in this many bytes per matrix (the copy
#: and its value at the last publish): all of them for vocabularies of up to ~40,000 words
#: of 100 dimensions. Measured on 2 cores (enwiki, 9,000 words, skip-gram, each row published
#: every 64-128 updates), two workers' CPU time per word against one worker's: 0.92-0.97
#: copying all rows, 0.90 the hottest 4,096, 0.83 the hottest 2,048, 0.61 with no copies
#: (every row shared): the rows of middling frequency fight too.
OWN_BYTES = 32 * 2**20
#: ... and adds its changes in a copied row to the shared row each time it has updated the
#: copy a number of times (the row's limit): ``SYNC_SHARE`` of the row's expected updates in
#: an epoch (all workers) over ``workers - 1``, between ``MIN_SYNC_UPDATES[sg]`` and
#: ``MAX_SYNC_UPDATES``. Staleness changes what skip-gram learns: measured on enwiki (2
#: workers, WordSim-353 x100 / analogy % over seeds 1-3), negative sampling with every row
#: published after 16 of its updates: 24.6 / 1.98; after 64: 26.1 / 2.18; these limits
#: (32 for all but the ~250 busiest rows): 25.1 / 2.16 (from 16: 24.7 / 2.03); gensim's two
#: workers: 24.2 / 1.73 and 24.9 / 1.81 in two runs (one worker: kaffe 22.4 / 1.87, gensim
#: 22.7 / 1.63); hierarchical softmax 45.0 / 3.46, gensim 44.7 / 3.55. CBOW published every
#: 64 updates measured within gensim's seed spread (negative sampling 13.9 / 0.58 against
#: 14.2 / 0.92, hierarchical softmax 31.9 / 0.66 against 30.5 / 0.80; kaffe's one worker
#: 11.5 / 0.65 and 31.7 / 0.68). A publish costs about 2 updates' time (two rows that are
#: not in the cache): skip-gram workers with copies measured 7-10% slower per word from 16
#: updates on, 3-7% from 32 (one worker, interleaved).
SYNC_SHARE = 1 / 160
MIN_SYNC_UPDATES = {1: 32, 0: 64}  # by sg
MAX_SYNC_UPDATES = 64


class KernelTrainer:
    """Runs jobs through the compiled kernels on ``model.workers`` threads (Hogwild).

    With one worker the kernels update the model's arrays in place, as word2vec.c. With
    several, each worker also keeps a private copy of the output layer's rows (``syn1neg``,
    or ``syn1``'s Huffman inner nodes; the ``OWN_BYTES`` cap keeps the most trained ones: the
    frequent words' rows, the nodes nearest the root). It trains on its copies and, each time
    it has updated a copied row its limit's number of times (and for every row
    when its epoch's work ends), adds what it changed (copy minus the copy's value at the
    last publish) to the shared row and restarts its copy from the sum. A row thus moves by
    every worker's updates, as under Hogwild, but a worker sees the others' updates of a row
    up to a few dozen updates late instead of at once (Hogwild's staleness, made longer and
    bounded; quality measured as gensim's, see ``MIN_SYNC_UPDATES``). In exchange the rows'
    cache lines stop moving between cores at every update. The input rows (``syn0``)
    contend far less and stay shared.

    The copies live below the ``n`` shared rows in one buffer per matrix (the model's
    array is the buffer's first ``n`` rows while training), so the kernels address every
    row by index: the shared row or the worker's copy (:func:`kernels.own_rows`).
    """

    def __init__(self, model):
        self.model = model
        self.threads = model.workers
        m = model
        for name in ("syn1neg", "syn1"):
            arr = getattr(m, name)
            if arr is not None and not arr.flags.writeable:
                setattr(m, name, np.array(arr))
        if not m.wv.vectors.flags.writeable:
            m.wv.vectors = np.array(m.wv.vectors)
        dummy2 = np.zeros((1, 1), dtype=np.float32)
        if m.negative:
            self.noise_keep, self.noise_alias = m._noise_keep, m._noise_alias
        else:
            self.noise_keep, self.noise_alias = np.ones(1, np.uint32), np.zeros(1, np.int32)
        if m.hs:
            self.points, self.codes, self.code_lens = m._points, m._codes, m._code_lens
        else:
            self.points = np.zeros((1, 1), np.uint32)
            self.codes = np.zeros((1, 1), np.uint8)
            self.code_lens = np.zeros(1, np.int32)
        self.sample_ints = m.wv.expandos["sample_int"]
        self.use_sample = bool(m.sample)
        self.lock = threading.Lock()
        n_own = OWN_BYTES // (8 * m.vector_size) if self.threads > 1 else 0
        rates = update_rates(m, self.points, self.code_lens)
        self.outputs = {}  # name -> (buffer the kernels use, [own rows of each worker slot])
        for name, enabled in (("syn1neg", m.negative), ("syn1", m.hs)):
            if not enabled:
                self.outputs[name] = (dummy2, [kernels.no_own_rows(1)] * self.threads)
                continue
            limits = np.clip(np.rint(rates[name] * SYNC_SHARE / max(self.threads - 1, 1)),
                             MIN_SYNC_UPDATES[1 if m.sg else 0], MAX_SYNC_UPDATES)
            shared = getattr(m, name)
            buffer, owns = _with_own_rows(shared, rates[name], n_own, self.threads, limits)
            setattr(m, name, buffer[:len(shared)])
            self.outputs[name] = (buffer, owns)
        self.free_slots = list(range(self.threads))

    def thread_state(self):
        """A worker's loss accumulator and its own rows (a free slot of copies, taken now:
        a slot's copies from an earlier epoch may miss a whole epoch of the others' work,
        when its worker finished early)."""
        with self.lock:
            slot = self.free_slots.pop()
        for buffer, owns in self.outputs.values():
            kernels.own_rows_take(buffer, owns[slot])
        return slot, np.zeros(1, dtype=np.float64)

    def train_job(self, state, tokens, ends, alpha, seed):
        m = self.model
        slot, loss = state
        (syn1neg, owns1neg), (syn1, owns1) = self.outputs.values()
        return kernels.train_job(
            tokens, ends, self.sample_ints, self.use_sample, m.wv.vectors, syn1neg, syn1,
            owns1neg[slot], owns1[slot], self.noise_keep, self.noise_alias,
            self.points, self.codes, self.code_lens, m.wv.vectors_lockf, m.sg, m.hs,
            m.negative, m.window, m.shrink_windows, m.cbow_mean, alpha, seed, m.compute_loss,
            loss)

    def thread_done(self, state):
        """Publish the worker's copies, add its loss, free its slot."""
        slot, loss = state
        for buffer, owns in self.outputs.values():
            kernels.own_rows_publish(buffer, owns[slot])
        with self.lock:
            self.model.running_training_loss += float(loss[0])
            self.free_slots.append(slot)

    def finish(self):
        """Give the model plain arrays again (not views of the buffers with the copies)."""
        for name, (buffer, _) in self.outputs.items():
            shared = getattr(self.model, name)
            if shared is not None and shared.base is buffer:
                setattr(self.model, name, np.array(shared))


def _with_own_rows(shared, heat, n_own, n_slots, limits=1):
    """``(buffer, [own rows of slot 0, 1, ...])`` for a shared ``(n, size)`` matrix: each
    slot copies the ``n_own`` consecutive rows with the most ``heat`` (the vocabulary is
    sorted by count, so these are the most frequent words' rows, and the Huffman tree's
    inner nodes nearest the root are its last rows) and publishes row ``i`` after every
    ``limits[i]`` updates; the buffer is the matrix followed by each slot's copies (one
    spare row apart, so no cache line holds two slots' rows)."""
    n, size = shared.shape
    n_own = min(n_own, n)
    if n_own == 0:
        return shared, [kernels.no_own_rows(size)] * n_slots
    summed = np.concatenate([[0.0], np.cumsum(np.asarray(heat, dtype=np.float64))])
    first = int(np.argmax(summed[n_own:] - summed[:-n_own]))
    buffer = np.zeros((n + 1 + n_slots * (n_own + 1), size), dtype=np.float32)
    buffer[:n] = shared
    limits = np.broadcast_to(limits, (n,))[first:first + n_own]
    owns = [kernels.own_rows(first, n_own, n + 1 + slot * (n_own + 1), n, size, limits)
            for slot in range(n_slots)]
    return buffer, owns


def update_rates(model, points, code_lens):
    """How many times an epoch's training is expected to update each output row (all
    workers): ``{"syn1neg": ..., "syn1": ...}`` for the enabled ones. A training step (a
    (context, centre) pair for skip-gram, a centre word for CBOW; a word's ``window + 1``
    pairs on average with shrinking windows) updates the centre's row and ``negative`` noise
    rows, or the inner nodes on the centre's Huffman path."""
    counts = np.asarray(model.wv.expandos["count"], dtype=np.float64)
    keep = np.minimum(model.wv.expandos["sample_int"] / 2.0**32, 1.0) if model.sample else 1.0
    kept = counts * keep
    total = max(kept.sum(), 1.0)
    steps = kept.sum() * ((model.window + 1 if model.shrink_windows else 2 * model.window)
                          if model.sg else 1)
    rates = {}
    if model.negative:
        noise = counts ** float(model.ns_exponent)
        noise /= max(noise.sum(), 1e-300)
        rates["syn1neg"] = steps * (kept / total + model.negative * noise)
    if model.hs:
        rates["syn1"] = steps * node_traffic(kept / total, points, code_lens)
    return rates


def node_traffic(counts, points, code_lens):
    """How often each hierarchical-softmax inner node is trained: the summed counts of the
    words whose Huffman path passes through it."""
    on_path = np.arange(points.shape[1])[None, :] < code_lens[:, None]
    rows = np.repeat(np.arange(len(counts)), code_lens)
    traffic = np.zeros(len(counts), dtype=np.float64)
    np.add.at(traffic, points[on_path].astype(np.int64), counts[rows])
    return traffic
