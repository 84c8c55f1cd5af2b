"""`kaffe train` and friends as a user runs them: seed 000's MNIST walk-through on a subset,
signals, flag spellings and bad input."""
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import run_kaffe as _kaffe

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
REF = os.path.join(SHARED, "reference")
MNIST_GZ = os.path.join(SHARED, "data", "mnist")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _idx_subset(src, dst, count):
    """The first ``count`` items of an MNIST IDX file (header count rewritten)."""
    with gzip.open(src, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = np.frombuffer(data[4:4 + 4 * ndim], ">u4").copy()
    item = int(np.prod(dims[1:], dtype=np.int64)) if ndim > 1 else 1
    dims[0] = count
    with open(dst, "wb") as f:
        f.write(data[:4] + dims.astype(">u4").tobytes())
        f.write(data[4 + 4 * ndim:4 + 4 * ndim + count * item])


@pytest.mark.skipif(not os.path.isdir(MNIST_GZ) or not os.path.isdir(REF),
                    reason="needs ../shared/data/mnist and ../shared/reference")
def test_seed_mnist_walkthrough(tmp_path, monkeypatch):
    """Seed 000, chapter 1, on 2000 training / 200 test digits, laid out as in a Caffe checkout:
    convert_mnist_data -> `kaffe train --solver=examples/mnist/lenet_solver.prototxt` (400
    iterations; the solver says solver_mode: GPU; without CUDA kaffe says so and uses the CPU)
    -> accuracy above 95% on the test LMDB -> extract_features (the seed's command) -> resume
    from the snapshot."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("data/mnist")
    os.makedirs("examples/mnist")
    for name, count in (("train-images-idx3-ubyte", 2000), ("train-labels-idx1-ubyte", 2000),
                        ("t10k-images-idx3-ubyte", 200), ("t10k-labels-idx1-ubyte", 200)):
        _idx_subset(os.path.join(MNIST_GZ, name + ".gz"), f"data/mnist/{name}", count)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        code, log = _kaffe("convert_mnist_data", f"data/mnist/{prefix}-images-idx3-ubyte",
                           f"data/mnist/{prefix}-labels-idx1-ubyte",
                           f"examples/mnist/mnist_{split}_lmdb", "--backend=lmdb")
        assert code == 0, log
    net = open(os.path.join(REF, "mnist", "lenet_train_test.prototxt")).read()
    net = net.replace('"mnist_train_lmdb"', '"examples/mnist/mnist_train_lmdb"')
    net = net.replace('"mnist_test_lmdb"', '"examples/mnist/mnist_test_lmdb"')
    assert net.count("examples/mnist/mnist_") == 2
    open("examples/mnist/lenet_train_test.prototxt", "w").write(net)
    solver = ('net: "examples/mnist/lenet_train_test.prototxt"\ntest_iter: 2\n'
              'test_interval: 400\nbase_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\n'
              'lr_policy: "inv"\ngamma: 0.0001\npower: 0.75\ndisplay: 50\nmax_iter: {}\n'
              'snapshot: 400\nsnapshot_prefix: "examples/mnist/lenet"\nsolver_mode: GPU\n'
              'random_seed: 1701\n')
    open("examples/mnist/lenet_solver.prototxt", "w").write(solver.format(400))
    started = time.perf_counter()
    code, log = _kaffe("train", "--solver=examples/mnist/lenet_solver.prototxt")
    seconds = time.perf_counter() - started
    assert code == 0, log[-3000:]
    assert re.search(r"Use (CPU|GPU)", log)
    assert os.path.exists("examples/mnist/lenet_iter_400.caffemodel")
    assert os.path.exists("examples/mnist/lenet_iter_400.solverstate")
    trained = float(re.findall(r"Test net output #0: accuracy = (\S+)", log)[-1])

    code, log = _kaffe("test", "-model", "examples/mnist/lenet_train_test.prototxt",
                       "-weights", "examples/mnist/lenet_iter_400.caffemodel", "-iterations", "2")
    assert code == 0, log
    accuracy = float(re.search(r"\] accuracy = (\S+)", log).group(1))
    assert accuracy == trained
    assert accuracy > 0.95, f"accuracy {accuracy} after 400 iterations ({seconds:.1f} s)"

    code, log = _kaffe("extract_features", "examples/mnist/lenet_iter_400.caffemodel",
                       "examples/mnist/lenet_train_test.prototxt", "ip2", "examples/features",
                       "2", "lmdb", "GPU", "0")
    assert code == 0, log
    from kaffe.caffe.proto import caffe_pb2
    from kaffe.data.db import open_db
    with open_db("examples/features") as feats, open_db("examples/mnist/mnist_test_lmdb") as db:
        scores = [np.array(caffe_pb2.Datum.FromString(v).float_data) for _, v in feats]
        labels = [caffe_pb2.Datum.FromString(v).label for _, v in db]
    assert len(scores) == 200 and scores[0].shape == (10,)
    assert np.mean(np.argmax(scores, 1) == labels) == pytest.approx(accuracy, abs=1e-6)

    open("examples/mnist/lenet_solver.prototxt", "w").write(solver.format(420))
    code, log = _kaffe("train", "--solver=examples/mnist/lenet_solver.prototxt",
                       "--snapshot=examples/mnist/lenet_iter_400.solverstate")
    assert code == 0, log[-3000:]
    assert "Resuming from examples/mnist/lenet_iter_400.solverstate" in log
    assert re.search(r"Iteration 400 \(", log) and not re.search(r"Iteration 0 \(", log)
    assert os.path.exists("examples/mnist/lenet_iter_420.caffemodel")


def test_sigint_snapshots_and_stops_sighup_snapshots(tmp_path):
    """Ctrl-C (SIGINT, `-sigint_effect stop`) ends training cleanly with a snapshot; SIGHUP
    (`-sighup_effect snapshot`) writes one and training goes on, as Caffe's flags say."""
    solvers = os.path.join(REF, "solvers")
    if not os.path.isdir(solvers):
        pytest.skip("needs ../shared/reference")
    for f in ("tiny_net.prototxt", "train.h5", "train_h5_list.txt", "init.caffemodel"):
        shutil.copy(os.path.join(solvers, f), tmp_path)
    (tmp_path / "solver.prototxt").write_text(
        'net: "tiny_net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 100000000\n'
        'display: 500\nsnapshot_prefix: "snap/tiny"\n')
    (tmp_path / "snap").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "kaffe.cli.main", "train", "-solver",
                             "solver.prototxt", "-weights", "init.caffemodel",
                             "-sighup_effect", "snapshot"], cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "Iteration 500 (" in line:
                proc.send_signal(signal.SIGHUP)
            if "Snapshotting solver state" in line and not any("SIGINT" in x for x in lines):
                lines.append("SIGINT sent\n")
                proc.send_signal(signal.SIGINT)
            if len(lines) > 10000:
                break
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = "".join(lines)
    assert code == 0, log[-2000:]
    assert "Optimization stopped early." in log
    snaps = sorted(os.listdir(tmp_path / "snap"))
    models = [s for s in snaps if s.endswith(".caffemodel")]
    assert len(models) == 2 and len([s for s in snaps if s.endswith(".solverstate")]) == 2
    from kaffe.caffe import blobs
    last = max(models, key=lambda s: int(re.search(r"_iter_(\d+)", s).group(1)))
    assert set(blobs.load_caffemodel(tmp_path / "snap" / last)) == {"ip1", "ip2"}
    assert not [s for s in snaps if s.startswith(".")]   # no temporary files left


def test_flag_spellings():
    from kaffe.cli.main import build_parser
    parser = build_parser()
    for argv in (["train", "-solver", "s.prototxt", "-weights", "a,b"],
                 ["train", "--solver=s.prototxt", "--weights=a,b"],
                 ["train", "-solver=s.prototxt", "-weights=a,b"]):
        args = parser.parse_args(argv)
        assert (args.solver, args.weights, args.sigint_effect, args.sighup_effect) == \
            ("s.prototxt", "a,b", "stop", "snapshot")
    args = parser.parse_args(["test", "--model=m", "-weights", "w", "-iterations=7"])
    assert (args.model, args.weights, args.iterations) == ("m", "w", 7)
    args = parser.parse_args(["extract_features", "w", "n", "ip1,ip2", "a,b", "10", "leveldb"])
    assert (args.mode, args.device_id, args.num_batches) == ("CPU", 0, 10)


def test_bad_command_lines_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, log = _kaffe("train")
    assert code == 1 and "Need a solver definition" in log
    code, log = _kaffe("train", "-solver", "s.prototxt", "-weights", "w", "-snapshot", "s")
    assert code == 1 and "not both" in log
    code, log = _kaffe("train", "-solver", "missing.prototxt")
    assert code == 1 and "missing.prototxt: cannot open" in log
    (tmp_path / "s.prototxt").write_text('net: "nowhere.prototxt"\nbase_lr: 0.1\n'
                                         'lr_policy: "fixed"\n')
    code, log = _kaffe("train", "-solver", "s.prototxt")
    assert code == 1 and "nowhere.prototxt\" does not exist" in log
    code, log = _kaffe("train", "-solver", "s.prototxt", "-gpu", "0,1")
    assert code == 1 and ("no CUDA device" in log and "--nproc 2" in log
                          or "nowhere.prototxt\" does not exist" in log)
    code, log = _kaffe("train", "-solver", "s.prototxt", "--nproc=3")   # fails before launching
    assert code == 1 and "nowhere.prototxt\" does not exist" in log
    code, log = _kaffe("train", "-solver", "s.prototxt", "-gpu", "first")
    assert code == 1 and "-gpu expects device ids" in log
    code, log = _kaffe("test", "-model", "m.prototxt")
    assert code == 1 and "Need model weights" in log
    code, log = _kaffe("parse_log", "no.log", str(tmp_path))
    assert code == 1 and "no such log file" in log
    (tmp_path / "empty.log").write_text("nothing here\n")
    code, log = _kaffe("parse_log", "empty.log", str(tmp_path))
    assert code == 1 and "no 'Train net output'" in log


def test_device_query_describes_what_torch_sees():
    import torch
    code, log = _kaffe("device_query")
    assert code == 0
    if torch.cuda.is_available():
        assert torch.cuda.get_device_name(0) in log
    else:
        assert "No CUDA device" in log and torch.__version__ in log


def test_glog_line_format():
    """Caffe's tools/extra/extract_seconds.py reads `I1123 04:09:26.167450 ...` stamps."""
    import logging

    from kaffe.cli.caffe_train import GlogFormatter
    record = logging.LogRecord("kaffe", logging.INFO, "/x/solver.py", 239,
                               "Iteration %d, lr = %s", (5, "0.01"), None)
    line = GlogFormatter().format(record)
    assert re.fullmatch(r"I\d{4} \d\d:\d\d:\d\d\.\d{6} \d+ solver\.py:239\] Iteration 5, "
                        r"lr = 0\.01", line)
    month_day, stamp = line[1:].split()[:2]
    assert 1 <= int(month_day[:2]) <= 12 and stamp.count(":") == 2
