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


class CorpusDecodeError(UnicodeDecodeError):
    """A corpus line that is not valid in the reader's encoding: a ``UnicodeDecodeError``
    whose message names the file, line and byte, and the options that fix it."""

    def __init__(self, path, line_no, line_offset, error, reader):
        super().__init__(error.encoding, error.object, error.start, error.end, error.reason)
        bad = error.object[error.start:error.end]
        self.message = (
            f"{path}, line {line_no} (byte offset {line_offset + error.start} of the file): "
            f"byte {bad[:4]!r} is not valid {error.encoding} ({error.reason}). The file is in "
            f"another encoding (often latin-1 / cp1252): pass {reader}(..., "
            f"encoding='latin-1'), or errors='replace' / 'ignore' to load it anyway.")

    def __str__(self):
        return self.message


def _lines_as_sentences(lines, max_sentence_length, encoding="utf8", errors="strict",
                        path="<corpus>", reader="LineSentence"):
    offset = 0
    for line_no, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                text = line.decode(encoding, errors=errors)
            except UnicodeDecodeError as error:
                raise CorpusDecodeError(path, line_no, offset, error, reader) from None
            offset += len(line)
        else:
            text = line
        words = text.split()
        for i in range(0, len(words), max_sentence_length):
            yield words[i:i + max_sentence_length]


class LineSentence:
    """One line = one sentence of whitespace-separated words (lines longer than
    ``max_sentence_length`` words are cut into pieces). ``source``: a path or a file object.
    ``encoding``/``errors``: how bytes are decoded (gensim reads UTF-8 only)."""

    def __init__(self, source, max_sentence_length=MAX_WORDS_IN_BATCH, limit=None,
                 encoding="utf8", errors="strict"):
        self.source = source
        self.max_sentence_length = max_sentence_length
        self.limit = limit
        self.encoding, self.errors = encoding, errors

    def __iter__(self):
        if hasattr(self.source, "seek"):
            self.source.seek(0)
            yield from _lines_as_sentences(itertools.islice(self.source, self.limit),
                                           self.max_sentence_length, self.encoding, self.errors,
                                           getattr(self.source, "name", "<file object>"))
            return
        with _open(self.source) as f:
            yield from _lines_as_sentences(itertools.islice(f, self.limit),
                                           self.max_sentence_length, self.encoding, self.errors,
                                           os.fspath(self.source))


class PathLineSentences:
    """``LineSentence`` over every file of a directory, in file-name order (no recursion);
    a single file path works too."""

    def __init__(self, source, max_sentence_length=MAX_WORDS_IN_BATCH, limit=None,
                 encoding="utf8", errors="strict"):
        self.source = os.fspath(source)
        self.max_sentence_length = max_sentence_length
        self.limit = limit
        self.encoding, self.errors = encoding, errors
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
                                               self.max_sentence_length, self.encoding,
                                               self.errors, path, "PathLineSentences")


class Text8Corpus:
    """The text8 corpus: one huge line of words, cut into sentences of
    ``max_sentence_length`` words; read in 8 KiB pieces, never whole."""

    def __init__(self, fname, max_sentence_length=MAX_WORDS_IN_BATCH, encoding="utf8",
                 errors="strict"):
        self.fname = fname
        self.max_sentence_length = max_sentence_length
        self.encoding, self.errors = encoding, errors

    def _decode(self, piece, offset):
        try:
            return piece.decode(self.encoding, self.errors)
        except UnicodeDecodeError as error:
            raise CorpusDecodeError(os.fspath(self.fname), 1, offset, error,
                                    "Text8Corpus") from None

    def __iter__(self):
        sentence, rest, offset = [], b"", 0
        with _open(self.fname) as f:
            while True:
                text = rest + f.read(8192)
                if text == rest:  # end of file
                    sentence.extend(self._decode(text, offset).split())
                    if sentence:
                        yield sentence
                    return
                cut = text.rfind(b" ")
                if cut >= 0:
                    words, rest = self._decode(text[:cut], offset).split(), text[cut:].strip()
                    offset += len(text) - len(rest)
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
