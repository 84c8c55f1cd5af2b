"""The errors kaffe's data side raises: each names the file (and line), what was found and
what was expected."""


class DataSourceError(ValueError):
    """A data source (database, list file, HDF5 file, mean file, image) is unusable."""


class MissingSourceError(DataSourceError, FileNotFoundError):
    """A data source path does not exist."""


def missing(path, what, hint=""):
    """A :class:`MissingSourceError` for ``path`` (relative paths are resolved against the
    current directory, as Caffe does)."""
    import os
    where = "" if os.path.isabs(path) else f" (resolved against the current directory " \
                                           f"{os.getcwd()!r}, as Caffe does)"
    return MissingSourceError(f"{what} {path!r} does not exist{where}.{hint}")
