"""``keras.datasets.cifar100``: 50,000 + 10,000 32x32 colour images in 100 fine / 20 coarse
classes, read from the Keras cache (see :mod:`kaffe.datasets.cifar`; kaffe never downloads)."""
import os

from kaffe.datasets import cifar

FOLDER = "cifar-100-python"
LABEL_MODES = ("fine", "coarse")


def load_data(label_mode="fine"):
    """``(x_train, y_train), (x_test, y_test)`` as Keras; ``label_mode`` ``"fine"`` (100
    classes) or ``"coarse"`` (20 super-classes)."""
    if label_mode not in LABEL_MODES:
        raise ValueError(f"cifar100.load_data expected label_mode 'fine' or 'coarse'. "
                         f"Received: label_mode={label_mode!r}")
    folder = cifar.batches_folder("cifar100", FOLDER)
    key = f"{label_mode}_labels"
    x_train, y_train = cifar.load_batch(os.path.join(folder, "train"), label_key=key)
    x_test, y_test = cifar.load_batch(os.path.join(folder, "test"), label_key=key)
    return cifar.finish(x_train, y_train, x_test, y_test)
