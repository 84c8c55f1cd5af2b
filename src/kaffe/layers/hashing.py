"""``Hashing``: strings or integers to ``num_bins`` buckets with TensorFlow's hashes (FarmHash
Fingerprint64, or SipHash-2-4 keyed by ``salt``), so the buckets equal Keras's."""
import numpy as np
import torch

from kaffe.layers.categorical import encode_categorical
from kaffe.layers.host_data import HostDataLayer, as_array
from kaffe.layers.string_hashing import hash_bucket


def _as_hash_string(value):
    """TF's ``as_string`` for the values Hashing accepts: floats are truncated to ints first."""
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)):
        value = int(value)
    return str(int(value))


class Hashing(HostDataLayer):
    """Bucket ids ``hash(str(value)) % num_bins``; with ``mask_value`` that value maps to 0 and
    the others to ``1 + hash % (num_bins - 1)``. ``output_mode`` encodes the ids like
    ``CategoryEncoding`` (``int``, ``one_hot``, ``multi_hot``, ``count``)."""

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False,
                 **kwargs):
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        if num_bins is None or int(num_bins) <= 0:
            raise ValueError(f"Hashing needs num_bins > 0. Received: num_bins={num_bins!r}")
        if output_mode not in ("int", "one_hot", "multi_hot", "count"):
            raise ValueError("Hashing: output_mode must be 'int', 'one_hot', 'multi_hot' or "
                             f"'count'. Received: output_mode={output_mode!r}")
        if sparse:
            raise ValueError("Hashing: sparse=True is not supported by kaffe.")
        if salt is not None:
            if isinstance(salt, (tuple, list)) and len(salt) == 2:
                salt = [int(s) for s in salt]
            elif isinstance(salt, (int, np.integer)):
                salt = [int(salt), int(salt)]
            else:
                raise ValueError("Hashing: salt must be one integer or a pair of integers. "
                                 f"Received: salt={salt!r}")
        self.num_bins, self.mask_value, self.salt = int(num_bins), mask_value, salt
        self.output_mode, self.sparse = output_mode, False

    def call(self, inputs):
        values = as_array(inputs)
        if self.output_mode == "one_hot" and values.ndim and values.shape[-1] == 1:
            values = values[..., 0]
        bins = self.num_bins
        masked = self.mask_value is not None and bins > 1
        if masked:
            bins -= 1
        flat = values.reshape(-1)
        ids = np.empty(flat.shape, dtype=np.int64)
        for i, value in enumerate(flat.tolist()):
            if masked and value == self.mask_value:
                ids[i] = 0
            else:
                ids[i] = hash_bucket(_as_hash_string(value), bins, self.salt) + int(masked)
        ids = torch.from_numpy(ids.reshape(values.shape))
        return encode_categorical(ids, self.output_mode, self.num_bins)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        return tuple(input_shape[:-1]) + (self.num_bins,) if input_shape else (self.num_bins,)

    def compute_output_dtype(self, inputs):
        return "int64" if self.output_mode == "int" else "float32"

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "salt": self.salt,
                "mask_value": self.mask_value, "output_mode": self.output_mode,
                "sparse": self.sparse}
