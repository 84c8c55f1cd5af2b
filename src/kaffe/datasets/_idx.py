"""Reader for the IDX format of MNIST-like datasets (plain or gzipped).

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32
dimension sizes, then the data in C order, big-endian. Every field is checked, so a truncated
download or a file of the wrong kind fails with a ``ValueError`` naming the file and the problem.
"""
import gzip
import os
import zlib

import numpy as np

# dtype code (third byte of the magic number) -> big-endian numpy dtype
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path):
    """``(data, note)``: the bytes of ``path``, gunzipped when it is a gzip file (detected by
    content, not name); ``note`` qualifies "truncated" when the gzip stream itself ends early."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw, ""
    try:
        return gzip.decompress(raw), ""
    except EOFError:
        # Truncated gzip stream: keep what decompresses so the length checks can report sizes.
        partial = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(raw)
        return partial, " (its gzip stream ends early)"
    except (OSError, zlib.error) as e:
        raise ValueError(f"IDX file {path} is not a valid gzip file: {e}") from e


def read_idx(path, expected_shape=None):
    """Read one IDX file into a numpy array in native byte order.

    Args:
        path: file to read; gzip compression is detected from the content.
        expected_shape: optional tuple; ``None`` entries match any size. A mismatch raises
            ValueError.

    Returns:
        ``np.ndarray`` with the file's dtype (``uint8`` for MNIST) and dimensions.

    Raises:
        ValueError: bad magic number, unknown dtype code, a header or data section shorter or
            longer than the dimensions say, or a shape other than ``expected_shape``.
    """
    path = os.fspath(path)
    data, note = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"IDX file {path} is truncated{note}: expected at least 4 header bytes, "
                         f"got {len(data)}")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"IDX file {path} has a bad magic number 0x{data[:4].hex()}: expected the "
                         f"first two bytes to be 0x0000 (is this an IDX file?)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"IDX file {path} has unknown dtype code 0x{code:02X}: "
                         f"expected one of {known}")
    if ndim == 0:
        raise ValueError(f"IDX file {path} declares 0 dimensions: expected at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"IDX file {path} is truncated{note}: expected {header_len} header "
                         f"bytes for {ndim} dimensions, got {len(data)}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected_len = header_len + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected_len:
        raise ValueError(f"IDX file {path} is truncated{note}: expected {expected_len} bytes "
                         f"for shape {dims}, got {len(data)}")
    if len(data) > expected_len:
        raise ValueError(f"IDX file {path} is too long: expected {expected_len} bytes for shape "
                         f"{dims}, got {len(data)}")
    if expected_shape is not None:
        ok = len(expected_shape) == len(dims) and all(
            e is None or e == d for e, d in zip(expected_shape, dims))
        if not ok:
            raise ValueError(f"IDX file {path} has shape {dims}: expected {tuple(expected_shape)}")
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # native order, and a writable copy


# The four files of an MNIST-style dataset; each may be plain or end in ".gz", and some copies
# spell "-idx3" as ".idx3".
SPLIT_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _spellings(stem):
    dotted = stem.replace("-idx", ".idx")
    return (stem + ".gz", stem, dotted + ".gz", dotted)


def find_split_files(folder):
    """``{key: path}`` for the four IDX files in ``folder``; absent files are left out."""
    found = {}
    for key, stem in SPLIT_FILES.items():
        for name in _spellings(stem):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                found[key] = path
                break
    return found


def has_split_files(folder):
    return len(find_split_files(folder)) == len(SPLIT_FILES)


def load_split_folder(folder):
    """``(x_train, y_train), (x_test, y_test)`` from the four IDX files in ``folder``."""
    files = find_split_files(folder)
    missing = [SPLIT_FILES[k] + "[.gz]" for k in SPLIT_FILES if k not in files]
    if missing:
        raise FileNotFoundError(f"folder {folder} lacks the IDX file(s) {', '.join(missing)}")
    arrays = {key: read_idx(path) for key, path in files.items()}
    _check_pairs(arrays, folder)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def load_split_npz(path):
    """``(x_train, y_train), (x_test, y_test)`` from a Keras-style npz (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in NPZ_KEYS if k not in f.files]
        if missing:
            raise ValueError(f"npz file {path} lacks the key(s) {missing}: expected "
                             f"{list(NPZ_KEYS)}, found {sorted(f.files)}")
        arrays = {k: f[k] for k in NPZ_KEYS}
    _check_pairs(arrays, path)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _check_pairs(arrays, source):
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{source}: expected {split} images of shape (n, rows, cols) and "
                             f"labels of shape (n,), got {x.shape} and {y.shape}")
