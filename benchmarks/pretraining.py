"""Does greedy layer-wise pretraining help when labels are scarce? (issue 8's experiment)

MNIST, a 784-500-250-10 net (ReLU hidden layers, softmax output). For each seed:

1. draw the net's initial weights;
2. pretrain a copy of it with ``kaffe.pretraining.layerwise_pretrain``: the two hidden layers
   one after the other as denoising autoencoders (masking noise, Vincent et al. 2010) on all
   60,000 training images, labels unused;
3. for each label budget, fine-tune the random-init net and the pretrained net the same way
   (Adam 1e-3, batch 32, a fixed number of epochs, all layers trained; no validation set, since
   with 1,000 labels there is none to spare) on the same labelled subset;
4. score both on the 10,000 test images.

Prints test accuracy mean +- sample standard deviation (and min-max) over the seeds, per label
budget and initialisation, as a Markdown table.

    KERAS_BACKEND=torch python benchmarks/pretraining.py [--seeds 3] [--pretrain-epochs 5]
"""
import argparse
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import kaffe  # noqa: E402
from kaffe.datasets import mnist  # noqa: E402
from kaffe.layers import Dense  # noqa: E402
from kaffe.pretraining import layerwise_pretrain  # noqa: E402
from kaffe.utils import to_categorical  # noqa: E402

#: label budget name -> function(labels, rng) -> indices of the labelled training images
BUDGETS = {
    "1,000 random": lambda y, rng: rng.permutation(len(y))[:1000],
    "100 per class": lambda y, rng: np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:100] for c in range(10)]),
    "10 per class": lambda y, rng: np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:10] for c in range(10)]),
}


def net(activation):
    return kaffe.Sequential([Dense(500, activation=activation, input_shape=(784,)),
                             Dense(250, activation=activation),
                             Dense(10, activation="softmax")])


def fine_tune(model, weights, x, y, x_test, y_test, epochs):
    model.set_weights(weights)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, shuffle=True, verbose=0)
    return model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1]


def run_seed(seed, args, data):
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    model = net(args.activation)
    initial = model.get_weights()
    start = time.perf_counter()
    histories = layerwise_pretrain(model.layers[:-1], x_train[:args.unlabelled or None],
                                   epochs=args.pretrain_epochs, batch_size=256,
                                   noise=args.noise, noise_type="masking", verbose=0)
    pretrain_s = time.perf_counter() - start
    pretrained = model.get_weights()
    print(f"seed {seed}: pretrained in {pretrain_s:.0f} s, reconstruction losses "
          + ", ".join(f"{h.history['loss'][0]:.4f} -> {h.history['loss'][-1]:.4f}"
                      for h in histories), flush=True)
    results = {}
    for budget, pick in BUDGETS.items():
        idx = pick(y_train, np.random.default_rng(seed))
        x, y = x_train[idx], to_categorical(y_train[idx], 10)
        for init, weights in (("random init", initial), ("layer-wise pretrained", pretrained)):
            torch.manual_seed(seed + 1000)  # same batch order for both inits
            acc = fine_tune(net(args.activation), weights, x, y, x_test, y_test,
                            args.finetune_epochs)
            results[(budget, init)] = acc
            print(f"  {budget:>14} labels, {init:>21}: test accuracy {acc:.4f}", flush=True)
    return results, pretrain_s


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--pretrain-epochs", type=int, default=5, help="per layer")
    p.add_argument("--finetune-epochs", type=int, default=30)
    p.add_argument("--noise", type=float, default=0.25, help="masking noise fraction")
    p.add_argument("--activation", default="relu", help="hidden units: relu or sigmoid")
    p.add_argument("--unlabelled", type=int, default=0, help="0 = all 60,000")
    args = p.parse_args()
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train = x_train.reshape(-1, 784).astype("float32") / 255.0
    x_test = x_test.reshape(-1, 784).astype("float32") / 255.0
    data = (x_train, y_train, x_test, to_categorical(y_test, 10))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}")
    print(f"784-500-250-10 {args.activation}; {args.unlabelled or len(x_train)} unlabelled "
          f"images, {args.pretrain_epochs} DAE epochs per layer (masking {args.noise}); "
          f"fine-tuning: Adam, batch 32, {args.finetune_epochs} epochs; {len(x_test)} test images")
    runs, times = [], []
    for seed in range(args.seeds):
        results, seconds = run_seed(seed, args, data)
        runs.append(results)
        times.append(seconds)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; pretraining took "
          f"{np.mean(times):.0f} s per seed\n")
    print(f"| labels | init | test accuracy, mean +- std over {args.seeds} seeds | min - max |")
    print("|---|---|---:|---:|")
    for key in runs[0]:
        accs = np.array([r[key] for r in runs]) * 100
        spread = accs.std(ddof=1) if len(accs) > 1 else 0.0
        print(f"| {key[0]} | {key[1]} | {accs.mean():.2f}% +- {spread:.2f} | "
              f"{accs.min():.2f} - {accs.max():.2f} |")
    for budget in BUDGETS:
        gain = np.array([r[(budget, 'layer-wise pretrained')] - r[(budget, 'random init')]
                         for r in runs]) * 100
        print(f"{budget}: pretrained - random = {gain.mean():+.2f} points "
              f"(per seed: {', '.join(f'{g:+.2f}' for g in gain)})")


if __name__ == "__main__":
    main()
