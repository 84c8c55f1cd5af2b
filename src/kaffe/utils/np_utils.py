"""NumPy helpers from ``keras.utils``: ``to_categorical`` and ``normalize``."""
import numpy as np
import torch


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels, as ``keras.utils.to_categorical``.

    A trailing dimension of size 1 is dropped first, so labels of shape ``(n, 1)`` give ``(n,
    num_classes)``; in general ``(..., 1)`` or ``(...)`` gives ``(..., num_classes)``.

    Args:
        y: integer labels in ``[0, num_classes)``: array-like or ``torch.Tensor``.
        num_classes: number of classes; ``None`` uses ``max(y) + 1``.
        dtype: dtype of the result (Keras 2's default ``"float32"``; Keras 3 returns float64).

    Returns:
        A numpy array, or a ``torch.Tensor`` of the matching torch dtype when ``y`` is a tensor.

    >>> to_categorical([0, 2, 1], num_classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    if isinstance(y, torch.Tensor):
        out = to_categorical(y.detach().cpu().numpy(), num_classes, dtype)
        return torch.from_numpy(out).to(y.device)
    labels = np.asarray(y)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        as_int = labels.astype("int64")
        if not np.array_equal(as_int, labels):
            raise ValueError("to_categorical expected integer class labels, received non-integer "
                             f"values of dtype {labels.dtype} (e.g. {labels.flat[0]!r})")
        labels = as_int
    labels = labels.astype("int64")
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    labels = labels.reshape(-1)
    if num_classes is None or num_classes == 0:  # Keras treats 0 like None
        if labels.size == 0:
            raise ValueError("to_categorical cannot infer num_classes from empty labels; "
                             "pass num_classes")
        num_classes = int(labels.max()) + 1
    num_classes = int(num_classes)
    if num_classes < 0:
        raise ValueError("to_categorical expected num_classes to be a positive integer or None. "
                         f"Received: num_classes={num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"to_categorical expected labels in [0, {num_classes}), received label "
                         f"{bad}; pass a larger num_classes or fix the labels")
    out = np.zeros((labels.size, num_classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out.reshape(shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Divide ``x`` by its ``order``-norm along ``axis``, as ``keras.utils.normalize``.

    Zero-norm slices are left as zeros. Returns a new float array (a tensor for tensor input).

    >>> normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    if isinstance(x, torch.Tensor):
        norm = torch.linalg.vector_norm(x, ord=order, dim=axis, keepdim=True)
        return x / torch.where(norm == 0, torch.ones_like(norm), norm)
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis if axis is not None else -1)
