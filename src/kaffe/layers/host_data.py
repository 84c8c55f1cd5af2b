"""Plumbing for the preprocessing layers that work on host data (strings, vocabularies):
inputs arrive as lists, numpy arrays or tensors and are handled as numpy arrays; numeric
results go back as torch tensors."""
import numpy as np
import torch

from kaffe.engine.layer import Layer


def as_array(values):
    """Numpy array of ``values`` (a str, list, numpy array, torch tensor); bytes become str."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype.kind == "S" or (array.dtype == object and array.size and
                                   isinstance(array.flat[0], bytes)):
        array = np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v,
                             otypes=[object])(array)
    return array


def is_string_array(array):
    return array.dtype.kind in ("U", "S", "O")


class HostDataLayer(Layer):
    """A layer that accepts lists and string arrays in eager calls (built on first call)."""

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, (list, tuple, str, bytes, np.ndarray)):
            inputs = as_array(inputs)
            if not is_string_array(inputs):
                inputs = torch.as_tensor(inputs)
            else:
                if not self.built:
                    self._build_once(inputs.shape)
                return self.call(inputs, *args, **kwargs)
        return super().__call__(inputs, *args, **kwargs)
