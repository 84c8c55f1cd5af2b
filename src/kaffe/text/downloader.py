"""``gensim.downloader`` from its local cache only: kaffe never downloads.

gensim's downloader fetches models and corpora from the gensim-data releases on GitHub into
``~/gensim-data`` (or ``$GENSIM_DATA_DIR``) and then imports a Python file shipped with the
data to load it. kaffe does neither: it reads what is already in that folder
(``<folder>/<name>/<name>.gz``, as gensim leaves it), word vectors with
``KeyedVectors.load_word2vec_format`` and the text8 corpus as a ``Text8Corpus``; anything else
is returned as its path. A name not in the folder raises an error that says how to get it.
"""
import gzip
import json
import os

from kaffe.text.corpora import Text8Corpus
from kaffe.text.keyedvectors import KeyedVectors

__all__ = ["load", "info", "BASE_DIR", "base_dir"]

BASE_DIR = os.environ.get("GENSIM_DATA_DIR", os.path.expanduser("~/gensim-data"))
base_dir = BASE_DIR

#: gensim-data's vector models start with these; they are word2vec-format files.
VECTOR_PREFIXES = ("glove-", "word2vec-", "fasttext-", "conceptnet-", "__testing_word2vec")
#: corpora kaffe can stream (one long line of words, as text8).
TEXT8_LIKE = ("text8",)


class NotDownloadedError(FileNotFoundError):
    """The data set is not in the local gensim-data folder, and kaffe cannot download it."""


def _not_here(name):
    return NotDownloadedError(
        f"gensim.downloader: {name!r} is not in the local cache {BASE_DIR}/{name}/ and kaffe "
        f"does not download (no network access from kaffe's downloader). Download it once "
        f"elsewhere with real gensim (python -c \"import gensim.downloader as api; "
        f"api.load('{name}', return_path=True)\") and copy the folder {name}/ into {BASE_DIR} "
        f"(or set GENSIM_DATA_DIR), then call load('{name}') again.")


def _path(name):
    folder = os.path.join(BASE_DIR, name)
    if not os.path.isdir(folder):
        raise _not_here(name)
    for candidate in (f"{name}.gz", name):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    files = sorted(f for f in os.listdir(folder) if not f.endswith((".py", ".pyc", ".json")))
    if len(files) == 1:
        return os.path.join(folder, files[0])
    raise _not_here(name)


def _is_binary_vectors(path):
    """Whether a word2vec file (gzipped or not) holds binary vectors (not text lines)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        f.readline()
        sample = f.read(4096)
    return b"\x00" in sample or not _is_text(sample)


def _is_text(sample):
    try:
        sample.decode("utf8")
    except UnicodeDecodeError as error:
        return error.start > len(sample) - 4  # a character cut at the sample's end
    return True


def load(name, return_path=False):
    """The data set ``name`` from the local cache: its path with ``return_path=True``, else
    word vectors as ``KeyedVectors``, text8 as a ``Text8Corpus``, other corpora as a path."""
    path = _path(name)
    if return_path:
        return path
    if name.startswith(VECTOR_PREFIXES):
        return KeyedVectors.load_word2vec_format(path, binary=_is_binary_vectors(path))
    if name in TEXT8_LIKE:
        return Text8Corpus(path)
    return path


def info(name=None, show_only_latest=True, name_only=False):
    """What gensim-data offers, from the copy of its list cached in the local folder
    (``information.json``); kaffe cannot fetch the list itself."""
    cached = os.path.join(BASE_DIR, "information.json")
    if not os.path.isfile(cached):
        present = sorted(os.listdir(BASE_DIR)) if os.path.isdir(BASE_DIR) else []
        raise NotDownloadedError(
            f"gensim.downloader.info: kaffe cannot download gensim-data's list and found no "
            f"cached copy at {cached}. Data sets present in {BASE_DIR}: {present or 'none'}.")
    with open(cached, encoding="utf8") as f:
        information = json.load(f)
    if name_only:
        return {kind: sorted(items) for kind, items in information.items() if kind != "__doc__"}
    if name is None:
        return information
    for kind in ("models", "corpora"):
        if name in information.get(kind, {}):
            return information[kind][name]
    raise ValueError(f"gensim.downloader.info: no data set named {name!r} in {cached}")
