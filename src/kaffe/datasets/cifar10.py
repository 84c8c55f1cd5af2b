"""``keras.datasets.cifar10``: 50,000 + 10,000 32x32 colour images in 10 classes, read from the
Keras cache (see :mod:`kaffe.datasets.cifar`; kaffe never downloads)."""
import os

import numpy as np

from kaffe.datasets import cifar

FOLDER = "cifar-10-batches-py"


def load_data():
    """``(x_train, y_train), (x_test, y_test)`` as Keras: ``uint8`` images ``(N, 32, 32, 3)``
    (channels-first under ``image_data_format() == "channels_first"``), labels ``(N, 1)``."""
    folder = cifar.batches_folder("cifar10", FOLDER)
    parts = [cifar.load_batch(os.path.join(folder, f"data_batch_{i}"),
                              label_key="labels") for i in range(1, 6)]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = [label for p in parts for label in p[1]]
    x_test, y_test = cifar.load_batch(os.path.join(folder, "test_batch"))
    return cifar.finish(x_train, y_train, x_test, y_test)
