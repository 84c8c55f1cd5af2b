"""Read the pickles inside Keras's dataset files without running code from them.

CIFAR's python batches are pickled dicts, and Keras's ``imdb.npz`` / ``reuters.npz`` hold
object arrays that ``.npy`` stores as pickles. A pickle can name any importable callable and have
it called, so these are read with an unpickler that admits only plain data: the built-in
containers, numbers, strings and bytes (which pickle builds without naming anything), and the few
NumPy constructors that rebuild arrays, dtypes and scalars. Anything else is refused with
``UnsafePickleError`` naming what the file tried to load, as ``torch.load(weights_only=True)``
does for checkpoints.
"""
import io
import pickle
import zipfile

import numpy as np

#: ``(module, name)`` globals a plain-data pickle may name: NumPy's array, dtype and scalar
#: rebuilders (under NumPy 1's and 2's module names), bytes written by Python 3 at protocol < 3
#: (``_codecs.encode``), and the built-in containers pickle reaches by name.
ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("builtins", "bytearray"), ("__builtin__", "set"), ("__builtin__", "frozenset"),
})


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that names something besides plain data."""


class PlainDataUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` admitting only :data:`ALLOWED_GLOBALS`; ``source`` names the file in
    errors."""

    def __init__(self, file, source="<pickle>", **kwargs):
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module, name):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise self._refuse(module, name)

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: the pickle refers to an outside object "
                                f"{pid!r}; kaffe reads only plain data.")

    def _refuse(self, module, name):
        return UnsafePickleError(
            f"{self.source} tried to load {module}.{name}: kaffe reads pickles in data files "
            "only when they hold plain data (lists, dicts, tuples, numbers, strings, bytes, NumPy "
            "arrays), since loading anything else can run code. If you trust this file, convert "
            "it once to plain arrays (np.savez) and load that.")


def load_pickle(path, encoding="ASCII"):
    """The plain data pickled in the file at ``path`` (``encoding="bytes"`` for Python 2
    pickles such as CIFAR's batches)."""
    with open(path, "rb") as f:
        try:
            return PlainDataUnpickler(f, source=str(path), encoding=encoding).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
            raise pickle.UnpicklingError(f"{path} is not a readable pickle ({error}): truncated "
                                         "or corrupt?") from error


def _read_npy(stream, source):
    """One ``.npy`` member: numeric arrays without pickle, object arrays through the
    plain-data unpickler."""
    try:
        return np.lib.format.read_array(stream, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise
    stream.seek(0)
    major, _ = np.lib.format.read_magic(stream)
    if major == 1:
        np.lib.format.read_array_header_1_0(stream)
    else:
        np.lib.format.read_array_header_2_0(stream)
    array = PlainDataUnpickler(stream, source=source).load()
    if not isinstance(array, np.ndarray):
        raise UnsafePickleError(f"{source} holds a pickled {type(array).__name__}, expected a "
                                "NumPy array")
    return array


def load_npz(path):
    """``{key: array}`` for every ``.npy`` member of the ``.npz`` at ``path``, object arrays
    read through :class:`PlainDataUnpickler` (never ``np.load(allow_pickle=True)``)."""
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                stream = io.BytesIO(archive.read(member))
                arrays[member[:-4]] = _read_npy(stream, f"{path}:{member}")
    except UnsafePickleError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, pickle.UnpicklingError, OSError) as error:
        raise ValueError(f"{path} is not a readable .npz file ({error}): truncated or "
                         "corrupt?") from error
    return arrays
