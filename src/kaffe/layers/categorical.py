"""Categorical preprocessing layers (Keras 3's): ``CategoryEncoding`` (integer ids to one-hot,
multi-hot or count vectors) and ``Discretization`` (numbers to bucket ids, with boundaries
given or learned by ``adapt`` from quantiles)."""
import numpy as np
import torch

from kaffe.engine.layer import Layer

ENCODINGS = ("int", "one_hot", "multi_hot", "count")


def encode_categorical(ids, output_mode, depth, count_weights=None):
    """Keras's ``encode_categorical_inputs``: int ids -> float encodings over ``depth``.

    one_hot adds an axis (replacing a trailing axis of size 1); multi_hot and count reduce
    axis 1 (axis 0 of a 1D input) to presence flags or counts. Ids outside [0, depth) encode to
    zeros, as Keras's torch backend does."""
    if output_mode == "int":
        return ids
    ids = ids.long()
    if ids.dim() == 0:
        ids = ids.unsqueeze(-1)
    if output_mode == "one_hot" and ids.dim() > 1 and ids.shape[-1] == 1:
        ids = ids.squeeze(-1)
    one_hot = (ids.unsqueeze(-1) == torch.arange(depth, device=ids.device)).to(torch.float32)
    if output_mode == "one_hot":
        return one_hot
    axis = 1 if ids.dim() > 1 else 0
    if output_mode == "multi_hot":
        return one_hot.amax(dim=axis)
    if count_weights is not None:
        one_hot = one_hot * torch.as_tensor(count_weights, dtype=torch.float32).unsqueeze(-1)
    return one_hot.sum(dim=axis)


def encoded_shape(input_shape, output_mode, depth):
    """Output shape of ``encode_categorical`` for ``input_shape`` (batch axis included)."""
    input_shape = tuple(input_shape)
    if output_mode == "int":
        return input_shape
    if not input_shape:
        return (depth,)
    if output_mode == "one_hot":
        if input_shape[-1] == 1 and len(input_shape) > 1:
            return input_shape[:-1] + (depth,)
        return input_shape + (depth,)
    if len(input_shape) >= 2:
        return (input_shape[0],) + input_shape[2:] + (depth,)
    return (depth,)


def _check_mode(mode, layer, allowed=ENCODINGS):
    if mode not in allowed:
        raise ValueError(f"{layer}: output_mode must be one of {allowed}. Received: "
                         f"output_mode={mode!r}")


class CategoryEncoding(Layer):
    """Integer ids in ``[0, num_tokens)`` to ``multi_hot`` (default), ``one_hot`` or ``count``
    vectors; ``call(inputs, count_weights=w)`` weights the counts."""

    input_dtype = "int64"

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        output_mode = "multi_hot" if output_mode == "binary" else output_mode
        _check_mode(output_mode, "CategoryEncoding", ENCODINGS[1:])
        if num_tokens is None or int(num_tokens) < 1:
            raise ValueError("CategoryEncoding needs num_tokens >= 1 (the number of ids). "
                             f"Received: num_tokens={num_tokens!r}")
        if sparse:
            raise ValueError("CategoryEncoding: sparse=True is not supported by kaffe (dense "
                             "torch tensors only). Received: sparse=True")
        self.num_tokens, self.output_mode, self.sparse = int(num_tokens), output_mode, False

    def call(self, inputs, count_weights=None):
        if count_weights is not None and self.output_mode != "count":
            raise ValueError("CategoryEncoding: count_weights is only used with "
                             f"output_mode='count'. Received output_mode={self.output_mode!r}")
        return encode_categorical(torch.as_tensor(inputs), self.output_mode, self.num_tokens,
                                  count_weights)

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens,
                "output_mode": self.output_mode, "sparse": self.sparse}


# ---------------------------------------------------------------------------------- Discretization
def _summarize(values, epsilon):
    """A weighted quantile sketch of ``values``: about 1/epsilon sorted samples, each standing
    for ``step`` values (Keras's ``summarize``)."""
    values = np.sort(np.reshape(values, [-1]))
    step = max(values.size / (1.0 / epsilon), 1)
    samples = values[int(step - 1)::int(step)]
    return np.stack([samples, np.ones_like(samples) * step])


def _compress(summary, epsilon):
    """Re-sample a sketch at quantiles epsilon, 2 epsilon, ... 1 by interpolation."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum = summary[1].cumsum()
    cum_percents = cum / cum[-1]
    new_bins = np.interp(percents, cum_percents, summary[0])
    new_cum = np.interp(percents, cum_percents, cum)
    new_weights = new_cum - np.concatenate((np.array([0]), new_cum[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")


def _merge(a, b, epsilon):
    merged = np.concatenate((a, b), axis=1)
    return _compress(np.take(merged, np.argsort(merged[0]), axis=1), epsilon)


class Discretization(Layer):
    """Bucket ids of numbers: ``bin_boundaries=[0., 1.]`` maps ``x < 0`` to 0, ``0 <= x < 1``
    to 1, ``x >= 1`` to 2. With ``num_bins`` instead, ``adapt(data)`` sets the boundaries at
    the data's quantiles (an ``epsilon``-accurate sketch, Keras's algorithm)."""

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
                 sparse=False, **kwargs):
        super().__init__(**kwargs)
        _check_mode(output_mode, "Discretization")
        if sparse:
            raise ValueError("Discretization: sparse=True is not supported by kaffe.")
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"Discretization: num_bins must be >= 0. Received: num_bins={num_bins}")
        if (num_bins is None) == (bin_boundaries is None):
            raise ValueError("Discretization needs exactly one of bin_boundaries or num_bins. "
                             f"Received: bin_boundaries={bin_boundaries!r}, num_bins={num_bins!r}")
        self.bin_boundaries = None if bin_boundaries is None else list(bin_boundaries)
        self.num_bins, self.epsilon, self.output_mode, self.sparse = (
            num_bins, float(epsilon), output_mode, False)
        self.summary = np.array([[], []], dtype="float32")

    def adapt(self, data, steps=None):
        """Learn ``num_bins - 1`` boundaries from an array or an iterable of batches."""
        if self.num_bins is None:
            raise ValueError("Cannot adapt a Discretization layer created with bin_boundaries; "
                             "create it with num_bins instead.")
        self.summary = np.array([[], []], dtype="float32")
        if isinstance(data, (np.ndarray, torch.Tensor, list)) or not hasattr(data, "__iter__"):
            batches = [data]
        else:
            batches = data
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            batch = batch[0] if isinstance(batch, tuple) else batch
            if isinstance(batch, torch.Tensor):
                batch = batch.detach().cpu().numpy()
            self.summary = _merge(_summarize(np.asarray(batch, "float32"), self.epsilon),
                                  self.summary, self.epsilon)
        self.bin_boundaries = _compress(self.summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def _depth(self):
        return len(self.bin_boundaries) + 1 if self.bin_boundaries is not None else self.num_bins

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError(f"Discretization '{self.name}' has no bin boundaries: pass "
                             "bin_boundaries or call adapt(data) before using it.")
        x = torch.as_tensor(inputs)
        boundaries = torch.as_tensor(self.bin_boundaries, dtype=x.dtype if x.is_floating_point()
                                     else torch.float32, device=x.device)
        ids = torch.bucketize(x.to(boundaries.dtype), boundaries, right=True)
        return encode_categorical(ids, self.output_mode, self._depth())

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, self.output_mode, self._depth())

    def compute_output_dtype(self, inputs):
        return "int64" if self.output_mode == "int" else "float32"

    def get_config(self):
        base = super().get_config()  # Keras's Discretization takes no 'trainable'
        base = {k: base[k] for k in ("name", "dtype") if k in base}
        return {**base, "bin_boundaries": self.bin_boundaries,
                "num_bins": self.num_bins, "epsilon": self.epsilon,
                "output_mode": self.output_mode, "sparse": self.sparse}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            boundaries = config.pop("bin_boundaries")
            layer = cls(**config)
            layer.bin_boundaries = boundaries
            return layer
        return cls(**config)
