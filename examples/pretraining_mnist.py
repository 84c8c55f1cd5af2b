"""Pre-training and fine-tuning (Hinton & Salakhutdinov 2006, as the seed describes it) with
``kaffe.pretraining.layerwise_pretrain``: a 784-500-250-10 net, its two hidden layers first
trained one after the other as denoising autoencoders on unlabelled digits, then the whole net
fine-tuned on a few labelled ones; the same net from random initialisation is fine-tuned the
same way for comparison. Sigmoid hidden units by default (``--activation relu`` for ReLU, where
pretraining does not help: see benchmarks/README.md). Prints both test accuracies; the figure shows test digits and their
reconstructions by the first pretrained autoencoder.

Quick by default (10,000 unlabelled images, 2 pretraining epochs per layer, 1,000 labels);
``--full``: all 60,000 unlabelled images and 10 epochs per layer. The careful version, over
3 seeds, is ``benchmarks/pretraining.py``.
"""
import os
import time

import numpy as np
import torch
from _autoencoder_common import load_mnist, parser, save_rows

import kaffe
from kaffe.datasets import mnist
from kaffe.layers import Dense
from kaffe.pretraining import layerwise_pretrain
from kaffe.utils import to_categorical


def classifier(activation):
    return kaffe.Sequential([Dense(500, activation=activation, input_shape=(784,)),
                             Dense(250, activation=activation),
                             Dense(10, activation="softmax")])


def fine_tune(model, x, y, x_test, y_test, epochs, verbose):
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, shuffle=True, verbose=verbose)
    return model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1]


def main(argv=None):
    p = parser(__doc__, epochs=2, samples=10000, full_epochs=10)
    p.add_argument("--labels", type=int, default=1000, help="labelled training images")
    p.add_argument("--finetune-epochs", type=int, default=30)
    p.add_argument("--noise", type=float, default=0.25, help="masking noise of the autoencoders")
    p.add_argument("--activation", default="sigmoid",
                   help="hidden units (sigmoid, as in 2006, is where pretraining helps; see "
                        "benchmarks/README.md for relu)")
    args = p.parse_args(argv)
    epochs, samples = (args.full_epochs, 0) if args.full else (args.epochs, args.samples)
    torch.manual_seed(0)
    x_unlabelled, _ = load_mnist(samples)
    (_, y_train), (_, y_test) = mnist.load_data()
    x_all, x_test = load_mnist()
    pick = np.random.default_rng(0).permutation(len(x_all))[:args.labels]
    x_labelled, y_labelled = x_all[pick], to_categorical(y_train[pick], 10)
    y_test = to_categorical(y_test, 10)
    print(f"{len(x_unlabelled)} unlabelled, {len(x_labelled)} labelled, {len(x_test)} test images")

    model = classifier(args.activation)
    initial = model.get_weights()
    start = time.perf_counter()
    histories = layerwise_pretrain(model.layers[:-1], x_unlabelled, epochs=epochs,
                                   batch_size=256, noise=args.noise, noise_type="masking",
                                   verbose=args.verbose)
    print(f"pretrained in {time.perf_counter() - start:.1f} s; reconstruction losses "
          + ", ".join(f"{h.history['loss'][-1]:.4f}" for h in histories))
    reconstructions = histories[0].model.predict(x_test[:10], verbose=0)
    save_rows(os.path.join(args.out_dir, "pretraining_mnist.png"), [x_test, reconstructions])

    pretrained_acc = fine_tune(model, x_labelled, y_labelled, x_test, y_test,
                               args.finetune_epochs, 0)
    baseline = classifier(args.activation)
    baseline.set_weights(initial)  # the very weights pretraining started from
    random_acc = fine_tune(baseline, x_labelled, y_labelled, x_test, y_test,
                           args.finetune_epochs, 0)
    print(f"test accuracy with {len(x_labelled)} labels: random init {random_acc:.4f}, "
          f"layer-wise pretrained {pretrained_acc:.4f}")
    return random_acc, pretrained_acc


if __name__ == "__main__":
    main()
