"""kaffe.data: databases and Datums against files real Caffe wrote (shared/reference/), and the
writer's promise that an interrupted write leaves nothing behind."""
import os
import shutil

import numpy as np
import pytest

from kaffe.data import DataSourceError, MissingSourceError
from kaffe.data import datum as D
from kaffe.data.db import DBWriter, detect_backend, open_db

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
REF = os.path.abspath(os.path.join(SHARED, "reference"))
needs_ref = pytest.mark.skipif(not os.path.isdir(os.path.join(REF, "images")),
                               reason="shared/reference (real-Caffe databases) absent")


def _records(path):
    with open_db(path) as db:
        return list(db)


@needs_ref
def test_reader_iterates_caffes_lmdb_in_key_order():
    recs = _records(os.path.join(REF, "mnist", "mnist_test_lmdb"))
    assert [k for k, _ in recs] == [b"%08d" % i for i in range(200)]
    first = D.parse_datum(recs[0][1])
    assert (first.channels, first.height, first.width, first.label) == (1, 28, 28, 7)
    assert D.datum_to_array(first).shape == (1, 28, 28)
    with open_db(os.path.join(REF, "mnist", "mnist_test_lmdb"), "lmdb") as db:
        assert db.backend == "lmdb" and len(db) == 200


@needs_ref
def test_cursor_wraps_around_like_caffes():
    with open_db(os.path.join(REF, "images", "images_64_lmdb")) as db:
        keys = [k for k, _ in db]
        cursor = db.cursor()
        seen = [cursor.next()[0] for _ in range(30)]
        cursor.close()
    assert seen == [keys[i % 12] for i in range(30)]


@needs_ref
def test_encoded_png_datums_decode_to_caffes_raw_datums():
    raw = _records(os.path.join(REF, "images", "images_64_lmdb"))
    enc = _records(os.path.join(REF, "images", "images_64_png_encoded_lmdb"))
    for (k1, v1), (k2, v2) in zip(raw, enc):
        assert k1 == k2
        a, b = D.parse_datum(v1), D.parse_datum(v2)
        assert b.encoded and a.label == b.label
        np.testing.assert_array_equal(D.datum_to_array(b), D.datum_to_array(a))
        assert D.datum_shape(b) == (3, 64, 64)
        # Caffe's CVMatToDatum of the decoded image re-creates the raw record byte for byte
        assert D.image_to_datum(D.datum_to_image(b), a.label).SerializeToString() == v1


@needs_ref
def test_datum_bytes_equal_pycaffes():
    io_ref = os.path.join(REF, "pycaffe_io")
    arr = np.load(os.path.join(io_ref, "datum_uint8_array.npy"))
    with open(os.path.join(io_ref, "datum_uint8_label7.bin"), "rb") as f:
        assert D.array_to_datum(arr, 7).SerializeToString() == f.read()
    farr = np.load(os.path.join(io_ref, "datum_float_array.npy")).astype(np.float64)
    with open(os.path.join(io_ref, "datum_float_label3.bin"), "rb") as f:
        ref = f.read()
    assert D.array_to_datum(farr, 3).SerializeToString() == ref
    assert not D.array_to_datum(arr).HasField("label")   # pycaffe leaves label unset


def test_datum_errors():
    with pytest.raises(ValueError, match="3-D C x H x W.*shape \\(2, 2\\)"):
        D.array_to_datum(np.zeros((2, 2)))
    with pytest.raises(DataSourceError, match="record 'x' is not a Caffe Datum"):
        D.parse_datum(b"\xff\xff\xff", "record 'x'")
    bad = D.Datum(channels=1, height=2, width=2, data=b"abc")
    with pytest.raises(DataSourceError, match="3 bytes for a 1x2x2 image"):
        D.datum_to_array(bad)
    with pytest.raises(DataSourceError, match="Could not decode encoded Datum"):
        D.datum_to_array(D.Datum(data=b"not an image", encoded=True))


@pytest.mark.parametrize("backend", ["lmdb", "leveldb"])
def test_writer_round_trip_and_key_order(tmp_path, backend):
    path = tmp_path / f"db_{backend}"
    items = {f"{i:03d}": os.urandom(50) for i in (5, 1, 3, 2, 4)}
    with DBWriter(path, backend, commit_every=2) as db:
        for k, v in items.items():
            db.put(k, v)
    assert detect_backend(path) == backend
    assert _records(path) == sorted((k.encode(), v) for k, v in items.items())
    assert not [p for p in os.listdir(tmp_path) if "kaffe-tmp" in p]


@pytest.mark.parametrize("backend", ["lmdb", "leveldb"])
def test_interrupted_write_leaves_no_database(tmp_path, backend):
    path = tmp_path / "out_db"
    with pytest.raises(KeyboardInterrupt):
        with DBWriter(path, backend, commit_every=3) as db:
            for i in range(10):
                db.put(f"{i:08d}", b"x" * 100)
                if i == 6:
                    raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    # an existing database is kept until the new one is complete
    with DBWriter(path, backend) as db:
        db.put("old", b"1")
    with pytest.raises(FileExistsError, match="already exists"):
        DBWriter(path, backend)
    with pytest.raises(RuntimeError):
        with DBWriter(path, backend, overwrite=True) as db:
            db.put("new", b"2")
            raise RuntimeError("stop")
    assert _records(path) == [(b"old", b"1")]
    with DBWriter(path, backend, overwrite=True) as db:
        db.put("new", b"2")
    assert _records(path) == [(b"new", b"2")]
    assert sorted(os.listdir(tmp_path)) == ["out_db"]


def test_open_db_errors(tmp_path):
    with pytest.raises(MissingSourceError, match="'nope_lmdb' does not exist"):
        open_db("nope_lmdb")
    (tmp_path / "file.txt").write_text("hi")
    with pytest.raises(DataSourceError, match="is a file, not a Caffe database"):
        open_db(tmp_path / "file.txt")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x.jpg").write_bytes(b"")
    with pytest.raises(DataSourceError, match="not a Caffe database.*holds x.jpg"):
        open_db(tmp_path / "dir")
    with pytest.raises(ValueError, match="Unknown database backend 'rocksdb'"):
        DBWriter(tmp_path / "new", "rocksdb")
    with pytest.raises(MissingSourceError, match="Folder for the new database"):
        DBWriter(tmp_path / "no" / "such" / "db", "lmdb")


@needs_ref
def test_reader_of_a_copied_leveldb_matches_the_lmdb():
    pytest.importorskip("plyvel")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        # LevelDB has no read-only mode: opening rewrites its log, so read a copy
        copy = os.path.join(tmp, "ldb")
        shutil.copytree(os.path.join(REF, "mnist", "mnist_test_leveldb"), copy)
        assert _records(copy) == _records(os.path.join(REF, "mnist", "mnist_test_lmdb"))

