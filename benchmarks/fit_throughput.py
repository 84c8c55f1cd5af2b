"""fit/predict/train_on_batch throughput: kaffe vs a hand-written PyTorch loop vs Keras 3.

Models from the seeds: the MLP (784-64-64-10 with dropout) and the VGG-like convnet on 28x28x1,
batch 128, SGD with Nesterov momentum, accuracy metric, real MNIST. Every peer trains the same
architecture in this one process; the first epoch of each is discarded (warm-up), the next
ones are timed. Prints samples/s and the ratios the issue's targets are stated in.

    KERAS_BACKEND=torch python benchmarks/fit_throughput.py [--mlp-samples N] [--conv-samples N]
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


def load(n, conv):
    (x, y), _ = mnist.load_data()
    x = x[:n].astype("float32") / 255.0
    x = x.reshape(n, 28, 28, 1) if conv else x.reshape(n, 784)
    return x, np.eye(10, dtype="float32")[y[:n]], y[:n].astype("int64")


# ---------------------------------------------------------------------- the models, three ways
def keras_like(lib, conv):
    L = lib.layers
    if not conv:
        return lib.Sequential([L.Dense(64, activation="relu", input_shape=(784,)), L.Dropout(0.1),
                               L.Dense(64, activation="relu"), L.Dropout(0.1),
                               L.Dense(10, activation="softmax")])
    return lib.Sequential([
        L.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        L.Conv2D(32, (3, 3), activation="relu"), L.MaxPooling2D((2, 2)), L.Dropout(0.25),
        L.Conv2D(64, (3, 3), activation="relu"), L.Conv2D(64, (3, 3), activation="relu"),
        L.MaxPooling2D((2, 2)), L.Dropout(0.25), L.Flatten(),
        L.Dense(256, activation="relu"), L.Dropout(0.5), L.Dense(10, activation="softmax")])


def torch_model(conv):
    if not conv:
        return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 64),
                             nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 4 * 4, 256), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(256, 10))


# ---------------------------------------------------------------------- peers
def hand_loop(conv, x, labels, epochs):
    """What a PyTorch user writes: shuffled index slices, logits + cross-entropy, the epoch's
    loss and accuracy accumulated on the device (what fit reports), read once per epoch."""
    model = torch_model(conv)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if conv else x)
    yt = torch.from_numpy(labels)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        correct, loss_sum = torch.zeros(()), torch.zeros(())
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), BATCH):
            idx = order[i:i + BATCH]
            xb, yb = xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            correct += (logits.argmax(1) == yb).sum()
            loss_sum += loss.detach() * len(idx)
        float(correct), float(loss_sum)
        times.append(time.perf_counter() - start)
    return model, times


def framework_fit(lib, conv, x, y, epochs):
    model = keras_like(lib, conv)
    model.compile(optimizer=lib.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    times = []

    class EpochTimer(lib.callbacks.Callback):
        """Each epoch's wall time inside one ``fit(epochs=N)`` call, as users train (the
        checks fit makes once per call are not counted once per epoch)."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[EpochTimer()])
    return model, times


def timed_predict(fn, repeats=3):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def torch_predict(model, x, conv):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if conv else x)
    model.eval()
    with torch.inference_mode():
        out = [torch.softmax(model(xt[i:i + BATCH]), 1) for i in range(0, len(xt), BATCH)]
    return torch.cat(out).numpy()


def per_call(fn, calls):
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def bench(name, conv, n, epochs, with_keras):
    x, y, labels = load(n, conv)
    rows = {}
    hand_model, t = hand_loop(conv, x, labels, epochs)
    rows["hand loop"] = n / np.mean(t[1:])
    kaffe_model, t = framework_fit(kaffe, conv, x, y, epochs)
    rows["kaffe fit"] = n / np.mean(t[1:])
    keras_model = None
    if with_keras:
        import keras
        keras_model, t = framework_fit(keras, conv, x, y, epochs)
        rows["keras 3 fit"] = n / np.mean(t[1:])

    print(f"\n## {name}: {n} MNIST samples, batch {BATCH}, {epochs - 1} timed epochs")
    print("| peer | samples/s | kaffe / peer |")
    print("|---|---:|---:|")
    for peer, rate in rows.items():
        print(f"| {peer} | {rate:,.0f} | {rows['kaffe fit'] / rate:.2f}x |")

    t_kaffe = timed_predict(lambda: kaffe_model.predict(x, batch_size=BATCH))
    t_torch = timed_predict(lambda: torch_predict(hand_model, x, conv))
    line = (f"predict: kaffe {n / t_kaffe:,.0f}/s, torch inference_mode loop {n / t_torch:,.0f}/s "
            f"-> {t_torch / t_kaffe:.2f}x")
    if keras_model is not None:
        t_keras = timed_predict(lambda: keras_model.predict(x, batch_size=BATCH, verbose=0), 1)
        line += f"; keras 3 {n / t_keras:,.0f}/s"
    print(line)

    xb, yb, lb = x[:BATCH], y[:BATCH], torch.from_numpy(labels[:BATCH])
    calls = 20 if conv else 200
    t_tob = per_call(lambda: kaffe_model.train_on_batch(xb, yb), calls)
    opt = torch.optim.SGD(hand_model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    xbt = torch.from_numpy(xb.transpose(0, 3, 1, 2).copy() if conv else xb)
    hand_model.train()

    def hand_step():
        opt.zero_grad(set_to_none=True)
        logits = hand_model(xbt)
        loss = nn.functional.cross_entropy(logits, lb)
        loss.backward()
        opt.step()
        return float(loss.detach()), float((logits.argmax(1) == lb).float().mean())
    t_hand = per_call(hand_step, calls)
    print(f"train_on_batch: kaffe {t_tob * 1e3:.2f} ms/call, hand step {t_hand * 1e3:.2f} ms "
          f"-> {t_tob / t_hand:.2f}x of one hand-written step")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mlp-samples", type=int, default=60000)
    parser.add_argument("--conv-samples", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=3, help="including the discarded first")
    parser.add_argument("--no-keras", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} threads {torch.get_num_threads()}")
    bench("seed MLP 784-64-64-10", False, args.mlp_samples, args.epochs, not args.no_keras)
    bench("seed VGG-like convnet", True, args.conv_samples, args.epochs, not args.no_keras)


if __name__ == "__main__":
    main()
