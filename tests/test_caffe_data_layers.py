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
