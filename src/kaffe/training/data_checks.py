"""Checks on what ``fit`` / ``evaluate`` / ``predict`` receive, made once before any long work:
each error names the input or output, the value and the fix."""
import math
import warnings

import numpy as np
import torch

from kaffe.training.data_adapters import DataError, as_tensor


def check_batch_size(batch_size, method):
    """A positive integer (or None for the default 32)."""
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"{method}() expected batch_size to be a positive integer. "
                         f"Received: batch_size={batch_size!r}")


def to_tensors(arrays, names, dtypes, role, model_name):
    """``arrays`` (one per input/output, in model order) as tensors; string data is refused
    naming the input/output and its dtype."""
    if arrays is None:
        return None
    out = []
    for array, name, dtype in zip(arrays, names, dtypes):
        if array is not None and not isinstance(array, torch.Tensor):
            kind = np.asarray(array).dtype if not isinstance(array, np.ndarray) else array.dtype
            if dtype == "string" and kind.kind in "USaO":
                out.append(np.asarray(array))   # Input(dtype="string"): text stays text
                continue
            if kind.kind in "USa":
                raise DataError(
                    f"Model '{model_name}' {role} '{name}' received {kind} data (text); kaffe "
                    "trains on numbers. Turn text into integer ids first (Tokenizer / "
                    "TextVectorization, or a dict from label to index) and pass those.")
        out.append(None if array is None else as_tensor(array, dtype))
    return out


def warn_nan(tensors, names, role, model_name):
    """Warn once per call (before training) for each float input holding NaN."""
    for tensor, name in zip(tensors, names):
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or \
                tensor.numel() == 0:
            continue
        # One float sum (a few ms for MNIST) is NaN when any entry is; count only then.
        if not torch.isnan(tensor.sum()):
            continue
        bad = int(torch.isnan(tensor).sum())
        if bad:
            warnings.warn(f"Model '{model_name}' {role} '{name}' holds {bad} NaN value(s) of "
                          f"{tensor.numel()}; training on them makes the loss NaN. Fill or "
                          "drop them first (np.nan_to_num, or mask those samples).",
                          RuntimeWarning, stacklevel=4)


def check_sparse_labels(model, ys):
    """Integer labels of a sparse cross-entropy must be in ``[0, classes)``."""
    compiled = model._compiled_loss
    outputs = getattr(model, "outputs", None)
    if compiled is None or not outputs or ys is None:
        return
    for i, (y, sparse) in enumerate(zip(ys, compiled.sparse)):
        classes = outputs[i].shape[-1] if i < len(outputs) else None
        if not sparse or y is None or classes is None or y.numel() == 0:
            continue
        ignore = getattr(compiled.losses[i], "fn_kwargs", {}).get("ignore_class")
        labels = y if ignore is None else y[y != ignore]
        if labels.numel() == 0:
            continue
        high, low = labels.max().item(), labels.min().item()
        bad = high if high >= classes else low if low < 0 else None
        if bad is not None and not (isinstance(bad, float) and math.isnan(bad)):
            raise DataError(sparse_label_message(model, i, bad, classes))


def sparse_label_message(model, index, label, classes):
    name = model.output_names[index]
    label = int(label) if float(label).is_integer() else label
    return (f"Output '{name}' of model '{model.name}' has {classes} classes (labels 0 to "
            f"{classes - 1}), but its sparse labels include {label}. Give the output "
            f"{int(label) + 1 if label >= classes else classes} units, or renumber the labels "
            "to start at 0.")
