"""Caffe's ``tools/extra/parse_log.py``: a training log as train and test tables, and a plot.

A row is one iteration at which the log shows ``Train net output`` (train table) or ``Test net
output`` (test table) lines: ``NumIters``, ``Seconds`` (since the ``Solving`` line),
``LearningRate`` (the last ``lr = `` seen; the first row takes the second row's, as Caffe's
script does) and one column per output name. Reads glog's classic ``I0210 13:39:22.381027``
stamps and glog 0.6's ``I20260210 13:39:22.381027`` alike, so kaffe's and Caffe's logs parse.
"""
import collections
import csv
import datetime
import os
import re

from kaffe.saving.keras_file import atomic_write

__all__ = ["parse_log", "write_csv", "save_csv_files", "plot_log"]

_ITERATION = re.compile(r"Iteration (\d+)")
_TRAIN = re.compile(r"Train net output #(\d+): (\S+) = ([\.\deE+-]+)")
_TEST = re.compile(r"Test net output #(\d+): (\S+) = ([\.\deE+-]+)")
_LR = re.compile(r"lr = ([-+]?[0-9]*\.?[0-9]+([eE]?[-+]?[0-9]+)?)")
_STAMP = re.compile(r"^[IWEF](\d{4}|\d{8}) (\d\d):(\d\d):(\d\d)\.(\d{1,6})")


def _timestamp(line, year):
    match = _STAMP.match(line.strip())
    if not match:
        return None
    date, hour, minute, second, micro = match.groups()
    if len(date) == 8:
        year, date = int(date[:4]), date[4:]
    return datetime.datetime(year, int(date[:2]), int(date[2:]), int(hour), int(minute),
                             int(second), int(micro.ljust(6, "0")))


def parse_log(path):
    """``(train_rows, test_rows)``: lists of ordered dicts (see the module docstring)."""
    year = datetime.datetime.fromtimestamp(os.path.getmtime(path)).year
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    start = next((_timestamp(line, year) for line in lines if "Solving" in line), None)
    iteration, lr = None, float("nan")
    tables = {"train": collections.OrderedDict(), "test": collections.OrderedDict()}
    last = None
    for line in lines:
        match = _ITERATION.search(line)
        if match:
            iteration = int(match.group(1))
        if iteration is None:
            continue
        stamp = _timestamp(line, year)
        if stamp is None:
            continue
        if last is not None and stamp < last - datetime.timedelta(days=300):
            stamp = stamp.replace(year=stamp.year + 1)
        last = stamp
        seconds = (stamp - (start or stamp)).total_seconds()
        match = _LR.search(line)
        if match:
            lr = float(match.group(1))
        for kind, regex in (("train", _TRAIN), ("test", _TEST)):
            match = regex.search(line)
            if match:
                rows = tables[kind]
                if iteration not in rows or match.group(2) in rows[iteration]:
                    key = iteration if iteration not in rows else (iteration, len(rows))
                    rows[key] = collections.OrderedDict(
                        [("NumIters", iteration), ("Seconds", seconds), ("LearningRate", lr)])
                    current = rows[key]
                else:
                    current = rows[iteration]
                current[match.group(2)] = float(match.group(3))
    train, test = list(tables["train"].values()), list(tables["test"].values())
    for rows in (train, test):
        if len(rows) > 1:
            rows[0]["LearningRate"] = rows[1]["LearningRate"]
    return train, test


def write_csv(path, rows, delimiter=","):
    """Write ``rows`` as CSV (header from the first row), atomically; nothing for no rows."""
    if not rows:
        return None
    fields = list(rows[0])
    for row in rows[1:]:
        fields += [k for k in row if k not in fields]

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, delimiter=delimiter)
            writer.writeheader()
            writer.writerows(rows)
    atomic_write(path, write)
    return path


def save_csv_files(log_path, out_dir, train, test, delimiter=","):
    """``<out_dir>/<log name>.train`` and ``.test``, as Caffe's script names them."""
    base = os.path.join(out_dir, os.path.basename(log_path))
    return (write_csv(base + ".train", train, delimiter),
            write_csv(base + ".test", test, delimiter))


def plot_log(train, test, png_path, title=None):
    """A PNG of the train outputs and test outputs against the iteration (matplotlib)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, rows, label in ((axes[0], train, "train"), (axes[1], test, "test")):
        names = [k for k in (rows[0] if rows else {})
                 if k not in ("NumIters", "Seconds", "LearningRate")]
        for name in names:
            points = [(r["NumIters"], r[name]) for r in rows if name in r]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=name)
        ax.set_xlabel("iteration")
        ax.set_title(f"{label} net outputs")
        if names:
            ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, format="png", dpi=90)
    try:
        atomic_write(png_path, write)
    finally:
        plt.close(fig)
    return png_path
