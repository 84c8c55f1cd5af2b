"""Caffe's key-value databases, LMDB (``lmdb``) and LevelDB (``plyvel``), behind one API.

Reading::

    from kaffe.data.db import open_db
    with open_db("mnist_train_lmdb") as db:          # backend detected from the folder
        print(db.backend, len(db))
        for key, value in db:                        # bytes, in key order
            ...
        cursor = db.cursor()                         # Caffe's cursor: goes round at the end
        key, value = cursor.next()

Writing (what ``convert_imageset`` and friends use)::

    from kaffe.data.db import DBWriter
    with DBWriter("out_lmdb", "lmdb") as db:
        db.put("00000000", datum.SerializeToString())

A writer builds the database in a hidden temporary folder beside ``path`` and renames it to
``path`` only when the ``with`` block ends normally (or :meth:`DBWriter.close` is called); an
exception or Ctrl-C removes the temporary folder, so ``path`` never holds a half-written
database. Puts are committed in transactions of ``commit_every`` records, as Caffe's tools do.
LMDB maps start at 1 MiB and double when full (Caffe's ``LMDBTransaction``); LevelDB is
opened with Caffe's options (64 KiB blocks, 256 MiB write buffer).

Note: LevelDB has no read-only mode; opening one may rewrite its log into a table file (Caffe
does the same). Copy a LevelDB you must not modify before reading it.
"""
import os
import shutil
import threading

from kaffe.data.errors import DataSourceError, missing

__all__ = ["BACKENDS", "normalize_backend", "detect_backend", "open_db", "DBReader", "Cursor",
           "DBWriter"]

BACKENDS = ("lmdb", "leveldb")
LMDB_INITIAL_MAP_SIZE = 1024 * 1024   # LMDB's default, which Caffe keeps
_LEVELDB_OPTIONS = dict(block_size=65536, write_buffer_size=268435456, max_open_files=100)


def normalize_backend(backend):
    """'lmdb' or 'leveldb' from any spelling: a name in any case, or Caffe's
    ``DataParameter.DB`` enum value (LEVELDB = 0, LMDB = 1)."""
    if isinstance(backend, int) and not isinstance(backend, bool):
        if backend in (0, 1):
            return BACKENDS[1 - backend]
    elif isinstance(backend, str) and backend.lower() in BACKENDS:
        return backend.lower()
    raise ValueError(f"Unknown database backend {backend!r}; use 'lmdb' or 'leveldb'.")


def detect_backend(path):
    """The backend of the database folder ``path``: 'lmdb' (holds ``data.mdb``) or 'leveldb'
    (holds ``CURRENT``). A missing path or a folder that is neither raises a clear error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise missing(path, "Database", " Give the folder made by convert_imageset, "
                                        "convert_mnist_data or extract_features.")
    if not os.path.isdir(path):
        raise DataSourceError(f"{path!r} is a file, not a Caffe database: an LMDB or LevelDB "
                              f"database is a folder (holding data.mdb, or CURRENT and *.ldb).")
    names = set(os.listdir(path))
    if "data.mdb" in names:
        return "lmdb"
    if "CURRENT" in names:
        return "leveldb"
    shown = ", ".join(sorted(names)[:8]) or "nothing"
    raise DataSourceError(f"{path!r} is not a Caffe database: an LMDB folder holds data.mdb and "
                          f"a LevelDB folder holds CURRENT; this one holds {shown}.")


def open_db(path, backend=None):
    """A :class:`DBReader` over the database at ``path``; ``backend`` ('lmdb' / 'leveldb')
    is detected when None, and checked against the folder when given."""
    found = detect_backend(path)
    if backend is not None and normalize_backend(backend) != found:
        raise DataSourceError(f"{os.fspath(path)!r} is a {found} database but the backend was "
                              f"given as {normalize_backend(backend)}; set backend to {found} "
                              f"(or leave it out to detect it).")
    return DBReader(path, found)


class DBReader:
    """Read access to one database: iterate ``(key, value)`` bytes in key order, ``len()``,
    :meth:`cursor` for Caffe's endless reading. Use as a context manager or call
    :meth:`close`."""

    def __init__(self, path, backend):
        self.path = os.fspath(path)
        self.backend = normalize_backend(backend)
        self._db = _OPENERS[self.backend](self.path)

    def __iter__(self):
        if self.backend == "lmdb":
            with self._db.begin(buffers=False) as txn:
                yield from txn.cursor()
        else:
            yield from self._db.iterator()

    def __len__(self):
        if self.backend == "lmdb":
            return int(self._db.stat()["entries"])
        return sum(1 for _ in self._db.iterator(include_value=False))

    def first(self):
        """The first ``(key, value)`` in key order; an empty database raises."""
        for item in self:
            return item
        raise DataSourceError(f"Database {self.path!r} ({self.backend}) is empty.")

    def cursor(self):
        """A :class:`Cursor` at the first record. Each cursor has its own read transaction /
        iterator; create it in the thread that uses it."""
        return Cursor(self)

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<DBReader {self.backend} {self.path!r}>"


class Cursor:
    """Caffe's database cursor: :meth:`next` returns the current ``(key, value)`` and moves on,
    starting again at the first record after the last (Caffe's ``Next`` + ``SeekToFirst``)."""

    def __init__(self, reader):
        self.reader = reader
        if reader.backend == "lmdb":
            self._txn = reader._db.begin(buffers=False)
            self._it = self._txn.cursor()
            self._valid = self._it.first()
        else:
            self._txn = None
            self._it = reader._db.raw_iterator()
            self._it.seek_to_first()
            self._valid = self._it.valid()
        if not self._valid:
            raise DataSourceError(f"Database {reader.path!r} ({reader.backend}) is empty.")
        self.wraps = 0

    def _item(self):
        return self._it.key(), self._it.value()

    def _advance(self):
        if self._txn is not None:
            if not self._it.next():
                self._it.first()
                self.wraps += 1
        else:
            self._it.next()
            if not self._it.valid():
                self._it.seek_to_first()
                self.wraps += 1

    def next(self):
        """The current ``(key, value)``; then move to the next record (wrapping)."""
        item = self._item()
        self._advance()
        return item

    def peek(self):
        """The current ``(key, value)`` without moving."""
        return self._item()

    def skip(self, n):
        """Move ``n`` records on (wrapping)."""
        for _ in range(int(n)):
            self._advance()

    def close(self):
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        elif self._it is not None:
            self._it.close()
        self._it = None


_LMDB_ENVS = {}   # real path -> [environment, users]: LMDB allows one open per process
_LMDB_LOCK = threading.Lock()


def _open_lmdb(path):
    import lmdb
    key = os.path.realpath(path)
    with _LMDB_LOCK:
        if key in _LMDB_ENVS:
            _LMDB_ENVS[key][1] += 1
            return _SharedEnv(key)
        try:
            env = lmdb.open(path, readonly=True, lock=True, subdir=True, max_readers=126)
        except lmdb.Error as err:
            try:  # a read-only folder: no lock file can be made, read without one
                env = lmdb.open(path, readonly=True, lock=False, subdir=True)
            except lmdb.Error:
                raise DataSourceError(f"Cannot open LMDB {path!r}: {err}. Is data.mdb an LMDB "
                                      f"file?") from None
        _LMDB_ENVS[key] = [env, 1]
        return _SharedEnv(key)


class _SharedEnv:
    """One reader's handle on a process-wide LMDB environment; ``close`` releases it."""

    def __init__(self, key):
        self._key = key
        self._env = _LMDB_ENVS[key][0]

    def begin(self, **kwargs):
        return self._env.begin(**kwargs)

    def stat(self):
        return self._env.stat()

    def close(self):
        with _LMDB_LOCK:
            entry = _LMDB_ENVS.get(self._key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] == 0:
                    del _LMDB_ENVS[self._key]
                    entry[0].close()


def _open_leveldb(path):
    import plyvel
    try:
        return plyvel.DB(path, create_if_missing=False, **_LEVELDB_OPTIONS)
    except (plyvel.Error, OSError) as err:
        raise DataSourceError(f"Cannot open LevelDB {path!r}: {err}.") from None


_OPENERS = {"lmdb": _open_lmdb, "leveldb": _open_leveldb}


# ------------------------------------------------------------------------------ writing

class DBWriter:
    """Write a new database at ``path`` (``backend`` 'lmdb' or 'leveldb'): :meth:`put` key /
    value pairs (str or bytes), then :meth:`close` (or leave the ``with`` block) to commit and
    move it into place. ``path`` must not exist unless ``overwrite`` (the old one is replaced
    only once the new one is complete)."""

    def __init__(self, path, backend="lmdb", overwrite=False, commit_every=1000):
        self.path = os.path.abspath(os.fspath(path))
        self.backend = normalize_backend(backend)
        self.overwrite = overwrite
        self.commit_every = int(commit_every)
        if os.path.exists(self.path) and not overwrite:
            raise FileExistsError(f"{os.fspath(path)!r} already exists; remove it or choose "
                                  f"another name (Caffe's tools never overwrite a database).")
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise missing(parent, "Folder for the new database")
        self.tmp_path = os.path.join(
            parent, f".{os.path.basename(self.path)}.kaffe-tmp-{os.getpid()}")
        if os.path.exists(self.tmp_path):
            shutil.rmtree(self.tmp_path)
        self._pending = []
        self.count = 0
        self._closed = False
        if self.backend == "lmdb":
            import lmdb
            self._map_size = LMDB_INITIAL_MAP_SIZE
            self._db = lmdb.open(self.tmp_path, map_size=self._map_size, subdir=True)
        else:
            import plyvel
            self._db = plyvel.DB(self.tmp_path, create_if_missing=True, error_if_exists=True,
                                 **_LEVELDB_OPTIONS)

    def put(self, key, value):
        """Queue one record; committed every ``commit_every`` puts and at close."""
        if self._closed:
            raise RuntimeError(f"DBWriter for {self.path!r} is closed.")
        key = key.encode() if isinstance(key, str) else bytes(key)
        self._pending.append((key, bytes(value)))
        self.count += 1
        if len(self._pending) >= self.commit_every:
            self.commit()

    def commit(self):
        """Write the queued records in one transaction."""
        if not self._pending:
            return
        if self.backend == "lmdb":
            self._commit_lmdb()
        else:
            with self._db.write_batch() as batch:
                for key, value in self._pending:
                    batch.put(key, value)
        self._pending = []

    def _commit_lmdb(self):
        import lmdb
        while True:
            txn = self._db.begin(write=True)
            try:
                for key, value in self._pending:
                    txn.put(key, value)
                txn.commit()
                return
            except lmdb.MapFullError:
                txn.abort()
                self._map_size *= 2   # Caffe's LMDBTransaction::DoubleMapSize
                self._db.set_mapsize(self._map_size)
            except BaseException:
                txn.abort()
                raise

    def close(self):
        """Commit what is queued, close, and move the finished database to ``path``."""
        if self._closed:
            return
        self.commit()
        self._db.close()
        self._closed = True
        old = None
        if os.path.exists(self.path):
            old = self.tmp_path + "-old"
            os.rename(self.path, old)
        os.rename(self.tmp_path, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self):
        """Drop everything written: the temporary folder is removed, ``path`` is untouched."""
        if not self._closed:
            self._closed = True
            try:
                self._db.close()
            finally:
                shutil.rmtree(self.tmp_path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        if getattr(self, "_closed", True) is False:
            self.abort()
