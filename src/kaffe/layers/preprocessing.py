"""Preprocessing layers that live inside a model: ``Rescaling`` and ``Normalization``."""
import math

import numpy as np
import torch

from kaffe import config
from kaffe.engine.layer import Layer


def _plain(value):
    """A scale/offset/mean as JSON-friendly Python data (arrays become nested lists)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Rescaling(Layer):
    """``inputs * scale + offset``, in float32 (integer images are cast first):
    ``Rescaling(1 / 255)`` maps [0, 255] to [0, 1], ``Rescaling(1 / 127.5, offset=-1)`` to [-1, 1].

    ``scale`` and ``offset`` may be per-channel sequences; under the channels_first image data
    format a per-channel ``scale`` is applied on axis -3 (as Keras does; ``offset`` always
    broadcasts from the last axis).
    """

    supports_masking = True

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset
        self.register_buffer("_scale", torch.as_tensor(np.asarray(scale, np.float32)),
                             persistent=False)
        self.register_buffer("_offset", torch.as_tensor(np.asarray(offset, np.float32)),
                             persistent=False)

    def call(self, inputs):
        x = inputs if torch.is_floating_point(inputs) else inputs.to(torch.float32)
        scale = self._scale
        if scale.dim() and config.image_data_format() == "channels_first":
            scale = scale.reshape(tuple(scale.shape) + (1,) * (3 - scale.dim()))
        return x * scale.to(x.dtype) + self._offset.to(x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": _plain(self.scale),
                "offset": _plain(self.offset)}


class Normalization(Layer):
    """``(inputs - mean) / max(sqrt(variance), epsilon)`` per feature (``invert=True``: the
    inverse, ``mean + inputs * max(sqrt(variance), epsilon)``).

    ``axis`` lists the axes that keep their own statistics (default -1: one mean per feature;
    ``None``: one scalar mean); the others are averaged over. The statistics are either given
    (``mean``/``variance``, broadcast like Keras: then the layer has no weights) or learned by
    ``adapt(data)`` before training. Adapted statistics are the non-trainable weights ``mean``,
    ``variance`` (biased) and ``count`` (unused, 0, kept for Keras's weight list).
    """

    supports_masking = True

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, int):
            axis = (axis,)
        self.axis = tuple(axis)
        if (mean is None) != (variance is None):
            raise ValueError("Normalization needs both mean and variance, or neither (then call "
                             f"adapt). Received: mean={mean!r}, variance={variance!r}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError("Normalization mean and variance must have the same shape. "
                                 f"Received shapes {np.shape(mean)} and {np.shape(variance)}.")
            if np.ndim(mean) > len(self.axis):
                raise ValueError(f"Normalization mean has rank {np.ndim(mean)}, more than the "
                                 f"{len(self.axis)} kept axes axis={self.axis}.")
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        rank = len(input_shape)
        if any(not -rank <= a < rank for a in self.axis):
            raise ValueError(f"Normalization '{self.name}': axis {self.axis} is out of range for "
                             f"input shape {tuple(input_shape)}.")
        self._keep = tuple(sorted(a % rank for a in self.axis))
        if any(input_shape[a] is None for a in self._keep):
            raise ValueError(f"Normalization '{self.name}' needs the kept axes {self.axis} of its "
                             f"input to be known. Received input shape {tuple(input_shape)}.")
        self._build_shape = tuple(input_shape)
        self._reduce = tuple(d for d in range(rank) if d not in self._keep)
        self._broadcast = [input_shape[d] if d in self._keep else 1 for d in range(rank)]
        stats_shape = tuple(input_shape[d] for d in self._keep)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight("mean", stats_shape, "zeros", trainable=False)
            self.adapt_variance = self.add_weight("variance", stats_shape, "ones",
                                                  trainable=False)
            self.add_weight("count", (), "zeros", trainable=False)
            self.register_buffer("count", torch.zeros((), dtype=torch.int32))  # Keras: int
            return
        mean, variance = (self._given(v, rank) for v in (self.input_mean, self.input_variance))
        self.register_buffer("_mean", mean, persistent=False)
        self.register_buffer("_variance", variance, persistent=False)

    def _given(self, value, rank):
        """A given mean/variance broadcast to the kept axes: its last axes fill the last kept
        axes (Keras's rule)."""
        value = torch.as_tensor(np.asarray(value, np.float32))
        expanded = [1] * rank
        for i in range(1, value.dim() + 1):
            expanded[self._keep[-i]] = value.shape[-i]
        return value.reshape(expanded).expand(self._broadcast).clone()

    # ------------------------------------------------------------------ adapt
    def adapt(self, data):
        """Set ``mean`` and ``variance`` from ``data``: an array or tensor (statistics over the
        whole of it), or an iterable of batches (``(x, y)`` tuples use ``x``), merged batch by
        batch with Keras's formula."""
        if self.input_mean is not None:
            raise ValueError(f"Normalization '{self.name}' was given mean and variance; adapt "
                             "would ignore them. Create the layer without them to adapt it.")
        batches = None
        if isinstance(data, (np.ndarray, torch.Tensor)):
            shape = tuple(data.shape)
        else:
            batches = _batches(data)
            first = next(batches, None)
            if first is None:
                raise ValueError("Normalization.adapt received no batches. Pass an array, a "
                                 "tensor or a non-empty iterable of batches.")
            shape = tuple(first.shape)
            batches = _chain(first, batches)
        self._check_adapt_shape(shape)
        if isinstance(data, np.ndarray):
            mean = np.mean(data, axis=self._reduce)
            variance = np.var(data, axis=self._reduce)
        elif isinstance(data, torch.Tensor):
            x = data.detach().to(torch.float32)
            variance, mean = torch.var_mean(x, dim=self._reduce, correction=0)
        else:
            mean, variance = self._merge_batches(batches)
        with torch.no_grad():
            self.adapt_mean.copy_(torch.as_tensor(np.asarray(mean, np.float32)))
            self.adapt_variance.copy_(torch.as_tensor(np.asarray(variance, np.float32)))

    def _check_adapt_shape(self, shape):
        if not self.built:
            self._build_once(shape)
            return
        for d in self._keep:
            if len(shape) != len(self._build_shape) or shape[d] != self._build_shape[d]:
                raise ValueError(f"Normalization '{self.name}' was built for input shape "
                                 f"{self._build_shape}; adapt received data of shape {shape}.")

    def _merge_batches(self, batches):
        total_mean = total_var = None
        total = 0
        for batch in batches:
            x = torch.as_tensor(batch).detach().to(torch.float32)
            self._check_adapt_shape(tuple(x.shape))
            if self._reduce:
                var, mean = torch.var_mean(x, dim=self._reduce, correction=0)
            else:
                mean, var = x, torch.zeros_like(x)
            count = math.prod(x.shape[d] for d in self._reduce)
            total += count
            w_new = float(count) / total
            w_old = 1.0 - w_new
            if total_mean is None:
                total_mean, total_var = torch.zeros_like(mean), torch.zeros_like(var)
            merged = total_mean * w_old + mean * w_new
            total_var = ((total_var + (total_mean - merged) ** 2) * w_old
                         + (var + (mean - merged) ** 2) * w_new)
            total_mean = merged
        return total_mean, total_var

    # ------------------------------------------------------------------ call
    def _statistics(self):
        if self.input_mean is not None:
            return self._mean, self._variance
        return (self.adapt_mean.reshape(self._broadcast),
                self.adapt_variance.reshape(self._broadcast))

    def call(self, inputs):
        x = inputs if torch.is_floating_point(inputs) else inputs.to(torch.float32)
        mean, variance = self._statistics()
        std = torch.clamp(torch.sqrt(variance), min=config.epsilon())
        if self.invert:
            return mean + x * std
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "invert": self.invert,
                "mean": _plain(self.input_mean), "variance": _plain(self.input_variance)}


def _batches(data):
    """Batches from an iterable, or from a Keras ``Sequence``/``PyDataset``-like object."""
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(
            data, (list, tuple)):
        data = (data[i] for i in range(len(data)))
    elif not hasattr(data, "__iter__"):
        raise TypeError(f"Normalization.adapt takes an array, a tensor or an iterable of batches. "
                        f"Received: {type(data).__name__}")
    for batch in data:
        batch = batch[0] if isinstance(batch, tuple) else batch
        yield batch if isinstance(batch, (np.ndarray, torch.Tensor)) else np.asarray(batch)


def _chain(first, rest):
    yield first
    yield from rest
