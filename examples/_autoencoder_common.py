"""What the autoencoder examples share: MNIST as the seed prepares it, the seed's figure of
originals vs reconstructions (saved as PNG instead of ``plt.show()``), and common flags.

MNIST comes from ``kaffe.datasets.mnist.load_data()``: the real IDX files in
``../shared/data/mnist`` (or ``$KAFFE_DATA_HOME/mnist``), else the sample bundled with kaffe.
"""
import argparse
import os
import tempfile

import numpy as np

from kaffe.datasets import mnist


def parser(description, epochs, samples, full_epochs):
    """Flags every example takes; ``--full`` switches to the seed's own settings."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--samples", type=int, default=samples,
                   help="training images used (0 = all); test images are capped at 10x fewer")
    p.add_argument("--full", action="store_true",
                   help=f"the seed's settings: all 60,000 images, {full_epochs} epochs")
    p.add_argument("--out-dir", default="runs", help="where the PNG (and logs) are written")
    p.add_argument("--verbose", type=int, default=2)
    p.set_defaults(full_epochs=full_epochs)
    return p


def settings(args):
    """``(epochs, train samples, test samples)`` after ``--full``."""
    if args.full:
        return args.full_epochs, 0, 0
    samples = max(args.samples, 0)
    return args.epochs, samples, max(samples // 10, 100) if samples else 0


def load_mnist(samples=0, test_samples=0, images=False):
    """``(x_train, x_test)`` as float32 in [0, 1]: flat ``(n, 784)`` or ``(n, 28, 28, 1)``."""
    (x_train, _), (x_test, _) = mnist.load_data()
    if samples:
        x_train = x_train[:samples]
    if test_samples:
        x_test = x_test[:test_samples]
    shape = (28, 28, 1) if images else (784,)
    x_train = x_train.astype("float32").reshape((len(x_train),) + shape) / 255.0
    x_test = x_test.astype("float32").reshape((len(x_test),) + shape) / 255.0
    return x_train, x_test


def save_rows(path, rows, n=10):
    """The seed's figure (``figsize=(20, 2 * len(rows))``, gray 28x28 digits, no axes), one row
    per array in ``rows``, saved as a PNG of 2000 x 200*len(rows) pixels. Written to a temporary
    file and renamed, so a crash never leaves half a picture."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(20, 2 * len(rows)))
    for r, images in enumerate(rows):
        for i in range(min(n, len(images))):
            ax = fig.add_subplot(len(rows), n, r * n + i + 1)
            ax.imshow(np.asarray(images[i]).reshape(28, 28), cmap="gray")
            ax.get_xaxis().set_visible(False)
            ax.get_yaxis().set_visible(False)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
    os.close(handle)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"figure: {path}")
    return path
