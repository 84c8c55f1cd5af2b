"""Bad input to kaffe.text gets a clear error (or warning) naming the file, record, line,
byte or count, of the exception type gensim users catch; gensim, given the same file, raises
that type too. Also: kaffe imports and trains where numba cannot write its cache, and under
``kaffe run`` gensim.utils / gensim.models.callbacks / gensim.downloader are served."""
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from kaffe.text import KeyedVectors, LineSentence, Text8Corpus, Word2Vec

gensim = pytest.importorskip("gensim")


def _binary_file(path, n, dims=4):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dims), dtype=np.float32)
    with open(path, "wb") as f:
        f.write(f"{n} {dims}\n".encode())
        for i in range(n):
            f.write(f"word{i} ".encode() + vectors[i].tobytes() + b"\n")
    return vectors


def test_truncated_binary_file_names_the_record_and_offset(tmp_path):
    path = tmp_path / "cut.bin"
    _binary_file(path, 1200, dims=50)
    data = path.read_bytes()
    starts = np.cumsum([len("1200 50\n")] + [len(f"word{i} ") + 200 + 1 for i in range(1200)])
    cut = starts[1000] + 100  # inside record #1001 (records count from 1)
    path.write_bytes(data[:cut])
    with pytest.raises(EOFError) as error:
        KeyedVectors.load_word2vec_format(str(path), binary=True)
    message = str(error.value)
    assert "record #1001" in message and f"byte offset {starts[1000]}" in message
    assert "1000 whole records" in message and "limit=1000" in message
    assert isinstance(error.value, ValueError)  # kaffe's VectorFileError too
    with pytest.raises(EOFError):
        gensim.models.KeyedVectors.load_word2vec_format(str(path), binary=True)
    assert len(KeyedVectors.load_word2vec_format(str(path), binary=True, limit=1000)) == 1000


def test_truncated_text_file_is_an_eof_error(tmp_path):
    path = tmp_path / "cut.txt"
    path.write_text("3 2\na 1 2\nb 3 4\n")
    with pytest.raises(EOFError, match="declares 3 words but the file has only 2"):
        KeyedVectors.load_word2vec_format(str(path))
    with pytest.raises(EOFError):
        gensim.models.KeyedVectors.load_word2vec_format(str(path))


def test_undecodable_word_is_a_unicode_error_naming_the_word(tmp_path):
    path = tmp_path / "latin.bin"
    with open(path, "wb") as f:
        f.write(b"2 2\n")
        f.write(b"ok " + np.ones(2, np.float32).tobytes())
        f.write(b"caf\xe9 " + np.ones(2, np.float32).tobytes())
    with pytest.raises(UnicodeDecodeError) as error:
        KeyedVectors.load_word2vec_format(str(path), binary=True)
    assert "word #2" in str(error.value) and "unicode_errors=" in str(error.value)
    assert isinstance(error.value, ValueError)
    with pytest.raises(UnicodeDecodeError):
        gensim.models.KeyedVectors.load_word2vec_format(str(path), binary=True)
    kv = KeyedVectors.load_word2vec_format(str(path), binary=True, encoding="latin-1")
    assert kv.index_to_key == ["ok", "café"]


def test_text_file_loaded_as_binary_is_detected(tmp_path):
    path = tmp_path / "vectors.txt"
    rows = "\n".join(f"w{i} " + " ".join(f"{v:.6f}" for v in np.linspace(-1, 1, 20))
                     for i in range(5))
    path.write_text(f"5 20\n{rows}\n")
    with pytest.raises(ValueError, match="looks like a text file; pass binary=False"):
        KeyedVectors.load_word2vec_format(str(path), binary=True)
    assert len(KeyedVectors.load_word2vec_format(str(path), binary=False)) == 5


def test_latin1_corpus_names_file_line_byte_and_the_option(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"the first line\nthe second line\nun caf\xe9 noir\n")
    with pytest.raises(UnicodeDecodeError) as error:
        Word2Vec(LineSentence(str(path)), min_count=1)
    message = str(error.value)
    offset = path.read_bytes().index(b"\xe9")  # 0-based, as a hex editor shows it
    assert str(path) in message and "line 3" in message and f"byte offset {offset}" in message
    assert "encoding='latin-1'" in message and "errors=" in message
    sentences = list(LineSentence(str(path), encoding="latin-1"))
    assert sentences[2] == ["un", "café", "noir"]
    text8 = tmp_path / "text8"
    text8.write_bytes(b"one two caf\xe9 three")
    with pytest.raises(UnicodeDecodeError, match="Text8Corpus"):
        list(Text8Corpus(str(text8)))
    assert list(Text8Corpus(str(text8), errors="replace"))[0][2] == "caf\ufffd"


def test_one_or_no_word_after_min_count(caplog):
    corpus = [["a", "b", "b"], ["b", "c"]]
    with caplog.at_level(logging.WARNING):
        model = Word2Vec(corpus, min_count=3, workers=1)
    assert "only one word, 'b', occurs at least min_count=3" in caplog.text
    assert "5 words, 3 distinct" in caplog.text
    assert model.wv.index_to_key == ["b"]
    with pytest.raises(RuntimeError, match=r"min_count=5.*5 words, 3 distinct.*'b'.*3 times"):
        Word2Vec(corpus, min_count=5)
    model = Word2Vec(min_count=5)
    model.build_vocab(corpus)  # a warning, as gensim; training refuses
    with pytest.raises(RuntimeError, match="vocabulary.*empty"):
        model.train(corpus, total_examples=2, epochs=1)
    with pytest.raises(RuntimeError):  # gensim's own behaviour for the same corpus
        gensim.models.Word2Vec(corpus, min_count=5)


NO_CACHE = """
import numba.core.caching as caching

def unwritable(self):  # every cache folder numba tries is read-only (another user's install)
    raise PermissionError(13, "Permission denied", self.get_cache_path())

caching._CacheLocator.ensure_cache_path = unwritable
import kaffe, kaffe.text
from kaffe.text import Word2Vec, KeyedVectors
model = Word2Vec([["a", "b", "c", "a", "b"]] * 20, min_count=1, workers=2, epochs=2)
print("trained", len(model.wv))
"""


def test_kaffe_imports_and_trains_when_numba_cannot_cache(tmp_path):
    result = subprocess.run([sys.executable, "-c", NO_CACHE], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path,
                            env=dict(os.environ, NUMBA_CACHE_DIR=""))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained 3" in result.stdout


SCRIPT = """
import gensim.downloader as api
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from gensim.utils import simple_preprocess, tokenize

class EpochCounter(CallbackAny2Vec):
    def __init__(self):
        self.epochs = 0
    def on_epoch_end(self, model):
        self.epochs += 1

docs = ["The quick brown fox jumps over the lazy dog."] * 30
sentences = [simple_preprocess(d) for d in docs]
counter = EpochCounter()
model = Word2Vec(sentences, min_count=1, epochs=3, callbacks=[counter], workers=1)
print("epochs", counter.epochs, "tokens", list(tokenize("Hello World", lower=True)))
kv = api.load("tiny-vectors")
print("downloaded", len(kv), api.load("tiny-vectors", return_path=True).endswith(".gz"))
try:
    api.load("glove-wiki-gigaword-50")
except FileNotFoundError as error:
    print("missing:", error)
"""


def test_gensim_helpers_under_kaffe_run(tmp_path, monkeypatch, capsys):
    import gzip
    from kaffe.cli.run import run_script
    from kaffe.text import downloader
    data = tmp_path / "gensim-data"
    (data / "tiny-vectors").mkdir(parents=True)
    with gzip.open(data / "tiny-vectors" / "tiny-vectors.gz", "wb") as f:
        f.write(b"2 3\nfox 1 2 3\ndog 4 5 6\n")
    monkeypatch.setattr(downloader, "BASE_DIR", str(data))
    monkeypatch.setattr(downloader, "VECTOR_PREFIXES", downloader.VECTOR_PREFIXES + ("tiny-",))
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    run_script(str(script))
    out = capsys.readouterr().out
    assert "epochs 3 tokens ['hello', 'world']" in out
    assert "downloaded 2 True" in out
    assert "missing:" in out and "kaffe does not download" in out and str(data) in out
