"""The text helpers of ``gensim.utils`` that word2vec scripts use: tokenizing
(``simple_preprocess``, ``tokenize``, ``deaccent``), str/bytes conversion, vocabulary trim
rules, writing a ``LineSentence`` file, and ``check_output``. Under ``kaffe run`` they are
served as ``gensim.utils``; the tokenizing rules equal gensim's (words are runs of letters:
word characters other than digits)."""
import gzip
import bz2
import logging
import os
import re
import subprocess
import unicodedata

from kaffe.text.vocab import RULE_DEFAULT, RULE_DISCARD, RULE_KEEP, keep_word

logger = logging.getLogger(__name__)

__all__ = ["simple_preprocess", "tokenize", "simple_tokenize", "deaccent", "to_unicode",
           "any2unicode", "to_utf8", "any2utf8", "RULE_DEFAULT", "RULE_DISCARD", "RULE_KEEP",
           "keep_vocab_item", "save_as_line_sentence", "check_output", "open", "RepeatCorpus"]

#: a word: one or more word characters, none of them a digit (gensim's ``PAT_ALPHABETIC``).
PAT_ALPHABETIC = re.compile(r"(?:(?!\d)\w)+")


def to_unicode(text, encoding="utf8", errors="strict"):
    """``text`` as ``str`` (bytes are decoded with ``encoding``)."""
    if isinstance(text, str):
        return text
    return str(text, encoding, errors=errors)


any2unicode = to_unicode


def to_utf8(text, errors="strict", encoding="utf8"):
    """``text`` as UTF-8 ``bytes`` (bytes in another ``encoding`` are re-encoded)."""
    if isinstance(text, str):
        return text.encode("utf8")
    return str(text, encoding, errors=errors).encode("utf8")


any2utf8 = to_utf8


def deaccent(text):
    """``text`` without accent marks ("Šéf" -> "Sef"): NFD, drop combining marks, NFC."""
    text = to_unicode(text)
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", stripped)


def simple_tokenize(text):
    """The words of ``text`` (a generator), as gensim splits them."""
    for match in PAT_ALPHABETIC.finditer(text):
        yield match.group()


def tokenize(text, lowercase=False, deacc=False, encoding="utf8", errors="strict",
             to_lower=False, lower=False):
    """Words of ``text`` (str or bytes) as a generator; ``lowercase`` (also spelled
    ``to_lower``/``lower``) lower-cases first, ``deacc`` removes accents."""
    text = to_unicode(text, encoding, errors=errors)
    if lowercase or to_lower or lower:
        text = text.lower()
    if deacc:
        text = deaccent(text)
    return simple_tokenize(text)


def simple_preprocess(doc, deacc=False, min_len=2, max_len=15):
    """Lower-cased words of ``doc`` between ``min_len`` and ``max_len`` characters, those
    starting with ``_`` left out (undecodable bytes are dropped)."""
    return [token for token in tokenize(doc, lower=True, deacc=deacc, errors="ignore")
            if min_len <= len(token) <= max_len and not token.startswith("_")]


def keep_vocab_item(word, count, min_count, trim_rule=None):
    """Whether a word seen ``count`` times stays in the vocabulary (``trim_rule`` first)."""
    return keep_word(word, count, min_count, trim_rule)


def open(uri, mode="r", encoding=None, **kwargs):  # noqa: A001 - gensim.utils.open's name
    """Open a local file, decompressing ``.gz`` / ``.bz2`` on the fly (gensim's
    ``utils.open`` also reads URLs through smart_open; kaffe reads local files only)."""
    path = os.fspath(uri)
    if path.endswith(".gz"):
        return gzip.open(path, mode if "b" in mode else mode + "t", encoding=encoding, **kwargs)
    if path.endswith(".bz2"):
        return bz2.open(path, mode if "b" in mode else mode + "t", encoding=encoding, **kwargs)
    import builtins
    return builtins.open(path, mode, encoding=encoding, **kwargs)


class RepeatCorpus:
    """The first ``reps`` items of ``corpus`` repeated over and over (a corpus longer than
    the one given, for tests and benchmarks)."""

    def __init__(self, corpus, reps):
        self.corpus = corpus
        self.reps = reps

    def __iter__(self):
        import itertools
        return itertools.islice(itertools.cycle(self.corpus), self.reps)


def save_as_line_sentence(corpus, filename):
    """Write ``corpus`` (lists of words) as a ``LineSentence`` file: one sentence a line."""
    with open(filename, "wb") as out:
        for sentence in corpus:
            out.write((" ".join(sentence) + "\n").encode("utf8"))


def check_output(stdout=subprocess.PIPE, *popenargs, **kwargs):
    """``subprocess.check_output`` with gensim's argument order; raises
    ``CalledProcessError`` (with ``output``) on a non-zero exit."""
    process = subprocess.Popen(*popenargs, stdout=stdout, **kwargs)
    try:
        output, _ = process.communicate()
    except KeyboardInterrupt:
        process.terminate()
        raise
    if process.returncode:
        cmd = kwargs.get("args", popenargs[0] if popenargs else None)
        raise subprocess.CalledProcessError(process.returncode, cmd, output=output)
    return output
