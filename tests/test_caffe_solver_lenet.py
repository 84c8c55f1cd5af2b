"""LeNet on real Caffe's MNIST LMDBs (../shared/reference/mnist, finetune, features): training,
resuming, fine-tuning, scoring and feature extraction through the ``kaffe`` command, each
against the files and logs real Caffe wrote. Every run happens in a temporary folder holding
copies of the prototxts and links to the read-only databases."""
import contextlib
import io
import os
import re

import numpy as np
import pytest

from kaffe.caffe import blobs

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")
MNIST = os.path.join(SHARED, "mnist")

pytestmark = [pytest.mark.skipif(not os.path.isdir(MNIST), reason="needs ../shared/reference"),
              pytest.mark.usefixtures("one_torch_thread")]


def _kaffe(*argv):
    """Run ``kaffe argv...`` in-process; returns (exit code, the log written to stderr)."""
    from kaffe.cli.main import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


def _stage(folder, files=(), links=()):
    """``folder`` with copies of reference ``files`` and links to reference ``links``."""
    import shutil
    os.makedirs(folder, exist_ok=True)
    for f in files:
        shutil.copy(f, folder)
    for f in links:
        os.symlink(os.path.abspath(f), os.path.join(folder, os.path.basename(f)))
    return folder


def _log_values(text):
    """Display losses, lrs, and test outputs by iteration, from a kaffe or Caffe log."""
    losses = {int(i): float(v) for i, v in
              re.findall(r"\] Iteration (\d+)(?: \([^)]*\))?, loss = (\S+)", text)}
    rates = {int(i): float(v) for i, v in re.findall(r"\] Iteration (\d+), lr = (\S+)", text)}
    tests, iteration = {}, None
    for line in text.splitlines():
        m = re.search(r"Iteration (\d+), Testing net", line)
        if m:
            iteration = int(m.group(1))
        m = re.search(r"Test net output #\d+: (\w+) = (\S+)", line)
        if m:
            tests[iteration, m.group(1)] = float(m.group(2))
    return losses, rates, tests


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """`kaffe train --solver=lenet_solver.prototxt -weights lenet_init.caffemodel`, run once."""
    folder = _stage(str(tmp_path_factory.mktemp("lenet")),
                    [os.path.join(MNIST, f) for f in ("lenet_solver.prototxt",
                                                      "lenet_train_test.prototxt")],
                    [os.path.join(MNIST, d) for d in ("mnist_train_lmdb", "mnist_test_lmdb")])
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code, log = _kaffe("train", "--solver=lenet_solver.prototxt",
                           "-weights", os.path.join(MNIST, "lenet_init.caffemodel"))
    finally:
        os.chdir(cwd)
    assert code == 0, log[-2000:]
    with open(os.path.join(folder, "train.log"), "w") as f:
        f.write(log)
    return folder, log


def test_lenet_follows_caffe_train_log(lenet):
    """From Caffe's own initial weights and the LMDB in Caffe's order: the same losses, rates
    and test results as train.log. The first iterations agree to float32 precision; later the
    trajectories drift apart as float32 rounding does in any two implementations (kaffe in float64
    and in float32 drift apart just as much: 2e-5 at iteration 10, 4e-4 at 20, 3e-3 at 30), so
    later losses get a few percent."""
    _, log = lenet
    caffe_log = open(os.path.join(MNIST, "train.log")).read()
    (k_loss, k_lr, k_test), (c_loss, c_lr, c_test) = _log_values(log), _log_values(caffe_log)
    assert sorted(k_loss) == sorted(c_loss) == list(range(0, 201, 10))
    assert k_loss[0] == pytest.approx(c_loss[0], rel=1e-5)
    assert k_loss[10] == pytest.approx(c_loss[10], rel=1e-4)
    for i in k_loss:
        assert k_loss[i] == pytest.approx(c_loss[i], rel=0.06, abs=0.003), f"loss at {i}"
    assert sorted(k_lr) == sorted(c_lr)
    for i in c_lr:
        assert k_lr[i] == pytest.approx(c_lr[i], rel=1e-5), f"lr at {i}"
    assert sorted(k_test) == sorted(c_test)
    assert k_test[0, "accuracy"] == c_test[0, "accuracy"] == 0.05
    assert k_test[0, "loss"] == pytest.approx(c_test[0, "loss"], rel=1e-5)
    for it in (100, 200):
        assert k_test[it, "accuracy"] == pytest.approx(c_test[it, "accuracy"], abs=0.0051)
        assert k_test[it, "loss"] == pytest.approx(c_test[it, "loss"], rel=0.03)


def test_lenet_snapshot_near_caffes(lenet):
    """lenet_iter_200.caffemodel / .solverstate: Caffe's names, layout and state fields; every
    weight blob within 10% of the distance it travelled from lenet_init (float32 drift, see
    above; a wrong rate, decay or momentum form moves blobs by far more)."""
    folder, _ = lenet
    ref = blobs.load_caffemodel(os.path.join(MNIST, "lenet_iter_200.caffemodel"))
    init = blobs.load_caffemodel(os.path.join(MNIST, "lenet_init.caffemodel"))
    mine = blobs.load_caffemodel(os.path.join(folder, "lenet_iter_200.caffemodel"))
    assert list(mine) == list(ref) == ["conv1", "conv2", "ip1", "ip2"]
    for layer in ref:
        for i, (c, k, start) in enumerate(zip(ref[layer], mine[layer], init[layer])):
            assert k.shape == c.shape
            travelled = np.linalg.norm(c - start)
            assert np.linalg.norm(k - c) < 0.1 * travelled, f"{layer} blob {i}"
    a = blobs.load_solverstate(os.path.join(MNIST, "lenet_iter_200.solverstate"))
    b = blobs.load_solverstate(os.path.join(folder, "lenet_iter_200.solverstate"))
    assert (b.iter, b.current_step, b.learned_net) == (a.iter, a.current_step, a.learned_net)
    assert [h.shape for h in b.history] == [h.shape for h in a.history]


def test_resume_reproduces_caffe(tmp_path, monkeypatch):
    """`kaffe train -snapshot lenet_iter_200.solverstate` (Caffe's state) reproduces resume.log
    line for line and lenet_resumed_iter_220.caffemodel (rtol 1e-4); as in Caffe the data layer
    restarts at the first record."""
    folder = _stage(str(tmp_path), [os.path.join(MNIST, f) for f in (
        "lenet_solver_resume.prototxt", "lenet_train_test.prototxt")],
        [os.path.join(MNIST, f) for f in ("mnist_train_lmdb", "mnist_test_lmdb",
                                          "lenet_iter_200.caffemodel",
                                          "lenet_iter_200.solverstate")])
    monkeypatch.chdir(folder)
    code, log = _kaffe("train", "-solver", "lenet_solver_resume.prototxt",
                       "-snapshot=lenet_iter_200.solverstate")
    assert code == 0, log[-2000:]
    (k_loss, _, k_test), (c_loss, _, c_test) = _log_values(log), _log_values(
        open(os.path.join(MNIST, "resume.log")).read())
    assert sorted(k_loss) == sorted(c_loss) == [200, 205, 210, 215, 220]
    for i in c_loss:
        assert k_loss[i] == pytest.approx(c_loss[i], rel=1e-5), f"loss at {i}"
    assert k_test == pytest.approx(c_test, rel=1e-5)
    ref = blobs.load_caffemodel(os.path.join(MNIST, "lenet_resumed_iter_220.caffemodel"))
    mine = blobs.load_caffemodel("lenet_resumed_iter_220.caffemodel")
    for layer in ref:
        for c, k in zip(ref[layer], mine[layer]):
            np.testing.assert_allclose(k, c, rtol=1e-4, atol=1e-6 * np.abs(c).max())


def test_kaffe_test_scores_caffes_weights(tmp_path, monkeypatch):
    """`kaffe test` on Caffe's lenet_iter_200: test.log's per-batch and mean lines."""
    _stage(str(tmp_path), [os.path.join(MNIST, "lenet_train_test.prototxt")],
           [os.path.join(MNIST, "mnist_test_lmdb"), os.path.join(MNIST, "mnist_train_lmdb")])
    monkeypatch.chdir(tmp_path)
    code, log = _kaffe("test", "-model", "lenet_train_test.prototxt", "--weights=" +
                       os.path.join(MNIST, "lenet_iter_200.caffemodel"), "-iterations", "2")
    assert code == 0, log
    lines = [line.split("] ", 1)[1] for line in log.splitlines() if "] " in line]
    assert "Batch 0, accuracy = 0.94" in lines and "Batch 1, accuracy = 0.97" in lines
    assert "accuracy = 0.955" in lines
    loss = float(re.search(r"^loss = (\S+) \(\* 1 = ", "\n".join(lines), re.M).group(1))
    assert loss == pytest.approx(0.152479, rel=1e-5)
    assert float(re.search(r"Loss: (\S+)", log).group(1)) == pytest.approx(0.152479, rel=1e-5)


def test_finetune_by_layer_name(tmp_path, monkeypatch):
    """finetune/: conv layers frozen (lr_mult 0), ip2 renamed ip2_ft (lr_mult 10/20). From
    Caffe's lenet_ft_init the run follows finetune.log (accuracy 0.02 -> 0.91 -> 0.94); from
    lenet_iter_200 the renamed layer is reported as starting from its fillers."""
    ft = os.path.join(SHARED, "finetune")
    _stage(str(tmp_path / "mnist"), links=[os.path.join(MNIST, d) for d in (
        "mnist_train_lmdb", "mnist_test_lmdb")])
    folder = _stage(str(tmp_path / "finetune"), [os.path.join(ft, f) for f in (
        "lenet_finetune.prototxt", "lenet_finetune_solver.prototxt")])
    monkeypatch.chdir(folder)
    code, log = _kaffe("train", "-solver", "lenet_finetune_solver.prototxt", "-weights",
                       os.path.join(ft, "lenet_ft_init.caffemodel"))
    assert code == 0, log[-2000:]
    (k_loss, _, k_test), (c_loss, _, c_test) = _log_values(log), _log_values(
        open(os.path.join(ft, "finetune.log")).read())
    assert sorted(k_test) == sorted(c_test)
    for key in c_test:
        tol = 1e-5 if key[0] == 0 else (0.0051 if key[1] == "accuracy" else 0.02)
        assert k_test[key] == pytest.approx(c_test[key], rel=tol if key[1] == "loss" else 0,
                                            abs=0 if key[1] == "loss" else tol), key
    assert k_test[50, "accuracy"] >= 0.935
    for i in c_loss:
        assert k_loss[i] == pytest.approx(c_loss[i], rel=0.02), f"loss at {i}"
    init = blobs.load_caffemodel(os.path.join(ft, "lenet_ft_init.caffemodel"))
    done = blobs.load_caffemodel("lenet_ft_iter_50.caffemodel")
    for layer in ("conv1", "conv2"):   # lr_mult 0: untouched
        for a, b in zip(init[layer], done[layer]):
            np.testing.assert_array_equal(a, b)
    ref = blobs.load_caffemodel(os.path.join(ft, "lenet_ft_iter_50.caffemodel"))
    for layer in ("ip1", "ip2_ft"):
        for c, k, start in zip(ref[layer], done[layer], init[layer]):
            assert np.linalg.norm(k - c) < 0.05 * np.linalg.norm(c - start), layer

    os.remove("lenet_ft_iter_50.caffemodel")
    with_real = _stage(str(tmp_path / "ft2" / "finetune"), [os.path.join(ft, f) for f in (
        "lenet_finetune.prototxt", "lenet_finetune_solver.prototxt")])
    _stage(str(tmp_path / "ft2" / "mnist"), links=[os.path.join(MNIST, d) for d in (
        "mnist_train_lmdb", "mnist_test_lmdb")])
    monkeypatch.chdir(with_real)
    code, log = _kaffe("train", "-solver", "lenet_finetune_solver.prototxt", "-iterations", "1",
                       "-weights", os.path.join(MNIST, "lenet_iter_200.caffemodel"))
    assert code == 0, log[-2000:]
    assert "Ignoring source layer ip2" in log
    assert re.search(r"^W.*no weights in the file for layer\(s\) ip2_ft", log, re.M)


def test_extract_features_equals_caffes(tmp_path, monkeypatch):
    """`kaffe extract_features` writes the LMDBs Caffe wrote in features/: same keys, Datum
    shapes and values (rtol 1e-4)."""
    from kaffe.caffe.proto import caffe_pb2
    from kaffe.data.db import open_db
    feats = os.path.join(SHARED, "features")
    _stage(str(tmp_path / "mnist"), links=[os.path.join(MNIST, d) for d in (
        "mnist_train_lmdb", "mnist_test_lmdb")])
    folder = _stage(str(tmp_path / "features"), [os.path.join(feats, "lenet_extract.prototxt")])
    monkeypatch.chdir(folder)
    code, log = _kaffe("extract_features", os.path.join(MNIST, "lenet_iter_200.caffemodel"),
                       "lenet_extract.prototxt", "ip1,ip2", "features_ip1_lmdb,features_ip2_lmdb",
                       "2", "lmdb", "CPU")
    assert code == 0, log
    assert "Successfully extracted the features!" in log
    for name in ("features_ip1_lmdb", "features_ip2_lmdb"):
        with open_db(os.path.join(feats, name)) as ref, open_db(name) as mine:
            ref_items, mine_items = list(ref), list(mine)
        assert [k for k, _ in mine_items] == [k for k, _ in ref_items]
        assert len(ref_items) == 200 and ref_items[0][0] == b"0000000000"
        for (_, a), (_, b) in zip(ref_items, mine_items):
            da, db = caffe_pb2.Datum.FromString(a), caffe_pb2.Datum.FromString(b)
            assert (db.channels, db.height, db.width, db.label, db.data) == \
                (da.channels, da.height, da.width, da.label, da.data)
            x, y = np.array(da.float_data), np.array(db.float_data)
            np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5 * np.abs(x).max())
    ip2 = np.load(os.path.join(feats, "features_ip2.npy"))
    labels = np.load(os.path.join(feats, "labels.npy"))
    assert np.mean(ip2.argmax(1) == labels) == 0.955
    code, log = _kaffe("extract_features", os.path.join(MNIST, "lenet_iter_200.caffemodel"),
                       "lenet_extract.prototxt", "ip1", "features_ip1_lmdb", "1", "lmdb")
    assert code == 1 and "already exists" in log


def test_parse_log_tables_and_plot(lenet, tmp_path):
    """`kaffe parse_log`: Caffe's train.log gives the README's figures; kaffe's own log gives
    the values it displayed; a PNG plot is written."""
    import csv
    code, _ = _kaffe("parse_log", os.path.join(MNIST, "train.log"), str(tmp_path))
    assert code == 0
    with open(tmp_path / "train.log.train") as f:
        train = list(csv.DictReader(f))
    with open(tmp_path / "train.log.test") as f:
        test = list(csv.DictReader(f))
    assert list(train[0]) == ["NumIters", "Seconds", "LearningRate", "loss"]
    assert [float(r["loss"]) for r in train] == pytest.approx([
        2.32814, 1.72207, 0.697141, 0.511486, 0.343528, 0.394646, 0.441294, 0.346527, 0.227897,
        0.236976, 0.172501, 0.200903, 0.0856267, 0.0299031, 0.0399155, 0.0668453, 0.0505709,
        0.0806881, 0.0197457, 0.0210467], rel=2e-6)  # the output line at 170 says 0.080688
    assert [(int(r["NumIters"]), float(r["accuracy"]), float(r["loss"])) for r in test] == [
        (0, 0.05, 2.37281), (100, 0.925, 0.233122), (200, 0.955, 0.152479)]
    assert float(train[0]["LearningRate"]) == 0.01
    assert (tmp_path / "train.log.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    folder, log = lenet
    out = tmp_path / "own"
    out.mkdir()
    assert _kaffe("parse_log", os.path.join(folder, "train.log"), str(out))[0] == 0
    with open(out / "train.log.train") as f:
        rows = list(csv.DictReader(f))
    shown = _log_values(log)[0]
    assert [(int(r["NumIters"]), float(r["loss"])) for r in rows] == \
        [(i, shown[i]) for i in range(0, 200, 10)]
    assert float(rows[-1]["Seconds"]) > 0
