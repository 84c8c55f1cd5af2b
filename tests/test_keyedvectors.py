"""kaffe.text.KeyedVectors against gensim 4 (the oracle): files both ways, queries and benchmark
scores on gensim's own test vectors, kaffe's memory-mapped format, and errors on bad input."""

import numpy as np
import pytest

from kaffe.text import KeyedVectors
from kaffe.text import evaluation
from kaffe.text.formats import VectorFileError

gensim = pytest.importorskip("gensim")
from gensim.models import KeyedVectors as GensimKV  # noqa: E402
from gensim.test.utils import datapath  # noqa: E402

QUESTIONS = datapath("questions-words.txt")
WORDSIM = datapath("wordsim353.tsv")
SIMLEX = datapath("simlex999.txt")
# (file, binary): gensim's test vectors, 2747 x 10 binary and 1762 x 10 text
FIXTURES = [("euclidean_vectors.bin", True), ("lee_fasttext.vec", False)]


def load_both(name, binary, **kwargs):
    return (KeyedVectors.load_word2vec_format(datapath(name), binary=binary, **kwargs),
            GensimKV.load_word2vec_format(datapath(name), binary=binary, **kwargs))


@pytest.fixture(scope="module")
def euclid():
    return load_both("euclidean_vectors.bin", True)


@pytest.mark.parametrize("name,binary", FIXTURES + [("test_glove.txt", False)])
def test_loads_what_gensim_loads(name, binary):
    no_header = name == "test_glove.txt"
    ours, theirs = load_both(name, binary, no_header=no_header)
    assert ours.index_to_key == theirs.index_to_key
    assert ours.vector_size == theirs.vector_size
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)
    limited, g_limited = load_both(name, binary, no_header=no_header, limit=7)
    assert limited.index_to_key == g_limited.index_to_key
    np.testing.assert_array_equal(limited.vectors, g_limited.vectors)


def test_unicode_errors_as_gensim():
    path = datapath("pang_lee_polarity_fasttext.vec")
    with pytest.raises(VectorFileError, match="not valid utf8"):
        KeyedVectors.load_word2vec_format(path)
    ours = KeyedVectors.load_word2vec_format(path, unicode_errors="ignore")
    theirs = GensimKV.load_word2vec_format(path, unicode_errors="ignore")
    assert ours.index_to_key == theirs.index_to_key
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)


@pytest.mark.parametrize("binary", [True, False])
def test_round_trips_both_ways(tmp_path, euclid, binary):
    ours, theirs = euclid
    ours.save_word2vec_format(tmp_path / "kaffe.w2v", binary=binary)
    back = GensimKV.load_word2vec_format(tmp_path / "kaffe.w2v", binary=binary)
    assert back.index_to_key == ours.index_to_key
    np.testing.assert_array_equal(back.vectors, ours.vectors)
    theirs.save_word2vec_format(str(tmp_path / "gensim.w2v"), binary=binary)
    again = KeyedVectors.load_word2vec_format(tmp_path / "gensim.w2v", binary=binary)
    assert again.index_to_key == theirs.index_to_key
    np.testing.assert_array_equal(again.vectors, theirs.vectors)


def test_glove_written_without_header_reads_in_gensim(tmp_path, euclid):
    ours, _ = euclid
    ours.save_word2vec_format(tmp_path / "glove.txt", write_header=False)
    back = GensimKV.load_word2vec_format(tmp_path / "glove.txt", no_header=True)
    np.testing.assert_array_equal(back.vectors, ours.vectors)


QUERIES = [dict(positive=["government"]), dict(positive=["man", "king"], negative=["woman"]),
           dict(positive=["president", "country"], topn=3),
           dict(positive=[("war", 2.0), "world"], negative=[("peace", -0.5)], topn=5),
           dict(positive=["police"], restrict_vocab=500)]


@pytest.mark.parametrize("query", QUERIES)
def test_most_similar_as_gensim(euclid, query):
    ours, theirs = euclid
    got, want = ours.most_similar(**query), theirs.most_similar(**query)
    assert [w for w, _ in got] == [w for w, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.most_similar(topn=None, **{k: v for k, v in query.items()
                                                                if k != "topn"}),
                               theirs.most_similar(topn=None, **{k: v for k, v in query.items()
                                                                 if k != "topn"}),
                               rtol=1e-5, atol=1e-6)


def test_other_queries_as_gensim(euclid):
    ours, theirs = euclid
    for a, b in [("man", "woman"), ("war", "peace"), ("the", "of")]:
        assert ours.similarity(a, b) == pytest.approx(theirs.similarity(a, b), abs=1e-6)
        assert ours.distance(a, b) == pytest.approx(theirs.distance(a, b), abs=1e-6)
    words = ["man", "woman", "police", "war"]
    assert ours.doesnt_match(words) == theirs.doesnt_match(words)
    assert ours.doesnt_match(["the", "of", "and", "government"]) == \
        theirs.doesnt_match(["the", "of", "and", "government"])
    assert ours.n_similarity(["man", "war"], ["woman", "peace"]) == pytest.approx(
        theirs.n_similarity(["man", "war"], ["woman", "peace"]), abs=1e-6)
    np.testing.assert_allclose(ours.distances("man", ["woman", "war"]),
                               theirs.distances("man", ["woman", "war"]), atol=1e-6)
    cosmul, g_cosmul = (kv.most_similar_cosmul(positive=["king", "woman"], negative=["man"])
                        for kv in (ours, theirs))
    assert [w for w, _ in cosmul] == [w for w, _ in g_cosmul]
    vec = theirs["police"] + theirs["war"]
    assert [w for w, _ in ours.similar_by_vector(vec, topn=5)] == \
        [w for w, _ in theirs.similar_by_vector(vec, topn=5)]
    assert ours.rank("man", "woman") == theirs.rank("man", "woman")
    np.testing.assert_array_equal(ours[["man", "war"]], theirs[["man", "war"]])
    np.testing.assert_allclose(ours.get_vector("war", norm=True),
                               theirs.get_vector("war", norm=True), rtol=1e-6)
    assert ours.key_to_index == theirs.key_to_index and "war" in ours and "zzzz" not in ours


@pytest.mark.parametrize("name,binary", FIXTURES)
@pytest.mark.parametrize("kwargs", [{}, {"restrict_vocab": 800},
                                    {"case_insensitive": False, "dummy4unknown": True}])
def test_analogies_as_gensim(name, binary, kwargs):
    ours, theirs = load_both(name, binary)
    score, sections = ours.evaluate_word_analogies(QUESTIONS, **kwargs)
    g_score, g_sections = theirs.evaluate_word_analogies(QUESTIONS, **kwargs)
    assert score == g_score
    assert [s["section"] for s in sections] == [s["section"] for s in g_sections]
    for s, g in zip(sections, g_sections):
        assert s["correct"] == g["correct"] and s["incorrect"] == g["incorrect"], s["section"]


@pytest.mark.parametrize("name,binary", FIXTURES)
@pytest.mark.parametrize("pairs", [WORDSIM, SIMLEX])
def test_word_pairs_as_gensim(name, binary, pairs):
    ours, theirs = load_both(name, binary)
    for kwargs in ({}, {"dummy4unknown": True}):
        (p, s, oov), (gp, gs, goov) = (ours.evaluate_word_pairs(pairs, **kwargs),
                                       theirs.evaluate_word_pairs(pairs, **kwargs))
        assert oov == pytest.approx(goov)
        assert p.statistic == pytest.approx(gp[0], abs=1e-6)
        assert s.statistic == pytest.approx(gs[0], abs=1e-6)
        assert p.pvalue == pytest.approx(gp[1], rel=1e-4, abs=1e-12)
        assert s.pvalue == pytest.approx(gs[1], rel=1e-4, abs=1e-12)


def test_correlations_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    x = rng.integers(0, 10, 40).astype(float)  # ties on purpose
    y = x + rng.normal(0, 4, 40)
    for ours, theirs in ((evaluation.pearson, stats.pearsonr), (evaluation.spearman,
                                                                stats.spearmanr)):
        got, want = ours(x, y), theirs(x, y)
        assert got.statistic == pytest.approx(want[0], abs=1e-12)
        assert got.pvalue == pytest.approx(want[1], rel=1e-8)


def test_native_format_memory_maps(tmp_path, euclid):
    ours, theirs = euclid
    ours.save(tmp_path / "vectors.kv")
    assert (tmp_path / "vectors.kv.vectors.npy").exists()
    mapped = KeyedVectors.load(tmp_path / "vectors.kv", mmap="r")
    assert isinstance(mapped.vectors, np.memmap) and not mapped.vectors.flags.writeable
    np.testing.assert_array_equal(mapped.vectors, theirs.vectors)
    got, want = mapped.most_similar("war", topn=3), theirs.most_similar("war", topn=3)
    assert [w for w, _ in got] == [w for w, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-6)
    loaded = KeyedVectors.load(tmp_path / "vectors.kv")
    assert loaded.index_to_key == theirs.index_to_key
    theirs.save(str(tmp_path / "gensim.kv"))  # a pickle: refused, never unpickled
    with pytest.raises(ValueError, match="never unpickles"):
        KeyedVectors.load(tmp_path / "gensim.kv")


def test_unknown_word_raises_key_error_naming_it(euclid):
    ours, _ = euclid
    with pytest.raises(KeyError, match="'cappuccino' not in vocabulary"):
        ours["cappuccino"]
    with pytest.raises(KeyError, match="cappuccino"):
        ours.most_similar(positive=["war", "cappuccino"])
    with pytest.raises(KeyError, match="cappuccino"):
        ours.similarity("war", "cappuccino")


def test_binary_body_shorter_than_header_names_it(tmp_path, euclid):
    ours, _ = euclid
    ours.save_word2vec_format(tmp_path / "v.bin", binary=True)
    data = (tmp_path / "v.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[:len(data) - 30])
    with pytest.raises(VectorFileError, match=r"header \(line 1\) declares 2747 words.*"
                                              r"record #2747"):
        KeyedVectors.load_word2vec_format(tmp_path / "cut.bin", binary=True)


def test_text_header_body_mismatch_names_the_line(tmp_path):
    (tmp_path / "few.txt").write_text("3 2\na 1 2\nb 3 4\n")
    with pytest.raises(VectorFileError, match=r"declares 3 words.*only 2 vector lines"):
        KeyedVectors.load_word2vec_format(tmp_path / "few.txt")
    (tmp_path / "dims.txt").write_text("3 2\na 1 2\nb 3 4 5\nc 6 7\n")
    with pytest.raises(VectorFileError, match=r"line 3: expected a word and 2 values, "
                                              r"received 3 values for word 'b'"):
        KeyedVectors.load_word2vec_format(tmp_path / "dims.txt")
    (tmp_path / "many.txt").write_text("1 2\na 1 2\nb 3 4\n")
    with pytest.raises(VectorFileError, match=r"declares 1 words but line 3"):
        KeyedVectors.load_word2vec_format(tmp_path / "many.txt")


def test_glove_wrong_dimension_names_the_line(tmp_path):
    lines = open(datapath("test_glove.txt"), encoding="utf8").read().splitlines()
    lines[4] = " ".join(lines[4].split()[:-1])  # line 5 loses its last value
    (tmp_path / "glove.txt").write_text("\n".join(lines) + "\n", encoding="utf8")
    word = lines[4].split()[0]
    with pytest.raises(VectorFileError, match=rf"line 5: expected a word and 50 values, "
                                              rf"received 49 values for word '{word}'"):
        KeyedVectors.load_word2vec_format(tmp_path / "glove.txt", no_header=True)
    with pytest.raises(VectorFileError, match="line 1: expected a header"):
        KeyedVectors.load_word2vec_format(datapath("test_glove.txt"))


def test_analogy_line_with_three_words_names_the_line(tmp_path, euclid):
    (tmp_path / "q.txt").write_text(": capitals\nman king woman queen\nparis france rome\n")
    with pytest.raises(ValueError, match=r"q.txt, line 3: an analogy question needs 4 words.*"
                                         r"received 3"):
        euclid[0].evaluate_word_analogies(tmp_path / "q.txt")

