"""Caffe data layers against real Caffe's forward batches (shared/reference/data_layers/).

Each reference case was built by pycaffe with ``caffe.Net(p, caffe.TEST)`` from its own folder
and ``net.forward()`` called 1-4 times; relative ``source`` paths resolve against the current
directory as in Caffe, so each test runs from that folder."""
import os

import numpy as np
import pytest

import kaffe.caffe as caffe
from kaffe.data import DataSourceError, MissingSourceError

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
REF = os.path.abspath(os.path.join(SHARED, "reference"))
LAYERS = os.path.join(REF, "data_layers")
needs_ref = pytest.mark.skipif(not os.path.isdir(LAYERS),
                               reason="shared/reference/data_layers (real-Caffe batches) absent")


def _batches(case):
    z = np.load(os.path.join(LAYERS, f"{case}.npz"))
    n = len([k for k in z.files if k.startswith("data__batch")])
    return [(z[f"data__batch{k}"], z[f"label__batch{k}"]) for k in range(n)]


def _forward_matches(case, monkeypatch, atol=0.0):
    monkeypatch.chdir(LAYERS)
    net = caffe.Net(f"{case}.prototxt", caffe.TEST)
    for k, (data, label) in enumerate(_batches(case)):
        net.forward()
        assert net.blobs["data"].data.shape == data.shape, (case, k)
        np.testing.assert_allclose(net.blobs["data"].data, data, rtol=0, atol=atol,
                                   err_msg=f"{case} batch {k}")
        np.testing.assert_array_equal(net.blobs["label"].data, label, err_msg=f"{case} {k}")


# ------------------------------------------------------------------------------ HDF5Data

@needs_ref
def test_hdf5data_batches_wrap_like_caffe(monkeypatch):
    _forward_matches("hdf5data_batch3", monkeypatch)


@needs_ref
def test_hdf5data_tiny_solver_net_gives_caffes_first_loss(monkeypatch):
    monkeypatch.chdir(os.path.join(REF, "solvers"))
    net = caffe.Net("tiny_net.prototxt", "init.caffemodel", caffe.TRAIN)
    assert net.blobs["data"].shape == (8, 5) and net.blobs["label"].shape == (8,)
    assert abs(float(net.forward()["loss"]) - 1.0432) < 5e-5   # README: loss iter 0 = 1.0432


def _h5_net(tmp_path, files, batch, shuffle=False, tops=("data", "label")):
    (tmp_path / "list.txt").write_text("\n".join(str(f) for f in files) + "\n")
    top_text = " ".join(f'top: "{t}"' for t in tops)
    (tmp_path / "net.prototxt").write_text(
        f'layer {{ name: "h5" type: "HDF5Data" {top_text} hdf5_data_param {{ source: '
        f'"list.txt" batch_size: {batch} shuffle: {str(shuffle).lower()} }} }}')
    return tmp_path / "net.prototxt"


def _write_h5(path, **arrays):
    import h5py
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = v


def test_hdf5data_crosses_files_and_keeps_row_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = np.arange(10, dtype=np.float64).reshape(5, 2)
    b = 100 + np.arange(6, dtype=np.float32).reshape(3, 2)
    _write_h5("a.h5", data=a, label=np.arange(5, dtype=np.int32))
    _write_h5("b.h5", data=b, label=np.arange(5, 8, dtype=np.int32))
    net = caffe.Net(str(_h5_net(tmp_path, ["a.h5", "b.h5"], 3)), caffe.TRAIN)
    rows = np.concatenate([a, b]).astype(np.float32)
    labels = np.arange(8, dtype=np.float32)
    seen = []
    for _ in range(4):    # 12 rows over 8: wraps to the first file
        net.forward()
        seen.append((net.blobs["data"].data.copy(), net.blobs["label"].data.copy()))
    order = np.arange(12) % 8
    np.testing.assert_array_equal(np.concatenate([s[0] for s in seen]), rows[order])
    np.testing.assert_array_equal(np.concatenate([s[1] for s in seen]), labels[order])


def test_hdf5data_shuffle_is_a_permutation_per_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_h5("a.h5", data=np.arange(12, dtype=np.float32).reshape(12, 1))
    net = caffe.Net(str(_h5_net(tmp_path, ["a.h5"], 4, shuffle=True, tops=("data",))),
                    caffe.TRAIN)
    first = np.concatenate([net.forward()["data"].ravel().copy() for _ in range(3)])
    assert sorted(first) == list(range(12)) and list(first) != list(range(12))


def test_hdf5data_errors_name_the_file_and_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "n2.prototxt").write_text(
        'layer { name: "h5" type: "HDF5Data" top: "data" hdf5_data_param { '
        'source: "list.txt" batch_size: 2 } }')
    with pytest.raises(MissingSourceError, match="list.txt.*current directory"):
        caffe.Net("n2.prototxt", caffe.TEST)
    with pytest.raises(MissingSourceError, match="gone.h5"):
        caffe.Net(str(_h5_net(tmp_path, ["gone.h5"], 2)), caffe.TEST)
    _write_h5("a.h5", data=np.zeros((4, 2)), lbl=np.zeros(4))
    with pytest.raises(DataSourceError, match="no dataset 'label'.*data, lbl"):
        caffe.Net(str(_h5_net(tmp_path, ["a.h5"], 2)), caffe.TEST)
    _write_h5("c.h5", data=np.zeros((4, 2)), label=np.zeros(3))
    with pytest.raises(DataSourceError, match="3 rows but 'data' has 4"):
        caffe.Net(str(_h5_net(tmp_path, ["c.h5"], 2)), caffe.TEST)


# ------------------------------------------------------------------------------ Data / ImageData

@needs_ref
@pytest.mark.parametrize("case", ["mnist_data_scale", "data_meanvalue_batch5",
                                  "data_meanfile_crop_scale", "data_gray_lmdb_meanfile",
                                  "data_encoded_force_gray_crop", "imagedata_resize"])
def test_data_layer_batches_equal_caffes(case, monkeypatch):
    _forward_matches(case, monkeypatch)


# astronaut.png and chelsea.png carry an iCCP colour profile: OpenCV 4.6 (Caffe's) let libpng
# convert them to gray in linear light; opencv-python 4.12 converts the decoded BGR pixels.
GAMMA_PNG_ITEMS = (2, 6)


@needs_ref
def test_imagedata_gray_equals_caffe_except_profiled_pngs(monkeypatch):
    monkeypatch.chdir(LAYERS)
    net = caffe.Net("imagedata_gray_crop.prototxt", caffe.TEST)
    (data, label), = _batches("imagedata_gray_crop")
    net.forward()
    got = net.blobs["data"].data
    keep = [i for i in range(len(data)) if i not in GAMMA_PNG_ITEMS]
    np.testing.assert_array_equal(got[keep], data[keep])
    np.testing.assert_array_equal(net.blobs["label"].data, label)
    for i in GAMMA_PNG_ITEMS:   # same picture, gray levels a little apart
        assert np.abs(got[i] - data[i]).mean() < 12
        assert np.corrcoef(got[i].ravel(), data[i].ravel())[0, 1] > 0.98


def _layer_net(tmp_path, body, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(body)
    return str(path)


@needs_ref
def test_train_crop_is_a_window_and_mirror_a_flip_of_caffes_batch(tmp_path, monkeypatch):
    (full, label), = _batches("data_meanvalue_batch5")[:1]
    src = os.path.join(REF, "images", "images_64_lmdb")
    net = caffe.Net(_layer_net(tmp_path, f'''layer {{ name: "d" type: "Data" top: "data"
      top: "label" transform_param {{ crop_size: 48 mirror: true mean_value: 104
      mean_value: 117 mean_value: 123 }} data_param {{ source: "{src}" batch_size: 5 }} }}'''),
        caffe.TRAIN)
    got = net.forward()["data"]
    offsets, flips = set(), set()
    for i in range(5):
        found = [(y, x, m) for y in range(17) for x in range(17) for m in (False, True)
                 if np.array_equal(got[i], (full[i, :, y:y + 48, x:x + 48][:, :, ::-1] if m
                                            else full[i, :, y:y + 48, x:x + 48]))]
        assert found, f"item {i} is not a window of the uncropped Caffe batch"
        offsets.add(found[0][:2])
        flips.add(found[0][2])
    assert len(offsets) > 1   # random crops in TRAIN


@needs_ref
def test_rand_skip_starts_within_the_skip_range(tmp_path):
    batches = _batches("mnist_data_scale")
    stream = np.concatenate([b[0] for b in batches])
    src = os.path.join(REF, "mnist", "mnist_test_lmdb")
    net = caffe.Net(_layer_net(tmp_path, f'''layer {{ name: "d" type: "Data" top: "data"
      transform_param {{ scale: 0.00390625 }} data_param {{ source: "{src}" backend: LMDB
      batch_size: 8 rand_skip: 50 }} }}'''), caffe.TEST)
    got = net.forward()["data"]
    starts = [k for k in range(50) if np.array_equal(got, stream[k:k + 8])]
    assert len(starts) == 1


@needs_ref
def test_data_layer_reads_leveldb(tmp_path):
    import shutil
    # LevelDB has no read-only mode (opening rewrites its log): read a copy, never the reference
    copy = tmp_path / "mnist_test_leveldb"
    shutil.copytree(os.path.join(REF, "mnist", "mnist_test_leveldb"), copy)
    net = caffe.Net(_layer_net(tmp_path, f'''layer {{ name: "d" type: "Data" top: "data"
      top: "label" transform_param {{ scale: 0.00390625 }} data_param {{ source: "{copy}"
      backend: LEVELDB batch_size: 64 }} }}'''), caffe.TEST)
    for data, label in _batches("mnist_data_scale")[:2]:
        out = net.forward()
        np.testing.assert_array_equal(out["data"], data)
        np.testing.assert_array_equal(out["label"], label)


@needs_ref
def test_data_layer_errors(tmp_path):
    mean = os.path.join(REF, "images", "mean.binaryproto")
    lmdb_src = os.path.join(REF, "images", "images_64_lmdb")

    def data_net(source, extra="", backend=""):
        return _layer_net(tmp_path, f'''layer {{ name: "d" type: "Data" top: "data"
          top: "label" transform_param {{ {extra} }} data_param {{ source: "{source}"
          {backend} batch_size: 2 }} }}''')
    with pytest.raises(MissingSourceError, match="Data layer 'd'.*nowhere_lmdb.*does not exist"):
        caffe.Net(data_net(str(tmp_path / "nowhere_lmdb")), caffe.TEST)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataSourceError, match="not a Caffe database"):
        caffe.Net(data_net(str(tmp_path / "empty_dir")), caffe.TEST)
    with pytest.raises(DataSourceError, match="is a lmdb database but the backend was given as "
                                              "leveldb"):
        caffe.Net(data_net(lmdb_src, backend="backend: LEVELDB"), caffe.TEST)
    gray_src = os.path.join(REF, "images", "images_64_gray_lmdb")
    with pytest.raises(DataSourceError, match=r"mean_file .* has shape 3x64x64 but the images "
                                              r"are 1x64x64"):
        caffe.Net(data_net(gray_src, f'mean_file: "{mean}"'), caffe.TEST)
    with pytest.raises(ValueError, match="both mean_file and mean_value"):
        caffe.Net(data_net(lmdb_src, f'mean_file: "{mean}" mean_value: 1'), caffe.TEST)
    with pytest.raises(DataSourceError, match="crop_size 65 is larger than the 64x64"):
        caffe.Net(data_net(lmdb_src, "crop_size: 65"), caffe.TEST)
    with pytest.raises(DataSourceError, match="2 mean_value entries for 3-channel"):
        caffe.Net(data_net(lmdb_src, "mean_value: 1 mean_value: 2"), caffe.TEST)
    import lmdb
    env = lmdb.open(str(tmp_path / "junk_lmdb"))
    with env.begin(write=True) as txn:
        txn.put(b"k0", b"\xff\xff\xff")
    env.close()
    with pytest.raises(DataSourceError, match="record 'k0' of .*junk_lmdb.* not a Caffe Datum"):
        caffe.Net(data_net(str(tmp_path / "junk_lmdb")), caffe.TEST)


@needs_ref
def test_imagedata_missing_image_names_the_line(tmp_path, monkeypatch):
    from kaffe.caffe.builders.data import ImageData
    root = os.path.join(SHARED, "data", "images") + "/"
    (tmp_path / "list.txt").write_text("aero1.jpg 0\nnot_there.jpg 1\napple.jpg 2\n")
    body = f'''layer {{ name: "img" type: "ImageData" top: "data" top: "label"
      image_data_param {{ source: "{tmp_path / 'list.txt'}" root_folder: "{root}"
      new_height: 8 new_width: 8 batch_size: 2 }} }}'''
    with pytest.raises(DataSourceError, match=r"list.txt: 1 listed image\(s\) not found: line 2"):
        caffe.Net(_layer_net(tmp_path, body), caffe.TEST)
    monkeypatch.setattr(ImageData, "skip_missing_images", True)
    net = caffe.Net(_layer_net(tmp_path, body), caffe.TEST)
    np.testing.assert_array_equal(net.forward()["label"], [0, 2])
    (tmp_path / "list.txt").write_text("aero1.jpg zero\n")
    with pytest.raises(DataSourceError, match=r"list.txt:1: the label 'zero' is not an integer"):
        caffe.Net(_layer_net(tmp_path, body), caffe.TEST)


def test_memory_data_batches_go_round(tmp_path):
    net = caffe.Net(_layer_net(tmp_path, '''layer { name: "m" type: "MemoryData" top: "data"
      top: "label" memory_data_param { batch_size: 2 channels: 1 height: 2 width: 3 } }'''),
        caffe.TEST)
    layer = net.layer_dict["m"]
    with pytest.raises(RuntimeError, match="reset"):
        net.forward()
    x = np.arange(4 * 6, dtype=np.float32).reshape(4, 1, 2, 3)
    with pytest.raises(ValueError, match="multiple of batch_size 2"):
        layer.reset(x[:3], np.arange(3))
    layer.reset(x, np.arange(4))
    for k in (0, 2, 0):
        out = net.forward()
        np.testing.assert_array_equal(out["data"], x[k:k + 2])
        np.testing.assert_array_equal(out["label"], [k, k + 1])


def test_net_set_input_arrays_feeds_the_first_memory_data_layer(tmp_path):
    """pycaffe's ``net.set_input_arrays(data, labels)`` goes to the first (MemoryData) layer."""
    net = caffe.Net(_layer_net(tmp_path, '''layer { name: "m" type: "MemoryData" top: "data"
      top: "label" memory_data_param { batch_size: 2 channels: 1 height: 1 width: 2 } }'''),
        caffe.TEST)
    x = np.arange(8, dtype=np.float32).reshape(4, 1, 1, 2)
    net.set_input_arrays(x, np.array([3, 1, 4, 1], np.float32))
    net.forward()
    out = net.forward()
    np.testing.assert_array_equal(out["data"], x[2:])
    np.testing.assert_array_equal(out["label"], [4, 1])
