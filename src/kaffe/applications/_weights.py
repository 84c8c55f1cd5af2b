"""Keras's cached model files (ImageNet weights, the class index), found where Keras keeps
them: ``$KERAS_HOME/models`` or ``~/.keras/models``, through ``kaffe.utils.get_file`` (which
never downloads: a missing file is one error naming the URL and the exact path to put it at;
a cached file whose MD5 differs from Keras's is named with both hashes)."""
from kaffe.utils.file_utils import CachedFileError, get_file


def cached_model_file(fname, origin, file_hash=None, cache_subdir="models"):
    """The path of ``fname`` in Keras's model cache, checked against Keras's ``file_hash``."""
    try:
        return get_file(fname, origin, file_hash=file_hash, cache_subdir=cache_subdir)
    except CachedFileError as error:
        raise CachedFileError(f"{error} For a randomly initialised model pass weights=None."
                              ) from None
