"""Keras's cached model files (ImageNet weights, the class index), found where Keras keeps
them: ``$KERAS_HOME/models`` or ``~/.keras/models`` (``/tmp/.keras/models`` when Keras fell
back there). kaffe never downloads: a missing file is one error naming the file, the folder
and the URL to fetch it from; a cached file whose MD5 differs from Keras's is named as
corrupt or truncated.
"""
import hashlib
import os

_hash_checked = set()  # paths whose hash matched in this process (the big files are slow)


def keras_cache_dirs(cache_subdir="models"):
    """The folders Keras would use for ``cache_subdir``, first the one it writes to."""
    home = os.environ.get("KERAS_HOME")
    bases = [home] if home else [os.path.join(os.path.expanduser("~"), ".keras")]
    bases.append(os.path.join("/tmp", ".keras"))
    return [os.path.join(base, cache_subdir) for base in bases]


def cached_model_file(fname, origin, file_hash=None, cache_subdir="models"):
    """The path of ``fname`` in Keras's cache, checked against Keras's MD5 ``file_hash``."""
    folders = keras_cache_dirs(cache_subdir)
    for folder in folders:
        path = os.path.join(folder, fname)
        if os.path.isfile(path):
            if file_hash:
                _check_md5(path, file_hash, origin)
            return path
    raise FileNotFoundError(
        f"The Keras file '{fname}' is not in the Keras cache folder '{folders[0]}', and kaffe "
        f"does not download. Fetch it from {origin} and save it as "
        f"'{os.path.join(folders[0], fname)}' (set KERAS_HOME to use another folder), or pass "
        "weights=None for a randomly initialised model.")


def _check_md5(path, expected, origin):
    if path in _hash_checked:
        return
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise ValueError(
            f"The cached Keras file '{path}' has MD5 {digest.hexdigest()}, but Keras's file has "
            f"{expected}: it is corrupt or truncated. Delete it and download it again from "
            f"{origin}.")
    _hash_checked.add(path)
