"""`kaffe train --nproc 2` on the LeNet solver: Caffe's multi-GPU semantics on 2 CPU processes
(gloo), against a 1-process oracle whose batch holds both processes' records.

Caffe (parallel.cpp, data_layer.cpp) splits the records rank-strided (solver r keeps records
r, r + N, ...) and averages the summed gradients over N with the learning rate unchanged, so
one step of 2 processes x 64 records equals one step of 1 process over the same 128
consecutive records. The LMDBs are copied from ../shared/reference/mnist (never opened there).
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import run_kaffe as _kaffe

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "mnist")
ITERS = 6

needs_mnist = pytest.mark.skipif(not os.path.isdir(SHARED_MNIST),
                                 reason="needs ../shared/reference/mnist")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _lenet_folder(folder, batch_size=64, max_iter=ITERS):
    """The reference LeNet solver in ``folder`` with copies of the LMDBs: tests every 3
    iterations, no periodic snapshot (snapshot_after_train writes one at the end)."""
    os.makedirs(folder, exist_ok=True)
    for db in ("mnist_train_lmdb", "mnist_test_lmdb"):
        os.makedirs(os.path.join(folder, db), exist_ok=True)
        shutil.copyfile(os.path.join(SHARED_MNIST, db, "data.mdb"),
                        os.path.join(folder, db, "data.mdb"))
    with open(os.path.join(SHARED_MNIST, "lenet_train_test.prototxt")) as f:
        net = f.read()
    assert net.count("batch_size: 64") == 1
    with open(os.path.join(folder, "lenet_train_test.prototxt"), "w") as f:
        f.write(net.replace("batch_size: 64", f"batch_size: {batch_size}"))
    with open(os.path.join(SHARED_MNIST, "lenet_solver.prototxt")) as f:
        solver = f.read()
    for old, new in (("max_iter: 200", f"max_iter: {max_iter}"), ("snapshot: 200", "snapshot: 0"),
                     ("test_interval: 100", "test_interval: 3"), ("display: 10", "display: 2")):
        assert old in solver
        solver = solver.replace(old, new)
    with open(os.path.join(folder, "lenet_solver.prototxt"), "w") as f:
        f.write(solver)
    return folder


def _weights(path):
    from kaffe.caffe import blobs
    return {k: [np.asarray(b) for b in v] for k, v in blobs.load_caffemodel(path).items()}


def _assert_same_weights(got, want):
    assert list(got) == list(want)
    for name in want:
        for g, w in zip(got[name], want[name]):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7, err_msg=name)


_MARKER = '''import os
if os.environ.get("RANK") is not None:
    import kaffe.caffe.solver as _s
    _snapshot = _s.Solver.snapshot
    def snapshot(self):
        with open(os.path.join(os.environ["KAFFE_TEST_MARKS"], "snapshot_rank" + os.environ["RANK"]), "a") as f:
            f.write(str(self.iter) + "\\n")
        return _snapshot(self)
    _s.Solver.snapshot = snapshot
'''


@needs_mnist
def test_nproc2_equals_one_process_with_both_batches_and_resumes_with_one(tmp_path, monkeypatch):
    two = _lenet_folder(str(tmp_path / "two"))
    marks = tmp_path / "marks"
    marks.mkdir()
    (marks / "sitecustomize.py").write_text(_MARKER)   # records which rank snapshots
    env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1",
               KAFFE_TEST_MARKS=str(marks),
               PYTHONPATH=os.pathsep.join([str(marks)] + [p for p in sys.path if p]))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "KAFFE_LAUNCHED"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-m", "kaffe.cli.main", "train",
                          "-solver", "lenet_solver.prototxt", "--nproc", "2"], cwd=two, env=env,
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]

    # one set of snapshot files, written by rank 0 alone
    assert sorted(os.listdir(two)) == ["lenet_iter_6.caffemodel", "lenet_iter_6.solverstate",
                                       "lenet_solver.prototxt", "lenet_train_test.prototxt",
                                       "mnist_test_lmdb", "mnist_train_lmdb"]
    assert sorted(p.name for p in marks.iterdir() if p.name.startswith("snapshot")) == \
        ["snapshot_rank0"]
    # the log: the launcher's line, then one worker's (rank 0's) lines only
    pids = re.findall(r"^[IWEF]\d{4} [\d:.]+ (\d+) \S+:\d+\]", run.stderr, re.M)
    workers = set(pids) - {pids[0]}
    assert len(workers) == 1, run.stderr[-3000:]
    assert "data-parallel over 2 processes" in run.stderr
    assert len(re.findall(r"Testing net \(#0\)", run.stderr)) == 3   # iterations 0, 3, 6
    assert run.stderr.count("Optimization Done.") == 1

    # the oracle: one process, batch 128 = both processes' records, same seed, same lr
    one = _lenet_folder(str(tmp_path / "one"), batch_size=128)
    monkeypatch.chdir(one)
    code, log = _kaffe("train", "-solver", "lenet_solver.prototxt")
    assert code == 0, log
    _assert_same_weights(_weights(os.path.join(two, "lenet_iter_6.caffemodel")),
                         _weights(os.path.join(one, "lenet_iter_6.caffemodel")))
    # test passes see the same weights: the same test losses, line for line
    test_lines = re.compile(r"Test net output #\d+: (.*)")
    assert test_lines.findall(run.stderr) == test_lines.findall(log)

    # resume the 2-process snapshot in 1 process (batch 64) for 2 more iterations; the oracle
    # resumes its own snapshot with the same 1-process net
    resumed = {}
    for folder in (two, one):
        if folder == one:
            _lenet_folder(one, batch_size=64)
        monkeypatch.chdir(folder)
        code, log = _kaffe("train", "-solver", "lenet_solver.prototxt", "-snapshot",
                           "lenet_iter_6.solverstate", "-iterations", str(ITERS + 2))
        assert code == 0, log
        assert "Iteration 6, Testing net" in log and "lenet_iter_8.caffemodel" in log
        resumed[folder] = _weights(os.path.join(folder, "lenet_iter_8.caffemodel"))
    _assert_same_weights(resumed[two], resumed[one])


@needs_mnist
def test_records_are_split_rank_strided_like_caffe(tmp_path, monkeypatch):
    """Solver r of 2 reads records r, r + 2, ... (Caffe's DataLayer::Skip), record by record;
    the TEST phase does not skip. Oracle: the LMDB read with the lmdb package."""
    import lmdb

    from kaffe.caffe.builders import data
    from kaffe.caffe.net import TEST, TRAIN, Net
    from kaffe.caffe.proto import caffe_pb2
    folder = _lenet_folder(str(tmp_path))
    monkeypatch.chdir(folder)
    env = lmdb.open("mnist_train_lmdb", readonly=True, lock=False)
    with env.begin() as txn:
        records = [caffe_pb2.Datum.FromString(v) for _, v in txn.cursor()]
    env.close()
    images = np.stack([np.frombuffer(d.data, np.uint8).reshape(1, 28, 28) for d in records])
    labels = np.array([d.label for d in records])

    def net_text(batch):
        return ('name: "d" layer { name: "mnist" type: "Data" top: "data" top: "label" '
                'transform_param { scale: 0.00390625 } data_param { source: '
                f'"mnist_train_lmdb" batch_size: {batch} backend: LMDB }} }}')
    path = tmp_path / "d.prototxt"
    path.write_text(net_text(5))
    for rank in (0, 1):
        with data.solver_split(rank, 2):
            net = Net(str(path), phase=TRAIN)
            test_net = Net(str(path), phase=TEST)
        for step in range(2):
            net.forward()
            want = [(step * 5 + i) * 2 + rank for i in range(5)]
            np.testing.assert_array_equal(net.blobs["label"].data, labels[want])
            np.testing.assert_allclose(net.blobs["data"].data, images[want] * 0.00390625,
                                       rtol=1e-6)
        test_net.forward()
        np.testing.assert_array_equal(test_net.blobs["label"].data, labels[:5])


def test_hdf5_records_are_split_rank_strided(tmp_path, monkeypatch):
    """HDF5Data (Caffe's HDF5DataLayer::Skip): rank r of 3 keeps rows r, r + 3, ..., across
    the end of a file into the next."""
    import h5py

    from kaffe.caffe.builders import data
    from kaffe.caffe.net import TRAIN, Net
    monkeypatch.chdir(tmp_path)
    rows = np.arange(14, dtype=np.float32).reshape(7, 2)
    for i, part in enumerate((rows[:4], rows[4:])):
        with h5py.File(f"f{i}.h5", "w") as f:
            f["x"] = part
    (tmp_path / "list.txt").write_text("f0.h5\nf1.h5\n")
    (tmp_path / "h.prototxt").write_text(
        'name: "h" layer { name: "h" type: "HDF5Data" top: "x" '
        'hdf5_data_param { source: "list.txt" batch_size: 2 } }')
    for rank in range(3):
        with data.solver_split(rank, 3):
            net = Net("h.prototxt", phase=TRAIN)
        seen = []
        for _ in range(3):
            net.forward()
            seen += [int(v) // 2 for v in net.blobs["x"].data[:, 0]]
        assert seen == [(rank + 3 * k) % 7 for k in range(6)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without CUDA")
def test_gpu_list_without_cuda_says_to_use_nproc(tmp_path, monkeypatch):
    """`-gpu 0,1` / `-gpu all` on a machine without CUDA: an error naming --nproc, at once
    (kaffe does not quietly start CPU processes for a GPU request)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.prototxt").write_text('net: "n.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\n')
    code, log = _kaffe("train", "-solver", "s.prototxt", "-gpu", "0,1")
    assert code == 1 and "-gpu 0,1: torch sees no CUDA device" in log and "--nproc 2" in log
    code, log = _kaffe("train", "-solver", "s.prototxt", "-gpu", "all")
    assert code == 1 and "no CUDA device" in log and "--nproc N" in log
