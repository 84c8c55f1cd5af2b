"""Convolutional autoencoder fit throughput: kaffe vs a hand-written PyTorch loop vs Keras 3.

The seed's denoising autoencoder (28x28x1 -> Conv2D(32)+MaxPool x2 -> 7x7x32 -> Conv2D(32)+
UpSampling x2 -> sigmoid Conv2D(1), all 3x3 'same'), noisy MNIST digits in, clean ones out,
binary cross-entropy, Adadelta (learning rate 1.0), batch 128. Every peer trains the same
architecture in this one process on the same arrays; the first epoch of each is discarded
(warm-up), the next ones are timed. (``fit_throughput.py`` times classifiers with labels and
accuracy; an autoencoder's targets are images, hence this separate script.)

Peers: the PyTorch loop a user writes (``nn.Sequential`` on NCHW tensors, shuffled index
slices, sigmoid folded into ``binary_cross_entropy_with_logits`` as kaffe does, the epoch's
loss summed on the device and read once per epoch); the same loop with the model and data in
``channels_last`` memory format (what kaffe runs Keras's NHWC layers as); Keras 3 on torch.

    KERAS_BACKEND=torch python benchmarks/autoencoder_fit.py [--samples 2000] [--epochs 3]
"""
import argparse
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import kaffe  # noqa: E402
from kaffe.datasets import mnist  # noqa: E402

BATCH = 128


def load(n):
    (x, _), _ = mnist.load_data()
    clean = x[:n].astype("float32").reshape(n, 28, 28, 1) / 255.0
    noisy = np.clip(clean + 0.5 * np.random.default_rng(0).normal(size=clean.shape), 0, 1)
    return noisy.astype("float32"), clean


def keras_like(lib):
    L = lib.layers
    def conv(t):
        return L.Conv2D(32, (3, 3), activation="relu", padding="same")(t)

    inp = L.Input(shape=(28, 28, 1))
    x = L.MaxPooling2D((2, 2), padding="same")(conv(inp))
    x = L.MaxPooling2D((2, 2), padding="same")(conv(x))
    x = L.UpSampling2D((2, 2))(conv(x))
    x = L.UpSampling2D((2, 2))(conv(x))
    out = L.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)
    model = lib.Model(inp, out)
    model.compile(optimizer=lib.optimizers.Adadelta(learning_rate=1.0), loss="binary_crossentropy")
    return model


def torch_model():
    """The same net in torch.nn; returns logits (the sigmoid lives in the loss)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
        nn.Conv2d(32, 1, 3, padding=1))


def hand_loop(noisy, clean, epochs, channels_last):
    model = torch_model()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    xt = torch.from_numpy(noisy.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
    yt = torch.from_numpy(clean.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros(())
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), BATCH):
            idx = order[i:i + BATCH]
            xb, yb = xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.binary_cross_entropy_with_logits(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
        float(loss_sum)
        times.append(time.perf_counter() - start)
    return times


def framework_fit(lib, noisy, clean, epochs):
    model = keras_like(lib)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(noisy, clean, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3, help="including the discarded first")
    parser.add_argument("--no-keras", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    noisy, clean = load(args.samples)
    n = len(noisy)
    rows = {}
    rows["hand loop (NCHW)"] = n / np.mean(hand_loop(noisy, clean, args.epochs, False)[1:])
    rows["hand loop (channels_last)"] = n / np.mean(hand_loop(noisy, clean, args.epochs, True)[1:])
    rows["kaffe fit"] = n / np.mean(framework_fit(kaffe, noisy, clean, args.epochs)[1:])
    if not args.no_keras:
        import keras
        rows["keras 3 fit"] = n / np.mean(framework_fit(keras, noisy, clean, args.epochs)[1:])
    print(f"\n## seed conv autoencoder: {n} MNIST samples, batch {BATCH}, "
          f"{args.epochs - 1} timed epochs; load average {os.getloadavg()[0]:.1f} at the end")
    print("| peer | samples/s | kaffe / peer |")
    print("|---|---:|---:|")
    for peer, rate in rows.items():
        print(f"| {peer} | {rate:,.0f} | {rows['kaffe fit'] / rate:.2f}x |")


if __name__ == "__main__":
    main()
