"""Caffe's data tools in kaffe against real Caffe's outputs (shared/reference/mnist, images):
convert_mnist_data, convert_imageset, compute_image_mean, as functions and as ``kaffe``
commands with Caffe's flag spellings."""
import gzip
import os
import struct

import numpy as np
import pytest

from kaffe.caffe.tools import compute_image_mean, convert_imageset, convert_mnist_data
from kaffe.cli.main import main
from kaffe.data import DataSourceError
from kaffe.data.db import open_db

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
REF = os.path.join(SHARED, "reference")
IMAGES = os.path.join(SHARED, "data", "images") + "/"
LIST = os.path.join(REF, "images", "list.txt")
needs_ref = pytest.mark.skipif(not os.path.isdir(os.path.join(REF, "mnist")) or
                               not os.path.isdir(os.path.join(SHARED, "data", "mnist")),
                               reason="shared/reference and shared/data absent")


def _cut_idx(src, dst, n):
    """The first n items of a gzipped IDX file, count in the header set to n (how the
    reference's inputs were made)."""
    with open(src, "rb") as f:
        raw = gzip.decompress(f.read())
    ndim = raw[3]
    head = 4 + 4 * ndim
    dims = list(struct.unpack(">" + "I" * ndim, raw[4:head]))
    per = int(np.prod(dims[1:])) if ndim > 1 else 1
    dims[0] = n
    with open(dst, "wb") as f:
        f.write(raw[:4] + struct.pack(">" + "I" * ndim, *dims) + raw[head:head + n * per])
    return str(dst)


@pytest.fixture(scope="module")
def mnist_idx(tmp_path_factory):
    if not os.path.isdir(os.path.join(SHARED, "data", "mnist")):
        pytest.skip("shared/data/mnist absent")
    d, tmp = os.path.join(SHARED, "data", "mnist"), tmp_path_factory.mktemp("idx")
    return {"train": (_cut_idx(os.path.join(d, "train-images-idx3-ubyte.gz"), tmp / "tri", 1000),
                      _cut_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"), tmp / "trl", 1000)),
            "test": (_cut_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"), tmp / "tei", 200),
                     _cut_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"), tmp / "tel", 200))}


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _records(path):
    with open_db(path) as db:
        return list(db)


# ------------------------------------------------------------------------------ convert_mnist_data

@needs_ref
@pytest.mark.parametrize("split", ["train", "test"])
def test_convert_mnist_lmdb_is_byte_equal_to_caffes(mnist_idx, split, tmp_path):
    out = tmp_path / f"mnist_{split}_lmdb"
    assert convert_mnist_data(*mnist_idx[split], out) == (1000 if split == "train" else 200)
    ref = os.path.join(REF, "mnist", f"mnist_{split}_lmdb")
    assert _records(out) == _records(ref)                      # record-equal ...
    assert _bytes(out / "data.mdb") == _bytes(os.path.join(ref, "data.mdb"))   # ... and bytes


@needs_ref
def test_convert_mnist_leveldb_files_equal_caffes(mnist_idx, tmp_path):
    out = tmp_path / "mnist_test_leveldb"
    assert main(["convert_mnist_data", *mnist_idx["test"], str(out), "-backend", "leveldb"]) == 0
    ref = os.path.join(REF, "mnist", "mnist_test_leveldb")
    # compare the files without opening the reference (LevelDB rewrites what it opens)
    for name in ("000003.log", "CURRENT", "MANIFEST-000002"):
        assert _bytes(out / name) == _bytes(os.path.join(ref, name)), name
    assert _records(out) == _records(os.path.join(REF, "mnist", "mnist_test_lmdb"))


@needs_ref
def test_convert_mnist_cli_spellings_and_bad_input(mnist_idx, tmp_path, capsys):
    out = tmp_path / "a_lmdb"
    assert main(["convert_mnist_data", *mnist_idx["test"], str(out), "--backend=lmdb"]) == 0
    assert len(_records(out)) == 200
    assert main(["convert_mnist_data", *mnist_idx["test"], str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    swapped = [mnist_idx["test"][1], mnist_idx["test"][0]]
    assert main(["convert_mnist_data", *swapped, str(tmp_path / "b_lmdb")]) == 1
    assert "not an MNIST image file" in capsys.readouterr().err
    assert main(["convert_mnist_data", mnist_idx["test"][0], mnist_idx["train"][1],
                 str(tmp_path / "c_lmdb")]) == 1
    assert "200 images but" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["a_lmdb"]


# ------------------------------------------------------------------------------ convert_imageset

@needs_ref
@pytest.mark.parametrize("name, argv", [
    ("images_64_lmdb", []),
    ("images_64_png_encoded_lmdb", ["--encoded", "--encode_type=png"]),
])
def test_convert_imageset_is_byte_equal_to_caffes(name, argv, tmp_path):
    out = tmp_path / name
    args = ["convert_imageset", "--resize_height=64", "-resize_width", "64", *argv,
            IMAGES, LIST, str(out)]
    assert main(args) == 0
    ref = os.path.join(REF, "images", name)
    assert _records(out) == _records(ref)
    assert _bytes(out / "data.mdb") == _bytes(os.path.join(ref, "data.mdb"))


@needs_ref
def test_convert_imageset_gray_equals_caffe_except_profiled_pngs(tmp_path):
    out = tmp_path / "gray_lmdb"
    assert main(["convert_imageset", "-gray", "--resize_height=64", "--resize_width=64",
                 "--shuffle=false", IMAGES, LIST, str(out)]) == 0
    mine, ref = _records(out), _records(os.path.join(REF, "images", "images_64_gray_lmdb"))
    assert [k for k, _ in mine] == [k for k, _ in ref]
    differ = [k.decode() for (k, a), (_, b) in zip(mine, ref) if a != b]
    # OpenCV 4.6 (Caffe's) converted PNGs with an iCCP profile to gray inside libpng, in
    # linear light; opencv-python >= 4.8 converts the decoded BGR pixels instead.
    assert differ == ["00000002_astronaut.png", "00000006_chelsea.png"]


@needs_ref
def test_convert_imageset_keeps_raw_file_bytes_when_encoding_matches(tmp_path):
    (tmp_path / "l.txt").write_text("aero1.jpg 0\ncoffee.png 3\n")
    n = convert_imageset(IMAGES, tmp_path / "l.txt", tmp_path / "enc", encoded=True)
    assert n == 2
    (_, a), (_, b) = _records(tmp_path / "enc")
    from kaffe.data.datum import parse_datum
    assert parse_datum(a).data == _bytes(IMAGES + "aero1.jpg")
    assert parse_datum(b).data == _bytes(IMAGES + "coffee.png") and parse_datum(b).label == 3


@needs_ref
def test_convert_imageset_shuffle_and_missing_and_interrupt(tmp_path, monkeypatch, capsys):
    n = convert_imageset(IMAGES, LIST, tmp_path / "shuf", resize_height=8, resize_width=8,
                         shuffle=True, seed=3, backend="leveldb")
    keys = [k.decode() for k, _ in _records(tmp_path / "shuf")]
    names = sorted(k.split("_", 1)[1] for k in keys)
    with open(LIST) as f:
        assert n == 12 and names == sorted(line.split()[0] for line in f)
    (tmp_path / "l.txt").write_text("aero1.jpg 0\nmissing.jpg 1\n\napple.jpg 2\n")
    with pytest.raises(DataSourceError, match=r"l.txt: 1 listed image\(s\) not found: line 2"):
        convert_imageset(IMAGES, tmp_path / "l.txt", tmp_path / "m")
    assert main(["convert_imageset", "--skip_missing", IMAGES, str(tmp_path / "l.txt"),
                 str(tmp_path / "m")]) == 0
    assert [k for k, _ in _records(tmp_path / "m")] == [b"00000000_aero1.jpg",
                                                        b"00000002_apple.jpg"]
    # Ctrl-C half way: no database, no temporary folder
    import importlib
    module = importlib.import_module("kaffe.caffe.tools.convert_imageset")
    real, calls = module._images.read_image, []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(module._images, "read_image", interrupting)
    before = set(os.listdir(tmp_path))
    assert main(["convert_imageset", IMAGES, LIST, str(tmp_path / "cut")]) == 130
    assert set(os.listdir(tmp_path)) == before
    assert "interrupted" in capsys.readouterr().err


# ------------------------------------------------------------------------------ compute_image_mean

@needs_ref
@pytest.mark.parametrize("db, ref", [("images_64_lmdb", "mean"),
                                     ("images_64_png_encoded_lmdb", "mean"),
                                     ("images_64_gray_lmdb", "mean_gray")])
def test_compute_image_mean_equals_caffes(db, ref, tmp_path):
    out = tmp_path / "m.binaryproto"
    assert main(["compute_image_mean", os.path.join(REF, "images", db), str(out),
                 "-backend", "lmdb"]) == 0
    assert _bytes(out) == _bytes(os.path.join(REF, "images", f"{ref}.binaryproto"))
    mean = compute_image_mean(os.path.join(REF, "images", db))
    np.testing.assert_array_equal(mean, np.load(os.path.join(REF, "images", f"{ref}.npy")))


def test_compute_image_mean_refuses_mixed_sizes(tmp_path):
    from kaffe.data.datum import array_to_datum
    from kaffe.data.db import DBWriter
    with DBWriter(tmp_path / "mixed", "lmdb") as db:
        db.put("a", array_to_datum(np.zeros((1, 2, 2), np.uint8), 0).SerializeToString())
        db.put("b", array_to_datum(np.zeros((1, 3, 2), np.uint8), 0).SerializeToString())
    with pytest.raises(DataSourceError, match="record 'b'.*shape \\(1, 3, 2\\) but the first "
                                              "record has \\(1, 2, 2\\)"):
        compute_image_mean(tmp_path / "mixed", tmp_path / "m.binaryproto")
    assert not (tmp_path / "m.binaryproto").exists()
