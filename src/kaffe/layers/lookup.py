"""Vocabulary lookup layers (Keras 3's): ``StringLookup`` and ``IntegerLookup`` map tokens to
indices (or, ``invert=True``, back), learning the vocabulary with ``adapt`` or taking it given.

Index layout (``output_mode='int'``): the mask token (if any) at 0, then ``num_oov_indices``
out-of-vocabulary slots, then the vocabulary, most frequent first after ``adapt`` (ties broken
by the larger token first, as Keras sorts). Several OOV slots are chosen by hashing the token
(FarmHash, as TensorFlow) or, for integers, by ``token mod num_oov_indices``. The other modes
encode those indices like ``CategoryEncoding``; ``tf_idf`` weights counts by
``log(1 + documents / (1 + documents containing the token))``.
"""
import collections
import os

import numpy as np
import torch

from kaffe.layers.categorical import encode_categorical
from kaffe.layers.host_data import HostDataLayer, as_array
from kaffe.layers.string_hashing import hash_bucket

MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


class IndexLookup(HostDataLayer):
    """Shared machinery of ``StringLookup`` and ``IntegerLookup``."""

    def __init__(self, max_tokens, num_oov_indices, mask_token, oov_token, vocabulary_dtype,
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 sparse=False, pad_to_max_tokens=False, **kwargs):
        kwargs.pop("vocabulary_size", None)
        kwargs.pop("has_input_vocabulary", None)
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        name = type(self).__name__
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if output_mode not in MODES:
            raise ValueError(f"{name}: output_mode must be one of {MODES}. Received: "
                             f"output_mode={output_mode!r}")
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"{name}: max_tokens must be > 1 (or None). Received: "
                             f"max_tokens={max_tokens}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"{name}: pad_to_max_tokens=True needs max_tokens.")
        if num_oov_indices < 0:
            raise ValueError(f"{name}: num_oov_indices must be >= 0. Received: "
                             f"num_oov_indices={num_oov_indices}")
        if invert and output_mode != "int":
            raise ValueError(f"{name}: invert=True works with output_mode='int' only. "
                             f"Received: output_mode={output_mode!r}")
        if sparse:
            raise ValueError(f"{name}: sparse=True is not supported by kaffe.")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(f"{name}: idf_weights are only used with output_mode='tf_idf'.")
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token = mask_token, oov_token
        self.vocabulary_dtype, self.invert, self.output_mode = vocabulary_dtype, invert, output_mode
        self.sparse, self.pad_to_max_tokens = False, bool(pad_to_max_tokens)
        self.input_vocabulary = vocabulary
        self.input_idf_weights = idf_weights
        self._tokens, self._index, self.idf_weights = [], {}, None
        self.built = True
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        elif output_mode == "tf_idf" and idf_weights is not None:
            raise ValueError(f"{name}: idf_weights need a vocabulary.")

    # ------------------------------------------------------------------ indices
    def _oov_start(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self):
        return self._oov_start() + self.num_oov_indices

    def vocabulary_size(self):
        """Number of indices: special slots plus the vocabulary."""
        return self._token_start() + len(self._tokens)

    def get_vocabulary(self, include_special_tokens=True):
        """Token of each index (the mask, the OOV token(s), then the vocabulary)."""
        special = ([self.mask_token] * self._oov_start()
                   + [self.oov_token] * self.num_oov_indices)
        return (special if include_special_tokens else []) + list(self._tokens)

    def _convert_token(self, token):
        return token

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Use ``vocabulary`` (a list, array or a text file of one token per line); leading
        special tokens, if present in Keras's order, are recognised and skipped."""
        name = type(self).__name__
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError(f"{name}: output_mode='tf_idf' needs idf_weights with the "
                             "vocabulary.")
        if isinstance(vocabulary, (str, os.PathLike)):
            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = [line for line in f.read().splitlines()]
            while vocabulary and vocabulary[-1] == "":
                vocabulary.pop()
        tokens = [self._convert_token(t) for t in as_array(vocabulary).reshape(-1).tolist()]
        if not tokens:
            raise ValueError(f"{name}: the vocabulary is empty.")
        special = self.get_vocabulary()[:self._token_start()]
        found_special = tokens[:len(special)] == special
        if found_special:
            tokens = tokens[len(special):]
        repeated = [t for t, n in collections.Counter(tokens).items() if n > 1]
        if repeated:
            raise ValueError(f"{name}: the vocabulary has repeated tokens {repeated}.")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(f"{name}: the mask token {self.mask_token!r} is in the vocabulary "
                             f"at index {tokens.index(self.mask_token)}; leave it out.")
        if self.invert and self.oov_token is not None and self.oov_token in tokens:
            raise ValueError(f"{name}: the OOV token {self.oov_token!r} is in the vocabulary; "
                             "leave it out when invert=True.")
        if self.max_tokens is not None and self._token_start() + len(tokens) > self.max_tokens:
            raise ValueError(f"{name}: the vocabulary gives {self._token_start() + len(tokens)} "
                             f"indices, more than max_tokens={self.max_tokens}.")
        self._tokens = tokens
        self._index = {t: i + self._token_start() for i, t in enumerate(tokens)}
        if self.output_mode == "tf_idf":
            weights = np.asarray(idf_weights, dtype="float32").reshape(-1)
            if len(weights) != len(tokens) + (len(special) if found_special else 0):
                raise ValueError(f"{name}: {len(weights)} idf_weights for a vocabulary of "
                                 f"{len(tokens)} tokens.")
            if not found_special:
                weights = np.concatenate([np.full(len(special), weights.mean(), "float32"),
                                          weights])
            self.idf_weights = self._pad_idf(weights)

    def _pad_idf(self, weights):
        if self.pad_to_max_tokens and self.max_tokens is not None:
            weights = np.pad(weights, (0, self.max_tokens - len(weights)))
        return torch.as_tensor(weights, dtype=torch.float32)

    # ------------------------------------------------------------------ adapt
    def adapt(self, data, steps=None):
        """Learn the vocabulary (and idf weights) from an array/list or an iterable of batches."""
        counts, doc_counts, documents = collections.Counter(), collections.Counter(), 0
        if isinstance(data, (list, tuple, np.ndarray, torch.Tensor, str)):
            batches = [as_array(data)]
            if batches[0].ndim == 1:
                batches = [batches[0][:, None]]
        else:
            batches = data
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            batch = as_array(batch[0] if isinstance(batch, tuple) else batch)
            rows = batch.reshape(1, -1) if batch.ndim <= 1 else batch.reshape(batch.shape[0], -1)
            for row in rows.tolist():
                row = [self._convert_token(t) for t in row]
                counts.update(row)
                doc_counts.update(set(row))
                documents += 1
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        tokens = list(counts)
        order = np.lexsort((np.array(tokens, dtype=object if self.vocabulary_dtype == "string"
                                     else None), np.array([counts[t] for t in tokens])))[::-1]
        if self.max_tokens:
            order = order[:self.max_tokens - self._token_start()]
        self._tokens = [tokens[i] for i in order]
        self._index = {t: i + self._token_start() for i, t in enumerate(self._tokens)}
        if self.output_mode == "tf_idf":
            idf = np.log(1 + documents / (1 + np.array([doc_counts[t] for t in self._tokens],
                                                        dtype="float64"))).astype("float32")
            idf = np.concatenate([np.full(self._token_start(), idf.mean() if idf.size else 0.0,
                                          "float32"), idf])
            self.idf_weights = self._pad_idf(idf)

    # ------------------------------------------------------------------ call
    def _oov_index(self, token):
        if self.num_oov_indices == 1:
            return self._oov_start()
        if isinstance(token, (int, np.integer)):
            bucket = int(token) % self.num_oov_indices
        else:
            bucket = hash_bucket(str(token), self.num_oov_indices)
        return self._oov_start() + bucket

    def lookup(self, values):
        """Indices of ``values`` (a numpy array), same shape, int64 numpy."""
        flat = [self._convert_token(t) for t in values.reshape(-1).tolist()]
        out = np.empty(len(flat), dtype=np.int64)
        missing = []
        for i, token in enumerate(flat):
            if self.mask_token is not None and token == self.mask_token:
                out[i] = 0 if self.output_mode == "int" else np.iinfo(np.int64).max
            elif token in self._index:
                out[i] = self._index[token]
            elif self.num_oov_indices == 0:
                missing.append(token)
            else:
                out[i] = self._oov_index(token)
        if missing:
            raise ValueError(f"{type(self).__name__} '{self.name}': with num_oov_indices=0 every "
                             f"input must be in the vocabulary; found {sorted(set(missing))[:10]}. "
                             "Set num_oov_indices=1.")
        return out.reshape(values.shape)

    def call(self, inputs):
        values = as_array(inputs)
        if self.invert:
            return self._invert(values)
        scalar = values.ndim == 0
        ids = torch.from_numpy(self.lookup(values.reshape(1) if scalar else values))
        if self.output_mode == "int":
            return ids.reshape(()) if scalar else ids
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        ids = ids.clamp(max=depth)  # the mask id (int64 max) encodes to nothing
        encoded = encode_categorical(ids, "count" if self.output_mode == "tf_idf"
                                     else self.output_mode, depth)
        if self.output_mode == "tf_idf":
            encoded = encoded * self.idf_weights
        return encoded

    def _invert(self, ids):
        vocabulary = self.get_vocabulary()
        flat = [vocabulary[i] if 0 <= i < len(vocabulary) else self.oov_token
                for i in ids.reshape(-1).astype(np.int64).tolist()]
        if self.mask_token is not None:
            flat = [self.mask_token if i == 0 else t
                    for i, t in zip(ids.reshape(-1).tolist(), flat)]
        return self._token_array(flat).reshape(ids.shape)

    def _token_array(self, tokens):
        return np.array(tokens, dtype=object)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        input_shape = tuple(input_shape)
        if self.output_mode == "one_hot" and not (len(input_shape) > 1 and input_shape[-1] == 1):
            return input_shape + (depth,)
        return input_shape[:-1] + (depth,)

    def compute_output_dtype(self, inputs):
        return "int64" if self.output_mode == "int" and not self.invert else "float32"

    def get_config(self):
        vocabulary = self.input_vocabulary
        if isinstance(vocabulary, np.ndarray):
            vocabulary = vocabulary.tolist()
        if vocabulary is None and self._tokens:  # adapted: the learned vocabulary, so the
            vocabulary = self.get_vocabulary()      # config alone rebuilds the layer
        idf = self.input_idf_weights
        if idf is None and self.idf_weights is not None and self.input_vocabulary is None:
            idf = self.idf_weights.tolist()
        elif isinstance(idf, np.ndarray):
            idf = idf.tolist()
        return {**super().get_config(), "invert": self.invert, "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "oov_token": self.oov_token,
                "mask_token": self.mask_token, "output_mode": self.output_mode,
                "sparse": self.sparse, "pad_to_max_tokens": self.pad_to_max_tokens,
                "vocabulary": vocabulary, "idf_weights": idf,
                "vocabulary_size": self.vocabulary_size()}


class StringLookup(IndexLookup):
    """Strings to indices (``oov_token='[UNK]'``); ``invert=True`` maps indices to strings."""

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]",
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 pad_to_max_tokens=False, sparse=False, encoding="utf-8", vocabulary_size=None,
                 **kwargs):
        self.encoding = encoding  # vocabulary_size: recorded by Keras's config, implied here
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, "string",
                         vocabulary, idf_weights, invert, output_mode, sparse, pad_to_max_tokens,
                         **kwargs)

    def _convert_token(self, token):
        return token.decode(self.encoding) if isinstance(token, bytes) else token

    def get_config(self):
        return {**super().get_config(), "encoding": self.encoding}


class IntegerLookup(IndexLookup):
    """Integers to indices (``oov_token=-1``); ``invert=True`` maps indices back to integers."""

    input_dtype = "int64"

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                 vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False,
                 output_mode="int", sparse=False, pad_to_max_tokens=False, vocabulary_size=None,
                 **kwargs):
        if vocabulary_dtype not in ("int32", "int64"):
            raise ValueError("IntegerLookup: vocabulary_dtype must be 'int32' or 'int64'. "
                             f"Received: vocabulary_dtype={vocabulary_dtype!r}")
        if mask_token is not None and int(mask_token) < 0:
            raise ValueError(f"IntegerLookup: mask_token must be >= 0. Received: {mask_token}")
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary_dtype,
                         vocabulary, idf_weights, invert, output_mode, sparse, pad_to_max_tokens,
                         **kwargs)

    def _convert_token(self, token):
        return int(token)

    def _token_array(self, tokens):
        return np.array(tokens, dtype=np.int64)

    def _invert(self, ids):
        return torch.from_numpy(super()._invert(ids))

    def get_config(self):
        return {**super().get_config(), "vocabulary_dtype": self.vocabulary_dtype}
