"""Where dataset files live on this machine; kaffe never downloads.

Search order for a dataset ``name`` (e.g. ``"mnist"``), first folder holding the files wins:

1. ``$KAFFE_DATA_HOME/<name>``
2. extra system folders the dataset names (e.g. ``/usr/share/datasets/fashion-mnist``)
3. ``<ancestor>/shared/data/<name>`` for every ancestor of the current directory, then of the
   installed package, i.e. ``<repo>/../shared/data/<name>`` next to a checkout
"""
import os

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../kaffe

#: Folder with data files bundled in the package (small samples only).
BUNDLED_DIR = os.path.join(_PACKAGE_DIR, "data")


def data_home():
    """``$KAFFE_DATA_HOME`` expanded, or ``None`` when unset or empty."""
    value = os.environ.get("KAFFE_DATA_HOME")
    return os.path.abspath(os.path.expanduser(value)) if value else None


def _ancestors(start):
    path = os.path.abspath(start)
    while True:
        yield path
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def candidate_dirs(name, system_dirs=()):
    """Folders to look in for dataset ``name``, in order, without duplicates (may not exist)."""
    found = []
    home = data_home()
    if home:
        found.append(os.path.join(home, name))
    found.extend(system_dirs)
    for start in (os.getcwd(), _PACKAGE_DIR):
        for ancestor in _ancestors(start):
            found.append(os.path.join(ancestor, "shared", "data", name))
    unique = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def find_dataset_dir(name, has_files, system_dirs=()):
    """First of :func:`candidate_dirs` for which ``has_files(folder)`` is true, else ``None``.

    Returns ``(folder_or_None, folders_searched)`` so a caller can say where it looked.
    """
    searched = candidate_dirs(name, system_dirs)
    for folder in searched:
        if os.path.isdir(folder) and has_files(folder):
            return folder, searched
    return None, searched
