"""Streaming corpus readers: each is an iterable of sentences (lists of str) that reads its
files again on every pass, so a corpus larger than memory trains. Same splitting as gensim's
readers of the same names; ``TextSentences`` is kaffe's own reader for raw prose."""
import bz2
import gzip
import itertools
import os
import re

MAX_WORDS_IN_BATCH = 10000


def _open(path):
    """Binary file handle; ``.gz`` and ``.bz2`` are decompressed on the fly."""
    path = os.fspath(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


def _lines_as_sentences(lines, max_sentence_length):
    for line in lines:
        words = line.decode("utf8", errors="strict").split() if isinstance(line, bytes) \
            else line.split()
        for i in range(0, len(words), max_sentence_length):
            yield words[i:i + max_sentence_length]


class LineSentence:
    """One line = one sentence of whitespace-separated words (lines longer than
    ``max_sentence_length`` words are cut into pieces). ``source``: a path or a file object."""

    def __init__(self, source, max_sentence_length=MAX_WORDS_IN_BATCH, limit=None):
        self.source = source
        self.max_sentence_length = max_sentence_length
        self.limit = limit

    def __iter__(self):
        if hasattr(self.source, "seek"):
            self.source.seek(0)
            yield from _lines_as_sentences(itertools.islice(self.source, self.limit),
                                           self.max_sentence_length)
            return
        with _open(self.source) as f:
            yield from _lines_as_sentences(itertools.islice(f, self.limit),
                                           self.max_sentence_length)


class PathLineSentences:
    """``LineSentence`` over every file of a directory, in file-name order (no recursion);
    a single file path works too."""

    def __init__(self, source, max_sentence_length=MAX_WORDS_IN_BATCH, limit=None):
        self.source = os.fspath(source)
        self.max_sentence_length = max_sentence_length
        self.limit = limit
        if os.path.isfile(self.source):
            self.input_files = [self.source]
        elif os.path.isdir(self.source):
            self.input_files = sorted(os.path.join(self.source, name)
                                      for name in os.listdir(self.source)
                                      if os.path.isfile(os.path.join(self.source, name)))
        else:
            raise ValueError(f"PathLineSentences: {self.source!r} is neither a file nor a "
                             f"directory")

    def __iter__(self):
        for path in self.input_files:
            with _open(path) as f:
                yield from _lines_as_sentences(itertools.islice(f, self.limit),
                                               self.max_sentence_length)


class Text8Corpus:
    """The text8 corpus: one huge line of words, cut into sentences of
    ``max_sentence_length`` words; read in 8 KiB pieces, never whole."""

    def __init__(self, fname, max_sentence_length=MAX_WORDS_IN_BATCH):
        self.fname = fname
        self.max_sentence_length = max_sentence_length

    def __iter__(self):
        sentence, rest = [], b""
        with _open(self.fname) as f:
            while True:
                text = rest + f.read(8192)
                if text == rest:  # end of file
                    sentence.extend(text.decode("utf8").split())
                    if sentence:
                        yield sentence
                    return
                cut = text.rfind(b" ")
                if cut >= 0:
                    words, rest = text[:cut].decode("utf8").split(), text[cut:].strip()
                else:
                    words, rest = [], text
                sentence.extend(words)
                while len(sentence) >= self.max_sentence_length:
                    yield sentence[:self.max_sentence_length]
                    sentence = sentence[self.max_sentence_length:]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


class TextSentences:
    """Raw prose (a novel, an article) as sentences: paragraphs split at ``. ! ?``, words are
    runs of letters (inner apostrophes kept), lower-cased unless ``lowercase=False``."""

    def __init__(self, source, lowercase=True, min_words=1):
        self.source = source
        self.lowercase = lowercase
        self.min_words = min_words

    def __iter__(self):
        with _open(self.source) as f:
            paragraph = []
            for raw in itertools.chain(f, [b"\n"]):
                line = raw.decode("utf8", errors="replace")
                if line.strip():
                    paragraph.append(line)
                    continue
                if paragraph:
                    yield from self._sentences(" ".join(paragraph))
                    paragraph = []

    def _sentences(self, text):
        if self.lowercase:
            text = text.lower()
        for piece in _SENTENCE_END.split(text):
            words = _WORD.findall(piece)
            if len(words) >= self.min_words:
                yield words
