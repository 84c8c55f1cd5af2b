"""CPU inference of Caffe nets: kaffe vs ONNX Runtime (on kaffe's export) vs OpenCV dnn.

LeNet (``zoo/lenet_deploy.prototxt`` with the real ``mnist/lenet_iter_200.caffemodel``; batch 1
and 64) and CaffeNet, GoogLeNet, ResNet-50 (``zoo/*_deploy.prototxt`` with the per-blob weight
formula of ``shared/reference/README.md``; batch 1 and 10). For each net and batch, four peers on
the same weights and the same input:

- kaffe ``Net.forward(data=x)`` (pycaffe's call, as a user writes it: no ``inference_mode``),
- kaffe ``predict`` (``caffe.load_model(...).predict(x, batch_size=batch)``),
- ONNX Runtime (CPU provider) on the file ``caffe.export_onnx`` wrote,
- OpenCV ``cv2.dnn.readNetFromCaffe`` on the original prototxt and the same ``.caffemodel``.

The peers take turns in rounds so a machine whose speed drifts slows them alike, and in each
turn a peer runs a burst of ``--burst`` calls, of which the first two are not counted; the
figure is the median ms per forward over all rounds. Bursts, not one call per turn, because each
runtime keeps its own thread pool whose threads spin for a while after a call (ONNX Runtime's
by default, OpenCV's and torch's OpenMP briefly): a peer called right after another one shares
the cores with the other's spinning threads. LeNet batch 1, 2 threads: kaffe's forward took
0.37 ms called after OpenCV and ONNX Runtime, 0.14-0.19 ms in bursts, 0.18 ms interleaved with
only kaffe's own calls. A served model runs one runtime at a time, as the bursts do. Every peer
gets ``--threads`` threads (torch, OpenCV, ONNX Runtime intra-op). The outputs are compared too.

    .venv/bin/python benchmarks/inference.py [--rounds 30] [--burst 10] [--threads 2] [--nets lenet]
"""
import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch

from kaffe import caffe

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "shared",
                   "reference")
ZOO = os.path.join(REF, "zoo")

# name -> (label, prototxt, real weights or None, batches, round divisor for big nets)
NETS = {
    "lenet": ("LeNet", "lenet_deploy.prototxt",
              os.path.join(REF, "mnist", "lenet_iter_200.caffemodel"), (1, 64), 1),
    "caffenet": ("CaffeNet", "caffenet_deploy.prototxt", None, (1, 10), 3),
    "googlenet": ("GoogLeNet", "googlenet_deploy.prototxt", None, (1, 10), 3),
    "resnet50": ("ResNet-50", "resnet50_deploy.prototxt", None, (1, 10), 3),
}
PEERS = ["kaffe Net.forward", "kaffe predict", "ONNX Runtime", "OpenCV dnn"]


def formula_weights(net):
    """Deploy prototxts carry no weights: shared/reference/README's per-blob formula (seeded by
    crc32 of "<layer>/<i>"; He-normal conv/ip weights, BatchNorm statistics with a positive
    variance, Scale factors around 1, else randn * 0.01), the weights real Caffe ran."""
    import zlib
    kinds = dict(zip(net._layer_names, [layer.type for layer in net.layers]))
    for name, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            shape, kind = blob.data.shape, kinds[name]
            rng = np.random.RandomState(zlib.crc32(f"{name}/{i}".encode()) & 0x7fffffff)
            if kind in ("Convolution", "InnerProduct", "Deconvolution") and i == 0:
                value = rng.randn(*shape) * np.sqrt(2.0 / np.prod(shape[1:]))
            elif kind == "BatchNorm":
                value = [lambda: rng.randn(*shape) * 0.1, lambda: rng.uniform(0.5, 1.5, shape),
                         lambda: np.ones(shape)][i]()
            elif kind == "Scale" and i == 0:
                value = rng.uniform(0.5, 1.5, shape)
            else:
                value = rng.randn(*shape) * 0.01
            blob.data[...] = np.asarray(value, np.float64).astype(np.float32)


def make_peers(prototxt, weights, batch, onnx_path, threads):
    """The four forward callables for one net and batch, each taking the input array."""
    import cv2
    import onnxruntime as ort
    net = caffe.Net(prototxt, caffe.TEST, weights=weights)
    shape = (batch,) + net.blobs["data"].shape[1:]
    net.blobs["data"].reshape(*shape)
    net.reshape()
    out_name = net.outputs[0]
    model = caffe.load_model(prototxt, weights, phase="test")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    cvnet = cv2.dnn.readNetFromCaffe(prototxt, weights)
    cvnet.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    cvnet.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def opencv(x):
        cvnet.setInput(x)
        return cvnet.forward()

    return shape, {
        "kaffe Net.forward": lambda x: net.forward(data=x)[out_name],
        "kaffe predict": lambda x: model.predict(x, batch_size=batch, verbose=0),
        "ONNX Runtime": lambda x: session.run(None, {"data": x})[0],
        "OpenCV dnn": opencv,
    }


def burst_ms(peers, x, rounds, burst, settle=2):
    """Median ms per call of each peer: each round runs every peer for ``burst`` calls in turn,
    the first ``settle`` of each burst uncounted (the previous peer's threads still spin)."""
    times = {name: [] for name in peers}
    for _ in range(rounds):
        for name, fn in peers.items():
            for call in range(settle + burst):
                start = time.perf_counter()
                fn(x)
                if call >= settle:
                    times[name].append((time.perf_counter() - start) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def bench_net(key, rounds, burst, threads, tmp):
    label, proto_name, weights, batches, divisor = NETS[key]
    prototxt = os.path.join(ZOO, proto_name)
    if weights is None:
        net = caffe.Net(prototxt, caffe.TEST)
        formula_weights(net)
        weights = os.path.join(tmp, f"{key}.caffemodel")
        net.save(weights)
    onnx_path = os.path.join(tmp, f"{key}.onnx")
    start = time.perf_counter()
    caffe.export_onnx(prototxt, weights, onnx_path)
    export_s = time.perf_counter() - start
    rows = []
    for batch in batches:
        shape, peers = make_peers(prototxt, weights, batch, onnx_path, threads)
        rng = np.random.RandomState(batch)
        x = (rng.rand(*shape) if key == "lenet" else rng.randn(*shape) * 50).astype(np.float32)
        outputs = {name: np.asarray(fn(x)).reshape(shape[0], -1) for name, fn in peers.items()}
        base = outputs["kaffe Net.forward"]
        scale = float(np.abs(base).max()) or 1.0
        errors = {name: float(np.abs(out - base).max() / scale) for name, out in outputs.items()}
        ms = burst_ms(peers, x, max(3, rounds // divisor), max(2, burst // divisor))
        rows.append((f"{label}, batch {batch}", ms, errors))
    return rows, export_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--burst", type=int, default=10, help="calls per peer per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nets", default=",".join(NETS),
                        help=f"comma-separated subset of {','.join(NETS)}")
    args = parser.parse_args()
    import cv2
    import onnxruntime as ort
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}, onnxruntime "
          f"{ort.__version__}, OpenCV {cv2.__version__}; {args.threads} threads each")
    header = "| net | " + " | ".join(PEERS) + " | kaffe Net / OpenCV | max rel. diff vs kaffe " \
             "(ORT, OpenCV) |"
    lines = [header, "|---|" + "---:|" * (len(PEERS) + 2)]
    with tempfile.TemporaryDirectory() as tmp:
        for key in [k.strip() for k in args.nets.split(",") if k.strip()]:
            if key not in NETS:
                parser.error(f"unknown net {key!r}; choose from {', '.join(NETS)}")
            rows, export_s = bench_net(key, args.rounds, args.burst, args.threads, tmp)
            print(f"{NETS[key][0]}: exported in {export_s:.1f} s", flush=True)
            for name, ms, errors in rows:
                ratio = ms["OpenCV dnn"] / ms["kaffe Net.forward"]
                line = (f"| {name} | " + " | ".join(f"{ms[p]:.2f} ms" for p in PEERS)
                        + f" | {ratio:.2f}x | {errors['ONNX Runtime']:.1e}, "
                        f"{errors['OpenCV dnn']:.1e} |")
                lines.append(line)
                print(line, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
