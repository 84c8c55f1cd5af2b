"""word2vec.c's vector files (binary and text) and GloVe's header-less text files.

Binary: a header line ``"<count> <dims>\\n"``, then per word the UTF-8 word, a space and
``dims`` little-endian float32 (word2vec.c adds ``"\\n"`` after each vector, gensim does not;
both are read). Text: the same header, then ``word v1 v2 ...`` per line. GloVe: text without
the header. Readers work on the whole file at once (a compiled scan for binary, one numpy
parse for text) and name the line or word where a file disagrees with its header.
"""
import bz2
import gzip
import logging
import os

import numpy as np
from kaffe.text.jit import njit

logger = logging.getLogger(__name__)


class VectorFileError(ValueError):
    """A vector file whose content disagrees with its header or with itself."""


class TruncatedVectorFileError(VectorFileError, EOFError):
    """The file ends before the words its header declares (gensim raises ``EOFError``)."""


class VectorFileDecodeError(VectorFileError, UnicodeDecodeError):
    """A word that is not valid in the file's encoding; also a ``UnicodeDecodeError``, as
    gensim raises, with kaffe's message (file, word number, bytes, the option to pass)."""

    def __init__(self, message, encoding, raw, start, end, reason):
        UnicodeDecodeError.__init__(self, encoding, raw, start, end, reason)
        self.message = message

    def __str__(self):
        return self.message


#: how compressed vector files are opened, by file-name ending.
OPENERS = {".gz": gzip.open, ".bz2": bz2.open}


def open_binary(path):
    """``path`` opened for reading bytes; ``.gz``/``.bz2`` decompressed on the fly."""
    opener = OPENERS.get(os.path.splitext(os.fspath(path))[1], open)
    return opener(path, "rb")


def _file_bytes(path):
    """The bytes of a vector file as a uint8 array: memory-mapped when plain, decompressed
    into memory when ``.gz``/``.bz2``."""
    if os.path.splitext(os.fspath(path))[1] in OPENERS:
        with open_binary(path) as f:
            return np.frombuffer(f.read(), dtype=np.uint8)
    if not os.path.getsize(path):
        return np.zeros(0, np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


@njit(nogil=True, cache=True)
def _scan_binary(buf, pos, first, count, row_bytes, out, word_bytes, w, word_ends):
    """Walk binary records ``first`` to ``count`` from byte ``pos``: copy each vector into
    ``out`` (bytes view), each word (leading newlines dropped) into ``word_bytes`` from
    ``w`` on, followed by ``\\n``. Returns (records read, where the next record starts,
    end of ``word_bytes``, whether ``word_bytes`` ran full)."""
    n = buf.shape[0]
    for i in range(first, count):
        while pos < n and buf[pos] == 10:
            pos += 1
        start = pos
        while pos < n and buf[pos] != 32:
            pos += 1
        if pos >= n or n - (pos + 1) < row_bytes:
            return i, start, w, False
        if w + (pos - start) + 1 > word_bytes.shape[0]:
            return i, start, w, True
        for k in range(start, pos):
            word_bytes[w] = buf[k]
            w += 1
        word_bytes[w] = 10
        w += 1
        word_ends[i] = w - 1
        pos += 1
        out[i, :] = buf[pos:pos + row_bytes]
        pos += row_bytes
    return count, pos, w, False


def _parse_header(line, path):
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise VectorFileError(
            f"{path}, line 1: expected a header '<number of words> <vector size>', received "
            f"{line[:60]!r}. For a GloVe file (no header) pass no_header=True.")
    return int(parts[0]), int(parts[1])


def _decode_words(word_bytes, word_ends, count, encoding, unicode_errors, path):
    """Words from the ``\\n``-joined bytes; one decode for all of them when possible."""
    try:
        words = bytes(word_bytes).decode(encoding, errors=unicode_errors).split("\n")[:-1]
        if len(words) == count:
            return words
    except UnicodeDecodeError:
        pass
    words, start = [], 0
    for i, end in enumerate(word_ends[:count]):
        raw = bytes(word_bytes[start:end])
        try:
            words.append(raw.decode(encoding, errors=unicode_errors))
        except UnicodeDecodeError as err:
            raise VectorFileDecodeError(
                f"{path}: word #{i + 1} ({raw!r}) is not valid {encoding}: {err.reason} at "
                f"byte {err.start} of the word. Pass encoding= the file's encoding, or "
                f"unicode_errors='ignore' or 'replace' to load it anyway.",
                err.encoding, err.object, err.start, err.end, err.reason) from None
        start = end + 1
    return words


#: bytes a vector of a *text* file is made of: a binary file read as text shows these only.
_TEXT_BYTES = np.zeros(256, dtype=bool)
_TEXT_BYTES[np.frombuffer(b"0123456789.-+eE \t\r\n", np.uint8)] = True


def _looks_like_text(buf, newline, row_bytes):
    """Whether the first record after the header is ``word 0.1 -0.2 ...`` text rather than
    a word and raw float32 bytes (a text file opened with ``binary=True``)."""
    first = buf[newline + 1:newline + 1 + 4096]
    space = int(np.argmax(first == 32)) if np.any(first == 32) else -1
    sample = first[space + 1:space + 1 + min(row_bytes, 256)] if space >= 0 else first[:0]
    return len(sample) >= 16 and bool(_TEXT_BYTES[sample].all())


def read_binary(path, limit=None, encoding="utf8", unicode_errors="strict"):
    """``(words, vectors)`` from a word2vec.c binary file (``.gz``/``.bz2`` too)."""
    buf = _file_bytes(path)
    newline = int(np.argmax(buf[:4096] == 10)) if len(buf) else 0
    if not len(buf) or buf[newline] != 10:
        raise VectorFileError(f"{path}, line 1: no header line '<number of words> <vector size>' "
                              f"found (file of {len(buf)} bytes).")
    count, dims = _parse_header(bytes(buf[:newline]).decode("ascii", "replace"), path)
    if _looks_like_text(buf, newline, dims * 4):
        raise VectorFileError(
            f"{path}: this looks like a text file; pass binary=False (its first vector is "
            f"written as numbers in text, not as {dims} raw float32 values).")
    wanted = min(count, limit) if limit else count
    out = np.empty((wanted, dims), dtype=np.float32)
    word_ends = np.empty(wanted, dtype=np.int64)
    # Words average far under 64 bytes: start there and grow (doubling) only when needed.
    room = max(len(buf) - newline - wanted * dims * 4, 0) + wanted
    word_bytes = np.empty(min(room, wanted * 64) + 4096, np.uint8)
    got, end, used, full = 0, newline + 1, 0, True
    while full:
        got, end, used, full = _scan_binary(buf, end, got, wanted, dims * 4, out.view(np.uint8),
                                            word_bytes, used, word_ends)
        if full:
            word_bytes = np.concatenate([word_bytes, np.empty(len(word_bytes), np.uint8)])
    if got < wanted:
        raise TruncatedVectorFileError(
            f"{path}: the header (line 1) declares {count} words of {dims} float32 values "
            f"({dims * 4} bytes each after the word), but the file ends inside record "
            f"#{got + 1} (which starts at byte offset {end} of {len(buf)}): it holds {got} "
            f"whole records. The file is truncated: download or export it again, or load the "
            f"{got} whole records with limit={got}.")
    words = _decode_words(word_bytes[:used], word_ends, wanted, encoding, unicode_errors, path)
    if count == wanted and end < len(buf) and bytes(buf[end:]).strip():
        logger.warning("%s: %d bytes after the %d words the header declares were ignored",
                       path, len(buf) - end, count)
    return words, out


def _split_lines(data, first_line, path, dims, encoding, unicode_errors):
    """``(words, vectors)`` from text lines ``word v1 .. v_dims``; errors name the line."""
    lines = data.split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()
    heads, rests = [], []
    for line in lines:
        word, _, rest = line.rstrip().partition(b" ")
        heads.append(word)
        rests.append(rest)
    bad = [i for i, r in enumerate(rests) if r.count(b" ") != dims - 1 and len(r.split()) != dims]
    if bad:
        i = bad[0]
        found = len(rests[i].split())
        raise VectorFileError(
            f"{path}, line {first_line + i}: expected a word and {dims} values, received "
            f"{found} values for word {heads[i].decode(encoding, 'replace')!r}. All lines must "
            f"have the same number of values (fix or drop that line).")
    values = np.array(b" ".join(rests).split(), dtype=np.float32) if rests else \
        np.zeros(0, np.float32)
    words = _decode_words(np.frombuffer(b"\n".join(heads) + b"\n", np.uint8),
                          np.cumsum([len(h) + 1 for h in heads]) - 1, len(heads), encoding,
                          unicode_errors, path)
    return words, values.reshape(len(heads), dims)


def read_text(path, limit=None, encoding="utf8", unicode_errors="strict", no_header=False):
    """``(words, vectors)`` from a word2vec.c text file or (``no_header``) a GloVe file."""
    with open_binary(path) as f:
        if no_header:
            data = f.read()
            if limit:
                data = b"\n".join(data.split(b"\n", limit)[:limit])
            first = data.split(b"\n", 1)[0].rstrip().split(b" ")
            dims = len(first) - 1
            if dims < 1:
                raise VectorFileError(f"{path}, line 1: expected 'word v1 v2 ...', received "
                                      f"{data[:60]!r}")
            return _split_lines(data, 1, path, dims, encoding, unicode_errors)
        count, dims = _parse_header(f.readline().decode("ascii", "replace"), path)
        wanted = min(count, limit) if limit else count
        body = b"".join(f.readline() for _ in range(wanted)) if wanted < count else f.read()
    words, vectors = _split_lines(body, 2, path, dims, encoding, unicode_errors)
    if len(words) < wanted:
        raise TruncatedVectorFileError(
            f"{path}: the header (line 1) declares {count} words but the file has only "
            f"{len(words)} vector lines (it ends at line {len(words) + 1}). Fix the header to "
            f"'{len(words)} {dims}' or re-export the file.")
    if len(words) > wanted:
        if limit is None or limit >= count:
            raise VectorFileError(
                f"{path}: the header (line 1) declares {count} words but line {count + 2} holds "
                f"another vector ({len(words)} in all). Fix the header to '{len(words)} {dims}'.")
        words, vectors = words[:wanted], vectors[:wanted]
    return words, vectors


def write(path, words, vectors, binary, write_header=True):
    """Write ``words``/``vectors`` (float32) in word2vec.c format, to a temporary file first."""
    vectors = np.asarray(vectors, dtype=np.float32)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        if write_header:
            f.write(f"{len(words)} {vectors.shape[1]}\n".encode("utf8"))
        if binary:
            for word, row in zip(words, vectors):
                f.write(f"{word} ".encode("utf8") + row.tobytes() + b"\n")
        else:
            for word, row in zip(words, vectors):
                f.write(f"{word} {' '.join(map(str, row))}\n".encode("utf8"))
    os.replace(tmp, path)
