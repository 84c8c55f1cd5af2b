"""Caffe nets on kaffe vs real Caffe's ``caffe time`` and OpenCV dnn (CPU).

LeNet (batch 64, the TRAIN net of ``examples/mnist/lenet_train_test.prototxt`` with its LMDB
Data layer replaced by an Input of the same shapes), CaffeNet, GoogLeNet, VGG-16 and ResNet-50
(batch 10, the deploy prototxts in ``shared/reference/timing``, TRAIN phase as ``caffe time``
uses; ``--nets`` picks a subset).
For each: kaffe's ``time_net`` (``kaffe time``: per-layer timed, each layer on its own autograd
graph, the same work as real Caffe's ``caffe time``: on a deploy net without a loss Caffe's
backward computes parameter diffs only) and kaffe's plain ``Net.forward()`` + ``Net.backward()``
(one graph; deploy nets, having no loss, get ``force_backward``, so this row also computes
every bottom diff there, more work than ``caffe time`` did), against the forward+backward figure of real Caffe's
``caffe time`` log in ``shared/reference/timing``.
Then forward only (TEST-phase deploy net, same weights) of kaffe vs OpenCV's
``cv2.dnn.readNetFromCaffe`` if OpenCV is installed. Prints ms per iteration and ratios
(> 1 = kaffe faster).

    .venv/bin/python benchmarks/caffe_time.py [--iterations 20] [--nets lenet,caffenet,...]
        [--no-per-layer] [--no-forward]
"""
import argparse
import os
import platform
import re
import tempfile
import time

import numpy as np
import torch

from kaffe import caffe
from kaffe.caffe.timing import time_net

# ../shared next to the repository (the workspace layout), whatever the absolute path
REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "shared",
                   "reference")


def caffe_log(name):
    """(forward, backward, forward-backward) ms from real Caffe's caffe time log."""
    text = open(os.path.join(REF, "timing", name)).read()
    get = lambda what: float(re.search(rf"Average {what}: ([0-9.]+) ms", text).group(1))  # noqa
    return get("Forward pass"), get("Backward pass"), get("Forward-Backward")


def lenet_train_param():
    param = caffe.read_net_param(os.path.join(REF, "mnist", "lenet_train_test.prototxt"))
    layers = [lp for lp in param.layer if lp.type != "Data"]
    del param.layer[:]
    data = param.layer.add(name="mnist", type="Input")
    data.top.extend(["data", "label"])
    data.input_param.shape.add().dim.extend([64, 1, 28, 28])
    data.input_param.shape.add().dim.extend([64])
    for lp in layers:
        param.layer.add().CopyFrom(lp)
    return param


def best_ms(fn, iterations, warmup=3):
    warmup = min(warmup, iterations)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.mean(times)), float(np.median(times))


def fill_weights(net):
    """Deploy prototxts have no fillers (zero weights): give every blob He-normal values."""
    rng = np.random.RandomState(2)
    for blobs in net.params.values():
        for b in blobs:
            if b.data.any():
                continue
            fan_in = np.prod(b.data.shape[1:]) if b.data.ndim > 1 else 100
            b.data[...] = rng.randn(*b.data.shape) * np.sqrt(2.0 / fan_in)


def fill_inputs(net, rng):
    for name in net.inputs:
        blob = net.blobs[name]
        if name == "label":
            blob.data[...] = rng.randint(0, 10, blob.shape)
        else:
            blob.data[...] = rng.rand(*blob.shape) if blob.data.ndim == 4 and \
                blob.shape[1] == 1 else rng.randn(*blob.shape) * 50


def train_bench(name, param, log, iterations, per_layer=True):
    report = None
    if per_layer:
        net = caffe.Net(param, caffe.TRAIN)   # as real Caffe ran it
        fill_weights(net)
        fill_inputs(net, np.random.RandomState(0))
        report = time_net(net, iterations)
    net = caffe.Net(param, caffe.TRAIN)
    if not any(net.blob_loss_weights.values()):   # a deploy net: Net.backward needs a reason
        forced = caffe.caffe_pb2.NetParameter()
        forced.CopyFrom(param)
        forced.force_backward = True
        net = caffe.Net(forced, caffe.TRAIN)
    fill_weights(net)
    fill_inputs(net, np.random.RandomState(0))

    def step():
        net.forward()
        net.backward()
    mean, median = best_ms(step, iterations)
    cf, cb, cfb = log
    print(f"\n{name}: forward+backward ms per iteration (TRAIN net)")
    print(f"  real Caffe caffe time     fwd {cf:8.2f}  bwd {cb:8.2f}  fwd+bwd {cfb:8.2f}")
    if report is not None:
        per_layer_median = float(np.median(report.iteration_ms))
        print(f"  kaffe time (per layer)    fwd {report.forward_total_ms:8.2f}  bwd "
              f"{report.backward_total_ms:8.2f}  fwd+bwd {per_layer_median:8.2f}  (median; mean "
              f"{report.total_ms / iterations:.2f}) -> {cfb / per_layer_median:.2f}x Caffe")
    print(f"  kaffe Net.forward+backward                          fwd+bwd {median:8.2f}  "
          f"(median; mean {mean:.2f}) -> {cfb / median:.2f}x Caffe")
    return report


def forward_bench(name, prototxt, shape, iterations, batch_of_deploy=None):
    net = caffe.Net(prototxt, caffe.TEST)
    if net.blobs["data"].shape != shape:
        net.blobs["data"].reshape(*shape)
        net.reshape()
    fill_weights(net)
    rng = np.random.RandomState(1)
    x = (rng.rand(*shape) * 255 - 128).astype(np.float32)
    with torch.inference_mode():
        _, kaffe_ms = best_ms(lambda: net.forward(data=x), iterations)
    print(f"\n{name}: forward ms (TEST deploy net, batch {shape[0]})")
    print(f"  kaffe Net.forward         {kaffe_ms:8.2f}  (median)")
    try:
        import cv2
    except ImportError:
        print("  OpenCV dnn: not installed (pip install opencv-python-headless)")
        return
    if not hasattr(cv2.dnn, "readNetFromCaffe"):
        print(f"  OpenCV {cv2.__version__} has no Caffe importer (removed in 5.x); install "
              f"'opencv-python-headless<4.13'")
        return
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "w.caffemodel")
        net.save(weights)
        cvnet = cv2.dnn.readNetFromCaffe(prototxt, weights)
        cvnet.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        cvnet.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

        def cv_forward():
            cvnet.setInput(x)
            return cvnet.forward()
        _, cv_ms = best_ms(cv_forward, iterations)
        out = cv_forward()
    ours = net.forward(data=x)[net.outputs[0]]
    err = float(np.abs(out.reshape(ours.shape) - ours).max() / np.abs(ours).max())
    print(f"  OpenCV {cv2.__version__} dnn forward  {cv_ms:8.2f}  -> kaffe {cv_ms / kaffe_ms:.2f}x "
          f"OpenCV (outputs agree to {err:.1e} relative, {cv2.getNumThreads()} OpenCV threads)")


def timing_net(name):
    """A deploy net of ``timing/``, as real Caffe's ``caffe time`` read it."""
    return caffe.read_net_param(os.path.join(REF, "timing", name))


# name -> (label, net factory, real Caffe log, iteration divisor); the big nets run fewer
TRAIN_NETS = {
    "lenet": ("LeNet batch 64", lenet_train_param,
              "lenet_time.log", 1),
    "caffenet": ("CaffeNet batch 10", lambda: timing_net("caffenet_deploy.prototxt"),
                 "caffenet_time.log", 4),
    "googlenet": ("GoogLeNet batch 10", lambda: timing_net("googlenet_deploy.prototxt"),
                  "googlenet_time.log", 8),
    "vgg16": ("VGG-16 batch 10", lambda: timing_net("vgg16_deploy.prototxt"),
              "vgg16_time.log", 10),
    "resnet50": ("ResNet-50 batch 10", lambda: timing_net("resnet50_deploy_batch10.prototxt"),
                 "resnet50_time.log", 10),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--nets", default=",".join(TRAIN_NETS),
                        help=f"comma-separated subset of {','.join(TRAIN_NETS)}")
    parser.add_argument("--no-per-layer", action="store_true",
                        help="skip kaffe time's per-layer timing (Net.forward+backward only)")
    parser.add_argument("--no-forward", action="store_true",
                        help="skip the forward-only comparison with OpenCV")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); real Caffe figures: 2 vCPU "
          f"AMD EPYC, OpenBLAS (shared/reference/timing)")
    for key in [k.strip() for k in args.nets.split(",") if k.strip()]:
        if key not in TRAIN_NETS:
            parser.error(f"unknown net {key!r}; choose from {', '.join(TRAIN_NETS)}")
        label, make, log_name, divisor = TRAIN_NETS[key]
        train_bench(label, make(), caffe_log(log_name), max(3, args.iterations // divisor),
                    per_layer=not args.no_per_layer)
    if args.no_forward:
        return
    forward_bench("LeNet", os.path.join(REF, "zoo", "lenet_deploy.prototxt"), (64, 1, 28, 28),
                  args.iterations)
    forward_bench("CaffeNet", os.path.join(REF, "timing", "caffenet_deploy.prototxt"),
                  (10, 3, 227, 227), max(3, args.iterations // 4))


if __name__ == "__main__":
    main()
