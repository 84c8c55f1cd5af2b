"""``CSVLogger``: one CSV row per epoch, byte for byte what Keras writes."""
import collections.abc
import csv
import os

import numpy as np

from kaffe.callbacks.base import Callback


class CSVLogger(Callback):
    """Stream each epoch's logs to a CSV file.

    The header is ``epoch`` then the first epoch's keys sorted; if no validation key is
    present, ``val_<key>`` columns are added too (filled with ``NA``), so a later run with
    validation appends to the same columns, as Keras does. Rows use the ``excel`` dialect
    (``\\r\\n`` line ends) with ``separator`` between fields; ``epoch`` counts from 0.

    Args:
        filename: the CSV file, e.g. ``"run/log.csv"``.
        separator: field separator (default ``","``).
        append: append to an existing file (its header is kept) instead of overwriting it.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self.writer = None
        self.csv_file = None
        self.append_header = True

    def on_train_begin(self, logs=None):
        from kaffe.distribute.environment import is_rank_zero
        if not is_rank_zero():  # data-parallel: rank 0 writes the one file
            self.csv_file = None
            return
        self.append_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, "r", newline="") as f:
                self.append_header = not f.readline()
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        if self.csv_file is None:
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self.writer is None:
            class Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, _cell(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _cell(value):
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not \
            (isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value
