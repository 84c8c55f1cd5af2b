"""Several word2vec workers (kaffe.text.w2v_training): each keeps its own copies of the
hottest output rows and publishes its changes. Oracles: gensim's trained weights and Huffman
paths, numpy arithmetic for the publish rule, gensim's quality with the same worker count."""
import os

import numpy as np
import pytest

from kaffe.text import LineSentence, Word2Vec, kernels, w2v_training
from kaffe.text.callbacks import CallbackAny2Vec

gensim = pytest.importorskip("gensim")
from gensim.models import word2vec as gensim_w2v  # noqa: E402
from gensim.test.utils import datapath  # noqa: E402

from test_word2vec import TEXT, needs_shared, quality  # noqa: E402


@pytest.fixture(scope="module")
def lee():
    return list(gensim_w2v.LineSentence(datapath("lee_background.cor")))


def test_publish_adds_every_workers_changes():
    """Worker 0 publishes, then worker 1: the shared hot rows hold both changes; each copy
    holds what the shared row was at its own publish; the other rows are untouched."""
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((6, 4)).astype(np.float32)
    heat = np.array([1.0, 9.0, 3.0, 7.0, 0.0, 5.0])  # hottest three in a row: rows 1, 2, 3
    buffer, owns = w2v_training._with_own_rows(shared, heat, n_own=3, n_slots=2)
    hot, cold = [1, 2, 3], [0, 4, 5]
    start = buffer[:6].copy()
    deltas = rng.standard_normal((2, 3, 4)).astype(np.float32)
    copies = []
    for slot in (0, 1):
        kernels.own_rows_take(buffer, owns[slot])
        first, n_own, shift = owns[slot][0]
        assert (first, n_own) == (1, 3)
        copies.append(np.arange(1, 4) + shift)
        assert copies[-1].min() >= 7 and (slot == 0 or copies[-1].min() > copies[0].max() + 1)
        np.testing.assert_array_equal(buffer[copies[-1]], start[hot])
        buffer[copies[-1]] += deltas[slot]
    kernels.own_rows_publish(buffer, owns[0])
    kernels.own_rows_publish(buffer, owns[1])
    expected = start.copy()
    expected[hot] += deltas[0] + deltas[1]
    np.testing.assert_allclose(buffer[:6], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(buffer[cold], start[cold])
    np.testing.assert_allclose(buffer[copies[0]], start[hot] + deltas[0], atol=1e-6)
    np.testing.assert_allclose(buffer[copies[1]], expected[hot], atol=1e-6)


def test_flush_publishes_the_pending_rows_only():
    """Rows the kernel listed as due (updated their limit's number of times) are published
    and their counts restart from minus the limit; the other copies keep their changes
    unpublished."""
    shared = np.arange(24, dtype=np.float32).reshape(6, 4)
    limits = np.arange(1, 7)
    buffer, (own,) = w2v_training._with_own_rows(shared, np.ones(6), 6, 1, limits)
    kernels.own_rows_take(buffer, own)
    window, base, counts, pending, _ = own
    np.testing.assert_array_equal(counts, -limits)
    copy = np.arange(6) + window[2]
    buffer[copy] += 1.0
    counts[:] = [-1, 0, -2, -4, -3, 0]
    pending[:3] = [2, 1, 5]
    kernels.own_rows_flush(buffer, own)
    np.testing.assert_array_equal(buffer[[1, 5]], shared[[1, 5]] + 1)
    np.testing.assert_array_equal(buffer[[0, 2, 3, 4]], shared[[0, 2, 3, 4]])
    np.testing.assert_array_equal(counts, [-1, -2, -2, -4, -3, -6])
    assert pending[0] == 0
    kernels.own_rows_publish(buffer, own)
    np.testing.assert_array_equal(buffer[:6], shared + 1)


def test_node_traffic_counts_words_on_gensims_huffman_paths(lee):
    theirs = gensim.models.Word2Vec(hs=1, negative=0, min_count=3)
    theirs.build_vocab(lee)
    ours = Word2Vec(hs=1, negative=0, min_count=3)
    ours.build_vocab(lee)
    counts = theirs.wv.expandos["count"].astype(np.float64)
    expected = np.zeros(len(counts))
    for word in range(len(counts)):
        expected[theirs.wv.get_vecattr(word, "point")] += counts[word]
    traffic = w2v_training.node_traffic(counts, ours._points, ours._code_lens)
    np.testing.assert_array_equal(traffic, expected)
    assert traffic.argmax() == len(counts) - 2  # the root, on every path


@pytest.fixture
def small_copies(monkeypatch):
    """Few copied rows (20 of 24 dimensions) published often, so a small corpus exercises
    copies, shared rows and publishes in the middle of jobs."""
    monkeypatch.setattr(w2v_training, "OWN_BYTES", 20 * 8 * 24)
    monkeypatch.setattr(w2v_training, "MIN_SYNC_UPDATES", {0: 5, 1: 5})
    monkeypatch.setattr(w2v_training, "MAX_SYNC_UPDATES", 5)


@pytest.mark.parametrize("sg", [1, 0])
def test_workers_with_own_rows_train_as_gensim_when_alone(lee, small_copies, sg):
    """One job per epoch: one of two workers trains, on its copies of the hot rows, publishing
    a row every 5 updates. Nothing random (hierarchical softmax, no subsampling, fixed windows),
    so its weights must be gensim's, as those of one worker in place are (to float rounding:
    each publish rounds ``shared + (copy - base)``, so a little looser than one worker's)."""
    corpus = lee[:60]
    kwargs = dict(sg=sg, hs=1, negative=0, sample=0, shrink_windows=False, vector_size=24,
                  window=3, min_count=2, epochs=2, seed=5, batch_words=10**6)
    ours = Word2Vec(corpus, workers=2, **kwargs)
    theirs = gensim.models.Word2Vec(corpus, workers=1, **kwargs)
    np.testing.assert_allclose(ours.wv.vectors, theirs.wv.vectors, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(ours.syn1, theirs.syn1, atol=1e-4, rtol=1e-4)
    one = Word2Vec(corpus, workers=1, **kwargs)
    np.testing.assert_allclose(ours.wv.vectors, one.wv.vectors, atol=3e-5)
    np.testing.assert_allclose(ours.syn1, one.syn1, atol=3e-5)
    assert ours.syn1.base is None and ours.syn1.shape == theirs.syn1.shape


@pytest.mark.parametrize("sg", [1, 0])
def test_negative_sampling_workers_alone_equal_one_worker(lee, small_copies, sg):
    """Same with negative sampling and subsampling (kaffe's own random draws): two workers
    with one job per epoch give one worker's weights."""
    kwargs = dict(sg=sg, vector_size=16, min_count=2, epochs=2, seed=3, batch_words=10**6)
    one = Word2Vec(lee[:80], workers=1, **kwargs)
    two = Word2Vec(lee[:80], workers=2, **kwargs)
    np.testing.assert_allclose(two.wv.vectors, one.wv.vectors, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(two.syn1neg, one.syn1neg, atol=2e-5, rtol=1e-4)
    assert two.syn1neg.base is None


@needs_shared
@pytest.mark.parametrize("hs", [0, 1])
def test_two_workers_quality_as_gensims_two_workers(hs):
    """Skip-gram: analogy accuracy and WordSim-353 Spearman (points), mean over seeds 1-3, two
    workers each, on the first 40 articles of enwiki_excerpt. Two workers are not
    deterministic in either library (thread timing): a seed's Spearman varies by a point or
    two from run to run (with hs, 1 run in 5 put the means 2.99 apart while kaffe's stayed at
    45.4-45.7), so the means may differ by 4 points (test_word2vec: 1); a broken update
    loses 20 or more.
    CBOW is left out here: with negative sampling it learns next to nothing from so few
    words (Spearman about 3); with hierarchical softmax the mean of 3 seeds moves by 4 to 7
    points between seed sets in both libraries, one worker alone (kaffe 17 and 21, gensim 24
    and 19 for seeds 1-3 and 4-7). benchmarks/word2vec.py compares CBOW on the whole text."""
    sg = 1
    corpus = list(LineSentence(os.path.join(TEXT, "enwiki_excerpt.txt"), limit=40))
    kwargs = dict(sg=sg, hs=hs, negative=0 if hs else 5, workers=2)
    ours, theirs = [], []
    for seed in (1, 2, 3):
        ours.append(quality(Word2Vec(corpus, seed=seed, **kwargs).wv))
        theirs.append(quality(gensim.models.Word2Vec(corpus, seed=seed, **kwargs).wv))
    ours, theirs = np.mean(ours, axis=0), np.mean(theirs, axis=0)
    assert abs(ours[0] - theirs[0]) <= 1.5, (ours, theirs)
    assert abs(ours[1] - theirs[1]) <= 4.0, (ours, theirs)
    assert ours[1] > 15  # a real signal, not two models agreeing on noise


def test_token_cache_trains_bit_identically_to_a_streamed_corpus():
    """Later epochs over a list reuse the first epoch's word rows (no lookups); a corpus
    that is only re-iterable is looked up every epoch. Same seeds, same vectors."""
    sentences = list(LineSentence(datapath("lee_background.cor")))

    class Streamed:
        def __iter__(self):
            return iter(sentences)
    for sg in (0, 1):
        cached = Word2Vec(sentences, vector_size=20, min_count=3, sg=sg, workers=1, epochs=3,
                          seed=3)
        streamed = Word2Vec(Streamed(), vector_size=20, min_count=3, sg=sg, workers=1,
                            epochs=3, seed=3)
        np.testing.assert_array_equal(cached.wv.vectors, streamed.wv.vectors)
        assert cached.min_alpha_yet_reached == streamed.min_alpha_yet_reached


def test_token_cache_keeps_the_jobs_of_a_list_only():
    cache = w2v_training.TokenCache([["a"]])
    cache.put(1, "rows1", 1, 5)
    cache.put(0, "rows0", 2, 7)
    cache.complete(2)
    assert cache.jobs == [("rows0", 2, 7), ("rows1", 1, 5)]
    streamed = w2v_training.TokenCache(iter([]))
    streamed.put(0, "rows0", 1, 1)
    streamed.complete(1)
    assert streamed.jobs is None


def test_update_rates_add_up_to_the_steps_of_an_epoch(lee):
    """Every training step updates the centre's row and ``negative`` noise rows (or the
    centre's Huffman path), so the expected updates of all rows add up to steps x (1 +
    negative) (or steps x the mean path length of the kept words); skip-gram has ``window
    + 1`` steps a kept word with shrinking windows, CBOW one."""
    for sg in (0, 1):
        model = Word2Vec(sg=sg, hs=1, negative=5, window=4, min_count=2, sample=1e-3)
        model.build_vocab(lee)
        rates = w2v_training.update_rates(model, model._points, model._code_lens)
        counts = np.asarray(model.wv.expandos["count"], dtype=np.float64)
        kept = counts * np.minimum(model.wv.expandos["sample_int"] / 2**32, 1)
        steps = kept.sum() * (5 if sg else 1)
        assert rates["syn1neg"].sum() == pytest.approx(steps * 6)
        mean_path = (kept * model._code_lens).sum() / kept.sum()
        assert rates["syn1"].sum() == pytest.approx(steps * mean_path)
        assert rates["syn1neg"][0] == rates["syn1neg"].max()  # the most frequent word
        assert rates["syn1"][len(counts) - 2] == pytest.approx(steps)  # the root: every path


def test_split_tail_cuts_the_last_jobs_at_sentence_boundaries():
    tokens = np.arange(10, dtype=np.int32)
    jobs = [((tokens[:4], np.array([2, 4])), 2, 4),
            ((tokens[4:9], np.array([1, 3, 5])), 3, 5),
            ((tokens[9:], np.array([1])), 1, 1)]
    pieces = list(w2v_training._split_tail(jobs, 2))
    assert pieces[0] is jobs[0]
    (t1, e1), s1, w1 = pieces[1]
    (t2, e2), s2, w2 = pieces[2]
    np.testing.assert_array_equal(t1, [4]) and np.testing.assert_array_equal(e1, [1])
    np.testing.assert_array_equal(t2, [5, 6, 7, 8])
    np.testing.assert_array_equal(e2, [2, 4])
    assert (s1, w1, s2, w2) == (1, 1, 2, 4)
    assert pieces[3] is jobs[2]  # one sentence: not cut
    assert sum(p[2] for p in pieces) == 10 and sum(p[1] for p in pieces) == 6


def test_an_error_mid_training_still_leaves_plain_arrays():
    sentences = [["a", "b", "c", "d"] * 5] * 200

    class Stop(Exception):
        pass

    class StopAfterOneEpoch(CallbackAny2Vec):
        def on_epoch_end(self, model):
            raise Stop

    model = Word2Vec(vector_size=8, min_count=1, workers=2, negative=5)
    model.build_vocab(sentences)
    with pytest.raises(Stop):
        model.train(sentences, total_examples=len(sentences), epochs=3,
                    callbacks=[StopAfterOneEpoch()])
    assert model.syn1neg.base is None and model.wv.vectors.base is None
