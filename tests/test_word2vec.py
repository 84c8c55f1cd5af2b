"""kaffe.text.word2vec against gensim 4 (the oracle): vocabulary, tables, initial weights and,
with the randomness switched off, the trained weights themselves; quality on a corpus cut
(3 seeds, sg and CBOW); corpus readers; files; the seed's gensim 3 workflow; bad input."""
import os

import numpy as np
import pytest

from kaffe.text import (KeyedVectors, LineSentence, PathLineSentences, Text8Corpus, Word2Vec,
                        word2vec)

gensim = pytest.importorskip("gensim")
from gensim.models import word2vec as gensim_w2v  # noqa: E402
from gensim.test.utils import datapath  # noqa: E402

TEXT = os.path.join("..", "shared", "data", "text")
needs_shared = pytest.mark.skipif(not os.path.isdir(TEXT), reason="../shared/data/text absent")
LEE = datapath("lee_background.cor")


@pytest.fixture(scope="module")
def lee():
    return list(gensim_w2v.LineSentence(LEE))


def both(corpus, **kwargs):
    kwargs.setdefault("workers", 1)
    return Word2Vec(corpus, **kwargs), gensim.models.Word2Vec(corpus, **kwargs)


def gensim_vocab(corpus, **kwargs):
    model = gensim.models.Word2Vec(**kwargs)
    model.build_vocab(corpus)
    return model


@pytest.mark.parametrize("kwargs", [{}, {"min_count": 2, "sample": 1e-4},
                                    {"max_final_vocab": 300}, {"max_vocab_size": 3000},
                                    {"sample": 0, "ns_exponent": 0.5, "seed": 7}])
def test_vocabulary_and_tables_equal_gensims(lee, kwargs):
    ours = Word2Vec(**kwargs)
    ours.build_vocab(lee)
    theirs = gensim_vocab(lee, **kwargs)
    assert ours.wv.index_to_key == theirs.wv.index_to_key
    assert (ours.corpus_count, ours.corpus_total_words) == (theirs.corpus_count,
                                                            theirs.corpus_total_words)
    np.testing.assert_array_equal(ours.wv.expandos["count"], theirs.wv.expandos["count"])
    np.testing.assert_array_equal(ours.wv.expandos["sample_int"],
                                  theirs.wv.expandos["sample_int"])
    np.testing.assert_array_equal(ours.cum_table, theirs.cum_table)
    np.testing.assert_array_equal(ours.wv.vectors, theirs.wv.vectors)  # same initial weights
    assert ours.effective_min_count == theirs.effective_min_count


def test_noise_sampler_follows_the_unigram_table(lee):
    """The kernels' O(1) alias draws follow gensim's cum_table distribution (chi-square)."""
    from numba import njit

    from kaffe.text import kernels

    @njit
    def draw_counts(keep, alias, n):
        r, out = np.uint64(12345), np.zeros(keep.shape[0])
        for _ in range(n):
            word, r = kernels._draw(keep, alias, r)
            out[word] += 1
        return out

    ours = Word2Vec(min_count=20)
    ours.build_vocab(lee)
    cum = gensim_vocab(lee, min_count=20).cum_table.astype(np.float64)
    p = np.diff(np.r_[0.0, cum]) / cum[-1]
    n = 2_000_000
    counts = draw_counts(ours._noise_keep, ours._noise_alias, n)
    chi2 = ((counts - n * p) ** 2 / (n * p)).sum()
    dof = len(p) - 1
    assert chi2 < dof + 5 * np.sqrt(2 * dof)


def test_huffman_tree_equals_gensims(lee):
    ours = Word2Vec(hs=1, negative=0)
    ours.build_vocab(lee)
    theirs = gensim_vocab(lee, hs=1, negative=0)
    for i in range(len(ours.wv)):
        n = ours._code_lens[i]
        np.testing.assert_array_equal(ours._codes[i, :n], theirs.wv.get_vecattr(i, "code"))
        np.testing.assert_array_equal(ours._points[i, :n], theirs.wv.get_vecattr(i, "point"))


@pytest.mark.parametrize("sg,cbow_mean", [(1, 1), (0, 1), (0, 0)])
def test_trained_weights_equal_gensims_without_randomness(lee, sg, cbow_mean):
    """Hierarchical softmax, no subsampling, fixed windows: nothing random is left, so both
    trainers must apply the very same updates (float rounding aside), job after job."""
    corpus = lee[:60]
    ours, theirs = both(corpus, sg=sg, cbow_mean=cbow_mean, hs=1, negative=0, sample=0,
                        shrink_windows=False, vector_size=24, window=3, min_count=2, epochs=2,
                        batch_words=1500, seed=5)
    assert ours.wv.index_to_key == theirs.wv.index_to_key
    np.testing.assert_allclose(ours.wv.vectors, theirs.wv.vectors, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(ours.syn1, theirs.syn1, atol=2e-5, rtol=1e-4)
    assert ours.min_alpha_yet_reached == pytest.approx(theirs.min_alpha_yet_reached)


def test_training_loss_as_gensim(lee):
    corpus = lee[:60]
    kwargs = dict(sg=1, hs=1, negative=0, sample=0, shrink_windows=False, vector_size=24,
                  window=3, min_count=2, epochs=1, seed=5, compute_loss=True)
    ours, theirs = both(corpus, **kwargs)
    # gensim sums the loss in a float32 (ulp 1/32 at 3e5): equal to about 0.5%
    assert ours.get_latest_training_loss() == pytest.approx(
        theirs.get_latest_training_loss(), rel=5e-3)


def quality(kv):
    """(analogy %, Spearman x 100), both models scored by kaffe's evaluator (equal to gensim's
    own, see test_keyedvectors; gensim's analogy loop alone would take seconds per model)."""
    kv = KeyedVectors.from_arrays(list(kv.index_to_key), kv.vectors)
    questions = os.path.join(TEXT, "questions-words.txt")
    pairs = os.path.join(TEXT, "wordsim353.tsv")
    return (100 * kv.evaluate_word_analogies(questions)[0],
            100 * kv.evaluate_word_pairs(pairs)[1][0])


@needs_shared
@pytest.mark.parametrize("sg", [1, 0])
def test_quality_within_one_point_of_gensim(sg):
    """Analogy accuracy and WordSim-353 Spearman (in points), mean over seeds 1-3, on the
    first 40 articles of enwiki_excerpt (200k words), 5 epochs, negative sampling.
    The full corpora are compared in benchmarks/word2vec.py."""
    corpus = list(LineSentence(os.path.join(TEXT, "enwiki_excerpt.txt"), limit=40))
    ours, theirs = [], []
    for seed in (1, 2, 3):
        a, b = both(corpus, sg=sg, seed=seed)
        ours.append(quality(a.wv))
        theirs.append(quality(b.wv))
    ours, theirs = np.mean(ours, axis=0), np.mean(theirs, axis=0)
    assert abs(ours[0] - theirs[0]) <= 1.0, (ours, theirs)
    assert abs(ours[1] - theirs[1]) <= 1.0, (ours, theirs)
    if sg:
        assert ours[1] > 15  # a real signal, not two models agreeing on noise


def test_corpus_readers_yield_gensims_sentences(tmp_path):
    assert list(LineSentence(LEE)) == list(gensim_w2v.LineSentence(LEE))
    assert list(LineSentence(LEE, max_sentence_length=7, limit=5)) == \
        list(gensim_w2v.LineSentence(LEE, max_sentence_length=7, limit=5))
    folder = datapath("PathLineSentences")
    assert list(PathLineSentences(folder)) == list(gensim_w2v.PathLineSentences(folder))
    text8 = tmp_path / "text8"
    words = " ".join(w for s in gensim_w2v.LineSentence(LEE) for w in s)
    text8.write_text(" " + words)
    assert list(Text8Corpus(text8, max_sentence_length=999)) == \
        list(gensim_w2v.Text8Corpus(str(text8), max_sentence_length=999))


def test_seed_workflow_gensim3_names(tmp_path, lee):
    """Seed 002: ``Word2Vec(sentences, size=200)``, save, load, ``model.most_similar``,
    ``model[word]`` and the KeyError for an unknown word."""
    sentences = lee
    model = word2vec.Word2Vec(sentences, size=50, iter=2, min_count=2, workers=2)
    assert model.vector_size == 50 and model.epochs == 2 and model.wv["the"].shape == (50,)
    model.save(str(tmp_path / "lee.model"))
    model = word2vec.Word2Vec.load(str(tmp_path / "lee.model"))
    top = model.most_similar(positive=["woman", "king"], negative=["man"], topn=1)
    assert len(top) == 1 and isinstance(top[0][1], float)
    np.testing.assert_array_equal(model["government"], model.wv["government"])
    with pytest.raises(KeyError, match="'cappuccino' not in vocabulary"):
        model["cappuccino"]
    with pytest.raises(TypeError, match="size=.*vector_size"):
        Word2Vec(lee, size=50, vector_size=60)


def test_save_load_mmap_and_continued_training(tmp_path, lee):
    model = Word2Vec(lee, vector_size=20, min_count=3, epochs=1, workers=1, seed=2)
    model.save(tmp_path / "m")
    mapped = Word2Vec.load(tmp_path / "m", mmap="r")
    assert isinstance(mapped.wv.vectors, np.memmap)
    np.testing.assert_array_equal(mapped.wv.vectors, model.wv.vectors)
    np.testing.assert_array_equal(mapped.syn1neg, model.syn1neg)
    before = np.array(mapped.wv.vectors)
    mapped.train(lee, total_examples=mapped.corpus_count, epochs=1)  # copies, then trains
    assert not np.allclose(before, mapped.wv.vectors)
    np.testing.assert_array_equal(Word2Vec.load(tmp_path / "m").wv.vectors, before)
    # the trained vectors load in gensim
    model.wv.save_word2vec_format(tmp_path / "m.bin", binary=True)
    back = gensim.models.KeyedVectors.load_word2vec_format(tmp_path / "m.bin", binary=True)
    np.testing.assert_array_equal(back.vectors, model.wv.vectors)
    assert back.index_to_key == model.wv.index_to_key


def test_vocabulary_update_as_gensim(lee):
    first, second = lee[:150], lee[150:]
    ours = Word2Vec(first, vector_size=16, min_count=3, epochs=1, workers=1)
    theirs = gensim.models.Word2Vec(first, vector_size=16, min_count=3, epochs=1, workers=1)
    ours.build_vocab(second, update=True)
    theirs.build_vocab(second, update=True)
    assert ours.wv.index_to_key == theirs.wv.index_to_key
    np.testing.assert_array_equal(ours.wv.expandos["count"], theirs.wv.expandos["count"])
    # subsampling thresholds: from the new corpus's counts; words absent from it keep theirs
    np.testing.assert_array_equal(ours.wv.expandos["sample_int"],
                                  theirs.wv.expandos["sample_int"])
    assert ours.wv.vectors.shape == ours.syn1neg.shape == theirs.wv.vectors.shape
    ours.train(second, total_examples=ours.corpus_count, epochs=1)
    assert np.isfinite(ours.wv.vectors).all()


def test_corpus_file_and_callbacks(lee):
    seen = []

    class Recorder:
        def on_epoch_end(self, model):
            seen.append(model.min_alpha_yet_reached)

    model = Word2Vec(corpus_file=LEE, vector_size=10, epochs=3, workers=2, callbacks=[Recorder()])
    reference = gensim_vocab(lee)
    assert model.wv.index_to_key == reference.wv.index_to_key
    assert len(seen) == 3 and seen[0] > seen[1] > seen[2]


@pytest.mark.parametrize("sg", [1, 0])
def test_torch_trainer_updates_match_autograd(sg):
    """The batched (device=) trainer's updates are SGD steps on the negative-sampling loss
    ``-log s(v'.h) - sum log s(-v'_n.h)`` as autograd differentiates it: output rows get
    ``-alpha * dL/dv'``, each input row ``-alpha * dL/dh`` (word2vec's CBOW rule)."""
    import torch

    from kaffe.text.torch_trainer import TorchTrainer
    rng = np.random.default_rng(0)
    sentences = [[f"w{int(i)}" for i in rng.integers(0, 30, 40)] for _ in range(20)]
    model = Word2Vec(vector_size=8, min_count=1, sg=sg, negative=3, device="cpu")
    model.build_vocab(sentences)
    model.wv.vectors[:] = rng.normal(0, 0.3, model.wv.vectors.shape)
    model.syn1neg[:] = rng.normal(0, 0.3, model.syn1neg.shape)
    syn0, syn1 = torch.tensor(model.wv.vectors), torch.tensor(model.syn1neg, requires_grad=True)
    trainer = TorchTrainer(model, "cpu")
    target = torch.tensor([1, 4, 7, 4])
    rows = torch.tensor([[2], [5], [0], [2]]) if sg else \
        torch.tensor([[2, 3, 0], [5, 6, 8], [0, 0, 0], [9, 2, 3]])
    mask = torch.ones(rows.shape) if sg else torch.tensor([[1., 1, 0], [1, 1, 1], [1, 0, 0],
                                                            [1, 1, 1]])
    h = ((syn0[rows] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).requires_grad_()
    noise = torch.multinomial(trainer.noise, 4 * 3, replacement=True,
                              generator=torch.Generator().manual_seed(3)).view(4, 3)
    f = torch.einsum("bkd,bd->bk", syn1[torch.cat([target[:, None], noise], 1)], h)
    sign = torch.tensor([1.0, -1, -1, -1])
    valid = torch.cat([torch.ones(4, 1), (noise != target[:, None]).float()], 1)
    (-(torch.nn.functional.logsigmoid(sign * f) * valid).sum()).backward()
    alpha = 0.05
    trainer.generator.manual_seed(3)
    with torch.no_grad():
        trainer._step(h.detach().clone(), target, alpha, rows, None if sg else mask)
    np.testing.assert_allclose(trainer.syn1neg.numpy(), (syn1 - alpha * syn1.grad).detach(),
                               atol=1e-6)
    expected = syn0.index_add(0, rows.reshape(-1), (-alpha * h.grad[:, None, :] *
                                                    mask[..., None]).reshape(-1, 8))
    np.testing.assert_allclose(trainer.syn0.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("sg", [1, 0])
def test_torch_device_trains_useful_vectors(lee, sg):
    """device='cpu' runs the batched PyTorch trainer; its vectors must carry the corpus's
    similarity structure about as well as gensim's (same corpus, same hyper-parameters)."""
    kwargs = dict(sg=sg, vector_size=32, min_count=3, epochs=5, seed=1, workers=1)
    ours = Word2Vec(lee, device="cpu", **kwargs)
    theirs = gensim.models.Word2Vec(lee, **kwargs)
    words = [w for w in ours.wv.index_to_key[50:250]]
    sims_ours = [ours.wv.similarity(a, b) for a, b in zip(words[:-1], words[1:])]
    sims_theirs = [theirs.wv.similarity(a, b) for a, b in zip(words[:-1], words[1:])]
    assert np.corrcoef(sims_ours, sims_theirs)[0, 1] > 0.5


def test_empty_vocabulary_says_so_before_training():
    with pytest.raises(ValueError, match=r"no word occurs at least min_count=5 times.*'b'.*"
                                         r"occurs 3 times"):
        Word2Vec([["a", "b", "b"], ["b", "c"]])
    with pytest.raises(ValueError, match="holds no words"):
        Word2Vec([])
    with pytest.raises(TypeError, match="one-shot generator.*6 times"):
        Word2Vec(s.split() for s in ["a b", "b c"])
    with pytest.raises(TypeError, match="iterable of lists of words"):
        Word2Vec("not a corpus")
    model = Word2Vec(min_count=1)
    with pytest.raises(RuntimeError, match="build the vocabulary"):
        model.train([["a"]], total_examples=1, epochs=1)
    model.build_vocab([["a", "b"]])
    with pytest.raises(ValueError, match="total_examples"):
        model.train([["a", "b"]], epochs=1)


def test_keyed_vectors_export(tmp_path, lee):
    model = Word2Vec(lee, vector_size=12, epochs=1, workers=1)
    model.wv.save(tmp_path / "wv")
    kv = KeyedVectors.load(tmp_path / "wv", mmap="r")
    np.testing.assert_array_equal(kv.vectors, model.wv.vectors)
