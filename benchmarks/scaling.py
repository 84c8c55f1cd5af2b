"""Data-parallel scaling and GPU precision/compilation matrix for the seed convnet.

CPU part (always): samples/s of ``fit`` on the seed VGG-like convnet (MNIST 28x28x1, SGD with
Nesterov momentum, accuracy), each configuration in fresh processes:

- 1 process, 2 torch threads; 1 process, 1 thread;
- 2 processes under torchrun (``kaffe.distribute.launch``), 1 thread each, global batch 128
  (Keras 3 semantics: 64 per process) and global batch 256 (128 per process, as Caffe's
  multi-GPU batch-per-device).

GPU part (only when CUDA is present, or forced with ``--matrix-device cpu`` for a smoke run):
kaffe ``fit`` eager / ``jit_compile=True`` / AMP (``mixed_float16``; ``mixed_bfloat16`` on
CPU) / both, against a hand-written PyTorch loop (eager, ``torch.compile``, compiled + AMP with
GradScaler, channels_last) and Keras 3 ``fit`` on its torch backend.

    KERAS_BACKEND=torch python benchmarks/scaling.py [--samples 3000] [--epochs 3]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import fit_throughput as ft  # noqa: E402  (the seed models and MNIST loading)
import kaffe  # noqa: E402
from kaffe import distribute, mixed_precision  # noqa: E402


# ---------------------------------------------------------------------- CPU scaling worker
class EpochTimer(kaffe.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times, self.cpu = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)
        self.cpu.append(time.process_time() - self.cpu_start)


def worker(args):
    """One process of a configuration: fit, time epochs (the first is warm-up), rank 0
    writes samples/s."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y, _ = ft.load(args.samples, conv=True)
    model = ft.keras_like(kaffe, conv=True)
    model.compile(optimizer=kaffe.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(x, y, batch_size=args.batch, epochs=args.epochs, verbose=0, callbacks=[timer])
    with open(f"{args.result}.{distribute.rank()}", "w") as f:
        json.dump({"samples_per_s": args.samples / float(np.mean(timer.times[1:])),
                   "cpu_s": float(np.mean(timer.cpu[1:])), "world": distribute.world_size(),
                   "threads": torch.get_num_threads()}, f)


def run_config(nproc, threads, batch, args):
    fd, result = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    argv = [os.path.abspath(__file__), "--worker", "--threads", str(threads), "--batch",
            str(batch), "--samples", str(args.samples), "--epochs", str(args.epochs),
            "--result", result]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    outs = []
    try:
        if nproc == 1:
            code = subprocess.call([sys.executable] + argv, env=env)
        else:
            code = distribute.launch(nproc, argv, env={"OMP_NUM_THREADS": str(threads)})
        if code != 0:
            raise SystemExit(f"configuration nproc={nproc} threads={threads} failed ({code})")
        for rank in range(nproc):
            with open(f"{result}.{rank}") as f:
                outs.append(json.load(f))
    finally:
        for path in [result] + [f"{result}.{rank}" for rank in range(nproc)]:
            if os.path.exists(path):
                os.remove(path)
    # wall-clock rate (rank 0's) and CPU milliseconds per sample summed over the processes:
    # the second does not depend on how much of the machine other jobs took
    return outs[0]["samples_per_s"], 1e3 * sum(o["cpu_s"] for o in outs) / args.samples


def cpu_scaling(args):
    rows = [("1 process, 2 threads", 1, 2, 128), ("1 process, 1 thread", 1, 1, 128),
            ("2 processes x 1 thread, global batch 128", 2, 1, 128),
            ("2 processes x 1 thread, global batch 256", 2, 1, 256)]
    rates, cpu = {}, {}
    for _ in range(args.rounds):  # interleaved rounds, best of each: a busy box is bursty
        for name, nproc, threads, batch in rows:
            rate, cpu_ms = run_config(nproc, threads, batch, args)
            rates[name] = max(rates.get(name, 0.0), rate)
            cpu[name] = min(cpu.get(name, float("inf")), cpu_ms)
    print(f"\n## CPU: seed convnet, {args.samples} MNIST samples, "
          f"{args.epochs - 1} timed epochs (first discarded), best of {args.rounds} rounds")
    print("| configuration | samples/s | vs 1 process, 2 threads | vs 1 process, 1 thread | "
          "CPU ms/sample (all processes) | cores it got |")
    print("|---|---:|---:|---:|---:|---:|")
    base2, base1 = rates["1 process, 2 threads"], rates["1 process, 1 thread"]
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / base2:.2f}x | {rate / base1:.2f}x | "
              f"{cpu[name]:.2f} | {rate * cpu[name] / 1e3:.2f} |")
    # With a free core per process, N processes run at N x (1-thread CPU per sample) / (their
    # CPU per sample) of one 1-thread process: the cost of the data-parallel step, alone.
    for name in list(rates)[2:]:
        print(f"{name}: {2 * cpu['1 process, 1 thread'] / cpu[name]:.2f}x one 1-thread process "
              "on an idle machine with a core per process (from CPU time per sample)")


# ---------------------------------------------------------------------- GPU matrix
def hand_loop(x, labels, epochs, device, compiled, amp_dtype, batch):
    """A PyTorch user's best loop: NCHW channels_last tensors on the device, torch.compile,
    autocast + GradScaler (float16), loss/accuracy accumulated on the device."""
    model = ft.torch_model(conv=True).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device)
    xt = xt.contiguous(memory_format=torch.channels_last)
    yt = torch.from_numpy(labels).to(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    def forward_loss(xb, yb):
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                            enabled=amp_dtype is not None):
            logits = model(xb)
        return nn.functional.cross_entropy(logits.float(), yb), logits
    step_fn = torch.compile(forward_loss) if compiled else forward_loss
    times = []
    for _ in range(epochs):
        _sync(device)
        start = time.perf_counter()
        model.train()
        correct = torch.zeros((), device=device)
        loss_sum = torch.zeros((), device=device)
        order = torch.randperm(len(xt), device=device)
        for i in range(0, len(xt), batch):
            idx = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss, logits = step_fn(xt[idx], yt[idx])
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            correct += (logits.argmax(1) == yt[idx]).sum()
            loss_sum += loss.detach() * len(idx)
        float(correct), float(loss_sum)
        _sync(device)
        times.append(time.perf_counter() - start)
    return len(xt) / np.mean(times[1:])


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def kaffe_fit(x, y, epochs, jit, policy, batch):
    mixed_precision.set_global_policy(policy)
    try:
        model = ft.keras_like(kaffe, conv=True)
        model.compile(optimizer=kaffe.optimizers.SGD(learning_rate=0.01, momentum=0.9,
                                                     nesterov=True),
                      loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=jit)
        timer = EpochTimer()
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer])
        return len(x) / np.mean(timer.times[1:])
    finally:
        mixed_precision.set_global_policy("float32")


def keras_fit(x, y, epochs, batch):
    import keras
    model = ft.keras_like(keras, conv=True)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    return len(x) / np.mean(times[1:])


def gpu_matrix(args, device):
    os.environ["KAFFE_DEVICE"] = str(device)
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    policy = "mixed_float16" if low == torch.float16 else "mixed_bfloat16"
    x, y, labels = ft.load(args.gpu_samples, conv=True)
    e, b = args.epochs, args.gpu_batch
    rows = {
        "kaffe fit, eager": kaffe_fit(x, y, e, False, "float32", b),
        "kaffe fit, jit_compile": kaffe_fit(x, y, e, True, "float32", b),
        f"kaffe fit, {policy}": kaffe_fit(x, y, e, False, policy, b),
        f"kaffe fit, jit_compile + {policy}": kaffe_fit(x, y, e, True, policy, b),
        "hand loop, eager": hand_loop(x, labels, e, device, False, None, b),
        "hand loop, torch.compile": hand_loop(x, labels, e, device, True, None, b),
        f"hand loop, torch.compile + {policy[6:]} AMP": hand_loop(x, labels, e, device, True,
                                                                  low, b),
    }
    if not args.no_keras:
        rows["Keras 3 fit (torch backend)"] = keras_fit(x, y, e, b)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    print(f"\n## {device.type.upper()} ({name}): seed convnet, {args.gpu_samples} samples, "
          f"batch {b}, {e - 1} timed epochs")
    best_kaffe = rows[f"kaffe fit, jit_compile + {policy}"]
    best_hand = rows[f"hand loop, torch.compile + {policy[6:]} AMP"]
    print("| peer | samples/s |")
    print("|---|---:|")
    for peer, rate in rows.items():
        print(f"| {peer} | {rate:,.0f} |")
    print(f"kaffe jit_compile + AMP / hand compiled AMP loop: {best_kaffe / best_hand:.2f}x "
          "(target >= 0.9x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3, help="including the discarded first")
    parser.add_argument("--rounds", type=int, default=2, help="CPU table: best of N runs")
    parser.add_argument("--gpu-samples", type=int, default=60000)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--matrix-device", default=None,
                        help="run the GPU matrix on this device (default: cuda when present)")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, CUDA: {torch.cuda.is_available()}")
    if not args.skip_cpu:
        os.environ.setdefault("KAFFE_DEVICE", "cpu")  # the CPU table stays on the CPU
        cpu_scaling(args)
        os.environ.pop("KAFFE_DEVICE", None)
    device = args.matrix_device or ("cuda" if torch.cuda.is_available() else None)
    if device is None:
        print("\nNo CUDA device: the GPU matrix (eager / jit_compile / AMP vs a hand-written "
              "compiled loop and Keras 3) was not run.")
        return
    gpu_matrix(args, torch.device(device))


if __name__ == "__main__":
    main()
