"""LeNet training from the MNIST LMDB: kaffe's Caffe solver vs real Caffe vs a hand-written
PyTorch loop, all on the same LMDB (``shared/reference/mnist/mnist_train_lmdb``, 1,000 digits
written by Caffe's ``convert_mnist_data``), batch 64, SGD lr 0.01 momentum 0.9 weight decay 5e-4.

* **kaffe**: ``caffe.get_solver(lenet_solver.prototxt)`` (the Data layer with its prefetch
  thread, the TRAIN net, Caffe's SGD update), ``solver.step(n)`` timed, no tests or snapshots.
* **real Caffe**: the figures in ``shared/reference`` (2 vCPU AMD EPYC, OpenBLAS): the training
  speed between display lines of ``mnist/train.log`` (intervals without a test pass; each
  interval holds 10 iterations of data + forward + backward + update), and ``caffe time``'s
  forward+backward of the same net (``timing/lenet_time_500iter.log``, no data, no update).
* **hand loop**: what a PyTorch user writes: ``torch.nn`` LeNet (same shapes, Caffe's weights),
  ``torch.optim.SGD`` (momentum 0.9, weight decay 5e-4; bias lr x2 as LeNet's ``lr_mult``), a
  batch read per step from (a byte copy of) the same LMDB with ``lmdb`` + ``caffe_pb2.Datum``
  and scaled by 1/256, ``F.cross_entropy``.

Then the data layer alone (batches/s out of kaffe's ``Data`` layer) against the training step.
Ratios > 1 mean kaffe is faster.

    .venv/bin/python benchmarks/caffe_train.py [--iterations 200] [--repeats 3] [--threads N]
"""
import argparse
import os
import platform
import re
import shutil
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from kaffe import caffe
from kaffe.caffe import blobs
from kaffe.caffe.proto import caffe_pb2

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")
MNIST = os.path.join(REF, "mnist")


def caffe_training_speed():
    """Median iter/s of real Caffe's display intervals without a test pass (train.log)."""
    text = open(os.path.join(MNIST, "train.log")).read()
    speeds, tested = [], set(int(i) for i in re.findall(r"Iteration (\d+), Testing", text))
    for it, rate in re.findall(r"Iteration (\d+) \(([0-9.e+-]+) iter/s", text):
        if int(it) > 0 and not any(int(it) - 10 < t <= int(it) for t in tested):
            speeds.append(float(rate))
    return statistics.median(speeds), len(speeds)


def caffe_time_ms():
    text = open(os.path.join(REF, "timing", "lenet_time_500iter.log")).read()
    return float(re.search(r"Average Forward-Backward: ([0-9.]+) ms", text).group(1))


def stage(folder):
    for f in ("lenet_solver.prototxt", "lenet_train_test.prototxt"):
        shutil.copy(os.path.join(MNIST, f), folder)
    for d in ("mnist_train_lmdb", "mnist_test_lmdb"):
        os.symlink(os.path.abspath(os.path.join(MNIST, d)), os.path.join(folder, d))
    os.makedirs(os.path.join(folder, "hand_copy_lmdb"))
    shutil.copy(os.path.join(MNIST, "mnist_train_lmdb", "data.mdb"),
                os.path.join(folder, "hand_copy_lmdb"))


def kaffe_solver():
    param = caffe.read_solver_param("lenet_solver.prototxt")
    param.snapshot, param.snapshot_after_train, param.display = 0, False, 0
    param.test_interval = 0
    del param.test_iter[:]
    return caffe.get_solver(param, weights=os.path.join(MNIST, "lenet_init.caffemodel"))


def time_kaffe(iterations):
    solver = kaffe_solver()
    solver.step(10)
    start = time.perf_counter()
    solver.step(iterations)
    return iterations / (time.perf_counter() - start), solver


def time_data_layer(solver, batches):
    layer = solver.net.layers[0]
    with torch.no_grad():
        layer()
        start = time.perf_counter()
        for _ in range(batches):
            layer()
    return batches / (time.perf_counter() - start)


class LMDBBatches:
    """Batches of 64 read from the LMDB in key order, wrapping around (as Caffe's Data layer)."""

    def __init__(self, path, batch=64):
        import lmdb
        self.env = lmdb.open(path, readonly=True, lock=False)
        self.txn = self.env.begin()
        self.cursor = self.txn.cursor()
        self.cursor.first()
        self.batch = batch

    def next(self):
        images, labels = [], []
        for _ in range(self.batch):
            datum = caffe_pb2.Datum.FromString(self.cursor.value())
            images.append(np.frombuffer(datum.data, np.uint8))
            labels.append(datum.label)
            if not self.cursor.next():
                self.cursor.first()
        x = torch.from_numpy(np.stack(images).reshape(-1, 1, 28, 28).astype(np.float32))
        return x * 0.00390625, torch.tensor(labels)


def time_hand_loop(iterations):
    weights = blobs.load_caffemodel(os.path.join(MNIST, "lenet_init.caffemodel"))
    params = {name: [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays]
              for name, arrays in weights.items()}
    (c1w, c1b), (c2w, c2b) = params["conv1"], params["conv2"]
    (f1w, f1b), (f2w, f2b) = params["ip1"], params["ip2"]

    def model(x):
        x = F.max_pool2d(F.conv2d(x, c1w, c1b), 2, 2)
        x = F.max_pool2d(F.conv2d(x, c2w, c2b), 2, 2)
        x = F.relu(F.linear(x.flatten(1), f1w, f1b))
        return F.linear(x, f2w, f2b)

    opt = torch.optim.SGD([{"params": [c1w, c2w, f1w, f2w]},
                           {"params": [c1b, c2b, f1b, f2b], "lr": 0.02}],
                          lr=0.01, momentum=0.9, weight_decay=5e-4)
    data = LMDBBatches("hand_copy_lmdb")   # a byte copy: LMDB opens a file once per process

    def step():
        x, y = data.next()
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(10):
        step()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return iterations / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's "
                        "default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    caffe_speed, intervals = caffe_training_speed()
    caffe_fb = caffe_time_ms()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        stage(folder)
        os.chdir(folder)
        try:
            kaffe_runs, hand_runs, data_runs = [], [], []
            for _ in range(args.repeats):   # interleaved, best of each
                speed, solver = time_kaffe(args.iterations)
                kaffe_runs.append(speed)
                data_runs.append(time_data_layer(solver, args.iterations))
                hand_runs.append(time_hand_loop(args.iterations))
        finally:
            os.chdir(cwd)
    kaffe_speed, hand_speed, data_speed = max(kaffe_runs), max(hand_runs), max(data_runs)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); LeNet batch 64, "
          f"{args.iterations} iterations, best of {args.repeats}")
    print(f"{'peer':<42}{'iter/s':>10}{'kaffe / peer':>14}")
    print(f"{'kaffe Solver.step (Data layer + update)':<42}{kaffe_speed:>10.1f}{1.0:>13.2f}x")
    print(f"{'real Caffe train.log (median of ' + str(intervals) + ')':<42}{caffe_speed:>10.1f}"
          f"{kaffe_speed / caffe_speed:>13.2f}x")
    print(f"{'real Caffe caffe time fwd+bwd only':<42}{1000 / caffe_fb:>10.1f}"
          f"{kaffe_speed / (1000 / caffe_fb):>13.2f}x")
    print(f"{'hand-written PyTorch loop over the LMDB':<42}{hand_speed:>10.1f}"
          f"{kaffe_speed / hand_speed:>13.2f}x")
    print(f"kaffe Data layer alone: {data_speed:.0f} batches/s = "
          f"{data_speed / kaffe_speed:.1f}x the training step rate")
    print("runs: kaffe " + ", ".join(f"{v:.1f}" for v in kaffe_runs) + "; hand " +
          ", ".join(f"{v:.1f}" for v in hand_runs))


if __name__ == "__main__":
    main()
