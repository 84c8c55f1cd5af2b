"""``TextVectorization`` (Keras 3's): strings -> standardized -> split into tokens -> n-grams ->
a ``StringLookup`` with mask ``''`` and OOV ``'[UNK]'``: sequences of token ids (``int``, padded
with 0 to ``output_sequence_length`` or the longest text) or bag-of-token vectors
(``multi_hot``, ``count``, ``tf_idf``, ``one_hot``).

Standardization follows TensorFlow's: ``lower`` lowercases ASCII letters only, punctuation is
the ASCII set ``!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'``; ``whitespace`` splits on runs of
space/tab/newline/CR/VT/FF.
"""
import re

import numpy as np
import torch

from kaffe.layers.categorical import encode_categorical
from kaffe.layers.host_data import HostDataLayer, as_array
from kaffe.layers.lookup import StringLookup

_PUNCTUATION = re.compile(r"""[!"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']""")
_WHITESPACE = re.compile(r"[ \t\n\r\v\f]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
SPLIT = ("whitespace", "character")


def _ngrams(tokens, widths):
    out = []
    for n in widths:
        out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return out


class TextVectorization(HostDataLayer):
    """Texts (a list or array of strings, shape ``(batch,)`` or ``(batch, 1)``) to token ids
    or token vectors; ``adapt(texts)`` learns the vocabulary (most frequent first)."""

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation",
                 split="whitespace", ngrams=None, output_mode="int", output_sequence_length=None,
                 pad_to_max_tokens=False, vocabulary=None, idf_weights=None, sparse=False,
                 ragged=False, encoding="utf-8", vocabulary_size=None, **kwargs):
        kwargs.pop("has_input_vocabulary", None)
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        if not (standardize is None or callable(standardize) or standardize in STANDARDIZE):
            raise ValueError(f"TextVectorization: standardize must be None, a callable or one of "
                             f"{STANDARDIZE}. Received: standardize={standardize!r}")
        if not (split is None or callable(split) or split in SPLIT):
            raise ValueError(f"TextVectorization: split must be None, a callable or one of "
                             f"{SPLIT}. Received: split={split!r}")
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (ngrams is None or isinstance(ngrams, int) or
                (isinstance(ngrams, tuple) and all(isinstance(n, int) for n in ngrams))):
            raise ValueError("TextVectorization: ngrams must be None, an int or a tuple of ints. "
                             f"Received: ngrams={ngrams!r}")
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError("TextVectorization: output_sequence_length applies to "
                             f"output_mode='int' only. Received output_mode={output_mode!r}")
        if sparse or ragged:
            raise ValueError("TextVectorization: sparse/ragged outputs are not supported by "
                             "kaffe (dense, 0-padded tensors only).")
        self.standardize, self.split, self.ngrams = standardize, split, ngrams
        self._widths = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self.output_mode, self.output_sequence_length = output_mode, output_sequence_length
        self.encoding = encoding
        self._lookup_layer = StringLookup(
            max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights,
            pad_to_max_tokens=pad_to_max_tokens, mask_token="", output_mode=output_mode,
            encoding=encoding, name=f"{self.name}_lookup")
        self.built = True

    # ------------------------------------------------------------------ text to tokens
    def _standardize_texts(self, texts):
        if callable(self.standardize):
            return as_array(self.standardize(texts)).reshape(texts.shape)
        out = []
        for text in texts.reshape(-1).tolist():
            text = text.decode(self.encoding) if isinstance(text, bytes) else str(text)
            if self.standardize in ("lower", "lower_and_strip_punctuation"):
                text = text.translate(_ASCII_LOWER)
            if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
                text = _PUNCTUATION.sub("", text)
            out.append(text)
        return np.array(out, dtype=object).reshape(texts.shape)

    def _split_text(self, text):
        if self.split == "whitespace":
            return [t for t in _WHITESPACE.split(text) if t]
        if self.split == "character":
            return list(text)
        return list(self.split(text))

    def _preprocess(self, inputs):
        """Texts -> a list of token lists (one per text) or, with ``split=None``, an array."""
        texts = self._standardize_texts(as_array(inputs))
        if self.split is None:
            return texts
        if texts.ndim > 1:
            if texts.shape[-1] != 1:
                raise ValueError(f"TextVectorization '{self.name}': with a split, the input "
                                 "must be one text per row, shape (batch,) or (batch, 1). "
                                 f"Received shape {texts.shape}.")
            texts = texts[..., 0]
        rows = [self._split_text(t) for t in texts.reshape(-1).tolist()]
        if self._widths:
            rows = [_ngrams(r, self._widths) for r in rows]
        return rows

    # ------------------------------------------------------------------ vocabulary
    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary from texts (a list/array, or an iterable of batches)."""
        if isinstance(data, (list, tuple, np.ndarray, str)):
            batches = [as_array(data)]
        else:
            batches = (as_array(b[0] if isinstance(b, tuple) else b) for b in data)
        documents = []
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            tokens = self._preprocess(batch)
            documents.extend(tokens if isinstance(tokens, list) else
                             [[t] for t in tokens.reshape(-1).tolist()])
        width = max((len(d) for d in documents), default=0)
        padded = np.array([d + [""] * (width - len(d)) for d in documents], dtype=object)
        self._lookup_layer.adapt(iter([padded]) if len(padded) else iter([]))

    def get_vocabulary(self, include_special_tokens=True):
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self):
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights)

    # ------------------------------------------------------------------ call
    def call(self, inputs):
        tokens = self._preprocess(inputs)
        if not isinstance(tokens, list):  # split=None: one token per element
            return self._lookup_layer.call(tokens)
        ids = [self._lookup_layer.lookup(np.array(row, dtype=object)).tolist() for row in tokens]
        if self.output_mode == "int":
            length = (self.output_sequence_length if self.output_sequence_length is not None
                      else max((len(r) for r in ids), default=0))
            out = torch.zeros((len(ids), length), dtype=torch.int64)
            for i, row in enumerate(ids):
                row = row[:length]
                out[i, :len(row)] = torch.as_tensor(row, dtype=torch.int64)
            return out
        lookup = self._lookup_layer
        depth = lookup.max_tokens if lookup.pad_to_max_tokens else lookup.vocabulary_size()
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        rows = [encode_categorical(torch.as_tensor(r, dtype=torch.int64).reshape(1, -1)
                                   .clamp(max=depth), mode, depth) for r in ids]
        if self.output_mode == "one_hot":
            return torch.cat(rows)
        out = torch.cat(rows) if rows else torch.zeros((0, depth))
        return out * lookup.idf_weights if self.output_mode == "tf_idf" else out

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return (input_shape[0], self.output_sequence_length)
        lookup = self._lookup_layer
        depth = lookup.max_tokens if lookup.pad_to_max_tokens else lookup.vocabulary_size()
        return (input_shape[0], depth)

    def compute_output_dtype(self, inputs):
        return "int64" if self.output_mode == "int" else "float32"

    def get_config(self):
        lookup = self._lookup_layer.get_config()
        return {**super().get_config(), "max_tokens": lookup["max_tokens"],
                "standardize": self.standardize if isinstance(self.standardize, str) or
                self.standardize is None else getattr(self.standardize, "__name__", None),
                "split": self.split if isinstance(self.split, str) or self.split is None
                else getattr(self.split, "__name__", None),
                "ngrams": self.ngrams, "output_mode": self.output_mode,
                "output_sequence_length": self.output_sequence_length,
                "pad_to_max_tokens": lookup["pad_to_max_tokens"], "sparse": False,
                "ragged": False, "vocabulary": lookup["vocabulary"],
                "idf_weights": lookup["idf_weights"], "encoding": self.encoding,
                "vocabulary_size": lookup["vocabulary_size"]}
