"""Make src/kaffe/data/mnist_sample.npz: the first 6,000 train and 1,000 test MNIST digits.

The sample is what ``kaffe.datasets.mnist.load_data()`` returns when the full set cannot be found.
It is cut from the real MNIST IDX files (default: ../shared/data/mnist next to the repository) and
saved as a compressed Keras-style npz (keys x_train, y_train, x_test, y_test).

    python tools/make_mnist_sample.py [--source DIR] [--out FILE]
"""
import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "src"))

from kaffe.datasets import _idx  # noqa: E402

N_TRAIN, N_TEST = 6000, 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=os.path.join(REPO, "..", "shared", "data", "mnist"),
                        help="folder with the four MNIST IDX files")
    parser.add_argument("--out",
                        default=os.path.join(REPO, "src", "kaffe", "data", "mnist_sample.npz"))
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = _idx.load_split_folder(os.path.abspath(args.source))
    if x_train.shape != (60000, 28, 28) or x_test.shape != (10000, 28, 28):
        raise SystemExit(f"{args.source} does not hold the full MNIST set: got train "
                         f"{x_train.shape}, test {x_test.shape}")
    np.savez_compressed(args.out, x_train=x_train[:N_TRAIN], y_train=y_train[:N_TRAIN],
                        x_test=x_test[:N_TEST], y_test=y_test[:N_TEST])
    print(f"wrote {args.out}: {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
