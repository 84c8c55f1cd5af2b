"""What a trained word2vec model says about new text, without training on it.

* ``score_sentences``: the log-probability of each sentence under a hierarchical-softmax model
  (Taddy, "Document Classification by Inversion of Distributed Language Representations",
  2015), as gensim's ``Word2Vec.score``: for each word, the sum over its Huffman path of
  ``log sigmoid(±(input . syn1[node]))`` where the input is each context word's vector
  (skip-gram) or their mean/sum (CBOW), with the full ``window`` (no random shrinking, no
  subsampling); unknown words are left out first; dot products outside ``(-6, 6)`` add nothing.
* ``predict_output_word``: the softmax over ``syn1neg`` of the context's mean vector, as
  gensim's ``Word2Vec.predict_output_word`` (negative-sampling models).
"""
import numpy as np

from kaffe.text.jit import njit
from kaffe.text.kernels import LOG_TABLE, MAX_EXP, _sigmoid_index

#: gensim scores at most this many words of a sentence (its ``MAX_SENTENCE_LEN``).
MAX_SENTENCE_LEN = 10000


@njit(nogil=True, cache=True, fastmath=True)
def _path_log_prob(l1, syn1, points, codes, length, log_table):
    total = np.float32(0.0)
    size = l1.shape[0]
    for b in range(length):
        row = points[b]
        f = np.float32(0.0)
        for k in range(size):
            f += l1[k] * syn1[row, k]
        if codes[b]:
            f = -f
        if f <= -MAX_EXP or f >= MAX_EXP:
            continue
        total += log_table[_sigmoid_index(f)]
    return total


@njit(nogil=True, cache=True, fastmath=True)
def _score_sentences(tokens, ends, syn0, syn1, points, codes, code_lens, sg, window, cbow_mean,
                     log_table, out):
    """``out[s]`` = log-probability of sentence ``s`` (``tokens`` are known word rows)."""
    size = syn0.shape[1]
    neu1 = np.zeros(size, dtype=np.float32)
    start = 0
    for s in range(ends.shape[0]):
        end = ends[s]
        total = np.float32(0.0)
        for i in range(start, end):
            word = tokens[i]
            if code_lens[word] == 0:
                continue
            j0 = max(start, i - window)
            j1 = min(end, i + window + 1)
            if sg:
                for j in range(j0, j1):
                    ctx = tokens[j]
                    if j == i or code_lens[ctx] == 0:
                        continue
                    total += _path_log_prob(syn0[ctx], syn1, points[word], codes[word],
                                            code_lens[word], log_table)
            else:
                neu1[:] = 0.0
                count = 0
                for j in range(j0, j1):
                    ctx = tokens[j]
                    if j == i or code_lens[ctx] == 0:
                        continue
                    neu1 += syn0[ctx]
                    count += 1
                if cbow_mean and count > 0:
                    neu1 /= np.float32(count)
                total += _path_log_prob(neu1, syn1, points[word], codes[word], code_lens[word],
                                        log_table)
        out[s] = total
        start = end
    return out


def score_sentences(model, sentences, total_sentences):
    """Log-probabilities (float32) of the first ``total_sentences`` of ``sentences``."""
    lookup = model.wv.key_to_index
    rows, ends = [], []
    for n, sentence in enumerate(sentences):
        if n >= total_sentences:
            break
        known = [lookup[w] for w in sentence if w in lookup][:MAX_SENTENCE_LEN]
        rows.extend(known)
        ends.append(len(rows))
    out = np.zeros(len(ends), dtype=np.float32)
    if not ends:
        return out
    return _score_sentences(np.asarray(rows, dtype=np.int64), np.asarray(ends, dtype=np.int64),
                            model.wv.vectors, model.syn1, model._points, model._codes,
                            model._code_lens, int(model.sg), int(model.window),
                            int(model.cbow_mean), LOG_TABLE, out)


def predict_output_word(model, context_words, topn=10):
    """``[(word, probability), ...]``, the ``topn`` likeliest centre words for the context;
    None when no context word is known."""
    rows = [model.wv.get_index(w) for w in context_words if w in model.wv]
    if not rows:
        return None
    l1 = model.wv.vectors[rows].sum(axis=0)
    if model.cbow_mean:
        l1 /= len(rows)
    logits = (model.syn1neg @ l1).astype(np.float64)
    prob = np.exp(logits - logits.max())
    prob /= prob.sum()
    best = np.argsort(-prob, kind="stable")[:topn]
    return [(model.wv.index_to_key[i], float(prob[i])) for i in best]
