"""Vocabulary for word2vec: counting, ``min_count``/``max_final_vocab`` trimming, subsampling
thresholds, the negative-sampling table and the Huffman tree (word2vec.c / gensim 4 rules)."""
import collections
import heapq
import logging

import numpy as np

logger = logging.getLogger(__name__)

#: ``trim_rule`` answers, as gensim's ``utils.RULE_*``.
RULE_DEFAULT, RULE_DISCARD, RULE_KEEP = 0, 1, 2


def keep_word(word, count, min_count, trim_rule=None):
    """Whether ``word`` (seen ``count`` times) stays: ``trim_rule`` first, then ``min_count``."""
    rule = trim_rule(word, count, min_count) if trim_rule is not None else RULE_DEFAULT
    if rule == RULE_KEEP:
        return True
    if rule == RULE_DISCARD:
        return False
    return count >= min_count


def _prune(counts, min_reduce, trim_rule):
    """Drop words seen fewer than ``min_reduce`` times (``max_vocab_size`` memory cap)."""
    for word in [w for w, c in counts.items() if not keep_word(w, c, min_reduce, trim_rule)]:
        del counts[word]


def scan_vocab(sentences, max_vocab_size=None, trim_rule=None):
    """Count words: ``(counts, total raw words, number of sentences)``; streams the corpus once."""
    counts = collections.Counter()
    total, n_sentences, min_reduce = 0, 0, 1
    warned = False
    for sentence in sentences:
        if isinstance(sentence, str) and not warned:
            logger.warning("Each 'sentences' item should be a list of words (usually unicode "
                           "strings). First item here is instead plain %s: %.40r. Split each "
                           "sentence into words first (e.g. sentence.split()).",
                           type(sentence), sentence)
            warned = True
        counts.update(sentence)
        total += len(sentence)
        n_sentences += 1
        if max_vocab_size and len(counts) > max_vocab_size:
            _prune(counts, min_reduce, trim_rule)
            min_reduce += 1
    return counts, total, n_sentences


def effective_min_count(counts, min_count, max_final_vocab):
    """``min_count`` raised so that at most ``max_final_vocab`` words remain (gensim's rule)."""
    if max_final_vocab is None:
        return min_count
    ordered = sorted(counts.values(), reverse=True)
    calc = ordered[max_final_vocab] + 1 if max_final_vocab < len(ordered) else 1
    return max(calc, min_count)


def sorted_by_count(words, counts):
    """``words`` by descending count; ties keep gensim's order (later-added first)."""
    c = np.asarray([counts[w] for w in words], dtype=np.int64)
    order = np.lexsort((-np.arange(len(words)), -c))
    return [words[i] for i in order]


def sample_ints(word_counts, sample, retained_total):
    """``P(keep) * (2**32 - 1)`` per word, word2vec.c's subsampling formula:
    ``P = (sqrt(c / t) + 1) * t / c`` with ``t = sample * total`` (``sample >= 1``: a count)."""
    counts = np.asarray(word_counts, dtype=np.float64)
    if not sample:
        threshold = float(retained_total)
    elif sample < 1.0:
        threshold = sample * retained_total
    else:
        threshold = float(int(sample * (3 + np.sqrt(5)) / 2))
    with np.errstate(divide="ignore"):
        prob = (np.sqrt(counts / threshold) + 1) * (threshold / counts)
    prob = np.minimum(prob, 1.0)
    return (prob * (2**32 - 1)).astype(np.uint32), float((prob * counts).sum())


def cum_table(word_counts, ns_exponent, domain=2**31 - 1):
    """Cumulative ``count**ns_exponent`` table scaled to ``domain`` (negative sampling)."""
    powered = np.asarray(word_counts, dtype=np.float64) ** float(ns_exponent)
    if not len(powered):
        return np.zeros(0, dtype=np.uint32)
    cumulative = np.cumsum(powered)
    return np.round(cumulative / cumulative[-1] * domain).astype(np.uint32)


class _Node:
    """Huffman heap entry ordered by count alone, so ties resolve as in gensim's tree."""

    __slots__ = ("count", "index")

    def __init__(self, count, index):
        self.count, self.index = count, index

    def __lt__(self, other):
        return self.count < other.count


def huffman_codes(word_counts):
    """Huffman tree over the counts: ``(points, codes, code_lens)``. Row ``w`` of ``points``
    lists the inner nodes (rows of ``syn1``) on the path to word ``w``, ``codes`` the turns
    (0 left, 1 right); inner node ``k`` merges the two lightest nodes at step ``k``."""
    n = len(word_counts)
    heap = [_Node(int(c), i) for i, c in enumerate(word_counts)]
    heapq.heapify(heap)
    left = np.zeros(max(n - 1, 0), dtype=np.int64)
    right = np.zeros(max(n - 1, 0), dtype=np.int64)
    for inner in range(n - 1):
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        left[inner], right[inner] = a.index, b.index
        heapq.heappush(heap, _Node(a.count + b.count, n + inner))
    paths = [([], [])] * n
    stack = [(2 * n - 2, [], [])] if n > 1 else []
    while stack:
        node, codes, points = stack.pop()
        if node < n:
            paths[node] = (codes, points)
            continue
        points = points + [node - n]
        stack.append((int(left[node - n]), codes + [0], points))
        stack.append((int(right[node - n]), codes + [1], points))
    depth = max((len(p[0]) for p in paths), default=0)
    point_arr = np.zeros((n, max(depth, 1)), dtype=np.uint32)
    code_arr = np.zeros((n, max(depth, 1)), dtype=np.uint8)
    lens = np.zeros(n, dtype=np.int32)
    for w, (codes, points) in enumerate(paths):
        lens[w] = len(codes)
        point_arr[w, :len(codes)] = points
        code_arr[w, :len(codes)] = codes
    return point_arr, code_arr, lens
