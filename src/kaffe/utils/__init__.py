"""``keras.utils`` counterparts: one-hot encoding, normalisation, batch datasets, ``get_file``,
model and training plots, seeding, ``*_dataset_from_*``, ``pad_sequences``, ``Progbar``, image
file helpers, ``clone_model``.

The engine imports this package early (``Sequence``), so the names that need the engine, the
callbacks or Pillow are loaded on first use (``LAZY``).
"""
import importlib

from kaffe.utils.file_utils import get_file
from kaffe.utils.np_utils import normalize, to_categorical
from kaffe.utils.plotting import model_to_dot, plot_history, plot_model
from kaffe.utils.random import set_random_seed
from kaffe.utils.sequence import PyDataset, Sequence

#: name -> module that defines it, imported when the name is first asked for.
LAZY = {
    "clone_model": "kaffe.utils.cloning",
    "image_dataset_from_directory": "kaffe.utils.directory_datasets",
    "text_dataset_from_directory": "kaffe.utils.directory_datasets",
    "timeseries_dataset_from_array": "kaffe.utils.timeseries",
    "Progbar": "kaffe.utils.generic_utils",
    "pad_sequences": "kaffe.preprocessing.sequence",
    "load_img": "kaffe.preprocessing.image.image_io",
    "img_to_array": "kaffe.preprocessing.image.image_io",
    "array_to_img": "kaffe.preprocessing.image.image_io",
    "save_img": "kaffe.preprocessing.image.image_io",
}

__all__ = ["to_categorical", "normalize", "Sequence", "PyDataset", "get_file", "plot_model",
           "model_to_dot", "plot_history", "set_random_seed", *LAZY]


def __getattr__(name):
    if name in LAZY:
        value = getattr(importlib.import_module(LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kaffe.utils' has no attribute {name!r}")
