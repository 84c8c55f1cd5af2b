"""Compiled word2vec training kernels (numba, ``nogil``): one call trains one job of sentences.

The algorithm is the original word2vec.c / gensim ``word2vec_inner`` one, pair by pair:

* frequent-word subsampling: word ``w`` is kept when ``sample_int[w] >= random_uint32``
  (``sample_int = P(keep) * 2**32``), drawn from word2vec.c's 48-bit linear congruential
  generator ``r = r * 25214903917 + 11 mod 2**48``;
* dynamic window: position ``i`` looks ``window - b`` words either side, ``b`` uniform in
  ``[0, window)`` (``shrink_windows=False``: always ``window``);
* skip-gram: for each context word ``c`` of centre ``w``, ``syn0[c]`` predicts ``w``;
  CBOW: the sum (``cbow_mean``: mean) of the context vectors predicts ``w``;
* negative sampling draws ``negative`` noise words from the ``count**ns_exponent`` table
  by Walker's alias method in O(1) (the distribution of word2vec.c's unigram table and of
  gensim's bisected ``cum_table``), hierarchical softmax walks ``w``'s Huffman path;
* sigmoid from word2vec.c's 1000-entry table on ``(-6, 6)``; dot products outside that range
  give no update, as in word2vec.c.

Several threads call these kernels at once on shared ``syn0``/``syn1neg``/``syn1`` arrays
without locks (Hogwild, as word2vec.c and gensim do): the kernels release the GIL. Each thread
may keep its own copies of output rows (:func:`own_rows`; why: :mod:`kaffe.text.w2v_training`),
which the kernels address by row number like shared rows and publish row by row.
"""
import math

import numpy as np
from kaffe.text.jit import njit

EXP_TABLE_SIZE = 1000
MAX_EXP = 6.0
TABLE_STEP = float(EXP_TABLE_SIZE // int(MAX_EXP) // 2)
LCG_MULT = np.uint64(25214903917)
LCG_ADD = np.uint64(11)
LCG_MASK = np.uint64((1 << 48) - 1)
SHIFT16 = np.uint64(16)
NOT_OWN = -2**30  # the update count of a row without a copy: never reaches a publish


def _sigmoid_tables():
    """word2vec.c's ``expTable`` (sigmoid at 1000 points of (-6, 6)) and its log."""
    x = (np.arange(EXP_TABLE_SIZE, dtype=np.float64) / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP
    e = np.exp(x).astype(np.float32)
    sig = (e / (e + np.float32(1))).astype(np.float32)
    return sig, np.log(sig).astype(np.float32)


EXP_TABLE, LOG_TABLE = _sigmoid_tables()


@njit(nogil=True, cache=True, inline="always")
def _next(r):
    return (r * LCG_MULT + LCG_ADD) & LCG_MASK


@njit(nogil=True, cache=True, inline="always")
def _draw(keep, alias, r):
    """A word from the noise distribution by Walker's alias method, O(1), from one 32-bit
    random number ``u`` (one generator step, as word2vec.c's table draw): ``u * n`` picks
    slot ``u * n >> 32``; its low 32 bits, uniform too, decide between the slot and its alias
    (kept with probability ``keep[slot] / 2**32``). Returns (word, new random state)."""
    prod = (r >> SHIFT16) * np.uint64(keep.shape[0])
    slot = np.int64(prod >> np.uint64(32))
    if (prod & np.uint64(0xFFFFFFFF)) < np.uint64(keep[slot]):
        word = slot
    else:
        word = np.int64(alias[slot])
    return word, _next(r)


@njit(nogil=True, cache=True)
def alias_table(weights):
    """Vose's alias tables for sampling index ``i`` with probability ``weights[i] / sum``:
    ``(keep as uint32 thresholds out of 2**32, alias)``."""
    n = weights.shape[0]
    scaled = weights / weights.sum() * n
    keep = np.zeros(n, dtype=np.uint32)
    alias = np.arange(n).astype(np.int32)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    ns = nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        nl -= 1
        g = large[nl]
        keep[s] = np.uint32(min(scaled[s] * 4294967296.0, 4294967295.0))
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            small[ns] = g
            ns += 1
        else:
            large[nl] = g
            nl += 1
    for i in range(nl):
        keep[large[i]] = np.uint32(4294967295)
    for i in range(ns):
        keep[small[i]] = np.uint32(4294967295)
    return keep, alias


@njit(nogil=True, cache=True, fastmath=True, inline="always")
def _dot(a, ra, b, rb, size):
    s = np.float32(0.0)
    for d in range(size):
        s += a[ra, d] * b[rb, d]
    return s


@njit(nogil=True, cache=True, fastmath=True, inline="always")
def _sigmoid_index(f):
    # word2vec.c's integer arithmetic: 1000 / 6 / 2 == 83 (not 83.3), kept so that updates
    # equal word2vec.c's and gensim's.
    return int((f + MAX_EXP) * TABLE_STEP)


# Vectors are passed as (2-D array, row) rather than as row views: a view costs an atomic
# reference-count update, and threads sharing ``syn0`` would fight over that counter.

@njit(nogil=True, cache=True, inline="always")
def _row(first, n_own, shift, idx):
    """The matrix row where this thread keeps row ``idx``: its copy ``idx + shift`` when
    ``first <= idx < first + n_own`` (see :func:`own_rows`), else ``idx`` itself. Arithmetic,
    not a table look-up: a load here would lengthen every update's chain of dependent loads;
    ``n_own`` tested first: with no copies (one worker) a branch always taken the same way."""
    if n_own and np.uint64(idx - first) < np.uint64(n_own):
        return idx + shift
    return idx


@njit(nogil=True, cache=True, fastmath=True)
def _publish_row(matrix, window, base, s):
    """Add what this thread changed in its copy of hot row ``s`` (copy - ``base``) to the
    shared row and restart the copy from the result, which holds the other threads' changes.
    A copy this thread did not change only restarts: writing the shared row back unchanged
    could overwrite another thread's publish landing between the read and the write."""
    shared = window[0] + s
    mine = shared + window[2]
    changed = False
    for k in range(matrix.shape[1]):
        if matrix[mine, k] != base[s, k]:
            changed = True
            break
    if changed:
        for k in range(matrix.shape[1]):
            v = matrix[shared, k] + (matrix[mine, k] - base[s, k])
            matrix[shared, k] = v
            matrix[mine, k] = v
            base[s, k] = v
    else:
        for k in range(matrix.shape[1]):
            v = matrix[shared, k]
            matrix[mine, k] = v
            base[s, k] = v


@njit(nogil=True, cache=True, fastmath=True)
def own_rows_flush(matrix, own):
    """Publish the copies on this thread's pending list (rows updated as many times as their
    ``limits`` since their last publish; the training steps only list them: a call there,
    even one never made, measured 2-3x slower steps)."""
    window, base, counts, pending, limits = own
    for i in range(1, pending[0] + 1):
        s = pending[i] - window[0]
        _publish_row(matrix, window, base, s)
        counts[pending[i]] = -limits[s]
    pending[0] = 0


# _negative_step and _hs_step repeat the same output-row update on purpose: moving it into one
# shared inlined function measured 2.3x slower skip-gram (855k -> 364k words/s, 1 worker).
@njit(nogil=True, cache=True, fastmath=True)
def _negative_step(l1, r1, target, syn1neg, first, n_own, shift, counts, pending, work,
                   negative, noise_keep, noise_alias, alpha, r, exp_table, log_table,
                   compute_loss, loss):
    """One positive and ``negative`` noise updates of ``syn1neg`` from input vector
    ``l1[r1]``; the input's gradient accumulates in ``work[0]``. Returns the random state."""
    size = l1.shape[1]
    for d in range(negative + 1):
        if d == 0:
            idx = target
            label = np.float32(1.0)
        else:
            idx, r = _draw(noise_keep, noise_alias, r)
            if idx == target:
                continue
            label = np.float32(0.0)
        row = _row(first, n_own, shift, idx)
        f = _dot(l1, r1, syn1neg, row, size)
        if f <= -MAX_EXP or f >= MAX_EXP:
            continue
        g = (label - exp_table[_sigmoid_index(f)]) * alpha
        if compute_loss:
            fl = f if d == 0 else -f
            if -MAX_EXP < fl < MAX_EXP:
                loss[0] -= log_table[_sigmoid_index(fl)]
        for k in range(size):
            work[0, k] += g * syn1neg[row, k]
        for k in range(size):
            syn1neg[row, k] += g * l1[r1, k]
        if n_own:  # count the update (up from -limit); the last before a publish: list it
            c = counts[idx] + 1
            counts[idx] = c
            if c == 0:
                p = pending[0] + 1
                pending[0] = p
                pending[p] = idx
    return r


@njit(nogil=True, cache=True, fastmath=True)
def _hs_step(l1, r1, target, syn1, first, n_own, shift, counts, pending, work,
             points, codes, code_lens, alpha, exp_table, log_table, compute_loss, loss):
    """Hierarchical-softmax updates along ``target``'s Huffman path."""
    size = l1.shape[1]
    for b in range(code_lens[target]):
        node = np.int64(points[target, b])
        row = _row(first, n_own, shift, node)
        f = _dot(l1, r1, syn1, row, size)
        if f <= -MAX_EXP or f >= MAX_EXP:
            continue
        code = codes[target, b]
        g = (np.float32(1 - code) - exp_table[_sigmoid_index(f)]) * alpha
        if compute_loss:
            fl = f if code == 0 else -f
            if -MAX_EXP < fl < MAX_EXP:
                loss[0] -= log_table[_sigmoid_index(fl)]
        for k in range(size):
            work[0, k] += g * syn1[row, k]
        for k in range(size):
            syn1[row, k] += g * l1[r1, k]
        if n_own:
            c = counts[node] + 1
            counts[node] = c
            if c == 0:
                p = pending[0] + 1
                pending[0] = p
                pending[p] = node


@njit(nogil=True, cache=True)
def _subsample(tokens, sentence_ends, sample_ints, use_sample, r, kept, kept_ends):
    """Drop unknown words (``-1``) and subsampled frequent words; returns (#kept words,
    #sentences, random state). ``kept_ends[s]`` is the end of sentence ``s`` in ``kept``."""
    n = 0
    n_sent = 0
    start = 0
    for s in range(sentence_ends.shape[0]):
        end = sentence_ends[s]
        before = n
        for t in range(start, end):
            w = tokens[t]
            if w < 0:
                continue
            if use_sample:
                keep = np.uint64(sample_ints[w]) >= (r >> SHIFT16)
                r = _next(r)
                if not keep:
                    continue
            kept[n] = w
            n += 1
        start = end
        if n > before:
            kept_ends[n_sent] = n
            n_sent += 1
    return n, n_sent, r


@njit(nogil=True, cache=True, fastmath=True)
def own_rows_take(matrix, own):
    """Start this thread's copies of its hot rows from the shared rows."""
    window, base, counts, pending, limits = own
    pending[0] = 0
    for s in range(window[1]):
        counts[window[0] + s] = -limits[s]
        for k in range(matrix.shape[1]):
            matrix[window[0] + s + window[2], k] = base[s, k] = matrix[window[0] + s, k]


@njit(nogil=True, cache=True, fastmath=True)
def own_rows_publish(matrix, own):
    """Publish every copied row (:func:`_publish_row`): the thread's last act on them."""
    window, base, counts, pending, limits = own
    for s in range(window[1]):
        _publish_row(matrix, window, base, s)
        counts[window[0] + s] = -limits[s]
    pending[0] = 0


@njit(nogil=True, cache=True, fastmath=True)
def train_job(tokens, sentence_ends, sample_ints, use_sample, syn0, syn1neg, syn1, own1neg,
              own1, noise_keep, noise_alias, points, codes, code_lens,
              lockf, sg, hs, negative, window, shrink_windows, cbow_mean, alpha, seed,
              compute_loss, loss):
    """Train on one job: ``tokens`` (word indices, ``-1`` unknown) split into sentences ending
    at ``sentence_ends``. Returns the number of words trained on (after subsampling).

    ``own1neg``/``own1`` say where this thread keeps each output row (``syn1neg``, ``syn1``):
    ``(window, base, counts, pending)`` from :func:`own_rows`, taken before its first job
    (:func:`own_rows_take`). A copied row is published each time this thread has updated it
    its ``limits`` times, and all of them by :func:`own_rows_publish` when the thread is done."""
    size = syn0.shape[1]
    r = np.uint64(seed) & LCG_MASK
    kept = np.empty(tokens.shape[0], dtype=np.int32)
    kept_ends = np.empty(sentence_ends.shape[0], dtype=np.int64)
    n, n_sent, r = _subsample(tokens, sentence_ends, sample_ints, use_sample, r, kept, kept_ends)
    work = np.zeros((1, size), dtype=np.float32)
    neu1 = np.zeros((1, size), dtype=np.float32)
    exp_table = EXP_TABLE
    log_table = LOG_TABLE
    n_lockf = lockf.shape[0]
    first1neg, n_own1neg, shift1neg = own1neg[0][0], own1neg[0][1], own1neg[0][2]
    counts1neg, pending1neg = own1neg[2], own1neg[3]
    first1, n_own1, shift1 = own1[0][0], own1[0][1], own1[0][2]
    counts1, pending1 = own1[2], own1[3]
    copies = n_own1neg > 0 or n_own1 > 0
    start = 0
    for s in range(n_sent):
        end = kept_ends[s]
        for i in range(start, end):
            if copies and pending1neg[0]:
                own_rows_flush(syn1neg, own1neg)
            if copies and pending1[0]:
                own_rows_flush(syn1, own1)
            b = 0
            if shrink_windows:
                b = int((r >> SHIFT16) % np.uint64(window))
                r = _next(r)
            j0 = max(start, i - window + b)
            j1 = min(end, i + window + 1 - b)
            word = kept[i]
            if sg:
                for j in range(j0, j1):
                    if j == i:
                        continue
                    ctx = kept[j]
                    for k in range(size):
                        work[0, k] = 0.0
                    if hs:
                        _hs_step(syn0, ctx, word, syn1, first1, n_own1, shift1, counts1,
                                 pending1, work, points, codes, code_lens,
                                 alpha, exp_table, log_table, compute_loss, loss)
                    if negative:
                        r = _negative_step(syn0, ctx, word, syn1neg, first1neg, n_own1neg,
                                           shift1neg, counts1neg, pending1neg, work,
                                           negative, noise_keep, noise_alias, alpha, r,
                                           exp_table, log_table, compute_loss, loss)
                    lf = lockf[ctx % n_lockf]
                    for k in range(size):
                        syn0[ctx, k] += lf * work[0, k]
            else:
                for k in range(size):
                    neu1[0, k] = 0.0
                count = 0
                for j in range(j0, j1):
                    if j == i:
                        continue
                    ctx = kept[j]
                    for k in range(size):
                        neu1[0, k] += syn0[ctx, k]
                    count += 1
                if count == 0:
                    continue
                inv = np.float32(1.0) / np.float32(count)
                if cbow_mean:
                    for k in range(size):
                        neu1[0, k] *= inv
                for k in range(size):
                    work[0, k] = 0.0
                if hs:
                    _hs_step(neu1, 0, word, syn1, first1, n_own1, shift1, counts1, pending1,
                             work, points, codes, code_lens, alpha, exp_table,
                             log_table, compute_loss, loss)
                if negative:
                    r = _negative_step(neu1, 0, word, syn1neg, first1neg, n_own1neg, shift1neg,
                                       counts1neg, pending1neg, work, negative,
                                       noise_keep, noise_alias, alpha, r, exp_table, log_table,
                                       compute_loss, loss)
                if not cbow_mean:
                    for k in range(size):
                        work[0, k] *= inv
                for j in range(j0, j1):
                    if j == i:
                        continue
                    ctx = kept[j]
                    lf = lockf[ctx % n_lockf]
                    for k in range(size):
                        syn0[ctx, k] += lf * work[0, k]
        start = end
    return n


@njit(nogil=True, cache=True)
def make_examples(tokens, sentence_ends, sample_ints, use_sample, window, shrink_windows, seed):
    """The training examples of one job, for batched (PyTorch) training: after subsampling,
    ``centres[n]`` and its context words ``contexts[n, :]`` (``-1`` padded to ``2*window``),
    with the same dynamic window as ``train_job``."""
    r = np.uint64(seed) & LCG_MASK
    kept = np.empty(tokens.shape[0], dtype=np.int32)
    kept_ends = np.empty(sentence_ends.shape[0], dtype=np.int64)
    n, n_sent, r = _subsample(tokens, sentence_ends, sample_ints, use_sample, r, kept, kept_ends)
    centres = np.empty(n, dtype=np.int64)
    contexts = np.full((n, 2 * window), -1, dtype=np.int64)
    start = 0
    for s in range(n_sent):
        end = kept_ends[s]
        for i in range(start, end):
            b = 0
            if shrink_windows:
                b = int((r >> SHIFT16) % np.uint64(window))
                r = _next(r)
            c = 0
            for j in range(max(start, i - window + b), min(end, i + window + 1 - b)):
                if j != i:
                    contexts[i, c] = kept[j]
                    c += 1
            centres[i] = kept[i]
        start = end
    return centres, contexts


def own_rows(first, n_own, at, n_rows, size, limits=1):
    """A thread's copies of rows ``first .. first + n_own - 1`` of a shared ``(n_rows, size)``
    matrix, kept at rows ``at ..`` of the same buffer, each published after every ``limits``
    (one number, or one per copied row) updates, as the kernels take them: ``(window, base,
    counts, pending, limits)``. ``window`` is int64 ``[first, n_own, at - first]``; ``base``
    holds the copies' values at the latest take or publish; ``counts`` (int32, per matrix
    row) counts a copied row's updates up from ``-limit`` to 0, the update that lists it for
    a publish (rows without a copy start so low that they never get there); ``pending`` the
    rows listed (their number first)."""
    window = np.array([first, n_own, at - first], dtype=np.int64)
    limits = np.broadcast_to(np.asarray(limits, dtype=np.int32), (n_own,)).copy()
    if n_own and limits.min() < 1:
        raise ValueError(f"own_rows: each row's publish limit must be >= 1 update; received "
                         f"{limits.min()}")
    counts = np.full(n_rows if n_own else 0, NOT_OWN, dtype=np.int32)
    counts[first:first + n_own] = -limits
    return (window, np.zeros((n_own, size), dtype=np.float32), counts,
            np.zeros(n_own + 1, np.int32), limits)


def no_own_rows(size):
    """Copies of no row: every row of a matrix is used in place."""
    return own_rows(0, 0, 0, 0, size)


def warm_up():
    """Compile the kernels once (cached on disk by numba afterwards)."""
    v, d = 4, 3
    syn = np.zeros((v, d), dtype=np.float32)
    tokens = np.array([0, 1, 2, 3, -1, 1], dtype=np.int32)
    ends = np.array([4, 6], dtype=np.int64)
    sample = np.full(v, 2**32 - 1, dtype=np.uint32)
    keep, alias = alias_table(np.array([4.0, 3.0, 2.0, 1.0]))
    points = np.zeros((v, 2), dtype=np.uint32)
    codes = np.zeros((v, 2), dtype=np.uint8)
    lens = np.ones(v, dtype=np.int32)
    lockf = np.ones(1, dtype=np.float32)
    loss = np.zeros(1, dtype=np.float64)
    own = no_own_rows(d)
    for sg in (0, 1):
        train_job(tokens, ends, sample, True, syn, syn.copy(), syn.copy(), own, own,
                  keep, alias, points, codes, lens, lockf, sg, 1, 2, 2, True, 1,
                  np.float32(0.025), 1, False, loss)
    make_examples(tokens, ends, sample, True, 2, True, 1)
    return math.isfinite(loss[0])
