"""Caffe rows: ``kaffe train`` on the GPU vs the CPU (same loss curve), and ``kaffe time`` of the
timing nets on the GPU against real Caffe's figures and a hand-written PyTorch twin."""
import contextlib
import gc
import io
import os
import re
import shutil
import statistics
import sys
import tempfile

import numpy as np
import torch
from google.protobuf import text_format

from common import REF, REPO, Row, guarded, median_ms, ratio_text, verdict
import hand_nets

sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import caffe_time  # noqa: E402  (caffe time log parsing, weight filling)

# BVLC docs/performance_hardware.md (rc branch): CaffeNet training on a K40 with cuDNN,
# 19.2 s per 20 iterations of 256 images (forward + backward + update): ms per image
CAFFE_CUDNN_K40_CAFFENET_MS_PER_IMAGE = 19.2e3 / 5120
LOSS_RTOL = 1e-3   # float32 on both devices (TF32 off for the comparison run)

_LOSS_LINE = re.compile(r"Iteration (\d+) \(([0-9.e+-]+|inf|nan) iter/s.*?\), loss = (\S+)")


# ---------------------------------------------------------------- kaffe train, GPU vs CPU
def _train(solver_path, gpu, weights=None):
    """``kaffe train`` in this process; (losses by iteration, median iter/s, log text)."""
    from kaffe.cli.main import main
    argv = ["train", "-solver", solver_path] + (["-gpu", "0"] if gpu else [])
    argv += ["-weights", weights] if weights else []
    err, here = io.StringIO(), os.getcwd()
    os.chdir(os.path.dirname(solver_path))   # Caffe reads a solver's paths from the cwd
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
            code = main(argv)
    finally:
        os.chdir(here)
    text = err.getvalue()
    if code != 0:
        raise RuntimeError(f"kaffe {' '.join(argv)} exited {code}: {text[-600:]}")
    found = _LOSS_LINE.findall(text)
    losses = {int(it): float(loss) for it, _, loss in found}
    rates = [float(r) for _, r, _ in found[1:] if r not in ("inf", "nan")]  # after the first
    return losses, (statistics.median(rates) if rates else float("nan")), text


def _write_solver(folder, net_file, iterations, base_lr, lr_policy="fixed", extra=None):
    from kaffe.caffe.proto import caffe_pb2
    p = caffe_pb2.SolverParameter(net=net_file, base_lr=base_lr, momentum=0.9,
                                  weight_decay=5e-4, lr_policy=lr_policy, display=1,
                                  max_iter=iterations, snapshot=0, snapshot_after_train=False,
                                  snapshot_prefix=os.path.join(folder, "snap"), random_seed=1701)
    for key, value in (extra or {}).items():
        setattr(p, key, value)
    path = os.path.join(folder, "solver.prototxt")
    with open(path, "w") as f:
        f.write(text_format.MessageToString(p))
    return path


def _stage_lenet(folder, iterations):
    mnist = os.path.join(REF, "mnist")
    shutil.copy(os.path.join(mnist, "lenet_train_test.prototxt"), folder)
    for db in ("mnist_train_lmdb", "mnist_test_lmdb"):   # copies: never open the reference DBs
        shutil.copytree(os.path.join(mnist, db), os.path.join(folder, db))
    solver = _write_solver(folder, "lenet_train_test.prototxt", iterations, 0.01, "inv",
                           {"gamma": 1e-4, "power": 0.75})
    return solver, os.path.join(mnist, "lenet_init.caffemodel")


def _stage_caffenet(folder, iterations, batch):
    """CaffeNet's deploy net trained on random images from an HDF5 file (no ImageNet here),
    its Dropout layers removed so that both devices compute the same function."""
    import h5py

    from kaffe import caffe
    param = caffe.read_net_param(os.path.join(REF, "timing", "caffenet_deploy.prototxt"))
    layers = [lp for lp in param.layer if lp.type not in ("Input", "Dropout", "Softmax")]
    del param.layer[:]
    data = param.layer.add(name="data", type="HDF5Data")
    data.top.extend(["data", "label"])
    data.hdf5_data_param.source = os.path.join(folder, "h5list.txt")
    data.hdf5_data_param.batch_size = batch
    for lp in layers:
        param.layer.add().CopyFrom(lp)
    loss = param.layer.add(name="loss", type="SoftmaxWithLoss")
    loss.bottom.extend(["fc8", "label"])
    loss.top.append("loss")
    net_file = os.path.join(folder, "caffenet_train.prototxt")
    with open(net_file, "w") as f:
        f.write(text_format.MessageToString(param))
    rng = np.random.RandomState(0)
    n = batch * iterations
    with h5py.File(os.path.join(folder, "images.h5"), "w") as f:
        f["data"] = rng.randn(n, 3, 227, 227).astype(np.float32)
        f["label"] = rng.randint(0, 1000, n).astype(np.float32)
    with open(os.path.join(folder, "h5list.txt"), "w") as f:
        f.write(os.path.join(folder, "images.h5") + "\n")
    net = caffe.Net(param, caffe.TRAIN)
    caffe_time.fill_weights(net)
    weights = os.path.join(folder, "init.caffemodel")
    net.save(weights)
    return _write_solver(folder, net_file, iterations, 1e-4), weights


def train_row(plan, name):
    """``kaffe train -gpu 0`` vs ``kaffe train`` (CPU) from the same weights and data."""
    iterations = {"lenet": plan.size(200, 6), "caffenet": plan.size(10, 3)}[name]
    with tempfile.TemporaryDirectory() as folder:
        if name == "lenet":
            solver, weights = _stage_lenet(folder, iterations)
            what = f"kaffe train LeNet b64, {iterations} it: GPU vs CPU loss curve"
        else:
            batch = plan.size(10, 2)
            solver, weights = _stage_caffenet(folder, iterations, batch)
            what = f"kaffe train CaffeNet b{batch} (no dropout), {iterations} it: GPU vs CPU"
        cpu_losses, cpu_rate, _ = _train(solver, gpu=False, weights=weights)
        on_cuda = None
        tf32 = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            if plan.device.type == "cuda":
                held = torch.cuda.memory_allocated(plan.device)
                torch.cuda.reset_peak_memory_stats(plan.device)
            gpu_losses, gpu_rate, _ = _train(solver, gpu=True, weights=weights)
            if plan.device.type == "cuda":   # a run on the GPU allocates on it
                on_cuda = torch.cuda.max_memory_allocated(plan.device) > held
        finally:
            torch.backends.cudnn.allow_tf32 = tf32
    common = sorted(set(cpu_losses) & set(gpu_losses))
    if not common:
        return Row(what, status="ERROR", note="no 'Iteration N ..., loss = x' lines in the log")
    worst = max(abs(gpu_losses[i] - cpu_losses[i]) / max(1.0, abs(cpu_losses[i]))
                for i in common)
    same = worst <= LOSS_RTOL and len(common) == len(cpu_losses)
    note = (f"max rel. loss diff {worst:.1e} over {len(common)} iterations (tol {LOSS_RTOL:g}, "
            f"TF32 off); loss {cpu_losses[common[0]]:.4g} -> {cpu_losses[common[-1]]:.4g}")
    status = verdict(same)
    if on_cuda is False:
        status, note = "FAIL", "the -gpu run allocated no CUDA memory: it ran on the CPU; " + note
    elif plan.dry:
        note = "dry run: both runs on the CPU (-gpu 0 falls back); " + note
    return Row(what, f"{gpu_rate:.1f} it/s", f"CPU {cpu_rate:.1f} it/s",
               ratio_text(gpu_rate / cpu_rate if cpu_rate else None),
               "same loss curve", status, note)


# ---------------------------------------------------------------- kaffe time
TIME_NETS = {  # key -> (label, deploy prototxt, real Caffe caffe time log, input side)
    "caffenet": ("CaffeNet", "caffenet_deploy.prototxt", "caffenet_time.log", 227),
    "googlenet": ("GoogLeNet", "googlenet_deploy.prototxt", "googlenet_time.log", 224),
    "vgg16": ("VGG-16", "vgg16_deploy.prototxt", "vgg16_time.log", 224),
    "resnet50": ("ResNet-50", "resnet50_deploy_batch10.prototxt", "resnet50_time.log", 224),
}


def _timing_net(prototxt, batch):
    """The deploy net in TRAIN phase with force_backward (as caffe_time.py: ``caffe time``
    runs every layer's Backward), its input batch set to ``batch``."""
    from kaffe import caffe
    param = caffe.read_net_param(os.path.join(REF, "timing", prototxt))
    param.force_backward = True
    param.layer[0].input_param.shape[0].dim[0] = batch
    return caffe.Net(param, caffe.TRAIN)


def _kaffe_conv_fc_size(net):
    types = dict(zip(net._layer_names, (layer.type for layer in net.layers)))
    return sum(b.data.size for name, blobs in net.params.items()
               if types.get(name) in ("Convolution", "InnerProduct") for b in blobs)


def _hand_ms(key, batch, side, device, iterations):
    model = hand_nets.NETS[key]().to(device).train()
    x = torch.randn(batch, 3, side, side, device=device, requires_grad=True)

    def step():
        out = model(x)
        out.backward(torch.ones_like(out))
    ms = median_ms(step, iterations, device, warmup=0 if device.type == "cpu" else 3)
    return ms, hand_nets.conv_fc_size(model)


def _runs_on(device, forward):
    """Whether ``forward()`` computes on ``device``: on CUDA it must allocate there."""
    if device.type != "cuda":
        return True
    held = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    forward()
    return torch.cuda.max_memory_allocated(device) > held


def _kaffe_ms(net, iterations, plan):
    """(``kaffe time``'s per-layer median, ``Net.forward()+backward()`` median) in ms."""
    from kaffe.caffe.timing import time_net
    report = time_net(net, iterations)

    def step():
        net.forward()
        net.backward()
    return (float(np.median(report.iteration_ms)),
            median_ms(step, iterations, plan.device, warmup=0 if plan.dry else 3))


def time_rows(plan, key):
    """Rows for one timing net: kaffe time vs real Caffe's CPU log (informational), vs the
    published cuDNN figure (CaffeNet only) and vs the hand-written PyTorch twin."""
    from kaffe import caffe
    label, prototxt, log_name, side = TIME_NETS[key]
    batch = plan.size(10, 1)
    iterations = plan.size(20, 1)
    rows = []
    if plan.device.type == "cuda":
        caffe.set_mode_gpu()
        caffe.set_device(plan.device.index or 0)
    try:   # GPU mode for building and running (pycaffe's mode is read at forward time too)
        net = _timing_net(prototxt, batch)
        kaffe_size = _kaffe_conv_fc_size(net)
        caffe_time.fill_weights(net)
        caffe_time.fill_inputs(net, np.random.RandomState(0))
        on_device = _runs_on(plan.device, net.forward)
        kaffe_ms, step_ms = _kaffe_ms(net, iterations, plan) if on_device else (None, None)
    finally:
        caffe.set_mode_cpu()
    del net
    gc.collect()
    if plan.device.type == "cuda":
        torch.cuda.empty_cache()
    hand_ms, hand_size = _hand_ms(key, batch, side, plan.device, iterations)
    same = "same conv/fc shapes" if hand_size == kaffe_size else \
        f"conv/fc sizes differ: kaffe {kaffe_size:,} vs hand {hand_size:,}"
    what = f"kaffe time {label} b{batch} fwd+bwd"
    if kaffe_ms is None:
        fail = "a forward after caffe.set_mode_gpu() allocated no CUDA memory: no GPU figure"
        rows.append(Row(what, status="FAIL", note=fail))
        rows.append(Row(f"{label} b{batch} fwd+bwd vs hand PyTorch", peer=f"{hand_ms:.1f} ms",
                        target=">= 1.0x", status="FAIL", note=fail))
        return rows
    caffe_fb = caffe_time.caffe_log(log_name)[2] * batch / 10
    rows.append(Row(what, f"{kaffe_ms:.1f} ms", f"Caffe CPU log {caffe_fb:.0f} ms",
                    ratio_text(caffe_fb / kaffe_ms), "-", "INFO",
                    f"per-layer synced median; real Caffe: 2 vCPU EPYC CPU (timing/{log_name})"
                    + (", scaled to the batch" if batch != 10 else "")))
    if key == "caffenet":
        per_image = step_ms / batch
        ratio = CAFFE_CUDNN_K40_CAFFENET_MS_PER_IMAGE / per_image
        rows.append(Row(f"CaffeNet b{batch} fwd+bwd per image vs Caffe+cuDNN K40",
                        f"{per_image:.2f} ms/img",
                        f"{CAFFE_CUDNN_K40_CAFFENET_MS_PER_IMAGE:.2f} ms/img",
                        ratio_text(ratio), ">= 3x", verdict(ratio >= 3) if not plan.dry else "INFO",
                        "BVLC performance_hardware.md: 19.2 s / 20 it x 256 img (train, K40); "
                        "kaffe: Net.forward+backward"))
    ratio = hand_ms / step_ms
    rows.append(Row(f"{label} b{batch} Net fwd+bwd vs hand PyTorch", f"{step_ms:.1f} ms",
                    f"{hand_ms:.1f} ms", ratio_text(ratio), ">= 1.0x",
                    "INFO" if plan.dry else verdict(ratio >= 1.0 and hand_size == kaffe_size),
                    same))
    return rows


def train_rows(plan, left_s=None):
    return [row for name in ("lenet", "caffenet")
            for row in guarded(f"kaffe train {name}", lambda: [train_row(plan, name)])]


def timing_rows(plan, left_s=None):
    return [row for key in TIME_NETS
            for row in guarded(f"kaffe time {key}", lambda: time_rows(plan, key))]
