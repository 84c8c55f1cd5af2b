"""``keras.utils.get_file`` over Keras's download cache, without the download.

Keras keeps what it downloads in ``<cache_dir>/<cache_subdir>/<fname>``: ``cache_dir`` is
``$KERAS_HOME`` when set, else ``~/.keras``; ``cache_subdir`` is ``"datasets"``. kaffe reads the
same places, so a file Keras (2 or 3) downloaded before, or one a user put there by hand, is
found; kaffe itself never reaches the network. A file that is absent gives one error naming the
URL, the exact path to put it at and (when known) its size.
"""
import hashlib
import logging
import os
import tarfile
import zipfile

logger = logging.getLogger(__name__)


class CachedFileError(FileNotFoundError):
    """A file ``get_file`` needs is not in the Keras cache (kaffe does not download)."""


class CorruptCachedFileError(ValueError):
    """A cached file whose hash differs from the expected one, or that cannot be read."""


def keras_home():
    """Keras's cache folder: ``$KERAS_HOME`` if set, else ``~/.keras``."""
    value = os.environ.get("KERAS_HOME")
    return os.path.expanduser(value) if value else os.path.join(os.path.expanduser("~"), ".keras")


def cache_folder(cache_subdir="datasets", cache_dir=None):
    """``<cache_dir or keras_home()>/<cache_subdir>`` (an absolute ``cache_subdir`` wins)."""
    base = os.path.expanduser(os.fspath(cache_dir)) if cache_dir else keras_home()
    return os.path.join(base, os.fspath(cache_subdir))


def hash_file(path, algorithm="sha256", chunk_size=1 << 20):
    """Hex digest of the file at ``path`` (``"sha256"`` or ``"md5"``)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _algorithm(file_hash, hash_algorithm="auto"):
    """Keras's rule: ``auto`` means sha256 for a 64-digit hash, md5 otherwise."""
    if hash_algorithm in ("sha256", "md5"):
        return hash_algorithm
    if hash_algorithm != "auto":
        raise ValueError(f"get_file expected hash_algorithm 'auto', 'sha256' or 'md5'. "
                         f"Received: hash_algorithm={hash_algorithm!r}")
    return "sha256" if len(file_hash) == 64 else "md5"


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=65535):
    """Whether the file's hash equals ``file_hash`` (Keras's ``validate_file``)."""
    return hash_file(fpath, _algorithm(file_hash, algorithm), chunk_size) == str(file_hash)


def hash_mismatch(path, file_hash, hash_algorithm="auto", expected_size=None):
    """``None`` when ``path`` hashes to ``file_hash``, else a sentence naming the two hashes and
    sizes."""
    algorithm = _algorithm(file_hash, hash_algorithm)
    actual = hash_file(path, algorithm)
    if actual == str(file_hash):
        return None
    size = os.path.getsize(path)
    sizes = (f"{size} bytes, expected {expected_size}" if expected_size
             else f"{size} bytes")
    return (f"{path} has {algorithm} {actual} ({sizes}) but the file Keras downloads has "
            f"{algorithm} {file_hash}")


def known_size(origin):
    """The size in bytes of a file Keras's own loaders download from ``origin``, else None."""
    from kaffe.datasets.keras_cache import FILES
    return next((spec.size for spec in FILES.values() if spec.origin == origin), None)


def missing_file_error(origin, expected_path, size=None, also=()):
    """The one error for a file that is not in the cache: URL, exact path, size (given, or
    known for Keras's own dataset files)."""
    size = size or (known_size(origin) if origin else None)
    size_text = f" ({size:,} bytes)" if size else ""
    also_text = ("; kaffe also looked for " + ", ".join(also)) if also else ""
    return CachedFileError(
        f"kaffe cannot download files, and {expected_path} is not there{also_text}. Download "
        f"{origin}{size_text} yourself and put it at {expected_path} (set KERAS_HOME to use "
        f"another cache folder than {keras_home()}), or pass the local path to the code that "
        "needs it.")


def extract_archive(archive, into, archive_format="auto"):
    """Extract a tar (``.tar``, ``.tar.gz``, ``.tar.bz2``) or zip archive into ``into``.

    Members that would land outside ``into`` (absolute paths, ``..``, links out) are refused.
    Returns True when ``archive`` was one of the allowed formats, False otherwise.
    """
    formats = {"auto": ("tar", "zip"), None: (), "tar": ("tar",), "zip": ("zip",)}
    allowed = formats.get(archive_format, tuple(archive_format or ()))
    try:
        if "tar" in allowed and tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                tar.extractall(into, filter="data")
            return True
        if "zip" in allowed and zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                root = os.path.realpath(into)
                for name in zf.namelist():
                    target = os.path.realpath(os.path.join(root, name))
                    if os.path.commonpath([root, target]) != root:
                        raise CorruptCachedFileError(
                            f"{archive}: member {name!r} would be written outside {into}")
                zf.extractall(into)
            return True
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise CorruptCachedFileError(
            f"cannot extract {archive}: {error} (truncated or corrupt download? delete it and "
            "download it again)") from error
    return False


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False,
             archive_format="auto", cache_dir=None, force_download=False):
    """The cached copy of ``origin``, as Keras 2's ``get_file`` returns it, never downloading.

    Looks in ``<cache_dir>/<cache_subdir>`` (default ``$KERAS_HOME/datasets`` or
    ``~/.keras/datasets``) for ``fname`` (default: the last part of the URL):

    - plain: returns ``.../fname``;
    - ``untar=True``: the archive is ``.../fname.tar.gz``; it is extracted into the cache folder
      (unless ``.../fname`` already exists) and ``.../fname`` is returned (Keras 2);
    - ``extract=True``: the archive ``.../fname`` is extracted into the cache folder and its own
      path is returned (Keras 2). Keras 3's cache names (``fname_archive``) are found too.

    With ``file_hash`` (or the older ``md5_hash``) the file is checked, and a mismatch raises
    ``CorruptCachedFileError`` naming both hashes (Keras would download again; kaffe cannot).
    A file that is absent raises ``CachedFileError`` naming ``origin`` and the exact path.
    ``force_download=True`` is refused: there is nothing kaffe could download with.
    """
    if fname is None:
        if not origin:
            raise ValueError("get_file needs fname or origin. Received: fname=None, origin=None")
        fname = os.path.basename(origin.split("?")[0])
    fname = os.fspath(fname)
    datadir = cache_folder(cache_subdir, cache_dir)
    file_hash = file_hash or md5_hash
    if force_download:
        raise CachedFileError(f"get_file(force_download=True) for {origin}: kaffe cannot "
                              f"download files; put the file at {os.path.join(datadir, fname)}.")
    if untar:
        result = os.path.join(datadir, fname)
        archive = _first_existing([result + ".tar.gz", result + "_archive"])
    elif extract:
        result = os.path.join(datadir, fname)
        archive = _first_existing([result, result + "_archive"])
    else:
        result = archive = os.path.join(datadir, fname)
        if not os.path.exists(result):
            raise missing_file_error(origin, result)
    if untar and os.path.exists(result) and archive is None:
        return result  # extracted before; the archive may have been removed
    if archive is None:
        expected = os.path.join(datadir, fname + (".tar.gz" if untar else ""))
        raise missing_file_error(origin, expected)
    if file_hash is not None:
        problem = hash_mismatch(archive, file_hash, hash_algorithm)
        if problem:
            raise CorruptCachedFileError(f"{problem}: the cached file is corrupt, truncated or "
                                         f"another version. Download {origin} again.")
    if untar:
        if not os.path.exists(result):
            extract_archive(archive, datadir, "tar")
        return result
    if extract:
        extract_archive(archive, datadir, archive_format)
    return archive


def _first_existing(paths):
    return next((p for p in paths if os.path.exists(p)), None)
