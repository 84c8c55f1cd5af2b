"""``keras.utils`` counterparts: one-hot encoding, normalisation, batch datasets, ``get_file``,
model and training plots, seeding."""
from kaffe.utils.file_utils import get_file
from kaffe.utils.np_utils import normalize, to_categorical
from kaffe.utils.plotting import model_to_dot, plot_history, plot_model
from kaffe.utils.random import set_random_seed
from kaffe.utils.sequence import PyDataset, Sequence

__all__ = ["to_categorical", "normalize", "Sequence", "PyDataset", "get_file", "plot_model",
           "model_to_dot", "plot_history", "set_random_seed"]
