"""LSTM text classifier throughput: kaffe vs a hand-written PyTorch loop (nn.LSTM) vs Keras 3.

Embedding(10000, 128) -> LSTM(128) -> Dense(1, sigmoid), sequences of 100 tokens, batch 128,
RMSprop, binary cross-entropy, accuracy. Same architecture in every peer, one process; the first
epoch is discarded, the rest timed.

    KERAS_BACKEND=torch python benchmarks/lstm_text.py [--samples N] [--epochs E]
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

VOCAB, DIM, UNITS, LENGTH, BATCH = 10000, 128, 128, 100, 128


def data(n):
    rng = np.random.default_rng(0)
    x = rng.integers(1, VOCAB, size=(n, LENGTH))
    y = (x[:, -10:] < VOCAB // 2).mean(axis=1, keepdims=True) > 0.5
    return x, y.astype("float32")


class HandModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.lstm = nn.LSTM(DIM, UNITS, batch_first=True)
        self.out = nn.Linear(UNITS, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(self.embed(x))
        return self.out(h[-1])


def hand_loop(x, y, epochs):
    model = HandModel()
    opt = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        correct, loss_sum = torch.zeros(()), torch.zeros(())
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), BATCH):
            idx = order[i:i + BATCH]
            logits = model(xt[idx])
            loss = nn.functional.binary_cross_entropy_with_logits(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += ((logits > 0).float() == yt[idx]).sum()
            loss_sum += loss.detach() * len(idx)
        float(correct), float(loss_sum)
        times.append(time.perf_counter() - start)
    return times


def framework(lib, x, y, epochs):
    L = lib.layers
    model = lib.Sequential([L.Input((LENGTH,), dtype="int32"), L.Embedding(VOCAB, DIM),
                            L.LSTM(UNITS), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=2560)
    parser.add_argument("--epochs", type=int, default=3, help="including the discarded first")
    parser.add_argument("--no-keras", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = data(args.samples)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.samples} sequences of {LENGTH}")
    rates = {"hand loop (nn.LSTM)": args.samples / np.mean(hand_loop(x, y, args.epochs)[1:]),
             "kaffe fit": args.samples / np.mean(framework(kaffe, x, y, args.epochs)[1:])}
    if not args.no_keras:
        import keras
        rates["keras 3 fit"] = args.samples / np.mean(framework(keras, x, y, args.epochs)[1:])
    print("| peer | samples/s | kaffe / peer |")
    print("|---|---:|---:|")
    for peer, rate in rates.items():
        print(f"| {peer} | {rate:,.0f} | {rates['kaffe fit'] / rate:.2f}x |")


if __name__ == "__main__":
    main()
